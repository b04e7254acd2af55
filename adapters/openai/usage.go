package openai

// Usage extraction from OpenAI Chat Completions responses and streams, and
// the stream_options.include_usage injection the gateway needs to price
// streamed calls. Bodies are only observed (gjson); the injection edits the
// request with sjson so every other byte stays as the client sent it.

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/metisgateway/metis/internal/jsonx"
	"github.com/metisgateway/metis/ir"
	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"
)

// ResponseMeta identifies an OpenAI response for the call log. For a
// Responses API answer FinishReason holds the response's status
// (completed, incomplete, failed).
type ResponseMeta struct {
	ID           string
	Model        string
	FinishReason string
}

// ResponseUsage reads the usage, id, model and first choice's finish reason
// of a complete chat.completion body, normalised to ir.Usage:
// InputTokens = prompt − cached − cache_write (never negative),
// CacheReadInputTokens = prompt_tokens_details.cached_tokens (DeepSeek's
// prompt_cache_hit_tokens when it gives none),
// CacheCreationInputTokens = prompt_tokens_details.cache_write_tokens
// (Envoy AI Gateway's cache_creation_input_tokens there when it gives none;
// all of them 5-minute writes, see usageFrom),
// OutputTokens = completion_tokens (reasoning included), ReasoningTokens =
// completion_tokens_details.reasoning_tokens, ServiceTier = the response's
// service_tier. It fails on a non-object, an error body, missing usage or
// a usage object with neither prompt_tokens nor completion_tokens.
func ResponseUsage(body []byte) (ir.Usage, ResponseMeta, error) {
	var (
		u       ir.Usage
		meta    ResponseMeta
		usage   gjson.Result
		errv    gjson.Result
		tier    string
		choices gjson.Result
	)
	root := gjson.Parse(jsonx.View(body))
	if !root.IsObject() {
		return u, meta, fmt.Errorf("openai usage: response body is not a JSON object")
	}
	root.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "id":
			meta.ID = usageString(v)
		case "model":
			meta.Model = usageString(v)
		case "service_tier":
			tier = usageString(v)
		case "choices":
			choices = v
		case "usage":
			usage = v
		case "error":
			errv = v
		}
		return true
	})
	if errv.IsObject() {
		typ, msg := usageErrorFields(errv)
		return u, meta, fmt.Errorf("openai usage: error response: %s: %s", typ, msg)
	}
	meta.FinishReason = usageString(choices.Get("0.finish_reason"))
	if !usage.IsObject() {
		return u, meta, fmt.Errorf("openai usage: response %q has no usage object", meta.ID)
	}
	u, counted := usageFrom(usage)
	if !counted {
		return ir.Usage{}, meta, fmt.Errorf("openai usage: response %q has a usage object without token counts", meta.ID)
	}
	u.ServiceTier = tier
	return u, meta, nil
}

// StreamTracker follows an OpenAI chat.completion.chunk stream payload by
// payload. The zero value is ready to use; it is not safe for concurrent
// use.
type StreamTracker struct {
	// NoUsageAsked says the request did not ask for the usage chunk: a
	// finish reason then ends the answer, with or without [DONE] after it.
	NoUsageAsked bool
	usage        ir.Usage
	gotUsage     bool // a usage chunk with token counts
	usageChunk   bool // a usage chunk, with counts or not
	tier         string
	meta         ResponseMeta
	done         bool
	sawContent   bool
	deltaBytes   int64 // streamed content, refusal, reasoning and tool-argument bytes
	errType      string
	errMsg       string
	hasErr       bool
}

