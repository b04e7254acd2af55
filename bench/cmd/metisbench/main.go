// Command metisbench runs Metis's performance benchmarks (perf-notes §9):
// the gateway against floors measured in the same run, in interleaved,
// randomized rounds, and prints a markdown report.
//
//	go run ./bench/cmd/metisbench            # full run, ~8 min
//	go run ./bench/cmd/metisbench -quick     # ~1 min smoke run
//	make bench                               # full run; passes -caddy ./caddy
//
// Processes, all on 127.0.0.1: the mock (profiles M0 and M-stream, one
// listener each), three Caddy processes — F2 (reverse_proxy, defaults), F3
// (the own-forwarding floor module http.handlers.metis_bench_forward) and
// Metis (metis_gateway with a real gateway key and SQLite trace writing in a
// temporary directory) — and the load generator in this process. Every
// child is this binary re-executed in a role, so the Caddy processes are
// built from the same Caddy version and modules as the gateway and no
// xcaddy build is needed. The -caddy binary, when present, is used only to
// record its version and modules and to measure the idle memory of the
// shipped build.
//
// Scenarios: S1 added latency at c=1 (M0), S2 throughput at c=64 (M0), S5
// streaming TTFT at c=1 and c=512 (M-stream), memory idle and after load,
// trace events (none dropped, 3 per call), and optionally a CPU profile of
// the gateway under S2 load and the go test micro-benchmarks.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/metisgateway/metis/bench/loadgen"
	"github.com/metisgateway/metis/bench/mock"
)

// scenario is one load shape run against several targets.
type scenario struct {
	ID        string        `json:"id"`
	Title     string        `json:"title"`
	C         int           `json:"concurrency"`
	Warmup    time.Duration `json:"warmup"`
	Duration  time.Duration `json:"duration"`
	Stream    bool          `json:"stream"`
	MaxTokens int           `json:"max_tokens"`
	Targets   []string      `json:"targets"`
	// Stagger spreads the workers' first requests over this long (see
	// loadgen.Config.Stagger); zero starts them together.
	Stagger time.Duration `json:"stagger,omitempty"`
}

// Scenario IDs.
const (
	sS1     = "S1"
	sS2     = "S2"
	sS5c1   = "S5 c=1"
	sS5c512 = "S5 c=512"
	// sS5c512s is sS5c512 with the streams' starts spread over one
	// stream's length: the same load without the waves of 512 requests
	// arriving at once every 1.3 s that sS5c512's closed loop keeps up.
	sS5c512s = "S5 c=512 staggered"
)

// options are the command-line flags.
type options struct {
	quick      bool
	rounds     int
	seed       uint64
	out        string
	caddyBin   string
	stockBin   string
	profile    bool
	traceS1    string
	micro      bool
	microTime  string
	keep       bool
	streamsMax int
	only       string
	writer     writerTuning
	pin        bool
}

