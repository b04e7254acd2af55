package metis

// Claude Code against a provider whose stream breaks off mid-answer: the
// same provider failure must make Claude Code recover the same way through
// the gateway as directly (audit 14c).

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/metisgateway/metis/internal/fakeupstream"
	"github.com/metisgateway/metis/store"
)

// Directly, a provider stream cut after some content_block_deltas makes
// Claude Code retry the streamed request (after ~0.6 s back-off). Through
// the gateway, which relays the events and ends the stream with
// `event: error` (api_error, "the provider's stream was interrupted"),
// Claude Code instead falls back at once to a non-streaming request
// (stream:false, max_tokens and thinking unchanged) and keeps every later
// retry of that turn non-streaming.
func TestE2EClaudeCodeStreamCutRetriesLikeDirect(t *testing.T) {
	bin := e2eClaudeBinary(t)
	streamed := func(r *fakeupstream.Recorded) bool { return r.JSON()["stream"] == true }
	unstreamed := func(r *fakeupstream.Recorded) bool { return r.JSON()["stream"] != true }
	script := func(up *fakeupstream.Server) {
		cut := fakeupstream.AnthropicTextStream("claude-opus-5-5", "I'd be happy to check the weather in San Francisco for you right away.")
		cut.DieAfter = 5 // message_start, content_block_start, 3 deltas
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
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("claude via %s: %v\nstdout: %s\nstderr: %s", baseURL, err, stdout.String(), stderr.String())
		}
		return stdout.String()
	}
	flags := func(up *fakeupstream.Server) []bool {
		var out []bool
		for _, r := range up.RequestsTo("/v1/messages") {
			out = append(out, r.JSON()["stream"] == true)
		}
		return out
	}

	// Directly against the provider.
	direct := fakeupstream.New(t)
	script(direct)
	directOut := run(direct.URL, "sk-ant-direct", t.TempDir())
	directFlags := flags(direct)

	// Through the gateway.
	g, up := e2eSetup(t, "")
	dir := t.TempDir()
	_, tok := g.issueKey(store.IssueParams{Name: "cc-cut", Workspace: dir})
	script(up)
	gwOut := run(g.URL, tok, dir)
	gwFlags := flags(up)

	t.Logf("direct: provider requests stream=%v, printed %q", directFlags, directOut)
	t.Logf("gateway: provider requests stream=%v, printed %q", gwFlags, gwOut)
	if fmt.Sprint(directFlags) != "[true true]" {
		t.Fatalf("directly, Claude Code sent stream=%v after the cut, want [true true] (a streamed retry): re-measure", directFlags)
	}
	if fmt.Sprint(gwFlags) != fmt.Sprint(directFlags) {
		t.Errorf("through the gateway Claude Code sent stream=%v for the same provider cut, directly %v: "+
			"the gateway's closing `event: error` (api_error) turns Claude Code's streamed retry into a non-streaming fallback", gwFlags, directFlags)
	}
	if gwOut != directOut {
		t.Errorf("through the gateway Claude Code printed %q, directly %q", gwOut, directOut)
	}
	// The ledger has both calls: the cut one as interrupted, the retry as
	// a success.
	calls := e2eCalls(g, 2)
	e2eWant(t, "cut call", calls[0], map[string]any{"error_class": "STREAM_INTERRUPTED", "stream": true, "usage_source": "estimated"})
	e2eWant(t, "retry", calls[1], map[string]any{"status": 200, "error_class": nil, "stream": true, "usage_source": "provider"})
}

