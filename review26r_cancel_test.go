//go:build cgo

package metis

import (
	"context"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// Review 26R: promptBilled reads c.unanswered, which a connection that
// failed after its request went out sets for the rest of the call. A call
// whose first request was reset (README: "a call whose connection failed
// after its request went out records zero usage marked estimated"), whose
// retry got the provider's 529 (an error answer bills nothing), and whose
// client left while the gateway waited out that 529's retry-after, is
// recorded with the prompt's estimate: nothing the provider was working on
// when the client left. Had the client waited for the 502 or the 529, the
// same provider traffic records $0. The charge depends on the client's
// patience, not on the provider.
func TestCancelDuringARetryWaitRecordsNoPrompt(t *testing.T) {
	var n atomic.Int64
	g, _ := oddUpstream(t, "", func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			conn, _, err := http.NewResponseController(w).Hijack()
			if err != nil {
				t.Error(err)
				return
			}
			if tc, ok := conn.(*net.TCPConn); ok {
				_ = tc.SetLinger(0) // a reset, after the request was read
			}
			_ = conn.Close()
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Retry-After", "4")
		w.WriteHeader(529)
		_, _ = w.Write([]byte(`{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`))
	})
	_, tok := e2eKey(g, "reset-then-529")
	prompt := strings.Repeat("All work and no play makes Jack a dull boy. ", 500) // 22 KB
	ctx, cancel := context.WithTimeout(context.Background(), 2500*time.Millisecond)
	defer cancel()
	if resp, err := e2ePostCtx(ctx, g, "/v1/messages", tok,
		`{"model":"claude-haiku-4-5","max_tokens":16,"messages":[{"role":"user","content":"`+prompt+`"}]}`, e2eAnthropicHdr...); err == nil {
		resp.Body.Close()
		t.Fatalf("got an answer (%d) before the retry-after ended", resp.StatusCode)
	}
	if got := n.Load(); got != 2 {
		t.Fatalf("the provider got %d requests, want 2 (the reset one and the 529)", got)
	}
	call := e2eCalls(g, 1)[0]
	e2eWant(t, "call", call, map[string]any{"status": 499, "error_class": "CANCELLED"})
	if in := num(call, "input_tokens"); in != 0 {
		t.Errorf("input_tokens %d, cost %v: the provider's answers were a reset (recorded as zero when the call ends there) "+
			"and a 529 (bills nothing); the client leaving during the 529's retry-after must not charge the prompt", in, call["cost_usd"])
	}
}
