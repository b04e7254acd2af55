package metis

import (
	"net/http"
	"slices"
	"strings"
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
	for range 4 { // aliases may point at aliases; bound the chain
		target, ok := a.Aliases[ref]
		if !ok {
			break
		}
		ref = target
	}
	if name, model, ok := strings.Cut(ref, ":"); ok && model != "" {
		if p := a.providers[name]; p != nil {
			return &resolved{prov: p, model: model}
		}
		if a.looksLikeProviderRef(name) && !strings.Contains(model, ":") {
			return nil // "nosuchprovider:model"
		}
	}
	typ := a.prices.Provider(ref)
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

// typeByPrefix maps well-known model id prefixes to a provider type, for
// models the catalogue does not know yet.
func typeByPrefix(model string) string {
	switch {
	case strings.HasPrefix(model, "claude-"):
		return shapeAnthropic
	case strings.HasPrefix(model, "gpt-"), strings.HasPrefix(model, "chatgpt-"),
		strings.HasPrefix(model, "o1"), strings.HasPrefix(model, "o3"), strings.HasPrefix(model, "o4"):
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
		out = append(out, modelEntry{id: id, ownedBy: owner})
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

// serveModels answers GET /v1/models in the caller's shape: Anthropic's
// list when the request carries anthropic-version, else OpenAI's.
func (g *Gateway) serveModels(w http.ResponseWriter, r *http.Request, allow []string) {
	models := g.app.listModels(allow)
	var body any
	if r.Header.Get("Anthropic-Version") != "" {
		data := make([]map[string]any, 0, len(models))
		for _, m := range models {
			data = append(data, map[string]any{
				"type": "model", "id": m.id, "display_name": m.id, "created_at": "1970-01-01T00:00:00Z",
			})
		}
		first, last := "", ""
		if len(models) > 0 {
			first, last = models[0].id, models[len(models)-1].id
		}
		body = map[string]any{"data": data, "has_more": false, "first_id": first, "last_id": last}
	} else {
		data := make([]map[string]any, 0, len(models))
		for _, m := range models {
			data = append(data, map[string]any{"id": m.id, "object": "model", "created": 0, "owned_by": m.ownedBy})
		}
		body = map[string]any{"object": "list", "data": data}
	}
	writeJSON(w, http.StatusOK, body)
}
