//go:build cgo

package store

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestConcurrentWritersBatching: 16 goroutines enqueue turns of three events
// while a small batch size forces many transactions; every event lands once,
// the three events of a turn get increasing ids, and each goroutine's events
// keep their enqueue order.
func TestConcurrentWritersBatching(t *testing.T) {
	const goroutines, turns = 16, 667 // 16 × 2,001 events
	s := openTest(t, Options{BatchSize: 64, FlushInterval: 5 * time.Millisecond})
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range turns {
				turn := NewID().String()
				ok := s.Enqueue(
					Event{Type: TypeRouteDecided, Payload: map[string]any{"g": g, "i": 3 * i, "turn_id": turn}},
					Event{Type: TypeCallCompleted, Payload: &Call{TurnID: turn, Status: 200, Model: "m"}},
					Event{Type: TypeTurnCompleted, Payload: map[string]any{"g": g, "i": 3*i + 2, "turn_id": turn}},
				)
				if !ok {
					t.Errorf("Enqueue returned false")
					return
				}
			}
		}()
	}
	wg.Wait()
	syncStore(t, s)

	const total = goroutines * turns * 3
	db := s.ReadDB()
	if n := queryInt(t, db, `SELECT count(*) FROM events`); n != total {
		t.Fatalf("events rows = %d, want %d", n, total)
	}
	if n := queryInt(t, db, `SELECT count(*) FROM calls`); n != goroutines*turns {
		t.Fatalf("calls rows = %d, want %d", n, goroutines*turns)
	}
	if st := s.Stats(); st.Written != total || st.Enqueued != total || st.Dropped != 0 || st.Batches < total/64 || st.QueueLen != 0 {
		t.Fatalf("stats = %+v", st)
	}
	// Within each goroutine, ids (ORDER BY id) follow enqueue order.
	rows, err := db.Query(`SELECT json_extract(payload_json, '$.g'), json_extract(payload_json, '$.i')
		FROM events WHERE type <> ? ORDER BY id`, TypeCallCompleted)
	if err != nil {
		t.Fatal(err)
	}
	last := map[int]int{}
	for rows.Next() {
		var g, i int
		if err := rows.Scan(&g, &i); err != nil {
			t.Fatal(err)
		}
		if prev, ok := last[g]; ok && i <= prev {
			t.Fatalf("goroutine %d: event %d stored after %d", g, i, prev)
		}
		last[g] = i
	}
	rows.Close()
	// Within each turn: route.decided < llm.call_completed < turn.completed.
	bad := queryInt(t, db, `SELECT count(*) FROM (
		SELECT json_extract(payload_json, '$.turn_id') AS turn,
			group_concat(type, ',') AS types
		FROM (SELECT * FROM events ORDER BY id) GROUP BY turn)
		WHERE types <> 'route.decided,llm.call_completed,turn.completed'`)
	if bad != 0 {
		t.Fatalf("%d turns stored out of order", bad)
	}
}

// TestDrainOnClose: Close commits everything enqueued before it, even with a
// flush interval far longer than the test.
func TestDrainOnClose(t *testing.T) {
	const n = 10000
	path := filepath.Join(t.TempDir(), "m.db")
	s, err := Open(path, Options{FlushInterval: time.Hour, BatchSize: 700})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if !s.Enqueue(Event{Type: TypeRouteDecided, Payload: map[string]int{"i": i}}) {
			t.Fatal("Enqueue returned false")
		}
	}
	closeStore(t, s)
	if err := s.Close(context.Background()); err != nil { // idempotent
		t.Fatalf("second Close: %v", err)
	}
	s2, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer closeStore(t, s2)
	if got := queryInt(t, s2.ReadDB(), `SELECT count(*) FROM events`); got != n {
		t.Fatalf("after reopen: %d events, want %d", got, n)
	}
}

// TestEnqueueAfterClose: no panic, false, counted as dropped; Sync still
// returns.
func TestEnqueueAfterClose(t *testing.T) {
	s := openTest(t, Options{})
	closeStore(t, s)
	if s.Enqueue(Event{Type: TypeRouteDecided}, Event{Type: TypeTurnCompleted}) {
		t.Fatal("Enqueue after Close returned true")
	}
	if st := s.Stats(); st.Dropped != 2 || st.Enqueued != 0 {
		t.Fatalf("stats = %+v, want 2 dropped", st)
	}
	if err := s.Sync(context.Background()); err != nil {
		t.Fatalf("Sync after Close: %v", err)
	}
	// Concurrent Enqueue racing Close must not panic either.
	s2 := openTest(t, Options{})
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 500 {
				s2.Enqueue(Event{Type: TypeRouteDecided})
			}
		}()
	}
	closeStore(t, s2)
	wg.Wait()
	st := s2.Stats()
	if st.Enqueued+st.Dropped != 8*500 || st.Written != st.Enqueued {
		t.Fatalf("racing Close: stats = %+v", st)
	}
}

