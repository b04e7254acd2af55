package metis

import (
	"io"
	"strings"
	"testing"

	"github.com/metisgateway/metis/internal/fakeupstream"
	"github.com/metisgateway/metis/store"
)

// TestCostFollowsAnsweredModel: a call is priced as the model its trace
// row records, unless the provider's answer names another model (an
// Anthropic-compatible vendor runs its own model for a claude- id): then
// as that model, recorded in priced_model and answered_model, or with
// cost_usd null when it has no price, never the requested model's price.
// A dated version of the recorded id prices an id the catalogue lacks.
func TestCostFollowsAnsweredModel(t *testing.T) {
	g, up := e2eSetup(t, "")
	_, tok := g.issueKey(store.IssueParams{Name: "prices", User: "alice"})
	recorded := func() fakeupstream.Reply { return fakeupstream.FromFixture(fakeupstream.FixtureAnthropicNonStream, 0) }
	for _, c := range []struct {
		name, model      string
		answer           func() fakeupstream.Reply
		wantModel        string
		priced, answered string // priced_model, answered_model ("" = absent)
		wantCost         float64
	}{
		// The recorded answer: 402 input, 89 output tokens, "model":
		// "claude-3-7-sonnet-20250219", at Sonnet 3.7's $3 / $15 per MTok:
		// 402 × 3e-6 + 89 × 15e-6 = 0.001206 + 0.001335 = 0.002541.
		{"same model", "claude-3-7-sonnet-20250219", recorded, "claude-3-7-sonnet-20250219", "", "", 0.002541},
		// No price for the undated id the catalogue lacks, and the answer
		// names a dated version of it: Sonnet 3.7's price.
		{"dated version priced", "anthropic:claude-3-7-sonnet", recorded, "claude-3-7-sonnet", "claude-3-7-sonnet-20250219", "", 0.002541},
		// Haiku 4.5 asked for ($1 / $5 per MTok would give 0.000402 +
		// 0.000445 = 0.000847), Sonnet 3.7 ran: Sonnet's 0.002541.
		{"another model ran", "claude-haiku-4-5", recorded, "claude-haiku-4-5", "claude-3-7-sonnet-20250219", "claude-3-7-sonnet-20250219", 0.002541},
		{"another model ran, asked for one without a price", "anthropic:claude-test-unlisted", recorded, "claude-test-unlisted",
			"claude-3-7-sonnet-20250219", "claude-3-7-sonnet-20250219", 0.002541},
		// The provider's own names for the model asked for: its dated
		// version of a "-0" alias. Sonnet 4 at $3 / $15, 402 input and
		// len("Sunny, 18 degrees today in the city.")/4 + 1 = 10 output
		// tokens: 0.001206 + 0.00015 = 0.001356.
		{"dated version of a -0 alias", "claude-sonnet-4-0", func() fakeupstream.Reply {
			return fakeupstream.AnthropicMessage("claude-sonnet-4-20250514", 402, "end_turn", fakeupstream.TextBlock("Sunny, 18 degrees today in the city."))
		}, "claude-sonnet-4-0", "", "", 0.001356},
		// An unpriced model of the same family: the provider's own alias,
		// so the price asked for stands (Haiku 4.5, 402 × 1e-6 + 10 × 5e-6
		// = 0.000402 + 0.00005 = 0.000452).
		{"same family without a price", "claude-haiku-4-5", func() fakeupstream.Reply {
			return fakeupstream.AnthropicMessage("claude-haiku-4-5-experimental", 402, "end_turn", fakeupstream.TextBlock("Sunny, 18 degrees today in the city."))
		}, "claude-haiku-4-5", "", "claude-haiku-4-5-experimental", 0.000452},
		// A vendor's own model the catalogue does not price: null, not
		// Haiku's price.
		{"another model without a price", "claude-haiku-4-5", func() fakeupstream.Reply {
			return fakeupstream.AnthropicMessage("glm-4.6", 402, "end_turn", fakeupstream.TextBlock("Sunny."))
		}, "claude-haiku-4-5", "", "glm-4.6", -1},
		// A sibling version ran (an Anthropic-compatible vendor, or a
		// gateway in front, mapping the model): its own price (review
		// 19R: "-5" was taken for a date). 402 input, 10 output tokens.
		// Opus 5.5 at $4 / $20: 0.001608 + 0.0002 = 0.001808 (Opus 5's
		// $5 / $25 would give 0.00226).
		{"a sibling version ran", "claude-opus-5", func() fakeupstream.Reply {
			return fakeupstream.AnthropicMessage("claude-opus-5-5", 402, "end_turn", fakeupstream.TextBlock("Sunny, 18 degrees today in the city."))
		}, "claude-opus-5", "claude-opus-5-5", "claude-opus-5-5", 0.001808},
		// Opus 4.8 ran for the claude-opus-4-0 alias: $5 / $25, 0.00201 +
		// 0.00025 = 0.00226 (Opus 4's $15 / $75 would give 0.00678).
		{"a sibling of a -0 alias ran", "claude-opus-4-0", func() fakeupstream.Reply {
			return fakeupstream.AnthropicMessage("claude-opus-4-8", 402, "end_turn", fakeupstream.TextBlock("Sunny, 18 degrees today in the city."))
		}, "claude-opus-4-0", "claude-opus-4-8", "claude-opus-4-8", 0.00226},
		// A provider naming a model in 3,000 bytes: unpriced, recorded
		// clipped to 256 bytes and the cut's mark like any model name
		// (audit 23B: it was recorded whole).
		{"an overlong answered model", "claude-haiku-4-5", func() fakeupstream.Reply {
			return fakeupstream.AnthropicMessage(strings.Repeat("m", 3000), 402, "end_turn", fakeupstream.TextBlock("Sunny."))
		}, "claude-haiku-4-5", "", strings.Repeat("m", 256) + "…", -1},
	} {
		t.Run(c.name, func(t *testing.T) {
			up.Enqueue("/v1/messages", c.answer())
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
			for field, want := range map[string]string{"priced_model": c.priced, "answered_model": c.answered} {
				got, has := call[field]
				if want == "" && has {
					t.Errorf("%s %v, want none", field, got)
				}
				if want != "" && got != want {
					t.Errorf("%s %v, want %s", field, got, want)
				}
			}
		})
	}
}

