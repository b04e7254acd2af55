package anthropic

import (
	"encoding/json"
	"fmt"

	"github.com/metisgateway/metis/ir"
)

// appendEvent appends one SSE event ("event: name\ndata: data\n\n").
func appendEvent(dst []byte, name string, data []byte) []byte {
	dst = append(dst, "event: "...)
	dst = append(dst, name...)
	dst = append(dst, "\ndata: "...)
	dst = append(dst, data...)
	return append(dst, "\n\n"...)
}

type inStreamEvent struct {
	Type         string           `json:"type"`
	Message      *inResponse      `json:"message"`
	Index        int              `json:"index"`
	ContentBlock *inBlock         `json:"content_block"`
	Delta        *inDelta         `json:"delta"`
	Usage        *wireUsageCounts `json:"usage"`
	Error        *struct {
		Type    string `json:"type"`
		Message string `json:"message"`
	} `json:"error"`
}

type inDelta struct {
	Type         string  `json:"type"`
	Text         string  `json:"text"`
	PartialJSON  string  `json:"partial_json"`
	Thinking     string  `json:"thinking"`
	Signature    string  `json:"signature"`
	StopReason   *string `json:"stop_reason"`
	StopSequence *string `json:"stop_sequence"`
}

// StreamDecoder turns Anthropic stream events (from an upstream) into
// neutral events. Server-tool blocks are skipped along with their deltas.
// The zero value is ready to use.
type StreamDecoder struct {
	usage   ir.Usage
	counted bool // some usage so far held token counts (HasUsage)
	// gotInput and gotOutput: input_tokens reported, output_tokens
	// reported by a message_delta (InputCounted, OutputCounted).
	gotInput, gotOutput bool
	// blocks maps an Anthropic block index to the neutral index, -1 if skipped.
	blocks []int
	next   int
}

