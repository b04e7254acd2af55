//go:build cgo

package sqlitefile_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
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

// TestPrepareKeepsOpenLocks: Prepare run again on a database this process
// has open (the budget ledger prepares the trace store's file) must not
// drop SQLite's locks on it. SQLite's locks are POSIX record locks, owned by
// the process and released by closing any descriptor of the file. Without
// its shared lock the process looks absent to others: a sqlite3 shell that
// reads the file takes the exclusive lock on close, checkpoints and deletes
// the WAL, and the writer's later commits go to a file nobody else sees.
func TestPrepareKeepsOpenLocks(t *testing.T) {
	ctx := context.Background()
	path, err := sqlitefile.Prepare(filepath.Join(t.TempDir(), "m.db"))
	if err != nil {
		t.Fatal(err)
	}
	w, err := sqlitefile.OpenWriter(path, "_journal_mode=WAL", "_busy_timeout=5000", "_synchronous=NORMAL")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.ExecContext(ctx, `PRAGMA wal_autocheckpoint = 0; CREATE TABLE t (v INTEGER); INSERT INTO t VALUES (1)`); err != nil {
		t.Fatal(err)
	}
	if !sharedLockSeenByOtherProcess(t, path) {
		t.Fatal("another process sees no SQLite shared lock on a database this process has open")
	}
	if _, err := sqlitefile.Prepare(path); err != nil {
		t.Fatal(err)
	}
	if !sharedLockSeenByOtherProcess(t, path) {
		t.Fatal("Prepare on an open database released this process's SQLite shared lock")
	}
	// What a user does: read the file with the sqlite3 shell while the
	// writer runs, then look for the writer's next commit.
	cli, err := exec.LookPath("sqlite3")
	if err != nil {
		if os.Getenv("METIS_REQUIRE_E2E") == "1" {
			t.Fatalf("sqlite3 shell missing (run tools/install.sh): %v", err)
		}
		t.Skipf("no sqlite3 shell on PATH (the lock checks above passed): %v", err)
	}
	if out, err := exec.Command(cli, path, "SELECT count(*) FROM t").CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "1" {
		t.Fatalf("sqlite3 shell: %q, %v", out, err)
	}
	if _, err := os.Stat(path + "-wal"); err != nil {
		t.Fatalf("the WAL is gone after a sqlite3 shell read the database: %v", err)
	}
	if _, err := w.ExecContext(ctx, `INSERT INTO t VALUES (2)`); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(cli, path, "SELECT count(*) FROM t").CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "2" {
		t.Fatalf("sqlite3 shell after the next commit: %q, %v; want 2", out, err)
	}
}

// sharedLockSeenByOtherProcess asks a child process (TestLockProbeChild)
// whether some process holds a lock on SQLite's shared-lock byte range of
// path.
func sharedLockSeenByOtherProcess(t *testing.T, path string) bool {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run", "^TestLockProbeChild$", "-test.v")
	cmd.Env = append(os.Environ(), "SQLITEFILE_PROBE_DB="+path)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("lock probe: %v\n%s", err, out)
	}
	switch {
	case strings.Contains(string(out), "probe=locked"):
		return true
	case strings.Contains(string(out), "probe=free"):
		return false
	}
	t.Fatalf("lock probe printed no answer:\n%s", out)
	return false
}

// TestLockProbeChild is sharedLockSeenByOtherProcess's child; it does
// nothing unless SQLITEFILE_PROBE_DB names a database.
func TestLockProbeChild(t *testing.T) {
	path := os.Getenv("SQLITEFILE_PROBE_DB")
	if path == "" {
		t.Skip("only a child of TestPrepareKeepsOpenLocks")
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// The range a writer must lock exclusively: SQLite's SHARED_FIRST
	// (PENDING_BYTE 0x40000000 + 2) and SHARED_SIZE 510 bytes.
	lk := syscall.Flock_t{Type: syscall.F_WRLCK, Whence: 0, Start: 0x40000000 + 2, Len: 510}
	if err := syscall.FcntlFlock(f.Fd(), syscall.F_GETLK, &lk); err != nil {
		t.Fatal(err)
	}
	if lk.Type == syscall.F_UNLCK {
		fmt.Println("probe=free")
	} else {
		fmt.Printf("probe=locked by pid %d\n", lk.Pid)
	}
}
