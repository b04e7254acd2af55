package metis

// A provider stream that fails before its first event: Anthropic answers
// an overload with a 200 and an `error` event, and a connection can drop
// after the headers. Nothing has reached the client yet (the gateway holds
// the headers for the first event), so the gateway retries as it does a
// 529, where the SDKs' own retries never would.

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/openai/openai-go/v3"

	"github.com/metisgateway/metis/adapters/sse"
	"github.com/metisgateway/metis/internal/fakeupstream"
)

// anthropicStreamError is a 200 stream made of one `error` event, as
// Anthropic sends when overloaded after the status line.
func anthropicStreamError(typ, message string) fakeupstream.Reply {
	r := fakeupstream.AnthropicTextStream("claude-haiku-4-5", "unused")
	r.Events = []string{"event: error\ndata: {\"type\":\"error\",\"error\":{\"details\":null,\"type\":\"" + typ +
		"\",\"message\":\"" + message + "\"},\"request_id\":\"req_011CZoverloaded\"}\n\n"}
	return r
}

// streamCutBeforeFirstEvent sends the 200 and half an event, then drops
// the connection.
func streamCutBeforeFirstEvent() fakeupstream.Reply {
	r := fakeupstream.AnthropicTextStream("claude-haiku-4-5", "unused")
	r.Events = []string{"event: message_start\ndata: {\"type\":\"message_st"}
	r.DieAfter = 1
	return r
}

