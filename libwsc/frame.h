/*
 * frame.h - RFC 6455 5.2 frames: encoding and parsing headers, unmasking.
 * Inline, because they run once per frame; close payloads are in frame.c.
 *
 * Frames are parsed in place in the bytes read and unmasked in place,
 * sixteen bytes at a time: no copy into a framing buffer, no allocation.
 * Included by internal.h only.
 */
#ifndef WSC_FRAME_H
#define WSC_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define WSC__FRAME_HEADER_MAX 14

struct wsc__frame_head {
    bool fin;
    bool masked;
    uint8_t rsv;                  /* the three bits in place: 0x40 is RSV1 */
    uint8_t opcode;
    uint8_t mask[4];
    uint64_t payload_len;
    size_t header_len;
};
enum { WSC__FRAME_BAD = -1 };     /* a length the RFC forbids: 1002 */

/* Close payload: 2-byte code + reason; code 0 means an empty payload. */
size_t wsc__frame_close_payload(uint8_t out[125], int code, const char *reason,
                                size_t reason_len);
/* May a close frame carry this code (RFC 6455 7.4.1, IANA registry)? */
bool wsc__close_code_valid(int code);

/* The length wsc__frame_header() gives a frame of len payload bytes. */
static inline size_t wsc__frame_header_len(size_t len, bool masked)
{
    return (len < 126 ? 2 : len <= 0xffff ? 4 : 10) + (masked ? 4 : 0);
}

/* Encode a FIN frame's header (mask NULL: unmasked). Returns its length. */
static inline size_t wsc__frame_header(uint8_t out[WSC__FRAME_HEADER_MAX], bool rsv1, int opcode,
                         size_t len, const uint8_t *mask)
{
    size_t n = 2;

    out[0] = (uint8_t)(0x80 | (rsv1 ? 0x40 : 0) | (opcode & 0x0f)); /* FIN: whole frames */
    if (len < 126) {
        out[1] = (uint8_t)len;
    } else if (len <= 0xffff) {
        out[1] = 126;
        out[2] = (uint8_t)(len >> 8);
        out[3] = (uint8_t)len;
        n = 4;
    } else {
        uint64_t l = len;
        out[1] = 127;
        for (int i = 0; i < 8; i++)
            out[2 + i] = (uint8_t)(l >> (56 - 8 * i));
        n = 10;
    }
    if (mask != NULL) {
        out[1] |= 0x80;
        memcpy(out + n, mask, 4);
        n += 4;
    }
    return n;
}

/* Parse a header at p[0..len): its length, 0 when more bytes are needed,
 * or WSC__FRAME_BAD. */
static inline int wsc__frame_parse(const uint8_t *p, size_t len, struct wsc__frame_head *h)
{
    size_t n = 2;
    uint64_t plen;

    if (len < 2)
        return 0;
    h->fin = (p[0] & 0x80) != 0;
    h->rsv = (uint8_t)(p[0] & 0x70);
    h->opcode = (uint8_t)(p[0] & 0x0f);
    h->masked = (p[1] & 0x80) != 0;
    plen = p[1] & 0x7f;
    if (plen == 126) {
        if (len < 4)
            return 0;
        plen = ((uint64_t)p[2] << 8) | p[3];
        n = 4;
        if (plen < 126)
            return WSC__FRAME_BAD; /* RFC 6455 5.2: minimal length encoding */
    } else if (plen == 127) {
        if (len < 10)
            return 0;
        plen = 0;
        for (int i = 0; i < 8; i++)
            plen = (plen << 8) | p[2 + i];
        n = 10;
        if (plen <= 0xffff || (plen >> 63) != 0)
            return WSC__FRAME_BAD; /* non-minimal, or the reserved top bit */
    }
    if (h->masked) {
        if (len < n + 4)
            return 0;
        memcpy(h->mask, p + n, 4);
        n += 4;
    } else {
        memset(h->mask, 0, 4);
    }
    h->payload_len = plen;
    h->header_len = n;
    return (int)n;
}

