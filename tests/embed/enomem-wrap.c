/*
 * enomem-wrap.c - the __wrap_ allocation functions behind enomem.h.
 *
 * Only references from objects linked into test-enomem with -Wl,--wrap
 * land here, i.e. libwsc's own calls (and the test's, which makes none
 * while armed). Counters are atomics: the loop thread allocates while the
 * test's main thread arms and reads.
 *
 * ENOMEM_TRACE=1 in the environment prints every call number, its kind,
 * size and caller to stderr (addr2line -f -e test-enomem, minus the load
 * address): which allocation a sweep run failed.
 */
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "enomem.h"

void *__real_malloc(size_t n);
void *__real_calloc(size_t k, size_t n);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);
char *__real_strndup(const char *s, size_t n);
void __real_free(void *p);

void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t k, size_t n);
void *__wrap_realloc(void *p, size_t n);
char *__wrap_strdup(const char *s);
char *__wrap_strndup(const char *s, size_t n);
void __wrap_free(void *p);

static atomic_long calls, live, injected, seen;
static atomic_long fail_nth;
static atomic_int fail_after;
static atomic_uint armed_kinds; /* 0: nothing fails */

void enomem_arm(unsigned kinds, long nth, int and_after)
{
    atomic_store(&armed_kinds, 0);
    atomic_store(&seen, 0);
    atomic_store(&injected, 0);
    atomic_store(&fail_nth, nth);
    atomic_store(&fail_after, and_after);
    atomic_store(&armed_kinds, kinds); /* last: the rest is set when it counts */
}

long enomem_disarm(void)
{
    atomic_store(&armed_kinds, 0);
    return atomic_load(&injected);
}

long enomem_injected(void)
{
    return atomic_load(&injected);
}

long enomem_calls(void)
{
    return atomic_load(&calls);
}

long enomem_live(void)
{
    return atomic_load(&live);
}

static void trace(long call, unsigned kind, size_t n, const void *caller)
{
    static atomic_int on = -1; /* loop threads allocate too */
    int v = atomic_load_explicit(&on, memory_order_relaxed);

    if (v < 0) {
        v = getenv("ENOMEM_TRACE") != NULL;
        atomic_store_explicit(&on, v, memory_order_relaxed);
    }
    if (v)
        fprintf(stderr, "enomem: call %ld kind %u size %zu from %p (enomem_calls at %p)\n", call,
                kind, n, caller, (const void *)enomem_calls);
}

static bool fail_this(unsigned kind, size_t n, const void *caller)
{
    long k, nth;

    trace(atomic_fetch_add(&calls, 1) + 1, kind, n, caller);
    if ((atomic_load(&armed_kinds) & kind) == 0)
        return false;
    k = atomic_fetch_add(&seen, 1) + 1;
    nth = atomic_load(&fail_nth);
    if (k == nth || (k > nth && atomic_load(&fail_after))) {
        atomic_fetch_add(&injected, 1);
        return true;
    }
    return false;
}

static void *counted(void *p)
{
    if (p != NULL)
        atomic_fetch_add(&live, 1);
    return p;
}

void *__wrap_malloc(size_t n)
{
    return fail_this(ENOMEM_MALLOC, n, __builtin_return_address(0)) ? NULL : counted(__real_malloc(n));
}

void *__wrap_calloc(size_t k, size_t n)
{
    return fail_this(ENOMEM_CALLOC, k * n, __builtin_return_address(0)) ? NULL : counted(__real_calloc(k, n));
}

void *__wrap_realloc(void *p, size_t n)
{
    void *q;

    if (fail_this(ENOMEM_REALLOC, n, __builtin_return_address(0)))
        return NULL; /* like a real failure: p stays valid */
    q = __real_realloc(p, n);
    if (p == NULL)
        counted(q);
    else if (n == 0 && q == NULL)
        atomic_fetch_sub(&live, 1); /* freed */
    return q;
}

char *__wrap_strdup(const char *s)
{
    return fail_this(ENOMEM_STRDUP, strlen(s) + 1, __builtin_return_address(0))
               ? NULL : counted(__real_strdup(s));
}

char *__wrap_strndup(const char *s, size_t n)
{
    return fail_this(ENOMEM_STRDUP, n, __builtin_return_address(0))
               ? NULL : counted(__real_strndup(s, n));
}

void __wrap_free(void *p)
{
    if (p != NULL)
        atomic_fetch_sub(&live, 1);
    __real_free(p);
}
