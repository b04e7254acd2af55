package metis

import (
	"strings"
	"testing"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/metisgateway/metis/internal/vcr"
	"github.com/metisgateway/metis/ir"
	"github.com/metisgateway/metis/pricing"
)

// The reservation a budgeted call makes must cover what the provider bills
// for it, or concurrent calls overshoot a hard limit. Each recorded request
// is sent with max_tokens cut to the output the provider reported, so only
// the prompt's estimate stands between the reservation and the bill.
func TestWorstCaseCoversRecordedCalls(t *testing.T) {
	cat := pricing.Default()
	rows := []struct {
		fixture string
		i       int
		usage   ir.Usage // as recorded (see pricing's TestCostFixtures)
	}{
		// 384-byte body with one tool, billed 402 input tokens: the tool
		// prompt the provider adds is most of it.
		{"anthropic_nonstream_tool_use_two_turns.vcr.yaml", 0, ir.Usage{InputTokens: 402, OutputTokens: 89}},
		{"anthropic_nonstream_tool_use_two_turns.vcr.yaml", 1, ir.Usage{InputTokens: 514, OutputTokens: 19}},
		{"anthropic_stream_text_then_tool_use.vcr.yaml", 0, ir.Usage{InputTokens: 394, OutputTokens: 79}},
		{"openai_nonstream_tool_call_reasoning_usage.vcr.yaml", 0, ir.Usage{InputTokens: 162, OutputTokens: 287, ReasoningTokens: 256}},
		{"openai_stream_gpt5nano_usage_chunk.vcr.yaml", 0, ir.Usage{InputTokens: 12, OutputTokens: 100}},
	}
	for _, r := range rows {
		body := vcr.MustLoad(r.fixture)[r.i].RequestBody
		model := gjson.Get(body, "model").String()
		field := "max_tokens"
		if strings.HasPrefix(model, "gpt") {
			field = "max_completion_tokens"
		}
		body, err := sjson.Set(body, field, r.usage.OutputTokens)
		if err != nil {
			t.Fatal(err)
		}
		billed, ok := cat.Cost(model, r.usage)
		if !ok {
			t.Fatalf("%s: %s has no price", r.fixture, model)
		}
		reserved, ok := worstCaseCost(cat, model, []byte(body), worstCaseOptions{})
		if !ok || reserved < billed {
			t.Errorf("%s #%d (%d bytes): reserved $%.7f (priced %v), billed $%.7f", r.fixture, r.i, len(body), reserved, ok, billed)
		}
	}
}

