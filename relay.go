package metis

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"
	"go.uber.org/zap"

	"github.com/metisgateway/metis/adapters/anthropic"
	"github.com/metisgateway/metis/adapters/openai"
	"github.com/metisgateway/metis/adapters/sse"
	"github.com/metisgateway/metis/adapters/translate"
	"github.com/metisgateway/metis/internal/jsonx"
	"github.com/metisgateway/metis/ir"
)

const maxUpstreamBody = 256 << 20

// Error classes recorded in llm.call_completed.
const (
	errCancelled         = "CANCELLED"
	errRateLimited       = "RATE_LIMITED"
	errUpstream          = "UPSTREAM_ERROR"
	errUpstreamTimeout   = "UPSTREAM_TIMEOUT"
	errUpstreamUnreached = "UPSTREAM_UNREACHABLE"
	errStreamInterrupted = "STREAM_INTERRUPTED"
	errBadUpstreamBody   = "BAD_UPSTREAM_RESPONSE"
)

// statusClientClosed is recorded when the client went away before any
// response was written (nginx's convention).
const statusClientClosed = 499

// upstreamFailed handles a call that got no response at all.
func (c *call) upstreamFailed(err error) {
	switch {
	case c.ctx.Err() != nil:
		c.status, c.errorClass = statusClientClosed, errCancelled
		// Cut while the provider worked on the request: it bills the
		// prompt at least (a non-streamed answer goes on being
		// generated), so the call records the prompt's estimate, as a
		// stream cancelled while its headers were held does (review 26S:
		// a $0 let a client that leaves early spend past its budget).
		// Otherwise a request the provider had and did not answer (a
		// connection that failed, before the client left during the wait
		// to retry) makes the zero the gateway's estimate; none
		// (connections refused, error answers, which bill nothing): an
		// exact zero.
		c.usage.Estimated = c.unanswered
		c.promptBilled()
		c.tellShutdown()
		return
	case isTimeout(err) && !connectFailed(err):
		c.status, c.errorClass = http.StatusGatewayTimeout, errUpstreamTimeout
		// The provider got the request and reported no usage in all the
		// time it was given: as for a cancel, the prompt's estimate.
		c.usage.Estimated = true
		c.promptBilled()
		c.writeError(fmt.Sprintf("provider %s did not answer in time", c.res.prov.name))
	default:
		c.status, c.errorClass = http.StatusBadGateway, errUpstreamUnreached
		// A connection that failed after the request went out may have
		// carried a request the provider read and bills (audit 24K: a
		// reset before the headers was recorded as an exact $0).
		c.usage.Estimated = c.unanswered
		c.writeError(fmt.Sprintf("provider %s is unreachable", c.res.prov.name))
	}
	c.res.prov.warnFailed(c.g.logger, c, err)
}

// failWarnEvery spaces a provider's "upstream call failed" lines: a
// provider down fails every call, each of which has its own llm call line.
const failWarnEvery = 10 * time.Second

// warnFailed logs that a call got no answer from the provider (it was
// unreachable, or timed out), with the provider, model and key an
// operator filtering on WARN needs (review 28L: one line per call, naming
// only the turn).
func (p *provider) warnFailed(logger *zap.Logger, c *call, err error) {
	p.warnBurst(&p.failed, logger, c, "upstream call failed",
		"upstream calls failed: no answer from the provider (counted every 10 s; each call's llm call line has its own)", zapErr(err))
}

// warnErrored logs that the provider answered a call with a 429 or a
// 5xx once the gateway's retries were spent (review 28L: the operator
// filtering on WARN saw an overloaded or rate-limited provider only in
// INFO llm call lines). Another 4xx is the request's own fault, and
// 401/403 have warnRefusedKey.
//
// The same goes for an error the provider put in a 200: its stream's
// error event (an overload after the headers), an error for a body, a
// failed Responses answer; errType is the provider's error type where it
// gave one, and a type that is the request's fault is left out, as a 4xx
// is (review 29R2). count_tokens, free and with no llm call line, is too.
func (p *provider) warnErrored(logger *zap.Logger, c *call, errType string) {
	if c.kind == kindCountTokens || requestFault(errType) {
		return
	}
	extra := []zap.Field{zap.Int("status", c.status), zap.Int("attempts", c.attempts)}
	if errType != "" {
		extra = append(extra, zap.String("error_type", errType))
	}
	p.warnBurst(&p.errored, logger, c, "provider answered an error",
		"provider answered errors (counted every 10 s; each call's llm call line has its own)", extra...)
}

// requestFault reports whether a provider's error type says the request
// was at fault (invalid, too large, refused by a content filter) rather
// than the provider: any other type, a vendor's own included (vLLM's
// InternalServerError, TGI's incomplete_generation), is the provider's
// (review 29R3).
func requestFault(errType string) bool {
	t := strings.ToLower(errType)
	for _, s := range [...]string{"invalid", "bad_request", "badrequest", "not_found", "notfound", "too_large",
		"too_small", "parse_error", "empty_", "failed_to_download", "validation", "content_filter",
		"content_policy", "context_length", "unsupported"} {
		if strings.Contains(t, s) {
			return true
		}
	}
	return false
}

// warnBurst logs a provider fault of call c on b: the first of a burst at
// once, as msg with the provider, model, key id, error class and extra,
// and the others counted per provider in a countMsg line at the end of
// each failWarnEvery in which more came.
func (p *provider) warnBurst(b *burstLog, logger *zap.Logger, c *call, msg, countMsg string, extra ...zap.Field) {
	name := p.name // the count line, kept for the burst, holds no call
	b.add(failWarnEvery, func() {
		fields := append([]zap.Field{zap.String("provider", name), zap.String("model", c.res.model),
			zap.String("error_class", c.errorClass), zapTurn(c.turnID)}, extra...)
		if c.key != nil {
			fields = append(fields, zap.String("key_id", c.key.ID))
		}
		logger.Warn(msg, fields...)
	}, func(n int64) {
		logger.Warn(countMsg, zap.String("provider", name), zap.Int64("calls", n), zap.Duration("within", failWarnEvery))
	})
}

// promptBilled records the prompt's estimate for a call whose last
// request the provider had and was working on when the client left or the
// timeout ran out (c.cutInFlight): what it bills is unknown, the prompt at
// least. count_tokens is free.
func (c *call) promptBilled() {
	if !c.cutInFlight {
		return
	}
	c.usage.Estimated = true
	if c.kind != kindCountTokens {
		c.usage.InputTokens = c.promptEstimate()
	}
}

