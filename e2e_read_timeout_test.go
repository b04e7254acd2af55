//go:build cgo

package metis

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// Caddy's read_body timeout (Go's Server.ReadTimeout), which an operator
// sets to bound how long a client may take to send its request, stays on
// the connection after the body was read: Go's server then reads on in
// the background to see the client leave, that read times out, and the
// request's context is cancelled. A stream longer than read_body was cut
// as a client that left. The gateway lifts the deadline once it has the
// body, so read_body bounds the request and nothing else.
func TestReadBodyTimeoutBoundsTheRequestNotTheAnswer(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		fl := w.(http.Flusher)
		write := func(ev, data string) {
			fmt.Fprintf(w, "event: %s\ndata: %s\n\n", ev, data)
			fl.Flush()
		}
		write("message_start", `{"type":"message_start","message":{"id":"msg_long","type":"message","role":"assistant","model":"claude-haiku-4-5","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":10,"output_tokens":1}}}`)
		write("content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`)
		for range 5 {
			time.Sleep(400 * time.Millisecond)
			write("content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"x"}}`)
		}
		write("content_block_stop", `{"type":"content_block_stop","index":0}`)
		write("message_delta", `{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":5}}`)
		write("message_stop", `{"type":"message_stop"}`)
	}))
	t.Cleanup(up.Close)
	for _, timeouts := range []string{"read_body 1s", "read_body_idle 1s 1000"} {
		t.Run(timeouts, func(t *testing.T) {
			db := tempDB(t)
			g := e2eStartCustom(t, func(gw, an int) string {
				return string(caddyfile.Format([]byte(strings.Replace(testCaddyfile(gatewayConfig(db, up.URL, ""), gw, "\tmetis_gateway", an),
					"\tgrace_period 1s\n", "\tgrace_period 1s\n\tservers {\n\t\ttimeouts {\n\t\t\t"+timeouts+"\n\t\t}\n\t}\n", 1))))
			})
			_, tok := e2eKey(g, "long-stream")
			start := time.Now()
			resp := g.post("/v1/messages", tok, `{"model":"haiku","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"Hi."}]}`, e2eAnthropicHdr...)
			body := e2eRead(t, resp)
			if strings.Count(body, "text_delta") != 5 || !strings.Contains(body, "message_stop") {
				t.Errorf("after %v the client got %d of 5 deltas and no message_stop: the timeout cut the stream\n%s",
					time.Since(start).Round(time.Millisecond), strings.Count(body, "text_delta"), body)
			}
			call := e2eCalls(g, 1)[0]
			e2eWant(t, "call", call, map[string]any{"status": 200, "error_class": nil, "output_tokens": 5, "usage_source": "provider"})

			// A body trickled slower than the bound gets a 408, and never
			// reaches the provider.
			pr, pw := io.Pipe()
			go func() {
				defer pw.Close()
				for _, c := range []byte(`{"model":"haiku","max_tokens":64,"messages":[]}`) {
					if _, err := pw.Write([]byte{c}); err != nil {
						return
					}
					time.Sleep(300 * time.Millisecond)
				}
			}()
			req, _ := http.NewRequest(http.MethodPost, g.URL+"/v1/messages", pr)
			req.ContentLength = int64(len(`{"model":"haiku","max_tokens":64,"messages":[]}`))
			req.Header.Set("X-Api-Key", tok)
			req.Header.Set("Anthropic-Version", "2023-06-01")
			tr := &http.Transport{}
			defer tr.CloseIdleConnections()
			resp, err := (&http.Client{Transport: tr, Timeout: 20 * time.Second}).Do(req)
			if err == nil {
				got := e2eRead(t, resp)
				if resp.StatusCode != http.StatusRequestTimeout {
					t.Errorf("trickled body: %d %s; want 408", resp.StatusCode, got)
				}
			}
			_ = pr.CloseWithError(io.ErrClosedPipe)
			if n := len(e2eCalls(g, 1)); n != 1 {
				t.Errorf("%d calls recorded; the trickled request reached the provider", n)
			}
		})
	}
}
