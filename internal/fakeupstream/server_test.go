package fakeupstream

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/metisgateway/metis/internal/vcr"
)

const toolsAnthropic = `"tools":[{"name":"get_weather","description":"Get weather","input_schema":{"type":"object","properties":{"city":{"type":"string"}}}}]`
const toolsOpenAI = `"tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object"}}}]`

func post(t *testing.T, url, body string, hdr ...string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading body: %v", err)
	}
	return resp, string(b)
}

func fixtureBody(name string, i int) string { return vcr.MustLoad(name)[i].ResponseBody }

// sseData returns the decoded data payloads of an SSE body, [DONE] excluded.
func sseData(t *testing.T, body string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, ev := range vcr.SplitEvents(body) {
		for _, line := range strings.Split(ev, "\n") {
			d, ok := strings.CutPrefix(line, "data: ")
			if !ok || d == "[DONE]" {
				continue
			}
			var m map[string]any
			if err := json.Unmarshal([]byte(d), &m); err != nil {
				t.Fatalf("bad data line %q: %v", d, err)
			}
			out = append(out, m)
		}
	}
	return out
}

func TestAnthropicStreamDefaults(t *testing.T) {
	s := New(t)
	// Tools and no tool_result yet: the recorded stream, byte for byte.
	resp, body := post(t, s.URL+"/v1/messages?beta=true",
		`{"model":"claude-3-7-sonnet-latest","max_tokens":512,"stream":true,`+toolsAnthropic+`,"messages":[{"role":"user","content":"Weather in SF?"}]}`,
		"x-api-key", "sk-ant-provider", "anthropic-version", "2023-06-01")
	if body != fixtureBody(FixtureAnthropicStream, 0) {
		t.Errorf("tool turn stream is not the fixture verbatim")
	}
	if resp.Header.Get("Request-Id") != "req_011CUdgeEggCMUt3Y8mNfvTP" || resp.Header.Get("Content-Type") != "text/event-stream; charset=utf-8" {
		t.Errorf("headers %v", resp.Header)
	}
	if resp.Header.Get("Anthropic-Ratelimit-Requests-Limit") != "4000" {
		t.Errorf("rate-limit headers not replayed")
	}

	// After a tool_result: a synthesized end_turn text stream.
	resp, body = post(t, s.URL+"/v1/messages",
		`{"model":"claude-sonnet-4-5","max_tokens":512,"stream":true,`+toolsAnthropic+`,"messages":[{"role":"user","content":"Weather?"},{"role":"assistant","content":[{"type":"tool_use","id":"toolu_1","name":"get_weather","input":{}}]},{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":"68F"}]}]}`)
	checkAnthropicTextStream(t, body, "claude-sonnet-4-5", DefaultAnthropicText)
	if id := resp.Header.Get("Request-Id"); !strings.HasPrefix(id, "req_011CU") || id == "req_011CUdgeEggCMUt3Y8mNfvTP" {
		t.Errorf("synthesized request-id %q", id)
	}

	// No tools: the same.
	_, body = post(t, s.URL+"/v1/messages", `{"model":"claude-haiku-4-5","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"hi"}]}`)
	checkAnthropicTextStream(t, body, "claude-haiku-4-5", DefaultText)

	rs := s.Requests()
	if len(rs) != 3 || rs[0].RawQuery != "beta=true" || rs[0].APIKey() != "sk-ant-provider" || rs[0].Header.Get("Anthropic-Version") != "2023-06-01" {
		t.Errorf("recorded %+v", rs)
	}
	if s.Count("/v1/messages") != 3 {
		t.Errorf("Count = %d", s.Count("/v1/messages"))
	}
}

