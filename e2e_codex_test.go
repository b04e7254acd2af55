package metis

// End to end with OpenAI's Codex CLI itself: `codex exec` pointed at the
// gateway as a custom model provider (the README's configuration) with a
// gateway token completes a shell tool-use round trip over the Responses
// API against the fake provider, and every call is traced and priced.

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/metisgateway/metis/internal/fakeupstream"
	"github.com/metisgateway/metis/store"
)

// codexBinary is the pinned Codex CLI, or the test is skipped (failed
// under METIS_REQUIRE_E2E=1).
func codexBinary(t *testing.T) string {
	t.Helper()
	bin, err := fakeupstream.CodexBinary()
	if err != nil {
		if os.Getenv("METIS_REQUIRE_E2E") == "1" {
			t.Fatalf("Codex CLI is required (METIS_REQUIRE_E2E=1) but missing: %v; run tools/install.sh", err)
		}
		t.Skipf("Codex CLI not installed (%v); run tools/install.sh", err)
	}
	return bin
}

// gpt-5-nano: $0.05 in, $0.005 cached, $0.4 out per MTok.
// Turn 1: 9,000 in; out 32 reasoning + exec_command 12 + 29/3 + 10 = 63:
// 0.00045 + 0.0000252 = 0.0004752.
// Turn 2: 9,200 in, 8,960 cached; out "The command printed metis-codex-ok."
// 35/4+1 = 9: 240 × 0.05e-6 + 8,960 × 0.005e-6 + 9 × 0.4e-6 = 0.000012 +
// 0.0000448 + 0.0000036 = 0.0000604.
func TestCodexCLIToolRoundTrip(t *testing.T) {
	bin := codexBinary(t)
	g, up := e2eSetup(t, "")
	k, tok := e2eKey(g, "codex-laptop")
	tap := e2eNewTap(t, g.URL)
	hasOutput := func(r *fakeupstream.Recorded) bool { return strings.Contains(r.Body, `"function_call_output"`) }
	turn1 := fakeupstream.ResponsesAnswer{Model: "gpt-5-nano-2025-08-07", InputTokens: 9000, ReasoningTokens: 32,
		Calls: []fakeupstream.ResponsesCall{{Name: "exec_command", Arguments: `{"cmd":"echo metis-codex-ok"}`}}}.Stream()
	turn1.Gap = time.Millisecond
	turn1.Match = func(r *fakeupstream.Recorded) bool { return !hasOutput(r) }
	turn2 := fakeupstream.ResponsesAnswer{Model: "gpt-5-nano-2025-08-07", InputTokens: 9200, CachedTokens: 8960,
		Text: "The command printed metis-codex-ok."}.Stream()
	turn2.Match = hasOutput
	up.Enqueue("/v1/responses", turn1)
	up.Enqueue("/v1/responses", turn2)

	runCodexShellTask(t, bin, tap.URL, tok, "gpt-5-nano")

	sent := up.RequestsTo("/v1/responses")
	if len(sent) != 2 {
		t.Fatalf("%d Responses API requests reached the provider, want 2", len(sent))
	}
	// Codex ran the command and sent its output back.
	var output string
	gjson.Get(sent[1].Body, "input").ForEach(func(_, it gjson.Result) bool {
		if it.Get("type").Str == "function_call_output" {
			output = it.Get("output").String()
		}
		return true
	})
	if !strings.Contains(output, "metis-codex-ok") {
		t.Errorf("the second request's function_call_output is %q", output)
	}
	// What reached the provider is what Codex sent, but for the key.
	client := tap.requests()
	if len(client) != 2 {
		t.Fatalf("codex sent %d requests, want 2", len(client))
	}
	session := client[0].Header.Get("Session-Id")
	for i := range sent {
		if sent[i].Body != client[i].Body {
			t.Errorf("request %d: the body changed on its way to the provider", i)
		}
		if sent[i].APIKey() != testOpenAIKey || strings.Contains(sent[i].Body, tok) || strings.Contains(strings.Join(sent[i].Header.Values("Authorization"), ""), tok) {
			t.Errorf("request %d: provider key %q; the gateway token went upstream", i, sent[i].APIKey())
		}
	}

	calls := e2eCalls(g, 2)
	for i, want := range []float64{0.0004752, 0.0000604} {
		e2eWant(t, "call", calls[i], map[string]any{"provider": "openai", "model": "gpt-5-nano", "stream": true, "usage_source": "provider",
			"gateway_key_id": k.ID, "session_id": session})
		if cost := e2eCost(t, calls[i]); !e2eNear(cost, want) || calls[i]["error_class"] != nil {
			t.Errorf("call %d: %v, want cost %v", i, calls[i], want)
		}
		e2eCheckTriple(g, calls[i])
	}
	if session == "" {
		t.Errorf("codex sent no Session-Id header: %v", client[0].Header)
	}
	for _, rd := range g.events(store.TypeRouteDecided) {
		if rd["endpoint"] != "responses" || rd["inbound_shape"] != "openai" {
			t.Errorf("route.decided %v", rd)
		}
	}
}