// relayError returns an upstream error: unmodified to a same-shape client
// (status, body, retry-after, request-id), translated to a cross-shape one.
func (c *call) relayError(resp *http.Response) {
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil && c.ctx.Err() != nil {
		c.status, c.errorClass = statusClientClosed, errCancelled
		c.tellShutdown()
		return
	}
	body = c.res.prov.scrubSecrets(body)
	c.status = resp.StatusCode
	if c.status == http.StatusTooManyRequests {
		c.errorClass = errRateLimited
	} else {
		c.errorClass = errUpstream
	}
	if err != nil {
		// The status and headers came, the body stopped: the client gets
		// them with the gateway's word for the body, in its shape.
		c.g.logger.Warn("reading the provider's error answer", zapTurn(c.turnID), zap.String("provider", c.res.prov.name),
			zap.Int("status", resp.StatusCode), zapErr(err))
		c.relayTranslatedError(resp.StatusCode, resp.Header,
			fmt.Appendf(nil, "provider %s answered %d, and the rest of its error did not arrive", c.res.prov.name, resp.StatusCode))
		return
	}
	switch {
	case c.status == http.StatusUnauthorized || c.status == http.StatusForbidden:
		c.res.prov.warnRefusedKey(c.g.logger, c.status)
	case c.status == http.StatusTooManyRequests || c.status >= 500:
		c.res.prov.warnErrored(c.g.logger, c, "")
	}
	if ce := resp.Header.Get("Content-Encoding"); ce != "" {
		// An encoding the gateway could not decode (decodeBody) nor the
		// client read (its Accept-Encoding was not sent): the status and
		// headers, with the gateway's word for the body.
		c.g.logger.Warn("provider answered an error in an encoding the gateway cannot read", zapTurn(c.turnID),
			zap.String("provider", c.res.prov.name), zap.Int("status", resp.StatusCode), zap.String("content_encoding", ce))
		c.relayTranslatedError(resp.StatusCode, resp.Header,
			fmt.Appendf(nil, "provider %s answered %d in Content-Encoding %q, which the gateway cannot read", c.res.prov.name, resp.StatusCode, ce))
		return
	}
	if !c.cross {
		// As it came, whatever it holds (a CDN's HTML page, a compatible
		// vendor's own error shape): the client sees what it would without
		// the gateway (contract §4).
		h := c.w.Header()
		c.relayHeaders(h, resp.Header)
		h.Set("Content-Length", strconv.Itoa(len(body)))
		c.w.WriteHeader(resp.StatusCode)
		_, _ = c.w.Write(body)
		return
	}
	c.relayTranslatedError(resp.StatusCode, resp.Header, body)
}

// relayHeaders copies the provider's response headers to a same-shape
// client's answer, without the provider's credentials.
func (c *call) relayHeaders(h, upHeader http.Header) {
	copyResponseHeaders(h, upHeader)
	c.res.prov.scrubHeaderSecrets(h)
}

// relayTranslatedError writes a provider's error (status, headers, body)
// in the client's shape: a cross-shape client gets its own shape's status
// for the error, a same-shape one the provider's.
func (c *call) relayTranslatedError(upStatus int, upHeader http.Header, body []byte) {
	var status int
	var out []byte
	if c.shape == shapeAnthropic {
		status, out = translate.ErrorToAnthropic(upStatus, body)
	} else {
		status, out = translate.ErrorToOpenAI(upStatus, body)
	}
	if !c.cross {
		status = upStatus
	}
	h := c.w.Header()
	for _, k := range []string{"Retry-After", "Retry-After-Ms", "X-Should-Retry"} {
		if v := upHeader.Get(k); v != "" {
			h.Set(k, c.res.prov.scrubString(v))
		}
	}
	c.setRequestID(h)
	if bytes.Contains(body, []byte("insufficient_quota")) {
		h.Set("X-Should-Retry", "false") // the SDKs would otherwise retry a 429
	}
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(out)))
	c.status = status // the trace records what the client got (error_class says what happened upstream)
	c.w.WriteHeader(status)
	_, _ = c.w.Write(out)
}

// isErrorBody reports whether a success's body is an error instead of an
// answer, in any of the forms providers, proxies and compatible servers
// send: {"type":"error","error":{…}}, {"error":{…}}, {"error":"text"},
// vLLM's {"object":"error",…}, whatever the provider's type (a proxy in
// front of Claude may answer in OpenAI's form: review 30A). A body whose
// answer members hold something (content, choices or output not empty, a
// usage object) is an answer, whatever else it holds.
func isErrorBody(body []byte) bool {
	if !bytes.Contains(body, []byte(`"error"`)) {
		return false // every answer but an error: no second parse
	}
	doc := gjson.ParseBytes(body)
	if !doc.IsObject() {
		return false
	}
	var failed, answer bool
	doc.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "error":
			failed = failed || v.IsObject() || v.Type == gjson.String && v.Str != ""
		case "type", "object":
			failed = failed || v.Str == "error"
		case "content", "choices", "output":
			// Held, not merely named: a server that serialises its whole
			// answer struct around an error sends "choices": null, and a
			// Responses API answer that failed at once "output": [] (30R).
			if v.IsArray() && len(v.Array()) > 0 || v.Type == gjson.String && v.Str != "" {
				answer = true
				return false
			}
		case "usage":
			if v.IsObject() {
				answer = true
				return false
			}
		}
		return true
	})
	// Validated last: an answer that names "error" somewhere (the
	// Responses API's "error": null) is told apart without a scan of all
	// of it.
	return failed && !answer && gjson.ValidBytes(body)
}

// errorOfBody is the type and code of an error body (isErrorBody): its
// error object's, or for vLLM's flat form the body's own.
func errorOfBody(body []byte) (typ, code string) {
	e := gjson.GetBytes(body, "error")
	if !e.IsObject() {
		e = gjson.ParseBytes(body)
		if e.Get("object").Str != "error" {
			return "", ""
		}
	}
	return e.Get("type").Str, e.Get("code").String()
}

// redirected answers a provider's redirect with a 502. Following it would
// take the provider key wherever the provider points; relaying it would
// send the client there with its gateway token (the SDKs keep x-api-key
// across hosts). Nothing was generated, so nothing is billed.
func (c *call) redirected(resp *http.Response) {
	_ = resp.Body.Close() // unread: the 502 need not wait for it
	c.status, c.errorClass = http.StatusBadGateway, errUpstream
	c.g.logger.Warn("provider answered a redirect, which the gateway does not follow; check its base_url",
		zapTurn(c.turnID), zap.String("provider", c.res.prov.name), zap.Int("status", resp.StatusCode),
		zap.String("location", c.res.prov.scrubString(resp.Header.Get("Location")))) // a compatible server may put the key in it (review 28L)
	c.writeError(fmt.Sprintf(
		"provider %s answered %d, a redirect, which the gateway does not follow: its base_url may need changing", c.res.prov.name, resp.StatusCode))
}

// undecodable answers a provider's success in an encoding the gateway did
// not ask for and cannot read (decodeBody): neither the client (its own
// Accept-Encoding was not sent) nor the ledger could read it.
func (c *call) undecodable(resp *http.Response) {
	_ = resp.Body.Close()
	ce := resp.Header.Get("Content-Encoding")
	c.unreadable(fmt.Sprintf("answered %d with Content-Encoding %q, which the gateway cannot read", resp.StatusCode, ce),
		zap.String("content_encoding", ce))
}

// unreadable answers a provider's success its encoding made unreadable (an
// encoding the gateway cannot decode, or bytes that do not decode): a 502
// BAD_UPSTREAM_RESPONSE saying why, not retried (the provider would send
// the same), priced from the prompt's estimate: the provider did the work.
func (c *call) unreadable(why string, fields ...zap.Field) {
	if c.kind != kindCountTokens {
		c.usage, c.haveUsage = ir.Usage{InputTokens: c.promptEstimate(), Estimated: true}, true
	}
	c.status, c.errorClass = http.StatusBadGateway, errBadUpstreamBody
	c.g.logger.Warn("provider's answer unreadable: "+why,
		append([]zap.Field{zapTurn(c.turnID), zap.String("provider", c.res.prov.name)}, fields...)...)
	c.writeError(fmt.Sprintf("provider %s %s", c.res.prov.name, why))
}