// Decode appends the neutral events for one SSE event (name may be empty;
// the type inside data decides) to evs. Unknown event types yield nothing.
func (d *StreamDecoder) Decode(name string, data []byte, evs []ir.StreamEvent) ([]ir.StreamEvent, error) {
	var in inStreamEvent
	if err := json.Unmarshal(data, &in); err != nil {
		return evs, fmt.Errorf("decoding Anthropic %q event: %w", name, err)
	}
	t := in.Type
	if t == "" {
		t = name
	}
	switch t {
	case "message_start":
		ev := ir.StreamEvent{Type: ir.EventMessageStart}
		if m := in.Message; m != nil {
			ev.ID, ev.Model = m.ID, m.Model
			if m.Usage != nil {
				d.usage = decodeUsage(m.Usage, d.usage)
				d.counted = d.counted || m.Usage.counted()
				d.gotInput = d.gotInput || m.Usage.InputTokens != nil
				ev.Usage, ev.HasUsage = d.usage, d.counted
				ev.InputCounted, ev.OutputCounted = d.gotInput, d.gotOutput
			}
		}
		evs = append(evs, ev)
	case "content_block_start":
		if in.ContentBlock == nil || in.Index < 0 || in.Index > 1<<16 {
			return evs, fmt.Errorf("decoding Anthropic content_block_start: missing block or bad index %d", in.Index)
		}
		for len(d.blocks) <= in.Index {
			d.blocks = append(d.blocks, -1)
		}
		b := in.ContentBlock
		var p ir.Part
		switch b.Type {
		case "text":
			p = ir.Part{Type: ir.PartText}
		case "tool_use":
			p = ir.Part{Type: ir.PartToolCall, ToolCallID: b.ID, ToolName: b.Name}
		case "thinking":
			p = ir.Part{Type: ir.PartThinking}
		case "redacted_thinking":
			p = ir.Part{Type: ir.PartRedactedThinking, Data: b.Data}
		default:
			d.blocks[in.Index] = -1
			return evs, nil
		}
		d.blocks[in.Index] = d.next
		evs = append(evs, ir.StreamEvent{Type: ir.EventBlockStart, Index: d.next, Block: p})
		d.next++
		if b.Type == "text" && b.Text != "" {
			evs = append(evs, ir.StreamEvent{Type: ir.EventBlockDelta, Index: d.next - 1, Delta: ir.DeltaText, Text: b.Text})
		}
	case "content_block_delta":
		idx := d.index(in.Index)
		if idx < 0 || in.Delta == nil {
			return evs, nil
		}
		ev := ir.StreamEvent{Type: ir.EventBlockDelta, Index: idx}
		switch in.Delta.Type {
		case "text_delta":
			ev.Delta, ev.Text = ir.DeltaText, in.Delta.Text
		case "input_json_delta":
			ev.Delta, ev.Text = ir.DeltaArguments, in.Delta.PartialJSON
		case "thinking_delta":
			ev.Delta, ev.Text = ir.DeltaThinking, in.Delta.Thinking
		case "signature_delta":
			ev.Delta, ev.Text = ir.DeltaSignature, in.Delta.Signature
		default:
			return evs, nil // citations_delta and future kinds
		}
		evs = append(evs, ev)
	case "content_block_stop":
		if idx := d.index(in.Index); idx >= 0 {
			evs = append(evs, ir.StreamEvent{Type: ir.EventBlockStop, Index: idx})
		}
	case "message_delta":
		ev := ir.StreamEvent{Type: ir.EventMessageDelta}
		if in.Delta != nil {
			if in.Delta.StopReason != nil {
				ev.StopReason = ir.StopReason(*in.Delta.StopReason)
			}
			if in.Delta.StopSequence != nil {
				ev.StopSequence = *in.Delta.StopSequence
			}
		}
		if in.Usage != nil {
			before := d.usage
			d.usage = decodeUsage(in.Usage, d.usage)
			keepInputCounts(&d.usage, before)
			d.counted = d.counted || in.Usage.counted()
			d.gotInput = d.gotInput || in.Usage.InputTokens != nil
			d.gotOutput = d.gotOutput || in.Usage.OutputTokens != nil
			ev.Usage, ev.HasUsage = d.usage, d.counted
			ev.InputCounted, ev.OutputCounted = d.gotInput, d.gotOutput
		}
		evs = append(evs, ev)
	case "message_stop":
		evs = append(evs, ir.StreamEvent{Type: ir.EventMessageStop})
	case "ping":
		evs = append(evs, ir.StreamEvent{Type: ir.EventPing})
	case "error":
		e := &ir.Error{Status: 500, Kind: ir.ErrAPI, Message: "upstream stream error"}
		if in.Error != nil {
			e.Kind, e.Code = KindFromType(in.Error.Type), in.Error.Type
			if in.Error.Message != "" {
				e.Message = in.Error.Message
			}
		}
		evs = append(evs, ir.StreamEvent{Type: ir.EventError, Err: e})
	}
	return evs, nil
}

func (d *StreamDecoder) index(i int) int {
	if i < 0 || i >= len(d.blocks) {
		return -1
	}
	return d.blocks[i]
}

// StreamEncoder writes neutral events as an Anthropic event stream for a
// client. It guarantees the sequence Anthropic clients rely on: one
// message_start first, each block started before its deltas and stopped
// once, blocks not overlapping, message_delta (held until the stream's end
// so it carries the final usage) then message_stop, nothing after.
type StreamEncoder struct {
	// Model is the model name reported to the client; when empty (the
	// client named none), the provider's, from its message start.
	Model string
	// Names maps upstream tool names back to the client's; may be nil.
	Names *ir.ToolNames
	// InputEstimate is reported as input_tokens in message_start when the
	// upstream has not said (OpenAI reports usage only at the end).
	InputEstimate int64

	id        string
	started   bool
	open      bool
	openType  ir.PartType
	openIn    int // neutral index of the open block
	nextOut   int
	stop      ir.StopReason
	stopSeq   string
	usage     ir.Usage
	hasUsage  bool
	done      bool
	outChars  int64
	sawFinish bool
}

