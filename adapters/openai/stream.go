package openai

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/metisgateway/metis/adapters/internal/errtext"
	"github.com/metisgateway/metis/ir"
)

type inChunk struct {
	ID      looseString `json:"id"`
	Model   string      `json:"model"`
	Choices []struct {
		Index int `json:"index"`
		Delta struct {
			Content   *string      `json:"content"`
			Refusal   *string      `json:"refusal"`
			ToolCalls []inToolCall `json:"tool_calls"`
		} `json:"delta"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Usage       *inUsage        `json:"usage"`
	ServiceTier string          `json:"service_tier"`
	Error       json.RawMessage `json:"error"`
	Object      json.RawMessage `json:"object"`
	ErrorType   json.RawMessage `json:"error_type"` // TGI's, beside a string error
}

// StreamDecoder turns Chat Completions stream chunks (from an upstream)
// into neutral events: text and tool-call blocks that never overlap, a
// MessageDelta with the stop reason at finish_reason, a MessageDelta with
// usage at a chunk with usage (one MessageDelta with both when the finish
// chunk has the usage) and MessageStop at [DONE]. Only choice 0 is read.
// The zero value is ready to use.
type StreamDecoder struct {
	started  bool
	open     bool
	openType ir.PartType
	openIdx  int
	next     int
	// tools maps an OpenAI tool_calls index to its call's block.
	tools map[int]toolBlock
	// toolArgs are the open tool call's arguments so far.
	toolArgs []byte
	refusal  bool
	stopped  bool
}

// Decode appends the neutral events for one upstream event's data (a
// chunk, or "[DONE]") to evs.
func (d *StreamDecoder) Decode(data []byte, evs []ir.StreamEvent) ([]ir.StreamEvent, error) {
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		return evs, nil
	}
	if string(data) == "[DONE]" {
		evs = d.closeOpen(evs)
		return append(evs, ir.StreamEvent{Type: ir.EventMessageStop}), nil
	}
	var c inChunk
	if err := json.Unmarshal(data, &c); err != nil {
		return evs, fmt.Errorf("decoding OpenAI stream chunk: %w", errtext.Decode(err))
	}
	if !c.Usage.counted() {
		c.Usage = nil // no counts: the encoder's estimate, not zeros
	}
	object := "" // the usual chunk's "chat.completion.chunk" is not copied
	if string(bytes.TrimSpace(c.Object)) == `"error"` {
		object = `"error"`
	}
	if kind := chunkError(string(bytes.TrimSpace(c.Error)), object); kind != errorNone {
		body := data // vLLM's error is the whole chunk
		if kind != errorTopLevel {
			body = append(append([]byte(`{"error":`), c.Error...), '}')
		}
		e := DecodeError(500, body)
		if e.Code != "" {
			e.Kind = kindFromCode(e.Code, e.Kind)
		}
		var errType string
		if kind == errorText && json.Unmarshal(c.ErrorType, &errType) == nil {
			e.Kind = kindFromCode(errType, e.Kind)
		}
		return append(evs, ir.StreamEvent{Type: ir.EventError, Err: e}), nil
	}
	if !d.started {
		if c.ID == "" && len(c.Choices) == 0 && c.Usage == nil {
			// Azure opens with a chunk of prompt_filter_results alone (no
			// id, model or choices): the message starts with the next
			// one, which names the answer.
			return evs, nil
		}
		d.started = true
		evs = append(evs, ir.StreamEvent{Type: ir.EventMessageStart, ID: string(c.ID), Model: c.Model})
	}
	usageSent := false
	for i := range c.Choices {
		ch := &c.Choices[i]
		if ch.Index != 0 {
			continue
		}
		if s := ch.Delta.Content; s != nil && *s != "" {
			evs = d.text(evs, *s)
		}
		if s := ch.Delta.Refusal; s != nil && *s != "" {
			d.refusal = true
			evs = d.text(evs, *s)
		}
		for j := range ch.Delta.ToolCalls {
			evs = d.toolCall(evs, &ch.Delta.ToolCalls[j])
		}
		if f := ch.FinishReason; f != nil && *f != "" && !d.stopped {
			d.stopped = true
			evs = d.closeOpen(evs)
			sr := StopReason(*f)
			if d.refusal && sr == ir.StopEndTurn {
				sr = ir.StopRefusal
			}
			md := ir.StreamEvent{Type: ir.EventMessageDelta, StopReason: sr}
			if c.Usage != nil {
				// One event: a client's stream ends at the finish once
				// it knows a usage, which must be this chunk's (a server
				// reporting usage on every chunk counts on to here).
				md.Usage, md.HasUsage = chunkUsage(&c), true
				usageSent = true
			}
			evs = append(evs, md)
		}
	}
	if c.Usage != nil && !usageSent {
		evs = append(evs, ir.StreamEvent{Type: ir.EventMessageDelta, Usage: chunkUsage(&c), HasUsage: true})
	}
	return evs, nil
}

// chunkUsage is a chunk's usage, which it must have.
func chunkUsage(c *inChunk) ir.Usage {
	u := decodeUsageCounts(c.Usage)
	u.ServiceTier = c.ServiceTier
	return u
}

// kindFromCode refines an error class from an OpenAI error code/type.
func kindFromCode(code string, k ir.ErrorKind) ir.ErrorKind {
	switch code {
	case "rate_limit_exceeded", "tokens", "requests":
		return ir.ErrRateLimit
	case "insufficient_quota":
		return ir.ErrBilling
	case "invalid_request_error", "context_length_exceeded",
		"validation", "tokenizer": // TGI's error_type
		return ir.ErrInvalidRequest
	case "server_error":
		return ir.ErrAPI
	case "overloaded": // TGI's error_type
		return ir.ErrOverloaded
	}
	return k
}

func (d *StreamDecoder) closeOpen(evs []ir.StreamEvent) []ir.StreamEvent {
	if !d.open {
		return evs
	}
	d.open = false
	if d.openType == ir.PartToolCall {
		for k, v := range d.tools {
			if v.blk == d.openIdx {
				v.blk = -1
				d.tools[k] = v
			}
		}
	}
	return append(evs, ir.StreamEvent{Type: ir.EventBlockStop, Index: d.openIdx})
}

func (d *StreamDecoder) startBlock(evs []ir.StreamEvent, p ir.Part) []ir.StreamEvent {
	evs = d.closeOpen(evs)
	d.open, d.openType, d.openIdx = true, p.Type, d.next
	d.next++
	return append(evs, ir.StreamEvent{Type: ir.EventBlockStart, Index: d.openIdx, Block: p})
}

func (d *StreamDecoder) text(evs []ir.StreamEvent, s string) []ir.StreamEvent {
	if !d.open || d.openType != ir.PartText {
		evs = d.startBlock(evs, ir.Part{Type: ir.PartText})
	}
	return append(evs, ir.StreamEvent{Type: ir.EventBlockDelta, Index: d.openIdx, Delta: ir.DeltaText, Text: s})
}

// toolBlock is the block of one streamed tool call: its index (-1 once
// closed) and the call's id.
type toolBlock struct {
	blk int
	id  string
}

func (d *StreamDecoder) toolCall(evs []ir.StreamEvent, tc *inToolCall) []ir.StreamEvent {
	k := 0
	if tc.Index != nil && *tc.Index >= 0 {
		k = *tc.Index
	}
	if d.tools == nil {
		d.tools = make(map[int]toolBlock, 2)
	}
	tb, seen := d.tools[k]
	// A new index starts a new tool call, and so does another id with a
	// function name once the open call's arguments are whole JSON (a new
	// call always names its function): some servers (Ollama, Gemini's
	// compatible API) give parallel calls, each sent whole, one index or
	// none, while others (vLLM's gpt-oss parser, Poolside) change the id
	// between fragments of one call.
	isCurrent := seen && tb.blk >= 0 && d.open && d.openIdx == tb.blk
	if !seen || tc.ID != "" && (!isCurrent || tc.ID != tb.id && tc.Function.Name != "" && json.Valid(d.toolArgs)) {
		id := tc.ID
		if id == "" {
			id = standInID()
		}
		evs = d.startBlock(evs, ir.Part{Type: ir.PartToolCall, ToolCallID: id, ToolName: tc.Function.Name})
		d.tools[k] = toolBlock{blk: d.openIdx, id: id}
		d.toolArgs = d.toolArgs[:0]
		isCurrent = true
	}
	if !isCurrent {
		// Fragment for a call already closed (an upstream that interleaves
		// calls): Anthropic blocks cannot reopen, so it is dropped.
		return evs
	}
	if a := tc.Function.Arguments; a != nil && *a != "" {
		d.toolArgs = append(d.toolArgs, *a...)
		evs = append(evs, ir.StreamEvent{Type: ir.EventBlockDelta, Index: d.openIdx, Delta: ir.DeltaArguments, Text: *a})
	}
	return evs
}

// StreamEncoder writes neutral events as Chat Completions chunks for a
// client: a role chunk first, content and tool-call deltas (tool index =
// number of tool calls before it; a custom tool's call, one Names marks
// custom, as custom.input pieces read out of its JSON arguments), a
// finish chunk, a usage chunk (choices: []) when IncludeUsage, then
// data: [DONE].
type StreamEncoder struct {
	// Model is the model name reported to the client; when empty (the
	// client named none), the provider's, from its first event.
	Model string
	// Created is the chunks' created time (Unix seconds).
	Created int64
	// IncludeUsage says the client asked for stream_options.include_usage.
	IncludeUsage bool
	// Names maps upstream tool names back to the client's; may be nil.
	Names *ir.ToolNames
	// InputEstimate is the prompt's estimated tokens, for the usage chunk
	// of a stream whose provider did not count its input.
	InputEstimate int64

	told      toldUsage
	prefix    []byte
	started   bool
	toolType  bool // open block is a tool call
	argsSent  bool // the open tool call has sent argument text
	custom    bool // the open tool call is a custom tool's
	input     inputReader
	openIdx   int
	open      bool
	tools     int
	stop      ir.StopReason
	sawFinish bool
	done      bool
}

// Done reports whether the stream has been ended ([DONE] or an error).
func (e *StreamEncoder) Done() bool { return e.done }

func (e *StreamEncoder) start(dst []byte, id string) []byte {
	e.started = true
	if id == "" {
		id = "chatcmpl-metis"
	}
	idj, _ := json.Marshal(id)
	mj, _ := json.Marshal(e.Model)
	p := make([]byte, 0, 96+len(idj)+len(mj))
	p = append(p, `data: {"id":`...)
	p = append(p, idj...)
	p = append(p, `,"object":"chat.completion.chunk","created":`...)
	p = strconv.AppendInt(p, e.Created, 10)
	p = append(p, `,"model":`...)
	p = append(p, mj...)
	p = append(p, `,"choices":[`...)
	e.prefix = p
	return e.chunk(dst, `{"role":"assistant","content":""}`, nil, "")
}

// chunk appends one choice chunk: delta is the JSON of the delta object,
// or deltaPrefix + JSON string s + "}" when s is non-nil.
func (e *StreamEncoder) chunk(dst []byte, delta string, s []byte, finish string) []byte {
	dst = append(dst, e.prefix...)
	dst = append(dst, `{"index":0,"delta":`...)
	dst = append(dst, delta...)
	if s != nil {
		dst = append(dst, s...)
		dst = append(dst, "}"...)
		if strings.HasPrefix(delta, `{"tool_calls"`) {
			dst = append(dst, "}]}"...)
		}
	}
	dst = append(dst, `,"logprobs":null,"finish_reason":`...)
	if finish == "" {
		dst = append(dst, "null"...)
	} else {
		dst = append(dst, '"')
		dst = append(dst, finish...)
		dst = append(dst, '"')
	}
	return append(dst, "}]}\n\n"...)
}

// outChunkToolCall opens a tool call in a stream: a function call, or a
// custom tool's (Type "custom").
type outChunkToolCall struct {
	Index    int              `json:"index"`
	ID       string           `json:"id"`
	Type     string           `json:"type"`
	Function *outCallFunction `json:"function,omitempty"`
	Custom   *outCallCustom   `json:"custom,omitempty"`
}

// Encode appends the client chunks for one neutral event to dst.
func (e *StreamEncoder) Encode(dst []byte, ev *ir.StreamEvent) []byte {
	if e.done {
		return dst
	}
	e.told.note(ev)
	if !e.started && ev.Type != ir.EventError && ev.Type != ir.EventPing {
		if e.Model == "" {
			e.Model = ev.Model
		}
		dst = e.start(dst, ev.ID)
	}
	switch ev.Type {
	case ir.EventBlockStart:
		e.open, e.openIdx, e.toolType, e.argsSent = true, ev.Index, ev.Block.Type == ir.PartToolCall, false
		e.custom = e.toolType && e.Names.IsCustom(ev.Block.ToolName)
		if e.toolType {
			tc := outChunkToolCall{Index: e.tools, ID: ev.Block.ToolCallID, Type: "function"}
			if name := e.Names.Client(ev.Block.ToolName); e.custom {
				// A custom tool's call, made through a JSON tool: its text
				// is read out of the arguments as they stream.
				e.input = inputReader{}
				tc.Type, tc.Custom = "custom", &outCallCustom{Name: name}
			} else {
				tc.Function = &outCallFunction{Name: name}
			}
			b, _ := json.Marshal(struct {
				ToolCalls [1]outChunkToolCall `json:"tool_calls"`
			}{[1]outChunkToolCall{tc}})
			e.tools++
			dst = e.chunk(dst, string(b), nil, "")
		}
	case ir.EventBlockDelta:
		if !e.open || e.openIdx != ev.Index || ev.Text == "" {
			return dst
		}
		if e.custom {
			if ev.Delta == ir.DeltaArguments {
				dst = e.customInput(dst, e.input.feed(ev.Text))
			}
			return dst
		}
		s, _ := json.Marshal(ev.Text)
		switch {
		case ev.Delta == ir.DeltaText && !e.toolType:
			dst = e.chunk(dst, `{"content":`, s, "")
		case ev.Delta == ir.DeltaThinking:
			dst = e.chunk(dst, `{"reasoning_content":`, s, "")
		case ev.Delta == ir.DeltaArguments && e.toolType:
			dst = e.arguments(dst, s)
		}
	case ir.EventBlockStop:
		if e.open && e.openIdx == ev.Index {
			if e.custom {
				dst = e.customInput(dst, e.input.end())
			} else if e.toolType && !e.argsSent {
				// A call without parameters streams no argument text; OpenAI
				// sends "{}", which clients parse as JSON.
				dst = e.arguments(dst, []byte(`"{}"`))
			}
			e.open = false
		}
	case ir.EventMessageDelta:
		if ev.StopReason != ir.StopUnknown {
			e.stop, e.sawFinish = ev.StopReason, true
		}
	case ir.EventMessageStop:
		dst = e.end(dst)
	case ir.EventPing:
		dst = e.Ping(dst)
	case ir.EventError:
		dst = e.Error(dst, ev.Err)
	}
	return dst
}

// arguments appends a chunk carrying argument text (s, a JSON string) of
// the open tool call.
func (e *StreamEncoder) arguments(dst, s []byte) []byte {
	e.argsSent = true
	pre := `{"tool_calls":[{"index":` + strconv.Itoa(e.tools-1) + `,"function":{"arguments":`
	return e.chunk(dst, pre, s, "")
}

// customInput appends a chunk carrying text of the open custom tool
// call's input, when there is any.
func (e *StreamEncoder) customInput(dst []byte, text string) []byte {
	if text == "" {
		return dst
	}
	s, _ := json.Marshal(text)
	pre := `{"tool_calls":[{"index":` + strconv.Itoa(e.tools-1) + `,"custom":{"input":`
	return e.chunk(dst, pre, s, "")
}

func (e *StreamEncoder) end(dst []byte) []byte {
	if !e.started {
		dst = e.start(dst, "")
	}
	dst = e.chunk(dst, "{}", nil, FinishReason(e.stop))
	if e.IncludeUsage {
		u, _ := json.Marshal(encodeUsageCounts(e.told.usage(e.InputEstimate)))
		dst = append(dst, e.prefix[:len(e.prefix)-1]...)
		dst = append(dst, `[],"usage":`...)
		dst = append(dst, u...)
		dst = append(dst, "}\n\n"...)
	}
	dst = append(dst, "data: [DONE]\n\n"...)
	e.done = true
	return dst
}

// Finish is called when the upstream stream ended without message_stop:
// with a known stop reason the finish chunk, usage chunk and [DONE] are
// written; otherwise the stream was cut and the client gets an error chunk.
func (e *StreamEncoder) Finish(dst []byte) []byte {
	if e.done {
		return dst
	}
	if e.sawFinish {
		return e.end(dst)
	}
	return e.Error(dst, &ir.Error{Status: 502, Kind: ir.ErrAPI, Message: "upstream stream ended before the response was complete"})
}

// Error writes a mid-stream error chunk and ends the stream.
func (e *StreamEncoder) Error(dst []byte, err *ir.Error) []byte {
	if e.done {
		return dst
	}
	e.done = true
	return EncodeStreamError(dst, err)
}

// Ping writes a keep-alive SSE comment, which OpenAI clients ignore.
func (e *StreamEncoder) Ping(dst []byte) []byte {
	if e.done {
		return dst
	}
	return append(dst, ": ping\n\n"...)
}

// toldUsage gathers a translated stream's usage from the provider's events
// for the client, which is told the figures the trace records
// (anthropic.StreamTracker and the gateway's relay): each side the
// provider counted as counted, the others estimated.
type toldUsage struct {
	u        ir.Usage
	in, out  bool  // the provider counted the input, the answer's output
	outChars int64 // text, reasoning and argument bytes the answer streamed
}

// note reads one neutral event.
func (t *toldUsage) note(ev *ir.StreamEvent) {
	switch ev.Type {
	case ir.EventMessageStart, ir.EventMessageDelta:
		if ev.HasUsage {
			t.u = ev.Usage
		}
		t.in = t.in || ev.InputCounted
		t.out = t.out || ev.OutputCounted
	case ir.EventBlockDelta:
		if ev.Delta == ir.DeltaText || ev.Delta == ir.DeltaThinking || ev.Delta == ir.DeltaArguments {
			t.outChars += int64(len(ev.Text))
		}
	}
}

// usage is what the client is told: output not counted is a quarter of
// the answer's bytes (at least message_start's count); with either side
// not counted and no input of any kind counted, the input is the prompt's
// estimate (inputEstimate), never zeros that would tell an agent its
// context is empty.
func (t *toldUsage) usage(inputEstimate int64) ir.Usage {
	u := t.u
	if !t.out {
		u.OutputTokens = max(ir.EstimateTokens(t.outChars), u.OutputTokens)
	}
	if (!t.in || !t.out) && u.TotalInputTokens() == 0 {
		u.InputTokens = inputEstimate
	}
	return u
}
