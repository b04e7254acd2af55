package anthropic

import (
	"fmt"
	"strconv"

	"github.com/tidwall/gjson"

	"github.com/metisgateway/metis/adapters/internal/wiredec"
	"github.com/metisgateway/metis/internal/jsonx"
	"github.com/metisgateway/metis/ir"
)

// The fast response reader fills inResponse from one gjson pass, the way
// json.Unmarshal fills it, and reads the usage ResponseUsage reads in the
// same pass. Like the OpenAI request reader (adapters/openai
// decode_fast.go) it gives up on anything it cannot read exactly as
// encoding/json would (a type mismatch, a repeated or case-folded key, a
// number that is not an int64, a document source), and the callers fall
// back to json.Unmarshal and ResponseUsage. response_fast_test.go compares
// both on the fixtures and under fuzzing.

// ResponseRead is a complete Messages response read once for both the
// translation and the ledger.
type ResponseRead struct {
	// Response and Err are what DecodeResponse returns for the body.
	Response *ir.Response
	Err      error
	// Usage, Meta and UsageErr are what ResponseUsage returns.
	Usage    ir.Usage
	Meta     ResponseMeta
	UsageErr error
}

// ReadResponse is DecodeResponse and ResponseUsage of body in one pass
// when it can. The strings of the returned Response may share body's
// memory: body must not be modified while the Response is in use.
func ReadResponse(body []byte) ResponseRead {
	var (
		in ResponseRead
		w  inResponse
		us usageScan
	)
	if gjson.ValidBytes(body) && fillResponse(&w, &us, gjson.Parse(jsonx.View(body))) {
		in.Response, in.Err = convertResponse(&w)
		in.Usage, in.Meta, in.UsageErr = us.result()
		return in
	}
	in.Response, in.Err = decodeResponseStd(body)
	in.Usage, in.Meta, in.UsageErr = ResponseUsage(body)
	return in
}

// usageScan holds the members of a response body ResponseUsage reads.
type usageScan struct {
	meta  ResponseMeta
	usage gjson.Result
	typ   string
	errv  gjson.Result
}

// member records one top-level member of the body (later ones win).
func (s *usageScan) member(k string, v gjson.Result) {
	switch k {
	case "id":
		s.meta.ID = usageString(v)
	case "model":
		s.meta.Model = usageString(v)
	case "stop_reason":
		s.meta.StopReason = usageString(v)
	case "type":
		s.typ = v.Str
	case "usage":
		s.usage = v
	case "error":
		s.errv = v
	}
}

// result is ResponseUsage's answer for the members seen.
func (s *usageScan) result() (ir.Usage, ResponseMeta, error) {
	var u ir.Usage
	if s.typ == "error" || s.errv.IsObject() {
		return u, s.meta, fmt.Errorf("anthropic usage: error response: %s: %s",
			s.errv.Get("type").Str, s.errv.Get("message").Str)
	}
	if !s.usage.IsObject() {
		return u, s.meta, fmt.Errorf("anthropic usage: response %q has no usage object", s.meta.ID)
	}
	sawInput, sawOutput, iters := usageApply(&u, s.usage)
	if !sawInput && !sawOutput {
		return ir.Usage{}, s.meta, fmt.Errorf("anthropic usage: response %q has a usage object without token counts", s.meta.ID)
	}
	u.SettleCacheSplit()
	if c := compactionUsage(iters); c != (ir.Usage{}) {
		u.AddPass(c)
	}
	return u, s.meta, nil
}

var (
	responseFields = []string{"id", "type", "model", "content", "stop_reason", "stop_sequence", "usage"}
	blockFields    = []string{
		"type", "text", "source", "title", "id", "name", "input", "tool_use_id",
		"content", "is_error", "thinking", "signature", "data", "cache_control",
	}
	usageFields = []string{
		"input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens", "output_tokens",
		"cache_creation", "output_tokens_details", "server_tool_use", "service_tier", "inference_geo", "speed",
	}
	cacheCreationFields = []string{"ephemeral_5m_input_tokens", "ephemeral_1h_input_tokens"}
	thinkingTokens      = []string{"thinking_tokens"}
	webSearchRequests   = []string{"web_search_requests"}
)

// fillResponse reads root (a valid JSON document) into w, passing every
// top-level member to us; false means use json.Unmarshal and
// ResponseUsage.
func fillResponse(w *inResponse, us *usageScan, root gjson.Result) bool {
	return wiredec.Fields(root, responseFields, us.member, func(i int, v gjson.Result) bool {
		switch i {
		case 0:
			return wiredec.Str(v, &w.ID)
		case 1:
			return wiredec.Str(v, &w.Type)
		case 2:
			return wiredec.Str(v, &w.Model)
		case 3:
			if v.Type == gjson.Null {
				w.Content = nil
				return true
			}
			if !v.IsArray() {
				return false
			}
			w.Content = make([]inBlock, 0, 2)
			ok := true
			v.ForEach(func(_, e gjson.Result) bool {
				w.Content = append(w.Content, inBlock{})
				ok = fillBlock(&w.Content[len(w.Content)-1], e)
				return ok
			})
			return ok
		case 4:
			return wiredec.Str(v, &w.StopReason)
		case 5:
			return wiredec.Str(v, &w.StopSequence)
		}
		if v.Type == gjson.Null {
			w.Usage = nil
			return true
		}
		w.Usage = &wireUsageCounts{}
		return fillUsage(w.Usage, v)
	})
}

