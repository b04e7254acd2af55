package metis

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/packages/ssestream"
	"github.com/tidwall/gjson"
	"go.uber.org/zap"

	"github.com/metisgateway/metis/internal/fakeupstream"
	"github.com/metisgateway/metis/store"
)

// costOf returns a call's cost_usd, failing when it is null.
func costOf(t *testing.T, call map[string]any) float64 {
	t.Helper()
	c, ok := call["cost_usd"].(float64)
	if !ok {
		t.Fatalf("cost_usd is %v, want a number", call["cost_usd"])
	}
	return c
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-12 }

func num(m map[string]any, k string) int64 {
	f, _ := m[k].(float64)
	return int64(f)
}

// sseEvents reads an SSE body into (event name, data) pairs.
func sseEvents(t *testing.T, r io.Reader) (names []string, datas []string) {
	t.Helper()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	name := ""
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event:"):
			name = strings.TrimSpace(line[6:])
		case strings.HasPrefix(line, "data:"):
			names = append(names, name)
			datas = append(datas, strings.TrimSpace(line[5:]))
			name = ""
		}
	}
	return names, datas
}

func newGatewayWithFake(t *testing.T) (*testGateway, *fakeupstream.Server) {
	t.Helper()
	up := fakeupstream.New(t)
	g := startGateway(t, gatewayConfig(tempDB(t), up.URL, ""))
	return g, up
}

func TestAnthropicNonStreamPassthroughAndCost(t *testing.T) {
	g, up := newGatewayWithFake(t)
	k, tok := g.issueKey(store.IssueParams{Name: "alice-laptop", User: "alice", Team: "eng", Workspace: "/tmp/proj"})
	up.Enqueue("/v1/messages", fakeupstream.FromFixture(fakeupstream.FixtureAnthropicNonStream, 0))
	reqBody := `{"model":"sonnet","max_tokens":512,"thinking":{"type":"adaptive"},"context_management":{"edits":[]},"messages":[{"role":"user","content":"Weather in SF?"}],"tools":[{"name":"get_weather","input_schema":{"type":"object"}}]}`
	resp := g.post("/v1/messages?beta=true", tok, reqBody,
		"Anthropic-Version", "2023-06-01", "Anthropic-Beta", "claude-code-20250219,interleaved-thinking-2025-05-14",
		"X-Claude-Code-Session-Id", "sess-123")
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	want := fakeupstream.FromFixture(fakeupstream.FixtureAnthropicNonStream, 0)
	if resp.StatusCode != 200 || string(body) != want.Body {
		t.Fatalf("status %d; body not relayed byte for byte:\n%s", resp.StatusCode, body)
	}
	if resp.Header.Get("Request-Id") == "" {
		t.Error("request-id not relayed")
	}
	// What went upstream: the body as sent but the model, the provider key,
	// the anthropic headers and query.
	rec := up.RequestsTo("/v1/messages")[0]
	if rec.APIKey() != testAnthropicKey || strings.Contains(fmt.Sprint(rec.Header), tok) {
		t.Fatalf("upstream auth %q; gateway token must never go upstream", rec.APIKey())
	}
	if rec.RawQuery != "beta=true" || rec.Header.Get("Anthropic-Beta") != "claude-code-20250219,interleaved-thinking-2025-05-14" ||
		rec.Header.Get("Anthropic-Version") != "2023-06-01" {
		t.Errorf("upstream query/headers: %q %v", rec.RawQuery, rec.Header)
	}
	wantUp := strings.Replace(reqBody, `"model":"sonnet"`, `"model":"claude-3-7-sonnet-20250219"`, 1)
	if rec.Body != wantUp {
		t.Errorf("upstream body\n got %s\nwant %s", rec.Body, wantUp)
	}

	call := g.lastCall()
	// claude-3-7-sonnet: $3/MTok in, $15/MTok out.
	// 402 × 3e-6 = 0.001206; 89 × 15e-6 = 0.001335; total 0.002541.
	if c := costOf(t, call); !near(c, 0.002541) {
		t.Errorf("cost %v, want 0.002541", c)
	}
	for k2, v := range map[string]any{
		"gateway_key_id": k.ID, "key_name": "alice-laptop", "user": "alice", "team": "eng", "workspace": "/tmp/proj",
		"session_id": "sess-123", "inbound_shape": "anthropic", "provider": "anthropic", "requested_model": "sonnet",
		"model": "claude-3-7-sonnet-20250219", "stream": false, "priced": true, "usage_source": "provider",
		"error_class": nil,
	} {
		if call[k2] != v {
			t.Errorf("%s = %v, want %v", k2, call[k2], v)
		}
	}
	if num(call, "input_tokens") != 402 || num(call, "output_tokens") != 89 || num(call, "status") != 200 || num(call, "attempts") != 1 {
		t.Errorf("usage/status: %v", call)
	}
	// The seed's queries, verbatim.
	var keyID, model string
	var cost float64
	err := g.db().QueryRow(`SELECT json_extract(payload_json, '$.gateway_key_id'),
       json_extract(payload_json, '$.model'),
       json_extract(payload_json, '$.cost_usd')
FROM events
WHERE type = 'llm.call_completed'
ORDER BY timestamp_us DESC LIMIT 1;`).Scan(&keyID, &model, &cost)
	if err != nil || keyID != k.ID || model != "claude-3-7-sonnet-20250219" || !near(cost, 0.002541) {
		t.Fatalf("seed query 1: %v %s %s %v", err, keyID, model, cost)
	}
	rows, err := g.db().Query(`SELECT type, json_extract(payload_json, '$.model'),
       json_extract(payload_json, '$.cost_usd')
FROM events
WHERE type IN ('route.decided', 'llm.call_completed', 'turn.completed')
ORDER BY timestamp_us DESC LIMIT 5;`)
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for rows.Next() {
		var typ string
		var m, c any
		if err := rows.Scan(&typ, &m, &c); err != nil {
			t.Fatal(err)
		}
		types = append(types, typ)
	}
	rows.Close()
	if strings.Join(types, ",") != "turn.completed,llm.call_completed,route.decided" {
		t.Errorf("seed query 2 types: %v", types)
	}
	// One turn id across the three events, ids in order.
	var ids []string
	r2, _ := g.db().Query(`SELECT id, json_extract(payload_json,'$.turn_id') FROM events WHERE type IN ('route.decided','llm.call_completed','turn.completed') ORDER BY id`)
	turns := map[string]bool{}
	for r2.Next() {
		var id, turn string
		_ = r2.Scan(&id, &turn)
		ids = append(ids, id)
		turns[turn] = true
	}
	r2.Close()
	if len(ids) != 3 || len(turns) != 1 {
		t.Errorf("events %v turns %v", ids, turns)
	}
	rd := g.events(store.TypeRouteDecided)[0]
	if rd["route_slot"] != "request" {
		t.Errorf("route_slot %v", rd["route_slot"])
	}
}

