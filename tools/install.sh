#!/usr/bin/env bash
# Installs the sqlite3 shell (from Debian, when missing) and the pinned real
# clients (Claude Code, Codex CLI, @anthropic-ai/sdk, openai, the Vercel AI
# SDK) into tools/node_modules
# from package-lock.json. Idempotent: when the
# installed tree already matches the lock file it returns at once.
set -euo pipefail
cd "$(dirname "$0")"

# The sqlite3 shell: the README reads the trace with it, and a test checks
# that doing so while the gateway runs loses nothing.
if ! command -v sqlite3 >/dev/null; then
	command -v apt-get >/dev/null || { echo "tools/install.sh: install the sqlite3 shell (no apt-get here)" >&2; exit 1; }
	echo "tools/install.sh: installing Debian's sqlite3 shell" >&2
	SUDO=""
	[ "$(id -u)" -eq 0 ] || SUDO="sudo"
	$SUDO apt-get update -qq
	$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends sqlite3 >/dev/null
fi

stamp=node_modules/.metis-install-stamp
want=$(sha256sum package-lock.json | cut -d' ' -f1)

claude_ok() {
	# The npm wrapper's postinstall copies the platform binary over
	# bin/claude.exe; a skipped postinstall leaves a small placeholder.
	local bin=node_modules/@anthropic-ai/claude-code/bin/claude.exe
	[ -x "$bin" ] && [ "$(stat -c %s "$bin")" -gt 1048576 ]
}

codex_ok() {
	# Codex CLI's binary comes in its platform package, an optional
	# dependency npm installs for this machine only.
	compgen -G 'node_modules/@openai/codex-*/vendor/*/bin/codex' >/dev/null
}

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && claude_ok && codex_ok; then
	exit 0
fi

if ! command -v npm >/dev/null; then
	# A machine with only Go and gcc: take Node.js and npm from Debian.
	echo "tools/install.sh: installing Debian's nodejs and npm" >&2
	SUDO=""
	[ "$(id -u)" -eq 0 ] || SUDO="sudo"
	$SUDO apt-get update -qq
	$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi

npm ci --no-audit --no-fund --loglevel=error

if ! claude_ok; then
	# npm versions that hold back install scripts skip the wrapper's
	# postinstall: run it ourselves (it only copies a file from the
	# platform package npm already installed).
	node node_modules/@anthropic-ai/claude-code/install.cjs
fi
claude_ok || { echo "tools/install.sh: Claude Code native binary missing" >&2; exit 1; }
codex_ok || { echo "tools/install.sh: Codex CLI's platform binary missing (npm skipped its optional dependency?)" >&2; exit 1; }

node_modules/.bin/claude --version >/dev/null
# Codex writes helper links under its home even for --version: a throwaway one.
codex_home=$(mktemp -d)
CODEX_HOME=$codex_home node_modules/.bin/codex --version >/dev/null 2>&1 ||
	{ rm -rf "$codex_home"; echo "tools/install.sh: Codex CLI does not run (node_modules/.bin/codex --version)" >&2; exit 1; }
rm -rf "$codex_home"
echo "$want" > "$stamp"