// decodeFailed is unreadable's why for bytes their encoding does not decode.
const decodeFailed = "answered in an encoding the gateway could not decode"

// relayBody relays a non-streamed answer and reads its usage.
func (c *call) relayBody(resp *http.Response) {
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxUpstreamBody))
	if err != nil && c.ctx.Err() == nil && !corrupt(err) && wholeJSON(body) {
		// The whole answer arrived and then the connection broke (before
		// a chunked body's terminator, say): the answer stands, as a
		// stream's last whole event does.
		c.g.logger.Debug("the provider's connection broke after its whole answer", zapTurn(c.turnID),
			zap.String("provider", c.res.prov.name), zapErr(err))
		err = nil
	}
	if err != nil {
		if c.kind != kindCountTokens {
			// The provider answered 200, having done the work it bills, and
			// the usage is in the part that never arrived: the prompt's
			// estimate, as for a stream cut before its usage.
			c.usage, c.haveUsage = ir.Usage{InputTokens: c.promptEstimate(), Estimated: true}, true
		}
		if c.ctx.Err() != nil {
			c.status, c.errorClass = statusClientClosed, errCancelled
			c.tellShutdown()
			return
		}
		if corrupt(err) {
			c.unreadable(decodeFailed, zapErr(err))
			return
		}
		c.status, c.errorClass = http.StatusBadGateway, errStreamInterrupted
		c.g.logger.Warn("reading the provider's answer", zapTurn(c.turnID), zap.String("provider", c.res.prov.name), zapErr(err))
		c.writeError(fmt.Sprintf("the answer of provider %s was interrupted", c.res.prov.name))
		return
	}
	c.status = resp.StatusCode
	out := body
	// A failed Responses API response carries its error beside the usage
	// it is billed by: read as a response (readUsage), not as an error body.
	failedResponse := c.kind == kindResponses && !c.cross && gjson.GetBytes(body, "usage").IsObject()
	if !failedResponse && isErrorBody(body) {
		// A success status with an error for a body (a proxy's, or a
		// compatible server's): nothing was generated, nothing is billed.
		c.errorClass, c.haveUsage = errUpstream, true
		typ, code := errorOfBody(body)
		if rateLimitedClass(typ) || strings.Contains(code, "rate_limit") || code == "429" {
			c.errorClass = errRateLimited
		}
		c.res.prov.warnErrored(c.g.logger, c, typ)
		if c.cross {
			// Told in the client's shape, as an error.
			c.relayTranslatedError(http.StatusBadGateway, resp.Header, c.res.prov.scrubSecrets(body))
			return
		}
	} else if c.cross && c.kind != kindCountTokens {
		// The translator reads the usage in the same pass over the answer.
		var uu translate.UpstreamUsage
		if c.shape == shapeAnthropic {
			out, uu, err = c.tstate.OpenAIResponseToAnthropicWithUsage(body)
		} else {
			out, uu, err = c.tstate.AnthropicResponseToOpenAIWithUsage(body, c.promptEstimate)
		}
		c.setUsage(body, uu.Usage, uu.Model, uu.Err)
		if err != nil {
			c.status, c.errorClass = http.StatusBadGateway, errBadUpstreamBody
			c.writeError("translating the provider's answer: " + err.Error())
			return
		}
	} else {
		c.readUsage(body)
	}
	h := c.w.Header()
	if c.cross {
		h.Set("Content-Type", "application/json")
		c.setRequestID(h)
	} else {
		c.relayHeaders(h, resp.Header)
		if h.Get("Content-Type") == "" && gjson.ValidBytes(out) {
			// Named, rather than left to net/http's guess (text/plain).
			h.Set("Content-Type", "application/json")
		}
	}
	if !c.cross && c.stream && c.hidesUsage() {
		// A stream sent as one JSON array: the usage chunk the gateway
		// asked for goes, as from an event stream (review 29R2).
		out = withoutUsageChunks(out)
	}
	if c.errorClass != "" || c.usage.Estimated || c.kind == kindCountTokens {
		// An error, or an answer whose usage the gateway could not read
		// (a proxy's page, an error in a shape it does not know: vLLM's,
		// FastAPI's {"detail": …}), is scrubbed as an error status's body
		// is (reviews 26S, 26R2); so is a count_tokens answer, small. An
		// answer with the provider's usage is the model's own text and
		// goes as it came, as in a stream.
		out = c.res.prov.scrubSecrets(out)
	}
	h.Set("Content-Length", strconv.Itoa(len(out)))
	c.w.WriteHeader(c.status)
	_, _ = c.w.Write(out)
}

// wholeJSON reports whether body is a whole JSON object: one cut short
// cannot be.
func wholeJSON(body []byte) bool {
	b := bytes.TrimSpace(body)
	return len(b) > 1 && b[0] == '{' && gjson.ValidBytes(b)
}

// readUsage extracts provider-native usage from a non-streamed body.
func (c *call) readUsage(body []byte) {
	if c.kind == kindCountTokens { // free: recorded, never billed
		c.usage = ir.Usage{InputTokens: gjson.GetBytes(body, "input_tokens").Int()}
		c.haveUsage = true
		return
	}
	switch {
	case c.res.prov.typ == shapeAnthropic:
		u, m, err := anthropic.ResponseUsage(body)
		c.setUsage(body, u, m.Model, err)
	case c.kind == kindResponses:
		u, m, err := openai.ResponsesUsage(body)
		c.setUsage(body, u, m.Model, err)
		if m.FinishReason == "failed" && c.errorClass == "" {
			// Billed all the same, and recorded as the provider's failure.
			c.errorClass = errUpstream
			e := gjson.GetBytes(body, "error.code").Str
			if strings.Contains(e, "rate_limit") {
				c.errorClass = errRateLimited
			}
			c.res.prov.warnErrored(c.g.logger, c, e)
		}
	default:
		u, m, err := openai.ResponseUsage(body)
		c.setUsage(body, u, m.Model, err)
	}
}

// setUsage records the usage and model read from the answer body, or an
// estimate when the usage reader failed (err).
func (c *call) setUsage(body []byte, u ir.Usage, model string, err error) {
	c.respModel = model
	if err != nil && isJSONArray(body) {
		// A stream sent as one JSON array (review 29U) names its model in
		// its chunks, and may carry the usage asked for in its last one.
		u, model, err = c.arrayUsage(body)
		if c.respModel == "" {
			c.respModel = model
		}
	}
	if err != nil {
		// An answer without readable usage is still priced: estimated,
		// rather than recorded as a silent $0.
		u = ir.Usage{InputTokens: c.promptEstimate(), OutputTokens: estimateAnswerTokens(streamFormatOf(c), body), Estimated: true}
		if c.errorClass == "" && !gjson.ValidBytes(body) {
			// Not an answer at all: cut short (a close-delimited body ends
			// in a clean EOF) or not JSON. Relayed as it came, recorded as
			// what it is.
			c.errorClass = errBadUpstreamBody
		}
	}
	c.usage, c.haveUsage = u, true
}

