package metis

import (
	"io"
	"net/http"
	"testing"
	"time"
)

// endless is a body that always has bytes: a provider streaming fast.
type endless struct{}

func (endless) Read(p []byte) (int, error) { return len(p), nil }
func (endless) Close() error               { return nil }

// BenchmarkWatchedBodyRead is one Read of a stream's provider body under
// its silence watch (arming the timer for the Read and stopping it after):
// the cost per read the relay pays, against an unwatched body's.
func BenchmarkWatchedBodyRead(b *testing.B) {
	for _, watched := range []bool{false, true} {
		name := "plain"
		if watched {
			name = "watched"
		}
		b.Run(name, func(b *testing.B) {
			resp := &http.Response{Body: io.NopCloser(nil)}
			resp.Body = endless{}
			if watched {
				watchBody(resp, time.Minute, true, errStreamSilent)
			}
			defer resp.Body.Close()
			buf := make([]byte, 512)
			b.ReportAllocs()
			for range b.N {
				_, _ = resp.Body.Read(buf)
			}
		})
	}
}
