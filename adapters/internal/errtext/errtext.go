// Package errtext holds what the provider adapters share when decoding an
// upstream error response: the message to show when the body is not in
// the provider's error format.
package errtext

import (
	"bytes"
	"net/http"
	"unicode/utf8"
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
	if len(body) > 0 {
		return string(body)
	}
	if t := http.StatusText(status); t != "" {
		return t
	}
	return "upstream error"
}
