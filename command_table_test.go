package metis

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/metisgateway/metis/store"
)

// A key row written before names were checked cannot break list-keys: its
// control characters are shown escaped, on one line.
func TestListKeysEscapesControlCharacters(t *testing.T) {
	var out bytes.Buffer
	printKeys(&out, []store.Key{{ID: "gk_01", Name: "evil\x1b[2J\ngk_FAKE  injected", CreatedAt: time.Now()}}, time.Now())
	text := out.String()
	if strings.ContainsRune(text, '\x1b') {
		t.Errorf("list-keys printed a raw escape sequence: %q", text)
	}
	if lines := strings.Split(strings.TrimSpace(text), "\n"); len(lines) != 2 || strings.HasPrefix(lines[1], "gk_FAKE") {
		t.Errorf("list-keys printed %d lines for one key:\n%s", len(lines), text)
	}
	if !strings.Contains(text, `"evil\x1b[2J\ngk_FAKE  injected"`) {
		t.Errorf("the name is not shown escaped:\n%s", text)
	}
}
