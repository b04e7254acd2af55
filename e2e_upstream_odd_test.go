package metis

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/metisgateway/metis/internal/fakeupstream"
)

// oddUpstream starts a gateway whose providers are one handler, and
// counts the requests it gets.
func oddUpstream(t *testing.T, extra string, h http.HandlerFunc) (*testGateway, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		n.Add(1)
		h(w, r)
	}))
	t.Cleanup(up.Close)
	cfg := gatewayConfig(tempDB(t), up.URL, "")
	if extra != "" {
		cfg = strings.ReplaceAll(cfg, "max_retry_wait 5s", "max_retry_wait 5s\n\t\t\t"+extra)
	}
	return startGateway(t, cfg), &n
}

// A provider's redirect (base_url on http:// for an https-only host, an
// endpoint that moved) is an error of the gateway's: relayed, it sent the
// client, which follows it with its x-api-key, and its gateway token, to
// the host the provider named; it was recorded as a priced success (audit
// 12B).
func TestProviderRedirectIsAnError(t *testing.T) {
	var leaked atomic.Value
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		leaked.Store(r.Header.Get("X-Api-Key") + r.Header.Get("Authorization"))
		w.WriteHeader(http.StatusUnauthorized)
	}))
	defer elsewhere.Close()
	release := make(chan struct{})
	defer close(release)
	g, n := oddUpstream(t, "", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Location", elsewhere.URL+r.URL.Path)
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusTemporaryRedirect)
		_, _ = io.WriteString(w, "<html><body>Moved")
		w.(http.Flusher).Flush()
		select { // the rest of the page never comes: the 502 does not wait for it
		case <-r.Context().Done():
		case <-release:
		}
	})
	_, tok := e2eKey(g, "redirected")
	cases := []struct{ path, body, want string }{
		{"/v1/messages", e2eHaikuBody, `"type":"error"`},                                                                   // same shape
		{"/v1/chat/completions", `{"model":"haiku","messages":[{"role":"user","content":"hi"}]}`, `"type":"server_error"`}, // cross shape
	}
	for i, c := range cases {
		t0 := time.Now()
		resp := g.post(c.path, tok, c.body, e2eAnthropicHdr...) // http.DefaultClient follows redirects
		body := e2eRead(t, resp)
		if el := time.Since(t0); el > 5*time.Second {
			t.Errorf("%s: answered after %v", c.path, el)
		}
		if resp.StatusCode != http.StatusBadGateway || resp.Header.Get("Location") != "" ||
			!strings.Contains(body, c.want) || !strings.Contains(body, "redirect") {
			t.Errorf("%s: client got %d (Location %q) %s; want a 502 in its shape naming the redirect",
				c.path, resp.StatusCode, resp.Header.Get("Location"), body)
		}
		if v, _ := leaked.Load().(string); strings.Contains(v, tok) {
			t.Fatalf("%s: the gateway token reached the host the provider redirected to", c.path)
		}
		call := e2eCalls(g, i+1)[i]
		e2eWant(t, c.path, call, map[string]any{"status": 502, "error_class": "UPSTREAM_ERROR", "attempts": 1, "output_tokens": 0})
		if cost := e2eCost(t, call); cost != 0 {
			t.Errorf("%s: a redirect the model never answered cost $%v", c.path, cost)
		}
	}
	if got := n.Load(); got != 2 {
		t.Errorf("the provider got %d requests, want 2 (a redirect is not retried)", got)
	}
}

