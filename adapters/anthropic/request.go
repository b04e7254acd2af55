package anthropic

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/metisgateway/metis/internal/jsonx"
	"github.com/metisgateway/metis/ir"
)

// DecodeRequest reads an Anthropic Messages request body into the neutral
// model. Content the other shape cannot express at all (server-tool blocks
// and server tools) is dropped; malformed or unknown content is an
// *ir.Error with status 400.
func DecodeRequest(body []byte) (*ir.Request, error) {
	if !gjson.ValidBytes(body) {
		return nil, ir.Invalid("", "decoding Anthropic request: body is not valid JSON")
	}
	return DecodeRequestParsed(gjson.ParseBytes(body))
}

// DecodeRequestParsed is DecodeRequest for a body the caller has already
// checked with gjson.Valid and parsed with gjson.Parse (root): the body is
// not validated or copied again. root.Raw must stay unchanged while the
// returned request is in use (its strings may share its memory).
func DecodeRequestParsed(root gjson.Result) (*ir.Request, error) {
	if !root.IsObject() {
		return nil, ir.Invalid("", "decoding Anthropic request: body must be a JSON object")
	}
	r := &ir.Request{}
	var err error
	root.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "model":
			r.Model = v.String()
		case "max_tokens":
			r.MaxTokens = int(v.Int())
		case "stream":
			r.Stream = v.Bool()
		case "temperature":
			r.Temperature = floatPtr(v)
		case "top_p":
			r.TopP = floatPtr(v)
		case "top_k":
			if v.Type == gjson.Number {
				n := int(v.Int())
				r.TopK = &n
			}
		case "metadata":
			r.User = v.Get("user_id").String()
		case "stop_sequences":
			for _, s := range v.Array() {
				r.Stop = append(r.Stop, s.String())
			}
		case "system":
			err = decodeSystem(r, v)
		case "messages":
			err = decodeMessages(r, v)
		case "tools":
			err = decodeTools(r, v)
		case "tool_choice":
			err = decodeToolChoice(r, v)
		case "thinking":
			if !v.IsObject() && v.Type != gjson.Null {
				// "thinking": "enabled" is Anthropic's 400 too; read as
				// absent, the call would go without the thinking asked for.
				err = ir.Invalid("thinking", "thinking must be an object such as {\"type\":\"enabled\",\"budget_tokens\":1024}")
				break
			}
			switch t := v.Get("type").String(); t {
			case "enabled":
				if r.Thinking == nil {
					r.Thinking = &ir.Thinking{}
				}
				r.Thinking.Mode, r.Thinking.BudgetTokens = ir.ThinkingEnabled, int(v.Get("budget_tokens").Int())
			case "adaptive":
				if r.Thinking == nil {
					r.Thinking = &ir.Thinking{}
				}
				r.Thinking.Mode = ir.ThinkingAdaptive
			case "disabled":
				// Made here too, so that an output_config after it in the
				// body leaves thinking off, as one before it does (review
				// 26V: the order of members decided the reasoning billed).
				if r.Thinking == nil {
					r.Thinking = &ir.Thinking{}
				}
				r.Thinking.Mode = ir.ThinkingDisabled
			case "":
				// "thinking": null (or {}): no thinking member, as a client
				// that writes unset members as null means (review 26R).
			default:
				err = ir.Invalid("thinking.type", "unknown thinking type %q", t)
			}
		case "output_config":
			if e := v.Get("effort").String(); e != "" {
				if r.Thinking == nil {
					r.Thinking = &ir.Thinking{Mode: ir.ThinkingAdaptive}
				}
				r.Thinking.Effort = e
			}
			if f := v.Get("format"); f.Get("type").String() == "json_schema" {
				r.ResponseFormat = &ir.ResponseFormat{Type: "json_schema", Name: "structured_output", Schema: rawOf(f.Get("schema"))}
				if strictSchema(f.Get("schema")) {
					strict := true // enforced, as Anthropic enforces it
					r.ResponseFormat.Strict = &strict
				}
			}
		}
		return err == nil
	})
	if err != nil {
		return nil, err
	}
	return r, nil
}

func floatPtr(v gjson.Result) *float64 {
	if v.Type != gjson.Number {
		return nil
	}
	f := v.Float()
	return &f
}

// rawOf copies a gjson value's JSON text (nil when absent or null).
func rawOf(v gjson.Result) json.RawMessage {
	if !v.Exists() || v.Type == gjson.Null {
		return nil
	}
	return json.RawMessage(v.Raw)
}

