package metis

// Review 26V: coverage-guided tests of request validation, model
// resolution by provider type, the output estimate of answers without
// usage, and the identity content coding.

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/metisgateway/metis/internal/fakeupstream"
	"github.com/metisgateway/metis/store"
)

// gateway.go validate: the fields the gateway reads are checked, refused
// with a 400 in the caller's shape and recorded as request.rejected;
// call.go decide: no model and nothing in the routing chain is a 400.
func TestReview26vValidation(t *testing.T) {
	g, up := e2eSetup(t, "")
	_, tok := e2eKey(g, "r26v-validate")
	cases := []struct {
		name, path, body, want string
	}{
		{"model not a string (Anthropic)", "/v1/messages", `{"model":5,"max_tokens":8,"messages":[]}`, "model: must be a string"},
		{"model not a string (OpenAI)", "/v1/chat/completions", `{"model":["nano"],"messages":[]}`, "model: must be a string"},
		{"max_tokens fractional", "/v1/messages", `{"model":"haiku","max_tokens":1.5,"messages":[]}`, "max_tokens: must be a whole number"},
		{"max_tokens negative", "/v1/messages", `{"model":"haiku","max_tokens":-1,"messages":[]}`, "max_tokens: must be a whole number"},
		{"max_tokens a string", "/v1/messages", `{"model":"haiku","max_tokens":"64","messages":[]}`, "max_tokens: must be a whole number"},
		{"stream not a boolean (Anthropic)", "/v1/messages", `{"model":"haiku","max_tokens":8,"stream":"true","messages":[]}`, "stream: must be a boolean"},
		{"stream not a boolean (OpenAI)", "/v1/chat/completions", `{"model":"nano","stream":1,"messages":[]}`, "stream: must be a boolean"},
		{"no model, no default_model (Anthropic)", "/v1/messages", `{"max_tokens":8,"messages":[{"role":"user","content":"hi"}]}`, "model: field required"},
		{"no model, no default_model (OpenAI)", "/v1/chat/completions", `{"messages":[{"role":"user","content":"hi"}]}`, "model: field required"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := e2eIn(g, t)
			resp := g.post(tc.path, tok, tc.body, e2eAnthropicHdr...)
			body := e2eRead(t, resp)
			if resp.StatusCode != 400 {
				t.Fatalf("status %d %s, want 400", resp.StatusCode, body)
			}
			m := e2eJSON(t, body)
			if strings.HasPrefix(tc.path, "/v1/messages") {
				if e2ePath(m, "type") != "error" || e2ePath(m, "error", "type") != "invalid_request_error" {
					t.Errorf("body %s; want Anthropic's invalid_request_error", body)
				}
				if resp.Header.Get("Request-Id") == "" {
					t.Error("no request-id naming the refusal")
				}
			} else {
				if e2ePath(m, "error", "type") != "invalid_request_error" || e2ePath(m, "error", "code") != "invalid_request" {
					t.Errorf("body %s; want OpenAI's invalid_request_error", body)
				}
				if resp.Header.Get("X-Request-Id") == "" {
					t.Error("no x-request-id naming the refusal")
				}
			}
			msg, _ := e2ePath(m, "error", "message").(string)
			if !strings.HasPrefix(msg, tc.want) {
				t.Errorf("message %q, want it to begin %q", msg, tc.want)
			}
			rej := g.waitEvents(store.TypeRequestRejected, i+1)
			if len(rej) != i+1 {
				t.Fatalf("%d request.rejected events, want %d", len(rej), i+1)
			}
			e2eWant(t, "rejection", rej[i], map[string]any{"status": 400, "reason": "invalid_request"})
		})
	}
	if n := len(up.Requests()); n != 0 {
		t.Errorf("upstream saw %d requests; refusals reach no provider", n)
	}
}

