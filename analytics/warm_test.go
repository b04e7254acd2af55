package analytics

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// TestWarmAnswersLikeAnUnwarmedHandler: after Warm, every request it
// warmed (and others) gets exactly the answer a new handler gives, and the
// warm-up did fill the cache.
func TestWarmAnswersLikeAnUnwarmedHandler(t *testing.T) {
	f := newFixture(t, 21, 600)
	opts := Options{Now: func() time.Time { return testNow }}
	warmed := New(f.st.ReadDB(), opts)
	if err := warmed.Warm(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(warmed.cache.entries) == 0 {
		t.Fatal("Warm cached nothing")
	}
	targets := append([]string(nil), warmTargets...)
	targets = append(targets, "by_key?window=all", "cost?group_by=hour&window=30d", "cost?window=7d&user=alice",
		"cost?group_by=session&window=30d&limit=3", "by_team?window=30d&team=eng")
	for _, target := range targets {
		want := httptest.NewRecorder()
		New(f.st.ReadDB(), opts).ServeHTTP(want, httptest.NewRequest(http.MethodGet, "/analytics/"+target, nil))
		got := httptest.NewRecorder()
		warmed.ServeHTTP(got, httptest.NewRequest(http.MethodGet, "/analytics/"+target, nil))
		if got.Code != 200 || got.Body.String() != want.Body.String() {
			t.Errorf("%s after Warm: %d %s\nunwarmed: %d %s", target, got.Code, got.Body, want.Code, want.Body)
		}
	}
}

// TestCloseStopsTheWarmUp: Close cancels a running warm-up and returns once
// it has stopped — nothing reads the database afterwards, so closing the
// store then logs no error — and a second Close, or a Close without a
// warm-up, is harmless.
func TestCloseStopsTheWarmUp(t *testing.T) {
	f := newFixture(t, 22, 300)
	core, logs := observer.New(zap.DebugLevel)
	h := New(f.st.ReadDB(), Options{Now: func() time.Time { return testNow }, Logger: zap.New(core)})
	h.StartWarming()
	h.StartWarming() // no second warm-up
	done := warmDone(h)
	closed := make(chan struct{})
	go func() { h.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return")
	}
	select {
	case <-done:
	default:
		t.Fatal("Close returned before the warm-up stopped")
	}
	h.Close()
	New(f.st.ReadDB(), Options{}).Close()
	if err := f.st.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	for _, e := range logs.All() {
		if e.Level > zap.DebugLevel {
			t.Errorf("logged after Close: %s %v", e.Message, e.Context)
		}
	}
	// A warm-up that ran to its end waits for midnight; Close ends that too.
	g := newFixture(t, 23, 100)
	h = New(g.st.ReadDB(), Options{Now: func() time.Time { return testNow }, Logger: zap.New(core)})
	h.StartWarming()
	deadline := time.Now().Add(10 * time.Second)
	for logs.FilterMessage("warmed the analytics cache").Len() == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if logs.FilterMessage("warmed the analytics cache").Len() == 0 {
		t.Fatal("the warm-up did not finish")
	}
	done = warmDone(h)
	h.Close()
	select {
	case <-done:
	default:
		t.Fatal("Close returned before the warm-up waiting for midnight stopped")
	}
}

// warmDone is the channel h's running warm-up closes when it ends.
func warmDone(h *Handler) chan struct{} {
	h.warm.mu.Lock()
	defer h.warm.mu.Unlock()
	return h.warm.done
}
