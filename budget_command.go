package metis

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/metisgateway/metis/budget"
)

// runFunc is the signature of a cobra RunE.
type runFunc = func(cmd *cobra.Command, args []string) error

// budgetCommands returns the set-budget, list-budgets and clear-budget
// subcommands of `caddy metis`. They read the parent's persistent --db flag.
func budgetCommands() []*cobra.Command { return budgetCommandsWith(runE) }

// budgetCommandsWith builds the budget commands with wrap around each
// command function: runE in the binary (one-line error, exit 1), identity
// in tests so errors come back.
func budgetCommandsWith(wrap func(runFunc) runFunc) []*cobra.Command {
	return []*cobra.Command{setBudgetCommand(wrap), listBudgetsCommand(wrap), clearBudgetCommand(wrap)}
}

const subjectUsage = "--key gk_… | --user U | --team T | --workspace DIR"

func addSubjectFlags(c *cobra.Command) {
	f := c.Flags()
	f.String("key", "", "budget a gateway key (gk_…)")
	f.String("user", "", "budget a user")
	f.String("team", "", "budget a team")
	f.String("workspace", "", "budget a workspace (made absolute)")
	f.String("window", "", "daily, weekly, monthly, or a rolling duration such as 72h or 30d (required)")
}

// budgetSubject reads exactly one of --key, --user, --team, --workspace.
func budgetSubject(cmd *cobra.Command) (scope, subject string, err error) {
	var set []string
	for _, s := range []string{budget.ScopeKey, budget.ScopeUser, budget.ScopeTeam, budget.ScopeWorkspace} {
		if v, _ := cmd.Flags().GetString(s); strings.TrimSpace(v) != "" {
			scope, subject = s, strings.TrimSpace(v)
			set = append(set, "--"+s)
		}
	}
	if len(set) != 1 {
		if len(set) == 0 {
			return "", "", fmt.Errorf("name what the budget is on: one of %s", subjectUsage)
		}
		return "", "", fmt.Errorf("name one subject, not %s", strings.Join(set, " and "))
	}
	switch scope {
	case budget.ScopeKey:
		if !strings.HasPrefix(subject, "gk_") {
			return "", "", fmt.Errorf("--key %q is not a key id (they look like gk_01J…)", subject)
		}
	case budget.ScopeWorkspace:
		abs, err := filepath.Abs(subject)
		if err != nil {
			return "", "", fmt.Errorf("--workspace: %w", err)
		}
		subject = abs
	}
	return scope, subject, nil
}

// budgetWindow reads the required --window.
func budgetWindow(cmd *cobra.Command) (string, error) {
	w, _ := cmd.Flags().GetString("window")
	if strings.TrimSpace(w) == "" {
		return "", errors.New("--window is required: daily, weekly, monthly or a duration such as 72h")
	}
	return budget.NormalizeWindow(w)
}

