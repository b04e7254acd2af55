package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"time"
	"unsafe"

	"github.com/metisgateway/metis/internal/sqlitefile"
)

// lastUsedEvery is how often the writer persists key last-used times.
const lastUsedEvery = 2 * time.Second

// sqlKeyLastUsed records a key's last use (by saveLastUsed).
const sqlKeyLastUsed = `UPDATE gateway_keys SET last_used_at = ?
WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)`

// row is an encoded event ready for insertion.
type row struct {
	id      string
	typ     string
	tsUS    int64
	payload []byte // bound as TEXT (a BLOB would be read as JSONB by json_extract)
	call    *Call
}

// rollupKey is the primary key of rollup_hour and rollup_day.
type rollupKey struct {
	bucket                                                  int64
	keyID, user, team, workspace, provider, model, inbShape string
}

// rollupAgg accumulates one rollup row's deltas within a batch.
type rollupAgg struct {
	calls, errors, unpriced, estimated                   int64
	cost, savings                                        float64
	input, cacheRead, cacheWrite, output, reasoning, lat int64
	lastTS                                               int64
}

// sessionAgg accumulates one session row's deltas within a batch: its
// identity (of its first call in the batch), first and last call, whether
// its calls disagree on the identity, and the rollups' sums.
type sessionAgg struct {
	keyID, keyName, user, team, workspace string
	first                                 int64
	mixed                                 bool
	rollupAgg
}

// badEvents describes events dropped because their payload did not encode.
type badEvents struct {
	n   int
	typ string
	err error
}

// batchWriter holds one batch's encoded rows and pre-aggregated rollup
// deltas; its buffers are reused across batches by the writer goroutine.
type batchWriter struct {
	rows         []row
	buf          []byte // backs the batch's *Call payloads
	hour, day    map[rollupKey]*rollupAgg
	hourModel    map[rollupKey]*rollupAgg // identity fields empty
	dayKey       map[rollupKey]*rollupAgg // provider and model empty
	sessions     map[string]*sessionAgg
	args         []any // statement arguments, reused
	stmts        bulkStmts
	lastUsedSave time.Time
	// txRows is the most events one transaction takes: 0 until one is
	// measured (firstTxRows), -1 for the batch size, else a cap below it
	// after transactions that held the write lock past their target (fit).
	txRows int
	// behind: more than two transactions' worth of events wait after this
	// one, so the writer is falling behind its traffic (take).
	behind bool
	held   time.Duration // how long the last transaction held the write lock
	// restartAt is the WAL size, in frames, from which checkpoint
	// truncates the WAL: restartPages, or more after readers outlasted
	// its wait; restartFails counts those in a row (restartWait). pinned
	// is set when a reader outlasted the longest wait, at triedAt, with
	// pinnedAt frames copied (see restartRetry).
	restartAt    int64
	restartFails int
	pinned       bool
	pinnedAt     int64
	triedAt      time.Time
}

// txTarget is the longest the trace writer means to hold the database's
// write lock while it keeps up with its traffic: on storage slow enough
// that a full batch takes longer, it writes in smaller transactions, so
// that a budget reservation (which waits its turn at the write gate) is
// not held for seconds behind one. At the benchmark's full load the writer
// spends some 19 µs of CPU on a call's three events (BENCHMARKS.md), about
// 13 ms for a 2,048-event batch encoding included, far under it.
//
// Each transaction also rewrites a fixed set of pages (the last leaf of
// every index and rollup it touches), which small transactions pay again
// and again: on a sync-mounted disk at 300 IOPS a transaction of 16
// events took ~200 ms, so sizing by time alone cut the writer to a sixth
// of its throughput and the trace fell behind its traffic (audit 23F).
// While it is behind, the writer lets a transaction hold the lock up to
// txBehindTarget instead, in larger transactions that amortise those
// pages: it keeps up where the storage can, and a reservation still waits
// well within its 5 s.
const (
	txTarget       = 200 * time.Millisecond
	txBehindTarget = 2 * time.Second
)