func TestAnthropicStreamRelayedEventByEvent(t *testing.T) {
	g, up := newGatewayWithFake(t)
	_, tok := g.issueKey(store.IssueParams{Name: "k"})
	rp := fakeupstream.FromFixture(fakeupstream.FixtureAnthropicStream, 0)
	rp.Gap = 30 * time.Millisecond
	up.Enqueue("/v1/messages", rp)
	start := time.Now()
	resp := g.post("/v1/messages", tok, `{"model":"claude-3-7-sonnet-20250219","max_tokens":512,"stream":true,"messages":[{"role":"user","content":"Weather in SF?"}]}`,
		"Anthropic-Version", "2023-06-01")
	defer resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("status %d ct %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if cc := resp.Header.Get("Cache-Control"); !strings.Contains(cc, "no-transform") {
		t.Errorf("Cache-Control %q", cc)
	}
	// The first event arrives long before the stream ends: nothing is buffered.
	br := bufio.NewReader(resp.Body)
	first, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(first, "event: message_start") {
		t.Fatalf("first line %q %v", first, err)
	}
	firstAt := time.Since(start)
	rest, _ := io.ReadAll(br)
	total := time.Since(start)
	if firstAt > total/3 {
		t.Errorf("first event after %v of %v: the stream was buffered", firstAt, total)
	}
	if got := first + string(rest); got != strings.Join(rp.Events, "") {
		t.Errorf("stream not relayed byte for byte")
	}
	call := g.lastCall()
	// 394 × 3e-6 + 79 × 15e-6 = 0.001182 + 0.001185 = 0.002367
	if c := costOf(t, call); !near(c, 0.002367) || call["stream"] != true || num(call, "output_tokens") != 79 {
		t.Errorf("call %v", call)
	}
	if _, ok := call["ttft_ms"].(float64); !ok {
		t.Errorf("ttft_ms missing: %v", call["ttft_ms"])
	}
}

func TestOpenAIStreamUsageInjectedAndHidden(t *testing.T) {
	g, up := newGatewayWithFake(t)
	_, tok := g.issueKey(store.IssueParams{Name: "k"})
	// The client does not ask for usage: the gateway asks upstream anyway
	// and hides the usage chunk from the client.
	resp := g.post("/v1/chat/completions", tok, `{"model":"gpt-5-nano","stream":true,"messages":[{"role":"developer","content":"Be brief."},{"role":"user","content":"hi"}]}`)
	names, datas := sseEvents(t, resp.Body)
	resp.Body.Close()
	_ = names
	if len(datas) == 0 || datas[len(datas)-1] != "[DONE]" {
		t.Fatalf("stream did not end with [DONE]: %v", datas)
	}
	for _, d := range datas {
		if strings.Contains(d, `"prompt_tokens"`) {
			t.Fatalf("usage chunk shown to a client that did not ask: %s", d)
		}
		// OpenAI adds "usage":null to every chunk only when asked for
		// usage: a client that did not ask sees no usage member at all.
		if strings.Contains(d, `"usage"`) {
			t.Errorf("chunk carries a usage member the client did not ask for: %s", d)
		}
	}
	rec := up.RequestsTo("/v1/chat/completions")[0]
	var sent map[string]any
	_ = json.Unmarshal([]byte(rec.Body), &sent)
	so, _ := sent["stream_options"].(map[string]any)
	if so["include_usage"] != true || rec.APIKey() != testOpenAIKey {
		t.Fatalf("upstream request %s key %q", rec.Body, rec.APIKey())
	}
	call := g.lastCall()
	// gpt-5-nano: $0.05/MTok in, $0.40/MTok out. 12 × 5e-8 + 100 × 4e-7 = 6e-7 + 4e-5 = 4.06e-5
	if c := costOf(t, call); !near(c, 4.06e-5) || num(call, "reasoning_tokens") != 100 || call["usage_source"] != "provider" {
		t.Errorf("call %v", call)
	}

	// A client that asks gets the usage chunk.
	resp = g.post("/v1/chat/completions", tok, `{"model":"gpt-5-nano","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}`)
	_, datas = sseEvents(t, resp.Body)
	resp.Body.Close()
	found, nulls := false, 0
	for _, d := range datas {
		found = found || strings.Contains(d, `"prompt_tokens":12`)
		if strings.Contains(d, `"usage":null`) {
			nulls++
		}
	}
	if !found || nulls == 0 {
		t.Errorf("a client that asked: usage chunk found %v, %d chunks with \"usage\":null; want both as the provider sent them", found, nulls)
	}
}

func TestOpenAINonStreamCost(t *testing.T) {
	g, up := newGatewayWithFake(t)
	_, tok := g.issueKey(store.IssueParams{Name: "k"})
	up.Enqueue("/v1/chat/completions", fakeupstream.FromFixture(fakeupstream.FixtureOpenAINonStream, 0))
	resp := g.post("/v1/chat/completions", tok, `{"model":"gpt-5-nano","messages":[{"role":"user","content":"weather?"}],"tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object"}}}]}`, "Authorization", "Bearer "+tok)
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	call := g.lastCall()
	// 162 × 5e-8 + 287 × 4e-7 = 8.1e-6 + 1.148e-4 = 1.229e-4
	if c := costOf(t, call); !near(c, 1.229e-4) || num(call, "reasoning_tokens") != 256 {
		t.Errorf("call %v", call)
	}
}

