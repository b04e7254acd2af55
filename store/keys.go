package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"go.uber.org/zap"
)

// Key-related errors. Authenticate returns ErrUnknownKey, ErrRevokedKey or
// ErrExpiredKey; RevokeKey returns ErrKeyNotFound, SetAllowedModels
// ErrKeyNotFound or ErrRevokedKey.
var (
	ErrKeyNotFound = errors.New("gateway key not found")
	ErrUnknownKey  = errors.New("unknown gateway key")
	// ErrUnknownKeyUnchecked is an ErrUnknownKey for a gw_ token that was
	// not checked against the database (the miss checks were over their
	// budget, or the check failed): a key issued a moment ago may be it,
	// and a retry within a second may find it.
	ErrUnknownKeyUnchecked = fmt.Errorf("%w (new keys were not checked for)", ErrUnknownKey)
	ErrRevokedKey          = errors.New("gateway key revoked")
	ErrExpiredKey          = errors.New("gateway key expired")
)

// Key is a gateway key (contract §3). It never holds the token.
type Key struct {
	ID        string // gk_<ULID>
	Name      string
	Workspace string
	User      string
	Team      string
	// AllowedModels lists the models the key may use; empty means every
	// model. Shared with the key cache: do not modify.
	AllowedModels []string
	CreatedAt     time.Time
	ExpiresAt     time.Time // zero = never
	RevokedAt     time.Time // zero = not revoked
	LastUsedAt    time.Time // zero = never used
}

// IssueParams describe a key to issue.
type IssueParams struct {
	Name, Workspace, User, Team string
	AllowedModels               []string      // empty = every model
	ExpiresIn                   time.Duration // 0 = never expires
}

// keyUsage carries a key's last-used time (unix microseconds) from
// Authenticate to the writer; it survives key cache reloads.
type keyUsage struct {
	used      atomic.Int64
	persisted atomic.Int64
}

type keyEntry struct {
	key   Key
	usage *keyUsage
}

// keySnapshot is an immutable view of gateway_keys at one keys_version.
type keySnapshot struct {
	version int64
	byHash  map[[sha256.Size]byte]*keyEntry
	byID    map[string]*keyEntry
}

// Authenticate's checks for tokens missing from the cache: a burst of
// missCheckBurst, then at most one per missCheckEvery, each bounded by
// missCheckTimeout.
const (
	missCheckEvery   = 100 * time.Millisecond
	missCheckBurst   = 4
	missCheckTimeout = time.Second
)

// missGate bounds the database reads Authenticate makes for a token missing
// from the key cache, which is either a key another process (the CLI) has
// just issued or an invalid token: at most one check runs at a time (misses
// meanwhile wait for it), and checks start no faster than a burst of
// missCheckBurst then one per missCheckEvery (a GCRA budget); a miss over
// budget is rejected without touching the database. A flood of invalid
// tokens thus costs about ten keys_version reads a second, and while it
// lasts (or while analytics queries hold every read connection past the
// timeout) a new key may wait for the regular poll instead.
type missGate struct {
	mu       sync.Mutex
	running  chan struct{} // closed when the running check ends; nil if none
	tat      time.Time     // the budget's theoretical arrival time
	checks   atomic.Int64  // keys_version reads made for misses (tests)
	lastWarn atomic.Int64  // unix nanoseconds of the last failed-check warning
	failed   atomic.Bool   // the last check failed
}

// usageMark is a last-used time written in a transaction, marked persisted
// once it commits.
type usageMark struct {
	u  *keyUsage
	at int64
}

const sqlSelectKeys = `SELECT id, token_sha256, name, workspace, user, team, allowed_models,
	created_at, expires_at, revoked_at, last_used_at FROM gateway_keys`

