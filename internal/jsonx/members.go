package jsonx

// A scanner for the members of a JSON object that never decodes or copies:
// the usage trackers run it on every streamed event, where gjson's
// unescaping of string values would allocate.

import (
	"strings"
	"unicode/utf8"
	"unsafe"

	"github.com/tidwall/gjson"
)

// View returns b as a string without copying. The string shares b's
// memory: it, and anything sliced from it, must not be used after b is
// modified or reused, unless copied first (String does).
func View(b []byte) string {
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// String returns the value of the JSON string v detached from the buffer
// it was parsed from, or "" when v is not a string. A value found in known
// is returned as known's own copy, so the usual enumeration values (stop
// reasons, service tiers) cost no allocation.
func String(v gjson.Result, known map[string]string) string {
	if v.Type != gjson.String {
		return ""
	}
	if c, ok := known[v.Str]; ok {
		return c
	}
	return strings.Clone(v.Str)
}

// Members calls fn with each member of the JSON object obj, in order: its
// key as written (quotes removed, escapes not decoded) and its raw value
// (a substring of obj). Nothing is unescaped or copied, so a scan
// allocates nothing. It stops at the first malformed token, at the end of
// the object, or when fn returns false; it does not check that the values
// themselves are valid JSON.
func Members(obj string, fn func(key, raw string) bool) {
	i := skipWS(obj, 0)
	if i >= len(obj) || obj[i] != '{' {
		return
	}
	i++
	for {
		i = skipWS(obj, i)
		if i >= len(obj) || obj[i] != '"' {
			return
		}
		kEnd := StringEnd(obj, i)
		if kEnd < 0 {
			return
		}
		key := obj[i+1 : kEnd-1]
		i = skipWS(obj, kEnd)
		if i >= len(obj) || obj[i] != ':' {
			return
		}
		i = skipWS(obj, i+1)
		vEnd := valueEnd(obj, i)
		if vEnd < 0 {
			return
		}
		if !fn(key, obj[i:vEnd]) {
			return
		}
		i = skipWS(obj, vEnd)
		if i >= len(obj) || obj[i] != ',' {
			return
		}
		i++
	}
}

// StringLen returns the length in bytes of the raw JSON string raw once
// decoded (an escape counts as the UTF-8 bytes it stands for, so a tool
// call's partial JSON full of \" is not counted double; a lone or
// mismatched surrogate as U+FFFD, as encoding/json decodes it), or 0 when
// raw is not a string. It does not allocate.
func StringLen(raw string) int {
	if len(raw) < 2 || raw[0] != '"' {
		return 0
	}
	body := raw[1 : len(raw)-1]
	i := strings.IndexByte(body, '\\')
	if i < 0 {
		return len(body)
	}
	n := i
	for i < len(body) {
		if body[i] != '\\' {
			n++
			i++
			continue
		}
		if i+1 < len(body) && body[i+1] == 'u' {
			if r, k := uRune(body, i); k > 0 {
				n += utf8.RuneLen(r)
				i += k
				continue
			}
		}
		// A one-letter escape (\n, \", …), or a malformed one.
		n++
		i += min(2, len(body)-i)
	}
	return n
}

// skipWS returns the index of the first byte at or after s[i] that is not
// JSON whitespace.
func skipWS(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r') {
		i++
	}
	return i
}

// valueEnd returns the index just past the JSON value starting at s[i],
// or -1 if it is malformed or truncated. Objects and arrays are matched by
// bracket depth (strings inside skipped whole); any other value runs to
// the next delimiter or whitespace.
func valueEnd(s string, i int) int {
	if i >= len(s) {
		return -1
	}
	switch s[i] {
	case '"':
		return StringEnd(s, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(s); j++ {
			switch s[j] {
			case '"':
				e := StringEnd(s, j)
				if e < 0 {
					return -1
				}
				j = e - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
		return -1
	default:
		j := i
		for j < len(s) && s[j] != ',' && s[j] != '}' && s[j] != ']' &&
			s[j] != ' ' && s[j] != '\t' && s[j] != '\n' && s[j] != '\r' {
			j++
		}
		if j == i {
			return -1
		}
		return j
	}
}
