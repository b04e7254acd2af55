package metis

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/metisgateway/metis/adapters/openai"
)

// errShuttingDown is the cause of a call cancelled because its trace store
// is closing: the gateway is stopping (its grace period over) or a reload
// moved the database.
var errShuttingDown = errors.New("the gateway is shutting down")

// closeWait bounds how long closing a store waits for the calls it
// cancelled to write their traces and settle their budgets.
const closeWait = 10 * time.Second

// reloadDrain is how long the calls of a config that is replaced without
// the process exiting (a reload that moves the database, the metis app
// unloaded) may run on before they are cancelled; Caddy leaves their
// connections open. A variable for tests.
var reloadDrain = 2 * time.Minute

// inflight is the set of calls in flight on one trace store, requests
// whose body is still arriving among them (bodyRead). Closing the store
// cancels them and waits for each to end in its trace event and budget
// settlement, so that a call the gateway accepted is never left untraced,
// or its reservation held, by a stop.
type inflight struct {
	mu       sync.Mutex
	calls    map[any]context.CancelCauseFunc
	closing  bool
	finished chan struct{} // closed when closing and no call is left
	hurried  chan struct{} // closed by hurry: close drains no longer
	once     sync.Once
}

func newInflight() *inflight {
	return &inflight{calls: make(map[any]context.CancelCauseFunc), finished: make(chan struct{}), hurried: make(chan struct{})}
}

// hurry ends close's drain at once: the process is exiting.
func (f *inflight) hurry() { f.once.Do(func() { close(f.hurried) }) }

// add registers c (a *call or a *bodyRead), cancelled by cancel when the
// store closes. It is false once the store is closing: the call must be
// refused.
func (f *inflight) add(c any, cancel context.CancelCauseFunc) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closing {
		return false
	}
	f.calls[c] = cancel
	return true
}

// done removes c once its trace and settlement are written.
func (f *inflight) done(c any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.calls, c)
	if f.closing && len(f.calls) == 0 {
		close(f.finished)
	}
}

// idle reports whether no call is in flight.
func (f *inflight) idle() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls) == 0
}

// close waits up to drain (or until hurry) for the calls in flight to
// finish by themselves (new ones still welcome), then refuses new calls,
// cancels those left with errShuttingDown and waits up to wait for them to
// finish. It returns how many had not.
func (f *inflight) close(drain, wait time.Duration) int {
drain:
	for deadline := time.Now().Add(drain); !f.idle() && time.Now().Before(deadline); {
		select {
		case <-f.hurried:
			break drain
		case <-time.After(50 * time.Millisecond):
		}
	}
	f.mu.Lock()
	if f.closing {
		f.mu.Unlock()
		return 0
	}
	f.closing = true
	if len(f.calls) == 0 {
		close(f.finished)
	}
	for _, cancel := range f.calls {
		cancel(errShuttingDown)
	}
	f.mu.Unlock()
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-f.finished:
		return 0
	case <-t.C:
		f.mu.Lock()
		defer f.mu.Unlock()
		return len(f.calls)
	}
}

// bodyRead is a request in flight while its body arrives: the store
// closing ends the read, for the request to be refused and recorded. Once
// the body is read, stopping it does nothing: the call's own cancellation
// answers it (a read deadline then would end the request's context, and
// the call would take the client for gone).
type bodyRead struct {
	w       http.ResponseWriter
	mu      sync.Mutex
	read    bool // the body was read
	stopped bool // stop ended the read
}

// stop ends the read at once, if it is still going: its deadline is now.
func (b *bodyRead) stop(error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.read {
		b.stopped = true
		_ = http.NewResponseController(b.w).SetReadDeadline(time.Now())
	}
}

// finish marks the body read and reports whether stop had ended the read.
func (b *bodyRead) finish() (stopped bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.read = true
	return b.stopped
}

// shuttingDown reports whether c was cancelled because its store closed.
func (c *call) shuttingDown() bool {
	return errors.Is(context.Cause(c.ctx), errShuttingDown)
}

// tellShutdown answers a call cancelled before any of its answer was
// written because the store closed: the client is still waiting, and a
// retry (to this gateway once restarted, or another) can succeed.
func (c *call) tellShutdown() {
	if c.shuttingDown() {
		c.status = http.StatusServiceUnavailable
		if c.turnID != "" {
			setRequestIDHeader(c.w.Header(), c.shape, c.turnID) // as c.writeError
		}
		writeAPIError(c.w, c.shape, shutdownRefusal())
	}
}

// shutdownRefusal is the answer to a request the gateway cannot serve
// because it is stopping: a 503 that tells the client to retry.
func shutdownRefusal() *apiError {
	return reject(http.StatusServiceUnavailable, "shutting_down", "the gateway is shutting down; retry the request")
}

// streamError is the error event that ends a stream cut short, in the
// client's shape.
func (c *call) streamError(msg string) []byte {
	if c.cross {
		return c.streamTr.Error("api_error", msg)
	}
	if c.kind == kindResponses && c.obs != nil {
		return openai.AppendResponsesError(nil, c.obs.rsp.Sequence()+1, "server_error", msg)
	}
	return streamErrorEvent(c.shape, msg)
}
