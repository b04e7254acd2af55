package metis

// Claude Code 2.1.328 run twice, straight at a fake provider and through
// the gateway, the provider's received requests and Claude Code's output
// diffed (audit 22K): the differences it found, pinned.

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/metisgateway/metis/internal/fakeupstream"
	"github.com/metisgateway/metis/store"
)

// TestClaudeCodeMythosModelsPriced: Claude Code 2.1.328 lists
// claude-mythos-5, claude-mythos-5-1 and claude-mythos-5-2 as first-party
// models (its model catalogue gives each a first_party provider id, and it
// prices them itself: `claude -p --model claude-mythos-5-2 --output-format
// json` against a provider reporting 1M input tokens says $8, 1M output
// $40, 1M 5-minute writes $10, 1M 1-hour writes $16, 1M reads $0.20;
// Mythos 5.1: $10/$50/$12.50/$20/$0.25; Mythos 5: $10/$50/$12.50/$20/$1),
// and the gateway forwards them (claude- prefix). Its catalogue had no
// price for them: every call was recorded cost_usd null, and a key under a
// budget was refused with a 403 for a model the provider serves (audit
// 22K).
func TestClaudeCodeMythosModelsPriced(t *testing.T) {
	up := fakeupstream.New(t)
	g := startGateway(t, gatewayConfig(tempDB(t), up.URL, ""))
	k, tok := g.issueKey(store.IssueParams{Name: "mythos", User: "alice"})
	capKey(t, g, k, 50)
	// One call's usage: 1,000 input, 2,000 5-minute and 1,000 1-hour cache
	// writes, 20,000 cache reads, 500 output tokens.
	const usage = `"usage":{"input_tokens":1000,"cache_creation_input_tokens":3000,"cache_read_input_tokens":20000,` +
		`"cache_creation":{"ephemeral_5m_input_tokens":2000,"ephemeral_1h_input_tokens":1000},"output_tokens":500,"service_tier":"standard"}`
	for _, c := range []struct {
		model string
		want  float64
	}{
		// $10 / $50, writes $12.50 and $20, reads $1.00 per MTok:
		// 1000×10e-6 + 2000×12.5e-6 + 1000×20e-6 + 20000×1e-6 + 500×50e-6
		// = 0.01 + 0.025 + 0.02 + 0.02 + 0.025 = 0.1
		{"claude-mythos-5", 0.1},
		// reads at $0.25: 0.01 + 0.025 + 0.02 + 0.005 + 0.025 = 0.085
		{"claude-mythos-5-1", 0.085},
		// $8 / $40, writes $10 and $16, reads $0.20:
		// 0.008 + 0.02 + 0.016 + 0.004 + 0.02 = 0.068
		{"claude-mythos-5-2", 0.068},
	} {
		t.Run(c.model, func(t *testing.T) {
			g := e2eIn(g, t)
			up.Enqueue("/v1/messages", fakeupstream.Reply{Body: `{"id":"msg_1","type":"message","role":"assistant","model":"` + c.model +
				`","content":[{"type":"text","text":"ok"}],"stop_reason":"end_turn","stop_sequence":null,` + usage + `}`})
			resp := g.post("/v1/messages?beta=true", tok, `{"model":"`+c.model+`","max_tokens":256,"messages":[{"role":"user","content":"hi"}]}`,
				"Anthropic-Version", "2023-06-01", "X-Claude-Code-Session-Id", "9a0f5c1e-0000-4000-8000-000000000001")
			body := e2eRead(t, resp)
			if resp.StatusCode != 200 {
				t.Fatalf("status %d %s; the provider serves %s (Claude Code lists it as a first-party model)", resp.StatusCode, body, c.model)
			}
			g.sync()
			call := g.lastCall()
			if call["model"] != c.model || call["priced"] != true || !e2eNear(e2eCost(t, call), c.want) {
				t.Fatalf("model %v priced %v cost %v; want %s priced at %v", call["model"], call["priced"], call["cost_usd"], c.model, c.want)
			}
		})
	}
}

// TestClaudeCodeStalledStreamNotHiddenByPings: a provider stream that falls
// silent mid-answer. Claude Code straight at the provider aborts it after
// its stream idle watchdog (300 s, a floor CLAUDE_STREAM_IDLE_TIMEOUT_MS
// cannot lower) and retries (measured: answer after 300.7 s). Through the
// gateway its keep-alive pings every 15 s reset that watchdog, so Claude
// Code waited for the gateway's own bound, streamSilence (600 s), and only
// then got the cut (measured: 601.8 s, audit 22K); a Claude Code stream is
// now bounded by claudeCodeSilence (270 s). Scaled here 1 s → 1 ms
// (streamSilence 600 ms, claudeCodeSilence 270 ms, pings every 100 ms): a
// Claude Code stream (its session header) must either see no byte the
// provider did not send for Claude Code's 300 (ms) or be ended by the
// gateway within them.
func TestClaudeCodeStalledStreamNotHiddenByPings(t *testing.T) {
	setForTest(t, &streamSilence, 600*time.Millisecond)
	setForTest(t, &claudeCodeSilence, 270*time.Millisecond)
	setForTest(t, &pingEvery, 100*time.Millisecond)
	const watchdog = 300 * time.Millisecond // Claude Code's 300 s, scaled as streamSilence is
	// The provider's timeout at its default, scaled alike (10 min → 600 ms).
	g, _ := oddUpstream(t, "timeout 600ms", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
		for _, e := range []string{
			`event: message_start` + "\n" + `data: {"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"claude-opus-5-5","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":100,"output_tokens":1}}}` + "\n\n",
			`event: content_block_start` + "\n" + `data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}` + "\n\n",
			`event: content_block_delta` + "\n" + `data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}}` + "\n\n",
		} {
			_, _ = io.WriteString(w, e)
		}
		w.(http.Flusher).Flush()
		<-r.Context().Done() // silent until the gateway hangs up
	})
	_, tok := e2eKey(g, "stalled")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := e2ePostCtx(ctx, g, "/v1/messages?beta=true", tok,
		`{"model":"claude-opus-5-5","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"hi"}]}`,
		"Anthropic-Version", "2023-06-01", "X-Claude-Code-Session-Id", "9a0f5c1e-0000-4000-8000-000000000002")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	type line struct {
		at   time.Time
		text string
	}
	lines := make(chan line, 64)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			lines <- line{time.Now(), sc.Text()}
		}
	}()
	var silentSince time.Time // when the provider's last event ("Hello") arrived
	var afterSilence []string
	var ended time.Time
	for l := range lines {
		if silentSince.IsZero() {
			if strings.Contains(l.text, `"Hello"`) {
				silentSince = l.at
			}
			continue
		}
		if l.text != "" && l.at.Sub(silentSince) < watchdog {
			afterSilence = append(afterSilence, l.text)
		}
	}
	ended = time.Now()
	if silentSince.IsZero() {
		t.Fatal("the provider's events never reached the client")
	}
	if len(afterSilence) > 0 && ended.Sub(silentSince) > watchdog {
		t.Errorf("during the provider's silence the Claude Code client got %q within %v (resetting its idle watchdog) and the stream "+
			"ended only %v after the provider's last event: Claude Code straight at the provider gives up after its watchdog, "+
			"through the gateway it waits for streamSilence", afterSilence, watchdog, ended.Sub(silentSince).Round(time.Millisecond))
	}
}

// A Claude Code session routed to an OpenAI reasoning model: Chat
// Completions streams nothing while the model reasons (README: "an OpenAI
// reasoning model thinks for minutes before its first chunk"), which is
// why the gateway pings its client and bounds the silence by
// max(streamSilence, the provider's timeout). The operator gave the
// provider a long timeout for it. 1c35f73 cut every Claude Code stream
// (relaysCuts) after claudeCodeSilence, whatever the provider: the answer
// was lost, Claude Code retried into the same silence, and each attempt's
// reasoning was billed (review 22R2). The shorter bound is for streams
// from Anthropic-type providers only. Scaled 1 s → 1 ms:
// streamSilence 600 ms (10 min), claudeCodeSilence 270 ms (4.5 min),
// provider timeout 2 s (~33 min), pings every 100 ms, the model silent
// 800 ms (~13 min) before its first chunk.
func TestClaudeCodeTranslatedReasoningSilence(t *testing.T) {
	setForTest(t, &streamSilence, 600*time.Millisecond)
	setForTest(t, &claudeCodeSilence, 270*time.Millisecond)
	setForTest(t, &pingEvery, 100*time.Millisecond)
	g, n := oddUpstream(t, "timeout 2s", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		select { // reasoning: nothing on the wire
		case <-time.After(800 * time.Millisecond):
		case <-r.Context().Done():
			return
		}
		for _, c := range []string{
			`{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-5-nano","choices":[{"index":0,"delta":{"role":"assistant","content":"Done."},"finish_reason":null}]}`,
			`{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-5-nano","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}`,
			`{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-5-nano","choices":[],"usage":{"prompt_tokens":100,"completion_tokens":900,"total_tokens":1000,"completion_tokens_details":{"reasoning_tokens":898}}}`,
		} {
			_, _ = io.WriteString(w, "data: "+c+"\n\n")
		}
		_, _ = io.WriteString(w, "data: [DONE]\n\n")
	})
	_, tok := e2eKey(g, "cc")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := e2ePostCtx(ctx, g, "/v1/messages?beta=true", tok,
		`{"model":"nano","max_tokens":1024,"stream":true,"messages":[{"role":"user","content":"think hard"}]}`,
		"Anthropic-Version", "2023-06-01", "X-Claude-Code-Session-Id", "9a0f5c1e-0000-4000-8000-000000000003")
	if err != nil {
		t.Fatal(err)
	}
	body := e2eRead(t, resp)
	if resp.StatusCode != 200 || !strings.Contains(body, `"Done."`) || !strings.Contains(body, "message_stop") || strings.Contains(body, "event: error") {
		t.Errorf("status %d, %d upstream requests; the reasoning model's answer after 800 ms of silence (provider timeout 2s) did not reach the Claude Code client:\n%.1500s",
			resp.StatusCode, n.Load(), body)
	}
}
