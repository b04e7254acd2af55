package metis

// The gateway against OpenAI-compatible servers the project did not write
// (audit 22U): @dwmkerr/mock-llm 0.1.29 from npm, whose answers carry no
// usage at all, and servers whose answers hold members of an unexpected
// JSON type. Each upstream below sends what that server sent on the wire.

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/metisgateway/metis/internal/fakeupstream"
	"github.com/metisgateway/metis/ir"
)

// mockLLMUpstream answers every Chat Completions request the way
// @dwmkerr/mock-llm 0.1.29 does with its README's rule: a non-streamed
// answer is the rule's JSON as sent (no usage, no created); a streamed one
// is content chunks of chunkSize characters, the last with finish_reason
// "stop", then [DONE], never a usage chunk (include_usage is ignored).
func mockLLMUpstream(t *testing.T, text string) *testGateway {
	t.Helper()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Model  string `json:"model"`
			Stream bool   `json:"stream"`
		}
		b, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(b, &req)
		if !req.Stream {
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
			fmt.Fprintf(w, `{"id":"chatcmpl-1795896637776","object":"chat.completion","model":%q,"choices":[{"message":{"role":"assistant","content":%q},"finish_reason":"stop"}]}`, req.Model, text)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-cache")
		const chunkSize = 10
		for i := 0; i < len(text); i += chunkSize {
			part := text[i:min(i+chunkSize, len(text))]
			delta := map[string]any{"content": part}
			if i == 0 {
				delta["role"] = "assistant"
			}
			var finish any
			if i+chunkSize >= len(text) {
				finish = "stop"
			}
			j, _ := json.Marshal(map[string]any{"id": "chatcmpl-1795896637790", "object": "chat.completion.chunk", "model": req.Model,
				"choices": []any{map[string]any{"index": 0, "delta": delta, "finish_reason": finish}}})
			fmt.Fprintf(w, "data: %s\n\n", j)
			w.(http.Flusher).Flush()
		}
		_, _ = io.WriteString(w, "data: [DONE]\n\n")
	}))
	t.Cleanup(up.Close)
	return startGateway(t, gatewayConfig(tempDB(t), up.URL, ""))
}

// A compatible server that reports no usage (mock-llm) has its calls priced
// on the gateway's estimate. The estimate of a non-streamed answer is a
// quarter of the whole response body, JSON scaffolding included (id,
// object, model, choices, message, finish_reason), while the same answer
// streamed is estimated from its text alone, and the Anthropic client of a
// translated call is told the text's estimate too. Measured against
// mock-llm with the answer "Hello there" (11 bytes): the trace recorded 43
// output tokens non-streamed, 3 streamed, and an Anthropic client was told
// 2 for the call the trace recorded at 43. On gpt-5-nano ($0.40/MTok out)
// that is 43 × $0.40/MTok = $0.0000172 recorded for output where
// 3 × $0.40/MTok = $0.0000012 (the streamed call's figure) is the estimate;
// on a pretty-printed body or a tool call the scaffolding grows further.
// The estimate the client is told should be the one recorded, and a
// non-streamed answer should be estimated like the same answer streamed.
func TestThirdPartyNoUsageNonStreamEstimate(t *testing.T) {
	const text = "Hello there"
	g := mockLLMUpstream(t, text)
	_, tok := e2eKey(g, "mockllm")

	// Streamed, same shape: the estimate of the answer's text.
	resp := g.post("/v1/chat/completions", tok, `{"model":"nano","stream":true,"messages":[{"role":"user","content":"Hello there"}]}`)
	if body := e2eRead(t, resp); resp.StatusCode != 200 || !strings.Contains(body, "[DONE]") {
		t.Fatalf("streamed: %d %s", resp.StatusCode, body)
	}
	streamed := e2eCalls(g, 1)[0]
	e2eWant(t, "streamed", streamed, map[string]any{"usage_source": "estimated", "status": 200})

	// Not streamed, same shape: the same answer.
	resp = g.post("/v1/chat/completions", tok, `{"model":"nano","messages":[{"role":"user","content":"Hello there"}]}`)
	if body := e2eRead(t, resp); resp.StatusCode != 200 || !strings.Contains(body, text) {
		t.Fatalf("non-streamed: %d %s", resp.StatusCode, body)
	}
	plain := e2eCalls(g, 2)[1]
	e2eWant(t, "non-streamed", plain, map[string]any{"usage_source": "estimated", "status": 200})
	if plain["output_tokens"] != streamed["output_tokens"] {
		t.Errorf("the same %d-byte answer was recorded as %v output tokens non-streamed and %v streamed; want the same estimate (of the answer, not of its JSON envelope)",
			len(text), plain["output_tokens"], streamed["output_tokens"])
	}

	// Not streamed, Anthropic client (translated): the usage it is told is
	// the usage recorded.
	resp = g.post("/v1/messages", tok, `{"model":"nano","max_tokens":64,"messages":[{"role":"user","content":"Hello there"}]}`, e2eAnthropicHdr...)
	body := e2eRead(t, resp)
	if resp.StatusCode != 200 {
		t.Fatalf("translated: %d %s", resp.StatusCode, body)
	}
	told := e2eJSON(t, body)
	cross := e2eCalls(g, 3)[2]
	if o := e2ePath(told, "usage", "output_tokens"); o != cross["output_tokens"] {
		t.Errorf("translated: the Anthropic client was told %v output tokens, the trace recorded %v (priced at $%v)", o, cross["output_tokens"], cross["cost_usd"])
	}
	if i := e2ePath(told, "usage", "input_tokens"); i != cross["input_tokens"] {
		t.Errorf("translated: the Anthropic client was told %v input tokens, the trace recorded %v", i, cross["input_tokens"])
	}
}

