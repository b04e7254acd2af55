package openai

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/metisgateway/metis/adapters/internal/errtext"
	"github.com/metisgateway/metis/internal/jsonx"
	"github.com/metisgateway/metis/ir"
)

type inErrorDetail struct {
	Message string          `json:"message"`
	Type    string          `json:"type"`
	Param   *string         `json:"param"`
	Code    json.RawMessage `json:"code"`
}

type outErrorDetail struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

type outErrorBody struct {
	Error outErrorDetail `json:"error"`
}

// IsErrorBody reports whether body is an OpenAI error object
// ({"error":{...}} without Anthropic's top-level "type":"error").
func IsErrorBody(body []byte) bool {
	var e struct {
		Type  string          `json:"type"`
		Error json.RawMessage `json:"error"`
	}
	return json.Unmarshal(body, &e) == nil && e.Type == "" && len(e.Error) > 0 && e.Error[0] == '{'
}

// parseErrorDetail reads {"error":{...}}, {"error":"text"} or vLLM's
// {"object":"error","message":…,"type":…,"code":…}.
func parseErrorDetail(body []byte) (inErrorDetail, bool) {
	var env struct {
		Error  json.RawMessage `json:"error"`
		Object string          `json:"object"`
	}
	var d inErrorDetail
	if json.Unmarshal(body, &env) != nil {
		return d, false
	}
	if env.Object == "error" && len(env.Error) == 0 {
		return d, json.Unmarshal(body, &d) == nil && d.Message != ""
	}
	if isJSONNull(env.Error) {
		return d, false
	}
	if isJSONString(env.Error) {
		// {"error": "…"} alone, or beside a "message" with the reason
		// (NestJS: "error" is the status text): the reason (review 29R).
		d.Message = errtext.JSONMessage(body)
		return d, d.Message != "" || json.Unmarshal(env.Error, &d.Message) == nil
	}
	return d, json.Unmarshal(env.Error, &d) == nil
}

func codeString(raw json.RawMessage) string {
	if isJSONNull(raw) {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return string(bytes.TrimSpace(raw))
}

// DecodeError reads an OpenAI(-compatible) error response into a neutral
// error. The class follows the status (503 = overloaded); Code keeps
// OpenAI's code (e.g. insufficient_quota, rate_limit_exceeded). A body
// that is not OpenAI-shaped yields its text (cut to 1 KiB) as message.
func DecodeError(status int, body []byte) *ir.Error {
	e := &ir.Error{Status: status, Kind: ir.KindForStatus(status)}
	if d, ok := parseErrorDetail(body); ok {
		e.Message = d.Message
		e.Code = codeString(d.Code)
		if e.Code == "" {
			e.Code = d.Type
		}
		if d.Param != nil {
			e.Param = *d.Param
		}
		if e.Code == "insufficient_quota" {
			e.Kind = ir.ErrBilling
		}
		if e.Code != ir.CodeContextLength && e.Kind == ir.ErrInvalidRequest && strings.Contains(e.Message, "maximum context length") {
			// vLLM and other compatible servers say so without the code.
			e.Code = ir.CodeContextLength
		}
	}
	if e.Message == "" {
		e.Message = errtext.Fallback(status, body)
	}
	return e
}

// ErrorType is the OpenAI error type for a neutral kind.
func ErrorType(k ir.ErrorKind) string {
	switch k {
	case ir.ErrInvalidRequest, ir.ErrNotFound, ir.ErrRequestTooLarge:
		return "invalid_request_error"
	case ir.ErrAuthentication:
		return "authentication_error"
	case ir.ErrPermission:
		return "permission_error"
	case ir.ErrRateLimit:
		return "rate_limit_error"
	case ir.ErrBilling:
		return "insufficient_quota"
	}
	return "server_error"
}

// ErrorStatus is the HTTP status an OpenAI client should see for e: the
// same, except Anthropic's 529 becomes 503 and a non-error status 500.
func ErrorStatus(e *ir.Error) int {
	switch {
	case e.Status == 529:
		return http.StatusServiceUnavailable
	case e.Status < 400 || e.Status > 599:
		return http.StatusInternalServerError
	}
	return e.Status
}

func errorDetail(e *ir.Error) outErrorDetail {
	d := outErrorDetail{Message: e.Message, Type: ErrorType(e.Kind)}
	code := e.Code
	if code == "" {
		code = string(e.Kind)
	}
	d.Code = &code
	if e.Param != "" {
		p := e.Param
		d.Param = &p
	}
	return d
}

// EncodeError writes e as an OpenAI error response: status and body.
// A prompt too long for the context window gets OpenAI's code for it,
// context_length_exceeded, which Codex CLI acts on.
func EncodeError(e *ir.Error) (int, []byte) {
	return ErrorStatus(e), jsonx.MarshalNoEscape(outErrorBody{Error: errorDetail(e)})
}

// EncodeStreamError writes e as a mid-stream OpenAI error chunk
// (data: {"error":{...}}), which OpenAI SDKs raise as an error.
func EncodeStreamError(dst []byte, e *ir.Error) []byte {
	b := jsonx.MarshalNoEscape(outErrorBody{Error: errorDetail(e)})
	dst = append(dst, "data: "...)
	dst = append(dst, b...)
	return append(dst, "\n\n"...)
}