func main() {
	role := flag.String("child", "", "internal: run as a child process in this role (mock, caddy)")
	spec := flag.String("spec", "", "internal: the child's JSON spec")
	var o options
	flag.BoolVar(&o.quick, "quick", false, "short run (~1 min): fewer targets, 1-2 s windows, no profile, no micro-benchmarks")
	flag.IntVar(&o.rounds, "rounds", 3, "interleaved rounds (≥3 for a report)")
	flag.Uint64Var(&o.seed, "seed", 0, "seed of the randomized target order (0: from the clock)")
	flag.StringVar(&o.out, "out", "", "directory for results.json, report.md, profiles and logs (default: a new temp dir)")
	flag.StringVar(&o.caddyBin, "caddy", "", "an xcaddy-built Caddy with metis (e.g. ./caddy): recorded, and its idle memory measured; traffic always goes to the in-process builds")
	flag.StringVar(&o.stockBin, "stock-caddy", "", "a stock Caddy built with the same version, flags and linker (make stock-caddy): its idle RSS serving a one-route config is measured next to the -caddy binary's")
	flag.StringVar(&o.traceS1, "trace-s1", "", "experiment: after the rounds, write a 4 s runtime trace of the given target (Metis or F3) under S1 load to the output directory")
	flag.BoolVar(&o.profile, "profile", true, "take CPU profiles of Metis and F3 under S2 load (default on, off with -quick unless given)")
	flag.BoolVar(&o.micro, "micro", true, "run the go test micro-benchmarks of the hot path (default on, off with -quick unless given)")
	flag.StringVar(&o.microTime, "benchtime", "1s", "-benchtime of the micro-benchmarks")
	flag.BoolVar(&o.keep, "keep", false, "keep the trace database and Caddy logs")
	flag.IntVar(&o.streamsMax, "streams", 512, "concurrency of the S5 many-streams scenario")
	flag.StringVar(&o.only, "only", "", "comma-separated scenario IDs to run (S1, S2, \"S5 c=1\", \"S5 c=512\", \"S5 c=512 staggered\"); default all")
	flag.IntVar(&o.writer.Batch, "writer-batch", 0, "experiment: the Metis trace writer's batch_size (0: default)")
	flag.DurationVar(&o.writer.Flush, "writer-flush", 0, "experiment: the Metis trace writer's flush_interval (0: default)")
	flag.BoolVar(&o.pin, "pin", false, "pinned layout (perf-notes §9.1): "+pinnedLayout)
	reportFrom := flag.String("report", "", "re-render the report of a stored results.json (profiles are re-read when their files exist) and exit")
	flag.Parse()
	if *role != "" {
		if err := runChild(*role, *spec); err != nil {
			fmt.Fprintf(os.Stderr, "metisbench child %s: %v\n", *role, err)
			os.Exit(1)
		}
		return
	}
	if *reportFrom != "" {
		if err := rerender(*reportFrom); err != nil {
			logf("%v", err)
			os.Exit(1)
		}
		return
	}
	if o.quick { // no profile and no micro-benchmarks unless asked for
		set := map[string]bool{}
		flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
		o.profile = o.profile && set["profile"]
		o.micro = o.micro && set["micro"]
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		logf("%v", err)
		os.Exit(1)
	}
}

// logger writes progress to stderr. It is not the standard logger: Caddy,
// linked into this binary for the child processes, redirects that one.
var logger = log.New(os.Stderr, "metisbench ", log.Ltime)

func logf(format string, a ...any) { logger.Printf(format, a...) }

// scenarios returns the run plan for a mode.
func scenarios(o options) []*scenario {
	if o.quick {
		return []*scenario{
			{ID: sS1, Title: "added latency, c=1, M0", C: 1, Warmup: 200 * time.Millisecond, Duration: 800 * time.Millisecond, MaxTokens: 16,
				Targets: []string{tF0, tF3, tMetis, tMetisOAI, tMetisXOAI}},
			{ID: sS2, Title: "throughput, c=64, M0", C: 64, Warmup: 400 * time.Millisecond, Duration: time.Second, MaxTokens: 16,
				Targets: []string{tF0, tF3, tMetis}},
			{ID: sS5c1, Title: "stream TTFT, c=1, M-stream (4 chunks)", C: 1, Warmup: 100 * time.Millisecond, Duration: 1200 * time.Millisecond,
				Stream: true, MaxTokens: 4, Targets: []string{tF0, tF3, tMetis}},
			{ID: sS5c512, Title: fmt.Sprintf("stream TTFT, c=%d, M-stream (16 chunks)", o.streamsMax), C: o.streamsMax,
				Warmup: 500 * time.Millisecond, Duration: time.Second, Stream: true, MaxTokens: 16,
				Targets: []string{tF0, tF3, tMetis}},
			{ID: sS5c512s, Title: fmt.Sprintf("stream TTFT, c=%d, M-stream (16 chunks), starts spread over 340 ms", o.streamsMax), C: o.streamsMax,
				Warmup: 700 * time.Millisecond, Duration: time.Second, Stream: true, MaxTokens: 16, Stagger: 340 * time.Millisecond,
				Targets: []string{tF0, tF3, tMetis}},
		}
	}
	return []*scenario{
		{ID: sS1, Title: "added latency, c=1, M0", C: 1, Warmup: 500 * time.Millisecond, Duration: 4 * time.Second, MaxTokens: 16,
			Targets: []string{tF0, tF2, tF3, tMetis, tF3OAI, tMetisOAI, tMetisXOAI}},
		{ID: sS2, Title: "throughput, c=64, M0", C: 64, Warmup: time.Second, Duration: 5 * time.Second, MaxTokens: 16,
			Targets: []string{tF0, tF2, tF3, tMetis}},
		{ID: sS5c1, Title: "stream TTFT, c=1, M-stream (2 chunks × 20 ms)", C: 1, Warmup: 300 * time.Millisecond, Duration: 6 * time.Second,
			Stream: true, MaxTokens: 2, Targets: []string{tF0, tF2, tF3, tMetis}},
		{ID: sS5c512, Title: fmt.Sprintf("stream TTFT, c=%d, M-stream (64 chunks × 20 ms)", o.streamsMax), C: o.streamsMax,
			Warmup: 2 * time.Second, Duration: 6 * time.Second, Stream: true, MaxTokens: 64,
			Targets: []string{tF0, tF3, tMetis}},
		{ID: sS5c512s, Title: fmt.Sprintf("stream TTFT, c=%d, M-stream (64 chunks × 20 ms), starts spread over 1.3 s", o.streamsMax), C: o.streamsMax,
			Warmup: 3 * time.Second, Duration: 6 * time.Second, Stream: true, MaxTokens: 64, Stagger: 1300 * time.Millisecond,
			Targets: []string{tF0, tF3, tMetis}},
	}
}