// The same rule without the binary: a request that carries Claude Code's
// session header gets a provider's cut as a cut (the response aborted, a
// clean end where the provider ended cleanly), same shape and translated,
// while the call is recorded as interrupted; the gateway's own stops (an
// event it cannot translate) still end with an error event.
func TestE2EStreamCutRelayedAsCutToClaudeCode(t *testing.T) {
	g, up := e2eSetup(t, "")
	_, tok := e2eKey(g, "cccut")
	hdr := append([]string{"X-Claude-Code-Session-Id", "sess-cut"}, e2eAnthropicHdr...)
	read := func(t *testing.T, model string) (string, error) {
		resp := g.post("/v1/messages", tok, `{"model":"`+model+`","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"Count."}]}`, hdr...)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("status %d %s", resp.StatusCode, b)
		}
		return string(b), err
	}
	for _, tc := range []struct {
		name, path, model string
		reply             func() fakeupstream.Reply
		wantCut           bool
	}{
		{"cut", "/v1/messages", "haiku", func() fakeupstream.Reply {
			r := fakeupstream.AnthropicTextStream("claude-haiku-4-5", "alpha beta gamma delta")
			r.DieAfter = 4
			return r
		}, true},
		{"clean end", "/v1/messages", "haiku", func() fakeupstream.Reply {
			r := fakeupstream.AnthropicTextStream("claude-haiku-4-5", "alpha beta gamma delta")
			r.Events = r.Events[:4]
			return r
		}, false},
		{"translated cut", "/v1/chat/completions", "gpt-4o", func() fakeupstream.Reply {
			r := fakeupstream.OpenAITextStream("gpt-4o", "alpha beta gamma delta", 20, true)
			r.DieAfter = 3
			return r
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := e2eIn(g, t)
			up.Reset()
			up.Enqueue(tc.path, tc.reply())
			got, err := read(t, tc.model)
			if (err != nil) != tc.wantCut || strings.Contains(got, "event: error") || strings.Contains(got, "message_stop") {
				t.Errorf("read error %v, body %.300q; want the provider's ending (cut: %v) and no error event", err, got, tc.wantCut)
			}
			if !strings.Contains(got, "message_start") {
				t.Errorf("body %.300q; want the events before the cut", got)
			}
			e2eWant(t, "call", e2eCalls(g, 1)[0], map[string]any{"status": 200, "error_class": "STREAM_INTERRUPTED", "attempts": 1, "session_id": "sess-cut"})
		})
	}
	t.Run("untranslatable event", func(t *testing.T) {
		up.Reset()
		r := fakeupstream.OpenAITextStream("gpt-4o", "alpha beta gamma delta", 20, true)
		r.Events[2] = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\n\n"
		up.Enqueue("/v1/chat/completions", r)
		got, err := read(t, "gpt-4o")
		if err != nil || !strings.Contains(got, "event: error") {
			t.Errorf("read error %v, body %.300q; want the gateway's error event", err, got)
		}
	})
	t.Run("without the header", func(t *testing.T) {
		g := e2eIn(g, t)
		up.Reset()
		r := fakeupstream.AnthropicTextStream("claude-haiku-4-5", "alpha beta gamma delta")
		r.DieAfter = 4
		up.Enqueue("/v1/messages", r)
		got := e2eRead(t, g.post("/v1/messages", tok, `{"model":"haiku","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"Count."}]}`, e2eAnthropicHdr...))
		if !strings.Contains(got, "event: error") || !strings.Contains(got, interruptedMsg) {
			t.Errorf("body %.300q; want the error event", got)
		}
	})
}

