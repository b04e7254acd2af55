package openai

import (
	"bytes"
	"encoding/json"
	"strings"

	"github.com/tidwall/gjson"
)

type inRequest struct {
	Model               string           `json:"model"`
	Messages            []inMessage      `json:"messages"`
	Tools               []inTool         `json:"tools"`
	ToolChoice          json.RawMessage  `json:"tool_choice"`
	ParallelToolCalls   *bool            `json:"parallel_tool_calls"`
	MaxCompletionTokens *int             `json:"max_completion_tokens"`
	MaxTokens           *int             `json:"max_tokens"`
	Temperature         *float64         `json:"temperature"`
	TopP                *float64         `json:"top_p"`
	Stop                json.RawMessage  `json:"stop"`
	N                   *int             `json:"n"`
	Stream              bool             `json:"stream"`
	StreamOptions       *inStreamOptions `json:"stream_options"`
	User                string           `json:"user"`
	SafetyIdentifier    string           `json:"safety_identifier"`
	ReasoningEffort     string           `json:"reasoning_effort"`
	ResponseFormat      *inRespFormat    `json:"response_format"`
	Functions           json.RawMessage  `json:"functions"`
}

type inStreamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

type inRespFormat struct {
	Type       string        `json:"type"`
	JSONSchema *inJSONSchema `json:"json_schema"`
}

type inJSONSchema struct {
	Name   string          `json:"name"`
	Schema json.RawMessage `json:"schema"`
	Strict *bool           `json:"strict"`
}

type inMessage struct {
	Role       string          `json:"role"`
	Content    json.RawMessage `json:"content"`
	ToolCalls  []inToolCall    `json:"tool_calls"`
	ToolCallID string          `json:"tool_call_id"`
	Refusal    *string         `json:"refusal"`
	// ThinkingBlocks are Claude's thinking blocks of an assistant turn
	// (LiteLLM's non-standard member; ResponsesOptions.Thinking).
	ThinkingBlocks []ThinkingBlock `json:"thinking_blocks"`

	// content is Content as read by the fast reader (parsed is set), which
	// leaves Content empty.
	content gjson.Result
	parsed  bool
}

type inPart struct {
	Type         string          `json:"type"`
	Text         string          `json:"text"`
	Refusal      string          `json:"refusal"`
	ImageURL     *inImageURL     `json:"image_url"`
	File         *inFile         `json:"file"`
	CacheControl json.RawMessage `json:"cache_control"`
}

type inImageURL struct {
	URL string `json:"url"`
}

type inFile struct {
	FileData string `json:"file_data"`
	FileID   string `json:"file_id"`
	Filename string `json:"filename"`
}

type inToolCall struct {
	Index    *int   `json:"index"`
	ID       string `json:"id"`
	Type     string `json:"type"`
	Function struct {
		Name      string  `json:"name"`
		Arguments *string `json:"arguments"`
	} `json:"function"`
	Custom *inCallCustom `json:"custom"`
}

// inCallCustom is a custom tool's call: its name and free-text input.
type inCallCustom struct {
	Name  string  `json:"name"`
	Input *string `json:"input"`
}

type inTool struct {
	Type         string          `json:"type"`
	Function     *inToolFunction `json:"function"`
	Custom       *inToolCustom   `json:"custom"`
	CacheControl json.RawMessage `json:"cache_control"`
}

// inToolCustom is a custom (free-text) tool. Format is
// {"type":"text"} or {"type":"grammar","grammar":{"definition","syntax"}}.
type inToolCustom struct {
	Name        string          `json:"name"`
	Description string          `json:"description"`
	Format      json.RawMessage `json:"format"`
}

type inToolFunction struct {
	Name        string          `json:"name"`
	Description string          `json:"description"`
	Parameters  json.RawMessage `json:"parameters"`
	Strict      *bool           `json:"strict"`
}

