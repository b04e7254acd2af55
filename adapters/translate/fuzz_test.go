package translate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/metisgateway/metis/adapters/sse"
	"github.com/metisgateway/metis/internal/vcr"
	"github.com/metisgateway/metis/ir"
)

func fixtureRequests(shape string) [][]byte {
	var out [][]byte
	for _, name := range []string{
		"anthropic_nonstream_tool_use_two_turns.vcr.yaml", "anthropic_stream_text_then_tool_use.vcr.yaml",
		"openai_nonstream_tool_call_reasoning_usage.vcr.yaml", "openai_stream_gpt5nano_usage_chunk.vcr.yaml",
		"openai_error_400_unsupported_max_tokens.vcr.yaml",
	} {
		if (shape == "anthropic") != (name[:9] == "anthropic") {
			continue
		}
		for _, it := range vcr.MustLoad(name) {
			out = append(out, []byte(it.RequestBody))
		}
	}
	return out
}

func checkRequestResult(t *testing.T, out []byte, st *State, err error) {
	if err != nil {
		if err.Error() == "" {
			t.Fatal("empty error message")
		}
		return
	}
	if !json.Valid(out) {
		t.Fatalf("translated body is not JSON: %s", out)
	}
	if st == nil || st.ToolNames == nil {
		t.Fatal("nil state on success")
	}
}

