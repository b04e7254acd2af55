package metis

// End-to-end retry behaviour: what a client sees and what the trace records
// when the provider rate-limits, is overloaded, refuses, is unreachable or
// cuts a stream.

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/metisgateway/metis/internal/fakeupstream"
)

const (
	e2eHaikuBody = `{"model":"haiku","max_tokens":64,"messages":[{"role":"user","content":"Say hello."}]}`
	e2eNanoBody  = `{"model":"nano","messages":[{"role":"user","content":"Say hello."}]}`
)

// A 429 with retry-after: 1 is retried after about a second; the client
// only ever sees the success.
func TestE2ERetry429HonoursRetryAfterThenSucceeds(t *testing.T) {
	g, up := e2eSetup(t, "")
	_, tok := e2eKey(g, "retry")
	rl := fakeupstream.AnthropicError(http.StatusTooManyRequests, "rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit")
	rl.Header.Set("Retry-After", "1")
	ok := fakeupstream.AnthropicMessage("claude-haiku-4-5", 100, "end_turn", fakeupstream.TextBlock("hello there"))
	up.Enqueue("/v1/messages", rl, ok)

	start := time.Now()
	resp := g.post("/v1/messages", tok, e2eHaikuBody, e2eAnthropicHdr...)
	body := e2eRead(t, resp)
	elapsed := time.Since(start)
	if resp.StatusCode != 200 || body != ok.Body {
		t.Fatalf("client got %d %s; want the successful answer", resp.StatusCode, body)
	}
	if elapsed < 950*time.Millisecond {
		t.Errorf("answered after %v: retry-after: 1 not honoured", elapsed)
	}
	reqs := up.RequestsTo("/v1/messages")
	if len(reqs) != 2 {
		t.Fatalf("upstream saw %d requests, want 2", len(reqs))
	}
	if gap := reqs[1].Time.Sub(reqs[0].Time); gap < 950*time.Millisecond {
		t.Errorf("retry sent %v after the 429, want ≥ 1s", gap)
	}
	if reqs[0].Body != reqs[1].Body || reqs[1].APIKey() != testAnthropicKey {
		t.Errorf("the retry differs from the first attempt: %q vs %q (key %q)", reqs[0].Body, reqs[1].Body, reqs[1].APIKey())
	}
	call := e2eCalls(g, 1)[0]
	e2eWant(t, "call", call, map[string]any{"attempts": 2, "status": 200, "error_class": nil, "input_tokens": 100, "output_tokens": 3})
	// claude-haiku-4-5: 100 × $1/MTok + 3 × $5/MTok = 0.0001 + 0.000015 = 0.000115
	if c := e2eCost(t, call); !e2eNear(c, 0.000115) {
		t.Errorf("cost %v, want 0.000115", c)
	}
	e2eCheckTriple(g, call)
}

// retry-after-ms wins over retry-after (seconds), as the SDKs do.
func TestE2ERetryAfterMsHonoured(t *testing.T) {
	g, up := e2eSetup(t, "")
	_, tok := e2eKey(g, "retry-ms")
	rl := fakeupstream.OpenAIError(http.StatusTooManyRequests, "requests", "rate_limit_exceeded", "Rate limit reached for gpt-5-nano on requests per min (RPM): Limit 3. Please try again in 200ms.")
	rl.Header.Set("Retry-After-Ms", "200")
	rl.Header.Set("Retry-After", "3")
	ok := fakeupstream.OpenAICompletion("gpt-5-nano", "Hi there!", 40)
	up.Enqueue("/v1/chat/completions", rl, ok)

	resp := g.post("/v1/chat/completions", tok, e2eNanoBody)
	body := e2eRead(t, resp)
	if resp.StatusCode != 200 || body != ok.Body {
		t.Fatalf("client got %d %s", resp.StatusCode, body)
	}
	reqs := up.RequestsTo("/v1/chat/completions")
	if len(reqs) != 2 {
		t.Fatalf("upstream saw %d requests, want 2", len(reqs))
	}
	gap := reqs[1].Time.Sub(reqs[0].Time)
	if gap < 195*time.Millisecond || gap >= 2500*time.Millisecond {
		t.Errorf("retry sent %v after the 429; want ≥ 200ms (retry-after-ms) and well under retry-after's 3s", gap)
	}
	call := e2eCalls(g, 1)[0]
	e2eWant(t, "call", call, map[string]any{"attempts": 2, "status": 200, "error_class": nil, "inbound_shape": "openai", "model": "gpt-5-nano"})
	// gpt-5-nano: 40 × $0.05/MTok + 3 × $0.40/MTok = 0.000002 + 0.0000012 = 0.0000032
	if c := e2eCost(t, call); !e2eNear(c, 0.0000032) {
		t.Errorf("cost %v, want 0.0000032", c)
	}
}