// Bounds of batchWriter.txRows: the first transaction takes at most
// firstTxRows events, and a slow one never less than minTxRows.
const (
	firstTxRows = 64
	minTxRows   = 32
)

// txCap is the most events the next transaction takes, with batchSize
// the configured maximum.
func (w *batchWriter) txCap(batchSize int) int {
	switch {
	case w.txRows == 0:
		return min(firstTxRows, batchSize)
	case w.txRows < 0:
		return batchSize
	}
	return min(w.txRows, batchSize)
}

// take is how many of n waiting events the next transaction takes, with
// batchSize the configured maximum, and notes whether the writer is
// behind.
func (w *batchWriter) take(n, batchSize int) int {
	c := w.txCap(batchSize)
	w.behind = n > 3*c
	return min(n, c)
}

// fit sizes later transactions after one of rows events held the write
// lock for d, against txTarget, or txBehindTarget while the writer is
// behind: one past it halves them (at least minTxRows); a full one under
// half of it doubles them, back up to the batch size.
func (w *batchWriter) fit(rows int, d time.Duration, batchSize int) {
	target := txTarget
	if w.behind {
		target = txBehindTarget
	}
	c := w.txCap(batchSize)
	switch {
	case d > target:
		w.txRows = max(minTxRows, min(c, rows)/2)
	case d < target/2 && rows >= c:
		if w.txRows = 2 * c; w.txRows >= batchSize {
			w.txRows = -1
		}
	}
}

// prepare encodes batch into rows and aggregates the calls' rollup deltas,
// so that each rollup row is upserted once per transaction.
func (w *batchWriter) prepare(batch []Event) badEvents {
	if w.hour == nil {
		w.hour = make(map[rollupKey]*rollupAgg)
		w.day = make(map[rollupKey]*rollupAgg)
		w.hourModel = make(map[rollupKey]*rollupAgg)
		w.dayKey = make(map[rollupKey]*rollupAgg)
		w.sessions = make(map[string]*sessionAgg)
	}
	var bad badEvents
	for i := range batch {
		ev := &batch[i]
		var payload []byte
		var call *Call
		var err error
		w.buf, payload, call, err = encodePayload(w.buf, ev)
		if err != nil {
			bad.n++
			bad.typ, bad.err = ev.Type, err
			continue
		}
		ts := ev.Time.UnixMicro()
		w.rows = append(w.rows, row{id: ev.ID.String(), typ: ev.Type, tsUS: ts, payload: payload, call: call})
		if call == nil {
			continue
		}
		sec := ts / 1e6
		if ts < 0 && ts%1e6 != 0 {
			sec-- // floor for times before 1970
		}
		k := rollupKey{keyID: call.GatewayKeyID, user: call.User, team: call.Team, workspace: call.Workspace,
			provider: call.Provider, model: call.Model, inbShape: call.InboundShape}
		hour, day := sec-mod(sec, 3600), sec-mod(sec, 86400)
		k.bucket = hour
		addRollup(w.hour, k, call, ts)
		k.bucket = day
		addRollup(w.day, k, call, ts)
		addRollup(w.dayKey, rollupKey{bucket: day, keyID: call.GatewayKeyID, user: call.User, team: call.Team,
			workspace: call.Workspace, inbShape: call.InboundShape}, call, ts)
		addRollup(w.hourModel, rollupKey{bucket: hour, provider: call.Provider, model: call.Model,
			inbShape: call.InboundShape}, call, ts)
		if call.SessionID != "" {
			a := w.sessions[call.SessionID]
			if a == nil {
				a = &sessionAgg{keyID: call.GatewayKeyID, keyName: call.KeyName, user: call.User,
					team: call.Team, workspace: call.Workspace, first: ts, rollupAgg: rollupAgg{lastTS: ts}}
				w.sessions[call.SessionID] = a
			} else if a.keyID != call.GatewayKeyID || a.user != call.User || a.team != call.Team ||
				a.workspace != call.Workspace {
				a.mixed = true
			}
			a.first = min(a.first, ts)
			a.rollupAgg.add(call, ts)
		}
	}
	return bad
}

