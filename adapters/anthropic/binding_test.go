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
	} {
		if got := preservedThinking(model); got != want {
			t.Errorf("preservedThinking(%q) = %v, want %v", model, got, want)
		}
	}
}

// TestEncodeRequestBlockBinding: a request carrying thinking back to a
// model with preserved thinking asks for blocks that fail its check to be
// dropped, with the beta that takes, thinking adaptively when the client
// asked for no thinking (the model's default); other models, and requests
// carrying no thinking, are sent as before.
func TestEncodeRequestBlockBinding(t *testing.T) {
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
	const bound = `"thinking":{"type":"adaptive","block_binding":{"prefix_mismatch_behavior":"drop_block"}}`
	for _, tc := range []struct {
		name     string
		req      *ir.Request
		thinking string // the body's thinking member, "" for none
		beta     bool
	}{
		{"opus-5-5 with thinking back", loop("claude-opus-5-5", low, true), bound, true},
		{"opus-5-5, no effort asked", loop("claude-opus-5-5", nil, true), bound, true},
		{"opus-5-5 without thinking back", loop("claude-opus-5-5", low, false), `"thinking":{"type":"adaptive"}`, false},
		{"opus-4-7 with thinking back", loop("claude-opus-4-7", low, true), `"thinking":{"type":"adaptive"}`, false},
		{"haiku-4-5 with thinking back", loop("claude-haiku-4-5", low, true), `"thinking":{"type":"enabled","budget_tokens":1024}`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, betas, err := EncodeRequestBetas(tc.req, RequestOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(b), tc.thinking) {
				t.Errorf("body %s, want %s", b, tc.thinking)
			}
			if got := slices.Contains(betas, ThinkingBindingBeta); got != tc.beta || !tc.beta && strings.Contains(string(b), "block_binding") {
				t.Errorf("betas %q (want the binding beta: %v), body %s", betas, tc.beta, b)
			}
		})
	}
}
