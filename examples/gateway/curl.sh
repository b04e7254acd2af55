#!/usr/bin/env bash
# The gateway with nothing but curl: one Anthropic-shape and one OpenAI-shape
# call, each non-streaming and streaming.
#
#   examples/gateway/curl.sh [METIS_URL [METIS_KEY]]   (or set them in the environment)
#
# METIS_ANTHROPIC_MODEL (default haiku) and METIS_OPENAI_MODEL (default
# gpt-5-mini) pick the models. Exits non-zero when a call fails.
set -euo pipefail
url=${1:-${METIS_URL:?set METIS_URL to the gateway root, e.g. http://127.0.0.1:8422}}
key=${2:-${METIS_KEY:?set METIS_KEY to a gw_ token}}
url=${url%/}
amodel=${METIS_ANTHROPIC_MODEL:-haiku}
omodel=${METIS_OPENAI_MODEL:-gpt-5-mini}
# --fail-with-body (curl 7.76 and later) prints the gateway's JSON error
# before failing; an older curl has only -f, which hides it.
fail=(--fail-with-body)
curl --fail-with-body -V >/dev/null 2>&1 || fail=(-f)

echo "== Anthropic shape: POST $url/v1/messages (x-api-key)"
curl -sS "${fail[@]}" "$url/v1/messages" \
	-H "x-api-key: $key" \
	-H "anthropic-version: 2023-06-01" \
	-H "content-type: application/json" \
	-d '{"model":"'"$amodel"'","max_tokens":64,"messages":[{"role":"user","content":"Say hello in one word."}]}'
echo

echo "== Anthropic shape, streamed (Authorization: Bearer works too)"
curl -sSN "${fail[@]}" "$url/v1/messages" \
	-H "Authorization: Bearer $key" \
	-H "anthropic-version: 2023-06-01" \
	-H "content-type: application/json" \
	-d '{"model":"'"$amodel"'","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"Say hello in one word."}]}'

echo "== OpenAI shape: POST $url/v1/chat/completions"
curl -sS "${fail[@]}" "$url/v1/chat/completions" \
	-H "Authorization: Bearer $key" \
	-H "content-type: application/json" \
	-d '{"model":"'"$omodel"'","max_completion_tokens":2048,"messages":[{"role":"user","content":"Say hello in one word."}]}'
echo

echo "== OpenAI shape, streamed with the usage chunk"
curl -sSN "${fail[@]}" "$url/v1/chat/completions" \
	-H "Authorization: Bearer $key" \
	-H "content-type: application/json" \
	-d '{"model":"'"$omodel"'","max_completion_tokens":2048,"stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"Say hello in one word."}]}'
