package store

import "time"

// lowPriority runs functions, one at a time, on a thread of the lowest CPU
// priority (see startLowPriority). A nil *lowPriority runs them on the
// caller's goroutine.
type lowPriority struct {
	work chan func()
	done chan time.Duration // the CPU time the function took
	// until is when the thread may be used again after a run that waited
	// for a core far longer than it computed (see starved).
	until time.Time
}

// Starvation: a run whose wall time exceeds starvedRatio × its CPU time
// plus starvedSlack found the cores taken by other work. SCHED_IDLE then
// waits for them, while the Go runtime's P the thread may hold waits with
// it and the trace falls behind (up to seconds a round under four busy
// processes on two cores, against 20 ms). The writer then commits at
// normal priority for starvedPause.
const (
	starvedRatio = 4
	starvedSlack = 5 * time.Millisecond
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
	if now := time.Now(); now.Sub(start) > starvedRatio*cpu+starvedSlack {
		lp.until = now.Add(starvedPause)
	}
}

// stop ends the thread.
func (lp *lowPriority) stop() {
	if lp != nil {
		close(lp.work)
	}
}
