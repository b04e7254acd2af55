// Command fakeupstream serves the fake Anthropic and OpenAI provider of
// internal/fakeupstream on a loopback address, for manual runs and browser
// tests. It prints the base URL on stdout, logs one line per request on
// stderr, and is scripted over HTTP through /_fake/enqueue, /_fake/requests
// and /_fake/reset.
//
//	go run ./internal/cmd/fakeupstream -addr 127.0.0.1:9999
//	go run ./internal/cmd/fakeupstream -claude-bash 'echo metis-ok' -claude-final 'metis-ok seen'
package main

import (
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"github.com/metisgateway/metis/internal/fakeupstream"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address (host:port; port 0 picks a free one)")
	quiet := flag.Bool("q", false, "do not log requests")
	bash := flag.String("claude-bash", "", "script a Claude Code Bash round trip running this command (see fakeupstream.ClaudeCodeBashRoundTrip)")
	final := flag.String("claude-final", "Done.", "the final text of the -claude-bash round trip")
	flag.Parse()

	s, err := fakeupstream.Listen(*addr)
	if err != nil {
		log.Fatalf("fakeupstream: %v", err)
	}
	if !*quiet {
		s.OnRequest = func(r *fakeupstream.Recorded) {
			log.Printf("%s %s%s key=%q bytes=%d", r.Method, r.Path, query(r.RawQuery), r.APIKey(), len(r.Body))
		}
	}
	if *bash != "" {
		s.Enqueue("/v1/messages", fakeupstream.ClaudeCodeBashRoundTrip(*bash, *final)...)
	}
	fmt.Println(s.URL)

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
	s.Close()
}

func query(q string) string {
	if q == "" {
		return ""
	}
	return "?" + q
}

var _ http.Handler = (*fakeupstream.Server)(nil)
