package metis

// Review 25R2: tests of the mends to review 25R's findings (9f7d12a) and
// of README statements added in session 25. Each fails on 0284b53, but
// TestZstdDecodesWaitForASlot, which replaced 25R2's window test after
// review 25R3 (it fails without zstdSlots).

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/metisgateway/metis/adapters/sse"
	"github.com/metisgateway/metis/internal/fakeupstream"
)

// An OpenAI-compatible server whose chunks carry an empty error member
// ("error":"", a struct serialised whole) answers normally: the OpenAI SDKs
// read an error only when the member is truthy (Python `data.get("error")`,
// Node `data.error`). The tracker, since
// 9f7d12a, flags any string: the whole answer is recorded UPSTREAM_ERROR,
// and as the first chunk carries it (errorFirst) with zero usage: a free
// call, whose every later event is also run through scrubSecrets.
func TestReview2EmptyStringErrorMemberIsNoError(t *testing.T) {
	g, _ := oddUpstream(t, "", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for _, c := range []string{
			`{"id":"c1","object":"chat.completion.chunk","model":"gpt-5-mini","error":"","choices":[{"index":0,"delta":{"role":"assistant","content":"Hello"},"finish_reason":null}],"usage":null}`,
			`{"id":"c1","object":"chat.completion.chunk","model":"gpt-5-mini","error":"","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":null}`,
			`{"id":"c1","object":"chat.completion.chunk","model":"gpt-5-mini","error":"","choices":[],"usage":{"prompt_tokens":1000,"completion_tokens":200,"total_tokens":1200}}`,
			`[DONE]`,
		} {
			fmt.Fprintf(w, "data: %s\n\n", c)
		}
	})
	_, tok := e2eKey(g, "empty-error-member")
	resp := g.post("/v1/chat/completions", tok, `{"model":"gpt-5-mini","stream":true,"messages":[{"role":"user","content":"Hi."}]}`)
	if body := e2eRead(t, resp); resp.StatusCode != 200 || !strings.Contains(body, "Hello") {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	call := e2eCalls(g, 1)[0]
	e2eWant(t, "call", call, map[string]any{"error_class": nil, "input_tokens": 1000, "output_tokens": 200})
}

// vLLM's error shape, {"object":"error","message":…}, inside a stream to an
// Anthropic-shape client (a Claude-shaped agent on a model served by an
// OpenAI-compatible server). The tracker flags it since 9f7d12a, so
// relayStream returns at "upstreamErr" without endStream; the OpenAI→
// Anthropic decoder does not know the shape (stream.go reads only the
// error member) and emits nothing. The client's stream ends with neither
// message_stop nor an error event (before 9f7d12a it got the gateway's
// "interrupted" error event); with [DONE] after the error it gets a
// clean message_stop for a cut answer that the ledger records as
// UPSTREAM_ERROR. Passed through, an OpenAI client sees the provider's
// event as sent; translated, it should get an `event: error`.
func TestReview2VLLMStreamedErrorTranslatedEndsInError(t *testing.T) {
	g, _ := oddUpstream(t, "", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-5-mini\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Hel\"}}]}\n\n")
		fmt.Fprint(w, "data: {\"object\":\"error\",\"message\":\"The engine died\",\"type\":\"InternalServerError\",\"param\":null,\"code\":500}\n\n")
		if r.Header.Get("X-Done") != "" {
			fmt.Fprint(w, "data: [DONE]\n\n")
		}
	})
	_, tok := e2eKey(g, "vllm-translated")
	for _, done := range []string{"", "1"} {
		t.Run("done="+done, func(t *testing.T) {
			resp := g.post("/v1/messages", tok, `{"model":"gpt-5-mini","max_tokens":16,"stream":true,"messages":[{"role":"user","content":"Hi."}]}`,
				"Anthropic-Version", "2023-06-01", "X-Done", done)
			evs := e2eReadSSE(t, resp.Body)
			resp.Body.Close()
			var names []string
			for _, ev := range evs {
				names = append(names, ev.Name)
			}
			if len(names) == 0 || names[len(names)-1] != "error" {
				t.Errorf("the Anthropic client's stream ends %v; want an error event (the provider's error, or the gateway's)", names)
			}
		})
	}
}

