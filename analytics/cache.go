package analytics

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"
)

// dayCache keeps the results of whole-day units (runs of complete UTC days
// read from rollup_day), which make most of the work of a 7d or 30d window
// and do not change once the days are over. Entries stay exact: before each
// use the cache looks at the calls inserted since it last looked (the calls
// table's rowids only grow) and drops every entry whose days one of them
// falls in; a change of the smallest rowid (rows deleted) or a shrinking
// largest one drops everything.
type dayCache struct {
	mu             sync.Mutex
	minRow, maxRow int64
	primed         bool
	entries        map[string]*cacheEntry
	groups         int // groups held by all entries
}

type cacheEntry struct {
	hi   int64 // end of the days covered, unix µs
	res  result
	run  *sessionRun // instead of res: a run's sessions (aggregateSessionsTop)
	used time.Time
}

// size is the number of groups e holds.
func (e *cacheEntry) size() int {
	if e.run != nil {
		return len(e.run.top) + len(e.run.edge) + 1
	}
	return len(e.res)
}

const (
	maxCacheEntries = 2048
	// maxCacheGroups bounds the memory: about 150 bytes a group.
	maxCacheGroups = 300_000
	// maxCatchUp is how many new calls the cache scans to find which
	// entries they invalidate; beyond it, it starts over.
	maxCatchUp = 500_000
)

// cacheable reports whether u is a run of whole past days or hours read
// from one rollup table.
func cacheable(u unit) bool {
	return u.cache && len(u.parts) == 1 && u.parts[0].src != srcCalls && !u.parts[0].neg && u.guardHi <= u.guardLo
}

func cacheKey(q query, p part) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "%d|%d|%d|%d|%t|", p.src, p.lo, p.hi, q.grain, q.lean)
	for _, d := range q.dims {
		sb.WriteString(string(d) + ",")
	}
	for _, v := range []*string{q.filter.keyID, q.filter.user, q.filter.team, q.filter.workspace, q.filter.model} {
		if v == nil {
			sb.WriteString("|-")
		} else {
			sb.WriteString("|=" + *v)
		}
	}
	return sb.String()
}

// sync brings the cache up to the calls committed so far and returns the
// watermark (largest calls rowid) that entries computed from now on are
// valid at.
func (c *dayCache) sync(ctx context.Context, db querier) (int64, error) {
	var lo, hi int64
	rows, err := db.QueryContext(ctx, "SELECT COALESCE((SELECT MIN(rowid) FROM calls), 0), COALESCE((SELECT MAX(rowid) FROM calls), 0)")
	if err != nil {
		return 0, fmt.Errorf("reading the calls watermark: %w", err)
	}
	if rows.Next() {
		err = rows.Scan(&lo, &hi)
	}
	rows.Close()
	if err != nil {
		return 0, fmt.Errorf("reading the calls watermark: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case !c.primed || lo != c.minRow || hi < c.maxRow || hi-c.maxRow > maxCatchUp:
		clear(c.entries)
		c.groups = 0
	case hi > c.maxRow && len(c.entries) > 0:
		var minTS int64
		r, err := db.QueryContext(ctx, "SELECT COALESCE(MIN(ts_us), 0) FROM calls WHERE rowid > ? AND rowid <= ?",
			c.maxRow, hi)
		if err != nil {
			return 0, fmt.Errorf("reading new calls: %w", err)
		}
		if r.Next() {
			err = r.Scan(&minTS)
		}
		r.Close()
		if err != nil {
			return 0, fmt.Errorf("reading new calls: %w", err)
		}
		for k, e := range c.entries {
			if minTS < e.hi {
				c.drop(k)
			}
		}
	}
	c.primed, c.minRow, c.maxRow = true, lo, hi
	return hi, nil
}

// get returns a copy of the cached groups for key.
func (c *dayCache) get(key string, now time.Time) (result, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	if !ok || e.run != nil {
		return nil, false
	}
	e.used = now
	return append(result(nil), e.res...), true
}

// getRun returns the cached sessionRun for key, for a reader whose snapshot
// the cache was synced to at mark (see getAt). The entry is shared: callers
// must not modify it.
func (c *dayCache) getRun(key string, mark int64, now time.Time) (*sessionRun, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	if !ok || e.run == nil || c.maxRow != mark {
		return nil, false
	}
	e.used = now
	return e.run, true
}

// putRun stores run like put stores a result.
func (c *dayCache) putRun(key string, hi, mark int64, run *sessionRun, now time.Time) {
	c.store(key, mark, &cacheEntry{hi: hi, run: run, used: now})
}

// getAt is get for a reader whose snapshot the cache was synced to at
// mark: it misses when the cache has moved on since (its entries may then
// include calls the snapshot does not).
func (c *dayCache) getAt(key string, mark int64, now time.Time) (result, bool) {
	c.mu.Lock()
	moved := c.maxRow != mark
	c.mu.Unlock()
	if moved {
		return nil, false
	}
	return c.get(key, now)
}

// put stores res, computed after sync returned mark, unless the cache has
// moved past mark since (calls inserted meanwhile were not checked against
// it).
func (c *dayCache) put(key string, hi, mark int64, res result, now time.Time) {
	c.store(key, mark, &cacheEntry{hi: hi, res: append(result(nil), res...), used: now})
}

// store adds e under key, evicting the least recently used entries to stay
// within the bounds, unless the cache has moved past mark.
func (c *dayCache) store(key string, mark int64, e *cacheEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if mark != c.maxRow {
		return
	}
	if c.entries == nil {
		c.entries = make(map[string]*cacheEntry)
	}
	size := e.size()
	if size > maxCacheGroups/4 {
		return
	}
	if _, ok := c.entries[key]; ok {
		c.drop(key)
	}
	for len(c.entries) > 0 && (len(c.entries) >= maxCacheEntries || c.groups+size > maxCacheGroups) {
		var oldest string
		var at time.Time
		for k, e := range c.entries {
			if oldest == "" || e.used.Before(at) {
				oldest, at = k, e.used
			}
		}
		c.drop(oldest)
	}
	c.entries[key] = e
	c.groups += size
}

// drop removes one entry; c.mu is held.
func (c *dayCache) drop(key string) {
	if e, ok := c.entries[key]; ok {
		c.groups -= e.size()
		delete(c.entries, key)
	}
}
