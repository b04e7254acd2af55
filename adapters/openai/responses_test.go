package openai

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	sdk "github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/responses"
	"github.com/openai/openai-go/v3/shared"
	"github.com/tidwall/gjson"

	"github.com/metisgateway/metis/ir"
)

// chatFrom converts a Responses body and reads the result back as the
// official SDK's Chat Completions request, so that what goes upstream is
// one the SDK itself could have sent.
func chatFrom(t *testing.T, body []byte) (gjson.Result, sdk.ChatCompletionNewParams) {
	t.Helper()
	out, err := ResponsesToChat(body)
	if err != nil {
		t.Fatalf("converting %s: %v", body, err)
	}
	if !json.Valid(out) {
		t.Fatalf("not JSON: %s", out)
	}
	var p sdk.ChatCompletionNewParams
	if err := json.Unmarshal(out, &p); err != nil {
		t.Fatalf("the SDK does not read %s as a Chat Completions request: %v", out, err)
	}
	return gjson.ParseBytes(out), p
}

// wantPaths checks members of a converted request by gjson path.
func wantPaths(t *testing.T, got gjson.Result, want map[string]string) {
	t.Helper()
	for path, w := range want {
		if g := got.Get(path).String(); g != w {
			t.Errorf("%s = %q, want %q", path, g, w)
		}
	}
}

// wantGone checks that Responses-only members did not stay.
func wantGone(t *testing.T, got gjson.Result, members ...string) {
	t.Helper()
	for _, m := range members {
		if got.Get(m).Exists() {
			t.Errorf("%s is still in %s", m, got.Raw)
		}
	}
}

// A Responses request made by the official Go SDK, with a tool round trip,
// becomes the Chat Completions request it stands for.
func TestResponsesToChatFromSDKParams(t *testing.T) {
	out := responses.ResponseInputItemParamOfFunctionCallOutput(`{"temp_c":21}`)
	out.OfFunctionCallOutput.CallID = sdk.String("call_1")
	params := responses.ResponseNewParams{
		Model:        "gpt-5-mini",
		Instructions: sdk.String("Be terse."),
		Input: responses.ResponseNewParamsInputUnion{OfInputItemList: responses.ResponseInputParam{
			responses.ResponseInputItemParamOfMessage("Weather in Paris?", responses.EasyInputMessageRoleUser),
			responses.ResponseInputItemParamOfFunctionCall(`{"city":"Paris"}`, "call_1", "get_weather"),
			out,
		}},
		Tools: []responses.ToolUnionParam{responses.ToolParamOfFunction("get_weather",
			map[string]any{"type": "object", "properties": map[string]any{"city": map[string]any{"type": "string"}}}, true)},
		MaxOutputTokens: sdk.Int(256),
		Reasoning:       shared.ReasoningParam{Effort: shared.ReasoningEffortLow},
		Store:           sdk.Bool(false),
	}
	body, err := json.Marshal(params)
	if err != nil {
		t.Fatal(err)
	}
	got, p := chatFrom(t, body)
	wantPaths(t, got, map[string]string{
		"model":                                 "gpt-5-mini",
		"max_completion_tokens":                 "256",
		"reasoning_effort":                      "low",
		"store":                                 "false",
		"messages.#":                            "4",
		"messages.0.role":                       "system",
		"messages.0.content":                    "Be terse.",
		"messages.1.role":                       "user",
		"messages.1.content":                    "Weather in Paris?",
		"messages.2.role":                       "assistant",
		"messages.2.tool_calls.0.id":            "call_1",
		"messages.2.tool_calls.0.function.name": "get_weather",
		"messages.2.tool_calls.0.function.arguments": `{"city":"Paris"}`,
		"messages.3.role":                                  "tool",
		"messages.3.tool_call_id":                          "call_1",
		"messages.3.content":                               `{"temp_c":21}`,
		"tools.0.type":                                     "function",
		"tools.0.function.name":                            "get_weather",
		"tools.0.function.strict":                          "true",
		"tools.0.function.parameters.properties.city.type": "string",
	})
	wantGone(t, got, "input", "instructions", "max_output_tokens", "reasoning")
	if len(p.Messages) != 4 || len(p.Tools) != 1 {
		t.Errorf("the SDK reads %d messages and %d tools", len(p.Messages), len(p.Tools))
	}
}