// 529 overloaded twice, then success: max_retries 2 means three attempts.
// Three 529s: the client gets the last one, unmodified.
func TestE2ERetryOverloaded529(t *testing.T) {
	g, up := e2eSetup(t, "")
	_, tok := e2eKey(g, "overloaded")
	ok := fakeupstream.AnthropicMessage("claude-haiku-4-5", 100, "end_turn", fakeupstream.TextBlock("hello there"))
	up.Enqueue("/v1/messages",
		fakeupstream.AnthropicError(529, "overloaded_error", "Overloaded"),
		fakeupstream.AnthropicError(529, "overloaded_error", "Overloaded"),
		ok)
	resp := g.post("/v1/messages", tok, e2eHaikuBody, e2eAnthropicHdr...)
	if body := e2eRead(t, resp); resp.StatusCode != 200 || body != ok.Body {
		t.Fatalf("client got %d %s", resp.StatusCode, body)
	}
	if n := up.Count("/v1/messages"); n != 3 {
		t.Errorf("upstream saw %d requests, want 3", n)
	}
	call := e2eCalls(g, 1)[0]
	e2eWant(t, "call", call, map[string]any{"attempts": 3, "status": 200, "error_class": nil})
	// Same answer as above: 0.000115.
	if c := e2eCost(t, call); !e2eNear(c, 0.000115) {
		t.Errorf("cost %v, want 0.000115", c)
	}

	// Retries exhausted: the third 529 goes back as the provider sent it.
	var last fakeupstream.Reply
	for i := range 3 {
		last = fakeupstream.AnthropicError(529, "overloaded_error", fmt.Sprintf("Overloaded (%d)", i))
		last.Header.Set("Retry-After-Ms", "5")
		up.Enqueue("/v1/messages", last)
	}
	resp = g.post("/v1/messages", tok, e2eHaikuBody, e2eAnthropicHdr...)
	body := e2eRead(t, resp)
	if resp.StatusCode != 529 || body != last.Body || resp.Header.Get("Request-Id") != last.Header.Get("Request-Id") {
		t.Errorf("after 3 × 529 the client got %d %s (request-id %q), want the last 529 unmodified (%s, %s)",
			resp.StatusCode, body, resp.Header.Get("Request-Id"), last.Body, last.Header.Get("Request-Id"))
	}
	if n := up.Count("/v1/messages"); n != 6 {
		t.Errorf("upstream saw %d requests in all, want 6", n)
	}
	call = e2eCalls(g, 2)[1]
	e2eWant(t, "exhausted call", call, map[string]any{"attempts": 3, "status": 529, "error_class": "UPSTREAM_ERROR"})
}

