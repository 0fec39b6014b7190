/*
 * utf8_simd.c - whole-buffer UTF-8 validation, 16 or 32 bytes per step.
 *
 * The method is the lookup-table one of Keiser and Lemire ("Validating UTF-8
 * in less than one instruction per byte", 2021). Nearly every error shows in
 * a pair of adjacent bytes, and whether a pair is bad depends only on three
 * nibbles: the high and low nibble of the first byte and the high nibble of
 * the second. Three 16-entry tables map each nibble to the kinds of error it
 * can take part in, one bit per kind; ANDing the three lookups (one shuffle
 * each) gives the errors of every pair in a vector at once. That only works
 * if each kind's bad pairs are a product of three nibble sets, which is why
 * the kinds are cut as they are below.
 *
 * What pairs cannot see - the third and fourth bytes of a sequence must be
 * continuation bytes, and no other continuation byte may follow one - comes
 * from the bytes two and three back: at or above E0, or F0, they demand a
 * continuation here. An input that stops inside a character is caught by
 * running its last block with zero padding: the padding is not a
 * continuation.
 *
 * Blocks of 64 bytes that are all ASCII skip the lookups. An error stops the
 * scan at the end of its block (fail fast: a megabyte of text with a bad byte
 * near the start costs a few blocks).
 *
 * The kernels are compiled with target attributes and picked at run time,
 * like the unmasking in frame.c, so one build runs on any x86-64; elsewhere
 * (and on CPUs without SSE4.1) the byte-at-a-time validator does the work.
 */
#include <string.h>

#include "internal.h"

#define BLOCK 64

