package translate

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/metisgateway/metis/adapters/sse"
)

type sseEvent struct {
	name string
	data map[string]any
	raw  string
}

// parseSSE splits client-side output into events and checks every data
// payload is JSON (or [DONE]).
func parseSSE(t *testing.T, out []byte) []sseEvent {
	t.Helper()
	r := sse.NewReader(strings.NewReader(string(out)))
	var evs []sseEvent
	for {
		ev, err := r.Next()
		if err != nil {
			break
		}
		if ev.Comment {
			evs = append(evs, sseEvent{name: ":comment", raw: string(ev.Raw)})
			continue
		}
		e := sseEvent{name: ev.Name, raw: string(ev.Data)}
		if string(ev.Data) != "[DONE]" {
			if err := json.Unmarshal(ev.Data, &e.data); err != nil {
				t.Fatalf("event %q data is not JSON: %s", ev.Name, ev.Data)
			}
		}
		evs = append(evs, e)
	}
	return evs
}

func names(evs []sseEvent) string {
	var s []string
	for _, e := range evs {
		n := e.name
		if n == "" {
			n = "data"
			if e.raw == "[DONE]" {
				n = "[DONE]"
			}
		}
		s = append(s, n)
	}
	return strings.Join(s, ",")
}

func anthropicClientState(t *testing.T, body string) *State {
	t.Helper()
	_, st, err := AnthropicToOpenAIRequest([]byte(body), "gpt-4o", Options{})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func openAIClientState(t *testing.T, body string) *State {
	t.Helper()
	_, st, err := OpenAIToAnthropicRequest([]byte(body), "claude-sonnet-4-5", Options{})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

const chunkPrefix = `{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,`

func chunk(s string) []byte { return []byte(chunkPrefix + s + `}]}`) }

func feed(t *testing.T, tr StreamTranslator, datas ...[]byte) []byte {
	t.Helper()
	var out []byte
	for _, d := range datas {
		b, err := tr.Event("", d)
		if err != nil {
			t.Fatalf("event %s: %v", d, err)
		}
		out = append(out, b...)
	}
	return out
}

// feedNamed is feed for events with names: {event, data} pairs.
func feedNamed(t *testing.T, tr StreamTranslator, events [][2]string) []byte {
	t.Helper()
	var out []byte
	for _, e := range events {
		b, err := tr.Event(e[0], []byte(e[1]))
		if err != nil {
			t.Fatalf("event %s %s: %v", e[0], e[1], err)
		}
		out = append(out, b...)
	}
	return out
}

// toolCallDeltas is every tool_calls entry of an OpenAI client's stream,
// in order.
func toolCallDeltas(t *testing.T, out []byte) []map[string]any {
	t.Helper()
	var calls []map[string]any
	for _, ev := range parseSSE(t, out) {
		choices, _ := ev.data["choices"].([]any)
		for _, c := range choices {
			d, _ := c.(map[string]any)["delta"].(map[string]any)
			tcs, _ := d["tool_calls"].([]any)
			for _, call := range tcs {
				calls = append(calls, call.(map[string]any))
			}
		}
	}
	return calls
}

func TestOpenAIToAnthropicStreamHoldsMessageDeltaForUsage(t *testing.T) {
	st := anthropicClientState(t, `{"model":"claude-x","max_tokens":10,"stream":true,"messages":[{"role":"user","content":"hello there"}]}`)
	tr := st.NewOpenAIToAnthropicStream()
	out := feed(t, tr,
		chunk(`"delta":{"role":"assistant","content":""},"finish_reason":null`),
		chunk(`"delta":{"content":"Hi"},"finish_reason":null`),
		chunk(`"delta":{},"finish_reason":"stop"`))
	evs := parseSSE(t, out)
	if got := names(evs); got != "message_start,content_block_start,content_block_delta,content_block_stop" {
		t.Fatalf("before usage: %s", got)
	}
	start := evs[0].data["message"].(map[string]any)["usage"].(map[string]any)
	if start["input_tokens"].(float64) <= 0 {
		t.Errorf("message_start usage must carry the input estimate: %v", start)
	}
	out = feed(t, tr, []byte(`{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[],
		"usage":{"prompt_tokens":1200,"completion_tokens":9,"total_tokens":1209,"prompt_tokens_details":{"cached_tokens":1000}}}`))
	evs = parseSSE(t, out)
	if got := names(evs); got != "message_delta,message_stop" {
		t.Fatalf("after usage: %s", got)
	}
	assertJSON(t, []byte(evs[0].raw), `{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},
		"usage":{"input_tokens":200,"cache_creation_input_tokens":0,"cache_read_input_tokens":1000,"output_tokens":9}}`)
	if b := feed(t, tr, []byte("[DONE]")); len(b) != 0 {
		t.Errorf("nothing after message_stop, got %s", b)
	}
	if b := tr.Finish(); len(b) != 0 {
		t.Errorf("Finish after the end must be empty, got %s", b)
	}
}

func TestOpenAIToAnthropicStreamWithoutUsageChunk(t *testing.T) {
	// An OpenAI-compatible server that ignores include_usage: [DONE] ends
	// the stream with estimated usage.
	st := anthropicClientState(t, `{"model":"claude-x","max_tokens":10,"stream":true,"messages":[{"role":"user","content":"hello there"}]}`)
	tr := st.NewOpenAIToAnthropicStream()
	out := feed(t, tr, chunk(`"delta":{"content":"Hello world, longer text"},"finish_reason":null`), chunk(`"delta":{},"finish_reason":"length"`), []byte("[DONE]"))
	evs := parseSSE(t, out)
	if got := names(evs); got != "message_start,content_block_start,content_block_delta,content_block_stop,message_delta,message_stop" {
		t.Fatalf("events: %s", got)
	}
	md := evs[4].data
	if md["delta"].(map[string]any)["stop_reason"] != "max_tokens" {
		t.Errorf("stop: %v", md)
	}
	u := md["usage"].(map[string]any)
	if u["input_tokens"].(float64) <= 0 || u["output_tokens"].(float64) <= 0 {
		t.Errorf("estimated usage must not be 0/0: %v", u)
	}
}

func TestOpenAIToAnthropicStreamEOF(t *testing.T) {
	st := anthropicClientState(t, `{"model":"claude-x","max_tokens":10,"stream":true,"messages":[{"role":"user","content":"x"}]}`)
	t.Run("after finish_reason, Finish ends normally", func(t *testing.T) {
		tr := st.NewOpenAIToAnthropicStream()
		feed(t, tr, chunk(`"delta":{"content":"a"},"finish_reason":null`), chunk(`"delta":{},"finish_reason":"stop"`))
		if got := names(parseSSE(t, tr.Finish())); got != "message_delta,message_stop" {
			t.Errorf("Finish: %s", got)
		}
	})
	t.Run("cut mid-answer, Finish reports an error", func(t *testing.T) {
		tr := st.NewOpenAIToAnthropicStream()
		feed(t, tr, chunk(`"delta":{"content":"a"},"finish_reason":null`))
		evs := parseSSE(t, tr.Finish())
		if got := names(evs); got != "error" {
			t.Fatalf("Finish: %s", got)
		}
		if evs[0].data["type"] != "error" || evs[0].data["error"].(map[string]any)["type"] != "api_error" {
			t.Errorf("error event %v", evs[0].data)
		}
	})
}

func TestOpenAIToAnthropicStreamToolCalls(t *testing.T) {
	st := anthropicClientState(t, `{"model":"claude-x","max_tokens":10,"stream":true,"messages":[{"role":"user","content":"x"}],
		"tools":[{"name":"`+longToolName+`","input_schema":{"type":"object"}},{"name":"b","input_schema":{"type":"object"}}]}`)
	tr := st.NewOpenAIToAnthropicStream()
	out := feed(t, tr,
		// content and a complete tool call in one chunk
		chunk(`"delta":{"content":"Using tools.","tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"`+longToolSafe+`","arguments":"{\"q\":1}"}}]},"finish_reason":null`),
		chunk(`"delta":{"tool_calls":[{"index":1,"id":"call_2","type":"function","function":{"name":"b","arguments":""}}]},"finish_reason":null`),
		// a late fragment for the closed call 0 cannot be placed and is dropped
		chunk(`"delta":{"tool_calls":[{"index":0,"function":{"arguments":"junk"}}]},"finish_reason":null`),
		chunk(`"delta":{"tool_calls":[{"index":1,"function":{"arguments":"{}"}}]},"finish_reason":null`),
		chunk(`"delta":{},"finish_reason":"tool_calls"`),
		[]byte("[DONE]"))
	evs := parseSSE(t, out)
	want := "message_start,content_block_start,content_block_delta,content_block_stop," +
		"content_block_start,content_block_delta,content_block_stop," +
		"content_block_start,content_block_delta,content_block_stop,message_delta,message_stop"
	if got := names(evs); got != want {
		t.Fatalf("events:\n got %s\nwant %s", got, want)
	}
	assertJSON(t, []byte(evs[4].raw), `{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"call_1","name":"`+longToolName+`","input":{}}}`)
	assertJSON(t, []byte(evs[5].raw), `{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"q\":1}"}}`)
	assertJSON(t, []byte(evs[7].raw), `{"type":"content_block_start","index":2,"content_block":{"type":"tool_use","id":"call_2","name":"b","input":{}}}`)
	assertJSON(t, []byte(evs[8].raw), `{"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"{}"}}`)
	if evs[10].data["delta"].(map[string]any)["stop_reason"] != "tool_use" {
		t.Errorf("stop %v", evs[10].data)
	}
}

func TestOpenAIToAnthropicStreamRefusalAndErrors(t *testing.T) {
	st := anthropicClientState(t, `{"model":"claude-x","max_tokens":10,"stream":true,"messages":[{"role":"user","content":"x"}]}`)
	t.Run("refusal", func(t *testing.T) {
		tr := st.NewOpenAIToAnthropicStream()
		evs := parseSSE(t, feed(t, tr, chunk(`"delta":{"refusal":"No."},"finish_reason":null`), chunk(`"delta":{},"finish_reason":"stop"`), []byte("[DONE]")))
		if evs[2].data["delta"].(map[string]any)["text"] != "No." || evs[4].data["delta"].(map[string]any)["stop_reason"] != "refusal" {
			t.Errorf("refusal: %v", evs)
		}
	})
	t.Run("upstream error chunk", func(t *testing.T) {
		tr := st.NewOpenAIToAnthropicStream()
		out := feed(t, tr, chunk(`"delta":{"content":"a"},"finish_reason":null`), []byte(`{"error":{"message":"Rate limit reached","type":"tokens","code":"rate_limit_exceeded"}}`))
		evs := parseSSE(t, out)
		last := evs[len(evs)-1]
		if last.name != "error" {
			t.Fatalf("events %s", names(evs))
		}
		assertJSON(t, []byte(last.raw), `{"type":"error","error":{"type":"rate_limit_error","message":"Rate limit reached"}}`)
		if b := feed(t, tr, chunk(`"delta":{"content":"b"},"finish_reason":null`)); len(b) != 0 {
			t.Errorf("nothing after an error, got %s", b)
		}
	})
	t.Run("malformed chunk", func(t *testing.T) {
		tr := st.NewOpenAIToAnthropicStream()
		if b, err := tr.Event("", []byte(`{"choices":[`)); err == nil || len(b) != 0 {
			t.Fatalf("want an error and no bytes, got %q %v", b, err)
		}
		if !strings.Contains(string(tr.Error("overloaded_error", "Overloaded")), `"type":"overloaded_error"`) {
			t.Error("Error must write the given type")
		}
	})
	t.Run("gateway error and ping", func(t *testing.T) {
		tr := st.NewOpenAIToAnthropicStream()
		if got := string(tr.Ping()); got != "event: ping\ndata: {\"type\":\"ping\"}\n\n" {
			t.Errorf("ping %q", got)
		}
		evs := parseSSE(t, tr.Error("server_error", "upstream timed out"))
		assertJSON(t, []byte(evs[0].raw), `{"type":"error","error":{"type":"api_error","message":"upstream timed out"}}`)
		if len(tr.Ping()) != 0 || len(tr.Finish()) != 0 {
			t.Error("nothing after the end")
		}
	})
}

func TestAnthropicToOpenAIStreamShapes(t *testing.T) {
	st := openAIClientState(t, `{"model":"gpt-4o","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"x"}],
		"tools":[{"type":"function","function":{"name":"files.read","parameters":{"type":"object"}}},{"type":"function","function":{"name":"b","parameters":{"type":"object"}}}]}`)
	ev := func(name, data string) (string, []byte) { return name, []byte(data) }
	tr := st.NewAnthropicToOpenAIStream()
	var out []byte
	for _, e := range [][2]string{
		{"message_start", `{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[],"usage":{"input_tokens":10,"cache_read_input_tokens":5,"output_tokens":1}}}`},
		{"content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"toolu_a","name":"files_read_601e4eb6","input":{}}}`},
		{"content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":""}}`},
		{"content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{\"p\":1}"}}`},
		{"content_block_stop", `{"type":"content_block_stop","index":0}`},
		{"content_block_start", `{"type":"content_block_start","index":1,"content_block":{"type":"server_tool_use","id":"srvtoolu_1","name":"web_search","input":{}}}`},
		{"content_block_delta", `{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"query\":\"x\"}"}}`},
		{"content_block_stop", `{"type":"content_block_stop","index":1}`},
		{"content_block_start", `{"type":"content_block_start","index":2,"content_block":{"type":"tool_use","id":"toolu_b","name":"b","input":{}}}`},
		{"content_block_delta", `{"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"{}"}}`},
		{"content_block_stop", `{"type":"content_block_stop","index":2}`},
		{"message_delta", `{"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":30}}`},
		{"message_delta", `{"type":"message_delta","delta":{"stop_reason":null},"usage":{}}`},
		{"message_stop", `{"type":"message_stop"}`},
	} {
		b, err := tr.Event(ev(e[0], e[1]))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b...)
	}
	evs := parseSSE(t, out)
	if got := names(evs); got != "data,data,data,data,data,data,data,[DONE]" {
		t.Fatalf("chunks: %s\n%s", got, out)
	}
	delta := func(i int) map[string]any {
		return evs[i].data["choices"].([]any)[0].(map[string]any)["delta"].(map[string]any)
	}
	assertJSON(t, []byte(mustJSON(delta(0))), `{"role":"assistant","content":""}`)
	assertJSON(t, []byte(mustJSON(delta(1))), `{"tool_calls":[{"index":0,"id":"toolu_a","type":"function","function":{"name":"files.read","arguments":""}}]}`)
	assertJSON(t, []byte(mustJSON(delta(2))), `{"tool_calls":[{"index":0,"function":{"arguments":"{\"p\":1}"}}]}`)
	assertJSON(t, []byte(mustJSON(delta(3))), `{"tool_calls":[{"index":1,"id":"toolu_b","type":"function","function":{"name":"b","arguments":""}}]}`)
	assertJSON(t, []byte(mustJSON(delta(4))), `{"tool_calls":[{"index":1,"function":{"arguments":"{}"}}]}`)
	if evs[5].data["choices"].([]any)[0].(map[string]any)["finish_reason"] != "tool_calls" {
		t.Errorf("finish %s", evs[5].raw)
	}
	assertJSON(t, []byte(mustJSON(evs[6].data["usage"])), `{"prompt_tokens":15,"completion_tokens":30,"total_tokens":45,"prompt_tokens_details":{"cached_tokens":5},"completion_tokens_details":{"reasoning_tokens":0}}`)
	if len(evs[6].data["choices"].([]any)) != 0 {
		t.Errorf("usage chunk must have choices: []")
	}
	if evs[0].data["model"] != "gpt-4o" || evs[0].data["id"] != "msg_1" {
		t.Errorf("chunk header %v", evs[0].data)
	}

	t.Run("EOF", func(t *testing.T) {
		tr := st.NewAnthropicToOpenAIStream()
		_, _ = tr.Event(ev("message_start", `{"type":"message_start","message":{"id":"m","usage":{"input_tokens":1}}}`))
		evs := parseSSE(t, tr.Finish())
		if len(evs) != 1 || evs[0].data["error"] == nil {
			t.Fatalf("a cut stream ends with an error chunk: %v", evs)
		}
		tr = st.NewAnthropicToOpenAIStream()
		_, _ = tr.Event(ev("message_delta", `{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":2}}`))
		if got := names(parseSSE(t, tr.Finish())); got != "data,data,[DONE]" { // finish and usage chunks
			t.Errorf("finish after message_delta: %s", got)
		}
	})
	t.Run("ping, gateway error, malformed", func(t *testing.T) {
		tr := st.NewAnthropicToOpenAIStream()
		if got := string(tr.Ping()); got != ": ping\n\n" {
			t.Errorf("ping %q", got)
		}
		if _, err := tr.Event("content_block_delta", []byte(`{"type":`)); err == nil {
			t.Error("want an error for malformed data")
		}
		evs := parseSSE(t, tr.Error("overloaded_error", "Overloaded"))
		assertJSON(t, []byte(evs[0].raw), `{"error":{"message":"Overloaded","type":"server_error","param":null,"code":"overloaded_error"}}`)
		if len(tr.Finish()) != 0 {
			t.Error("nothing after the error")
		}
	})
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// A client that named no model (the gateway's routing chose it) is told the
// provider's, as a translated non-streamed answer is, never "".
func TestStreamReportsProviderModelWhenClientNamedNone(t *testing.T) {
	st := openAIClientState(t, `{"stream":true,"messages":[{"role":"user","content":"x"}]}`)
	out, err := st.NewAnthropicToOpenAIStream().Event("message_start",
		[]byte(`{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929","content":[],"usage":{"input_tokens":10,"output_tokens":1}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if evs := parseSSE(t, out); len(evs) == 0 || evs[0].data["model"] != "claude-sonnet-4-5-20250929" {
		t.Errorf("OpenAI client's first chunk %s, want the provider's model", out)
	}

	st = anthropicClientState(t, `{"max_tokens":5,"stream":true,"messages":[{"role":"user","content":"x"}]}`)
	out = feed(t, st.NewOpenAIToAnthropicStream(), chunk(`"delta":{"role":"assistant","content":""},"finish_reason":null`))
	evs := parseSSE(t, out)
	if len(evs) == 0 || evs[0].name != "message_start" || evs[0].data["message"].(map[string]any)["model"] != "gpt-4o" {
		t.Errorf("Anthropic client's message_start %s, want the provider's model gpt-4o", out)
	}
}

// TestAnthropicToOpenAIStreamDeltaZerosKeepInput: an Anthropic-compatible
// server repeating the input counts as 0 in message_delta still gives the
// OpenAI client message_start's prompt tokens.
func TestAnthropicToOpenAIStreamDeltaZerosKeepInput(t *testing.T) {
	st := openAIClientState(t, `{"model":"gpt-4o","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"x"}]}`)
	tr := st.NewAnthropicToOpenAIStream()
	var out []byte
	for _, e := range [][2]string{
		{"message_start", `{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"glm-4.6","content":[],"usage":{"input_tokens":30,"cache_read_input_tokens":2000,"output_tokens":1}}}`},
		{"content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`},
		{"content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}`},
		{"content_block_stop", `{"type":"content_block_stop","index":0}`},
		{"message_delta", `{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"input_tokens":0,"cache_read_input_tokens":0,"output_tokens":37}}`},
		{"message_stop", `{"type":"message_stop"}`},
	} {
		b, err := tr.Event(e[0], []byte(e[1]))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b...)
	}
	evs := parseSSE(t, out)
	last := evs[len(evs)-2] // the usage chunk, before [DONE]
	assertJSON(t, []byte(mustJSON(last.data["usage"])), `{"prompt_tokens":2030,"completion_tokens":37,"total_tokens":2067,"prompt_tokens_details":{"cached_tokens":2000},"completion_tokens_details":{"reasoning_tokens":0}}`)
}

// TestAnthropicToOpenAIStreamToolArguments: a streamed tool call's
// arguments join into JSON an OpenAI client can parse, "{}" for a tool
// without parameters (Anthropic streams no argument text for it), and a
// call's own arguments get nothing added.
func TestAnthropicToOpenAIStreamToolArguments(t *testing.T) {
	for _, tc := range []struct{ name, deltas, want string }{
		{"no parameters", `{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":""}}`, `{}`},
		{"no delta at all", ``, `{}`},
		{"parameters", `{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{\"tz\":"}}
{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"\"UTC\"}"}}`, `{"tz":"UTC"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := openAIClientState(t, `{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"time?"}],
				"tools":[{"type":"function","function":{"name":"get_time","parameters":{"type":"object","properties":{}}}}]}`)
			tr := st.NewAnthropicToOpenAIStream()
			events := [][2]string{
				{"message_start", `{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[],"usage":{"input_tokens":10,"output_tokens":1}}}`},
				{"content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"toolu_a","name":"get_time","input":{}}}`},
			}
			for _, d := range strings.Split(tc.deltas, "\n") {
				if d != "" {
					events = append(events, [2]string{"content_block_delta", d})
				}
			}
			events = append(events,
				[2]string{"content_block_stop", `{"type":"content_block_stop","index":0}`},
				[2]string{"message_delta", `{"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":12}}`},
				[2]string{"message_stop", `{"type":"message_stop"}`})
			out := feedNamed(t, tr, events)
			args := ""
			for _, call := range toolCallDeltas(t, out) {
				if f, ok := call["function"].(map[string]any); ok {
					a, _ := f["arguments"].(string)
					args += a
				}
			}
			if args != tc.want {
				t.Errorf("streamed arguments %q, want %q\n%s", args, tc.want, out)
			}
		})
	}
}

