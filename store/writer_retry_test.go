//go:build cgo

package store

import (
	"context"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// fillDisk makes the writer's connection report the database full (SQLite's
// SQLITE_FULL, as on a full disk) from its next new page, by capping the
// file at its current size; unfill lifts the cap. The writer pool has one
// connection, so the pragmas reach it.
func fillDisk(t *testing.T, s *Store) (unfill func()) {
	t.Helper()
	pages := queryInt(t, s.db, `PRAGMA page_count`)
	if _, err := s.db.Exec(`PRAGMA max_page_count = ` + strconv.FormatInt(pages, 10)); err != nil {
		t.Fatal(err)
	}
	return func() {
		t.Helper()
		if _, err := s.db.Exec(`PRAGMA max_page_count = 1073741823`); err != nil {
			t.Fatal(err)
		}
	}
}

// countingHooks records what the store reports through its hooks.
type countingHooks struct{ lost, failed atomic.Int64 }

func (h *countingHooks) install(s *Store) {
	s.SetHooks(Hooks{
		Lost:        func(n int) { h.lost.Add(int64(n)) },
		WriteFailed: func() { h.failed.Add(1) },
	})
}

// bigEvents returns n events whose payloads need new pages, one alone too
// (a 2,000-byte one could fit in the last page's free space and be written
// while the disk is full).
func bigEvents(n int) []Event {
	evs := make([]Event, n)
	pad := strings.Repeat("x", 5000) // over a page: each needs a new one
	for i := range evs {
		evs[i] = Event{Type: TypeRouteDecided, Payload: map[string]any{"i": i, "pad": pad}}
	}
	return evs
}

// TestWriterHoldsEventsWhileDiskFull: while the disk is full the writer
// keeps the batch and retries, Enqueue keeps accepting events, and once
// there is room again every event is written: none is dropped.
func TestWriterHoldsEventsWhileDiskFull(t *testing.T) {
	s := openTest(t, Options{FlushInterval: time.Millisecond})
	var h countingHooks
	h.install(s)
	unfill := fillDisk(t, s)
	for _, ev := range bigEvents(50) {
		if !s.Enqueue(ev) {
			t.Fatal("Enqueue refused an event with the queue nearly empty")
		}
	}
	// 50 ms, 100 ms, 200 ms: four failed attempts take about 350 ms; the
	// old writer had dropped the batch after its second.
	if !waitFor(10*time.Second, func() bool { return s.Stats().WriteErrors >= 4 }) {
		t.Fatalf("the writer did not keep retrying: stats %+v", s.Stats())
	}
	if st := s.Stats(); st.Dropped != 0 || st.Written != 0 {
		t.Fatalf("while the disk is full: stats %+v, want nothing dropped or written", st)
	}
	for _, ev := range bigEvents(30) {
		if !s.Enqueue(ev) {
			t.Fatal("Enqueue refused an event while the writer retries")
		}
	}
	unfill()
	syncStore(t, s)
	if n := queryInt(t, s.ReadDB(), `SELECT count(*) FROM events`); n != 80 {
		t.Fatalf("%d events written after the disk had room again, want 80", n)
	}
	st := s.Stats()
	if st.Dropped != 0 || st.Written != 80 {
		t.Fatalf("stats %+v, want 80 written and none dropped", st)
	}
	if h.lost.Load() != 0 || h.failed.Load() != int64(st.WriteErrors) {
		t.Fatalf("hooks: lost %d, failed %d; want 0 and %d", h.lost.Load(), h.failed.Load(), st.WriteErrors)
	}
}

// TestWriterGivesUpOnFullDiskAtClose: a store closed while its disk is
// full does not hang: it retries the batch at hand for closeGrace (shortened
// here), then drops it and every batch still queued without trying them
// (each try could wait out the busy timeout on a locked database), and
// counts them all.
func TestWriterGivesUpOnFullDiskAtClose(t *testing.T) {
	defer func(g time.Duration) { closeGrace = g }(closeGrace)
	closeGrace = 500 * time.Millisecond
	s, err := Open(t.TempDir()+"/metis.db", Options{FlushInterval: time.Millisecond, BatchSize: 4})
	if err != nil {
		t.Fatal(err)
	}
	var h countingHooks
	h.install(s)
	fillDisk(t, s)
	for _, ev := range bigEvents(20) {
		s.Enqueue(ev)
	}
	if !waitFor(10*time.Second, func() bool { return s.Stats().WriteErrors >= 2 }) {
		t.Fatalf("the writer did not retry: stats %+v", s.Stats())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	attempts := s.Stats().WriteErrors
	if err := s.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("Close took %v with the disk full", d)
	}
	// The batch at hand is retried every 200 ms for the grace; the other
	// four batches are not tried.
	if n := s.Stats().WriteErrors - attempts; n > 4 {
		t.Errorf("%d write attempts after Close, want at most 4", n)
	}
	if st := s.Stats(); st.Dropped != 20 || h.lost.Load() != 20 {
		t.Fatalf("stats %+v, lost hook %d; want the 20 held events dropped and reported", st, h.lost.Load())
	}
}

// TestWriterDropsBatchOnPermanentError: an error that retrying cannot
// mend (here a trigger refusing the row) costs two attempts, as before,
// and the lost events are reported through the hook.
func TestWriterDropsBatchOnPermanentError(t *testing.T) {
	s := openTest(t, Options{})
	var h countingHooks
	h.install(s)
	if _, err := rawDB(t, s.Path()).Exec(`CREATE TRIGGER boom BEFORE INSERT ON events WHEN NEW.type = 'boom'
		BEGIN SELECT RAISE(ABORT, 'boom'); END`); err != nil {
		t.Fatal(err)
	}
	s.Enqueue(Event{Type: TypeRouteDecided}, Event{Type: "boom"})
	if err := s.Sync(context.Background()); err == nil {
		t.Fatal("Sync = nil after a dropped batch")
	}
	if st := s.Stats(); st.WriteErrors != 2 || st.Dropped != 2 {
		t.Fatalf("stats %+v, want 2 attempts and 2 events dropped", st)
	}
	if h.lost.Load() != 2 || h.failed.Load() != 2 {
		t.Fatalf("hooks: lost %d, failed %d; want 2 and 2", h.lost.Load(), h.failed.Load())
	}
}

// TestWriterWritesWhatFreesUpWhileClosing: a database that becomes
// writable again within closeGrace of Close (a backup's lock let go, space
// freed) gets every held event: closing does not drop them at the first
// failure.
func TestWriterWritesWhatFreesUpWhileClosing(t *testing.T) {
	s, err := Open(t.TempDir()+"/metis.db", Options{FlushInterval: time.Millisecond, BatchSize: 4})
	if err != nil {
		t.Fatal(err)
	}
	unfill := fillDisk(t, s)
	for _, ev := range bigEvents(20) {
		s.Enqueue(ev)
	}
	if !waitFor(10*time.Second, func() bool { return s.Stats().WriteErrors >= 2 }) {
		t.Fatalf("the writer did not retry: stats %+v", s.Stats())
	}
	path := s.Path()
	closed := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		closed <- s.Close(ctx)
	}()
	time.Sleep(500 * time.Millisecond)
	unfill()
	if err := <-closed; err != nil {
		t.Fatalf("Close: %v", err)
	}
	if st := s.Stats(); st.Dropped != 0 || st.Written != 20 {
		t.Fatalf("stats %+v, want the 20 events written and none dropped", st)
	}
	if n := queryInt(t, rawDB(t, path), `SELECT count(*) FROM events`); n != 20 {
		t.Fatalf("%d events in the file, want 20", n)
	}
}
