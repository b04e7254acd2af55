package metis

import (
	"io"
	"net/http"
	"testing"
	"time"
)

// heldBody's Read waits to be released, then returns data, whatever Close
// did meanwhile: a read already past the transport's closed check.
type heldBody struct{ entered, release chan struct{} }

func (b *heldBody) Read(p []byte) (int, error) {
	close(b.entered)
	<-b.release
	return copy(p, "data: {}\n\n"), nil
}

func (b *heldBody) Close() error { return nil }

// A read under way when the body is closed (a translated stream's reader
// goroutine, while answer closes the body) does not arm the idle timer
// again: it held the body and its closure for the full 10 minutes (audit
// 12M).
func TestWatchedBodyClosedStaysDisarmed(t *testing.T) {
	hb := &heldBody{entered: make(chan struct{}), release: make(chan struct{})}
	resp := &http.Response{Body: hb}
	watchBody(resp, 10*time.Minute, true, errStreamSilent)
	wb := resp.Body.(*watchedBody)
	done := make(chan struct{})
	go func() { defer close(done); _, _ = io.ReadAll(io.LimitReader(wb, 5)) }()
	<-hb.entered
	_ = wb.Close()
	close(hb.release)
	<-done
	if wb.timer.Stop() {
		t.Fatal("the idle timer was armed again after Close")
	}
}
