package metis

// End-to-end model handling: GET /v1/models in both shapes and per key,
// count_tokens, how model references resolve to providers, and the
// routing chain for requests that name no model.

import (
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/metisgateway/metis/internal/fakeupstream"
	"github.com/metisgateway/metis/store"
)

// e2eListModels GETs /v1/models and returns the decoded body.
func e2eListModels(t *testing.T, g *testGateway, tok string, anthropicShape bool) map[string]any {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, g.URL+"/v1/models", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	if anthropicShape {
		req.Header.Set("Anthropic-Version", "2023-06-01")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body := e2eRead(t, resp)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("GET /v1/models: %d %s", resp.StatusCode, body)
	}
	return e2eJSON(t, body)
}

// e2eModelIDs checks the list's shape and returns its ids.
func e2eModelIDs(t *testing.T, list map[string]any, anthropicShape bool) []string {
	t.Helper()
	data, _ := list["data"].([]any)
	if len(data) == 0 {
		t.Fatalf("empty model list: %v", list)
	}
	var ids []string
	for _, d := range data {
		m, _ := d.(map[string]any)
		id, _ := m["id"].(string)
		if id == "" {
			t.Fatalf("model without id: %v", m)
		}
		if anthropicShape {
			if m["type"] != "model" || m["display_name"] == nil || m["created_at"] == nil {
				t.Errorf("not an Anthropic model object: %v", m)
			}
		} else if m["object"] != "model" || m["owned_by"] == nil {
			t.Errorf("not an OpenAI model object: %v", m)
		}
		ids = append(ids, id)
	}
	if anthropicShape {
		if list["has_more"] != false || list["first_id"] != ids[0] || list["last_id"] != ids[len(ids)-1] {
			t.Errorf("Anthropic list paging fields: has_more %v first %v last %v", list["has_more"], list["first_id"], list["last_id"])
		}
	} else if list["object"] != "list" {
		t.Errorf("OpenAI list object %v", list["object"])
	}
	return ids
}

func TestE2EModelsList(t *testing.T) {
	g, up := e2eSetup(t, "")
	_, all := e2eKey(g, "everything")
	_, some := e2eKey(g, "restricted", "haiku", "gpt-5-nano")

	for _, anth := range []bool{true, false} {
		ids := e2eModelIDs(t, e2eListModels(t, g, all, anth), anth)
		for _, want := range []string{"haiku", "sonnet", "nano", "claude-haiku-4-5", "claude-3-7-sonnet-20250219", "gpt-5-nano", "gpt-4o"} {
			if !slices.Contains(ids, want) {
				t.Errorf("anthropic-shape=%v: unrestricted list lacks %s: %v", anth, want, ids)
			}
		}
	}
	// OpenAI shape: aliases are owned by the provider they lead to.
	for _, d := range e2eListModels(t, g, all, false)["data"].([]any) {
		m := d.(map[string]any)
		if want := map[string]string{"haiku": "anthropic", "nano": "openai"}[m["id"].(string)]; want != "" && m["owned_by"] != want {
			t.Errorf("%s owned_by %v, want %s", m["id"], m["owned_by"], want)
		}
	}

	ids := e2eModelIDs(t, e2eListModels(t, g, some, true), true)
	for _, want := range []string{"haiku", "gpt-5-nano"} {
		if !slices.Contains(ids, want) {
			t.Errorf("restricted list lacks %s: %v", want, ids)
		}
	}
	for _, not := range []string{"sonnet", "gpt-4o", "claude-3-7-sonnet-20250219", "claude-sonnet-4-5"} {
		if slices.Contains(ids, not) {
			t.Errorf("restricted list offers %s, which the key may not use: %v", not, ids)
		}
	}
	if openaiIDs := e2eModelIDs(t, e2eListModels(t, g, some, false), false); !slices.Equal(openaiIDs, ids) {
		t.Errorf("the two shapes list different models: %v vs %v", openaiIDs, ids)
	}
	// Every listed model is usable by the key; the others are refused.
	for _, id := range ids {
		resp := g.post("/v1/chat/completions", some, `{"model":"`+id+`","messages":[{"role":"user","content":"hi"}]}`)
		if body := e2eRead(t, resp); resp.StatusCode != 200 {
			t.Errorf("listed model %s refused: %d %s", id, resp.StatusCode, body)
		}
	}
	for _, id := range []string{"sonnet", "gpt-4o"} {
		resp := g.post("/v1/chat/completions", some, `{"model":"`+id+`","messages":[{"role":"user","content":"hi"}]}`)
		if body := e2eRead(t, resp); resp.StatusCode != http.StatusForbidden {
			t.Errorf("unlisted model %s: %d %s, want 403", id, resp.StatusCode, body)
		}
	}
	if n := up.Count("/v1/models"); n != 0 {
		t.Errorf("the model list was fetched from the provider %d times; the gateway answers it", n)
	}
}

