package store

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"
	"go.uber.org/zap"
)

// Event types written by the gateway (contract §5).
const (
	TypeRouteDecided    = "route.decided"
	TypeCallCompleted   = "llm.call_completed"
	TypeTurnCompleted   = "turn.completed"
	TypeRequestRejected = "request.rejected"
)

// JSONAppender is implemented by event payloads that encode themselves
// without reflection. AppendJSON must append exactly what encoding/json
// would marshal; on an error the writer falls back to encoding/json.
type JSONAppender interface {
	AppendJSON(dst []byte) ([]byte, error)
}

// Event is one row of the events table.
type Event struct {
	// ID is the event's ULID; zero means Enqueue assigns one from NewID, so
	// ids follow enqueue order.
	ID ulid.ULID
	// Type is one of the Type* constants (or another dotted name).
	Type string
	// Time becomes timestamp_us; zero means the time of Enqueue.
	Time time.Time
	// Payload is JSON-marshalled by the writer goroutine, not the caller, so
	// it must not be mutated after Enqueue. For TypeCallCompleted it must be
	// a *Call (a Call value or a JSON-compatible map is decoded into one).
	// A payload that is a JSONAppender encodes itself. nil is stored as {}.
	Payload any
}

var (
	idMu      sync.Mutex
	idEntropy = ulid.Monotonic(rand.Reader, 0)
	idLastMS  uint64     // the millisecond of the last id
	idNow     = ulid.Now // the clock, a test's to set
)

// NewID returns a process-wide monotonic ULID: each id is greater than every
// id returned before it, also when the wall clock steps back (an NTP
// correction): its ids keep the last millisecond until the clock passes it
// again. It is used for event, turn and key ids.
func NewID() ulid.ULID {
	idMu.Lock()
	defer idMu.Unlock()
	ms := max(idNow(), idLastMS)
	idLastMS = ms
	id, err := ulid.New(ms, idEntropy)
	if err != nil {
		// Only on entropy overflow within one millisecond (2^80 ids) or a
		// failing crypto/rand: the next millisecond, with a fresh generator.
		idEntropy = ulid.Monotonic(rand.Reader, 0)
		idLastMS = ms + 1
		id = ulid.MustNew(idLastMS, idEntropy)
	}
	return id
}

// ErrWriteFailed is returned by Sync when some of the events it waited for
// were dropped after a failed write.
var ErrWriteFailed = errors.New("some events could not be written")

// Enqueue hands events to the writer. It never blocks and never touches the
// disk: the events are accepted together, in order, or not at all. It
// returns false, counting the events as dropped (logged at most once per
// 10s), when the queue is full or the store is closed; it is safe to call
// concurrently and after Close.
func (s *Store) Enqueue(evs ...Event) bool {
	n := len(evs)
	if n == 0 {
		return true
	}
	var now time.Time
	s.qmu.Lock()
	if s.closed {
		s.qmu.Unlock()
		s.drop(n, "store closed")
		return false
	}
	if s.enqSeq-s.doneSeq+uint64(n) > uint64(s.qcap) {
		s.qmu.Unlock()
		s.drop(n, "queue full")
		return false
	}
	before := len(s.queue)
	for _, ev := range evs {
		if ev.ID.IsZero() {
			ev.ID = NewID()
		}
		if ev.Time.IsZero() {
			if now.IsZero() {
				now = time.Now()
			}
			ev.Time = now
		}
		s.queue = append(s.queue, ev)
	}
	s.enqSeq += uint64(n)
	bs := s.opts.Load().BatchSize
	wake := before == 0 || (before < bs && len(s.queue) >= bs)
	s.qmu.Unlock()
	s.enqueued.Add(uint64(n))
	if wake {
		s.nudge()
	}
	return true
}

// nudge wakes the writer without blocking.
func (s *Store) nudge() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// drop counts n dropped events and logs, rate-limited to once per 10s.
func (s *Store) drop(n int, reason string) {
	total := s.dropped.Add(uint64(n))
	now := time.Now().UnixNano()
	last := s.lastDropLog.Load()
	if now-last < int64(10*time.Second) || !s.lastDropLog.CompareAndSwap(last, now) {
		return
	}
	s.logger().Warn("trace events dropped",
		zap.String("reason", reason), zap.Int("events", n), zap.Uint64("dropped_total", total))
}

