package openai

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/tidwall/gjson"

	"github.com/metisgateway/metis/adapters/internal/errtext"
	"github.com/metisgateway/metis/ir"
)

// decodeUsageCounts converts OpenAI usage counts to the neutral (Anthropic)
// convention: input excludes cache reads and writes.
func decodeUsageCounts(u *inUsage) ir.Usage {
	out := ir.Usage{OutputTokens: max(deref(u.CompletionTokens), 0)}
	var cached, written int64
	if d := u.PromptTokensDetails; d != nil {
		cached, written = d.CachedTokens, d.CacheWriteTokens
		if written == 0 {
			written = d.CacheCreationInputTokens
		}
	}
	if cached == 0 {
		cached = u.PromptCacheHitTokens
	}
	out.CacheReadInputTokens, out.CacheCreationInputTokens = cached, written
	out.InputTokens = max(deref(u.PromptTokens)-cached-written, 0)
	if d := u.CompletionTokensDetails; d != nil {
		out.ReasoningTokens = d.ReasoningTokens
	}
	return out
}

// deref is *p, or 0 for nil.
func deref(p *int64) int64 {
	if p == nil {
		return 0
	}
	return *p
}

// StopReason maps an OpenAI finish_reason to a neutral stop reason.
func StopReason(finish string) ir.StopReason {
	switch finish {
	case "stop", "":
		return ir.StopEndTurn
	case "length":
		return ir.StopMaxTokens
	case "tool_calls", "function_call":
		return ir.StopToolUse
	case "content_filter":
		return ir.StopRefusal
	}
	return ir.StopEndTurn
}

// FinishReason maps a neutral stop reason to an OpenAI finish_reason.
func FinishReason(s ir.StopReason) string {
	switch s {
	case ir.StopMaxTokens, ir.StopContextWindow:
		return "length"
	case ir.StopToolUse:
		return "tool_calls"
	case ir.StopRefusal:
		return "content_filter"
	}
	return "stop"
}

// DecodeResponse reads a complete Chat Completions response (the first
// choice). Non-standard reasoning_content is not kept.
func DecodeResponse(body []byte) (*ir.Response, error) {
	var in inResponse
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, fmt.Errorf("decoding OpenAI response: %w", errtext.Decode(err))
	}
	if len(in.Choices) == 0 {
		return nil, fmt.Errorf("decoding OpenAI response: no choices")
	}
	c := &in.Choices[0]
	r := &ir.Response{ID: string(in.ID), Model: in.Model, Created: int64(in.Created), StopReason: StopReason(c.FinishReason)}
	if in.Usage.counted() {
		r.Usage, r.HasUsage = decodeUsageCounts(in.Usage), true
	}
	r.Usage.ServiceTier = in.ServiceTier
	text, err := contentText(c.Message.Content)
	if err != nil {
		return nil, fmt.Errorf("decoding OpenAI response content: %w", err)
	}
	if text != "" {
		r.Content = append(r.Content, ir.Part{Type: ir.PartText, Text: text})
	}
	if c.Message.Refusal != nil && *c.Message.Refusal != "" {
		r.Content = append(r.Content, ir.Part{Type: ir.PartText, Text: *c.Message.Refusal})
		r.StopReason = ir.StopRefusal
	}
	for i := range c.Message.ToolCalls {
		tc := &c.Message.ToolCalls[i]
		args := ""
		if tc.Function.Arguments != nil {
			args = *tc.Function.Arguments
		}
		id := tc.ID
		if id == "" {
			id = standInID()
		}
		r.Content = append(r.Content, ir.Part{Type: ir.PartToolCall, ToolCallID: id, ToolName: tc.Function.Name, Arguments: ArgumentsObject(args)})
	}
	return r, nil
}

// contentText reads assistant content given as a string, null or text parts.
func contentText(raw json.RawMessage) (string, error) {
	if isJSONNull(raw) {
		return "", nil
	}
	if isJSONString(raw) {
		var s string
		err := json.Unmarshal(raw, &s)
		return s, err
	}
	var parts []inPart
	if err := json.Unmarshal(raw, &parts); err != nil {
		return "", err
	}
	var sb strings.Builder
	for _, p := range parts {
		sb.WriteString(p.Text)
	}
	return sb.String(), nil
}

