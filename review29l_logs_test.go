package metis

// Session 29: the operator's log, after review 28L's notes.

import (
	"io"
	"testing"

	"github.com/metisgateway/metis/internal/fakeupstream"
)

// A provider that answers 529 (overloaded) or 429 until the gateway's
// retries are spent is a provider fault the operator needs to see when
// filtering on WARN, as an unreachable one is: one line naming the
// provider, model, key, status and attempts for the first call of a
// burst, the rest counted. A 400 is the request's own fault: no WARN.
func TestProviderErrorAnswersAreWarnedOncePerBurst(t *testing.T) {
	up := fakeupstream.New(t)
	g, logPath, _ := e2eStartLogged(t, up, "INFO", "")
	k, tok := e2eKey(g, "overloaded")
	post := func(want int) {
		t.Helper()
		resp := g.post("/v1/messages", tok, `{"model":"claude-haiku-4-5","max_tokens":8,"messages":[{"role":"user","content":"x"}]}`, e2eAnthropicHdr...)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("status %d, want the provider's %d", resp.StatusCode, want)
		}
	}
	up.Enqueue("/v1/messages", fakeupstream.AnthropicError(400, "invalid_request_error", "max_tokens: too large"))
	post(400)
	const calls = 3
	for range calls {
		// The default max_retries is 2: three 529s per call, no retry-after.
		for range 3 {
			up.Enqueue("/v1/messages", fakeupstream.AnthropicError(529, "overloaded_error", "Overloaded"))
		}
		post(529)
	}
	waitLogLines(t, logPath, "llm call", calls+1)
	warns := logLinesMsg(t, logPath, "provider answered an error")
	if len(warns) != 1 {
		t.Fatalf("%d WARN \"provider answered an error\" lines for %d overloaded calls and one 400 within seconds, want 1 (then counted): %v",
			len(warns), calls, warns)
	}
	l := warns[0]
	for field, want := range map[string]any{"level": "warn", "provider": "anthropic", "key_id": k.ID, "model": "claude-haiku-4-5",
		"status": float64(529), "error_class": "UPSTREAM_ERROR", "attempts": float64(3)} {
		if l[field] != want {
			t.Errorf("%q = %v, want %v: %v", field, l[field], want, l)
		}
	}
}

// The llm call line names the endpoint (28L: a Responses call logged
// inbound_shape openai and nothing more, so an operator could not tell
// Codex's calls from chat completions without the trace).
func TestCallLogLineNamesTheEndpoint(t *testing.T) {
	up := fakeupstream.New(t)
	g, logPath, _ := e2eStartLogged(t, up, "INFO", "")
	_, tok := e2eKey(g, "codex")
	up.Enqueue("/v1/responses", fakeupstream.ResponsesAnswer{Model: "gpt-5-nano-2025-08-07", InputTokens: 900, Text: "ok"}.Body())
	resp := g.post("/v1/responses", tok, `{"model":"gpt-5-nano","input":"hi"}`, "Authorization", "Bearer "+tok)
	if body, _ := io.ReadAll(resp.Body); resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	resp.Body.Close()
	up.Enqueue("/v1/messages", fakeupstream.AnthropicMessage("claude-haiku-4-5", 10, "end_turn", fakeupstream.TextBlock("hi")))
	post := g.post("/v1/messages", tok, `{"model":"claude-haiku-4-5","max_tokens":8,"messages":[{"role":"user","content":"x"}]}`, e2eAnthropicHdr...)
	io.Copy(io.Discard, post.Body)
	post.Body.Close()
	lines := waitLogLines(t, logPath, "llm call", 2)
	if len(lines) != 2 || lines[0]["endpoint"] != "responses" || lines[1]["endpoint"] != "messages" {
		t.Errorf("llm call lines' endpoints: want responses, then messages: %v", lines)
	}
}

// An error inside a 200 warns only when it is the provider's (an
// overload, a rate limit, a server error), as statuses do: a 200 whose
// body is an invalid_request_error is the request's fault (review 29R2).
func TestErrorBodyOfTheRequestsOwnIsNotWarned(t *testing.T) {
	up := fakeupstream.New(t)
	g, logPath, _ := e2eStartLogged(t, up, "INFO", "")
	_, tok := e2eKey(g, "bad-request")
	for _, typ := range []string{"invalid_request_error", "server_error"} {
		up.Enqueue("/v1/chat/completions", fakeupstream.Reply{Status: 200,
			Body: `{"error":{"message":"no","type":"` + typ + `","param":null,"code":null}}`})
		resp := g.post("/v1/chat/completions", tok, `{"model":"gpt-5-mini","messages":[{"role":"user","content":"x"}]}`, "Authorization", "Bearer "+tok)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	waitLogLines(t, logPath, "llm call", 2)
	warns := logLinesMsg(t, logPath, "provider answered an error")
	if len(warns) != 1 || warns[0]["error_type"] != "server_error" {
		t.Errorf("WARN lines %v: want one, for the server_error only", warns)
	}
}