func mod(a, b int64) int64 {
	m := a % b
	if m < 0 {
		m += b
	}
	return m
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

func addRollup(m map[rollupKey]*rollupAgg, k rollupKey, c *Call, ts int64) {
	a := m[k]
	if a == nil {
		a = &rollupAgg{lastTS: ts}
		m[k] = a
	}
	a.add(c, ts)
}

// add counts call c at ts.
func (a *rollupAgg) add(c *Call, ts int64) {
	a.calls++
	a.errors += b2i(c.isError())
	a.unpriced += b2i(!c.Priced)
	a.estimated += b2i(c.UsageSource == "estimated")
	a.cost += c.pricedCost()
	a.input += c.InputTokens
	a.cacheRead += c.CacheReadInputTokens
	a.cacheWrite += c.CacheCreationInputTokens
	a.output += c.OutputTokens
	a.reasoning += c.ReasoningTokens
	a.savings += c.CacheSavingsUSD
	a.lat += c.LatencyMS
	a.lastTS = max(a.lastTS, ts)
}

// reset empties the buffers for the next batch.
func (w *batchWriter) reset() {
	clear(w.rows)
	w.rows = w.rows[:0]
	w.buf = w.buf[:0]
	clear(w.hour)
	clear(w.day)
	clear(w.hourModel)
	clear(w.dayKey)
	clear(w.sessions)
}

// write commits the prepared rows, their calls and rollup upserts and, every
// lastUsedEvery (or when forced), the keys' pending last-used times, in one
// transaction on the writer pool's connection. It drives the SQLite driver
// directly (database/sql's Conn.Raw): the multi-row statements are prepared
// once per connection and each binds and steps in one cgo call, without
// database/sql's per-value conversion of the ~45 values a call writes.
func (w *batchWriter) write(ctx context.Context, s *Store, forceLastUsed bool) error {
	saveUsed := forceLastUsed || time.Since(w.lastUsedSave) >= lastUsedEvery
	if len(w.rows) == 0 && !(saveUsed && s.pendingLastUsed()) {
		return nil
	}
	var saved []usageMark
	if err := s.onWriterConn(ctx, func(dc any) error {
		var err error
		if saved, err = w.writeTx(ctx, s, dc, saveUsed); err == nil {
			w.checkpoint(ctx, dc, s.gate)
		}
		return err
	}); err != nil {
		return err
	}
	if saveUsed {
		w.lastUsedSave = time.Now()
		for _, m := range saved {
			m.u.persisted.Store(m.at)
		}
	}
	return nil
}

// writeTx runs write's transaction on the driver connection dc, rolling it
// back on any error.
func (w *batchWriter) writeTx(ctx context.Context, s *Store, dc any, saveUsed bool) (_ []usageMark, err error) {
	ex, ok := dc.(driver.ExecerContext)
	if !ok {
		return nil, fmt.Errorf("trace writer: driver connection %T cannot execute statements", dc)
	}
	if err := w.stmts.prepare(ctx, dc, s); err != nil {
		return nil, err
	}
	if err := s.gate.Lock(ctx); err != nil {
		return nil, fmt.Errorf("waiting for the write gate: %w", err)
	}
	defer s.gate.Unlock()
	if _, err := ex.ExecContext(ctx, "BEGIN IMMEDIATE", nil); err != nil {
		return nil, fmt.Errorf("begin: %w", err)
	}
	locked := time.Now()
	defer func() {
		if err != nil {
			ex.ExecContext(ctx, "ROLLBACK", nil) //nolint:errcheck // the write error is what matters
		}
	}()
	if len(w.rows) > 0 {
		if err := w.insertRows(ctx); err != nil {
			return nil, err
		}
	}
	var saved []usageMark
	if saveUsed {
		saved, err = s.saveLastUsed(func(used int64, id string) error {
			return w.stmts.exec(ctx, bulkLastUsed, append(w.args[:0], used, id, used))
		})
		if err != nil {
			return nil, err
		}
	}
	if _, err := ex.ExecContext(ctx, "COMMIT", nil); err != nil {
		return nil, fmt.Errorf("commit: %w", err)
	}
	w.held = time.Since(locked)
	return saved, nil
}

// closeStmts closes the writer's prepared statements on their connection,
// which it holds meanwhile (the driver's statements are not safe for
// concurrent use with their connection).
func (w *batchWriter) closeStmts(ctx context.Context, s *Store) error {
	if w.stmts.conn == nil {
		return nil
	}
	return s.onWriterConn(ctx, func(any) error { return w.stmts.close() })
}

// onWriterConn runs fn with the writer pool's driver connection, held
// exclusively meanwhile.
func (s *Store) onWriterConn(ctx context.Context, fn func(dc any) error) error {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("writer connection: %w", err)
	}
	defer conn.Close()
	return conn.Raw(fn)
}

