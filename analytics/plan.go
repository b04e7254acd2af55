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

// part is one piece of a window's decomposition: the calls in [lo, hi)
// (unix microseconds) read from src, added or, when neg, subtracted.
type part struct {
	src    source
	lo, hi int64
	neg    bool
}

// unit is a set of parts read in one read transaction, so that a
// subtraction sees the same snapshot as the rollup row it corrects. When
// guardHi > guardLo the parts are only valid if no call lies in
// [guardLo, guardHi), and a unit that subtracts calls only if none were
// pruned from them (both checked in the same transaction, readUnitTx);
// otherwise the fallback parts are read instead.
type unit struct {
	parts            []part
	guardLo, guardHi int64
	fallback         []part
	// cache marks a unit of whole past days read from one rollup table,
	// whose result the day cache may keep.
	cache bool
}

const (
	hourUS = int64(3600e6)
	dayUS  = int64(86400e6)
	// dayCost is the cost of reading one rollup_day bucket in rollup_hour
	// buckets (a day bucket holds more key × model rows than an hour).
	dayCost = 2
)

// plan decomposes [from, to) into units. Whole UTC days are read from
// rollup_day, whole hours from rollup_hour and the partial hours at the
// edges from calls. A partial day is read either by adding its hours
// (inclusion) or as its rollup_day row minus the hours and calls before
// the window (exclusion) — whichever reads fewer rollup rows; exclusion of
// a day the window ends inside needs the rest of that day to hold no call
// (normally true: the window ends now), which the unit's guard checks. A
// grain finer than a table's bucket forbids that table; callsOnly reads
// every part from calls.
func plan(from, to time.Time, g grain, callsOnly bool) []unit {
	lo, hi := from.UnixMicro(), to.UnixMicro()
	if hi <= lo {
		return nil
	}
	if callsOnly || g == grainMinute {
		return []unit{{parts: []part{{src: srcCalls, lo: lo, hi: hi}}}}
	}
	if g == grainHour {
		return hourUnits(lo, hi)
	}
	var units []unit
	wholeLo, wholeHi := int64(-1), int64(-1)
	for d := floorTo(lo, dayUS); d < hi; d += dayUS {
		a, b := max(lo, d), min(hi, d+dayUS)
		if a == d && b == d+dayUS {
			if wholeLo < 0 {
				wholeLo = d
			}
			wholeHi = b
			continue
		}
		units = append(units, partialDay(d, a, b)...)
	}
	if wholeLo >= 0 {
		// A long run of days is read as two halves, concurrently.
		if days := (wholeHi - wholeLo) / dayUS; days >= 4 {
			mid := wholeLo + days/2*dayUS
			units = append(units, unit{parts: []part{{src: srcDay, lo: wholeLo, hi: mid}}, cache: true},
				unit{parts: []part{{src: srcDay, lo: mid, hi: wholeHi}}, cache: true})
		} else {
			units = append(units, unit{parts: []part{{src: srcDay, lo: wholeLo, hi: wholeHi}}, cache: true})
		}
	}
	return units
}

// partialDay plans [a, b), a strict part of the day starting at d.
func partialDay(d, a, b int64) []unit {
	inclCost := max(0, floorTo(b, hourUS)-ceilTo(a, hourUS)) / hourUS
	exclCost := dayCost + (floorTo(a, hourUS)-d)/hourUS
	if exclCost >= inclCost {
		return includeUnits(a, b)
	}
	excl := []part{{src: srcDay, lo: d, hi: d + dayUS}}
	if h := floorTo(a, hourUS); h > d {
		excl = append(excl, part{src: srcHour, lo: d, hi: h, neg: true})
	}
	if h := floorTo(a, hourUS); a > h {
		excl = append(excl, part{src: srcCalls, lo: h, hi: a, neg: true})
	}
	u := unit{parts: excl, fallback: include(a, b)}
	if b < d+dayUS {
		u.guardLo, u.guardHi = b, d+dayUS
	}
	return []unit{u}
}

