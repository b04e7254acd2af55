// Package wirestr reads JSON string values parsed by gjson the way
// encoding/json.Unmarshal reads them into a Go string, without scanning a
// string a second time when gjson has already found it has no escapes.
package wirestr

import (
	"unicode/utf8"

	"github.com/tidwall/gjson"

	"github.com/metisgateway/metis/internal/jsonx"
)

// Of returns the Go string encoding/json.Unmarshal decodes from the JSON
// string v (a value of type gjson.String as ForEach, Get or Parse return
// it, its Raw valid JSON): Str itself when gjson found no escape in it
// (Str is then Raw without its quotes) and it is valid UTF-8, else
// jsonx.Unquote of Raw, which replaces invalid UTF-8 and lone surrogates
// as encoding/json does.
func Of(v gjson.Result) string {
	// Every escape is longer than what it stands for, so an unescaped Str
	// is exactly as long as Raw without its quotes only when Raw holds no
	// escape.
	if len(v.Str) == len(v.Raw)-2 && utf8.ValidString(v.Str) {
		return v.Str
	}
	return jsonx.Unquote(v.Raw)
}

// AppendString appends s as a JSON string exactly as jsonx.AppendString
// (and encoding/json.Marshal) writes it, copying s in one piece when it is
// printable ASCII needing no escape, which it checks eight bytes at a time.
func AppendString(dst []byte, s string) []byte {
	if !plain(s) {
		return jsonx.AppendString(dst, s)
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}

const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// hasByte reports whether a byte of x equals c.
func hasByte(x uint64, c byte) bool {
	y := x ^ (ones * uint64(c))
	return (y-ones)&^y&highs != 0
}

// plain reports whether every byte of s is printable ASCII other than
// the ones encoding/json escapes: ", \, <, > and &.
func plain(s string) bool {
	i := 0
	for ; i+8 <= len(s); i += 8 {
		x := uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
			uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
		// A byte ≥ 0x80, or < 0x20 (x - 0x20 borrows into its high bit).
		if x&highs != 0 || (x-ones*0x20)&^x&highs != 0 ||
			hasByte(x, '"') || hasByte(x, '\\') || hasByte(x, '<') || hasByte(x, '>') || hasByte(x, '&') {
			return false
		}
	}
	for ; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x80 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}
