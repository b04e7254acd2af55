package metis

import (
	"sync"
	"testing"
	"time"

	"github.com/metisgateway/metis/store"
)

// Summed refusals are dated at their last one, so a sum that straddles a
// UTC midnight (or a month's end) puts every refusal of it in the later
// day: a chargeback's from=2026-10-01&to=2026-11-01 "rejected" misses the
// ones of October 31, 23:59:5x, and November's counts them. README:
// "Refusals are counted exactly"; a sum should not cross a UTC hour (the
// finest bucket, and every day's and month's edge).
func TestReview28TRefusalSumSplitAtMidnight(t *testing.T) {
	var mu sync.Mutex
	var evs []store.Event
	l := newRejectLimiter(func(e store.Event) bool { mu.Lock(); evs = append(evs, e); mu.Unlock(); return true })
	l.every = time.Hour // flushed by hand
	midnight := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	g := rejectGroup{reason: "unknown_key", shape: "anthropic"}
	l.sum(g, midnight.Add(-2*time.Second), map[string]any{"reason": "unknown_key"}) // October 31, 23:59:58
	l.sum(g, midnight.Add(-time.Second), map[string]any{"reason": "unknown_key"})   // 23:59:59
	l.sum(g, midnight.Add(2*time.Second), map[string]any{"reason": "unknown_key"})  // November 1, 00:00:02
	l.flush()
	mu.Lock()
	defer mu.Unlock()
	var oct, nov int64
	for _, e := range evs {
		n := e.Payload.(map[string]any)["count"].(int64)
		if e.Time.Before(midnight) {
			oct += n
		} else {
			nov += n
		}
	}
	if oct != 2 || nov != 1 {
		t.Errorf("refusals dated in October %d, November %d; want 2 and 1 (events %d)", oct, nov, len(evs))
	}
}
