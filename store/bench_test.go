//go:build cgo

package store

import (
	"context"
	"fmt"
	"math/rand/v2"
	"syscall"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
)

// BenchmarkWriter measures the writer's throughput with rollups on: each
// iteration is one gateway call (route.decided, llm.call_completed,
// turn.completed) with a realistic spread of keys, models and sessions. It
// reports committed events per second, from the first Enqueue to the Sync
// that sees the last one on disk.
func BenchmarkWriter(b *testing.B) {
	s := openTest(b, Options{})
	r := rand.New(rand.NewPCG(1, 2))
	keys := make([]testKey, 200)
	for i := range keys {
		keys[i] = testKey{fmt.Sprint("gk_", i), fmt.Sprint("key-", i), fmt.Sprint("user-", i%50),
			fmt.Sprint("team-", i%7), fmt.Sprint("/w/", i%20)}
	}
	turns := make([][3]Event, 4096)
	for i := range turns {
		_, c := randomCall(r, time.Now(), keys)
		route := map[string]any{"turn_id": c.TurnID, "route_slot": "request", "model": c.Model}
		done := map[string]any{"turn_id": c.TurnID, "status": c.Status, "latency_ms": c.LatencyMS}
		turns[i] = [3]Event{{Type: TypeRouteDecided, Payload: route}, {Type: TypeCallCompleted, Payload: c},
			{Type: TypeTurnCompleted, Payload: done}}
	}
	b.ResetTimer()
	start, cpuStart := time.Now(), cpuTime()
	for i := range b.N {
		tr := turns[i%len(turns)]
		now := time.Now()
		for j := range tr {
			tr[j].Time = now
		}
		for !s.Enqueue(tr[:]...) {
			time.Sleep(50 * time.Microsecond) // queue full: let the writer catch up
		}
	}
	if err := s.Sync(context.Background()); err != nil {
		b.Fatal(err)
	}
	elapsed, cpu := time.Since(start), cpuTime()-cpuStart
	b.StopTimer()
	st := s.Stats()
	if st.Written != uint64(3*b.N) {
		b.Fatalf("written %d, want %d (stats %+v)", st.Written, 3*b.N, st)
	}
	b.ReportMetric(float64(3*b.N)/elapsed.Seconds(), "events/s")
	// Events per CPU-second of the whole process (caller and writer): less
	// sensitive than wall time to other load on a shared machine.
	b.ReportMetric(float64(3*b.N)/cpu.Seconds(), "events/cpu-s")
	b.ReportMetric(float64(st.Written)/float64(max(st.Batches, 1)), "events/batch")
}

// BenchmarkWriterGatewayShape measures the writer's CPU per call in the
// shape of the gateway benchmark (bench/): one key and one model, no
// session, payloads that encode themselves as the gateway's do, and calls
// arriving at about 10k/s rather than all at once. It reports CPU µs per
// call of the whole process (Enqueue included).
func BenchmarkWriterGatewayShape(b *testing.B) {
	s := openTest(b, Options{})
	turns := make([][3]Event, 4096)
	for i := range turns {
		c := &Call{TurnID: NewID().String(), GatewayKeyID: "gk_01KBENCH0000000000000000", KeyName: "bench",
			User: "dev", Team: "platform", InboundShape: "anthropic", Provider: "anthropic",
			RequestedModel: "claude-haiku-4-5", Model: "claude-haiku-4-5", Status: 200, Attempts: 1,
			InputTokens: 12, OutputTokens: 16, UsageSource: "provider", Priced: true, CostUSD: ptr(0.000092),
			LatencyMS: 1, UpstreamRequestID: "req_011CBENCH000000000000000"}
		route := rawJSON(`{"turn_id":"` + c.TurnID + `","route_slot":"request","model":"claude-haiku-4-5"}`)
		done := rawJSON(`{"turn_id":"` + c.TurnID + `","status":200,"latency_ms":1,"cost_usd":0.000092}`)
		turns[i] = [3]Event{{Type: TypeRouteDecided, Payload: route}, {Type: TypeCallCompleted, Payload: c},
			{Type: TypeTurnCompleted, Payload: done}}
	}
	b.ResetTimer()
	start, cpuStart := time.Now(), cpuTime()
	for i := range b.N {
		tr := turns[i%len(turns)]
		for j := range tr {
			tr[j].ID, tr[j].Time = ulid.ULID{}, time.Time{}
		}
		for !s.Enqueue(tr[:]...) {
			time.Sleep(50 * time.Microsecond)
		}
		if i%64 == 63 {
			time.Sleep(6400 * time.Microsecond) // ~10k calls/s
		}
	}
	if err := s.Sync(context.Background()); err != nil {
		b.Fatal(err)
	}
	elapsed, cpu := time.Since(start), cpuTime()-cpuStart
	b.StopTimer()
	if st := s.Stats(); st.Written != uint64(3*b.N) {
		b.Fatalf("written %d, want %d (stats %+v)", st.Written, 3*b.N, st)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "calls/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/call")
}

