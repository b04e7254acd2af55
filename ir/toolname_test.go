package ir

import (
	"strings"
	"testing"
)

func TestSafeToolName(t *testing.T) {
	for _, name := range []string{"get_weather", "a", "A-b_9", strings.Repeat("x", 64)} {
		if got := SafeToolName(name); got != name {
			t.Errorf("valid name %q changed to %q", name, got)
		}
	}
	seen := map[string]string{}
	for _, name := range []string{
		strings.Repeat("x", 65), strings.Repeat("x", 66), "files.read", "files_read", "files:read", "", "ünïcode", "mcp__server__" + strings.Repeat("tool", 30),
	} {
		got := SafeToolName(name)
		if !ValidToolName(got) {
			t.Errorf("SafeToolName(%q) = %q is not valid", name, got)
		}
		if SafeToolName(name) != got {
			t.Errorf("not deterministic for %q", name)
		}
		if prev, ok := seen[got]; ok && prev != name {
			t.Errorf("%q and %q both map to %q", prev, name, got)
		}
		seen[got] = name
	}
}

func TestToolNamesMapBack(t *testing.T) {
	var m ToolNames
	long := strings.Repeat("n", 80)
	up := m.Upstream(long)
	if up == long || m.Client(up) != long {
		t.Errorf("upstream %q maps back to %q", up, m.Client(up))
	}
	if m.Upstream("ok") != "ok" || m.Client("ok") != "ok" || m.Len() != 1 {
		t.Errorf("valid names must not be recorded (len %d)", m.Len())
	}
	var nilMap *ToolNames
	if nilMap.Upstream("a.b") == "a.b" || nilMap.Client("x") != "x" || nilMap.Len() != 0 {
		t.Error("nil ToolNames must still sanitize and map to itself")
	}
}

func TestSafeToolCallID(t *testing.T) {
	cases := map[string]string{"toolu_01A": "toolu_01A", "call.c:1": "call_c_1", "": "toolu_empty"}
	for in, want := range cases {
		if got := SafeToolCallID(in); got != want {
			t.Errorf("SafeToolCallID(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestEstimateInputTokens(t *testing.T) {
	r := &Request{
		System:   []Part{{Type: PartText, Text: strings.Repeat("a", 400)}},
		Messages: []Message{{Role: RoleUser, Parts: []Part{{Type: PartText, Text: strings.Repeat("b", 400)}, {Type: PartImage, Data: strings.Repeat("A", 100000)}}}},
	}
	got := r.EstimateInputTokens()
	if got < 200 || got > 1300 {
		t.Errorf("estimate %d for 800 characters and one image", got)
	}
	if (&Request{}).EstimateInputTokens() != 1 {
		t.Error("an empty request estimates to 1")
	}
}

func TestKindForStatus(t *testing.T) {
	cases := map[int]ErrorKind{400: ErrInvalidRequest, 401: ErrAuthentication, 403: ErrPermission, 404: ErrNotFound, 413: ErrRequestTooLarge,
		429: ErrRateLimit, 500: ErrAPI, 503: ErrOverloaded, 529: ErrOverloaded, 504: ErrTimeout, 422: ErrInvalidRequest}
	for st, want := range cases {
		if got := KindForStatus(st); got != want {
			t.Errorf("KindForStatus(%d) = %s, want %s", st, got, want)
		}
	}
}
