package metis

// End-to-end: the gateway inside a Caddy site that does other things (a
// path prefix, an auth layer in front, Caddy's own HTTP/3 advertisement).

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/metisgateway/metis/internal/fakeupstream"
)

// OpenAI answers with `Alt-Svc: h3=":443"; ma=86400` (Cloudflare's; both
// OpenAI recordings carry it). That header describes the origin that sent
// it — api.openai.com's port 443 — and is connection-specific: Caddy's own
// reverse_proxy drops it as hop-by-hop (caddyserver/caddy#3159), as YARP
// does, and RFC 7838 ties it to the origin that served it. Relayed by a
// same-shape call, it replaced Caddy's own Alt-Svc for the gateway's site
// (h3=":<port>", or none when the site serves no HTTP/3), so an
// HTTP/3-capable client was told for 24 hours that the gateway listens on
// UDP port 443 of its host. A translated call (Anthropic client, OpenAI
// model) already keeps Caddy's header; same-shape calls must too.
func TestE2EProviderAltSvcNotRelayed(t *testing.T) {
	up := fakeupstream.New(t)
	g, hc, _ := e2eStartTLS(t, up) // protocols h1 h2: the site serves no HTTP/3
	_, tok := e2eKey(g, "alt-svc")
	cases := []struct {
		name, fixture, body string
	}{
		{"openai-stream", fakeupstream.FixtureOpenAIStream,
			`{"model":"nano","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}`},
		{"openai-message", fakeupstream.FixtureOpenAINonStream,
			`{"model":"nano","messages":[{"role":"user","content":"hi"}]}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := fakeupstream.FromFixture(c.fixture, 0)
			if got := r.Header.Get("Alt-Svc"); !strings.Contains(got, `h3=":443"`) {
				t.Fatalf("the recording's Alt-Svc is %q: the test needs OpenAI's h3=\":443\"", got)
			}
			up.Enqueue("/v1/chat/completions", r)
			req, _ := http.NewRequest(http.MethodPost, g.URL+"/v1/chat/completions", strings.NewReader(c.body))
			req.Header.Set("Authorization", "Bearer "+tok)
			req.Header.Set("Content-Type", "application/json")
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body := e2eRead(t, resp)
			if resp.StatusCode != 200 {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			if v := resp.Header.Get("Strict-Transport-Security"); v != "" {
				t.Errorf("the client got the provider's HSTS %q: it would bind the gateway's site and its subdomains", v)
			}
			for _, v := range resp.Header.Values("Alt-Svc") {
				if strings.Contains(v, `":443"`) {
					t.Errorf("the client of https 127.0.0.1:%d (no HTTP/3) got the provider's Alt-Svc %q: "+
						"it would try QUIC on port 443 of the gateway's host", g.gwPort, v)
				}
			}
		})
	}
}

// A gateway under a path of a team's site (README: `handle_path /llm/* {
// metis_gateway }`, clients use https://example.com/llm and …/llm/v1). A
// client whose base URL misses the /v1, or has a path too many, gets the
// 404 that says what it meant — but the message named the path after
// Caddy stripped the prefix (POST /chat/completions) and suggested
// /v1/chat/completions, a path of the team's web site, not of the gateway:
// a developer who follows it sets the base URL to https://example.com/v1
// and gets the site's answers. The message should name what the client
// sent and the path it should use, prefix included (Caddy keeps the
// original request in the context, caddyhttp.OriginalRequestCtxKey, as
// its {http.request.orig_uri.path} placeholder does). The same holds for
// `route /llm/* { uri strip_prefix /llm; metis_gateway }`.
func TestE2EPrefixedSite404NamesTheClientsPath(t *testing.T) {
	up := fakeupstream.New(t)
	g := e2eStartSite(t, up.URL, `
	handle_path /llm/* {
		metis_gateway
	}
	route /ai/* {
		uri strip_prefix /ai
		metis_gateway
	}
	respond "the team's web site" 200`)
	_, tok := e2eKey(g, "prefixed")

	// The right base URLs work (the 404s below are about the hint only).
	up.Enqueue("/v1/chat/completions", fakeupstream.FromFixture(fakeupstream.FixtureOpenAINonStream, 0))
	resp := g.post("/llm/v1/chat/completions", tok, `{"model":"nano","messages":[{"role":"user","content":"hi"}]}`)
	if body := e2eRead(t, resp); resp.StatusCode != 200 {
		t.Fatalf("POST /llm/v1/chat/completions: %d %s", resp.StatusCode, body)
	}

	cases := []struct {
		sent, want string
		hdr        []string
	}{
		{"/llm/chat/completions", "/llm/v1/chat/completions", nil},        // OPENAI_BASE_URL=https://host/llm
		{"/llm/api/v1/chat/completions", "/llm/v1/chat/completions", nil}, // a path too many
		{"/llm/messages", "/llm/v1/messages", e2eAnthropicHdr},            // the AI SDK's Anthropic provider on /llm
		{"/ai/chat/completions", "/ai/v1/chat/completions", nil},          // route + uri strip_prefix
		{"/ai/v1/v1/messages", "/ai/v1/messages", e2eAnthropicHdr},        // base URL …/ai/v1 for Claude Code
	}
	for _, c := range cases {
		t.Run(strings.ReplaceAll(c.sent, "/", "_"), func(t *testing.T) {
			resp := g.post(c.sent, tok, `{"model":"nano","max_tokens":8,"messages":[{"role":"user","content":"hi"}]}`, c.hdr...)
			body := e2eRead(t, resp)
			if resp.StatusCode != http.StatusNotFound {
				t.Fatalf("status %d, want 404: %s", resp.StatusCode, body)
			}
			msg, _ := e2ePath(e2eJSON(t, body), "error", "message").(string)
			if !strings.Contains(msg, "POST "+c.sent+" ") || !strings.Contains(msg, "did you mean "+c.want+"?") {
				t.Errorf("404 message %q; want it to name the client's POST %s and suggest %s", msg, c.sent, c.want)
			}
		})
	}
	// The notes on APIs the gateway does not serve name paths under the
	// prefix too (review 25R).
	for _, c := range []struct{ sent, want, unwanted string }{
		{"/llm/v1/completions", "use /llm/v1/chat/completions", "use /v1/chat/completions"},
		{"/llm/v1/responses/resp_123/cancel", "serves POST /llm/v1/responses", "serves POST /v1/responses"},
	} {
		t.Run(strings.ReplaceAll(c.sent, "/", "_"), func(t *testing.T) {
			resp := g.post(c.sent, tok, `{"model":"nano","prompt":"hi"}`)
			body := e2eRead(t, resp)
			if resp.StatusCode != http.StatusNotFound {
				t.Fatalf("status %d, want 404: %s", resp.StatusCode, body)
			}
			msg, _ := e2ePath(e2eJSON(t, body), "error", "message").(string)
			if strings.Contains(msg, c.unwanted) || !strings.Contains(msg, c.want) {
				t.Errorf("404 message %q; want %q (the path under the site's prefix)", msg, c.want)
			}
		})
	}
}

// Caddy's forward_auth in front of the gateway (README shows it with
// oauth2-proxy for the analytics site; teams put the same in front of the
// gateway) copies the auth service's identity headers into the request
// (copy_headers): oauth2-proxy's X-Auth-Request-User and
// X-Auth-Request-Email, Authelia's Remote-User, Remote-Email and
// Remote-Groups. A same-shape call forwarded them to the provider, so the
// vendor saw each developer's e-mail address and groups — the same
// internal information the README keeps from it when a proxy in front adds
// X-Forwarded-For or X-Real-IP ("the team's internal addresses are not the
// vendor's to see"). A client going to the provider directly sends none of
// them.
func TestE2EForwardAuthIdentityHeadersStayHome(t *testing.T) {
	identity := map[string]string{
		"X-Auth-Request-User":  "alice",
		"X-Auth-Request-Email": "alice@corp.example",
		"Remote-User":          "alice",
		"Remote-Email":         "alice@corp.example",
		"Remote-Groups":        "eng,admins",
	}
	auth := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for k, v := range identity {
			w.Header().Set(k, v)
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(auth.Close)
	authAddr := strings.TrimPrefix(auth.URL, "http://")
	names := make([]string, 0, len(identity))
	for k := range identity {
		names = append(names, k)
	}

	up := fakeupstream.New(t)
	g := e2eStartSite(t, up.URL, fmt.Sprintf(`
	forward_auth %s {
		uri /oauth2/auth
		copy_headers %s
	}
	metis_gateway`, authAddr, strings.Join(names, " ")))
	_, tok := e2eKey(g, "behind-forward-auth")

	up.Enqueue("/v1/messages", fakeupstream.FromFixture(fakeupstream.FixtureAnthropicNonStream, 0))
	resp := g.post("/v1/messages", tok, `{"model":"sonnet","max_tokens":64,"messages":[{"role":"user","content":"hi"}]}`, e2eAnthropicHdr...)
	if body := e2eRead(t, resp); resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	got := up.RequestsTo("/v1/messages")
	if len(got) != 1 {
		t.Fatalf("the provider saw %d requests, want 1", len(got))
	}
	for k := range identity {
		if v := got[0].Header.Get(k); v != "" {
			t.Errorf("the provider got %s: %s (copied in by forward_auth)", k, v)
		}
	}
}
