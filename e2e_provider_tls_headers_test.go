package metis

import (
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"

	"github.com/metisgateway/metis/internal/fakeupstream"
)

// TestE2EProviderHeaders: a provider's `header` lines go on every request
// to it, same shape and translated, replacing a client's header of the
// same name (the gateway in front of the vendor decides them, not the
// developer), next to the provider key. A secret given as {env.X} is in
// neither the adapted config nor the log.
func TestE2EProviderHeaders(t *testing.T) {
	up := fakeupstream.New(t)
	const secret = "hk-helicone-secret-value"
	t.Setenv("METIS_TEST_HOP_KEY", secret)
	extra := fmt.Sprintf(`
		provider hop openai {
			api_key {env.METIS_TEST_OPENAI_KEY}
			base_url %s/hop/v1
			header x-portkey-provider openai
			header Helicone-Auth "Bearer {env.METIS_TEST_HOP_KEY}"
			header OpenAI-Project proj_team
		}
		alias hopgpt hop:gpt-4o-mini`, up.URL)
	g, logPath, _ := e2eStartLogged(t, up, "DEBUG", extra)
	_, tok := e2eKey(g, "hop")

	up.Enqueue("/hop/v1/chat/completions", fakeupstream.OpenAICompletion("gpt-4o-mini", "Hi.", 12))
	resp := g.post("/v1/chat/completions", tok, `{"model":"hopgpt","messages":[{"role":"user","content":"hi"}]}`,
		"Authorization", "Bearer "+tok, "X-Portkey-Provider", "anthropic", "OpenAI-Project", "proj_developer")
	if body := e2eRead(t, resp); resp.StatusCode != 200 {
		t.Fatalf("same shape: %d %s", resp.StatusCode, body)
	}
	up.Enqueue("/hop/v1/chat/completions", fakeupstream.OpenAICompletion("gpt-4o-mini", "Hi.", 12))
	resp = g.post("/v1/messages", tok, `{"model":"hopgpt","max_tokens":16,"messages":[{"role":"user","content":"hi"}]}`, e2eAnthropicHdr...)
	if body := e2eRead(t, resp); resp.StatusCode != 200 {
		t.Fatalf("translated: %d %s", resp.StatusCode, body)
	}
	reqs := up.RequestsTo("/hop/v1/chat/completions")
	if len(reqs) != 2 {
		t.Fatalf("%d requests reached the provider, want 2", len(reqs))
	}
	for i, r := range reqs {
		want := map[string]string{
			"X-Portkey-Provider": "openai", "Helicone-Auth": "Bearer " + secret,
			"Openai-Project": "proj_team", "Authorization": "Bearer " + testOpenAIKey,
		}
		for name, v := range want {
			if got := r.Header.Values(name); len(got) != 1 || got[0] != v {
				t.Errorf("request %d: %s %q, want %q alone", i, name, got, v)
			}
		}
	}
	// Another provider gets none of them.
	up.Enqueue("/v1/chat/completions", fakeupstream.OpenAICompletion("gpt-5-nano", "Hi.", 12))
	resp = g.post("/v1/chat/completions", tok, `{"model":"nano","messages":[{"role":"user","content":"hi"}]}`, "Authorization", "Bearer "+tok)
	if body := e2eRead(t, resp); resp.StatusCode != 200 {
		t.Fatalf("other provider: %d %s", resp.StatusCode, body)
	}
	if h := up.RequestsTo("/v1/chat/completions")[0].Header; h.Get("Helicone-Auth") != "" || h.Get("X-Portkey-Provider") != "" {
		t.Errorf("the openai provider got the hop provider's headers: %v", h)
	}
	e2eCalls(g, 3)

	cfg, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(g.custom), nil)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(cfg), secret) || !strings.Contains(string(cfg), "{env.METIS_TEST_HOP_KEY}") {
		t.Errorf("the adapted config should keep the placeholder, not the secret: %s", cfg)
	}
	logged, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(logged), secret) {
		t.Errorf("the log shows a provider header's secret")
	}
}

