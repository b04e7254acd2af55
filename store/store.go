// Package store is Metis's SQLite trace store: a bounded, never-blocking
// event queue drained by one batching writer goroutine into a WAL-mode
// database (contract §5), rollup tables maintained in the same transactions,
// and the gateway-key table with an in-memory authentication cache
// (contract §3). It uses cgo (github.com/mattn/go-sqlite3) and does not
// import Caddy; the Caddy app shares one *Store per database path through a
// caddy.UsagePool and calls Reconfigure when a new config reuses it.
package store

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/metisgateway/metis/internal/sqlitefile"
	"go.uber.org/zap"
)

// Default option values, applied to zero fields of Options.
const (
	DefaultQueueSize     = 65536
	DefaultBatchSize     = 2048
	DefaultFlushInterval = 20 * time.Millisecond
	DefaultKeyRefresh    = time.Second
)

// readPoolSize is the number of connections in the read-only pool.
const readPoolSize = 4

// ErrNoCGO is returned by Open when the binary was built with CGO_ENABLED=0,
// in which case go-sqlite3 is only a stub.
var ErrNoCGO = errors.New("built without cgo; rebuild with CGO_ENABLED=1 (for xcaddy: CGO_ENABLED=1 xcaddy build …)")

// Options tune the writer and the key cache. Zero fields take the defaults.
type Options struct {
	// QueueSize bounds the events accepted but not yet committed; Enqueue
	// drops beyond it. Default 65536.
	QueueSize int `json:"queue_size,omitempty"`
	// BatchSize is the maximum number of events per transaction. Default
	// 2048. Transactions are smaller while the writer finds them holding
	// the write lock over txTarget (slow storage).
	BatchSize int `json:"batch_size,omitempty"`
	// FlushInterval is the longest the writer waits for a batch to fill
	// before committing a partial one. Default 20ms. After a round of at
	// least 512 events (a busy gateway) it waits up to 2.5 × FlushInterval.
	FlushInterval time.Duration `json:"flush_interval,omitempty"`
	// KeyRefresh is how often the key cache polls meta.keys_version so keys
	// issued or revoked by another process take effect. Default 1s.
	KeyRefresh time.Duration `json:"key_refresh,omitempty"`
	// Logger receives write errors and drop warnings; nil means zap.NewNop().
	Logger *zap.Logger `json:"-"`
	// RequireWritable makes Open fail on a database file this process may
	// read but not write, by writing to it even when the schema is
	// current: a gateway must not serve calls it cannot record. Commands
	// that only read (list-keys) leave it unset.
	RequireWritable bool `json:"-"`
}

