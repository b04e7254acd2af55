// Package pricing holds Metis's price catalogue and computes the exact cost
// of a call from its provider-reported usage.
//
// The catalogue is in LiteLLM's model_prices_and_context_window.json format
// (USD per token, one object per model id), so an operator can drop in
// LiteLLM's own file or a small override file with the same field names.
// The embedded default table is catalogue.json; its provenance is recorded
// in the file under "_metis_source".
package pricing

import (
	"bytes"
	"cmp"
	_ "embed"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/metisgateway/metis/ir"
)

//go:embed catalogue.json
var catalogueJSON []byte

// LiteLLM field names used by the cost rules.
const (
	fieldInput     = "input_cost_per_token"
	fieldOutput    = "output_cost_per_token"
	fieldCacheRead = "cache_read_input_token_cost"
	// fieldCacheHit is the cache-read price of LiteLLM's DeepSeek entries.
	fieldCacheHit  = "input_cost_per_token_cache_hit"
	fieldCache5m   = "cache_creation_input_token_cost"
	fieldCache1h   = "cache_creation_input_token_cost_above_1hr"
	fieldReasoning = "output_cost_per_reasoning_token"
	fieldSearch    = "search_context_cost_per_query"
	fieldProvider  = "litellm_provider"
	fieldMode      = "mode"
	fieldSpecific  = "provider_specific_entry"
	fieldMaxInput  = "max_input_tokens"
	fieldMaxOutput = "max_output_tokens"
	fieldMaxTokens = "max_tokens"

	// Long-context tiers: input_cost_per_token_above_<N>k_tokens (or
	// _above_<N>_tokens) prices the whole request when its total input
	// exceeds N×1000 (N) tokens; any other price may carry the same suffix.
	longPrefix = "_above_"
	longSuffix = "_tokens"
)

// Fallback multipliers of the input price when a model has no cache price:
// conservative (never cheaper than the provider's usual ratios), never $0.
const (
	fallbackCache5m   = 1.25
	fallbackCache1h   = 2.0
	fallbackCacheRead = 1.0
)

// entry is one model's catalogue fields as loaded, kept field by field so
// that Merge can override single fields.
type entry struct {
	provider, mode   string
	maxIn, maxOut    int
	maxTokens        int
	costs            map[string]float64 // every numeric *cost* field by LiteLLM name
	specific         map[string]float64 // provider_specific_entry multipliers
	search           float64            // USD per web search request
	hasSearch        bool
	hasMaxIn, hasOut bool
	hasMaxTokens     bool
}

// Price is one model's prices. The exported rates are USD per token at the
// standard tier below any long-context threshold, with the cache fallbacks
// applied; Cost applies the tier, long-context and multiplier rules.
type Price struct {
	// Provider is the litellm_provider ("anthropic", "openai", …).
	Provider string
	// Mode is the LiteLLM mode ("chat", "responses", "embedding", …).
	Mode string
	// MaxInputTokens and MaxOutputTokens are the context and output limits
	// (0 when unknown).
	MaxInputTokens, MaxOutputTokens int
	// Input, Output, CacheRead, CacheWrite5m and CacheWrite1h are USD per
	// token.
	Input, Output, CacheRead, CacheWrite5m, CacheWrite1h float64
	// WebSearch is USD per server-side web search request.
	WebSearch float64

	e *entry
	t *rateTable // nil when unpriced
}

// ListsCacheWrites reports whether the catalogue gives the model a cache
// write price of its own, rather than the 1.25× fallback: a provider that
// caches on its own (OpenAI) bills writes only for such models.
func (p Price) ListsCacheWrites() bool {
	if p.e == nil {
		return false
	}
	_, ok := p.e.costs[fieldCache5m]
	return ok
}

// Catalogue maps model ids to prices. It is immutable once built and safe
// for concurrent reads.
type Catalogue struct {
	entries    map[string]*entry
	prices     map[string]Price
	byProvider map[string][]string
}

