//go:build cgo

package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"
)

const (
	envChildDB    = "METIS_STORE_TEST_CHILD_DB"
	envChildStart = "METIS_STORE_TEST_CHILD_START"
	envChildName  = "METIS_STORE_TEST_CHILD_NAME"
)

// TestOpenConcurrentProcesses re-executes the test binary so that several
// processes open the same fresh file at the same instant; all must succeed
// and leave one intact schema.
func TestOpenConcurrentProcesses(t *testing.T) {
	if path := os.Getenv(envChildDB); path != "" {
		openAsChild(t, path)
		return
	}
	const procs = 4
	path := filepath.Join(t.TempDir(), "shared", "metis.db")
	start := time.Now().Add(500 * time.Millisecond).UnixNano()
	cmds := make([]*exec.Cmd, procs)
	outs := make([]*strings.Builder, procs)
	for i := range procs {
		cmd := exec.Command(os.Args[0], "-test.run=^TestOpenConcurrentProcesses$", "-test.count=1")
		cmd.Env = append(os.Environ(), envChildDB+"="+path,
			envChildStart+"="+strconv.FormatInt(start, 10), envChildName+"="+fmt.Sprint("child", i))
		outs[i] = new(strings.Builder)
		cmd.Stdout, cmd.Stderr = outs[i], outs[i]
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds[i] = cmd
	}
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Errorf("child %d: %v\n%s", i, err, outs[i])
		}
	}
	if t.Failed() {
		return
	}
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer closeStore(t, s)
	db := s.ReadDB()
	if v := queryInt(t, db, `PRAGMA user_version`); v != schemaVersion {
		t.Fatalf("user_version = %d", v)
	}
	if n := queryInt(t, db, `SELECT count(*) FROM events`); n != procs {
		t.Fatalf("%d events, want one per child", n)
	}
	if n := queryInt(t, db, `SELECT count(*) FROM gateway_keys`); n != procs {
		t.Fatalf("%d keys, want one per child", n)
	}
	if v := queryInt(t, db, `SELECT value FROM meta WHERE name = 'keys_version'`); v != procs {
		t.Fatalf("keys_version = %d, want %d", v, procs)
	}
	if mode := queryString(t, db, `PRAGMA journal_mode`); mode != "wal" {
		t.Fatalf("journal_mode = %q", mode)
	}
	assertSchema(t, s)
}

// openAsChild runs in a child process: wait for the common start instant,
// open, write a key and an event, close.
func openAsChild(t *testing.T, path string) {
	startNS, _ := strconv.ParseInt(os.Getenv(envChildStart), 10, 64)
	time.Sleep(time.Until(time.Unix(0, startNS)))
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("child Open: %v", err)
	}
	name := os.Getenv(envChildName)
	if _, _, err := s.IssueKey(context.Background(), IssueParams{Name: name}); err != nil {
		t.Fatalf("child IssueKey: %v", err)
	}
	s.Enqueue(Event{Type: TypeRouteDecided, Payload: map[string]string{"child": name}})
	closeStore(t, s)
}

func queryString(t testing.TB, db *sql.DB, q string) string {
	t.Helper()
	var v string
	if err := db.QueryRow(q).Scan(&v); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return v
}

// assertSchema checks that every table, index and trigger of schemaV1 (but
// sessions_last, which schema 3 replaces by sessions_window, and
// calls_session, which schema 4 replaces by calls_session_sums) exists
// exactly once.
func assertSchema(t *testing.T, s *Store) {
	t.Helper()
	want := map[string]string{
		"events": "table", "calls": "table", "rollup_hour": "table", "rollup_day": "table",
		"sessions": "table", "gateway_keys": "table", "meta": "table",
		"events_ts": "index", "calls_ts": "index", "calls_key_ts": "index", "calls_session_sums": "index",
		"sessions_window":  "index",
		"gateway_keys_ins": "trigger", "gateway_keys_upd": "trigger", "gateway_keys_del": "trigger",
	}
	for name, typ := range want {
		if n := queryInt(t, s.ReadDB(), `SELECT count(*) FROM sqlite_schema WHERE name = ? AND type = ?`, name, typ); n != 1 {
			t.Errorf("%s %s: %d in sqlite_schema", typ, name, n)
		}
	}
	if n := queryInt(t, s.ReadDB(), `SELECT count(*) FROM sqlite_schema WHERE name = 'calls_session'`); n != 0 {
		t.Errorf("index calls_session: %d in sqlite_schema, want 0 (schema 4 drops it)", n)
	}
	if n := queryInt(t, s.ReadDB(), `SELECT count(*) FROM meta`); n != 1 {
		t.Errorf("meta has %d rows", n)
	}
}

