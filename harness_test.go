package metis

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	_ "github.com/caddyserver/caddy/v2/modules/standard"
	_ "github.com/mattn/go-sqlite3"

	"github.com/metisgateway/metis/store"
)

// caddyMu serialises the tests that run Caddy: there is one Caddy per process.
var caddyMu sync.Mutex

// testGateway is a Caddy instance started in-process from a Caddyfile, with
// the gateway and analytics sites on free loopback ports.
type testGateway struct {
	t         testing.TB
	URL       string // gateway site
	Analytics string // analytics site
	DB        string // trace database path
	gwPort    int
	anPort    int
	custom    string // the Caddyfile e2eStartCustom rendered
}

// freePort is a loopback port free now and not handed out before in this
// process: the kernel may give a just-closed port again at once, and two
// site blocks on one port make an ambiguous Caddyfile (a CI flake). Nor is
// it one another test process holds (claimPort): Caddy binds with
// SO_REUSEPORT, so two processes' gateways given the same port would both
// bind it and share its connections (review 28F: a call answered EOF by
// the other process's stopping gateway).
func freePort(t testing.TB) int {
	t.Helper()
	portsMu.Lock()
	defer portsMu.Unlock()
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		_ = l.Close()
		if !portsGiven[port] && claimPort(port) {
			portsGiven[port] = true
			return port
		}
	}
	t.Fatal("no loopback port not handed out before")
	return 0
}

// claimPort takes a lock, held until the process exits, on a file naming
// port in a folder every test process shares; false when another process
// holds it. Without the folder it claims nothing and says yes.
func claimPort(port int) bool {
	dir := filepath.Join(os.TempDir(), "metis-test-ports")
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return true
	}
	f, err := os.OpenFile(filepath.Join(dir, strconv.Itoa(port)), os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		return true
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return !errors.Is(err, syscall.EWOULDBLOCK)
	}
	claimedPorts = append(claimedPorts, f) // kept open: the lock lasts as long as the process
	return true
}

// portsGiven are the ports freePort handed out, claimedPorts the files
// whose locks claim them.
var (
	portsMu      sync.Mutex
	portsGiven   = map[int]bool{}
	claimedPorts []*os.File
)

// gatewayConfig is the metis global option body used by most tests: both
// providers pointed at one fake upstream.
func gatewayConfig(db, upstream string, extra string) string {
	return fmt.Sprintf(`db %s
		provider anthropic {
			api_key {env.METIS_TEST_ANTHROPIC_KEY}
			base_url %s
			max_retries 2
			max_retry_wait 5s
		}
		provider openai {
			api_key {env.METIS_TEST_OPENAI_KEY}
			base_url %s/v1
			max_retries 2
			max_retry_wait 5s
		}
		alias haiku anthropic:claude-haiku-4-5
		alias sonnet anthropic:claude-3-7-sonnet-20250219
		alias nano openai:gpt-5-nano
		%s`, db, upstream, upstream, extra)
}

const (
	testAnthropicKey = "sk-ant-test-provider-key"
	testOpenAIKey    = "sk-openai-test-provider-key"
)

// startGateway runs Caddy with the metis option body and both sites.
func startGateway(t testing.TB, metisBody string) *testGateway {
	t.Helper()
	caddyMu.Lock()
	// Registered at once: a test that fails before its config loads must
	// still release caddyMu, or every later test waits for it until the
	// binary's 10-minute timeout.
	t.Cleanup(func() {
		_ = caddy.Stop()
		caddyMu.Unlock()
	})
	t.Setenv("METIS_TEST_ANTHROPIC_KEY", testAnthropicKey)
	t.Setenv("METIS_TEST_OPENAI_KEY", testOpenAIKey)
	g := &testGateway{t: t}
	// freePort's port is free when it returns, but another test process
	// (go test runs packages in parallel) may take it before Caddy binds:
	// then pick others.
	for attempt := 0; ; attempt++ {
		g.gwPort, g.anPort = freePort(t), freePort(t)
		for g.anPort == g.gwPort {
			g.anPort = freePort(t)
		}
		g.URL = fmt.Sprintf("http://127.0.0.1:%d", g.gwPort)
		g.Analytics = fmt.Sprintf("http://127.0.0.1:%d", g.anPort)
		err := g.tryLoad(metisBody)
		if err == nil {
			return g
		}
		if attempt == 2 || !strings.Contains(err.Error(), "address already in use") {
			t.Fatal(err)
		}
		t.Logf("ports %d and %d: %v; trying others", g.gwPort, g.anPort, err)
	}
}

// caddyfile renders the full Caddyfile for a metis option body.
func (g *testGateway) caddyfile(metisBody string) string {
	return testCaddyfile(metisBody, g.gwPort, "\tmetis_gateway", g.anPort)
}

// testCaddyfile renders the tests' Caddyfile: quiet global options with
// the metis app, a gateway site on gwPort whose body is site, and the
// analytics site on anPort.
func testCaddyfile(metisBody string, gwPort int, site string, anPort int) string {
	return fmt.Sprintf(`{
	admin off
	persist_config off
	grace_period 1s
	log {
		level ERROR
	}
	metis {
		%s
	}
}
http://127.0.0.1:%d {
%s
}
http://127.0.0.1:%d {
	metis_analytics
}
`, metisBody, gwPort, site, anPort)
}

// load adapts and (re)loads a config, failing the test on error.
func (g *testGateway) load(metisBody string) {
	g.t.Helper()
	if err := g.tryLoad(metisBody); err != nil {
		g.t.Fatal(err)
	}
}

