package anthropic

import (
	"bytes"
	"encoding/json"

	"github.com/tidwall/gjson"
)

// Wire types for decoding. Unknown fields are ignored; pieces that pass
// through untouched stay json.RawMessage.

type inBlock struct {
	Type         string          `json:"type"`
	Text         string          `json:"text"`
	Source       *inSource       `json:"source"`
	Title        string          `json:"title"`
	ID           string          `json:"id"`
	Name         string          `json:"name"`
	ToolName     string          `json:"tool_name"`
	Input        json.RawMessage `json:"input"`
	ToolUseID    string          `json:"tool_use_id"`
	Content      json.RawMessage `json:"content"`
	IsError      bool            `json:"is_error"`
	Thinking     string          `json:"thinking"`
	Signature    string          `json:"signature"`
	Data         string          `json:"data"`
	CacheControl json.RawMessage `json:"cache_control"`

	// content is Content as read from the request body by readBlock.
	content gjson.Result
}

type inSource struct {
	Type      string          `json:"type"`
	MediaType string          `json:"media_type"`
	Data      string          `json:"data"`
	URL       string          `json:"url"`
	Content   json.RawMessage `json:"content"`
}

type wireUsageCounts struct {
	InputTokens              *int64 `json:"input_tokens"`
	CacheCreationInputTokens *int64 `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     *int64 `json:"cache_read_input_tokens"`
	OutputTokens             *int64 `json:"output_tokens"`
	CacheCreation            *struct {
		Ephemeral5m int64 `json:"ephemeral_5m_input_tokens"`
		Ephemeral1h int64 `json:"ephemeral_1h_input_tokens"`
	} `json:"cache_creation"`
	OutputTokensDetails *struct {
		ThinkingTokens int64 `json:"thinking_tokens"`
	} `json:"output_tokens_details"`
	ServerToolUse *struct {
		WebSearchRequests int64 `json:"web_search_requests"`
	} `json:"server_tool_use"`
	ServiceTier  string `json:"service_tier"`
	InferenceGeo string `json:"inference_geo"`
	Speed        string `json:"speed"`
}

// counted reports whether w holds token counts (input_tokens or
// output_tokens): a usage object with neither ({}, as some compatible
// servers send) reports nothing.
func (w *wireUsageCounts) counted() bool {
	return w != nil && (w.InputTokens != nil || w.OutputTokens != nil)
}

type inResponse struct {
	ID           string           `json:"id"`
	Type         string           `json:"type"`
	Model        string           `json:"model"`
	Content      []inBlock        `json:"content"`
	StopReason   string           `json:"stop_reason"`
	StopSequence string           `json:"stop_sequence"`
	Usage        *wireUsageCounts `json:"usage"`
}

// Wire types for encoding, one per block kind so required fields are
// always written.

type outText struct {
	Type         string          `json:"type"`
	Text         string          `json:"text"`
	CacheControl json.RawMessage `json:"cache_control,omitempty"`
}

type outSource struct {
	Type      string `json:"type"`
	MediaType string `json:"media_type,omitempty"`
	Data      string `json:"data,omitempty"`
	URL       string `json:"url,omitempty"`
}

type outMedia struct {
	Type         string          `json:"type"`
	Source       outSource       `json:"source"`
	Title        string          `json:"title,omitempty"`
	CacheControl json.RawMessage `json:"cache_control,omitempty"`
}

type outToolUse struct {
	Type         string          `json:"type"`
	ID           string          `json:"id"`
	Name         string          `json:"name"`
	Input        json.RawMessage `json:"input"`
	CacheControl json.RawMessage `json:"cache_control,omitempty"`
}

type outToolResult struct {
	Type         string          `json:"type"`
	ToolUseID    string          `json:"tool_use_id"`
	Content      []any           `json:"content,omitempty"`
	IsError      bool            `json:"is_error,omitempty"`
	CacheControl json.RawMessage `json:"cache_control,omitempty"`
}

type outThinking struct {
	Type      string `json:"type"`
	Thinking  string `json:"thinking"`
	Signature string `json:"signature"`
}

type outRedacted struct {
	Type string `json:"type"`
	Data string `json:"data"`
}

type outMessage struct {
	Role    string `json:"role"`
	Content []any  `json:"content"`
}

type outTool struct {
	Name         string          `json:"name"`
	Description  string          `json:"description,omitempty"`
	InputSchema  json.RawMessage `json:"input_schema"`
	CacheControl json.RawMessage `json:"cache_control,omitempty"`
}

type outToolChoice struct {
	Type                   string `json:"type"`
	Name                   string `json:"name,omitempty"`
	DisableParallelToolUse bool   `json:"disable_parallel_tool_use,omitempty"`
}

type outThinkingCfg struct {
	Type         string `json:"type"`
	BudgetTokens int    `json:"budget_tokens,omitempty"`
	Display      string `json:"display,omitempty"`
}

type outFormat struct {
	Type   string          `json:"type"`
	Schema json.RawMessage `json:"schema"`
}

type outOutputConfig struct {
	Effort string     `json:"effort,omitempty"`
	Format *outFormat `json:"format,omitempty"`
}

type outMetadata struct {
	UserID string `json:"user_id"`
}

type outRequest struct {
	Model         string           `json:"model"`
	MaxTokens     int              `json:"max_tokens"`
	System        []outText        `json:"system,omitempty"`
	Messages      []outMessage     `json:"messages"`
	Tools         []outTool        `json:"tools,omitempty"`
	ToolChoice    *outToolChoice   `json:"tool_choice,omitempty"`
	StopSequences []string         `json:"stop_sequences,omitempty"`
	Temperature   *float64         `json:"temperature,omitempty"`
	TopP          *float64         `json:"top_p,omitempty"`
	TopK          *int             `json:"top_k,omitempty"`
	Metadata      *outMetadata     `json:"metadata,omitempty"`
	Thinking      *outThinkingCfg  `json:"thinking,omitempty"`
	OutputConfig  *outOutputConfig `json:"output_config,omitempty"`
	Stream        bool             `json:"stream,omitempty"`
	// betas are the anthropic-beta values the request needs (not sent
	// in the body).
	betas []string
}

type outUsage struct {
	InputTokens              int64 `json:"input_tokens"`
	CacheCreationInputTokens int64 `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     int64 `json:"cache_read_input_tokens"`
	OutputTokens             int64 `json:"output_tokens"`
}

type outResponse struct {
	ID           string   `json:"id"`
	Type         string   `json:"type"`
	Role         string   `json:"role"`
	Model        string   `json:"model"`
	Content      []any    `json:"content"`
	StopReason   *string  `json:"stop_reason"`
	StopSequence *string  `json:"stop_sequence"`
	Usage        outUsage `json:"usage"`
}

// isJSONString reports whether raw holds a JSON string (after whitespace).
func isJSONString(raw json.RawMessage) bool {
	raw = bytes.TrimLeft(raw, " \t\r\n")
	return len(raw) > 0 && raw[0] == '"'
}

// isJSONNull reports whether raw is absent or JSON null.
func isJSONNull(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) == 0 || string(raw) == "null"
}
