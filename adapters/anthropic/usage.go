package anthropic

// Usage extraction from Anthropic Messages responses and streams. These
// functions only observe bodies (gjson, no full unmarshal): the gateway
// relays the bytes unchanged and prices the call from the result.

import (
	"fmt"

	"github.com/metisgateway/metis/internal/jsonx"
	"github.com/metisgateway/metis/ir"
	"github.com/tidwall/gjson"
)

// ResponseMeta identifies an Anthropic response for the call log.
type ResponseMeta struct {
	ID         string
	Model      string
	StopReason string
}

// ResponseUsage reads the usage, id, model and stop reason of a complete
// (non-streamed) Messages response body. It fails when the body is not a
// JSON object, is an error body, or has no usage object with token counts.
func ResponseUsage(body []byte) (ir.Usage, ResponseMeta, error) {
	root := gjson.Parse(jsonx.View(body))
	if !root.IsObject() {
		return ir.Usage{}, ResponseMeta{}, fmt.Errorf("anthropic usage: response body is not a JSON object")
	}
	var s usageScan
	root.ForEach(func(k, v gjson.Result) bool {
		s.member(k.Str, v)
		return true
	})
	return s.result()
}

// StreamTracker follows an Anthropic Messages SSE stream event by event and
// reports its usage, identity and outcome. The zero value is ready to use;
// it is not safe for concurrent use.
type StreamTracker struct {
	usage       ir.Usage
	meta        ResponseMeta
	startOutput int64    // output_tokens of message_start
	gotOutput   bool     // a message_delta reported output_tokens
	gotInput    bool     // message_start or a message_delta reported input_tokens
	compaction  ir.Usage // the compaction passes of the latest usage.iterations
	complete    bool
	sawContent  bool
	deltaBytes  int64 // streamed text, JSON and thinking bytes
	errType     string
	errMsg      string
	hasErr      bool
}

// Observe feeds one SSE event (its "event:" name and data). Unknown events
// and malformed data are ignored. When name is empty the data's "type"
// field is used instead.
func (t *StreamTracker) Observe(name string, data []byte) {
	s := jsonx.View(data)
	if name == "" {
		name = gjson.Get(s, "type").Str
	}
	switch name {
	case "content_block_delta":
		t.sawContent = true
		jsonx.Members(gjson.Get(s, "delta").Raw, func(k, raw string) bool {
			switch k {
			case "text", "partial_json", "thinking":
				t.deltaBytes += int64(jsonx.StringLen(raw))
			}
			return true
		})
	case "content_block_start":
		// A redacted_thinking block arrives whole, without deltas.
		if gjson.Get(s, "content_block.type").Str == "redacted_thinking" {
			t.sawContent = true
		}
	case "message_start":
		msg := gjson.Get(s, "message")
		msg.ForEach(func(k, v gjson.Result) bool {
			switch k.Str {
			case "id":
				t.meta.ID = usageString(v)
			case "model":
				t.meta.Model = usageString(v)
			case "usage":
				sawInput, _, iters := usageApply(&t.usage, v)
				t.startOutput = t.usage.OutputTokens
				t.gotInput = t.gotInput || sawInput
				if iters.IsArray() {
					t.compaction = compactionUsage(iters)
				}
			}
			return true
		})
	case "message_delta":
		gjson.Parse(s).ForEach(func(k, v gjson.Result) bool {
			switch k.Str {
			case "delta":
				if sr := v.Get("stop_reason"); sr.Type == gjson.String && sr.Str != "" {
					t.meta.StopReason = usageString(sr)
					t.complete = true
				}
			case "usage":
				sawInput, sawOutput, iters := usageApplyDelta(&t.usage, v)
				t.gotOutput = t.gotOutput || sawOutput
				t.gotInput = t.gotInput || sawInput
				if iters.IsArray() {
					t.compaction = compactionUsage(iters)
				}
			}
			return true
		})
	case "error":
		e := gjson.Get(s, "error")
		t.errType = usageString(e.Get("type"))
		t.errMsg = usageString(e.Get("message"))
		t.hasErr = true
	}
}

// Usage returns the usage so far: input and cache counts from message_start
// (or a later message_delta that repeats them), output from the last
// message_delta. Without a message_delta reporting output_tokens (a
// cancelled or cut stream) the output is estimated as a quarter of the
// streamed text/JSON/thinking bytes, at least message_start's
// output_tokens, and Estimated is set. Without input_tokens reported (some
// compatible servers send an empty usage), Estimated is set too: the input
// is the caller's to estimate.
func (t *StreamTracker) Usage() ir.Usage {
	u := t.usage
	if !t.gotOutput {
		est := ir.EstimateTokens(t.deltaBytes)
		u.OutputTokens = max(est, t.startOutput)
		u.Estimated = true
	}
	if !t.gotInput {
		u.Estimated = true
	}
	u.SettleCacheSplit()
	if t.compaction != (ir.Usage{}) {
		u.AddPass(t.compaction)
	}
	return u
}

// Meta returns the message id and model from message_start and the stop
// reason from message_delta.
func (t *StreamTracker) Meta() ResponseMeta { return t.meta }

// Complete reports whether a message_delta with a stop_reason was seen: the
// response is complete even if message_stop never arrives.
func (t *StreamTracker) Complete() bool { return t.complete }

