// Package budget is Metis's spend-cap ledger: budgets on a gateway key, a
// user, a team or a workspace, each over a calendar window (daily, weekly,
// monthly, aligned in an IANA time zone) or a rolling duration, with a hard
// and an optional soft limit in USD.
//
// The gateway reserves a call's worst-case cost against every budget that
// covers the caller in one BEGIN IMMEDIATE transaction (Reserve), then
// settles the reservation to the actual priced cost (Reservation.Settle) or
// releases it (Reservation.Release). Because the check and the reservation
// happen under SQLite's write lock, concurrent requests, in one process or
// several sharing the database file, cannot overshoot a hard limit. A
// reservation whose process crashed stops counting after
// Options.ReservationTTL.
//
// The ledger lives in the trace database file but manages its own tables
// and schema version (budget_meta), leaving PRAGMA user_version to the trace
// store. It does not import Caddy.
package budget

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	_ "github.com/mattn/go-sqlite3" // registers the "sqlite3" database/sql driver
	"github.com/metisgateway/metis/internal/loggate"
	"github.com/metisgateway/metis/internal/sqlitefile"
	"github.com/oklog/ulid/v2"
	"go.uber.org/zap"

	_ "time/tzdata" // budgets name IANA zones; hosts without zoneinfo still load them
)

// Scopes a budget can be set on.
const (
	ScopeKey       = "key"
	ScopeUser      = "user"
	ScopeTeam      = "team"
	ScopeWorkspace = "workspace"
)

// Calendar windows. Any positive Go duration ("72h") is a rolling window.
const (
	WindowDaily   = "daily"
	WindowWeekly  = "weekly"
	WindowMonthly = "monthly"
)

// Quota states.
const (
	StateOK   = "ok"
	StateSoft = "soft"
	StateHard = "hard"
)

// Option defaults, applied to zero fields of Options.
const (
	DefaultRefresh        = time.Second
	DefaultReservationTTL = 2 * time.Hour
)

// epsilon absorbs float rounding when comparing sums of dollars with limits
// (a nano-dollar, the precision analytics report).
const epsilon = 1e-9

// busyTimeoutMS is how long the ledger's writes wait for the database's
// write lock (SQLite's busy timeout); a reservation waits no longer than
// its own deadline (busyWithin).
const busyTimeoutMS = 5000

// settleTimeout bounds a Settle, which runs on its own context.
const settleTimeout = 30 * time.Second

var (
	// ErrNoBudget is returned by Clear when no budget matches.
	ErrNoBudget = errors.New("no such budget")
	// ErrUnavailable wraps every error caused by the database (locked past
	// the busy timeout, unreadable, closed): the ledger could not decide.
	// The gateway applies its fail-open/fail-closed policy to it.
	ErrUnavailable = errors.New("budget ledger unavailable")
)

// Budget is a spend cap on one subject over one window.
type Budget struct {
	ID        string    `json:"id"`      // "bd_" + ULID
	Scope     string    `json:"scope"`   // "key" | "user" | "team" | "workspace"
	Subject   string    `json:"subject"` // the key id, user, team or workspace path
	Window    string    `json:"window"`  // "daily" | "weekly" | "monthly" | a Go duration for a rolling window ("72h")
	TZ        string    `json:"tz"`      // IANA zone for calendar windows, default "UTC"
	Hard      float64   `json:"hard"`    // USD, > 0
	Soft      float64   `json:"soft"`    // USD, 0 = none; must be < Hard
	CreatedAt time.Time `json:"created_at"`
}

// Identity is who a call is made for; empty fields match no budget.
type Identity struct{ KeyID, User, Team, Workspace string }

// Options tune a Ledger. Zero fields take the defaults.
type Options struct {
	// Refresh is how often the Applies cache polls budget_meta for budgets
	// changed by another process. Default 1s.
	Refresh time.Duration
	// ReservationTTL is the age after which a reservation is treated as
	// released (its process crashed before settling). Default 2h.
	ReservationTTL time.Duration
	// Logger receives refresh and pruning errors; nil means zap.NewNop().
	Logger *zap.Logger
}

