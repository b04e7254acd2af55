package openai_test

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/metisgateway/metis/adapters/openai"
	"github.com/metisgateway/metis/internal/vcr"
)

// FuzzOpenAIStreamTracker feeds arbitrary SSE bodies, seeded with the
// recorded streams: no panic, no negative counts, and a chunk reported as
// usage-only really carries usage.
func FuzzOpenAIStreamTracker(f *testing.F) {
	f.Add([]byte(vcr.MustLoad(usageNanoStream)[0].ResponseBody))
	f.Add([]byte(vcr.MustLoad(usageParallelStream)[0].ResponseBody))
	f.Add([]byte("data: {\"error\":{\"message\":\"x\",\"type\":\"server_error\"}}\n\n"))
	f.Fuzz(func(t *testing.T, body []byte) {
		var tr openai.StreamTracker
		for _, p := range usagePayloads(t, string(body)) {
			tr.Observe(p)
		}
		for _, line := range bytes.Split(body, []byte("\n")) {
			tr.Observe(line)
		}
		u := tr.Usage()
		if u.InputTokens < 0 || u.OutputTokens < 0 || u.CacheReadInputTokens < 0 {
			t.Fatalf("bad usage %+v", u)
		}
		_, _, _ = tr.Err()
		_ = tr.Meta()
	})
}

// FuzzResponseUsage parses arbitrary bytes as a chat.completion body and
// as a request for InjectIncludeUsage.
func FuzzResponseUsage(f *testing.F) {
	for _, name := range []string{usageNonStreamFixture, usageErrorFixture, usageNanoStream} {
		for _, c := range vcr.MustLoad(name) {
			f.Add([]byte(c.ResponseBody))
			f.Add([]byte(c.RequestBody))
		}
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		u, _, err := openai.ResponseUsage(body)
		if err == nil && (u.InputTokens < 0 || u.OutputTokens < 0) {
			t.Fatalf("negative usage %+v", u)
		}
		orig := bytes.Clone(body)
		out, asked, err := openai.InjectIncludeUsage(body)
		if !bytes.Equal(orig, body) {
			t.Fatal("input modified")
		}
		if err != nil {
			return
		}
		if !json.Valid(out) {
			t.Fatalf("invalid output %q from %q", out, orig)
		}
		if asked && !bytes.Equal(out, orig) {
			t.Fatal("changed a body that already asked for usage")
		}
	})
}
