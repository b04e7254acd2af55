//go:build cgo

package store

import (
	"context"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/metisgateway/metis/internal/sqlitefile"
)

// Review 24R2. sqlitefile.CheckForeign reads PRAGMA user_version and then
// sqlite_master in two statements, each its own read transaction. A first
// open of a fresh file by another process (or pool) that commits its
// migration (the tables and user_version, in one transaction) between the
// two reads makes the file look like another application's: user_version
// 0, and Metis's tables. The second opener then fails with "not a Metis
// database" (TestOpenConcurrentProcesses failed so 1 run in 40 on this
// machine). The test opens fresh files while checking them concurrently.
func TestCheckForeignDuringConcurrentFirstOpen(t *testing.T) {
	dir := t.TempDir()
	deadline := time.Now().Add(5 * time.Second) // before the fix it failed within 0.2 to 2 s
	for i := 0; time.Now().Before(deadline); i++ {
		path, err := sqlitefile.Prepare(filepath.Join(dir, "f", time.Now().Format("150405.000000")+".db"))
		if err != nil {
			t.Fatal(err)
		}
		var done atomic.Bool
		opened := make(chan error, 1)
		go func() {
			defer done.Store(true)
			s, err := Open(path, Options{})
			if err == nil {
				err = s.Close(context.Background())
			}
			opened <- err
		}()
		checks := 0
		for !done.Load() {
			checks++
			if err := sqlitefile.CheckForeign(context.Background(), path); err != nil && strings.Contains(err.Error(), "not a Metis database") {
				<-opened
				t.Fatalf("file %d, check %d: a Metis file being created by another opener was refused: %v", i, checks, err)
			}
		}
		if err := <-opened; err != nil {
			t.Fatalf("Open: %v", err)
		}
	}
}