// An error answer whose body stalls after its headers (a proxy's 502)
// ends at the provider's timeout with the provider's status and the
// gateway's word for the body: it hung until the client gave up, recorded
// as the client's cancel (audit 12B).
func TestStalledErrorBodyEndsAtTimeout(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	g, _ := oddUpstream(t, "timeout 1s", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/chat/completions" {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Retry-After", "120") // past max_retry_wait: handed back at once
			w.WriteHeader(http.StatusTooManyRequests)
			_, _ = io.WriteString(w, `{"error":{"message":"Rate limit`)
		} else {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusBadGateway)
			_, _ = io.WriteString(w, "<html>")
		}
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	_, tok := e2eKey(g, "stalled")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	t0 := time.Now()
	resp, err := e2ePostCtx(ctx, g, "/v1/messages", tok, e2eHaikuBody, e2eAnthropicHdr...)
	if err != nil {
		t.Fatalf("after %v: %v", time.Since(t0), err)
	}
	body := e2eRead(t, resp)
	// Three attempts (max_retries 2), each ending a second after its
	// headers, with backoffs of up to 1.25 s and 2.5 s between them.
	if el := time.Since(t0); el > 10*time.Second {
		t.Errorf("the call took %v", el)
	}
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(body, `"type":"error"`) || !strings.Contains(body, "did not arrive") {
		t.Errorf("client got %d %s, want the provider's 502, in its shape, saying the error did not arrive", resp.StatusCode, body)
	}
	e2eWant(t, "stalled error body", e2eCalls(g, 1)[0], map[string]any{"status": 502, "error_class": "UPSTREAM_ERROR", "attempts": 3})

	// A 429 (its body read once to see whether it means out of credit)
	// keeps its retry-after.
	resp = g.post("/v1/chat/completions", tok, e2eNanoBody)
	body = e2eRead(t, resp)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "120" || !strings.Contains(body, "did not arrive") {
		t.Errorf("stalled 429: client got %d (retry-after %q) %s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	e2eWant(t, "stalled 429", e2eCalls(g, 2)[1], map[string]any{"status": 429, "error_class": "RATE_LIMITED", "attempts": 1})
}

// A success status whose body is an error (a proxy's or a compatible
// server's) is recorded as the provider's error, billed nothing: it was
// a priced success, the error text counted as output (audit 12B). A
// same-shape client gets it as sent; a cross-shape one an error in its
// own shape.
func TestSuccessStatusWithErrorBody(t *testing.T) {
	up := fakeupstream.New(t)
	g := startGateway(t, gatewayConfig(tempDB(t), up.URL, ""))
	_, tok := e2eKey(g, "errors-in-200")
	overloaded := `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`
	limited := `{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}`
	json200 := http.Header{"Content-Type": {"application/json"}}
	up.Enqueue("/v1/messages", fakeupstream.Reply{Status: 200, Header: json200, Body: overloaded})
	up.Enqueue("/v1/messages", fakeupstream.Reply{Status: 200, Header: json200, Body: overloaded})
	up.Enqueue("/v1/chat/completions", fakeupstream.Reply{Status: 200, Header: json200, Body: limited})
	cases := []struct {
		path, body string
		status     int
		want       string
		class      string
	}{
		{"/v1/messages", e2eHaikuBody, 200, overloaded, "UPSTREAM_ERROR"},
		{"/v1/chat/completions", `{"model":"haiku","messages":[{"role":"user","content":"hi"}]}`, 502, `"error":{"message":"Overloaded"`, "UPSTREAM_ERROR"},
		{"/v1/chat/completions", `{"model":"nano","messages":[{"role":"user","content":"hi"}]}`, 200, limited, "RATE_LIMITED"},
	}
	for i, c := range cases {
		resp := g.post(c.path, tok, c.body, e2eAnthropicHdr...)
		if body := e2eRead(t, resp); resp.StatusCode != c.status || !strings.Contains(body, c.want) {
			t.Errorf("%s %s: client got %d %s, want %d with %s", c.path, c.body, resp.StatusCode, body, c.status, c.want)
		}
		call := e2eCalls(g, i+1)[i]
		e2eWant(t, c.path, call, map[string]any{"error_class": c.class, "output_tokens": 0, "usage_source": "provider"})
		if cost := e2eCost(t, call); cost != 0 {
			t.Errorf("%s: an error answer cost $%v", c.path, cost)
		}
	}
}

// A provider address that accepts connections and never completes the TLS
// handshake (a blackholed proxy) is a connection failure: the request was
// never sent, so it is retried and recorded as unreachable. It was tried
// once and called a provider that "did not answer in time" (audit 12B).
func TestTLSHandshakeStallRetried(t *testing.T) {
	setForTest(t, &tlsHandshakeTimeout, 200*time.Millisecond)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns atomic.Int64
	done := make(chan struct{})
	t.Cleanup(func() { close(done); l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			go func() { <-done; c.Close() }()
		}
	}()
	g := startGateway(t, gatewayConfig(tempDB(t), "https://"+l.Addr().String(), ""))
	_, tok := e2eKey(g, "blackholed")
	resp := g.post("/v1/messages", tok, e2eHaikuBody, e2eAnthropicHdr...)
	body := e2eRead(t, resp)
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(body, "unreachable") {
		t.Errorf("client got %d %s, want a 502 saying the provider is unreachable", resp.StatusCode, body)
	}
	if n := conns.Load(); n != 3 {
		t.Errorf("%d connections, want 3 (max_retries 2)", n)
	}
	e2eWant(t, "TLS stall", e2eCalls(g, 1)[0], map[string]any{"status": 502, "error_class": "UPSTREAM_UNREACHABLE", "attempts": 3})
}

// A stream that opens with comments (OpenRouter's ": OPENROUTER
// PROCESSING", a proxy's keep-alive) and then an error is retried like the
// same error without them: the comment counted as the first event, and the
// error went to the client (audit 12B). The comments of the stream that
// answers reach a same-shape client as sent.
func TestCommentsBeforeFirstEventKeepTheRetry(t *testing.T) {
	sse := func(w http.ResponseWriter, events ...string) {
		w.Header().Set("Content-Type", "text/event-stream")
		for _, e := range events {
			_, _ = io.WriteString(w, e)
			w.(http.Flusher).Flush()
			time.Sleep(5 * time.Millisecond)
		}
	}
	chunk := func(delta, finish, usage string) string {
		return `data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-5-nano","choices":[{"index":0,"delta":` +
			delta + `,"finish_reason":` + finish + `}],"usage":` + usage + "}\n\n"
	}
	var n atomic.Int64
	g, _ := oddUpstream(t, "", func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			sse(w, ": OPENROUTER PROCESSING\n\n", `data: {"error":{"message":"Overloaded","type":"server_error","code":null}}`+"\n\n")
			return
		}
		sse(w, ": OPENROUTER PROCESSING\n\n", chunk(`{"role":"assistant","content":"Hello"}`, "null", "null"),
			chunk(`{}`, `"stop"`, "null"),
			`data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-5-nano","choices":[],"usage":{"prompt_tokens":10,"completion_tokens":2,"total_tokens":12}}`+"\n\n",
			"data: [DONE]\n\n")
	})
	_, tok := e2eKey(g, "commented")
	resp := g.post("/v1/chat/completions", tok, `{"model":"nano","stream":true,"messages":[{"role":"user","content":"Say hello."}]}`)
	raw := e2eRead(t, resp)
	if !strings.HasPrefix(raw, ": OPENROUTER PROCESSING\n\n") || strings.Count(raw, "PROCESSING") != 1 ||
		strings.Contains(raw, "Overloaded") || !strings.Contains(raw, `"content":"Hello"`) || !strings.HasSuffix(raw, "data: [DONE]\n\n") {
		t.Errorf("client got:\n%s\nwant the answering stream, its comment first", raw)
	}
	e2eWant(t, "commented stream", e2eCalls(g, 1)[0], map[string]any{"status": 200, "error_class": nil, "attempts": 2, "input_tokens": 10})
}

