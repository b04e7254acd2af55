package openai_test

import (
	"bytes"
	"encoding/json"
	"io"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/metisgateway/metis/adapters/openai"
	"github.com/metisgateway/metis/adapters/sse"
	"github.com/metisgateway/metis/internal/vcr"
	"github.com/metisgateway/metis/ir"
	"github.com/metisgateway/metis/pricing"
)

const (
	usageNonStreamFixture = "openai_nonstream_tool_call_reasoning_usage.vcr.yaml"
	usageErrorFixture     = "openai_error_400_unsupported_max_tokens.vcr.yaml"
	usageNanoStream       = "openai_stream_gpt5nano_usage_chunk.vcr.yaml"
	usageParallelStream   = "openai_stream_parallel_tool_calls_include_usage.sse"
)

// usagePayloads returns the data payloads of an SSE body.
func usagePayloads(t testing.TB, body string) [][]byte {
	t.Helper()
	var out [][]byte
	r := sse.NewReader(strings.NewReader(body))
	for {
		ev, err := r.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, bytes.Clone(ev.Data))
	}
}

func TestUsageResponseFixture(t *testing.T) {
	c := vcr.MustLoad(usageNonStreamFixture)[0]
	u, meta, err := openai.ResponseUsage([]byte(c.ResponseBody))
	if err != nil {
		t.Fatal(err)
	}
	// prompt 162 (cached 0), completion 287 of which reasoning 256.
	want := ir.Usage{InputTokens: 162, OutputTokens: 287, ReasoningTokens: 256, ServiceTier: "default"}
	if u != want {
		t.Errorf("usage = %+v, want %+v", u, want)
	}
	wantMeta := openai.ResponseMeta{ID: "chatcmpl-C4GmWI2Sl7HnrQsKorSAZkJy94dpT", Model: "gpt-5-nano-2025-08-07", FinishReason: "tool_calls"}
	if meta != wantMeta {
		t.Errorf("meta = %+v", meta)
	}
}

func TestUsageResponseErrorFixture(t *testing.T) {
	c := vcr.MustLoad(usageErrorFixture)[0]
	if c.Status != 400 {
		t.Fatalf("status %d", c.Status)
	}
	_, _, err := openai.ResponseUsage([]byte(c.ResponseBody))
	if err == nil || !strings.Contains(err.Error(), "invalid_request_error") {
		t.Fatalf("err = %v", err)
	}
	for _, body := range []string{``, `null`, `[1]`, `{"id":"x","choices":[]}`, `{"usage":null}`} {
		if _, _, err := openai.ResponseUsage([]byte(body)); err == nil {
			t.Errorf("ResponseUsage(%q): no error", body)
		}
	}
}

