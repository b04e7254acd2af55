package metis

// Cross-shape through a real Caddy: the official OpenAI SDK on a Claude
// model and the official Anthropic SDK on an OpenAI model, with tools,
// streaming and not, against a fake provider replaying recorded answers.
// The client must not notice; the ledger prices the provider's native usage.

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	aoption "github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/openai/openai-go/v3"
	ooption "github.com/openai/openai-go/v3/option"

	"github.com/metisgateway/metis/internal/fakeupstream"
	"github.com/metisgateway/metis/store"
)

func xOpenAI(g *testGateway, tok string) openai.Client {
	return openai.NewClient(ooption.WithBaseURL(g.URL+"/v1"), ooption.WithAPIKey(tok), ooption.WithMaxRetries(0),
		ooption.WithRequestTimeout(30*time.Second))
}

func xAnthropic(g *testGateway, tok string) anthropic.Client {
	return anthropic.NewClient(aoption.WithBaseURL(g.URL), aoption.WithAPIKey(tok), aoption.WithMaxRetries(0),
		aoption.WithRequestTimeout(30*time.Second))
}

var xWeatherFn = openai.ChatCompletionFunctionTool(openai.FunctionDefinitionParam{
	Name:        "get_weather",
	Description: openai.String("Get weather"),
	Parameters: openai.FunctionParameters{
		"type":       "object",
		"properties": map[string]any{"city": map[string]any{"type": "string"}, "units": map[string]any{"type": "string"}},
		"required":   []string{"city"},
	},
})

// An OpenAI-shape client uses a Claude model with a tool-use round trip.
func TestCrossOpenAIClientClaudeModelToolRoundTrip(t *testing.T) {
	g, up := newGatewayWithFake(t)
	_, tok := g.issueKey(store.IssueParams{Name: "cursor"})
	c := xOpenAI(g, tok)
	ctx := context.Background()
	params := openai.ChatCompletionNewParams{
		Model:    "sonnet",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.SystemMessage("Be brief."), openai.UserMessage("Weather in SF?")},
		Tools:    []openai.ChatCompletionToolUnionParam{xWeatherFn},
	}
	// Turn 1: the fake replays the recorded Anthropic tool_use answer.
	r1, err := c.Chat.Completions.New(ctx, params)
	if err != nil {
		t.Fatalf("turn 1: %v", err)
	}
	ch := r1.Choices[0]
	if ch.FinishReason != "tool_calls" || len(ch.Message.ToolCalls) != 1 {
		t.Fatalf("turn 1: finish %q, %d tool calls", ch.FinishReason, len(ch.Message.ToolCalls))
	}
	tc := ch.Message.ToolCalls[0]
	var args map[string]any
	if err := json.Unmarshal([]byte(tc.Function.Arguments), &args); err != nil || tc.Function.Name != "get_weather" || args["city"] != "San Francisco" {
		t.Fatalf("tool call %s %s", tc.Function.Name, tc.Function.Arguments)
	}
	if !strings.Contains(ch.Message.Content, "weather in San Francisco") {
		t.Errorf("turn 1 text %q", ch.Message.Content)
	}
	// OpenAI convention: prompt_tokens includes cache reads and writes (none here).
	if r1.Usage.PromptTokens != 402 || r1.Usage.CompletionTokens != 89 || r1.Model != "sonnet" {
		t.Errorf("turn 1 usage %d/%d model %q", r1.Usage.PromptTokens, r1.Usage.CompletionTokens, r1.Model)
	}
	// What reached the provider was a valid Anthropic request.
	up1 := up.RequestsTo("/v1/messages")[0].JSON()
	if up1["model"] != "claude-3-7-sonnet-20250219" || up1["max_tokens"] == nil || up1["system"] == nil {
		t.Errorf("upstream request %v", up1)
	}
	// Turn 2: the tool result goes back as a tool_result block.
	params.Messages = append(params.Messages, ch.Message.ToParam(), openai.ToolMessage("68 degrees fahrenheit", tc.ID))
	r2, err := c.Chat.Completions.New(ctx, params)
	if err != nil {
		t.Fatalf("turn 2: %v", err)
	}
	if r2.Choices[0].FinishReason != "stop" || !strings.Contains(r2.Choices[0].Message.Content, "68 degrees") {
		t.Errorf("turn 2: %q %q", r2.Choices[0].FinishReason, r2.Choices[0].Message.Content)
	}
	res := fakeupstream.ToolResults(up.RequestsTo("/v1/messages")[1].Body)
	if len(res) != 1 || res[0]["tool_use_id"] != tc.ID {
		t.Errorf("tool results upstream: %v", res)
	}
	calls := g.waitEvents(store.TypeCallCompleted, 2)
	if len(calls) != 2 {
		t.Fatalf("%d calls", len(calls))
	}
	// The ledger keeps Anthropic-native counts and prices them:
	// turn 1: 402 × $3/MTok + 89 × $15/MTok = 0.001206 + 0.001335 = 0.002541
	// turn 2: 514 × $3/MTok + 19 × $15/MTok = 0.001542 + 0.000285 = 0.001827
	for i, want := range []float64{0.002541, 0.001827} {
		if calls[i]["inbound_shape"] != "openai" || calls[i]["provider"] != "anthropic" || !near(costOf(t, calls[i]), want) {
			t.Errorf("call %d: %v", i, calls[i])
		}
	}
	if rd := g.events(store.TypeRouteDecided)[0]; rd["cross_shape"] != true {
		t.Errorf("route.decided %v", rd)
	}
}

