package metis

import (
	"net/http"
	"strings"
	"testing"

	"github.com/metisgateway/metis/internal/fakeupstream"
)

// README ("With Claude Code", the redirect/200 paragraph): "A `200` whose
// body is an error (a proxy's, a compatible server's) is recorded as
// `UPSTREAM_ERROR` ... at $0, and not retried; a same-shape client gets it
// as sent, a cross-shape one a 502 in its shape."
//
// Only the provider type's own canonical form is recognised: Anthropic's
// {"type":"error","error":{…}} and OpenAI's {"error":{…}}. The other error
// forms the gateway itself reads on error statuses (adapters/openai
// parseErrorDetail: {"error":"text"}, vLLM's {"object":"error",…}), and an
// Anthropic-type provider's (or proxy's) {"error":{…}} without the top-level
// "type", are taken for successful answers with no usage: recorded as
// successes, priced on the prompt's estimate (and charged to budgets) and,
// for a cross-shape client, turned into an empty chat.completion with
// finish_reason "stop" and invented usage instead of a 502.
func TestReview30AErrorBodiesIn200(t *testing.T) {
	up := fakeupstream.New(t)
	g := startGateway(t, gatewayConfig(tempDB(t), up.URL, ""))
	_, tok := e2eKey(g, "review30a-errors-in-200")
	json200 := http.Header{"Content-Type": {"application/json"}}
	cases := []struct {
		name, upPath, path, body, upBody string
		crossShape                       bool
	}{
		{"anthropic provider, error without top-level type, cross-shape client",
			"/v1/messages", "/v1/chat/completions", `{"model":"haiku","messages":[{"role":"user","content":"hi"}]}`,
			`{"error":{"type":"overloaded_error","message":"Overloaded"}}`, true},
		{"anthropic provider, error without top-level type, same-shape client",
			"/v1/messages", "/v1/messages", e2eHaikuBody,
			`{"error":{"type":"overloaded_error","message":"Overloaded"}}`, false},
		{"openai provider, {\"error\":\"text\"}",
			"/v1/chat/completions", "/v1/chat/completions", e2eNanoBody,
			`{"error":"model is overloaded, try again"}`, false},
		{"openai provider, vLLM's object:error",
			"/v1/chat/completions", "/v1/chat/completions", e2eNanoBody,
			`{"object":"error","message":"The model is overloaded","type":"ServiceUnavailableError","code":503}`, false},
	}
	for i, c := range cases {
		up.Enqueue(c.upPath, fakeupstream.Reply{Status: 200, Header: json200, Body: c.upBody})
		resp := g.post(c.path, tok, c.body, e2eAnthropicHdr...)
		body := e2eRead(t, resp)
		if c.crossShape {
			if resp.StatusCode != http.StatusBadGateway || !strings.Contains(body, "Overloaded") {
				t.Errorf("%s: client got %d %s, want a 502 in its shape carrying the provider's error", c.name, resp.StatusCode, body)
			}
		} else if resp.StatusCode != 200 || body != c.upBody {
			t.Errorf("%s: client got %d %s, want the error as sent", c.name, resp.StatusCode, body)
		}
		call := e2eCalls(g, i+1)[i]
		if call["error_class"] != "UPSTREAM_ERROR" {
			t.Errorf("%s: recorded error_class %v, want UPSTREAM_ERROR (row %v)", c.name, call["error_class"], call)
		}
		if cost := e2eCost(t, call); cost != 0 {
			t.Errorf("%s: an error answer was priced $%v (estimated input %v tokens), want $0", c.name, cost, call["input_tokens"])
		}
	}
}