type inUsage struct {
	// PromptTokens and CompletionTokens are nil when absent: a usage
	// object without either (some compatible servers send {} or only
	// total_tokens) reports no usage (counted).
	PromptTokens        *int64 `json:"prompt_tokens"`
	CompletionTokens    *int64 `json:"completion_tokens"`
	PromptTokensDetails *struct {
		CachedTokens     int64 `json:"cached_tokens"`
		CacheWriteTokens int64 `json:"cache_write_tokens"`
		// CacheCreationInputTokens is Envoy AI Gateway's count of cache
		// writes, which it reports instead of cache_write_tokens.
		CacheCreationInputTokens int64 `json:"cache_creation_input_tokens"`
	} `json:"prompt_tokens_details"`
	CompletionTokensDetails *struct {
		ReasoningTokens int64 `json:"reasoning_tokens"`
	} `json:"completion_tokens_details"`
	// PromptCacheHitTokens is DeepSeek's count of cache reads, which it
	// reports instead of prompt_tokens_details.cached_tokens.
	PromptCacheHitTokens int64 `json:"prompt_cache_hit_tokens"`
}

type inRespMessage struct {
	Content   json.RawMessage `json:"content"`
	Refusal   *string         `json:"refusal"`
	ToolCalls []inToolCall    `json:"tool_calls"`
}

type inResponse struct {
	ID          looseString `json:"id"`
	Object      string      `json:"object"`
	Created     looseUnix   `json:"created"`
	Model       string      `json:"model"`
	ServiceTier string      `json:"service_tier"`
	Choices     []struct {
		Index        int           `json:"index"`
		Message      inRespMessage `json:"message"`
		FinishReason string        `json:"finish_reason"`
	} `json:"choices"`
	Usage *inUsage `json:"usage"`
}

// Encoding types.

type outFunction struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	Parameters  json.RawMessage `json:"parameters,omitempty"`
	Strict      *bool           `json:"strict,omitempty"`
}

type outTool struct {
	Type     string      `json:"type"`
	Function outFunction `json:"function"`
}

type outNamedChoice struct {
	Type     string `json:"type"`
	Function struct {
		Name string `json:"name"`
	} `json:"function"`
}

type outCallFunction struct {
	Name      string `json:"name"`
	Arguments string `json:"arguments"`
}

// outToolCall is a function call, or a custom tool's (Type "custom",
// Custom set instead of Function).
type outToolCall struct {
	ID       string           `json:"id"`
	Type     string           `json:"type"`
	Function *outCallFunction `json:"function,omitempty"`
	Custom   *outCallCustom   `json:"custom,omitempty"`
}

// outCallCustom is a custom tool's name and its input (in a stream, a
// piece of it).
type outCallCustom struct {
	Name  string `json:"name"`
	Input string `json:"input"`
}

type outTextPart struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

type outImagePart struct {
	Type     string `json:"type"`
	ImageURL struct {
		URL string `json:"url"`
	} `json:"image_url"`
}

type outFilePart struct {
	Type string `json:"type"`
	File struct {
		Filename string `json:"filename,omitempty"`
		FileData string `json:"file_data"`
	} `json:"file"`
}

type outMessage struct {
	Role       string        `json:"role"`
	Content    any           `json:"content"`
	ToolCalls  []outToolCall `json:"tool_calls,omitempty"`
	ToolCallID string        `json:"tool_call_id,omitempty"`
}

type outStreamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

type outJSONSchema struct {
	Name   string          `json:"name"`
	Schema json.RawMessage `json:"schema"`
	Strict *bool           `json:"strict,omitempty"`
}

type outRespFormat struct {
	Type       string         `json:"type"`
	JSONSchema *outJSONSchema `json:"json_schema,omitempty"`
}

type outRequest struct {
	Model               string            `json:"model"`
	Messages            []outMessage      `json:"messages"`
	Tools               []outTool         `json:"tools,omitempty"`
	ToolChoice          any               `json:"tool_choice,omitempty"`
	ParallelToolCalls   *bool             `json:"parallel_tool_calls,omitempty"`
	MaxCompletionTokens int               `json:"max_completion_tokens,omitempty"`
	MaxTokens           int               `json:"max_tokens,omitempty"`
	Temperature         *float64          `json:"temperature,omitempty"`
	TopP                *float64          `json:"top_p,omitempty"`
	Stop                []string          `json:"stop,omitempty"`
	Stream              bool              `json:"stream,omitempty"`
	StreamOptions       *outStreamOptions `json:"stream_options,omitempty"`
	User                string            `json:"user,omitempty"`
	ReasoningEffort     string            `json:"reasoning_effort,omitempty"`
	ResponseFormat      *outRespFormat    `json:"response_format,omitempty"`
}

