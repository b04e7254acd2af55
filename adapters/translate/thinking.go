package translate

import (
	"encoding/json"
	"strings"

	"github.com/metisgateway/metis/adapters/openai"
	"github.com/metisgateway/metis/ir"
)

// Claude wants the signed thinking of a tool-using turn back at the head
// of that turn when the request answering its tools thinks (and on the
// models whose thinking cannot be turned off, always). Most OpenAI-shape
// clients send back only what their API has a place for: a Chat
// Completions assistant message has none for it. So the thinking of an
// answer that called tools is kept (State.KeepThinking) under each of its
// tool call ids, and put back (Options.ThinkingFor) into the turn that
// made those calls when a later request holds that turn without it.

// keepThinking hands the signed thinking of a finished answer that called
// tools to st.KeepThinking, under each call's id.
func (st *State) keepThinking(content []ir.Part) {
	if st.KeepThinking == nil {
		return
	}
	var blocks []openai.ThinkingBlock
	var calls []string
	for i := range content {
		if b, ok := openai.ThinkingBlockOf(content[i]); ok {
			blocks = append(blocks, b)
		}
		if content[i].Type == ir.PartToolCall && content[i].ToolCallID != "" {
			calls = append(calls, content[i].ToolCallID)
		}
	}
	if len(blocks) == 0 || len(calls) == 0 {
		return
	}
	raw, err := json.Marshal(blocks)
	if err != nil {
		return
	}
	for _, id := range calls {
		st.KeepThinking(id, raw)
	}
}

// restoreThinking puts the kept thinking back at the head of the
// model's last turn when it called tools, a later message answers them
// (user text or images may follow the tool results, as they do when a
// client hands the model a tool's image), and the turn came without any
// thinking.
func restoreThinking(req *ir.Request, thinkingFor func(callID string) ([]byte, bool)) {
	if thinkingFor == nil {
		return
	}
	last := len(req.Messages) - 1
	for last >= 0 && req.Messages[last].Role != ir.RoleAssistant {
		last--
	}
	if last < 0 {
		return
	}
	answers := false
	for _, m := range req.Messages[last+1:] {
		for _, p := range m.Parts {
			answers = answers || p.Type == ir.PartToolResult
		}
	}
	turn := &req.Messages[last]
	callID := ""
	for _, p := range turn.Parts {
		switch p.Type {
		case ir.PartThinking, ir.PartRedactedThinking:
			return // the client sent it back
		case ir.PartToolCall:
			if callID == "" {
				callID = p.ToolCallID
			}
		}
	}
	if !answers || callID == "" {
		return
	}
	raw, ok := thinkingFor(callID)
	if !ok {
		return
	}
	var blocks []openai.ThinkingBlock
	if json.Unmarshal(raw, &blocks) != nil {
		return
	}
	parts := make([]ir.Part, 0, len(blocks)+len(turn.Parts))
	for i := range blocks {
		if p, ok := blocks[i].Part(); ok {
			parts = append(parts, p)
		}
	}
	turn.Parts = append(parts, turn.Parts...)
}

// thinkingCollector gathers the thinking and tool call ids of a streamed
// answer, for State.keepThinking once the answer is complete.
type thinkingCollector struct {
	parts     []ir.Part
	open      bool // a thinking block is streaming: the last of parts
	index     int  // its block index in the stream
	text, sig strings.Builder
}

// add takes one neutral stream event.
func (c *thinkingCollector) add(st *State, ev *ir.StreamEvent) {
	switch ev.Type {
	case ir.EventBlockStart:
		c.close()
		switch ev.Block.Type {
		case ir.PartThinking, ir.PartRedactedThinking:
			c.open, c.index = true, ev.Index
			c.parts = append(c.parts, ir.Part{Type: ev.Block.Type, Data: ev.Block.Data})
		case ir.PartToolCall:
			c.parts = append(c.parts, ir.Part{Type: ir.PartToolCall, ToolCallID: ev.Block.ToolCallID})
		}
	case ir.EventBlockDelta:
		if !c.open || ev.Index != c.index {
			return
		}
		switch ev.Delta {
		case ir.DeltaThinking:
			c.text.WriteString(ev.Text)
		case ir.DeltaSignature:
			c.sig.WriteString(ev.Text)
		}
	case ir.EventBlockStop:
		if ev.Index == c.index {
			c.close()
		}
	case ir.EventMessageStop:
		c.close()
		st.keepThinking(c.parts)
		c.parts = nil
	}
}

// close completes the thinking block being streamed.
func (c *thinkingCollector) close() {
	if !c.open {
		return
	}
	p := &c.parts[len(c.parts)-1]
	p.Text, p.Signature = c.text.String(), c.sig.String()
	c.text.Reset()
	c.sig.Reset()
	c.open = false
}
