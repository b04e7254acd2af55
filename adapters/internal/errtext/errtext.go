// Package errtext holds what the provider adapters share when decoding an
// upstream error response: the message to show when the body is not in
// the provider's error format.
package errtext

import (
	"bytes"
	"net/http"
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
	if m := jsonMessage(body); m != "" {
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

// jsonMessage is the message of an error body in a shape neither provider
// uses but compatible servers do: FastAPI's {"detail": "…"} or its
// validation list {"detail": [{"loc": […], "msg": "…"}]}, and
// {"message": "…"} or {"error": "…"} (review 29U: a translated error read
// `{"detail":"Model 'x' not found"}` as its message). "" when it is none
// of them.
func jsonMessage(body []byte) string {
	if len(body) == 0 || body[0] != '{' || !gjson.ValidBytes(body) {
		return ""
	}
	root := gjson.ParseBytes(body)
	for _, k := range [...]string{"detail", "message", "error"} {
		if v := root.Get(k); v.Type == gjson.String && v.Str != "" {
			return v.Str
		}
	}
	var msgs []string
	root.Get("detail").ForEach(func(_, d gjson.Result) bool {
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
	return strings.Join(msgs, "; ")
}
