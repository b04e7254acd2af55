package sqlitefile

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// WriteGate orders the write transactions that one process's pools make
// on one database file, first come first served.
//
// SQLite has one write lock per file, and a connection that finds it taken
// sleeps and polls (the busy timeout) rather than queueing: a writer that
// commits batch after batch, as the trace writer does on storage slower
// than the gateway's traffic, takes the lock again within microseconds of
// releasing it, so another pool's writer (the budget ledger's reservation)
// may poll for its whole timeout without ever finding the lock free. Pools
// of the same process that take the gate before they begin a write
// transaction, and give it back after the commit or rollback, reach the
// lock in the order they asked for it; the busy timeout is left to other
// processes (the CLI, a second gateway).
//
// A pool takes its connection first and the gate second, never the other
// way round: a pool's single connection may be held by a goroutine waiting
// for the gate, and a gate holder never waits for another pool's
// connection, so there is no cycle.
type WriteGate struct {
	path string
	ch   chan struct{} // holds one value while the gate is taken
	refs int           // guarded by gatesMu
	// batchHold is how long the trace writer's last transaction held the
	// gate (NoteBatchHold), in nanoseconds.
	batchHold atomic.Int64
}

var (
	gatesMu sync.Mutex
	gates   = map[string]*WriteGate{}
)

// AcquireGate returns the write gate of the database file at the absolute
// path (as Prepare returns it), shared by every holder in this process.
// Call Release when the pool that uses it closes.
func AcquireGate(abs string) *WriteGate {
	gatesMu.Lock()
	defer gatesMu.Unlock()
	g := gates[abs]
	if g == nil {
		g = &WriteGate{path: abs, ch: make(chan struct{}, 1)}
		gates[abs] = g
	}
	g.refs++
	return g
}

// Release gives back one AcquireGate; the gate is forgotten once no holder
// is left. It is a no-op on a nil gate.
func (g *WriteGate) Release() {
	if g == nil {
		return
	}
	gatesMu.Lock()
	defer gatesMu.Unlock()
	if g.refs--; g.refs == 0 && gates[g.path] == g {
		delete(gates, g.path)
	}
}

// Lock takes the gate, after the holders that asked before (a Go channel
// hands its slot to blocked senders in arrival order), or returns ctx's
// error if ctx ends first. A nil gate is always free.
func (g *WriteGate) Lock(ctx context.Context) error {
	if g == nil {
		return nil
	}
	select {
	case g.ch <- struct{}{}:
		return nil
	default:
	}
	select {
	case g.ch <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Unlock gives the gate to the next in line. A nil gate is a no-op.
func (g *WriteGate) Unlock() {
	if g == nil {
		return
	}
	<-g.ch
}

// NoteBatchHold records how long the trace writer's last transaction held
// the gate, so that the budget ledger may take as long a turn for the
// transactions queued behind one of its own (time-fair turns on slow
// storage). A nil gate is a no-op.
func (g *WriteGate) NoteBatchHold(d time.Duration) {
	if g != nil {
		g.batchHold.Store(int64(d))
	}
}

// BatchHold is the hold NoteBatchHold last recorded (0 for a nil gate).
func (g *WriteGate) BatchHold() time.Duration {
	if g == nil {
		return 0
	}
	return time.Duration(g.batchHold.Load())
}
