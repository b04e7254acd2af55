package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"

	"golang.org/x/sys/unix"
)

// CPUs of the pinned layout (perf-notes §9.1): the Caddy targets get one
// core to themselves; the mock and the load generator share the other.
const (
	pinGatewayCPU = 1
	pinRigCPU     = 0
)

// pinnedLayout describes the pinned layout for the report.
const pinnedLayout = "the three Caddy processes on CPU 1 with GOMAXPROCS=1; the mock and the load generator on CPU 0"

// pinSelf binds every thread of this process to one CPU and sets
// GOMAXPROCS to 1. Threads started later are cloned from these and inherit
// the mask; a second pass catches any thread started during the first.
// Children inherit the driver's mask, so the kernel, not runtime.NumCPU,
// says whether cpu exists.
func pinSelf(cpu int) error {
	runtime.GOMAXPROCS(1)
	var set unix.CPUSet
	set.Set(cpu)
	for pass := 0; pass < 2; pass++ {
		tasks, err := os.ReadDir("/proc/self/task")
		if err != nil {
			return fmt.Errorf("pinning to CPU %d: %w", cpu, err)
		}
		for _, t := range tasks {
			tid, err := strconv.Atoi(t.Name())
			if err != nil {
				continue
			}
			if err := unix.SchedSetaffinity(tid, &set); err != nil && err != unix.ESRCH {
				return fmt.Errorf("pinning thread %d to CPU %d: %w", tid, cpu, err)
			}
		}
	}
	return nil
}
