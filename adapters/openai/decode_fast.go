package openai

import (
	"encoding/json"
	"errors"
	"strconv"

	"github.com/tidwall/gjson"

	"github.com/metisgateway/metis/adapters/internal/wiredec"
	"github.com/metisgateway/metis/adapters/internal/wirestr"
)

// The fast request reader fills the same wire structs json.Unmarshal
// fills, from one gjson pass over the body, without reflection. It only
// accepts input it can read exactly as encoding/json would: anything
// unusual (a type mismatch, a duplicate key, a key spelt with other
// letter case, a null where a struct is expected) makes it give up, and
// DecodeRequest runs json.Unmarshal instead, so results and error
// messages stay those of encoding/json. decode_fast_test.go compares both
// readers on the golden inputs and under fuzzing.

// errSlow says the fast reader gave up; the caller must use encoding/json.
var errSlow = errors.New("openai: fast request reader gave up")

// strPtr reads a JSON string into a new *string (null is nil).
func strPtr(v gjson.Result, dst **string) bool {
	switch v.Type {
	case gjson.String:
		s := wirestr.Of(v)
		*dst = &s
		return true
	case gjson.Null:
		*dst = nil
		return true
	}
	return false
}

func boolVal(v gjson.Result, dst *bool) bool {
	switch v.Type {
	case gjson.True, gjson.False:
		*dst = v.Type == gjson.True
		return true
	case gjson.Null:
		return true
	}
	return false
}

func boolPtr(v gjson.Result, dst **bool) bool {
	switch v.Type {
	case gjson.True, gjson.False:
		b := v.Type == gjson.True
		*dst = &b
		return true
	case gjson.Null:
		*dst = nil
		return true
	}
	return false
}

// intPtr reads an integer the way encoding/json reads one into an int.
func intPtr(v gjson.Result, dst **int) bool {
	switch v.Type {
	case gjson.Number:
		n, err := strconv.ParseInt(v.Raw, 10, strconv.IntSize)
		if err != nil {
			return false
		}
		i := int(n)
		*dst = &i
		return true
	case gjson.Null:
		*dst = nil
		return true
	}
	return false
}

func floatPtr(v gjson.Result, dst **float64) bool {
	switch v.Type {
	case gjson.Number:
		f, err := strconv.ParseFloat(v.Raw, 64)
		if err != nil {
			return false
		}
		*dst = &f
		return true
	case gjson.Null:
		*dst = nil
		return true
	}
	return false
}

// raw copies a value's JSON text, as json.RawMessage does (null included).
func raw(v gjson.Result) json.RawMessage {
	return json.RawMessage(v.Raw)
}

// array calls each for the elements of a JSON array; null is an empty
// (nil) array.
func array(v gjson.Result, each func(v gjson.Result) bool) bool {
	if v.Type == gjson.Null {
		return true
	}
	if !v.IsArray() {
		return false
	}
	ok := true
	v.ForEach(func(_, e gjson.Result) bool {
		ok = each(e)
		return ok
	})
	return ok
}

var (
	requestFields = []string{
		"model", "messages", "tools", "tool_choice", "parallel_tool_calls", "max_completion_tokens",
		"max_tokens", "temperature", "top_p", "stop", "n", "stream", "stream_options", "user",
		"safety_identifier", "reasoning_effort", "response_format", "functions",
	}
	messageFields    = []string{"role", "content", "tool_calls", "tool_call_id", "refusal", "thinking_blocks"}
	thinkingFields   = []string{"type", "thinking", "signature", "data", "before_tool_call"}
	toolCallFields   = []string{"index", "id", "type", "function", "custom"}
	callFuncFields   = []string{"name", "arguments"}
	callCustomFields = []string{"name", "input"}
	toolFields       = []string{"type", "function", "cache_control", "custom"}
	toolFuncFields   = []string{"name", "description", "parameters", "strict"}
	toolCustomFields = []string{"name", "description", "format"}
	respFormatFields = []string{"type", "json_schema"}
	jsonSchemaFields = []string{"name", "schema", "strict"}
	partFields       = []string{"type", "text", "refusal", "image_url", "file", "cache_control"}
	fileFields       = []string{"file_data", "file_id", "filename"}
	includeUsage     = []string{"include_usage"}
	urlField         = []string{"url"}
)

