//go:build cgo

package budget

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

// testDB is a fresh database path in a temp folder.
func testDB(t testing.TB) string {
	t.Helper()
	return filepath.Join(t.TempDir(), "metis", "metis.db")
}

// openLedger opens a Ledger on path and closes it at cleanup.
func openLedger(t testing.TB, path string, o Options) *Ledger {
	t.Helper()
	l, err := Open(path, o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return l
}

func mustSet(t testing.TB, l *Ledger, b Budget) Budget {
	t.Helper()
	out, err := l.Set(context.Background(), b)
	if err != nil {
		t.Fatalf("Set(%+v): %v", b, err)
	}
	return out
}

// quotaOf returns the quota of budget id at now.
func quotaOf(t testing.TB, l *Ledger, b Budget, now time.Time) Quota {
	t.Helper()
	qs, err := l.Quotas(context.Background(), b.Scope, b.Subject, now)
	if err != nil {
		t.Fatalf("Quotas: %v", err)
	}
	for _, q := range qs {
		if q.BudgetID == b.ID {
			return q
		}
	}
	t.Fatalf("no quota for %s among %+v", b.ID, qs)
	return Quota{}
}

// charge reserves and settles amount at now, failing the test on refusal.
func charge(t testing.TB, l *Ledger, id Identity, amount float64, now time.Time) []Budget {
	t.Helper()
	r, _, ref, err := l.Reserve(context.Background(), id, amount, now)
	if err != nil || ref != nil {
		t.Fatalf("Reserve(%v at %s): err %v, refusal %v", amount, now, err, ref)
	}
	crossed, err := r.Settle(amount, now)
	if err != nil {
		t.Fatalf("Settle: %v", err)
	}
	return crossed
}

// near reports whether two dollar amounts agree to a nano-dollar.
func near(a, b float64) bool {
	d := a - b
	return d < 1e-9 && d > -1e-9
}

func mustZone(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatalf("LoadLocation(%s): %v", name, err)
	}
	return loc
}
