// Package jsonx holds the small JSON helpers the adapters use on their hot
// paths instead of encoding/json's reflection: appenders for the request
// translators and an allocation-free object member scanner (Members, View,
// String, StringLen) for the usage trackers.
//
// The appenders write exactly the bytes encoding/json.Marshal writes for
// the same Go value (strings with <, >, & and U+2028/U+2029 escaped and
// invalid UTF-8 replaced by \ufffd; raw JSON compacted; floats in ES6
// form), so a hand-written encoder built from them is a drop-in
// replacement for json.Marshal. Unquote decodes a JSON string literal the
// way encoding/json.Unmarshal does.
package jsonx

import (
	"bytes"
	"encoding/json"
	"math"
	"reflect"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/tidwall/gjson"
)

const hexDigits = "0123456789abcdef"

// plain[b] is true for an ASCII byte that encoding/json writes unescaped
// inside a string (HTML escaping on).
var plain = func() (t [utf8.RuneSelf]bool) {
	for b := 0x20; b < utf8.RuneSelf; b++ {
		t[b] = b != '"' && b != '\\' && b != '<' && b != '>' && b != '&'
	}
	return t
}()

// AppendString appends s as a JSON string, byte for byte as
// encoding/json.Marshal writes a Go string.
func AppendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			if plain[b] {
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
			default: // other control bytes and <, >, &
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
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
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
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

// AppendFloat appends f as encoding/json.Marshal writes a float64 (ES6
// number form). NaN and infinities are the same *json.UnsupportedValueError
// Marshal returns.
func AppendFloat(dst []byte, f float64) ([]byte, error) {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return dst, &json.UnsupportedValueError{Value: reflect.ValueOf(f), Str: strconv.FormatFloat(f, 'g', -1, 64)}
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	dst = strconv.AppendFloat(dst, f, format, -1, 64)
	if format == 'e' {
		// e-07 → e-7, as encoding/json does.
		if n := len(dst); n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst, nil
}

// AppendBool appends true or false.
func AppendBool(dst []byte, b bool) []byte {
	if b {
		return append(dst, "true"...)
	}
	return append(dst, "false"...)
}

// AppendRaw appends a json.RawMessage the way encoding/json.Marshal writes
// one: compacted, with <, >, & and U+2028/U+2029 escaped; nil is null.
// Invalid JSON is the error Marshal would return and dst is unchanged.
func AppendRaw(dst []byte, raw []byte) ([]byte, error) {
	if raw == nil {
		return append(dst, "null"...), nil
	}
	if !gjson.ValidBytes(raw) {
		var buf bytes.Buffer
		if err := json.Compact(&buf, raw); err != nil {
			return dst, &json.MarshalerError{Type: reflect.TypeFor[json.RawMessage](), Err: err}
		}
		// The validators disagree; trust encoding/json's compaction.
		raw = buf.Bytes()
	}
	start := 0
	inString := false
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if inString {
			switch {
			case c == '\\':
				i++ // the escaped byte never ends the string
			case c == '"':
				inString = false
			case c == '<' || c == '>' || c == '&':
				dst = append(dst, raw[start:i]...)
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
				start = i + 1
			case c == 0xE2 && i+2 < len(raw) && raw[i+1] == 0x80 && raw[i+2]&^1 == 0xA8:
				dst = append(dst, raw[start:i]...)
				dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[raw[i+2]&0xF])
				i += 2
				start = i + 1
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case ' ', '\t', '\r', '\n':
			dst = append(dst, raw[start:i]...)
			start = i + 1
		}
	}
	return append(dst, raw[start:]...), nil
}

// Unquote decodes the JSON string literal lit (quotes included, already
// known to be valid JSON) exactly as encoding/json.Unmarshal decodes it
// into a Go string: lone surrogates and invalid UTF-8 bytes become U+FFFD.
// A literal without escapes or non-ASCII bytes is returned as a substring
// of lit, without copying.
func Unquote(lit string) string {
	if len(lit) < 2 {
		return ""
	}
	s := lit[1 : len(lit)-1]
	i := 0
	for i < len(s) {
		c := s[i]
		if c == '\\' || c < ' ' {
			break
		}
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				break
			}
			i += size
			continue
		}
		i++
	}
	if i == len(s) {
		return s
	}
	b := make([]byte, i, len(s)+8)
	copy(b, s[:i])
	for i < len(s) {
		c := s[i]
		switch {
		case c == '\\':
			if i+1 >= len(s) {
				return string(b)
			}
			switch e := s[i+1]; e {
			case '"', '\\', '/', '\'':
				b = append(b, e)
				i += 2
			case 'b':
				b = append(b, '\b')
				i += 2
			case 'f':
				b = append(b, '\f')
				i += 2
			case 'n':
				b = append(b, '\n')
				i += 2
			case 'r':
				b = append(b, '\r')
				i += 2
			case 't':
				b = append(b, '\t')
				i += 2
			case 'u':
				r, n := uRune(s, i)
				if n == 0 {
					return string(b)
				}
				b = utf8.AppendRune(b, r)
				i += n
			default:
				return string(b)
			}
		case c < utf8.RuneSelf:
			b = append(b, c)
			i++
		default:
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				b = append(b, "\uFFFD"...)
			} else {
				b = append(b, s[i:i+size]...)
			}
			i += size
		}
	}
	return string(b)
}

// uRune decodes the \u escape at s[i] (s[i:i+2] is `\u`), joined with the
// low surrogate escape that follows a high one: the rune (U+FFFD for a lone
// or mismatched surrogate) and the bytes it took, 0 when its four hex
// digits are not.
func uRune(s string, i int) (rune, int) {
	r := hex4(s[i+2:])
	if r < 0 {
		return 0, 0
	}
	if !utf16.IsSurrogate(rune(r)) {
		return rune(r), 6
	}
	if i+12 <= len(s) && s[i+6] == '\\' && s[i+7] == 'u' {
		if r2 := hex4(s[i+8:]); r2 >= 0 {
			if dec := utf16.DecodeRune(rune(r), rune(r2)); dec != utf8.RuneError {
				return dec, 12
			}
		}
	}
	return utf8.RuneError, 6
}

// hex4 reads four hex digits at the start of s (-1 when they are not).
func hex4(s string) int {
	if len(s) < 4 {
		return -1
	}
	r := 0
	for _, c := range []byte(s[:4]) {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return -1
		}
		r = r<<4 | int(c)
	}
	return r
}