func decodeSystem(r *ir.Request, v gjson.Result) error {
	if v.Type == gjson.Null {
		return nil
	}
	sys, err := decodeContentResult(v, loc{msg: -1, block: -1, inner: -1})
	if err != nil {
		return err
	}
	for _, p := range sys {
		if p.Type != ir.PartText {
			return ir.Invalid("system", "system blocks must be text, got %s", p.Type)
		}
	}
	r.System = sys
	return nil
}

func decodeMessages(r *ir.Request, v gjson.Result) error {
	if !v.IsArray() {
		return ir.Invalid("messages", "messages must be an array")
	}
	var err error
	i := 0
	r.Messages = make([]ir.Message, 0, 8)
	v.ForEach(func(_, m gjson.Result) bool {
		// One pass over the message's members; the first of a repeated
		// key counts, as with gjson's Get.
		var roleV, contentV gjson.Result
		var haveRole, haveContent bool
		if m.IsObject() {
			m.ForEach(func(k, f gjson.Result) bool {
				switch {
				case k.Str == "role" && !haveRole:
					roleV, haveRole = f, true
				case k.Str == "content" && !haveContent:
					contentV, haveContent = f, true
				}
				return !haveRole || !haveContent
			})
		}
		var role ir.Role
		switch rs := roleV.String(); rs {
		case "user":
			role = ir.RoleUser
		case "assistant":
			role = ir.RoleAssistant
		case "system":
			role = ir.RoleSystem
		default:
			err = ir.Invalid(fmt.Sprintf("messages[%d].role", i), "unknown role %q", rs)
			return false
		}
		var parts []ir.Part
		if parts, err = decodeContentResult(contentV, loc{msg: i, block: -1, inner: -1}); err != nil {
			return false
		}
		r.Messages = append(r.Messages, ir.Message{Role: role, Parts: parts})
		i++
		return true
	})
	return err
}

func decodeTools(r *ir.Request, v gjson.Result) error {
	var err error
	i := 0
	v.ForEach(func(_, t gjson.Result) bool {
		defer func() { i++ }()
		if typ := t.Get("type").String(); typ != "" && typ != "custom" {
			return true // server tool (web_search_…, bash_…): no OpenAI equivalent
		}
		name := t.Get("name").String()
		if name == "" {
			err = ir.Invalid(fmt.Sprintf("tools[%d].name", i), "tool name is required")
			return false
		}
		tool := ir.Tool{Name: name, Description: t.Get("description").String(),
			Parameters: rawOf(t.Get("input_schema")), CacheControl: rawOf(t.Get("cache_control"))}
		if s := t.Get("strict"); s.IsBool() {
			// Strict on OpenAI only when the schema meets its strict rules
			// (every property required, …), as for output_config.format:
			// Anthropic's strict tools take optional properties, which
			// OpenAI's strict mode refuses with a 400 (review 26V).
			b := s.Bool() && strictSchema(t.Get("input_schema"))
			tool.Strict = &b
		}
		r.Tools = append(r.Tools, tool)
		return true
	})
	return err
}

func decodeToolChoice(r *ir.Request, v gjson.Result) error {
	if v.Type == gjson.Null {
		return nil
	}
	c := &ir.ToolChoice{}
	switch t := v.Get("type").String(); t {
	case "auto", "":
		c.Mode = ir.ToolChoiceAuto
	case "any":
		c.Mode = ir.ToolChoiceRequired
	case "none":
		c.Mode = ir.ToolChoiceNone
	case "tool":
		c.Mode, c.Name = ir.ToolChoiceNamed, v.Get("name").String()
		if c.Name == "" {
			return ir.Invalid("tool_choice.name", "tool_choice of type tool needs a name")
		}
	default:
		return ir.Invalid("tool_choice.type", "unknown tool_choice type %q", t)
	}
	r.ToolChoice = c
	if d := v.Get("disable_parallel_tool_use"); d.IsBool() {
		p := !d.Bool()
		r.ParallelToolCalls = &p
	}
	return nil
}

