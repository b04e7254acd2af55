package analytics

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"time"
)

// seriesPoint is one bucket of /analytics/activity's series. CostUSD is 0
// for a bucket without calls and null for one whose calls were all unpriced.
type seriesPoint struct {
	T            string `json:"t"`
	Calls        int64  `json:"calls"`
	Errors       int64  `json:"errors"`
	CostUSD      *usd   `json:"cost_usd"`
	InputTokens  int64  `json:"input_tokens"`
	OutputTokens int64  `json:"output_tokens"`
}

type activityAnswer struct {
	windowFields
	Bucket string        `json:"bucket"`
	Series []seriesPoint `json:"series"`
	Recent []callRow     `json:"recent"`
}

// seriesGrain picks the bucket: minutes up to 2h, hours up to 48h, days
// beyond.
func seriesGrain(w window) (grain, string) {
	d := w.to.Sub(w.from)
	switch {
	case w.all || d > 48*time.Hour:
		return grainDay, "day"
	case d > 2*time.Hour:
		return grainHour, "hour"
	}
	return grainMinute, "minute"
}

func (h *Handler) activity(ctx context.Context, r *http.Request) (any, error) {
	win, err := parseWindow(r, h.now())
	if err != nil {
		return nil, err
	}
	limit, err := parseLimit(r)
	if err != nil {
		return nil, err
	}
	f := parseFilter(r)
	g, name := seriesGrain(win)
	if n := seriesLen(win, g); !win.all && n > maxSeries {
		// Every bucket is answered, empty ones too: a far-off to (a
		// mistyped year, 9999-12-31) would build millions (review 28T).
		param := "window"
		if r.URL.Query().Has("from") {
			// The far-off bound: to when the range up to now would do.
			param = "from"
			if now := h.now(); win.to.After(now) && (!win.from.Before(now) || seriesLen(window{from: win.from, to: now}, g) <= maxSeries) {
				param = "to"
			}
		}
		return nil, badParam(param, fmt.Sprintf("the range %s to %s is %d %s buckets; /analytics/activity answers at most %d: narrow it (/analytics/cost?group_by=day sums any range by day)",
			fmtInstant(win.from), fmtInstant(win.to), n, name, maxSeries))
	}
	res, err := h.aggregate(ctx, query{from: win.from, to: win.to, filter: f, grain: g, lean: true})
	if err != nil {
		return nil, fmt.Errorf("activity series: %w", err)
	}
	recent, err := h.recentCalls(ctx, win.from.UnixMicro(), win.to.UnixMicro(), f, limit)
	if err != nil {
		return nil, fmt.Errorf("activity recent calls: %w", err)
	}
	return activityAnswer{windowFields: newWindowFields(win), Bucket: name,
		Series: fillSeries(res, win, g), Recent: recent}, nil
}

// maxSeries bounds the buckets of a window's series (27 years of days).
const maxSeries = 10000

// seriesLen is how many buckets fillSeries answers for a window that is not
// "all".
func seriesLen(w window, g grain) int64 {
	step := g.seconds()
	return (floorTo(w.to.Add(-time.Microsecond).Unix(), step)-floorTo(w.from.Unix(), step))/step + 1
}

// fillSeries orders the buckets by time and adds empty ones, from the
// window's first bucket (or, for "all", the first bucket with calls) to its
// last.
func fillSeries(res result, w window, g grain) []seriesPoint {
	step := g.seconds()
	sort.Slice(res, func(i, j int) bool { return res[i].bucket < res[j].bucket })
	first := floorTo(w.from.Unix(), step)
	if w.all {
		if len(res) == 0 {
			return []seriesPoint{}
		}
		first = res[0].bucket
	}
	last := floorTo(w.to.Add(-time.Microsecond).Unix(), step)
	out := make([]seriesPoint, 0, max(0, (last-first)/step+1))
	i := 0
	for b := first; b <= last; b += step {
		p := seriesPoint{T: fmtTime(time.Unix(b, 0))}
		for i < len(res) && res[i].bucket < b {
			i++
		}
		var s sums
		if i < len(res) && res[i].bucket == b {
			s = res[i].sums
		}
		p.Calls, p.Errors, p.InputTokens, p.OutputTokens = s.calls, s.errors, s.input, s.output
		p.CostUSD = costOf(s.cost, s.calls, s.unpriced)
		out = append(out, p)
	}
	return out
}
