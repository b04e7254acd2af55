package metis

// Claude's thinking carried across a Responses API conversation: Claude
// wants a tool-using turn's signed thinking back at the start of that turn
// when the request that answers the tools thinks, so the gateway writes
// each thinking block as a reasoning item's encrypted_content (or keeps it
// with the item, for clients that refer back by id) and reads it back.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/responses"
	"github.com/openai/openai-go/v3/shared"
	"github.com/tidwall/gjson"

	oa "github.com/metisgateway/metis/adapters/openai"
	"github.com/metisgateway/metis/internal/fakeupstream"
)

// wantThinkingTurn checks that the assistant turn before the last message
// of a Messages request starts with the blocks want (thinking as
// "text|signature", redacted as "redacted:data") and that the request
// thinks.
func wantThinkingTurn(t *testing.T, what, body string, want ...string) {
	t.Helper()
	sent := gjson.Parse(body)
	msgs := sent.Get("messages").Array()
	if len(msgs) < 2 || sent.Get("thinking.type").Str == "" || sent.Get("thinking.type").Str == "disabled" {
		t.Errorf("%s: no thinking, or no tool loop: %.900s", what, body)
		return
	}
	turn := msgs[len(msgs)-2].Get("content").Array()
	var got []string
	for _, b := range turn {
		switch b.Get("type").Str {
		case "thinking":
			got = append(got, b.Get("thinking").Str+"|"+b.Get("signature").Str)
		case "redacted_thinking":
			got = append(got, "redacted:"+b.Get("data").Str)
		}
	}
	if len(turn) <= len(want) || strings.Join(got, " ") != strings.Join(want, " ") || turn[len(want)].Get("type").Str == "thinking" {
		t.Errorf("%s: the tool-using turn went to Claude as %s, want it to start with %q", what, msgs[len(msgs)-2].Raw, want)
	}
}

// openai-go, with store false and the reasoning's encrypted content asked
// for (as Codex CLI asks): the reasoning items carry Claude's thinking,
// redacted thinking included, and the SDK's own items sent back give
// Claude its signed thinking at the head of the tool-using turn, so the
// turn answering the tool thinks too. Taken on to an OpenAI model, the
// same conversation goes without the Claude thinking, which OpenAI could
// not read; OpenAI's own reasoning items stay.
//
// claude-haiku-4-5, $1 / $5 per MTok. Turn 1: 420 in; out thinking
// 29/4+1 = 8, redacted 20, get_weather 11 + 16/3 + 10 = 26, 54 in all:
// 0.00042 + 0.00027 = 0.00069. Turn 2: 480 in; out "It is 18 degrees in
// Paris." 26/4+1 = 7: 0.00048 + 0.000035 = 0.000515.
func TestResponsesAPIToClaudeKeepsThinking(t *testing.T) {
	g, up := e2eSetup(t, "")
	_, tok := e2eKey(g, "thinker")
	const thought, sig, redacted = "Paris weather needs the tool.", "EroCsig-1", "ZGF0YQ=="
	up.Enqueue("/v1/messages", fakeupstream.AnthropicMessage(haikuModel, 420, "tool_use",
		fakeupstream.ThinkingBlock(thought, sig), fakeupstream.RedactedThinkingBlock(redacted), fakeupstream.ToolUseBlock("get_weather", `{"city":"Paris"}`)))
	up.Enqueue("/v1/messages", fakeupstream.AnthropicMessage(haikuModel, 480, "end_turn", fakeupstream.TextBlock("It is 18 degrees in Paris.")))
	c := xOpenAI(g, tok)
	params := responses.ResponseNewParams{
		Model:           "haiku",
		Input:           responses.ResponseNewParamsInputUnion{OfInputItemList: responses.ResponseInputParam{responses.ResponseInputItemParamOfMessage("Weather in Paris?", responses.EasyInputMessageRoleUser)}},
		Tools:           []responses.ToolUnionParam{weatherTool()},
		MaxOutputTokens: openai.Int(4000),
		Reasoning:       shared.ReasoningParam{Effort: shared.ReasoningEffortLow, Summary: shared.ReasoningSummaryAuto},
		Store:           openai.Bool(false),
		Include:         []responses.ResponseIncludable{responses.ResponseIncludableReasoningEncryptedContent},
	}
	r, err := c.Responses.New(context.Background(), params)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Output) != 3 || r.Output[0].Type != "reasoning" || r.Output[1].Type != "reasoning" || r.Output[2].Type != "function_call" {
		t.Fatalf("turn 1: the SDK read %s", r.RawJSON())
	}
	rs, rd := r.Output[0].AsReasoning(), r.Output[1].AsReasoning()
	if len(rs.Summary) != 1 || rs.Summary[0].Text != thought || !strings.HasPrefix(rs.EncryptedContent, oa.ClaudeThinkingPrefix) ||
		len(rd.Summary) != 0 || !strings.HasPrefix(rd.EncryptedContent, oa.ClaudeThinkingPrefix) {
		t.Errorf("turn 1's reasoning items: %s %s", rs.RawJSON(), rd.RawJSON())
	}
	if first := gjson.Parse(up.RequestsTo("/v1/messages")[0].Body); first.Get("thinking").Raw != `{"type":"enabled","budget_tokens":1024}` {
		t.Errorf("turn 1 went to Claude with thinking %s", first.Get("thinking").Raw)
	}

	fc := r.Output[2].AsFunctionCall()
	rsParam, rdParam, call := rs.ToParam(), rd.ToParam(), fc.ToParam()
	params.Input.OfInputItemList = append(params.Input.OfInputItemList,
		responses.ResponseInputItemUnionParam{OfReasoning: &rsParam}, responses.ResponseInputItemUnionParam{OfReasoning: &rdParam},
		responses.ResponseInputItemUnionParam{OfFunctionCall: &call},
		responses.ResponseInputItemUnionParam{OfFunctionCallOutput: &responses.ResponseInputItemFunctionCallOutputParam{
			CallID: openai.String(fc.CallID), Output: responses.ResponseInputItemFunctionCallOutputOutputUnionParam{OfString: openai.String("18C")}}})
	r, err = c.Responses.New(context.Background(), params)
	if err != nil {
		t.Fatal(err)
	}
	if r.OutputText() != "It is 18 degrees in Paris." {
		t.Errorf("turn 2: the SDK read %s", r.RawJSON())
	}
	wantThinkingTurn(t, "turn 2", up.RequestsTo("/v1/messages")[1].Body, thought+"|"+sig, "redacted:"+redacted)
	calls := e2eCalls(g, 2)
	for i, want := range []float64{0.00069, 0.000515} {
		if cost := e2eCost(t, calls[i]); !e2eNear(cost, want) || calls[i]["error_class"] != nil {
			t.Errorf("call %d: %v, want cost %v", i, calls[i], want)
		}
	}

	// On to an OpenAI model, with one of OpenAI's own reasoning items
	// (encrypted for OpenAI) in the history too.
	params.Model = "nano"
	params.Input.OfInputItemList = append(params.Input.OfInputItemList,
		responses.ResponseInputItemParamOfMessage("And in Rome?", responses.EasyInputMessageRoleUser),
		responses.ResponseInputItemUnionParam{OfReasoning: &responses.ResponseReasoningItemParam{ID: "rs_openai_1",
			Summary: []responses.ResponseReasoningItemSummaryParam{}, EncryptedContent: openai.String("gAAAAB-openai")}})
	if _, err := c.Responses.New(context.Background(), params); err != nil {
		t.Fatal(err)
	}
	var reasoning []string
	for _, it := range gjson.Get(up.RequestsTo("/v1/responses")[0].Body, "input").Array() {
		if it.Get("type").Str == "reasoning" {
			reasoning = append(reasoning, it.Get("encrypted_content").Str)
		}
	}
	if len(reasoning) != 1 || reasoning[0] != "gAAAAB-openai" {
		t.Errorf("the OpenAI model was sent reasoning %q, want OpenAI's own only", reasoning)
	}
}