// TestE2EProviderHeaderRefusals: header lines that would break framing,
// replace the provider key, or come out empty are config errors naming
// the header, never its value.
func TestE2EProviderHeaderRefusals(t *testing.T) {
	db := tempDB(t)
	g := startGateway(t, gatewayConfig(db, "http://127.0.0.1:1", ""))
	t.Setenv("METIS_TEST_TWO_LINES", "hv-one\nhv-two")
	for _, c := range []struct{ lines, want string }{
		{"header Content-Length 12", "header Content-Length is the gateway's to set"},
		{"header Transfer-Encoding chunked", "header Transfer-Encoding is the gateway's to set"},
		{"header authorization \"Bearer other\"", "header Authorization would replace the provider key"},
		{"header X-Hop {env.METIS_TEST_UNSET_HOP}", `header X-Hop "{env.METIS_TEST_UNSET_HOP}" came out empty`},
		{"header X-Hop {env.METIS_TEST_TWO_LINES}", "header X-Hop contains a control character"},
		{"header X-Hop a\n\t\t\theader x-hop b", "header X-Hop given twice"},
		{"header \"X Hop\" a", `"X Hop" is not a header name`},
		{"header Proxy-Authorization \"Basic cHJveHk6cHc=\"", "header Proxy-Authorization would go to the provider, not to a proxy"},
		{"header X-User {http.request.header.X-User}", "header X-User: request placeholders ({http.…}) are not filled in"},
		{"ca_file /nonexistent/metis/ca.pem", "reading ca_file"},
		{"base_url http://127.0.0.1:1/v1\n\t\t\tca_file /nonexistent/metis/ca.pem", `ca_file is for an https:// base_url, not "http://127.0.0.1:1/v1"`},
	} {
		lines := c.lines
		if !strings.Contains(lines, "base_url") {
			lines = "base_url https://127.0.0.1:1/v1\n\t\t\t" + lines
		}
		provider := "provider hop openai {\n\t\t\tapi_key k\n\t\t\t" + lines + "\n\t\t}"
		err := g.tryLoad(gatewayConfig(db, "http://127.0.0.1:1", provider))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s\nloaded with error %v; want %q", c.lines, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "hv-one") {
			t.Errorf("the error shows the value: %v", err)
		}
	}
	// Without a key of its own, the provider may send its own credential.
	provider := "provider azure openai {\n\t\t\tbase_url http://127.0.0.1:1/openai/v1\n\t\t\theader api-key az-key\n\t\t\theader Authorization \"Bearer t\"\n\t\t}"
	if err := g.tryLoad(gatewayConfig(db, "http://127.0.0.1:1", provider)); err != nil {
		t.Errorf("a keyless provider with its own credential header: %v", err)
	}
}

