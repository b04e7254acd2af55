package metis

import (
	"errors"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// errorBodyWait is the most an error or redirect answer's body may take to
// arrive after its headers (the provider's timeout, when shorter).
const errorBodyWait = 30 * time.Second

// streamSilence is the shortest a provider's stream may go without a byte
// before the gateway ends it as interrupted; a provider's timeout, when
// longer, is its bound (a variable for tests). The SDKs' own read timeouts
// are 10 minutes.
var streamSilence = 10 * time.Minute

// claudeCodeSilence is the bound for Claude Code's streams to an
// Anthropic-type provider instead: below its own stream idle watchdog (5
// minutes, which the gateway's keep-alives would reset), so that a stalled
// provider stream is cut within the time Claude Code gives it without the
// gateway, and Claude Code retries (a variable for tests).
var claudeCodeSilence = 270 * time.Second

var (
	// errBodyStalled is the read error of an error answer's body that did
	// not arrive within its bound.
	errBodyStalled = errors.New("the provider's answer stopped arriving")
	// errStreamSilent is the read error of a stream silent for its bound.
	errStreamSilent = errors.New("the provider's stream sent nothing for too long")
)

// watchedBody is a provider's response body that a timer closes when it is
// late: d after it was watched, or, idle, after d spent waiting in one Read
// (the provider silent that long). Reads then fail with err.
type watchedBody struct {
	io.ReadCloser
	d       time.Duration
	idle    bool
	err     error
	timer   *time.Timer
	expired atomic.Bool
	mu      sync.Mutex // orders a read's Reset after Close's Stop
	closed  bool
}

// watchBody replaces resp.Body with a watchedBody (see there).
func watchBody(resp *http.Response, d time.Duration, idle bool, err error) {
	b := &watchedBody{ReadCloser: resp.Body, d: d, idle: idle, err: err}
	b.timer = time.AfterFunc(d, func() {
		b.expired.Store(true)
		_ = b.ReadCloser.Close()
	})
	resp.Body = b
}

func (b *watchedBody) Read(p []byte) (int, error) {
	if b.idle {
		// Only the time spent waiting for the provider counts: a client
		// slow to take the answer holds the relay in its write, outside
		// Read, with the provider's answer waiting in the connection; that
		// is not the provider's silence (review 30H: a client paused past
		// the bound lost an answer the provider had sent whole).
		b.arm(true)
		defer b.arm(false)
	}
	n, err := b.ReadCloser.Read(p)
	if err != nil && err != io.EOF && b.expired.Load() {
		err = b.err
	}
	return n, err
}

// arm starts the idle timer for a Read, or stops it after one. A Read under
// way when the body is closed (a translated stream's reader goroutine) must
// not arm it again: it would hold the body for d.
func (b *watchedBody) arm(on bool) {
	b.mu.Lock()
	if !b.closed {
		if on {
			b.timer.Reset(b.d)
		} else {
			b.timer.Stop()
		}
	}
	b.mu.Unlock()
}

// Close stops the timer and closes the body.
func (b *watchedBody) Close() error {
	b.mu.Lock()
	b.closed = true
	b.timer.Stop()
	b.mu.Unlock()
	return b.ReadCloser.Close()
}