// encodeUsageCounts writes neutral usage the OpenAI way: prompt_tokens includes
// cache reads and writes, cached_tokens = cache reads, cache_write_tokens =
// cache writes.
func encodeUsageCounts(u ir.Usage) *outUsage {
	prompt := u.TotalInputTokens()
	return &outUsage{
		PromptTokens: prompt, CompletionTokens: u.OutputTokens, TotalTokens: prompt + u.OutputTokens,
		PromptTokensDetails:     outPromptDetails{CachedTokens: u.CacheReadInputTokens, CacheWriteTokens: u.CacheCreationInputTokens},
		CompletionTokensDetails: outCompletionDetails{ReasoningTokens: u.ReasoningTokens},
	}
}

// EncodeResponse writes r as a Chat Completions response for the client.
// model is the name to report (the client's own when non-empty); names
// maps upstream tool names back to the client's. Text blocks are joined;
// thinking text goes to the non-standard message.reasoning_content.
func EncodeResponse(r *ir.Response, model string, names *ir.ToolNames) ([]byte, error) {
	out := buildResponse(r, model, names)
	b, err := marshalResponse(out)
	if err != nil {
		return nil, fmt.Errorf("encoding OpenAI response: %w", err)
	}
	return b, nil
}

// buildResponse returns the wire value EncodeResponse writes.
func buildResponse(r *ir.Response, model string, names *ir.ToolNames) *outResponse {
	if model == "" {
		model = r.Model
	}
	created := r.Created
	if created == 0 {
		created = time.Now().Unix()
	}
	msg := outRespMessage{Role: "assistant"}
	var text, thinking strings.Builder
	hasText := false
	for i := range r.Content {
		p := &r.Content[i]
		switch p.Type {
		case ir.PartText:
			text.WriteString(p.Text)
			hasText = true
		case ir.PartThinking:
			thinking.WriteString(p.Text)
		case ir.PartToolCall:
			if names.IsCustom(p.ToolName) {
				msg.ToolCalls = append(msg.ToolCalls, outToolCall{
					ID: p.ToolCallID, Type: "custom",
					Custom: &outCallCustom{Name: names.Client(p.ToolName), Input: CustomInput(p.Arguments)},
				})
				continue
			}
			args := p.Arguments
			if isJSONNull(args) {
				args = json.RawMessage("{}")
			}
			msg.ToolCalls = append(msg.ToolCalls, outToolCall{
				ID: p.ToolCallID, Type: "function",
				Function: &outCallFunction{Name: names.Client(p.ToolName), Arguments: compactJSON(args)},
			})
		}
	}
	if hasText || len(msg.ToolCalls) == 0 {
		s := text.String()
		msg.Content = &s
	}
	msg.ReasoningContent = thinking.String()
	out := outResponse{
		ID: r.ID, Object: "chat.completion", Created: created, Model: model,
		Choices: []outChoice{{Index: 0, Message: msg, FinishReason: FinishReason(r.StopReason)}},
	}
	if r.HasUsage {
		out.Usage = encodeUsageCounts(r.Usage)
	}
	return &out
}

// CustomInput is the free text of a custom tool's call made through a
// JSON tool (ir.CustomTool.AsFunction): its string member input; a model
// that wrote other JSON gets that JSON as the text, and no arguments
// (or {}) an empty text.
func CustomInput(args json.RawMessage) string {
	if v := gjson.GetBytes(args, "input"); v.Exists() {
		if v.Type == gjson.String {
			// encoding/json's reading of escapes, as the streamed text's
			// (gjson reads a lone surrogate and what follows it otherwise).
			var s string
			if json.Unmarshal([]byte(v.Raw), &s) == nil {
				return s
			}
			return v.Str
		}
		return v.Raw
	}
	c := compactJSON(args)
	if c == "{}" || c == "null" {
		return ""
	}
	return c
}

// standInID names a tool call the server gave no id. It is random, not
// the call's index: the client replays every turn's calls, and ids that
// repeat across turns (call_0 in each) are refused by Anthropic if the
// conversation moves to a Claude model, and confuse clients that key
// results by id.
func standInID() string {
	return fmt.Sprintf("call_metis_%016x", rand.Uint64())
}
