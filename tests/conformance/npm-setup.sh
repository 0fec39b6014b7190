#!/usr/bin/env bash
# tests/conformance/npm-setup.sh [DIR PACKAGE] - make the npm PACKAGE pinned
# in DIR/package.json / DIR/package-lock.json available, and print the
# node_modules directory to use as NODE_PATH. Without arguments: Node's `ws`
# pinned beside this script, used by run-conformance.sh (the node-ws
# cross-check server) and tests/compat (the node-ws client). tests/chat's
# npm-setup.sh calls it for puppeteer-core.
#
# Installs with `npm ci` into DIR/node_modules (not committed), or, when the
# source tree is read-only, into $TOP_BUILDDIR/tests/<DIR's name>/npm.
# Exit status 1 with a reason on stderr when node, npm or the registry is
# unavailable: callers then skip their Node tests.
set -u
HERE=$(cd "${1:-$(dirname "$0")}" && pwd) || exit 1
PKG=${2:-ws}
BUILD=${TOP_BUILDDIR:-}

if ! command -v node >/dev/null 2>&1; then
    echo "node is not installed" >&2
    exit 1
fi

# The version package-lock.json pins for the package.
want=$(node -e 'const l=require(process.argv[1]);process.stdout.write(l.packages["node_modules/"+process.argv[2]].version)' \
       "$HERE/package-lock.json" "$PKG" 2>/dev/null) || want=
have_pkg() { # $1: node_modules dir
    [ -n "$want" ] && [ -f "$1/$PKG/package.json" ] &&
    [ "$(node -p 'require(process.argv[1]).version' "$1/$PKG/package.json" 2>/dev/null)" = "$want" ]
}

build_dir=${BUILD:+$BUILD/tests/$(basename "$HERE")/npm}
for dir in "$HERE/node_modules" ${build_dir:+"$build_dir/node_modules"}; do
    if have_pkg "$dir"; then
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
    prefix=$build_dir
    mkdir -p "$prefix" && cp "$HERE/package.json" "$HERE/package-lock.json" "$prefix/" || exit 1
fi
log=$(mktemp)
if ! (cd "$prefix" && timeout 300 npm ci --no-audit --no-fund --loglevel=error) >"$log" 2>&1; then
    echo "npm ci failed: $(grep -v 'Unknown user config' "$log" | tail -n 3 | tr '\n' ' ')" >&2
    rm -f "$log"
    exit 1
fi
rm -f "$log"
if ! have_pkg "$prefix/node_modules"; then
    echo "npm ci did not install $PKG $want" >&2
    exit 1
fi
echo "$prefix/node_modules"