// aiSDKThinkingLoop is the AI SDK's default openai('haiku') (the Responses
// API) with a reasoning effort, streamed through a two-step tool loop:
// store left at its default, true, or false when STORE=false (the SDK then
// asks for the encrypted content and sends the reasoning back itself).
const aiSDKThinkingLoop = `
const { createRequire } = require('node:module');
const req = createRequire(process.env.TOOLS_PACKAGE);
const { streamText, tool, stepCountIs } = req('ai');
const { createOpenAI } = req('@ai-sdk/openai');
const { z } = req('zod');
const openai = createOpenAI({ baseURL: process.env.METIS_URL + '/v1', apiKey: process.env.METIS_KEY });
(async () => {
  const r = streamText({
    model: openai('haiku'), maxRetries: 0, maxOutputTokens: 4000, prompt: 'Weather in Paris?', stopWhen: stepCountIs(3),
    providerOptions: { openai: { reasoningEffort: 'low', forceReasoning: true,
      ...(process.env.STORE === 'false' ? { store: false, reasoningSummary: 'auto' } : {}) } },
    tools: { get_weather: tool({ description: 'The weather in a city.', inputSchema: z.object({ city: z.string() }),
      execute: async ({ city }) => '18C in ' + city }) },
  });
  const text = await r.text, steps = await r.steps;
  console.log(JSON.stringify({ text, steps: steps.length, reasoning: steps[0].reasoningText }));
})().catch((e) => { console.error(e); process.exit(1); });
`

// The Vercel AI SDK refers back to its earlier output by id (store at its
// default): the reasoning item the gateway kept for the answer holds
// Claude's signed thinking, which leads the tool-using turn on the second
// step, streamed.
//
// claude-haiku-4-5, $1 / $5 per MTok. Step 1: 400 in; out thinking
// "Check the weather tool." 23/4+1 = 6, "Let me check." 4, get_weather 26,
// 36 in all: 0.0004 + 0.00018 = 0.00058. Step 2: 480 in; out "It is 18C
// in Paris." 5: 0.00048 + 0.000025 = 0.000505.
func TestResponsesAPIToClaudeKeepsThinkingByReference(t *testing.T) {
	g, up := e2eSetup(t, "")
	_, tok := e2eKey(g, "aisdk-thinker")
	const thought, sig = "Check the weather tool.", "EroCsig-ai"
	step1 := fakeupstream.AnthropicStream(haikuModel, 400, "tool_use", fakeupstream.ThinkingBlock(thought, sig),
		fakeupstream.TextBlock("Let me check."), fakeupstream.ToolUseBlock("get_weather", `{"city":"Paris"}`))
	step1.Gap = time.Millisecond
	up.Enqueue("/v1/messages", step1, fakeupstream.AnthropicStream(haikuModel, 480, "end_turn", fakeupstream.TextBlock("It is 18C in Paris.")))
	tap := e2eNewTap(t, g.URL)
	out := runNodeScript(t, "@ai-sdk/openai", aiSDKThinkingLoop, "METIS_URL="+tap.URL, "METIS_KEY="+tok)
	if res := gjson.ParseBytes(out); res.Get("text").Str != "It is 18C in Paris." || res.Get("steps").Int() != 2 || res.Get("reasoning").Str != thought {
		t.Errorf("the AI SDK finished with %s", out)
	}
	client := tap.requests()
	if len(client) != 2 || !strings.Contains(gjson.Get(client[1].Body, "input").Raw, `"item_reference"`) ||
		strings.Contains(client[0].Body, "encrypted_content") {
		t.Errorf("the SDK's requests: %v", client)
	}
	sent := up.RequestsTo("/v1/messages")
	if len(sent) != 2 {
		t.Fatalf("%d requests reached Claude", len(sent))
	}
	wantThinkingTurn(t, "step 2", sent[1].Body, thought+"|"+sig)
	calls := e2eCalls(g, 2)
	for i, want := range []float64{0.00058, 0.000505} {
		if cost := e2eCost(t, calls[i]); !e2eNear(cost, want) || calls[i]["error_class"] != nil {
			t.Errorf("call %d: %v, want cost %v", i, calls[i], want)
		}
	}
}

// Codex CLI with a Claude model and a reasoning effort set: Codex sends
// Claude's thinking back (store false, encrypted content), so the turn
// answering its shell command thinks with the tool-using turn's signed
// thinking at its head, as Claude requires.
//
// claude-haiku-4-5, $1 / $5 per MTok. Turn 1: 9,000 in; out thinking
// "Run the echo command." 21/4+1 = 6, exec_command 12 + 29/3 + 10 = 31,
// 37 in all: 0.009 + 0.000185 = 0.009185. Turn 2: 9,200 in; out "The
// command printed metis-codex-ok." 35/4+1 = 9: 0.0092 + 0.000045 =
// 0.009245.
func TestCodexCLIWithClaudeModelKeepsThinking(t *testing.T) {
	bin := codexBinary(t)
	g, up := e2eSetup(t, "")
	_, tok := e2eKey(g, "codex-thinker")
	const thought, sig = "Run the echo command.", "EroCsig-codex"
	hasResult := func(r *fakeupstream.Recorded) bool { return strings.Contains(r.Body, `"tool_result"`) }
	turn1 := fakeupstream.AnthropicStream(haikuModel, 9000, "tool_use", fakeupstream.ThinkingBlock(thought, sig),
		fakeupstream.ToolUseBlock("exec_command", `{"cmd":"echo metis-codex-ok"}`))
	turn1.Gap = time.Millisecond
	turn1.Match = func(r *fakeupstream.Recorded) bool { return !hasResult(r) }
	turn2 := fakeupstream.AnthropicStream(haikuModel, 9200, "end_turn", fakeupstream.TextBlock("The command printed metis-codex-ok."))
	turn2.Match = hasResult
	up.Enqueue("/v1/messages", turn1, turn2)

	runCodexShellTask(t, bin, g.URL, tok, "claude-haiku-4-5", `model_reasoning_effort="low"`)
	sent := up.RequestsTo("/v1/messages")
	if len(sent) != 2 {
		t.Fatalf("%d Messages requests reached the provider, want 2", len(sent))
	}
	if th := gjson.Get(sent[0].Body, "thinking"); th.Get("type").Str != "enabled" || th.Get("budget_tokens").Int() != 1024 {
		t.Errorf("turn 1 went to Claude with thinking %s", th.Raw)
	}
	wantThinkingTurn(t, "turn 2", sent[1].Body, thought+"|"+sig)
	calls := e2eCalls(g, 2)
	for i, want := range []float64{0.009185, 0.009245} {
		if cost := e2eCost(t, calls[i]); !e2eNear(cost, want) || calls[i]["error_class"] != nil {
			t.Errorf("call %d: %v, want cost %v", i, calls[i], want)
		}
	}
}

