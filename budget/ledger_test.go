//go:build cgo

package budget

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"testing"
	"time"
)

func ids(bs []Budget) []string {
	var out []string
	for _, b := range bs {
		out = append(out, b.ID)
	}
	return out
}

func TestSoftLimitOncePerWindow(t *testing.T) {
	l := openLedger(t, testDB(t), Options{})
	berlin := mustZone(t, "Europe/Berlin")
	b := mustSet(t, l, Budget{Scope: ScopeTeam, Subject: "eng", Window: WindowMonthly, TZ: "Europe/Berlin", Hard: 10, Soft: 5})
	other := mustSet(t, l, Budget{Scope: ScopeUser, Subject: "alice", Window: WindowMonthly, Hard: 100}) // no soft limit
	id := Identity{User: "alice", Team: "eng"}
	nov := time.Date(2026, 11, 10, 12, 0, 0, 0, berlin)

	if c := charge(t, l, id, 3, nov); len(c) != 0 {
		t.Fatalf("$3 of soft $5 reported crossed: %v", ids(c))
	}
	// Reserve before the crossing: no warning yet.
	r, warnings, _, err := l.Reserve(t.Context(), id, 3, nov)
	if err != nil || len(warnings) != 0 {
		t.Fatalf("Reserve below soft: warnings %v, err %v", ids(warnings), err)
	}
	crossed, err := r.Settle(3, nov)
	if err != nil || len(crossed) != 1 || crossed[0].ID != b.ID {
		t.Fatalf("$6 of soft $5: crossed %v, err %v; want [%s]", ids(crossed), err, b.ID)
	}
	if q := quotaOf(t, l, b, nov); q.State != StateSoft || q.Soft == nil || *q.Soft != 5 {
		t.Fatalf("quota after crossing: %+v", q)
	}
	if q := quotaOf(t, l, other, nov); q.State != StateOK || q.Soft != nil {
		t.Fatalf("quota without soft limit: %+v", q)
	}
	// Later calls in the window get the warning but no second notice.
	r, warnings, _, err = l.Reserve(t.Context(), id, 1, nov.Add(time.Hour))
	if err != nil || len(warnings) != 1 || warnings[0].ID != b.ID {
		t.Fatalf("Reserve above soft: warnings %v, err %v", ids(warnings), err)
	}
	if crossed, err := r.Settle(1, nov.Add(time.Hour)); err != nil || len(crossed) != 0 {
		t.Fatalf("second crossing in November: %v, err %v", ids(crossed), err)
	}
	// The last minute of November in Berlin is still November.
	if c := charge(t, l, id, 1, time.Date(2026, 11, 30, 23, 59, 0, 0, berlin)); len(c) != 0 {
		t.Fatalf("late November crossing reported again: %v", ids(c))
	}
	// December is a new window: below soft first, then crossed once more.
	dec := time.Date(2026, 12, 1, 0, 5, 0, 0, berlin)
	if c := charge(t, l, id, 4, dec); len(c) != 0 {
		t.Fatalf("$4 in December reported crossed: %v", ids(c))
	}
	if c := charge(t, l, id, 2, dec); len(c) != 1 || c[0].ID != b.ID {
		t.Fatalf("December crossing: %v, want [%s]", ids(c), b.ID)
	}
	if c := charge(t, l, id, 1, dec); len(c) != 0 {
		t.Fatalf("December crossing reported twice: %v", ids(c))
	}
}

func TestSoftLimitRollingWindow(t *testing.T) {
	l := openLedger(t, testDB(t), Options{})
	b := mustSet(t, l, Budget{Scope: ScopeKey, Subject: "gk_R", Window: "24h", Hard: 10, Soft: 5})
	id := Identity{KeyID: "gk_R"}
	t0 := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	if c := charge(t, l, id, 6, t0); len(c) != 1 || c[0].ID != b.ID {
		t.Fatalf("first crossing: %v", ids(c))
	}
	if c := charge(t, l, id, 1, t0.Add(2*time.Hour)); len(c) != 0 {
		t.Fatalf("crossing reported twice within 24h: %v", ids(c))
	}
	if c := charge(t, l, id, 6, t0.Add(25*time.Hour)); len(c) != 1 {
		t.Fatalf("crossing in a later window: %v", ids(c))
	}
}

