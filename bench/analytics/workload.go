// Package analyticsbench fills a trace database with a synthetic month of
// gateway traffic and times the analytics endpoints on it (perf-notes §9.3
// S8). The generator writes events, calls, rollup_hour, rollup_day and
// sessions directly in large transactions, with the writer's column
// semantics, because the store's writer path is too slow for 10M calls in
// minutes; the schema comes from store.Open.
package analyticsbench

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// Config sizes the synthetic workload.
type Config struct {
	Calls      int   // total llm.call_completed events
	Keys       int   // gateway keys
	Users      int   // distinct users (some keys are untagged)
	Teams      int   // distinct teams
	Workspaces int   // distinct workspaces
	Days       int   // days of history ending at End
	Seed       int64 // random seed
	BatchCalls int   // calls per transaction
}

// DefaultConfig is the 10M-call workload of the benchmark.
func DefaultConfig() Config {
	return Config{Calls: 10_000_000, Keys: 1000, Users: 50, Teams: 8, Workspaces: 40, Days: 30, Seed: 1,
		BatchCalls: 100_000}
}

// model is a priced (or unpriced) model of the synthetic catalogue; prices
// are USD per million tokens.
type model struct {
	provider, name                 string
	in, out, cacheRead, cacheWrite float64
	priced                         bool
	anthropic                      bool // native anthropic shape (cache writes, sessions)
}

var catalogue = []model{
	{"anthropic", "claude-haiku-4-5", 1, 5, 0.1, 1.25, true, true},
	{"anthropic", "claude-sonnet-4-5", 3, 15, 0.3, 3.75, true, true},
	{"anthropic", "claude-opus-4-1", 15, 75, 1.5, 18.75, true, true},
	{"openai", "gpt-5", 1.25, 10, 0.125, 0, true, false},
	{"openai", "gpt-5-mini", 0.25, 2, 0.025, 0, true, false},
	{"openai", "o4-mini", 1.1, 4.4, 0.275, 0, true, false},
	{"mistral", "codestral-2508", 0.3, 0.9, 0, 0, true, false},
	{"local", "llama-3.1-8b", 0, 0, 0, 0, false, false},
}

// key is a synthetic gateway key with its tags and traffic profile.
type key struct {
	id, name, user, team, workspace string
	weight                          float64 // share of traffic (Zipf-like)
	openai                          bool    // mostly OpenAI-shape client (Cursor, SDKs)
	models                          [3]int  // catalogue indices it uses, most used first
}

// makeKeys builds cfg.Keys keys: users 1:N keys, teams from users, about
// 5% of keys without a user and 3% without a team.
func makeKeys(cfg Config, rng *rand.Rand) []key {
	keys := make([]key, cfg.Keys)
	var total float64
	for i := range keys {
		k := &keys[i]
		u := rng.IntN(cfg.Users)
		k.user = fmt.Sprintf("user%02d", u)
		k.team = fmt.Sprintf("team%d", u%cfg.Teams)
		switch r := rng.IntN(100); {
		case r < 5:
			k.user = ""
		case r < 8:
			k.team = ""
		}
		k.workspace = fmt.Sprintf("/src/project-%02d", rng.IntN(cfg.Workspaces))
		k.name = fmt.Sprintf("key-%04d", i)
		k.weight = 1 / math.Pow(float64(i+1), 0.8)
		total += k.weight
		k.openai = rng.IntN(10) < 3
		pool := []int{0, 1, 2, 6, 7}
		if k.openai {
			pool = []int{3, 4, 5, 6, 7, 0}
		}
		rng.Shuffle(len(pool), func(a, b int) { pool[a], pool[b] = pool[b], pool[a] })
		copy(k.models[:], pool)
	}
	for i := range keys {
		keys[i].weight /= total
	}
	return keys
}

// picker draws an index from cumulative weights.
type picker []float64

func newPicker(weights []float64) picker {
	p := make(picker, len(weights))
	var c float64
	for i, w := range weights {
		c += w
		p[i] = c
	}
	return p
}

func (p picker) pick(rng *rand.Rand) int {
	x := rng.Float64() * p[len(p)-1]
	lo, hi := 0, len(p)-1
	for lo < hi {
		mid := (lo + hi) / 2
		if p[mid] < x {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo
}

// diurnal is the relative traffic of each UTC hour of the day.
func diurnal(hour int) float64 {
	return 0.25 + math.Max(0, math.Sin(float64(hour-6)*math.Pi/14))
}
