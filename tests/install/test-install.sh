#!/usr/bin/env bash
# Install into a staging root (DESTDIR) and build a program outside the tree
# with nothing but `cc prog.c $(pkg-config --cflags --libs wsc)`.
set -u
BUILD=${TOP_BUILDDIR:?}
if [ "${SANITIZER:-none}" != "none" ]; then
    echo "SKIP: install (sanitizer build: installed objects need the sanitizer runtime)"
    exit 0
fi
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
check() { # name, command...
    local name=$1; shift
    if "$@" >"$stage/out" 2>&1; then echo "PASS: install $name"
    else echo "FAIL: install $name"; sed 's/^/    /' "$stage/out" | tail -20; fi
}

check "make install" make -s -C "$BUILD" install DESTDIR="$stage/root"
prefix=$(pkg-config --variable=prefix "$BUILD/wsc.pc")
libdir=$(pkg-config --variable=libdir "$BUILD/wsc.pc")
root=$stage/root
check "header installed" test -f "$root$prefix/include/wsc.h"
check "shared and static libraries" test -e "$root$libdir/libwsc.so" -a -f "$root$libdir/libwsc.a"
check "pkg-config file" test -f "$root$libdir/pkgconfig/wsc.pc"
check "man page wsc.3" test -f "$root$prefix/share/man/man3/wsc.3"
check "example sources" test -f "$root$prefix/share/doc/libwsc/examples/echo/echo.c"

cat >"$stage/prog.c" <<'CEOF'
#include <stdio.h>
#include <string.h>
#include <wsc.h>

int main(void)
{
    struct ws_server *srv = ws_server_new(NULL);
    int port;

    if (srv == NULL || strcmp(ws_version(), WS_VERSION_STR) != 0)
        return 1;
    port = ws_server_listen(srv, "127.0.0.1:0");
    if (port <= 0)
        return 2;
    if (ws_server_stop(srv) != 0 || ws_server_run(srv) != 0)
        return 3;
    ws_server_free(srv);
    printf("ok %s %d\n", ws_version(), port);
    return 0;
}
CEOF
export PKG_CONFIG_SYSROOT_DIR=$root PKG_CONFIG_PATH=$root$libdir/pkgconfig
check "compile with pkg-config" sh -c "cc -std=c11 -Wall -Wextra -Werror -o '$stage/prog' '$stage/prog.c' \$(pkg-config --cflags --libs wsc)"
check "run against installed library" sh -c "LD_LIBRARY_PATH='$root$libdir' '$stage/prog' | grep -q '^ok '"
check "binary uses installed libwsc" sh -c "LD_LIBRARY_PATH='$root$libdir' ldd '$stage/prog' | grep -q '$root$libdir/libwsc.so'"

# The README's C example must compile against the installed library as is.
SRC=${TOP_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
awk '/^```c$/{on=1; next} /^```$/{if(on){exit}} on' "$SRC/README.md" >"$stage/readme.c"
check "README example compiles" sh -c "test -s '$stage/readme.c' && cc -std=c11 -Wall -Wextra -Werror -o '$stage/readme' '$stage/readme.c' \$(pkg-config --cflags --libs wsc)"
