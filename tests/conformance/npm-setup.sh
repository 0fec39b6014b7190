#!/usr/bin/env bash
# tests/conformance/npm-setup.sh - make Node's `ws` (pinned in package.json /
# package-lock.json beside this script) available, and print the node_modules
# directory to use as NODE_PATH. Used by run-conformance.sh (the node-ws
# cross-check server) and tests/compat (the node-ws client).
#
# Installs with `npm ci` into tests/conformance/node_modules (not committed),
# or, when the source tree is read-only, into $TOP_BUILDDIR/tests/conformance/npm.
# Exit status 1 with a reason on stderr when node, npm or the registry is
# unavailable: callers then skip their Node tests.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
BUILD=${TOP_BUILDDIR:-}

if ! command -v node >/dev/null 2>&1; then
    echo "node is not installed" >&2
    exit 1
fi

# The version package-lock.json pins for ws.
want=$(node -e 'const l=require(process.argv[1]);process.stdout.write(l.packages["node_modules/ws"].version)' \
       "$HERE/package-lock.json" 2>/dev/null) || want=
have_ws() { # $1: node_modules dir
    [ -n "$want" ] && [ -f "$1/ws/package.json" ] &&
    [ "$(node -p 'require(process.argv[1]).version' "$1/ws/package.json" 2>/dev/null)" = "$want" ]
}

for dir in "$HERE/node_modules" ${BUILD:+"$BUILD/tests/conformance/npm/node_modules"}; do
    if have_ws "$dir"; then
        echo "$dir"
        exit 0
    fi
done

if ! command -v npm >/dev/null 2>&1; then
    echo "npm is not installed" >&2
    exit 1
fi
if [ -w "$HERE" ]; then
    prefix=$HERE
else
    [ -n "$BUILD" ] || { echo "source tree read-only and no TOP_BUILDDIR" >&2; exit 1; }
    prefix=$BUILD/tests/conformance/npm
    mkdir -p "$prefix" && cp "$HERE/package.json" "$HERE/package-lock.json" "$prefix/" || exit 1
fi
log=$(mktemp)
if ! (cd "$prefix" && timeout 300 npm ci --no-audit --no-fund --loglevel=error) >"$log" 2>&1; then
    echo "npm ci failed: $(grep -v 'Unknown user config' "$log" | tail -n 3 | tr '\n' ' ')" >&2
    rm -f "$log"
    exit 1
fi
rm -f "$log"
if ! have_ws "$prefix/node_modules"; then
    echo "npm ci did not install ws $want" >&2
    exit 1
fi
echo "$prefix/node_modules"