// Sync returns when every event enqueued before the call has been committed
// (or dropped after a failed write, reported as ErrWriteFailed), or when ctx
// ends. It asks the writer to commit a partial batch without waiting.
func (s *Store) Sync(ctx context.Context) error {
	s.qmu.Lock()
	target, start := s.enqSeq, s.doneSeq
	if target > s.flushUntil {
		s.flushUntil = target
	}
	s.qmu.Unlock()
	s.nudge()
	for {
		s.qmu.Lock()
		done, failed, ch := s.doneSeq, s.failedSeq, s.progress
		s.qmu.Unlock()
		if done >= target {
			if failed > start {
				return fmt.Errorf("syncing trace store: %w", ErrWriteFailed)
			}
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("syncing trace store: %w", ctx.Err())
		}
	}
}

// runWriter is the single writer goroutine: it waits for events, lets a
// partial batch fill for up to FlushInterval, then commits the queue in
// transactions of at most BatchSize events. After Close it drains the queue,
// persists pending key last-used times and exits.
// A round of the writer that took at least busyRound events marks a busy
// gateway: the next round may wait busyWaitFactor/2 × FlushInterval (50 ms
// by default) to gather more. At the benchmark's full load this gives ~5
// points of throughput; at c=1 (about 120 events per 20 ms) nothing changes.
const (
	busyRound      = 512
	busyWaitFactor = 5
)

func (s *Store) runWriter() {
	defer close(s.writerDone)
	ctx := context.Background()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	var w batchWriter
	last := 0             // events taken in the previous round
	var usedTry time.Time // the last save of last-used times made while idle
	defer func() {
		// Before writerDone closes and Close closes the pool.
		if err := w.closeStmts(ctx, s); err != nil {
			s.logger().Warn("closing trace writer statements", zap.Error(err))
		}
	}()
	for {
		opts := s.opts.Load()
		s.qmu.Lock()
		if len(s.queue) == 0 {
			closed := s.closed
			s.qmu.Unlock()
			if closed {
				break
			}
			if s.abandoned || !s.pendingLastUsed() {
				<-s.wake
				continue
			}
			// A key used since the last save (within lastUsedEvery of it,
			// so its batch did not save it) gets its time saved once the
			// interval is up, not when some later event comes: on a quiet
			// gateway that could be hours, with list-keys showing a used
			// key as never used (audit 15E).
			since := w.lastUsedSave
			if usedTry.After(since) {
				since = usedTry
			}
			if wait := lastUsedEvery - time.Since(since); wait > 0 {
				timer.Reset(wait)
				select {
				case <-s.wake:
				case <-timer.C:
				}
				timer.Stop()
				continue
			}
			usedTry = time.Now()
			s.commit(ctx, &w, nil, false)
			continue
		}
		// A partial batch waits up to FlushInterval for more events unless
		// the store is closing or a Sync is waiting for it; after a busy
		// round it waits longer, so that a loaded gateway commits fewer,
		// larger transactions (each commit rewrites the B-trees' last pages
		// and every rollup row it touches) while a quiet one keeps short
		// bursts of writer work.
		wait := opts.FlushInterval
		if last >= busyRound {
			wait = wait * busyWaitFactor / 2
		}
		deadline := time.Now().Add(wait)
		for len(s.queue) < opts.BatchSize && !s.closed && s.flushUntil <= s.takenSeq {
			wait := time.Until(deadline)
			if wait <= 0 {
				break
			}
			s.qmu.Unlock()
			timer.Reset(wait)
			select {
			case <-s.wake:
			case <-timer.C:
			}
			timer.Stop()
			s.qmu.Lock()
			if s.opts.Load() != opts {
				break // reconfigured: this batch waited by the old settings
			}
		}
		cur := s.queue
		s.queue = s.spare[:0]
		s.takenSeq += uint64(len(cur))
		s.qmu.Unlock()
		last = len(cur)

		for rest := cur; len(rest) > 0; {
			n := w.take(len(rest), opts.BatchSize)
			s.commit(ctx, &w, rest[:n], false)
			rest = rest[n:]
		}
		// Reuse the drained slice for the next swap, its events let go
		// (a burst's slice would otherwise keep them until overwritten).
		clear(cur)
		s.qmu.Lock()
		s.spare = cur[:0]
		s.qmu.Unlock()
	}
	if s.pendingLastUsed() && !s.abandoned {
		s.commit(ctx, &w, nil, true)
	}
	if s.abandonedN > 0 {
		s.logger().Error("trace store closed with events unwritten: its database could not be written",
			zap.String("path", s.path), zap.Int("events_dropped", s.abandonedN))
	}
}

