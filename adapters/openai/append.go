package openai

import (
	"strconv"

	"github.com/metisgateway/metis/adapters/internal/wirestr"
	"github.com/metisgateway/metis/internal/jsonx"
)

// Hand-written JSON for the request wire types: the bytes are exactly
// what json.Marshal writes for the same values (append_test.go checks
// this), without reflection. Field order follows the struct definitions
// in wire.go; omitempty fields are left out under the same conditions.

// marshalRequest renders out like json.Marshal(out).
func marshalRequest(out *outRequest) ([]byte, error) {
	return jsonx.Marshal(out.appendJSON)
}

func (r *outRequest) appendJSON(b []byte) ([]byte, error) {
	var err error
	b = append(b, `{"model":`...)
	b = wirestr.AppendString(b, r.Model)
	b = append(b, `,"messages":`...)
	if b, err = jsonx.AppendArray(b, r.Messages, (*outMessage).appendJSON); err != nil {
		return b, err
	}
	if len(r.Tools) > 0 {
		b = append(b, `,"tools":[`...)
		for i := range r.Tools {
			if i > 0 {
				b = append(b, ',')
			}
			f := &r.Tools[i].Function
			b = append(b, `{"type":`...)
			b = wirestr.AppendString(b, r.Tools[i].Type)
			b = append(b, `,"function":{"name":`...)
			b = wirestr.AppendString(b, f.Name)
			if f.Description != "" {
				b = append(b, `,"description":`...)
				b = wirestr.AppendString(b, f.Description)
			}
			if len(f.Parameters) > 0 {
				b = append(b, `,"parameters":`...)
				if b, err = jsonx.AppendRaw(b, f.Parameters); err != nil {
					return b, err
				}
			}
			if f.Strict != nil {
				b = append(b, `,"strict":`...)
				b = jsonx.AppendBool(b, *f.Strict)
			}
			b = append(b, "}}"...)
		}
		b = append(b, ']')
	}
	if r.ToolChoice != nil {
		b = append(b, `,"tool_choice":`...)
		switch c := r.ToolChoice.(type) {
		case string:
			b = wirestr.AppendString(b, c)
		case outNamedChoice:
			b = append(b, `{"type":`...)
			b = wirestr.AppendString(b, c.Type)
			b = append(b, `,"function":{"name":`...)
			b = wirestr.AppendString(b, c.Function.Name)
			b = append(b, "}}"...)
		default:
			if b, err = jsonx.AppendMarshal(b, c); err != nil {
				return b, err
			}
		}
	}
	if r.ParallelToolCalls != nil {
		b = append(b, `,"parallel_tool_calls":`...)
		b = jsonx.AppendBool(b, *r.ParallelToolCalls)
	}
	if r.MaxCompletionTokens != 0 {
		b = append(b, `,"max_completion_tokens":`...)
		b = strconv.AppendInt(b, int64(r.MaxCompletionTokens), 10)
	}
	if r.MaxTokens != 0 {
		b = append(b, `,"max_tokens":`...)
		b = strconv.AppendInt(b, int64(r.MaxTokens), 10)
	}
	if r.Temperature != nil {
		b = append(b, `,"temperature":`...)
		if b, err = jsonx.AppendFloat(b, *r.Temperature); err != nil {
			return b, err
		}
	}
	if r.TopP != nil {
		b = append(b, `,"top_p":`...)
		if b, err = jsonx.AppendFloat(b, *r.TopP); err != nil {
			return b, err
		}
	}
	if len(r.Stop) > 0 {
		b = append(b, `,"stop":`...)
		b = jsonx.AppendStrings(b, r.Stop)
	}
	if r.Stream {
		b = append(b, `,"stream":true`...)
	}
	if r.StreamOptions != nil {
		b = append(b, `,"stream_options":{"include_usage":`...)
		b = jsonx.AppendBool(b, r.StreamOptions.IncludeUsage)
		b = append(b, '}')
	}
	if r.User != "" {
		b = append(b, `,"user":`...)
		b = wirestr.AppendString(b, r.User)
	}
	if r.ReasoningEffort != "" {
		b = append(b, `,"reasoning_effort":`...)
		b = wirestr.AppendString(b, r.ReasoningEffort)
	}
	if rf := r.ResponseFormat; rf != nil {
		b = append(b, `,"response_format":{"type":`...)
		b = wirestr.AppendString(b, rf.Type)
		if js := rf.JSONSchema; js != nil {
			b = append(b, `,"json_schema":{"name":`...)
			b = wirestr.AppendString(b, js.Name)
			b = append(b, `,"schema":`...)
			if b, err = jsonx.AppendRaw(b, js.Schema); err != nil {
				return b, err
			}
			if js.Strict != nil {
				b = append(b, `,"strict":`...)
				b = jsonx.AppendBool(b, *js.Strict)
			}
			b = append(b, '}')
		}
		b = append(b, '}')
	}
	return append(b, '}'), nil
}