// fillBlock reads one content block; a source (documents and images, not
// found in responses) is left to json.Unmarshal.
func fillBlock(b *inBlock, v gjson.Result) bool {
	return wiredec.Fields(v, blockFields, nil, func(i int, v gjson.Result) bool {
		switch i {
		case 0:
			return wiredec.Str(v, &b.Type)
		case 1:
			return wiredec.Str(v, &b.Text)
		case 2:
			return false
		case 3:
			return wiredec.Str(v, &b.Title)
		case 4:
			return wiredec.Str(v, &b.ID)
		case 5:
			return wiredec.Str(v, &b.Name)
		case 6:
			b.Input = []byte(v.Raw)
		case 7:
			return wiredec.Str(v, &b.ToolUseID)
		case 8:
			b.Content = []byte(v.Raw)
		case 9:
			switch v.Type {
			case gjson.True, gjson.False:
				b.IsError = v.Type == gjson.True
			case gjson.Null:
			default:
				return false
			}
		case 10:
			return wiredec.Str(v, &b.Thinking)
		case 11:
			return wiredec.Str(v, &b.Signature)
		case 12:
			return wiredec.Str(v, &b.Data)
		case 13:
			b.CacheControl = []byte(v.Raw)
		}
		return true
	})
}

func fillUsage(u *wireUsageCounts, v gjson.Result) bool {
	return wiredec.Fields(v, usageFields, nil, func(i int, v gjson.Result) bool {
		switch i {
		case 0:
			return fastInt64Ptr(v, &u.InputTokens)
		case 1:
			return fastInt64Ptr(v, &u.CacheCreationInputTokens)
		case 2:
			return fastInt64Ptr(v, &u.CacheReadInputTokens)
		case 3:
			return fastInt64Ptr(v, &u.OutputTokens)
		case 4:
			if v.Type == gjson.Null {
				u.CacheCreation = nil
				return true
			}
			u.CacheCreation = &struct {
				Ephemeral5m int64 `json:"ephemeral_5m_input_tokens"`
				Ephemeral1h int64 `json:"ephemeral_1h_input_tokens"`
			}{}
			c := u.CacheCreation
			return wiredec.Fields(v, cacheCreationFields, nil, func(i int, v gjson.Result) bool {
				if i == 0 {
					return fastInt64(v, &c.Ephemeral5m)
				}
				return fastInt64(v, &c.Ephemeral1h)
			})
		case 5:
			if v.Type == gjson.Null {
				u.OutputTokensDetails = nil
				return true
			}
			u.OutputTokensDetails = &struct {
				ThinkingTokens int64 `json:"thinking_tokens"`
			}{}
			d := u.OutputTokensDetails
			return wiredec.Fields(v, thinkingTokens, nil, func(_ int, v gjson.Result) bool { return fastInt64(v, &d.ThinkingTokens) })
		case 6:
			if v.Type == gjson.Null {
				u.ServerToolUse = nil
				return true
			}
			u.ServerToolUse = &struct {
				WebSearchRequests int64 `json:"web_search_requests"`
			}{}
			s := u.ServerToolUse
			return wiredec.Fields(v, webSearchRequests, nil, func(_ int, v gjson.Result) bool { return fastInt64(v, &s.WebSearchRequests) })
		case 7:
			return wiredec.Str(v, &u.ServiceTier)
		case 8:
			return wiredec.Str(v, &u.InferenceGeo)
		}
		return wiredec.Str(v, &u.Speed)
	})
}

// fastInt64 reads an integer the way encoding/json reads one into an
// int64 (null leaves *dst).
func fastInt64(v gjson.Result, dst *int64) bool {
	switch v.Type {
	case gjson.Number:
		n, err := strconv.ParseInt(v.Raw, 10, 64)
		if err != nil {
			return false
		}
		*dst = n
		return true
	case gjson.Null:
		return true
	}
	return false
}

// fastInt64Ptr reads an integer into a new *int64 (null is nil).
func fastInt64Ptr(v gjson.Result, dst **int64) bool {
	if v.Type == gjson.Null {
		*dst = nil
		return true
	}
	var n int64
	if !fastInt64(v, &n) {
		return false
	}
	*dst = &n
	return true
}