// decodeContentResult reads a string or an array of content blocks from
// an already validated body.
func decodeContentResult(res gjson.Result, where loc) ([]ir.Part, error) {
	if !res.Exists() || res.Type == gjson.Null {
		return nil, nil
	}
	switch {
	case res.Type == gjson.String:
		return []ir.Part{{Type: ir.PartText, Text: res.String()}}, nil
	case !res.IsArray():
		return nil, ir.Invalid(where.String(), "content must be a string or an array of blocks")
	}
	parts := make([]ir.Part, 0, 4)
	var err error
	i := 0
	res.ForEach(func(_, v gjson.Result) bool {
		var b inBlock
		bw := where
		bw.block = i
		if err = readBlock(v, &b, bw); err != nil {
			return false
		}
		var p ir.Part
		var keep bool
		if p, keep, err = decodeBlock(&b, bw, true); err != nil {
			return false
		}
		if keep {
			parts = append(parts, p)
		}
		i++
		return true
	})
	if err != nil {
		return nil, err
	}
	return parts, nil
}

// readBlock fills b from one content block object.
func readBlock(v gjson.Result, b *inBlock, where loc) error {
	if !v.IsObject() {
		return ir.Invalid(where.String(), "content block must be an object")
	}
	v.ForEach(func(k, f gjson.Result) bool {
		switch k.Str {
		case "type":
			b.Type = f.String()
		case "text":
			b.Text = f.String()
		case "title":
			b.Title = f.String()
		case "id":
			b.ID = f.String()
		case "name":
			b.Name = f.String()
		case "tool_name":
			b.ToolName = f.String()
		case "input":
			b.Input = json.RawMessage(f.Raw)
		case "tool_use_id":
			b.ToolUseID = f.String()
		case "content":
			b.Content = json.RawMessage(f.Raw)
			b.content = f
		case "is_error":
			b.IsError = f.Bool()
		case "thinking":
			b.Thinking = f.String()
		case "signature":
			b.Signature = f.String()
		case "data":
			b.Data = f.String()
		case "cache_control":
			b.CacheControl = json.RawMessage(f.Raw)
		case "source":
			if f.IsObject() {
				b.Source = &inSource{
					Type: f.Get("type").String(), MediaType: f.Get("media_type").String(),
					Data: f.Get("data").String(), URL: f.Get("url").String(),
				}
				if c := f.Get("content"); c.Exists() {
					b.Source.Content = json.RawMessage(c.Raw)
				}
			}
		}
		return true
	})
	return nil
}

// droppedBlocks are Anthropic block types with no Chat Completions
// equivalent; they are left out of a translated request.
var droppedBlocks = map[string]bool{
	"server_tool_use": true, "web_search_tool_result": true, "web_fetch_tool_result": true,
	"code_execution_tool_result": true, "bash_code_execution_tool_result": true,
	"text_editor_code_execution_tool_result": true, "tool_search_tool_result": true,
	"mcp_tool_use": true, "mcp_tool_result": true, "container_upload": true,
	"tool_reference": true, // one naming a tool becomes text first (decodeBlock)
}

// joinTexts writes the texts of blocks to sb a blank line apart: the
// passages of a search result or a document stay apart, as the model reads
// them from Anthropic (review 26V: "France.It has").
func joinTexts(sb *strings.Builder, blocks []inBlock) {
	first := true
	for _, x := range blocks {
		if x.Text == "" {
			continue
		}
		if !first {
			sb.WriteString("\n\n")
		}
		sb.WriteString(x.Text)
		first = false
	}
}

func decodeBlock(b *inBlock, where loc, top bool) (ir.Part, bool, error) {
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
		joinTexts(&sb, inner)
		return ir.Part{Type: ir.PartText, Text: sb.String(), CacheControl: b.CacheControl}, true, nil
	}
	if b.Type == "tool_reference" && b.ToolName != "" {
		// A tool search's result (Claude Code's ToolSearch): the tools it
		// found, by name, which the other shape can read as text.
		return ir.Part{Type: ir.PartText, Text: "tool_reference: " + b.ToolName}, true, nil
	}
	if droppedBlocks[b.Type] {
		return ir.Part{}, false, nil
	}
	if !top {
		return ir.Part{}, false, ir.Invalid(where.String(), "block type %q is not allowed inside a tool result", b.Type)
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
			if res := b.content; res.Type == gjson.String {
				// The body is valid JSON, so this is json.Unmarshal's
				// reading of the string.
				p.Content = []ir.Part{{Type: ir.PartText, Text: jsonx.Unquote(res.Raw)}}
			} else {
				if !res.IsArray() {
					return p, false, ir.Invalid(where.String(), "tool_result content must be a string or blocks")
				}
				var err error
				i := 0
				res.ForEach(func(_, v gjson.Result) bool {
					var inner inBlock
					iw := where
					iw.inner = i
					if err = readBlock(v, &inner, iw); err != nil {
						return false
					}
					var ip ir.Part
					var keep bool
					if ip, keep, err = decodeBlock(&inner, iw, false); err != nil {
						return false
					}
					if keep {
						p.Content = append(p.Content, ip)
					}
					i++
					return true
				})
				if err != nil {
					return p, false, err
				}
			}
		}
		return p, true, nil
	case "thinking":
		return ir.Part{Type: ir.PartThinking, Text: b.Thinking, Signature: b.Signature}, true, nil
	case "redacted_thinking":
		return ir.Part{Type: ir.PartRedactedThinking, Data: b.Data}, true, nil
	}
	return ir.Part{}, false, ir.Invalid(where.String(), "unsupported content block type %q", b.Type)
}

