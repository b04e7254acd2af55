package metis

// OpenAI's Responses API to a Claude model: the request is translated to
// the Messages API (through the Chat Completions request it stands for)
// and the answer comes back in the Responses API's shape, streamed or not,
// read by the official OpenAI SDK, and priced from Anthropic's usage.

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/responses"
	"github.com/tidwall/gjson"

	oa "github.com/metisgateway/metis/adapters/openai"
	"github.com/metisgateway/metis/internal/fakeupstream"
	"github.com/metisgateway/metis/ir"
	"github.com/metisgateway/metis/store"
)

const haikuModel = "claude-haiku-4-5-20251001"

// weatherTool is a function tool as openai-go builds it.
func weatherTool() responses.ToolUnionParam {
	return responses.ToolParamOfFunction("get_weather",
		map[string]any{"type": "object", "properties": map[string]any{"city": map[string]any{"type": "string"}}, "required": []string{"city"}}, false)
}

// Not streamed, with a function call and a second turn carrying its
// output: openai-go reads the Responses API answer, the call's id is
// Claude's tool_use id, and the second turn reaches Claude as a tool_use
// and its tool_result.
//
// claude-haiku-4-5: $1 in, $5 out per MTok.
// Turn 1: 420 in; out "Let me check." 13/4+1 = 4, get_weather 11 +
// 16/3 + 10 = 26: 0.00042 + 30 × 5e-6 = 0.00057.
// Turn 2: 480 in; out "It is 18 degrees in Paris." 26/4+1 = 7: 0.00048 +
// 0.000035 = 0.000515.
func TestResponsesAPIToClaudeWithOpenAISDK(t *testing.T) {
	g, up := e2eSetup(t, "")
	k, tok := e2eKey(g, "codex")
	up.Enqueue("/v1/messages", fakeupstream.AnthropicMessage(haikuModel, 420, "tool_use",
		fakeupstream.TextBlock("Let me check."), fakeupstream.ToolUseBlock("get_weather", `{"city":"Paris"}`)))
	up.Enqueue("/v1/messages", fakeupstream.AnthropicMessage(haikuModel, 480, "end_turn", fakeupstream.TextBlock("It is 18 degrees in Paris.")))
	c := xOpenAI(g, tok)
	params := responses.ResponseNewParams{
		Model:           "haiku",
		Instructions:    openai.String("Be brief."),
		Input:           responses.ResponseNewParamsInputUnion{OfInputItemList: responses.ResponseInputParam{responses.ResponseInputItemParamOfMessage("Weather in Paris?", responses.EasyInputMessageRoleUser)}},
		Tools:           []responses.ToolUnionParam{weatherTool()},
		MaxOutputTokens: openai.Int(1000),
	}
	r, err := c.Responses.New(context.Background(), params)
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != responses.ResponseStatusCompleted || r.OutputText() != "Let me check." || len(r.Output) != 2 ||
		r.Output[1].Type != "function_call" || r.Usage.InputTokens != 420 || r.Usage.OutputTokens != 30 || r.Model != "haiku" {
		t.Fatalf("turn 1: the SDK read %s", r.RawJSON())
	}
	fc := r.Output[1].AsFunctionCall()
	if fc.Name != "get_weather" || fc.Arguments != `{"city":"Paris"}` || !strings.HasPrefix(fc.CallID, "toolu_") {
		t.Errorf("function call %s", fc.RawJSON())
	}
	sent := gjson.Parse(up.RequestsTo("/v1/messages")[0].Body)
	if sent.Get("model").Str != "claude-haiku-4-5" || sent.Get("system").String() == "" || !strings.Contains(sent.Get("system").Raw, "Be brief.") ||
		sent.Get("max_tokens").Int() != 1000 || sent.Get("tools.0.name").Str != "get_weather" ||
		sent.Get("tools.0.input_schema.properties.city.type").Str != "string" || sent.Get("messages.0.role").Str != "user" {
		t.Errorf("turn 1 went upstream as %s", sent.Raw)
	}

	// Another key cannot read this answer's items back by reference.
	_, other := e2eKey(g, "other")
	resp := g.post("/v1/responses", other, `{"model":"haiku","input":[{"type":"item_reference","id":"`+r.Output[0].ID+`"}]}`)
	if b := e2eRead(t, resp); resp.StatusCode != http.StatusBadRequest || !strings.Contains(b, "names no item") {
		t.Errorf("another key's reference to %s: %d %s", r.Output[0].ID, resp.StatusCode, b)
	}

	// Turn 2: the SDK's own output items back, with the tool's output.
	msg, call := r.Output[0].AsMessage().ToParam(), fc.ToParam()
	params.Input.OfInputItemList = append(params.Input.OfInputItemList,
		responses.ResponseInputItemUnionParam{OfOutputMessage: &msg}, responses.ResponseInputItemUnionParam{OfFunctionCall: &call})
	params.Input.OfInputItemList = append(params.Input.OfInputItemList,
		responses.ResponseInputItemUnionParam{OfFunctionCallOutput: &responses.ResponseInputItemFunctionCallOutputParam{
			CallID: openai.String(fc.CallID),
			Output: responses.ResponseInputItemFunctionCallOutputOutputUnionParam{OfString: openai.String("18C")}}})
	r, err = c.Responses.New(context.Background(), params)
	if err != nil {
		t.Fatal(err)
	}
	if r.OutputText() != "It is 18 degrees in Paris." || r.Status != responses.ResponseStatusCompleted {
		t.Errorf("turn 2: the SDK read %s", r.RawJSON())
	}
	sent = gjson.Parse(up.RequestsTo("/v1/messages")[1].Body)
	msgs := sent.Get("messages").Array()
	if len(msgs) != 3 || msgs[1].Get("role").Str != "assistant" || msgs[1].Get("content.0.text").Str != "Let me check." ||
		msgs[1].Get("content.1.type").Str != "tool_use" || msgs[1].Get("content.1.id").Str != fc.CallID ||
		msgs[2].Get("content.0.type").Str != "tool_result" || msgs[2].Get("content.0.tool_use_id").Str != fc.CallID ||
		!strings.Contains(msgs[2].Get("content.0.content").Raw, "18C") {
		t.Errorf("turn 2 went upstream as %s", sent.Raw)
	}

	calls := e2eCalls(g, 2)
	for i, want := range []float64{0.00057, 0.000515} {
		e2eWant(t, "call", calls[i], map[string]any{"inbound_shape": "openai", "provider": "anthropic", "model": "claude-haiku-4-5",
			"stream": false, "usage_source": "provider", "gateway_key_id": k.ID})
		if cost := e2eCost(t, calls[i]); !e2eNear(cost, want) || calls[i]["error_class"] != nil {
			t.Errorf("call %d: %v, want cost %v", i, calls[i], want)
		}
		e2eCheckTriple(g, calls[i])
	}
	for _, rd := range g.events(store.TypeRouteDecided) {
		if rd["endpoint"] != "responses" || rd["cross_shape"] != true {
			t.Errorf("route.decided %v", rd)
		}
	}
}

