package metis

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/metisgateway/metis/budget"
	"github.com/metisgateway/metis/internal/fakeupstream"
	"github.com/metisgateway/metis/store"
)

// capsBody is a small Anthropic request whose worst case (≈60 input tokens
// at $3/MTok + 200 output tokens at $15/MTok ≈ $0.00318) covers the
// recorded answer's actual cost: 514 × $3/MTok + 19 × $15/MTok = $0.001827.
const capsBody = `{"model":"sonnet","max_tokens":200,"messages":[{"role":"user","content":"What is the weather in San Francisco today, please?"}]}`

const capsCallCost = 0.001827

// capKey puts key k under a hard limit of hard dollars over a rolling
// 24 h and waits until the gateway applies it. Rolling, not daily: a daily
// window resets at UTC midnight, so a test whose calls straddled it (the
// chaos and soak tests run for minutes) saw its spend restart, and a
// refusal in the last 60 s before it was advised as a rate limit with a
// short Retry-After rather than as a spent quota.
func capKey(t *testing.T, g *testGateway, k store.Key, hard float64) {
	t.Helper()
	setBudget(t, g.DB, budget.Budget{Scope: "key", Subject: k.ID, Window: "24h", Hard: hard})
	waitApplies(t, g, budget.Identity{KeyID: k.ID})
}

// keyQuota is key k's one budget as the gateway's ledger sees it now.
func keyQuota(t *testing.T, g *testGateway, k store.Key) budget.Quota {
	t.Helper()
	q, err := g.app().ledger.Quotas(context.Background(), "key", k.ID, time.Now())
	if err != nil || len(q) != 1 {
		t.Fatalf("quotas %v %v", q, err)
	}
	return q[0]
}

// waitReserved waits until key k has a reservation in flight (its call is
// with the provider).
func waitReserved(t *testing.T, g *testGateway, k store.Key) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); keyQuota(t, g, k).Reserved == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no reservation for the call")
		}
	}
}

// holdWriteLock takes the database file's write lock from another
// connection, as another process (a backup, a sqlite3 shell's write)
// would, until release (or the test's end).
func holdWriteLock(t *testing.T, db string) (release func()) {
	t.Helper()
	other, err := sql.Open("sqlite3", "file:"+db+"?_busy_timeout=5000&_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })
	tx, err := other.Begin()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tx.Rollback() }) //nolint:errcheck // released already, or at the end
	return func() {
		if err := tx.Rollback(); err != nil {
			t.Fatal(err)
		}
	}
}

// windowEdgeMargin is how close to a calendar window's reset setBudget
// will not start a test: its calls would straddle the reset (the spend
// restarts), and a refusal within quotaAfter of it is told as a rate
// limit, not a spent quota.
const windowEdgeMargin = 2 * time.Minute

// setBudget sets b as `caddy metis set-budget` would. For a calendar window
// (daily, weekly, monthly) that resets within windowEdgeMargin it first
// waits until the reset has passed.
func setBudget(t *testing.T, db string, b budget.Budget) {
	t.Helper()
	if _, resets, err := budget.WindowBounds(strings.ToLower(b.Window), b.TZ, time.Now()); err == nil && resets != nil {
		if d := time.Until(*resets); d < windowEdgeMargin {
			t.Logf("the %s window of %s %s resets in %v: waiting for it", b.Window, b.Scope, b.Subject, d.Round(time.Millisecond))
			time.Sleep(d + time.Second)
		}
	}
	l, err := budget.Open(db, budget.Options{}) // another process, as `caddy metis set-budget` is
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := l.Set(context.Background(), b); err != nil {
		t.Fatal(err)
	}
}