/* Sixteen bytes as one value: GCC and clang turn XORs of these into SIMD
 * instructions where the target has them (SSE2 on every x86-64). */
typedef uint8_t wsc__v16 __attribute__((vector_size(16)));

/* From this length on, unmasking uses the widest vectors the CPU has
 * (frame.c picks them once); it returns how many bytes it did, a multiple
 * of 64, and the caller does the rest. *high collects the OR of the bytes
 * it unmasked (their top bits say whether any is not ASCII). */
#define WSC__MASK_LONG 512
size_t wsc__mask_long(uint8_t *p, size_t n, uint64_t key8, uint64_t *high);

/* Unmask 64 bytes at a time with 16-byte vectors (SSE2 on x86-64, NEON on
 * arm64, plain words elsewhere); returns the bytes done, a multiple of 64,
 * and ORs the unmasked bytes into *high. */
static inline size_t wsc__mask_v16(uint8_t *p, size_t n, uint64_t key8, uint64_t *high)
{
    const uint64_t kk[2] = { key8, key8 };
    wsc__v16 key, any = { 0 };
    uint64_t w[2];
    size_t i = 0;

    memcpy(&key, kk, 16);
    for (; i + 64 <= n; i += 64) {
        wsc__v16 a, b, c, d;
        memcpy(&a, p + i, 16);
        memcpy(&b, p + i + 16, 16);
        memcpy(&c, p + i + 32, 16);
        memcpy(&d, p + i + 48, 16);
        a ^= key;
        b ^= key;
        c ^= key;
        d ^= key;
        any |= (a | b) | (c | d);
        memcpy(p + i, &a, 16);
        memcpy(p + i + 16, &b, 16);
        memcpy(p + i + 32, &c, 16);
        memcpy(p + i + 48, &d, 16);
    }
    memcpy(w, &any, 16);
    *high |= w[0] | w[1];
    return i;
}

/* XOR n bytes in place with mask, starting offset bytes into the key, and
 * return the OR of the results' top bits: 0 when all of them are ASCII.
 * Text is unmasked anyway, so this is where its ASCII test costs least (one
 * OR per vector while the bytes are in registers, instead of a second pass
 * by the UTF-8 validator). memcpy keeps unaligned access defined; it
 * compiles to plain loads and stores. */
#if defined(__GNUC__) || defined(__clang__)
__attribute__((always_inline)) /* a call costs more than a short frame's XOR */
#endif
static inline uint64_t wsc__mask_high(uint8_t *p, size_t n, const uint8_t mask[4],
                                      size_t offset)
{
    uint8_t m[4] = { mask[offset & 3], mask[(offset + 1) & 3], mask[(offset + 2) & 3],
                     mask[(offset + 3) & 3] };
    uint32_t k32;
    uint64_t k64, high = 0;
    size_t i = 0;

    memcpy(&k32, m, 4);
    k64 = (uint64_t)k32 | ((uint64_t)k32 << 32);
    if (n >= WSC__MASK_LONG) {
        uint64_t h = 0; /* its address escapes; high's must not (a register) */
        i = wsc__mask_long(p, n, k64, &h);
        high = h;
    } else if (n >= 64) {
        i = wsc__mask_v16(p, n, k64, &high);
    }
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        w ^= k64;
        high |= w;
        memcpy(p + i, &w, 8);
    }
    if (i + 4 <= n) {
        uint32_t w;
        memcpy(&w, p + i, 4);
        w ^= k32;
        high |= w;
        memcpy(p + i, &w, 4);
        i += 4;
    }
    for (; i < n; i++) {
        p[i] ^= m[i & 3];
        high |= p[i];
    }
    return high & UINT64_C(0x8080808080808080);
}

/* The same, for callers that do not need the ORs (outgoing frames, small
 * binary frames, tests): inline, the compiler drops them; in the out-of-line
 * wsc__mask_long (512 bytes and more) they stay, at one OR per vector. */
static inline void wsc__mask(uint8_t *p, size_t n, const uint8_t mask[4], size_t offset)
{
    (void)wsc__mask_high(p, n, mask, offset);
}

#endif /* WSC_FRAME_H */
