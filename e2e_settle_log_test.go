package metis

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/metisgateway/metis/internal/fakeupstream"
)

// settleCalls is how many budgeted calls deferSettlements makes.
const settleCalls = 10

// deferSettlements makes settleCalls budgeted calls whose settlements meet
// a ledger locked by another process (an open sqlite3 shell, a backup), so
// that each is deferred to the background, then lets the lock go and
// waits until every call is charged. It returns the gateway's log file.
//
// The provider answers only once the lock is held: with a fixed 300 ms
// delay instead, the first calls were answered, and settled, before the
// last had been reserved and sent on a loaded machine (4 of the 10
// deferred), and the log's counts were short.
func deferSettlements(t *testing.T) (g *testGateway, logPath string) {
	t.Helper()
	up := fakeupstream.New(t)
	gate := make(chan struct{})
	var openGate sync.Once
	t.Cleanup(func() { openGate.Do(func() { close(gate) }) })
	var arrived atomic.Int64
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived.Add(1)
		select {
		case <-gate:
		case <-r.Context().Done():
			return
		}
		up.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	// e2eStartLogged uses only the provider's URL.
	g, logPath, _ = e2eStartLogged(t, &fakeupstream.Server{URL: front.URL}, "INFO", "")
	k, tok := e2eKey(g, "capped")
	capKey(t, g, k, 5)
	for range settleCalls {
		up.Enqueue("/v1/messages", fakeupstream.AnthropicMessage("claude-haiku-4-5", 400, "end_turn", fakeupstream.TextBlock("Sunny.")))
	}
	var wg sync.WaitGroup
	for range settleCalls {
		wg.Go(func() {
			resp := g.post("/v1/messages", tok, `{"model":"haiku","max_tokens":100,"messages":[{"role":"user","content":"Weather?"}]}`, e2eAnthropicHdr...)
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		})
	}
	// Each call is reserved before it goes to the provider, which holds
	// it until the ledger is locked.
	for deadline := time.Now().Add(10 * time.Second); arrived.Load() < settleCalls; time.Sleep(2 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d calls reached the provider", arrived.Load(), settleCalls)
		}
	}
	release := holdWriteLock(t, g.DB)
	openGate.Do(func() { close(gate) })
	wg.Wait()
	release()
	// Haiku 4.5: 400 × $1 + 2 × $5 per MTok = $0.00041 a call.
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if q := keyQuota(t, g, k); q.Reserved == 0 && near(q.Spent, settleCalls*0.00041) {
			return g, logPath
		}
		if time.Now().After(deadline) {
			t.Fatalf("not all settled: %+v", keyQuota(t, g, k))
		}
	}
}

// settlementLines returns the log lines whose message starts with prefix
// and the sum of their settlements counts.
func settlementLines(t *testing.T, logPath, prefix string) (got []map[string]any, sum float64) {
	t.Helper()
	lines, _ := e2eLogLines(t, logPath)
	for _, l := range lines {
		if msg, _ := l["msg"].(string); strings.HasPrefix(msg, prefix) {
			got = append(got, l)
			n, _ := l["settlements"].(float64)
			sum += n
		}
	}
	return got, sum
}

var settlementKinds = []struct{ prefix, what string }{
	{"budget settlements deferred", "deferred their settlements"},
	{"budget settlements written once", "were settled late"},
}

// TestDeferredSettlementsLoggedOncePerPeriod: while another process holds
// the database's write lock, every budgeted call's settlement is deferred
// to the background, and each wrote an ERROR line, and later an INFO line
// when it went through: 431 error lines in the 2 minutes of review 27S's
// held reader. Now the first of each is told, and the rest counted in a
// line at the end of each 10 s in which more came, so every settlement is
// in some line's count (review 27R2: a first version's counts left out
// all but the first of a burst), and every call is still charged.
func TestDeferredSettlementsLoggedOncePerPeriod(t *testing.T) {
	_, logPath := deferSettlements(t)
	// The count of those after the first comes at the end of its 10 s.
	time.Sleep(11 * time.Second)
	for _, c := range settlementKinds {
		got, sum := settlementLines(t, logPath, c.prefix)
		if len(got) == 0 || len(got) > 2 || sum != settleCalls || got[0]["settlements"] != float64(1) || got[0]["turn_id"] == nil {
			t.Errorf("%d calls %s: %d lines %v; want the first told with its turn, then one line counting the rest (%d in all)",
				settleCalls, c.what, len(got), got, settleCalls)
		}
	}
}

// TestSettlementCountsToldAtStop: the count of a period still running when
// the gateway stops is told at the stop, not by a timer that a process
// exiting after `caddy stop` never reaches (review 27R3: the log counted 1
// of the 10 of each kind).
func TestSettlementCountsToldAtStop(t *testing.T) {
	_, logPath := deferSettlements(t)
	if err := caddy.Stop(); err != nil {
		t.Fatal(err)
	}
	for _, c := range settlementKinds {
		if got, sum := settlementLines(t, logPath, c.prefix); sum != settleCalls {
			t.Errorf("%d calls %s, then the gateway stopped: its log counts %v of them (%d lines %v)", settleCalls, c.what, sum, len(got), got)
		}
	}
}
