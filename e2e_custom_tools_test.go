package metis

// Custom (free-text) tools on Claude models: Cursor's agent edits files
// with ApplyPatch, a custom tool taking a patch in a Lark grammar, which
// only OpenAI models have. Translated to Claude, the tool becomes a JSON
// tool taking the text in one string member, and Claude's calls go back
// to the client as custom calls.

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/packages/ssestream"
	"github.com/tidwall/gjson"

	"github.com/metisgateway/metis/internal/fakeupstream"
	"github.com/metisgateway/metis/ir"
	"github.com/metisgateway/metis/store"
)

const (
	// testPatch is what the model's ApplyPatch call carries: 79 bytes as
	// the JSON {"input":…}, so the fake bills 10 + 79/3 + 10 = 46 output
	// tokens for the call.
	testPatch      = "*** Begin Patch\n*** Update File: a.go\n-teh\n+the\n*** End Patch\n"
	testPatchInput = `{"input":"*** Begin Patch\n*** Update File: a.go\n-teh\n+the\n*** End Patch\n"}`
	testGrammar    = `start: begin_patch hunk+ end_patch\nbegin_patch: "*** Begin Patch" LF`
)

// The official OpenAI SDK calls a Claude model with a custom tool and
// reads the call back with its custom-call type, then sends the call and
// its result on the next turn.
//
// claude-3-7-sonnet, $3 / $15 per MTok:
// turn 1: 1,000 in; out "Patching." 9/4+1 = 3 + the call's 46 = 49:
// 0.003 + 0.000735 = 0.003735.
// turn 2: 1,200 in; out "Patched the typo." 17/4+1 = 5: 0.0036 + 0.000075 = 0.003675.
func TestCustomToolOnClaudeWithOpenAISDK(t *testing.T) {
	g, up := newGatewayWithFake(t)
	_, tok := g.issueKey(store.IssueParams{Name: "cursor"})
	up.Enqueue("/v1/messages", fakeupstream.AnthropicMessage("", 1000, "tool_use",
		fakeupstream.TextBlock("Patching."), fakeupstream.ToolUseBlock("ApplyPatch", testPatchInput)))
	up.Enqueue("/v1/messages", fakeupstream.AnthropicMessage("", 1200, "end_turn", fakeupstream.TextBlock("Patched the typo.")))
	c := xOpenAI(g, tok)
	ctx := context.Background()
	params := openai.ChatCompletionNewParams{
		Model:    "sonnet",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Fix the typo in a.go.")},
		Tools: []openai.ChatCompletionToolUnionParam{openai.ChatCompletionCustomTool(openai.ChatCompletionCustomToolCustomParam{
			Name:        "ApplyPatch",
			Description: openai.String("Edit files with a patch."),
			Format: openai.ChatCompletionCustomToolCustomFormatUnionParam{OfGrammar: &openai.ChatCompletionCustomToolCustomFormatGrammarParam{
				Grammar: openai.ChatCompletionCustomToolCustomFormatGrammarGrammarParam{Definition: testGrammar, Syntax: "lark"},
			}},
		}), xWeatherFn},
	}
	r1, err := c.Chat.Completions.New(ctx, params)
	if err != nil {
		t.Fatalf("turn 1: %v", err)
	}
	msg := r1.Choices[0].Message
	if len(msg.ToolCalls) != 1 || msg.ToolCalls[0].Type != "custom" {
		t.Fatalf("turn 1: tool calls %s", msg.RawJSON())
	}
	call := msg.ToolCalls[0].AsCustom()
	if call.Custom.Name != "ApplyPatch" || call.Custom.Input != testPatch || msg.Content != "Patching." || r1.Choices[0].FinishReason != "tool_calls" {
		t.Errorf("turn 1: the SDK read %s", r1.RawJSON())
	}
	sent := gjson.Parse(up.RequestsTo("/v1/messages")[0].Body)
	tool := sent.Get("tools.0")
	if tool.Get("name").Str != "ApplyPatch" || tool.Get("input_schema.properties.input.type").Str != "string" ||
		!strings.Contains(tool.Get("description").Str, "Edit files with a patch.") ||
		!strings.Contains(tool.Get("description").Str, "Lark grammar:\n"+testGrammar) || sent.Get("tools.1.name").Str != "get_weather" {
		t.Errorf("the tools Claude was offered: %s", sent.Get("tools").Raw)
	}

	params.Messages = append(params.Messages, msg.ToParam(), openai.ToolMessage("Done", call.ID))
	r2, err := c.Chat.Completions.New(ctx, params)
	if err != nil {
		t.Fatalf("turn 2: %v", err)
	}
	if r2.Choices[0].Message.Content != "Patched the typo." {
		t.Errorf("turn 2: %s", r2.RawJSON())
	}
	sent = gjson.Parse(up.RequestsTo("/v1/messages")[1].Body)
	use, res := sent.Get("messages.1.content.1"), sent.Get("messages.2.content.0")
	if use.Get("type").Str != "tool_use" || use.Get("name").Str != "ApplyPatch" || use.Get("input.input").Str != testPatch ||
		res.Get("type").Str != "tool_result" || res.Get("tool_use_id").Str != use.Get("id").Str || res.Get("content.0.text").Str != "Done" {
		t.Errorf("turn 2 reached Claude as %s", sent.Get("messages").Raw)
	}

	calls := g.waitEvents(store.TypeCallCompleted, 2)
	for i, want := range []float64{0.003735, 0.003675} {
		if i >= len(calls) || !near(costOf(t, calls[i]), want) || calls[i]["error_class"] != nil {
			t.Errorf("call %d: %v, want cost %v", i, calls, want)
		}
	}
}

