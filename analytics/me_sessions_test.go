package analytics

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"testing"
	"time"
)

type meJSON struct {
	GatewayKeyID string `json:"gateway_key_id"`
	Name         string `json:"name"`
	User         string `json:"user"`
	Team         string `json:"team"`
	Workspace    string `json:"workspace"`
	Window       string `json:"window"`
	Today        struct {
		CostUSD float64 `json:"cost_usd"`
		Calls   int64   `json:"calls"`
	} `json:"today"`
	Total struct {
		CostUSD       float64 `json:"cost_usd"`
		Calls         int64   `json:"calls"`
		InputTokens   int64   `json:"input_tokens"`
		OutputTokens  int64   `json:"output_tokens"`
		UnpricedCalls int64   `json:"unpriced_calls"`
	} `json:"total"`
	ByModel []struct {
		Key     string  `json:"key"`
		CostUSD float64 `json:"cost_usd"`
		Calls   int64   `json:"calls"`
	} `json:"by_model"`
	Budgets []any `json:"budgets"`
}

func (f *fixture) getMe(t *testing.T, rawQuery string, header, value string, want int, out any) {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, "/analytics/me?"+rawQuery, nil)
	if header != "" {
		r.Header.Set(header, value)
	}
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, r)
	if w.Code != want {
		t.Fatalf("GET /analytics/me?%s: status %d, want %d: %s", rawQuery, w.Code, want, w.Body.String())
	}
	if out != nil {
		decode(t, w, out)
	}
}

func TestMeShowsOnlyTheCallersKey(t *testing.T) {
	f := newFixture(t, 5, 3000)
	midnight := testNow.Truncate(24 * time.Hour)
	for i, k := range f.keys {
		for _, win := range []string{"1h", "24h", "7d", "all"} {
			hdr, val := "x-api-key", k.token
			if i%2 == 1 {
				hdr, val = "Authorization", "Bearer "+k.token
			}
			// Identity filters cannot widen or move the scope: /me refuses them.
			other := f.keys[(i+1)%len(f.keys)]
			f.getMe(t, url.Values{"window": {win}, "gateway_key": {other.id}}.Encode(), hdr, val, 400, nil)
			f.getMe(t, url.Values{"window": {win}, "user": {"untagged"}}.Encode(), hdr, val, 400, nil)
			q := url.Values{"window": {win}}
			var got meJSON
			f.getMe(t, q.Encode(), hdr, val, 200, &got)
			ctx := "me " + k.name + " " + win
			if got.GatewayKeyID != k.id || got.Name != k.name || got.User != k.user || got.Team != k.team ||
				got.Workspace != k.workspace || got.Window != win {
				t.Errorf("%s: identity %+v, want %+v", ctx, got, k)
			}
			from, to := testWindow(win)
			own := url.Values{"gateway_key": {k.id}}
			byModel, total := f.expect(from, to, own, func(c seedCall) string { return c.c.Model })
			_, today := f.expect(midnight, testNow, own, func(seedCall) string { return "" })
			checkMoney(t, ctx+" total cost", got.Total.CostUSD, total.cost)
			checkInt(t, ctx+" total calls", got.Total.Calls, total.calls)
			checkInt(t, ctx+" total input", got.Total.InputTokens, total.input)
			checkInt(t, ctx+" total output", got.Total.OutputTokens, total.output)
			checkInt(t, ctx+" total unpriced", got.Total.UnpricedCalls, total.unpriced)
			checkMoney(t, ctx+" today cost", got.Today.CostUSD, today.cost)
			checkInt(t, ctx+" today calls", got.Today.Calls, today.calls)
			if len(got.ByModel) != len(byModel) || got.Budgets == nil || len(got.Budgets) != 0 {
				t.Errorf("%s: %d models (want %d), budgets %v", ctx, len(got.ByModel), len(byModel), got.Budgets)
			}
			for _, m := range got.ByModel {
				w := byModel[m.Key]
				if w == nil {
					t.Errorf("%s: model %q not used by this key", ctx, m.Key)
					continue
				}
				checkMoney(t, ctx+" "+m.Key+" cost", m.CostUSD, w.cost)
				checkInt(t, ctx+" "+m.Key+" calls", m.Calls, w.calls)
			}
		}
	}
}

func TestMeRequiresAValidKey(t *testing.T) {
	f := newFixture(t, 6, 50)
	for _, c := range []struct{ header, value string }{
		{"", ""},
		{"x-api-key", "gw_not_a_real_token"},
		{"Authorization", "Bearer gw_not_a_real_token"},
		{"Authorization", "Basic " + f.keys[0].token},
	} {
		var body errJSON
		f.getMe(t, "window=24h", c.header, c.value, 401, &body)
		if body.Error.Type != "authentication_error" || body.Error.Message == "" {
			t.Errorf("%s %q: error %+v", c.header, c.value, body.Error)
		}
	}
	noAuth := New(f.st.ReadDB(), Options{Now: func() time.Time { return testNow }})
	w := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodGet, "/analytics/me", nil)
	r.Header.Set("x-api-key", f.keys[0].token)
	noAuth.ServeHTTP(w, r)
	if w.Code != 401 {
		t.Errorf("without an authenticator: status %d, want 401", w.Code)
	}
}

