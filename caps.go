package metis

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/gjson"
	"go.uber.org/zap"

	"github.com/metisgateway/metis/adapters/anthropic"
	"github.com/metisgateway/metis/budget"
	"github.com/metisgateway/metis/internal/jsonx"
	"github.com/metisgateway/metis/ir"
	"github.com/metisgateway/metis/pricing"
	"github.com/metisgateway/metis/store"
)

// inFlightRetryAfter is the retry-after, in seconds, of a call refused only
// for the reservations of calls in flight.
const inFlightRetryAfter = 2

// typeSoftExceeded is written once per budget per window when a call's
// charge crosses the budget's soft limit.
const typeSoftExceeded = "budget.soft_exceeded"

// identity is who a call spends for, as budgets see it.
func identity(k *store.Key) budget.Identity {
	return budget.Identity{KeyID: k.ID, User: k.User, Team: k.Team, Workspace: k.Workspace}
}

// The worst case reserved for a call bounds what the provider can bill for
// it, so that a hard limit holds even for calls in flight together.
const (
	// bytesPerTokenBound: no prompt is billed for more than one token per
	// two bytes of its request body. English prose runs about four bytes a
	// token and code three; JSON punctuation and base64 payloads (images,
	// PDFs, billed by size or pages, not bytes) run far sparser. Only long
	// runs of emoji or rare scripts come close.
	bytesPerTokenBound = 2
	// toolPromptTokens covers the system prompt a provider adds when a
	// request carries tools: Anthropic documents 346 tokens for Claude 4
	// models with tool_choice auto, and the recorded two-turn tool call
	// was billed 402 input tokens for a 384-byte body.
	toolPromptTokens = 600
	// defaultWebSearches bounds the searches of a web_search tool that
	// sets no max_uses.
	defaultWebSearches = 10
	// imageRefTokens bounds an image the provider fetches itself (by URL
	// or file id), which the body names in a few bytes: Anthropic bills
	// about 1,600 tokens for the largest image it takes without resizing,
	// OpenAI's patch-based models up to about 2,500.
	imageRefTokens = 2500
	// outsideDocTokens bounds a document the provider fetches itself when
	// the model's context window is unknown (a 100-page PDF runs
	// 150,000–300,000 tokens).
	outsideDocTokens = 200_000
)

// quotaAfter is the wait, in seconds, past which a budget refusal is told
// to OpenAI-shape clients as a spent quota rather than a rate limit: a
// rolling window whose room frees up sooner is worth a client's wait.
const quotaAfter = 60

// worstCase is the most a call can cost (see worstCaseCost). priced is
// false for a model without a price, whose cost nothing bounds.
func (c *call) worstCase(body []byte) (usd float64, priced bool) {
	// OpenAI caches unasked; the gateway asks Anthropic's automatic
	// caching for a translated request (prompt_cache).
	caches := c.res.prov.typ == shapeOpenAI || c.cross && !c.res.prov.compat.noAutoCache
	responses := c.kind == kindResponses
	if responses {
		// Reserved on what the provider is sent: the items the gateway
		// read back for the client's references are in it, whole; to a
		// Claude model, a Messages body with its max_tokens.
		body, responses = c.body, !c.cross
	}
	return worstCaseCost(c.g.app.prices, c.res.model, body, worstCaseOptions{
		autoCache: caches, responses: responses,
		// An Anthropic web_search tool is dropped on the way to an
		// OpenAI model (LOSSY #18), a Responses API one on the way to a
		// Claude model (#31): no search can run.
		noSearches: c.cross && (c.res.prov.typ == shapeOpenAI || c.kind == kindResponses),
	})
}

// worstCaseOptions says how worstCaseCost reads a body: whether the
// provider caches unasked (autoCache), whether it is a Responses API body
// (responses), and whether its search tools cannot run (noSearches).
type worstCaseOptions struct {
	autoCache, responses, noSearches bool
}

