package metis

// The gateway's resend of a request whose thinking a preserved-thinking
// model refused as bound to a different conversation (thinkingbinding.go):
// its place among the provider's retries, the other 400s it reads ahead,
// the Responses API path, and the beta header beside an operator's
// (review 20R3).

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/tidwall/gjson"
)

// bindingChat is a Chat Completions body for model continuing a tool loop
// whose assistant message carries its signed thinking back (LiteLLM's
// thinking_blocks).
func bindingChat(model string) string {
	return `{"model":"anthropic:` + model + `","messages":[
		{"role":"system","content":"Now: 16:41"},
		{"role":"user","content":"Weather in Paris?"},
		{"role":"assistant","content":null,"thinking_blocks":[{"type":"thinking","thinking":"Use the tool.","signature":"sig-old"}],
		 "tool_calls":[{"id":"toolu_01A","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},
		{"role":"tool","tool_call_id":"toolu_01A","content":"18C"}],
		"tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}]}`
}

// The resend after a binding refusal is not a retry of a failure: a 529
// answering it is retried as max_retries allows for any request (review
// 20R3: the refused request used up one of the retries, and with
// max_retries 1 the client got the 529).
func TestBindingResendKeepsItsRetries(t *testing.T) {
	var n atomic.Int64
	g := oddUpstreamRetries(t, 1, func(w http.ResponseWriter, r *http.Request) {
		i := n.Add(1)
		w.Header().Set("Content-Type", "application/json")
		switch i {
		case 1:
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"type":"error","error":{"type":"invalid_request_error","message":"messages.2.content.0: Invalid `+"`signature`"+` in `+"`thinking`"+` block. The block is bound to a different conversation."}}`)
		case 2:
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(529)
			_, _ = io.WriteString(w, `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`)
		default:
			_, _ = io.WriteString(w, `{"id":"msg_01R3","type":"message","role":"assistant","model":"claude-opus-5-5","content":[{"type":"text","text":"It is 18C in Paris."}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":1000,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":50}}`)
		}
	})
	_, tok := e2eKey(g, "binding-retries")
	resp := g.post("/v1/chat/completions", tok, bindingChat("claude-opus-5-5"))
	body := e2eRead(t, resp)
	call := e2eCalls(g, 1)[0]
	if resp.StatusCode != 200 || n.Load() != 3 || call["attempts"] != float64(3) || call["error_class"] != nil {
		t.Errorf("client got %d %.200s after %d provider requests, call %v; want 200 after 3 (refused; resent and overloaded; retried)",
			resp.StatusCode, body, n.Load(), call)
	}
}

// A 400 that is not a binding refusal, read ahead by the check, reaches
// the client whole: as the same request's 400 from a model without the
// check, even a message longer than the 64 KiB read ahead.
func TestBindingOtherRefusalRelayedWhole(t *testing.T) {
	msg := strings.Repeat("x", 70000) + " END"
	g, n := oddUpstream(t, "", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `{"type":"error","error":{"type":"invalid_request_error","message":%q}}`, msg)
	})
	_, tok := e2eKey(g, "other-400")
	read := func(model string) (int, string) {
		resp := g.post("/v1/chat/completions", tok, bindingChat(model))
		return resp.StatusCode, e2eRead(t, resp)
	}
	s1, b1 := read("claude-opus-5-5")
	s2, b2 := read("claude-opus-4-8")
	if s1 != 400 || b1 != b2 || !strings.Contains(b1, "x END") || n.Load() != 2 {
		t.Errorf("preserved-thinking model: %d %.100s…; other: %d %.100s…; provider requests %d, want 2", s1, b1, s2, b2, n.Load())
	}
}

// A Responses API tool loop whose instructions change (they hold the
// time) on claude-opus-5-5: the provider refuses the thinking the gateway
// put back, the request goes again asking for the drop, and the next
// request asks at once.
func TestResponsesBindingResend(t *testing.T) {
	up := &preservedThinker{}
	g := up.gateway(t)
	_, tok := e2eKey(g, "responses-binding")
	tools := `[{"type":"function","name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}]`
	resp := g.post("/v1/responses", tok, `{"model":"anthropic:claude-opus-5-5","instructions":"Now: 16:40","reasoning":{"effort":"low"},
		"input":"Weather in Paris?","tools":`+tools+`}`)
	b := e2eRead(t, resp)
	var callID, args string
	for _, it := range gjson.Get(b, "output").Array() {
		if it.Get("type").Str == "function_call" {
			callID, args = it.Get("call_id").Str, it.Get("arguments").Str
		}
	}
	if resp.StatusCode != 200 || callID == "" {
		t.Fatalf("step 1: %d %s", resp.StatusCode, b)
	}
	for _, now := range []string{"16:41", "16:42"} {
		resp = g.post("/v1/responses", tok, fmt.Sprintf(`{"model":"anthropic:claude-opus-5-5","instructions":"Now: %s","reasoning":{"effort":"low"},
		"input":[{"role":"user","content":"Weather in Paris?"},{"type":"function_call","call_id":%q,"name":"get_weather","arguments":%q},
		{"type":"function_call_output","call_id":%q,"output":"18C"}],"tools":`+tools+`}`, now, callID, args, callID))
		if b = e2eRead(t, resp); resp.StatusCode != 200 {
			t.Fatalf("at %s: %d %s", now, resp.StatusCode, b)
		}
	}
	up.mu.Lock()
	defer up.mu.Unlock()
	var bound []string
	for _, body := range up.bodies {
		bound = append(bound, gjson.Get(body, "thinking.block_binding.prefix_mismatch_behavior").Str)
	}
	// Step 1; step 2 refused, then resent asking; step 3 asking at once.
	if want := []string{"", "", "drop_block", "drop_block"}; fmt.Sprint(bound) != fmt.Sprint(want) || len(up.refusals) != 1 || up.dropped != 2 {
		t.Errorf("provider requests' prefix_mismatch_behavior %q (want %q), refusals %d (want 1), blocks dropped %d (want 2)",
			bound, want, len(up.refusals), up.dropped)
	}
	if calls := e2eCalls(g, 3); calls[1]["attempts"] != float64(2) || calls[2]["attempts"] != float64(1) {
		t.Errorf("attempts %v and %v, want 2 (refused and resent) and 1", calls[1]["attempts"], calls[2]["attempts"])
	}
}

// The binding beta joins an operator's anthropic-beta header line, which
// stays as it was for later requests.
func TestBindingBetaJoinsOperatorBeta(t *testing.T) {
	var mu sync.Mutex
	var betas []string
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		mu.Lock()
		betas = append(betas, strings.Join(r.Header.Values("Anthropic-Beta"), "|"))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"id":"msg_01","type":"message","role":"assistant","model":"m","content":[{"type":"text","text":"ok"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":10,"output_tokens":5}}`)
	}))
	t.Cleanup(up.Close)
	cfg := strings.Replace(gatewayConfig(tempDB(t), up.URL, ""), "max_retries 2", "max_retries 2\n\t\t\theader anthropic-beta context-1m-2025-08-07", 1)
	g := startGateway(t, cfg)
	_, tok := e2eKey(g, "beta-join")
	for _, model := range []string{"claude-opus-5-5", "claude-opus-4-8", "claude-opus-5-5"} {
		e2eRead(t, g.post("/v1/chat/completions", tok, bindingChat(model)))
	}
	want := []string{"context-1m-2025-08-07,thinking-binding-controls-2026-08-01", "context-1m-2025-08-07",
		"context-1m-2025-08-07,thinking-binding-controls-2026-08-01"}
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(betas) != fmt.Sprint(want) {
		t.Errorf("anthropic-beta %q, want %q", betas, want)
	}
}
