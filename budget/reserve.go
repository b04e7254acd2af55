package budget

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"
	"go.uber.org/zap"
)

// Reservation is the worst-case cost of one call held against every budget
// that covered its identity, until Settle or Release. A nil *Reservation
// is valid and settles as a no-op.
type Reservation struct {
	l       *Ledger
	id      string
	amount  float64
	budgets []Budget

	mu   sync.Mutex
	done bool
}

// ID is the reservation's id ("rs_" + ULID), empty when no budget covered
// the identity.
func (r *Reservation) ID() string {
	if r == nil {
		return ""
	}
	return r.id
}

// Amount is the reserved worst-case cost in USD.
func (r *Reservation) Amount() float64 {
	if r == nil {
		return 0
	}
	return r.amount
}

// Budgets are the budgets the reservation is held against, as they were
// when it was made.
func (r *Reservation) Budgets() []Budget {
	if r == nil {
		return nil
	}
	return append([]Budget(nil), r.budgets...)
}

// Refusal is Reserve's answer when a hard limit would be exceeded: the
// budget (when several refuse, one whose spend alone refuses the call if
// any, and of those the one that resets last), its spend and
// reservations in the current window, the amount asked for and when the
// call could next fit. It implements error; the gateway answers 429 with it.
type Refusal struct {
	Budget   Budget
	Spent    float64
	Reserved float64
	Amount   float64
	// ResetsAt is the next window start for calendar windows; for rolling
	// windows, when enough of the current spend will have aged out of the
	// window for this call to fit (or now + the window, if it never fits).
	ResetsAt time.Time
	// Lower says how the caller lowers its worst case when no reset makes
	// room for it; empty means the Messages and Chat Completions advice
	// (max_tokens, and Claude Code's CLAUDE_CODE_MAX_OUTPUT_TOKENS).
	Lower string
	// exhausted are the refusing budgets whose spend alone leaves no room
	// for the call (markExhausted).
	exhausted []markRequest
}

// Error describes the refusal in one line, e.g. `team "eng" monthly budget
// of $500.00 is exhausted ($499.10 spent, $0.80 reserved by calls in
// flight); it resets at 2026-12-01T00:00:00+01:00`.
func (r *Refusal) Error() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "%s of %s ", describe(r.Budget), Dollars(r.Budget.Hard))
	if r.Never() {
		lower := r.Lower
		if lower == "" {
			lower = "lower the request's max_tokens (Claude Code: CLAUDE_CODE_MAX_OUTPUT_TOKENS)"
		}
		fmt.Fprintf(&sb, "is smaller than this call's worst-case cost of %s, so no reset makes room for it; %s or ask for a larger limit",
			Dollars(r.Amount), lower)
		return sb.String()
	}
	if r.Spent+r.Reserved >= r.Budget.Hard-epsilon {
		sb.WriteString("is exhausted")
	} else {
		fmt.Fprintf(&sb, "cannot cover this call's worst-case cost of %s", Dollars(r.Amount))
	}
	fmt.Fprintf(&sb, " (%s spent, %s reserved by calls in flight); ", Dollars(r.Spent), Dollars(r.Reserved))
	if r.InFlight() {
		sb.WriteString("it may fit once the calls in flight finish; ")
	}
	if isCalendar(r.Budget.Window) {
		fmt.Fprintf(&sb, "it resets at %s", r.ResetsAt.Format(time.RFC3339))
	} else {
		// Rounded up: a client retrying at the second named must find the room.
		at := r.ResetsAt.Truncate(time.Second)
		if at.Before(r.ResetsAt) {
			at = at.Add(time.Second)
		}
		fmt.Fprintf(&sb, "room frees up at %s", at.Format(time.RFC3339))
	}
	return sb.String()
}

// Never reports whether the call's worst case alone exceeds the hard
// limit: it is refused in every window, however empty.
func (r *Refusal) Never() bool {
	return r.Amount > r.Budget.Hard+epsilon
}

// InFlight reports whether the call was refused only for the reservations
// of calls in flight: it fits next to the spend alone, so it may fit in
// seconds, once they settle for less than their worst case.
func (r *Refusal) InFlight() bool {
	return r.Reserved > epsilon && r.Spent+r.Amount <= r.Budget.Hard+epsilon
}

func isCalendar(window string) bool {
	return window == WindowDaily || window == WindowWeekly || window == WindowMonthly
}

// checkAmount rejects amounts that are not finite and non-negative.
func checkAmount(what string, v float64) error {
	if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
		return fmt.Errorf("%s must be a finite, non-negative amount of USD, not %v", what, v)
	}
	return nil
}