func TestReleaseCancelAndTTL(t *testing.T) {
	l := openLedger(t, testDB(t), Options{ReservationTTL: time.Hour})
	b := mustSet(t, l, Budget{Scope: ScopeWorkspace, Subject: "/src/app", Window: WindowDaily, Hard: 10})
	id := Identity{KeyID: "gk_X", Workspace: "/src/app"}
	now := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)

	// Release frees the reservation without charging.
	r, _, _, err := l.Reserve(t.Context(), id, 8, now)
	if err != nil || r == nil || r.ID() == "" || len(r.Budgets()) != 1 || r.Amount() != 8 {
		t.Fatalf("Reserve: %+v, err %v", r, err)
	}
	if q := quotaOf(t, l, b, now); q.Reserved != 8 {
		t.Fatalf("reserved $%v, want $8", q.Reserved)
	}
	if _, _, ref, _ := l.Reserve(t.Context(), id, 3, now); ref == nil {
		t.Fatal("$8 reserved + $3 fit a $10 limit")
	}
	if err := r.Release(); err != nil {
		t.Fatalf("Release: %v", err)
	}
	if q := quotaOf(t, l, b, now); q.Reserved != 0 || q.Spent != 0 {
		t.Fatalf("after Release: %+v", q)
	}

	// A call whose request context was cancelled still settles.
	ctx, cancel := context.WithCancel(t.Context())
	r, _, _, err = l.Reserve(ctx, id, 5, now)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, err := r.Settle(2, now); err != nil {
		t.Fatalf("Settle after cancel: %v", err)
	}
	// Settling or releasing again is a no-op.
	if _, err := r.Settle(2, now); err != nil {
		t.Fatal(err)
	}
	if err := r.Release(); err != nil {
		t.Fatal(err)
	}
	if q := quotaOf(t, l, b, now); q.Reserved != 0 || !near(q.Spent, 2) {
		t.Fatalf("after Settle twice and Release: %+v, want spent $2, reserved $0", q)
	}
	// A cancelled context refuses to start a reservation.
	if _, _, _, err := l.Reserve(ctx, id, 1, now); !errors.Is(err, context.Canceled) || errors.Is(err, ErrUnavailable) {
		t.Fatalf("Reserve with a cancelled context: %v", err)
	}

	// A reservation never settled (crashed process) stops counting after the TTL.
	if _, _, _, err := l.Reserve(t.Context(), id, 7, now); err != nil {
		t.Fatal(err)
	}
	if _, _, ref, _ := l.Reserve(t.Context(), id, 2, now.Add(59*time.Minute)); ref == nil {
		t.Fatal("$2 spent + $7 reserved + $2 fit a $10 limit")
	}
	later := now.Add(61 * time.Minute)
	if q := quotaOf(t, l, b, later); q.Reserved != 0 {
		t.Fatalf("expired reservation still counted: %+v", q)
	}
	r, _, ref, err := l.Reserve(t.Context(), id, 2, later)
	if err != nil || ref != nil {
		t.Fatalf("after the TTL: refusal %v, err %v", ref, err)
	}
	_ = r.Release()

	// A nil reservation settles as a no-op.
	var none *Reservation
	if c, err := none.Settle(1, now); err != nil || c != nil {
		t.Fatal("nil Settle")
	}
	if err := none.Release(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Settle(-1, now); err == nil {
		t.Fatal("negative actual accepted")
	}
}

