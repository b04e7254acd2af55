package metis

// End-to-end model handling: GET /v1/models in both shapes and per key,
// count_tokens, how model references resolve to providers, and the
// routing chain for requests that name no model.

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/openai/openai-go/v3"

	"github.com/metisgateway/metis/internal/fakeupstream"
	"github.com/metisgateway/metis/ir"
	"github.com/metisgateway/metis/store"
)

// e2eListModels GETs /v1/models and returns the decoded body. The
// Anthropic list is paginated: it asks for its largest page, 1000, which
// holds every model of the test gateway.
func e2eListModels(t *testing.T, g *testGateway, tok string, anthropicShape bool) map[string]any {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, g.URL+"/v1/models", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	if anthropicShape {
		req.URL.RawQuery = "limit=1000"
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
	resp := g.post("/v1/messages/count_tokens?beta=true", tok, body, "Anthropic-Version", "2023-06-01", "Anthropic-Beta", "token-counting-2024-11-01",
		"X-Claude-Code-Session-Id", "sess-count")
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
	// Claude Code's /context sends dozens in a session: they carry it, and
	// the key's tags, like the calls.
	e2eWant(t, "tokens.counted", counted[0], map[string]any{"gateway_key_id": k.ID, "provider": "anthropic", "model": "claude-haiku-4-5",
		"status": 200, "input_tokens": 1234, "estimated": false, "session_id": "sess-count", "key_name": "counter",
		"user": "counter-user", "team": "e2e", "inbound_shape": "anthropic", "requested_model": "haiku"})
	e2eWant(t, "estimated tokens.counted", counted[1], map[string]any{"provider": "openai", "model": "gpt-5-nano", "estimated": true,
		"requested_model": "nano"})
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
		{"claude-opus-9-9", "/v1/messages", "anthropic", "claude-opus-9-9", false}, // claude- prefix, not in the catalogue
		{"gpt-4o", "/v1/chat/completions", "openai", "gpt-4o", true},
		{"o3-mini", "/v1/chat/completions", "openai", "o3-mini", true},
		{"gpt-5-nano", "/v1/messages", "openai", "gpt-5-nano", true}, // Anthropic client, OpenAI model
		// An OpenAI fine-tune, bare: the catalogue has no price for it.
		// Its suffix may have capitals.
		{"ft:gpt-4o-mini-2024-07-18:acme::AbC123", "/v1/chat/completions", "openai", "ft:gpt-4o-mini-2024-07-18:acme::AbC123", false},
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
	// No provider for these: 404, nothing forwarded. Ids are taken as
	// written: the forms pricing forgives (case, spaces, a "x/" prefix)
	// would reach the provider as sent and be recorded under names of
	// their own, so they get a 404 that names the id meant.
	before := len(up.Requests())
	for m, hint := range map[string]string{
		"mistral-large-latest":            "",
		"nosuchprovider:claude-haiku-4-5": "",
		"CLAUDE-HAIKU-4-5":                `did you mean \"claude-haiku-4-5\"?`,
		" claude-haiku-4-5":               `did you mean \"claude-haiku-4-5\"?`,
		"evil/claude-opus-4-8":            `did you mean \"claude-opus-4-8\"?`,
		"openai/gpt-5-mini":               `to name a provider, write \"openai:gpt-5-mini\"`,
		// A known prefix does not make a misspelling an id.
		"claude-Haiku-4-5":  `did you mean \"claude-haiku-4-5\"?`,
		"claude-haiku-4-5 ": `did you mean \"claude-haiku-4-5\"?`,
		"gpt-5-mini/../x":   "",
		// No hint for a provider/model whose model the catalogue does not
		// list: "anthropic:claude-sonnet-4.5" would only be the provider's 404.
		"anthropic/claude-sonnet-4.5": "",
	} {
		resp := g.post("/v1/chat/completions", tok, `{"model":"`+m+`","messages":[{"role":"user","content":"hi"}]}`)
		body := e2eRead(t, resp)
		if resp.StatusCode != 404 || !strings.Contains(body, "model_not_found") || !strings.Contains(body, hint) ||
			(hint == "" && (strings.Contains(body, "did you mean") || strings.Contains(body, "to name a provider"))) {
			t.Errorf("%q: %d %s, want 404 model_not_found with %s", m, resp.StatusCode, body, hint)
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

	// A model the routing chose and the key may not use (or no provider
	// serves) is refused saying what chose it, and the refusal records
	// the slot: the developer did not name that model.
	_, haikuOnly := g.issueKey(store.IssueParams{Name: "haiku-only", Workspace: ws, AllowedModels: []string{"haiku"}})
	_, haikuBare := g.issueKey(store.IssueParams{Name: "haiku-only-bare", Workspace: t.TempDir(), AllowedModels: []string{"haiku"}})
	for _, c := range []struct{ tok, by, slot string }{
		{haikuOnly, "the workspace's .metis/routing.yaml (slot default)", "default"},
		{haikuBare, "the gateway's default_model (slot default)", "default"},
	} {
		before := len(g.events(store.TypeRequestRejected))
		resp := g.post("/v1/messages", c.tok, `{"max_tokens":64,"messages":[{"role":"user","content":"Hello there."}]}`, e2eAnthropicHdr...)
		body := e2eRead(t, resp)
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "chosen for a request without a model by "+c.by) {
			t.Errorf("routed model refused: %d %s, want 403 naming %s", resp.StatusCode, body, c.by)
		}
		rej := g.events(store.TypeRequestRejected)
		if len(rej) != before+1 || rej[len(rej)-1]["route_slot"] != c.slot || rej[len(rej)-1]["reason"] != "model_not_allowed" {
			t.Errorf("refusal of a routed model recorded as %v, want route_slot %s", rej[len(rej)-1:], c.slot)
		}
	}

	// A broken routing file fails only the requests that need it, and the
	// caller is not shown the server's file path or the parser's output.
	broken := t.TempDir()
	if err := os.MkdirAll(filepath.Join(broken, ".metis"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(broken, ".metis", "routing.yaml"), []byte("rules: [\n  - when: {\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, inBroken := g.issueKey(store.IssueParams{Name: "broken-routing", Workspace: broken})
	resp := g.post("/v1/messages", inBroken, `{"max_tokens":64,"messages":[{"role":"user","content":"Hello."}]}`, e2eAnthropicHdr...)
	body := e2eRead(t, resp)
	if resp.StatusCode != http.StatusInternalServerError || e2ePath(e2eJSON(t, body), "error", "type") != "api_error" ||
		strings.Contains(string(body), broken) || strings.Contains(string(body), "yaml") {
		t.Errorf("broken routing file: %d %s, want a 500 api_error that names neither the file nor the parse error", resp.StatusCode, body)
	}
	resp = g.post("/v1/messages", inBroken, `{"model":"haiku","max_tokens":64,"messages":[{"role":"user","content":"Hello."}]}`, e2eAnthropicHdr...)
	if body := e2eRead(t, resp); resp.StatusCode != 200 {
		t.Errorf("a request naming its model failed on a broken routing file: %d %s", resp.StatusCode, body)
	}
}

func TestE2EModelRetrieve(t *testing.T) {
	g, up := e2eSetup(t, "")
	_, all := e2eKey(g, "everything")
	k, some := e2eKey(g, "restricted", "haiku", "gpt-5-nano", "anthropic:claude-future-9")
	ctx := context.Background()

	// GET /v1/models/{id} answers, for every model the key's list shows,
	// exactly the object the list shows, in the same shape.
	for _, anth := range []bool{true, false} {
		var hdr []string
		if anth {
			hdr = e2eAnthropicHdr
		}
		data, _ := e2eListModels(t, g, some, anth)["data"].([]any)
		if len(data) < 3 {
			t.Fatalf("restricted list: %v", data)
		}
		for _, d := range data {
			item := d.(map[string]any)
			id := item["id"].(string)
			resp, body := e2eDo(t, g, http.MethodGet, "/v1/models/"+url.PathEscape(id), some, hdr...)
			if resp.StatusCode != 200 || !reflect.DeepEqual(e2eJSON(t, body), item) {
				t.Errorf("anthropic-shape=%v: GET /v1/models/%s: %d %s, want the list's item %v", anth, id, resp.StatusCode, body, item)
			}
		}
	}

	// The official SDKs' retrieve.
	ac := e2eAnthropicClient(g, some)
	for _, id := range []string{"haiku", "gpt-5-nano", "anthropic:claude-future-9"} {
		info, err := ac.Models.Get(ctx, id, anthropic.ModelGetParams{})
		if err != nil {
			t.Errorf("anthropic Models.Get(%s): %v", id, err)
			continue
		}
		if info.ID != id || string(info.Type) != "model" || info.DisplayName != id || !info.CreatedAt.Equal(modelCreated) {
			t.Errorf("anthropic Models.Get(%s) = id %q type %q name %q created %v", id, info.ID, info.Type, info.DisplayName, info.CreatedAt)
		}
		// The limits, from the catalogue, when it knows the model: an SDK
		// user sizing max_tokens from max_tokens must not read 0.
		limits := map[string][2]int64{"haiku": {200000, 64000}, "gpt-5-nano": {272000, 128000}} // claude-future-9: unknown
		wantIn, wantOut := limits[id][0], limits[id][1]
		if info.MaxInputTokens != wantIn || info.MaxTokens != wantOut {
			t.Errorf("anthropic Models.Get(%s): max_input_tokens %d, max_tokens %d; want %d, %d", id, info.MaxInputTokens, info.MaxTokens, wantIn, wantOut)
		}
	}
	oc := e2eOpenAIClient(g, some)
	for id, owner := range map[string]string{"gpt-5-nano": "openai", "haiku": "anthropic"} {
		m, err := oc.Models.Get(ctx, id)
		if err != nil {
			t.Errorf("openai Models.Get(%s): %v", id, err)
			continue
		}
		if m.ID != id || string(m.Object) != "model" || m.OwnedBy != owner || m.Created != modelCreated.Unix() {
			t.Errorf("openai Models.Get(%s) = %+v", id, m)
		}
	}
	// A model the key may not use, and an unknown one: 404 in the SDK's shape.
	for _, id := range []string{"sonnet", "no-such-model"} {
		_, err := ac.Models.Get(ctx, id, anthropic.ModelGetParams{})
		var ae *anthropic.Error
		if !errors.As(err, &ae) || ae.StatusCode != 404 || string(ae.Type()) != "not_found_error" {
			t.Errorf("anthropic Models.Get(%s): %v, want 404 not_found_error", id, err)
		}
	}
	for _, id := range []string{"gpt-4o", "no-such-model"} {
		_, err := oc.Models.Get(ctx, id)
		var oe *openai.Error
		if !errors.As(err, &oe) || oe.StatusCode != 404 || oe.Code != "model_not_found" || oe.Type != "invalid_request_error" {
			t.Errorf("openai Models.Get(%s): %v, want 404 model_not_found", id, err)
		}
	}
	// The unrestricted key sees them.
	acAll, ocAll := e2eAnthropicClient(g, all), e2eOpenAIClient(g, all)
	if info, err := acAll.Models.Get(ctx, "sonnet", anthropic.ModelGetParams{}); err != nil || info.ID != "sonnet" {
		t.Errorf("unrestricted anthropic Models.Get(sonnet): %v %v", info, err)
	}
	if m, err := ocAll.Models.Get(ctx, "gpt-4o"); err != nil || m.ID != "gpt-4o" || m.OwnedBy != "openai" {
		t.Errorf("unrestricted openai Models.Get(gpt-4o): %v %v", m, err)
	}
	// Models a chat call accepts that the list does not show (a
	// provider:model reference, a new id or a fine-tune matched by its
	// prefix) are retrieved as the provider's API retrieves every model
	// the caller can use: tools that check a model before using it refused
	// ones that work (audit 12E).
	for _, id := range []string{"openai:gpt-4o", "gpt-5.7", "ft:gpt-4o-2024-08-06:org:custom:abc123"} {
		if m, err := ocAll.Models.Get(ctx, id); err != nil || m.ID != id || m.OwnedBy != "openai" {
			t.Errorf("unrestricted openai Models.Get(%s): %+v %v", id, m, err)
		}
	}
	if info, err := acAll.Models.Get(ctx, "anthropic:claude-future-9", anthropic.ModelGetParams{}); err != nil || info.ID != "anthropic:claude-future-9" {
		t.Errorf("unrestricted anthropic Models.Get(anthropic:claude-future-9): %v %v", info, err)
	}

	// Each 404 is a rejected request, attributed, naming the model.
	rej := g.events(store.TypeRequestRejected)
	want := []map[string]any{
		{"reason": "model_not_allowed", "requested_model": "sonnet", "inbound_shape": "anthropic"},
		{"reason": "unknown_model", "requested_model": "no-such-model", "inbound_shape": "anthropic"},
		{"reason": "model_not_allowed", "requested_model": "gpt-4o", "inbound_shape": "openai"},
		{"reason": "unknown_model", "requested_model": "no-such-model", "inbound_shape": "openai"},
	}
	if len(rej) != len(want) {
		t.Fatalf("%d request.rejected events, want %d: %v", len(rej), len(want), rej)
	}
	for i, w := range want {
		w["status"], w["gateway_key_id"], w["method"] = 404, k.ID, "GET"
		e2eWant(t, fmt.Sprintf("rejection %d", i), rej[i], w)
	}
	if n := len(up.Requests()); n != 0 {
		t.Errorf("model retrieval reached the provider %d times", n)
	}
}

// e2eModelsPage GETs an Anthropic-shape page of /v1/models.
func e2eModelsPage(t *testing.T, g *testGateway, tok, query string) (int, map[string]any, string) {
	t.Helper()
	resp, body := e2eDo(t, g, http.MethodGet, "/v1/models?"+query, tok, e2eAnthropicHdr...)
	return resp.StatusCode, e2eJSON(t, body), body
}

func TestE2EModelsPagination(t *testing.T) {
	g, _ := e2eSetup(t, "")
	_, tok := e2eKey(g, "pager")
	full := e2eModelIDs(t, e2eListModels(t, g, tok, true), true)
	n := len(full)
	if n <= 25 {
		t.Fatalf("the test needs more than 25 models to page through, the list has %d", n)
	}
	q := url.QueryEscape
	check := func(query string, want []string, hasMore bool) {
		t.Helper()
		status, m, body := e2eModelsPage(t, g, tok, query)
		if status != 200 {
			t.Errorf("?%s: %d %s", query, status, body)
			return
		}
		var ids []string
		for _, d := range m["data"].([]any) {
			ids = append(ids, d.(map[string]any)["id"].(string))
		}
		if !slices.Equal(ids, want) {
			t.Errorf("?%s: ids %v, want %v", query, ids, want)
		}
		var first, last any
		if len(want) > 0 {
			first, last = want[0], want[len(want)-1]
		}
		if m["has_more"] != hasMore || m["first_id"] != first || m["last_id"] != last {
			t.Errorf("?%s: has_more %v first_id %v last_id %v, want %v %v %v", query, m["has_more"], m["first_id"], m["last_id"], hasMore, first, last)
		}
		if _, ok := m["first_id"]; !ok {
			t.Errorf("?%s: first_id missing (null on an empty page): %s", query, body)
		}
	}
	check("", full[:20], true) // Anthropic's default page is 20
	check("limit=7", full[:7], true)
	check("limit=1", full[:1], true)
	check("limit=7&after_id="+q(full[6]), full[7:14], true)
	check("limit=2&after_id="+q(full[n-3]), full[n-2:], false)
	check("limit=1000&after_id="+q(full[n-3]), full[n-2:], false)
	check("after_id="+q(full[n-1]), nil, false)
	check("limit=3&before_id="+q(full[10]), full[7:10], true)
	check("limit=2&before_id="+q(full[2]), full[:2], false)
	check("limit=5&before_id="+q(full[2]), full[:2], false)
	check("before_id="+q(full[0]), nil, false)
	check(fmt.Sprintf("limit=%d", n), full, false)
	check("limit=1000", full, false)

	// Out-of-range or unknown parameters: 400 naming the parameter.
	bad := map[string]string{
		"limit=0": "limit", "limit=1001": "limit", "limit=abc": "limit", "limit=-1": "limit",
		"after_id=no-such-model": "after_id", "before_id=no-such-model": "before_id",
		"after_id=haiku&before_id=sonnet": "before_id",
	}
	for query, param := range bad {
		status, m, body := e2eModelsPage(t, g, tok, query)
		msg, _ := e2ePath(m, "error", "message").(string)
		if status != 400 || m["type"] != "error" || e2ePath(m, "error", "type") != "invalid_request_error" || !strings.Contains(msg, param) {
			t.Errorf("?%s: %d %s, want 400 invalid_request_error naming %s", query, status, body, param)
		}
	}
	rej := g.events(store.TypeRequestRejected)
	if len(rej) != len(bad) {
		t.Errorf("%d request.rejected events for %d refused pages", len(rej), len(bad))
	}
	for _, e := range rej {
		e2eWant(t, "bad page", e, map[string]any{"reason": "invalid_request", "status": 400, "path": "/v1/models", "inbound_shape": "anthropic"})
	}

	// OpenAI's list has no pagination: the Anthropic parameters are ignored
	// and every model comes back.
	resp, body := e2eDo(t, g, http.MethodGet, "/v1/models?limit=3&after_id="+q(full[0]), tok)
	m := e2eJSON(t, body)
	if data, _ := m["data"].([]any); resp.StatusCode != 200 || len(data) != n || m["object"] != "list" {
		t.Errorf("OpenAI list with ?limit=3: %d, %d models, want all %d", resp.StatusCode, len(data), n)
	}
	if _, has := m["has_more"]; has {
		t.Errorf("OpenAI list has Anthropic paging fields: %s", body)
	}

	// The Anthropic SDK's auto-pager walks every page, forwards and back.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ac := e2eAnthropicClient(g, tok)
	page, err := ac.Models.List(ctx, anthropic.ModelListParams{Limit: anthropic.Int(7)})
	if err != nil || len(page.Data) != 7 || !page.HasMore || page.LastID != full[6] {
		t.Fatalf("Models.List(limit 7): %v %+v", err, page)
	}
	walk := func(p anthropic.ModelListParams) []string {
		t.Helper()
		var ids []string
		it := ac.Models.ListAutoPaging(ctx, p)
		for it.Next() {
			ids = append(ids, it.Current().ID)
		}
		if err := it.Err(); err != nil {
			t.Fatalf("ListAutoPaging(%+v): %v", p, err)
		}
		return ids
	}
	if got := walk(anthropic.ModelListParams{Limit: anthropic.Int(7)}); !slices.Equal(got, full) {
		t.Errorf("ListAutoPaging(limit 7) = %d models %v, want all %d %v", len(got), got, n, full)
	}
	if got := walk(anthropic.ModelListParams{}); !slices.Equal(got, full) {
		t.Errorf("ListAutoPaging() = %d models, want all %d", len(got), n)
	}
	// Backwards from the last model: pages of 5 in reverse page order.
	var back []string
	for end := n - 1; end > 0; end -= 5 {
		back = append(back, full[max(end-5, 0):end]...)
	}
	if got := walk(anthropic.ModelListParams{BeforeID: anthropic.String(full[n-1]), Limit: anthropic.Int(5)}); !slices.Equal(got, back) {
		t.Errorf("ListAutoPaging(before %s, limit 5) = %v, want %v", full[n-1], got, back)
	}
}

// A default_model or alias no provider serves is a config error, not a 404
// every model-less request (or every use of the alias) would get: the
// operator's mistake would be shown to developers, at run time.
func TestConfigRefusesModelsNoProviderServes(t *testing.T) {
	db := tempDB(t)
	g := startGateway(t, gatewayConfig(db, "http://127.0.0.1:1", ""))
	for extra, want := range map[string]string{
		"default_model zzz-unknown":              `default_model: no provider serves model "zzz-unknown"`,
		"alias tuned mistral-large":              `alias "tuned": no provider serves model "mistral-large"`,
		"alias hk claude-HAIKU-4-5":              `alias "hk": no provider serves model "claude-HAIKU-4-5"`,
		"alias fast quick\n\t\talias quick fast": `aliases loop: fast → quick → fast`,
		"alias a1 a2\n\t\talias a2 a3\n\t\talias a3 a4\n\t\talias a4 a5\n\t\talias a5 haiku": `alias "a1": more than 4 aliases in a row`,
	} {
		err := g.tryLoad(gatewayConfig(db, "http://127.0.0.1:1", extra))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("config with %q: %v, want an error with %s", extra, err, want)
		}
	}
	// What resolves loads: aliases of aliases within the bound, fine-tunes,
	// provider:model for models the catalogue does not know, an alias of
	// itself (which names the model).
	if err := g.tryLoad(gatewayConfig(db, "http://127.0.0.1:1",
		"alias fast quick\n\t\talias quick haiku\n\t\talias tuned ft:gpt-4o-mini-2024-07-18:acme::abc123\n\t\talias future anthropic:claude-future-9\n\t\tdefault_model fast\n\t\talias gpt-4o gpt-4o")); err != nil {
		t.Errorf("a config whose models resolve: %v", err)
	}
}

// TestE2ECountTokensEstimateOfAnImage: the gateway's count_tokens estimate
// for an OpenAI model counts a screenshot at the image rate, not its
// base64 as text (3 MB of it read as 1,048,617 tokens, past gpt-5-nano's
// whole window, telling a client its prompt could never fit).
func TestE2ECountTokensEstimateOfAnImage(t *testing.T) {
	g, _ := e2eSetup(t, "")
	_, tok := e2eKey(g, "counter")
	img := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte("\x89PNG\r\n\x1a\n"), 3<<20/8))
	body := `{"model":"nano","messages":[{"role":"user","content":[` +
		`{"type":"image","source":{"type":"base64","media_type":"image/png","data":"` + img + `"}},` +
		`{"type":"text","text":"What is in this screenshot?"}]}]}`
	resp := g.post("/v1/messages/count_tokens", tok, body, e2eAnthropicHdr...)
	got := e2eJSON(t, e2eRead(t, resp))
	// The image at the flat rate, plus the text and JSON around it (~40
	// tokens at four bytes each).
	if n, _ := got["input_tokens"].(float64); resp.StatusCode != 200 || n < ir.ImageTokenEstimate || n > ir.ImageTokenEstimate+100 {
		t.Errorf("count_tokens estimate %d %v for one image and a sentence; want about %d", resp.StatusCode, got["input_tokens"], ir.ImageTokenEstimate)
	}
}

// README "Trace events": count_tokens calls are recorded as tokens.counted
// "with the key's tags, session_id, inbound_shape and requested_model like a
// call". A call without a session records session_id null in
// llm.call_completed; its count_tokens must record it the same way, or a
// query for session-less events (json_extract(...,'$.session_id') IS NULL)
// misses the count_tokens rows.
func TestTokensCountedWithoutASessionIsNull(t *testing.T) {
	g, up := e2eSetup(t, "")
	_, tok := e2eKey(g, "nosession")
	up.Enqueue("/v1/messages/count_tokens", fakeupstream.Reply{
		Header: http.Header{"Content-Type": {"application/json"}},
		Body:   `{"input_tokens":12}`,
	})
	resp := g.post("/v1/messages/count_tokens", tok, `{"model":"haiku","messages":[{"role":"user","content":"hi"}]}`, e2eAnthropicHdr...)
	if body := e2eRead(t, resp); resp.StatusCode != 200 {
		t.Fatalf("count_tokens: %d %s", resp.StatusCode, body)
	}
	resp = g.post("/v1/messages", tok, `{"model":"haiku","max_tokens":16,"messages":[{"role":"user","content":"hi"}]}`, e2eAnthropicHdr...)
	if body := e2eRead(t, resp); resp.StatusCode != 200 {
		t.Fatalf("messages: %d %s", resp.StatusCode, body)
	}
	call := g.lastCall()
	counted := g.waitEvents(typeTokensCounted, 1)
	if len(counted) != 1 {
		t.Fatalf("%d tokens.counted events", len(counted))
	}
	cs, cok := call["session_id"]
	ts, tok2 := counted[0]["session_id"]
	if cok != tok2 || cs != ts {
		t.Errorf("no session: llm.call_completed session_id = %#v (present %v), tokens.counted session_id = %#v (present %v); want the same representation", cs, cok, ts, tok2)
	}
}
