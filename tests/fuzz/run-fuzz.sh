#!/usr/bin/env bash
# tests/fuzz/run-fuzz.sh [SECONDS] [BUILD_DIR] [TARGET...]
#
# Build the libFuzzer targets (clang, ASan + UBSan, straight from the
# library sources: no autotools), replay their seeds and saved reproducers,
# then fuzz for SECONDS in all (default 60), shared between the targets:
#   fuzz_conn    the server's input path (7/12 of the time)
#   fuzz_client  the client's response path (5/12 of the time)
# TARGET... picks some of them (default both). The work corpora live in
# BUILD_DIR (default ${TMPDIR:-/tmp}/wsc-fuzz-build) and grow across runs;
# the committed seeds (tests/fuzz/corpus/, tests/fuzz/client-corpus/) are
# only read.
#
# Ends each target with one line: "PASS: <target> N runs in S s ..." or
# "FAIL: <target> ..."; exits non-zero if any failed (a crash, a leak, a
# broken invariant, a build failure). Environment: CC (default clang),
# FUZZ_FLAGS (extra libFuzzer flags, e.g. "-fork=2" for two processes, or
# "-seed=1").
set -u
SECONDS_TO_RUN=${1:-60}
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$HERE/../.." && pwd)
BUILD=${2:-${TMPDIR:-/tmp}/wsc-fuzz-build}
shift 2 2>/dev/null || shift $#
TARGETS=${*:-fuzz_conn fuzz_client}
CC=${CC:-clang}
PY=/usr/bin/python3
status=0

case $SECONDS_TO_RUN in
    '' | *[!0-9]*) echo "FAIL: fuzz usage: run-fuzz.sh [SECONDS] [BUILD_DIR] [TARGET...]"; exit 1 ;;
esac

# run_target NAME SECONDS SEED_DIR SEED_SCRIPT REPLAY_GLOB... -- LINK_FLAGS...
# Prints PASS:/FAIL: NAME; returns non-zero on failure.
run_target() {
    local name=$1 secs=$2 seed_dir=$3 seed_script=$4
    shift 4
    local replay_dirs=() link=()
    while [ $# -gt 0 ] && [ "$1" != "--" ]; do replay_dirs+=("$1"); shift; done
    shift
    link=("$@")
    local out=$BUILD/$name bin=$BUILD/$name/$name
    fail() {
        echo "FAIL: $name $*"
        return 1
    }
    mkdir -p "$out/corpus" "$out/artifacts" || { fail "cannot create $out"; return 1; }

    # ---- build ----------------------------------------------------------------
    local deps
    deps=$(pkg-config --cflags --libs libevent_core libevent_extra libevent_pthreads \
        libssl libcrypto zlib 2>&1) || { fail "missing development packages: $deps"; return 1; }
    echo "== building $bin"
    # shellcheck disable=SC2086
    if ! "$CC" -g -O1 -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE \
            -Wall -Wextra -Wno-unused-parameter \
            -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
            -fno-omit-frame-pointer -DFUZZ_WRAP_READ -Wl,--wrap=read "${link[@]}" \
            -I"$SRC/include" -I"$SRC/libwsc" "$SRC"/libwsc/*.c "$HERE/fuzz_common.c" "$HERE/$name.c" \
            $deps -pthread -o "$bin" 2>"$out/build.log"; then
        cat "$out/build.log"
        if grep -q 'libclang_rt.fuzzer' "$out/build.log"; then
            fail "build: clang's libFuzzer runtime is missing (Debian 12: apt-get install libclang-rt-14-dev)"
            return 1
        fi
        fail "build failed (see $out/build.log)"
        return 1
    fi
    cat "$out/build.log"

    # ---- seeds ------------------------------------------------------------------
    local seeds=$HERE/$seed_dir
    if ! [ -d "$seeds" ] || [ -z "$(ls -A "$seeds" 2>/dev/null)" ]; then
        seeds=$out/seeds
        "$PY" "$HERE/$seed_script" "$seeds" || { fail "$seed_script failed"; return 1; }
    fi

    # ---- replay: the seeds and every saved reproducer must pass ---------------------
    local replay=("$seeds") files=() d f
    for d in "${replay_dirs[@]}"; do
        [ -d "$d" ] && [ -n "$(ls -A "$d" 2>/dev/null)" ] && replay+=("$d")
    done
    echo "== replaying ${replay[*]}"
    for d in "${replay[@]}"; do
        for f in "$d"/*; do
            [ -f "$f" ] && files+=("$f")
        done
    done
    if ! "$bin" -runs=1 "${files[@]}" >"$out/replay.log" 2>&1; then
        tail -60 "$out/replay.log"
        local bad
        bad=$(grep -o 'Running: .*' "$out/replay.log" | tail -1 | sed 's/Running: //')
        fail "replay crashed on ${bad:-an input} (log: $out/replay.log)"
        return 1
    fi
    echo "${#files[@]} inputs replayed"

    # ---- fuzz ---------------------------------------------------------------------
    echo "== $name: fuzzing for $secs s (corpus $out/corpus, artifacts $out/artifacts)"
    local start rc elapsed runs cov art
    start=$(date +%s)
    # shellcheck disable=SC2086
    "$bin" -max_total_time="$secs" -dict="$HERE/wsc.dict" -max_len=8192 \
        -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$out/artifacts/" ${FUZZ_FLAGS:-} \
        "$out/corpus" "$seeds" >"$out/fuzz.log" 2>&1
    rc=$?
    elapsed=$(( $(date +%s) - start ))
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out/fuzz.log" | tail -1)
    [ -n "$runs" ] || runs=$(grep -o '^#[0-9]*' "$out/fuzz.log" | tail -1 | tr -d '#')
    cov=$(grep -o 'cov: [0-9]* ft: [0-9]*' "$out/fuzz.log" | tail -1)
    if [ $rc -ne 0 ]; then
        grep -v '^#[0-9]' "$out/fuzz.log" | tail -80
        art=$(grep -o "Test unit written to .*" "$out/fuzz.log" | tail -1 | sed 's/Test unit written to //')
        echo "reproduce: $bin ${art:-<artifact>}"
        fail "libFuzzer exited with $rc after ${runs:-?} runs in $elapsed s${art:+: $art}"
        return 1
    fi
    grep -E '^#[0-9]+.*(INITED|DONE)' "$out/fuzz.log" | tail -2
    echo "PASS: $name ${runs:-?} runs in $elapsed s (${cov:-no coverage line})"
}

command -v "$CC" >/dev/null 2>&1 || { echo "FAIL: fuzz $CC not found (Debian 12: apt-get install clang libclang-rt-14-dev)"; exit 1; }
command -v pkg-config >/dev/null 2>&1 || { echo "FAIL: fuzz pkg-config not found"; exit 1; }
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:allocator_may_return_null=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

for t in $TARGETS; do
    case $t in
        fuzz_conn)
            run_target fuzz_conn $((SECONDS_TO_RUN * 7 / 12)) corpus make-corpus.py \
                "$HERE"/corpus-* "$HERE/crashes" -- || status=1 ;;
        fuzz_client)
            # connect() makes a socketpair; RAND_bytes fixes the key (fuzz_client.c).
            run_target fuzz_client $((SECONDS_TO_RUN * 5 / 12)) client-corpus \
                make-client-corpus.py "$HERE/client-crashes" -- \
                -Wl,--wrap=connect -Wl,--wrap=RAND_bytes || status=1 ;;
        *) echo "FAIL: fuzz unknown target $t"; status=1 ;;
    esac
done
exit $status
