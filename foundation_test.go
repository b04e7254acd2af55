package metis

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/spf13/cobra"

	"github.com/metisgateway/metis/store"
)

func get(t *testing.T, url, token string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func TestHealthzWithAndWithoutKey(t *testing.T) {
	g := startGateway(t, gatewayConfig(tempDB(t), "http://127.0.0.1:1", ""))
	_, tok := g.issueKey(store.IssueParams{Name: "alice-laptop", Workspace: "/tmp/proj"})

	resp, body := get(t, g.URL+"/healthz", tok)
	if resp.StatusCode != 200 || string(body) != `{"status":"ok"}` {
		t.Fatalf("with key: %d %s", resp.StatusCode, body)
	}
	if v := resp.Header.Get("Metis-API-Version"); v != "1.0" {
		t.Errorf("Metis-API-Version = %q, want 1.0", v)
	}
	req, _ := http.NewRequest(http.MethodGet, g.URL+"/healthz", nil)
	req.Header.Set("X-Api-Key", tok)
	if r2, err := http.DefaultClient.Do(req); err != nil || r2.StatusCode != 200 {
		t.Fatalf("x-api-key: %v %v", r2, err)
	}

	// Load-balancer probes carry no key: /healthz needs none and ignores one.
	resp, body = get(t, g.URL+"/healthz", "")
	if resp.StatusCode != 200 || string(body) != `{"status":"ok"}` {
		t.Fatalf("without key: %d %s", resp.StatusCode, body)
	}
	if v := resp.Header.Get("Metis-API-Version"); v != "1.0" {
		t.Errorf("keyless healthz lacks Metis-API-Version: %q", v)
	}
	resp, _ = get(t, g.URL+"/healthz", "gw_not-a-real-token")
	if resp.StatusCode != 200 {
		t.Fatalf("bad key: %d", resp.StatusCode)
	}
	resp, _ = get(t, g.URL+"/healthz", tok, "Metis-API-Version", "9.9")
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("unknown version: %d", resp.StatusCode)
	}

	// Every /v1/* path needs a key, and answers in the caller's shape.
	resp, body = get(t, g.URL+"/v1/models", "", "Anthropic-Version", "2023-06-01")
	if resp.StatusCode != 401 || !strings.Contains(string(body), `"authentication_error"`) {
		t.Fatalf("anthropic-shape 401: %d %s", resp.StatusCode, body)
	}
	resp, body = get(t, g.URL+"/v1/models", "")
	if resp.StatusCode != 401 || !strings.Contains(string(body), `"invalid_api_key"`) {
		t.Fatalf("openai-shape 401: %d %s", resp.StatusCode, body)
	}
	// The two refused /v1/models calls; health checks record nothing.
	rej := g.events(store.TypeRequestRejected)
	if len(rej) != 2 {
		t.Fatalf("want 2 request.rejected events for the refused calls, got %d", len(rej))
	}
}

func TestReloadChurnKeepsOneStoreAndLosesNothing(t *testing.T) {
	db := tempDB(t)
	g := startGateway(t, gatewayConfig(db, "http://127.0.0.1:1", ""))
	fds := openFDsTo(g.DB)

	// Writers: rejected requests each record one event.
	var sent atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				req, _ := http.NewRequest(http.MethodPost, g.URL+"/v1/messages", strings.NewReader(`{}`))
				req.Header.Set("X-Api-Key", "gw_bogus")
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					continue
				}
				resp.Body.Close()
				if resp.StatusCode == 401 {
					sent.Add(1)
				}
			}
		}()
	}
	for i := range 20 {
		// Alternate a harmless option so each load is a real config change.
		g.load(gatewayConfig(db, "http://127.0.0.1:1", fmt.Sprintf("default_model anthropic:claude-haiku-4-%d", i)))
	}
	close(stop)
	wg.Wait()

	if n, _ := stores.References(storeKey(g.DB, 0)); n != 1 {
		t.Errorf("pool references after 20 reloads = %d, want 1", n)
	}
	// Read connections open lazily (key polls, analytics, the budget
	// ledger: at most 4 + 2), so a few may appear during the reloads; a
	// store leaked per reload would add at least 20.
	if now := openFDsTo(g.DB); now > fds+6 {
		t.Errorf("open handles on the database grew from %d to %d over 20 reloads", fds, now)
	}
	got := g.refusals()["unknown_key"]
	if int64(got) != sent.Load() || got == 0 {
		t.Errorf("events = %d, answered requests = %d: events lost across reloads", got, sent.Load())
	}
}

