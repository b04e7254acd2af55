package metis

// Review 30H: the gateway behind Caddy's real TLS (tls internal), reached
// over HTTP/2 and HTTP/3 by real clients: multiplexing, flushing,
// cancellation, slow readers, errors in the caller's shape, Claude Code
// over HTTPS.

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	aoption "github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/openai/openai-go/v3"
	ooption "github.com/openai/openai-go/v3/option"
	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
	"github.com/tidwall/gjson"

	"github.com/metisgateway/metis/internal/fakeupstream"
	"github.com/metisgateway/metis/store"
)

// r30Env is a gateway on https://127.0.0.1:port (h1 h2 h3, tls internal).
type r30Env struct {
	g       *testGateway
	roots   *x509.CertPool
	rootPEM string // path of Caddy's root certificate
}

func r30Start(t *testing.T, upURL, extra, site string) *r30Env {
	t.Helper()
	return r30StartBody(t, gatewayConfig(tempDB(t), upURL, extra), site)
}

func r30StartBody(t *testing.T, metisBody, site string) *r30Env {
	t.Helper()
	storage := filepath.Join(t.TempDir(), "caddy")
	if site == "" {
		site = "metis_gateway"
	}
	g := e2eStartCustom(t, func(gw, an int) string {
		return string(caddyfile.Format([]byte(fmt.Sprintf(`{
	admin off
	persist_config off
	grace_period 1s
	skip_install_trust
	auto_https disable_redirects
	storage file_system %s
	servers {
		protocols h1 h2 h3
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
	%s
}
http://127.0.0.1:%d {
	metis_analytics
}
`, storage, metisBody, gw, site, an))))
	})
	g.URL = fmt.Sprintf("https://127.0.0.1:%d", g.gwPort)
	rootPath := filepath.Join(storage, "pki", "authorities", "local", "root.crt")
	pem, err := os.ReadFile(rootPath)
	if err != nil {
		t.Fatalf("Caddy's internal root: %v", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		t.Fatal("root not PEM")
	}
	addr := fmt.Sprintf("127.0.0.1:%d", g.gwPort)
	deadline := time.Now().Add(15 * time.Second)
	for {
		conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: roots, NextProtos: []string{"h2"}})
		if err == nil {
			conn.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no TLS handshake within 15s: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return &r30Env{g: g, roots: roots, rootPEM: rootPath}
}

// h2 returns an HTTP/2 client and a counter of the TCP connections it
// dialled. h2cfg, when set, tunes its flow-control windows.
func (e *r30Env) h2(t *testing.T, h2cfg *http.HTTP2Config) (*http.Client, *atomic.Int32) {
	dials := &atomic.Int32{}
	tr := &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: e.roots},
		ForceAttemptHTTP2: true,
		HTTP2:             h2cfg,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			dials.Add(1)
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}, dials
}

// h3 returns an HTTP/3 client.
func (e *r30Env) h3(t *testing.T) *http.Client {
	tr := &http3.Transport{TLSClientConfig: &tls.Config{RootCAs: e.roots}}
	t.Cleanup(func() { tr.Close() })
	return &http.Client{Transport: tr}
}

func r30Req(ctx context.Context, t *testing.T, hc *http.Client, url, tok, body string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Anthropic-Version", "2023-06-01")
	if tok != "" {
		req.Header.Set("X-Api-Key", tok)
	}
	return hc.Do(req)
}

// r30Event is one SSE event with its arrival time.
type r30Event struct {
	Name, Data string
	At         time.Time
}

func r30ReadEvents(r io.Reader, each func(r30Event) bool) error {
	br := bufio.NewReader(r)
	var ev r30Event
	for {
		line, err := br.ReadString('\n')
		line = strings.TrimRight(line, "\r\n")
		switch {
		case strings.HasPrefix(line, "event:"):
			ev.Name = strings.TrimSpace(line[6:])
		case strings.HasPrefix(line, "data:"):
			ev.Data = strings.TrimSpace(line[5:])
		case line == "" && err == nil:
			if ev.Data != "" || ev.Name != "" {
				ev.At = time.Now()
				if !each(ev) {
					return nil
				}
			}
			ev = r30Event{}
		}
		if err != nil {
			if err == io.EOF {
				return nil
			}
			return err
		}
	}
}

func r30Fixture() (fakeupstream.Reply, []string) {
	r := fakeupstream.FromFixture(fakeupstream.FixtureAnthropicStream, 0)
	var deltas []string
	for _, ev := range r.Events {
		if d := gjson.Get(ev[strings.Index(ev, "data: ")+6:], "delta.text"); d.Exists() {
			deltas = append(deltas, d.String())
		}
	}
	return r, deltas
}

func r30Match(marker string) func(*fakeupstream.Recorded) bool {
	return func(r *fakeupstream.Recorded) bool { return strings.Contains(r.Body, marker) }
}