// loc names a content block for error parameters without formatting the
// name until an error needs it: system or messages[msg].content, then
// [block] (-1: none), then .content[inner] inside a tool result (-1: none).
type loc struct{ msg, block, inner int }

func (l loc) String() string {
	s := "system"
	if l.msg >= 0 {
		s = "messages[" + strconv.Itoa(l.msg) + "].content"
	}
	if l.block >= 0 {
		s += "[" + strconv.Itoa(l.block) + "]"
	}
	if l.inner >= 0 {
		s += ".content[" + strconv.Itoa(l.inner) + "]"
	}
	return s
}

func decodeMedia(b *inBlock, where loc) (ir.Part, bool, error) {
	pt := ir.PartImage
	if b.Type == "document" {
		pt = ir.PartDocument
	}
	p := ir.Part{Type: pt, Title: b.Title, CacheControl: b.CacheControl}
	if b.Source == nil {
		return p, false, ir.Invalid(where.String(), "%s block needs a source", b.Type)
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
			joinTexts(&sb, inner)
			p.Text = sb.String()
		}
		p.MediaType = "text/plain"
	default:
		return p, false, ir.Invalid(where.String(), "%s source type %q cannot be translated", b.Type, b.Source.Type)
	}
	return p, true, nil
}

// RequestOptions tune EncodeRequest for the target model.
type RequestOptions struct {
	// DefaultMaxTokens is the model's output limit: max_tokens when the
	// client set none, and the most a client's max_tokens is sent as (the
	// provider refuses more); nil or a result ≤ 0 falls back to
	// DefaultMaxTokens for the first and leaves the second alone.
	DefaultMaxTokens func(model string) int
	// SupportsSampling says whether the model accepts temperature/top_p/top_k;
	// nil uses GuessSupportsSampling.
	SupportsSampling func(model string) bool
	// Names records tool names that had to be changed; may be nil.
	Names *ir.ToolNames
	// AutoCache adds a top-level cache_control {"type":"ephemeral"}
	// (automatic caching: the last cacheable block is the breakpoint, and
	// later calls read the prefix they share) to a request that marks no
	// breakpoint of its own.
	AutoCache bool
}

// DefaultMaxTokens is max_tokens when neither the client nor
// RequestOptions.DefaultMaxTokens gives one.
const DefaultMaxTokens = 4096

// MinThinkingBudget is Anthropic's smallest thinking.budget_tokens.
const MinThinkingBudget = 1024

// GuessSupportsSampling guesses from the model id whether it accepts
// non-default sampling parameters: the newest Claude generations
// (Opus 4.7+, the 5 family, Fable, Mythos) reject them.
func GuessSupportsSampling(model string) bool {
	return !newestGeneration(model)
}

// newestGeneration guesses whether the model is of the Claude generations
// that take adaptive thinking only and refuse sampling parameters: Opus
// 4.7 on, Sonnet and Haiku 5 on, Fable, Mythos.
func newestGeneration(model string) bool {
	return strings.Contains(model, "mythos") || versionAtLeast(model, newestFrom)
}

// The first version (major*100 + minor) of each family, "" for the others,
// for newestGeneration, preservedThinking and acceptsMidSystem.
var (
	newestFrom    = map[string]int{"opus": 407, "": 500}
	preservedFrom = map[string]int{"mythos": 501, "": 505}
	midSystemFrom = map[string]int{"opus": 408, "mythos": 500, "": 505}
)