// Done reports whether the stream has been ended (message_stop or error).
func (e *StreamEncoder) Done() bool { return e.done }

type outStartMessage struct {
	ID           string   `json:"id"`
	Type         string   `json:"type"`
	Role         string   `json:"role"`
	Model        string   `json:"model"`
	Content      []any    `json:"content"`
	StopReason   *string  `json:"stop_reason"`
	StopSequence *string  `json:"stop_sequence"`
	Usage        outUsage `json:"usage"`
}

type outMessageStart struct {
	Type    string          `json:"type"`
	Message outStartMessage `json:"message"`
}

type outBlockStart struct {
	Type         string `json:"type"`
	Index        int    `json:"index"`
	ContentBlock any    `json:"content_block"`
}

type outMessageDeltaBody struct {
	StopReason   string  `json:"stop_reason"`
	StopSequence *string `json:"stop_sequence"`
}

type outMessageDelta struct {
	Type  string              `json:"type"`
	Delta outMessageDeltaBody `json:"delta"`
	Usage outUsage            `json:"usage"`
}

func (e *StreamEncoder) start(dst []byte, ev *ir.StreamEvent) []byte {
	e.started = true
	u := outUsage{InputTokens: e.InputEstimate, OutputTokens: 1}
	if ev != nil {
		e.id = ev.ID
		if e.Model == "" {
			e.Model = ev.Model
		}
		if ev.HasUsage {
			e.usage, e.hasUsage = ev.Usage, ev.Usage.TotalInputTokens() > 0 || ev.Usage.OutputTokens > 0
			if e.hasUsage {
				u = encodeUsage(ev.Usage)
			}
		}
	}
	if e.id == "" {
		e.id = standInMessageID()
	}
	b, _ := json.Marshal(outMessageStart{Type: "message_start", Message: outStartMessage{
		ID: e.id, Type: "message", Role: "assistant", Model: e.Model, Content: []any{}, Usage: u,
	}})
	return appendEvent(dst, "message_start", b)
}

