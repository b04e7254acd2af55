package metis

// The gateway when its trace storage misbehaves (audit 22F): a database
// file deleted or replaced while it runs, one it may not write, another
// application's file, a folder that cannot hold SQLite's -wal and -shm
// files, and a write failure that retrying cannot mend.

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/spf13/cobra"

	"github.com/metisgateway/metis/budget"
	"github.com/metisgateway/metis/internal/fakeupstream"
	"github.com/metisgateway/metis/store"
)

const storageBody = `{"model":"haiku","max_tokens":64,"messages":[{"role":"user","content":"hi"}]}`

// storageCall makes one Anthropic-shape call and returns its status, body and
// how long it took.
func storageCall(t *testing.T, g *testGateway, tok string) (int, string, time.Duration) {
	t.Helper()
	start := time.Now()
	resp := g.post("/v1/messages", tok, storageBody, "Anthropic-Version", "2023-06-01")
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, string(b), time.Since(start)
}

// storageCountCalls counts the calls rows in the database file now at path
// (a fresh connection, as an operator's sqlite3 or a restarted gateway
// would open), -1 when there is no such database.
func storageCountCalls(t *testing.T, path string) int {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		return -1
	}
	db, err := sql.Open("sqlite3", "file:"+path+"?mode=ro&_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM calls`).Scan(&n); err != nil {
		return -1
	}
	return n
}