// oddTypedAnswer is an upstream whose non-streamed answer, and streamed
// chunks, carry one member in a JSON type OpenAI does not use (a float or
// string "created", a numeric "id"), as hand-written compatible servers
// and mock-llm rules do; the usage is there (10 in, 5 out).
func oddTypedAnswer(t *testing.T, member, value string) *testGateway {
	t.Helper()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fields := map[string]string{"id": `"chatcmpl-odd"`, "created": "1700000000"}
		fields[member] = value
		if strings.Contains(string(b), `"stream":true`) {
			w.Header().Set("Content-Type", "text/event-stream")
			fmt.Fprintf(w, `data: {"id":%s,"object":"chat.completion.chunk","created":%s,"model":"gpt-5-nano","choices":[{"index":0,"delta":{"role":"assistant","content":"An answer."},"finish_reason":null}]}`+"\n\n", fields["id"], fields["created"])
			fmt.Fprintf(w, `data: {"id":%s,"object":"chat.completion.chunk","created":%s,"model":"gpt-5-nano","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}`+"\n\n", fields["id"], fields["created"])
			fmt.Fprintf(w, `data: {"id":%s,"object":"chat.completion.chunk","created":%s,"model":"gpt-5-nano","choices":[],"usage":{"prompt_tokens":10,"completion_tokens":5,"total_tokens":15}}`+"\n\ndata: [DONE]\n\n", fields["id"], fields["created"])
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"id":%s,"object":"chat.completion","created":%s,"model":"gpt-5-nano","choices":[{"index":0,"message":{"role":"assistant","content":"An answer."},"finish_reason":"stop"}],"usage":{"prompt_tokens":10,"completion_tokens":5,"total_tokens":15}}`,
			fields["id"], fields["created"])
	}))
	t.Cleanup(up.Close)
	return startGateway(t, gatewayConfig(tempDB(t), up.URL, ""))
}

// An Anthropic client on an OpenAI-compatible model gets a 502 ("decoding
// OpenAI response: json: cannot unmarshal number 1700000000.25 into Go
// struct field inResponse.created of type int64") when the server's
// non-streamed answer has a "created" that is not an integer, or an "id"
// that is not a string: members the Anthropic answer does not need
// (LOSSY.md #27 falls back to the request time for created). A numeric
// "id" also ends a translated stream at its first chunk with an error event
// saying "the provider's stream was interrupted", recorded
// STREAM_INTERRUPTED. A streamed "created" of either type is translated,
// the official SDKs read it (openai-go
// v3.98.0 directly against the server: no error), and the trace records
// the call as BAD_UPSTREAM_RESPONSE yet priced from its usage, so the
// developer is billed for an answer the gateway threw away.
func TestThirdPartyOddTypedMembersCrossShape(t *testing.T) {
	for _, tc := range []struct{ member, value string }{
		{"created", "1700000000.25"},
		{"created", `"1700000000"`},
		{"id", "12345"},
	} {
		t.Run(tc.member+"="+tc.value, func(t *testing.T) {
			g := oddTypedAnswer(t, tc.member, tc.value)
			_, tok := e2eKey(g, "oddtype")
			// Streamed.
			resp := g.post("/v1/messages", tok, `{"model":"nano","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"hi"}]}`, e2eAnthropicHdr...)
			if body := e2eRead(t, resp); resp.StatusCode != 200 || !strings.Contains(body, "An answer.") || !strings.Contains(body, "message_stop") {
				t.Errorf("streamed: client got %d %.300s; want the translated answer", resp.StatusCode, body)
			}
			e2eWant(t, "streamed", e2eCalls(g, 1)[0], map[string]any{"status": 200, "error_class": nil, "usage_source": "provider", "input_tokens": 10, "output_tokens": 5})
			// Not streamed: the same answer.
			resp = g.post("/v1/messages", tok, `{"model":"nano","max_tokens":64,"messages":[{"role":"user","content":"hi"}]}`, e2eAnthropicHdr...)
			body := e2eRead(t, resp)
			if resp.StatusCode != 200 || !strings.Contains(body, "An answer.") {
				t.Errorf("non-streamed: client got %d %.300s; want the translated answer, as streamed", resp.StatusCode, body)
			}
			call := e2eCalls(g, 2)[1]
			// 10 × $0.05/MTok + 5 × $0.40/MTok = $0.0000005 + $0.000002 = $0.0000025
			e2eWant(t, "non-streamed", call, map[string]any{"status": 200, "error_class": nil, "usage_source": "provider", "input_tokens": 10, "output_tokens": 5})
			if c := e2eCost(t, call); !e2eNear(c, 0.0000025) {
				t.Errorf("non-streamed: cost_usd %v, want 0.0000025", c)
			}
		})
	}
}

