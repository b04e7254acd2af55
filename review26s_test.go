//go:build cgo

package metis

// Review 26S (security review of the request surface): provider
// credentials in 200 error bodies and in response headers, two gateway
// tokens in a repeated header, and a non-streamed call cancelled after the
// provider had it.

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/metisgateway/metis/internal/fakeupstream"
)

// Review 26S: the provider credential is scrubbed from an error body with
// an error status (relayError) and from an error event in a stream, but not
// from an error body a compatible server or proxy sends with a 200 — the
// case README calls out itself ("A `200` whose body is an error (a
// proxy's, a compatible server's) … a same-shape client gets it as sent,
// a cross-shape one a 502 in its shape"). README: "a provider credential
// … that a compatible server or proxy echoes in an error (an error body,
// or an error event in a stream) is replaced by `[provider credential
// removed by the gateway]`"; provider.go: "a provider key never reaches a
// client". Measured with ./caddy and internal/fakeupstream: all five
// shapes below handed the developer the operator's sk-… key whole.
func TestProviderKeyInA200ErrorBodyIsRemoved(t *testing.T) {
	g, _ := oddUpstream(t, "", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/v1/messages":
			fmt.Fprintf(w, `{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key %s"}}`, testAnthropicKey)
		default: // /v1/chat/completions, /v1/responses
			fmt.Fprintf(w, `{"error":{"type":"invalid_request_error","code":"invalid_api_key","message":"Incorrect API key provided: %s"}}`, testOpenAIKey)
		}
	})
	_, tok := e2eKey(g, "echo200")
	for _, c := range []struct{ name, path, body string }{
		{"anthropic relayed", "/v1/messages", `{"model":"claude-haiku-4-5","max_tokens":16,"messages":[{"role":"user","content":"Hi."}]}`},
		{"openai relayed", "/v1/chat/completions", `{"model":"gpt-5-mini","messages":[{"role":"user","content":"Hi."}]}`},
		{"responses relayed", "/v1/responses", `{"model":"gpt-5-mini","input":"Hi."}`},
		{"openai client to claude", "/v1/chat/completions", `{"model":"claude-haiku-4-5","messages":[{"role":"user","content":"Hi."}]}`},
		{"anthropic client to gpt", "/v1/messages", `{"model":"gpt-5-mini","max_tokens":16,"messages":[{"role":"user","content":"Hi."}]}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp := g.post(c.path, tok, c.body, e2eAnthropicHdr...)
			body := e2eRead(t, resp)
			if strings.Contains(body, testAnthropicKey) || strings.Contains(body, testOpenAIKey) {
				t.Errorf("%d: the client got the provider key: %s", resp.StatusCode, body)
			}
		})
	}
}

// The provider's response headers are relayed to a same-shape client
// (copyResponseHeaders) without the scrub the body gets: a proxy or
// compatible server that echoes the request's credential in a header
// (a debug header, a WWW-Authenticate that quotes the token) hands the
// operator's key to every developer. Measured with ./caddy: a 500 with
// X-Echo-Auth: sk-ant-… reached curl as sent.
func TestProviderKeyInAResponseHeaderIsRemoved(t *testing.T) {
	g, _ := oddUpstream(t, "", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Www-Authenticate", `Bearer error="invalid_token", error_description="token `+testAnthropicKey+` refused"`)
		w.Header().Set("X-Echo-Auth", r.Header.Get("X-Api-Key"))
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}`)
	})
	_, tok := e2eKey(g, "echohdr")
	resp := g.post("/v1/messages", tok, `{"model":"claude-haiku-4-5","max_tokens":16,"messages":[{"role":"user","content":"Hi."}]}`, e2eAnthropicHdr...)
	e2eRead(t, resp)
	for k, vv := range resp.Header {
		for _, v := range vv {
			if strings.Contains(v, testAnthropicKey) {
				t.Errorf("response header %s carries the provider key: %s", k, v)
			}
		}
	}
}