// TestFullQueueDropsWithoutBlocking holds the database's write lock from
// another connection so the writer is stuck, fills a tiny queue, and checks
// that further Enqueue calls return false at once and are counted.
func TestFullQueueDropsWithoutBlocking(t *testing.T) {
	s := openTest(t, Options{QueueSize: 8, BatchSize: 4, FlushInterval: time.Millisecond})
	lock, err := rawDB(t, s.Path()).Begin() // BEGIN IMMEDIATE: takes the write lock
	if err != nil {
		t.Fatal(err)
	}
	for i := range 8 {
		if !s.Enqueue(Event{Type: TypeRouteDecided, Payload: map[string]int{"i": i}}) {
			t.Fatalf("Enqueue %d into an empty queue returned false", i)
		}
	}
	time.Sleep(20 * time.Millisecond) // let the writer take a batch and block
	start := time.Now()
	for range 100 {
		if s.Enqueue(Event{Type: TypeRouteDecided}) {
			t.Fatal("Enqueue into a full queue returned true")
		}
	}
	if s.Enqueue(Event{Type: TypeRouteDecided}, Event{Type: TypeTurnCompleted}) {
		t.Fatal("multi-event Enqueue into a full queue returned true")
	}
	if d := time.Since(start); d > time.Second { // blocking would mean the 5s busy timeout
		t.Fatalf("102 rejected Enqueue calls took %v", d)
	}
	if st := s.Stats(); st.Dropped != 102 || st.QueueLen != 8 {
		t.Fatalf("stats = %+v", st)
	}
	if err := lock.Rollback(); err != nil {
		t.Fatal(err)
	}
	syncStore(t, s)
	if n := queryInt(t, s.ReadDB(), `SELECT count(*) FROM events`); n != 8 {
		t.Fatalf("%d events written, want 8", n)
	}
	if !s.Enqueue(Event{Type: TypeRouteDecided}) {
		t.Fatal("Enqueue after the queue drained returned false")
	}
}

// TestWriteErrorDropsBatch: a batch that fails twice is dropped and counted,
// Sync reports it, and the store keeps working.
func TestWriteErrorDropsBatch(t *testing.T) {
	s := openTest(t, Options{})
	raw := rawDB(t, s.Path())
	if _, err := raw.Exec(`CREATE TRIGGER boom BEFORE INSERT ON events WHEN NEW.type = 'boom'
		BEGIN SELECT RAISE(ABORT, 'boom'); END`); err != nil {
		t.Fatal(err)
	}
	s.Enqueue(Event{Type: TypeRouteDecided}, Event{Type: "boom"})
	err := s.Sync(context.Background())
	if !errors.Is(err, ErrWriteFailed) {
		t.Fatalf("Sync = %v, want ErrWriteFailed", err)
	}
	if st := s.Stats(); st.WriteErrors != 2 || st.Dropped != 2 || st.Written != 0 {
		t.Fatalf("stats = %+v", st)
	}
	s.Enqueue(Event{Type: TypeRouteDecided})
	syncStore(t, s)
	if n := queryInt(t, s.ReadDB(), `SELECT count(*) FROM events`); n != 1 {
		t.Fatalf("%d events, want 1", n)
	}
}

// TestSyncRespectsContext: Sync gives up when its context ends.
func TestSyncRespectsContext(t *testing.T) {
	s := openTest(t, Options{})
	lock, err := rawDB(t, s.Path()).Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Rollback() //nolint:errcheck
	s.Enqueue(Event{Type: TypeRouteDecided})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := s.Sync(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Sync = %v, want deadline exceeded", err)
	}
}

// TestReconfigure: a pooled store takes a new config's queue size.
func TestReconfigure(t *testing.T) {
	s := openTest(t, Options{})
	s.Reconfigure(Options{QueueSize: 2, BatchSize: 1})
	lock, err := rawDB(t, s.Path()).Begin()
	if err != nil {
		t.Fatal(err)
	}
	if !s.Enqueue(Event{Type: "a"}, Event{Type: "b"}) {
		t.Fatal("Enqueue within the new queue size failed")
	}
	if s.Enqueue(Event{Type: "c"}) {
		t.Fatal("Enqueue beyond the new queue size succeeded")
	}
	lock.Rollback() //nolint:errcheck
	syncStore(t, s)
	if got := s.opts.Load().FlushInterval; got != DefaultFlushInterval {
		t.Fatalf("FlushInterval = %v, want the default", got)
	}
}

