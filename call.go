package metis

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"
	"go.uber.org/zap"

	"github.com/metisgateway/metis/adapters/openai"
	"github.com/metisgateway/metis/adapters/translate"
	"github.com/metisgateway/metis/budget"
	"github.com/metisgateway/metis/internal/jsonx"
	"github.com/metisgateway/metis/ir"
	"github.com/metisgateway/metis/store"
)

// call is one accepted gateway request, from routing to its trace events.
type call struct {
	g       *Gateway
	w       http.ResponseWriter
	r       *http.Request
	start   time.Time
	turnID  string
	shape   string // inbound shape
	kind    int
	key     *store.Key
	session string
	// ctx bounds the upstream call: cancelled when the client leaves
	// (clientLeft), the handler returns, or (with errShuttingDown) the
	// trace store closes.
	ctx    context.Context
	cancel context.CancelCauseFunc
	// answered is set once the provider's stream has finished its answer
	// (its only choice's finish), and told once its usage has arrived too
	// (the stream is complete): nothing billable is left to read.
	answered, told atomic.Bool
	// writing is set while the stream relay (or its keep-alive) writes to
	// the client, and stays set when the write fails: a client that stops
	// reading holds the relay there, with the provider's later events (its
	// usage too) unread behind it (clientLeft).
	writing atomic.Bool
	// leftEarly is set when the client stopped taking a stream before the
	// provider finished it (drainUnsent).
	leftEarly bool
	// unanswered is set once a request went to the provider (it was
	// written) and no answer came (a connection that failed, a stream
	// cut before its first event): what the provider bills for it is
	// unknown, so a zero recorded for the call is the gateway's estimate.
	unanswered bool
	// cutInFlight is set when the last request sent was cut, by the
	// client's cancel or the provider's timeout, while the provider had
	// it and was working on it: the call records the prompt's estimate
	// (promptBilled). Not a cancel during a retry's wait, whatever an
	// earlier attempt met (review 26R).
	cutInFlight bool
	// resent is set once forward has sent a request again after a stale
	// pooled connection (connTrace.stale), and rebound once the request
	// went again asking for mismatched thinking blocks to be dropped
	// (bindingRefused); errResends counts the retries sent again after
	// failing, as they went out, on the connection of the provider's error
	// answer (connTrace.afterError; at most one per error answer). Each is
	// another request sent, counted in attempts, not against max_retries.
	resent, rebound bool
	errResends      int

	requested string // the model the client asked for (or the routing chain chose)
	res       *resolved
	slot      string
	stream    bool  // the client asked for a stream
	choices   int64 // the n the client asked for (OpenAI); 0 when not given
	cross     bool  // inbound shape differs from the provider's
	body      []byte
	path      string // upstream API path
	rawQuery  string

	clientAskedUsage bool                       // OpenAI client asked for stream_options.include_usage itself
	tstate           *translate.State           // cross-shape request state
	streamTr         translate.StreamTranslator // cross-shape stream encoder
	openEvent        bool                       // the last relayed provider event lacked its blank line
	reservation      *budget.Reservation        // held against the key's budgets until settled

	// outcome
	status        int
	errorClass    string
	attempts      int
	usage         ir.Usage
	haveUsage     bool
	respModel     string
	ttft          time.Duration
	upstreamReqID string
	finishing     bool            // finish has begun (recoverPanic must not rerun it)
	obs           *streamObserver // the stream being relayed, for recoverPanic
	abortClient   bool            // the client's stream is to be cut, as the provider's was or at a stop (relaysCuts)
}

// clientModel is the model the request named: c.requested, or "" when the
// routing chain chose it.
func (c *call) clientModel() string {
	if c.slot != slotRequest {
		return ""
	}
	return c.requested
}

