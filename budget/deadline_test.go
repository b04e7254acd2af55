//go:build cgo

package budget

import (
	"context"
	"fmt"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Review 24R. A ledger transaction whose deadline ends inside it (the
// gateway's 0.5 s inline settlement, its 5 s reservation) has its driver
// connection discarded by database/sql's watcher goroutine, while
// writeConn's release puts the busy timeout back on the same *sql.Conn
// (busyWithin's reset). sql.Conn's grabConn checks that the Conn is not
// done and only then takes its lock: when the watcher closes the Conn in
// between, the reset runs on a nil driver connection and panics. release
// never reaches done(): the write gate stays taken and the ledger's
// transaction marked active, for good, so the trace writer (which waits
// for the gate without a deadline) and every later reservation and
// settlement wait on it. The gateway recovers the panic (net/http, the
// call's recoverPanic), so the process lives on wedged.
//
// The test settles reservations with deadlines that end inside the
// settlement's transaction (a trigger makes the charge's insert take a few
// milliseconds) until one panics or 8 s pass (before the fix one panicked
// within 1 to 6 s under -race), then checks that the ledger still works
// and its gate is free.
func TestDeadlineInsideTransactionLeavesTheLedgerWorking(t *testing.T) {
	l := openLedger(t, testDB(t), Options{})
	mustSet(t, l, Budget{Scope: ScopeUser, Subject: "alice", Window: WindowMonthly, Hard: 1e9})
	if _, err := l.db.Exec(`CREATE TABLE slow_fill (x);
		WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 30000)
		INSERT INTO slow_fill SELECT x FROM c;
		CREATE TRIGGER slow_charge AFTER INSERT ON budget_charges BEGIN
			SELECT sum(x * x % 7) FROM slow_fill;
		END`); err != nil {
		t.Fatal(err)
	}
	id := Identity{User: "alice"}
	var panics atomic.Int64
	var first atomic.Value
	var tries atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for g := range 1 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if panics.Load() > 0 {
					return
				}
				r, _, _, err := l.Reserve(context.Background(), id, 0.01, time.Now())
				if err != nil {
					t.Errorf("Reserve: %v", err)
					return
				}
				wait := time.Duration(100+(i*37+g*11)%4000) * time.Microsecond
				func() {
					defer func() {
						if v := recover(); v != nil {
							panics.Add(1)
							first.CompareAndSwap(nil, fmt.Sprintf("%v\n%s", v, debug.Stack()))
						}
					}()
					tries.Add(1)
					r.SettleWithin(wait, 0.001, time.Now()) //nolint:errcheck // the panic is what is looked for
				}()
			}
		})
	}
	deadline := time.After(8 * time.Second)
	for panics.Load() == 0 {
		select {
		case <-deadline:
			close(stop)
			wg.Wait()
			t.Logf("%d settlements with deadlines inside their transaction, no panic", tries.Load())
			return
		case <-time.After(10 * time.Millisecond):
		}
	}
	close(stop)
	wg.Wait()
	t.Errorf("a settlement whose deadline ended inside its transaction panicked (after %d tries): %v", tries.Load(), first.Load())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := l.gate.Lock(ctx); err != nil {
		t.Errorf("the file's write gate is still held after the panic: the trace writer waits for it forever (%v)", err)
	} else {
		l.gate.Unlock()
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel2()
	if _, _, _, err := l.Reserve(ctx2, id, 0.01, time.Now()); err != nil {
		t.Errorf("a reservation after the panic: %v", err)
	}
}
