//go:build cgo

package store

import (
	"database/sql"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
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
		DROP INDEX sessions_mixed; CREATE INDEX sessions_last ON sessions(last_ts_us);` + downgradeV4
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
	for ix, want := range map[string]int64{"sessions_last": 0, "sessions_window": 1, "sessions_mixed": 1,
		"calls_session": 0, "calls_session_sums": 1} {
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

// downgradeV4 undoes migration 4.
const downgradeV4 = `DROP INDEX calls_session_sums;
	CREATE INDEX calls_session ON calls(session_id, ts_us) WHERE session_id <> '';`

// straddlerQuery is analytics' sum of some sessions' calls in a window
// (readSessionCalls with callSums), which calls_session_sums must cover.
const straddlerQuery = `SELECT session_id, COUNT(*), COALESCE(SUM(status >= 400 OR error_class IS NOT NULL),0),
	COALESCE(SUM(priced = 0),0), COALESCE(SUM(estimated),0), TOTAL(cost_usd), TOTAL(cache_savings_usd),
	COALESCE(SUM(input_tokens),0), COALESCE(SUM(cache_read_tokens),0), COALESCE(SUM(cache_write_tokens),0),
	COALESCE(SUM(output_tokens),0), COALESCE(SUM(reasoning_tokens),0), COALESCE(SUM(latency_ms),0),
	COALESCE(MAX(ts_us),0) FROM calls %s WHERE session_id IN (%s) AND session_id <> '' AND ts_us >= ? AND ts_us < ?
	GROUP BY session_id`

// queryPlan returns EXPLAIN QUERY PLAN's details of q, one a line.
func queryPlan(t *testing.T, db *sql.DB, q string, args ...any) string {
	t.Helper()
	rows, err := db.Query("EXPLAIN QUERY PLAN "+q, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var sb strings.Builder
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		sb.WriteString(detail + "\n")
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return sb.String()
}

// TestUpgradeFromV3 turns a database back into schema 3 (calls_session
// instead of calls_session_sums) and reopens it: migration 4 must swap the
// indexes, the straddling sessions' sums must read the new index alone and
// agree with the table, and a session's calls must still be found by index.
func TestUpgradeFromV3(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v3.db")
	s, err := Open(path, Options{BatchSize: 13, FlushInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	keys := []testKey{{"gk_a", "a", "alice", "eng", "/w/a"}, {"gk_b", "b", "bob", "eng", "/w/b"}}
	r := rand.New(rand.NewPCG(7, 8))
	base := time.Date(2026, 3, 1, 23, 30, 0, 0, time.UTC)
	enqueue := func(s *Store, n int) {
		for i := range n {
			at, c := randomCall(r, base, keys)
			if i%3 == 0 {
				c.SessionID = fmt.Sprint("s-", i%7)
			}
			if !s.Enqueue(Event{Type: TypeCallCompleted, Time: at, Payload: c}) {
				t.Fatal("Enqueue returned false")
			}
		}
		syncStore(t, s)
	}
	enqueue(s, 300)
	closeStore(t, s)

	raw := rawDB(t, path)
	if _, err := raw.Exec(downgradeV4 + "PRAGMA user_version = 3;"); err != nil {
		t.Fatal(err)
	}
	raw.Close()

	s, err = Open(path, Options{BatchSize: 13, FlushInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer closeStore(t, s)
	db := s.ReadDB()
	if v := queryInt(t, db, `PRAGMA user_version`); v != schemaVersion {
		t.Fatalf("user_version = %d, want %d", v, schemaVersion)
	}
	for ix, want := range map[string]int64{"calls_session": 0, "calls_session_sums": 1} {
		if n := queryInt(t, db, `SELECT count(*) FROM sqlite_schema WHERE type = 'index' AND name = ?`, ix); n != want {
			t.Errorf("index %s: %d after the upgrade, want %d", ix, n, want)
		}
	}
	enqueue(s, 200) // the writer goes on with the new index

	ids := []any{"s-0", "s-1", "s-2", "s-3", "s-4", "s-5", "s-6", "none"}
	in := strings.TrimSuffix(strings.Repeat("?, ", len(ids)), ", ")
	args := append(ids, base.Add(-time.Hour).UnixMicro(), base.Add(time.Hour).UnixMicro())
	covered := fmt.Sprintf(straddlerQuery, "", in)
	if p := queryPlan(t, db, covered, args...); !strings.Contains(p, "COVERING INDEX calls_session_sums") {
		t.Errorf("straddling sessions' sums do not read the covering index only:\n%s", p)
	}
	table := loadAgg(t, db, 1, fmt.Sprintf(straddlerQuery, "NOT INDEXED", in), args...)
	if len(table) == 0 {
		t.Fatal("no session calls in the window: the workload is vacuous")
	}
	compareAgg(t, "sums from calls_session_sums", loadAgg(t, db, 1, covered, args...), table)

	// A session's calls (analytics' /sessions/{id}) are still found by index.
	if p := queryPlan(t, db, `SELECT event_id, ttft_ms FROM calls WHERE session_id = ? AND session_id <> ''
		ORDER BY ts_us, event_id`, "s-1"); !strings.Contains(p, "USING INDEX calls_session_sums (session_id=?)") {
		t.Errorf("a session's calls are not found through calls_session_sums:\n%s", p)
	}
}