// TestBudgetChargesRequestedPriceWhenAnswerUnpriced: a budgeted key's call
// that another, unpriced model answered is recorded with cost_usd null but
// charged to the budget at the requested model's price, so a vendor's
// model never makes a capped key's calls free.
func TestBudgetChargesRequestedPriceWhenAnswerUnpriced(t *testing.T) {
	up := fakeupstream.New(t)
	g := startGateway(t, gatewayConfig(tempDB(t), up.URL, ""))
	k, tok := g.issueKey(store.IssueParams{Name: "capped"})
	capKey(t, g, k, 5)
	up.Enqueue("/v1/messages", fakeupstream.AnthropicMessage("glm-4.6", 400, "end_turn", fakeupstream.TextBlock("Sunny.")))
	resp := g.post("/v1/messages", tok, `{"model":"claude-haiku-4-5","max_tokens":100,"messages":[{"role":"user","content":"Weather?"}]}`, e2eAnthropicHdr...)
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	g.sync()
	call := g.lastCall()
	if call["priced"] != false || call["cost_usd"] != nil || call["answered_model"] != "glm-4.6" {
		t.Fatalf("call priced %v cost %v answered_model %v; want unpriced, answered by glm-4.6", call["priced"], call["cost_usd"], call["answered_model"])
	}
	// Haiku 4.5 at $1 / $5 per MTok: 400 input and the answer's output
	// tokens (len("Sunny.")/4 + 1 = 2): 0.0004 + 0.00001 = 0.00041.
	out, _ := call["output_tokens"].(float64)
	want := 400*1e-6 + out*5e-6
	if q := keyQuota(t, g, k); out != 2 || !near(q.Spent, want) || q.Reserved != 0 {
		t.Fatalf("budget spent %v reserved %v with %v output tokens; want %v (Haiku 4.5's price)", q.Spent, q.Reserved, out, want)
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
		{"claude-sonnet-4-20250514", "claude-sonnet-4-0", true},
		{"", "claude-3-7-sonnet", false},
		{"gpt-4-0613", "gpt-4", true}, // MMDD
		// Sibling versions are other models, with other prices (review 19R).
		{"claude-opus-5-5", "claude-opus-5", false},
		{"claude-fable-5-2", "claude-fable-5", false},
		{"claude-opus-4-8", "claude-opus-4-0", false},
		{"claude-sonnet-4-5", "claude-sonnet-4", false},
		{"claude-3-7-sonnet-2025-0219", "claude-3-7-sonnet", false},
	} {
		if got := datedVersionOf(c.answered, c.resolved); got != c.want {
			t.Errorf("datedVersionOf(%q, %q) = %v, want %v", c.answered, c.resolved, got, c.want)
		}
	}
}

func TestSameModel(t *testing.T) {
	for _, c := range []struct {
		said, resolved string
		want           bool
	}{
		{"claude-haiku-4-5", "claude-haiku-4-5", true},
		{"Claude-Haiku-4-5", "claude-haiku-4-5", true},                 // another case
		{"claude-haiku-4-5-20251001", "claude-haiku-4-5", true},        // dated version
		{"claude-haiku-4-5", "claude-haiku-4-5-20251001", true},        // the other way round
		{"claude-sonnet-4-20250514", "claude-sonnet-4-0", true},        // a -0 alias
		{"claude-3-5-haiku-20241022", "claude-3-5-haiku-latest", true}, // a -latest alias
		{"glm-4.6", "claude-opus-5-5", false},                          // a vendor's own model
		{"gpt-4-0125-preview", "gpt-4-turbo-preview", false},           // OpenAI's alias: same family, not the same id
		{"claude-3-7-sonnet-20250219", "claude-haiku-4-5", false},      // another Claude
	} {
		if got := sameModel(c.said, c.resolved); got != c.want {
			t.Errorf("sameModel(%q, %q) = %v, want %v", c.said, c.resolved, got, c.want)
		}
	}
}
