package sdktest

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/anthropics/anthropic-sdk-go/v2"
	anthropicoption "github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/openai/openai-go/v3"
	openaioption "github.com/openai/openai-go/v3/option"

	"github.com/metisgateway/metis/adapters/sse"
	"github.com/metisgateway/metis/adapters/translate"
	"github.com/metisgateway/metis/internal/vcr"
	"github.com/metisgateway/metis/ir"
)

func newState(requested string) *translate.State {
	return &translate.State{RequestedModel: requested, ToolNames: &ir.ToolNames{}, Created: 1700000000}
}

// translateBody feeds an upstream SSE body through tr event by event, as
// the gateway does, and returns everything written to the client.
func translateBody(t testing.TB, tr translate.StreamTranslator, body string) []byte {
	t.Helper()
	r := sse.NewReader(strings.NewReader(body))
	var out []byte
	for {
		ev, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("reading upstream SSE: %v", err)
		}
		if ev.Comment {
			continue
		}
		b, err := tr.Event(ev.Name, ev.Data)
		if err != nil {
			t.Fatalf("translating event %q %s: %v", ev.Name, ev.Data, err)
		}
		out = append(out, b...)
	}
	return append(out, tr.Finish()...)
}

// serveSSE answers every request with body as an event stream.
func serveSSE(t *testing.T, body []byte) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

const openAIClientWeatherRequest = `{"model":"gpt-4o","stream":true,%s"messages":[{"role":"user","content":"Weather in SF?"}],
	"tools":[{"type":"function","function":{"name":"get_weather","description":"Get weather","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}}]}`

// openAIAccumulate runs the real openai-go streaming client against the
// translated bytes.
func openAIAccumulate(t *testing.T, body []byte) (openai.ChatCompletionAccumulator, error) {
	t.Helper()
	srv := serveSSE(t, body)
	client := openai.NewClient(openaioption.WithBaseURL(srv.URL+"/v1"), openaioption.WithAPIKey("gw_test"), openaioption.WithMaxRetries(0))
	stream := client.Chat.Completions.NewStreaming(context.Background(), openai.ChatCompletionNewParams{
		Model:    "gpt-4o",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Weather in SF?")},
	})
	var acc openai.ChatCompletionAccumulator
	for stream.Next() {
		if !acc.AddChunk(stream.Current()) {
			t.Fatalf("accumulator rejected chunk %s", stream.Current().RawJSON())
		}
	}
	return acc, stream.Err()
}

func TestAnthropicStreamFixtureToOpenAISDK(t *testing.T) {
	fx := vcr.MustLoad("anthropic_stream_text_then_tool_use.vcr.yaml")[0]
	for _, includeUsage := range []bool{true, false} {
		t.Run(map[bool]string{true: "include_usage", false: "no_usage"}[includeUsage], func(t *testing.T) {
			opt := ""
			if includeUsage {
				opt = `"stream_options":{"include_usage":true},`
			}
			_, st, err := translate.OpenAIToAnthropicRequest([]byte(strings.Replace(openAIClientWeatherRequest, "%s", opt, 1)), "claude-3-7-sonnet-20250219", translate.Options{})
			if err != nil {
				t.Fatal(err)
			}
			out := translateBody(t, st.NewAnthropicToOpenAIStream(), fx.ResponseBody)
			if !strings.HasSuffix(string(out), "data: [DONE]\n\n") {
				t.Errorf("stream does not end with [DONE]:\n%s", out)
			}
			if !strings.Contains(string(out), "\n: ping\n\n") {
				t.Errorf("upstream ping was not forwarded as a comment")
			}
			acc, err := openAIAccumulate(t, out)
			if err != nil {
				t.Fatalf("openai-go stream error: %v", err)
			}
			if len(acc.Choices) != 1 {
				t.Fatalf("choices: %+v", acc.Choices)
			}
			ch := acc.Choices[0]
			if want := "I'd be happy to check the weather in San Francisco for you. Let me get that information for you right away."; ch.Message.Content != want {
				t.Errorf("content %q, want %q", ch.Message.Content, want)
			}
			if ch.FinishReason != "tool_calls" {
				t.Errorf("finish_reason %q", ch.FinishReason)
			}
			if len(ch.Message.ToolCalls) != 1 {
				t.Fatalf("tool calls: %+v", ch.Message.ToolCalls)
			}
			tc := ch.Message.ToolCalls[0]
			if tc.ID != "toolu_017QoD96fYwGzCWvLfaPADWg" || tc.Function.Name != "get_weather" {
				t.Errorf("tool call %+v", tc)
			}
			var args map[string]any
			if err := json.Unmarshal([]byte(tc.Function.Arguments), &args); err != nil || args["city"] != "San Francisco" {
				t.Errorf("arguments %q (%v)", tc.Function.Arguments, err)
			}
			if acc.Model != "gpt-4o" || acc.ID != "msg_01P7nF1bmxyzFZjF8zwbUDBM" {
				t.Errorf("model %q id %q", acc.Model, acc.ID)
			}
			if includeUsage {
				// prompt = input + cache writes + cache reads = 394 + 0 + 0.
				if acc.Usage.PromptTokens != 394 || acc.Usage.CompletionTokens != 79 || acc.Usage.TotalTokens != 473 {
					t.Errorf("usage %+v", acc.Usage)
				}
			} else if acc.Usage.PromptTokens != 0 || strings.Contains(string(out), `"usage"`) {
				t.Errorf("usage chunk sent although the client did not ask: %s", out)
			}
		})
	}
}