// What Cursor's agent sends to an overridden base URL (Cursor forum,
// 2026): input items with parts, the model's encrypted reasoning, a custom
// grammar tool and its call, flat tools, text options and Responses-only
// members, streamed with include_usage.
func TestResponsesToChatCursorBody(t *testing.T) {
	body := []byte(`{"model":"gpt-5.5","stream":true,"store":false,
		"include":["reasoning.encrypted_content"],"reasoning":{"effort":"medium","summary":"auto"},
		"text":{"verbosity":"low","format":{"type":"json_schema","name":"plan","schema":{"type":"object"},"strict":true}},
		"stream_options":{"include_usage":true},"truncation":"disabled","previous_response_id":null,
		"prompt_cache_key":"conv-1","parallel_tool_calls":true,
		"tools":[{"type":"function","name":"read_file","description":"Read a file","parameters":{"type":"object"},"strict":false},
			{"type":"custom","name":"ApplyPatch","description":"Patch","format":{"type":"grammar","syntax":"lark","definition":"start: /.+/"}}],
		"tool_choice":{"type":"function","name":"read_file"},
		"input":[
			{"role":"developer","content":[{"type":"input_text","text":"You are Cursor."}]},
			{"type":"message","role":"user","content":[{"type":"input_text","text":"Fix it."},{"type":"input_image","image_url":"data:image/png;base64,AAAA","detail":"low"}]},
			{"type":"reasoning","id":"rs_1","summary":[],"encrypted_content":"gAAAA"},
			{"type":"message","role":"assistant","content":[{"type":"output_text","text":"Reading it.","annotations":[]}]},
			{"type":"function_call","call_id":"call_a","name":"read_file","arguments":"{\"path\":\"a.go\"}"},
			{"type":"custom_tool_call","call_id":"call_b","name":"ApplyPatch","input":"*** Begin Patch"},
			{"type":"function_call_output","call_id":"call_a","output":"package a"},
			{"type":"custom_tool_call_output","call_id":"call_b","output":[{"type":"input_text","text":"applied"}]}
		]}`)
	got, p := chatFrom(t, body)
	wantPaths(t, got, map[string]string{
		"stream":                                "true",
		"stream_options.include_usage":          "true",
		"reasoning_effort":                      "medium",
		"verbosity":                             "low",
		"response_format.type":                  "json_schema",
		"response_format.json_schema.name":      "plan",
		"response_format.json_schema.strict":    "true",
		"prompt_cache_key":                      "conv-1",
		"parallel_tool_calls":                   "true",
		"tool_choice.function.name":             "read_file",
		"tools.1.type":                          "custom",
		"tools.1.custom.name":                   "ApplyPatch",
		"tools.1.custom.format.grammar.syntax":  "lark",
		"messages.#":                            "5",
		"messages.0.role":                       "developer",
		"messages.0.content.0.text":             "You are Cursor.",
		"messages.1.content.1.type":             "image_url",
		"messages.1.content.1.image_url.url":    "data:image/png;base64,AAAA",
		"messages.1.content.1.image_url.detail": "low",
		"messages.2.role":                       "assistant",
		"messages.2.content.0.text":             "Reading it.",
		"messages.2.tool_calls.#":               "2",
		"messages.2.tool_calls.1.type":          "custom",
		"messages.2.tool_calls.1.custom.input":  "*** Begin Patch",
		"messages.3.tool_call_id":               "call_a",
		"messages.4.tool_call_id":               "call_b",
		"messages.4.content.0.text":             "applied",
	})
	wantGone(t, got, "include", "truncation", "previous_response_id", "text", "reasoning", "input")
	if len(p.Messages) != 5 {
		t.Errorf("the SDK reads %d messages", len(p.Messages))
	}
}

// What a conversion cannot carry is refused with the member named, never
// dropped: the answer would be another than the one asked for.
func TestResponsesToChatRefusals(t *testing.T) {
	for body, want := range map[string]string{
		`{"model":"m","input":"hi","previous_response_id":"resp_1"}`:                                    "previous_response_id",
		`{"model":"m","input":"hi","conversation":"conv_1"}`:                                            "conversation",
		`{"model":"m","input":[{"type":"item_reference","id":"msg_1"}]}`:                                "input[0]",
		`{"model":"m","input":"hi","tools":[{"type":"web_search"}]}`:                                    `hosted tools`,
		`{"model":"m","input":[{"type":"web_search_call","id":"ws_1"}]}`:                                `"web_search_call"`,
		`{"model":"m","input":[{"role":"user","content":[{"type":"input_image","file_id":"file-1"}]}]}`: "file_id",
		`{"model":"m","input":42}`:                                                                      "input must be",
		`{"model":"m","input":"hi","background":true}`:                                                  "background",
	} {
		_, err := ResponsesToChat([]byte(body))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want one naming %s", body, err, want)
		}
	}
	// A string input is the user's message.
	got, _ := chatFrom(t, []byte(`{"model":"m","input":"hi","previous_response_id":null}`))
	if got.Get("messages.0.role").Str != "user" || got.Get("messages.0.content").Str != "hi" {
		t.Errorf("string input: %s", got.Raw)
	}
}

