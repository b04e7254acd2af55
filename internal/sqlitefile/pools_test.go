//go:build cgo

package sqlitefile_test

import (
	"context"
	"path/filepath"
	"testing"

	_ "github.com/mattn/go-sqlite3"

	"github.com/metisgateway/metis/internal/sqlitefile"
)

// TestPools: the writer is one connection that writes, the readers a pool
// of n that reads what it wrote and refuses to write.
func TestPools(t *testing.T) {
	ctx := context.Background()
	path, err := sqlitefile.Prepare(filepath.Join(t.TempDir(), "m.db"))
	if err != nil {
		t.Fatal(err)
	}
	w, err := sqlitefile.OpenWriter(path, "_journal_mode=WAL", "_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if got := w.Stats().MaxOpenConnections; got != 1 {
		t.Errorf("writer MaxOpenConnections = %d, want 1", got)
	}
	if _, err := w.ExecContext(ctx, `CREATE TABLE t (v INTEGER); INSERT INTO t VALUES (42)`); err != nil {
		t.Fatal(err)
	}
	r, err := sqlitefile.OpenReaders(path, 3)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if got := r.Stats().MaxOpenConnections; got != 3 {
		t.Errorf("readers MaxOpenConnections = %d, want 3", got)
	}
	var v int
	if err := r.QueryRowContext(ctx, `SELECT v FROM t`).Scan(&v); err != nil || v != 42 {
		t.Fatalf("read %d, %v; want 42", v, err)
	}
	if _, err := r.ExecContext(ctx, `INSERT INTO t VALUES (1)`); err == nil {
		t.Fatal("a reader wrote")
	}
}
