package analytics

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/metisgateway/metis/apiversion"
)

type errJSON struct {
	Error struct {
		Type    string `json:"type"`
		Message string `json:"message"`
		Param   string `json:"param"`
	} `json:"error"`
}

func decode(t *testing.T, w *httptest.ResponseRecorder, out any) {
	t.Helper()
	if err := json.Unmarshal(w.Body.Bytes(), out); err != nil {
		t.Fatalf("decoding %q: %v", w.Body.String(), err)
	}
}

func serve(h *Handler, method, target string, hdr ...string) (*httptest.ResponseRecorder, bool) {
	r := httptest.NewRequest(method, target, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	return w, h.Serve(w, r)
}

var ownedPaths = []string{"/health", "/analytics/cost", "/analytics/by_key", "/analytics/by_user",
	"/analytics/by_team", "/analytics/activity", "/sessions", "/sessions/sess-01", "/analytics/me",
	"/analytics/nope", "/dashboard", "/dashboard/", "/dashboard/app.js"}

func TestVersionHeaderOnEveryOwnedPath(t *testing.T) {
	f := newFixture(t, 8, 100)
	dash := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("dashboard " + r.URL.Path))
	})
	h := New(f.st.ReadDB(), Options{Now: func() time.Time { return testNow }, Dashboard: dash})
	for _, p := range ownedPaths {
		for _, pin := range []string{"", "1.0"} {
			w, ok := serve(h, http.MethodGet, p, apiversion.Header, pin)
			if !ok {
				t.Fatalf("%s not owned", p)
			}
			if got := w.Header().Get(apiversion.Header); got != "1.0" {
				t.Errorf("%s pinned %q: %s = %q, want 1.0", p, pin, apiversion.Header, got)
			}
		}
		w, _ := serve(h, http.MethodGet, p, apiversion.Header, "9.9")
		var e errJSON
		decode(t, w, &e)
		if w.Code != 400 || e.Error.Type != "unsupported_api_version" || e.Error.Param != apiversion.Header ||
			!strings.Contains(e.Error.Message, "supported versions: 1.0") {
			t.Errorf("%s with 9.9: %d %+v", p, w.Code, e.Error)
		}
	}
	w, _ := serve(h, http.MethodGet, "/dashboard/app.js")
	if w.Code != 200 || w.Body.String() != "dashboard /app.js" {
		t.Errorf("dashboard file: %d %q", w.Code, w.Body.String())
	}
	w, _ = serve(h, http.MethodGet, "/dashboard")
	if w.Code != http.StatusMovedPermanently || w.Header().Get("Location") != "/dashboard/" {
		t.Errorf("/dashboard: %d to %q", w.Code, w.Header().Get("Location"))
	}
	w, _ = serve(f.h, http.MethodGet, "/dashboard/")
	if w.Code != 404 {
		t.Errorf("no dashboard configured: status %d", w.Code)
	}
}

func TestDeprecatedVersionHeaders(t *testing.T) {
	f := newFixture(t, 9, 10)
	saved := apiversion.Versions
	apiversion.Versions = []apiversion.Version{
		{Name: "0.9", Deprecated: true, Sunset: time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC)}, {Name: "1.0"}}
	t.Cleanup(func() { apiversion.Versions = saved })
	w, _ := serve(f.h, http.MethodGet, "/analytics/cost", apiversion.Header, "0.9")
	if w.Code != 200 || w.Header().Get(apiversion.Header) != "0.9" || w.Header().Get("Deprecation") != "true" ||
		w.Header().Get("Sunset") != "Tue, 01 Sep 2026 00:00:00 GMT" {
		t.Errorf("deprecated: %d %v", w.Code, w.Header())
	}
	w, _ = serve(f.h, http.MethodGet, "/health")
	if w.Header().Get("Deprecation") != "" || w.Header().Get(apiversion.Header) != "1.0" {
		t.Errorf("latest: %v", w.Header())
	}
}

func TestHealthMethodsAndForeignPaths(t *testing.T) {
	f := newFixture(t, 10, 10)
	w, _ := serve(f.h, http.MethodGet, "/health")
	if w.Code != 200 || strings.TrimSpace(w.Body.String()) != `{"status":"ok"}` {
		t.Errorf("/health: %d %q", w.Code, w.Body.String())
	}
	if w.Header().Get("Content-Type") != "application/json" {
		t.Errorf("/health content type %q", w.Header().Get("Content-Type"))
	}
	w, _ = serve(f.h, http.MethodHead, "/analytics/by_team")
	if w.Code != 200 {
		t.Errorf("HEAD: %d", w.Code)
	}
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch} {
		w, ok := serve(f.h, m, "/analytics/cost")
		var e errJSON
		decode(t, w, &e)
		if !ok || w.Code != 405 || e.Error.Type != "method_not_allowed" || w.Header().Get("Allow") != "GET, HEAD" ||
			w.Header().Get(apiversion.Header) != "1.0" {
			t.Errorf("%s: %d %+v", m, w.Code, e)
		}
	}
	for _, p := range []string{"/", "/v1/messages", "/healthz", "/analyticsx", "/sessionsx", "/dashboardx"} {
		w, ok := serve(f.h, http.MethodGet, p)
		if ok || w.Body.Len() != 0 || len(w.Header()) != 0 {
			t.Errorf("%s: owned=%v, wrote %q %v", p, ok, w.Body.String(), w.Header())
		}
	}
	w, _ = serve(f.h, http.MethodGet, "/analytics/nope")
	if w.Code != 404 {
		t.Errorf("/analytics/nope: %d", w.Code)
	}
}

