//go:build cgo

package budget

import (
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// hammer runs n concurrent calls against id: each reserves worst, sleeps a
// little, then settles actual. ledgers are used round-robin. It returns the
// number of calls accepted and refused and fails on any error.
func hammer(t *testing.T, ledgers []*Ledger, id Identity, n int, worst, actual float64) (accepted, refused int64) {
	t.Helper()
	var acc, ref atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		l := ledgers[i%len(ledgers)]
		wg.Go(func() {
			<-start
			r, _, refusal, err := l.Reserve(context.Background(), id, worst, time.Now())
			if err != nil {
				t.Errorf("Reserve: %v", err)
				return
			}
			if refusal != nil {
				ref.Add(1)
				return
			}
			acc.Add(1)
			time.Sleep(time.Duration(rand.IntN(3000)) * time.Microsecond)
			if _, err := r.Settle(actual, time.Now()); err != nil {
				t.Errorf("Settle: %v", err)
			}
		})
	}
	close(start)
	wg.Wait()
	return acc.Load(), ref.Load()
}

func TestConcurrentReserveExactWorstCase(t *testing.T) {
	l := openLedger(t, testDB(t), Options{})
	// Rolling, not monthly: hammer reads the wall clock, and 200 calls
	// straddling the month's start would see the spend restart.
	b := mustSet(t, l, Budget{Scope: ScopeTeam, Subject: "eng", Window: "720h", Hard: 50})
	id := Identity{KeyID: "gk_A", User: "alice", Team: "eng"}
	acc, ref := hammer(t, []*Ledger{l}, id, 200, 1, 1)
	q := quotaOf(t, l, b, time.Now())
	if q.Spent > 50+1e-9 {
		t.Fatalf("spent $%v over the $50 hard limit", q.Spent)
	}
	// Each accepted call holds exactly $1 from reserve to settle, so exactly
	// 50 fit and the rest are refused.
	if acc != 50 || ref != 150 || !near(q.Spent, 50) {
		t.Fatalf("accepted %d, refused %d, spent $%v; want 50, 150, $50", acc, ref, q.Spent)
	}
	if q.Reserved != 0 || q.State != StateHard {
		t.Fatalf("after settling: reserved $%v, state %s; want $0, hard", q.Reserved, q.State)
	}
}

func TestConcurrentReserveOverestimate(t *testing.T) {
	l := openLedger(t, testDB(t), Options{})
	b := mustSet(t, l, Budget{Scope: ScopeUser, Subject: "alice", Window: "24h", Hard: 50})
	acc, ref := hammer(t, []*Ledger{l}, Identity{User: "alice"}, 200, 2, 1)
	q := quotaOf(t, l, b, time.Now())
	if q.Spent > 50+1e-9 {
		t.Fatalf("spent $%v over the $50 hard limit", q.Spent)
	}
	if !near(q.Spent, float64(acc)) {
		t.Fatalf("spent $%v, but %d calls settled at $1 each", q.Spent, acc)
	}
	if acc+ref != 200 || acc < 25 {
		t.Fatalf("accepted %d, refused %d: want 200 in all and at least 25 accepted", acc, ref)
	}
	if q.Reserved != 0 {
		t.Fatalf("reserved $%v after every call settled", q.Reserved)
	}
}

// TestTwoLedgersShareTheLimit simulates two gateway processes on one file:
// each has its own connections, so only SQLite's write lock serialises them.
func TestTwoLedgersShareTheLimit(t *testing.T) {
	path := testDB(t)
	l1 := openLedger(t, path, Options{})
	l2 := openLedger(t, path, Options{})
	// Rolling, not daily: hammer reads the wall clock, and calls
	// straddling UTC midnight would see the spend restart.
	b := mustSet(t, l1, Budget{Scope: ScopeKey, Subject: "gk_01TEST", Window: "24h", Hard: 30})
	id := Identity{KeyID: "gk_01TEST"}
	acc, ref := hammer(t, []*Ledger{l1, l2}, id, 200, 1, 1)
	for _, l := range []*Ledger{l1, l2} {
		q := quotaOf(t, l, b, time.Now())
		if q.Spent > 30+1e-9 || !near(q.Spent, float64(acc)) {
			t.Fatalf("spent $%v with %d calls accepted; limit $30", q.Spent, acc)
		}
	}
	if acc != 30 || ref != 170 {
		t.Fatalf("accepted %d, refused %d; want 30, 170", acc, ref)
	}
}