// waitApplies waits until the running gateway's ledger sees a budget.
func waitApplies(t *testing.T, g *testGateway, id budget.Identity) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !g.app().ledger.Applies(id) {
		if time.Now().After(deadline) {
			t.Fatal("budget not picked up by the running gateway within 5 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// 200 concurrent calls from several keys of one team against a team budget
// that allows 50: the spend never passes the limit, every refused call is
// refused before reaching the provider, and the ledger is exact.
func TestBudgetHardLimitUnderConcurrency(t *testing.T) {
	up := fakeupstream.New(t)
	g := startGateway(t, gatewayConfig(tempDB(t), up.URL, ""))
	var toks []string
	for i := range 4 {
		_, tok := g.issueKey(store.IssueParams{Name: fmt.Sprintf("eng-%d", i), User: fmt.Sprintf("dev%d", i), Team: "eng"})
		toks = append(toks, tok)
	}
	hard := 50 * capsCallCost // $0.09135
	setBudget(t, g.DB, budget.Budget{Scope: "team", Subject: "eng", Window: "monthly", TZ: "Europe/Berlin", Hard: hard})
	waitApplies(t, g, budget.Identity{Team: "eng"})
	for range 200 {
		rp := fakeupstream.FromFixture(fakeupstream.FixtureAnthropicNonStream, 1)
		rp.Delay = 20 * time.Millisecond // keep calls in flight together
		up.Enqueue("/v1/messages", rp)
	}

	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[int]int{}
	var refusals []string
	var advice []string // retry-after and x-should-retry of each refusal
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest(http.MethodPost, g.URL+"/v1/messages", strings.NewReader(capsBody))
			req.Header.Set("X-Api-Key", toks[i%len(toks)])
			req.Header.Set("Anthropic-Version", "2023-06-01")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			mu.Lock()
			codes[resp.StatusCode]++
			if resp.StatusCode == 429 {
				refusals = append(refusals, string(b))
				advice = append(advice, resp.Header.Get("Retry-After")+"/"+resp.Header.Get("X-Should-Retry"))
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	ok := codes[200]
	if ok+codes[429] != 200 || ok == 0 || codes[429] == 0 {
		t.Fatalf("status counts %v", codes)
	}
	if n := up.Count("/v1/messages"); n != ok {
		t.Errorf("provider served %d calls, clients got %d answers: refused calls reached it", n, ok)
	}
	if ok > 50 {
		t.Errorf("%d calls succeeded; the budget allows 50", ok)
	}
	if !strings.Contains(refusals[0], `"rate_limit_error"`) || !strings.Contains(refusals[0], `team \"eng\" monthly budget`) ||
		!strings.Contains(refusals[0], "resets at") {
		t.Errorf("refusal body %s", refusals[0])
	}
	// A call refused while the budget is held by calls in flight may fit
	// in seconds: the client is told to retry shortly, not to give up
	// until the month ends. One refused once the spend itself is out is
	// told not to retry.
	inFlights := 0
	for i, r := range refusals {
		inFlight := strings.Contains(r, "once the calls in flight finish")
		if inFlight {
			inFlights++
		}
		if want := "2/"; inFlight && advice[i] != want {
			t.Errorf("refusal for calls in flight advises %q (retry-after/x-should-retry), want %q: %s", advice[i], want, r)
		}
		if !inFlight && !strings.HasSuffix(advice[i], "/false") {
			t.Errorf("refusal of a spent-out budget advises %q, want x-should-retry false: %s", advice[i], r)
		}
	}
	// 200 calls at once against room for 50: the first refusals come while
	// reservations, not spend, fill the budget.
	if inFlights == 0 {
		t.Errorf("none of %d refusals was for calls in flight: %s", len(refusals), refusals[0])
	}
	calls := g.waitEvents(store.TypeCallCompleted, ok)
	spent := 0.0
	for _, c := range calls {
		spent += costOf(t, c)
	}
	if !near(spent, float64(ok)*capsCallCost) || spent > hard+1e-12 {
		t.Errorf("ledger %v for %d calls (limit %v)", spent, ok, hard)
	}
	// A settlement that could not be written within settleInline (200
	// calls at once under -race on a busy machine) is retried in the
	// background about a second later: waited for, not read at once.
	var q []budget.Quota
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		var err error
		q, err = g.app().ledger.Quotas(context.Background(), "team", "eng", time.Now())
		if err != nil || len(q) != 1 {
			t.Fatalf("quotas %v %v", q, err)
		}
		if q[0].Reserved == 0 || time.Now().After(deadline) {
			break
		}
	}
	if !near(q[0].Spent, spent) || q[0].Reserved != 0 {
		t.Errorf("budget spent %v reserved %v; ledger %v", q[0].Spent, q[0].Reserved, spent)
	}
	budgetRejections := g.refusals()["budget"]
	if budgetRejections != codes[429] {
		t.Errorf("%d budget rejections recorded for %d refusals", budgetRejections, codes[429])
	}
	// The team lead sees them: /analytics/cost counts the team's refusals.
	var cost struct {
		Calls            int64            `json:"calls"`
		Rejected         int64            `json:"rejected"`
		RejectedByReason map[string]int64 `json:"rejected_by_reason"`
	}
	_, b := get(t, g.Analytics+"/analytics/cost?window=1h&team=eng", "")
	if err := jsonUnmarshal(b, &cost); err != nil {
		t.Fatal(err)
	}
	if cost.Calls != int64(ok) || cost.Rejected != int64(codes[429]) || cost.RejectedByReason["budget"] != int64(codes[429]) {
		t.Errorf("/analytics/cost for team eng: %d calls, %d refused %v; want %d calls and %d refused for budget",
			cost.Calls, cost.Rejected, cost.RejectedByReason, ok, codes[429])
	}
}

// A soft limit lets calls through with a warning header and writes one
// budget.soft_exceeded event per window; a cancelled call releases its
// reservation; unbudgeted keys are untouched.
func TestBudgetSoftLimitAndRelease(t *testing.T) {
	up := fakeupstream.New(t)
	g := startGateway(t, gatewayConfig(tempDB(t), up.URL, ""))
	k, tok := g.issueKey(store.IssueParams{Name: "alice", User: "alice"})
	_, other := g.issueKey(store.IssueParams{Name: "bob", User: "bob"})
	setBudget(t, g.DB, budget.Budget{Scope: "key", Subject: k.ID, Window: "daily", Hard: 1, Soft: 1.5 * capsCallCost})
	waitApplies(t, g, budget.Identity{KeyID: k.ID})

	var warnings []string
	for range 4 {
		up.Enqueue("/v1/messages", fakeupstream.FromFixture(fakeupstream.FixtureAnthropicNonStream, 1))
		resp := g.post("/v1/messages", tok, capsBody, "Anthropic-Version", "2023-06-01")
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		warnings = append(warnings, resp.Header.Get("Metis-Budget-Warning"))
	}
	// Calls 1 and 2 start under the soft limit; the second crosses it.
	if warnings[0] != "" || warnings[1] != "" || warnings[2] == "" || warnings[3] == "" {
		t.Errorf("warnings %q", warnings)
	}
	if n := len(g.waitEvents(typeSoftExceeded, 1)); n != 1 {
		t.Errorf("%d budget.soft_exceeded events, want exactly 1", n)
	}
	resp := g.post("/v1/messages", other, capsBody, "Anthropic-Version", "2023-06-01")
	resp.Body.Close()
	if resp.Header.Get("Metis-Budget-Warning") != "" {
		t.Error("an unbudgeted key got a budget warning")
	}

	// A client that goes away mid-stream releases its reservation and is
	// charged what the provider billed so far.
	spentBefore := keyQuota(t, g, k).Spent
	rp := fakeupstream.FromFixture(fakeupstream.FixtureAnthropicStream, 0)
	rp.StallAfter = 3
	up.Enqueue("/v1/messages", rp)
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, g.URL+"/v1/messages",
		strings.NewReader(strings.Replace(capsBody, `"max_tokens":200`, `"max_tokens":200,"stream":true`, 1)))
	req.Header.Set("X-Api-Key", tok)
	sresp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	_, _ = sresp.Body.Read(buf)
	cancel()
	sresp.Body.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		q, err := g.app().ledger.Quotas(context.Background(), "key", k.ID, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if q[0].Reserved == 0 && len(g.events(store.TypeCallCompleted)) == 6 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("reservation not released: %+v", q[0])
		}
		time.Sleep(20 * time.Millisecond)
	}
	last := g.lastCall()
	if last["error_class"] != "CANCELLED" || last["input_tokens"] != float64(394) {
		t.Fatalf("cancelled call %v; want CANCELLED with message_start's 394 input tokens", last)
	}
	// Sonnet 3.7 at $3 / $15 per MTok: the 394 input tokens message_start
	// reported and the output estimated from the deltas relayed.
	out, _ := last["output_tokens"].(float64)
	want := 394*3e-6 + out*15e-6
	if charged := keyQuota(t, g, k).Spent - spentBefore; out < 1 || !e2eNear(e2eCost(t, last), want) || !e2eNear(charged, want) {
		t.Errorf("cancelled call cost %v, budget charged %v; want %v (394 in, %v out)", last["cost_usd"], charged, want, out)
	}
}

// Budgets changed while the gateway runs take effect: a hard limit already
// spent refuses the next call before it reaches the provider.
func TestBudgetChangedWhileRunning(t *testing.T) {
	up := fakeupstream.New(t)
	g := startGateway(t, gatewayConfig(tempDB(t), up.URL, ""))
	_, tok := g.issueKey(store.IssueParams{Name: "w", Workspace: "/srv/proj"})
	up.Enqueue("/v1/messages", fakeupstream.FromFixture(fakeupstream.FixtureAnthropicNonStream, 1))
	resp := g.post("/v1/messages", tok, capsBody)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	// The spend so far already counts against a budget set afterwards (set
	// once the call's trace is written, which set-budget reads):
	// $0.001827 spent + the next call's worst case $0.003192 > $0.0035,
	// which an empty week would fit.
	g.sync()
	setBudget(t, g.DB, budget.Budget{Scope: "workspace", Subject: "/srv/proj", Window: "weekly", Hard: 0.0035})
	waitApplies(t, g, budget.Identity{Workspace: "/srv/proj"})
	before := up.Count("/v1/messages")
	resp = g.post("/v1/messages", tok, capsBody)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" || resp.Header.Get("X-Should-Retry") != "false" ||
		!strings.Contains(string(b), "weekly budget") || strings.Contains(string(b), "in flight finish") {
		t.Fatalf("over budget: %d %v %s", resp.StatusCode, resp.Header, b)
	}
	if up.Count("/v1/messages") != before {
		t.Error("a refused call reached the provider")
	}
}

// The quota fields of the analytics answer each budget's state.
func TestBudgetQuotaInAnalytics(t *testing.T) {
	up := fakeupstream.New(t)
	g := startGateway(t, gatewayConfig(tempDB(t), up.URL, ""))
	k, tok := g.issueKey(store.IssueParams{Name: "alice-laptop", User: "alice", Team: "eng"})
	setBudget(t, g.DB, budget.Budget{Scope: "user", Subject: "alice", Window: "monthly", Hard: 10})                  // ok
	setBudget(t, g.DB, budget.Budget{Scope: "key", Subject: k.ID, Window: "daily", Hard: 1, Soft: capsCallCost / 2}) // soft
	waitApplies(t, g, budget.Identity{KeyID: k.ID})
	up.Enqueue("/v1/messages", fakeupstream.FromFixture(fakeupstream.FixtureAnthropicNonStream, 1))
	resp := g.post("/v1/messages", tok, capsBody)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	g.waitEvents(store.TypeCallCompleted, 1)
	// A team budget set below what the team already spent this week: hard.
	setBudget(t, g.DB, budget.Budget{Scope: "team", Subject: "eng", Window: "weekly", Hard: capsCallCost / 2})
	var byUser struct {
		Users []struct {
			User  string
			Quota *budget.Quota
		}
	}
	var byTeam struct {
		Teams []struct {
			Team  string
			Quota *budget.Quota
		}
	}
	var byKey struct {
		Keys []struct {
			GatewayKeyID string `json:"gateway_key_id"`
			Quota        *budget.Quota
		}
	}
	var me struct {
		Budgets []budget.Quota
	}
	for path, v := range map[string]any{"/analytics/by_user": &byUser, "/analytics/by_team": &byTeam, "/analytics/by_key": &byKey} {
		_, b := get(t, g.Analytics+path, "")
		if err := jsonUnmarshal(b, v); err != nil {
			t.Fatalf("%s: %v %s", path, err, b)
		}
	}
	_, b := get(t, g.Analytics+"/analytics/me", tok)
	if err := jsonUnmarshal(b, &me); err != nil {
		t.Fatal(err)
	}
	check := func(what string, q *budget.Quota, state, window string) {
		t.Helper()
		if q == nil {
			t.Fatalf("%s: no quota", what)
		}
		if q.State != state || q.Window != window || !near(q.Spent, capsCallCost) || q.Reserved != 0 {
			t.Errorf("%s quota %+v, want state %s window %s spent %v", what, *q, state, window, capsCallCost)
		}
	}
	check("user alice", byUser.Users[0].Quota, "ok", "monthly")
	check("key", byKey.Keys[0].Quota, "soft", "daily")
	check("team eng", byTeam.Teams[0].Quota, "hard", "weekly")
	if q := byKey.Keys[0].Quota; q.ResetsAt == nil || q.Soft == nil {
		t.Errorf("key quota lacks resets_at or soft: %+v", q)
	}
	if len(me.Budgets) != 3 {
		t.Errorf("/analytics/me shows %d budgets, want the 3 covering the key", len(me.Budgets))
	}
}

// A team or user with a budget and no accepted calls in the window (a new
// team, or one its hard cap blocks) is still listed with its quota, at $0;
// a filter on another team or user leaves it out.
func TestBudgetedIdentityWithoutCallsInAnalytics(t *testing.T) {
	up := fakeupstream.New(t)
	g := startGateway(t, gatewayConfig(tempDB(t), up.URL, ""))
	_, tok := g.issueKey(store.IssueParams{Name: "alice-laptop", User: "alice", Team: "eng"})
	setBudget(t, g.DB, budget.Budget{Scope: "team", Subject: "ops", Window: "monthly", Hard: 5})
	setBudget(t, g.DB, budget.Budget{Scope: "user", Subject: "carol", Window: "72h", Hard: 0.005})
	up.Enqueue("/v1/messages", fakeupstream.FromFixture(fakeupstream.FixtureAnthropicNonStream, 1))
	resp := g.post("/v1/messages", tok, capsBody)
	resp.Body.Close()
	g.waitEvents(store.TypeCallCompleted, 1)
	type row struct {
		Team, User string
		CostUSD    *float64 `json:"cost_usd"`
		Calls      int64
		Quota      *budget.Quota
	}
	list := func(path string) map[string]row {
		t.Helper()
		var ans struct{ Teams, Users []row }
		_, b := get(t, g.Analytics+path, "")
		if err := jsonUnmarshal(b, &ans); err != nil {
			t.Fatalf("%s: %v %s", path, err, b)
		}
		out := map[string]row{}
		for _, r := range append(ans.Teams, ans.Users...) {
			out[r.Team+r.User] = r
		}
		return out
	}
	teams := list("/analytics/by_team?window=7d")
	if ops, ok := teams["ops"]; !ok || ops.Calls != 0 || ops.CostUSD == nil || *ops.CostUSD != 0 || ops.Quota == nil || ops.Quota.Hard != 5 {
		t.Errorf("by_team: ops %+v (listed %v), want 0 calls at $0 with its $5 quota", ops, ok)
	}
	if eng := teams["eng"]; eng.Calls != 1 {
		t.Errorf("by_team: eng %+v, want its call", eng)
	}
	users := list("/analytics/by_user?window=7d")
	if carol, ok := users["carol"]; !ok || carol.Calls != 0 || carol.Quota == nil || carol.Quota.Window != "72h" {
		t.Errorf("by_user: carol %+v (listed %v), want 0 calls with her 72h quota", carol, ok)
	}
	if _, ok := list("/analytics/by_team?window=7d&team=eng")["ops"]; ok {
		t.Error("by_team?team=eng lists ops")
	}
	if got := list("/analytics/by_team?window=7d&team=ops"); len(got) != 1 || got["ops"].Quota == nil {
		t.Errorf("by_team?team=ops: %+v, want ops alone with its quota", got)
	}
	if _, ok := list("/analytics/by_user?window=7d&team=eng")["carol"]; ok {
		t.Error("by_user?team=eng lists carol, whose team is unknown without calls")
	}
}

// A model without a price has no worst case to reserve and no cost to
// charge: a budgeted key may not use it (its spend would pass any hard
// limit unseen), while a key without a budget may.
func TestBudgetedKeyRefusesUnpricedModel(t *testing.T) {
	up := fakeupstream.New(t)
	g := startGateway(t, gatewayConfig(tempDB(t), up.URL, ""))
	k, tok := g.issueKey(store.IssueParams{Name: "capped"})
	_, free := g.issueKey(store.IssueParams{Name: "uncapped"})
	capKey(t, g, k, 5)
	const unpriced = `{"model":"anthropic:claude-unknown-9","max_tokens":100,"messages":[{"role":"user","content":"Hi."}]}`
	for _, c := range []struct {
		path, body, want string
	}{
		{"/v1/messages", unpriced, `"permission_error"`},
		{"/v1/chat/completions", `{"model":"openai:my-local-model","messages":[{"role":"user","content":"Hi."}]}`, `"unpriced_model"`},
	} {
		resp := g.post(c.path, tok, c.body, e2eAnthropicHdr...)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(b), c.want) || !strings.Contains(string(b), "no price") {
			t.Errorf("%s on a budgeted key: %d %s, want 403 %s naming the missing price", c.path, resp.StatusCode, b, c.want)
		}
	}
	if n := len(up.Requests()); n != 0 {
		t.Errorf("%d refused calls reached the provider", n)
	}
	up.Enqueue("/v1/messages", fakeupstream.AnthropicMessage("claude-unknown-9", 10, "end_turn", fakeupstream.TextBlock("hi")))
	resp := g.post("/v1/messages", free, unpriced, e2eAnthropicHdr...)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("unpriced model on a key without a budget: %d %s, want 200", resp.StatusCode, b)
	}
}

