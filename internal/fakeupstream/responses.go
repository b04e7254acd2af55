package fakeupstream

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// ResponsesCall is a function call in a synthesized Responses API answer:
// the function's name and its arguments (a JSON object's text).
type ResponsesCall struct {
	Name, Arguments string
}

// ResponsesAnswer describes an OpenAI Responses API answer (POST
// /v1/responses) to synthesize, streamed (Stream) or not (Body), in the
// format OpenAI documents: a reasoning item when ReasoningTokens > 0, a
// message with Text when it is not empty, then the function calls. Its
// usage is InputTokens (CachedTokens of them read from the cache) in, and
// out ReasoningTokens + len(Text)/4 + 1 for a text + len(name) +
// len(arguments)/3 + 10 per call.
type ResponsesAnswer struct {
	Model                                      string
	InputTokens, CachedTokens, ReasoningTokens int
	Text                                       string
	Calls                                      []ResponsesCall
}

// responsesItem is one output item of the answer, as the completed
// response lists it.
type responsesItem = map[string]any

func (a ResponsesAnswer) model() string {
	if a.Model == "" {
		return "gpt-5-mini-2025-08-07"
	}
	return a.Model
}

// items builds the answer's output items with fresh ids.
func (a ResponsesAnswer) items() []responsesItem {
	var out []responsesItem
	if a.ReasoningTokens > 0 {
		out = append(out, responsesItem{"id": NewID("rs_"), "type": "reasoning", "summary": []any{}})
	}
	if a.Text != "" {
		out = append(out, responsesItem{"id": NewID("msg_"), "type": "message", "status": "completed", "role": "assistant",
			"content": []any{map[string]any{"type": "output_text", "annotations": []any{}, "logprobs": []any{}, "text": a.Text}}})
	}
	for _, c := range a.Calls {
		out = append(out, responsesItem{"id": NewID("fc_"), "type": "function_call", "status": "completed",
			"arguments": c.Arguments, "call_id": NewID("call_"), "name": c.Name})
	}
	return out
}

// outputTokens is the answer's billed output, reasoning included.
func (a ResponsesAnswer) outputTokens() int {
	n := a.ReasoningTokens
	if a.Text != "" {
		n += len(a.Text)/4 + 1
	}
	for _, c := range a.Calls {
		n += len(c.Name) + len(c.Arguments)/3 + 10
	}
	return n
}

// response is the response object: in progress (no output, no usage) or
// completed.
func (a ResponsesAnswer) response(id string, created int64, output []responsesItem, done bool) map[string]any {
	r := map[string]any{
		"id": id, "object": "response", "created_at": created, "status": "in_progress", "background": false,
		"error": nil, "incomplete_details": nil, "instructions": nil, "max_output_tokens": nil, "model": a.model(),
		"output": []any{}, "parallel_tool_calls": true, "previous_response_id": nil,
		"reasoning": map[string]any{"effort": "medium", "summary": nil}, "service_tier": "auto", "store": true,
		"temperature": 1.0, "text": map[string]any{"format": map[string]any{"type": "text"}, "verbosity": "medium"},
		"tool_choice": "auto", "tools": []any{}, "top_p": 1.0, "truncation": "disabled", "usage": nil, "user": nil,
		"metadata": map[string]any{},
	}
	if done {
		r["status"], r["service_tier"], r["output"] = "completed", "default", output
		out := a.outputTokens()
		r["usage"] = map[string]any{
			"input_tokens": a.InputTokens, "input_tokens_details": map[string]any{"cached_tokens": a.CachedTokens},
			"output_tokens": out, "output_tokens_details": map[string]any{"reasoning_tokens": a.ReasoningTokens},
			"total_tokens": a.InputTokens + out,
		}
	}
	return r
}

// Body is the answer unstreamed: the completed response object.
func (a ResponsesAnswer) Body() Reply {
	b, _ := json.MarshalIndent(a.response(NewID("resp_"), time.Now().Unix(), a.items(), true), "", "  ")
	return Reply{Status: http.StatusOK, Header: responsesHeader(), Body: string(b)}
}

// Stream is the answer as the event stream OpenAI documents:
// response.created and response.in_progress; per output item
// response.output_item.added, its content (a message's
// response.content_part.added, response.output_text.delta per word,
// response.output_text.done and response.content_part.done; a call's
// response.function_call_arguments.delta per 12 bytes and .done) and
// response.output_item.done; then response.completed with the usage.
// Every event is numbered by its sequence_number.
func (a ResponsesAnswer) Stream() Reply {
	id, created := NewID("resp_"), time.Now().Unix()
	var ev []string
	add := func(v map[string]any) {
		v["sequence_number"] = len(ev)
		b, _ := json.Marshal(v)
		ev = append(ev, fmt.Sprintf("event: %s\ndata: %s\n\n", v["type"], b))
	}
	add(map[string]any{"type": "response.created", "response": a.response(id, created, nil, false)})
	add(map[string]any{"type": "response.in_progress", "response": a.response(id, created, nil, false)})
	items := a.items()
	for i, it := range items {
		open := responsesItem{}
		for k, v := range it {
			open[k] = v
		}
		switch it["type"] {
		case "message":
			open["status"], open["content"] = "in_progress", []any{}
		case "function_call":
			open["status"], open["arguments"] = "in_progress", ""
		}
		add(map[string]any{"type": "response.output_item.added", "output_index": i, "item": open})
		switch it["type"] {
		case "message":
			add(map[string]any{"type": "response.content_part.added", "item_id": it["id"], "output_index": i, "content_index": 0,
				"part": map[string]any{"type": "output_text", "annotations": []any{}, "logprobs": []any{}, "text": ""}})
			for _, w := range words(a.Text) {
				add(map[string]any{"type": "response.output_text.delta", "item_id": it["id"], "output_index": i, "content_index": 0,
					"delta": w, "logprobs": []any{}, "obfuscation": obfuscation()})
			}
			add(map[string]any{"type": "response.output_text.done", "item_id": it["id"], "output_index": i, "content_index": 0,
				"text": a.Text, "logprobs": []any{}})
			add(map[string]any{"type": "response.content_part.done", "item_id": it["id"], "output_index": i, "content_index": 0,
				"part": map[string]any{"type": "output_text", "annotations": []any{}, "logprobs": []any{}, "text": a.Text}})
		case "function_call":
			args := it["arguments"].(string)
			for _, piece := range chunk(args, 12) {
				add(map[string]any{"type": "response.function_call_arguments.delta", "item_id": it["id"], "output_index": i,
					"delta": piece, "obfuscation": obfuscation()})
			}
			add(map[string]any{"type": "response.function_call_arguments.done", "item_id": it["id"], "output_index": i, "arguments": args})
		}
		add(map[string]any{"type": "response.output_item.done", "output_index": i, "item": it})
	}
	add(map[string]any{"type": "response.completed", "response": a.response(id, created, items, true)})
	return Reply{Status: http.StatusOK, Header: responsesHeader(), Events: ev}
}

// responsesHeader is the recorded OpenAI headers with a fresh request id;
// the Content-Type is chosen by the reply's kind.
func responsesHeader() http.Header {
	h := synthHeader(FixtureOpenAINonStream, "X-Request-Id", NewID("req_"))
	h.Del("Content-Type")
	return h
}