// checkAnthropicTextStream checks the event sequence and JSON shapes of a
// synthesized text stream against the recorded one.
func checkAnthropicTextStream(t *testing.T, body, model, text string) {
	t.Helper()
	var names []string
	for _, ev := range vcr.SplitEvents(body) {
		name, _, _ := strings.Cut(strings.TrimPrefix(ev, "event: "), "\n")
		names = append(names, name)
	}
	want := []string{"message_start", "content_block_start", "content_block_delta", "ping"}
	if strings.Join(names[:4], ",") != strings.Join(want, ",") {
		t.Errorf("events start %v", names)
	}
	n := len(names)
	if strings.Join(names[n-3:], ",") != "content_block_stop,message_delta,message_stop" {
		t.Errorf("events end %v", names)
	}
	data := sseData(t, body)
	start := data[0]["message"].(map[string]any)
	usage := start["usage"].(map[string]any)
	if start["model"] != model || usage["cache_creation"] == nil || usage["service_tier"] != "standard" || start["stop_reason"] != nil {
		t.Errorf("message_start %v", start)
	}
	var got strings.Builder
	for _, d := range data {
		if d["type"] == "content_block_delta" {
			got.WriteString(d["delta"].(map[string]any)["text"].(string))
		}
	}
	if got.String() != text {
		t.Errorf("text %q", got.String())
	}
	md := data[len(data)-2]
	if md["delta"].(map[string]any)["stop_reason"] != "end_turn" || md["usage"].(map[string]any)["input_tokens"] == nil {
		t.Errorf("message_delta %v", md)
	}
	// The recorded key sets must be kept exactly.
	rec := sseData(t, fixtureBody(FixtureAnthropicStream, 0))
	if keys(rec[0]["message"].(map[string]any)["usage"]) != keys(usage) || keys(rec[len(rec)-2]["usage"]) != keys(md["usage"]) {
		t.Errorf("usage shapes differ from the recording")
	}
}

func keys(v any) string {
	m, _ := v.(map[string]any)
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	for i := range ks {
		for j := i + 1; j < len(ks); j++ {
			if ks[j] < ks[i] {
				ks[i], ks[j] = ks[j], ks[i]
			}
		}
	}
	return strings.Join(ks, ",")
}

func TestAnthropicNonStreamDefaults(t *testing.T) {
	s := New(t)
	_, body := post(t, s.URL+"/v1/messages", `{"model":"m","max_tokens":512,`+toolsAnthropic+`,"messages":[{"role":"user","content":[{"type":"text","text":"Weather?"}]}]}`)
	if body != fixtureBody(FixtureAnthropicNonStream, 0) {
		t.Errorf("turn 1 is not the recording: %s", body)
	}
	resp, body := post(t, s.URL+"/v1/messages", `{"model":"m","max_tokens":512,`+toolsAnthropic+`,"messages":[{"role":"user","content":"Weather?"},{"role":"assistant","content":[{"type":"tool_use","id":"t","name":"get_weather","input":{}}]},{"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":"68"}]}]}`)
	if body != fixtureBody(FixtureAnthropicNonStream, 1) || resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("turn 2 is not the recording: %s", body)
	}
	_, body = post(t, s.URL+"/v1/messages", `{"model":"claude-haiku-4-5","max_tokens":64,"messages":[{"role":"user","content":"hi"}]}`)
	var got, rec map[string]any
	_ = json.Unmarshal([]byte(body), &got)
	_ = json.Unmarshal([]byte(fixtureBody(FixtureAnthropicNonStream, 1)), &rec)
	if keys(got) != keys(rec) || keys(got["usage"]) != keys(rec["usage"]) || got["model"] != "claude-haiku-4-5" || got["stop_reason"] != "end_turn" || !strings.Contains(body, DefaultText) {
		t.Errorf("synthesized message %s", body)
	}
}

func TestCountTokensModelsHello(t *testing.T) {
	s := New(t)
	_, body := post(t, s.URL+"/v1/messages/count_tokens?beta=true", `{"model":"m","messages":[{"role":"user","content":"hello there"}]}`)
	var ct struct {
		InputTokens int `json:"input_tokens"`
	}
	if json.Unmarshal([]byte(body), &ct) != nil || ct.InputTokens <= 0 {
		t.Errorf("count_tokens %s", body)
	}

	req, _ := http.NewRequest(http.MethodGet, s.URL+"/v1/models?limit=1000", nil)
	req.Header.Set("anthropic-version", "2023-06-01")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var am struct {
		Data []struct{ Type, ID string }
	}
	_ = json.NewDecoder(resp.Body).Decode(&am)
	resp.Body.Close()
	if len(am.Data) == 0 || am.Data[0].Type != "model" {
		t.Errorf("anthropic models %+v", am)
	}
	resp, err = http.Get(s.URL + "/v1/models")
	if err != nil {
		t.Fatal(err)
	}
	var om struct {
		Object string
		Data   []struct{ ID, Object string }
	}
	_ = json.NewDecoder(resp.Body).Decode(&om)
	resp.Body.Close()
	if om.Object != "list" || len(om.Data) == 0 || om.Data[0].Object != "model" {
		t.Errorf("openai models %+v", om)
	}

	resp, err = http.Head(s.URL + "/api/hello")
	if err != nil || resp.StatusCode != 200 {
		t.Errorf("HEAD /api/hello: %v %v", resp, err)
	}
	resp, _ = post(t, s.URL+"/v1/unknown", `{}`)
	if resp.StatusCode != 404 {
		t.Errorf("unknown path: %d", resp.StatusCode)
	}
}

