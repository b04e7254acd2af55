package translate

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/metisgateway/metis/adapters/sse"
	"github.com/metisgateway/metis/internal/vcr"
)

// request4KB builds a realistic ~4 KB agent request: a system prompt, two
// tools, a tool-use round trip and a follow-up question.
func anthropicRequest4KB() []byte {
	words := strings.Repeat("The quick brown fox jumps over the lazy dog. ", 40)
	body := fmt.Sprintf(`{"model":"claude-sonnet-4-5","max_tokens":4096,"stream":true,
		"system":[{"type":"text","text":"You are a careful coding assistant. %s","cache_control":{"type":"ephemeral"}}],
		"tools":[{"name":"read_file","description":"Read a file from the workspace","input_schema":{"type":"object","properties":{"path":{"type":"string","description":"Path relative to the root"}},"required":["path"]}},
			{"name":"run_command","description":"Run a shell command","input_schema":{"type":"object","properties":{"command":{"type":"string"},"timeout":{"type":"integer"}},"required":["command"]}}],
		"messages":[{"role":"user","content":[{"type":"text","text":"Please look at main.go and explain it. %s"}]},
			{"role":"assistant","content":[{"type":"text","text":"I'll read the file."},{"type":"tool_use","id":"toolu_01A","name":"read_file","input":{"path":"main.go"}}]},
			{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_01A","content":"package main\n\nfunc main() {\n\tprintln(\"hello\")\n}\n %s"}]},
			{"role":"assistant","content":[{"type":"text","text":"It prints hello."}]},
			{"role":"user","content":"Thanks. Now run the tests, please."}]}`, words[:1300], words[:900], words[:700])
	return []byte(body)
}

func openAIRequest4KB() []byte {
	words := strings.Repeat("The quick brown fox jumps over the lazy dog. ", 40)
	body := fmt.Sprintf(`{"model":"gpt-4o","stream":true,"stream_options":{"include_usage":true},"max_completion_tokens":4096,"temperature":0.2,
		"tools":[{"type":"function","function":{"name":"read_file","description":"Read a file from the workspace","parameters":{"type":"object","properties":{"path":{"type":"string","description":"Path relative to the root"}},"required":["path"]}}},
			{"type":"function","function":{"name":"run_command","description":"Run a shell command","parameters":{"type":"object","properties":{"command":{"type":"string"},"timeout":{"type":"integer"}},"required":["command"]}}}],
		"messages":[{"role":"system","content":"You are a careful coding assistant. %s"},
			{"role":"user","content":"Please look at main.go and explain it. %s"},
			{"role":"assistant","content":"I'll read the file.","tool_calls":[{"id":"call_01A","type":"function","function":{"name":"read_file","arguments":"{\"path\":\"main.go\"}"}}]},
			{"role":"tool","tool_call_id":"call_01A","content":"package main\n\nfunc main() {\n\tprintln(\"hello\")\n}\n %s"},
			{"role":"assistant","content":"It prints hello."},
			{"role":"user","content":"Thanks. Now run the tests, please."}]}`, words[:1300], words[:900], words[:700])
	return []byte(body)
}

// benchLatency runs fn b.N times and reports the median latency as p50-ns
// next to Go's mean ns/op.
func benchLatency(b *testing.B, size int, fn func()) {
	b.ReportAllocs()
	b.SetBytes(int64(size))
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		fn()
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds()), "p50-ns")
}

// BenchmarkPassthrough4KB is the floor: what same-shape forwarding does to
// a body (a copy).
func BenchmarkPassthrough4KB(b *testing.B) {
	body := anthropicRequest4KB()
	var sink []byte
	benchLatency(b, len(body), func() { sink = bytes.Clone(body) })
	_ = sink
}

func BenchmarkAnthropicToOpenAIRequest4KB(b *testing.B) {
	body := anthropicRequest4KB()
	if !json.Valid(body) || len(body) < 3800 || len(body) > 4400 {
		b.Fatalf("fixture body is %d bytes (valid=%v)", len(body), json.Valid(body))
	}
	benchLatency(b, len(body), func() {
		if _, _, err := AnthropicToOpenAIRequest(body, "gpt-4o", Options{}); err != nil {
			b.Fatal(err)
		}
	})
}

func BenchmarkOpenAIToAnthropicRequest4KB(b *testing.B) {
	body := openAIRequest4KB()
	if !json.Valid(body) || len(body) < 3800 || len(body) > 4400 {
		b.Fatalf("fixture body is %d bytes (valid=%v)", len(body), json.Valid(body))
	}
	benchLatency(b, len(body), func() {
		if _, _, err := OpenAIToAnthropicRequest(body, "claude-sonnet-4-5", Options{}); err != nil {
			b.Fatal(err)
		}
	})
}

func BenchmarkAnthropicResponseToOpenAI(b *testing.B) {
	body := []byte(vcr.MustLoad("anthropic_nonstream_tool_use_two_turns.vcr.yaml")[0].ResponseBody)
	st := newState("gpt-4o")
	benchLatency(b, len(body), func() {
		if _, err := st.AnthropicResponseToOpenAI(body); err != nil {
			b.Fatal(err)
		}
	})
}

func BenchmarkOpenAIResponseToAnthropic(b *testing.B) {
	body := []byte(vcr.MustLoad("openai_nonstream_tool_call_reasoning_usage.vcr.yaml")[0].ResponseBody)
	st := newState("claude-sonnet-4-5")
	benchLatency(b, len(body), func() {
		if _, err := st.OpenAIResponseToAnthropic(body); err != nil {
			b.Fatal(err)
		}
	})
}

type rawEvent struct {
	name string
	data []byte
}

func fixtureEvents(b *testing.B, name string) []rawEvent {
	r := sse.NewReader(strings.NewReader(vcr.MustLoad(name)[0].ResponseBody))
	var evs []rawEvent
	for {
		ev, err := r.Next()
		if err != nil {
			return evs
		}
		if !ev.Comment {
			evs = append(evs, rawEvent{ev.Name, bytes.Clone(ev.Data)})
		}
	}
}

// Stream benchmarks report the cost per upstream event.
func BenchmarkAnthropicToOpenAIStreamEvent(b *testing.B) {
	evs := fixtureEvents(b, "anthropic_stream_text_then_tool_use.vcr.yaml")
	st := &State{RequestedModel: "gpt-4o", IncludeUsage: true}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; {
		tr := st.NewAnthropicToOpenAIStream()
		for _, e := range evs {
			if _, err := tr.Event(e.name, e.data); err != nil {
				b.Fatal(err)
			}
			i++
		}
	}
}

func BenchmarkOpenAIToAnthropicStreamEvent(b *testing.B) {
	evs := fixtureEvents(b, "openai_stream_parallel_tool_calls_include_usage.sse")
	st := &State{RequestedModel: "claude-x", InputEstimate: 100}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; {
		tr := st.NewOpenAIToAnthropicStream()
		for _, e := range evs {
			if _, err := tr.Event(e.name, e.data); err != nil {
				b.Fatal(err)
			}
			i++
		}
	}
}