// runRec is one load run of one target in one round.
type runRec struct {
	Round    int             `json:"round"`
	Scenario string          `json:"scenario"`
	Target   string          `json:"target"`
	Start    time.Time       `json:"start"`
	Result   *loadgen.Result `json:"result"`
	// CPU seconds spent during the run by the target's Caddy process, the
	// mock and the load generator.
	CPUTarget  float64 `json:"cpu_target_s"`
	CPUMock    float64 `json:"cpu_mock_s"`
	CPULoadgen float64 `json:"cpu_loadgen_s"`
}

// results is everything a run stores (results.json) and reports.
type results struct {
	Started     time.Time             `json:"started"`
	Finished    time.Time             `json:"finished"`
	Machine     machine               `json:"machine"`
	Quick       bool                  `json:"quick"`
	Seed        uint64                `json:"seed"`
	Rounds      int                   `json:"rounds"`
	Scenarios   []*scenario           `json:"scenarios"`
	Profiles    []mock.Profile        `json:"mock_profiles"`
	Runs        []*runRec             `json:"runs"`
	MemIdle     map[string]memInfo    `json:"mem_idle"`
	MemAfter    map[string]memInfo    `json:"mem_after"`
	ExeMB       float64               `json:"executable_mb"`
	XCaddy      *xcaddyInfo           `json:"xcaddy,omitempty"`
	StockCaddy  *xcaddyInfo           `json:"stock_caddy,omitempty"`
	Trace       *traceCheck           `json:"trace"`
	CPUProfiles []*cpuProfile         `json:"cpu_profiles,omitempty"`
	Micro       string                `json:"micro,omitempty"`
	MicroErr    string                `json:"micro_error,omitempty"`
	Notes       []string              `json:"notes,omitempty"`
	sentTo      map[*child]int        // requests sent per Caddy process
	byKey       map[[3]string]*runRec // round/scenario/target → run
}

// traceCheck compares the store's counters and a SQL count with the calls
// the load generator made.
type traceCheck struct {
	Calls    int          `json:"calls"` // requests sent to the Metis process
	Expected int          `json:"expected_events"`
	Store    *traceCounts `json:"store"`
	Error    string       `json:"error,omitempty"`
}

