package metis

// Review 26V: coverage-guided test of startStream's comments that arrive
// after the first-event hold sent the headers (relay.go: the comment
// becomes the stream's first event, which the observer skips).

import (
	"strings"
	"testing"
	"time"

	"github.com/metisgateway/metis/internal/fakeupstream"
)

func TestReview26vCommentAfterHold(t *testing.T) {
	setForTest(t, &firstEventHold, 100*time.Millisecond)
	g, up := e2eSetup(t, "")
	_, tok := e2eKey(g, "r26v-comment-after-hold")
	n := 0
	slow := func() fakeupstream.Reply {
		r := fakeupstream.OpenAITextStream("gpt-5-nano", "hello there", 40, true)
		r.Events = append([]string{"", ": OPENROUTER PROCESSING\n\n"}, strings.Join(r.Events, ""))
		r.Gap = 300 * time.Millisecond
		return r
	}
	t.Run("same shape", func(t *testing.T) {
		g := e2eIn(g, t)
		up.Reset()
		up.Enqueue("/v1/chat/completions", slow())
		resp := g.post("/v1/chat/completions", tok, `{"model":"nano","stream":true,"messages":[{"role":"user","content":"Hi."}]}`)
		body := e2eRead(t, resp)
		if resp.StatusCode != 200 || !strings.HasPrefix(body, ": ping\n\n") || !strings.Contains(body, ": OPENROUTER PROCESSING\n\n") ||
			!strings.HasSuffix(body, "data: [DONE]\n\n") || strings.Contains(body, `"usage"`) {
			t.Errorf("client got %d %q; want a ping, the provider's comment, the chunks without the usage it did not ask for, [DONE]", resp.StatusCode, body)
		}
		n++
		e2eWant(t, "call", r26vCall(g, n), map[string]any{"attempts": 1, "status": 200, "error_class": nil, "usage_source": "provider", "input_tokens": 40})
	})
	t.Run("translated for an Anthropic client", func(t *testing.T) {
		g := e2eIn(g, t)
		up.Reset()
		up.Enqueue("/v1/chat/completions", slow())
		resp := g.post("/v1/messages", tok, `{"model":"nano","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"Hi."}]}`, e2eAnthropicHdr...)
		evs := e2eReadSSE(t, resp.Body)
		resp.Body.Close()
		var names []string
		for _, e := range evs {
			names = append(names, e.Name)
		}
		got := strings.Join(names, ",")
		if resp.StatusCode != 200 || !strings.HasPrefix(got, "ping,message_start") || !strings.HasSuffix(got, "message_delta,message_stop") {
			t.Errorf("client got %d events %s", resp.StatusCode, got)
		}
		n++
		e2eWant(t, "call", r26vCall(g, n), map[string]any{"attempts": 1, "status": 200, "error_class": nil, "usage_source": "provider", "input_tokens": 40})
	})
}
