package store

import (
	"math"
	"strconv"

	"github.com/metisgateway/metis/internal/jsonx"
)

// appendCallJSON appends the JSON encoding of c to dst, byte for byte what
// c.MarshalJSON (encoding/json) produces, without reflection. It reports
// false, leaving dst's contents unspecified beyond its original length, for
// what encoding/json rejects (a NaN or infinite cost or saving), so that the
// caller can fall back to MarshalJSON for its error.
func appendCallJSON(dst []byte, c *Call) ([]byte, bool) {
	if !finite(c.CacheSavingsUSD) || (c.CostUSD != nil && !finite(*c.CostUSD)) {
		return dst, false
	}
	// The order is encoding/json's: Call's fields in declaration order
	// except session_id and error_class, which MarshalJSON's outer struct
	// shadows and which therefore come last.
	dst = append(dst, `{"turn_id":`...)
	dst = appendJSONString(dst, c.TurnID)
	dst = append(dst, `,"gateway_key_id":`...)
	dst = appendJSONString(dst, c.GatewayKeyID)
	dst = append(dst, `,"key_name":`...)
	dst = appendJSONString(dst, c.KeyName)
	dst = append(dst, `,"user":`...)
	dst = appendJSONString(dst, c.User)
	dst = append(dst, `,"team":`...)
	dst = appendJSONString(dst, c.Team)
	dst = append(dst, `,"workspace":`...)
	dst = appendJSONString(dst, c.Workspace)
	dst = append(dst, `,"inbound_shape":`...)
	dst = appendJSONString(dst, c.InboundShape)
	dst = append(dst, `,"provider":`...)
	dst = appendJSONString(dst, c.Provider)
	dst = append(dst, `,"requested_model":`...)
	dst = appendJSONString(dst, c.RequestedModel)
	dst = append(dst, `,"model":`...)
	dst = appendJSONString(dst, c.Model)
	dst = append(dst, `,"stream":`...)
	dst = strconv.AppendBool(dst, c.Stream)
	dst = append(dst, `,"status":`...)
	dst = strconv.AppendInt(dst, int64(c.Status), 10)
	dst = append(dst, `,"attempts":`...)
	dst = strconv.AppendInt(dst, int64(c.Attempts), 10)
	dst = append(dst, `,"input_tokens":`...)
	dst = strconv.AppendInt(dst, c.InputTokens, 10)
	dst = append(dst, `,"cache_read_input_tokens":`...)
	dst = strconv.AppendInt(dst, c.CacheReadInputTokens, 10)
	dst = append(dst, `,"cache_creation_input_tokens":`...)
	dst = strconv.AppendInt(dst, c.CacheCreationInputTokens, 10)
	dst = append(dst, `,"cache_creation_5m_input_tokens":`...)
	dst = strconv.AppendInt(dst, c.CacheCreation5mInputTokens, 10)
	dst = append(dst, `,"cache_creation_1h_input_tokens":`...)
	dst = strconv.AppendInt(dst, c.CacheCreation1hInputTokens, 10)
	dst = append(dst, `,"output_tokens":`...)
	dst = strconv.AppendInt(dst, c.OutputTokens, 10)
	dst = append(dst, `,"reasoning_tokens":`...)
	dst = strconv.AppendInt(dst, c.ReasoningTokens, 10)
	if c.WebSearchRequests != 0 {
		dst = append(dst, `,"web_search_requests":`...)
		dst = strconv.AppendInt(dst, c.WebSearchRequests, 10)
	}
	dst = append(dst, `,"cost_usd":`...)
	if c.CostUSD == nil {
		dst = append(dst, "null"...)
	} else {
		dst = appendJSONFloat(dst, *c.CostUSD)
	}
	dst = append(dst, `,"priced":`...)
	dst = strconv.AppendBool(dst, c.Priced)
	dst = append(dst, `,"usage_source":`...)
	dst = appendJSONString(dst, c.UsageSource)
	dst = append(dst, `,"latency_ms":`...)
	dst = strconv.AppendInt(dst, c.LatencyMS, 10)
	dst = append(dst, `,"ttft_ms":`...)
	if c.TTFTMS == nil {
		dst = append(dst, "null"...)
	} else {
		dst = strconv.AppendInt(dst, *c.TTFTMS, 10)
	}
	dst = append(dst, `,"upstream_request_id":`...)
	dst = appendJSONString(dst, c.UpstreamRequestID)
	dst = append(dst, `,"cache_savings_usd":`...)
	dst = appendJSONFloat(dst, c.CacheSavingsUSD)
	if c.ServiceTier != "" {
		dst = append(dst, `,"service_tier":`...)
		dst = appendJSONString(dst, c.ServiceTier)
	}
	if c.Speed != "" {
		dst = append(dst, `,"speed":`...)
		dst = appendJSONString(dst, c.Speed)
	}
	if c.InferenceGeo != "" {
		dst = append(dst, `,"inference_geo":`...)
		dst = appendJSONString(dst, c.InferenceGeo)
	}
	if c.PricedModel != "" {
		dst = append(dst, `,"priced_model":`...)
		dst = appendJSONString(dst, c.PricedModel)
	}
	if c.AnsweredModel != "" {
		dst = append(dst, `,"answered_model":`...)
		dst = appendJSONString(dst, c.AnsweredModel)
	}
	dst = append(dst, `,"session_id":`...)
	dst = appendJSONNullable(dst, c.SessionID)
	dst = append(dst, `,"error_class":`...)
	dst = appendJSONNullable(dst, c.ErrorClass)
	return append(dst, '}'), true
}

func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

// appendJSONNullable appends s as a JSON string, or null when it is empty.
func appendJSONNullable(dst []byte, s string) []byte {
	if s == "" {
		return append(dst, "null"...)
	}
	return appendJSONString(dst, s)
}

// appendJSONFloat appends a finite f as encoding/json writes a float64.
func appendJSONFloat(dst []byte, f float64) []byte {
	out, err := jsonx.AppendFloat(dst, f)
	if err != nil { // callers check finite first
		return dst
	}
	return out
}

// appendJSONString appends s as a JSON string exactly as encoding/json's
// Marshal does.
func appendJSONString(dst []byte, s string) []byte { return jsonx.AppendString(dst, s) }
