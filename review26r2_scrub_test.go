//go:build cgo

package metis

import (
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
)

// Review 26R2 of c600f4d (D5 mend): relayBody now scrubs a 200's body only
// when c.errorClass is set. A 200 whose body is a compatible server's or
// proxy's error in a shape isErrorBody does not recognise (FastAPI's
// {"detail":…}, vLLM's {"object":"error",…}, which the gateway's own
// error reader knows, an Anthropic error without "type":"error"), and a
// count_tokens 200 that is not JSON at all (readUsage returns before
// setUsage can class it BAD_UPSTREAM_RESPONSE), leave errorClass empty,
// so the operator's key reaches the developer as sent. Before c600f4d
// every 200 body was scrubbed. README: "a provider credential … that a
// compatible server or proxy echoes (in an error body, a 200 whose body is
// an error or unreadable, …) is replaced by [provider credential removed
// by the gateway]".
func TestProviderKeyInAnUnrecognised200BodyIsRemoved(t *testing.T) {
	var mode atomic.Value
	mode.Store("")
	g, _ := oddUpstream(t, "", func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasSuffix(r.URL.Path, "/count_tokens"):
			w.Header().Set("Content-Type", "text/html")
			fmt.Fprintf(w, "<html><body>Proxy: key %s refused</body></html>", testAnthropicKey)
		case r.URL.Path == "/v1/messages":
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"error":{"type":"authentication_error","message":"invalid x-api-key %s"}}`, testAnthropicKey)
		case mode.Load() == "vllm":
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"object":"error","message":"Invalid token Bearer %s","type":"AuthenticationError","code":401}`, testOpenAIKey)
		default:
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"detail":"Invalid API key: %s"}`, testOpenAIKey)
		}
	})
	_, tok := e2eKey(g, "echo200b")
	for _, c := range []struct {
		name, path, body string
		mode             string
	}{
		{"openai relayed, FastAPI detail", "/v1/chat/completions", `{"model":"gpt-5-mini","messages":[{"role":"user","content":"Hi."}]}`, ""},
		{"openai relayed, vLLM error object", "/v1/chat/completions", `{"model":"gpt-5-mini","messages":[{"role":"user","content":"Hi."}]}`, "vllm"},
		{"responses relayed, FastAPI detail", "/v1/responses", `{"model":"gpt-5-mini","input":"Hi."}`, ""},
		{"anthropic relayed, error without type", "/v1/messages", `{"model":"claude-haiku-4-5","max_tokens":16,"messages":[{"role":"user","content":"Hi."}]}`, ""},
		{"anthropic client to gpt, FastAPI detail", "/v1/messages", `{"model":"gpt-5-mini","max_tokens":16,"messages":[{"role":"user","content":"Hi."}]}`, ""},
		{"anthropic client to gpt, vLLM error object", "/v1/messages", `{"model":"gpt-5-mini","max_tokens":16,"messages":[{"role":"user","content":"Hi."}]}`, "vllm"},
		{"openai client to claude, error without type", "/v1/chat/completions", `{"model":"claude-haiku-4-5","messages":[{"role":"user","content":"Hi."}]}`, ""},
		{"anthropic count_tokens, HTML page", "/v1/messages/count_tokens", `{"model":"claude-haiku-4-5","messages":[{"role":"user","content":"Hi."}]}`, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			mode.Store(c.mode)
			resp := g.post(c.path, tok, c.body, e2eAnthropicHdr...)
			body := e2eRead(t, resp)
			if strings.Contains(body, testAnthropicKey) || strings.Contains(body, testOpenAIKey) {
				t.Errorf("%d: the client got the provider key: %s", resp.StatusCode, body)
			}
		})
	}
}
