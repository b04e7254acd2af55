package metis

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/metisgateway/metis/internal/fakeupstream"
	"github.com/metisgateway/metis/store"
)

// openAIToolCallStream is a streamed chat completion calling one tool, in
// the recorded gpt-5-nano chunk format, ending with the usage chunk.
func openAIToolCallStream(model, id, name, args string, prompt, completion int) fakeupstream.Reply {
	head := fmt.Sprintf(`{"id":"chatcmpl-x1","object":"chat.completion.chunk","created":%d,"model":%q,"service_tier":"default","system_fingerprint":null,`, time.Now().Unix(), model)
	var ev []string
	add := func(choices string) {
		ev = append(ev, "data: "+head+`"choices":[`+choices+`],"usage":null}`+"\n\n")
	}
	add(`{"index":0,"delta":{"role":"assistant","content":null},"finish_reason":null}`)
	nameJSON, _ := json.Marshal(name)
	add(fmt.Sprintf(`{"index":0,"delta":{"tool_calls":[{"index":0,"id":%q,"type":"function","function":{"name":%s,"arguments":""}}]},"finish_reason":null}`, id, nameJSON))
	for len(args) > 0 {
		n := min(7, len(args))
		part, _ := json.Marshal(args[:n])
		add(fmt.Sprintf(`{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":%s}}]},"finish_reason":null}`, part))
		args = args[n:]
	}
	add(`{"index":0,"delta":{},"finish_reason":"tool_calls"}`)
	ev = append(ev, "data: "+head+fmt.Sprintf(`"choices":[],"usage":{"prompt_tokens":%d,"completion_tokens":%d,"total_tokens":%d,"prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}}}`, prompt, completion, prompt+completion)+"\n\n")
	ev = append(ev, "data: [DONE]\n\n")
	return fakeupstream.Reply{Status: http.StatusOK, Header: http.Header{"Content-Type": {"text/event-stream; charset=utf-8"}, "X-Request-Id": {"req_x1"}}, Events: ev}
}

// Claude Code on an OpenAI-backed model: `claude -p` speaks Anthropic to the
// gateway, which talks Chat Completions to the provider, and the Bash
// tool-use round trip completes.
func TestCrossClaudeCodeOnOpenAIModel(t *testing.T) {
	bin, err := fakeupstream.ClaudeBinary()
	if err != nil {
		if requireE2E() {
			t.Fatalf("Claude Code missing (run tools/install.sh): %v", err)
		}
		t.Skipf("Claude Code not installed: %v", err)
	}
	up := fakeupstream.New(t)
	g := startGateway(t, gatewayConfig(tempDB(t), up.URL, "alias metis-gpt openai:gpt-5-nano"))
	dir := t.TempDir()
	_, tok := g.issueKey(store.IssueParams{Name: "cc-openai", User: "alice", Workspace: dir})

	first := openAIToolCallStream("gpt-5-nano-2025-08-07", "call_bash1", "Bash", `{"command":"echo metis-ok","description":"Run it"}`, 5000, 40)
	first.Match = func(r *fakeupstream.Recorded) bool { return !strings.Contains(r.Body, `"role":"tool"`) }
	second := fakeupstream.OpenAITextStream("gpt-5-nano-2025-08-07", "All done: metis-ok", 5100, true)
	second.Match = func(r *fakeupstream.Recorded) bool { return strings.Contains(r.Body, `"role":"tool"`) }
	up.Enqueue("/v1/chat/completions", first, second)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	runClaude(t, fakeupstream.ClaudeCommand(ctx, bin, g.URL, tok, dir, "metis-gpt", "Run echo metis-ok with Bash."), "All done: metis-ok")
	reqs := up.RequestsTo("/v1/chat/completions")
	if len(reqs) != 2 {
		t.Fatalf("provider saw %d chat completions, want 2", len(reqs))
	}
	// The tool result of Claude Code's Bash run went back as a tool message.
	var sent struct {
		Model    string           `json:"model"`
		Messages []map[string]any `json:"messages"`
	}
	_ = json.Unmarshal([]byte(reqs[1].Body), &sent)
	var toolMsg map[string]any
	for _, m := range sent.Messages {
		if m["role"] == "tool" {
			toolMsg = m
		}
	}
	if sent.Model != "gpt-5-nano" || toolMsg == nil || toolMsg["tool_call_id"] != "call_bash1" ||
		!strings.Contains(fmt.Sprint(toolMsg["content"]), "metis-ok") {
		t.Errorf("second upstream request: model %q tool message %v", sent.Model, toolMsg)
	}
	for _, r := range reqs {
		if r.APIKey() != testOpenAIKey {
			t.Errorf("upstream key %q", r.APIKey())
		}
		// OpenAI refuses a user over 64 characters; Claude Code's
		// metadata.user_id is a JSON object of about 150.
		var body struct {
			User *string `json:"user"`
		}
		_ = json.Unmarshal([]byte(r.Body), &body)
		if body.User == nil || len(*body.User) > 64 {
			t.Errorf("upstream user %v: want Claude Code's user_id, hashed to fit OpenAI's 64 characters", body.User)
		}
	}
	calls := g.waitEvents(store.TypeCallCompleted, 2)
	if len(calls) != 2 {
		t.Fatalf("%d calls recorded", len(calls))
	}
	// gpt-5-nano: 5000 × $0.05/MTok + 40 × $0.40/MTok = 0.00025 + 0.000016 = 0.000266
	if calls[0]["inbound_shape"] != "anthropic" || calls[0]["provider"] != "openai" || !near(costOf(t, calls[0]), 0.000266) ||
		calls[0]["session_id"] == nil || calls[0]["error_class"] != nil {
		t.Errorf("call 1: %v", calls[0])
	}
}
