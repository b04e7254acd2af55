package main

import (
	"strings"
	"testing"

	"github.com/metisgateway/metis/bench/loadgen"
)

func TestStat(t *testing.T) {
	s := series{3, 1, 2}.stat()
	if s.Med != 2 || s.Min != 1 || s.Max != 3 || s.N != 3 {
		t.Fatalf("%+v", s)
	}
	if m := (series{1, 2, 3, 10}).stat().Med; m != 2.5 {
		t.Fatalf("even median %v", m)
	}
	if got := fmtStat(series{100, 90, 130}.stat(), 1, 0, ""); got != "100 [90–130] ⚠" {
		t.Fatalf("fmtStat = %q", got)
	}
}

// TestReportPairsRounds renders a synthetic run: added latency is paired
// per round and the verdicts follow the medians.
func TestReportPairsRounds(t *testing.T) {
	res := &results{Rounds: 3, byKey: map[[3]string]*runRec{}, MemIdle: map[string]memInfo{"caddy-metis": {RSSMB: 50, AnonMB: 10, FileMB: 40}},
		Scenarios: []*scenario{{ID: sS1, C: 1}, {ID: sS2, C: 64}}}
	for r := 1; r <= 3; r++ {
		shift := float64(r * 100) // a noisy machine: every round slower
		for tgt, p50 := range map[string]float64{tF0: 100, tF3: 300, tMetis: 330} {
			res.add(&runRec{Round: r, Scenario: sS1, Target: tgt, Result: &loadgen.Result{Latency: loadgen.Percentiles{P50: p50 + shift, P99: 2 * (p50 + shift)}}})
		}
		for tgt, rps := range map[string]float64{tF0: 20000, tF3: 8000, tMetis: 7600} {
			res.add(&runRec{Round: r, Scenario: sS2, Target: tgt, Result: &loadgen.Result{RPS: rps / float64(r)}})
		}
	}
	out := renderReport(res)
	for _, want := range []string{
		"| S2 throughput, c=64 | ≥ 90% of F3 | 95% [95–95] | **met** |",
		"| S1 added p50 over F3, c=1 | ≤ 40 µs | +30 [+30…+30] µs | **met** |",
		"| S1 added p99 over F3, c=1 | ≤ 120 µs | +60 [+60…+60] µs | **met** |",
		"| memory idle (Metis Caddy process) | ≤ 60 MB RSS | 50.0 MB RSS (10.0 anon + 40.0 file-backed) | **met** |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if t.Failed() {
		t.Log(out)
	}
}
