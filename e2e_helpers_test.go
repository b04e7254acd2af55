package metis

// Helpers shared by the end-to-end tests (e2e_*_test.go): a gateway with a
// fake provider, custom Caddyfiles (metrics, logs), polling for events that
// are recorded after the client has gone, and SSE reading.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/metisgateway/metis/internal/fakeupstream"
	"github.com/metisgateway/metis/store"
)

// setForTest sets *p to v for the rest of the test: a package variable a
// test shortens (a timer's length), put back when it ends.
func setForTest[T any](t testing.TB, p *T, v T) {
	old := *p
	*p = v
	t.Cleanup(func() { *p = old })
}

// e2eSetup starts a gateway whose providers both point at a fresh fake
// provider; extra is appended to the metis option body.
func e2eSetup(t *testing.T, extra string) (*testGateway, *fakeupstream.Server) {
	t.Helper()
	up := fakeupstream.New(t)
	g := startGateway(t, gatewayConfig(tempDB(t), up.URL, extra))
	return g, up
}

// e2eStartSite starts Caddy with the usual metis app (both providers at
// upURL) and analytics site, and a gateway site whose body the test writes
// (site: what goes inside http://127.0.0.1:<port> { … }, such as a
// handle_path around metis_gateway).
func e2eStartSite(t *testing.T, upURL, site string) *testGateway {
	t.Helper()
	db := tempDB(t)
	return e2eStartCustom(t, func(gw, an int) string {
		return string(caddyfile.Format([]byte(testCaddyfile(gatewayConfig(db, upURL, ""), gw, site, an))))
	})
}

// e2eStartCustom starts Caddy from a whole Caddyfile that the test writes
// itself (global options such as log, extra sites such as metrics). render
// gets the gateway and analytics ports and returns the Caddyfile.
func e2eStartCustom(t *testing.T, render func(gwPort, anPort int) string) *testGateway {
	t.Helper()
	caddyMu.Lock()
	t.Setenv("METIS_TEST_ANTHROPIC_KEY", testAnthropicKey)
	t.Setenv("METIS_TEST_OPENAI_KEY", testOpenAIKey)
	g := &testGateway{t: t, gwPort: freePort(t), anPort: freePort(t)}
	g.URL = fmt.Sprintf("http://127.0.0.1:%d", g.gwPort)
	g.Analytics = fmt.Sprintf("http://127.0.0.1:%d", g.anPort)
	t.Cleanup(func() {
		_ = caddy.Stop()
		caddyMu.Unlock()
	})
	g.custom = render(g.gwPort, g.anPort)
	cfg, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(g.custom), nil)
	if err != nil {
		t.Fatalf("adapting the Caddyfile: %v", err)
	}
	for _, w := range warnings {
		t.Logf("adapt warning: %s", w.String())
	}
	var parsed struct {
		Apps struct {
			Metis struct {
				DB string `json:"db"`
			} `json:"metis"`
		} `json:"apps"`
	}
	if err := json.Unmarshal(cfg, &parsed); err != nil || parsed.Apps.Metis.DB == "" {
		t.Fatalf("config has no metis db: %v %s", err, cfg)
	}
	g.DB = parsed.Apps.Metis.DB
	if err := caddy.Load(cfg, true); err != nil {
		t.Fatal(err)
	}
	if err := waitListening(fmt.Sprintf("127.0.0.1:%d", g.gwPort)); err != nil {
		t.Fatal(err)
	}
	return g
}

// e2eKey issues a key with a name and optional workspace and models.
func e2eKey(g *testGateway, name string, models ...string) (store.Key, string) {
	g.t.Helper()
	return g.issueKey(store.IssueParams{Name: name, User: name + "-user", Team: "e2e", AllowedModels: models})
}

// e2eRead reads and closes a response body.
func e2eRead(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("reading the response: %v", err)
	}
	return string(b)
}

// e2eJSON decodes a JSON object, failing the test when it is not one.
func e2eJSON(t *testing.T, s string) map[string]any {
	t.Helper()
	m := map[string]any{}
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatalf("not a JSON object (%v): %.400s", err, s)
	}
	return m
}

