// Command analyticsgen fills a trace database with a synthetic month of
// gateway traffic and times every analytics endpoint on it:
//
//	go run ./bench/analyticsgen -db /tmp/metis-10m.db -calls 10000000
//	go run ./bench/analyticsgen -db /tmp/metis-10m.db -generate=false -iterations 200
//	go run ./bench/analyticsgen -db /tmp/metis-10m.db -generate=false -iterations 20 -cold
//	go run ./bench/analyticsgen -db /tmp/metis-10m.db -generate=false -iterations 1 -warmup -only by_
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"runtime/pprof"
	"time"

	analyticsbench "github.com/metisgateway/metis/bench/analytics"
	"github.com/metisgateway/metis/store"
)

func main() {
	cfg := analyticsbench.DefaultConfig()
	path := flag.String("db", "/tmp/metis-analytics-bench.db", "database file to create (or measure)")
	generate := flag.Bool("generate", true, "generate the database first (the file must not hold calls)")
	iterations := flag.Int("iterations", 100, "timed requests per endpoint scenario (0 skips timing)")
	flag.IntVar(&cfg.Calls, "calls", cfg.Calls, "llm.call_completed events to generate")
	flag.IntVar(&cfg.Keys, "keys", cfg.Keys, "gateway keys")
	flag.IntVar(&cfg.Users, "users", cfg.Users, "users")
	flag.IntVar(&cfg.Teams, "teams", cfg.Teams, "teams")
	flag.IntVar(&cfg.Workspaces, "workspaces", cfg.Workspaces, "workspaces")
	flag.IntVar(&cfg.Days, "days", cfg.Days, "days of history")
	flag.Int64Var(&cfg.Seed, "seed", cfg.Seed, "random seed")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the timing run to this file")
	only := flag.String("only", "", "time only the scenarios whose request contains this text")
	cold := flag.Bool("cold", false, "time cold requests: a new handler (empty day cache) for every request")
	warmUp := flag.Bool("warmup", false,
		"a new handler per scenario, warmed (Handler.Warm, timed) before its first request")
	flag.Parse()
	ctx := context.Background()
	if *generate {
		st, err := analyticsbench.Generate(ctx, *path, cfg, time.Now(), log.Printf)
		if err != nil {
			log.Fatal(err)
		}
		fi, _ := os.Stat(*path)
		fmt.Printf("generated %d calls, %d keys, %d sessions, %d rollup_hour rows, %d rollup_day rows, %s to %s, %.1f GB, in %s\n",
			st.Calls, st.Keys, st.Sessions, st.HourRows, st.DayRows, st.From.Format(time.RFC3339),
			st.To.Format(time.RFC3339), float64(fi.Size())/1e9, st.Elapsed.Round(time.Second))
	}
	if *iterations <= 0 {
		return
	}
	opened := time.Now()
	s, err := store.Open(*path, store.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close(ctx)
	fmt.Printf("opened (and migrated, if needed) in %s\n", time.Since(opened).Round(time.Millisecond))
	var lastUS int64
	if err := s.ReadDB().QueryRowContext(ctx, "SELECT MAX(ts_us) FROM calls").Scan(&lastUS); err != nil {
		log.Fatal(err)
	}
	now := time.UnixMicro(lastUS).Add(time.Second)
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			log.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			log.Fatal(err)
		}
		defer pprof.StopCPUProfile()
	}
	res, err := analyticsbench.Measure(ctx, s.ReadDB(), now, analyticsbench.MeasureOptions{
		Iterations: *iterations, Only: *only, Cold: *cold, WarmUp: *warmUp})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%-72s %8s %8s %8s %8s %8s %8s %8s %8s\n", "request (now = last call + 1s)", "first ms", "cpu 1st",
		"p50 ms", "p99 ms", "max ms", "cpu p50", "cpu p99", "bytes")
	for _, r := range res {
		fmt.Printf("%-72s %8.2f %8.2f %8.2f %8.2f %8.2f %8.2f %8.2f %8d\n", r.Target, ms(r.First), ms(r.FirstCPU),
			ms(r.P50), ms(r.P99), ms(r.Max), ms(r.CPU50), ms(r.CPU99), r.Bytes)
		if *warmUp {
			fmt.Printf("    warm-up before it: %.0f ms, %.0f ms CPU\n", ms(r.WarmUp), ms(r.WarmUpCPU))
		}
	}
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }
