package analytics

import (
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"
)

// tsums are expected figures computed in Go from the seeded calls.
type tsums struct {
	calls, errors, unpriced, estimated              int64
	cost, savings                                   float64
	input, output, cacheRead, cacheWrite, reasoning int64
	last                                            time.Time
	keys                                            map[string]bool
	users                                           map[string]bool
	shapes                                          map[string]int64
}

func (s *tsums) add(c seedCall) {
	s.calls++
	if c.isError() {
		s.errors++
	}
	if !c.c.Priced {
		s.unpriced++
	}
	if c.isEstimated() {
		s.estimated++
	}
	s.cost += c.cost()
	s.savings += c.c.CacheSavingsUSD
	s.input += c.c.InputTokens
	s.output += c.c.OutputTokens
	s.cacheRead += c.c.CacheReadInputTokens
	s.cacheWrite += c.c.CacheCreationInputTokens
	s.reasoning += c.c.ReasoningTokens
	if c.at.After(s.last) {
		s.last = c.at
	}
	if s.keys == nil {
		s.keys, s.users, s.shapes = map[string]bool{}, map[string]bool{}, map[string]int64{}
	}
	s.keys[c.c.GatewayKeyID] = true
	if c.c.User != "" {
		s.users[c.c.User] = true
	}
	s.shapes[c.c.InboundShape]++
}

// testWindow resolves a window name the way the API documents it.
func testWindow(name string) (from, to time.Time) {
	to = testNow
	switch name {
	case "all":
		return time.Unix(0, 0), to
	case "7d":
		return to.Add(-7 * 24 * time.Hour), to
	case "30d":
		return to.Add(-30 * 24 * time.Hour), to
	}
	d, err := time.ParseDuration(name)
	if err != nil {
		panic(err)
	}
	return to.Add(-d), to
}

// matches applies the API's filters (params) to a seeded call.
func matches(c seedCall, from, to time.Time, params url.Values) bool {
	if c.at.Before(from) || !c.at.Before(to) {
		return false
	}
	tag := func(v string) string {
		if v == "untagged" {
			return ""
		}
		return v
	}
	for name, field := range map[string]string{"gateway_key": c.c.GatewayKeyID, "user": c.c.User,
		"team": c.c.Team, "workspace": c.c.Workspace, "model": c.c.Model} {
		if v := params.Get(name); v != "" {
			if name == "user" || name == "team" {
				v = tag(v)
			}
			if v != field {
				return false
			}
		}
	}
	return true
}

// expect groups the matching seeded calls by keyOf.
func (f *fixture) expect(from, to time.Time, params url.Values, keyOf func(seedCall) string) (map[string]*tsums, tsums) {
	groups := map[string]*tsums{}
	var total tsums
	for _, c := range f.calls {
		if !matches(c, from, to, params) {
			continue
		}
		k := keyOf(c)
		if groups[k] == nil {
			groups[k] = &tsums{}
		}
		groups[k].add(c)
		total.add(c)
	}
	return groups, total
}

// get requests path?params from the fixture's handler and decodes the JSON
// answer into out, failing unless the status is want.
func (f *fixture) get(t *testing.T, path string, params url.Values, want int, out any) *httptest.ResponseRecorder {
	t.Helper()
	u := path
	if len(params) > 0 {
		u += "?" + params.Encode()
	}
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, u, nil))
	if w.Code != want {
		t.Fatalf("GET %s: status %d, want %d: %s", u, w.Code, want, w.Body.String())
	}
	if out != nil {
		if err := json.Unmarshal(w.Body.Bytes(), out); err != nil {
			t.Fatalf("GET %s: decoding %q: %v", u, w.Body.String(), err)
		}
	}
	return w
}

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }

func checkMoney(t *testing.T, what string, got, want float64) {
	t.Helper()
	if !near(got, want) {
		t.Errorf("%s = %.12f, want %.12f", what, got, want)
	}
}

func checkInt(t *testing.T, what string, got, want int64) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %d, want %d", what, got, want)
	}
}

func parseAPITime(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatalf("bad time %q: %v", s, err)
	}
	if _, off := v.Zone(); off != 0 {
		t.Errorf("time %q is not UTC", s)
	}
	return v
}

func tagOr(s string) string {
	if s == "" {
		return "untagged"
	}
	return s
}
