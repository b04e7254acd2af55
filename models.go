package metis

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/metisgateway/metis/store"
)

// Route slots recorded in route.decided (contract §4).
const (
	slotRequest = "request"
	slotRule    = "rule"
	slotPattern = "pattern"
	slotDefault = "default"
)

// resolved is where a model reference leads: a configured provider and the
// model id to send it.
type resolved struct {
	prov  *provider
	model string
}

// resolve turns a model reference — an alias, "provider:model" or a bare
// model id — into a provider and upstream model id. It returns nil when no
// provider serves the model.
func (a *App) resolve(ref string) *resolved {
	ref = a.aliasTarget(ref) // aliases may point at aliases; Validate refuses loops
	if name, model, ok := strings.Cut(ref, ":"); ok && model != "" {
		if p := a.providers[name]; p != nil {
			return &resolved{prov: p, model: model}
		}
		if a.looksLikeProviderRef(name) && !strings.Contains(model, ":") {
			return nil // "nosuchprovider:model"
		}
	}
	// Exact ids only: " Claude-Haiku-4-5" or "evil/claude-opus-4-8" would
	// reach the provider as sent and be recorded under a name of its own.
	typ := a.prices.ListedProvider(ref)
	if typ != shapeAnthropic && typ != shapeOpenAI {
		typ = typeByPrefix(ref)
	}
	if typ == "" {
		return nil
	}
	if p := a.providerOfType(typ); p != nil {
		return &resolved{prov: p, model: ref}
	}
	return nil
}

// plainID reports whether model is spelt as Anthropic's and OpenAI's ids
// are: lower-case letters, digits, '-', '.', '_', and '[' and ']' (for a
// "[1m]" suffix). An OpenAI fine-tune ("ft:", the base model, ":", the
// organization and suffix) may have any printable character but spaces
// and slashes after its base model. "claude-Haiku-4-5" or "gpt-5-mini "
// would otherwise reach the provider as sent, be recorded under a name of
// their own and priced as the model they resemble.
func plainID(model string) bool {
	rest := ""
	if after, ok := strings.CutPrefix(model, "ft:"); ok {
		model, rest, _ = strings.Cut(after, ":")
	}
	if model == "" {
		return false
	}
	for _, r := range model {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '-' && r != '.' && r != '_' && r != '[' && r != ']' {
			return false
		}
	}
	for _, r := range rest {
		if r <= ' ' || r == '/' || r >= 0x7f {
			return false
		}
	}
	return true
}

// unknownModelHint is what a 404 for ref adds when ref looks like a
// misspelt model the gateway serves: another case or spaces, or a
// "provider/model" (LiteLLM's spelling) for "provider:model" when the
// catalogue lists that model (else the hint would lead to the provider's
// own 404).
func (a *App) unknownModelHint(ref string) string {
	if i := strings.IndexByte(ref, '/'); i > 0 && a.prices.Listed(ref[i+1:]) {
		if a.providers[ref[:i]] != nil {
			return fmt.Sprintf(" (to name a provider, write %q)", ref[:i]+":"+ref[i+1:])
		}
		return fmt.Sprintf(" (did you mean %q?)", ref[i+1:])
	}
	if len(ref) > maxRecordedModel+2 { // no hint quotes a longer name back
		return ""
	}
	if m := strings.ToLower(strings.TrimSpace(ref)); m != ref && a.resolve(m) != nil {
		return fmt.Sprintf(" (did you mean %q?)", m)
	}
	return ""
}

// typeByPrefix maps well-known model id prefixes to a provider type, for
// models the catalogue does not know (yet, or ever: fine-tunes). The id
// must be spelt as providers spell theirs (see plainID).
func typeByPrefix(model string) string {
	if !plainID(model) {
		return ""
	}
	switch {
	case strings.HasPrefix(model, "claude-"):
		return shapeAnthropic
	case strings.HasPrefix(model, "gpt-"), strings.HasPrefix(model, "chatgpt-"),
		strings.HasPrefix(model, "o1"), strings.HasPrefix(model, "o3"), strings.HasPrefix(model, "o4"),
		strings.HasPrefix(model, "ft:"): // OpenAI fine-tunes, ft:gpt-4o-mini-2024-07-18:org::id
		return shapeOpenAI
	}
	return ""
}

