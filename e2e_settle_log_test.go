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
// lines in the 2 minutes of review 27S's held reader. Now the first of
// each is told, and the rest counted in a line at the end of each 10 s in
// which more came, so every settlement is in some line's count (review
// 27R2: a first version's counts left out all but the first of a burst),
// and every call is still charged.
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
	// The count of those after the first comes at the end of its 10 s.
	time.Sleep(11 * time.Second)
	lines, _ := e2eLogLines(t, logPath)
	for _, c := range []struct{ prefix, what string }{
		{"budget settlements deferred", "deferred their settlements"},
		{"budget settlements written once", "were settled late"},
	} {
		var got []map[string]any
		var sum float64
		for _, l := range lines {
			if msg, _ := l["msg"].(string); strings.HasPrefix(msg, c.prefix) {
				got = append(got, l)
				n, _ := l["settlements"].(float64)
				sum += n
			}
		}
		if len(got) == 0 || len(got) > 2 || sum != calls || got[0]["settlements"] != float64(1) || got[0]["turn_id"] == nil {
			t.Errorf("%d calls %s: %d lines %v; want the first told with its turn, then one line counting the rest (%d in all)",
				calls, c.what, len(got), got, calls)
		}
	}
}
