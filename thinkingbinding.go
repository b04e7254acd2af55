package metis

import (
	"bytes"
	"io"
	"net/http"
	"slices"

	"go.uber.org/zap"

	"github.com/metisgateway/metis/adapters/anthropic"
	"github.com/metisgateway/metis/adapters/translate"
)

// Anthropic's models with preserved thinking (Fable and Mythos 5.1+, the
// 5.5 generation) check the conversation before each thinking block sent
// back against the one Claude wrote it after. Accounts created from
// 2026-08-31 refuse a request failing the check with a 400; older ones let
// the block through unless the request asks for the check. An OpenAI-shape
// client never saw the blocks the gateway put back and may change its
// history (a system prompt holding the time), so a refused request goes
// again asking for such blocks to be dropped, and every later one to that
// provider asks at once; a provider that never refuses is never asked,
// and its thinking reaches the model as before.

// bindThinking is the translated body out, asking for mismatched thinking
// blocks to be dropped when it carries thinking to a preserved-thinking
// model and the provider has refused such a block before.
func (c *call) bindThinking(out []byte, st *translate.State) []byte {
	if !slices.Contains(st.Betas, anthropic.ThinkingBindingBeta) || !c.res.prov.bindingEnforced.Load() {
		return out
	}
	if b, err := anthropic.DropMismatchedThinking(out); err == nil {
		return b
	}
	return out
}

// bindingRefusalLimit bounds the error body bindingRefused reads.
const bindingRefusalLimit = 64 << 10

// bindingRefused reports whether resp is the provider's refusal of a
// thinking block bound to a different conversation, to a translated
// request that did not yet ask for such blocks to be dropped: then the
// provider is marked as enforcing the check, the request asks for the
// drop and goes again (the refusal bills nothing), and resp is closed.
// Otherwise resp is left for answer, its body as it came.
func (c *call) bindingRefused(resp *http.Response) bool {
	if resp.StatusCode != http.StatusBadRequest || !c.cross || c.tstate == nil ||
		!slices.Contains(c.tstate.Betas, anthropic.ThinkingBindingBeta) || bytes.Contains(c.body, []byte(`"block_binding"`)) {
		return false
	}
	head, err := io.ReadAll(io.LimitReader(resp.Body, bindingRefusalLimit))
	resp.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(head), resp.Body), resp.Body}
	if err != nil || !anthropic.IsBindingRefusal(head) {
		return false
	}
	body, err := anthropic.DropMismatchedThinking(c.body)
	if err != nil {
		return false
	}
	discard(resp.Body)
	c.res.prov.bindingEnforced.Store(true)
	c.body, c.rebound = body, true
	c.g.logger.Info("provider refused thinking the gateway put back (bound to a different conversation); "+
		"resending it with thinking blocks that fail the check dropped",
		zapTurn(c.turnID), zap.String("provider", c.res.prov.name), zap.Int("attempt", c.attempts))
	return true
}