// serveLLM handles POST /v1/messages, /v1/messages/count_tokens,
// /v1/chat/completions, /v1/responses and /v1/responses/compact.
func (g *Gateway) serveLLM(w http.ResponseWriter, r *http.Request, shape string, kind int) error {
	start := time.Now()
	if earlyData(r) {
		bodyLeftUnread(w, r)
		g.refuse(w, r, shape, nil, "", tooEarly())
		return nil
	}
	key, aerr := g.authenticate(r)
	if aerr == nil && r.Method != http.MethodPost {
		aerr = reject(http.StatusMethodNotAllowed, "method_not_allowed", fmt.Sprintf("%s is not allowed on %s; use POST", r.Method, strippedPrefix(r)+r.URL.Path))
	}
	var coding string
	if aerr == nil {
		coding, aerr = requestCoding(r)
	}
	if aerr != nil {
		bodyLeftUnread(w, r)
		g.refuse(w, r, shape, key, "", aerr)
		return nil
	}
	// From here the request is in flight: a store that closes while its
	// body arrives (the gateway stopping) ends the read and waits for the
	// refusal to be recorded.
	reading := &bodyRead{w: w}
	if !g.app.inflight.add(reading, reading.stop) {
		bodyLeftUnread(w, r)
		g.refuse(w, r, shape, key, "", shutdownRefusal())
		return nil
	}
	defer g.app.inflight.done(reading)
	// The body is not pooled: validate parses it in place, so strings read
	// from it share its memory, and a body is held once, not twice.
	var buf bytes.Buffer
	aerr = g.readBody(w, r, &buf, coding)
	if stopped := reading.finish(); aerr != nil {
		if stopped {
			aerr = shutdownRefusal()
		}
		g.refuse(w, r, shape, key, "", aerr)
		return nil
	}
	body := buf.Bytes()
	req, aerr := validate(shape, kind, body)
	converted := aerr == nil && req.responses
	if converted {
		// A Responses API body on /v1/chat/completions (Cursor's agent):
		// the Chat Completions request it stands for, answered as one.
		var err error
		if body, err = openai.ResponsesToChat(body); err != nil {
			aerr = untranslatable(err)
			aerr.msg = responsesRead + aerr.msg
		} else if req, aerr = validate(shape, kind, body); aerr != nil {
			aerr.msg = responsesRead + "(as " + convertedPaths + ") " + aerr.msg
		}
	}
	if aerr != nil {
		g.refuse(w, r, shape, key, "", aerr)
		return nil
	}
	c := &call{
		g: g, w: w, r: r, start: start, shape: shape, kind: kind, key: key, session: sessionID(r),
		stream: req.stream.Bool(), choices: req.n.Int(), rawQuery: r.URL.RawQuery,
	}
	if aerr := c.decide(body, req); aerr != nil {
		if converted && aerr.reason == "untranslatable" {
			// Translated on to a Claude model: the paths are the
			// converted request's.
			aerr.msg = responsesRead + "(as " + convertedPaths + ") " + aerr.msg
		}
		c.refuse(aerr)
		return nil
	}
	c.ctx, c.cancel = context.WithCancelCause(context.WithoutCancel(r.Context()))
	defer c.cancel(nil)
	defer context.AfterFunc(r.Context(), c.clientLeft)()
	if !g.app.inflight.add(c, c.cancel) {
		c.refuse(shutdownRefusal())
		return nil
	}
	defer g.app.inflight.done(c) // after the settlement below
	if aerr := c.reserve(body); aerr != nil {
		c.refuse(aerr)
		return nil
	}
	defer c.settle(0) // a call that never got priced (a panic) releases its reservation
	c.turnID = "turn_" + store.NewID().String()
	c.recordRoute()
	defer c.recoverPanic()
	c.run()
	c.finish()
	if c.abortClient {
		c.abortResponse()
	}
	return nil
}

// responsesRead begins the error of a Responses API body sent to
// /v1/chat/completions that could not be served, and convertedPaths says
// which request the error's paths are of.
const (
	responsesRead  = "a Responses API body sent to /v1/chat/completions, read as Chat Completions: "
	convertedPaths = "the Chat Completions request it stands for: instructions and input are its messages"
)

// abortResponse cuts the client's stream, recorded, as the provider's was
// cut (relaysCuts): on HTTP/1 it closes the connection under the
// unterminated chunked body; otherwise (HTTP/2, a writer that cannot be
// hijacked) the stream ends without its last event, which Claude Code
// retries the same way. Either way the handler returns, so that Caddy's
// metrics and access log count the call with its duration.
func (c *call) abortResponse() {
	if c.r.ProtoMajor != 1 {
		return
	}
	if conn, _, err := http.NewResponseController(c.w).Hijack(); err == nil {
		_ = conn.Close()
	}
}

// usageGrace is how long a call reads on, unrelayed, after its client
// left between the provider's finish and the usage that follows it (a
// variable for tests, read when a gateway is provisioned).
var usageGrace = 5 * time.Second