// A retry-after beyond max_retry_wait (5s in gatewayConfig) is not waited
// for: the 429 goes back at once, unmodified, in both shapes.
func TestE2ERetryAfterBeyondMaxWaitReturnedUnmodified(t *testing.T) {
	g, up := e2eSetup(t, "")
	_, tok := e2eKey(g, "impatient")
	cases := []struct {
		path, body, idHeader string
		reply                fakeupstream.Reply
		hdr                  []string
	}{
		{"/v1/messages", e2eHaikuBody, "Request-Id",
			fakeupstream.AnthropicError(429, "rate_limit_error", "This request would exceed your organization's rate limit of 50,000 input tokens per minute."),
			e2eAnthropicHdr},
		{"/v1/chat/completions", e2eNanoBody, "X-Request-Id",
			fakeupstream.OpenAIError(429, "tokens", "rate_limit_exceeded", "Rate limit reached for gpt-5-nano on tokens per min (TPM): Limit 30000. Please try again in 60s."),
			nil},
	}
	for i, c := range cases {
		c.reply.Header.Set("Retry-After", "60")
		c.reply.Header.Set("X-Should-Retry", "true")
		up.Enqueue(c.path, c.reply, fakeupstream.AnthropicMessage("claude-haiku-4-5", 1, "end_turn", fakeupstream.TextBlock("retried")))
		start := time.Now()
		resp := g.post(c.path, tok, c.body, c.hdr...)
		body := e2eRead(t, resp)
		if elapsed := time.Since(start); elapsed > 3*time.Second {
			t.Errorf("%s: answered after %v; a retry-after over max_retry_wait must not be waited for", c.path, elapsed)
		}
		if resp.StatusCode != 429 || body != c.reply.Body {
			t.Errorf("%s: client got %d %s, want the provider's 429 byte for byte: %s", c.path, resp.StatusCode, body, c.reply.Body)
		}
		if ra := resp.Header.Get("Retry-After"); ra != "60" {
			t.Errorf("%s: retry-after %q, want 60", c.path, ra)
		}
		if id := resp.Header.Get(c.idHeader); id == "" || id != c.reply.Header.Get(c.idHeader) {
			t.Errorf("%s: %s %q, want the provider's %q", c.path, c.idHeader, id, c.reply.Header.Get(c.idHeader))
		}
		if n := up.Count(c.path); n != 1 {
			t.Errorf("%s: upstream saw %d requests, want 1", c.path, n)
		}
		call := e2eCalls(g, i+1)[i]
		e2eWant(t, c.path, call, map[string]any{"attempts": 1, "status": 429, "error_class": "RATE_LIMITED"})
		if id := c.reply.Header.Get(c.idHeader); call["upstream_request_id"] != id {
			t.Errorf("%s: upstream_request_id %v, want %s", c.path, call["upstream_request_id"], id)
		}
	}
}

// A 400 is the caller's fault: never retried, relayed unmodified.
func TestE2ENoRetryOn400(t *testing.T) {
	g, up := e2eSetup(t, "")
	_, tok := e2eKey(g, "bad-request")
	cases := []struct {
		path, body string
		reply      fakeupstream.Reply
		hdr        []string
	}{
		{"/v1/messages", e2eHaikuBody,
			fakeupstream.AnthropicError(400, "invalid_request_error", "messages: roles must alternate between \"user\" and \"assistant\""), e2eAnthropicHdr},
		{"/v1/chat/completions", `{"model":"nano","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`,
			fakeupstream.FromFixture(fakeupstream.FixtureOpenAIError400, 0), nil},
	}
	for i, c := range cases {
		// A success queued behind the 400 would show a retry.
		up.Enqueue(c.path, c.reply, fakeupstream.AnthropicMessage("claude-haiku-4-5", 1, "end_turn", fakeupstream.TextBlock("retried")))
		resp := g.post(c.path, tok, c.body, c.hdr...)
		if body := e2eRead(t, resp); resp.StatusCode != 400 || body != c.reply.Body {
			t.Errorf("%s: client got %d %s, want the provider's 400 unmodified", c.path, resp.StatusCode, body)
		}
		if n := up.Count(c.path); n != 1 {
			t.Errorf("%s: a 400 was retried: upstream saw %d requests", c.path, n)
		}
		call := e2eCalls(g, i+1)[i]
		e2eWant(t, c.path, call, map[string]any{"attempts": 1, "status": 400, "error_class": "UPSTREAM_ERROR"})
	}
}

