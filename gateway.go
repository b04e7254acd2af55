package metis

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/tidwall/gjson"
	"go.uber.org/zap"

	"github.com/metisgateway/metis/apiversion"
	"github.com/metisgateway/metis/internal/jsonx"
	"github.com/metisgateway/metis/store"
)

const defaultMaxBody = 32 << 20

// Gateway is the metis_gateway HTTP handler: it authenticates gateway keys,
// routes Anthropic- and OpenAI-shape requests to the configured providers,
// relays the answers and records a trace of every call.
type Gateway struct {
	// MaxBodySize is the largest request body accepted, in bytes.
	// Default 32 MiB (Anthropic's own limit).
	MaxBodySize int64 `json:"max_body_size,omitempty"`

	app        *App
	logger     *zap.Logger
	usageGrace time.Duration // usageGrace when provisioned
}

// CaddyModule returns the Caddy module information.
func (*Gateway) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "http.handlers.metis_gateway", New: func() caddy.Module { return new(Gateway) }}
}

// Provision loads the metis app the handler serves.
func (g *Gateway) Provision(ctx caddy.Context) error {
	g.logger = ctx.Logger()
	v, err := ctx.App("metis")
	if err != nil {
		return fmt.Errorf("loading the metis app: %w", err)
	}
	g.app = v.(*App)
	g.usageGrace = usageGrace
	if g.MaxBodySize <= 0 {
		g.MaxBodySize = defaultMaxBody
	}
	return registerMetrics(ctx.GetMetricsRegistry())
}

// endpoint kinds
const (
	kindMessages = iota
	kindChat
	kindCountTokens
	kindResponses // OpenAI's Responses API (and its compaction): forwarded to OpenAI-type providers, translated for Claude models
)

// ServeHTTP dispatches the gateway's endpoints and passes anything else on.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	path := r.URL.Path
	if path == "/healthz" {
		serveHealth(w, r)
		return nil
	}
	if !strings.HasPrefix(path, "/v1/") && !misdirected(r) {
		return next.ServeHTTP(w, r)
	}
	// A 405 names the methods its endpoint answers; writeAPIError keeps the
	// header only on a 405.
	if allow := allowFor(path); allow != "" && !methodIn(r.Method, allow) {
		w.Header().Set("Allow", allow)
	}
	switch path {
	case "/v1/messages":
		return g.serveLLM(w, r, shapeAnthropic, kindMessages)
	case "/v1/messages/count_tokens":
		return g.serveLLM(w, r, shapeAnthropic, kindCountTokens)
	case "/v1/chat/completions":
		return g.serveLLM(w, r, shapeOpenAI, kindChat)
	case "/v1/responses", "/v1/responses/compact":
		return g.serveLLM(w, r, shapeOpenAI, kindResponses)
	}
	bodyLeftUnread(w, r) // no other endpoint reads a body
	shape := shapeOf(r)
	key, aerr := g.authenticate(r)
	if aerr != nil {
		g.refuse(w, r, shape, nil, "", aerr)
		return nil
	}
	id, isModel := strings.CutPrefix(path, "/v1/models/")
	isModel = isModel && id != ""
	if path != "/v1/models" && !isModel {
		prefix := strippedPrefix(r)
		msg := fmt.Sprintf("%s %s is not an endpoint of this gateway", r.Method, prefix+path)
		if meant := endpointMeant(path); meant != "" {
			msg += "; did you mean " + prefix + meant + "? " + baseURLAdvice(path)
		} else if note := unservedAPI(path, prefix); note != "" {
			msg += "; " + note
		}
		g.refuse(w, r, shape, key, "", &apiError{
			status: http.StatusNotFound, reason: "unknown_endpoint", code: "unknown_url", msg: msg,
		})
		return nil
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		g.refuse(w, r, shape, key, "", reject(http.StatusMethodNotAllowed, "method_not_allowed",
			fmt.Sprintf("%s is not allowed on %s; use GET or HEAD", r.Method, strippedPrefix(r)+path)))
		return nil
	}
	if isModel {
		g.serveModel(w, r, shape, key, id)
	} else {
		g.serveModels(w, r, shape, key)
	}
	return nil
}

