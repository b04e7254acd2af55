//go:build cgo

package budget

import (
	"context"
	"testing"
	"time"
)

// The ledger's automatic checkpoint stays off on a connection database/sql
// opened in place of one a transaction's ended context left open: it was
// set once at open, so the new connection checkpointed inside the
// ledger's commits again, with the write gate held (review 23R2: a
// reservation of 4.5 s on storage whose syncs take 1.5 s).
func TestAutoCheckpointOffOnAReplacedConnection(t *testing.T) {
	l := openLedger(t, testDB(t), Options{})
	mustSet(t, l, Budget{Scope: ScopeUser, Subject: "alice", Window: WindowMonthly, Hard: 100})
	// A transaction whose deadline ends while it is open: database/sql
	// rolls it back and discards the connection.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	conn, release, err := l.writeConn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(60 * time.Millisecond)
	_, err = tx.ExecContext(ctx, `DELETE FROM budget_reservations WHERE id = 'rs_x'`)
	t.Logf("a statement past the deadline: %v", err)
	tx.Rollback() //nolint:errcheck // already rolled back
	release()
	cancel()
	r, _, _, err := l.Reserve(context.Background(), Identity{User: "alice"}, 1, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Release() //nolint:errcheck // test cleanup
	var auto int
	if err := l.db.QueryRow(`PRAGMA wal_autocheckpoint`).Scan(&auto); err != nil {
		t.Fatal(err)
	}
	if auto != 0 {
		t.Errorf("the ledger's connection checkpoints automatically from %d pages after its connection was replaced; want 0", auto)
	}
}