func (m *outMessage) appendJSON(b []byte) ([]byte, error) {
	var err error
	b = append(b, `{"role":`...)
	b = wirestr.AppendString(b, m.Role)
	b = append(b, `,"content":`...)
	switch c := m.Content.(type) {
	case nil:
		b = append(b, "null"...)
	case string:
		b = wirestr.AppendString(b, c)
	case []outTextPart:
		if c == nil {
			b = append(b, "null"...)
			break
		}
		b = append(b, '[')
		for i := range c {
			if i > 0 {
				b = append(b, ',')
			}
			b = c[i].appendJSON(b)
		}
		b = append(b, ']')
	case []any:
		if c == nil {
			b = append(b, "null"...)
			break
		}
		b = append(b, '[')
		for i, p := range c {
			if i > 0 {
				b = append(b, ',')
			}
			switch p := p.(type) {
			case outTextPart:
				b = p.appendJSON(b)
			case outImagePart:
				b = append(b, `{"type":`...)
				b = wirestr.AppendString(b, p.Type)
				b = append(b, `,"image_url":{"url":`...)
				b = wirestr.AppendString(b, p.ImageURL.URL)
				b = append(b, "}}"...)
			case outFilePart:
				b = append(b, `{"type":`...)
				b = wirestr.AppendString(b, p.Type)
				b = append(b, `,"file":{`...)
				if p.File.Filename != "" {
					b = append(b, `"filename":`...)
					b = wirestr.AppendString(b, p.File.Filename)
					b = append(b, ',')
				}
				b = append(b, `"file_data":`...)
				b = wirestr.AppendString(b, p.File.FileData)
				b = append(b, "}}"...)
			default:
				if b, err = jsonx.AppendMarshal(b, p); err != nil {
					return b, err
				}
			}
		}
		b = append(b, ']')
	default:
		if b, err = jsonx.AppendMarshal(b, c); err != nil {
			return b, err
		}
	}
	if len(m.ToolCalls) > 0 {
		b = append(b, `,"tool_calls":[`...)
		for i := range m.ToolCalls {
			tc := &m.ToolCalls[i]
			if i > 0 {
				b = append(b, ',')
			}
			b = tc.appendJSON(b)
		}
		b = append(b, ']')
	}
	if m.ToolCallID != "" {
		b = append(b, `,"tool_call_id":`...)
		b = wirestr.AppendString(b, m.ToolCallID)
	}
	return append(b, '}'), nil
}

func (p *outTextPart) appendJSON(b []byte) []byte {
	b = append(b, `{"type":`...)
	b = wirestr.AppendString(b, p.Type)
	b = append(b, `,"text":`...)
	b = wirestr.AppendString(b, p.Text)
	return append(b, '}')
}

// marshalResponse renders out like json.Marshal(out).
func marshalResponse(out *outResponse) ([]byte, error) {
	return jsonx.Marshal(out.appendJSON)
}

