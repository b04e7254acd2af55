package fakeupstream

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// The answers of the synthesized default replies: DefaultAnthropicText
// after a tool_result (the recorded second turn's words), DefaultText to a
// request without tools.
const (
	DefaultAnthropicText = "The current temperature in San Francisco is 68 degrees Fahrenheit."
	DefaultText          = "Hello! How can I help you today?"
	DefaultOpenAIText    = DefaultText
)

// request is the part of an Anthropic or OpenAI request body the defaults
// look at.
type request struct {
	Model         string            `json:"model"`
	Stream        bool              `json:"stream"`
	Tools         []json.RawMessage `json:"tools"`
	StreamOptions *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
	Messages []struct {
		Role    string          `json:"role"`
		Content json.RawMessage `json:"content"`
	} `json:"messages"`
}

func parseRequest(body string) request {
	var r request
	_ = json.Unmarshal([]byte(body), &r)
	return r
}

// lastUserHasToolResult reports whether the last user message of an
// Anthropic request carries a tool_result block.
func (r request) lastUserHasToolResult() bool {
	for i := len(r.Messages) - 1; i >= 0; i-- {
		m := r.Messages[i]
		if m.Role != "user" {
			continue
		}
		var blocks []struct {
			Type string `json:"type"`
		}
		if json.Unmarshal(m.Content, &blocks) != nil {
			return false
		}
		for _, b := range blocks {
			if b.Type == "tool_result" {
				return true
			}
		}
		return false
	}
	return false
}

// hasToolMessage reports whether an OpenAI request carries a tool message.
func (r request) hasToolMessage() bool {
	for _, m := range r.Messages {
		if m.Role == "tool" {
			return true
		}
	}
	return false
}

// estimateTokens is the fake's token count for a request body: about one
// token per four bytes, as the providers' rough estimators do.
func estimateTokens(body string) int {
	return len(body)/4 + 1
}

