package metis

// The gateway against quirks of upstreams the project did not write, found
// with a raw-socket Python provider replaying the recorded fixtures (audit
// 13F): each test sends what that provider sent.

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

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
	wantForeignStreamRelayed(t, g, tok)
}

// A stream sent with no Content-Type at all (a proxy that drops it, a
// hand-written server) was relayed as one body: a same-shape client got it
// whole at its end, priced from an estimate of its bytes ($0.0030 for a
// $0.0002 answer, audit 13L2), and a cross-shape client a 502 (Claude Code
// retried it twelve times). An answer to a streamed request that opens
// with anything but a JSON value is read as the stream it is.
func TestForeignUpstreamStreamWithoutContentType(t *testing.T) {
	body := foreignAnthropicStream()
	g, _ := oddUpstream(t, "", func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Content-Type"] = nil
		_, _ = io.WriteString(w, body)
	})
	_, tok := e2eKey(g, "noctype")
	wantForeignStreamRelayed(t, g, tok)
}

// wantForeignStreamRelayed asks g for foreignAnthropicStream's answer, same
// shape and then cross shape, and wants each relayed as a stream and
// priced from the provider's usage.
func wantForeignStreamRelayed(t *testing.T, g *testGateway, tok string) {
	t.Helper()
	resp := g.post("/v1/messages", tok, `{"model":"sonnet","max_tokens":512,"stream":true,"messages":[{"role":"user","content":"Weather in SF?"}]}`, e2eAnthropicHdr...)
	got := e2eRead(t, resp)
	if resp.StatusCode != 200 || !strings.Contains(got, "message_stop") || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("same shape: %d %q %.200s; want the stream as an event stream", resp.StatusCode, resp.Header.Get("Content-Type"), got)
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

// An empty answer with no Content-Type to a streamed request is a stream
// that ended before its first event (retried, then a 502 in the client's
// shape), not an empty 200 a client would read as an answer.
func TestForeignUpstreamEmptyAnswerWithoutContentTypeToStream(t *testing.T) {
	g, n := oddUpstream(t, "", func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Content-Type"] = nil
		w.WriteHeader(200)
	})
	_, tok := e2eKey(g, "emptynoctype")
	resp := g.post("/v1/messages", tok, `{"model":"sonnet","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"hi"}]}`, e2eAnthropicHdr...)
	got := e2eRead(t, resp)
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(got, `"type":"error"`) {
		t.Errorf("client got %d %.200q; want a 502 in Anthropic's error shape", resp.StatusCode, got)
	}
	if c := n.Load(); c != 3 {
		t.Errorf("%d requests upstream; want 3 (max_retries 2: a stream that never began is retried)", c)
	}
	call := e2eCalls(g, 1)[0]
	e2eWant(t, "call", call, map[string]any{"status": 502, "error_class": "STREAM_INTERRUPTED", "attempts": 3})
}

// The same server answering JSON with no media type only after the
// first-event hold (a long generation) is still relayed as that JSON,
// priced from its usage: the hold does not send a stream's headers before
// the answer's first byte says what it is.
func TestForeignUpstreamJSONWithoutContentTypeAfterHold(t *testing.T) {
	setForTest(t, &firstEventHold, 100*time.Millisecond)
	body := fakeupstream.FromFixture(fakeupstream.FixtureAnthropicNonStream, 0).Body
	g, n := oddUpstream(t, "", func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Content-Type"] = nil
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		time.Sleep(300 * time.Millisecond)
		_, _ = io.WriteString(w, body)
	})
	_, tok := e2eKey(g, "latejson")
	resp := g.post("/v1/messages", tok, `{"model":"sonnet","max_tokens":512,"stream":true,"messages":[{"role":"user","content":"Weather?"}]}`, e2eAnthropicHdr...)
	got := e2eRead(t, resp)
	if n.Load() != 1 || resp.StatusCode != 200 || !strings.HasPrefix(strings.TrimSpace(got), "{") || !strings.Contains(got, `"usage"`) {
		t.Errorf("%d requests upstream, client got %d %.300q; want one request and the JSON answer", n.Load(), resp.StatusCode, got)
	}
	// 402 × $3/MTok + 89 × $15/MTok = $0.001206 + $0.001335 = $0.002541
	call := e2eCalls(g, 1)[0]
	e2eWant(t, "call", call, map[string]any{"status": 200, "error_class": nil, "usage_source": "provider", "input_tokens": 402, "output_tokens": 89})
	if c := e2eCost(t, call); !e2eNear(c, 0.002541) {
		t.Errorf("cost_usd %v, want 0.002541 (the answer's usage)", c)
	}
}

