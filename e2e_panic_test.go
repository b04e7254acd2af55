package metis

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/metisgateway/metis/internal/fakeupstream"
	"github.com/metisgateway/metis/store"
)

func init() {
	caddy.RegisterModule(panicOnWrite{})
	httpcaddyfile.RegisterHandlerDirective("metis_test_panic_on_write", func(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
		h.Next()
		return panicOnWrite{}, nil
	})
}

// panicOnWrite is a test-only middleware (http.handlers.metis_test_panic_on_write):
// for a request with X-Test-Panic, the response writer the gateway gets
// panics on its first Write, as a bug in the relay would.
type panicOnWrite struct{}

func (panicOnWrite) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "http.handlers.metis_test_panic_on_write", New: func() caddy.Module { return panicOnWrite{} }}
}

func (panicOnWrite) UnmarshalCaddyfile(*caddyfile.Dispenser) error { return nil }

func (panicOnWrite) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	if r.Header.Get("X-Test-Panic") != "" {
		w = panickyWriter{w}
	}
	return next.ServeHTTP(w, r)
}

type panickyWriter struct{ http.ResponseWriter }

func (panickyWriter) Write([]byte) (int, error) { panic("test: the relay broke") }

func (w panickyWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// TestE2EPanicInACallIsRecorded: a panic while a call is relayed (a bug)
// does not lose the call: it ends in llm.call_completed with status 500,
// error_class INTERNAL_ERROR and the provider's usage priced, its budget
// reservation is settled, the log has the panic, the client's connection
// is cut, and the gateway goes on serving.
func TestE2EPanicInACallIsRecorded(t *testing.T) {
	dir := t.TempDir()
	logPath := filepath.Join(dir, "caddy.log")
	db := filepath.Join(dir, "metis.db")
	up := fakeupstream.New(t)
	g := e2eStartCustom(t, func(gw, an int) string {
		return fmt.Sprintf(`{
	admin off
	grace_period 1s
	log {
		output file %s
		format json
	}
	metis {
		%s
	}
}
http://127.0.0.1:%d {
	route {
		metis_test_panic_on_write
		metis_gateway
	}
}
http://127.0.0.1:%d {
	metis_analytics
}
`, logPath, gatewayConfig(db, up.URL, ""), gw, an)
	})
	k, tok := e2eKey(g, "panicky", "haiku")
	capKey(t, g, k, 5)

	spent := 0.0
	for i, c := range []struct {
		name, stream, source string
		reply                fakeupstream.Reply
		input                float64
	}{
		// Read whole before the first Write: the provider's usage.
		{"answer", "false", "provider", fakeupstream.AnthropicMessage("claude-haiku-4-5", 400, "end_turn", fakeupstream.TextBlock("Never delivered.")), 400},
		// The first Write is the stream's first event (the events come
		// 100 ms apart), after message_start reported the input: that, and
		// an estimated output.
		{"stream", "true", "estimated", gapped(fakeupstream.AnthropicStream("claude-haiku-4-5", 4000, "end_turn", fakeupstream.TextBlock("Never delivered."))), 4000},
	} {
		up.Enqueue("/v1/messages", c.reply)
		req, _ := http.NewRequest(http.MethodPost, g.URL+"/v1/messages",
			strings.NewReader(`{"model":"haiku","max_tokens":64,"stream":`+c.stream+`,"messages":[{"role":"user","content":"hi"}]}`))
		req.Header.Set("X-Api-Key", tok)
		req.Header.Set("Anthropic-Version", "2023-06-01")
		req.Header.Set("X-Test-Panic", "1")
		start := time.Now()
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			b, rerr := io.ReadAll(resp.Body)
			resp.Body.Close()
			if rerr == nil && resp.StatusCode == 200 && len(b) > 0 {
				t.Fatalf("%s: the client got a whole answer through a panicking relay: %d %s", c.name, resp.StatusCode, b)
			}
		}
		if took := time.Since(start); took > time.Second {
			// The stream's events are 100 ms apart, ~1.5 s in all.
			t.Errorf("%s: the client waited %v for the aborted connection", c.name, took.Round(time.Millisecond))
		}
		if c.stream == "true" && !up.WaitCanceled(time.Second) {
			t.Errorf("%s: the provider's stream was not cut after the panic", c.name)
		}
		call := e2eCalls(g, i+1)[i]
		// Haiku 4.5 at $1 / $5 per MTok: the provider billed the call, so
		// the row carries its price.
		out, _ := call["output_tokens"].(float64)
		want := c.input*1e-6 + out*5e-6
		spent += want
		if call["status"] != float64(500) || call["error_class"] != "INTERNAL_ERROR" || call["input_tokens"] != c.input ||
			call["usage_source"] != c.source || out < 1 || !e2eNear(e2eCost(t, call), want) {
			t.Fatalf("%s after a panic: status %v error_class %v input %v output %v usage_source %v cost %v; want 500 INTERNAL_ERROR %v %s %v",
				c.name, call["status"], call["error_class"], call["input_tokens"], out, call["usage_source"], call["cost_usd"], c.input, c.source, want)
		}
		if turns := g.events(store.TypeTurnCompleted); len(turns) != i+1 || turns[i]["turn_id"] != call["turn_id"] {
			t.Errorf("%s: turn.completed after a panic: %v", c.name, turns)
		}
	}
	if q := keyQuota(t, g, k); q.Reserved != 0 || !e2eNear(q.Spent, spent) {
		t.Errorf("budget after the panics: %+v; want nothing reserved and %v spent", q, spent)
	}
	logText, _ := os.ReadFile(logPath)
	if !strings.Contains(string(logText), "panic in an LLM call") || !strings.Contains(string(logText), "the relay broke") {
		t.Errorf("the log does not report the panic")
	}

	up.Enqueue("/v1/messages", fakeupstream.AnthropicMessage("claude-haiku-4-5", 20, "end_turn", fakeupstream.TextBlock("fine")))
	resp := g.post("/v1/messages", tok, `{"model":"haiku","max_tokens":64,"messages":[{"role":"user","content":"hi"}]}`, e2eAnthropicHdr...)
	if body := e2eRead(t, resp); resp.StatusCode != 200 {
		t.Fatalf("the next call: %d %s", resp.StatusCode, body)
	}
}

// gapped spaces r's events 100 ms apart.
func gapped(r fakeupstream.Reply) fakeupstream.Reply {
	r.Gap = 100 * time.Millisecond
	return r
}