// TestOpenAIToAnthropicStreamParallelCallsOneIndex: parallel tool calls
// that share an index (Ollama) or have none (Gemini's compatible API) are
// told apart by their ids: each becomes its own tool_use block with its
// own input.
func TestOpenAIToAnthropicStreamParallelCallsOneIndex(t *testing.T) {
	for name, idx := range map[string]string{"same index": `"index":0,`, "no index": ``} {
		t.Run(name, func(t *testing.T) {
			st := anthropicClientState(t, `{"model":"claude-x","max_tokens":10,"stream":true,"messages":[{"role":"user","content":"weather?"}],
				"tools":[{"name":"get_weather","input_schema":{"type":"object"}}]}`)
			tr := st.NewOpenAIToAnthropicStream()
			out := feed(t, tr,
				chunk(`"delta":{"role":"assistant","tool_calls":[{`+idx+`"id":"call_a","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},"finish_reason":null`),
				chunk(`"delta":{"tool_calls":[{`+idx+`"id":"call_b","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Rome\"}"}}]},"finish_reason":null`),
				chunk(`"delta":{},"finish_reason":"tool_calls"`),
				[]byte(`{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[],"usage":{"prompt_tokens":10,"completion_tokens":9}}`),
				[]byte("[DONE]"))
			evs := parseSSE(t, out)
			var ids, inputs []string
			cur := ""
			for _, e := range evs {
				switch e.name {
				case "content_block_start":
					cb := e.data["content_block"].(map[string]any)
					ids = append(ids, cb["id"].(string))
					cur = ""
				case "content_block_delta":
					cur += e.data["delta"].(map[string]any)["partial_json"].(string)
				case "content_block_stop":
					inputs = append(inputs, cur)
				}
			}
			if strings.Join(ids, ",") != "call_a,call_b" || strings.Join(inputs, ",") != `{"city":"Paris"},{"city":"Rome"}` {
				t.Fatalf("blocks %v with inputs %v, want call_a Paris and call_b Rome\n%s", ids, inputs, out)
			}
		})
	}
}

