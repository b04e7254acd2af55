package anthropic_test

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/metisgateway/metis/adapters/anthropic"
	"github.com/metisgateway/metis/adapters/sse"
	"github.com/metisgateway/metis/internal/vcr"
	"github.com/metisgateway/metis/ir"
)

const (
	usageStreamFixture    = "anthropic_stream_text_then_tool_use.vcr.yaml"
	usageNonStreamFixture = "anthropic_nonstream_tool_use_two_turns.vcr.yaml"
)

type usageEvent struct {
	name string
	data []byte
}

// usageEvents parses an SSE body into (name, data) pairs.
func usageEvents(t testing.TB, body string) []usageEvent {
	t.Helper()
	var out []usageEvent
	r := sse.NewReader(strings.NewReader(body))
	for {
		ev, err := r.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, usageEvent{ev.Name, bytes.Clone(ev.Data)})
	}
}

func TestUsageResponseFixture(t *testing.T) {
	calls := vcr.MustLoad(usageNonStreamFixture)
	want := []struct {
		u    ir.Usage
		meta anthropic.ResponseMeta
	}{
		{
			u:    ir.Usage{InputTokens: 402, OutputTokens: 89, ServiceTier: "standard"},
			meta: anthropic.ResponseMeta{ID: "msg_01VLZuPg94y7NULJySZhEDJY", Model: "claude-3-7-sonnet-20250219", StopReason: "tool_use"},
		},
		{
			u:    ir.Usage{InputTokens: 514, OutputTokens: 19, ServiceTier: "standard"},
			meta: anthropic.ResponseMeta{ID: "msg_014SddXAzPYwR72fa37nJ8N2", Model: "claude-3-7-sonnet-20250219", StopReason: "end_turn"},
		},
	}
	if len(calls) != len(want) {
		t.Fatalf("%d calls in fixture", len(calls))
	}
	for i, c := range calls {
		u, meta, err := anthropic.ResponseUsage([]byte(c.ResponseBody))
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		if u != want[i].u || meta != want[i].meta {
			t.Errorf("call %d: got %+v %+v, want %+v %+v", i, u, meta, want[i].u, want[i].meta)
		}
	}
}

func TestUsageStreamFixture(t *testing.T) {
	body := vcr.MustLoad(usageStreamFixture)[0].ResponseBody
	var tr anthropic.StreamTracker
	for _, ev := range usageEvents(t, body) {
		tr.Observe(ev.name, ev.data)
	}
	want := ir.Usage{InputTokens: 394, OutputTokens: 79, ServiceTier: "standard"}
	if got := tr.Usage(); got != want {
		t.Errorf("usage = %+v, want %+v", got, want)
	}
	wantMeta := anthropic.ResponseMeta{ID: "msg_01P7nF1bmxyzFZjF8zwbUDBM", Model: "claude-3-7-sonnet-20250219", StopReason: "tool_use"}
	if tr.Meta() != wantMeta {
		t.Errorf("meta = %+v", tr.Meta())
	}
	if !tr.Complete() || !tr.SawContent() {
		t.Errorf("complete %v, sawContent %v", tr.Complete(), tr.SawContent())
	}
	if _, _, ok := tr.Err(); ok {
		t.Error("unexpected error")
	}
}

// TestUsageStreamCut cuts the fixture before message_delta: output is
// estimated from the streamed delta bytes.
func TestUsageStreamCut(t *testing.T) {
	body := vcr.MustLoad(usageStreamFixture)[0].ResponseBody
	var tr anthropic.StreamTracker
	for _, ev := range usageEvents(t, body) {
		if ev.name == "message_delta" {
			break
		}
		tr.Observe(ev.name, ev.data)
	}
	// Text deltas: 1+1+4+15+12+3+23+4+7+5+26+5+1 = 107 bytes; input_json
	// deltas decoded (each \" one byte): 0+12+9+4 = 25 bytes (29 as sent);
	// 132 bytes → ⌈132/4⌉ = 33.
	want := ir.Usage{InputTokens: 394, OutputTokens: 33, ServiceTier: "standard", Estimated: true}
	if got := tr.Usage(); got != want {
		t.Errorf("usage = %+v, want %+v", got, want)
	}
	if tr.Complete() {
		t.Error("cut stream reported complete")
	}
	if tr.Meta().StopReason != "" {
		t.Errorf("stop reason %q", tr.Meta().StopReason)
	}
}

