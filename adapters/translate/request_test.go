package translate

import (
	"errors"
	"strings"
	"testing"

	"github.com/metisgateway/metis/ir"
)

const longToolName = "mcp__github__create_or_update_file_in_repository_with_a_very_long_name_indeed"
const longToolSafe = "mcp__github__create_or_update_file_in_repository_with_a_1608ef91"

type requestCase struct {
	name     string
	opts     Options
	in       string
	want     string // expected upstream body; empty when wantErr is set
	wantErr  string // substring of the error
	wantSt   func(t *testing.T, st *State)
	upstream string
}

func runRequestCases(t *testing.T, cases []requestCase, fn func([]byte, string, Options) ([]byte, *State, error)) {
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, st, err := fn([]byte(c.in), c.upstream, c.opts)
			if c.wantErr != "" {
				if err == nil {
					t.Fatalf("want error containing %q, got body %s", c.wantErr, out)
				}
				if !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("error %q does not contain %q", err, c.wantErr)
				}
				var ie *ir.Error
				if !errors.As(err, &ie) || ie.Status != 400 {
					t.Fatalf("want a 400 *ir.Error, got %#v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			assertJSON(t, out, c.want)
			if c.wantSt != nil {
				c.wantSt(t, st)
			}
		})
	}
}

func TestAnthropicToOpenAIRequestGolden(t *testing.T) {
	gpt4oLimit := Options{DefaultMaxTokens: func(m string) int {
		if m == "gpt-4o" {
			return 16384
		}
		return 0
	}}
	cases := []requestCase{{
		// Claude Code's user_id is a 150-character JSON object; OpenAI
		// refuses a user over 64 characters.
		name: "a user_id too long for OpenAI goes as its SHA-256", upstream: "gpt-4o",
		in: `{"model":"claude-sonnet-4-5","max_tokens":1024,"messages":[{"role":"user","content":"Hi"}],
			"metadata":{"user_id":"{\"device_id\":\"b594034da27c808ebaf5624564ea2e2b6e7e9b46715a7d6454363fb863e7200a\",\"account_uuid\":\"\",\"session_id\":\"973ed6bc-8b67-4b84-8424-1c709fb0ce45\"}"}}`,
		want: `{"model":"gpt-4o","messages":[{"role":"user","content":"Hi"}],"max_completion_tokens":1024,"user":"26a803b2415930cd30b4a5357c8931f7f7f153ab7e074233dc03d8dc872e0e5b"}`,
	}, {
		// Claude Code asks 32,000 of a model id it does not know (an
		// alias); gpt-4o answers more than 16,384 with a 400.
		name: "max_tokens over the model's output limit is sent as the limit", upstream: "gpt-4o", opts: gpt4oLimit,
		in:   `{"model":"metis-gpt","max_tokens":32000,"messages":[{"role":"user","content":"Hi"}]}`,
		want: `{"model":"gpt-4o","messages":[{"role":"user","content":"Hi"}],"max_completion_tokens":16384}`,
	}, {
		name: "max_tokens under the limit, or of a model without one, is the client's", upstream: "gpt-5-mini", opts: gpt4oLimit,
		in:   `{"model":"metis-gpt","max_tokens":32000,"messages":[{"role":"user","content":"Hi"}]}`,
		want: `{"model":"gpt-5-mini","messages":[{"role":"user","content":"Hi"}],"max_completion_tokens":32000}`,
	}, {
		name: "basic fields, top_k dropped, user, stream asks for usage", upstream: "gpt-4o",
		in: `{"model":"claude-sonnet-4-5","max_tokens":1024,"system":"Be brief.","messages":[{"role":"user","content":"Hi"}],
			"stop_sequences":["END"],"temperature":0.5,"top_p":0.9,"top_k":40,"metadata":{"user_id":"u-1"},"stream":true}`,
		want: `{"model":"gpt-4o","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Hi"}],
			"max_completion_tokens":1024,"stop":["END"],"temperature":0.5,"top_p":0.9,"user":"u-1",
			"stream":true,"stream_options":{"include_usage":true}}`,
		wantSt: func(t *testing.T, st *State) {
			if !st.ClientStream || st.RequestedModel != "claude-sonnet-4-5" || st.UpstreamModel != "gpt-4o" || st.InputEstimate <= 0 {
				t.Errorf("state %+v", st)
			}
		},
	}, {
		name: "system blocks keep their split, cache_control dropped, mid-conversation system kept in place", upstream: "gpt-4o",
		in: `{"model":"c","max_tokens":10,"system":[{"type":"text","text":"x-anthropic-billing-header: cc_version=1"},{"type":"text","text":"You are Claude Code.","cache_control":{"type":"ephemeral"}}],
			"messages":[{"role":"user","content":[{"type":"text","text":"one","cache_control":{"type":"ephemeral","ttl":"1h"}}]},{"role":"assistant","content":"two"},{"role":"system","content":"Now be terse."},{"role":"user","content":"three"}]}`,
		want: `{"model":"gpt-4o","max_completion_tokens":10,"messages":[
			{"role":"system","content":[{"type":"text","text":"x-anthropic-billing-header: cc_version=1"},{"type":"text","text":"You are Claude Code."}]},
			{"role":"user","content":"one"},{"role":"assistant","content":"two"},{"role":"system","content":"Now be terse."},{"role":"user","content":"three"}]}`,
	}, {
		name: "images base64 and URL, PDF and text documents", upstream: "gpt-4o",
		in: `{"model":"c","max_tokens":10,"messages":[{"role":"user","content":[
			{"type":"text","text":"look"},
			{"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBORw0KGgo="}},
			{"type":"image","source":{"type":"url","url":"https://example.com/cat.jpg"}},
			{"type":"document","title":"spec.pdf","source":{"type":"base64","media_type":"application/pdf","data":"JVBERi0x"}},
			{"type":"document","title":"Notes","source":{"type":"text","media_type":"text/plain","data":"plain words"}}]}]}`,
		want: `{"model":"gpt-4o","max_completion_tokens":10,"messages":[{"role":"user","content":[
			{"type":"text","text":"look"},
			{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgo="}},
			{"type":"image_url","image_url":{"url":"https://example.com/cat.jpg"}},
			{"type":"file","file":{"filename":"spec.pdf","file_data":"data:application/pdf;base64,JVBERi0x"}},
			{"type":"text","text":"Notes\n\nplain words"}]}]}`,
	}, {
		name: "tools, tool_choice any, disable_parallel_tool_use, server tool dropped", upstream: "gpt-4o",
		in: `{"model":"c","max_tokens":10,"messages":[{"role":"user","content":"w"}],
			"tools":[{"name":"get_weather","description":"Get weather","input_schema":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]},"cache_control":{"type":"ephemeral"}},
				{"type":"web_search_20250305","name":"web_search","max_uses":3},
				{"name":"noop","input_schema":{"type":"object"}}],
			"tool_choice":{"type":"any","disable_parallel_tool_use":true}}`,
		want: `{"model":"gpt-4o","max_completion_tokens":10,"messages":[{"role":"user","content":"w"}],
			"tools":[{"type":"function","function":{"name":"get_weather","description":"Get weather","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}},
				{"type":"function","function":{"name":"noop","parameters":{"type":"object"}}}],
			"tool_choice":"required","parallel_tool_calls":false}`,
	}, {
		name: "tool_choice auto, none and named", upstream: "gpt-4o",
		in: `{"model":"c","max_tokens":10,"messages":[{"role":"user","content":"w"}],"tools":[{"name":"a","input_schema":{"type":"object"}}],"tool_choice":{"type":"tool","name":"a"}}`,
		want: `{"model":"gpt-4o","max_completion_tokens":10,"messages":[{"role":"user","content":"w"}],
			"tools":[{"type":"function","function":{"name":"a","parameters":{"type":"object"}}}],"tool_choice":{"type":"function","function":{"name":"a"}}}`,
	}, {
		name: "tool_choice none", upstream: "gpt-4o",
		in:   `{"model":"c","max_tokens":10,"messages":[{"role":"user","content":"w"}],"tools":[{"name":"a","input_schema":{"type":"object"}}],"tool_choice":{"type":"none"}}`,
		want: `{"model":"gpt-4o","max_completion_tokens":10,"messages":[{"role":"user","content":"w"}],"tools":[{"type":"function","function":{"name":"a","parameters":{"type":"object"}}}],"tool_choice":"none"}`,
	}, {
		name: "tool_choice auto", upstream: "gpt-4o",
		in:   `{"model":"c","max_tokens":10,"messages":[{"role":"user","content":"w"}],"tools":[{"name":"a","input_schema":{"type":"object"}}],"tool_choice":{"type":"auto"}}`,
		want: `{"model":"gpt-4o","max_completion_tokens":10,"messages":[{"role":"user","content":"w"}],"tools":[{"type":"function","function":{"name":"a","parameters":{"type":"object"}}}],"tool_choice":"auto"}`,
	}, {
		name: "tool calls and several tool results (is_error as Error: prefix, images moved to a user message)", upstream: "gpt-4o",
		in: `{"model":"c","max_tokens":10,"messages":[
			{"role":"user","content":"weather and time?"},
			{"role":"assistant","content":[{"type":"thinking","thinking":"hmm","signature":"sig"},{"type":"text","text":"Checking."},
				{"type":"tool_use","id":"toolu_1","name":"get_weather","input":{"city": "Paris"}},
				{"type":"tool_use","id":"toolu_2","name":"get_time","input":{}}]},
			{"role":"user","content":[
				{"type":"tool_result","tool_use_id":"toolu_1","content":[{"type":"text","text":"18C"},{"type":"text","text":"sunny"},{"type":"image","source":{"type":"base64","media_type":"image/jpeg","data":"AAAA"}}]},
				{"type":"tool_result","tool_use_id":"toolu_2","is_error":true,"content":"clock unavailable"},
				{"type":"text","text":"thanks"}]}]}`,
		want: `{"model":"gpt-4o","max_completion_tokens":10,"messages":[
			{"role":"user","content":"weather and time?"},
			{"role":"assistant","content":"Checking.","tool_calls":[
				{"id":"toolu_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}},
				{"id":"toolu_2","type":"function","function":{"name":"get_time","arguments":"{}"}}]},
			{"role":"tool","tool_call_id":"toolu_1","content":"18C\nsunny"},
			{"role":"tool","tool_call_id":"toolu_2","content":"Error: clock unavailable"},
			{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/jpeg;base64,AAAA"}},{"type":"text","text":"thanks"}]}]}`,
	}, {
		name: "assistant with only tool calls has null content", upstream: "gpt-4o",
		in: `{"model":"c","max_tokens":10,"messages":[{"role":"user","content":"x"},{"role":"assistant","content":[{"type":"tool_use","id":"t","name":"f","input":{"a":1}}]},
			{"role":"user","content":[{"type":"tool_result","tool_use_id":"t"}]}]}`,
		want: `{"model":"gpt-4o","max_completion_tokens":10,"messages":[{"role":"user","content":"x"},
			{"role":"assistant","content":null,"tool_calls":[{"id":"t","type":"function","function":{"name":"f","arguments":"{\"a\":1}"}}]},
			{"role":"tool","tool_call_id":"t","content":""}]}`,
	}, {
		name: "thinking budget to reasoning_effort on a reasoning model, sampling dropped", upstream: "gpt-5-mini",
		in:   `{"model":"c","max_tokens":20000,"messages":[{"role":"user","content":"x"}],"thinking":{"type":"enabled","budget_tokens":5000},"temperature":1}`,
		want: `{"model":"gpt-5-mini","max_completion_tokens":20000,"messages":[{"role":"user","content":"x"}],"reasoning_effort":"high"}`,
	}, {
		name: "thinking budget buckets: low", upstream: "o4-mini",
		in:   `{"model":"c","max_tokens":20000,"messages":[{"role":"user","content":"x"}],"thinking":{"type":"enabled","budget_tokens":1024}}`,
		want: `{"model":"o4-mini","max_completion_tokens":20000,"messages":[{"role":"user","content":"x"}],"reasoning_effort":"low"}`,
	}, {
		name: "adaptive thinking uses output_config.effort", upstream: "gpt-5",
		in:   `{"model":"c","max_tokens":20000,"messages":[{"role":"user","content":"x"}],"thinking":{"type":"adaptive"},"output_config":{"effort":"max"}}`,
		want: `{"model":"gpt-5","max_completion_tokens":20000,"messages":[{"role":"user","content":"x"}],"reasoning_effort":"high"}`,
	}, {
		name: "adaptive thinking without effort is medium", upstream: "gpt-5",
		in:   `{"model":"c","max_tokens":200,"messages":[{"role":"user","content":"x"}],"thinking":{"type":"adaptive"}}`,
		want: `{"model":"gpt-5","max_completion_tokens":200,"messages":[{"role":"user","content":"x"}],"reasoning_effort":"medium"}`,
	}, {
		name: "thinking on a non-reasoning model is dropped, sampling kept", upstream: "gpt-4o",
		in:   `{"model":"c","max_tokens":20000,"messages":[{"role":"user","content":"x"}],"thinking":{"type":"enabled","budget_tokens":5000},"temperature":0.2}`,
		want: `{"model":"gpt-4o","max_completion_tokens":20000,"messages":[{"role":"user","content":"x"}],"temperature":0.2}`,
	}, {
		name: "reasoning capability from options", upstream: "my-local-model",
		opts: Options{SupportsReasoning: func(string) bool { return true }},
		in:   `{"model":"c","max_tokens":100,"messages":[{"role":"user","content":"x"}],"thinking":{"type":"enabled","budget_tokens":3000}}`,
		want: `{"model":"my-local-model","max_completion_tokens":100,"messages":[{"role":"user","content":"x"}],"reasoning_effort":"medium"}`,
	}, {
		name: "structured output", upstream: "gpt-4o",
		in:   `{"model":"c","max_tokens":10,"messages":[{"role":"user","content":"x"}],"output_config":{"format":{"type":"json_schema","schema":{"type":"object"}}}}`,
		want: `{"model":"gpt-4o","max_completion_tokens":10,"messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_schema","json_schema":{"name":"structured_output","schema":{"type":"object"}}}}`,
	}, {
		// Anthropic enforces the schema; one within OpenAI's strict rules
		// is enforced there too.
		name: "structured output, strict", upstream: "gpt-4o",
		in:   `{"model":"c","max_tokens":10,"messages":[{"role":"user","content":"x"}],"output_config":{"format":{"type":"json_schema","schema":{"type":"object","properties":{"a":{"type":"string"}},"required":["a"],"additionalProperties":false}}}}`,
		want: `{"model":"gpt-4o","max_completion_tokens":10,"messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_schema","json_schema":{"name":"structured_output","schema":{"type":"object","properties":{"a":{"type":"string"}},"required":["a"],"additionalProperties":false},"strict":true}}}`,
	}, {
		name: "long and dotted tool names are shortened consistently", upstream: "gpt-4o",
		in: `{"model":"c","max_tokens":10,"tools":[{"name":"` + longToolName + `","input_schema":{"type":"object"}},{"name":"files.read","input_schema":{"type":"object"}}],
			"tool_choice":{"type":"tool","name":"files.read"},
			"messages":[{"role":"user","content":"x"},{"role":"assistant","content":[{"type":"tool_use","id":"t1","name":"` + longToolName + `","input":{}}]},
			{"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":"ok"}]}]}`,
		want: `{"model":"gpt-4o","max_completion_tokens":10,
			"tools":[{"type":"function","function":{"name":"` + longToolSafe + `","parameters":{"type":"object"}}},{"type":"function","function":{"name":"files_read_601e4eb6","parameters":{"type":"object"}}}],
			"tool_choice":{"type":"function","function":{"name":"files_read_601e4eb6"}},
			"messages":[{"role":"user","content":"x"},{"role":"assistant","content":null,"tool_calls":[{"id":"t1","type":"function","function":{"name":"` + longToolSafe + `","arguments":"{}"}}]},
			{"role":"tool","tool_call_id":"t1","content":"ok"}]}`,
		wantSt: func(t *testing.T, st *State) {
			if got := st.ToolNames.Client(longToolSafe); got != longToolName {
				t.Errorf("map back: %q", got)
			}
			if got := st.ToolNames.Client("files_read_601e4eb6"); got != "files.read" {
				t.Errorf("map back: %q", got)
			}
		},
	}, {
		name: "server-tool blocks in history are dropped", upstream: "gpt-4o",
		in: `{"model":"c","max_tokens":10,"messages":[{"role":"user","content":"x"},{"role":"assistant","content":[{"type":"server_tool_use","id":"srvtoolu_1","name":"web_search","input":{"query":"q"}},
			{"type":"web_search_tool_result","tool_use_id":"srvtoolu_1","content":[]},{"type":"text","text":"found"}]}]}`,
		want: `{"model":"gpt-4o","max_completion_tokens":10,"messages":[{"role":"user","content":"x"},{"role":"assistant","content":"found"}]}`,
	}, {
		// Claude Code's ToolSearch answers with tool_reference blocks only:
		// dropped, the tool result reached GPT empty.
		name: "tool_reference inside a tool result becomes text naming the tool", upstream: "gpt-4o",
		in:   `{"model":"c","max_tokens":10,"messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":[{"type":"tool_reference","tool_name":"get_weather"},{"type":"tool_reference","tool_name":"get_time"}]}]}]}`,
		want: `{"model":"gpt-4o","max_completion_tokens":10,"messages":[{"role":"tool","tool_call_id":"t","content":"tool_reference: get_weather\ntool_reference: get_time"}]}`,
	}, {
		name: "more than four stop sequences is rejected", upstream: "gpt-4o",
		in:      `{"model":"c","max_tokens":10,"messages":[{"role":"user","content":"x"}],"stop_sequences":["a","b","c","d","e"]}`,
		wantErr: "at most 4",
	}, {
		name: "unknown content block is rejected", upstream: "gpt-4o",
		in:      `{"model":"c","max_tokens":10,"messages":[{"role":"user","content":[{"type":"hologram"}]}]}`,
		wantErr: `unsupported content block type "hologram"`,
	}, {
		name: "document by URL cannot go to OpenAI", upstream: "gpt-4o",
		in:      `{"model":"c","max_tokens":10,"messages":[{"role":"user","content":[{"type":"document","source":{"type":"url","url":"https://x/a.pdf"}}]}]}`,
		wantErr: "documents given by URL",
	}, {
		name: "not JSON", upstream: "gpt-4o", in: `{"model":`, wantErr: "decoding Anthropic request",
	}}
	runRequestCases(t, cases, AnthropicToOpenAIRequest)
}

