package metis

import (
	"net/http"
	"strings"
	"testing"

	"github.com/metisgateway/metis/internal/fakeupstream"
)

// Review 30R. Commit 214c3a6 made isErrorBody take any body with a
// content, choices, output or usage member for an answer, "whatever else
// it holds" — a member whose value is null or empty included. The old
// openai.IsErrorBody took {"error":{…}} (no top-level type) for an error
// whatever its other members. So a 200 that carries an error object
// beside null/empty answer members is now recorded as an answer and
// priced on the prompt's estimate, where it used to be UPSTREAM_ERROR at
// $0 (README: "A 200 whose body is an error … is recorded as
// UPSTREAM_ERROR … at $0").
//
//   - A Responses API response that failed before any work: OpenAI's
//     Response object always has output (here []) and usage (null when
//     nothing was billed). failedResponse (usage an object) does not
//     catch it, isErrorBody no longer does: it is priced on the estimate.
//   - A compatible server that serialises its whole response struct on an
//     error: "choices":null,"usage":null beside "error":{…}; a
//     cross-shape client gets an empty answer instead of a 502.
func TestReview30RErrorBesideNullAnswerMembers(t *testing.T) {
	up := fakeupstream.New(t)
	g := startGateway(t, gatewayConfig(tempDB(t), up.URL, ""))
	_, tok := e2eKey(g, "review30r-null-members")
	json200 := http.Header{"Content-Type": {"application/json"}}
	cases := []struct {
		name, upPath, path, body, upBody string
		cross                            bool
	}{
		{"Responses API response failed before any work (output [], usage null)",
			"/v1/responses", "/v1/responses", `{"model":"nano","input":"Say hello."}`,
			`{"id":"resp_r30r","object":"response","created_at":1764400000,"status":"failed","model":"gpt-5-nano-2025-08-07",` +
				`"error":{"code":"server_error","message":"The server had an error while processing your request."},` +
				`"incomplete_details":null,"output":[],"usage":null}`, false},
		{"chat: error beside choices:null and usage:null",
			"/v1/chat/completions", "/v1/chat/completions", e2eNanoBody,
			`{"id":"","object":"","created":0,"model":"","choices":null,"usage":null,` +
				`"error":{"message":"upstream overloaded","type":"server_error","code":"503"}}`, false},
		{"cross-shape: Anthropic client, OpenAI provider, error beside choices:null and usage:null",
			"/v1/chat/completions", "/v1/messages", `{"model":"nano","max_tokens":64,"messages":[{"role":"user","content":"Say hello."}]}`,
			`{"id":"","object":"","created":0,"model":"","choices":null,"usage":null,` +
				`"error":{"message":"upstream overloaded","type":"server_error","code":"503"}}`, true},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			up.Enqueue(c.upPath, fakeupstream.Reply{Status: 200, Header: json200, Body: c.upBody})
			resp := g.post(c.path, tok, c.body, e2eAnthropicHdr...)
			body := e2eRead(t, resp)
			if c.cross {
				if resp.StatusCode != http.StatusBadGateway || !strings.Contains(body, "upstream overloaded") {
					t.Errorf("client got %d %s, want a 502 in its shape carrying the provider's error", resp.StatusCode, body)
				}
			} else if resp.StatusCode != 200 || body != c.upBody {
				t.Errorf("client got %d %s, want the error as sent", resp.StatusCode, body)
			}
			call := e2eCalls(g, i+1)[i]
			if call["error_class"] != "UPSTREAM_ERROR" {
				t.Errorf("recorded error_class %v, want UPSTREAM_ERROR (row %v)", call["error_class"], call)
			}
			if cost := e2eCost(t, call); cost != 0 {
				t.Errorf("an error answer was priced $%v (input %v, output %v tokens, usage_source %v), want $0",
					cost, call["input_tokens"], call["output_tokens"], call["usage_source"])
			}
		})
	}
}