// usageShapedUpstream answers "An answer of some length here." (30 bytes)
// with the given usage member, non-streamed, or streamed with it in a final
// usage chunk (choices []) before [DONE].
func usageShapedUpstream(t *testing.T, usage string) *testGateway {
	t.Helper()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if strings.Contains(string(b), `"stream":true`) {
			w.Header().Set("Content-Type", "text/event-stream")
			_, _ = io.WriteString(w, `data: {"id":"c1","object":"chat.completion.chunk","created":1700000000,"model":"gpt-5-nano","choices":[{"index":0,"delta":{"role":"assistant","content":"An answer of some length here."},"finish_reason":null}]}`+"\n\n")
			_, _ = io.WriteString(w, `data: {"id":"c1","object":"chat.completion.chunk","created":1700000000,"model":"gpt-5-nano","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}`+"\n\n")
			fmt.Fprintf(w, `data: {"id":"c1","object":"chat.completion.chunk","created":1700000000,"model":"gpt-5-nano","choices":[],"usage":%s}`+"\n\ndata: [DONE]\n\n", usage)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"id":"c1","object":"chat.completion","created":1700000000,"model":"gpt-5-nano","choices":[{"index":0,"message":{"role":"assistant","content":"An answer of some length here."},"finish_reason":"stop"}],"usage":%s}`, usage)
	}))
	t.Cleanup(up.Close)
	return startGateway(t, gatewayConfig(tempDB(t), up.URL, ""))
}

// A compatible server whose usage object lacks the counts ("usage": {} as
// some mock and proxy rules write it, or only "total_tokens") has its
// successful, priced call recorded at cost_usd 0 with usage_source
// "provider": the missing prompt_tokens and completion_tokens are read as
// zeros, where "usage": null (or no usage member) gets the gateway's
// estimate. Measured with mock-llm 0.1.29 rules on a priced model: four
// 200 answers with text recorded at $0, priced: true. The contract says
// cost_usd is never 0 for a priced call; an Anthropic client of the
// translated call is also told input_tokens 0 (an empty context), which
// the translator avoids for "usage": null. A usage object without the
// counts should be read as no usage (estimated), or from total_tokens.
func TestThirdPartyUsageWithoutCountsIsNotZero(t *testing.T) {
	for _, usage := range []string{`{}`, `{"total_tokens":30}`} {
		t.Run(usage, func(t *testing.T) {
			g := usageShapedUpstream(t, usage)
			_, tok := e2eKey(g, "usageshape")
			calls := 0
			for _, tc := range []struct{ what, path, body string }{
				{"openai non-streamed", "/v1/chat/completions", `{"model":"nano","messages":[{"role":"user","content":"hi"}]}`},
				{"openai streamed", "/v1/chat/completions", `{"model":"nano","stream":true,"messages":[{"role":"user","content":"hi"}]}`},
				{"anthropic non-streamed", "/v1/messages", `{"model":"nano","max_tokens":64,"messages":[{"role":"user","content":"hi"}]}`},
				{"anthropic streamed", "/v1/messages", `{"model":"nano","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"hi"}]}`},
			} {
				resp := g.post(tc.path, tok, tc.body, append([]string{"Authorization", "Bearer " + tok}, e2eAnthropicHdr...)...)
				body := e2eRead(t, resp)
				if resp.StatusCode != 200 || !strings.Contains(body, "some length") {
					t.Fatalf("%s: %d %.300s", tc.what, resp.StatusCode, body)
				}
				calls++
				call := e2eCalls(g, calls)[calls-1]
				cost, _ := call["cost_usd"].(float64)
				if call["priced"] != true || cost <= 0 || call["output_tokens"] == float64(0) {
					t.Errorf("%s: a 200 answer with text recorded cost_usd %v priced %v, %v in / %v out, usage_source %v; want a cost above 0 (estimated, or from total_tokens)",
						tc.what, call["cost_usd"], call["priced"], call["input_tokens"], call["output_tokens"], call["usage_source"])
				}
			}
		})
	}
}