// A provider stream that goes silent for good is ended as interrupted
// after streamSilence or the provider's timeout, whichever is longer, the
// provider's request cancelled: a translated
// stream's keep-alive pings held its client on the dead provider for ever
// (audit 12B), and a same-shape one waited on its client's timeout,
// recorded as the client's cancel.
func TestSilentProviderStreamEnds(t *testing.T) {
	oldSilence, oldPing := streamSilence, pingEvery
	streamSilence, pingEvery = 300*time.Millisecond, 100*time.Millisecond
	t.Cleanup(func() { streamSilence, pingEvery = oldSilence, oldPing })
	// The provider's timeout, when longer, is the bound.
	g, _ := oddUpstream(t, "timeout 800ms", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for _, e := range []string{
			`event: message_start` + "\n" + `data: {"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"claude-haiku-4-5","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":100,"output_tokens":1}}}` + "\n\n",
			`event: content_block_start` + "\n" + `data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}` + "\n\n",
			`event: content_block_delta` + "\n" + `data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}}` + "\n\n",
		} {
			_, _ = io.WriteString(w, e)
		}
		w.(http.Flusher).Flush()
		<-r.Context().Done() // silent until the gateway hangs up
	})
	_, tok := e2eKey(g, "silenced")
	cases := []struct{ path, body, last string }{
		{"/v1/messages", `{"model":"haiku","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"hi"}]}`, `"type":"error"`},
		{"/v1/chat/completions", `{"model":"haiku","stream":true,"messages":[{"role":"user","content":"hi"}]}`, `{"error":`},
	}
	for i, c := range cases {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		t0 := time.Now()
		resp, err := e2ePostCtx(ctx, g, c.path, tok, c.body, e2eAnthropicHdr...)
		if err != nil {
			t.Fatal(err)
		}
		raw := e2eRead(t, resp)
		cancel()
		if el := time.Since(t0); el > 5*time.Second {
			t.Errorf("%s: the stream lasted %v", c.path, el)
		}
		if !strings.Contains(raw, "Hello") || !strings.Contains(raw[strings.LastIndex(raw, "data:"):], c.last) {
			t.Errorf("%s: client got\n%s\nwant the content, then an error event in its shape", c.path, raw)
		}
		e2eWant(t, c.path, e2eCalls(g, i+1)[i], map[string]any{"error_class": "STREAM_INTERRUPTED", "input_tokens": 100})
	}
}