// models.go providerOfType: a bare model id goes to the provider of its
// type when none is named after the type, and is a 404 when no provider
// of its type is configured.
func TestReview26vBareIDsByProviderType(t *testing.T) {
	up := fakeupstream.New(t)
	t.Run("providers named other than their type", func(t *testing.T) {
		g := startGateway(t, fmt.Sprintf(`db %s
			provider zai anthropic {
				api_key {env.METIS_TEST_ANTHROPIC_KEY}
				base_url %s
				max_retries 0
			}
			provider local openai {
				base_url %s/v1
				max_retries 0
			}`, tempDB(t), up.URL, up.URL))
		_, tok := e2eKey(g, "r26v-bare")
		resp := g.post("/v1/messages", tok, `{"model":"claude-haiku-4-5","max_tokens":8,"messages":[{"role":"user","content":"hi"}]}`, e2eAnthropicHdr...)
		if body := e2eRead(t, resp); resp.StatusCode != 200 {
			t.Fatalf("claude-haiku-4-5: %d %s", resp.StatusCode, body)
		}
		resp = g.post("/v1/chat/completions", tok, `{"model":"gpt-5-nano","messages":[{"role":"user","content":"hi"}]}`)
		if body := e2eRead(t, resp); resp.StatusCode != 200 {
			t.Fatalf("gpt-5-nano: %d %s", resp.StatusCode, body)
		}
		calls := e2eCalls(g, 2)
		e2eWant(t, "claude call", calls[0], map[string]any{"provider": "zai", "model": "claude-haiku-4-5", "status": 200})
		e2eWant(t, "gpt call", calls[1], map[string]any{"provider": "local", "model": "gpt-5-nano", "status": 200})
		if k := up.Requests()[0].APIKey(); k != testAnthropicKey {
			t.Errorf("zai got key %q", k)
		}
	})
	t.Run("no provider of the model's type", func(t *testing.T) {
		up.Reset()
		g := startGateway(t, fmt.Sprintf(`db %s
			provider zai anthropic {
				api_key {env.METIS_TEST_ANTHROPIC_KEY}
				base_url %s
			}`, tempDB(t), up.URL))
		_, tok := e2eKey(g, "r26v-bare-none")
		resp := g.post("/v1/chat/completions", tok, `{"model":"gpt-5-nano","messages":[{"role":"user","content":"hi"}]}`)
		body := e2eRead(t, resp)
		m := e2eJSON(t, body)
		if resp.StatusCode != 404 || e2ePath(m, "error", "code") != "model_not_found" ||
			!strings.Contains(e2ePath(m, "error", "message").(string), `"gpt-5-nano"`) {
			t.Errorf("client got %d %s; want a 404 model_not_found naming the model", resp.StatusCode, body)
		}
		if n := len(up.Requests()); n != 0 {
			t.Errorf("upstream saw %d requests", n)
		}
	})
}

