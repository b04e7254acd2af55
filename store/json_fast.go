package store

import (
	"math"
	"strconv"
	"unicode/utf8"
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

// appendJSONFloat appends a finite f as encoding/json writes a float64:
// the shortest representation that round-trips, in exponent form only below
// 1e-6 or from 1e21 in magnitude, with a two-digit negative exponent
// shortened to one digit (1e-07 becomes 1e-7).
func appendJSONFloat(dst []byte, f float64) []byte {
	format := byte('f')
	if a := math.Abs(f); a != 0 && (a < 1e-6 || a >= 1e21) {
		format = 'e'
	}
	start := len(dst)
	dst = strconv.AppendFloat(dst, f, format, -1, 64)
	if format == 'e' {
		b := dst[start:]
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			dst = dst[:len(dst)-1]
		}
	}
	return dst
}

// jsonPlain marks the ASCII bytes encoding/json copies unescaped into a
// string with HTML escaping on: printable ASCII except ", \, <, > and &.
var jsonPlain = func() (t [utf8.RuneSelf]bool) {
	for b := 0x20; b < utf8.RuneSelf; b++ {
		switch b {
		case '"', '\\', '<', '>', '&':
		default:
			t[b] = true
		}
	}
	return t
}()

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string exactly as encoding/json's
// Marshal does: \" \\ \b \f \n \r \t short escapes, other control bytes and
// <, >, & as \u00xx, invalid UTF-8 bytes as \ufffd, U+2028 and U+2029 as
// \u2028 and \u2029, everything else verbatim.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0 // s[start:i] is pending verbatim output
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			if jsonPlain[b] {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '"', '\\':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