// arrayUsage reads the usage and model of a stream sent as one JSON array
// of its chunks or events: the usage from the last that carries one (a
// chat chunk's usage, a Responses event's response), the model from the
// first that names one. err is set when no usage was found.
func (c *call) arrayUsage(body []byte) (u ir.Usage, model string, err error) {
	err = errors.New("no usage in the array")
	var last gjson.Result
	gjson.Parse(jsonx.View(body)).ForEach(func(_, el gjson.Result) bool {
		if model == "" {
			for _, path := range [...]string{"model", "message.model", "response.model"} {
				if m := el.Get(path); m.Type == gjson.String && m.Str != "" {
					model = m.Str
					break
				}
			}
		}
		if el.Get("usage").IsObject() || el.Get("response.usage").IsObject() {
			last = el
		}
		return true
	})
	switch {
	case !last.Exists():
	case c.res.prov.typ == shapeAnthropic:
		// Its usage is split over message_start and message_delta: left
		// to the estimate.
	case last.Get("response").IsObject():
		u, _, err = openai.ResponsesUsage([]byte(last.Get("response").Raw))
	default:
		u, _, err = openai.ResponseUsage([]byte(last.Raw))
	}
	return u, model, err
}

// streamFormat is the wire format of a provider's stream.
type streamFormat uint8

// The stream formats the gateway reads.
const (
	formatChat      streamFormat = iota // Chat Completions chunks
	formatMessages                      // Anthropic Messages events
	formatResponses                     // Responses API events
)

// streamFormatOf is the format of the stream c's provider answers with.
func streamFormatOf(c *call) streamFormat {
	switch {
	case c.res.prov.typ == shapeAnthropic:
		return formatMessages
	case c.kind == kindResponses:
		return formatResponses
	}
	return formatChat
}

// streamObserver reads usage and completion from the provider's stream,
// with the tracker of its format.
type streamObserver struct {
	format streamFormat
	ant    anthropic.StreamTracker
	oai    openai.StreamTracker
	rsp    openai.ResponsesStreamTracker
	seen   bool // any content arrived
}

// observe feeds one upstream event; it reports whether the event is the
// Chat Completions usage-only chunk.
func (o *streamObserver) observe(ev sse.Event) (usageOnly bool) {
	if ev.Comment {
		return false
	}
	switch o.format {
	case formatMessages:
		o.ant.Observe(ev.Name, ev.Data)
		o.seen = o.ant.SawContent()
	case formatResponses:
		o.rsp.Observe(ev.Data)
		o.seen = o.rsp.SawContent()
	default:
		usageOnly = o.oai.Observe(ev.Data)
		o.seen = o.oai.SawContent()
	}
	return usageOnly
}

func (o *streamObserver) usage() ir.Usage {
	switch o.format {
	case formatMessages:
		return o.ant.Usage()
	case formatResponses:
		return o.rsp.Usage()
	}
	return o.oai.Usage()
}

func (o *streamObserver) complete() bool {
	switch o.format {
	case formatMessages:
		return o.ant.Complete()
	case formatResponses:
		return o.rsp.Complete()
	}
	return o.oai.Complete()
}

// finished reports whether the provider has finished its answer: a
// finish reason (Chat Completions: of any choice), a stop reason
// (Anthropic) or a Responses stream's terminal event arrived.
func (o *streamObserver) finished() bool {
	switch o.format {
	case formatMessages:
		return o.ant.Meta().StopReason != ""
	case formatResponses:
		return o.rsp.Complete()
	}
	return o.oai.Meta().FinishReason != ""
}

func (o *streamObserver) model() string {
	switch o.format {
	case formatMessages:
		return o.ant.Meta().Model
	case formatResponses:
		return o.rsp.Meta().Model
	}
	return o.oai.Meta().Model
}

// upstreamErr reports an error event the provider sent inside the stream.
func (o *streamObserver) upstreamErr() (string, bool) {
	var t string
	var ok bool
	switch o.format {
	case formatMessages:
		t, _, ok = o.ant.Err()
	case formatResponses:
		t, _, ok = o.rsp.Err()
	default:
		t, _, ok = o.oai.Err()
	}
	return t, ok
}

// firstEventHold bounds how long a stream's response headers wait for the
// provider's first event. Until they go out nothing has reached the
// client, so a stream that fails before its first event can be retried;
// past the hold the client gets its headers with a keep-alive ping, and
// then one every pingEvery.
var firstEventHold = 10 * time.Second

// streamStart is a stream's first event, read before the client was sent
// anything, and the reader positioned after it.
type streamStart struct {
	rd          *sse.Reader
	lead        []byte // comments that came before ev, for a same-shape client
	ev          sse.Event
	err         error  // the first read's error: the stream ended before any event
	headersSent bool   // the hold expired and the headers went out before the first event
	errorFirst  bool   // the first event is an error (of type errType): an error-only answer
	errType     string // the first event's error type
	// obs has read the first event (usageOnly: it is OpenAI's usage
	// chunk); the relay goes on with it from the second.
	obs       streamObserver
	usageOnly bool
	// body: the answer had no media type and opens with a JSON object or
	// array, a provider ignoring stream: it is relayed as a body
	// (relayBody). late: the first byte of an answer with no media type
	// came after the first-event hold.
	body, late bool
}