// commit writes one batch (see retryWrite for failures). It advances
// doneSeq and wakes Sync callers. An event whose payload cannot be encoded
// is dropped on its own.
func (s *Store) commit(ctx context.Context, w *batchWriter, batch []Event, forceLastUsed bool) {
	var bad badEvents
	var err error
	if s.abandoned {
		// Dropped untried (see abandon), without encoding them.
		s.lose(len(batch))
		s.abandonedN += len(batch)
		err = errAbandoned
	} else {
		bad = w.prepare(batch)
		if bad.n > 0 {
			s.lose(bad.n)
			s.logger().Error("trace events dropped: payload not encodable",
				zap.Int("events", bad.n), zap.String("type", bad.typ), zap.Error(bad.err))
		}
		if err = w.write(ctx, s, forceLastUsed); err != nil {
			err = s.retryWrite(ctx, w, forceLastUsed, err)
		}
		if err == nil && len(w.rows) > 0 {
			s.written.Add(uint64(len(w.rows)))
			s.batches.Add(1)
			w.fit(len(w.rows), w.held, s.opts.Load().BatchSize)
			s.gate.NoteBatchHold(w.held)
		}
		w.reset()
	}
	clear(batch) // release payloads
	if len(batch) == 0 {
		return
	}
	s.qmu.Lock()
	s.doneSeq += uint64(len(batch))
	if err != nil || bad.n > 0 {
		s.failedSeq = s.doneSeq
	}
	close(s.progress)
	s.progress = make(chan struct{})
	s.qmu.Unlock()
}

// errAbandoned fails the batches committed after abandon.
var errAbandoned = errors.New("trace store closed while its database could not be written")

// A write that fails for a reason SQLite calls transient (the disk or the
// database full, the database locked past its busy timeout, an I/O error,
// a read-only or unopenable file) is retried for as long as the failure
// lasts, waiting retryFirst and then twice as long each time up to
// retryMax: the batch stays in memory and Enqueue goes on accepting events
// until the queue is full, so an operator who frees the disk loses nothing.
// Any other error gets one retry and then the batch is dropped. A store
// that is closing gives up on a transient failure after closeGrace.
const (
	retryFirst    = 50 * time.Millisecond
	retryMax      = 5 * time.Second
	retryLogEvery = 30 * time.Second
)

// retryWrite retries the prepared batch after its first attempt failed with
// err, and returns nil once it is written or the last error once it is
// dropped.
func (s *Store) retryWrite(ctx context.Context, w *batchWriter, forceLastUsed bool, err error) error {
	first := time.Now()
	droppedBefore := s.dropped.Load()
	s.writeFailed()
	if isTransient(err) && s.closingFor() >= closeGrace {
		return s.abandon(w, err)
	}
	logged := first.Sub(s.failLogAt) >= failLogEvery
	if logged {
		s.logger().Error("trace store write failed; retrying",
			zap.String("path", s.path), zap.Int("events", len(w.rows)), zap.Error(err),
			zap.Int("failed_batches_not_logged", s.failQuiet))
		s.failLogAt, s.failQuiet = first, 0
	} else {
		s.failQuiet++
	}
	lastLog := first
	wait := retryFirst
	for attempt := 2; ; attempt++ {
		if s.closingFor() > 0 {
			time.Sleep(min(wait, closeRetry)) // closing: retry briefly until closeGrace
		} else {
			s.sleepUnlessClosing(wait)
		}
		if err = w.write(ctx, s, forceLastUsed); err == nil {
			if attempt > 2 {
				s.logger().Warn("trace store writes resumed", zap.String("path", s.path),
					zap.Int("failed_attempts", attempt-1), zap.Duration("after", time.Since(first)),
					zap.Uint64("events_dropped_meanwhile", s.dropped.Load()-droppedBefore))
			}
			return nil
		}
		s.writeFailed()
		if isTransient(err) && s.closingFor() >= closeGrace {
			return s.abandon(w, err)
		}
		if !isTransient(err) {
			s.lose(len(w.rows))
			if logged {
				s.logger().Error("trace store write failed again; batch dropped (such failures are logged once per 10s; the metrics count every dropped event)",
					zap.String("path", s.path), zap.Int("events", len(w.rows)), zap.Error(err))
			}
			return err
		}
		if time.Since(lastLog) >= retryLogEvery {
			lastLog = time.Now()
			s.logger().Error("trace store writes still failing; events held in memory until they succeed "+
				"(if the database file was moved or deleted, restart the gateway)",
				zap.String("path", s.path), zap.Duration("for", time.Since(first)),
				zap.Int("events_held", s.Stats().QueueLen), zap.Int("queue_size", s.qcapNow()), zap.Error(err))
		}
		wait = min(2*wait, retryMax)
	}
}