// An OpenAI-shape client streams from a Claude model: text then a tool call,
// and the usage chunk it asked for.
func TestCrossOpenAIClientClaudeModelStream(t *testing.T) {
	g, up := newGatewayWithFake(t)
	_, tok := g.issueKey(store.IssueParams{Name: "cursor"})
	rp := fakeupstream.FromFixture(fakeupstream.FixtureAnthropicStream, 0)
	rp.Gap = 5 * time.Millisecond
	up.Enqueue("/v1/messages", rp)
	c := xOpenAI(g, tok)
	stream := c.Chat.Completions.NewStreaming(context.Background(), openai.ChatCompletionNewParams{
		Model:         "anthropic:claude-3-7-sonnet-20250219",
		Messages:      []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Weather in SF?")},
		Tools:         []openai.ChatCompletionToolUnionParam{xWeatherFn},
		StreamOptions: openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)},
	})
	acc := openai.ChatCompletionAccumulator{}
	for stream.Next() {
		acc.AddChunk(stream.Current())
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	msg := acc.Choices[0].Message
	if !strings.HasPrefix(msg.Content, "I'd be happy to check the weather in San Francisco") {
		t.Errorf("text %q", msg.Content)
	}
	if len(msg.ToolCalls) != 1 || msg.ToolCalls[0].Function.Name != "get_weather" ||
		!strings.Contains(msg.ToolCalls[0].Function.Arguments, "San Francisco") {
		t.Errorf("tool calls %+v", msg.ToolCalls)
	}
	if acc.Choices[0].FinishReason != "tool_calls" || acc.Usage.PromptTokens != 394 || acc.Usage.CompletionTokens != 79 {
		t.Errorf("finish %q usage %+v", acc.Choices[0].FinishReason, acc.Usage)
	}
	call := g.lastCall()
	// 394 × 3e-6 + 79 × 15e-6 = 0.002367
	if !near(costOf(t, call), 0.002367) || call["stream"] != true || call["error_class"] != nil {
		t.Errorf("call %v", call)
	}
}