// One turn of the model's, text between its parallel tool calls, is one
// assistant message, followed at once by the tool messages: Chat
// Completions refuses an assistant message with tool_calls that its tool
// messages do not follow (audit 16C). A tool output's image goes after the
// run of tool messages, as a user message: a tool message holds text only.
func TestResponsesToChatTurnsAndToolOutputImages(t *testing.T) {
	got, p := chatFrom(t, []byte(`{"model":"gpt-5-mini","input":[
		{"role":"user","content":"Look at a and b."},
		{"type":"message","role":"assistant","content":[{"type":"output_text","text":"Reading a."}]},
		{"type":"function_call","call_id":"c1","name":"read","arguments":"{\"p\":\"a\"}"},
		{"type":"message","role":"assistant","content":"And b."},
		{"type":"function_call","call_id":"c2","name":"shot","arguments":"{}"},
		{"type":"function_call_output","call_id":"c1","output":"package a"},
		{"type":"function_call_output","call_id":"c2","output":[{"type":"input_text","text":"here"},{"type":"input_image","image_url":"data:image/png;base64,AAAA"}]},
		{"type":"message","role":"user","content":"Go on."}]}`))
	wantPaths(t, got, map[string]string{
		"messages.#":                         "6",
		"messages.1.role":                    "assistant",
		"messages.1.content.0.text":          "Reading a.",
		"messages.1.content.1.text":          "And b.",
		"messages.1.tool_calls.#":            "2",
		"messages.2.role":                    "tool",
		"messages.2.tool_call_id":            "c1",
		"messages.3.tool_call_id":            "c2",
		"messages.3.content.#":               "1",
		"messages.3.content.0.text":          "here",
		"messages.4.role":                    "user",
		"messages.4.content.0.type":          "image_url",
		"messages.4.content.0.image_url.url": "data:image/png;base64,AAAA",
		"messages.5.content":                 "Go on.",
	})
	if len(p.Messages) != 6 {
		t.Errorf("the SDK reads %d messages", len(p.Messages))
	}
}

// Chat Completions takes the Responses API's prompt-cache options and
// breakpoints as they are (openai-go's ChatCompletionNewParams and its
// content parts): kept, the prefix the client pinned stays cached for the
// time it asked (audit 16C).
func TestResponsesToChatCacheOptionsKept(t *testing.T) {
	got, _ := chatFrom(t, []byte(`{"model":"gpt-5-mini","prompt_cache_options":{"mode":"explicit","ttl":"30m"},
		"input":[{"role":"user","content":[{"type":"input_text","text":"<a repository map>","prompt_cache_breakpoint":{"mode":"explicit","ttl":"12h"}},
		{"type":"input_text","text":"Fix the bug."}]}]}`))
	wantPaths(t, got, map[string]string{
		"prompt_cache_options.mode":                        "explicit",
		"messages.0.content.0.prompt_cache_breakpoint.ttl": "12h",
		"messages.0.content.1.text":                        "Fix the bug.",
	})
}

// Members only the Responses API has do not go on (Chat Completions
// refuses unknown members), a member name with an escape stays valid
// JSON, a null top_logprobs turns nothing on, and a nameless tool is
// named in its error (audit 16C).
func TestResponsesToChatEdgeMembers(t *testing.T) {
	got, _ := chatFrom(t, []byte(`{"model":"gpt-5-mini","input":"hi","access_programs":{"cyber":"standard"},
		"image":{"context_compression":"auto"},"top_logprobs":null,"x\"y":1}`))
	wantGone(t, got, "access_programs", "image", "logprobs", "top_logprobs")
	if got.Get(`x\"y`).Int() != 1 {
		t.Errorf("a member with an escaped name: %s", got.Raw)
	}
	_, err := ResponsesToChat([]byte(`{"model":"m","input":"hi","tools":[{"type":"function","parameters":{"type":"object"}}]}`))
	if ie, ok := errors.AsType[*ir.Error](err); !ok || ie.Param != "tools[0].name" {
		t.Errorf("a function tool without a name: %v; want an error naming tools[0].name", err)
	}
}

// A Chat Completions member sent beside the Responses member it is made
// from gives way rather than go twice (which the gateway would refuse as a
// duplicate key the client never wrote), and empty tools go with their
// tool_choice, which Chat Completions refuses without tools (review 16R2).
func TestResponsesToChatPairsAndEmptyTools(t *testing.T) {
	got, _ := chatFrom(t, []byte(`{"model":"m","max_completion_tokens":6,"input":"x","max_output_tokens":5,
		"reasoning_effort":"high","reasoning":{"effort":"low"},"tools":[],"tool_choice":"auto"}`))
	wantPaths(t, got, map[string]string{"max_completion_tokens": "5", "reasoning_effort": "low"})
	wantGone(t, got, "tools", "tool_choice")
	if n := strings.Count(got.Raw, `"max_completion_tokens"`); n != 1 {
		t.Errorf("max_completion_tokens %d times: %s", n, got.Raw)
	}
}