func (o Options) withDefaults() Options {
	if o.QueueSize <= 0 {
		o.QueueSize = DefaultQueueSize
	}
	if o.BatchSize <= 0 {
		o.BatchSize = DefaultBatchSize
	}
	if o.FlushInterval <= 0 {
		o.FlushInterval = DefaultFlushInterval
	}
	if o.KeyRefresh <= 0 {
		o.KeyRefresh = DefaultKeyRefresh
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	return o
}

// Store is an open trace database. All methods are safe for concurrent use.
type Store struct {
	path string
	file os.FileInfo // the database file as opened, to notice it deleted or replaced
	// sidecars are the store's -wal and -shm files as last seen at the
	// path (filewatch.go), guarded by sidecarMu.
	sidecarMu sync.Mutex
	sidecars  [2]os.FileInfo
	db        *sql.DB // writer pool, one connection
	rdb       *sql.DB // read-only pool
	opts      atomic.Pointer[Options]
	wake      chan struct{} // cap 1; nudges the writer
	stopKs    chan struct{} // closed by Close: stops the key refresher and the writer's retry waits

	// gate orders the writer pool's write transactions with the other
	// pools of this process that write the file (the budget ledger's).
	gate *sqlitefile.WriteGate

	// Queue state, guarded by qmu. Sequence numbers count events: enqSeq
	// accepted, takenSeq handed to the writer, doneSeq committed or dropped
	// by the writer. queue holds events (takenSeq, enqSeq].
	qmu        sync.Mutex
	queue      []Event
	spare      []Event
	qcap       int
	closed     bool
	closedAt   time.Time // when Close was called
	enqSeq     uint64
	takenSeq   uint64
	doneSeq    uint64
	flushUntil uint64        // Sync wants events up to here written without waiting
	failedSeq  uint64        // doneSeq at the end of the last dropped batch
	progress   chan struct{} // closed and replaced whenever doneSeq advances

	enqueued    atomic.Uint64
	written     atomic.Uint64
	dropped     atomic.Uint64
	batches     atomic.Uint64
	writeErrors atomic.Uint64
	lastDropLog atomic.Int64 // unix nanoseconds of the last drop warning
	hooks       atomic.Pointer[Hooks]
	// abandoned is set (and abandonedN counts) by the writer goroutine
	// alone, once the store closed while its database could not be
	// written.
	abandoned  bool
	abandonedN int
	// failLogAt and failQuiet (the writer goroutine's alone) rate-limit
	// the log of failed writes: a failure retrying cannot mend (a
	// corrupt page, a trigger refusing rows) fails every batch.
	failLogAt time.Time
	failQuiet int

	keys     atomic.Pointer[keySnapshot]
	reloadMu sync.Mutex // serialises key cache reloads
	keyMiss  missGate   // bounds the key checks of unknown tokens
	keyCheck checkSeq   // counts the checks for new keys (WaitKeyCheck)

	writerDone chan struct{}
	keysDone   chan struct{}
	closeOnce  sync.Once
	closedCh   chan struct{}
	closeErr   error
}

// Stats are cumulative counters of a Store.
type Stats struct {
	Enqueued    uint64 // events accepted by Enqueue
	Written     uint64 // events committed
	Dropped     uint64 // events rejected by Enqueue or lost to write errors
	Batches     uint64 // committed transactions
	QueueLen    int    // events accepted but not yet committed or dropped
	WriteErrors uint64 // failed transaction attempts
}

// Open opens (creating if needed) the trace database at path, applies
// migrations, loads the key cache and starts the writer and key-refresh
// goroutines. Their context derives from context.Background(), so the store
// outlives whatever config opened it; call Close to stop it.
func Open(path string, opts Options) (*Store, error) {
	if err := cgoCheck(); err != nil {
		return nil, fmt.Errorf("opening trace store %s: %w", path, err)
	}
	abs, err := sqlitefile.Prepare(path)
	if err != nil {
		return nil, fmt.Errorf("opening trace store %s: %w", cmp.Or(abs, path), err)
	}
	s, err := open(abs, opts.withDefaults())
	if err != nil {
		return nil, fmt.Errorf("opening trace store %s: %w", abs, err)
	}
	return s, nil
}

// busyTimeoutMS is how long the writer pool's statements wait for
// another connection's lock, in milliseconds.
const busyTimeoutMS = 5000

// open opens the prepared (sqlitefile.Prepare) database file at the
// absolute path.
func open(path string, opts Options) (*Store, error) {
	// Busy at once like migrate while another process makes a fresh
	// file a WAL database.
	if err := retryBusy(context.Background(), func() error {
		return sqlitefile.CheckForeign(context.Background(), path)
	}); err != nil {
		return nil, err
	}
	// A 32 MiB page cache keeps the rollup and per-key index pages that
	// every batch touches in memory.
	db, err := sqlitefile.OpenWriter(path,
		"_journal_mode=WAL", fmt.Sprintf("_busy_timeout=%d", busyTimeoutMS), "_txlock=immediate", "_synchronous=NORMAL", "_cache_size=-32000")
	if err != nil {
		return nil, fmt.Errorf("opening writer pool: %w", err)
	}
	ctx := context.Background()
	if err := migrate(ctx, db, opts.RequireWritable, opts.Logger); err != nil {
		db.Close()
		return nil, err
	}
	rdb, err := sqlitefile.OpenReaders(path, readPoolSize)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("opening read pool: %w", err)
	}
	if err := rdb.PingContext(ctx); err != nil {
		db.Close()
		rdb.Close()
		return nil, fmt.Errorf("opening read pool: %w", err)
	}
	s := &Store{
		path:       path,
		db:         db,
		rdb:        rdb,
		wake:       make(chan struct{}, 1),
		stopKs:     make(chan struct{}),
		qcap:       opts.QueueSize,
		progress:   make(chan struct{}),
		writerDone: make(chan struct{}),
		keysDone:   make(chan struct{}),
		closedCh:   make(chan struct{}),
	}
	s.opts.Store(&opts)
	if s.file, err = os.Stat(path); err != nil {
		db.Close()
		rdb.Close()
		return nil, fmt.Errorf("database file: %w", err)
	}
	s.noteSidecars()
	if err := s.reloadKeys(ctx); err != nil {
		db.Close()
		rdb.Close()
		return nil, err
	}
	s.gate = sqlitefile.AcquireGate(path)
	go s.runWriter()
	go s.runKeyRefresh()
	return s, nil
}

