package metis

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/agnivade/levenshtein"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"

	"github.com/metisgateway/metis/pricing"
	"github.com/metisgateway/metis/store"
)

func registerCommand() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "metis",
		Usage: "<command>",
		Short: "Manage Metis gateway keys, budgets and the trace",
		Long: `Issue, list and revoke Metis gateway keys and change the models one may
use; set, list and clear spend budgets; prune old trace rows.

The commands open the trace database directly: --db, else $METIS_DB, else
~/.metis/metis.db. issue-key and set-budget create it if it is missing; the
other commands refuse a missing one. A running gateway sees issued keys at
once, and revoked ones and changed models within about a second.`,
		CobraFunc: func(cmd *cobra.Command) {
			// An unknown subcommand is an error, not the help with exit
			// status 0: `caddy metis revoke gk_…` left a revocation
			// script reporting success with the key active (audit 24O).
			// `help [command]` stays help (review 24R2).
			cmd.Args = metisArgs
			cmd.RunE = func(cmd *cobra.Command, args []string) error {
				if len(args) > 1 {
					if sub, _, err := cmd.Find(args[1:]); err == nil && sub != cmd {
						return sub.Help()
					}
					return metisArgs(cmd, args[1:])
				}
				return cmd.Help()
			}
			cmd.PersistentFlags().String("db", "", "SQLite trace database (default $METIS_DB, else ~/.metis/metis.db)")
			cmd.AddCommand(issueKeyCommand(), listKeysCommand(), revokeKeyCommand(), setModelsCommand(runE), pruneCommand())
			cmd.AddCommand(budgetCommands()...)
		},
	})
}

// metisArgs accepts `caddy metis`, `caddy metis help [command]` and
// nothing else: any other word is an unknown command, with cobra's
// suggestions.
func metisArgs(cmd *cobra.Command, args []string) error {
	if len(args) == 0 || args[0] == "help" {
		return nil
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		msg += "\n\nDid you mean this?\n\t" + strings.Join(s, "\n\t")
	}
	return errors.New(msg)
}

// runE adapts a command function: errors are printed as one line on
// stderr with exit status 1, without cobra's usage dump.
func runE(f func(cmd *cobra.Command, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		if err := f(cmd, args); err != nil {
			fmt.Fprintf(os.Stderr, "caddy metis %s: %v\n", cmd.Name(), err)
			os.Exit(1)
		}
		return nil
	}
}

// dbPath is the database a `caddy metis` command works on: --db, else
// DefaultDBPath ($METIS_DB or ~/.metis/metis.db), with ~ expanded.
func dbPath(cmd *cobra.Command) (string, error) {
	db, _ := cmd.Flags().GetString("db")
	if db == "" {
		db = DefaultDBPath()
	}
	return expandPath(db)
}

// openStore opens the command's trace database, creating it (issue-key).
func openStore(cmd *cobra.Command) (*store.Store, error) {
	path, err := dbPath(cmd)
	if err != nil {
		return nil, err
	}
	return openTelling(cmd, path, func(p string) (*store.Store, error) { return store.Open(p, store.Options{}) })
}

// openTelling opens the database at path with open and, when that created
// it, says so on stderr: a key or budget written to a database the
// gateway does not use (its Caddyfile names another) is of no effect, and
// the gateway answers that key with a 401.
func openTelling[T any](cmd *cobra.Command, path string, open func(string) (T, error)) (T, error) {
	_, statErr := os.Stat(path)
	v, err := open(path)
	if err == nil && errors.Is(statErr, fs.ErrNotExist) {
		fmt.Fprintf(cmd.ErrOrStderr(), "note: created a new trace database at %s; the gateway must use this same file "+
			"(the db option of its Caddyfile, else $METIS_DB, else ~/.metis/metis.db)\n", path)
	}
	return v, err
}

// existingDBPath is dbPath for commands that only read or change what is
// there: a missing file is a mistyped --db or $METIS_DB, not a new
// database to create.
func existingDBPath(cmd *cobra.Command) (string, error) {
	path, err := dbPath(cmd)
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("no trace database at %s: check --db or $METIS_DB (issue-key, set-budget and the gateway create it)", path)
	} else if err != nil {
		return "", fmt.Errorf("trace database %s: %w", path, err)
	}
	return path, nil
}

// openExistingStore opens the command's trace database, which must exist.
func openExistingStore(cmd *cobra.Command) (*store.Store, error) {
	path, err := existingDBPath(cmd)
	if err != nil {
		return nil, err
	}
	return store.Open(path, store.Options{})
}