func TestRefusalReservesNothing(t *testing.T) {
	l := openLedger(t, testDB(t), Options{})
	key := mustSet(t, l, Budget{Scope: ScopeKey, Subject: "gk_K", Window: WindowMonthly, Hard: 1000})
	team := mustSet(t, l, Budget{Scope: ScopeTeam, Subject: "eng", Window: WindowMonthly, TZ: "Europe/Berlin", Hard: 500, Soft: 400})
	id := Identity{KeyID: "gk_K", User: "alice", Team: "eng"}
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	charge(t, l, id, 499.10, now)
	inflight, _, _, err := l.Reserve(t.Context(), id, 0.80, now)
	if err != nil {
		t.Fatal(err)
	}
	_, _, ref, err := l.Reserve(t.Context(), id, 0.50, now)
	if err != nil || ref == nil {
		t.Fatalf("Reserve past the team limit: refusal %v, err %v", ref, err)
	}
	if ref.Budget.ID != team.ID || !near(ref.Spent, 499.10) || !near(ref.Reserved, 0.80) || ref.Amount != 0.50 {
		t.Fatalf("refusal %+v", ref)
	}
	if !ref.InFlight() {
		t.Errorf("a call that fits next to the spend alone is not reported as refused for the calls in flight")
	}
	want := `team "eng" monthly budget of $500.00 cannot cover this call's worst-case cost of $0.50 ($499.10 spent, $0.80 reserved by calls in flight); it may fit once the calls in flight finish; it resets at 2026-12-01T00:00:00+01:00`
	if ref.Error() != want {
		t.Fatalf("refusal message\n got %s\nwant %s", ref.Error(), want)
	}
	if q := quotaOf(t, l, key, now); !near(q.Reserved, 0.80) {
		t.Fatalf("refused call reserved on the key budget: %+v", q)
	}
	if _, err := inflight.Settle(0.90, now); err != nil {
		t.Fatal(err)
	}
	_, _, ref, _ = l.Reserve(t.Context(), id, 0, now)
	want = `team "eng" monthly budget of $500.00 is exhausted ($500.00 spent, $0.00 reserved by calls in flight); it resets at 2026-12-01T00:00:00+01:00`
	if ref == nil || ref.Error() != want {
		t.Fatalf("zero-cost call on an exhausted budget: %v", ref)
	}
	var asErr error = ref
	if !strings.Contains(asErr.Error(), "exhausted") {
		t.Fatal(asErr)
	}
}

func TestUnbudgetedIdentity(t *testing.T) {
	l := openLedger(t, testDB(t), Options{})
	mustSet(t, l, Budget{Scope: ScopeTeam, Subject: "eng", Window: WindowDaily, Hard: 1})
	id := Identity{KeyID: "gk_Z", User: "zed", Team: "ops", Workspace: "/w"}
	if l.Applies(id) || l.Applies(Identity{}) {
		t.Fatal("Applies true for an unbudgeted identity")
	}
	r, w, ref, err := l.Reserve(t.Context(), id, 1e6, time.Now())
	if err != nil || ref != nil || w != nil || r == nil || r.ID() != "" {
		t.Fatalf("Reserve unbudgeted: %+v %v %v %v", r, w, ref, err)
	}
	if c, err := r.Settle(1e6, time.Now()); err != nil || c != nil {
		t.Fatalf("Settle unbudgeted: %v %v", c, err)
	}
	if qs, err := l.QuotasFor(t.Context(), id, time.Now()); err != nil || len(qs) != 0 {
		t.Fatalf("QuotasFor unbudgeted: %v %v", qs, err)
	}
}

