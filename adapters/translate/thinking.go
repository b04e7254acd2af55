package translate

import (
	"encoding/json"
	"slices"
	"strings"

	"github.com/metisgateway/metis/adapters/openai"
	"github.com/metisgateway/metis/ir"
)

// Claude wants the signed thinking of a tool loop back, as it wrote it,
// when the request answering its tools thinks (and on the models whose
// thinking cannot be turned off, always): the loop's first message must
// start with it. Most OpenAI-shape clients send back only what their API
// has a place for: a Chat Completions assistant message has none for it.
// So the thinking of an answer that called tools is kept
// (State.KeepThinking) under each of its tool call ids, and put back
// (Options.ThinkingFor) into the answers of the loop a later request
// continues that came without it.

// keepThinking hands the signed thinking of a finished answer that called
// tools to st.KeepThinking, under each call's id, each block marked with
// the call it came right before when other parts came ahead of it
// (openai.ThinkingBlock.Before).
func (st *State) keepThinking(content []ir.Part) {
	if st.KeepThinking == nil {
		return
	}
	var blocks []openai.ThinkingBlock
	var calls []string
	ahead := false // a part other than thinking came before
	for i := range content {
		if b, ok := openai.ThinkingBlockOf(content[i]); ok {
			if ahead {
				b.Before = nextCall(content[i+1:])
			}
			blocks = append(blocks, b)
			continue
		}
		ahead = true
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

// nextCall is the id of the first tool call in parts, "" for none.
func nextCall(parts []ir.Part) string {
	for i := range parts {
		if parts[i].Type == ir.PartToolCall {
			return parts[i].ToolCallID
		}
	}
	return ""
}

// restoreThinking puts the kept thinking back into the model's messages
// of the tool loop the request continues (those after the last user turn
// that answers no tool; a user turn is a run of user messages, tool
// results and what follows them, as Anthropic gets it), where it wrote it,
// in each message that called tools and came without any thinking.
func restoreThinking(req *ir.Request, thinkingFor func(callID string) ([]byte, bool)) {
	if thinkingFor == nil || !answersTools(req.Messages) {
		return
	}
	inLoop := false   // a later answer was in the loop
	answered := false // the user turn after this point answers tools
	for i := len(req.Messages) - 1; i >= 0; i-- {
		switch req.Messages[i].Role {
		case ir.RoleUser:
			answered = answered || holdsToolResult(req.Messages[i].Parts)
			continue
		case ir.RoleAssistant:
		default:
			continue
		}
		if inLoop && !answered {
			return // the turn before the loop
		}
		inLoop, answered = true, false
		// One answer may come as several assistant messages in a row
		// (its text, then its calls), which Anthropic gets as one.
		first := i
		for first > 0 && req.Messages[first-1].Role == ir.RoleAssistant {
			first--
		}
		restoreAnswer(req.Messages[first:i+1], thinkingFor)
		i = first
	}
}

// restoreAnswer puts the thinking kept for one answer of the model's (its
// messages, the last holding its calls) back where it wrote it: blocks
// before a call before that call, the others at the answer's head; unless
// the client sent thinking back.
func restoreAnswer(answer []ir.Message, thinkingFor func(callID string) ([]byte, bool)) {
	for i := range answer {
		if hasThinking(answer[i].Parts) {
			return
		}
	}
	m := &answer[len(answer)-1]
	callID := nextCall(m.Parts)
	if callID == "" {
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
	var lead, placed []openai.ThinkingBlock
	for _, b := range blocks {
		if b.Before != "" && slices.ContainsFunc(m.Parts, func(p ir.Part) bool { return p.Type == ir.PartToolCall && p.ToolCallID == b.Before }) {
			placed = append(placed, b)
		} else {
			b.Before = ""
			lead = append(lead, b)
		}
	}
	m.Parts = openai.PlaceThinking(m.Parts, placed)
	answer[0].Parts = openai.PlaceThinking(answer[0].Parts, lead)
}

// answersTools reports whether the last user message of msgs (system
// messages aside) holds tool results: the request continues a tool loop.
func answersTools(msgs []ir.Message) bool {
	for i := len(msgs) - 1; i >= 0; i-- {
		switch msgs[i].Role {
		case ir.RoleUser:
			if holdsToolResult(msgs[i].Parts) {
				return true
			}
		case ir.RoleAssistant:
			return false
		}
	}
	return false
}

// holdsToolResult reports whether parts hold a tool result.
func holdsToolResult(parts []ir.Part) bool {
	for i := range parts {
		if parts[i].Type == ir.PartToolResult {
			return true
		}
	}
	return false
}

// hasThinking reports whether parts hold a thinking block.
func hasThinking(parts []ir.Part) bool {
	for i := range parts {
		if t := parts[i].Type; t == ir.PartThinking || t == ir.PartRedactedThinking {
			return true
		}
	}
	return false
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
		default:
			// Its place only: thinking after it does not lead the turn.
			c.parts = append(c.parts, ir.Part{Type: ev.Block.Type})
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