func TestFailedReloadLeavesStoreWorking(t *testing.T) {
	db := tempDB(t)
	g := startGateway(t, gatewayConfig(db, "http://127.0.0.1:1", ""))
	_, tok := g.issueKey(store.IssueParams{Name: "k"})
	// A config that fails in Provision (unknown provider type via JSON-level
	// validation: a pricing file that does not exist).
	err := g.tryLoad(gatewayConfig(db, "http://127.0.0.1:1", "pricing /nonexistent/prices.json"))
	if err == nil {
		t.Fatal("bad config loaded")
	}
	resp, _ := get(t, g.URL+"/healthz", tok)
	if resp.StatusCode != 200 {
		t.Fatalf("after failed reload: %d", resp.StatusCode)
	}
	before := len(g.events(store.TypeRequestRejected))
	get(t, g.URL+"/v1/models", "gw_bogus")
	if after := len(g.events(store.TypeRequestRejected)); after != before+1 {
		t.Fatalf("store not writing after failed reload: %d → %d", before, after)
	}
	if n, _ := stores.References(storeKey(g.DB, 0)); n != 1 {
		t.Errorf("references = %d, want 1", n)
	}
}

// TestRefusedReloadKeepsTheWriterSettings: a reload refused at validation,
// or when another app fails to start, leaves the running trace writer as it
// was (a refused flush_interval 1m held every trace back a minute); an
// accepted one applies its settings, to the events already waiting too.
func TestRefusedReloadKeepsTheWriterSettings(t *testing.T) {
	db := tempDB(t)
	g := startGateway(t, gatewayConfig(db, "http://127.0.0.1:1", ""))
	onDisk := func() int { // without g.sync, which would flush
		var n int
		if err := g.db().QueryRow(`SELECT count(*) FROM events WHERE type = ?`, store.TypeRequestRejected).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	written := func(n int, within time.Duration) bool {
		for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if onDisk() >= n {
				return true
			}
		}
		return false
	}
	slowWriter := "writer {\n\t\t\tflush_interval 1m\n\t\t}"
	err := g.tryLoad(gatewayConfig(db, "http://127.0.0.1:1", "alias fast anthropc:claude-haiku-4-5\n\t\t"+slowWriter))
	if err == nil || !strings.Contains(err.Error(), "unknown provider") {
		t.Fatalf("want the reload refused for its alias, got %v", err)
	}
	get(t, g.URL+"/v1/models", "gw_bogus")
	if !written(1, 3*time.Second) {
		t.Fatal("after a refused reload, a refusal's event is not on disk within 3 s: the refused writer settings are in use")
	}
	// Refused after the metis app started: another server's port is taken,
	// so Caddy stops the apps it had started.
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	cfgJSON, _, err := caddyconfig.GetAdapter("caddyfile").Adapt(caddyfile.Format([]byte(g.caddyfile(gatewayConfig(db, "http://127.0.0.1:1", slowWriter)))), nil)
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(cfgJSON, &cfg); err != nil {
		t.Fatal(err)
	}
	servers := cfg["apps"].(map[string]any)["http"].(map[string]any)["servers"].(map[string]any)
	servers["busy"] = map[string]any{"listen": []string{busy.Addr().String()}}
	cfgJSON, _ = json.Marshal(cfg)
	if err := caddy.Load(cfgJSON, true); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("want the reload refused for its taken port, got %v", err)
	}
	get(t, g.URL+"/v1/models", "gw_bogus")
	if !written(2, 3*time.Second) {
		t.Fatal("after a reload refused at start, a refusal's event is not on disk within 3 s")
	}
	g.load(gatewayConfig(db, "http://127.0.0.1:1", slowWriter))
	get(t, g.URL+"/v1/models", "gw_bogus")
	if written(3, 500*time.Millisecond) {
		t.Error("after an accepted reload with flush_interval 1m, the event was written at once")
	}
	// A reload back to the default settings writes what waited by the old
	// ones at once, not a minute later.
	g.load(gatewayConfig(db, "http://127.0.0.1:1", ""))
	if !written(3, 3*time.Second) {
		t.Error("the event held by flush_interval 1m was not written when a reload shortened it")
	}
}

