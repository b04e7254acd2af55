package metis

import (
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
				l.write(logger, []zap.Field{zap.Int("w", w), zap.Int("i", i)})
			}
		}()
	}
	wg.Wait()
	l.stop()
	if got := logs.Len(); got != writers*each {
		t.Fatalf("%d lines written before stop returned, want %d", got, writers*each)
	}
	l.write(logger, []zap.Field{zap.Int("w", -1)})
	l.stop() // a second stop is harmless
	seen := map[[2]int64]int{}
	for _, e := range logs.All() {
		if e.Message != "llm call" {
			t.Fatalf("message %q", e.Message)
		}
		m := e.ContextMap()
		w, _ := m["w"].(int64)
		i, _ := m["i"].(int64)
		seen[[2]int64{w, i}]++
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
