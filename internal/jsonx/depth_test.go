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
