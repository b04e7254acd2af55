package metis

// TestSoak: 32 concurrent clients for 20 s against one gateway, mixing
// both shapes, streams and not, translated calls, cancellations, upstream
// errors (retried and returned), connections dying mid-stream, revoked
// keys, allowed_models refusals, a budget that runs out, bad bodies and
// config reloads; then the trace, the ledger, the metrics and the
// goroutines are checked.
//
// Run alone: go test -race -count=1 -run TestSoak -timeout 15m .
// METIS_SOAK_SECONDS sets the load's duration (default 20; 70 finds more).

import (
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	dto "github.com/prometheus/client_model/go"

	"github.com/metisgateway/metis/internal/fakeupstream"
	"github.com/metisgateway/metis/store"
)

// soakOutcome is what one client request did, as the client saw it.
type soakOutcome struct {
	kind   string
	sid    string // X-Metis-Session-Id, unique per request
	keyID  string // the key the request was made with ("" none/unknown)
	status int    // 0: no response
	err    error  // transport error before a response

	// expectations
	refuseReason string // expected refusal reason ("" when it is a call)
	maybeRefused string // a call that may be refused with this reason (budget, revoked_key)
	wantStatus   int    // 0: not checked
	wantAttempts int
	wantClass    string // "" = error_class null, "-" = not checked
	msgStartIn   int64  // input tokens of the scripted message_start (Anthropic upstream), 0 none
	cancelled    bool   // the client hung up on purpose
	sawEvents    int    // SSE events the client read before hanging up / the end
	gotErrEvent  bool   // the stream carried an error event at its end
}

func soakDropped() float64 {
	var m dto.Metric
	_ = mDropped.Write(&m)
	return m.GetCounter().GetValue()
}