func TestOpenAIDefaults(t *testing.T) {
	s := New(t)
	// Tools, no tool message, include_usage: the recorded stream verbatim.
	_, body := post(t, s.URL+"/v1/chat/completions", `{"model":"gpt-4o","stream":true,"stream_options":{"include_usage":true},`+toolsOpenAI+`,"messages":[{"role":"user","content":"weather"}]}`,
		"Authorization", "Bearer sk-openai-provider")
	if body != fixtureBody(FixtureOpenAIToolsStream, 0) {
		t.Errorf("tool stream is not the recording")
	}
	// Same without include_usage: no usage chunk.
	_, body = post(t, s.URL+"/v1/chat/completions", `{"model":"gpt-4o","stream":true,`+toolsOpenAI+`,"messages":[{"role":"user","content":"weather"}]}`)
	if strings.Contains(body, `"usage"`) || !strings.HasSuffix(body, "data: [DONE]\n\n") || !strings.Contains(body, "get_stock_price") {
		t.Errorf("stream without include_usage: %s", body)
	}
	// No tools, include_usage: the gpt-5-nano recording verbatim, with its headers.
	resp, body := post(t, s.URL+"/v1/chat/completions", `{"model":"gpt-5-nano","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}`)
	if body != fixtureBody(FixtureOpenAIStream, 0) {
		t.Errorf("text stream is not the recording")
	}
	if resp.Header.Get("X-Request-Id") != "req_0b2a28d2d6414b5a94c1c7933cf7c1a6" || resp.Header.Get("Content-Type") != "text/event-stream; charset=utf-8" {
		t.Errorf("headers %v", resp.Header)
	}
	// ... and without include_usage a real OpenAI sends no usage at all.
	_, body = post(t, s.URL+"/v1/chat/completions", `{"model":"gpt-5-nano","stream":true,"messages":[{"role":"user","content":"hi"}]}`)
	if strings.Contains(body, "usage") || len(sseData(t, body)) != 2 {
		t.Errorf("stream without include_usage: %s", body)
	}
	// After a tool message: the text stream.
	_, body = post(t, s.URL+"/v1/chat/completions", `{"model":"gpt-5-nano","stream":true,`+toolsOpenAI+`,"messages":[{"role":"user","content":"w"},{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"get_weather","arguments":"{}"}}]},{"role":"tool","tool_call_id":"c","content":"68"}]}`)
	if strings.Contains(body, "tool_calls") {
		t.Errorf("tool stream after a tool result")
	}

	// Non-stream: tool call recording, then a text completion of the same shape.
	resp, body = post(t, s.URL+"/v1/chat/completions", `{"model":"gpt-5-nano",`+toolsOpenAI+`,"messages":[{"role":"user","content":"w"}]}`)
	if body != fixtureBody(FixtureOpenAINonStream, 0) || resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("tool completion is not the recording")
	}
	resp, body = post(t, s.URL+"/v1/chat/completions", `{"model":"gpt-5-mini","messages":[{"role":"user","content":"hi"}]}`)
	var got, rec map[string]any
	_ = json.Unmarshal([]byte(body), &got)
	_ = json.Unmarshal([]byte(fixtureBody(FixtureOpenAINonStream, 0)), &rec)
	if keys(got) != keys(rec) || keys(got["usage"]) != keys(rec["usage"]) || got["model"] != "gpt-5-mini" {
		t.Errorf("text completion %s", body)
	}
	msg := got["choices"].([]any)[0].(map[string]any)["message"].(map[string]any)
	if msg["content"] != DefaultOpenAIText || !strings.HasPrefix(resp.Header.Get("X-Request-Id"), "req_") {
		t.Errorf("text completion %s %v", body, resp.Header)
	}
	if k := s.Requests()[0].APIKey(); k != "sk-openai-provider" {
		t.Errorf("bearer key recorded as %q", k)
	}
}

func TestOpenAITextStreamHelper(t *testing.T) {
	for _, usage := range []bool{true, false} {
		r := OpenAITextStream("gpt-5-mini", "Hello there, friend!", 9, usage)
		body := strings.Join(r.Events, "")
		data := sseData(t, body)
		var text strings.Builder
		for _, d := range data {
			for _, c := range d["choices"].([]any) {
				if s, ok := c.(map[string]any)["delta"].(map[string]any)["content"].(string); ok {
					text.WriteString(s)
				}
			}
		}
		if text.String() != "Hello there, friend!" {
			t.Errorf("text %q", text.String())
		}
		if got := strings.Contains(body, `"usage":{`); got != usage {
			t.Errorf("include_usage=%v but usage chunk present=%v", usage, got)
		}
	}
}

