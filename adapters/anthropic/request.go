package anthropic

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/metisgateway/metis/ir"
)

// DecodeRequest reads an Anthropic Messages request body into the neutral
// model. Content the other shape cannot express at all (server-tool blocks
// and server tools) is dropped; malformed or unknown content is an
// *ir.Error with status 400.
func DecodeRequest(body []byte) (*ir.Request, error) {
	var in inRequest
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, ir.Invalid("", "decoding Anthropic request: %v", err)
	}
	r := &ir.Request{
		Model:       in.Model,
		Stop:        in.StopSequences,
		Stream:      in.Stream,
		Temperature: in.Temperature,
		TopP:        in.TopP,
		TopK:        in.TopK,
	}
	if in.MaxTokens != nil {
		r.MaxTokens = *in.MaxTokens
	}
	if in.Metadata != nil {
		r.User = in.Metadata.UserID
	}
	if !isJSONNull(in.System) {
		sys, err := decodeContent(in.System, "system")
		if err != nil {
			return nil, err
		}
		for _, p := range sys {
			if p.Type != ir.PartText {
				return nil, ir.Invalid("system", "system blocks must be text, got %s", p.Type)
			}
		}
		r.System = sys
	}
	r.Messages = make([]ir.Message, 0, len(in.Messages))
	for i, m := range in.Messages {
		var role ir.Role
		switch m.Role {
		case "user":
			role = ir.RoleUser
		case "assistant":
			role = ir.RoleAssistant
		case "system":
			role = ir.RoleSystem
		default:
			return nil, ir.Invalid(fmt.Sprintf("messages[%d].role", i), "unknown role %q", m.Role)
		}
		parts, err := decodeContent(m.Content, fmt.Sprintf("messages[%d].content", i))
		if err != nil {
			return nil, err
		}
		r.Messages = append(r.Messages, ir.Message{Role: role, Parts: parts})
	}
	for i, t := range in.Tools {
		if t.Type != "" && t.Type != "custom" {
			continue // server tool (web_search_…, bash_…): no OpenAI equivalent
		}
		if t.Name == "" {
			return nil, ir.Invalid(fmt.Sprintf("tools[%d].name", i), "tool name is required")
		}
		r.Tools = append(r.Tools, ir.Tool{
			Name: t.Name, Description: t.Description, Parameters: t.InputSchema,
			Strict: t.Strict, CacheControl: t.CacheControl,
		})
	}
	if tc := in.ToolChoice; tc != nil {
		c := &ir.ToolChoice{}
		switch tc.Type {
		case "auto", "":
			c.Mode = ir.ToolChoiceAuto
		case "any":
			c.Mode = ir.ToolChoiceRequired
		case "none":
			c.Mode = ir.ToolChoiceNone
		case "tool":
			c.Mode, c.Name = ir.ToolChoiceNamed, tc.Name
			if tc.Name == "" {
				return nil, ir.Invalid("tool_choice.name", "tool_choice of type tool needs a name")
			}
		default:
			return nil, ir.Invalid("tool_choice.type", "unknown tool_choice type %q", tc.Type)
		}
		r.ToolChoice = c
		if tc.DisableParallelToolUse != nil {
			p := !*tc.DisableParallelToolUse
			r.ParallelToolCalls = &p
		}
	}
	if th := in.Thinking; th != nil {
		switch th.Type {
		case "enabled":
			r.Thinking = &ir.Thinking{Mode: ir.ThinkingEnabled, BudgetTokens: th.BudgetTokens}
		case "adaptive":
			r.Thinking = &ir.Thinking{Mode: ir.ThinkingAdaptive}
		case "disabled", "":
		default:
			return nil, ir.Invalid("thinking.type", "unknown thinking type %q", th.Type)
		}
	}
	if oc := in.OutputConfig; oc != nil {
		if oc.Effort != "" {
			if r.Thinking == nil {
				r.Thinking = &ir.Thinking{Mode: ir.ThinkingAdaptive}
			}
			r.Thinking.Effort = oc.Effort
		}
		if oc.Format != nil && oc.Format.Type == "json_schema" {
			r.ResponseFormat = &ir.ResponseFormat{Type: "json_schema", Name: "structured_output", Schema: oc.Format.Schema}
		}
	}
	return r, nil
}