// A provider nobody listens for: max_retries+1 attempts, then a 502 in the
// caller's shape.
func TestE2EUnreachableProvider(t *testing.T) {
	closedA, closedO := freePort(t), freePort(t)
	g := startGateway(t, fmt.Sprintf(`db %s
		provider anthropic {
			api_key {env.METIS_TEST_ANTHROPIC_KEY}
			base_url http://127.0.0.1:%d
			max_retries 2
			max_retry_wait 5s
		}
		provider openai {
			api_key {env.METIS_TEST_OPENAI_KEY}
			base_url http://127.0.0.1:%d/v1
			max_retries 1
		}
		alias haiku anthropic:claude-haiku-4-5
		alias nano openai:gpt-5-nano`, tempDB(t), closedA, closedO))
	_, tok := e2eKey(g, "unreachable")

	start := time.Now()
	resp := g.post("/v1/messages", tok, e2eHaikuBody, e2eAnthropicHdr...)
	body := e2eJSON(t, e2eRead(t, resp))
	// Two backoffs of at least 375ms and 750ms.
	if el := time.Since(start); el < time.Second {
		t.Errorf("gave up after %v: the retries did not back off", el)
	}
	if resp.StatusCode != http.StatusBadGateway || body["type"] != "error" || e2ePath(body, "error", "type") != "api_error" ||
		e2ePath(body, "error", "message") == "" {
		t.Errorf("anthropic shape: %d %v, want 502 {type:error, error:{type:api_error, message}}", resp.StatusCode, body)
	}
	call := e2eCalls(g, 1)[0]
	e2eWant(t, "anthropic call", call, map[string]any{"attempts": 3, "status": 502, "error_class": "UPSTREAM_UNREACHABLE"})

	resp = g.post("/v1/chat/completions", tok, e2eNanoBody)
	body = e2eJSON(t, e2eRead(t, resp))
	if resp.StatusCode != http.StatusBadGateway || e2ePath(body, "error", "message") == "" || body["type"] != nil {
		t.Errorf("openai shape: %d %v, want 502 {error:{message,type,code}}", resp.StatusCode, body)
	}
	call = e2eCalls(g, 2)[1]
	e2eWant(t, "openai call", call, map[string]any{"attempts": 2, "status": 502, "error_class": "UPSTREAM_UNREACHABLE", "inbound_shape": "openai"})
}

