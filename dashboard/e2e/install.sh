#!/bin/sh
# Installs what the dashboard's browser tests need: Debian's chromium (only if
# /usr/bin/chromium is missing) and the pinned playwright-core (npm ci, from
# the npm registry; playwright-core downloads no browser). Idempotent, and
# quick when everything is already there.
set -eu
cd "$(dirname "$0")"

if [ ! -x /usr/bin/chromium ]; then
  echo "install.sh: installing Debian chromium"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi

# npm ci only when node_modules doesn't match the lock file.
want="$(sha256sum package-lock.json | cut -d' ' -f1)"
have="$(cat node_modules/.lock-sha256 2>/dev/null || true)"
if [ "$want" != "$have" ] || [ ! -d node_modules/playwright-core ]; then
  echo "install.sh: npm ci"
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error
  echo "$want" > node_modules/.lock-sha256
fi
/usr/bin/chromium --version 2>/dev/null | head -n1 || true