// An Anthropic-compatible server whose answer carries "usage": {} had its
// call recorded at $0 with usage_source "provider", non-streamed; streamed
// with empty usage in message_start and message_delta, its input was 0.
// Both are estimated now: the prompt's estimate for input, the text's for
// output ("An answer of some length here." is 30 bytes: 8 tokens).
func TestThirdPartyAnthropicUsageWithoutCounts(t *testing.T) {
	g := emptyUsageAnthropic(t)
	_, tok := e2eKey(g, "antusage")
	for i, stream := range []string{"false", "true"} {
		resp := g.post("/v1/messages", tok, `{"model":"haiku","max_tokens":64,"stream":`+stream+`,"messages":[{"role":"user","content":"hi"}]}`, e2eAnthropicHdr...)
		if body := e2eRead(t, resp); resp.StatusCode != 200 || !strings.Contains(body, "some length") {
			t.Fatalf("stream %s: %d %.300s", stream, resp.StatusCode, body)
		}
		call := e2eCalls(g, i+1)[i]
		e2eWant(t, "stream "+stream, call, map[string]any{"status": 200, "error_class": nil, "usage_source": "estimated", "output_tokens": 8})
		if in, _ := call["input_tokens"].(float64); in <= 0 {
			t.Errorf("stream %s: input_tokens %v, want the prompt's estimate", stream, call["input_tokens"])
		}
		if c := e2eCost(t, call); c <= 0 {
			t.Errorf("stream %s: cost_usd %v, want above 0", stream, c)
		}
	}
}