func TestFromFixtureReplaysBytes(t *testing.T) {
	s := New(t)
	names := []string{FixtureAnthropicStream, FixtureAnthropicNonStream, FixtureOpenAIToolsStream, FixtureOpenAIStream, FixtureOpenAINonStream, FixtureOpenAIError400}
	for _, name := range names {
		for i, it := range vcr.MustLoad(name) {
			r := FromFixture(name, i)
			if r.Header.Get("Content-Length") != "" || r.Header.Get("Transfer-Encoding") != "" {
				t.Errorf("%s: hop-by-hop headers kept", name)
			}
			s.Enqueue("/replay", r)
			resp, body := post(t, s.URL+"/replay", `{}`)
			if body != it.ResponseBody {
				t.Errorf("%s #%d: body differs", name, i)
			}
			if resp.StatusCode != it.Status {
				t.Errorf("%s #%d: status %d, want %d", name, i, resp.StatusCode, it.Status)
			}
			if resp.Header.Get("Content-Type") != it.ResponseHeader.Get("Content-Type") {
				t.Errorf("%s #%d: content-type %q", name, i, resp.Header.Get("Content-Type"))
			}
		}
	}
}

func TestEnqueueFIFOAndMatch(t *testing.T) {
	s := New(t)
	s.Enqueue("/v1/messages", AnthropicError(529, "overloaded_error", "Overloaded"))
	s.Enqueue("/v1/messages", AnthropicMessage("m", 5, "end_turn", TextBlock("second")))
	only := AnthropicMessage("m", 5, "end_turn", TextBlock("matched"))
	only.Match = func(r *Recorded) bool { return strings.Contains(r.Body, "pick-me") }
	s.Enqueue("/v1/chat/completions", only)

	resp, body := post(t, s.URL+"/v1/messages", `{"model":"m","messages":[]}`)
	if resp.StatusCode != 529 || !strings.Contains(body, "overloaded_error") {
		t.Errorf("first: %d %s", resp.StatusCode, body)
	}
	_, body = post(t, s.URL+"/v1/messages", `{"model":"m","messages":[]}`)
	if !strings.Contains(body, `"second"`) {
		t.Errorf("second: %s", body)
	}
	_, body = post(t, s.URL+"/v1/chat/completions", `{"model":"gpt-5-nano","messages":[{"role":"user","content":"other"}]}`)
	if strings.Contains(body, "matched") {
		t.Errorf("non-matching request took the matched reply")
	}
	_, body = post(t, s.URL+"/v1/chat/completions", `{"model":"gpt-5-nano","messages":[{"role":"user","content":"pick-me"}]}`)
	if !strings.Contains(body, "matched") {
		t.Errorf("matching request got %s", body)
	}
	if s.Pending("/v1/messages")+s.Pending("/v1/chat/completions") != 0 {
		t.Errorf("replies left")
	}
}

