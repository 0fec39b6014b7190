#!/usr/bin/env bash
# check-man.sh - consistency checks for the man pages in man/.
#
# Usage: bash tests/check-man.sh SRCDIR   (SRCDIR: the source tree root)
#
# Checks:
#   1. every WS_EXTERN function in include/wsc.h has man/<function>.3;
#   2. man/man.mk lists exactly the .3 files in man/;
#   3. every page renders with groff -man -ww -z without a diagnostic, and
#      every ".so man3/X.3" stub points to an existing page;
#   4. every prototype of wsc.h appears, as written there, in the SYNOPSIS
#      of the page its function's man/<function>.3 leads to;
#   5. the EXAMPLE section of every page that is not a stub compiles
#      (code between .EX/.EE or .nf/.fi, groff escapes undone) with
#      cc -std=c11 -Wall -Wextra -Werror -fsyntax-only -I SRCDIR/include.
# Prints "PASS: man <what>" or "FAIL: man <what>: <details>" per check and
# exits 1 when any check failed. Needs bash, groff, perl and a C compiler.

set -u

if [ $# -ne 1 ] || [ ! -d "$1" ]; then
    echo "usage: bash tests/check-man.sh SRCDIR" >&2
    exit 2
fi
SRCDIR=$(cd "$1" && pwd) || exit 2
HEADER="$SRCDIR/include/wsc.h"
MANDIR="$SRCDIR/man"
CC=${CC:-cc}

failed=0
pass() { echo "PASS: man $1"; }
fail() { echo "FAIL: man $1: $2"; failed=1; }

for tool in groff perl "$CC"; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        fail "tools" "$tool not found"
        exit 1
    fi
done
if [ ! -f "$HEADER" ] || [ ! -d "$MANDIR" ]; then
    fail "layout" "$HEADER or $MANDIR missing"
    exit 1
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/check-man.XXXXXX") || exit 2
trap 'rm -rf "$TMP"' EXIT
# ".so man3/X.3" resolves through this include directory.
ln -s "$MANDIR" "$TMP/man3"

# Normalise a C declaration: one line, single spaces, none after "(" or
# before ")" and ",", and no space between "*" and the following name.
normalise() {
    perl -0777 -pe 's/\s+/ /g; s/^ //; s/ $//; s/\( /(/g; s/ \)/)/g; s/ ,/,/g; s/\* /*/g'
}

# The WS_EXTERN declarations of wsc.h, one per line, without WS_EXTERN.
perl -0777 -ne 'while (/^WS_EXTERN\s+([^;]*;)/mg) { my $d = $1; $d =~ s/\s+/ /g; print "$d\n" }' \
    "$HEADER" | perl -pe 's/\( /(/g; s/ \)/)/g; s/ ,/,/g; s/\* /*/g' > "$TMP/protos"
perl -ne 'print "$1\n" if /([A-Za-z_][A-Za-z0-9_]*)\(/' "$TMP/protos" > "$TMP/functions"
nfunc=$(wc -l < "$TMP/functions")

# The page a man/X.3 file leads to: itself, or its .so target.
so_target() {
    local t
    t=$(sed -n '1s/^\.so[[:space:]]\{1,\}man3\/\([^[:space:]]*\)[[:space:]]*$/\1/p' "$1")
    if [ -n "$t" ]; then echo "$t"; else basename "$1"; fi
}
is_stub() { head -n 1 "$1" | grep -q '^\.so[[:space:]]'; }

# ---- 1. a page for every function -------------------------------------------
if [ "$nfunc" -eq 0 ]; then
    fail "functions" "no WS_EXTERN function found in $HEADER"
else
    missing=""
    while read -r fn; do
        [ -f "$MANDIR/$fn.3" ] || missing="$missing $fn.3"
    done < "$TMP/functions"
    if [ -z "$missing" ]; then
        pass "pages for all $nfunc functions"
    else
        fail "pages for all $nfunc functions" "missing:$missing"
    fi
fi

# ---- 2. man.mk lists every page, and only those -------------------------------
if [ ! -f "$MANDIR/man.mk" ]; then
    fail "man.mk" "man/man.mk missing"
else
    perl -0777 -ne 's/\\\n/ /g; print join("\n", split(" ", $1)), "\n" while /^dist_man3_MANS\s*\+?=(.*)$/mg' \
        "$MANDIR/man.mk" | sort > "$TMP/listed"
    (cd "$SRCDIR" && ls man/*.3) | sort > "$TMP/present"
    if [ ! -s "$TMP/listed" ]; then
        fail "man.mk" "no dist_man3_MANS list"
    elif cmp -s "$TMP/listed" "$TMP/present"; then
        pass "man.mk lists all $(wc -l < "$TMP/present") pages"
    else
        fail "man.mk" "listed and present pages differ: $(diff "$TMP/listed" "$TMP/present" | grep '^[<>]' | tr '\n' ' ')"
    fi
fi

# ---- 3. every page renders without warnings -----------------------------------
render_errors=""
npages=0
for page in "$MANDIR"/*.3; do
    [ -e "$page" ] || continue
    npages=$((npages + 1))
    name=$(basename "$page")
    if is_stub "$page"; then
        target=$(so_target "$page")
        if [ "$(wc -l < "$page")" -ne 1 ] || [ "$target" = "$name" ]; then
            render_errors="$render_errors $name: a stub must be the single line .so man3/<page>.3;"
            continue
        fi
        if [ ! -f "$MANDIR/$target" ] || is_stub "$MANDIR/$target"; then
            render_errors="$render_errors $name: .so target $target is not a page;"
            continue
        fi
    fi
    err=$(cd "$MANDIR" && groff -man -ww -z -I "$TMP" "$name" 2>&1 >/dev/null)
    if [ -n "$err" ]; then
        render_errors="$render_errors $(echo "$err" | head -n 3 | tr '\n' ' ');"
    fi
done
if [ "$npages" -eq 0 ]; then
    fail "render" "no pages in $MANDIR"
elif [ -z "$render_errors" ]; then
    pass "render ($npages pages, groff -man -ww)"
else
    fail "render" "$render_errors"
fi

# ---- 4. the SYNOPSIS shows each prototype exactly as wsc.h declares it ------
# Render the SYNOPSIS to plain text and compare declarations normalised the
# same way (fonts and line breaks differ; the text may not).
synopsis_text() {
    perl -ne 'if (/^\.SH\s/) { $in = /^\.SH\s+"?SYNOPSIS/ } print if $in || /^\.TH\s/' "$1" \
        > "$TMP/syn.man"
    groff -man -Tascii -P-c -P-b -P-u -P-o -rLL=250n "$TMP/syn.man" 2>/dev/null |
        normalise
}
synopsis_errors=""
declare -A syn_cache
while IFS= read -r proto; do
    fn=$(echo "$proto" | perl -ne 'print "$1" if /([A-Za-z_][A-Za-z0-9_]*)\(/')
    [ -f "$MANDIR/$fn.3" ] || continue   # reported by check 1
    target=$(so_target "$MANDIR/$fn.3")
    [ -f "$MANDIR/$target" ] || continue # reported by check 3
    if [ -z "${syn_cache[$target]+x}" ]; then
        syn_cache[$target]=$(synopsis_text "$MANDIR/$target")
    fi
    case "${syn_cache[$target]}" in
        *"$proto"*) ;;
        *) synopsis_errors="$synopsis_errors $target lacks '$proto';" ;;
    esac
done < "$TMP/protos"
if [ -z "$synopsis_errors" ]; then
    pass "synopsis prototypes match wsc.h ($nfunc)"
else
    fail "synopsis" "$synopsis_errors"
fi

# ---- 5. every EXAMPLE compiles -----------------------------------------------
# Code is taken from the EXAMPLE (or EXAMPLES) section: the lines between
# .EX/.EE or .nf/.fi, all blocks of the section in order.
extract_example() {
    perl -ne '
        if (/^\.SH\s/) { $sec = /^\.SH\s+"?EXAMPLES?"?\s*$/; $code = 0; next }
        next unless $sec;
        if (/^\.(EX|nf)\s*$/) { $code = 1; next }
        if (/^\.(EE|fi)\s*$/) { $code = 0; next }
        next unless $code;
        my %map = ("e" => "\\", "-" => "-", "&" => "", "(aq" => "\x27",
                   "(dq" => "\"", "(rs" => "\\", "(ti" => "~", "(ha" => "^",
                   "(ga" => "`", "(lq" => "\"", "(rq" => "\"");
        s/\\(e|-|&|\(aq|\(dq|\(rs|\(ti|\(ha|\(ga|\(lq|\(rq)/$map{$1}/g;
        print;
    ' "$1"
}
for page in "$MANDIR"/*.3; do
    [ -e "$page" ] || continue
    is_stub "$page" && continue
    name=$(basename "$page")
    src="$TMP/example-${name%.3}.c"
    extract_example "$page" > "$src"
    if [ ! -s "$src" ]; then
        fail "example $name" "no code in an EXAMPLE section"
        continue
    fi
    if out=$("$CC" -std=c11 -Wall -Wextra -Werror -fsyntax-only \
            -I "$SRCDIR/include" "$src" 2>&1); then
        pass "example $name compiles"
    else
        fail "example $name" "$(echo "$out" | grep -m 3 -E 'error|warning' | tr '\n' ' ')"
    fi
done

exit "$failed"