func closeStore(s *store.Store) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = s.Close(ctx)
}

// modelHints warns of --models entries that look like typos: not a model
// the built-in price catalogue knows, but within two edits of one, and not
// a shortening of it (claude-sonnet is likelier an alias than a typo). An
// alias or a model of the operator's own pricing file is not flagged
// unless it is that close to a catalogue id; the list is stored either
// way. redo says how to correct it ("issue the key again"), done what was
// done ("this key is issued as asked").
func modelHints(cat *pricing.Catalogue, models []string, redo, done string) []string {
	var known []string
	for _, prov := range []string{"anthropic", "openai"} {
		known = append(known, cat.Models(prov)...)
	}
	var hints []string
	for _, m := range models {
		id := m
		if i := strings.IndexByte(id, ':'); i >= 0 {
			id = id[i+1:]
		}
		_, catalogued := cat.Lookup(id) // Lookup forgives case
		// Capitals: a catalogue id in the wrong case, or a name in capitals
		// only (HAIKU for the haiku alias). Mixed case is left alone: local
		// models are often named so (Qwen2.5-7B-Instruct).
		if low := strings.ToLower(m); low != m && (catalogued || strings.ToUpper(m) == m) {
			hints = append(hints, fmt.Sprintf("--models %q has capitals, but models are matched exactly as written; "+
				"if you meant %q, %s with it", m, low, redo))
			continue
		}
		if catalogued || len(id) < 6 {
			continue
		}
		if slices.ContainsFunc(known, func(k string) bool { return strings.HasPrefix(k, id) }) {
			continue // a shortening of a catalogue id: likelier an alias than a typo
		}
		best, bestD := "", 3
		for _, k := range known {
			if d := levenshtein.ComputeDistance(id, k); d < bestD {
				best, bestD = k, d
			}
		}
		if best != "" {
			hints = append(hints, fmt.Sprintf("--models %q is not in the price catalogue; if you meant %q, %s "+
				"with it (%s; the key is refused models it does not list)", m, best, redo, done))
		}
	}
	return hints
}

// parseExpires accepts a Go duration (720h) or whole days (30d).
func parseExpires(v string) (time.Duration, error) {
	if v == "" {
		return 0, nil
	}
	if d, ok := strings.CutSuffix(v, "d"); ok {
		n, err := strconv.Atoi(d)
		if err == nil && n > 0 && n <= 100*365 { // a time.Duration holds 292 years
			return time.Duration(n) * 24 * time.Hour, nil
		}
	} else if d, err := time.ParseDuration(v); err == nil && d > 0 {
		return d, nil
	}
	return 0, fmt.Errorf("bad --expires %q: want a positive duration such as 720h or 30d", v)
}

func issueKeyCommand() *cobra.Command {
	c := &cobra.Command{
		Use:   "issue-key --name NAME [--workspace DIR] [--user U] [--team T] [--models a,b] [--expires 720h]",
		Short: "Issue a gateway key; its token is printed once",
		Args:  cobra.NoArgs,
	}
	f := c.Flags()
	f.String("name", "", "a name for the key, e.g. alice-laptop (required)")
	f.String("workspace", "", "the project the key's traffic is attributed to")
	f.String("user", "", "the developer the key belongs to")
	f.String("team", "", "the developer's team")
	f.String("models", "", "comma-separated models the key may use (aliases, provider:model or ids); empty = every model")
	f.String("expires", "", "lifetime of the key, e.g. 720h or 30d; empty = never expires")
	c.RunE = runE(func(cmd *cobra.Command, _ []string) error {
		name, _ := cmd.Flags().GetString("name")
		if strings.TrimSpace(name) == "" {
			return errors.New("--name is required")
		}
		p := store.IssueParams{Name: name}
		p.User, _ = cmd.Flags().GetString("user")
		p.Team, _ = cmd.Flags().GetString("team")
		if ws, _ := cmd.Flags().GetString("workspace"); ws != "" {
			abs, err := filepath.Abs(ws)
			if err != nil {
				return fmt.Errorf("--workspace: %w", err)
			}
			p.Workspace = abs
		}
		if cmd.Flags().Changed("models") {
			m, _ := cmd.Flags().GetString("models")
			var err error
			if p.AllowedModels, err = parseModels(m); err != nil {
				return fmt.Errorf("%w; leave the flag out for a key that may use every model", err)
			}
		}
		exp, _ := cmd.Flags().GetString("expires")
		var err error
		if p.ExpiresIn, err = parseExpires(exp); err != nil {
			return err
		}
		for _, hint := range modelHints(pricing.Default(), p.AllowedModels, "issue the key again", "this key is issued as asked") {
			fmt.Fprintln(cmd.ErrOrStderr(), "warning:", hint)
		}
		s, err := openStore(cmd)
		if err != nil {
			return err
		}
		defer closeStore(s)
		k, token, err := s.IssueKey(cmd.Context(), p)
		if err != nil {
			return err
		}
		fmt.Fprintf(cmd.OutOrStdout(), "key_id: %s\ntoken: %s\n", k.ID, token)
		return nil
	})
	return c
}