// TGI (and TGI-based servers) answer a stream they cannot serve now with a
// 200 and a first event {"error":"Model is overloaded","error_type":
// "overloaded"} (router InferError::Overloaded, error_type()). Anthropic's
// overloaded_error and OpenAI's server_error as a first event are retried
// (startStream); TGI's string error is flagged since 9f7d12a, but with an
// empty type, so it is relayed to the client and never retried.
func TestReview2TGIOverloadedFirstEventRetried(t *testing.T) {
	o := streamObserver{format: formatChat}
	o.observe(sse.Event{Data: []byte(`{"error":"Model is overloaded","error_type":"overloaded"}`)})
	typ, ok := o.upstreamErr()
	if !ok || !retryableStreamError(typ) {
		t.Errorf("TGI's overloaded first event: error %v, type %q, retried %v; want it retried as Anthropic's overloaded_error is", ok, typ, ok && retryableStreamError(typ))
	}
}

// A zstd body may declare an 8 MB window whatever its size (review 25R2:
// 10 bytes at max_body 256 KiB took 9.6 MB). A bound at max_body refused
// real encoders' bodies (review 25R3), so the windows held at once are
// bounded instead: with every slot taken, a zstd body waits for one.
func TestZstdDecodesWaitForASlot(t *testing.T) {
	held := cap(zstdSlots)
	for range held {
		zstdSlots <- struct{}{}
	}
	defer func() {
		for range held {
			<-zstdSlots
		}
	}()
	var zbuf bytes.Buffer
	zw, _ := zstd.NewWriter(&zbuf)
	_, _ = zw.Write([]byte(`{"model":"m"}`))
	_ = zw.Close()
	done := make(chan error, 1)
	go func() {
		_, err := decodeRequestBody("zstd", zbuf.Bytes(), 1<<20)
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("a zstd body decoded (%v) with every slot taken", err)
	case <-time.After(100 * time.Millisecond):
	}
	<-zstdSlots
	held--
	if err := <-done; err != nil {
		t.Fatalf("decoding once a slot was free: %v", err)
	}
}

// README (70129aa): "Its 404s and 405s name paths with the prefix the
// client sent." The 405 of /healthz under handle_path /llm/* says
// "… is not allowed on /healthz".
func TestReview2PrefixedSiteHealthz405NamesTheClientsPath(t *testing.T) {
	up := fakeupstream.New(t)
	g := e2eStartSite(t, up.URL, `
	handle_path /llm/* {
		metis_gateway
	}
	respond "the team's web site" 200`)
	resp := g.post("/llm/healthz", "", `{}`)
	body := e2eRead(t, resp)
	if resp.StatusCode != http.StatusMethodNotAllowed || !strings.Contains(body, "/llm/healthz") {
		t.Errorf("POST /llm/healthz: %d %s; want a 405 naming /llm/healthz", resp.StatusCode, body)
	}
}

// README (9812434): a provider credential echoed in "an error event in a
// stream" is removed. The Responses API tracker flags `type: error` and
// response.failed only; a compatible proxy in front of the provider
// (LiteLLM's proxy writes every streamed error, /v1/responses included,
// as data: {"error":{…}}) has its error event relayed with the key in it,
// and the call recorded as a cut stream.
func TestReview2ResponsesStreamChatShapedErrorIsScrubbed(t *testing.T) {
	g, _ := oddUpstream(t, "", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "event: response.created\ndata: {\"type\":\"response.created\",\"sequence_number\":0,\"response\":{\"id\":\"resp_1\",\"object\":\"response\",\"status\":\"in_progress\",\"model\":\"gpt-5-mini\",\"output\":[]}}\n\n")
		fmt.Fprintf(w, "data: {\"error\":{\"message\":%q,\"type\":\"auth_error\",\"param\":null,\"code\":\"401\"}}\n\n", "invalid key Bearer "+testOpenAIKey)
	})
	_, tok := e2eKey(g, "responses-echo")
	resp := g.post("/v1/responses", tok, `{"model":"gpt-5-mini","stream":true,"input":"Hi."}`)
	body := e2eRead(t, resp)
	if strings.Contains(body, testOpenAIKey) {
		t.Errorf("the client got the provider key in the stream:\n%s", body)
	}
	if call := e2eCalls(g, 1)[0]; call["error_class"] != errUpstream {
		t.Errorf("recorded as %v, want %s", call["error_class"], errUpstream)
	}
}