// floorBucket is the start of the spend bucket holding ts (µs).
func floorBucket(ts int64) int64 {
	b := ts / bucketUS * bucketUS
	if b > ts {
		b -= bucketUS
	}
	return b
}

// ceilBucket is the first bucket start at or after ts.
func ceilBucket(ts int64) int64 {
	b := floorBucket(ts)
	if b < ts {
		b += bucketUS
	}
	return b
}

// sqlUsage returns a budget's spent and reserved. Spent is the charges in
// [start ?3, end ?5): the single charges between the start and the first
// bucket boundary at or after it (?2), the whole buckets from there to
// the bucket holding the end (?6) less that bucket's charges at or after
// the end (to ?8), which normal clocks leave at none, so that neither
// edge reads more than the start's partial bucket. When start and end
// share a bucket, ?6 < ?2 leaves no whole bucket, ?7 is the end and ?8
// the end too: the single charges of [start, end). Reserved is the
// reservations created at or after the TTL cutoff (?4).
const sqlUsage = `SELECT
	COALESCE((SELECT SUM(amount) FROM budget_spend WHERE budget_id = ?1 AND bucket_us >= ?2 AND bucket_us <= ?6), 0)
	+ COALESCE((SELECT SUM(amount) FROM budget_charges WHERE budget_id = ?1 AND ts_us >= ?3 AND ts_us < ?7), 0)
	- COALESCE((SELECT SUM(amount) FROM budget_charges WHERE budget_id = ?1 AND ts_us >= ?5 AND ts_us < ?8), 0),
	COALESCE((SELECT SUM(amount) FROM budget_reservations WHERE budget_id = ?1 AND created_us >= ?4), 0)`

// rollingAhead is how far past now a rolling window counts charges: a
// gateway sharing the ledger whose clock runs a little ahead still has its
// charges counted, while one stamped far ahead (a clock set wrong, then
// corrected) does not weigh on every window until its time comes.
const rollingAhead = time.Minute

type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// usage is a budget's state at one instant.
type usage struct {
	start           time.Time
	resetsAt        *time.Time
	spent, reserved float64
}

func (l *Ledger) usage(ctx context.Context, q querier, b Budget, now time.Time) (usage, error) {
	loc, err := l.location(b.TZ)
	if err != nil {
		return usage{}, fmt.Errorf("%s: %w", describe(b), err)
	}
	start, resets, err := windowBounds(b.Window, loc, now)
	if err != nil {
		return usage{}, fmt.Errorf("%s: %w", describe(b), err)
	}
	u := usage{start: start, resetsAt: resets}
	// A charge stamped at or after the reset belongs to a later window
	// (review 28T): counted here too, it would be charged twice.
	end := now.Add(rollingAhead)
	if resets != nil {
		end = *resets
	}
	s, e := start.UnixMicro(), end.UnixMicro()
	cs, fe := ceilBucket(s), floorBucket(e)
	past := e // the end bucket's charges at or after the end: [e, past)
	if fe >= cs {
		past = fe + bucketUS
	}
	if err := q.QueryRowContext(ctx, sqlUsage, b.ID, cs, s, now.Add(-l.opts.ReservationTTL).UnixMicro(), e,
		fe, min(cs, e), past).Scan(&u.spent, &u.reserved); err != nil {
		return usage{}, fmt.Errorf("%s: %w", describe(b), dbErr(err))
	}
	// SQLite's SUM rounds as the bucket's running sum does not: a bucket
	// less its charges can be a hair below 0, read "-0.00" (review 28R2).
	u.spent = max(0, u.spent)
	return u, nil
}

// covering selects the budgets covering an identity, key first.
func covering(ctx context.Context, q querier, id Identity) ([]Budget, error) {
	keys := identityKeys(id)
	if len(keys) == 0 {
		return nil, nil
	}
	var where []string
	var args []any
	for _, k := range keys {
		where = append(where, "(scope = ? AND subject = ?)")
		args = append(args, k.scope, k.subject)
	}
	rows, err := q.QueryContext(ctx, sqlSelectBudgets+` WHERE `+strings.Join(where, " OR ")+
		` ORDER BY CASE scope WHEN 'key' THEN 0 WHEN 'user' THEN 1 WHEN 'team' THEN 2 ELSE 3 END, `+windowOrder, args...)
	if err != nil {
		return nil, dbErr(err)
	}
	defer rows.Close()
	var out []Budget
	for rows.Next() {
		b, err := scanBudget(rows)
		if err != nil {
			return nil, dbErr(err)
		}
		out = append(out, b)
	}
	if err := rows.Err(); err != nil {
		return nil, dbErr(err)
	}
	return out, nil
}

