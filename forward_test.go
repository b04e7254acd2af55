package metis

import (
	"net/http"
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
