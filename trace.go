package metis

import (
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/metisgateway/metis/ir"
	"github.com/metisgateway/metis/pricing"
	"github.com/metisgateway/metis/store"
)

func zapTurn(id string) zap.Field { return zap.String("turn_id", id) }
func zapErr(err error) zap.Field  { return zap.Error(err) }

// routeDecided is the payload of route.decided.
type routeDecided struct {
	TurnID         string `json:"turn_id"`
	GatewayKeyID   string `json:"gateway_key_id"`
	KeyName        string `json:"key_name"`
	User           string `json:"user"`
	Team           string `json:"team"`
	Workspace      string `json:"workspace"`
	SessionID      string `json:"session_id,omitempty"`
	InboundShape   string `json:"inbound_shape"`
	Endpoint       string `json:"endpoint"`
	RequestedModel string `json:"requested_model"`
	Provider       string `json:"provider"`
	Model          string `json:"model"`
	RouteSlot      string `json:"route_slot"`
	Stream         bool   `json:"stream"`
	CrossShape     bool   `json:"cross_shape"`
}

// turnCompleted is the payload of turn.completed.
type turnCompleted struct {
	TurnID       string   `json:"turn_id"`
	GatewayKeyID string   `json:"gateway_key_id"`
	Status       int      `json:"status"`
	ErrorClass   *string  `json:"error_class"`
	CostUSD      *float64 `json:"cost_usd"`
	Priced       bool     `json:"priced"`
	LatencyMS    int64    `json:"latency_ms"`
	Calls        int      `json:"calls"`
}

// tokensCounted is the payload recorded for count_tokens calls, which cost
// nothing and so are not llm.call_completed events.
type tokensCounted struct {
	TurnID       string `json:"turn_id"`
	GatewayKeyID string `json:"gateway_key_id"`
	KeyName      string `json:"key_name"`
	User         string `json:"user"`
	Team         string `json:"team"`
	Workspace    string `json:"workspace"`
	// SessionID is null without a session, as in llm.call_completed.
	SessionID    *string `json:"session_id"`
	InboundShape string  `json:"inbound_shape"`
	Provider     string  `json:"provider"`
	// RequestedModel is the model the request named (or the routing chose).
	RequestedModel string `json:"requested_model"`
	Model          string `json:"model"`
	Status         int    `json:"status"`
	InputTokens    int64  `json:"input_tokens"`
	Estimated      bool   `json:"estimated"`
	LatencyMS      int64  `json:"latency_ms"`
}

const typeTokensCounted = "tokens.counted"

