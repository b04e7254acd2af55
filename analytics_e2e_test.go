package metis

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/url"
	"sort"
	"testing"

	"github.com/metisgateway/metis/internal/fakeupstream"
	"github.com/metisgateway/metis/store"
)

// TestAnalyticsMatchRawEvents drives traffic from several keys, users,
// teams and workspaces through the gateway, then compares every analytics
// endpoint with sums computed here from the raw llm.call_completed events.
func TestAnalyticsMatchRawEvents(t *testing.T) {
	up := fakeupstream.New(t)
	g := startGateway(t, gatewayConfig(tempDB(t), up.URL, ""))
	type ident struct{ name, user, team, ws string }
	idents := []ident{
		{"alice-laptop", "alice", "eng", "/src/pay"}, {"alice-ci", "alice", "eng", "/src/web"},
		{"bob", "bob", "eng", "/src/pay"}, {"carol", "carol", "sales", "/src/crm"}, {"shared", "", "", "/src/crm"},
	}
	toks := map[string]string{}
	for _, id := range idents {
		_, tok := g.issueKey(store.IssueParams{Name: id.name, User: id.user, Team: id.team, Workspace: id.ws})
		toks[id.name] = tok
	}
	// A mix of shapes, models, streams, a session, an unpriced model and a
	// provider error, each call from one of the keys.
	reqs := []struct {
		key, path, body string
		hdr             []string
	}{
		{"alice-laptop", "/v1/messages", `{"model":"sonnet","max_tokens":100,"messages":[{"role":"user","content":"hi"}]}`, []string{"X-Claude-Code-Session-Id", "s-1"}},
		{"alice-laptop", "/v1/messages", `{"model":"sonnet","max_tokens":100,"stream":true,"messages":[{"role":"user","content":"hi again"}]}`, []string{"X-Claude-Code-Session-Id", "s-1"}},
		{"alice-ci", "/v1/chat/completions", `{"model":"gpt-5-nano","messages":[{"role":"user","content":"hi"}]}`, nil},
		{"alice-ci", "/v1/chat/completions", `{"model":"gpt-5-nano","stream":true,"messages":[{"role":"user","content":"hi"}]}`, nil},
		{"bob", "/v1/chat/completions", `{"model":"haiku","messages":[{"role":"user","content":"cross shape"}]}`, nil},
		{"bob", "/v1/messages", `{"model":"openai:some-unpriced-model","max_tokens":10,"messages":[{"role":"user","content":"x"}]}`, nil},
		{"carol", "/v1/messages", `{"model":"claude-3-7-sonnet-20250219","max_tokens":100,"messages":[{"role":"user","content":"quarterly numbers"}]}`, nil},
		{"shared", "/v1/chat/completions", `{"model":"gpt-4o-2024-08-06","messages":[{"role":"user","content":"hello"}]}`, nil},
	}
	up.Enqueue("/v1/chat/completions", fakeupstream.Reply{
		Match:  func(r *fakeupstream.Recorded) bool { return r.JSON()["model"] == "gpt-4o-2024-08-06" },
		Status: 400, Body: `{"error":{"message":"bad","type":"invalid_request_error","param":null,"code":"x"}}`,
		Header: map[string][]string{"Content-Type": {"application/json"}}})
	for _, r := range reqs {
		resp := g.post(r.path, toks[r.key], r.body, r.hdr...)
		_, _ = io.Copy(io.Discard, resp.Body) // read it all: closing early cancels a stream
		resp.Body.Close()
	}
	calls := g.waitEvents(store.TypeCallCompleted, len(reqs))
	if len(calls) != len(reqs) {
		t.Fatalf("%d calls recorded, want %d", len(calls), len(reqs))
	}

	// Independent sums from the raw events.
	type agg struct {
		cost              float64
		calls, unpriced   int64
		in, out, cr, errs int64
	}
	sum := func(keep func(map[string]any) bool) agg {
		var a agg
		for _, c := range calls {
			if !keep(c) {
				continue
			}
			a.calls++
			if c["priced"] == true {
				a.cost += c["cost_usd"].(float64)
			} else {
				a.unpriced++
			}
			a.in += num(c, "input_tokens")
			a.out += num(c, "output_tokens")
			a.cr += num(c, "cache_read_input_tokens")
			if num(c, "status") >= 400 || c["error_class"] != nil {
				a.errs++
			}
		}
		return a
	}
	all := sum(func(map[string]any) bool { return true })
	if all.unpriced != 1 || all.errs != 1 {
		t.Fatalf("workload: %d unpriced, %d errors; want 1 and 1", all.unpriced, all.errs)
	}
	fetch := func(path string, v any) {
		t.Helper()
		_, b := get(t, g.Analytics+path, "")
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("%s: %v: %s", path, err, b)
		}
	}
	close := func(a, b float64) bool { return math.Abs(a-b) < 1e-8 }
	type costAns struct {
		Total, Calls, Unpriced, In, Out, Errs float64
		Groups                                []struct {
			Key      string
			CostUSD  float64 `json:"cost_usd"`
			Calls    int64
			Unpriced int64 `json:"unpriced_calls"`
		}
	}
	var raw map[string]any
	fetch("/analytics/cost?window=1h", &raw)
	if !close(raw["total_cost_usd"].(float64), all.cost) || int64(raw["calls"].(float64)) != all.calls ||
		int64(raw["unpriced_calls"].(float64)) != all.unpriced || int64(raw["input_tokens"].(float64)) != all.in ||
		int64(raw["output_tokens"].(float64)) != all.out || int64(raw["errors"].(float64)) != all.errs {
		t.Errorf("/analytics/cost totals %v; raw events %+v", raw, all)
	}
	// Every group_by, every group, against the raw events.
	field := map[string]string{"model": "model", "provider": "provider", "key": "gateway_key_id", "user": "user",
		"team": "team", "workspace": "workspace", "session": "session_id"}
	for gb, f := range field {
		var ans costAns
		fetch("/analytics/cost?window=1h&group_by="+gb, &ans)
		want := map[string]agg{}
		for _, c := range calls {
			k := fmt.Sprint(c[f])
			if c[f] == nil || k == "" {
				k = ""
			}
			want[k] = sum(func(m map[string]any) bool {
				v := fmt.Sprint(m[f])
				if m[f] == nil {
					v = ""
				}
				return v == k
			})
		}
		got := map[string]bool{}
		for _, gr := range ans.Groups {
			k := gr.Key
			if k == "untagged" && (gb == "user" || gb == "team") {
				k = ""
			}
			w, ok := want[k]
			if !ok {
				t.Errorf("group_by=%s: unexpected group %q", gb, gr.Key)
				continue
			}
			got[k] = true
			if !close(gr.CostUSD, w.cost) || gr.Calls != w.calls || gr.Unpriced != w.unpriced {
				t.Errorf("group_by=%s %q: cost %v calls %d unpriced %d; raw %+v", gb, gr.Key, gr.CostUSD, gr.Calls, gr.Unpriced, w)
			}
		}
		if len(got) != len(want) {
			t.Errorf("group_by=%s: %d groups, raw events have %d", gb, len(got), len(want))
		}
	}
	// Filters combine.
	var filtered map[string]any
	fetch("/analytics/cost?window=1h&team=eng&workspace="+url.QueryEscape("/src/pay"), &filtered)
	w := sum(func(m map[string]any) bool { return m["team"] == "eng" && m["workspace"] == "/src/pay" })
	if !close(filtered["total_cost_usd"].(float64), w.cost) || int64(filtered["calls"].(float64)) != w.calls {
		t.Errorf("team+workspace filter %v; raw %+v", filtered, w)
	}
	// by_team with nested users, by_user with untagged, by_key with shapes.
	var byTeam struct {
		Teams []struct {
			Team    string
			CostUSD float64 `json:"cost_usd"`
			Calls   int64
			Users   int
			ByUser  []struct {
				User    string
				CostUSD float64 `json:"cost_usd"`
				Calls   int64
			} `json:"by_user"`
		}
	}
	fetch("/analytics/by_team", &byTeam)
	for _, tm := range byTeam.Teams {
		team := tm.Team
		if team == "untagged" {
			team = ""
		}
		w := sum(func(m map[string]any) bool { return m["team"] == team })
		if !close(tm.CostUSD, w.cost) || tm.Calls != w.calls {
			t.Errorf("by_team %s: %v/%d; raw %+v", tm.Team, tm.CostUSD, tm.Calls, w)
		}
		var users []string
		for _, u := range tm.ByUser {
			user := u.User
			if user == "untagged" {
				user = ""
			}
			uw := sum(func(m map[string]any) bool { return m["team"] == team && m["user"] == user })
			if !close(u.CostUSD, uw.cost) || u.Calls != uw.calls {
				t.Errorf("by_team %s user %s: %v/%d; raw %+v", tm.Team, u.User, u.CostUSD, u.Calls, uw)
			}
			users = append(users, u.User)
		}
		sort.Strings(users)
		if team == "eng" && (fmt.Sprint(users) != "[alice bob]" || tm.Users != 2) {
			t.Errorf("eng users %v (%d)", users, tm.Users)
		}
	}
	var byKey struct {
		Keys []struct {
			ID      string  `json:"gateway_key_id"`
			Name    string  `json:"name"`
			CostUSD float64 `json:"cost_usd"`
			Calls   int64
			Shapes  map[string]int64 `json:"inbound_shapes"`
		}
	}
	fetch("/analytics/by_key", &byKey)
	if len(byKey.Keys) != len(idents) {
		t.Errorf("by_key lists %d keys, want %d", len(byKey.Keys), len(idents))
	}
	for _, k := range byKey.Keys {
		w := sum(func(m map[string]any) bool { return m["gateway_key_id"] == k.ID })
		ant := sum(func(m map[string]any) bool { return m["gateway_key_id"] == k.ID && m["inbound_shape"] == "anthropic" })
		if !close(k.CostUSD, w.cost) || k.Calls != w.calls || k.Shapes["anthropic"] != ant.calls || k.Shapes["openai"] != w.calls-ant.calls {
			t.Errorf("by_key %s: %v/%d %v; raw %+v", k.Name, k.CostUSD, k.Calls, k.Shapes, w)
		}
	}
	// /analytics/me shows only the caller's key.
	var me struct {
		GatewayKeyID string `json:"gateway_key_id"`
		Total        struct {
			CostUSD float64 `json:"cost_usd"`
			Calls   int64
		}
	}
	_, b := get(t, g.Analytics+"/analytics/me?window=1h", toks["carol"])
	if err := json.Unmarshal(b, &me); err != nil {
		t.Fatal(err)
	}
	cw := sum(func(m map[string]any) bool { return m["key_name"] == "carol" })
	if !close(me.Total.CostUSD, cw.cost) || me.Total.Calls != cw.calls || me.Total.Calls != 1 {
		t.Errorf("/analytics/me for carol: %+v; raw %+v", me, cw)
	}
	// The Claude Code session and its calls in order.
	var sess struct {
		Sessions []struct {
			SessionID string  `json:"session_id"`
			Calls     int64   `json:"calls"`
			CostUSD   float64 `json:"cost_usd"`
		}
	}
	fetch("/sessions?window=1h", &sess)
	sw := sum(func(m map[string]any) bool { return m["session_id"] == "s-1" })
	if len(sess.Sessions) != 1 || sess.Sessions[0].SessionID != "s-1" || sess.Sessions[0].Calls != 2 || !close(sess.Sessions[0].CostUSD, sw.cost) {
		t.Errorf("/sessions %+v; raw %+v", sess, sw)
	}
	var one struct {
		CallsList []struct {
			Stream bool `json:"stream"`
		} `json:"calls_list"`
	}
	fetch("/sessions/s-1", &one)
	if len(one.CallsList) != 2 || one.CallsList[0].Stream || !one.CallsList[1].Stream {
		t.Errorf("/sessions/s-1 calls in order: %+v", one.CallsList)
	}
}