// Streamed, as Codex CLI and the Agents SDK call it: a namespaced function
// tool, a custom (free-text) tool and a hosted web_search tool. Claude is
// offered the first two (the namespaced one flat, the custom one as a JSON
// tool taking its text) and not the hosted one; its text and calls come
// back as Responses API events that openai-go's ResponseAccumulator
// checks and reassembles, each call under the client's own name, the
// namespaced one with its namespace apart.
//
// claude-haiku-4-5: $1 in, $5 out per MTok. 900 in; out "Checking." 9/4+1
// = 3, lookup (upstream name 26 bytes) 26 + 13/3 + 10 = 40, apply_patch
// 11 + 48/3 + 10 = 37: 0.0009 + 80 × 5e-6 = 0.0013.
func TestResponsesAPIToClaudeStreamedTools(t *testing.T) {
	g, up := e2eSetup(t, "")
	_, tok := e2eKey(g, "codex")
	const patch = "*** Begin Patch\n*** Add File: a.txt\n+hi\n*** End Patch"
	input, _ := json.Marshal(map[string]string{"input": patch})
	body := `{"model":"haiku","stream":true,"input":[{"type":"message","role":"user","content":[{"type":"input_text","text":"Look up ACME, then add a.txt."}]}],` +
		`"tools":[{"type":"namespace","name":"crm","description":"Customer records.","tools":[{"type":"function","name":"lookup","description":"Find a customer.","parameters":{"type":"object","properties":{"q":{"type":"string"}}},"strict":false}]},` +
		`{"type":"custom","name":"apply_patch","description":"Edit files.","format":{"type":"text"}},{"type":"web_search","external_web_access":true}],` +
		`"tool_choice":"auto","parallel_tool_calls":true,"reasoning":{"summary":"auto"},"store":false,"include":["reasoning.encrypted_content"]}`
	// The name Claude sees for crm.lookup: dots are not allowed there.
	upstreamLookup := ir.SafeToolName("crm" + oa.NamespaceSep + "lookup")
	rp := fakeupstream.AnthropicStream(haikuModel, 900, "tool_use", fakeupstream.TextBlock("Checking."),
		fakeupstream.ToolUseBlock(upstreamLookup, `{"q":"ACME Corp"}`), fakeupstream.ToolUseBlock("apply_patch", string(input)))
	rp.Gap = time.Millisecond
	up.Enqueue("/v1/messages", rp)
	c := xOpenAI(g, tok)
	var params responses.ResponseNewParams
	if err := json.Unmarshal([]byte(body), &params); err != nil {
		t.Fatal(err)
	}
	stream := c.Responses.NewStreaming(context.Background(), params)
	var acc responses.ResponseAccumulator
	var types []string
	for stream.Next() {
		ev := stream.Current()
		types = append(types, ev.Type)
		var sev responses.ResponsesServerEventUnion
		if err := json.Unmarshal([]byte(ev.RawJSON()), &sev); err != nil {
			t.Fatal(err)
		}
		if err := acc.AddEvent(sev); err != nil {
			t.Fatalf("event %s: %v", ev.RawJSON(), err)
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	r, err := acc.ReconstructedResponse()
	if err != nil {
		t.Fatalf("%v after %v", err, types)
	}
	if types[0] != "response.created" || types[len(types)-1] != "response.completed" || r.Status != "completed" || len(r.Output) != 3 {
		t.Fatalf("events %v; response %s", types, r.RawJSON())
	}
	if r.OutputText() != "Checking." {
		t.Errorf("text %q", r.OutputText())
	}
	lookup := r.Output[1].AsFunctionCall()
	if lookup.Name != "lookup" || lookup.Namespace != "crm" || lookup.Arguments != `{"q":"ACME Corp"}` || !strings.HasPrefix(lookup.CallID, "toolu_") {
		t.Errorf("namespaced call %s", r.Output[1].RawJSON())
	}
	custom := r.Output[2].AsCustomToolCall()
	if r.Output[2].Type != "custom_tool_call" || custom.Name != "apply_patch" || custom.Input != patch {
		t.Errorf("custom call %s", r.Output[2].RawJSON())
	}
	snap := acc.Snapshot()
	if snap.Output[2].Input != patch || snap.Output[1].Arguments != `{"q":"ACME Corp"}` {
		t.Errorf("streamed deltas %+v", snap.Output)
	}
	if r.Usage.InputTokens != 900 || r.Usage.OutputTokens != 80 {
		t.Errorf("usage %s", r.Usage.RawJSON())
	}

	sent := gjson.Parse(up.RequestsTo("/v1/messages")[0].Body)
	tools := sent.Get("tools").Array()
	if len(tools) != 2 || tools[0].Get("name").Str != upstreamLookup || !strings.HasPrefix(upstreamLookup, "crm_lookup_") || !strings.Contains(tools[0].Get("description").Str, "Find a customer.") ||
		tools[1].Get("name").Str != "apply_patch" || tools[1].Get("input_schema.properties.input.type").Str != "string" ||
		!sent.Get("stream").Bool() {
		t.Errorf("upstream got %s", sent.Raw)
	}
	call := e2eCalls(g, 1)[0]
	e2eWant(t, "call", call, map[string]any{"provider": "anthropic", "stream": true, "usage_source": "provider", "output_tokens": float64(80)})
	if cost := e2eCost(t, call); !e2eNear(cost, 0.0013) || call["error_class"] != nil {
		t.Errorf("call %v, want cost 0.0013", call)
	}
	e2eCheckTriple(g, call)
}

// Compaction stays OpenAI's: its answer is an item only OpenAI's models
// read. A Claude model there is refused in OpenAI's error shape before any
// provider sees the request, as is a body that cannot be translated.
func TestResponsesAPIToClaudeRefusals(t *testing.T) {
	g, up := e2eSetup(t, "")
	_, tok := e2eKey(g, "codex")
	resp := g.post("/v1/responses/compact", tok, `{"model":"haiku","input":"hi"}`)
	if b := e2eRead(t, resp); resp.StatusCode != http.StatusBadRequest || !strings.Contains(b, "compaction") || !strings.Contains(b, `"type":"invalid_request_error"`) {
		t.Errorf("compaction to a Claude model: %d %s", resp.StatusCode, b)
	}
	c := xOpenAI(g, tok)
	_, err := c.Responses.New(context.Background(), responses.ResponseNewParams{Model: "haiku", PreviousResponseID: openai.String("resp_1"),
		Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("and then?")}})
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusBadRequest || !strings.Contains(apiErr.Message, "previous_response_id") ||
		strings.Contains(apiErr.Message, "Chat Completions") {
		t.Errorf("previous_response_id to a Claude model: %v", err)
	}
	// The client sent no Chat Completions request: the refusal names the
	// model it was translated for (review 18R).
	resp = g.post("/v1/responses", tok, `{"model":"haiku","input":[{"type":"local_shell_call","call_id":"c","action":{"type":"exec","command":["ls"]},"status":"completed"}]}`)
	if b := e2eRead(t, resp); resp.StatusCode != http.StatusBadRequest || strings.Contains(b, "Chat Completions") || !strings.Contains(b, "a Claude model") {
		t.Errorf("a local_shell_call to a Claude model: %d %s", resp.StatusCode, b)
	}
	// An item reference to no answer this gateway gave names what to do.
	resp = g.post("/v1/responses", tok, `{"model":"haiku","input":[{"type":"item_reference","id":"msg_unknown_0"}]}`)
	if b := e2eRead(t, resp); resp.StatusCode != http.StatusBadRequest || !strings.Contains(b, "store to false") {
		t.Errorf("an unknown item reference: %d %s", resp.StatusCode, b)
	}
	if n := len(up.Requests()); n != 0 {
		t.Errorf("%d refused requests reached the provider", n)
	}
	if rej := g.events(store.TypeRequestRejected); len(rej) != 4 || rej[0]["reason"] != "untranslatable" || rej[3]["reason"] != "untranslatable" {
		t.Errorf("rejections %v", rej)
	}
}

// Claude's stream cut mid-answer: the client has had the text so far and
// then gets the Responses API's error event, which openai-go raises; the
// call is recorded STREAM_INTERRUPTED with the usage known so far.
// A Claude error before the stream reaches the client in OpenAI's shape.
func TestResponsesAPIToClaudeFailures(t *testing.T) {
	g, up := e2eSetup(t, "")
	_, tok := e2eKey(g, "codex")
	cut := fakeupstream.AnthropicStream(haikuModel, 700, "end_turn", fakeupstream.TextBlock("one two three four five six seven eight"))
	cut.DieAfter = 6
	up.Enqueue("/v1/messages", cut)
	c := xOpenAI(g, tok)
	stream := c.Responses.NewStreaming(context.Background(), responses.ResponseNewParams{Model: "haiku",
		Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("Count.")}})
	var text string
	var last responses.ResponseStreamEventUnion
	for stream.Next() {
		last = stream.Current()
		if last.Type == "response.output_text.delta" {
			text += last.Delta
		}
	}
	if stream.Err() == nil && last.Type != "error" || text == "" || strings.Contains(text, "eight") {
		t.Errorf("after a cut the client read %q, last event %s, error %v", text, last.RawJSON(), stream.Err())
	}
	call := e2eCalls(g, 1)[0]
	if call["error_class"] != "STREAM_INTERRUPTED" || call["input_tokens"] != float64(700) {
		t.Errorf("cut stream recorded %v", call)
	}

	up.Enqueue("/v1/messages", fakeupstream.AnthropicError(http.StatusBadRequest, "invalid_request_error", "messages: text content blocks must be non-empty"))
	_, err := c.Responses.New(context.Background(), responses.ResponseNewParams{Model: "haiku",
		Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("hi")}})
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusBadRequest || apiErr.Type != "invalid_request_error" ||
		!strings.Contains(apiErr.Message, "must be non-empty") {
		t.Errorf("a Claude 400: %v", err)
	}
}