// e2ePath walks nested JSON objects: e2ePath(m, "error", "type").
func e2ePath(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

// e2eCalls waits until at least n llm.call_completed events are on disk
// (a call is recorded after its response ends, so after a client that
// hangs up has already returned) and returns them all, oldest first.
func e2eCalls(g *testGateway, n int) []map[string]any {
	g.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ev := g.events(store.TypeCallCompleted)
		if len(ev) >= n || time.Now().After(deadline) {
			if len(ev) < n {
				g.t.Fatalf("%d llm.call_completed events after 10s, want %d", len(ev), n)
			}
			return ev
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// e2eTurnEvents returns, for one turn id, the types of its events in id
// order.
func e2eTurnEvents(g *testGateway, turn string) []string {
	g.t.Helper()
	g.sync()
	rows, err := g.db().Query(`SELECT type FROM events WHERE json_extract(payload_json, '$.turn_id') = ? ORDER BY id`, turn)
	if err != nil {
		g.t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var typ string
		if err := rows.Scan(&typ); err != nil {
			g.t.Fatal(err)
		}
		out = append(out, typ)
	}
	return out
}

// e2eCheckTriple asserts that a call's turn has exactly route.decided,
// llm.call_completed and turn.completed, in that order.
func e2eCheckTriple(g *testGateway, call map[string]any) {
	g.t.Helper()
	turn, _ := call["turn_id"].(string)
	got := strings.Join(e2eTurnEvents(g, turn), ",")
	if got != "route.decided,llm.call_completed,turn.completed" {
		g.t.Errorf("turn %s has events %s", turn, got)
	}
}

// e2eWant compares payload fields with wanted values (JSON numbers as
// float64, null as nil).
func e2eWant(t *testing.T, what string, got map[string]any, want map[string]any) {
	t.Helper()
	for k, v := range want {
		if iv, ok := v.(int); ok {
			v = float64(iv)
		}
		if got[k] != v {
			t.Errorf("%s: %s = %#v, want %#v", what, k, got[k], v)
		}
	}
}

// e2eCost is a call's cost_usd; it fails the test when the call is unpriced.
func e2eCost(t *testing.T, call map[string]any) float64 {
	t.Helper()
	c, ok := call["cost_usd"].(float64)
	if !ok || call["priced"] != true {
		t.Fatalf("call not priced: cost_usd %v priced %v", call["cost_usd"], call["priced"])
	}
	return c
}

// e2eNear compares dollar amounts computed in different orders.
func e2eNear(a, b float64) bool {
	d := a - b
	if d < 0 {
		d = -d
	}
	return d <= 1e-12+1e-9*max(a, b)
}

// e2eSSE is one server-sent event as a client sees it.
type e2eSSE struct {
	Name string // the event: line, "" when absent
	Data string // the data: payload
}

// e2eReadSSE reads server-sent events until the body ends.
func e2eReadSSE(t *testing.T, r io.Reader) []e2eSSE {
	t.Helper()
	rd := e2eNewSSEReader(r)
	var out []e2eSSE
	for {
		ev, ok := rd.next()
		if !ok {
			return out
		}
		out = append(out, ev)
	}
}

type e2eSSEReader struct{ sc *bufio.Scanner }

func e2eNewSSEReader(r io.Reader) *e2eSSEReader {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 4<<20)
	return &e2eSSEReader{sc: sc}
}

// err is the error that ended the body, nil at its clean end.
func (r *e2eSSEReader) err() error { return r.sc.Err() }

// next returns the next event, or false at the end of the body.
func (r *e2eSSEReader) next() (e2eSSE, bool) {
	var ev e2eSSE
	have := false
	for r.sc.Scan() {
		line := r.sc.Text()
		switch {
		case line == "":
			if have {
				return ev, true
			}
		case strings.HasPrefix(line, ":"):
		case strings.HasPrefix(line, "event:"):
			ev.Name, have = strings.TrimSpace(line[6:]), true
		case strings.HasPrefix(line, "data:"):
			if ev.Data != "" {
				ev.Data += "\n"
			}
			ev.Data += strings.TrimPrefix(line[5:], " ")
			have = true
		}
	}
	return ev, have
}

// e2ePostCtx is post with a context, for clients that hang up.
func e2ePostCtx(ctx context.Context, g *testGateway, path, token, body string, hdr ...string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, g.URL+path, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Api-Key", token)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return http.DefaultClient.Do(req)
}

// e2eAnthropicHdr is the header every Anthropic-shape request carries.
var e2eAnthropicHdr = []string{"Anthropic-Version", "2023-06-01"}

// e2eIn is g with its helpers failing t instead of the test that started
// the gateway: a subtest must not call FailNow on its parent.
func e2eIn(g *testGateway, t *testing.T) *testGateway {
	c := *g
	c.t = t
	return &c
}

// runNodeScript runs a Node.js script with node -e against the real client
// packages of tools/ (TOOLS_PACKAGE names tools/package.json, for
// createRequire) and the extra environment env, and returns its standard
// output. It skips the test when node or the package pkg is missing
// (fails it under METIS_REQUIRE_E2E=1), and fails it when the script
// fails or runs past a minute.
func runNodeScript(t *testing.T, pkg, script string, env ...string) []byte {
	t.Helper()
	node, err := exec.LookPath("node")
	tools := filepath.Join(fakeupstream.RepoRoot(), "tools")
	if _, serr := os.Stat(filepath.Join(tools, "node_modules", pkg)); err != nil || serr != nil {
		if os.Getenv("METIS_REQUIRE_E2E") == "1" {
			t.Fatalf("node and the %s package are required (METIS_REQUIRE_E2E=1): %v %v; run tools/install.sh", pkg, err, serr)
		}
		t.Skipf("node or the %s package missing (%v %v); run tools/install.sh", pkg, err, serr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "-e", script)
	cmd.WaitDelay = 5 * time.Second
	cmd.Env = append(append(os.Environ(), "TOOLS_PACKAGE="+filepath.Join(tools, "package.json")), env...)
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("node: %v\n%s\n%s", err, out, stderr)
	}
	return out
}
