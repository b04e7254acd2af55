package translate

import (
	"fmt"
	"strings"
	"testing"

	"github.com/metisgateway/metis/internal/vcr"
	"github.com/metisgateway/metis/ir"
)

func newState(requested string) *State {
	names := &ir.ToolNames{}
	names.Upstream(longToolName)
	return &State{RequestedModel: requested, ToolNames: names, Created: 1700000000}
}

func TestAnthropicResponseToOpenAIGolden(t *testing.T) {
	fx := vcr.MustLoad("anthropic_nonstream_tool_use_two_turns.vcr.yaml")
	cases := []struct{ name, in, want string }{{
		name: "fixture: text and tool_use",
		in:   fx[0].ResponseBody,
		want: `{"id":"msg_01VLZuPg94y7NULJySZhEDJY","object":"chat.completion","created":1700000000,"model":"gpt-4o","choices":[{"index":0,
			"message":{"role":"assistant","content":"I'll get the current weather in San Francisco for you in Fahrenheit.","refusal":null,
				"tool_calls":[{"id":"toolu_01TZR6ZrLHdpAWdmhVPuDfjQ","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"San Francisco\",\"units\":\"fahrenheit\"}"}}]},
			"logprobs":null,"finish_reason":"tool_calls"}],
			"usage":{"prompt_tokens":402,"completion_tokens":89,"total_tokens":491,"prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}}}`,
	}, {
		name: "fixture: end_turn",
		in:   fx[1].ResponseBody,
		want: `{"id":"msg_014SddXAzPYwR72fa37nJ8N2","object":"chat.completion","created":1700000000,"model":"gpt-4o","choices":[{"index":0,
			"message":{"role":"assistant","content":"The current temperature in San Francisco is 68 degrees Fahrenheit.","refusal":null},"logprobs":null,"finish_reason":"stop"}],
			"usage":{"prompt_tokens":514,"completion_tokens":19,"total_tokens":533,"prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}}}`,
	}, {
		name: "cache usage: prompt includes reads and writes; thinking to reasoning_content; tool name mapped back; max_tokens to length",
		in: `{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[
				{"type":"thinking","thinking":"Let me think.","signature":"EqQB"},{"type":"text","text":"A"},{"type":"text","text":"B"},
				{"type":"tool_use","id":"toolu_9","name":"` + longToolSafe + `","input":{"path":"a b"}}],
			"stop_reason":"max_tokens","stop_sequence":null,
			"usage":{"input_tokens":10,"cache_creation_input_tokens":20,"cache_read_input_tokens":30,"output_tokens":7,"output_tokens_details":{"thinking_tokens":3}}}`,
		want: `{"id":"msg_1","object":"chat.completion","created":1700000000,"model":"gpt-4o","choices":[{"index":0,
			"message":{"role":"assistant","content":"AB","refusal":null,"reasoning_content":"Let me think.",
				"tool_calls":[{"id":"toolu_9","type":"function","function":{"name":"` + longToolName + `","arguments":"{\"path\":\"a b\"}"}}]},
			"logprobs":null,"finish_reason":"length"}],
			"usage":{"prompt_tokens":60,"completion_tokens":7,"total_tokens":67,"prompt_tokens_details":{"cached_tokens":30,"cache_write_tokens":20},"completion_tokens_details":{"reasoning_tokens":3}}}`,
	}, {
		name: "refusal to content_filter, stop_sequence and pause_turn to stop",
		in:   `{"id":"msg_2","type":"message","role":"assistant","model":"m","content":[{"type":"text","text":"no"}],"stop_reason":"refusal","usage":{"input_tokens":1,"output_tokens":1}}`,
		want: `{"id":"msg_2","object":"chat.completion","created":1700000000,"model":"gpt-4o","choices":[{"index":0,"message":{"role":"assistant","content":"no","refusal":null},"logprobs":null,"finish_reason":"content_filter"}],
			"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2,"prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}}}`,
	}, {
		name: "stop_sequence to stop",
		in:   `{"id":"msg_3","type":"message","role":"assistant","model":"m","content":[],"stop_reason":"stop_sequence","stop_sequence":"END","usage":{"input_tokens":1,"output_tokens":0}}`,
		want: `{"id":"msg_3","object":"chat.completion","created":1700000000,"model":"gpt-4o","choices":[{"index":0,"message":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":"stop"}],
			"usage":{"prompt_tokens":1,"completion_tokens":0,"total_tokens":1,"prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}}}`,
	}, {
		name: "context window exceeded to length",
		in:   `{"id":"msg_4","type":"message","role":"assistant","model":"m","content":[{"type":"text","text":"x"}],"stop_reason":"model_context_window_exceeded","usage":{"input_tokens":1,"output_tokens":1}}`,
		want: `{"id":"msg_4","object":"chat.completion","created":1700000000,"model":"gpt-4o","choices":[{"index":0,"message":{"role":"assistant","content":"x","refusal":null},"logprobs":null,"finish_reason":"length"}],
			"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2,"prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}}}`,
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, err := newState("gpt-4o").AnthropicResponseToOpenAI([]byte(c.in))
			if err != nil {
				t.Fatal(err)
			}
			assertJSON(t, out, c.want)
		})
	}
	if _, err := newState("x").AnthropicResponseToOpenAI([]byte(`{"type":"error","error":{"type":"api_error","message":"x"}}`)); err == nil {
		t.Error("an error body is not a message")
	}
	if _, err := newState("x").AnthropicResponseToOpenAI([]byte(`nope`)); err == nil {
		t.Error("want error for non-JSON")
	}
}