func TestUsageResponseCache(t *testing.T) {
	body := `{"id":"c","object":"chat.completion","model":"gpt-5.6","service_tier":"priority","choices":[{"index":0,"finish_reason":"stop","message":{"role":"assistant","content":"hi"}}],
	"usage":{"prompt_tokens":1000,"completion_tokens":50,"total_tokens":1050,"prompt_tokens_details":{"cached_tokens":600,"cache_write_tokens":300},"completion_tokens_details":{"reasoning_tokens":20}}}`
	u, meta, err := openai.ResponseUsage([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	// 1000 − 600 cached − 300 written = 100 uncached input; the writes are
	// 5-minute ones (TestUsageCacheWritesAre5m).
	want := ir.Usage{InputTokens: 100, CacheReadInputTokens: 600, CacheCreationInputTokens: 300,
		CacheCreation5mInputTokens: 300, OutputTokens: 50, ReasoningTokens: 20, ServiceTier: "priority"}
	if u != want || meta.FinishReason != "stop" {
		t.Errorf("usage = %+v %+v, want %+v", u, meta, want)
	}
	// Never negative.
	u, _, err = openai.ResponseUsage([]byte(`{"usage":{"prompt_tokens":10,"completion_tokens":1,"prompt_tokens_details":{"cached_tokens":64}}}`))
	if err != nil || u.InputTokens != 0 || u.CacheReadInputTokens != 64 {
		t.Errorf("usage = %+v, %v", u, err)
	}
}

// TestUsageCacheWritesAre5m: OpenAI reports cache_write_tokens without a
// TTL split, and pricing bills such writes at the model's 5-minute write
// rate (gpt-5.6: cache_creation_input_token_cost $6.25/MTok), so they are
// recorded as 5-minute writes: cache_creation_5m + cache_creation_1h add up
// to cache_creation, on the non-streamed and the streamed path, and the
// recorded split prices the call exactly as the unsplit total does.
func TestUsageCacheWritesAre5m(t *testing.T) {
	cat := pricing.Default()
	cases := []struct {
		name, usage string
		want        ir.Usage
		usd         float64
	}{
		{
			// 100 × $5 + 600 × $0.5 + 300 × $6.25 + 50 × $30 per MTok
			// = 0.0005 + 0.0003 + 0.001875 + 0.0015 = 0.004175.
			name:  "reads and writes",
			usage: `{"prompt_tokens":1000,"completion_tokens":50,"total_tokens":1050,"prompt_tokens_details":{"cached_tokens":600,"cache_write_tokens":300},"completion_tokens_details":{"reasoning_tokens":20}}`,
			want: ir.Usage{InputTokens: 100, CacheReadInputTokens: 600, CacheCreationInputTokens: 300,
				CacheCreation5mInputTokens: 300, OutputTokens: 50, ReasoningTokens: 20, ServiceTier: "default"},
			usd: 0.004175,
		},
		{
			// 1000 × $5 + 2000 × $6.25 + 100 × $30 per MTok = 0.0205.
			name:  "writes only",
			usage: `{"prompt_tokens":3000,"completion_tokens":100,"total_tokens":3100,"prompt_tokens_details":{"cached_tokens":0,"cache_write_tokens":2000}}`,
			want: ir.Usage{InputTokens: 1000, CacheCreationInputTokens: 2000, CacheCreation5mInputTokens: 2000,
				OutputTokens: 100, ServiceTier: "default"},
			usd: 0.0205,
		},
		{
			// 400 × $5 + 600 × $0.5 + 10 × $30 per MTok = 0.0026.
			name:  "no writes",
			usage: `{"prompt_tokens":1000,"completion_tokens":10,"total_tokens":1010,"prompt_tokens_details":{"cached_tokens":600}}`,
			want:  ir.Usage{InputTokens: 400, CacheReadInputTokens: 600, OutputTokens: 10, ServiceTier: "default"},
			usd:   0.0026,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			body := `{"id":"c","object":"chat.completion","model":"gpt-5.6","service_tier":"default","choices":[{"index":0,"finish_reason":"stop","message":{"role":"assistant","content":"hi"}}],"usage":` + c.usage + `}`
			u, _, err := openai.ResponseUsage([]byte(body))
			if err != nil || u != c.want {
				t.Errorf("ResponseUsage = %+v %v, want %+v", u, err, c.want)
			}
			// Streamed: a content chunk, then the include_usage chunk.
			var tr openai.StreamTracker
			tr.Observe([]byte(`{"id":"c","object":"chat.completion.chunk","model":"gpt-5.6","service_tier":"default","choices":[{"index":0,"delta":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],"usage":null}`))
			if !tr.Observe([]byte(`{"id":"c","object":"chat.completion.chunk","model":"gpt-5.6","service_tier":"default","choices":[],"usage":` + c.usage + `}`)) {
				t.Error("the usage chunk is not reported as usage-only")
			}
			tr.Observe([]byte("[DONE]"))
			if su := tr.Usage(); su != c.want {
				t.Errorf("stream usage = %+v, want %+v", su, c.want)
			}
			for _, got := range []ir.Usage{u, tr.Usage()} {
				if got.CacheCreation5mInputTokens+got.CacheCreation1hInputTokens != got.CacheCreationInputTokens {
					t.Errorf("split %d + %d does not add up to %d", got.CacheCreation5mInputTokens,
						got.CacheCreation1hInputTokens, got.CacheCreationInputTokens)
				}
				// The recorded split is the one pricing assumes: the call costs
				// the same as its unsplit total, at the 5-minute write rate.
				unsplit := got
				unsplit.CacheCreation5mInputTokens, unsplit.CacheCreation1hInputTokens = 0, 0
				usd, ok := cat.Cost("gpt-5.6", got)
				usdUnsplit, _ := cat.Cost("gpt-5.6", unsplit)
				if !ok || math.Abs(usd-c.usd) > 1e-12 || usd != usdUnsplit {
					t.Errorf("cost %v (priced %v), unsplit %v, want %v", usd, ok, usdUnsplit, c.usd)
				}
			}
		})
	}
}

type usageStreamWant struct {
	usage      ir.Usage
	meta       openai.ResponseMeta
	usageOnly  []int // indexes of payloads that are the include_usage chunk
	sawContent bool
}

func usageCheckStream(t *testing.T, payloads [][]byte, want usageStreamWant) {
	t.Helper()
	var tr openai.StreamTracker
	var only []int
	for i, p := range payloads {
		if tr.Observe(p) {
			only = append(only, i)
		}
	}
	if got := tr.Usage(); got != want.usage {
		t.Errorf("usage = %+v, want %+v", got, want.usage)
	}
	if tr.Meta() != want.meta {
		t.Errorf("meta = %+v, want %+v", tr.Meta(), want.meta)
	}
	if !reflect.DeepEqual(only, want.usageOnly) {
		t.Errorf("usage-only chunks %v, want %v", only, want.usageOnly)
	}
	if tr.SawContent() != want.sawContent {
		t.Errorf("SawContent = %v", tr.SawContent())
	}
	if !tr.Done() && want.usageOnly != nil {
		t.Error("[DONE] not seen")
	}
}

func TestUsageStreamNano(t *testing.T) {
	payloads := usagePayloads(t, vcr.MustLoad(usageNanoStream)[0].ResponseBody)
	usageCheckStream(t, payloads, usageStreamWant{
		// prompt 12 (cached 0), completion 100, all of it reasoning.
		usage:     ir.Usage{InputTokens: 12, OutputTokens: 100, ReasoningTokens: 100, ServiceTier: "default"},
		meta:      openai.ResponseMeta{ID: "chatcmpl-C4Hq5a6K3RaPMymUv70btQNYv6SvY", Model: "gpt-5-nano-2025-08-07", FinishReason: "length"},
		usageOnly: []int{2},
	})
}

func TestUsageStreamParallel(t *testing.T) {
	payloads := usagePayloads(t, vcr.MustLoad(usageParallelStream)[0].ResponseBody)
	meta := openai.ResponseMeta{ID: "chatcmpl-ABfwAwrNePHUgBBezonVC6MX3zd63", Model: "gpt-4o-2024-08-06", FinishReason: "tool_calls"}
	n := len(payloads)
	usageCheckStream(t, payloads, usageStreamWant{
		usage:      ir.Usage{InputTokens: 149, OutputTokens: 60},
		meta:       meta,
		usageOnly:  []int{n - 2},
		sawContent: true,
	})
	// Cut before the usage chunk: the tool-call argument fragments total
	// 92 bytes decoded (112 as sent, each \" one byte: call 0:
	// 4+5+6+4+5+6+4+5+6+4+3 = 52; call 1: 4+5+6+4+5+6+4+5+1 = 40)
	// → ⌈92/4⌉ = 23 estimated output tokens.
	usageCheckStream(t, payloads[:n-2], usageStreamWant{
		usage:      ir.Usage{OutputTokens: 23, Estimated: true},
		meta:       meta,
		sawContent: true,
	})
}

func TestUsageStreamContentAndError(t *testing.T) {
	var tr openai.StreamTracker
	tr.Observe([]byte(`{"id":"c1","object":"chat.completion.chunk","model":"gpt-4o","service_tier":"flex","choices":[{"index":0,"delta":{"role":"assistant","content":"Hello, wor"},"finish_reason":null}],"usage":null}`))
	tr.Observe([]byte(` {"id":"c1","choices":[{"index":0,"delta":{"content":"ld!","refusal":null},"finish_reason":null}]} `))
	if !tr.SawContent() {
		t.Error("content not seen")
	}
	tr.Observe([]byte(`{"error":{"message":"The server had an error","type":null,"param":null,"code":"server_error"}}`))
	typ, msg, ok := tr.Err()
	if !ok || typ != "server_error" || msg != "The server had an error" {
		t.Errorf("Err = %q %q %v", typ, msg, ok)
	}
	// "Hello, wor" + "ld!" = 13 bytes → 4 tokens, estimated; tier kept.
	if got := tr.Usage(); got != (ir.Usage{OutputTokens: 4, Estimated: true, ServiceTier: "flex"}) {
		t.Errorf("usage = %+v", got)
	}
	if tr.Done() {
		t.Error("done without [DONE]")
	}
	for _, junk := range []string{"", "  ", "[DON", "{", `{"choices":"x","usage":5}`, "null"} {
		if tr.Observe([]byte(junk)) {
			t.Errorf("junk %q reported as usage chunk", junk)
		}
	}
	tr.Observe([]byte("[DONE]"))
	if !tr.Done() {
		t.Error("[DONE] not noted")
	}
}

// TestUsageStreamErrorRateLimitCode: an error chunk whose code, not its
// type, says rate limited reports the code, so that the gateway records
// and retries it as a rate limit; other errors keep their type.
func TestUsageStreamErrorRateLimitCode(t *testing.T) {
	for _, c := range []struct{ chunk, want string }{
		{`{"error":{"message":"slow down","type":"invalid_request_error","code":"rate_limit_exceeded"}}`, "rate_limit_exceeded"},
		{`{"error":{"message":"slow down","type":"rate_limit_error","code":"rate_limit_exceeded"}}`, "rate_limit_error"},
		{`{"error":{"message":"bad","type":"invalid_request_error","code":"context_length_exceeded"}}`, "invalid_request_error"},
	} {
		var tr openai.StreamTracker
		tr.Observe([]byte(c.chunk))
		if typ, _, ok := tr.Err(); !ok || typ != c.want {
			t.Errorf("%s: Err type %q (%v), want %q", c.chunk, typ, ok, c.want)
		}
	}
}

func TestUsageInjectIncludeUsage(t *testing.T) {
	cases := []struct {
		name, in, want string
		asked          bool
	}{
		{"absent", `{"model":"gpt-5-mini","stream":true,"messages":[]}`,
			`{"model":"gpt-5-mini","stream":true,"messages":[],"stream_options":{"include_usage":true}}`, false},
		{"other option kept", `{"stream":true, "stream_options": {"include_obfuscation": false}}`,
			`{"stream":true, "stream_options": {"include_obfuscation": false,"include_usage":true}}`, false},
		{"false", `{"stream":true,"stream_options":{"include_usage":false}}`,
			`{"stream":true,"stream_options":{"include_usage":true}}`, false},
		{"null options", `{"stream":true,"stream_options":null}`,
			`{"stream":true,"stream_options":{"include_usage":true}}`, false},
		{"already", `{"stream": true, "stream_options": {"include_usage": true}}`,
			`{"stream": true, "stream_options": {"include_usage": true}}`, true},
		{"not streamed", `{"stream":false}`, `{"stream":false}`, false},
		{"no stream field", `{"model":"x"}`, `{"model":"x"}`, false},
	}
	for _, tc := range cases {
		out, asked, err := openai.InjectIncludeUsage([]byte(tc.in))
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if string(out) != tc.want || asked != tc.asked {
			t.Errorf("%s: got %s %v, want %s %v", tc.name, out, asked, tc.want, tc.asked)
		}
		if !json.Valid(out) {
			t.Errorf("%s: invalid JSON %s", tc.name, out)
		}
	}
	for _, bad := range []string{``, `{"stream":true`, `[true]`} {
		if _, _, err := openai.InjectIncludeUsage([]byte(bad)); err == nil {
			t.Errorf("InjectIncludeUsage(%q): no error", bad)
		}
	}
	// The fixture request already asks for usage.
	req := vcr.MustLoad(usageNanoStream)[0].RequestBody
	out, asked, err := openai.InjectIncludeUsage([]byte(req))
	if err != nil || !asked || string(out) != req {
		t.Errorf("fixture request: asked %v err %v", asked, err)
	}
	// The input is not modified in place.
	in := []byte(`{"stream":true}`)
	if _, _, err := openai.InjectIncludeUsage(in); err != nil || string(in) != `{"stream":true}` {
		t.Errorf("input modified: %s %v", in, err)
	}
}

// TestUsageObserveAllocs keeps the per-chunk hot path allocation-free
// (escaped tool-argument fragments included): only the id and model are
// copied, once per stream.
func TestUsageObserveAllocs(t *testing.T) {
	payloads := usagePayloads(t, vcr.MustLoad(usageParallelStream)[0].ResponseBody)
	allocs := testing.AllocsPerRun(50, func() {
		var tr openai.StreamTracker
		for _, p := range payloads {
			tr.Observe(p)
		}
		_ = tr.Usage()
	})
	if allocs > 2 {
		t.Errorf("%v allocations per stream, want ≤ 2", allocs)
	}
}

func BenchmarkUsageStreamTracker(b *testing.B) {
	body := vcr.MustLoad(usageParallelStream)[0].ResponseBody
	payloads := usagePayloads(b, body)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		var tr openai.StreamTracker
		for _, p := range payloads {
			tr.Observe(p)
		}
		_ = tr.Usage()
	}
}

