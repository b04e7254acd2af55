#!/bin/sh
# Re-vendor uPlot into dist/vendor/. Run by hand (needs npm and the npm
# registry); the result is committed, so building Metis never needs Node.
#
#   sh dashboard/vendor.sh            # pinned version below
#   UPLOT_VERSION=1.6.33 sh dashboard/vendor.sh
set -eu
UPLOT_VERSION="${UPLOT_VERSION:-1.6.32}"
here="$(cd "$(dirname "$0")" && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
npm pack "uplot@${UPLOT_VERSION}" --silent >/dev/null
tar xzf "uplot-${UPLOT_VERSION}.tgz"
dest="$here/dist/vendor"
mkdir -p "$dest"
cp package/dist/uPlot.iife.min.js "$dest/uPlot.iife.min.js"
cp package/dist/uPlot.min.css     "$dest/uPlot.min.css"
cp package/LICENSE                "$dest/uPlot.LICENSE"
printf 'uplot@%s (npm pack), sha256:\n' "$UPLOT_VERSION" > "$dest/VERSION"
(cd "$dest" && sha256sum uPlot.iife.min.js uPlot.min.css uPlot.LICENSE) >> "$dest/VERSION"
echo "vendored uplot@${UPLOT_VERSION} into $dest"
