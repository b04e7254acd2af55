package anthropic

import (
	"encoding/json"
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
	b = append(b, `,"max_tokens":`...)
	b = strconv.AppendInt(b, int64(r.MaxTokens), 10)
	if len(r.System) > 0 {
		b = append(b, `,"system":`...)
		if b, err = jsonx.AppendArray(b, r.System, (*outText).appendJSON); err != nil {
			return b, err
		}
	}
	b = append(b, `,"messages":`...)
	if b, err = jsonx.AppendArray(b, r.Messages, (*outMessage).appendJSON); err != nil {
		return b, err
	}
	if len(r.Tools) > 0 {
		b = append(b, `,"tools":`...)
		if b, err = jsonx.AppendArray(b, r.Tools, (*outTool).appendJSON); err != nil {
			return b, err
		}
	}
	if c := r.ToolChoice; c != nil {
		b = append(b, `,"tool_choice":{"type":`...)
		b = wirestr.AppendString(b, c.Type)
		if c.Name != "" {
			b = append(b, `,"name":`...)
			b = wirestr.AppendString(b, c.Name)
		}
		if c.DisableParallelToolUse {
			b = append(b, `,"disable_parallel_tool_use":true`...)
		}
		b = append(b, '}')
	}
	if len(r.StopSequences) > 0 {
		b = append(b, `,"stop_sequences":`...)
		b = jsonx.AppendStrings(b, r.StopSequences)
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
	if r.TopK != nil {
		b = append(b, `,"top_k":`...)
		b = strconv.AppendInt(b, int64(*r.TopK), 10)
	}
	if r.Metadata != nil {
		b = append(b, `,"metadata":{"user_id":`...)
		b = wirestr.AppendString(b, r.Metadata.UserID)
		b = append(b, '}')
	}
	if t := r.Thinking; t != nil {
		b = append(b, `,"thinking":{"type":`...)
		b = wirestr.AppendString(b, t.Type)
		if t.BudgetTokens != 0 {
			b = append(b, `,"budget_tokens":`...)
			b = strconv.AppendInt(b, int64(t.BudgetTokens), 10)
		}
		if t.Display != "" {
			b = append(b, `,"display":`...)
			b = wirestr.AppendString(b, t.Display)
		}
		b = append(b, '}')
	}
	if oc := r.OutputConfig; oc != nil {
		b = append(b, `,"output_config":{`...)
		comma := false
		if oc.Effort != "" {
			b = append(b, `"effort":`...)
			b = wirestr.AppendString(b, oc.Effort)
			comma = true
		}
		if f := oc.Format; f != nil {
			if comma {
				b = append(b, ',')
			}
			b = append(b, `"format":{"type":`...)
			b = wirestr.AppendString(b, f.Type)
			b = append(b, `,"schema":`...)
			if b, err = jsonx.AppendRaw(b, f.Schema); err != nil {
				return b, err
			}
			b = append(b, '}')
		}
		b = append(b, '}')
	}
	if r.Stream {
		b = append(b, `,"stream":true`...)
	}
	return append(b, '}'), nil
}

// appendCacheControl writes an omitempty cache_control member.
func appendCacheControl(b []byte, cc json.RawMessage) ([]byte, error) {
	if len(cc) == 0 {
		return b, nil
	}
	b = append(b, `,"cache_control":`...)
	return jsonx.AppendRaw(b, cc)
}

func (t *outText) appendJSON(b []byte) ([]byte, error) {
	b = append(b, `{"type":`...)
	b = wirestr.AppendString(b, t.Type)
	b = append(b, `,"text":`...)
	b = wirestr.AppendString(b, t.Text)
	b, err := appendCacheControl(b, t.CacheControl)
	return append(b, '}'), err
}

func (m *outMessage) appendJSON(b []byte) ([]byte, error) {
	b = append(b, `{"role":`...)
	b = wirestr.AppendString(b, m.Role)
	b = append(b, `,"content":`...)
	b, err := appendBlocks(b, m.Content)
	return append(b, '}'), err
}

// appendBlocks writes a []any of content blocks (nil is null).
func appendBlocks(b []byte, blocks []any) ([]byte, error) {
	if blocks == nil {
		return append(b, "null"...), nil
	}
	b = append(b, '[')
	var err error
	for i, blk := range blocks {
		if i > 0 {
			b = append(b, ',')
		}
		if b, err = appendBlock(b, blk); err != nil {
			return b, err
		}
	}
	return append(b, ']'), nil
}

func appendBlock(b []byte, blk any) ([]byte, error) {
	var err error
	switch v := blk.(type) {
	case outText:
		return v.appendJSON(b)
	case outMedia:
		b = append(b, `{"type":`...)
		b = wirestr.AppendString(b, v.Type)
		b = append(b, `,"source":{"type":`...)
		b = wirestr.AppendString(b, v.Source.Type)
		if v.Source.MediaType != "" {
			b = append(b, `,"media_type":`...)
			b = wirestr.AppendString(b, v.Source.MediaType)
		}
		if v.Source.Data != "" {
			b = append(b, `,"data":`...)
			b = wirestr.AppendString(b, v.Source.Data)
		}
		if v.Source.URL != "" {
			b = append(b, `,"url":`...)
			b = wirestr.AppendString(b, v.Source.URL)
		}
		b = append(b, '}')
		if v.Title != "" {
			b = append(b, `,"title":`...)
			b = wirestr.AppendString(b, v.Title)
		}
		b, err = appendCacheControl(b, v.CacheControl)
	case outToolUse:
		b = append(b, `{"type":`...)
		b = wirestr.AppendString(b, v.Type)
		b = append(b, `,"id":`...)
		b = wirestr.AppendString(b, v.ID)
		b = append(b, `,"name":`...)
		b = wirestr.AppendString(b, v.Name)
		b = append(b, `,"input":`...)
		if b, err = jsonx.AppendRaw(b, v.Input); err != nil {
			return b, err
		}
		b, err = appendCacheControl(b, v.CacheControl)
	case outToolResult:
		b = append(b, `{"type":`...)
		b = wirestr.AppendString(b, v.Type)
		b = append(b, `,"tool_use_id":`...)
		b = wirestr.AppendString(b, v.ToolUseID)
		if len(v.Content) > 0 {
			b = append(b, `,"content":`...)
			if b, err = appendBlocks(b, v.Content); err != nil {
				return b, err
			}
		}
		if v.IsError {
			b = append(b, `,"is_error":true`...)
		}
		b, err = appendCacheControl(b, v.CacheControl)
	case outThinking:
		b = append(b, `{"type":`...)
		b = wirestr.AppendString(b, v.Type)
		b = append(b, `,"thinking":`...)
		b = wirestr.AppendString(b, v.Thinking)
		b = append(b, `,"signature":`...)
		b = wirestr.AppendString(b, v.Signature)
	case outRedacted:
		b = append(b, `{"type":`...)
		b = wirestr.AppendString(b, v.Type)
		b = append(b, `,"data":`...)
		b = wirestr.AppendString(b, v.Data)
	default:
		// Not produced by EncodeRequest; kept correct for any value.
		return jsonx.AppendMarshal(b, v)
	}
	return append(b, '}'), err
}

func (t *outTool) appendJSON(b []byte) ([]byte, error) {
	b = append(b, `{"name":`...)
	b = wirestr.AppendString(b, t.Name)
	if t.Description != "" {
		b = append(b, `,"description":`...)
		b = wirestr.AppendString(b, t.Description)
	}
	b = append(b, `,"input_schema":`...)
	b, err := jsonx.AppendRaw(b, t.InputSchema)
	if err != nil {
		return b, err
	}
	b, err = appendCacheControl(b, t.CacheControl)
	return append(b, '}'), err
}
