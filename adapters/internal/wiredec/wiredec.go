// Package wiredec holds the pieces shared by the adapters' fast JSON
// readers, which fill wire structs from one gjson pass and give up (so the
// caller falls back to encoding/json) on anything they cannot read exactly
// as encoding/json would.
package wiredec

import (
	"github.com/tidwall/gjson"

	"github.com/metisgateway/metis/adapters/internal/wirestr"
)

// MaybeFoldedKey reports whether an unknown key could still name a known
// field under encoding/json's case-insensitive matching (it has an upper
// case or non-ASCII letter).
func MaybeFoldedKey(k string) bool {
	for i := 0; i < len(k); i++ {
		if c := k[i]; c >= 'A' && c <= 'Z' || c >= 0x80 {
			return true
		}
	}
	return false
}

// Fields walks the members of object v, calling set for each member named
// in names (at most 32) with its index, and every, when not nil, for every
// member. It fails on a value that is not an object, a repeated known name,
// a name that may fold to a known one, or when set fails.
func Fields(v gjson.Result, names []string, every func(k string, v gjson.Result), set func(i int, v gjson.Result) bool) bool {
	if !v.IsObject() {
		return false
	}
	var seen uint32
	ok := true
	v.ForEach(func(k, f gjson.Result) bool {
		if every != nil {
			every(k.Str, f)
		}
		i := -1
		for j, n := range names {
			if k.Str == n {
				i = j
				break
			}
		}
		if i < 0 {
			ok = !MaybeFoldedKey(k.Str)
			return ok
		}
		if seen&(1<<i) != 0 {
			ok = false
			return false
		}
		seen |= 1 << i
		ok = set(i, f)
		return ok
	})
	return ok
}

// Str reads a JSON string as encoding/json does (null leaves *dst as is).
func Str(v gjson.Result, dst *string) bool {
	switch v.Type {
	case gjson.String:
		*dst = wirestr.Of(v)
		return true
	case gjson.Null:
		return true
	}
	return false
}