// TestToolCallsWithoutIDsGetDistinctIDs: a server that names no tool call
// ids (some compatible servers) gets stand-ins that differ from call to
// call and from turn to turn, streamed or not: Claude Code replays every
// turn's tool_use ids, and a Claude model refuses repeated ones.
func TestToolCallsWithoutIDsGetDistinctIDs(t *testing.T) {
	seen := map[string]bool{}
	for turn := range 2 {
		st := anthropicClientState(t, `{"model":"claude-x","max_tokens":10,"stream":true,"messages":[{"role":"user","content":"weather?"}],
			"tools":[{"name":"get_weather","input_schema":{"type":"object"}}]}`)
		out := feed(t, st.NewOpenAIToAnthropicStream(),
			chunk(`"delta":{"role":"assistant","tool_calls":[{"index":0,"type":"function","function":{"name":"get_weather","arguments":"{}"}}]},"finish_reason":null`),
			chunk(`"delta":{"tool_calls":[{"index":1,"type":"function","function":{"name":"get_weather","arguments":"{}"}}]},"finish_reason":null`),
			chunk(`"delta":{},"finish_reason":"tool_calls"`),
			[]byte("[DONE]"))
		var ids []string
		for _, e := range parseSSE(t, out) {
			if e.name == "content_block_start" {
				ids = append(ids, e.data["content_block"].(map[string]any)["id"].(string))
			}
		}
		resp, err := st.OpenAIResponseToAnthropic([]byte(`{"id":"c","choices":[{"index":0,"finish_reason":"tool_calls","message":{"role":"assistant",
			"tool_calls":[{"type":"function","function":{"name":"get_weather","arguments":"{}"}},{"type":"function","function":{"name":"get_weather","arguments":"{}"}}]}}],
			"usage":{"prompt_tokens":3,"completion_tokens":2}}`))
		if err != nil {
			t.Fatal(err)
		}
		var msg struct {
			Content []struct{ ID string } `json:"content"`
		}
		_ = json.Unmarshal(resp, &msg)
		for _, c := range msg.Content {
			ids = append(ids, c.ID)
		}
		if len(ids) != 4 {
			t.Fatalf("turn %d: tool_use ids %v, want 2 streamed and 2 not", turn, ids)
		}
		for _, id := range ids {
			if id == "" || seen[id] {
				t.Errorf("turn %d: tool_use id %q is empty or repeats (all so far: %v)", turn, id, seen)
			}
			seen[id] = true
		}
	}
}

