/*
 * test_utf8_vector.c - the vector UTF-8 validator (libwsc/utf8_simd.c and the
 * incremental front in utf8.c) against the byte-at-a-time one, the oracle
 * (wsc__utf8_feed_scalar, itself checked against a plain decoder in
 * test_utf8.c).
 *
 * Every check runs once per kernel this CPU has (scalar, SSE4.1, AVX2) and
 * compares exact states: the vector path must return what the oracle returns
 * for the same bytes, ACCEPT, REJECT or the very same mid-character state, for
 * every way of cutting the input into calls. That also pins fail-fast: the
 * oracle is REJECT after a prefix that holds the bad byte, so each call that
 * feeds it must be too.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "unit.h"

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))
#define MAX_LEN 600

static const enum wsc__utf8_kernel kernels[] = { WSC__UTF8_SCALAR, WSC__UTF8_SSE41,
                                                 WSC__UTF8_AVX2 };
static const char *const kernel_names[] = { "scalar", "sse4.1", "avx2" };
static const char *kernel_now = "?";

/* Run fn once per kernel this CPU has, from kernels[first] on (1: the vector
 * ones only), until a run fails. */
static void kernels_from(size_t first, bool (*fn)(void))
{
    for (size_t k = first; k < N_OF(kernels); k++) {
        if (!wsc__utf8_use(kernels[k])) {
            printf("  (no %s kernel on this CPU or build: not tested)\n", kernel_names[k]);
            continue;
        }
        kernel_now = kernel_names[k];
        if (!fn())
            break;
    }
    wsc__utf8_use(WSC__UTF8_BEST);
}

static void each_kernel(bool (*fn)(void))
{
    kernels_from(0, fn);
}

static uint32_t oracle(uint32_t state, const uint8_t *p, size_t n)
{
    return wsc__utf8_feed_scalar(state, p, n);
}

/* One call, the whole buffer, on an exact-size copy; with guard, one whose
 * end is a guard page: the vectors must not read past it. */
static bool check_whole_in(const uint8_t *s, size_t n, bool guard)
{
    uint32_t want = oracle(WSC__UTF8_ACCEPT, s, n);
    struct unit_guard g = { NULL, 0 };
    uint8_t *p = guard ? unit_guard_copy(&g, s, n) : malloc(n + 1);
    bool ok = true;

    if (!CHECK(p != NULL))
        return false;
    if (!guard)
        memcpy(p, s, n);
    ok = CHECK_INT_EQ(wsc__utf8_feed(WSC__UTF8_ACCEPT, p, n), want) && ok;
    ok = CHECK_INT_EQ(wsc__utf8_valid(p, n), want == WSC__UTF8_ACCEPT) && ok;
    ok = CHECK_INT_EQ(wsc__utf8_vector_valid(p, n), want == WSC__UTF8_ACCEPT) && ok;
    if (guard)
        unit_guard_free(&g);
    else
        free(p);
    if (!ok) {
        UNIT_NOTE("kernel %s, %zu bytes", kernel_now, n);
        UNIT_NOTE_BYTES("input", s, n);
    }
    return ok;
}

static bool check_whole(const uint8_t *s, size_t n)
{
    return check_whole_in(s, n, false);
}

static bool check_guarded(const uint8_t *s, size_t n)
{
    return check_whole_in(s, n, true);
}

/* Cut in two at every offset: each part's state is the oracle's. */
static bool check_split_two(const uint8_t *s, size_t n)
{
    for (size_t i = 0; i <= n; i++) {
        uint32_t st = wsc__utf8_feed(WSC__UTF8_ACCEPT, s, i);
        bool ok = CHECK_INT_EQ(st, oracle(WSC__UTF8_ACCEPT, s, i));

        st = wsc__utf8_feed(st, s + i, n - i);
        if (!ok || !CHECK_INT_EQ(st, oracle(WSC__UTF8_ACCEPT, s, n))) {
            UNIT_NOTE("kernel %s, %zu bytes cut at %zu", kernel_now, n, i);
            UNIT_NOTE_BYTES("input", s, n);
            return false;
        }
    }
    return true;
}

/* Cut in three at every pair of offsets. */
static bool check_split_three(const uint8_t *s, size_t n)
{
    uint32_t want = oracle(WSC__UTF8_ACCEPT, s, n);

    for (size_t i = 0; i <= n; i++) {
        uint32_t first = wsc__utf8_feed(WSC__UTF8_ACCEPT, s, i);

        for (size_t j = i; j <= n; j++) {
            uint32_t st = wsc__utf8_feed(first, s + i, j - i);
            bool ok = CHECK_INT_EQ(st, oracle(WSC__UTF8_ACCEPT, s, j));

            st = wsc__utf8_feed(st, s + j, n - j);
            if (!ok || !CHECK_INT_EQ(st, want)) {
                UNIT_NOTE("kernel %s, %zu bytes cut at %zu and %zu", kernel_now, n, i, j);
                UNIT_NOTE_BYTES("input", s, n);
                return false;
            }
        }
    }
    return true;
}

