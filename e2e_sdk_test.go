package metis

// End-to-end with the real SDKs: the official Anthropic and OpenAI Go
// clients pointed at the gateway, non-streaming and streaming tool-use
// round trips from the recorded fixtures, what each SDK parsed, and what
// landed in SQLite with its dollars.

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	aoption "github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/openai/openai-go/v3"
	ooption "github.com/openai/openai-go/v3/option"

	"github.com/metisgateway/metis/internal/fakeupstream"
)

func e2eAnthropicClient(g *testGateway, tok string) anthropic.Client {
	return anthropic.NewClient(aoption.WithBaseURL(g.URL), aoption.WithAPIKey(tok), aoption.WithMaxRetries(0),
		aoption.WithRequestTimeout(30*time.Second))
}

func e2eOpenAIClient(g *testGateway, tok string) openai.Client {
	return openai.NewClient(ooption.WithBaseURL(g.URL+"/v1"), ooption.WithAPIKey(tok), ooption.WithMaxRetries(0),
		ooption.WithRequestTimeout(30*time.Second))
}

// e2eSameJSON compares two JSON texts by value.
func e2eSameJSON(t *testing.T, got, want string) bool {
	t.Helper()
	var a, b any
	if err := json.Unmarshal([]byte(got), &a); err != nil {
		t.Errorf("not JSON: %q", got)
		return false
	}
	if err := json.Unmarshal([]byte(want), &b); err != nil {
		t.Fatalf("bad expectation %q", want)
	}
	return reflect.DeepEqual(a, b)
}

// e2eCheckCalls checks the recorded calls' models, usage and dollars.
func e2eCheckCalls(t *testing.T, g *testGateway, shape string, want []e2eWantCall) {
	t.Helper()
	calls := e2eCalls(g, len(want))
	if len(calls) != len(want) {
		t.Fatalf("%d calls recorded, want %d", len(calls), len(want))
	}
	for i, w := range want {
		c := calls[i]
		e2eWant(t, "call", c, map[string]any{"inbound_shape": shape, "model": w.model, "stream": w.stream,
			"status": 200, "error_class": nil, "usage_source": "provider",
			"input_tokens": w.in, "output_tokens": w.out, "attempts": 1})
		if cost := e2eCost(t, c); !e2eNear(cost, w.cost) {
			t.Errorf("call %d: cost %v, want %v", i, cost, w.cost)
		}
		e2eCheckTriple(g, c)
	}
}

type e2eWantCall struct {
	model   string
	stream  bool
	in, out int
	cost    float64
}

var e2eWeatherTool = anthropic.ToolUnionParam{OfTool: &anthropic.ToolParam{
	Name:        "get_weather",
	Description: anthropic.String("Get weather"),
	InputSchema: anthropic.ToolInputSchemaParam{
		Properties: map[string]any{
			"city":  map[string]any{"type": "string"},
			"units": map[string]any{"type": "string", "enum": []string{"celsius", "fahrenheit"}},
		},
		Required: []string{"city"},
	},
}}

