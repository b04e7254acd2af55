package anthropic

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/metisgateway/metis/adapters/internal/errtext"
	"github.com/metisgateway/metis/internal/jsonx"
	"github.com/metisgateway/metis/ir"
)

type inErrorBody struct {
	Type  string `json:"type"`
	Error *struct {
		Type    string `json:"type"`
		Message string `json:"message"`
	} `json:"error"`
}

type outErrorDetail struct {
	Type    string `json:"type"`
	Message string `json:"message"`
}

type outErrorBody struct {
	Type  string         `json:"type"`
	Error outErrorDetail `json:"error"`
}

// knownKinds are the Anthropic error types.
var knownKinds = map[string]ir.ErrorKind{
	"invalid_request_error": ir.ErrInvalidRequest, "authentication_error": ir.ErrAuthentication,
	"permission_error": ir.ErrPermission, "not_found_error": ir.ErrNotFound,
	"request_too_large": ir.ErrRequestTooLarge, "rate_limit_error": ir.ErrRateLimit,
	"billing_error": ir.ErrBilling, "timeout_error": ir.ErrTimeout,
	"overloaded_error": ir.ErrOverloaded, "api_error": ir.ErrAPI,
}

// IsErrorBody reports whether body is an Anthropic error object
// ({"type":"error",...}).
func IsErrorBody(body []byte) bool {
	var e inErrorBody
	return json.Unmarshal(body, &e) == nil && e.Type == "error" && e.Error != nil
}

// DecodeError reads an Anthropic error response (status and body) into a
// neutral error. A body that is not Anthropic-shaped still yields an error
// classed by status, with the body text (cut to 1 KiB) as message.
func DecodeError(status int, body []byte) *ir.Error {
	e := &ir.Error{Status: status, Kind: ir.KindForStatus(status)}
	var in inErrorBody
	if json.Unmarshal(body, &in) == nil && in.Error != nil {
		if k, ok := knownKinds[in.Error.Type]; ok {
			e.Kind = k
		}
		e.Code = in.Error.Type
		e.Message = in.Error.Message
		if e.Kind == ir.ErrInvalidRequest && contextOverflow(e.Message) {
			e.Code = ir.CodeContextLength
		}
	}
	if e.Message == "" {
		e.Message = errtext.Fallback(status, body)
	}
	return e
}

// ErrorStatus is the HTTP status an Anthropic client should see for e:
// the same status, except that overloaded (OpenAI 503) becomes 529 and a
// non-error status becomes 500.
func ErrorStatus(e *ir.Error) int {
	switch {
	case e.Kind == ir.ErrOverloaded:
		return 529
	case e.Status < 400 || e.Status > 599:
		return http.StatusInternalServerError
	}
	return e.Status
}

// EncodeError writes e as an Anthropic error response: status and body.
func EncodeError(e *ir.Error) (int, []byte) {
	return ErrorStatus(e), errorJSON(e)
}

// EncodeStreamError writes e as a mid-stream Anthropic error event.
func EncodeStreamError(dst []byte, e *ir.Error) []byte {
	return appendEvent(dst, "error", errorJSON(e))
}

// contextOverflow reports whether an invalid_request_error's message says
// the request does not fit the model's context window: the prompt alone
// ("prompt is too long: N tokens > M maximum"), or, on models before the
// 4.5 generation, the prompt and max_tokens together ("input length and
// `max_tokens` exceed context limit: …", which Claude Code reads to lower
// its max_tokens itself).
func contextOverflow(msg string) bool {
	return strings.HasPrefix(msg, ir.PromptTooLong) || strings.HasPrefix(msg, "input length and `max_tokens` exceed context limit")
}

// errorJSON is e as an Anthropic error body. A prompt too long for the
// context window is said Anthropic's way, which Claude Code reads to
// offer compaction.
func errorJSON(e *ir.Error) []byte {
	msg := e.Message
	if e.Code == ir.CodeContextLength && !contextOverflow(msg) {
		msg = ir.PromptTooLong + ": " + msg
	}
	return jsonx.MarshalNoEscape(outErrorBody{Type: "error", Error: outErrorDetail{Type: string(e.Kind), Message: msg}})
}

// KindFromType maps an Anthropic error type, or a loose spelling of one,
// to a neutral kind (api_error when unknown).
func KindFromType(t string) ir.ErrorKind {
	if k, ok := knownKinds[t]; ok {
		return k
	}
	switch t {
	case "server_error", "internal_server_error":
		return ir.ErrAPI
	case "rate_limit_exceeded", "tokens", "requests":
		return ir.ErrRateLimit
	case "insufficient_quota":
		return ir.ErrBilling
	case "invalid_request", "bad_request":
		return ir.ErrInvalidRequest
	case "service_unavailable", "overloaded":
		return ir.ErrOverloaded
	}
	return ir.ErrAPI
}
