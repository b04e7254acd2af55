package metis

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/metisgateway/metis/internal/fakeupstream"
)

// h2cGateway starts a gateway that also speaks unencrypted HTTP/2: the
// server code an HTTPS site runs, without the TLS.
func h2cGateway(t *testing.T, up *fakeupstream.Server) *testGateway {
	t.Helper()
	dir := t.TempDir()
	return e2eStartCustom(t, func(gw, an int) string {
		return fmt.Sprintf(`{
	admin off
	grace_period 1s
	servers {
		protocols h1 h2c
	}
	metis {
		%s
	}
}
http://127.0.0.1:%d {
	metis_gateway
}
http://127.0.0.1:%d {
	metis_analytics
}
`, gatewayConfig(filepath.Join(dir, "metis.db"), up.URL, ""), gw, an)
	})
}

// rawH2C is a raw HTTP/2 (prior knowledge) client connection.
type rawH2C struct {
	t      *testing.T
	conn   net.Conn
	mu     sync.Mutex // the framer's writes: the reader acknowledges settings and pings
	fr     *http2.Framer
	status chan string // ":status" of each response, in arrival order
}

// dialRawH2C opens an h2c connection advertising window as its
// initial stream flow-control window (0: the server may send headers but
// no DATA until the client says so, which it never does here).
func dialRawH2C(t *testing.T, port int, window uint32) *rawH2C {
	t.Helper()
	conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if _, err := conn.Write([]byte(http2.ClientPreface)); err != nil {
		t.Fatal(err)
	}
	c := &rawH2C{t: t, conn: conn, fr: http2.NewFramer(conn, conn), status: make(chan string, 1024)}
	if err := c.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: window}); err != nil {
		t.Fatal(err)
	}
	go func() {
		dec := hpack.NewDecoder(4096, nil)
		for {
			f, err := c.fr.ReadFrame()
			if err != nil {
				return
			}
			switch f := f.(type) {
			case *http2.SettingsFrame:
				if !f.IsAck() {
					c.mu.Lock()
					_ = c.fr.WriteSettingsAck()
					c.mu.Unlock()
				}
			case *http2.PingFrame:
				if !f.IsAck() {
					c.mu.Lock()
					_ = c.fr.WritePing(true, f.Data)
					c.mu.Unlock()
				}
			case *http2.HeadersFrame:
				hf, _ := dec.DecodeFull(f.HeaderBlockFragment())
				for _, h := range hf {
					if h.Name == ":status" {
						c.status <- h.Value
					}
				}
			}
		}
	}()
	return c
}

// awaitOK waits for the first response's headers and wants a 200.
func (c *rawH2C) awaitOK() {
	c.t.Helper()
	select {
	case st := <-c.status:
		if st != "200" {
			c.t.Fatalf("status %s, want 200", st)
		}
	case <-time.After(10 * time.Second):
		c.t.Fatal("no response headers")
	}
}

// wantStalledHaikuPriced checks the one call of a stalled client of the
// 3,000-token Haiku answer: cancelled, priced from the provider's usage.
// claude-haiku-4-5: 12 × $1/MTok + 3,000 × $5/MTok = $0.015012.
func wantStalledHaikuPriced(t *testing.T, g *testGateway) {
	t.Helper()
	call := e2eCalls(g, 1)[0]
	e2eWant(t, "stalled call", call, map[string]any{
		"error_class": "CANCELLED", "input_tokens": 12.0, "output_tokens": 3000.0, "usage_source": "provider",
	})
	if cost := e2eCost(t, call); !e2eNear(cost, 0.015012) {
		t.Errorf("cost_usd %v; the provider bills $0.015012 (12 × $1/MTok + 3000 × $5/MTok)", cost)
	}
}

