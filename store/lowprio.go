package store

import "time"

// lowPriority runs functions, one at a time, on a thread of the lowest CPU
// priority (see startLowPriority). A nil *lowPriority runs them on the
// caller's goroutine.
type lowPriority struct {
	work chan func()
	done chan time.Duration // the CPU time the function took
	// until is when the thread may be used again after a run that waited
	// longer than starvedWait (see there).
	until time.Time
}

// Starvation: a run that spent more than starvedWait not computing (its
// wall time less its thread's CPU time) found the cores taken by other
// work. SCHED_IDLE then waits for them, while the Go runtime's P the thread
// may hold waits with it and the trace falls behind (up to seconds a round
// under four busy processes on two cores, against 20 ms). The writer then
// commits at normal priority for starvedPause. Waits of a few milliseconds
// are what the policy is for: the benchmark's c=1 load (two cores ~83%
// busy) gives rounds of ~1 ms of CPU spread over 12-13 ms.
const (
	starvedWait  = 50 * time.Millisecond
	starvedPause = 10 * time.Second
)

// usable reports whether a round may be written on the thread now.
func (lp *lowPriority) usable(now time.Time) bool {
	return lp != nil && !now.Before(lp.until)
}

// run calls f on the low-priority thread and returns when it has returned.
func (lp *lowPriority) run(f func()) {
	if lp == nil {
		f()
		return
	}
	start := time.Now()
	lp.work <- f
	cpu := <-lp.done
	if now := time.Now(); now.Sub(start)-cpu > starvedWait {
		lp.until = now.Add(starvedPause)
	}
}

// stop ends the thread.
func (lp *lowPriority) stop() {
	if lp != nil {
		close(lp.work)
	}
}