// Reconfigure applies a new config's options to a running (pooled) store:
// queue size, batch size, flush interval, key refresh period and logger take
// effect at once (a partial batch is written). Zero fields take the
// defaults. undo puts the previous options back, unless another
// Reconfigure came since: for a config that is refused after it applied
// them.
func (s *Store) Reconfigure(opts Options) (undo func()) {
	o := opts.withDefaults()
	prev := s.opts.Swap(&o)
	s.setOpts(&o)
	return func() {
		if s.opts.CompareAndSwap(&o, prev) {
			s.setOpts(prev)
		}
	}
}

// setOpts applies o's queue size and wakes the writer to take up o.
func (s *Store) setOpts(o *Options) {
	s.qmu.Lock()
	s.qcap = o.QueueSize
	s.qmu.Unlock()
	s.nudge()
}

// Path is the absolute path of the database file.
func (s *Store) Path() string { return s.path }

// ReadDB is a separate read-only connection pool for analytics queries. It
// is closed by Close.
func (s *Store) ReadDB() *sql.DB { return s.rdb }

// Stats returns the current counters.
func (s *Store) Stats() Stats {
	s.qmu.Lock()
	qlen := int(s.enqSeq - s.doneSeq)
	s.qmu.Unlock()
	return Stats{
		Enqueued:    s.enqueued.Load(),
		Written:     s.written.Load(),
		Dropped:     s.dropped.Load(),
		Batches:     s.batches.Load(),
		QueueLen:    qlen,
		WriteErrors: s.writeErrors.Load(),
	}
}

func (s *Store) logger() *zap.Logger { return s.opts.Load().Logger }

// Close stops intake (later Enqueue calls return false), drains the queue to
// disk, persists pending key last-used times and closes both pools. It is
// idempotent; every call waits for the same shutdown. If ctx ends first,
// Close returns its error while the drain finishes in the background.
func (s *Store) Close(ctx context.Context) error {
	s.closeOnce.Do(func() {
		s.qmu.Lock()
		s.closed = true
		s.closedAt = time.Now()
		s.qmu.Unlock()
		close(s.stopKs)
		s.nudge()
		go func() {
			<-s.writerDone
			<-s.keysDone
			// Readers first: the writer's connection, closing last,
			// checkpoints the WAL and removes it.
			err := errors.Join(s.rdb.Close(), s.db.Close())
			s.gate.Release()
			if err != nil {
				err = fmt.Errorf("closing trace store %s: %w", s.path, err)
			}
			s.closeErr = err
			close(s.closedCh)
		}()
	})
	select {
	case <-s.closedCh:
		return s.closeErr
	case <-ctx.Done():
		// Named, so that a stop whose deadline cut the drain says how
		// many answered calls' events it leaves unwritten (audit 23F).
		return fmt.Errorf("closing trace store %s: drain not finished, %d events not written: %w",
			s.path, s.Stats().QueueLen, ctx.Err())
	}
}