// 1. The SDKs over HTTPS/HTTP/2: 50 concurrent streams multiplexed on one
// connection, same shape and cross-shape, every one complete and in order,
// every call traced and priced exactly.
func TestReview30HH2FiftyStreamsOneConnection(t *testing.T) {
	up := fakeupstream.New(t)
	e := r30Start(t, up.URL, "", "")
	g := e.g
	hc, dials := e.h2(t, nil)
	_, tok := e2eKey(g, "h2-fifty")
	ac := anthropic.NewClient(aoption.WithHTTPClient(hc), aoption.WithBaseURL(g.URL), aoption.WithAPIKey(tok),
		aoption.WithMaxRetries(0), aoption.WithRequestTimeout(60*time.Second))
	oc := openai.NewClient(ooption.WithHTTPClient(hc), ooption.WithBaseURL(g.URL+"/v1"), ooption.WithAPIKey(tok),
		ooption.WithMaxRetries(0), ooption.WithRequestTimeout(60*time.Second))

	// Warm the connection so that all 50 share it.
	up.Enqueue("/v1/messages", fakeupstream.AnthropicMessage("claude-haiku-4-5", 10, "end_turn", fakeupstream.TextBlock("warm")))
	if _, err := ac.Messages.New(context.Background(), anthropic.MessageNewParams{Model: "haiku", MaxTokens: 16,
		Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("hi"))}}); err != nil {
		t.Fatal(err)
	}

	const n = 50
	const nanoText = "Hello over HTTP/2 from nano, multiplexed."
	fix, wantDeltas := r30Fixture()
	for i := 0; i < n; i++ {
		r := fix
		r.Gap = 3 * time.Millisecond
		if i%4 == 0 || i%4 == 2 {
			up.Enqueue("/v1/messages", r)
		} else {
			o := fakeupstream.OpenAITextStream("gpt-5-nano", nanoText, 25, true)
			o.Gap = 3 * time.Millisecond
			up.Enqueue("/v1/chat/completions", o)
		}
	}
	var mu sync.Mutex
	conns := map[string]int{}
	var wg sync.WaitGroup
	errs := make([]string, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
				GotConn: func(ci httptrace.GotConnInfo) {
					mu.Lock()
					conns[ci.Conn.LocalAddr().String()]++
					mu.Unlock()
				},
			})
			fail := func(f string, a ...any) {
				errs[i] = fmt.Sprintf("stream %d (kind %d): ", i, i%4) + fmt.Sprintf(f, a...)
			}
			switch i % 4 {
			case 0, 3: // Anthropic client: sonnet (same shape) or nano (cross-shape)
				model := "sonnet"
				if i%4 == 3 {
					model = "nano"
				}
				s := ac.Messages.NewStreaming(ctx, anthropic.MessageNewParams{Model: anthropic.Model(model), MaxTokens: 512,
					Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("Weather in SF?"))},
					Tools:    []anthropic.ToolUnionParam{e2eWeatherTool}})
				defer s.Close()
				var m anthropic.Message
				var deltas []string
				for s.Next() {
					ev := s.Current()
					if d, ok := ev.AsAny().(anthropic.ContentBlockDeltaEvent); ok && d.Delta.Type == "text_delta" {
						deltas = append(deltas, d.Delta.Text)
					}
					if err := m.Accumulate(ev); err != nil {
						fail("accumulate: %v", err)
						return
					}
				}
				if err := s.Err(); err != nil {
					fail("stream: %v", err)
					return
				}
				if model == "sonnet" {
					if strings.Join(deltas, "|") != strings.Join(wantDeltas, "|") || m.StopReason != anthropic.StopReasonToolUse ||
						m.Usage.InputTokens != 394 || m.Usage.OutputTokens != 79 {
						fail("deltas %q stop %q usage %d/%d", deltas, m.StopReason, m.Usage.InputTokens, m.Usage.OutputTokens)
					}
				} else if strings.Join(deltas, "") != nanoText || m.StopReason != anthropic.StopReasonEndTurn || m.Usage.OutputTokens != 11 {
					fail("text %q stop %q usage %d/%d", strings.Join(deltas, ""), m.StopReason, m.Usage.InputTokens, m.Usage.OutputTokens)
				}
			case 1, 2: // OpenAI client: nano (same shape) or sonnet (cross-shape)
				model := "nano"
				if i%4 == 2 {
					model = "sonnet"
				}
				s := oc.Chat.Completions.NewStreaming(ctx, openai.ChatCompletionNewParams{Model: model,
					Messages:      []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Weather in SF?")},
					StreamOptions: openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}})
				defer s.Close()
				var acc openai.ChatCompletionAccumulator
				var text []string
				for s.Next() {
					c := s.Current()
					if len(c.Choices) > 0 && c.Choices[0].Delta.Content != "" {
						text = append(text, c.Choices[0].Delta.Content)
					}
					acc.AddChunk(c)
				}
				if err := s.Err(); err != nil {
					fail("stream: %v", err)
					return
				}
				if model == "nano" {
					if strings.Join(text, "") != nanoText || acc.Usage.PromptTokens != 25 || acc.Usage.CompletionTokens != 11 {
						fail("text %q usage %+v", strings.Join(text, ""), acc.Usage)
					}
				} else if strings.Join(text, "|") != strings.Join(wantDeltas, "|") || acc.Usage.PromptTokens != 394 || acc.Usage.CompletionTokens != 79 ||
					len(acc.Choices) != 1 || acc.Choices[0].FinishReason != "tool_calls" {
					fail("text %q usage %+v", text, acc.Usage)
				}
			}
		}(i)
	}
	wg.Wait()
	for _, e := range errs {
		if e != "" {
			t.Error(e)
		}
	}
	if d := dials.Load(); d != 1 || len(conns) != 1 {
		t.Errorf("%d TCP connections dialled, %d used (%v): want the 50 streams multiplexed on one", d, len(conns), conns)
	}
	calls := e2eCalls(g, n+1)
	// sonnet 3.7: 394×3e-6 + 79×15e-6 = 0.002367. nano: 25×0.05e-6 + 11×0.4e-6 = 0.00000565.
	got := map[string]int{}
	for _, c := range calls[1:] {
		key := fmt.Sprintf("%v→%v", c["inbound_shape"], c["model"])
		got[key]++
		want := 0.00000565
		wantIn, wantOut := 25, 11
		if c["model"] == "claude-3-7-sonnet-20250219" {
			want, wantIn, wantOut = 0.002367, 394, 79
		}
		e2eWant(t, "call", c, map[string]any{"status": 200, "error_class": nil, "stream": true, "usage_source": "provider",
			"input_tokens": wantIn, "output_tokens": wantOut})
		if cost := e2eCost(t, c); !e2eNear(cost, want) {
			t.Errorf("%s: cost %v, want %v", key, cost, want)
		}
	}
	wantKinds := map[string]int{"anthropic→claude-3-7-sonnet-20250219": 13, "openai→gpt-5-nano": 13,
		"openai→claude-3-7-sonnet-20250219": 12, "anthropic→gpt-5-nano": 12}
	if fmt.Sprint(got) != fmt.Sprint(wantKinds) {
		t.Errorf("calls by shape→model %v, want %v", got, wantKinds)
	}
}

// r30Flush streams the Anthropic recording with a gap between events and
// checks that each text delta reaches the client when the provider sent
// it, not held back, for the same shape and translated to OpenAI's.
func r30Flush(t *testing.T, e *r30Env, up *fakeupstream.Server, hc *http.Client, wantProto string) {
	_, tok := e2eKey(e2eIn(e.g, t), "flush-"+strings.ReplaceAll(wantProto, "/", ""))
	const gap = 150 * time.Millisecond
	for _, shape := range []string{"anthropic", "openai"} {
		t.Run(shape, func(t *testing.T) {
			r, wantDeltas := r30Fixture()
			r.Gap = gap
			// index in the provider's stream of each text delta
			var idx []int
			for i, ev := range r.Events {
				if gjson.Get(ev[strings.Index(ev, "data: ")+6:], "delta.text").Exists() {
					idx = append(idx, i)
				}
			}
			up.Enqueue("/v1/messages", r)
			path, body := "/v1/messages", `{"model":"sonnet","max_tokens":512,"stream":true,"messages":[{"role":"user","content":"Weather in SF?"}]}`
			if shape == "openai" {
				path, body = "/v1/chat/completions", `{"model":"sonnet","stream":true,"messages":[{"role":"user","content":"Weather in SF?"}]}`
			}
			start := time.Now()
			resp, err := r30Req(context.Background(), t, hc, e.g.URL+path, tok, body)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.Proto != wantProto || resp.StatusCode != 200 {
				t.Fatalf("%s %d, want %s 200", resp.Proto, resp.StatusCode, wantProto)
			}
			var at []time.Duration
			var text []string
			r30ReadEvents(resp.Body, func(ev r30Event) bool {
				d := gjson.Get(ev.Data, "delta.text")
				if shape == "openai" {
					d = gjson.Get(ev.Data, "choices.0.delta.content")
				}
				if d.Exists() && d.String() != "" {
					at = append(at, ev.At.Sub(start))
					text = append(text, d.String())
				}
				return true
			})
			if strings.Join(text, "|") != strings.Join(wantDeltas, "|") {
				t.Fatalf("text %q, want %q", text, wantDeltas)
			}
			base := at[0] - time.Duration(idx[0])*gap
			for k := range at {
				late := at[k] - time.Duration(idx[k])*gap - base
				if late > 120*time.Millisecond || late < -120*time.Millisecond {
					t.Errorf("text delta %d (provider event %d, sent at %v) arrived at %v: %v off the provider's pacing",
						k, idx[k], time.Duration(idx[k])*gap, at[k]-base, late)
				}
			}
			t.Logf("%s: first text at %v, last at %v, provider stream spans %v", shape, at[0], at[len(at)-1], time.Duration(len(r.Events)-1)*gap)
		})
	}
}

// 1b/4a. Events are flushed as the provider sends them, over h2 and h3.
func TestReview30HFlushH2H3(t *testing.T) {
	up := fakeupstream.New(t)
	e := r30Start(t, up.URL, "", "")
	t.Run("h2", func(t *testing.T) {
		hc, _ := e.h2(t, nil)
		r30Flush(t, e, up, hc, "HTTP/2.0")
	})
	t.Run("h3", func(t *testing.T) {
		r30Flush(t, e, up, e.h3(t), "HTTP/3.0")
	})
}

