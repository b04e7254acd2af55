package metis

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/metisgateway/metis/internal/fakeupstream"
	"github.com/metisgateway/metis/store"
)

// TestE2EProviderCompatOptions: the provider options for compatible
// servers that are not Anthropic's or OpenAI's change what goes upstream,
// and only for the provider that has them.
//   - auth bearer: an Anthropic-compatible vendor that takes only a bearer
//     token gets the provider key as Authorization: Bearer, no X-Api-Key
//     (and never the gateway token).
//   - stream_usage off: a server that refuses stream_options gets none
//     added to an OpenAI client's stream.
//   - max_tokens_field max_tokens and system_messages first: Claude Code's
//     request translated for such a server carries max_tokens and one
//     leading system message.
func TestE2EProviderCompatOptions(t *testing.T) {
	up := fakeupstream.New(t)
	extra := fmt.Sprintf(`
		provider glm anthropic {
			api_key {env.METIS_TEST_ANTHROPIC_KEY}
			base_url %s/glm
			auth bearer
		}
		provider local openai {
			base_url %s/local/v1
			stream_usage off
			max_tokens_field max_tokens
			system_messages first
		}
		alias glm glm:glm-4.6
		alias qwen local:qwen3`, up.URL, up.URL)
	g := startGateway(t, gatewayConfig(tempDB(t), up.URL, extra))
	_, tok := g.issueKey(store.IssueParams{Name: "compat"})

	up.Enqueue("/glm/v1/messages", fakeupstream.AnthropicMessage("glm-4.6", 20, "end_turn", fakeupstream.TextBlock("hi")))
	resp := g.post("/v1/messages", tok, `{"model":"glm","max_tokens":64,"messages":[{"role":"user","content":"hi"}]}`, e2eAnthropicHdr...)
	if body := e2eRead(t, resp); resp.StatusCode != 200 {
		t.Fatalf("glm: %d %s", resp.StatusCode, body)
	}
	reqs := up.RequestsTo("/glm/v1/messages")
	if len(reqs) != 1 {
		t.Fatalf("%d requests to the glm provider", len(reqs))
	}
	h := reqs[0].Header
	if h.Get("Authorization") != "Bearer "+testAnthropicKey || h.Get("X-Api-Key") != "" {
		t.Errorf("glm got Authorization %q, X-Api-Key %q; want the provider key as a bearer token alone", h.Get("Authorization"), h.Get("X-Api-Key"))
	}

	up.Enqueue("/local/v1/chat/completions", fakeupstream.OpenAITextStream("qwen3", "Hello there.", 30, false))
	resp = g.post("/v1/chat/completions", tok, `{"model":"qwen","stream":true,"messages":[{"role":"user","content":"hi"}]}`, "Authorization", "Bearer "+tok)
	if body := e2eRead(t, resp); resp.StatusCode != 200 || !strings.Contains(body, "[DONE]") {
		t.Fatalf("local stream: %d %s", resp.StatusCode, body)
	}
	if b := up.RequestsTo("/local/v1/chat/completions")[0].Body; strings.Contains(b, "stream_options") {
		t.Errorf("stream_options added for a provider with stream_usage off: %s", b)
	}
	g.sync()
	if c := g.lastCall(); c["usage_source"] != "estimated" || c["status"] != float64(200) {
		t.Errorf("a stream without usage: usage_source %v status %v, want estimated 200", c["usage_source"], c["status"])
	}

	// A server not asked for usage that ends at its finish chunk, without
	// [DONE]: the answer is whole, for either client shape.
	noDone := func() fakeupstream.Reply {
		r := fakeupstream.OpenAITextStream("qwen3", "All of it.", 30, false)
		r.Events = r.Events[:len(r.Events)-1]
		return r
	}
	up.Enqueue("/local/v1/chat/completions", noDone())
	resp = g.post("/v1/chat/completions", tok, `{"model":"qwen","stream":true,"messages":[{"role":"user","content":"hi"}]}`, "Authorization", "Bearer "+tok)
	if body := e2eRead(t, resp); resp.StatusCode != 200 || strings.Contains(body, "error") {
		t.Fatalf("stream ending at its finish chunk: %d %s", resp.StatusCode, body)
	}
	up.Enqueue("/local/v1/chat/completions", noDone())
	resp = g.post("/v1/messages", tok, `{"model":"qwen","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"`+strings.Repeat("a few words ", 50)+`"}]}`, e2eAnthropicHdr...)
	body := e2eRead(t, resp)
	if resp.StatusCode != 200 || strings.Contains(body, "error") || !strings.Contains(body, "message_stop") {
		t.Fatalf("translated stream ending at its finish chunk: %d %s", resp.StatusCode, body)
	}
	// No usage from the server: the estimate the client was told is the
	// one recorded.
	var told float64
	for _, line := range strings.Split(body, "\n") {
		if d, ok := strings.CutPrefix(line, "data: "); ok && strings.Contains(d, `"message_start"`) {
			var ev struct {
				Message struct {
					Usage struct {
						InputTokens float64 `json:"input_tokens"`
					} `json:"usage"`
				} `json:"message"`
			}
			if err := json.Unmarshal([]byte(d), &ev); err != nil {
				t.Fatal(err)
			}
			told = ev.Message.Usage.InputTokens
		}
	}
	g.sync()
	if c := g.lastCall(); told < 100 || c["input_tokens"] != told || c["usage_source"] != "estimated" {
		t.Errorf("translated stream without usage: client told %v input tokens, recorded %v (%v)", told, c["input_tokens"], c["usage_source"])
	}
	for _, c := range g.events(store.TypeCallCompleted)[1:3] {
		if c["error_class"] != nil || c["status"] != float64(200) {
			t.Errorf("stream ending at its finish chunk recorded %v %v, want 200 and no error", c["status"], c["error_class"])
		}
	}
	// A client that asks for usage itself: its stream_options do not go to
	// a server that refuses them, and the usage the server sends anyway
	// reaches it and prices the call.
	up.Enqueue("/local/v1/chat/completions", fakeupstream.OpenAITextStream("qwen3", "Counted.", 30, true))
	resp = g.post("/v1/chat/completions", tok, `{"model":"qwen","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}`,
		"Authorization", "Bearer "+tok)
	if body := e2eRead(t, resp); resp.StatusCode != 200 || !strings.Contains(body, `"prompt_tokens":30`) {
		t.Fatalf("client asking for usage: %d %s", resp.StatusCode, body)
	}
	if b := up.RequestsTo("/local/v1/chat/completions")[3].Body; strings.Contains(b, "stream_options") {
		t.Errorf("the client's stream_options reached a provider with stream_usage off: %s", b)
	}
	g.sync()
	if c := g.lastCall(); c["usage_source"] != "provider" || c["input_tokens"] != float64(30) {
		t.Errorf("client asking for usage: usage_source %v input %v, want provider 30", c["usage_source"], c["input_tokens"])
	}

	// A server that sends usage unasked: nothing was added to the request,
	// so nothing is taken from the answer.
	up.Enqueue("/local/v1/chat/completions", fakeupstream.OpenAITextStream("qwen3", "Unasked.", 30, true))
	resp = g.post("/v1/chat/completions", tok, `{"model":"qwen","stream":true,"messages":[{"role":"user","content":"hi"}]}`, "Authorization", "Bearer "+tok)
	if body := e2eRead(t, resp); resp.StatusCode != 200 || !strings.Contains(body, `"prompt_tokens":30`) || !strings.Contains(body, `"usage":null`) {
		t.Fatalf("usage sent unasked: %d %s", resp.StatusCode, body)
	}

	up.Enqueue("/local/v1/chat/completions", fakeupstream.OpenAICompletion("qwen3", "Done.", 30))
	resp = g.post("/v1/messages", tok, `{"model":"qwen","max_tokens":300,"system":"You are terse.",
		"messages":[{"role":"user","content":"hi"},{"role":"system","content":"# Environment"},{"role":"user","content":"go on"}]}`, e2eAnthropicHdr...)
	if body := e2eRead(t, resp); resp.StatusCode != 200 {
		t.Fatalf("translated: %d %s", resp.StatusCode, body)
	}
	sent := up.RequestsTo("/local/v1/chat/completions")[5].JSON()
	msgs, _ := sent["messages"].([]any)
	roles := []string{}
	for _, m := range msgs {
		roles = append(roles, m.(map[string]any)["role"].(string))
	}
	if sent["max_tokens"] != float64(300) || sent["max_completion_tokens"] != nil || strings.Join(roles, ",") != "system,user,user" ||
		msgs[0].(map[string]any)["content"] != "You are terse.\n\n# Environment" {
		t.Errorf("translated request: max_tokens %v, max_completion_tokens %v, roles %v, first %v", sent["max_tokens"], sent["max_completion_tokens"], roles, msgs[0])
	}

	// The other providers are untouched: Anthropic's key as X-Api-Key,
	// OpenAI's streams asked for usage.
	up.Enqueue("/v1/messages", fakeupstream.AnthropicMessage("claude-haiku-4-5", 20, "end_turn", fakeupstream.TextBlock("hi")))
	e2eRead(t, g.post("/v1/messages", tok, `{"model":"haiku","max_tokens":64,"messages":[{"role":"user","content":"hi"}]}`, e2eAnthropicHdr...))
	if h := up.RequestsTo("/v1/messages")[0].Header; h.Get("X-Api-Key") != testAnthropicKey || h.Get("Authorization") != "" {
		t.Errorf("anthropic got X-Api-Key %q Authorization %q", h.Get("X-Api-Key"), h.Get("Authorization"))
	}
	up.Enqueue("/v1/chat/completions", fakeupstream.OpenAITextStream("gpt-5-nano", "Hi.", 30, true))
	e2eRead(t, g.post("/v1/chat/completions", tok, `{"model":"nano","stream":true,"messages":[{"role":"user","content":"hi"}]}`, "Authorization", "Bearer "+tok))
	if b := up.RequestsTo("/v1/chat/completions")[0].Body; !strings.Contains(b, `"include_usage":true`) {
		t.Errorf("openai stream without include_usage: %s", b)
	}
}