static bool scalar_valid(const uint8_t *p, size_t len)
{
    return wsc__utf8_feed_scalar(WSC__UTF8_ACCEPT, p, len) == WSC__UTF8_ACCEPT;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#define HAVE_KERNELS 1

/* Kinds of error in a pair (first byte, second byte). */
enum {
    TOO_SHORT = 0x01,  /* a lead byte, then no continuation byte */
    TOO_LONG = 0x02,   /* ASCII, then a continuation byte */
    OVERLONG_3 = 0x04, /* E0 80..9F: below U+0800 */
    TOO_LARGE = 0x08,  /* F4 90..BF, F5..FF 90..BF: above U+10FFFF */
    SURROGATE = 0x10,  /* ED A0..BF: U+D800..DFFF */
    OVERLONG_2 = 0x20, /* C0..C1 80..BF: below U+0080 */
    BAD_8X = 0x40,     /* F0 80..8F (below U+10000), F5..FF 80..8F (too large) */
    TWO_CONTS = 0x80,  /* continuation, continuation: an error unless the
                        * second is a third or fourth byte (then it is a
                        * must, and the two cancel) */
};
#define ANY_LO (TOO_SHORT | TOO_LONG | TWO_CONTS) /* kinds for any low nibble */
#define CONT_2 (TOO_LONG | TWO_CONTS | OVERLONG_2) /* kinds for any continuation 2nd */

/* By the first byte's high nibble. */
#define TABLE_HI1                                                                  \
    TOO_LONG, TOO_LONG, TOO_LONG, TOO_LONG, TOO_LONG, TOO_LONG, TOO_LONG, TOO_LONG, \
    TWO_CONTS, TWO_CONTS, TWO_CONTS, TWO_CONTS,                                    \
    TOO_SHORT | OVERLONG_2,                                                        \
    TOO_SHORT,                                                                     \
    TOO_SHORT | OVERLONG_3 | SURROGATE,                                            \
    TOO_SHORT | TOO_LARGE | BAD_8X
/* By the first byte's low nibble. */
#define TABLE_LO1                                                                  \
    ANY_LO | OVERLONG_3 | OVERLONG_2 | BAD_8X, /* C0 E0 F0 */                      \
    ANY_LO | OVERLONG_2,                       /* C1 */                            \
    ANY_LO, ANY_LO,                                                                \
    ANY_LO | TOO_LARGE,                        /* F4 */                            \
    ANY_LO | TOO_LARGE | BAD_8X, ANY_LO | TOO_LARGE | BAD_8X,                      \
    ANY_LO | TOO_LARGE | BAD_8X, ANY_LO | TOO_LARGE | BAD_8X,                      \
    ANY_LO | TOO_LARGE | BAD_8X, ANY_LO | TOO_LARGE | BAD_8X,                      \
    ANY_LO | TOO_LARGE | BAD_8X, ANY_LO | TOO_LARGE | BAD_8X,                      \
    ANY_LO | TOO_LARGE | BAD_8X | SURROGATE,   /* ED */                            \
    ANY_LO | TOO_LARGE | BAD_8X, ANY_LO | TOO_LARGE | BAD_8X
/* By the second byte's high nibble. */
#define TABLE_HI2                                                                  \
    TOO_SHORT, TOO_SHORT, TOO_SHORT, TOO_SHORT,                                    \
    TOO_SHORT, TOO_SHORT, TOO_SHORT, TOO_SHORT,                                    \
    CONT_2 | OVERLONG_3 | BAD_8X,           /* 80..8F */                           \
    CONT_2 | OVERLONG_3 | TOO_LARGE,        /* 90..9F */                           \
    CONT_2 | TOO_LARGE | SURROGATE,         /* A0..AF */                           \
    CONT_2 | TOO_LARGE | SURROGATE,         /* B0..BF */                           \
    TOO_SHORT, TOO_SHORT, TOO_SHORT, TOO_SHORT

/* A byte n back at or above E0 (n = 2) or F0 (n = 3) makes the byte here a
 * continuation that must be: saturating subtraction leaves the top bit set
 * exactly then. */
#define MUST_AFTER_E0 (0xE0 - 0x80)
#define MUST_AFTER_F0 (0xF0 - 0x80)

static const uint8_t table_hi1[16] = { TABLE_HI1 };
static const uint8_t table_lo1[16] = { TABLE_LO1 };
static const uint8_t table_hi2[16] = { TABLE_HI2 };

/* Lead bytes too close to the end of a vector for their character to end in
 * it: x - limit saturates to 0 unless x is above the limit. The 32 bytes end
 * in F0-1, E0-1, C0-1 (a lead byte three, two, one from the end). */
static const uint8_t incomplete_limits[32] = {
    0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xEF, 0xDF, 0xBF,
};

/* ---- the kernel, written once for both widths ------------------------------ */

/* KERNEL(P, V, ATTR) defines P_errors, P_block and P_valid on vectors of type
 * V (16 or 32 bytes), compiled with ATTR, from operations named P_...:
 *   load(p)               unaligned load
 *   table(t)              the 16-byte table t in every 16-byte lane (the
 *                         shuffles look up within a lane)
 *   before(prev, cur)     what to shift bytes in from: alignr(cur, before, 16 - n)
 *                         is cur with the n bytes before it shifted in
 *   alignr, shuffle, srli16, subs_u8, set1_8: the instructions
 *   any_high(v)           is the top bit of any byte set?
 *   zero(v)               is v all zero?
 * And, or and xor are the compilers' vector operators. */
#define UNROLLED _Pragma("GCC unroll 4") /* else the constants are rebuilt per block */
#define KERNEL(P, V, ATTR)                                                                   \
    struct P##_state {                                                                       \
        V prev;       /* the previous vector */                                              \
        V incomplete; /* its lead bytes whose characters run into this one */                \
        V err;                                                                               \
    };                                                                                       \
                                                                                             \
    ATTR static inline V P##_nibble_hi(V v)                                                  \
    {                                                                                        \
        return P##_srli16(v, 4) & P##_set1_8(0x0F);                                          \
    }                                                                                        \
                                                                                             \
    ATTR static inline V P##_errors(V cur, V prev)                                           \
    {                                                                                        \
        V before = P##_before(prev, cur);                                                    \
        V prev1 = P##_alignr(cur, before, 15);                                               \
        V prev2 = P##_alignr(cur, before, 14);                                               \
        V prev3 = P##_alignr(cur, before, 13);                                               \
        V pair = P##_shuffle(P##_table(table_hi1), P##_nibble_hi(prev1)) &                   \
                 P##_shuffle(P##_table(table_lo1), prev1 & P##_set1_8(0x0F)) &               \
                 P##_shuffle(P##_table(table_hi2), P##_nibble_hi(cur));                      \
        V must = P##_subs_u8(prev2, P##_set1_8(MUST_AFTER_E0)) |                             \
                 P##_subs_u8(prev3, P##_set1_8(MUST_AFTER_F0));                              \
                                                                                             \
        return pair ^ (must & P##_set1_8((char)0x80));                                       \
    }                                                                                        \
                                                                                             \
    /* One 64-byte block; false as soon as an error is known. */                             \
    ATTR static inline bool P##_block(struct P##_state *s, const uint8_t *p)                 \
    {                                                                                        \
        V any = P##_load(p);                                                                 \
                                                                                             \
        UNROLLED for (size_t i = sizeof(V); i < BLOCK; i += sizeof(V))                       \
            any |= P##_load(p + i);                                                          \
        if (!P##_any_high(any)) {                                                            \
            /* ASCII: fine unless the last block left a character open */                    \
            s->prev = P##_load(p + BLOCK - sizeof(V));                                       \
            return P##_zero(s->incomplete);                                                  \
        }                                                                                    \
        UNROLLED for (size_t i = 0; i < BLOCK; i += sizeof(V)) {                             \
            V cur = P##_load(p + i);                                                         \
            s->err |= P##_errors(cur, s->prev);                                              \
            s->prev = cur;                                                                   \
        }                                                                                    \
        s->incomplete = P##_subs_u8(                                                         \
            s->prev, P##_load(incomplete_limits + sizeof(incomplete_limits) - sizeof(V)));   \
        return P##_zero(s->err);                                                             \
    }                                                                                        \
                                                                                             \
    ATTR static bool P##_valid(const uint8_t *p, size_t len)                                 \
    {                                                                                        \
        struct P##_state s = { P##_set1_8(0), P##_set1_8(0), P##_set1_8(0) };                \
        uint8_t tail[BLOCK] = { 0 };                                                         \
        size_t i = 0;                                                                        \
                                                                                             \
        for (; i + BLOCK <= len; i += BLOCK)                                                 \
            if (!P##_block(&s, p + i))                                                       \
                return false;                                                                \
        /* The rest, padded with zeros: also ends a character left open. */                  \
        if (len > i)                                                                         \
            memcpy(tail, p + i, len - i);                                                    \
        return P##_block(&s, tail);                                                          \
    }

/* ---- SSE4.1, 16 bytes per vector --------------------------------------- */

#define SSE __attribute__((target("ssse3,sse4.1")))
#define sse_load(p) _mm_loadu_si128((const __m128i *)(const void *)(p))
#define sse_table sse_load
#define sse_before(prev, cur) (prev)
#define sse_alignr _mm_alignr_epi8
#define sse_shuffle _mm_shuffle_epi8
#define sse_srli16 _mm_srli_epi16
#define sse_subs_u8 _mm_subs_epu8
#define sse_set1_8 _mm_set1_epi8
#define sse_any_high _mm_movemask_epi8
#define sse_zero(v) _mm_testz_si128((v), (v))
KERNEL(sse, __m128i, SSE)

/* ---- AVX2, 32 bytes per vector --------------------------------------------- */

#define AVX2 __attribute__((target("avx2")))
#define avx2_load(p) _mm256_loadu_si256((const __m256i *)(const void *)(p))
#define avx2_table(t) _mm256_broadcastsi128_si256(sse_load(t))
/* prev's high lane, cur's low lane: the 16 bytes before each lane of cur */
#define avx2_before(prev, cur) _mm256_permute2x128_si256((prev), (cur), 0x21)
#define avx2_alignr _mm256_alignr_epi8
#define avx2_shuffle _mm256_shuffle_epi8
#define avx2_srli16 _mm256_srli_epi16
#define avx2_subs_u8 _mm256_subs_epu8
#define avx2_set1_8 _mm256_set1_epi8
#define avx2_any_high _mm256_movemask_epi8
#define avx2_zero(v) _mm256_testz_si256((v), (v))
KERNEL(avx2, __m256i, AVX2)

static bool cpu_has(enum wsc__utf8_kernel k)
{
    __builtin_cpu_init();
    if (k == WSC__UTF8_AVX2)
        return __builtin_cpu_supports("avx2");
    if (k == WSC__UTF8_SSE41)
        return __builtin_cpu_supports("ssse3") && __builtin_cpu_supports("sse4.1");
    return k == WSC__UTF8_SCALAR;
}
#else
#define HAVE_KERNELS 0
static bool cpu_has(enum wsc__utf8_kernel k)
{
    return k == WSC__UTF8_SCALAR;
}
#endif

static _Atomic int kernel = -1; /* -1: not picked yet */

bool wsc__utf8_use(enum wsc__utf8_kernel k)
{
    if (k == WSC__UTF8_BEST)
        k = cpu_has(WSC__UTF8_AVX2) ? WSC__UTF8_AVX2
          : cpu_has(WSC__UTF8_SSE41) ? WSC__UTF8_SSE41 : WSC__UTF8_SCALAR;
    if (!cpu_has(k))
        return false;
    atomic_store_explicit(&kernel, (int)k, memory_order_relaxed);
    return true;
}

bool wsc__utf8_vector_valid(const uint8_t *p, size_t len)
{
    int k = atomic_load_explicit(&kernel, memory_order_relaxed);

    if (k < 0) {
        wsc__utf8_use(WSC__UTF8_BEST);
        k = atomic_load_explicit(&kernel, memory_order_relaxed);
    }
#if HAVE_KERNELS
    if (k == WSC__UTF8_AVX2)
        return avx2_valid(p, len);
    if (k == WSC__UTF8_SSE41)
        return sse_valid(p, len);
#endif
    return scalar_valid(p, len);
}
