package analyticsbench

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/metisgateway/metis/analytics"
)

// Result is the timing of one request over its iterations.
type Result struct {
	Target        string
	Status        int
	Bytes         int
	P50, P99, Max time.Duration
	// CPU50 and CPU99 are the process CPU time (user + system) per request:
	// on a shared, loaded machine they show the work a request costs where
	// wall time shows the waiting too.
	CPU50, CPU99 time.Duration
	// First is the first request's time: cold for the analytics day cache
	// (not for SQLite's page cache or the OS's) unless WarmUp; FirstCPU is
	// its CPU time.
	First, FirstCPU time.Duration
	// WarmUp and WarmUpCPU are the wall and CPU time of the handler's
	// Warm before the first request (MeasureOptions.WarmUp).
	WarmUp, WarmUpCPU time.Duration
}

// cpuTime is the process's user + system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func percentiles(v []time.Duration) (p50, p99, maxv time.Duration) {
	slices.Sort(v)
	return v[len(v)/2], v[min(len(v)-1, (len(v)*99+99)/100-1)], v[len(v)-1]
}

// scenario is one request of the benchmark; {key}, {session} and {token}
// are filled from the database.
type scenario struct {
	target string
	token  bool
}

func scenarios(key, session string) []scenario {
	s := []scenario{{target: "/health"}}
	for _, w := range []string{"1h", "24h", "7d", "30d", "all"} {
		s = append(s, scenario{target: "/analytics/cost?window=" + w})
	}
	for _, g := range []string{"provider", "key", "user", "team", "workspace", "day", "hour", "session"} {
		s = append(s, scenario{target: "/analytics/cost?window=24h&group_by=" + g})
	}
	for _, g := range []string{"model", "key", "user", "team", "workspace", "day", "hour"} {
		s = append(s, scenario{target: "/analytics/cost?window=30d&group_by=" + g})
	}
	s = append(s,
		scenario{target: "/analytics/cost?window=all&group_by=key"},
		scenario{target: "/analytics/cost?window=30d&gateway_key=" + key},
		scenario{target: "/analytics/cost?window=30d&user=user07&group_by=day"},
		scenario{target: "/analytics/cost?window=7d&team=team3&model=claude-sonnet-4-5&group_by=key"},
		scenario{target: "/analytics/cost?window=90m&group_by=session"},
	)
	for _, w := range []string{"1h", "7d", "30d", "all"} {
		s = append(s, scenario{target: "/analytics/cost?window=" + w + "&group_by=session"})
	}
	for _, f := range []string{"gateway_key=" + key, "user=user07", "team=team3", "workspace=/src/project-07"} {
		for _, w := range []string{"24h", "30d"} {
			s = append(s, scenario{target: "/analytics/cost?window=" + w + "&group_by=session&" + f})
		}
	}
	s = append(s, scenario{target: "/analytics/cost?window=24h&group_by=session&model=claude-sonnet-4-5"})
	for _, p := range []string{"by_key", "by_user", "by_team"} {
		for _, w := range []string{"24h", "7d", "30d", "all"} {
			s = append(s, scenario{target: "/analytics/" + p + "?window=" + w})
		}
	}
	for _, w := range []string{"1h", "24h", "7d", "30d"} {
		s = append(s, scenario{target: "/analytics/activity?window=" + w})
	}
	s = append(s,
		scenario{target: "/analytics/activity?window=24h&user=user07&limit=500"},
		scenario{target: "/analytics/activity?window=7d&gateway_key=" + key},
		scenario{target: "/analytics/me?window=24h", token: true},
		scenario{target: "/analytics/me?window=30d", token: true},
		scenario{target: "/sessions?window=24h"},
		scenario{target: "/sessions?window=7d&user=user07&limit=500"},
		scenario{target: "/sessions/" + session},
	)
	return s
}

// benchToken is the token /analytics/me scenarios send; Measure's
// authenticator maps it to the busiest key.
const benchToken = "gw_bench"

// MeasureOptions choose what Measure times.
type MeasureOptions struct {
	Iterations int    // timed requests per scenario
	Only       string // time only the scenarios whose request contains this text ("": all)
	// Cold serves every request from a new handler, whose day cache is
	// empty: the first request after a start (SQLite's and the OS's page
	// caches stay warm).
	Cold bool
	// WarmUp serves each scenario from a new handler on which Warm has run
	// (timed): First is then the first request after a start once the
	// background warm-up is done.
	WarmUp bool
}

// Measure times every scenario opt selects opt.Iterations times, after two
// warm-up requests, against db with the clock at now.
func Measure(ctx context.Context, db *sql.DB, now time.Time, opt MeasureOptions) ([]Result, error) {
	iterations, only := opt.Iterations, opt.Only
	var key, name, user, team, ws, session string
	err := db.QueryRowContext(ctx, `SELECT id, name, user, team, workspace FROM gateway_keys
		WHERE name = 'key-0000'`).Scan(&key, &name, &user, &team, &ws)
	if err != nil {
		return nil, fmt.Errorf("finding the busiest key: %w", err)
	}
	err = db.QueryRowContext(ctx, `SELECT session_id FROM sessions ORDER BY last_ts_us DESC LIMIT 1`).Scan(&session)
	if err != nil {
		return nil, fmt.Errorf("finding a session: %w", err)
	}
	newHandler := func() *analytics.Handler {
		return analytics.New(db, analytics.Options{
			Now: func() time.Time { return now },
			Authenticate: func(tok string) (analytics.Identity, error) {
				if tok != benchToken {
					return analytics.Identity{}, fmt.Errorf("unknown token")
				}
				return analytics.Identity{KeyID: key, Name: name, User: user, Team: team, Workspace: ws}, nil
			},
		})
	}
	h := newHandler()
	var out []Result
	for _, sc := range scenarios(key, session) {
		if !strings.Contains(sc.target, only) {
			continue
		}
		times := make([]time.Duration, 0, iterations)
		cpus := make([]time.Duration, 0, iterations)
		res := Result{Target: sc.target}
		if opt.WarmUp {
			h = newHandler()
			c0, start := cpuTime(), time.Now()
			if err := h.Warm(ctx); err != nil {
				return nil, fmt.Errorf("warming up: %w", err)
			}
			res.WarmUp, res.WarmUpCPU = time.Since(start), cpuTime()-c0
		}
		for i := range iterations + 2 {
			r := httptest.NewRequest(http.MethodGet, sc.target, nil).WithContext(ctx)
			if sc.token {
				r.Header.Set("x-api-key", benchToken)
			}
			w := httptest.NewRecorder()
			if opt.Cold {
				h = newHandler()
			}
			c0, start := cpuTime(), time.Now()
			h.ServeHTTP(w, r)
			d, c := time.Since(start), cpuTime()-c0
			res.Status, res.Bytes = w.Code, w.Body.Len()
			if w.Code != http.StatusOK {
				return nil, fmt.Errorf("%s: status %d: %s", sc.target, w.Code, w.Body.String())
			}
			if i == 0 {
				res.First, res.FirstCPU = d, c
			}
			if i >= 2 {
				times, cpus = append(times, d), append(cpus, c)
			}
		}
		res.P50, res.P99, res.Max = percentiles(times)
		res.CPU50, res.CPU99, _ = percentiles(cpus)
		out = append(out, res)
	}
	return out, nil
}
