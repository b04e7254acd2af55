//go:build cgo

package budget

import (
	"context"
	"database/sql"
	"testing"
	"time"
)

// holdReaders takes every connection of the ledger's reader pool (2), as
// slow reads do: refusals of rolling budgets scanning their charges
// (rollingRoom), Quotas from the dashboard, List. It gives them back at
// cleanup or when the returned function is called.
func holdReaders(t *testing.T, l *Ledger) (release func()) {
	t.Helper()
	var conns []*sql.Conn
	for range 2 {
		c, err := l.rdb.Conn(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	done := false
	release = func() {
		if !done {
			done = true
			for _, c := range conns {
				c.Close()
			}
		}
	}
	t.Cleanup(release)
	return release
}

// Review 27R of aab5bb9. A key refused in the last 30 s is judged on a
// reader first, with the reservation's own context: while the ledger's two
// readers are busy that wait uses up the whole deadline (the gateway's
// 5 s), the write transaction then starts with an expired context
// (ErrUnavailable) and the reader judgement after it waits in vain too.
// So, with the write lock free all along:
//   - a key at its hard limit gets ErrUnavailable, not its refusal: under
//     budget_failure open the gateway serves it unbudgeted, past the hard
//     limit (closed: a 503 instead of the 429); a key never refused, in the
//     same state at the same moment, is refused as it should be;
//   - a key refused a moment ago whose limit has since been raised gets
//     ErrUnavailable instead of its reservation.
//
// Before the change (f8257e9) readers played no part in the decision.
func TestRecentlyRefusedKeyWithBusyReaders(t *testing.T) {
	path := testDB(t)
	l := openLedger(t, path, Options{})
	now := time.Now()
	refusedBefore := Identity{KeyID: "gk_refused_before"}
	neverRefused := Identity{KeyID: "gk_never_refused"}
	raised := Identity{KeyID: "gk_raised"}
	for _, id := range []Identity{refusedBefore, neverRefused, raised} {
		mustSet(t, l, Budget{Scope: ScopeKey, Subject: id.KeyID, Window: WindowDaily, Hard: 1})
		charge(t, l, id, 0.75, now)
	}
	for _, id := range []Identity{refusedBefore, raised} {
		if _, _, ref, err := l.Reserve(context.Background(), id, 0.5, now); ref == nil || err != nil {
			t.Fatalf("%s at its limit: refusal %v, err %v", id.KeyID, ref, err)
		}
	}
	mustSet(t, l, Budget{Scope: ScopeKey, Subject: raised.KeyID, Window: WindowDaily, Hard: 5})

	holdReaders(t, l)
	reserve := func(id Identity) (*Reservation, *Refusal, time.Duration, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		start := time.Now()
		r, _, ref, err := l.Reserve(ctx, id, 0.5, now)
		return r, ref, time.Since(start), err
	}

	if _, ref, took, err := reserve(neverRefused); ref == nil || err != nil {
		t.Fatalf("control: a key at its limit never refused before: refusal %v, err %v (after %v)", ref, err, took)
	}
	if _, ref, took, err := reserve(refusedBefore); ref == nil || err != nil {
		t.Errorf("a key at its limit refused a moment ago, write lock free, readers busy: refusal %v, err %v (after %v); "+
			"want its refusal, as the key never refused gets (ErrUnavailable is served unbudgeted under budget_failure open)",
			ref, err, took.Round(time.Millisecond))
	}
	if r, ref, took, err := reserve(raised); r == nil || ref != nil || err != nil {
		t.Errorf("a key refused a moment ago whose limit was then raised to $5 ($0.75 spent), write lock free, readers busy: "+
			"reservation %v, refusal %v, err %v (after %v); want the reservation", r, ref, err, took.Round(time.Millisecond))
	}
}
