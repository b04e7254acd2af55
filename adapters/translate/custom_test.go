package translate

import (
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/metisgateway/metis/adapters/openai"
)

// patchGrammar is a shortened form of the Lark grammar Cursor's agent
// sends with its ApplyPatch custom tool.
const patchGrammar = `start: begin_patch hunk+ end_patch\nbegin_patch: \"*** Begin Patch\" LF\nend_patch: \"*** End Patch\" LF?`

// customToolBody is an OpenAI-shape request with a grammar custom tool, a
// text one and a function tool, with an earlier custom call and its
// result in the history.
const customToolBody = `{"model":"gpt-5","stream":%s,"messages":[
	{"role":"user","content":"fix the typo"},
	{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"custom","custom":{"name":"ApplyPatch","input":"*** Begin Patch\n*** End Patch\n"}}]},
	{"role":"tool","tool_call_id":"call_1","content":"Done"}],
	"tools":[
	{"type":"custom","custom":{"name":"ApplyPatch","description":"Edit files.","format":{"type":"grammar","grammar":{"syntax":"lark","definition":"` + patchGrammar + `"}}}},
	{"type":"custom","custom":{"name":"note","format":{"type":"text"}}},
	{"type":"function","function":{"name":"read_file","parameters":{"type":"object","properties":{"path":{"type":"string"}}}}}],
	"tool_choice":{"type":"custom","custom":{"name":"ApplyPatch"}}}`

// TestCustomToolsToClaude: an OpenAI client's custom (free-text) tools,
// which Cursor's agent sends, reach a Claude model as JSON tools taking
// the text in one string member, whose description carries the grammar;
// an earlier custom call goes as a tool_use of that form.
func TestCustomToolsToClaude(t *testing.T) {
	out, _, err := OpenAIToAnthropicRequest([]byte(strings.Replace(customToolBody, "%s", "false", 1)), "claude-sonnet-4-5", Options{})
	if err != nil {
		t.Fatal(err)
	}
	schema := `{"type":"object","properties":{"input":{"type":"string","description":"The text the tool takes, whole and unencoded."}},"required":["input"],"additionalProperties":false}`
	free := `This tool takes free text: put all of it in the string parameter \"input\", exactly as the tool is to receive it.`
	assertJSON(t, out, `{"model":"claude-sonnet-4-5","max_tokens":4096,
	"messages":[
	{"role":"user","content":[{"type":"text","text":"fix the typo"}]},
	{"role":"assistant","content":[{"type":"tool_use","id":"call_1","name":"ApplyPatch","input":{"input":"*** Begin Patch\n*** End Patch\n"}}]},
	{"role":"user","content":[{"type":"tool_result","tool_use_id":"call_1","content":[{"type":"text","text":"Done"}]}]}],
	"tools":[
	{"name":"ApplyPatch","description":"Edit files.\n\n`+free+` The text must match this Lark grammar:\n`+patchGrammar+`","input_schema":`+schema+`},
	{"name":"note","description":"`+free+`","input_schema":`+schema+`},
	{"name":"read_file","input_schema":{"type":"object","properties":{"path":{"type":"string"}}}}],
	"tool_choice":{"type":"tool","name":"ApplyPatch"}}`)
}

// TestCustomToolCallsFromClaude: Claude's call of a custom tool goes back
// to the OpenAI client as a custom call with the text as its input; a
// function tool's call in the same answer stays a function call.
func TestCustomToolCallsFromClaude(t *testing.T) {
	st := openAIClientState(t, strings.Replace(customToolBody, "%s", "false", 1))
	out, err := st.AnthropicResponseToOpenAI([]byte(`{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5",
	"content":[{"type":"text","text":"Patching."},
	{"type":"tool_use","id":"toolu_1","name":"ApplyPatch","input":{"input":"*** Begin Patch\n*** Update File: a.go\n-teh\n+the\n*** End Patch\n"}},
	{"type":"tool_use","id":"toolu_2","name":"note","input":{}},
	{"type":"tool_use","id":"toolu_3","name":"read_file","input":{"path":"a.go"}}],
	"stop_reason":"tool_use","stop_sequence":null,"usage":{"input_tokens":10,"output_tokens":20}}`))
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		Choices []struct {
			Message struct {
				Content   string
				ToolCalls []map[string]any `json:"tool_calls"`
			}
			FinishReason string `json:"finish_reason"`
		}
	}
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(r.Choices[0].Message.ToolCalls)
	assertJSON(t, got, `[
	{"id":"toolu_1","type":"custom","custom":{"name":"ApplyPatch","input":"*** Begin Patch\n*** Update File: a.go\n-teh\n+the\n*** End Patch\n"}},
	{"id":"toolu_2","type":"custom","custom":{"name":"note","input":""}},
	{"id":"toolu_3","type":"function","function":{"name":"read_file","arguments":"{\"path\":\"a.go\"}"}}]`)
	if c := r.Choices[0]; c.Message.Content != "Patching." || c.FinishReason != "tool_calls" {
		t.Errorf("content %q, finish %q", c.Message.Content, c.FinishReason)
	}
}