// 2. A client cancelling one stream (RST_STREAM over h2, a stream reset
// over h3) cancels the provider's request within 1 s and is recorded
// CANCELLED with the usage so far; the other streams on the same
// connection finish byte for byte.
func TestReview30HCancelOneOfThreeStreams(t *testing.T) {
	up := fakeupstream.New(t)
	e := r30Start(t, up.URL, "", "")
	run := func(t *testing.T, hc *http.Client, wantProto string) {
		g := e2eIn(e.g, t)
		kv, vtok := e2eKey(g, "victim-"+wantProto)
		kb, btok := e2eKey(g, "bystander-"+wantProto)
		// warm the connection
		up.Enqueue("/v1/messages", fakeupstream.AnthropicMessage("claude-haiku-4-5", 10, "end_turn", fakeupstream.TextBlock("warm")))
		resp, err := r30Req(context.Background(), t, hc, g.URL+"/v1/messages", btok, `{"model":"haiku","max_tokens":16,"messages":[{"role":"user","content":"warm"}]}`)
		if err != nil {
			t.Fatal(err)
		}
		e2eRead(t, resp)
		if resp.Proto != wantProto {
			t.Fatalf("proto %s, want %s", resp.Proto, wantProto)
		}

		v := fakeupstream.AnthropicStream("claude-haiku-4-5", 2000, "end_turn", fakeupstream.TextBlock("one two three four five six"))
		v.StallAfter = 3
		v.Match = r30Match("VICTIM")
		fix, _ := r30Fixture()
		fix.Gap = 80 * time.Millisecond
		fix.Match = r30Match("BYSTANDER")
		up.Enqueue("/v1/messages", fix, fix, v)
		want := strings.Join(fix.Events, "")

		var wg sync.WaitGroup
		got := make([]string, 2)
		for i := range got {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				resp, err := r30Req(context.Background(), t, hc, g.URL+"/v1/messages", btok,
					`{"model":"sonnet","max_tokens":512,"stream":true,"messages":[{"role":"user","content":"BYSTANDER"}]}`)
				if err != nil {
					got[i] = "error: " + err.Error()
					return
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				got[i] = string(b)
				if err != nil {
					got[i] += " read error: " + err.Error()
				}
			}(i)
		}
		time.Sleep(200 * time.Millisecond)
		ctx, cancel := context.WithCancel(context.Background())
		resp, err = r30Req(ctx, t, hc, g.URL+"/v1/messages", vtok,
			`{"model":"haiku","max_tokens":256,"stream":true,"messages":[{"role":"user","content":"VICTIM"}]}`)
		if err != nil {
			t.Fatal(err)
		}
		text := ""
		r30ReadEvents(resp.Body, func(ev r30Event) bool {
			text += gjson.Get(ev.Data, "delta.text").String()
			return text == ""
		})
		if text != "one two" {
			t.Fatalf("victim's first delta %q", text)
		}
		cancel()
		cut := time.Now()
		if !up.WaitCanceled(time.Second) {
			t.Errorf("the provider's request was not cancelled within 1s of the client's reset")
		} else {
			t.Logf("provider cancelled %v after the client's reset", time.Since(cut))
		}
		wg.Wait()
		for i, s := range got {
			if s != want {
				t.Errorf("bystander %d got %d bytes, not the recording's %d byte for byte (tail %q)", i, len(s), len(want), s[max(0, len(s)-200):])
			}
		}
		call := e2eCallOf(g, kv.ID)
		e2eWant(t, "victim", call, map[string]any{"error_class": "CANCELLED", "usage_source": "estimated", "stream": true,
			"input_tokens": 2000, "output_tokens": 2})
		if c := e2eCost(t, call); !e2eNear(c, 0.00201) {
			t.Errorf("victim cost %v, want 0.00201", c)
		}
		e2eCheckTriple(g, call)
		n := 0
		for _, c := range g.events(store.TypeCallCompleted) {
			if c["gateway_key_id"] == kb.ID && c["stream"] == true {
				n++
				e2eWant(t, "bystander", c, map[string]any{"status": 200, "error_class": nil, "input_tokens": 394, "output_tokens": 79})
			}
		}
		if n != 2 {
			t.Errorf("%d bystander stream calls recorded, want 2", n)
		}
	}
	t.Run("h2", func(t *testing.T) {
		hc, dials := e.h2(t, nil)
		run(t, hc, "HTTP/2.0")
		if d := dials.Load(); d != 1 {
			t.Errorf("%d connections dialled, want 1", d)
		}
	})
	t.Run("h3", func(t *testing.T) { run(t, e.h3(t), "HTTP/3.0") })
}

// r30BigUpstream wraps up: a request whose body has BIGSTREAM is answered
// with an Anthropic stream of `events` text deltas of `size` bytes each,
// counting the bytes written; any other is up's.
type r30BigUpstream struct {
	written atomic.Int64
	done    atomic.Bool
}

func (b *r30BigUpstream) handler(up *fakeupstream.Server, events, size int) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if !strings.Contains(string(body), "BIGSTREAM") {
			r.Body = io.NopCloser(strings.NewReader(string(body)))
			up.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
		w.Header().Set("Request-Id", "req_big")
		fl := w.(http.Flusher)
		write := func(s string) bool {
			n, err := io.WriteString(w, s)
			b.written.Add(int64(n))
			fl.Flush()
			return err == nil
		}
		chunk := strings.Repeat("x", size)
		write(`event: message_start
data: {"type":"message_start","message":{"id":"msg_big","type":"message","role":"assistant","model":"claude-haiku-4-5","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":1000,"output_tokens":1}}}

event: content_block_start
data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}

`)
		for i := 0; i < events; i++ {
			if !write(`event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"` + chunk + `"}}

`) {
				return
			}
		}
		write(`event: content_block_stop
data: {"type":"content_block_stop","index":0}

event: message_delta
data: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":50000}}

event: message_stop
data: {"type":"message_stop"}

`)
		b.done.Store(true)
	})
}

// 3. A reader that stops reading one stream (its 64 KB window full), over
// h2 and h3: the gateway does not read the provider's 32 MB answer into
// memory, other streams on the connection go on, and once the reader
// resumes the call is recorded with the provider's usage.
func TestReview30HSlowReader(t *testing.T) {
	for _, proto := range []string{"HTTP/2.0", "HTTP/3.0"} {
		t.Run(proto, func(t *testing.T) { r30SlowReader(t, proto) })
	}
}