func TestUsageStreamEstimateFloor(t *testing.T) {
	var tr anthropic.StreamTracker
	tr.Observe("message_start", []byte(`{"type":"message_start","message":{"id":"msg_1","model":"m","usage":{"input_tokens":5,"output_tokens":8}}}`))
	tr.Observe("content_block_delta", []byte(`{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"abcd"}}`))
	// 4 bytes → 1 token, below message_start's 8.
	if got := tr.Usage(); got.OutputTokens != 8 || !got.Estimated || got.InputTokens != 5 {
		t.Errorf("usage = %+v", got)
	}
	if !tr.SawContent() {
		t.Error("thinking delta is content")
	}
	var empty anthropic.StreamTracker
	if got := empty.Usage(); got != (ir.Usage{Estimated: true}) {
		t.Errorf("empty tracker usage = %+v", got)
	}
}

// TestUsageLaterDeltaDoesNotClobber: message_delta usage is cumulative
// (set, not add) and fields absent from a later delta keep their values.
func TestUsageLaterDeltaDoesNotClobber(t *testing.T) {
	var tr anthropic.StreamTracker
	for _, ev := range []usageEvent{
		{"message_start", []byte(`{"type":"message_start","message":{"id":"msg_x","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929","content":[],"stop_reason":null,"usage":{"input_tokens":10,"cache_creation_input_tokens":3,"cache_read_input_tokens":5,"cache_creation":{"ephemeral_5m_input_tokens":0,"ephemeral_1h_input_tokens":3},"output_tokens":1,"service_tier":"standard","inference_geo":"us"}}}`)},
		{"ping", []byte(`{"type": "ping"}`)},
		{"content_block_delta", []byte(`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"hi"}}`)},
		{"message_delta", []byte(`{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":40}}`)},
		{"message_delta", []byte(`{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":50,"server_tool_use":{"web_search_requests":1}}}`)},
		{"message_delta", []byte(`{"type":"message_delta","delta":{"stop_reason":null},"usage":{"input_tokens":null,"server_tool_use":{"web_search_requests":2}}}`)},
		{"message_delta", []byte(`{"type":"message_delta","delta":{}}`)},
	} {
		tr.Observe(ev.name, ev.data)
	}
	want := ir.Usage{
		InputTokens: 10, CacheReadInputTokens: 5, CacheCreationInputTokens: 3,
		CacheCreation1hInputTokens: 3, OutputTokens: 50, ServiceTier: "standard",
		InferenceGeo: "us", WebSearchRequests: 2,
	}
	if got := tr.Usage(); got != want {
		t.Errorf("usage = %+v, want %+v", got, want)
	}
	if !tr.Complete() || tr.Meta().StopReason != "end_turn" {
		t.Errorf("complete %v stop %q", tr.Complete(), tr.Meta().StopReason)
	}
}

func TestUsageStreamError(t *testing.T) {
	var tr anthropic.StreamTracker
	tr.Observe("message_start", []byte(`{"type":"message_start","message":{"id":"msg_e","usage":{"input_tokens":7,"output_tokens":1}}}`))
	tr.Observe("error", []byte(`{"type":"error","error":{"details":null,"type":"overloaded_error","message":"Overloaded"}}`))
	typ, msg, ok := tr.Err()
	if !ok || typ != "overloaded_error" || msg != "Overloaded" {
		t.Errorf("Err() = %q %q %v", typ, msg, ok)
	}
	if tr.Complete() || tr.SawContent() {
		t.Error("error stream is not complete and has no content")
	}
	// An unnamed event falls back to the data's type.
	var tr2 anthropic.StreamTracker
	tr2.Observe("", []byte(`{"type":"message_delta","delta":{"stop_reason":"max_tokens"},"usage":{"input_tokens":5,"output_tokens":3}}`))
	if u := tr2.Usage(); u.InputTokens != 5 || u.OutputTokens != 3 || u.Estimated || !tr2.Complete() {
		t.Errorf("unnamed event: %+v complete %v", u, tr2.Complete())
	}
}