// strippedPrefix is the part of the path the client sent that the site
// took off before the gateway (handle_path /llm/*, uri strip_prefix): the
// gateway's messages name paths as the client knows them. A 404 that
// suggested /v1/chat/completions under handle_path /llm/* sent the
// developer to the team's web site (audit 25C). Caddy keeps the request as
// it came in the context, as its {http.request.orig_uri.path} does.
func strippedPrefix(r *http.Request) string {
	orig, ok := r.Context().Value(caddyhttp.OriginalRequestCtxKey).(http.Request)
	if !ok || orig.URL == nil {
		return ""
	}
	prefix, found := strings.CutSuffix(orig.URL.Path, r.URL.Path)
	if !found {
		return ""
	}
	return prefix
}

// misdirected reports whether r, outside /v1/, is an LLM client's request
// meant for the gateway: a provider API path without /v1 from a client with
// a gateway token or an anthropic-version header, or any path ending in one
// of the gateway's endpoints (a base URL with a prefix too many, such as
// …/api/v1) from a client with a gateway token. Another handler of the site
// (a reverse_proxy for developers' own provider keys) keeps the rest.
func misdirected(r *http.Request) bool {
	path := r.URL.Path
	if withoutV1[path] {
		return llmClient(r)
	}
	return endpointMeant(path) != "" && hasGatewayToken(r)
}

// servedPaths are the gateway's endpoints without their /v1, longest first
// so that /messages/count_tokens is matched before /messages.
var servedPaths = []string{"/messages/count_tokens", "/responses/compact", "/chat/completions", "/responses", "/messages", "/models"}

// endpointMeant is the gateway endpoint a client probably meant when its
// base URL lacked /v1 or had a prefix too many: /chat/completions,
// /api/chat/completions and /api/v1/chat/completions all mean
// /v1/chat/completions. It is "" for any other path, and for a path that
// is already that endpoint.
func endpointMeant(path string) string {
	for _, p := range servedPaths {
		if strings.HasSuffix(path, p) && path != "/v1"+p {
			return "/v1" + p
		}
	}
	return ""
}

// baseURLAdvice says how to fix the base URL of a client that reached
// path, a gateway endpoint without its /v1, with a prefix too many, a
// doubled slash or /V1 (review 30A: the last two were told "a path too
// many").
func baseURLAdvice(path string) string {
	if withoutV1[path] {
		return "This client adds only " + path + " to its base URL, so its base URL must be the gateway's root plus /v1 " +
			"(the official Anthropic SDKs and Claude Code take the root alone and add /v1 themselves)"
	}
	switch meant := endpointMeant(path); {
	case strings.HasPrefix(path, "//") && strings.TrimLeft(path, "/") == meant[1:]:
		return "The path has a doubled slash: the client's base URL ends in / and the client adds a path that begins with one; drop the base URL's trailing slash"
	case strings.EqualFold(path, meant):
		return "Paths are case-sensitive: the base URL's /v1 must be in lower case"
	}
	return "The client's base URL has a path too many: the OpenAI SDKs and the Vercel AI SDK take the gateway's root plus /v1, " +
		"the official Anthropic SDKs and Claude Code the root alone"
}

// unservedAPI says what to do instead for a provider API the gateway does
// not serve, or "" for other paths; the paths it names begin with the
// site's prefix (strippedPrefix).
func unservedAPI(path, prefix string) string {
	path = strings.TrimPrefix(path, "/v1")
	switch {
	case strings.HasPrefix(path, "/responses/"):
		return "of the Responses API it serves POST " + prefix + "/v1/responses and " + prefix + "/v1/responses/compact: responses stored by OpenAI are read and cancelled at OpenAI's own API"
	case path == "/completions":
		return "legacy completions are not served: use " + prefix + "/v1/chat/completions"
	case path == "/embeddings":
		return "embeddings are not served"
	}
	return ""
}

