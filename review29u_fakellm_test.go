package metis

// The gateway against fake-llm-server 0.1.0 (PyPI; github.com/pwnall/
// fake-llm-server), review 29u. Its /v1/chat/completions is a FastAPI
// endpoint returning llama-cpp-python's create_chat_completion(...)
// as is: with "stream": true that is a generator of chunks, which
// FastAPI's jsonable_encoder turns into ONE JSON ARRAY of
// chat.completion.chunk objects, sent as Content-Type: application/json
// (no SSE, no usage, no [DONE]). Every answer names the model by the
// GGUF file llama.cpp loaded, not by the id asked for. fakeLLMArray is
// the exact body it sent for "hi" (text "Hello! How can I help?", 22 bytes,
// in 7 content chunks); fakeLLMJSON its non-streamed answer to the same.

import (
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

const fakeLLMArray = `[{"id":"chatcmpl-e2199573-9a5b-4421-b5bc-b0ce01baa494","model":"/root/.cache/huggingface/hub/models--unsloth--gemma-3-270m-it-GGUF/snapshots/5c8d1e2a/gemma-3-270m-it-Q8_0.gguf","created":1795962563,"object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant"},"logprobs":null,"finish_reason":null}]},{"id":"chatcmpl-e2199573-9a5b-4421-b5bc-b0ce01baa494","model":"/root/.cache/huggingface/hub/models--unsloth--gemma-3-270m-it-GGUF/snapshots/5c8d1e2a/gemma-3-270m-it-Q8_0.gguf","created":1795962563,"object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"Hello"},"logprobs":null,"finish_reason":null}]},{"id":"chatcmpl-e2199573-9a5b-4421-b5bc-b0ce01baa494","model":"/root/.cache/huggingface/hub/models--unsloth--gemma-3-270m-it-GGUF/snapshots/5c8d1e2a/gemma-3-270m-it-Q8_0.gguf","created":1795962563,"object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"!"},"logprobs":null,"finish_reason":null}]},{"id":"chatcmpl-e2199573-9a5b-4421-b5bc-b0ce01baa494","model":"/root/.cache/huggingface/hub/models--unsloth--gemma-3-270m-it-GGUF/snapshots/5c8d1e2a/gemma-3-270m-it-Q8_0.gguf","created":1795962563,"object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":" How"},"logprobs":null,"finish_reason":null}]},{"id":"chatcmpl-e2199573-9a5b-4421-b5bc-b0ce01baa494","model":"/root/.cache/huggingface/hub/models--unsloth--gemma-3-270m-it-GGUF/snapshots/5c8d1e2a/gemma-3-270m-it-Q8_0.gguf","created":1795962563,"object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":" can"},"logprobs":null,"finish_reason":null}]},{"id":"chatcmpl-e2199573-9a5b-4421-b5bc-b0ce01baa494","model":"/root/.cache/huggingface/hub/models--unsloth--gemma-3-270m-it-GGUF/snapshots/5c8d1e2a/gemma-3-270m-it-Q8_0.gguf","created":1795962563,"object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":" I"},"logprobs":null,"finish_reason":null}]},{"id":"chatcmpl-e2199573-9a5b-4421-b5bc-b0ce01baa494","model":"/root/.cache/huggingface/hub/models--unsloth--gemma-3-270m-it-GGUF/snapshots/5c8d1e2a/gemma-3-270m-it-Q8_0.gguf","created":1795962563,"object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":" help"},"logprobs":null,"finish_reason":null}]},{"id":"chatcmpl-e2199573-9a5b-4421-b5bc-b0ce01baa494","model":"/root/.cache/huggingface/hub/models--unsloth--gemma-3-270m-it-GGUF/snapshots/5c8d1e2a/gemma-3-270m-it-Q8_0.gguf","created":1795962563,"object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"?"},"logprobs":null,"finish_reason":null}]},{"id":"chatcmpl-e2199573-9a5b-4421-b5bc-b0ce01baa494","model":"/root/.cache/huggingface/hub/models--unsloth--gemma-3-270m-it-GGUF/snapshots/5c8d1e2a/gemma-3-270m-it-Q8_0.gguf","created":1795962563,"object":"chat.completion.chunk","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]}]`

const fakeLLMJSON = `{"id":"chatcmpl-96736bba-d765-41fd-8f1c-3a4d14d7158f","object":"chat.completion","created":1795962563,"model":"/root/.cache/huggingface/hub/models--unsloth--gemma-3-270m-it-GGUF/snapshots/5c8d1e2a/gemma-3-270m-it-Q8_0.gguf","choices":[{"index":0,"message":{"role":"assistant","content":"Hello! How can I help?"},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":7,"total_tokens":19}}`

func fakeLLMServerUpstream(t *testing.T) *testGateway {
	t.Helper()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Server", "uvicorn")
		w.Header().Set("Content-Type", "application/json")
		if strings.Contains(string(b), `"stream":true`) {
			_, _ = io.WriteString(w, fakeLLMArray)
			return
		}
		_, _ = io.WriteString(w, fakeLLMJSON)
	}))
	t.Cleanup(up.Close)
	return startGateway(t, gatewayConfig(tempDB(t), up.URL, ""))
}

