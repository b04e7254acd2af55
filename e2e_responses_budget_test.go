package metis

// Budgets, pricing and failures of OpenAI's Responses API, and a Chat
// Completions body's Responses-only limit.

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/metisgateway/metis/budget"
	"github.com/metisgateway/metis/internal/fakeupstream"
	"github.com/metisgateway/metis/store"
)

// A Chat Completions body has no max_output_tokens (a Responses API
// field): the Chat → Claude translator ignores it and sends max_tokens =
// the model's output limit (64,000 for claude-haiku-4-5), so it does not
// lower the call's reservation either (review 17R2).
//
// claude-haiku-4-5: $1 in, $5 out per MTok. Without the field the worst
// case is $0.320078 (64,000 × 5e-6 = $0.32 + 78 input tokens at most),
// over the $0.05 hard limit: refused. With max_output_tokens 1 it is
// reserved as 50 × 1e-6 + 1 × 5e-6 = $0.000055 and goes through, though
// the provider may bill $0.32.
func TestChatMaxOutputTokensDoesNotShrinkReservation(t *testing.T) {
	g, up := e2eSetup(t, "")
	k, tok := e2eKey(g, "capped")
	capKey(t, g, k, 0.05)
	up.Enqueue("/v1/messages", fakeupstream.FromFixture(fakeupstream.FixtureAnthropicNonStream, 0))
	plain := `{"model":"haiku","messages":[{"role":"user","content":"Write a long story."}]}`
	withField := `{"model":"haiku","max_output_tokens":1,"messages":[{"role":"user","content":"Write a long story."}]}`
	resp := g.post("/v1/chat/completions", tok, plain)
	// A call that can never fit: a 400 in OpenAI's shape (29O).
	if b := e2eRead(t, resp); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("without max_output_tokens: %d %s, want the 400 of a call over the whole hard limit", resp.StatusCode, b)
	}
	resp = g.post("/v1/chat/completions", tok, withField)
	b := e2eRead(t, resp)
	var sent string
	if r := up.RequestsTo("/v1/messages"); len(r) > 0 {
		sent = gjson.Get(r[0].Body, "max_tokens").Raw
	}
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("with max_output_tokens 1 (ignored on Chat Completions; the provider got max_tokens %s): %d %.160s; want 400 as without it",
			sent, resp.StatusCode, b)
	}
}

