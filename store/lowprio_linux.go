//go:build linux

package store

import (
	"fmt"
	"runtime"
	"time"

	"golang.org/x/sys/unix"
)

// startLowPriority starts the goroutine that runs a quiet gateway's trace
// writes, on an OS thread of its own at the kernel's SCHED_IDLE policy:
// a request's thread that wakes on that core takes it at once instead of
// queueing behind SQLite's writes (benchmarked in BENCHMARKS.md, "The trace
// writer at SCHED_IDLE"). The thread is never handed back to the Go
// runtime's pool, so no other goroutine runs at that policy; it ends with
// stop.
func startLowPriority() (*lowPriority, error) {
	lp := &lowPriority{work: make(chan func()), done: make(chan time.Duration)}
	started := make(chan error, 1)
	go func() {
		// Locked for good: a goroutine that exits locked takes its
		// thread with it, policy and all.
		runtime.LockOSThread()
		attr := unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_IDLE}
		if err := unix.SchedSetAttr(0, &attr, 0); err != nil {
			started <- fmt.Errorf("setting the trace writer's thread to SCHED_IDLE: %w", err)
			return
		}
		started <- nil
		for f := range lp.work {
			before := threadCPU()
			f()
			lp.done <- threadCPU() - before
		}
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return lp, nil
}

// threadCPU is the CPU time the calling thread has used.
func threadCPU() time.Duration {
	var ts unix.Timespec
	if unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts) != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}

// threadIsIdle reports whether the calling thread runs at SCHED_IDLE (for
// tests).
func threadIsIdle() bool {
	attr, err := unix.SchedGetAttr(0, 0)
	return err == nil && attr.Policy == unix.SCHED_IDLE
}
