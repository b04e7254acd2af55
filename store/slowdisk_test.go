//go:build cgo

package store

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/metisgateway/metis/budget"
)

// slowEvents makes every row the trace writer inserts into events cost
// about perRow of write work inside its transaction (a trigger copies a
// filler table), as on storage slower than the gateway's traffic: the
// writer then holds SQLite's write lock for batch after batch. It returns
// a func that drops the trigger through the store's own connection.
func slowEvents(t *testing.T, s *Store, perRow time.Duration) (undo func()) {
	t.Helper()
	raw := rawDB(t, s.path)
	const probe = 20000 // ×10 filler rows while probing
	if _, err := raw.Exec(`CREATE TABLE slow_fill (x);
		WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ?)
		INSERT INTO slow_fill SELECT x FROM c;
		CREATE TRIGGER slow_events AFTER INSERT ON events BEGIN
			SELECT sum(x * x % 7) FROM slow_fill;
		END`, probe*10); err != nil {
		t.Fatal(err)
	}
	// Time the trigger as the writer meets it: event rows inserted in a
	// transaction (rolled back).
	const n = 20
	tx, err := raw.Begin()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for i := range n {
		if _, err := tx.Exec(`INSERT INTO events (id, type, timestamp_us, payload_json) VALUES (?, 'probe', 0, '{}')`,
			fmt.Sprint("probe", i)); err != nil {
			t.Fatal(err)
		}
	}
	per := time.Since(start) / n
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	rows := max(1, int(int64(10*probe)*int64(perRow)/int64(per)))
	if _, err := raw.Exec(`DELETE FROM slow_fill WHERE x > ?`, rows); err != nil {
		t.Fatal(err)
	}
	t.Logf("filler of %d rows: about %v per event row", rows, per*time.Duration(rows)/(10*probe))
	return func() {
		if _, err := s.db.Exec(`DROP TRIGGER slow_events`); err != nil {
			t.Errorf("dropping the trigger: %v", err)
		}
	}
}

// TestSlowTraceWritesLeaveBudgetReservationsTheirTurn: on storage slower
// than the traffic, a budgeted call's reservation shares the file with a
// trace writer that has a backlog. Audit 22F saw 7 of 8 budgeted calls
// answered 503 after 5 s on a 300-IOPS disk: SQLite's busy handler polls,
// and the writer took the lock back within microseconds after each batch
// (2,048 events, seconds each). The reservation now queues at the
// process's write gate behind at most one transaction, which the writer
// keeps near txTarget once it has seen one take longer.
func TestSlowTraceWritesLeaveBudgetReservationsTheirTurn(t *testing.T) {
	s := openTest(t, Options{})
	l, err := budget.Open(s.path, budget.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	if _, err := l.Set(context.Background(), budget.Budget{Scope: "user", Subject: "alice", Window: "monthly", Hard: 100}); err != nil {
		t.Fatal(err)
	}
	undo := slowEvents(t, s, 6*time.Millisecond)
	// A backlog of one default batch: 2,048 events, about 12 s of writing
	// at 6 ms a row (another key's traffic, in the gateway).
	for i := range DefaultBatchSize {
		if !s.Enqueue(Event{Type: "test.flood", Payload: map[string]any{"i": i}}) {
			t.Fatal("event refused")
		}
	}
	time.Sleep(300 * time.Millisecond) // the writer is inside a transaction
	// As the gateway reserves before a budgeted call: 5 s, then a 503.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	r, _, refusal, err := l.Reserve(ctx, budget.Identity{User: "alice"}, 0.5, time.Now())
	took := time.Since(start)
	undo()
	if err != nil {
		t.Fatalf("reservation failed after %v while the trace writer had a backlog: %v", took.Round(time.Millisecond), err)
	}
	if refusal != nil {
		t.Fatalf("refused: %v", refusal)
	}
	t.Logf("reserved after %v", took.Round(time.Millisecond))
	if _, err := r.Settle(0.25, time.Now()); err != nil {
		t.Fatalf("settling after the backlog: %v", err)
	}
	syncStore(t, s)
	if n := queryInt(t, s.rdb, `SELECT count(*) FROM events WHERE type = 'test.flood'`); n != DefaultBatchSize {
		t.Fatalf("%d flood events written, want %d", n, DefaultBatchSize)
	}
}
