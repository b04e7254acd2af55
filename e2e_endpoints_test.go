package metis

// End-to-end answers of the gateway's own endpoints apart from the LLM
// calls: /healthz for load-balancer probes, the Allow header of every 405,
// and unknown /v1 paths — what the caller sees and what lands in the trace.

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/metisgateway/metis/store"
)

// e2eDo sends a request without a body; tok, when set, goes in x-api-key.
// It returns the response (body closed) and the body.
func e2eDo(t *testing.T, g *testGateway, method, path, tok string, hdr ...string) (*http.Response, string) {
	t.Helper()
	var body io.Reader
	if method == http.MethodPost {
		body = strings.NewReader(`{}`)
	}
	req, err := http.NewRequest(method, g.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("X-Api-Key", tok)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp, e2eRead(t, resp)
}

// e2eEventCount is the number of trace events of every type.
func e2eEventCount(t *testing.T, g *testGateway) int {
	t.Helper()
	g.sync()
	var n int
	if err := g.db().QueryRow(`SELECT COUNT(*) FROM events`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestE2EHealthzNeedsNoKey(t *testing.T) {
	g, up := e2eSetup(t, "")
	_, tok := e2eKey(g, "prober")

	// A load balancer's probe: no key, or whatever key, answers 200.
	for _, key := range []string{"", "gw_not-a-real-token", tok} {
		resp, body := e2eDo(t, g, http.MethodGet, "/healthz", key)
		if resp.StatusCode != 200 || body != `{"status":"ok"}` || resp.Header.Get("Content-Type") != "application/json" {
			t.Errorf("GET /healthz with key %.10q: %d %q %q", key, resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
		if v := resp.Header.Get("Metis-API-Version"); v != "1.0" {
			t.Errorf("GET /healthz with key %.10q: Metis-API-Version %q, want 1.0", key, v)
		}
	}
	resp, body := e2eDo(t, g, http.MethodHead, "/healthz", "")
	if resp.StatusCode != 200 || body != "" || resp.Header.Get("Metis-API-Version") != "1.0" {
		t.Errorf("HEAD /healthz: %d %q version %q", resp.StatusCode, body, resp.Header.Get("Metis-API-Version"))
	}
	// Version negotiation is as before: a pinned known version is echoed,
	// an unknown one is 400 naming the supported ones.
	resp, body = e2eDo(t, g, http.MethodGet, "/healthz", "", "Metis-API-Version", "1.0")
	if resp.StatusCode != 200 || resp.Header.Get("Metis-API-Version") != "1.0" {
		t.Errorf("pinned 1.0: %d %s", resp.StatusCode, body)
	}
	resp, body = e2eDo(t, g, http.MethodGet, "/healthz", "", "Metis-API-Version", "9.9")
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "unsupported_api_version") || !strings.Contains(body, "1.0") {
		t.Errorf("unknown version: %d %s", resp.StatusCode, body)
	}
	// Other methods: 405 naming the ones it answers, still versioned.
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete} {
		resp, body := e2eDo(t, g, m, "/healthz", tok)
		if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, HEAD" ||
			resp.Header.Get("Metis-API-Version") != "1.0" || !strings.Contains(body, "method_not_allowed") {
			t.Errorf("%s /healthz: %d Allow %q version %q %s", m, resp.StatusCode, resp.Header.Get("Allow"),
				resp.Header.Get("Metis-API-Version"), body)
		}
	}
	// Probes leave no trace: no request.rejected, nor any other event.
	if n := e2eEventCount(t, g); n != 0 {
		t.Errorf("health checks wrote %d trace events, want none: rejected %v", n, g.events(store.TypeRequestRejected))
	}
	if n := len(up.Requests()); n != 0 {
		t.Errorf("health checks reached the provider %d times", n)
	}
}

func TestE2EMethodNotAllowedNamesTheEndpointsMethods(t *testing.T) {
	g, up := e2eSetup(t, "")
	k, tok := e2eKey(g, "wrong-method")
	cases := []struct {
		method, path string
		anthropic    bool // request in Anthropic shape (anthropic-version)
		allow        string
	}{
		{http.MethodPost, "/v1/models", false, "GET, HEAD"},
		{http.MethodPost, "/v1/models", true, "GET, HEAD"},
		{http.MethodDelete, "/v1/models", false, "GET, HEAD"},
		{http.MethodPost, "/v1/models/haiku", true, "GET, HEAD"},
		{http.MethodPut, "/v1/models/gpt-5-nano", false, "GET, HEAD"},
		{http.MethodGet, "/v1/messages", true, "POST"},
		{http.MethodGet, "/v1/messages/count_tokens", true, "POST"},
		{http.MethodGet, "/v1/chat/completions", false, "POST"},
		{http.MethodPut, "/v1/chat/completions", false, "POST"},
	}
	for _, c := range cases {
		var hdr []string
		if c.anthropic {
			hdr = e2eAnthropicHdr
		}
		resp, body := e2eDo(t, g, c.method, c.path, tok, hdr...)
		what := c.method + " " + c.path
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("%s: %d %s, want 405", what, resp.StatusCode, body)
			continue
		}
		if got := resp.Header.Get("Allow"); got != c.allow {
			t.Errorf("%s: Allow %q, want %q", what, got, c.allow)
		}
		m := e2eJSON(t, body)
		msg := ""
		if c.anthropic || strings.HasPrefix(c.path, "/v1/messages") {
			msg, _ = e2ePath(m, "error", "message").(string)
			if m["type"] != "error" || e2ePath(m, "error", "type") != "invalid_request_error" {
				t.Errorf("%s: not an Anthropic error: %s", what, body)
			}
		} else {
			msg, _ = e2ePath(m, "error", "message").(string)
			if e2ePath(m, "error", "type") != "invalid_request_error" || e2ePath(m, "error", "code") != "method_not_allowed" {
				t.Errorf("%s: not an OpenAI method_not_allowed error: %s", what, body)
			}
		}
		if want := strings.Join(strings.Split(c.allow, ", "), " or "); !strings.Contains(msg, "use "+want) {
			t.Errorf("%s: message %q does not say to use %s", what, msg, want)
		}
	}
	// A wrong-method request without a key is refused for the key first,
	// and a 401 names no methods.
	resp, body := e2eDo(t, g, http.MethodPost, "/v1/models", "")
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("Allow") != "" {
		t.Errorf("keyless POST /v1/models: %d Allow %q %s", resp.StatusCode, resp.Header.Get("Allow"), body)
	}
	// HEAD is a GET without the body.
	resp, body = e2eDo(t, g, http.MethodHead, "/v1/models", tok)
	if resp.StatusCode != 200 || body != "" || resp.Header.Get("Allow") != "" {
		t.Errorf("HEAD /v1/models: %d Allow %q %q", resp.StatusCode, resp.Header.Get("Allow"), body)
	}

	// Every 405 is a rejected request in the trace, attributed to the key.
	rej := g.events(store.TypeRequestRejected)
	if len(rej) != len(cases)+1 {
		t.Fatalf("%d request.rejected events, want %d (one per refused request): %v", len(rej), len(cases)+1, rej)
	}
	for i, c := range cases {
		e2eWant(t, c.method+" "+c.path+" rejection", rej[i], map[string]any{
			"reason": "method_not_allowed", "status": 405, "method": c.method, "path": c.path,
			"gateway_key_id": k.ID, "key_name": "wrong-method",
		})
	}
	e2eWant(t, "keyless rejection", rej[len(cases)], map[string]any{"reason": "missing_key", "status": 401})
	if n := len(up.Requests()); n != 0 {
		t.Errorf("refused requests reached the provider %d times", n)
	}
}

func TestE2EUnknownV1PathIsNotAModel(t *testing.T) {
	g, up := e2eSetup(t, "")
	k, tok := e2eKey(g, "explorer")

	// OpenAI shape: OpenAI's own answer to an unknown URL is 404
	// invalid_request_error with code unknown_url.
	for _, c := range []struct{ method, path, note string }{
		{http.MethodGet, "/v1/foo", ""},
		// Of the Responses API, only POST /v1/responses is served.
		{http.MethodGet, "/v1/responses/resp_1", "it serves POST /v1/responses and /v1/responses/compact"},
		{http.MethodPost, "/v1/embeddings", "embeddings are not served"},
		{http.MethodGet, "/v1/models/", ""},
	} {
		resp, body := e2eDo(t, g, c.method, c.path, tok)
		m := e2eJSON(t, body)
		if resp.StatusCode != 404 || e2ePath(m, "error", "type") != "invalid_request_error" || e2ePath(m, "error", "code") != "unknown_url" {
			t.Errorf("%s %s (OpenAI shape): %d %s, want 404 invalid_request_error unknown_url", c.method, c.path, resp.StatusCode, body)
		}
		if msg, _ := e2ePath(m, "error", "message").(string); !strings.Contains(msg, c.method+" "+c.path+" is not an endpoint") ||
			!strings.Contains(msg, c.note) {
			t.Errorf("%s %s: message %q should say the path is not an endpoint, and %q", c.method, c.path, msg, c.note)
		}
	}
	// Anthropic shape: not_found_error. /v1/messages/* is Anthropic's even
	// without anthropic-version.
	for _, c := range []struct {
		method, path string
		hdr          []string
	}{
		{http.MethodGet, "/v1/foo", e2eAnthropicHdr},
		{http.MethodPost, "/v1/messages/batches", nil},
	} {
		resp, body := e2eDo(t, g, c.method, c.path, tok, c.hdr...)
		m := e2eJSON(t, body)
		if resp.StatusCode != 404 || m["type"] != "error" || e2ePath(m, "error", "type") != "not_found_error" {
			t.Errorf("%s %s (Anthropic shape): %d %s, want 404 not_found_error", c.method, c.path, resp.StatusCode, body)
		}
		if strings.Contains(body, "model_not_found") {
			t.Errorf("%s %s: %s", c.method, c.path, body)
		}
	}
	// Without a key an unknown path is refused for the key: it tells an
	// anonymous caller nothing about what exists.
	resp, body := e2eDo(t, g, http.MethodGet, "/v1/foo", "")
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("keyless GET /v1/foo: %d %s", resp.StatusCode, body)
	}

	rej := g.events(store.TypeRequestRejected)
	if len(rej) != 7 {
		t.Fatalf("%d request.rejected events, want 7: %v", len(rej), rej)
	}
	e2eWant(t, "GET /v1/foo rejection", rej[0], map[string]any{
		"reason": "unknown_endpoint", "status": 404, "method": "GET", "path": "/v1/foo", "inbound_shape": "openai",
		"gateway_key_id": k.ID, "key_name": "explorer",
	})
	e2eWant(t, "Anthropic GET /v1/foo rejection", rej[4], map[string]any{
		"reason": "unknown_endpoint", "status": 404, "path": "/v1/foo", "inbound_shape": "anthropic", "gateway_key_id": k.ID,
	})
	e2eWant(t, "batches rejection", rej[5], map[string]any{"reason": "unknown_endpoint", "path": "/v1/messages/batches", "method": "POST"})
	e2eWant(t, "keyless rejection", rej[6], map[string]any{"reason": "missing_key", "status": 401})
	if n := len(up.Requests()); n != 0 {
		t.Errorf("unknown paths reached the provider %d times", n)
	}
}

// A client whose base URL lacks /v1 (OPENAI_BASE_URL at the gateway's
// root) gets a 404 in its shape that names the right path, not the empty
// 200 of the site's next handler; other paths still go on to it.
func TestE2EPathWithoutV1(t *testing.T) {
	g, up := e2eSetup(t, "")
	k, tok := e2eKey(g, "no-v1")
	resp, body := e2eDo(t, g, http.MethodPost, "/chat/completions", tok)
	m := e2eJSON(t, body)
	msg, _ := e2ePath(m, "error", "message").(string)
	if resp.StatusCode != 404 || e2ePath(m, "error", "code") != "unknown_url" || !strings.Contains(msg, "did you mean /v1/chat/completions?") {
		t.Errorf("POST /chat/completions: %d %s, want 404 unknown_url naming /v1/chat/completions", resp.StatusCode, body)
	}
	// The Vercel AI SDK's Anthropic provider adds only /messages to its
	// base URL: it needs the root plus /v1, which the 404 must say (not
	// "the root alone", right for the official Anthropic SDKs).
	resp, body = e2eDo(t, g, http.MethodPost, "/messages", tok)
	m = e2eJSON(t, body)
	if resp.StatusCode != 404 || e2ePath(m, "error", "type") != "not_found_error" || !strings.Contains(body, "/v1/messages") ||
		!strings.Contains(body, "its base URL must be the gateway's root plus /v1") {
		t.Errorf("POST /messages: %d %s, want an Anthropic 404 naming /v1/messages and saying the base URL needs /v1", resp.StatusCode, body)
	}
	// A base URL with a prefix too many (OPENAI_BASE_URL=…/api/v1) gets
	// the same kind of answer, not the site's empty 200.
	for path, meant := range map[string]string{
		"/api/v1/chat/completions": "/v1/chat/completions", "/api/chat/completions": "/v1/chat/completions",
		"/api/v1/messages/count_tokens": "/v1/messages/count_tokens", "/v1/v1/messages": "/v1/messages",
	} {
		resp, body = e2eDo(t, g, http.MethodPost, path, tok)
		if resp.StatusCode != 404 || !strings.Contains(body, "did you mean "+meant+"?") || !strings.Contains(body, "a path too many") {
			t.Errorf("POST %s: %d %s, want a 404 naming %s", path, resp.StatusCode, body, meant)
		}
	}
	// A path the gateway does not serve gets no hint pointing back at it.
	if _, body := e2eDo(t, g, http.MethodPost, "/v1/embeddings", tok); strings.Contains(body, "did you mean") {
		t.Errorf("POST /v1/embeddings: %s, want no hint", body)
	}
	// A Responses API client whose base URL lacks /v1 is told so.
	if resp, body := e2eDo(t, g, http.MethodPost, "/responses", tok); resp.StatusCode != 404 || !strings.Contains(body, "did you mean /v1/responses?") {
		t.Errorf("POST /responses: %d %s, want a 404 naming /v1/responses", resp.StatusCode, body)
	}
	// Without a gateway token, a prefixed path is another handler's: a
	// developer's own key through a reverse_proxy on the same site.
	req, _ := http.NewRequest(http.MethodPost, g.URL+"/anthropic/v1/messages", strings.NewReader("{}"))
	req.Header.Set("X-Api-Key", "sk-ant-developers-own")
	req.Header.Set("Anthropic-Version", "2023-06-01")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Errorf("POST /anthropic/v1/messages with a provider key: %v %v, want the site's own answer", resp, err)
	} else {
		resp.Body.Close()
	}
	// Claude Code's connectivity probe is not a provider API path, and a
	// request without a gateway token (a scanner, another handler's
	// client) goes on to the site's next handler.
	if resp, body := e2eDo(t, g, http.MethodHead, "/api/hello", tok); resp.StatusCode != 200 {
		t.Errorf("HEAD /api/hello: %d %s, want the site's own answer", resp.StatusCode, body)
	}
	if resp, body := e2eDo(t, g, http.MethodGet, "/models", ""); resp.StatusCode != 200 {
		t.Errorf("GET /models without a key: %d %s, want the site's own answer", resp.StatusCode, body)
	}
	rej := g.events(store.TypeRequestRejected)
	if len(rej) != 8 {
		t.Fatalf("%d request.rejected events, want 8: %v", len(rej), rej)
	}
	e2eWant(t, "rejection", rej[0], map[string]any{"reason": "unknown_endpoint", "status": 404, "path": "/chat/completions", "gateway_key_id": k.ID})
	if n := len(up.Requests()); n != 0 {
		t.Errorf("the provider got %d requests", n)
	}
}