// TestUsageDeepSeekCacheHits: DeepSeek reports its cache reads as
// prompt_cache_hit_tokens (prompt_tokens includes them, as OpenAI's does)
// without prompt_tokens_details; they are cache reads, on the
// non-streamed and the streamed path.
func TestUsageDeepSeekCacheHits(t *testing.T) {
	usage := `"usage":{"prompt_tokens":100,"completion_tokens":20,"total_tokens":120,"prompt_cache_hit_tokens":60,"prompt_cache_miss_tokens":40}`
	want := ir.Usage{InputTokens: 40, CacheReadInputTokens: 60, OutputTokens: 20}
	u, _, err := openai.ResponseUsage([]byte(`{"id":"c","object":"chat.completion","model":"deepseek-chat","choices":[{"index":0,"finish_reason":"stop","message":{"role":"assistant","content":"hi"}}],` + usage + `}`))
	if err != nil || u != want {
		t.Errorf("response usage = %+v, %v; want %+v", u, err, want)
	}
	var tr openai.StreamTracker
	tr.Observe([]byte(`{"id":"c","object":"chat.completion.chunk","model":"deepseek-chat","choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":"stop"}]}`))
	tr.Observe([]byte(`{"id":"c","object":"chat.completion.chunk","model":"deepseek-chat","choices":[],` + usage + `}`))
	if u := tr.Usage(); u != want {
		t.Errorf("stream usage = %+v, want %+v", u, want)
	}
	// Both given: prompt_tokens_details wins.
	u, _, _ = openai.ResponseUsage([]byte(`{"usage":{"prompt_tokens":100,"completion_tokens":1,"prompt_cache_hit_tokens":60,"prompt_tokens_details":{"cached_tokens":50}}}`))
	if u.CacheReadInputTokens != 50 || u.InputTokens != 50 {
		t.Errorf("with both counts: usage = %+v", u)
	}
}

