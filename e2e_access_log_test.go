package metis

// Gateway tokens stay out of Caddy's access logs when they are turned on
// as Caddyfile.example says (security review 20S).

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/metisgateway/metis/internal/fakeupstream"
)

// captureStderr points file descriptor 2 at a file for the rest of the
// test (Caddy's default logger writes there) and returns the file's path.
// Cleanups run last-in first-out: registered before the gateway starts,
// this one runs after caddy.Stop.
func captureStderr(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "stderr.log")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	saved, err := syscall.Dup(2)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Dup3(int(f.Fd()), 2, 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Dup3(saved, 2, 0)
		_ = syscall.Close(saved)
		_ = f.Close()
	})
	return path
}

// exampleWithAccessLog is Caddyfile.example as an operator following its
// comments writes it for a team: the gateway's access log turned on with
// the X-Api-Key filter the file gives, and (the remote-team advice) the
// http://:8422 catch-all block deleted. Ports, the database, the admin
// endpoint and the provider URLs are the test's.
func exampleWithAccessLog(t *testing.T, upstream, db string, gw, an int) string {
	t.Helper()
	b, err := os.ReadFile("Caddyfile.example")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	s = strings.Replace(s, "admin localhost:2019", "admin off", 1)
	s = strings.Replace(s, "# db /var/lib/metis/metis.db", "db "+db, 1)
	s = strings.Replace(s, "base_url https://api.anthropic.com", "base_url "+upstream, 1)
	s = strings.Replace(s, "base_url https://api.openai.com/v1", "base_url "+upstream+"/v1", 1)
	// Uncomment the access log blocks: the default logger's in the
	// global options, and the gateway site's.
	s = regexp.MustCompile(`(?m)^\t# (log \{|log default \{|\t|\})`).ReplaceAllString(s, "\t$1")
	for _, block := range []string{"\tlog default {",
		"\tlog {\n\t\tformat filter {\n\t\t\trequest>headers>X-Api-Key delete"} {
		if !strings.Contains(s, block) {
			t.Fatalf("Caddyfile.example's access-log block %q not found where expected:\n%s", block, s)
		}
	}
	// Delete the catch-all site of the gateway's port.
	s = regexp.MustCompile(`(?s)\nhttp://:8422 \{.*?\n\}\n`).ReplaceAllString(s, "\n")
	s = strings.ReplaceAll(s, "8422", fmt.Sprint(gw))
	s = strings.ReplaceAll(s, "8421", fmt.Sprint(an))
	return s
}

// With the access logs turned on as Caddyfile.example says, and its
// catch-all site deleted as its remote-team advice says, a request whose
// Host matches no site (a developer whose base URL names the server's IP
// address, a proxy in front passing its own Host) is logged by Caddy's
// default logger, which needs the X-Api-Key filter too: without it (the
// example gave it for the site only), the token was written in clear.
func TestAccessLogKeepsTokensOutForUnmatchedHosts(t *testing.T) {
	stderrPath := captureStderr(t)
	up := fakeupstream.New(t)
	db := filepath.Join(t.TempDir(), "metis.db")
	t.Setenv("ANTHROPIC_API_KEY", testAnthropicKey)
	t.Setenv("OPENAI_API_KEY", testOpenAIKey)
	g := e2eStartCustom(t, func(gw, an int) string { return exampleWithAccessLog(t, up.URL, db, gw, an) })
	_, tok := e2eKey(g, "alice")
	body := `{"model":"haiku","max_tokens":16,"messages":[{"role":"user","content":"Hi."}]}`

	// The site's own address: logged, with the token filtered out.
	resp := g.post("/v1/messages", tok, body, e2eAnthropicHdr...)
	if got := e2eRead(t, resp); resp.StatusCode != 200 {
		t.Fatalf("matched host: %d %s", resp.StatusCode, got)
	}
	// The same server reached under another name.
	req, _ := http.NewRequest(http.MethodPost, g.URL+"/v1/messages", strings.NewReader(body))
	req.Host = fmt.Sprintf("10.20.30.40:%d", g.gwPort)
	req.Header.Set("X-Api-Key", tok)
	req.Header.Set("Anthropic-Version", "2023-06-01")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	other := e2eRead(t, resp)
	t.Logf("request under another Host: %d, %d bytes", resp.StatusCode, len(other))

	logged, err := os.ReadFile(stderrPath)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(logged), `"handled request"`) {
		t.Fatalf("no access log line at all (is the log block on?):\n%s", logged)
	}
	if strings.Contains(string(logged), tok) {
		for _, l := range strings.Split(string(logged), "\n") {
			if strings.Contains(l, tok) {
				t.Errorf("the gateway token is in Caddy's log in clear:\n%.600s", l)
			}
		}
	}
}
