//go:build !cgo

package store

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

// TestOpenWithoutCGO: a CGO_ENABLED=0 build fails at Open with an actionable
// error instead of go-sqlite3's stub failing later.
func TestOpenWithoutCGO(t *testing.T) {
	_, err := Open(filepath.Join(t.TempDir(), "m.db"), Options{})
	if !errors.Is(err, ErrNoCGO) || !strings.Contains(err.Error(), "CGO_ENABLED=1") {
		t.Fatalf("Open = %v, want ErrNoCGO", err)
	}
}