// versionAtLeast reports whether the model is a Fable model, or a Claude
// model whose version is at least its family's in first.
func versionAtLeast(model string, first map[string]int) bool {
	if strings.Contains(model, "fable") {
		return true
	}
	family, major, minor, ok := claudeVersion(model)
	if !ok {
		return false
	}
	v, named := first[family]
	if !named {
		v = first[""]
	}
	return major*100+minor >= v
}

// preservedThinking guesses whether the model checks the conversation
// before each thinking block sent back to it (Anthropic's "preserved
// thinking": Fable and Mythos 5.1+, and the 5.5 generation and later).
func preservedThinking(model string) bool { return versionAtLeast(model, preservedFrom) }

// claudeVersion reads a Claude model id's family (opus, sonnet, haiku,
// mythos) and version: claude-opus-5-5, claude-mythos-5-1-20261001 (a one-
// or two-digit minor only: the digits after claude-opus-5- may be a date).
func claudeVersion(model string) (family string, major, minor int, ok bool) {
	for _, f := range [...]string{"opus-", "sonnet-", "haiku-", "mythos-"} {
		i := strings.Index(model, f)
		if i < 0 {
			continue
		}
		rest := model[i+len(f):]
		major, n := leadingInt(rest)
		if n == 0 || n > 2 {
			// claude-3-7-sonnet-20250219: the family's date, and the
			// version before the family, of the generations before 4.
			return "", 0, 0, false
		}
		if rest = rest[n:]; len(rest) > 1 && rest[0] == '-' {
			if m, k := leadingInt(rest[1:]); k <= 2 {
				minor = m
			}
		}
		return f[:len(f)-1], major, minor, true
	}
	return "", 0, 0, false
}

// leadingInt reads the decimal digits s starts with: their value and count.
func leadingInt(s string) (v, n int) {
	for n < len(s) && n < 9 && s[n] >= '0' && s[n] <= '9' {
		v = v*10 + int(s[n]-'0')
		n++
	}
	for n < len(s) && s[n] >= '0' && s[n] <= '9' {
		n++ // past nine digits: a date, not a version
	}
	return v, n
}

// ThinkingBindingBeta is the anthropic-beta value that a request's
// thinking.block_binding needs.
const ThinkingBindingBeta = "thinking-binding-controls-2026-08-01"

// DropMismatchedThinking is body, a request EncodeRequestBetas wrote with
// ThinkingBindingBeta, asking that a thinking block failing the provider's
// prefix check be dropped (thinking.block_binding.prefix_mismatch_behavior
// "drop_block") rather than fail the request. Setting it also turns the
// check on for accounts that do not enforce it by default (those created
// before 2026-08-31 let such blocks through to the model), so it is for
// an account that refused a block (IsBindingRefusal).
func DropMismatchedThinking(body []byte) ([]byte, error) {
	return sjson.SetBytes(body, "thinking.block_binding.prefix_mismatch_behavior", "drop_block")
}

// IsBindingRefusal reports whether an error body is a preserved-thinking
// model's refusal of a thinking block whose conversation changed since it
// was written ("… The block is bound to a different conversation …").
func IsBindingRefusal(body []byte) bool {
	return gjson.GetBytes(body, "error.type").Str == "invalid_request_error" &&
		strings.Contains(gjson.GetBytes(body, "error.message").Str, "bound to a different conversation")
}

// adaptiveOnly guesses whether the model takes adaptive thinking only,
// refusing thinking.type "enabled" and "disabled" (Opus 4.7+, the 5
// family, Fable, Mythos).
func adaptiveOnly(model string) bool { return newestGeneration(model) }

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
	b, _, err := EncodeRequestBetas(r, o)
	return b, err
}

// EncodeRequestBetas is EncodeRequest, also returning the anthropic-beta
// values the body needs (ThinkingBindingBeta).
func EncodeRequestBetas(r *ir.Request, o RequestOptions) ([]byte, []string, error) {
	out, err := buildRequest(r, o)
	if err != nil {
		return nil, nil, err
	}
	b, err := marshalRequest(out)
	if err != nil {
		return nil, nil, fmt.Errorf("encoding Anthropic request: %w", err)
	}
	// The member name cannot occur quoted inside a string (its quotes
	// would be escaped): present, it is a block's cache_control.
	if o.AutoCache && !bytes.Contains(b, []byte(`"cache_control"`)) {
		b = append(b[:len(b)-1], `,"cache_control":{"type":"ephemeral"}}`...)
	}
	return b, out.betas, nil
}