func TestSoak(t *testing.T) {
	dur := 20 * time.Second
	if s := os.Getenv("METIS_SOAK_SECONDS"); s != "" {
		n, _ := strconv.Atoi(s)
		dur = time.Duration(n) * time.Second
	}
	goroutinesBefore := runtime.NumGoroutine()
	droppedBefore := soakDropped()

	up := fakeupstream.New(nil)
	defer up.Close()
	db := tempDB(t)
	g := startGateway(t, gatewayConfig(db, up.URL, ""))

	var mainKeys []store.Key
	var mainToks []string
	for i := range 4 {
		k, tok := g.issueKey(store.IssueParams{Name: fmt.Sprintf("soak-%d", i), User: fmt.Sprintf("u%d", i), Team: "soak"})
		mainKeys, mainToks = append(mainKeys, k), append(mainToks, tok)
	}
	limitedKey, limitedTok := g.issueKey(store.IssueParams{Name: "limited", User: "lim", Team: "soak", AllowedModels: []string{"haiku"}})
	badKey, badTok := g.issueKey(store.IssueParams{Name: "bad-bodies", User: "bad", Team: "soak"})
	cappedKey, cappedTok := g.issueKey(store.IssueParams{Name: "capped", User: "cap", Team: "capped"})
	hard := 0.07 * dur.Seconds() / 70 // runs out about halfway through
	capKey(t, g, cappedKey, hard)

	// Revocable keys: a new one every 4 s, revoked 2.5 s later while its
	// slow streams are in flight.
	type revKey struct {
		id, tok string
	}
	var revMu sync.Mutex
	var revCurrent *revKey
	var revRevoked []revKey
	issueRev := func(n int) *revKey {
		k, tok, err := g.app().store.IssueKey(context.Background(), store.IssueParams{Name: fmt.Sprintf("rev-%d", n), User: "rev", Team: "soak"})
		if err != nil {
			t.Errorf("issuing a revocable key: %v", err)
			return nil
		}
		return &revKey{k.ID, tok}
	}
	revCurrent = issueRev(0)

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: 60 * time.Second}

	var seq atomic.Int64
	newSID := func() string { return fmt.Sprintf("soak-%07d-x", seq.Add(1)) }
	matchSID := func(sid string) func(*fakeupstream.Recorded) bool {
		marker := "[[" + sid + "]]"
		return func(r *fakeupstream.Recorded) bool { return strings.Contains(r.Body, marker) }
	}
	enqueue := func(path, sid string, rs ...fakeupstream.Reply) {
		for i := range rs {
			rs[i].Match = matchSID(sid)
		}
		up.Enqueue(path, rs...)
	}
	const text = "The quick brown fox jumps over the lazy dog and keeps running far away."
	anthBody := func(model, sid string, stream bool) string {
		return fmt.Sprintf(`{"model":%q,"max_tokens":128,"stream":%v,"messages":[{"role":"user","content":"Say something [[%s]]"}]}`, model, stream, sid)
	}
	oaiBody := func(model, sid string, stream bool) string {
		return fmt.Sprintf(`{"model":%q,"stream":%v,"max_completion_tokens":128,"messages":[{"role":"user","content":"Say something [[%s]]"}]}`, model, stream, sid)
	}
	gap := func() time.Duration { return time.Duration(2+rand.IntN(25)) * time.Millisecond }

	// do sends one request and reads the answer (streamed or not). When
	// cancelAfter > 0 the client hangs up after that many SSE events; when
	// cancelTimer > 0, after that long.
	do := func(o *soakOutcome, path, tok, body string, anth bool, cancelAfter int, cancelTimer time.Duration, extraHdr ...string) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		if cancelTimer > 0 {
			var c2 context.CancelFunc
			ctx, c2 = context.WithTimeout(ctx, cancelTimer)
			defer c2()
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, g.URL+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if tok != "" {
			req.Header.Set("X-Api-Key", tok)
		}
		if anth {
			req.Header.Set("Anthropic-Version", "2023-06-01")
		}
		req.Header.Set("X-Metis-Session-Id", o.sid)
		for i := 0; i+1 < len(extraHdr); i += 2 {
			req.Header.Set(extraHdr[i], extraHdr[i+1])
		}
		resp, err := client.Do(req)
		if err != nil {
			// A client that hangs up before any answer may or may not have
			// reached the gateway: counted with the transport errors.
			o.err = err
			if cancelTimer > 0 && ctx.Err() != nil {
				o.cancelled = true
			}
			return
		}
		defer resp.Body.Close()
		o.status = resp.StatusCode
		if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
			_, _ = io.ReadAll(resp.Body)
			return
		}
		rd := e2eNewSSEReader(resp.Body)
		for {
			ev, ok := rd.next()
			if !ok {
				if ctx.Err() != nil {
					o.cancelled = true
				}
				return
			}
			o.sawEvents++
			if ev.Name == "error" || strings.Contains(ev.Data, `"error"`) {
				o.gotErrEvent = true
			}
			if cancelAfter > 0 && o.sawEvents >= cancelAfter {
				o.cancelled = true
				cancel()
				return
			}
		}
	}

	type kind struct {
		name   string
		weight int
		run    func(o *soakOutcome)
	}
	mainTok := func(o *soakOutcome) string {
		i := rand.IntN(len(mainToks))
		o.keyID = mainKeys[i].ID
		return mainToks[i]
	}
	anthStream := func(model string, in int) fakeupstream.Reply {
		return fakeupstream.AnthropicStream(model, in, "end_turn", fakeupstream.TextBlock(text))
	}
	kinds := []kind{
		{"anth_same_nonstream", 6, func(o *soakOutcome) {
			enqueue("/v1/messages", o.sid, fakeupstream.AnthropicMessage("claude-haiku-4-5", 20+rand.IntN(500), "end_turn", fakeupstream.TextBlock(text)))
			o.wantStatus, o.wantAttempts = 200, 1
			do(o, "/v1/messages", mainTok(o), anthBody("haiku", o.sid, false), true, 0, 0)
		}},
		{"anth_same_stream", 6, func(o *soakOutcome) {
			r := anthStream("claude-haiku-4-5", 20+rand.IntN(500))
			r.Gap = gap()
			enqueue("/v1/messages", o.sid, r)
			o.wantStatus, o.wantAttempts = 200, 1
			do(o, "/v1/messages", mainTok(o), anthBody("haiku", o.sid, true), true, 0, 0)
		}},
		{"oai_same_nonstream", 6, func(o *soakOutcome) {
			enqueue("/v1/chat/completions", o.sid, fakeupstream.OpenAICompletion("gpt-5-nano", text, 20+rand.IntN(500)))
			o.wantStatus, o.wantAttempts = 200, 1
			do(o, "/v1/chat/completions", mainTok(o), oaiBody("nano", o.sid, false), false, 0, 0)
		}},
		{"oai_same_stream", 6, func(o *soakOutcome) {
			r := fakeupstream.OpenAITextStream("gpt-5-nano", text, 20+rand.IntN(500), true)
			r.Gap = gap()
			enqueue("/v1/chat/completions", o.sid, r)
			o.wantStatus, o.wantAttempts = 200, 1
			do(o, "/v1/chat/completions", mainTok(o), oaiBody("nano", o.sid, true), false, 0, 0)
		}},
		{"anth_to_oai_nonstream", 4, func(o *soakOutcome) {
			enqueue("/v1/chat/completions", o.sid, fakeupstream.OpenAICompletion("gpt-5-nano", text, 20+rand.IntN(500)))
			o.wantStatus, o.wantAttempts = 200, 1
			do(o, "/v1/messages", mainTok(o), anthBody("nano", o.sid, false), true, 0, 0)
		}},
		{"anth_to_oai_stream", 4, func(o *soakOutcome) {
			r := fakeupstream.OpenAITextStream("gpt-5-nano", text, 20+rand.IntN(500), true)
			r.Gap = gap()
			enqueue("/v1/chat/completions", o.sid, r)
			o.wantStatus, o.wantAttempts = 200, 1
			do(o, "/v1/messages", mainTok(o), anthBody("nano", o.sid, true), true, 0, 0)
		}},
		{"oai_to_anth_nonstream", 4, func(o *soakOutcome) {
			enqueue("/v1/messages", o.sid, fakeupstream.AnthropicMessage("claude-haiku-4-5", 20+rand.IntN(500), "end_turn", fakeupstream.TextBlock(text)))
			o.wantStatus, o.wantAttempts = 200, 1
			do(o, "/v1/chat/completions", mainTok(o), oaiBody("haiku", o.sid, false), false, 0, 0)
		}},
		{"oai_to_anth_stream", 4, func(o *soakOutcome) {
			r := anthStream("claude-haiku-4-5", 20+rand.IntN(500))
			r.Gap = gap()
			enqueue("/v1/messages", o.sid, r)
			o.wantStatus, o.wantAttempts = 200, 1
			do(o, "/v1/chat/completions", mainTok(o), oaiBody("haiku", o.sid, true), false, 0, 0)
		}},
		{"fixture", 4, func(o *soakOutcome) {
			o.wantStatus, o.wantAttempts = 200, 1
			switch rand.IntN(6) {
			case 0:
				r := fakeupstream.FromFixture(fakeupstream.FixtureAnthropicStream, 0)
				r.Gap = gap()
				enqueue("/v1/messages", o.sid, r)
				do(o, "/v1/messages", mainTok(o), anthBody("sonnet", o.sid, true), true, 0, 0)
			case 1:
				enqueue("/v1/messages", o.sid, fakeupstream.FromFixture(fakeupstream.FixtureAnthropicNonStream, rand.IntN(2)))
				do(o, "/v1/messages", mainTok(o), anthBody("sonnet", o.sid, false), true, 0, 0)
			case 2:
				r := fakeupstream.FromFixture(fakeupstream.FixtureOpenAIStream, 0)
				r.Gap = gap()
				enqueue("/v1/chat/completions", o.sid, r)
				do(o, "/v1/chat/completions", mainTok(o), oaiBody("nano", o.sid, true), false, 0, 0)
			case 3:
				enqueue("/v1/chat/completions", o.sid, fakeupstream.FromFixture(fakeupstream.FixtureOpenAINonStream, 0))
				do(o, "/v1/chat/completions", mainTok(o), oaiBody("nano", o.sid, false), false, 0, 0)
			case 4: // translated: OpenAI client, recorded Anthropic tool-use stream
				r := fakeupstream.FromFixture(fakeupstream.FixtureAnthropicStream, 0)
				r.Gap = gap()
				enqueue("/v1/messages", o.sid, r)
				do(o, "/v1/chat/completions", mainTok(o), oaiBody("sonnet", o.sid, true), false, 0, 0)
			case 5: // translated: Anthropic client, recorded OpenAI parallel tool calls
				r := fakeupstream.FromFixture(fakeupstream.FixtureOpenAIToolsStream, 0)
				r.Gap = gap()
				enqueue("/v1/chat/completions", o.sid, r)
				do(o, "/v1/messages", mainTok(o), anthBody("nano", o.sid, true), true, 0, 0)
			}
		}},
		{"cancel_anth_stall", 4, func(o *soakOutcome) {
			in := 1000 + rand.IntN(5000)
			r := anthStream("claude-haiku-4-5", in)
			r.StallAfter = 1 + rand.IntN(6)
			r.Gap = time.Duration(rand.IntN(5)) * time.Millisecond
			enqueue("/v1/messages", o.sid, r)
			o.msgStartIn, o.wantClass = int64(in), errCancelled
			do(o, "/v1/messages", mainTok(o), anthBody("haiku", o.sid, true), true, 1+rand.IntN(r.StallAfter), 0)
		}},
		{"cancel_oai_to_anth_stall", 3, func(o *soakOutcome) {
			in := 1000 + rand.IntN(5000)
			r := anthStream("claude-haiku-4-5", in)
			r.StallAfter = 2 + rand.IntN(5) // message_start, content_block_start, …
			enqueue("/v1/messages", o.sid, r)
			o.msgStartIn, o.wantClass = int64(in), errCancelled
			do(o, "/v1/chat/completions", mainTok(o), oaiBody("haiku", o.sid, true), false, 1, 0)
		}},
		{"cancel_oai_stall", 2, func(o *soakOutcome) {
			r := fakeupstream.OpenAITextStream("gpt-5-nano", text, 300, true)
			r.StallAfter = 1 + rand.IntN(4)
			enqueue("/v1/chat/completions", o.sid, r)
			o.wantClass = errCancelled
			do(o, "/v1/chat/completions", mainTok(o), oaiBody("nano", o.sid, true), false, 1, 0)
		}},
		{"cancel_timer", 3, func(o *soakOutcome) {
			in := 1000 + rand.IntN(5000)
			r := anthStream("claude-haiku-4-5", in)
			r.Gap = time.Duration(10+rand.IntN(30)) * time.Millisecond
			enqueue("/v1/messages", o.sid, r)
			o.msgStartIn, o.wantClass = int64(in), "-"
			do(o, "/v1/messages", mainTok(o), anthBody("haiku", o.sid, true), true, 0, time.Duration(rand.IntN(600))*time.Millisecond)
		}},
		{"retry_529_then_ok", 2, func(o *soakOutcome) {
			e := fakeupstream.AnthropicError(529, "overloaded_error", "Overloaded")
			e.Header.Set("Retry-After-Ms", strconv.Itoa(10+rand.IntN(100)))
			enqueue("/v1/messages", o.sid, e, fakeupstream.AnthropicMessage("claude-haiku-4-5", 100, "end_turn", fakeupstream.TextBlock(text)))
			o.wantStatus, o.wantAttempts = 200, 2
			do(o, "/v1/messages", mainTok(o), anthBody("haiku", o.sid, false), true, 0, 0)
		}},
		{"retry_500_then_stream", 2, func(o *soakOutcome) {
			e := fakeupstream.OpenAIError(500, "server_error", "server_error", "The server had an error")
			e.Header.Set("Retry-After-Ms", strconv.Itoa(10+rand.IntN(100)))
			r := fakeupstream.OpenAITextStream("gpt-5-nano", text, 77, true)
			r.Gap = gap()
			enqueue("/v1/chat/completions", o.sid, e, r)
			o.wantStatus, o.wantAttempts = 200, 2
			do(o, "/v1/chat/completions", mainTok(o), oaiBody("nano", o.sid, true), false, 0, 0)
		}},
		{"retry_overloaded_event", 1, func(o *soakOutcome) {
			e := fakeupstream.Reply{Status: 200, Header: http.Header{"Content-Type": {"text/event-stream"}},
				Events: []string{"event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n"}}
			enqueue("/v1/messages", o.sid, e, anthStream("claude-haiku-4-5", 150))
			o.wantStatus, o.wantAttempts = 200, 2
			do(o, "/v1/messages", mainTok(o), anthBody("haiku", o.sid, true), true, 0, 0)
		}},
		{"cancel_during_retry", 2, func(o *soakOutcome) {
			e := fakeupstream.AnthropicError(529, "overloaded_error", "Overloaded")
			e.Header.Set("Retry-After", "1")
			r := anthStream("claude-haiku-4-5", 300)
			r.Gap = gap()
			enqueue("/v1/messages", o.sid, e, r)
			o.msgStartIn, o.wantClass = 300, "-"
			if rand.IntN(2) == 0 {
				do(o, "/v1/messages", mainTok(o), anthBody("haiku", o.sid, true), true, 0, time.Duration(100+rand.IntN(1400))*time.Millisecond)
			} else {
				do(o, "/v1/chat/completions", mainTok(o), oaiBody("haiku", o.sid, true), false, 0, time.Duration(100+rand.IntN(1400))*time.Millisecond)
			}
		}},
		{"cancel_delayed_nonstream", 2, func(o *soakOutcome) {
			r := fakeupstream.AnthropicMessage("claude-haiku-4-5", 100, "end_turn", fakeupstream.TextBlock(text))
			r.Delay = time.Duration(100+rand.IntN(300)) * time.Millisecond
			enqueue("/v1/messages", o.sid, r)
			o.wantClass = "-"
			do(o, "/v1/chat/completions", mainTok(o), oaiBody("haiku", o.sid, false), false, 0, time.Duration(50+rand.IntN(500))*time.Millisecond)
		}},
		{"cancel_translated_timer", 2, func(o *soakOutcome) {
			r := fakeupstream.OpenAITextStream("gpt-5-nano", text, 333, true)
			r.Gap = time.Duration(10+rand.IntN(30)) * time.Millisecond
			enqueue("/v1/chat/completions", o.sid, r)
			o.wantClass = "-"
			do(o, "/v1/messages", mainTok(o), anthBody("nano", o.sid, true), true, 0, time.Duration(rand.IntN(500))*time.Millisecond)
		}},
		{"returned_429", 2, func(o *soakOutcome) {
			e := fakeupstream.AnthropicError(429, "rate_limit_error", "Rate limited")
			e.Header.Set("Retry-After", "30") // over max_retry_wait: handed back
			enqueue("/v1/messages", o.sid, e)
			o.wantStatus, o.wantAttempts, o.wantClass = 429, 1, errRateLimited
			if rand.IntN(2) == 0 {
				do(o, "/v1/messages", mainTok(o), anthBody("haiku", o.sid, false), true, 0, 0)
			} else {
				do(o, "/v1/chat/completions", mainTok(o), oaiBody("haiku", o.sid, true), false, 0, 0)
			}
		}},
		{"returned_500_exhausted", 1, func(o *soakOutcome) {
			var rs []fakeupstream.Reply
			for range 3 {
				e := fakeupstream.OpenAIError(500, "server_error", "server_error", "The server had an error")
				e.Header.Set("Retry-After-Ms", "5")
				rs = append(rs, e)
			}
			enqueue("/v1/chat/completions", o.sid, rs...)
			o.wantStatus, o.wantAttempts, o.wantClass = 500, 3, errUpstream
			do(o, "/v1/chat/completions", mainTok(o), oaiBody("nano", o.sid, false), false, 0, 0)
		}},
		{"die_mid_stream", 3, func(o *soakOutcome) {
			o.wantStatus, o.wantAttempts, o.wantClass = 200, 1, errStreamInterrupted
			switch rand.IntN(3) {
			case 0:
				r := anthStream("claude-haiku-4-5", 400)
				r.Gap, r.DieAfter = gap(), 2+rand.IntN(4)
				enqueue("/v1/messages", o.sid, r)
				do(o, "/v1/messages", mainTok(o), anthBody("haiku", o.sid, true), true, 0, 0)
			case 1:
				r := anthStream("claude-haiku-4-5", 400)
				r.Gap, r.DieAfter = gap(), 2+rand.IntN(4)
				enqueue("/v1/messages", o.sid, r)
				do(o, "/v1/chat/completions", mainTok(o), oaiBody("haiku", o.sid, true), false, 0, 0)
			case 2:
				r := fakeupstream.OpenAITextStream("gpt-5-nano", text, 200, true)
				r.Gap, r.DieAfter = gap(), 2+rand.IntN(4)
				enqueue("/v1/chat/completions", o.sid, r)
				do(o, "/v1/chat/completions", mainTok(o), oaiBody("nano", o.sid, true), false, 0, 0)
			}
		}},
		{"die_mid_body", 1, func(o *soakOutcome) {
			r := fakeupstream.OpenAICompletion("gpt-5-nano", text, 200)
			r.DieAfter = 40
			enqueue("/v1/chat/completions", o.sid, r)
			o.wantStatus, o.wantAttempts, o.wantClass = 502, 1, errStreamInterrupted
			do(o, "/v1/chat/completions", mainTok(o), oaiBody("nano", o.sid, false), false, 0, 0)
		}},
		{"limited_ok", 2, func(o *soakOutcome) {
			enqueue("/v1/messages", o.sid, fakeupstream.AnthropicMessage("claude-haiku-4-5", 50, "end_turn", fakeupstream.TextBlock(text)))
			o.keyID, o.wantStatus, o.wantAttempts = limitedKey.ID, 200, 1
			do(o, "/v1/messages", limitedTok, anthBody("haiku", o.sid, false), true, 0, 0)
		}},
		{"limited_refused", 2, func(o *soakOutcome) {
			o.keyID, o.refuseReason = limitedKey.ID, "model_not_allowed"
			if rand.IntN(2) == 0 {
				do(o, "/v1/chat/completions", limitedTok, oaiBody("nano", o.sid, false), false, 0, 0)
			} else {
				do(o, "/v1/messages", limitedTok, anthBody("sonnet", o.sid, true), true, 0, 0)
			}
		}},
		{"bad_body", 4, func(o *soakOutcome) {
			o.keyID = badKey.ID
			switch rand.IntN(6) {
			case 0:
				o.refuseReason = "malformed_json"
				do(o, "/v1/messages", badTok, `{"model":"haiku","max_tokens":5,`, true, 0, 0)
			case 1:
				o.refuseReason = "invalid_request"
				do(o, "/v1/messages", badTok, `{"model":"haiku","messages":[{"role":"user","content":"no max_tokens"}]}`, true, 0, 0)
			case 2:
				o.refuseReason = "unknown_model"
				do(o, "/v1/chat/completions", badTok, oaiBody(fmt.Sprintf("no-such-model-%d", rand.IntN(3)), o.sid, false), false, 0, 0)
			case 3:
				o.refuseReason = "duplicate_key"
				do(o, "/v1/chat/completions", badTok, `{"model":"nano","model":"haiku","messages":[]}`, false, 0, 0)
			case 4:
				o.refuseReason, o.keyID = "missing_key", ""
				do(o, "/v1/messages", "", anthBody("haiku", o.sid, false), true, 0, 0)
			case 5:
				o.refuseReason, o.keyID = "unknown_key", ""
				do(o, "/v1/chat/completions", "gw_01JZZZZZZZZZZZZZZZZZZZZZZZ0000000000000000000000000000000", oaiBody("nano", o.sid, false), false, 0, 0)
			}
		}},
		{"revocable", 4, func(o *soakOutcome) {
			revMu.Lock()
			var k revKey
			if len(revRevoked) > 0 && rand.IntN(10) < 3 {
				k = revRevoked[rand.IntN(len(revRevoked))]
			} else if revCurrent != nil {
				k = *revCurrent
			}
			revMu.Unlock()
			if k.tok == "" {
				return
			}
			o.keyID, o.maybeRefused = k.id, "revoked_key"
			r := anthStream("claude-haiku-4-5", 300)
			r.Gap = time.Duration(20+rand.IntN(30)) * time.Millisecond
			enqueue("/v1/messages", o.sid, r)
			o.wantAttempts = 1
			do(o, "/v1/messages", k.tok, anthBody("haiku", o.sid, true), true, 0, 0)
		}},
	}
	totalWeight := 0
	for _, k := range kinds {
		totalWeight += k.weight
	}
	pick := func() kind {
		n := rand.IntN(totalWeight)
		for _, k := range kinds {
			if n < k.weight {
				return k
			}
			n -= k.weight
		}
		panic("unreachable")
	}
	cappedRun := func(o *soakOutcome, choice int) {
		o.keyID, o.maybeRefused = cappedKey.ID, "budget"
		switch choice {
		case 4:
			o.kind = "capped_retry"
			e := fakeupstream.AnthropicError(529, "overloaded_error", "Overloaded")
			e.Header.Set("Retry-After-Ms", "30")
			enqueue("/v1/messages", o.sid, e, fakeupstream.AnthropicMessage("claude-haiku-4-5", 20+rand.IntN(60), "end_turn", fakeupstream.TextBlock(text)))
			o.wantAttempts = 2
			do(o, "/v1/messages", cappedTok, anthBody("haiku", o.sid, false), true, 0, 0)
		case 5:
			o.kind = "capped_die"
			r := anthStream("claude-haiku-4-5", 20+rand.IntN(60))
			r.DieAfter = 3
			enqueue("/v1/messages", o.sid, r)
			o.wantAttempts, o.wantClass = 1, errStreamInterrupted
			do(o, "/v1/chat/completions", cappedTok, oaiBody("haiku", o.sid, true), false, 0, 0)
		case 0, 1: // sonnet, the default reply (nothing enqueued: a refusal leaves nothing behind)
			o.kind = "capped_nonstream"
			o.wantAttempts = 1
			do(o, "/v1/messages", cappedTok, anthBody("sonnet", o.sid, false), true, 0, 0)
		case 2:
			o.kind = "capped_stream"
			// Usage within the worst case the gateway reserves (one token
			// per two bytes of the ~170-byte body): a fake provider
			// reporting more could overshoot any reservation.
			r := anthStream("claude-haiku-4-5", 20+rand.IntN(60))
			r.Gap = gap()
			enqueue("/v1/messages", o.sid, r)
			o.wantAttempts = 1
			do(o, "/v1/messages", cappedTok, anthBody("haiku", o.sid, true), true, 0, 0)
		case 3:
			o.kind = "capped_cancel"
			in := 20 + rand.IntN(60)
			r := anthStream("claude-haiku-4-5", in)
			r.StallAfter = 2
			enqueue("/v1/messages", o.sid, r)
			o.msgStartIn, o.wantClass = int64(in), errCancelled
			do(o, "/v1/chat/completions", cappedTok, oaiBody("haiku", o.sid, true), false, 1, 0)
		}
	}

	var outMu sync.Mutex
	var outcomes []*soakOutcome
	record := func(o *soakOutcome) {
		outMu.Lock()
		outcomes = append(outcomes, o)
		outMu.Unlock()
	}

	start := time.Now()
	deadline := start.Add(dur)
	var wg sync.WaitGroup
	const workers = 32
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				o := &soakOutcome{sid: newSID()}
				if w < 2 {
					cappedRun(o, rand.IntN(6))
					record(o)
					time.Sleep(time.Duration(40+rand.IntN(40)) * time.Millisecond)
					continue
				}
				k := pick()
				o.kind = k.name
				k.run(o)
				if o.kind == "revocable" && o.keyID == "" {
					continue
				}
				record(o)
			}
		}()
	}

	// Revoker.
	wg.Add(1)
	go func() {
		defer wg.Done()
		n := 1
		for time.Now().Add(4 * time.Second).Before(deadline) {
			time.Sleep(2500 * time.Millisecond)
			revMu.Lock()
			cur := revCurrent
			revMu.Unlock()
			if cur != nil {
				if _, err := g.app().store.RevokeKey(context.Background(), cur.id); err != nil {
					t.Errorf("revoking: %v", err)
				}
				revMu.Lock()
				revRevoked = append(revRevoked, *cur)
				revCurrent = nil
				revMu.Unlock()
			}
			time.Sleep(1500 * time.Millisecond)
			nk := issueRev(n)
			n++
			revMu.Lock()
			revCurrent = nk
			revMu.Unlock()
		}
	}()

	// Reloads.
	var reloads atomic.Int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 1; i <= 3; i++ {
			at := start.Add(time.Duration(i) * dur / 4)
			time.Sleep(time.Until(at))
			extra := fmt.Sprintf("alias soakreload%d anthropic:claude-haiku-4-5", i)
			if err := g.tryLoad(gatewayConfig(db, up.URL, extra)); err != nil {
				t.Errorf("reload %d: %v", i, err)
				continue
			}
			reloads.Add(1)
		}
	}()
	wg.Wait()
	loadTime := time.Since(start)

	// On a slow or busy machine (CI runs other packages' tests alongside)
	// the capped key may not have spent its budget in the time given: its
	// Sonnet calls go on, one at a time, until one is refused, so that the
	// refusal and the checks on it are always exercised.
	cappedRefused := func() bool {
		outMu.Lock()
		defer outMu.Unlock()
		for _, o := range outcomes {
			if o.keyID == cappedKey.ID && o.status == http.StatusTooManyRequests {
				return true
			}
		}
		return false
	}
	for i := 0; i < 1000 && !cappedRefused(); i++ {
		o := &soakOutcome{sid: newSID()}
		cappedRun(o, 0)
		record(o)
	}

	// Let the calls of clients that hung up finish, then check.
	settleDeadline := time.Now().Add(20 * time.Second)
	for !g.app().inflight.idle() && time.Now().Before(settleDeadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if !g.app().inflight.idle() {
		t.Errorf("calls still in flight 20 s after the load stopped")
	}
	refusals := g.refusals() // flushes the summed refusals, syncs
	g.sync()

	// ---- load summary
	byKind := map[string]int{}
	byKindStatus := map[string]map[int]int{}
	transportErrs := 0
	var transportErrSamples []string
	for _, o := range outcomes {
		byKind[o.kind]++
		if byKindStatus[o.kind] == nil {
			byKindStatus[o.kind] = map[int]int{}
		}
		byKindStatus[o.kind][o.status]++
		if o.err != nil {
			transportErrs++
			if len(transportErrSamples) < 5 {
				transportErrSamples = append(transportErrSamples, o.kind+": "+o.err.Error())
			}
		}
	}
	kindNames := make([]string, 0, len(byKind))
	for k := range byKind {
		kindNames = append(kindNames, k)
	}
	sort.Strings(kindNames)
	t.Logf("SOAK: %d requests in %s by %d clients, %d reloads, %d revocations, %d transport errors %v",
		len(outcomes), loadTime.Round(time.Millisecond), workers, reloads.Load(), len(revRevoked), transportErrs, transportErrSamples)
	for _, k := range kindNames {
		t.Logf("SOAK:   %-26s %6d  statuses %v", k, byKind[k], byKindStatus[k])
	}

	// ---- trace
	type ev struct {
		id, typ string
		p       map[string]any
	}
	rows, err := g.db().Query(`SELECT id, type, payload_json FROM events ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	var all []ev
	for rows.Next() {
		var e ev
		var s string
		if err := rows.Scan(&e.id, &e.typ, &s); err != nil {
			t.Fatal(err)
		}
		e.p = map[string]any{}
		if err := jsonUnmarshal([]byte(s), &e.p); err != nil {
			t.Fatal(err)
		}
		all = append(all, e)
	}
	rows.Close()
	byTurn := map[string][]ev{}
	routeBySID := map[string][]string{} // session → turn ids
	callByTurn := map[string]map[string]any{}
	turnDone := map[string]map[string]any{}
	rejectedBySID := map[string]int{}
	typeCount := map[string]int{}
	for _, e := range all {
		typeCount[e.typ]++
		if turn, _ := e.p["turn_id"].(string); turn != "" {
			byTurn[turn] = append(byTurn[turn], e)
		}
		switch e.typ {
		case store.TypeRouteDecided:
			sid, _ := e.p["session_id"].(string)
			routeBySID[sid] = append(routeBySID[sid], e.p["turn_id"].(string))
		case store.TypeCallCompleted:
			callByTurn[e.p["turn_id"].(string)] = e.p
		case store.TypeTurnCompleted:
			turnDone[e.p["turn_id"].(string)] = e.p
		case store.TypeRequestRejected:
			if sid, _ := e.p["session_id"].(string); sid != "" {
				rejectedBySID[sid]++
			}
		}
	}
	t.Logf("SOAK: events by type %v", typeCount)

	var violations []string
	violate := func(format string, args ...any) {
		violations = append(violations, fmt.Sprintf(format, args...))
	}

	// Invariant 1: every turn is exactly route.decided, llm.call_completed,
	// turn.completed (in id order).
	badTurns := 0
	for turn, evs := range byTurn {
		var types []string
		for _, e := range evs {
			types = append(types, e.typ)
		}
		if s := strings.Join(types, ","); s != "route.decided,llm.call_completed,turn.completed" {
			badTurns++
			if badTurns <= 10 {
				violate("turn %s has events %s", turn, s)
			}
		}
	}

	// Invariant 2: each accepted request has one triple, each refused one none.
	expectedRefusals := map[string]int{}
	unknownRefusals := map[string]int{} // transport errors: maybe refused, maybe not
	accepted, refused, unknown, transportErrAccepted := 0, 0, 0, 0
	kindCheckFail := map[string]int{}
	var cancelledChecked, cancelledTokensBad int
	var cancelledTokenSamples []string
	successChecked := 0
	for _, o := range outcomes {
		turns := routeBySID[o.sid]
		refusedWith := o.refuseReason
		if refusedWith == "" && o.maybeRefused != "" {
			switch {
			case o.maybeRefused == "budget" && o.status == 429:
				refusedWith = "budget"
			case o.maybeRefused == "revoked_key" && o.status == 401:
				refusedWith = "revoked_key"
			}
		}
		if o.err != nil {
			unknown++
			if len(turns) > 0 {
				transportErrAccepted++
			}
			if refusedWith != "" {
				unknownRefusals[refusedWith]++
			} else if len(turns) > 1 {
				violate("request %s (%s, transport error %v): %d route.decided", o.sid, o.kind, o.err, len(turns))
			}
			continue
		}
		if refusedWith != "" {
			refused++
			expectedRefusals[refusedWith]++
			if len(turns) != 0 {
				violate("refused request %s (%s, status %d) has route.decided", o.sid, o.kind, o.status)
			}
			continue
		}
		accepted++
		if len(turns) != 1 {
			violate("accepted request %s (%s, status %d, cancelled %v) has %d route.decided", o.sid, o.kind, o.status, o.cancelled, len(turns))
			continue
		}
		c := callByTurn[turns[0]]
		if c == nil {
			violate("accepted request %s (%s) has no llm.call_completed", o.sid, o.kind)
			continue
		}
		if rejectedBySID[o.sid] != 0 {
			violate("accepted request %s (%s) also has request.rejected", o.sid, o.kind)
		}
		class, _ := c["error_class"].(string)
		status := int(num(c, "status"))
		attempts := int(num(c, "attempts"))
		fail := func(format string, args ...any) {
			kindCheckFail[o.kind]++
			if kindCheckFail[o.kind] <= 3 {
				violate("%s %s: "+format, append([]any{o.kind, o.sid}, args...)...)
			}
		}
		// Per-kind expectations (not for cancellations, whose outcome
		// depends on timing).
		if !o.cancelled && o.wantClass != "-" {
			if o.wantStatus != 0 && o.status != o.wantStatus {
				fail("client got status %d, want %d", o.status, o.wantStatus)
			}
			if o.wantAttempts != 0 && attempts != o.wantAttempts {
				fail("attempts %d, want %d (status %d class %q)", attempts, o.wantAttempts, status, class)
			}
			if o.wantClass != errCancelled && class != o.wantClass {
				fail("error_class %q, want %q (status %d, client status %d, events %d)", class, o.wantClass, status, o.status, o.sawEvents)
			}
			if o.wantClass == errStreamInterrupted && o.wantStatus == 200 && !o.gotErrEvent {
				fail("interrupted stream without an error event for the client")
			}
		}
		// Invariant 3: a successful priced call with provider usage costs > 0.
		if status == 200 && class == "" {
			successChecked++
			cost, isNum := c["cost_usd"].(float64)
			if c["priced"] != true || !isNum || cost <= 0 {
				violate("successful call %s (%s, model %v): cost_usd %v priced %v usage_source %v", o.sid, o.kind, c["model"], c["cost_usd"], c["priced"], c["usage_source"])
			}
			if c["usage_source"] != "provider" {
				violate("successful call %s (%s): usage_source %v", o.sid, o.kind, c["usage_source"])
			}
		}
		// Invariant 4: a call cancelled after the client had seen the
		// stream's first event carries message_start's input tokens.
		if class == errCancelled && o.msgStartIn > 0 && o.sawEvents > 0 {
			cancelledChecked++
			if in := num(c, "input_tokens"); in != o.msgStartIn {
				cancelledTokensBad++
				if len(cancelledTokenSamples) < 5 {
					cancelledTokenSamples = append(cancelledTokenSamples, fmt.Sprintf("%s %s: input_tokens %d, message_start said %d (events seen %d, status %d)", o.kind, o.sid, in, o.msgStartIn, o.sawEvents, status))
				}
			}
		}
		if o.wantClass == errCancelled && o.cancelled && class != errCancelled {
			fail("client hung up mid-stream (after %d events); call recorded %q status %d", o.sawEvents, class, status)
		}
		if (class == errCancelled || class == errStreamInterrupted) && status == 200 {
			// The stream had begun: the provider had the prompt and bills it.
			if in := num(c, "input_tokens"); in <= 0 {
				violate("%s call %s (%s) after its stream began records input_tokens %d", class, o.sid, o.kind, in)
			}
			if o.msgStartIn == 0 && strings.HasPrefix(o.kind, "die_") && c["provider"] == "anthropic" && num(c, "input_tokens") != 400 {
				violate("interrupted call %s (%s): input_tokens %d, message_start said 400", o.sid, o.kind, num(c, "input_tokens"))
			}
		}
		if tc := turnDone[turns[0]]; tc == nil || fmt.Sprint(tc["cost_usd"]) != fmt.Sprint(c["cost_usd"]) || num(tc, "status") != num(c, "status") {
			violate("turn.completed of %s (%s) = %v disagrees with llm.call_completed cost %v status %v", o.sid, o.kind, tc, c["cost_usd"], c["status"])
		}
		if class == errCancelled {
			if cost, ok := c["cost_usd"].(float64); ok && cost <= 0 && num(c, "input_tokens") > 0 {
				violate("cancelled call %s (%s) with %d input tokens costs %v", o.sid, o.kind, num(c, "input_tokens"), cost)
			}
		}
	}
	if cancelledTokensBad > 0 {
		violate("%d of %d cancelled calls lack message_start's input tokens: %v", cancelledTokensBad, cancelledChecked, cancelledTokenSamples)
	}
	// Every route.decided belongs to a request the clients made.
	sids := map[string]bool{}
	for _, o := range outcomes {
		sids[o.sid] = true
	}
	for sid, turns := range routeBySID {
		if !sids[sid] {
			violate("route.decided for unknown session %q (%d turns)", sid, len(turns))
		}
	}
	if n := typeCount[store.TypeRouteDecided]; n != typeCount[store.TypeCallCompleted] || n != typeCount[store.TypeTurnCompleted] {
		violate("%d route.decided, %d llm.call_completed, %d turn.completed", n, typeCount[store.TypeCallCompleted], typeCount[store.TypeTurnCompleted])
	}
	t.Logf("SOAK: accepted %d, refused %d, unknown (transport error) %d of which %d reached the gateway; success calls cost-checked %d; cancelled calls token-checked %d",
		accepted, refused, unknown, transportErrAccepted, successChecked, cancelledChecked)

	// Invariant 5: refusals are all recorded (summed ones by their count).
	summedEvents := 0
	for _, e := range all {
		if e.typ == store.TypeRequestRejected {
			if c, ok := e.p["count"].(float64); ok && c > 1 {
				summedEvents++
			}
		}
	}
	t.Logf("SOAK: refusals expected %v (+ up to %v with transport errors), recorded %v (%d summed events)", expectedRefusals, unknownRefusals, refusals, summedEvents)
	for reason, n := range expectedRefusals {
		if got := refusals[reason]; got < n || got > n+unknownRefusals[reason] {
			violate("refusals for %s: recorded %d, clients got %d (+%d unknown)", reason, got, n, unknownRefusals[reason])
		}
	}
	for reason, n := range refusals {
		if _, ok := expectedRefusals[reason]; !ok && unknownRefusals[reason] == 0 {
			violate("refusals for unexpected reason %s: %d", reason, n)
		}
	}

	// Invariant 5b: each refusal is attributed to the key that sent it
	// (none for a revoked, missing or unknown key).
	gotByKey := map[string]int{}
	for _, e := range all {
		if e.typ != store.TypeRequestRejected {
			continue
		}
		n := 1
		if c, ok := e.p["count"].(float64); ok {
			n = int(c)
		}
		kid, _ := e.p["gateway_key_id"].(string)
		gotByKey[fmt.Sprint(e.p["reason"])+"/"+kid] += n
	}
	wantByKey := map[string]int{}
	for _, o := range outcomes {
		if o.err != nil {
			continue
		}
		reason := o.refuseReason
		if reason == "" && o.maybeRefused == "budget" && o.status == 429 {
			reason = "budget"
		}
		if reason == "" && o.maybeRefused == "revoked_key" && o.status == 401 {
			reason = "revoked_key"
		}
		if reason == "" {
			continue
		}
		kid := o.keyID
		if reason == "revoked_key" {
			kid = ""
		}
		wantByKey[reason+"/"+kid]++
	}
	for k, n := range wantByKey {
		if got := gotByKey[k]; got < n || got > n+2 {
			violate("refusals %s: recorded %d, clients got %d", k, got, n)
		}
	}

	// Invariant 6: the capped key's ledger equals its calls' costs and
	// stays within one call of the limit.
	q := keyQuota(t, g, cappedKey)
	sum, maxCost := 0.0, 0.0
	cappedCalls := 0
	for _, c := range callByTurn {
		if c["gateway_key_id"] != cappedKey.ID {
			continue
		}
		cappedCalls++
		if cost, ok := c["cost_usd"].(float64); ok {
			sum += cost
			maxCost = max(maxCost, cost)
		} else {
			violate("capped key call %v unpriced", c["turn_id"])
		}
	}
	t.Logf("SOAK: capped key: %d calls, ledger spent %.9f reserved %.9f, sum of cost_usd %.9f, hard %v, state %s, budget refusals %d",
		cappedCalls, q.Spent, q.Reserved, sum, hard, q.State, expectedRefusals["budget"])
	if math.Abs(q.Spent-sum) > 1e-9 {
		violate("capped key: ledger spent %.12f != sum of cost_usd %.12f", q.Spent, sum)
	}
	if q.Spent > hard+maxCost {
		violate("capped key: spent %.9f exceeds hard %v by more than one call (%.9f)", q.Spent, hard, maxCost)
	}
	if q.Reserved != 0 {
		violate("capped key: %.9f still reserved after the load", q.Reserved)
	}
	if expectedRefusals["budget"] == 0 {
		violate("the capped key's budget never ran out (no budget refusals)")
	}

	// Invariant 7: no trace event dropped.
	st := g.app().store.Stats()
	if d := soakDropped() - droppedBefore; d != 0 || st.Dropped != 0 {
		violate("metis_trace_events_dropped_total grew by %v; store stats %+v", d, st)
	}
	t.Logf("SOAK: store stats %+v, dropped metric delta %v", st, soakDropped()-droppedBefore)

	// Invariant 8: no goroutine left once the gateway stops.
	client.CloseIdleConnections()
	http.DefaultClient.CloseIdleConnections()
	if err := caddy.Stop(); err != nil {
		t.Errorf("stopping: %v", err)
	}
	up.Close()
	const slack = 5
	var after int
	for wait := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		runtime.GC()
		after = runtime.NumGoroutine()
		if after <= goroutinesBefore+slack || time.Now().After(wait) {
			break
		}
	}
	t.Logf("SOAK: goroutines before %d, after stop %d", goroutinesBefore, after)
	if f, err := os.Create("/tmp/soak-goroutines.txt"); err == nil {
		_ = pprof.Lookup("goroutine").WriteTo(f, 1)
		f.Close()
	}
	if after > goroutinesBefore+slack {
		violate("goroutines: %d before, %d after the gateway stopped (dump in /tmp/soak-goroutines.txt)", goroutinesBefore, after)
	}

	for _, v := range violations {
		t.Error("VIOLATION: " + v)
	}
}