// A provider that answers 200 with no Content-Type and dies before its
// first byte, later than the first-event hold (a proxy's idle timeout in
// front of a silent reasoning model), is not asked again: with its media
// type the hold would have sent the client its headers, and the provider
// may have been generating, which it bills (review 14R).
func TestForeignUpstreamLateDeathWithoutContentTypeNotRetried(t *testing.T) {
	setForTest(t, &firstEventHold, 100*time.Millisecond)
	for _, ct := range []string{"text/event-stream", ""} {
		t.Run("ct="+ct, func(t *testing.T) {
			g, n := oddUpstream(t, "", func(w http.ResponseWriter, r *http.Request) {
				w.Header()["Content-Type"] = nil
				if ct != "" {
					w.Header().Set("Content-Type", ct)
				}
				w.WriteHeader(200)
				w.(http.Flusher).Flush()
				time.Sleep(400 * time.Millisecond) // past the hold, before any byte
				if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
					_ = conn.Close()
				}
			})
			_, tok := e2eKey(g, "latedeath")
			e2eRead(t, g.post("/v1/messages", tok, `{"model":"sonnet","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"hi"}]}`, e2eAnthropicHdr...))
			if c := n.Load(); c != 1 {
				t.Errorf("%d upstream requests; want 1: the stream died after the hold", c)
			}
			e2eWant(t, "call", e2eCalls(g, 1)[0], map[string]any{"attempts": 1, "error_class": "STREAM_INTERRUPTED"})
		})
	}
}

// A server that ignores stream and answers JSON with no media type after
// keep-alive new lines sent while it generates, or after a UTF-8 byte
// order mark (some .NET servers), is relayed once as JSON, named so, and
// priced from its usage, not read as a stream that never began (three
// billed generations and a 502, review 14R).
func TestForeignUpstreamJSONWithoutContentTypeOddStart(t *testing.T) {
	body := fakeupstream.FromFixture(fakeupstream.FixtureAnthropicNonStream, 0).Body
	for name, prefix := range map[string]string{"600 new lines": strings.Repeat("\n", 600), "BOM": "\xef\xbb\xbf"} {
		t.Run(name, func(t *testing.T) {
			g, n := oddUpstream(t, "", func(w http.ResponseWriter, r *http.Request) {
				w.Header()["Content-Type"] = nil
				_, _ = io.WriteString(w, prefix+body)
			})
			_, tok := e2eKey(g, "jsonprefix")
			resp := g.post("/v1/messages", tok, `{"model":"sonnet","max_tokens":512,"stream":true,"messages":[{"role":"user","content":"Weather?"}]}`, e2eAnthropicHdr...)
			got := e2eRead(t, resp)
			if c := n.Load(); c != 1 || resp.StatusCode != 200 || !json.Valid([]byte(got)) || resp.Header.Get("Content-Type") != "application/json" {
				t.Errorf("%d upstream requests, client got %d %q %.120q; want one request and the JSON answer as application/json",
					c, resp.StatusCode, resp.Header.Get("Content-Type"), got)
			}
			// 402 × $3/MTok + 89 × $15/MTok = $0.001206 + $0.001335 = $0.002541
			e2eWant(t, "call", e2eCalls(g, 1)[0], map[string]any{"status": 200, "error_class": nil, "usage_source": "provider", "input_tokens": 402, "output_tokens": 89})
		})
	}
}

// A provider that closes an idle keep-alive connection just as the
// gateway sends the next request on it (uvicorn's, Node's or gunicorn's
// keep-alive timeout of 2-5 s is far below the gateway's 90 s
// IdleConnTimeout) never sees that request. The gateway reports
// "provider … is unreachable" (502, UPSTREAM_UNREACHABLE) when
// max_retries is 0, as the README advises for Claude Code fleets, and
// otherwise spends one of its retries and a 0.4-0.6 s backoff on it. Go's
// transport retries such a request itself only when it is idempotent.
func TestForeignUpstreamStaleKeepAliveConnection(t *testing.T) {
	up := &connCloser{}
	g := oddUpstreamRetries(t, 0, up.ServeHTTP)
	_, tok := e2eKey(g, "stale")
	for i := range 3 {
		if i > 0 {
			time.Sleep(staleConnIdle + 100*time.Millisecond) // the connection sits idle in the pool
		}
		resp := g.post("/v1/messages", tok, `{"model":"sonnet","max_tokens":64,"messages":[{"role":"user","content":"hi"}]}`, e2eAnthropicHdr...)
		got := e2eRead(t, resp)
		if resp.StatusCode != 200 {
			t.Errorf("call %d: client got %d %.200s; the provider never saw the request (it closed an idle connection)", i+1, resp.StatusCode, got)
		}
	}
	// Calls 2 and 3 each met a connection the provider closed, and were
	// sent again on a new one: two requests each.
	for i, c := range e2eCalls(g, 3) {
		e2eWant(t, fmt.Sprintf("call %d", i+1), c, map[string]any{"status": 200, "error_class": nil, "attempts": min(i+1, 2)})
	}
	if answered, _ := up.counts(); answered != 3 {
		t.Errorf("provider answered %d requests, want 3", answered)
	}
}