// chatThinkingLoop runs a two-turn Chat Completions tool loop with openai-go
// on model, turn 1 streamed or not, turn 2 built from the SDK's own
// message (which has no place for Claude's thinking), and returns the
// Messages requests Claude got.
func chatThinkingLoop(t *testing.T, g *testGateway, up *fakeupstream.Server, tok, model string, stream bool) []fakeupstream.Recorded {
	t.Helper()
	c := xOpenAI(g, tok)
	params := openai.ChatCompletionNewParams{
		Model:               model,
		Messages:            []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Weather in Paris?")},
		Tools:               []openai.ChatCompletionToolUnionParam{xWeatherFn},
		ReasoningEffort:     shared.ReasoningEffortLow,
		MaxCompletionTokens: openai.Int(4000),
	}
	var msg openai.ChatCompletionMessage
	if stream {
		s := c.Chat.Completions.NewStreaming(context.Background(), params)
		acc := openai.ChatCompletionAccumulator{}
		for s.Next() {
			acc.AddChunk(s.Current())
		}
		if err := s.Err(); err != nil {
			t.Fatal(err)
		}
		msg = acc.Choices[0].Message
	} else {
		r, err := c.Chat.Completions.New(context.Background(), params)
		if err != nil {
			t.Fatal(err)
		}
		msg = r.Choices[0].Message
	}
	if len(msg.ToolCalls) != 1 {
		t.Fatalf("turn 1: the SDK read %s", msg.RawJSON())
	}
	params.Messages = append(params.Messages, msg.ToParam(), openai.ToolMessage("18C", msg.ToolCalls[0].ID))
	r, err := c.Chat.Completions.New(context.Background(), params)
	if err != nil {
		t.Fatal(err)
	}
	if r.Choices[0].Message.Content != "It is 18C in Paris." {
		t.Errorf("turn 2: the SDK read %s", r.RawJSON())
	}
	return up.RequestsTo("/v1/messages")
}

