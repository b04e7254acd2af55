package budget

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"
)

// pruneEvery is how often old charges, buckets, notices and expired
// reservations are deleted.
const pruneEvery = time.Hour

// snapshot is the set of budgeted subjects at one budgets_version.
type snapshot struct {
	version  int64
	subjects map[scopeSubject]struct{}
}

type scopeSubject struct{ scope, subject string }

// Applies reports whether any budget covers id, from memory only: the
// gateway skips reserving for identities it returns false for. Budgets set
// or cleared by this Ledger are seen at once, by another process within
// Options.Refresh.
func (l *Ledger) Applies(id Identity) bool {
	s := l.cache.Load().subjects
	if len(s) == 0 {
		return false
	}
	for _, k := range identityKeys(id) {
		if _, ok := s[k]; ok {
			return true
		}
	}
	return false
}

// identityKeys lists the (scope, subject) pairs an identity is covered by.
func identityKeys(id Identity) []scopeSubject {
	out := make([]scopeSubject, 0, 4)
	for _, k := range [...]scopeSubject{{ScopeKey, id.KeyID}, {ScopeUser, id.User}, {ScopeTeam, id.Team}, {ScopeWorkspace, id.Workspace}} {
		if k.subject != "" {
			out = append(out, k)
		}
	}
	return out
}

// reload replaces the Applies cache with budgets as of one read
// transaction.
func (l *Ledger) reload(ctx context.Context) error {
	l.reloadMu.Lock()
	defer l.reloadMu.Unlock()
	tx, err := l.rdb.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("loading budgets: %w", dbErr(err))
	}
	defer tx.Rollback() //nolint:errcheck // read-only
	snap := &snapshot{subjects: make(map[scopeSubject]struct{})}
	if err := tx.QueryRowContext(ctx, `SELECT value FROM budget_meta WHERE name = 'budgets_version'`).Scan(&snap.version); err != nil {
		return fmt.Errorf("loading budgets: reading budgets_version: %w", dbErr(err))
	}
	rows, err := tx.QueryContext(ctx, `SELECT DISTINCT scope, subject FROM budgets`)
	if err != nil {
		return fmt.Errorf("loading budgets: %w", dbErr(err))
	}
	defer rows.Close()
	for rows.Next() {
		var k scopeSubject
		if err := rows.Scan(&k.scope, &k.subject); err != nil {
			return fmt.Errorf("loading budgets: %w", dbErr(err))
		}
		snap.subjects[k] = struct{}{}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("loading budgets: %w", dbErr(err))
	}
	l.cache.Store(snap)
	return nil
}

// run polls budgets_version every Refresh, reloading the cache when
// another process changed a budget, and prunes old rows every pruneEvery.
func (l *Ledger) run() {
	defer close(l.done)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-l.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	tick := time.NewTicker(l.opts.Refresh)
	defer tick.Stop()
	lastPrune := time.Now()
	var lastMarks time.Time
	var markLater <-chan time.Time // a write of markers put off (markEvery)
	var lastWarn time.Time
	for {
		select {
		case <-l.stop:
			// What is pending, written before the connections close
			// (after any write under way, within markWrite of its own).
			l.writeMarks(context.Background())
			return
		case <-l.markSig:
			if wait := markEvery - time.Since(lastMarks); wait > 0 {
				if markLater == nil {
					markLater = time.After(wait)
				}
				continue
			}
			lastMarks = time.Now()
			l.writeMarks(ctx)
			continue
		case <-markLater:
			markLater = nil
			lastMarks = time.Now()
			l.writeMarks(ctx)
			continue
		case <-tick.C:
			l.writeMarks(ctx) // pending since a signal, or a failed write
		}
		var v int64
		err := l.rdb.QueryRowContext(ctx, `SELECT value FROM budget_meta WHERE name = 'budgets_version'`).Scan(&v)
		if err == nil && v != l.cache.Load().version {
			err = l.reload(ctx)
		}
		if err != nil && ctx.Err() == nil && time.Since(lastWarn) > time.Minute {
			lastWarn = time.Now()
			l.opts.Logger.Warn("budget refresh failed", zap.String("path", l.path), zap.Error(err))
		}
		if time.Since(lastPrune) >= pruneEvery {
			lastPrune = time.Now()
			if err := l.prune(ctx, lastPrune); err != nil && ctx.Err() == nil {
				l.opts.Logger.Warn("pruning budget ledger failed", zap.String("path", l.path), zap.Error(err))
			}
		}
	}
}

// prune deletes what no window can count any more: charges, buckets and
// notices from before each budget's previous window, and reservations past
// their TTL.
func (l *Ledger) prune(ctx context.Context, now time.Time) error {
	budgets, err := l.List(ctx)
	if err != nil {
		return err
	}
	conn, release, err := l.writeConn(ctx)
	if err != nil {
		return fmt.Errorf("pruning: %w", dbErr(err))
	}
	defer release()
	tx, err := begin(ctx, conn)
	if err != nil {
		return fmt.Errorf("pruning: %w", dbErr(err))
	}
	defer tx.Rollback() //nolint:errcheck // no-op after Commit
	for _, b := range budgets {
		loc, err := l.location(b.TZ)
		if err != nil {
			continue
		}
		start, _, err := windowBounds(b.Window, loc, now)
		if err != nil {
			continue
		}
		prev, _, err := windowBounds(b.Window, loc, start.Add(-time.Microsecond))
		if err != nil {
			continue
		}
		cut := prev.UnixMicro()
		for _, q := range []string{
			`DELETE FROM budget_charges WHERE budget_id = ? AND ts_us < ?`,
			`DELETE FROM budget_spend WHERE budget_id = ? AND bucket_us < ? - ` + fmt.Sprint(bucketUS),
			`DELETE FROM budget_notices WHERE budget_id = ? AND window_start_us < ?`,
		} {
			if _, err := tx.ExecContext(ctx, q, b.ID, cut); err != nil {
				return fmt.Errorf("pruning budget %s: %w", b.ID, dbErr(err))
			}
		}
	}
	// Refusal markers of budgets cleared since (one written just after
	// its budget's clear-budget).
	if _, err := tx.ExecContext(ctx, `DELETE FROM budget_meta WHERE (name GLOB ? OR name GLOB ?)
		AND substr(name, instr(name, ':') + 1) NOT IN (SELECT id FROM budgets)`, exhaustedAt+"*", exhaustedAmt+"*"); err != nil {
		return fmt.Errorf("pruning refusal markers: %w", dbErr(err))
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM budget_reservations WHERE created_us < ?`,
		now.Add(-l.opts.ReservationTTL).UnixMicro()); err != nil {
		return fmt.Errorf("pruning reservations: %w", dbErr(err))
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("pruning: %w", dbErr(err))
	}
	return nil
}