// TestStorageDatabaseReplacedWhileRunning: the database file is deleted
// (an operator's `rm ~/.metis/metis.db*`) or replaced by a restored backup
// (`mv restore.db metis.db`) while the gateway runs. SQLite goes on with
// the file it opened, and what it writes now is gone at the next restart:
// the gateway used to say nothing (no write error, no drop, no log line).
// It now counts a write error and logs an error, once a minute while it
// lasts, telling the operator to reload or restart; a reload opens the
// file now at the path (keys revoked in it are then refused).
func TestStorageDatabaseReplacedWhileRunning(t *testing.T) {
	t.Run("deleted", func(t *testing.T) {
		g, _ := e2eSetup(t, "")
		_, tok := e2eKey(g, "del")
		if st, b, _ := storageCall(t, g, tok); st != 200 {
			t.Fatalf("first call: %d %s", st, b)
		}
		g.sync()
		for _, suf := range []string{"", "-wal", "-shm"} {
			if err := os.Remove(g.DB + suf); err != nil && !os.IsNotExist(err) {
				t.Fatal(err)
			}
		}
		before := g.app().store.Stats()
		for i := range 5 {
			if st, b, _ := storageCall(t, g, tok); st != 200 {
				t.Fatalf("call %d after the delete: %d %s", i, st, b)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		syncErr := g.app().store.Sync(ctx)
		cancel()
		time.Sleep(1500 * time.Millisecond) // a once-a-second check may notice
		after := g.app().store.Stats()
		onDisk := storageCountCalls(t, g.DB)
		t.Logf("file at the path: %d calls rows (-1: no database); store stats before %+v after %+v; Sync: %v",
			onDisk, before, after, syncErr)
		reported := after.WriteErrors > before.WriteErrors || after.Dropped > before.Dropped || after.QueueLen > 0
		if onDisk < 5 && !reported {
			t.Errorf("5 calls answered after the database file was deleted: none is in a file at %s "+
				"(%d rows) and the store reports every event written (write errors %d→%d, dropped %d→%d, queued %d): "+
				"the ledger is lost silently", g.DB, onDisk, before.WriteErrors, after.WriteErrors,
				before.Dropped, after.Dropped, after.QueueLen)
		}
	})

	t.Run("restored-from-backup", func(t *testing.T) {
		g, body, k, tok := storageStart(t)
		// The operator's backup, then its restore by rename.
		dir := filepath.Dir(g.DB)
		bak := filepath.Join(dir, "restore.db")
		if _, err := g.db().Exec(`VACUUM INTO ?`, bak); err != nil {
			t.Fatal(err)
		}
		for _, suf := range []string{"-wal", "-shm"} {
			_ = os.Remove(g.DB + suf)
		}
		if err := os.Rename(bak, g.DB); err != nil {
			t.Fatal(err)
		}
		for i := range 5 {
			if st, b, _ := storageCall(t, g, tok); st != 200 {
				t.Fatalf("call %d after the restore: %d %s", i, st, b)
			}
		}
		g.sync()
		time.Sleep(1500 * time.Millisecond) // a once-a-second check may notice
		onDisk := storageCountCalls(t, g.DB)
		stats := g.app().store.Stats()
		t.Logf("after the restore: file at the path holds %d calls rows; store stats %+v", onDisk, stats)
		if onDisk < 6 && stats.WriteErrors == 0 && stats.Dropped == 0 {
			t.Errorf("the 5 calls made after the database was restored are not in the file at the path "+
				"(%d rows), and the store reports no error", onDisk)
		}

		// `caddy reload --force` (the same config) opens the file now at
		// the path: later calls are written to it, and a key revoked in it
		// with `caddy metis revoke-key --db PATH` is refused.
		g.load(body)
		if st, b, _ := storageCall(t, g, tok); st != 200 {
			t.Fatalf("call after the reload: %d %s", st, b)
		}
		g.sync()
		if n := storageCountCalls(t, g.DB); n != 2 {
			t.Errorf("after the reload the file at the path holds %d calls rows, want 2 (the backup's and the new call's)", n)
		}
		cli, err := store.Open(g.DB, store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cli.RevokeKey(context.Background(), k.ID); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = cli.Close(ctx)
		cancel()
		deadline := time.Now().Add(5 * time.Second)
		st := 0
		for time.Now().Before(deadline) {
			if st, _, _ = storageCall(t, g, tok); st == 401 {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		if st != 401 {
			t.Errorf("key %s revoked in the database file at the gateway's path still answered %d after the reload", k.ID, st)
		}
	})
}

// storageChattr sets or clears the immutable attribute of path (root only):
// the only way to make a file unwritable for root, as a file the service
// user may read but not write is for that user.
func storageChattr(t *testing.T, flag, path string) {
	t.Helper()
	if out, err := exec.Command("chattr", flag, path).CombinedOutput(); err != nil {
		t.Skipf("chattr %s %s: %v %s (needs root and a file system with attributes)", flag, path, err, out)
	}
}

// storageLoad starts Caddy with the metis body and returns the load error,
// stopping Caddy when the load succeeded.
func storageLoad(t *testing.T, metisBody string) error {
	t.Helper()
	caddyMu.Lock()
	defer caddyMu.Unlock()
	g := &testGateway{t: t, gwPort: freePort(t), anPort: freePort(t)}
	err := g.tryLoad(metisBody)
	_ = caddy.Stop()
	return err
}

// TestStorageReadOnlyDatabaseRefusedAtStart: a database file the gateway
// may read but not write (owned by root while Caddy runs as caddy, mode
// 0444, or here immutable) is refused when the config loads. It used to be
// accepted, as the schema was current and nothing was written: `caddy run`
// served, answered every call and held every event in memory until the
// queue filled and dropped them (audit 22F).
func TestStorageReadOnlyDatabaseRefusedAtStart(t *testing.T) {
	up := fakeupstream.New(t)
	db := storageDB(t)
	// A database a gateway has run on holds the budget ledger's tables too.
	l, err := budget.Open(db, budget.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		storageChattr(t, "+i", db)
		t.Cleanup(func() { _ = exec.Command("chattr", "-i", db).Run() })
	} else if err := os.Chmod(db, 0o444); err != nil {
		t.Fatal(err)
	}
	err = storageLoad(t, gatewayConfig(db, up.URL, ""))
	if err == nil {
		t.Fatalf("the gateway started on a database file it cannot write (%s): it would answer every call "+
			"and record none", db)
	}
	t.Logf("refused: %v", err)
}

// foreignDB writes another application's SQLite file (rollback journal,
// one table) and returns its path and bytes.
func foreignDB(t *testing.T) (string, []byte) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "crm.db")
	other, err := sql.Open("sqlite3", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Exec(`CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT);
		INSERT INTO customers(name) VALUES ('acme')`); err != nil {
		t.Fatal(err)
	}
	other.Close()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return path, b
}

// TestStorageForeignDatabaseNotAdopted: `db` naming another application's
// SQLite file (a typo, a wrong $METIS_DB) whose user_version is 0 is
// refused, and the file is left as it was. The gateway used to add its
// tables to it and set its user_version to 5, changing the other
// application's file for good, then serve with no keys (audit 22F).
func TestStorageForeignDatabaseNotAdopted(t *testing.T) {
	up := fakeupstream.New(t)
	path, _ := foreignDB(t)

	loadErr := storageLoad(t, gatewayConfig(path, up.URL, ""))

	other, err := sql.Open("sqlite3", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	var uv, tables int
	if err := other.QueryRow(`PRAGMA user_version`).Scan(&uv); err != nil {
		t.Fatal(err)
	}
	if err := other.QueryRow(`SELECT count(*) FROM sqlite_master WHERE type = 'table'`).Scan(&tables); err != nil {
		t.Fatal(err)
	}
	t.Logf("load error: %v; the other application's file now: user_version %d, %d tables", loadErr, uv, tables)
	if loadErr == nil {
		t.Errorf("the gateway started on another application's database %s", path)
	}
	if uv != 0 || tables != 1 {
		t.Errorf("the other application's database was changed: user_version 0 → %d, 1 table → %d", uv, tables)
	}
}

// TestStorageUnwritableFolderNamed: the database file exists but its
// folder cannot take the -wal and -shm files SQLite creates beside it (a
// read-only file system: a container volume mounted :ro, systemd's
// ProtectSystem=strict without ReadWritePaths; here an immutable folder).
// The gateway refuses to start and says the folder is not writable; it
// used to say "unable to open database file: no such file or directory" of
// a file that is there (audit 22F).
func TestStorageUnwritableFolderNamed(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for chattr +i on the folder")
	}
	up := fakeupstream.New(t)
	db := storageDB(t)
	dir := filepath.Dir(db)
	storageChattr(t, "+i", dir)
	t.Cleanup(func() { _ = exec.Command("chattr", "-i", dir).Run() })
	err := storageLoad(t, gatewayConfig(db, up.URL, ""))
	if err == nil {
		t.Fatal("started with a folder that cannot hold the WAL")
	}
	msg := err.Error()
	t.Logf("error: %s", msg)
	if strings.Contains(msg, "no such file or directory") ||
		!(strings.Contains(msg, "read-only") || strings.Contains(msg, "not writable") || strings.Contains(msg, "permission")) {
		t.Errorf("the error names a missing file, not the unwritable folder %s: %s", dir, msg)
	}
}

// TestStoragePermanentWriteErrorLogOnce: a write error that retrying cannot
// mend (here a trigger refusing every event row, as a corrupt page would;
// one on the calls rows let a batch holding no call, a route.decided
// committed ahead of its call on a loaded machine, through)
// drops each batch, counted in the metrics, and is logged at most once per
// 10 s. Each batch used to write two ERROR lines ("trace store write
// failed; retrying", "… batch dropped"): 155 lines in 5 s at 100 calls/s
// on a live gateway (audit 22F).
func TestStoragePermanentWriteErrorLogOnce(t *testing.T) {
	up := fakeupstream.New(t)
	g, logPath, metricsURL := e2eStartLogged(t, up, "ERROR", "")
	_, tok := e2eKey(g, "flood")
	if st, b, _ := storageCall(t, g, tok); st != 200 {
		t.Fatalf("first call: %d %s", st, b)
	}
	g.sync()
	w, err := sql.Open("sqlite3", "file:"+g.DB+"?_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.Exec(`CREATE TRIGGER test_broken BEFORE INSERT ON events BEGIN SELECT RAISE(ABORT, 'simulated corruption'); END`); err != nil {
		t.Fatal(err)
	}
	before := e2eScrape(t, metricsURL)["metis_trace_events_dropped_total"]
	const calls = 40
	for i := range calls {
		if st, b, _ := storageCall(t, g, tok); st != 200 {
			t.Fatalf("call %d: %d %s", i, st, b)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = g.app().store.Sync(ctx) // each call its own batch, as on a quiet gateway
		cancel()
	}
	// A call's last events are queued after its answer, and a dropped
	// batch waits its retry first: the count settles shortly after.
	var dropped float64
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if dropped = e2eScrape(t, metricsURL)["metis_trace_events_dropped_total"] - before; dropped >= 3*calls {
			break
		}
	}
	lines, _ := e2eLogLines(t, logPath)
	n := 0
	for _, l := range lines {
		if msg, _ := l["msg"].(string); strings.HasPrefix(msg, "trace store write failed") {
			n++
		}
	}
	t.Logf("%d calls with every write failing: metis_trace_events_dropped_total %v, %d ERROR lines about it", calls, dropped, n)
	if dropped < 3*calls {
		t.Errorf("dropped events counted %v, want ≥ %d", dropped, 3*calls)
	}
	if n > 4 {
		t.Errorf("%d log lines for %d failed batches: the log is flooded (a line pair per batch)", n, calls)
	}
}

// TestStorageLockedLedgerAnswersWithinFiveSeconds: README: "When the
// ledger cannot be read or written (disk full, database locked for over
// 5 s) a budgeted key's calls are refused with 503". With the database
// locked by another process, a budgeted call that arrives while another
// waits for the ledger used to get its 503 after up to 10 s (8.5 and 9.6 s
// with the SDK, audit 22F): the 5 s deadline bounded the wait for the
// ledger's one connection, then SQLite's 5 s busy timeout ran whole. The
// busy timeout now takes what is left of the deadline.
func TestStorageLockedLedgerAnswersWithinFiveSeconds(t *testing.T) {
	g, _ := e2eSetup(t, "")
	capped, ctok := e2eKey(g, "budgeted")
	setBudget(t, g.DB, budget.Budget{Scope: "key", Subject: capped.ID, Window: "daily", Hard: 50})
	waitApplies(t, g, budget.Identity{KeyID: capped.ID})
	// Another process holds the write lock (a backup, a long sqlite3 job).
	holdWriteLock(t, g.DB)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var got []string
	for i := range 2 {
		wg.Go(func() {
			time.Sleep(time.Duration(i) * 1500 * time.Millisecond)
			st, _, d := storageCall(t, g, ctok)
			mu.Lock()
			defer mu.Unlock()
			got = append(got, http.StatusText(st)+" after "+d.Round(100*time.Millisecond).String())
			// 5 s for the ledger, then up to readerJudgeWait (1 s) judging
			// the call on a reader: 5.0 to 5.6 s under a loaded CI; the
			// defect this guards answered after 8.5 to 10 s.
			if st != 503 || d > 7*time.Second {
				t.Errorf("budgeted call %d with the database locked: %d after %v; want 503 within ~5 s", i, st, d)
			}
		})
	}
	wg.Wait()
	t.Logf("answers: %v", got)
}

// TestStorageListKeysOnReadOnlyDatabase: `caddy metis list-keys` on a
// database file the user may read but not write (a root-owned 0444 copy,
// an operator in the service's group) lists the keys: only a gateway
// refuses such a file at start (RequireWritable), not commands that only
// read (review 22R).
func TestStorageListKeysOnReadOnlyDatabase(t *testing.T) {
	db := tempDB(t)
	s, err := store.Open(db, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	k, _, err := s.IssueKey(context.Background(), store.IssueParams{Name: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		if out, err := exec.Command("chattr", "+i", db).CombinedOutput(); err != nil {
			t.Skipf("chattr: %v %s", err, out)
		}
		t.Cleanup(func() { _ = exec.Command("chattr", "-i", db).Run() })
	} else if err := os.Chmod(db, 0o444); err != nil {
		t.Fatal(err)
	}
	// What list-keys does, without its os.Exit on error.
	cmd := &cobra.Command{Use: "list-keys"}
	cmd.Flags().String("db", "", "")
	_ = cmd.Flags().Set("db", db)
	ro, err := openExistingStore(cmd)
	if err != nil {
		t.Fatalf("caddy metis list-keys --db %s on a file it may only read: %v", db, err)
	}
	defer closeStore(ro)
	keys, err := ro.ListKeys(context.Background())
	var out bytes.Buffer
	printKeys(&out, keys, k.CreatedAt)
	if err != nil || !strings.Contains(out.String(), k.ID) {
		t.Errorf("list-keys: %v %s", err, out.String())
	}
}

// storageBackup starts a gateway, makes one call and takes a backup of its
// database (VACUUM INTO, as `sqlite3 .backup` would): the gateway, its
// config body, the key's token and the backup's path.
func storageBackup(t *testing.T) (g *testGateway, body, tok, bak string) {
	t.Helper()
	g, body, _, tok = storageStart(t)
	bak = filepath.Join(filepath.Dir(g.DB), "backup.db")
	if _, err := g.db().Exec(`VACUUM INTO ?`, bak); err != nil {
		t.Fatal(err)
	}
	return g, body, tok, bak
}

// storageStart starts a gateway on a new database with one key and makes
// one call: the gateway, its config body, the key and its token.
func storageStart(t *testing.T) (g *testGateway, body string, k store.Key, tok string) {
	t.Helper()
	up := fakeupstream.New(t)
	body = gatewayConfig(tempDB(t), up.URL, "")
	g = startGateway(t, body)
	k, tok = e2eKey(g, "restore")
	storageCalls(t, g, tok, 1)
	return g, body, k, tok
}

// storageCalls makes n calls, each answered 200, and waits for their rows.
func storageCalls(t *testing.T, g *testGateway, tok string, n int) {
	t.Helper()
	for i := range n {
		if st, b, _ := storageCall(t, g, tok); st != 200 {
			t.Fatalf("call %d: %d %s", i, st, b)
		}
	}
	g.sync()
}

// storageRestoreAndStop restores bak over the gateway's database by
// rename (`mv backup.db metis.db`), reloads the same config (`caddy reload
// --force`; a refusal is logged), makes 5 calls and stops the gateway. It
// returns how many calls were answered 200.
func storageRestoreAndStop(t *testing.T, g *testGateway, body, tok, bak string) (ok int) {
	t.Helper()
	if err := os.Rename(bak, g.DB); err != nil {
		t.Fatal(err)
	}
	if err := g.tryLoad(body); err != nil {
		t.Logf("caddy reload --force after restoring the backup: %v", err)
	}
	for range 5 {
		if st, b, _ := storageCall(t, g, tok); st == 200 {
			ok++
		} else {
			t.Logf("call after the reload: %d %s", st, b)
		}
	}
	g.sync()
	_ = caddy.Stop()
	return ok
}

// storageCheckRestored checks the restored file after the stop: intact,
// holding the backup's 1 calls row, plus the 5 calls after the reload
// when it followed the restored file (a refused reload leaves them on the
// old file); never the rows the restore was meant to undo. Then the
// gateway must start on it again.
func storageCheckRestored(t *testing.T, g *testGateway, body string) {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+g.DB+"?_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	cerr := db.QueryRow(`SELECT count(*) FROM calls`).Scan(&n)
	var ic string
	ierr := db.QueryRow(`PRAGMA integrity_check`).Scan(&ic)
	if cerr != nil || ic != "ok" || (n != 1 && n != 6) {
		t.Errorf("restore by mv + reload, then a stop: the restored file holds %d calls rows (%v), integrity %.300q (%v); "+
			"want an intact file with the backup's 1 row (+5 if the reload follows it)", n, cerr, ic, ierr)
	}
	restartErr := g.tryLoad(body) // the gateway starts again on the file
	_ = caddy.Stop()
	if restartErr != nil {
		t.Errorf("the gateway does not start on the restored file: %v", restartErr)
	}
}

// TestStorageRestoreByMvAndReload: a backup restored with mv while the
// gateway runs, with or without the old file's -wal and -shm removed
// first, a reload, calls, a stop and a start. With the sidecars left, the
// old file's WAL used to be read as the restored file's: the rows the
// restore undid came back (review 22R).
func TestStorageRestoreByMvAndReload(t *testing.T) {
	for _, removeSidecars := range []bool{false, true} {
		t.Run(fmt.Sprintf("sidecars removed %v", removeSidecars), func(t *testing.T) {
			g, body, tok, bak := storageBackup(t)
			storageCalls(t, g, tok, 3) // in the running file, not in the backup
			if removeSidecars {
				for _, suf := range []string{"-wal", "-shm"} {
					_ = os.Remove(g.DB + suf)
				}
			}
			storageRestoreAndStop(t, g, body, tok, bak)
			storageCheckRestored(t, g, body)
		})
	}
}

// TestStorageRestoreOldBackup: a backup taken earlier, the database grown
// and checkpointed since (as any running gateway's is), then `mv
// backup.db metis.db` and a reload. The new store used to read the running
// store's WAL (metis.db-wal, metis.db-shm: same path, still live) as the
// restored file's own: the reload failed with "database disk image is
// malformed", and so did every start after it (review 22R). The store now
// removes its own -wal and -shm from the path once its file is gone.
func TestStorageRestoreOldBackup(t *testing.T) {
	g, body, tok, bak := storageBackup(t)
	storageCalls(t, g, tok, 150)
	rw, err := sql.Open("sqlite3", "file:"+g.DB+"?_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rw.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		t.Fatal(err)
	}
	rw.Close()
	storageCalls(t, g, tok, 20)
	if ok := storageRestoreAndStop(t, g, body, tok, bak); ok != 5 {
		t.Errorf("%d of 5 calls answered 200 after the restore and reload", ok)
	}
	storageCheckRestored(t, g, body)
}

// TestStorageDeletedReloadInFlight: the database deleted (rm metis.db*),
// a streamed call in flight on the running store across `caddy reload
// --force`, calls on the new store meanwhile; then a stop. What the new
// store recorded must be in the file at the path, intact.
func TestStorageDeletedReloadInFlight(t *testing.T) {
	up := fakeupstream.New(t)
	body := gatewayConfig(tempDB(t), up.URL, "")
	g := startGateway(t, body)
	_, tok := e2eKey(g, "inflight")
	storageCalls(t, g, tok, 1)
	for _, suf := range []string{"", "-wal", "-shm"} {
		_ = os.Remove(g.DB + suf)
	}
	r := fakeupstream.AnthropicTextStream("", "one two three four five six seven eight")
	r.Gap = 150 * time.Millisecond
	up.Enqueue("/v1/messages", r)
	done := make(chan int)
	go func() {
		resp := g.post("/v1/messages", tok, `{"model":"haiku","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"hi"}]}`, "Anthropic-Version", "2023-06-01")
		io.ReadAll(resp.Body)
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	time.Sleep(200 * time.Millisecond)
	g.load(body) // caddy reload --force: a new, empty database at the path
	// The key is not in the new database: issue one there.
	_, tok2 := e2eKey(g, "after")
	var walBefore os.FileInfo
	ok := 0
	for i := range 10 {
		if st, _, _ := storageCall(t, g, tok2); st == 200 {
			ok++
		}
		if i == 2 {
			walBefore, _ = os.Stat(g.DB + "-wal")
		}
		time.Sleep(100 * time.Millisecond)
	}
	st := <-done
	time.Sleep(500 * time.Millisecond) // the old config's store closes
	for range 3 {
		if st, _, _ := storageCall(t, g, tok2); st == 200 {
			ok++
		}
	}
	g.sync()
	walAfter, _ := os.Stat(g.DB + "-wal")
	same := walBefore != nil && walAfter != nil && os.SameFile(walBefore, walAfter)
	live := storageCountCalls(t, g.DB)
	_ = caddy.Stop()
	n := storageCountCalls(t, g.DB)
	db, _ := sql.Open("sqlite3", "file:"+g.DB+"?mode=ro")
	defer db.Close()
	var ic string
	ierr := db.QueryRow(`PRAGMA integrity_check`).Scan(&ic)
	t.Logf("in-flight call %d; %d calls answered 200 after the reload; -wal same file across the old store's close: %v; rows live %d, after stop %d; integrity %q %v",
		st, ok, same, live, n, ic, ierr)
	if n != ok || ic != "ok" {
		t.Errorf("the new database holds %d calls rows after the stop, want the %d answered after the reload (integrity %q)", n, ok, ic)
	}
	if walBefore != nil && !same {
		t.Errorf("the new store's -wal was removed or replaced while it ran (the old store's sidecar removal must leave it)")
	}
}

// storageDB is a new trace database, opened and closed once, as a
// gateway leaves it.
func storageDB(t *testing.T) string {
	t.Helper()
	db := tempDB(t)
	s, err := store.Open(db, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	return db
}
