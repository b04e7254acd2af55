package store

import (
	"errors"
	"io/fs"
	"os"
	"strings"
	"time"

	"go.uber.org/zap"
)

// The database file under a running store: SQLite keeps the file it
// opened, so one deleted or replaced at the path (a backup restored with
// mv) goes on being written, unseen, and is lost at the next restart. The
// key refresher watches the path once a second (watchFile); the app opens
// the file now at the path at the next reload (FileGone).

// sidecarSuffixes name the files SQLite keeps beside a WAL database.
var sidecarSuffixes = [2]string{"-wal", "-shm"}

// FileGone says what became of the database file since the store opened
// it: "deleted" or "replaced" (a backup restored by mv, say), or "" while
// it is still the file at the path.
func (s *Store) FileGone() string {
	fi, err := os.Stat(s.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "deleted"
	case err != nil:
		return ""
	case !os.SameFile(s.file, fi):
		return "replaced"
	}
	return ""
}

// watchFile is one look at the database file: while it is the store's,
// the identity of its -wal and -shm files is noted; once it is gone, the
// store removes those files from the path if they are still its own, and
// counts a write error and logs, at most once a minute (*last).
func (s *Store) watchFile(last *time.Time) {
	gone := s.FileGone()
	if gone == "" {
		s.noteSidecars()
		return
	}
	removed := s.RemoveOwnSidecars()
	if time.Since(*last) < time.Minute && len(removed) == 0 {
		return
	}
	*last = time.Now()
	s.writeFailed() // metis_trace_write_errors_total: what is written now is lost at the next restart
	msg := "the trace database file was " + gone + " while the gateway runs: events and spend go on to the file it opened, " +
		"which is no longer at its path, and keys issued or revoked there are not seen; reload (caddy reload --force) " +
		"or restart the gateway to open the file now at the path"
	if gone == "deleted" {
		msg += " (a new, empty database; the deleted file's data survives only in the running process, under /proc/<pid>/fd, until then)"
	}
	fields := []zap.Field{zap.String("path", s.path)}
	if len(removed) > 0 {
		fields = append(fields, zap.String("removed_old_sidecars", strings.Join(removed, ", ")))
	}
	s.logger().Error(msg, fields...)
}

// noteSidecars records the identity of the -wal and -shm files at the path
// while the database file there is the store's.
func (s *Store) noteSidecars() {
	s.sidecarMu.Lock()
	defer s.sidecarMu.Unlock()
	for i, suf := range sidecarSuffixes {
		if fi, err := os.Stat(s.path + suf); err == nil {
			s.sidecars[i] = fi
		}
	}
}

// RemoveOwnSidecars removes from the path the -wal and -shm files that are
// still the store's own once its database file is gone, and returns their
// names. Left there, they would be read as the journal of the file now at
// the path (a restored backup, a new database) and corrupt it: SQLite does
// not remove them when it closes a moved database. The store goes on with
// the files it has open.
func (s *Store) RemoveOwnSidecars() []string {
	if s.FileGone() == "" {
		return nil
	}
	s.sidecarMu.Lock()
	defer s.sidecarMu.Unlock()
	var removed []string
	for i, suf := range sidecarSuffixes {
		own := s.sidecars[i]
		if own == nil {
			continue
		}
		if fi, err := os.Stat(s.path + suf); err == nil && os.SameFile(own, fi) {
			if err := os.Remove(s.path + suf); err == nil {
				removed = append(removed, s.path+suf)
			}
		}
		s.sidecars[i] = nil
	}
	return removed
}
