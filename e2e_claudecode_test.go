package metis

// End-to-end with Claude Code itself: `claude -p` pointed at the gateway
// with a gateway token completes a Bash tool-use round trip against the
// fake provider, and every call is traced and priced.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/metisgateway/metis/internal/fakeupstream"
	"github.com/metisgateway/metis/store"
)

// e2eClaudeBinary finds Claude Code, skipping the test when it is not
// installed unless METIS_REQUIRE_E2E=1.
func e2eClaudeBinary(t *testing.T) string {
	t.Helper()
	bin, err := fakeupstream.ClaudeBinary()
	if err != nil {
		if os.Getenv("METIS_REQUIRE_E2E") == "1" {
			t.Fatalf("Claude Code is required (METIS_REQUIRE_E2E=1) but missing: %v; run tools/install.sh", err)
		}
		t.Skipf("Claude Code not installed (%v); run tools/install.sh", err)
	}
	return bin
}

// e2eTap is a pass-through proxy in front of the gateway that records what
// the client sent, so the test can compare it with what reached the
// provider.
type e2eTap struct {
	URL  string
	mu   sync.Mutex
	reqs []fakeupstream.Recorded
}

func e2eNewTap(t *testing.T, target string) *e2eTap {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	tap := &e2eTap{}
	rp := &httputil.ReverseProxy{
		Rewrite:       func(pr *httputil.ProxyRequest) { pr.SetURL(u); pr.Out.Host = pr.In.Host },
		FlushInterval: -1,
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		tap.mu.Lock()
		tap.reqs = append(tap.reqs, fakeupstream.Recorded{Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery,
			Header: r.Header.Clone(), Body: string(body), Time: time.Now()})
		tap.mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(body))
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	tap.URL = srv.URL
	return tap
}

func (tap *e2eTap) requests() []fakeupstream.Recorded {
	tap.mu.Lock()
	defer tap.mu.Unlock()
	return append([]fakeupstream.Recorded(nil), tap.reqs...)
}

