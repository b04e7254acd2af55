package metis

// Dollars end to end (audit 22C): each test is a defect the audit found,
// worked by hand, and failed before its fix.

import (
	"context"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/responses"

	"github.com/metisgateway/metis/internal/fakeupstream"
)

// A gpt-5.6 answer on the Responses API reports its cache writes as
// usage.input_tokens_details.cache_write_tokens (openai-go v3.98.0's and v3.99.0's
// ResponseUsageInputTokensDetails.CacheWriteTokens, "api:required"; the
// gateway's own Responses encoder writes the same member), counted inside
// input_tokens as cached_tokens are. The ledger must bill them at the
// catalogue's cache-write price, as it does for the same usage on
// /v1/chat/completions (prompt_tokens_details.cache_write_tokens).
//
// gpt-5.6: $5 in, $0.50 cached, $6.25 cache write, $30 out per MTok.
// input 20,000 of which 8,000 cached and 10,000 written; output 500:
// 2,000 × 5e-6 + 8,000 × 0.5e-6 + 10,000 × 6.25e-6 + 500 × 30e-6
// = 0.01 + 0.004 + 0.0625 + 0.015 = 0.0915.
// The gateway used to price the 10,000 written tokens as plain input:
// 12,000 × 5e-6 + 0.004 + 0.015 = 0.079.
func TestCostAuditResponsesCacheWriteTokensPriced(t *testing.T) {
	for _, stream := range []bool{false, true} {
		t.Run(map[bool]string{false: "body", true: "stream"}[stream], func(t *testing.T) {
			g, up := e2eSetup(t, "")
			_, tok := e2eKey(g, "codex")
			usage := `{"input_tokens":20000,"input_tokens_details":{"cached_tokens":8000,"cache_write_tokens":10000},` +
				`"output_tokens":500,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":20500}`
			resp := `{"id":"resp_1","object":"response","created_at":1,"status":"completed","model":"gpt-5.6",` +
				`"output":[{"type":"message","id":"msg_1","status":"completed","role":"assistant","content":[{"type":"output_text","text":"hi","annotations":[]}]}],` +
				`"usage":` + usage + `,"service_tier":"default"}`
			if stream {
				up.Enqueue("/v1/responses", fakeupstream.Reply{Events: []string{
					"event: response.created\ndata: {\"type\":\"response.created\",\"sequence_number\":0,\"response\":{\"id\":\"resp_1\",\"object\":\"response\",\"status\":\"in_progress\",\"model\":\"gpt-5.6\",\"output\":[],\"usage\":null}}\n\n",
					"event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"sequence_number\":1,\"item_id\":\"msg_1\",\"output_index\":0,\"content_index\":0,\"delta\":\"hi\"}\n\n",
					"event: response.completed\ndata: {\"type\":\"response.completed\",\"sequence_number\":2,\"response\":" + resp + "}\n\n",
				}})
			} else {
				up.Enqueue("/v1/responses", fakeupstream.Reply{Body: resp})
			}
			c := xOpenAI(g, tok)
			params := responses.ResponseNewParams{Model: "gpt-5.6",
				Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("Say hello.")}}
			if stream {
				s := c.Responses.NewStreaming(context.Background(), params)
				for s.Next() {
				}
				if err := s.Err(); err != nil {
					t.Fatal(err)
				}
			} else if _, err := c.Responses.New(context.Background(), params); err != nil {
				t.Fatal(err)
			}
			call := e2eCalls(g, 1)[0]
			e2eWant(t, "call", call, map[string]any{"input_tokens": 2000, "cache_read_input_tokens": 8000,
				"cache_creation_input_tokens": 10000, "output_tokens": 500})
			if cost := e2eCost(t, call); !e2eNear(cost, 0.0915) {
				t.Errorf("cost_usd %v, want 0.0915 (10,000 cache-write tokens at $6.25/MTok)", cost)
			}
		})
	}
}

// gpt-5.5 and gpt-5.6 take prompts up to 1,050,000 tokens (the
// catalogue's own max_input_tokens) and, like gpt-5.4, are billed at a
// long-context rate past 272,000 (wire-notes §4.1: "*_above_272k_tokens
// (GPT-5.4+)"; LiteLLM's gpt-5.5 entry: input 1e-05, cached 1e-06, output
// 4.5e-05 above 272k; gpt-5.6 the same plus cache writes 1.25e-05). The
// embedded catalogue gave both models no *_above_272k_tokens column, so
// a long prompt was recorded at the short-prompt rate, about half of what
// OpenAI bills.
//
// prompt 300,000 (100,000 cached), completion 2,000:
// want 200,000 × 10e-6 + 100,000 × 1e-6 + 2,000 × 45e-6 = 2.0 + 0.1 + 0.09 = 2.19
// was  200,000 × 5e-6  + 100,000 × 0.5e-6 + 2,000 × 30e-6 = 1.0 + 0.05 + 0.06 = 1.11
func TestCostAuditGPT55LongContextTier(t *testing.T) {
	for _, model := range []string{"gpt-5.5", "gpt-5.6"} {
		t.Run(model, func(t *testing.T) {
			g, up := e2eSetup(t, "")
			_, tok := e2eKey(g, "dev")
			up.Enqueue("/v1/chat/completions", fakeupstream.Reply{Body: `{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"` + model + `",` +
				`"service_tier":"default","choices":[{"index":0,"finish_reason":"stop","message":{"role":"assistant","content":"ok"}}],` +
				`"usage":{"prompt_tokens":300000,"completion_tokens":2000,"total_tokens":302000,"prompt_tokens_details":{"cached_tokens":100000}}}`})
			c := xOpenAI(g, tok)
			if _, err := c.Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{Model: openai.ChatModel(model),
				Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("long prompt")}}); err != nil {
				t.Fatal(err)
			}
			call := e2eCalls(g, 1)[0]
			if cost := e2eCost(t, call); !e2eNear(cost, 2.19) {
				t.Errorf("%s: cost_usd %v for a 300,000-token prompt, want 2.19 (the >272k rates)", model, cost)
			}
		})
	}
}

