package metis

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// burstLog tells the first event of a burst at once and every later one in
// a count, within a period of it; after a quiet period a new burst is told
// at once again.
func TestBurstLogCountsEveryEvent(t *testing.T) {
	var b burstLog
	var firsts, counted atomic.Int64
	var mu sync.Mutex
	var lines []int64
	add := func() {
		b.add(50*time.Millisecond, func() { firsts.Add(1) }, func(n int64) {
			counted.Add(n)
			mu.Lock()
			lines = append(lines, n)
			mu.Unlock()
		})
	}
	for burst := 1; burst <= 2; burst++ {
		var wg sync.WaitGroup
		for range 100 {
			wg.Go(add)
		}
		wg.Wait()
		time.Sleep(80 * time.Millisecond)
		add() // inside the next period
		time.Sleep(300 * time.Millisecond)
		if f, c := firsts.Load(), counted.Load(); f != int64(burst) || f+c != int64(101*burst) {
			t.Fatalf("burst %d: %d told at once and %d counted (lines %v); want %d and %d", burst, f, c, lines, burst, 100*burst)
		}
	}
}
