package metis

import (
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"
	"golang.org/x/time/rate"

	"github.com/metisgateway/metis/store"
)

// A refusal costs its sender nothing, and each wrote a request.rejected
// row (about 300 bytes with its index entries; the 2-core machine of
// BENCHMARKS.md refuses some 13,000 made-up keys a second, 4 MB/s): anyone
// who can reach a public
// gateway could fill its disk with requests carrying no key. So refusals
// are recorded one by one only up to a rate. Past it they are counted per
// group (key, reason, shape, model) and each group's count is written as
// one request.rejected event with a "count" member every rejectSumEvery,
// so the trace's totals stay exact while a flood writes a few rows a
// second.
const (
	rejectBurst    = 60               // refusals recorded one by one in a burst…
	rejectRate     = 1.0              // …then this many a second
	rejectSumEvery = 10 * time.Second // how often the counted ones are written
	rejectWarnGap  = time.Minute      // the warning that refusals are being summed, at most this often
)

// rejectGroup is what a summed request.rejected event stands for: the
// filters of /analytics/cost match it as they match each refusal.
type rejectGroup struct {
	keyID, reason, shape, model string
}

// maxRejectGroups bounds the groups summed at once; past it, a new group's
// refusals are summed without their model (requested_model "").
const maxRejectGroups = 256

// rejectSum is a group's refusals not yet written.
type rejectSum struct {
	count   int64
	first   time.Time
	last    time.Time
	payload map[string]any // the last refusal's
}

// rejectLimiter decides which refusals are written one by one and sums the
// rest. One is shared by every config that uses the same database.
type rejectLimiter struct {
	enqueue func(store.Event) bool
	// log is the logger of the moment: the limiter is pooled with the
	// store and outlives the config it was made in, whose log writers a
	// reload may close.
	log   func() *zap.Logger
	every time.Duration // rejectSumEvery; shorter in tests

	flushMu sync.Mutex // held for a whole flush, so close waits for the timer's

	mu      sync.Mutex
	buckets map[string]*rate.Limiter // by key id, "" for no valid key
	pending map[rejectGroup]*rejectSum
	timer   *time.Timer
	closed  bool
	warned  logGate // the summing warning, at most every rejectWarnGap
}

func newRejectLimiter(enqueue func(store.Event) bool) *rejectLimiter {
	return &rejectLimiter{enqueue: enqueue, log: func() *zap.Logger { return caddy.Log().Named("metis") }, every: rejectSumEvery,
		buckets: map[string]*rate.Limiter{}, pending: map[rejectGroup]*rejectSum{}}
}

// allow reports whether a refusal at now, of the key keyID ("" when no
// valid key came), is written on its own (always, for a nil limiter). Each
// key has its own allowance, so a flood with no key does not sum the
// refusals of the team's keys. When it is not, the caller passes it to sum.
func (l *rejectLimiter) allow(keyID string, now time.Time) bool {
	if l == nil {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return true
	}
	b := l.buckets[keyID]
	if b == nil {
		if len(l.buckets) >= maxRejectBuckets {
			l.pruneBuckets(now)
		}
		b = rate.NewLimiter(rejectRate, rejectBurst)
		l.buckets[keyID] = b
	}
	return b.AllowN(now, 1)
}

// maxRejectBuckets is how many keys' allowances are kept before the full
// ones (a key not refused for a minute) are forgotten.
const maxRejectBuckets = 1024

// pruneBuckets forgets the allowances that have refilled: a new one would
// be the same.
func (l *rejectLimiter) pruneBuckets(now time.Time) {
	for k, b := range l.buckets {
		if b.TokensAt(now) >= rejectBurst {
			delete(l.buckets, k)
		}
	}
}

// sum counts a refusal allow turned away; payload is built as for one
// written on its own.
func (l *rejectLimiter) sum(g rejectGroup, now time.Time, payload map[string]any) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		l.write(&rejectSum{count: 1, first: now, last: now, payload: payload})
		return
	}
	s := l.pending[g]
	if s == nil && len(l.pending) >= maxRejectGroups {
		g.model, payload["requested_model"] = "", ""
		s = l.pending[g]
	}
	var done *rejectSum
	if s != nil && !s.first.Truncate(time.Hour).Equal(now.Truncate(time.Hour)) {
		// A sum is dated at its last refusal: one that crossed a UTC hour
		// (and so maybe a day's or a month's end) would move its earlier
		// refusals into the later period's counts (review 28T).
		done, s = s, nil
	}
	if s == nil {
		s = &rejectSum{first: now}
		l.pending[g] = s
	}
	s.count++
	s.last, s.payload = now, payload
	if l.timer == nil {
		l.timer = time.AfterFunc(l.every, l.flush)
	}
	l.mu.Unlock()
	if done != nil {
		l.flushMu.Lock()
		l.write(done)
		l.flushMu.Unlock()
	}
	if l.warned.Allow(rejectWarnGap) {
		l.log().Warn("refused requests are arriving faster than the trace records them one by one: it writes each reason's count every 10s (request.rejected events with a count)",
			zap.String("reason", g.reason), zap.String("inbound_shape", g.shape), zap.String("key_id", g.keyID))
	}
}

// flush writes the pending sums.
func (l *rejectLimiter) flush() {
	l.flushMu.Lock()
	defer l.flushMu.Unlock()
	l.mu.Lock()
	pending := l.pending
	l.pending = map[rejectGroup]*rejectSum{}
	l.timer = nil
	l.mu.Unlock()
	for _, s := range pending {
		l.write(s)
	}
}

// write enqueues one group's sum as a request.rejected event, dated at its
// last refusal.
func (l *rejectLimiter) write(s *rejectSum) {
	p := s.payload
	p["count"] = s.count
	if s.count > 1 {
		p["first_timestamp_us"] = s.first.UnixMicro()
	}
	if !l.enqueue(store.Event{Type: store.TypeRequestRejected, Time: s.last, Payload: p}) {
		mDropped.Inc()
	}
}

// close writes what is pending; refusals after it are written one by one
// (to a store that is closing, so they count as dropped).
func (l *rejectLimiter) close() {
	l.mu.Lock()
	l.closed = true
	if l.timer != nil {
		l.timer.Stop()
	}
	l.mu.Unlock()
	l.flush()
}