func r30SlowReader(t *testing.T, proto string) {
	up := fakeupstream.New(t)
	big := &r30BigUpstream{}
	const events, size = 4096, 8192
	srv := &http.Server{Handler: big.handler(up, events, size)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	e := r30Start(t, "http://"+ln.Addr().String(), "", "")
	g := e.g
	var hc *http.Client
	if proto == "HTTP/2.0" {
		hc, _ = e.h2(t, &http.HTTP2Config{MaxReceiveBufferPerStream: 64 << 10, MaxReceiveBufferPerConnection: 4 << 20})
	} else {
		tr := &http3.Transport{TLSClientConfig: &tls.Config{RootCAs: e.roots}, QUICConfig: &quic.Config{
			InitialStreamReceiveWindow: 64 << 10, MaxStreamReceiveWindow: 64 << 10,
			InitialConnectionReceiveWindow: 4 << 20, MaxConnectionReceiveWindow: 4 << 20}}
		t.Cleanup(func() { tr.Close() })
		hc = &http.Client{Transport: tr}
	}
	k, tok := e2eKey(g, "slow-reader")

	resp, err := r30Req(context.Background(), t, hc, g.URL+"/v1/messages", tok,
		`{"model":"haiku","max_tokens":64000,"stream":true,"messages":[{"role":"user","content":"BIGSTREAM"}]}`)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.Proto != proto {
		t.Fatalf("proto %s", resp.Proto)
	}
	// Not reading it; other streams on the same connection must go on.
	for i := 0; i < 3; i++ {
		fix, _ := r30Fixture()
		up.Enqueue("/v1/messages", fix)
		start := time.Now()
		r2, err := r30Req(context.Background(), t, hc, g.URL+"/v1/messages", tok,
			`{"model":"sonnet","max_tokens":512,"stream":true,"messages":[{"role":"user","content":"other"}]}`)
		if err != nil {
			t.Fatal(err)
		}
		b := e2eRead(t, r2)
		if b != strings.Join(fix.Events, "") {
			t.Errorf("other stream %d: %d bytes, not the recording", i, len(b))
		}
		if el := time.Since(start); el > 3*time.Second {
			t.Errorf("other stream %d took %v while the slow reader's stream was stuck", i, el)
		}
	}
	time.Sleep(2 * time.Second)
	total := int64(events * (size + 100))
	w := big.written.Load()
	t.Logf("provider had written %d of ~%d bytes while the client read nothing", w, total)
	if big.done.Load() || w > 16<<20 {
		t.Errorf("provider wrote %d bytes (done %v) while the client read nothing: the gateway buffered the answer instead of applying backpressure", w, big.done.Load())
	}
	// Resume: the whole answer arrives, and is priced from the provider's usage.
	n := 0
	last := ""
	err = r30ReadEvents(resp.Body, func(ev r30Event) bool {
		if ev.Name == "content_block_delta" {
			n++
		}
		last = ev.Name
		return true
	})
	if err != nil || n != events || last != "message_stop" {
		t.Errorf("resumed reader got %d deltas (want %d), last event %q, err %v", n, events, last, err)
	}
	var call map[string]any
	deadline := time.Now().Add(10 * time.Second)
	for call == nil && time.Now().Before(deadline) {
		for _, c := range g.events(store.TypeCallCompleted) {
			if c["gateway_key_id"] == k.ID && c["model"] == "claude-haiku-4-5" {
				call = c
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	if call == nil {
		t.Fatal("no call recorded for the big stream")
	}
	// haiku-4-5: 1000 × $1/MTok + 50000 × $5/MTok = 0.001 + 0.25 = 0.251.
	e2eWant(t, "slow reader", call, map[string]any{"status": 200, "error_class": nil, "usage_source": "provider",
		"input_tokens": 1000, "output_tokens": 50000})
	if c := e2eCost(t, call); !e2eNear(c, 0.251) {
		t.Errorf("cost %v, want 0.251", c)
	}
}

// 4. HTTP/3: a provider dying mid-stream gives the client an error event
// in its shape and STREAM_INTERRUPTED in the trace; refusals (401, 400,
// 413) arrive in the caller's shape.
func TestReview30HH3ErrorsInCallerShape(t *testing.T) {
	up := fakeupstream.New(t)
	e := r30Start(t, up.URL, "", "metis_gateway {\n\t\tmax_body 4KiB\n\t}")
	g := e.g
	hc := e.h3(t)
	for _, shape := range []string{"anthropic", "openai"} {
		t.Run("died-"+shape, func(t *testing.T) {
			g := e2eIn(g, t)
			k, tok := e2eKey(g, "h3-died-"+shape)
			r := fakeupstream.AnthropicStream("claude-haiku-4-5", 500, "end_turn", fakeupstream.TextBlock("one two three four five six seven"))
			r.DieAfter = 4
			r.Gap = 20 * time.Millisecond
			up.Enqueue("/v1/messages", r)
			path, body := "/v1/messages", `{"model":"haiku","max_tokens":256,"stream":true,"messages":[{"role":"user","content":"count"}]}`
			if shape == "openai" {
				path, body = "/v1/chat/completions", `{"model":"haiku","stream":true,"messages":[{"role":"user","content":"count"}]}`
			}
			resp, err := r30Req(context.Background(), t, hc, g.URL+path, tok, body)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.Proto != "HTTP/3.0" || resp.StatusCode != 200 {
				t.Fatalf("%s %d", resp.Proto, resp.StatusCode)
			}
			var evs []r30Event
			rerr := r30ReadEvents(resp.Body, func(ev r30Event) bool { evs = append(evs, ev); return true })
			lastEv := r30Event{}
			if len(evs) > 0 {
				lastEv = evs[len(evs)-1]
			}
			ok := false
			if shape == "anthropic" {
				ok = lastEv.Name == "error" && gjson.Get(lastEv.Data, "type").String() == "error" && gjson.Get(lastEv.Data, "error.type").String() != ""
			} else {
				ok = gjson.Get(lastEv.Data, "error.message").String() != ""
			}
			if !ok {
				t.Errorf("client's stream ended with %+v (read error %v), want an error event in the %s shape", lastEv, rerr, shape)
			}
			call := e2eCallOf(g, k.ID)
			e2eWant(t, "call", call, map[string]any{"error_class": "STREAM_INTERRUPTED", "input_tokens": 500, "stream": true})
		})
	}
	big := `{"model":"haiku","max_tokens":16,"messages":[{"role":"user","content":"` + strings.Repeat("a", 8000) + `"}]}`
	cases := []struct {
		name, path, tok, body string
		status                int
	}{
		{"401", "", "gw_01JMISTYPEDMISTYPEDMISTYPE0000000000000000", `{"model":"haiku","max_tokens":16,"messages":[{"role":"user","content":"hi"}]}`, 401},
		{"400", "", "", `{"model":"haiku",`, 400},
		{"413", "", "", big, 413},
	}
	_, tok := e2eKey(g, "h3-refused")
	for _, c := range cases {
		for _, shape := range []string{"anthropic", "openai"} {
			t.Run(c.name+"-"+shape, func(t *testing.T) {
				path := "/v1/messages"
				if shape == "openai" {
					path = "/v1/chat/completions"
				}
				k := c.tok
				if k == "" {
					k = tok
				}
				resp, err := r30Req(context.Background(), t, hc, g.URL+path, k, c.body)
				if err != nil {
					t.Fatalf("h3 request: %v", err)
				}
				b := e2eRead(t, resp)
				if resp.Proto != "HTTP/3.0" || resp.StatusCode != c.status || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
					t.Fatalf("%s %d %q %s, want HTTP/3.0 %d JSON", resp.Proto, resp.StatusCode, resp.Header.Get("Content-Type"), b, c.status)
				}
				if shape == "anthropic" {
					if gjson.Get(b, "type").String() != "error" || gjson.Get(b, "error.type").String() == "" || gjson.Get(b, "error.message").String() == "" {
						t.Errorf("body %s, want Anthropic's error shape", b)
					}
				} else if gjson.Get(b, "type").Exists() || gjson.Get(b, "error.message").String() == "" || !gjson.Get(b, "error.type").Exists() {
					t.Errorf("body %s, want OpenAI's error shape", b)
				}
			})
		}
	}
}

// 5. Claude Code over HTTPS, trusting the test CA through
// NODE_EXTRA_CA_CERTS: a Bash tool round trip works and is traced.
func TestReview30HClaudeCodeOverHTTPS(t *testing.T) {
	bin := e2eClaudeBinary(t)
	up := fakeupstream.New(t)
	e := r30Start(t, up.URL, "alias metis-cc anthropic:claude-haiku-4-5", "")
	g := e.g
	dir := t.TempDir()
	k, tok := g.issueKey(store.IssueParams{Name: "cc-tls", User: "carol", Team: "eng", Workspace: dir})
	replies := fakeupstream.ClaudeCodeBashRoundTrip("echo metis-tls", "All done: metis-tls")
	up.Enqueue("/v1/messages", replies...)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := fakeupstream.ClaudeCommand(ctx, bin, g.URL, tok, dir, "metis-cc", "Run echo metis-tls with Bash.")
	cmd.Env = append(cmd.Env, "NODE_EXTRA_CA_CERTS="+e.rootPEM)
	runClaude(t, cmd, "All done: metis-tls")
	got := up.RequestsTo("/v1/messages")
	if len(got) != 2 {
		t.Fatalf("provider saw %d calls, want 2", len(got))
	}
	want := map[string]float64{
		replies[0].Header.Get("Request-Id"): 0.004215,
		replies[1].Header.Get("Request-Id"): 0.004125,
	}
	matched := 0
	for _, c := range e2eCalls(g, 2) {
		e2eWant(t, "call", c, map[string]any{"gateway_key_id": k.ID, "status": 200, "error_class": nil, "stream": true,
			"model": "claude-haiku-4-5", "usage_source": "provider"})
		if w, ok := want[fmt.Sprint(c["upstream_request_id"])]; ok {
			matched++
			if cost := e2eCost(t, c); cost != w {
				t.Errorf("cost %v, want %v", cost, w)
			}
		}
		e2eCheckTriple(g, c)
	}
	if matched != 2 {
		t.Errorf("%d calls matched the scripted replies", matched)
	}
}

// r30Flush2 is r30Flush for any site and request headers and either
// provider: it checks that every text chunk reaches the client when the
// provider sent it.
func r30Pacing(t *testing.T, hc *http.Client, url, tok, path, body string, hdr map[string]string, r fakeupstream.Reply, up *fakeupstream.Server, upPath, wantProto string) {
	t.Helper()
	const gap = 150 * time.Millisecond
	r.Gap = gap
	var idx []int
	for i, ev := range r.Events {
		d := ev[strings.Index(ev, "data: ")+6:]
		if gjson.Get(d, "delta.text").String() != "" || gjson.Get(d, "choices.0.delta.content").String() != "" {
			idx = append(idx, i)
		}
	}
	up.Enqueue(upPath, r)
	req, _ := http.NewRequest(http.MethodPost, url+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Anthropic-Version", "2023-06-01")
	req.Header.Set("X-Api-Key", tok)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	start := time.Now()
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.Proto != wantProto || resp.StatusCode != 200 {
		t.Fatalf("%s %d, want %s 200", resp.Proto, resp.StatusCode, wantProto)
	}
	if ce := resp.Header.Get("Content-Encoding"); ce != "" {
		t.Errorf("stream sent with Content-Encoding %q", ce)
	}
	var at []time.Duration
	r30ReadEvents(resp.Body, func(ev r30Event) bool {
		if gjson.Get(ev.Data, "delta.text").String() != "" || gjson.Get(ev.Data, "choices.0.delta.content").String() != "" {
			at = append(at, ev.At.Sub(start))
		}
		return true
	})
	if len(at) != len(idx) {
		t.Fatalf("%d text chunks, want %d", len(at), len(idx))
	}
	base := at[0] - time.Duration(idx[0])*gap
	bad := 0
	for k := range at {
		late := at[k] - time.Duration(idx[k])*gap - base
		if late > 120*time.Millisecond || late < -120*time.Millisecond {
			bad++
			t.Errorf("text chunk %d (provider event %d) arrived %v off the provider's pacing", k, idx[k], late)
		}
	}
	t.Logf("first text at %v, last at %v", at[0], at[len(at)-1])
}

// Flush with `encode zstd gzip` on the site (README: encode leaves streams
// alone), and from an OpenAI provider, over h2 and h3.
func TestReview30HFlushEncodeAndOpenAIUpstream(t *testing.T) {
	up := fakeupstream.New(t)
	e := r30Start(t, up.URL, "", "encode zstd gzip\n\tmetis_gateway")
	_, tok := e2eKey(e.g, "flush2")
	h2c, _ := e.h2(t, nil)
	clients := map[string]*http.Client{"HTTP/2.0": h2c, "HTTP/3.0": e.h3(t)}
	const text = "one two three four five six seven eight"
	for _, proto := range []string{"HTTP/2.0", "HTTP/3.0"} {
		hc := clients[proto]
		t.Run(proto+"/anthropic-gzip", func(t *testing.T) {
			r, _ := r30Fixture()
			r30Pacing(t, hc, e.g.URL, tok, "/v1/messages", `{"model":"sonnet","max_tokens":512,"stream":true,"messages":[{"role":"user","content":"x"}]}`,
				map[string]string{"Accept-Encoding": "gzip, zstd"}, r, up, "/v1/messages", proto)
		})
		t.Run(proto+"/openai-native-gzip", func(t *testing.T) {
			r30Pacing(t, hc, e.g.URL, tok, "/v1/chat/completions", `{"model":"nano","stream":true,"messages":[{"role":"user","content":"x"}]}`,
				map[string]string{"Accept-Encoding": "gzip, zstd"}, fakeupstream.OpenAITextStream("gpt-5-nano", text, 20, true), up, "/v1/chat/completions", proto)
		})
		t.Run(proto+"/anthropic-client-openai-provider", func(t *testing.T) {
			r30Pacing(t, hc, e.g.URL, tok, "/v1/messages", `{"model":"nano","max_tokens":512,"stream":true,"messages":[{"role":"user","content":"x"}]}`,
				nil, fakeupstream.OpenAITextStream("gpt-5-nano", text, 20, true), up, "/v1/chat/completions", proto)
		})
	}
}

// A client that closes its whole connection (h2: the TCP connection; h3:
// the QUIC connection) with 5 streams in flight: every provider request is
// cancelled and every call recorded CANCELLED promptly.
func TestReview30HConnectionClosedWithStreams(t *testing.T) {
	up := fakeupstream.New(t)
	e := r30Start(t, up.URL, "", "")
	const n = 5
	run := func(t *testing.T, hc *http.Client, closeAll func(), proto string) {
		g := e2eIn(e.g, t)
		k, tok := e2eKey(g, "closer-"+proto)
		for i := 0; i < n; i++ {
			v := fakeupstream.AnthropicStream("claude-haiku-4-5", 1000, "end_turn", fakeupstream.TextBlock("alpha beta gamma delta"))
			v.StallAfter = 3
			up.Enqueue("/v1/messages", v)
		}
		var wg sync.WaitGroup
		started := make(chan struct{}, n)
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, err := r30Req(context.Background(), t, hc, g.URL+"/v1/messages", tok,
					`{"model":"haiku","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"x"}]}`)
				if err != nil {
					t.Errorf("request: %v", err)
					started <- struct{}{}
					return
				}
				if resp.Proto != proto {
					t.Errorf("proto %s", resp.Proto)
				}
				sig := false
				r30ReadEvents(resp.Body, func(ev r30Event) bool {
					if !sig && gjson.Get(ev.Data, "delta.text").Exists() {
						sig = true
						started <- struct{}{}
					}
					return true
				})
				if !sig {
					started <- struct{}{}
				}
				resp.Body.Close()
			}()
		}
		for i := 0; i < n; i++ {
			<-started
		}
		closed := time.Now()
		closeAll()
		deadline := closed.Add(5 * time.Second)
		var calls []map[string]any
		for time.Now().Before(deadline) {
			calls = calls[:0]
			for _, c := range g.events(store.TypeCallCompleted) {
				if c["gateway_key_id"] == k.ID {
					calls = append(calls, c)
				}
			}
			if len(calls) == n {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		el := time.Since(closed)
		if len(calls) != n {
			t.Fatalf("%d of %d calls recorded 5s after the client closed its connection", len(calls), n)
		}
		t.Logf("all %d calls recorded %v after the connection closed", n, el)
		if el > 2*time.Second {
			t.Errorf("calls recorded %v after the client closed its connection, want within ~1s", el)
		}
		for _, c := range calls {
			e2eWant(t, "call", c, map[string]any{"error_class": "CANCELLED", "input_tokens": 1000, "stream": true})
		}
		wg.Wait()
	}
	t.Run("h2", func(t *testing.T) {
		var mu sync.Mutex
		var conns []net.Conn
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: e.roots}, ForceAttemptHTTP2: true,
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
				if err == nil {
					mu.Lock()
					conns = append(conns, c)
					mu.Unlock()
				}
				return c, err
			}}
		t.Cleanup(tr.CloseIdleConnections)
		run(t, &http.Client{Transport: tr}, func() {
			mu.Lock()
			defer mu.Unlock()
			for _, c := range conns {
				c.Close()
			}
		}, "HTTP/2.0")
	})
	t.Run("h3", func(t *testing.T) {
		tr := &http3.Transport{TLSClientConfig: &tls.Config{RootCAs: e.roots}}
		run(t, &http.Client{Transport: tr}, func() { tr.Close() }, "HTTP/3.0")
	})
}

// r30Unsized hides a reader's length so the request goes without
// Content-Length (a streamed upload).
type r30Unsized struct{ io.Reader }

// A body without Content-Length over h2 and h3: within max_body it is
// served, over it a 413 in the caller's shape.
func TestReview30HUnsizedBodies(t *testing.T) {
	up := fakeupstream.New(t)
	e := r30Start(t, up.URL, "", "metis_gateway {\n\t\tmax_body 4KiB\n\t}")
	_, tok := e2eKey(e.g, "unsized")
	h2c, _ := e.h2(t, nil)
	clients := map[string]*http.Client{"HTTP/2.0": h2c, "HTTP/3.0": e.h3(t)}
	for _, proto := range []string{"HTTP/2.0", "HTTP/3.0"} {
		for _, shape := range []string{"anthropic", "openai"} {
			for _, size := range []int{1000, 8000} {
				t.Run(fmt.Sprintf("%s/%s/%d", proto, shape, size), func(t *testing.T) {
					path := "/v1/messages"
					if shape == "openai" {
						path = "/v1/chat/completions"
						up.Enqueue("/v1/chat/completions", fakeupstream.OpenAICompletion("gpt-5-nano", "ok", 20))
					} else {
						up.Enqueue("/v1/messages", fakeupstream.AnthropicMessage("claude-haiku-4-5", 20, "end_turn", fakeupstream.TextBlock("ok")))
					}
					model := "haiku"
					if shape == "openai" {
						model = "nano"
					}
					body := `{"model":"` + model + `","max_tokens":16,"messages":[{"role":"user","content":"` + strings.Repeat("a", size) + `"}]}`
					req, _ := http.NewRequest(http.MethodPost, e.g.URL+path, r30Unsized{strings.NewReader(body)})
					req.Header.Set("Content-Type", "application/json")
					req.Header.Set("Anthropic-Version", "2023-06-01")
					req.Header.Set("X-Api-Key", tok)
					resp, err := clients[proto].Do(req)
					if err != nil {
						t.Fatal(err)
					}
					b := e2eRead(t, resp)
					want := 200
					if size > 4096 {
						want = 413
					}
					if resp.Proto != proto || resp.StatusCode != want {
						t.Fatalf("%s %d %s, want %d", resp.Proto, resp.StatusCode, b, want)
					}
					if want == 413 {
						if shape == "anthropic" && gjson.Get(b, "type").String() != "error" || gjson.Get(b, "error.message").String() == "" {
							t.Errorf("413 body %s not in the %s shape", b, shape)
						}
						up.Reset()
					}
				})
			}
		}
	}
}

// Claude Code behind a proxy that speaks HTTP/2 to the gateway's HTTPS
// site (README: "over HTTP/2 (an HTTPS site, or a proxy in front) the
// stream ends without its last event, which Claude Code retries the same
// way"): a provider cut mid-stream must get the same recovery as directly
// against the provider (a streamed retry, the retry's text printed).
func TestReview30HClaudeCodeCutThroughH2Proxy(t *testing.T) {
	bin := e2eClaudeBinary(t)
	streamed := func(r *fakeupstream.Recorded) bool { return r.JSON()["stream"] == true }
	unstreamed := func(r *fakeupstream.Recorded) bool { return r.JSON()["stream"] != true }
	script := func(up *fakeupstream.Server) {
		cut := fakeupstream.AnthropicTextStream("claude-opus-5-5", "I'd be happy to check the weather in San Francisco for you right away.")
		cut.DieAfter = 5
		cut.Match = streamed
		ok := fakeupstream.AnthropicTextStream("claude-opus-5-5", "streamed-retry-ok")
		ok.Match = streamed
		ns := fakeupstream.AnthropicMessage("claude-opus-5-5", 100, "end_turn", fakeupstream.TextBlock("nonstream-retry-ok"))
		ns.Match = unstreamed
		up.Enqueue("/v1/messages", cut, ok, ns)
	}
	run := func(baseURL, key, dir string) string {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := fakeupstream.ClaudeCommand(ctx, bin, baseURL, key, dir, "", "Weather in SF?")
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("claude via %s: %v\nstdout: %s\nstderr: %s", baseURL, err, stdout.String(), stderr.String())
		}
		return strings.TrimSpace(stdout.String())
	}
	flags := func(up *fakeupstream.Server) []bool {
		var out []bool
		for _, r := range up.RequestsTo("/v1/messages") {
			out = append(out, r.JSON()["stream"] == true)
		}
		return out
	}
	direct := fakeupstream.New(t)
	script(direct)
	directOut := run(direct.URL, "sk-ant-direct", t.TempDir())
	directFlags := flags(direct)

	up := fakeupstream.New(t)
	e := r30Start(t, up.URL, "", "")
	dir := t.TempDir()
	_, tok := e.g.issueKey(store.IssueParams{Name: "cc-h2-proxy", Workspace: dir})
	target, _ := url.Parse(e.g.URL)
	var mu sync.Mutex
	var protos []string
	proxyTr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: e.roots}, ForceAttemptHTTP2: true}
	t.Cleanup(proxyTr.CloseIdleConnections)
	rp := &httputil.ReverseProxy{
		Rewrite:       func(pr *httputil.ProxyRequest) { pr.SetURL(target) },
		FlushInterval: -1,
		Transport:     proxyTr,
		ModifyResponse: func(r *http.Response) error {
			mu.Lock()
			protos = append(protos, r.Proto)
			mu.Unlock()
			return nil
		},
	}
	proxy := httptest.NewServer(rp)
	t.Cleanup(proxy.Close)
	script(up)
	gwOut := run(proxy.URL, tok, dir)
	gwFlags := flags(up)
	t.Logf("direct: stream=%v printed %q", directFlags, directOut)
	t.Logf("h2 proxy → gateway: stream=%v printed %q (proxy↔gateway protocols %v)", gwFlags, gwOut, protos)
	if len(protos) == 0 || protos[0] != "HTTP/2.0" {
		t.Fatalf("the proxy reached the gateway over %v, want HTTP/2.0", protos)
	}
	if fmt.Sprint(directFlags) != "[true true]" {
		t.Fatalf("directly, Claude Code sent stream=%v after the cut: re-measure", directFlags)
	}
	if fmt.Sprint(gwFlags) != fmt.Sprint(directFlags) || gwOut != directOut {
		t.Errorf("behind an HTTP/2 hop Claude Code sent stream=%v and printed %q for a provider cut; directly stream=%v, %q",
			gwFlags, gwOut, directFlags, directOut)
	}
}