func run(ctx context.Context, o options) error {
	if o.rounds < 1 {
		return fmt.Errorf("-rounds must be ≥ 1")
	}
	if o.seed == 0 {
		o.seed = uint64(time.Now().UnixNano())
	}
	if o.out == "" {
		d, err := os.MkdirTemp("", "metisbench-")
		if err != nil {
			return fmt.Errorf("creating output dir: %w", err)
		}
		o.out = d
	}
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return fmt.Errorf("creating output dir: %w", err)
	}
	work, err := os.MkdirTemp("", "metisbench-work-")
	if err != nil {
		return fmt.Errorf("creating work dir: %w", err)
	}
	if !o.keep {
		defer os.RemoveAll(work)
	}
	res := &results{
		Started: time.Now(), Quick: o.quick, Seed: o.seed, Rounds: o.rounds,
		MemIdle: map[string]memInfo{}, MemAfter: map[string]memInfo{},
		sentTo: map[*child]int{}, byKey: map[[3]string]*runRec{},
	}
	startLoad := loadAvg()
	logf("output in %s, work dir %s, seed %d", o.out, work, o.seed)

	if o.pin { // the load generator runs in this process
		if n := runtime.NumCPU(); n < 2 {
			return fmt.Errorf("-pin needs 2 CPUs, this process may use %d", n)
		}
		if err := pinSelf(pinRigCPU); err != nil {
			return err
		}
	}
	e, err := startAll(ctx, work, o.writer, o.pin)
	defer e.stopAll()
	if err != nil {
		return err
	}
	res.Profiles = []mock.Profile{mock.M0, mock.MStream}
	res.Machine = describeMachine(e)
	res.Machine.LoadAvgStart = startLoad
	if o.pin {
		res.Machine.Pinned = pinnedLayout
	}
	if exe, err := os.Executable(); err == nil {
		if st, err := os.Stat(exe); err == nil {
			res.ExeMB = float64(st.Size()) / (1 << 20)
		}
	}

	// Idle memory: every process up, nothing sent yet.
	time.Sleep(2 * time.Second)
	for _, c := range []*child{e.f2, e.f3, e.metis, e.mock} {
		if m, err := readMem(c.pid()); err == nil {
			res.MemIdle[c.name] = m
		}
	}
	if o.caddyBin != "" {
		res.XCaddy = measureXCaddy(ctx, o.caddyBin, work, e, true)
	}
	if o.stockBin != "" {
		res.StockCaddy = measureXCaddy(ctx, o.stockBin, work, e, false)
	}

	plan := scenarios(o)
	if o.only != "" {
		keep := map[string]bool{}
		for _, id := range strings.Split(o.only, ",") {
			keep[strings.TrimSpace(id)] = true
		}
		var sel []*scenario
		for _, sc := range plan {
			if keep[sc.ID] {
				sel = append(sel, sc)
			}
		}
		if len(sel) == 0 {
			return fmt.Errorf("-only %q matches no scenario", o.only)
		}
		plan = sel
		res.Notes = append(res.Notes, "scenarios limited by -only "+o.only)
	}
	if o.writer != (writerTuning{}) {
		res.Notes = append(res.Notes, fmt.Sprintf("Metis trace writer tuned for an experiment: batch_size %d, flush_interval %s", o.writer.Batch, o.writer.Flush))
	}
	res.Scenarios = plan
	rng := rand.New(rand.NewPCG(o.seed, 0x6d65746973))
	for round := 1; round <= o.rounds; round++ {
		order := append([]*scenario(nil), plan...)
		rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		for _, sc := range order {
			ts := append([]string(nil), sc.Targets...)
			rng.Shuffle(len(ts), func(i, j int) { ts[i], ts[j] = ts[j], ts[i] })
			for _, id := range ts {
				rec, err := e.measure(ctx, sc, id, round, res)
				if err != nil {
					return err
				}
				res.add(rec)
				r := rec.Result
				line := fmt.Sprintf("round %d %-9s %-32s %7.0f req/s  p50 %8.0f µs  p99 %8.0f µs", round, sc.ID, id, r.RPS, r.Latency.P50, r.Latency.P99)
				if r.TTFT != nil {
					line += fmt.Sprintf("  TTFT p50 %6.2f ms p99 %6.2f ms", r.TTFT.P50/1000, r.TTFT.P99/1000)
				}
				if r.Errors > 0 || r.WarmupErrors > 0 {
					line += fmt.Sprintf("  ERRORS %d (+%d warm-up): %v", r.Errors, r.WarmupErrors, r.ErrorSamples)
				}
				logf("%s", line)
			}
		}
	}

	if o.traceS1 != "" {
		if err := e.runtimeTrace(ctx, plan, o.traceS1, o.out, res); err != nil {
			res.Notes = append(res.Notes, fmt.Sprintf("runtime trace of %s under S1 failed: %v", o.traceS1, err))
		}
	}
	if o.profile {
		for _, sid := range []string{sS2, sS5c512} {
			for _, id := range []string{tMetis, tF3} {
				p, err := e.profile(ctx, plan, sid, id, o.out, res)
				if err != nil {
					res.Notes = append(res.Notes, fmt.Sprintf("profile of %s under %s failed: %v", id, sid, err))
					continue
				}
				res.CPUProfiles = append(res.CPUProfiles, p)
			}
		}
	}

	// Let the writer and the GC settle, then read memory and the trace.
	time.Sleep(2 * time.Second)
	for _, c := range []*child{e.f2, e.f3, e.metis, e.mock} {
		if m, err := readMem(c.pid()); err == nil {
			res.MemAfter[c.name] = m
		}
	}
	res.Trace = e.checkTrace(ctx, res.sentTo[e.metis])

	if o.micro {
		logf("micro-benchmarks (go test -bench)")
		res.Micro, err = runMicro(ctx, o.microTime)
		if err != nil {
			res.MicroErr = err.Error()
		}
	}
	res.Finished = time.Now()
	res.Machine.LoadAvgEnd = loadAvg()

	raw, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding results: %w", err)
	}
	if err := os.WriteFile(filepath.Join(o.out, "results.json"), raw, 0o644); err != nil {
		return fmt.Errorf("writing results: %w", err)
	}
	report := renderReport(res)
	if err := os.WriteFile(filepath.Join(o.out, "report.md"), []byte(report), 0o644); err != nil {
		return fmt.Errorf("writing report: %w", err)
	}
	if o.keep {
		for _, c := range []*child{e.mock, e.f2, e.f3, e.metis} {
			_ = copyFile(c.log, filepath.Join(o.out, filepath.Base(c.log)))
		}
	}
	fmt.Print(report)
	logf("results in %s (results.json, report.md)", o.out)
	return nil
}

