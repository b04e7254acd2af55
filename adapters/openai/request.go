package openai

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/metisgateway/metis/adapters/internal/wirestr"
	"github.com/metisgateway/metis/ir"
)

// DecodeRequest reads a Chat Completions request body into the neutral
// model. Leading system/developer messages become Request.System; later
// ones stay in place as system messages. Consecutive tool messages become
// one user message of tool results. Unsupported content (audio, file ids,
// legacy functions) is an *ir.Error with status 400. A custom tool's
// calls carry their input as the arguments {"input": text}.
//
// The body is read by a reflection-free reader (decode_fast.go) when it
// can read it exactly as encoding/json would, else by json.Unmarshal.
func DecodeRequest(body []byte) (*ir.Request, error) {
	var in inRequest
	if fillRequest(&in, body) {
		if r, err := convertRequest(&in); err != errSlow {
			return r, err
		}
	}
	in = inRequest{} // the fast reader may have filled part of it
	return decodeRequestStd(body, &in)
}

// DecodeRequestParsed is DecodeRequest for a body the caller has already
// checked with gjson.Valid and parsed with gjson.Parse (root): the body is
// not validated or copied again. root.Raw must stay unchanged while the
// returned request is in use (its strings may share its memory).
func DecodeRequestParsed(root gjson.Result) (*ir.Request, error) {
	var in inRequest
	if fillRequestParsed(&in, root) {
		if r, err := convertRequest(&in); err != errSlow {
			return r, err
		}
	}
	in = inRequest{}
	return decodeRequestStd([]byte(root.Raw), &in)
}

// decodeRequestStd is DecodeRequest with json.Unmarshal as the reader.
func decodeRequestStd(body []byte, in *inRequest) (*ir.Request, error) {
	if err := json.Unmarshal(body, in); err != nil {
		return nil, ir.Invalid("", "decoding OpenAI request: %v", err)
	}
	return convertRequest(in)
}

// messageWhere names messages[i] in error parameters.
func messageWhere(i int) string {
	return "messages[" + strconv.Itoa(i) + "]"
}