// A Chat Completions tool loop with reasoning on a Claude model: the
// client's assistant message cannot carry Claude's thinking, so the
// gateway keeps it under the tool calls' ids and puts it back at the head
// of the tool-using turn the next request answers: the turn thinks, where
// it went without thinking before, and an adaptive-only model (which
// cannot turn thinking off, and refuses the turn without it) gets it too.
// Another key's request for the same call id does not.
//
// claude-haiku-4-5, $1 / $5 per MTok. Turn 1: 400 in; out thinking "Paris
// needs the weather tool." 30/4+1 = 8, get_weather 26: 34: 0.0004 +
// 0.00017 = 0.00057. Turn 2: 480 in; out "It is 18C in Paris." 5: 0.00048
// + 0.000025 = 0.000505.
func TestChatCompletionsToClaudeKeepsThinking(t *testing.T) {
	const thought, sig = "Paris needs the weather tool.", "EroCsig-chat"
	for _, tc := range []struct {
		name, model, upstream string
		stream                bool
		thinking              string
	}{
		{"haiku", "haiku", haikuModel, false, `{"type":"enabled","budget_tokens":1024}`},
		{"haiku streamed", "haiku", haikuModel, true, `{"type":"enabled","budget_tokens":1024}`},
		{"adaptive-only streamed", "anthropic:claude-opus-4-7", "claude-opus-4-7", true, `{"type":"adaptive"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, up := e2eSetup(t, "")
			_, tok := e2eKey(g, "chat-thinker")
			call := fakeupstream.ToolUseBlock("get_weather", `{"city":"Paris"}`)
			call.ID = "toolu_01ChatThinking"
			turn1 := fakeupstream.AnthropicMessage(tc.upstream, 400, "tool_use", fakeupstream.ThinkingBlock(thought, sig), call)
			turn2 := fakeupstream.AnthropicMessage(tc.upstream, 480, "end_turn", fakeupstream.TextBlock("It is 18C in Paris."))
			if tc.stream {
				turn1 = fakeupstream.AnthropicStream(tc.upstream, 400, "tool_use", fakeupstream.ThinkingBlock(thought, sig), call)
			}
			up.Enqueue("/v1/messages", turn1, turn2)
			sent := chatThinkingLoop(t, g, up, tok, tc.model, tc.stream)
			if len(sent) != 2 || gjson.Get(sent[0].Body, "thinking").Raw != tc.thinking || gjson.Get(sent[1].Body, "thinking").Raw != tc.thinking {
				t.Fatalf("Claude got %d requests, thinking %s", len(sent), gjson.Get(sent[0].Body, "thinking").Raw)
			}
			wantThinkingTurn(t, "turn 2", sent[1].Body, thought+"|"+sig)
			if tc.model == "haiku" {
				calls := e2eCalls(g, 2)
				for i, want := range []float64{0.00057, 0.000505} {
					if cost := e2eCost(t, calls[i]); !e2eNear(cost, want) || calls[i]["error_class"] != nil {
						t.Errorf("call %d: %v, want cost %v", i, calls[i], want)
					}
				}
			}

			// Another key sending the same turn gets no thinking of this
			// key's answers: the turn goes without thinking.
			_, other := e2eKey(g, "other")
			up.Enqueue("/v1/messages", turn2)
			body := `{"model":"haiku","reasoning_effort":"low","max_completion_tokens":4000,"messages":[{"role":"user","content":"Weather in Paris?"},` +
				`{"role":"assistant","content":null,"tool_calls":[{"id":"toolu_01ChatThinking","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},` +
				`{"role":"tool","tool_call_id":"toolu_01ChatThinking","content":"18C"}],"tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object"}}}]}`
			if resp := g.post("/v1/chat/completions", other, body); resp.StatusCode != 200 {
				t.Fatalf("another key: %d %s", resp.StatusCode, e2eRead(t, resp))
			} else {
				e2eRead(t, resp)
			}
			if last := up.RequestsTo("/v1/messages")[2].Body; strings.Contains(last, sig) || gjson.Get(last, "thinking").Exists() {
				t.Errorf("another key's turn went to Claude as %.600s", last)
			}
		})
	}
}

// A streamed Chat Completions tool loop on a Claude model whose first
// answer's stream breaks after message_delta (stop reason and usage) but
// before message_stop: the client's stream ends whole and the client
// answers the tool, so the answer's signed thinking is kept as for a
// clean end (confirmation 19L2: it was kept on message_stop only, and on
// an adaptive-only model the next step met the provider's 400).
func TestChatThinkingKeptFromAStreamCutAfterItsUsage(t *testing.T) {
	const thought, sig = "Paris needs the weather tool.", "EroCsig-cut"
	for _, tc := range []struct{ name, model, upstream, thinking string }{
		{"haiku", "haiku", haikuModel, `{"type":"enabled","budget_tokens":1024}`},
		{"adaptive-only", "anthropic:claude-opus-4-7", "claude-opus-4-7", `{"type":"adaptive"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, up := e2eSetup(t, "")
			_, tok := e2eKey(g, "cut-thinker")
			call := fakeupstream.ToolUseBlock("get_weather", `{"city":"Paris"}`)
			call.ID = "toolu_01CutThinking"
			turn1 := fakeupstream.AnthropicStream(tc.upstream, 400, "tool_use", fakeupstream.ThinkingBlock(thought, sig), call)
			turn1.DieAfter = len(turn1.Events) - 1 // all but message_stop, then the connection breaks
			turn2 := fakeupstream.AnthropicMessage(tc.upstream, 480, "end_turn", fakeupstream.TextBlock("It is 18C in Paris."))
			up.Enqueue("/v1/messages", turn1, turn2)
			sent := chatThinkingLoop(t, g, up, tok, tc.model, true)
			if len(sent) != 2 || gjson.Get(sent[1].Body, "thinking").Raw != tc.thinking {
				t.Fatalf("Claude got %d requests, the second's thinking %s", len(sent), gjson.Get(sent[len(sent)-1].Body, "thinking").Raw)
			}
			wantThinkingTurn(t, "turn 2", sent[1].Body, thought+"|"+sig)
		})
	}
}

// A Chat Completions client that follows its tool messages with a user
// message (the common way to hand a tool's screenshot to the model, since
// a tool message holds text only; or an agent's environment note): Claude
// gets one user turn holding the tool results and the rest, which
// continues the tool loop, and the kept thinking goes back at the head of
// the tool-using turn (confirmation 19L2: only a turn right before the
// last message got it back).
func TestChatThinkingRestoredWhenAUserMessageFollowsToolResults(t *testing.T) {
	const thought, sig = "Paris needs the weather tool.", "EroCsig-usr"
	for _, tc := range []struct{ name, model, upstream, thinking string }{
		{"haiku", "haiku", haikuModel, `{"type":"enabled","budget_tokens":1024}`},
		{"adaptive-only", "anthropic:claude-opus-4-7", "claude-opus-4-7", `{"type":"adaptive"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, up := e2eSetup(t, "")
			_, tok := e2eKey(g, "user-after-tool")
			call := fakeupstream.ToolUseBlock("get_weather", `{"city":"Paris"}`)
			call.ID = "toolu_01UserAfterTool"
			up.Enqueue("/v1/messages",
				fakeupstream.AnthropicMessage(tc.upstream, 400, "tool_use", fakeupstream.ThinkingBlock(thought, sig), call),
				fakeupstream.AnthropicMessage(tc.upstream, 480, "end_turn", fakeupstream.TextBlock("It is 18C in Paris.")))
			tools := `"tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}]`
			first := `{"model":"` + tc.model + `","reasoning_effort":"low","max_completion_tokens":4000,"messages":[{"role":"user","content":"Weather in Paris?"}],` + tools + `}`
			if resp := g.post("/v1/chat/completions", tok, first); resp.StatusCode != 200 {
				t.Fatalf("turn 1: %d %s", resp.StatusCode, e2eRead(t, resp))
			} else {
				e2eRead(t, resp)
			}
			second := `{"model":"` + tc.model + `","reasoning_effort":"low","max_completion_tokens":4000,"messages":[{"role":"user","content":"Weather in Paris?"},` +
				`{"role":"assistant","content":null,"tool_calls":[{"id":"toolu_01UserAfterTool","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},` +
				`{"role":"tool","tool_call_id":"toolu_01UserAfterTool","content":"18C, see the map"},` +
				`{"role":"user","content":[{"type":"text","text":"The map the tool made:"},{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgo="}}]}],` + tools + `}`
			if resp := g.post("/v1/chat/completions", tok, second); resp.StatusCode != 200 {
				t.Fatalf("turn 2: %d %s", resp.StatusCode, e2eRead(t, resp))
			} else {
				e2eRead(t, resp)
			}
			sent := up.RequestsTo("/v1/messages")
			if len(sent) != 2 || gjson.Get(sent[1].Body, "thinking").Raw != tc.thinking {
				t.Fatalf("Claude got %d requests, the second's thinking %s", len(sent), gjson.Get(sent[len(sent)-1].Body, "thinking").Raw)
			}
			wantThinkingTurn(t, "turn 2", sent[1].Body, thought+"|"+sig)
		})
	}
}

// thinkingOf lists the thinking blocks (text|signature) that start each
// assistant message of a Messages request body.
func thinkingOf(body string) [][]string {
	var out [][]string
	for _, m := range gjson.Get(body, "messages").Array() {
		if m.Get("role").Str != "assistant" {
			continue
		}
		var got []string
		for _, b := range m.Get("content").Array() {
			switch b.Get("type").Str {
			case "thinking":
				got = append(got, b.Get("thinking").Str+"|"+b.Get("signature").Str)
			case "redacted_thinking":
				got = append(got, "redacted:"+b.Get("data").Str)
			}
		}
		out = append(out, got)
	}
	return out
}

// claudeThinking is the encrypted_content the gateway writes for Claude's
// thinking block (openai.encodeThinking).
func claudeThinking(text, sig string) string {
	raw, _ := json.Marshal([]map[string]string{{"type": "thinking", "thinking": text, "signature": sig}})
	return oa.ClaudeThinkingPrefix + base64.StdEncoding.EncodeToString(raw)
}

// blockTypes lists the block types of the assistant message before the
// last message of a Messages request (thinking as "thinking:<sig>").
func blockTypes(body string) []string {
	msgs := gjson.Get(body, "messages").Array()
	var out []string
	for _, b := range msgs[len(msgs)-2].Get("content").Array() {
		switch t := b.Get("type").Str; t {
		case "thinking":
			out = append(out, "thinking:"+b.Get("signature").Str)
		case "tool_use":
			out = append(out, "tool_use:"+b.Get("id").Str)
		default:
			out = append(out, t)
		}
	}
	return out
}

// A Chat Completions tool loop of three steps, each of Claude's answers
// thinking first (Opus 4.7 thinks between its tool calls; Sonnet 5.5 also
// checks that earlier messages did not change under a later thinking
// block): every tool-using message of the loop gets back the thinking the
// gateway kept for it, not only the last (review 19R2), and the request
// thinks. So too when the client follows its tool messages with a user
// message (a screenshot the tool made, a note: Chat Completions tool
// messages hold text only), which is part of the user turn answering the
// tools, not the loop's start (confirmation 19L3: from step 3 on Haiku
// went without thinking and the adaptive-only models met a 400).
func TestChatThinkingRestoredThroughTheLoop(t *testing.T) {
	shot := `,{"role":"user","content":[{"type":"text","text":"Screenshot of the result:"},{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgo="}}]}`
	for _, tc := range []struct{ name, upstream, after, thinking string }{
		{"claude-opus-4-7", "claude-opus-4-7", "", `{"type":"adaptive"}`},
		{"claude-sonnet-5-5", "claude-sonnet-5-5", "", `{"type":"adaptive"}`},
		{"haiku, user message after the tools", haikuModel, shot, `{"type":"enabled","budget_tokens":1024}`},
		{"claude-opus-4-7, user message after the tools", "claude-opus-4-7", shot, `{"type":"adaptive"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, up := e2eSetup(t, "")
			_, tok := e2eKey(g, "loop3")
			c1 := fakeupstream.ToolUseBlock("get_weather", `{"city":"Paris"}`)
			c1.ID = "toolu_01Step1"
			c2 := fakeupstream.ToolUseBlock("get_weather", `{"city":"Rome"}`)
			c2.ID = "toolu_01Step2"
			up.Enqueue("/v1/messages",
				fakeupstream.AnthropicMessage(tc.upstream, 400, "tool_use", fakeupstream.ThinkingBlock("Paris first.", "sig-t1"), c1),
				fakeupstream.AnthropicMessage(tc.upstream, 480, "tool_use", fakeupstream.ThinkingBlock("Now Rome.", "sig-t2"), c2),
				fakeupstream.AnthropicMessage(tc.upstream, 560, "end_turn", fakeupstream.TextBlock("Paris 18C, Rome 24C.")))
			tools := `"tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object"}}}]`
			head := `{"model":"anthropic:` + tc.upstream + `","reasoning_effort":"low","max_completion_tokens":4000,` + tools + `,"messages":[{"role":"user","content":"Weather in Paris and Rome?"}`
			a1 := `,{"role":"assistant","content":null,"tool_calls":[{"id":"toolu_01Step1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},{"role":"tool","tool_call_id":"toolu_01Step1","content":"18C"}` + tc.after
			a2 := `,{"role":"assistant","content":null,"tool_calls":[{"id":"toolu_01Step2","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Rome\"}"}}]},{"role":"tool","tool_call_id":"toolu_01Step2","content":"24C"}` + tc.after
			for i, body := range []string{head + `]}`, head + a1 + `]}`, head + a1 + a2 + `]}`} {
				resp := g.post("/v1/chat/completions", tok, body)
				if out := e2eRead(t, resp); resp.StatusCode != 200 {
					t.Fatalf("step %d: %d %s", i+1, resp.StatusCode, out)
				}
			}
			sent := up.RequestsTo("/v1/messages")
			if len(sent) != 3 {
				t.Fatalf("%d requests reached Claude", len(sent))
			}
			step2, step3 := thinkingOf(sent[1].Body), thinkingOf(sent[2].Body)
			if len(step2) != 1 || strings.Join(step2[0], " ") != "Paris first.|sig-t1" {
				t.Fatalf("step 2 went with %q", step2)
			}
			if got := gjson.Get(sent[2].Body, "thinking").Raw; got != tc.thinking || len(step3) != 2 ||
				strings.Join(step3[0], " ") != "Paris first.|sig-t1" || strings.Join(step3[1], " ") != "Now Rome.|sig-t2" {
				t.Errorf("step 3 went to Claude with thinking %s (want %s) and the assistant messages' thinking %q, want [[t1] [t2]]: %s",
					got, tc.thinking, step3, gjson.Get(sent[2].Body, "messages").Raw)
			}
		})
	}
}

// Codex's third request of a tool loop on Haiku 4.5, which thinks once at
// the start of its turn: the loop's first tool-using message carries the
// thinking Codex sent back and the second has none. The request keeps
// thinking, and the thinking Codex sent (review 19R2: judged by the last
// assistant message alone, thinking was turned off mid-turn and the block
// dropped).
func TestResponsesThinkingKeptThroughTheLoop(t *testing.T) {
	g, up := e2eSetup(t, "")
	_, tok := e2eKey(g, "codex3")
	up.Enqueue("/v1/messages", fakeupstream.AnthropicMessage(haikuModel, 560, "end_turn", fakeupstream.TextBlock("Paris 18C, Rome 24C.")))
	body := `{"model":"haiku","store":false,"include":["reasoning.encrypted_content"],"reasoning":{"effort":"low"},"max_output_tokens":4000,` +
		`"tools":[{"type":"function","name":"get_weather","parameters":{"type":"object"}}],"input":[` +
		`{"type":"message","role":"user","content":[{"type":"input_text","text":"Weather in Paris and Rome?"}]},` +
		`{"type":"reasoning","id":"rs_a_0","summary":[{"type":"summary_text","text":"Paris first."}],"encrypted_content":"` + claudeThinking("Paris first.", "sig-t1") + `"},` +
		`{"type":"function_call","id":"fc_a_1","call_id":"toolu_01A","name":"get_weather","arguments":"{\"city\":\"Paris\"}"},` +
		`{"type":"function_call_output","call_id":"toolu_01A","output":"18C"},` +
		`{"type":"function_call","id":"fc_b_0","call_id":"toolu_01B","name":"get_weather","arguments":"{\"city\":\"Rome\"}"},` +
		`{"type":"function_call_output","call_id":"toolu_01B","output":"24C"}]}`
	resp := g.post("/v1/responses", tok, body)
	if out := e2eRead(t, resp); resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, out)
	}
	sent := up.RequestsTo("/v1/messages")[0].Body
	if th := thinkingOf(sent); gjson.Get(sent, "thinking").Raw != `{"type":"enabled","budget_tokens":1024}` || len(th) != 2 || strings.Join(th[0], " ") != "Paris first.|sig-t1" {
		t.Errorf("step 3 went to Claude with thinking %q and the assistant messages' blocks %q; want thinking on, the turn starting with the thinking Codex sent: %s",
			gjson.Get(sent, "thinking").Raw, th, gjson.Get(sent, "messages").Raw)
	}
}

// The same with the real Codex CLI, a task Claude does in two commands.
func TestCodexCLIClaudeThreeStepLoopKeepsThinking(t *testing.T) {
	bin := codexBinary(t)
	g, up := e2eSetup(t, "")
	_, tok := e2eKey(g, "codex-three")
	results := func(r *fakeupstream.Recorded) int { return strings.Count(r.Body, `"type":"tool_result"`) }
	s1 := fakeupstream.AnthropicStream(haikuModel, 9000, "tool_use", fakeupstream.ThinkingBlock("Run two echo commands.", "EroCsig-codex3"),
		fakeupstream.ToolUseBlock("exec_command", `{"cmd":"echo metis-one"}`))
	s1.Match = func(r *fakeupstream.Recorded) bool { return results(r) == 0 }
	s2 := fakeupstream.AnthropicStream(haikuModel, 9100, "tool_use", fakeupstream.ToolUseBlock("exec_command", `{"cmd":"echo metis-two"}`))
	s2.Match = func(r *fakeupstream.Recorded) bool { return results(r) == 1 }
	s3 := fakeupstream.AnthropicStream(haikuModel, 9200, "end_turn", fakeupstream.TextBlock("Both commands ran: metis-one, metis-two."))
	s3.Match = func(r *fakeupstream.Recorded) bool { return results(r) == 2 }
	s1.Gap, s2.Gap = time.Millisecond, time.Millisecond
	up.Enqueue("/v1/messages", s1, s2, s3)
	run := runCodex(t, bin, g.URL, tok, "claude-haiku-4-5", "Run `echo metis-one`, then `echo metis-two`, and tell me what they printed.", 90*time.Second, `model_reasoning_effort="low"`)
	if run.err != nil || !strings.Contains(run.stdout, "metis-one, metis-two") {
		t.Fatalf("codex exec: %v\nstdout:\n%s\nstderr:\n%.2000s", run.err, run.stdout, run.stderr)
	}
	sent := up.RequestsTo("/v1/messages")
	if len(sent) != 3 {
		t.Fatalf("%d Messages requests", len(sent))
	}
	if th := thinkingOf(sent[2].Body); gjson.Get(sent[2].Body, "thinking").Raw != `{"type":"enabled","budget_tokens":1024}` ||
		len(th) != 2 || strings.Join(th[0], " ") != "Run two echo commands.|EroCsig-codex3" {
		t.Errorf("request 3 went to Claude with thinking %s and the assistant messages' blocks %q, though Codex sent the turn's thinking back",
			gjson.Get(sent[2].Body, "thinking").Raw, th)
	}
}

// Claude thinking between its tool calls (Opus 5.5 writes its text
// between calls as thinking blocks; adaptive thinking interleaves): one
// answer is [thinking, tool_use, thinking, tool_use], and it goes back to
// Claude in that order, sent back by a Responses API client or kept by
// the gateway for a Chat Completions one (review 19R2: every block went
// to the head of the turn).
func TestThinkingBetweenToolCallsKeepsItsPlace(t *testing.T) {
	const model = "claude-opus-5-5"
	want := "thinking:sig-1 tool_use:toolu_01X thinking:sig-2 tool_use:toolu_01Y"
	t.Run("responses", func(t *testing.T) {
		g, up := e2eSetup(t, "")
		_, tok := e2eKey(g, "codex55")
		up.Enqueue("/v1/messages", fakeupstream.AnthropicMessage(model, 560, "end_turn", fakeupstream.TextBlock("Paris 18C, Rome 24C.")))
		enc2 := func() string {
			raw, _ := json.Marshal([]map[string]string{{"type": "thinking", "thinking": "", "signature": "sig-2"}})
			return oa.ClaudeThinkingPrefix + base64.StdEncoding.EncodeToString(raw)
		}()
		body := `{"model":"anthropic:` + model + `","store":false,"include":["reasoning.encrypted_content"],"reasoning":{"effort":"low"},"max_output_tokens":4000,` +
			`"tools":[{"type":"function","name":"get_weather","parameters":{"type":"object"}}],"input":[` +
			`{"type":"message","role":"user","content":[{"type":"input_text","text":"Weather in Paris and Rome?"}]},` +
			`{"type":"reasoning","id":"rs_a_0","summary":[{"type":"summary_text","text":"Both cities."}],"encrypted_content":"` + claudeThinking("Both cities.", "sig-1") + `"},` +
			`{"type":"function_call","id":"fc_a_1","call_id":"toolu_01X","name":"get_weather","arguments":"{\"city\":\"Paris\"}"},` +
			`{"type":"reasoning","id":"rs_a_2","summary":[{"type":"summary_text","text":""}],"encrypted_content":"` + enc2 + `"},` +
			`{"type":"function_call","id":"fc_a_3","call_id":"toolu_01Y","name":"get_weather","arguments":"{\"city\":\"Rome\"}"},` +
			`{"type":"function_call_output","call_id":"toolu_01X","output":"18C"},{"type":"function_call_output","call_id":"toolu_01Y","output":"24C"}]}`
		resp := g.post("/v1/responses", tok, body)
		if out := e2eRead(t, resp); resp.StatusCode != 200 {
			t.Fatalf("%d %s", resp.StatusCode, out)
		}
		if got := strings.Join(blockTypes(up.RequestsTo("/v1/messages")[0].Body), " "); got != want {
			t.Errorf("the tool-using turn reached Claude as %q, Claude returned it as %q", got, want)
		}
	})
	t.Run("chat", func(t *testing.T) {
		g, up := e2eSetup(t, "")
		_, tok := e2eKey(g, "chat55")
		c1 := fakeupstream.ToolUseBlock("get_weather", `{"city":"Paris"}`)
		c1.ID = "toolu_01X"
		c2 := fakeupstream.ToolUseBlock("get_weather", `{"city":"Rome"}`)
		c2.ID = "toolu_01Y"
		up.Enqueue("/v1/messages",
			fakeupstream.AnthropicStream(model, 400, "tool_use", fakeupstream.ThinkingBlock("Both cities.", "sig-1"), c1, fakeupstream.ThinkingBlock("", "sig-2"), c2),
			fakeupstream.AnthropicMessage(model, 560, "end_turn", fakeupstream.TextBlock("Paris 18C, Rome 24C.")))
		tools := `"tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object"}}}]`
		head := `{"model":"anthropic:` + model + `","reasoning_effort":"low","max_completion_tokens":4000,` + tools + `,"messages":[{"role":"user","content":"Weather in Paris and Rome?"}`
		e2eRead(t, g.post("/v1/chat/completions", tok, `{"stream":true,`+head[1:]+`]}`))
		resp := g.post("/v1/chat/completions", tok, head+`,{"role":"assistant","content":null,"tool_calls":[`+
			`{"id":"toolu_01X","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}},`+
			`{"id":"toolu_01Y","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Rome\"}"}}]},`+
			`{"role":"tool","tool_call_id":"toolu_01X","content":"18C"},{"role":"tool","tool_call_id":"toolu_01Y","content":"24C"}]}`)
		if out := e2eRead(t, resp); resp.StatusCode != 200 {
			t.Fatalf("%d %s", resp.StatusCode, out)
		}
		if got := strings.Join(blockTypes(up.RequestsTo("/v1/messages")[1].Body), " "); got != want {
			t.Errorf("the tool-using turn reached Claude as %q, Claude returned it as %q", got, want)
		}
	})
}

// nodeResponsesThinking runs the openai Node SDK's ResponseStream on a
// Claude model, then sends its output items back with the tool's output.
const nodeResponsesThinking = `
const { createRequire } = require('node:module');
const req = createRequire(process.env.TOOLS_PACKAGE);
const OpenAI = req('openai');
const client = new OpenAI({ baseURL: process.env.METIS_URL + '/v1', apiKey: process.env.METIS_KEY, maxRetries: 0 });
(async () => {
  const input = [{ role: 'user', content: 'Weather in Paris?' }];
  const params = { model: 'haiku', store: false, include: ['reasoning.encrypted_content'], reasoning: { effort: 'low', summary: 'auto' },
    max_output_tokens: 4000, tools: [{ type: 'function', name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } }, strict: false }] };
  const s = client.responses.stream({ ...params, input });
  const events = [];
  s.on('event', (e) => events.push(e.type));
  const r = await s.finalResponse();
  const call = r.output.find((o) => o.type === 'function_call');
  const r2 = await client.responses.create({ ...params, input: [...input, ...r.output, { type: 'function_call_output', call_id: call.call_id, output: '18C' }] });
  console.log(JSON.stringify({ types: r.output.map((o) => o.type), enc: r.output.filter((o) => o.type === 'reasoning').map((o) => (o.encrypted_content || '').slice(0, 25)), text: r2.output_text, n: events.length }));
})().catch((e) => { console.error(e); process.exit(1); });
`

// The openai Node SDK's ResponseStream reads an answer with thinking,
// redacted thinking and a tool call; its output items, sent back as they
// are, give Claude both blocks at the head of the tool-using turn.
func TestNodeResponseStreamCarriesThinking(t *testing.T) {
	g, up := e2eSetup(t, "")
	_, tok := e2eKey(g, "node-thinker")
	s1 := fakeupstream.AnthropicStream(haikuModel, 400, "tool_use", fakeupstream.ThinkingBlock("Need the tool.", "sig-node"),
		fakeupstream.RedactedThinkingBlock("cmVk"), fakeupstream.ToolUseBlock("get_weather", `{"city":"Paris"}`))
	up.Enqueue("/v1/messages", s1, fakeupstream.AnthropicMessage(haikuModel, 480, "end_turn", fakeupstream.TextBlock("It is 18C.")))
	out := runNodeScript(t, "openai", nodeResponsesThinking, "METIS_URL="+g.URL, "METIS_KEY="+tok)
	res := gjson.ParseBytes(out)
	if res.Get("text").Str != "It is 18C." || res.Get("types").Raw != `["reasoning","reasoning","function_call"]` ||
		!strings.HasPrefix(res.Get("enc.0").Str, "metis.claude") || !strings.HasPrefix(res.Get("enc.1").Str, "metis.claude") {
		t.Errorf("the SDK read %s", out)
	}
	sent := up.RequestsTo("/v1/messages")
	if len(sent) != 2 {
		t.Fatalf("%d requests reached Claude", len(sent))
	}
	wantThinkingTurn(t, "step 2", sent[1].Body, "Need the tool.|sig-node", "redacted:cmVk")
}

// The Vercel AI SDK with store false sends Claude's reasoning items back
// with the encrypted content the gateway wrote (the redacted block's with
// an empty summary): step 2's tool-using turn starts with both blocks.
func TestAISDKStoreFalseCarriesThinking(t *testing.T) {
	g, up := e2eSetup(t, "")
	_, tok := e2eKey(g, "aisdk-nostore")
	s1 := fakeupstream.AnthropicStream(haikuModel, 400, "tool_use", fakeupstream.ThinkingBlock("Check the tool.", "sig-ai"),
		fakeupstream.RedactedThinkingBlock("cmVk"), fakeupstream.TextBlock("Let me check."), fakeupstream.ToolUseBlock("get_weather", `{"city":"Paris"}`))
	s1.Gap = time.Millisecond
	up.Enqueue("/v1/messages", s1, fakeupstream.AnthropicStream(haikuModel, 480, "end_turn", fakeupstream.TextBlock("It is 18C in Paris.")))
	tap := e2eNewTap(t, g.URL)
	out := runNodeScript(t, "@ai-sdk/openai", aiSDKThinkingLoop, "METIS_URL="+tap.URL, "METIS_KEY="+tok, "STORE=false")
	if res := gjson.ParseBytes(out); res.Get("text").Str != "It is 18C in Paris." || res.Get("steps").Int() != 2 || res.Get("reasoning").Str != "Check the tool." {
		t.Errorf("the AI SDK finished with %s", out)
	}
	if cl := tap.requests(); len(cl) != 2 || strings.Contains(cl[1].Body, `"item_reference"`) || !strings.Contains(cl[1].Body, oa.ClaudeThinkingPrefix) {
		t.Errorf("the SDK's second step: %v", cl)
	}
	sent := up.RequestsTo("/v1/messages")
	if len(sent) != 2 {
		t.Fatalf("%d requests reached Claude", len(sent))
	}
	wantThinkingTurn(t, "step 2", sent[1].Body, "Check the tool.|sig-ai", "redacted:cmVk")
}

// Claude writing text before a thinking block of its answer ([thinking,
// text, thinking, tool_use], or [text, thinking, tool_use]), streamed to a
// Chat Completions client: the next request gives the blocks back where
// Claude wrote them, as for the same answer not streamed (confirmation
// 19L3: the stream's text was not counted, so a block after text went to
// the head, and Anthropic refuses the latest assistant message's thinking
// moved).
func TestChatStreamedThinkingAfterTextKeepsItsPlace(t *testing.T) {
	const model = "claude-opus-4-7"
	for _, tc := range []struct {
		name   string
		blocks func(call fakeupstream.Block) []fakeupstream.Block
		want   string
	}{
		{"thinking-text-thinking-call", func(call fakeupstream.Block) []fakeupstream.Block {
			return []fakeupstream.Block{fakeupstream.ThinkingBlock("Paris.", "sig-a"), fakeupstream.TextBlock("Checking Paris."), fakeupstream.ThinkingBlock("Use the tool.", "sig-b"), call}
		}, "thinking:sig-a text thinking:sig-b tool_use:toolu_01Txt"},
		{"text-thinking-call", func(call fakeupstream.Block) []fakeupstream.Block {
			return []fakeupstream.Block{fakeupstream.TextBlock("Checking Paris."), fakeupstream.ThinkingBlock("", "sig-c"), call}
		}, "text thinking:sig-c tool_use:toolu_01Txt"},
	} {
		for _, stream := range []bool{false, true} {
			name := tc.name + "/json"
			if stream {
				name = tc.name + "/stream"
			}
			t.Run(name, func(t *testing.T) {
				g, up := e2eSetup(t, "")
				_, tok := e2eKey(g, "text-then-thinking")
				call := fakeupstream.ToolUseBlock("get_weather", `{"city":"Paris"}`)
				call.ID = "toolu_01Txt"
				first := fakeupstream.AnthropicMessage(model, 400, "tool_use", tc.blocks(call)...)
				if stream {
					first = fakeupstream.AnthropicStream(model, 400, "tool_use", tc.blocks(call)...)
				}
				up.Enqueue("/v1/messages", first, fakeupstream.AnthropicMessage(model, 480, "end_turn", fakeupstream.TextBlock("Paris 18C.")))
				tools := `"tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object"}}}]`
				head := `{"model":"anthropic:` + model + `","reasoning_effort":"low","max_completion_tokens":4000,` + tools + `,"messages":[{"role":"user","content":"Weather in Paris?"}`
				req1 := head + `]}`
				if stream {
					req1 = `{"stream":true,` + head[1:] + `]}`
				}
				if resp := g.post("/v1/chat/completions", tok, req1); resp.StatusCode != 200 {
					t.Fatalf("step 1: %d %s", resp.StatusCode, e2eRead(t, resp))
				} else {
					e2eRead(t, resp)
				}
				resp := g.post("/v1/chat/completions", tok, head+`,{"role":"assistant","content":"Checking Paris.","tool_calls":[`+
					`{"id":"toolu_01Txt","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},`+
					`{"role":"tool","tool_call_id":"toolu_01Txt","content":"18C"}]}`)
				if out := e2eRead(t, resp); resp.StatusCode != 200 {
					t.Fatalf("step 2: %d %s", resp.StatusCode, out)
				}
				if got := strings.Join(blockTypes(up.RequestsTo("/v1/messages")[1].Body), " "); got != tc.want {
					t.Errorf("the tool-using message reached Claude as %q; Claude wrote it as %q", got, tc.want)
				}
			})
		}
	}
}

// Codex sends back, as it got them, the items of Claude's answer
// [thinking, tool_use, thinking, text, tool_use] (reasoning, function_call,
// reasoning, message, function_call). LOSSY #31: a reasoning item's block
// goes into the assistant message "where it stood (before the call that
// followed it, for thinking between calls)", and the same answer kept for
// a Chat Completions client goes back so (review 19R3: the second block
// led the turn, ahead of the first call).
func TestResponsesThinkingBeforeTextBetweenCallsKeepsItsPlace(t *testing.T) {
	const model = "claude-opus-5-5"
	g, up := e2eSetup(t, "")
	_, tok := e2eKey(g, "codex-place")
	up.Enqueue("/v1/messages", fakeupstream.AnthropicMessage(model, 560, "end_turn", fakeupstream.TextBlock("Paris 18C, Rome 24C.")))
	body := `{"model":"anthropic:` + model + `","store":false,"include":["reasoning.encrypted_content"],"reasoning":{"effort":"low"},"max_output_tokens":4000,` +
		`"tools":[{"type":"function","name":"get_weather","parameters":{"type":"object"}}],"input":[` +
		`{"type":"message","role":"user","content":[{"type":"input_text","text":"Weather in Paris and Rome?"}]},` +
		`{"type":"reasoning","id":"rs_a_0","summary":[{"type":"summary_text","text":"Paris first."}],"encrypted_content":"` + claudeThinking("Paris first.", "sig-1") + `"},` +
		`{"type":"function_call","id":"fc_a_1","call_id":"toolu_01X","name":"get_weather","arguments":"{\"city\":\"Paris\"}"},` +
		`{"type":"reasoning","id":"rs_a_2","summary":[{"type":"summary_text","text":"Rome too."}],"encrypted_content":"` + claudeThinking("Rome too.", "sig-2") + `"},` +
		`{"type":"message","id":"msg_a_3","role":"assistant","content":[{"type":"output_text","text":"And Rome."}]},` +
		`{"type":"function_call","id":"fc_a_4","call_id":"toolu_01Y","name":"get_weather","arguments":"{\"city\":\"Rome\"}"},` +
		`{"type":"function_call_output","call_id":"toolu_01X","output":"18C"},{"type":"function_call_output","call_id":"toolu_01Y","output":"24C"}]}`
	resp := g.post("/v1/responses", tok, body)
	if out := e2eRead(t, resp); resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, out)
	}
	got := strings.Join(blockTypes(up.RequestsTo("/v1/messages")[0].Body), " ")
	if i, j := strings.Index(got, "thinking:sig-2"), strings.Index(got, "tool_use:toolu_01X"); i < j {
		t.Errorf("the tool-using turn reached Claude as %q: the block Claude wrote after the first call leads the turn", got)
	}
}