// tryLoad adapts and loads a config and returns the error, for reload tests.
func (g *testGateway) tryLoad(metisBody string) error {
	cfg, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt(caddyfile.Format([]byte(g.caddyfile(metisBody))), nil)
	if err != nil {
		return fmt.Errorf("adapting: %w", err)
	}
	for _, w := range warnings {
		g.t.Logf("adapt warning: %s", w.String())
	}
	var parsed struct {
		Apps struct {
			Metis struct {
				DB string `json:"db"`
			} `json:"metis"`
		} `json:"apps"`
	}
	_ = json.Unmarshal(cfg, &parsed)
	if parsed.Apps.Metis.DB != "" {
		g.DB = parsed.Apps.Metis.DB
	}
	if err := reloadCaddy(cfg); err != nil {
		return err
	}
	return waitListening(fmt.Sprintf("127.0.0.1:%d", g.gwPort))
}

// reloadCaddy loads cfg over the running config, then drops the test
// client's idle keep-alive connections. caddy.Load returns once the old
// servers have begun shutting down, not once they have closed their idle
// connections, so a POST sent on one of them can race that close and read
// EOF. HTTP lets a server close an idle connection at any time; SDKs
// retry such a POST, http.DefaultClient does not (CI failed this way).
func reloadCaddy(cfg []byte) error {
	if err := caddy.Load(cfg, true); err != nil {
		return err
	}
	http.DefaultClient.CloseIdleConnections()
	return nil
}

func waitListening(addr string) error {
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("%s not listening", addr)
}

// app is the running metis app.
func (g *testGateway) app() *App {
	g.t.Helper()
	v, err := caddy.ActiveContext().AppIfConfigured("metis")
	if err != nil {
		g.t.Fatal(err)
	}
	return v.(*App)
}

// issueKey issues a key on the running gateway's store.
func (g *testGateway) issueKey(p store.IssueParams) (store.Key, string) {
	g.t.Helper()
	if p.Name == "" {
		p.Name = "test-key"
	}
	k, tok, err := g.app().store.IssueKey(context.Background(), p)
	if err != nil {
		g.t.Fatal(err)
	}
	return k, tok
}

// sync waits until every enqueued trace event is on disk.
func (g *testGateway) sync() {
	g.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := g.app().store.Sync(ctx); err != nil {
		g.t.Fatal(err)
	}
}

// db opens the trace database read-only, as an operator's sqlite3 would.
func (g *testGateway) db() *sql.DB {
	g.t.Helper()
	db, err := sql.Open("sqlite3", "file:"+g.DB+"?mode=ro&_busy_timeout=5000")
	if err != nil {
		g.t.Fatal(err)
	}
	g.t.Cleanup(func() { db.Close() })
	return db
}

// events returns the payloads of the events of one type, oldest first.
func (g *testGateway) events(typ string) []map[string]any {
	g.t.Helper()
	g.sync()
	rows, err := g.db().Query(`SELECT payload_json FROM events WHERE type = ? ORDER BY id`, typ)
	if err != nil {
		g.t.Fatal(err)
	}
	defer rows.Close()
	var out []map[string]any
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			g.t.Fatal(err)
		}
		m := map[string]any{}
		if err := json.Unmarshal([]byte(s), &m); err != nil {
			g.t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

// refusals writes the gateway's pending sums of refusals and counts the
// recorded refusals by reason (an event with a count stands for that many).
func (g *testGateway) refusals() map[string]int {
	g.t.Helper()
	g.app().rejects.flush()
	out := map[string]int{}
	for _, e := range g.events(store.TypeRequestRejected) {
		n := 1
		if c, ok := e["count"].(float64); ok {
			n = int(c)
		}
		out[fmt.Sprint(e["reason"])] += n
	}
	return out
}

// waitEvents returns the events of a type once there are at least n: a
// handler records its events after the client has read the last byte.
func (g *testGateway) waitEvents(typ string, n int) []map[string]any {
	g.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		ev := g.events(typ)
		if len(ev) >= n || time.Now().After(deadline) {
			return ev
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// lastCall is the newest llm.call_completed payload.
func (g *testGateway) lastCall() map[string]any {
	g.t.Helper()
	ev := g.waitEvents(store.TypeCallCompleted, 1)
	if len(ev) == 0 {
		g.t.Fatal("no llm.call_completed event")
	}
	return ev[len(ev)-1]
}

// post sends a JSON body with a gateway token.
func (g *testGateway) post(path, token string, body string, hdr ...string) *http.Response {
	g.t.Helper()
	req, err := http.NewRequest(http.MethodPost, g.URL+path, strings.NewReader(body))
	if err != nil {
		g.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("X-Api-Key", token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		g.t.Fatal(err)
	}
	return resp
}

func tempDB(t testing.TB) string {
	dir := t.TempDir()
	return filepath.Join(dir, "metis", "metis.db")
}

// openFDsTo counts this process's open file descriptors on path.
func openFDsTo(path string) int {
	ents, _ := os.ReadDir("/proc/self/fd")
	n := 0
	for _, e := range ents {
		target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		if err == nil && target == path {
			n++
		}
	}
	return n
}

// requireE2E is true when missing end-to-end tools (Claude Code, Chromium)
// must fail the run rather than skip: make test sets METIS_REQUIRE_E2E=1.
func requireE2E() bool { return os.Getenv("METIS_REQUIRE_E2E") == "1" }

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

// postConcurrently posts body to path n times at once and counts the
// answers' statuses.
func (g *testGateway) postConcurrently(n int, path, token, body string, hdr ...string) map[int]int {
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[int]int{}
	for range n {
		wg.Go(func() {
			resp := g.post(path, token, body, hdr...)
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			mu.Lock()
			codes[resp.StatusCode]++
			mu.Unlock()
		})
	}
	wg.Wait()
	return codes
}