// clientLeft ends the upstream call when the client leaves, unless the
// provider has finished its answer (answered) and its usage has not
// arrived yet (told): then only its usage is to come (OpenAI's chunk
// after the finish, which the SDKs' helpers and many loops do not wait
// for), and it is read for up to usageGrace, so that a whole answer is
// priced from the provider's usage rather than cancelled.
//
// A client that leaves while the relay is stuck writing to it (it had
// stopped reading) leaves the provider's later events unread, and with
// them, when the provider went on to the end, the usage of the answer it
// bills: the relay reads them once its write fails (drainUnsent), for up
// to unreadGrace, before the call is cancelled.
func (c *call) clientLeft() {
	grace := time.Duration(0)
	switch {
	case c.told.Load():
		// The answer and its usage arrived (audit 24K: a client that
		// left after the usage chunk held the provider's connection,
		// and added to latency_ms, for usageGrace).
	case c.answered.Load():
		grace = c.g.usageGrace
	case c.writing.Load():
		grace = time.Duration(unreadGrace.Load())
	}
	if grace > 0 {
		// Waits no longer than the call: the handler's return cancels ctx.
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case <-t.C:
			c.cancel(nil)
		case <-c.ctx.Done():
		}
		return
	}
	c.cancel(nil)
}

// recoverPanic turns a panic in an accepted call (a bug) into a recorded
// failure: the call still ends in llm.call_completed (status 500,
// error_class INTERNAL_ERROR, the usage known so far) and turn.completed,
// its budget reservation is settled, the log has the panic with its stack,
// and the client's connection is aborted (http.ErrAbortHandler, which
// net/http does not log again), since what it was sent may be partial.
func (c *call) recoverPanic() {
	v := recover()
	if v == nil {
		return
	}
	c.g.logger.Error("panic in an LLM call; recorded as INTERNAL_ERROR and the connection aborted",
		zapTurn(c.turnID), zap.Any("panic", v), zap.Stack("stack"))
	if !c.finishing {
		c.status, c.errorClass = http.StatusInternalServerError, "INTERNAL_ERROR"
		if !c.haveUsage {
			c.usageSoFar()
		}
		c.finish()
	}
	panic(http.ErrAbortHandler)
}

// usageSoFar sets the usage of a call cut short before it read its usage:
// what its stream had reported, else (once the request went upstream) the
// prompt's estimate, marked estimated where the provider had not said.
func (c *call) usageSoFar() {
	u := ir.Usage{Estimated: true}
	if c.obs != nil {
		u = c.obs.usage()
		c.respModel = c.obs.model()
	}
	if c.attempts > 0 && u.TotalInputTokens() == 0 {
		u.InputTokens, u.Estimated = c.promptEstimate(), true
	}
	c.usage, c.haveUsage = u, true
}

// refuse refuses the call once its model is known (or failed to be),
// recording the routing slot of a model the client did not name.
func (c *call) refuse(aerr *apiError) {
	if c.slot != slotRequest {
		aerr.routeSlot = c.slot
	}
	c.g.refuse(c.w, c.r, c.shape, c.key, c.requested, aerr)
}

