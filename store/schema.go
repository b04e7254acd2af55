package store

// schemaV1 is the first migration. It is applied inside BEGIN IMMEDIATE when
// PRAGMA user_version is below 1. The events table is contract §5; calls,
// rollup_hour, rollup_day and sessions are denormalised views of the
// llm.call_completed events, maintained by the writer in the same
// transaction as the events they summarise, so analytics never scan events.
const schemaV1 = `
CREATE TABLE IF NOT EXISTS events (
	id           TEXT PRIMARY KEY,
	type         TEXT NOT NULL,
	timestamp_us INTEGER NOT NULL,
	payload_json TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_ts ON events(timestamp_us);

-- One row per llm.call_completed event.
CREATE TABLE IF NOT EXISTS calls (
	event_id          TEXT PRIMARY KEY,
	ts_us             INTEGER NOT NULL,
	turn_id           TEXT NOT NULL,
	key_id            TEXT NOT NULL DEFAULT '',
	key_name          TEXT NOT NULL DEFAULT '',
	user              TEXT NOT NULL DEFAULT '',
	team              TEXT NOT NULL DEFAULT '',
	workspace         TEXT NOT NULL DEFAULT '',
	session_id        TEXT NOT NULL DEFAULT '',
	inbound_shape     TEXT NOT NULL DEFAULT '',
	provider          TEXT NOT NULL DEFAULT '',
	requested_model   TEXT NOT NULL DEFAULT '',
	model             TEXT NOT NULL DEFAULT '',
	stream            INTEGER NOT NULL DEFAULT 0,
	status            INTEGER NOT NULL DEFAULT 0,
	error_class       TEXT,
	attempts          INTEGER NOT NULL DEFAULT 0,
	input_tokens      INTEGER NOT NULL DEFAULT 0,
	cache_read_tokens INTEGER NOT NULL DEFAULT 0,
	cache_write_tokens INTEGER NOT NULL DEFAULT 0,
	output_tokens     INTEGER NOT NULL DEFAULT 0,
	reasoning_tokens  INTEGER NOT NULL DEFAULT 0,
	cost_usd          REAL,
	priced            INTEGER NOT NULL DEFAULT 0,
	estimated         INTEGER NOT NULL DEFAULT 0,
	cache_savings_usd REAL NOT NULL DEFAULT 0,
	latency_ms        INTEGER NOT NULL DEFAULT 0,
	ttft_ms           INTEGER
);
CREATE INDEX IF NOT EXISTS calls_ts ON calls(ts_us);
CREATE INDEX IF NOT EXISTS calls_key_ts ON calls(key_id, ts_us);
CREATE INDEX IF NOT EXISTS calls_session ON calls(session_id, ts_us) WHERE session_id <> '';

-- Rollups: one row per time bucket and identity/model combination. bucket is
-- the bucket's start in unix seconds (UTC hour or UTC day). user, team and
-- workspace are attributes of the key; they are in the primary key so that
-- queries group by them without a join.
CREATE TABLE IF NOT EXISTS rollup_hour (
	bucket            INTEGER NOT NULL,
	key_id            TEXT NOT NULL,
	user              TEXT NOT NULL,
	team              TEXT NOT NULL,
	workspace         TEXT NOT NULL,
	provider          TEXT NOT NULL,
	model             TEXT NOT NULL,
	inbound_shape     TEXT NOT NULL,
	calls             INTEGER NOT NULL DEFAULT 0,
	errors            INTEGER NOT NULL DEFAULT 0,
	unpriced_calls    INTEGER NOT NULL DEFAULT 0,
	estimated_calls   INTEGER NOT NULL DEFAULT 0,
	cost_usd          REAL NOT NULL DEFAULT 0,
	input_tokens      INTEGER NOT NULL DEFAULT 0,
	cache_read_tokens INTEGER NOT NULL DEFAULT 0,
	cache_write_tokens INTEGER NOT NULL DEFAULT 0,
	output_tokens     INTEGER NOT NULL DEFAULT 0,
	reasoning_tokens  INTEGER NOT NULL DEFAULT 0,
	cache_savings_usd REAL NOT NULL DEFAULT 0,
	latency_ms_sum    INTEGER NOT NULL DEFAULT 0,
	last_ts_us        INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (bucket, key_id, model, provider, inbound_shape, user, team, workspace)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rollup_day (
	bucket            INTEGER NOT NULL,
	key_id            TEXT NOT NULL,
	user              TEXT NOT NULL,
	team              TEXT NOT NULL,
	workspace         TEXT NOT NULL,
	provider          TEXT NOT NULL,
	model             TEXT NOT NULL,
	inbound_shape     TEXT NOT NULL,
	calls             INTEGER NOT NULL DEFAULT 0,
	errors            INTEGER NOT NULL DEFAULT 0,
	unpriced_calls    INTEGER NOT NULL DEFAULT 0,
	estimated_calls   INTEGER NOT NULL DEFAULT 0,
	cost_usd          REAL NOT NULL DEFAULT 0,
	input_tokens      INTEGER NOT NULL DEFAULT 0,
	cache_read_tokens INTEGER NOT NULL DEFAULT 0,
	cache_write_tokens INTEGER NOT NULL DEFAULT 0,
	output_tokens     INTEGER NOT NULL DEFAULT 0,
	reasoning_tokens  INTEGER NOT NULL DEFAULT 0,
	cache_savings_usd REAL NOT NULL DEFAULT 0,
	latency_ms_sum    INTEGER NOT NULL DEFAULT 0,
	last_ts_us        INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (bucket, key_id, model, provider, inbound_shape, user, team, workspace)
) WITHOUT ROWID;

-- One row per agent session (Claude Code's, X-Metis-Session-Id, opencode's).
CREATE TABLE IF NOT EXISTS sessions (
	session_id  TEXT PRIMARY KEY,
	key_id      TEXT NOT NULL,
	key_name    TEXT NOT NULL,
	user        TEXT NOT NULL,
	team        TEXT NOT NULL,
	workspace   TEXT NOT NULL,
	first_ts_us INTEGER NOT NULL,
	last_ts_us  INTEGER NOT NULL,
	calls       INTEGER NOT NULL DEFAULT 0,
	unpriced_calls INTEGER NOT NULL DEFAULT 0,
	cost_usd    REAL NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS sessions_last ON sessions(last_ts_us);

CREATE TABLE IF NOT EXISTS gateway_keys (
	id             TEXT PRIMARY KEY,           -- gk_<ULID>
	token_sha256   BLOB NOT NULL UNIQUE,       -- SHA-256 of the gw_ token; the token itself is never stored
	name           TEXT NOT NULL,
	workspace      TEXT NOT NULL DEFAULT '',
	user           TEXT NOT NULL DEFAULT '',
	team           TEXT NOT NULL DEFAULT '',
	allowed_models TEXT NOT NULL DEFAULT '[]', -- JSON array; empty = every model
	created_at     INTEGER NOT NULL,           -- unix microseconds
	expires_at     INTEGER,
	revoked_at     INTEGER,
	last_used_at   INTEGER
);

-- meta.keys_version is bumped by triggers whenever a key is issued or its
-- validity changes, so a running gateway reloads its in-memory key cache
-- only when something changed (polled once a second).
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
INSERT OR IGNORE INTO meta(name, value) VALUES ('keys_version', 0);
CREATE TRIGGER IF NOT EXISTS gateway_keys_ins AFTER INSERT ON gateway_keys BEGIN
	UPDATE meta SET value = value + 1 WHERE name = 'keys_version';
END;
CREATE TRIGGER IF NOT EXISTS gateway_keys_upd AFTER UPDATE OF name, workspace, user, team, allowed_models, expires_at, revoked_at ON gateway_keys BEGIN
	UPDATE meta SET value = value + 1 WHERE name = 'keys_version';
END;
CREATE TRIGGER IF NOT EXISTS gateway_keys_del AFTER DELETE ON gateway_keys BEGIN
	UPDATE meta SET value = value + 1 WHERE name = 'keys_version';
END;
`

