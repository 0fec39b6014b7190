/*
 * utf8.c - incremental UTF-8 validation (RFC 3629), fail-fast.
 *
 * Bulk text goes to the vector validator (utf8_simd.c), which judges whole
 * buffers; this file makes that incremental. A character an earlier call
 * left open is finished here a byte at a time, and so is one the end of this
 * call cuts, so the state returned is exactly the byte-at-a-time machine's:
 * ACCEPT, REJECT, or the same mid-character state.
 *
 * RFC 6455 8.1 lets an endpoint fail the connection as soon as it sees an
 * invalid sequence, and Autobahn's strict mode expects it to, so the state
 * machine rejects on the first byte that cannot start or continue a valid
 * sequence (overlongs, surrogates and > U+10FFFF are cut off by narrowing
 * the range of the first continuation byte).
 *
 * A pending state packs (continuation bytes still needed << 16) |
 * (lowest allowed next byte << 8) | (highest allowed next byte); it is never
 * 0 (ACCEPT) or 1 (REJECT).
 */
#include <string.h>

#include "internal.h"

static uint32_t pending(uint32_t need, uint32_t lo, uint32_t hi)
{
    return (need << 16) | (lo << 8) | hi;
}

static uint32_t lead_byte(uint8_t b)
{
    if (b < 0x80)
        return WSC__UTF8_ACCEPT;
    if (b >= 0xC2 && b <= 0xDF)
        return pending(1, 0x80, 0xBF);
    if (b == 0xE0)
        return pending(2, 0xA0, 0xBF); /* no overlongs below U+0800 */
    if (b == 0xED)
        return pending(2, 0x80, 0x9F); /* no surrogates U+D800..DFFF */
    if (b >= 0xE1 && b <= 0xEF)
        return pending(2, 0x80, 0xBF);
    if (b == 0xF0)
        return pending(3, 0x90, 0xBF); /* no overlongs below U+10000 */
    if (b >= 0xF1 && b <= 0xF3)
        return pending(3, 0x80, 0xBF);
    if (b == 0xF4)
        return pending(3, 0x80, 0x8F); /* nothing above U+10FFFF */
    return WSC__UTF8_REJECT;           /* 80..C1, F5..FF */
}

static uint32_t continuation(uint32_t state, uint8_t b)
{
    uint32_t need = state >> 16;
    uint8_t lo = (uint8_t)(state >> 8), hi = (uint8_t)state;

    if (b < lo || b > hi)
        return WSC__UTF8_REJECT;
    return need == 1 ? WSC__UTF8_ACCEPT : pending(need - 1, 0x80, 0xBF);
}

uint32_t wsc__utf8_feed_scalar(uint32_t state, const uint8_t *p, size_t len)
{
    const uint8_t *end;

    if (len == 0)
        return state; /* p may be NULL: no arithmetic on it */
    end = p + len;

    while (p < end) {
        if (state == WSC__UTF8_REJECT)
            return state;
        if (state == WSC__UTF8_ACCEPT) {
            /* Most text is ASCII: skip 8 bytes at a time. */
            while (end - p >= 8) {
                uint64_t w;
                memcpy(&w, p, 8);
                if (w & UINT64_C(0x8080808080808080))
                    break;
                p += 8;
            }
            if (p == end)
                break;
            state = lead_byte(*p++);
        } else {
            state = continuation(state, *p++);
        }
    }
    return state;
}

_Thread_local const void *wsc__valid_text __attribute__((tls_model("initial-exec")));
_Thread_local size_t wsc__valid_text_len __attribute__((tls_model("initial-exec")));

/* Below this many bytes the byte loop beats setting up vectors. */
#define VECTOR_MIN 16
/* Up to this many, first try ASCII with overlapping 8-byte words: short
 * messages are mostly ASCII, and then need nothing more. */
#define WORDS_MAX 64

static bool short_ascii(const uint8_t *p, size_t len) /* len >= 8 */
{
    uint64_t any = 0, w;

    for (size_t i = 0; i + 8 <= len; i += 8) {
        memcpy(&w, p + i, 8);
        any |= w;
    }
    memcpy(&w, p + len - 8, 8);
    return ((any | w) & UINT64_C(0x8080808080808080)) == 0;
}

/* Where a character that p[0..len) leaves open starts, or len if none.
 * Only its lead byte can say so, and it is among the last three. */
static size_t open_tail(const uint8_t *p, size_t len) /* len >= 3 */
{
    if (p[len - 1] >= 0xC0)
        return len - 1;
    if (p[len - 2] >= 0xE0)
        return len - 2;
    if (p[len - 3] >= 0xF0)
        return len - 3;
    return len;
}

/* A whole buffer: short ones by bytes, short ASCII by words, the rest by
 * vectors (whose zero padding catches a character left open at the end). */
bool wsc__utf8_valid(const void *data, size_t len)
{
    const uint8_t *p = data;

    if (len < VECTOR_MIN)
        return wsc__utf8_feed_scalar(WSC__UTF8_ACCEPT, p, len) == WSC__UTF8_ACCEPT;
    if (len <= WORDS_MAX && short_ascii(p, len))
        return true;
    return wsc__utf8_vector_valid(p, len);
}

uint32_t wsc__utf8_feed(uint32_t state, const uint8_t *p, size_t len)
{
    size_t i = 0, cut;

    if (len == 0 || state == WSC__UTF8_REJECT)
        return state; /* p may be NULL: no arithmetic on it */
    /* Finish what an earlier call began: three bytes at most. */
    for (; state != WSC__UTF8_ACCEPT && i < len; i++) {
        state = continuation(state, p[i]);
        if (state == WSC__UTF8_REJECT)
            return state;
    }
    if (state != WSC__UTF8_ACCEPT || i == len)
        return state;
    p += i;
    len -= i;
    if (len < VECTOR_MIN)
        return wsc__utf8_feed_scalar(WSC__UTF8_ACCEPT, p, len);
    /* Whole characters as a whole buffer, an open one to the byte loop. */
    cut = open_tail(p, len);
    if (!wsc__utf8_valid(p, cut))
        return WSC__UTF8_REJECT;
    return wsc__utf8_feed_scalar(WSC__UTF8_ACCEPT, p + cut, len - cut);
}
