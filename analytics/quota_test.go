package analytics

import (
	"context"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/metisgateway/metis/budget"
	"github.com/metisgateway/metis/store"
)

// A by_user answer shows the quota the gateway enforces now, whatever its
// window: over a from/to range ending after now it showed the quota of the
// window starting at to (a refused user "ok" with $0 spent).
func TestQuotaIsTheLiveStateWhateverTheWindow(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "metis.db")
	st, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close(ctx) })
	l, err := budget.Open(path, budget.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	if _, err := l.Set(ctx, budget.Budget{Scope: budget.ScopeUser, Subject: "alice", Window: "daily", Hard: 1}); err != nil {
		t.Fatal(err)
	}
	// alice spends her whole daily budget an hour ago: the gateway refuses her now.
	id := budget.Identity{User: "alice"}
	r, _, refusal, err := l.Reserve(ctx, id, 1, testNow.Add(-time.Hour))
	if err != nil || refusal != nil {
		t.Fatal(err, refusal)
	}
	if _, err := r.Settle(1, testNow.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, _, refusal, _ := l.Reserve(ctx, id, 0.01, testNow); refusal == nil {
		t.Fatal("the ledger does not refuse alice now")
	}
	h := New(st.ReadDB(), Options{Budgets: l, Now: func() time.Time { return testNow }})
	for _, target := range []string{
		"/analytics/by_user?window=24h",
		"/analytics/by_user?from=2026-03-15&to=2026-03-16", // today, as dates
		"/analytics/by_user?from=2026-03-01&to=2026-04-01", // this month
		"/analytics/by_user?from=2026-02-01&to=2026-03-01", // last month
	} {
		w, _ := serve(h, http.MethodGet, target)
		var ans struct {
			Users []struct {
				User  string        `json:"user"`
				Quota *budget.Quota `json:"quota"`
			} `json:"users"`
		}
		decode(t, w, &ans)
		if len(ans.Users) != 1 || ans.Users[0].Quota == nil {
			t.Fatalf("%s: %s", target, w.Body.String())
		}
		q := ans.Users[0].Quota
		if q.State != budget.StateHard || q.Spent != 1 {
			t.Errorf("%s: alice's quota is %s with $%v spent, resets_at %v; the gateway refuses her (hard, $1 spent)",
				target, q.State, q.Spent, q.ResetsAt)
		}
	}
}
