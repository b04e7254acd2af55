//go:build cgo

package store

import (
	"strings"
	"sync"
	"testing"
	"time"
)

// Readers that overlap (the dashboard's queries every few seconds, an
// analytics query over months) always hold a snapshot older than the
// WAL's end, so a passive checkpoint never copies the whole WAL and SQLite
// never starts it over: review 24R's WAL grew by about 1,000 pages a
// second under steady traffic, to 99 MiB in 25 s, and the file kept that
// size after the readers stopped. The writer now waits a moment for the
// readers (a restarting checkpoint) once the WAL reaches restartPages, and
// its connection truncates the file to walSizeLimit when the WAL starts
// over.
func TestWALBoundedWithOverlappingReaders(t *testing.T) {
	s := openTest(t, Options{})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for g := range 3 {
		wg.Go(func() {
			time.Sleep(time.Duration(g) * 20 * time.Millisecond)
			for {
				select {
				case <-stop:
					return
				default:
				}
				tx, err := s.rdb.Begin()
				if err != nil {
					t.Error(err)
					return
				}
				var n int64
				if err := tx.QueryRow(`SELECT count(*) FROM events`).Scan(&n); err != nil {
					t.Error(err)
				}
				time.Sleep(60 * time.Millisecond) // a query over a month of calls
				tx.Rollback()                     //nolint:errcheck // read only
			}
		})
	}
	pad := strings.Repeat("x", 1000)
	traffic := func(d time.Duration) (most int64) {
		for start := time.Now(); time.Since(start) < d; {
			for j := range 300 {
				s.Enqueue(Event{Type: "test.wal", Payload: map[string]any{"j": j, "pad": pad}})
			}
			time.Sleep(10 * time.Millisecond)
			most = max(most, walPagesOf(s.path))
		}
		return most
	}
	most := traffic(6 * time.Second)
	close(stop)
	wg.Wait()
	t.Logf("with readers overlapping: the WAL reached %d pages (%.0f MiB), checkpointPages %d; %d events written",
		most, float64(most)*4120/(1<<20), checkpointPages, s.Stats().Written)
	// A truncation the readers outlast is tried again 4,000 pages later;
	// the code before the fix reached 59,000 pages in these 6 s.
	if most > 5*checkpointPages {
		t.Errorf("the WAL grew to %d pages, %.1f× checkpointPages, while readers overlapped", most, float64(most)/checkpointPages)
	}
	traffic(time.Second)
	syncStore(t, s)
	if n := walPagesOf(s.path); n > walSizeLimit/4096+checkpointPages/2 {
		t.Errorf("the WAL file still holds %d pages after the readers stopped (limit %d)", n, walSizeLimit/4096)
	}
	if st := s.Stats(); st.Dropped != 0 {
		t.Errorf("%d events dropped", st.Dropped)
	}
}