// A client that pauses reading a stream (its flow-control window full)
// for longer than the gateway's provider-silence bound, while the provider
// has long since sent the whole answer: the gateway is the one that did not
// read, the provider was never silent. The client must get the whole answer
// when it resumes, and the call must be recorded as the success it was,
// priced from the provider's usage. Scaled down: the bounds (Claude Code's
// 270 s, others' 10 min) are 1 s here and the pause 3 s (a laptop lid
// closed, `claude` suspended with Ctrl-Z, a congested link).
func TestReview30HPausedReaderIsNotProviderSilence(t *testing.T) {
	setForTest(t, &claudeCodeSilence, time.Second)
	setForTest(t, &streamSilence, time.Second)
	for _, tc := range []struct {
		name  string
		hdr   map[string]string
		leave bool // the client leaves (resets the stream) instead of resuming
		h3    bool
	}{
		{"claude-code", map[string]string{"X-Claude-Code-Session-Id": "sess-paused"}, false, false},
		{"sdk", nil, false, false},
		{"sdk-h3", nil, false, true},
		{"sdk-leaves", nil, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := fakeupstream.New(t)
			big := &r30BigUpstream{}
			const events, size = 128, 8192 // 1 MiB of text
			srv := &http.Server{Handler: big.handler(up, events, size)}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			go srv.Serve(ln)
			t.Cleanup(func() { srv.Close() })
			// The providers' `timeout` 1s, so that the 1s streamSilence is the bound.
			e := r30StartTimeout(t, "http://"+ln.Addr().String(), time.Second)
			g := e.g
			hc, _ := e.h2(t, &http.HTTP2Config{MaxReceiveBufferPerStream: 64 << 10, MaxReceiveBufferPerConnection: 4 << 20})
			wantProto := "HTTP/2.0"
			if tc.h3 {
				tr := &http3.Transport{TLSClientConfig: &tls.Config{RootCAs: e.roots}, QUICConfig: &quic.Config{
					InitialStreamReceiveWindow: 64 << 10, MaxStreamReceiveWindow: 64 << 10,
					InitialConnectionReceiveWindow: 4 << 20, MaxConnectionReceiveWindow: 4 << 20}}
				t.Cleanup(func() { tr.Close() })
				hc, wantProto = &http.Client{Transport: tr}, "HTTP/3.0"
			}
			k, tok := e2eKey(g, "paused-"+tc.name)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, g.URL+"/v1/messages",
				strings.NewReader(`{"model":"haiku","max_tokens":64000,"stream":true,"messages":[{"role":"user","content":"BIGSTREAM"}]}`))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Anthropic-Version", "2023-06-01")
			req.Header.Set("X-Api-Key", tok)
			for k, v := range tc.hdr {
				req.Header.Set(k, v)
			}
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.Proto != wantProto || resp.StatusCode != 200 {
				t.Fatalf("%s %d", resp.Proto, resp.StatusCode)
			}
			time.Sleep(3 * time.Second)
			if !big.done.Load() {
				t.Logf("note: the provider had not finished writing (%d bytes) during the pause", big.written.Load())
			} else {
				t.Logf("the provider had written its whole answer (%d bytes) during the pause", big.written.Load())
			}
			if tc.leave {
				// README/audit 16A: a client that stops reading and leaves
				// gets the call priced from the provider's usage (drainUnsent).
				cancel()
			}
			n, last := 0, ""
			rerr := r30ReadEvents(resp.Body, func(ev r30Event) bool {
				if ev.Name == "content_block_delta" {
					n++
				}
				last = ev.Name
				return true
			})
			if tc.leave {
				call := e2eCallOf(g, k.ID)
				e2eWant(t, "call", call, map[string]any{"error_class": "CANCELLED", "usage_source": "provider",
					"input_tokens": 1000, "output_tokens": 50000})
				if c := e2eCost(t, call); !e2eNear(c, 0.251) {
					t.Errorf("cost %v, want the provider's 0.251", c)
				}
				return
			}
			if n != events || last != "message_stop" {
				t.Errorf("after the pause the client got %d of %d deltas, last event %q, read error %v: the answer the provider sent in full was cut",
					n, events, last, rerr)
			}
			call := e2eCallOf(g, k.ID)
			// haiku-4-5: 1000 × $1/MTok + 50000 × $5/MTok = 0.251.
			e2eWant(t, "call", call, map[string]any{"status": 200, "error_class": nil, "usage_source": "provider",
				"input_tokens": 1000, "output_tokens": 50000})
			if c := e2eCost(t, call); !e2eNear(c, 0.251) {
				t.Errorf("cost %v, want the provider's 0.251", c)
			}
		})
	}
}