func (o Options) withDefaults() Options {
	if o.Refresh <= 0 {
		o.Refresh = DefaultRefresh
	}
	if o.ReservationTTL <= 0 {
		o.ReservationTTL = DefaultReservationTTL
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	return o
}

// Ledger is an open budget ledger. All methods are safe for concurrent use.
type Ledger struct {
	path string
	opts Options
	db   *sql.DB // writer, one connection: Reserve and Settle serialise in-process
	rdb  *sql.DB // readers: List, Quotas, cache refresh
	// gate orders db's write transactions with the trace writer's on the
	// same file (see writeConn). gmu guards the ledger's hold on it: held
	// while one of its transactions runs (active, on db's one connection),
	// and kept for the next while others wait for the connection
	// (waiting), for up to ledgerHold since it was taken (gateSince).
	gate      *sqlitefile.WriteGate
	gmu       sync.Mutex
	gateHeld  bool
	active    bool
	waiting   int
	gateSince time.Time
	// quietConn is the driver connection whose automatic checkpoint
	// writeConn turned off; only the transaction holding db's one
	// connection reads or sets it.
	quietConn any

	// refused remembers when each identity was last refused (see Reserve);
	// lockedLog spaces the warning of refusals made from a reader because
	// the ledger could not be written.
	refusedMu sync.Mutex
	refused   map[Identity]time.Time
	lockedLog loggate.Gate
	markLog   loggate.Gate // spaces the warning of markers not written
	// pending are the refusal markers for the background goroutine to
	// write (markExhausted, writeMarks); markSig says a write is due.
	pending map[string]markRequest
	markSig chan struct{}

	cache    atomic.Pointer[snapshot]
	reloadMu sync.Mutex
	zones    sync.Map // tz name → *time.Location

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
	closeErr  error
}

// Open opens the database file at path (created 0600, with its folder
// 0700, when missing) with its own connections, creates or upgrades the
// budget tables, loads the Applies cache and starts the goroutine that
// refreshes it and prunes old rows. Call Close to stop it.
func Open(path string, o Options) (*Ledger, error) {
	abs, err := sqlitefile.Prepare(path)
	if err != nil {
		return nil, fmt.Errorf("opening budget ledger %s: %w", cmp.Or(abs, path), err)
	}
	l, err := open(abs, o.withDefaults())
	if err != nil {
		return nil, fmt.Errorf("opening budget ledger %s: %w", abs, err)
	}
	return l, nil
}

// open opens the prepared (sqlitefile.Prepare) database file at the
// absolute path.
func open(path string, o Options) (*Ledger, error) {
	if err := sqlitefile.CheckForeign(context.Background(), path); err != nil {
		return nil, err
	}
	db, err := sqlitefile.OpenWriter(path,
		"_journal_mode=WAL", fmt.Sprintf("_busy_timeout=%d", busyTimeoutMS), "_txlock=immediate", "_synchronous=NORMAL")
	if err != nil {
		return nil, fmt.Errorf("opening writer: %w", err)
	}
	ctx := context.Background()
	if err := migrate(ctx, db); err != nil {
		db.Close()
		return nil, err
	}
	rdb, err := sqlitefile.OpenReaders(path, 2)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("opening readers: %w", err)
	}
	l := &Ledger{path: path, opts: o, db: db, rdb: rdb, stop: make(chan struct{}), done: make(chan struct{}), markSig: make(chan struct{}, 1)}
	if err := l.reload(ctx); err != nil {
		db.Close()
		rdb.Close()
		return nil, err
	}
	l.gate = sqlitefile.AcquireGate(path)
	go l.run()
	return l, nil
}

// ledgerHold bounds how long the ledger keeps the write gate across its
// queued transactions before the trace writer gets a turn: a reservation
// or settlement takes milliseconds, so a burst of budgeted calls is served
// in one turn rather than one transaction per writer batch (review 23R:
// 15 to 28 of 40 concurrent reservations failed behind 200 ms batches).
// When the writer's last transaction held the gate longer (slow storage,
// a writer behind its traffic), the ledger's turn may last as long: turns
// fair in time, so that a burst is not refused behind 2 s batches (audit
// 23F).
const ledgerHold = 200 * time.Millisecond

