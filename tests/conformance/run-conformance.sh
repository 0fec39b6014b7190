#!/usr/bin/env bash
# tests/conformance/run-conformance.sh - the protocol conformance suite
# (wsconf.py, Autobahn-style sections 1-13) against examples/echo, then the
# same suite against Node's `ws` as a cross-check of the suite itself.
#
#   TOP_BUILDDIR=/path/to/build bash tests/conformance/run-conformance.sh
#
# Runs, each printing one PASS:/FAIL:/SKIP: line per case:
#   libwsc           echo --max-message 16777216, every section
#   libwsc-takeover  echo --deflate-context-takeover, sections 12 and 13
#   libwsc-tls       echo --cert/--key over wss, all but sections 6 and 9
#                    (SANITIZER=none only)
#   node-ws          tests/conformance/node-echo.js (npm ws, perMessageDeflate)
# Reports: $TOP_BUILDDIR/tests/conformance/report.json (+ report.md), and
# report-libwsc-takeover.* and report-node-ws.* beside them.
# Exit status 0 when nothing failed.
set -u
SRC=${TOP_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD=${TOP_BUILDDIR:-$SRC}
export TOP_SRCDIR=$SRC TOP_BUILDDIR=$BUILD
PY=/usr/bin/python3
HERE=$SRC/tests/conformance
OUT=$BUILD/tests/conformance
ECHO=$BUILD/examples/echo/echo
MAX=16777216
BUFFERED=$((2 * MAX + 64))
SLOW=1
case ${SANITIZER:-} in *thread*) SLOW=3 ;; esac

mkdir -p "$OUT"
work=$(mktemp -d)
SPID=
# shellcheck disable=SC2317  # called by the trap
cleanup() {
    if [ -n "$SPID" ] && kill -0 "$SPID" 2>/dev/null; then
        kill -TERM "$SPID" 2>/dev/null
        sleep 1
        kill -KILL "$SPID" 2>/dev/null
    fi
    rm -rf "$work"
}
trap cleanup EXIT
status=0

fail() { echo "FAIL: conformance $*"; status=1; }

# start_server NAME CMD...: start it, wait for "listening on ws://127.0.0.1:PORT/".
# Sets SPID and PORT; returns 1 if it does not come up.
start_server() {
    local name=$1 i=0
    shift
    "$@" >"$work/$name.out" 2>"$work/$name.err" </dev/null &
    SPID=$!
    PORT=
    while [ $i -lt $((100 * SLOW)) ]; do
        PORT=$(sed -n 's|^listening on wss\{0,1\}://127\.0\.0\.1:\([0-9][0-9]*\)/$|\1|p' "$work/$name.out")
        [ -n "$PORT" ] && return 0
        kill -0 "$SPID" 2>/dev/null || break
        sleep 0.1
        i=$((i + 1))
    done
    fail "$name: server did not start: $(tail -n 3 "$work/$name.err" | tr '\n' ' ')"
    kill -KILL "$SPID" 2>/dev/null
    wait "$SPID" 2>/dev/null
    SPID=
    return 1
}

# stop_server NAME: SIGTERM, at most 10 s (x SLOW) to exit 0, no sanitizer report.
stop_server() {
    local name=$1 i=0 rc
    kill -TERM "$SPID" 2>/dev/null
    while kill -0 "$SPID" 2>/dev/null && [ $i -lt $((100 * SLOW)) ]; do
        sleep 0.1
        i=$((i + 1))
    done
    if kill -0 "$SPID" 2>/dev/null; then
        kill -KILL "$SPID" 2>/dev/null
        wait "$SPID" 2>/dev/null
        fail "$name server did not exit within $((10 * SLOW)) s of SIGTERM"
    else
        wait "$SPID"
        rc=$?
        if [ $rc -eq 0 ]; then
            echo "PASS: conformance $name server exits 0 on SIGTERM"
        else
            fail "$name server exits 0 on SIGTERM: exit status $rc"
        fi
    fi
    SPID=
    if grep -qE 'ERROR: AddressSanitizer|runtime error:|WARNING: ThreadSanitizer|LeakSanitizer' "$work/$name.err"; then
        fail "$name server: sanitizer report on stderr"
        sed 's/^/    /' "$work/$name.err" | head -n 60
    fi
}

# run_suite NAME REPORT [wsconf options...]
run_suite() {
    local name=$1 report=$2
    shift 2
    echo "== conformance $name: ${SCHEME:-ws}://127.0.0.1:$PORT/"
    if ! $PY "$HERE/wsconf.py" --url "${SCHEME:-ws}://127.0.0.1:$PORT/" --server-name "$name" \
            --max-message "$MAX" --report "$report" "$@"; then
        status=1
    fi
}

# ---- libwsc ------------------------------------------------------------------
if [ ! -x "$ECHO" ]; then
    fail "libwsc: $ECHO is not built"
else
    # The echo relays without loss: its output cap must hold two messages.
    if start_server libwsc "$ECHO" 127.0.0.1:0 --max-message "$MAX" --max-buffered "$BUFFERED"; then
        run_suite libwsc "$OUT/report.json"
        stop_server libwsc
    fi
    if "$ECHO" --help 2>/dev/null | grep -q -- '--deflate-context-takeover'; then
        if start_server libwsc-takeover "$ECHO" 127.0.0.1:0 --max-message "$MAX" \
                --max-buffered "$BUFFERED" --deflate-context-takeover; then
            run_suite libwsc-takeover "$OUT/report-libwsc-takeover.json" --only 12,13
            stop_server libwsc-takeover
        fi
    else
        echo "SKIP: conformance libwsc-takeover (echo has no --deflate-context-takeover)"
    fi
fi

# ---- libwsc over wss (TLS) ----------------------------------------------------
# Every section but 6 (UTF-8) and 9 (limits/performance), which exercise
# nothing TLS changes and take most of the time; all 936 cases pass over wss
# when run by hand. Only without sanitizers (it adds about a minute).
if [ "${SANITIZER:-none}" != none ]; then
    echo "SKIP: conformance libwsc-tls (runs only without sanitizers: time budget)"
elif ! command -v openssl >/dev/null 2>&1; then
    echo "SKIP: conformance libwsc-tls (the openssl command is not installed)"
elif ! openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout "$work/tls.key" -out "$work/tls.pem" -days 1 -subj /CN=localhost \
        -addext subjectAltName=IP:127.0.0.1 >/dev/null 2>&1; then
    fail "libwsc-tls: openssl could not make a certificate"
elif start_server libwsc-tls "$ECHO" 127.0.0.1:0 --max-message "$MAX" --max-buffered "$BUFFERED" \
        --cert "$work/tls.pem" --key "$work/tls.key"; then
    SCHEME=wss run_suite libwsc-tls "$OUT/report-libwsc-tls.json" --exclude 6,9
    stop_server libwsc-tls
fi
# ---- end wss ----

# ---- node-ws: the same suite against a known-good server -------------------
if ! command -v node >/dev/null 2>&1; then
    echo "SKIP: conformance node-ws (node is not installed)"
elif ! nm=$(bash "$HERE/npm-setup.sh" 2>"$work/npm.err"); then
    echo "SKIP: conformance node-ws ($(tr '\n' ' ' <"$work/npm.err"))"
else
    if NODE_PATH=$nm start_server node-ws node "$HERE/node-echo.js" 0; then
        run_suite node-ws "$OUT/report-node-ws.json"
        stop_server node-ws
    fi
fi

exit $status