// decide resolves the model, checks the key may use it and builds the
// upstream body. req is body as validate parsed it: the translators read
// it without validating and parsing the body again.
func (c *call) decide(body []byte, req parsedRequest) *apiError {
	a := c.g.app
	root := req.root
	// Cloned: the model outlives the body in the trace, the log and the
	// metrics' label cache, and would keep the whole body alive.
	sent := strings.Clone(req.model.String())
	c.requested = sent
	c.slot = slotRequest
	if len(sent) > maxRecordedModel {
		// No model is named so long; taken whole, the name would go into
		// every event and log line of the call.
		return reject(http.StatusBadRequest, "invalid_request", fmt.Sprintf("model: %q is longer than %d bytes", clip(sent), maxRecordedModel))
	}
	var ch routeChoice // what chose the model, when the client did not
	if c.requested == "" {
		var news bool
		var err error
		ch, news, err = a.route(c.key.Workspace, c.shape, c.stream, body)
		if err != nil {
			// The file's path and parse error are the operator's to read,
			// once per version of the file.
			if news {
				c.g.logger.Error("workspace routing file unusable: its model-less requests get 500 until it is fixed",
					zap.String("key_id", c.key.ID), zap.String("workspace", c.key.Workspace), zapErr(err))
			}
			return reject(http.StatusInternalServerError, "routing_error",
				"the workspace's routing file could not be used; the gateway's log has the details")
		}
		if ch.model == "" {
			return reject(http.StatusBadRequest, "invalid_request", "model: field required (no routing rule or default_model applies)")
		}
		c.requested, c.slot = ch.model, ch.slot
	}
	c.res = a.resolve(c.requested)
	if c.res == nil {
		return reject(http.StatusNotFound, "unknown_model", fmt.Sprintf("model %q%s is not served by this gateway", clip(c.requested), ch.chosenBy(","))+a.unknownModelHint(c.requested))
	}
	if !a.allowed(c.key.AllowedModels, c.requested, c.res) {
		return reject(http.StatusForbidden, "model_not_allowed", fmt.Sprintf("this gateway key may not use model %q%s", clip(c.requested), ch.chosenBy("")))
	}
	c.cross = c.res.prov.typ != c.shape
	if c.cross && c.kind == kindResponses && c.r.URL.Path != "/v1/responses" {
		// Compaction's answer is an item only OpenAI's models can read.
		return reject(http.StatusBadRequest, "untranslatable", fmt.Sprintf(
			"model %q is served by provider %q, an %s one, and Responses API compaction (/v1/responses/compact) reaches OpenAI-type providers only: "+
				"compact the conversation with this model through /v1/responses, or send it whole",
			clip(c.requested), c.res.prov.name, c.res.prov.typ))
	}
	switch {
	case c.kind == kindCountTokens && c.cross:
		c.body = body // answered locally with an estimate
	case !c.cross:
		out := body
		if c.kind == kindResponses && (bytes.Contains(out, []byte(`"item_reference"`)) || bytes.Contains(out, []byte(openai.ClaudeThinkingPrefix))) {
			// A conversation moved from a Claude model refers to items of
			// answers only the gateway holds, and may carry Claude's
			// thinking: the items go to OpenAI as themselves, the
			// thinking not at all.
			var err error
			if out, err = openai.ItemsForOpenAI(out, a.items.resolver(c.key.ID)); err != nil {
				return reject(http.StatusBadRequest, "invalid_request", "input: "+err.Error())
			}
		}
		if sent != c.res.model {
			var err error
			if out, err = sjson.SetBytes(out, "model", c.res.model); err != nil {
				return reject(http.StatusBadRequest, "invalid_request", "setting model: "+err.Error())
			}
		}
		switch {
		case c.shape != shapeOpenAI || !c.stream || c.kind == kindResponses:
			// A Responses stream reports its usage in its last event.
		case c.res.prov.compat.noStreamUsage:
			// The server refuses stream_options: the client's own go too,
			// and any usage chunk the server sends reaches the client.
			if root.Get("stream_options").Exists() {
				var err error
				if out, err = sjson.DeleteBytes(out, "stream_options"); err != nil {
					return reject(http.StatusBadRequest, "invalid_request", "stream_options: "+err.Error())
				}
			}
		default:
			var err error
			if out, c.clientAskedUsage, err = openai.InjectIncludeUsage(out); err != nil {
				return reject(http.StatusBadRequest, "invalid_request", "stream_options: "+err.Error())
			}
		}
		c.body = out
	case c.kind == kindResponses:
		// To a Claude model: the Chat Completions request it stands for,
		// translated on, and answered in the Responses API's shape.
		// An item_reference to one of the gateway's own earlier answers
		// is read back from the items it keeps (the Vercel AI SDK's
		// default, store: true, refers to them).
		keyID, items := c.key.ID, a.items
		o := a.translateOptions(c.res.prov)
		o.ResolveItem, o.ThinkingFor = items.resolver(keyID), items.thinkingFor(keyID)
		out, st, err := translate.ResponsesToAnthropicRequest(body, c.res.model, o)
		if err != nil {
			return untranslatable(err)
		}
		st.KeepThinking = items.thinkingKeeper(keyID)
		out = c.bindThinking(out, st)
		if root.Get("store").Type != gjson.False {
			// Kept for the client's later references, unless it asked
			// that its answers be stored nowhere (Codex CLI does).
			st.KeepItem = func(id string, item []byte) { items.keep(keyID, id, item) }
		}
		c.body, c.tstate = out, st
	case c.shape == shapeAnthropic:
		out, st, err := translate.AnthropicToOpenAIRequestParsed(root, c.res.model, a.translateOptions(c.res.prov))
		if err != nil {
			return untranslatable(err)
		}
		// The estimate an answer without usage is told and priced on: a
		// quarter of the body the provider gets, as for an OpenAI client
		// sending that body (audit 23B), not the translator's count of
		// the conversation's text.
		st.InputEstimate = c.withinContext(estimatePromptTokens(out))
		c.body, c.tstate = out, st
	default:
		// Claude's thinking of a tool-using turn is kept for the turn
		// answering its tools, which Chat Completions has no place for.
		o := a.translateOptions(c.res.prov)
		o.ThinkingFor = a.items.thinkingFor(c.key.ID)
		out, st, err := translate.OpenAIToAnthropicRequestParsed(root, c.res.model, o)
		if err != nil {
			return untranslatable(err)
		}
		st.KeepThinking = a.items.thinkingKeeper(c.key.ID)
		c.body, c.tstate = c.bindThinking(out, st), st
	}
	switch {
	case c.res.prov.typ == shapeAnthropic && c.kind == kindCountTokens:
		c.path = "/messages/count_tokens"
	case c.res.prov.typ == shapeAnthropic:
		c.path = "/messages"
	case c.kind == kindResponses:
		c.path = strings.TrimPrefix(c.r.URL.Path, "/v1") // /responses or /responses/compact
	default:
		c.path = "/chat/completions"
	}
	if c.cross {
		c.rawQuery = "" // ?beta=true is an Anthropic SDK detail
	}
	return nil
}