func TestE2EAnthropicSDK(t *testing.T) {
	t.Run("tool-round-trip", func(t *testing.T) {
		g, up := e2eSetup(t, "")
		_, tok := e2eKey(g, "sdk-anthropic")
		up.Enqueue("/v1/messages",
			fakeupstream.FromFixture(fakeupstream.FixtureAnthropicNonStream, 0),
			fakeupstream.FromFixture(fakeupstream.FixtureAnthropicNonStream, 1))
		client := e2eAnthropicClient(g, tok)
		ctx := context.Background()
		user := anthropic.NewUserMessage(anthropic.NewTextBlock("What's the weather in San Francisco? Use fahrenheit."))
		params := anthropic.MessageNewParams{
			Model: "sonnet", MaxTokens: 512,
			Messages: []anthropic.MessageParam{user},
			Tools:    []anthropic.ToolUnionParam{e2eWeatherTool},
		}
		msg, err := client.Messages.New(ctx, params)
		if err != nil {
			t.Fatalf("turn 1: %v", err)
		}
		if msg.StopReason != anthropic.StopReasonToolUse || len(msg.Content) != 2 {
			t.Fatalf("turn 1: stop %q, %d blocks", msg.StopReason, len(msg.Content))
		}
		if msg.Content[0].Type != "text" || msg.Content[0].Text != "I'll get the current weather in San Francisco for you in Fahrenheit." {
			t.Errorf("turn 1 text: %+v", msg.Content[0])
		}
		tu := msg.Content[1]
		if tu.Type != "tool_use" || tu.Name != "get_weather" || tu.ID != "toolu_01TZR6ZrLHdpAWdmhVPuDfjQ" ||
			!e2eSameJSON(t, string(tu.Input), `{"city":"San Francisco","units":"fahrenheit"}`) {
			t.Errorf("turn 1 tool_use: %s %s %s %s", tu.Type, tu.ID, tu.Name, tu.Input)
		}
		if msg.Usage.InputTokens != 402 || msg.Usage.OutputTokens != 89 || msg.Model != "claude-3-7-sonnet-20250219" {
			t.Errorf("turn 1 usage %d/%d model %s", msg.Usage.InputTokens, msg.Usage.OutputTokens, msg.Model)
		}

		params.Messages = append(params.Messages, msg.ToParam(), anthropic.NewUserMessage(
			anthropic.NewToolResultBlock(tu.ID, "The weather in San Francisco is 68 degrees fahrenheit.", false)))
		msg2, err := client.Messages.New(ctx, params)
		if err != nil {
			t.Fatalf("turn 2: %v", err)
		}
		if msg2.StopReason != anthropic.StopReasonEndTurn || len(msg2.Content) != 1 ||
			msg2.Content[0].Text != "The current temperature in San Francisco is 68 degrees Fahrenheit." {
			t.Errorf("turn 2: %s %+v", msg2.StopReason, msg2.Content)
		}
		if msg2.Usage.InputTokens != 514 || msg2.Usage.OutputTokens != 19 {
			t.Errorf("turn 2 usage %d/%d", msg2.Usage.InputTokens, msg2.Usage.OutputTokens)
		}
		// The tool result reached the provider, after the assistant turn.
		reqs := up.RequestsTo("/v1/messages")
		if len(reqs) != 2 {
			t.Fatalf("%d upstream requests", len(reqs))
		}
		res := fakeupstream.ToolResults(reqs[1].Body)
		if len(res) != 1 || res[0]["tool_use_id"] != tu.ID {
			t.Errorf("turn 2 tool results upstream: %v", res)
		}
		if reqs[0].APIKey() != testAnthropicKey || strings.Contains(reqs[0].Header.Get("Authorization"), tok) {
			t.Errorf("upstream credentials %q", reqs[0].APIKey())
		}
		// claude-3-7-sonnet, $3 in / $15 out per MTok:
		// turn 1: 402 × 3e-6 + 89 × 15e-6 = 0.001206 + 0.001335 = 0.002541
		// turn 2: 514 × 3e-6 + 19 × 15e-6 = 0.001542 + 0.000285 = 0.001827
		e2eCheckCalls(t, g, "anthropic", []e2eWantCall{
			{"claude-3-7-sonnet-20250219", false, 402, 89, 0.002541},
			{"claude-3-7-sonnet-20250219", false, 514, 19, 0.001827},
		})
	})

	t.Run("streaming-tool-round-trip", func(t *testing.T) {
		g, up := e2eSetup(t, "")
		_, tok := e2eKey(g, "sdk-anthropic-stream")
		final := "It is 68 degrees and sunny in San Francisco."
		up.Enqueue("/v1/messages",
			fakeupstream.FromFixture(fakeupstream.FixtureAnthropicStream, 0),
			fakeupstream.AnthropicStream("claude-3-7-sonnet-20250219", 450, "end_turn", fakeupstream.TextBlock(final)))
		client := e2eAnthropicClient(g, tok)
		ctx := context.Background()
		params := anthropic.MessageNewParams{
			Model: "claude-3-7-sonnet-20250219", MaxTokens: 512,
			Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("Weather in SF?"))},
			Tools:    []anthropic.ToolUnionParam{e2eWeatherTool},
		}
		stream := func() anthropic.Message {
			t.Helper()
			s := client.Messages.NewStreaming(ctx, params)
			var m anthropic.Message
			for s.Next() {
				if err := m.Accumulate(s.Current()); err != nil {
					t.Fatalf("accumulating: %v", err)
				}
			}
			if err := s.Err(); err != nil {
				t.Fatalf("stream: %v", err)
			}
			return m
		}
		msg := stream()
		if msg.StopReason != anthropic.StopReasonToolUse || len(msg.Content) != 2 {
			t.Fatalf("turn 1: stop %q, %d blocks", msg.StopReason, len(msg.Content))
		}
		if want := "I'd be happy to check the weather in San Francisco for you. Let me get that information for you right away."; msg.Content[0].Text != want {
			t.Errorf("turn 1 text %q", msg.Content[0].Text)
		}
		tu := msg.Content[1]
		if tu.Name != "get_weather" || tu.ID != "toolu_017QoD96fYwGzCWvLfaPADWg" || !e2eSameJSON(t, string(tu.Input), `{"city":"San Francisco"}`) {
			t.Errorf("turn 1 tool_use %s %s %s", tu.ID, tu.Name, tu.Input)
		}
		if msg.Usage.InputTokens != 394 || msg.Usage.OutputTokens != 79 {
			t.Errorf("turn 1 usage %d/%d", msg.Usage.InputTokens, msg.Usage.OutputTokens)
		}
		params.Messages = append(params.Messages, msg.ToParam(), anthropic.NewUserMessage(
			anthropic.NewToolResultBlock(tu.ID, "68 degrees, sunny", false)))
		msg2 := stream()
		if msg2.StopReason != anthropic.StopReasonEndTurn || len(msg2.Content) != 1 || msg2.Content[0].Text != final {
			t.Errorf("turn 2: %s %+v", msg2.StopReason, msg2.Content)
		}
		// AnthropicStream's output is len(text)/4+1 = 44/4+1 = 12.
		if msg2.Usage.InputTokens != 450 || msg2.Usage.OutputTokens != 12 {
			t.Errorf("turn 2 usage %d/%d", msg2.Usage.InputTokens, msg2.Usage.OutputTokens)
		}
		if res := fakeupstream.ToolResults(up.RequestsTo("/v1/messages")[1].Body); len(res) != 1 || res[0]["tool_use_id"] != tu.ID {
			t.Errorf("turn 2 tool results upstream: %v", res)
		}
		// turn 1: 394 × 3e-6 + 79 × 15e-6 = 0.001182 + 0.001185 = 0.002367
		// turn 2: 450 × 3e-6 + 12 × 15e-6 = 0.00135 + 0.00018 = 0.00153
		e2eCheckCalls(t, g, "anthropic", []e2eWantCall{
			{"claude-3-7-sonnet-20250219", true, 394, 79, 0.002367},
			{"claude-3-7-sonnet-20250219", true, 450, 12, 0.00153},
		})
	})

	t.Run("streaming-openai-model", func(t *testing.T) {
		// The Anthropic SDK talking to an OpenAI model through the gateway.
		g, up := e2eSetup(t, "")
		_, tok := e2eKey(g, "sdk-anthropic-cross")
		up.Enqueue("/v1/chat/completions", fakeupstream.OpenAITextStream("gpt-5-nano", "Hello from nano.", 25, true))
		client := e2eAnthropicClient(g, tok)
		s := client.Messages.NewStreaming(context.Background(), anthropic.MessageNewParams{
			Model: "nano", MaxTokens: 100,
			Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("Say hello."))},
		})
		var m anthropic.Message
		for s.Next() {
			if err := m.Accumulate(s.Current()); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Err(); err != nil {
			t.Fatal(err)
		}
		// Completion tokens len("Hello from nano.")/4+1 = 5.
		if len(m.Content) != 1 || m.Content[0].Text != "Hello from nano." || m.StopReason != anthropic.StopReasonEndTurn ||
			m.Usage.InputTokens != 25 || m.Usage.OutputTokens != 5 {
			t.Errorf("parsed %+v stop %s usage %d/%d", m.Content, m.StopReason, m.Usage.InputTokens, m.Usage.OutputTokens)
		}
		// gpt-5-nano: 25 × 0.05e-6 + 5 × 0.40e-6 = 0.00000125 + 0.000002 = 0.00000325
		e2eCheckCalls(t, g, "anthropic", []e2eWantCall{{"gpt-5-nano", true, 25, 5, 0.00000325}})
	})

	t.Run("rate-limit-error", func(t *testing.T) {
		g, up := e2eSetup(t, "")
		_, tok := e2eKey(g, "sdk-anthropic-429")
		rl := fakeupstream.AnthropicError(429, "rate_limit_error", "This request would exceed your organization's rate limit of 50,000 input tokens per minute.")
		rl.Header.Set("Retry-After", "60")
		up.Enqueue("/v1/messages", rl)
		client := e2eAnthropicClient(g, tok)
		_, err := client.Messages.New(context.Background(), anthropic.MessageNewParams{
			Model: "haiku", MaxTokens: 10,
			Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("hi"))},
		})
		var apiErr *anthropic.Error
		if !errors.As(err, &apiErr) {
			t.Fatalf("error %v (%T), want *anthropic.Error", err, err)
		}
		if apiErr.StatusCode != http.StatusTooManyRequests || apiErr.Type() != anthropic.ErrorTypeRateLimitError ||
			apiErr.Message != "This request would exceed your organization's rate limit of 50,000 input tokens per minute." ||
			apiErr.RequestID != rl.Header.Get("Request-Id") {
			t.Errorf("SDK error: status %d type %q message %q request id %q", apiErr.StatusCode, apiErr.Type(), apiErr.Message, apiErr.RequestID)
		}
		call := e2eCalls(g, 1)[0]
		e2eWant(t, "call", call, map[string]any{"status": 429, "error_class": "RATE_LIMITED"})
	})
}

