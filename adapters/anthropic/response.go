package anthropic

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"

	"github.com/tidwall/gjson"

	"github.com/metisgateway/metis/adapters/internal/errtext"
	"github.com/metisgateway/metis/ir"
)

// DecodeResponse reads a complete Anthropic Messages response.
func DecodeResponse(body []byte) (*ir.Response, error) {
	if gjson.ValidBytes(body) {
		var w inResponse
		var us usageScan
		if fillResponse(&w, &us, gjson.ParseBytes(body)) {
			return convertResponse(&w)
		}
	}
	return decodeResponseStd(body)
}

// decodeResponseStd is DecodeResponse with json.Unmarshal as the reader.
func decodeResponseStd(body []byte) (*ir.Response, error) {
	var in inResponse
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, fmt.Errorf("decoding Anthropic response: %w", errtext.Decode(err))
	}
	return convertResponse(&in)
}

// convertResponse builds the neutral response from the wire struct.
func convertResponse(in *inResponse) (*ir.Response, error) {
	if in.Type != "" && in.Type != "message" {
		return nil, fmt.Errorf("decoding Anthropic response: type %q is not a message", in.Type)
	}
	r := &ir.Response{
		ID: in.ID, Model: in.Model,
		StopReason: ir.StopReason(in.StopReason), StopSequence: in.StopSequence,
	}
	if in.Usage != nil {
		r.Usage, r.HasUsage = decodeUsage(in.Usage, ir.Usage{}), true
	}
	r.Content = make([]ir.Part, 0, len(in.Content))
	for i := range in.Content {
		b := &in.Content[i]
		switch b.Type {
		case "text":
			r.Content = append(r.Content, ir.Part{Type: ir.PartText, Text: b.Text})
		case "tool_use":
			args := b.Input
			if isJSONNull(args) {
				args = json.RawMessage("{}")
			}
			r.Content = append(r.Content, ir.Part{Type: ir.PartToolCall, ToolCallID: b.ID, ToolName: b.Name, Arguments: args})
		case "thinking":
			r.Content = append(r.Content, ir.Part{Type: ir.PartThinking, Text: b.Thinking, Signature: b.Signature})
		case "redacted_thinking":
			r.Content = append(r.Content, ir.Part{Type: ir.PartRedactedThinking, Data: b.Data})
		default:
			// Server-tool blocks and future types have no neutral form.
		}
	}
	return r, nil
}

// decodeUsage overlays the counts present in w onto prev (Anthropic usage
// is cumulative; absent fields keep their earlier value).
func decodeUsage(w *wireUsageCounts, prev ir.Usage) ir.Usage {
	u := prev
	if w.InputTokens != nil {
		u.InputTokens = *w.InputTokens
	}
	if w.CacheCreationInputTokens != nil {
		u.CacheCreationInputTokens = *w.CacheCreationInputTokens
	}
	if w.CacheReadInputTokens != nil {
		u.CacheReadInputTokens = *w.CacheReadInputTokens
	}
	if w.OutputTokens != nil {
		u.OutputTokens = *w.OutputTokens
	}
	if w.CacheCreation != nil {
		u.CacheCreation5mInputTokens = w.CacheCreation.Ephemeral5m
		u.CacheCreation1hInputTokens = w.CacheCreation.Ephemeral1h
	}
	if w.OutputTokensDetails != nil {
		u.ReasoningTokens = w.OutputTokensDetails.ThinkingTokens
	}
	if w.ServerToolUse != nil {
		u.WebSearchRequests = w.ServerToolUse.WebSearchRequests
	}
	if w.ServiceTier != "" {
		u.ServiceTier = w.ServiceTier
	}
	if w.InferenceGeo != "" {
		u.InferenceGeo = w.InferenceGeo
	}
	if w.Speed != "" {
		u.Speed = w.Speed
	}
	return u
}

// stopReasonWire spells a neutral stop reason the Anthropic way.
func stopReasonWire(s ir.StopReason) string {
	if s == ir.StopUnknown {
		return string(ir.StopEndTurn)
	}
	return string(s)
}

func encodeUsage(u ir.Usage) outUsage {
	return outUsage{
		InputTokens: u.InputTokens, CacheCreationInputTokens: u.CacheCreationInputTokens,
		CacheReadInputTokens: u.CacheReadInputTokens, OutputTokens: u.OutputTokens,
	}
}

// EncodeResponse writes r as an Anthropic Messages response for the
// client. model is the name to report (the one the client asked for when
// non-empty); names maps upstream tool names back to the client's.
func EncodeResponse(r *ir.Response, model string, names *ir.ToolNames) ([]byte, error) {
	if model == "" {
		model = r.Model
	}
	out := outResponse{ID: r.ID, Type: "message", Role: "assistant", Model: model, Usage: encodeUsage(r.Usage)}
	if out.ID == "" {
		out.ID = standInMessageID()
	}
	out.Content = make([]any, 0, len(r.Content))
	for i := range r.Content {
		p := &r.Content[i]
		switch p.Type {
		case ir.PartText:
			out.Content = append(out.Content, outText{Type: "text", Text: p.Text})
		case ir.PartToolCall:
			args := p.Arguments
			if isJSONNull(args) {
				args = json.RawMessage("{}")
			}
			out.Content = append(out.Content, outToolUse{Type: "tool_use", ID: p.ToolCallID, Name: names.Client(p.ToolName), Input: args})
		case ir.PartThinking:
			out.Content = append(out.Content, outThinking{Type: "thinking", Thinking: p.Text, Signature: p.Signature})
		case ir.PartRedactedThinking:
			out.Content = append(out.Content, outRedacted{Type: "redacted_thinking", Data: p.Data})
		}
	}
	sr := stopReasonWire(r.StopReason)
	out.StopReason = &sr
	if r.StopSequence != "" {
		out.StopSequence = &r.StopSequence
	}
	b, err := json.Marshal(&out)
	if err != nil {
		return nil, fmt.Errorf("encoding Anthropic response: %w", err)
	}
	return b, nil
}

// standInMessageID is the id of an answer whose provider gave none (some
// OpenAI-compatible servers): one of its own per answer, since clients
// tell messages apart by id (Claude Code joins the content blocks of one
// message id back into one assistant turn).
func standInMessageID() string {
	return fmt.Sprintf("msg_metis_%016x%08x", rand.Uint64(), rand.Uint32())
}
