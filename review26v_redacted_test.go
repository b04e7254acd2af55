package metis

// Review 26V: a streamed redacted_thinking block (adapters/anthropic
// stream.go's decoder, which no earlier test fed one) before a tool call
// must come back to Claude at the head of the assistant turn answering
// the tool, or Anthropic refuses the turn ("Expected thinking or
// redacted_thinking"): through the Responses API (encrypted_content) and
// through Chat Completions (kept by the gateway).

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/metisgateway/metis/internal/fakeupstream"
)

func TestReview26vStreamedRedactedThinkingRoundTrip(t *testing.T) {
	g, up := e2eSetup(t, "")
	_, tok := e2eKey(g, "r26v-redacted")
	const data = "EmwKAhgBEgy3va3pzix/LafPsn4aDFIT2Xlxh0L5L8rLVyIwxtE3rAFBa8cr3qpP"
	answer := func() fakeupstream.Reply {
		return fakeupstream.AnthropicStream("claude-haiku-4-5", 50, "tool_use",
			fakeupstream.RedactedThinkingBlock(data), fakeupstream.Block{Name: "get_weather", Input: `{"city":"Paris"}`, ID: "toolu_01R26V"})
	}
	assistantHead := func(t *testing.T) {
		t.Helper()
		reqs := up.RequestsTo("/v1/messages")
		if len(reqs) != 2 {
			t.Fatalf("upstream saw %d requests", len(reqs))
		}
		var body struct {
			Thinking any `json:"thinking"`
			Messages []struct {
				Role    string            `json:"role"`
				Content []json.RawMessage `json:"content"`
			} `json:"messages"`
		}
		if err := json.Unmarshal([]byte(reqs[1].Body), &body); err != nil {
			t.Fatal(err)
		}
		for _, m := range body.Messages {
			if m.Role != "assistant" {
				continue
			}
			if len(m.Content) == 0 || !strings.Contains(string(m.Content[0]), `"redacted_thinking"`) || !strings.Contains(string(m.Content[0]), data) {
				t.Errorf("second turn's assistant message begins %s; want the redacted_thinking block (thinking %v)", m.Content, body.Thinking)
			}
			return
		}
		t.Errorf("no assistant message in %s", reqs[1].Body)
	}

	t.Run("Responses API", func(t *testing.T) {
		g := e2eIn(g, t)
		up.Reset()
		up.Enqueue("/v1/messages", answer(), fakeupstream.AnthropicMessage("claude-haiku-4-5", 80, "end_turn", fakeupstream.TextBlock("Sunny.")))
		tools := `"tools":[{"type":"function","name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}]`
		resp := g.post("/v1/responses", tok, `{"model":"haiku","stream":true,"store":false,"include":["reasoning.encrypted_content"],"reasoning":{"effort":"low"},`+
			tools+`,"input":"Weather in Paris?"}`)
		evs := e2eReadSSE(t, resp.Body)
		resp.Body.Close()
		var output []any
		for _, e := range evs {
			m := map[string]any{}
			_ = json.Unmarshal([]byte(e.Data), &m)
			if m["type"] == "response.completed" {
				output, _ = e2ePath(m, "response", "output").([]any)
			}
		}
		if len(output) != 2 || e2ePath(output[0], "type") != "reasoning" || e2ePath(output[0], "encrypted_content") == nil {
			t.Fatalf("output %v; want a reasoning item with encrypted_content, then the call", output)
		}
		input, _ := json.Marshal(append([]any{map[string]any{"role": "user", "content": "Weather in Paris?"}}, append(output,
			map[string]any{"type": "function_call_output", "call_id": e2ePath(output[1], "call_id"), "output": "Sunny, 21°C"})...))
		resp = g.post("/v1/responses", tok, `{"model":"haiku","store":false,"include":["reasoning.encrypted_content"],"reasoning":{"effort":"low"},`+
			tools+`,"input":`+string(input)+`}`)
		if body := e2eRead(t, resp); resp.StatusCode != 200 {
			t.Fatalf("second turn: %d %s", resp.StatusCode, body)
		}
		assistantHead(t)
	})

	t.Run("Chat Completions", func(t *testing.T) {
		g := e2eIn(g, t)
		up.Reset()
		up.Enqueue("/v1/messages", answer(), fakeupstream.AnthropicMessage("claude-haiku-4-5", 80, "end_turn", fakeupstream.TextBlock("Sunny.")))
		tools := `"tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}}]`
		resp := g.post("/v1/chat/completions", tok, `{"model":"haiku","stream":true,"reasoning_effort":"low",`+tools+`,"messages":[{"role":"user","content":"Weather in Paris?"}]}`)
		body := e2eRead(t, resp)
		if resp.StatusCode != 200 || !strings.Contains(body, "toolu_01R26V") {
			t.Fatalf("first turn: %d %s", resp.StatusCode, body)
		}
		resp = g.post("/v1/chat/completions", tok, `{"model":"haiku","reasoning_effort":"low",`+tools+`,"messages":[{"role":"user","content":"Weather in Paris?"},`+
			`{"role":"assistant","content":null,"tool_calls":[{"id":"toolu_01R26V","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},`+
			`{"role":"tool","tool_call_id":"toolu_01R26V","content":"Sunny, 21°C"}]}`)
		if body := e2eRead(t, resp); resp.StatusCode != 200 {
			t.Fatalf("second turn: %d %s", resp.StatusCode, body)
		}
		assistantHead(t)
	})
}