func TestOpenAIResponseToAnthropicGolden(t *testing.T) {
	fx := vcr.MustLoad("openai_nonstream_tool_call_reasoning_usage.vcr.yaml")
	cases := []struct{ name, in, want string }{{
		name: "fixture: tool call with null content, reasoning usage",
		in:   fx[0].ResponseBody,
		want: `{"id":"chatcmpl-C4GmWI2Sl7HnrQsKorSAZkJy94dpT","type":"message","role":"assistant","model":"claude-sonnet-4-5",
			"content":[{"type":"tool_use","id":"call_8fxy20OEu9ulvvaa5b5CzVA4","name":"get_current_weather","input":{"location":"Boston, MA","unit":"fahrenheit"}}],
			"stop_reason":"tool_use","stop_sequence":null,
			"usage":{"input_tokens":162,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":287}}`,
	}, {
		name: "cached prompt tokens are split out of input; tool name mapped back; bad arguments wrapped; length",
		in: `{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4o","choices":[{"index":0,"finish_reason":"length",
				"message":{"role":"assistant","content":"Partial","tool_calls":[{"id":"call_1","type":"function","function":{"name":"` + longToolSafe + `","arguments":"{\"a\":"}}]}}],
			"usage":{"prompt_tokens":100,"completion_tokens":5,"total_tokens":105,"prompt_tokens_details":{"cached_tokens":40,"cache_write_tokens":10}}}`,
		want: `{"id":"chatcmpl-1","type":"message","role":"assistant","model":"claude-sonnet-4-5",
			"content":[{"type":"text","text":"Partial"},{"type":"tool_use","id":"call_1","name":"` + longToolName + `","input":{"arguments":"{\"a\":"}}],
			"stop_reason":"max_tokens","stop_sequence":null,
			"usage":{"input_tokens":50,"cache_creation_input_tokens":10,"cache_read_input_tokens":40,"output_tokens":5}}`,
	}, {
		// No usage in the answer: the estimate, as a translated stream
		// gives (the state's input estimate, 0 here; 23 bytes / 4,
		// rounded up, = 6).
		name: "refusal becomes text with stop_reason refusal",
		in:   `{"id":"c2","choices":[{"index":0,"finish_reason":"stop","message":{"role":"assistant","content":null,"refusal":"I can't help with that."}}]}`,
		want: `{"id":"c2","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[{"type":"text","text":"I can't help with that."}],
			"stop_reason":"refusal","stop_sequence":null,"usage":{"input_tokens":0,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":6}}`,
	}, {
		name: "content_filter to refusal, content parts joined",
		in:   `{"id":"c3","choices":[{"index":0,"finish_reason":"content_filter","message":{"role":"assistant","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]}}],"usage":{"prompt_tokens":3,"completion_tokens":2}}`,
		want: `{"id":"c3","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[{"type":"text","text":"ab"}],
			"stop_reason":"refusal","stop_sequence":null,"usage":{"input_tokens":3,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":2}}`,
	}, {
		name: "DeepSeek's cache hits are cache reads",
		in:   `{"id":"c4","choices":[{"index":0,"finish_reason":"stop","message":{"role":"assistant","content":"hi"}}],"usage":{"prompt_tokens":100,"completion_tokens":20,"prompt_cache_hit_tokens":60,"prompt_cache_miss_tokens":40}}`,
		want: `{"id":"c4","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[{"type":"text","text":"hi"}],
			"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":40,"cache_creation_input_tokens":0,"cache_read_input_tokens":60,"output_tokens":20}}`,
	}, {
		name: "Envoy AI Gateway's cache writes are cache writes",
		in:   `{"id":"c5","choices":[{"index":0,"finish_reason":"stop","message":{"role":"assistant","content":"hi"}}],"usage":{"prompt_tokens":7100,"completion_tokens":50,"prompt_tokens_details":{"cached_tokens":5000,"cache_creation_input_tokens":2000}}}`,
		want: `{"id":"c5","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[{"type":"text","text":"hi"}],
			"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":100,"cache_creation_input_tokens":2000,"cache_read_input_tokens":5000,"output_tokens":50}}`,
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, err := newState("claude-sonnet-4-5").OpenAIResponseToAnthropic([]byte(c.in))
			if err != nil {
				t.Fatal(err)
			}
			assertJSON(t, out, c.want)
		})
	}
	for _, bad := range []string{`{"choices":[]}`, `{`, `[]`} {
		if _, err := newState("x").OpenAIResponseToAnthropic([]byte(bad)); err == nil {
			t.Errorf("want error for %s", bad)
		}
	}
}

// TestOpenAIResponseWithoutUsageGetsEstimate: a compatible server that
// reports no usage in a non-streamed answer gives the Anthropic client the
// gateway's estimate (the prompt's, and a quarter of the answer's bytes),
// as a translated stream does, rather than zeros that would tell an agent
// its context is empty.
func TestOpenAIResponseWithoutUsageGetsEstimate(t *testing.T) {
	st := anthropicClientState(t, `{"model":"claude-x","max_tokens":10,"messages":[{"role":"user","content":"`+strings.Repeat("word ", 400)+`"}]}`)
	if st.InputEstimate <= 0 {
		t.Fatalf("input estimate %d", st.InputEstimate)
	}
	out, err := st.OpenAIResponseToAnthropic([]byte(`{"id":"c","choices":[{"index":0,"finish_reason":"stop","message":{"role":"assistant","content":"Sixteen bytes ok"}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	assertJSON(t, out, fmt.Sprintf(`{"id":"c","type":"message","role":"assistant","model":"claude-x","content":[{"type":"text","text":"Sixteen bytes ok"}],
		"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":%d,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":4}}`, st.InputEstimate))
}