type sessionJSON struct {
	SessionID     string     `json:"session_id"`
	GatewayKeyID  string     `json:"gateway_key_id"`
	KeyName       string     `json:"key_name"`
	User          string     `json:"user"`
	Team          string     `json:"team"`
	Workspace     string     `json:"workspace"`
	FirstCallAt   string     `json:"first_call_at"`
	LastCallAt    string     `json:"last_call_at"`
	Calls         int64      `json:"calls"`
	CostUSD       float64    `json:"cost_usd"`
	UnpricedCalls int64      `json:"unpriced_calls"`
	CallsList     []callJSON `json:"calls_list"`
}

func TestSessionsMatchSeededCalls(t *testing.T) {
	f := newFixture(t, 7, 3000)
	type sess struct {
		tsums
		first time.Time
		calls []seedCall
		key   string
	}
	all := map[string]*sess{}
	byTurn := map[string]seedCall{}
	for _, c := range f.calls {
		byTurn[c.c.TurnID] = c
		if c.c.SessionID == "" {
			continue
		}
		s := all[c.c.SessionID]
		if s == nil {
			s = &sess{first: c.at, key: c.c.GatewayKeyID}
			all[c.c.SessionID] = s
		}
		s.add(c)
		s.calls = append(s.calls, c)
		if c.at.Before(s.first) {
			s.first = c.at
		}
	}
	for _, win := range []string{"1h", "24h", "7d", "all"} {
		from, to := testWindow(win)
		for _, p := range []url.Values{{}, {"user": {"alice"}}, {"gateway_key": {f.keys[1].id}},
			{"workspace": {"/src/api"}}, {"user": {"untagged"}}, {"limit": {"3"}}} {
			q := with(p, "window", win)
			var got struct {
				Window   string        `json:"window"`
				Sessions []sessionJSON `json:"sessions"`
			}
			f.get(t, "/sessions", q, 200, &got)
			var want []string
			for id, s := range all {
				c := s.calls[0].c
				if s.last.Before(from) || !s.last.Before(to) {
					continue
				}
				if !matches(seedCall{at: s.last, c: c}, from, to, with(p, "limit", "")) {
					continue
				}
				want = append(want, id)
			}
			sort.Slice(want, func(i, j int) bool { return all[want[i]].last.After(all[want[j]].last) })
			if p.Get("limit") == "3" && len(want) > 3 {
				want = want[:3]
			}
			ctx := "sessions?" + q.Encode()
			if len(got.Sessions) != len(want) {
				t.Fatalf("%s: %d sessions, want %d", ctx, len(got.Sessions), len(want))
			}
			for i, s := range got.Sessions {
				w := all[s.SessionID]
				if s.SessionID != want[i] {
					t.Errorf("%s: sessions[%d] = %s, want %s", ctx, i, s.SessionID, want[i])
					continue
				}
				checkMoney(t, ctx+" "+s.SessionID+" cost", s.CostUSD, w.cost)
				checkInt(t, ctx+" "+s.SessionID+" calls", s.Calls, w.tsums.calls)
				checkInt(t, ctx+" "+s.SessionID+" unpriced", s.UnpricedCalls, w.unpriced)
				if s.GatewayKeyID != w.key || !parseAPITime(t, s.LastCallAt).Equal(w.last.Truncate(time.Millisecond)) ||
					!parseAPITime(t, s.FirstCallAt).Equal(w.first.Truncate(time.Millisecond)) {
					t.Errorf("%s: %+v", ctx, s)
				}
			}
		}
	}
	for id, w := range all {
		var got sessionJSON
		f.get(t, "/sessions/"+url.PathEscape(id), nil, 200, &got)
		if got.SessionID != id || got.Calls != int64(len(w.calls)) || len(got.CallsList) != len(w.calls) {
			t.Fatalf("session %s: %d calls, %d listed, want %d", id, got.Calls, len(got.CallsList), len(w.calls))
		}
		checkMoney(t, "session "+id+" cost", got.CostUSD, w.cost)
		sort.Slice(w.calls, func(i, j int) bool { return w.calls[i].at.Before(w.calls[j].at) })
		for i, c := range got.CallsList {
			s := checkCall(t, "session "+id, c, byTurn)
			if !s.at.Equal(w.calls[i].at) {
				t.Errorf("session %s: calls_list[%d] at %s, want %s", id, i, s.at, w.calls[i].at)
			}
		}
	}
	var e errJSON
	f.get(t, "/sessions/no-such-session", nil, 404, &e)
	if e.Error.Type != "not_found" {
		t.Errorf("unknown session: %+v", e.Error)
	}
}
