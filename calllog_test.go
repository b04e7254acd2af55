package metis

import (
	"fmt"
	"sync"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// Every call's log line is written exactly once — from the background
// goroutine, from the caller when the queue is full, or after the log has
// stopped — and stop returns only when the waiting lines are out.
func TestCallLogWritesEveryLineOnce(t *testing.T) {
	core, logs := observer.New(zapcore.InfoLevel)
	logger := zap.New(core)
	l := newCallLog()
	const writers, each = 8, callLogMax / 4 // together more than callLogMax
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				l.write(&callLine{logger: logger, turnID: fmt.Sprintf("%d/%d", w, i), priced: true})
			}
		}()
	}
	wg.Wait()
	l.stop()
	if got := logs.Len(); got != writers*each {
		t.Fatalf("%d lines written before stop returned, want %d", got, writers*each)
	}
	l.write(&callLine{logger: logger, turnID: "-1/0", priced: true})
	l.stop() // a second stop is harmless
	seen := map[string]int{}
	for _, e := range logs.All() {
		if e.Message != "llm call" {
			t.Fatalf("message %q", e.Message)
		}
		seen[e.ContextMap()["turn_id"].(string)]++
	}
	if len(seen) != writers*each+1 {
		t.Fatalf("%d distinct lines, want %d", len(seen), writers*each+1)
	}
	for k, n := range seen {
		if n != 1 {
			t.Fatalf("line %v written %d times", k, n)
		}
	}
	if l.enabled(zap.New(zapcore.NewNopCore())) {
		t.Error("a disabled logger reported INFO enabled")
	}
}
