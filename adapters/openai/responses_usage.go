package openai

// Usage extraction from OpenAI Responses API answers (POST /v1/responses),
// which the gateway forwards as they are to OpenAI-type providers: a
// response object, or an event stream whose terminal event carries it.

import (
	"fmt"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/metisgateway/metis/internal/jsonx"
	"github.com/metisgateway/metis/ir"
)

// ResponsesUsage reads the usage, id, model and status (as FinishReason)
// of a complete Responses API response object, normalised to ir.Usage:
// InputTokens = input_tokens − input_tokens_details.cached_tokens −
// cache_write_tokens, CacheReadInputTokens = cached_tokens,
// CacheCreationInputTokens = cache_write_tokens, OutputTokens = output_tokens
// (reasoning included), ReasoningTokens =
// output_tokens_details.reasoning_tokens, ServiceTier = service_tier,
// WebSearchRequests = the web_search_call items of its output. It fails on
// a non-object, an error body or missing usage.
func ResponsesUsage(body []byte) (ir.Usage, ResponseMeta, error) {
	root := gjson.Parse(jsonx.View(body))
	if !root.IsObject() {
		return ir.Usage{}, ResponseMeta{}, fmt.Errorf("openai responses usage: response body is not a JSON object")
	}
	if e := root.Get("error"); e.IsObject() && !root.Get("usage").IsObject() {
		typ, msg := responsesErrorFields(e)
		return ir.Usage{}, ResponseMeta{}, fmt.Errorf("openai responses usage: error response: %s: %s", typ, msg)
	}
	return responseObjectUsage(root)
}

// responseObjectUsage reads a response object (a body, or the response of
// a stream's terminal event).
func responseObjectUsage(r gjson.Result) (ir.Usage, ResponseMeta, error) {
	meta := ResponseMeta{ID: usageString(r.Get("id")), Model: usageString(r.Get("model")), FinishReason: usageString(r.Get("status"))}
	usage := r.Get("usage")
	if !usage.IsObject() {
		return ir.Usage{}, meta, fmt.Errorf("openai responses usage: response %q has no usage object", meta.ID)
	}
	inV, outV := usage.Get("input_tokens"), usage.Get("output_tokens")
	if inV.Type != gjson.Number && outV.Type != gjson.Number {
		return ir.Usage{}, meta, fmt.Errorf("openai responses usage: response %q has a usage object without token counts", meta.ID)
	}
	var u ir.Usage
	in := usageInt(inV)
	u.CacheReadInputTokens = usageInt(usage.Get("input_tokens_details.cached_tokens"))
	// gpt-5.6 on: cache writes, within input_tokens as within a Chat
	// Completions prompt_tokens; 5-minute writes, as there (usageFrom).
	u.CacheCreationInputTokens = usageInt(usage.Get("input_tokens_details.cache_write_tokens"))
	u.InputTokens = max(in-u.CacheReadInputTokens-u.CacheCreationInputTokens, 0)
	u.SettleCacheSplit()
	u.OutputTokens = usageInt(outV)
	u.ReasoningTokens = usageInt(usage.Get("output_tokens_details.reasoning_tokens"))
	u.ServiceTier = usageString(r.Get("service_tier"))
	r.Get("output").ForEach(func(_, item gjson.Result) bool {
		if item.Get("type").Str == "web_search_call" {
			u.WebSearchRequests++
		}
		return true
	})
	return u, meta, nil
}

// responsesErrorFields returns an error object's code (its type when it
// has none) and message.
func responsesErrorFields(e gjson.Result) (typ, msg string) {
	typ = usageString(e.Get("code"))
	if typ == "" {
		typ = usageString(e.Get("type"))
	}
	return typ, usageString(e.Get("message"))
}

// ResponsesStreamTracker follows a Responses API event stream event by
// event: the response's id and model from response.created, content from
// the *.delta events, and usage from the terminal event
// (response.completed, response.incomplete or response.failed). The zero
// value is ready to use; it is not safe for concurrent use.
type ResponsesStreamTracker struct {
	usage      ir.Usage
	gotUsage   bool
	meta       ResponseMeta
	done       bool
	sawContent bool
	deltaBytes int64
	seq        int64
	errType    string
	errMsg     string
	hasErr     bool
}

