package analytics

import "time"

// grain is the time bucket an aggregate is grouped by, if any.
type grain int

const (
	grainNone grain = iota
	grainDay
	grainHour
	grainMinute
)

// seconds is the grain's bucket length.
func (g grain) seconds() int64 {
	switch g {
	case grainDay:
		return 86400
	case grainHour:
		return 3600
	case grainMinute:
		return 60
	}
	return 0
}

// source is the table a part of a window is read from.
type source int

const (
	srcDay source = iota
	srcHour
	srcCalls
)

// part is one piece of a window's decomposition: [lo, hi) in unix
// microseconds, read from src.
type part struct {
	src    source
	lo, hi int64
}

// plan decomposes [from, to) into whole UTC days read from rollup_day,
// whole hours in the partial days read from rollup_hour, and the partial
// hours at both ends read from calls. A grain finer than a table's bucket
// forbids that table; callsOnly reads every part from calls.
func plan(from, to time.Time, g grain, callsOnly bool) []part {
	lo, hi := from.UnixMicro(), to.UnixMicro()
	if hi <= lo {
		return nil
	}
	if callsOnly || g == grainMinute {
		return []part{{srcCalls, lo, hi}}
	}
	const hourUS, dayUS = int64(3600e6), int64(86400e6)
	h0, h1 := ceilTo(lo, hourUS), floorTo(hi, hourUS)
	if h0 >= h1 {
		return []part{{srcCalls, lo, hi}}
	}
	var parts []part
	add := func(src source, a, b int64) {
		if a < b {
			parts = append(parts, part{src, a, b})
		}
	}
	add(srcCalls, lo, h0)
	add(srcCalls, h1, hi)
	d0, d1 := ceilTo(h0, dayUS), floorTo(h1, dayUS)
	if g == grainHour || d0 >= d1 {
		add(srcHour, h0, h1)
		return parts
	}
	add(srcHour, h0, d0)
	add(srcHour, d1, h1)
	add(srcDay, d0, d1)
	return parts
}

func floorTo(v, unit int64) int64 {
	m := v % unit
	if m < 0 {
		m += unit
	}
	return v - m
}

func ceilTo(v, unit int64) int64 {
	f := floorTo(v, unit)
	if f == v {
		return v
	}
	return f + unit
}
