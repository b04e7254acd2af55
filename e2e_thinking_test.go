package metis

// Claude's thinking carried across a Responses API conversation: Claude
// wants a tool-using turn's signed thinking back at the start of that turn
// when the request that answers the tools thinks, so the gateway writes
// each thinking block as a reasoning item's encrypted_content (or keeps it
// with the item, for clients that refer back by id) and reads it back.

import (
	"context"
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
// API, store left at its default, true) with a reasoning effort, streamed
// through a two-step tool loop.
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
    providerOptions: { openai: { reasoningEffort: 'low', forceReasoning: true } },
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
