package sqlitefile_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/metisgateway/metis/internal/sqlitefile"
)

// checkModes fails t for each path whose permission bits are not want's.
func checkModes(t *testing.T, want map[string]os.FileMode) {
	t.Helper()
	for path, mode := range want {
		if fi, err := os.Stat(path); err != nil {
			t.Error(err)
		} else if got := fi.Mode().Perm(); got != mode {
			t.Errorf("%s: mode %o, want %o", path, got, mode)
		}
	}
}

// TestPrepareModes: missing folders are created 0700 and the file 0600.
func TestPrepareModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	path := filepath.Join(dir, "m.db")
	abs, err := sqlitefile.Prepare(path)
	if err != nil || abs != path {
		t.Fatalf("Prepare = %q, %v; want %q", abs, err, path)
	}
	checkModes(t, map[string]os.FileMode{dir: 0o700, filepath.Dir(dir): 0o700, path: 0o600})
	if fi, err := os.Stat(path); err != nil || fi.Size() != 0 || !fi.Mode().IsRegular() {
		t.Fatalf("database file: %v, %v", fi, err)
	}
}

// TestPrepareKeepsExisting: an existing folder and file keep their modes
// and the file its content.
func TestPrepareKeepsExisting(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "shared")
	if err := os.Mkdir(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "m.db")
	if err := os.WriteFile(path, []byte("data"), 0o640); err != nil {
		t.Fatal(err)
	}
	// Whatever the umask took away at creation.
	if err := os.Chmod(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o640); err != nil {
		t.Fatal(err)
	}
	if _, err := sqlitefile.Prepare(path); err != nil {
		t.Fatal(err)
	}
	checkModes(t, map[string]os.FileMode{dir: 0o750, path: 0o640})
	if b, err := os.ReadFile(path); err != nil || string(b) != "data" {
		t.Fatalf("content %q, %v", b, err)
	}
}

// TestPrepareRelative: the returned path is absolute.
func TestPrepareRelative(t *testing.T) {
	wd := t.TempDir()
	t.Chdir(wd)
	abs, err := sqlitefile.Prepare(filepath.Join("rel", "m.db"))
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(wd, "rel", "m.db"); abs != want {
		t.Fatalf("abs = %q, want %q", abs, want)
	}
	checkModes(t, map[string]os.FileMode{filepath.Join(wd, "rel"): 0o700, abs: 0o600})
}

// TestPrepareErrors: failures say what could not be created, wrap the
// cause and still return the absolute path.
func TestPrepareErrors(t *testing.T) {
	blocker := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(blocker, "sub", "m.db")
	abs, err := sqlitefile.Prepare(path)
	if err == nil || abs != path || !strings.HasPrefix(err.Error(), "creating folder: ") || !errors.Is(err, syscall.ENOTDIR) {
		t.Fatalf("Prepare below a regular file = %q, %v", abs, err)
	}
	dirAsFile := t.TempDir()
	abs, err = sqlitefile.Prepare(dirAsFile)
	if err == nil || abs != dirAsFile || !strings.HasPrefix(err.Error(), "creating database file: ") {
		t.Fatalf("Prepare(directory) = %q, %v", abs, err)
	}
	// A symlink to a missing file: SQLite would create the target with the
	// umask's mode, not 0600.
	dangling := filepath.Join(t.TempDir(), "m.db")
	if err := os.Symlink(filepath.Join(t.TempDir(), "gone", "m.db"), dangling); err != nil {
		t.Fatal(err)
	}
	if _, err := sqlitefile.Prepare(dangling); err == nil || !strings.Contains(err.Error(), "symlink to a missing file") {
		t.Fatalf("Prepare(dangling symlink) = %v", err)
	}
	fifo := filepath.Join(t.TempDir(), "m.db")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := sqlitefile.Prepare(fifo); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("Prepare(fifo) = %v", err)
	}
}

func TestDSN(t *testing.T) {
	for _, c := range []struct {
		path   string
		params []string
		want   string
	}{
		{"/d/m.db", nil, "file:/d/m.db"},
		{"/d/m.db", []string{"mode=ro"}, "file:/d/m.db?mode=ro"},
		{"/d/a%20b?c#d.db", []string{"_busy_timeout=5000", "_txlock=immediate"}, "file:/d/a%2520b%3fc%23d.db?_busy_timeout=5000&_txlock=immediate"},
	} {
		if got := sqlitefile.DSN(c.path, c.params...); got != c.want {
			t.Errorf("DSN(%q, %q) = %q, want %q", c.path, c.params, got, c.want)
		}
	}
}