func TestUsageResponseShapes(t *testing.T) {
	body := `{"id":"msg_full","type":"message","role":"assistant","model":"claude-opus-4-6","content":[{"type":"thinking","thinking":"…","signature":"x"},{"type":"text","text":"ok"}],"stop_reason":"end_turn","stop_sequence":null,
	"usage":{"input_tokens":1200,"cache_creation_input_tokens":3000,"cache_read_input_tokens":50000,"cache_creation":{"ephemeral_5m_input_tokens":1000,"ephemeral_1h_input_tokens":2000},"output_tokens":900,"output_tokens_details":{"thinking_tokens":600},"server_tool_use":{"web_search_requests":3,"web_fetch_requests":1},"service_tier":"priority","inference_geo":"us","speed":"fast"}}`
	u, meta, err := anthropic.ResponseUsage([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	want := ir.Usage{
		InputTokens: 1200, CacheCreationInputTokens: 3000, CacheReadInputTokens: 50000,
		CacheCreation5mInputTokens: 1000, CacheCreation1hInputTokens: 2000,
		OutputTokens: 900, ReasoningTokens: 600, WebSearchRequests: 3,
		ServiceTier: "priority", InferenceGeo: "us", Speed: "fast",
	}
	if u != want {
		t.Errorf("usage = %+v, want %+v", u, want)
	}
	if meta != (anthropic.ResponseMeta{ID: "msg_full", Model: "claude-opus-4-6", StopReason: "end_turn"}) {
		t.Errorf("meta = %+v", meta)
	}
	// Split without total: the total follows the split.
	u, _, err = anthropic.ResponseUsage([]byte(`{"usage":{"input_tokens":1,"cache_creation":{"ephemeral_5m_input_tokens":4,"ephemeral_1h_input_tokens":6},"output_tokens":-3}}`))
	if err != nil || u.CacheCreationInputTokens != 10 || u.OutputTokens != 0 {
		t.Errorf("split-only usage = %+v, %v", u, err)
	}
}

func TestUsageResponseErrors(t *testing.T) {
	for _, body := range []string{
		``,
		`[]`,
		`not json`,
		`{"id":"msg_1","type":"message","content":[]}`,
		`{"id":"msg_1","usage":null}`,
		`{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},"request_id":"req_1"}`,
	} {
		if u, _, err := anthropic.ResponseUsage([]byte(body)); err == nil {
			t.Errorf("ResponseUsage(%q) = %+v, want error", body, u)
		}
	}
	_, _, err := anthropic.ResponseUsage([]byte(`{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`))
	if err == nil || !strings.Contains(err.Error(), "overloaded_error") {
		t.Errorf("error body: %v", err)
	}
}

// TestUsageObserveAllocs keeps the per-event hot path allocation-free:
// only message_start copies the id and model, once per stream.
func TestUsageObserveAllocs(t *testing.T) {
	evs := usageEvents(t, vcr.MustLoad(usageStreamFixture)[0].ResponseBody)
	allocs := testing.AllocsPerRun(50, func() {
		var tr anthropic.StreamTracker
		for _, ev := range evs {
			tr.Observe(ev.name, ev.data)
		}
		_ = tr.Usage()
	})
	if allocs > 2 {
		t.Errorf("%v allocations per stream, want ≤ 2", allocs)
	}
}

func BenchmarkUsageStreamTracker(b *testing.B) {
	body := vcr.MustLoad(usageStreamFixture)[0].ResponseBody
	evs := usageEvents(b, body)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		var tr anthropic.StreamTracker
		for _, ev := range evs {
			tr.Observe(ev.name, ev.data)
		}
		_ = tr.Usage()
	}
}

func BenchmarkUsageResponse(b *testing.B) {
	body := []byte(vcr.MustLoad(usageNonStreamFixture)[0].ResponseBody)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := anthropic.ResponseUsage(body); err != nil {
			b.Fatal(err)
		}
	}
}

