package metis

// Found by a chaos run (review 27C): a retry that the provider receives
// whole and then drops (connection closed before any header) right after
// a 429 on the same keep-alive connection is taken for "the provider
// closed the connection of its error answer under the retry" (audit 24K)
// and sent again. That resend went uncounted: the trace's attempts was
// less than the requests the provider received. It is still sent (once
// an error answer, not against max_retries), and now counted in attempts,
// as the resend after a stale pooled connection is.

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/metisgateway/metis/internal/fakeupstream"
)

func TestAttemptsCountAResendOnAnErrorsConnection(t *testing.T) {
	for _, c := range []struct {
		name   string
		script []string // per request: 429, drop, 500, ok
		want   int      // requests the provider receives
		status int
	}{
		// 429, then a request the provider reads and drops, then success.
		{"429-drop-ok", []string{"429", "drop", "ok"}, 3, 200},
		// max_retries 2 allows three requests, and the resend a fourth.
		{"429-drop-500-500", []string{"429", "drop", "500", "500"}, 4, 500},
		// One resend for each error answer (it was 5 requests for
		// attempts 3).
		{"429-drop-429-drop", []string{"429", "drop", "429", "drop", "500"}, 5, 500},
	} {
		t.Run(c.name, func(t *testing.T) {
			var n atomic.Int64
			up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.ReadAll(r.Body) // the provider has the whole request
				i := int(n.Add(1)) - 1
				step := "ok"
				if i < len(c.script) {
					step = c.script[i]
				}
				switch step {
				case "429":
					e := fakeupstream.AnthropicError(429, "rate_limit_error", "slow down")
					for k, v := range e.Header {
						w.Header()[k] = v
					}
					w.Header().Set("Retry-After-Ms", "20")
					w.WriteHeader(429)
					_, _ = io.WriteString(w, e.Body)
				case "500":
					e := fakeupstream.AnthropicError(500, "api_error", "internal")
					for k, v := range e.Header {
						w.Header()[k] = v
					}
					w.Header().Set("Retry-After-Ms", "20")
					w.WriteHeader(500)
					_, _ = io.WriteString(w, e.Body)
				case "drop":
					conn, _, err := w.(http.Hijacker).Hijack()
					if err == nil {
						conn.Close()
					}
				default:
					ok := fakeupstream.AnthropicMessage("claude-haiku-4-5", 100, "end_turn", fakeupstream.TextBlock("hello"))
					for k, v := range ok.Header {
						w.Header()[k] = v
					}
					_, _ = io.WriteString(w, ok.Body)
				}
			}))
			defer up.Close()
			g := startGateway(t, gatewayConfig(tempDB(t), up.URL, ""))
			_, tok := e2eKey(g, "attempts")
			resp := g.post("/v1/messages", tok, e2eHaikuBody, e2eAnthropicHdr...)
			body := e2eRead(t, resp)
			if resp.StatusCode != c.status {
				t.Errorf("client got %d %s, want %d", resp.StatusCode, body, c.status)
			}
			call := e2eCalls(g, 1)[0]
			got := int(n.Load())
			if got != c.want {
				t.Errorf("the provider received %d requests, want %d (max_retries 2 and the resends)", got, c.want)
			}
			if a := int(call["attempts"].(float64)); a != got {
				t.Errorf("trace attempts %d, but the provider received %d requests (%v)", a, got, c.script[:min(got, len(c.script))])
			}
		})
	}
}