// decodeContent reads a string or an array of content blocks.
func decodeContent(raw json.RawMessage, where string) ([]ir.Part, error) {
	if isJSONNull(raw) {
		return nil, nil
	}
	if isJSONString(raw) {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, ir.Invalid(where, "decoding content string: %v", err)
		}
		return []ir.Part{{Type: ir.PartText, Text: s}}, nil
	}
	var blocks []inBlock
	if err := json.Unmarshal(raw, &blocks); err != nil {
		return nil, ir.Invalid(where, "content must be a string or an array of blocks: %v", err)
	}
	parts := make([]ir.Part, 0, len(blocks))
	for i := range blocks {
		p, keep, err := decodeBlock(&blocks[i], fmt.Sprintf("%s[%d]", where, i), true)
		if err != nil {
			return nil, err
		}
		if keep {
			parts = append(parts, p)
		}
	}
	return parts, nil
}

// droppedBlocks are Anthropic block types with no Chat Completions
// equivalent; they are left out of a translated request.
var droppedBlocks = map[string]bool{
	"server_tool_use": true, "web_search_tool_result": true, "web_fetch_tool_result": true,
	"code_execution_tool_result": true, "bash_code_execution_tool_result": true,
	"text_editor_code_execution_tool_result": true, "tool_search_tool_result": true,
	"mcp_tool_use": true, "mcp_tool_result": true, "container_upload": true,
	"tool_reference": true,
}

func decodeBlock(b *inBlock, where string, top bool) (ir.Part, bool, error) {
	switch b.Type {
	case "text":
		return ir.Part{Type: ir.PartText, Text: b.Text, CacheControl: b.CacheControl}, true, nil
	case "image", "document":
		return decodeMedia(b, where)
	case "search_result":
		// Keep the searched text; the citation structure has no twin.
		var inner []inBlock
		_ = json.Unmarshal(b.Content, &inner)
		var sb strings.Builder
		if b.Title != "" {
			sb.WriteString(b.Title)
			sb.WriteString("\n")
		}
		for _, x := range inner {
			sb.WriteString(x.Text)
		}
		return ir.Part{Type: ir.PartText, Text: sb.String(), CacheControl: b.CacheControl}, true, nil
	}
	if droppedBlocks[b.Type] {
		return ir.Part{}, false, nil
	}
	if !top {
		return ir.Part{}, false, ir.Invalid(where, "block type %q is not allowed inside a tool result", b.Type)
	}
	switch b.Type {
	case "tool_use":
		args := b.Input
		if isJSONNull(args) {
			args = json.RawMessage("{}")
		}
		return ir.Part{Type: ir.PartToolCall, ToolCallID: b.ID, ToolName: b.Name, Arguments: args, CacheControl: b.CacheControl}, true, nil
	case "tool_result":
		p := ir.Part{Type: ir.PartToolResult, ToolCallID: b.ToolUseID, IsError: b.IsError, CacheControl: b.CacheControl}
		if !isJSONNull(b.Content) {
			if isJSONString(b.Content) {
				var s string
				if err := json.Unmarshal(b.Content, &s); err != nil {
					return p, false, ir.Invalid(where, "decoding tool_result content: %v", err)
				}
				p.Content = []ir.Part{{Type: ir.PartText, Text: s}}
			} else {
				var inner []inBlock
				if err := json.Unmarshal(b.Content, &inner); err != nil {
					return p, false, ir.Invalid(where, "tool_result content must be a string or blocks: %v", err)
				}
				for i := range inner {
					ip, keep, err := decodeBlock(&inner[i], fmt.Sprintf("%s.content[%d]", where, i), false)
					if err != nil {
						return p, false, err
					}
					if keep {
						p.Content = append(p.Content, ip)
					}
				}
			}
		}
		return p, true, nil
	case "thinking":
		return ir.Part{Type: ir.PartThinking, Text: b.Thinking, Signature: b.Signature}, true, nil
	case "redacted_thinking":
		return ir.Part{Type: ir.PartRedactedThinking, Data: b.Data}, true, nil
	}
	return ir.Part{}, false, ir.Invalid(where, "unsupported content block type %q", b.Type)
}

