//go:build cgo

package store

import (
	"strings"
	"sync"
	"testing"
	"time"
)

// Review 24R2 of 55d6493. The truncating checkpoint waits restartWait
// (250 ms) for the WAL's readers, so it bounds the WAL only while every
// reader's snapshot is shorter than that. Readers that overlap and each
// hold their snapshot longer (the dashboard's panels over a large
// database, an analytics query over months: the commit's own examples)
// never all leave within 250 ms: every attempt fails, is tried again
// 4,000 pages later, and the WAL grows as before the fix (measured:
// 50,544 pages, ~200 MiB, in 8 s, with 1.5 s readers), while each failed
// attempt holds the write gate 250-290 ms (the ledger's reservations and
// settlements wait for it). Here three readers hold 1 s snapshots,
// staggered, under the traffic of TestWALBoundedWithOverlappingReaders;
// an attempt they outlast is now tried again sooner and waits longer
// (restartWait).
func TestWALBoundedWithOverlappingLongReaders(t *testing.T) {
	s := openTest(t, Options{})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for g := range 3 {
		wg.Go(func() {
			time.Sleep(time.Duration(g) * 330 * time.Millisecond)
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
				time.Sleep(time.Second) // a query over months of calls
				tx.Rollback()           //nolint:errcheck // read only
			}
		})
	}
	pad := strings.Repeat("x", 1000)
	var most int64
	for start := time.Now(); time.Since(start) < 6*time.Second; {
		for j := range 300 {
			s.Enqueue(Event{Type: "test.wal", Payload: map[string]any{"j": j, "pad": pad}})
		}
		time.Sleep(10 * time.Millisecond)
		most = max(most, walPagesOf(s.path))
	}
	close(stop)
	wg.Wait()
	if most > 5*checkpointPages {
		t.Errorf("the WAL grew to %d pages (%.0f MiB), %.1f× checkpointPages, while readers of 1 s overlapped",
			most, float64(most)*4120/(1<<20), float64(most)/checkpointPages)
	}
}