func TestBadInputRejectedInCallersShape(t *testing.T) {
	up := fakeupstream.New(t)
	g := startGateway(t, gatewayConfig(tempDB(t), up.URL, "")+"\n")
	_, tok := g.issueKey(store.IssueParams{Name: "k", AllowedModels: []string{"haiku", "gpt-5-nano"}})
	cases := []struct {
		path, body string
		status     int
		want       string
	}{
		{"/v1/messages", `{"model":"haiku",`, 400, `"type":"invalid_request_error"`},
		{"/v1/messages", `{"model":"haiku","messages":[{"role":"user","content":"x"}]}`, 400, "max_tokens"},
		{"/v1/messages", `{"model":"haiku","max_tokens":5}`, 400, "messages"},
		{"/v1/chat/completions", `{"model":"gpt-5-nano"}`, 400, `"code":"invalid_request"`},
		{"/v1/chat/completions", `[1,2]`, 400, "JSON object"},
		{"/v1/messages", `{"model":"no-such-model","max_tokens":5,"messages":[]}`, 404, `"not_found_error"`},
		{"/v1/chat/completions", `{"model":"no-such-model","messages":[]}`, 404, `"model_not_found"`},
		{"/v1/messages", `{"model":"sonnet","max_tokens":5,"messages":[]}`, 403, `"permission_error"`},
		{"/v1/chat/completions", `{"model":"gpt-4o","messages":[]}`, 403, `"error"`},
		{"/v1/messages", `{"model":"haiku","max_tokens":5,"messages":[],"pad":"` + strings.Repeat("x", 33<<20) + `"}`, 413, `"request_too_large"`},
		// Nesting past the limit is refused; 6 million levels (12 MB) took
		// the whole process down with a stack overflow in the validator.
		{"/v1/messages", `{"model":"haiku","max_tokens":5,"messages":[],"x":` + strings.Repeat("[", 1001) + strings.Repeat("]", 1001) + `}`, 400, "more than 1000 levels deep"},
		{"/v1/chat/completions", `{"model":"gpt-5-nano","messages":[],"x":` + strings.Repeat("[", 6_000_000) + strings.Repeat("]", 6_000_000) + `}`, 400, "more than 1000 levels deep"},
	}
	for _, c := range cases {
		resp := g.post(c.path, tok, c.body)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.status || !strings.Contains(string(b), c.want) {
			t.Errorf("%s %.60s: %d %s; want %d with %s", c.path, c.body, resp.StatusCode, b, c.status, c.want)
		}
	}
	req, _ := http.NewRequest(http.MethodGet, g.URL+"/v1/messages", nil)
	req.Header.Set("X-Api-Key", tok)
	resp, _ := http.DefaultClient.Do(req)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 405 || !strings.Contains(string(b), `"type":"error"`) {
		t.Errorf("GET /v1/messages: %d %s", resp.StatusCode, b)
	}
	// A body its Content-Encoding does not decode is named as such, not
	// called invalid JSON.
	resp = g.post("/v1/chat/completions", tok, "\x1f\x8b\x08\x00", "Content-Encoding", "gzip")
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 || !strings.Contains(string(b), `not valid gzip`) {
		t.Errorf("cut gzip body: %d %s, want 400 naming the encoding", resp.StatusCode, b)
	}
	if n := len(up.Requests()); n != 0 {
		t.Errorf("%d rejected requests reached the upstream", n)
	}
	rej := g.events(store.TypeRequestRejected)
	if len(rej) != len(cases)+2 {
		t.Errorf("%d request.rejected events, want %d", len(rej), len(cases)+2)
	}
	for _, e := range rej {
		if _, has := e["cost_usd"]; has {
			t.Errorf("a rejection carries a cost: %v", e)
		}
	}
	if n := len(g.events(store.TypeCallCompleted)); n != 0 {
		t.Errorf("%d calls recorded for rejected requests", n)
	}
}

// Cursor's agent, its OpenAI base URL overridden, sends a Responses API
// body to /v1/chat/completions and reads the answer as Chat Completions (a
// known Cursor bug; OpenAI itself refuses the body). The gateway sends the
// Chat Completions request it stands for, same shape and translated, and
// the official SDK reads the streamed answer; a body the conversion cannot
// carry is refused naming what, before any provider sees it.
//
// gpt-5-mini: 1,000 × $0.25/MTok + 6 × $2/MTok = $0.000262.
// claude-haiku-4-5: 12 × $1/MTok + 6 × $5/MTok = $0.000042 (6 output tokens:
// the fake's len(text)/4 + 1, as for gpt-5-mini).
func TestCursorResponsesBodyServedAsChatCompletions(t *testing.T) {
	g, up := e2eSetup(t, "")
	_, tok := e2eKey(g, "cursor")
	body := func(model string) string {
		return `{"model":"` + model + `","stream":true,"store":false,"include":["reasoning.encrypted_content"],` +
			`"reasoning":{"effort":"low","summary":"auto"},"text":{"verbosity":"low"},"stream_options":{"include_usage":true},` +
			`"instructions":"You are a coding agent.","tools":[{"type":"function","name":"read_file","parameters":{"type":"object"}}],` +
			`"input":[{"type":"message","role":"user","content":[{"type":"input_text","text":"Say hello."}]}]}`
	}
	for n, tc := range []struct {
		model, upPath string
		reply         fakeupstream.Reply
		cost          float64
	}{
		{"gpt-5-mini", "/v1/chat/completions", fakeupstream.OpenAITextStream("gpt-5-mini", "Hello there, friend.", 1000, true), 0.000262},
		{"haiku", "/v1/messages", fakeupstream.AnthropicTextStream("claude-haiku-4-5", "Hello there, friend."), 0.000042},
	} {
		up.Enqueue(tc.upPath, tc.reply)
		resp := g.post("/v1/chat/completions", tok, body(tc.model))
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: status %d: %s", tc.model, resp.StatusCode, e2eRead(t, resp))
		}
		stream := ssestream.NewStream[openai.ChatCompletionChunk](ssestream.NewDecoder(resp), nil)
		var acc openai.ChatCompletionAccumulator
		for stream.Next() {
			acc.AddChunk(stream.Current())
		}
		resp.Body.Close()
		if err := stream.Err(); err != nil {
			t.Fatalf("%s: the SDK read the stream with %v", tc.model, err)
		}
		if len(acc.Choices) != 1 || acc.Choices[0].Message.Content != "Hello there, friend." {
			t.Errorf("%s: the SDK read %+v", tc.model, acc.Choices)
		}
		got := up.RequestsTo(tc.upPath)
		if len(got) == 0 {
			t.Fatalf("%s: no request reached the provider", tc.model)
		}
		sent := gjson.Parse(got[len(got)-1].Body)
		if tc.upPath == "/v1/chat/completions" {
			for path, want := range map[string]string{
				"messages.0.role": "system", "messages.0.content": "You are a coding agent.",
				"messages.1.content.0.text": "Say hello.", "tools.0.function.name": "read_file",
				"reasoning_effort": "low", "verbosity": "low",
			} {
				if g := sent.Get(path).String(); g != want {
					t.Errorf("upstream %s = %q, want %q", path, g, want)
				}
			}
			if sent.Get("input").Exists() || sent.Get("include").Exists() {
				t.Errorf("Responses members went upstream: %s", sent.Raw)
			}
		} else if sent.Get("system").String() == "" || sent.Get("messages.0.content").String() == "" || sent.Get("tools.0.name").Str != "read_file" {
			t.Errorf("upstream Anthropic request: %s", sent.Raw)
		}
		call := g.waitEvents(store.TypeCallCompleted, n+1)[n] // this call's, not the one before
		if cost := e2eCost(t, call); !e2eNear(cost, tc.cost) {
			t.Errorf("%s: cost_usd %v, want %v", tc.model, cost, tc.cost)
		}
	}

	before := len(up.Requests())
	resp := g.post("/v1/chat/completions", tok, `{"model":"gpt-5-mini","previous_response_id":"resp_1","input":"and then?"}`)
	b := e2eRead(t, resp)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(b, "previous_response_id") || !strings.Contains(b, "Responses API") ||
		e2ePath(e2eJSON(t, b), "error", "type") != "invalid_request_error" {
		t.Errorf("a Responses body with previous_response_id: %d %s; want a 400 naming it", resp.StatusCode, b)
	}
	// Translated on to a Claude model, a member the translation refuses is
	// named with the request the paths are of (review 16R2).
	resp = g.post("/v1/chat/completions", tok, `{"model":"haiku","input":[{"role":"user","content":[{"type":"input_file","file_id":"file-1"}]}]}`)
	if b := e2eRead(t, resp); resp.StatusCode != http.StatusBadRequest || !strings.Contains(b, "a Responses API body") ||
		!strings.Contains(b, "messages[0].content[0]") || !strings.Contains(b, "file ids") {
		t.Errorf("an uploaded file on a Claude model: %d %s; want a 400 naming the converted body and messages[0].content[0]", resp.StatusCode, b)
	}
	// A body with neither input nor messages is still told messages is required.
	resp = g.post("/v1/chat/completions", tok, `{"model":"gpt-5-mini"}`)
	if b := e2eRead(t, resp); resp.StatusCode != http.StatusBadRequest || !strings.Contains(b, "messages: field required") {
		t.Errorf("body without messages: %d %s", resp.StatusCode, b)
	}
	if n := len(up.Requests()) - before; n != 0 {
		t.Errorf("%d refused requests reached the provider", n)
	}
}

