package metis

import (
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/metisgateway/metis/internal/fakeupstream"
)

// TestDeferredSettlementsLoggedOncePerPeriod: while another process holds
// the database's write lock (an open sqlite3 shell, a backup), every
// budgeted call's settlement is deferred to the background, and each wrote
// an ERROR line, and later an INFO line when it went through: 431 error
// lines in the 2 minutes of review 27S's held reader. Now one line of each
// per 10 s stands for them all, with their count, and every call is still
// charged.
func TestDeferredSettlementsLoggedOncePerPeriod(t *testing.T) {
	up := fakeupstream.New(t)
	g, logPath, _ := e2eStartLogged(t, up, "INFO", "")
	k, tok := e2eKey(g, "capped")
	capKey(t, g, k, 5)
	const calls = 10
	for range calls {
		r := fakeupstream.AnthropicMessage("claude-haiku-4-5", 400, "end_turn", fakeupstream.TextBlock("Sunny."))
		r.Delay = 300 * time.Millisecond
		up.Enqueue("/v1/messages", r)
	}
	var wg sync.WaitGroup
	for range calls {
		wg.Go(func() {
			resp := g.post("/v1/messages", tok, `{"model":"haiku","max_tokens":100,"messages":[{"role":"user","content":"Weather?"}]}`, e2eAnthropicHdr...)
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		})
	}
	// Each call is reserved before it goes to the provider, which holds
	// it 300 ms.
	for deadline := time.Now().Add(5 * time.Second); len(up.Requests()) < calls; time.Sleep(2 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d calls reached the provider", len(up.Requests()), calls)
		}
	}
	release := holdWriteLock(t, g.DB)
	wg.Wait()
	release()
	// Haiku 4.5: 400 × $1 + 2 × $5 per MTok = $0.00041 a call.
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if q := keyQuota(t, g, k); q.Reserved == 0 && near(q.Spent, calls*0.00041) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not all settled: %+v", keyQuota(t, g, k))
		}
	}
	lines, _ := e2eLogLines(t, logPath)
	var deferred, late []map[string]any
	for _, l := range lines {
		switch msg, _ := l["msg"].(string); {
		case strings.HasPrefix(msg, "settling a budget reservation failed"):
			deferred = append(deferred, l)
		case strings.HasPrefix(msg, "budget reservation settled once the ledger could be written"):
			late = append(late, l)
		}
	}
	if len(deferred) != 1 || deferred[0]["deferred_since_last_line"] != float64(1) {
		t.Errorf("%d calls deferred their settlements: %d error lines %v; want one, the first", calls, len(deferred), deferred)
	}
	if len(late) != 1 {
		t.Errorf("%d settlements went through late: %d lines %v; want one", calls, len(late), late)
	}
}