var defaultCatalogue = sync.OnceValue(func() *Catalogue {
	c, err := Load(bytes.NewReader(catalogueJSON))
	if err != nil {
		panic(fmt.Sprintf("pricing: embedded catalogue.json: %v", err))
	}
	return c
})

// Default returns the embedded catalogue, parsed once.
func Default() *Catalogue { return defaultCatalogue() }

// LoadFile reads a catalogue file in LiteLLM format.
func LoadFile(path string) (*Catalogue, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("pricing: opening catalogue: %w", err)
	}
	defer f.Close()
	c, err := Load(f)
	if err != nil {
		return nil, fmt.Errorf("%w (file %s)", err, path)
	}
	return c, nil
}

// Load reads a catalogue in LiteLLM model_prices_and_context_window.json
// format. The "sample_spec" key and keys starting with "_" are skipped;
// fields it does not use are ignored. A cost field holding something other
// than a non-negative number (or null, which means absent) is an error.
func Load(r io.Reader) (*Catalogue, error) {
	var top map[string]json.RawMessage
	if err := json.NewDecoder(r).Decode(&top); err != nil {
		return nil, fmt.Errorf("pricing: decoding catalogue: %w", err)
	}
	entries := make(map[string]*entry, len(top))
	for model, raw := range top {
		if model == "sample_spec" || strings.HasPrefix(model, "_") {
			continue
		}
		e, err := parseEntry(raw)
		if err != nil {
			return nil, fmt.Errorf("pricing: model %q: %w", model, err)
		}
		entries[model] = e
	}
	return build(entries), nil
}

func parseEntry(raw json.RawMessage) (*entry, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil || fields == nil {
		return nil, fmt.Errorf("entry is not a JSON object")
	}
	e := &entry{costs: map[string]float64{}}
	for k, v := range fields {
		switch {
		case k == fieldProvider:
			_ = json.Unmarshal(v, &e.provider)
		case k == fieldMode:
			_ = json.Unmarshal(v, &e.mode)
		case k == fieldMaxInput:
			e.maxIn, e.hasMaxIn = jsonInt(v)
		case k == fieldMaxOutput:
			e.maxOut, e.hasOut = jsonInt(v)
		case k == fieldMaxTokens:
			e.maxTokens, e.hasMaxTokens = jsonInt(v)
		case k == fieldSpecific:
			var m map[string]json.RawMessage
			if json.Unmarshal(v, &m) == nil {
				for name, mv := range m {
					if f, ok, err := jsonCost(mv); err == nil && ok {
						if e.specific == nil {
							e.specific = map[string]float64{}
						}
						e.specific[strings.ToLower(name)] = f
					}
				}
			}
		case k == fieldSearch:
			f, ok, err := searchCost(v)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			e.search, e.hasSearch = f, ok
		case strings.Contains(k, "cost"):
			if len(v) > 0 && (v[0] == '{' || v[0] == '[') {
				continue // structured cost fields Metis does not use
			}
			f, ok, err := jsonCost(v)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			if ok {
				e.costs[k] = f
			}
		}
	}
	return e, nil
}

