package jsonx

import (
	"strings"
	"testing"
)

func TestTooDeep(t *testing.T) {
	nest := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	for _, tc := range []struct {
		in   string
		max  int
		want bool
	}{
		{`{"a":` + nest(3) + `}`, 4, false},
		{`{"a":` + nest(4) + `}`, 4, true},
		{`{"a":"` + strings.Repeat("[", 50) + `"}`, 4, false}, // brackets in a string
		{`{"a":"\"[[[[[[","b":[[1]]}`, 3, false},              // an escaped quote does not end the string
		{`{"a":[{"b":[{"c":[{}]}]}]}`, 6, true},
		{`{"a":[{"b":[{"c":[{}]}]}]}`, 7, false},
		{`{"a":[1],"b":[2],"c":[3],"d":[4],"e":[5]}`, 2, false}, // siblings do not add up
		{`{"a":"[[[[[[`, 2, false},                              // unterminated string
	} {
		if got := TooDeep(tc.in, tc.max); got != tc.want {
			t.Errorf("TooDeep(%.40q, %d) = %v, want %v", tc.in, tc.max, got, tc.want)
		}
	}
}

func TestHasKey(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{`{"a":{"b":[{"cache_control":{}}]}}`, true},
		{`{"a":{"b":[{"cache\u005fcontrol" : {}}]}}`, true},
		{`{"a":"cache_control","b":["cache_control"]}`, false}, // values, not names
		{`{"a":"x\":\"cache_control\":1"}`, false},             // inside a string
		{`{"cache_contro":1,"xcache_control":2}`, false},
		{`{"a":[` + strings.Repeat("[", 900) + `"cache_control"` + strings.Repeat("]", 900) + `]}`, false},
	} {
		if got := HasKey(tc.in, "cache_control"); got != tc.want {
			t.Errorf("HasKey(%.60q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

// BenchmarkHasKeyDeep is a 4 MB body nested 999 levels deep: one pass,
// where a recursive walk took about a second.
func BenchmarkHasKeyDeep(b *testing.B) {
	s := `{"x":` + strings.Repeat("[", 999) + `"` + strings.Repeat(`caf\u00e9 `, 400_000) + `"` + strings.Repeat("]", 999) + `}`
	b.SetBytes(int64(len(s)))
	for range b.N {
		HasKey(s, "cache_control")
	}
}