func TestE2EOpenAISDK(t *testing.T) {
	weatherTool := openai.ChatCompletionFunctionTool(openai.FunctionDefinitionParam{
		Name:        "get_current_weather",
		Description: openai.String("Get the current weather in a given location"),
		Parameters: openai.FunctionParameters{
			"type": "object",
			"properties": map[string]any{
				"location": map[string]any{"type": "string"},
				"unit":     map[string]any{"type": "string", "enum": []string{"celsius", "fahrenheit"}},
			},
			"required": []string{"location"},
		},
	})

	t.Run("tool-round-trip", func(t *testing.T) {
		g, up := e2eSetup(t, "")
		_, tok := e2eKey(g, "sdk-openai")
		final := "It is 72 degrees and sunny in Boston."
		up.Enqueue("/v1/chat/completions",
			fakeupstream.FromFixture(fakeupstream.FixtureOpenAINonStream, 0),
			fakeupstream.OpenAICompletion("gpt-5-nano", final, 200))
		client := e2eOpenAIClient(g, tok)
		ctx := context.Background()
		params := openai.ChatCompletionNewParams{
			Model:    "gpt-5-nano",
			Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("What is the weather like in Boston today?")},
			Tools:    []openai.ChatCompletionToolUnionParam{weatherTool},
		}
		comp, err := client.Chat.Completions.New(ctx, params)
		if err != nil {
			t.Fatalf("turn 1: %v", err)
		}
		if len(comp.Choices) != 1 || comp.Choices[0].FinishReason != "tool_calls" || len(comp.Choices[0].Message.ToolCalls) != 1 {
			t.Fatalf("turn 1: %+v", comp.Choices)
		}
		tc := comp.Choices[0].Message.ToolCalls[0]
		if tc.ID != "call_8fxy20OEu9ulvvaa5b5CzVA4" || tc.Function.Name != "get_current_weather" ||
			!e2eSameJSON(t, tc.Function.Arguments, `{"location":"Boston, MA","unit":"fahrenheit"}`) {
			t.Errorf("turn 1 tool call %s %s %s", tc.ID, tc.Function.Name, tc.Function.Arguments)
		}
		if comp.Usage.PromptTokens != 162 || comp.Usage.CompletionTokens != 287 || comp.Usage.CompletionTokensDetails.ReasoningTokens != 256 {
			t.Errorf("turn 1 usage %+v", comp.Usage)
		}
		params.Messages = append(params.Messages, comp.Choices[0].Message.ToParam(),
			openai.ToolMessage(`{"temperature":72,"conditions":"sunny"}`, tc.ID))
		comp2, err := client.Chat.Completions.New(ctx, params)
		if err != nil {
			t.Fatalf("turn 2: %v", err)
		}
		// OpenAICompletion's completion tokens: len(final)/4+1 = 37/4+1 = 10.
		if comp2.Choices[0].Message.Content != final || comp2.Choices[0].FinishReason != "stop" ||
			comp2.Usage.PromptTokens != 200 || comp2.Usage.CompletionTokens != 10 {
			t.Errorf("turn 2: %q %s %+v", comp2.Choices[0].Message.Content, comp2.Choices[0].FinishReason, comp2.Usage)
		}
		reqs := up.RequestsTo("/v1/chat/completions")
		if len(reqs) != 2 {
			t.Fatalf("%d upstream requests", len(reqs))
		}
		var sent struct {
			Messages []struct {
				Role       string `json:"role"`
				ToolCallID string `json:"tool_call_id"`
				ToolCalls  []struct {
					ID string `json:"id"`
				} `json:"tool_calls"`
			} `json:"messages"`
		}
		_ = json.Unmarshal([]byte(reqs[1].Body), &sent)
		if n := len(sent.Messages); n != 3 || sent.Messages[1].Role != "assistant" || len(sent.Messages[1].ToolCalls) != 1 ||
			sent.Messages[2].Role != "tool" || sent.Messages[2].ToolCallID != tc.ID {
			t.Errorf("turn 2 upstream body: %s", reqs[1].Body)
		}
		if reqs[1].APIKey() != testOpenAIKey {
			t.Errorf("upstream credentials %q", reqs[1].APIKey())
		}
		// gpt-5-nano, $0.05 in / $0.40 out per MTok (reasoning is output):
		// turn 1: 162 × 0.05e-6 + 287 × 0.40e-6 = 0.0000081 + 0.0001148 = 0.0001229
		// turn 2: 200 × 0.05e-6 + 10 × 0.40e-6 = 0.00001 + 0.000004 = 0.000014
		e2eCheckCalls(t, g, "openai", []e2eWantCall{
			{"gpt-5-nano", false, 162, 287, 0.0001229},
			{"gpt-5-nano", false, 200, 10, 0.000014},
		})
	})

	t.Run("streaming-tool-round-trip", func(t *testing.T) {
		g, up := e2eSetup(t, "")
		_, tok := e2eKey(g, "sdk-openai-stream")
		final := "Edinburgh: 12 C. AAPL: 230 USD."
		up.Enqueue("/v1/chat/completions",
			fakeupstream.FromFixture(fakeupstream.FixtureOpenAIToolsStream, 0),
			fakeupstream.OpenAITextStream("gpt-4o-2024-08-06", final, 220, true))
		client := e2eOpenAIClient(g, tok)
		ctx := context.Background()
		params := openai.ChatCompletionNewParams{
			Model:         "gpt-4o",
			Messages:      []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Weather in Edinburgh and the AAPL price?")},
			StreamOptions: openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)},
		}
		stream := func() openai.ChatCompletion {
			t.Helper()
			s := client.Chat.Completions.NewStreaming(ctx, params)
			var acc openai.ChatCompletionAccumulator
			for s.Next() {
				acc.AddChunk(s.Current())
			}
			if err := s.Err(); err != nil {
				t.Fatalf("stream: %v", err)
			}
			return acc.ChatCompletion
		}
		comp := stream()
		if len(comp.Choices) != 1 || comp.Choices[0].FinishReason != "tool_calls" || len(comp.Choices[0].Message.ToolCalls) != 2 {
			t.Fatalf("turn 1: %+v", comp.Choices)
		}
		calls := comp.Choices[0].Message.ToolCalls
		if calls[0].Function.Name != "GetWeatherArgs" || !e2eSameJSON(t, calls[0].Function.Arguments, `{"city": "Edinburgh", "country": "GB", "units": "c"}`) ||
			calls[1].Function.Name != "get_stock_price" || !e2eSameJSON(t, calls[1].Function.Arguments, `{"ticker": "AAPL", "exchange": "NASDAQ"}`) {
			t.Errorf("turn 1 tool calls %+v", calls)
		}
		if comp.Usage.PromptTokens != 149 || comp.Usage.CompletionTokens != 60 {
			t.Errorf("turn 1 usage %+v", comp.Usage)
		}
		params.Messages = append(params.Messages, comp.Choices[0].Message.ToParam(),
			openai.ToolMessage("12 C", calls[0].ID), openai.ToolMessage("230 USD", calls[1].ID))
		comp2 := stream()
		// Completion tokens: len(final)/4+1 = 31/4+1 = 8.
		if len(comp2.Choices) != 1 || comp2.Choices[0].Message.Content != final || comp2.Choices[0].FinishReason != "stop" ||
			comp2.Usage.PromptTokens != 220 || comp2.Usage.CompletionTokens != 8 {
			t.Errorf("turn 2: %+v usage %+v", comp2.Choices, comp2.Usage)
		}
		// gpt-4o-2024-08-06, $2.50 in / $10 out per MTok:
		// turn 1: 149 × 2.5e-6 + 60 × 10e-6 = 0.0003725 + 0.0006 = 0.0009725
		// turn 2: 220 × 2.5e-6 + 8 × 10e-6 = 0.00055 + 0.00008 = 0.00063
		e2eCheckCalls(t, g, "openai", []e2eWantCall{
			{"gpt-4o", true, 149, 60, 0.0009725},
			{"gpt-4o", true, 220, 8, 0.00063},
		})
	})

	t.Run("anthropic-model", func(t *testing.T) {
		// The OpenAI SDK calling a Claude model: the recorded Anthropic
		// tool_use turn comes back as OpenAI tool_calls.
		g, up := e2eSetup(t, "")
		_, tok := e2eKey(g, "sdk-openai-cross")
		up.Enqueue("/v1/messages", fakeupstream.FromFixture(fakeupstream.FixtureAnthropicNonStream, 0))
		client := e2eOpenAIClient(g, tok)
		comp, err := client.Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{
			Model:    "sonnet",
			Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("What's the weather in San Francisco? Use fahrenheit.")},
			Tools: []openai.ChatCompletionToolUnionParam{openai.ChatCompletionFunctionTool(openai.FunctionDefinitionParam{
				Name: "get_weather", Parameters: openai.FunctionParameters{"type": "object", "properties": map[string]any{"city": map[string]any{"type": "string"}}},
			})},
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(comp.Choices) != 1 || comp.Choices[0].FinishReason != "tool_calls" || len(comp.Choices[0].Message.ToolCalls) != 1 {
			t.Fatalf("parsed %+v", comp.Choices)
		}
		tc := comp.Choices[0].Message.ToolCalls[0]
		if tc.ID != "toolu_01TZR6ZrLHdpAWdmhVPuDfjQ" || tc.Function.Name != "get_weather" ||
			!e2eSameJSON(t, tc.Function.Arguments, `{"city":"San Francisco","units":"fahrenheit"}`) {
			t.Errorf("tool call %s %s %s", tc.ID, tc.Function.Name, tc.Function.Arguments)
		}
		if comp.Usage.PromptTokens != 402 || comp.Usage.CompletionTokens != 89 {
			t.Errorf("usage %+v", comp.Usage)
		}
		if r := up.RequestsTo("/v1/messages"); len(r) != 1 || r[0].APIKey() != testAnthropicKey {
			t.Fatalf("upstream %v", r)
		}
		// 402 × 3e-6 + 89 × 15e-6 = 0.002541
		e2eCheckCalls(t, g, "openai", []e2eWantCall{{"claude-3-7-sonnet-20250219", false, 402, 89, 0.002541}})
	})

	t.Run("rate-limit-error", func(t *testing.T) {
		g, up := e2eSetup(t, "")
		_, tok := e2eKey(g, "sdk-openai-429")
		msg := "Rate limit reached for gpt-5-nano in organization org-x on tokens per min (TPM): Limit 30000, Used 30000, Requested 120. Please try again in 60s."
		rl := fakeupstream.OpenAIError(429, "tokens", "rate_limit_exceeded", msg)
		rl.Header.Set("Retry-After", "60")
		up.Enqueue("/v1/chat/completions", rl)
		client := e2eOpenAIClient(g, tok)
		_, err := client.Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{
			Model:    "nano",
			Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")},
		})
		var apiErr *openai.Error
		if !errors.As(err, &apiErr) {
			t.Fatalf("error %v (%T), want *openai.Error", err, err)
		}
		if apiErr.StatusCode != http.StatusTooManyRequests || apiErr.Code != "rate_limit_exceeded" || apiErr.Type != "tokens" || apiErr.Message != msg {
			t.Errorf("SDK error: status %d code %q type %q message %q", apiErr.StatusCode, apiErr.Code, apiErr.Type, apiErr.Message)
		}
		call := e2eCalls(g, 1)[0]
		e2eWant(t, "call", call, map[string]any{"status": 429, "error_class": "RATE_LIMITED", "inbound_shape": "openai"})
	})
}