// An Anthropic-compatible server's "usage": {} answered to an OpenAI
// client: a streamed answer's usage chunk (include_usage) tells the
// estimate the trace records, as a non-streamed answer's usage does; they
// used to tell zeros (review 22R).
func TestThirdPartyAnthropicEmptyUsageToldOpenAIClient(t *testing.T) {
	g := emptyUsageAnthropic(t)
	_, tok := e2eKey(g, "told")
	resp := g.post("/v1/chat/completions", tok, `{"model":"haiku","messages":[{"role":"user","content":"hi"}]}`)
	body := e2eRead(t, resp)
	call := e2eCalls(g, 1)[0]
	t.Logf("non-streamed: told %s", body)
	t.Logf("non-streamed: recorded in %v out %v source %v cost %v", call["input_tokens"], call["output_tokens"], call["usage_source"], call["cost_usd"])
	if nt := e2eJSON(t, body); e2ePath(nt, "usage", "prompt_tokens") != call["input_tokens"] || e2ePath(nt, "usage", "completion_tokens") != call["output_tokens"] {
		t.Errorf("non-streamed: the OpenAI client was told %v; the trace recorded %v in, %v out", nt["usage"], call["input_tokens"], call["output_tokens"])
	}
	resp = g.post("/v1/chat/completions", tok, `{"model":"haiku","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}`)
	body = e2eRead(t, resp)
	call = e2eCalls(g, 2)[1]
	t.Logf("streamed: told %s", body[strings.LastIndex(body[:len(body)-20], "data: "):])
	t.Logf("streamed: recorded in %v out %v source %v cost %v", call["input_tokens"], call["output_tokens"], call["usage_source"], call["cost_usd"])
	// README: "A translated answer tells its client the figures the trace
	// records." The usage chunk the client asked for (include_usage):
	told := usageChunk(t, body)
	if p, c := e2ePath(told, "usage", "prompt_tokens"), e2ePath(told, "usage", "completion_tokens"); p != call["input_tokens"] || c != call["output_tokens"] {
		t.Errorf("streamed, include_usage: the OpenAI client was told prompt_tokens %v, completion_tokens %v; the trace recorded %v in, %v out (usage_source %v, $%v)",
			p, c, call["input_tokens"], call["output_tokens"], call["usage_source"], call["cost_usd"])
	}
}

// usageChunk is the usage chunk (include_usage) of a Chat Completions
// stream body, decoded.
func usageChunk(t *testing.T, body string) map[string]any {
	t.Helper()
	var told map[string]any
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, "data: {") && strings.Contains(line, `"usage":{`) {
			told = e2eJSON(t, strings.TrimPrefix(line, "data: "))
		}
	}
	if told == nil {
		t.Fatalf("no usage chunk in %s", body)
	}
	return told
}