// onWriteLocked runs fn with the writer pool's connection and then the
// file's write gate held (in that order, see sqlitefile.WriteGate), for a
// write outside the trace writer's batches.
func (s *Store) onWriteLocked(ctx context.Context, fn func(conn *sql.Conn) error) error {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("writer connection: %w", err)
	}
	defer conn.Close()
	if err := s.gate.Lock(ctx); err != nil {
		return fmt.Errorf("waiting for the write gate: %w", err)
	}
	defer s.gate.Unlock()
	return fn(conn)
}

// checkpointPages is the WAL size, in pages, from which the trace writer
// checkpoints the WAL into the database (SQLite's automatic checkpoint
// runs from 1000 pages, 4 MiB). Checkpointing a quarter as often writes
// each rollup and index page the batches in between share once rather
// than up to four times, which saves about a tenth of the writer's CPU;
// the WAL stays bounded at about 16 MiB plus one batch (while no reader
// pins an older snapshot).
//
// SQLite's automatic checkpoint is off on the writer's connection and the
// budget ledger's: it runs inside COMMIT, once the write lock is let go
// but before COMMIT returns, so the write gate would stay held through the
// checkpoint's syncs and a reservation would wait for them (review 23R: a
// 5.7 s reservation where SQLite's lock alone let it through in 1 ms).
// The writer runs a passive checkpoint itself after giving the gate back.
const checkpointPages = 4000

// restartPages is the WAL size, in pages, from which the trace writer
// waits for the WAL's readers to move on (restartWait, longer after a
// try they outlasted) and truncates it. A passive checkpoint copies
// frames only up to the oldest snapshot a reader holds, and SQLite starts
// the WAL over only once it is all copied: readers that overlap (the
// dashboard's queries, an analytics query over months) can keep it from
// ever being all copied, and the WAL grew by about 1,000 pages a second
// under steady traffic (review 24R: 99 MiB in 25 s, and the file stayed
// that size).
const restartPages = 2 * checkpointPages

// restartWait bounds how long the truncating checkpoint waits for
// readers, with the write gate and SQLite's write lock held: the ledger's
// writes and the next batch wait meanwhile. One that could not wait long
// enough (readers that keep their snapshots longer: a dashboard's panels
// over a large database, analytics over months) is tried again once the
// WAL has grown by half checkpointPages more, waiting twice as long, up to
// restartWaitMax (review 24R2: readers of 1 s kept every 250 ms attempt
// from succeeding, and the WAL grew as before); the wait goes back to
// restartWait once one succeeds. A reservation (5 s) waits it out; a
// settlement outlasts its 0.5 s and is charged by its retry.
//
// After a try at restartWaitMax failed, and while the checkpoint copies no
// further than when it gave up, the reader that stopped it most likely
// still holds its snapshot (an open `sqlite3` shell, a long `.backup`):
// the next try comes restartRetry later, not at the WAL's next growth.
// Waiting for such a reader again and again kept the ledger behind the
// gate about three quarters of the time (review 27S). Only after the
// longest wait: a reader that starts while the WAL is all copied holds
// the count where it is too, and the dashboard's overlapping queries do
// that (review 27R2: a first version that stopped after any failed try
// let the WAL grow as before 24R2).
const (
	restartWait    = 250 * time.Millisecond
	restartWaitMax = 2 * time.Second
	restartRetry   = 30 * time.Second
)

