package anthropic_test

import (
	"bytes"
	"testing"

	"github.com/metisgateway/metis/adapters/anthropic"
	"github.com/metisgateway/metis/internal/vcr"
)

// FuzzAnthropicStreamTracker feeds arbitrary bytes as SSE bodies, seeded
// with the recorded streams: the tracker must not panic and its counts stay
// non-negative.
func FuzzAnthropicStreamTracker(f *testing.F) {
	f.Add([]byte(vcr.MustLoad(usageStreamFixture)[0].ResponseBody))
	for _, c := range vcr.MustLoad(usageNonStreamFixture) {
		f.Add([]byte("event: message_start\ndata: {\"type\":\"message_start\",\"message\":" + c.ResponseBody + "}\n\n"))
	}
	f.Add([]byte("event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n"))
	f.Fuzz(func(t *testing.T, body []byte) {
		var tr anthropic.StreamTracker
		for _, ev := range usageEvents(t, string(body)) {
			tr.Observe(ev.name, ev.data)
			// Also feed the raw data without a name (type fallback).
			tr.Observe("", ev.data)
		}
		// Each whole line as data of every known event kind.
		for _, line := range bytes.Split(body, []byte("\n")) {
			for _, name := range []string{"message_start", "message_delta", "content_block_delta", "content_block_start", "error"} {
				tr.Observe(name, line)
			}
		}
		u := tr.Usage()
		if u.InputTokens < 0 || u.OutputTokens < 0 || u.CacheReadInputTokens < 0 ||
			u.CacheCreationInputTokens < u.CacheCreation5mInputTokens+u.CacheCreation1hInputTokens {
			t.Fatalf("bad usage %+v", u)
		}
		_, _, _ = tr.Err()
		_ = tr.Meta()
	})
}

// FuzzResponseUsage parses arbitrary bytes as a non-streamed response body.
func FuzzResponseUsage(f *testing.F) {
	for _, c := range vcr.MustLoad(usageNonStreamFixture) {
		f.Add([]byte(c.ResponseBody))
	}
	f.Add([]byte(`{"type":"error","error":{"type":"api_error","message":"x"}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		u, _, err := anthropic.ResponseUsage(body)
		if err == nil && (u.InputTokens < 0 || u.OutputTokens < 0) {
			t.Fatalf("negative usage %+v", u)
		}
	})
}