// Once the first byte has gone to the client nothing is retried: a stream
// cut mid-way ends with an error event in the client's shape, and the call
// is recorded with the usage known so far.
func TestE2EStreamCutMidwayNotRetried(t *testing.T) {
	g, up := e2eSetup(t, "")
	_, tok := e2eKey(g, "cut")
	// Events: message_start (input 1000, output 1), content_block_start,
	// text_delta "alpha beta", ping | cut here.
	cut := func() fakeupstream.Reply {
		r := fakeupstream.AnthropicStream("claude-haiku-4-5", 1000, "end_turn", fakeupstream.TextBlock("alpha beta gamma delta epsilon zeta"))
		r.DieAfter = 4
		return r
	}
	// Known so far: input 1000 from message_start; output estimated from the
	// 10 streamed bytes, (10+3)/4 = 3 tokens. claude-haiku-4-5:
	// 1000 × $1/MTok + 3 × $5/MTok = 0.001 + 0.000015 = 0.001015.
	const wantCost = 0.001015

	t.Run("anthropic", func(t *testing.T) {
		g := e2eIn(g, t)
		up.Reset()
		up.Enqueue("/v1/messages", cut(), fakeupstream.AnthropicTextStream("claude-haiku-4-5", "a retry"))
		resp := g.post("/v1/messages", tok, `{"model":"haiku","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"Count."}]}`, e2eAnthropicHdr...)
		evs := e2eReadSSE(t, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || len(evs) < 2 {
			t.Fatalf("status %d, events %v", resp.StatusCode, evs)
		}
		lastEv := evs[len(evs)-1]
		if lastEv.Name != "error" || e2ePath(e2eJSON(t, lastEv.Data), "type") != "error" ||
			e2ePath(e2eJSON(t, lastEv.Data), "error", "type") != "api_error" ||
			e2ePath(e2eJSON(t, lastEv.Data), "error", "message") != interruptedMsg {
			t.Errorf("stream ended with %+v, want an Anthropic `event: error` of type api_error saying %q", lastEv, interruptedMsg)
		}
		var names []string
		for _, e := range evs[:len(evs)-1] {
			names = append(names, e.Name)
		}
		if got := strings.Join(names, ","); got != "message_start,content_block_start,content_block_delta,ping" {
			t.Errorf("events before the error: %s", got)
		}
		if n := up.Count("/v1/messages"); n != 1 {
			t.Errorf("a stream cut after its first byte was retried: %d upstream requests", n)
		}
		call := e2eCalls(g, 1)[0]
		e2eWant(t, "call", call, map[string]any{"status": 200, "error_class": "STREAM_INTERRUPTED", "attempts": 1,
			"input_tokens": 1000, "output_tokens": 3, "usage_source": "estimated", "stream": true})
		if c := e2eCost(t, call); !e2eNear(c, wantCost) {
			t.Errorf("cost %v, want %v", c, wantCost)
		}
	})

	// A non-streamed answer cut mid-body: nothing reached the client, which
	// gets a 502 in its shape that names no socket (the log has the cause).
	t.Run("anthropic non-streamed", func(t *testing.T) {
		g := e2eIn(g, t)
		up.Reset()
		r := fakeupstream.AnthropicMessage("claude-haiku-4-5", 1000, "end_turn", fakeupstream.TextBlock("alpha beta"))
		r.DieAfter = 40
		up.Enqueue("/v1/messages", r)
		resp := g.post("/v1/messages", tok, `{"model":"haiku","max_tokens":64,"messages":[{"role":"user","content":"Count."}]}`, e2eAnthropicHdr...)
		body := e2eJSON(t, e2eRead(t, resp))
		if msg := e2ePath(body, "error", "message"); resp.StatusCode != http.StatusBadGateway || e2ePath(body, "error", "type") != "api_error" ||
			msg != "the answer of provider anthropic was interrupted" {
			t.Errorf("%d %v, want 502 api_error saying only that the answer was interrupted", resp.StatusCode, body)
		}
		e2eWant(t, "call", e2eCalls(g, 2)[1], map[string]any{"status": 502, "error_class": "STREAM_INTERRUPTED", "attempts": 1, "stream": false})
	})

	t.Run("openai-client-anthropic-model", func(t *testing.T) {
		g := e2eIn(g, t)
		up.Reset()
		up.Enqueue("/v1/messages", cut(), fakeupstream.AnthropicTextStream("claude-haiku-4-5", "a retry"))
		resp := g.post("/v1/chat/completions", tok, `{"model":"haiku","stream":true,"messages":[{"role":"user","content":"Count."}]}`)
		evs := e2eReadSSE(t, resp.Body)
		resp.Body.Close()
		e2eCheckOpenAIStreamError(t, resp, evs)
		if n := up.Count("/v1/messages"); n != 1 {
			t.Errorf("retried: %d upstream requests", n)
		}
		call := e2eCalls(g, 3)[2]
		e2eWant(t, "call", call, map[string]any{"status": 200, "error_class": "STREAM_INTERRUPTED", "attempts": 1, "inbound_shape": "openai",
			"input_tokens": 1000, "output_tokens": 3, "usage_source": "estimated"})
		if c := e2eCost(t, call); !e2eNear(c, wantCost) {
			t.Errorf("cost %v, want %v", c, wantCost)
		}
	})

	t.Run("openai", func(t *testing.T) {
		g := e2eIn(g, t)
		up.Reset()
		// Chunks: role, "one two" | cut; the usage chunk never comes.
		r := fakeupstream.OpenAITextStream("gpt-5-nano", "one two three four five six", 30, true)
		r.DieAfter = 2
		up.Enqueue("/v1/chat/completions", r, fakeupstream.OpenAITextStream("gpt-5-nano", "a retry", 30, true))
		resp := g.post("/v1/chat/completions", tok, `{"model":"nano","stream":true,"messages":[{"role":"user","content":"Count to six."}]}`)
		evs := e2eReadSSE(t, resp.Body)
		resp.Body.Close()
		e2eCheckOpenAIStreamError(t, resp, evs)
		if n := up.Count("/v1/chat/completions"); n != 1 {
			t.Errorf("retried: %d upstream requests", n)
		}
		call := e2eCalls(g, 4)[3]
		e2eWant(t, "call", call, map[string]any{"status": 200, "error_class": "STREAM_INTERRUPTED", "attempts": 1,
			"output_tokens": 2, "usage_source": "estimated"})
		// OpenAI streams report no input before the usage chunk, yet the
		// provider bills the prompt: the gateway must estimate it rather
		// than record 0 input tokens.
		if in := num(call, "input_tokens"); in <= 0 {
			t.Errorf("input_tokens %d for an interrupted OpenAI stream: the prompt that was sent is not counted", in)
		}
		e2eCost(t, call)
	})
}

// interruptedMsg is all a client is told of a provider stream that broke
// off: the cause names sockets and hosts, which are the operator's to read
// in the log.
const interruptedMsg = "the provider's stream was interrupted"

// e2eCheckOpenAIStreamError checks an OpenAI-shape stream that ends with
// a `data: {"error":…}` chunk and no [DONE] before it.
func e2eCheckOpenAIStreamError(t *testing.T, resp *http.Response, evs []e2eSSE) {
	t.Helper()
	if resp.StatusCode != 200 || len(evs) < 2 {
		t.Fatalf("status %d, events %v", resp.StatusCode, evs)
	}
	lastEv := evs[len(evs)-1]
	if lastEv.Name != "" || lastEv.Data == "[DONE]" || e2ePath(e2eJSON(t, lastEv.Data), "error", "type") != "server_error" ||
		e2ePath(e2eJSON(t, lastEv.Data), "error", "message") != interruptedMsg {
		t.Errorf("stream ended with %+v, want data: {\"error\":{type: server_error, message: %q}}", lastEv, interruptedMsg)
	}
	for _, e := range evs[:len(evs)-1] {
		if e.Data == "[DONE]" {
			t.Errorf("[DONE] sent before the error: an OpenAI client would stop reading there")
		}
	}
	if !strings.Contains(evs[0].Data, "chat.completion.chunk") {
		t.Errorf("first event %q is not a chunk", evs[0].Data)
	}
}

// A 429 that says the account is out of credit (OpenAI's
// insufficient_quota, z.ai's "Insufficient balance", code 1113) is not
// retried: waiting does not mend it, and every retry is one more request
// the vendor counts.
func TestE2ENoRetryWhenOutOfCredit(t *testing.T) {
	up := fakeupstream.New(t)
	g := startGateway(t, gatewayConfig(tempDB(t), up.URL, fmt.Sprintf(`
		provider glm anthropic {
			base_url %s/glm
		}
		alias glm glm:glm-4.6`, up.URL)))
	_, tok := e2eKey(g, "broke")
	cases := []struct {
		path, upPath, body string
		reply              fakeupstream.Reply
		hdr                []string
	}{
		{"/v1/chat/completions", "/v1/chat/completions", `{"model":"nano","messages":[{"role":"user","content":"hi"}]}`,
			fakeupstream.OpenAIError(429, "insufficient_quota", "insufficient_quota", "You exceeded your current quota"), nil},
		{"/v1/messages", "/glm/v1/messages", `{"model":"glm","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`,
			fakeupstream.Reply{Status: 429, Body: `{"error":{"code":"1113","message":"Insufficient balance or no resource package. Please recharge."}}`}, e2eAnthropicHdr},
	}
	for i, c := range cases {
		up.Enqueue(c.upPath, c.reply, fakeupstream.AnthropicMessage("glm-4.6", 1, "end_turn", fakeupstream.TextBlock("retried")))
		resp := g.post(c.path, tok, c.body, c.hdr...)
		if body := e2eRead(t, resp); resp.StatusCode != 429 || body != c.reply.Body {
			t.Errorf("%s: client got %d %s, want the provider's 429 as sent", c.upPath, resp.StatusCode, body)
		}
		if n := up.Count(c.upPath); n != 1 {
			t.Errorf("%s: upstream saw %d requests, want 1", c.upPath, n)
		}
		e2eWant(t, c.upPath, e2eCalls(g, i+1)[i], map[string]any{"attempts": 1, "status": 429})
	}
}

// A client that leaves while the gateway waits out a provider's
// retry-after (the AI SDK's abortSignal, a timeout) is recorded with the
// provider's last word: its 429 billed nothing, so the zero usage is exact,
// not an estimate, and its request id is the operator's handle on the call
// (audit 13V).
func TestE2ECancelDuringRetryWait(t *testing.T) {
	g, up := e2eSetup(t, "")
	_, tok := e2eKey(g, "retry-cancel")
	rl := fakeupstream.AnthropicError(http.StatusTooManyRequests, "rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit")
	rl.Header.Set("Retry-After", "3")
	up.Enqueue("/v1/messages", rl)
	ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
	defer cancel()
	if resp, err := e2ePostCtx(ctx, g, "/v1/messages", tok, e2eHaikuBody, e2eAnthropicHdr...); err == nil {
		t.Fatalf("the request was answered (%d: %s) before the client gave up", resp.StatusCode, e2eRead(t, resp))
	}
	call := e2eCalls(g, 1)[0]
	if n := up.Count("/v1/messages"); n != 1 {
		t.Fatalf("upstream saw %d requests, want 1 (the client left during the retry wait)", n)
	}
	e2eWant(t, "call", call, map[string]any{"status": 499, "error_class": "CANCELLED", "attempts": 1,
		"input_tokens": 0, "output_tokens": 0, "usage_source": "provider"})
	if got, want := call["upstream_request_id"], rl.Header.Get("Request-Id"); got != want || want == "" {
		t.Errorf("upstream_request_id %q, want the 429's %q", got, want)
	}
}