// walSizeLimit is the size, in bytes, the writer's connection truncates
// the WAL file to when the WAL starts over (PRAGMA journal_size_limit):
// without it, a file that grew while readers outlasted restartWait kept
// that size until the gateway stopped or a prune truncated it.
const walSizeLimit = 2 * checkpointPages * 4096

// checkpoint runs a passive checkpoint on dc once the WAL holds
// checkpointPages frames. It reads the WAL's size first with a NOOP
// checkpoint (SQLite 3.51+), which only looks at the WAL index, so the
// size is exact whoever wrote or reset the WAL meanwhile (the ledger, a
// `caddy metis prune` that truncates it). A passive checkpoint takes no
// write lock: the ledger and the next batch commit meanwhile. A failure
// (a busy checkpoint lock, an I/O error) only leaves the WAL for the next
// one; the next commit reports a lasting I/O error. A WAL that readers
// kept from starting over (restartPages) is truncated, with the write gate
// held: a restarting checkpoint waits for the readers as well, but leaves
// the WAL to the next writer to start over, and readers that began in
// between kept it from that too.
func (w *batchWriter) checkpoint(ctx context.Context, dc any, gate *sqlitefile.WriteGate) {
	q, ok := dc.(driver.QueryerContext)
	if !ok {
		return
	}
	if _, frames, _, err := walCheckpoint(ctx, q, "NOOP"); err != nil || frames < checkpointPages {
		return
	}
	_, frames, copied, err := walCheckpoint(ctx, q, "PASSIVE")
	if err != nil || frames < max(w.restartAt, restartPages) {
		if frames < restartPages {
			w.restartAt, w.pinned = 0, false // the WAL started over
		}
		return
	}
	if w.pinned && copied == w.pinnedAt && time.Since(w.triedAt) < restartRetry {
		return // the reader that outlasted the longest wait still holds its snapshot
	}
	ex, ok := dc.(driver.ExecerContext)
	if !ok || gate.Lock(ctx) != nil {
		return
	}
	defer gate.Unlock()
	wait := min(restartWait<<min(w.restartFails, 4), restartWaitMax)
	if _, err := ex.ExecContext(ctx, fmt.Sprintf("PRAGMA busy_timeout = %d", wait.Milliseconds()), nil); err != nil {
		return
	}
	if busy, _, copied, err := walCheckpoint(ctx, q, "TRUNCATE"); err != nil || busy {
		w.restartAt = frames + checkpointPages/2
		w.restartFails++
		w.pinned, w.pinnedAt, w.triedAt = wait >= restartWaitMax, copied, time.Now()
	} else {
		w.restartAt, w.restartFails, w.pinned = 0, 0, false
	}
	// A failure leaves the shorter wait, which the batches' own gate
	// makes rarely matter.
	ex.ExecContext(ctx, fmt.Sprintf("PRAGMA busy_timeout = %d", busyTimeoutMS), nil) //nolint:errcheck // see above
}

// walCheckpoint runs PRAGMA wal_checkpoint(mode) and returns whether it
// was kept from completing (SQLITE_BUSY), the frames in the WAL and how
// many of them are copied into the database.
func walCheckpoint(ctx context.Context, q driver.QueryerContext, mode string) (busy bool, frames, copied int64, err error) {
	rs, err := q.QueryContext(ctx, "PRAGMA wal_checkpoint("+mode+")", nil)
	if err != nil {
		return false, 0, 0, err
	}
	defer rs.Close()
	res := make([]driver.Value, 3)
	if err := rs.Next(res); err != nil {
		return false, 0, 0, err
	}
	b, _ := res[0].(int64)
	frames, _ = res[1].(int64)
	copied, _ = res[2].(int64)
	return b != 0, frames, copied, nil
}

