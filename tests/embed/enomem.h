/*
 * enomem.h - allocation-failure injection for test-enomem (test builds
 * only; nothing here is in the installed library).
 *
 * test-enomem compiles libwsc's sources into itself and links with
 * -Wl,--wrap for malloc, calloc, realloc, strdup, strndup and free, so
 * every allocation libwsc's own code makes goes through enomem-wrap.c,
 * which can fail chosen calls. libevent's, OpenSSL's and zlib's internal
 * allocations are made inside their shared libraries and are NOT wrapped
 * (zlib's streams are: libwsc hands zlib its own allocator, deflate.c).
 * Under ASan/TSan the __real_ functions are the sanitizer's.
 */
#ifndef ENOMEM_H
#define ENOMEM_H

#include <stddef.h>

/* Which calls an armed failure counts (and may fail). */
enum {
    ENOMEM_MALLOC = 1,
    ENOMEM_CALLOC = 2,
    ENOMEM_REALLOC = 4,
    ENOMEM_STRDUP = 8, /* strdup and strndup */
    ENOMEM_ANY = 15
};

/* Fail the nth call (1: the next) of the given kinds from now on; with
 * and_after, that call and every later one of those kinds. Any thread. */
void enomem_arm(unsigned kinds, long nth, int and_after);
/* Stop failing; returns how many calls were failed since the last arm. */
long enomem_disarm(void);
/* Calls failed since the last arm. */
long enomem_injected(void);
/* Allocation calls made by libwsc so far (all kinds, failed ones too). */
long enomem_calls(void);
/* Blocks libwsc allocated and has not freed yet. */
long enomem_live(void);

/* The sweep (enomem-sweep.c): PASS:/FAIL: lines on stdout; the failures. */
int enomem_sweep(void);
/* The same with libwsc's client (enomem-client.c). */
int enomem_client_sweep(void);

#endif
