package ir

import (
	"encoding/json"
	"strings"
)

// Role is the author of a message in the neutral model.
type Role string

// Message roles. RoleSystem only appears in Request.Messages for a system
// instruction that sits in the middle of a conversation; leading system
// text lives in Request.System.
const (
	RoleUser      Role = "user"
	RoleAssistant Role = "assistant"
	RoleSystem    Role = "system"
)

// PartType is the kind of one content part.
type PartType uint8

// Content part kinds.
const (
	PartText PartType = iota + 1
	PartImage
	PartDocument
	PartToolCall
	PartToolResult
	PartThinking
	PartRedactedThinking
)

// String names the part kind (for error messages).
func (t PartType) String() string {
	switch t {
	case PartText:
		return "text"
	case PartImage:
		return "image"
	case PartDocument:
		return "document"
	case PartToolCall:
		return "tool_call"
	case PartToolResult:
		return "tool_result"
	case PartThinking:
		return "thinking"
	case PartRedactedThinking:
		return "redacted_thinking"
	}
	return "unknown"
}

// Part is one piece of message content. Which fields are meaningful depends
// on Type:
//
//   - PartText: Text.
//   - PartImage, PartDocument: MediaType + Data (base64) or URL; Text holds
//     a plain-text document's body; Title a document's title or file name.
//   - PartToolCall: ToolCallID, ToolName, Arguments (a JSON object).
//   - PartToolResult: ToolCallID, Content (text and image parts), IsError.
//   - PartThinking: Text, Signature. PartRedactedThinking: Data.
//
// CacheControl carries a provider cache hint verbatim (Anthropic
// {"type":"ephemeral",...}); it is nil when absent.
type Part struct {
	Type         PartType
	Text         string
	MediaType    string
	Data         string
	URL          string
	Title        string
	ToolCallID   string
	ToolName     string
	Arguments    json.RawMessage
	Content      []Part
	IsError      bool
	Signature    string
	CacheControl json.RawMessage
}

// Message is one conversation turn.
type Message struct {
	Role  Role
	Parts []Part
}

// Tool is a client-defined function the model may call.
type Tool struct {
	Name        string
	Description string
	// Parameters is the JSON Schema of the arguments object.
	Parameters   json.RawMessage
	Strict       *bool
	CacheControl json.RawMessage
	// Custom is set for an OpenAI custom tool, which takes free text
	// rather than a JSON object. Its calls carry that text as the
	// arguments {"input": text} (CustomArguments); Parameters is unset.
	// Only OpenAI clients send such tools, and only the Anthropic encoder
	// meets them (as AsFunction's JSON tool).
	Custom *CustomTool
}

// CustomTool is the input format of a free-text tool: any text when
// Syntax is empty, else text matching Definition, a grammar in Syntax
// ("lark" or "regex").
type CustomTool struct {
	Syntax     string
	Definition string
}

// customSchema is the arguments schema a custom tool is offered with to
// a provider that has only JSON tools.
const customSchema = `{"type":"object","properties":{"input":{"type":"string","description":"The text the tool takes, whole and unencoded."}},"required":["input"],"additionalProperties":false}`

// AsFunction returns the description and the arguments schema a custom
// tool is offered with to a provider that has only JSON tools: one
// string member, input, and the description says what the text must
// match. Its calls' arguments are then CustomArguments.
func (c *CustomTool) AsFunction(description string) (string, json.RawMessage) {
	var b strings.Builder
	b.WriteString(description)
	if description != "" {
		b.WriteString("\n\n")
	}
	b.WriteString(`This tool takes free text: put all of it in the string parameter "input", exactly as the tool is to receive it.`)
	switch c.Syntax {
	case "lark":
		b.WriteString(" The text must match this Lark grammar:\n")
		b.WriteString(c.Definition)
	case "regex":
		b.WriteString(" The text must match this regular expression:\n")
		b.WriteString(c.Definition)
	}
	return b.String(), json.RawMessage(customSchema)
}

