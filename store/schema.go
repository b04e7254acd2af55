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

-- One row per Claude Code (or X-Metis-Session-Id) session.
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