// TestE2EProviderHeaderCredentialRefused: when the provider refuses a
// provider's calls whose credential may be a header line, the log line
// points at the header lines, named without their values: alone for a
// keyless provider (Azure's api-key; review 15R), beside the api_key for a
// keyed one (Helicone-Auth for the gateway in front; round 15L), after the
// empty api_key for one whose {env.X} was unset.
func TestE2EProviderHeaderCredentialRefused(t *testing.T) {
	for _, c := range []struct{ name, keyLine, header, secret, want string }{
		{"keyless", "", "api-key", "az-expired-key", "check the credential in the provider's header lines (Api-Key)"},
		{"keyed", "api_key sk-oai-right", "Helicone-Auth", "heli-stale-secret", "api_key, or a credential in its header lines (Helicone-Auth)"},
		// An unset {env.X} is the likelier cause than a header line that
		// carries no credential (review 15R3).
		{"key came out empty", "api_key {env.METIS_TEST_UNSET_PROVIDER_KEY}", "OpenAI-Project", "proj_team",
			"the provider's api_key {env.METIS_TEST_UNSET_PROVIDER_KEY} came out empty (if a header line carries its credential instead, check it: Openai-Project)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			up := fakeupstream.New(t)
			t.Setenv("METIS_TEST_HOP_SECRET", c.secret)
			g, logPath, _ := e2eStartLogged(t, up, "DEBUG", fmt.Sprintf(`
				provider hop openai {
					%s
					base_url %s/v1
					header %s {env.METIS_TEST_HOP_SECRET}
					max_retries 0
				}`, c.keyLine, up.URL, c.header))
			_, tok := e2eKey(g, "hop")
			up.Enqueue("/v1/chat/completions", fakeupstream.Reply{Status: 401,
				Body: `{"error":{"code":"401","message":"Access denied due to invalid subscription key or wrong API endpoint."}}`})
			resp := g.post("/v1/chat/completions", tok, `{"model":"hop:gpt-5-mini","messages":[{"role":"user","content":"hi"}]}`, "Authorization", "Bearer "+tok)
			if body := e2eRead(t, resp); resp.StatusCode != 401 {
				t.Fatalf("%d %s, want the provider's 401", resp.StatusCode, body)
			}
			if r := up.RequestsTo("/v1/chat/completions"); len(r) != 1 || r[0].Header.Get(c.header) != c.secret {
				t.Fatalf("the credential header did not reach the provider: %v", r)
			}
			e2eCalls(g, 1)
			logged, err := os.ReadFile(logPath)
			if err != nil {
				t.Fatal(err)
			}
			var warned string
			for _, line := range strings.Split(string(logged), "\n") {
				if strings.Contains(line, "provider refused") {
					warned = line
				}
			}
			if !strings.Contains(warned, c.want) || strings.Contains(warned, c.secret) {
				t.Errorf("the refusal's log line should name the %s header line, not its value: %q", c.header, warned)
			}
		})
	}
}

// TestE2EProviderCAFile: a provider behind a private certificate authority
// is reached over HTTPS (HTTP/2 where it offers it) once ca_file names the
// authority; without it the call is a 502 and the log says why.
func TestE2EProviderCAFile(t *testing.T) {
	up := fakeupstream.New(t)
	var proto atomic.Value
	private := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proto.Store(r.Proto)
		up.ServeHTTP(w, r)
	}))
	private.EnableHTTP2 = true
	private.StartTLS()
	t.Cleanup(private.Close)
	caPath := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: private.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	g, logPath, _ := e2eStartLogged(t, up, "DEBUG", fmt.Sprintf(`
		provider private anthropic {
			api_key {env.METIS_TEST_ANTHROPIC_KEY}
			base_url %s
			ca_file %s
			max_retries 0
		}
		provider untrusted anthropic {
			api_key {env.METIS_TEST_ANTHROPIC_KEY}
			base_url %s
			max_retries 0
		}`, private.URL, caPath, private.URL))
	_, tok := e2eKey(g, "private")

	up.Enqueue("/v1/messages", fakeupstream.AnthropicMessage("claude-haiku-4-5", 40, "end_turn", fakeupstream.TextBlock("Hello.")))
	resp := g.post("/v1/messages", tok, `{"model":"private:claude-haiku-4-5","max_tokens":16,"messages":[{"role":"user","content":"hi"}]}`, e2eAnthropicHdr...)
	if body := e2eRead(t, resp); resp.StatusCode != 200 || !strings.Contains(body, "Hello.") {
		t.Fatalf("provider with ca_file: %d %s", resp.StatusCode, body)
	}
	if p := proto.Load(); p != "HTTP/2.0" {
		t.Errorf("the provider was reached over %v, want HTTP/2.0", p)
	}
	resp = g.post("/v1/messages", tok, `{"model":"untrusted:claude-haiku-4-5","max_tokens":16,"messages":[{"role":"user","content":"hi"}]}`, e2eAnthropicHdr...)
	body := e2eRead(t, resp)
	if resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("provider without ca_file: %d %s, want 502", resp.StatusCode, body)
	}
	if logged, err := os.ReadFile(logPath); err != nil || !strings.Contains(string(logged), "x509: certificate signed by unknown authority") {
		t.Errorf("the log does not say the provider's certificate was not trusted (%v)", err)
	}
	calls := e2eCalls(g, 2)
	if calls[0]["status"] != float64(200) || calls[1]["status"] != float64(502) {
		t.Errorf("recorded statuses %v and %v, want 200 and 502", calls[0]["status"], calls[1]["status"])
	}
}
