// Package workload holds the request bodies the benchmarks send, shared
// by the load runs (bench/cmd/metisbench) and the micro-benchmarks
// (bench/hotpath) so both measure the same bytes.
package workload

import (
	"encoding/json"
	"strings"
)

// Prompt is the user message of the small Anthropic request.
const Prompt = "Write one short sentence about benchmarking an LLM gateway on loopback."

// AnthropicBody is the small (~170 B) Anthropic Messages request of the
// S1, S2 and S5 scenarios.
func AnthropicBody(model string, maxTokens int, stream bool) []byte {
	b, err := json.Marshal(map[string]any{
		"model": model, "max_tokens": maxTokens, "stream": stream,
		"messages": []any{map[string]any{"role": "user", "content": Prompt}},
	})
	if err != nil {
		panic(err) // static shapes: cannot fail
	}
	return b
}

// OpenAI4KBody is a Chat Completions request of about 4 KB: a system
// prompt, two earlier turns and a question, max_tokens 16.
func OpenAI4KBody(model string) []byte {
	para := "The gateway authenticates the key, resolves the model, forwards the request, relays the answer and records the cost of every call. "
	long := strings.Repeat(para, 9)
	b, err := json.Marshal(map[string]any{
		"model": model, "max_tokens": 16,
		"messages": []any{
			map[string]any{"role": "system", "content": "You are a terse assistant. " + long},
			map[string]any{"role": "user", "content": long},
			map[string]any{"role": "assistant", "content": "Understood. " + strings.Repeat(para, 2)},
			map[string]any{"role": "user", "content": long + " Summarise this in one sentence."},
		},
	})
	if err != nil {
		panic(err)
	}
	return b
}