// openAINodeResponsesStream streams a Responses API call with the official
// openai Node SDK's ResponseStream, which builds the response from the
// events (and throws on an event for an item it was not told of), and
// prints the final response as JSON.
const openAINodeResponsesStream = `
const { createRequire } = require('node:module');
const req = createRequire(process.env.TOOLS_PACKAGE);
const { OpenAI } = req('openai');
const client = new OpenAI({ baseURL: process.env.METIS_URL + '/v1', apiKey: process.env.METIS_KEY, maxRetries: 0 });
(async () => {
  const stream = client.responses.stream({
    model: 'haiku', input: 'Weather in Paris, then note it.',
    tools: [{ type: 'function', name: 'get_weather', strict: false, parameters: { type: 'object', properties: { city: { type: 'string' } } } },
            { type: 'custom', name: 'note', format: { type: 'text' } }],
  });
  let deltas = '';
  stream.on('response.output_text.delta', (e) => { deltas += e.delta; });
  const done = await stream.finalResponse();
  console.log(JSON.stringify({ response: done, deltas, text: done.output_text }));
})().catch((e) => { console.error(e); process.exit(1); });
`

// The official openai Node SDK's ResponseStream reads a Claude model's
// streamed answer, text, a function call and a custom call, as the
// response the final event carries.
//
// claude-haiku-4-5, $1 / $5 per MTok: 500 in; out "It is sunny." 12/4+1
// = 4, get_weather 11 + 16/3 + 10 = 26, note 4 + 24/3 + 10 = 22: 52:
// 0.0005 + 0.00026 = 0.00076.
func TestResponsesAPIToClaudeWithOpenAINodeSDK(t *testing.T) {
	g, up := e2eSetup(t, "")
	_, tok := e2eKey(g, "agents")
	rp := fakeupstream.AnthropicStream(haikuModel, 500, "tool_use", fakeupstream.TextBlock("It is sunny."),
		fakeupstream.ToolUseBlock("get_weather", `{"city":"Paris"}`), fakeupstream.ToolUseBlock("note", `{"input":"Paris: sunny"}`))
	rp.Gap = time.Millisecond
	up.Enqueue("/v1/messages", rp)
	out := runNodeScript(t, "openai", openAINodeResponsesStream, "METIS_URL="+g.URL, "METIS_KEY="+tok)
	res := gjson.ParseBytes(out)
	o := res.Get("response.output")
	if res.Get("text").Str != "It is sunny." || res.Get("deltas").Str != "It is sunny." || len(o.Array()) != 3 ||
		o.Get("1.type").Str != "function_call" || o.Get("1.name").Str != "get_weather" || o.Get("1.arguments").Str != `{"city":"Paris"}` ||
		o.Get("2.type").Str != "custom_tool_call" || o.Get("2.name").Str != "note" || o.Get("2.input").Str != "Paris: sunny" ||
		res.Get("response.status").Str != "completed" || res.Get("response.usage.output_tokens").Int() != 52 {
		t.Errorf("the Node SDK's final response: %s", out)
	}
	if c := e2eCost(t, g.lastCall()); !e2eNear(c, 0.00076) {
		t.Errorf("cost_usd %v, want 0.00076", c)
	}
}

