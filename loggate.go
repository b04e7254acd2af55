package metis

import (
	"sync"
	"time"

	"github.com/metisgateway/metis/internal/loggate"
)

// logGate lets a log line through at most once per period.
type logGate = loggate.Gate

// burstLog logs events that come in bursts (every budgeted call while the
// ledger is locked) without a line each, and without losing count: the
// first event of a burst is logged at once, and at the end of each period
// in which more came, one line gives how many; a burst's last events are
// told at most one period after them. The zero value is ready.
type burstLog struct {
	mu      sync.Mutex
	open    bool          // a period is running (its timer armed)
	pending int64         // events since the period began, not yet told
	more    func(n int64) // the current burst's count line
}

// add records one event: first logs it when it opens a burst, otherwise
// more is called with the count at the end of the period.
func (b *burstLog) add(period time.Duration, first func(), more func(n int64)) {
	b.mu.Lock()
	if b.open {
		b.pending++
		b.mu.Unlock()
		return
	}
	b.open, b.more = true, more
	b.mu.Unlock()
	first()
	var tick func()
	tick = func() {
		b.mu.Lock()
		n := b.pending
		b.pending = 0
		if n == 0 {
			b.open = false // the burst is over
		} else {
			time.AfterFunc(period, tick)
		}
		b.mu.Unlock()
		if n > 0 {
			more(n)
		}
	}
	time.AfterFunc(period, tick)
}

// flush tells the events of the period running now at once, as a config
// stops: a process exiting after it would never tell them.
func (b *burstLog) flush() {
	b.mu.Lock()
	n, more := b.pending, b.more
	b.pending = 0
	b.mu.Unlock()
	if n > 0 {
		more(n)
	}
}