// convertRequest builds the neutral request from the wire struct. With a
// struct filled by the fast reader it may return errSlow.
func convertRequest(in *inRequest) (*ir.Request, error) {
	if !isJSONNull(in.Functions) {
		return nil, ir.Invalid("functions", "the deprecated functions parameter is not supported across providers; use tools")
	}
	r := &ir.Request{
		Model: in.Model, Stream: in.Stream, Temperature: in.Temperature, TopP: in.TopP,
		ParallelToolCalls: in.ParallelToolCalls, User: in.User,
	}
	if r.User == "" {
		r.User = in.SafetyIdentifier
	}
	if in.N != nil {
		r.N = *in.N
	}
	if in.StreamOptions != nil {
		r.IncludeUsage = in.StreamOptions.IncludeUsage
	}
	switch {
	case in.MaxCompletionTokens != nil:
		r.MaxTokens = *in.MaxCompletionTokens
	case in.MaxTokens != nil:
		r.MaxTokens = *in.MaxTokens
	}
	if !isJSONNull(in.Stop) {
		if isJSONString(in.Stop) {
			var s string
			if err := json.Unmarshal(in.Stop, &s); err != nil {
				return nil, ir.Invalid("stop", "decoding stop: %v", err)
			}
			r.Stop = []string{s}
		} else if err := json.Unmarshal(in.Stop, &r.Stop); err != nil {
			return nil, ir.Invalid("stop", "stop must be a string or an array of strings: %v", err)
		}
	}
	switch e := in.ReasoningEffort; e {
	case "":
	case "none":
		r.Thinking = &ir.Thinking{Mode: ir.ThinkingDisabled, Effort: e}
	default:
		r.Thinking = &ir.Thinking{Mode: ir.ThinkingEnabled, Effort: e}
	}
	if rf := in.ResponseFormat; rf != nil {
		switch rf.Type {
		case "json_schema":
			if rf.JSONSchema == nil {
				return nil, ir.Invalid("response_format.json_schema", "json_schema response format needs a schema")
			}
			r.ResponseFormat = &ir.ResponseFormat{Type: "json_schema", Name: rf.JSONSchema.Name, Schema: rf.JSONSchema.Schema, Strict: rf.JSONSchema.Strict}
		case "json_object":
			r.ResponseFormat = &ir.ResponseFormat{Type: "json_object"}
		}
	}
	for i, t := range in.Tools {
		if t.Type == "custom" {
			tool, err := customTool(i, t.Custom, t.CacheControl)
			if err != nil {
				return nil, err
			}
			r.Tools = append(r.Tools, tool)
			continue
		}
		if t.Type == "function" && t.Function == nil {
			return nil, ir.Invalid(fmt.Sprintf("tools[%d].function", i),
				"field required; a flat tool with the name at the top is a Responses API tool, not a Chat Completions one")
		}
		if t.Type != "function" {
			return nil, ir.Invalid(fmt.Sprintf("tools[%d].type", i), "tool type %q is not supported across providers (function and custom tools only)", t.Type)
		}
		if t.Function.Name == "" {
			return nil, ir.Invalid(fmt.Sprintf("tools[%d].function.name", i), "tool name is required")
		}
		r.Tools = append(r.Tools, ir.Tool{
			Name: t.Function.Name, Description: t.Function.Description,
			Parameters: t.Function.Parameters, Strict: t.Function.Strict, CacheControl: t.CacheControl,
		})
	}
	if !isJSONNull(in.ToolChoice) {
		tc, err := decodeToolChoice(in.ToolChoice)
		if err != nil {
			return nil, err
		}
		r.ToolChoice = tc
	}
	r.Messages = make([]ir.Message, 0, len(in.Messages))
	// Messages with string content (most of them) take their one part
	// from this slab: one allocation instead of one per message.
	slab := make([]ir.Part, 0, len(in.Messages))
	leading := true
	for i := range in.Messages {
		m := &in.Messages[i]
		switch m.Role {
		case "system", "developer":
			parts, err := decodeParts(m, i, false, &slab)
			if err != nil {
				return nil, err
			}
			if leading {
				r.System = append(r.System, parts...)
			} else {
				r.Messages = append(r.Messages, ir.Message{Role: ir.RoleSystem, Parts: parts})
			}
			continue
		case "user":
			parts, err := decodeParts(m, i, true, &slab)
			if err != nil {
				return nil, err
			}
			r.Messages = append(r.Messages, ir.Message{Role: ir.RoleUser, Parts: parts})
		case "assistant":
			parts, err := decodeParts(m, i, false, &slab)
			if err != nil {
				return nil, err
			}
			if m.Refusal != nil && *m.Refusal != "" {
				parts = append(parts, ir.Part{Type: ir.PartText, Text: *m.Refusal})
			}
			for j := range m.ToolCalls {
				tc := &m.ToolCalls[j]
				if tc.Type == "custom" {
					if tc.Custom == nil || tc.Custom.Name == "" {
						return nil, ir.Invalid(fmt.Sprintf("%s.tool_calls[%d].custom.name", messageWhere(i), j), "a custom tool call needs a name")
					}
					input := ""
					if tc.Custom.Input != nil {
						input = *tc.Custom.Input
					}
					parts = append(parts, ir.Part{Type: ir.PartToolCall, ToolCallID: tc.ID, ToolName: tc.Custom.Name, Arguments: ir.CustomArguments(input)})
					continue
				}
				args := ""
				if tc.Function.Arguments != nil {
					args = *tc.Function.Arguments
				}
				parts = append(parts, ir.Part{Type: ir.PartToolCall, ToolCallID: tc.ID, ToolName: tc.Function.Name, Arguments: ArgumentsObject(args)})
			}
			// Claude's thinking, where it wrote it (ResponsesOptions.Thinking).
			parts = PlaceThinking(parts, m.ThinkingBlocks)
			r.Messages = append(r.Messages, ir.Message{Role: ir.RoleAssistant, Parts: parts})
		case "tool":
			parts, err := decodeParts(m, i, false, &slab)
			if err != nil {
				return nil, err
			}
			res := ir.Part{Type: ir.PartToolResult, ToolCallID: m.ToolCallID, Content: parts}
			if n := len(r.Messages); n > 0 && onlyToolResults(&r.Messages[n-1]) {
				r.Messages[n-1].Parts = append(r.Messages[n-1].Parts, res)
			} else {
				r.Messages = append(r.Messages, ir.Message{Role: ir.RoleUser, Parts: []ir.Part{res}})
			}
		default:
			return nil, ir.Invalid(messageWhere(i)+".role", "role %q is not supported across providers", m.Role)
		}
		leading = false
	}
	return r, nil
}