// CustomArguments is the arguments object a call of a custom tool
// carries: {"input": input}.
func CustomArguments(input string) json.RawMessage {
	b, _ := json.Marshal(struct {
		Input string `json:"input"`
	}{input})
	return b
}

// ToolChoiceMode says whether and how the model must call tools.
type ToolChoiceMode string

// Tool choice modes, in neutral spelling (Anthropic "any" = OpenAI "required").
const (
	ToolChoiceAuto     ToolChoiceMode = "auto"
	ToolChoiceRequired ToolChoiceMode = "required"
	ToolChoiceNone     ToolChoiceMode = "none"
	ToolChoiceNamed    ToolChoiceMode = "named"
)

// ToolChoice constrains tool use; Name is set for ToolChoiceNamed.
type ToolChoice struct {
	Mode ToolChoiceMode
	Name string
}

// ThinkingMode is the requested extended-reasoning behaviour.
type ThinkingMode string

// Thinking modes.
const (
	ThinkingDisabled ThinkingMode = "disabled"
	ThinkingEnabled  ThinkingMode = "enabled"
	ThinkingAdaptive ThinkingMode = "adaptive"
)

// Thinking is the reasoning request: an explicit token budget (Anthropic
// thinking.budget_tokens) and/or a coarse effort (OpenAI reasoning_effort,
// Anthropic output_config.effort).
type Thinking struct {
	Mode         ThinkingMode
	BudgetTokens int
	Effort       string
	// Display is how Claude returns its thinking text (thinking.display:
	// "summarized", or "" for the model's default, which is "omitted",
	// the signature alone, from Opus 4.7 on).
	Display string
}

// ResponseFormat asks for structured output. Type is "json_schema" or
// "json_object"; Schema is set for json_schema.
type ResponseFormat struct {
	Type   string
	Name   string
	Schema json.RawMessage
	Strict *bool
}

// Request is a provider-neutral chat request.
type Request struct {
	Model    string
	System   []Part
	Messages []Message
	Tools    []Tool
	// ToolChoice is nil when the client did not say.
	ToolChoice *ToolChoice
	// ParallelToolCalls is nil when the client did not say.
	ParallelToolCalls *bool
	// MaxTokens is 0 when the client did not say.
	MaxTokens   int
	Temperature *float64
	TopP        *float64
	TopK        *int
	Stop        []string
	Stream      bool
	// IncludeUsage is OpenAI stream_options.include_usage as the client sent it.
	IncludeUsage   bool
	User           string
	Thinking       *Thinking
	ResponseFormat *ResponseFormat
	// N is the number of choices asked for (0 = unset).
	N int
}

// Flat input-token estimates for binary content, which a count of
// characters would overstate by orders of magnitude.
const (
	// ImageTokenEstimate is an image's estimate.
	ImageTokenEstimate = 1000
	// DocumentTokenEstimate is a PDF or other non-text document's estimate.
	DocumentTokenEstimate = 2000
)

// EstimateInputTokens is a rough count of the input tokens of r (about four
// characters a token, a flat charge for images and documents), for the
// places where a stream must report input usage before the provider has.
func (r *Request) EstimateInputTokens() int64 {
	var chars int64
	var fixed int64
	var walk func(ps []Part)
	walk = func(ps []Part) {
		for i := range ps {
			p := &ps[i]
			chars += int64(len(p.Text) + len(p.Arguments) + len(p.ToolName))
			switch p.Type {
			case PartImage:
				fixed += ImageTokenEstimate
			case PartDocument:
				if p.Text == "" {
					fixed += DocumentTokenEstimate
				}
			}
			walk(p.Content)
		}
	}
	walk(r.System)
	for i := range r.Messages {
		walk(r.Messages[i].Parts)
		fixed += 4
	}
	for i := range r.Tools {
		chars += int64(len(r.Tools[i].Name) + len(r.Tools[i].Description) + len(r.Tools[i].Parameters))
		if c := r.Tools[i].Custom; c != nil {
			chars += int64(len(c.Definition))
		}
	}
	n := chars/4 + fixed
	if n < 1 {
		n = 1
	}
	return n
}