// A compatible server or proxy that echoes the request's credential in its
// error (audit 24O: a 401 naming the key whole) does not hand the provider
// key to the developer: the gateway removes it from the error it relays,
// same shape or translated, and the body stays JSON.
func TestProviderKeyEchoedInAnErrorIsRemoved(t *testing.T) {
	g, up := e2eSetup(t, "")
	_, tok := e2eKey(g, "echo")
	for _, c := range []struct{ name, path, body string }{
		{"same shape", "/v1/chat/completions", `{"model":"gpt-5-mini","messages":[{"role":"user","content":"Hi."}]}`},
		{"translated", "/v1/messages", `{"model":"gpt-5-mini","max_tokens":16,"messages":[{"role":"user","content":"Hi."}]}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			up.Enqueue("/v1/chat/completions", fakeupstream.OpenAIError(401, "invalid_request_error", "invalid_api_key",
				"Incorrect API key provided: "+testOpenAIKey+" (header Authorization: Bearer "+testOpenAIKey+")"))
			resp := g.post(c.path, tok, c.body, e2eAnthropicHdr...)
			body := e2eRead(t, resp)
			if resp.StatusCode != 401 {
				t.Errorf("status %d, want the provider's 401", resp.StatusCode)
			}
			if strings.Contains(body, testOpenAIKey) {
				t.Errorf("the client got the provider key in the error: %s", body)
			}
			msg, _ := e2ePath(e2eJSON(t, body), "error", "message").(string)
			if !strings.Contains(msg, "Incorrect API key provided: "+secretRemoved) {
				t.Errorf("error message %q: want the provider's, its key removed", msg)
			}
		})
	}
}

// A provider (or the proxy in front of it) that closes its connection
// after an error answer, without saying so (no Connection: close), does
// not use up a retry: the gateway retried at once on the pooled
// connection the provider had just closed, which failed with EOF before
// the provider saw the request (audit 24K: attempts 3, two requests
// received). The retry goes out on a connection of its own.
func TestRetryAfterAnErrorUsesAFreshConnection(t *testing.T) {
	g, n := closingAfterError(t, "529 Overloaded", `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`)
	_, tok := e2eKey(g, "closing-provider")
	resp := g.post("/v1/messages", tok, `{"model":"claude-haiku-4-5","max_tokens":16,"messages":[{"role":"user","content":"Hi."}]}`, e2eAnthropicHdr...)
	e2eRead(t, resp)
	if resp.StatusCode != 529 {
		t.Errorf("status %d, want the provider's last 529", resp.StatusCode)
	}
	call := e2eCalls(g, 1)[0]
	if got := n.Load(); got != 3 || call["attempts"] != float64(3) {
		t.Errorf("the provider got %d requests for %v attempts recorded; want 3 and 3 (max_retries 2)", got, call["attempts"])
	}
}

// Whether a call's zero usage is exact says whether the provider may have
// had the request (audit 24K). A connection that fails after the request
// went out may have carried a request the provider read and bills: zero
// marked estimated, as after a timeout (it was an exact $0). A provider
// that was never reached bills nothing, also when the client leaves while
// the gateway waits to retry (it was marked estimated then).
func TestZeroUsageIsExactOnlyWhenTheProviderNeverHadTheRequest(t *testing.T) {
	t.Run("connection closed after the request", func(t *testing.T) {
		g, n := oddUpstream(t, "", func(w http.ResponseWriter, r *http.Request) {
			conn, _, err := http.NewResponseController(w).Hijack()
			if err != nil {
				t.Error(err)
				return
			}
			if tc, ok := conn.(*net.TCPConn); ok {
				_ = tc.SetLinger(0) // a reset
			}
			_ = conn.Close()
		})
		_, tok := e2eKey(g, "reset")
		resp := g.post("/v1/messages", tok, `{"model":"claude-haiku-4-5","max_tokens":16,"messages":[{"role":"user","content":"Hi."}]}`, e2eAnthropicHdr...)
		e2eRead(t, resp)
		call := e2eCalls(g, 1)[0]
		e2eWant(t, "call", call, map[string]any{"status": 502, "error_class": "UPSTREAM_UNREACHABLE", "usage_source": "estimated", "attempts": 3})
		// The gateway's own error names the trace where the SDK reads a
		// request id (audit 24K: it carried none).
		if id := resp.Header.Get("Request-Id"); id == "" || id != call["turn_id"] {
			t.Errorf("request-id %q, want the call's turn id %v", id, call["turn_id"])
		}
		if n.Load() != 3 {
			t.Errorf("the provider got %d requests, want 3", n.Load())
		}
	})
	t.Run("client left while the gateway waited to retry a refused connection", func(t *testing.T) {
		g := startGateway(t, gatewayConfig(tempDB(t), "http://127.0.0.1:1", ""))
		_, tok := e2eKey(g, "refused")
		ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond) // the first backoff is 375 ms or more
		defer cancel()
		if resp, err := e2ePostCtx(ctx, g, "/v1/messages", tok, `{"model":"claude-haiku-4-5","max_tokens":16,"messages":[{"role":"user","content":"Hi."}]}`, e2eAnthropicHdr...); err == nil {
			resp.Body.Close()
			t.Fatalf("the gateway answered %d before the client left", resp.StatusCode)
		}
		call := e2eCalls(g, 1)[0]
		e2eWant(t, "call", call, map[string]any{"status": 499, "error_class": "CANCELLED", "usage_source": "provider", "input_tokens": 0})
	})
}

// closingAfterError starts a gateway whose provider answers every
// request with status and body, Retry-After: 0, and closes the
// connection 20 ms later without saying so (no Connection: close).
func closingAfterError(t *testing.T, status, body string) (*testGateway, *atomic.Int64) {
	t.Helper()
	return oddUpstream(t, "", func(w http.ResponseWriter, r *http.Request) {
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		fmt.Fprintf(buf, "HTTP/1.1 %s\r\nContent-Type: application/json\r\nRetry-After: 0\r\nContent-Length: %d\r\n\r\n%s", status, len(body), body)
		_ = buf.Flush()
		time.Sleep(20 * time.Millisecond) // the gateway has its answer, and retries, before the close
		_ = conn.Close()
	})
}

// Review 24R2 of e7ef0e0 ("a retry after an error answer goes out on a
// connection of its own"). forward closes the error answer's body unread
// so that its connection is not reused, but two error answers still leave
// their connection in the pool:
//   - a 429: quotaExhausted reads its body to the end (to look for
//     insufficient_quota) before the retry, which returns the connection
//     to Go's pool, and the retry goes out on it;
//   - an error answer without a body (Content-Length: 0, a proxy's bare
//     502/503/529): Go's transport pools the connection as soon as the
//     headers are read.
//
// A provider or proxy that closes its connection after such an answer,
// without saying so, then fails the retry with EOF (a retry used up on a
// request the provider never saw, as in audit 24K's 529 case). Such a
// retry is now sent again as the same attempt (connTrace.afterError),
// counted in attempts (review 27C: the provider may have read it): here
// the provider read 3 requests of the 5 sent.
func TestRetryAfterAnyErrorUsesAFreshConnection(t *testing.T) {
	for _, c := range []struct {
		name, status, body string
	}{
		{"429 rate limit", "429 Too Many Requests", `{"type":"error","error":{"type":"rate_limit_error","message":"Rate limited"}}`},
		{"529 without a body", "529 Overloaded", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			g, n := closingAfterError(t, c.status, c.body)
			_, tok := e2eKey(g, "closing-provider")
			resp := g.post("/v1/messages", tok, `{"model":"claude-haiku-4-5","max_tokens":16,"messages":[{"role":"user","content":"Hi."}]}`, e2eAnthropicHdr...)
			e2eRead(t, resp)
			call := e2eCalls(g, 1)[0]
			if got := n.Load(); got != 3 || call["attempts"] != float64(5) || resp.StatusCode == http.StatusBadGateway {
				t.Errorf("status %d; the provider got %d requests for %v attempts recorded; want its own error after 3, and 5 attempts (max_retries 2, and the two retries sent again)",
					resp.StatusCode, got, call["attempts"])
			}
		})
	}
}

// Review 24R2 of 24f13d2 (scrubSecrets). Every configured header value of
// 16 bytes or more is treated as a credential, but README's own example of
// a provider header is the OpenAI-Project a team's calls are billed to, a
// project id (proj_…, not a secret), which OpenAI names in its errors
// ("Project `proj_…` does not have access to model `…`"). The developer and
// the operator then get "Project `[provider credential removed by the
// gateway]` …": told a credential leaked, and not told which project. Only
// the headers that carry a credential (api_key, Authorization, api-key,
// x-api-key, Helicone-Auth, cf-aig-authorization, x-portkey-api-key, …)
// should be scrubbed.
func TestScrubKeepsANonSecretProjectHeader(t *testing.T) {
	p := &provider{
		apiKey:  "sk-test-0123456789abcdef0123456789abcdef",
		headers: http.Header{"Openai-Project": {"proj_Xy12AbCdEf34GhIjKl56MnOp"}, "Api-Key": {"azure-0123456789abcdef"}},
	}
	p.secrets = credentialSecrets(p.apiKey, p.headers)
	body := []byte(`{"error":{"message":"Project ` + "`proj_Xy12AbCdEf34GhIjKl56MnOp`" + ` does not have access to model ` + "`gpt-5`" + `","type":"invalid_request_error","code":"model_not_found"}}`)
	got := string(p.scrubSecrets(append([]byte(nil), body...)))
	if !strings.Contains(got, "proj_Xy12AbCdEf34GhIjKl56MnOp") {
		t.Errorf("the provider's error lost its project id, called a credential: %s", got)
	}
	if leaked := string(p.scrubSecrets([]byte(`{"error":{"message":"bad key sk-test-0123456789abcdef0123456789abcdef"}}`))); strings.Contains(leaked, "sk-test-") {
		t.Errorf("the api key was not removed: %s", leaked)
	}
	if leaked := string(p.scrubSecrets([]byte(`{"error":{"message":"api-key azure-0123456789abcdef is not valid"}}`))); strings.Contains(leaked, "azure-") {
		t.Errorf("a header line's credential was not removed: %s", leaked)
	}
}

// An error event inside a stream is scrubbed of the provider's
// credentials as an error body is: a proxy that echoes the request's
// Authorization in a mid-stream error event had the provider key reach the
// developer, relayed or translated (left alone in session 24).
func TestProviderKeyEchoedInAStreamedErrorIsRemoved(t *testing.T) {
	g, _ := oddUpstream(t, "", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		if r.URL.Path == "/v1/messages" {
			echo := "invalid key " + testAnthropicKey
			fmt.Fprint(w, "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-haiku-4-5\",\"content\":[],\"stop_reason\":null,\"usage\":{\"input_tokens\":9,\"output_tokens\":1}}}\n\n")
			fmt.Fprint(w, "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n")
			fmt.Fprint(w, "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hel\"}}\n\n")
			fmt.Fprintf(w, "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":%q}}\n\n", echo)
			return
		}
		echo := "invalid key Bearer " + testOpenAIKey
		fmt.Fprint(w, "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-5-mini\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Hel\"}}]}\n\n")
		fmt.Fprintf(w, "data: {\"error\":{\"message\":%q,\"type\":\"server_error\",\"code\":null}}\n\n", echo)
	})
	_, tok := e2eKey(g, "stream-echo")
	for _, c := range []struct{ name, path, body string }{
		{"anthropic relayed", "/v1/messages", `{"model":"claude-haiku-4-5","max_tokens":16,"stream":true,"messages":[{"role":"user","content":"Hi."}]}`},
		{"openai relayed", "/v1/chat/completions", `{"model":"gpt-5-mini","stream":true,"messages":[{"role":"user","content":"Hi."}]}`},
		{"translated", "/v1/chat/completions", `{"model":"claude-haiku-4-5","stream":true,"messages":[{"role":"user","content":"Hi."}]}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp := g.post(c.path, tok, c.body, e2eAnthropicHdr...)
			body := e2eRead(t, resp)
			if strings.Contains(body, testAnthropicKey) || strings.Contains(body, testOpenAIKey) {
				t.Errorf("the client got a provider key in the stream: %s", body)
			}
			if !strings.Contains(body, "invalid key "+secretRemoved) && !strings.Contains(body, "invalid key Bearer "+secretRemoved) {
				t.Errorf("stream %q: want the provider's error event, its key removed", body)
			}
		})
	}
}

// Review 25R: the scrub of mid-stream errors runs only once the usage
// tracker has flagged an error, and the OpenAI tracker flags only
// {"error":{...}}. The gateway's own OpenAI error reader (parseErrorDetail)
// also takes {"error":"text"} (TGI, llama.cpp-style servers) and vLLM's
// {"object":"error","message":…}; the OpenAI→Anthropic translator turns
// them into an `event: error` — and the provider key a proxy echoed in
// them reached the client, relayed and translated.
func TestProviderKeyEchoedInOtherStreamedErrorShapesIsRemoved(t *testing.T) {
	g, _ := oddUpstream(t, "", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-5-mini\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Hel\"}}]}\n\n")
		echo := "invalid key Bearer " + testOpenAIKey
		if r.Header.Get("X-Shape") == "vllm" {
			fmt.Fprintf(w, "data: {\"object\":\"error\",\"message\":%q,\"type\":\"BadRequestError\",\"code\":401}\n\n", echo)
			return
		}
		fmt.Fprintf(w, "data: {\"error\":%q}\n\n", echo)
	})
	_, tok := e2eKey(g, "stream-echo-shapes")
	for _, c := range []struct{ name, path, body, shape string }{
		{"string error relayed", "/v1/chat/completions", `{"model":"gpt-5-mini","stream":true,"messages":[{"role":"user","content":"Hi."}]}`, "string"},
		{"string error translated", "/v1/messages", `{"model":"gpt-5-mini","max_tokens":16,"stream":true,"messages":[{"role":"user","content":"Hi."}]}`, "string"},
		{"vllm error relayed", "/v1/chat/completions", `{"model":"gpt-5-mini","stream":true,"messages":[{"role":"user","content":"Hi."}]}`, "vllm"},
		{"vllm error translated", "/v1/messages", `{"model":"gpt-5-mini","max_tokens":16,"stream":true,"messages":[{"role":"user","content":"Hi."}]}`, "vllm"},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp := g.post(c.path, tok, c.body, "Anthropic-Version", "2023-06-01", "X-Shape", c.shape)
			body := e2eRead(t, resp)
			if strings.Contains(body, testOpenAIKey) {
				t.Errorf("the client got the provider key in the stream:\n%s", body)
			}
		})
	}
	// Read as the provider's error, not as a cut stream.
	for _, call := range e2eCalls(g, 4) {
		if call["error_class"] != errUpstream {
			t.Errorf("call with a streamed error recorded as %v, want %s", call["error_class"], errUpstream)
		}
	}
}

// OpenAI's insufficient_quota comes as a 429, recorded RATE_LIMITED; the
// same error inside a stream (after its first chunk) or in a 200's body is
// recorded so too, not as an UPSTREAM_ERROR (review 26V).
func TestInsufficientQuotaInsideAnAnswerIsRateLimited(t *testing.T) {
	const quota = `{"error":{"message":"You exceeded your current quota.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}`
	g, _ := oddUpstream(t, "", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Where") == "body" {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, quota)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-5-mini\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Hel\"}}]}\n\n")
		fmt.Fprintf(w, "data: %s\n\n", quota)
	})
	_, tok := e2eKey(g, "quota-inside")
	for _, c := range []struct{ name, body, where string }{
		{"stream", `{"model":"gpt-5-mini","stream":true,"messages":[{"role":"user","content":"Hi."}]}`, "stream"},
		{"200 body", `{"model":"gpt-5-mini","messages":[{"role":"user","content":"Hi."}]}`, "body"},
	} {
		t.Run(c.name, func(t *testing.T) {
			e2eRead(t, g.post("/v1/chat/completions", tok, c.body, "X-Where", c.where))
		})
	}
	for _, call := range e2eCalls(g, 2) {
		if call["error_class"] != errRateLimited {
			t.Errorf("insufficient_quota inside an answer (stream %v) recorded as %v, want %s", call["stream"], call["error_class"], errRateLimited)
		}
	}
}