// Reserve holds amount (the call's worst-case cost, USD) against every
// budget covering id, in one BEGIN IMMEDIATE transaction. If for some
// budget spent + reserved + amount would exceed its hard limit (or the
// budget is already exhausted), nothing is reserved and refusal says why.
// Otherwise one reservation row per budget is written and r returned, with
// warnings listing the budgets whose soft limit spent + reserved had
// already reached. When no budget covers id, r is an empty reservation.
// err is non-nil only when the ledger could not decide (ErrUnavailable for
// database failures, or a bad amount). The call is judged at now, or at
// the time the write lock was had when waiting for it took longer than
// lockWaitCounted.
//
// A refusal needs no write: an identity refused within refusedFor is
// judged first on a reader (for at most readerFirstWait), and refused
// there without the write lock while its budgets stay full, so a client
// retrying at its limit does not queue every budgeted call behind its
// refusals. When the write lock cannot be had, the budgets are judged on a
// reader too, as they stand after the wait: a call they refuse is refused
// (and a warning logged), not left to the caller's fail-open policy.
func (l *Ledger) Reserve(ctx context.Context, id Identity, amount float64, now time.Time) (r *Reservation, warnings []Budget, refusal *Refusal, err error) {
	if err := checkAmount("reserved amount", amount); err != nil {
		return nil, nil, nil, fmt.Errorf("reserving budget: %w", err)
	}
	start := time.Now()
	if l.refusedRecently(id, now) {
		// Briefly: readers busy (dashboards, other refusals) must not use
		// up the deadline the write transaction needs (review 27R).
		if ref := l.judgeOnReader(ctx, readerFirstWait, id, amount, now); ref != nil {
			l.noteRefused(id, now)
			l.markExhausted(ref)
			return nil, nil, ref, nil
		}
	}
	r, warnings, refusal, err = l.reserve(ctx, id, amount, now)
	if err != nil {
		if errors.Is(err, ErrUnavailable) {
			// Judged as the budgets stand now, after the wait.
			at := now.Add(time.Since(start))
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), readerJudgeWait)
			defer cancel()
			if ref := l.judgeOnReader(rctx, readerJudgeWait, id, amount, at); ref != nil {
				l.noteRefused(id, at)
				l.markExhausted(ref)
				if l.lockedLog.Allow(10 * time.Second) {
					l.opts.Logger.Warn("budget ledger could not be written; a call its budgets have no room for was refused from a reader (logged at most every 10 s)",
						zap.String("key_id", id.KeyID), zap.Error(err))
				}
				return nil, nil, ref, nil
			}
		}
		return nil, nil, nil, fmt.Errorf("reserving budget: %w", err)
	}
	if refusal != nil {
		l.noteRefused(id, now)
		l.markExhausted(refusal)
		return nil, nil, refusal, nil
	}
	l.forgetRefused(id)
	return r, warnings, nil, nil
}

// lockWaitCounted is the wait for the write lock past which a reservation
// is judged at the time the lock was had rather than at its caller's now.
const lockWaitCounted = 50 * time.Millisecond

// refusedFor is how long after its last refusal an identity's reservations
// are judged on a reader before the write transaction; refusedMax bounds
// how many identities are remembered (past it, the memory starts afresh).
// readerFirstWait bounds that judgement, and readerJudgeWait the reader's
// judgement of a call the write lock could not be had for.
const (
	refusedFor      = 30 * time.Second
	refusedMax      = 4096
	readerFirstWait = 100 * time.Millisecond
	readerJudgeWait = time.Second
)

// refusedRecently tells whether id was refused within refusedFor of now.
func (l *Ledger) refusedRecently(id Identity, now time.Time) bool {
	l.refusedMu.Lock()
	at, ok := l.refused[id]
	l.refusedMu.Unlock()
	return ok && now.Sub(at) < refusedFor
}

// noteRefused remembers that id was refused at now.
func (l *Ledger) noteRefused(id Identity, now time.Time) {
	l.refusedMu.Lock()
	defer l.refusedMu.Unlock()
	if _, ok := l.refused[id]; !ok && len(l.refused) >= refusedMax || l.refused == nil {
		l.refused = make(map[Identity]time.Time)
	}
	l.refused[id] = now
}

// forgetRefused drops id's refusal once a reservation of its fits again.
func (l *Ledger) forgetRefused(id Identity) {
	l.refusedMu.Lock()
	delete(l.refused, id)
	l.refusedMu.Unlock()
}

