package store

import "encoding/json"

// Call is the payload of an llm.call_completed event. Its JSON keys are
// exactly contract §5, plus cache_creation_5m_input_tokens,
// cache_creation_1h_input_tokens, cache_savings_usd, service_tier, speed
// and inference_geo.
type Call struct {
	TurnID       string `json:"turn_id"`
	GatewayKeyID string `json:"gateway_key_id"`
	KeyName      string `json:"key_name"`
	User         string `json:"user"`
	Team         string `json:"team"`
	Workspace    string `json:"workspace"`
	// SessionID is the agent's session (X-Claude-Code-Session-Id,
	// X-Metis-Session-Id or opencode's X-Session-Id); JSON null when empty.
	SessionID string `json:"session_id"`
	// InboundShape is "anthropic" or "openai".
	InboundShape   string `json:"inbound_shape"`
	Provider       string `json:"provider"`
	RequestedModel string `json:"requested_model"`
	// Model is the resolved provider model id.
	Model  string `json:"model"`
	Stream bool   `json:"stream"`
	Status int    `json:"status"`
	// ErrorClass is "CANCELLED", "RATE_LIMITED", "UPSTREAM_ERROR", …; JSON
	// null when empty.
	ErrorClass string `json:"error_class"`
	Attempts   int    `json:"attempts"`
	// InputTokens are the uncached input tokens.
	InputTokens                int64 `json:"input_tokens"`
	CacheReadInputTokens       int64 `json:"cache_read_input_tokens"`
	CacheCreationInputTokens   int64 `json:"cache_creation_input_tokens"`
	CacheCreation5mInputTokens int64 `json:"cache_creation_5m_input_tokens"`
	CacheCreation1hInputTokens int64 `json:"cache_creation_1h_input_tokens"`
	OutputTokens               int64 `json:"output_tokens"`
	ReasoningTokens            int64 `json:"reasoning_tokens"`
	// WebSearchRequests are the provider's server-side web searches
	// (Anthropic's usage.server_tool_use), priced per search; omitted when
	// none ran.
	WebSearchRequests int64 `json:"web_search_requests,omitempty"`
	// CostUSD is nil when the model has no price (never 0 for a priced call).
	CostUSD *float64 `json:"cost_usd"`
	Priced  bool     `json:"priced"`
	// UsageSource is "provider" or "estimated".
	UsageSource string `json:"usage_source"`
	LatencyMS   int64  `json:"latency_ms"`
	// TTFTMS is the time to first token; nil for non-streaming calls.
	TTFTMS            *int64  `json:"ttft_ms"`
	UpstreamRequestID string  `json:"upstream_request_id"`
	CacheSavingsUSD   float64 `json:"cache_savings_usd"`
	ServiceTier       string  `json:"service_tier,omitempty"`
	// Speed and InferenceGeo are what the provider reported of Anthropic's
	// price multipliers (speed "fast", inference_geo "us"), which CostUSD
	// includes; omitted when not reported.
	Speed        string `json:"speed,omitempty"`
	InferenceGeo string `json:"inference_geo,omitempty"`
	// PricedModel is the provider-reported model whose price gave CostUSD,
	// when it is not Model's; omitted otherwise.
	PricedModel string `json:"priced_model,omitempty"`
	// AnsweredModel is the model the provider's answer named when it is
	// neither Model nor a dated version of it (an Anthropic-compatible
	// vendor running its own model for a claude- id); omitted otherwise.
	AnsweredModel string `json:"answered_model,omitempty"`
}

// callFields has Call's fields without its methods, so MarshalJSON can
// embed it without recursing.
type callFields Call

// MarshalJSON encodes c with session_id and error_class as JSON null when
// empty; the shallower fields below shadow the embedded ones.
func (c Call) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		callFields
		SessionID  *string `json:"session_id"`
		ErrorClass *string `json:"error_class"`
	}{callFields(c), nullable(c.SessionID), nullable(c.ErrorClass)})
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// isError reports whether the call counts as an error in rollups.
func (c *Call) isError() bool { return c.Status >= 400 || c.ErrorClass != "" }

// pricedCost is the cost that counts towards totals: CostUSD when the call is
// priced, else 0.
func (c *Call) pricedCost() float64 {
	if c.Priced && c.CostUSD != nil {
		return *c.CostUSD
	}
	return 0
}