func (a *App) translateOptions(p *provider) translate.Options {
	return translate.Options{DefaultMaxTokens: a.prices.MaxOutputTokens, MaxTokens: p.compat.maxTokens,
		NoStreamUsage: p.compat.noStreamUsage, SystemFirst: p.compat.systemFirst, AutoCache: !p.compat.noAutoCache}
}

// run makes the upstream call and relays its answer to the client.
func (c *call) run() {
	if c.kind == kindCountTokens && c.cross {
		c.countTokensEstimate()
		return
	}
	// c.ctx ends the upstream call when the client leaves, the handler
	// returns or the store closes; a stream also ends it when the client's
	// connection fails mid-stream.
	for {
		resp, err := c.forward(c.ctx)
		if err != nil {
			c.upstreamFailed(err)
			return
		}
		if c.bindingRefused(resp) {
			continue
		}
		if c.answer(resp) {
			return
		}
		// The stream failed before its first event reached the client:
		// another attempt, after a backoff (an in-stream error carries no
		// retry-after).
		if !sleepCtx(c.ctx, backoff(c.retries()-1, c.res.prov.maxRetryWait)) {
			c.upstreamFailed(c.ctx.Err())
			return
		}
	}
}

// answer relays one upstream response to the client. It reports false,
// having written nothing, when the response is a stream that failed before
// its first event and the provider's retries allow another attempt.
func (c *call) answer(resp *http.Response) bool {
	stream := isEventStream(resp.Header)
	// An answer with no media type at all to a streamed request is read as
	// a stream unless it opens with JSON (startStream).
	sniff := !stream && c.stream && resp.StatusCode < 300 && resp.Header.Get("Content-Type") == "" &&
		resp.Header.Get("Content-Encoding") == ""
	if stream || sniff {
		// Closed, not drained: a stream read to its end has already freed
		// its connection, and one left early (a panic in the relay) must
		// stop the provider, not wait out its generation. (A closure:
		// startStream wraps the body.)
		defer func() { _ = resp.Body.Close() }()
	} else {
		defer discard(resp.Body)
	}
	c.upstreamReqID = c.res.prov.scrubString(upstreamRequestID(resp.Header)) // it reaches clients and the trace
	switch {
	case resp.StatusCode < 300 && resp.Header.Get("Content-Encoding") != "":
		c.undecodable(resp)
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		c.redirected(resp)
	case resp.StatusCode >= 400:
		c.relayError(resp)
	case stream || sniff:
		st, retry := c.startStream(resp, sniff)
		if st.body {
			c.relayBody(resp)
			return true
		}
		if retry {
			// Closed, not drained: a provider may hold the failed stream open.
			_ = resp.Body.Close()
			return false
		}
		if !st.headersSent && st.err != nil {
			c.streamFailedEarly(st.err)
			return true
		}
		c.relayStream(resp, st)
	default:
		c.relayBody(resp)
	}
	return true
}

// countTokensEstimate answers count_tokens for a model whose provider has
// no such endpoint: the gateway's prompt estimate (about four bytes per
// token, images and documents at a flat rate) over the system prompt,
// messages and tools, marked as such in a response header. It is not
// capped at the model's context window: a client asks to learn whether its
// prompt fits.
func (c *call) countTokensEstimate() {
	root := gjson.Parse(jsonx.View(c.body))
	var est int64
	for _, f := range []string{"system", "messages", "tools"} {
		if v := root.Get(f); v.Exists() {
			est += estimatePromptTokens([]byte(v.Raw))
		}
	}
	c.status = http.StatusOK
	c.usage = ir.Usage{InputTokens: est, Estimated: true}
	c.haveUsage = true
	c.w.Header().Set("Metis-Token-Count", "estimated")
	writeJSON(c.w, http.StatusOK, map[string]any{"input_tokens": est})
}
