package metis

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/tidwall/gjson"
)

// README ("Any model through either shape"): same-shape traffic is relayed
// byte for byte "but for the usage chunk the gateway asks an OpenAI
// provider for, which a client that did not ask for it never sees". A
// stream sent as one JSON array (review 29U; its usage now read from that
// chunk, 5f7a051) reaches a client that sent no stream_options with the
// usage chunk the gateway asked for: the client gets a chunk with
// "choices": [] it would never get from that server directly (review 29r2).
func TestStreamAsJSONArrayUsageChunkNotAskedIsRemoved(t *testing.T) {
	const usageChunk = `{"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-5-nano-2025-08-07","choices":[],"usage":{"prompt_tokens":120,"completion_tokens":40,"total_tokens":160}}`
	const array = `[{"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-5-nano-2025-08-07","choices":[{"index":0,"delta":{"role":"assistant","content":"Hello"},"finish_reason":null}]},` +
		`{"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-5-nano-2025-08-07","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]},` +
		usageChunk + `]`
	var mu sync.Mutex
	var asked []bool
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		asked = append(asked, gjson.GetBytes(b, "stream_options.include_usage").Bool())
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, array)
	}))
	t.Cleanup(up.Close)
	g := startGateway(t, gatewayConfig(tempDB(t), up.URL, ""))
	_, tok := e2eKey(g, "array-usage-strip")
	resp := g.post("/v1/chat/completions", tok, `{"model":"nano","stream":true,"messages":[{"role":"user","content":"hi"}]}`)
	body := e2eRead(t, resp)
	mu.Lock()
	if len(asked) != 1 || !asked[0] {
		t.Fatalf("upstream requests' include_usage: %v, want [true] (the gateway asks)", asked)
	}
	mu.Unlock()
	if resp.StatusCode != 200 {
		t.Fatalf("%d %.200s", resp.StatusCode, body)
	}
	if strings.Contains(body, `"usage"`) {
		t.Errorf("client that did not ask for usage got the usage chunk the gateway asked for: %s", body)
	}
	call := e2eCalls(g, 1)[0]
	e2eWant(t, "array with a usage chunk", call, map[string]any{"usage_source": "provider", "input_tokens": 120, "output_tokens": 40})
}

// A stream sent as one JSON array whose body opens with white space (a
// server that ends its headers' blank line with another "\n", a pretty
// printer's leading newline): setUsage now looks at body[0] == '[' only,
// so neither its usage nor its model is read. Before 5f7a051 the model
// was read (gjson.GetBytes(body, "0.model") skips white space), so an
// answer naming another model (here a GGUF file) was recorded
// answered_model and priced as that model (null); now it records no
// answered_model and is priced as the resolved id, on the estimate
// (review 29r2).
func TestStreamAsJSONArrayWithLeadingWhitespace(t *testing.T) {
	const array = "\n[" + `{"id":"c1","object":"chat.completion.chunk","created":1,"model":"qwen2.5-0.5b-instruct-q4_k_m.gguf","choices":[{"index":0,"delta":{"role":"assistant","content":"Hello"},"finish_reason":null}]},` +
		`{"id":"c1","object":"chat.completion.chunk","created":1,"model":"qwen2.5-0.5b-instruct-q4_k_m.gguf","choices":[],"usage":{"prompt_tokens":120,"completion_tokens":40,"total_tokens":160}}]`
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, array)
	}))
	t.Cleanup(up.Close)
	g := startGateway(t, gatewayConfig(tempDB(t), up.URL, ""))
	_, tok := e2eKey(g, "array-ws")
	resp := g.post("/v1/chat/completions", tok, `{"model":"nano","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}`)
	if body := e2eRead(t, resp); resp.StatusCode != 200 {
		t.Fatalf("%d %.200s", resp.StatusCode, body)
	}
	call := e2eCalls(g, 1)[0]
	e2eWant(t, "array opening with a newline", call, map[string]any{"answered_model": "qwen2.5-0.5b-instruct-q4_k_m.gguf",
		"usage_source": "provider", "input_tokens": 120, "output_tokens": 40})
}