// TestUsageCacheWritesWithoutSplit: cache_creation_input_tokens without a
// usage.cache_creation breakdown are 5-minute writes (Anthropic's default
// TTL, and the rate pricing bills them at): the 5m count is the total, so
// the recorded split adds up. A breakdown that is given is kept.
func TestUsageCacheWritesWithoutSplit(t *testing.T) {
	cases := []struct {
		name, usage string
		want        ir.Usage
	}{
		{
			name:  "no breakdown",
			usage: `{"input_tokens":10,"cache_creation_input_tokens":1000,"cache_read_input_tokens":0,"output_tokens":5}`,
			want:  ir.Usage{InputTokens: 10, CacheCreationInputTokens: 1000, CacheCreation5mInputTokens: 1000, OutputTokens: 5},
		},
		{
			name:  "null breakdown",
			usage: `{"input_tokens":10,"cache_creation_input_tokens":1000,"cache_creation":null,"output_tokens":5}`,
			want:  ir.Usage{InputTokens: 10, CacheCreationInputTokens: 1000, CacheCreation5mInputTokens: 1000, OutputTokens: 5},
		},
		{
			name:  "1h breakdown kept",
			usage: `{"input_tokens":10,"cache_creation_input_tokens":1000,"cache_creation":{"ephemeral_5m_input_tokens":0,"ephemeral_1h_input_tokens":1000},"output_tokens":5}`,
			want:  ir.Usage{InputTokens: 10, CacheCreationInputTokens: 1000, CacheCreation1hInputTokens: 1000, OutputTokens: 5},
		},
		{
			name:  "mixed breakdown kept",
			usage: `{"input_tokens":10,"cache_creation_input_tokens":1000,"cache_creation":{"ephemeral_5m_input_tokens":300,"ephemeral_1h_input_tokens":700},"output_tokens":5}`,
			want: ir.Usage{InputTokens: 10, CacheCreationInputTokens: 1000, CacheCreation5mInputTokens: 300,
				CacheCreation1hInputTokens: 700, OutputTokens: 5},
		},
		{
			// 200 writes the split leaves out are billed (and recorded) as 5m.
			name:  "partial breakdown",
			usage: `{"input_tokens":10,"cache_creation_input_tokens":1000,"cache_creation":{"ephemeral_5m_input_tokens":100,"ephemeral_1h_input_tokens":700},"output_tokens":5}`,
			want: ir.Usage{InputTokens: 10, CacheCreationInputTokens: 1000, CacheCreation5mInputTokens: 300,
				CacheCreation1hInputTokens: 700, OutputTokens: 5},
		},
		{
			name:  "no writes",
			usage: `{"input_tokens":10,"cache_creation_input_tokens":0,"output_tokens":5}`,
			want:  ir.Usage{InputTokens: 10, OutputTokens: 5},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			body := []byte(`{"id":"msg_1","type":"message","role":"assistant","model":"claude-haiku-4-5","content":[{"type":"text","text":"ok"}],"stop_reason":"end_turn","usage":` + c.usage + `}`)
			if u, _, err := anthropic.ResponseUsage(body); err != nil || u != c.want {
				t.Errorf("ResponseUsage = %+v %v, want %+v", u, err, c.want)
			}
			// The translator's one-pass reader gives the same usage.
			if rd := anthropic.ReadResponse(body); rd.UsageErr != nil || rd.Usage != c.want {
				t.Errorf("ReadResponse usage = %+v %v, want %+v", rd.Usage, rd.UsageErr, c.want)
			}
			// Streamed: message_start carries the counts, message_delta repeats them.
			var tr anthropic.StreamTracker
			tr.Observe("message_start", []byte(`{"type":"message_start","message":{"id":"msg_1","model":"claude-haiku-4-5","usage":`+
				strings.Replace(c.usage, `"output_tokens":5`, `"output_tokens":1`, 1)+`}}`))
			tr.Observe("message_delta", []byte(`{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":`+
				strings.Replace(c.usage, `,"cache_creation":null`, ``, 1)+`}`))
			if u := tr.Usage(); u != c.want {
				t.Errorf("stream usage = %+v, want %+v", u, c.want)
			}
		})
	}
}

