package metis

import (
	"sync/atomic"
	"time"
)

// logGate lets a log line through at most once per period, whichever
// goroutine asks; the zero value is ready and lets the first one through.
type logGate struct {
	last atomic.Int64 // clockStart-relative ns (plus the period) of the last line let through
}

// allow reports whether a line may be logged now, and if so starts a new
// period.
func (g *logGate) allow(period time.Duration) bool {
	now := int64(time.Since(clockStart)) + int64(period) // monotonic, and ≥ period on the first call
	last := g.last.Load()
	return now-last >= int64(period) && g.last.CompareAndSwap(last, now)
}

// clockStart anchors logGate's monotonic clock.
var clockStart = time.Now()
