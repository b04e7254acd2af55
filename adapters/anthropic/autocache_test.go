package anthropic

import (
	"strings"
	"testing"

	"github.com/metisgateway/metis/ir"
)

// TestEncodeRequestAutoCache: AutoCache adds a top-level cache_control to a
// request without a breakpoint of its own, including one whose text
// mentions "cache_control" (its quotes are escaped in the body), and none
// to a request with a block's own marker or without AutoCache.
func TestEncodeRequestAutoCache(t *testing.T) {
	const top = `,"cache_control":{"type":"ephemeral"}}`
	text := func(s string, cc string) *ir.Request {
		p := ir.Part{Type: ir.PartText, Text: s}
		if cc != "" {
			p.CacheControl = []byte(cc)
		}
		return &ir.Request{Model: "claude-haiku-4-5", MaxTokens: 16,
			Messages: []ir.Message{{Role: ir.RoleUser, Parts: []ir.Part{p}}}}
	}
	for _, tc := range []struct {
		name    string
		req     *ir.Request
		auto    bool
		wantTop bool
	}{
		{"no breakpoint", text("hello", ""), true, true},
		{"text naming the member", text(`what is "cache_control"?`, ""), true, true},
		{"own breakpoint", text("hello", `{"type":"ephemeral"}`), true, false},
		{"off", text("hello", ""), false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := EncodeRequest(tc.req, RequestOptions{AutoCache: tc.auto})
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.HasSuffix(string(b), top); got != tc.wantTop {
				t.Errorf("top-level cache_control %v, want %v: %s", got, tc.wantTop, b)
			}
		})
	}
}