func onlyToolResults(m *ir.Message) bool {
	if m.Role != ir.RoleUser || len(m.Parts) == 0 {
		return false
	}
	for i := range m.Parts {
		if m.Parts[i].Type != ir.PartToolResult {
			return false
		}
	}
	return true
}

// ArgumentsObject turns an OpenAI arguments string into a JSON object for
// a tool call: "" becomes {}, a JSON object is kept, anything else (bad or
// non-object JSON from a model) is wrapped as {"arguments": "<text>"} so
// the conversation can continue.
func ArgumentsObject(args string) json.RawMessage {
	t := strings.TrimSpace(args)
	if t == "" {
		return json.RawMessage("{}")
	}
	if t[0] == '{' && json.Valid([]byte(t)) {
		return json.RawMessage(t)
	}
	b, _ := json.Marshal(map[string]string{"arguments": args})
	return b
}

// customTool reads tools[i], a custom (free-text) tool.
func customTool(i int, c *inToolCustom, cache json.RawMessage) (ir.Tool, error) {
	where := fmt.Sprintf("tools[%d].custom", i)
	if c == nil {
		return ir.Tool{}, ir.Invalid(where, "field required; a flat tool with the name at the top is a Responses API tool, not a Chat Completions one")
	}
	if c.Name == "" {
		return ir.Tool{}, ir.Invalid(where+".name", "tool name is required")
	}
	t := ir.Tool{Name: c.Name, Description: c.Description, CacheControl: cache, Custom: &ir.CustomTool{}}
	if isJSONNull(c.Format) {
		return t, nil
	}
	f := gjson.ParseBytes(c.Format)
	switch typ := f.Get("type"); typ.Str {
	case "text":
	case "grammar":
		g := f.Get("grammar")
		syntax, def := g.Get("syntax"), g.Get("definition")
		if syntax.Str != "lark" && syntax.Str != "regex" {
			return ir.Tool{}, ir.Invalid(where+".format.grammar.syntax", "grammar syntax %q is not supported (lark or regex)", syntax.Str)
		}
		if def.Type != gjson.String || def.Str == "" {
			return ir.Tool{}, ir.Invalid(where+".format.grammar.definition", "a grammar format needs a definition")
		}
		t.Custom.Syntax, t.Custom.Definition = syntax.Str, def.Str
	default:
		return ir.Tool{}, ir.Invalid(where+".format.type", "custom tool format %q is not supported (text or grammar)", typ.Str)
	}
	return t, nil
}