// TestUsageStreamCacheSplitLate: Usage does not change the tracker's
// state, so a breakdown that arrives after an earlier Usage call (or a
// message_delta that only repeats the total) is still read as reported.
func TestUsageStreamCacheSplitLate(t *testing.T) {
	var tr anthropic.StreamTracker
	tr.Observe("message_start", []byte(`{"type":"message_start","message":{"id":"msg_1","usage":{"input_tokens":3,"cache_creation_input_tokens":1000,"output_tokens":1}}}`))
	// Cut here: output estimated, the writes are 5-minute ones.
	want := ir.Usage{InputTokens: 3, CacheCreationInputTokens: 1000, CacheCreation5mInputTokens: 1000, OutputTokens: 1, Estimated: true}
	if u := tr.Usage(); u != want {
		t.Errorf("cut stream usage = %+v, want %+v", u, want)
	}
	// The breakdown arrives later and names only the 1h writes: the 5m
	// count stays unreported (0), not the total the cut usage showed.
	tr.Observe("message_delta", []byte(`{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"cache_creation_input_tokens":1000,"cache_creation":{"ephemeral_1h_input_tokens":1000},"output_tokens":20}}`))
	want = ir.Usage{InputTokens: 3, CacheCreationInputTokens: 1000, CacheCreation1hInputTokens: 1000, OutputTokens: 20}
	if u := tr.Usage(); u != want {
		t.Errorf("usage = %+v, want %+v", u, want)
	}
	// A split in message_start survives a message_delta repeating only the total.
	var tr2 anthropic.StreamTracker
	tr2.Observe("message_start", []byte(`{"type":"message_start","message":{"id":"msg_2","usage":{"input_tokens":3,"cache_creation_input_tokens":1000,"cache_creation":{"ephemeral_5m_input_tokens":0,"ephemeral_1h_input_tokens":1000},"output_tokens":1}}}`))
	tr2.Observe("message_delta", []byte(`{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"input_tokens":3,"cache_creation_input_tokens":1000,"output_tokens":20}}`))
	want = ir.Usage{InputTokens: 3, CacheCreationInputTokens: 1000, CacheCreation1hInputTokens: 1000, OutputTokens: 20}
	if u := tr2.Usage(); u != want {
		t.Errorf("split from message_start: usage = %+v, want %+v", u, want)
	}
}

// TestUsageDeltaZerosKeepStartCounts: an Anthropic-compatible server that
// repeats the input and cache counts as 0 in message_delta (after
// message_start reported them) does not erase them; output follows the
// delta.
func TestUsageDeltaZerosKeepStartCounts(t *testing.T) {
	var tr anthropic.StreamTracker
	tr.Observe("message_start", []byte(`{"type":"message_start","message":{"id":"msg_z","usage":{"input_tokens":30,"cache_read_input_tokens":2000,"cache_creation_input_tokens":0,"output_tokens":1}}}`))
	tr.Observe("message_delta", []byte(`{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"input_tokens":0,"cache_read_input_tokens":0,"cache_creation_input_tokens":0,"output_tokens":37}}`))
	want := ir.Usage{InputTokens: 30, CacheReadInputTokens: 2000, OutputTokens: 37}
	if u := tr.Usage(); u != want {
		t.Errorf("usage = %+v, want %+v", u, want)
	}
	// A server that reports input only in message_delta (0 at the start)
	// still has it counted.
	var late anthropic.StreamTracker
	late.Observe("message_start", []byte(`{"type":"message_start","message":{"id":"msg_l","usage":{"input_tokens":0,"output_tokens":0}}}`))
	late.Observe("message_delta", []byte(`{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"input_tokens":62,"output_tokens":9}}`))
	if u, want := late.Usage(), (ir.Usage{InputTokens: 62, OutputTokens: 9}); u != want {
		t.Errorf("input only in message_delta: usage = %+v, want %+v", u, want)
	}
}