func TestRevokedAndExpiredKeysRefusedWithin5s(t *testing.T) {
	db := tempDB(t)
	g := startGateway(t, gatewayConfig(db, "http://127.0.0.1:1", ""))
	// Another process (the CLI) issues and revokes keys on the same file.
	cli, err := store.Open(g.DB, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close(context.Background())
	k, tok, err := cli.IssueKey(context.Background(), store.IssueParams{Name: "bob"})
	if err != nil {
		t.Fatal(err)
	}
	_, expTok, err := cli.IssueKey(context.Background(), store.IssueParams{Name: "short", ExpiresIn: 1500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	waitStatus := func(token string, want int) time.Duration {
		t.Helper()
		t.Logf("waiting for %d", want)
		t.Helper()
		start := time.Now()
		for time.Since(start) < 5*time.Second {
			resp, _ := get(t, g.URL+"/v1/models", token)
			if resp.StatusCode == want {
				return time.Since(start)
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("token %.12s… not answered %d within 5s", token, want)
		return 0
	}
	waitStatus(tok, 200)
	waitStatus(expTok, 200)
	if _, err := cli.RevokeKey(context.Background(), k.ID); err != nil {
		t.Fatal(err)
	}
	t.Logf("revocation seen after %v", waitStatus(tok, 401))
	t.Logf("expiry seen after %v", waitStatus(expTok, 401))
}

func TestTokenNeverStored(t *testing.T) {
	db := tempDB(t)
	g := startGateway(t, gatewayConfig(db, "http://127.0.0.1:1", ""))
	_, tok := g.issueKey(store.IssueParams{Name: "alice-laptop", Workspace: "/tmp/proj"})
	for range 3 { // authenticated calls: the key's last-used time gets written
		get(t, g.URL+"/v1/models", tok)
	}
	g.sync()
	// Read last: a plain open and close of the file drops this process's
	// SQLite locks on it (see sqlitefile.Prepare).
	for _, f := range []string{g.DB, g.DB + "-wal"} {
		raw, err := os.ReadFile(f)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		if bytes.Contains(raw, []byte(tok)) || bytes.Contains(raw, []byte(tok[3:])) {
			t.Fatalf("%s contains the token", f)
		}
	}
	st, err := os.Stat(g.DB)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("database mode %v, want 0600", st.Mode().Perm())
	}
}

func TestCommandIssueListRevoke(t *testing.T) {
	db := tempDB(t)
	run := func(args ...string) string {
		t.Helper()
		var cmd = map[string]func() *cobra.Command{
			"issue-key": issueKeyCommand, "list-keys": listKeysCommand, "revoke-key": revokeKeyCommand,
		}[args[0]]()
		cmd.Flags().String("db", "", "")
		var out bytes.Buffer
		cmd.SetOut(&out)
		cmd.SetArgs(append(args[1:], "--db", db))
		if err := cmd.Execute(); err != nil {
			t.Fatal(err)
		}
		return out.String()
	}
	out := run("issue-key", "--name", "alice-laptop", "--workspace", "/tmp/proj", "--user", "alice", "--team", "eng", "--models", "haiku,gpt-5-mini", "--expires", "30d")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "key_id: gk_") || !strings.HasPrefix(lines[1], "token: gw_") {
		t.Fatalf("issue-key printed %q", out)
	}
	id := strings.TrimPrefix(lines[0], "key_id: ")
	tok := strings.TrimPrefix(lines[1], "token: ")
	if len(tok) < len("gw_")+26+32 {
		t.Errorf("token %d chars: too short for a ULID and 128 random bits", len(tok))
	}
	list := run("list-keys")
	if !strings.Contains(list, id) || !strings.Contains(list, "alice-laptop") || !strings.Contains(list, "haiku,gpt-5-mini") {
		t.Fatalf("list-keys: %s", list)
	}
	if strings.Contains(list, tok) || strings.Contains(list, tok[3:]) {
		t.Fatal("list-keys shows the token")
	}
	if out := run("revoke-key", id); !strings.Contains(out, id) {
		t.Fatalf("revoke-key: %s", out)
	}
	if list := run("list-keys"); !strings.Contains(list, "revoked") {
		t.Fatalf("after revoke: %s", list)
	}
}

func TestAnalyticsSiteServesHealthAndDashboard(t *testing.T) {
	g := startGateway(t, gatewayConfig(tempDB(t), "http://127.0.0.1:1", ""))
	resp, body := get(t, g.Analytics+"/health", "")
	if resp.StatusCode != 200 || strings.TrimSpace(string(body)) != `{"status":"ok"}` || resp.Header.Get("Metis-API-Version") != "1.0" {
		t.Fatalf("/health: %d %s %v", resp.StatusCode, body, resp.Header)
	}
	resp, body = get(t, g.Analytics+"/dashboard/", "")
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") || !strings.Contains(string(body), "<html") {
		t.Fatalf("/dashboard/: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	r2, err := c.Get(g.Analytics + "/dashboard")
	if err != nil {
		t.Fatal(err)
	}
	r2.Body.Close()
	if r2.StatusCode != http.StatusMovedPermanently || r2.Header.Get("Location") != "/dashboard/" {
		t.Errorf("/dashboard: %d → %q", r2.StatusCode, r2.Header.Get("Location"))
	}
}
