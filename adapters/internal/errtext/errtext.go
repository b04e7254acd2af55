// Package errtext holds what the provider adapters share when wording an
// upstream body they cannot use: the message to show when an error body
// is not in the provider's format, and a decoding error in the wire's
// terms.
package errtext

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/tidwall/gjson"
)

// maxBody is how many bytes of an unparsed error body Fallback keeps.
const maxBody = 1024

// Fallback returns the message for an error response whose body nobody
// could parse: the body itself, trimmed of surrounding whitespace and cut
// to 1 KiB (back to a valid UTF-8 boundary); for an empty body the
// status's text, or "upstream error" for a status without one.
func Fallback(status int, body []byte) string {
	body = bytes.TrimSpace(body)
	if len(body) > maxBody {
		body = body[:maxBody]
		for len(body) > 0 && !utf8.Valid(body) {
			body = body[:len(body)-1]
		}
	}
	if m := JSONMessage(body); m != "" {
		return m
	}
	if len(body) > 0 {
		return string(body)
	}
	if t := http.StatusText(status); t != "" {
		return t
	}
	return "upstream error"
}

// JSONMessage is the message of an error body in a shape neither
// provider uses but compatible servers do: FastAPI's {"detail": "…"} or
// its validation list {"detail": [{"loc": […], "msg": "…"}]}, a
// {"message": "…"} (NestJS: a list of them, beside "error" holding the
// status text), or {"error": "…"} (review 29U: a translated error read
// `{"detail":"Model 'x' not found"}` as its message). "" when it is none
// of them.
func JSONMessage(body []byte) string {
	body = bytes.TrimSpace(body)
	if len(body) == 0 || body[0] != '{' || !gjson.ValidBytes(body) {
		return ""
	}
	root := gjson.ParseBytes(body)
	for _, k := range [...]string{"detail", "message", "error"} {
		v := root.Get(k)
		if v.Type == gjson.String && v.Str != "" {
			return v.Str
		}
		var msgs []string
		v.ForEach(func(_, d gjson.Result) bool {
			if d.Type == gjson.String && d.Str != "" {
				msgs = append(msgs, d.Str)
				return true
			}
			msg := d.Get("msg").Str
			if msg == "" {
				return true
			}
			var loc []string
			d.Get("loc").ForEach(func(_, l gjson.Result) bool {
				loc = append(loc, l.String())
				return true
			})
			if len(loc) > 0 {
				msg = strings.Join(loc, ".") + ": " + msg
			}
			msgs = append(msgs, msg)
			return true
		})
		if v.IsArray() && len(msgs) > 0 {
			return strings.Join(msgs, "; ")
		}
	}
	return ""
}

// Decode words an encoding/json error about a provider's body in the
// wire's terms: which member holds what JSON type where the API has
// another, never the gateway's Go type names (review 29U: a client read
// "cannot unmarshal array into Go value of type openai.inResponse").
// Other errors are returned as they are.
func Decode(err error) error {
	var te *json.UnmarshalTypeError
	if !errors.As(err, &te) {
		return err
	}
	where := "the body"
	if te.Field != "" {
		where = "member " + strconv.Quote(te.Field)
	}
	return fmt.Errorf("%s is a JSON %s where the API has %s", where, te.Value, jsonKind(te.Type))
}

// jsonKind names the JSON type a Go type decodes from.
func jsonKind(t reflect.Type) string {
	if t == nil {
		return "another type"
	}
	switch t.Kind() {
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint8,
		reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer" // a count sent as 12.0 is a JSON number too
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Pointer:
		return jsonKind(t.Elem())
	}
	return "another type"
}
