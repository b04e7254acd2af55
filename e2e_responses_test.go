package metis

// OpenAI's Responses API (POST /v1/responses), which Codex CLI, the OpenAI
// Agents SDK and the official SDKs' newer examples use, forwarded as it
// came to OpenAI-type providers, priced from the usage of its response
// object or its stream's last event.

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/responses"
	"github.com/tidwall/gjson"

	"github.com/metisgateway/metis/internal/fakeupstream"
	"github.com/metisgateway/metis/store"
)

// The official OpenAI SDK's Responses client, not streamed: the body goes
// upstream as sent but for the model an alias resolved, with the provider
// key; the answer comes back as sent; the call is priced from the
// response's usage, cache reads and reasoning included.
//
// gpt-5-mini: $0.25 in, $0.025 cached, $2 out per MTok. 2,000 in of which
// 1,024 cached; out 64 reasoning + "Hello from the Responses API." 29/4+1
// = 8: 976 × 0.25e-6 + 1,024 × 0.025e-6 + 72 × 2e-6 = 0.000244 +
// 0.0000256 + 0.000144 = 0.0004136.
func TestResponsesAPIWithOpenAISDK(t *testing.T) {
	g, up := e2eSetup(t, "alias mini openai:gpt-5-mini")
	_, tok := e2eKey(g, "codex")
	want := fakeupstream.ResponsesAnswer{InputTokens: 2000, CachedTokens: 1024, ReasoningTokens: 64, Text: "Hello from the Responses API."}.Body()
	up.Enqueue("/v1/responses", want)
	c := xOpenAI(g, tok)
	r, err := c.Responses.New(context.Background(), responses.ResponseNewParams{
		Model:        "mini",
		Instructions: openai.String("Be brief."),
		Input:        responses.ResponseNewParamsInputUnion{OfString: openai.String("Say hello.")},
		Reasoning:    openai.ReasoningParam{Effort: openai.ReasoningEffortLow},
	})
	if err != nil {
		t.Fatal(err)
	}
	if r.OutputText() != "Hello from the Responses API." || r.Usage.InputTokens != 2000 || r.Usage.OutputTokensDetails.ReasoningTokens != 64 {
		t.Errorf("the SDK read %s", r.RawJSON())
	}
	if r.RawJSON() != want.Body {
		t.Errorf("the answer was not relayed as sent")
	}
	rec := up.RequestsTo("/v1/responses")[0]
	sent := gjson.Parse(rec.Body)
	if rec.APIKey() != testOpenAIKey || strings.Contains(rec.Body, tok) || sent.Get("model").Str != "gpt-5-mini" ||
		sent.Get("input").Str != "Say hello." || sent.Get("instructions").Str != "Be brief." || sent.Get("reasoning.effort").Str != "low" ||
		sent.Get("stream_options").Exists() {
		t.Errorf("upstream got %s with key %q", rec.Body, rec.APIKey())
	}
	call := e2eCalls(g, 1)[0]
	e2eWant(t, "call", call, map[string]any{"inbound_shape": "openai", "provider": "openai", "stream": false,
		"input_tokens": 976, "cache_read_input_tokens": 1024, "output_tokens": 72, "reasoning_tokens": 64, "usage_source": "provider"})
	if cost := e2eCost(t, call); !e2eNear(cost, 0.0004136) {
		t.Errorf("cost_usd %v, want 0.0004136", cost)
	}
	e2eCheckTriple(g, call)
	if rd := g.events(store.TypeRouteDecided)[0]; rd["endpoint"] != "responses" || rd["cross_shape"] != false {
		t.Errorf("route.decided %v", rd)
	}
}