// providerOfType is the provider bare model ids of a type go to: the one
// named after the type, else the first configured of that type.
func (a *App) providerOfType(typ string) *provider {
	if p := a.providers[typ]; p != nil && p.typ == typ {
		return p
	}
	for _, p := range a.ordered {
		if p.typ == typ {
			return p
		}
	}
	return nil
}

// allowed reports whether a key restricted to allow may use the resolved
// model. Each entry of allow is itself a model reference.
func (a *App) allowed(allow []string, requested string, r *resolved) bool {
	if len(allow) == 0 {
		return true
	}
	for _, entry := range allow {
		if entry == requested {
			return true
		}
		if e := a.resolve(entry); e != nil && e.prov == r.prov && e.model == r.model {
			return true
		}
	}
	return false
}

// modelEntry is one model listed by GET /v1/models.
type modelEntry struct {
	id      string
	ownedBy string
	// maxInput and maxOutput are the resolved model's context window and
	// output limit from the price catalogue (0 when it does not say).
	maxInput, maxOutput int
}

// listModels is every model the key may use: aliases first, then the
// catalogue's models of each configured provider type.
func (a *App) listModels(allow []string) []modelEntry {
	var out []modelEntry
	seen := map[string]bool{}
	add := func(id, owner string) {
		if seen[id] {
			return
		}
		r := a.resolve(id)
		if r == nil || !a.allowed(allow, id, r) {
			return
		}
		seen[id] = true
		p, _ := a.prices.Lookup(r.model)
		out = append(out, modelEntry{id: id, ownedBy: owner, maxInput: p.MaxInputTokens, maxOutput: p.MaxOutputTokens})
	}
	aliases := make([]string, 0, len(a.Aliases))
	for k := range a.Aliases {
		aliases = append(aliases, k)
	}
	slices.Sort(aliases)
	for _, k := range aliases {
		if r := a.resolve(k); r != nil {
			add(k, r.prov.name)
		}
	}
	for _, entry := range allow {
		if r := a.resolve(entry); r != nil {
			add(entry, r.prov.name)
		}
	}
	for _, p := range a.ordered {
		if a.providerOfType(p.typ) != p {
			continue
		}
		for _, m := range a.prices.Models(p.typ) {
			add(m, p.name)
		}
	}
	return out
}

// modelCreated is the creation time GET /v1/models and /v1/models/{id}
// report for every model, in both shapes: the Unix epoch. The gateway has
// no honest per-model date. Anthropic defines created_at as the model's
// release time and documents an epoch value as "release date unknown";
// OpenAI's created is the model's creation time. The price catalogue knows
// neither (it records only when the whole table was retrieved, which would
// read as a false release date), and aliases or "provider:model" entries
// may name models the catalogue lacks altogether.
var modelCreated = time.Unix(0, 0).UTC()

// anthropicModel is one model in Anthropic's list and retrieve shape. The
// limits are given when the price catalogue knows them: clients size
// max_tokens from max_tokens.
type anthropicModel struct {
	Type           string `json:"type"`
	ID             string `json:"id"`
	DisplayName    string `json:"display_name"`
	CreatedAt      string `json:"created_at"`
	MaxInputTokens int    `json:"max_input_tokens,omitempty"`
	MaxTokens      int    `json:"max_tokens,omitempty"`
}

// openAIModel is one model in OpenAI's list and retrieve shape.
type openAIModel struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
}

// modelObject renders one listed model in the caller's shape.
func modelObject(shape string, m modelEntry) any {
	if shape == shapeAnthropic {
		return anthropicModel{Type: "model", ID: m.id, DisplayName: m.id, CreatedAt: modelCreated.Format(time.RFC3339),
			MaxInputTokens: m.maxInput, MaxTokens: m.maxOutput}
	}
	return openAIModel{ID: m.id, Object: "model", Created: modelCreated.Unix(), OwnedBy: m.ownedBy}
}

// Anthropic's list pagination: limit defaults to 20, from 1 to 1000.
const (
	modelsDefaultLimit = 20
	modelsMaxLimit     = 1000
)

// modelsPage is one page of Anthropic's model list.
type modelsPage struct {
	Data    []any   `json:"data"`
	HasMore bool    `json:"has_more"`
	FirstID *string `json:"first_id"` // null on an empty page
	LastID  *string `json:"last_id"`
}

