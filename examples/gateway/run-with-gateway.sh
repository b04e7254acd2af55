#!/usr/bin/env bash
# Runs every gateway example against a real Metis build, offline:
#
#   examples/gateway/run-with-gateway.sh ./caddy
#
# It starts the fake provider (internal/cmd/fakeupstream) on a free loopback
# port, starts the given caddy binary with a temporary Caddyfile whose
# providers point at the fake (provider keys from {env.…}), issues a gateway
# key with `caddy metis issue-key`, runs examples/gateway/run-all.sh against
# the gateway, then checks that the provider only ever saw the provider keys
# (never the gateway token) and that the calls are in the caller's spend.
# Exits non-zero on any failure, printing the logs of both servers.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)

if [ $# -ne 1 ]; then
	echo "usage: $0 CADDY_BINARY" >&2
	exit 2
fi
CADDY=$(realpath "$1" 2>/dev/null || true)
if [ -z "$CADDY" ] || [ ! -x "$CADDY" ]; then
	echo "run-with-gateway: $1 is not an executable caddy binary (make build)" >&2
	exit 2
fi

work=$(mktemp -d)
fake_pid= caddy_pid=
stop() {
	local pid=$1
	[ -n "$pid" ] || return 0
	kill "$pid" 2>/dev/null || return 0
	for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
	kill -9 "$pid" 2>/dev/null || true
}
cleanup() {
	stop "$caddy_pid"
	stop "$fake_pid"
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() {
	echo "run-with-gateway: $*" >&2
	for f in fake.log caddy.log; do
		if [ -s "$work/$f" ]; then
			echo "----- $f (last 60 lines)" >&2
			tail -n 60 "$work/$f" >&2
		fi
	done
	exit 1
}

# free_port prints a port nothing listens on right now.
free_port() {
	python3 - 2>/dev/null <<'PY' || echo $((20000 + RANDOM % 20000))
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
PY
}

# wait_http URL PID: waits up to 15 s for URL to answer while PID lives.
wait_http() {
	for _ in $(seq 150); do
		kill -0 "$2" 2>/dev/null || return 1
		curl -s -o /dev/null --max-time 1 "$1" && return 0
		sleep 0.1
	done
	return 1
}

# Caddy keeps its autosave and data under XDG dirs: keep them in $work.
export XDG_CONFIG_HOME=$work/config XDG_DATA_HOME=$work/data
export METIS_EXAMPLES_ANTHROPIC_KEY=sk-ant-examples-provider-key
export METIS_EXAMPLES_OPENAI_KEY=sk-openai-examples-provider-key

# 1. The fake provider, on a port of its own choosing (it prints its URL).
( cd "$root" && go build -o "$work/fakeupstream" ./internal/cmd/fakeupstream ) || fail "building the fake provider failed"
"$work/fakeupstream" -addr 127.0.0.1:0 >"$work/fake.url" 2>"$work/fake.log" &
fake_pid=$!
fake=
for _ in $(seq 100); do
	fake=$(head -n 1 "$work/fake.url" 2>/dev/null || true)
	[ -n "$fake" ] && break
	kill -0 "$fake_pid" 2>/dev/null || fail "the fake provider exited"
	sleep 0.1
done
[[ $fake == http://127.0.0.1:* ]] || fail "the fake provider printed no URL: '$fake'"
wait_http "$fake/v1/models" "$fake_pid" || fail "the fake provider at $fake does not answer"

# 2. A gateway key, in a fresh database.
db=$work/metis.db
out=$("$CADDY" metis issue-key --name examples --workspace "$root" --db "$db") || fail "caddy metis issue-key failed"
token=$(sed -n 's/^token: //p' <<<"$out")
key_id=$(sed -n 's/^key_id: //p' <<<"$out")
[[ $token == gw_* && $key_id == gk_* ]] || fail "issue-key printed: $out"

# 3. The gateway, retrying with new ports should one be taken meanwhile.
started=
for attempt in 1 2 3; do
	gw=$(free_port)
	an=$(free_port)
	[ "$gw" != "$an" ] || continue
	cat >"$work/Caddyfile" <<CF
{
	admin off
	grace_period 1s
	metis {
		db $db
		provider anthropic {
			api_key {env.METIS_EXAMPLES_ANTHROPIC_KEY}
			base_url $fake
		}
		provider openai {
			api_key {env.METIS_EXAMPLES_OPENAI_KEY}
			base_url $fake/v1
		}
		alias haiku anthropic:claude-haiku-4-5
		alias sonnet anthropic:claude-sonnet-4-5
	}
}

http://127.0.0.1:$gw {
	metis_gateway
}

http://127.0.0.1:$an {
	metis_analytics
}
CF
	"$CADDY" run --config "$work/Caddyfile" --adapter caddyfile >>"$work/caddy.log" 2>&1 &
	caddy_pid=$!
	if wait_http "http://127.0.0.1:$gw/healthz" "$caddy_pid"; then
		started=1
		break
	fi
	echo "run-with-gateway: caddy did not come up on $gw/$an (attempt $attempt)" >&2
	stop "$caddy_pid"
	caddy_pid=
done
[ -n "$started" ] || fail "caddy did not start"
url=http://127.0.0.1:$gw
code=$(curl -s -o /dev/null -w '%{http_code}' -H "x-api-key: $token" "$url/healthz")
[ "$code" = 200 ] || fail "healthz with the issued key answered $code"

# 4. Every example.
if [ ! -x "$root/examples/gateway/run-all.sh" ] && [ ! -f "$root/examples/gateway/run-all.sh" ]; then
	fail "examples/gateway/run-all.sh is missing"
fi
bash "$root/examples/gateway/run-all.sh" "$url" "$token" || fail "examples failed against the gateway (see above)"

# 5. What the provider saw: provider keys only, never the gateway token.
upstream=$(grep -cE 'POST /v1/(messages|chat/completions|responses)[? ]' "$work/fake.log" || true)
[ "$upstream" -gt 0 ] || fail "the examples made no provider call"
if grep -qF -- "${token:3}" "$work/fake.log"; then fail "the gateway token reached the provider"; fi
bad=$(grep -E 'POST /v1/' "$work/fake.log" | grep -vE "key=\"($METIS_EXAMPLES_ANTHROPIC_KEY|$METIS_EXAMPLES_OPENAI_KEY)\"" || true)
[ -z "$bad" ] || fail "provider calls without the provider key: $bad"
if grep -qF -- "${token:3}" "$work/caddy.log"; then fail "the gateway token is in caddy's log"; fi

# 6. The calls are traced: the key's own spend counts one call per provider
#    call (the trace writer commits within a few ms; allow a few seconds).
calls=
for _ in $(seq 50); do
	me=$(curl -s -H "Authorization: Bearer $token" "http://127.0.0.1:$an/analytics/me?window=1h" || true)
	calls=$(grep -o '"total":{[^}]*}' <<<"$me" | grep -o '"calls":[0-9]*' | cut -d: -f2 || true)
	[ "${calls:-0}" -ge "$upstream" ] && break
	sleep 0.1
done
[ "${calls:-0}" -eq "$upstream" ] || fail "analytics counts ${calls:-no} calls for key $key_id, the provider saw $upstream: $me"

echo "run-with-gateway: examples ok through $CADDY ($upstream provider calls, all traced)"
