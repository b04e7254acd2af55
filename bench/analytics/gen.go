package analyticsbench

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/metisgateway/metis/store"
)

// Stats describe a generated database.
type Stats struct {
	Calls, Keys, Sessions, HourRows, DayRows int64
	From, To                                 time.Time
	Elapsed                                  time.Duration
}

// rkey is a rollup row's identity: user, team and workspace follow the key.
type rkey struct {
	bucket int64
	key    int32
	model  int8
	shape  int8
}

type ragg struct {
	calls, errors, unpriced, estimated                   int64
	cost, savings                                        float64
	input, cacheRead, cacheWrite, output, reasoning, lat int64
	last                                                 int64
}

type sagg struct {
	key         int32
	first, last int64
	ragg
}

// gen carries the generator's state across hours.
type gen struct {
	cfg      Config
	rng      *rand.Rand
	keys     []key
	pick     picker
	hour     map[rkey]*ragg
	day      map[rkey]*ragg
	sessions map[string]*sagg
	open     []openSession // per key
	entropy  *ulid.MonotonicEntropy
	stats    Stats
}

type openSession struct {
	id   string
	last int64
	left int
}

// Generate creates the database at path (which must not hold calls yet)
// with cfg's workload ending at end, logging progress to logf.
func Generate(ctx context.Context, path string, cfg Config, end time.Time, logf func(string, ...any)) (Stats, error) {
	start := time.Now()
	g := &gen{cfg: cfg, rng: rand.New(rand.NewPCG(uint64(cfg.Seed), 99)),
		hour: map[rkey]*ragg{}, day: map[rkey]*ragg{}, sessions: map[string]*sagg{},
		entropy: ulid.Monotonic(rand.NewChaCha8([32]byte{byte(cfg.Seed)}), 0)}
	g.keys = makeKeys(cfg, g.rng)
	g.open = make([]openSession, len(g.keys))
	weights := make([]float64, len(g.keys))
	for i, k := range g.keys {
		weights[i] = k.weight
	}
	g.pick = newPicker(weights)
	if err := g.issueKeys(ctx, path); err != nil {
		return Stats{}, err
	}
	db, err := sql.Open("sqlite3", "file:"+path+
		"?_journal_mode=WAL&_synchronous=OFF&_busy_timeout=5000&_cache_size=-1000000")
	if err != nil {
		return Stats{}, fmt.Errorf("opening %s for bulk load: %w", path, err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	var n int64
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM calls").Scan(&n); err != nil {
		return Stats{}, fmt.Errorf("checking %s: %w", path, err)
	}
	if n > 0 {
		return Stats{}, fmt.Errorf("%s already holds %d calls; use a new file", path, n)
	}
	end = end.UTC().Truncate(time.Second)
	indexes, err := dropIndexes(ctx, db)
	if err != nil {
		return Stats{}, err
	}
	if err := g.load(ctx, db, end, logf); err != nil {
		return Stats{}, err
	}
	logf("rebuilding %d indexes", len(indexes))
	for _, ddl := range indexes {
		if _, err := db.ExecContext(ctx, ddl); err != nil {
			return Stats{}, fmt.Errorf("rebuilding index: %w", err)
		}
	}
	if _, err := db.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		return Stats{}, fmt.Errorf("checkpointing: %w", err)
	}
	g.stats.Keys = int64(len(g.keys))
	g.stats.Elapsed = time.Since(start)
	return g.stats, nil
}

// dropIndexes drops the secondary indexes of the bulk-loaded tables and
// returns their DDL (from sqlite_master, so the schema stays the store's) to
// rebuild them after the load, which is several times faster than
// maintaining them row by row.
func dropIndexes(ctx context.Context, db *sql.DB) ([]string, error) {
	rows, err := db.QueryContext(ctx, `SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL
		AND tbl_name IN ('events', 'calls', 'sessions', 'rollup_hour', 'rollup_day')`)
	if err != nil {
		return nil, fmt.Errorf("listing indexes: %w", err)
	}
	var names, ddl []string
	for rows.Next() {
		var n, s string
		if err := rows.Scan(&n, &s); err != nil {
			rows.Close()
			return nil, fmt.Errorf("listing indexes: %w", err)
		}
		names, ddl = append(names, n), append(ddl, s)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("listing indexes: %w", err)
	}
	for _, n := range names {
		if _, err := db.ExecContext(ctx, `DROP INDEX "`+n+`"`); err != nil {
			return nil, fmt.Errorf("dropping index %s: %w", n, err)
		}
	}
	return ddl, nil
}

