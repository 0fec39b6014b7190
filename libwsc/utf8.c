/*
 * utf8.c - incremental UTF-8 validation (RFC 3629), fail-fast.
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

uint32_t wsc__utf8_feed(uint32_t state, const uint8_t *p, size_t len)
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

bool wsc__utf8_valid(const void *p, size_t len)
{
    return wsc__utf8_feed(WSC__UTF8_ACCEPT, p, len) == WSC__UTF8_ACCEPT;
}