func TestOpenAIToAnthropicRequestGolden(t *testing.T) {
	maxOut := Options{DefaultMaxTokens: func(m string) int {
		if m == "claude-sonnet-4-5" {
			return 64000
		}
		return 0
	}}
	cases := []requestCase{{
		name: "system and developer hoisted, clamp temperature, top_p dropped with temperature, stop string, user", upstream: "claude-sonnet-4-5",
		in: `{"model":"gpt-4o","messages":[{"role":"system","content":"Be brief."},{"role":"developer","content":[{"type":"text","text":"Use metric."}]},{"role":"user","content":"Hi"}],
			"max_completion_tokens":500,"temperature":1.7,"top_p":0.5,"stop":"END","user":"u-9","stream":true,"stream_options":{"include_usage":true},
			"seed":7,"logprobs":true,"frequency_penalty":0.1}`,
		want: `{"model":"claude-sonnet-4-5","max_tokens":500,"system":[{"type":"text","text":"Be brief."},{"type":"text","text":"Use metric."}],
			"messages":[{"role":"user","content":[{"type":"text","text":"Hi"}]}],"temperature":1,"stop_sequences":["END"],"metadata":{"user_id":"u-9"},"stream":true}`,
		wantSt: func(t *testing.T, st *State) {
			if !st.ClientStream || !st.IncludeUsage || st.RequestedModel != "gpt-4o" {
				t.Errorf("state %+v", st)
			}
		},
	}, {
		// Anthropic refuses an e-mail address or a phone number in user_id.
		name: "an e-mail user goes as its SHA-256", upstream: "claude-sonnet-4-5",
		in: `{"model":"gpt-4o","max_tokens":10,"messages":[{"role":"user","content":"Hi"}],"user":"alice@example.com"}`,
		want: `{"model":"claude-sonnet-4-5","max_tokens":10,"messages":[{"role":"user","content":[{"type":"text","text":"Hi"}]}],
			"metadata":{"user_id":"ff8d9819fc0e12bf0d24892e45987e249a28dce836a85cad60e28eaaa8c6d976"}}`,
	}, {
		name: "a phone-number safety_identifier goes as its SHA-256", upstream: "claude-sonnet-4-5",
		in: `{"model":"gpt-4o","max_tokens":10,"messages":[{"role":"user","content":"Hi"}],"safety_identifier":"+1 (415) 555-0100"}`,
		want: `{"model":"claude-sonnet-4-5","max_tokens":10,"messages":[{"role":"user","content":[{"type":"text","text":"Hi"}]}],
			"metadata":{"user_id":"d0ac4fa5a6f02d0dda162dcdf33b1612551a5f37f10ecff044d63578ca7ff257"}}`,
	}, {
		name: "max_completion_tokens over the model's output limit is sent as the limit", upstream: "claude-sonnet-4-5", opts: maxOut,
		in:   `{"model":"gpt-4o","max_completion_tokens":100000,"messages":[{"role":"user","content":"Hi"}]}`,
		want: `{"model":"claude-sonnet-4-5","max_tokens":64000,"messages":[{"role":"user","content":[{"type":"text","text":"Hi"}]}]}`,
	}, {
		name: "max_tokens defaults to the model's limit", upstream: "claude-sonnet-4-5", opts: maxOut,
		in:   `{"model":"gpt-4o","messages":[{"role":"user","content":"Hi"}],"top_p":0.5,"stop":["a"," "]}`,
		want: `{"model":"claude-sonnet-4-5","max_tokens":64000,"messages":[{"role":"user","content":[{"type":"text","text":"Hi"}]}],"top_p":0.5,"stop_sequences":["a"]}`,
		wantSt: func(t *testing.T, st *State) {
			if st.ClientStream || st.IncludeUsage {
				t.Errorf("state %+v", st)
			}
		},
	}, {
		name: "max_tokens falls back to 4096, legacy max_tokens read", upstream: "claude-haiku-4-5", opts: maxOut,
		in:   `{"model":"gpt-4o","messages":[{"role":"user","content":"Hi"}]}`,
		want: `{"model":"claude-haiku-4-5","max_tokens":4096,"messages":[{"role":"user","content":[{"type":"text","text":"Hi"}]}]}`,
	}, {
		name: "legacy max_tokens", upstream: "claude-haiku-4-5",
		in:   `{"model":"gpt-4o","messages":[{"role":"user","content":"Hi"}],"max_tokens":77,"n":1}`,
		want: `{"model":"claude-haiku-4-5","max_tokens":77,"messages":[{"role":"user","content":[{"type":"text","text":"Hi"}]}]}`,
	}, {
		name: "images, PDFs and cache_control on parts", upstream: "claude-haiku-4-5",
		in: `{"model":"gpt-4o","max_tokens":10,"messages":[{"role":"user","content":[
			{"type":"text","text":"look","cache_control":{"type":"ephemeral"}},
			{"type":"image_url","image_url":{"url":"data:image/webp;base64,UklGR","detail":"high"}},
			{"type":"image_url","image_url":{"url":"https://example.com/cat.png"}},
			{"type":"image_url","image_url":{"url":"https://example.com/paper.pdf?x=1"}},
			{"type":"file","file":{"filename":"a.pdf","file_data":"data:application/pdf;base64,JVBERi0x"}}]}]}`,
		want: `{"model":"claude-haiku-4-5","max_tokens":10,"messages":[{"role":"user","content":[
			{"type":"text","text":"look","cache_control":{"type":"ephemeral"}},
			{"type":"image","source":{"type":"base64","media_type":"image/webp","data":"UklGR"}},
			{"type":"image","source":{"type":"url","url":"https://example.com/cat.png"}},
			{"type":"document","source":{"type":"url","url":"https://example.com/paper.pdf?x=1"}},
			{"type":"document","title":"a.pdf","source":{"type":"base64","media_type":"application/pdf","data":"JVBERi0x"}}]}]}`,
	}, {
		name: "tools, tool_choice required, parallel_tool_calls false", upstream: "claude-haiku-4-5",
		in: `{"model":"gpt-4o","max_tokens":10,"messages":[{"role":"user","content":"w"}],
			"tools":[{"type":"function","function":{"name":"get_weather","description":"Get weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}},"strict":true}},
				{"type":"function","function":{"name":"noargs"}}],
			"tool_choice":"required","parallel_tool_calls":false}`,
		want: `{"model":"claude-haiku-4-5","max_tokens":10,"messages":[{"role":"user","content":[{"type":"text","text":"w"}]}],
			"tools":[{"name":"get_weather","description":"Get weather","input_schema":{"type":"object","properties":{"city":{"type":"string"}}}},
				{"name":"noargs","input_schema":{"type":"object","properties":{}}}],
			"tool_choice":{"type":"any","disable_parallel_tool_use":true}}`,
	}, {
		name: "parallel_tool_calls false without tool_choice creates auto", upstream: "claude-haiku-4-5",
		in:   `{"model":"gpt-4o","max_tokens":10,"messages":[{"role":"user","content":"w"}],"tools":[{"type":"function","function":{"name":"a","parameters":{"type":"object"}}}],"parallel_tool_calls":false}`,
		want: `{"model":"claude-haiku-4-5","max_tokens":10,"messages":[{"role":"user","content":[{"type":"text","text":"w"}]}],"tools":[{"name":"a","input_schema":{"type":"object"}}],"tool_choice":{"type":"auto","disable_parallel_tool_use":true}}`,
	}, {
		name: "named and none tool_choice", upstream: "claude-haiku-4-5",
		in:   `{"model":"gpt-4o","max_tokens":10,"messages":[{"role":"user","content":"w"}],"tools":[{"type":"function","function":{"name":"a","parameters":{"type":"object"}}}],"tool_choice":{"type":"function","function":{"name":"a"}}}`,
		want: `{"model":"claude-haiku-4-5","max_tokens":10,"messages":[{"role":"user","content":[{"type":"text","text":"w"}]}],"tools":[{"name":"a","input_schema":{"type":"object"}}],"tool_choice":{"type":"tool","name":"a"}}`,
	}, {
		name: "tool_choice none", upstream: "claude-haiku-4-5",
		in:   `{"model":"gpt-4o","max_tokens":10,"messages":[{"role":"user","content":"w"}],"tools":[{"type":"function","function":{"name":"a","parameters":{"type":"object"}}}],"tool_choice":"none","parallel_tool_calls":false}`,
		want: `{"model":"claude-haiku-4-5","max_tokens":10,"messages":[{"role":"user","content":[{"type":"text","text":"w"}]}],"tools":[{"name":"a","input_schema":{"type":"object"}}],"tool_choice":{"type":"none"}}`,
	}, {
		name: "tool_choice auto", upstream: "claude-haiku-4-5",
		in:   `{"model":"gpt-4o","max_tokens":10,"messages":[{"role":"user","content":"w"}],"tools":[{"type":"function","function":{"name":"a","parameters":{"type":"object"}}}],"tool_choice":"auto"}`,
		want: `{"model":"claude-haiku-4-5","max_tokens":10,"messages":[{"role":"user","content":[{"type":"text","text":"w"}]}],"tools":[{"name":"a","input_schema":{"type":"object"}}],"tool_choice":{"type":"auto"}}`,
	}, {
		name: "tool calls and consecutive tool messages become one user turn", upstream: "claude-haiku-4-5",
		in: `{"model":"gpt-4o","max_tokens":10,"messages":[
			{"role":"user","content":"weather in two cities"},
			{"role":"assistant","content":null,"tool_calls":[
				{"id":"call_a","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}},
				{"id":"call_b","type":"function","function":{"name":"get_weather","arguments":""}}]},
			{"role":"tool","tool_call_id":"call_a","content":"18C"},
			{"role":"tool","tool_call_id":"call_b","content":[{"type":"text","text":"21C"}]},
			{"role":"user","content":"and tomorrow?"},
			{"role":"assistant","content":"Let me check.","tool_calls":[{"id":"call.c:1","type":"function","function":{"name":"get_weather","arguments":"not json"}}]}]}`,
		want: `{"model":"claude-haiku-4-5","max_tokens":10,"messages":[
			{"role":"user","content":[{"type":"text","text":"weather in two cities"}]},
			{"role":"assistant","content":[{"type":"tool_use","id":"call_a","name":"get_weather","input":{"city":"Paris"}},{"type":"tool_use","id":"call_b","name":"get_weather","input":{}}]},
			{"role":"user","content":[
				{"type":"tool_result","tool_use_id":"call_a","content":[{"type":"text","text":"18C"}]},
				{"type":"tool_result","tool_use_id":"call_b","content":[{"type":"text","text":"21C"}]},
				{"type":"text","text":"and tomorrow?"}]},
			{"role":"assistant","content":[{"type":"text","text":"Let me check."},{"type":"tool_use","id":"call_c_1","name":"get_weather","input":{"arguments":"not json"}}]}]}`,
	}, {
		name: "reasoning_effort to thinking budget, sampling dropped", upstream: "claude-sonnet-4-5",
		in:   `{"model":"o3","messages":[{"role":"user","content":"x"}],"max_completion_tokens":20000,"reasoning_effort":"high","temperature":0.3}`,
		want: `{"model":"claude-sonnet-4-5","max_tokens":20000,"messages":[{"role":"user","content":[{"type":"text","text":"x"}]}],"thinking":{"type":"enabled","budget_tokens":4096}}`,
	}, {
		// Extended thinking takes tool_choice auto or none only.
		name: "a forced tool wins over reasoning_effort", upstream: "claude-sonnet-4-5",
		in:   `{"model":"o3","messages":[{"role":"user","content":"x"}],"max_completion_tokens":20000,"reasoning_effort":"medium","tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}],"tool_choice":"required"}`,
		want: `{"model":"claude-sonnet-4-5","max_tokens":20000,"messages":[{"role":"user","content":[{"type":"text","text":"x"}]}],"tools":[{"name":"f","input_schema":{"type":"object"}}],"tool_choice":{"type":"any"}}`,
	}, {
		// Anthropic requires a tool loop's assistant turn to start with its
		// signed thinking block when thinking is on; an OpenAI client never
		// had it, so the turn answering tool results goes without thinking.
		name: "a turn answering tool results goes without thinking", upstream: "claude-sonnet-4-5",
		in: `{"model":"o3","max_completion_tokens":20000,"reasoning_effort":"low","tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}],"messages":[
			{"role":"user","content":"x"},
			{"role":"assistant","tool_calls":[{"id":"toolu_W1","type":"function","function":{"name":"f","arguments":"{}"}}]},
			{"role":"tool","tool_call_id":"toolu_W1","content":"18C"}]}`,
		want: `{"model":"claude-sonnet-4-5","max_tokens":20000,"messages":[
			{"role":"user","content":[{"type":"text","text":"x"}]},
			{"role":"assistant","content":[{"type":"tool_use","id":"toolu_W1","name":"f","input":{}}]},
			{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_W1","content":[{"type":"text","text":"18C"}]}]}],
			"tools":[{"name":"f","input_schema":{"type":"object"}}]}`,
	}, {
		// The same turn with the assistant's signed thinking sent back
		// (LiteLLM's thinking_blocks, as the Responses API's reasoning
		// items reach it): thinking stays on, the blocks lead the turn;
		// a block without a signature, which Claude would refuse, goes.
		name: "a tool loop whose thinking came back keeps thinking", upstream: "claude-sonnet-4-5",
		in: `{"model":"o3","max_completion_tokens":20000,"reasoning_effort":"low","tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}],"messages":[
			{"role":"user","content":"x"},
			{"role":"assistant","content":"On it.","thinking_blocks":[{"type":"thinking","thinking":"Call f.","signature":"c2ln"},{"type":"thinking","thinking":"unsigned"},{"type":"redacted_thinking","data":"ZGF0YQ=="}],
			 "tool_calls":[{"id":"toolu_W1","type":"function","function":{"name":"f","arguments":"{}"}}]},
			{"role":"tool","tool_call_id":"toolu_W1","content":"18C"}]}`,
		want: `{"model":"claude-sonnet-4-5","max_tokens":20000,"messages":[
			{"role":"user","content":[{"type":"text","text":"x"}]},
			{"role":"assistant","content":[{"type":"thinking","thinking":"Call f.","signature":"c2ln"},{"type":"redacted_thinking","data":"ZGF0YQ=="},
				{"type":"text","text":"On it."},{"type":"tool_use","id":"toolu_W1","name":"f","input":{}}]},
			{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_W1","content":[{"type":"text","text":"18C"}]}]}],
			"tools":[{"name":"f","input_schema":{"type":"object"}}],"thinking":{"type":"enabled","budget_tokens":1024}}`,
	}, {
		// Sent back to a request that does not think (no reasoning_effort,
		// or a forced tool), the blocks go: a message they alone made goes
		// too, and the messages it separated join.
		name: "thinking sent back to a request without thinking is left out", upstream: "claude-sonnet-4-5",
		in: `{"model":"o3","max_completion_tokens":100,"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}],"messages":[
			{"role":"user","content":"x"},
			{"role":"assistant","content":null,"thinking_blocks":[{"type":"thinking","thinking":"Hm.","signature":"c2ln"}]},
			{"role":"user","content":"y"},
			{"role":"assistant","thinking_blocks":[{"type":"thinking","thinking":"Call f.","signature":"c2ln"}],"tool_calls":[{"id":"toolu_W1","type":"function","function":{"name":"f","arguments":"{}"}}]},
			{"role":"tool","tool_call_id":"toolu_W1","content":"18C"}]}`,
		want: `{"model":"claude-sonnet-4-5","max_tokens":100,"messages":[
			{"role":"user","content":[{"type":"text","text":"x"},{"type":"text","text":"y"}]},
			{"role":"assistant","content":[{"type":"tool_use","id":"toolu_W1","name":"f","input":{}}]},
			{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_W1","content":[{"type":"text","text":"18C"}]}]}],
			"tools":[{"name":"f","input_schema":{"type":"object"}}]}`,
	}, {
		name: "reasoning_effort kept with tool_choice auto", upstream: "claude-sonnet-4-5",
		in:   `{"model":"o3","messages":[{"role":"user","content":"x"}],"max_completion_tokens":20000,"reasoning_effort":"medium","tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}],"tool_choice":"auto"}`,
		want: `{"model":"claude-sonnet-4-5","max_tokens":20000,"messages":[{"role":"user","content":[{"type":"text","text":"x"}]}],"tools":[{"name":"f","input_schema":{"type":"object"}}],"tool_choice":{"type":"auto"},"thinking":{"type":"enabled","budget_tokens":2048}}`,
	}, {
		name: "reasoning_effort low", upstream: "claude-sonnet-4-5",
		in:   `{"model":"o3","messages":[{"role":"user","content":"x"}],"max_completion_tokens":20000,"reasoning_effort":"low"}`,
		want: `{"model":"claude-sonnet-4-5","max_tokens":20000,"messages":[{"role":"user","content":[{"type":"text","text":"x"}]}],"thinking":{"type":"enabled","budget_tokens":1024}}`,
	}, {
		name: "reasoning budget shrinks to fit max_tokens", upstream: "claude-sonnet-4-5",
		in:   `{"model":"o3","messages":[{"role":"user","content":"x"}],"max_completion_tokens":3000,"reasoning_effort":"high"}`,
		want: `{"model":"claude-sonnet-4-5","max_tokens":3000,"messages":[{"role":"user","content":[{"type":"text","text":"x"}]}],"thinking":{"type":"enabled","budget_tokens":1500}}`,
	}, {
		name: "reasoning_effort minimal means no thinking", upstream: "claude-sonnet-4-5",
		in:   `{"model":"o3","messages":[{"role":"user","content":"x"}],"max_completion_tokens":300,"reasoning_effort":"minimal","temperature":0.3}`,
		want: `{"model":"claude-sonnet-4-5","max_tokens":300,"messages":[{"role":"user","content":[{"type":"text","text":"x"}]}],"temperature":0.3}`,
	}, {
		name: "adaptive-only model gets adaptive thinking and effort", upstream: "claude-sonnet-5",
		in:   `{"model":"o3","messages":[{"role":"user","content":"x"}],"max_completion_tokens":3000,"reasoning_effort":"medium"}`,
		want: `{"model":"claude-sonnet-5","max_tokens":3000,"messages":[{"role":"user","content":[{"type":"text","text":"x"}]}],"thinking":{"type":"adaptive"},"output_config":{"effort":"medium"}}`,
	}, {
		// Opus 4.7 refuses thinking.type "enabled" (and "disabled") with a
		// 400, as the 5 family does.
		name: "Opus 4.7 gets adaptive thinking and effort", upstream: "claude-opus-4-7",
		in:   `{"model":"o3","messages":[{"role":"user","content":"x"}],"max_completion_tokens":3000,"reasoning_effort":"high"}`,
		want: `{"model":"claude-opus-4-7","max_tokens":3000,"messages":[{"role":"user","content":[{"type":"text","text":"x"}]}],"thinking":{"type":"adaptive"},"output_config":{"effort":"high"}}`,
	}, {
		name: "sampling dropped for models that reject it", upstream: "claude-opus-4-7",
		in:   `{"model":"gpt-4o","messages":[{"role":"user","content":"x"}],"max_tokens":5,"temperature":0.3,"top_p":0.2}`,
		want: `{"model":"claude-opus-4-7","max_tokens":5,"messages":[{"role":"user","content":[{"type":"text","text":"x"}]}]}`,
	}, {
		name: "json_schema response format", upstream: "claude-sonnet-4-5",
		in:   `{"model":"gpt-4o","messages":[{"role":"user","content":"x"}],"max_tokens":5,"response_format":{"type":"json_schema","json_schema":{"name":"r","schema":{"type":"object"},"strict":true}}}`,
		want: `{"model":"claude-sonnet-4-5","max_tokens":5,"messages":[{"role":"user","content":[{"type":"text","text":"x"}]}],"output_config":{"format":{"type":"json_schema","schema":{"type":"object"}}}}`,
	}, {
		name: "invalid tool names shortened with a hash", upstream: "claude-sonnet-4-5",
		in: `{"model":"gpt-4o","max_tokens":5,"messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"files.read","parameters":{"type":"object"}}}],
			"tool_choice":{"type":"function","function":{"name":"files.read"}}}`,
		want: `{"model":"claude-sonnet-4-5","max_tokens":5,"messages":[{"role":"user","content":[{"type":"text","text":"x"}]}],"tools":[{"name":"files_read_601e4eb6","input_schema":{"type":"object"}}],"tool_choice":{"type":"tool","name":"files_read_601e4eb6"}}`,
	}, {
		name: "trailing system message in the middle is hoisted", upstream: "claude-sonnet-4-5",
		in:   `{"model":"gpt-4o","max_tokens":5,"messages":[{"role":"user","content":"x"},{"role":"system","content":"late rule"},{"role":"user","content":"y"}]}`,
		want: `{"model":"claude-sonnet-4-5","max_tokens":5,"system":[{"type":"text","text":"late rule"}],"messages":[{"role":"user","content":[{"type":"text","text":"x"},{"type":"text","text":"y"}]}]}`,
	}, {
		name: "n>1 is rejected", upstream: "claude-sonnet-4-5",
		in: `{"model":"gpt-4o","messages":[{"role":"user","content":"x"}],"n":3}`, wantErr: "n=3 is not supported",
	}, {
		name: "audio is rejected", upstream: "claude-sonnet-4-5",
		in:      `{"model":"gpt-4o","messages":[{"role":"user","content":[{"type":"input_audio","input_audio":{"data":"AAAA","format":"wav"}}]}]}`,
		wantErr: "audio input is not supported",
	}, {
		name: "uploaded file ids are rejected", upstream: "claude-sonnet-4-5",
		in:      `{"model":"gpt-4o","messages":[{"role":"user","content":[{"type":"file","file":{"file_id":"file-1"}}]}]}`,
		wantErr: "uploaded file ids",
	}, {
		name: "legacy functions are rejected", upstream: "claude-sonnet-4-5",
		in:      `{"model":"gpt-4o","messages":[{"role":"user","content":"x"}],"functions":[{"name":"f"}]}`,
		wantErr: "deprecated functions",
	}, {
		name: "other tool types are rejected", upstream: "claude-sonnet-4-5",
		in:      `{"model":"gpt-4o","messages":[{"role":"user","content":"x"}],"tools":[{"type":"web_search","web_search":{}}]}`,
		wantErr: `tool type "web_search" is not supported across providers (function and custom tools only)`,
	}, {
		name: "a custom tool's grammar of another syntax is rejected", upstream: "claude-sonnet-4-5",
		in:      `{"model":"gpt-4o","messages":[{"role":"user","content":"x"}],"tools":[{"type":"custom","custom":{"name":"g","format":{"type":"grammar","grammar":{"syntax":"ebnf","definition":"x"}}}}]}`,
		wantErr: `(tools[0].custom.format.grammar.syntax): grammar syntax "ebnf" is not supported (lark or regex)`,
	}, {
		name: "a flat Responses API custom tool is named", upstream: "claude-sonnet-4-5",
		in:      `{"model":"gpt-4o","messages":[{"role":"user","content":"x"}],"tools":[{"type":"custom","name":"A"}]}`,
		wantErr: "(tools[0].custom): field required; a flat tool",
	}, {
		name: "a nameless custom tool is rejected", upstream: "claude-sonnet-4-5",
		in:      `{"model":"gpt-4o","messages":[{"role":"user","content":"x"}],"tools":[{"type":"custom","custom":{"description":"d"}}]}`,
		wantErr: `(tools[0].custom.name): tool name is required`,
	}, {
		name: "a nameless custom call is rejected", upstream: "claude-sonnet-4-5",
		in:      `{"model":"gpt-4o","messages":[{"role":"assistant","tool_calls":[{"id":"c","type":"custom","custom":{"input":"x"}}]}]}`,
		wantErr: `(messages[0].tool_calls[0].custom.name): a custom tool call needs a name`,
	}, {
		// Responses API tools are flat; told as such, not as a tool
		// type the gateway cannot carry.
		name: "flat Responses API tools are named", upstream: "claude-sonnet-4-5",
		in:      `{"model":"gpt-4o","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","name":"g","parameters":{"type":"object"}}]}`,
		wantErr: "(tools[0].function): field required; a flat tool",
	}, {
		name: "not JSON", upstream: "claude-sonnet-4-5", in: `[]`, wantErr: "decoding OpenAI request",
	}}
	runRequestCases(t, cases, OpenAIToAnthropicRequest)
}

