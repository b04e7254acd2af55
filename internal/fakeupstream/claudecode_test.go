package fakeupstream

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

// TestClaudeCodeBashRoundTrip runs the pinned Claude Code against the fake
// directly: it must run the scripted Bash command, send its output back as
// a tool_result and print the final text.
func TestClaudeCodeBashRoundTrip(t *testing.T) {
	bin, err := ClaudeBinary()
	if err != nil {
		if os.Getenv("METIS_REQUIRE_E2E") == "1" { // make test installs it
			t.Fatalf("Claude Code missing (run tools/install.sh): %v", err)
		}
		t.Skip(err)
	}
	s := New(t)
	s.Enqueue("/v1/messages", ClaudeCodeBashRoundTrip("echo metis-ok", "All done: metis-ok")...)

	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := ClaudeCommand(ctx, bin, s.URL, "test-provider-key", dir, "claude-sonnet-4-5", "Run echo metis-ok with Bash.")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("claude: %v\nstdout: %s\nstderr: %s", err, stdout.String(), stderr.String())
	}
	if got := strings.TrimSpace(stdout.String()); got != "All done: metis-ok" {
		t.Errorf("claude printed %q (stderr %q)", got, stderr.String())
	}
	if n := s.Pending("/v1/messages"); n != 0 {
		t.Errorf("%d scripted replies left unserved", n)
	}
	msgs := s.RequestsTo("/v1/messages")
	if len(msgs) < 2 {
		t.Fatalf("%d /v1/messages calls, want at least 2", len(msgs))
	}
	last := msgs[len(msgs)-1]
	res := ToolResults(last.Body)
	if len(res) != 1 || !strings.Contains(toText(res[0]["content"]), "metis-ok") {
		t.Errorf("tool_result %v does not carry the command's output", res)
	}
	for _, r := range msgs {
		if r.RawQuery != "beta=true" {
			t.Errorf("query %q, want beta=true", r.RawQuery)
		}
		if r.APIKey() != "test-provider-key" {
			t.Errorf("key %q", r.APIKey())
		}
		if r.Header.Get("X-Claude-Code-Session-Id") == "" {
			t.Errorf("no x-claude-code-session-id")
		}
		if r.JSON()["stream"] != true {
			t.Errorf("not streamed")
		}
	}
	if msgs[0].Header.Get("X-Claude-Code-Session-Id") != last.Header.Get("X-Claude-Code-Session-Id") {
		t.Errorf("session id changed within one run")
	}
}

func toText(v any) string {
	switch c := v.(type) {
	case string:
		return c
	case []any:
		var b strings.Builder
		for _, p := range c {
			if m, ok := p.(map[string]any); ok {
				if s, ok := m["text"].(string); ok {
					b.WriteString(s)
				}
			}
		}
		return b.String()
	}
	return ""
}