// An Anthropic-shape client uses an OpenAI model with a tool-use round trip.
func TestCrossAnthropicClientOpenAIModelToolRoundTrip(t *testing.T) {
	g, up := newGatewayWithFake(t)
	_, tok := g.issueKey(store.IssueParams{Name: "claude-sdk"})
	c := xAnthropic(g, tok)
	ctx := context.Background()
	tool := anthropic.ToolUnionParam{OfTool: &anthropic.ToolParam{
		Name:        "get_current_weather",
		InputSchema: anthropic.ToolInputSchemaParam{Properties: map[string]any{"location": map[string]any{"type": "string"}}},
	}}
	params := anthropic.MessageNewParams{
		Model: "gpt-5-nano", MaxTokens: 1024,
		System:   []anthropic.TextBlockParam{{Text: "Be brief."}},
		Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("Weather in Boston?"))},
		Tools:    []anthropic.ToolUnionParam{tool},
	}
	// Turn 1: the fake replays the recorded gpt-5-nano tool call.
	m1, err := c.Messages.New(ctx, params)
	if err != nil {
		t.Fatalf("turn 1: %v", err)
	}
	if m1.StopReason != anthropic.StopReasonToolUse {
		t.Fatalf("stop %q content %+v", m1.StopReason, m1.Content)
	}
	var tu anthropic.ContentBlockUnion
	for _, b := range m1.Content {
		if b.Type == "tool_use" {
			tu = b
		}
	}
	var in map[string]any
	_ = json.Unmarshal(tu.Input, &in)
	if tu.Name != "get_current_weather" || in["location"] != "Boston, MA" {
		t.Fatalf("tool_use %s %s", tu.Name, tu.Input)
	}
	// Anthropic convention: input_tokens excludes cached tokens (none here).
	if m1.Usage.InputTokens != 162 || m1.Usage.OutputTokens != 287 {
		t.Errorf("usage %+v", m1.Usage)
	}
	upReq := up.RequestsTo("/v1/chat/completions")[0].JSON()
	if upReq["model"] != "gpt-5-nano" || upReq["max_completion_tokens"] == nil {
		t.Errorf("upstream request %v", upReq)
	}
	params.Messages = append(params.Messages, m1.ToParam(),
		anthropic.NewUserMessage(anthropic.NewToolResultBlock(tu.ID, "It is 41°F in Boston.", false)))
	m2, err := c.Messages.New(ctx, params)
	if err != nil {
		t.Fatalf("turn 2: %v", err)
	}
	if m2.StopReason != anthropic.StopReasonEndTurn || len(m2.Content) == 0 || m2.Content[0].Text == "" {
		t.Errorf("turn 2: %s %+v", m2.StopReason, m2.Content)
	}
	// The tool result went upstream as a tool message answering the call id.
	var sent struct {
		Messages []map[string]any `json:"messages"`
	}
	_ = json.Unmarshal([]byte(up.RequestsTo("/v1/chat/completions")[1].Body), &sent)
	found := false
	for _, m := range sent.Messages {
		found = found || (m["role"] == "tool" && m["tool_call_id"] == tu.ID)
	}
	if !found {
		t.Errorf("no tool message for %s upstream: %v", tu.ID, sent.Messages)
	}
	calls := g.waitEvents(store.TypeCallCompleted, 2)
	// turn 1, gpt-5-nano: 162 × $0.05/MTok + 287 × $0.40/MTok = 8.1e-6 + 1.148e-4 = 1.229e-4
	if calls[0]["inbound_shape"] != "anthropic" || calls[0]["provider"] != "openai" || !near(costOf(t, calls[0]), 1.229e-4) ||
		num(calls[0], "reasoning_tokens") != 256 {
		t.Errorf("call 0 %v", calls[0])
	}
}

