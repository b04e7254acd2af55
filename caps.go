package metis

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/gjson"
	"go.uber.org/zap"

	"github.com/metisgateway/metis/budget"
	"github.com/metisgateway/metis/ir"
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

// worstCase is the most a call can cost: its whole prompt (estimated at
// four bytes a token, uncached) and max_tokens of output, at the model's
// prices. priced is false for a model without a price, whose cost nothing
// bounds.
func (c *call) worstCase(body []byte) (usd float64, priced bool) {
	maxOut := gjson.GetBytes(body, "max_tokens").Int()
	if v := gjson.GetBytes(body, "max_completion_tokens").Int(); v > 0 {
		maxOut = v
	}
	if maxOut <= 0 {
		maxOut = int64(c.g.app.prices.MaxOutputTokens(c.res.model))
	}
	if maxOut <= 0 {
		maxOut = 4096
	}
	return c.g.app.prices.Cost(c.res.model, ir.Usage{InputTokens: int64(len(body)+3) / 4, OutputTokens: maxOut})
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
			fmt.Sprintf("model %q has no price in the gateway's catalogue, so this key's spend budget cannot bound its cost; the operator can price it with a pricing file", c.res.model))
		e.code = "unpriced_model"
		return e
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, warnings, refusal, err := l.Reserve(ctx, identity(c.key), amount, time.Now())
	switch {
	case err != nil:
		c.g.logger.Error("budget ledger unavailable", zap.String("key_id", c.key.ID), zap.Error(err))
		if c.g.app.BudgetFailure == "open" {
			return nil
		}
		return reject(http.StatusServiceUnavailable, "budget_unavailable",
			"the gateway cannot check this key's spend budget right now; try again shortly")
	case refusal != nil:
		if refusal.InFlight() {
			// Room frees up as the calls in flight settle: a client's own
			// retry, a little later, may well fit.
			c.w.Header().Set("Retry-After", strconv.Itoa(inFlightRetryAfter))
		} else {
			if secs := int64(time.Until(refusal.ResetsAt).Seconds()) + 1; secs > 0 {
				c.w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
			}
			c.w.Header().Set("X-Should-Retry", "false")
		}
		return reject(http.StatusTooManyRequests, "budget", refusal.Error())
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

// settle charges the call's actual cost to its budgets and releases the
// reservation; crossing a soft limit writes budget.soft_exceeded.
func (c *call) settle(cost float64) {
	if c.reservation == nil {
		return
	}
	now := time.Now()
	crossed, err := c.reservation.Settle(cost, now)
	c.reservation = nil
	if err != nil {
		c.g.logger.Error("settling a budget reservation", zapTurn(c.turnID), zap.Error(err))
		return
	}
	for _, b := range crossed {
		p := map[string]any{
			"turn_id": c.turnID, "gateway_key_id": c.key.ID, "budget_id": b.ID, "scope": b.Scope,
			"subject": b.Subject, "window": b.Window, "soft": b.Soft, "hard": b.Hard,
		}
		if !c.g.app.store.Enqueue(store.Event{Type: typeSoftExceeded, Time: now, Payload: p}) {
			mDropped.Inc()
		}
	}
}