// writeConn takes the ledger's connection and then the file's write gate,
// in that order (see sqlitefile.WriteGate), for one write transaction: a
// reservation waits its turn behind at most the trace batch being written,
// not for the chance of finding SQLite's lock free between two batches.
// A gate the previous transaction kept for the ones queued behind it is
// taken over as it is (ledgerHold). SQLite's busy timeout (another process
// holding the lock) is cut to what is left of ctx's deadline (busyWithin).
// release gives all back.
func (l *Ledger) writeConn(ctx context.Context) (conn *sql.Conn, release func(), err error) {
	l.gmu.Lock()
	l.waiting++
	l.gmu.Unlock()
	conn, err = l.db.Conn(ctx)
	l.gmu.Lock()
	l.waiting--
	if err != nil {
		l.dropGateLocked()
		l.gmu.Unlock()
		return nil, nil, waitErr("the ledger's connection", err)
	}
	l.active = true
	kept := l.gateHeld
	l.gmu.Unlock()
	if err := l.noAutoCheckpoint(ctx, conn); err != nil {
		l.gmu.Lock()
		l.active = false
		l.dropGateLocked()
		l.gmu.Unlock()
		conn.Close()
		return nil, nil, waitErr("the database", err)
	}
	if !kept {
		if err := l.gate.Lock(ctx); err != nil {
			l.gmu.Lock()
			l.active = false
			l.gmu.Unlock()
			conn.Close()
			return nil, nil, waitErr("the database's write gate", err)
		}
		l.gmu.Lock()
		l.gateHeld, l.gateSince = true, time.Now()
		l.gmu.Unlock()
	}
	done := func() {
		l.gmu.Lock()
		l.active = false
		l.dropGateLocked()
		l.gmu.Unlock()
		conn.Close()
	}
	reset, err := busyWithin(ctx, conn)
	if err != nil {
		done()
		return nil, nil, waitErr("the database", err)
	}
	if reset == nil {
		return conn, done, nil
	}
	return conn, func() { defer done(); reset() }, nil
}

// begin starts a write transaction on conn (from writeConn) whose
// statements are bound to ctx but the transaction itself is not: bound,
// database/sql rolls it back from a goroutine of its own when ctx ends and
// discards the connection while release still puts its busy timeout back,
// which panicked on the discarded connection with the write gate taken
// (review 24R). Ended by the callers' deferred Rollback, on their own
// goroutine, the connection stays usable and is kept.
func begin(ctx context.Context, conn *sql.Conn) (*sql.Tx, error) {
	return conn.BeginTx(context.WithoutCancel(ctx), nil)
}

// noAutoCheckpoint turns SQLite's automatic checkpoint off on conn's
// driver connection, once per connection (database/sql replaces the
// ledger's after a connection error): it would run
// inside the ledger's COMMIT, with the write gate held, and make every
// reservation behind it wait for the checkpoint's syncs (review 23R2). The
// trace writer checkpoints the file after its turns (store's
// checkpointPages), and closing the last connection does.
func (l *Ledger) noAutoCheckpoint(ctx context.Context, conn *sql.Conn) error {
	var dc any
	if err := conn.Raw(func(c any) error { dc = c; return nil }); err != nil {
		return err
	}
	if dc == l.quietConn {
		return nil
	}
	if _, err := conn.ExecContext(ctx, "PRAGMA wal_autocheckpoint = 0"); err != nil {
		return fmt.Errorf("turning off wal_autocheckpoint: %w", err)
	}
	l.quietConn = dc
	return nil
}

// dropGateLocked gives the write gate back unless a transaction of the
// ledger is running, or others wait for the connection and the ledger has
// held the gate for less than its turn (ledgerHold, or the trace writer's
// last hold when longer); gmu is held.
func (l *Ledger) dropGateLocked() {
	if l.gateHeld && !l.active && (l.waiting == 0 || time.Since(l.gateSince) >= max(ledgerHold, l.gate.BatchHold())) {
		l.gateHeld = false
		l.gate.Unlock()
	}
}

// Close stops the background goroutine and closes the connections.
// Reservations not yet settled stay in the database until their TTL. It is
// idempotent.
func (l *Ledger) Close() error {
	l.closeOnce.Do(func() {
		close(l.stop)
		<-l.done
		err := errors.Join(l.rdb.Close(), l.db.Close())
		l.gate.Release()
		if err != nil {
			l.closeErr = fmt.Errorf("closing budget ledger %s: %w", l.path, err)
		}
	})
	return l.closeErr
}

// Done is closed when Close is called.
func (l *Ledger) Done() <-chan struct{} { return l.stop }

// Path is the absolute path of the database file.
func (l *Ledger) Path() string { return l.path }

// dbErr marks err as a database failure (ErrUnavailable) unless it is the
// caller's context ending.
func dbErr(err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}

// waitErr marks a wait for the database that outlasted the operation's
// deadline as ErrUnavailable, as SQLite's busy timeout is: the database
// was too busy, so a settlement is retried. A cancelled wait stays the
// caller's context ending.
func waitErr(what string, err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: waiting for %s: %w", ErrUnavailable, what, err)
	}
	return err
}

