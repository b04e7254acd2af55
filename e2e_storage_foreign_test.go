//go:build cgo

package metis

import (
	"bytes"
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"testing"

	"github.com/metisgateway/metis/internal/fakeupstream"
	"github.com/metisgateway/metis/store"
)

func foreignState(t *testing.T, path string) (journal string, tables []string) {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.QueryRow(`PRAGMA journal_mode`).Scan(&journal); err != nil {
		t.Fatal(err)
	}
	rows, err := db.Query(`SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var n string
		_ = rows.Scan(&n)
		tables = append(tables, n)
	}
	return journal, tables
}

// Audit 24O: `caddy metis set-budget --db crm.db` (a typo, a stray
// $METIS_DB) adds the budget tables to another application's SQLite file
// and switches it to WAL for good, where issue-key, list-keys and the
// gateway refuse it as "not a Metis database". It should refuse it too.
func TestSetBudgetRefusesForeignDatabase(t *testing.T) {
	path, _ := foreignDB(t)
	_, err := runBudgetCLI(t, "set-budget", "--db", path, "--team", "eng", "--window", "daily", "--hard", "5")
	journal, tables := foreignState(t, path)
	if err == nil {
		t.Errorf("set-budget wrote a budget into another application's database")
	}
	if len(tables) != 1 || journal != "delete" {
		t.Errorf("the other application's database was changed: tables %v (want [customers]), journal_mode %s (want delete)", tables, journal)
	}
}

// Audit 24O: README ("The database file is checked at start"): another
// application's SQLite file is refused when the config loads, "left
// untouched". The tables are, but the file is switched from its rollback
// journal to WAL (header bytes 18–19, the change counter) before the check:
// an application that relied on its journal mode (a network file system,
// a reader without -shm access) finds its file changed by a typo in `db`.
func TestForeignDatabaseLeftByteForByte(t *testing.T) {
	t.Run("store", func(t *testing.T) {
		path, before := foreignDB(t)
		s, err := store.Open(path, store.Options{})
		if err == nil {
			_ = s.Close(context.Background())
			t.Fatal("store.Open adopted another application's database")
		}
		checkUntouched(t, path, before)
	})
	t.Run("gateway", func(t *testing.T) {
		up := fakeupstream.New(t)
		path, before := foreignDB(t)
		if err := storageLoad(t, gatewayConfig(path, up.URL, "")); err == nil {
			t.Fatal("the gateway started on another application's database")
		}
		checkUntouched(t, path, before)
	})
}

func checkUntouched(t *testing.T, path string, before []byte) {
	t.Helper()
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var sidecars []string
	for _, sfx := range []string{"-wal", "-shm"} {
		if _, err := os.Stat(path + sfx); err == nil {
			sidecars = append(sidecars, filepath.Base(path+sfx))
		}
	}
	journal, tables := foreignState(t, path)
	if !bytes.Equal(before, after) || journal != "delete" {
		first := -1
		for i := range min(len(before), len(after)) {
			if before[i] != after[i] {
				first = i
				break
			}
		}
		t.Errorf("the other application's file changed: first differing byte %d, journal_mode %s (was delete), tables %v", first, journal, tables)
	}
	if len(sidecars) > 0 {
		t.Errorf("left %v beside the other application's file", sidecars)
	}
}
