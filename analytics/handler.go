// Package analytics answers the Metis analytics API (contract §6): spend and
// usage over a time window from the trace store's rollups, the Claude Code
// sessions, the caller's own spend, and the dashboard's static files. It is
// plain net/http; the root package wraps it as the metis_analytics Caddy
// handler.
package analytics

import (
	"github.com/metisgateway/metis/budget"

	"database/sql"
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/metisgateway/metis/apiversion"
)

// Identity is the gateway key a request to /analytics/me authenticated with.
type Identity struct {
	// KeyID is the gateway key id (gk_…).
	KeyID string
	// Name is the key's name.
	Name string
	// User is the key's user tag ("" when untagged).
	User string
	// Team is the key's team tag ("" when untagged).
	Team string
	// Workspace is the key's workspace.
	Workspace string
}

// Options configures a Handler.
type Options struct {
	// Authenticate resolves a gateway token (from x-api-key or
	// Authorization: Bearer) for /analytics/me. Nil answers 401 to every
	// /analytics/me request.
	Authenticate func(token string) (Identity, error)
	// Dashboard serves the web dashboard under /dashboard/, with the
	// /dashboard prefix stripped from the request path. Nil answers 404.
	Dashboard http.Handler
	// Budgets, when set, fills the quota fields of by_key, by_user and
	// by_team and the budgets of /analytics/me.
	Budgets *budget.Ledger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives server-side errors; nil discards them.
	Logger *zap.Logger
}

// Handler answers the analytics API over a read connection pool of the
// trace store. It is safe for concurrent use.
type Handler struct {
	db        *sql.DB
	auth      func(token string) (Identity, error)
	dashboard http.Handler
	now       func() time.Time
	log       *zap.Logger
	budgets   *budget.Ledger
	cache     dayCache
	warm      warmer
}

// New returns a Handler reading db, a database with the trace store schema
// (store.(*Store).ReadDB()).
func New(db *sql.DB, o Options) *Handler {
	h := &Handler{db: db, auth: o.Authenticate, now: o.Now, log: o.Logger, budgets: o.Budgets}
	if h.now == nil {
		h.now = time.Now
	}
	if h.log == nil {
		h.log = zap.NewNop()
	}
	if o.Dashboard != nil {
		h.dashboard = http.StripPrefix("/dashboard", o.Dashboard)
	}
	return h
}

// ServeHTTP makes Handler an http.Handler: paths it does not own get 404.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !h.Serve(w, r) {
		http.NotFound(w, r)
	}
}

// Serve answers the paths the Handler owns (/health, /analytics/*,
// /sessions, /sessions/{id}, /dashboard*) and returns false, having written
// nothing, for any other path so that the caller can pass the request on.
func (h *Handler) Serve(w http.ResponseWriter, r *http.Request) bool {
	p := r.URL.Path
	owned := p == "/health" || p == "/analytics" || strings.HasPrefix(p, "/analytics/") ||
		p == "/sessions" || strings.HasPrefix(p, "/sessions/") ||
		p == "/dashboard" || strings.HasPrefix(p, "/dashboard/")
	if !owned {
		return false
	}
	if _, ok := apiversion.Negotiate(w, r); !ok {
		return true
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, http.StatusMethodNotAllowed, "method_not_allowed",
			r.Method+" is not allowed on "+p+"; use GET or HEAD", "")
		return true
	}
	switch {
	case p == "/dashboard":
		http.Redirect(w, r, "/dashboard/", http.StatusMovedPermanently)
	case strings.HasPrefix(p, "/dashboard/"):
		if h.dashboard == nil {
			writeError(w, http.StatusNotFound, "not_found", "the dashboard is not configured", "")
			return true
		}
		h.dashboard.ServeHTTP(w, r)
	case p == "/health":
		writeJSON(w, map[string]string{"status": "ok"})
	case p == "/sessions" || p == "/sessions/":
		h.run(w, r, sessionParams, h.sessions)
	case strings.HasPrefix(p, "/sessions/"):
		h.run(w, r, noParams, h.session)
	default:
		fn, params := h.analyticsRoute(strings.TrimPrefix(p, "/analytics/"))
		if fn == nil {
			writeError(w, http.StatusNotFound, "not_found", "no analytics endpoint at "+p, "")
			return true
		}
		h.run(w, r, params, fn)
	}
	return true
}

func (h *Handler) analyticsRoute(name string) (endpoint, []string) {
	switch name {
	case "cost":
		return h.cost, costParams
	case "by_key":
		return h.byKey, identityParams
	case "by_user":
		return h.byUser, identityParams
	case "by_team":
		return h.byTeam, identityParams
	case "activity":
		return h.activity, listParams
	case "me":
		return h.me, meParams
	}
	return nil, nil
}