// location loads (once) the zone named tz.
func (l *Ledger) location(tz string) (*time.Location, error) {
	if v, ok := l.zones.Load(tz); ok {
		return v.(*time.Location), nil
	}
	loc, err := loadZone(tz)
	if err != nil {
		return nil, err
	}
	l.zones.Store(tz, loc)
	return loc, nil
}

func loadZone(tz string) (*time.Location, error) {
	if tz == "" {
		return time.UTC, nil
	}
	if tz == "Local" {
		return nil, errors.New(`time zone "Local" depends on the host; name an IANA zone such as Europe/Berlin`)
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		return nil, fmt.Errorf("unknown time zone %q: %w", tz, err)
	}
	return loc, nil
}

// NormalizeWindow returns the canonical spelling of a window: daily,
// weekly or monthly (any case), a positive Go duration as given ("72h"),
// or whole days ("30d") as hours ("720h"). It fails for anything else.
func NormalizeWindow(window string) (string, error) {
	w := strings.ToLower(strings.TrimSpace(window))
	switch w {
	case WindowDaily, WindowWeekly, WindowMonthly:
		return w, nil
	case "":
		return "", errors.New("window is required: daily, weekly, monthly or a duration such as 72h")
	}
	if n, ok := strings.CutSuffix(w, "d"); ok {
		var days int
		if _, err := fmt.Sscanf(n, "%d", &days); err == nil && fmt.Sprint(days) == n && days > 0 {
			return fmt.Sprintf("%dh", days*24), nil
		}
	} else if d, err := time.ParseDuration(w); err == nil && d > 0 {
		return w, nil
	}
	return "", fmt.Errorf("bad window %q: want daily, weekly, monthly or a positive duration such as 72h", window)
}

// WindowBounds returns the current window of a budget at now. Calendar
// windows start at midnight (daily), Monday midnight (weekly, ISO weeks) or
// the first of the month (monthly) in tz and reset at the next such start,
// returned in tz. A rolling window starts at now minus its duration and has
// no reset time (nil).
func WindowBounds(window, tz string, now time.Time) (start time.Time, resetsAt *time.Time, err error) {
	loc, err := loadZone(tz)
	if err != nil {
		return time.Time{}, nil, err
	}
	return windowBounds(window, loc, now)
}

func windowBounds(window string, loc *time.Location, now time.Time) (time.Time, *time.Time, error) {
	t := now.In(loc)
	y, m, d := t.Date()
	var start, next time.Time
	switch window {
	case WindowDaily:
		start, next = dayStart(y, m, d, loc), dayStart(y, m, d+1, loc)
	case WindowWeekly:
		back := (int(t.Weekday()) + 6) % 7 // days since Monday
		start, next = dayStart(y, m, d-back, loc), dayStart(y, m, d-back+7, loc)
	case WindowMonthly:
		start, next = dayStart(y, m, 1, loc), dayStart(y, m+1, 1, loc)
	default:
		dur, err := time.ParseDuration(window)
		if err != nil || dur <= 0 {
			return time.Time{}, nil, fmt.Errorf("bad window %q: want daily, weekly, monthly or a positive duration such as 72h", window)
		}
		return now.Add(-dur), nil, nil
	}
	return start, &next, nil
}

// dayStart is the first instant of day y-m-d (normalised as time.Date
// does) in loc. That is midnight, except where clocks jump over midnight
// (America/Santiago in September, America/Havana in March): there
// time.Date may answer 23:00 of the day before, and the day starts at the
// jump instead.
func dayStart(y int, m time.Month, d int, loc *time.Location) time.Time {
	t := time.Date(y, m, d, 0, 0, 0, 0, loc)
	wy, wm, wd := time.Date(y, m, d, 12, 0, 0, 0, loc).Date()
	if gy, gm, gd := t.Date(); gy != wy || gm != wm || gd != wd {
		if _, end := t.ZoneBounds(); !end.IsZero() {
			return end
		}
	}
	return t
}

// untagged is store.Untagged, which the ledger does not import.
const untagged = "untagged"