// startStream reads the provider's first event, holding the client's
// response headers until it arrives (at most firstEventHold). It reports
// retry when that event is a transient error (Anthropic answers an
// overload with a 200 and an error event) or the stream ended before any
// event, nothing was sent to the client, and the provider's max_retries
// allow another attempt. An answer with no media type (sniff) is read as a
// stream unless it opens with a JSON value; then it reports st.body, and
// resp.Body still holds all of it.
func (c *call) startStream(resp *http.Response, sniff bool) (st streamStart, retry bool) {
	// A provider that goes silent mid-stream would hold the call for ever:
	// the stream's keep-alives keep its client waiting.
	silence := max(streamSilence, c.res.prov.timeout)
	if c.relaysCuts() && !c.cross {
		// Claude Code straight at an Anthropic provider gives up on a
		// stream silent for 5 minutes; a translated one (an OpenAI
		// reasoning model, silent while it thinks) keeps the usual bound.
		silence = claudeCodeSilence
	}
	watchBody(resp, silence, true, errStreamSilent)
	if sniff {
		// Decided before the hold: headers sent as a stream's could not be
		// taken back for a JSON answer. Until the first byte the client
		// hears nothing, as from such a provider directly; an answer whose
		// first byte came later than the hold would have sent the headers
		// is not retried, as if it had (st.late).
		start := time.Now()
		br := bufio.NewReader(resp.Body)
		resp.Body = bufferedBody{br, resp.Body}
		if opensWithJSON(br) {
			st.body = true
			return st, false
		}
		st.late = time.Since(start) >= firstEventHold
	}
	st.rd = sse.NewReader(resp.Body)
	if c.cross {
		if c.res.prov.typ == shapeOpenAI {
			c.streamTr = c.tstate.NewOpenAIToAnthropicStream()
		} else {
			// A stream without usage counts is told the prompt's estimate
			// the trace records (promptEstimate keeps it from here).
			c.tstate.InputEstimate = c.promptEstimate()
			c.streamTr = c.tstate.NewAnthropicToOpenAIStream()
		}
	}
	// Once the hold expires the headers go out, and the stream gets its
	// keep-alive pings while the first event is awaited (Claude Code gives
	// up after 5 minutes without a byte). mu serializes the headers with
	// the first event's arrival (taken); ka, made only when the hold
	// expires, pings until its stop.
	var (
		mu          sync.Mutex
		sent, taken bool
		ka          *keepAliver
	)
	hold := time.AfterFunc(firstEventHold, func() {
		mu.Lock()
		defer mu.Unlock()
		if taken {
			return
		}
		c.writeStreamHeaders(resp)
		sent = true
		// A ping with the headers, then every pingEvery: the client (and
		// a proxy in front, nginx's 60 s read timeout) hears something at
		// least as often as before the hold while the provider thinks.
		ka = c.newKeepAliver(http.NewResponseController(c.w))
		ka.start(true)
	})
	st.ev, st.err = nextEvent(st.rd)
	// Comments before the first event (OpenRouter's ": OPENROUTER
	// PROCESSING", a proxy's keep-alive) are held with the headers, so that
	// an error event after them is still retried; the relay sends them
	// first. Once the headers are out they are the first event.
	for st.err == nil && st.ev.Comment && len(st.lead) < maxBurst {
		mu.Lock()
		out := sent
		mu.Unlock()
		if out {
			break
		}
		st.lead = append(st.lead, st.ev.Raw...)
		st.ev, st.err = nextEvent(st.rd)
	}
	st.obs.format = streamFormatOf(c)
	// With stream_usage off nothing asks for usage: the gateway adds no
	// stream_options and removes a client's.
	st.obs.oai.NoUsageAsked = c.res.prov.compat.noStreamUsage
	if st.err == nil {
		// The usage trackers recognise both providers' error events.
		st.usageOnly = st.obs.observe(st.ev)
		st.errType, st.errorFirst = st.obs.upstreamErr()
	}
	hold.Stop()
	mu.Lock()
	taken = true
	st.headersSent = sent
	pings := ka
	mu.Unlock()
	if pings != nil {
		pings.stop()
	}
	if st.headersSent || st.late || c.ctx.Err() != nil || c.retries() > c.res.prov.maxRetries {
		return st, false
	}
	if st.err != nil && !corrupt(st.err) {
		c.unanswered = true // the provider had it, and may bill it
		c.g.logger.Info("provider stream ended before its first event; retrying",
			zapTurn(c.turnID), zap.String("provider", c.res.prov.name), zapErr(st.err))
		return st, true
	}
	if st.errorFirst && retryableStreamError(st.errType) {
		c.g.logger.Info("provider stream began with an error; retrying",
			zapTurn(c.turnID), zap.String("provider", c.res.prov.name), zap.String("error_type", st.errType))
		// The provider's last word is an error, which bills nothing: a
		// client that leaves during the wait leaves an exact zero, as
		// after an error status (upstreamFailed).
		return st, true
	}
	return st, false
}

// opensWithJSON reports whether br's first byte that is not white space
// opens a JSON object or array. It drops a leading UTF-8 byte order mark
// and the white space (nothing to JSON or to an event stream), leaving
// that byte buffered; a read error reports false.
func opensWithJSON(br *bufio.Reader) bool {
	if p, _ := br.Peek(1); len(p) == 1 && p[0] == 0xEF {
		if p, _ := br.Peek(3); string(p) == "\uFEFF" {
			_, _ = br.Discard(3)
		}
	}
	for {
		b, err := br.ReadByte()
		if err != nil {
			return false
		}
		switch b {
		case ' ', '\t', '\r', '\n':
			continue
		}
		_ = br.UnreadByte()
		return b == '{' || b == '['
	}
}

// bufferedBody reads a response body through the buffer that sniffed it.
type bufferedBody struct {
	*bufio.Reader
	io.Closer
}

// retryableStreamError reports whether an error a stream opened with is
// worth another attempt (overloaded, rate limited, a server error).
func retryableStreamError(errType string) bool {
	switch errType {
	case "overloaded_error", "api_error", "timeout_error", "server_error",
		"overloaded": // TGI's error_type (review 25R2), a 429 when it answers with a status
		return true
	}
	return rateLimitError(errType)
}

// rateLimitError reports whether a stream's error type says rate limited:
// Anthropic's rate_limit_error, OpenAI's "requests" and "tokens" (with the
// code rate_limit_exceeded), as a body answered without a stream is read.
func rateLimitError(errType string) bool {
	return errType == "requests" || errType == "tokens" || strings.Contains(errType, "rate_limit")
}

// rateLimitedClass reports whether an error of this type inside an answer
// is recorded RATE_LIMITED: a rate limit, or OpenAI's insufficient_quota,
// which OpenAI sends as a 429 and is recorded so when it comes as one
// (review 26V: in a stream it was an UPSTREAM_ERROR).
func rateLimitedClass(errType string) bool {
	return rateLimitError(errType) || errType == "insufficient_quota"
}

// streamFailedEarly answers a stream that ended before its first event
// when no attempt is left: nothing was sent, so the client gets an error
// status in its shape, as for a provider that could not be reached.
func (c *call) streamFailedEarly(err error) {
	if c.ctx.Err() != nil {
		// Cancelled (the client left, or the gateway is stopping) while the
		// headers were held: recorded as a cancel before any answer. The
		// provider had answered 200 and was working on the request (an
		// OpenAI reasoning model sends nothing until it answers): it bills
		// the prompt at least, so the recorded figures are the gateway's
		// estimate of it, as for a stream cancelled later.
		c.upstreamFailed(c.ctx.Err())
		c.usage = ir.Usage{InputTokens: c.promptEstimate(), Estimated: true}
	} else if corrupt(err) {
		c.unreadable(decodeFailed, zapErr(err))
	} else {
		// The provider failed before answering, reporting nothing: as for
		// a connection that failed after the request went out, the
		// recorded zero is the gateway's.
		c.status, c.errorClass = http.StatusBadGateway, errStreamInterrupted
		c.writeError(fmt.Sprintf("provider %s ended its stream before answering", c.res.prov.name))
		c.g.logger.Warn("provider stream ended before its first event", zapTurn(c.turnID),
			zap.String("provider", c.res.prov.name), zap.Int("attempts", c.attempts), zapErr(err))
		c.usage = ir.Usage{Estimated: true}
	}
	c.haveUsage = true
}

// promptEstimate is the gateway's estimate of a prompt's input tokens
// when the provider reported none: a quarter of the bytes sent, images and
// documents at a flat rate (estimatePromptTokens), and never more than the
// model's context window. A translated call uses the estimate its client
// was told (translate.State.InputEstimate, set by the same rule and
// capped where it is set), so the ledger and the client agree.
func (c *call) promptEstimate() int64 {
	if c.tstate != nil && c.tstate.InputEstimate > 0 {
		return c.tstate.InputEstimate
	}
	return c.withinContext(estimatePromptTokens(c.body))
}

// withinContext caps an input estimate at the model's context window, when
// the catalogue knows it.
func (c *call) withinContext(n int64) int64 {
	if p, ok := c.g.app.prices.Lookup(c.res.model); ok && p.MaxInputTokens > 0 {
		n = min(n, int64(p.MaxInputTokens))
	}
	return n
}

