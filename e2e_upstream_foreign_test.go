package metis

// The gateway against quirks of upstreams the project did not write, found
// with a raw-socket Python provider replaying the recorded fixtures (audit
// 13F): each test sends what that provider sent.

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/metisgateway/metis/internal/fakeupstream"
)

// foreignAnthropicStream is the recorded Anthropic stream (394 input and
// 79 output tokens of claude-3-7-sonnet-20250219) as one SSE body.
func foreignAnthropicStream() string {
	return strings.Join(fakeupstream.FromFixture(fakeupstream.FixtureAnthropicStream, 0).Events, "")
}

// A stream whose Content-Type names the media type in another case
// (media types are case-insensitive, RFC 9110 §8.3.1) is not recognised as
// a stream: a same-shape client gets the whole answer at its end, and the
// call is priced from the gateway's estimate instead of the provider's
// usage (recorded $0.013077 for a $0.002367 answer); a cross-shape client
// gets a 502 for an answer the provider generated and bills.
func TestForeignUpstreamStreamContentTypeCase(t *testing.T) {
	body := foreignAnthropicStream()
	g, _ := oddUpstream(t, "", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "Text/Event-Stream; charset=utf-8")
		w.Header().Set("Request-Id", "req_foreign")
		_, _ = io.WriteString(w, body)
	})
	_, tok := e2eKey(g, "ctcase")
	// Same shape (Anthropic client).
	resp := g.post("/v1/messages", tok, `{"model":"sonnet","max_tokens":512,"stream":true,"messages":[{"role":"user","content":"Weather in SF?"}]}`, e2eAnthropicHdr...)
	got := e2eRead(t, resp)
	if resp.StatusCode != 200 || !strings.Contains(got, "message_stop") {
		t.Fatalf("same shape: %d %.200s", resp.StatusCode, got)
	}
	call := e2eCalls(g, 1)[0]
	// 394 × $3/MTok + 79 × $15/MTok = $0.001182 + $0.001185 = $0.002367
	e2eWant(t, "same shape", call, map[string]any{"usage_source": "provider", "input_tokens": 394, "output_tokens": 79})
	if c := e2eCost(t, call); !e2eNear(c, 0.002367) {
		t.Errorf("same shape: cost_usd %v, want 0.002367 (the provider's usage)", c)
	}
	// Cross shape (OpenAI client on the Claude model).
	resp = g.post("/v1/chat/completions", tok, `{"model":"sonnet","stream":true,"messages":[{"role":"user","content":"Weather in SF?"}]}`)
	got = e2eRead(t, resp)
	if resp.StatusCode != 200 || !strings.Contains(got, "[DONE]") {
		t.Errorf("cross shape: client got %d %.300s; want the translated stream", resp.StatusCode, got)
	}
	call = e2eCalls(g, 2)[1]
	e2eWant(t, "cross shape", call, map[string]any{"status": 200, "usage_source": "provider", "input_tokens": 394, "output_tokens": 79})
}

// A stream answered with no Content-Type (the SDKs read it as the stream
// they asked for) is relayed and priced as a stream.
func TestForeignUpstreamStreamWithoutContentType(t *testing.T) {
	body := foreignAnthropicStream()
	g, _ := oddUpstream(t, "", func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Content-Type"] = nil // no sniffing: none at all
		_, _ = io.WriteString(w, body)
	})
	_, tok := e2eKey(g, "noctype")
	resp := g.post("/v1/messages", tok, `{"model":"sonnet","max_tokens":512,"stream":true,"messages":[{"role":"user","content":"Weather in SF?"}]}`, e2eAnthropicHdr...)
	got := e2eRead(t, resp)
	if resp.StatusCode != 200 || !strings.Contains(got, "message_stop") || resp.Header.Get("Content-Length") != "" {
		t.Fatalf("client got %d (Content-Length %q) %.200s; want the stream relayed as it came",
			resp.StatusCode, resp.Header.Get("Content-Length"), got)
	}
	call := e2eCalls(g, 1)[0]
	e2eWant(t, "no Content-Type", call, map[string]any{"usage_source": "provider", "input_tokens": 394, "output_tokens": 79})
}