// TestCustomToolCallStreamsItsText: streamed, a custom tool's text is read
// out of Claude's JSON fragments as they come, however they are cut
// (escapes and surrogate pairs split between fragments included), and
// the client's pieces join to the exact text.
func TestCustomToolCallStreamsItsText(t *testing.T) {
	text := "*** Begin Patch\n*** Update File: \"dir\\a.go\"\n-caf\u00e9 \U0001F600\t</x>\n+\u2028ok\n*** End Patch\n"
	enc, _ := json.Marshal(map[string]string{"input": text})
	for _, tc := range []struct{ name, args, want string }{
		{"text", string(enc), text},
		{"text, spaced JSON", "{ \"input\" :\n \"a\\u0041\\n\" }", "aA\n"},
		{"no arguments", "", ""},
		{"input after another member", `{"path":"a","input":"x\ty"}`, "x	y"},
		{"other JSON", `{"path": "a"}`, `{"path":"a"}`},
		{"input not a string", `{"input":[1, 2]}`, `[1, 2]`},
		{"a lone high surrogate", `{"input":"\ud83d\ud83d\ude00x"}`, "\ufffd\U0001F600x"},
	} {
		// Complete, the arguments give the same text (not streamed).
		if got := openai.CustomInput(json.RawMessage(tc.args)); got != tc.want {
			t.Errorf("%s: not streamed, the input is %q, want %q", tc.name, got, tc.want)
		}
		for seed := range uint64(40) {
			rng := rand.New(rand.NewPCG(seed, 7))
			var frags []string
			for rest := tc.args; rest != ""; {
				n := 1 + rng.IntN(min(len(rest), 6))
				if seed == 0 {
					n = len(rest) // one fragment
				}
				for n < len(rest) && !utf8.RuneStart(rest[n]) {
					n++ // events carry whole characters
				}
				frags = append(frags, rest[:n])
				rest = rest[n:]
			}
			got, fn := streamCustomCall(t, frags)
			if got != tc.want || fn != `{"path":"b"}` {
				t.Fatalf("%s, fragments %q: custom input %q, want %q; function arguments %s", tc.name, frags, got, tc.want, fn)
			}
		}
	}
}

// streamCustomCall streams Claude's answer calling ApplyPatch with its
// arguments in frags, then read_file, through the translator and returns
// the custom call's input and the function call's arguments as the
// client's chunks give them.
func streamCustomCall(t *testing.T, frags []string) (string, string) {
	t.Helper()
	st := openAIClientState(t, strings.Replace(customToolBody, "%s", "true", 1))
	tr := st.NewAnthropicToOpenAIStream()
	events := [][2]string{
		{"message_start", `{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[],"usage":{"input_tokens":10,"output_tokens":1}}}`},
		{"content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"toolu_a","name":"ApplyPatch","input":{}}}`},
	}
	for _, f := range frags {
		d, _ := json.Marshal(map[string]any{"type": "content_block_delta", "index": 0, "delta": map[string]string{"type": "input_json_delta", "partial_json": f}})
		events = append(events, [2]string{"content_block_delta", string(d)})
	}
	events = append(events,
		[2]string{"content_block_stop", `{"type":"content_block_stop","index":0}`},
		[2]string{"content_block_start", `{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_b","name":"read_file","input":{}}}`},
		[2]string{"content_block_delta", `{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"path\":\"b\"}"}}`},
		[2]string{"content_block_stop", `{"type":"content_block_stop","index":1}`},
		[2]string{"message_delta", `{"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":12}}`},
		[2]string{"message_stop", `{"type":"message_stop"}`})
	out := feedNamed(t, tr, events)
	var input, args string
	for _, call := range toolCallDeltas(t, out) {
		switch call["index"] {
		case 0.0:
			if _, ok := call["function"]; ok {
				t.Fatalf("the custom call streamed function members: %v", call)
			}
			if typ, ok := call["type"]; ok && typ != "custom" {
				t.Fatalf("the custom call's type: %v", call)
			}
			cu, _ := call["custom"].(map[string]any)
			if n, ok := cu["name"]; ok && n != "ApplyPatch" {
				t.Fatalf("the custom call's name: %v", call)
			}
			s, _ := cu["input"].(string)
			input += s
		case 1.0:
			f, _ := call["function"].(map[string]any)
			s, _ := f["arguments"].(string)
			args += s
		}
	}
	return input, args
}
