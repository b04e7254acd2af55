package translate

import (
	"testing"

	"github.com/tidwall/gjson"
)

// Review 26R: the 26V fix to DecodeRequestParsed makes a Thinking for
// every thinking member whose type is "disabled" or "" — and "" is also
// what gjson reads from "thinking": null (a client that serializes unset
// fields as null). Such a request now reaches an OpenAI reasoning model
// without the reasoning_effort its output_config.effort asked for, where
// the same request without the null member (and this one before the fix)
// sends it.
func TestThinkingNullReadAsAbsent(t *testing.T) {
	without := `{"model":"x","max_tokens":64,"output_config":{"effort":"high"},"messages":[{"role":"user","content":"hi"}]}`
	withNull := `{"model":"x","max_tokens":64,"thinking":null,"output_config":{"effort":"high"},"messages":[{"role":"user","content":"hi"}]}`
	effort := func(body string) gjson.Result {
		out, _, err := AnthropicToOpenAIRequest([]byte(body), "gpt-5-nano", Options{})
		if err != nil {
			t.Fatal(err)
		}
		return gjson.GetBytes(out, "reasoning_effort")
	}
	a, b := effort(without), effort(withNull)
	if a.Raw != b.Raw {
		t.Errorf("output_config.effort high: reasoning_effort %s without a thinking member, %s with \"thinking\": null; "+
			"a null member is an absent one", a.Raw, b.Raw)
	}
}

// Review 26R: the 26V fix made the member order irrelevant by letting
// thinking disabled win over output_config.effort, which sends no
// reasoning_effort at all: an OpenAI reasoning model then reasons at its
// default (medium for gpt-5), more than the effort low the client asked
// for. Before the fix the thinking-first order sent "low"; both orders
// should send the effort asked for (or less), never the default.
func TestThinkingDisabledKeepsTheEffortAskedFor(t *testing.T) {
	for _, body := range []string{
		`{"model":"x","max_tokens":64,"thinking":{"type":"disabled"},"output_config":{"effort":"low"},"messages":[{"role":"user","content":"hi"}]}`,
		`{"model":"x","max_tokens":64,"output_config":{"effort":"low"},"thinking":{"type":"disabled"},"messages":[{"role":"user","content":"hi"}]}`,
	} {
		out, _, err := AnthropicToOpenAIRequest([]byte(body), "gpt-5-nano", Options{})
		if err != nil {
			t.Fatal(err)
		}
		switch e := gjson.GetBytes(out, "reasoning_effort"); e.Str {
		case "low", "minimal":
		default:
			t.Errorf("thinking disabled + output_config.effort low: reasoning_effort %s (absent: the model's default, medium); want low or less\n%s", e.Raw, body)
		}
	}
}

// A thinking member that is not an object ("thinking": "enabled", as a
// hand-written body might say) is Anthropic's 400; read as absent, the
// call went to the OpenAI model without the thinking asked for.
func TestThinkingNotAnObjectRefused(t *testing.T) {
	for _, v := range []string{`"enabled"`, `true`, `1024`, `[]`} {
		body := `{"model":"x","max_tokens":64,"thinking":` + v + `,"messages":[{"role":"user","content":"hi"}]}`
		if _, _, err := AnthropicToOpenAIRequest([]byte(body), "gpt-5-nano", Options{}); err == nil {
			t.Errorf("thinking %s: translated, want a 400 naming thinking", v)
		}
	}
}
