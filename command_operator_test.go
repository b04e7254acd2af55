//go:build cgo

package metis

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"

	"github.com/metisgateway/metis/store"
)

// metisRoot builds `caddy metis` as Caddy's own command line does (the
// registered command under a root), so what an operator types is what runs.
func metisRoot(t *testing.T) (*cobra.Command, *bytes.Buffer) {
	t.Helper()
	reg, ok := caddycmd.Commands()["metis"]
	if !ok {
		t.Fatal("no registered metis command")
	}
	root := &cobra.Command{Use: "caddy", SilenceUsage: true}
	cmd := &cobra.Command{Use: reg.Name + " " + reg.Usage, Short: reg.Short, Long: reg.Long}
	reg.CobraFunc(cmd)
	root.AddCommand(cmd)
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	return root, &out
}

// Audit 24O: `caddy metis revoke gk_…` (revoke-key mistyped, as one says it)
// prints the help and exits 0, so a revocation script reports success while
// the key stays active. An unknown subcommand must be an error (exit 1), as
// `caddy revoke` is at the top level.
func TestMetisUnknownSubcommandIsAnError(t *testing.T) {
	db := tempDB(t)
	s, err := store.Open(db, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	closeStore(s)
	for _, args := range [][]string{
		{"metis", "revoke", "gk_01M8JE6F7EEBPTJH5T5MMHEG62", "--db", db},
		{"metis", "list-key", "--db", db},
		{"metis", "issue", "--name", "x", "--db", db},
		{"metis", "help", "revoke"},
	} {
		root, out := metisRoot(t)
		root.SetArgs(args)
		if err := root.Execute(); err == nil {
			t.Errorf("caddy %s: no error (exit status 0); output starts %q", strings.Join(args, " "), firstLine(out.String()))
		}
	}
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// Audit 24O: the analytics name keys without a user (or team) `untagged`
// (README "Analytics API": by_user, by_team and the `untagged` filter), yet
// issue-key accepts --user untagged and --team untagged, and set-budget a
// budget on that user. Such a key's calls are then summed with the keys
// that have no user, and the row's quota is the literal user's budget,
// which does not cover the others: measured, the `untagged` row showed 9
// calls from 3 keys under a $0.0005 budget that had refused 4 calls of one
// of them and covered none of the other two. The name should be refused.
func TestUntaggedIsNotAnIdentityName(t *testing.T) {
	db := tempDB(t)
	s, err := store.Open(db, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer closeStore(s)
	for _, flag := range []string{"--user", "--team"} {
		p := store.IssueParams{Name: "k"}
		if flag == "--user" {
			p.User = "untagged"
		} else {
			p.Team = "untagged"
		}
		// What issue-key runs (the command exits on its error).
		if _, _, err := s.IssueKey(context.Background(), p); err == nil {
			t.Errorf("issue-key %s untagged issued a key whose calls the analytics cannot tell from those of keys without a %s",
				flag, strings.TrimPrefix(flag, "--"))
		}
		if _, err := runBudgetCLI(t, "set-budget", "--db", db, flag, "untagged", "--window", "daily", "--hard", "5"); err == nil {
			t.Errorf("set-budget %s untagged: accepted; the analytics show it as the quota of the keys without a %s, which it does not cover",
				flag, strings.TrimPrefix(flag, "--"))
		}
	}
}

// Listing keys and budgets reads the database: another process's write
// (a gateway's batch, a long prune) does not hold it up. Both opened a
// BEGIN IMMEDIATE transaction to check the schema, and failed after 10 s
// with "database is locked" (audit 24O).
func TestListingWaitsForNoWriter(t *testing.T) {
	db := tempDB(t)
	if _, err := runBudgetCLI(t, "set-budget", "--db", db, "--team", "eng", "--window", "daily", "--hard", "5"); err != nil {
		t.Fatal(err)
	}
	s, err := store.Open(db, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	closeStore(s)
	release := holdWriteLock(t, db)
	defer release()
	start := time.Now()
	out, err := runBudgetCLI(t, "list-budgets", "--db", db)
	if err != nil || !strings.Contains(out, " eng ") {
		t.Errorf("list-budgets while another process writes: %v\n%s", err, out)
	}
	s, err = store.Open(db, store.Options{}) // what list-keys opens
	if err != nil {
		t.Errorf("opening the database to list keys while another process writes: %v", err)
	} else {
		closeStore(s)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("listing took %v while another process held the write lock", d.Round(time.Millisecond))
	}
}

// Review 24R2 of ff3dac0 (cmd.Args = cobra.NoArgs on `caddy metis`). The
// fix makes `caddy metis help` and `caddy metis help issue-key` errors
// ("Error: unknown command \"help\" for \"caddy metis\"", exit status 1):
// before it they printed the help, as `caddy help`, `git help` and every
// cobra root do (cobra adds its help command to the root alone). An
// operator asking for help is told the command does not exist; `caddy
// metis help issue-key` should show issue-key's help.
func TestMetisHelpSubcommandStillHelps(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"metis", "help"}, "issue-key"},
		{[]string{"metis", "help", "issue-key"}, "--expires"},
	} {
		root, out := metisRoot(t)
		root.SetArgs(c.args)
		if err := root.Execute(); err != nil {
			t.Errorf("caddy %s: %v", strings.Join(c.args, " "), err)
			continue
		}
		if !strings.Contains(out.String(), c.want) {
			t.Errorf("caddy %s: output lacks %q: %q", strings.Join(c.args, " "), c.want, firstLine(out.String()))
		}
	}
}
