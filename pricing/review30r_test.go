package pricing_test

import (
	"math"
	"testing"

	"github.com/metisgateway/metis/ir"
	"github.com/metisgateway/metis/pricing"
)

// Review 30R. Commit 3474ad0 gave gpt-5.4 *_flex and *_batches columns
// (0.5x) but no *_above_272k_tokens_flex / _batches ones. resolve picks
// the input column long+tier, then long, then tier: a flex or batch call
// over 272K input tokens lands in the standard long-context column and
// loses its discount (4x the short flex rate instead of 2x). OpenAI's
// gpt-5.4 model page: "prompts with >272K input tokens are priced at 2x
// input and 1.5x output for the full session for standard, batch, and
// flex"; the catalogue's own gpt_6 note: "Flex and Batch 0.5x of the rate
// at the same context length".
func TestReview30RGPT54FlexBatchLongContext(t *testing.T) {
	cat := pricing.Default()
	u := func(tier string) ir.Usage {
		return ir.Usage{InputTokens: 300000, OutputTokens: 10000, ServiceTier: tier}
	}
	// flex/batch long: input 2 x $1.25 = $2.50, output 1.5 x $7.50 = $11.25
	// 300,000 x 2.50 + 10,000 x 11.25 µ$ = 750,000 + 112,500 = $0.8625
	for _, tier := range []string{"flex", "batch"} {
		got, ok := cat.Cost("gpt-5.4", u(tier))
		if !ok {
			t.Fatal("gpt-5.4 unpriced")
		}
		std, _ := cat.Cost("gpt-5.4", u(""))
		if math.Abs(got-0.8625) > 1e-12 {
			t.Errorf("gpt-5.4 service_tier %s, 300K input + 10K output: cost %v, want 0.8625 (half the standard long-context %v)", tier, got, std)
		}
	}
}
