package metis

// End-to-end: the provider's response-header `timeout` (a provider that
// does not answer in time gets the caller a 504 in its own shape, recorded
// as UPSTREAM_TIMEOUT; a stream longer than the timeout is never cut), and
// the official SDKs speaking HTTP/2 to the gateway behind Caddy's TLS, as
// they do in production.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	aoption "github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/openai/openai-go/v3"
	ooption "github.com/openai/openai-go/v3/option"
	"github.com/tidwall/gjson"

	"github.com/metisgateway/metis/internal/fakeupstream"
	"github.com/metisgateway/metis/store"
)

// e2eHeaderTimeout is the providers' `timeout` in the timeout tests.
const e2eHeaderTimeout = 300 * time.Millisecond

// e2eTimeoutConfig is gatewayConfig with `timeout 300ms` in both provider
// blocks.
func e2eTimeoutConfig(db, upstream string) string {
	return strings.ReplaceAll(gatewayConfig(db, upstream, ""), "max_retries 2",
		"timeout "+e2eHeaderTimeout.String()+"\n\t\t\tmax_retries 2")
}

// e2eCallOf waits for the llm.call_completed of the one call made with a
// key and returns it.
func e2eCallOf(g *testGateway, keyID string) map[string]any {
	g.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		for _, ev := range g.events(store.TypeCallCompleted) {
			if ev["gateway_key_id"] == keyID {
				return ev
			}
		}
		if time.Now().After(deadline) {
			g.t.Fatalf("no llm.call_completed for key %s after 10s", keyID)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// e2eTurnEvent is the payload of one event type of a turn.
func e2eTurnEvent(g *testGateway, turn, typ string) map[string]any {
	g.t.Helper()
	for _, ev := range g.events(typ) {
		if ev["turn_id"] == turn {
			return ev
		}
	}
	g.t.Fatalf("turn %s has no %s event", turn, typ)
	return nil
}

// A provider that has not sent its response headers when the provider's
// `timeout` (300ms) runs out: the client gets a 504 in its own API shape
// long before the provider would have answered (2s), the call is not
// retried (a timeout is not one of the retried failures), the provider's
// request is abandoned, and the trace records route.decided →
// llm.call_completed (UPSTREAM_TIMEOUT, 504, one attempt, no tokens, $0) →
// turn.completed. Claude Code always streams, so the streamed request is
// checked too: nothing has been sent yet, so it is a plain JSON 504.
func TestE2EUpstreamTimeoutIs504InCallerShape(t *testing.T) {
	up := fakeupstream.New(t)
	g := startGateway(t, e2eTimeoutConfig(tempDB(t), up.URL))
	_, tok := e2eKey(g, "slow-provider")
	const providerDelay = 2 * time.Second

	slow := func(r fakeupstream.Reply) fakeupstream.Reply {
		r.Delay = providerDelay
		return r
	}
	cases := []struct {
		name, path, body, shape, provider, model string
		stream                                   bool
		hdr                                      []string
		slow, fast                               fakeupstream.Reply
		checkBody                                func(t *testing.T, body map[string]any)
	}{
		{
			name: "anthropic", path: "/v1/messages", body: e2eHaikuBody, shape: "anthropic",
			provider: "anthropic", model: "claude-haiku-4-5", hdr: e2eAnthropicHdr,
			slow: slow(fakeupstream.AnthropicMessage("claude-haiku-4-5", 100, "end_turn", fakeupstream.TextBlock("too late"))),
			fast: fakeupstream.AnthropicMessage("claude-haiku-4-5", 100, "end_turn", fakeupstream.TextBlock("retried")),
			checkBody: func(t *testing.T, body map[string]any) {
				if body["type"] != "error" || e2ePath(body, "error", "type") != "timeout_error" || e2ePath(body, "error", "message") == "" {
					t.Errorf("body %v, want {type:error, error:{type:timeout_error, message}}", body)
				}
			},
		},
		{
			name: "anthropic-stream", path: "/v1/messages", shape: "anthropic", stream: true,
			body:     `{"model":"haiku","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"Say hello."}]}`,
			provider: "anthropic", model: "claude-haiku-4-5", hdr: e2eAnthropicHdr,
			slow: slow(fakeupstream.AnthropicTextStream("claude-haiku-4-5", "too late")),
			fast: fakeupstream.AnthropicTextStream("claude-haiku-4-5", "retried"),
			checkBody: func(t *testing.T, body map[string]any) {
				if body["type"] != "error" || e2ePath(body, "error", "type") != "timeout_error" || e2ePath(body, "error", "message") == "" {
					t.Errorf("body %v, want {type:error, error:{type:timeout_error, message}}", body)
				}
			},
		},
		{
			name: "openai", path: "/v1/chat/completions", body: e2eNanoBody, shape: "openai",
			provider: "openai", model: "gpt-5-nano",
			slow: slow(fakeupstream.OpenAICompletion("gpt-5-nano", "too late", 40)),
			fast: fakeupstream.OpenAICompletion("gpt-5-nano", "retried", 40),
			checkBody: func(t *testing.T, body map[string]any) {
				if body["type"] != nil || e2ePath(body, "error", "message") == "" ||
					e2ePath(body, "error", "type") != "server_error" || e2ePath(body, "error", "code") != "timeout" {
					t.Errorf("body %v, want {error:{message, type:server_error, code:timeout}}", body)
				}
			},
		},
	}
	var wantIn, wantCost float64
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := e2eIn(g, t)
			up.Reset()
			// A fast answer queued behind the slow one would show a retry.
			up.Enqueue(c.path, c.slow, c.fast)
			start := time.Now()
			resp := g.post(c.path, tok, c.body, c.hdr...)
			raw := e2eRead(t, resp)
			elapsed := time.Since(start)
			if resp.StatusCode != http.StatusGatewayTimeout || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
				t.Fatalf("client got %d (%s) %s, want a 504 JSON error", resp.StatusCode, resp.Header.Get("Content-Type"), raw)
			}
			c.checkBody(t, e2eJSON(t, raw))
			if elapsed < e2eHeaderTimeout || elapsed > 1500*time.Millisecond {
				t.Errorf("504 after %v; want it once the 300ms timeout runs out, well before the provider's %v", elapsed, providerDelay)
			}
			if n := up.Count(c.path); n != 1 {
				t.Errorf("upstream saw %d requests, want 1: a timeout is not retried", n)
			}
			if !up.WaitCanceled(time.Second) {
				t.Errorf("the provider's request was not abandoned within 1s of the timeout")
			}

			call := e2eCalls(g, i+1)[i]
			e2eWant(t, "call", call, map[string]any{
				"status": 504, "error_class": "UPSTREAM_TIMEOUT", "attempts": 1,
				"inbound_shape": c.shape, "provider": c.provider, "model": c.model, "stream": c.stream,
				"output_tokens": 0, "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0,
				"reasoning_tokens": 0, "upstream_request_id": "",
				// The provider had the prompt and worked on it all the
				// time it was given, reporting nothing: it bills the
				// prompt at least, so the call records the gateway's
				// estimate of it (review 26S).
				"usage_source": "estimated",
			})
			in := num(call, "input_tokens")
			if in <= 0 || in > int64(len(c.body)) {
				t.Errorf("input_tokens %d, want the prompt's estimate (about a quarter of the body's %d bytes)", in, len(c.body))
			}
			cost := e2eCost(t, call)
			if cost <= 0 {
				t.Errorf("cost_usd %v for a call whose provider had the prompt, want its estimate's price", cost)
			}
			wantIn += float64(in)
			wantCost += cost
			e2eCheckTriple(g, call)
			turn := call["turn_id"].(string)
			rd := e2eTurnEvent(g, turn, store.TypeRouteDecided)
			e2eWant(t, "route.decided", rd, map[string]any{"provider": c.provider, "model": c.model, "stream": c.stream})
			tc := e2eTurnEvent(g, turn, store.TypeTurnCompleted)
			e2eWant(t, "turn.completed", tc, map[string]any{"status": 504, "error_class": "UPSTREAM_TIMEOUT", "cost_usd": cost})
		})
	}

	// The spend figures an operator reads: three failed calls, their
	// prompts' estimates.
	g.sync()
	resp, err := http.Get(g.Analytics + "/analytics/cost?window=1h")
	if err != nil {
		t.Fatal(err)
	}
	totals := e2eJSON(t, e2eRead(t, resp))
	e2eWant(t, "/analytics/cost", totals, map[string]any{"calls": 3, "errors": 3,
		"input_tokens": wantIn, "output_tokens": 0})
	if got, _ := totals["total_cost_usd"].(float64); !e2eNear(got, wantCost) {
		t.Errorf("/analytics/cost: total_cost_usd = %v, want the calls' %v", got, wantCost)
	}
}