// r30StartTimeout is r30Start with the providers' `timeout` set.
func r30StartTimeout(t *testing.T, upURL string, timeout time.Duration) *r30Env {
	t.Helper()
	return r30StartBody(t, strings.ReplaceAll(gatewayConfig(tempDB(t), upURL, ""), "max_retries 2",
		"timeout "+timeout.String()+"\n\t\t\tmax_retries 2"), "")
}

// Cancelling while the gateway still holds the response headers (the
// provider has not sent its first event), over h2 and h3: the provider's
// request is cancelled within 1 s and the call recorded CANCELLED; and 40
// streams cancelled mid-stream at once leave no goroutines behind.
func TestReview30HCancelBeforeFirstEventAndMass(t *testing.T) {
	up := fakeupstream.New(t)
	e := r30Start(t, up.URL, "", "")
	h2c, _ := e.h2(t, nil)
	clients := map[string]*http.Client{"HTTP/2.0": h2c, "HTTP/3.0": e.h3(t)}
	for _, proto := range []string{"HTTP/2.0", "HTTP/3.0"} {
		hc := clients[proto]
		t.Run(proto+"/held", func(t *testing.T) {
			g := e2eIn(e.g, t)
			k, tok := e2eKey(g, "held-"+proto)
			r := fakeupstream.AnthropicTextStream("claude-haiku-4-5", "late")
			r.Delay = 5 * time.Second
			up.Enqueue("/v1/messages", r)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() {
				resp, err := r30Req(ctx, t, hc, g.URL+"/v1/messages", tok,
					`{"model":"haiku","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"x"}]}`)
				if err == nil {
					resp.Body.Close()
				}
				done <- err
			}()
			time.Sleep(500 * time.Millisecond)
			cancel()
			<-done
			if !up.WaitCanceled(time.Second) {
				t.Errorf("provider request not cancelled within 1s")
			}
			e2eWant(t, "call", e2eCallOf(g, k.ID), map[string]any{"error_class": "CANCELLED", "stream": true})
		})
	}
	// Mass cancellation, then a goroutine count.
	time.Sleep(500 * time.Millisecond)
	before := runtimeGoroutines()
	for _, proto := range []string{"HTTP/2.0", "HTTP/3.0"} {
		hc := clients[proto]
		g := e.g
		_, tok := e2eKey(g, "mass-"+proto)
		const n = 20
		for i := 0; i < n; i++ {
			v := fakeupstream.AnthropicStream("claude-haiku-4-5", 300, "end_turn", fakeupstream.TextBlock("a b c d e f g h"))
			v.StallAfter = 3
			up.Enqueue("/v1/messages", v)
		}
		var wg sync.WaitGroup
		ctx, cancel := context.WithCancel(context.Background())
		ready := make(chan struct{}, n)
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, err := r30Req(ctx, t, hc, g.URL+"/v1/messages", tok,
					`{"model":"haiku","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"x"}]}`)
				if err != nil {
					ready <- struct{}{}
					return
				}
				sig := false
				r30ReadEvents(resp.Body, func(ev r30Event) bool {
					if !sig && gjson.Get(ev.Data, "delta.text").Exists() {
						sig = true
						ready <- struct{}{}
					}
					return true
				})
				if !sig {
					ready <- struct{}{}
				}
				resp.Body.Close()
			}()
		}
		for i := 0; i < n; i++ {
			<-ready
		}
		cancel()
		wg.Wait()
	}
	time.Sleep(3 * time.Second)
	after := runtimeGoroutines()
	t.Logf("goroutines: %d before, %d after 40 cancelled streams", before, after)
	if after > before+10 {
		t.Errorf("goroutines %d → %d after 40 cancelled streams: leak", before, after)
	}
}

