package metis

import (
	"io"
	"testing"

	"github.com/metisgateway/metis/internal/fakeupstream"
	"github.com/metisgateway/metis/store"
)

// TestCostFollowsRecordedModel: a call is priced as the model its trace row
// records, so the dollars can be worked out from the row alone, even when
// the provider's answer names another model; the answer's model is priced
// only when the recorded one has no price and the answer names a dated
// version of it, and the row then says so in priced_model.
func TestCostFollowsRecordedModel(t *testing.T) {
	g, up := e2eSetup(t, "")
	_, tok := g.issueKey(store.IssueParams{Name: "prices", User: "alice"})
	// Both calls get the recorded Sonnet 3.7 answer: 402 input, 89 output
	// tokens, "model":"claude-3-7-sonnet-20250219".
	for _, c := range []struct {
		name, model, wantModel, pricedModel string
		wantCost                            float64
	}{
		// Haiku 4.5 at $1 / $5 per MTok: 402 × 1e-6 + 89 × 5e-6 =
		// 0.000402 + 0.000445 = 0.000847 (Sonnet 3.7's rates would give
		// 0.002541).
		{"recorded model priced", "claude-haiku-4-5", "claude-haiku-4-5", "", 0.000847},
		// No price for the undated id the catalogue lacks, and the answer
		// names a dated version of it: Sonnet 3.7's $3 / $15 per MTok,
		// 402 × 3e-6 + 89 × 15e-6 = 0.001206 + 0.001335 = 0.002541.
		{"dated version priced", "anthropic:claude-3-7-sonnet", "claude-3-7-sonnet", "claude-3-7-sonnet-20250219", 0.002541},
		// No price, and the answer names another model: unpriced, so the
		// upstream does not choose the price.
		{"other model not priced", "anthropic:claude-test-unlisted", "claude-test-unlisted", "", -1},
	} {
		t.Run(c.name, func(t *testing.T) {
			up.Enqueue("/v1/messages", fakeupstream.FromFixture(fakeupstream.FixtureAnthropicNonStream, 0))
			resp := g.post("/v1/messages", tok, `{"model":"`+c.model+`","max_tokens":256,"messages":[{"role":"user","content":"Weather in SF?"}]}`)
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			g.sync()
			call := g.lastCall()
			if c.wantCost < 0 {
				if call["model"] != c.wantModel || call["priced"] != false || call["cost_usd"] != nil {
					t.Fatalf("model %v priced %v cost %v; want %s unpriced", call["model"], call["priced"], call["cost_usd"], c.wantModel)
				}
			} else if call["model"] != c.wantModel || call["priced"] != true || !e2eNear(e2eCost(t, call), c.wantCost) {
				t.Fatalf("model %v priced %v cost %v; want %s priced at %v", call["model"], call["priced"], call["cost_usd"], c.wantModel, c.wantCost)
			}
			pm, has := call["priced_model"]
			if c.pricedModel == "" && has {
				t.Errorf("priced_model %v on a call priced as its recorded model", pm)
			}
			if c.pricedModel != "" && pm != c.pricedModel {
				t.Errorf("priced_model %v, want %s", pm, c.pricedModel)
			}
		})
	}
}

func TestDatedVersionOf(t *testing.T) {
	for _, c := range []struct {
		answered, resolved string
		want               bool
	}{
		{"claude-3-7-sonnet-20250219", "claude-3-7-sonnet", true},
		{"claude-3-7-sonnet-20250219", "claude-3-7-sonnet-latest", true},
		{"gpt-4o-2024-08-06", "gpt-4o", true},
		{"gpt-4o-mini-2024-07-18", "gpt-4o", false}, // another model
		{"claude-3-7-sonnet", "claude-3-7-sonnet", false},
		{"claude-3-7-sonnet-", "claude-3-7-sonnet", false},
		{"claude-3-7-sonnet-20250219", "claude-test-unlisted", false},
		{"", "claude-3-7-sonnet", false},
	} {
		if got := datedVersionOf(c.answered, c.resolved); got != c.want {
			t.Errorf("datedVersionOf(%q, %q) = %v, want %v", c.answered, c.resolved, got, c.want)
		}
	}
}