// validate checks and normalises b for Set.
func validate(b Budget) (Budget, error) {
	switch b.Scope {
	case ScopeKey, ScopeUser, ScopeTeam, ScopeWorkspace:
	default:
		return b, fmt.Errorf("bad scope %q: want key, user, team or workspace", b.Scope)
	}
	if strings.TrimSpace(b.Subject) == "" {
		return b, fmt.Errorf("a %s budget needs a subject", b.Scope)
	}
	if (b.Scope == ScopeUser || b.Scope == ScopeTeam) && strings.TrimSpace(b.Subject) == untagged {
		// The analytics' label of keys without one (store.Untagged):
		// their rows would show this budget as their quota.
		return b, fmt.Errorf("%q is not a %s name: the analytics show keys without a %s as %q", untagged, b.Scope, b.Scope, untagged)
	}
	if b.Scope == ScopeKey && !strings.HasPrefix(b.Subject, "gk_") {
		return b, fmt.Errorf("%q is not a key id (they look like gk_01J…)", b.Subject)
	}
	w, err := NormalizeWindow(b.Window)
	if err != nil {
		return b, err
	}
	b.Window = w
	if b.TZ == "" {
		b.TZ = "UTC"
	}
	if _, err := loadZone(b.TZ); err != nil {
		return b, err
	}
	if math.IsNaN(b.Hard) || math.IsInf(b.Hard, 0) || b.Hard <= 0 {
		return b, fmt.Errorf("hard limit must be a positive amount of USD, not %v", b.Hard)
	}
	if math.IsNaN(b.Soft) || math.IsInf(b.Soft, 0) || b.Soft < 0 {
		return b, fmt.Errorf("soft limit must be a non-negative amount of USD, not %v", b.Soft)
	}
	if b.Soft >= b.Hard {
		return b, fmt.Errorf("soft limit %s must be below the hard limit %s", Dollars(b.Soft), Dollars(b.Hard))
	}
	return b, nil
}

const sqlSelectBudgets = `SELECT id, scope, subject, window, tz, hard, soft, created_at FROM budgets`

type scanner interface{ Scan(dest ...any) error }

func scanBudget(r scanner) (Budget, error) {
	var b Budget
	var created int64
	if err := r.Scan(&b.ID, &b.Scope, &b.Subject, &b.Window, &b.TZ, &b.Hard, &b.Soft, &created); err != nil {
		return Budget{}, err
	}
	b.CreatedAt = time.UnixMicro(created).UTC()
	return b, nil
}

// Set creates the budget for (Scope, Subject, Window) or updates its
// limits and zone, keeping its id, creation time and spend. b.ID and
// b.CreatedAt are ignored. It returns the stored budget; this process's
// Applies sees it at once, others within Options.Refresh.
func (l *Ledger) Set(ctx context.Context, b Budget) (Budget, error) {
	b, err := validate(b)
	if err != nil {
		return Budget{}, fmt.Errorf("setting budget: %w", err)
	}
	conn, release, err := l.writeConn(ctx)
	if err != nil {
		return Budget{}, fmt.Errorf("setting %s: %w", describe(b), dbErr(err))
	}
	defer release()
	tx, err := begin(ctx, conn)
	if err != nil {
		return Budget{}, fmt.Errorf("setting %s: %w", describe(b), dbErr(err))
	}
	defer tx.Rollback() //nolint:errcheck // no-op after Commit
	newID := "bd_" + ulid.Make().String()
	now := time.Now()
	row := tx.QueryRowContext(ctx, `INSERT INTO budgets (id, scope, subject, window, tz, hard, soft, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (scope, subject, window) DO UPDATE SET tz = excluded.tz, hard = excluded.hard, soft = excluded.soft
		RETURNING id, scope, subject, window, tz, hard, soft, created_at`,
		newID, b.Scope, b.Subject, b.Window, b.TZ, b.Hard, b.Soft, now.UnixMicro())
	out, err := scanBudget(row)
	if err != nil {
		return Budget{}, fmt.Errorf("setting %s: %w", describe(b), dbErr(err))
	}
	if out.ID == newID {
		if err := backfill(ctx, tx, out, now); err != nil {
			return Budget{}, fmt.Errorf("setting %s: %w", describe(b), err)
		}
	}
	if err := tx.Commit(); err != nil {
		return Budget{}, fmt.Errorf("setting %s: %w", describe(b), dbErr(err))
	}
	if err := l.reload(ctx); err != nil {
		return out, fmt.Errorf("setting %s: %w", describe(b), err)
	}
	return out, nil
}