// add records a measured run.
func (res *results) add(rec *runRec) {
	res.Runs = append(res.Runs, rec)
	res.byKey[[3]string{fmt.Sprint(rec.Round), rec.Scenario, rec.Target}] = rec
}

// rerender prints the report of a stored results.json.
func rerender(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("reading results: %w", err)
	}
	res := &results{byKey: map[[3]string]*runRec{}}
	if err := json.Unmarshal(b, res); err != nil {
		return fmt.Errorf("decoding %s: %w", path, err)
	}
	runs := res.Runs
	res.Runs = nil
	for _, r := range runs {
		res.add(r)
	}
	ctx := context.Background()
	for _, p := range res.CPUProfiles {
		if _, err := os.Stat(p.File); err != nil {
			continue
		}
		for _, c := range components {
			if p.Shares[c.name], err = pprofShare(ctx, p.File, c.focus); err != nil {
				return err
			}
		}
	}
	fmt.Print(renderReport(res))
	return nil
}

// startAll starts the mock and the three Caddy processes, pinned when pin
// is set.
func startAll(ctx context.Context, work string, wt writerTuning, pin bool) (*env, error) {
	e := &env{}
	var rigCPU, gwCPU *int
	if pin {
		r, g := pinRigCPU, pinGatewayCPU
		rigCPU, gwCPU = &r, &g
	}
	// Keep Caddy's data and config dirs out of $HOME.
	cenv := []string{"XDG_DATA_HOME=" + work + "/xdg-data", "XDG_CONFIG_HOME=" + work + "/xdg-config", "HOME=" + work}
	var err error
	e.mock, err = startChild(ctx, "mock", "mock", childSpec{Profiles: []mock.Profile{mock.M0, mock.MStream}, Pin: rigCPU}, work, cenv)
	if err != nil {
		return e, err
	}
	if len(e.mock.ready.URLs) != 2 {
		return e, fmt.Errorf("mock announced %d URLs, want 2", len(e.mock.ready.URLs))
	}
	e.m0URL, e.streamURL = e.mock.ready.URLs[0], e.mock.ready.URLs[1]

	addr := func() (string, error) {
		p, err := freePort()
		return fmt.Sprintf("127.0.0.1:%d", p), err
	}
	var ports [8]string
	for i := range ports {
		if ports[i], err = addr(); err != nil {
			return e, err
		}
	}
	e.f2Srv = servers{M0: ports[0], Stream: ports[1]}
	e.f3Srv = servers{M0: ports[2], Stream: ports[3]}
	e.metisAddr, e.metisCtl, e.f3Ctl = ports[4], ports[5], ports[6]
	f2cfg, err := floorConfig(true, e.f2Srv, e.m0URL, e.streamURL)
	if err != nil {
		return e, err
	}
	if e.f2, err = startChild(ctx, "caddy-f2", "caddy", childSpec{Config: f2cfg, Control: ports[7], Pin: gwCPU}, work, cenv); err != nil {
		return e, err
	}
	f3cfg, err := floorConfig(false, e.f3Srv, e.m0URL, e.streamURL)
	if err != nil {
		return e, err
	}
	if e.f3, err = startChild(ctx, "caddy-f3", "caddy", childSpec{Config: f3cfg, Control: e.f3Ctl, Pin: gwCPU}, work, cenv); err != nil {
		return e, err
	}
	mcfg, err := metisConfig(e.metisAddr, filepath.Join(work, "metis.db"), e.m0URL, e.streamURL, wt)
	if err != nil {
		return e, err
	}
	if e.metis, err = startChild(ctx, "caddy-metis", "caddy", childSpec{Config: mcfg, Control: e.metisCtl, Metis: true, Pin: gwCPU}, work, cenv); err != nil {
		return e, err
	}
	e.token = e.metis.ready.Token
	e.caddyVer, e.sqliteVer = e.metis.ready.CaddyVersion, e.metis.ready.SQLiteVersion
	for _, a := range []string{e.f2Srv.M0, e.f2Srv.Stream, e.f3Srv.M0, e.f3Srv.Stream, e.metisAddr} {
		if err := waitListening(a, 10*time.Second); err != nil {
			return e, err
		}
	}
	// One request per target as a smoke check before measuring anything.
	for _, sc := range []*scenario{{MaxTokens: 4}, {MaxTokens: 4, Stream: true}} {
		for _, id := range []string{tF0, tF2, tF3, tMetis} {
			t := e.target(id, sc)
			r, err := loadgen.Run(ctx, loadgen.Config{URL: t.url, Header: t.header, Body: t.body, Count: 1, Stream: sc.Stream, ExpectChunks: expectChunks(sc)})
			if err != nil {
				return e, err
			}
			if r.Errors > 0 {
				return e, fmt.Errorf("smoke request to %s (stream %v) failed: %v", id, sc.Stream, r.ErrorSamples)
			}
			if t.proc == e.metis {
				e.smokeCalls += r.Sent // the trace check counts every call
			}
		}
	}
	return e, nil
}

