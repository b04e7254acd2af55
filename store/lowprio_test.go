//go:build cgo && linux

package store

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// idleThreads lists this process's threads at SCHED_IDLE (policy 5, the
// 41st field of /proc/self/task/*/stat).
func idleThreads(t *testing.T) map[string]bool {
	t.Helper()
	stats, err := filepath.Glob("/proc/self/task/*/stat")
	if err != nil {
		t.Fatal(err)
	}
	tids := map[string]bool{}
	for _, p := range stats {
		b, err := os.ReadFile(p)
		if err != nil {
			continue // the thread ended
		}
		// The command name, in parentheses, may hold spaces.
		f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
		if len(f) > 38 && f[38] == "5" {
			tids[filepath.Base(filepath.Dir(p))] = true
		}
	}
	return tids
}

// newIdleThreads lists the threads at SCHED_IDLE that were not in before,
// leaving out the main thread, which the Go runtime parks for good when a
// goroutine locked to it ends (it never runs Go code again).
func newIdleThreads(t *testing.T, before map[string]bool) []string {
	t.Helper()
	var tids []string
	for tid := range idleThreads(t) {
		if !before[tid] && tid != strconv.Itoa(os.Getpid()) {
			tids = append(tids, tid)
		}
	}
	return tids
}

// A quiet gateway's batches are written on a SCHED_IDLE thread, a busy
// one's, a Sync's and Close's drain at normal priority; the idle thread
// leaves with the store, so no other goroutine ever runs at that policy.
func TestQuietRoundsWrittenAtIdlePriority(t *testing.T) {
	// gone waits until the threads at SCHED_IDLE are those of base (and
	// perhaps the main thread).
	gone := func(base map[string]bool) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); len(newIdleThreads(t, base)) > 0; time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("threads %v still at SCHED_IDLE after their work ended", newIdleThreads(t, base))
			}
		}
	}
	base := idleThreads(t)
	lp, err := startLowPriority()
	if err != nil {
		t.Skipf("this kernel or sandbox refuses SCHED_IDLE: %v", err)
	}
	lp.stop()
	gone(base)
	before := idleThreads(t)
	var mu sync.Mutex
	var idle []bool
	onWrite = func() {
		mu.Lock()
		idle = append(idle, threadIsIdle())
		mu.Unlock()
	}
	t.Cleanup(func() { onWrite = nil })
	writes := func() []bool {
		mu.Lock()
		defer mu.Unlock()
		return append([]bool(nil), idle...)
	}
	waitWrites := func(n int) []bool {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			if w := writes(); len(w) >= n {
				return w
			}
		}
		t.Fatalf("%d batches written, want %d", len(writes()), n)
		return nil
	}
	call := func(s *Store) {
		turn := NewID().String()
		if !s.Enqueue(Event{Type: TypeRouteDecided, Payload: map[string]any{"turn_id": turn}},
			Event{Type: TypeCallCompleted, Payload: &Call{TurnID: turn, Status: 200, Model: "m"}},
			Event{Type: TypeTurnCompleted, Payload: map[string]any{"turn_id": turn}}) {
			t.Fatal("Enqueue refused")
		}
	}

	var s *Store
	s, err = Open(filepath.Join(t.TempDir(), "metis.db"), Options{FlushInterval: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	call(s) // a quiet round: written when the flush interval is up
	if w := waitWrites(1); !w[0] {
		t.Errorf("a quiet round was written at normal priority")
	}
	if got := len(idleThreads(t)) - len(before); got != 1 {
		t.Errorf("%d more threads at SCHED_IDLE with the store open, want 1", got)
	}
	call(s)
	syncStore(t, s) // someone waits: written at once
	if w := writes(); !slicesEqualTail(w, false) {
		t.Errorf("a round a Sync waited for was written at idle priority: %v", w)
	}
	n := len(writes())
	for range busyRound/3 + 1 { // a busy round
		call(s)
	}
	if w := waitWrites(n + 1); w[n] {
		t.Errorf("a round of %d events was written at idle priority", busyRound+3)
	}
	closeStore(t, s)
	if got := queryInt(t, rawDB(t, s.path), `SELECT count(*) FROM events`); got != 3*(busyRound/3+3) {
		t.Errorf("%d events written, want %d", got, 3*(busyRound/3+3))
	}
	gone(before) // the thread leaves with the store
}

// slicesEqualTail reports whether w's last element is v.
func slicesEqualTail(w []bool, v bool) bool { return len(w) > 0 && w[len(w)-1] == v }

// A run that spent long not computing (here it sleeps) sends the writer's
// rounds back to normal priority for a while: the trace must not fall
// seconds behind on a machine whose other processes keep the cores busy.
func TestLowPriorityStepsAsideWhenStarved(t *testing.T) {
	lp, err := startLowPriority()
	if err != nil {
		t.Skipf("this kernel or sandbox refuses SCHED_IDLE: %v", err)
	}
	defer lp.stop()
	if !lp.usable(time.Now()) {
		t.Fatal("a new low-priority thread is not usable")
	}
	lp.run(func() { time.Sleep(starvedWait + 20*time.Millisecond) })
	if now := time.Now(); lp.usable(now) || !lp.usable(now.Add(starvedPause)) {
		t.Errorf("after a starved run: usable now %v, after the pause %v; want false, true",
			lp.usable(now), lp.usable(now.Add(starvedPause)))
	}
	var nilLP *lowPriority
	ran := false
	nilLP.run(func() { ran = true })
	if !ran || nilLP.usable(time.Now()) {
		t.Errorf("a nil lowPriority: ran %v, usable %v; want true, false", ran, nilLP.usable(time.Now()))
	}
}
