#!/usr/bin/env bash
# check-collect.sh - every python suite can be collected by one pytest run.
#
# Usage: bash tests/check-collect.sh SRCDIR   (SRCDIR: the source tree root)
#
# The suites are packages (tests/__init__.py, tests/<suite>/__init__.py):
# without that, each suite's conftest.py is a top-level module `conftest`
# and a test that imports from its own conftest gets whichever suite's was
# loaded last. tests/run still runs the suites one by one (it counts them
# apart); this keeps `pytest tests/` working for everyone else.
# Checks:
#   1. every directory under tests/ holding a test_*.py has an __init__.py;
#   2. `pytest --collect-only tests/` reports no error and collects exactly
#      as many tests as the suites collected one by one.
# Prints "PASS: collect <what>" or "FAIL: collect <what>: <details>".

set -u
if [ $# -ne 1 ] || [ ! -d "$1" ]; then
    echo "usage: bash tests/check-collect.sh SRCDIR" >&2
    exit 2
fi
SRCDIR=$(cd "$1" && pwd) || exit 2
PY=/usr/bin/python3
failed=0
cd "$SRCDIR" || exit 2

missing=""
for dir in $(find tests -name 'test_*.py' -printf '%h\n' | sort -u); do
    [ -f "$dir/__init__.py" ] || missing="$missing $dir"
done
[ -f tests/__init__.py ] || missing="$missing tests"
if [ -z "$missing" ]; then
    echo "PASS: collect packages"
else
    echo "FAIL: collect packages: no __init__.py in$missing"
    failed=1
fi

# "N tests collected" (or "1 test collected"), 0 if pytest said otherwise.
collected() {
    $PY -m pytest -p no:cacheprovider --collect-only -q "$@" 2>&1 |
        sed -n 's/^\([0-9][0-9]*\) tests\{0,1\} collected in .*/\1/p'
}

all=$($PY -m pytest -p no:cacheprovider --collect-only -q tests/ 2>&1)
rc=$?
total=$(printf '%s\n' "$all" | sed -n 's/^\([0-9][0-9]*\) tests\{0,1\} collected in .*/\1/p')
sum=0
for dir in $(find tests -name 'test_*.py' -printf '%h\n' | sort -u); do
    n=$(collected "$dir")
    sum=$((sum + ${n:-0}))
done
if [ $rc -eq 0 ] && [ -n "$total" ] && [ "$total" -eq "$sum" ]; then
    echo "PASS: collect all suites in one run ($total tests)"
else
    echo "FAIL: collect all suites in one run: pytest exit $rc, ${total:-no} tests collected," \
         "$sum suite by suite"
    printf '%s\n' "$all" | grep -E 'ERROR|Error' | head -20
    failed=1
fi
exit $failed
