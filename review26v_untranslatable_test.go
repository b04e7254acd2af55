package metis

// Review 26V: call.go decide's refusal of an Anthropic-shape request that
// the OpenAI shape cannot carry (no earlier test executed it): a 400 in
// Anthropic's shape naming the field, recorded as untranslatable, and
// nothing sent upstream.

import (
	"strings"
	"testing"

	"github.com/metisgateway/metis/store"
)

func TestReview26vUntranslatableToOpenAI(t *testing.T) {
	g, up := e2eSetup(t, "")
	_, tok := e2eKey(g, "r26v-untranslatable")
	cases := []struct{ name, body, want string }{
		{"image by file id", `{"model":"nano","max_tokens":64,"messages":[{"role":"user","content":[{"type":"image","source":{"type":"file","file_id":"file_011"}}]}]}`,
			`messages[0].content[0]: image source type "file" cannot be translated`},
		{"unknown thinking type", `{"model":"nano","max_tokens":64,"thinking":{"type":"sometimes"},"messages":[{"role":"user","content":"hi"}]}`,
			`thinking.type: unknown thinking type "sometimes"`},
		{"named tool_choice without a name", `{"model":"nano","max_tokens":64,"tool_choice":{"type":"tool"},"messages":[{"role":"user","content":"hi"}]}`,
			"tool_choice.name: tool_choice of type tool needs a name"},
		{"block type inside a tool result", `{"model":"nano","max_tokens":64,"messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":[{"type":"tool_use","id":"toolu_2","name":"f","input":{}}]}]}]}`,
			`block type "tool_use" is not allowed inside a tool result`},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := e2eIn(g, t)
			resp := g.post("/v1/messages", tok, tc.body, e2eAnthropicHdr...)
			body := e2eRead(t, resp)
			m := e2eJSON(t, body)
			msg, _ := e2ePath(m, "error", "message").(string)
			if resp.StatusCode != 400 || e2ePath(m, "error", "type") != "invalid_request_error" || !strings.Contains(msg, tc.want) {
				t.Errorf("client got %d %s; want a 400 invalid_request_error saying %q", resp.StatusCode, body, tc.want)
			}
			rej := g.waitEvents(store.TypeRequestRejected, i+1)
			if len(rej) != i+1 {
				t.Fatalf("%d request.rejected events", len(rej))
			}
			e2eWant(t, "rejection", rej[i], map[string]any{"status": 400, "reason": "untranslatable", "requested_model": "nano"})
		})
	}
	if n := len(up.Requests()); n != 0 {
		t.Errorf("upstream saw %d requests", n)
	}
}