// aiSDKToolLoop runs a two-step tool loop with the Vercel AI SDK's
// default OpenAI provider, openai(model), which speaks the Responses API
// and, store being true by default, refers back to its earlier output
// items by id; STREAM=1 uses streamText, else generateText. It prints the
// final text and the number of steps.
const aiSDKToolLoop = `
const { createRequire } = require('node:module');
const req = createRequire(process.env.TOOLS_PACKAGE);
const { generateText, streamText, tool, stepCountIs } = req('ai');
const { createOpenAI } = req('@ai-sdk/openai');
const { z } = req('zod');
const openai = createOpenAI({ baseURL: process.env.METIS_URL + '/v1', apiKey: process.env.METIS_KEY });
(async () => {
  const args = {
    model: openai('haiku'), maxRetries: 0, prompt: 'Weather in Paris?', stopWhen: stepCountIs(3),
    tools: { get_weather: tool({ description: 'The weather in a city.', inputSchema: z.object({ city: z.string() }),
      execute: async ({ city }) => '18C in ' + city }) },
  };
  let text, steps;
  if (process.env.STREAM) {
    const r = streamText(args);
    text = await r.text; steps = (await r.steps).length;
  } else {
    const r = await generateText(args);
    text = r.text; steps = r.steps.length;
  }
  console.log(JSON.stringify({ text, steps }));
})().catch((e) => { console.error(e); process.exit(1); });
`

