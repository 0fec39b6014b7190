/*
 * test_utf8.c - incremental, fail-fast UTF-8 validation (libwsc/utf8.c).
 *
 * Fail-fast means: fed byte by byte, the validator returns REJECT on the
 * first byte after which no continuation could make the input valid, and
 * stays there. A reference written as a plain decoder (not as libwsc's byte
 * range table) says what "valid" and "could still become valid" are.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "unit.h"

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))
/* A string literal as (pointer, length). */
#define LIT(s) s, sizeof(s) - 1

enum { CLASS_ACCEPT, CLASS_MID, CLASS_REJECT };

static const char *class_name(int c)
{
    return c == CLASS_ACCEPT ? "ACCEPT" : c == CLASS_REJECT ? "REJECT" : "mid-character";
}

static int class_of(uint32_t state)
{
    return state == WSC__UTF8_ACCEPT ? CLASS_ACCEPT
         : state == WSC__UTF8_REJECT ? CLASS_REJECT : CLASS_MID;
}

static uint32_t feed(uint32_t state, const void *p, size_t len)
{
    return wsc__utf8_feed(state, p, len);
}

/* One call on an exact-size private copy (over-reads are caught). */
static uint32_t feed_copy(const void *p, size_t len)
{
    uint8_t *buf = malloc(len + 1);
    uint32_t st;

    if (!CHECK(buf != NULL))
        return WSC__UTF8_REJECT;
    memcpy(buf + 1, p, len);
    st = wsc__utf8_feed(WSC__UTF8_ACCEPT, buf + 1, len);
    free(buf);
    return st;
}

/* Index of the byte on which byte-by-byte feeding first returns REJECT, or
 * len if it never does. Also checks that REJECT then sticks. */
static size_t first_reject(const void *data, size_t len)
{
    const uint8_t *p = data;
    uint32_t st = WSC__UTF8_ACCEPT;
    size_t at = len;

    for (size_t i = 0; i < len; i++) {
        st = wsc__utf8_feed(st, p + i, 1);
        if (st == WSC__UTF8_REJECT && at == len)
            at = i;
        if (at != len && !CHECK_INT_EQ(st, WSC__UTF8_REJECT)) {
            UNIT_NOTE("left REJECT at byte %zu", i);
            break;
        }
    }
    return at;
}

/* ---- the reference --------------------------------------------------------- */

/* Is s[0..n) well-formed UTF-8 (RFC 3629)? Decodes each code point and
 * checks it: shortest form, not a surrogate, at most U+10FFFF. */