// The official Anthropic SDK, with its own retries off, gets a clean
// answer when the first attempt's stream opened with overloaded_error or
// broke before its first event; the trace records the attempts and the
// answer's cost. An OpenAI client of the same Claude model likewise.
func TestE2EStreamFailingBeforeFirstEventRetried(t *testing.T) {
	g, up := e2eSetup(t, "")
	_, tok := e2eKey(g, "early")
	// AnthropicTextStream("hello there"): input 12, output 11/4+1 = 3.
	// claude-haiku-4-5: 12 × $1/MTok + 3 × $5/MTok = 0.000012 + 0.000015.
	const wantCost = 0.000027

	for i, first := range []struct {
		name  string
		reply fakeupstream.Reply
	}{
		{"overloaded_error event", anthropicStreamError("overloaded_error", "Overloaded")},
		{"cut before the first event", streamCutBeforeFirstEvent()},
	} {
		t.Run(first.name, func(t *testing.T) {
			g := e2eIn(g, t)
			up.Reset()
			up.Enqueue("/v1/messages", first.reply, fakeupstream.AnthropicTextStream("claude-haiku-4-5", "hello there"))
			client := e2eAnthropicClient(g, tok)
			s := client.Messages.NewStreaming(context.Background(), anthropic.MessageNewParams{
				Model: "haiku", MaxTokens: 64,
				Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("Say hello."))},
			})
			var m anthropic.Message
			for s.Next() {
				if err := m.Accumulate(s.Current()); err != nil {
					t.Fatalf("accumulating: %v", err)
				}
			}
			if err := s.Err(); err != nil {
				t.Fatalf("the SDK saw the first attempt's failure: %v", err)
			}
			if len(m.Content) != 1 || m.Content[0].Text != "hello there" || m.StopReason != anthropic.StopReasonEndTurn {
				t.Errorf("answer %+v, want the second attempt's", m.Content)
			}
			if n := up.Count("/v1/messages"); n != 2 {
				t.Errorf("upstream saw %d requests, want 2", n)
			}
			call := e2eCalls(g, i+1)[i]
			e2eWant(t, "call", call, map[string]any{"attempts": 2, "status": 200, "error_class": nil,
				"input_tokens": 12, "output_tokens": 3, "usage_source": "provider", "stream": true})
			if c := e2eCost(t, call); !e2eNear(c, wantCost) {
				t.Errorf("cost %v, want %v", c, wantCost)
			}
			e2eCheckTriple(g, call)
		})
	}

	t.Run("openai client, claude model", func(t *testing.T) {
		g := e2eIn(g, t)
		up.Reset()
		up.Enqueue("/v1/messages", anthropicStreamError("overloaded_error", "Overloaded"), fakeupstream.AnthropicTextStream("claude-haiku-4-5", "hello there"))
		client := e2eOpenAIClient(g, tok)
		s := client.Chat.Completions.NewStreaming(context.Background(), openai.ChatCompletionNewParams{
			Model:    "haiku",
			Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Say hello.")},
		})
		var acc openai.ChatCompletionAccumulator
		for s.Next() {
			acc.AddChunk(s.Current())
		}
		if err := s.Err(); err != nil {
			t.Fatalf("the SDK saw the first attempt's failure: %v", err)
		}
		if len(acc.Choices) != 1 || acc.Choices[0].Message.Content != "hello there" {
			t.Errorf("answer %+v, want the second attempt's", acc.Choices)
		}
		call := e2eCalls(g, 3)[2]
		e2eWant(t, "call", call, map[string]any{"attempts": 2, "status": 200, "error_class": nil, "inbound_shape": "openai"})
		if c := e2eCost(t, call); !e2eNear(c, wantCost) {
			t.Errorf("cost %v, want %v", c, wantCost)
		}
	})

	// OpenAI reports a server error inside a stream as a first chunk
	// holding only "error".
	t.Run("openai server_error chunk", func(t *testing.T) {
		g := e2eIn(g, t)
		up.Reset()
		bad := fakeupstream.OpenAITextStream("gpt-5-nano", "unused", 30, true)
		bad.Events = []string{"data: {\"error\":{\"message\":\"The server had an error while processing your request. Sorry about that!\",\"type\":\"server_error\",\"param\":null,\"code\":null}}\n\n"}
		up.Enqueue("/v1/chat/completions", bad, fakeupstream.OpenAITextStream("gpt-5-nano", "Hi there!", 30, true))
		resp := g.post("/v1/chat/completions", tok, `{"model":"nano","stream":true,"messages":[{"role":"user","content":"Say hello."}]}`)
		body := e2eRead(t, resp)
		if resp.StatusCode != 200 || strings.Contains(body, "server_error") || !strings.HasSuffix(body, "data: [DONE]\n\n") {
			t.Errorf("client got %d %q, want the second attempt's stream", resp.StatusCode, body)
		}
		if n := up.Count("/v1/chat/completions"); n != 2 {
			t.Errorf("upstream saw %d requests, want 2", n)
		}
		e2eWant(t, "call", e2eCalls(g, 4)[3], map[string]any{"attempts": 2, "status": 200, "error_class": nil, "input_tokens": 30})
	})

	// An error the retry cannot mend goes to the client as the provider
	// sent it, on the first attempt.
	t.Run("invalid_request_error event", func(t *testing.T) {
		g := e2eIn(g, t)
		up.Reset()
		up.Enqueue("/v1/messages", anthropicStreamError("invalid_request_error", "prompt is too long"))
		resp := g.post("/v1/messages", tok, `{"model":"haiku","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"Hi."}]}`, e2eAnthropicHdr...)
		evs := e2eReadSSE(t, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || len(evs) != 1 || evs[0].Name != "error" || !strings.Contains(evs[0].Data, "prompt is too long") {
			t.Errorf("client got %d %+v, want the provider's error event", resp.StatusCode, evs)
		}
		if n := up.Count("/v1/messages"); n != 1 {
			t.Errorf("upstream saw %d requests, want 1", n)
		}
		e2eWant(t, "call", e2eCalls(g, 5)[4], map[string]any{"attempts": 1, "error_class": "UPSTREAM_ERROR"})
	})
}

