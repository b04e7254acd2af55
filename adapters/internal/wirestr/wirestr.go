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