// connCloser answers a connection's first request with the recorded
// answer and closes the connection under any later one without answering,
// after work (none: the server's idle timer fired as the request came;
// some: it read the request and worked on it before the connection
// dropped).
type connCloser struct {
	work     time.Duration
	mu       sync.Mutex
	perConn  map[string]int
	answered int
	closed   int
}

func (cc *connCloser) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	cc.mu.Lock()
	if cc.perConn == nil {
		cc.perConn = map[string]int{}
	}
	cc.perConn[r.RemoteAddr]++
	later := cc.perConn[r.RemoteAddr] > 1
	if later {
		cc.closed++
	} else {
		cc.answered++
	}
	cc.mu.Unlock()
	if later {
		time.Sleep(cc.work)
		if c, _, err := w.(http.Hijacker).Hijack(); err == nil {
			c.Close()
		}
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, fakeupstream.FromFixture(fakeupstream.FixtureAnthropicNonStream, 1).Body)
}

// counts is how many requests cc answered and how many it closed.
func (cc *connCloser) counts() (answered, closed int) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	return cc.answered, cc.closed
}

// notResent makes two calls, the second idle seconds after the first, on
// a connCloser that works work before closing, and requires the second to
// reach the provider once and the client to get a 502 (max_retries 0).
func notResent(t *testing.T, work, idle time.Duration) {
	t.Helper()
	up := &connCloser{work: work}
	g := oddUpstreamRetries(t, 0, up.ServeHTTP)
	_, tok := e2eKey(g, "notresent")
	var last int
	for i := range 2 {
		if i > 0 {
			time.Sleep(idle)
		}
		resp := g.post("/v1/messages", tok, `{"model":"sonnet","max_tokens":64,"messages":[{"role":"user","content":"hi"}]}`, e2eAnthropicHdr...)
		e2eRead(t, resp)
		last = resp.StatusCode
	}
	if answered, closed := up.counts(); answered != 1 || closed != 1 || last != http.StatusBadGateway {
		t.Errorf("the provider answered %d and closed %d requests (the client got %d for the second); want the second read once and a 502",
			answered, closed, last)
	}
}

// oddUpstreamRetries is oddUpstream with the providers' max_retries set.
func oddUpstreamRetries(t *testing.T, retries int, h http.HandlerFunc) *testGateway {
	t.Helper()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		h(w, r)
	}))
	t.Cleanup(up.Close)
	cfg := strings.ReplaceAll(gatewayConfig(tempDB(t), up.URL, ""), "max_retries 2", fmt.Sprintf("max_retries %d", retries))
	return startGateway(t, cfg)
}

// An OpenAI-compatible server that reports cumulative usage on every
// chunk (vLLM's continuous usage stats, some proxies) has the final count
// in its finish chunk. An Anthropic client is told the previous chunk's
// count in its message_delta (Claude Code showed 37 output tokens of 40),
// while the ledger records the provider's 40.
func TestForeignUpstreamCumulativeUsageEveryChunkToAnthropicClient(t *testing.T) {
	const n = 5
	var b strings.Builder
	for i := 0; i <= n; i++ {
		chunk := map[string]any{"id": "chatcmpl-foreign", "object": "chat.completion.chunk", "created": 1755137921, "model": "gpt-5-nano-2025-08-07",
			"usage": map[string]any{"prompt_tokens": 50, "completion_tokens": 3 * i, "total_tokens": 50 + 3*i}}
		switch {
		case i == n:
			chunk["choices"] = []any{map[string]any{"index": 0, "delta": map[string]any{}, "finish_reason": "stop"}}
		default:
			chunk["choices"] = []any{map[string]any{"index": 0, "delta": map[string]any{"content": "abc"}, "finish_reason": nil}}
		}
		j, _ := json.Marshal(chunk)
		fmt.Fprintf(&b, "data: %s\n\n", j)
	}
	b.WriteString("data: [DONE]\n\n")
	body := b.String()
	g, _ := oddUpstream(t, "", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, body)
	})
	_, tok := e2eKey(g, "cumulative")
	resp := g.post("/v1/messages", tok, `{"model":"nano","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"hi"}]}`, e2eAnthropicHdr...)
	evs := e2eReadSSE(t, resp.Body)
	resp.Body.Close()
	var out float64 = -1
	for _, ev := range evs {
		if ev.Name == "message_delta" {
			if v, ok := e2ePath(e2eJSON(t, ev.Data), "usage", "output_tokens").(float64); ok {
				out = v
			}
		}
	}
	call := e2eCalls(g, 1)[0]
	e2eWant(t, "ledger", call, map[string]any{"output_tokens": 3 * n, "input_tokens": 50})
	if out != 3*n {
		t.Errorf("client's message_delta says output_tokens %v; the provider reported %d (the ledger has %v)", out, 3*n, call["output_tokens"])
	}
}