func TestE2EClaudeCodeBashRoundTrip(t *testing.T) {
	bin := e2eClaudeBinary(t)
	// metis-cc is an alias Claude Code doesn't know: it sends the id as is
	// (with the full current-model body) and the gateway rewrites it.
	g, up := e2eSetup(t, "alias metis-cc anthropic:claude-haiku-4-5")
	dir := t.TempDir()
	k, tok := g.issueKey(store.IssueParams{Name: "alice-cc", User: "alice", Team: "eng", Workspace: dir})
	replies := fakeupstream.ClaudeCodeBashRoundTrip("echo metis-ok", "All done: metis-ok")
	up.Enqueue("/v1/messages", replies...)
	tap := e2eNewTap(t, g.URL)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	runClaude(t, fakeupstream.ClaudeCommand(ctx, bin, tap.URL, tok, dir, "metis-cc", "Run echo metis-ok with Bash."), "All done: metis-ok")
	if n := up.Pending("/v1/messages"); n != 0 {
		t.Errorf("%d scripted replies never served", n)
	}

	sent := tap.requests()
	got := up.RequestsTo("/v1/messages")
	if len(got) < 2 {
		t.Fatalf("the provider saw %d /v1/messages calls, want the 2 of the round trip", len(got))
	}
	var msgs []fakeupstream.Recorded
	for _, r := range sent {
		if r.Path == "/v1/messages" {
			msgs = append(msgs, r)
		}
	}
	if len(msgs) != len(got) {
		t.Fatalf("Claude Code sent %d /v1/messages calls, the provider saw %d", len(msgs), len(got))
	}
	session := msgs[0].Header.Get("X-Claude-Code-Session-Id")
	if session == "" {
		t.Fatal("Claude Code sent no x-claude-code-session-id")
	}
	for i, r := range got {
		c := msgs[i]
		if r.APIKey() != testAnthropicKey {
			t.Errorf("call %d: provider got key %q, want the provider key", i, r.APIKey())
		}
		for name, vv := range r.Header {
			if strings.Contains(strings.Join(vv, ","), tok) || strings.Contains(strings.Join(vv, ","), tok[3:]) {
				t.Errorf("call %d: the gateway token reached the provider in %s", i, name)
			}
		}
		if r.RawQuery != "beta=true" {
			t.Errorf("call %d: query %q, want beta=true kept", i, r.RawQuery)
		}
		if b := r.Header.Get("Anthropic-Beta"); b == "" || b != c.Header.Get("Anthropic-Beta") || !strings.Contains(b, "claude-code-20250219") {
			t.Errorf("call %d: anthropic-beta %q, Claude Code sent %q", i, b, c.Header.Get("Anthropic-Beta"))
		}
		// Every header Claude Code sent arrives as sent, but the credentials
		// and what the transport owns (the encodings it can decode).
		for name, vv := range c.Header {
			switch name {
			case "X-Api-Key", "Authorization", "Accept-Encoding", "Content-Length", "Connection", "Host":
				continue
			}
			if got := r.Header.Values(name); strings.Join(got, ",") != strings.Join(vv, ",") {
				t.Errorf("call %d: header %s %q upstream, Claude Code sent %q", i, name, got, vv)
			}
		}
		if r.Header.Get("X-Claude-Code-Session-Id") != session {
			t.Errorf("call %d: session header %q, want %q", i, r.Header.Get("X-Claude-Code-Session-Id"), session)
		}
		// The body as Claude Code sent it, byte for byte, but the model.
		if !strings.Contains(c.Body, `"model":"metis-cc"`) {
			t.Fatalf("call %d: Claude Code's body has no \"model\":\"metis-cc\": %.300s", i, c.Body)
		}
		want := strings.Replace(c.Body, `"model":"metis-cc"`, `"model":"claude-haiku-4-5"`, 1)
		if r.Body != want {
			t.Errorf("call %d: body changed on the way (%d bytes sent, %d received)", i, len(c.Body), len(r.Body))
		}
		body := r.JSON()
		for _, f := range []string{"thinking", "context_management", "output_config", "tools", "system", "metadata"} {
			if body[f] == nil {
				t.Errorf("call %d: %s missing upstream", i, f)
			}
		}
		if body["stream"] != true {
			t.Errorf("call %d: not streamed", i)
		}
	}
	if res := fakeupstream.ToolResults(got[len(got)-1].Body); len(res) != 1 || !strings.Contains(fmt.Sprint(res[0]["content"]), "metis-ok") {
		t.Errorf("the Bash output did not come back as a tool_result: %v", res)
	}

	// The trace: one triple per call, each in Claude Code's session.
	calls := e2eCalls(g, len(got))
	if len(calls) != len(got) {
		t.Fatalf("%d llm.call_completed for %d calls", len(calls), len(got))
	}
	routes := g.events(store.TypeRouteDecided)
	turns := g.events(store.TypeTurnCompleted)
	if len(routes) != len(got) || len(turns) != len(got) {
		t.Errorf("%d route.decided and %d turn.completed for %d calls", len(routes), len(turns), len(got))
	}
	// The gateway prices the model the trace row records, the resolved
	// claude-haiku-4-5 ($1 in / $5 out per MTok), the model the scripted
	// replies say they ran (they echo the request's); priced_model stays empty:
	//   tool_use turn: input 4000; output = text 22/4+1 = 6, plus tool
	//     len("Bash") 4 + len(`{"command":"echo metis-ok","description":"Run the requested command"}`) 69/3 = 23 + 10 = 37 → 43
	//     4000 × $1 + 43 × $5 = 4000 + 215 = 4215 µ$ = 0.004215
	//   final turn: input 4100; output len("All done: metis-ok") 18/4+1 = 5
	//     4100 × $1 + 5 × $5 = 4100 + 25 = 4125 µ$ = 0.004125
	// Costs are rounded to 1e-12 dollars, so they compare exactly.
	want := map[string]struct {
		in, out int
		cost    float64
	}{
		replies[0].Header.Get("Request-Id"): {4000, 43, 0.004215},
		replies[1].Header.Get("Request-Id"): {4100, 5, 0.004125},
	}
	for _, r := range replies {
		if !strings.Contains(strings.Join(r.Events, ""), fmt.Sprintf(`"output_tokens":%d}`, want[r.Header.Get("Request-Id")].out)) {
			t.Errorf("the scripted reply no longer reports output_tokens %d: update the hand-computed costs", want[r.Header.Get("Request-Id")].out)
		}
	}
	matched := 0
	for _, c := range calls {
		e2eWant(t, "claude code call", c, map[string]any{
			"session_id": session, "stream": true, "gateway_key_id": k.ID, "key_name": "alice-cc", "user": "alice",
			"team": "eng", "workspace": dir, "inbound_shape": "anthropic", "provider": "anthropic",
			"requested_model": "metis-cc", "model": "claude-haiku-4-5", "status": 200, "error_class": nil,
		})
		e2eCheckTriple(g, c)
		w, ok := want[fmt.Sprint(c["upstream_request_id"])]
		if !ok {
			continue
		}
		matched++
		e2eWant(t, "usage", c, map[string]any{"input_tokens": w.in, "output_tokens": w.out, "usage_source": "provider",
			"priced_model": nil})
		if cost := e2eCost(t, c); cost != w.cost {
			t.Errorf("call %v: cost %v, want %v", c["upstream_request_id"], cost, w.cost)
		}
	}
	if matched != 2 {
		t.Errorf("%d recorded calls carry the scripted replies' request ids, want 2", matched)
	}
	for _, r := range routes {
		if r["session_id"] != session || r["route_slot"] != "request" {
			t.Errorf("route.decided %v", r)
		}
	}
}