// A call whose worst case is more than the whole hard limit gets a 429
// (a 400 in OpenAI's shape) that says no wait helps: no retry-after, x-should-retry false, and a
// message pointing at max_tokens. A smaller call under the same budget
// goes through.
func TestBudgetSmallerThanTheCall(t *testing.T) {
	up := fakeupstream.New(t)
	g := startGateway(t, gatewayConfig(tempDB(t), up.URL, ""))
	k, tok := g.issueKey(store.IssueParams{Name: "tiny-budget"})
	capKey(t, g, k, 0.01)
	// sonnet, max_tokens 64000: 64000 × $15/MTok = $0.96 of output alone.
	big := `{"model":"sonnet","max_tokens":64000,"messages":[{"role":"user","content":"Hi."}]}`
	resp := g.post("/v1/messages", tok, big, e2eAnthropicHdr...)
	body := e2eJSON(t, e2eRead(t, resp))
	msg := fmt.Sprint(e2ePath(body, "error", "message"))
	if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(msg, "is smaller than this call's worst-case cost") ||
		!strings.Contains(msg, "max_tokens") || strings.Contains(msg, "resets at") {
		t.Errorf("%d %q: want a 429 saying the call can never fit", resp.StatusCode, msg)
	}
	if ra := resp.Header.Get("Retry-After"); ra != "" || resp.Header.Get("X-Should-Retry") != "false" {
		t.Errorf("retry-after %q, x-should-retry %q: want none and false", ra, resp.Header.Get("X-Should-Retry"))
	}
	// An OpenAI client gets a 400, as for a max_tokens over the model's
	// limit: Codex CLI shows its message, where on a 429
	// insufficient_quota it shows only its own "Quota exceeded" (29O).
	resp = g.post("/v1/chat/completions", tok, `{"model":"sonnet","max_tokens":64000,"messages":[{"role":"user","content":"Hi."}]}`)
	body = e2eJSON(t, e2eRead(t, resp))
	if msg := fmt.Sprint(e2ePath(body, "error", "message")); resp.StatusCode != http.StatusBadRequest ||
		e2ePath(body, "error", "type") != "invalid_request_error" || e2ePath(body, "error", "code") != "budget_too_small" ||
		!strings.Contains(msg, "is smaller than this call's worst-case cost") || resp.Header.Get("X-Should-Retry") != "false" {
		t.Errorf("OpenAI shape: %d %v (x-should-retry %q): want a 400 invalid_request_error budget_too_small saying the call can never fit",
			resp.StatusCode, body, resp.Header.Get("X-Should-Retry"))
	}
	up.Enqueue("/v1/messages", fakeupstream.FromFixture(fakeupstream.FixtureAnthropicNonStream, 1))
	resp = g.post("/v1/messages", tok, capsBody, e2eAnthropicHdr...)
	if b := e2eRead(t, resp); resp.StatusCode != 200 {
		t.Errorf("a call that fits: %d %s", resp.StatusCode, b)
	}
	if n := len(up.Requests()); n != 1 {
		t.Errorf("%d calls reached the provider, want 1", n)
	}
}