// A body with Content-Encoding x-gzip (RFC 9110 §8.4.1.3: to be treated
// as gzip) is not decoded by Go's transport, and the gateway drops the
// header while relaying the compressed bytes: a same-shape client gets
// binary with no Content-Encoding, the call is priced from an estimate;
// streamed, the gateway retries a billed generation three times and
// answers 502 at $0.
func TestForeignUpstreamXGzipContentEncoding(t *testing.T) {
	var zb bytes.Buffer
	zw := gzip.NewWriter(&zb)
	_, _ = io.WriteString(zw, fakeupstream.FromFixture(fakeupstream.FixtureAnthropicNonStream, 0).Body)
	_ = zw.Close()
	g, _ := oddUpstream(t, "", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Encoding", "x-gzip")
		_, _ = w.Write(zb.Bytes())
	})
	_, tok := e2eKey(g, "xgzip")
	resp := g.post("/v1/messages", tok, `{"model":"sonnet","max_tokens":512,"messages":[{"role":"user","content":"Weather?"}]}`, e2eAnthropicHdr...)
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if ce := resp.Header.Get("Content-Encoding"); ce != "" {
		if zr, err := gzip.NewReader(bytes.NewReader(raw)); err == nil {
			raw, _ = io.ReadAll(zr)
		}
	}
	if !json.Valid(raw) {
		t.Errorf("client got %d, Content-Encoding %q, a body that is not JSON: %q", resp.StatusCode, resp.Header.Get("Content-Encoding"), raw[:min(len(raw), 40)])
	}
	call := e2eCalls(g, 1)[0]
	// 402 × $3/MTok + 89 × $15/MTok = $0.001206 + $0.001335 = $0.002541
	e2eWant(t, "x-gzip", call, map[string]any{"usage_source": "provider", "input_tokens": 402, "output_tokens": 89})
}

// A stream in x-gzip is relayed event by event and priced from its usage
// (it was retried as a stream that never began, three billed generations
// recorded at $0); one in an encoding the gateway cannot read (br) is a
// 502 in the caller's shape, not retried, priced from the prompt's
// estimate since the provider did the work.
func TestForeignUpstreamStreamContentEncoding(t *testing.T) {
	var zb bytes.Buffer
	zw := gzip.NewWriter(&zb)
	_, _ = io.WriteString(zw, foreignAnthropicStream())
	_ = zw.Close()
	var mu sync.Mutex
	requests := 0
	encoding := "x-gzip"
	g, _ := oddUpstream(t, "", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		requests++
		ce := encoding
		mu.Unlock()
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Content-Encoding", ce)
		_, _ = w.Write(zb.Bytes())
	})
	_, tok := e2eKey(g, "streamenc")
	const body = `{"model":"sonnet","max_tokens":512,"stream":true,"messages":[{"role":"user","content":"Weather in SF?"}]}`
	resp := g.post("/v1/messages", tok, body, e2eAnthropicHdr...)
	got := e2eRead(t, resp)
	if resp.StatusCode != 200 || !strings.Contains(got, "message_stop") || resp.Header.Get("Content-Encoding") != "" {
		t.Errorf("x-gzip stream: client got %d (Content-Encoding %q) %.200q", resp.StatusCode, resp.Header.Get("Content-Encoding"), got)
	}
	call := e2eCalls(g, 1)[0]
	e2eWant(t, "x-gzip stream", call, map[string]any{"status": 200, "attempts": 1, "usage_source": "provider",
		"input_tokens": 394, "output_tokens": 79})

	mu.Lock()
	encoding, requests = "br", 0
	mu.Unlock()
	resp = g.post("/v1/messages", tok, body, e2eAnthropicHdr...)
	got = e2eRead(t, resp)
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(got, `"type":"error"`) || !strings.Contains(got, "br") {
		t.Errorf("br stream: client got %d %.300s; want a 502 in Anthropic's shape naming the encoding", resp.StatusCode, got)
	}
	call = e2eCalls(g, 2)[1]
	e2eWant(t, "br stream", call, map[string]any{"status": 502, "attempts": 1, "error_class": "BAD_UPSTREAM_RESPONSE",
		"usage_source": "estimated"})
	if c := e2eCost(t, call); c <= 0 {
		t.Errorf("br stream: cost_usd %v; the provider generated an answer, priced from the estimate", c)
	}
	mu.Lock()
	defer mu.Unlock()
	if requests != 1 {
		t.Errorf("br stream: %d requests upstream, want 1 (retrying cannot mend an encoding)", requests)
	}
}