// Review 26S: README ("With Claude Code"): "Two different `gw_` tokens get
// a 401, since which key should pay cannot be told." That holds for
// x-api-key against Authorization, but not for the same header sent twice:
// store.TokenFrom reads r.Header.Get (the first line) and authenticate then
// deletes every line, so two x-api-key lines (or two Authorization lines)
// holding different gateway tokens are charged silently to whichever came
// first (measured with ./caddy and curl -H twice: 200, billed to the
// first). A proxy in front that adds its own key line produces exactly this.
func TestTwoTokensInARepeatedHeaderAreRefused(t *testing.T) {
	g, _ := e2eSetup(t, "")
	_, a := e2eKey(g, "dup-a")
	_, b := e2eKey(g, "dup-b")
	body := `{"model":"haiku","max_tokens":16,"messages":[{"role":"user","content":"Hi."}]}`
	for _, c := range []struct {
		name string
		set  func(h http.Header)
	}{
		{"x-api-key twice", func(h http.Header) { h["X-Api-Key"] = []string{a, b} }},
		{"authorization twice", func(h http.Header) { h["Authorization"] = []string{"Bearer " + a, "Bearer " + b} }},
	} {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, g.URL+"/v1/messages", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Anthropic-Version", "2023-06-01")
			c.set(req.Header)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			got := e2eRead(t, resp)
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("two different gateway tokens in one header: %d %.120s; want 401 (which key pays cannot be told)", resp.StatusCode, got)
			}
			// /analytics/me reads the key the same way: whose spend to
			// show cannot be told either.
			req, _ = http.NewRequest(http.MethodGet, g.Analytics+"/analytics/me", nil)
			c.set(req.Header)
			if resp, err = http.DefaultClient.Do(req); err != nil {
				t.Fatal(err)
			}
			if got := e2eRead(t, resp); resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("/analytics/me with two gateway tokens in one header: %d %.120s; want 401", resp.StatusCode, got)
			}
		})
	}
}

// Review 26S: a non-streamed call whose client leaves after the request
// reached the provider, before its answer, is recorded, and settled
// against the key's budgets, at an exact-looking $0 (input_tokens 0,
// usage_source estimated). The provider has the whole prompt and, for a
// non-streamed request, goes on to generate and bill the answer (OpenAI
// and Anthropic do not stop a non-streamed generation when the client
// disconnects). A stream cancelled while the gateway held its headers, or
// a non-streamed answer cut while it was read, records the prompt's
// estimate (README, "Trace events"); this case records nothing, so a
// developer at a hard limit (or a batch driver with a short timeout) runs
// up provider spend the ledger never sees. Measured with ./caddy: a
// 100 KB prompt to haiku, curl -m 1 against a provider answering after
// 3 s: status 499, cost_usd 0, input_tokens 0.
func TestCancelledNonStreamedCallRecordsThePrompt(t *testing.T) {
	g, up := e2eSetup(t, "")
	_, tok := e2eKey(g, "cancel-nonstream")
	r := fakeupstream.AnthropicMessage("claude-haiku-4-5", 22000, "end_turn", fakeupstream.TextBlock("too late"))
	r.Delay = 3 * time.Second
	up.Enqueue("/v1/messages", r)
	prompt := strings.Repeat("All work and no play makes Jack a dull boy. ", 2000) // 88 KB
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if resp, err := e2ePostCtx(ctx, g, "/v1/messages", tok,
		`{"model":"haiku","max_tokens":1024,"messages":[{"role":"user","content":"`+prompt+`"}]}`, e2eAnthropicHdr...); err == nil {
		resp.Body.Close()
		t.Fatalf("got an answer (%d) before the provider sent one", resp.StatusCode)
	}
	if n := len(up.RequestsTo("/v1/messages")); n != 1 {
		t.Fatalf("the provider got %d requests, want 1", n)
	}
	call := e2eCalls(g, 1)[0]
	if in := num(call, "input_tokens"); in == 0 {
		t.Errorf("a non-streamed call the provider had (an 88 KB prompt) and the client left recorded input_tokens 0, cost %v: "+
			"want at least the prompt's estimate, as a cancel during the stream hold records", call["cost_usd"])
	}
}