func runtimeGoroutines() int { return runtime.NumGoroutine() }

// Refusals of large uploads over h2 and h3: a 401 for a bad key with a
// 5 MB body and a 413 for a 10 MB body over max_body reach the client as
// answers in its shape, not as a reset upload.
func TestReview30HLargeUploadRefusals(t *testing.T) {
	up := fakeupstream.New(t)
	e := r30Start(t, up.URL, "", "metis_gateway {\n\t\tmax_body 1MiB\n\t}")
	_, tok := e2eKey(e.g, "big-upload")
	h2c, _ := e.h2(t, nil)
	clients := map[string]*http.Client{"HTTP/2.0": h2c, "HTTP/3.0": e.h3(t)}
	for _, proto := range []string{"HTTP/2.0", "HTTP/3.0"} {
		for _, c := range []struct {
			name, tok string
			size      int
			status    int
			unsized   bool
		}{
			{"401", "gw_01JMISTYPEDMISTYPEDMISTYPE0000000000000000", 5 << 20, 401, false},
			{"401-unsized", "gw_01JMISTYPEDMISTYPEDMISTYPE0000000000000000", 5 << 20, 401, true},
			{"413", tok, 10 << 20, 413, false},
			{"413-unsized", tok, 10 << 20, 413, true},
		} {
			for _, shape := range []string{"anthropic", "openai"} {
				t.Run(proto+"/"+c.name+"/"+shape, func(t *testing.T) {
					path := "/v1/messages"
					if shape == "openai" {
						path = "/v1/chat/completions"
					}
					body := `{"model":"haiku","max_tokens":16,"messages":[{"role":"user","content":"` + strings.Repeat("a", c.size) + `"}]}`
					var rd io.Reader = strings.NewReader(body)
					if c.unsized {
						rd = r30Unsized{rd}
					}
					req, _ := http.NewRequest(http.MethodPost, e.g.URL+path, rd)
					req.Header.Set("Content-Type", "application/json")
					req.Header.Set("Anthropic-Version", "2023-06-01")
					req.Header.Set("X-Api-Key", c.tok)
					start := time.Now()
					resp, err := clients[proto].Do(req)
					if err != nil {
						t.Fatalf("after %v: %v, want a %d answer", time.Since(start), err, c.status)
					}
					b := e2eRead(t, resp)
					if resp.StatusCode != c.status || gjson.Get(b, "error.message").String() == "" {
						t.Errorf("%s %d %s, want %d in the %s shape", resp.Proto, resp.StatusCode, b, c.status, shape)
					}
					if shape == "anthropic" && gjson.Get(b, "type").String() != "error" {
						t.Errorf("body %s not Anthropic's shape", b)
					}
				})
			}
		}
	}
}