// pageModels cuts Anthropic's page out of the key's list: the first limit
// models, or the limit models right after after_id or right before
// before_id. hasMore says whether more models lie beyond the page in the
// direction of travel, as Anthropic's API does.
func pageModels(models []modelEntry, q url.Values) (page []modelEntry, hasMore bool, aerr *apiError) {
	limit := modelsDefaultLimit
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > modelsMaxLimit {
			return nil, false, reject(http.StatusBadRequest, "invalid_request",
				fmt.Sprintf("limit: must be an integer from 1 to %d, got %q", modelsMaxLimit, s))
		}
		limit = n
	}
	after, before := q.Get("after_id"), q.Get("before_id")
	if after != "" && before != "" {
		return nil, false, reject(http.StatusBadRequest, "invalid_request", "after_id and before_id cannot both be set")
	}
	index := func(param, id string) (int, *apiError) {
		i := slices.IndexFunc(models, func(m modelEntry) bool { return m.id == id })
		if i < 0 {
			return 0, reject(http.StatusBadRequest, "invalid_request",
				fmt.Sprintf("%s: %q is not a model in this gateway key's list", param, id))
		}
		return i, nil
	}
	switch {
	case after != "":
		i, aerr := index("after_id", after)
		if aerr != nil {
			return nil, false, aerr
		}
		from := i + 1
		to := min(from+limit, len(models))
		return models[from:to], to < len(models), nil
	case before != "":
		i, aerr := index("before_id", before)
		if aerr != nil {
			return nil, false, aerr
		}
		from := max(i-limit, 0)
		return models[from:i], from > 0, nil
	default:
		to := min(limit, len(models))
		return models[:to], to < len(models), nil
	}
}

// serveModels answers GET /v1/models in the caller's shape: Anthropic's
// paginated list when the request carries anthropic-version, else OpenAI's,
// which has no pagination and lists everything.
func (g *Gateway) serveModels(w http.ResponseWriter, r *http.Request, shape string, key *store.Key) {
	models := g.app.listModels(key.AllowedModels)
	if shape != shapeAnthropic {
		data := make([]any, 0, len(models))
		for _, m := range models {
			data = append(data, modelObject(shape, m))
		}
		writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": data})
		return
	}
	page, hasMore, aerr := pageModels(models, r.URL.Query())
	if aerr != nil {
		g.refuse(w, r, shape, key, "", aerr)
		return
	}
	body := modelsPage{Data: make([]any, 0, len(page)), HasMore: hasMore}
	for _, m := range page {
		body.Data = append(body.Data, modelObject(shape, m))
	}
	if len(page) > 0 {
		body.FirstID, body.LastID = &page[0].id, &page[len(page)-1].id
	}
	writeJSON(w, http.StatusOK, body)
}

// serveModel answers GET /v1/models/{id} (the SDKs' models.retrieve) with
// the object the list shows for that model, in the caller's shape, and
// for any other model the key may call (a provider:model reference, a new
// or fine-tuned id matched by its prefix) the object the list would show
// for it. A model the key may not call — unknown, or not allowed — is 404
// in both cases, as the provider's own API answers for a model the caller
// cannot see.
func (g *Gateway) serveModel(w http.ResponseWriter, r *http.Request, shape string, key *store.Key, id string) {
	a := g.app
	for _, m := range a.listModels(key.AllowedModels) {
		if m.id == id {
			writeJSON(w, http.StatusOK, modelObject(shape, m))
			return
		}
	}
	aerr := reject(http.StatusNotFound, "unknown_model", fmt.Sprintf("model %q is not in this gateway's model list", clip(id)))
	if res := a.resolve(id); res != nil {
		if a.allowed(key.AllowedModels, id, res) {
			p, _ := a.prices.Lookup(res.model)
			writeJSON(w, http.StatusOK, modelObject(shape, modelEntry{id: id, ownedBy: res.prov.name, maxInput: p.MaxInputTokens, maxOutput: p.MaxOutputTokens}))
			return
		}
		aerr = reject(http.StatusNotFound, "model_not_allowed", fmt.Sprintf("this gateway key may not use model %q", clip(id)))
	}
	g.refuse(w, r, shape, key, id, aerr)
}