// emptyUsageAnthropic is a gateway whose Anthropic provider answers "An
// answer of some length here." (30 bytes) with "usage": {}, non-streamed,
// or streamed with {} in message_start and message_delta.
func emptyUsageAnthropic(t *testing.T) *testGateway {
	t.Helper()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if strings.Contains(string(b), `"stream":true`) {
			w.Header().Set("Content-Type", "text/event-stream")
			for _, ev := range []string{
				`event: message_start` + "\n" + `data: {"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"claude-haiku-4-5","content":[],"stop_reason":null,"usage":{}}}`,
				`event: content_block_start` + "\n" + `data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`,
				`event: content_block_delta` + "\n" + `data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"An answer of some length here."}}`,
				`event: content_block_stop` + "\n" + `data: {"type":"content_block_stop","index":0}`,
				`event: message_delta` + "\n" + `data: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{}}`,
				`event: message_stop` + "\n" + `data: {"type":"message_stop"}`,
			} {
				_, _ = io.WriteString(w, ev+"\n\n")
			}
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"id":"msg_1","type":"message","role":"assistant","model":"claude-haiku-4-5","content":[{"type":"text","text":"An answer of some length here."}],"stop_reason":"end_turn","stop_sequence":null,"usage":{}}`)
	}))
	t.Cleanup(up.Close)
	return startGateway(t, gatewayConfig(tempDB(t), up.URL, ""))
}

// The same server answering a Responses API client (Codex CLI on a Claude
// model): the response's usage, non-streamed and in response.completed,
// tells the estimate the trace records; the stream's told zeros.
func TestThirdPartyAnthropicEmptyUsageToldResponsesClient(t *testing.T) {
	g := emptyUsageAnthropic(t)
	_, tok := e2eKey(g, "told-responses")
	for i, stream := range []string{"false", "true"} {
		resp := g.post("/v1/responses", tok, `{"model":"haiku","stream":`+stream+`,"input":"hi"}`)
		body := e2eRead(t, resp)
		if resp.StatusCode != 200 || !strings.Contains(body, "some length") {
			t.Fatalf("stream %s: %d %.300s", stream, resp.StatusCode, body)
		}
		call := e2eCalls(g, i+1)[i]
		var told map[string]any
		if stream == "false" {
			told = e2eJSON(t, body)
		} else {
			for _, line := range strings.Split(body, "\n") {
				if strings.HasPrefix(line, "data: ") && strings.Contains(line, `"type":"response.completed"`) {
					told, _ = e2eJSON(t, strings.TrimPrefix(line, "data: "))["response"].(map[string]any)
				}
			}
			if told == nil {
				t.Fatalf("no response.completed in %s", body)
			}
		}
		in, out := e2ePath(told, "usage", "input_tokens"), e2ePath(told, "usage", "output_tokens")
		t.Logf("stream %s: told in %v out %v; recorded in %v out %v (%v)", stream, in, out, call["input_tokens"], call["output_tokens"], call["usage_source"])
		if call["usage_source"] != "estimated" || in != call["input_tokens"] || out != call["output_tokens"] {
			t.Errorf("stream %s: the Responses client was told input_tokens %v, output_tokens %v; the trace recorded %v in, %v out (usage_source %v)",
				stream, in, out, call["input_tokens"], call["output_tokens"], call["usage_source"])
		}
		ti, _ := in.(float64)
		to, _ := out.(float64)
		if e2ePath(told, "usage", "total_tokens") != ti+to {
			t.Errorf("stream %s: total_tokens %v is not input + output", stream, e2ePath(told, "usage", "total_tokens"))
		}
	}
}

// README, "Trace events": an answer whose provider reported no usage is
// priced on the gateway's estimate, the input a quarter of the request
// body. The same body sent to the same OpenAI-type provider is estimated
// alike whether the client spoke OpenAI's shape (the body as sent) or
// Anthropic's (the body the gateway translated it to); an Anthropic-shape
// client's call was estimated from the conversation's characters only
// (text/4 + 4 a message): 28 tokens for a 250-byte body (audit 23B).
func TestEstimatedInputSameForEitherClientShape(t *testing.T) {
	g, up := e2eSetup(t, "")
	_, tok := e2eKey(g, "estimate")
	noUsage := func() fakeupstream.Reply {
		return fakeupstream.Reply{
			Header: http.Header{"Content-Type": {"application/json"}},
			Body: `{"id":"chatcmpl-est","object":"chat.completion","created":1,"model":"gpt-5-nano",` +
				`"choices":[{"index":0,"message":{"role":"assistant","content":"Hello there"},"finish_reason":"stop"}]}`,
		}
	}
	up.Enqueue("/v1/chat/completions", noUsage(), noUsage())

	// 1. An Anthropic-shape client (Claude Code, the Anthropic SDKs) on an
	// OpenAI model.
	anth := `{"model":"gpt-5-nano","max_tokens":100,"system":"You are a terse assistant.",` +
		`"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"Hello."},` +
		`{"role":"user","content":"What is the capital of France?"}]}`
	resp := g.post("/v1/messages", tok, anth, "anthropic-version", "2023-06-01")
	if body := e2eRead(t, resp); resp.StatusCode != 200 {
		t.Fatalf("anthropic-shape call: %d %s", resp.StatusCode, body)
	}
	reqs := up.RequestsTo("/v1/chat/completions")
	if len(reqs) != 1 {
		t.Fatalf("%d upstream requests, want 1", len(reqs))
	}
	sent := reqs[0].Body // the body the provider received

	// 2. An OpenAI-shape client sending exactly that body (same shape: it
	// reaches the provider as sent).
	resp = g.post("/v1/chat/completions", tok, sent)
	if body := e2eRead(t, resp); resp.StatusCode != 200 {
		t.Fatalf("openai-shape call: %d %s", resp.StatusCode, body)
	}
	if got := up.RequestsTo("/v1/chat/completions"); len(got) != 2 || got[1].Body != sent {
		t.Fatalf("the same-shape call did not reach the provider with the same body")
	}

	calls := e2eCalls(g, 2)
	if len(calls) != 2 {
		t.Fatalf("%d calls recorded, want 2", len(calls))
	}
	for _, c := range calls {
		if c["usage_source"] != "estimated" {
			t.Fatalf("call %v: usage_source %v, want estimated", c["inbound_shape"], c["usage_source"])
		}
	}
	anthIn, openaiIn := calls[0]["input_tokens"].(float64), calls[1]["input_tokens"].(float64)
	quarter := float64((len(sent) + 3) / 4)
	t.Logf("upstream body %d bytes (a quarter: %.0f tokens); estimated input: anthropic-shape client %.0f, openai-shape client %.0f",
		len(sent), quarter, anthIn, openaiIn)
	if openaiIn != quarter {
		t.Errorf("openai-shape client: input_tokens %.0f, want a quarter of the body, %.0f", openaiIn, quarter)
	}
	if anthIn != openaiIn {
		t.Errorf("the same upstream body is estimated at %.0f input tokens for an Anthropic-shape client and %.0f for an OpenAI-shape one; README says the estimate is a quarter of the request body's bytes",
			anthIn, openaiIn)
	}
	if c0, c1 := e2eCost(t, calls[0]), e2eCost(t, calls[1]); !e2eNear(c0, c1) {
		t.Errorf("estimated cost: anthropic-shape $%.9f, openai-shape $%.9f for the same prompt and answer", c0, c1)
	}
}

// partialUsageAnthropic is a gateway whose Anthropic(-compatible) provider
// streams "An answer of some length here." (30 bytes: 8 tokens estimated)
// with startUsage in message_start and deltaUsage (a JSON member, or "" for
// none) in message_delta.
func partialUsageAnthropic(t *testing.T, startUsage, deltaUsage string) *testGateway {
	t.Helper()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		md := `{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null}` + deltaUsage + `}`
		for _, ev := range []string{
			`event: message_start` + "\n" + `data: {"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"claude-haiku-4-5","content":[],"stop_reason":null,"usage":` + startUsage + `}}`,
			`event: content_block_start` + "\n" + `data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`,
			`event: content_block_delta` + "\n" + `data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"An answer of some length here."}}`,
			`event: content_block_stop` + "\n" + `data: {"type":"content_block_stop","index":0}`,
			`event: message_delta` + "\n" + `data: ` + md,
			`event: message_stop` + "\n" + `data: {"type":"message_stop"}`,
		} {
			_, _ = io.WriteString(w, ev+"\n\n")
		}
	}))
	t.Cleanup(up.Close)
	return startGateway(t, gatewayConfig(tempDB(t), up.URL, ""))
}