// fillRequest reads body into in; false means use json.Unmarshal.
func fillRequest(in *inRequest, body []byte) bool {
	if !gjson.ValidBytes(body) {
		return false
	}
	return fillRequestParsed(in, gjson.ParseBytes(body))
}

// fillRequestParsed is fillRequest for a body already parsed and known to
// be valid JSON.
func fillRequestParsed(in *inRequest, root gjson.Result) bool {
	return wiredec.Fields(root, requestFields, nil, func(i int, v gjson.Result) bool {
		switch i {
		case 0:
			return wiredec.Str(v, &in.Model)
		case 1:
			if in.Messages == nil && v.IsArray() {
				in.Messages = make([]inMessage, 0, 8)
			}
			return array(v, func(e gjson.Result) bool {
				in.Messages = append(in.Messages, inMessage{})
				return fillMessage(&in.Messages[len(in.Messages)-1], e)
			})
		case 2:
			return array(v, func(e gjson.Result) bool {
				in.Tools = append(in.Tools, inTool{})
				return fillTool(&in.Tools[len(in.Tools)-1], e)
			})
		case 3:
			in.ToolChoice = raw(v)
		case 4:
			return boolPtr(v, &in.ParallelToolCalls)
		case 5:
			return intPtr(v, &in.MaxCompletionTokens)
		case 6:
			return intPtr(v, &in.MaxTokens)
		case 7:
			return floatPtr(v, &in.Temperature)
		case 8:
			return floatPtr(v, &in.TopP)
		case 9:
			in.Stop = raw(v)
		case 10:
			return intPtr(v, &in.N)
		case 11:
			return boolVal(v, &in.Stream)
		case 12:
			if v.Type == gjson.Null {
				in.StreamOptions = nil
				return true
			}
			in.StreamOptions = &inStreamOptions{}
			return wiredec.Fields(v, includeUsage, nil, func(_ int, v gjson.Result) bool {
				return boolVal(v, &in.StreamOptions.IncludeUsage)
			})
		case 13:
			return wiredec.Str(v, &in.User)
		case 14:
			return wiredec.Str(v, &in.SafetyIdentifier)
		case 15:
			return wiredec.Str(v, &in.ReasoningEffort)
		case 16:
			if v.Type == gjson.Null {
				in.ResponseFormat = nil
				return true
			}
			rf := &inRespFormat{}
			in.ResponseFormat = rf
			return wiredec.Fields(v, respFormatFields, nil, func(i int, v gjson.Result) bool {
				if i == 0 {
					return wiredec.Str(v, &rf.Type)
				}
				if v.Type == gjson.Null {
					rf.JSONSchema = nil
					return true
				}
				rf.JSONSchema = &inJSONSchema{}
				js := rf.JSONSchema
				return wiredec.Fields(v, jsonSchemaFields, nil, func(i int, v gjson.Result) bool {
					switch i {
					case 0:
						return wiredec.Str(v, &js.Name)
					case 1:
						js.Schema = raw(v)
						return true
					}
					return boolPtr(v, &js.Strict)
				})
			})
		case 17:
			in.Functions = raw(v)
		}
		return true
	})
}

func fillMessage(m *inMessage, v gjson.Result) bool {
	return wiredec.Fields(v, messageFields, nil, func(i int, v gjson.Result) bool {
		switch i {
		case 0:
			return wiredec.Str(v, &m.Role)
		case 1:
			m.content, m.parsed = v, true
			return true
		case 2:
			return array(v, func(e gjson.Result) bool {
				m.ToolCalls = append(m.ToolCalls, inToolCall{})
				return fillToolCall(&m.ToolCalls[len(m.ToolCalls)-1], e)
			})
		case 3:
			return wiredec.Str(v, &m.ToolCallID)
		case 5:
			return array(v, func(e gjson.Result) bool {
				m.ThinkingBlocks = append(m.ThinkingBlocks, ThinkingBlock{})
				b := &m.ThinkingBlocks[len(m.ThinkingBlocks)-1]
				return wiredec.Fields(e, thinkingFields, nil, func(i int, v gjson.Result) bool {
					return wiredec.Str(v, [...]*string{&b.Type, &b.Thinking, &b.Signature, &b.Data, &b.Before}[i])
				})
			})
		}
		return strPtr(v, &m.Refusal)
	})
}

