package metis

import (
	"bytes"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"sync"
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
			select {
			case st := <-c.status:
				if st != "200" {
					t.Fatalf("status %s, want 200", st)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("no response headers")
			}
			// The provider sends its whole answer at once (47 KB); it waits
			// unread in the gateway's socket. Then the client goes.
			for deadline := time.Now().Add(5 * time.Second); len(up.RequestsTo("/v1/messages")) == 0 && time.Now().Before(deadline); {
				time.Sleep(10 * time.Millisecond)
			}
			time.Sleep(time.Second)
			c.conn.Close()

			call := e2eCalls(g, 1)[0]
			e2eWant(t, "stalled call", call, map[string]any{
				"error_class": "CANCELLED", "input_tokens": 12.0, "output_tokens": 3000.0, "usage_source": "provider",
			})
			if cost := e2eCost(t, call); !e2eNear(cost, 0.015012) {
				t.Errorf("cost_usd %v; the provider bills $0.015012 (12 × $1/MTok + 3000 × $5/MTok)", cost)
			}
		})
	}
}