// DefaultReply is the reply served for a request when nothing is queued
// for its path:
//
//   - POST /v1/messages, stream: the recorded text-then-tool_use stream
//     when the request has tools and its last user message is not a
//     tool_result, else a synthesized end_turn text stream in the recorded
//     format (DefaultAnthropicText after a tool_result, else DefaultText).
//     Not streamed: the recorded tool_use turn, or after a tool_result the
//     recorded end_turn turn, or without tools a synthesized end_turn
//     message saying DefaultText.
//   - POST /v1/messages/count_tokens: {"input_tokens": N} from the body size.
//   - POST /v1/chat/completions, stream: the recorded parallel tool-call
//     stream when the request has tools and no tool message, else the
//     recorded gpt-5-nano stream; both carry usage:null and the usage chunk
//     only when stream_options.include_usage was asked. Not streamed: the
//     recorded tool-call completion, or a synthesized text completion.
//   - POST /v1/responses: a synthesized Responses API answer with
//     DefaultOpenAIText (ResponsesAnswer), streamed when asked.
//   - GET /v1/models: an Anthropic list when anthropic-version is sent,
//     else an OpenAI list.
//   - HEAD or GET /api/hello: 200.
//   - anything else: 404 in the shape the path suggests.
func DefaultReply(rec *Recorded) Reply {
	path := rec.Path
	switch {
	case path == "/v1/messages" && rec.Method == http.MethodPost:
		req := parseRequest(rec.Body)
		toolTurn := len(req.Tools) > 0 && !req.lastUserHasToolResult()
		text := DefaultText
		if req.lastUserHasToolResult() {
			text = DefaultAnthropicText
		}
		if req.Stream {
			if toolTurn {
				return FromFixture(FixtureAnthropicStream, 0)
			}
			return AnthropicStream(req.Model, estimateTokens(rec.Body), "end_turn", TextBlock(text))
		}
		if toolTurn {
			return FromFixture(FixtureAnthropicNonStream, 0)
		}
		if req.lastUserHasToolResult() {
			return FromFixture(FixtureAnthropicNonStream, 1)
		}
		return AnthropicMessage(req.Model, estimateTokens(rec.Body), "end_turn", TextBlock(text))

	case path == "/v1/messages/count_tokens" && rec.Method == http.MethodPost:
		return Reply{
			Header: http.Header{"Content-Type": {"application/json"}, "Request-Id": {NewID("req_011CU")}},
			Body:   fmt.Sprintf(`{"input_tokens":%d}`, estimateTokens(rec.Body)),
		}

	case path == "/v1/chat/completions" && rec.Method == http.MethodPost:
		req := parseRequest(rec.Body)
		toolTurn := len(req.Tools) > 0 && !req.hasToolMessage()
		if req.Stream {
			name := FixtureOpenAIStream
			if toolTurn {
				name = FixtureOpenAIToolsStream
			}
			r := FromFixture(name, 0)
			if req.StreamOptions == nil || !req.StreamOptions.IncludeUsage {
				r.Events = WithoutUsage(r.Events)
			}
			return r
		}
		if toolTurn {
			return FromFixture(FixtureOpenAINonStream, 0)
		}
		return OpenAICompletion(req.Model, DefaultOpenAIText, estimateTokens(rec.Body))

	case path == "/v1/responses" && rec.Method == http.MethodPost:
		req := parseRequest(rec.Body)
		a := ResponsesAnswer{Model: req.Model, InputTokens: estimateTokens(rec.Body), Text: DefaultOpenAIText}
		if req.Stream {
			return a.Stream()
		}
		return a.Body()

	case path == "/v1/models" && rec.Method == http.MethodGet:
		if rec.Header.Get("Anthropic-Version") != "" {
			return Reply{Header: http.Header{"Content-Type": {"application/json"}, "Request-Id": {NewID("req_011CU")}}, Body: anthropicModels}
		}
		return Reply{Header: http.Header{"Content-Type": {"application/json"}, "X-Request-Id": {NewID("req_")}}, Body: openAIModels}

	case path == "/api/hello" && (rec.Method == http.MethodHead || rec.Method == http.MethodGet):
		return Reply{Header: http.Header{"Content-Type": {"text/plain; charset=utf-8"}}}
	}
	if strings.HasPrefix(path, "/v1/chat") || strings.HasPrefix(path, "/v1/completions") || strings.HasPrefix(path, "/v1/embeddings") {
		return OpenAIError(http.StatusNotFound, "invalid_request_error", "unknown_url", fmt.Sprintf("Invalid URL (%s %s)", rec.Method, path))
	}
	return AnthropicError(http.StatusNotFound, "not_found_error", fmt.Sprintf("Not found: %s %s", rec.Method, path))
}

func defaultReply(rec *Recorded) Reply { return DefaultReply(rec) }

// WithoutUsage turns a recorded OpenAI stream made with
// stream_options.include_usage into what the API sends without it: the
// final "choices":[] usage chunk is dropped and "usage":null is removed
// from the other chunks. Other bytes are untouched.
func WithoutUsage(events []string) []string {
	out := make([]string, 0, len(events))
	for _, ev := range events {
		if strings.Contains(ev, `"choices":[]`) && strings.Contains(ev, `"usage":{`) {
			continue
		}
		out = append(out, strings.Replace(ev, `"usage":null,`, "", 1))
	}
	return out
}

const anthropicModels = `{"data":[{"type":"model","id":"claude-sonnet-4-5-20250929","display_name":"Claude Sonnet 4.5","created_at":"2025-09-29T00:00:00Z"},{"type":"model","id":"claude-haiku-4-5-20251001","display_name":"Claude Haiku 4.5","created_at":"2025-10-15T00:00:00Z"},{"type":"model","id":"claude-3-7-sonnet-20250219","display_name":"Claude Sonnet 3.7","created_at":"2025-02-24T00:00:00Z"}],"has_more":false,"first_id":"claude-sonnet-4-5-20250929","last_id":"claude-3-7-sonnet-20250219"}`

const openAIModels = `{
  "object": "list",
  "data": [
    {
      "id": "gpt-5-nano",
      "object": "model",
      "created": 1754426384,
      "owned_by": "system"
    },
    {
      "id": "gpt-5-mini",
      "object": "model",
      "created": 1754425928,
      "owned_by": "system"
    },
    {
      "id": "gpt-4o",
      "object": "model",
      "created": 1715367049,
      "owned_by": "system"
    }
  ]
}`