// Observe feeds the data of one event; malformed data is ignored.
func (t *ResponsesStreamTracker) Observe(data []byte) {
	ev := gjson.Parse(jsonx.View(data))
	if !ev.IsObject() {
		return
	}
	if n := ev.Get("sequence_number"); n.Type == gjson.Number {
		t.seq = max(t.seq, n.Int())
	}
	typ := ev.Get("type").Str
	switch typ {
	case "response.created", "response.in_progress", "response.queued":
		r := ev.Get("response")
		if t.meta.ID == "" {
			t.meta.ID = usageString(r.Get("id"))
		}
		if t.meta.Model == "" {
			t.meta.Model = usageString(r.Get("model"))
		}
	case "response.completed", "response.incomplete", "response.failed":
		t.done = true
		r := ev.Get("response")
		u, meta, err := responseObjectUsage(r)
		if meta.Model != "" {
			t.meta.Model = meta.Model
		}
		if t.meta.ID == "" {
			t.meta.ID = meta.ID
		}
		t.meta.FinishReason = meta.FinishReason
		if meta.FinishReason == "" {
			t.meta.FinishReason = strings.Clone(strings.TrimPrefix(typ, "response.")) // typ is the event's memory
		}
		if err == nil {
			t.usage, t.gotUsage = u, true
		}
		if e := r.Get("error"); typ == "response.failed" && e.IsObject() {
			t.errType, t.errMsg = responsesErrorFields(e)
			t.hasErr = true
		}
	case "error":
		// OpenAI documents the error's members at the top of the event,
		// and sends them nested in an error object.
		e := ev
		if nested := ev.Get("error"); nested.IsObject() {
			e = nested
		}
		t.errType, t.errMsg = responsesErrorFields(e)
		t.hasErr = true
	case "":
		// An event without a type in the chat shapes of chunkError: what
		// LiteLLM's proxy writes for every streamed error (review 25R2).
		errv := ev.Get("error")
		switch chunkError(errv.Raw, ev.Get("object").Raw) {
		case errorObject:
			t.errType, t.errMsg = responsesErrorFields(errv)
			t.hasErr = true
		case errorText:
			t.errType, t.errMsg = usageString(ev.Get("error_type")), usageString(errv)
			t.hasErr = true
		case errorTopLevel:
			t.errType, t.errMsg = responsesErrorFields(ev)
			t.hasErr = true
		}
	default:
		if strings.HasSuffix(typ, ".delta") {
			if d := ev.Get("delta"); d.Type == gjson.String && d.Str != "" {
				t.deltaBytes += int64(len(d.Str))
				t.sawContent = true
			}
		}
	}
}

// Usage returns the terminal event's usage. Without one (the client cut
// the stream, or it was interrupted) the output is estimated as a quarter
// of the streamed delta bytes, input is unknown (0) and Estimated is set.
func (t *ResponsesStreamTracker) Usage() ir.Usage {
	if !t.gotUsage {
		return ir.Usage{OutputTokens: ir.EstimateTokens(t.deltaBytes), Estimated: true}
	}
	return t.usage
}

// Meta returns the response's id, model and final status (completed,
// incomplete, failed) once the terminal event came.
func (t *ResponsesStreamTracker) Meta() ResponseMeta { return t.meta }

// Complete reports whether the terminal event arrived.
func (t *ResponsesStreamTracker) Complete() bool { return t.done }

// Err returns the code and message of an error event, or of a
// response.failed event's error.
func (t *ResponsesStreamTracker) Err() (errType, message string, ok bool) {
	return t.errType, t.errMsg, t.hasErr
}

// SawContent reports whether a delta with content arrived (time to first
// token).
func (t *ResponsesStreamTracker) SawContent() bool { return t.sawContent }

// Sequence is the highest sequence_number seen, which an event the
// gateway adds after them follows.
func (t *ResponsesStreamTracker) Sequence() int64 { return t.seq }
