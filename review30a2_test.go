package metis

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/metisgateway/metis/internal/fakeupstream"
)

// Caddyfile.example's gateway site answers a path the gateway does not
// serve with a JSON 404, where Caddy's empty 200 used to reach a client
// whose base URL had a path too many or too few (review 30A: POST
// /chat/completions/, GET /, a Gemini path); the gateway's own paths are
// served as before.
func TestExampleGatewaySiteAnswersOtherPaths404(t *testing.T) {
	captureStderr(t) // the example's access log, turned on
	up := fakeupstream.New(t)
	db := filepath.Join(t.TempDir(), "metis.db")
	t.Setenv("ANTHROPIC_API_KEY", testAnthropicKey)
	t.Setenv("OPENAI_API_KEY", testOpenAIKey)
	g := e2eStartCustom(t, func(gw, an int) string { return exampleWithAccessLog(t, up.URL, db, gw, an) })
	_, tok := e2eKey(g, "alice")
	for _, path := range []string{"/", "/chat/completions/", "/v1beta/models/gemini:generateContent"} {
		resp := g.post(path, tok, `{"model":"haiku"}`, e2eAnthropicHdr...)
		body := e2eRead(t, resp)
		var e struct {
			Error struct{ Message string } `json:"error"`
		}
		if resp.StatusCode != http.StatusNotFound || json.Unmarshal([]byte(body), &e) != nil ||
			!strings.Contains(e.Error.Message, "not an endpoint") || resp.Header.Get("Content-Type") != "application/json" {
			t.Errorf("POST %s: %d %q (%s), want a JSON 404", path, resp.StatusCode, body, resp.Header.Get("Content-Type"))
		}
	}
	// The analytics site likewise (review 30R2), its own paths served.
	for path, want := range map[string]int{"/nope": http.StatusNotFound, "/analytics/cost": http.StatusOK, "/dashboard/": http.StatusOK} {
		resp, err := http.Get(g.Analytics + path)
		if err != nil {
			t.Fatal(err)
		}
		body := e2eRead(t, resp)
		if resp.StatusCode != want || want == http.StatusNotFound && !strings.Contains(body, "not a path of Metis analytics") {
			t.Errorf("analytics GET %s: %d %.200q, want %d", path, resp.StatusCode, body, want)
		}
	}
	resp := g.post("/v1/messages", tok, `{"model":"haiku","max_tokens":16,"messages":[{"role":"user","content":"Hi."}]}`, e2eAnthropicHdr...)
	if body := e2eRead(t, resp); resp.StatusCode != 200 {
		t.Fatalf("/v1/messages through the example: %d %s", resp.StatusCode, body)
	}
	if resp, err := http.Get(g.URL + "/healthz"); err != nil || resp.StatusCode != 200 {
		t.Errorf("/healthz through the example: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
}

// A base URL ending in "/" (POST //v1/messages) or written with /V1 was
// told it had "a path too many" (review 30A); each is told its own fix.
func TestBaseURLAdviceForADoubledSlashOrCapitalV1(t *testing.T) {
	up := fakeupstream.New(t)
	g := startGateway(t, gatewayConfig(tempDB(t), up.URL, ""))
	_, tok := e2eKey(g, "review30a-advice")
	for path, want := range map[string]string{
		"//v1/messages":            "doubled slash",
		"/V1/chat/completions":     "case-sensitive",
		"/api/v1/chat/completions": "a path too many",
	} {
		resp := g.post(path, tok, `{"model":"haiku"}`, e2eAnthropicHdr...)
		body := e2eRead(t, resp)
		if resp.StatusCode != http.StatusNotFound || !strings.Contains(body, want) {
			t.Errorf("POST %s: %d %s, want a 404 saying %q", path, resp.StatusCode, body, want)
		}
	}
}
