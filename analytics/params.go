package analytics

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/metisgateway/metis/store"
)

// window is the resolved [from, to) interval of a request.
type window struct {
	name     string // as asked, e.g. "24h", "all"
	from, to time.Time
	all      bool
}

const (
	defaultWindow = "24h"
	defaultLimit  = 50
	maxLimit      = 500
	// defaultCostLimit and maxCostLimit bound /analytics/cost's groups: the
	// default keeps the usual groupings (a thousand keys, every model, a
	// month of days) complete; group_by=session over a month is the answer
	// it cuts.
	defaultCostLimit = 1000
	maxCostLimit     = 10000
)

// parseWindow resolves the window parameter against now: 1h, 24h, 7d, 30d,
// all, any whole number of days ("3d") or any positive Go duration ("90m");
// or, instead of window, an absolute range from from to to (default now).
func parseWindow(r *http.Request, now time.Time) (window, error) {
	q := r.URL.Query()
	if q.Has("from") || q.Has("to") {
		return parseRange(q, now)
	}
	s := strings.TrimSpace(q.Get("window"))
	if s == "" {
		s = defaultWindow
	}
	to := now.UTC()
	if s == "all" {
		return window{name: s, from: time.Unix(0, 0).UTC(), to: to, all: true}, nil
	}
	d, err := windowDuration(s)
	if err != nil || d <= 0 {
		return window{}, badParam("window", fmt.Sprintf(
			"bad window %q; use 1h, 24h, 7d, 30d, all or a positive Go duration such as 90m", s))
	}
	from := to.Add(-d)
	if from.Before(time.Unix(0, 0)) {
		from = time.Unix(0, 0).UTC()
	}
	return window{name: s, from: from, to: to}, nil
}

// parseRange reads from and to: RFC 3339 times, or dates (UTC midnight),
// to defaulting to now. The range is [from, to), so a month's chargeback
// is from=2026-10-01&to=2026-11-01. Its window is named "from/to".
func parseRange(q url.Values, now time.Time) (window, error) {
	if q.Has("window") {
		return window{}, badParam("window", "give either window or from and to, not both")
	}
	fs, ts := strings.TrimSpace(q.Get("from")), strings.TrimSpace(q.Get("to"))
	if fs == "" {
		return window{}, badParam("from", "to needs a from: an RFC 3339 time (2026-10-01T00:00:00Z) or a date (2026-10-01, UTC)")
	}
	from, err := parseInstant(fs)
	if err != nil {
		return window{}, badParam("from", fmt.Sprintf("bad from %q; use an RFC 3339 time (2026-10-01T00:00:00Z) or a date (2026-10-01, UTC)", fs))
	}
	to := now.UTC()
	if ts != "" {
		if to, err = parseInstant(ts); err != nil {
			return window{}, badParam("to", fmt.Sprintf("bad to %q; use an RFC 3339 time (2026-11-01T00:00:00Z) or a date (2026-11-01, UTC)", ts))
		}
	}
	if !from.Before(to) {
		return window{}, badParam("to", fmt.Sprintf("to (%s) must be after from (%s)", fmtInstant(to), fmtInstant(from)))
	}
	if from.Before(time.Unix(0, 0)) {
		from = time.Unix(0, 0).UTC()
	}
	return window{name: fmtInstant(from) + "/" + fmtInstant(to), from: from, to: to}, nil
}

// parseInstant reads an RFC 3339 time, or a date as its UTC midnight. An
// offset's + sent unescaped in a query arrives as a space
// (2026-03-01T00:00:00 01:00): nothing else it could mean, it is read as
// the + the user typed (review 28T).
func parseInstant(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), nil
	}
	if i := strings.LastIndexByte(s, ' '); i > 0 && strings.Contains(s[:i], "T") {
		if t, err := time.Parse(time.RFC3339Nano, s[:i]+"+"+s[i+1:]); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Parse(time.DateOnly, s)
}

// The query parameters each kind of endpoint reads.
var (
	windowParams   = []string{"window", "from", "to"}
	filterParams   = []string{"gateway_key", "user", "team", "workspace", "model"}
	costParams     = slices.Concat(windowParams, []string{"group_by", "limit"}, filterParams)
	identityParams = slices.Concat(windowParams, filterParams)
	listParams     = slices.Concat(windowParams, []string{"limit"}, filterParams) // activity
	// sessionParams has no model: a session's calls may use several, and its
	// sums are the whole session's.
	sessionParams = slices.Concat(windowParams, []string{"limit", "gateway_key", "user", "team", "workspace"})
	meParams      = windowParams
	noParams      = []string{}
)