// judgeOnReader judges amount against id's budgets as they stand in one
// read transaction on a reader, which waits for no writer (WAL), waiting at
// most wait for a free one. It returns the refusal, built in the same
// transaction under ctx (a rolling budget's charges may take longer to
// read than the wait: review 27R3); nil when all fit or the reader
// failed, for the write transaction to decide.
func (l *Ledger) judgeOnReader(ctx context.Context, wait time.Duration, id Identity, amount float64, now time.Time) *Refusal {
	wctx, cancel := context.WithTimeout(ctx, wait)
	conn, err := l.rdb.Conn(wctx)
	cancel()
	if err != nil {
		return nil
	}
	defer conn.Close()
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return nil
	}
	defer tx.Rollback() //nolint:errcheck // read-only
	budgets, err := covering(ctx, tx, id)
	if err != nil {
		return nil
	}
	_, refused, usages, err := l.judge(ctx, tx, budgets, amount, now)
	if err != nil || len(refused) == 0 {
		return nil
	}
	return l.refusal(ctx, tx, refused, usages, amount, now)
}

// judge reads each budget's usage on q: refused are those amount would
// take past the hard limit, or that are exhausted already (with their
// usages, for the refusal); warnings those whose soft limit spent +
// reserved has reached.
func (l *Ledger) judge(ctx context.Context, q querier, budgets []Budget, amount float64, now time.Time) (warnings, refused []Budget, usages []usage, err error) {
	for _, b := range budgets {
		u, err := l.usage(ctx, q, b, now)
		if err != nil {
			return nil, nil, nil, err
		}
		held := u.spent + u.reserved
		if held+amount > b.Hard+epsilon || held >= b.Hard-epsilon {
			refused = append(refused, b)
			usages = append(usages, u)
			continue
		}
		if b.Soft > 0 && held >= b.Soft-epsilon {
			warnings = append(warnings, b)
		}
	}
	return warnings, refused, usages, nil
}

// writeScanMax bounds the charges a refusal reads (about a millisecond's
// worth; see rollingRoom).
const writeScanMax = 2000

