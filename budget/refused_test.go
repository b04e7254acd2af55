//go:build cgo

package budget

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"
)

// lockWrites takes the database's write lock from another connection, as
// `caddy metis set-budget`, a second gateway or a long checkpoint can, and
// holds it until the returned function is called.
func lockWrites(t *testing.T, path string) (unlock func()) {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+path+"?_busy_timeout=5000&_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	tx, err := db.Begin()
	if err != nil {
		db.Close()
		t.Fatal(err)
	}
	if _, err := tx.Exec(`UPDATE budget_meta SET value = value WHERE name = 'schema_version'`); err != nil {
		t.Fatal(err)
	}
	done := false
	unlock = func() {
		if !done {
			done = true
			tx.Rollback() //nolint:errcheck
			db.Close()
		}
	}
	t.Cleanup(unlock)
	return unlock
}

// TestRefusalNeedsNoWriteLock: a key at its hard limit is refused while
// the database's write lock is held elsewhere, at once and as a refusal,
// not after the lock wait as "unavailable" (which a fail-open gateway
// would have served, past the limit). A key with room still waits for the
// lock as before, and raising the limit lets the refused key through at
// once.
func TestRefusalNeedsNoWriteLock(t *testing.T) {
	path := testDB(t)
	l := openLedger(t, path, Options{})
	full := Identity{KeyID: "gk_full"}
	roomy := Identity{KeyID: "gk_roomy"}
	b := mustSet(t, l, Budget{Scope: ScopeKey, Subject: full.KeyID, Window: WindowDaily, Hard: 1})
	mustSet(t, l, Budget{Scope: ScopeKey, Subject: roomy.KeyID, Window: WindowDaily, Hard: 100})
	now := time.Now()
	charge(t, l, full, 0.75, now)

	t.Run("refused with the lock held elsewhere", func(t *testing.T) {
		unlock := lockWrites(t, path)
		defer unlock()
		for i, first := range []bool{true, false} {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			start := time.Now()
			_, _, ref, err := l.Reserve(ctx, full, 0.5, now)
			took := time.Since(start)
			cancel()
			if err != nil || ref == nil {
				t.Fatalf("call %d of a key at its limit, write lock held elsewhere: refusal %v, err %v (after %s)", i+1, ref, err, took)
			}
			if ref.Budget.ID != b.ID || !near(ref.Spent, 0.75) {
				t.Fatalf("refusal %+v", ref)
			}
			if !first && took > 500*time.Millisecond {
				// Once refused, the key is judged on a reader first.
				t.Fatalf("a second refusal took %s behind the write lock", took)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		if _, _, _, err := l.Reserve(ctx, roomy, 0.5, now); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("a key with room while the lock is held elsewhere: %v, want ErrUnavailable", err)
		}
	})

	t.Run("fits again once the limit is raised", func(t *testing.T) {
		mustSet(t, l, Budget{Scope: ScopeKey, Subject: full.KeyID, Window: WindowDaily, Hard: 2})
		r, _, ref, err := l.Reserve(context.Background(), full, 0.5, now)
		if err != nil || ref != nil {
			t.Fatalf("after raising the limit: refusal %v, err %v", ref, err)
		}
		if _, err := r.Settle(0.5, now); err != nil {
			t.Fatal(err)
		}
		if q := quotaOf(t, l, b, now); !near(q.Spent, 1.25) || q.Reserved != 0 {
			t.Fatalf("quota %+v, want spent 1.25", q)
		}
		if l.refusedRecently(full, now) {
			t.Fatal("the key is still remembered as refused after a reservation fitted")
		}
	})
}
