package metis

import (
	"strings"
	"testing"
	"time"

	"github.com/metisgateway/metis/internal/fakeupstream"
)

// A translated stream whose provider sends a chunk the translator cannot
// read ends for the client with an error event; its response then ends at
// once and the provider's request is cancelled, instead of the gateway
// draining a generation the provider goes on billing.
func TestE2ETranslationErrorEndsStreamAndCancelsProvider(t *testing.T) {
	g, up := e2eSetup(t, "")
	_, tok := e2eKey(g, "tr-err")
	r := fakeupstream.OpenAITextStream("gpt-5-nano", "one two three four five six seven eight nine ten", 10, true)
	r.Events = append([]string{r.Events[0], "data: {not json\n\n"}, r.Events[1:]...)
	r.Gap = 400 * time.Millisecond // the rest of the stream would take ~4 s
	up.Enqueue("/v1/chat/completions", r)
	start := time.Now()
	resp := g.post("/v1/messages", tok, `{"model":"nano","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"Hi."}]}`,
		"Anthropic-Version", "2023-06-01")
	body := e2eRead(t, resp)
	took := time.Since(start)
	if !strings.Contains(body, "event: error") {
		t.Fatalf("no error event: %q", body)
	}
	if took > 2*time.Second {
		t.Errorf("the response ended %v after the request; its error event went out after ~0.4 s", took.Round(time.Millisecond))
	}
	if !up.WaitCanceled(time.Second) {
		t.Error("the provider's request was not cancelled")
	}
	call := e2eCalls(g, 1)[0]
	if call["error_class"] != "STREAM_INTERRUPTED" || call["usage_source"] != "estimated" {
		t.Errorf("recorded error_class %v usage_source %v, want STREAM_INTERRUPTED, estimated", call["error_class"], call["usage_source"])
	}
	if ms, _ := call["latency_ms"].(float64); ms > 2000 {
		t.Errorf("latency_ms %v: the call ended when the provider's stream did", ms)
	}
}

// A non-streamed answer cut while its body is read: the provider answered
// 200 and bills the call, so the trace records the prompt's estimate,
// marked estimated, never a provider-reported zero at $0.
func TestE2EAnswerCutWhileReadRecordsEstimate(t *testing.T) {
	g, up := e2eSetup(t, "")
	_, tok := e2eKey(g, "body-cut")
	r := fakeupstream.OpenAICompletion("gpt-5-nano", "hello there", 30)
	r.DieAfter = 40
	up.Enqueue("/v1/chat/completions", r)
	resp := g.post("/v1/chat/completions", tok, `{"model":"nano","messages":[{"role":"user","content":"Hi, how are you today?"}]}`)
	body := e2eRead(t, resp)
	if resp.StatusCode != 502 || !strings.Contains(body, "interrupted") {
		t.Fatalf("client got %d %s, want 502 saying the answer was interrupted", resp.StatusCode, body)
	}
	call := e2eCalls(g, 1)[0]
	if call["error_class"] != "STREAM_INTERRUPTED" || call["usage_source"] != "estimated" {
		t.Errorf("recorded error_class %v usage_source %v, want STREAM_INTERRUPTED, estimated", call["error_class"], call["usage_source"])
	}
	if in, _ := call["input_tokens"].(float64); in <= 0 {
		t.Errorf("input_tokens %v, want the prompt's estimate", call["input_tokens"])
	}
	if c, ok := call["cost_usd"].(float64); !ok || c <= 0 {
		t.Errorf("cost_usd %v on a priced call the provider answered, want the estimate's price", call["cost_usd"])
	}
}
