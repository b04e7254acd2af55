package anthropic

import (
	"slices"
	"strings"
	"testing"

	"github.com/metisgateway/metis/ir"
)

// TestPreservedThinking: the models that check the conversation before a
// thinking block sent back are Fable, Mythos 5.1+ and the 5.5 generation
// on; a date after a model's major version is not a minor one.
func TestPreservedThinking(t *testing.T) {
	for model, want := range map[string]bool{
		"claude-opus-5-5": true, "claude-opus-5-5-20261001": true, "claude-sonnet-5-5": true, "claude-haiku-5-5": true,
		"claude-opus-5-5[1m]": true, "claude-sonnet-5-6": true, "claude-opus-6": true,
		"claude-fable-5-1": true, "claude-fable-5-2": true, "claude-mythos-5-1": true, "claude-mythos-5-2": true,
		"claude-opus-5": false, "claude-opus-5-20260724": false, "claude-opus-4-8": false, "claude-haiku-4-5": false,
		"claude-opus-4-5-20251101": false, "claude-mythos-preview": false, "claude-mythos-5": false, "glm-4.6": false,
		"claude-3-7-sonnet-20250219": false, "claude-3-5-haiku-20241022": false, "claude-3-opus-20240229": false,
	} {
		if got := preservedThinking(model); got != want {
			t.Errorf("preservedThinking(%q) = %v, want %v", model, got, want)
		}
	}
}

// TestEncodeRequestBindingBeta: a request carrying thinking back to a
// model with preserved thinking goes with the binding beta (which changes
// nothing the model gets), thinking adaptively when the client asked for
// no thinking (the model's default, named so that DropMismatchedThinking
// has a member to add to); other models, and requests carrying no
// thinking, go without it.
func TestEncodeRequestBindingBeta(t *testing.T) {
	loop := func(model string, th *ir.Thinking, withThinking bool) *ir.Request {
		answer := []ir.Part{{Type: ir.PartToolCall, ToolCallID: "toolu_1", ToolName: "get_weather", Arguments: []byte(`{}`)}}
		if withThinking {
			answer = append([]ir.Part{{Type: ir.PartThinking, Text: "Check.", Signature: "sig"}}, answer...)
		}
		return &ir.Request{Model: model, MaxTokens: 4000, Thinking: th, Messages: []ir.Message{
			{Role: ir.RoleUser, Parts: []ir.Part{{Type: ir.PartText, Text: "Weather?"}}},
			{Role: ir.RoleAssistant, Parts: answer},
			{Role: ir.RoleUser, Parts: []ir.Part{{Type: ir.PartToolResult, ToolCallID: "toolu_1", Content: []ir.Part{{Type: ir.PartText, Text: "18C"}}}}},
		}}
	}
	low := &ir.Thinking{Mode: ir.ThinkingEnabled, Effort: "low"}
	const adaptive = `"thinking":{"type":"adaptive"}`
	for _, tc := range []struct {
		name     string
		req      *ir.Request
		thinking string // the body's thinking member
		beta     bool
	}{
		{"opus-5-5 with thinking back", loop("claude-opus-5-5", low, true), adaptive, true},
		{"opus-5-5, no effort asked", loop("claude-opus-5-5", nil, true), adaptive, true},
		{"opus-5-5 without thinking back", loop("claude-opus-5-5", low, false), adaptive, false},
		{"opus-4-7 with thinking back", loop("claude-opus-4-7", low, true), adaptive, false},
		{"haiku-4-5 with thinking back", loop("claude-haiku-4-5", low, true), `"thinking":{"type":"enabled","budget_tokens":1024}`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, betas, err := EncodeRequestBetas(tc.req, RequestOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(b), tc.thinking) || strings.Contains(string(b), "block_binding") {
				t.Errorf("body %s, want %s", b, tc.thinking)
			}
			if got := slices.Contains(betas, ThinkingBindingBeta); got != tc.beta {
				t.Errorf("betas %q, want the binding beta: %v", betas, tc.beta)
			}
			if !tc.beta {
				return
			}
			bound, err := DropMismatchedThinking(b)
			if want := `"thinking":{"type":"adaptive","block_binding":{"prefix_mismatch_behavior":"drop_block"}}`; err != nil ||
				!strings.Contains(string(bound), want) {
				t.Errorf("DropMismatchedThinking: %v %s, want %s", err, bound, want)
			}
		})
	}
}

// TestIsBindingRefusal: the provider's refusal of a block bound to a
// different conversation, not its other 400s.
func TestIsBindingRefusal(t *testing.T) {
	for body, want := range map[string]bool{
		`{"type":"error","error":{"type":"invalid_request_error","message":"messages.5.content.0: Invalid ` + "`signature`" + ` in ` + "`thinking`" +
			` block. The block is bound to a different conversation. Remove the block or set ` + "`thinking.block_binding.prefix_mismatch_behavior`" + ` to \"drop_block\"."}}`: true,
		`{"type":"error","error":{"type":"invalid_request_error","message":"messages.1.content.0.type: Expected ` + "`thinking`" + `, but found ` + "`tool_use`" + `."}}`: false,
		`{"type":"error","error":{"type":"overloaded_error","message":"bound to a different conversation"}}`:                                                              false,
		`not json`: false,
	} {
		if got := IsBindingRefusal([]byte(body)); got != want {
			t.Errorf("IsBindingRefusal(%s) = %v, want %v", body, got, want)
		}
	}
}

// TestNewestGeneration: the models that take adaptive thinking only and
// refuse sampling parameters, by their version, later generations
// included.
func TestNewestGeneration(t *testing.T) {
	for model, want := range map[string]bool{
		"claude-opus-4-7": true, "claude-opus-4-8-20260528": true, "claude-opus-5": true, "claude-opus-5-5": true,
		"claude-sonnet-5": true, "claude-haiku-5-5": true, "claude-opus-6": true, "claude-sonnet-6-1": true,
		"claude-fable-5-1": true, "claude-mythos-preview": true,
		"claude-opus-4-6": false, "claude-opus-4-5-20251101": false, "claude-sonnet-4-5": false, "claude-haiku-4-5": false,
		"claude-3-7-sonnet-20250219": false, "claude-3-opus-20240229": false, "gpt-5": false, "glm-4.6": false,
	} {
		if got := adaptiveOnly(model); got != want || GuessSupportsSampling(model) == want {
			t.Errorf("%s: adaptiveOnly %v, GuessSupportsSampling %v; want %v and %v", model, got, GuessSupportsSampling(model), want, !want)
		}
	}
}
