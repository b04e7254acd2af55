package analytics

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/metisgateway/metis/store"
)

// testNow is the injected clock: mid-hour, mid-day, with sub-second digits.
var testNow = time.Date(2026, 3, 15, 13, 37, 21, 123456000, time.UTC)

var testModels = []struct{ provider, model string }{
	{"anthropic", "claude-haiku-4-5"},
	{"anthropic", "claude-sonnet-4-5"},
	{"openai", "gpt-5-mini"},
	{"local", "llama-3.1-8b"},
}

// seedKey is a gateway key of the fixture and its token.
type seedKey struct {
	id, token, name, user, team, workspace string
}

// seedCall is one seeded llm.call_completed, kept for computing the
// expected answers independently of the handler's SQL.
type seedCall struct {
	at time.Time
	c  store.Call
}

func (s seedCall) cost() float64 {
	if s.c.CostUSD == nil {
		return 0
	}
	return *s.c.CostUSD
}

func (s seedCall) isError() bool     { return s.c.Status >= 400 || s.c.ErrorClass != "" }
func (s seedCall) isEstimated() bool { return s.c.UsageSource == "estimated" }

type fixture struct {
	st    *store.Store
	h     *Handler
	keys  []seedKey
	calls []seedCall
}

// newFixture opens a store in a temporary directory, issues keys (some
// untagged) and seeds n randomised calls through store.Enqueue, the writer
// path that maintains calls, the rollups and sessions.
func newFixture(t testing.TB, seed uint64, n int) *fixture {
	t.Helper()
	return newFixtureFuture(t, seed, n, true)
}

// newFixtureFuture is newFixture where future controls whether some calls
// are stamped at or after testNow.
func newFixtureFuture(t testing.TB, seed uint64, n int, future bool) *fixture {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(filepath.Join(t.TempDir(), "metis.db"), store.Options{})
	if err != nil {
		t.Fatalf("opening store: %v", err)
	}
	t.Cleanup(func() { _ = st.Close(context.Background()) })
	f := &fixture{st: st}
	tags := []struct{ user, team, ws string }{
		{"alice", "eng", "/src/api"}, {"bob", "eng", "/src/web"}, {"carol", "sales", "/src/crm"},
		{"dave", "", "/src/api"}, {"", "eng", "/src/ci"}, {"", "", "/tmp/scratch"}, {"alice", "eng", "/src/web"},
	}
	for i, tg := range tags {
		k, tok, err := st.IssueKey(ctx, store.IssueParams{Name: fmt.Sprintf("key-%d", i), Workspace: tg.ws,
			User: tg.user, Team: tg.team})
		if err != nil {
			t.Fatalf("issuing key: %v", err)
		}
		f.keys = append(f.keys, seedKey{id: k.ID, token: tok, name: k.Name, user: tg.user, team: tg.team,
			workspace: tg.ws})
	}
	// A key deleted since (absent from gateway_keys) still has calls.
	ghost := seedKey{id: "gk_GHOST", name: "ghost-key", user: "erin", team: "sales", workspace: "/src/old"}
	all := append(append([]seedKey(nil), f.keys...), ghost)

	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	type session struct {
		id  string
		key seedKey
	}
	var sessions []session
	for i := range 12 {
		sessions = append(sessions, session{fmt.Sprintf("sess-%02d", i), all[rng.IntN(len(all))]})
	}
	randTime := func() time.Time {
		switch rng.IntN(10) {
		case 0: // exactly on an hour or day boundary near now
			b := testNow.Truncate(time.Hour).Add(-time.Duration(rng.IntN(72)) * time.Hour)
			return b
		case 1: // the last two hours, minute-level detail
			return testNow.Add(-time.Duration(rng.Int64N(int64(2 * time.Hour))))
		case 2: // at or after now: never counted
			if future {
				return testNow.Add(time.Duration(rng.Int64N(int64(3 * time.Hour))))
			}
			return testNow.Add(-time.Duration(rng.Int64N(int64(10 * time.Minute))))
		case 3, 4, 5: // the last two days
			return testNow.Add(-time.Duration(rng.Int64N(int64(48 * time.Hour))))
		}
		return testNow.Add(-time.Duration(rng.Int64N(int64(45 * 24 * time.Hour))))
	}
	var evs []store.Event
	for i := range n {
		at := randTime().Truncate(time.Microsecond)
		if i == 0 && future {
			at = testNow // exactly now: outside [from, now)
		}
		key := all[rng.IntN(len(all))]
		sessID := ""
		if rng.IntN(10) < 6 {
			s := sessions[rng.IntN(len(sessions))]
			sessID, key = s.id, s.key
		}
		m := testModels[rng.IntN(len(testModels))]
		c := store.Call{
			TurnID: fmt.Sprintf("turn-%05d", i), GatewayKeyID: key.id, KeyName: key.name, User: key.user,
			Team: key.team, Workspace: key.workspace, SessionID: sessID, Provider: m.provider,
			RequestedModel: m.model, Model: m.model, Stream: rng.IntN(2) == 0, Status: 200, Attempts: 1,
			InputTokens: rng.Int64N(5000), CacheReadInputTokens: rng.Int64N(20000),
			CacheCreationInputTokens: rng.Int64N(3000), OutputTokens: rng.Int64N(2000),
			ReasoningTokens: rng.Int64N(500), UsageSource: "provider", LatencyMS: 50 + rng.Int64N(5000),
		}
		c.InboundShape = "anthropic"
		if rng.IntN(3) == 0 {
			c.InboundShape = "openai"
		}
		switch rng.IntN(12) {
		case 0:
			c.Status, c.ErrorClass = 429, "RATE_LIMITED"
		case 1:
			c.ErrorClass = "CANCELLED"
		case 2:
			c.Status = 500
		}
		if m.provider != "local" && rng.IntN(10) != 0 {
			cost := float64(1+rng.IntN(100000)) * 1e-7
			c.CostUSD, c.Priced = &cost, true
			c.CacheSavingsUSD = float64(rng.IntN(50000)) * 1e-8
		}
		if rng.IntN(8) == 0 {
			c.UsageSource = "estimated"
		}
		if c.Stream {
			ttft := 10 + rng.Int64N(900)
			c.TTFTMS = &ttft
		}
		cc := c
		f.calls = append(f.calls, seedCall{at: at, c: cc})
		evs = append(evs, store.Event{Type: store.TypeCallCompleted, Time: at, Payload: &cc})
		if len(evs) == 300 || i == n-1 {
			if !st.Enqueue(evs...) {
				t.Fatal("store queue full")
			}
			evs = nil
		}
	}
	if err := st.Sync(ctx); err != nil {
		t.Fatalf("syncing store: %v", err)
	}
	f.h = New(st.ReadDB(), Options{
		Now: func() time.Time { return testNow },
		Authenticate: func(tok string) (Identity, error) {
			k, err := st.Authenticate(tok)
			if err != nil {
				return Identity{}, err
			}
			return Identity{KeyID: k.ID, Name: k.Name, User: k.User, Team: k.Team, Workspace: k.Workspace}, nil
		},
	})
	return f
}
