package metis

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/metisgateway/metis/store"
)

// A key row written before names were checked cannot break list-keys: its
// control characters are shown escaped, on one line.
func TestListKeysEscapesControlCharacters(t *testing.T) {
	var out bytes.Buffer
	printKeys(&out, []store.Key{{ID: "gk_01", Name: "evil\x1b[2J\ngk_FAKE  injected", CreatedAt: time.Now()}}, time.Now())
	text := out.String()
	if strings.ContainsRune(text, '\x1b') {
		t.Errorf("list-keys printed a raw escape sequence: %q", text)
	}
	if lines := strings.Split(strings.TrimSpace(text), "\n"); len(lines) != 2 || strings.HasPrefix(lines[1], "gk_FAKE") {
		t.Errorf("list-keys printed %d lines for one key:\n%s", len(lines), text)
	}
	if !strings.Contains(text, `"evil\x1b[2J\ngk_FAKE  injected"`) {
		t.Errorf("the name is not shown escaped:\n%s", text)
	}
}

// A mistyped model id in --models gets a hint naming the id it is closest
// to, or its lower case; aliases, catalogue ids and dated versions do not.
func TestIssueKeyHintsAtMistypedModels(t *testing.T) {
	db := tempDB(t)
	cmd := issueKeyCommand()
	cmd.Flags().String("db", "", "")
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs([]string{"--name", "typo", "--models", "haiku,claude-opus-4-8x,anthropic:claude-sonet-4-5,gpt-5-mini,claude-haiku-4-5-20251001,my-local-llama,claude-sonnet,claude-sonnet-4,local:llama3:70b,HAIKU,local:Qwen2.5-7B-Instruct,Claude-Sonnet-4-5", "--db", db})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), "key_id: gk_") {
		t.Errorf("the key was not issued: %q", out.String())
	}
	got := errOut.String()
	for _, want := range []string{`"claude-opus-4-8x" is not in the price catalogue; if you meant "claude-opus-4-8", issue the key again`,
		`"anthropic:claude-sonet-4-5" is not in the price catalogue; if you meant "claude-sonnet-4-5", issue the key again`,
		`"HAIKU" has capitals, but models are matched exactly as written; if you meant "haiku"`,
		`"Claude-Sonnet-4-5" has capitals, but models are matched exactly as written; if you meant "claude-sonnet-4-5"`} {
		if !strings.Contains(got, want) {
			t.Errorf("stderr %q lacks %q", got, want)
		}
	}
	if n := strings.Count(got, "warning:"); n != 4 {
		t.Errorf("%d warnings, want 4 (haiku, gpt-5-mini, a dated id, local models and a shortened id are fine): %s", n, got)
	}
}

// prune deletes what is older than --older-than and says how much.
func TestPruneCommand(t *testing.T) {
	db := tempDB(t)
	s, err := store.Open(db, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cost := 0.25
	for _, age := range []time.Duration{100 * 24 * time.Hour, 40 * 24 * time.Hour, time.Hour} {
		at := time.Now().Add(-age)
		if !s.Enqueue(store.Event{Type: store.TypeCallCompleted, Time: at, Payload: &store.Call{TurnID: "t", Status: 200, Model: "m", CostUSD: &cost, Priced: true}}) {
			t.Fatal("queue full")
		}
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	cmd := pruneCommand()
	cmd.Flags().String("db", "", "")
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetArgs([]string{"--older-than", "60d", "--db", db})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), "pruned 1 events and 1 calls dated before ") {
		t.Errorf("prune printed %q, want one event and one call", out.String())
	}
}

// issue-key and set-budget say when they created the database: a key
// written to a file the gateway does not use (its Caddyfile names another)
// is answered with a 401, and nothing else pointed at the cause (audit
// 12A). Once the file exists they say nothing of it.
func TestCommandsSayWhenTheyCreateTheDatabase(t *testing.T) {
	run := func(cmd *cobra.Command, args ...string) string {
		cmd.Flags().String("db", "", "")
		var out, errOut bytes.Buffer
		cmd.SetOut(&out)
		cmd.SetErr(&errOut)
		cmd.SetArgs(args)
		if err := cmd.Execute(); err != nil {
			t.Fatal(err)
		}
		return errOut.String()
	}
	keys, budgets := tempDB(t), tempDB(t)
	if got := run(issueKeyCommand(), "--name", "first", "--db", keys); !strings.Contains(got, "created a new trace database at "+keys) {
		t.Errorf("first issue-key: stderr %q does not name the new database", got)
	}
	if got := run(issueKeyCommand(), "--name", "second", "--db", keys); strings.Contains(got, "created") {
		t.Errorf("second issue-key: stderr %q", got)
	}
	setBudget := func() *cobra.Command { return setBudgetCommand(func(f runFunc) runFunc { return f }) }
	if got := run(setBudget(), "--user", "alice", "--window", "daily", "--hard", "5", "--db", budgets); !strings.Contains(got, "created a new trace database at "+budgets) {
		t.Errorf("set-budget: stderr %q does not name the new database", got)
	}
	if got := run(setBudget(), "--user", "bob", "--window", "daily", "--hard", "5", "--db", budgets); strings.Contains(got, "created") {
		t.Errorf("second set-budget: stderr %q", got)
	}
}