type outPromptDetails struct {
	CachedTokens     int64 `json:"cached_tokens"`
	CacheWriteTokens int64 `json:"cache_write_tokens,omitempty"`
}

type outCompletionDetails struct {
	ReasoningTokens int64 `json:"reasoning_tokens"`
}

type outUsage struct {
	PromptTokens            int64                `json:"prompt_tokens"`
	CompletionTokens        int64                `json:"completion_tokens"`
	TotalTokens             int64                `json:"total_tokens"`
	PromptTokensDetails     outPromptDetails     `json:"prompt_tokens_details"`
	CompletionTokensDetails outCompletionDetails `json:"completion_tokens_details"`
}

type outRespMessage struct {
	Role             string        `json:"role"`
	Content          *string       `json:"content"`
	Refusal          *string       `json:"refusal"`
	ToolCalls        []outToolCall `json:"tool_calls,omitempty"`
	ReasoningContent string        `json:"reasoning_content,omitempty"`
}

type outChoice struct {
	Index        int            `json:"index"`
	Message      outRespMessage `json:"message"`
	Logprobs     *struct{}      `json:"logprobs"`
	FinishReason string         `json:"finish_reason"`
}

type outResponse struct {
	ID      string      `json:"id"`
	Object  string      `json:"object"`
	Created int64       `json:"created"`
	Model   string      `json:"model"`
	Choices []outChoice `json:"choices"`
	Usage   *outUsage   `json:"usage,omitempty"`
}

func isJSONString(raw json.RawMessage) bool {
	raw = bytes.TrimLeft(raw, " \t\r\n")
	return len(raw) > 0 && raw[0] == '"'
}

// The error shapes a stream chunk may take (chunkError).
const (
	errorNone     = iota
	errorObject   // OpenAI's {"error":{…}}
	errorText     // {"error":"text"} (TGI and servers like it)
	errorTopLevel // vLLM's {"object":"error","message":…,"type":…}
)

// chunkError reads a stream chunk's error member (its raw JSON, "" when
// absent) and its object member as the OpenAI SDKs do (`if (data.error)`):
// an object, or a string with text in it, is an error; null, false and ""
// are not, as servers that write their whole struct send them in every
// chunk (review 25R2: "error":"" made a whole answer a free error). A
// chunk with no error member whose object is "error" is vLLM's.
func chunkError(errv, object string) int {
	switch e := gjson.Parse(errv); {
	case e.IsObject():
		return errorObject
	case e.Type == gjson.String && strings.TrimSpace(e.Str) != "":
		return errorText
	case errv == "" && object == `"error"`:
		return errorTopLevel
	}
	return errorNone
}

func isJSONNull(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) == 0 || string(raw) == "null"
}

// counted reports whether u holds token counts: a prompt_tokens or
// completion_tokens member. A usage object without both reports nothing,
// and the call is estimated rather than read as zero tokens.
func (u *inUsage) counted() bool {
	return u != nil && (u.PromptTokens != nil || u.CompletionTokens != nil)
}

// looseString is an id member that some compatible servers send as a
// number: its digits are kept; any other non-string value reads as "".
type looseString string

// UnmarshalJSON implements json.Unmarshaler.
func (s *looseString) UnmarshalJSON(b []byte) error {
	switch v := gjson.ParseBytes(b); v.Type {
	case gjson.String:
		var str string
		if err := json.Unmarshal(b, &str); err != nil {
			return err
		}
		*s = looseString(str)
	case gjson.Number:
		*s = looseString(v.Raw)
	default:
		*s = ""
	}
	return nil
}

// looseUnix is a created member in Unix seconds that some compatible
// servers send as a float or a numeric string; a value it cannot read is
// 0, for which the answer takes the request's time (LOSSY.md #27).
type looseUnix int64

// UnmarshalJSON implements json.Unmarshaler.
func (t *looseUnix) UnmarshalJSON(b []byte) error {
	v := gjson.ParseBytes(b)
	*t = 0
	if v.Type == gjson.String {
		v = gjson.Parse(v.Str)
	}
	if v.Type == gjson.Number && v.Num > 0 && v.Num < 1<<53 {
		*t = looseUnix(v.Num)
	}
	return nil
}