// The same models' priority processing (the response's service_tier
// "priority") is billed at 2.5× (LiteLLM gpt-5.5: input 1.25e-05, output
// 7.5e-05); without a *_priority column the ledger silently used the
// standard price.
//
// prompt 10,000, completion 1,000, service_tier priority:
// want 10,000 × 12.5e-6 + 1,000 × 75e-6 = 0.125 + 0.075 = 0.2
// was  10,000 × 5e-6    + 1,000 × 30e-6 = 0.05 + 0.03 = 0.08
func TestCostAuditGPT55PriorityTier(t *testing.T) {
	g, up := e2eSetup(t, "")
	_, tok := e2eKey(g, "dev")
	up.Enqueue("/v1/chat/completions", fakeupstream.Reply{Body: `{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-5.5",` +
		`"service_tier":"priority","choices":[{"index":0,"finish_reason":"stop","message":{"role":"assistant","content":"ok"}}],` +
		`"usage":{"prompt_tokens":10000,"completion_tokens":1000,"total_tokens":11000}}`})
	c := xOpenAI(g, tok)
	if _, err := c.Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{Model: "gpt-5.5",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")}}); err != nil {
		t.Fatal(err)
	}
	if cost := e2eCost(t, e2eCalls(g, 1)[0]); !e2eNear(cost, 0.2) {
		t.Errorf("cost_usd %v for a priority-tier gpt-5.5 call, want 0.2", cost)
	}
}

// Server-side compaction (context_management compact_20260112): Anthropic
// samples twice in one request, and the summarising pass is reported only
// in usage.iterations. anthropic-sdk-go v2.15.0 (BetaUsage.Iterations):
// "A `compaction` entry's tokens are not included in the top-level
// `usage` fields." The ledger read the top-level fields alone, so the
// compaction pass, usually the larger part of the bill, was recorded at $0.
//
// claude-opus-4-6 ($5 in, $25 out per MTok); top level 23,000 in / 1,000
// out, compaction iteration 180,000 in / 3,500 out (the docs' example):
// billed (23,000 + 180,000) × 5e-6 + (1,000 + 3,500) × 25e-6
//
//	= 1.015 + 0.1125 = 1.1275
//
// was recorded 23,000 × 5e-6 + 1,000 × 25e-6 = 0.115 + 0.025 = 0.14
func TestCostAuditCompactionIterationBilled(t *testing.T) {
	usage := `{"input_tokens":23000,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":1000,` +
		`"iterations":[{"type":"compaction","input_tokens":180000,"output_tokens":3500,"cache_creation_input_tokens":0,"cache_read_input_tokens":0},` +
		`{"type":"message","input_tokens":23000,"output_tokens":1000,"cache_creation_input_tokens":0,"cache_read_input_tokens":0}]}`
	for _, stream := range []bool{false, true} {
		t.Run(map[bool]string{false: "body", true: "stream"}[stream], func(t *testing.T) {
			g, up := e2eSetup(t, "")
			_, tok := e2eKey(g, "dev")
			if stream {
				up.Enqueue("/v1/messages", fakeupstream.Reply{Events: []string{
					"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-opus-4-6\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":23000,\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0,\"output_tokens\":1}}}\n\n",
					"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
					"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"ok\"}}\n\n",
					"event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
					"event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":" + usage + "}\n\n",
					"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
				}})
			} else {
				up.Enqueue("/v1/messages", fakeupstream.Reply{Body: `{"id":"msg_1","type":"message","role":"assistant","model":"claude-opus-4-6",` +
					`"content":[{"type":"text","text":"ok"}],"stop_reason":"end_turn","stop_sequence":null,"usage":` + usage + `}`})
			}
			body := `{"model":"claude-opus-4-6","max_tokens":1024,"stream":` + map[bool]string{false: "false", true: "true"}[stream] +
				`,"context_management":{"edits":[{"type":"compact_20260112"}]},"messages":[{"role":"user","content":"go on"}]}`
			resp := g.post("/v1/messages", tok, body, "anthropic-beta", "compact-2026-01-12")
			if resp.StatusCode != 200 {
				t.Fatalf("status %d: %s", resp.StatusCode, e2eRead(t, resp))
			}
			e2eRead(t, resp)
			if cost := e2eCost(t, e2eCalls(g, 1)[0]); !e2eNear(cost, 1.1275) {
				t.Errorf("cost_usd %v, want 1.1275 (the compaction iteration's 180,000 in / 3,500 out billed too)", cost)
			}
		})
	}
}