// A body with a key twice in one object is refused: the gateway would
// check, reserve and price the first "model" (or max_tokens, stream…) while
// a provider whose parser keeps the last one ran the other, past the key's
// allowed models and its hard limit.
func TestDuplicateKeysRefused(t *testing.T) {
	up := fakeupstream.New(t)
	g := startGateway(t, gatewayConfig(tempDB(t), up.URL, "")+"\n")
	_, tok := g.issueKey(store.IssueParams{Name: "k", AllowedModels: []string{"haiku", "gpt-5-nano"}})
	msgs := `"messages":[{"role":"user","content":"hi"}]`
	cases := []struct{ path, body, key, want string }{
		{"/v1/messages", `{"model":"haiku","model":"sonnet","max_tokens":5,` + msgs + `}`, "model", `"type":"invalid_request_error"`},
		{"/v1/messages", `{"model":"haiku","mod\u0065l":"sonnet","max_tokens":5,` + msgs + `}`, "model", `"invalid_request_error"`},
		{"/v1/messages?beta=true", `{"model":"haiku","max_tokens":1,"max_tokens":64000,` + msgs + `}`, "max_tokens", `"invalid_request_error"`},
		{"/v1/messages/count_tokens", `{"model":"haiku","model":"sonnet",` + msgs + `}`, "model", `"invalid_request_error"`},
		{"/v1/chat/completions", `{"model":"gpt-5-nano","stream":false,"stream":true,` + msgs + `}`, "stream", `"code":"invalid_request"`},
		{"/v1/chat/completions", `{"model":"gpt-5-nano","stream":true,"stream_options":{"include_usage":false,"include_usage":true},` + msgs + `}`,
			"include_usage", `"type":"invalid_request_error"`},
	}
	for _, c := range cases {
		resp := g.post(c.path, tok, c.body)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 400 || !strings.Contains(string(b), c.want) || !strings.Contains(string(b), `\"`+c.key+`\" twice`) {
			t.Errorf("%s %s: %d %s; want 400 naming %q", c.path, c.body, resp.StatusCode, b, c.key)
		}
	}
	if n := len(up.Requests()); n != 0 {
		t.Errorf("%d requests with duplicate keys reached the upstream", n)
	}
	rej := g.events(store.TypeRequestRejected)
	if len(rej) != len(cases) {
		t.Fatalf("%d request.rejected events, want %d", len(rej), len(cases))
	}
	for _, e := range rej {
		if e["reason"] != "duplicate_key" {
			t.Errorf("rejection reason %v, want duplicate_key", e["reason"])
		}
	}
	// The same key in different objects is not a duplicate, and the
	// conversation (a model's tool input replayed as it came) is not
	// looked into.
	for _, body := range []string{
		`{"model":"haiku","max_tokens":5,"metadata":{"model":"x"},` + msgs + `}`,
		`{"model":"haiku","max_tokens":5,"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":[{"type":"tool_use","id":"toolu_1","name":"search","input":{"q":"a","q":"b"}}]},{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":"ok"}]}]}`,
	} {
		resp := g.post("/v1/messages", tok, body)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("%s: %d %s, want 200", body, resp.StatusCode, b)
		}
	}
}

// A request refused before its body is read is answered before any of the
// body is sent: a client that waits for "100 Continue" (curl, .NET and
// Java clients do for large bodies) gets the 413 or 401 at once instead of
// after its expect timeout.
func TestRefusedBodyNotAwaited(t *testing.T) {
	up := fakeupstream.New(t)
	g := startGateway(t, gatewayConfig(tempDB(t), up.URL, ""))
	_, tok := g.issueKey(store.IssueParams{Name: "k"})
	cases := []struct {
		path, token, expect string
		length              int
		status              int
		want                string
	}{
		{"/v1/messages", tok, "Expect: 100-continue\r\n", 40 << 20, 413, `"request_too_large"`},
		{"/v1/messages", tok, "", 40 << 20, 413, `"request_too_large"`},
		{"/v1/messages", "gw_not-a-key", "Expect: 100-continue\r\n", 1 << 20, 401, `"authentication_error"`},
		{"/v1/chat/completions", "gw_not-a-key", "", 1 << 20, 401, `"invalid_api_key"`},
		{"/v1/models", tok, "Expect: 100-continue\r\n", 1 << 20, 405, `POST is not allowed on /v1/models`},
	}
	for _, c := range cases {
		host := strings.TrimPrefix(g.URL, "http://")
		conn, err := net.Dial("tcp", host)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: %s\r\nX-Api-Key: %s\r\nAnthropic-Version: 2023-06-01\r\n"+
			"Content-Type: application/json\r\nContent-Length: %d\r\n%s\r\n", c.path, host, c.token, c.length, c.expect)
		// No body follows: an answer that waits for it never comes.
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Errorf("%s %q: no answer without the body: %v", c.path, c.expect, err)
			conn.Close()
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		conn.Close()
		if resp.StatusCode != c.status || !strings.Contains(string(b), c.want) {
			t.Errorf("%s %q: %d %s, want %d with %s", c.path, c.expect, resp.StatusCode, b, c.status, c.want)
		}
		if !resp.Close {
			t.Errorf("%s %q: the connection is kept open with the body unread", c.path, c.expect)
		}
	}
	if n := len(up.Requests()); n != 0 {
		t.Errorf("%d refused requests reached the upstream", n)
	}
}