// failLogEvery is how often a failed write is logged at most.
const failLogEvery = 10 * time.Second

// A store that is closing keeps retrying a transient failure, every
// closeRetry at most, for closeGrace after Close (a backup holding the lock
// a few seconds loses nothing), then abandons.
var closeGrace = 10 * time.Second // a variable for tests

const closeRetry = 200 * time.Millisecond

// closingFor is how long ago Close was called; 0 before.
func (s *Store) closingFor() time.Duration {
	s.qmu.Lock()
	defer s.qmu.Unlock()
	if !s.closed {
		return 0
	}
	return max(time.Since(s.closedAt), time.Nanosecond)
}

// abandon gives up writing when the store has been closing for closeGrace
// while its database cannot be written: the batch and every event still
// queued are dropped without more attempts (each could wait out the busy
// timeout), so that a stop is bounded; runWriter logs the total.
func (s *Store) abandon(w *batchWriter, err error) error {
	if !s.abandoned {
		s.abandoned = true
		s.logger().Error("trace store closing while its database cannot be written: the events still queued are dropped",
			zap.String("path", s.path), zap.Int("events_queued", s.Stats().QueueLen), zap.Error(err))
	}
	s.lose(len(w.rows))
	s.abandonedN += len(w.rows)
	return err
}

// sleepUnlessClosing waits d, or less if the store starts closing.
func (s *Store) sleepUnlessClosing(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-s.stopKs:
	}
}

// qcapNow is the queue's capacity.
func (s *Store) qcapNow() int {
	s.qmu.Lock()
	defer s.qmu.Unlock()
	return s.qcap
}

// Hooks tell the store's owner of the writer's failures, for its metrics.
// They run on the writer goroutine and must not block; nil fields are
// skipped.
type Hooks struct {
	// Lost is told of n events that Enqueue accepted and the writer then
	// dropped (a write that kept failing, a payload that did not encode).
	// Enqueue's own refusals are its return value.
	Lost func(n int)
	// WriteFailed is told of each failed transaction attempt.
	WriteFailed func()
}

// SetHooks replaces the store's hooks.
func (s *Store) SetHooks(h Hooks) { s.hooks.Store(&h) }

// lose counts n accepted events as dropped and tells the hook.
func (s *Store) lose(n int) {
	s.dropped.Add(uint64(n))
	if h := s.hooks.Load(); h != nil && h.Lost != nil {
		h.Lost(n)
	}
}

// writeFailed counts a failed transaction attempt and tells the hook.
func (s *Store) writeFailed() {
	s.writeErrors.Add(1)
	if h := s.hooks.Load(); h != nil && h.WriteFailed != nil {
		h.WriteFailed()
	}
}

// encodePayload marshals an event payload, decoding a call's payload into a
// *Call when it is not one already. A *Call or Call is appended to buf
// (which is returned grown, with the payload as its tail) by appendCallJSON;
// other payloads are marshalled into a new slice and buf is returned as is.
func encodePayload(buf []byte, ev *Event) (_, payload []byte, _ *Call, _ error) {
	if ev.Payload == nil {
		if ev.Type == TypeCallCompleted {
			return buf, nil, nil, errors.New("llm.call_completed event without a *Call payload")
		}
		return buf, []byte("{}"), nil, nil
	}
	if ev.Type == TypeCallCompleted {
		var c *Call
		switch p := ev.Payload.(type) {
		case *Call:
			if p == nil {
				return buf, nil, nil, errors.New("llm.call_completed event with a nil *Call")
			}
			c = p
		case Call:
			c = &p
		}
		if c != nil {
			start := len(buf)
			if b, ok := appendCallJSON(buf, c); ok {
				return b, b[start:len(b):len(b)], c, nil
			}
			// Only for what encoding/json rejects: return its error.
			b, err := c.MarshalJSON()
			return buf, b, c, err
		}
	}
	if a, ok := ev.Payload.(JSONAppender); ok && ev.Type != TypeCallCompleted {
		start := len(buf)
		if b, err := a.AppendJSON(buf); err == nil {
			return b, b[start:len(b):len(b)], nil, nil
		}
		// Fall through for encoding/json's error.
	}
	b, err := json.Marshal(ev.Payload)
	if err != nil {
		return buf, nil, nil, err
	}
	if ev.Type != TypeCallCompleted {
		return buf, b, nil, nil
	}
	c := new(Call)
	if err := json.Unmarshal(b, c); err != nil {
		return buf, nil, nil, fmt.Errorf("llm.call_completed payload is not a call: %w", err)
	}
	return buf, b, c, nil
}