// A provider that counts one side only (input in message_start and no
// usage in message_delta, or the reverse) has the other side estimated in
// the trace (StreamTracker, relay); its Responses client was told the
// prompt estimate in place of the provider's input, or 0 input, or
// message_start's placeholder output_tokens (review 23R, whose tests these
// are). README: "A translated answer tells its client the figures the
// trace records."
func TestStreamPartialUsageToldResponsesClient(t *testing.T) {
	for _, tc := range []struct{ name, start, delta string }{
		{"input in message_start, no usage in message_delta", `{"input_tokens":40,"output_tokens":1}`, ``},
		{"input in message_start, empty usage in message_delta", `{"input_tokens":40,"output_tokens":1}`, `,"usage":{}`},
		{"no counts in message_start, output in message_delta", `{}`, `,"usage":{"output_tokens":9}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := partialUsageAnthropic(t, tc.start, tc.delta)
			_, tok := e2eKey(g, "partial")
			resp := g.post("/v1/responses", tok, `{"model":"haiku","stream":true,"input":"hi"}`)
			body := e2eRead(t, resp)
			if resp.StatusCode != 200 || !strings.Contains(body, "some length") {
				t.Fatalf("%d %.300s", resp.StatusCode, body)
			}
			call := e2eCalls(g, 1)[0]
			var told map[string]any
			for _, line := range strings.Split(body, "\n") {
				if strings.HasPrefix(line, "data: ") && strings.Contains(line, `"type":"response.completed"`) {
					told, _ = e2eJSON(t, strings.TrimPrefix(line, "data: "))["response"].(map[string]any)
					if i := strings.Index(line, `"usage":`); i >= 0 {
						t.Logf("wire: %s", line[i:])
					}
				}
			}
			if told == nil {
				t.Fatalf("no response.completed in %s", body)
			}
			in, out := e2ePath(told, "usage", "input_tokens"), e2ePath(told, "usage", "output_tokens")
			t.Logf("told in %v out %v total %v; recorded in %v out %v (%v) $%v", in, out, e2ePath(told, "usage", "total_tokens"),
				call["input_tokens"], call["output_tokens"], call["usage_source"], call["cost_usd"])
			if in != call["input_tokens"] || out != call["output_tokens"] {
				t.Errorf("the Responses client was told input_tokens %v, output_tokens %v; the trace recorded %v in, %v out (usage_source %v)",
					in, out, call["input_tokens"], call["output_tokens"], call["usage_source"])
			}
		})
	}
}

// The same provider to a Chat Completions client (include_usage): the
// usage chunk follows the same rule.
func TestStreamPartialUsageToldChatClient(t *testing.T) {
	for _, tc := range []struct{ name, start, delta string }{
		{"input in message_start, no usage in message_delta", `{"input_tokens":40,"output_tokens":1}`, ``},
		{"no counts in message_start, output in message_delta", `{}`, `,"usage":{"output_tokens":9}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := partialUsageAnthropic(t, tc.start, tc.delta)
			_, tok := e2eKey(g, "partial")
			resp := g.post("/v1/chat/completions", tok, `{"model":"haiku","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}`)
			body := e2eRead(t, resp)
			call := e2eCalls(g, 1)[0]
			told := usageChunk(t, body)
			p, c := e2ePath(told, "usage", "prompt_tokens"), e2ePath(told, "usage", "completion_tokens")
			t.Logf("told prompt %v completion %v; recorded in %v out %v (%v)", p, c, call["input_tokens"], call["output_tokens"], call["usage_source"])
			if p != call["input_tokens"] || c != call["output_tokens"] {
				t.Errorf("the Chat client was told prompt_tokens %v, completion_tokens %v; the trace recorded %v in, %v out", p, c, call["input_tokens"], call["output_tokens"])
			}
		})
	}
}