// A close-delimited answer (HTTP/1.0, or Connection: close without a
// Content-Length) that the provider cuts short ends in a clean EOF: the
// gateway relays the fragment and records a 200 success, error_class
// null, priced from an estimate. A JSON answer that does not parse is not
// a success.
func TestForeignUpstreamTruncatedCloseDelimitedAnswer(t *testing.T) {
	full := fakeupstream.FromFixture(fakeupstream.FixtureAnthropicNonStream, 0).Body
	g, _ := oddUpstream(t, "", func(w http.ResponseWriter, r *http.Request) {
		c, buf, err := w.(http.Hijacker).Hijack()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = buf.WriteString("HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n" + full[:300])
		_ = buf.Flush()
	})
	_, tok := e2eKey(g, "cut")
	resp := g.post("/v1/messages", tok, `{"model":"sonnet","max_tokens":512,"messages":[{"role":"user","content":"Weather?"}]}`, e2eAnthropicHdr...)
	e2eRead(t, resp)
	call := e2eCalls(g, 1)[0]
	if call["error_class"] == nil {
		t.Errorf("a truncated answer (300 of %d bytes, not JSON) is recorded as status %v with error_class null (usage_source %v)",
			len(full), call["status"], call["usage_source"])
	}
}

// A pooled connection that ends long after the request went out is not a
// stale one: the provider read the request and worked on it (here 500 ms;
// a non-streamed answer sends no byte until it is done) before the
// connection dropped (a worker crash, a deploy), and may bill it. With
// max_retries 0 it is not sent again (review 13R).
func TestForeignUpstreamNoResendAfterProviderWorked(t *testing.T) {
	notResent(t, 500*time.Millisecond, staleConnIdle+100*time.Millisecond) // idle in the pool: only the 500 ms tell
}

// The request id kept from a retried 429 does not stay on a call whose
// last attempt got no answer: the trace would tie an unreachable call to
// an earlier attempt's id (review 13R).
func TestForeignUpstreamRequestIDOfLastAttempt(t *testing.T) {
	up := nthRequest(func(n int, w http.ResponseWriter, r *http.Request) {
		if n == 1 {
			w.Header().Set("Request-Id", "req_the_429")
			w.Header().Set("Retry-After", "0")
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusTooManyRequests)
			_, _ = io.WriteString(w, `{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}`)
			return
		}
		if c, _, err := w.(http.Hijacker).Hijack(); err == nil {
			c.Close()
		}
	})
	g := oddUpstreamRetries(t, 1, up)
	_, tok := e2eKey(g, "lastid")
	resp := g.post("/v1/messages", tok, `{"model":"sonnet","max_tokens":64,"messages":[{"role":"user","content":"hi"}]}`, e2eAnthropicHdr...)
	e2eRead(t, resp)
	call := e2eCalls(g, 1)[0]
	e2eWant(t, "call", call, map[string]any{"error_class": "UPSTREAM_UNREACHABLE", "upstream_request_id": ""})
}

// A server that ignores stream and answers JSON with no Content-Type is
// relayed as the JSON it sent and priced from its usage, not read as a
// stream that never began and retried (review 13R).
func TestForeignUpstreamJSONWithoutContentTypeToStream(t *testing.T) {
	body := fakeupstream.FromFixture(fakeupstream.FixtureAnthropicNonStream, 0).Body
	g, n := oddUpstream(t, "", func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Content-Type"] = nil
		_, _ = io.WriteString(w, "\n  "+body)
	})
	_, tok := e2eKey(g, "jsonnoctype")
	resp := g.post("/v1/messages", tok, `{"model":"sonnet","max_tokens":512,"stream":true,"messages":[{"role":"user","content":"Weather?"}]}`, e2eAnthropicHdr...)
	got := e2eRead(t, resp)
	if c := n.Load(); c != 1 || resp.StatusCode != 200 || !strings.Contains(got, `"usage"`) {
		t.Errorf("%d requests upstream, client got %d %.120s; want one request and the JSON answer", c, resp.StatusCode, got)
	}
	// 402 × $3/MTok + 89 × $15/MTok = $0.001206 + $0.001335 = $0.002541
	call := e2eCalls(g, 1)[0]
	e2eWant(t, "call", call, map[string]any{"status": 200, "usage_source": "provider", "input_tokens": 402, "output_tokens": 89})
}

// An error status in an encoding the gateway cannot read keeps its status
// and retry-after (the client's SDK waits as the provider asked) and its
// class in the trace, with the gateway's word for the body (review 13R).
func TestForeignUpstreamErrorInUnreadableEncoding(t *testing.T) {
	g, _ := oddUpstream(t, "", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Encoding", "br")
		w.Header().Set("Retry-After", "7")
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = w.Write([]byte{0x1b, 0x2c, 0x00, 0xf8})
	})
	_, tok := e2eKey(g, "br429")
	resp := g.post("/v1/messages", tok, `{"model":"sonnet","max_tokens":64,"messages":[{"role":"user","content":"hi"}]}`, e2eAnthropicHdr...)
	got := e2eRead(t, resp)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "7" || !strings.Contains(got, `"type":"error"`) {
		t.Errorf("client got %d (Retry-After %q) %.200s; want the provider's 429 with its Retry-After, in Anthropic's shape",
			resp.StatusCode, resp.Header.Get("Retry-After"), got)
	}
	e2eWant(t, "call", e2eCalls(g, 1)[0], map[string]any{"status": 429, "error_class": "RATE_LIMITED"})
}