func (r *outResponse) appendJSON(b []byte) ([]byte, error) {
	b = append(b, `{"id":`...)
	b = wirestr.AppendString(b, r.ID)
	b = append(b, `,"object":`...)
	b = wirestr.AppendString(b, r.Object)
	b = append(b, `,"created":`...)
	b = strconv.AppendInt(b, r.Created, 10)
	b = append(b, `,"model":`...)
	b = wirestr.AppendString(b, r.Model)
	b = append(b, `,"choices":`...)
	b, err := jsonx.AppendArray(b, r.Choices, (*outChoice).appendJSON)
	if err != nil {
		return b, err
	}
	if u := r.Usage; u != nil {
		b = append(b, `,"usage":{"prompt_tokens":`...)
		b = strconv.AppendInt(b, u.PromptTokens, 10)
		b = append(b, `,"completion_tokens":`...)
		b = strconv.AppendInt(b, u.CompletionTokens, 10)
		b = append(b, `,"total_tokens":`...)
		b = strconv.AppendInt(b, u.TotalTokens, 10)
		b = append(b, `,"prompt_tokens_details":{"cached_tokens":`...)
		b = strconv.AppendInt(b, u.PromptTokensDetails.CachedTokens, 10)
		if u.PromptTokensDetails.CacheWriteTokens != 0 {
			b = append(b, `,"cache_write_tokens":`...)
			b = strconv.AppendInt(b, u.PromptTokensDetails.CacheWriteTokens, 10)
		}
		b = append(b, `},"completion_tokens_details":{"reasoning_tokens":`...)
		b = strconv.AppendInt(b, u.CompletionTokensDetails.ReasoningTokens, 10)
		b = append(b, "}}"...)
	}
	return append(b, '}'), nil
}

func (c *outChoice) appendJSON(b []byte) ([]byte, error) {
	m := &c.Message
	b = append(b, `{"index":`...)
	b = strconv.AppendInt(b, int64(c.Index), 10)
	b = append(b, `,"message":{"role":`...)
	b = wirestr.AppendString(b, m.Role)
	b = append(b, `,"content":`...)
	b = appendStringPtr(b, m.Content)
	b = append(b, `,"refusal":`...)
	b = appendStringPtr(b, m.Refusal)
	if len(m.ToolCalls) > 0 {
		b = append(b, `,"tool_calls":[`...)
		for i := range m.ToolCalls {
			if i > 0 {
				b = append(b, ',')
			}
			b = m.ToolCalls[i].appendJSON(b)
		}
		b = append(b, ']')
	}
	if m.ReasoningContent != "" {
		b = append(b, `,"reasoning_content":`...)
		b = wirestr.AppendString(b, m.ReasoningContent)
	}
	b = append(b, `},"logprobs":`...)
	if c.Logprobs != nil {
		b = append(b, "{}"...)
	} else {
		b = append(b, "null"...)
	}
	b = append(b, `,"finish_reason":`...)
	b = wirestr.AppendString(b, c.FinishReason)
	return append(b, '}'), nil
}

func (tc *outToolCall) appendJSON(b []byte) []byte {
	b = append(b, `{"id":`...)
	b = wirestr.AppendString(b, tc.ID)
	b = append(b, `,"type":`...)
	b = wirestr.AppendString(b, tc.Type)
	if f := tc.Function; f != nil {
		b = append(b, `,"function":{"name":`...)
		b = wirestr.AppendString(b, f.Name)
		b = append(b, `,"arguments":`...)
		b = wirestr.AppendString(b, f.Arguments)
		b = append(b, '}')
	}
	if c := tc.Custom; c != nil {
		b = append(b, `,"custom":{"name":`...)
		b = wirestr.AppendString(b, c.Name)
		b = append(b, `,"input":`...)
		b = wirestr.AppendString(b, c.Input)
		b = append(b, '}')
	}
	return append(b, '}')
}

// appendStringPtr writes a *string: null when nil.
func appendStringPtr(b []byte, s *string) []byte {
	if s == nil {
		return append(b, "null"...)
	}
	return wirestr.AppendString(b, *s)
}
