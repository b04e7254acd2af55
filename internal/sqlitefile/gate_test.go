package sqlitefile

import (
	"context"
	"errors"
	"testing"
	"time"
)

// A writer that gives the gate back and asks again at once (the trace
// writer between two batches) goes behind the pool that was waiting.
func TestWriteGateHandsOverInArrivalOrder(t *testing.T) {
	g := AcquireGate("/db/a.db")
	defer g.Release()
	ctx := context.Background()
	if err := g.Lock(ctx); err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 2)
	waiting := make(chan struct{})
	go func() {
		close(waiting)
		if err := g.Lock(ctx); err != nil {
			t.Error(err)
			return
		}
		got <- "ledger"
		g.Unlock()
	}()
	<-waiting
	time.Sleep(50 * time.Millisecond) // the ledger is queued
	g.Unlock()
	if err := g.Lock(ctx); err != nil {
		t.Fatal(err)
	}
	got <- "writer"
	g.Unlock()
	if first := <-got; first != "ledger" {
		t.Fatalf("%s took the gate first; the pool that waited should have", first)
	}
}

func TestWriteGateWaitEndsWithContext(t *testing.T) {
	g := AcquireGate("/db/b.db")
	defer g.Release()
	if err := g.Lock(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer g.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	if err := g.Lock(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Lock on a held gate = %v, want the deadline", err)
	}
}

// Pools of one file share a gate; the registry forgets it with the last.
func TestWriteGateSharedPerFile(t *testing.T) {
	a, b := AcquireGate("/db/c.db"), AcquireGate("/db/c.db")
	other := AcquireGate("/db/d.db")
	if a != b || a == other {
		t.Fatal("one gate per file path expected")
	}
	other.Release()
	a.Release()
	if c := AcquireGate("/db/c.db"); c != b {
		t.Fatal("a gate still held was replaced")
	} else {
		c.Release()
	}
	b.Release()
	gatesMu.Lock()
	n := len(gates)
	gatesMu.Unlock()
	if n != 0 {
		t.Fatalf("%d gates left after every holder released", n)
	}
}