// writeError answers the call with an error of the gateway's, in the
// client's shape and with c.status, carrying the provider's request id
// when one is known, else the call's turn id, where the client's SDK
// reads a request id: a developer who reports the error names the trace
// (audit 24K: a 502 "unreachable" carried none).
func (c *call) writeError(msg string) {
	id := c.upstreamReqID
	if id == "" {
		id = c.turnID
	}
	setRequestIDHeader(c.w.Header(), c.shape, id)
	writeError(c.w, c.shape, c.status, msg)
}

// setRequestID gives a translated answer the provider's request id under
// the name the client's SDK reads it from: request-id for Anthropic's,
// x-request-id for OpenAI's (err.RequestID, _request_id), whichever name
// the provider sent it under.
func (c *call) setRequestID(h http.Header) {
	if c.upstreamReqID != "" {
		setRequestIDHeader(h, c.shape, c.upstreamReqID)
	}
}

// setRequestIDHeader sets id under the header a shape's SDKs read a
// request id from: request-id (Anthropic), x-request-id (OpenAI).
func setRequestIDHeader(h http.Header, shape, id string) {
	if shape == shapeAnthropic {
		h.Set("Request-Id", id)
	} else {
		h.Set("X-Request-Id", id)
	}
}

// writeStreamHeaders sends a stream's response headers and flushes them.
func (c *call) writeStreamHeaders(resp *http.Response) {
	h := c.w.Header()
	if c.cross {
		c.setRequestID(h)
	} else {
		c.relayHeaders(h, resp.Header)
	}
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-cache, no-transform") // keeps Caddy's encode away
	h.Set("X-Accel-Buffering", "no")
	c.status = resp.StatusCode
	c.w.WriteHeader(resp.StatusCode)
	_ = http.NewResponseController(c.w).Flush()
}

// relayStream relays an SSE answer event by event as it arrives, flushing
// each one, while reading usage on the side. st holds the first event.
func (c *call) relayStream(resp *http.Response, st streamStart) {
	if !st.headersSent {
		c.writeStreamHeaders(resp)
	}
	rc := http.NewResponseController(c.w)
	obs := &st.obs
	c.obs = obs
	var err error
	if c.cross {
		err = c.translateStream(st, rc, obs)
	} else {
		err = c.passStream(st, rc, obs)
	}
	u := obs.usage()
	switch {
	case st.errorFirst:
		// The provider's answer was only an error event (Anthropic's
		// overloaded stream): as for the same error sent as a status, it
		// bills nothing.
		u = ir.Usage{}
	case corrupt(st.err) && c.ctx.Err() == nil:
		// The provider answered (and bills) in bytes its encoding does
		// not decode, after the hold: as within it (streamFailedEarly).
		u = ir.Usage{InputTokens: c.promptEstimate(), Estimated: true}
	case st.err != nil && c.ctx.Err() == nil:
		// The stream never began (its headers went out after the hold):
		// as for one that ends during the hold, the provider failed before
		// answering, and the recorded zero is the gateway's.
		u = ir.Usage{Estimated: true}
	case u.Estimated && u.TotalInputTokens() == 0:
		// Cut before the provider reported usage (OpenAI reports it only at
		// the end): the prompt was billed all the same, so estimate it.
		u.InputTokens = c.promptEstimate()
	}
	c.usage, c.haveUsage = u, true
	c.respModel = obs.model()
	if et, ok := obs.upstreamErr(); ok {
		if rateLimitedClass(et) {
			c.errorClass = errRateLimited
		} else {
			c.errorClass = errUpstream
		}
		c.res.prov.warnErrored(c.g.logger, c, et)
		return
	}
	switch {
	case c.leftEarly:
		// The client stopped taking the answer before its end: cancelled,
		// priced from what the provider had sent by then (drainUnsent).
		c.cancel(nil)
		c.errorClass = errCancelled
	case obs.complete():
		// The provider finished its answer; a client that hangs up after
		// the last content (the OpenAI SDKs stop at [DONE]) cancelled nothing.
	case c.ctx.Err() != nil || errors.Is(err, errClientGone):
		c.cancel(nil)
		c.errorClass = errCancelled
		switch {
		case c.shuttingDown() && c.relaysCuts():
			// Cut, as a restarting provider or proxy would cut it: Claude
			// Code retries that streamed (an error event would make it fall
			// back to non-streamed requests, review 14R2).
			c.abortClient = true
		case c.shuttingDown():
			// The client is still there: its answer is cut, and it is told why.
			c.endStream(rc, "the gateway is shutting down; the answer is incomplete")
		}
	case err == nil && c.answerFinished(obs):
		// The provider finished its answer and ended cleanly without the
		// usage it was asked for (a compatible server that ignores
		// stream_options and sends no [DONE]): the answer is whole, as
		// the client straight at that server would take it, and its
		// usage is the estimate.
	case err != nil || !obs.complete():
		// The provider's request ends here too: after a translation error or
		// an oversized event it would go on generating, billed, and answer
		// would drain it before the client's response could end.
		c.cancel(nil)
		c.errorClass = errStreamInterrupted
		msg := "the provider's stream was interrupted"
		if corrupt(err) {
			c.errorClass = errBadUpstreamBody
			msg = "the provider's stream did not decode (its Content-Encoding)"
		}
		// The client learns that its answer is incomplete; the cause (socket
		// addresses, the provider's host) is for the operator's log only.
		if err != nil && !errors.Is(err, io.EOF) {
			c.g.logger.Warn("provider stream interrupted", zapTurn(c.turnID), zap.String("provider", c.res.prov.name), zapErr(err))
		}
		if c.relaysCuts() && providerCut(err) {
			// Claude Code retries a stream the provider cut, streamed, as
			// it would directly; an error event would make it fall back to
			// non-streamed requests for the rest of its turn (audit 14C).
			// It gets the cut as the provider made it: a clean end where
			// the provider ended cleanly, an aborted response otherwise.
			c.abortClient = err != nil
			return
		}
		c.endStream(rc, msg)
	}
}

// answerFinished reports whether the provider has finished the whole
// answer: its finish reason (finished), of its one choice for Chat
// Completions, since one finished choice of several says nothing of the
// others.
func (c *call) answerFinished(obs *streamObserver) bool {
	return obs.finished() && (obs.format != formatChat || c.choices <= 1)
}

// errGatewayStop marks a stream the gateway ended itself (an event it
// could not translate, a bug in its reader), not one the provider cut.
var errGatewayStop = errors.New("the gateway ended the stream")

// providerCut reports whether a stream that ended before its answer was
// complete (err, nil for a clean end) was cut by the provider or its
// connection, rather than ended by the gateway (errGatewayStop, an event
// over the size limit, bytes that do not decode).
func providerCut(err error) bool {
	return !errors.Is(err, errGatewayStop) && !errors.Is(err, sse.ErrEventTooLarge) && !corrupt(err)
}

// relaysCuts reports whether the client is told of a provider's cut
// stream, or of the gateway stopping mid-stream, by a cut rather than an
// error event: Claude Code (its session header says so), whose recovery
// from a cut is a streamed retry.
func (c *call) relaysCuts() bool {
	return c.shape == shapeAnthropic && c.r.Header.Get("X-Claude-Code-Session-Id") != ""
}