// Observe feeds the payload of one `data:` line. It returns true when the
// chunk is the include_usage chunk (choices empty, usage non-null), which
// the gateway hides from a client that did not ask for it. "[DONE]" is
// noted; malformed payloads are ignored.
func (t *StreamTracker) Observe(data []byte) (usageOnly bool) {
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		return false
	}
	if data[0] != '{' {
		if string(data) == "[DONE]" {
			t.done = true
		}
		return false
	}
	var choices, usage, errv, object, errType string
	jsonx.Members(jsonx.View(data), func(k, raw string) bool {
		switch k {
		case "id":
			if t.meta.ID == "" {
				t.meta.ID = usageString(gjson.Parse(raw))
			}
		case "model":
			if t.meta.Model == "" {
				t.meta.Model = usageString(gjson.Parse(raw))
			}
		case "service_tier":
			if v := gjson.Parse(raw); v.Type == gjson.String && v.Str != t.tier {
				t.tier = usageString(v)
			}
		case "choices":
			choices = raw
		case "usage":
			usage = raw
		case "error":
			errv = raw
		case "object":
			object = raw
		case "error_type":
			errType = raw
		}
		return true
	})
	// An error the tracker misses is relayed unscrubbed and recorded as a
	// cut stream (review 25R).
	switch chunkError(errv, object) {
	case errorObject:
		t.errType, t.errMsg = usageErrorFields(gjson.Parse(errv))
		t.hasErr = true
	case errorText:
		// TGI's {"error":"Model is overloaded","error_type":"overloaded"}.
		t.errType, t.errMsg = usageString(gjson.Parse(errType)), usageString(gjson.Parse(errv))
		t.hasErr = true
	case errorTopLevel:
		t.errType, t.errMsg = usageErrorFields(gjson.Parse(jsonx.View(data)))
		t.hasErr = true
	}
	anyChoice := false
	if c := gjson.Parse(choices); c.IsArray() {
		c.ForEach(func(_, c gjson.Result) bool {
			anyChoice = true
			t.usageObserveChoice(c.Raw)
			return true
		})
	}
	if u := gjson.Parse(usage); u.IsObject() {
		if uu, counted := usageFrom(u); counted {
			t.usage, t.gotUsage = uu, true
		}
		t.usageChunk = true
		return !anyChoice
	}
	return false
}

// usageObserveChoice notes one choice of a chunk: finish reason, content
// seen and the bytes used to estimate output when no usage chunk arrives.
func (t *StreamTracker) usageObserveChoice(choice string) {
	jsonx.Members(choice, func(k, raw string) bool {
		switch k {
		case "finish_reason":
			if v := gjson.Parse(raw); v.Type == gjson.String && t.meta.FinishReason == "" {
				t.meta.FinishReason = usageString(v)
			}
		case "delta":
			jsonx.Members(raw, func(k, raw string) bool {
				switch k {
				case "content", "refusal", "reasoning_content", "reasoning":
					if n := jsonx.StringLen(raw); n > 0 {
						t.deltaBytes += int64(n)
						t.sawContent = true
					}
				case "tool_calls":
					if calls := gjson.Parse(raw); calls.IsArray() {
						calls.ForEach(func(_, tc gjson.Result) bool {
							t.sawContent = true
							jsonx.Members(tc.Raw, func(k, raw string) bool {
								if k == "function" {
									jsonx.Members(raw, func(k, raw string) bool {
										if k == "arguments" {
											t.deltaBytes += int64(jsonx.StringLen(raw))
										}
										return true
									})
								}
								return true
							})
							return true
						})
					}
				}
				return true
			})
		}
		return true
	})
}

// Usage returns the usage from the include_usage chunk. Without one (the
// client cut the stream, the upstream ignored include_usage, or its usage
// chunk held no token counts) the output is estimated as a quarter of the
// streamed content/refusal/tool-argument bytes, input is unknown (0) and
// Estimated is set.
func (t *StreamTracker) Usage() ir.Usage {
	u := t.usage
	if !t.gotUsage {
		u = ir.Usage{OutputTokens: ir.EstimateTokens(t.deltaBytes), Estimated: true}
	}
	u.ServiceTier = t.tier
	return u
}

// Meta returns the completion id, model and first finish reason seen.
func (t *StreamTracker) Meta() ResponseMeta { return t.meta }

// Done reports whether the `data: [DONE]` terminator was seen.
func (t *StreamTracker) Done() bool { return t.done }

// Complete reports whether the answer is whole: the `data: [DONE]`
// terminator was seen, or a finish reason and then the usage chunk, which
// OpenAI sends last before [DONE]; OpenAI-compatible servers that end the
// stream there without the terminator sent all of it. Without a usage
// chunk asked for (NoUsageAsked), the finish reason alone is enough.
func (t *StreamTracker) Complete() bool {
	return t.done || t.meta.FinishReason != "" && (t.usageChunk || t.NoUsageAsked)
}

// Err returns the type (or code, when type is empty or only the code says
// rate_limit) and message of a `{"error":{…}}` chunk.
func (t *StreamTracker) Err() (errType, message string, ok bool) {
	return t.errType, t.errMsg, t.hasErr
}

// SawContent reports whether a content, refusal, reasoning or tool-call
// delta was seen (time to first token).
func (t *StreamTracker) SawContent() bool { return t.sawContent }