func expectChunks(sc *scenario) int {
	if !sc.Stream {
		return 0
	}
	return min(sc.MaxTokens, mock.MStream.Chunks)
}

func (e *env) stopAll() {
	for _, c := range []*child{e.metis, e.f3, e.f2, e.mock} {
		c.stop()
	}
}

// measure runs one scenario against one target.
func (e *env) measure(ctx context.Context, sc *scenario, id string, round int, res *results) (*runRec, error) {
	t := e.target(id, sc)
	cfg := loadgen.Config{
		URL: t.url, Header: t.header, Body: t.body, Concurrency: sc.C,
		Warmup: sc.Warmup, Duration: sc.Duration, Stream: sc.Stream, ExpectChunks: expectChunks(sc),
		Stagger: sc.Stagger, Timeout: 30 * time.Second,
	}
	rec := &runRec{Round: round, Scenario: sc.ID, Target: id, Start: time.Now()}
	var cpu0 float64
	if t.proc != nil {
		cpu0 = cpuSeconds(t.proc.pid())
	}
	m0, l0 := cpuSeconds(e.mock.pid()), selfCPU()
	r, err := loadgen.Run(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", sc.ID, id, err)
	}
	if t.proc != nil {
		rec.CPUTarget = cpuSeconds(t.proc.pid()) - cpu0
		res.sentTo[t.proc] += r.Sent
	}
	rec.CPUMock, rec.CPULoadgen = cpuSeconds(e.mock.pid())-m0, selfCPU()-l0
	rec.Result = r
	// Let the previous target's connections close and its writer drain
	// before the next run starts.
	time.Sleep(150 * time.Millisecond)
	return rec, nil
}