func TestE2ECountTokens(t *testing.T) {
	g, up := e2eSetup(t, "")
	k, tok := e2eKey(g, "counter")
	up.Enqueue("/v1/messages/count_tokens", fakeupstream.Reply{
		Header: http.Header{"Content-Type": {"application/json"}, "Request-Id": {"req_011CUcount"}},
		Body:   `{"input_tokens":1234}`,
	})
	body := `{"model":"haiku","system":"Be brief.","messages":[{"role":"user","content":"How many tokens is this?"}],"tools":[{"name":"get_weather","input_schema":{"type":"object"}}]}`
	resp := g.post("/v1/messages/count_tokens?beta=true", tok, body, "Anthropic-Version", "2023-06-01", "Anthropic-Beta", "token-counting-2024-11-01")
	if got := e2eRead(t, resp); resp.StatusCode != 200 || got != `{"input_tokens":1234}` {
		t.Fatalf("count_tokens: %d %s", resp.StatusCode, got)
	}
	reqs := up.RequestsTo("/v1/messages/count_tokens")
	if len(reqs) != 1 {
		t.Fatalf("provider saw %d count_tokens calls", len(reqs))
	}
	r := reqs[0]
	if r.RawQuery != "beta=true" || r.APIKey() != testAnthropicKey || r.Header.Get("Anthropic-Beta") != "token-counting-2024-11-01" ||
		r.Body != strings.Replace(body, `"model":"haiku"`, `"model":"claude-haiku-4-5"`, 1) {
		t.Errorf("forwarded as %s?%s key %q beta %q body %s", r.Path, r.RawQuery, r.APIKey(), r.Header.Get("Anthropic-Beta"), r.Body)
	}

	// An OpenAI model has no count_tokens endpoint: the gateway estimates.
	resp = g.post("/v1/messages/count_tokens", tok, `{"model":"nano","messages":[{"role":"user","content":"How many tokens is this?"}]}`, e2eAnthropicHdr...)
	est := e2eJSON(t, e2eRead(t, resp))
	if n, _ := est["input_tokens"].(float64); resp.StatusCode != 200 || n <= 0 || resp.Header.Get("Metis-Token-Count") != "estimated" {
		t.Errorf("estimated count: %d %v header %q", resp.StatusCode, est, resp.Header.Get("Metis-Token-Count"))
	}
	if n := len(up.Requests()); n != 1 {
		t.Errorf("the estimate went upstream: %d requests", n)
	}

	counted := g.events(typeTokensCounted)
	if len(counted) != 2 {
		t.Fatalf("%d tokens.counted events, want 2", len(counted))
	}
	e2eWant(t, "tokens.counted", counted[0], map[string]any{"gateway_key_id": k.ID, "provider": "anthropic", "model": "claude-haiku-4-5",
		"status": 200, "input_tokens": 1234, "estimated": false})
	e2eWant(t, "estimated tokens.counted", counted[1], map[string]any{"provider": "openai", "model": "gpt-5-nano", "estimated": true})
	if n := len(g.events(store.TypeCallCompleted)); n != 0 {
		t.Errorf("count_tokens recorded %d llm.call_completed events; counting costs nothing", n)
	}
	for _, tc := range g.events(store.TypeTurnCompleted) {
		if c, _ := tc["cost_usd"].(float64); c != 0 {
			t.Errorf("count_tokens turn costs %v", c)
		}
	}
}

func TestE2EModelResolution(t *testing.T) {
	g, up := e2eSetup(t, "")
	_, tok := e2eKey(g, "resolver")
	cases := []struct {
		model          string
		path           string // gateway endpoint
		provider, upTo string // provider and resolved model
		priced         bool
	}{
		{"haiku", "/v1/messages", "anthropic", "claude-haiku-4-5", true},
		{"anthropic:claude-future-9", "/v1/messages", "anthropic", "claude-future-9", false},
		{"openai:gpt-future-1", "/v1/chat/completions", "openai", "gpt-future-1", false},
		{"claude-3-7-sonnet-20250219", "/v1/messages", "anthropic", "claude-3-7-sonnet-20250219", true},
		{"claude-opus-5-5", "/v1/messages", "anthropic", "claude-opus-5-5", false},
		{"gpt-4o", "/v1/chat/completions", "openai", "gpt-4o", true},
		{"o3-mini", "/v1/chat/completions", "openai", "o3-mini", true},
		{"gpt-5-nano", "/v1/messages", "openai", "gpt-5-nano", true}, // Anthropic client, OpenAI model
	}
	for i, c := range cases {
		body := `{"model":"` + c.model + `","messages":[{"role":"user","content":"hi"}]}`
		var hdr []string
		if c.path == "/v1/messages" {
			body = `{"model":"` + c.model + `","max_tokens":32,"messages":[{"role":"user","content":"hi"}]}`
			hdr = e2eAnthropicHdr
		}
		before := len(up.Requests())
		resp := g.post(c.path, tok, body, hdr...)
		if got := e2eRead(t, resp); resp.StatusCode != 200 {
			t.Errorf("%s: %d %s", c.model, resp.StatusCode, got)
			continue
		}
		reqs := up.Requests()
		if len(reqs) != before+1 {
			t.Fatalf("%s: %d upstream requests", c.model, len(reqs)-before)
		}
		r := reqs[len(reqs)-1]
		wantPath := map[string]string{"anthropic": "/v1/messages", "openai": "/v1/chat/completions"}[c.provider]
		if r.Path != wantPath || r.JSON()["model"] != c.upTo {
			t.Errorf("%s: forwarded to %s with model %v, want %s with %s", c.model, r.Path, r.JSON()["model"], wantPath, c.upTo)
		}
		call := e2eCalls(g, i+1)[i]
		e2eWant(t, c.model, call, map[string]any{"requested_model": c.model, "provider": c.provider, "model": c.upTo, "priced": c.priced, "status": 200})
		if c.priced {
			if cost, _ := call["cost_usd"].(float64); cost <= 0 {
				t.Errorf("%s: priced call costs %v", c.model, call["cost_usd"])
			}
		} else if call["cost_usd"] != nil {
			t.Errorf("%s: a model the catalogue doesn't know costs %v, want null", c.model, call["cost_usd"])
		}
	}
	// No provider for these: 404, nothing forwarded.
	before := len(up.Requests())
	for _, m := range []string{"mistral-large-latest", "nosuchprovider:claude-haiku-4-5"} {
		resp := g.post("/v1/chat/completions", tok, `{"model":"`+m+`","messages":[{"role":"user","content":"hi"}]}`)
		if body := e2eRead(t, resp); resp.StatusCode != 404 || !strings.Contains(body, "model_not_found") {
			t.Errorf("%s: %d %s, want 404 model_not_found", m, resp.StatusCode, body)
		}
	}
	if n := len(up.Requests()) - before; n != 0 {
		t.Errorf("unknown models reached a provider %d times", n)
	}
	turns := g.events(store.TypeTurnCompleted)
	for _, tc := range turns {
		if tc["priced"] == false && tc["cost_usd"] != nil {
			t.Errorf("unpriced turn with cost %v", tc["cost_usd"])
		}
	}
}