// An Anthropic-shape client streams from an OpenAI model making two
// parallel tool calls; the SDK's accumulator sees two tool_use blocks.
func TestCrossAnthropicClientOpenAIModelStream(t *testing.T) {
	g, up := newGatewayWithFake(t)
	_, tok := g.issueKey(store.IssueParams{Name: "claude-sdk"})
	rp := fakeupstream.FromFixture(fakeupstream.FixtureOpenAIToolsStream, 0)
	rp.Gap = 2 * time.Millisecond
	up.Enqueue("/v1/chat/completions", rp)
	c := xAnthropic(g, tok)
	stream := c.Messages.NewStreaming(context.Background(), anthropic.MessageNewParams{
		Model: "openai:gpt-4o-2024-08-06", MaxTokens: 256,
		Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("Weather in Edinburgh and the AAPL price?"))},
		Tools: []anthropic.ToolUnionParam{
			{OfTool: &anthropic.ToolParam{Name: "GetWeatherArgs", InputSchema: anthropic.ToolInputSchemaParam{}}},
			{OfTool: &anthropic.ToolParam{Name: "get_stock_price", InputSchema: anthropic.ToolInputSchemaParam{}}},
		},
	})
	msg := anthropic.Message{}
	for stream.Next() {
		if err := msg.Accumulate(stream.Current()); err != nil {
			t.Fatal(err)
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, b := range msg.Content {
		if b.Type == "tool_use" {
			names = append(names, b.Name)
			var in map[string]any
			if err := json.Unmarshal(b.Input, &in); err != nil || len(in) == 0 {
				t.Errorf("tool %s input %s", b.Name, b.Input)
			}
		}
	}
	if strings.Join(names, ",") != "GetWeatherArgs,get_stock_price" || msg.StopReason != anthropic.StopReasonToolUse {
		t.Errorf("tools %v stop %q", names, msg.StopReason)
	}
	if msg.Usage.InputTokens != 149 || msg.Usage.OutputTokens != 60 {
		t.Errorf("usage %+v", msg.Usage)
	}
	// The gateway asked upstream for usage even though an Anthropic client can't.
	upReq := up.RequestsTo("/v1/chat/completions")[0].JSON()
	if so, _ := upReq["stream_options"].(map[string]any); so["include_usage"] != true {
		t.Errorf("upstream stream_options %v", upReq["stream_options"])
	}
	call := g.lastCall()
	// gpt-4o-2024-08-06: 149 × $2.50/MTok + 60 × $10/MTok = 0.0003725 + 0.0006 = 0.0009725
	if !near(costOf(t, call), 0.0009725) || call["usage_source"] != "provider" {
		t.Errorf("call %v", call)
	}
}

// Errors cross shapes: an OpenAI 429 reaches an Anthropic client as its
// rate_limit_error with retry-after, and an Anthropic 529 an OpenAI client as 503.
func TestCrossErrorsTranslated(t *testing.T) {
	g, up := newGatewayWithFake(t)
	_, tok := g.issueKey(store.IssueParams{Name: "k"})
	for range 3 { // max_retries 2: three attempts, all rate limited
		rp := fakeupstream.OpenAIError(429, "requests", "rate_limit_exceeded", "Rate limit reached for gpt-5-nano")
		rp.Header.Set("Retry-After", "30")
		up.Enqueue("/v1/chat/completions", rp)
	}
	resp := g.post("/v1/messages", tok, `{"model":"gpt-5-nano","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`)
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	errObj, _ := body["error"].(map[string]any)
	if resp.StatusCode != 429 || body["type"] != "error" || errObj["type"] != "rate_limit_error" || resp.Header.Get("Retry-After") != "30" {
		t.Errorf("429 to Anthropic client: %d %v retry-after %q", resp.StatusCode, body, resp.Header.Get("Retry-After"))
	}
	for range 3 {
		up.Enqueue("/v1/messages", fakeupstream.AnthropicError(529, "overloaded_error", "Overloaded"))
	}
	resp = g.post("/v1/chat/completions", tok, `{"model":"haiku","messages":[{"role":"user","content":"hi"}]}`)
	body = nil
	_ = json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	errObj, _ = body["error"].(map[string]any)
	if resp.StatusCode != 503 || errObj["type"] != "server_error" {
		t.Errorf("529 to OpenAI client: %d %v", resp.StatusCode, body)
	}
	// The trace records the status each client got: 429 kept, 529 → 503.
	calls := g.waitEvents(store.TypeCallCompleted, 2)
	if len(calls) != 2 || calls[0]["error_class"] != "RATE_LIMITED" || calls[1]["error_class"] != "UPSTREAM_ERROR" ||
		calls[0]["status"] != float64(429) || calls[1]["status"] != float64(503) {
		t.Errorf("calls %v", calls)
	}
}

// TestCrossUntranslatableNamesTheField: a request the other shape cannot
// express (n > 1 to a Claude model, LOSSY.md #3) gets a 400 in the caller's
// shape whose param names the field and whose message is the translator's
// own, and never reaches the provider.
func TestCrossUntranslatableNamesTheField(t *testing.T) {
	g, up := newGatewayWithFake(t)
	_, tok := g.issueKey(store.IssueParams{Name: "k"})
	resp := g.post("/v1/chat/completions", tok, `{"model":"haiku","n":2,"messages":[{"role":"user","content":"hi"}]}`)
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	errObj, _ := body["error"].(map[string]any)
	msg, _ := errObj["message"].(string)
	if resp.StatusCode != 400 || errObj["type"] != "invalid_request_error" || errObj["param"] != "n" ||
		!strings.HasPrefix(msg, "n: ") || strings.Contains(msg, "translating") {
		t.Errorf("n=2 to a Claude model: %d %v", resp.StatusCode, body)
	}
	if n := up.Count("/v1/messages"); n != 0 {
		t.Errorf("the provider got %d requests", n)
	}
}

// TestCrossRequestIDUnderTheClientsName: a translated answer carries the
// provider's request id under the header the client's SDK reads it from
// (anthropic-sdk-go's err.RequestID reads request-id, the OpenAI SDKs
// x-request-id), whatever name the provider used, on success and error.
func TestCrossRequestIDUnderTheClientsName(t *testing.T) {
	g, up := e2eSetup(t, "")
	_, tok := e2eKey(g, "rid")
	e := fakeupstream.OpenAIError(400, "invalid_request_error", "unsupported_value", "bad value")
	up.Enqueue("/v1/chat/completions", e)
	resp := g.post("/v1/messages", tok, `{"model":"nano","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}`, e2eAnthropicHdr...)
	e2eRead(t, resp)
	if want := e.Header.Get("X-Request-Id"); want == "" || resp.StatusCode != 400 || resp.Header.Get("Request-Id") != want {
		t.Errorf("Anthropic client, OpenAI provider's 400: %d request-id %q, want %q", resp.StatusCode, resp.Header.Get("Request-Id"), want)
	}
	ok := fakeupstream.AnthropicMessage("claude-haiku-4-5", 10, "end_turn", fakeupstream.TextBlock("hi"))
	stream := fakeupstream.AnthropicStream("claude-haiku-4-5", 10, "end_turn", fakeupstream.TextBlock("hi"))
	ae := fakeupstream.AnthropicError(400, "invalid_request_error", "bad")
	up.Enqueue("/v1/messages", ok, stream, ae)
	for i, want := range []string{ok.Header.Get("Request-Id"), stream.Header.Get("Request-Id"), ae.Header.Get("Request-Id")} {
		resp = g.post("/v1/chat/completions", tok, fmt.Sprintf(`{"model":"haiku","stream":%v,"messages":[{"role":"user","content":"hi"}]}`, i == 1))
		e2eRead(t, resp)
		if want == "" || resp.Header.Get("X-Request-Id") != want {
			t.Errorf("OpenAI client, Anthropic provider's answer %d (%d): x-request-id %q, want %q", i, resp.StatusCode, resp.Header.Get("X-Request-Id"), want)
		}
	}
}
