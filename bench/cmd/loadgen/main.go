// Command loadgen runs one closed-loop load (package bench/loadgen) against
// a URL and prints the result as JSON.
//
//	go run ./bench/cmd/loadgen -url http://127.0.0.1:9100/v1/messages \
//		-body '{"model":"claude-haiku-4-5","max_tokens":16,"messages":[{"role":"user","content":"hi"}]}' \
//		-c 64 -warmup 1s -d 10s
//	go run ./bench/cmd/loadgen -url … -body @req.json -H 'x-api-key: gw_…' -stream -c 256
package main

import (
	"context"
	"encoding/json"
	"flag"
	"log"
	"net/http"
	"os"
	"os/signal"
	"strings"

	"github.com/metisgateway/metis/bench/loadgen"
)

type headers []string

func (h *headers) String() string     { return strings.Join(*h, "; ") }
func (h *headers) Set(v string) error { *h = append(*h, v); return nil }

func main() {
	var hs headers
	url := flag.String("url", "", "target URL (POST)")
	body := flag.String("body", "", "request body, or @FILE")
	flag.Var(&hs, "H", "header 'Name: value'; repeatable")
	c := flag.Int("c", 1, "concurrency (closed-loop workers)")
	warmup := flag.Duration("warmup", 0, "unmeasured warm-up period")
	d := flag.Duration("d", 0, "measured period")
	n := flag.Int("n", 0, "measured request count (instead of -d)")
	stream := flag.Bool("stream", false, "read answers as SSE and measure TTFT")
	chunks := flag.Int("expect-chunks", 0, "content events every stream must have (0: any)")
	flag.Parse()
	if *url == "" || (*d <= 0 && *n <= 0) {
		flag.Usage()
		os.Exit(2)
	}
	b := []byte(*body)
	if strings.HasPrefix(*body, "@") {
		var err error
		if b, err = os.ReadFile((*body)[1:]); err != nil {
			log.Fatalf("loadgen: %v", err)
		}
	}
	h := http.Header{}
	for _, kv := range hs {
		k, v, ok := strings.Cut(kv, ":")
		if !ok {
			log.Fatalf("loadgen: bad header %q: want 'Name: value'", kv)
		}
		h.Add(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	res, err := loadgen.Run(ctx, loadgen.Config{
		URL: *url, Body: b, Header: h, Concurrency: *c, Warmup: *warmup, Duration: *d, Count: *n,
		Stream: *stream, ExpectChunks: *chunks,
	})
	if err != nil {
		log.Fatalf("loadgen: %v", err)
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(res); err != nil {
		log.Fatalf("loadgen: %v", err)
	}
}
