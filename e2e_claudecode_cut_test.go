package metis

// Claude Code against a provider whose stream breaks off mid-answer: the
// same provider failure must make Claude Code recover the same way through
// the gateway as directly (audit 14c).

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/metisgateway/metis/internal/fakeupstream"
	"github.com/metisgateway/metis/store"
)

// Directly, a provider stream cut after some content_block_deltas makes
// Claude Code retry the streamed request (after ~0.6 s back-off). Through
// the gateway, which relays the events and ends the stream with
// `event: error` (api_error, "the provider's stream was interrupted"),
// Claude Code instead falls back at once to a non-streaming request
// (stream:false, max_tokens and thinking unchanged) and keeps every later
// retry of that turn non-streaming.
func TestE2EClaudeCodeStreamCutRetriesLikeDirect(t *testing.T) {
	bin := e2eClaudeBinary(t)
	streamed := func(r *fakeupstream.Recorded) bool { return r.JSON()["stream"] == true }
	unstreamed := func(r *fakeupstream.Recorded) bool { return r.JSON()["stream"] != true }
	script := func(up *fakeupstream.Server) {
		cut := fakeupstream.AnthropicTextStream("claude-opus-5-5", "I'd be happy to check the weather in San Francisco for you right away.")
		cut.DieAfter = 5 // message_start, content_block_start, 3 deltas
		cut.Match = streamed
		ok := fakeupstream.AnthropicTextStream("claude-opus-5-5", "streamed-retry-ok")
		ok.Match = streamed
		ns := fakeupstream.AnthropicMessage("claude-opus-5-5", 100, "end_turn", fakeupstream.TextBlock("nonstream-retry-ok"))
		ns.Match = unstreamed
		up.Enqueue("/v1/messages", cut, ok, ns)
	}
	run := func(baseURL, key, dir string) string {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := fakeupstream.ClaudeCommand(ctx, bin, baseURL, key, dir, "", "Weather in SF?")
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("claude via %s: %v\nstdout: %s\nstderr: %s", baseURL, err, stdout.String(), stderr.String())
		}
		return stdout.String()
	}
	flags := func(up *fakeupstream.Server) []bool {
		var out []bool
		for _, r := range up.RequestsTo("/v1/messages") {
			out = append(out, r.JSON()["stream"] == true)
		}
		return out
	}

	// Directly against the provider.
	direct := fakeupstream.New(t)
	script(direct)
	directOut := run(direct.URL, "sk-ant-direct", t.TempDir())
	directFlags := flags(direct)

	// Through the gateway.
	g, up := e2eSetup(t, "")
	dir := t.TempDir()
	_, tok := g.issueKey(store.IssueParams{Name: "cc-cut", Workspace: dir})
	script(up)
	gwOut := run(g.URL, tok, dir)
	gwFlags := flags(up)

	t.Logf("direct: provider requests stream=%v, printed %q", directFlags, directOut)
	t.Logf("gateway: provider requests stream=%v, printed %q", gwFlags, gwOut)
	if fmt.Sprint(directFlags) != "[true true]" {
		t.Fatalf("directly, Claude Code sent stream=%v after the cut, want [true true] (a streamed retry): re-measure", directFlags)
	}
	if fmt.Sprint(gwFlags) != fmt.Sprint(directFlags) {
		t.Errorf("through the gateway Claude Code sent stream=%v for the same provider cut, directly %v: "+
			"the gateway's closing `event: error` (api_error) turns Claude Code's streamed retry into a non-streaming fallback", gwFlags, directFlags)
	}
	if gwOut != directOut {
		t.Errorf("through the gateway Claude Code printed %q, directly %q", gwOut, directOut)
	}
	// The ledger has both calls: the cut one as interrupted, the retry as
	// a success.
	calls := e2eCalls(g, 2)
	e2eWant(t, "cut call", calls[0], map[string]any{"error_class": "STREAM_INTERRUPTED", "stream": true, "usage_source": "estimated"})
	e2eWant(t, "retry", calls[1], map[string]any{"status": 200, "error_class": nil, "stream": true, "usage_source": "provider"})
}

// The same rule without the binary: a request that carries Claude Code's
// session header gets a provider's cut as a cut (the response aborted, a
// clean end where the provider ended cleanly), same shape and translated,
// while the call is recorded as interrupted; the gateway's own stops (an
// event it cannot translate) still end with an error event.
func TestE2EStreamCutRelayedAsCutToClaudeCode(t *testing.T) {
	g, up := e2eSetup(t, "")
	_, tok := e2eKey(g, "cccut")
	hdr := append([]string{"X-Claude-Code-Session-Id", "sess-cut"}, e2eAnthropicHdr...)
	read := func(t *testing.T, model string) (string, error) {
		resp := g.post("/v1/messages", tok, `{"model":"`+model+`","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"Count."}]}`, hdr...)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("status %d %s", resp.StatusCode, b)
		}
		return string(b), err
	}
	for _, tc := range []struct {
		name, path, model string
		reply             func() fakeupstream.Reply
		wantCut           bool
	}{
		{"cut", "/v1/messages", "haiku", func() fakeupstream.Reply {
			r := fakeupstream.AnthropicTextStream("claude-haiku-4-5", "alpha beta gamma delta")
			r.DieAfter = 4
			return r
		}, true},
		{"clean end", "/v1/messages", "haiku", func() fakeupstream.Reply {
			r := fakeupstream.AnthropicTextStream("claude-haiku-4-5", "alpha beta gamma delta")
			r.Events = r.Events[:4]
			return r
		}, false},
		{"translated cut", "/v1/chat/completions", "gpt-4o", func() fakeupstream.Reply {
			r := fakeupstream.OpenAITextStream("gpt-4o", "alpha beta gamma delta", 20, true)
			r.DieAfter = 3
			return r
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := e2eIn(g, t)
			up.Reset()
			up.Enqueue(tc.path, tc.reply())
			got, err := read(t, tc.model)
			if (err != nil) != tc.wantCut || strings.Contains(got, "event: error") || strings.Contains(got, "message_stop") {
				t.Errorf("read error %v, body %.300q; want the provider's ending (cut: %v) and no error event", err, got, tc.wantCut)
			}
			if !strings.Contains(got, "message_start") {
				t.Errorf("body %.300q; want the events before the cut", got)
			}
			e2eWant(t, "call", e2eCalls(g, 1)[0], map[string]any{"status": 200, "error_class": "STREAM_INTERRUPTED", "attempts": 1, "session_id": "sess-cut"})
		})
	}
	t.Run("untranslatable event", func(t *testing.T) {
		up.Reset()
		r := fakeupstream.OpenAITextStream("gpt-4o", "alpha beta gamma delta", 20, true)
		r.Events[2] = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\n\n"
		up.Enqueue("/v1/chat/completions", r)
		got, err := read(t, "gpt-4o")
		if err != nil || !strings.Contains(got, "event: error") {
			t.Errorf("read error %v, body %.300q; want the gateway's error event", err, got)
		}
	})
	t.Run("without the header", func(t *testing.T) {
		g := e2eIn(g, t)
		up.Reset()
		r := fakeupstream.AnthropicTextStream("claude-haiku-4-5", "alpha beta gamma delta")
		r.DieAfter = 4
		up.Enqueue("/v1/messages", r)
		got := e2eRead(t, g.post("/v1/messages", tok, `{"model":"haiku","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"Count."}]}`, e2eAnthropicHdr...))
		if !strings.Contains(got, "event: error") || !strings.Contains(got, interruptedMsg) {
			t.Errorf("body %.300q; want the error event", got)
		}
	})
}
