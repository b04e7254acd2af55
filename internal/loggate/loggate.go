// Package loggate spaces log lines that a failing dependency would write
// once per request.
package loggate

import (
	"sync/atomic"
	"time"
)

// Gate lets a log line through at most once per period, whichever
// goroutine asks; the zero value is ready and lets the first one through.
type Gate struct {
	last atomic.Int64 // clockStart-relative ns (plus the period) of the last line let through
}

// Allow reports whether a line may be logged now, and if so starts a new
// period.
func (g *Gate) Allow(period time.Duration) bool {
	now := int64(time.Since(clockStart)) + int64(period) // monotonic, and ≥ period on the first call
	last := g.last.Load()
	return now-last >= int64(period) && g.last.CompareAndSwap(last, now)
}

// clockStart anchors Gate's monotonic clock: a wall clock stepped back
// would silence it for the length of the step.
var clockStart = time.Now()