// InjectIncludeUsage makes a streamed request ask for the usage chunk. For
// a body with "stream": true whose stream_options.include_usage is not
// already true, it returns a copy with stream_options.include_usage set to
// true, every other byte unchanged (a non-object stream_options is
// replaced). clientAsked reports that the client had asked itself, in which
// case body is returned as is. Bodies without "stream": true are returned
// unchanged (OpenAI rejects stream_options there).
func InjectIncludeUsage(body []byte) (out []byte, clientAsked bool, err error) {
	s := jsonx.View(body)
	if !gjson.Valid(s) {
		return nil, false, fmt.Errorf("openai: injecting include_usage: request body is not valid JSON")
	}
	root := gjson.Parse(s)
	if !root.IsObject() {
		return nil, false, fmt.Errorf("openai: injecting include_usage: request body is not a JSON object")
	}
	if root.Get("stream").Type != gjson.True {
		return body, false, nil
	}
	opts := root.Get("stream_options")
	if opts.Get("include_usage").Type == gjson.True {
		return body, true, nil
	}
	if opts.Exists() && !opts.IsObject() {
		out, err = sjson.SetRawBytes(body, "stream_options", []byte(`{"include_usage":true}`))
	} else {
		out, err = sjson.SetBytes(body, "stream_options.include_usage", true)
	}
	if err != nil {
		return nil, false, fmt.Errorf("openai: injecting include_usage: %w", err)
	}
	return out, false, nil
}

// usageFrom maps an OpenAI usage object to the Anthropic-normalised
// ir.Usage; counted reports a prompt_tokens or completion_tokens number
// among its members. OpenAI reports cache writes (cache_write_tokens)
// without a TTL split; pricing bills them at the model's
// cache_creation_input_token_cost, its 5-minute write rate, so they are
// settled as 5-minute writes (ir.Usage.SettleCacheSplit), as on the
// Anthropic path.
func usageFrom(obj gjson.Result) (u ir.Usage, counted bool) {
	var prompt, hits, creations int64
	obj.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "prompt_tokens":
			prompt = usageInt(v)
			counted = counted || v.Type == gjson.Number
		case "prompt_cache_hit_tokens":
			hits = usageInt(v)
		case "completion_tokens":
			u.OutputTokens = usageInt(v)
			counted = counted || v.Type == gjson.Number
		case "prompt_tokens_details":
			v.ForEach(func(k, v gjson.Result) bool {
				switch k.Str {
				case "cached_tokens":
					u.CacheReadInputTokens = usageInt(v)
				case "cache_write_tokens":
					u.CacheCreationInputTokens = usageInt(v)
				case "cache_creation_input_tokens":
					creations = usageInt(v)
				}
				return true
			})
		case "completion_tokens_details":
			u.ReasoningTokens = usageInt(v.Get("reasoning_tokens"))
		}
		return true
	})
	if u.CacheReadInputTokens == 0 {
		// DeepSeek reports its cache reads here, with prompt_tokens
		// counting them as OpenAI's does.
		u.CacheReadInputTokens = hits
	}
	if u.CacheCreationInputTokens == 0 {
		// Envoy AI Gateway, serving Claude, reports its cache writes here,
		// counted in prompt_tokens.
		u.CacheCreationInputTokens = creations
	}
	u.InputTokens = max(prompt-u.CacheReadInputTokens-u.CacheCreationInputTokens, 0)
	u.SettleCacheSplit()
	return u, counted
}

// usageErrorFields returns an error object's type (its code when the type
// is empty or null, or when only the code says rate_limit) and message.
func usageErrorFields(e gjson.Result) (typ, msg string) {
	typ = usageString(e.Get("type"))
	if code := e.Get("code"); typ == "" || (!strings.Contains(typ, "rate_limit") && strings.Contains(code.Str, "rate_limit")) {
		if c := usageString(code); c != "" {
			typ = c
		}
	}
	return typ, usageString(e.Get("message"))
}

// usageInt returns a non-negative JSON number, 0 for anything else.
func usageInt(v gjson.Result) int64 {
	if v.Type != gjson.Number {
		return 0
	}
	return max(v.Int(), 0)
}

// usageString returns a JSON string value detached from the (reused) input
// buffer, without allocating for the usual enumeration values.
func usageString(v gjson.Result) string { return jsonx.String(v, usageConst) }

// usageConst holds the enumeration values usageString returns without
// copying.
var usageConst = map[string]string{
	"default": "default", "auto": "auto", "flex": "flex", "priority": "priority", "scale": "scale",
	"stop": "stop", "length": "length", "tool_calls": "tool_calls",
	"content_filter": "content_filter", "function_call": "function_call",
	"completed": "completed", "incomplete": "incomplete", "failed": "failed",
}
