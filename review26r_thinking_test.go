//go:build cgo

package metis

import "testing"

// Review 26R: "thinking": null (a client that writes unset members as
// null) is read as thinking disabled since 26V, and the request's
// output_config.effort no longer reaches an OpenAI reasoning model.
func TestThinkingNullThroughTheGatewayIsNoThinking(t *testing.T) {
	g, up := e2eSetup(t, "")
	_, tok := e2eKey(g, "r26r-thinking-null")
	var got [2]any
	for i, b := range []string{
		`{"model":"nano","max_tokens":64,"output_config":{"effort":"high"},"messages":[{"role":"user","content":"hi"}]}`,
		`{"model":"nano","max_tokens":64,"thinking":null,"output_config":{"effort":"high"},"messages":[{"role":"user","content":"hi"}]}`,
	} {
		up.Reset()
		resp := g.post("/v1/messages", tok, b, e2eAnthropicHdr...)
		if body := e2eRead(t, resp); resp.StatusCode != 200 {
			t.Fatalf("request %d: %d %s", i, resp.StatusCode, body)
		}
		got[i] = up.RequestsTo("/v1/chat/completions")[0].JSON()["reasoning_effort"]
	}
	if got[0] != got[1] {
		t.Errorf("output_config.effort high: reasoning_effort %#v without a thinking member, %#v with \"thinking\": null", got[0], got[1])
	}
}
