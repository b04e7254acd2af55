package metis

// Review 28L: what an operator reads in Caddy's log over a day.

import (
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/metisgateway/metis/budget"
	"github.com/metisgateway/metis/internal/fakeupstream"
)

// logLinesMsg returns the log lines whose msg is msg.
func logLinesMsg(t *testing.T, logPath, msg string) []map[string]any {
	t.Helper()
	lines, _ := e2eLogLines(t, logPath)
	var got []map[string]any
	for _, l := range lines {
		if l["msg"] == msg {
			got = append(got, l)
		}
	}
	return got
}

// waitLogLines polls the log until n lines with msg are there (or 5 s).
func waitLogLines(t *testing.T, logPath, msg string, n int) []map[string]any {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := logLinesMsg(t, logPath, msg)
		if len(got) >= n || time.Now().After(deadline) {
			return got
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A provider that cannot be reached (or does not answer in time) gets one
// WARN line per call: "upstream call failed" with a turn id and the dial
// error, and nothing else. The operator filtering WARN+ learns that some
// provider is down but not which one (a timeout's error text names no
// address at all), nor whose call or which model; and an outage writes
// one WARN per call, where the provider's refusal of its api_key (the
// other per-provider fault) is one line for the lot.
func TestReview28LUpstreamFailureLogNamesProvider(t *testing.T) {
	up := fakeupstream.New(t)
	dead := freePort(t) // nothing listens there
	g, logPath, _ := e2eStartLogged(t, up, "INFO", fmt.Sprintf(`provider dead openai {
			base_url http://127.0.0.1:%d/v1
			max_retries 0
		}`, dead))
	k, tok := e2eKey(g, "outage")
	const calls = 5
	for range calls {
		resp := g.post("/v1/chat/completions", tok, `{"model":"dead:gpt-5-mini","messages":[{"role":"user","content":"hi"}]}`)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 502 {
			t.Fatalf("status %d, want 502 from an unreachable provider", resp.StatusCode)
		}
	}
	waitLogLines(t, logPath, "llm call", calls)
	warns := logLinesMsg(t, logPath, "upstream call failed")
	if len(warns) == 0 {
		t.Fatal("no \"upstream call failed\" line")
	}

	t.Run("context", func(t *testing.T) {
		l := warns[0]
		for field, want := range map[string]any{"provider": "dead", "key_id": k.ID, "model": "gpt-5-mini"} {
			if l[field] != want {
				t.Errorf("%q = %v, want %v: the WARN line an operator filters on must say which provider failed (and for whom): %v",
					field, l[field], want, l)
			}
		}
	})
	t.Run("not one WARN per call", func(t *testing.T) {
		// 5 calls in well under a second, all to one dead provider: the
		// "llm call" lines already record each (status 502,
		// UPSTREAM_UNREACHABLE); the WARN should be once per provider per
		// interval, as "provider refused the gateway's requests" is.
		if len(warns) > 1 {
			t.Errorf("%d WARN \"upstream call failed\" lines for %d calls to one unreachable provider within a second (want 1, then counted)",
				len(warns), calls)
		}
	})
}

// A revoked (or expired) key that is still being tried is what an operator
// who revoked a leaked key most wants to see; the gateway knows the key
// (the token's hash matched it) but its "request rejected" line drops the
// key id, which the same line carries for every refusal after
// authentication (malformed_json, unknown_model, budget …).
func TestReview28LRevokedKeyRefusalNamesKey(t *testing.T) {
	up := fakeupstream.New(t)
	g, logPath, _ := e2eStartLogged(t, up, "DEBUG", "")
	k, tok := e2eKey(g, "leaked")
	if _, err := g.app().store.RevokeKey(t.Context(), k.ID); err != nil {
		t.Fatal(err)
	}
	var status int
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		resp := g.post("/v1/messages", tok, `{"model":"haiku","max_tokens":8,"messages":[{"role":"user","content":"x"}]}`, e2eAnthropicHdr...)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if status = resp.StatusCode; status == 401 {
			break
		}
	}
	if status != 401 {
		t.Fatalf("revoked key still answered %d", status)
	}
	var line map[string]any
	for deadline := time.Now().Add(3 * time.Second); line == nil && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		for _, l := range logLinesMsg(t, logPath, "request rejected") {
			if l["reason"] == "revoked_key" {
				line = l
			}
		}
	}
	if line == nil {
		_, raw := e2eLogLines(t, logPath)
		t.Fatalf("no \"request rejected\" line with reason revoked_key:\n%s", lastLines(raw, 20))
	}
	if line["key_id"] != k.ID {
		t.Errorf("revoked_key refusal logged without the key it names: key_id=%v, want %s: %v", line["key_id"], k.ID, line)
	}
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

// A provider credential that a compatible server or proxy echoes in a
// response header is replaced before the client sees it (README, the
// "Transparent" bullet), and the log is to hold "never ... a provider key"
// (Observability). A redirect's Location is written to the WARN line as
// the provider sent it, credential included.
func TestReview28LRedirectLogScrubsProviderKey(t *testing.T) {
	up := fakeupstream.New(t)
	g, logPath, _ := e2eStartLogged(t, up, "INFO", "")
	_, tok := e2eKey(g, "redirected")
	up.Enqueue("/v1/messages", fakeupstream.Reply{Status: 307, Header: map[string][]string{
		"Location": {"https://elsewhere.example/v1/messages?api_key=" + testAnthropicKey},
	}})
	resp := g.post("/v1/messages", tok, `{"model":"haiku","max_tokens":8,"messages":[{"role":"user","content":"x"}]}`, e2eAnthropicHdr...)
	body := e2eRead(t, resp)
	if resp.StatusCode != 502 {
		t.Fatalf("status %d (%s), want the 502 for a redirect", resp.StatusCode, body)
	}
	if strings.Contains(body, testAnthropicKey) {
		t.Fatalf("the client got the provider key: %s", body)
	}
	lines := waitLogLines(t, logPath, "provider answered a redirect, which the gateway does not follow; check its base_url", 1)
	if len(lines) == 0 {
		t.Fatal("no redirect warning")
	}
	_, raw := e2eLogLines(t, logPath)
	if strings.Contains(raw, testAnthropicKey) {
		t.Errorf("the log holds the provider's api_key (from the redirect's Location): %v", lines[0])
	}
}

// A soft limit exists to warn the operator; its crossing is written to the
// trace (budget.soft_exceeded) and put in a header for the client, but the
// log, which is what an operator's alerting reads, says nothing: not at
// WARN, not at INFO, and the "llm call" line of the crossing call has no
// mark of it either.
func TestReview28LSoftLimitCrossingLogged(t *testing.T) {
	up := fakeupstream.New(t)
	g, logPath, _ := e2eStartLogged(t, up, "DEBUG", "")
	k, tok := e2eKey(g, "soft")
	setBudget(t, g.DB, budget.Budget{Scope: "key", Subject: k.ID, Window: "daily", Hard: 10, Soft: 0.00001})
	waitApplies(t, g, budget.Identity{KeyID: k.ID})
	var warned string
	for range 2 {
		resp := g.post("/v1/messages", tok, `{"model":"haiku","max_tokens":8,"messages":[{"role":"user","content":"x"}]}`, e2eAnthropicHdr...)
		e2eRead(t, resp)
		if w := resp.Header.Get("Metis-Budget-Warning"); w != "" {
			warned = w
		}
	}
	if warned == "" {
		t.Fatal("no Metis-Budget-Warning: the soft limit was not crossed")
	}
	g.waitEvents("budget.soft_exceeded", 1)
	waitLogLines(t, logPath, "llm call", 2)
	lines, raw := e2eLogLines(t, logPath)
	for _, l := range lines {
		if msg, _ := l["msg"].(string); strings.Contains(strings.ToLower(msg), "soft") {
			return
		}
		for f := range l {
			if strings.Contains(f, "soft") || strings.Contains(f, "budget") {
				return
			}
		}
	}
	t.Errorf("key %s crossed its daily soft limit (client told %q, trace has budget.soft_exceeded) but no log line says so:\n%s",
		k.ID, warned, lastLines(raw, 6))
}