// TestUsageEnvoyCacheWrites: Envoy AI Gateway, serving Claude on the
// OpenAI shape, reports cache writes as
// prompt_tokens_details.cache_creation_input_tokens, counted in
// prompt_tokens; they are cache writes, priced at the write rate, on the
// non-streamed and the streamed path.
func TestUsageEnvoyCacheWrites(t *testing.T) {
	usage := `"usage":{"prompt_tokens":7100,"completion_tokens":50,"total_tokens":7150,"prompt_tokens_details":{"cached_tokens":5000,"cache_creation_input_tokens":2000}}`
	want := ir.Usage{InputTokens: 100, CacheReadInputTokens: 5000, CacheCreationInputTokens: 2000, CacheCreation5mInputTokens: 2000, OutputTokens: 50}
	u, _, err := openai.ResponseUsage([]byte(`{"id":"c","object":"chat.completion","model":"claude-sonnet-4-5","choices":[{"index":0,"finish_reason":"stop","message":{"role":"assistant","content":"hi"}}],` + usage + `}`))
	if err != nil || u != want {
		t.Errorf("response usage = %+v, %v; want %+v", u, err, want)
	}
	var tr openai.StreamTracker
	tr.Observe([]byte(`{"id":"c","object":"chat.completion.chunk","model":"claude-sonnet-4-5","choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":"stop"}]}`))
	tr.Observe([]byte(`{"id":"c","object":"chat.completion.chunk","model":"claude-sonnet-4-5","choices":[],` + usage + `}`))
	if u := tr.Usage(); u != want {
		t.Errorf("stream usage = %+v, want %+v", u, want)
	}
	// Sonnet 4.5: 100 × $3/M + 2000 × $3.75/M + 5000 × $0.30/M + 50 × $15/M.
	cost, ok := pricing.Default().Cost("claude-sonnet-4-5", u)
	if !ok || math.Abs(cost-0.01005) > 1e-12 {
		t.Errorf("cost = %v (%v), want $0.01005", cost, ok)
	}
}

