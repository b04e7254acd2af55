package metis

import (
	"bytes"
	"database/sql"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/metisgateway/metis/internal/fakeupstream"
	"github.com/metisgateway/metis/store"
)

// TestSettlementDoesNotHoldTheAnswer: with the ledger locked by another
// process when a budgeted call finishes, the client's answer (a 300 ms
// provider reply) was held until the first settlement attempt gave up at
// SQLite's 5 s busy timeout, streamed or not (audit 23A: 6.0 s for a 1 s
// reply; a stream's message_stop came on time, its end 5 s later). The
// first attempt now waits at most settleInline, and the call is charged
// by the background retry once the lock is let go.
func TestSettlementDoesNotHoldTheAnswer(t *testing.T) {
	for _, stream := range []bool{false, true} {
		name := "message"
		if stream {
			name = "stream"
		}
		t.Run(name, func(t *testing.T) {
			up := fakeupstream.New(t)
			g := startGateway(t, gatewayConfig(tempDB(t), up.URL, ""))
			k, tok := g.issueKey(store.IssueParams{Name: "capped"})
			capKey(t, g, k, 5)
			reply := fakeupstream.AnthropicMessage("claude-haiku-4-5", 400, "end_turn", fakeupstream.TextBlock("Sunny."))
			body := `{"model":"haiku","max_tokens":100,"messages":[{"role":"user","content":"Weather?"}]}`
			if stream {
				reply = fakeupstream.AnthropicTextStream("claude-haiku-4-5", "Sunny.")
				body = `{"model":"haiku","stream":true,"max_tokens":100,"messages":[{"role":"user","content":"Weather?"}]}`
			}
			reply.Delay = 300 * time.Millisecond
			up.Enqueue("/v1/messages", reply)
			type result struct {
				status     int
				took, stop time.Duration
			}
			done := make(chan result, 1)
			go func() {
				start := time.Now()
				resp := g.post("/v1/messages", tok, body, e2eAnthropicHdr...)
				var stop time.Duration
				buf := make([]byte, 64<<10)
				var seen []byte
				for {
					n, err := resp.Body.Read(buf)
					seen = append(seen, buf[:n]...)
					if stop == 0 && bytes.Contains(seen, []byte("message_stop")) {
						stop = time.Since(start)
					}
					if err != nil {
						break
					}
				}
				resp.Body.Close()
				done <- result{resp.StatusCode, time.Since(start), stop}
			}()
			waitReserved(t, g, k)
			// Another process holds the write lock while the call is with
			// the provider.
			release := holdWriteLock(t, g.DB)
			r := <-done
			release()
			t.Logf("status %d, message_stop after %v, answer complete after %v (provider answered after 300 ms)", r.status, r.stop.Round(10*time.Millisecond), r.took.Round(10*time.Millisecond))
			if r.status != 200 {
				t.Fatalf("status %d", r.status)
			}
			if r.took > 2*time.Second {
				t.Errorf("the answer reached the client after %v: held by a settlement waiting on the locked ledger; want it within ~300 ms, the settlement retried in the background", r.took.Round(10*time.Millisecond))
			}
			// Charged all the same once the lock is let go (the retry comes
			// after about a second).
			for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
				q := keyQuota(t, g, k)
				if q.Spent > 0 && q.Reserved == 0 {
					cost := e2eCost(t, e2eCalls(g, 1)[0])
					t.Logf("settled: spent $%g, the call's cost $%g", q.Spent, cost)
					if math.Abs(q.Spent-cost) > 1e-12 {
						t.Errorf("the budget was charged $%g for a call that cost $%g", q.Spent, cost)
					}
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("not settled 10 s after the lock was let go: %+v", q)
				}
			}
		})
	}
}

// TestSettlementPastInlineDeadlineIsCharged: a settlement whose 0.5 s
// inline deadline (settleInline) ran out while its transaction was under
// way, rather than while it waited for the connection, the gate or
// SQLite's lock, failed with the bare context.DeadlineExceeded, which
// call.settle does not retry: the call was never charged (review 23R2,
// whose test this is). It is now ErrUnavailable, retried in the background.
//
// The transaction is made to outlast what is left of the 0.5 s by a
// trigger on the reservation's DELETE that takes ~1 s of CPU (standing in
// for a transaction that begins near its deadline: behind the trace
// writer's 200 ms batches and the ledger's queued transactions, or a
// BEGIN whose busy wait for another process's lock succeeds at its last
// try). The background retry has 30 s, so a fixed gateway charges it.
func TestSettlementPastInlineDeadlineIsCharged(t *testing.T) {
	up := fakeupstream.New(t)
	g := startGateway(t, gatewayConfig(tempDB(t), up.URL, ""))
	k, tok := g.issueKey(store.IssueParams{Name: "capped"})
	capKey(t, g, k, 5)

	other, err := sql.Open("sqlite3", "file:"+g.DB+"?_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	// Sized here to take about 1.2 s, well past settleInline.
	const rows = 1000000
	t0 := time.Now()
	if _, err := other.Exec(fmt.Sprintf(`WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < %d) SELECT count(*) FROM c`, rows)); err != nil {
		t.Fatal(err)
	}
	n := int64(float64(rows) * float64(1200*time.Millisecond) / float64(max(time.Since(t0), time.Millisecond)))
	slow := fmt.Sprintf(`CREATE TRIGGER test_slow_settle BEFORE DELETE ON budget_reservations BEGIN
		SELECT count(*) FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < %d) SELECT x FROM c);
	END`, n)
	if _, err := other.Exec(slow); err != nil {
		t.Fatal(err)
	}
	t.Logf("the trigger counts to %d, about 1.2 s here (settleInline is %v)", n, settleInline)

	up.Enqueue("/v1/messages", fakeupstream.AnthropicMessage("claude-haiku-4-5", 400, "end_turn", fakeupstream.TextBlock("Sunny.")))
	resp := g.post("/v1/messages", tok, `{"model":"haiku","max_tokens":100,"messages":[{"role":"user","content":"Weather?"}]}`, e2eAnthropicHdr...)
	body := e2eRead(t, resp)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	cost := e2eCost(t, e2eCalls(g, 1)[0])
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		q := keyQuota(t, g, k)
		if q.Spent > 0 && q.Reserved == 0 {
			t.Logf("settled: spent $%g, the call's cost $%g", q.Spent, cost)
			if math.Abs(q.Spent-cost) > 1e-12 {
				t.Errorf("the budget was charged $%g for a call that cost $%g", q.Spent, cost)
			}
			return
		}
		if time.Now().After(deadline) {
			var charges int
			_ = g.db().QueryRow(`SELECT count(*) FROM budget_charges`).Scan(&charges)
			t.Fatalf("15 s after the call, its $%g is not charged: spent $%g, reserved $%g, %d budget_charges rows "+
				"(the inline settlement hit its 0.5 s deadline mid-transaction: context.DeadlineExceeded is not ErrUnavailable, so it is never retried)",
				cost, q.Spent, q.Reserved, charges)
		}
	}
}