// A client that sends its whole body before reading the answer (Python's
// http.client and requests do) gets the 413 for an oversized body, not a
// connection reset: the gateway answers at once, then reads and discards
// the upload before closing, as nginx's lingering close does.
func TestRefusedUploadGetsItsAnswer(t *testing.T) {
	up := fakeupstream.New(t)
	g := startGateway(t, gatewayConfig(tempDB(t), up.URL, ""))
	_, tok := g.issueKey(store.IssueParams{Name: "k"})
	host := strings.TrimPrefix(g.URL, "http://")
	for _, c := range []struct {
		token   string
		size    int
		chunked bool // with Expect: 100-continue, as curl sends a large upload
		want    int
	}{{tok, 40 << 20, false, 413}, {tok, 40 << 20, true, 413}, {"gw_not-a-key", 512 << 10, false, 401}} {
		conn, err := net.Dial("tcp", host)
		if err != nil {
			t.Fatal(err)
		}
		_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
		br := bufio.NewReader(conn)
		framing := fmt.Sprintf("Content-Length: %d\r\n", c.size)
		if c.chunked {
			framing = "Transfer-Encoding: chunked\r\nExpect: 100-continue\r\n"
		}
		fmt.Fprintf(conn, "POST /v1/messages HTTP/1.1\r\nHost: %s\r\nX-Api-Key: %s\r\nAnthropic-Version: 2023-06-01\r\n"+
			"Content-Type: application/json\r\n%s\r\n", host, c.token, framing)
		if c.chunked {
			if line, err := br.ReadString('\n'); err != nil || !strings.HasPrefix(line, "HTTP/1.1 100") {
				t.Fatalf("chunked upload: %q %v, want 100 Continue first", line, err)
			}
			_, _ = br.ReadString('\n') // the blank line ending the interim response
		}
		chunk := bytes.Repeat([]byte("x"), 256<<10)
		for sent := 0; sent < c.size; sent += len(chunk) {
			n := min(len(chunk), c.size-sent)
			if c.chunked {
				_, err = fmt.Fprintf(conn, "%x\r\n%s\r\n", n, chunk[:n])
			} else {
				_, err = conn.Write(chunk[:n])
			}
			if err != nil {
				t.Fatalf("%d-byte upload (chunked %v) cut after %d bytes: %v", c.size, c.chunked, sent, err)
			}
			time.Sleep(time.Millisecond) // an upload slower than loopback
		}
		if c.chunked {
			if _, err := conn.Write([]byte("0\r\n\r\n")); err != nil {
				t.Fatalf("chunked upload: last chunk: %v", err)
			}
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("%d-byte upload: no answer after it: %v", c.size, err)
		}
		b, _ := io.ReadAll(resp.Body)
		conn.Close()
		if resp.StatusCode != c.want || !resp.Close {
			t.Errorf("%d-byte upload: %d (close %v) %s, want %d and the connection closed", c.size, resp.StatusCode, resp.Close, b, c.want)
		}
	}
	if n := len(up.Requests()); n != 0 {
		t.Errorf("%d refused requests reached the upstream", n)
	}
}

