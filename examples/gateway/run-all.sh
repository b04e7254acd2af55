#!/usr/bin/env bash
# Runs every runnable gateway example (Go, Node, curl) against a gateway and
# exits non-zero when any fails.
#
#   examples/gateway/run-all.sh METIS_URL METIS_KEY
#
# METIS_URL is the gateway root (e.g. http://127.0.0.1:8422), METIS_KEY a gw_
# token (both may come from the environment instead). METIS_ANTHROPIC_MODEL
# and METIS_OPENAI_MODEL pick the models (defaults haiku and gpt-5-mini),
# METIS_RESPONSES_MODEL the Responses API example's (default "gpt-5-mini
# haiku": it runs once per model, an OpenAI one and a Claude one, to which
# the gateway translates; "none" skips it).
# The Node SDKs come from tools/node_modules, installed on first use by
# tools/install.sh. The fake upstream speaks both shapes, so pointing
# METIS_URL straight at `go run ./internal/cmd/fakeupstream` also works.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"

export METIS_URL=${1:-${METIS_URL:-}}
export METIS_KEY=${2:-${METIS_KEY:-}}
if [ -z "$METIS_URL" ] || [ -z "$METIS_KEY" ]; then
	echo "usage: $0 METIS_URL METIS_KEY" >&2
	exit 2
fi

tools/install.sh || { echo "run-all: tools/install.sh failed" >&2; exit 1; }

bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
if ! go build -o "$bin/" ./examples/gateway/go/anthropic ./examples/gateway/go/openai ./examples/gateway/go/responses; then
	echo "run-all: building the Go examples failed" >&2
	exit 1
fi

passed=0
failed=()
run() {
	local name=$1
	shift
	echo "=== $name"
	if timeout 180 "$@"; then
		passed=$((passed + 1))
	else
		echo "--- $name FAILED (exit $?)" >&2
		failed+=("$name")
	fi
}

run go/anthropic "$bin/anthropic"
run go/openai "$bin/openai"
responses_models=${METIS_RESPONSES_MODEL:-gpt-5-mini haiku}
if [ "$responses_models" = none ]; then
	echo "=== go/responses skipped (METIS_RESPONSES_MODEL=none)"
else
	for m in $responses_models; do
		run "go/responses ($m)" env METIS_RESPONSES_MODEL="$m" "$bin/responses"
	done
fi
run node/anthropic.mjs node examples/gateway/node/anthropic.mjs
run node/openai.mjs node examples/gateway/node/openai.mjs
run curl.sh examples/gateway/curl.sh

echo "run-all: $passed examples ok, ${#failed[@]} failing${failed[*]:+: ${failed[*]}}"
[ ${#failed[@]} -eq 0 ]