// issueKeys creates the schema and the keys through the store.
func (g *gen) issueKeys(ctx context.Context, path string) error {
	st, err := store.Open(path, store.Options{})
	if err != nil {
		return fmt.Errorf("creating %s: %w", path, err)
	}
	defer st.Close(ctx)
	for i := range g.keys {
		k := &g.keys[i]
		issued, _, err := st.IssueKey(ctx, store.IssueParams{Name: k.name, Workspace: k.workspace, User: k.user,
			Team: k.team})
		if err != nil {
			return fmt.Errorf("issuing key %s: %w", k.name, err)
		}
		k.id = issued.ID
	}
	return nil
}

// load writes the calls hour by hour, in transactions of cfg.BatchCalls,
// flushing each hour's and day's rollup rows as the hour or day ends.
func (g *gen) load(ctx context.Context, db *sql.DB, end time.Time, logf func(string, ...any)) error {
	// UTC-aligned hours from Days before end up to end; the last one is
	// partial, so the rollup flushes happen at real hour and day ends.
	first := end.Add(-time.Duration(g.cfg.Days) * 24 * time.Hour).Truncate(time.Hour)
	g.stats.From, g.stats.To = first, end
	hours := int(end.Sub(first).Hours() + 0.999999)
	span := func(h int) float64 { // weight of hour h: diurnal × covered fraction
		hs := first.Add(time.Duration(h) * time.Hour)
		return diurnal(hs.Hour()) * min(1, end.Sub(hs).Hours())
	}
	var wsum float64
	for h := range hours {
		wsum += span(h)
	}
	w, err := newWriter(ctx, db)
	if err != nil {
		return err
	}
	defer w.rollback()
	written, carry := 0, 0.0
	for h := range hours {
		hs := first.Add(time.Duration(h) * time.Hour)
		exact := float64(g.cfg.Calls)*span(h)/wsum + carry
		n := int(exact)
		carry = exact - float64(n)
		if h == hours-1 {
			n = g.cfg.Calls - written
		}
		width := min(int64(time.Hour/time.Microsecond), end.Sub(hs).Microseconds())
		offs := make([]int64, n)
		for i := range offs {
			offs[i] = g.rng.Int64N(width)
		}
		slices.Sort(offs)
		for _, off := range offs {
			ts := hs.UnixMicro() + off
			if err := g.call(w, ts); err != nil {
				return err
			}
			written++
			if w.pending >= g.cfg.BatchCalls {
				if err := w.commit(ctx, db); err != nil {
					return err
				}
			}
		}
		if err := g.flushRollups(w, "rollup_hour", g.hour); err != nil {
			return err
		}
		if next := hs.Add(time.Hour); next.Truncate(24*time.Hour).Equal(next) || h == hours-1 {
			if err := g.flushRollups(w, "rollup_day", g.day); err != nil {
				return err
			}
			logf("%s: %d calls written", hs.Format("2006-01-02"), written)
		}
	}
	if err := g.flushSessions(w); err != nil {
		return err
	}
	if _, err := w.tx.ExecContext(ctx, coarseRollups); err != nil {
		return fmt.Errorf("deriving the coarser rollups: %w", err)
	}
	return w.commitLast()
}