// When every attempt fails before its first event: an error event is the
// provider's to show, so the last one reaches the client unmodified; a
// stream that never began becomes a 502 in the client's shape, which its
// SDK may retry, rather than a 200 that breaks at once.
func TestE2EStreamFailingBeforeFirstEventExhausted(t *testing.T) {
	g, up := e2eSetup(t, "")
	_, tok := e2eKey(g, "exhausted")
	body := `{"model":"haiku","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"Hi."}]}`

	t.Run("overloaded", func(t *testing.T) {
		g := e2eIn(g, t)
		up.Reset()
		for range 3 {
			up.Enqueue("/v1/messages", anthropicStreamError("overloaded_error", "Overloaded"))
		}
		resp := g.post("/v1/messages", tok, body, e2eAnthropicHdr...)
		evs := e2eReadSSE(t, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || len(evs) != 1 || evs[0].Name != "error" || !strings.Contains(evs[0].Data, "req_011CZoverloaded") {
			t.Errorf("client got %d %+v, want the last attempt's error event as sent", resp.StatusCode, evs)
		}
		if n := up.Count("/v1/messages"); n != 3 {
			t.Errorf("upstream saw %d requests, want 3 (max_retries 2)", n)
		}
		// The provider's answer was an error only: billed nothing, as a 529.
		call := e2eCalls(g, 1)[0]
		e2eWant(t, "call", call, map[string]any{"attempts": 3, "status": 200, "error_class": "UPSTREAM_ERROR",
			"input_tokens": 0, "output_tokens": 0, "usage_source": "provider"})
		if c := e2eCost(t, call); c != 0 {
			t.Errorf("cost %v for an overloaded stream; the provider bills it nothing", c)
		}
	})

	t.Run("cut", func(t *testing.T) {
		g := e2eIn(g, t)
		up.Reset()
		for range 3 {
			up.Enqueue("/v1/messages", streamCutBeforeFirstEvent())
		}
		resp := g.post("/v1/messages", tok, body, e2eAnthropicHdr...)
		got := e2eJSON(t, e2eRead(t, resp))
		if resp.StatusCode != http.StatusBadGateway || e2ePath(got, "type") != "error" || e2ePath(got, "error", "type") != "api_error" ||
			e2ePath(got, "error", "message") != "provider anthropic ended its stream before answering" {
			t.Errorf("client got %d %v, want a 502 Anthropic error", resp.StatusCode, got)
		}
		if n := up.Count("/v1/messages"); n != 3 {
			t.Errorf("upstream saw %d requests, want 3", n)
		}
		// The provider failed before answering and reported nothing: as for
		// a timeout, a zero marked estimated.
		call := e2eCalls(g, 2)[1]
		e2eWant(t, "call", call, map[string]any{"attempts": 3, "status": 502, "error_class": "STREAM_INTERRUPTED",
			"input_tokens": 0, "usage_source": "estimated"})
	})
}

// The headers wait for the first event only so long: a provider slow to
// its first event does not keep the client from its headers, and a stream
// that breaks after them is not retried.
func TestE2EStreamHeadersHeldOnlyBriefly(t *testing.T) {
	setForTest(t, &firstEventHold, 100*time.Millisecond)
	g, up := e2eSetup(t, "")
	_, tok := e2eKey(g, "slow")

	body := `{"model":"haiku","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"Hi."}]}`
	// A first call warms the connections up.
	up.Enqueue("/v1/messages", fakeupstream.AnthropicTextStream("claude-haiku-4-5", "warm"))
	e2eRead(t, g.post("/v1/messages", tok, body, e2eAnthropicHdr...))

	// An empty first write, then the partial event 1.5 s later, then the cut.
	r := streamCutBeforeFirstEvent()
	r.Events = append([]string{""}, r.Events...)
	r.Gap, r.DieAfter = 1500*time.Millisecond, 2
	up.Enqueue("/v1/messages", r, fakeupstream.AnthropicTextStream("claude-haiku-4-5", "hello there"))
	start := time.Now()
	resp := g.post("/v1/messages", tok, body, e2eAnthropicHdr...)
	if took := time.Since(start); took > time.Second {
		t.Errorf("headers after %v, with the hold at 100 ms and the first event at 1.5 s", took)
	}
	evs := e2eReadSSE(t, resp.Body)
	resp.Body.Close()
	// A keep-alive ping went with the headers.
	if resp.StatusCode != 200 || len(evs) != 2 || evs[0].Name != "ping" || evs[1].Name != "error" || !strings.Contains(evs[1].Data, interruptedMsg) {
		t.Errorf("client got %d %+v, want the headers with a ping and then the interruption", resp.StatusCode, evs)
	}
	if n := up.Count("/v1/messages"); n != 2 {
		t.Errorf("upstream saw %d requests, want 2: a stream whose headers went out was retried", n)
	}
	// The stream never began: a zero marked estimated, as within the hold.
	e2eWant(t, "call", e2eCalls(g, 2)[1], map[string]any{"attempts": 1, "status": 200, "error_class": "STREAM_INTERRUPTED",
		"input_tokens": 0, "usage_source": "estimated"})
}

// A translated stream whose headers went out before its first event keeps
// getting keep-alive pings while it waits, as it did before the hold.
func TestE2ETranslatedStreamPingsWhileAwaitingFirstEvent(t *testing.T) {
	// Pings with the headers at 50 ms and at 550 ms, before the first event
	// at 900 ms.
	setForTest(t, &firstEventHold, 50*time.Millisecond)
	setForTest(t, &pingEvery, 500*time.Millisecond)
	g, up := e2eSetup(t, "")
	_, tok := e2eKey(g, "waiting")

	// The headers, then the whole stream in one write 900 ms later.
	slow := fakeupstream.AnthropicTextStream("claude-haiku-4-5", "hello there")
	slow.Events = []string{"", strings.Join(slow.Events, "")}
	slow.Gap = 900 * time.Millisecond
	up.Enqueue("/v1/messages", slow)
	resp := g.post("/v1/chat/completions", tok, `{"model":"haiku","stream":true,"messages":[{"role":"user","content":"Hi."}]}`)
	body := e2eRead(t, resp)
	first := strings.Index(body, "data: ")
	if resp.StatusCode != 200 || first < 0 || !strings.HasSuffix(body, "data: [DONE]\n\n") {
		t.Fatalf("client got %d %q", resp.StatusCode, body)
	}
	if n := strings.Count(body[:first], ": ping\n\n"); n < 2 {
		t.Errorf("%d pings before the first chunk (%q); the headers went out 850 ms before it", n, body[:first])
	}
	e2eWant(t, "call", e2eCalls(g, 1)[0], map[string]any{"attempts": 1, "status": 200, "error_class": nil})
}

// A provider that holds its failed stream open after the error event does
// not hold up the retry: the gateway closes that stream instead of
// draining it.
func TestE2EStreamErrorHeldOpenStillRetried(t *testing.T) {
	g, up := e2eSetup(t, "")
	_, tok := e2eKey(g, "held-open")
	bad := anthropicStreamError("overloaded_error", "Overloaded")
	bad.StallAfter = 1
	up.Enqueue("/v1/messages", bad, fakeupstream.AnthropicTextStream("claude-haiku-4-5", "hello there"))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := e2ePostCtx(ctx, g, "/v1/messages", tok, `{"model":"haiku","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"Hi."}]}`, e2eAnthropicHdr...)
	if err != nil {
		t.Fatalf("no answer within 5 s (the backoff is about 0.5 s): %v", err)
	}
	evs := e2eReadSSE(t, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || len(evs) == 0 || evs[len(evs)-1].Name != "message_stop" {
		t.Errorf("client got %d %+v, want the second attempt's stream", resp.StatusCode, evs)
	}
	e2eWant(t, "call", e2eCalls(g, 1)[0], map[string]any{"attempts": 2, "status": 200, "error_class": nil})
}

// A client that leaves while the gateway holds the headers cancels the
// provider's stream at once and is recorded as a cancel before any
// answer, with the prompt estimated: the provider's 200 had come, and it
// bills the prompt.
func TestE2EStreamCancelledWhileHeadersHeld(t *testing.T) {
	g, up := e2eSetup(t, "")
	_, tok := e2eKey(g, "impatient")
	slow := fakeupstream.AnthropicTextStream("claude-haiku-4-5", "too late")
	slow.Events = append([]string{""}, slow.Events...)
	slow.StallAfter = 1
	up.Enqueue("/v1/messages", slow)
	body := `{"model":"haiku","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"Tell me a long story about the sea."}]}`
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if resp, err := e2ePostCtx(ctx, g, "/v1/messages", tok, body, e2eAnthropicHdr...); err == nil {
		resp.Body.Close()
		t.Fatalf("got %d before the first event; the headers should be held", resp.StatusCode)
	}
	if !up.WaitCanceled(time.Second) {
		t.Error("the provider's stream was not cancelled within 1 s of the client leaving")
	}
	call := e2eCalls(g, 1)[0]
	// claude-haiku-4-5: a quarter of the bytes sent (model rewritten),
	// rounded up, as input tokens at $1/MTok.
	in := (len(up.RequestsTo("/v1/messages")[0].Body) + 3) / 4
	e2eWant(t, "call", call, map[string]any{"status": 499, "error_class": "CANCELLED", "attempts": 1,
		"input_tokens": in, "output_tokens": 0, "usage_source": "estimated"})
	if c := e2eCost(t, call); !e2eNear(c, float64(in)*1e-6) {
		t.Errorf("cost %v, want %v (the estimated prompt)", c, float64(in)*1e-6)
	}
	e2eCheckTriple(g, call)
}

// Which first events are worth another attempt.
func TestTransientStreamError(t *testing.T) {
	for _, c := range []struct {
		prov, name, data, want string
	}{
		{shapeAnthropic, "error", `{"type":"error","error":{"details":null,"type":"overloaded_error","message":"Overloaded"}}`, "overloaded_error"},
		{shapeAnthropic, "", `{"type":"error","error":{"type":"api_error","message":"Internal server error"}}`, "api_error"},
		{shapeAnthropic, "error", `{"type":"error","error":{"type":"timeout_error","message":"Request timed out"}}`, "timeout_error"},
		{shapeAnthropic, "error", `{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long"}}`, ""},
		{shapeAnthropic, "message_start", `{"type":"message_start","message":{"error":{"type":"api_error"}}}`, ""},
		{shapeAnthropic, "", `{"type":"message_start","error":{"type":"api_error"}}`, ""},
		{shapeOpenAI, "", `{"error":{"message":"The server had an error","type":"server_error","param":null,"code":null}}`, "server_error"},
		{shapeOpenAI, "", `{"error":{"message":"bad","type":"invalid_request_error"}}`, ""},
		{shapeOpenAI, "", `{"id":"chatcmpl-1","choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}`, ""},
	} {
		o := streamObserver{format: formatChat} // as startStream reads the first event
		if c.prov == shapeAnthropic {
			o.format = formatMessages
		}
		o.observe(sse.Event{Name: c.name, Data: []byte(c.data)})
		got, ok := o.upstreamErr()
		if !ok || !retryableStreamError(got) {
			got = ""
		}
		if got != c.want {
			t.Errorf("%s %q %s: %q, want %q", c.prov, c.name, c.data, got, c.want)
		}
	}
}

// A provider stream that ends cleanly inside an event: the fragment is
// never relayed (it would corrupt the client's framing, or end its answer
// without an error). Before the first event that is a stream that never
// began (retried); later, the answer ends with the gateway's error event
// on a clean boundary. A whole last event sent without its blank line is
// relayed as sent.
func TestE2EStreamEndingInsideAnEvent(t *testing.T) {
	g, up := e2eSetup(t, "")
	_, tok := e2eKey(g, "fragment")
	body := `{"model":"haiku","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"Hi."}]}`

	t.Run("before the first event", func(t *testing.T) {
		g := e2eIn(g, t)
		up.Reset()
		frag := fakeupstream.AnthropicTextStream("claude-haiku-4-5", "unused")
		frag.Events = []string{"event: message_start\ndata: {\"type\":\"mess"}
		up.Enqueue("/v1/messages", frag, fakeupstream.AnthropicTextStream("claude-haiku-4-5", "hello there"))
		resp := g.post("/v1/messages", tok, body, e2eAnthropicHdr...)
		evs := e2eReadSSE(t, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || len(evs) == 0 || evs[0].Name != "message_start" || evs[len(evs)-1].Name != "message_stop" {
			t.Errorf("client got %d %+v, want the second attempt's whole stream", resp.StatusCode, evs)
		}
		e2eWant(t, "call", e2eCalls(g, 1)[0], map[string]any{"attempts": 2, "status": 200, "error_class": nil})
	})

	t.Run("mid-stream, real SDK", func(t *testing.T) {
		g := e2eIn(g, t)
		up.Reset()
		r := fakeupstream.AnthropicTextStream("claude-haiku-4-5", "alpha beta gamma")
		r.Events = append(r.Events[:3:3], "dat") // message_start, content_block_start, a delta, then a fragment
		up.Enqueue("/v1/messages", r)
		client := e2eAnthropicClient(g, tok)
		s := client.Messages.NewStreaming(context.Background(), anthropic.MessageNewParams{
			Model: "haiku", MaxTokens: 64,
			Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("Hi."))},
		})
		n := 0
		for s.Next() {
			n++
		}
		if err := s.Err(); err == nil || !strings.Contains(err.Error(), interruptedMsg) {
			t.Errorf("after %d events the SDK reported %v; want the interruption, not a silently short answer", n, err)
		}
		e2eWant(t, "call", e2eCalls(g, 2)[1], map[string]any{"attempts": 1, "status": 200, "error_class": "STREAM_INTERRUPTED"})

		up.Enqueue("/v1/messages", r)
		resp := g.post("/v1/messages", tok, body, e2eAnthropicHdr...)
		raw := e2eRead(t, resp)
		if want := strings.Join(r.Events[:3], "") + "event: error\n"; !strings.HasPrefix(raw, want) {
			t.Errorf("client got %q, want the three whole events then the error event", raw)
		}

		// The third event whole but without its blank line, or without any
		// line break: relayed as sent, and the error event still starts on
		// a fresh event.
		whole := r.Events[2]
		for _, cut := range []string{"\n", "\n\n"} {
			r.Events = append(r.Events[:2:2], strings.TrimSuffix(whole, cut))
			up.Enqueue("/v1/messages", r)
			resp = g.post("/v1/messages", tok, body, e2eAnthropicHdr...)
			evs := e2eReadSSE(t, resp.Body)
			resp.Body.Close()
			if len(evs) != 4 || evs[2].Name != "content_block_delta" || !strings.HasSuffix(evs[2].Data, "}") ||
				evs[3].Name != "error" || !strings.Contains(evs[3].Data, interruptedMsg) {
				t.Errorf("last event cut of %q: client got %+v, want three events and the error event", cut, evs)
			}
		}
	})

	t.Run("whole last event without its blank line", func(t *testing.T) {
		g := e2eIn(g, t)
		up.Reset()
		r := fakeupstream.OpenAITextStream("gpt-5-nano", "Hi there!", 30, true)
		last := len(r.Events) - 1
		r.Events[last] = strings.TrimSuffix(r.Events[last], "\n") // "data: [DONE]\n"
		up.Enqueue("/v1/chat/completions", r)
		resp := g.post("/v1/chat/completions", tok, `{"model":"nano","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"Hi."}]}`)
		if got, want := e2eRead(t, resp), strings.Join(r.Events, ""); got != want {
			t.Errorf("client got\n%q\nwant the provider's bytes\n%q", got, want)
		}
		e2eWant(t, "call", e2eCalls(g, 6)[5], map[string]any{"attempts": 1, "status": 200, "error_class": nil, "input_tokens": 30})
	})
}

// An OpenAI stream that answered (its role chunk, after a model's
// reasoning) and then failed is not an error-only stream: the provider
// worked on the prompt, so the prompt is estimated; and it is not retried.
func TestE2EStreamFailingAfterItsFirstChunk(t *testing.T) {
	g, up := e2eSetup(t, "")
	_, tok := e2eKey(g, "late-error")
	r := fakeupstream.OpenAITextStream("gpt-5-nano", "unused", 30, true)
	r.Events = []string{r.Events[0], "data: {\"error\":{\"message\":\"The server had an error\",\"type\":\"server_error\",\"param\":null,\"code\":null}}\n\n"}
	up.Enqueue("/v1/chat/completions", r)
	resp := g.post("/v1/chat/completions", tok, `{"model":"nano","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"Hi."}]}`)
	if got, want := e2eRead(t, resp), strings.Join(r.Events, ""); got != want {
		t.Errorf("client got %q, want the provider's bytes %q", got, want)
	}
	if n := up.Count("/v1/chat/completions"); n != 1 {
		t.Errorf("upstream saw %d requests, want 1", n)
	}
	call := e2eCalls(g, 1)[0]
	e2eWant(t, "call", call, map[string]any{"attempts": 1, "status": 200, "error_class": "UPSTREAM_ERROR", "usage_source": "estimated"})
	if num(call, "input_tokens") <= 0 {
		t.Errorf("input_tokens %v: the prompt the provider worked on is not counted", call["input_tokens"])
	}
}