// checkTrace syncs the Metis store and compares its counts with the calls.
func (e *env) checkTrace(ctx context.Context, sent int) *traceCheck {
	calls := sent + e.smokeCalls
	tc := &traceCheck{Calls: calls, Expected: 3 * calls}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+e.metisCtl+"/stats", nil)
	if err != nil {
		tc.Error = err.Error()
		return tc
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tc.Error = err.Error()
		return tc
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		tc.Error = fmt.Sprintf("stats: %d %s", resp.StatusCode, b)
		return tc
	}
	var st traceCounts
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		tc.Error = err.Error()
		return tc
	}
	tc.Store = &st
	return tc
}

// runtimeTrace runs S1's load against target (tMetis or tF3) while taking
// a 4 s runtime/trace of its process, written to out as
// <target>-s1.trace (for go tool trace -pprof=sched and the like).
func (e *env) runtimeTrace(ctx context.Context, plan []*scenario, target, out string, res *results) error {
	if strings.EqualFold(target, tF3) || strings.EqualFold(target, "F3") {
		target = tF3
	} else {
		target = tMetis
	}
	file := filepath.Join(out, strings.ToLower(strings.Fields(target)[0])+"-s1.trace")
	logf("tracing %s under %s load to %s", target, sS1, file)
	_, err := e.underLoad(ctx, plan, sS1, target, "trace", 4, file, res)
	return err
}

// underLoad runs scenario sid's load against target id for secs plus 2
// seconds and, a second after its warm-up, fetches secs of the target
// process's /debug/pprof/<endpoint> into file.
func (e *env) underLoad(ctx context.Context, plan []*scenario, sid, id, endpoint string, secs int, file string, res *results) (*runRec, error) {
	var base *scenario
	for _, sc := range plan {
		if sc.ID == sid {
			base = sc
		}
	}
	if base == nil {
		return nil, errSkipped
	}
	ctl := e.metisCtl
	if id == tF3 {
		ctl = e.f3Ctl
	}
	sc := *base
	sc.Duration = time.Duration(secs+2) * time.Second
	errc := make(chan error, 1)
	go func() {
		time.Sleep(sc.Warmup + time.Second)
		errc <- fetch(ctx, fmt.Sprintf("http://%s/debug/pprof/%s?seconds=%d", ctl, endpoint, secs), file)
	}()
	rec, err := e.measure(ctx, &sc, id, 0, res)
	if err != nil {
		return nil, err
	}
	if err := <-errc; err != nil {
		return nil, err
	}
	return rec, nil
}

// cpuProfile is a CPU profile of one target's process under one
// scenario's load, with its pprof top and the share of some components.
type cpuProfile struct {
	Scenario string             `json:"scenario"`
	Target   string             `json:"target"`
	File     string             `json:"file"`
	Run      *runRec            `json:"run"`
	Top      string             `json:"top"`
	Shares   map[string]float64 `json:"shares"` // component → fraction of the process's samples
}

// profile runs a scenario's load against a target while taking a CPU
// profile of its process.
func (e *env) profile(ctx context.Context, plan []*scenario, sid, id, out string, res *results) (*cpuProfile, error) {
	const secs = 8
	name := strings.ToLower(strings.Fields(id)[0]) + "-" + strings.NewReplacer(" ", "", "=", "").Replace(strings.ToLower(sid))
	file := filepath.Join(out, name+".cpu.pprof")
	logf("profiling %s under %s load (%ds)", id, sid, secs)
	rec, err := e.underLoad(ctx, plan, sid, id, "profile", secs, file, res)
	if err != nil {
		return nil, err
	}
	p := &cpuProfile{Scenario: sid, Target: id, File: file, Run: rec, Shares: map[string]float64{}}
	if p.Top, err = pprofTop(ctx, file); err != nil {
		return p, err
	}
	for _, c := range components {
		if p.Shares[c.name], err = pprofShare(ctx, file, c.focus); err != nil {
			return p, err
		}
	}
	return p, nil
}