// A client may send both x-api-key and Authorization: Claude Code does when
// the developer's own ANTHROPIC_API_KEY is still set beside an
// ANTHROPIC_AUTH_TOKEN holding the gateway token. The gateway token is
// found in either, and neither value goes upstream.
func TestGatewayTokenInEitherHeader(t *testing.T) {
	up := fakeupstream.New(t)
	g := startGateway(t, gatewayConfig(tempDB(t), up.URL, ""))
	_, tok := g.issueKey(store.IssueParams{Name: "both-headers"})
	const ownKey = "sk-ant-developers-own-key"
	for _, hdr := range [][]string{
		{"X-Api-Key", ownKey, "Authorization", "Bearer " + tok},
		{"X-Api-Key", tok, "Authorization", "Bearer " + ownKey},
	} {
		req, _ := http.NewRequest(http.MethodPost, g.URL+"/v1/messages",
			strings.NewReader(`{"model":"haiku","max_tokens":16,"messages":[{"role":"user","content":"Hi."}]}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Anthropic-Version", "2023-06-01")
		for i := 0; i < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("%s / %s: %d %s, want 200", hdr[0], hdr[2], resp.StatusCode, b)
		}
	}
	for i, r := range up.RequestsTo("/v1/messages") {
		if r.Header.Get("X-Api-Key") != testAnthropicKey || r.Header.Get("Authorization") != "" {
			t.Errorf("upstream request %d had x-api-key %q, authorization %q; want only the provider key", i, r.Header.Get("X-Api-Key"), r.Header.Get("Authorization"))
		}
	}
	resp, b := get(t, g.Analytics+"/analytics/me", tok, "X-Api-Key", ownKey)
	if resp.StatusCode != 200 {
		t.Errorf("/analytics/me with both headers: %d %s", resp.StatusCode, b)
	}

	// Two different gateway keys: which key (and whose budget) the caller
	// meant cannot be told, so the request is refused in its shape.
	_, other := g.issueKey(store.IssueParams{Name: "other"})
	before := len(up.Requests())
	for _, path := range []string{"/v1/messages", "/v1/chat/completions"} {
		resp := g.post(path, tok, `{"model":"haiku","max_tokens":16,"messages":[{"role":"user","content":"Hi."}]}`,
			"Authorization", "Bearer "+other)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 401 || !strings.Contains(string(b), "two different gateway keys") {
			t.Errorf("%s with two gateway keys: %d %s, want 401", path, resp.StatusCode, b)
		}
	}
	if n := len(up.Requests()) - before; n != 0 {
		t.Errorf("%d requests with two gateway keys reached the upstream", n)
	}
	rej := g.events(store.TypeRequestRejected)
	if len(rej) != 2 || rej[0]["reason"] != "conflicting_keys" {
		t.Errorf("rejections %v, want 2 with reason conflicting_keys", rej)
	}
	resp, b = get(t, g.Analytics+"/analytics/me", tok, "X-Api-Key", other)
	if resp.StatusCode != 401 {
		t.Errorf("/analytics/me with two gateway keys: %d %s, want 401", resp.StatusCode, b)
	}

	// Only a provider key (an SDK's default headers replaced the gateway
	// key): the answer says no gateway key came, not that it was invalid.
	resp = g.post("/v1/messages", "", `{"model":"haiku","max_tokens":16,"messages":[{"role":"user","content":"Hi."}]}`,
		"Authorization", "Bearer "+ownKey)
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 401 || !strings.Contains(string(b), "no gateway key in the request") {
		t.Errorf("a provider key alone: %d %s, want 401 saying no gateway key came", resp.StatusCode, b)
	}
}

// The gateway token goes to no provider, in whatever other place a client
// sends a copy of it besides the header the gateway reads: a query
// parameter (?key=, as Google-style clients send keys; percent-encoded
// too) or another key header (Azure's api-key, x-goog-api-key). Audit 16A
// found those copies forwarded on same-shape calls.
func TestGatewayTokenCopiesNotForwarded(t *testing.T) {
	g, up := e2eSetup(t, "")
	_, tok := e2eKey(g, "copies")
	enc := strings.ReplaceAll(tok, "_", "%5F")
	up.Enqueue("/v1/messages", fakeupstream.AnthropicTextStream("claude-haiku-4-5", "hi"))
	resp := g.post("/v1/messages?beta=true&key="+tok+"&k2="+enc+"&x=1", tok,
		`{"model":"haiku","max_tokens":16,"messages":[{"role":"user","content":"hi"}]}`,
		"Anthropic-Version", "2023-06-01", "Api-Key", tok, "X-Goog-Api-Key", "Bearer "+tok)
	if body := e2eRead(t, resp); resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	got := up.RequestsTo("/v1/messages")
	if len(got) != 1 {
		t.Fatalf("%d upstream requests", len(got))
	}
	r := got[0]
	if r.RawQuery != "beta=true&x=1" {
		t.Errorf("upstream query %q, want the client's without the token's parameters", r.RawQuery)
	}
	for name, vv := range r.Header {
		for _, v := range vv {
			if strings.Contains(v, tok) {
				t.Errorf("the provider got the gateway token in header %s: %q", name, v)
			}
		}
	}
	if r.Header.Get("X-Api-Key") != testAnthropicKey {
		t.Errorf("upstream x-api-key %q, want the provider key", r.Header.Get("X-Api-Key"))
	}
}

// The provider account is the operator's: a developer's OpenAI
// organization and project headers (the SDKs send them when OPENAI_ORG_ID
// or OPENAI_PROJECT_ID is set) do not go upstream beside the operator's
// key, where OpenAI would refuse the mismatch or bill another project. Nor
// do the forwarding headers a proxy in front adds (the developers' internal
// addresses and host names).
func TestDeveloperOpenAIAccountHeadersHeldBack(t *testing.T) {
	g, up := newGatewayWithFake(t)
	_, tok := g.issueKey(store.IssueParams{Name: "k"})
	up.Enqueue("/v1/chat/completions", fakeupstream.FromFixture(fakeupstream.FixtureOpenAINonStream, 0))
	resp := g.post("/v1/chat/completions", tok, `{"model":"gpt-5-nano","messages":[{"role":"user","content":"hi"}]}`,
		"OpenAI-Organization", "org-developer", "OpenAI-Project", "proj_developer", "X-Stainless-Lang", "go",
		// What nginx or Caddy in front of the gateway adds (audit 15D).
		"X-Forwarded-For", "10.1.2.3", "X-Real-IP", "10.1.2.3", "Via", "1.1 Caddy", "X-Forwarded-Host", "gw.corp.internal",
		"X-Forwarded-Proto", "https", "Forwarded", "for=10.1.2.3;host=gw.corp.internal",
		// Traefik's and ingress-nginx's (review 15R2).
		"X-Forwarded-Server", "traefik-7f9c.corp.internal", "X-Forwarded-Tls-Client-Cert", "MIIB-devcert",
		"X-Original-Forwarded-For", "10.9.8.7", "X-Original-Uri", "/llm/v1/chat/completions", "X-Scheme", "https",
		"Cf-Connecting-Ip", "203.0.113.7", "True-Client-Ip", "203.0.113.7", "X-Client-Ip", "10.1.2.3",
		// CDNs' (review 20S).
		"Cf-Connecting-Ipv6", "fd00::7", "Cf-Pseudo-Ipv4", "240.1.2.8", "Fastly-Client-Ip", "10.1.2.3",
		"X-Azure-ClientIP", "10.1.2.4", "X-Azure-SocketIP", "10.1.2.5", "CloudFront-Viewer-Address", "10.1.2.6:51234",
		// Edge platforms' (review 20R3).
		"Fly-Client-IP", "203.0.113.9", "X-Vercel-Forwarded-For", "203.0.113.10", "X-Nf-Client-Connection-Ip", "203.0.113.11",
		"Incap-Client-IP", "203.0.113.12", "X-Sucuri-ClientIP", "203.0.113.13")
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	rec := up.RequestsTo("/v1/chat/completions")[0]
	if o, p := rec.Header.Get("Openai-Organization"), rec.Header.Get("Openai-Project"); o != "" || p != "" {
		t.Errorf("upstream got organization %q project %q beside the operator's key", o, p)
	}
	for _, h := range []string{"X-Forwarded-For", "X-Real-Ip", "Via", "X-Forwarded-Host", "X-Forwarded-Proto", "Forwarded",
		"X-Forwarded-Server", "X-Forwarded-Tls-Client-Cert", "X-Original-Forwarded-For", "X-Original-Uri", "X-Scheme",
		"Cf-Connecting-Ip", "True-Client-Ip", "X-Client-Ip", "Cf-Connecting-Ipv6", "Cf-Pseudo-Ipv4", "Fastly-Client-Ip",
		"X-Azure-Clientip", "X-Azure-Socketip", "Cloudfront-Viewer-Address", "Fly-Client-Ip", "X-Vercel-Forwarded-For",
		"X-Nf-Client-Connection-Ip", "Incap-Client-Ip", "X-Sucuri-Clientip"} {
		if v := rec.Header.Get(h); v != "" {
			t.Errorf("upstream got %s %q: the network in front of the gateway is not the vendor's to see", h, v)
		}
	}
	if rec.Header.Get("X-Stainless-Lang") != "go" || rec.APIKey() != testOpenAIKey {
		t.Errorf("other headers or the key not as expected: %v", rec.Header)
	}
}

// A header a Connection header names is its sender's hop-by-hop header
// (RFC 9110 §7.6.1): the client's does not go to the provider, nor the
// provider's to the client (review 20S: both went on).
func TestConnectionNamedHeadersStayOnTheirHop(t *testing.T) {
	g, up := newGatewayWithFake(t)
	_, tok := g.issueKey(store.IssueParams{Name: "k"})
	answer := fakeupstream.FromFixture(fakeupstream.FixtureOpenAINonStream, 0)
	answer.Header.Set("Connection", "X-Upstream-Hop")
	answer.Header.Set("X-Upstream-Hop", "provider-internal")
	up.Enqueue("/v1/chat/completions", answer)
	resp := g.post("/v1/chat/completions", tok, `{"model":"gpt-5-nano","messages":[{"role":"user","content":"hi"}]}`,
		"Connection", "keep-alive, X-Hop-Only", "X-Hop-Only", "for-the-next-hop", "X-Stainless-Lang", "go")
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	rec := up.RequestsTo("/v1/chat/completions")[0]
	if v := rec.Header.Get("X-Hop-Only"); v != "" || rec.Header.Get("X-Stainless-Lang") != "go" {
		t.Errorf("upstream got X-Hop-Only %q (want none) and X-Stainless-Lang %q (want go)", v, rec.Header.Get("X-Stainless-Lang"))
	}
	if v := resp.Header.Get("X-Upstream-Hop"); v != "" {
		t.Errorf("the client got the provider's hop-by-hop X-Upstream-Hop %q", v)
	}
}

// A client's Expect: 100-continue (curl sends it for bodies over 1 MB) is
// the gateway's to answer: the body is read whole before the provider is
// called, and the header sent on would make the provider's transport wait
// up to a second, per attempt, for an interim answer a server may never send.
func TestExpectContinueNotSentUpstream(t *testing.T) {
	g, up := newGatewayWithFake(t)
	_, tok := g.issueKey(store.IssueParams{Name: "k"})
	up.Enqueue("/v1/chat/completions", fakeupstream.FromFixture(fakeupstream.FixtureOpenAINonStream, 0))
	body := `{"model":"gpt-5-nano","messages":[{"role":"user","content":"` + strings.Repeat("a", 2<<20) + `"}]}`
	resp := g.post("/v1/chat/completions", tok, body, "Expect", "100-continue")
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if e := up.RequestsTo("/v1/chat/completions")[0].Header.Get("Expect"); e != "" {
		t.Errorf("upstream got Expect %q", e)
	}
}

// An OpenAI-compatible server that ends a stream after the usage chunk
// without "data: [DONE]" sent the whole answer: the client gets it as sent,
// with no error event, and the call is recorded complete, priced from the
// reported usage.
func TestOpenAIStreamEndingWithoutDone(t *testing.T) {
	g, up := newGatewayWithFake(t)
	_, tok := g.issueKey(store.IssueParams{Name: "k"})
	r := fakeupstream.OpenAITextStream("gpt-5-nano", "one two three", 30, true)
	r.Events = r.Events[:len(r.Events)-1] // no [DONE]
	up.Enqueue("/v1/chat/completions", r)
	resp := g.post("/v1/chat/completions", tok, `{"model":"gpt-5-nano","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"Count."}]}`)
	_, datas := sseEvents(t, resp.Body)
	resp.Body.Close()
	if len(datas) != len(r.Events) {
		t.Errorf("client got %d events, the provider sent %d: %v", len(datas), len(r.Events), datas)
	}
	for _, d := range datas {
		if strings.Contains(d, `"error"`) {
			t.Errorf("error event for a whole answer: %s", d)
		}
	}
	call := g.lastCall()
	if call["error_class"] != nil || call["usage_source"] != "provider" || num(call, "input_tokens") != 30 {
		t.Errorf("call %v, want complete with the provider's usage", call)
	}
}

// A client that stops sending its body gets a 408 in its shape when
// Caddy's read timeout ends the wait, not a 400 about an unreadable body.
func TestStalledBodyGets408(t *testing.T) {
	up := fakeupstream.New(t)
	db := tempDB(t)
	g := e2eStartCustom(t, func(gw, an int) string {
		return fmt.Sprintf(`{
	admin off
	servers {
		timeouts {
			read_body 300ms
		}
	}
	metis {
		%s
	}
}
http://127.0.0.1:%d {
	metis_gateway
}
http://127.0.0.1:%d {
	metis_analytics
}
`, gatewayConfig(db, up.URL, ""), gw, an)
	})
	_, tok := g.issueKey(store.IssueParams{Name: "k"})
	host := strings.TrimPrefix(g.URL, "http://")
	conn, err := net.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /v1/messages HTTP/1.1\r\nHost: %s\r\nX-Api-Key: %s\r\nAnthropic-Version: 2023-06-01\r\n"+
		"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"model\":\"haiku\",", host, tok)
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to a stalled body: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusRequestTimeout || !strings.Contains(string(b), "stopped arriving") ||
		!strings.Contains(string(b), `"type":"error"`) {
		t.Errorf("stalled body: %d %s, want a 408 in the Anthropic shape", resp.StatusCode, b)
	}
	if n := len(up.Requests()); n != 0 {
		t.Errorf("%d requests reached the upstream", n)
	}
	if rej := g.events(store.TypeRequestRejected); len(rej) != 1 || rej[0]["reason"] != "body_timeout" {
		t.Errorf("rejections %v, want one body_timeout", rej)
	}
}

// The session comes from Claude Code's header, the gateway's own,
// opencode's x-session-id or Codex CLI's session-id, in that order. A long
// one is clipped, keeping ids that differ past the cut apart: it is stored
// with every call. An X-Session-Id or Session-Id that does not look like
// an agent's id (a web app's login session, say) is not taken.
func TestSessionHeaders(t *testing.T) {
	g, up := newGatewayWithFake(t)
	_, tok := g.issueKey(store.IssueParams{Name: "agents"})
	long := strings.Repeat("s", 10_000)
	for _, hdr := range [][]string{
		{"X-Claude-Code-Session-Id", "cc-1", "X-Session-Id", "ses_other"},
		{"X-Metis-Session-Id", "metis-1"},
		{"X-Session-Id", "ses_opencode1"},
		{"Session-Id", "01a22183-eaaf-7343-a482-06bf8096e6f2"},
		{"X-Claude-Code-Session-Id", long + "a"},
		{"X-Claude-Code-Session-Id", long + "b"},
		{"X-Session-Id", "Bearer eyJhbGciOi.login.session"},
		{"X-Session-Id", strings.Repeat("x", 129)},
		{"Session-Id", "user 42 login"},
		nil,
	} {
		up.Enqueue("/v1/messages", fakeupstream.FromFixture(fakeupstream.FixtureAnthropicNonStream, 0))
		resp := g.post("/v1/messages", tok, `{"model":"haiku","max_tokens":16,"messages":[{"role":"user","content":"hi"}]}`,
			append([]string{"Anthropic-Version", "2023-06-01"}, hdr...)...)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("%.80v: status %d", hdr, resp.StatusCode)
		}
	}
	calls := g.waitEvents(store.TypeCallCompleted, 10)
	var got []string
	for _, c := range calls {
		s, _ := c["session_id"].(string)
		got = append(got, s)
	}
	if len(got) != 10 {
		t.Fatalf("%d calls", len(got))
	}
	if want := []string{"cc-1", "metis-1", "ses_opencode1", "01a22183-eaaf-7343-a482-06bf8096e6f2"}; fmt.Sprint(got[:4]) != fmt.Sprint(want) {
		t.Errorf("sessions %q, want %q", got[:4], want)
	}
	for _, s := range got[4:6] {
		if len(s) > maxSessionID || !strings.HasPrefix(s, long[:200]) {
			t.Errorf("a long session id recorded as %d bytes %.40q…", len(s), s)
		}
	}
	if got[4] == got[5] {
		t.Errorf("two long session ids differing past the cut recorded as one: %.40q…", got[4])
	}
	if got[6] != "" || got[7] != "" || got[8] != "" || got[9] != "" {
		t.Errorf("sessions %q, want none for a login session, a long X-Session-Id, a Session-Id with spaces and no header", got[6:])
	}
}

// A client that announces a 32 MiB body and sends one byte, or 1 MiB, holds
// no more of the gateway's memory while it waits than about what it sent:
// room is made for the bytes that arrive, not for the length announced
// (audit 12C: 20 such connections took the gateway from 56 to 713 MB; audit
// 16A: 1 MiB made ready for each, before any byte came, 240 requests on one
// HTTP/2 connection held 254 MB).
func TestBodyBufferFollowsArrivedBytes(t *testing.T) {
	g := &Gateway{MaxBodySize: defaultMaxBody, logger: zap.NewNop()}
	for _, sent := range []int{1, 1 << 20} {
		r := httptest.NewRequest(http.MethodPost, "/v1/messages",
			io.MultiReader(strings.NewReader(strings.Repeat("x", sent)), iotest.ErrReader(errors.New("connection reset by peer"))))
		r.ContentLength = 32 << 20
		var buf bytes.Buffer
		if aerr := g.readBody(httptest.NewRecorder(), r, &buf, ""); aerr == nil {
			t.Fatal("a body cut short was read whole")
		}
		if c := buf.Cap(); c > 2*sent+128<<10 {
			t.Errorf("%d bytes of an announced 32 MiB body took a %d-byte buffer", sent, c)
		}
	}
}

// A large body announced with its length is read into one buffer of its
// size, not one doubled past it (a 20 MB body was held in 32 MiB).
func TestLargeBodyBufferFitsIt(t *testing.T) {
	g := &Gateway{MaxBodySize: defaultMaxBody, logger: zap.NewNop()}
	const n = 20 << 20
	r := httptest.NewRequest(http.MethodPost, "/v1/messages", strings.NewReader(strings.Repeat("x", n)))
	var buf bytes.Buffer
	if aerr := g.readBody(httptest.NewRecorder(), r, &buf, ""); aerr != nil {
		t.Fatal(aerr.msg)
	}
	if buf.Len() != n || buf.Cap() > n+64<<10 {
		t.Errorf("a %d-byte body: %d bytes read into a %d-byte buffer", n, buf.Len(), buf.Cap())
	}
}

// TestWebSearchesRecorded: an answer whose usage counts the provider's web
// searches (server_tool_use.web_search_requests) is priced with them, at
// $10 per 1,000, and the event says how many ran, so that such a call's
// dollars can be read back from its tokens and searches (audit 15C: the
// count was priced but not recorded). A call without searches has no key.
func TestWebSearchesRecorded(t *testing.T) {
	g, up := newGatewayWithFake(t)
	_, tok := g.issueKey(store.IssueParams{Name: "k"})
	up.Enqueue("/v1/messages", fakeupstream.Reply{Body: `{"id":"msg_ws","type":"message","role":"assistant","model":"claude-sonnet-4-5",` +
		`"content":[{"type":"text","text":"Found it."}],"stop_reason":"end_turn",` +
		`"usage":{"input_tokens":3000,"output_tokens":50,"server_tool_use":{"web_search_requests":2}}}`})
	resp := g.post("/v1/messages", tok, `{"model":"claude-sonnet-4-5","max_tokens":512,"tools":[{"type":"web_search_20250305","name":"web_search"}],"messages":[{"role":"user","content":"news?"}]}`,
		"Anthropic-Version", "2023-06-01")
	if body := e2eRead(t, resp); resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	call := g.lastCall()
	// 3000 × 3e-6 + 50 × 15e-6 + 2 × 0.01 = 0.009 + 0.00075 + 0.02 = 0.02975
	if c := costOf(t, call); !near(c, 0.02975) || num(call, "web_search_requests") != 2 {
		t.Errorf("cost %v, web_search_requests %v; want 0.02975 and 2", call["cost_usd"], call["web_search_requests"])
	}
	up.Enqueue("/v1/messages", fakeupstream.AnthropicMessage("claude-sonnet-4-5", 30, "end_turn", fakeupstream.TextBlock("Hi.")))
	e2eRead(t, g.post("/v1/messages", tok, `{"model":"claude-sonnet-4-5","max_tokens":16,"messages":[{"role":"user","content":"hi"}]}`, "Anthropic-Version", "2023-06-01"))
	if _, ok := g.lastCall()["web_search_requests"]; ok {
		t.Errorf("a call without searches has web_search_requests: %v", g.lastCall())
	}
}
