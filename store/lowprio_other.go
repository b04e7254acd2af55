//go:build !linux

package store

import "errors"

// startLowPriority has no thread policy to set outside Linux: the writer
// commits on its own goroutine.
func startLowPriority() (*lowPriority, error) {
	return nil, errors.New("no SCHED_IDLE outside Linux")
}

// threadIsIdle is false outside Linux.
func threadIsIdle() bool { return false }