/* ---- generated text ------------------------------------------------------- */

static uint32_t rng_state;

static uint32_t rnd(void)
{
    /* xorshift32: deterministic, so a failure reproduces */
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state;
}

static uint32_t rnd_in(uint32_t lo, uint32_t hi) /* [lo, hi] */
{
    return lo + rnd() % (hi - lo + 1);
}

enum script { ASCII, LATIN, CJK, EMOJI, MIXED, N_SCRIPTS };

static uint32_t rnd_code_point(enum script sc)
{
    switch (sc == MIXED ? (enum script)(rnd() % MIXED) : sc) {
    case ASCII:
        return rnd_in(0, 0x7F);
    case LATIN:
        return rnd() % 4 == 0 ? rnd_in(0x20, 0x7E) : rnd_in(0x80, 0x7FF);
    case CJK: {
        /* all of the three-byte range but the surrogates */
        uint32_t cp = rnd_in(0x800, 0xFFFF - 0x800);
        return cp >= 0xD800 ? cp + 0x800 : cp;
    }
    default:
        return rnd_in(0x10000, 0x10FFFF);
    }
}

static size_t encode(uint8_t *out, uint32_t cp)
{
    if (cp < 0x80) {
        out[0] = (uint8_t)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (uint8_t)(0xC0 | (cp >> 6));
        out[1] = (uint8_t)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (uint8_t)(0xE0 | (cp >> 12));
        out[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (uint8_t)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (uint8_t)(0xF0 | (cp >> 18));
    out[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (uint8_t)(0x80 | (cp & 0x3F));
    return 4;
}

/* Valid text of exactly n bytes (ASCII fills what a last character would
 * overrun). */
static void gen_valid(uint8_t *s, size_t n, enum script sc)
{
    size_t i = 0;

    while (i < n) {
        uint8_t c[4];
        size_t k = encode(c, rnd_code_point(sc));

        if (k > n - i) {
            s[i++] = (uint8_t)rnd_in(0x20, 0x7E);
            continue;
        }
        memcpy(s + i, c, k);
        i += k;
    }
}

/* ---- the tests -------------------------------------------------------------- */

/* Every length from 0 to 200 (around every 16-, 32- and 64-byte boundary),
 * every script: valid, with its last character cut, and split in two. */
static bool lengths_run(void)
{
    uint8_t s[MAX_LEN];

    rng_state = 2463534242u;
    for (size_t n = 0; n <= 200; n++) {
        for (int sc = 0; sc < N_SCRIPTS; sc++) {
            gen_valid(s, n, (enum script)sc);
            if (!check_guarded(s, n) || !check_split_two(s, n))
                return false;
            /* the same with a character cut at the end */
            if (n >= 4) {
                size_t k = encode(s + n - 4, rnd_code_point(sc == ASCII ? EMOJI : sc));
                for (size_t cut = 1; cut < k; cut++)
                    if (!check_guarded(s, n - 4 + cut))
                        return false;
            }
        }
    }
    return true;
}

static void test_vector_lengths(void)
{
    each_kernel(lengths_run);
}

/* Sequences that must be rejected, and their valid neighbours. */
static const struct {
    const char *bytes;
    size_t len;
} specimens[] = {
#define S(x) { x, sizeof(x) - 1 }
    S("\xc0\x80"), S("\xc1\xbf"), S("\xe0\x80\x80"), S("\xe0\x9f\xbf"),   /* overlong */
    S("\xf0\x80\x80\x80"), S("\xf0\x8f\xbf\xbf"),
    S("\xed\xa0\x80"), S("\xed\xbf\xbf"), S("\xed\xaf\xbf\xed\xb0\x80"), /* surrogates */
    S("\xf4\x90\x80\x80"), S("\xf4\xbf\xbf\xbf"), S("\xf5\x80\x80\x80"), /* > U+10FFFF */
    S("\xf7\xbf\xbf\xbf"), S("\xf8\x88\x80\x80\x80"), S("\xfe"), S("\xff"),
    S("\x80"), S("\xbf"), S("\x80\x80"), S("\xc2\x80\x80"),                /* stray conts */
    S("\xe2\x82\xac\x80"), S("\xf0\x9f\x98\x80\x80"),
    S("\xc2" "a"), S("\xe2\x82" "a"), S("\xf0\x9f\x98" "a"), S("\xe2" "a"), /* too short */
    S("\xc2\xc2\x80"), S("\xe2\xe2\x82\xac"), S("\xf0\xf0\x9f\x98\x80"),
    S("\xc2\x80"), S("\xdf\xbf"), S("\xe0\xa0\x80"), S("\xed\x9f\xbf"),   /* valid edges */
    S("\xee\x80\x80"), S("\xef\xbf\xbf"), S("\xf0\x90\x80\x80"), S("\xf4\x8f\xbf\xbf"),
    S("\xf3\xbf\xbf\xbf"),
#undef S
};

/* Each specimen at every offset of ASCII and of multi-byte text, lengths
 * around the vector sizes; the text around it is cut cleanly where it goes. */
static bool specimens_run(void)
{
    static const size_t lengths[] = { 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129 };
    uint8_t s[MAX_LEN], bg[MAX_LEN];

    rng_state = 88172645u;
    for (size_t l = 0; l < N_OF(lengths); l++) {
        size_t n = lengths[l];
        for (int sc = 0; sc < N_SCRIPTS; sc++) {
            gen_valid(bg, n, (enum script)sc);
            for (size_t k = 0; k < N_OF(specimens); k++) {
                size_t sl = specimens[k].len;
                for (size_t at = 0; at + sl <= n; at++) {
                    size_t start = at;
                    memcpy(s, bg, n);
                    /* keep the text around whole: ASCII in place of the
                     * characters the specimen cuts */
                    while (start > 0 && (s[start] & 0xC0) == 0x80)
                        start--;
                    memset(s + start, 'z', at - start);
                    memcpy(s + at, specimens[k].bytes, sl);
                    for (size_t i = at + sl; i < n && (s[i] & 0xC0) == 0x80; i++)
                        s[i] = 'y';
                    if (!check_whole(s, n))
                        return false;
                    if (at % 13 == 0 && !check_split_two(s, n))
                        return false;
                }
            }
        }
    }
    return true;
}

static void test_vector_specimens(void)
{
    each_kernel(specimens_run);
}

/* Every pair of bytes at the start, across a vector boundary and across a
 * block boundary, in ASCII: that covers every entry of the three tables.
 * Then every lead byte followed by two or three bytes, each one of every kind
 * the tables tell apart, across the block boundary: the checks two and three
 * bytes back. The oracle decides. */
static bool pairs_run(void)
{
    static const size_t offsets[] = { 0, 15, 31, 63, 126 };
    static const uint8_t kinds[] = { 0x00, 0x20, 0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0,
                                     0xaf, 0xbf, 0xc0, 0xc1, 0xc2, 0xdf, 0xe0, 0xe1, 0xed,
                                     0xef, 0xf0, 0xf1, 0xf4, 0xf5, 0xff };
    uint8_t s[128];
    bool ok = true;

    memset(s, 'a', sizeof(s));
    for (size_t o = 0; o < N_OF(offsets) && ok; o++) {
        size_t at = offsets[o];
        for (unsigned a = 0; a < 256 && ok; a++) {
            for (unsigned b = 0; b < 256 && ok; b++) {
                s[at] = (uint8_t)a;
                s[at + 1] = (uint8_t)b;
                ok = CHECK_INT_EQ(wsc__utf8_vector_valid(s, sizeof(s)),
                                  oracle(WSC__UTF8_ACCEPT, s, sizeof(s)) == WSC__UTF8_ACCEPT);
                if (!ok)
                    UNIT_NOTE("kernel %s: %02x %02x at %zu", kernel_now, a, b, at);
            }
        }
        memset(s, 'a', sizeof(s));
    }
    for (unsigned a = 0xc0; a <= 0xff && ok; a++) {
        for (size_t b = 0; b < N_OF(kinds) && ok; b++) {
            for (size_t c = 0; c < N_OF(kinds) && ok; c++) {
                for (size_t d = 0; d < (a >= 0xf0 ? N_OF(kinds) : 1) && ok; d++) {
                    size_t at = a >= 0xf0 ? 61 : 62; /* across the block boundary */
                    memset(s, 'a', sizeof(s));
                    s[at] = (uint8_t)a;
                    s[at + 1] = kinds[b];
                    s[at + 2] = kinds[c];
                    if (a >= 0xf0)
                        s[at + 3] = kinds[d];
                    ok = CHECK_INT_EQ(wsc__utf8_vector_valid(s, sizeof(s)),
                                      oracle(WSC__UTF8_ACCEPT, s, sizeof(s)) ==
                                          WSC__UTF8_ACCEPT);
                    if (!ok)
                        UNIT_NOTE("kernel %s: %02x %02x %02x (%02x) at %zu", kernel_now, a,
                                  kinds[b], kinds[c], kinds[d], at);
                }
            }
        }
    }
    return ok;
}

static void test_vector_pairs(void)
{
    /* Only the vector kernels: this calls wsc__utf8_vector_valid alone, and
     * with the scalar "kernel" that is the oracle itself. */
    kernels_from(1, pairs_run);
}

/* Random text in every script, then damaged at random: one byte changed,
 * one inserted, or the end cut; whole, and split in two and three. */
static bool random_run(void)
{
    uint8_t s[MAX_LEN];

    rng_state = 521288629u;
    for (int round = 0; round < 3000; round++) {
        size_t n = rnd_in(0, 400);
        enum script sc = (enum script)(rnd() % N_SCRIPTS);

        gen_valid(s, n, sc);
        switch (rnd() % 4) {
        case 0:
            break; /* left valid */
        case 1:
            if (n > 0)
                s[rnd() % n] = (uint8_t)rnd();
            break;
        case 2:
            if (n > 0) {
                size_t at = rnd() % n;
                memmove(s + at + 1, s + at, n - at);
                s[at] = (uint8_t)rnd_in(0x80, 0xFF);
                n++;
            }
            break;
        default:
            if (n > 0)
                n -= rnd_in(1, n < 3 ? (uint32_t)n : 3);
            break;
        }
        if (!(round % 10 == 0 ? check_guarded(s, n) : check_whole(s, n)) ||
            !check_split_two(s, n))
            return false;
        if (round % 100 == 0 && n <= 150 && !check_split_three(s, n))
            return false;
    }
    return true;
}

static void test_vector_random(void)
{
    each_kernel(random_run);
}

/* Every two- and three-way cut of short texts with their hard parts near the
 * vector boundaries. */
static bool splits_run(void)
{
    uint8_t s[MAX_LEN];

    rng_state = 1234567u;
    for (int sc = 0; sc < N_SCRIPTS; sc++) {
        static const size_t lengths[] = { 17, 33, 70, 100 };
        for (size_t l = 0; l < N_OF(lengths); l++) {
            size_t n = lengths[l];
            gen_valid(s, n, (enum script)sc);
            if (!check_split_three(s, n))
                return false;
            s[n / 2] = 0xC0; /* and with a bad byte in the middle */
            if (!check_split_three(s, n))
                return false;
        }
    }
    return true;
}

static void test_vector_splits(void)
{
    each_kernel(splits_run);
}

/* Fail fast over a long buffer: a bad byte anywhere makes the call that
 * feeds it REJECT, however much valid text follows, and nothing after it
 * changes that. */
static bool fail_fast_run(void)
{
    static uint8_t s[4096];

    rng_state = 77777u;
    gen_valid(s, sizeof(s), MIXED);
    for (size_t at = 0; at < sizeof(s); at += 61) {
        uint8_t keep = s[at];
        uint32_t st;

        s[at] = 0xFF;
        st = wsc__utf8_feed(WSC__UTF8_ACCEPT, s, at + 1);
        if (!CHECK_INT_EQ(st, WSC__UTF8_REJECT) ||
            !CHECK_INT_EQ(wsc__utf8_feed(st, s + at + 1, sizeof(s) - at - 1), WSC__UTF8_REJECT) ||
            !CHECK(!wsc__utf8_valid(s, sizeof(s)))) {
            UNIT_NOTE("kernel %s, 0xFF at %zu", kernel_now, at);
            return false;
        }
        s[at] = keep;
    }
    return CHECK(wsc__utf8_valid(s, sizeof(s)));
}

static void test_vector_fail_fast(void)
{
    each_kernel(fail_fast_run);
}

/* Each kernel test above skips a kernel wsc__utf8_use refuses, and would
 * pass on the scalar code alone if the vector ones were lost (compiled out,
 * or a CPU check that says no). So: what this CPU has must be usable, and
 * what it lacks must be refused. */
static void test_vector_kernels_present(void)
{
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    bool sse41, avx2;

    __builtin_cpu_init();
    sse41 = __builtin_cpu_supports("ssse3") && __builtin_cpu_supports("sse4.1");
    avx2 = __builtin_cpu_supports("avx2");
    CHECK_INT_EQ(wsc__utf8_use(WSC__UTF8_SSE41), sse41);
    CHECK_INT_EQ(wsc__utf8_use(WSC__UTF8_AVX2), avx2);
#else
    printf("  (not x86-64: the scalar code is all there is)\n");
#endif
    CHECK(wsc__utf8_use(WSC__UTF8_SCALAR));
    CHECK(wsc__utf8_use(WSC__UTF8_BEST));
}

const struct unit_test utf8_vector_tests[] = {
    { "utf8_vector_kernels_present", test_vector_kernels_present },
    { "utf8_vector_lengths", test_vector_lengths },
    { "utf8_vector_specimens", test_vector_specimens },
    { "utf8_vector_pairs", test_vector_pairs },
    { "utf8_vector_random", test_vector_random },
    { "utf8_vector_splits", test_vector_splits },
    { "utf8_vector_fail_fast", test_vector_fail_fast },
    { NULL, NULL },
};
