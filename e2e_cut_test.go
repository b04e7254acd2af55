package metis

import (
	"io"
	"net/http"
	"net/http/httptest"
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

// A translated stream whose provider connection breaks after the answer's
// stop and usage (Anthropic's message_delta) but before message_stop:
// the answer is whole, recorded as a success, so the client gets its end
// as it would from a clean end of the body: the Chat Completions finish
// and usage chunks and [DONE], the Responses API's response.completed
// (confirmation 19L: they were lost, and the OpenAI SDKs then failed,
// "missing finish_reason for choice 0").
func TestTranslatedStreamCutAfterItsUsageEndsWhole(t *testing.T) {
	for _, tc := range []struct{ name, path, body, want string }{
		{"chat", "/v1/chat/completions", `{"model":"sonnet","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"Hi."}]}`,
			`"finish_reason":"stop"`},
		{"responses", "/v1/responses", `{"model":"sonnet","stream":true,"input":"Hi."}`, "event: response.completed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, up := e2eSetup(t, "")
			_, tok := e2eKey(g, "cut-after-usage")
			r := fakeupstream.AnthropicStream("", 40, "end_turn", fakeupstream.TextBlock("one two three four"))
			r.DieAfter = len(r.Events) - 1 // all but message_stop, then the connection breaks
			up.Enqueue("/v1/messages", r)
			body := e2eRead(t, g.post(tc.path, tok, tc.body))
			if !strings.Contains(body, tc.want) || (tc.name == "chat" && !strings.HasSuffix(body, "data: [DONE]\n\n")) ||
				strings.Contains(body, "event: error") || strings.Contains(body, `data: {"error"`) {
				t.Errorf("the client's stream ends %q", tail(body, 300))
			}
			if call := e2eCalls(g, 1)[0]; call["error_class"] != nil || call["usage_source"] != "provider" {
				t.Errorf("call %v", call)
			}
		})
	}
}

// The other way: an OpenAI-compatible server that sends no usage, cut
// after its finish_reason chunk, before [DONE]: the Anthropic-shape client
// still gets message_delta and message_stop (confirmation 19L).
func TestTranslatedNoUsageStreamCutAfterFinishEndsWhole(t *testing.T) {
	up := fakeupstream.New(t)
	g := startGateway(t, gatewayConfig(tempDB(t), up.URL, `provider nousage openai {
			base_url `+up.URL+`/v1
			stream_usage off
		}`))
	_, tok := e2eKey(g, "nousage-cut")
	r := fakeupstream.OpenAITextStream("gpt-4o-mini", "hello there", 10, false)
	r.DieAfter = len(r.Events) - 1 // all but [DONE], then the connection breaks
	up.Enqueue("/v1/chat/completions", r)
	body := e2eRead(t, g.post("/v1/messages", tok, `{"model":"nousage:gpt-4o-mini","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"Hi."}]}`,
		e2eAnthropicHdr...))
	if !strings.Contains(body, "event: message_delta") || !strings.HasSuffix(body, "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n") ||
		strings.Contains(body, "event: error") {
		t.Errorf("the client's stream ends %q", tail(body, 300))
	}
}

// A non-streamed answer that arrived whole (its JSON, usage included)
// before the connection broke ahead of the chunked body's terminator is
// relayed and priced from its usage, as a stream's last whole event is
// (confirmation 19L: a 502, priced from the prompt's estimate).
//
// claude-3-7-sonnet, $3 / $15 per MTok: 1,000 in, 660 out: 0.003 +
// 0.0099 = 0.0129.
func TestWholeAnswerBeforeACutStands(t *testing.T) {
	msg := fakeupstream.AnthropicMessage("claude-3-7-sonnet-20250219", 1000, "end_turn", fakeupstream.TextBlock("hello"))
	msg.Body = strings.Replace(msg.Body, `"output_tokens":2,`, `"output_tokens":660,`, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, msg.Body) // chunked: no Content-Length
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler) // the connection breaks before the last chunk
	}))
	defer srv.Close()
	g := startGateway(t, gatewayConfig(tempDB(t), srv.URL, ""))
	_, tok := e2eKey(g, "whole-then-cut")
	resp := g.post("/v1/messages", tok, `{"model":"sonnet","max_tokens":1000,"messages":[{"role":"user","content":"Hi."}]}`, e2eAnthropicHdr...)
	if body := e2eRead(t, resp); resp.StatusCode != http.StatusOK || !strings.Contains(body, `"text":"hello"`) {
		t.Errorf("the client got %d %.200s", resp.StatusCode, body)
	}
	call := e2eCalls(g, 1)[0]
	if c := e2eCost(t, call); !e2eNear(c, 0.0129) || call["error_class"] != nil || call["usage_source"] != "provider" {
		t.Errorf("call %v, want cost 0.0129 from the provider's usage", call)
	}
}
