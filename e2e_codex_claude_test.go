package metis

// What Codex CLI and other Responses API clients read from the gateway's
// refusals and errors: a spent budget ends the run at once, one with room
// again within seconds is waited out, a prompt too long for Claude's
// context window is recognised, and a tool the client runs is refused for
// a Claude model rather than silently dropped (confirmation 18L, review
// 18R3).

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/metisgateway/metis/budget"
	"github.com/metisgateway/metis/internal/fakeupstream"
	"github.com/metisgateway/metis/store"
)

// A key whose daily hard limit cannot cover Codex's next call is refused
// as OpenAI refuses a spent quota (429 insufficient_quota), on which Codex
// stops at once saying so. A rate limit's Retry-After, the hours to the
// window's reset, would have Codex sleep them out ("Reconnecting...
// 1/5") and retry.
//
// claude-haiku-4-5, $1 in / $5 out per MTok, hard limit $0.45. The first
// call is billed 100,000 input tokens + 2 out: $0.10001. Codex's call to
// haiku reserves 64,000 out × $5/MTok = $0.32 plus its ~64 KB prompt at
// the cache-write price (~$0.04): about $0.36, which fits the limit alone
// but not next to $0.10 spent, so the refusal names a reset hours away.
func TestCodexCLIClaudeBudgetRefusalEndsPromptly(t *testing.T) {
	bin := codexBinary(t)
	g, up := e2eSetup(t, "")
	k, tok := e2eKey(g, "codex-capped")
	capKey(t, g, k, 0.45)
	up.Enqueue("/v1/messages", fakeupstream.AnthropicMessage(haikuModel, 100000, "end_turn", fakeupstream.TextBlock("ok")))
	resp := g.post("/v1/responses", tok, `{"model":"haiku","max_output_tokens":100,"input":"hi"}`)
	if b := e2eRead(t, resp); resp.StatusCode != http.StatusOK {
		t.Fatalf("seeding spend: %d %s", resp.StatusCode, b)
	}
	g.waitEvents(store.TypeCallCompleted, 1)

	run := runCodex(t, bin, g.URL, tok, "haiku", "Say hi.", 45*time.Second)
	out := strings.ToLower(run.stdout + run.stderr)
	if run.killed || run.took > 30*time.Second || !(strings.Contains(out, "quota") || strings.Contains(out, "budget")) {
		t.Errorf("codex exec on a key over its budget ran %v (killed: %v); want it to stop within 30 s saying why, as on OpenAI's insufficient_quota.\nrefusals: %v\noutput tail:\n%s",
			run.took.Round(time.Second), run.killed, g.refusals(), tail(run.stdout+run.stderr, 600))
	}
	if n := up.Count("/v1/messages"); n != 1 {
		t.Errorf("%d requests reached the provider, want only the seeding one", n)
	}
}

// tail is the last n bytes of s.
func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// Tool types the client runs itself (apply_patch, local_shell: the
// Agents SDK's applyPatchTool, older Codex) and tool types OpenAI does not
// know (a typo) are refused for a Claude model with a 400 naming the tool:
// dropped as hosted tools are (LOSSY #31), they would leave the model
// silently without a way to edit files or run commands.
func TestResponsesToClaudeDoesNotDropClientToolsSilently(t *testing.T) {
	g, up := e2eSetup(t, "")
	_, tok := e2eKey(g, "agents")
	for _, tool := range []string{
		`{"type":"apply_patch"}`,
		`{"type":"local_shell"}`,
		`{"type":"functoin","name":"get_weather","parameters":{"type":"object"}}`,
	} {
		n := up.Count("/v1/messages")
		resp := g.post("/v1/responses", tok, `{"model":"haiku","input":"Fix the typo in README.md.","tools":[`+tool+`]}`)
		b := e2eRead(t, resp)
		if resp.StatusCode != http.StatusBadRequest || gjson.Get(b, "error.type").Str != "invalid_request_error" ||
			!strings.HasPrefix(gjson.Get(b, "error.param").Str, "tools[0]") {
			var sent string
			if r := up.RequestsTo("/v1/messages"); len(r) > n {
				sent = r[len(r)-1].Body
			}
			t.Errorf("tool %s to a Claude model: %d %.200s; the provider got %s; want a 400 naming tools[0]", tool, resp.StatusCode, b, sent)
		}
	}
}