// schemaV2 adds the indexes the analytics answer per-key and per-user
// questions from (/analytics/me, the gateway_key filter, /sessions?user=):
// at 10 million calls they take a key's 30-day figures from 49 ms to 3 ms.
const schemaV2 = `
CREATE INDEX IF NOT EXISTS rollup_day_key ON rollup_day(key_id, bucket);
CREATE INDEX IF NOT EXISTS rollup_hour_key ON rollup_hour(key_id, bucket);
CREATE INDEX IF NOT EXISTS sessions_user_last ON sessions(user, last_ts_us);
CREATE INDEX IF NOT EXISTS sessions_key_last ON sessions(key_id, last_ts_us);
`

// schemaV3 makes every analytics answer read rollups of a few thousand rows
// at most, cold or warm, on 10 million calls:
//
//   - sessions gain the rollups' sums (and mixed, set once a session's calls
//     disagree on key, user, team or workspace), so /analytics/cost
//     group_by=session reads the sessions lying wholly inside the window
//     from this table and only the sessions straddling its edges from calls;
//   - rollup_hour_model (hour × model × provider × shape, no identity) serves
//     the un-filtered model, provider, day, hour and ungrouped answers;
//   - rollup_key_day (day × key × shape × the key's user, team and
//     workspace, no model) serves the key, user, team and workspace
//     groupings and by_key, by_user and by_team.
//
// The new columns and tables are backfilled in the migration: the rollups
// from rollup_hour and rollup_day, the sessions' sums from calls.
const schemaV3 = `
ALTER TABLE sessions ADD COLUMN errors INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN estimated_calls INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN input_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN cache_read_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN cache_write_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN output_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN reasoning_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN cache_savings_usd REAL NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN latency_ms_sum INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN mixed INTEGER NOT NULL DEFAULT 0;
-- Finds the (rare) mixed sessions, which an identity filter must not skip.
CREATE INDEX IF NOT EXISTS sessions_mixed ON sessions(last_ts_us) WHERE mixed <> 0;
-- Covers group_by=session's read of the sessions in a window (all but
-- key_name): in last_ts_us order, not the primary key's random one, so 30
-- days of sessions are a range of the index rather than a random lookup each
-- (at 10M calls 27 ms instead of 400 ms). It replaces sessions_last, which
-- indexed the same column (/sessions reads key_name for its page of rows).
DROP INDEX IF EXISTS sessions_last;
CREATE INDEX IF NOT EXISTS sessions_window ON sessions(last_ts_us, first_ts_us, mixed, key_id, user, team,
	workspace, calls, errors, unpriced_calls, estimated_calls, cost_usd, cache_savings_usd, input_tokens,
	cache_read_tokens, cache_write_tokens, output_tokens, reasoning_tokens, latency_ms_sum);

UPDATE sessions SET errors = c.errors, estimated_calls = c.estimated, input_tokens = c.input,
	cache_read_tokens = c.cache_read, cache_write_tokens = c.cache_write, output_tokens = c.output,
	reasoning_tokens = c.reasoning, cache_savings_usd = c.savings, latency_ms_sum = c.lat,
	mixed = c.mixed OR c.key_id <> sessions.key_id OR c.user <> sessions.user OR c.team <> sessions.team
		OR c.workspace <> sessions.workspace
FROM (SELECT session_id, SUM(status >= 400 OR error_class IS NOT NULL) AS errors, SUM(estimated) AS estimated,
	SUM(input_tokens) AS input, SUM(cache_read_tokens) AS cache_read, SUM(cache_write_tokens) AS cache_write,
	SUM(output_tokens) AS output, SUM(reasoning_tokens) AS reasoning, TOTAL(cache_savings_usd) AS savings,
	SUM(latency_ms) AS lat, MIN(key_id) AS key_id, MIN(user) AS user, MIN(team) AS team,
	MIN(workspace) AS workspace, (MIN(key_id) <> MAX(key_id) OR MIN(user) <> MAX(user)
		OR MIN(team) <> MAX(team) OR MIN(workspace) <> MAX(workspace)) AS mixed
	FROM calls WHERE session_id <> '' GROUP BY session_id) AS c
WHERE sessions.session_id = c.session_id;

CREATE TABLE IF NOT EXISTS rollup_hour_model (
	bucket            INTEGER NOT NULL,
	provider          TEXT NOT NULL,
	model             TEXT NOT NULL,
	inbound_shape     TEXT NOT NULL,
	calls             INTEGER NOT NULL DEFAULT 0,
	errors            INTEGER NOT NULL DEFAULT 0,
	unpriced_calls    INTEGER NOT NULL DEFAULT 0,
	estimated_calls   INTEGER NOT NULL DEFAULT 0,
	cost_usd          REAL NOT NULL DEFAULT 0,
	input_tokens      INTEGER NOT NULL DEFAULT 0,
	cache_read_tokens INTEGER NOT NULL DEFAULT 0,
	cache_write_tokens INTEGER NOT NULL DEFAULT 0,
	output_tokens     INTEGER NOT NULL DEFAULT 0,
	reasoning_tokens  INTEGER NOT NULL DEFAULT 0,
	cache_savings_usd REAL NOT NULL DEFAULT 0,
	latency_ms_sum    INTEGER NOT NULL DEFAULT 0,
	last_ts_us        INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (bucket, model, provider, inbound_shape)
) WITHOUT ROWID;
INSERT INTO rollup_hour_model SELECT bucket, provider, model, inbound_shape, SUM(calls), SUM(errors),
	SUM(unpriced_calls), SUM(estimated_calls), TOTAL(cost_usd), SUM(input_tokens), SUM(cache_read_tokens),
	SUM(cache_write_tokens), SUM(output_tokens), SUM(reasoning_tokens), TOTAL(cache_savings_usd),
	SUM(latency_ms_sum), MAX(last_ts_us)
FROM rollup_hour GROUP BY bucket, model, provider, inbound_shape;

CREATE TABLE IF NOT EXISTS rollup_key_day (
	bucket            INTEGER NOT NULL,
	key_id            TEXT NOT NULL,
	user              TEXT NOT NULL,
	team              TEXT NOT NULL,
	workspace         TEXT NOT NULL,
	inbound_shape     TEXT NOT NULL,
	calls             INTEGER NOT NULL DEFAULT 0,
	errors            INTEGER NOT NULL DEFAULT 0,
	unpriced_calls    INTEGER NOT NULL DEFAULT 0,
	estimated_calls   INTEGER NOT NULL DEFAULT 0,
	cost_usd          REAL NOT NULL DEFAULT 0,
	input_tokens      INTEGER NOT NULL DEFAULT 0,
	cache_read_tokens INTEGER NOT NULL DEFAULT 0,
	cache_write_tokens INTEGER NOT NULL DEFAULT 0,
	output_tokens     INTEGER NOT NULL DEFAULT 0,
	reasoning_tokens  INTEGER NOT NULL DEFAULT 0,
	cache_savings_usd REAL NOT NULL DEFAULT 0,
	latency_ms_sum    INTEGER NOT NULL DEFAULT 0,
	last_ts_us        INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (bucket, key_id, inbound_shape, user, team, workspace)
) WITHOUT ROWID;
INSERT INTO rollup_key_day SELECT bucket, key_id, user, team, workspace, inbound_shape, SUM(calls), SUM(errors),
	SUM(unpriced_calls), SUM(estimated_calls), TOTAL(cost_usd), SUM(input_tokens), SUM(cache_read_tokens),
	SUM(cache_write_tokens), SUM(output_tokens), SUM(reasoning_tokens), TOTAL(cache_savings_usd),
	SUM(latency_ms_sum), MAX(last_ts_us)
FROM rollup_day GROUP BY bucket, key_id, inbound_shape, user, team, workspace;
`

// schemaV4 replaces calls_session (session_id, ts_us) by an index that also
// holds every column group_by=session sums for a session's calls in a window
// (analytics' callSums), so the sessions straddling a window's edge are
// summed from the index alone instead of a calls row lookup per call (at
// 10M calls ~6k lookups for the ~350 sessions straddling a day boundary).
// The identity columns (key_id, user, team, workspace) are left out: only a
// filtered answer reads them, and its straddlers are few.
const schemaV4 = `
DROP INDEX IF EXISTS calls_session;
CREATE INDEX IF NOT EXISTS calls_session_sums ON calls(session_id, ts_us, status, error_class, priced, estimated,
	cost_usd, cache_savings_usd, input_tokens, cache_read_tokens, cache_write_tokens, output_tokens,
	reasoning_tokens, latency_ms) WHERE session_id <> '';
`

// schemaV5 indexes the refused requests alone (a partial index: the other
// events never touch it), so that analytics counts a window's refusals
// without reading every event of the window.
const schemaV5 = `
CREATE INDEX IF NOT EXISTS events_rejected ON events(timestamp_us) WHERE type = 'request.rejected';
`
