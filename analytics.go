package metis

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/metisgateway/metis/analytics"
	"github.com/metisgateway/metis/dashboard"
)

// Analytics is the metis_analytics HTTP handler: the analytics API
// (/analytics/*, /sessions, /health) and the web dashboard (/dashboard/),
// reading the trace database of the metis app.
type Analytics struct {
	// DisableDashboard turns the embedded web dashboard off.
	DisableDashboard bool `json:"disable_dashboard,omitempty"`

	h *analytics.Handler
}

// CaddyModule returns the Caddy module information.
func (*Analytics) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "http.handlers.metis_analytics", New: func() caddy.Module { return new(Analytics) }}
}

// Provision connects the handler to the metis app's read pool.
func (h *Analytics) Provision(ctx caddy.Context) error {
	v, err := ctx.App("metis")
	if err != nil {
		return fmt.Errorf("loading the metis app: %w", err)
	}
	app := v.(*App)
	st := app.store
	opts := analytics.Options{
		Logger:  ctx.Logger(),
		Budgets: app.ledger,
		Authenticate: func(token string) (analytics.Identity, error) {
			k, err := st.Authenticate(token)
			if err != nil {
				return analytics.Identity{}, err
			}
			if k == nil {
				return analytics.Identity{}, errors.New("unknown key")
			}
			return analytics.Identity{KeyID: k.ID, Name: k.Name, User: k.User, Team: k.Team, Workspace: k.Workspace}, nil
		},
	}
	if !h.DisableDashboard {
		opts.Dashboard = dashboard.Handler("/") // analytics strips the /dashboard prefix
	}
	h.h = analytics.New(st.ReadDB(), opts)
	// Fill the day cache in the background (one core at most, a few
	// seconds at 10M calls) so that the dashboard's first requests after a
	// start or reload read cached days.
	h.h.StartWarming()
	return nil
}

// Cleanup stops the background warm-up of the handler's day cache.
func (h *Analytics) Cleanup() error {
	if h.h != nil {
		h.h.Close()
	}
	return nil
}

// ServeHTTP answers the analytics paths and passes anything else on.
func (h *Analytics) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	if h.h.Serve(w, r) {
		return nil
	}
	return next.ServeHTTP(w, r)
}

var (
	_ caddy.Provisioner           = (*Analytics)(nil)
	_ caddy.CleanerUpper          = (*Analytics)(nil)
	_ caddyhttp.MiddlewareHandler = (*Analytics)(nil)
)
