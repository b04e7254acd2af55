package openai

import (
	"testing"

	"github.com/metisgateway/metis/ir"
)

// A Responses API object's usage is read in the gateway's convention:
// input without the cached tokens, reasoning within the output, one web
// search per web_search_call item; a failed response keeps its usage.
func TestResponsesUsage(t *testing.T) {
	body := `{"id":"resp_1","object":"response","status":"failed","model":"gpt-5-mini-2025-08-07","service_tier":"flex",
		"error":{"code":"server_error","message":"x"},
		"output":[{"type":"web_search_call","id":"ws_1"},{"type":"web_search_call","id":"ws_2"},{"type":"message","id":"m"}],
		"usage":{"input_tokens":10000,"input_tokens_details":{"cached_tokens":2000},"output_tokens":105,
		"output_tokens_details":{"reasoning_tokens":100},"total_tokens":10105}}`
	u, meta, err := ResponsesUsage([]byte(body))
	want := ir.Usage{InputTokens: 8000, CacheReadInputTokens: 2000, OutputTokens: 105, ReasoningTokens: 100, ServiceTier: "flex", WebSearchRequests: 2}
	if err != nil || u != want || meta.Model != "gpt-5-mini-2025-08-07" || meta.ID != "resp_1" || meta.FinishReason != "failed" {
		t.Errorf("ResponsesUsage = %+v %+v %v, want %+v", u, meta, err, want)
	}
	for _, bad := range []string{`[]`, `{"error":{"code":"rate_limit_exceeded","message":"slow down"}}`, `{"id":"resp_2","status":"queued","usage":null}`} {
		if _, _, err := ResponsesUsage([]byte(bad)); err == nil {
			t.Errorf("ResponsesUsage(%s): no error", bad)
		}
	}
}

// The stream tracker takes the model from response.created, counts delta
// bytes until the terminal event, then its usage; an error event, flat or
// nested, is read by its code.
func TestResponsesStreamTracker(t *testing.T) {
	var tr ResponsesStreamTracker
	for _, ev := range []string{
		`{"type":"response.created","sequence_number":0,"response":{"id":"resp_1","model":"gpt-5-nano","usage":null}}`,
		`{"type":"response.output_text.delta","sequence_number":4,"delta":"Hello there"}`,
		`{"type":"response.function_call_arguments.delta","sequence_number":5,"delta":"{\"a\":1}"}`,
	} {
		tr.Observe([]byte(ev))
	}
	if u := tr.Usage(); !u.Estimated || u.OutputTokens != (11+7+3)/4 || !tr.SawContent() || tr.Complete() || tr.Sequence() != 5 {
		t.Errorf("mid-stream: usage %+v, content %v, complete %v, sequence %d", u, tr.SawContent(), tr.Complete(), tr.Sequence())
	}
	tr.Observe([]byte(`{"type":"response.incomplete","sequence_number":9,"response":{"id":"resp_1","model":"gpt-5-nano-2025-08-07","status":"incomplete",
		"usage":{"input_tokens":900,"input_tokens_details":{"cached_tokens":0},"output_tokens":64,"output_tokens_details":{"reasoning_tokens":60}}}}`))
	if u := tr.Usage(); u.Estimated || u.InputTokens != 900 || u.OutputTokens != 64 || u.ReasoningTokens != 60 || !tr.Complete() ||
		tr.Meta().Model != "gpt-5-nano-2025-08-07" || tr.Meta().FinishReason != "incomplete" {
		t.Errorf("after response.incomplete: %+v %+v", u, tr.Meta())
	}
	if _, _, ok := tr.Err(); ok {
		t.Error("an incomplete response reported as an error")
	}
	for _, ev := range []string{
		`{"type":"error","code":"rate_limit_exceeded","message":"slow","sequence_number":2}`,
		`{"type":"error","sequence_number":2,"error":{"type":"tokens","code":"rate_limit_exceeded","message":"slow"}}`,
	} {
		var tr ResponsesStreamTracker
		tr.Observe([]byte(ev))
		if typ, msg, ok := tr.Err(); !ok || typ != "rate_limit_exceeded" || msg != "slow" {
			t.Errorf("%s: Err() = %q %q %v", ev, typ, msg, ok)
		}
	}
}