func TestE2ERoutingChain(t *testing.T) {
	ws := t.TempDir()
	if err := os.MkdirAll(filepath.Join(ws, ".metis"), 0o755); err != nil {
		t.Fatal(err)
	}
	routing := `rules:
  - when: {shape: openai, tools: true}
    model: sonnet
patterns:
  - match: "(?i)summari[sz]e"
    model: haiku
default: nano
`
	if err := os.WriteFile(filepath.Join(ws, ".metis", "routing.yaml"), []byte(routing), 0o644); err != nil {
		t.Fatal(err)
	}
	g, up := e2eSetup(t, "default_model anthropic:claude-3-7-sonnet-20250219")
	_, inWS := g.issueKey(store.IssueParams{Name: "in-workspace", Workspace: ws})
	_, bare := g.issueKey(store.IssueParams{Name: "no-routing-file", Workspace: t.TempDir()})

	cases := []struct {
		name, tok, path, body string
		slot, requested       string
		provider, model       string
	}{
		{"rule", inWS, "/v1/chat/completions",
			`{"messages":[{"role":"user","content":"What's the weather?"}],"tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object"}}}]}`,
			"rule", "sonnet", "anthropic", "claude-3-7-sonnet-20250219"},
		{"pattern", inWS, "/v1/messages",
			`{"max_tokens":64,"messages":[{"role":"user","content":"Please summarise this paragraph."}]}`,
			"pattern", "haiku", "anthropic", "claude-haiku-4-5"},
		{"workspace default", inWS, "/v1/messages",
			`{"max_tokens":64,"messages":[{"role":"user","content":"Hello there."}]}`,
			"default", "nano", "openai", "gpt-5-nano"},
		{"default_model", bare, "/v1/chat/completions",
			`{"messages":[{"role":"user","content":"Please summarise this paragraph."}]}`,
			"default", "anthropic:claude-3-7-sonnet-20250219", "anthropic", "claude-3-7-sonnet-20250219"},
		{"request", inWS, "/v1/chat/completions",
			`{"model":"gpt-4o","messages":[{"role":"user","content":"Please summarise this paragraph."}]}`,
			"request", "gpt-4o", "openai", "gpt-4o"},
	}
	for i, c := range cases {
		var hdr []string
		if c.path == "/v1/messages" {
			hdr = e2eAnthropicHdr
		}
		resp := g.post(c.path, c.tok, c.body, hdr...)
		if body := e2eRead(t, resp); resp.StatusCode != 200 {
			t.Errorf("%s: %d %s", c.name, resp.StatusCode, body)
			continue
		}
		reqs := up.Requests()
		if got := reqs[len(reqs)-1].JSON()["model"]; got != c.model {
			t.Errorf("%s: provider got model %v, want %s", c.name, got, c.model)
		}
		routes := g.events(store.TypeRouteDecided)
		if len(routes) != i+1 {
			t.Fatalf("%s: %d route.decided events", c.name, len(routes))
		}
		e2eWant(t, c.name, routes[i], map[string]any{"route_slot": c.slot, "requested_model": c.requested, "provider": c.provider, "model": c.model})
		call := e2eCalls(g, i+1)[i]
		e2eWant(t, c.name+" call", call, map[string]any{"requested_model": c.requested, "model": c.model})
	}
}