// A request that asks for caching may be billed its whole prompt as cache
// writes (2× the input price for a 1-hour TTL), a fast-mode request at the
// speed multiplier, and a web_search tool per search: the reservation
// covers each.
func TestWorstCasePricesWhatTheBodyAsksFor(t *testing.T) {
	cat := pricing.Default()
	const model = "claude-opus-4-6"
	body := func(system, extra string) string {
		return `{"model":"` + model + `","max_tokens":100,` + extra + `"system":[{"type":"text","text":"` +
			strings.Repeat("You are a careful assistant. ", 200) + `"` + system + `}],"messages":[{"role":"user","content":"hi"}]}`
	}
	cached := body(`,"cache_control":{"type":"ephemeral","ttl":"1h"}`, "")
	plain := body("", "")
	prompt := int64(len(plain) / 4) // the prompt as English prose tokenizes
	cases := []struct {
		name  string
		body  string
		usage ir.Usage
	}{
		{"whole prompt written to the 1-hour cache", cached,
			ir.Usage{CacheCreationInputTokens: prompt, CacheCreation1hInputTokens: prompt, OutputTokens: 100}},
		{"fast mode, US-only", body("", `"speed":"fast","inference_geo":"us",`),
			ir.Usage{InputTokens: prompt, OutputTokens: 100, Speed: "fast", InferenceGeo: "us"}},
		{"web search without max_uses", body("", `"tools":[{"type":"web_search_20250305","name":"web_search"}],`),
			ir.Usage{InputTokens: prompt + 400, OutputTokens: 100, WebSearchRequests: 8}},
	}
	for _, c := range cases {
		if !gjson.Valid(c.body) {
			t.Fatalf("%s: invalid JSON %s", c.name, c.body)
		}
		billed, ok := cat.Cost(model, c.usage)
		if !ok {
			t.Fatalf("%s has no price", model)
		}
		reserved, _ := worstCaseCost(cat, model, []byte(c.body), worstCaseOptions{})
		if reserved < billed {
			t.Errorf("%s: reserved $%.6f, billed $%.6f", c.name, reserved, billed)
		}
	}
	// OpenAI bills the output of every choice: n=8 choices of up to 4000
	// tokens each on gpt-5-mini ($2/MTok output) may cost 8 × 4000 × $2/MTok.
	nBody := `{"model":"gpt-5-mini","n":8,"max_completion_tokens":4000,"messages":[{"role":"user","content":"hi"}]}`
	billed, _ := cat.Cost("gpt-5-mini", ir.Usage{InputTokens: 10, OutputTokens: 8 * 4000})
	if reserved, _ := worstCaseCost(cat, "gpt-5-mini", []byte(nBody), worstCaseOptions{autoCache: true}); reserved < billed {
		t.Errorf("n=8: reserved $%.6f, billed up to $%.6f", reserved, billed)
	}
	if _, ok := worstCaseCost(cat, "no-such-model-anywhere", []byte(plain), worstCaseOptions{}); ok {
		t.Error("an unpriced model got a worst case")
	}
}

