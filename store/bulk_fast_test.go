//go:build cgo

package store

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// TestBulkText: each variant has one tuple of placeholders per row.
func TestBulkText(t *testing.T) {
	for qi, q := range bulkQueries {
		for _, rows := range bulkSizes {
			text := q.text(rows)
			if got := strings.Count(text, "?"); got != rows*q.cols {
				t.Errorf("query %d, %d rows: %d placeholders, want %d", qi, rows, got, rows*q.cols)
			}
		}
	}
}

// TestLargeBatches writes batches large enough to use every statement
// variant (more than 64 events, calls, rollup and session rows per
// transaction) and checks the tables against each other and the writer
// connection's checkpoint setting.
func TestLargeBatches(t *testing.T) {
	s := openTest(t, Options{BatchSize: 1000, FlushInterval: time.Second})
	r := rand.New(rand.NewPCG(3, 4))
	keys := make([]testKey, 150)
	for i := range keys {
		keys[i] = testKey{fmt.Sprint("gk_", i), fmt.Sprint("k", i), fmt.Sprint("u", i%40), "t", "/w"}
	}
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	const turns = 1357 // not a multiple of any variant size
	for range turns {
		at, c := randomCall(r, base, keys)
		c.SessionID = fmt.Sprint("sess-", r.IntN(300))
		if !s.Enqueue(Event{Type: TypeRouteDecided, Time: at, Payload: map[string]any{"turn_id": c.TurnID}},
			Event{Type: TypeCallCompleted, Time: at, Payload: c}) {
			t.Fatal("Enqueue refused")
		}
	}
	syncStore(t, s)
	db := s.ReadDB()
	if n := queryInt(t, db, `SELECT count(*) FROM events`); n != 2*turns {
		t.Errorf("events: %d, want %d", n, 2*turns)
	}
	if n := queryInt(t, db, `SELECT count(*) FROM calls`); n != turns {
		t.Errorf("calls: %d, want %d", n, turns)
	}
	for _, q := range []string{`SELECT sum(calls) FROM rollup_hour`, `SELECT sum(calls) FROM rollup_day`,
		`SELECT sum(calls) FROM sessions`} {
		if n := queryInt(t, db, q); n != turns {
			t.Errorf("%s: %d, want %d", q, n, turns)
		}
	}
	if n := queryInt(t, db, `SELECT count(*) FROM calls c JOIN events e ON e.id = c.event_id
		WHERE e.payload_json ->> 'turn_id' <> c.turn_id`); n != 0 {
		t.Errorf("%d calls do not match their events", n)
	}
	if n := queryInt(t, s.db, `PRAGMA wal_autocheckpoint`); n != 0 {
		t.Errorf("wal_autocheckpoint = %d, want 0 (the writer checkpoints after giving the write gate back)", n)
	}
}
