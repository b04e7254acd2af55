package openai

import "testing"

// Review 25R2: an empty or false error member beside a normal chunk is no
// error (the OpenAI SDKs test it for truth: Python data.get("error"), Node
// data.error). Since 9f7d12a any JSON string is one.
func TestReview2StreamTrackerEmptyErrorMember(t *testing.T) {
	for _, chunk := range []string{
		`{"id":"c1","object":"chat.completion.chunk","error":"","choices":[{"index":0,"delta":{"content":"Hi"}}]}`,
		`{"id":"c1","object":"chat.completion.chunk","error":null,"choices":[{"index":0,"delta":{"content":"Hi"}}]}`,
		`{"id":"c1","object":"chat.completion.chunk","error":false,"choices":[{"index":0,"delta":{"content":"Hi"}}]}`,
	} {
		var tr StreamTracker
		tr.Observe([]byte(chunk))
		if typ, msg, ok := tr.Err(); ok {
			t.Errorf("%s: read as an error (%q, %q)", chunk, typ, msg)
		}
	}
}