// A Chat Completions client that sends one answer of Claude's, its text
// and its tool calls, as two assistant messages in a row: Claude gets
// them as one message (same-role messages merge), so the kept thinking
// leads the first (review 19R3: it led the second, behind the text after
// the merge, and the loop's first message did not start with thinking).
func TestChatThinkingRestoredIntoASplitAnswer(t *testing.T) {
	for _, tc := range []struct{ name, model, upstream, thinking string }{
		{"haiku", "haiku", haikuModel, `{"type":"enabled","budget_tokens":1024}`},
		{"adaptive-only", "anthropic:claude-opus-4-7", "claude-opus-4-7", `{"type":"adaptive"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, up := e2eSetup(t, "")
			_, tok := e2eKey(g, "split")
			call := fakeupstream.ToolUseBlock("get_weather", `{"city":"Paris"}`)
			call.ID = "toolu_01Split"
			up.Enqueue("/v1/messages",
				fakeupstream.AnthropicMessage(tc.upstream, 400, "tool_use", fakeupstream.ThinkingBlock("Paris.", "sig-s"), fakeupstream.TextBlock("Checking."), call),
				fakeupstream.AnthropicMessage(tc.upstream, 480, "end_turn", fakeupstream.TextBlock("18C.")))
			tools := `"tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object"}}}]`
			head := `{"model":"` + tc.model + `","reasoning_effort":"low","max_completion_tokens":4000,` + tools + `,"messages":[{"role":"user","content":"Weather in Paris?"}`
			e2eRead(t, g.post("/v1/chat/completions", tok, head+`]}`))
			resp := g.post("/v1/chat/completions", tok, head+`,{"role":"assistant","content":"Checking."},`+
				`{"role":"assistant","content":null,"tool_calls":[{"id":"toolu_01Split","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},`+
				`{"role":"tool","tool_call_id":"toolu_01Split","content":"18C"}]}`)
			if out := e2eRead(t, resp); resp.StatusCode != 200 {
				t.Fatalf("step 2: %d %s", resp.StatusCode, out)
			}
			sent := up.RequestsTo("/v1/messages")[1].Body
			if got := strings.Join(blockTypes(sent), " "); got != "thinking:sig-s text tool_use:toolu_01Split" || gjson.Get(sent, "thinking").Raw != tc.thinking {
				t.Errorf("step 2 reached Claude with thinking %s and the turn %q; want %s and thinking first", gjson.Get(sent, "thinking").Raw, got, tc.thinking)
			}
		})
	}
}