func FuzzAnthropicToOpenAIRequest(f *testing.F) {
	for _, b := range fixtureRequests("anthropic") {
		f.Add(b)
	}
	f.Add([]byte(`{"model":"c","max_tokens":10,"system":[{"type":"text","text":"s"}],"messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"t","is_error":true,"content":[{"type":"image","source":{"type":"base64","media_type":"image/png","data":"AA"}}]}]}],"thinking":{"type":"enabled","budget_tokens":2048},"tools":[{"name":"a.b","input_schema":{}}],"tool_choice":{"type":"tool","name":"a.b"}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		out, st, err := AnthropicToOpenAIRequest(body, "gpt-5-mini", Options{})
		checkRequestResult(t, out, st, err)
	})
}

func FuzzOpenAIToAnthropicRequest(f *testing.F) {
	for _, b := range fixtureRequests("openai") {
		f.Add(b)
	}
	f.Add([]byte(`{"model":"gpt-4o","n":1,"stop":["a"],"reasoning_effort":"high","max_completion_tokens":2000,"messages":[{"role":"developer","content":"d"},{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png;base64,AA"}},{"type":"file","file":{"file_data":"data:application/pdf;base64,AA"}}]},{"role":"assistant","content":null,"tool_calls":[{"id":"c.1","type":"function","function":{"name":"f","arguments":"{"}}]},{"role":"tool","tool_call_id":"c.1","content":"ok"}],"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":"required","parallel_tool_calls":false}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		out, st, err := OpenAIToAnthropicRequest(body, "claude-sonnet-4-5", Options{})
		checkRequestResult(t, out, st, err)
	})
}

// runStream feeds an arbitrary upstream body through tr the way the
// gateway does (an error from Event ends the stream with Error).
func runStream(t *testing.T, tr StreamTranslator, body []byte) []byte {
	r := sse.NewReader(bytes.NewReader(body))
	r.SetMaxEventSize(1 << 20)
	var out []byte
	for i := 0; ; i++ {
		if i > 100000 {
			t.Fatal("reader does not terminate")
		}
		ev, err := r.Next()
		if err == io.EOF {
			return append(out, tr.Finish()...)
		}
		if err != nil {
			return append(out, tr.Error("api_error", err.Error())...)
		}
		if ev.Comment {
			out = append(out, tr.Ping()...)
			continue
		}
		b, err := tr.Event(ev.Name, ev.Data)
		if err != nil {
			if len(b) != 0 {
				t.Fatalf("bytes returned with an error: %q", b)
			}
			return append(out, tr.Error("api_error", err.Error())...)
		}
		out = append(out, b...)
	}
}

// checkAnthropicSequence checks what an Anthropic client relies on: JSON
// data, message_start before any block, deltas only for the open block,
// each block stopped once, nothing after message_stop or error.
func checkAnthropicSequence(out []byte) error {
	r := sse.NewReader(bytes.NewReader(out))
	started, ended := false, false
	open := -1
	next := 0
	for {
		ev, err := r.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if ended {
			return fmt.Errorf("event %q after the end", ev.Name)
		}
		var d struct {
			Type  string `json:"type"`
			Index int    `json:"index"`
		}
		if err := json.Unmarshal(ev.Data, &d); err != nil {
			return fmt.Errorf("event %q: data is not JSON: %s", ev.Name, ev.Data)
		}
		if d.Type != ev.Name {
			return fmt.Errorf("event %q has type %q", ev.Name, d.Type)
		}
		switch ev.Name {
		case "message_start":
			if started {
				return fmt.Errorf("second message_start")
			}
			started = true
		case "content_block_start":
			if !started || open >= 0 || d.Index != next {
				return fmt.Errorf("bad content_block_start %d (open %d, next %d)", d.Index, open, next)
			}
			open = d.Index
			next++
		case "content_block_delta", "content_block_stop":
			if d.Index != open || open < 0 {
				return fmt.Errorf("%s for block %d while %d is open", ev.Name, d.Index, open)
			}
			if ev.Name == "content_block_stop" {
				open = -1
			}
		case "message_delta":
			if !started || open >= 0 {
				return fmt.Errorf("message_delta with block %d open", open)
			}
		case "message_stop", "error":
			ended = true
		case "ping":
		default:
			return fmt.Errorf("unknown event %q", ev.Name)
		}
	}
}

// checkOpenAISequence checks every chunk is JSON and nothing follows
// [DONE] or an error chunk.
func checkOpenAISequence(out []byte) error {
	r := sse.NewReader(bytes.NewReader(out))
	ended := false
	for {
		ev, err := r.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if ev.Comment {
			continue
		}
		if ended {
			return fmt.Errorf("data after the end: %s", ev.Data)
		}
		if string(ev.Data) == "[DONE]" {
			ended = true
			continue
		}
		var c map[string]json.RawMessage
		if err := json.Unmarshal(ev.Data, &c); err != nil {
			return fmt.Errorf("chunk is not JSON: %s", ev.Data)
		}
		if _, ok := c["error"]; ok {
			ended = true
		}
	}
}

func FuzzOpenAIToAnthropicStream(f *testing.F) {
	f.Add([]byte(vcr.MustLoad("openai_stream_parallel_tool_calls_include_usage.sse")[0].ResponseBody))
	f.Add([]byte(vcr.MustLoad("openai_stream_gpt5nano_usage_chunk.vcr.yaml")[0].ResponseBody))
	f.Add([]byte("data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\",\"tool_calls\":[{\"index\":3,\"function\":{\"arguments\":\"x\"}}]}}]}\n\ndata: {\"error\":{\"message\":\"m\"}}\n\n"))
	st := &State{RequestedModel: "claude-x", InputEstimate: 10}
	f.Fuzz(func(t *testing.T, body []byte) {
		st := *st
		out := runStream(t, st.NewOpenAIToAnthropicStream(), body)
		if err := checkAnthropicSequence(out); err != nil {
			t.Fatalf("%v\ninput:\n%q\noutput:\n%s", err, body, out)
		}
	})
}

func FuzzAnthropicToOpenAIStream(f *testing.F) {
	f.Add([]byte(vcr.MustLoad("anthropic_stream_text_then_tool_use.vcr.yaml")[0].ResponseBody))
	f.Add([]byte("event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":5,\"delta\":{\"type\":\"text_delta\",\"text\":\"x\"}}\n\nevent: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"o\"}}\n\n"))
	st := &State{RequestedModel: "gpt-4o", IncludeUsage: true}
	f.Fuzz(func(t *testing.T, body []byte) {
		st := *st
		out := runStream(t, st.NewAnthropicToOpenAIStream(), body)
		if err := checkOpenAISequence(out); err != nil {
			t.Fatalf("%v\ninput:\n%q\noutput:\n%s", err, body, out)
		}
	})
}

// checkResponsesSequence checks a Responses API event stream as OpenAI's
// clients read it: every event's name is its type and its sequence_number
// counts from 0; response.created comes first; an item is added before
// any event about it, each event names the item of its output_index, and
// an item is done once, with its own id; the stream ends with one terminal
// event (response.completed or .incomplete, whose output is the items
// done, in order; or error), after which nothing but comments comes.
func checkResponsesSequence(out []byte) error {
	r := sse.NewReader(bytes.NewReader(out))
	var (
		seq   int64
		added []string // item ids by output_index
		done  []string // the items done, as JSON, by output_index
		end   string
	)
	for {
		ev, err := r.Next()
		if err == io.EOF {
			if end == "" && seq > 0 {
				return errors.New("the stream has no terminal event")
			}
			return nil
		}
		if err != nil {
			return err
		}
		if ev.Comment {
			continue
		}
		if end != "" {
			return fmt.Errorf("an event after %s: %s", end, ev.Data)
		}
		d := gjson.ParseBytes(ev.Data)
		typ := d.Get("type").Str
		if !gjson.ValidBytes(ev.Data) || typ != ev.Name || d.Get("sequence_number").Int() != seq || !d.Get("sequence_number").Exists() {
			return fmt.Errorf("event %d %q: %s", seq, ev.Name, ev.Data)
		}
		if seq == 0 && typ != "response.created" && typ != "error" {
			return fmt.Errorf("the first event is %s", typ)
		}
		seq++
		idx := int(d.Get("output_index").Int())
		switch {
		case typ == "response.output_item.added":
			if idx != len(added) {
				return fmt.Errorf("item added at output_index %d after %d items", idx, len(added))
			}
			added = append(added, d.Get("item.id").Str)
			done = append(done, "")
		case typ == "response.output_item.done":
			if idx >= len(added) || d.Get("item.id").Str != added[idx] || done[idx] != "" {
				return fmt.Errorf("item done that was not added, or twice: %s", ev.Data)
			}
			done[idx] = d.Get("item").Raw
		case d.Get("item_id").Exists():
			if idx >= len(added) || d.Get("item_id").Str != added[idx] || done[idx] != "" {
				return fmt.Errorf("%s for an item not open at output_index %d: %s", typ, idx, ev.Data)
			}
		case typ == "response.completed" || typ == "response.incomplete":
			end = typ
			output := d.Get("response.output").Array()
			if len(output) != len(added) {
				return fmt.Errorf("%s with %d output items, %d were added", typ, len(output), len(added))
			}
			for i, it := range output {
				if done[i] == "" || it.Raw != done[i] {
					return fmt.Errorf("%s output item %d is %s, done as %s", typ, i, it.Raw, done[i])
				}
			}
			if !d.Get("response.usage.input_tokens").Exists() {
				return fmt.Errorf("%s without usage", typ)
			}
		case typ == "error":
			end = typ
		}
	}
}

func FuzzAnthropicToResponsesStream(f *testing.F) {
	f.Add([]byte(vcr.MustLoad("anthropic_stream_text_then_tool_use.vcr.yaml")[0].ResponseBody))
	f.Add([]byte("event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"thinking\"}}\n\n" +
		"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"thinking_delta\",\"thinking\":\"x\"}}\n\n" +
		"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":\"t\",\"name\":\"ns.f\"}}\n\n" +
		"event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"max_tokens\"},\"usage\":{\"output_tokens\":3}}\n\n"))
	names := &ir.ToolNames{}
	names.MarkCustom("apply_patch")
	st := &State{RequestedModel: "haiku", Responses: true, ToolNames: names, Namespaces: []string{"ns"}}
	f.Fuzz(func(t *testing.T, body []byte) {
		st := *st
		out := runStream(t, st.NewAnthropicToOpenAIStream(), body)
		if err := checkResponsesSequence(out); err != nil {
			t.Fatalf("%v\ninput:\n%q\noutput:\n%s", err, body, out)
		}
	})
}

func TestTranslatedFixtureStreamsAreWellFormed(t *testing.T) {
	for _, name := range []string{"openai_stream_parallel_tool_calls_include_usage.sse", "openai_stream_gpt5nano_usage_chunk.vcr.yaml"} {
		st := &State{RequestedModel: "claude-x", InputEstimate: 10}
		out := runStream(t, st.NewOpenAIToAnthropicStream(), []byte(vcr.MustLoad(name)[0].ResponseBody))
		if err := checkAnthropicSequence(out); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	st := &State{RequestedModel: "gpt-4o", IncludeUsage: true}
	out := runStream(t, st.NewAnthropicToOpenAIStream(), []byte(vcr.MustLoad("anthropic_stream_text_then_tool_use.vcr.yaml")[0].ResponseBody))
	if err := checkOpenAISequence(out); err != nil {
		t.Error(err)
	}
	st = &State{RequestedModel: "gpt-4o", Responses: true}
	out = runStream(t, st.NewAnthropicToOpenAIStream(), []byte(vcr.MustLoad("anthropic_stream_text_then_tool_use.vcr.yaml")[0].ResponseBody))
	if err := checkResponsesSequence(out); err != nil || !bytes.Contains(out, []byte("response.completed")) {
		t.Errorf("%v\n%s", err, out)
	}
}