// endStream ends a stream cut short with an error event in the client's
// shape, after a blank line if the provider's last relayed event lacked
// its own.
func (c *call) endStream(rc *http.ResponseController, msg string) {
	b := c.streamError(msg)
	if c.openEvent {
		// The provider's last event ended in a line break or nothing: a
		// blank line after it either way (an extra one is harmless).
		b = append([]byte("\n\n"), b...)
	}
	if _, err := c.w.Write(b); err == nil {
		_ = rc.Flush()
	}
}

// nextEvent reads the provider's next event. An event the stream ended
// inside is the end of an interrupted stream (io.ErrUnexpectedEOF), and is
// not relayed, unless it is a comment, trailing blank lines, or an event
// whose data is whole (JSON, or OpenAI's [DONE]) that came without its
// blank line: that one is the provider's last event, relayed as sent.
func nextEvent(rd *sse.Reader) (sse.Event, error) {
	ev, err := rd.Next()
	if err != nil || !ev.Unterminated || ev.Comment || len(bytes.Trim(ev.Raw, "\r\n")) == 0 {
		return ev, err
	}
	if bytes.Equal(bytes.TrimSpace(ev.Data), []byte("[DONE]")) || json.Valid(ev.Data) {
		return ev, nil
	}
	return sse.Event{}, io.ErrUnexpectedEOF
}

var errClientGone = errors.New("client went away")

// passStream relays same-shape events verbatim, flushing as soon as no
// further complete event is already waiting, with a keep-alive after every
// pingEvery of silence. An OpenAI usage chunk the gateway asked for on the
// client's behalf is not shown to the client.
func (c *call) passStream(st streamStart, rc *http.ResponseController, obs *streamObserver) error {
	rd := st.rd
	// Only a usage chunk the gateway asked for is hidden: with
	// stream_usage off it asked for none.
	hide := c.hidesUsage()
	// The events of one burst (what arrived together) are written with one
	// Write, so they travel as one HTTP/1.1 chunk and one write(2).
	bp := burstPool.Get().(*[]byte)
	defer burstPool.Put(bp)
	burst := append((*bp)[:0], st.lead...)
	// After pingEvery without a write the client gets a keep-alive, as a
	// translated stream does: a provider that thinks for minutes before
	// its next event (an OpenAI reasoning model before its first chunk)
	// would otherwise be cut by a proxy in front (nginx's 60 s read
	// timeout).
	ka := c.newKeepAliver(rc)
	ka.start(false)
	defer ka.stop()
	send := func() error {
		ka.hold()
		defer ka.release()
		err := c.writeOut(rc, burst)
		burst = burst[:0]
		return err
	}
	defer func() { *bp = burst[:0] }()
	first := true // startStream observed the first event
	for ev, err := st.ev, st.err; ; ev, err = nextEvent(rd) {
		if err != nil {
			if serr := send(); serr != nil && err == io.EOF {
				return serr
			}
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		usageOnly := st.usageOnly
		if !first {
			usageOnly = obs.observe(ev)
		}
		first = false
		if obs.seen && c.ttft == 0 {
			c.ttft = time.Since(c.start)
		}
		raw := ev.Raw
		if _, isErr := obs.upstreamErr(); isErr {
			raw = c.res.prov.scrubSecrets(raw) // as an error body is
		}
		switch {
		case !hide:
			burst = append(burst, raw...)
			c.openEvent = ev.Unterminated
		case !usageOnly:
			burst = appendWithoutNullUsage(burst, raw)
			c.openEvent = ev.Unterminated
		}
		if !c.answered.Load() && c.answerFinished(obs) {
			c.answered.Store(true) // before the client can see the finish
		}
		if c.answered.Load() && !c.told.Load() && obs.complete() {
			c.told.Store(true)
		}
		if rd.Ready() && len(burst) < maxBurst {
			continue // the next event arrived with this one: send them together
		}
		if err := send(); err != nil {
			if !c.answered.Load() && !obs.complete() {
				c.leftEarly = true
				defer c.drainUnsent()()
			}
			drainUsage(rd, obs)
			return err
		}
	}
}

// unreadGrace is how long, in nanoseconds, a stream whose client stopped
// taking it before the provider's finish is read on, unrelayed, for what
// the provider had sent meanwhile: 300 ms. Atomic, as a test that sets it
// may do so while an earlier test's call still reads it.
var unreadGrace = func() *atomic.Int64 {
	var v atomic.Int64
	v.Store(int64(300 * time.Millisecond))
	return &v
}()

// drainUnsent bounds by unreadGrace the reading on (drainUsage) of a
// stream whose client stopped taking it before the provider's finish; the
// returned func stops the bound. A client that stops reading does not stop
// the provider, which finishes and bills the answer while its bytes wait
// in the gateway's socket: read on, they give the call the provider's own
// usage rather than that of the events the client took (audit 16A: 3,000
// output tokens billed, 1 recorded).
func (c *call) drainUnsent() (stop func()) {
	t := time.AfterFunc(time.Duration(unreadGrace.Load()), func() { c.cancel(nil) })
	return func() { t.Stop() }
}

// drainUsage reads the rest of a stream whose client left, unrelayed,
// until the answer is complete (its usage arrived) or the stream ends:
// after the provider's finish clientLeft bounds it by usageGrace, before
// it drainUnsent by unreadGrace.
func drainUsage(rd *sse.Reader, obs *streamObserver) {
	for !obs.complete() {
		ev, err := nextEvent(rd)
		if err != nil {
			return
		}
		obs.observe(ev)
	}
}

// isJSONArray reports whether body opens as a JSON array (after white
// space): a stream some servers send as one body.
func isJSONArray(body []byte) bool {
	t := bytes.TrimLeft(body, " \t\r\n")
	return len(t) > 0 && t[0] == '['
}

// hidesUsage reports whether the client gets its OpenAI stream without
// the usage the gateway asked for on its behalf (include_usage).
func (c *call) hidesUsage() bool {
	return c.shape == shapeOpenAI && c.kind != kindResponses && !c.clientAskedUsage && !c.res.prov.compat.noStreamUsage
}

// withoutUsageChunks removes from a stream sent as one JSON array of chunks
// what include_usage added: the usage-only chunk (no choices) and each
// chunk's "usage":null. Any other body is returned as it is.
func withoutUsageChunks(body []byte) []byte {
	if !isJSONArray(body) {
		return body
	}
	t := bytes.TrimSpace(body)
	if !gjson.ValidBytes(t) {
		return body
	}
	changed := false
	out := make([]byte, 0, len(t))
	out = append(out, '[')
	gjson.ParseBytes(t).ForEach(func(_, el gjson.Result) bool {
		u := el.Get("usage")
		if u.IsObject() && len(el.Get("choices").Array()) == 0 {
			changed = true
			return true
		}
		if len(out) > 1 {
			out = append(out, ',')
		}
		raw := []byte(el.Raw)
		if u.Exists() && u.Type == gjson.Null {
			// Wherever the member is and however it is spaced (review 29R3).
			if d, err := sjson.DeleteBytes(raw, "usage"); err == nil {
				raw, changed = d, true
			}
		}
		out = append(out, raw...)
		return true
	})
	if !changed {
		return body // as it came, byte for byte
	}
	return append(out, ']')
}

// nullUsage is the member OpenAI adds to every chunk of a stream asked for
// usage. A JSON string cannot hold it unescaped, so the bytes only occur as
// the member itself.
var nullUsage = []byte(`,"usage":null`)

// appendWithoutNullUsage appends an OpenAI chunk event to dst without its
// "usage":null member: the client did not ask for usage, and the provider
// adds the member only when asked, as the gateway did on its behalf.
func appendWithoutNullUsage(dst, raw []byte) []byte {
	i := bytes.Index(raw, nullUsage)
	if i < 0 {
		return append(dst, raw...)
	}
	return append(append(dst, raw[:i]...), raw[i+len(nullUsage):]...)
}

// maxBurst bounds how many bytes of a burst passStream holds before
// writing them.
const maxBurst = 32 << 10

var burstPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// pingEvery is the keep-alive interval of streams (a variable for tests).
var pingEvery = 15 * time.Second

// keepAliver writes a stream's keep-alive after every pingEvery in which
// the relay wrote nothing. Its mutex serializes the pings with the relay's
// writes; after stop no ping is written.
type keepAliver struct {
	c       *call
	rc      *http.ResponseController
	mu      sync.Mutex
	t       *time.Timer
	stopped bool
}

// newKeepAliver returns c's keep-aliver, not yet started, flushing through
// rc.
func (c *call) newKeepAliver(rc *http.ResponseController) *keepAliver {
	return &keepAliver{c: c, rc: rc}
}

// start arms the timer, first sending a keep-alive when now is set.
func (k *keepAliver) start(now bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.stopped {
		return
	}
	if now {
		k.ping()
	}
	k.t = time.AfterFunc(pingEvery, func() {
		k.mu.Lock()
		defer k.mu.Unlock()
		if !k.stopped {
			k.ping()
			k.t.Reset(pingEvery)
		}
	})
}

// ping writes and flushes one keep-alive; k.mu is held.
func (k *keepAliver) ping() {
	// A ping stuck on a client that stopped reading holds the relay back
	// as its own writes do.
	_ = k.c.writeOut(k.rc, k.c.keepAlive())
}

// writeOut writes b (none: only the flush) to the client and flushes it,
// marked as writing. The mark stays set when the write fails: clientLeft,
// which may run only after, then grants the read on for the events the
// client left unread (drainUnsent).
func (c *call) writeOut(rc *http.ResponseController, b []byte) error {
	c.writing.Store(true)
	if len(b) > 0 {
		if _, err := c.w.Write(b); err != nil {
			return errClientGone
		}
	}
	if err := rc.Flush(); err != nil {
		return errClientGone
	}
	c.writing.Store(false)
	return nil
}

// hold holds off the pings while the relay writes (until release), and
// restarts the silence from now.
func (k *keepAliver) hold() {
	k.mu.Lock()
	if k.t != nil {
		k.t.Reset(pingEvery)
	}
}

// release ends hold.
func (k *keepAliver) release() { k.mu.Unlock() }

// stop ends the pings; one being written finishes first.
func (k *keepAliver) stop() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.stopped = true
	if k.t != nil {
		k.t.Stop()
	}
}

