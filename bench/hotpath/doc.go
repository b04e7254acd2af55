// Package hotpath holds go test micro-benchmarks of the gateway's per-call
// and per-event work that the packages themselves don't benchmark: the
// same-shape SSE relay per event (reader, usage tracker, write), the
// cross-shape translation of a 4 KB request, its response and its stream
// events, and the pricing calls made per call. They run only with -bench
// (make bench); `go test ./...` runs the package's one quick self-check.
//
// Other hot-path benchmarks live next to their code: store
// (BenchmarkAuthenticate, BenchmarkEnqueue, BenchmarkWriter), pricing
// (BenchmarkCost), adapters/sse (BenchmarkReader, BenchmarkWrite) and
// adapters/anthropic, adapters/openai (BenchmarkUsage*).
package hotpath