// TestE2EPromptCacheTranslated: an OpenAI-shape client cannot mark a cache
// breakpoint, and OpenAI caches long prompts unasked; translated to a
// Claude model, its request asks for Anthropic's automatic caching (a
// top-level cache_control), so an agent's later turns read their shared
// prefix at a tenth of the input price (opencode through the AI SDK's
// openai-compatible provider paid the full price on every step, audit
// 13V). A client's own marker is kept and none is added; prompt_cache off
// sends none, for Anthropic-compatible servers that refuse the field.
func TestE2EPromptCacheTranslated(t *testing.T) {
	up := fakeupstream.New(t)
	extra := fmt.Sprintf(`
		provider glm anthropic {
			api_key {env.METIS_TEST_ANTHROPIC_KEY}
			base_url %s/glm
			prompt_cache off
		}
		alias glm glm:glm-4.6`, up.URL)
	g := startGateway(t, gatewayConfig(tempDB(t), up.URL, extra))
	_, tok := g.issueKey(store.IssueParams{Name: "cache"})
	system := strings.Repeat("You are a careful coding agent. ", 200)
	body := func(model, system string) string {
		return `{"model":"` + model + `","stream":true,"messages":[{"role":"system","content":"` + system + `"},{"role":"user","content":"Read hello.txt"}],` +
			`"tools":[{"type":"function","function":{"name":"read","description":"Read a file","parameters":{"type":"object","properties":{"path":{"type":"string"}},"required":["path"]}}}]}`
	}
	post := func(path, model, b string) string {
		t.Helper()
		up.Enqueue(path, fakeupstream.AnthropicStream(model, 2000, "end_turn", fakeupstream.TextBlock("ok")))
		resp := g.post("/v1/chat/completions", tok, b, "Authorization", "Bearer "+tok)
		if out := e2eRead(t, resp); resp.StatusCode != 200 {
			t.Fatalf("%s: client got %d %s", model, resp.StatusCode, out)
		}
		reqs := up.RequestsTo(path)
		return reqs[len(reqs)-1].Body
	}
	topLevel := func(b string) string {
		var m map[string]json.RawMessage
		if err := json.Unmarshal([]byte(b), &m); err != nil {
			t.Fatalf("upstream body: %v", err)
		}
		return string(m["cache_control"])
	}

	sent := post("/v1/messages", "claude-haiku-4-5", body("haiku", system))
	if got := topLevel(sent); got != `{"type":"ephemeral"}` {
		t.Errorf("translated request's top-level cache_control = %q, want {\"type\":\"ephemeral\"}", got)
	}

	// The client's own breakpoint (kept, LOSSY.md) is the only one.
	own := `{"model":"haiku","messages":[{"role":"system","content":[{"type":"text","text":"` + system +
		`","cache_control":{"type":"ephemeral","ttl":"1h"}}]},{"role":"user","content":"hi"}]}`
	sent = post("/v1/messages", "claude-haiku-4-5", own)
	if got := topLevel(sent); got != "" || strings.Count(sent, `"cache_control"`) != 1 {
		t.Errorf("a request with the client's own breakpoint got top-level cache_control %q (%d markers)", got, strings.Count(sent, `"cache_control"`))
	}

	sent = post("/glm/v1/messages", "glm-4.6", body("glm", system))
	if strings.Contains(sent, "cache_control") {
		t.Errorf("a provider with prompt_cache off got cache_control: %.300s", sent)
	}
}
