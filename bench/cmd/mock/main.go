// Command mock serves the benchmark's fake Anthropic/OpenAI upstream
// (package bench/mock) on loopback, one listener per -serve flag, and
// prints "PROFILE URL" for each on stdout.
//
//	go run ./bench/cmd/mock -serve M0@127.0.0.1:9100 -serve M-stream@127.0.0.1:9101
//	go run ./bench/cmd/mock -serve M20 -jitter 2ms
//
// The timing flags (-delay, -ttft, -chunks, -interval, -jitter, -fail-pct)
// override the named profile's values for every listener when given.
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/metisgateway/metis/bench/mock"
)

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func main() {
	var serve multiFlag
	flag.Var(&serve, "serve", "PROFILE[@ADDR]: serve a profile (M0, M20, M-stream) on ADDR (default 127.0.0.1:0); repeatable")
	delay := flag.Duration("delay", -1, "override: wait before a non-streamed answer")
	ttft := flag.Duration("ttft", -1, "override: wait before a stream's first content chunk")
	chunks := flag.Int("chunks", -1, "override: content chunks per stream")
	interval := flag.Duration("interval", -1, "override: time between content chunks")
	jitter := flag.Duration("jitter", 0, "uniform ± jitter on delay and TTFT")
	failPct := flag.Float64("fail-pct", 0, "percentage of requests answered 429")
	flag.Parse()
	if len(serve) == 0 {
		serve = multiFlag{"M0"}
	}
	var servers []*mock.Server
	for _, spec := range serve {
		name, addr, ok := strings.Cut(spec, "@")
		if !ok {
			addr = "127.0.0.1:0"
		}
		p, err := mock.ProfileByName(name)
		if err != nil {
			log.Fatalf("mock: %v", err)
		}
		override(&p.Delay, *delay)
		override(&p.TTFT, *ttft)
		override(&p.Interval, *interval)
		if *chunks >= 0 {
			p.Chunks = *chunks
		}
		p.Jitter, p.FailPct = *jitter, *failPct
		s, err := mock.Listen(addr, p)
		if err != nil {
			log.Fatalf("mock: %v", err)
		}
		servers = append(servers, s)
		fmt.Println(p.Name, s.URL)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
	for _, s := range servers {
		if err := s.Close(); err != nil {
			log.Print(err)
		}
	}
}

func override(dst *time.Duration, v time.Duration) {
	if v >= 0 {
		*dst = v
	}
}