// buildRequest applies EncodeRequest's rules and returns the wire value.
func buildRequest(r *ir.Request, o RequestOptions) (*outRequest, error) {
	if r.N > 1 {
		return nil, ir.Invalid("n", "n=%d is not supported: Anthropic models return one choice", r.N)
	}
	out := outRequest{Model: r.Model, Stream: r.Stream}
	limit := 0
	if o.DefaultMaxTokens != nil {
		limit = o.DefaultMaxTokens(r.Model)
	}
	out.MaxTokens = r.MaxTokens
	switch {
	case out.MaxTokens <= 0 && limit > 0:
		out.MaxTokens = limit
	case out.MaxTokens <= 0:
		out.MaxTokens = DefaultMaxTokens
	case limit > 0 && out.MaxTokens > limit:
		out.MaxTokens = limit
	}
	for _, p := range r.System {
		if p.Text != "" {
			out.System = append(out.System, outText{Type: "text", Text: p.Text, CacheControl: p.CacheControl})
		}
	}
	msgs, hoisted, err := encodeMessages(r, o)
	if err != nil {
		return nil, err
	}
	out.Messages, out.System = msgs, append(out.System, hoisted...)
	for _, t := range r.Tools {
		schema, desc, name := t.Parameters, t.Description, o.Names.Upstream(t.Name)
		if t.Custom != nil {
			// Claude has JSON tools only: the free text goes in one string
			// member, and the answer's calls go back as custom calls.
			desc, schema = t.Custom.AsFunction(desc)
			o.Names.MarkCustom(name)
		}
		if isJSONNull(schema) {
			schema = json.RawMessage(`{"type":"object","properties":{}}`)
		}
		out.Tools = append(out.Tools, outTool{
			Name: name, Description: desc, InputSchema: schema, CacheControl: t.CacheControl,
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
		out.Metadata = &outMetadata{UserID: opaqueUserID(r.User)}
	}
	thinking := false
	// Extended thinking takes tool_choice auto or none only: a forced tool
	// (the client's explicit constraint) wins over a reasoning hint, except
	// on models whose thinking cannot be turned off, where the provider's
	// own error tells the client.
	forcedTool := out.ToolChoice != nil && (out.ToolChoice.Type == "any" || out.ToolChoice.Type == "tool")
	// A turn that answers tool results continues a tool loop, one turn of
	// the model's, and with thinking on Anthropic requires the loop's first
	// assistant message to start with its signed thinking block, which an
	// OpenAI-shape client has only when it came back (a Responses API
	// reasoning item the gateway wrote, thinking_blocks, or the thinking
	// the gateway kept): without it, the request goes without thinking.
	noThinking := forcedTool || continuesToolLoop(out.Messages) && !startsWithThinking(loopStart(out.Messages))
	// On a model whose thinking cannot be turned off, the least effort an
	// OpenAI client can ask for (minimal, none) is sent as effort low:
	// sending nothing would leave the model at its default, high (review
	// 26V).
	least := r.Thinking != nil && adaptiveOnly(r.Model) && (r.Thinking.Effort == "minimal" || r.Thinking.Effort == "none")
	if th := r.Thinking; th != nil && (th.Mode != ir.ThinkingDisabled || least) && !(noThinking && !adaptiveOnly(r.Model)) {
		budget := th.BudgetTokens
		if budget == 0 {
			budget = EffortBudget(th.Effort)
		}
		switch {
		case th.Mode == ir.ThinkingAdaptive || adaptiveOnly(r.Model):
			if budget > 0 || th.Mode == ir.ThinkingAdaptive || least {
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
	if !thinking && !adaptiveOnly(r.Model) {
		// Thinking blocks a client sent back go only to a request that
		// thinks, as they went before they could be sent back; a model
		// whose thinking cannot be turned off keeps them.
		out.Messages = withoutThinking(out.Messages)
	}
	if th := r.Thinking; th != nil && th.Display != "" && out.Thinking != nil && adaptiveOnly(r.Model) {
		// Asked for the thinking's text, which these models omit by
		// default (the answer's reasoning summaries).
		out.Thinking.Display = th.Display
	}
	if holdsThinking(out.Messages) && preservedThinking(r.Model) {
		// The beta changes nothing the model is given; the answer
		// reports the blocks the provider dropped or let through, and
		// DropMismatchedThinking's member needs it.
		out.betas = []string{ThinkingBindingBeta}
		if out.Thinking == nil {
			// The model's default, which cannot be turned off: named, so
			// that DropMismatchedThinking has a member to add to.
			out.Thinking = &outThinkingCfg{Type: "adaptive"}
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
	return &out, nil
}

// encodeMessages writes r's messages, and returns the later system
// messages that go into the top-level system. To a model that takes
// mid-conversation system messages (acceptsMidSystem), a system message
// goes as one where the client put it when that follows a user turn, so
// the conversation before it, which the provider caches and checks
// thinking against, stays as it was; one a user message follows (Codex
// puts its developer messages there), which Anthropic's placement rule
// does not allow, goes right after that user turn. Otherwise, and to
// older models, it is hoisted, as Anthropic had one system prompt.
func encodeMessages(r *ir.Request, o RequestOptions) (msgs []outMessage, hoisted []outText, err error) {
	msgs = make([]outMessage, 0, len(r.Messages))
	midSystem := -1   // acceptsMidSystem(r.Model), read at the first system message
	var pending []any // system texts waiting for the end of the user turn after them
	place := func(texts []any) {
		if n := len(msgs); msgs[n-1].Role == "system" {
			msgs[n-1].Content = append(msgs[n-1].Content, texts...)
		} else {
			msgs = append(msgs, outMessage{Role: "system", Content: texts})
		}
	}
	for i := range r.Messages {
		m := &r.Messages[i]
		if m.Role == ir.RoleSystem {
			var texts []any
			for _, p := range m.Parts {
				if p.Type == ir.PartText && p.Text != "" {
					texts = append(texts, outText{Type: "text", Text: p.Text, CacheControl: p.CacheControl})
				}
			}
			if len(texts) == 0 {
				continue
			}
			if midSystem < 0 {
				midSystem = 0
				if acceptsMidSystem(r.Model) {
					midSystem = 1
				}
			}
			n := len(msgs)
			switch {
			case midSystem == 1 && n > 0 && nextIsUser(r.Messages[i+1:]):
				pending = append(pending, texts...)
			case midSystem == 1 && n > 0 && len(pending) == 0 && (msgs[n-1].Role == "user" || msgs[n-1].Role == "system"):
				place(texts)
			default:
				for _, t := range texts {
					hoisted = append(hoisted, t.(outText))
				}
			}
			continue
		}
		content := make([]any, 0, len(m.Parts))
		for j := range m.Parts {
			b, err := encodeBlock(&m.Parts[j], o.Names, i)
			if err != nil {
				return nil, nil, err
			}
			if b != nil {
				content = append(content, b)
			}
		}
		if len(content) > 0 {
			role := string(m.Role)
			if n := len(msgs); n > 0 && msgs[n-1].Role == role {
				msgs[n-1].Content = append(msgs[n-1].Content, content...)
			} else {
				msgs = append(msgs, outMessage{Role: role, Content: content})
			}
		}
		if len(pending) > 0 && len(msgs) > 0 && msgs[len(msgs)-1].Role == "user" && !nextIsUser(r.Messages[i+1:]) {
			place(pending)
			pending = nil
		}
	}
	for _, t := range pending {
		hoisted = append(hoisted, t.(outText))
	}
	return msgs, hoisted, nil
}

// acceptsMidSystem guesses whether the model takes role "system" messages
// in messages, right after a user turn (Opus 4.8 on, Sonnet and Haiku 5.5
// on, Fable, Mythos 5).
func acceptsMidSystem(model string) bool { return versionAtLeast(model, midSystemFrom) }

// nextIsUser reports whether the first message of msgs that is not a
// system message is a user message.
func nextIsUser(msgs []ir.Message) bool {
	for i := range msgs {
		if msgs[i].Role != ir.RoleSystem {
			return msgs[i].Role == ir.RoleUser
		}
	}
	return false
}

// continuesToolLoop reports whether msgs end with a user turn holding tool
// results after an assistant turn that called tools.
func continuesToolLoop(msgs []outMessage) bool {
	n := len(msgs)
	if n < 2 || msgs[n-1].Role != "user" || msgs[n-2].Role != "assistant" {
		return false
	}
	has := func(blocks []any, result bool) bool {
		for _, b := range blocks {
			switch b.(type) {
			case outToolResult:
				if result {
					return true
				}
			case outToolUse:
				if !result {
					return true
				}
			}
		}
		return false
	}
	return has(msgs[n-1].Content, true) && has(msgs[n-2].Content, false)
}

// loopStart is the first assistant message of the tool loop msgs end in
// (continuesToolLoop): the earliest one after which every user message
// answers tools.
func loopStart(msgs []outMessage) outMessage {
	i := len(msgs) - 2
	for i >= 2 && msgs[i-2].Role == "assistant" && holdsToolResult(msgs[i-1].Content) {
		i -= 2
	}
	return msgs[i]
}

// holdsToolResult reports whether blocks hold a tool result.
func holdsToolResult(blocks []any) bool {
	for _, b := range blocks {
		if _, ok := b.(outToolResult); ok {
			return true
		}
	}
	return false
}

// startsWithThinking reports whether m starts with a thinking block.
func startsWithThinking(m outMessage) bool {
	if len(m.Content) == 0 {
		return false
	}
	switch m.Content[0].(type) {
	case outThinking, outRedacted:
		return true
	}
	return false
}

// holdsThinking reports whether a message of msgs holds a thinking or
// redacted thinking block.
func holdsThinking(msgs []outMessage) bool {
	for _, m := range msgs {
		for _, b := range m.Content {
			switch b.(type) {
			case outThinking, outRedacted:
				return true
			}
		}
	}
	return false
}

// withoutThinking is msgs without thinking blocks: a message left empty
// goes, and the messages of one role it separated become one.
func withoutThinking(msgs []outMessage) []outMessage {
	if !holdsThinking(msgs) {
		return msgs
	}
	out := msgs[:0]
	for _, m := range msgs {
		content := m.Content[:0]
		for _, b := range m.Content {
			switch b.(type) {
			case outThinking, outRedacted:
				continue
			}
			content = append(content, b)
		}
		switch n := len(out); {
		case len(content) == 0:
		case n > 0 && out[n-1].Role == m.Role:
			out[n-1].Content = append(out[n-1].Content, content...)
		default:
			m.Content = content
			out = append(out, m)
		}
	}
	return out
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

// encodeBlock writes one part of messages[mi] (mi names it in errors).
func encodeBlock(p *ir.Part, names *ir.ToolNames, mi int) (any, error) {
	switch p.Type {
	case ir.PartText:
		if p.Text == "" {
			return nil, nil
		}
		return outText{Type: "text", Text: p.Text, CacheControl: p.CacheControl}, nil
	case ir.PartImage, ir.PartDocument:
		return encodeMedia(p, mi)
	case ir.PartToolCall:
		args := p.Arguments
		if isJSONNull(args) {
			args = json.RawMessage("{}")
		}
		return outToolUse{Type: "tool_use", ID: ir.SafeToolCallID(p.ToolCallID), Name: names.Upstream(p.ToolName), Input: args, CacheControl: p.CacheControl}, nil
	case ir.PartToolResult:
		tr := outToolResult{Type: "tool_result", ToolUseID: ir.SafeToolCallID(p.ToolCallID), IsError: p.IsError, CacheControl: p.CacheControl}
		for i := range p.Content {
			b, err := encodeBlock(&p.Content[i], names, mi)
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
	return nil, ir.Invalid(messageWhere(mi), "content part %s cannot be sent to Anthropic", p.Type)
}

func encodeMedia(p *ir.Part, mi int) (any, error) {
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
		return nil, ir.Invalid(messageWhere(mi), "%s part has no data or URL", p.Type)
	}
	return m, nil
}

// messageWhere names messages[i] in error parameters.
func messageWhere(i int) string {
	return "messages[" + strconv.Itoa(i) + "]"
}

// opaqueUserID is the metadata.user_id sent for an OpenAI client's user
// (or safety_identifier): the value itself, unless it looks like an e-mail
// address or a phone number, which Anthropic refuses with a 400 (it asks
// for an opaque id).
func opaqueUserID(u string) string {
	if strings.Contains(u, "@") || looksLikePhone(u) {
		return ir.HashedUserID(u)
	}
	return u
}

// looksLikePhone reports whether s is written like a phone number: seven or
// more digits, with nothing else but + ( ) - . and spaces.
func looksLikePhone(s string) bool {
	digits := 0
	for _, c := range s {
		switch {
		case c >= '0' && c <= '9':
			digits++
		case strings.ContainsRune("+()-. ", c):
		default:
			return false
		}
	}
	return digits >= 7
}