// call draws one call at ts and writes its event and calls rows, adding it
// to the rollups and its session.
func (g *gen) call(w *writer, ts int64) error {
	rng := g.rng
	ki := g.pick.pick(rng)
	k := &g.keys[ki]
	var mi int
	switch r := rng.IntN(10); {
	case r < 7:
		mi = k.models[0]
	case r < 9:
		mi = k.models[1]
	default:
		mi = k.models[2]
	}
	m := &catalogue[mi]
	shape := "anthropic"
	if k.openai != (rng.IntN(10) == 0) {
		shape = "openai"
	}
	c := store.Call{TurnID: ulid.MustNew(uint64(ts/1000), g.entropy).String(), GatewayKeyID: k.id,
		KeyName: k.name, User: k.user, Team: k.team, Workspace: k.workspace, InboundShape: shape,
		Provider: m.provider, RequestedModel: m.name, Model: m.name, Stream: rng.IntN(4) != 0, Status: 200,
		Attempts: 1, UsageSource: "provider", LatencyMS: 300 + rng.Int64N(20000)}
	c.InputTokens = 50 + int64(rng.ExpFloat64()*2000)
	c.OutputTokens = 20 + int64(rng.ExpFloat64()*600)
	if m.cacheRead > 0 && rng.IntN(10) < 6 {
		c.CacheReadInputTokens = 2000 + int64(rng.ExpFloat64()*30000)
	}
	if m.cacheWrite > 0 && rng.IntN(10) < 2 {
		c.CacheCreationInputTokens = 500 + int64(rng.ExpFloat64()*5000)
	}
	if m.provider == "openai" && rng.IntN(2) == 0 {
		c.ReasoningTokens = int64(rng.ExpFloat64() * 800)
	}
	switch r := rng.IntN(100); {
	case r < 2:
		c.Status, c.ErrorClass, c.OutputTokens = 429, "RATE_LIMITED", 0
	case r < 3:
		c.Status, c.ErrorClass, c.OutputTokens = 502, "UPSTREAM_ERROR", 0
	case r < 4:
		c.ErrorClass = "CANCELLED"
		c.UsageSource = "estimated"
	case r < 5:
		c.UsageSource = "estimated"
	}
	if m.priced {
		cost := (float64(c.InputTokens)*m.in + float64(c.CacheReadInputTokens)*m.cacheRead +
			float64(c.CacheCreationInputTokens)*m.cacheWrite + float64(c.OutputTokens+c.ReasoningTokens)*m.out) / 1e6
		if cost == 0 {
			cost = 1e-9
		}
		c.CostUSD, c.Priced = &cost, true
		c.CacheSavingsUSD = float64(c.CacheReadInputTokens) * (m.in - m.cacheRead) / 1e6
	}
	if c.Stream {
		ttft := 150 + rng.Int64N(2000)
		c.TTFTMS = &ttft
	}
	if shape == "anthropic" && !k.openai && rng.IntN(100) < 85 {
		c.SessionID = g.session(int32(ki), ts)
	}
	if err := w.add(ulid.MustNew(uint64(ts/1000), g.entropy).String(), ts, &c); err != nil {
		return err
	}
	g.stats.Calls++
	sh := int8(0)
	if shape == "openai" {
		sh = 1
	}
	sec := ts / 1e6
	rk := rkey{bucket: sec - sec%3600, key: int32(ki), model: int8(mi), shape: sh}
	addAgg(g.hour, rk, &c, ts)
	rk.bucket = sec - sec%86400
	addAgg(g.day, rk, &c, ts)
	if c.SessionID != "" {
		s := g.sessions[c.SessionID]
		if s == nil {
			s = &sagg{key: int32(ki), first: ts}
			g.sessions[c.SessionID] = s
		}
		s.last = ts
		s.add(&c, ts)
	}
	return nil
}

// session returns key ki's current Claude Code session at ts, starting a new
// one after 45 idle minutes or 20–200 calls.
func (g *gen) session(ki int32, ts int64) string {
	o := &g.open[ki]
	if o.id == "" || ts-o.last > int64(45*time.Minute/time.Microsecond) || o.left <= 0 {
		o.id = fmt.Sprintf("%08x-%04x-4%03x-%04x-%012x", g.rng.Uint32(), g.rng.Uint32()&0xffff,
			g.rng.Uint32()&0xfff, 0x8000|g.rng.Uint32()&0x3fff, g.rng.Uint64()&0xffffffffffff)
		o.left = 20 + g.rng.IntN(180)
	}
	o.last = ts
	o.left--
	return o.id
}

func addAgg(m map[rkey]*ragg, k rkey, c *store.Call, ts int64) {
	a := m[k]
	if a == nil {
		a = &ragg{}
		m[k] = a
	}
	a.add(c, ts)
}

// add counts call c at ts.
func (a *ragg) add(c *store.Call, ts int64) {
	a.calls++
	if c.Status >= 400 || c.ErrorClass != "" {
		a.errors++
	}
	if !c.Priced {
		a.unpriced++
	} else {
		a.cost += *c.CostUSD
	}
	if c.UsageSource == "estimated" {
		a.estimated++
	}
	a.savings += c.CacheSavingsUSD
	a.input += c.InputTokens
	a.cacheRead += c.CacheReadInputTokens
	a.cacheWrite += c.CacheCreationInputTokens
	a.output += c.OutputTokens
	a.reasoning += c.ReasoningTokens
	a.lat += c.LatencyMS
	a.last = max(a.last, ts)
}

func (g *gen) flushRollups(w *writer, table string, m map[rkey]*ragg) error {
	for rk, a := range m {
		k, md := &g.keys[rk.key], &catalogue[rk.model]
		shape := "anthropic"
		if rk.shape == 1 {
			shape = "openai"
		}
		if err := w.rollup(table, rk.bucket, k, md, shape, a); err != nil {
			return err
		}
		if table == "rollup_hour" {
			g.stats.HourRows++
		} else {
			g.stats.DayRows++
		}
	}
	clear(m)
	return nil
}

func (g *gen) flushSessions(w *writer) error {
	for id, s := range g.sessions {
		if err := w.session(id, &g.keys[s.key], s); err != nil {
			return err
		}
		g.stats.Sessions++
	}
	return nil
}

// payload encodes c as the writer does.
func payload(c *store.Call) (string, error) {
	b, err := json.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("encoding call %s: %w", c.TurnID, err)
	}
	return string(b), nil
}
