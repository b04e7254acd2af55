//go:build cgo

package store

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"
)

// schema3Tables dumps what migration 3 derives: the two coarser rollups and
// the sessions' new columns.
var schema3Tables = []struct {
	name  string
	nkey  int
	query string
}{
	{"rollup_hour_model", 4, `SELECT bucket, provider, model, inbound_shape, calls, errors, unpriced_calls,
		estimated_calls, cost_usd, input_tokens, cache_read_tokens, cache_write_tokens, output_tokens,
		reasoning_tokens, cache_savings_usd, latency_ms_sum, last_ts_us FROM rollup_hour_model`},
	{"rollup_key_day", 6, `SELECT bucket, key_id, user, team, workspace, inbound_shape, calls, errors,
		unpriced_calls, estimated_calls, cost_usd, input_tokens, cache_read_tokens, cache_write_tokens,
		output_tokens, reasoning_tokens, cache_savings_usd, latency_ms_sum, last_ts_us FROM rollup_key_day`},
	{"sessions", 1, `SELECT session_id, first_ts_us, last_ts_us, calls, unpriced_calls, cost_usd, errors,
		estimated_calls, input_tokens, cache_read_tokens, cache_write_tokens, output_tokens, reasoning_tokens,
		cache_savings_usd, latency_ms_sum, mixed != 0 FROM sessions`},
}

// TestUpgradeFromV2 writes a workload with the writer, turns the database
// back into schema 2 (drops what migration 3 adds) and reopens it: the
// migration must rebuild the coarser rollups and the sessions' sums exactly
// as the writer maintained them, and the writer must go on from there.
func TestUpgradeFromV2(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v2.db")
	s, err := Open(path, Options{BatchSize: 17, FlushInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	keys := []testKey{{"gk_a", "a", "alice", "eng", "/w/a"}, {"gk_b", "b", "bob", "eng", "/w/b"},
		{"gk_c", "c", "", "", ""}}
	r := rand.New(rand.NewPCG(5, 6))
	base := time.Date(2026, 3, 1, 23, 30, 0, 0, time.UTC)
	enqueue := func(s *Store, n int) {
		for i := range n {
			at, c := randomCall(r, base, keys)
			if c.SessionID != "" && i%2 == 0 {
				c.SessionID = "own-" + c.GatewayKeyID
			}
			if !s.Enqueue(Event{Type: TypeCallCompleted, Time: at, Payload: c}) {
				t.Fatal("Enqueue returned false")
			}
		}
		syncStore(t, s)
	}
	enqueue(s, 400)
	want := map[string]map[string][]float64{}
	for _, tb := range schema3Tables {
		want[tb.name] = loadAgg(t, s.ReadDB(), tb.nkey, tb.query)
		if len(want[tb.name]) == 0 {
			t.Fatalf("%s is empty: the workload is vacuous", tb.name)
		}
	}
	closeStore(t, s)

	raw := rawDB(t, path)
	downgrade := `DROP TABLE rollup_hour_model; DROP TABLE rollup_key_day; DROP INDEX sessions_window;
		DROP INDEX sessions_mixed; CREATE INDEX sessions_last ON sessions(last_ts_us);`
	for _, c := range []string{"errors", "estimated_calls", "input_tokens", "cache_read_tokens",
		"cache_write_tokens", "output_tokens", "reasoning_tokens", "cache_savings_usd", "latency_ms_sum", "mixed"} {
		downgrade += fmt.Sprintf("ALTER TABLE sessions DROP COLUMN %s;", c)
	}
	if _, err := raw.Exec(downgrade + "PRAGMA user_version = 2;"); err != nil {
		t.Fatal(err)
	}
	raw.Close()

	s, err = Open(path, Options{BatchSize: 17, FlushInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer closeStore(t, s)
	db := s.ReadDB()
	if v := queryInt(t, db, `PRAGMA user_version`); v != schemaVersion {
		t.Fatalf("user_version = %d, want %d", v, schemaVersion)
	}
	for _, tb := range schema3Tables {
		compareAgg(t, tb.name+" after the migration", loadAgg(t, db, tb.nkey, tb.query), want[tb.name])
	}
	for ix, want := range map[string]int64{"sessions_last": 0, "sessions_window": 1, "sessions_mixed": 1} {
		if n := queryInt(t, db, `SELECT count(*) FROM sqlite_schema WHERE type = 'index' AND name = ?`, ix); n != want {
			t.Errorf("index %s: %d after the upgrade, want %d", ix, n, want)
		}
	}
	// The writer goes on adding to the backfilled rows.
	enqueue(s, 300)
	for _, tb := range schema3Tables[:2] {
		got := loadAgg(t, db, tb.nkey, tb.query)
		var calls float64
		for _, v := range got {
			calls += v[0]
		}
		if calls != 700 {
			t.Errorf("%s counts %v calls after the upgrade, want 700", tb.name, calls)
		}
	}
}