// withoutV1 are the provider API paths a client reaches when its base URL
// lacks /v1 (OPENAI_BASE_URL set to the gateway's root). An LLM client's
// request there gets a 404 in its shape that says so, rather than going on
// to the site's next handler, which answers an empty 200 when there is
// none; anyone else's goes on (another handler may serve the path).
var withoutV1 = map[string]bool{
	"/chat/completions": true, "/completions": true, "/responses": true, "/responses/compact": true, "/embeddings": true,
	"/messages": true, "/messages/count_tokens": true, "/models": true,
}

// llmClient reports whether r comes from an LLM client of the gateway: it
// carries a gateway token or an anthropic-version header.
func llmClient(r *http.Request) bool {
	return hasGatewayToken(r) || r.Header.Get("Anthropic-Version") != ""
}

// hasGatewayToken reports whether r carries a gateway token.
func hasGatewayToken(r *http.Request) bool {
	tok, _ := store.TokenFromLines(r.Header["X-Api-Key"], r.Header["Authorization"])
	return store.IsGatewayToken(tok)
}

// allowFor is the Allow header of a gateway endpoint: the methods it
// answers. It is "" for a path that is not an endpoint.
func allowFor(path string) string {
	switch {
	case path == "/v1/messages", path == "/v1/messages/count_tokens", path == "/v1/chat/completions",
		path == "/v1/responses", path == "/v1/responses/compact":
		return "POST"
	case path == "/healthz", path == "/v1/models", strings.HasPrefix(path, "/v1/models/") && len(path) > len("/v1/models/"):
		return "GET, HEAD"
	}
	return ""
}

// methodIn reports whether method is one of the comma-separated allow list.
func methodIn(method, allow string) bool {
	for allow != "" {
		var m string
		m, allow, _ = strings.Cut(allow, ",")
		if strings.TrimSpace(m) == method {
			return true
		}
	}
	return false
}