// TestMigrationIdempotent: opening an existing file, or running migrate on
// one, changes nothing.
func TestMigrationIdempotent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.IssueKey(context.Background(), IssueParams{Name: "k"}); err != nil {
		t.Fatal(err)
	}
	// A dropped index stays dropped: a migration at the current user_version
	// must not re-run the schema.
	if _, err := s.db.Exec(`DROP INDEX sessions_user_last`); err != nil {
		t.Fatal(err)
	}
	if err := migrate(context.Background(), s.db, false, zap.NewNop()); err != nil {
		t.Fatalf("second migrate: %v", err)
	}
	closeStore(t, s)
	s, err = Open(path, Options{})
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer closeStore(t, s)
	db := s.ReadDB()
	if v := queryInt(t, db, `PRAGMA user_version`); v != schemaVersion {
		t.Fatalf("user_version = %d", v)
	}
	if v := queryInt(t, db, `SELECT value FROM meta WHERE name = 'keys_version'`); v != 1 {
		t.Fatalf("keys_version = %d after reopen, want 1", v)
	}
	if n := queryInt(t, db, `SELECT count(*) FROM sqlite_schema WHERE name = 'sessions_user_last'`); n != 0 {
		t.Fatal("schema re-applied on an up-to-date database")
	}
	if keys, err := s.ListKeys(context.Background()); err != nil || len(keys) != 1 {
		t.Fatalf("ListKeys = %v, %v", keys, err)
	}
}

// TestNewerSchemaRejected: a file from a newer build is refused clearly.
func TestNewerSchemaRejected(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.db.Exec(`PRAGMA user_version = 99`); err != nil {
		t.Fatal(err)
	}
	closeStore(t, s)
	_, err = Open(path, Options{})
	if err == nil || !strings.Contains(err.Error(), "newer") {
		t.Fatalf("Open = %v, want a newer-schema error", err)
	}
}

// TestFilePermissions: the folder is created 0700 and the database (and its
// WAL) 0600; an existing folder keeps its mode.
func TestFilePermissions(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	s, err := Open(filepath.Join(dir, "metis.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Enqueue(Event{Type: TypeRouteDecided})
	syncStore(t, s)
	checkMode(t, dir, 0o700)
	checkMode(t, filepath.Dir(dir), 0o700)
	checkMode(t, s.Path(), 0o600)
	checkMode(t, s.Path()+"-wal", 0o600)
	closeStore(t, s)

	existing := filepath.Join(t.TempDir(), "shared")
	if err := os.Mkdir(existing, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(existing, 0o750); err != nil {
		t.Fatal(err)
	}
	s, err = Open(filepath.Join(existing, "metis.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	closeStore(t, s)
	checkMode(t, existing, 0o750)
}

func checkMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != want {
		t.Errorf("%s: mode %o, want %o", path, got, want)
	}
}

// TestUnwritablePath: a location that cannot hold the file gives an error
// naming the store and the path. (A path below a regular file fails even for
// root, unlike permission bits.)
func TestUnwritablePath(t *testing.T) {
	blocker := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(blocker, "sub", "metis.db")
	_, err := Open(path, Options{})
	if err == nil {
		t.Fatal("Open succeeded below a regular file")
	}
	if want := "opening trace store " + path + ": "; !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("error %q does not start with %q", err, want)
	}
	if !errors.Is(err, syscall.ENOTDIR) {
		t.Fatalf("error %q does not wrap ENOTDIR", err)
	}
	// A directory where the file should be.
	dirAsFile := t.TempDir()
	if _, err := Open(dirAsFile, Options{}); err == nil || !strings.Contains(err.Error(), "opening trace store") {
		t.Fatalf("Open(directory) = %v", err)
	}
}

// TestRelativePathMadeAbsolute: Path is absolute even for a relative input.
func TestRelativePathMadeAbsolute(t *testing.T) {
	t.Chdir(t.TempDir())
	s, err := Open(filepath.Join("rel", "m.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer closeStore(t, s)
	if !filepath.IsAbs(s.Path()) {
		t.Fatalf("Path() = %q", s.Path())
	}
}

// TestUpgradeFromV1 opens a database written by the first schema: the
// analytics indexes of schema 2 are added, the data kept.
func TestUpgradeFromV1(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v1.db")
	raw, err := sql.Open("sqlite3", "file:"+path+"?_journal_mode=WAL")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec(schemaV1 + `PRAGMA user_version = 1;
		INSERT INTO events VALUES ('01J00000000000000000000000', 'turn.completed', 1, '{}');`); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer closeStore(t, s)
	db := s.ReadDB()
	if v := queryInt(t, db, `PRAGMA user_version`); v != schemaVersion {
		t.Fatalf("user_version = %d, want %d", v, schemaVersion)
	}
	for _, ix := range []string{"rollup_day_key", "rollup_hour_key", "sessions_user_last", "sessions_key_last"} {
		if n := queryInt(t, db, `SELECT count(*) FROM sqlite_schema WHERE type = 'index' AND name = ?`, ix); n != 1 {
			t.Errorf("index %s missing after upgrade", ix)
		}
	}
	if n := queryInt(t, db, `SELECT count(*) FROM events`); n != 1 {
		t.Errorf("events lost in the upgrade: %d", n)
	}
}