// includeUnits reads [a, b) by addition: whole hours from rollup_hour,
// the partial hours at the edges each as partialHour reads it.
func includeUnits(a, b int64) []unit {
	h0, h1 := ceilTo(a, hourUS), floorTo(b, hourUS)
	if h0 > h1 {
		return []unit{partialHour(a, b)} // inside one hour
	}
	var units []unit
	if a < h0 {
		units = append(units, partialHour(a, h0))
	}
	if h0 < h1 {
		units = append(units, unit{parts: []part{{src: srcHour, lo: h0, hi: h1}}})
	}
	if h1 < b {
		units = append(units, partialHour(h1, b))
	}
	return units
}

// partialHour plans [a, b), a strict part of the hour starting at h: the
// calls in it, or, when fewer calls are read so, the hour's rollup_hour row
// minus the calls before a. The rest of the hour after b must then hold no
// call (normally true: the window ends now), which the unit's guard
// checks. A window ending now read every call of the hour so far (review
// 30S: the dashboard's 1h view took 0.5 s at 189k calls in the hour).
func partialHour(a, b int64) unit {
	h := floorTo(a, hourUS)
	calls := unit{parts: []part{{src: srcCalls, lo: a, hi: b}}}
	if a-h >= b-a {
		return calls
	}
	u := unit{parts: []part{{src: srcHour, lo: h, hi: h + hourUS}}, fallback: calls.parts}
	if a > h {
		u.parts = append(u.parts, part{src: srcCalls, lo: h, hi: a, neg: true})
	}
	if b < h+hourUS {
		u.guardLo, u.guardHi = b, h+hourUS
	}
	return u
}

// blockUS is the length of the aligned blocks of rollup_hour buckets an
// hour-grain window is read in: past blocks never change, so the day cache
// keeps them, and a sliding window reuses them hour after hour.
const blockUS = 4 * hourUS

// hourUnits reads [lo, hi) by hours: the partial hours at the edges as
// partialHour reads them, the whole hours from rollup_hour — the run of
// whole days as one unit (two halves when long), the hours of the partial
// days at its ends in aligned 4-hour blocks — each unit cacheable.
func hourUnits(lo, hi int64) []unit {
	h0, h1 := ceilTo(lo, hourUS), floorTo(hi, hourUS)
	if h0 >= h1 {
		return includeUnits(lo, hi)
	}
	var units []unit
	if lo < h0 {
		units = append(units, partialHour(lo, h0))
	}
	d0, d1 := ceilTo(h0, dayUS), floorTo(h1, dayUS)
	if d0 >= d1 {
		d0, d1 = h1, h1
	}
	units = appendBlocks(units, h0, d0)
	if d0 < d1 {
		if days := (d1 - d0) / dayUS; days >= 4 {
			mid := d0 + days/2*dayUS
			units = append(units, unit{parts: []part{{src: srcHour, lo: d0, hi: mid}}, cache: true},
				unit{parts: []part{{src: srcHour, lo: mid, hi: d1}}, cache: true})
		} else {
			units = append(units, unit{parts: []part{{src: srcHour, lo: d0, hi: d1}}, cache: true})
		}
	}
	units = appendBlocks(units, d1, h1)
	if h1 < hi {
		units = append(units, partialHour(h1, hi))
	}
	return units
}

// appendBlocks adds [a, b) (whole hours, less than a day) as aligned 4-hour
// blocks of rollup_hour.
func appendBlocks(units []unit, a, b int64) []unit {
	for a < b {
		e := min(b, floorTo(a, blockUS)+blockUS)
		units = append(units, unit{parts: []part{{src: srcHour, lo: a, hi: e}}, cache: true})
		a = e
	}
	return units
}

// include reads [a, b) by addition in one unit: whole hours from
// rollup_hour, the partial hours at the edges from calls (the fallback of
// an exclusion whose guard failed).
func include(a, b int64) []part {
	h0, h1 := ceilTo(a, hourUS), floorTo(b, hourUS)
	if h0 >= h1 {
		return []part{{src: srcCalls, lo: a, hi: b}}
	}
	var parts []part
	if a < h0 {
		parts = append(parts, part{src: srcCalls, lo: a, hi: h0})
	}
	parts = append(parts, part{src: srcHour, lo: h0, hi: h1})
	if h1 < b {
		parts = append(parts, part{src: srcCalls, lo: h1, hi: b})
	}
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