// An answer whose bytes its own Content-Encoding does not decode (here
// "gzip" over plain text) is a broken answer the provider bills: a 502
// BAD_UPSTREAM_RESPONSE priced from the prompt, a stream not retried as
// one that never began (confirmation 13L).
func TestForeignUpstreamCorruptEncoding(t *testing.T) {
	g, n := oddUpstream(t, "", func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "messages") && r.Header.Get("Accept") == "text/event-stream" {
			w.Header().Set("Content-Type", "text/event-stream")
		} else {
			w.Header().Set("Content-Type", "application/json")
		}
		w.Header().Set("Content-Encoding", "gzip")
		_, _ = io.WriteString(w, "event: message_start\ndata: this is not gzip at all\n\n")
	})
	_, tok := e2eKey(g, "corrupt")
	for i, body := range []string{
		`{"model":"sonnet","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"hi"}]}`,
		`{"model":"sonnet","max_tokens":64,"messages":[{"role":"user","content":"hi"}]}`,
	} {
		before := n.Load()
		resp := g.post("/v1/messages", tok, body, e2eAnthropicHdr...)
		got := e2eRead(t, resp)
		if resp.StatusCode != http.StatusBadGateway || !strings.Contains(got, `"type":"error"`) || n.Load()-before != 1 {
			t.Errorf("call %d: %d requests upstream, client got %d %.200s; want one request and a 502 in Anthropic's shape",
				i+1, n.Load()-before, resp.StatusCode, got)
		}
		call := e2eCalls(g, i+1)[i]
		e2eWant(t, fmt.Sprintf("call %d", i+1), call, map[string]any{"status": 502, "attempts": 1,
			"error_class": "BAD_UPSTREAM_RESPONSE", "usage_source": "estimated"})
		if c := e2eCost(t, call); c <= 0 {
			t.Errorf("call %d: cost_usd %v; the provider answered, priced from the prompt's estimate", i+1, c)
		}
	}
}