// A Responses API body can bill input it does not hold: the
// stored conversation of previous_response_id (or conversation), a file
// by file_id or file_url. Like a document by URL on /v1/messages
// (TestBudgetHoldsForDocumentsByURL) each must reserve the context
// window, or calls in flight together pass a hard limit (review 17R2,
// confirmation 17L2: $0.10 spent under a $0.05 limit).
//
// gpt-5: $1.25 in, $10 out per MTok. Each call is billed 150,000 input
// tokens (a long stored conversation, a 100-page PDF) and 100 out:
// 150,000 × 1.25e-6 + 100 × 1e-5 = $0.1885. The window bound is 272,000 ×
// 1.25e-6 + 100 × 1e-5 = $0.341, so under a $0.50 hard limit one such
// call runs at a time; five at once must not spend past $0.50 + $0.1885.
func TestResponsesBudgetHoldsForInputOutsideTheBody(t *testing.T) {
	for _, tc := range []struct{ name, body string }{
		{"previous_response_id", `{"model":"big","max_output_tokens":100,"previous_response_id":"resp_68af0c1e2b","input":"Go on."}`},
		{"conversation", `{"model":"big","max_output_tokens":100,"conversation":"conv_68af0c1e2b","input":"Go on."}`},
		{"input_file", `{"model":"big","max_output_tokens":100,"input":[{"role":"user","content":[` +
			`{"type":"input_file","file_id":"file-6F2ksmvXxt4VdoqmHRw6kL"},{"type":"input_text","text":"Summarise this report."}]}]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, up := e2eSetup(t, "alias big openai:gpt-5")
			k, tok := e2eKey(g, "resp-"+tc.name)
			const hard = 0.50
			setBudget(t, g.DB, budget.Budget{Scope: "key", Subject: k.ID, Window: "daily", Hard: hard})
			waitApplies(t, g, budget.Identity{KeyID: k.ID})
			const perCall = 0.1885
			answer := fakeupstream.ResponsesAnswer{Model: "gpt-5-2025-08-07", InputTokens: 150000, Text: strings.Repeat("abcd", 99)}.Body()
			answer.Delay = 200 * time.Millisecond
			const calls = 5
			for range calls {
				up.Enqueue("/v1/responses", answer)
			}
			codes := g.postConcurrently(calls, "/v1/responses", tok, tc.body)
			g.waitEvents(store.TypeCallCompleted, codes[200])
			q := keyQuota(t, g, k)
			if codes[200] < 1 || codes[200]+codes[429] != calls || q.Spent > hard+perCall || !e2eNear(q.Spent, float64(codes[200])*perCall) {
				t.Errorf("statuses %v, $%v spent under a $%v hard limit; want some refused with 429 and at most $%v + one call's $%v",
					codes, q.Spent, hard, hard, perCall)
			}
		})
	}
}

// The web_search_call items of a response are counted
// (web_search_requests) and priced: OpenAI bills the web search tool $10
// per 1,000 calls (plus the search content as input tokens, which the
// usage already holds; review 17R2).
//
// gpt-5-mini: 8,000 in × 0.25e-6 + 2,000 cached × 0.025e-6 + 105 out ×
// 2e-6 = 0.002 + 0.00005 + 0.00021 = $0.00226, plus 2 × $0.01 = $0.02226.
func TestResponsesWebSearchCallsPriced(t *testing.T) {
	g, up := e2eSetup(t, "alias mini openai:gpt-5-mini")
	_, tok := e2eKey(g, "search")
	a := fakeupstream.ResponsesAnswer{Model: "gpt-5-mini-2025-08-07", InputTokens: 10000, CachedTokens: 2000, ReasoningTokens: 100,
		Text: "hello there friend"}.Body()
	for _, q := range []string{"metis gateway", "caddy modules"} {
		a.Body, _ = sjson.SetRaw(a.Body, "output.-1",
			`{"type":"web_search_call","id":"ws_`+fakeupstream.NewID("")+`","status":"completed","action":{"type":"search","query":"`+q+`"}}`)
	}
	up.Enqueue("/v1/responses", a)
	resp := g.post("/v1/responses", tok, `{"model":"mini","input":"What is new?","tools":[{"type":"web_search"}]}`)
	if b := e2eRead(t, resp); resp.StatusCode != http.StatusOK {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
	call := e2eCalls(g, 1)[0]
	if num(call, "web_search_requests") != 2 {
		t.Errorf("web_search_requests %v, want 2", call["web_search_requests"])
	}
	if cost := e2eCost(t, call); !e2eNear(cost, 0.02226) {
		t.Errorf("cost_usd %v, want $0.02226 (tokens $0.00226 + 2 web searches at $0.01)", cost)
	}
}

// A failed response with usage is priced from its usage, streamed
// (response.failed) or not: the response object, whose error member is an
// object, is not an error body (review 17R2). The same answer costs the
// same either way.
//
// gpt-5-mini: 8,000 × 0.25e-6 + 2,000 × 0.025e-6 + 105 × 2e-6 = $0.00226.
func TestResponsesFailedResponsePricedAsWhenStreamed(t *testing.T) {
	g, up := e2eSetup(t, "alias mini openai:gpt-5-mini")
	_, tok := e2eKey(g, "failed")
	a := fakeupstream.ResponsesAnswer{Model: "gpt-5-mini-2025-08-07", InputTokens: 10000, CachedTokens: 2000, ReasoningTokens: 100,
		Text: "hello there friend"}
	streamed := a.Stream()
	last := streamed.Events[len(streamed.Events)-1]
	for _, r := range [][2]string{
		{"event: response.completed", "event: response.failed"}, {`"type":"response.completed"`, `"type":"response.failed"`},
		{`"status":"completed","store"`, `"status":"failed","store"`},
		{`"error":null`, `"error":{"code":"server_error","message":"The model failed to generate a response."}`},
	} {
		last = strings.Replace(last, r[0], r[1], 1)
	}
	streamed.Events[len(streamed.Events)-1] = last
	body := a.Body()
	body.Body, _ = sjson.Set(body.Body, "status", "failed")
	body.Body, _ = sjson.SetRaw(body.Body, "error", `{"code":"server_error","message":"The model failed to generate a response."}`)
	up.Enqueue("/v1/responses", streamed, body)
	for _, b := range []string{`{"model":"mini","input":"x","stream":true}`, `{"model":"mini","input":"x"}`} {
		resp := g.post("/v1/responses", tok, b)
		e2eRead(t, resp)
	}
	calls := e2eCalls(g, 2)
	for i, what := range []string{"streamed", "not streamed"} {
		if cost := e2eCost(t, calls[i]); !e2eNear(cost, 0.00226) {
			t.Errorf("%s failed response: cost_usd %v (input_tokens %v, error_class %v), want $0.00226 from its usage",
				what, cost, calls[i]["input_tokens"], calls[i]["error_class"])
		}
	}
}

// OpenAI's Responses streams send their error event with the error
// nested ({"type":"error","error":{"type","code","message"}},
// openai/openai-dotnet#881), where its reference documents it flat: a rate
// limit mid-stream is RATE_LIMITED either way (review 17R2).
func TestResponsesNestedStreamErrorRateLimited(t *testing.T) {
	g, up := e2eSetup(t, "")
	_, tok := e2eKey(g, "nested")
	for _, data := range []string{
		`{"type":"error","code":"rate_limit_exceeded","message":"Rate limit reached","param":null,"sequence_number":2}`,
		`{"type":"error","sequence_number":2,"error":{"type":"tokens","code":"rate_limit_exceeded","message":"Rate limit reached","param":null}}`,
	} {
		s := fakeupstream.ResponsesAnswer{Model: "gpt-5-nano-2025-08-07", InputTokens: 900, Text: "one two"}.Stream()
		s.Events = append(s.Events[:2:2], "event: error\ndata: "+data+"\n\n")
		up.Enqueue("/v1/responses", s)
		resp := g.post("/v1/responses", tok, `{"model":"nano","stream":true,"input":"Count."}`)
		e2eRead(t, resp)
	}
	calls := e2eCalls(g, 2)
	for i, form := range []string{"flat", "nested"} {
		if calls[i]["error_class"] != "RATE_LIMITED" {
			t.Errorf("%s error event: error_class %v, want RATE_LIMITED", form, calls[i]["error_class"])
		}
	}
}

// A Responses call whose worst case alone is over the whole hard limit is
// told to lower max_output_tokens, the Responses API's field, not
// max_tokens and Claude Code's setting (confirmation 17L2).
func TestResponsesBudgetRefusalNamesMaxOutputTokens(t *testing.T) {
	g, up := e2eSetup(t, "")
	k, tok := e2eKey(g, "codex-capped")
	capKey(t, g, k, 0.05)
	// gpt-5-mini without max_output_tokens: 128,000 × $2/MTok = $0.256 > $0.05.
	resp := g.post("/v1/responses", tok, `{"model":"gpt-5-mini","input":"hi","stream":true}`)
	b := e2eRead(t, resp)
	msg, _ := e2ePath(e2eJSON(t, b), "error", "message").(string)
	// A 400 to an OpenAI-shape client, whose message Codex shows (29O).
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(msg, "max_output_tokens") || strings.Contains(msg, "CLAUDE_CODE_MAX_OUTPUT_TOKENS") {
		t.Errorf("a Responses call over the whole limit: %d %s", resp.StatusCode, b)
	}
	if n := len(up.Requests()); n != 0 {
		t.Errorf("%d requests reached the provider", n)
	}
}

// An Anthropic-shape body's web_search tool is dropped on the way to an
// OpenAI model (LOSSY #18), so no search can run and none is reserved:
// a key whose hard limit covers the call's tokens is not refused for 8
// searches at OpenAI's $0.01 (review 17R3).
//
// gpt-5-mini, $0.05 hard limit: max_tokens 1,000 × $2/MTok = $0.002 plus
// the prompt, against 8 × $0.01 = $0.08 of searches that cannot happen.
func TestDroppedWebSearchToolNotReservedCrossShape(t *testing.T) {
	g, up := e2eSetup(t, "")
	k, tok := e2eKey(g, "claude-code-on-gpt")
	capKey(t, g, k, 0.05)
	up.Enqueue("/v1/chat/completions", fakeupstream.OpenAICompletion("gpt-5-mini", "It is sunny.", 40))
	resp := g.post("/v1/messages", tok, `{"model":"gpt-5-mini","max_tokens":1000,"messages":[{"role":"user","content":"Weather?"}],`+
		`"tools":[{"type":"web_search_20250305","name":"web_search","max_uses":8}]}`, e2eAnthropicHdr...)
	if b := e2eRead(t, resp); resp.StatusCode != http.StatusOK {
		t.Errorf("a dropped web_search tool on an OpenAI model: %d %s", resp.StatusCode, b)
	}
}

// A content part that repeats its "type" is read by its first here and
// maybe by its last at the provider: it is reserved as a document, the
// context window, or a file hides from the hard limit (review 17R3:
// $0.18753 spent under a $0.05 limit).
func TestDuplicateTypeDoesNotHideAFileFromTheBudget(t *testing.T) {
	g, up := e2eSetup(t, "alias big openai:gpt-5")
	k, tok := e2eKey(g, "dup-type")
	capKey(t, g, k, 0.05)
	for _, c := range []struct {
		path, body string
		never      int // a call that can never fit: 400 to OpenAI clients, 429 to Anthropic ones
	}{
		{"/v1/responses", `{"model":"big","max_output_tokens":10,"input":[{"role":"user","content":[` +
			`{"type":"input_text","text":"Summarise.","type":"input_file","file_id":"file-6F2ksmvXxt4VdoqmHRw6kL"}]}]}`, http.StatusBadRequest},
		{"/v1/messages", `{"model":"haiku","max_tokens":10,"messages":[{"role":"user","content":[` +
			`{"type":"text","text":"Summarise.","type":"document","source":{"type":"url","url":"https://example.com/r.pdf"}}]}]}`, http.StatusTooManyRequests},
	} {
		resp := g.post(c.path, tok, c.body, e2eAnthropicHdr...)
		if b := e2eRead(t, resp); resp.StatusCode != c.never {
			t.Errorf("%s with a part whose type repeats: %d %.200s, want the %d of a call reserved at the context window", c.path, resp.StatusCode, b, c.never)
		}
	}
	if n := len(up.Requests()); n != 0 {
		t.Errorf("%d requests reached the provider", n)
	}
}