func decodeToolChoice(raw json.RawMessage) (*ir.ToolChoice, error) {
	if isJSONString(raw) {
		var s string
		_ = json.Unmarshal(raw, &s)
		switch s {
		case "auto":
			return &ir.ToolChoice{Mode: ir.ToolChoiceAuto}, nil
		case "required":
			return &ir.ToolChoice{Mode: ir.ToolChoiceRequired}, nil
		case "none":
			return &ir.ToolChoice{Mode: ir.ToolChoiceNone}, nil
		}
		return nil, ir.Invalid("tool_choice", "unknown tool_choice %q", s)
	}
	var obj struct {
		Type     string `json:"type"`
		Function *struct {
			Name string `json:"name"`
		} `json:"function"`
		Custom *struct {
			Name string `json:"name"`
		} `json:"custom"`
		AllowedTools *struct {
			Mode string `json:"mode"`
		} `json:"allowed_tools"`
	}
	if err := json.Unmarshal(raw, &obj); err != nil {
		return nil, ir.Invalid("tool_choice", "decoding tool_choice: %v", err)
	}
	switch obj.Type {
	case "function":
		if obj.Function == nil || obj.Function.Name == "" {
			return nil, ir.Invalid("tool_choice.function.name", "named tool_choice needs a function name")
		}
		return &ir.ToolChoice{Mode: ir.ToolChoiceNamed, Name: obj.Function.Name}, nil
	case "custom":
		if obj.Custom == nil || obj.Custom.Name == "" {
			return nil, ir.Invalid("tool_choice.custom.name", "named tool_choice needs a custom tool name")
		}
		return &ir.ToolChoice{Mode: ir.ToolChoiceNamed, Name: obj.Custom.Name}, nil
	case "allowed_tools":
		// The allowed subset cannot be expressed; keep the mode.
		if obj.AllowedTools != nil && obj.AllowedTools.Mode == "required" {
			return &ir.ToolChoice{Mode: ir.ToolChoiceRequired}, nil
		}
		return &ir.ToolChoice{Mode: ir.ToolChoiceAuto}, nil
	}
	return nil, ir.Invalid("tool_choice.type", "tool_choice type %q is not supported across providers", obj.Type)
}

// decodeParts reads the content of message mi: a string, null or an array
// of parts. media says whether image and file parts are allowed (user
// messages). Content read by the fast reader that it cannot read exactly
// is errSlow. A single text part is taken from slab while it has room
// (it is never grown, so parts already handed out stay put).
func decodeParts(m *inMessage, mi int, media bool, slab *[]ir.Part) ([]ir.Part, error) {
	var in []inPart
	if m.parsed {
		switch c := m.content; {
		case c.Type == gjson.Null:
			return nil, nil
		case c.Type == gjson.String:
			s := wirestr.Of(c)
			if s == "" {
				return nil, nil
			}
			if n := len(*slab); n < cap(*slab) {
				*slab = append(*slab, ir.Part{Type: ir.PartText, Text: s})
				return (*slab)[n : n+1 : n+1], nil
			}
			return []ir.Part{{Type: ir.PartText, Text: s}}, nil
		case !c.IsArray():
			return nil, errSlow
		default:
			var ok bool
			if in, ok = fillParts(c); !ok {
				return nil, errSlow
			}
		}
	} else {
		raw := m.Content
		if isJSONNull(raw) {
			return nil, nil
		}
		if isJSONString(raw) {
			var s string
			if err := json.Unmarshal(raw, &s); err != nil {
				return nil, ir.Invalid(messageWhere(mi)+".content", "decoding content: %v", err)
			}
			if s == "" {
				return nil, nil
			}
			return []ir.Part{{Type: ir.PartText, Text: s}}, nil
		}
		if err := json.Unmarshal(raw, &in); err != nil {
			return nil, ir.Invalid(messageWhere(mi)+".content", "content must be a string or an array of parts: %v", err)
		}
	}
	parts := make([]ir.Part, 0, len(in))
	for i := range in {
		p := &in[i]
		pw := func() string { return messageWhere(mi) + ".content[" + strconv.Itoa(i) + "]" }
		switch p.Type {
		case "text":
			parts = append(parts, ir.Part{Type: ir.PartText, Text: p.Text, CacheControl: p.CacheControl})
			continue
		case "refusal":
			parts = append(parts, ir.Part{Type: ir.PartText, Text: p.Refusal})
			continue
		}
		if !media {
			return nil, ir.Invalid(pw(), "part type %q is only allowed in user messages", p.Type)
		}
		switch p.Type {
		case "image_url":
			if p.ImageURL == nil || p.ImageURL.URL == "" {
				return nil, ir.Invalid(pw(), "image_url part needs a url")
			}
			ip, err := mediaFromURL(p.ImageURL.URL, pw)
			if err != nil {
				return nil, err
			}
			ip.CacheControl = p.CacheControl
			parts = append(parts, ip)
		case "file":
			if p.File == nil || p.File.FileData == "" {
				return nil, ir.Invalid(pw(), "file parts need file_data; uploaded file ids cannot be sent to another provider")
			}
			fp, err := mediaFromURL(p.File.FileData, pw)
			if err != nil {
				return nil, err
			}
			fp.Type, fp.Title, fp.CacheControl = ir.PartDocument, p.File.Filename, p.CacheControl
			if fp.MediaType != "application/pdf" && fp.MediaType != "text/plain" {
				return nil, ir.Invalid(pw(), "file type %q is not supported (PDF and text only)", fp.MediaType)
			}
			parts = append(parts, fp)
		case "input_audio":
			return nil, ir.Invalid(pw(), "audio input is not supported by the target provider")
		default:
			return nil, ir.Invalid(pw(), "unsupported content part type %q", p.Type)
		}
	}
	return parts, nil
}