// A streamed request that fake-llm-server answers with its JSON array of
// chunks is estimated (no usage) from the WHOLE array: 2,854 bytes -> 714
// output tokens, where README ("the output a quarter of the bytes the model
// wrote (text, reasoning, tool-call arguments, not the JSON around them),
// rounded up, streamed or not") gives ceil(22/4) = 6. It is also priced as
// the id asked for (gpt-5-nano: 714 x $0.40/MTok = $0.0002856 of output, the
// call $0.0002871, charged to budgets), while the same server's non-streamed
// answer, naming the same GGUF file, is recorded as answered by another
// model: cost_usd null with answered_model (README "Trace events").
// By hand: 6 x $0.40/MTok = $0.0000024 of output.
func TestFakeLLMServerStreamAsJSONArray(t *testing.T) {
	g := fakeLLMServerUpstream(t)
	_, tok := e2eKey(g, "fakellm")

	t.Run("same shape", func(t *testing.T) {
		resp := g.post("/v1/chat/completions", tok, `{"model":"nano","stream":true,"messages":[{"role":"user","content":"hi"}]}`)
		body := e2eRead(t, resp)
		if resp.StatusCode != 200 || body != fakeLLMArray {
			t.Fatalf("the client should get the server's answer as sent: %d %.200s", resp.StatusCode, body)
		}
		call := e2eCalls(g, 1)[0]
		e2eWant(t, "streamed as a JSON array", call, map[string]any{"usage_source": "estimated", "status": 200})
		if out, _ := call["output_tokens"].(float64); out != 6 {
			t.Errorf("output_tokens = %v, want 6 (ceil of the 22 bytes of text / 4), not a quarter of the %d-byte JSON array around them (cost_usd %v)",
				call["output_tokens"], len(fakeLLMArray), call["cost_usd"])
		}
		// The non-streamed answer of the same server, for comparison.
		resp = g.post("/v1/chat/completions", tok, `{"model":"nano","messages":[{"role":"user","content":"hi"}]}`)
		if b := e2eRead(t, resp); resp.StatusCode != 200 {
			t.Fatalf("non-streamed: %d %s", resp.StatusCode, b)
		}
		plain := e2eCalls(g, 2)[1]
		if (plain["cost_usd"] == nil) != (call["cost_usd"] == nil) {
			t.Errorf("the same server's answers name the same GGUF model: non-streamed cost_usd %v answered_model %v, streamed-as-array cost_usd %v answered_model %v; want both priced alike (README: an answer naming another model is priced as that model, or null)",
				plain["cost_usd"], plain["answered_model"], call["cost_usd"], call["answered_model"])
		}
	})

	t.Run("cross shape", func(t *testing.T) {
		before := len(g.events("llm.call_completed"))
		resp := g.post("/v1/messages", tok, `{"model":"nano","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"hi"}]}`, e2eAnthropicHdr...)
		body := e2eRead(t, resp)
		call := e2eCalls(g, before+1)[before]
		out, _ := call["output_tokens"].(float64)
		if out > 6 {
			t.Errorf("Anthropic client got %d %.160s; the trace records %v output tokens (cost_usd %v), want at most 6: the answer's text is 22 bytes, the %d bytes are the JSON around it",
				resp.StatusCode, body, call["output_tokens"], call["cost_usd"], len(fakeLLMArray))
		}
		if c, ok := call["cost_usd"].(float64); ok && c > 0 {
			in, _ := call["input_tokens"].(float64)
			hand := in*0.05e-6 + 6*0.40e-6
			if math.Abs(c-hand) > 1e-9 && c > hand {
				t.Errorf("cost_usd %v, by hand at most %.7f (%v in x $0.05/MTok + 6 out x $0.40/MTok)", c, hand, in)
			}
		}
	})
}
