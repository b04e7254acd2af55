package analytics

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
)

// warmTargets are the requests Warm makes: what the dashboard asks for on
// its Cost and Identity views and the default endpoints, over the windows
// with whole past days (the 24h ones fill SQLite's page cache).
var warmTargets = func() []string {
	var t []string
	for _, w := range []string{"30d", "7d", "24h", "all"} {
		for _, p := range []string{"by_key", "by_user", "by_team"} {
			t = append(t, p+"?window="+w)
		}
		for _, g := range []string{"model", "provider", "key", "user", "team", "workspace"} {
			t = append(t, "cost?group_by="+g+"&window="+w)
		}
	}
	return append(t, "cost?group_by=session&window=30d", "cost?group_by=session&window=7d",
		"cost?group_by=session&window=all")
}()

// serialKey marks a context whose aggregates read their units one at a
// time (Warm's: one core at most).
type serialKey struct{}

// Warm fills the day cache with the whole past days of the answers the
// dashboard and the default endpoints ask for (by_key, by_user, by_team and
// /analytics/cost by model, provider, key, user, team, workspace and
// session, over 30d, 7d, 24h and all), one query at a time, so that the first
// such request after a start does not read them. The answers are the same
// with or without it. It stops early and returns ctx's error when ctx is
// done; other errors are logged and skipped.
func (h *Handler) Warm(ctx context.Context) error {
	ctx = context.WithValue(ctx, serialKey{}, true)
	for _, target := range warmTargets {
		if err := ctx.Err(); err != nil {
			return err
		}
		r, err := http.NewRequestWithContext(ctx, http.MethodGet, "/analytics/"+target, nil)
		if err != nil {
			return err
		}
		name, _, _ := strings.Cut(target, "?")
		fn, _ := h.analyticsRoute(name)
		if _, err := fn(ctx, r); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			h.log.Warn("warming the analytics cache", zap.String("request", r.URL.String()), zap.Error(err))
		}
	}
	return nil
}

// warmer is the background warm-up StartWarming runs.
type warmer struct {
	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
}

// warmAfterMidnight is how long after each UTC midnight StartWarming warms
// again: the windows' whole past days have moved on by one.
const warmAfterMidnight = 10 * time.Second

// StartWarming runs Warm in the background now and again shortly after
// every UTC midnight, until Close. Calling it again while it runs does
// nothing.
func (h *Handler) StartWarming() {
	h.warm.mu.Lock()
	defer h.warm.mu.Unlock()
	if h.warm.done != nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.warm.cancel, h.warm.done = cancel, make(chan struct{})
	go func(done chan struct{}) {
		defer close(done)
		for {
			start := time.Now()
			if err := h.Warm(ctx); err != nil && !errors.Is(err, context.Canceled) {
				h.log.Warn("warming the analytics cache", zap.Error(err))
			}
			if ctx.Err() == nil {
				h.log.Debug("warmed the analytics cache", zap.Duration("took", time.Since(start)))
			}
			now := h.now().UTC()
			next := now.Truncate(24 * time.Hour).Add(24*time.Hour + warmAfterMidnight)
			t := time.NewTimer(next.Sub(now))
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
	}(h.warm.done)
}

// Close stops the background warm-up, if any, and waits for it to end. The
// Handler still answers requests afterwards.
func (h *Handler) Close() {
	h.warm.mu.Lock()
	cancel, done := h.warm.cancel, h.warm.done
	h.warm.cancel, h.warm.done = nil, nil
	h.warm.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}