// parseModels reads a --models list: comma-separated, blanks ignored. An
// empty list is an error, as it would let a key use every model: --models
// "$UNSET" must not fail open.
func parseModels(m string) ([]string, error) {
	var models []string
	for _, s := range strings.Split(m, ",") {
		if s = strings.TrimSpace(s); s != "" {
			models = append(models, s)
		}
	}
	if len(models) == 0 {
		return nil, fmt.Errorf("--models %q lists no model", m)
	}
	return models, nil
}

// setModelsCommand builds set-models with wrap around its function (see
// budgetCommandsWith).
func setModelsCommand(wrap func(runFunc) runFunc) *cobra.Command {
	c := &cobra.Command{
		Use:   "set-models KEY_ID (--models a,b | --all)",
		Short: "Change the models a gateway key may use; a running gateway applies it within seconds",
		Long: `Change the models a gateway key may use, without issuing a new token:
--models lists them (aliases, provider:model or ids, as issue-key takes
them), --all lets the key use every model. A running gateway applies the
change within about a second; calls already running finish as they began.`,
		Args: cobra.ExactArgs(1),
	}
	f := c.Flags()
	f.String("models", "", "comma-separated models the key may use from now on")
	f.Bool("all", false, "let the key use every model")
	c.RunE = wrap(func(cmd *cobra.Command, args []string) error {
		id := args[0]
		if !strings.HasPrefix(id, "gk_") {
			return fmt.Errorf("%q is not a key id (they look like gk_01J…)", id)
		}
		all, _ := cmd.Flags().GetBool("all")
		var models []string
		switch m, _ := cmd.Flags().GetString("models"); {
		case all && cmd.Flags().Changed("models"):
			return errors.New("give --models or --all, not both")
		case all:
		case !cmd.Flags().Changed("models"):
			return errors.New("give --models a,b (the models the key may use) or --all (every model)")
		default:
			var err error
			if models, err = parseModels(m); err != nil {
				return fmt.Errorf("%w; give --all for a key that may use every model", err)
			}
		}
		s, err := openExistingStore(cmd)
		if err != nil {
			return err
		}
		defer closeStore(s)
		k, err := s.SetAllowedModels(cmd.Context(), id, models)
		switch {
		case errors.Is(err, store.ErrKeyNotFound):
			return fmt.Errorf("no key with id %s", id)
		case errors.Is(err, store.ErrRevokedKey):
			return fmt.Errorf("key %s is revoked; issue a new one", id)
		case err != nil:
			return err
		}
		for _, hint := range modelHints(pricing.Default(), models, "run set-models again", "the list is set as asked") {
			fmt.Fprintln(cmd.ErrOrStderr(), "warning:", hint)
		}
		if !k.ExpiresAt.IsZero() && !k.ExpiresAt.After(time.Now()) {
			fmt.Fprintf(cmd.ErrOrStderr(), "note: key %s expired at %s; its calls are refused whatever its models\n",
				k.ID, k.ExpiresAt.UTC().Format(time.RFC3339))
		}
		if len(k.AllowedModels) == 0 {
			fmt.Fprintf(cmd.OutOrStdout(), "models: %s (%s) may use every model\n", k.ID, cell(k.Name))
			return nil
		}
		fmt.Fprintf(cmd.OutOrStdout(), "models: %s (%s) may use %s\n", k.ID, cell(k.Name), cell(strings.Join(k.AllowedModels, ",")))
		return nil
	})
	return c
}

func listKeysCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "list-keys",
		Short: "List gateway keys (never their tokens)",
		Args:  cobra.NoArgs,
		RunE: runE(func(cmd *cobra.Command, _ []string) error {
			s, err := openExistingStore(cmd)
			if err != nil {
				return err
			}
			defer closeStore(s)
			keys, err := s.ListKeys(cmd.Context())
			if err != nil {
				return err
			}
			printKeys(cmd.OutOrStdout(), keys, time.Now())
			return nil
		}),
	}
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// cell is a value for the terminal: one holding control characters, which
// would break a table or drive the terminal, is shown quoted and escaped.
func cell(s string) string {
	if store.Unprintable(s) {
		return strconv.QuoteToASCII(s)
	}
	return s
}