// Cursor's agent sends a Responses API body with its ApplyPatch grammar
// tool to /v1/chat/completions and a Claude model answers with the patch:
// the client's stream carries a custom call whose input pieces join to the
// patch, and the next turn's custom call and its output reach Claude as
// tool_use and tool_result.
//
// claude-haiku-4-5, $1 / $5 per MTok: 1,000 in, 46 out:
// 0.001 + 0.00023 = 0.00123.
func TestCursorApplyPatchOnClaude(t *testing.T) {
	g, up := e2eSetup(t, "")
	_, tok := e2eKey(g, "cursor")
	up.Enqueue("/v1/messages", fakeupstream.AnthropicStream("claude-haiku-4-5", 1000, "tool_use",
		fakeupstream.ToolUseBlock("ApplyPatch", testPatchInput)))
	tools := `"tools":[{"type":"custom","name":"ApplyPatch","description":"Edit files.","format":{"type":"grammar","syntax":"lark","definition":` +
		jsonString(testGrammar) + `}},{"type":"function","name":"read_file","strict":false,"parameters":{"type":"object"}}]`
	resp := g.post("/v1/chat/completions", tok, `{"model":"haiku","stream":true,"stream_options":{"include_usage":true},`+tools+
		`,"input":[{"type":"message","role":"user","content":[{"type":"input_text","text":"Fix the typo in a.go."}]}]}`)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, e2eRead(t, resp))
	}
	stream := ssestream.NewStream[openai.ChatCompletionChunk](ssestream.NewDecoder(resp), nil)
	var input, id, name, finish string
	for stream.Next() {
		ch := gjson.Parse(stream.Current().RawJSON())
		for _, tc := range ch.Get("choices.0.delta.tool_calls").Array() {
			if tc.Get("function").Exists() || tc.Get("index").Int() != 0 {
				t.Errorf("chunk %s", ch.Raw)
			}
			if v := tc.Get("id").Str; v != "" {
				id = v
				if tc.Get("type").Str != "custom" {
					t.Errorf("the call opened as %s", tc.Raw)
				}
			}
			if v := tc.Get("custom.name").Str; v != "" {
				name = v
			}
			input += tc.Get("custom.input").Str
		}
		if f := ch.Get("choices.0.finish_reason").Str; f != "" {
			finish = f
		}
	}
	resp.Body.Close()
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if id == "" || name != "ApplyPatch" || input != testPatch || finish != "tool_calls" {
		t.Errorf("the client read call %q %q with input %q, finish %q", id, name, input, finish)
	}
	if cost := e2eCost(t, g.lastCall()); !e2eNear(cost, 0.00123) {
		t.Errorf("cost_usd %v, want 0.00123", cost)
	}

	up.Enqueue("/v1/messages", fakeupstream.AnthropicTextStream("claude-haiku-4-5", "Patched."))
	resp = g.post("/v1/chat/completions", tok, `{"model":"haiku","stream":true,`+tools+`,"input":[`+
		`{"type":"message","role":"user","content":[{"type":"input_text","text":"Fix the typo in a.go."}]},`+
		`{"type":"custom_tool_call","call_id":`+jsonString(id)+`,"name":"ApplyPatch","input":`+jsonString(testPatch)+`},`+
		`{"type":"custom_tool_call_output","call_id":`+jsonString(id)+`,"output":"Done"}]}`)
	if b := e2eRead(t, resp); resp.StatusCode != http.StatusOK || !strings.Contains(b, "Patched.") {
		t.Fatalf("turn 2: %d %s", resp.StatusCode, b)
	}
	sent := gjson.Parse(up.RequestsTo("/v1/messages")[1].Body)
	use, res := sent.Get("messages.1.content.0"), sent.Get("messages.2.content.0")
	if use.Get("name").Str != "ApplyPatch" || use.Get("input.input").Str != testPatch || use.Get("id").Str != id ||
		res.Get("tool_use_id").Str != id || res.Get("content.0.text").Str != "Done" {
		t.Errorf("turn 2 reached Claude as %s", sent.Get("messages").Raw)
	}
}

