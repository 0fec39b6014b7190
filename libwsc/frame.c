/*
 * frame.c - close payloads and codes. Frame headers and masking run once
 * per frame on the hot path, so they are inline, in frame.h.
 */
#include <string.h>

#include "internal.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
typedef uint8_t wsc__v32 __attribute__((vector_size(32)));

/* The same with 32-byte AVX2 vectors, for CPUs that have them. */
__attribute__((target("avx2"))) static size_t mask_avx2(uint8_t *p, size_t n, uint64_t key8,
                                                       uint64_t *high)
{
    const uint64_t kk[4] = { key8, key8, key8, key8 };
    wsc__v32 key, any = { 0 };
    uint64_t w[4];
    size_t i = 0;

    memcpy(&key, kk, 32);
    for (; i + 128 <= n; i += 128) {
        wsc__v32 a, b, c, d;
        memcpy(&a, p + i, 32);
        memcpy(&b, p + i + 32, 32);
        memcpy(&c, p + i + 64, 32);
        memcpy(&d, p + i + 96, 32);
        a ^= key;
        b ^= key;
        c ^= key;
        d ^= key;
        any |= (a | b) | (c | d);
        memcpy(p + i, &a, 32);
        memcpy(p + i + 32, &b, 32);
        memcpy(p + i + 64, &c, 32);
        memcpy(p + i + 96, &d, 32);
    }
    memcpy(w, &any, 32);
    *high |= (w[0] | w[1]) | (w[2] | w[3]);
    return i + wsc__mask_v16(p + i, n - i, key8, high);
}

static _Atomic int have_avx2 = -1; /* -1: not asked yet */

size_t wsc__mask_long(uint8_t *p, size_t n, uint64_t key8, uint64_t *high)
{
    int avx2 = atomic_load_explicit(&have_avx2, memory_order_relaxed);

    if (avx2 < 0) {
        __builtin_cpu_init();
        avx2 = __builtin_cpu_supports("avx2") ? 1 : 0;
        atomic_store_explicit(&have_avx2, avx2, memory_order_relaxed);
    }
    return avx2 ? mask_avx2(p, n, key8, high) : wsc__mask_v16(p, n, key8, high);
}
#else
size_t wsc__mask_long(uint8_t *p, size_t n, uint64_t key8, uint64_t *high)
{
    return wsc__mask_v16(p, n, key8, high);
}
#endif

size_t wsc__frame_close_payload(uint8_t out[125], int code, const char *reason,
                                size_t reason_len)
{
    if (code == 0)
        return 0;
    if (reason_len > 123)
        reason_len = 123;
    out[0] = (uint8_t)(code >> 8);
    out[1] = (uint8_t)code;
    if (reason_len > 0)
        memcpy(out + 2, reason, reason_len);
    return 2 + reason_len;
}

bool wsc__close_code_valid(int code)
{
    /* RFC 6455 7.4.1 plus IANA's 1012-1014; 1004-1006 and 1015 are never
     * sent on the wire; 3000-4999 belong to libraries and applications. */
    if (code >= 1000 && code <= 1003)
        return true;
    if (code >= 1007 && code <= 1014)
        return true;
    return code >= 3000 && code <= 4999;
}