// TestE2EClaudeCodeDefaultModelPriced runs Claude Code without --model: the
// pinned version (2.1.332, tools/install.sh) sends its default,
// claude-opus-5-5, which the catalogue now prices (wire-notes.md §4.2:
// $4 in / $20 out per MTok). Before, every call of a default Claude Code
// setup was recorded cost_usd: null.
func TestE2EClaudeCodeDefaultModelPriced(t *testing.T) {
	bin := e2eClaudeBinary(t)
	g, up := e2eSetup(t, "")
	dir := t.TempDir()
	_, tok := g.issueKey(store.IssueParams{Name: "bob-cc", User: "bob", Team: "eng", Workspace: dir})
	replies := fakeupstream.ClaudeCodeBashRoundTrip("echo metis-ok", "All done: metis-ok")
	up.Enqueue("/v1/messages", replies...)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	runClaude(t, fakeupstream.ClaudeCommand(ctx, bin, g.URL, tok, dir, "", "Run echo metis-ok with Bash."), "All done: metis-ok")
	got := up.RequestsTo("/v1/messages")
	if len(got) < 2 {
		t.Fatalf("the provider saw %d /v1/messages calls, want the 2 of the round trip", len(got))
	}
	if m := got[0].JSON()["model"]; m != "claude-opus-5-5" {
		t.Fatalf("Claude Code's default model is now %v, not claude-opus-5-5: check the catalogue prices it and update this test", m)
	}
	// claude-opus-5-5 at $4 in / $20 out per MTok (the replies echo it):
	//   tool_use turn: 4000 × $4 + 43 × $20 = 16000 + 860 = 16860 µ$ = 0.01686
	//   final turn:    4100 × $4 +  5 × $20 = 16400 + 100 = 16500 µ$ = 0.0165
	want := map[string]float64{
		replies[0].Header.Get("Request-Id"): 0.01686,
		replies[1].Header.Get("Request-Id"): 0.0165,
	}
	calls := e2eCalls(g, len(got))
	matched := 0
	for _, c := range calls {
		// Every call is priced (a background call on another model, which
		// this version does not make with nonessential traffic off, would
		// be checked for that only).
		e2eWant(t, "call", c, map[string]any{"provider": "anthropic", "status": 200, "priced": true, "priced_model": nil})
		w, ok := want[fmt.Sprint(c["upstream_request_id"])]
		if !ok {
			continue
		}
		e2eWant(t, "default-model call", c, map[string]any{"requested_model": "claude-opus-5-5", "model": "claude-opus-5-5"})
		matched++
		if cost := e2eCost(t, c); cost != w {
			t.Errorf("call %v: cost %v, want exactly %v", c["upstream_request_id"], cost, w)
		}
	}
	if matched != 2 {
		t.Errorf("%d recorded calls carry the scripted replies' request ids, want 2", matched)
	}
}

// runClaude runs a claude -p command with Claude Code's own retries off (a
// gateway failure must show, not be papered over) and fails t unless it
// exits 0 and prints want.
func runClaude(t *testing.T, cmd *exec.Cmd, want string) {
	t.Helper()
	cmd.Env = append(cmd.Env, "CLAUDE_CODE_MAX_RETRIES=0")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("claude: %v\nstdout: %s\nstderr: %s", err, stdout.String(), stderr.String())
	}
	if got := strings.TrimSpace(stdout.String()); got != want {
		t.Errorf("claude printed %q, want %q (stderr %q)", got, want, stderr.String())
	}
}

// A gateway key that is wrong (mistyped, revoked, expired) stays wrong:
// Claude Code, which retries a 401 ten times over about three minutes,
// gives up on the first refusal, told so by X-Should-Retry: false (review
// 29K), and prints the gateway's reason. The SDKs see the header too.
func TestE2EClaudeCodeGivesUpOnABadGatewayKey(t *testing.T) {
	bin := e2eClaudeBinary(t)
	g, up := e2eSetup(t, "")
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := fakeupstream.ClaudeCommand(ctx, bin, g.URL, "gw_01JMISTYPEDMISTYPEDMISTYPE0000000000000000", dir, "", "Say hi.")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("Claude Code was still retrying the gateway's 401 after a minute (%d refusals so far)", len(g.events("request.rejected")))
	}
	out := stdout.String() + stderr.String()
	if err == nil || !strings.Contains(out, "invalid gateway key") {
		t.Errorf("claude exited %v printing %q; want a failure naming the invalid gateway key", err, out)
	}
	if n := len(g.events("request.rejected")); n != 1 {
		t.Errorf("%d requests refused, want 1: Claude Code should not retry a bad key", n)
	}
	if n := len(up.Requests()); n != 0 {
		t.Errorf("the provider got %d requests from a bad key", n)
	}
}
