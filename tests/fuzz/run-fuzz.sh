#!/usr/bin/env bash
# tests/fuzz/run-fuzz.sh [SECONDS] [BUILD_DIR]
#
# Build the fuzz_conn libFuzzer target (clang, ASan + UBSan, straight from
# the library sources: no autotools), replay the seeds and the saved
# reproducers, then fuzz for SECONDS (default 60). The work corpus lives in
# BUILD_DIR (default ${TMPDIR:-/tmp}/wsc-fuzz-build) and grows across runs;
# the committed seeds in tests/fuzz/corpus/ are only read.
#
# Ends with one line: "PASS: fuzz_conn N runs in S s ..." or "FAIL: fuzz_conn
# ..."; exits non-zero on failure (a crash, a leak, a broken invariant, a
# build failure). Environment: CC (default clang), FUZZ_FLAGS (extra
# libFuzzer flags, e.g. "-fork=2" for two processes, or "-seed=1").
set -u
SECONDS_TO_RUN=${1:-60}
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$HERE/../.." && pwd)
BUILD=${2:-${TMPDIR:-/tmp}/wsc-fuzz-build}
CC=${CC:-clang}
PY=/usr/bin/python3
BIN=$BUILD/fuzz_conn

fail() {
    echo "FAIL: fuzz_conn $*"
    exit 1
}

case $SECONDS_TO_RUN in
    '' | *[!0-9]*) fail "usage: run-fuzz.sh [SECONDS] [BUILD_DIR]" ;;
esac
mkdir -p "$BUILD/corpus" "$BUILD/artifacts" || fail "cannot create $BUILD"
command -v "$CC" >/dev/null 2>&1 || fail "$CC not found (Debian 12: apt-get install clang libclang-rt-14-dev)"
command -v pkg-config >/dev/null 2>&1 || fail "pkg-config not found"

# ---- build ------------------------------------------------------------------
deps=$(pkg-config --cflags --libs libevent_core libevent_extra libevent_pthreads \
    libssl libcrypto zlib 2>&1) || fail "missing development packages: $deps"
echo "== building $BIN"
# shellcheck disable=SC2086
if ! "$CC" -g -O1 -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE \
        -Wall -Wextra -Wno-unused-parameter \
        -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
        -fno-omit-frame-pointer -DFUZZ_WRAP_READ -Wl,--wrap=read \
        -I"$SRC/include" -I"$SRC/libwsc" "$SRC"/libwsc/*.c "$HERE/fuzz_conn.c" \
        $deps -pthread -o "$BIN" 2>"$BUILD/build.log"; then
    cat "$BUILD/build.log"
    if grep -q 'libclang_rt.fuzzer' "$BUILD/build.log"; then
        fail "build: clang's libFuzzer runtime is missing (Debian 12: apt-get install libclang-rt-14-dev)"
    fi
    fail "build failed (see $BUILD/build.log)"
fi
cat "$BUILD/build.log"

# ---- seeds ------------------------------------------------------------------
if [ -d "$HERE/corpus" ] && [ -n "$(ls -A "$HERE/corpus" 2>/dev/null)" ]; then
    SEEDS=$HERE/corpus
else
    SEEDS=$BUILD/seeds
    "$PY" "$HERE/make-corpus.py" "$SEEDS" || fail "make-corpus.py failed"
fi

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:allocator_may_return_null=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

# ---- replay: the seeds and every saved reproducer must pass -------------------
replay=("$SEEDS")
for d in "$HERE"/corpus-* "$HERE"/crashes; do
    [ -d "$d" ] && [ -n "$(ls -A "$d" 2>/dev/null)" ] && replay+=("$d")
done
echo "== replaying ${replay[*]}"
files=()
for d in "${replay[@]}"; do
    for f in "$d"/*; do
        [ -f "$f" ] && files+=("$f")
    done
done
if ! "$BIN" -runs=1 "${files[@]}" >"$BUILD/replay.log" 2>&1; then
    tail -60 "$BUILD/replay.log"
    bad=$(grep -o 'Running: .*' "$BUILD/replay.log" | tail -1 | sed 's/Running: //')
    fail "replay crashed on ${bad:-an input} (log: $BUILD/replay.log)"
fi
echo "${#files[@]} inputs replayed"

# ---- fuzz -----------------------------------------------------------------------
echo "== fuzzing for $SECONDS_TO_RUN s (corpus $BUILD/corpus, artifacts $BUILD/artifacts)"
start=$(date +%s)
# shellcheck disable=SC2086
"$BIN" -max_total_time="$SECONDS_TO_RUN" -dict="$HERE/wsc.dict" -max_len=8192 \
    -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$BUILD/artifacts/" ${FUZZ_FLAGS:-} \
    "$BUILD/corpus" "$SEEDS" >"$BUILD/fuzz.log" 2>&1
rc=$?
elapsed=$(( $(date +%s) - start ))
runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$BUILD/fuzz.log" | tail -1)
[ -n "$runs" ] || runs=$(grep -o '^#[0-9]*' "$BUILD/fuzz.log" | tail -1 | tr -d '#')
cov=$(grep -o 'cov: [0-9]* ft: [0-9]*' "$BUILD/fuzz.log" | tail -1)
if [ $rc -ne 0 ]; then
    grep -v '^#[0-9]' "$BUILD/fuzz.log" | tail -80
    art=$(grep -o "Test unit written to .*" "$BUILD/fuzz.log" | tail -1 | sed 's/Test unit written to //')
    echo "reproduce: $BIN ${art:-<artifact>}"
    fail "libFuzzer exited with $rc after ${runs:-?} runs in $elapsed s${art:+: $art}"
fi
grep -E '^#[0-9]+.*(INITED|DONE)' "$BUILD/fuzz.log" | tail -2
echo "PASS: fuzz_conn ${runs:-?} runs in $elapsed s (${cov:-no coverage line})"
