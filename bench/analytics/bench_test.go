package analyticsbench

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/metisgateway/metis/store"
)

// TestGenerateAndMeasure runs the generator and every timed scenario on a
// small workload: each endpoint must answer 200, and the rollups must hold
// every generated call.
func TestGenerateAndMeasure(t *testing.T) {
	ctx := context.Background()
	cfg := DefaultConfig()
	cfg.Calls, cfg.Keys, cfg.Days, cfg.BatchCalls = 20_000, 50, 5, 5_000
	path := filepath.Join(t.TempDir(), "bench.db")
	end := time.Date(2026, 3, 15, 13, 37, 0, 0, time.UTC)
	st, err := Generate(ctx, path, cfg, end, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	if st.Calls != int64(cfg.Calls) || st.Keys != int64(cfg.Keys) {
		t.Fatalf("generated %+v", st)
	}
	s, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(ctx)
	for _, table := range []string{"rollup_hour", "rollup_day", "rollup_hour_model", "rollup_key_day"} {
		var n int64
		if err := s.ReadDB().QueryRowContext(ctx, "SELECT SUM(calls) FROM "+table).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != int64(cfg.Calls) {
			t.Errorf("%s holds %d calls, want %d", table, n, cfg.Calls)
		}
	}
	// The sessions' sums agree with their calls.
	var diff int64
	if err := s.ReadDB().QueryRowContext(ctx, `SELECT COUNT(*) FROM sessions s JOIN (SELECT session_id,
		COUNT(*) n, SUM(input_tokens) i, SUM(cache_read_tokens) cr, SUM(latency_ms) l,
		SUM(status >= 400 OR error_class IS NOT NULL) e FROM calls WHERE session_id <> '' GROUP BY 1) c USING (session_id)
		WHERE s.calls <> c.n OR s.input_tokens <> c.i OR s.cache_read_tokens <> c.cr OR s.latency_ms_sum <> c.l
		OR s.errors <> c.e`).Scan(&diff); err != nil {
		t.Fatal(err)
	}
	if diff != 0 {
		t.Errorf("%d sessions disagree with their calls", diff)
	}
	res, err := Measure(ctx, s.ReadDB(), end.Add(time.Second), MeasureOptions{Iterations: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) < 30 {
		t.Errorf("only %d scenarios timed", len(res))
	}
}
