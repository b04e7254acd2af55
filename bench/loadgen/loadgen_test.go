package loadgen_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/metisgateway/metis/bench/loadgen"
	"github.com/metisgateway/metis/bench/mock"
	"github.com/metisgateway/metis/bench/workload"
)

func TestRank(t *testing.T) {
	v := []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	for q, want := range map[float64]float64{0.5: 5, 0.9: 9, 0.99: 10, 0.1: 1, 1: 10} {
		if got := loadgen.Rank(v, q); got != want {
			t.Errorf("Rank(%v) = %v, want %v", q, got, want)
		}
	}
}

func TestIsContentLine(t *testing.T) {
	for line, want := range map[string]bool{
		`data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"a"}}` + "\n": true,
		`data: {"choices":[{"index":0,"delta":{"content":"The "},"finish_reason":null}]}` + "\n":         true,
		`data: {"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}` + "\n":               false,
		`data: {"choices":[{"index":0,"delta":{"content":""}}]}` + "\n":                                  false,
		"event: content_block_delta\n": false,
		"data: [DONE]\n":               false,
	} {
		if got := loadgen.IsContentLine([]byte(line)); got != want {
			t.Errorf("IsContentLine(%q) = %v, want %v", line, got, want)
		}
	}
}

// TestRunAgainstMock drives the mock in both shapes, plain and streamed,
// and checks counts, usage-bearing answers and the stream schedule.
func TestRunAgainstMock(t *testing.T) {
	p := mock.Profile{Name: "test", TTFT: 5 * time.Millisecond, Chunks: 3, Interval: 2 * time.Millisecond}
	s, err := mock.Listen("127.0.0.1:0", p)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()

	res, err := loadgen.Run(ctx, loadgen.Config{URL: s.URL + "/v1/messages", Body: workload.AnthropicBody("claude-haiku-4-5", 16, false),
		Concurrency: 2, Count: 20})
	if err != nil {
		t.Fatal(err)
	}
	if res.OK != 20 || res.Errors != 0 || res.Sent != 20 || res.Latency.N != 20 || res.RPS <= 0 {
		t.Fatalf("plain run: %+v", res)
	}

	for _, tc := range []struct{ path, body string }{
		{"/v1/messages", `{"model":"m","max_tokens":8,"stream":true,"messages":[]}`},
		{"/v1/chat/completions", `{"model":"m","stream":true,"messages":[]}`},
	} {
		res, err = loadgen.Run(ctx, loadgen.Config{URL: s.URL + tc.path, Body: []byte(tc.body), Concurrency: 2, Count: 6,
			Stream: true, ExpectChunks: 3})
		if err != nil {
			t.Fatal(err)
		}
		if res.OK != 6 || res.Errors != 0 || res.TTFT == nil || res.Chunks[3] != 6 {
			t.Fatalf("%s stream: %+v %v", tc.path, res, res.ErrorSamples)
		}
		if res.TTFT.Min < 5000 || res.Latency.Min < 9000 || res.TTFT.P50 >= res.Latency.P50 {
			t.Errorf("%s: TTFT %+v, total %+v: want TTFT ≥ 5 ms, total ≥ 9 ms", tc.path, *res.TTFT, res.Latency)
		}
	}

	// max_tokens shortens the stream, and a wrong chunk count is an error.
	res, err = loadgen.Run(ctx, loadgen.Config{URL: s.URL + "/v1/messages", Concurrency: 1, Count: 2, Stream: true, ExpectChunks: 3,
		Body: []byte(`{"model":"m","max_tokens":2,"stream":true,"messages":[]}`)})
	if err != nil {
		t.Fatal(err)
	}
	if res.Errors != 2 || res.OK != 0 {
		t.Fatalf("short stream: %+v", res)
	}
}

// TestStaggerSpreadsFirstRequests: with Stagger, the workers' first
// requests arrive spread over it rather than together (the S5 waves).
func TestStaggerSpreadsFirstRequests(t *testing.T) {
	var mu sync.Mutex
	first := map[string]time.Time{} // by client connection
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		if _, ok := first[r.RemoteAddr]; !ok {
			first[r.RemoteAddr] = time.Now()
		}
		mu.Unlock()
		time.Sleep(50 * time.Millisecond)
		_, _ = io.WriteString(w, `{"usage":{}}`)
	}))
	defer srv.Close()
	for _, stagger := range []time.Duration{0, 400 * time.Millisecond} {
		clear(first)
		_, err := loadgen.Run(context.Background(), loadgen.Config{URL: srv.URL, Body: []byte(`{}`), Concurrency: 4,
			Warmup: stagger + 100*time.Millisecond, Duration: 100 * time.Millisecond, Stagger: stagger})
		if err != nil {
			t.Fatal(err)
		}
		// Go's transport may dial a fifth connection when a worker's next
		// request starts before its last one's connection is back in the
		// idle pool (a CI run): the workers' first requests are the
		// first four connections' first requests.
		mu.Lock()
		var ats []time.Time
		for _, at := range first {
			ats = append(ats, at)
		}
		mu.Unlock()
		slices.SortFunc(ats, func(a, b time.Time) int { return a.Compare(b) })
		if len(ats) < 4 {
			t.Fatalf("stagger %v: %d connections, want 4", stagger, len(ats))
		}
		spread := ats[3].Sub(ats[0]) // no stagger: the four start at once
		if stagger > 0 {
			spread = ats[len(ats)-1].Sub(ats[0]) // a fifth only comes later
		}
		// Worker 3 of 4 starts at 3/4 of the stagger.
		if stagger > 0 && spread < stagger/2 {
			t.Errorf("stagger %v: first requests within %v of each other", stagger, spread)
		}
		if stagger == 0 && spread > 40*time.Millisecond {
			t.Errorf("no stagger: first requests %v apart", spread)
		}
	}
}
