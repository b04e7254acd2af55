//go:build cgo

package budget

import (
	"testing"
	"time"
)

// BenchmarkReserveSettle measures one budgeted call's ledger work: a key
// and a team budget, with 2,000 prior charges on the team over the last two days.
func BenchmarkReserveSettle(b *testing.B) {
	l := openLedger(b, testDB(b), Options{})
	mustSet(b, l, Budget{Scope: ScopeKey, Subject: "gk_B", Window: WindowDaily, Hard: 1e9})
	mustSet(b, l, Budget{Scope: ScopeTeam, Subject: "eng", Window: WindowMonthly, Hard: 1e9, Soft: 1})
	id := Identity{KeyID: "gk_B", User: "u", Team: "eng"}
	now := time.Now()
	for i := range 2000 { // one every 1.5 minutes
		charge(b, l, Identity{Team: "eng"}, 0.01, now.Add(-time.Duration(i)*time.Minute*90/60))
	}
	b.ResetTimer()
	for b.Loop() {
		r, _, ref, err := l.Reserve(b.Context(), id, 0.5, now)
		if err != nil || ref != nil {
			b.Fatal(err, ref)
		}
		if _, err := r.Settle(0.01, now); err != nil {
			b.Fatal(err)
		}
	}
}
