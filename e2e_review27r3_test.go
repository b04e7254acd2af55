package metis

import (
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/metisgateway/metis/internal/fakeupstream"
)

// Review 27R3 of 6b28b64. burstLog tells the first deferred (and the first
// late) settlement of a burst at once and counts the rest in a line at the
// end of the period, from a time.AfterFunc. Nothing tells the pending count
// when the gateway stops: a `caddy stop` (or a reload that drops the App
// holding the burstLog, then a stop) within 10 s of a ledger outage leaves
// all but the first settlements of the last period in no line at all — the
// process exits before the timer fires. Here 10 calls' settlements are
// deferred by a held write lock and then written late; the gateway is then
// stopped, as an operator would after the backup that held the lock. The
// log the process leaves counts 1 of the 10 of each kind.
func TestReview27R3SettlementCountsToldAtStop(t *testing.T) {
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
	for deadline := time.Now().Add(5 * time.Second); len(up.Requests()) < calls; time.Sleep(2 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d calls reached the provider", len(up.Requests()), calls)
		}
	}
	release := holdWriteLock(t, g.DB)
	wg.Wait()
	release()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if q := keyQuota(t, g, k); q.Reserved == 0 && near(q.Spent, calls*0.00041) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not all settled: %+v", keyQuota(t, g, k))
		}
	}
	// All charged; the operator stops the gateway (the process then exits:
	// no timer of it fires after this).
	if err := caddy.Stop(); err != nil {
		t.Fatal(err)
	}
	lines, _ := e2eLogLines(t, logPath)
	for _, c := range []struct{ prefix, what string }{
		{"budget settlements deferred", "deferred"},
		{"budget settlements written once", "written late"},
	} {
		var sum float64
		var got []map[string]any
		for _, l := range lines {
			if msg, _ := l["msg"].(string); strings.HasPrefix(msg, c.prefix) {
				got = append(got, l)
				n, _ := l["settlements"].(float64)
				sum += n
			}
		}
		if sum != calls {
			t.Errorf("%d settlements %s, then the gateway stopped: its log counts %v of them (%d lines %v); the stop should tell the pending count",
				calls, c.what, sum, len(got), got)
		}
	}
	// For the record: in this test process (which does not exit) the timer
	// still fires after the stop; does its line reach the log?
	time.Sleep(11 * time.Second)
	later, _ := e2eLogLines(t, logPath)
	var sum float64
	for _, l := range later {
		if msg, _ := l["msg"].(string); strings.HasPrefix(msg, "budget settlements written once") {
			n, _ := l["settlements"].(float64)
			sum += n
		}
	}
	t.Logf("11 s after the stop, in-process: late settlements counted %v", sum)
}