// Claude's context overflow (400 invalid_request_error "prompt is too
// long: … tokens > … maximum") reaches a Responses API client with
// OpenAI's code for it, context_length_exceeded, which Codex CLI
// recognises ("Codex ran out of room in the model's context window…")
// rather than printing the body, and with the ">" unescaped.
func TestCodexCLIClaudeContextOverflowRecognised(t *testing.T) {
	bin := codexBinary(t)
	g, up := e2eSetup(t, "")
	_, tok := e2eKey(g, "codex")
	up.Enqueue("/v1/messages", fakeupstream.AnthropicError(http.StatusBadRequest, "invalid_request_error", "prompt is too long: 215000 tokens > 200000 maximum"))
	run := runCodex(t, bin, g.URL, tok, "haiku", "Say hi.", 60*time.Second)
	out := run.stdout + run.stderr
	if !strings.Contains(out, "context window") || strings.Contains(out, `\u003e`) {
		t.Errorf("codex exec after Claude's context overflow printed:\n%s\nwant Codex's context-window message, as for OpenAI's context_length_exceeded", tail(out, 800))
	}
}

// A key with a rolling 20-second budget (a spend-rate limit): the seeding
// call's charge ages out of the window 20 s after it was made, so Codex's
// next call fits then, and the refusal says so (Retry-After ≤ 21 s). Codex
// sleeps out a rate limit's Retry-After and retries; on insufficient_quota
// it stops at once with "Quota exceeded. Check your plan and billing
// details.".
//
// gpt-5-nano, $0.05 in / $0.40 out per MTok. Seed: 2,000,000 in + 2 out =
// $0.1000008. Codex's worst case: 128,000 out × $0.40/MTok = $0.0512, its
// ~64 KB prompt ≈ 32,000 in × $0.05/MTok = $0.0016, web_search's 10
// searches × $0.01 = $0.10: ≈ $0.153, under the $0.20 limit alone (not
// Never) but not beside the $0.10 spent.
func TestCodexCLIWaitsOutShortRollingBudget(t *testing.T) {
	bin := codexBinary(t)
	g, up := e2eSetup(t, "")
	k, tok := e2eKey(g, "codex-rate")
	setBudget(t, g.DB, budget.Budget{Scope: "key", Subject: k.ID, Window: "20s", Hard: 0.20})
	waitApplies(t, g, budget.Identity{KeyID: k.ID})
	up.Enqueue("/v1/responses", fakeupstream.ResponsesAnswer{Model: "gpt-5-nano-2025-08-07", InputTokens: 2000000, Text: "ok"}.Body())
	resp := g.post("/v1/responses", tok, `{"model":"gpt-5-nano","max_output_tokens":100,"input":"hi"}`)
	if b := e2eRead(t, resp); resp.StatusCode != http.StatusOK {
		t.Fatalf("seeding spend: %d %s", resp.StatusCode, b)
	}
	g.waitEvents(store.TypeCallCompleted, 1)
	// The refusal is a rate limit worth waiting out: Retry-After within
	// the window, no x-should-retry false, not a spent quota.
	resp = g.post("/v1/responses", tok, `{"model":"gpt-5-nano","input":"hi","tools":[{"type":"web_search"}]}`)
	b := e2eRead(t, resp)
	if ra, _ := strconv.Atoi(resp.Header.Get("Retry-After")); resp.StatusCode != http.StatusTooManyRequests || ra < 1 || ra > 21 ||
		resp.Header.Get("X-Should-Retry") != "" || gjson.Get(b, "error.code").Str != "rate_limit_exceeded" {
		t.Errorf("a refusal with room again within 21 s: %d %v %s", resp.StatusCode, resp.Header, b)
	}
	up.Enqueue("/v1/responses", fakeupstream.ResponsesAnswer{Model: "gpt-5-nano-2025-08-07", InputTokens: 9000, Text: "metis-waited-ok"}.Stream())

	run := runCodex(t, bin, g.URL, tok, "gpt-5-nano", "Say hi.", 90*time.Second)
	if !strings.Contains(run.stdout, "metis-waited-ok") {
		t.Errorf("codex exec on a key whose rolling 20 s budget has room again within 21 s gave up after %v:\n%s\nrefusals: %v",
			run.took.Round(time.Second), tail(run.stdout+run.stderr, 300), g.events(store.TypeRequestRejected))
	}
}