// The resend after a stale connection is not one of max_retries' retries:
// with max_retries 1 a 529 to the resent request is still retried (review
// 13R2).
func TestForeignUpstreamStaleResendKeepsTheRetries(t *testing.T) {
	up := nthRequest(func(n int, w http.ResponseWriter, r *http.Request) {
		switch n {
		case 2: // call 2 on call 1's idle pooled connection, closed as it arrived
			if c, _, err := w.(http.Hijacker).Hijack(); err == nil {
				c.Close()
			}
			return
		case 3: // its resend
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(529)
			_, _ = io.WriteString(w, `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, fakeupstream.FromFixture(fakeupstream.FixtureAnthropicNonStream, 1).Body)
	})
	g := oddUpstreamRetries(t, 1, up)
	_, tok := e2eKey(g, "staleretry")
	for i := range 2 {
		if i > 0 {
			time.Sleep(staleConnIdle + 100*time.Millisecond)
		}
		resp := g.post("/v1/messages", tok, `{"model":"sonnet","max_tokens":64,"messages":[{"role":"user","content":"hi"}]}`, e2eAnthropicHdr...)
		if got := e2eRead(t, resp); resp.StatusCode != 200 {
			t.Errorf("call %d: client got %d %.100s; max_retries 1 retries the 529", i+1, resp.StatusCode, got)
		}
	}
	e2eWant(t, "call 2", e2eCalls(g, 2)[1], map[string]any{"status": 200, "attempts": 3})
}

// A connection in use (not idle in the pool) that ends before an answer,
// however soon, is a connection failure: the provider may have read the
// request. With max_retries 0 it is not sent again (review 13R2).
func TestForeignUpstreamBusyConnectionNotResent(t *testing.T) {
	notResent(t, 100*time.Millisecond, 0)
}

// A stream whose bytes do not decode, first arriving after the gateway
// sent the headers (the first-event hold), is recorded as within the hold:
// BAD_UPSTREAM_RESPONSE, priced from the prompt (review 13R2).
func TestForeignUpstreamCorruptStreamAfterHold(t *testing.T) {
	setForTest(t, &firstEventHold, 100*time.Millisecond)
	g, _ := oddUpstream(t, "", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Content-Encoding", "gzip")
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		time.Sleep(400 * time.Millisecond)
		_, _ = io.WriteString(w, "event: message_start\ndata: this is not gzip at all\n\n")
	})
	_, tok := e2eKey(g, "corruptlate")
	got := e2eRead(t, g.post("/v1/messages", tok, `{"model":"sonnet","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"hi"}]}`, e2eAnthropicHdr...))
	if !strings.Contains(got, "event: error") || !strings.Contains(got, "did not decode") {
		t.Errorf("client got %.300q; want an error event saying the stream did not decode", got)
	}
	call := e2eCalls(g, 1)[0]
	e2eWant(t, "call", call, map[string]any{"error_class": "BAD_UPSTREAM_RESPONSE", "usage_source": "estimated"})
	if c := e2eCost(t, call); c <= 0 {
		t.Errorf("cost_usd %v; the provider answered, priced from the prompt's estimate", c)
	}
}

// nthRequest calls h with each request's number, from 1.
func nthRequest(h func(n int, w http.ResponseWriter, r *http.Request)) http.HandlerFunc {
	var n atomic.Int64
	return func(w http.ResponseWriter, r *http.Request) { h(int(n.Add(1)), w, r) }
}

// TestForeignUpstreamBaseURLWithQuery: a base_url with a query (Azure
// OpenAI's deployment URL and its ?api-version=) keeps the query at the end
// of every upstream URL, after the API path and before the client's own
// query (audit 15A: the path went inside the query, every call failed).
func TestForeignUpstreamBaseURLWithQuery(t *testing.T) {
	var mu sync.Mutex
	var got []string
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.URL.Path+"?"+r.URL.RawQuery)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if strings.HasSuffix(r.URL.Path, "/messages") {
			fmt.Fprint(w, `{"id":"msg_1","type":"message","role":"assistant","model":"claude-haiku-4-5","content":[{"type":"text","text":"hi"}],"stop_reason":"end_turn","usage":{"input_tokens":10,"output_tokens":2}}`)
			return
		}
		fmt.Fprint(w, `{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":10,"completion_tokens":2,"total_tokens":12}}`)
	}))
	defer up.Close()
	g, _ := e2eSetup(t, fmt.Sprintf(`
		provider azure openai {
			api_key azure-test-key
			base_url %s/openai/deployments/d?api-version=2024-10-21
		}
		provider vendor anthropic {
			api_key vendor-key
			base_url %s/anthropic/?tenant=t1
		}`, up.URL, up.URL))
	_, tok := e2eKey(g, "az")
	for _, c := range []struct{ path, body string }{
		{"/v1/chat/completions", `{"model":"azure:gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`},
		{"/v1/messages?beta=true", `{"model":"vendor:claude-haiku-4-5","max_tokens":8,"messages":[{"role":"user","content":"hi"}]}`},
	} {
		resp := g.post(c.path, tok, c.body, e2eAnthropicHdr...)
		if body := e2eRead(t, resp); resp.StatusCode != 200 {
			t.Fatalf("%s: %d %s", c.path, resp.StatusCode, body)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	want := []string{"/openai/deployments/d/chat/completions?api-version=2024-10-21", "/anthropic/v1/messages?tenant=t1&beta=true"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("the provider was asked for %q, want %q", got, want)
	}
	if err := g.tryLoad(gatewayConfig(g.DB, up.URL, "provider odd openai {\n\t\t\tbase_url http://127.0.0.1:1/v1#frag\n\t\t}")); err == nil || !strings.Contains(err.Error(), "may not have a #fragment") {
		t.Errorf("a base_url with a fragment loaded with error %v", err)
	}
}

// TestForeignUpstreamStreamedRateLimitClass: an OpenAI-compatible server
// that opens a stream with OpenAI's rate-limit error object (type
// "requests", code rate_limit_exceeded; mock-llm reports every streamed
// error so) is retried, as a stream opening with Anthropic's
// rate_limit_error is, and the call is recorded RATE_LIMITED, as the same
// body answered without a stream is (audit 15A: UPSTREAM_ERROR, not
// retried); a body whose type alone says so is too (review 15R).
func TestForeignUpstreamStreamedRateLimitClass(t *testing.T) {
	const errObj = `{"error":{"message":"Rate limit reached","type":"requests","param":null,"code":"rate_limit_exceeded"}}`
	var n atomic.Int32
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		if b, _ := io.ReadAll(r.Body); bytes.Contains(b, []byte("no code")) {
			// The type alone says rate limited, as in a stream's event.
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, `{"error":{"message":"Rate limit reached","type":"tokens"}}`)
			return
		}
		if strings.Contains(r.Header.Get("Accept"), "text/event-stream") {
			w.Header().Set("Content-Type", "text/event-stream")
			fmt.Fprint(w, "data: "+errObj+"\n\n")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, errObj)
	}))
	defer up.Close()
	g, _ := e2eSetup(t, fmt.Sprintf(`
		provider compat openai {
			base_url %s/v1
			max_retries 1
			max_retry_wait 1s
		}`, up.URL))
	_, tok := e2eKey(g, "rl")
	e2eRead(t, g.post("/v1/chat/completions", tok, `{"model":"compat:m","messages":[{"role":"user","content":"hi"}]}`))
	sent := n.Load()
	e2eRead(t, g.post("/v1/chat/completions", tok, `{"model":"compat:m","stream":true,"messages":[{"role":"user","content":"hi"}]}`))
	if streamed := n.Load() - sent; streamed != 2 {
		t.Errorf("the stream opening with a rate limit was asked %d times, want 2 (max_retries 1)", streamed)
	}
	e2eRead(t, g.post("/v1/chat/completions", tok, `{"model":"compat:m","messages":[{"role":"user","content":"no code"}]}`))
	for i, c := range e2eCalls(g, 3) {
		if c["error_class"] != "RATE_LIMITED" {
			t.Errorf("call %d (stream=%v): error_class %v, want RATE_LIMITED", i, c["stream"], c["error_class"])
		}
	}
}