// An Anthropic-shape client's image sent by URL to an OpenAI model whose
// answer carries no usage: estimated from the translated body, the image
// (image_url.url) was counted as its URL's bytes, 57 tokens for the
// prompt (review 23R2, whose test this is); it counts ir.ImageTokenEstimate.
func TestImageByURLEstimatedAtAFixedCount(t *testing.T) {
	g, up := e2eSetup(t, "")
	_, tok := e2eKey(g, "estimate")
	up.Enqueue("/v1/chat/completions", fakeupstream.Reply{
		Header: http.Header{"Content-Type": {"application/json"}},
		Body: `{"id":"chatcmpl-est","object":"chat.completion","created":1,"model":"gpt-5-nano",` +
			`"choices":[{"index":0,"message":{"role":"assistant","content":"A cat."},"finish_reason":"stop"}]}`,
	})
	body := `{"model":"gpt-5-nano","max_tokens":100,"messages":[{"role":"user","content":[` +
		`{"type":"image","source":{"type":"url","url":"https://upload.example.com/photos/cat.png"}},` +
		`{"type":"text","text":"What is in this picture?"}]}]}`
	resp := g.post("/v1/messages", tok, body, "anthropic-version", "2023-06-01")
	out := e2eRead(t, resp)
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, out)
	}
	sent := up.RequestsTo("/v1/chat/completions")[0].Body
	c := e2eCalls(g, 1)[0]
	in := int64(c["input_tokens"].(float64))
	t.Logf("upstream body: %s", sent)
	t.Logf("recorded input_tokens %d, output_tokens %v (%v), cost_usd %v; client told: %s", in, c["output_tokens"], c["usage_source"], c["cost_usd"], out)
	if in < ir.ImageTokenEstimate {
		t.Errorf("a prompt with an image (by URL) is estimated at %d input tokens, less than the %d an image is counted", in, ir.ImageTokenEstimate)
	}
}