// List returns every budget ordered by scope, subject and window.
func (l *Ledger) List(ctx context.Context) ([]Budget, error) {
	rows, err := l.rdb.QueryContext(ctx, sqlSelectBudgets+` ORDER BY scope, subject, `+windowOrder)
	if err != nil {
		return nil, fmt.Errorf("listing budgets: %w", dbErr(err))
	}
	defer rows.Close()
	var out []Budget
	for rows.Next() {
		b, err := scanBudget(rows)
		if err != nil {
			return nil, fmt.Errorf("listing budgets: %w", dbErr(err))
		}
		out = append(out, b)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("listing budgets: %w", dbErr(err))
	}
	return out, nil
}

// windowOrder sorts calendar windows shortest first, rolling ones after.
const windowOrder = `CASE window WHEN 'daily' THEN 0 WHEN 'weekly' THEN 1 WHEN 'monthly' THEN 2 ELSE 3 END, window`

// Clear deletes the budget for (scope, subject, window) with its charges,
// reservations and notices; ErrNoBudget when there is none. Calls in
// flight against it settle without charging it.
func (l *Ledger) Clear(ctx context.Context, scope, subject, window string) error {
	w, err := NormalizeWindow(window)
	if err != nil {
		return fmt.Errorf("clearing budget: %w", err)
	}
	what := describe(Budget{Scope: scope, Subject: subject, Window: w})
	if err := l.clear(ctx, scope, subject, w); err != nil {
		if errors.Is(err, ErrNoBudget) {
			return fmt.Errorf("clearing %s: %w", what, err)
		}
		return fmt.Errorf("clearing %s: %w", what, dbErr(err))
	}
	if err := l.reload(ctx); err != nil {
		return fmt.Errorf("clearing %s: %w", what, err)
	}
	return nil
}

func (l *Ledger) clear(ctx context.Context, scope, subject, window string) error {
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
	var id string
	err = tx.QueryRowContext(ctx, `DELETE FROM budgets WHERE scope = ? AND subject = ? AND window = ? RETURNING id`,
		scope, subject, window).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNoBudget
	}
	if err != nil {
		return err
	}
	for _, table := range []string{"budget_charges", "budget_spend", "budget_reservations", "budget_notices"} {
		if _, err := tx.ExecContext(ctx, `DELETE FROM `+table+` WHERE budget_id = ?`, id); err != nil {
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM budget_meta WHERE name IN (?, ?)`, exhaustedAt+id, exhaustedAmt+id); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	l.refusedMu.Lock()
	delete(l.pending, id)
	l.refusedMu.Unlock()
	return nil
}

// describe names a budget in messages: `team "eng" monthly budget`.
func describe(b Budget) string {
	return fmt.Sprintf("%s %q %s budget", b.Scope, b.Subject, windowLabel(b.Window))
}

// windowLabel is "monthly" for calendar windows and "rolling 72h" for
// rolling ones.
func windowLabel(w string) string {
	switch w {
	case WindowDaily, WindowWeekly, WindowMonthly:
		return w
	}
	return "rolling " + w
}

// subjectColumn is the trace store's calls column a scope matches.
var subjectColumn = map[string]string{ScopeKey: "key_id", ScopeUser: "user", ScopeTeam: "team", ScopeWorkspace: "workspace"}

// backfill charges a new budget with what its subject already spent in the
// current window, read from the trace store's calls table in the same
// database, so a budget set mid-month counts the month so far. A database
// without the trace store (the ledger used alone) has nothing to backfill.
func backfill(ctx context.Context, tx *sql.Tx, b Budget, now time.Time) error {
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'calls'`).Scan(&n); err != nil {
		return dbErr(err)
	}
	col := subjectColumn[b.Scope]
	if n == 0 || col == "" {
		return nil
	}
	start, _, err := WindowBounds(b.Window, b.TZ, now)
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO budget_charges (budget_id, reservation_id, ts_us, amount)
		SELECT ?, 'backfill:' || event_id, ts_us, cost_usd FROM calls
		WHERE `+col+` = ? AND ts_us >= ? AND ts_us <= ? AND priced = 1 AND cost_usd > 0`,
		b.ID, b.Subject, start.UnixMicro(), now.UnixMicro()); err != nil {
		return fmt.Errorf("backfilling the window's spend: %w", dbErr(err))
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO budget_spend (budget_id, bucket_us, amount)
		SELECT budget_id, (ts_us / ?) * ?, SUM(amount) FROM budget_charges WHERE budget_id = ? GROUP BY 2
		ON CONFLICT (budget_id, bucket_us) DO UPDATE SET amount = excluded.amount`,
		bucketUS, bucketUS, b.ID); err != nil {
		return fmt.Errorf("backfilling the window's spend: %w", dbErr(err))
	}
	return nil
}
