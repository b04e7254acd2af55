package metis

// Review 26V: coverage-guided tests of translation branches no earlier
// test executed: OpenAI in-stream error kinds for an Anthropic client and
// a converted Responses body that fails validation.

import (
	"net/http"
	"strings"
	"testing"

	"github.com/metisgateway/metis/internal/fakeupstream"
)

// openai/stream.go Decode and kindFromCode: an OpenAI stream's error chunk
// (OpenAI's insufficient_quota, TGI's {"error":"…","error_type":…})
// reaches an Anthropic client as an error event of the matching type, and
// an error-first stream of a kind waiting cannot mend is not retried.
func TestReview26vTranslatedStreamErrorKinds(t *testing.T) {
	g, up := e2eSetup(t, "")
	_, tok := e2eKey(g, "r26v-stream-errors")
	n := 0
	chunk := `data: {"id":"chatcmpl-r26v","object":"chat.completion.chunk","created":1,"model":"gpt-5-nano","choices":[{"index":0,"delta":{"role":"assistant","content":"Hello"},"finish_reason":null}]}` + "\n\n"
	sse := http.Header{"Content-Type": {"text/event-stream"}}
	cases := []struct {
		name     string
		events   []string
		wantType string
		wantReqs int
	}{
		{"insufficient_quota mid-stream", []string{chunk,
			`data: {"error":{"message":"You exceeded your current quota","type":"insufficient_quota","code":"insufficient_quota"}}` + "\n\n"},
			"billing_error", 1},
		{"insufficient_quota first", []string{
			`data: {"error":{"message":"You exceeded your current quota","type":"insufficient_quota","code":"insufficient_quota"}}` + "\n\n"},
			"billing_error", 1},
		{"TGI validation error mid-stream", []string{chunk,
			`data: {"error":"Input validation error: inputs tokens + max_new_tokens must be <= 4096","error_type":"validation"}` + "\n\n"},
			"invalid_request_error", 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := e2eIn(g, t)
			up.Reset()
			up.Enqueue("/v1/chat/completions", fakeupstream.Reply{Header: sse, Events: tc.events})
			resp := g.post("/v1/messages", tok, `{"model":"nano","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"hi"}]}`, e2eAnthropicHdr...)
			evs := e2eReadSSE(t, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			var last e2eSSE
			if len(evs) > 0 {
				last = evs[len(evs)-1]
			}
			m := e2eJSON(t, last.Data)
			if last.Name != "error" || e2ePath(m, "error", "type") != tc.wantType {
				t.Errorf("last event %s %s; want an error event of type %s", last.Name, last.Data, tc.wantType)
			}
			if c := up.Count("/v1/chat/completions"); c != tc.wantReqs {
				t.Errorf("upstream saw %d requests, want %d", c, tc.wantReqs)
			}
			n++
			c := r26vCall(g, n)
			if c["error_class"] == nil {
				t.Errorf("error_class null for a stream that ended in the provider's error")
			}
			t.Logf("recorded: status %v error_class %v usage_source %v input %v output %v", c["status"], c["error_class"], c["usage_source"], c["input_tokens"], c["output_tokens"])
		})
	}
}

// call.go serveLLM: a Responses API body on /v1/chat/completions whose
// converted request fails validation is refused with a 400 that says the
// body was read as Chat Completions.
func TestReview26vConvertedBodyRevalidated(t *testing.T) {
	g, up := e2eSetup(t, "")
	_, tok := e2eKey(g, "r26v-converted")
	resp := g.post("/v1/chat/completions", tok, `{"model":"nano","input":"hi","stream":"yes"}`)
	body := e2eRead(t, resp)
	m := e2eJSON(t, body)
	msg, _ := e2ePath(m, "error", "message").(string)
	if resp.StatusCode != 400 || !strings.HasPrefix(msg, responsesRead) || !strings.Contains(msg, "stream: must be a boolean") {
		t.Errorf("client got %d %s; want a 400 saying the Responses body's stream is not a boolean", resp.StatusCode, body)
	}
	if n := len(up.Requests()); n != 0 {
		t.Errorf("upstream saw %d requests", n)
	}
}