func decodeMedia(b *inBlock, where string) (ir.Part, bool, error) {
	pt := ir.PartImage
	if b.Type == "document" {
		pt = ir.PartDocument
	}
	p := ir.Part{Type: pt, Title: b.Title, CacheControl: b.CacheControl}
	if b.Source == nil {
		return p, false, ir.Invalid(where, "%s block needs a source", b.Type)
	}
	switch b.Source.Type {
	case "base64":
		p.MediaType, p.Data = b.Source.MediaType, b.Source.Data
	case "url":
		p.URL = b.Source.URL
	case "text":
		p.MediaType, p.Text = "text/plain", b.Source.Data
	case "content":
		var inner []inBlock
		if isJSONString(b.Source.Content) {
			_ = json.Unmarshal(b.Source.Content, &p.Text)
		} else if err := json.Unmarshal(b.Source.Content, &inner); err == nil {
			var sb strings.Builder
			for _, x := range inner {
				sb.WriteString(x.Text)
			}
			p.Text = sb.String()
		}
		p.MediaType = "text/plain"
	default:
		return p, false, ir.Invalid(where, "%s source type %q cannot be translated", b.Type, b.Source.Type)
	}
	return p, true, nil
}

// RequestOptions tune EncodeRequest for the target model.
type RequestOptions struct {
	// DefaultMaxTokens gives max_tokens when the client set none; nil or a
	// result ≤ 0 falls back to DefaultMaxTokens.
	DefaultMaxTokens func(model string) int
	// SupportsSampling says whether the model accepts temperature/top_p/top_k;
	// nil uses GuessSupportsSampling.
	SupportsSampling func(model string) bool
	// Names records tool names that had to be changed; may be nil.
	Names *ir.ToolNames
}

// DefaultMaxTokens is max_tokens when neither the client nor
// RequestOptions.DefaultMaxTokens gives one.
const DefaultMaxTokens = 4096

// MinThinkingBudget is Anthropic's smallest thinking.budget_tokens.
const MinThinkingBudget = 1024

// GuessSupportsSampling guesses from the model id whether it accepts
// non-default sampling parameters: the newest Claude generations
// (Opus 4.7+, the 5 family, Fable) reject them.
func GuessSupportsSampling(model string) bool {
	for _, s := range []string{"opus-4-7", "opus-4-8", "opus-5", "sonnet-5", "haiku-5", "fable"} {
		if strings.Contains(model, s) {
			return false
		}
	}
	return true
}

// adaptiveOnly guesses whether the model rejects thinking.type "enabled".
func adaptiveOnly(model string) bool {
	for _, s := range []string{"opus-5", "sonnet-5", "haiku-5", "fable"} {
		if strings.Contains(model, s) {
			return true
		}
	}
	return false
}

// EffortBudget is the thinking budget used for an OpenAI reasoning_effort
// (0 = no thinking).
func EffortBudget(effort string) int {
	switch effort {
	case "low":
		return 1024
	case "medium", "":
		return 2048
	case "high":
		return 4096
	case "xhigh":
		return 8192
	case "max":
		return 16384
	}
	return 0 // none, minimal, unknown
}