func fillToolCall(tc *inToolCall, v gjson.Result) bool {
	return wiredec.Fields(v, toolCallFields, nil, func(i int, v gjson.Result) bool {
		switch i {
		case 0:
			return intPtr(v, &tc.Index)
		case 1:
			return wiredec.Str(v, &tc.ID)
		case 2:
			return wiredec.Str(v, &tc.Type)
		}
		if v.Type == gjson.Null {
			return true
		}
		if i == 4 {
			tc.Custom = &inCallCustom{}
			return wiredec.Fields(v, callCustomFields, nil, func(i int, v gjson.Result) bool {
				if i == 0 {
					return wiredec.Str(v, &tc.Custom.Name)
				}
				return strPtr(v, &tc.Custom.Input)
			})
		}
		return wiredec.Fields(v, callFuncFields, nil, func(i int, v gjson.Result) bool {
			if i == 0 {
				return wiredec.Str(v, &tc.Function.Name)
			}
			return strPtr(v, &tc.Function.Arguments)
		})
	})
}

func fillTool(t *inTool, v gjson.Result) bool {
	return wiredec.Fields(v, toolFields, nil, func(i int, v gjson.Result) bool {
		switch i {
		case 0:
			return wiredec.Str(v, &t.Type)
		case 2:
			t.CacheControl = raw(v)
			return true
		case 3:
			if v.Type == gjson.Null {
				t.Custom = nil
				return true
			}
			t.Custom = &inToolCustom{}
			c := t.Custom
			return wiredec.Fields(v, toolCustomFields, nil, func(i int, v gjson.Result) bool {
				switch i {
				case 0:
					return wiredec.Str(v, &c.Name)
				case 1:
					return wiredec.Str(v, &c.Description)
				}
				c.Format = raw(v)
				return true
			})
		}
		if v.Type == gjson.Null {
			t.Function = nil
			return true
		}
		t.Function = &inToolFunction{}
		f := t.Function
		return wiredec.Fields(v, toolFuncFields, nil, func(i int, v gjson.Result) bool {
			switch i {
			case 0:
				return wiredec.Str(v, &f.Name)
			case 1:
				return wiredec.Str(v, &f.Description)
			case 2:
				f.Parameters = raw(v)
				return true
			}
			return boolPtr(v, &f.Strict)
		})
	})
}

// fillParts reads an array of content parts; elements must be objects.
func fillParts(v gjson.Result) ([]inPart, bool) {
	parts := make([]inPart, 0, 4)
	ok := array(v, func(e gjson.Result) bool {
		parts = append(parts, inPart{})
		p := &parts[len(parts)-1]
		return wiredec.Fields(e, partFields, nil, func(i int, v gjson.Result) bool {
			switch i {
			case 0:
				return wiredec.Str(v, &p.Type)
			case 1:
				return wiredec.Str(v, &p.Text)
			case 2:
				return wiredec.Str(v, &p.Refusal)
			case 3:
				if v.Type == gjson.Null {
					p.ImageURL = nil
					return true
				}
				p.ImageURL = &inImageURL{}
				return wiredec.Fields(v, urlField, nil, func(_ int, v gjson.Result) bool { return wiredec.Str(v, &p.ImageURL.URL) })
			case 4:
				if v.Type == gjson.Null {
					p.File = nil
					return true
				}
				p.File = &inFile{}
				return wiredec.Fields(v, fileFields, nil, func(i int, v gjson.Result) bool {
					switch i {
					case 0:
						return wiredec.Str(v, &p.File.FileData)
					case 1:
						return wiredec.Str(v, &p.File.FileID)
					}
					return wiredec.Str(v, &p.File.Filename)
				})
			}
			p.CacheControl = raw(v)
			return true
		})
	})
	return parts, ok
}