// insertRows inserts the events and calls and upserts the rollups and
// sessions of the prepared batch, many rows per statement.
func (w *batchWriter) insertRows(ctx context.Context) error {
	args := w.args[:0]
	for i := range w.rows {
		r := &w.rows[i]
		args = append(args, r.id, r.typ, r.tsUS, textArg(r.payload))
	}
	if err := w.stmts.exec(ctx, bulkEvents, args); err != nil {
		return fmt.Errorf("inserting events: %w", err)
	}
	args = args[:0]
	for i := range w.rows {
		r := &w.rows[i]
		c := r.call
		if c == nil {
			continue
		}
		var cost any
		if c.Priced && c.CostUSD != nil {
			cost = *c.CostUSD
		}
		var ttft any
		if c.TTFTMS != nil {
			ttft = *c.TTFTMS
		}
		args = append(args, r.id, r.tsUS, c.TurnID, c.GatewayKeyID, c.KeyName, c.User, c.Team,
			c.Workspace, c.SessionID, c.InboundShape, c.Provider, c.RequestedModel, c.Model, c.Stream,
			int64(c.Status), nullString(c.ErrorClass), int64(c.Attempts), c.InputTokens,
			c.CacheReadInputTokens, c.CacheCreationInputTokens, c.OutputTokens, c.ReasoningTokens, cost,
			c.Priced, c.UsageSource == "estimated", c.CacheSavingsUSD, c.LatencyMS, ttft)
	}
	if err := w.stmts.exec(ctx, bulkCalls, args); err != nil {
		return fmt.Errorf("inserting calls: %w", err)
	}
	if err := w.stmts.exec(ctx, bulkHour, rollupArgs(args[:0], w.hour)); err != nil {
		return fmt.Errorf("updating rollup_hour: %w", err)
	}
	if err := w.stmts.exec(ctx, bulkDay, rollupArgs(args[:0], w.day)); err != nil {
		return fmt.Errorf("updating rollup_day: %w", err)
	}
	args = args[:0]
	for k, a := range w.hourModel {
		args = append(args, k.bucket, k.provider, k.model, k.inbShape, a.calls, a.errors, a.unpriced, a.estimated,
			a.cost, a.input, a.cacheRead, a.cacheWrite, a.output, a.reasoning, a.savings, a.lat, a.lastTS)
	}
	if err := w.stmts.exec(ctx, bulkHourModel, args); err != nil {
		return fmt.Errorf("updating rollup_hour_model: %w", err)
	}
	args = args[:0]
	for k, a := range w.dayKey {
		args = append(args, k.bucket, k.keyID, k.user, k.team, k.workspace, k.inbShape, a.calls, a.errors,
			a.unpriced, a.estimated, a.cost, a.input, a.cacheRead, a.cacheWrite, a.output, a.reasoning, a.savings,
			a.lat, a.lastTS)
	}
	if err := w.stmts.exec(ctx, bulkDayKey, args); err != nil {
		return fmt.Errorf("updating rollup_key_day: %w", err)
	}
	args = args[:0]
	for id, a := range w.sessions {
		args = append(args, id, a.keyID, a.keyName, a.user, a.team, a.workspace,
			a.first, a.lastTS, a.calls, a.unpriced, a.cost, a.errors, a.estimated, a.input, a.cacheRead,
			a.cacheWrite, a.output, a.reasoning, a.savings, a.lat, a.mixed)
	}
	if err := w.stmts.exec(ctx, bulkSessions, args); err != nil {
		return fmt.Errorf("updating sessions: %w", err)
	}
	clear(args) // release the batch's strings
	w.args = args[:0]
	return nil
}

// rollupArgs appends the upsert arguments of m's rows to args.
func rollupArgs(args []any, m map[rollupKey]*rollupAgg) []any {
	for k, a := range m {
		args = append(args, k.bucket, k.keyID, k.user, k.team, k.workspace, k.provider, k.model,
			k.inbShape, a.calls, a.errors, a.unpriced, a.estimated, a.cost, a.input, a.cacheRead, a.cacheWrite,
			a.output, a.reasoning, a.savings, a.lat, a.lastTS)
	}
	return args
}

// textArg binds b as TEXT (a BLOB would be read as JSONB by json_extract)
// without copying it: the string shares b's bytes, which the batch does not
// modify before its rows are reset, and SQLite copies bound text.
func textArg(b []byte) string {
	return unsafe.String(unsafe.SliceData(b), len(b))
}

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}
