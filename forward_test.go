package metis

import (
	"errors"
	"net"
	"net/http"
	"os"
	"testing"
	"time"
)

// A retry-after longer than a Duration holds (centuries, or +Inf) is a
// wait past any max_retry_wait: converted as it stood, it wrapped to a
// negative wait and the gateway retried at once (audit 12B).
func TestRetryAfterBeyondADuration(t *testing.T) {
	for _, h := range []http.Header{
		{"Retry-After": {"99999999999"}},
		{"Retry-After": {"+Inf"}},
		{"Retry-After-Ms": {"10000000000000"}},
	} {
		wait, ok := retryAfter(h)
		if !ok || wait < 24*time.Hour {
			t.Errorf("%v: wait %v (%v), want one longer than any max_retry_wait", h, wait, ok)
		}
	}
	if wait, ok := retryAfter(http.Header{"Retry-After-Ms": {"1500"}}); !ok || wait != 1500*time.Millisecond {
		t.Errorf("retry-after-ms 1500: %v %v", wait, ok)
	}
}

// A timeout connecting to the provider, or to the proxy the environment
// names, is a connection failure (retried, recorded unreachable); one
// waiting for the answer is not.
func TestConnectFailed(t *testing.T) {
	dial := &net.OpError{Op: "dial", Net: "tcp", Err: os.ErrDeadlineExceeded}
	for _, c := range []struct {
		err  error
		want bool
	}{
		{dial, true},
		{&net.OpError{Op: "proxyconnect", Net: "tcp", Err: dial}, true},
		{errors.New("net/http: TLS handshake timeout"), true},
		{errors.New("net/http: timeout awaiting response headers"), false},
		{&net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}, false},
	} {
		if got := connectFailed(c.err); got != c.want {
			t.Errorf("connectFailed(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}