// Err returns the type and message of an in-stream `event: error`.
func (t *StreamTracker) Err() (errType, message string, ok bool) {
	return t.errType, t.errMsg, t.hasErr
}

// SawContent reports whether a content delta was seen (time to first token).
func (t *StreamTracker) SawContent() bool { return t.sawContent }

// usageApply sets in u every usage field present in obj, leaving absent or
// null fields as they are (message_delta usage is cumulative: set, never
// add). It reports whether input_tokens and output_tokens were present
// (numbers): a usage object with neither (some compatible servers send
// {}) reports nothing, and the call is estimated. iterations is the
// object's iterations member (compactionUsage reads it), if any.
func usageApply(u *ir.Usage, obj gjson.Result) (sawInput, sawOutput bool, iterations gjson.Result) {
	obj.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "input_tokens":
			sawInput = usageSetInt(&u.InputTokens, v) || sawInput
		case "cache_creation_input_tokens":
			usageSetInt(&u.CacheCreationInputTokens, v)
		case "cache_read_input_tokens":
			usageSetInt(&u.CacheReadInputTokens, v)
		case "output_tokens":
			sawOutput = usageSetInt(&u.OutputTokens, v) || sawOutput
		case "cache_creation":
			v.ForEach(func(k, v gjson.Result) bool {
				switch k.Str {
				case "ephemeral_5m_input_tokens":
					usageSetInt(&u.CacheCreation5mInputTokens, v)
				case "ephemeral_1h_input_tokens":
					usageSetInt(&u.CacheCreation1hInputTokens, v)
				}
				return true
			})
		case "output_tokens_details":
			usageSetInt(&u.ReasoningTokens, v.Get("thinking_tokens"))
		case "server_tool_use":
			usageSetInt(&u.WebSearchRequests, v.Get("web_search_requests"))
		case "service_tier":
			usageSetString(&u.ServiceTier, v)
		case "inference_geo":
			usageSetString(&u.InferenceGeo, v)
		case "speed":
			usageSetString(&u.Speed, v)
		case "iterations":
			iterations = v
		}
		return true
	})
	return sawInput, sawOutput, iterations
}

// compactionUsage sums the compaction entries of a usage object's
// iterations: server-side compaction (context_management's
// compact_20260112) summarises the conversation in a sampling pass of its
// own, with the request's model, billed as such, whose tokens the
// top-level counts leave out (they count the answer's pass alone).
func compactionUsage(iterations gjson.Result) ir.Usage {
	var sum ir.Usage
	iterations.ForEach(func(_, it gjson.Result) bool {
		if it.Get("type").Str == "compaction" {
			var one ir.Usage
			usageApply(&one, it)
			one.SettleCacheSplit()
			sum.AddCounts(one)
		}
		return true
	})
	return sum
}

// usageApplyDelta applies a message_delta's usage to u, the usage so far.
// Its counts are cumulative, so output_tokens replaces the count so far,
// but the input and cache counts only ever grow: some Anthropic-compatible
// servers send them as 0 here after reporting them in message_start, and
// Claude Code keeps message_start's then. It reports whether input_tokens
// and output_tokens were present, and its iterations, as usageApply does.
func usageApplyDelta(u *ir.Usage, obj gjson.Result) (sawInput, sawOutput bool, iterations gjson.Result) {
	before := *u
	sawInput, sawOutput, iterations = usageApply(u, obj)
	keepInputCounts(u, before)
	return sawInput, sawOutput, iterations
}

// keepInputCounts undoes a message_delta's lowering of the input and cache
// counts of before (see usageApplyDelta).
func keepInputCounts(u *ir.Usage, before ir.Usage) {
	u.InputTokens = max(u.InputTokens, before.InputTokens)
	u.CacheReadInputTokens = max(u.CacheReadInputTokens, before.CacheReadInputTokens)
	u.CacheCreationInputTokens = max(u.CacheCreationInputTokens, before.CacheCreationInputTokens)
	u.CacheCreation5mInputTokens = max(u.CacheCreation5mInputTokens, before.CacheCreation5mInputTokens)
	u.CacheCreation1hInputTokens = max(u.CacheCreation1hInputTokens, before.CacheCreation1hInputTokens)
}

// usageSetInt stores a non-negative JSON number; other types leave *dst.
func usageSetInt(dst *int64, v gjson.Result) bool {
	if v.Type != gjson.Number {
		return false
	}
	n := v.Int()
	if n < 0 {
		n = 0
	}
	*dst = n
	return true
}

func usageSetString(dst *string, v gjson.Result) {
	if v.Type == gjson.String {
		*dst = usageString(v)
	}
}

// usageString returns a JSON string value detached from the (reused) input
// buffer, without allocating for the usual enumeration values.
func usageString(v gjson.Result) string { return jsonx.String(v, usageConst) }

// usageConst holds the enumeration values usageString returns without
// copying.
var usageConst = map[string]string{
	"standard": "standard", "priority": "priority", "batch": "batch",
	"global": "global", "us": "us", "fast": "fast",
	"end_turn": "end_turn", "tool_use": "tool_use", "max_tokens": "max_tokens",
	"stop_sequence": "stop_sequence", "pause_turn": "pause_turn", "refusal": "refusal",
}
