package translate

import "testing"

// A lone surrogate escape followed by another \u escape: JavaScript's
// JSON.stringify writes a string cut inside a surrogate pair so (a tool
// output truncated before an ANSI escape, "\ud83d\u001b[0m"). The text
// upstream keeps the escape after it; gjson before v1.20.2 read the two
// escapes as one pair and the ESC was lost.
func TestLoneSurrogateKeepsTheEscapeAfterIt(t *testing.T) {
	runRequestCases(t, []requestCase{{
		name: "openai to anthropic", upstream: "claude-sonnet-4-5",
		in:   `{"model":"gpt-4o","max_tokens":10,"messages":[{"role":"user","content":"a\ud83d\u001b[0mb"}]}`,
		want: `{"model":"claude-sonnet-4-5","max_tokens":10,"messages":[{"role":"user","content":[{"type":"text","text":"a\ufffd\u001b[0mb"}]}]}`,
	}}, OpenAIToAnthropicRequest)
	runRequestCases(t, []requestCase{{
		name: "anthropic to openai", upstream: "gpt-4o",
		in:   `{"model":"claude-sonnet-4-5","max_tokens":10,"messages":[{"role":"user","content":[{"type":"text","text":"a\udc00\u2026b"}]}]}`,
		want: `{"model":"gpt-4o","max_completion_tokens":10,"messages":[{"role":"user","content":"a\ufffd\u2026b"}]}`,
	}}, AnthropicToOpenAIRequest)
}