// anthropicPing is the keep-alive event Anthropic itself sends.
var anthropicPing = []byte("event: ping\ndata: {\"type\": \"ping\"}\n\n")

// keepAlive returns the keep-alive a silent stream sends its client: a
// ping event in Anthropic's shape, an SSE comment in OpenAI's (which has
// no ping; every SSE parser skips comments).
func (c *call) keepAlive() []byte {
	switch {
	case c.streamTr != nil:
		return c.streamTr.Ping()
	case c.shape == shapeAnthropic:
		return anthropicPing
	default:
		return openAIPing
	}
}

var openAIPing = []byte(": ping\n\n")

// translateStream re-encodes the provider's events in the client's shape
// with the translator startStream made, sending a keep-alive ping after
// every 15 s of silence.
func (c *call) translateStream(st streamStart, rc *http.ResponseController, obs *streamObserver) error {
	type item struct {
		ev  sse.Event
		err error
	}
	events := make(chan item)
	next := make(chan struct{})
	done := make(chan struct{})
	defer close(done)
	go func() {
		defer func() {
			// A bug in the reader must not take the process down: the
			// stream ends as if the provider had cut it.
			if v := recover(); v != nil {
				c.g.logger.Error("panic reading a provider's stream", zapTurn(c.turnID),
					zap.Any("panic", v), zap.Stack("stack"))
				select {
				case events <- item{err: fmt.Errorf("%w: reading the provider's stream: panic: %v", errGatewayStop, v)}:
				case <-done:
				}
			}
		}()
		for ev, err := st.ev, st.err; ; ev, err = nextEvent(st.rd) {
			select {
			case events <- item{ev, err}:
			case <-done:
				return
			}
			if err != nil {
				return
			}
			select { // the reader's buffers are reused: wait until the event is handled
			case <-next:
			case <-done:
				return
			}
		}
	}()
	write := func(b []byte) error {
		if len(b) == 0 {
			return nil
		}
		return c.writeOut(rc, b)
	}
	// drain reads on, untranslated, after the client stopped taking the
	// stream before the provider's finish (see drainUnsent).
	drain := func(err error) error {
		if obs.complete() {
			return err
		}
		// Once the provider finished, the client cancelled nothing, as in
		// passStream (the finish it had not had yet was held for the
		// usage): recorded as a success if the usage comes.
		c.leftEarly = !obs.finished()
		defer c.drainUnsent()()
		for !obs.complete() {
			it := <-events
			if it.err != nil {
				break
			}
			obs.observe(it.ev)
			next <- struct{}{}
		}
		return err
	}
	ping := time.NewTimer(pingEvery)
	defer ping.Stop()
	first := true
	for {
		select {
		case <-ping.C:
			if err := write(c.streamTr.Ping()); err != nil {
				return drain(err)
			}
			ping.Reset(pingEvery)
		case it := <-events:
			if it.err != nil {
				if obs.complete() && (errors.Is(it.err, io.EOF) || providerCut(it.err)) ||
					errors.Is(it.err, io.EOF) && c.answerFinished(obs) {
					// The provider said all it had to say (the stop and the
					// usage) before it ended, cleanly or not, or it gave
					// its stop and ended cleanly without the usage it was
					// asked for: the client gets the answer's end, held
					// back until now.
					return write(c.streamTr.Finish())
				}
				if errors.Is(it.err, io.EOF) {
					return nil
				}
				return it.err
			}
			if first {
				first = false // startStream observed it
			} else {
				obs.observe(it.ev)
			}
			if obs.seen && c.ttft == 0 {
				c.ttft = time.Since(c.start)
			}
			var out []byte
			var terr error
			if !it.ev.Comment {
				out, terr = c.streamTr.Event(it.ev.Name, it.ev.Data)
			}
			if terr != nil {
				return fmt.Errorf("%w: %w", errGatewayStop, terr) // the reader, waiting for next, stops at done
			}
			if _, isErr := obs.upstreamErr(); isErr {
				out = c.res.prov.scrubSecrets(out) // as an error body is
			}
			next <- struct{}{}
			if err := write(out); err != nil {
				return drain(err)
			}
			if !ping.Stop() {
				select {
				case <-ping.C:
				default:
				}
			}
			ping.Reset(pingEvery)
		}
	}
}
