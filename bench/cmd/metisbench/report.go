package main

import (
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/metisgateway/metis/bench/workload"
)

// series is one value per round.
type series []float64

// stat is the median and range of a series.
type stat struct {
	Med, Min, Max float64
	N             int
}

func (s series) stat() stat {
	if len(s) == 0 {
		return stat{Med: math.NaN(), Min: math.NaN(), Max: math.NaN()}
	}
	v := slices.Clone([]float64(s))
	slices.Sort(v)
	med := v[len(v)/2]
	if len(v)%2 == 0 {
		med = (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	return stat{Med: med, Min: v[0], Max: v[len(v)-1], N: len(v)}
}

// spread is (max−min)/|median|.
func (s stat) spread() float64 {
	if s.N < 2 || s.Med == 0 {
		return 0
	}
	return (s.Max - s.Min) / math.Abs(s.Med)
}

// metric extracts one number from a run.
type metric func(*runRec) float64

var (
	mP50     metric = func(r *runRec) float64 { return r.Result.Latency.P50 }
	mP99     metric = func(r *runRec) float64 { return r.Result.Latency.P99 }
	mRPS     metric = func(r *runRec) float64 { return r.Result.RPS }
	mTTFT50  metric = func(r *runRec) float64 { return ttft(r).P50 }
	mTTFT99  metric = func(r *runRec) float64 { return ttft(r).P99 }
	mGap99   metric = func(r *runRec) float64 { return gap(r).P99 }
	mCPUPerK metric = func(r *runRec) float64 { return perK(r.CPUTarget, r) }
	mMockPK  metric = func(r *runRec) float64 { return perK(r.CPUMock, r) }
	mLoadPK  metric = func(r *runRec) float64 { return perK(r.CPULoadgen, r) }
)

func ttft(r *runRec) struct{ P50, P99 float64 } {
	if r.Result.TTFT == nil {
		return struct{ P50, P99 float64 }{}
	}
	return struct{ P50, P99 float64 }{r.Result.TTFT.P50, r.Result.TTFT.P99}
}

func gap(r *runRec) struct{ P99 float64 } {
	if r.Result.MaxGap == nil {
		return struct{ P99 float64 }{}
	}
	return struct{ P99 float64 }{r.Result.MaxGap.P99}
}

// perK is CPU milliseconds per 1,000 requests sent during the run.
func perK(cpu float64, r *runRec) float64 {
	if r.Result.Sent == 0 {
		return 0
	}
	return cpu * 1000 / float64(r.Result.Sent) * 1000
}

func (res *results) run(round int, sc, tgt string) *runRec {
	return res.byKey[[3]string{fmt.Sprint(round), sc, tgt}]
}

// vals is a metric per round.
func (res *results) vals(sc, tgt string, f metric) series {
	var s series
	for r := 1; r <= res.Rounds; r++ {
		if rec := res.run(r, sc, tgt); rec != nil {
			s = append(s, f(rec))
		}
	}
	return s
}

// diff is f(a) − f(b) per round, both from the same round.
func (res *results) diff(sc, a, b string, f metric) series {
	var s series
	for r := 1; r <= res.Rounds; r++ {
		ra, rb := res.run(r, sc, a), res.run(r, sc, b)
		if ra != nil && rb != nil {
			s = append(s, f(ra)-f(rb))
		}
	}
	return s
}

// ratio is f(a) / f(b) per round.
func (res *results) ratio(sc, a, b string, f metric) series {
	var s series
	for r := 1; r <= res.Rounds; r++ {
		ra, rb := res.run(r, sc, a), res.run(r, sc, b)
		if ra != nil && rb != nil && f(rb) != 0 {
			s = append(s, f(ra)/f(rb))
		}
	}
	return s
}

func (res *results) has(sc, tgt string) bool { return len(res.vals(sc, tgt, mP50)) > 0 }

// format helpers: "median [min–max]".
func fmtStat(s stat, scale float64, prec int, unit string) string {
	if s.N == 0 || math.IsNaN(s.Med) {
		return "—"
	}
	f := func(v float64) string { return fmt.Sprintf("%.*f", prec, v/scale) }
	out := f(s.Med) + unit
	if s.N > 1 {
		out += " [" + f(s.Min) + "–" + f(s.Max) + "]"
	}
	if s.spread() > 0.15 && math.Abs(s.Med/scale) >= 1 {
		out += " ⚠"
	}
	return out
}

func us(s series) string  { return fmtStat(s.stat(), 1, 0, "") }
func ms(s series) string  { return fmtStat(s.stat(), 1000, 2, "") }
func num(s series) string { return fmtStat(s.stat(), 1, 0, "") }
func pct(s series) string { return fmtStat(s.stat(), 0.01, 0, "%") }
func signedUS(s series) string {
	st := s.stat()
	if st.N == 0 {
		return "—"
	}
	f := func(v float64) string { return fmt.Sprintf("%+.0f", v) }
	out := f(st.Med)
	if st.N > 1 {
		out += " [" + f(st.Min) + "…" + f(st.Max) + "]"
	}
	return out
}
func signedMS(s series) string {
	st := s.stat()
	if st.N == 0 {
		return "—"
	}
	f := func(v float64) string { return fmt.Sprintf("%+.2f", v/1000) }
	out := f(st.Med)
	if st.N > 1 {
		out += " [" + f(st.Min) + "…" + f(st.Max) + "]"
	}
	return out
}

// verdict is one issue target.
type verdict struct {
	Metric, Bar, Measured string
	Met                   *bool
}

func yes(b bool) *bool { return &b }

func mark(v *bool) string {
	switch {
	case v == nil:
		return "n/a"
	case *v:
		return "**met**"
	default:
		return "**not met**"
	}
}

// memText renders an RSS reading with its parts.
func memText(m memInfo) string {
	return fmt.Sprintf("%.1f MB RSS (%.1f anon + %.1f file-backed, %.1f of it in 2 MB pages)", m.RSSMB, m.AnonMB, m.FileMB, m.PmdMB)
}

// renderReport writes the markdown report.
func renderReport(res *results) string {
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	mode := "full"
	if res.Quick {
		mode = "quick"
	}
	m := res.Machine
	w("# Metis benchmark report\n\n")
	w("%s run, %d interleaved rounds (scenario and target order shuffled per round, seed %d), %s → %s (%s).\n\n",
		mode, res.Rounds, res.Seed, res.Started.Format(time.RFC3339), res.Finished.Format("15:04:05"),
		res.Finished.Sub(res.Started).Round(time.Second))
	w("Machine: %d CPUs (%s), kernel %s, %s, Caddy %s, SQLite %s, ulimit -n %d, GOMAXPROCS=%q GOGC=%q, load average %s at start, %s at end. ",
		m.NProc, m.CPU, m.Kernel, m.Go, m.Caddy, m.SQLite, m.NoFile, m.GOMAXPROCS, m.GOGC, m.LoadAvgStart, m.LoadAvgEnd)
	if m.Pinned != "" {
		w("Pinned (perf-notes §9.1): %s. ", m.Pinned)
	} else {
		w("Mock, the three Caddy processes and the load generator share the machine. ")
	}
	w("Read the ratios and the added latency, not the absolutes.\n\n")
	w("Values are the median over rounds [min–max]; latency in µs unless marked ms; ⚠ marks a round-to-round spread above 15%%. ")
	w("Added latency is paired per round (target minus floor in the same round).\n\n")

	// Summary.
	w("## Summary\n\n")
	n := res.streams()
	w("| Target | S1 p50 | S1 p99 | S1 added p50 / p99 vs F0 | S1 added p50 / p99 vs F3 | S2 req/s | S2 ÷ F3 |")
	if n > 0 {
		w(" S5 c=1 TTFT p50 ms | S5 c=%d TTFT p50 / p99 ms | S5 c=%d TTFT added p50 / p99 vs F3 ms |", n, n)
	}
	w("\n|---|---|---|---|---|---|---|")
	if n > 0 {
		w("---|---|---|")
	}
	w("\n")
	for _, t := range []string{tF0, tF2, tF3, tMetis} {
		if !res.has(sS1, t) && !res.has(sS2, t) {
			continue
		}
		addF0, addF3 := "—", "—"
		if t != tF0 {
			addF0 = signedUS(res.diff(sS1, t, tF0, mP50)) + " / " + signedUS(res.diff(sS1, t, tF0, mP99))
		}
		if t != tF3 && t != tF0 {
			addF3 = signedUS(res.diff(sS1, t, tF3, mP50)) + " / " + signedUS(res.diff(sS1, t, tF3, mP99))
		}
		w("| %s | %s | %s | %s | %s | %s | %s |", t,
			us(res.vals(sS1, t, mP50)), us(res.vals(sS1, t, mP99)), addF0, addF3,
			num(res.vals(sS2, t, mRPS)), pct(res.ratio(sS2, t, tF3, mRPS)))
		if n > 0 {
			ttAdd := "—"
			if t != tF3 && t != tF0 && res.has(sS5c512, t) {
				ttAdd = signedMS(res.diff(sS5c512, t, tF3, mTTFT50)) + " / " + signedMS(res.diff(sS5c512, t, tF3, mTTFT99))
			}
			w(" %s | %s | %s |", ms(res.vals(sS5c1, t, mTTFT50)),
				ms(res.vals(sS5c512, t, mTTFT50))+" / "+ms(res.vals(sS5c512, t, mTTFT99)), ttAdd)
		}
		w("\n")
	}
	w("\n")

	// Verdicts.
	vs := res.verdicts()
	w("## Issue targets\n\n| Target | Bar | Measured | |\n|---|---|---|---|\n")
	for _, v := range vs {
		w("| %s | %s | %s | %s |\n", v.Metric, v.Bar, v.Measured, mark(v.Met))
	}
	w("\n")

	// Scenario details.
	for _, sc := range res.Scenarios {
		w("## %s — %s\n\n", sc.ID, sc.Title)
		w("c=%d, warm-up %s, measured %s per target and round", sc.C, sc.Warmup, sc.Duration)
		if sc.Stagger > 0 {
			w(", first requests spread over %s", sc.Stagger)
		}
		if sc.Stream {
			w(", max_tokens %d (content events expected per stream: %d)", sc.MaxTokens, expectChunks(sc))
		}
		w(".\n\n")
		switch {
		case sc.Stream:
			w("| Target | TTFT p50 ms | TTFT p99 ms | added TTFT p50 / p99 vs F0 ms | added TTFT p50 / p99 vs F3 ms | stream total p50 ms | max gap p99 ms | streams/s | measured streams | errors |\n|---|---|---|---|---|---|---|---|---|---|\n")
			for _, t := range sc.Targets {
				addF0, addF3 := "—", "—"
				if t != tF0 {
					addF0 = signedMS(res.diff(sc.ID, t, tF0, mTTFT50)) + " / " + signedMS(res.diff(sc.ID, t, tF0, mTTFT99))
				}
				if t != tF0 && t != tF3 {
					addF3 = signedMS(res.diff(sc.ID, t, tF3, mTTFT50)) + " / " + signedMS(res.diff(sc.ID, t, tF3, mTTFT99))
				}
				w("| %s | %s | %s | %s | %s | %s | %s | %s | %d | %s |\n", t,
					ms(res.vals(sc.ID, t, mTTFT50)), ms(res.vals(sc.ID, t, mTTFT99)), addF0, addF3,
					ms(res.vals(sc.ID, t, mP50)), ms(res.vals(sc.ID, t, mGap99)), num(res.vals(sc.ID, t, mRPS)),
					res.total(sc.ID, t, func(r *runRec) int { return r.Result.OK }),
					res.errors(sc.ID, t))
			}
		case sc.ID == sS2:
			w("| Target | req/s | ÷ F0 | ÷ F3 | ÷ F2 | p50 | p99 | Caddy CPU ms / 1k req | mock CPU ms / 1k | loadgen CPU ms / 1k | errors |\n|---|---|---|---|---|---|---|---|---|---|---|\n")
			for _, t := range sc.Targets {
				w("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", t,
					num(res.vals(sc.ID, t, mRPS)), pct(res.ratio(sc.ID, t, tF0, mRPS)), pct(res.ratio(sc.ID, t, tF3, mRPS)),
					pct(res.ratio(sc.ID, t, tF2, mRPS)),
					us(res.vals(sc.ID, t, mP50)), us(res.vals(sc.ID, t, mP99)),
					cpuCol(res, sc.ID, t), num(res.vals(sc.ID, t, mMockPK)), num(res.vals(sc.ID, t, mLoadPK)), res.errors(sc.ID, t))
			}
		default:
			w("| Target | p50 | p90 | p99 | p99.9 | req/s | added p50 / p99 vs F0 | added p50 / p99 vs F3 | Caddy CPU ms / 1k req | errors |\n|---|---|---|---|---|---|---|---|---|---|\n")
			for _, t := range sc.Targets {
				f0, f3 := tF0, tF3
				if strings.Contains(t, "4 KB") {
					f0, f3 = "", tF3OAI
				}
				addF0, addF3 := "—", "—"
				if f0 != "" && t != f0 {
					addF0 = signedUS(res.diff(sc.ID, t, f0, mP50)) + " / " + signedUS(res.diff(sc.ID, t, f0, mP99))
				}
				if t != tF0 && t != f3 && res.has(sc.ID, f3) {
					addF3 = signedUS(res.diff(sc.ID, t, f3, mP50)) + " / " + signedUS(res.diff(sc.ID, t, f3, mP99))
				}
				w("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", t,
					us(res.vals(sc.ID, t, mP50)), us(res.vals(sc.ID, t, func(r *runRec) float64 { return r.Result.Latency.P90 })),
					us(res.vals(sc.ID, t, mP99)), us(res.vals(sc.ID, t, func(r *runRec) float64 { return r.Result.Latency.P999 })),
					num(res.vals(sc.ID, t, mRPS)), addF0, addF3, cpuCol(res, sc.ID, t), res.errors(sc.ID, t))
			}
			if res.has(sc.ID, tMetisXOAI) && res.has(sc.ID, tMetisOAI) {
				w("\nTranslation path (OpenAI-shape client, ~%d B request, to an Anthropic-type model) minus same-shape passthrough (same client, OpenAI-type model), paired per round: p50 %s µs, p99 %s µs.\n",
					len(workload.OpenAI4KBody(benchModel)), signedUS(res.diff(sc.ID, tMetisXOAI, tMetisOAI, mP50)), signedUS(res.diff(sc.ID, tMetisXOAI, tMetisOAI, mP99)))
			}
		}
		w("\n")
	}

	// Memory.
	w("## Memory (MB)\n\nRSS = anonymous (heap, stacks) + file-backed (mostly the mapped executable, shared with the page cache). ")
	w("Every process here is the same %.0f MB executable, the mock included.\n\n", res.ExeMB)
	w("| Process | idle RSS (anon + file) | after load RSS (anon + file) | peak RSS (VmHWM) |\n|---|---|---|---|\n")
	for _, name := range []string{"caddy-metis", "caddy-f3", "caddy-f2", "mock"} {
		i, a := res.MemIdle[name], res.MemAfter[name]
		w("| %s | %.1f (%.1f + %.1f) | %.1f (%.1f + %.1f) | %.1f |\n", name, i.RSSMB, i.AnonMB, i.FileMB, a.RSSMB, a.AnonMB, a.FileMB, a.PeakMB)
	}
	if x := res.XCaddy; x != nil {
		if x.Error != "" {
			w("\n-caddy %s: %s\n", x.Path, x.Error)
			if x.Idle.RSSMB > 0 {
				w("\nxcaddy build %s: %s idle serving the Metis config alone.\n", x.Path, memText(x.Idle))
			}
		} else {
			w("\nxcaddy build %s (%s; %s): %s idle serving the Metis config alone; %s serving a one-route config.\n",
				x.Path, x.Version, x.Modules, memText(x.Idle), memText(x.Plain))
			if x.IdleCold.RSSMB > 0 {
				w("Read back from disk (its pages dropped from the page cache first, as after a reboot): %s with the Metis config; %s with the one-route config.\n",
					memText(x.IdleCold), memText(x.PlainCold))
			}
		}
	}
	if x := res.StockCaddy; x != nil {
		if x.Error != "" {
			w("\n-stock-caddy %s: %s\n", x.Path, x.Error)
		} else {
			w("\nStock Caddy %s (%s), same version, build flags and (external) linker: %s idle serving the same one-route config.\n",
				x.Path, x.Version, memText(x.Plain))
			if x.PlainCold.RSSMB > 0 {
				w("Read back from disk: %s.\n", memText(x.PlainCold))
			}
		}
	}
	w("\n")

	// Trace.
	w("## Trace events\n\n")
	if t := res.Trace; t != nil {
		if t.Error != "" {
			w("Trace check failed: %s\n\n", t.Error)
		} else if s := t.Store; s != nil {
			w("Calls sent to Metis (warm-up, smoke and profile runs included): %d → expected events 3 × %d = %d.\n\n", t.Calls, t.Calls, t.Expected)
			w("| store Enqueued | Written | Dropped | WriteErrors | Batches | SQL count(*) events | SQL calls rows | by type |\n|---|---|---|---|---|---|---|---|\n")
			var types []string
			for k, v := range s.EventsByTyp {
				types = append(types, fmt.Sprintf("%s %d", k, v))
			}
			sort.Strings(types)
			w("| %d | %d | %d | %d | %d | %d | %d | %s |\n\n", s.Stats.Enqueued, s.Stats.Written, s.Stats.Dropped,
				s.Stats.WriteErrors, s.Stats.Batches, s.EventsSQL, s.CallsSQL, strings.Join(types, ", "))
			if s.SyncError != "" {
				w("Sync: %s\n\n", s.SyncError)
			}
		}
	}

	// Profiles.
	if len(res.CPUProfiles) > 0 {
		w("## CPU profiles\n\n")
		w("Each profile is 8 s of the target's Caddy process under the scenario's load (run after the measured rounds). ")
		w("CPU µs per request = the component's share of the profile's samples × the process's CPU time per request sent during that run. ")
		w("A component counts every sample with a matching frame on its stack.\n\n")
		for _, sid := range []string{sS2, sS5c512} {
			var ps []*cpuProfile
			for _, p := range res.CPUProfiles {
				if p.Scenario == sid {
					ps = append(ps, p)
				}
			}
			if len(ps) == 0 {
				continue
			}
			unit := "request"
			if sid != sS2 {
				unit = "stream"
			}
			w("### %s: CPU µs per %s\n\n| Component |", sid, unit)
			for _, p := range ps {
				w(" %s |", p.Target)
			}
			w("\n|---|")
			for range ps {
				w("---|")
			}
			w("\n")
			rows := []struct {
				name string
				f    func(sh map[string]float64) float64
			}{
				{"process total", func(map[string]float64) float64 { return 1 }},
				{"handler ServeHTTP (metis_gateway / metis_bench_forward)", func(sh map[string]float64) float64 { return sh[cHandler] }},
				{"· of which the upstream round trip (http.Client or Transport)", func(sh map[string]float64) float64 { return sh[cClient] }},
				{"· of which the per-call log line (zap Info)", func(sh map[string]float64) float64 { return sh[cLog] }},
				{"· of which SSE parsing and usage trackers (reads excluded)", func(sh map[string]float64) float64 { return sh[cSSE] }},
				{"· of which http.ResponseController.Flush (write syscalls)", func(sh map[string]float64) float64 { return sh[cFlush] }},
				{"net/http + Caddy server outside the handler", func(sh map[string]float64) float64 { return sh[cServe] - sh[cHandler] }},
				{"trace writer goroutine (SQLite)", func(sh map[string]float64) float64 { return sh[cWriter] }},
				{"upstream connection read/write loops", func(sh map[string]float64) float64 { return sh[cConns] }},
				{"GC background workers", func(sh map[string]float64) float64 { return sh[cGC] }},
				{"rest (scheduler, syscalls outside the above, GC assists…)", func(sh map[string]float64) float64 {
					return 1 - sh[cServe] - sh[cWriter] - sh[cConns] - sh[cGC]
				}},
			}
			for _, r := range rows {
				w("| %s |", r.name)
				for _, p := range ps {
					per := 0.0
					if p.Run.Result.Sent > 0 {
						per = p.Run.CPUTarget / float64(p.Run.Result.Sent) * 1e6
					}
					w(" %.1f (%.0f%%) |", r.f(p.Shares)*per, r.f(p.Shares)*100)
				}
				w("\n")
			}
			w("| load during the profile |")
			for _, p := range ps {
				w(" %.0f %s/s |", p.Run.Result.RPS, unit)
			}
			w("\n\n")
		}
		for _, p := range res.CPUProfiles {
			if p.Target == tMetis {
				w("<details><summary>pprof top, %s under %s (%s)</summary>\n\n```\n%s```\n\n</details>\n\n", p.Target, p.Scenario, filepath.Base(p.File), trimPprof(p.Top))
			}
		}
	}
	if res.Micro != "" || res.MicroErr != "" {
		w("## Micro-benchmarks (go test -bench)\n\n")
		if res.MicroErr != "" {
			w("Error: %s\n\n", res.MicroErr)
		}
		w("```\n%s```\n\n", benchLines(res.Micro))
	}
	if len(res.Notes) > 0 {
		w("## Notes\n\n")
		for _, n := range res.Notes {
			w("* %s\n", n)
		}
		w("\n")
	}
	return b.String()
}

func (res *results) streams() int {
	for _, sc := range res.Scenarios {
		if sc.ID == sS5c512 {
			return sc.C
		}
	}
	return 0
}

func cpuCol(res *results, sc, t string) string {
	if t == tF0 {
		return "—"
	}
	return num(res.vals(sc, t, mCPUPerK))
}

func (res *results) total(sc, t string, f func(*runRec) int) int {
	n := 0
	for r := 1; r <= res.Rounds; r++ {
		if rec := res.run(r, sc, t); rec != nil {
			n += f(rec)
		}
	}
	return n
}

func (res *results) errors(sc, t string) string {
	e := res.total(sc, t, func(r *runRec) int { return r.Result.Errors })
	we := res.total(sc, t, func(r *runRec) int { return r.Result.WarmupErrors })
	if we > 0 {
		return fmt.Sprintf("%d (+%d warm-up)", e, we)
	}
	return fmt.Sprint(e)
}

// verdicts compares the medians with the targets.
func (res *results) verdicts() []verdict {
	var vs []verdict
	if res.has(sS2, tMetis) && res.has(sS2, tF3) {
		s := res.ratio(sS2, tMetis, tF3, mRPS).stat()
		vs = append(vs, verdict{"S2 throughput, c=64", "≥ 90% of F3", pct(res.ratio(sS2, tMetis, tF3, mRPS)), yes(s.Med >= 0.90)})
	}
	if res.has(sS1, tMetis) && res.has(sS1, tF3) {
		p50 := res.diff(sS1, tMetis, tF3, mP50)
		p99 := res.diff(sS1, tMetis, tF3, mP99)
		vs = append(vs, verdict{"S1 added p50 over F3, c=1", "≤ 40 µs", signedUS(p50) + " µs", yes(p50.stat().Med <= 40)})
		vs = append(vs, verdict{"S1 added p99 over F3, c=1", "≤ 120 µs", signedUS(p99) + " µs", yes(p99.stat().Med <= 120)})
		if res.has(sS1, tF2) {
			d := res.diff(sS1, tMetis, tF2, mP99)
			vs = append(vs, verdict{"S1 p99 never worse than F2", "Metis − F2 ≤ 0", signedUS(d) + " µs", yes(d.stat().Med <= 0)})
		}
	}
	if res.has(sS5c512, tMetis) && res.has(sS5c512, tF3) {
		d := res.diff(sS5c512, tMetis, tF3, mTTFT50)
		vs = append(vs, verdict{fmt.Sprintf("S5 TTFT p50 over F3, %d streams", res.streams()), "≤ 0.5 ms", signedMS(d) + " ms", yes(d.stat().Med <= 500)})
	}
	if res.has(sS5c512s, tMetis) && res.has(sS5c512s, tF3) {
		// Not a bar of its own: the same bar with the streams' starts spread.
		d := res.diff(sS5c512s, tMetis, tF3, mTTFT50)
		vs = append(vs, verdict{fmt.Sprintf("S5 TTFT p50 over F3, %d streams, starts spread (for comparison)", res.streams()), "≤ 0.5 ms", signedMS(d) + " ms", yes(d.stat().Med <= 500)})
	}
	if res.has(sS5c1, tMetis) && res.has(sS5c1, tF3) {
		d50 := res.diff(sS5c1, tMetis, tF3, mTTFT50)
		d99 := res.diff(sS5c1, tMetis, tF3, mTTFT99)
		vs = append(vs, verdict{"S5 TTFT over F3, c=1 (p50 / p99)", "≤ 0.5 / ≤ 1 ms", signedMS(d50) + " / " + signedMS(d99) + " ms",
			yes(d50.stat().Med <= 500 && d99.stat().Med <= 1000)})
	}
	if t := res.Trace; t != nil {
		if t.Store == nil {
			vs = append(vs, verdict{"trace events dropped at full load", "0 dropped, 3 per call", "check failed: " + t.Error, nil})
		} else {
			s := t.Store
			ok := s.Stats.Dropped == 0 && s.EventsSQL == int64(t.Expected) && s.Stats.Written == uint64(t.Expected)
			vs = append(vs, verdict{"trace events dropped at full load", "0 dropped, 3 per call",
				fmt.Sprintf("%d dropped; %d written, %d in SQL, %d expected", s.Stats.Dropped, s.Stats.Written, s.EventsSQL, t.Expected), yes(ok)})
		}
	}
	if m, ok := res.MemIdle["caddy-metis"]; ok {
		vs = append(vs, verdict{"memory idle (Metis Caddy process)", "≤ 60 MB RSS",
			fmt.Sprintf("%.1f MB RSS (%.1f anon + %.1f file-backed)", m.RSSMB, m.AnonMB, m.FileMB), yes(m.RSSMB <= 60)})
	}
	if x := res.XCaddy; x != nil && x.Idle.RSSMB > 0 {
		got := memText(x.Idle)
		if st := res.StockCaddy; st != nil && st.Plain.RSSMB > 0 {
			got += fmt.Sprintf("; stock Caddy linked the same way: %.1f MB", st.Plain.RSSMB)
		}
		vs = append(vs, verdict{"memory idle (xcaddy build " + x.Path + ")", "≤ 60 MB RSS", got, yes(x.Idle.RSSMB <= 60)})
		if x.IdleCold.RSSMB > 0 {
			got := memText(x.IdleCold)
			if st := res.StockCaddy; st != nil && st.PlainCold.RSSMB > 0 {
				got += fmt.Sprintf("; stock Caddy: %.1f MB", st.PlainCold.RSSMB)
			}
			vs = append(vs, verdict{"memory idle (xcaddy build " + x.Path + ", read back from disk)", "≤ 60 MB RSS", got, yes(x.IdleCold.RSSMB <= 60)})
		}
	}
	if res.has(sS1, tMetisXOAI) && res.has(sS1, tMetisOAI) {
		d := res.diff(sS1, tMetisXOAI, tMetisOAI, mP50)
		vs = append(vs, verdict{"cross-shape added p50 vs same-shape (4 KB, c=1)", "≤ 30 µs", signedUS(d) + " µs", yes(d.stat().Med <= 30)})
	}
	return vs
}

// trimPprof keeps the header and rows of the pprof tops.
func trimPprof(s string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, "File:") || strings.HasPrefix(l, "Build ID:") || strings.HasPrefix(l, "Type:") || strings.HasPrefix(l, "Time:") {
			continue
		}
		out = append(out, l)
	}
	return strings.Join(out, "\n")
}

// benchLines keeps the informative lines of go test -bench output.
func benchLines(s string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, "Benchmark") || strings.HasPrefix(l, "pkg:") || strings.HasPrefix(l, "cpu:") ||
			strings.HasPrefix(l, "ok") || strings.HasPrefix(l, "FAIL") || strings.HasPrefix(l, "---") || strings.Contains(l, "[no test files]") ||
			strings.HasPrefix(l, "#") || strings.Contains(l, ".go:") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n") + "\n"
}