func TestDieAfterCuts(t *testing.T) {
	s := New(t)
	r := FromFixture(FixtureAnthropicStream, 0)
	r.DieAfter = 3
	s.Enqueue("/v1/messages", r)
	resp, err := http.Post(s.URL+"/v1/messages", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if err == nil || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("read error %v, want unexpected EOF", err)
	}
	if want := strings.Join(r.Events[:3], ""); string(got) != want {
		t.Errorf("got %q before the cut, want the first 3 events", got)
	}

	// A plain body is cut after DieAfter bytes.
	s.Enqueue("/v1/chat/completions", Reply{Body: `{"id":"chatcmpl-x","object":"chat.completion"}`, DieAfter: 10})
	resp, err = http.Post(s.URL+"/v1/chat/completions", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	got, err = io.ReadAll(resp.Body)
	resp.Body.Close()
	if err == nil || len(got) != 10 {
		t.Errorf("plain body cut: %q, %v", got, err)
	}
}

func TestGapAndDelay(t *testing.T) {
	s := New(t)
	r := AnthropicTextStream("", "one two three four")
	r.Gap = 20 * time.Millisecond
	r.Delay = 50 * time.Millisecond
	s.Enqueue("/v1/messages", r)
	start := time.Now()
	resp, err := http.Post(s.URL+"/v1/messages", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	headers := time.Since(start)
	br := bufio.NewReader(resp.Body)
	first, _ := br.ReadString('\n')
	firstAt := time.Since(start)
	rest, _ := io.ReadAll(br)
	resp.Body.Close()
	total := time.Since(start)
	if headers < 50*time.Millisecond {
		t.Errorf("headers after %v, want ≥ Delay", headers)
	}
	if !strings.HasPrefix(first, "event: message_start") {
		t.Errorf("first line %q", first)
	}
	minTotal := 50*time.Millisecond + time.Duration(len(r.Events)-1)*20*time.Millisecond
	if total < minTotal || total > firstAt+10*time.Second {
		t.Errorf("stream took %v, want ≥ %v", total, minTotal)
	}
	if first+string(rest) != strings.Join(r.Events, "") {
		t.Errorf("gapped stream changed bytes")
	}
}

func TestWaitCanceled(t *testing.T) {
	s := New(t)
	if s.WaitCanceled(10 * time.Millisecond) {
		t.Fatal("cancel reported before any request")
	}
	r := FromFixture(FixtureAnthropicStream, 0)
	r.StallAfter = 2
	s.Enqueue("/v1/messages", r)
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.URL+"/v1/messages", strings.NewReader(`{}`))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(resp.Body)
	if line, _ := br.ReadString('\n'); !strings.HasPrefix(line, "event: message_start") {
		t.Fatalf("first line %q", line)
	}
	cancel()
	resp.Body.Close()
	if !s.WaitCanceled(5 * time.Second) {
		t.Error("cancellation not seen")
	}

	// A reply with a Gap sees the cancellation too.
	g := AnthropicTextStream("", strings.Repeat("word ", 50))
	g.Gap = 50 * time.Millisecond
	s.Enqueue("/v1/messages", g)
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	req, _ = http.NewRequestWithContext(ctx, http.MethodPost, s.URL+"/v1/messages", strings.NewReader(`{}`))
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	// Cancel once the reply is under way (a fixed timeout could fire before
	// the server saw the request on a loaded machine).
	if line, _ := bufio.NewReader(resp.Body).ReadString('\n'); !strings.HasPrefix(line, "event: message_start") {
		t.Fatalf("first line %q", line)
	}
	cancel()
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if !s.WaitCanceled(5 * time.Second) {
		t.Error("cancellation of a gapped stream not seen")
	}
}

func TestCloseEndsStalledReplies(t *testing.T) {
	s := New(nil)
	r := FromFixture(FixtureAnthropicStream, 0)
	r.StallAfter = 1
	s.Enqueue("/v1/messages", r)
	resp, err := http.Post(s.URL+"/v1/messages", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	done := make(chan struct{})
	go func() { s.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close hung on a stalled reply")
	}
}

func TestAdminEndpoints(t *testing.T) {
	s := New(t)
	resp, body := post(t, s.URL+"/_fake/enqueue?path=/v1/messages", `[{"fixture":"`+FixtureAnthropicNonStream+`","interaction":1},{"status":529,"body":"{\"type\":\"error\"}"}]`)
	if resp.StatusCode != 200 || !strings.Contains(body, `"pending":2`) {
		t.Fatalf("enqueue: %d %s", resp.StatusCode, body)
	}
	_, body = post(t, s.URL+"/v1/messages", `{}`, "x-api-key", "k")
	if body != fixtureBody(FixtureAnthropicNonStream, 1) {
		t.Errorf("admin fixture reply %s", body)
	}
	resp, _ = post(t, s.URL+"/v1/messages", `{}`)
	if resp.StatusCode != 529 {
		t.Errorf("admin status reply %d", resp.StatusCode)
	}
	r, err := http.Get(s.URL + "/_fake/requests")
	if err != nil {
		t.Fatal(err)
	}
	var recs []Recorded
	_ = json.NewDecoder(r.Body).Decode(&recs)
	r.Body.Close()
	if len(recs) != 2 || recs[0].Header.Get("X-Api-Key") != "k" {
		t.Errorf("requests %+v", recs)
	}
	post(t, s.URL+"/_fake/reset", ``)
	if len(s.Requests()) != 0 {
		t.Errorf("reset kept requests")
	}
}

func TestDieAfterSplitsAnSSEBody(t *testing.T) {
	s := New(t)
	it := vcr.MustLoad(FixtureOpenAIStream)[0]
	s.Enqueue("/v1/chat/completions", Reply{Header: http.Header{"Content-Type": {"text/event-stream; charset=utf-8"}}, Body: it.ResponseBody, DieAfter: 2})
	resp, err := http.Post(s.URL+"/v1/chat/completions", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err == nil || string(got) != strings.Join(it.Events()[:2], "") {
		t.Errorf("got %q, %v", got, err)
	}
}