// mediaFromURL reads a data: URI or an http(s) URL into an image or
// document part; where names the part in errors.
func mediaFromURL(u string, where func() string) (ir.Part, error) {
	if rest, ok := strings.CutPrefix(u, "data:"); ok {
		meta, data, ok := strings.Cut(rest, ",")
		mt, isB64 := strings.CutSuffix(meta, ";base64")
		if !ok || !isB64 {
			return ir.Part{}, ir.Invalid(where(), "data URLs must be base64 (data:<type>;base64,...)")
		}
		switch mt {
		case "image/jpeg", "image/png", "image/gif", "image/webp":
			return ir.Part{Type: ir.PartImage, MediaType: mt, Data: data}, nil
		case "application/pdf":
			return ir.Part{Type: ir.PartDocument, MediaType: mt, Data: data}, nil
		}
		if strings.HasPrefix(mt, "text/") {
			txt, err := decodeBase64Text(data)
			if err != nil {
				return ir.Part{}, ir.Invalid(where(), "decoding text data URL: %v", err)
			}
			return ir.Part{Type: ir.PartDocument, MediaType: "text/plain", Text: txt}, nil
		}
		return ir.Part{}, ir.Invalid(where(), "media type %q is not supported (jpeg, png, gif, webp, pdf)", mt)
	}
	if strings.HasPrefix(u, "https://") || strings.HasPrefix(u, "http://") {
		path, _, _ := strings.Cut(u, "?")
		if strings.HasSuffix(strings.ToLower(path), ".pdf") {
			return ir.Part{Type: ir.PartDocument, URL: u}, nil
		}
		return ir.Part{Type: ir.PartImage, URL: u}, nil
	}
	return ir.Part{}, ir.Invalid(where(), "unsupported URL scheme in %q", truncate(u, 40))
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// RequestOptions tune EncodeRequest for the target model.
type RequestOptions struct {
	// SupportsReasoning says whether the model takes reasoning_effort (and
	// so rejects non-default temperature/top_p); nil uses
	// GuessReasoningModel.
	SupportsReasoning func(model string) bool
	// Names records tool names that had to be changed; may be nil.
	Names *ir.ToolNames
	// MaxTokens sends the output limit as max_tokens instead of
	// max_completion_tokens (servers such as Mistral's refuse the latter).
	MaxTokens bool
	// OutputLimit is the model's output limit, the most a client's limit
	// is sent as (OpenAI refuses more); nil or a result ≤ 0 sends the
	// client's.
	OutputLimit func(model string) int
	// NoStreamUsage leaves stream_options out of a streamed request
	// (servers that refuse the field).
	NoStreamUsage bool
	// SystemFirst merges later system messages into the leading one (chat
	// templates, such as Qwen's, that allow a system message only first).
	SystemFirst bool
}

// systemParts returns the parts of msgs' system messages, in order.
func systemParts(msgs []ir.Message) [][]ir.Part {
	var out [][]ir.Part
	for i := range msgs {
		if msgs[i].Role == ir.RoleSystem {
			out = append(out, msgs[i].Parts)
		}
	}
	return out
}

// MaxStop is OpenAI's limit on stop sequences.
const MaxStop = 4

// GuessReasoningModel guesses from the model id whether it is an OpenAI
// reasoning model (o-series, gpt-5 family except chat variants, gpt-oss).
func GuessReasoningModel(model string) bool {
	if i := strings.LastIndexByte(model, '/'); i >= 0 {
		model = model[i+1:]
	}
	m := strings.ToLower(model)
	switch {
	case strings.HasPrefix(m, "o1"), strings.HasPrefix(m, "o3"), strings.HasPrefix(m, "o4"), strings.HasPrefix(m, "gpt-oss"):
		return true
	case strings.HasPrefix(m, "gpt-5"):
		return !strings.Contains(m, "chat")
	}
	return false
}

// BudgetEffort is the reasoning_effort bucket for an Anthropic thinking
// budget: below 2048 low, below 4096 medium, else high.
func BudgetEffort(budget int) string {
	switch {
	case budget < 2048:
		return "low"
	case budget < 4096:
		return "medium"
	}
	return "high"
}

// EncodeRequest writes r as a Chat Completions request body. Tool results
// become tool messages placed before the rest of their user turn (images
// in tool results move to that user message, is_error becomes an "Error: "
// prefix), thinking blocks and cache hints are dropped, streams ask for
// include_usage, and more than MaxStop stop sequences is an error.
func EncodeRequest(r *ir.Request, o RequestOptions) ([]byte, error) {
	out, err := buildRequest(r, o)
	if err != nil {
		return nil, err
	}
	b, err := marshalRequest(out)
	if err != nil {
		return nil, fmt.Errorf("encoding OpenAI request: %w", err)
	}
	return b, nil
}

// buildRequest applies EncodeRequest's rules and returns the wire value.
func buildRequest(r *ir.Request, o RequestOptions) (*outRequest, error) {
	if len(r.Stop) > MaxStop {
		return nil, ir.Invalid("stop_sequences", "%d stop sequences given; the target model accepts at most %d", len(r.Stop), MaxStop)
	}
	reasoning := GuessReasoningModel
	if o.SupportsReasoning != nil {
		reasoning = o.SupportsReasoning
	}
	isReasoning := reasoning(r.Model)
	out := outRequest{Model: r.Model, Stop: r.Stop, User: fitUser(r.User), Stream: r.Stream}
	if n := r.MaxTokens; n > 0 {
		if o.OutputLimit != nil {
			if limit := o.OutputLimit(r.Model); limit > 0 {
				n = min(n, limit)
			}
		}
		if o.MaxTokens {
			out.MaxTokens = n
		} else {
			out.MaxCompletionTokens = n
		}
	}
	if r.Stream && !o.NoStreamUsage {
		out.StreamOptions = &outStreamOptions{IncludeUsage: true}
	}
	out.Messages = make([]outMessage, 0, len(r.Messages)+1)
	switch {
	case o.SystemFirst:
		// One string: templates that want the system message first
		// often take only a string there.
		var texts []string
		for _, parts := range append([][]ir.Part{r.System}, systemParts(r.Messages)...) {
			for i := range parts {
				if parts[i].Type == ir.PartText && parts[i].Text != "" {
					texts = append(texts, parts[i].Text)
				}
			}
		}
		if len(texts) > 0 {
			out.Messages = append(out.Messages, outMessage{Role: "system", Content: strings.Join(texts, "\n\n")})
		}
	case len(r.System) > 0:
		if c := textContent(r.System); c != nil {
			out.Messages = append(out.Messages, outMessage{Role: "system", Content: c})
		}
	}
	for i := range r.Messages {
		if o.SystemFirst && r.Messages[i].Role == ir.RoleSystem {
			continue
		}
		var err error
		out.Messages, err = encodeMessage(out.Messages, &r.Messages[i], o.Names, fmt.Sprintf("messages[%d]", i))
		if err != nil {
			return nil, err
		}
	}
	for _, t := range r.Tools {
		params := t.Parameters
		if isJSONNull(params) {
			params = json.RawMessage(`{"type":"object","properties":{}}`)
		}
		out.Tools = append(out.Tools, outTool{Type: "function", Function: outFunction{
			Name: o.Names.Upstream(t.Name), Description: t.Description, Parameters: params, Strict: t.Strict,
		}})
	}
	if tc := r.ToolChoice; tc != nil && (len(out.Tools) > 0 || tc.Mode == ir.ToolChoiceNone) {
		switch tc.Mode {
		case ir.ToolChoiceRequired:
			out.ToolChoice = "required"
		case ir.ToolChoiceNone:
			out.ToolChoice = "none"
		case ir.ToolChoiceNamed:
			nc := outNamedChoice{Type: "function"}
			nc.Function.Name = o.Names.Upstream(tc.Name)
			out.ToolChoice = nc
		default:
			out.ToolChoice = "auto"
		}
	}
	if p := r.ParallelToolCalls; p != nil && !*p && len(out.Tools) > 0 {
		f := false
		out.ParallelToolCalls = &f
	}
	if isReasoning {
		if th := r.Thinking; th != nil && th.Mode == ir.ThinkingDisabled && th.Effort != "" {
			// Thinking off with an effort (Anthropic's output_config.effort
			// beside thinking disabled): the effort asked for, not the
			// model's default, which may be more (review 26R).
			out.ReasoningEffort = openAIEffort(th.Effort)
		} else if th != nil && th.Mode != ir.ThinkingDisabled {
			switch {
			case th.Effort != "":
				out.ReasoningEffort = openAIEffort(th.Effort)
			case th.BudgetTokens > 0:
				out.ReasoningEffort = BudgetEffort(th.BudgetTokens)
			default:
				out.ReasoningEffort = "medium"
			}
		}
	} else {
		out.Temperature, out.TopP = r.Temperature, r.TopP
	}
	if rf := r.ResponseFormat; rf != nil {
		switch rf.Type {
		case "json_schema":
			name := rf.Name
			if name == "" {
				name = "structured_output"
			}
			out.ResponseFormat = &outRespFormat{Type: "json_schema", JSONSchema: &outJSONSchema{Name: name, Schema: rf.Schema, Strict: rf.Strict}}
		case "json_object":
			out.ResponseFormat = &outRespFormat{Type: "json_object"}
		}
	}
	return &out, nil
}

func openAIEffort(e string) string {
	switch e {
	case "minimal", "low", "medium", "high":
		return e
	case "xhigh", "max":
		return "high"
	case "none":
		return "minimal"
	}
	return "medium"
}

// textContent is a string for one text part, an array of text parts for
// several, nil for none.
func textContent(parts []ir.Part) any {
	n := 0
	var first string
	for i := range parts {
		if parts[i].Type == ir.PartText && parts[i].Text != "" {
			if n == 0 {
				first = parts[i].Text
			}
			n++
		}
	}
	switch n {
	case 0:
		return nil
	case 1:
		return first
	}
	arr := make([]outTextPart, 0, n)
	for i := range parts {
		if parts[i].Type == ir.PartText && parts[i].Text != "" {
			arr = append(arr, outTextPart{Type: "text", Text: parts[i].Text})
		}
	}
	return arr
}

func encodeMessage(dst []outMessage, m *ir.Message, names *ir.ToolNames, where string) ([]outMessage, error) {
	switch m.Role {
	case ir.RoleSystem:
		if c := textContent(m.Parts); c != nil {
			dst = append(dst, outMessage{Role: "system", Content: c})
		}
		return dst, nil
	case ir.RoleAssistant:
		msg := outMessage{Role: "assistant", Content: textContent(m.Parts)}
		for i := range m.Parts {
			p := &m.Parts[i]
			if p.Type != ir.PartToolCall {
				continue
			}
			args := p.Arguments
			if isJSONNull(args) {
				args = json.RawMessage("{}")
			}
			msg.ToolCalls = append(msg.ToolCalls, outToolCall{
				ID: p.ToolCallID, Type: "function",
				Function: &outCallFunction{Name: names.Upstream(p.ToolName), Arguments: compactJSON(args)},
			})
		}
		if msg.Content == nil && len(msg.ToolCalls) == 0 {
			return dst, nil // only thinking: nothing OpenAI can take
		}
		return append(dst, msg), nil
	}
	// User turn: tool results first, as tool messages, then the rest.
	var rest []any
	for i := range m.Parts {
		p := &m.Parts[i]
		switch p.Type {
		case ir.PartToolResult:
			var sb strings.Builder
			if p.IsError {
				sb.WriteString("Error: ")
			}
			first := true
			for j := range p.Content {
				c := &p.Content[j]
				switch {
				case c.Type == ir.PartText || c.Type == ir.PartDocument && c.Data == "" && c.URL == "":
					if !first {
						sb.WriteString("\n")
					}
					sb.WriteString(c.Text)
					first = false
				default:
					mp, err := mediaPart(c, where)
					if err != nil {
						return nil, err
					}
					rest = append(rest, mp)
				}
			}
			dst = append(dst, outMessage{Role: "tool", ToolCallID: p.ToolCallID, Content: sb.String()})
		case ir.PartText:
			if p.Text != "" {
				rest = append(rest, outTextPart{Type: "text", Text: p.Text})
			}
		case ir.PartImage, ir.PartDocument:
			mp, err := mediaPart(p, where)
			if err != nil {
				return nil, err
			}
			rest = append(rest, mp)
		case ir.PartThinking, ir.PartRedactedThinking:
		default:
			return nil, ir.Invalid(where, "content part %s cannot be sent in a user message", p.Type)
		}
	}
	if len(rest) == 0 {
		return dst, nil
	}
	if len(rest) == 1 {
		if t, ok := rest[0].(outTextPart); ok {
			return append(dst, outMessage{Role: "user", Content: t.Text}), nil
		}
	}
	return append(dst, outMessage{Role: "user", Content: rest}), nil
}

func mediaPart(p *ir.Part, where string) (any, error) {
	if p.Type == ir.PartImage {
		ip := outImagePart{Type: "image_url"}
		switch {
		case p.URL != "":
			ip.ImageURL.URL = p.URL
		case p.Data != "":
			ip.ImageURL.URL = "data:" + p.MediaType + ";base64," + p.Data
		default:
			return nil, ir.Invalid(where, "image has no data or URL")
		}
		return ip, nil
	}
	switch {
	case p.Data == "" && p.URL == "":
		text := p.Text
		if p.Title != "" {
			text = p.Title + "\n\n" + text
		}
		return outTextPart{Type: "text", Text: text}, nil
	case p.URL != "":
		return nil, ir.Invalid(where, "documents given by URL cannot be sent to an OpenAI model; send them as base64")
	}
	fp := outFilePart{Type: "file"}
	fp.File.Filename = p.Title
	if fp.File.Filename == "" {
		fp.File.Filename = "document.pdf"
	}
	mt := p.MediaType
	if mt == "" {
		mt = "application/pdf"
	}
	fp.File.FileData = "data:" + mt + ";base64," + p.Data
	return fp, nil
}

// compactJSON renders raw JSON without insignificant whitespace (as an
// arguments string); invalid JSON is returned as is.
func compactJSON(raw json.RawMessage) string {
	if !bytes.ContainsAny(raw, " \t\r\n") {
		return string(raw)
	}
	var buf bytes.Buffer
	buf.Grow(len(raw))
	if err := json.Compact(&buf, raw); err != nil {
		return string(raw)
	}
	return buf.String()
}

func decodeBase64Text(data string) (string, error) {
	b, err := base64.StdEncoding.DecodeString(data)
	if err != nil {
		return "", fmt.Errorf("invalid base64: %w", err)
	}
	return string(b), nil
}

// maxUser is the longest user OpenAI accepts.
const maxUser = 64

// fitUser is the user sent for an Anthropic client's metadata.user_id:
// the value itself if OpenAI takes it. Claude Code's user_id is a JSON
// object of some 150 characters, which OpenAI refuses with a 400
// (OpenRouter and other servers past 128).
func fitUser(u string) string {
	if len(u) <= maxUser {
		return u
	}
	return ir.HashedUserID(u)
}
