//go:build cgo

package metis

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// Review 26R: README now says a provider credential a compatible server or
// proxy echoes in "a response header's value" is replaced. relayHeaders
// scrubs the headers a same-shape client gets, but a cross-shape client
// (and any client of a gateway-written error after an answer) gets the
// provider's request id, read from Request-Id / X-Request-Id by
// upstreamRequestID, through setRequestID / writeError unscrubbed. A proxy
// that sets its request id from the request's credential (or echoes the
// Authorization line into it) hands the key to every cross-shape client.
func TestProviderKeyInARequestIDIsRemoved(t *testing.T) {
	g, _ := oddUpstream(t, "", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Request-Id", "req-"+strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "))
		fmt.Fprint(w, `{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-5-mini","choices":[{"index":0,"message":{"role":"assistant","content":"Hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":1,"total_tokens":6}}`)
	})
	_, tok := e2eKey(g, "reqid")
	resp := g.post("/v1/messages", tok, `{"model":"gpt-5-mini","max_tokens":16,"messages":[{"role":"user","content":"Hi."}]}`, e2eAnthropicHdr...)
	body := e2eRead(t, resp)
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	for k, vv := range resp.Header {
		for _, v := range vv {
			if strings.Contains(v, testOpenAIKey) {
				t.Errorf("Anthropic client of an OpenAI model: response header %s carries the provider key: %s", k, v)
			}
		}
	}
}