// worstCaseCost bounds what the provider can bill for a request body sent
// to model: the prompt at one token per two bytes plus the tool prompt,
// imageRefTokens per image and the whole context window for a document
// the provider fetches by URL or file id (or a web_fetch tool brings in),
// never more than the model's context window; all of it at the dearer of
// the input and cache-write prices when the body asks for caching or the
// provider caches on its own (autoCache: OpenAI bills some models' cache
// writes above the input price); max_tokens or max_completion_tokens
// (max_output_tokens for a Responses API body; else the model's output
// limit) of output per choice (n), all of it reasoning when that is
// dearer; at the service tier, speed and inference_geo the body asks for,
// the long-context tier the estimate reaches, and max_uses (else 10) web
// searches per web_search tool.
//
// A Responses API body (responses) may also bring in input it does not
// hold: a stored conversation (previous_response_id, conversation, a
// stored prompt, item references), files and images by id or URL. Any of
// the first kind, or a file, is bounded by the context window.
func worstCaseCost(prices *pricing.Catalogue, model string, body []byte, o worstCaseOptions) (usd float64, priced bool) {
	autoCache, responses := o.autoCache, o.responses
	p, ok := prices.Lookup(model)
	if !ok {
		return 0, false
	}
	req := gjson.Parse(jsonx.View(body))
	modelOut := int64(p.MaxOutputTokens)
	if modelOut <= 0 {
		modelOut = anthropic.DefaultMaxTokens
	}
	// The adapters and providers read the two limits by different rules
	// (an OpenAI-shape max_completion_tokens of 0 becomes a Claude model's
	// whole output limit; an Anthropic-shape body's max_completion_tokens
	// is not read on the way to OpenAI): whichever is larger may be the one
	// that runs, a limit of 0 or less being the model's own.
	maxOut, named := int64(0), false
	limits := []string{"max_tokens", "max_completion_tokens"}
	if responses {
		// The Responses API's only limit: the other two are not read there,
		// nor is this one by the Chat Completions and Messages paths.
		limits = []string{"max_output_tokens"}
	}
	for _, field := range limits {
		if v := req.Get(field); v.Exists() && v.Type != gjson.Null { // null: not given
			named = true
			n := v.Int()
			if n <= 0 {
				n = modelOut
			}
			maxOut = max(maxOut, n)
		}
	}
	if !named {
		maxOut = modelOut
	}
	if n := req.Get("n").Int(); n > 1 {
		maxOut *= n // OpenAI bills every choice's output
	}
	in := int64(len(body)+bytesPerTokenBound-1) / bytesPerTokenBound
	window := int64(p.MaxInputTokens)
	if window <= 0 {
		window = outsideDocTokens
	}
	searches := int64(0)
	hasTools, fetches := false, false
	if tools := req.Get("tools"); tools.IsArray() {
		tools.ForEach(func(_, t gjson.Result) bool {
			hasTools = true
			typ := t.Get("type").String()
			n := t.Get("max_uses").Int()
			if n <= 0 {
				n = defaultWebSearches
			}
			switch {
			case strings.HasPrefix(typ, "web_search"):
				searches += n
			case strings.HasPrefix(typ, "web_fetch"):
				if m := t.Get("max_content_tokens").Int(); m > 0 {
					in += n * m
				} else {
					fetches = true
				}
			}
			return true
		})
	}
	if hasTools {
		in += toolPromptTokens
	}
	var docs, images int
	// Every such reference has a "url" or "file_id" member: most bodies
	// have neither and are not walked. A body with \u escapes may spell
	// them otherwise, as the provider reads them decoded.
	escaped := bytes.Contains(body, []byte(`\u`))
	switch {
	case responses:
		var stored bool
		docs, images, stored = responsesOutsideContent(req)
		if stored {
			docs++ // a stored conversation: as long as the window allows
		}
	case escaped || bytes.Contains(body, []byte(`"url"`)) || bytes.Contains(body, []byte(`"file_id"`)):
		docs, images = outsideContent(req)
	}
	in += int64(images) * imageRefTokens
	if docs > 0 || fetches {
		in = window // billed by pages or fetched bytes, not by the body's
	}
	if req.Get("web_search_options").Exists() {
		searches++ // OpenAI's search models bill a search per request
	}
	if n := req.Get("max_tool_calls"); responses && n.Type == gjson.Number && n.Int() >= 0 {
		searches = min(searches, n.Int()) // the Responses API's bound on hosted tool calls
	}
	if o.noSearches {
		searches = 0
	}
	if p.MaxInputTokens > 0 {
		in = min(in, int64(p.MaxInputTokens))
	}
	var prompts []ir.Usage
	prompts = append(prompts, ir.Usage{InputTokens: in})
	asksCache := bytes.Contains(body, []byte("cache_control")) || escaped && jsonx.HasKey(req.Raw, "cache_control")
	if autoCache && p.ListsCacheWrites() || asksCache {
		// Cache writes cost 1.25× (5 minutes) or 2× (1 hour) the input.
		prompts = append(prompts,
			ir.Usage{CacheCreationInputTokens: in, CacheCreation5mInputTokens: in},
			ir.Usage{CacheCreationInputTokens: in, CacheCreation1hInputTokens: in})
	}
	tiers := []string{""}
	if t := req.Get("service_tier").String(); t != "" {
		tiers = append(tiers, t)
	}
	speed, geo := req.Get("speed").String(), req.Get("inference_geo").String()
	for _, u := range prompts {
		for _, tier := range tiers {
			for _, reasoning := range []int64{0, maxOut} {
				u.OutputTokens, u.ReasoningTokens = maxOut, reasoning
				u.ServiceTier, u.Speed, u.InferenceGeo, u.WebSearchRequests = tier, speed, geo, searches
				if cost, ok := p.Cost(u); ok {
					usd, priced = max(usd, cost), true
				}
			}
		}
	}
	return usd, priced
}