// TestWorstCaseCoversWhatTheProviderAddsItself: content the body only
// names — a document or image the provider fetches by URL or file id, a
// web_fetch tool — and OpenAI's automatic cache writes are billed far
// beyond the body's bytes; the reservation covers them, or concurrent calls
// spend past a hard limit (audit 11M: five calls naming a 100-page PDF each
// spent $2.26 under a $0.50 limit).
func TestWorstCaseCoversWhatTheProviderAddsItself(t *testing.T) {
	cat := pricing.Default()
	const sonnet = "claude-3-7-sonnet-20250219" // $3 / $15 per MTok, 200k context
	cases := []struct {
		name, model, body string
		autoCache         bool
		usage             ir.Usage
	}{
		// A 100-page PDF by URL: about 1,500 tokens a page.
		{"document by URL", sonnet, `{"model":"sonnet","max_tokens":100,"messages":[{"role":"user","content":[` +
			`{"type":"document","source":{"type":"url","url":"https://example.com/report.pdf"}},{"type":"text","text":"Summarise."}]}]}`,
			false, ir.Usage{InputTokens: 150000, OutputTokens: 100}},
		{"document by file id", sonnet, `{"model":"sonnet","max_tokens":100,"messages":[{"role":"user","content":[` +
			`{"type":"document","source":{"type":"file","file_id":"file_011"}}]}]}`,
			false, ir.Usage{InputTokens: 150000, OutputTokens: 100}},
		{"document in a tool result", sonnet, `{"model":"sonnet","max_tokens":100,"messages":[{"role":"user","content":[` +
			`{"type":"tool_result","tool_use_id":"t1","content":[{"type":"document","source":{"type":"url","url":"https://x/y.pdf"}}]}]}]}`,
			false, ir.Usage{InputTokens: 150000, OutputTokens: 100}},
		{"OpenAI file part", "gpt-4o", `{"model":"gpt-4o","max_completion_tokens":100,"messages":[{"role":"user","content":[` +
			`{"type":"file","file":{"file_id":"file-abc"}}]}]}`,
			false, ir.Usage{InputTokens: 120000, OutputTokens: 100}},
		{"web_fetch without max_content_tokens", sonnet, `{"model":"sonnet","max_tokens":100,"tools":[{"type":"web_fetch_20250910","name":"web_fetch"}],` +
			`"messages":[{"role":"user","content":"Read https://example.com"}]}`,
			false, ir.Usage{InputTokens: 100000, OutputTokens: 100}},
		// Three images by URL at Anthropic's ~1,600 tokens each.
		{"images by URL", sonnet, `{"model":"sonnet","max_tokens":100,"messages":[{"role":"user","content":[` +
			strings.Repeat(`{"type":"image","source":{"type":"url","url":"https://example.com/a.png"}},`, 3) + `{"type":"text","text":"Compare."}]}]}`,
			false, ir.Usage{InputTokens: 3 * 1600, OutputTokens: 100}},
		{"OpenAI image_url by URL", "gpt-4o", `{"model":"gpt-4o","max_completion_tokens":100,"messages":[{"role":"user","content":[` +
			`{"type":"image_url","image_url":{"url":"https://example.com/a.png","detail":"high"}}]}]}`,
			false, ir.Usage{InputTokens: 1500, OutputTokens: 100}},
		// The provider reads names and values with their escapes decoded
		// (audit 12C: this spelling spent $0.45 under a $0.10 limit).
		{"document by URL, names escaped", sonnet, `{"model":"sonnet","max_tokens":100,"messages":[{"role":"user","content":[` +
			`{"type":"document","source":{"type":"u\u0072l","u\u0072l":"https://example.com/report.pdf"}}]}]}`,
			false, ir.Usage{InputTokens: 150000, OutputTokens: 100}},
		{"1-hour cache writes asked with an escaped name", sonnet, `{"model":"sonnet","max_tokens":1,"system":[{"type":"text","text":"` +
			strings.Repeat("x", 19900) + `","cache\u005fcontrol":{"type":"ephemeral","ttl":"1h"}}],"messages":[{"role":"user","content":"hi"}]}`,
			false, ir.Usage{CacheCreationInputTokens: 10000, CacheCreation1hInputTokens: 10000, OutputTokens: 1}},
		// gpt-5.6 bills cache writes at $6.25 against $5/MTok input, with
		// no cache_control in the body: a prompt at the two-bytes-a-token
		// bound, all of it written.
		{"OpenAI automatic cache writes", "gpt-5.6", `{"model":"g","max_completion_tokens":1,"messages":[{"role":"user","content":"` +
			strings.Repeat("x", 19920) + `"}]}`,
			true, ir.Usage{CacheCreationInputTokens: 10000, CacheCreation5mInputTokens: 10000, OutputTokens: 1}},
	}
	for _, c := range cases {
		if !gjson.Valid(c.body) {
			t.Fatalf("%s: invalid JSON", c.name)
		}
		billed, ok := cat.Cost(c.model, c.usage)
		if !ok {
			t.Fatalf("%s has no price", c.model)
		}
		if reserved, _ := worstCaseCost(cat, c.model, []byte(c.body), worstCaseOptions{autoCache: c.autoCache}); reserved < billed {
			t.Errorf("%s: reserved $%.6f, billed up to $%.6f", c.name, reserved, billed)
		}
	}
	// A data URI is in the body and counted by its bytes; a model whose
	// provider bills no cache writes is not reserved for them.
	inline := `{"model":"gpt-4o","max_completion_tokens":1,"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}}]}]}`
	plain, _ := worstCaseCost(cat, "gpt-4o", []byte(inline), worstCaseOptions{})
	if auto, _ := worstCaseCost(cat, "gpt-4o", []byte(inline), worstCaseOptions{autoCache: true}); auto != plain || plain > 0.001 {
		t.Errorf("a tiny inline image on gpt-4o reserved $%v ($%v with automatic caching, which gpt-4o does not bill)", plain, auto)
	}
}

