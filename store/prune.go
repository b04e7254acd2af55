package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// pruneBatch is how many rows one DELETE of Prune removes: each is its own
// transaction, so a gateway writing to the same file waits at most one
// batch (tens of milliseconds) for the write lock.
const pruneBatch = 5000

// Pruned counts what Prune deleted.
type Pruned struct {
	Events, Calls int64
}

// Prune deletes the trace events and the calls rows dated before before.
// The hourly and daily rollups, the sessions' sums, the keys and the
// budgets are kept, so spend by hour and day stays whole for any window;
// what goes is each call's own row and event (and each refusal's). Space
// freed this way is reused by later writes; the file itself shrinks only
// with VACUUM, run while no gateway writes to it.
func (s *Store) Prune(ctx context.Context, before time.Time) (Pruned, error) {
	var out Pruned
	cut := before.UnixMicro()
	for _, t := range []struct {
		n     *int64
		query string
	}{
		{&out.Events, `DELETE FROM events WHERE rowid IN (SELECT rowid FROM events WHERE timestamp_us < ? LIMIT ?)`},
		{&out.Calls, `DELETE FROM calls WHERE rowid IN (SELECT rowid FROM calls WHERE ts_us < ? LIMIT ?)`},
	} {
		for {
			var n int64
			err := s.onWriteLocked(ctx, func(conn *sql.Conn) error {
				res, err := conn.ExecContext(ctx, t.query, cut, pruneBatch)
				if err != nil {
					return err
				}
				n, err = res.RowsAffected()
				return err
			})
			if err != nil {
				return out, fmt.Errorf("pruning the trace before %s: %w", before.UTC().Format(time.RFC3339), err)
			}
			*t.n += n
			if n < pruneBatch {
				break
			}
		}
	}
	// The deletions went through the WAL, which would stay as large until
	// a checkpoint can reset it: best effort (a reader holds it back).
	_ = s.onWriteLocked(ctx, func(conn *sql.Conn) error {
		_, err := conn.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`)
		return err
	})
	return out, nil
}