// A budget refusal of a request without a model records the routing slot
// that chose it, as the model refusals do: the developer did not name it.
func TestBudgetRefusalOfRoutedModelRecordsSlot(t *testing.T) {
	up := fakeupstream.New(t)
	g := startGateway(t, gatewayConfig(tempDB(t), up.URL, "default_model haiku"))
	k, tok := g.issueKey(store.IssueParams{Name: "routed", Workspace: t.TempDir()})
	capKey(t, g, k, 1e-6)
	resp := g.post("/v1/messages", tok, `{"max_tokens":64,"messages":[{"role":"user","content":"hi"}]}`, "Anthropic-Version", "2023-06-01")
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	rej := g.events(store.TypeRequestRejected)
	if resp.StatusCode != 429 || len(rej) != 1 || rej[0]["reason"] != "budget" || rej[0]["route_slot"] != "default" {
		t.Errorf("routed call over budget: %d, recorded %v; want 429 and a budget refusal with route_slot default", resp.StatusCode, rej)
	}
}

// TestBudgetSettledOnceTheLedgerRecovers: a call whose settlement meets an
// unwritable ledger (here another process holds the database's write lock
// past the busy timeout; a full disk fails alike) is still charged to its
// budget once the ledger can be written, instead of leaving its
// reservation to expire and its spend uncharged.
func TestBudgetSettledOnceTheLedgerRecovers(t *testing.T) {
	up := fakeupstream.New(t)
	g := startGateway(t, gatewayConfig(tempDB(t), up.URL, ""))
	k, tok := g.issueKey(store.IssueParams{Name: "capped"})
	capKey(t, g, k, 5)
	reply := fakeupstream.AnthropicMessage("claude-haiku-4-5", 400, "end_turn", fakeupstream.TextBlock("Sunny."))
	reply.Delay = 300 * time.Millisecond
	up.Enqueue("/v1/messages", reply)
	done := make(chan int, 1)
	go func() {
		resp := g.post("/v1/messages", tok, `{"model":"haiku","max_tokens":100,"messages":[{"role":"user","content":"Weather?"}]}`, e2eAnthropicHdr...)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	waitReserved(t, g, k)
	release := holdWriteLock(t, g.DB) // held past the ledger's 5 s busy timeout
	if st := <-done; st != 200 {
		t.Fatalf("status %d", st)
	}
	time.Sleep(6 * time.Second)
	if q := keyQuota(t, g, k); q.Reserved == 0 {
		t.Fatalf("the settlement went through a locked ledger: %+v", q)
	}
	release()
	// Haiku 4.5: 400 × $1 + 2 × $5 per MTok (len("Sunny.")/4 + 1 = 2) = 0.00041.
	deadline := time.Now().Add(20 * time.Second)
	for q := keyQuota(t, g, k); q.Reserved != 0 || !near(q.Spent, 0.00041); q = keyQuota(t, g, k) {
		if time.Now().After(deadline) {
			t.Fatalf("after the lock went: spent %v reserved %v, want 0.00041 spent and nothing reserved", q.Spent, q.Reserved)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A document the provider fetches by URL is billed by its pages, though
// the body names it in a few bytes: five such calls at once under a $0.50
// hard limit all went through and spent $2.26 (audit 11M). Each now
// reserves the model's whole context window (200k tokens: $0.6015 with
// the output), so under $1 only what fits goes through.
func TestBudgetHoldsForDocumentsByURL(t *testing.T) {
	up := fakeupstream.New(t)
	g := startGateway(t, gatewayConfig(tempDB(t), up.URL, ""))
	k, tok := g.issueKey(store.IssueParams{Name: "pdf", User: "pdf"})
	const hard = 1.00
	setBudget(t, g.DB, budget.Budget{Scope: "key", Subject: k.ID, Window: "daily", Hard: hard})
	waitApplies(t, g, budget.Identity{KeyID: k.ID})
	body := `{"model":"sonnet","max_tokens":100,"messages":[{"role":"user","content":[` +
		`{"type":"document","source":{"type":"url","url":"https://example.com/annual-report-100-pages.pdf"}},` +
		`{"type":"text","text":"Summarise this report."}]}]}`
	// A 100-page PDF: 150,000 input tokens. Sonnet 3.7 at $3 / $15 per
	// MTok: 150,000 × 3e-6 + 100 × 15e-6 = $0.4515 a call.
	const perCall = 0.4515
	answer := `{"id":"msg_01","type":"message","role":"assistant","model":"claude-3-7-sonnet-20250219",` +
		`"content":[{"type":"text","text":"Summary."}],"stop_reason":"end_turn","stop_sequence":null,` +
		`"usage":{"input_tokens":150000,"output_tokens":100}}`
	const calls = 5
	for range calls {
		up.Enqueue("/v1/messages", fakeupstream.Reply{Body: answer, Delay: 200 * time.Millisecond})
	}
	codes := g.postConcurrently(calls, "/v1/messages", tok, body, "Anthropic-Version", "2023-06-01")
	g.waitEvents(store.TypeCallCompleted, codes[200])
	q := keyQuota(t, g, k)
	if codes[200] < 1 || codes[200]+codes[429] != calls || q.Spent > hard+perCall || !e2eNear(q.Spent, float64(codes[200])*perCall) {
		t.Errorf("statuses %v, $%v spent; want some refused with 429 and at most $%v + one call's $%v", codes, q.Spent, hard, perCall)
	}
}