// r30UDPRelay forwards datagrams between one client and the server,
// recording the client's first flight (what it sent before the server's
// first answer).
type r30UDPRelay struct {
	pc     net.PacketConn
	server *net.UDPAddr
	mu     sync.Mutex
	flight [][]byte
	heard  bool
}

func r30NewRelay(t *testing.T, server string) *r30UDPRelay {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sa, _ := net.ResolveUDPAddr("udp", server)
	r := &r30UDPRelay{pc: pc, server: sa}
	t.Cleanup(func() { pc.Close() })
	up, err := net.DialUDP("udp", nil, sa)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { up.Close() })
	var client net.Addr
	var cmu sync.Mutex
	go func() {
		buf := make([]byte, 65536)
		for {
			n, a, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			cmu.Lock()
			client = a
			cmu.Unlock()
			r.mu.Lock()
			if n > 0 && buf[0]&0x80 != 0 { // long header: Initial, 0-RTT, Handshake
				r.flight = append(r.flight, append([]byte(nil), buf[:n]...))
			}
			r.mu.Unlock()
			up.Write(buf[:n])
		}
	}()
	go func() {
		buf := make([]byte, 65536)
		for {
			n, err := up.Read(buf)
			if err != nil {
				return
			}
			r.mu.Lock()
			r.heard = true
			r.mu.Unlock()
			cmu.Lock()
			a := client
			cmu.Unlock()
			if a != nil {
				pc.WriteTo(buf[:n], a)
			}
		}
	}()
	return r
}

// HTTP/3 0-RTT: Caddy accepts early data by default (allow_0rtt), and
// TLS 1.3 early data can be replayed by anyone on the path (RFC 8446 §8,
// RFC 8470). An LLM call is a billed, non-idempotent POST: one sent in
// early data must be refused with 425 Too Early (or served only once the
// handshake completes), or a replay of the client's first flight runs and
// bills the call again.
func TestReview30HH3ZeroRTTPostNotReplayable(t *testing.T) {
	up := fakeupstream.New(t)
	e := r30Start(t, up.URL, "", "")
	g := e.g
	k, tok := e2eKey(g, "zero-rtt")
	addr := fmt.Sprintf("127.0.0.1:%d", g.gwPort)
	tlsConf := &tls.Config{RootCAs: e.roots, NextProtos: []string{http3.NextProtoH3},
		ClientSessionCache: tls.NewLRUClientSessionCache(8), ServerName: "127.0.0.1"}
	tr := &http3.Transport{}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	// A first connection, for a session ticket.
	conn, err := quic.DialAddr(ctx, addr, tlsConf, &quic.Config{})
	if err != nil {
		t.Fatal(err)
	}
	cc := tr.NewClientConn(conn)
	req, _ := http.NewRequest(http.MethodGet, g.URL+"/v1/models", nil)
	req.Header.Set("X-Api-Key", tok)
	if resp, err := cc.RoundTrip(req); err != nil {
		t.Fatal(err)
	} else {
		io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	time.Sleep(200 * time.Millisecond)
	conn.CloseWithError(0, "")

	// The second connection sends the POST in 0-RTT, through a relay that
	// records the first flight.
	relay := r30NewRelay(t, addr)
	up.Enqueue("/v1/messages", fakeupstream.AnthropicMessage("claude-haiku-4-5", 100, "end_turn", fakeupstream.TextBlock("once")),
		fakeupstream.AnthropicMessage("claude-haiku-4-5", 100, "end_turn", fakeupstream.TextBlock("twice")))
	body := `{"model":"haiku","max_tokens":16,"messages":[{"role":"user","content":"Transfer $100."}]}`
	econn, err := quic.DialAddrEarly(ctx, relay.pc.LocalAddr().String(), tlsConf, &quic.Config{})
	if err != nil {
		t.Fatal(err)
	}
	ecc := tr.NewClientConn(econn)
	rs, err := ecc.OpenRequestStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	preq, _ := http.NewRequest(http.MethodPost, g.URL+"/v1/messages", nil)
	preq.Body = http.NoBody
	preq.ContentLength = int64(len(body))
	preq.Header.Set("Content-Type", "application/json")
	preq.Header.Set("Anthropic-Version", "2023-06-01")
	preq.Header.Set("X-Api-Key", tok)
	if err := rs.SendRequestHeader(preq); err != nil {
		t.Fatal(err)
	}
	if _, err := rs.Write([]byte(body)); err != nil {
		t.Fatal(err)
	}
	rs.Close()
	resp, err := rs.ReadResponse()
	if err != nil {
		t.Fatal(err)
	}
	rb, _ := io.ReadAll(resp.Body)
	used0RTT := econn.ConnectionState().Used0RTT
	t.Logf("early-data POST: used 0-RTT %v, status %d %s", used0RTT, resp.StatusCode, rb)
	econn.CloseWithError(0, "")
	if !used0RTT {
		t.Skip("the client could not use 0-RTT; nothing to check")
	}

	// An attacker replays the recorded first flight from another address,
	// once the server has forgotten the original connection.
	time.Sleep(5 * time.Second)
	relay.mu.Lock()
	flight := relay.flight
	relay.mu.Unlock()
	rp, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer rp.Close()
	sa, _ := net.ResolveUDPAddr("udp", addr)
	for _, d := range flight {
		rp.WriteTo(d, sa)
	}
	time.Sleep(1500 * time.Millisecond)
	n := up.Count("/v1/messages")
	calls := 0
	for _, c := range g.events(store.TypeCallCompleted) {
		if c["gateway_key_id"] == k.ID {
			calls++
		}
	}
	t.Logf("recorded first flight: %d datagrams; provider saw %d POSTs; %d calls recorded", len(flight), n, calls)
	if resp.StatusCode != http.StatusTooEarly && n > 1 {
		t.Errorf("a POST sent in 0-RTT was served (%d) and a replay of the client's first flight made the provider answer it %d times (%d calls billed): early-data POSTs must get 425 Too Early", resp.StatusCode, n, calls)
	}
	if resp.StatusCode == 200 && n <= 1 {
		t.Logf("served in early data but the replay did not run it again")
	}
}