// estimate.go estimateAnswerTokens: a non-streamed answer without usage
// is priced on the output the model wrote (tool-call arguments, array
// content, Responses output items), not on the JSON around it (README
// "An answer whose provider reported no usage").
func TestReview26vOutputEstimateWithoutUsage(t *testing.T) {
	g, up := e2eSetup(t, "")
	_, tok := e2eKey(g, "r26v-estimate")
	n := 0
	jsonReply := func(body string) fakeupstream.Reply {
		return fakeupstream.Reply{Status: 200, Header: http.Header{"Content-Type": {"application/json"}}, Body: body}
	}
	cases := []struct {
		name, path, upPath, body, answer string
		hdr                              []string
		output                           int
	}{
		{"chat tool call", "/v1/chat/completions", "/v1/chat/completions", e2eNanoBody,
			// arguments {"city":"Paris","units":"c"}: 28 bytes → 7 tokens
			`{"id":"chatcmpl-r26v","object":"chat.completion","created":1,"model":"gpt-5-nano","choices":[{"index":0,"message":{"role":"assistant","content":null,` +
				`"tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\",\"units\":\"c\"}"}}]},"finish_reason":"tool_calls"}]}`,
			nil, 7},
		{"chat array content", "/v1/chat/completions", "/v1/chat/completions", e2eNanoBody,
			// "abcdefghi" + "jkl": 12 bytes → 3 tokens
			`{"id":"chatcmpl-r26v","object":"chat.completion","created":1,"model":"gpt-5-nano","choices":[{"index":0,"message":{"role":"assistant",` +
				`"content":[{"type":"text","text":"abcdefghi"},{"type":"text","text":"jkl"}]},"finish_reason":"stop"}]}`,
			nil, 3},
		{"responses output items", "/v1/responses", "/v1/responses", `{"model":"nano","input":"hi"}`,
			// "abcd" summary + "abcdefgh" text + {"a":1} arguments: 19 bytes → 5 tokens
			`{"id":"resp_r26v","object":"response","status":"completed","model":"gpt-5-nano","output":[` +
				`{"type":"reasoning","id":"rs_1","summary":[{"type":"summary_text","text":"abcd"}]},` +
				`{"type":"message","id":"msg_1","role":"assistant","content":[{"type":"output_text","text":"abcdefgh"}]},` +
				`{"type":"function_call","id":"fc_1","call_id":"call_1","name":"f","arguments":"{\"a\":1}"}]}`,
			nil, 5},
		{"anthropic tool_use", "/v1/messages", "/v1/messages", e2eHaikuBody,
			// "abcd" text + {"a":12} input (8 bytes): 12 bytes → 3 tokens
			`{"id":"msg_r26v","type":"message","role":"assistant","model":"claude-haiku-4-5","content":[{"type":"text","text":"abcd"},` +
				`{"type":"tool_use","id":"toolu_1","name":"f","input":{"a":12}}],"stop_reason":"tool_use","stop_sequence":null}`,
			e2eAnthropicHdr, 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := e2eIn(g, t)
			up.Reset()
			up.Enqueue(tc.upPath, jsonReply(tc.answer))
			resp := g.post(tc.path, tok, tc.body, tc.hdr...)
			if body := e2eRead(t, resp); resp.StatusCode != 200 || body != tc.answer {
				t.Fatalf("client got %d %s; want the answer as sent", resp.StatusCode, body)
			}
			n++
			c := r26vCall(g, n)
			e2eWant(t, "call", c, map[string]any{"status": 200, "error_class": nil, "usage_source": "estimated", "output_tokens": tc.output})
			if in, _ := c["input_tokens"].(float64); in <= 0 {
				t.Errorf("input_tokens %v; want the prompt's estimate", c["input_tokens"])
			}
			e2eCost(t, c)
		})
	}
}

// bodycoding.go requestCoding and forward.go decodeBody: Content-Encoding
// identity, on the request and on the provider's answer, is no coding at
// all.
func TestReview26vIdentityCoding(t *testing.T) {
	g, up := e2eSetup(t, "")
	_, tok := e2eKey(g, "r26v-identity")
	ok := fakeupstream.OpenAICompletion("gpt-5-nano", "Hi there!", 40)
	ok.Header.Set("Content-Encoding", "identity")
	up.Enqueue("/v1/chat/completions", ok)
	resp := g.post("/v1/chat/completions", tok, e2eNanoBody, "Content-Encoding", "identity")
	body := e2eRead(t, resp)
	if resp.StatusCode != 200 || body != ok.Body {
		t.Fatalf("client got %d %s", resp.StatusCode, body)
	}
	if ce := resp.Header.Get("Content-Encoding"); ce != "" {
		t.Errorf("client got Content-Encoding %q", ce)
	}
	if ce := up.Requests()[0].Header.Get("Content-Encoding"); ce != "" {
		t.Errorf("provider got Content-Encoding %q", ce)
	}
	e2eWant(t, "call", e2eCalls(g, 1)[0], map[string]any{"status": 200, "usage_source": "provider", "input_tokens": 40})
}
