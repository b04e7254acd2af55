package openai

import (
	"encoding/base64"
	"encoding/json"
	"strings"

	"github.com/metisgateway/metis/ir"
)

// ClaudeThinkingPrefix begins the encrypted_content the gateway writes on
// the reasoning items of a Claude model's answer to a Responses API
// client: Claude's thinking blocks, signatures included, which the client
// sends back with its next request (as Codex CLI does with store false)
// and which Claude wants back at the start of a tool-using turn. OpenAI's
// own encrypted content never begins so.
const ClaudeThinkingPrefix = "metis.claude-thinking.v1."

// ThinkingBlock is one of Claude's thinking blocks carried by an
// OpenAI-shape client: Anthropic's own block, as LiteLLM's thinking_blocks
// member of an assistant message carries it.
type ThinkingBlock struct {
	// Type is "thinking" or "redacted_thinking".
	Type string `json:"type"`
	// Thinking and Signature are a thinking block's text and Anthropic's
	// signature of it.
	Thinking  string `json:"thinking,omitempty"`
	Signature string `json:"signature,omitempty"`
	// Data is a redacted_thinking block's encrypted thinking.
	Data string `json:"data,omitempty"`
	// Before, when set, is the id of the tool call the block came right
	// before, after others of the turn (Claude thinking between its tool
	// calls): Claude wants its blocks back where it wrote them. Without
	// it the block leads the turn. The gateway's own member.
	Before string `json:"before_tool_call,omitempty"`
}

// Part is b as a neutral content part; false for a block Claude would not
// take back (a thinking block without its signature, another type).
func (b *ThinkingBlock) Part() (ir.Part, bool) {
	switch {
	case b.Type == "thinking" && b.Signature != "":
		return ir.Part{Type: ir.PartThinking, Text: b.Thinking, Signature: b.Signature}, true
	case b.Type == "redacted_thinking" && b.Data != "":
		return ir.Part{Type: ir.PartRedactedThinking, Data: b.Data}, true
	}
	return ir.Part{}, false
}

// PlaceThinking puts Claude's thinking blocks into the parts of its turn
// where it wrote them: each before the tool call its Before names, the
// rest (and those naming no call of the turn) at the head, all in their
// order.
func PlaceThinking(parts []ir.Part, blocks []ThinkingBlock) []ir.Part {
	if len(blocks) == 0 {
		return parts
	}
	calls := map[string]bool{}
	for i := range parts {
		if parts[i].Type == ir.PartToolCall {
			calls[parts[i].ToolCallID] = true
		}
	}
	out := make([]ir.Part, 0, len(parts)+len(blocks))
	add := func(before string) {
		for i := range blocks {
			if b := &blocks[i]; b.Before == before || (before == "" && !calls[b.Before]) {
				if p, ok := b.Part(); ok {
					out = append(out, p)
				}
			}
		}
	}
	add("")
	for _, p := range parts {
		if p.Type == ir.PartToolCall && p.ToolCallID != "" {
			add(p.ToolCallID)
		}
		out = append(out, p)
	}
	return out
}

// ThinkingBlockOf is Claude's thinking part p as a block; false for a part
// that is not signed thinking or redacted thinking.
func ThinkingBlockOf(p ir.Part) (ThinkingBlock, bool) {
	b := ThinkingBlock{Type: "thinking", Thinking: p.Text, Signature: p.Signature}
	if p.Type == ir.PartRedactedThinking {
		b = ThinkingBlock{Type: "redacted_thinking", Data: p.Data}
	} else if p.Type != ir.PartThinking {
		return ThinkingBlock{}, false
	}
	_, ok := b.Part()
	return b, ok
}

// encodeThinking is the encrypted_content of a reasoning item standing for
// Claude's block p: ClaudeThinkingPrefix and the block, base64-encoded.
// It is empty for a block without a signature or data.
func encodeThinking(p ir.Part) string {
	b, ok := ThinkingBlockOf(p)
	if !ok {
		return ""
	}
	raw, err := json.Marshal([]ThinkingBlock{b})
	if err != nil {
		return ""
	}
	return ClaudeThinkingPrefix + base64.StdEncoding.EncodeToString(raw)
}

// decodeThinking reads the blocks an encrypted_content written by
// encodeThinking holds; false for any other content (OpenAI's own).
func decodeThinking(s string) ([]ThinkingBlock, bool) {
	rest, ok := strings.CutPrefix(s, ClaudeThinkingPrefix)
	if !ok {
		return nil, false
	}
	raw, err := base64.StdEncoding.DecodeString(rest)
	if err != nil {
		return nil, false
	}
	var blocks []ThinkingBlock
	if json.Unmarshal(raw, &blocks) != nil {
		return nil, false
	}
	return blocks, true
}