// A request the gateway refuses carries its request.rejected event's id
// where each SDK reads a request id, so a developer's error report finds
// its row in the trace; the refusals had no id at all (audit 12E).
func TestE2ERefusalCarriesItsEventID(t *testing.T) {
	g, _ := e2eSetup(t, "")
	_, tok := e2eKey(g, "restricted", "haiku")
	ctx := context.Background()
	reasonOf := func(id string) string {
		g.sync()
		var typ, reason string
		err := g.db().QueryRow(`SELECT type, json_extract(payload_json, '$.reason') FROM events WHERE id = ?`, id).Scan(&typ, &reason)
		if err != nil || typ != "request.rejected" {
			t.Errorf("event %q: %s %v", id, typ, err)
		}
		return reason
	}
	ac, oc := e2eAnthropicClient(g, "gw_not_a_key"), e2eOpenAIClient(g, tok)
	_, err := ac.Messages.New(ctx, anthropic.MessageNewParams{
		Model: "haiku", MaxTokens: 16, Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("hi"))}})
	var ae *anthropic.Error
	if !errors.As(err, &ae) || ae.StatusCode != http.StatusUnauthorized || ae.RequestID == "" {
		t.Fatalf("anthropic SDK: %v, want a 401 with a request id", err)
	}
	if r := reasonOf(ae.RequestID); r != "unknown_key" {
		t.Errorf("anthropic SDK's request id names a refusal for %q, want unknown_key", r)
	}
	_, err = oc.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
		Model: "gpt-5-nano", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")}})
	var oe *openai.Error
	if !errors.As(err, &oe) || oe.StatusCode != http.StatusForbidden {
		t.Fatalf("openai SDK: %v, want a 403", err)
	}
	id := oe.Response.Header.Get("X-Request-Id")
	if r := reasonOf(id); r != "model_not_allowed" {
		t.Errorf("openai SDK's x-request-id %q names a refusal for %q, want model_not_allowed", id, r)
	}
}