// jsonCost parses a non-negative number (or numeric string); null is
// absent.
func jsonCost(v json.RawMessage) (float64, bool, error) {
	s := strings.TrimSpace(string(v))
	if s == "null" || s == "" {
		return 0, false, nil
	}
	if len(s) >= 2 && s[0] == '"' {
		if err := json.Unmarshal(v, &s); err != nil {
			return 0, false, fmt.Errorf("not a number: %s", v)
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f < 0 || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, false, fmt.Errorf("not a non-negative number: %s", v)
	}
	return f, true, nil
}

// searchCost reads search_context_cost_per_query: a number or LiteLLM's
// {"search_context_size_low|medium|high": USD} (medium preferred, else the
// highest given).
func searchCost(v json.RawMessage) (float64, bool, error) {
	if len(v) > 0 && v[0] == '{' {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(v, &m); err != nil {
			return 0, false, fmt.Errorf("not an object: %w", err)
		}
		if mv, ok := m["search_context_size_medium"]; ok {
			return jsonCost(mv)
		}
		best, found := 0.0, false
		for _, mv := range m {
			f, ok, err := jsonCost(mv)
			if err != nil {
				return 0, false, err
			}
			if ok && (!found || f > best) {
				best, found = f, true
			}
		}
		return best, found, nil
	}
	return jsonCost(v)
}

func jsonInt(v json.RawMessage) (int, bool) {
	n, err := strconv.ParseFloat(strings.TrimSpace(string(v)), 64)
	if err != nil || n < 0 || n > 1<<40 {
		return 0, false
	}
	return int(n), true
}

// build compiles entries into a catalogue.
func build(entries map[string]*entry) *Catalogue {
	c := &Catalogue{
		entries:    entries,
		prices:     make(map[string]Price, len(entries)),
		byProvider: map[string][]string{},
	}
	for model, e := range entries {
		p := Price{Provider: e.provider, Mode: e.mode, MaxInputTokens: e.maxIn, e: e, t: compile(e)}
		p.MaxOutputTokens = e.maxOut
		if !e.hasOut && e.hasMaxTokens {
			p.MaxOutputTokens = e.maxTokens
		}
		if r, ok := p.rates(ir.Usage{}); ok {
			p.Input, p.Output, p.CacheRead = r.in, r.out, r.read
			p.CacheWrite5m, p.CacheWrite1h = r.w5m, r.w1h
		}
		p.WebSearch = e.search
		c.prices[model] = p
		if e.provider != "" && e.mode == "chat" {
			c.byProvider[e.provider] = append(c.byProvider[e.provider], model)
		}
	}
	for _, ids := range c.byProvider {
		sort.Strings(ids)
	}
	return c
}

// Merge returns a new catalogue with other's entries merged over c field by
// field: an override file that sets one price of a known model keeps the
// model's other prices. Either side may be nil.
func (c *Catalogue) Merge(other *Catalogue) *Catalogue {
	out := map[string]*entry{}
	if c != nil {
		for k, e := range c.entries {
			out[k] = e
		}
	}
	if other != nil {
		for k, o := range other.entries {
			if base, ok := out[k]; ok {
				out[k] = mergeEntry(base, o)
			} else {
				out[k] = o
			}
		}
	}
	return build(out)
}

func mergeEntry(base, o *entry) *entry {
	m := *base
	if o.provider != "" {
		m.provider = o.provider
	}
	if o.mode != "" {
		m.mode = o.mode
	}
	if o.hasMaxIn {
		m.maxIn, m.hasMaxIn = o.maxIn, true
	}
	if o.hasOut {
		m.maxOut, m.hasOut = o.maxOut, true
	}
	if o.hasMaxTokens {
		m.maxTokens, m.hasMaxTokens = o.maxTokens, true
	}
	if o.hasSearch {
		m.search, m.hasSearch = o.search, true
	}
	m.costs = make(map[string]float64, len(base.costs)+len(o.costs))
	for k, v := range base.costs {
		m.costs[k] = v
	}
	for k, v := range o.costs {
		m.costs[k] = v
	}
	if len(o.specific) > 0 {
		m.specific = make(map[string]float64, len(base.specific)+len(o.specific))
		for k, v := range base.specific {
			m.specific[k] = v
		}
		for k, v := range o.specific {
			m.specific[k] = v
		}
	}
	return &m
}

// Listed reports whether model is an id of the catalogue exactly as
// written, not one Lookup reaches by normalising it.
func (c *Catalogue) Listed(model string) bool {
	if c == nil {
		return false
	}
	_, ok := c.prices[model]
	return ok
}

// ListedProvider is the provider of the model the catalogue lists under
// exactly this id, or "": routing takes only exact ids, where pricing
// forgives case, prefixes and dates (Lookup).
func (c *Catalogue) ListedProvider(model string) string {
	if c == nil {
		return ""
	}
	return c.prices[model].Provider
}

// Lookup returns the price of model: the exact id first, then normalised
// forms: a "provider/" or "provider:" prefix stripped, a "[1m]" suffix, a
// "-latest" suffix and a -YYYYMMDD or -YYYY-MM-DD date suffix removed
// (ids are also tried in lower case).
func (c *Catalogue) Lookup(model string) (Price, bool) {
	if c == nil {
		return Price{}, false
	}
	if p, ok := c.prices[model]; ok {
		return p, true
	}
	m := strings.ToLower(strings.TrimSpace(model))
	if p, ok := c.prices[m]; ok {
		return p, true
	}
	if i := strings.LastIndexByte(m, '/'); i >= 0 {
		m = m[i+1:]
		if p, ok := c.prices[m]; ok {
			return p, true
		}
	}
	if i := strings.IndexByte(m, ':'); i > 0 && isProviderName(m[:i]) {
		m = m[i+1:]
		if p, ok := c.prices[m]; ok {
			return p, true
		}
	}
	for _, strip := range []func(string) (string, bool){strip1M, stripLatest, stripDate} {
		var ok bool
		if m, ok = strip(m); ok {
			if p, found := c.prices[m]; found {
				return p, true
			}
		}
	}
	return Price{}, false
}

// isProviderName reports whether s looks like a provider prefix ("openai",
// "anthropic", "vertex_ai", "azure-eu").
func isProviderName(s string) bool {
	for _, r := range s {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '_' && r != '-' && r != '.' {
			return false
		}
	}
	return s != ""
}

func strip1M(m string) (string, bool) {
	if strings.HasSuffix(m, "[1m]") {
		return m[:len(m)-len("[1m]")], true
	}
	return m, false
}

func stripLatest(m string) (string, bool) {
	if strings.HasSuffix(m, "-latest") {
		return m[:len(m)-len("-latest")], true
	}
	return m, false
}

// stripDate removes a -YYYYMMDD or -YYYY-MM-DD suffix.
func stripDate(m string) (string, bool) {
	for _, n := range []int{8, 10} {
		if i := len(m) - n - 1; i > 0 && m[i] == '-' && IsDate(m[i+1:]) {
			return m[:i], true
		}
	}
	return m, false
}

// IsDate reports whether s is a date as model ids spell one: YYYYMMDD or
// YYYY-MM-DD.
func IsDate(s string) bool {
	digits := func(s string) bool {
		for i := 0; i < len(s); i++ {
			if s[i] < '0' || s[i] > '9' {
				return false
			}
		}
		return true
	}
	switch len(s) {
	case 8:
		return digits(s)
	case 10:
		return s[4] == '-' && s[7] == '-' && digits(s[:4]) && digits(s[5:7]) && digits(s[8:])
	}
	return false
}

// rateSet is the per-token prices that apply to one call.
type rateSet struct {
	in, out, read, w5m, w1h float64
	reasoning               float64
	hasReasoning            bool
	mult                    float64 // inference_geo × speed multiplier on every token price
}

// Service-tier columns of the precomputed rate table.
const (
	tierStandard = iota
	tierFlex
	tierPriority
	tierBatch
	numTiers
)

var serviceSuffix = [numTiers]string{tierStandard: "", tierFlex: "_flex", tierPriority: "_priority", tierBatch: "_batches"}

// longTier is one long-context price column: it applies when a request's
// total input exceeds above tokens.
type longTier struct {
	above int64
	r     [numTiers]rateSet
}

// rateTable holds an entry's resolved rates for every long-context and
// service-tier combination, computed once when the catalogue is built.
type rateTable struct {
	base [numTiers]rateSet
	long []longTier // ascending by threshold
}

// compile resolves e's rates, or returns nil when e lacks an input or
// output price (unpriced).
func compile(e *entry) *rateTable {
	if _, ok := e.costs[fieldInput]; !ok {
		return nil
	}
	if _, ok := e.costs[fieldOutput]; !ok {
		return nil
	}
	t := &rateTable{}
	for ti := range t.base {
		t.base[ti] = resolve(e.costs, "", serviceSuffix[ti])
	}
	type column struct {
		above  int64
		suffix string
	}
	var cols []column
	for field := range e.costs {
		if above, ok := longThreshold(field); ok {
			cols = append(cols, column{above, field[len(fieldInput):]})
		}
	}
	// Ascending thresholds; of two spellings of one threshold
	// (_above_200k_tokens and _above_200000_tokens) the first by name wins.
	slices.SortFunc(cols, func(a, b column) int {
		return cmp.Or(cmp.Compare(a.above, b.above), strings.Compare(a.suffix, b.suffix))
	})
	for i, c := range cols {
		if i > 0 && c.above == cols[i-1].above {
			continue
		}
		lt := longTier{above: c.above}
		for ti := range lt.r {
			lt.r[ti] = resolve(e.costs, c.suffix, serviceSuffix[ti])
		}
		t.long = append(t.long, lt)
	}
	return t
}

// longThreshold parses the long-context input field
// input_cost_per_token_above_<N>k_tokens (N×1000 tokens) or
// input_cost_per_token_above_<N>_tokens (N tokens).
func longThreshold(field string) (int64, bool) {
	rest, ok := strings.CutPrefix(field, fieldInput+longPrefix)
	if !ok {
		return 0, false
	}
	if rest, ok = strings.CutSuffix(rest, longSuffix); !ok {
		return 0, false
	}
	mult := int64(1)
	if k, ok := strings.CutSuffix(rest, "k"); ok {
		rest, mult = k, 1000
	}
	if rest == "" || len(rest) > 9 {
		return 0, false
	}
	for i := 0; i < len(rest); i++ {
		if rest[i] < '0' || rest[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(rest, 10, 64)
	if err != nil || n <= 0 {
		return 0, false
	}
	return n * mult, true
}

// resolve picks the prices of one long-context/tier combination. The input
// column decides: long+tier, long, tier, then standard, the first the model
// has; a model with long and tier columns but none for the pair pays the
// long-context prices at the tier's input ratio to standard. Every other
// price uses the same column; when the model lacks it there, the standard
// price is scaled by the column's input ratio, and a cache price missing
// altogether falls back to 1.25× (5-minute write), 2× (1-hour write) or 1×
// (read) the input price.
func resolve(costs map[string]float64, long, tier string) rateSet {
	baseIn := costs[fieldInput]
	if _, both := costs[fieldInput+long+tier]; long != "" && tier != "" && !both {
		_, hasLong := costs[fieldInput+long]
		if tierIn, ok := costs[fieldInput+tier]; ok && hasLong && baseIn > 0 {
			// No column for the pair: the long-context prices at the
			// tier's ratio to standard (review 30R: gpt-5.4's flex and
			// batch lost their discount over 272K, priced at the
			// standard long-context rate).
			r := resolve(costs, long, "")
			f := tierIn / baseIn
			r.in, r.out, r.read, r.w5m, r.w1h, r.reasoning = r.in*f, r.out*f, r.read*f, r.w5m*f, r.w1h*f, r.reasoning*f
			return r
		}
	}
	col := ""
	for _, cand := range []string{long + tier, long, tier} {
		if cand == "" {
			continue
		}
		if _, ok := costs[fieldInput+cand]; ok {
			col = cand
			break
		}
	}
	r := rateSet{in: costs[fieldInput+col], mult: 1}
	ratio := 1.0
	if baseIn > 0 {
		ratio = r.in / baseIn
	}
	get := func(field string) (float64, bool) {
		if v, ok := costs[field+col]; ok {
			return v, true
		}
		if v, ok := costs[field]; ok {
			return v * ratio, true
		}
		return 0, false
	}
	r.out, _ = get(fieldOutput) // present: compile checked it
	var ok bool
	if r.read, ok = get(fieldCacheRead); !ok {
		if r.read, ok = get(fieldCacheHit); !ok {
			r.read = fallbackCacheRead * r.in
		}
	}
	if r.w5m, ok = get(fieldCache5m); !ok {
		r.w5m = fallbackCache5m * r.in
	}
	if r.w1h, ok = get(fieldCache1h); !ok {
		r.w1h = fallbackCache1h * r.in
	}
	r.reasoning, r.hasReasoning = get(fieldReasoning)
	return r
}

// rates returns the prices that apply to usage u: long context (the
// model's *_above_<N>k_tokens column with the highest N×1000 the total
// input exceeds, e.g. *_above_272k_tokens when total input > 272,000, else
// *_above_200k_tokens when > 200,000), the service tier's column (flex,
// priority or fast, batch; others are standard, ultrafast times the
// model's provider_specific_entry "ultrafast"), and the inference_geo and
// speed multipliers from provider_specific_entry. It fails when the model
// has no input or output price.
func (p Price) rates(u ir.Usage) (rateSet, bool) {
	if p.t == nil {
		return rateSet{}, false
	}
	col := &p.t.base
	total := u.TotalInputTokens()
	for i := len(p.t.long) - 1; i >= 0; i-- {
		if total > p.t.long[i].above {
			col = &p.t.long[i].r
			break
		}
	}
	ti := tierStandard
	switch strings.ToLower(u.ServiceTier) {
	case "flex":
		ti = tierFlex
	case "priority", "fast": // OpenAI renamed priority processing "fast" (2026-07-30)
		ti = tierPriority
	case "batch", "batches":
		ti = tierBatch
	}
	r := col[ti]
	if strings.EqualFold(u.ServiceTier, "ultrafast") {
		// Priced as a multiple of the standard rate, cache and long
		// context included (×3 or ×6 by model): the model's
		// provider_specific_entry "ultrafast".
		if m, ok := p.e.specific["ultrafast"]; ok {
			r.mult *= m
		}
	}
	if geo := u.InferenceGeo; geo != "" && !strings.EqualFold(geo, "global") {
		if m, ok := p.e.specific[strings.ToLower(geo)]; ok {
			r.mult *= m
		}
	}
	if strings.EqualFold(u.Speed, "fast") {
		if m, ok := p.e.specific["fast"]; ok {
			r.mult *= m
		}
	}
	return r, true
}

// Cost returns the USD cost of usage u at this price (see Catalogue.Cost),
// and false when the price lacks an input or output rate.
func (p Price) Cost(u ir.Usage) (float64, bool) {
	if u.Compaction != nil {
		answer, compaction := u.Passes()
		// Each pass at its own tier: a compaction pass over 150K tokens
		// does not make the answer's pass a long-context one.
		a, ok := p.Cost(answer)
		c, _ := p.Cost(*compaction)
		return roundUSD(a + c), ok
	}
	r, ok := p.rates(u)
	if !ok {
		return 0, false
	}
	in, read := nonNeg(u.InputTokens), nonNeg(u.CacheReadInputTokens)
	w1h := nonNeg(u.CacheCreation1hInputTokens)
	w5m := nonNeg(u.Cache5m())
	// Writes reported in the total but not in the TTL split are billed at
	// the 5-minute rate.
	if rest := nonNeg(u.CacheCreationInputTokens) - w5m - w1h; rest > 0 {
		w5m += rest
	}
	out := nonNeg(u.OutputTokens)
	outCost := float64(out) * r.out
	if r.hasReasoning {
		reason := min(nonNeg(u.ReasoningTokens), out)
		outCost = float64(out-reason)*r.out + float64(reason)*r.reasoning
	}
	usd := (float64(in)*r.in+outCost+float64(w5m)*r.w5m+float64(w1h)*r.w1h+float64(read)*r.read)*r.mult +
		float64(nonNeg(u.WebSearchRequests))*p.e.search
	return roundUSD(usd), true
}

func nonNeg(n int64) int64 { return max(n, 0) }

// usdQuantum is the resolution of the dollars Cost and CacheSavings return:
// 1e-12 dollars.
const usdQuantum = 1e12

// roundUSD rounds a dollar amount to 12 decimals, removing binary
// floating-point noise (0.00014729999999999998 → 0.0001473) so that a cost
// compares equal to, and JSON-encodes as, the figure worked out by hand.
//
// Twelve decimals lose nothing: prices are quoted in dollars per million
// tokens with at most four decimals ($0.0025/MTok), i.e. whole multiples
// of 1e-10 dollars per token; the rates the catalogue derives (a column's
// input ratio applied to a standard price, batch halves) and the
// inference_geo (×1.1) and speed (×2, ×6) multipliers add at most two
// decimals, so every per-token rate is a whole multiple of 1e-12 dollars
// (TestRatesOn1e12Grid checks every rate of the embedded catalogue), and
// so is a whole number of tokens times it and the sum of such terms. The
// exact cost thus has at most 12 decimals, and rounding to 1e-12 recovers
// it from the float sum, whose error is a few parts in 1e16 of the cost:
// under half a quantum for any cost below roughly $1,000 (above that the
// result may be one quantum, 1e-12 dollars, off). A price off the grid in
// an operator's file moves a cost by at most half a quantum.
func roundUSD(usd float64) float64 {
	return math.Round(usd*usdQuantum) / usdQuantum
}

// Cost returns the USD cost of a call to model with usage u (counts
// normalised to the Anthropic convention, see ir.Usage):
//
//	in·P_in + cw5m·P_cw5m + cw1h·P_cw1h + cr·P_cr + out·P_out + web_search·P_search
//
// Writes without a 5m/1h split are 5-minute writes. When the model has
// long-context prices (*_above_<N>k_tokens: *_above_100k_tokens,
// *_above_200k_tokens, *_above_272k_tokens…) and the total input in+cw+cr
// exceeds N×1000, the whole request is priced in the column of the highest
// such N; service_tier flex, priority (or fast) and batch use the *_flex,
// *_priority and *_batches columns where the model has them (standard
// otherwise); ultrafast is the standard price times the model's
// provider_specific_entry "ultrafast" multiplier, where it has one. A
// price missing from the chosen column is the standard price scaled by
// the column's input ratio; a cache price missing altogether is
// 1.25× (5m write), 2× (1h write) or 1× (read) the input price, never $0.
// A usage with compaction passes (ir.Usage.Compaction) is priced pass by
// pass, each at its own tier, and the dollars added.
// The inference_geo (not "global") and speed "fast" multipliers of
// provider_specific_entry apply to every token price, cache writes and
// reads included, as Anthropic bills them (LiteLLM applies them to input
// and output only); not to web searches. Reasoning tokens
// are part of the output and use output_cost_per_reasoning_token only when
// the model has it. A model not in the catalogue, or without input and
// output prices, returns (0, false). The result is rounded to 1e-12 dollars
// (see roundUSD).
func (c *Catalogue) Cost(model string, u ir.Usage) (usd float64, priced bool) {
	p, ok := c.Lookup(model)
	if !ok {
		return 0, false
	}
	return p.Cost(u)
}

// CacheSavings returns what the cache reads saved: cache_read × (input
// price − cache read price) at the tier the call used, rounded to 1e-12
// dollars; 0 for an unknown model.
func (c *Catalogue) CacheSavings(model string, u ir.Usage) float64 {
	p, ok := c.Lookup(model)
	if !ok {
		return 0
	}
	return p.cacheSavings(u)
}

// cacheSavings is CacheSavings for a known price, pass by pass (Cost).
func (p Price) cacheSavings(u ir.Usage) float64 {
	if u.Compaction != nil {
		answer, compaction := u.Passes()
		return roundUSD(p.cacheSavings(answer) + p.cacheSavings(*compaction))
	}
	r, ok := p.rates(u)
	if !ok {
		return 0
	}
	return roundUSD(max(float64(nonNeg(u.CacheReadInputTokens))*(r.in-r.read)*r.mult, 0))
}

// MaxOutputTokens returns the model's max_output_tokens (else max_tokens),
// 0 if unknown.
func (c *Catalogue) MaxOutputTokens(model string) int {
	p, _ := c.Lookup(model)
	return p.MaxOutputTokens
}

// Models returns the sorted ids of the provider's chat-mode models (for
// /v1/models). The slice is a copy.
func (c *Catalogue) Models(provider string) []string {
	if c == nil {
		return nil
	}
	return append([]string(nil), c.byProvider[provider]...)
}