// TestAnthropicStreamNoArgumentToolToOpenAISDK: Claude calling a tool
// without parameters streams no argument text; openai-go's accumulator
// gets "{}", arguments it can decode.
func TestAnthropicStreamNoArgumentToolToOpenAISDK(t *testing.T) {
	upstream := "event: message_start\n" +
		`data: {"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":12,"output_tokens":1}}}` + "\n\n" +
		"event: content_block_start\n" +
		`data: {"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"toolu_1","name":"get_time","input":{}}}` + "\n\n" +
		"event: content_block_delta\n" +
		`data: {"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":""}}` + "\n\n" +
		"event: content_block_stop\n" + `data: {"type":"content_block_stop","index":0}` + "\n\n" +
		"event: message_delta\n" +
		`data: {"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":9}}` + "\n\n" +
		"event: message_stop\n" + `data: {"type":"message_stop"}` + "\n\n"
	_, st, err := translate.OpenAIToAnthropicRequest([]byte(`{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"Time?"}],
		"tools":[{"type":"function","function":{"name":"get_time","parameters":{"type":"object","properties":{}}}}]}`), "claude-sonnet-4-5", translate.Options{})
	if err != nil {
		t.Fatal(err)
	}
	acc, err := openAIAccumulate(t, translateBody(t, st.NewAnthropicToOpenAIStream(), upstream))
	if err != nil {
		t.Fatalf("openai-go stream error: %v", err)
	}
	if len(acc.Choices) != 1 || len(acc.Choices[0].Message.ToolCalls) != 1 {
		t.Fatalf("choices %+v", acc.Choices)
	}
	tc := acc.Choices[0].Message.ToolCalls[0]
	var args map[string]any
	if tc.Function.Name != "get_time" || json.Unmarshal([]byte(tc.Function.Arguments), &args) != nil || len(args) != 0 {
		t.Errorf("tool call %q with arguments %q, want get_time with {}", tc.Function.Name, tc.Function.Arguments)
	}
}

func TestAnthropicStreamCacheUsageToOpenAISDK(t *testing.T) {
	// A stream whose message_delta repeats input and cache counts (newer API).
	upstream := "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_c\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-sonnet-4-5\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":5,\"cache_creation_input_tokens\":100,\"cache_read_input_tokens\":2000,\"output_tokens\":1}}}\n\n" +
		"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"thinking\",\"thinking\":\"\",\"signature\":\"\"}}\n\n" +
		"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"thinking_delta\",\"thinking\":\"ponder\"}}\n\n" +
		"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"signature_delta\",\"signature\":\"EroC\"}}\n\n" +
		"event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n" +
		"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n" +
		"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi \\\"there\\\"\\n\"}}\n\n" +
		"event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":1}\n\n" +
		"event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":42}}\n\n" +
		"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"
	_, st, err := translate.OpenAIToAnthropicRequest([]byte(`{"model":"gpt-4o","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}`), "claude-sonnet-4-5", translate.Options{})
	if err != nil {
		t.Fatal(err)
	}
	out := translateBody(t, st.NewAnthropicToOpenAIStream(), upstream)
	acc, err := openAIAccumulate(t, out)
	if err != nil {
		t.Fatal(err)
	}
	if c := acc.Choices[0]; c.Message.Content != "Hi \"there\"\n" || c.FinishReason != "stop" {
		t.Errorf("choice %+v", c)
	}
	u := acc.Usage
	if u.PromptTokens != 2105 || u.PromptTokensDetails.CachedTokens != 2000 || u.CompletionTokens != 42 || u.TotalTokens != 2147 {
		t.Errorf("usage %+v", u)
	}
	if !strings.Contains(string(out), `"reasoning_content":"ponder"`) || strings.Contains(string(out), "EroC") {
		t.Errorf("thinking should go to reasoning_content and the signature nowhere:\n%s", out)
	}
}