// runCodexShellTask has codex exec, pointed at the gateway at baseURL with
// model, run `echo metis-codex-ok` and report what it printed, and checks
// that it did.
func runCodexShellTask(t *testing.T, bin, baseURL, tok, model string, config ...string) {
	t.Helper()
	run := runCodex(t, bin, baseURL, tok, model, "Run `echo metis-codex-ok` and tell me what it printed.", 90*time.Second, config...)
	if run.err != nil {
		t.Fatalf("codex exec: %v\nstdout:\n%s\nstderr:\n%s", run.err, run.stdout, run.stderr)
	}
	if !strings.Contains(run.stdout, "The command printed metis-codex-ok.") {
		t.Errorf("codex printed:\n%s\nstderr:\n%s", run.stdout, run.stderr)
	}
}

// codexRun is what one codex exec printed, its error, how long it ran and
// whether its timeout killed it.
type codexRun struct {
	stdout, stderr string
	err            error
	took           time.Duration
	killed         bool
}

// runCodex runs codex exec for prompt, pointed at the gateway at baseURL
// with model, the gateway token tok and further config settings, in a
// temporary directory, killed after timeout.
func runCodex(t *testing.T, bin, baseURL, tok, model, prompt string, timeout time.Duration, config ...string) codexRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := fakeupstream.CodexCommand(ctx, bin, baseURL, tok, t.TempDir(), model, prompt, config...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	return codexRun{stdout: stdout.String(), stderr: stderr.String(), err: err, took: time.Since(start), killed: ctx.Err() != nil}
}

// Codex CLI with a Claude model: its Responses API requests are
// translated to the Messages API (its namespaced tools offered flat, its
// hosted web_search tool dropped) and Claude's streamed answer comes back
// as Responses API events that Codex acts on, completing a shell tool
// round trip priced from Anthropic's usage.
//
// claude-haiku-4-5: $1 in, $5 out per MTok.
// Turn 1: 9,000 in; out exec_command 12 + 29/3 + 10 = 31: 0.009 + 0.000155
// = 0.009155.
// Turn 2: 9,200 in; out "The command printed metis-codex-ok." 35/4+1 = 9:
// 0.0092 + 0.000045 = 0.009245.
func TestCodexCLIWithClaudeModel(t *testing.T) {
	bin := codexBinary(t)
	g, up := e2eSetup(t, "")
	k, tok := e2eKey(g, "codex-laptop")
	hasResult := func(r *fakeupstream.Recorded) bool { return strings.Contains(r.Body, `"tool_result"`) }
	turn1 := fakeupstream.AnthropicStream(haikuModel, 9000, "tool_use", fakeupstream.ToolUseBlock("exec_command", `{"cmd":"echo metis-codex-ok"}`))
	turn1.Gap = time.Millisecond
	turn1.Match = func(r *fakeupstream.Recorded) bool { return !hasResult(r) }
	turn2 := fakeupstream.AnthropicStream(haikuModel, 9200, "end_turn", fakeupstream.TextBlock("The command printed metis-codex-ok."))
	turn2.Match = hasResult
	up.Enqueue("/v1/messages", turn1, turn2)

	runCodexShellTask(t, bin, g.URL, tok, "claude-haiku-4-5")
	sent := up.RequestsTo("/v1/messages")
	if len(sent) != 2 {
		t.Fatalf("%d Messages requests reached the provider, want 2", len(sent))
	}
	first := gjson.Parse(sent[0].Body)
	var names []string
	for _, tool := range first.Get("tools").Array() {
		names = append(names, tool.Get("name").Str)
	}
	if first.Get("model").Str != "claude-haiku-4-5" || !strings.Contains(first.Get("system").Raw, "Codex CLI") ||
		!strings.Contains(strings.Join(names, " "), "exec_command") || strings.Contains(sent[0].Body, "web_search") ||
		sent[0].APIKey() != testAnthropicKey || strings.Contains(sent[0].Body, tok) {
		t.Errorf("turn 1 went upstream with tools %v as %.600s", names, sent[0].Body)
	}
	// Codex ran the command and sent its output back, as Claude's tool_result.
	msgs := gjson.Get(sent[1].Body, "messages").Array()
	last := msgs[len(msgs)-1]
	if prev := msgs[len(msgs)-2]; prev.Get("content.#(type==\"tool_use\").name").Str != "exec_command" ||
		!strings.Contains(last.Get("content.#(type==\"tool_result\").content").Raw, "metis-codex-ok") ||
		last.Get("content.#(type==\"tool_result\").tool_use_id").Str != prev.Get("content.#(type==\"tool_use\").id").Str {
		t.Errorf("turn 2 ends with %s then %s", prev.Raw, last.Raw)
	}

	calls := e2eCalls(g, 2)
	for i, want := range []float64{0.009155, 0.009245} {
		e2eWant(t, "call", calls[i], map[string]any{"provider": "anthropic", "model": "claude-haiku-4-5", "stream": true,
			"usage_source": "provider", "gateway_key_id": k.ID, "inbound_shape": "openai"})
		if cost := e2eCost(t, calls[i]); !e2eNear(cost, want) || calls[i]["error_class"] != nil || calls[i]["session_id"] == "" {
			t.Errorf("call %d: %v, want cost %v", i, calls[i], want)
		}
		e2eCheckTriple(g, calls[i])
	}
}
