package metis

import (
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/metisgateway/metis/store"
)

// TestE2ESQLiteShellWhileRunning is the README's step 3 while the gateway
// runs: reading the trace database with the sqlite3 shell must leave the
// gateway's WAL in place, so the calls after the read are in the file too
// and the database stays intact. (The app opens the budget ledger on the
// trace store's file; a ledger open that closed a descriptor of the file
// once dropped the store's SQLite locks, and the shell's close then
// deleted the WAL under the running writer.)
func TestE2ESQLiteShellWhileRunning(t *testing.T) {
	cli, err := exec.LookPath("sqlite3")
	if err != nil {
		if requireE2E() {
			t.Fatalf("sqlite3 shell missing (run tools/install.sh): %v", err)
		}
		t.Skipf("sqlite3 shell not installed: %v", err)
	}
	g, _ := e2eSetup(t, "")
	_, tok := g.issueKey(store.IssueParams{Name: "shell", User: "alice"})
	call := func() {
		t.Helper()
		resp := g.post("/v1/messages", tok, `{"model":"claude-haiku-4-5","max_tokens":64,"messages":[{"role":"user","content":"hi"}]}`)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("call: status %d", resp.StatusCode)
		}
	}
	shell := func(sql string) string {
		t.Helper()
		out, err := exec.Command(cli, g.DB, sql).CombinedOutput()
		if err != nil {
			t.Fatalf("sqlite3 %q: %v: %s", sql, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	call()
	g.sync()
	if got := shell("SELECT count(*) FROM events"); got != "3" {
		t.Fatalf("sqlite3 counted %s events after one call, want 3", got)
	}
	if _, err := os.Stat(g.DB + "-wal"); err != nil {
		t.Fatalf("the gateway's WAL is gone after a sqlite3 read: %v", err)
	}
	for range 5 {
		call()
	}
	g.sync()
	if got := shell("SELECT count(*) FROM events"); got != strconv.Itoa(3*6) {
		t.Fatalf("sqlite3 counted %s events after six calls, want 18: the calls after the first read were lost", got)
	}
	if got := shell("PRAGMA integrity_check"); got != "ok" {
		t.Fatalf("integrity_check: %s", got)
	}
}
