package ir

import "fmt"

// ErrorKind is a provider-neutral error class.
type ErrorKind string

// Error kinds, named after the Anthropic error types they correspond to.
const (
	ErrInvalidRequest  ErrorKind = "invalid_request_error"
	ErrAuthentication  ErrorKind = "authentication_error"
	ErrPermission      ErrorKind = "permission_error"
	ErrNotFound        ErrorKind = "not_found_error"
	ErrRequestTooLarge ErrorKind = "request_too_large"
	ErrRateLimit       ErrorKind = "rate_limit_error"
	ErrBilling         ErrorKind = "billing_error"
	ErrTimeout         ErrorKind = "timeout_error"
	ErrOverloaded      ErrorKind = "overloaded_error"
	ErrAPI             ErrorKind = "api_error"
)

// CodeContextLength is the Code of an error that says the prompt does
// not fit the model's context window, in OpenAI's spelling (Anthropic says
// so in its message: "prompt is too long: …"). Clients act on it: Codex
// CLI and Claude Code tell the user to compact, and compact on their own.
const CodeContextLength = "context_length_exceeded"

// PromptTooLong is how Anthropic's message for CodeContextLength begins.
const PromptTooLong = "prompt is too long"

// Error is a provider-neutral error: an HTTP status, a class and a message.
// Code keeps the provider's own error code or type (e.g. OpenAI
// "insufficient_quota") when it says more than Kind. Param names the
// offending request field when known.
type Error struct {
	Status  int
	Kind    ErrorKind
	Code    string
	Param   string
	Message string
}

// Error implements the error interface.
func (e *Error) Error() string {
	if e.Param != "" {
		return fmt.Sprintf("%s (%s): %s", e.Kind, e.Param, e.Message)
	}
	return fmt.Sprintf("%s: %s", e.Kind, e.Message)
}

// Invalid returns a 400 invalid-request error naming the request field.
func Invalid(param, format string, args ...any) *Error {
	return &Error{Status: 400, Kind: ErrInvalidRequest, Param: param, Message: fmt.Sprintf(format, args...)}
}

// KindForStatus is the error class an HTTP status implies when the body
// says nothing better.
func KindForStatus(status int) ErrorKind {
	switch {
	case status == 401:
		return ErrAuthentication
	case status == 402:
		return ErrBilling
	case status == 403:
		return ErrPermission
	case status == 404:
		return ErrNotFound
	case status == 413:
		return ErrRequestTooLarge
	case status == 429:
		return ErrRateLimit
	case status == 503 || status == 529:
		return ErrOverloaded
	case status == 504:
		return ErrTimeout
	case status >= 500:
		return ErrAPI
	case status >= 400:
		return ErrInvalidRequest
	}
	return ErrAPI
}