// jsonString is s as a JSON string.
func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// openAINodeCustomStream streams custom and function calls with the
// official openai Node SDK's ChatCompletionStream and prints the final
// choice and usage as JSON.
const openAINodeCustomStream = `
const { createRequire } = require('node:module');
const req = createRequire(process.env.TOOLS_PACKAGE);
const { OpenAI } = req('openai');
const client = new OpenAI({ baseURL: process.env.METIS_URL + '/v1', apiKey: process.env.METIS_KEY, maxRetries: 0 });
(async () => {
  const stream = client.chat.completions.stream({
    model: 'haiku', stream_options: { include_usage: true },
    messages: [{ role: 'user', content: 'Fix the typo in a.go.' }],
    tools: [{ type: 'custom', custom: { name: 'apply.patch', format: { type: 'grammar', grammar: { syntax: 'lark', definition: process.env.GRAMMAR } } } },
            { type: 'function', function: { name: 'read_file', parameters: { type: 'object', properties: { path: { type: 'string' } } } } }],
  });
  const done = await stream.finalChatCompletion();
  console.log(JSON.stringify({ choice: done.choices[0], usage: done.usage }));
})().catch((e) => { console.error(e); process.exit(1); });
`

// The official openai Node SDK, whose ChatCompletionStream accumulates
// custom calls' input pieces, reads a Claude model's streamed answer of
// text, a custom call, a function call and a second custom call as the
// three calls, in order, under the custom tool's own name (apply.patch,
// renamed for Claude, which takes [a-zA-Z0-9_-] only).
//
// claude-haiku-4-5, $1 / $5 per MTok: 1,000 in; out, as the fake bills
// (len(text)/4 + 1 a text; len(name) + len(input)/3 + 10 a call, the
// name Claude knows being 20 bytes): "Looking." 3; the patch 20 + 79/3 +
// 10 = 56; read_file 9 + 15/3 + 10 = 24; "second" 20 + 18/3 + 10 = 36;
// 119 in all: 0.001 + 0.000595 = 0.001595.
func TestCustomToolStreamWithOpenAINodeSDK(t *testing.T) {
	g, up := e2eSetup(t, "")
	_, tok := e2eKey(g, "cursor")
	upName := ir.SafeToolName("apply.patch")
	rp := fakeupstream.AnthropicStream("claude-haiku-4-5", 1000, "tool_use", fakeupstream.TextBlock("Looking."),
		fakeupstream.ToolUseBlock(upName, testPatchInput), fakeupstream.ToolUseBlock("read_file", `{"path":"a.go"}`),
		fakeupstream.ToolUseBlock(upName, `{"input":"second"}`))
	rp.Gap = 2 * time.Millisecond
	up.Enqueue("/v1/messages", rp)
	out := runNodeScript(t, "openai", openAINodeCustomStream, "METIS_URL="+g.URL, "METIS_KEY="+tok, "GRAMMAR="+testGrammar)
	res := gjson.ParseBytes(out)
	tc := res.Get("choice.message.tool_calls")
	if len(tc.Array()) != 3 || res.Get("choice.finish_reason").Str != "tool_calls" || res.Get("choice.message.content").Str != "Looking." ||
		tc.Get("0.type").Str != "custom" || tc.Get("0.custom.name").Str != "apply.patch" || tc.Get("0.custom.input").Str != testPatch ||
		tc.Get("1.type").Str != "function" || tc.Get("1.function.name").Str != "read_file" || tc.Get("1.function.arguments").Str != `{"path":"a.go"}` ||
		tc.Get("2.type").Str != "custom" || tc.Get("2.custom.name").Str != "apply.patch" || tc.Get("2.custom.input").Str != "second" ||
		tc.Get("0.id").Str == "" || tc.Get("0.id").Str == tc.Get("2.id").Str {
		t.Errorf("the Node SDK's final message: %s", out)
	}
	if u := res.Get("usage"); u.Get("prompt_tokens").Int() != 1000 || u.Get("completion_tokens").Int() != 119 {
		t.Errorf("usage %s", u.Raw)
	}
	if c := e2eCost(t, g.lastCall()); !e2eNear(c, 0.001595) {
		t.Errorf("cost_usd %v, want 0.001595", c)
	}
	if sent := gjson.Parse(up.RequestsTo("/v1/messages")[0].Body); sent.Get("tools.0.name").Str != upName ||
		sent.Get("tools.0.input_schema.required.0").Str != "input" {
		t.Errorf("tools offered to Claude: %s", sent.Get("tools").Raw)
	}
}