// EncodeRequest writes r as an Anthropic Messages request body, applying
// Anthropic's rules: max_tokens is required, temperature is clamped to
// [0,1], sampling parameters are dropped when thinking is on or the model
// rejects them, top_p is dropped when temperature is set, whitespace-only
// stop sequences are dropped, system messages are hoisted into system and
// consecutive same-role turns are merged.
func EncodeRequest(r *ir.Request, o RequestOptions) ([]byte, error) {
	if r.N > 1 {
		return nil, ir.Invalid("n", "n=%d is not supported: Anthropic models return one choice", r.N)
	}
	out := outRequest{Model: r.Model, Stream: r.Stream}
	out.MaxTokens = r.MaxTokens
	if out.MaxTokens <= 0 {
		if o.DefaultMaxTokens != nil {
			out.MaxTokens = o.DefaultMaxTokens(r.Model)
		}
		if out.MaxTokens <= 0 {
			out.MaxTokens = DefaultMaxTokens
		}
	}
	for _, p := range r.System {
		if p.Text != "" {
			out.System = append(out.System, outText{Type: "text", Text: p.Text, CacheControl: p.CacheControl})
		}
	}
	out.Messages = make([]outMessage, 0, len(r.Messages))
	for i := range r.Messages {
		m := &r.Messages[i]
		if m.Role == ir.RoleSystem {
			for _, p := range m.Parts {
				if p.Type == ir.PartText && p.Text != "" {
					out.System = append(out.System, outText{Type: "text", Text: p.Text, CacheControl: p.CacheControl})
				}
			}
			continue
		}
		content := make([]any, 0, len(m.Parts))
		for j := range m.Parts {
			b, err := encodeBlock(&m.Parts[j], o.Names, fmt.Sprintf("messages[%d]", i))
			if err != nil {
				return nil, err
			}
			if b != nil {
				content = append(content, b)
			}
		}
		if len(content) == 0 {
			continue
		}
		role := string(m.Role)
		if n := len(out.Messages); n > 0 && out.Messages[n-1].Role == role {
			out.Messages[n-1].Content = append(out.Messages[n-1].Content, content...)
			continue
		}
		out.Messages = append(out.Messages, outMessage{Role: role, Content: content})
	}
	for _, t := range r.Tools {
		schema := t.Parameters
		if isJSONNull(schema) {
			schema = json.RawMessage(`{"type":"object","properties":{}}`)
		}
		out.Tools = append(out.Tools, outTool{
			Name: o.Names.Upstream(t.Name), Description: t.Description,
			InputSchema: schema, CacheControl: t.CacheControl,
		})
	}
	if len(out.Tools) > 0 || r.ToolChoice != nil && r.ToolChoice.Mode == ir.ToolChoiceNone {
		if tc := r.ToolChoice; tc != nil {
			c := &outToolChoice{}
			switch tc.Mode {
			case ir.ToolChoiceRequired:
				c.Type = "any"
			case ir.ToolChoiceNone:
				c.Type = "none"
			case ir.ToolChoiceNamed:
				c.Type, c.Name = "tool", o.Names.Upstream(tc.Name)
			default:
				c.Type = "auto"
			}
			out.ToolChoice = c
		}
		if r.ParallelToolCalls != nil && !*r.ParallelToolCalls && len(out.Tools) > 0 {
			if out.ToolChoice == nil {
				out.ToolChoice = &outToolChoice{Type: "auto"}
			}
			if out.ToolChoice.Type != "none" {
				out.ToolChoice.DisableParallelToolUse = true
			}
		}
	}
	for _, s := range r.Stop {
		if strings.TrimSpace(s) != "" {
			out.StopSequences = append(out.StopSequences, s)
		}
	}
	if r.User != "" {
		out.Metadata = &outMetadata{UserID: r.User}
	}
	thinking := false
	if th := r.Thinking; th != nil && th.Mode != ir.ThinkingDisabled {
		budget := th.BudgetTokens
		if budget == 0 {
			budget = EffortBudget(th.Effort)
		}
		switch {
		case th.Mode == ir.ThinkingAdaptive || adaptiveOnly(r.Model):
			if budget > 0 || th.Mode == ir.ThinkingAdaptive {
				out.Thinking = &outThinkingCfg{Type: "adaptive"}
				if e := anthropicEffort(th.Effort); e != "" {
					out.OutputConfig = &outOutputConfig{Effort: e}
				}
				thinking = true
			}
		case budget > 0:
			if budget >= out.MaxTokens {
				budget = out.MaxTokens / 2
			}
			if budget >= MinThinkingBudget {
				out.Thinking = &outThinkingCfg{Type: "enabled", BudgetTokens: budget}
				thinking = true
			}
		}
	}
	if rf := r.ResponseFormat; rf != nil && rf.Type == "json_schema" && !isJSONNull(rf.Schema) {
		if out.OutputConfig == nil {
			out.OutputConfig = &outOutputConfig{}
		}
		out.OutputConfig.Format = &outFormat{Type: "json_schema", Schema: rf.Schema}
	}
	sampling := GuessSupportsSampling
	if o.SupportsSampling != nil {
		sampling = o.SupportsSampling
	}
	if !thinking && sampling(r.Model) {
		if r.Temperature != nil {
			t := min(max(*r.Temperature, 0), 1)
			out.Temperature = &t
		} else if r.TopP != nil {
			out.TopP = r.TopP
		}
		out.TopK = r.TopK
	}
	b, err := json.Marshal(&out)
	if err != nil {
		return nil, fmt.Errorf("encoding Anthropic request: %w", err)
	}
	return b, nil
}