// TestUsageWithoutCounts: a usage object holding neither prompt_tokens nor
// completion_tokens ({} or only total_tokens, as some compatible servers
// and mock rules send) reports no usage, so the gateway estimates the call
// rather than price it at zero tokens; explicit zeros are counts.
func TestUsageWithoutCounts(t *testing.T) {
	for _, usage := range []string{`{}`, `{"total_tokens":30}`, `{"prompt_tokens":null}`} {
		body := `{"id":"c1","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"Hi"},"finish_reason":"stop"}],"usage":` + usage + `}`
		if u, _, err := openai.ResponseUsage([]byte(body)); err == nil {
			t.Errorf("usage %s: read as %+v, want an error (no counts)", usage, u)
		}
		var tr openai.StreamTracker
		tr.Observe([]byte(`{"id":"c1","choices":[{"index":0,"delta":{"content":"Hello there"},"finish_reason":"stop"}]}`))
		if !tr.Observe([]byte(`{"id":"c1","choices":[],"usage":` + usage + `}`)) {
			t.Errorf("usage %s: the usage-only chunk is not reported as one (a client that did not ask would see it)", usage)
		}
		// "Hello there" is 11 bytes: 3 tokens, estimated.
		if got := tr.Usage(); got != (ir.Usage{OutputTokens: 3, Estimated: true}) || !tr.Complete() {
			t.Errorf("usage %s: stream usage %+v complete %v, want 3 output tokens estimated, complete", usage, got, tr.Complete())
		}
	}
	u, _, err := openai.ResponseUsage([]byte(`{"id":"c1","choices":[],"usage":{"prompt_tokens":0,"completion_tokens":0}}`))
	if err != nil || u != (ir.Usage{}) {
		t.Errorf("explicit zeros: %+v %v, want zero usage read as reported", u, err)
	}
}

