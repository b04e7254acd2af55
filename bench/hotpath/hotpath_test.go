package hotpath

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/metisgateway/metis/adapters/anthropic"
	"github.com/metisgateway/metis/adapters/openai"
	"github.com/metisgateway/metis/adapters/sse"
	"github.com/metisgateway/metis/adapters/translate"
	"github.com/metisgateway/metis/bench/mock"
	"github.com/metisgateway/metis/bench/workload"
	"github.com/metisgateway/metis/ir"
	"github.com/metisgateway/metis/pricing"
)

const model = "claude-haiku-4-5"

// upstream returns the mock's answer to a request body: the same bytes the
// load runs relay.
func upstream(tb testing.TB, path string, body []byte, chunks int) []byte {
	tb.Helper()
	h := mock.NewHandler(mock.Profile{Name: "bench", Chunks: chunks})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body)))
	if rec.Code != http.StatusOK {
		tb.Fatalf("mock answered %d: %s", rec.Code, rec.Body.Bytes())
	}
	return rec.Body.Bytes()
}

func anthropicStream(tb testing.TB) []byte {
	return upstream(tb, "/v1/messages", workload.AnthropicBody(model, 64, true), 64)
}

func openAIStream(tb testing.TB) []byte {
	body := []byte(`{"model":"gpt-5-mini","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}`)
	return upstream(tb, "/v1/chat/completions", body, 64)
}

// relayAnthropic is the same-shape relay loop over one stream: read an
// event, track usage, write its raw bytes. It returns the event count.
func relayAnthropic(stream []byte, w io.Writer) (int, ir.Usage, error) {
	rd := sse.NewReader(bytes.NewReader(stream))
	var tr anthropic.StreamTracker
	n := 0
	for {
		ev, err := rd.Next()
		if errors.Is(err, io.EOF) {
			return n, tr.Usage(), nil
		}
		if err != nil {
			return n, ir.Usage{}, err
		}
		tr.Observe(ev.Name, ev.Data)
		if _, err := w.Write(ev.Raw); err != nil {
			return n, ir.Usage{}, err
		}
		n++
	}
}

// TestRelayReadsMockUsage keeps the benchmarks honest: the relay loop sees
// every event and the usage the mock sent.
func TestRelayReadsMockUsage(t *testing.T) {
	var out bytes.Buffer
	stream := anthropicStream(t)
	n, u, err := relayAnthropic(stream, &out)
	if err != nil {
		t.Fatal(err)
	}
	if n != 64+5 || u.OutputTokens != 64 || u.InputTokens == 0 || !bytes.Equal(out.Bytes(), stream) {
		t.Fatalf("events %d, usage %+v, relayed %d of %d bytes", n, u, out.Len(), len(stream))
	}
}

// BenchmarkSSERelayEvent is the same-shape stream relay per event
// (Anthropic): sse.Reader.Next, StreamTracker.Observe and the write of the
// raw bytes (to io.Discard: the flush syscall is not included).
func BenchmarkSSERelayEvent(b *testing.B) {
	stream := anthropicStream(b)
	events := 0
	b.SetBytes(int64(len(stream)))
	b.ReportAllocs()
	for b.Loop() {
		n, _, err := relayAnthropic(stream, io.Discard)
		if err != nil {
			b.Fatal(err)
		}
		events += n
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(events), "ns/event")
}

// BenchmarkSSERelayEventOpenAI is the same relay for an OpenAI stream,
// including the include_usage chunk check.
func BenchmarkSSERelayEventOpenAI(b *testing.B) {
	stream := openAIStream(b)
	events := 0
	b.SetBytes(int64(len(stream)))
	b.ReportAllocs()
	for b.Loop() {
		rd := sse.NewReader(bytes.NewReader(stream))
		var tr openai.StreamTracker
		for {
			ev, err := rd.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			if !tr.Observe(ev.Data) {
				_, _ = io.Discard.Write(ev.Raw)
			}
			events++
		}
		if tr.Usage().OutputTokens != 64 {
			b.Fatalf("usage %+v", tr.Usage())
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(events), "ns/event")
}

// BenchmarkTranslateRequest4K is the cross-shape request path: a 4 KB
// OpenAI Chat Completions body to an Anthropic Messages body.
func BenchmarkTranslateRequest4K(b *testing.B) {
	body := workload.OpenAI4KBody(model)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := translate.OpenAIToAnthropicRequest(body, model, translate.Options{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTranslateResponse is the cross-shape answer: the mock's
// Anthropic message to an OpenAI chat.completion.
func BenchmarkTranslateResponse(b *testing.B) {
	body := workload.OpenAI4KBody(model)
	_, st, err := translate.OpenAIToAnthropicRequest(body, model, translate.Options{})
	if err != nil {
		b.Fatal(err)
	}
	resp := upstream(b, "/v1/messages", workload.AnthropicBody(model, 16, false), 16)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := st.AnthropicResponseToOpenAI(resp); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTranslateStreamEvent is the cross-shape stream per event: an
// Anthropic event read and re-encoded as OpenAI chunks.
func BenchmarkTranslateStreamEvent(b *testing.B) {
	stream := anthropicStream(b)
	_, st, err := translate.OpenAIToAnthropicRequest(workload.OpenAI4KBody(model), model, translate.Options{})
	if err != nil {
		b.Fatal(err)
	}
	events := 0
	b.ReportAllocs()
	for b.Loop() {
		tr := st.NewAnthropicToOpenAIStream()
		rd := sse.NewReader(bytes.NewReader(stream))
		for {
			ev, err := rd.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			out, err := tr.Event(ev.Name, ev.Data)
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Discard.Write(out)
			events++
		}
		_, _ = io.Discard.Write(tr.Finish())
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(events), "ns/event")
}

// BenchmarkCallPricing is what the gateway prices per call: the cost of
// the model the provider reported, then its cache savings.
func BenchmarkCallPricing(b *testing.B) {
	cat := pricing.Default()
	u := ir.Usage{InputTokens: 43, OutputTokens: 16, ServiceTier: "standard"}
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := cat.Cost(model, u); !ok {
			b.Fatal(model + " is not priced")
		}
		_ = cat.CacheSavings(model, u)
	}
}