// sessionOrNull is nil for a call without a session, so the payload says
// null as llm.call_completed does.
func sessionOrNull(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func (c *call) endpoint() string {
	switch c.kind {
	case kindCountTokens:
		return "count_tokens"
	case kindChat:
		return "chat_completions"
	case kindResponses:
		if strings.HasSuffix(c.r.URL.Path, "/compact") {
			return "responses_compact"
		}
		return "responses"
	}
	return "messages"
}

func (c *call) recordRoute() {
	k := c.key
	ev := store.Event{Type: store.TypeRouteDecided, Time: c.start, Payload: &routeDecided{
		TurnID: c.turnID, GatewayKeyID: k.ID, KeyName: k.Name, User: k.User, Team: k.Team, Workspace: k.Workspace,
		SessionID: c.session, InboundShape: c.shape, Endpoint: c.endpoint(), RequestedModel: c.requested,
		Provider: c.res.prov.name, Model: c.res.model, RouteSlot: c.slot, Stream: c.stream, CrossShape: c.cross,
	}}
	if !c.g.app.store.Enqueue(ev) {
		mDropped.Inc()
	}
}

// finish prices the call and records llm.call_completed and
// turn.completed, then the metrics and one log line.
func (c *call) finish() {
	c.finishing = true
	now := time.Now()
	latency := now.Sub(c.start)
	a := c.g.app
	k := c.key
	var errClass *string
	if c.errorClass != "" {
		errClass = &c.errorClass
	}
	if c.kind == kindCountTokens {
		tc := &tokensCounted{
			TurnID: c.turnID, GatewayKeyID: k.ID, KeyName: k.Name, User: k.User, Team: k.Team, Workspace: k.Workspace,
			SessionID: sessionOrNull(c.session), InboundShape: c.shape, Provider: c.res.prov.name, RequestedModel: c.requested,
			Model: c.res.model, Status: c.status,
			InputTokens: c.usage.InputTokens, Estimated: c.usage.Estimated, LatencyMS: latency.Milliseconds(),
		}
		zero := 0.0
		tcDone := &turnCompleted{TurnID: c.turnID, GatewayKeyID: k.ID, Status: c.status, ErrorClass: errClass,
			CostUSD: &zero, Priced: true, LatencyMS: latency.Milliseconds(), Calls: 0}
		if !a.store.Enqueue(store.Event{Type: typeTokensCounted, Time: now, Payload: tc},
			store.Event{Type: store.TypeTurnCompleted, Time: now, Payload: tcDone}) {
			mDropped.Add(2)
		}
		if c.attempts > 0 { // an estimate reaches no provider
			requestCounter(c.shape, c.res.prov.name, c.status).Inc()
		}
		return
	}
	u := c.usage
	cost, priced, pricedModel, answered := c.price(u)
	answered = clip(answered) // the provider's name for it, recorded and logged like a client's
	var pricedOther string
	if priced && pricedModel != c.res.model {
		pricedOther = pricedModel
	}
	var costPtr *float64
	savings := 0.0
	if priced {
		costPtr = &cost
		savings = a.prices.CacheSavings(pricedModel, u)
	}
	// A budget charges what the call cost, or, when the provider ran a
	// model without a price, what the model it was asked for costs (the
	// reservation's basis): a budgeted key's call is never free.
	charge := cost
	if answered != "" && !priced {
		charge, _ = a.prices.Cost(c.res.model, u)
	}
	// Lookup prices many spellings of one id (case, prefixes, dates): only
	// the catalogue's own spelling is bounded by the catalogue. A call
	// another model answered counts under that model.
	model := c.res.model
	if answered != "" {
		model = answered
	}
	label := unlistedModels.label(model, a.prices.Listed(model), c.status)
	switch {
	case priced, u.TotalInputTokens() == 0 && u.OutputTokens == 0: // nothing to price
	case label == model && answered != "":
		if _, warned := a.unpricedOnce.LoadOrStore(c.res.prov.name+"\x00"+answered, struct{}{}); !warned {
			c.g.logger.Warn("the provider answered with another model, which has no price: its calls are recorded "+
				"with cost_usd null (budgets are charged the requested model's price); price it in a pricing file",
				zap.String("provider", c.res.prov.name), zap.String("model", c.res.model), zap.String("answered_model", answered))
		}
	case label == model:
		if _, warned := a.unpricedOnce.LoadOrStore(model, struct{}{}); !warned {
			c.g.logger.Warn("model has no price in the catalogue; its calls are recorded with cost_usd null",
				zap.String("model", model), zap.String("provider", c.res.prov.name))
		}
	case c.status < 400 && !a.unlistedWarned.Swap(true):
		c.g.logger.Warn("more models outside the price catalogue answered than the metrics name; "+
			"their calls are recorded with cost_usd null and counted under model=\"other\" in the metrics",
			zap.String("model", model), zap.String("provider", c.res.prov.name),
			zap.Int("named", maxUnlistedModels))
	}
	c.settle(charge) // dollars from the ledger: cache reads at their real price
	source := "provider"
	if u.Estimated {
		source = "estimated"
	}
	var ttft *int64
	if c.stream && c.ttft > 0 {
		ms := c.ttft.Milliseconds()
		ttft = &ms
	}
	cc := &store.Call{
		TurnID: c.turnID, GatewayKeyID: k.ID, KeyName: k.Name, User: k.User, Team: k.Team, Workspace: k.Workspace,
		SessionID: c.session, InboundShape: c.shape, Provider: c.res.prov.name, RequestedModel: c.requested,
		Model: c.res.model, Stream: c.stream, Status: c.status, ErrorClass: c.errorClass, Attempts: c.attempts,
		InputTokens: u.InputTokens, CacheReadInputTokens: u.CacheReadInputTokens,
		CacheCreationInputTokens: u.CacheCreationInputTokens, CacheCreation5mInputTokens: u.CacheCreation5mInputTokens,
		CacheCreation1hInputTokens: u.CacheCreation1hInputTokens, OutputTokens: u.OutputTokens,
		ReasoningTokens: u.ReasoningTokens, WebSearchRequests: u.WebSearchRequests, CostUSD: costPtr, Priced: priced, UsageSource: source,
		LatencyMS: latency.Milliseconds(), TTFTMS: ttft, UpstreamRequestID: c.upstreamReqID,
		CacheSavingsUSD: savings, ServiceTier: u.ServiceTier, Speed: u.Speed, InferenceGeo: u.InferenceGeo, PricedModel: pricedOther, AnsweredModel: answered,
	}
	done := &turnCompleted{TurnID: c.turnID, GatewayKeyID: k.ID, Status: c.status, ErrorClass: errClass,
		CostUSD: costPtr, Priced: priced, LatencyMS: latency.Milliseconds(), Calls: 1}
	// The metrics first: a scrape that follows the call's row in the trace
	// finds them (review 29F).
	observeCall(c, label, u, cost, priced)
	if !a.store.Enqueue(store.Event{Type: store.TypeCallCompleted, Time: now, Payload: cc},
		store.Event{Type: store.TypeTurnCompleted, Time: now, Payload: done}) {
		mDropped.Add(2)
	}
	if !a.calls.enabled(c.g.logger) {
		return
	}
	line := callLine{logger: c.g.logger, turnID: c.turnID, keyID: k.ID, shape: c.shape, endpoint: c.endpoint(),
		provider: c.res.prov.name, requested: c.clientModel(), model: c.res.model, source: source, errorClass: c.errorClass,
		stream: c.stream, priced: priced, status: c.status, attempts: c.attempts,
		input: u.InputTokens, cacheRead: u.CacheReadInputTokens, cacheWrite: u.CacheCreationInputTokens,
		output: u.OutputTokens, reasoning: u.ReasoningTokens, latency: latency, cost: cost}
	if ttft != nil {
		line.hasTTFT, line.ttftMS = true, *ttft
	}
	a.calls.write(&line)
}

// price prices usage u of the call. It prices the model the row records
// (the resolved id), so that its dollars can be worked out from the row
// alone, except:
//   - when that model has no price and the provider says it ran a dated
//     version of it (an alias the catalogue lacks): that version;
//   - when the provider says it ran another model (answered): an
//     Anthropic-compatible vendor answers a claude- id with its own model,
//     so the resolved id's price is not what the call cost. The answered
//     model's price applies; without one, the call is unpriced, unless
//     the answer is in the resolved id's own family (OpenAI runs
//     gpt-4-turbo-preview as gpt-4-0125-preview): the provider's own alias,
//     so the resolved id's price stands.
//
// pricedModel is the model whose price gave cost.
func (c *call) price(u ir.Usage) (cost float64, priced bool, pricedModel, answered string) {
	a := c.g.app
	resolved, said := c.res.model, c.respModel
	if said != "" && !sameModel(said, resolved) {
		if cost, priced = a.prices.Cost(said, u); priced {
			return cost, true, said, said
		}
		if fam := typeByPrefix(strings.ToLower(resolved)); fam != "" && fam == typeByPrefix(strings.ToLower(said)) {
			cost, priced = a.prices.Cost(resolved, u)
			return cost, priced, resolved, said
		}
		return 0, false, said, said
	}
	cost, priced = a.prices.Cost(resolved, u)
	if !priced && datedVersionOf(said, resolved) {
		if cost, priced = a.prices.Cost(said, u); priced {
			return cost, true, said, ""
		}
	}
	return cost, priced, resolved, ""
}

// sameModel reports whether an answer naming model said ran the resolved
// id: the same id in any case, or a dated version of it, or the other way
// round.
func sameModel(said, resolved string) bool {
	s, r := strings.ToLower(said), strings.ToLower(resolved)
	return s == r || datedVersionOf(s, r) || datedVersionOf(r, s)
}

// datedVersionOf reports whether answered is a dated version of the model
// id resolved: resolved (without a -latest or -0 suffix), a dash, then a
// date (YYYYMMDD, YYYY-MM-DD or MMDD), as claude-3-7-sonnet-20250219 is of
// claude-3-7-sonnet or claude-3-7-sonnet-latest, claude-sonnet-4-20250514
// of claude-sonnet-4-0, gpt-4o-2024-08-06 of gpt-4o and gpt-4-0613 of
// gpt-4. A sibling version is another model, with its own price:
// claude-opus-5-5 is not one of claude-opus-5, nor claude-opus-4-8 of
// claude-opus-4-0.
func datedVersionOf(answered, resolved string) bool {
	base := strings.TrimSuffix(strings.TrimSuffix(resolved, "-latest"), "-0")
	rest, ok := strings.CutPrefix(answered, base+"-")
	if !ok {
		return false
	}
	// MMDD as the year-less date it is (gpt-4-0613).
	return pricing.IsDate(rest) || len(rest) == 4 && pricing.IsDate("0000"+rest)
}