// TestAnthropicToOpenAIRequestCompatOptions: the options for OpenAI-
// compatible servers that are not OpenAI's send the output limit as
// max_tokens, leave stream_options out, and merge Claude Code's
// mid-conversation system messages into the leading one; without them the
// request is OpenAI's.
func TestAnthropicToOpenAIRequestCompatOptions(t *testing.T) {
	body := `{"model":"claude-x","max_tokens":100,"stream":true,"system":"You are terse.",
		"messages":[{"role":"user","content":"hi"},{"role":"system","content":"# Environment\ncwd: /src"},{"role":"user","content":"go on"}]}`
	out, _, err := AnthropicToOpenAIRequest([]byte(body), "qwen3", Options{})
	if err != nil {
		t.Fatal(err)
	}
	assertJSON(t, out, `{"model":"qwen3","max_completion_tokens":100,"stream":true,"stream_options":{"include_usage":true},
		"messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"hi"},
			{"role":"system","content":"# Environment\ncwd: /src"},{"role":"user","content":"go on"}]}`)
	out, _, err = AnthropicToOpenAIRequest([]byte(body), "qwen3", Options{MaxTokens: true, NoStreamUsage: true, SystemFirst: true})
	if err != nil {
		t.Fatal(err)
	}
	assertJSON(t, out, `{"model":"qwen3","max_tokens":100,"stream":true,
		"messages":[{"role":"system","content":"You are terse.\n\n# Environment\ncwd: /src"},
			{"role":"user","content":"hi"},{"role":"user","content":"go on"}]}`)
}