// Streamed, with a function call and a second turn carrying its output:
// the SDK reads the events as OpenAI sends them and the usage of
// response.completed prices each call.
//
// gpt-5-nano: $0.05 in, $0.005 cached, $0.4 out per MTok.
// Turn 1: 1,500 in; out 128 reasoning + get_weather 11 + 15/3 + 10 = 154:
// 0.000075 + 0.0000616 = 0.0001366.
// Turn 2: 1,700 in, 1,024 cached; out "It is 18 degrees in Paris." 26/4+1
// = 7: 676 × 0.05e-6 + 1,024 × 0.005e-6 + 7 × 0.4e-6 = 0.0000338 +
// 0.00000512 + 0.0000028 = 0.00004172.
func TestResponsesAPIStreamToolRoundTrip(t *testing.T) {
	g, up := e2eSetup(t, "")
	_, tok := e2eKey(g, "codex")
	turn1 := fakeupstream.ResponsesAnswer{Model: "gpt-5-nano-2025-08-07", InputTokens: 1500, ReasoningTokens: 128,
		Calls: []fakeupstream.ResponsesCall{{Name: "get_weather", Arguments: `{"city":"Paris"}`}}}.Stream()
	turn1.Gap = 2 * time.Millisecond
	up.Enqueue("/v1/responses", turn1)
	up.Enqueue("/v1/responses", fakeupstream.ResponsesAnswer{Model: "gpt-5-nano-2025-08-07", InputTokens: 1700, CachedTokens: 1024,
		Text: "It is 18 degrees in Paris."}.Stream())
	c := xOpenAI(g, tok)
	params := responses.ResponseNewParams{
		Model: "nano",
		Input: responses.ResponseNewParamsInputUnion{OfInputItemList: responses.ResponseInputParam{
			responses.ResponseInputItemParamOfMessage("Weather in Paris?", responses.EasyInputMessageRoleUser)}},
		Tools: []responses.ToolUnionParam{responses.ToolParamOfFunction("get_weather",
			map[string]any{"type": "object", "properties": map[string]any{"city": map[string]any{"type": "string"}}}, false)},
	}
	stream := c.Responses.NewStreaming(context.Background(), params)
	var done responses.Response
	var argDeltas string
	for stream.Next() {
		ev := stream.Current()
		switch ev.Type {
		case "response.function_call_arguments.delta":
			argDeltas += ev.Delta
		case "response.completed":
			done = ev.Response
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if len(done.Output) != 2 || done.Output[1].Type != "function_call" || done.Output[1].Arguments.OfString != `{"city":"Paris"}` ||
		argDeltas != `{"city":"Paris"}` || done.Usage.OutputTokens != 154 {
		t.Fatalf("turn 1: the SDK read %s (argument deltas %q)", done.RawJSON(), argDeltas)
	}
	fc := done.Output[1].AsFunctionCall()
	params.Input.OfInputItemList = append(params.Input.OfInputItemList,
		responses.ResponseInputItemUnionParam{OfFunctionCall: &responses.ResponseFunctionToolCallParam{
			CallID: fc.CallID, Name: fc.Name, Arguments: fc.Arguments, ID: openai.String(fc.ID)}},
		responses.ResponseInputItemUnionParam{OfFunctionCallOutput: &responses.ResponseInputItemFunctionCallOutputParam{
			CallID: openai.String(fc.CallID),
			Output: responses.ResponseInputItemFunctionCallOutputOutputUnionParam{OfString: openai.String("18C")}}})
	stream = c.Responses.NewStreaming(context.Background(), params)
	var text string
	for stream.Next() {
		if ev := stream.Current(); ev.Type == "response.output_text.delta" {
			text += ev.Delta
		}
	}
	if err := stream.Err(); err != nil || text != "It is 18 degrees in Paris." {
		t.Fatalf("turn 2: %q, %v", text, err)
	}
	sent := gjson.Parse(up.RequestsTo("/v1/responses")[1].Body)
	if sent.Get("model").Str != "gpt-5-nano" || sent.Get("input.2.type").Str != "function_call_output" || sent.Get("input.2.call_id").Str != fc.CallID {
		t.Errorf("turn 2 went upstream as %s", sent.Raw)
	}
	calls := e2eCalls(g, 2)
	for i, want := range []float64{0.0001366, 0.00004172} {
		if cost := e2eCost(t, calls[i]); !e2eNear(cost, want) || calls[i]["stream"] != true || calls[i]["error_class"] != nil {
			t.Errorf("call %d: %v, want cost %v", i, calls[i], want)
		}
	}
}

// A Claude model on /v1/responses/compact is refused in OpenAI's error
// shape, naming what to do, before any provider sees the request; a
// Responses API path the gateway does not serve says which one it does.
func TestResponsesAPIRefusals(t *testing.T) {
	g, up := e2eSetup(t, "")
	_, tok := e2eKey(g, "codex")
	resp := g.post("/v1/responses/compact", tok, `{"model":"haiku","input":"hi"}`)
	if b := e2eRead(t, resp); resp.StatusCode != http.StatusBadRequest || !strings.Contains(b, `"type":"invalid_request_error"`) ||
		!strings.Contains(b, "OpenAI-type providers only") || !strings.Contains(b, "through /v1/responses") {
		t.Errorf("a Claude model on /v1/responses/compact: %d %s", resp.StatusCode, b)
	}
	resp = g.post("/v1/responses/resp_1/cancel", tok, `{}`)
	if b := e2eRead(t, resp); resp.StatusCode != http.StatusNotFound || !strings.Contains(b, "it serves POST /v1/responses and /v1/responses/compact") {
		t.Errorf("/v1/responses/resp_1/cancel: %d %s", resp.StatusCode, b)
	}
	resp = g.post("/v1/responses", tok, `{"model":"nano","input":"x","stream":"yes"}`)
	if b := e2eRead(t, resp); resp.StatusCode != http.StatusBadRequest || !strings.Contains(b, "stream: must be a boolean") {
		t.Errorf("a string stream: %d %s", resp.StatusCode, b)
	}
	// A background response's usage comes with its retrieval, which the
	// gateway does not serve: it could be neither priced nor budgeted.
	resp = g.post("/v1/responses", tok, `{"model":"nano","input":"x","background":true}`)
	if b := e2eRead(t, resp); resp.StatusCode != http.StatusBadRequest || !strings.Contains(b, "background responses are not served") ||
		!strings.Contains(b, `"type":"invalid_request_error"`) {
		t.Errorf("a background response: %d %s", resp.StatusCode, b)
	}
	if n := len(up.Requests()); n != 0 {
		t.Errorf("%d refused requests reached the provider", n)
	}
	if rej := g.events(store.TypeRequestRejected); len(rej) != 4 || rej[0]["reason"] != "untranslatable" {
		t.Errorf("rejections %v", rej)
	}
}

// Compaction (POST /v1/responses/compact), which Codex CLI uses when a
// conversation nears the context window, is a billed model call: forwarded
// as sent and priced from its usage.
//
// gpt-5-nano: 40,000 in, 32,768 cached; out 1,200 (800 reasoning):
// 7,232 × 0.05e-6 + 32,768 × 0.005e-6 + 1,200 × 0.4e-6 = 0.0003616 +
// 0.00016384 + 0.00048 = 0.00100544.
func TestResponsesAPICompaction(t *testing.T) {
	g, up := e2eSetup(t, "")
	_, tok := e2eKey(g, "codex")
	body := `{"id":"cmp_1","object":"response.compaction","created_at":1795858623,"output":[` +
		`{"id":"msg_1","type":"message","status":"completed","role":"user","content":[{"type":"input_text","text":"Fix the bug."}]},` +
		`{"id":"cmp_item_1","type":"compaction","encrypted_content":"gAAAA"}],` +
		`"usage":{"input_tokens":40000,"input_tokens_details":{"cached_tokens":32768},"output_tokens":1200,` +
		`"output_tokens_details":{"reasoning_tokens":800},"total_tokens":41200}}`
	up.Enqueue("/v1/responses/compact", fakeupstream.Reply{Status: http.StatusOK, Body: body})
	oc := xOpenAI(g, tok)
	r, err := oc.Responses.Compact(context.Background(), responses.ResponseCompactParams{
		Model: "nano", Input: responses.ResponseCompactParamsInputUnion{OfString: openai.String("Fix the bug.")}})
	if err != nil {
		t.Fatal(err)
	}
	if r.RawJSON() != body || r.Usage.InputTokens != 40000 {
		t.Errorf("the SDK read %s", r.RawJSON())
	}
	if sent := up.RequestsTo("/v1/responses/compact"); len(sent) != 1 || gjson.Get(sent[0].Body, "model").Str != "gpt-5-nano" ||
		sent[0].APIKey() != testOpenAIKey {
		t.Fatalf("upstream got %v", sent)
	}
	call := e2eCalls(g, 1)[0]
	e2eWant(t, "compaction", call, map[string]any{"input_tokens": 7232, "cache_read_input_tokens": 32768, "output_tokens": 1200,
		"reasoning_tokens": 800, "usage_source": "provider"})
	if cost := e2eCost(t, call); !e2eNear(cost, 0.00100544) {
		t.Errorf("cost_usd %v, want 0.00100544", cost)
	}
	if rd := g.events(store.TypeRouteDecided)[0]; rd["endpoint"] != "responses_compact" {
		t.Errorf("route.decided %v", rd)
	}
}

// A stream cut by the provider ends with the error event the Responses
// API documents, which the SDK reads, and is recorded STREAM_INTERRUPTED
// with estimated usage; a client that hangs up mid-stream stops the
// provider within a second and is recorded CANCELLED; a 429 is retried
// after its retry-after.
func TestResponsesAPIStreamFailures(t *testing.T) {
	g, up := e2eSetup(t, "")
	_, tok := e2eKey(g, "codex")
	answer := fakeupstream.ResponsesAnswer{Model: "gpt-5-nano-2025-08-07", InputTokens: 900, Text: "one two three four five six seven eight"}

	cut := answer.Stream()
	cut.DieAfter = 6 // created, in_progress, item added, part added, "one", "two"
	up.Enqueue("/v1/responses", cut)
	oc := xOpenAI(g, tok)
	stream := oc.Responses.NewStreaming(context.Background(), responses.ResponseNewParams{
		Model: "nano", Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("Count.")}})
	var last responses.ResponseStreamEventUnion
	var seq []int64
	for stream.Next() {
		last = stream.Current()
		seq = append(seq, last.SequenceNumber)
	}
	if last.Type != "error" || !strings.Contains(last.Message, "interrupted") || len(seq) != 7 || seq[6] != 6 {
		t.Errorf("a cut stream ended with %s (sequence %v, err %v)", last.RawJSON(), seq, stream.Err())
	}
	call := e2eCalls(g, 1)[0]
	e2eWant(t, "cut call", call, map[string]any{"error_class": "STREAM_INTERRUPTED", "usage_source": "estimated"})
	if num(call, "input_tokens") <= 0 || num(call, "output_tokens") <= 0 || e2eCost(t, call) <= 0 {
		t.Errorf("a cut call is priced from estimates: %v", call)
	}

	stalled := answer.Stream()
	stalled.StallAfter = 5
	up.Enqueue("/v1/responses", stalled)
	e2eCancelAfter(t, g, "/v1/responses", tok, `{"model":"nano","stream":true,"input":"Count."}`,
		func(ev e2eSSE) bool { return ev.Name == "response.output_text.delta" })
	if !up.WaitCanceled(time.Second) {
		t.Errorf("the provider call was not cancelled within 1s of the client hanging up")
	}
	call = e2eCalls(g, 2)[1]
	e2eWant(t, "cancelled call", call, map[string]any{"error_class": "CANCELLED", "usage_source": "estimated", "stream": true})

	limited := fakeupstream.OpenAIError(http.StatusTooManyRequests, "requests", "rate_limit_exceeded", "Rate limit reached")
	limited.Header.Set("Retry-After", "0")
	up.Enqueue("/v1/responses", limited)
	up.Enqueue("/v1/responses", answer.Stream())
	resp := g.post("/v1/responses", tok, `{"model":"nano","stream":true,"input":"Count."}`)
	if b := e2eRead(t, resp); resp.StatusCode != http.StatusOK || !strings.Contains(b, "response.completed") {
		t.Fatalf("after a 429: %d %s", resp.StatusCode, b)
	}
	call = e2eCalls(g, 3)[2]
	// 900 × 0.05e-6 + (39/4+1 = 10) × 0.4e-6 = 0.000045 + 0.000004.
	e2eWant(t, "retried call", call, map[string]any{"attempts": 2, "usage_source": "provider", "output_tokens": 10})
	if cost := e2eCost(t, call); !e2eNear(cost, 0.000049) {
		t.Errorf("retried call cost %v, want 0.000049", cost)
	}

	bad := fakeupstream.OpenAIError(http.StatusBadRequest, "invalid_request_error", "", "Unsupported parameter: 'temperature'")
	up.Enqueue("/v1/responses", bad)
	resp = g.post("/v1/responses", tok, `{"model":"nano","input":"x","temperature":0.2}`)
	if b := e2eRead(t, resp); resp.StatusCode != http.StatusBadRequest || b != bad.Body || resp.Header.Get("X-Request-Id") == "" {
		t.Errorf("an upstream 400: %d %s", resp.StatusCode, b)
	}
}