func TestBadParametersNameTheParameter(t *testing.T) {
	f := newFixture(t, 11, 10)
	cases := []struct{ target, param, contains string }{
		{"/analytics/cost?group_by=foo", "group_by",
			`unknown group_by "foo"; one of model, provider, key, user, team, workspace, session, day, hour`},
		{"/analytics/cost?window=yesterday", "window", `"yesterday"`},
		{"/analytics/cost?window=-1h", "window", `"-1h"`},
		{"/analytics/cost?window=0s", "window", `"0s"`},
		{"/analytics/by_key?window=0d", "window", `"0d"`},
		{"/analytics/by_user?window=7x", "window", `"7x"`},
		{"/analytics/by_team?window=1", "window", `"1"`},
		{"/analytics/cost?limit=0", "limit", `bad limit "0"; use a whole number from 1 to 10000`},
		{"/analytics/cost?group_by=session&limit=10001", "limit", `"10001"`},
		{"/analytics/cost?group_by=key&limit=all", "limit", `"all"`},
		{"/analytics/activity?limit=0", "limit", `"0"`},
		{"/analytics/activity?limit=501", "limit", `"501"`},
		{"/analytics/activity?limit=ten", "limit", `"ten"`},
		{"/analytics/activity?window=bad", "window", `"bad"`},
		{"/sessions?limit=-3", "limit", `"-3"`},
		{"/sessions?window=1y", "window", `"1y"`},
		// A parameter no endpoint reads is refused, not ignored.
		{"/analytics/cost?group_by=day&tz=Asia/Tokyo", "tz", `unknown parameter "tz"`},
		{"/analytics/by_team?start=2026-10-01", "start", `unknown parameter "start"`},
		{"/sessions?grup_by=model", "grup_by", `unknown parameter "grup_by"`},
		// …and so is one another endpoint reads but this one does not.
		{"/analytics/by_key?group_by=model", "group_by", `unknown parameter "group_by"; /analytics/by_key takes window, from, to, gateway_key`},
		{"/analytics/by_team?limit=5", "limit", `unknown parameter "limit"`},
		{"/sessions/s1?window=1h", "window", `unknown parameter "window"; /sessions/s1 takes none`},
		{"/analytics/cost?from=2026-10-01&window=30d", "window", "either window or from and to"},
		{"/analytics/cost?to=2026-10-01", "from", "to needs a from"},
		{"/analytics/cost?from=October", "from", `bad from "October"`},
		{"/analytics/by_key?from=2026-10-02&to=2026-10-01", "to", "must be after from"},
		// A query Go cannot parse whole is refused: URL.Query drops the
		// broken pair, and a dropped filter would answer for everyone.
		{"/analytics/cost?group_by=user&user=100%", "", "malformed query string"},
		{"/analytics/cost?group_by=user&user=al%ice", "", "escape % as %25"},
		{"/analytics/by_user?user=alice;x=1", "", "not ;"},
		// A session's calls may use several models: no model filter.
		{"/sessions?model=gpt-5-mini", "model", `unknown parameter "model"; /sessions takes window, from, to, limit, gateway_key, user, team, workspace`},
	}
	for _, c := range cases {
		w, _ := serve(f.h, http.MethodGet, c.target)
		var e errJSON
		decode(t, w, &e)
		if w.Code != 400 || e.Error.Type != "invalid_parameter" || e.Error.Param != c.param ||
			!strings.Contains(e.Error.Message, c.contains) {
			t.Errorf("%s: %d %+v", c.target, w.Code, e.Error)
		}
	}
	var e errJSON
	f.getMe(t, "window=nope", "x-api-key", f.keys[0].token, 400, &e)
	if e.Error.Param != "window" {
		t.Errorf("me bad window: %+v", e.Error)
	}
	for _, ok := range []string{"1h", "24h", "7d", "30d", "all", "90m", "3d", "1h30m"} {
		w, _ := serve(f.h, http.MethodGet, "/analytics/cost?window="+ok)
		if w.Code != 200 {
			t.Errorf("window %s: %d %s", ok, w.Code, w.Body.String())
		}
	}
}

func TestEmptyDatabaseAnswersEmptyLists(t *testing.T) {
	f := newFixture(t, 12, 0)
	for _, p := range []string{"/analytics/cost", "/analytics/by_key", "/analytics/by_user", "/analytics/by_team",
		"/analytics/activity?window=all", "/sessions"} {
		w, _ := serve(f.h, http.MethodGet, p)
		if w.Code != 200 || strings.Contains(w.Body.String(), "null") {
			t.Errorf("%s: %d %s", p, w.Code, w.Body.String())
		}
	}
}
