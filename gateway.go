package metis

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/tidwall/gjson"
	"go.uber.org/zap"

	"github.com/metisgateway/metis/apiversion"
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

	app    *App
	logger *zap.Logger
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
)

// ServeHTTP dispatches the gateway's endpoints and passes anything else on.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	path := r.URL.Path
	if path == "/healthz" {
		// Metis-owned: versioned, and behind a gateway key like /v1/* so an
		// unauthenticated caller learns nothing about the deployment.
		if _, ok := apiversion.Negotiate(w, r); !ok {
			return nil
		}
		if _, aerr := g.authenticate(r); aerr != nil {
			g.rejected(r, shapeOf(r), nil, "", aerr)
			writeError(w, shapeOf(r), aerr.status, aerr.msg)
			return nil
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
		return nil
	}
	if !strings.HasPrefix(path, "/v1/") {
		return next.ServeHTTP(w, r)
	}
	shape := shapeOf(r)
	switch path {
	case "/v1/messages":
		return g.serveLLM(w, r, shapeAnthropic, kindMessages)
	case "/v1/messages/count_tokens":
		return g.serveLLM(w, r, shapeAnthropic, kindCountTokens)
	case "/v1/chat/completions":
		return g.serveLLM(w, r, shapeOpenAI, kindChat)
	case "/v1/models":
		key, aerr := g.authenticate(r)
		if aerr != nil {
			g.rejected(r, shape, nil, "", aerr)
			writeError(w, shape, aerr.status, aerr.msg)
			return nil
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET")
			writeError(w, shape, http.StatusMethodNotAllowed, "GET only")
			return nil
		}
		g.serveModels(w, r, key.AllowedModels)
		return nil
	}
	key, aerr := g.authenticate(r)
	if aerr != nil {
		g.rejected(r, shape, nil, "", aerr)
		writeError(w, shape, aerr.status, aerr.msg)
		return nil
	}
	_ = key
	writeError(w, shape, http.StatusNotFound, fmt.Sprintf("%s is not an endpoint of this gateway", path))
	return nil
}

// shapeOf guesses the caller's API shape for errors on paths that don't
// say it themselves.
func shapeOf(r *http.Request) string {
	p := r.URL.Path
	if strings.HasPrefix(p, "/v1/messages") || r.Header.Get("Anthropic-Version") != "" {
		return shapeAnthropic
	}
	return shapeOpenAI
}

// tokenOf extracts the gateway token from x-api-key or a Bearer header.
func tokenOf(r *http.Request) string {
	if t := r.Header.Get("X-Api-Key"); t != "" {
		return t
	}
	if a := r.Header.Get("Authorization"); len(a) > 7 && strings.EqualFold(a[:7], "bearer ") {
		return strings.TrimSpace(a[7:])
	}
	return ""
}

func (g *Gateway) authenticate(r *http.Request) (*store.Key, *apiError) {
	tok := tokenOf(r)
	// The token is consumed here: scrub it so that no later handler, proxy
	// or access log (Caddy redacts Authorization but not x-api-key) sees it.
	r.Header.Del("X-Api-Key")
	r.Header.Del("Authorization")
	if tok == "" {
		return nil, reject(http.StatusUnauthorized, "missing_key", "missing gateway key: send it as x-api-key or Authorization: Bearer")
	}
	k, err := g.app.store.Authenticate(tok)
	switch {
	case err == nil:
		return k, nil
	case errors.Is(err, store.ErrRevokedKey):
		return k, reject(http.StatusUnauthorized, "revoked_key", "this gateway key has been revoked")
	case errors.Is(err, store.ErrExpiredKey):
		return k, reject(http.StatusUnauthorized, "expired_key", "this gateway key has expired")
	default:
		return nil, reject(http.StatusUnauthorized, "unknown_key", "invalid gateway key")
	}
}

var bodyPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// readBody reads the request body up to the limit.
func (g *Gateway) readBody(w http.ResponseWriter, r *http.Request, buf *bytes.Buffer) *apiError {
	if r.ContentLength > g.MaxBodySize {
		return reject(http.StatusRequestEntityTooLarge, "body_too_large",
			fmt.Sprintf("request body of %d bytes is over the gateway's limit of %d bytes", r.ContentLength, g.MaxBodySize))
	}
	if r.ContentLength > 0 {
		buf.Grow(int(r.ContentLength))
	}
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, g.MaxBodySize))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return reject(http.StatusRequestEntityTooLarge, "body_too_large",
				fmt.Sprintf("request body is over the gateway's limit of %d bytes", g.MaxBodySize))
		}
		return reject(http.StatusBadRequest, "body_unreadable", "reading the request body: "+err.Error())
	}
	return nil
}

// validate checks the fields the inbound shape requires and returns the
// parsed body, so the caller reads model and stream without another scan.
func validate(shape string, kind int, body []byte) (parsedRequest, *apiError) {
	var req parsedRequest
	if !gjson.ValidBytes(body) {
		return req, reject(http.StatusBadRequest, "malformed_json", "request body is not valid JSON")
	}
	req.root = gjson.ParseBytes(body)
	if !req.root.IsObject() {
		return req, reject(http.StatusBadRequest, "malformed_json", "request body must be a JSON object")
	}
	// One pass over the top level: each Get would scan past the whole
	// messages array again. The first of duplicate keys wins, as with Get.
	var msgs, mt gjson.Result
	req.root.ForEach(func(k, v gjson.Result) bool {
		var dst *gjson.Result
		switch k.Str {
		case "model":
			dst = &req.model
		case "stream":
			dst = &req.stream
		case "messages":
			dst = &msgs
		case "max_tokens":
			dst = &mt
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
	if !msgs.IsArray() {
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

// parsedRequest is a request body as validate read it.
type parsedRequest struct {
	root          gjson.Result // the whole body
	model, stream gjson.Result // top-level fields; zero when absent
}

// sessionID is the agent session a call belongs to, if the client says.
func sessionID(r *http.Request) string {
	if s := r.Header.Get("X-Claude-Code-Session-Id"); s != "" {
		return s
	}
	return r.Header.Get("X-Metis-Session-Id")
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

// rejected records a request the gateway refused before any upstream call.
func (g *Gateway) rejected(r *http.Request, shape string, key *store.Key, requested string, e *apiError) {
	p := map[string]any{
		"reason": e.reason, "status": e.status, "message": e.msg,
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
	mRejected.WithLabelValues(shape, e.reason).Inc()
	if !g.app.store.Enqueue(store.Event{Type: store.TypeRequestRejected, Time: time.Now(), Payload: p}) {
		mDropped.Inc()
	}
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