// parseUSD reads a dollar amount flag ("500", "$499.50").
func parseUSD(cmd *cobra.Command, name string) (float64, error) {
	v, _ := cmd.Flags().GetString(name)
	s := strings.TrimPrefix(strings.TrimSpace(v), "$")
	if s == "" {
		return 0, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f < 0 || f != f || f > 1e12 {
		return 0, fmt.Errorf("bad --%s %q: want an amount of USD such as 500 or 12.50", name, v)
	}
	return f, nil
}

// openLedger opens the budget ledger in the command's trace database.
// set-budget may create the database (a budget can precede the first
// call); list-budgets and clear-budget need it to exist, so a mistyped
// --db is an error, not a new empty database.
func openLedger(cmd *cobra.Command, create bool) (*budget.Ledger, error) {
	pathOf := existingDBPath
	if create {
		pathOf = dbPath
	}
	path, err := pathOf(cmd)
	if err != nil {
		return nil, err
	}
	return openTelling(cmd, path, func(p string) (*budget.Ledger, error) { return budget.Open(p, budget.Options{}) })
}

func describeBudget(scope, subject, window string) string {
	if _, err := time.ParseDuration(window); err == nil {
		return fmt.Sprintf("%s %q rolling %s budget", scope, subject, window)
	}
	return fmt.Sprintf("%s %q %s budget", scope, subject, window)
}

// keyExists refuses a budget on a key id the database does not have: a
// mistyped id would make a cap that enforces nothing. (A user, team or
// workspace may get its budget before its first key.)
func keyExists(cmd *cobra.Command, id string) error {
	s, err := openExistingStore(cmd)
	if err != nil {
		return fmt.Errorf("--key %s: %w", id, err)
	}
	defer closeStore(s)
	keys, err := s.ListKeys(cmd.Context())
	if err != nil {
		return fmt.Errorf("--key %s: %w", id, err)
	}
	for _, k := range keys {
		if k.ID == id {
			return nil
		}
	}
	return fmt.Errorf("--key %s: no such gateway key (list-keys shows the ids)", id)
}

func setBudgetCommand(wrap func(runFunc) runFunc) *cobra.Command {
	c := &cobra.Command{
		Use:   "set-budget " + subjectUsage + " --window W --hard USD [--soft USD] [--tz ZONE]",
		Short: "Create or change a spend budget; a running gateway enforces it within seconds",
		Long: `Create or change the budget on one key, user, team or workspace for one
window. Calendar windows (daily, weekly from Monday, monthly) reset at
midnight in --tz; a duration (72h, 30d) is a rolling window. Calls that
would take spend past --hard are refused with 429; past --soft they carry
a Metis-Budget-Warning header. Setting an existing budget keeps its spend.`,
		Args: cobra.NoArgs,
	}
	addSubjectFlags(c)
	f := c.Flags()
	f.String("hard", "", "hard limit in USD: calls that could exceed it are refused (required)")
	f.String("soft", "", "soft limit in USD, below --hard: calls past it are flagged")
	f.String("tz", "UTC", "IANA time zone calendar windows are aligned in, e.g. Europe/Berlin")
	c.RunE = wrap(func(cmd *cobra.Command, _ []string) error {
		scope, subject, err := budgetSubject(cmd)
		if err != nil {
			return err
		}
		window, err := budgetWindow(cmd)
		if err != nil {
			return err
		}
		if h, _ := cmd.Flags().GetString("hard"); strings.TrimSpace(h) == "" {
			return errors.New("--hard is required: the limit in USD")
		}
		hard, err := parseUSD(cmd, "hard")
		if err != nil {
			return err
		}
		soft, err := parseUSD(cmd, "soft")
		if err != nil {
			return err
		}
		tz, _ := cmd.Flags().GetString("tz")
		if scope == budget.ScopeKey {
			if err := keyExists(cmd, subject); err != nil {
				return err
			}
		}
		l, err := openLedger(cmd, true)
		if err != nil {
			return err
		}
		defer l.Close()
		b, err := l.Set(cmd.Context(), budget.Budget{Scope: scope, Subject: subject, Window: window, TZ: tz, Hard: hard, Soft: soft})
		if err != nil {
			return err
		}
		out := cmd.OutOrStdout()
		fmt.Fprintf(out, "budget_id: %s\n", b.ID)
		summary := fmt.Sprintf("%s: hard %s", describeBudget(b.Scope, b.Subject, b.Window), budget.Dollars(b.Hard))
		if b.Soft > 0 {
			summary += ", soft " + budget.Dollars(b.Soft)
		}
		if qs, err := l.Quotas(cmd.Context(), b.Scope, b.Subject, time.Now()); err == nil {
			for _, q := range qs {
				if q.BudgetID != b.ID {
					continue
				}
				summary += "; " + budget.Dollars(q.Spent) + " spent this window"
				if q.ResetsAt != nil {
					summary += ", resets at " + q.ResetsAt.Format(time.RFC3339)
				}
			}
		}
		fmt.Fprintln(out, summary)
		if d, err := time.ParseDuration(b.Window); err == nil && d < time.Hour {
			// `1m` meant as a month is a minute (audit 24O).
			fmt.Fprintf(cmd.ErrOrStderr(), "note: %s is a rolling window of %v; for a calendar month use --window monthly, for a rolling one 30d\n", b.Window, d)
		}
		return nil
	})
	return c
}

func listBudgetsCommand(wrap func(runFunc) runFunc) *cobra.Command {
	return &cobra.Command{
		Use:   "list-budgets",
		Short: "List spend budgets with their spend in the current window",
		Args:  cobra.NoArgs,
		RunE: wrap(func(cmd *cobra.Command, _ []string) error {
			l, err := openLedger(cmd, false)
			if err != nil {
				return err
			}
			defer l.Close()
			budgets, err := l.List(cmd.Context())
			if err != nil {
				return err
			}
			now := time.Now()
			quotas := make(map[string]budget.Quota, len(budgets))
			seen := make(map[[2]string]bool)
			for _, b := range budgets {
				if seen[[2]string{b.Scope, b.Subject}] {
					continue
				}
				seen[[2]string{b.Scope, b.Subject}] = true
				qs, err := l.Quotas(cmd.Context(), b.Scope, b.Subject, now)
				if err != nil {
					return err
				}
				for _, q := range qs {
					quotas[q.BudgetID] = q
				}
			}
			printBudgets(cmd.OutOrStdout(), budgets, quotas)
			return nil
		}),
	}
}

func printBudgets(w io.Writer, budgets []budget.Budget, quotas map[string]budget.Quota) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSCOPE\tSUBJECT\tWINDOW\tTZ\tHARD\tSOFT\tSPENT\tRESERVED\tRESETS\tSTATE")
	for _, b := range budgets {
		soft := "-"
		if b.Soft > 0 {
			soft = budget.Amount(b.Soft)
		}
		spent, reserved, resets, state := "?", "?", "?", "?"
		if q, ok := quotas[b.ID]; ok {
			spent, reserved, state = budget.Amount(q.Spent), budget.Amount(q.Reserved), q.State
			resets = "rolling"
			if q.ResetsAt != nil {
				resets = q.ResetsAt.Format(time.RFC3339)
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", b.ID, b.Scope, cell(b.Subject), b.Window, b.TZ,
			budget.Amount(b.Hard), soft, spent, reserved, resets, state)
	}
	_ = tw.Flush()
}

func clearBudgetCommand(wrap func(runFunc) runFunc) *cobra.Command {
	c := &cobra.Command{
		Use:   "clear-budget " + subjectUsage + " --window W",
		Short: "Delete a spend budget and its spend history",
		Args:  cobra.NoArgs,
	}
	addSubjectFlags(c)
	c.RunE = wrap(func(cmd *cobra.Command, _ []string) error {
		scope, subject, err := budgetSubject(cmd)
		if err != nil {
			return err
		}
		window, err := budgetWindow(cmd)
		if err != nil {
			return err
		}
		l, err := openLedger(cmd, false)
		if err != nil {
			return err
		}
		defer l.Close()
		what := describeBudget(scope, subject, window)
		if err := l.Clear(cmd.Context(), scope, subject, window); errors.Is(err, budget.ErrNoBudget) {
			return fmt.Errorf("no %s to clear", what)
		} else if err != nil {
			return err
		}
		fmt.Fprintf(cmd.OutOrStdout(), "cleared: %s\n", what)
		return nil
	})
	return c
}