// A stream whose headers arrive at once but whose events are spread over
// about 1.2s — four times the provider's 300ms `timeout` — is relayed to
// the end: the timeout bounds the wait for response headers only. The
// Anthropic client receives the recorded stream byte for byte; an OpenAI
// client of the same Claude model (the translated stream) receives all of
// its text and [DONE]; both calls are recorded as successes with the
// recording's usage.
func TestE2EUpstreamTimeoutNeverCutsStream(t *testing.T) {
	up := fakeupstream.New(t)
	g := startGateway(t, e2eTimeoutConfig(tempDB(t), up.URL))
	_, tok := e2eKey(g, "long-stream")
	const streamFor = 1200 * time.Millisecond
	gapped := func() fakeupstream.Reply {
		r := fakeupstream.FromFixture(fakeupstream.FixtureAnthropicStream, 0)
		r.Gap = streamFor / time.Duration(len(r.Events)-1)
		return r
	}
	// The recording's text and tool input, as the deltas carry them.
	var wantText, wantJSON strings.Builder
	for _, ev := range gapped().Events {
		data := ev[strings.Index(ev, "data: ")+6:]
		wantText.WriteString(gjson.Get(data, "delta.text").String())
		wantJSON.WriteString(gjson.Get(data, "delta.partial_json").String())
	}
	// claude-3-7-sonnet, the recording's usage: 394 × 3e-6 + 79 × 15e-6 = 0.002367.
	const wantCost = 0.002367
	checkCall := func(t *testing.T, n int, shape string) {
		t.Helper()
		g := e2eIn(g, t)
		call := e2eCalls(g, n)[n-1]
		e2eWant(t, "call", call, map[string]any{"status": 200, "error_class": nil, "attempts": 1, "stream": true,
			"inbound_shape": shape, "model": "claude-3-7-sonnet-20250219", "usage_source": "provider",
			"input_tokens": 394, "output_tokens": 79})
		if c := e2eCost(t, call); !e2eNear(c, wantCost) {
			t.Errorf("cost %v, want %v", c, wantCost)
		}
		if ttft := num(call, "ttft_ms"); ttft <= 0 || ttft >= num(call, "latency_ms") {
			t.Errorf("ttft_ms %v, latency_ms %v: want the first token well before the end", call["ttft_ms"], call["latency_ms"])
		}
		e2eCheckTriple(g, call)
	}

	t.Run("anthropic", func(t *testing.T) {
		r := gapped()
		up.Enqueue("/v1/messages", r)
		start := time.Now()
		resp := g.post("/v1/messages", tok, `{"model":"sonnet","max_tokens":512,"stream":true,"messages":[{"role":"user","content":"Weather in SF?"}]}`,
			e2eAnthropicHdr...)
		body := e2eRead(t, resp)
		elapsed := time.Since(start)
		if resp.StatusCode != 200 {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
		if want := strings.Join(r.Events, ""); body != want {
			evs := e2eReadSSE(t, strings.NewReader(body))
			t.Errorf("after %v the client had %d events, not the %d recorded ones byte for byte; last: %+v",
				elapsed, len(evs), len(r.Events), evs[len(evs)-1])
		} else if elapsed < streamFor*9/10 {
			t.Fatalf("the whole stream took %v, not longer than the 300ms timeout: the test proves nothing", elapsed)
		}
		checkCall(t, 1, "anthropic")
	})

	t.Run("openai-client", func(t *testing.T) {
		up.Enqueue("/v1/messages", gapped())
		start := time.Now()
		resp := g.post("/v1/chat/completions", tok, `{"model":"sonnet","stream":true,"messages":[{"role":"user","content":"Weather in SF?"}]}`)
		evs := e2eReadSSE(t, resp.Body)
		resp.Body.Close()
		elapsed := time.Since(start)
		if resp.StatusCode != 200 || len(evs) == 0 {
			t.Fatalf("status %d, events %v", resp.StatusCode, evs)
		}
		var text, args strings.Builder
		finish := ""
		for _, ev := range evs[:len(evs)-1] {
			if gjson.Get(ev.Data, "error").Exists() {
				t.Errorf("error chunk in the stream: %s", ev.Data)
			}
			text.WriteString(gjson.Get(ev.Data, "choices.0.delta.content").String())
			args.WriteString(gjson.Get(ev.Data, "choices.0.delta.tool_calls.0.function.arguments").String())
			if f := gjson.Get(ev.Data, "choices.0.finish_reason").String(); f != "" {
				finish = f
			}
		}
		complete := evs[len(evs)-1].Data == "[DONE]"
		if !complete {
			t.Errorf("after %v the stream ended with %+v, want [DONE]", elapsed, evs[len(evs)-1])
		}
		if text.String() != wantText.String() || args.String() != wantJSON.String() || finish != "tool_calls" {
			t.Errorf("client got text %q, tool arguments %q, finish %q; want %q, %q, tool_calls",
				text.String(), args.String(), finish, wantText.String(), wantJSON.String())
		} else if complete && elapsed < streamFor*9/10 {
			t.Fatalf("the whole stream took %v, not longer than the 300ms timeout: the test proves nothing", elapsed)
		}
		checkCall(t, 2, "openai")
	})
}

// e2eProtoRecorder is a client transport that records the protocol of
// every response.
type e2eProtoRecorder struct {
	rt     http.RoundTripper
	mu     sync.Mutex
	protos []string
}

func (p *e2eProtoRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := p.rt.RoundTrip(req)
	if err == nil {
		p.mu.Lock()
		p.protos = append(p.protos, resp.Proto)
		p.mu.Unlock()
	}
	return resp, err
}

// since returns the protocols of the responses after the first n.
func (p *e2eProtoRecorder) since(n int) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.protos[n:]...)
}