func TestAnthropicStreamErrorToOpenAISDK(t *testing.T) {
	upstream := "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_e\",\"model\":\"m\",\"content\":[],\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}}\n\n" +
		"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n" +
		"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"par\"}}\n\n" +
		"event: error\ndata: {\"type\":\"error\",\"error\":{\"details\":null,\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n"
	_, st, _ := translate.OpenAIToAnthropicRequest([]byte(`{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"hi"}]}`), "claude", translate.Options{})
	out := translateBody(t, st.NewAnthropicToOpenAIStream(), upstream)
	if strings.Contains(string(out), "[DONE]") {
		t.Errorf("no [DONE] after an error:\n%s", out)
	}
	_, err := openAIAccumulate(t, out)
	if err == nil || !strings.Contains(err.Error(), "Overloaded") {
		t.Fatalf("openai-go should raise the mid-stream error, got %v", err)
	}
}

// anthropicAccumulate runs the real anthropic-sdk-go streaming client
// against the translated bytes; it also returns the message_start usage.
func anthropicAccumulate(t *testing.T, body []byte) (anthropic.Message, anthropic.Usage, error) {
	t.Helper()
	srv := serveSSE(t, body)
	client := anthropic.NewClient(anthropicoption.WithBaseURL(srv.URL), anthropicoption.WithAPIKey("gw_test"), anthropicoption.WithMaxRetries(0))
	stream := client.Messages.NewStreaming(context.Background(), anthropic.MessageNewParams{
		Model: "claude-sonnet-4-5", MaxTokens: 100,
		Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("hi"))},
	})
	var msg anthropic.Message
	var startUsage anthropic.Usage
	for stream.Next() {
		ev := stream.Current()
		if ev.Type == "message_start" {
			startUsage = ev.Message.Usage
		}
		if err := msg.Accumulate(ev); err != nil {
			t.Fatalf("accumulate %s: %v", ev.RawJSON(), err)
		}
	}
	return msg, startUsage, stream.Err()
}

const anthropicClientToolsRequest = `{"model":"claude-sonnet-4-5","max_tokens":1024,"stream":true,
	"messages":[{"role":"user","content":"What's the weather in Edinburgh and the AAPL price?"}],
	"tools":[{"name":"GetWeatherArgs","input_schema":{"type":"object"}},{"name":"get_stock_price","input_schema":{"type":"object"}}]}`