// TestDecodeLooseMembers: an id sent as a number and a created sent as a
// float or a numeric string (hand-written compatible servers, mock rules)
// do not fail the translation of an answer or a stream chunk: the id keeps
// its digits, created its whole seconds.
func TestDecodeLooseMembers(t *testing.T) {
	for _, tc := range []struct {
		id, created string
		wantID      string
		wantCreated int64
	}{
		{`12345`, `1700000000.25`, "12345", 1700000000},
		{`"c1"`, `"1700000000"`, "c1", 1700000000},
		{`null`, `"soon"`, "", 0},
	} {
		body := `{"id":` + tc.id + `,"created":` + tc.created + `,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":2}}`
		r, err := openai.DecodeResponse([]byte(body))
		if err != nil {
			t.Errorf("id %s created %s: %v", tc.id, tc.created, err)
			continue
		}
		if r.ID != tc.wantID || r.Created != tc.wantCreated || r.Usage.OutputTokens != 2 {
			t.Errorf("id %s created %s: got id %q created %d usage %+v", tc.id, tc.created, r.ID, r.Created, r.Usage)
		}
		var d openai.StreamDecoder
		evs, err := d.Decode([]byte(`{"id":`+tc.id+`,"created":`+tc.created+`,"model":"m","choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}`), nil)
		if err != nil || len(evs) == 0 || evs[0].Type != ir.EventMessageStart || evs[0].ID != tc.wantID {
			t.Errorf("chunk with id %s: %+v %v", tc.id, evs, err)
		}
	}
}