// TestOpenAIToAnthropicStreamIDChangesWithinACall: a server that gives
// each fragment of one tool call another id (vLLM's gpt-oss parser) still
// gets one tool_use, with the fragments' arguments joined.
func TestOpenAIToAnthropicStreamIDChangesWithinACall(t *testing.T) {
	st := anthropicClientState(t, `{"model":"claude-x","max_tokens":10,"stream":true,"messages":[{"role":"user","content":"weather?"}],
		"tools":[{"name":"get_weather","input_schema":{"type":"object"}}]}`)
	tr := st.NewOpenAIToAnthropicStream()
	out := feed(t, tr,
		chunk(`"delta":{"role":"assistant","tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"get_weather","arguments":""}}]},"finish_reason":null`),
		chunk(`"delta":{"tool_calls":[{"index":0,"id":"call_2","type":"function","function":{"arguments":"{\"city\":"}}]},"finish_reason":null`),
		chunk(`"delta":{"tool_calls":[{"index":0,"id":"call_3","type":"function","function":{"arguments":"\"Paris\"}"}}]},"finish_reason":null`),
		// After whole arguments, a fragment under yet another id but no
		// function name is still this call's (a new call names its function).
		chunk(`"delta":{"tool_calls":[{"index":0,"id":"call_4","type":"function","function":{"arguments":""}}]},"finish_reason":null`),
		chunk(`"delta":{},"finish_reason":"tool_calls"`),
		[]byte(`{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[],"usage":{"prompt_tokens":10,"completion_tokens":9}}`),
		[]byte("[DONE]"))
	var starts int
	input := ""
	for _, e := range parseSSE(t, out) {
		switch e.name {
		case "content_block_start":
			starts++
		case "content_block_delta":
			input += e.data["delta"].(map[string]any)["partial_json"].(string)
		}
	}
	if starts != 1 || input != `{"city":"Paris"}` {
		t.Fatalf("%d blocks with input %q, want one with {\"city\":\"Paris\"}\n%s", starts, input, out)
	}
}