// outsideContent counts the documents and images of a request's messages
// that the provider fetches itself, by URL or file id (an Anthropic
// document or image source of type url or file, an OpenAI image_url that
// is not a data URI, an OpenAI file part with a file_id), tool results
// included: the body names each in a few bytes, the provider bills its
// whole size.
func outsideContent(req gjson.Result) (docs, images int) {
	var count func(part gjson.Result)
	count = func(part gjson.Result) {
		if dupPart(part) {
			docs++ // read one way here, maybe another by the provider
			return
		}
		switch part.Get("type").String() {
		case "document":
			if st := part.Get("source.type").String(); st == "url" || st == "file" {
				docs++
			}
		case "image":
			if st := part.Get("source.type").String(); st == "url" || st == "file" {
				images++
			}
		case "image_url":
			if u := part.Get("image_url.url").String(); !strings.HasPrefix(u, "data:") {
				images++
			}
		case "file":
			if part.Get("file.file_id").Exists() {
				docs++
			}
		case "tool_result":
			part.Get("content").ForEach(func(_, p gjson.Result) bool { count(p); return true })
		}
	}
	req.Get("messages").ForEach(func(_, m gjson.Result) bool {
		m.Get("content").ForEach(func(_, part gjson.Result) bool { count(part); return true })
		return true
	})
	return docs, images
}

// dupPart reports whether a content part repeats a member name outside
// the text and tool input it carries (which a model may write as it
// likes): read here by its first "type", it may be read by its last by a
// provider, a document where the reservation saw text (review 17R3).
func dupPart(part gjson.Result) bool {
	if !part.IsObject() {
		return false
	}
	_, dup := jsonx.DuplicateKey(part.Raw, func(name string) bool {
		switch name {
		case "input", "content", "output", "arguments", "text":
			return true
		}
		return false
	})
	return dup
}

// responsesOutsideContent is outsideContent for a Responses API body: the
// input_file parts and items that name a file by id or URL, the
// input_image ones that are not data URIs, function outputs included; and
// whether the body brings in a stored conversation (previous_response_id,
// conversation, a stored prompt, an item_reference), which it does not
// hold either.
func responsesOutsideContent(req gjson.Result) (docs, images int, stored bool) {
	for _, k := range [...]string{"previous_response_id", "conversation", "prompt"} {
		if v := req.Get(k); v.Exists() && v.Type != gjson.Null {
			stored = true
		}
	}
	var count func(part gjson.Result)
	count = func(part gjson.Result) {
		if dupPart(part) {
			docs++ // read one way here, maybe another by the provider
			return
		}
		switch part.Get("type").String() {
		case "input_file":
			if part.Get("file_id").Exists() || part.Get("file_url").Exists() {
				docs++
			}
		case "input_image":
			if u := part.Get("image_url").String(); part.Get("file_id").Exists() || u != "" && !strings.HasPrefix(u, "data:") {
				images++
			}
		case "item_reference":
			stored = true
		}
		for _, k := range [...]string{"content", "output"} {
			if v := part.Get(k); v.IsArray() {
				v.ForEach(func(_, p gjson.Result) bool { count(p); return true })
			}
		}
	}
	if in := req.Get("input"); in.IsArray() {
		in.ForEach(func(_, item gjson.Result) bool { count(item); return true })
	}
	return docs, images, stored
}