// The Vercel AI SDK's default openai(model), on a Claude model, through a
// tool loop, streamed and not: its second step refers to the first
// step's text by the id the gateway gave it (an item_reference, as the
// SDK does with store at its default), which the gateway reads back from
// the items it keeps, so Claude sees its own turn whole.
//
// claude-haiku-4-5, $1 / $5 per MTok. Step 1: 400 in; out "Let me
// check." 4, get_weather 11 + 16/3 + 10 = 26: 0.0004 + 0.00015 =
// 0.00055. Step 2: 480 in; out "It is 18C in Paris." 19/4+1 = 5: 0.00048
// + 0.000025 = 0.000505.
func TestResponsesAPIToClaudeWithAISDK(t *testing.T) {
	for _, stream := range []bool{false, true} {
		t.Run(map[bool]string{false: "generateText", true: "streamText"}[stream], func(t *testing.T) { aiSDKToolLoopTest(t, stream) })
	}
}

// aiSDKToolLoopTest is one run of TestResponsesAPIToClaudeWithAISDK.
func aiSDKToolLoopTest(t *testing.T, stream bool) {
	g, up := e2eSetup(t, "")
	_, tok := e2eKey(g, "aisdk")
	blocks := []fakeupstream.Block{fakeupstream.TextBlock("Let me check."), fakeupstream.ToolUseBlock("get_weather", `{"city":"Paris"}`)}
	step1, step2 := fakeupstream.AnthropicMessage(haikuModel, 400, "tool_use", blocks...),
		fakeupstream.AnthropicMessage(haikuModel, 480, "end_turn", fakeupstream.TextBlock("It is 18C in Paris."))
	if stream {
		step1, step2 = fakeupstream.AnthropicStream(haikuModel, 400, "tool_use", blocks...),
			fakeupstream.AnthropicStream(haikuModel, 480, "end_turn", fakeupstream.TextBlock("It is 18C in Paris."))
	}
	up.Enqueue("/v1/messages", step1, step2)
	tap := e2eNewTap(t, g.URL)
	env := []string{"METIS_URL=" + tap.URL, "METIS_KEY=" + tok}
	if stream {
		env = append(env, "STREAM=1")
	}
	out := runNodeScript(t, "@ai-sdk/openai", aiSDKToolLoop, env...)
	if res := gjson.ParseBytes(out); res.Get("text").Str != "It is 18C in Paris." || res.Get("steps").Int() != 2 {
		t.Errorf("stream %v: the AI SDK finished with %s", stream, out)
	}
	sent := up.RequestsTo("/v1/messages")
	if len(sent) != 2 {
		t.Fatalf("stream %v: %d requests reached Claude", stream, len(sent))
	}
	msgs := gjson.Get(sent[1].Body, "messages").Array()
	if len(msgs) != 3 || msgs[1].Get("content.0.text").Str != "Let me check." || msgs[1].Get("content.1.type").Str != "tool_use" ||
		!strings.Contains(msgs[2].Get("content.0.content").Raw, "18C in Paris") {
		t.Errorf("stream %v: step 2 reached Claude as %s", stream, gjson.Get(sent[1].Body, "messages").Raw)
	}
	if client := tap.requests(); len(client) != 2 || !strings.Contains(gjson.Get(client[1].Body, "input").Raw, `"item_reference"`) {
		t.Errorf("stream %v: the SDK's second step referred to no earlier item: %v", stream, client)
	}
	calls := e2eCalls(g, 2)
	for i, want := range []float64{0.00055, 0.000505} {
		if cost := e2eCost(t, calls[i]); !e2eNear(cost, want) || calls[i]["error_class"] != nil || calls[i]["stream"] != stream {
			t.Errorf("stream %v: call %d: %v, want cost %v", stream, i, calls[i], want)
		}
	}
}

// The refusals of a Claude-bound request read as sentences naming the
// model they were translated for (review 18R3: "has no a Claude model
// equivalent").
func TestResponsesAPIToClaudeRefusalWording(t *testing.T) {
	g, _ := e2eSetup(t, "")
	_, tok := e2eKey(g, "agents")
	for _, body := range []string{
		`{"model":"haiku","input":"x","tools":[{"type":"apply_patch"}]}`,
		`{"model":"haiku","input":[{"type":"local_shell_call","call_id":"c","action":{"type":"exec","command":["ls"]},"status":"completed"}]}`,
		`{"model":"haiku","input":"x","tools":[{"type":"function","name":"f","parameters":{}}],"tool_choice":{"type":"computer_use_preview"}}`,
	} {
		resp := g.post("/v1/responses", tok, body)
		if b := e2eRead(t, resp); strings.Contains(b, "no a Claude model") || strings.Contains(b, "which a Claude model has not") {
			t.Errorf("%s: %s", body, b)
		}
	}
}
