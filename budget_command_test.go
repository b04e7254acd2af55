//go:build cgo

package metis

import (
	"bytes"
	"context"
	"io"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/metisgateway/metis/store"
)

// runBudgetCLI runs `metis <args…>` with the budget commands under a parent
// that has the persistent --db flag, returning stdout and the error (the
// commands are built without runE, so errors come back instead of exiting).
func runBudgetCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := &cobra.Command{Use: "metis", SilenceErrors: true, SilenceUsage: true}
	root.PersistentFlags().String("db", "", "database")
	root.AddCommand(budgetCommandsWith(func(f runFunc) runFunc { return f })...)
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(io.Discard) // notes, such as a database created
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), err
}

func TestBudgetCommands(t *testing.T) {
	db := filepath.Join(t.TempDir(), "m", "metis.db")
	out, err := runBudgetCLI(t, "set-budget", "--db", db, "--team", "eng", "--window", "monthly", "--hard", "500", "--soft", "400", "--tz", "Europe/Berlin")
	if err != nil {
		t.Fatalf("set-budget: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !regexp.MustCompile(`^budget_id: bd_[0-9A-Z]{26}$`).MatchString(lines[0]) {
		t.Fatalf("set-budget output:\n%s", out)
	}
	id := strings.TrimPrefix(lines[0], "budget_id: ")
	if !regexp.MustCompile(`^team "eng" monthly budget: hard \$500\.00, soft \$400\.00; \$0\.00 spent this window, resets at \d{4}-\d\d-01T00:00:00\+0[12]:00$`).MatchString(lines[1]) {
		t.Fatalf("set-budget summary: %s", lines[1])
	}
	ws := t.TempDir()
	if _, err := runBudgetCLI(t, "set-budget", "--db", db, "--workspace", ws+"/./", "--window", "72h", "--hard", "$20"); err != nil {
		t.Fatalf("set-budget --workspace: %v", err)
	}
	// A key budget needs a key the database has: a mistyped id is refused.
	if _, err := runBudgetCLI(t, "set-budget", "--db", db, "--key", "gk_01ABC", "--window", "daily", "--hard", "5"); err == nil ||
		!strings.Contains(err.Error(), "no such gateway key") {
		t.Fatalf("set-budget on an unknown key: %v, want no such gateway key", err)
	}
	s, err := store.Open(db, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	k, _, err := s.IssueKey(context.Background(), store.IssueParams{Name: "budgeted"})
	if cerr := s.Close(context.Background()); err != nil || cerr != nil {
		t.Fatalf("issuing a key: %v %v", err, cerr)
	}
	// Limits finer than a cent are shown as set, not rounded to cents.
	out, err = runBudgetCLI(t, "set-budget", "--db", db, "--key", k.ID, "--window", "daily", "--hard", "0.035", "--soft", "0.0045")
	if err != nil || !strings.Contains(out, "hard $0.035, soft $0.0045; $0.00 spent") {
		t.Fatalf("set-budget --key: %v\n%s", err, out)
	}

	out, err = runBudgetCLI(t, "list-budgets", "--db", db)
	if err != nil {
		t.Fatalf("list-budgets: %v", err)
	}
	rows := strings.Split(strings.TrimSpace(out), "\n")
	if len(rows) != 4 || strings.Join(strings.Fields(rows[0]), " ") != "ID SCOPE SUBJECT WINDOW TZ HARD SOFT SPENT RESERVED RESETS STATE" {
		t.Fatalf("list-budgets:\n%s", out)
	}
	want := map[string]string{
		"key":       k.ID + " daily UTC 0.035 0.0045 0.00 0.00",
		"team":      "eng monthly Europe/Berlin 500.00 400.00 0.00 0.00",
		"workspace": ws + " 72h UTC 20.00 - 0.00 0.00 rolling ok",
	}
	for _, r := range rows[1:] {
		f := strings.Fields(r)
		if w, ok := want[f[1]]; !ok || !strings.HasPrefix(strings.Join(f[2:], " "), w) || f[len(f)-1] != "ok" {
			t.Errorf("list-budgets row %q, want scope %s with %q", r, f[1], w)
		}
		if f[1] == "team" && f[0] != id {
			t.Errorf("team row id %s, set-budget said %s", f[0], id)
		}
	}

	// Setting again updates in place.
	out, err = runBudgetCLI(t, "set-budget", "--db", db, "--team", "eng", "--window", "Monthly", "--hard", "600", "--tz", "Europe/Berlin")
	if err != nil || !strings.Contains(out, "budget_id: "+id) {
		t.Fatalf("re-set kept id? %v\n%s", err, out)
	}

	out, err = runBudgetCLI(t, "clear-budget", "--db", db, "--team", "eng", "--window", "monthly")
	if err != nil || out != "cleared: team \"eng\" monthly budget\n" {
		t.Fatalf("clear-budget: %v %q", err, out)
	}
	if _, err := runBudgetCLI(t, "clear-budget", "--db", db, "--team", "eng", "--window", "monthly"); err == nil || err.Error() != `no team "eng" monthly budget to clear` {
		t.Fatalf("clearing twice: %v", err)
	}
	out, _ = runBudgetCLI(t, "list-budgets", "--db", db)
	if strings.Contains(out, "eng") || len(strings.Split(strings.TrimSpace(out), "\n")) != 3 {
		t.Fatalf("list after clear:\n%s", out)
	}
}

func TestBudgetCommandErrors(t *testing.T) {
	db := filepath.Join(t.TempDir(), "metis.db")
	t.Setenv("METIS_DB", db)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"set-budget", "--window", "daily", "--hard", "5"}, "one of --key"},
		{[]string{"set-budget", "--team", "a", "--user", "b", "--window", "daily", "--hard", "5"}, "not --user and --team"},
		{[]string{"set-budget", "--key", "alice", "--window", "daily", "--hard", "5"}, "not a key id"},
		{[]string{"set-budget", "--team", "a", "--hard", "5"}, "--window is required"},
		{[]string{"set-budget", "--team", "a", "--window", "yearly", "--hard", "5"}, "bad window"},
		{[]string{"set-budget", "--team", "a", "--window", "daily"}, "--hard is required"},
		{[]string{"set-budget", "--team", "a", "--window", "daily", "--hard", "five"}, "bad --hard"},
		{[]string{"set-budget", "--team", "a", "--window", "daily", "--hard", "5", "--soft", "6"}, "below the hard limit"},
		{[]string{"set-budget", "--team", "a", "--window", "daily", "--hard", "5", "--tz", "Mars/Base"}, "unknown time zone"},
		{[]string{"clear-budget", "--team", "a"}, "--window is required"},
		{[]string{"clear-budget", "--team", "a", "--window", "weekly"}, `no team "a" weekly budget to clear`},
	} {
		_, err := runBudgetCLI(t, c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%v: error %v, want one line containing %q", c.args, err, c.want)
		}
	}
	// METIS_DB was used when --db is absent.
	if _, err := runBudgetCLI(t, "set-budget", "--user", "u", "--window", "weekly", "--hard", "1"); err != nil {
		t.Fatal(err)
	}
	if out, _ := runBudgetCLI(t, "list-budgets", "--db", db); !strings.Contains(out, " u ") {
		t.Fatalf("budget set via METIS_DB not in %s:\n%s", db, out)
	}
}

// A rolling window under an hour is allowed (a rate limit worth waiting
// out), but `--window 1m` is said back as what it is: a minute, not the
// month it is often meant as (audit 24O).
func TestSetBudgetSaysAMinuteIsAMinute(t *testing.T) {
	db := filepath.Join(t.TempDir(), "m", "metis.db")
	root := &cobra.Command{Use: "metis", SilenceErrors: true, SilenceUsage: true}
	root.PersistentFlags().String("db", "", "database")
	root.AddCommand(budgetCommandsWith(func(f runFunc) runFunc { return f })...)
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs([]string{"set-budget", "--db", db, "--team", "eng", "--window", "1m", "--hard", "500"})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(errOut.String(), "note: 1m is a rolling window of 1m0s; for a calendar month use --window monthly") {
		t.Errorf("set-budget --window 1m said on stderr: %q", errOut.String())
	}
}