// reserve holds the call's worst-case cost against every budget covering
// its key, before anything is sent upstream. It returns the refusal to
// answer with, or nil when the call may go ahead.
func (c *call) reserve(body []byte) *apiError {
	l := c.g.app.ledger
	if c.kind == kindCountTokens || l == nil || !l.Applies(identity(c.key)) {
		return nil // count_tokens is free; unbudgeted traffic never touches the disk here
	}
	amount, priced := c.worstCase(body)
	if !priced {
		// Its spend would be recorded as unknown and never charged: a hard
		// limit would not hold, so a budgeted key may not use the model.
		e := reject(http.StatusForbidden, "unpriced_model",
			fmt.Sprintf("model %q has no price in the gateway's catalogue, so this key's spend budget cannot bound its cost; the operator can price it with a pricing file", clip(c.res.model)))
		e.code = "unpriced_model"
		return e
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, warnings, refusal, err := l.Reserve(ctx, identity(c.key), amount, time.Now())
	switch {
	case err != nil:
		if c.g.app.ledgerErrLog.Allow(10 * time.Second) {
			c.g.logger.Error("budget ledger unavailable (logged at most every 10 s)", zap.String("key_id", c.key.ID), zap.Error(err))
		}
		if c.g.app.BudgetFailure == "open" {
			return nil
		}
		return reject(http.StatusServiceUnavailable, "budget_unavailable",
			"the gateway cannot check this key's spend budget right now; try again shortly")
	case refusal != nil:
		// Told as OpenAI's spent quota (insufficient_quota) when no retry
		// soon helps, which Codex CLI then reports at once rather than
		// sleep out the Retry-After and retry; as a rate limit when room
		// frees up within quotaAfter.
		quota, never := true, false
		switch {
		case refusal.Never():
			never = true
			// No wait helps: no Retry-After, and the SDKs are told not to retry.
			c.w.Header().Set("X-Should-Retry", "false")
			if c.kind == kindResponses {
				refusal.Lower = "lower the request's max_output_tokens (Codex CLI sends none: the model's whole output limit is its worst case)"
				if !c.cross { // a Claude model is sent no state stored at OpenAI
					refusal.Lower += ", send the conversation and its files in the request (previous_response_id, a conversation, " +
						"a file by id or URL are each reserved at the model's whole context window)"
				}
			}
		case refusal.InFlight():
			// Room frees up as the calls in flight settle: a client's own
			// retry, a little later, may well fit.
			c.w.Header().Set("Retry-After", strconv.Itoa(inFlightRetryAfter))
			quota = false
		default:
			secs := int64(time.Until(refusal.ResetsAt).Seconds()) + 1
			if secs > 0 {
				c.w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
			}
			if quota = secs > quotaAfter; quota {
				// Hours, not seconds: the SDKs are told not to retry. A
				// shorter wait they may spend, as the Retry-After says.
				c.w.Header().Set("X-Should-Retry", "false")
			}
		}
		aerr := reject(http.StatusTooManyRequests, "budget", refusal.Error())
		switch {
		case never && c.shape == shapeOpenAI:
			// The request asks for more than the budget can ever hold, as
			// a max_tokens over the model's limit does: a 400, whose
			// message Codex CLI shows as it came. On a 429
			// insufficient_quota it shows only its own "Quota exceeded.
			// Check your plan and billing details." (review 29O).
			aerr.status, aerr.code = http.StatusBadRequest, codeBudgetTooSmall
		case quota:
			// Codex CLI sleeps out a rate limit's Retry-After (hours, to
			// the window's reset) and retries; an exhausted quota it
			// reports at once (audit 18L).
			aerr.code = codeInsufficientQuota
		}
		return aerr
	}
	c.reservation = res
	if len(warnings) > 0 {
		var parts []string
		for _, b := range warnings {
			parts = append(parts, fmt.Sprintf("%s %s %s soft limit %s reached", b.Scope, b.Subject, b.Window, budget.Dollars(b.Soft)))
		}
		c.w.Header().Set("Metis-Budget-Warning", strings.Join(parts, "; "))
	}
	return nil
}

// settleInline bounds the settlement a call makes before its response
// ends (the last chunk of a stream waits for it): past it, a locked or
// slow ledger gets the settlement retried in the background instead of
// holding the client's answer for SQLite's 5 s busy timeout (audit 23A).
const settleInline = 500 * time.Millisecond

// settle charges the call's actual cost to its budgets and releases the
// reservation; crossing a soft limit writes budget.soft_exceeded. A
// settlement the ledger cannot write now is retried in the background.
func (c *call) settle(cost float64) {
	if c.reservation == nil {
		return
	}
	r := c.reservation
	c.reservation = nil
	s := settlement{r: r, cost: cost, at: time.Now(), turnID: c.turnID, keyID: c.key.ID, app: c.g.app,
		ledger: c.g.app.ledger, store: c.g.app.store, logger: c.g.logger}
	crossed, err := r.SettleWithin(settleInline, cost, s.at)
	if err != nil {
		if !errors.Is(err, budget.ErrUnavailable) {
			c.g.logger.Error("settling a budget reservation", zapTurn(c.turnID), zap.Error(err))
			return
		}
		// Every budgeted call meets it while the ledger is locked (an open
		// sqlite3 shell, a backup): the first is told, then a count every
		// 10 s.
		// The count line, kept for the burst, holds the logger, not the call.
		logger := c.g.logger
		c.g.app.settleDeferred.add(10*time.Second, func() {
			logger.Error("budget settlements deferred: the ledger could not be written; retrying in the background (further ones are counted every 10 s)",
				zapTurn(c.turnID), zap.Int64("settlements", 1), zap.Error(err))
		}, func(n int64) {
			logger.Error("budget settlements deferred: the ledger could not be written; retrying in the background",
				zap.Int64("settlements", n), zap.Duration("within", 10*time.Second))
		})
		go s.retry()
		return
	}
	s.softExceeded(crossed)
}

// settlement is a call's charge to its budgets, kept apart from the call
// so that a retry holds only what it needs.
type settlement struct {
	r      *budget.Reservation
	cost   float64
	at     time.Time
	turnID string
	keyID  string
	ledger *budget.Ledger
	store  *store.Store
	logger *zap.Logger
	app    *App // its log gates, for a retried settlement
}

// retry retries a settlement the ledger could not write (its database
// full, or locked past the busy timeout), so that the call's spend reaches
// its budgets; the reservation holds them meanwhile. Attempts come after 1
// s, then twice as long up to 30 s, each ±25% so that the calls of one
// outage do not all queue for the ledger's connection at once. It gives up
// when the ledger closes, on an error that retrying cannot mend, or 2 h
// (budget.DefaultReservationTTL) after the call: the spend is then not
// charged, and the log says so.
func (s settlement) retry() {
	wait := time.Second
	for attempt := 2; ; attempt++ {
		t := time.NewTimer(time.Duration(float64(wait) * (0.75 + 0.5*rand.Float64())))
		select {
		case <-t.C:
		case <-s.ledger.Done():
			t.Stop()
			s.logger.Error("budget ledger closed before a reservation could be settled: the call's spend is not charged to its budgets",
				zapTurn(s.turnID), zap.Float64("cost_usd", s.cost))
			return
		}
		crossed, err := s.r.Settle(s.cost, s.at)
		if err == nil {
			logger := s.logger // the count line, kept for the burst, holds the logger only
			s.app.settleLate.add(10*time.Second, func() {
				s.logger.Info("budget settlements written once the ledger could be written (further ones are counted every 10 s)",
					zapTurn(s.turnID), zap.Int64("settlements", 1), zap.Int("attempts", attempt), zap.Duration("after", time.Since(s.at)))
			}, func(n int64) {
				logger.Info("budget settlements written once the ledger could be written",
					zap.Int64("settlements", n), zap.Duration("within", 10*time.Second))
			})
			s.softExceeded(crossed)
			return
		}
		if !errors.Is(err, budget.ErrUnavailable) || time.Since(s.at) >= budget.DefaultReservationTTL {
			s.logger.Error("gave up settling a budget reservation: the call's spend is not charged to its budgets",
				zapTurn(s.turnID), zap.Float64("cost_usd", s.cost), zap.Error(err))
			return
		}
		wait = min(2*wait, 30*time.Second)
	}
}

// softExceeded writes budget.soft_exceeded for each budget whose soft
// limit the settlement crossed.
func (s settlement) softExceeded(crossed []budget.Budget) {
	for _, b := range crossed {
		p := map[string]any{
			"turn_id": s.turnID, "gateway_key_id": s.keyID, "budget_id": b.ID, "scope": b.Scope,
			"subject": b.Subject, "window": b.Window, "soft": b.Soft, "hard": b.Hard,
		}
		if !s.store.Enqueue(store.Event{Type: typeSoftExceeded, Time: s.at, Payload: p}) {
			mDropped.Inc()
		}
		// Once per budget per window, as the event: what a soft limit is
		// for, an operator alerting on the log sees it too (review 28L).
		s.logger.Info("budget soft limit reached", zapTurn(s.turnID), zap.String("key_id", s.keyID), zap.String("budget_id", b.ID),
			zap.String("scope", b.Scope), zap.String("subject", b.Subject), zap.String("window", b.Window),
			zap.Float64("soft_usd", b.Soft), zap.Float64("hard_usd", b.Hard))
	}
}
