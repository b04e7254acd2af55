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
//
// The event "inside the next period" is added from the count line's
// callback, which runs after the period's tick has re-armed the timer: a
// sleep of 80 ms into a 50 ms period left 20 ms of slack, and on a loaded
// machine the add came after the burst had ended and was told as a new
// first (7 failures in 600 runs under load).
func TestBurstLogCountsEveryEvent(t *testing.T) {
	var b burstLog
	var firsts, counted atomic.Int64
	var late atomic.Bool // the burst's event inside its next period was added
	var mu sync.Mutex
	var lines []int64
	var add func()
	add = func() {
		b.add(50*time.Millisecond, func() { firsts.Add(1) }, func(n int64) {
			counted.Add(n)
			mu.Lock()
			lines = append(lines, n)
			mu.Unlock()
			if late.CompareAndSwap(false, true) {
				add() // inside the next period: the tick that called us re-armed the timer
			}
		})
	}
	for burst := 1; burst <= 2; burst++ {
		late.Store(false)
		var wg sync.WaitGroup
		for range 100 {
			wg.Go(add)
		}
		wg.Wait()
		// The burst ends at the first tick with nothing new: a quiet period.
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			b.mu.Lock()
			open := b.open
			b.mu.Unlock()
			if !open {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("burst %d still open after 10 s", burst)
			}
		}
		mu.Lock()
		got := append([]int64(nil), lines...)
		mu.Unlock()
		if f, c := firsts.Load(), counted.Load(); !late.Load() || f != int64(burst) || f+c != int64(101*burst) {
			t.Fatalf("burst %d: %d told at once and %d counted (lines %v, late event added %v); want %d and %d",
				burst, f, c, got, late.Load(), burst, 100*burst)
		}
	}
}
