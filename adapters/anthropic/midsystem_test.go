package anthropic

import (
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/metisgateway/metis/ir"
)

// TestMidConversationSystemMessages: a later system message goes where the
// client put it to a model that takes mid-conversation system messages,
// when it follows a user turn (Anthropic's placement rule: right after a
// user turn), and right after the user turn that follows it when it comes
// before one (Codex's developer messages); otherwise, and to older models,
// it joins the top-level system as before. A run of them is one
// message. (These models all think adaptively only, so a system message
// ending a tool loop's user turn changes no thinking decision.)
func TestMidConversationSystemMessages(t *testing.T) {
	text := func(role ir.Role, s string) ir.Message {
		return ir.Message{Role: role, Parts: []ir.Part{{Type: ir.PartText, Text: s}}}
	}
	call := ir.Message{Role: ir.RoleAssistant, Parts: []ir.Part{{Type: ir.PartToolCall, ToolCallID: "toolu_1", ToolName: "f", Arguments: []byte(`{}`)}}}
	result := ir.Message{Role: ir.RoleUser, Parts: []ir.Part{{Type: ir.PartToolResult, ToolCallID: "toolu_1", Content: []ir.Part{{Type: ir.PartText, Text: "ok"}}}}}
	sys := func(s string) ir.Message { return text(ir.RoleSystem, s) }
	for _, tc := range []struct {
		name, model string
		msgs        []ir.Message
		roles, top  string // the messages' roles; the top-level system's texts
	}{
		{"after tool results, at the end", "claude-opus-5-5", []ir.Message{text(ir.RoleUser, "hi"), call, result, sys("A")},
			"user,assistant,user,system", "S"},
		{"after a user turn, before the answer", "claude-opus-4-8", []ir.Message{text(ir.RoleUser, "hi"), sys("A"), text(ir.RoleAssistant, "yes")},
			"user,system,assistant", "S"},
		{"two in a row", "claude-sonnet-5-5", []ir.Message{text(ir.RoleUser, "hi"), sys("A"), sys("B")}, "user,system", "S"},
		{"before a user message", "claude-opus-5-5", []ir.Message{text(ir.RoleUser, "hi"), text(ir.RoleAssistant, "yes"), sys("A"), text(ir.RoleUser, "go")},
			"user,assistant,user,system", "S"},
		{"before a user turn of two messages, then the answer", "claude-opus-5-5", []ir.Message{text(ir.RoleUser, "hi"), call, sys("A"), result,
			text(ir.RoleUser, "go"), text(ir.RoleAssistant, "done")}, "user,assistant,user,system,assistant", "S"},
		{"before a user message, to an older model", "claude-opus-4-7", []ir.Message{text(ir.RoleUser, "hi"), text(ir.RoleAssistant, "yes"), sys("A"), text(ir.RoleUser, "go")},
			"user,assistant,user", "S|A"},
		{"after an assistant message", "claude-opus-5-5", []ir.Message{text(ir.RoleUser, "hi"), text(ir.RoleAssistant, "yes"), sys("A")},
			"user,assistant", "S|A"},
		{"an older model", "claude-opus-4-7", []ir.Message{text(ir.RoleUser, "hi"), call, result, sys("A")}, "user,assistant,user", "S|A"},
		{"sonnet-5", "claude-sonnet-5", []ir.Message{text(ir.RoleUser, "hi"), call, result, sys("A")}, "user,assistant,user", "S|A"},
		{"claude-3-7-sonnet", "claude-3-7-sonnet-20250219", []ir.Message{text(ir.RoleUser, "hi"), call, result, sys("A")}, "user,assistant,user", "S|A"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &ir.Request{Model: tc.model, MaxTokens: 100, System: []ir.Part{{Type: ir.PartText, Text: "S"}}, Messages: tc.msgs}
			b, err := EncodeRequest(r, RequestOptions{})
			if err != nil {
				t.Fatal(err)
			}
			var roles, top []string
			for _, m := range gjson.GetBytes(b, "messages").Array() {
				roles = append(roles, m.Get("role").Str)
			}
			for _, s := range gjson.GetBytes(b, "system").Array() {
				top = append(top, s.Get("text").Str)
			}
			if strings.Join(roles, ",") != tc.roles || strings.Join(top, "|") != tc.top {
				t.Errorf("messages %s, system %q; want roles %s, system %s", gjson.GetBytes(b, "messages").Raw, top, tc.roles, tc.top)
			}
			if tc.name == "two in a row" {
				if got := gjson.GetBytes(b, "messages.1.content.#.text").Raw; got != `["A","B"]` {
					t.Errorf("the run of system messages went as %s", got)
				}
			}
		})
	}
}