// IssueKey creates a key and returns it with its token, which is shown once:
// only its SHA-256 is stored and it is never logged. The key is usable in
// this process as soon as IssueKey returns.
func (s *Store) IssueKey(ctx context.Context, p IssueParams) (Key, string, error) {
	// Budgets and analytics filters match these exactly, and set-budget
	// trims its subject: " alice" would never meet alice's budget. (Only
	// spaces: a control character is refused below, not hidden.)
	p.Name, p.User, p.Team, p.Workspace = strings.Trim(p.Name, " "), strings.Trim(p.User, " "),
		strings.Trim(p.Team, " "), strings.Trim(p.Workspace, " ")
	if p.Name == "" {
		return Key{}, "", errors.New("issuing gateway key: name is required")
	}
	if p.ExpiresIn < 0 {
		return Key{}, "", errors.New("issuing gateway key: negative expiry")
	}
	// These are shown in tables, logs and the dashboard: a control character
	// (a newline, an escape sequence) could forge a row or drive a terminal.
	for _, f := range []struct{ name, v string }{{"name", p.Name}, {"workspace", p.Workspace}, {"user", p.User}, {"team", p.Team}} {
		if Unprintable(f.v) {
			return Key{}, "", fmt.Errorf("issuing gateway key: %s %q contains a control character", f.name, f.v)
		}
	}
	// The analytics show keys without a user or team as "untagged": a
	// user or team of that name would be summed with them, under its
	// own budget's quota (audit 24O).
	for _, f := range []struct{ name, v string }{{"user", p.User}, {"team", p.Team}} {
		if f.v == Untagged {
			return Key{}, "", fmt.Errorf("issuing gateway key: %q is not a %s name: the analytics show keys without a %s as %q",
				f.v, f.name, f.name, Untagged)
		}
	}
	for _, m := range p.AllowedModels {
		if Unprintable(m) {
			return Key{}, "", fmt.Errorf("issuing gateway key: model %q contains a control character", m)
		}
	}
	var secret [16]byte
	if _, err := rand.Read(secret[:]); err != nil {
		return Key{}, "", fmt.Errorf("issuing gateway key: %w", err)
	}
	u := NewID()
	token := tokenPrefix + u.String() + hex.EncodeToString(secret[:])
	hash := sha256.Sum256([]byte(token))
	now := time.Now()
	k := Key{
		ID: "gk_" + u.String(), Name: p.Name, Workspace: p.Workspace, User: p.User, Team: p.Team,
		AllowedModels: append([]string(nil), p.AllowedModels...),
		CreatedAt:     time.UnixMicro(now.UnixMicro()).UTC(),
	}
	if p.ExpiresIn > 0 {
		k.ExpiresAt = time.UnixMicro(now.Add(p.ExpiresIn).UnixMicro()).UTC()
	}
	models, err := json.Marshal(k.AllowedModels)
	if err != nil {
		return Key{}, "", fmt.Errorf("issuing gateway key: %w", err)
	}
	if len(k.AllowedModels) == 0 {
		models = []byte("[]")
	}
	err = s.onWriteLocked(ctx, func(conn *sql.Conn) error {
		_, err := conn.ExecContext(ctx, `INSERT INTO gateway_keys
	(id, token_sha256, name, workspace, user, team, allowed_models, created_at, expires_at)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			k.ID, hash[:], k.Name, k.Workspace, k.User, k.Team, string(models), k.CreatedAt.UnixMicro(), microOrNil(k.ExpiresAt))
		return err
	})
	if err != nil {
		return Key{}, "", fmt.Errorf("issuing gateway key: %w", err)
	}
	if err := s.reloadKeys(ctx); err != nil {
		return Key{}, "", fmt.Errorf("issuing gateway key %s: %w", k.ID, err)
	}
	return k, token, nil
}

// ListKeys returns every key, oldest first, with the last-used times known
// to this process merged in. Tokens are never stored, so never listed.
func (s *Store) ListKeys(ctx context.Context) ([]Key, error) {
	rows, err := s.rdb.QueryContext(ctx, sqlSelectKeys+` ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("listing gateway keys: %w", err)
	}
	defer rows.Close()
	snap := s.keys.Load()
	var keys []Key
	for rows.Next() {
		k, _, err := scanKey(rows)
		if err != nil {
			return nil, fmt.Errorf("listing gateway keys: %w", err)
		}
		if e := snap.byID[k.ID]; e != nil {
			if used := e.usage.used.Load(); used > 0 && used > k.LastUsedAt.UnixMicro() {
				k.LastUsedAt = time.UnixMicro(used).UTC()
			}
		}
		keys = append(keys, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("listing gateway keys: %w", err)
	}
	return keys, nil
}

// RevokeKey revokes the key with the given id (revoking twice keeps the first
// time) and returns it; ErrKeyNotFound if there is none. The revocation takes
// effect in this process immediately, in others within KeyRefresh.
func (s *Store) RevokeKey(ctx context.Context, id string) (Key, error) {
	k, err := s.revoke(ctx, id)
	if err != nil {
		return Key{}, fmt.Errorf("revoking gateway key %s: %w", id, err)
	}
	if err := s.reloadKeys(ctx); err != nil {
		return Key{}, fmt.Errorf("revoking gateway key %s: %w", id, err)
	}
	return k, nil
}

func (s *Store) revoke(ctx context.Context, id string) (k Key, err error) {
	err = s.onWriteLocked(ctx, func(conn *sql.Conn) error {
		tx, err := conn.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback() //nolint:errcheck // no-op after Commit
		if _, err := tx.ExecContext(ctx, `UPDATE gateway_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL`,
			time.Now().UnixMicro(), id); err != nil {
			return err
		}
		k, _, err = scanKey(tx.QueryRowContext(ctx, sqlSelectKeys+` WHERE id = ?`, id))
		if errors.Is(err, sql.ErrNoRows) {
			return ErrKeyNotFound
		}
		if err != nil {
			return err
		}
		return tx.Commit()
	})
	return k, err
}

// SetAllowedModels replaces the models the key with the given id may use
// (none: every model) and returns the key; ErrKeyNotFound if there is
// none, ErrRevokedKey if it is revoked. The change takes effect in this
// process immediately, in others within KeyRefresh.
func (s *Store) SetAllowedModels(ctx context.Context, id string, models []string) (Key, error) {
	for _, m := range models {
		if Unprintable(m) {
			return Key{}, fmt.Errorf("setting the models of gateway key %s: model %q contains a control character", id, m)
		}
	}
	list := []byte("[]")
	if len(models) > 0 {
		var err error
		if list, err = json.Marshal(models); err != nil {
			return Key{}, fmt.Errorf("setting the models of gateway key %s: %w", id, err)
		}
	}
	var k Key
	err := s.onWriteLocked(ctx, func(conn *sql.Conn) error {
		tx, err := conn.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback() //nolint:errcheck // no-op after Commit
		k, _, err = scanKey(tx.QueryRowContext(ctx, sqlSelectKeys+` WHERE id = ?`, id))
		if errors.Is(err, sql.ErrNoRows) {
			return ErrKeyNotFound
		}
		if err != nil {
			return err
		}
		if !k.RevokedAt.IsZero() {
			return ErrRevokedKey
		}
		if _, err := tx.ExecContext(ctx, `UPDATE gateway_keys SET allowed_models = ? WHERE id = ?`, string(list), id); err != nil {
			return err
		}
		k.AllowedModels = append([]string(nil), models...)
		return tx.Commit()
	})
	if err != nil {
		return Key{}, fmt.Errorf("setting the models of gateway key %s: %w", id, err)
	}
	if err := s.reloadKeys(ctx); err != nil {
		return Key{}, fmt.Errorf("setting the models of gateway key %s: %w", id, err)
	}
	return k, nil
}

// Untagged is the analytics' label of keys without a user, or without a
// team; no key's user or team may be named so.
const Untagged = "untagged"

// Unprintable reports whether s could drive or mislead a terminal: it is not
// valid UTF-8 (a stray 0x80–0x9f byte is a C1 control to some terminals),
// or it holds a control character or an invisible format character such as
// a bidirectional override.
func Unprintable(s string) bool {
	return !utf8.ValidString(s) || strings.IndexFunc(s, func(r rune) bool {
		return unicode.IsControl(r) || unicode.Is(unicode.Cf, r)
	}) >= 0
}

// tokenPrefix starts every token IssueKey makes.
const tokenPrefix = "gw_"

// TokenFrom picks the gateway token from a request's x-api-key and
// Authorization values. A client may send both: Claude Code does when a
// developer's own ANTHROPIC_API_KEY is still set beside an
// ANTHROPIC_AUTH_TOKEN holding the gateway token. The one that looks like
// a gateway token wins; otherwise x-api-key, then a Bearer token.
// conflict reports two different gateway tokens: which key the caller
// meant, and whose budget the call should spend, cannot be told, so such a
// request is refused.
func TokenFrom(xAPIKey, authorization string) (token string, conflict bool) {
	x, b := strings.TrimSpace(xAPIKey), bearerToken(authorization)
	xGW, bGW := IsGatewayToken(x), IsGatewayToken(b)
	switch {
	case xGW && bGW:
		return x, x != b
	case bGW:
		return b, false
	case x != "":
		return x, false
	}
	return b, false
}

// TokenFromLines is TokenFrom for a request's x-api-key and Authorization
// header lines, either of which may be sent more than once (a proxy in
// front adding its own line). Two different gateway tokens among all the
// lines are a conflict, as across the two headers (review 26S: the first
// line's key paid); one gateway token among other lines is the token.
func TokenFromLines(xAPIKey, authorization []string) (token string, conflict bool) {
	if len(xAPIKey) < 2 && len(authorization) < 2 {
		return TokenFrom(firstLine(xAPIKey), firstLine(authorization))
	}
	var gw string
	for i, lines := range [2][]string{xAPIKey, authorization} {
		for _, v := range lines {
			tok := strings.TrimSpace(v)
			if i == 1 {
				tok = bearerToken(v)
			}
			if !IsGatewayToken(tok) {
				continue
			}
			if gw != "" && tok != gw {
				return gw, true
			}
			gw = tok
		}
	}
	if gw != "" {
		return gw, false
	}
	return TokenFrom(firstLine(xAPIKey), firstLine(authorization))
}

// bearerToken is the token of an Authorization value of the Bearer
// scheme (in any case), "" for another scheme.
func bearerToken(authorization string) string {
	if a := strings.TrimSpace(authorization); len(a) > 7 && strings.EqualFold(a[:7], "bearer ") {
		return strings.TrimSpace(a[7:])
	}
	return ""
}

// firstLine is a header's first line, "" when it has none.
func firstLine(lines []string) string {
	if len(lines) == 0 {
		return ""
	}
	return lines[0]
}

// IsGatewayToken reports whether tok has the form of a token IssueKey
// makes.
func IsGatewayToken(tok string) bool { return strings.HasPrefix(tok, tokenPrefix) }

// Authenticate checks a gw_ token against the in-memory key cache and
// records the key's last use, which the writer persists later. A known
// token never touches the disk. A gw_ token missing from the cache makes it
// check meta.keys_version, within missGate's bounds, and reload the cache if
// another process issued or revoked a key since, so a key works as soon as
// the CLI has issued it. It returns a copy of the key, or ErrUnknownKey,
// ErrUnknownKeyUnchecked (an ErrUnknownKey a retry may fix), ErrRevokedKey
// or ErrExpiredKey; with the last two, the key as well, for
// the caller to name in its log (not to serve).
func (s *Store) Authenticate(token string) (*Key, error) {
	var buf [128]byte // keeps the []byte conversion off the heap for real tokens
	hash := sha256.Sum256(append(buf[:0], token...))
	snap := s.keys.Load()
	e := snap.byHash[hash]
	if e == nil {
		if !strings.HasPrefix(token, tokenPrefix) {
			return nil, ErrUnknownKey
		}
		var checked bool
		if e, checked = s.lookupMissed(hash); e == nil {
			if !checked {
				return nil, ErrUnknownKeyUnchecked
			}
			return nil, ErrUnknownKey
		}
	}
	if !e.key.RevokedAt.IsZero() {
		k := e.key
		return &k, ErrRevokedKey
	}
	now := time.Now()
	if !e.key.ExpiresAt.IsZero() && e.key.ExpiresAt.Before(now) {
		k := e.key
		return &k, ErrExpiredKey
	}
	if us, prev := now.UnixMicro(), e.usage.used.Load(); us-prev >= 1e6 {
		e.usage.used.Store(us)
		if prev <= e.usage.persisted.Load() {
			// Nothing was pending: wake the writer, which saves it within
			// lastUsedEvery even when the use writes no event (GET
			// /v1/models, the analytics key login).
			s.nudge()
		}
	}
	k := e.key
	return &k, nil
}

// lookupMissed looks for a token that was missing from the key cache after
// checking, within the miss gate's budget, whether gateway_keys changed; nil
// if it is unknown. A miss that waited for another's check goes through the
// gate once more: that check may have read keys_version before the key it
// is looking for was committed. checked is false when no check that
// succeeded has looked for it (over budget, or the check failed).
func (s *Store) lookupMissed(hash [sha256.Size]byte) (e *keyEntry, checked bool) {
	g := &s.keyMiss
	for waited := false; ; {
		g.mu.Lock()
		if ch := g.running; ch != nil {
			g.mu.Unlock()
			<-ch
			failed := g.failed.Load() // before the cache: a check since then is in it
			if e := s.keys.Load().byHash[hash]; e != nil || waited {
				return e, !failed
			}
			waited = true
			continue
		}
		now := time.Now()
		if now.Before(g.tat.Add(-(missCheckBurst - 1) * missCheckEvery)) {
			g.mu.Unlock()
			// Over budget; a check or reload since the caller's lookup may
			// still have brought the key.
			return s.keys.Load().byHash[hash], false
		}
		if g.tat.Before(now) {
			g.tat = now
		}
		g.tat = g.tat.Add(missCheckEvery)
		ch := make(chan struct{})
		g.running = ch
		g.mu.Unlock()
		s.checkKeys(g)
		g.mu.Lock()
		g.running = nil
		g.mu.Unlock()
		close(ch)
		failed := g.failed.Load() // before the cache, as above
		return s.keys.Load().byHash[hash], !failed
	}
}

// checkKeys runs one miss check: keys_version, and a reload if it moved. A
// failure leaves the cache as it was and is logged at most once a minute.
func (s *Store) checkKeys(g *missGate) {
	g.checks.Add(1)
	ctx, cancel := context.WithTimeout(context.Background(), missCheckTimeout)
	defer cancel()
	err := s.checkedRefresh(ctx)
	g.failed.Store(err != nil)
	if err != nil {
		now := time.Now().UnixNano()
		if last := g.lastWarn.Load(); now-last > int64(time.Minute) && g.lastWarn.CompareAndSwap(last, now) {
			s.logger().Warn("checking for new gateway keys after an unknown token failed; new keys wait for the regular poll",
				zap.String("path", s.path), zap.Error(err))
		}
	}
}

// scanner is *sql.Row or *sql.Rows.
type scanner interface{ Scan(dest ...any) error }

func scanKey(r scanner) (Key, []byte, error) {
	var (
		k                         Key
		hash                      []byte
		models                    string
		created                   int64
		expires, revoked, lastUse sql.NullInt64
	)
	if err := r.Scan(&k.ID, &hash, &k.Name, &k.Workspace, &k.User, &k.Team, &models,
		&created, &expires, &revoked, &lastUse); err != nil {
		return Key{}, nil, err
	}
	if err := json.Unmarshal([]byte(models), &k.AllowedModels); err != nil {
		return Key{}, nil, fmt.Errorf("key %s: allowed_models: %w", k.ID, err)
	}
	if len(k.AllowedModels) == 0 {
		k.AllowedModels = nil
	}
	k.CreatedAt = time.UnixMicro(created).UTC()
	k.ExpiresAt = fromMicro(expires)
	k.RevokedAt = fromMicro(revoked)
	k.LastUsedAt = fromMicro(lastUse)
	return k, hash, nil
}

func fromMicro(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return time.UnixMicro(v.Int64).UTC()
}

func microOrNil(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMicro()
}

// reloadKeys replaces the key cache with gateway_keys as of one read
// transaction, keeping each key's in-memory usage.
func (s *Store) reloadKeys(ctx context.Context) error {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	tx, err := s.rdb.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("loading gateway keys: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // read-only
	var version int64
	if err := tx.QueryRowContext(ctx, `SELECT value FROM meta WHERE name = 'keys_version'`).Scan(&version); err != nil {
		return fmt.Errorf("loading gateway keys: reading keys_version: %w", err)
	}
	rows, err := tx.QueryContext(ctx, sqlSelectKeys)
	if err != nil {
		return fmt.Errorf("loading gateway keys: %w", err)
	}
	defer rows.Close()
	old := s.keys.Load()
	snap := &keySnapshot{
		version: version,
		byHash:  make(map[[sha256.Size]byte]*keyEntry),
		byID:    make(map[string]*keyEntry),
	}
	for rows.Next() {
		k, hash, err := scanKey(rows)
		if err != nil {
			return fmt.Errorf("loading gateway keys: %w", err)
		}
		if len(hash) != sha256.Size {
			s.logger().Warn("gateway key with a malformed hash ignored", zap.String("key_id", k.ID))
			continue
		}
		e := &keyEntry{key: k}
		if old != nil && old.byID[k.ID] != nil {
			e.usage = old.byID[k.ID].usage
		} else {
			e.usage = new(keyUsage)
			if !k.LastUsedAt.IsZero() {
				e.usage.used.Store(k.LastUsedAt.UnixMicro())
				e.usage.persisted.Store(k.LastUsedAt.UnixMicro())
			}
		}
		snap.byHash[[sha256.Size]byte(hash)] = e
		snap.byID[k.ID] = e
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("loading gateway keys: %w", err)
	}
	s.keys.Store(snap)
	return nil
}

// checkSeq counts the checks of the database for new keys (the poll's and
// the miss checks'), by the order they began, so that a caller can wait
// for one that began after it (WaitKeyCheck).
type checkSeq struct {
	mu      sync.Mutex
	started uint64        // checks begun
	done    uint64        // the latest begun of those that succeeded
	wake    chan struct{} // closed, and replaced, when one succeeds
}

// checkedRefresh is refreshKeys, counted in s.keyCheck.
func (s *Store) checkedRefresh(ctx context.Context) error {
	q := &s.keyCheck
	q.mu.Lock()
	q.started++
	n := q.started
	q.mu.Unlock()
	err := s.refreshKeys(ctx)
	if err == nil {
		q.mu.Lock()
		q.done = max(q.done, n)
		if q.wake != nil {
			close(q.wake)
			q.wake = nil
		}
		q.mu.Unlock()
	}
	return err
}

// WaitKeyCheck waits until a check of the database for new keys that
// began after the call has succeeded (the poll runs every KeyRefresh), or
// ctx ends. A token Authenticate then still does not know is not one of
// a key issued before the call: after ErrUnknownKeyUnchecked, the answer
// is final.
func (s *Store) WaitKeyCheck(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("waiting for a check for new gateway keys: %w", err)
	}
	q := &s.keyCheck
	q.mu.Lock()
	target := q.started + 1
	for q.done < target {
		if q.wake == nil {
			q.wake = make(chan struct{})
		}
		ch := q.wake
		q.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("waiting for a check for new gateway keys: %w", ctx.Err())
		}
		q.mu.Lock()
	}
	q.mu.Unlock()
	return nil
}

// refreshKeys reloads the key cache if meta.keys_version is not the
// cache's: another process (the CLI) issued or revoked a key.
func (s *Store) refreshKeys(ctx context.Context) error {
	var v int64
	if err := s.rdb.QueryRowContext(ctx, `SELECT value FROM meta WHERE name = 'keys_version'`).Scan(&v); err != nil {
		return fmt.Errorf("reading keys_version: %w", err)
	}
	if v == s.keys.Load().version {
		return nil
	}
	return s.reloadKeys(ctx)
}

// runKeyRefresh polls meta.keys_version every KeyRefresh and reloads the key
// cache when another process (the CLI) issued or revoked a key; revocations
// by another process take effect through it.
func (s *Store) runKeyRefresh() {
	defer close(s.keysDone)
	ctx := context.Background()
	t := time.NewTimer(s.opts.Load().KeyRefresh)
	defer t.Stop()
	var lastWarn, lastGone time.Time
	for {
		select {
		case <-s.stopKs:
			return
		case <-t.C:
		}
		if err := s.checkedRefresh(ctx); err != nil && time.Since(lastWarn) > time.Minute {
			lastWarn = time.Now()
			s.logger().Warn("gateway key refresh failed", zap.String("path", s.path), zap.Error(err))
		}
		s.watchFile(&lastGone)
		t.Reset(s.opts.Load().KeyRefresh)
	}
}

// pendingLastUsed reports whether some key was used since its last-used time
// was persisted.
func (s *Store) pendingLastUsed() bool {
	for _, e := range s.keys.Load().byID {
		if e.usage.used.Load() > e.usage.persisted.Load() {
			return true
		}
	}
	return false
}

// saveLastUsed writes pending last-used times with update, inside the
// writer's transaction. last_used_at is not in the keys_version trigger, so
// this does not make other processes reload.
func (s *Store) saveLastUsed(update func(used int64, id string) error) ([]usageMark, error) {
	var marks []usageMark
	for id, e := range s.keys.Load().byID {
		used := e.usage.used.Load()
		if used <= e.usage.persisted.Load() {
			continue
		}
		if err := update(used, id); err != nil {
			return nil, fmt.Errorf("saving last use of key %s: %w", id, err)
		}
		marks = append(marks, usageMark{e.usage, used})
	}
	return marks, nil
}