func printKeys(w io.Writer, keys []store.Key, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KEY_ID\tNAME\tUSER\tTEAM\tWORKSPACE\tMODELS\tSTATUS\tCREATED\tEXPIRES\tLAST_USED")
	for _, k := range keys {
		status := "active"
		switch {
		case !k.RevokedAt.IsZero():
			status = "revoked"
		case !k.ExpiresAt.IsZero() && k.ExpiresAt.Before(now):
			status = "expired"
		}
		models := "*"
		if len(k.AllowedModels) > 0 {
			models = strings.Join(k.AllowedModels, ",")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, cell(k.Name), cell(orDash(k.User)), cell(orDash(k.Team)),
			cell(orDash(k.Workspace)), cell(models), status, fmtTime(k.CreatedAt), fmtTime(k.ExpiresAt), fmtTime(k.LastUsedAt))
	}
	_ = tw.Flush()
}

func revokeKeyCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "revoke-key KEY_ID",
		Short: "Revoke a gateway key; a running gateway refuses it within seconds",
		Args:  cobra.ExactArgs(1),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			id := args[0]
			if !strings.HasPrefix(id, "gk_") {
				return fmt.Errorf("%q is not a key id (they look like gk_01J…)", id)
			}
			s, err := openExistingStore(cmd)
			if err != nil {
				return err
			}
			defer closeStore(s)
			started := time.Now().Truncate(time.Microsecond) // revoked_at's precision
			k, err := s.RevokeKey(cmd.Context(), id)
			if errors.Is(err, store.ErrKeyNotFound) {
				return fmt.Errorf("no key with id %s", id)
			}
			if err != nil {
				return err
			}
			if k.RevokedAt.Before(started) { // RevokeKey keeps the first revocation
				fmt.Fprintf(cmd.OutOrStdout(), "already revoked: %s (%s) at %s\n", k.ID, cell(k.Name), k.RevokedAt.UTC().Format(time.RFC3339))
				return nil
			}
			fmt.Fprintf(cmd.OutOrStdout(), "revoked: %s (%s)\n", k.ID, cell(k.Name))
			return nil
		}),
	}
}

// minPruneAge is the least --older-than prune takes: the analytics' windows
// of up to 30 days read the calls of their first hour, which must still be
// there (longer windows, and new rolling budgets longer than the history
// kept, are off by what was pruned; the README says how).
const minPruneAge = 32 * 24 * time.Hour

func pruneCommand() *cobra.Command {
	c := &cobra.Command{
		Use:   "prune --older-than 90d",
		Short: "Delete trace events and per-call rows older than an age; hourly and daily spend stays",
		Long: `Delete the trace events (calls, refusals) and the per-call rows dated before
now minus --older-than, in batches, while a gateway may run. The hourly and
daily rollups, the sessions' sums, keys and budgets are kept, so spend by
hour, day, key, user, team, model and session stays whole; each old call's
own row and events go. The space is reused by later calls; the file shrinks
only with "sqlite3 FILE VACUUM" while no gateway runs.`,
		Args: cobra.NoArgs,
		RunE: runE(func(cmd *cobra.Command, _ []string) error {
			v, _ := cmd.Flags().GetString("older-than")
			if v == "" {
				return errors.New("--older-than is required, e.g. --older-than 90d")
			}
			age, err := parseExpires(v)
			if err != nil {
				return fmt.Errorf("bad --older-than %q: want a duration such as 90d or 2160h", v)
			}
			if age < minPruneAge {
				return fmt.Errorf("--older-than %s keeps less than %d days: the analytics' 30-day windows read the calls of their first hour", v, minPruneAge/(24*time.Hour))
			}
			s, err := openExistingStore(cmd)
			if err != nil {
				return err
			}
			defer closeStore(s)
			before := time.Now().Add(-age)
			n, err := s.Prune(cmd.Context(), before)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "pruned %d events and %d calls dated before %s\n", n.Events, n.Calls, before.UTC().Format(time.RFC3339))
			return nil
		}),
	}
	c.Flags().String("older-than", "", "delete what is older than this, e.g. 90d or 2160h (at least 32d)")
	return c
}