// TestWorstCaseTakesTheLargerOutputLimit: a body may name both max_tokens
// and max_completion_tokens, and the adapters and providers read them by
// different rules (an OpenAI-shape max_completion_tokens of 0 becomes a
// Claude model's whole output limit; an Anthropic-shape body's
// max_completion_tokens is ignored on the way to OpenAI). The reservation
// takes the larger, a limit of 0 or less counting as the model's own (audit
// 12C: $0.30 spent under a $0.05 limit).
func TestWorstCaseTakesTheLargerOutputLimit(t *testing.T) {
	cat := pricing.Default()
	haiku, _ := cat.Lookup("claude-haiku-4-5")
	cases := []struct {
		model, body string
		out         int64
	}{
		{"claude-haiku-4-5", `{"model":"haiku","max_completion_tokens":0,"max_tokens":1,"messages":[]}`, int64(haiku.MaxOutputTokens)},
		{"claude-haiku-4-5", `{"model":"haiku","max_completion_tokens":1,"max_tokens":0,"messages":[]}`, int64(haiku.MaxOutputTokens)},
		{"gpt-5-mini", `{"model":"gpt-5-mini","max_tokens":100000,"max_completion_tokens":1,"messages":[]}`, 100000},
	}
	for _, c := range cases {
		billed, ok := cat.Cost(c.model, ir.Usage{InputTokens: 10, OutputTokens: c.out})
		if !ok {
			t.Fatalf("%s has no price", c.model)
		}
		if reserved, _ := worstCaseCost(cat, c.model, []byte(c.body), worstCaseOptions{}); reserved < billed {
			t.Errorf("%s %s: reserved $%.6f, billed up to $%.6f (%d output tokens)", c.model, c.body, reserved, billed, c.out)
		}
	}
	// A null limit is one not given (the adapters and providers read it so):
	// the other stands, and a budget does not refuse the call for the
	// model's whole output limit.
	body := `{"model":"haiku","max_tokens":100,"max_completion_tokens":null,"messages":[]}`
	whole, _ := cat.Cost("claude-haiku-4-5", ir.Usage{OutputTokens: int64(haiku.MaxOutputTokens)})
	if reserved, _ := worstCaseCost(cat, "claude-haiku-4-5", []byte(body), worstCaseOptions{}); reserved > whole/100 {
		t.Errorf("%s: reserved $%.6f, the model's whole output limit costs $%.6f", body, reserved, whole)
	}
}

// TestWorstCaseOfTranslatedClaudeCall: an OpenAI-shape request translated
// to a Claude model gets Anthropic's automatic caching (prompt_cache), so
// its prompt may be written to the cache at 1.25× the input price: the
// reservation covers that, and without automatic caching it need not.
func TestWorstCaseOfTranslatedClaudeCall(t *testing.T) {
	cat := pricing.Default()
	body := []byte(`{"model":"haiku","max_tokens":1,"messages":[{"role":"user","content":"` + strings.Repeat("x", 19920) + `"}]}`)
	// 10,000 tokens at the two-bytes-a-token bound, all written to the cache.
	billed, ok := cat.Cost("claude-haiku-4-5", ir.Usage{CacheCreationInputTokens: 10000, CacheCreation5mInputTokens: 10000, OutputTokens: 1})
	if !ok {
		t.Fatal("claude-haiku-4-5 has no price")
	}
	c := &call{g: &Gateway{app: &App{prices: cat}}, cross: true,
		res: &resolved{model: "claude-haiku-4-5", prov: &provider{typ: shapeAnthropic}}}
	if reserved, _ := c.worstCase(body); reserved < billed {
		t.Errorf("translated call reserved $%.6f, billed up to $%.6f with automatic caching", reserved, billed)
	}
	c.res.prov.compat.noAutoCache = true
	if reserved, _ := c.worstCase(body); reserved >= billed {
		t.Errorf("with prompt_cache off reserved $%.6f, as much as with cache writes ($%.6f)", reserved, billed)
	}
}