func (e *StreamEncoder) closeBlock(dst []byte) []byte {
	if !e.open {
		return dst
	}
	e.open = false
	dst = append(dst, "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":"...)
	dst = fmt.Appendf(dst, "%d}\n\n", e.nextOut-1)
	return dst
}

func (e *StreamEncoder) openBlock(dst []byte, in int, p *ir.Part) []byte {
	dst = e.closeBlock(dst)
	var cb any
	switch p.Type {
	case ir.PartText:
		cb = outText{Type: "text"}
	case ir.PartToolCall:
		id := p.ToolCallID
		if id == "" {
			id = fmt.Sprintf("toolu_metis_%d", e.nextOut)
		}
		cb = outToolUse{Type: "tool_use", ID: id, Name: e.Names.Client(p.ToolName), Input: json.RawMessage("{}")}
	case ir.PartThinking:
		cb = outThinking{Type: "thinking"}
	case ir.PartRedactedThinking:
		cb = outRedacted{Type: "redacted_thinking", Data: p.Data}
	default:
		return dst
	}
	b, _ := json.Marshal(outBlockStart{Type: "content_block_start", Index: e.nextOut, ContentBlock: cb})
	dst = appendEvent(dst, "content_block_start", b)
	e.open, e.openType, e.openIn = true, p.Type, in
	e.nextOut++
	return dst
}

// Encode appends the client events for one neutral event to dst.
func (e *StreamEncoder) Encode(dst []byte, ev *ir.StreamEvent) []byte {
	if e.done {
		return dst
	}
	if !e.started && ev.Type != ir.EventError && ev.Type != ir.EventPing {
		if ev.Type == ir.EventMessageStart {
			return e.start(dst, ev)
		}
		dst = e.start(dst, nil)
	}
	switch ev.Type {
	case ir.EventMessageStart:
		// A second start is ignored.
	case ir.EventBlockStart:
		dst = e.openBlock(dst, ev.Index, &ev.Block)
	case ir.EventBlockDelta:
		if !e.open || e.openIn != ev.Index {
			return dst // delta for a block that is not open: never forward it
		}
		var kind, field string
		switch {
		case ev.Delta == ir.DeltaText && e.openType == ir.PartText:
			kind, field = "text_delta", "text"
		case ev.Delta == ir.DeltaArguments && e.openType == ir.PartToolCall:
			kind, field = "input_json_delta", "partial_json"
		case ev.Delta == ir.DeltaThinking && e.openType == ir.PartThinking:
			kind, field = "thinking_delta", "thinking"
		case ev.Delta == ir.DeltaSignature && e.openType == ir.PartThinking:
			kind, field = "signature_delta", "signature"
		default:
			return dst
		}
		e.outChars += int64(len(ev.Text))
		s, _ := json.Marshal(ev.Text)
		dst = append(dst, "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":"...)
		dst = fmt.Appendf(dst, "%d,\"delta\":{\"type\":\"%s\",\"%s\":", e.nextOut-1, kind, field)
		dst = append(dst, s...)
		dst = append(dst, "}}\n\n"...)
	case ir.EventBlockStop:
		if e.open && e.openIn == ev.Index {
			dst = e.closeBlock(dst)
		}
	case ir.EventMessageDelta:
		if ev.StopReason != ir.StopUnknown {
			e.stop, e.sawFinish = ev.StopReason, true
		}
		if ev.StopSequence != "" {
			e.stopSeq = ev.StopSequence
		}
		if ev.HasUsage {
			e.usage, e.hasUsage = ev.Usage, true
		}
		if e.sawFinish && e.hasUsage && e.usage.OutputTokens > 0 {
			// Both the stop reason and the final usage are known: end now
			// rather than wait for the upstream's own end marker.
			dst = e.end(dst)
		}
	case ir.EventMessageStop:
		dst = e.end(dst)
	case ir.EventPing:
		dst = e.Ping(dst)
	case ir.EventError:
		dst = EncodeStreamError(dst, ev.Err)
		e.done = true
	}
	return dst
}

// end closes any open block and writes message_delta and message_stop.
func (e *StreamEncoder) end(dst []byte) []byte {
	dst = e.closeBlock(dst)
	u := e.usage
	if !e.hasUsage {
		u = ir.Usage{InputTokens: e.InputEstimate, OutputTokens: ir.EstimateTokens(e.outChars)}
	}
	md := outMessageDelta{Type: "message_delta", Delta: outMessageDeltaBody{StopReason: stopReasonWire(e.stop)}, Usage: encodeUsage(u)}
	if e.stopSeq != "" {
		md.Delta.StopSequence = &e.stopSeq
	}
	b, _ := json.Marshal(md)
	dst = appendEvent(dst, "message_delta", b)
	dst = appendEvent(dst, "message_stop", []byte(`{"type":"message_stop"}`))
	e.done = true
	return dst
}

// Finish is called when the upstream stream ended without an explicit end.
// If the upstream had said why it stopped, the held message_delta and
// message_stop are written with the usage known so far; otherwise the
// stream was cut and the client gets an error event instead of a fake
// success.
func (e *StreamEncoder) Finish(dst []byte) []byte {
	if e.done {
		return dst
	}
	if e.sawFinish {
		if !e.started {
			dst = e.start(dst, nil)
		}
		return e.end(dst)
	}
	return e.Error(dst, &ir.Error{Status: 502, Kind: ir.ErrAPI, Message: "upstream stream ended before the response was complete"})
}

// Error writes a mid-stream error event and ends the stream.
func (e *StreamEncoder) Error(dst []byte, err *ir.Error) []byte {
	if e.done {
		return dst
	}
	e.done = true
	return EncodeStreamError(dst, err)
}

// Ping writes an Anthropic keep-alive event.
func (e *StreamEncoder) Ping(dst []byte) []byte {
	if e.done {
		return dst
	}
	return appendEvent(dst, "ping", []byte(`{"type":"ping"}`))
}