func TestOpenAIStreamFixturesToAnthropicSDK(t *testing.T) {
	t.Run("parallel tool calls with usage chunk", func(t *testing.T) {
		fx := vcr.MustLoad("openai_stream_parallel_tool_calls_include_usage.sse")[0]
		_, st, err := translate.AnthropicToOpenAIRequest([]byte(anthropicClientToolsRequest), "gpt-4o", translate.Options{})
		if err != nil {
			t.Fatal(err)
		}
		out := translateBody(t, st.NewOpenAIToAnthropicStream(), fx.ResponseBody)
		msg, start, err := anthropicAccumulate(t, out)
		if err != nil {
			t.Fatalf("anthropic-sdk-go stream error: %v", err)
		}
		if start.InputTokens <= 0 {
			t.Errorf("message_start must carry an input estimate, got %+v", start)
		}
		if msg.Model != "claude-sonnet-4-5" || msg.StopReason != anthropic.StopReasonToolUse {
			t.Errorf("model %q stop %q", msg.Model, msg.StopReason)
		}
		if len(msg.Content) != 2 {
			t.Fatalf("content blocks: %d\n%s", len(msg.Content), out)
		}
		wantIn := []map[string]any{
			{"city": "Edinburgh", "country": "GB", "units": "c"},
			{"ticker": "AAPL", "exchange": "NASDAQ"},
		}
		wantName := []string{"GetWeatherArgs", "get_stock_price"}
		wantID := []string{"call_JMW1whyEaYG438VE1OIflxA2", "call_DNYTawLBoN8fj3KN6qU9N1Ou"}
		for i, b := range msg.Content {
			tu := b.AsToolUse()
			if b.Type != "tool_use" || tu.Name != wantName[i] || tu.ID != wantID[i] {
				t.Errorf("block %d: %+v", i, b)
			}
			var in map[string]any
			if err := json.Unmarshal(tu.Input, &in); err != nil || !reflect.DeepEqual(in, wantIn[i]) {
				t.Errorf("block %d input %s (%v)", i, tu.Input, err)
			}
		}
		if u := msg.Usage; u.InputTokens != 149 || u.OutputTokens != 60 || u.CacheReadInputTokens != 0 {
			t.Errorf("usage %+v", u)
		}
	})
	t.Run("gpt-5-nano length with reasoning usage", func(t *testing.T) {
		fx := vcr.MustLoad("openai_stream_gpt5nano_usage_chunk.vcr.yaml")[0]
		_, st, err := translate.AnthropicToOpenAIRequest([]byte(`{"model":"claude-haiku-4-5","max_tokens":100,"stream":true,"system":"You are terse.","messages":[{"role":"user","content":"Hello, I'm a developer!"}]}`), "gpt-5-nano", translate.Options{})
		if err != nil {
			t.Fatal(err)
		}
		out := translateBody(t, st.NewOpenAIToAnthropicStream(), fx.ResponseBody)
		msg, start, err := anthropicAccumulate(t, out)
		if err != nil {
			t.Fatalf("anthropic-sdk-go stream error: %v", err)
		}
		if start.InputTokens <= 0 {
			t.Errorf("message_start input estimate missing: %+v", start)
		}
		if msg.StopReason != anthropic.StopReasonMaxTokens || len(msg.Content) != 0 {
			t.Errorf("stop %q content %+v", msg.StopReason, msg.Content)
		}
		if u := msg.Usage; u.InputTokens != 12 || u.OutputTokens != 100 {
			t.Errorf("usage %+v", u)
		}
		if msg.Model != "claude-haiku-4-5" || msg.ID != "chatcmpl-C4Hq5a6K3RaPMymUv70btQNYv6SvY" {
			t.Errorf("model %q id %q", msg.Model, msg.ID)
		}
	})
}

func TestOpenAINonStreamFixtureRoundTripsThroughSDKTypes(t *testing.T) {
	// The translated non-stream body must decode with the real SDK types.
	fx := vcr.MustLoad("openai_nonstream_tool_call_reasoning_usage.vcr.yaml")[0]
	out, err := newState("claude-sonnet-4-5").OpenAIResponseToAnthropic([]byte(fx.ResponseBody))
	if err != nil {
		t.Fatal(err)
	}
	var m anthropic.Message
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatal(err)
	}
	if m.StopReason != anthropic.StopReasonToolUse || m.Content[0].AsToolUse().Name != "get_current_weather" || m.Usage.InputTokens != 162 {
		t.Errorf("message %+v", m)
	}
	fa := vcr.MustLoad("anthropic_nonstream_tool_use_two_turns.vcr.yaml")[0]
	out, err = newState("gpt-4o").AnthropicResponseToOpenAI([]byte(fa.ResponseBody))
	if err != nil {
		t.Fatal(err)
	}
	var c openai.ChatCompletion
	if err := json.Unmarshal(out, &c); err != nil {
		t.Fatal(err)
	}
	if c.Choices[0].FinishReason != "tool_calls" || c.Choices[0].Message.ToolCalls[0].Function.Name != "get_weather" || c.Usage.PromptTokens != 402 {
		t.Errorf("completion %+v", c)
	}
}
