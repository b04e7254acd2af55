package metis

// Review 29O (A/B of the OpenAI side): what Codex CLI 0.171 shows its user
// when a gateway key's hard budget can never hold one of its calls.

import (
	"strings"
	"testing"
	"time"

	"github.com/metisgateway/metis/store"
)

// A key whose hard limit is below the worst case of every Codex call
// (Codex sends no max_output_tokens: gpt-5-nano's 128,000 × $0.40/MTok =
// $0.0512, its ~40 KB prompt, web_search's 10 × $0.01: about $0.15, over
// a $0.05 limit) is refused with a message written for Codex users
// ("... lower the request's max_output_tokens (Codex CLI sends none: the
// model's whole output limit is its worst case) ... or ask for a larger
// limit"). The refusal is 429 insufficient_quota, and Codex 0.171 replaces
// that error's message with its own canned "Quota exceeded. Check your plan
// and billing details.": the developer is sent to check an OpenAI plan they
// do not have, and never learns that the key's $0.05 budget can hold no
// Codex call at all, nor that waiting or retrying will not help. The
// explanation must reach the Codex user (for this never-fits case a 400
// invalid_request_error, whose body Codex prints as it came and does not
// retry, would do).
func TestCodexCLIShowsWhyItsBudgetNeverFits(t *testing.T) {
	bin := codexBinary(t)
	g, up := e2eSetup(t, "")
	k, tok := e2eKey(g, "codex-tiny-budget")
	capKey(t, g, k, 0.05)

	run := runCodex(t, bin, g.URL, tok, "gpt-5-nano", "Say hi.", 90*time.Second)
	out := run.stdout + run.stderr
	if n := len(up.Requests()); n != 0 {
		t.Fatalf("%d requests reached the provider; want the budget to refuse them all", n)
	}
	rej := g.events(store.TypeRequestRejected)
	if len(rej) == 0 {
		t.Fatalf("no request.rejected event; codex printed:\n%s", tail(out, 800))
	}
	msg, _ := rej[0]["message"].(string)
	if !strings.Contains(msg, "no reset makes room") {
		t.Fatalf("the refusal is not the never-fits one: %v", rej[0])
	}
	if !strings.Contains(out, "worst-case") || !strings.Contains(out, "budget") {
		t.Errorf("codex exec refused by a budget that can never hold a Codex call printed:\n%s\n"+
			"want the gateway's explanation (%q), not only Codex's canned quota text", tail(out, 800), msg)
	}
}
