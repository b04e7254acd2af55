package errtext_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/metisgateway/metis/adapters/internal/errtext"
)

func TestFallback(t *testing.T) {
	long := strings.Repeat("a", 1023) + "é" + strings.Repeat("b", 10)
	for _, c := range []struct {
		status int
		body   string
		want   string
	}{
		{502, "  <html>bad gateway</html>\n", "<html>bad gateway</html>"},
		{502, "", "Bad Gateway"},
		{429, " \n\t", "Too Many Requests"},
		{599, "", "upstream error"},
		{500, strings.Repeat("x", 2000), strings.Repeat("x", 1024)},
		// The cut would split é: it goes back to the last whole rune.
		{500, long, strings.Repeat("a", 1023)},
		{500, "\xff\xfe", "\xff\xfe"},
	} {
		got := errtext.Fallback(c.status, []byte(c.body))
		if got != c.want {
			t.Errorf("Fallback(%d, %.40q) = %.40q (len %d), want %.40q (len %d)", c.status, c.body, got, len(got), c.want, len(c.want))
		}
		if len(c.body) > 1024 && !utf8.ValidString(got) {
			t.Errorf("Fallback(%d, %.40q) cut inside a rune", c.status, c.body)
		}
	}
}