// A fast-mode call served in the US costs 6.6× the rate card on Opus 4.6
// (speed "fast" ×6, inference_geo "us" ×1.1, README "Trace events"), but
// the llm.call_completed payload did not record speed or inference_geo
// (wire-notes §3.5: billing stores Anthropic's {in, cw5m, cw1h, cr, out,
// service_tier, inference_geo, speed}), so the recorded cost could not be
// reproduced from the trace: from the payload's tokens,
// 50 × 5e-6 + 1,000 × 0.5e-6 + 500 × 6.25e-6 + 1,500 × 10e-6 + 300 × 25e-6
// = 0.026375, while cost_usd is 0.174075 (= 0.026375 × 6.6).
func TestCostAuditPriceMultipliersRecorded(t *testing.T) {
	g, up := e2eSetup(t, "")
	_, tok := e2eKey(g, "dev")
	up.Enqueue("/v1/messages", fakeupstream.Reply{Body: `{"id":"msg_1","type":"message","role":"assistant","model":"claude-opus-4-6",` +
		`"content":[{"type":"text","text":"ok"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":50,` +
		`"cache_read_input_tokens":1000,"cache_creation_input_tokens":2000,"cache_creation":{"ephemeral_5m_input_tokens":500,` +
		`"ephemeral_1h_input_tokens":1500},"output_tokens":300,"service_tier":"standard","inference_geo":"us","speed":"fast"}}`})
	resp := g.post("/v1/messages", tok, `{"model":"claude-opus-4-6","max_tokens":1024,"speed":"fast","inference_geo":"us",`+
		`"messages":[{"role":"user","content":"hi"}]}`, "anthropic-beta", "fast-mode-2026-02-01")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, e2eRead(t, resp))
	}
	e2eRead(t, resp)
	call := e2eCalls(g, 1)[0]
	if cost := e2eCost(t, call); !e2eNear(cost, 0.174075) {
		t.Fatalf("cost_usd %v, want 0.174075", cost)
	}
	e2eWant(t, "llm.call_completed", call, map[string]any{"speed": "fast", "inference_geo": "us"})
}

// A compaction pass and the answer's pass are two sampling passes, each
// billed on its own input; the long-context tier (Haiku 5.5's
// *_above_100k_tokens) applies to a pass whose own input exceeds 100,000.
// Here neither does (compaction 90,000, answer 20,000); the gateway's
// first reading of compaction summed them before pricing, and the summed
// 110,000 put the whole call in the >100k column (review 22R2).
//
// claude-haiku-5-5: $0.10 in, $0.50 out per MTok (>100k: $0.50, $2.50).
// want (20,000 + 90,000) × 1e-7 + (1,000 + 2,000) × 5e-7 = 0.011 + 0.0015 = 0.0125
// was  110,000 × 5e-7 + 3,000 × 2.5e-6 = 0.055 + 0.0075 = 0.0625
func TestCostAuditCompactionTierPerPass(t *testing.T) {
	usage := `{"input_tokens":20000,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":1000,` +
		`"iterations":[{"type":"compaction","input_tokens":90000,"output_tokens":2000,"cache_creation_input_tokens":0,"cache_read_input_tokens":0},` +
		`{"type":"message","input_tokens":20000,"output_tokens":1000,"cache_creation_input_tokens":0,"cache_read_input_tokens":0}]}`
	g, up := e2eSetup(t, "")
	_, tok := e2eKey(g, "dev")
	up.Enqueue("/v1/messages", fakeupstream.Reply{Body: `{"id":"msg_1","type":"message","role":"assistant","model":"claude-haiku-5-5",` +
		`"content":[{"type":"text","text":"ok"}],"stop_reason":"end_turn","stop_sequence":null,"usage":` + usage + `}`})
	body := `{"model":"claude-haiku-5-5","max_tokens":1024,` +
		`"context_management":{"edits":[{"type":"compact_20260112","trigger":{"type":"input_tokens","value":80000}}]},"messages":[{"role":"user","content":"go on"}]}`
	resp := g.post("/v1/messages", tok, body, "anthropic-beta", "compact-2026-01-12")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, e2eRead(t, resp))
	}
	e2eRead(t, resp)
	call := e2eCalls(g, 1)[0]
	if cost := e2eCost(t, call); !e2eNear(cost, 0.0125) {
		t.Errorf("cost_usd %v, want 0.0125: a 90,000-token compaction pass and a 20,000-token answer pass are each below "+
			"Haiku 5.5's 100k tier (the summed 110,000 gives 0.0625)", cost)
	}
}