// serveHealth answers GET /healthz for load-balancer probes: no gateway
// key, no trace event, the Metis-API-Version negotiated like every
// Metis-owned endpoint.
func serveHealth(w http.ResponseWriter, r *http.Request) {
	if _, ok := apiversion.Negotiate(w, r); !ok {
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	if allow := allowFor(r.URL.Path); !methodIn(r.Method, allow) {
		w.Header().Set("Allow", allow)
		writeJSON(w, http.StatusMethodNotAllowed, map[string]any{"error": map[string]string{
			"type": "method_not_allowed", "message": r.Method + " is not allowed on " + strippedPrefix(r) + "/healthz; use GET or HEAD",
		}})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// shapeOf guesses the caller's API shape for errors on paths that don't
// say it themselves.
func shapeOf(r *http.Request) string {
	p := r.URL.Path
	if strings.HasPrefix(p, "/v1/messages") || strings.HasPrefix(p, "/messages") || r.Header.Get("Anthropic-Version") != "" ||
		strings.HasPrefix(endpointMeant(p), "/v1/messages") {
		return shapeAnthropic
	}
	return shapeOpenAI
}

// keyCheckWait bounds how long authenticate waits for a check for new
// keys when a gw_ token was not looked for: a few of the key poll's
// one-second rounds.
const keyCheckWait = 3 * time.Second

func (g *Gateway) authenticate(r *http.Request) (*store.Key, *apiError) {
	tok, conflict := store.TokenFromLines(r.Header["X-Api-Key"], r.Header["Authorization"])
	// The token is consumed here: scrub it so that no later handler or
	// proxy sees it. Caddy's access log records the request as it came in
	// (it redacts Authorization but not x-api-key), so an access log needs
	// the X-Api-Key filter Caddyfile.example shows.
	r.Header.Del("X-Api-Key")
	r.Header.Del("Authorization")
	if store.IsGatewayToken(tok) {
		scrubToken(r, tok)
	}
	if tok == "" {
		return nil, reject(http.StatusUnauthorized, "missing_key", "missing gateway key: send it as x-api-key or Authorization: Bearer")
	}
	if conflict {
		return nil, reject(http.StatusUnauthorized, "conflicting_keys",
			"the request carries two different gateway keys (in x-api-key and Authorization: Bearer, or in one of them sent twice); send one")
	}
	k, err := g.app.store.Authenticate(tok)
	if errors.Is(err, store.ErrUnknownKeyUnchecked) {
		// Not looked for in the database (unknown tokens flooding the
		// miss checks, or the check failed): wait for a check that began
		// after the request, at most keyCheckWait, so that a key issued a
		// moment ago works and a wrong one gets a final answer. Claude
		// Code backs off from a 401's Retry-After: 1 up to three minutes
		// of silence (review 29R4).
		ctx, cancel := context.WithTimeout(r.Context(), keyCheckWait)
		waited := g.app.store.WaitKeyCheck(ctx)
		cancel()
		if k, err = g.app.store.Authenticate(tok); waited == nil && errors.Is(err, store.ErrUnknownKeyUnchecked) {
			err = store.ErrUnknownKey
		}
	}
	switch {
	case err == nil:
		return k, nil
	case errors.Is(err, store.ErrRevokedKey), errors.Is(err, store.ErrExpiredKey):
		// Not attributed, but named in the log, where an operator looks
		// for who still uses a revoked key (review 28L).
		e := reject(http.StatusUnauthorized, "revoked_key", "this gateway key has been revoked")
		if errors.Is(err, store.ErrExpiredKey) {
			e = reject(http.StatusUnauthorized, "expired_key", "this gateway key has expired")
		}
		if k != nil {
			e.keyID = k.ID
		}
		return nil, e
	case !store.IsGatewayToken(tok):
		// A provider key sent where the gateway key belongs (an SDK's
		// default headers replacing it, say): say so, not "invalid".
		return nil, reject(http.StatusUnauthorized, "unknown_key",
			"no gateway key in the request: its key is not one this gateway issued (gateway keys start with gw_)")
	case errors.Is(err, store.ErrUnknownKeyUnchecked):
		// No check of the database succeeded in keyCheckWait: a key
		// issued a moment ago may be it, so the client may retry (review
		// 29R3).
		e := reject(http.StatusUnauthorized, "unknown_key", "invalid gateway key")
		e.mayRetry = true
		return nil, e
	default:
		return nil, reject(http.StatusUnauthorized, "unknown_key", "invalid gateway key")
	}
}

// scrubToken removes every other copy of the gateway token tok from r: a
// header holding it (Azure's api-key, x-goog-api-key, sent beside the
// header the gateway reads) and a query parameter holding it (?key=gw_…,
// as Google-style clients send a key; read percent-decoded too). Same-shape
// calls forward the client's headers and query, and the token is no
// provider's to see (audit 16A).
func scrubToken(r *http.Request, tok string) {
	for k, vv := range r.Header {
		for _, v := range vv {
			if strings.Contains(v, tok) {
				delete(r.Header, k)
				break
			}
		}
	}
	q := r.URL.RawQuery
	if !strings.Contains(q, tok) && !strings.Contains(q, "%") {
		return
	}
	kept := make([]string, 0, 4)
	for part := range strings.SplitSeq(q, "&") {
		dec, err := url.QueryUnescape(part)
		if !strings.Contains(part, tok) && (err != nil || !strings.Contains(dec, tok)) {
			kept = append(kept, part)
		}
	}
	r.URL.RawQuery = strings.Join(kept, "&")
}

// readAnnounced reads body, whose announced length is n (-1: unknown), to
// its end. Memory follows the bytes that arrived, not the length
// announced: room is made for up to preGrow bytes at first (4 KiB for an
// unknown length), then for as many more as have come (at least preGrow),
// never past the announced length and the few bytes more that the read
// finding the end needs, so that a body that came whole sits in a buffer
// of its size. A client that announces 32 MiB and then trickles a byte a
// minute holds 64 KiB, not 32 MiB (audit 12C), nor 1 MiB per request, of
// which one HTTP/2 connection can carry hundreds (16A).
func readAnnounced(body io.Reader, n int64) ([]byte, error) {
	const slack = bytes.MinRead // room for the read that finds the end
	first := int64(4 << 10)
	if n >= 0 {
		first = min(n, preGrow)
	}
	b := make([]byte, 0, first+slack)
	for {
		if len(b) == cap(b) {
			grow := max(int64(len(b)), preGrow)
			if rest := n - int64(len(b)); n >= 0 && rest >= 0 {
				grow = min(grow, rest)
			}
			nb := make([]byte, len(b), int64(len(b))+grow+slack)
			copy(nb, b)
			b = nb
		}
		m, err := body.Read(b[len(b):cap(b)])
		b = b[:len(b)+m]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
}

// closeAfterReply marks an HTTP/1 response to a request whose body will
// not be read to the end. Caddy wraps the body, so Go's server cannot see
// that it was left unread: without this it reads up to 256 KiB of it
// before answering, and a client waiting for "100 Continue" gets the
// answer only after its expect timeout, or never.
func closeAfterReply(w http.ResponseWriter, r *http.Request) {
	if r.ProtoMajor == 1 {
		w.Header().Set("Connection", "close")
	}
}

// bodyLeftUnread is closeAfterReply for a request refused before its body
// was read, when Go's server would otherwise drain that body before
// answering: one over 256 KiB or of unknown (chunked) length, or one the
// client holds back until "100 Continue".
func bodyLeftUnread(w http.ResponseWriter, r *http.Request) {
	if r.ContentLength > 256<<10 || r.ContentLength < 0 || (r.ContentLength != 0 && strings.EqualFold(r.Header.Get("Expect"), "100-continue")) {
		closeAfterReply(w, r)
	}
}

// preGrow is the most of a body's announced length readBody makes room
// for before its bytes arrive, and the least it grows by after.
const preGrow = 64 << 10

// readBody reads the request body up to the limit, decoded from its
// Content-Encoding (coding, from requestCoding): the limit holds for the
// bytes sent and for the bytes they decode to. The bytes sent are read
// whole first, so memory follows what arrived for a coded body too (a
// zstd frame's first block takes its whole window: review 25R).
func (g *Gateway) readBody(w http.ResponseWriter, r *http.Request, buf *bytes.Buffer, coding string) *apiError {
	if r.ContentLength > g.MaxBodySize {
		closeAfterReply(w, r)
		return reject(http.StatusRequestEntityTooLarge, "body_too_large",
			fmt.Sprintf("request body of %d bytes is over the gateway's limit of %d bytes", r.ContentLength, g.MaxBodySize))
	}
	b, err := readAnnounced(http.MaxBytesReader(w, r.Body, g.MaxBodySize), r.ContentLength)
	if err == nil && coding != "" {
		b, err = decodeRequestBody(coding, b, g.MaxBodySize)
		switch {
		case errors.Is(err, errDecodedTooLarge):
			return reject(http.StatusRequestEntityTooLarge, "body_too_large",
				fmt.Sprintf("request body decompresses to over the gateway's limit of %d bytes", g.MaxBodySize))
		case err != nil:
			return bodyNotDecoded(coding, err)
		}
	}
	*buf = *bytes.NewBuffer(b)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			closeAfterReply(w, r)
			e := reject(http.StatusRequestEntityTooLarge, "body_too_large",
				fmt.Sprintf("request body is over the gateway's limit of %d bytes", g.MaxBodySize))
			e.bodyStarted = true
			return e
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			// Caddy's read timeouts: the client stopped sending. Nothing
			// more will come, so no lingering read (Go's server closes the
			// connection on the failed read).
			return reject(http.StatusRequestTimeout, "body_timeout", "the request body stopped arriving before its end")
		}
		g.logger.Info("reading a request body", zapErr(err))
		return reject(http.StatusBadRequest, "body_unreadable", "the request body could not be read to its end")
	}
	return nil
}

// validate checks the fields the inbound shape requires and returns the
// parsed body, so the caller reads model and stream without another scan.
func validate(shape string, kind int, body []byte) (parsedRequest, *apiError) {
	var req parsedRequest
	// gjson's validator recurses once per level: a body of millions of
	// brackets, well under the size limit, would overflow the stack and
	// end the process, every caller's calls with it.
	if jsonx.TooDeep(jsonx.View(body), maxNesting) {
		return req, reject(http.StatusBadRequest, "malformed_json",
			fmt.Sprintf("request body nests arrays and objects more than %d levels deep", maxNesting))
	}
	if !gjson.ValidBytes(body) {
		return req, reject(http.StatusBadRequest, "malformed_json", "request body is not valid JSON")
	}
	req.root = gjson.Parse(jsonx.View(body)) // no copy: body is never reused or changed
	if !req.root.IsObject() {
		return req, reject(http.StatusBadRequest, "malformed_json", "request body must be a JSON object")
	}
	// The gateway reads the first of duplicate keys and the provider may
	// read the last: a body with {"model":"allowed","model":"other"} would
	// be checked, reserved and priced as one model and run as another. The
	// conversation is not looked into: the gateway decides nothing from it,
	// and a model's own tool input, replayed as it came, may repeat a key.
	if name, dup := jsonx.DuplicateKey(req.root.Raw, conversation); dup {
		return req, reject(http.StatusBadRequest, "duplicate_key",
			fmt.Sprintf("request body has the key %q twice in one object; the keys of a JSON object must be unique", name))
	}
	// One pass over the top level: each Get would scan past the whole
	// messages array again (duplicate keys were refused above).
	var msgs, mt, input gjson.Result
	req.root.ForEach(func(k, v gjson.Result) bool {
		var dst *gjson.Result
		switch k.Str {
		case "model":
			dst = &req.model
		case "stream":
			dst = &req.stream
		case "n":
			dst = &req.n
		case "messages":
			dst = &msgs
		case "max_tokens":
			dst = &mt
		case "input":
			dst = &input
		default:
			return true
		}
		if !dst.Exists() {
			*dst = v
		}
		return true
	})
	if req.model.Exists() && req.model.Type != gjson.String {
		return req, reject(http.StatusBadRequest, "invalid_request", "model: must be a string")
	}
	if kind == kindResponses {
		// The rest is OpenAI's to check: the body goes as it came.
		if req.stream.Exists() && req.stream.Type != gjson.True && req.stream.Type != gjson.False {
			return req, reject(http.StatusBadRequest, "invalid_request", "stream: must be a boolean")
		}
		if req.root.Get("background").Type == gjson.True {
			// Its answer, and the usage it is billed by, come later from
			// GET /v1/responses/{id}, which the gateway does not serve:
			// the call could be neither priced nor budgeted.
			return req, reject(http.StatusBadRequest, "invalid_request",
				"background: background responses are not served by this gateway (their usage is known only once they are retrieved from the provider); send the request without background")
		}
		return req, nil
	}
	if !msgs.IsArray() {
		if shape == shapeOpenAI && kind == kindChat && !msgs.Exists() && input.Exists() {
			// Cursor's agent sends its requests this way once its OpenAI
			// base URL is overridden, and reads the answer as Chat
			// Completions: serveLLM converts the body.
			req.responses = true
			return req, nil
		}
		return req, reject(http.StatusBadRequest, "invalid_request", "messages: field required (an array of messages)")
	}
	if shape == shapeAnthropic && kind == kindMessages {
		if !mt.Exists() {
			return req, reject(http.StatusBadRequest, "invalid_request", "max_tokens: field required")
		}
		if mt.Type != gjson.Number || mt.Int() < 0 || float64(mt.Int()) != mt.Float() {
			return req, reject(http.StatusBadRequest, "invalid_request", "max_tokens: must be a whole number ≥ 0")
		}
	}
	if req.stream.Exists() && req.stream.Type != gjson.True && req.stream.Type != gjson.False {
		return req, reject(http.StatusBadRequest, "invalid_request", "stream: must be a boolean")
	}
	return req, nil
}

// maxNesting is the deepest nesting of arrays and objects a request body
// may have: far beyond any real request (a deep tool schema is a few dozen
// levels) and about where Python's json, which many providers run, stops.
const maxNesting = 1000

// conversation reports the top-level members that hold a request's
// conversation: messages and system (a Responses API body's input).
func conversation(name string) bool { return name == "messages" || name == "system" || name == "input" }

// parsedRequest is a request body as validate read it.
type parsedRequest struct {
	root             gjson.Result // the whole body
	model, stream, n gjson.Result // top-level fields; zero when absent
	// responses marks a Responses API body sent to Chat Completions (an
	// input, no messages), which serveLLM converts and validates again.
	responses bool
}

// sessionHeaders are the headers an agent names its session in, in order:
// Claude Code's, the gateway's own for any client, opencode's and Codex
// CLI's. The last two are common names (genericSessionHeaders).
var sessionHeaders = [...]string{"X-Claude-Code-Session-Id", "X-Metis-Session-Id", "X-Session-Id", "Session-Id"}

// genericSessionHeaders is the index in sessionHeaders of the first name
// web apps also use, for a login session.
const genericSessionHeaders = 2

// maxSessionID is the longest session id stored as sent: the client
// chooses it, and it is stored with every call.
const maxSessionID = 256

// sessionID is the agent session a call belongs to, if the client says.
// X-Session-Id and Session-Id are common names that web apps also use for
// a login session, so they count only when they look like an agent's id
// (at most 128 printable ASCII bytes: opencode's ses_… ids, Codex's UUIDs). A longer id is clipped and
// marked with a hash of the whole, so that ids differing past the cut stay
// apart.
func sessionID(r *http.Request) string {
	for i, h := range sessionHeaders {
		s := r.Header.Get(h)
		if s == "" || (i >= genericSessionHeaders && !agentSessionID(s)) {
			continue
		}
		if len(s) > maxSessionID {
			sum := sha256.Sum256([]byte(s))
			s = clipTo(s, maxSessionID-16) + hex.EncodeToString(sum[:6])
		}
		return s
	}
	return ""
}

// agentSessionID reports whether s looks like an agent's session id.
func agentSessionID(s string) bool {
	if len(s) > 128 {
		return false
	}
	for i := range len(s) {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"encoding response"}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// refuse records a rejection and answers it in the caller's shape.
func (g *Gateway) refuse(w http.ResponseWriter, r *http.Request, shape string, key *store.Key, requested string, e *apiError) {
	if id := g.rejected(r, shape, key, requested, e); id != "" {
		// The refusal's event id, where the client's SDK reads a request
		// id: a developer's error report finds its row in the trace.
		setRequestIDHeader(w.Header(), shape, id)
	}
	writeAPIError(w, shape, e)
	lingerUnread(w, r, e)
}

// Lingering on an unread body: at most this long, and this many bytes (a
// client with no valid key gets less of the gateway's time).
const (
	lingerTime        = 5 * time.Second
	lingerBytes       = 64 << 20
	lingerBytesNoAuth = 1 << 20
)

// lingerUnread reads and discards the rest of a body left unread by a
// refusal that closes the connection (closeAfterReply), once the answer is
// sent, as nginx's lingering close does. Closing a socket with unread data
// makes the kernel send a reset, and a client still uploading (the Go and
// Node HTTP clients among them) could then report "connection reset" and
// retry instead of reading the 413 or 401 it was sent. A client waiting
// for "100 Continue" sends nothing more unless reading had begun, so then
// nothing is read for it.
func lingerUnread(w http.ResponseWriter, r *http.Request, e *apiError) {
	if r.ProtoMajor != 1 || r.ContentLength == 0 || w.Header().Get("Connection") != "close" ||
		(!e.bodyStarted && strings.EqualFold(r.Header.Get("Expect"), "100-continue")) {
		return
	}
	rc := http.NewResponseController(w)
	if rc.Flush() != nil {
		return
	}
	limit := int64(lingerBytes)
	if e.status == http.StatusUnauthorized {
		limit = lingerBytesNoAuth
	}
	_ = rc.SetReadDeadline(time.Now().Add(lingerTime))
	_, _ = io.CopyN(io.Discard, r.Body, limit)
}

// The most bytes of a refused request's model, and of the message it got,
// that are recorded (and, for the model, quoted back): the client chose
// them, up to the body's size.
const (
	maxRecordedModel   = 256
	maxRecordedMessage = 1024
)

// clip shortens a client's model name to maxRecordedModel bytes.
func clip(model string) string { return clipTo(model, maxRecordedModel) }

// clipTo shortens s to at most n bytes, on a UTF-8 boundary when s is
// UTF-8, and marks the cut with "…" (3 bytes more).
func clipTo(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := n
	for i > n-utf8.UTFMax && i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	if !utf8.RuneStart(s[i]) { // not UTF-8 here: cut where asked
		i = n
	}
	return s[:i] + "…"
}

// rejected records a request the gateway refused before any upstream call:
// one by one up to a rate, then summed (rejectLimiter). It returns the id
// of the request.rejected event written for it alone, else "".
func (g *Gateway) rejected(r *http.Request, shape string, key *store.Key, requested string, e *apiError) (eventID string) {
	if ce := g.logger.Check(zap.DebugLevel, "request rejected"); ce != nil {
		fields := []zap.Field{zap.String("reason", e.reason), zap.Int("status", e.status),
			zap.String("inbound_shape", shape), zap.String("method", r.Method), zap.String("path", r.URL.Path)}
		if key != nil {
			fields = append(fields, zap.String("key_id", key.ID))
		} else if e.keyID != "" {
			fields = append(fields, zap.String("key_id", e.keyID))
		}
		ce.Write(fields...)
	}
	mRejected.WithLabelValues(shape, e.reason).Inc()
	now := time.Now()
	requested = clip(requested) // a refusal's model can be anything the client sent
	group := rejectGroup{reason: e.reason, shape: shape, model: requested}
	if key != nil {
		group.keyID = key.ID
	}
	alone := g.app.rejects.allow(group.keyID, now)
	p := map[string]any{
		"reason": e.reason, "status": e.status, "message": clipTo(e.msg, maxRecordedMessage),
		"inbound_shape": shape, "method": r.Method, "path": r.URL.Path,
		"requested_model": requested,
	}
	if key != nil {
		p["gateway_key_id"], p["key_name"] = key.ID, key.Name
		p["user"], p["team"], p["workspace"] = key.User, key.Team, key.Workspace
	}
	if s := sessionID(r); s != "" {
		p["session_id"] = s
	}
	if e.routeSlot != "" {
		p["route_slot"] = e.routeSlot
	}
	if !alone {
		g.app.rejects.sum(group, now, p)
		return ""
	}
	id := store.NewID()
	if !g.app.store.Enqueue(store.Event{ID: id, Type: store.TypeRequestRejected, Time: now, Payload: p}) {
		mDropped.Inc()
		return ""
	}
	return id.String()
}

// discard drains and closes a body so its connection can be reused.
func discard(rc io.ReadCloser) {
	_, _ = io.Copy(io.Discard, io.LimitReader(rc, 256<<10))
	_ = rc.Close()
}

var (
	_ caddy.Provisioner           = (*Gateway)(nil)
	_ caddyhttp.MiddlewareHandler = (*Gateway)(nil)
)