// A Responses API request asking for reasoning summaries (Codex asks
// "auto") gets Claude's thinking text from the models that omit it by
// default (Opus 4.7 on, the 5 family): the request asks for it
// (thinking.display "summarized"), and the summaries are not empty
// (review 20D). Older models, which return the text anyway, and requests
// asking no summary go as before.
func TestResponsesReasoningSummaryAsksForThinkingText(t *testing.T) {
	g, up := e2eSetup(t, "")
	_, tok := e2eKey(g, "summaries")
	for _, tc := range []struct{ name, model, upstream, reasoning, display string }{
		{"opus-5-5, summary auto", "anthropic:claude-opus-5-5", "claude-opus-5-5", `{"effort":"low","summary":"auto"}`, "summarized"},
		{"opus-4-7, summary detailed", "anthropic:claude-opus-4-7", "claude-opus-4-7", `{"effort":"low","summary":"detailed"}`, "summarized"},
		{"opus-5-5, no summary", "anthropic:claude-opus-5-5", "claude-opus-5-5", `{"effort":"low"}`, ""},
		{"haiku-4-5, summary auto", "haiku", haikuModel, `{"effort":"low","summary":"auto"}`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up.Enqueue("/v1/messages", fakeupstream.AnthropicMessage(tc.upstream, 400, "end_turn",
				fakeupstream.ThinkingBlock("Paris is in France.", "sig-sum"), fakeupstream.TextBlock("Paris.")))
			resp := g.post("/v1/responses", tok, `{"model":"`+tc.model+`","input":"Capital of France?","reasoning":`+tc.reasoning+`}`,
				"Authorization", "Bearer "+tok)
			body := e2eRead(t, resp)
			if resp.StatusCode != 200 {
				t.Fatalf("%d %s", resp.StatusCode, body)
			}
			sent := up.RequestsTo("/v1/messages")
			last := sent[len(sent)-1].Body
			if got := gjson.Get(last, "thinking.display").Str; got != tc.display || !gjson.Get(last, "thinking.type").Exists() {
				t.Errorf("Claude was asked for thinking %s; want display %q", gjson.Get(last, "thinking").Raw, tc.display)
			}
			if got := gjson.Get(body, `output.#(type=="reasoning").summary.0.text`).Str; got != "Paris is in France." {
				t.Errorf("the reasoning summary reads %q: %s", got, body)
			}
		})
	}
}