// reserve is Reserve's write transaction. A refusal is built in it:
// building it on a reader afterwards waited for busy readers up to the
// deadline (review 27R2, and 27R4 for a first bound on the charges read),
// and rollingRoom reads little.
func (l *Ledger) reserve(ctx context.Context, id Identity, amount float64, now time.Time) (*Reservation, []Budget, *Refusal, error) {
	waitFrom := time.Now()
	conn, release, err := l.writeConn(ctx)
	if err != nil {
		return nil, nil, nil, dbErr(err)
	}
	defer release()
	tx, err := begin(ctx, conn)
	if err != nil {
		return nil, nil, nil, dbErr(err)
	}
	defer tx.Rollback() //nolint:errcheck // no-op after Commit
	// Judged as the budgets stand once the lock is had: a long wait
	// across midnight must not judge the call against yesterday's window
	// (28T). A short one is not added, so that a caller's now holds to
	// the microsecond when nothing held the lock.
	if w := time.Since(waitFrom); w > lockWaitCounted {
		now = now.Add(w)
	}
	budgets, err := covering(ctx, tx, id)
	if err != nil {
		return nil, nil, nil, err
	}
	r := &Reservation{l: l, amount: amount, budgets: budgets}
	if len(budgets) == 0 {
		r.done = true
		return r, nil, nil, nil
	}
	warnings, refused, usages, err := l.judge(ctx, tx, budgets, amount, now)
	if err != nil {
		return nil, nil, nil, err
	}
	if len(refused) > 0 {
		return nil, nil, l.refusal(ctx, tx, refused, usages, amount, now), nil
	}
	r.id = "rs_" + ulid.Make().String()
	for _, b := range budgets {
		if _, err := tx.ExecContext(ctx, `INSERT INTO budget_reservations (id, budget_id, amount, created_us) VALUES (?, ?, ?, ?)`,
			r.id, b.ID, amount, now.UnixMicro()); err != nil {
			return nil, nil, nil, dbErr(err)
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, nil, nil, dbErr(err)
	}
	return r, warnings, nil, nil
}

// refusal builds the Refusal for the refusing budget that frees up last,
// reading rolling budgets' spend on q (the judging transaction).
func (l *Ledger) refusal(ctx context.Context, q querier, refused []Budget, usages []usage, amount float64, now time.Time) *Refusal {
	var best *Refusal
	var exhausted []markRequest
	for i, b := range refused {
		u := usages[i]
		if amount <= b.Hard+epsilon && u.spent+amount > b.Hard+epsilon {
			exhausted = append(exhausted, markRequest{budgetID: b.ID, mark: exhaustedMark{at: now, amount: amount}})
		}
		rf := &Refusal{Budget: b, Spent: u.spent, Reserved: u.reserved, Amount: amount}
		if u.resetsAt != nil {
			rf.ResetsAt = *u.resetsAt
		} else {
			rf.ResetsAt = rollingRoom(ctx, q, b, u, amount, now)
		}
		// A budget smaller than the call outranks the rest (no wait helps),
		// and one the spend itself has used up outranks one full only of
		// reservations: the call cannot fit until it resets, whatever the
		// calls in flight do.
		switch {
		case best == nil, rf.Never() && !best.Never(), best.InFlight() && !rf.InFlight():
			best = rf
		case best.Never() != rf.Never(): // the best one never fits: keep it
		case best.InFlight() == rf.InFlight() && rf.ResetsAt.After(best.ResetsAt):
			best = rf
		}
	}
	best.exhausted = exhausted
	return best
}

// rollingRoom estimates when enough of a rolling window's charges will
// have aged out for amount to fit beside the current reservations; now +
// the window when it never does (or the charges cannot be read). It reads
// the window's 15-minute spend buckets and the charges of at most two of
// them (the window's first, partial one and the one where the room is
// found), at most writeScanMax of those: a refusal is built in the
// transaction that judged it, the ledger's write transaction included,
// and reading every charge of a long window held the write lock for tens
// of milliseconds (review 27R3). Past writeScanMax charges in that bucket
// it answers the bucket's end, the latest the room can come.
func rollingRoom(ctx context.Context, q querier, b Budget, u usage, amount float64, now time.Time) time.Time {
	d := now.Sub(u.start)
	excess := u.spent + u.reserved + amount - b.Hard
	if u.spent+u.reserved >= b.Hard-epsilon && excess < epsilon {
		excess = epsilon // exhausted: any freed amount helps
	}
	fallback := now.Add(d)
	if u.reserved+amount > b.Hard+epsilon {
		return fallback
	}
	// A charge leaves the window a microsecond after it is d old (the
	// window includes its start).
	leaves := func(ts int64) time.Time { return time.UnixMicro(ts).Add(d + time.Microsecond).UTC() }
	// The charges from the window's start on, those dated past its end
	// (end) included: each frees its amount when it leaves.
	start, end := u.start.UnixMicro(), now.Add(rollingAhead).UnixMicro()
	first := ceilBucket(start)
	var head float64
	if err := q.QueryRowContext(ctx, `SELECT COALESCE(SUM(amount), 0) FROM budget_charges WHERE budget_id = ? AND ts_us >= ? AND ts_us < ?`,
		b.ID, start, first).Scan(&head); err != nil {
		return fallback
	}
	// room is when enough charges have left to free excess; false when
	// they never do.
	room := func(excess float64) (time.Time, bool) {
		if head >= excess-epsilon {
			if ts, ok := crossing(ctx, q, b.ID, start, first, 0, excess); ok {
				return leaves(ts), true
			}
			return leaves(first - 1), true
		}
		// The first bucket whose spend, with what comes before it, frees
		// enough: summed in SQLite, one row back.
		var bucket int64
		var before float64
		err := q.QueryRowContext(ctx, `SELECT bucket_us, cum - amount FROM (
			SELECT bucket_us, amount, SUM(amount) OVER (ORDER BY bucket_us ROWS UNBOUNDED PRECEDING) AS cum
			FROM budget_spend WHERE budget_id = ? AND bucket_us >= ?)
		WHERE cum >= ? ORDER BY bucket_us LIMIT 1`, b.ID, first, excess-head-epsilon).Scan(&bucket, &before)
		if err != nil {
			return time.Time{}, false // none frees enough (sql.ErrNoRows), or unreadable
		}
		if ts, ok := crossing(ctx, q, b.ID, bucket, bucket+bucketUS, head+before, excess); ok {
			return leaves(ts), true
		}
		return leaves(bucket + bucketUS - 1), true // crowded: when the bucket's charges have all left
	}
	// Charges dated past the window's end (a peer whose clock runs ahead)
	// are not in u.spent, but those dated before t + rollingAhead are in
	// the window at t: they are counted in excess, and t found again until
	// it holds, so that the time named is never early (review 28R) and one
	// dated a month ahead does not delay it (review 28R2). It converges in
	// a round or two; after roomRounds the last time found is named.
	t, ok := room(excess)
	counted := 0.0
	for range roomRounds {
		if !ok {
			return fallback
		}
		var later float64
		if err := q.QueryRowContext(ctx, `SELECT COALESCE(SUM(amount), 0) FROM budget_charges WHERE budget_id = ? AND ts_us >= ? AND ts_us < ?`,
			b.ID, end, t.Add(rollingAhead).UnixMicro()).Scan(&later); err != nil {
			return fallback
		}
		if later <= counted+epsilon {
			break
		}
		counted = later
		t, ok = room(excess + later)
	}
	if !ok {
		return fallback
	}
	return t
}

// roomRounds bounds rollingRoom's rounds of counting charges dated ahead.
const roomRounds = 8

// crossing reads the charges of budget id in [from, to), at most
// writeScanMax of them, in time order, and returns the time of the one
// that takes freed (what earlier charges free) to excess.
func crossing(ctx context.Context, q querier, id string, from, to int64, freed, excess float64) (int64, bool) {
	rows, err := q.QueryContext(ctx, `SELECT ts_us, amount FROM budget_charges WHERE budget_id = ? AND ts_us >= ? AND ts_us < ? ORDER BY ts_us LIMIT ?`,
		id, from, to, writeScanMax)
	if err != nil {
		return 0, false
	}
	defer rows.Close()
	for rows.Next() {
		var ts int64
		var a float64
		if err := rows.Scan(&ts, &a); err != nil {
			return 0, false
		}
		if freed += a; freed >= excess-epsilon {
			return ts, true
		}
	}
	return 0, false
}

// Settle ends the reservation: its rows are deleted and actual (USD, ≥ 0)
// is charged at now to each of its budgets that still exists, in one
// transaction on a background context, so a call whose request was
// cancelled still settles. It returns the budgets (as they are now) whose
// soft limit the charge reached for the first time in the current window;
// the gateway writes budget.soft_exceeded for each. Settling or releasing
// again is a no-op. On error the reservation stays held (until
// ReservationTTL) and Settle may be retried.
func (r *Reservation) Settle(actual float64, now time.Time) (softCrossed []Budget, err error) {
	return r.SettleWithin(settleTimeout, actual, now)
}

// SettleWithin is Settle waiting at most wait for the database (the
// ledger's connection, the write gate, SQLite's lock): the gateway settles
// a call before its response ends, so a locked ledger must not hold the
// answer; a settlement that could not wait is ErrUnavailable, to retry.
func (r *Reservation) SettleWithin(wait time.Duration, actual float64, now time.Time) (softCrossed []Budget, err error) {
	if r == nil {
		return nil, nil
	}
	if err := checkAmount("settled amount", actual); err != nil {
		return nil, fmt.Errorf("settling reservation %s: %w", r.id, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.done {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	crossed, err := r.settle(ctx, actual, now)
	if err != nil {
		if !errors.Is(err, ErrUnavailable) && ctx.Err() != nil {
			// The deadline ended inside the transaction (a statement, or
			// before COMMIT): rolled back, nothing charged, so it is to
			// be retried like any wait that outlasted it (review 23R2).
			err = fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		return nil, fmt.Errorf("settling reservation %s: %w", r.id, err)
	}
	r.done = true
	return crossed, nil
}

// Release ends a reservation whose call never reached the provider:
// Settle with 0.
func (r *Reservation) Release() error {
	_, err := r.Settle(0, time.Now())
	return err
}

func (r *Reservation) settle(ctx context.Context, actual float64, now time.Time) ([]Budget, error) {
	l := r.l
	conn, release, err := l.writeConn(ctx)
	if err != nil {
		return nil, dbErr(err)
	}
	defer release()
	tx, err := begin(ctx, conn)
	if err != nil {
		return nil, dbErr(err)
	}
	defer tx.Rollback() //nolint:errcheck // no-op after Commit
	if _, err := tx.ExecContext(ctx, `DELETE FROM budget_reservations WHERE id = ?`, r.id); err != nil {
		return nil, dbErr(err)
	}
	var crossed []Budget
	if actual > 0 {
		for _, old := range r.budgets {
			b, err := scanBudget(tx.QueryRowContext(ctx, sqlSelectBudgets+` WHERE id = ?`, old.ID))
			if errors.Is(err, sql.ErrNoRows) {
				continue // cleared while the call was in flight
			}
			if err != nil {
				return nil, dbErr(err)
			}
			ts := now.UnixMicro()
			res, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO budget_charges (budget_id, reservation_id, ts_us, amount) VALUES (?, ?, ?, ?)`,
				b.ID, r.id, ts, actual)
			if err != nil {
				return nil, dbErr(err)
			}
			if n, err := res.RowsAffected(); err != nil {
				return nil, dbErr(err)
			} else if n == 0 {
				continue // already charged
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO budget_spend (budget_id, bucket_us, amount) VALUES (?, ?, ?)
				ON CONFLICT (budget_id, bucket_us) DO UPDATE SET amount = amount + excluded.amount`,
				b.ID, floorBucket(ts), actual); err != nil {
				return nil, dbErr(err)
			}
			if b.Soft <= 0 {
				continue
			}
			first, err := l.softNotice(ctx, tx, b, now)
			if err != nil {
				return nil, err
			}
			if first {
				crossed = append(crossed, b)
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, dbErr(err)
	}
	return crossed, nil
}

// softNotice records, once per window, that b's spend reached its soft
// limit, and reports whether this call recorded it. Calendar windows are
// keyed by their start; a rolling window by the notice's time, counting as
// already noticed while that time is inside the window.
func (l *Ledger) softNotice(ctx context.Context, tx *sql.Tx, b Budget, now time.Time) (bool, error) {
	u, err := l.usage(ctx, tx, b, now)
	if err != nil {
		return false, err
	}
	if u.spent < b.Soft-epsilon {
		return false, nil
	}
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM budget_notices WHERE budget_id = ? AND window_start_us >= ?`,
		b.ID, u.start.UnixMicro()).Scan(&n); err != nil {
		return false, dbErr(err)
	}
	if n > 0 {
		return false, nil
	}
	key := u.start.UnixMicro()
	if !isCalendar(b.Window) {
		key = now.UnixMicro()
	}
	if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO budget_notices (budget_id, window_start_us) VALUES (?, ?)`, b.ID, key); err != nil {
		return false, dbErr(err)
	}
	return true, nil
}

// Amount formats a dollar amount for people: whole cents as cents (5.00,
// 0.04), anything finer to the digit it has, up to 1e-8 (0.035, 0.00195),
// so that a limit is shown as it was set.
func Amount(usd float64) string {
	if math.IsNaN(usd) || math.IsInf(usd, 0) || math.Abs(usd) >= 1e15 {
		return strconv.FormatFloat(usd, 'g', -1, 64)
	}
	if cents := math.Round(usd * 100); math.Abs(usd*100-cents) < 1e-9*max(1, math.Abs(cents)) {
		return strconv.FormatFloat(cents/100, 'f', 2, 64)
	}
	r := math.Round(usd*1e8) / 1e8
	if r == 0 {
		return strconv.FormatFloat(usd, 'g', 3, 64)
	}
	return strconv.FormatFloat(r, 'f', -1, 64)
}

// Dollars is Amount with a dollar sign.
func Dollars(usd float64) string { return "$" + Amount(usd) }

// busyWithin lowers conn's busy timeout to what is left of ctx's deadline,
// when that is shorter, so that a ledger write (a reservation, a
// settlement before its call's response ends) gives up on a locked
// database within its deadline: waiting for the ledger's one connection
// and the write gate takes from the same time, and SQLite's busy handler
// does not see ctx. reset, when not nil, puts the timeout back.
func busyWithin(ctx context.Context, conn *sql.Conn) (reset func(), err error) {
	dl, ok := ctx.Deadline()
	if !ok {
		return nil, nil
	}
	left := time.Until(dl).Milliseconds()
	if left >= busyTimeoutMS {
		return nil, nil
	}
	if _, err := conn.ExecContext(ctx, fmt.Sprintf("PRAGMA busy_timeout = %d", max(left, 1))); err != nil {
		return nil, err
	}
	return func() {
		_, _ = conn.ExecContext(context.Background(), fmt.Sprintf("PRAGMA busy_timeout = %d", busyTimeoutMS))
	}, nil
}

// Exhausted budgets. Each call reserves its worst case and settles at or
// below it, so spend stops a little short of a hard limit and spent +
// reserved never reaches it: a budget whose room is below its callers'
// worst case refused them while its quota read "soft" (review 30S). A
// refusal for the spend itself (not for calls in flight, nor a call larger
// than the whole budget) records, in budget_meta, the latest such refusal:
// its time and worst case (markExhausted); the quota is "hard" while it
// lies in the window and the room the spend leaves is below it. One rule
// for every window (review 30R7: keeping the smallest amount refused let a
// refusal made under a lower limit veto the later ones, and a rolling
// window's smaller, older refusal hide a later, larger one).
const (
	exhaustedAt  = "refused_at:"   // + budget id: unix µs of the refusal
	exhaustedAmt = "refused_pusd:" // + budget id: the worst case, in 1e-12 USD
)

// exhaustedMark is a budget's refusal marker: when, and the worst case
// refused.
type exhaustedMark struct {
	at     time.Time
	amount float64
}

// markRequest is a marker to write for a budget.
type markRequest struct {
	budgetID string
	mark     exhaustedMark
}

// markExhausted records a refusal in the markers of the refusing budgets
// whose spend leaves no room for the call (ref.exhausted; not a call larger
// than a whole budget, nor one refused only for calls in flight), whichever
// path refused: the later refusal replaces a pending one, and the ledger's
// goroutine writes them (writeMarks), at most once every markEvery. A
// refusal never waits for the write lock, and stands whatever the markers'
// fate.
func (l *Ledger) markExhausted(ref *Refusal) {
	if len(ref.exhausted) == 0 {
		return
	}
	l.refusedMu.Lock()
	for _, req := range ref.exhausted {
		l.queueLocked(req)
	}
	l.refusedMu.Unlock()
	select {
	case l.markSig <- struct{}{}:
	default: // a write is due already; it takes these too
	}
}

// queueLocked adds req to the pending markers (refusedMu held) unless a
// later refusal of the same budget is pending.
func (l *Ledger) queueLocked(req markRequest) {
	if p, ok := l.pending[req.budgetID]; ok && p.mark.at.After(req.mark.at) {
		return
	}
	if l.pending == nil {
		l.pending = map[string]markRequest{}
	}
	l.pending[req.budgetID] = req
}

// markWrite bounds one write of the pending markers, so that Close, which
// may wait for one under way and then write what is pending, waits at most
// markCloseWait for them (SQLite's busy wait does not see a context's end,
// only its deadline: review 30R4 measured 7 s). markEvery spaces the
// writes a flood of refusals asks for.
const (
	markWrite     = time.Second
	markCloseWait = 2 * markWrite
	markEvery     = 250 * time.Millisecond
)

// writeMarks writes the pending markers in one transaction on ctx, each
// unless the database holds a later refusal (another gateway's), and none
// for a budget cleared since (30R5). Markers it could not write stay
// pending for the next try (review 30R4: a write that waited for the lock
// lost them for good); Close writes what is pending before the connections
// close (review 30R3).
func (l *Ledger) writeMarks(ctx context.Context) {
	l.refusedMu.Lock()
	reqs := l.pending
	l.pending = nil
	l.refusedMu.Unlock()
	if len(reqs) == 0 {
		return
	}
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, markWrite)
	defer cancel()
	err := func() error {
		conn, release, err := l.writeConn(ctx)
		if err != nil {
			return err
		}
		defer release()
		tx, err := begin(ctx, conn)
		if err != nil {
			return err
		}
		defer tx.Rollback() //nolint:errcheck // no-op after Commit
		for _, req := range reqs {
			if at, _, ok := exhausted(ctx, tx, req.budgetID); ok && !at.Before(req.mark.at) {
				continue
			}
			for _, kv := range [][2]any{{exhaustedAt + req.budgetID, req.mark.at.UnixMicro()}, {exhaustedAmt + req.budgetID, int64(math.Round(req.mark.amount * 1e12))}} {
				if _, err := tx.ExecContext(ctx, `INSERT INTO budget_meta(name, value) SELECT ?1, ?2
				WHERE EXISTS (SELECT 1 FROM budgets WHERE id = ?3)
				ON CONFLICT(name) DO UPDATE SET value = excluded.value`, kv[0], kv[1], req.budgetID); err != nil {
					return err
				}
			}
		}
		return tx.Commit()
	}()
	if err != nil {
		l.refusedMu.Lock()
		for _, req := range reqs {
			l.queueLocked(req)
		}
		l.refusedMu.Unlock()
		if parent.Err() == nil && l.markLog.Allow(time.Minute) { // not at Close: it writes them next
			l.opts.Logger.Warn("budget ledger could not record that a budget refuses its callers (its state reads soft meanwhile); retrying, logged at most every minute",
				zap.String("path", l.path), zap.Error(err))
		}
	}
}

// exhausted reads a budget's refusal marker (markExhausted): when, and the
// worst case refused.
func exhausted(ctx context.Context, q querier, budgetID string) (at time.Time, amount float64, ok bool) {
	// One statement, one snapshot: read apart, a write between the two
	// paired one refusal's time with another's amount (review 30R8).
	var us, pusd sql.NullInt64
	if err := q.QueryRowContext(ctx, `SELECT (SELECT value FROM budget_meta WHERE name = ?1), (SELECT value FROM budget_meta WHERE name = ?2)`,
		exhaustedAt+budgetID, exhaustedAmt+budgetID).Scan(&us, &pusd); err != nil || !us.Valid || !pusd.Valid {
		return time.Time{}, 0, false
	}
	return time.UnixMicro(us.Int64), float64(pusd.Int64) / 1e12, true
}