func TestAppliesAcrossLedgersAndClear(t *testing.T) {
	path := testDB(t)
	gw := openLedger(t, path, Options{Refresh: 50 * time.Millisecond})
	cli := openLedger(t, path, Options{})
	id := Identity{KeyID: "gk_A", User: "alice", Team: "eng"}
	if gw.Applies(id) {
		t.Fatal("Applies before any budget")
	}
	b := mustSet(t, cli, Budget{Scope: ScopeTeam, Subject: "eng", Window: WindowMonthly, Hard: 500})
	if !cli.Applies(id) {
		t.Fatal("the setting Ledger does not see its own budget")
	}
	waitFor(t, "budget to apply in the other Ledger", func() bool { return gw.Applies(id) })
	if !gw.Applies(Identity{Team: "eng"}) || gw.Applies(Identity{User: "eng"}) {
		t.Fatal("Applies matches by subject but not scope")
	}
	qs, err := gw.QuotasFor(t.Context(), id, time.Now())
	if err != nil || len(qs) != 1 || qs[0].BudgetID != b.ID || qs[0].Scope != ScopeTeam || qs[0].Hard != 500 {
		t.Fatalf("QuotasFor: %+v, %v", qs, err)
	}
	if err := cli.Clear(t.Context(), ScopeTeam, "eng", "MONTHLY"); err != nil {
		t.Fatalf("Clear: %v", err)
	}
	waitFor(t, "cleared budget to stop applying", func() bool { return !gw.Applies(id) })
	if err := cli.Clear(t.Context(), ScopeTeam, "eng", WindowMonthly); !errors.Is(err, ErrNoBudget) {
		t.Fatalf("second Clear: %v, want ErrNoBudget", err)
	}
	if bs, err := gw.List(t.Context()); err != nil || len(bs) != 0 {
		t.Fatalf("List after Clear: %v, %v", bs, err)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after 5s waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestSetValidatesAndUpserts(t *testing.T) {
	l := openLedger(t, testDB(t), Options{})
	ctx := t.Context()
	for _, bad := range []Budget{
		{Scope: "org", Subject: "x", Window: "daily", Hard: 1},
		{Scope: ScopeTeam, Subject: " ", Window: "daily", Hard: 1},
		{Scope: ScopeKey, Subject: "alice", Window: "daily", Hard: 1},
		{Scope: ScopeTeam, Subject: "eng", Window: "yearly", Hard: 1},
		{Scope: ScopeTeam, Subject: "eng", Window: "0s", Hard: 1},
		{Scope: ScopeTeam, Subject: "eng", Window: "daily", TZ: "Nowhere/City", Hard: 1},
		{Scope: ScopeTeam, Subject: "eng", Window: "daily", Hard: 0},
		{Scope: ScopeTeam, Subject: "eng", Window: "daily", Hard: 10, Soft: 10},
		{Scope: ScopeTeam, Subject: "eng", Window: "daily", Hard: 10, Soft: -1},
	} {
		if _, err := l.Set(ctx, bad); err == nil {
			t.Errorf("Set(%+v) accepted", bad)
		}
	}
	a := mustSet(t, l, Budget{Scope: ScopeTeam, Subject: "eng", Window: "Monthly", Hard: 500, Soft: 400})
	if !strings.HasPrefix(a.ID, "bd_") || a.Window != WindowMonthly || a.TZ != "UTC" || a.CreatedAt.IsZero() {
		t.Fatalf("Set returned %+v", a)
	}
	now := time.Now()
	charge(t, l, Identity{Team: "eng"}, 42, now)
	b := mustSet(t, l, Budget{Scope: ScopeTeam, Subject: "eng", Window: WindowMonthly, TZ: "Europe/Berlin", Hard: 600})
	if b.ID != a.ID || !b.CreatedAt.Equal(a.CreatedAt) || b.Hard != 600 || b.Soft != 0 || b.TZ != "Europe/Berlin" {
		t.Fatalf("upsert: %+v, was %+v", b, a)
	}
	if q := quotaOf(t, l, b, now); !near(q.Spent, 42) {
		t.Fatalf("upsert lost the spend: %+v", q)
	}
	d := mustSet(t, l, Budget{Scope: ScopeTeam, Subject: "eng", Window: "7d", Hard: 100})
	if d.Window != "168h" {
		t.Fatalf("7d stored as %q", d.Window)
	}
	list, err := l.List(ctx)
	if err != nil || len(list) != 2 || list[0].ID != a.ID || list[1].ID != d.ID {
		t.Fatalf("List: %+v, %v", list, err)
	}
}

// TestOwnSchemaVersion: the ledger keeps its version in budget_meta and
// leaves the trace store's PRAGMA user_version alone.
func TestOwnSchemaVersion(t *testing.T) {
	path := testDB(t)
	openLedger(t, path, Options{})
	db, err := sql.Open("sqlite3", "file:"+path+"?_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`PRAGMA user_version = 7`); err != nil {
		t.Fatal(err)
	}
	openLedger(t, path, Options{}) // reopening migrates nothing
	var uv, sv int
	if err := db.QueryRow(`PRAGMA user_version`).Scan(&uv); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow(`SELECT value FROM budget_meta WHERE name = 'schema_version'`).Scan(&sv); err != nil {
		t.Fatal(err)
	}
	if uv != 7 || sv != schemaVersion {
		t.Fatalf("user_version %d, budget schema_version %d", uv, sv)
	}
	if _, err := db.Exec(`UPDATE budget_meta SET value = 99 WHERE name = 'schema_version'`); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(path, Options{}); err == nil || !strings.Contains(err.Error(), "newer") {
		t.Fatalf("Open on a newer schema: %v", err)
	}
}

// TestUnavailable: a closed ledger answers with ErrUnavailable, which the
// gateway's fail-open/closed policy keys on.
func TestUnavailable(t *testing.T) {
	l, err := Open(testDB(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	mustSet(t, l, Budget{Scope: ScopeUser, Subject: "u", Window: WindowDaily, Hard: 1})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
	if _, _, _, err := l.Reserve(context.Background(), Identity{User: "u"}, 1, time.Now()); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Reserve on a closed ledger: %v", err)
	}
}

// When several budgets refuse, one the spend alone has used up is the one
// reported: the call cannot fit until it resets, so it is not "in flight",
// even if another budget is full only of reservations and resets later.
func TestRefusalPrefersSpentOutBudget(t *testing.T) {
	l := openLedger(t, testDB(t), Options{})
	key := mustSet(t, l, Budget{Scope: ScopeKey, Subject: "gk_K", Window: WindowDaily, Hard: 1})
	mustSet(t, l, Budget{Scope: ScopeTeam, Subject: "eng", Window: WindowMonthly, Hard: 10})
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	id := Identity{KeyID: "gk_K", Team: "eng"}
	charge(t, l, id, 0.95, now)                                                                              // the key's daily budget: 0.05 left
	if _, _, ref, err := l.Reserve(t.Context(), Identity{Team: "eng"}, 8.9, now); err != nil || ref != nil { // the team's: 0.15 left, all reserved
		t.Fatalf("reserving on the team: %v %v", ref, err)
	}
	_, _, ref, err := l.Reserve(t.Context(), id, 0.10, now)
	if err != nil || ref == nil {
		t.Fatalf("Reserve past both limits: refusal %v, err %v", ref, err)
	}
	if ref.Budget.ID != key.ID || ref.InFlight() {
		t.Errorf("refusal %+v (in flight %v): want the key's spent-out daily budget", ref, ref.InFlight())
	}
}

// A call whose worst case alone is more than a hard limit is refused in
// every window: the refusal says so (and how to shrink the call) instead
// of naming a reset that would not help, and it is the one reported even
// when another budget is merely spent out until later.
func TestRefusalOfACallLargerThanTheBudget(t *testing.T) {
	l := openLedger(t, testDB(t), Options{})
	key := mustSet(t, l, Budget{Scope: ScopeKey, Subject: "gk_K", Window: WindowDaily, Hard: 1})
	mustSet(t, l, Budget{Scope: ScopeTeam, Subject: "eng", Window: WindowMonthly, Hard: 10})
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	id := Identity{KeyID: "gk_K", Team: "eng"}
	charge(t, l, Identity{Team: "eng"}, 9.5, now) // the team's monthly budget: 0.50 left, resets later
	_, _, ref, err := l.Reserve(t.Context(), id, 2.761736, now)
	if err != nil || ref == nil {
		t.Fatalf("Reserve of $2.76 under a $1 limit: refusal %v, err %v", ref, err)
	}
	if ref.Budget.ID != key.ID || !ref.Never() || ref.InFlight() {
		t.Errorf("refusal %+v: want the key's $1 budget, never fitting", ref)
	}
	msg := ref.Error()
	if want := `key "gk_K" daily budget of $1.00 is smaller than this call's worst-case cost of $2.761736, so no reset makes room for it; lower the request's max_tokens`; !strings.HasPrefix(msg, want) {
		t.Errorf("message %q, want it to start %q", msg, want)
	}
	if strings.Contains(msg, "resets at") {
		t.Errorf("message names a reset: %q", msg)
	}
	// A call that fits an empty window is not "never".
	if _, _, ref, _ := l.Reserve(t.Context(), id, 0.6, now); ref == nil || ref.Never() {
		t.Errorf("a $0.60 call over the team's $0.50 left: refusal %+v, want one that a reset cures", ref)
	}
}