// checkParams refuses a parameter the endpoint does not read, rather than
// answering as if it had been applied (a tz= or start=, or a group_by sent
// to by_key, would otherwise be ignored silently).
func checkParams(r *http.Request, known []string) error {
	// URL.Query drops the pairs it cannot parse, and a filter dropped that
	// way would answer for everyone.
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return badParam("", fmt.Sprintf("malformed query string (%v): escape %% as %%25, and separate parameters with &, not ;", err))
	}
	var unknown []string
	for name := range q {
		if !slices.Contains(known, name) {
			unknown = append(unknown, name)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	slices.Sort(unknown)
	if len(known) == 0 {
		return badParam(unknown[0], fmt.Sprintf("unknown parameter %q; %s takes none", unknown[0], r.URL.Path))
	}
	return badParam(unknown[0], fmt.Sprintf("unknown parameter %q; %s takes %s (days and hours are UTC)",
		unknown[0], r.URL.Path, strings.Join(known, ", ")))
}

func windowDuration(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n <= 0 || n > 100000 {
			return 0, fmt.Errorf("bad day count %q", days)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	return time.ParseDuration(s)
}

// parseLimit reads the limit parameter: default 50, 1 to 500.
func parseLimit(r *http.Request) (int, error) {
	return parseLimitIn(r, defaultLimit, maxLimit)
}

// parseLimitIn reads the limit parameter: def when absent, else a whole
// number from 1 to most.
func parseLimitIn(r *http.Request, def, most int) (int, error) {
	s := strings.TrimSpace(r.URL.Query().Get("limit"))
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > most {
		return 0, badParam("limit", fmt.Sprintf("bad limit %q; use a whole number from 1 to %d", s, most))
	}
	return n, nil
}

// filter restricts a query to calls matching every set field. A nil field
// is unset; a set one matches exactly ("untagged" user or team means ”).
type filter struct {
	keyID, user, team, workspace, model *string
}

// untagged is the label of an empty user or team.
const untagged = store.Untagged

// parseFilter reads gateway_key, user, team, workspace and model.
func parseFilter(r *http.Request) filter {
	q := r.URL.Query()
	get := func(name string, tag bool) *string {
		if !q.Has(name) {
			return nil
		}
		v := strings.TrimSpace(q.Get(name))
		if v == "" {
			return nil
		}
		if tag && v == untagged {
			v = ""
		}
		return &v
	}
	return filter{
		keyID:     get("gateway_key", false),
		user:      get("user", true),
		team:      get("team", true),
		workspace: get("workspace", false),
		model:     get("model", false),
	}
}

// where appends "AND col = ?" conditions for the set fields; the column
// names are the same in calls, rollup_hour, rollup_day and sessions (model
// excepted, which sessions lack).
func (f filter) where(sb *strings.Builder, args []any) []any {
	for _, c := range [...]struct {
		col string
		v   *string
	}{{"key_id", f.keyID}, {"user", f.user}, {"team", f.team}, {"workspace", f.workspace}, {"model", f.model}} {
		if c.v == nil {
			continue
		}
		sb.WriteString(" AND " + c.col + " = ?")
		args = append(args, *c.v)
	}
	return args
}

// tagLabel shows an empty user or team as "untagged".
func tagLabel(s string) string {
	if s == "" {
		return untagged
	}
	return s
}

// timeFormat is RFC 3339 in UTC with milliseconds when they are not zero;
// instantFormat has the microseconds a window is counted to.
const (
	timeFormat    = "2006-01-02T15:04:05.999Z07:00"
	instantFormat = "2006-01-02T15:04:05.999999Z07:00"
)

func fmtTime(t time.Time) string { return t.UTC().Format(timeFormat) }

// fmtInstant formats a window's bound as counted, to the microsecond: a
// client paging with from=<the last answer's to> must count each call once
// (review 28T).
func fmtInstant(t time.Time) string { return t.UTC().Format(instantFormat) }

func fmtMicros(us int64) string { return fmtTime(time.UnixMicro(us)) }