func (p *e2eProtoRecorder) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.protos)
}

// tlsCaddyfile is the Caddyfile of a gateway on an HTTPS loopback site
// (Caddy's internal CA, no trust-store install, its storage under
// storage) and analytics on HTTP, metisBody the metis option's body,
// extraSites after them.
func tlsCaddyfile(storage, metisBody string, gwPort, anPort int, extraSites string) string {
	return string(caddyfile.Format([]byte(fmt.Sprintf(`{
	admin off
	persist_config off
	grace_period 1s
	skip_install_trust
	auto_https disable_redirects
	storage file_system %s
	servers {
		protocols h1 h2
	}
	log {
		level ERROR
	}
	metis {
		%s
	}
}
https://127.0.0.1:%d {
	tls internal
	metis_gateway
}
http://127.0.0.1:%d {
	metis_analytics
}
%s`, storage, metisBody, gwPort, anPort, extraSites))))
}

// e2eStartTLS starts the gateway on an HTTPS loopback site with Caddy's
// internal CA (no trust-store install, storage under the test's temporary
// folder), both providers pointed at up. It returns the gateway, with URL
// the https site, and an HTTP/2-capable client that trusts Caddy's root.
func e2eStartTLS(t *testing.T, up *fakeupstream.Server) (*testGateway, *http.Client, *e2eProtoRecorder) {
	t.Helper()
	storage := filepath.Join(t.TempDir(), "caddy")
	db := tempDB(t)
	g := e2eStartCustom(t, func(gw, an int) string {
		return tlsCaddyfile(storage, gatewayConfig(db, up.URL, ""), gw, an, "")
	})
	g.URL = fmt.Sprintf("https://127.0.0.1:%d", g.gwPort)

	// Caddy's local root, created when the config loaded.
	rootPEM, err := os.ReadFile(filepath.Join(storage, "pki", "authorities", "local", "root.crt"))
	if err != nil {
		t.Fatalf("Caddy's internal root: %v", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(rootPEM) {
		t.Fatal("Caddy's internal root is not PEM")
	}
	rec := &e2eProtoRecorder{rt: &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
		ForceAttemptHTTP2: true,
	}}
	t.Cleanup(rec.rt.(*http.Transport).CloseIdleConnections)
	client := &http.Client{Transport: rec}

	// The certificate is issued in the background: wait for a handshake
	// that verifies against the root and negotiates h2.
	addr := fmt.Sprintf("127.0.0.1:%d", g.gwPort)
	deadline := time.Now().Add(15 * time.Second)
	for {
		conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: roots, NextProtos: []string{"h2", "http/1.1"}})
		if err == nil {
			proto := conn.ConnectionState().NegotiatedProtocol
			conn.Close()
			if proto != "h2" {
				t.Fatalf("the TLS site negotiated %q, want h2", proto)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no TLS handshake with the site within 15s: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return g, client, rec
}

// The official SDKs talking to the gateway over HTTPS with HTTP/2, as they
// do when the gateway is deployed behind Caddy's TLS: the Anthropic SDK's
// non-streaming and streaming messages parse as they would against the
// provider, a stream the client abandons cancels the provider call at
// once and is recorded as CANCELLED, and the OpenAI SDK streams a chat
// completion. Every response was served over HTTP/2, and every call is
// recorded with its usage and dollars.
func TestE2EHTTP2OverTLS(t *testing.T) {
	up := fakeupstream.New(t)
	g, hc, rec := e2eStartTLS(t, up)
	// overH2 runs one client exchange with clients of a fresh key named
	// name, checks that its responses came over HTTP/2 and returns its
	// llm.call_completed.
	overH2 := func(t *testing.T, name string, run func(t *testing.T, ac anthropic.Client, oc openai.Client)) map[string]any {
		t.Helper()
		k, tok := e2eKey(e2eIn(g, t), name)
		ac := anthropic.NewClient(aoption.WithHTTPClient(hc), aoption.WithBaseURL(g.URL), aoption.WithAPIKey(tok),
			aoption.WithMaxRetries(0), aoption.WithRequestTimeout(30*time.Second))
		oc := openai.NewClient(ooption.WithHTTPClient(hc), ooption.WithBaseURL(g.URL+"/v1"), ooption.WithAPIKey(tok),
			ooption.WithMaxRetries(0), ooption.WithRequestTimeout(30*time.Second))
		before := rec.count()
		run(t, ac, oc)
		got := rec.since(before)
		if len(got) == 0 {
			t.Errorf("no response recorded")
		}
		for _, p := range got {
			if p != "HTTP/2.0" {
				t.Errorf("a response came over %s, want HTTP/2.0 (all: %v)", p, got)
				break
			}
		}
		return e2eCallOf(e2eIn(g, t), k.ID)
	}

	// First, so that no earlier exchange can have signalled a cancellation.
	t.Run("anthropic-stream-cancelled", func(t *testing.T) {
		// Events: message_start (input 2000, output 1), content_block_start,
		// text_delta "one two" | stall until the client hangs up.
		r := fakeupstream.AnthropicStream("claude-haiku-4-5", 2000, "end_turn", fakeupstream.TextBlock("one two three four five six"))
		r.StallAfter = 3
		up.Enqueue("/v1/messages", r)
		call := overH2(t, "h2-cancel", func(t *testing.T, ac anthropic.Client, oc openai.Client) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			s := ac.Messages.NewStreaming(ctx, anthropic.MessageNewParams{
				Model: "haiku", MaxTokens: 256,
				Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("Count to six."))},
			})
			defer s.Close()
			text := ""
			for s.Next() {
				if d, ok := s.Current().AsAny().(anthropic.ContentBlockDeltaEvent); ok {
					text += d.Delta.Text
					break
				}
			}
			if text != "one two" {
				t.Fatalf("first delta %q (stream error %v), want \"one two\"", text, s.Err())
			}
			cancel()
			if !up.WaitCanceled(time.Second) {
				t.Errorf("the provider call was not cancelled within 1s of the client hanging up")
			}
		})
		// Known when the client left: input 2000 from message_start, output
		// estimated from the 7 streamed bytes, (7+3)/4 = 2. haiku-4-5:
		// 2000 × $1/MTok + 2 × $5/MTok = 0.002 + 0.00001 = 0.00201.
		e2eWant(t, "call", call, map[string]any{"error_class": "CANCELLED", "usage_source": "estimated", "stream": true,
			"inbound_shape": "anthropic", "attempts": 1, "input_tokens": 2000, "output_tokens": 2})
		if c := e2eCost(t, call); !e2eNear(c, 0.00201) {
			t.Errorf("cost %v, want 0.00201", c)
		}
		e2eCheckTriple(e2eIn(g, t), call)
	})

	t.Run("anthropic-message", func(t *testing.T) {
		up.Enqueue("/v1/messages", fakeupstream.FromFixture(fakeupstream.FixtureAnthropicNonStream, 0))
		call := overH2(t, "h2-message", func(t *testing.T, ac anthropic.Client, oc openai.Client) {
			msg, err := ac.Messages.New(context.Background(), anthropic.MessageNewParams{
				Model: "sonnet", MaxTokens: 512,
				Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("What's the weather in San Francisco? Use fahrenheit."))},
				Tools:    []anthropic.ToolUnionParam{e2eWeatherTool},
			})
			if err != nil {
				t.Fatal(err)
			}
			if msg.StopReason != anthropic.StopReasonToolUse || len(msg.Content) != 2 ||
				msg.Content[0].Text != "I'll get the current weather in San Francisco for you in Fahrenheit." ||
				msg.Content[1].Name != "get_weather" || msg.Content[1].ID != "toolu_01TZR6ZrLHdpAWdmhVPuDfjQ" ||
				!e2eSameJSON(t, string(msg.Content[1].Input), `{"city":"San Francisco","units":"fahrenheit"}`) {
				t.Errorf("parsed stop %q content %+v", msg.StopReason, msg.Content)
			}
			if msg.Usage.InputTokens != 402 || msg.Usage.OutputTokens != 89 {
				t.Errorf("usage %d/%d, want 402/89", msg.Usage.InputTokens, msg.Usage.OutputTokens)
			}
		})
		// claude-3-7-sonnet: 402 × 3e-6 + 89 × 15e-6 = 0.002541.
		e2eWant(t, "call", call, map[string]any{"status": 200, "error_class": nil, "stream": false,
			"input_tokens": 402, "output_tokens": 89, "usage_source": "provider"})
		if c := e2eCost(t, call); !e2eNear(c, 0.002541) {
			t.Errorf("cost %v, want 0.002541", c)
		}
		e2eCheckTriple(e2eIn(g, t), call)
	})

	t.Run("anthropic-stream", func(t *testing.T) {
		r := fakeupstream.FromFixture(fakeupstream.FixtureAnthropicStream, 0)
		var wantDeltas []string
		for _, ev := range r.Events {
			if d := gjson.Get(ev[strings.Index(ev, "data: ")+6:], "delta.text"); d.Exists() {
				wantDeltas = append(wantDeltas, d.String())
			}
		}
		up.Enqueue("/v1/messages", r)
		call := overH2(t, "h2-stream", func(t *testing.T, ac anthropic.Client, oc openai.Client) {
			s := ac.Messages.NewStreaming(context.Background(), anthropic.MessageNewParams{
				Model: "sonnet", MaxTokens: 512,
				Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("Weather in SF?"))},
				Tools:    []anthropic.ToolUnionParam{e2eWeatherTool},
			})
			defer s.Close()
			var m anthropic.Message
			var deltas []string
			for s.Next() {
				ev := s.Current()
				if d, ok := ev.AsAny().(anthropic.ContentBlockDeltaEvent); ok && d.Delta.Type == "text_delta" {
					deltas = append(deltas, d.Delta.Text)
				}
				if err := m.Accumulate(ev); err != nil {
					t.Fatalf("accumulating: %v", err)
				}
			}
			if err := s.Err(); err != nil {
				t.Fatalf("stream: %v", err)
			}
			if strings.Join(deltas, "|") != strings.Join(wantDeltas, "|") {
				t.Errorf("text deltas %q, want the recording's %q", deltas, wantDeltas)
			}
			if m.StopReason != anthropic.StopReasonToolUse || len(m.Content) != 2 || m.Content[1].Name != "get_weather" ||
				!e2eSameJSON(t, string(m.Content[1].Input), `{"city":"San Francisco"}`) {
				t.Errorf("accumulated stop %q content %+v", m.StopReason, m.Content)
			}
			if m.Usage.InputTokens != 394 || m.Usage.OutputTokens != 79 {
				t.Errorf("final usage %d/%d, want 394/79", m.Usage.InputTokens, m.Usage.OutputTokens)
			}
		})
		// 394 × 3e-6 + 79 × 15e-6 = 0.002367.
		e2eWant(t, "call", call, map[string]any{"status": 200, "error_class": nil, "stream": true,
			"input_tokens": 394, "output_tokens": 79, "usage_source": "provider"})
		if c := e2eCost(t, call); !e2eNear(c, 0.002367) {
			t.Errorf("cost %v, want 0.002367", c)
		}
		e2eCheckTriple(e2eIn(g, t), call)
	})

	t.Run("openai-stream", func(t *testing.T) {
		const text = "Hello over HTTP/2 from nano."
		up.Enqueue("/v1/chat/completions", fakeupstream.OpenAITextStream("gpt-5-nano", text, 25, true))
		call := overH2(t, "h2-openai-stream", func(t *testing.T, ac anthropic.Client, oc openai.Client) {
			s := oc.Chat.Completions.NewStreaming(context.Background(), openai.ChatCompletionNewParams{
				Model:         "nano",
				Messages:      []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Say hello.")},
				StreamOptions: openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)},
			})
			defer s.Close()
			var acc openai.ChatCompletionAccumulator
			for s.Next() {
				acc.AddChunk(s.Current())
			}
			if err := s.Err(); err != nil {
				t.Fatalf("stream: %v", err)
			}
			// Completion tokens: len(text)/4+1 = 28/4+1 = 8.
			if len(acc.Choices) != 1 || acc.Choices[0].Message.Content != text || acc.Choices[0].FinishReason != "stop" ||
				acc.Usage.PromptTokens != 25 || acc.Usage.CompletionTokens != 8 {
				t.Errorf("accumulated %+v usage %+v", acc.Choices, acc.Usage)
			}
		})
		// gpt-5-nano: 25 × 0.05e-6 + 8 × 0.40e-6 = 0.00000125 + 0.0000032 = 0.00000445.
		e2eWant(t, "call", call, map[string]any{"status": 200, "error_class": nil, "stream": true, "inbound_shape": "openai",
			"model": "gpt-5-nano", "input_tokens": 25, "output_tokens": 8, "usage_source": "provider"})
		if c := e2eCost(t, call); !e2eNear(c, 0.00000445) {
			t.Errorf("cost %v, want 0.00000445", c)
		}
		e2eCheckTriple(e2eIn(g, t), call)
	})
}