// TestE2ESilentStreamKeepAlive: a same-shape stream whose provider goes
// silent gets keep-alives, as a translated one does (audit 15D: behind
// nginx's 60 s read timeout an OpenAI reasoning model's silent first
// minute cut the call, recorded at a thousandth of its cost): an SSE
// comment for an OpenAI client while the first chunk is awaited past the
// hold, a ping event for an Anthropic client when the provider pauses
// mid-answer. The official SDKs read through them to the same answer.
func TestE2ESilentStreamKeepAlive(t *testing.T) {
	setForTest(t, &firstEventHold, 50*time.Millisecond)
	setForTest(t, &pingEvery, 300*time.Millisecond)
	g, up := e2eSetup(t, "")
	_, tok := e2eKey(g, "thinker")

	// OpenAI: nothing for 1 s, then the whole answer.
	slow := func() fakeupstream.Reply {
		r := fakeupstream.OpenAITextStream("gpt-5-mini", "Thought it through.", 1000, true)
		r.Events = []string{"", strings.Join(r.Events, "")}
		r.Gap = time.Second
		return r
	}
	up.Enqueue("/v1/chat/completions", slow())
	resp := g.post("/v1/chat/completions", tok, `{"model":"gpt-5-mini","stream":true,"messages":[{"role":"user","content":"Think."}]}`,
		"Authorization", "Bearer "+tok)
	body := e2eRead(t, resp)
	first := strings.Index(body, "data: ")
	if resp.StatusCode != 200 || first < 0 || !strings.HasSuffix(body, "data: [DONE]\n\n") {
		t.Fatalf("client got %d %q", resp.StatusCode, body)
	}
	if n := strings.Count(body[:first], ": ping\n\n"); n < 2 || strings.TrimLeft(strings.ReplaceAll(body[:first], ": ping\n\n", ""), "\n") != "" {
		t.Errorf("before the first chunk, 1 s after the headers: %q; want only keep-alive comments, at least 2", body[:first])
	}
	up.Enqueue("/v1/chat/completions", slow())
	oc := e2eOpenAIClient(g, tok)
	stream := oc.Chat.Completions.NewStreaming(context.Background(), openai.ChatCompletionNewParams{
		Model: "gpt-5-mini", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Think.")}})
	var acc openai.ChatCompletionAccumulator
	for stream.Next() {
		acc.AddChunk(stream.Current())
	}
	if err := stream.Err(); err != nil || len(acc.Choices) != 1 || acc.Choices[0].Message.Content != "Thought it through." {
		t.Errorf("openai-go through the keep-alives: %v %+v", err, acc.Choices)
	}

	// Anthropic: a pause of 1 s in the middle of the answer (the fake
	// pauses by Gap between the two halves).
	paused := func() fakeupstream.Reply {
		r := fakeupstream.AnthropicTextStream("claude-haiku-4-5", "one two three four")
		half := len(r.Events) / 2
		r.Events = []string{strings.Join(r.Events[:half], ""), strings.Join(r.Events[half:], "")}
		r.Gap = time.Second
		return r
	}
	up.Enqueue("/v1/messages", paused())
	resp = g.post("/v1/messages", tok, `{"model":"claude-haiku-4-5","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"Count."}]}`, e2eAnthropicHdr...)
	var names []string
	for _, ev := range e2eReadSSE(t, resp.Body) {
		names = append(names, ev.Name)
	}
	resp.Body.Close()
	joined := strings.Join(names, " ")
	if !strings.HasPrefix(joined, "message_start") || !strings.HasSuffix(joined, "message_stop") || strings.Count(joined, "ping") < 2 {
		t.Errorf("events through a 1 s pause: %s; want the answer with at least 2 pings in it", joined)
	}
	up.Enqueue("/v1/messages", paused())
	ac := e2eAnthropicClient(g, tok)
	s := ac.Messages.NewStreaming(context.Background(), anthropic.MessageNewParams{
		Model: "claude-haiku-4-5", MaxTokens: 64, Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("Count."))}})
	var m anthropic.Message
	for s.Next() {
		if err := m.Accumulate(s.Current()); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Err(); err != nil || len(m.Content) != 1 || m.Content[0].Text != "one two three four" {
		t.Errorf("anthropic-sdk-go through a 1 s pause: %v, content %+v", err, m.Content)
	}
	for _, c := range e2eCalls(g, 4) {
		e2eWant(t, "call", c, map[string]any{"attempts": 1, "status": 200, "error_class": nil, "usage_source": "provider"})
	}
}
