#!/usr/bin/env bash
# tests/chat/npm-setup.sh - make puppeteer-core (pinned in package.json /
# package-lock.json beside this script) available and print the
# node_modules directory to use as NODE_PATH. No browser is downloaded
# (PUPPETEER_SKIP_DOWNLOAD): the test drives the system's chromium.
#
# Installs with `npm ci` into tests/chat/node_modules (not committed), or,
# when the source tree is read-only, into $TOP_BUILDDIR/tests/chat/npm.
# Exit status 1 with a reason on stderr when node, npm or the registry is
# unavailable: the browser test then skips.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
BUILD=${TOP_BUILDDIR:-}
export PUPPETEER_SKIP_DOWNLOAD=1

command -v node >/dev/null 2>&1 || { echo "node is not installed" >&2; exit 1; }
want=$(node -e 'const l=require(process.argv[1]);process.stdout.write(l.packages["node_modules/puppeteer-core"].version)' \
       "$HERE/package-lock.json" 2>/dev/null) || want=
have() { # $1: node_modules dir
    [ -n "$want" ] && [ -f "$1/puppeteer-core/package.json" ] &&
    [ "$(node -p 'require(process.argv[1]).version' "$1/puppeteer-core/package.json" 2>/dev/null)" = "$want" ]
}
for dir in "$HERE/node_modules" ${BUILD:+"$BUILD/tests/chat/npm/node_modules"}; do
    if have "$dir"; then
        echo "$dir"
        exit 0
    fi
done
command -v npm >/dev/null 2>&1 || { echo "npm is not installed" >&2; exit 1; }
if [ -w "$HERE" ]; then
    prefix=$HERE
else
    [ -n "$BUILD" ] || { echo "source tree read-only and no TOP_BUILDDIR" >&2; exit 1; }
    prefix=$BUILD/tests/chat/npm
    mkdir -p "$prefix" && cp "$HERE/package.json" "$HERE/package-lock.json" "$prefix/" || exit 1
fi
log=$(mktemp)
if ! (cd "$prefix" && timeout 300 npm ci --no-audit --no-fund --loglevel=error) >"$log" 2>&1; then
    echo "npm ci failed: $(tail -n 3 "$log" | tr '\n' ' ')" >&2
    rm -f "$log"
    exit 1
fi
rm -f "$log"
have "$prefix/node_modules" || { echo "npm ci did not install puppeteer-core $want" >&2; exit 1; }
echo "$prefix/node_modules"
