package metis

// Streams that end without all the provider was asked for, and clients
// that leave between attempts (acceptance 20L).

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// An OpenAI-compatible server that does not send the usage chunk the
// gateway asked for, nor [DONE], ends its stream cleanly after the
// finish_reason chunk (ik_llama.cpp, TGI before its PR #2221, llama-box,
// mistral.rs before PR #1226). The answer is whole, as openai-go straight
// at the server takes it: the client gets it without an error event, an
// Anthropic client with the held end events, and the call is a success
// priced on the estimate (acceptance 20L: an error event was appended and
// the call recorded STREAM_INTERRUPTED).
func TestCleanEndAfterFinishWithoutUsageIsWhole(t *testing.T) {
	const chunks = `data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-5-nano","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}

data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-5-nano","choices":[{"index":0,"delta":{"content":"Hello there."},"finish_reason":null}]}

data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-5-nano","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}

`
	g, n := oddUpstream(t, "", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, chunks) // then a clean end: no usage chunk, no [DONE]
	})
	_, tok := e2eKey(g, "clean-end")

	t.Run("openai client, same shape", func(t *testing.T) {
		g := e2eIn(g, t)
		resp := g.post("/v1/chat/completions", tok,
			`{"model":"nano","stream":true,"messages":[{"role":"user","content":"hi"}]}`)
		body := e2eRead(t, resp)
		if strings.Contains(body, `"error"`) {
			t.Errorf("a whole answer (finish_reason stop, clean end) got an error event appended:\n%s", body)
		}
		call := e2eCalls(g, 1)[0]
		if call["error_class"] != nil {
			t.Errorf("recorded error_class %v for a whole answer; want null (usage estimated)", call["error_class"])
		}
	})
	t.Run("anthropic client, translated", func(t *testing.T) {
		g := e2eIn(g, t)
		resp := g.post("/v1/messages", tok,
			`{"model":"nano","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"hi"}]}`, e2eAnthropicHdr...)
		evs := e2eReadSSE(t, resp.Body)
		resp.Body.Close()
		var names []string
		for _, ev := range evs {
			names = append(names, ev.Name)
		}
		got := strings.Join(names, ",")
		if strings.Contains(got, "error") || !strings.HasSuffix(got, "message_delta,message_stop") {
			t.Errorf("client events %s; want the held end (message_delta with stop_reason end_turn, message_stop), no error", got)
		}
		call := e2eCalls(g, 2)[1]
		if call["error_class"] != nil {
			t.Errorf("recorded error_class %v for a whole answer; want null (usage estimated)", call["error_class"])
		}
	})
	if n.Load() != 2 {
		t.Errorf("upstream got %d requests, want 2", n.Load())
	}
}

// A client that leaves while the gateway waits to retry after the
// provider's error records that error's request id and an exact zero (the
// README, "Trace events"), also when the error came as a stream's first
// event (Anthropic's 200 and overloaded_error), not only as an error
// status (acceptance 20L: it was recorded "estimated").
func TestLeftInBackoffAfterStreamErrorIsExactZero(t *testing.T) {
	g, n := oddUpstream(t, "", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
		w.Header().Set("Request-Id", "req_overloaded_1")
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, "event: error\ndata: {\"type\":\"error\",\"error\":{\"details\":null,\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n")
	})
	_, tok := e2eKey(g, "left-in-backoff")
	// The first attempt answers at once; the gateway then waits about
	// 375-625 ms (backoff) before the second: the client leaves in it.
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	resp, err := e2ePostCtx(ctx, g, "/v1/messages", tok,
		`{"model":"haiku","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"hi"}]}`, e2eAnthropicHdr...)
	if err == nil {
		resp.Body.Close()
		t.Fatalf("the client got an answer (%d) before it left", resp.StatusCode)
	}
	call := e2eCalls(g, 1)[0]
	if n.Load() != 1 || call["error_class"] != "CANCELLED" {
		t.Fatalf("upstream requests %d, error_class %v: the client did not leave in the backoff", n.Load(), call["error_class"])
	}
	if call["usage_source"] != "provider" || call["upstream_request_id"] != "req_overloaded_1" {
		t.Errorf("usage_source %v, upstream_request_id %v; want an exact zero (provider) with the error's request id",
			call["usage_source"], call["upstream_request_id"])
	}
}

// The same clean end on a stream asked for two choices, after choice 0
// finished and while choice 1 was mid-answer: choice 1 was cut, and the
// call is interrupted (review 20R3: read as whole).
func TestCleanEndAfterOneOfTwoChoicesIsNotWhole(t *testing.T) {
	const chunks = `data: {"id":"chatcmpl-2","object":"chat.completion.chunk","created":1,"model":"gpt-5-nano","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null},{"index":1,"delta":{"role":"assistant","content":""},"finish_reason":null}]}

data: {"id":"chatcmpl-2","object":"chat.completion.chunk","created":1,"model":"gpt-5-nano","choices":[{"index":0,"delta":{"content":"Hello."},"finish_reason":null}]}

data: {"id":"chatcmpl-2","object":"chat.completion.chunk","created":1,"model":"gpt-5-nano","choices":[{"index":1,"delta":{"content":"Hi, how"},"finish_reason":null}]}

data: {"id":"chatcmpl-2","object":"chat.completion.chunk","created":1,"model":"gpt-5-nano","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}

data: {"id":"chatcmpl-2","object":"chat.completion.chunk","created":1,"model":"gpt-5-nano","choices":[{"index":1,"delta":{"content":" can I"},"finish_reason":null}]}

`
	g, _ := oddUpstream(t, "", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, chunks) // choice 1 unfinished; a clean end
	})
	_, tok := e2eKey(g, "two-choices")
	resp := g.post("/v1/chat/completions", tok, `{"model":"nano","n":2,"stream":true,"messages":[{"role":"user","content":"hi"}]}`)
	body := e2eRead(t, resp)
	if call := e2eCalls(g, 1)[0]; !strings.Contains(body, `"error"`) || call["error_class"] != "STREAM_INTERRUPTED" {
		t.Errorf("choice 1 was cut mid-answer: the client got %q, the call %v; want an error event and STREAM_INTERRUPTED",
			body[max(0, len(body)-160):], call["error_class"])
	}
}
