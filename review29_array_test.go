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

// A stream some servers send as one JSON array of its chunks (review 29U)
// is read as the event stream it stands for (reviews 29R, 29R2): the usage
// its last chunk carries is taken as reported, the model its chunks name
// is the answered model, and the usage chunk the gateway asked for
// (include_usage) is removed for a client that did not ask for usage.
func TestStreamAsJSONArray(t *testing.T) {
	chunk := func(model, rest string) string {
		return `{"id":"c1","object":"chat.completion.chunk","created":1,"model":"` + model + `",` + rest + `}`
	}
	usage := `"choices":[],"usage":{"prompt_tokens":120,"completion_tokens":40,"total_tokens":160}`
	array := func(model string) string {
		return "[" + chunk(model, `"choices":[{"index":0,"delta":{"role":"assistant","content":"Hello"},"finish_reason":null}]`) + "," +
			chunk(model, `"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]`) + "," + chunk(model, usage) + "]"
	}
	for _, c := range []struct {
		name, body, request string
		want                map[string]any
		asked               bool // the client asked for the usage: the array as sent
	}{
		{"usage asked", array("gpt-5-nano-2025-08-07"), `"stream_options":{"include_usage":true},`, nil, true},
		{"usage not asked", array("gpt-5-nano-2025-08-07"), ``, nil, false},
		// "usage":null first in a chunk, and spaced: removed all the same.
		{"null usage anywhere", strings.Replace(strings.Replace(array("gpt-5-nano-2025-08-07"), `{"id":"c1"`, `{"usage":null,"id":"c1"`, 1),
			`"finish_reason":"stop"}]`, `"finish_reason":"stop"}], "usage" : null`, 1), ``, nil, false},
		// A leading newline (a pretty printer's) is still an array; its
		// model, another than the one asked for, is recorded and unpriced.
		{"leading white space", "\n" + array("qwen2.5-0.5b-instruct-q4_k_m.gguf"), `"stream_options":{"include_usage":true},`,
			map[string]any{"answered_model": "qwen2.5-0.5b-instruct-q4_k_m.gguf", "cost_usd": nil}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			var mu sync.Mutex
			var included []bool
			up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				mu.Lock()
				included = append(included, gjson.GetBytes(b, "stream_options.include_usage").Bool())
				mu.Unlock()
				w.Header().Set("Content-Type", "application/json")
				_, _ = io.WriteString(w, c.body)
			}))
			t.Cleanup(up.Close)
			g := startGateway(t, gatewayConfig(tempDB(t), up.URL, ""))
			_, tok := e2eKey(g, "array")
			resp := g.post("/v1/chat/completions", tok, `{"model":"nano","stream":true,`+c.request+`"messages":[{"role":"user","content":"hi"}]}`)
			body := e2eRead(t, resp)
			if resp.StatusCode != 200 {
				t.Fatalf("%d %.200s", resp.StatusCode, body)
			}
			mu.Lock()
			if len(included) != 1 || !included[0] {
				t.Errorf("upstream requests' include_usage: %v, want [true] (the gateway asks)", included)
			}
			mu.Unlock()
			switch {
			case c.asked && body != c.body:
				t.Errorf("a client that asked for usage should get the array as sent: %.300s", body)
			case !c.asked && strings.Contains(body, `"usage"`):
				t.Errorf("a client that did not ask for usage got the usage chunk the gateway asked for: %s", body)
			case !c.asked && !strings.Contains(body, `"finish_reason":"stop"`):
				t.Errorf("the answer's chunks should stay: %s", body)
			}
			want := map[string]any{"usage_source": "provider", "input_tokens": 120, "output_tokens": 40}
			for k, v := range c.want {
				want[k] = v
			}
			e2eWant(t, c.name, e2eCalls(g, 1)[0], want)
		})
	}
}
