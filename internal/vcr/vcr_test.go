package vcr

import (
	"strings"
	"testing"
)

func TestLoadEveryFixture(t *testing.T) {
	cases := map[string]struct {
		n      int
		status int
		has    string
	}{
		"anthropic_stream_text_then_tool_use.vcr.yaml":        {1, 200, "event: message_stop"},
		"anthropic_nonstream_tool_use_two_turns.vcr.yaml":     {2, 200, `"cache_creation"`},
		"openai_error_400_unsupported_max_tokens.vcr.yaml":    {1, 400, "unsupported_parameter"},
		"openai_nonstream_tool_call_reasoning_usage.vcr.yaml": {1, 200, "reasoning_tokens"},
		"openai_stream_gpt5nano_usage_chunk.vcr.yaml":         {1, 200, "data: [DONE]"},
		"openai_stream_parallel_tool_calls_include_usage.sse": {1, 200, "get_stock_price"},
	}
	for name, want := range cases {
		its, err := Load(name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(its) != want.n {
			t.Fatalf("%s: %d interactions, want %d", name, len(its), want.n)
		}
		if its[0].Status != want.status {
			t.Errorf("%s: status %d, want %d", name, its[0].Status, want.status)
		}
		if !strings.Contains(its[0].ResponseBody, want.has) {
			t.Errorf("%s: body lacks %q", name, want.has)
		}
	}
	ev := MustLoad("anthropic_stream_text_then_tool_use.vcr.yaml")[0].Events()
	if !strings.HasPrefix(ev[0], "event: message_start") || !strings.HasSuffix(ev[0], "\n\n") {
		t.Errorf("first event %q", ev[0])
	}
}