// anthropicEffort maps an effort word to Anthropic output_config.effort.
func anthropicEffort(e string) string {
	switch e {
	case "low", "medium", "high", "xhigh", "max":
		return e
	case "minimal", "none":
		return "low"
	}
	return ""
}

func encodeBlock(p *ir.Part, names *ir.ToolNames, where string) (any, error) {
	switch p.Type {
	case ir.PartText:
		if p.Text == "" {
			return nil, nil
		}
		return outText{Type: "text", Text: p.Text, CacheControl: p.CacheControl}, nil
	case ir.PartImage, ir.PartDocument:
		return encodeMedia(p, where)
	case ir.PartToolCall:
		args := p.Arguments
		if isJSONNull(args) {
			args = json.RawMessage("{}")
		}
		return outToolUse{Type: "tool_use", ID: ir.SafeToolCallID(p.ToolCallID), Name: names.Upstream(p.ToolName), Input: args, CacheControl: p.CacheControl}, nil
	case ir.PartToolResult:
		tr := outToolResult{Type: "tool_result", ToolUseID: ir.SafeToolCallID(p.ToolCallID), IsError: p.IsError, CacheControl: p.CacheControl}
		for i := range p.Content {
			b, err := encodeBlock(&p.Content[i], names, where)
			if err != nil {
				return nil, err
			}
			if b != nil {
				tr.Content = append(tr.Content, b)
			}
		}
		return tr, nil
	case ir.PartThinking:
		return outThinking{Type: "thinking", Thinking: p.Text, Signature: p.Signature}, nil
	case ir.PartRedactedThinking:
		return outRedacted{Type: "redacted_thinking", Data: p.Data}, nil
	}
	return nil, ir.Invalid(where, "content part %s cannot be sent to Anthropic", p.Type)
}

func encodeMedia(p *ir.Part, where string) (any, error) {
	m := outMedia{Type: "image", Title: p.Title, CacheControl: p.CacheControl}
	if p.Type == ir.PartDocument {
		m.Type = "document"
	} else {
		m.Title = ""
	}
	switch {
	case p.URL != "":
		m.Source = outSource{Type: "url", URL: p.URL}
	case p.Type == ir.PartDocument && p.Data == "":
		m.Source = outSource{Type: "text", MediaType: "text/plain", Data: p.Text}
	case p.Data != "":
		m.Source = outSource{Type: "base64", MediaType: p.MediaType, Data: p.Data}
	default:
		return nil, ir.Invalid(where, "%s part has no data or URL", p.Type)
	}
	return m, nil
}