// A gateway that stops (SIGTERM at a deploy, a reload that moves the
// database) while Claude Code's stream is running cut that stream with an
// `event: error` ("the gateway is shutting down"), which Claude Code
// answers by falling back to non-streamed requests for the rest of its
// turn (review 14R2, with the real binary). It is cut, as a restarting
// provider or proxy would cut it, and Claude Code retries it streamed.
func TestE2EClaudeCodeStreamCutByShutdown(t *testing.T) {
	g, up := e2eSetup(t, "")
	_, tok := e2eKey(g, "cc-stop")
	rd := e2eStalledStream(t, g, up, tok, "X-Claude-Code-Session-Id", "sess-stop")
	// Unloaded, then the process exits (finishDraining is what
	// caddy.OnExit runs): the call is cancelled at once.
	if err := caddy.Stop(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { finishDraining(context.Background()); close(exited) }()
	var rest []e2eSSE
	for ev, ok := rd.next(); ok; ev, ok = rd.next() {
		rest = append(rest, ev)
	}
	select {
	case <-exited:
	case <-time.After(15 * time.Second):
		t.Fatal("the exit did not finish the draining store within 15 s")
	}
	for _, ev := range rest {
		if ev.Name == "error" {
			t.Errorf("after the stop Claude Code's stream got the error event %q; want it cut, no error event", ev.Data)
		}
	}
	if rd.err() == nil {
		t.Errorf("after the stop Claude Code's stream ended cleanly after %v; want it cut (a read error)", rest)
	}
}

// A cut relayed to Claude Code is still a request Caddy's own metrics and
// access log count, with its duration: a panic(http.ErrAbortHandler)
// through Caddy's handler chain left it out of
// caddy_http_request_duration_seconds and logged "duration": 0 for a
// 300 ms call (reviews 14R2 over HTTP/1, 14L over HTTP/2).
func TestE2EClaudeCodeCutSeenByCaddyMetricsAndAccessLog(t *testing.T) {
	for _, proto := range []string{"HTTP/1.1", "HTTP/2.0"} {
		t.Run(proto, func(t *testing.T) {
			client := http.DefaultClient
			global := "metrics"
			if proto == "HTTP/2.0" {
				// Unencrypted HTTP/2 (h2c): the same server code as over TLS.
				tr := &http.Transport{Protocols: new(http.Protocols)}
				tr.Protocols.SetUnencryptedHTTP2(true)
				t.Cleanup(tr.CloseIdleConnections)
				client = &http.Client{Transport: tr}
				global = "metrics\n\tservers {\n\t\tprotocols h1 h2c\n\t}"
			}
			up := fakeupstream.New(t)
			g, accessPath, metricsURL := e2eObservedGateway(t, up, t.TempDir(), global)
			_, tok := e2eKey(g, "cc-metrics")
			post := func() (string, error) {
				req, _ := http.NewRequest(http.MethodPost, g.URL+"/v1/messages",
					strings.NewReader(`{"model":"haiku","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"Count."}]}`))
				req.Header.Set("X-Api-Key", tok)
				req.Header.Set("X-Claude-Code-Session-Id", "sess-metrics")
				req.Header.Set("Anthropic-Version", "2023-06-01")
				resp, err := client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				if resp.Proto != proto {
					t.Fatalf("served over %s, want %s", resp.Proto, proto)
				}
				b, err := io.ReadAll(resp.Body)
				return string(b), err
			}
			count := func() float64 {
				var n float64
				for k, v := range e2eScrape(t, metricsURL) {
					if strings.HasPrefix(k, "caddy_http_request_duration_seconds_count{") && strings.Contains(k, `method="POST"`) {
						n += v
					}
				}
				return n
			}
			// counted waits for the count to pass from.
			counted := func(from float64) float64 {
				n := count()
				for deadline := time.Now().Add(3 * time.Second); n <= from && time.Now().Before(deadline); n = count() {
					time.Sleep(50 * time.Millisecond)
				}
				return n
			}
			// Control: a whole stream is counted.
			start := count()
			up.Enqueue("/v1/messages", fakeupstream.AnthropicTextStream("claude-haiku-4-5", "alpha beta gamma delta"))
			if _, err := post(); err != nil {
				t.Fatal(err)
			}
			before := counted(start)
			if before-start != 1 {
				t.Fatalf("a whole stream moved caddy_http_request_duration_seconds_count from %v to %v", start, before)
			}
			r := fakeupstream.AnthropicTextStream("claude-haiku-4-5", "alpha beta gamma delta")
			r.Gap = 100 * time.Millisecond
			r.DieAfter = 4
			up.Enqueue("/v1/messages", r)
			got, rerr := post()
			// HTTP/1 closes the connection under the chunked body; HTTP/2
			// ends the stream without its last event.
			if (rerr == nil) != (proto == "HTTP/2.0") || strings.Contains(got, "event: error") || strings.Contains(got, "message_stop") {
				t.Fatalf("read error %v, body %.300q: the cut was not relayed as a cut", rerr, got)
			}
			e2eCalls(g, 2) // recorded
			if after := counted(before); after-before != 1 {
				t.Errorf("caddy_http_request_duration_seconds_count{method=POST} went from %v to %v over one cut call; want +1", before, after)
			}
			var lines []map[string]any
			for deadline := time.Now().Add(3 * time.Second); len(lines) < 2 && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
				lines, _ = e2eLogLines(t, accessPath)
			}
			if len(lines) < 2 {
				t.Fatalf("%d access log lines, want 2", len(lines))
			}
			if last := lines[len(lines)-1]; last["duration"].(float64) < 0.2 {
				t.Errorf("access log line for a 300 ms cut call: duration %v, status %v; want its duration", last["duration"], last["status"])
			}
		})
	}
}

// A cut relayed to Claude Code still settles a budgeted key's
// reservation with the recorded cost, and the turn is one triple.
func TestE2EClaudeCodeCutSettlesBudget(t *testing.T) {
	g, up := e2eSetup(t, "")
	k, tok := e2eKey(g, "cc-budget")
	capKey(t, g, k, 5)
	r := fakeupstream.AnthropicStream("claude-haiku-4-5", 2000, "end_turn", fakeupstream.TextBlock("one two three four five six"))
	r.DieAfter = 4
	up.Enqueue("/v1/messages", r)
	hdr := append([]string{"X-Claude-Code-Session-Id", "sess-budget"}, e2eAnthropicHdr...)
	resp := g.post("/v1/messages", tok, `{"model":"haiku","max_tokens":256,"stream":true,"messages":[{"role":"user","content":"Count to six."}]}`, hdr...)
	b, rerr := io.ReadAll(resp.Body)
	resp.Body.Close()
	if rerr == nil || strings.Contains(string(b), "event: error") {
		t.Fatalf("want a cut: %v %q", rerr, b)
	}
	call := e2eCalls(g, 1)[0]
	e2eCheckTriple(g, call)
	cost := e2eCost(t, call)
	t.Logf("call: in %v out %v source %v cost %v", call["input_tokens"], call["output_tokens"], call["usage_source"], cost)
	var held int
	var charged float64
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if err := g.db().QueryRow(`SELECT (SELECT count(*) FROM budget_reservations), (SELECT coalesce(sum(amount), 0) FROM budget_charges)`).Scan(&held, &charged); err != nil {
			t.Fatal(err)
		}
		if held == 0 || time.Now().After(deadline) {
			break
		}
	}
	if held != 0 || !e2eNear(charged, cost) {
		t.Errorf("%d reservations held, $%v charged; want none held and $%v", held, charged, cost)
	}
}
