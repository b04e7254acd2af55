//go:build cgo

package metis

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/metisgateway/metis/store"
)

// Review 27R of 695151b (set-models). set-models reuses issue-key's model
// hints, whose advice is to "issue the key again" because "this key is
// issued as asked": for set-models both are wrong. The key already exists,
// keeps its token, and the fix for a typo is to run set-models again; an
// operator who follows the advice hands the developer a new token, which
// is what set-models exists to avoid.
func TestSetModelsHintsDoNotSayIssueTheKeyAgain(t *testing.T) {
	db := tempDB(t)
	s, err := store.Open(db, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	k, _, err := s.IssueKey(context.Background(), store.IssueParams{Name: "alice-laptop", AllowedModels: []string{"haiku"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, models := range []string{"claude-opus-4-8x", "HAIKU"} {
		root := &cobra.Command{Use: "metis", SilenceErrors: true, SilenceUsage: true}
		root.PersistentFlags().String("db", "", "database")
		root.AddCommand(setModelsCommand(func(f runFunc) runFunc { return f }))
		var out, errOut bytes.Buffer
		root.SetOut(&out)
		root.SetErr(&errOut)
		root.SetArgs([]string{"set-models", k.ID, "--models", models, "--db", db})
		if err := root.Execute(); err != nil {
			t.Fatalf("set-models --models %s: %v", models, err)
		}
		warn := errOut.String()
		if !strings.Contains(warn, "warning:") {
			t.Fatalf("set-models --models %s: no hint at all (stderr %q)", models, warn)
		}
		if strings.Contains(warn, "issue the key again") || strings.Contains(warn, "is issued as asked") {
			t.Errorf("set-models --models %s tells the operator to issue the key again, though the key exists and keeps its token:\n%s", models, warn)
		}
	}
}