// rawJSON is a payload that is already JSON.
type rawJSON string

func (r rawJSON) AppendJSON(dst []byte) ([]byte, error) { return append(dst, r...), nil }

// cpuTime is the process's user+system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkEnqueue measures the caller's cost of Enqueue for one turn of
// three events. Another connection holds the write lock so the writer sleeps
// in SQLite's busy handler instead of competing for the CPU; the timer
// pauses every 20,000 turns to let it drain.
func BenchmarkEnqueue(b *testing.B) {
	s := openTest(b, Options{QueueSize: 1 << 17})
	raw := rawDB(b, s.Path())
	payload := map[string]any{"turn_id": "t"}
	call := &Call{TurnID: "t", Model: "m", Status: 200}
	lock, err := raw.Begin()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if i%20000 == 19999 {
			b.StopTimer()
			lock.Rollback() //nolint:errcheck
			if err := s.Sync(context.Background()); err != nil {
				b.Fatal(err)
			}
			if lock, err = raw.Begin(); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
		if !s.Enqueue(Event{Type: TypeRouteDecided, Payload: payload}, Event{Type: TypeCallCompleted, Payload: call},
			Event{Type: TypeTurnCompleted, Payload: payload}) {
			b.Fatal("queue full")
		}
	}
	b.StopTimer()
	lock.Rollback() //nolint:errcheck
}

// BenchmarkEnqueueParallel is Enqueue of single events from all Ps at once;
// drops (a full queue) are reported, not failed.
func BenchmarkEnqueueParallel(b *testing.B) {
	s := openTest(b, Options{QueueSize: 1 << 20})
	payload := map[string]any{"turn_id": "t"}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			s.Enqueue(Event{Type: TypeRouteDecided, Payload: payload})
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(s.Stats().Dropped)/float64(b.N), "dropped/op")
}

// BenchmarkAuthenticate is the per-request key check: SHA-256 of the token
// and a map lookup in the in-memory cache.
func BenchmarkAuthenticate(b *testing.B) {
	s := openTest(b, Options{})
	var token string
	for i := range 100 {
		_, tok, err := s.IssueKey(context.Background(), IssueParams{Name: fmt.Sprint("k", i)})
		if err != nil {
			b.Fatal(err)
		}
		token = tok
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpuStart := cpuTime()
	for range b.N {
		if _, err := s.Authenticate(token); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(cpuTime()-cpuStart)/float64(b.N), "cpu-ns/op")
}

// BenchmarkAuthenticateParallel is Authenticate from all Ps on one key.
func BenchmarkAuthenticateParallel(b *testing.B) {
	s := openTest(b, Options{})
	_, token, err := s.IssueKey(context.Background(), IssueParams{Name: "k"})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.Authenticate(token); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
