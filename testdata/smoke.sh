#!/usr/bin/env bash
# Smoke test of the built binary, as a new user would use it:
# issue a key, start the gateway, curl it with and without the key, reload
# twenty times, and check the database handle count and that the token is
# nowhere in the database file.
set -euo pipefail
CADDY=$(realpath "${1:-./caddy}")
work=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
export METIS_DB=$work/home/.metis/metis.db
fail() { echo "smoke: $*" >&2; [ -f "$work/caddy.log" ] && tail -n 30 "$work/caddy.log" >&2; exit 1; }

port() { python3 - 2>/dev/null <<'PY' || echo $((20000 + RANDOM % 20000))
import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])
PY
}
GW=$(port); AN=$(port); ADMIN=$(port)

out=$("$CADDY" metis issue-key --name alice-laptop --workspace /tmp/proj)
[ "$(wc -l <<<"$out")" -eq 2 ] || fail "issue-key printed: $out"
grep -q '^key_id: gk_' <<<"$out" || fail "no key_id line"
TOKEN=$(sed -n 's/^token: //p' <<<"$out")
[[ $TOKEN == gw_* ]] || fail "no token line"
KEY_ID=$(sed -n 's/^key_id: //p' <<<"$out")
[ "$(stat -c %a "$METIS_DB")" = 600 ] || fail "database mode $(stat -c %a "$METIS_DB")"
[ "$(stat -c %a "$(dirname "$METIS_DB")")" = 700 ] || fail "folder mode"
"$CADDY" metis list-keys | grep -q "$KEY_ID" || fail "list-keys lacks the key"
if "$CADDY" metis list-keys | grep -q "${TOKEN:3}"; then fail "list-keys shows the token"; fi
if "$CADDY" metis revoke-key gk_01NOSUCHKEY000000000000000 2>"$work/err"; then fail "revoking an unknown key succeeded"; fi
[ "$(wc -l <"$work/err")" -eq 1 ] || fail "unknown key error is not one line: $(cat "$work/err")"
if "$CADDY" metis list-keys --db "$work/typo/metis.db" 2>"$work/err"; then fail "list-keys on a missing database succeeded"; fi
grep -q "no trace database" "$work/err" || fail "missing database error: $(cat "$work/err")"
[ ! -e "$work/typo" ] || fail "list-keys created a database for a mistyped --db"
if "$CADDY" metis issue-key --name x --expires soon 2>"$work/err"; then fail "bad --expires accepted"; fi
grep -q -- "--expires" "$work/err" || fail "bad --expires error: $(cat "$work/err")"
if "$CADDY" metis prune --older-than 7d 2>"$work/err"; then fail "prune kept less than 32 days"; fi
grep -q "keeps less than 32 days" "$work/err" || fail "short prune error: $(cat "$work/err")"
if "$CADDY" metis prune 2>"$work/err"; then fail "prune without --older-than ran"; fi
grep -q -- "--older-than is required" "$work/err" || fail "prune without --older-than error: $(cat "$work/err")"
"$CADDY" metis prune --older-than 90d | grep -q "^pruned 0 events and 0 calls dated before " || fail "prune output"
for m in "" " " ","; do
	if "$CADDY" metis issue-key --name x --models "$m" >"$work/out" 2>"$work/err"; then fail "--models '$m' issued a key"; fi
	grep -q "lists no model" "$work/err" || fail "--models '$m' error: $(cat "$work/err")"
	if grep -q token: "$work/out"; then fail "--models '$m' printed a token"; fi
done

cat >"$work/Caddyfile" <<CF
{
	admin 127.0.0.1:$ADMIN
	grace_period 1s
	metis {
		provider anthropic {
			api_key {env.METIS_SMOKE_PROVIDER_KEY}
		}
		alias haiku anthropic:claude-haiku-4-5
	}
}
http://127.0.0.1:$GW {
	metis_gateway
}
http://127.0.0.1:$AN {
	metis_analytics
}
CF
METIS_SMOKE_PROVIDER_KEY=sk-ant-smoke-secret "$CADDY" run --config "$work/Caddyfile" --adapter caddyfile >"$work/caddy.log" 2>&1 &
pid=$!
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$GW/healthz" && break; sleep 0.1; done

code=$(curl -s -o "$work/body" -D "$work/hdr" -w '%{http_code}' -H "x-api-key: $TOKEN" "http://127.0.0.1:$GW/healthz")
[ "$code" = 200 ] || fail "healthz with key: $code"
grep -qi '^Metis-API-Version: 1.0' "$work/hdr" || fail "no Metis-API-Version"
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$GW/healthz")
[ "$code" = 200 ] || fail "healthz without key (load-balancer probe): $code"
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$AN/health")
[ "$code" = 200 ] || fail "analytics health: $code"

# The provider key never shows in the admin API's config.
if curl -s "http://127.0.0.1:$ADMIN/config/" | grep -q sk-ant-smoke-secret; then fail "provider key in /config/"; fi

fds() { find "/proc/$pid/fd" -lname "$METIS_DB" 2>/dev/null | wc -l; }
before=$(fds)
for i in $(seq 20); do
	sed -i "s/grace_period .*/grace_period ${i}s/" "$work/Caddyfile"
	"$CADDY" reload --config "$work/Caddyfile" --adapter caddyfile --address "127.0.0.1:$ADMIN" >/dev/null 2>&1 || fail "reload $i"
done
after=$(fds)
# Read connections open lazily (at most 4 for the store and 2 for the
# budget ledger); a store leaked per reload would add at least 20.
[ "$after" -le $((before + 6)) ] || fail "database handles grew from $before to $after over 20 reloads"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "x-api-key: $TOKEN" "http://127.0.0.1:$GW/healthz")
[ "$code" = 200 ] || fail "healthz after reloads: $code"

# Revoke while running: refused within 5 s.
"$CADDY" metis revoke-key "$KEY_ID" | grep -q "^revoked: $KEY_ID" || fail "revoke-key output"
"$CADDY" metis revoke-key "$KEY_ID" | grep -q "^already revoked: $KEY_ID" || fail "a second revoke-key does not say the key was already revoked"
ok=
for _ in $(seq 50); do
	code=$(curl -s -o /dev/null -w '%{http_code}' -H "x-api-key: $TOKEN" "http://127.0.0.1:$GW/v1/models")
	[ "$code" = 401 ] && { ok=1; break; }
	sleep 0.1
done
[ -n "$ok" ] || fail "revoked key still accepted after 5 s"

kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
if grep -a -q "${TOKEN:3}" "$METIS_DB" "$METIS_DB-wal" 2>/dev/null; then fail "token text in the database"; fi
if grep -q "${TOKEN:3}" "$work/caddy.log"; then fail "token in the log"; fi
if grep -q sk-ant-smoke-secret "$work/caddy.log"; then fail "provider key in the log"; fi
echo "smoke: ok (database handles before/after 20 reloads: $before/$after)"