// azureStream is an Azure OpenAI stream as its deployments send it: a
// first chunk of prompt_filter_results alone (no id, model or choices),
// content_filter_results on each choice, the usage chunk asked for, [DONE].
func azureStream(id string) []string {
	cf := `{"hate":{"filtered":false,"severity":"safe"},"self_harm":{"filtered":false,"severity":"safe"},"sexual":{"filtered":false,"severity":"safe"},"violence":{"filtered":false,"severity":"safe"}}`
	head := fmt.Sprintf(`"created":1795840000,"id":%q,"model":"gpt-5-mini-2025-08-07","object":"chat.completion.chunk","system_fingerprint":null`, id)
	return []string{
		`data: {"choices":[],"created":0,"id":"","model":"","object":"","prompt_filter_results":[{"prompt_index":0,"content_filter_results":` + cf + `}]}` + "\n\n",
		`data: {"choices":[{"content_filter_results":{},"delta":{"content":"","refusal":null,"role":"assistant"},"finish_reason":null,"index":0,"logprobs":null}],` + head + `,"usage":null}` + "\n\n",
		`data: {"choices":[{"content_filter_results":` + cf + `,"delta":{"content":"Hello!"},"finish_reason":null,"index":0,"logprobs":null}],` + head + `,"usage":null}` + "\n\n",
		`data: {"choices":[{"content_filter_results":{},"delta":{},"finish_reason":"stop","index":0,"logprobs":null}],` + head + `,"usage":null}` + "\n\n",
		`data: {"choices":[],` + head + `,"usage":{"completion_tokens":120,"completion_tokens_details":{"reasoning_tokens":64},"prompt_tokens":1000,"prompt_tokens_details":{"cached_tokens":768},"total_tokens":1120}}` + "\n\n",
		"data: [DONE]\n\n",
	}
}

// TestForeignUpstreamAzureStreamToAnthropicClient: an Anthropic client
// streaming from an Azure OpenAI deployment gets each answer's own id in
// message_start, not the gateway's placeholder for every answer (audit
// 15D: Azure's first chunk, prompt filter results alone, has an empty id),
// and the call is priced from Azure's usage.
func TestForeignUpstreamAzureStreamToAnthropicClient(t *testing.T) {
	up := fakeupstream.New(t)
	g := startGateway(t, gatewayConfig(tempDB(t), up.URL, fmt.Sprintf(`
		provider azure openai {
			base_url "%s/openai/deployments/d?api-version=2024-10-21"
			header api-key azure-secret
		}`, up.URL)))
	_, tok := e2eKey(g, "az")
	const path = "/openai/deployments/d/chat/completions"
	for i, upID := range []string{"chatcmpl-AzA1", "chatcmpl-AzB2"} {
		up.Enqueue(path, fakeupstream.Reply{Events: azureStream(upID)})
		resp := g.post("/v1/messages", tok, `{"model":"azure:gpt-5-mini","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"Say hello."}]}`, e2eAnthropicHdr...)
		body := e2eRead(t, resp)
		if resp.StatusCode != 200 || !strings.Contains(body, "Hello!") {
			t.Fatalf("call %d: %d %s", i, resp.StatusCode, body)
		}
		var id any
		for _, ev := range e2eReadSSE(t, strings.NewReader(body)) {
			if ev.Name == "message_start" {
				id = e2ePath(e2eJSON(t, ev.Data), "message", "id")
				break
			}
		}
		if id != upID {
			t.Errorf("call %d: message_start id %v, want the provider's %q", i, id, upID)
		}
	}
	// (1000 − 768) × 0.25e-6 + 768 × 0.025e-6 + 120 × 2e-6 = 0.000058 + 0.0000192 + 0.00024 = 0.0003172
	if c := e2eCost(t, e2eCalls(g, 2)[1]); !e2eNear(c, 0.0003172) {
		t.Errorf("cost %v, want 0.0003172", c)
	}
}
