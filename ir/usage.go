// Package ir holds Metis's provider-neutral request, response, stream and
// usage types. Adapters translate each provider's wire format to and from
// these types; the ledger prices calls from Usage.
package ir

// Usage is the token usage of one upstream call in provider-native counts,
// normalised to the Anthropic convention: InputTokens excludes cache reads
// and cache writes, OutputTokens includes reasoning tokens.
//
// For an OpenAI upstream: InputTokens = prompt_tokens − cached_tokens −
// cache_write_tokens, CacheReadInputTokens = cached_tokens,
// CacheCreationInputTokens = cache_write_tokens, OutputTokens =
// completion_tokens, ReasoningTokens = completion_tokens_details.reasoning_tokens.
type Usage struct {
	InputTokens              int64 `json:"input_tokens"`
	CacheReadInputTokens     int64 `json:"cache_read_input_tokens"`
	CacheCreationInputTokens int64 `json:"cache_creation_input_tokens"`
	// CacheCreation5mInputTokens and CacheCreation1hInputTokens split the
	// cache writes by TTL when the provider reports it (Anthropic
	// usage.cache_creation). When neither is set, all writes are 5-minute.
	CacheCreation5mInputTokens int64 `json:"cache_creation_5m_input_tokens,omitempty"`
	CacheCreation1hInputTokens int64 `json:"cache_creation_1h_input_tokens,omitempty"`
	OutputTokens               int64 `json:"output_tokens"`
	ReasoningTokens            int64 `json:"reasoning_tokens"`
	// ServiceTier is the tier the provider says it used (standard, priority,
	// batch, default, flex, scale…); it selects the price column.
	ServiceTier string `json:"service_tier,omitempty"`
	// InferenceGeo and Speed are Anthropic price multipliers' inputs.
	InferenceGeo      string `json:"inference_geo,omitempty"`
	Speed             string `json:"speed,omitempty"`
	WebSearchRequests int64  `json:"web_search_requests,omitempty"`
	// Estimated is true when any count was estimated by the gateway rather
	// than reported by the provider (a cancelled or interrupted stream).
	Estimated bool `json:"-"`
	// Compaction holds the counts of Anthropic's server-side compaction
	// passes when there were any: they are in the counts above too, and
	// pricing prices them as a pass of their own (its own long-context
	// tier). nil otherwise.
	Compaction *Usage `json:"-"`
}

// AddPass adds the counts of another billed pass of the same call (a
// compaction pass) to u, and keeps them apart in u.Compaction for pricing.
func (u *Usage) AddPass(o Usage) {
	u.AddCounts(o)
	c := o
	if u.Compaction != nil {
		c = *u.Compaction
		c.AddCounts(o)
	}
	c.Compaction = nil
	u.Compaction = &c
}

// Passes splits u into the passes pricing prices apart: the answer's own
// counts (u without its compaction passes) and, when there were any, the
// compaction passes' (with u's service tier, speed and inference_geo).
func (u Usage) Passes() (answer Usage, compaction *Usage) {
	if u.Compaction == nil {
		return u, nil
	}
	c := *u.Compaction
	answer = u
	answer.Compaction = nil
	answer.InputTokens -= c.InputTokens
	answer.CacheReadInputTokens -= c.CacheReadInputTokens
	answer.CacheCreationInputTokens -= c.CacheCreationInputTokens
	answer.CacheCreation5mInputTokens -= c.CacheCreation5mInputTokens
	answer.CacheCreation1hInputTokens -= c.CacheCreation1hInputTokens
	answer.OutputTokens -= c.OutputTokens
	answer.ReasoningTokens -= c.ReasoningTokens
	c.ServiceTier, c.Speed, c.InferenceGeo = u.ServiceTier, u.Speed, u.InferenceGeo
	c.WebSearchRequests = 0
	return answer, &c
}

// TotalInputTokens is every input token the provider processed: uncached,
// cache reads and cache writes.
func (u Usage) TotalInputTokens() int64 {
	return u.InputTokens + u.CacheReadInputTokens + u.CacheCreationInputTokens
}

// SettleCacheSplit makes the TTL split of the cache writes add up to their
// total by the rule pricing bills with: writes the split does not cover
// (all of them when a provider gives no split: OpenAI never does, Anthropic
// not always) are 5-minute writes, Anthropic's default TTL; a split larger
// than the total raises the total. The adapters settle what they read, so
// the recorded split adds up.
func (u *Usage) SettleCacheSplit() {
	if split := u.CacheCreation5mInputTokens + u.CacheCreation1hInputTokens; split > u.CacheCreationInputTokens {
		u.CacheCreationInputTokens = split
	} else {
		u.CacheCreation5mInputTokens += u.CacheCreationInputTokens - split
	}
}

// AddCounts adds o's token counts (input, cache reads and writes with
// their TTL split, output, reasoning, web searches) to u: a second billed
// pass of the same call, such as Anthropic's server-side compaction.
func (u *Usage) AddCounts(o Usage) {
	u.InputTokens += o.InputTokens
	u.CacheReadInputTokens += o.CacheReadInputTokens
	u.CacheCreationInputTokens += o.CacheCreationInputTokens
	u.CacheCreation5mInputTokens += o.CacheCreation5mInputTokens
	u.CacheCreation1hInputTokens += o.CacheCreation1hInputTokens
	u.OutputTokens += o.OutputTokens
	u.ReasoningTokens += o.ReasoningTokens
	u.WebSearchRequests += o.WebSearchRequests
}

// Cache5m is the number of cache-write tokens billed at the 5-minute rate
// (for a usage not yet settled, the whole total when there is no split).
func (u Usage) Cache5m() int64 {
	if u.CacheCreation5mInputTokens == 0 && u.CacheCreation1hInputTokens == 0 {
		return u.CacheCreationInputTokens
	}
	return u.CacheCreation5mInputTokens
}

// EstimateTokens is the gateway's token estimate for n bytes of text a
// provider did not count: a quarter, rounded up. Every estimate of output
// (and the usage a translated answer tells its client) uses it, so what a
// client is told is what the trace records.
func EstimateTokens(n int64) int64 { return (max(n, 0) + 3) / 4 }
