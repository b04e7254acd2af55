package metis

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/metisgateway/metis/ir"
)

// apiError is an error the gateway itself answers, before or instead of an
// upstream call. It is written in the caller's API shape.
type apiError struct {
	status int
	msg    string
	// reason is the request.rejected reason recorded in the trace.
	reason string
	// code, when set, is the OpenAI error code to send instead of the one
	// the status implies (openAIError): a 404 is model_not_found unless the
	// error says otherwise.
	code string
	// param, when set, is the OpenAI error's param: the request field at
	// fault (null otherwise).
	param string
	// bodyStarted is set when the refusal came after the body began to be
	// read (a client waiting for 100 Continue has been told to send it).
	bodyStarted bool
	// routeSlot, when set, is the routing chain's slot that chose the model
	// of a request that named none (recorded with the refusal).
	routeSlot string
	// keyID, when set, is the revoked or expired key a refusal names in
	// the log only: its calls are not attributed to it.
	keyID string
	// mayRetry marks a 401 or 403 a retry may fix (a key issued a moment
	// ago): told with Retry-After: 1 rather than X-Should-Retry: false.
	mayRetry bool
}

func (e *apiError) Error() string { return e.msg }

func reject(status int, reason, msg string) *apiError {
	return &apiError{status: status, msg: msg, reason: reason}
}

// anthropicErrorType is Anthropic's error.type for an HTTP status.
func anthropicErrorType(status int) string {
	switch status {
	case http.StatusBadRequest, http.StatusMethodNotAllowed, http.StatusUnprocessableEntity:
		return "invalid_request_error"
	case http.StatusUnauthorized:
		return "authentication_error"
	case http.StatusPaymentRequired:
		return "billing_error"
	case http.StatusForbidden:
		return "permission_error"
	case http.StatusNotFound:
		return "not_found_error"
	case http.StatusRequestEntityTooLarge:
		return "request_too_large"
	case http.StatusTooManyRequests:
		return "rate_limit_error"
	case http.StatusGatewayTimeout:
		return "timeout_error"
	case 529, http.StatusServiceUnavailable:
		return "overloaded_error"
	default:
		if status >= 400 && status < 500 {
			return "invalid_request_error"
		}
		return "api_error"
	}
}

// codeInsufficientQuota is OpenAI's type and code for an exhausted quota
// (a 429 its clients do not retry): a budget refusal no prompt retry can
// cure.
const codeInsufficientQuota = "insufficient_quota"

// codeBudgetTooSmall is the OpenAI error code of a 400 for a call whose
// worst case is more than its budget's whole hard limit.
const codeBudgetTooSmall = "budget_too_small"

// openAIError is the OpenAI type and code for an HTTP status.
func openAIError(status int) (typ, code string) {
	switch status {
	case http.StatusUnauthorized:
		return "invalid_request_error", "invalid_api_key"
	case http.StatusForbidden:
		return "invalid_request_error", "model_not_allowed"
	case http.StatusNotFound:
		return "invalid_request_error", "model_not_found"
	case http.StatusMethodNotAllowed:
		return "invalid_request_error", "method_not_allowed"
	case http.StatusRequestEntityTooLarge:
		return "invalid_request_error", "request_too_large"
	case http.StatusTooManyRequests:
		return "rate_limit_exceeded", "rate_limit_exceeded"
	case http.StatusGatewayTimeout:
		return "server_error", "timeout"
	default:
		if status >= 400 && status < 500 {
			return "invalid_request_error", "invalid_request"
		}
		return "server_error", "server_error"
	}
}

// errorBody renders a gateway error in the caller's shape.
func errorBody(shape string, e *apiError) []byte {
	var v any
	if shape == shapeAnthropic {
		v = map[string]any{"type": "error", "error": map[string]any{"type": anthropicErrorType(e.status), "message": e.msg}}
	} else {
		typ, code := openAIError(e.status)
		if e.code != "" {
			code = e.code
		}
		if code == codeInsufficientQuota {
			typ = code // OpenAI's own: type and code alike
		}
		var param any
		if e.param != "" {
			param = e.param
		}
		v = map[string]any{"error": map[string]any{"message": e.msg, "type": typ, "param": param, "code": code}}
	}
	b, _ := json.Marshal(v)
	return b
}

// untranslatable is the 400 for a request the other shape cannot express:
// a translator's *ir.Error gives its own message and field (LOSSY.md),
// anything else its text.
func untranslatable(err error) *apiError {
	e := reject(http.StatusBadRequest, "untranslatable", err.Error())
	if ie, ok := errors.AsType[*ir.Error](err); ok {
		e.msg, e.param = ie.Message, ie.Param
		if ie.Param != "" {
			e.msg = ie.Param + ": " + ie.Message
		}
	}
	return e
}

// writeError writes a gateway error in the caller's shape.
func writeError(w http.ResponseWriter, shape string, status int, msg string) {
	writeAPIError(w, shape, &apiError{status: status, msg: msg})
}

// writeAPIError writes a gateway error in the caller's shape.
//
// The Allow header of a 405 is the endpoint's, which only the dispatcher
// knows: Gateway.ServeHTTP sets it from allowFor before the handler runs,
// for a request whose method the endpoint does not answer. Here it is kept
// on a 405 and dropped from any other status (a wrong-method request that
// fails authentication first gets a plain 401).
func writeAPIError(w http.ResponseWriter, shape string, e *apiError) {
	b := errorBody(shape, e)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	if e.status != http.StatusMethodNotAllowed {
		h.Del("Allow")
	}
	switch {
	case e.mayRetry:
		h.Set("Retry-After", "1")
	case e.status == http.StatusUnauthorized || e.status == http.StatusForbidden:
		// A key that is wrong, revoked or expired, or a model the key may
		// not use, stays so: Claude Code retries a 401 ten times over
		// three minutes before telling its user (review 29K), and honours
		// this header.
		h.Set("X-Should-Retry", "false")
	}
	w.WriteHeader(e.status)
	_, _ = w.Write(b)
}

// streamErrorEvent is a same-shape stream's mid-stream server error in the
// caller's SSE dialect: Anthropic's api_error, OpenAI's server_error.
func streamErrorEvent(shape, msg string) []byte {
	if shape == shapeAnthropic {
		b, _ := json.Marshal(map[string]any{"type": "error", "error": map[string]any{"type": "api_error", "message": msg}})
		return append(append([]byte("event: error\ndata: "), b...), '\n', '\n')
	}
	b, _ := json.Marshal(map[string]any{"error": map[string]any{"message": msg, "type": "server_error", "param": nil, "code": "server_error"}})
	return append(append([]byte("data: "), b...), '\n', '\n')
}

// earlyData reports whether a request came in TLS early data (HTTP/3
// 0-RTT, which Caddy accepts by default), or says so (Early-Data: 1 from a
// proxy in front, RFC 8470). Early data can be replayed by anyone on the
// path: a call served from it could be run, and billed, again (review 30H).
func earlyData(r *http.Request) bool {
	return r.TLS != nil && !r.TLS.HandshakeComplete || r.Header.Get("Early-Data") == "1"
}

// tooEarly is the refusal of an LLM call sent in early data: 425 Too Early,
// which tells the client to send it again once its handshake is complete
// (RFC 8470 §5.2).
func tooEarly() *apiError {
	return reject(http.StatusTooEarly, "too_early",
		"the request came in TLS early data (0-RTT), which can be replayed; send it again once the connection's handshake is complete")
}