// TestEventEncoding: ids and times given by the caller are kept, a nil
// payload is {}, and a call payload passed as a map still fills calls.
func TestEventEncoding(t *testing.T) {
	s := openTest(t, Options{})
	id := NewID()
	at := time.Date(2026, 3, 1, 12, 30, 0, 123456000, time.UTC)
	s.Enqueue(
		Event{ID: id, Type: TypeRequestRejected, Time: at},
		Event{Type: TypeCallCompleted, Time: at, Payload: map[string]any{
			"turn_id": "t1", "model": "gpt-5-mini", "status": 429, "error_class": "RATE_LIMITED", "priced": false,
		}},
		Event{Type: TypeCallCompleted, Time: at, Payload: Call{TurnID: "t2", Model: "m"}},
		Event{Type: TypeCallCompleted, Payload: "not a call"},
	)
	if err := s.Sync(context.Background()); !errors.Is(err, ErrWriteFailed) {
		t.Fatalf("Sync = %v, want ErrWriteFailed for the undecodable call", err)
	}
	db := s.ReadDB()
	var payload string
	var ts int64
	if err := db.QueryRow(`SELECT payload_json, timestamp_us FROM events WHERE id = ?`, id.String()).Scan(&payload, &ts); err != nil {
		t.Fatal(err)
	}
	if payload != "{}" || ts != at.UnixMicro() {
		t.Fatalf("payload %q ts %d", payload, ts)
	}
	if n := queryInt(t, db, `SELECT count(*) FROM calls WHERE turn_id = 't1' AND status = 429
		AND error_class = 'RATE_LIMITED' AND model = 'gpt-5-mini' AND cost_usd IS NULL`); n != 1 {
		t.Fatal("map call payload not decoded into calls")
	}
	if n := queryInt(t, db, `SELECT count(*) FROM calls WHERE turn_id = 't2' AND error_class IS NULL`); n != 1 {
		t.Fatal("Call value payload not written to calls")
	}
	if st := s.Stats(); st.Written != 3 || st.Dropped != 1 {
		t.Fatalf("stats = %+v", st)
	}
}

// TestCallJSON: the payload carries exactly the contract's keys, with
// session_id, error_class, cost_usd and ttft_ms null when absent.
func TestCallJSON(t *testing.T) {
	b, err := json.Marshal(&Call{TurnID: "t"})
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	want := []string{"turn_id", "gateway_key_id", "key_name", "user", "team", "workspace", "session_id",
		"inbound_shape", "provider", "requested_model", "model", "stream", "status", "error_class", "attempts",
		"input_tokens", "cache_read_input_tokens", "cache_creation_input_tokens", "cache_creation_5m_input_tokens",
		"cache_creation_1h_input_tokens", "output_tokens", "reasoning_tokens", "cost_usd", "priced", "usage_source",
		"latency_ms", "ttft_ms", "upstream_request_id", "cache_savings_usd"}
	var got []string
	for k := range m {
		got = append(got, k)
	}
	sort.Strings(got)
	sort.Strings(want)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("keys:\n got %v\nwant %v", got, want)
	}
	for _, k := range []string{"session_id", "error_class", "cost_usd", "ttft_ms"} {
		if m[k] != nil {
			t.Errorf("%s = %v, want null", k, m[k])
		}
	}
	full := Call{SessionID: "s", ErrorClass: "CANCELLED", CostUSD: ptr(0.25), TTFTMS: ptr[int64](12),
		ServiceTier: "priority", CacheCreation1hInputTokens: 7}
	b, _ = json.Marshal(full)
	var back Call
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, full) {
		t.Fatalf("round trip:\n got %+v\nwant %+v\njson %s", back, full, b)
	}
	if want := `"service_tier":"priority"`; !json.Valid(b) || !strings.Contains(string(b), want) {
		t.Fatalf("%s lacks %s", b, want)
	}
}

// TestNewIDMonotonic: ids from many goroutines are unique, and each
// goroutine's are increasing.
func TestNewIDMonotonic(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]bool{}
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			prev := NewID()
			local := []string{prev.String()}
			for range 5000 {
				id := NewID()
				if id.Compare(prev) <= 0 {
					t.Errorf("NewID not increasing: %s after %s", id, prev)
					return
				}
				prev = id
				local = append(local, id.String())
			}
			mu.Lock()
			defer mu.Unlock()
			for _, s := range local {
				if seen[s] {
					t.Errorf("duplicate id %s", s)
				}
				seen[s] = true
			}
		}()
	}
	wg.Wait()
}

// TestCloseCheckpointsWAL: after Close the WAL has been folded into the
// database file, so the file alone holds every event.
func TestCloseCheckpointsWAL(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for range 100 {
		s.Enqueue(Event{Type: TypeRouteDecided})
	}
	syncStore(t, s)
	closeStore(t, s)
	if fi, err := os.Stat(path + "-wal"); err == nil && fi.Size() > 0 {
		t.Fatalf("WAL left with %d bytes after Close", fi.Size())
	}
}
