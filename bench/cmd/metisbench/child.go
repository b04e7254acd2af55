package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/caddyserver/caddy/v2"
	_ "github.com/caddyserver/caddy/v2/modules/standard" // Caddy's standard modules, as in an xcaddy build

	"github.com/metisgateway/metis"
	_ "github.com/metisgateway/metis/bench/floor" // http.handlers.metis_bench_forward (F3)
	"github.com/metisgateway/metis/bench/mock"
	"github.com/metisgateway/metis/store"
)

// readyPrefix starts the line a child prints on stdout once it serves.
const readyPrefix = "METISBENCH-READY "

// childSpec is what the driver hands a child process (as JSON in -spec).
type childSpec struct {
	// Mock: one listener per profile.
	Profiles []mock.Profile `json:"profiles,omitempty"`
	// Caddy: the JSON config to load and the loopback control address
	// (pprof; for the metis role also store stats).
	Config  json.RawMessage `json:"config,omitempty"`
	Control string          `json:"control,omitempty"`
	Metis   bool            `json:"metis,omitempty"`
	// Pin, when set, binds the child to CPU *Pin with GOMAXPROCS=1.
	Pin *int `json:"pin,omitempty"`
}

// childReady is the READY line's payload.
type childReady struct {
	URLs          []string `json:"urls,omitempty"` // mock: one per profile
	Token         string   `json:"token,omitempty"`
	CaddyVersion  string   `json:"caddy_version,omitempty"`
	SQLiteVersion string   `json:"sqlite_version,omitempty"`
}

// runChild runs a child role until SIGTERM/SIGINT.
func runChild(role, specJSON string) error {
	var spec childSpec
	if err := json.Unmarshal([]byte(specJSON), &spec); err != nil {
		return fmt.Errorf("child %s: decoding spec: %w", role, err)
	}
	if spec.Pin != nil {
		if err := pinSelf(*spec.Pin); err != nil {
			return fmt.Errorf("child %s: %w", role, err)
		}
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	switch role {
	case "mock":
		var ready childReady
		for _, p := range spec.Profiles {
			s, err := mock.Listen("127.0.0.1:0", p)
			if err != nil {
				return err
			}
			defer s.Close()
			ready.URLs = append(ready.URLs, s.URL)
		}
		if err := announce(ready); err != nil {
			return err
		}
		<-sig
		return nil
	case "caddy":
		return runCaddyChild(&spec, sig)
	}
	return fmt.Errorf("unknown child role %q", role)
}

func announce(r childReady) error {
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encoding ready line: %w", err)
	}
	_, err = fmt.Printf("%s%s\n", readyPrefix, b)
	return err
}

// runCaddyChild loads the config in-process, issues a gateway key when
// the metis app is configured, serves the control endpoints and waits.
func runCaddyChild(spec *childSpec, sig <-chan os.Signal) error {
	if err := caddy.Load(spec.Config, true); err != nil {
		return fmt.Errorf("loading caddy config: %w", err)
	}
	defer func() { _ = caddy.Stop() }()
	_, full := caddy.Version()
	ready := childReady{CaddyVersion: full}
	var app *metis.App
	if spec.Metis {
		v, err := caddy.ActiveContext().AppIfConfigured("metis")
		if err != nil {
			return fmt.Errorf("metis app: %w", err)
		}
		app = v.(*metis.App)
		_, tok, err := app.Store().IssueKey(context.Background(), store.IssueParams{
			Name: "metisbench", User: "bench", Team: "perf",
		})
		if err != nil {
			return fmt.Errorf("issuing the benchmark's gateway key: %w", err)
		}
		ready.Token = tok
		if err := app.Store().ReadDB().QueryRow(`SELECT sqlite_version()`).Scan(&ready.SQLiteVersion); err != nil {
			return fmt.Errorf("reading sqlite_version(): %w", err)
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("/stats", func(w http.ResponseWriter, r *http.Request) {
		if app == nil {
			http.Error(w, "no metis app in this process", http.StatusNotFound)
			return
		}
		st, err := traceStats(r.Context(), app.Store())
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(st)
	})
	ln, err := net.Listen("tcp", spec.Control)
	if err != nil {
		return fmt.Errorf("control listener: %w", err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	if err := announce(ready); err != nil {
		return err
	}
	<-sig
	return nil
}

// traceCounts is the store's view of the trace events after a Sync.
type traceCounts struct {
	Stats       store.Stats      `json:"stats"`
	SyncError   string           `json:"sync_error,omitempty"`
	EventsSQL   int64            `json:"events_sql"`
	EventsByTyp map[string]int64 `json:"events_by_type"`
	CallsSQL    int64            `json:"calls_sql"`
}

// traceStats waits for the writer to catch up and counts rows with SQL.
func traceStats(ctx context.Context, s *store.Store) (*traceCounts, error) {
	out := &traceCounts{EventsByTyp: map[string]int64{}}
	sctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := s.Sync(sctx); err != nil {
		out.SyncError = err.Error()
	}
	out.Stats = s.Stats()
	db := s.ReadDB()
	rows, err := db.QueryContext(ctx, `SELECT type, count(*) FROM events GROUP BY type`)
	if err != nil {
		return nil, fmt.Errorf("counting events: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var t string
		var n int64
		if err := rows.Scan(&t, &n); err != nil {
			return nil, fmt.Errorf("counting events: %w", err)
		}
		out.EventsByTyp[t] = n
		out.EventsSQL += n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("counting events: %w", err)
	}
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM calls`).Scan(&out.CallsSQL); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("counting calls: %w", err)
	}
	return out, nil
}