static bool ref_valid(const uint8_t *s, size_t n)
{
    static const uint32_t min_cp[5] = { 0, 0, 0x80, 0x800, 0x10000 };
    size_t i = 0;

    while (i < n) {
        uint8_t b = s[i];
        uint32_t cp;
        size_t len;

        if (b < 0x80) {
            i++;
            continue;
        } else if ((b & 0xE0) == 0xC0) {
            len = 2;
            cp = b & 0x1F;
        } else if ((b & 0xF0) == 0xE0) {
            len = 3;
            cp = b & 0x0F;
        } else if ((b & 0xF8) == 0xF0) {
            len = 4;
            cp = b & 0x07;
        } else {
            return false;
        }
        if (n - i < len)
            return false;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if (cp < min_cp[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += len;
    }
    return true;
}

/* Could s[0..n) (n <= 8) still become valid with more bytes? Whatever a
 * lead byte allows as its next byte includes one of 80, 90, A0 or BF, and
 * any later continuation byte may be 80. */
static bool ref_viable(const uint8_t *s, size_t n)
{
    static const uint8_t firsts[] = { 0x80, 0x90, 0xA0, 0xBF };
    uint8_t buf[8 + 3];

    if (ref_valid(s, n))
        return true;
    if (!CHECK(n <= 8))
        return false;
    memcpy(buf, s, n);
    for (size_t extra = 1; extra <= 3; extra++) {
        for (size_t f = 0; f < N_OF(firsts); f++) {
            buf[n] = firsts[f];
            for (size_t k = 1; k < extra; k++)
                buf[n + k] = 0x80;
            if (ref_valid(buf, n + extra))
                return true;
        }
    }
    return false;
}

static int ref_class(const uint8_t *s, size_t n)
{
    return ref_valid(s, n) ? CLASS_ACCEPT : ref_viable(s, n) ? CLASS_MID : CLASS_REJECT;
}

/* ---- helpers for tables of cases --------------------------------------------- */

struct utf8_case {
    const char *data;
    size_t len;
    size_t reject_at; /* index of the first bad byte; (size_t)-1 for none */
};
#define NONE ((size_t)-1)

/* Each case: one-shot verdict, byte-by-byte REJECT position, valid(). */
static void check_cases(const struct utf8_case *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const struct utf8_case *c = &cases[i];
        uint32_t st = feed_copy(c->data, c->len);
        size_t at = first_reject(c->data, c->len);
        bool ok = true;

        if (c->reject_at == NONE) {
            ok = CHECK_INT_EQ(st, WSC__UTF8_ACCEPT) && ok;
            ok = CHECK_INT_EQ(at, c->len) && ok;
            ok = CHECK(wsc__utf8_valid(c->data, c->len)) && ok;
        } else {
            ok = CHECK_INT_EQ(st, WSC__UTF8_REJECT) && ok;
            ok = CHECK_INT_EQ(at, c->reject_at) && ok;
            ok = CHECK(!wsc__utf8_valid(c->data, c->len)) && ok;
        }
        if (!ok) {
            UNIT_NOTE("case %zu", i);
            UNIT_NOTE_BYTES("input", c->data, c->len);
        }
    }
}

/* ---- valid input ----------------------------------------------------------------- */

static void test_valid_ascii(void)
{
    uint8_t all[128];

    for (size_t i = 0; i < sizeof(all); i++)
        all[i] = (uint8_t)i;
    CHECK_INT_EQ(feed_copy(all, sizeof(all)), WSC__UTF8_ACCEPT);
    CHECK(wsc__utf8_valid(all, sizeof(all)));
    CHECK_INT_EQ(first_reject(all, sizeof(all)), sizeof(all));
    CHECK_INT_EQ(feed_copy("", 0), WSC__UTF8_ACCEPT);
    CHECK(wsc__utf8_valid("", 0));
    CHECK(wsc__utf8_valid("hello", 5));
    /* NUL is a character, and the length is what counts */
    CHECK(wsc__utf8_valid("a\0b", 3));
    CHECK(!wsc__utf8_valid("ok\xff", 3));
    CHECK(wsc__utf8_valid("ok\xff", 2));
}

static void test_valid_multibyte(void)
{
    static const struct utf8_case cases[] = {
        { LIT("\xc2\x80"), NONE },                  /* U+0080 */
        { LIT("\xc3\xa9"), NONE },                  /* U+00E9 */
        { LIT("\xdf\xbf"), NONE },                  /* U+07FF */
        { LIT("\xe0\xa0\x80"), NONE },              /* U+0800 */
        { LIT("\xe2\x82\xac"), NONE },              /* U+20AC */
        { LIT("\xed\x9f\xbf"), NONE },              /* U+D7FF */
        { LIT("\xee\x80\x80"), NONE },              /* U+E000 */
        { LIT("\xef\xbb\xbf"), NONE },              /* U+FEFF */
        { LIT("\xef\xbf\xbe"), NONE },              /* U+FFFE */
        { LIT("\xef\xbf\xbf"), NONE },              /* U+FFFF */
        { LIT("\xf0\x90\x80\x80"), NONE },          /* U+10000 */
        { LIT("\xf0\x9f\x98\x80"), NONE },          /* U+1F600 */
        { LIT("\xf3\xbf\xbf\xbf"), NONE },          /* U+FFFFF */
        { LIT("\xf4\x80\x80\x80"), NONE },          /* U+100000 */
        { LIT("\xf4\x8f\xbf\xbf"), NONE },          /* U+10FFFF */
        { LIT("a\xc3\xa9" "b\xe2\x82\xac" "c\xf0\x9f\x98\x80" "d"), NONE },
        { LIT("Hello-\xc2\xb5@\xc3\x9f\xc3\xb6\xc3\xa4\xc3\xbc\xc3\xa0\xc3\xa1-UTF-8!!"), NONE },
    };

    check_cases(cases, N_OF(cases));
}

static void test_kosme(void)
{
    /* Autobahn 6.2: "κόσμε" */
    static const char kosme[] = "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5";

    CHECK_INT_EQ(feed_copy(kosme, sizeof(kosme) - 1), WSC__UTF8_ACCEPT);
    CHECK(wsc__utf8_valid(kosme, sizeof(kosme) - 1));
    CHECK_INT_EQ(first_reject(kosme, sizeof(kosme) - 1), sizeof(kosme) - 1);
    /* and fed in two halves split in the middle of "ό" */
    CHECK_INT_EQ(feed(feed(WSC__UTF8_ACCEPT, kosme, 3), kosme + 3, sizeof(kosme) - 4),
                 WSC__UTF8_ACCEPT);
}

/* ---- invalid input ----------------------------------------------------------------- */

static void test_overlong(void)
{
    static const struct utf8_case cases[] = {
        { LIT("\xc0\x80"), 0 },
        { LIT("\xc0\xaf"), 0 },                     /* '/' */
        { LIT("\xc1\xbf"), 0 },
        { LIT("\xe0\x80\x80"), 1 },
        { LIT("\xe0\x80\xaf"), 1 },
        { LIT("\xe0\x9f\xbf"), 1 },
        { LIT("\xf0\x80\x80\x80"), 1 },
        { LIT("\xf0\x80\x80\xaf"), 1 },
        { LIT("\xf0\x8f\xbf\xbf"), 1 },
        { LIT("\xf8\x88\x80\x80\x80"), 0 },         /* 5-byte forms */
        { LIT("\xfc\x84\x80\x80\x80\x80"), 0 },     /* 6-byte forms */
        { LIT("ab\xc0\x80"), 2 },
        { LIT("\xce\xba\xe0\x80\x80"), 3 },
    };

    check_cases(cases, N_OF(cases));
}

static void test_surrogates(void)
{
    static const struct utf8_case cases[] = {
        { LIT("\xed\xa0\x80"), 1 },                 /* U+D800 */
        { LIT("\xed\xad\xbf"), 1 },                 /* U+DB7F */
        { LIT("\xed\xae\x80"), 1 },                 /* U+DB80 */
        { LIT("\xed\xb0\x80"), 1 },                 /* U+DC00 */
        { LIT("\xed\xbf\xbf"), 1 },                 /* U+DFFF */
        { LIT("\xed\xa0\x80\xed\xb0\x80"), 1 },     /* a "pair" */
        { LIT("x\xed\xa0\x80"), 2 },
    };

    check_cases(cases, N_OF(cases));
}

static void test_above_max(void)
{
    static const struct utf8_case cases[] = {
        { LIT("\xf4\x90\x80\x80"), 1 },             /* U+110000 */
        { LIT("\xf4\xbf\xbf\xbf"), 1 },
        { LIT("\xf5\x80\x80\x80"), 0 },
        { LIT("\xf7\xbf\xbf\xbf"), 0 },             /* U+1FFFFF */
    };

    check_cases(cases, N_OF(cases));
}

static void test_invalid_bytes(void)
{
    /* F5..FF (and C0, C1) never appear in UTF-8 */
    for (unsigned b = 0xF5; b <= 0xFF; b++) {
        uint8_t s[4] = { (uint8_t)b, 0x80, 0x80, 0x80 };
        uint8_t t[3] = { 'a', 'b', (uint8_t)b };

        if (!CHECK_INT_EQ(first_reject(s, 1), 0) || !CHECK_INT_EQ(first_reject(s, 4), 0) ||
            !CHECK_INT_EQ(feed_copy(s, 4), WSC__UTF8_REJECT) ||
            !CHECK_INT_EQ(first_reject(t, 3), 2) ||
            !CHECK_INT_EQ(feed_copy(t, 3), WSC__UTF8_REJECT)) {
            UNIT_NOTE("byte 0x%02x", b);
        }
    }
    CHECK_INT_EQ(first_reject("\xc0", 1), 0);
    CHECK_INT_EQ(first_reject("\xc1", 1), 0);
}

static void test_lone_continuation(void)
{
    static const struct utf8_case cases[] = {
        { LIT("\x80"), 0 },
        { LIT("\xbf"), 0 },
        { LIT("a\x80" "b"), 1 },
        { LIT("\xc2\x80\x80"), 2 },
        { LIT("\xe2\x82\xac\xbf"), 3 },
        { LIT("\xf0\x9f\x98\x80\x80"), 4 },
        { LIT("\x80\x81\x82\x83"), 0 },
    };

    check_cases(cases, N_OF(cases));
    for (unsigned b = 0x80; b <= 0xBF; b++) {
        uint8_t s[1] = { (uint8_t)b };
        if (!CHECK_INT_EQ(feed_copy(s, 1), WSC__UTF8_REJECT))
            UNIT_NOTE("byte 0x%02x", b);
    }
}

static void test_truncated(void)
{
    static const struct {
        const char *data;
        size_t len;
    } cut[] = {
        { LIT("\xc2") },
        { LIT("\xdf") },
        { LIT("\xe0\xa0") },
        { LIT("\xe2") },
        { LIT("\xed\x9f") },
        { LIT("\xf0\x90\x80") },
        { LIT("\xf4\x8f\xbf") },
        { LIT("\xf1") },
        { LIT("abc\xce") },
        { LIT("\xce\xba\xe1\xbd") },
    };

    for (size_t i = 0; i < N_OF(cut); i++) {
        uint32_t st = feed_copy(cut[i].data, cut[i].len);
        if (!CHECK(st != WSC__UTF8_ACCEPT && st != WSC__UTF8_REJECT) ||
            !CHECK(!wsc__utf8_valid(cut[i].data, cut[i].len)))
            UNIT_NOTE_BYTES("input", cut[i].data, cut[i].len);
    }

    /* a character cut short by something else */
    static const struct utf8_case cases[] = {
        { LIT("\xc2" "A"), 1 },
        { LIT("\xe2\x82" "A"), 2 },
        { LIT("\xf0\x9f\x98" "A"), 3 },
        { LIT("\xc2\xc2\x80"), 1 },
        { LIT("\xe2\xe2\x82\xac"), 1 },
        { LIT("\xc2\x00"), 1 },
    };
    check_cases(cases, N_OF(cases));
}

/* ---- fail-fast ------------------------------------------------------------------------ */

static void test_fail_fast_example(void)
{
    /* "κόσμε" with U+D800 spliced in, then "edited" */
    static const uint8_t s[] = {
        0xce, 0xba, 0xe1, 0xbd, 0xb9, 0xcf, 0x83, 0xce, 0xbc, 0xce, 0xb5,
        0xed, 0xa0, 0x80, 0x65, 0x64, 0x69, 0x74, 0x65, 0x64,
    };
    uint32_t st = WSC__UTF8_ACCEPT;

    /* "index 13" counting from 1, i.e. s[12], the 0xA0 after 0xED */
    CHECK_INT_EQ(s[12], 0xa0);
    for (size_t i = 0; i < sizeof(s); i++) {
        st = wsc__utf8_feed(st, s + i, 1);
        if (i < 12) {
            if (!CHECK(st != WSC__UTF8_REJECT)) {
                UNIT_NOTE("REJECT too early, at byte %zu (0x%02x)", i, s[i]);
                return;
            }
        } else if (!CHECK_INT_EQ(st, WSC__UTF8_REJECT)) {
            UNIT_NOTE("byte %zu (0x%02x)", i, s[i]);
            return;
        }
    }
    CHECK_INT_EQ(first_reject(s, sizeof(s)), 12);
    /* after 0xED the state is mid-character, not REJECT yet */
    st = feed_copy(s, 12);
    CHECK(st != WSC__UTF8_REJECT && st != WSC__UTF8_ACCEPT);
    CHECK_INT_EQ(feed_copy(s, 13), WSC__UTF8_REJECT);
    CHECK_INT_EQ(feed_copy(s, sizeof(s)), WSC__UTF8_REJECT);
    /* REJECT sticks, whatever follows */
    CHECK_INT_EQ(feed(WSC__UTF8_REJECT, "a", 1), WSC__UTF8_REJECT);
    CHECK_INT_EQ(feed(WSC__UTF8_REJECT, "", 0), WSC__UTF8_REJECT);
    CHECK_INT_EQ(feed(WSC__UTF8_REJECT, "abcdefghijklmnopqrstuvwxyz", 26), WSC__UTF8_REJECT);
    CHECK_INT_EQ(feed(WSC__UTF8_REJECT, "\xce\xba", 2), WSC__UTF8_REJECT);
    CHECK_INT_EQ(feed(feed_copy(s, 13), s + 13, sizeof(s) - 13), WSC__UTF8_REJECT);
}

/* Compare one sequence's class, fed one byte at a time and in one call,
 * with the reference. */
static bool check_against_reference(const uint8_t *s, size_t n)
{
    uint32_t st = WSC__UTF8_ACCEPT;
    int want = ref_class(s, n), got_steps, got_once;

    for (size_t i = 0; i < n; i++)
        st = wsc__utf8_feed(st, s + i, 1);
    got_steps = class_of(st);
    got_once = class_of(wsc__utf8_feed(WSC__UTF8_ACCEPT, s, n));
    if (got_steps == want && got_once == want)
        return true;
    CHECK_INT_EQ(got_steps, want);
    CHECK_INT_EQ(got_once, want);
    UNIT_NOTE("byte by byte %s, one call %s, reference %s", class_name(got_steps),
              class_name(got_once), class_name(want));
    UNIT_NOTE_BYTES("input", s, n);
    return false;
}

static void test_exhaustive_reference(void)
{
    /* Every prefix's class is checked by the shorter loops, so checking the
     * whole sequence's class here covers every byte of fail-fast. */
    static const uint8_t some[] = {
        0x00, 0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc2, 0xdf,
        0xe0, 0xed, 0xf0, 0xf4, 0xf5, 0xff,
    };
    static const uint8_t leads4[] = {
        0x41, 0x80, 0xc2, 0xe0, 0xe1, 0xed, 0xef, 0xf0, 0xf1, 0xf3, 0xf4, 0xf5,
    };
    static const uint8_t tails4[] = { 0x41, 0x80, 0x8f, 0x90, 0xbf, 0xc0 };
    uint8_t s[4];

    for (unsigned a = 0; a < 256; a++) {
        s[0] = (uint8_t)a;
        if (!check_against_reference(s, 1))
            return;
        for (unsigned b = 0; b < 256; b++) {
            s[1] = (uint8_t)b;
            if (!check_against_reference(s, 2))
                return;
            for (size_t c = 0; c < N_OF(some); c++) {
                s[2] = some[c];
                if (!check_against_reference(s, 3))
                    return;
            }
        }
    }
    /* all three-byte sequences that start like a three- or four-byte one */
    for (unsigned a = 0xe0; a <= 0xf4; a++) {
        s[0] = (uint8_t)a;
        for (unsigned b = 0; b < 256; b++) {
            s[1] = (uint8_t)b;
            for (unsigned c = 0; c < 256; c++) {
                s[2] = (uint8_t)c;
                if (!check_against_reference(s, 3))
                    return;
            }
        }
    }
    for (size_t a = 0; a < N_OF(leads4); a++) {
        s[0] = leads4[a];
        for (unsigned b = 0; b < 256; b++) {
            s[1] = (uint8_t)b;
            for (size_t c = 0; c < N_OF(tails4); c++) {
                s[2] = tails4[c];
                for (size_t d = 0; d < N_OF(tails4); d++) {
                    s[3] = tails4[d];
                    if (!check_against_reference(s, 4))
                        return;
                }
            }
        }
    }
}

/* ---- chunking --------------------------------------------------------------------------- */

static const struct {
    const char *data;
    size_t len;
} split_inputs[] = {
    { LIT("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5") },
    { LIT("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80\x65\x64\x69\x74\x65\x64") },
    { LIT("plain ascii text that is longer than eight bytes") },
    { LIT("0123456789\xf0\x9f\x98\x80" "0123456789\xe2\x82\xac" "0123456789abcdef") },
    { LIT("0123456789abcdef\xc0\x80" "0123456789abcdef") },
    { LIT("0123456789abcdef\xf4\x90\x80\x80") },
    { LIT("\xf4\x8f\xbf\xbf\xf0\x90\x80\x80\xed\x9f\xbf\xee\x80\x80") },
    { LIT("0123456789abcdef\xe2\x82") },
    { LIT("\xe2" "0123456789abcdef") },
    { LIT("abc\xff" "def") },
    { LIT("") },
};

static void test_split_two(void)
{
    for (size_t k = 0; k < N_OF(split_inputs); k++) {
        const uint8_t *s = (const uint8_t *)split_inputs[k].data;
        size_t n = split_inputs[k].len;
        uint32_t once = feed_copy(s, n);

        for (size_t i = 0; i <= n; i++) {
            uint32_t st = wsc__utf8_feed(wsc__utf8_feed(WSC__UTF8_ACCEPT, s, i), s + i, n - i);
            if (!CHECK_INT_EQ(class_of(st), class_of(once))) {
                UNIT_NOTE("input %zu split at %zu", k, i);
                break;
            }
            /* mid-character states carry over exactly */
            if (!CHECK_INT_EQ(st, once))
                break;
        }
    }
}

static void test_split_three(void)
{
    for (size_t k = 0; k < N_OF(split_inputs); k++) {
        const uint8_t *s = (const uint8_t *)split_inputs[k].data;
        size_t n = split_inputs[k].len;
        uint32_t once = feed_copy(s, n);

        for (size_t i = 0; i <= n; i++) {
            for (size_t j = i; j <= n; j++) {
                uint32_t st = wsc__utf8_feed(WSC__UTF8_ACCEPT, s, i);
                st = wsc__utf8_feed(st, s + i, j - i);
                st = wsc__utf8_feed(st, s + j, 0);
                st = wsc__utf8_feed(st, s + j, n - j);
                if (!CHECK_INT_EQ(st, once)) {
                    UNIT_NOTE("input %zu split at %zu and %zu", k, i, j);
                    return;
                }
            }
        }
    }
}

static void test_split_random(void)
{
    uint32_t seed = 12345;

    for (size_t k = 0; k < N_OF(split_inputs); k++) {
        const uint8_t *s = (const uint8_t *)split_inputs[k].data;
        size_t n = split_inputs[k].len;
        uint32_t once = feed_copy(s, n);

        for (int round = 0; round < 200; round++) {
            uint32_t st = WSC__UTF8_ACCEPT;
            size_t at = 0;

            while (at < n) {
                size_t chunk;
                seed = seed * 1103515245u + 12345u;
                chunk = (seed >> 16) % 11;
                if (chunk > n - at)
                    chunk = n - at;
                /* each chunk from its own exact-size buffer */
                uint8_t *buf = malloc(chunk + 1);
                if (!CHECK(buf != NULL))
                    return;
                memcpy(buf + 1, s + at, chunk);
                st = wsc__utf8_feed(st, buf + 1, chunk);
                free(buf);
                at += chunk;
            }
            if (!CHECK_INT_EQ(st, once)) {
                UNIT_NOTE("input %zu, round %d", k, round);
                return;
            }
        }
    }
}

/* ---- the ASCII fast path ----------------------------------------------------------------- */

static void test_ascii_fast_path(void)
{
    static const char *const bad[] = { "\x80", "\xff", "\xc0", "\xf5" };
    uint8_t buf[72];

    /* one bad byte at every position of an ASCII run */
    for (size_t b = 0; b < N_OF(bad); b++) {
        for (size_t pos = 0; pos < 64; pos++) {
            memset(buf, 'a', 64);
            buf[pos] = (uint8_t)bad[b][0];
            if (!CHECK_INT_EQ(feed_copy(buf, 64), WSC__UTF8_REJECT) ||
                !CHECK_INT_EQ(first_reject(buf, 64), pos)) {
                UNIT_NOTE("byte 0x%02x at %zu", buf[pos], pos);
                break;
            }
        }
    }
    /* a four-byte character at every position */
    for (size_t pos = 0; pos <= 60; pos++) {
        memset(buf, 'a', 64);
        memcpy(buf + pos, "\xf0\x9f\x98\x80", 4);
        if (!CHECK_INT_EQ(feed_copy(buf, 64), WSC__UTF8_ACCEPT)) {
            UNIT_NOTE("U+1F600 at %zu", pos);
            break;
        }
    }
    /* a character cut at the very end of a long ASCII run */
    for (size_t k = 0; k <= 40; k++) {
        uint32_t st;
        memset(buf, 'a', k);
        memcpy(buf + k, "\xe2\x82", 2);
        st = feed_copy(buf, k + 2);
        if (!CHECK(st != WSC__UTF8_ACCEPT && st != WSC__UTF8_REJECT)) {
            UNIT_NOTE("%zu ASCII bytes first", k);
            break;
        }
        /* a mid-character state must not let ASCII through */
        if (!CHECK_INT_EQ(feed(st, "0123456789abcdef", 16), WSC__UTF8_REJECT))
            break;
        if (!CHECK_INT_EQ(feed(st, "\xac" "0123456789abcdef", 17), WSC__UTF8_ACCEPT))
            break;
    }
    /* a lead byte, then a long ASCII run */
    CHECK_INT_EQ(feed_copy("\xe2" "0123456789abcdef", 17), WSC__UTF8_REJECT);
    CHECK_INT_EQ(first_reject("\xe2" "0123456789abcdef", 17), 1);
}

static void test_guard_page(void)
{
    static const char text[] =
        "0123456789abcdef\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"
        "0123456789abcdef\xf0\x9f\x98\x80";
    size_t n = sizeof(text) - 1;

    /* every suffix ends at the guard page: the fast path must not read
     * a word that runs past the end */
    for (size_t start = 0; start <= n; start++) {
        struct unit_guard g;
        uint8_t *p = unit_guard_copy(&g, text + start, n - start);
        uint32_t want, got;

        if (p == NULL)
            return;
        /* the text ends with a whole character: suffixes starting inside
         * one are REJECT, the others ACCEPT */
        want = ref_valid((const uint8_t *)text + start, n - start)
                   ? WSC__UTF8_ACCEPT : WSC__UTF8_REJECT;
        got = wsc__utf8_feed(WSC__UTF8_ACCEPT, p, n - start);
        unit_guard_free(&g);
        if (!CHECK_INT_EQ(got, want)) {
            UNIT_NOTE("suffix from %zu", start);
            break;
        }
    }
    /* and every prefix of an ASCII run */
    for (size_t len = 0; len <= 40; len++) {
        struct unit_guard g;
        uint8_t *p = unit_guard_copy(&g, "0123456789abcdef0123456789abcdef0123456789", len);

        if (p == NULL)
            return;
        CHECK_INT_EQ(wsc__utf8_feed(WSC__UTF8_ACCEPT, p, len), WSC__UTF8_ACCEPT);
        CHECK(wsc__utf8_valid(p, len));
        unit_guard_free(&g);
    }
}

const struct unit_test utf8_tests[] = {
    { "utf8_valid_ascii", test_valid_ascii },
    { "utf8_valid_multibyte", test_valid_multibyte },
    { "utf8_kosme", test_kosme },
    { "utf8_overlong", test_overlong },
    { "utf8_surrogates", test_surrogates },
    { "utf8_above_max", test_above_max },
    { "utf8_invalid_bytes", test_invalid_bytes },
    { "utf8_lone_continuation", test_lone_continuation },
    { "utf8_truncated", test_truncated },
    { "utf8_fail_fast_example", test_fail_fast_example },
    { "utf8_exhaustive_reference", test_exhaustive_reference },
    { "utf8_split_two", test_split_two },
    { "utf8_split_three", test_split_three },
    { "utf8_split_random", test_split_random },
    { "utf8_ascii_fast_path", test_ascii_fast_path },
    { "utf8_guard_page", test_guard_page },
    { NULL, NULL },
};