// post opens stream sid with a POST of path; it sends body and, when end
// is set, ends the stream. length is the announced Content-Length.
func (c *rawH2C) post(sid uint32, path, token string, length int, body string, end bool) {
	c.t.Helper()
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for _, f := range [][2]string{
		{":method", "POST"}, {":scheme", "http"}, {":authority", "127.0.0.1"}, {":path", path},
		{"x-api-key", token}, {"anthropic-version", "2023-06-01"}, {"content-type", "application/json"},
		{"content-length", strconv.Itoa(length)},
	} {
		_ = enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: sid, BlockFragment: hb.Bytes(), EndHeaders: true}); err != nil {
		c.t.Fatal(err)
	}
	if err := c.fr.WriteData(sid, end, []byte(body)); err != nil {
		c.t.Fatal(err)
	}
}

// A client that stops reading a stream (here an HTTP/2 client whose
// flow-control window stays 0) stops the gateway's reading of the
// provider, not the provider: it finishes and bills the whole answer,
// whose bytes wait in the gateway's socket. When the client goes, the call
// is cancelled and priced from the provider's usage in those bytes, not
// from the one event the client took (audit 16A: 1 output token recorded
// of 3,000, and the key's hard limit charged that), same shape and
// translated.
//
// claude-haiku-4-5: 12 × $1/MTok + 3,000 × $5/MTok = $0.015012.
func TestE2EStalledReaderPricedFromProviderUsage(t *testing.T) {
	events := []string{
		"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_stall\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-haiku-4-5\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":12,\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0,\"output_tokens\":1}}}\n\n",
		"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
	}
	for range 300 {
		events = append(events, "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"lorem ipsum dolor sit amet consectetur \"}}\n\n")
	}
	events = append(events,
		"event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
		"event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":3000}}\n\n",
		"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n")
	for _, tc := range []struct{ name, path, body string }{
		{"same shape", "/v1/messages", `{"model":"haiku","max_tokens":4096,"stream":true,"messages":[{"role":"user","content":"Write."}]}`},
		{"translated", "/v1/chat/completions", `{"model":"haiku","max_completion_tokens":4096,"stream":true,"messages":[{"role":"user","content":"Write."}]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := fakeupstream.New(t)
			g := h2cGateway(t, up)
			k, tok := e2eKey(g, "stall")
			capKey(t, g, k, 1)
			up.Enqueue("/v1/messages", fakeupstream.Reply{Events: events})

			c := dialRawH2C(t, g.gwPort, 0)
			c.post(1, tc.path, tok, len(tc.body), tc.body, true)
			c.awaitOK()
			// The provider sends its whole answer at once (47 KB); it waits
			// unread in the gateway's socket. Then the client goes.
			for deadline := time.Now().Add(5 * time.Second); len(up.RequestsTo("/v1/messages")) == 0 && time.Now().Before(deadline); {
				time.Sleep(10 * time.Millisecond)
			}
			time.Sleep(time.Second)
			c.conn.Close()

			wantStalledHaikuPriced(t, g)
		})
	}
}

// stalledAnthropicEvents is an Anthropic answer of n text deltas of 400
// bytes each, whose usage (12 in, out tokens) comes in its last events.
func stalledAnthropicEvents(n int, out int) []string {
	events := []string{
		"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_stall1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-haiku-4-5\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":12,\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0,\"output_tokens\":1}}}\n\n",
		"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
	}
	text := strings.Repeat("lorem ipsum dolor sit amet consectetur ", 10) // 400 bytes
	for range n {
		events = append(events, "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\""+text+"\"}}\n\n")
	}
	return append(events,
		"event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
		fmt.Sprintf("event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":%d}}\n\n", out),
		"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n")
}

// stalledOpenAIEvents is the same answer from OpenAI: n content chunks of
// 400 bytes, the finish, then the usage chunk (12 in, out tokens).
func stalledOpenAIEvents(n int, out int) []string {
	head := `{"id":"chatcmpl-stall1","object":"chat.completion.chunk","created":1,"model":"gpt-5-nano","choices":[`
	events := []string{"data: " + head + `{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}],"usage":null}` + "\n\n"}
	text := strings.Repeat("lorem ipsum dolor sit amet consectetur ", 10)
	for range n {
		events = append(events, "data: "+head+`{"index":0,"delta":{"content":"`+text+`"},"finish_reason":null}],"usage":null}`+"\n\n")
	}
	return append(events,
		"data: "+head+`{"index":0,"delta":{},"finish_reason":"stop"}],"usage":null}`+"\n\n",
		"data: "+`{"id":"chatcmpl-stall1","object":"chat.completion.chunk","created":1,"model":"gpt-5-nano","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":`+fmt.Sprint(out)+`,"total_tokens":`+fmt.Sprint(out+12)+`}}`+"\n\n",
		"data: [DONE]\n\n")
}

// The stalled reader over HTTP/1.1, the protocol of every loopback client
// in the README's client table, same shape and translated both ways (review
// 16R: the relay cleared its writing mark before clientLeft, run after the
// failed write, read it, so the provider was cancelled at once): the client stops reading
// (its socket's receive buffer is 4 KiB, so the gateway's writes block
// after a few tens of KB), then closes. The provider finished and billed
// the whole answer (64,000 output tokens, its usage in the bytes left
// unread behind the blocked write); the call must be priced from it.
//
// claude-haiku-4-5: 12 × $1/MTok + 64,000 × $5/MTok = $0.320012.
func TestE2EStalledReaderHTTP1PricedFromProviderUsage(t *testing.T) {
	// The gateway reads on for unreadGrace what the provider sent while the
	// client stalled; translating 5 MB of events under -race on a busy
	// 2-core machine took longer than its 300 ms (a CI run beside another
	// test run). The grace's length is not what this test checks.
	oldGrace := unreadGrace.Swap(int64(5 * time.Second))
	t.Cleanup(func() { unreadGrace.Store(oldGrace) })
	// 5.2 MB of text: loopback sockets hold about 4 MB before a write blocks.
	ant := stalledAnthropicEvents(13000, 64000)
	oai := stalledOpenAIEvents(13000, 64000)
	// claude-haiku-4-5: 12 × $1/MTok + 64,000 × $5/MTok = $0.320012.
	// gpt-5-nano: 12 × $0.05/MTok + 64,000 × $0.40/MTok = $0.0256006.
	for _, tc := range []struct {
		name, path, body, upPath string
		events                   []string
		cost                     float64
	}{
		{"anthropic same shape", "/v1/messages", `{"model":"haiku","max_tokens":64000,"stream":true,"messages":[{"role":"user","content":"Write."}]}`, "/v1/messages", ant, 0.320012},
		{"openai client to anthropic", "/v1/chat/completions", `{"model":"haiku","max_completion_tokens":64000,"stream":true,"messages":[{"role":"user","content":"Write."}]}`, "/v1/messages", ant, 0.320012},
		{"openai same shape, usage chunk hidden", "/v1/chat/completions", `{"model":"nano","max_completion_tokens":64000,"stream":true,"messages":[{"role":"user","content":"Write."}]}`, "/v1/chat/completions", oai, 0.0256006},
		{"anthropic client to openai", "/v1/messages", `{"model":"nano","max_tokens":64000,"stream":true,"messages":[{"role":"user","content":"Write."}]}`, "/v1/chat/completions", oai, 0.0256006},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, up := e2eSetup(t, "")
			_, tok := e2eKey(g, "stall1")
			up.Enqueue(tc.upPath, fakeupstream.Reply{Events: tc.events})

			d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
				var serr error
				err := rc.Control(func(fd uintptr) {
					serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
				})
				if err != nil {
					return err
				}
				return serr
			}}
			conn, err := d.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", g.gwPort))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Api-Key: %s\r\nAnthropic-Version: 2023-06-01\r\n"+
				"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", tc.path, tok, len(tc.body), tc.body)
			// Read the status line only, then stop reading.
			br := bufio.NewReaderSize(conn, 16)
			line, err := br.ReadString('\n')
			if err != nil || !strings.Contains(line, " 200 ") {
				t.Fatalf("status line %q %v", line, err)
			}
			for deadline := time.Now().Add(5 * time.Second); len(up.RequestsTo(tc.upPath)) == 0 && time.Now().Before(deadline); {
				time.Sleep(10 * time.Millisecond)
			}
			// The gateway is blocked writing to the full socket: waited for,
			// not slept for (a fixed second was too short for translating
			// 5 MB under -race on a busy machine, and the client then left
			// while the relay was between writes, cancelling at once).
			if !stuckWriting(g, 30*time.Second) {
				t.Fatal("the gateway's writes to the stalled client never blocked")
			}
			if calls := g.events("llm.call_completed"); len(calls) != 0 {
				t.Fatalf("the call ended before the client left (the gateway's writes never blocked): %v", calls[0]["error_class"])
			}
			conn.Close()

			call := e2eCalls(g, 1)[0]
			e2eWant(t, "stalled HTTP/1 call", call, map[string]any{
				"error_class": "CANCELLED", "input_tokens": 12.0, "output_tokens": 64000.0, "usage_source": "provider",
			})
			if cost := e2eCost(t, call); !e2eNear(cost, tc.cost) {
				t.Errorf("cost_usd %v; the provider bills $%v", cost, tc.cost)
			}
		})
	}
}

// The keep-alive that goes out with the headers once the provider's first
// event is later than firstEventHold (an OpenAI reasoning model thinking,
// a slow Claude start) is a write of the relay's too (audit 16L: it went
// unmarked, and the provider was cancelled at once): to a client that
// stopped reading (HTTP/2 window 0) it blocks, holding startStream; the provider
// then finishes and bills the whole answer, its bytes waiting in the
// gateway's socket, and when the client leaves they are read on for its
// usage, as after any stuck write.
//
// claude-haiku-4-5: 12 × $1/MTok + 3,000 × $5/MTok = $0.015012.
func TestE2EStalledReaderLateFirstEventPricedFromProviderUsage(t *testing.T) {
	setForTest(t, &firstEventHold, 200*time.Millisecond)

	// The whole answer as one write, 600 ms after the stream opened (a
	// comment first, as OpenRouter and proxies send).
	answer := ""
	for _, ev := range stalledAnthropicEvents(2000, 3000) {
		answer += ev
	}
	for i := range 3 {
		t.Run(fmt.Sprint("run ", i), func(t *testing.T) {
			up := fakeupstream.New(t)
			g := h2cGateway(t, up)
			_, tok := e2eKey(g, "stall-late")
			up.Enqueue("/v1/messages", fakeupstream.Reply{Events: []string{": processing\n\n", answer}, Gap: 600 * time.Millisecond})

			body := `{"model":"haiku","max_tokens":4096,"stream":true,"messages":[{"role":"user","content":"Write."}]}`
			c := dialRawH2C(t, g.gwPort, 0)
			c.post(1, "/v1/messages", tok, len(body), body, true)
			c.awaitOK()
			time.Sleep(1500 * time.Millisecond) // the provider has sent it all (at 600 ms)
			c.conn.Close()

			wantStalledHaikuPriced(t, g)
		})
	}
}

// stuckWriting reports whether, within d, a call in flight stayed inside
// a write to its client for 300 ms on end: its client stopped reading and
// the socket is full.
func stuckWriting(g *testGateway, d time.Duration) bool {
	f := g.app().inflight
	var since time.Time
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		writing := false
		f.mu.Lock()
		for c := range f.calls {
			if cc, ok := c.(*call); ok && cc.writing.Load() {
				writing = true
			}
		}
		f.mu.Unlock()
		switch {
		case !writing:
			since = time.Time{}
		case since.IsZero():
			since = time.Now()
		case time.Since(since) >= 300*time.Millisecond:
			return true
		}
	}
	return false
}
