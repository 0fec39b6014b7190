/*
 * test_frame.c - RFC 6455 5.2 frame headers, masking and close payloads
 * (libwsc/frame.c).
 *
 * Headers are checked byte for byte at every length boundary, parsed back
 * with every opcode and reserved bit, cut short at every prefix and fed the
 * lengths the RFC forbids. Then wslay (the reference implementation) is on
 * the other side: frames it encodes must parse and unmask to the payload it
 * was given, and frames libwsc encodes must decode in wslay to the same
 * header fields and payload. wsc__mask (word at a time) is checked against
 * a plain byte loop.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <wslay/wslay.h>

#include "internal.h"
#include "unit.h"

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

/* ---- helpers --------------------------------------------------------------- */

/* splitmix64: a fixed seed gives the same frames on every run. */
struct rng {
    uint64_t s;
};

static uint64_t rng_next(struct rng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform enough in [0, n). */
static size_t rng_below(struct rng *r, size_t n)
{
    return n == 0 ? 0 : (size_t)(rng_next(r) % n);
}

static void rng_fill(struct rng *r, uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(rng_next(r) >> 56);
}

/* The obvious masking: what RFC 6455 5.3 says, one byte at a time. */
static void ref_mask(uint8_t *p, size_t n, const uint8_t key[4], size_t offset)
{
    for (size_t i = 0; i < n; i++)
        p[i] ^= key[(offset + i) % 4];
}

/* A growable byte buffer. */
struct bytes {
    uint8_t *p;
    size_t len, cap;
};

static bool bytes_add(struct bytes *b, const void *data, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        uint8_t *np;

        while (cap < b->len + n)
            cap *= 2;
        np = realloc(b->p, cap);
        if (np == NULL)
            return false;
        b->p = np;
        b->cap = cap;
    }
    if (n > 0)
        memcpy(b->p + b->len, data, n);
    b->len += n;
    return true;
}

static void bytes_free(struct bytes *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

static const uint8_t key_a[4] = { 0x37, 0xfa, 0x21, 0x3d };
static const uint8_t key_b[4] = { 0x01, 0x80, 0xfe, 0x5a };

/* Payload lengths at and around every encoding boundary. */
static const uint64_t boundary_lens[] = {
    0, 1, 124, 125, 126, 127, 255, 256, 65534, 65535, 65536, 65537,
#if SIZE_MAX > 0xffffffffu
    (1ull << 32) + 5, 0x0102030405060708ull, (1ull << 63) - 1,
#endif
};

/* ---- wsc__frame_header: exact bytes ------------------------------------- */

struct header_case {
    uint64_t len;
    int opcode;
    bool rsv1;
    const uint8_t *mask;
    size_t expect_len;
    uint8_t expect[WSC__FRAME_HEADER_MAX];
};

static const struct header_case header_cases[] = {
    /* 7-bit lengths */
    { 0, 1, false, NULL, 2, { 0x81, 0x00 } },
    { 0, 1, false, key_a, 6, { 0x81, 0x80, 0x37, 0xfa, 0x21, 0x3d } },
    { 1, 2, true, NULL, 2, { 0xc2, 0x01 } },
    { 5, 9, false, NULL, 2, { 0x89, 0x05 } },
    { 125, 2, false, NULL, 2, { 0x82, 0x7d } },
    { 125, 8, false, key_b, 6, { 0x88, 0xfd, 0x01, 0x80, 0xfe, 0x5a } },
    { 125, 1, true, key_a, 6, { 0xc1, 0xfd, 0x37, 0xfa, 0x21, 0x3d } },
    /* 16-bit lengths */
    { 126, 2, false, NULL, 4, { 0x82, 0x7e, 0x00, 0x7e } },
    { 126, 2, false, key_a, 8, { 0x82, 0xfe, 0x00, 0x7e, 0x37, 0xfa, 0x21, 0x3d } },
    { 127, 0, false, NULL, 4, { 0x80, 0x7e, 0x00, 0x7f } },
    { 256, 2, true, NULL, 4, { 0xc2, 0x7e, 0x01, 0x00 } },
    { 0x1234, 1, false, key_b, 8, { 0x81, 0xfe, 0x12, 0x34, 0x01, 0x80, 0xfe, 0x5a } },
    { 65535, 1, false, NULL, 4, { 0x81, 0x7e, 0xff, 0xff } },
    { 65535, 2, true, key_a, 8, { 0xc2, 0xfe, 0xff, 0xff, 0x37, 0xfa, 0x21, 0x3d } },
    /* 64-bit lengths */
    { 65536, 2, false, NULL, 10, { 0x82, 0x7f, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00 } },
    { 65536, 2, false, key_a, 14,
      { 0x82, 0xff, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00, 0x37, 0xfa, 0x21, 0x3d } },
    { 65537, 0, true, NULL, 10, { 0xc0, 0x7f, 0, 0, 0, 0, 0, 0x01, 0x00, 0x01 } },
#if SIZE_MAX > 0xffffffffu
    { (1ull << 32) + 5, 2, false, NULL, 10,
      { 0x82, 0x7f, 0, 0, 0, 0x01, 0, 0, 0, 0x05 } },
    { (1ull << 32) + 5, 1, true, key_b, 14,
      { 0xc1, 0xff, 0, 0, 0, 0x01, 0, 0, 0, 0x05, 0x01, 0x80, 0xfe, 0x5a } },
    { 0x0102030405060708ull, 2, false, NULL, 10,
      { 0x82, 0x7f, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08 } },
    { (1ull << 63) - 1, 2, false, NULL, 10,
      { 0x82, 0x7f, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff } },
#endif
};

static void test_header_bytes(void)
{
    for (size_t i = 0; i < N_OF(header_cases); i++) {
        const struct header_case *tc = &header_cases[i];
        uint8_t out[WSC__FRAME_HEADER_MAX];
        size_t n;

        memset(out, 0xee, sizeof(out));
        n = wsc__frame_header(out, tc->rsv1, tc->opcode, (size_t)tc->len, tc->mask);
        if (!CHECK_INT_EQ(n, tc->expect_len) || !CHECK_MEM_EQ(out, tc->expect, n)) {
            UNIT_NOTE("case %zu: len %llu opcode %d rsv1 %d masked %d", i,
                      (unsigned long long)tc->len, tc->opcode, tc->rsv1,
                      tc->mask != NULL);
            continue;
        }
        /* nothing written past the header */
        for (size_t k = n; k < sizeof(out); k++) {
            if (!CHECK_INT_EQ(out[k], 0xee)) {
                UNIT_NOTE("case %zu: byte %zu written", i, k);
                break;
            }
        }
    }
}

/* wsc__frame_header_len (what admission counts) is the length the encoder
 * writes, on both sides of each size boundary, masked or not. */
static void test_header_len(void)
{
    static const uint64_t lens[] = { 0, 125, 126, 127, 65535, 65536, 1u << 20 };
    static const uint8_t key[4] = { 1, 2, 3, 4 };

    for (size_t i = 0; i < N_OF(lens); i++) {
        for (int masked = 0; masked < 2; masked++) {
            uint8_t out[WSC__FRAME_HEADER_MAX];
            size_t n = wsc__frame_header(out, false, WS_OP_BINARY, (size_t)lens[i],
                                         masked ? key : NULL);
            if (!CHECK_INT_EQ(wsc__frame_header_len((size_t)lens[i], masked), n))
                UNIT_NOTE("len %llu masked %d", (unsigned long long)lens[i], masked);
        }
    }
}

/* Every opcode, both RSV1 values, masked or not, at every boundary: the
 * first byte, the mask bit and the header length follow the rules. */
static void test_header_fields(void)
{
    for (size_t li = 0; li < N_OF(boundary_lens); li++) {
        uint64_t len = boundary_lens[li];
        size_t base = len < 126 ? 2 : len <= 0xffff ? 4 : 10;

        for (int op = 0; op < 16; op++) {
            for (int r = 0; r < 2; r++) {
                for (int m = 0; m < 2; m++) {
                    uint8_t out[WSC__FRAME_HEADER_MAX];
                    size_t n = wsc__frame_header(out, r != 0, op, (size_t)len,
                                                 m ? key_b : NULL);
                    bool ok = CHECK_INT_EQ(n, base + (m ? 4 : 0))
                           && CHECK_INT_EQ(out[0], 0x80 | (r ? 0x40 : 0) | op)
                           && CHECK_INT_EQ(out[1] & 0x80, m ? 0x80 : 0)
                           && CHECK_INT_EQ(out[1] & 0x7f,
                                           base == 2 ? (int)len : base == 4 ? 126 : 127)
                           && (!m || CHECK_MEM_EQ(out + base, key_b, 4));

                    if (!ok) {
                        UNIT_NOTE("len %llu opcode %d rsv1 %d masked %d",
                                  (unsigned long long)len, op, r, m);
                        return;
                    }
                }
            }
        }
    }
}

/* ---- wsc__frame_parse ------------------------------------------------------ */

/* Parse p[0..len) and check every field against what was encoded. */
static bool parse_matches(const uint8_t *p, size_t len, size_t hlen, bool fin,
                          uint8_t rsv, int opcode, uint64_t plen, const uint8_t *mask)
{
    struct wsc__frame_head h;
    int rc;

    memset(&h, 0xa5, sizeof(h));
    rc = wsc__frame_parse(p, len, &h);
    return CHECK_INT_EQ(rc, (int)hlen)
        && CHECK_INT_EQ(h.header_len, hlen)
        && CHECK_INT_EQ(h.fin, fin)
        && CHECK_INT_EQ(h.rsv, rsv)
        && CHECK_INT_EQ(h.opcode, opcode)
        && CHECK(h.payload_len == plen)
        && CHECK_INT_EQ(h.masked, mask != NULL)
        && (mask == NULL || CHECK_MEM_EQ(h.mask, mask, 4));
}

/* encode -> patch in FIN/RSV2/RSV3 -> parse, for everything the header can
 * say; with exactly the header's bytes, and with payload bytes after it. */
static void test_parse_round_trip(void)
{
    static const uint8_t extra_rsv[] = { 0x00, 0x20, 0x10, 0x30 };

    for (size_t li = 0; li < N_OF(boundary_lens); li++) {
        uint64_t len = boundary_lens[li];

        for (int op = 0; op < 16; op++)
        for (int r1 = 0; r1 < 2; r1++)
        for (size_t x = 0; x < N_OF(extra_rsv); x++)
        for (int m = 0; m < 2; m++)
        for (int fin = 0; fin < 2; fin++) {
            const uint8_t *mask = m ? (op & 1 ? key_a : key_b) : NULL;
            uint8_t buf[WSC__FRAME_HEADER_MAX + 32];
            uint8_t rsv = (uint8_t)((r1 ? 0x40 : 0) | extra_rsv[x]);
            size_t n = wsc__frame_header(buf, r1 != 0, op, (size_t)len, mask);

            buf[0] |= extra_rsv[x];
            if (!fin)
                buf[0] &= 0x7f;
            memset(buf + n, 0x5c, sizeof(buf) - n);
            if (!parse_matches(buf, n, n, fin != 0, rsv, op, len, mask)
                || !parse_matches(buf, sizeof(buf), n, fin != 0, rsv, op, len, mask)) {
                UNIT_NOTE("len %llu opcode %d rsv 0x%02x masked %d fin %d",
                          (unsigned long long)len, op, rsv, m, fin);
                return;
            }
        }
    }
}

/* Every prefix shorter than the header needs more bytes; the whole header on
 * a guard page parses without reading past it. */
static void test_parse_prefixes(void)
{
    for (size_t li = 0; li < N_OF(boundary_lens); li++) {
        for (int m = 0; m < 2; m++) {
            uint64_t len = boundary_lens[li];
            const uint8_t *mask = m ? key_a : NULL;
            uint8_t hdr[WSC__FRAME_HEADER_MAX];
            size_t n = wsc__frame_header(hdr, true, 2, (size_t)len, mask);

            for (size_t k = 0; k <= n; k++) {
                struct unit_guard g;
                uint8_t *p = unit_guard_copy(&g, hdr, k);
                struct wsc__frame_head h;
                bool ok;

                if (p == NULL)
                    return;
                if (k < n) {
                    ok = CHECK_INT_EQ(wsc__frame_parse(p, k, &h), 0);
                } else {
                    ok = parse_matches(p, k, n, true, 0x40, 2, len, mask);
                }
                unit_guard_free(&g);
                if (!ok) {
                    UNIT_NOTE("len %llu masked %d: prefix of %zu of %zu bytes",
                              (unsigned long long)len, m, k, n);
                    return;
                }
            }
        }
    }
}

/* The examples of RFC 6455 5.7. */
static void test_parse_rfc_examples(void)
{
    static const uint8_t text[] = { 0x81, 0x05, 'H', 'e', 'l', 'l', 'o' };
    static const uint8_t masked[] = { 0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d,
                                      0x7f, 0x9f, 0x4d, 0x51, 0x58 };
    static const uint8_t frag1[] = { 0x01, 0x03, 'H', 'e', 'l' };
    static const uint8_t frag2[] = { 0x80, 0x02, 'l', 'o' };
    static const uint8_t ping[] = { 0x89, 0x05, 'H', 'e', 'l', 'l', 'o' };
    static const uint8_t pong[] = { 0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d,
                                    0x7f, 0x9f, 0x4d, 0x51, 0x58 };
    static const uint8_t bin256[] = { 0x82, 0x7e, 0x01, 0x00 };
    static const uint8_t bin64k[] = { 0x82, 0x7f, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00 };
    uint8_t payload[5];
    uint8_t hdr[WSC__FRAME_HEADER_MAX];
    struct wsc__frame_head h;

    CHECK(parse_matches(text, sizeof(text), 2, true, 0, 1, 5, NULL));
    CHECK_MEM_EQ(text + 2, "Hello", 5);

    if (parse_matches(masked, sizeof(masked), 6, true, 0, 1, 5, key_a)) {
        memcpy(payload, masked + 6, 5);
        CHECK(wsc__frame_parse(masked, sizeof(masked), &h) == 6);
        wsc__mask(payload, 5, h.mask, 0);
        CHECK_MEM_EQ(payload, "Hello", 5);
        /* and libwsc encodes it the same way */
        CHECK_INT_EQ(wsc__frame_header(hdr, false, 1, 5, key_a), 6);
        CHECK_MEM_EQ(hdr, masked, 6);
        wsc__mask(payload, 5, key_a, 0);
        CHECK_MEM_EQ(payload, masked + 6, 5);
    }
    CHECK(parse_matches(frag1, sizeof(frag1), 2, false, 0, 0x1, 3, NULL));
    CHECK(parse_matches(frag2, sizeof(frag2), 2, true, 0, 0x0, 2, NULL));
    CHECK(parse_matches(ping, sizeof(ping), 2, true, 0, 0x9, 5, NULL));
    if (parse_matches(pong, sizeof(pong), 6, true, 0, 0xa, 5, key_a)) {
        memcpy(payload, pong + 6, 5);
        wsc__mask(payload, 5, key_a, 0);
        CHECK_MEM_EQ(payload, "Hello", 5);
    }
    CHECK(parse_matches(bin256, sizeof(bin256), 4, true, 0, 2, 256, NULL));
    CHECK(parse_matches(bin64k, sizeof(bin64k), 10, true, 0, 2, 65536, NULL));
}

/* A header with a 16-bit (ext 126) or 64-bit (ext 127) length field. */
static size_t make_ext_header(uint8_t *out, int ext, uint64_t value, bool masked)
{
    size_t n;

    out[0] = 0x82;
    out[1] = (uint8_t)((masked ? 0x80 : 0) | ext);
    if (ext == 126) {
        out[2] = (uint8_t)(value >> 8);
        out[3] = (uint8_t)value;
        n = 4;
    } else {
        for (int i = 0; i < 8; i++)
            out[2 + i] = (uint8_t)(value >> (56 - 8 * i));
        n = 10;
    }
    if (masked) {
        memcpy(out + n, key_b, 4);
        n += 4;
    }
    return n;
}

/* RFC 6455 5.2: "the minimal number of bytes MUST be used to encode the
 * length", and the 64-bit length's most significant bit MUST be 0. */
static void test_parse_bad_lengths(void)
{
    static const uint64_t bad64[] = {
        0, 1, 125, 126, 127, 255, 256, 0x1234, 65534, 65535,
        1ull << 63, (1ull << 63) | 1, (1ull << 63) | 65536, UINT64_MAX,
        0xffffffffffff0000ull, 0x8000000100000000ull,
    };
    static const uint64_t good64[] = {
        65536, 65537, 0xffffffffull, 1ull << 32, (1ull << 63) - 1,
    };
    uint8_t buf[WSC__FRAME_HEADER_MAX + 8];
    struct wsc__frame_head h;

    for (int m = 0; m < 2; m++) {
        for (uint64_t v = 0; v <= 126; v++) {
            size_t n = make_ext_header(buf, 126, v, m != 0);
            int want = v < 126 ? WSC__FRAME_BAD : (int)n;

            if (!CHECK_INT_EQ(wsc__frame_parse(buf, n, &h), want)
                || !CHECK_INT_EQ(wsc__frame_parse(buf, sizeof(buf), &h), want)) {
                UNIT_NOTE("16-bit length %llu masked %d", (unsigned long long)v, m);
                break;
            }
        }
        for (size_t i = 0; i < N_OF(bad64); i++) {
            size_t n = make_ext_header(buf, 127, bad64[i], m != 0);

            if (!CHECK_INT_EQ(wsc__frame_parse(buf, n, &h), WSC__FRAME_BAD)
                || !CHECK_INT_EQ(wsc__frame_parse(buf, sizeof(buf), &h), WSC__FRAME_BAD))
                UNIT_NOTE("64-bit length 0x%016llx masked %d",
                          (unsigned long long)bad64[i], m);
        }
        for (size_t i = 0; i < N_OF(good64); i++) {
            size_t n = make_ext_header(buf, 127, good64[i], m != 0);

            if (!parse_matches(buf, n, n, true, 0, 2, good64[i], m ? key_b : NULL))
                UNIT_NOTE("64-bit length 0x%016llx masked %d",
                          (unsigned long long)good64[i], m);
        }
    }
    /* every 64-bit value below 65536 whose high bytes are zero: a sample */
    {
        struct rng r = { 7 };

        for (int i = 0; i < 2000; i++) {
            uint64_t v = rng_below(&r, 65536);
            size_t n = make_ext_header(buf, 127, v, i & 1);

            if (!CHECK_INT_EQ(wsc__frame_parse(buf, n, &h), WSC__FRAME_BAD)) {
                UNIT_NOTE("64-bit length %llu", (unsigned long long)v);
                break;
            }
        }
    }
}

/* ---- wslay, the reference ---------------------------------------------- */

/* The state behind wslay's callbacks: what it sends goes to out, what it
 * reads comes from in[in_off..in_len) in pseudo-random short reads. */
struct wslay_io {
    struct rng rng;
    struct bytes out;
    const uint8_t *in;
    size_t in_len, in_off;
    uint8_t last_key[4];
    unsigned genmask_calls;
};

static ssize_t io_send(const uint8_t *data, size_t len, int flags, void *user_data)
{
    struct wslay_io *io = user_data;

    (void)flags;
    if (len == 0 || !bytes_add(&io->out, data, len))
        return -1;
    return (ssize_t)len;
}

/* wslay.h: fill at most len bytes, return how many; -1 is an error and so
 * is 0 (wslay_frame_recv then returns WSLAY_ERR_WANT_READ). No input left
 * is reported as -1. */
static ssize_t io_recv(uint8_t *buf, size_t len, int flags, void *user_data)
{
    struct wslay_io *io = user_data;
    size_t left = io->in_len - io->in_off;
    size_t n;

    (void)flags;
    if (left == 0 || len == 0)
        return -1;
    n = len < left ? len : left;
    /* mostly short reads, so frame headers split across calls too */
    switch (rng_below(&io->rng, 4)) {
    case 0: n = 1 + rng_below(&io->rng, n < 3 ? n : 3); break;
    case 1: n = 1 + rng_below(&io->rng, n); break;
    default: break;
    }
    memcpy(buf, io->in + io->in_off, n);
    io->in_off += n;
    return (ssize_t)n;
}

static int io_genmask(uint8_t *buf, size_t len, void *user_data)
{
    struct wslay_io *io = user_data;

    if (len != 4)
        return -1;
    rng_fill(&io->rng, buf, 4);
    memcpy(io->last_key, buf, 4);
    io->genmask_calls++;
    return 0;
}

static const struct wslay_frame_callbacks io_callbacks = {
    io_send, io_recv, io_genmask,
};

/* A payload length: the boundaries, short, medium and up to 70000. */
static size_t random_len(struct rng *r)
{
    static const size_t special[] = {
        0, 1, 125, 126, 127, 65535, 65536, 65537, 69999, 70000,
    };

    switch (rng_below(r, 8)) {
    case 0: case 1: return special[rng_below(r, N_OF(special))];
    case 2: case 3: case 4: return rng_below(r, 126);
    case 5: case 6: return 126 + rng_below(r, 4096 - 126);
    default: return rng_below(r, 70001);
    }
}

struct sent_frame {
    uint8_t *payload;
    size_t len;
    size_t offset;                /* where the frame starts in the stream */
    uint8_t fin, rsv, opcode, masked;
    uint8_t key[4];
};

static void free_frames(struct sent_frame *f, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(f[i].payload);
    free(f);
}

#define DIFF_FRAMES 400

/* wslay encodes, libwsc parses and unmasks. */
static void test_wslay_to_wsc(void)
{
    static const uint8_t opcodes[] = { 0x0, 0x1, 0x2, 0x8, 0x9, 0xa };
    struct wslay_io io = { .rng = { 20240601 } };
    struct sent_frame *f = calloc(DIFF_FRAMES, sizeof(*f));
    /* One context for masked frames, one for unmasked: wslay 1.1.1 sets
     * ctx->omask when it sends a masked frame and never clears it, so an
     * unmasked frame sent after a masked one on the same context gets the
     * old key XORed into its payload (a real endpoint never mixes the two). */
    wslay_frame_context_ptr ctx[2] = { NULL, NULL };
    size_t off = 0;

    if (!CHECK(f != NULL))
        return;
    if (!CHECK_INT_EQ(wslay_frame_context_init(&ctx[0], &io_callbacks, &io), 0)
        || !CHECK_INT_EQ(wslay_frame_context_init(&ctx[1], &io_callbacks, &io), 0))
        goto out;
    for (size_t i = 0; i < DIFF_FRAMES; i++) {
        struct wslay_frame_iocb iocb;
        unsigned calls = io.genmask_calls;
        ssize_t r;

        f[i].opcode = opcodes[rng_below(&io.rng, N_OF(opcodes))];
        f[i].len = random_len(&io.rng);
        if (f[i].opcode >= 8)
            f[i].len %= 126;      /* control frames: at most 125 */
        f[i].fin = f[i].opcode >= 8 ? 1 : (uint8_t)(rng_below(&io.rng, 4) != 0);
        f[i].rsv = (uint8_t)rng_below(&io.rng, 8);
        f[i].masked = (uint8_t)rng_below(&io.rng, 2);
        f[i].payload = malloc(f[i].len + 1);
        if (!CHECK(f[i].payload != NULL))
            goto out;
        rng_fill(&io.rng, f[i].payload, f[i].len);
        f[i].offset = io.out.len;

        memset(&iocb, 0, sizeof(iocb));
        iocb.fin = f[i].fin;
        iocb.rsv = f[i].rsv;
        iocb.opcode = f[i].opcode;
        iocb.mask = f[i].masked;
        iocb.payload_length = f[i].len;
        iocb.data = f[i].payload;
        iocb.data_length = f[i].len;
        r = wslay_frame_send(ctx[f[i].masked], &iocb);
        if (!CHECK_INT_EQ(r, (ssize_t)f[i].len)) {
            UNIT_NOTE("wslay_frame_send of frame %zu", i);
            goto out;
        }
        if (f[i].masked) {
            if (!CHECK_INT_EQ(io.genmask_calls, calls + 1))
                goto out;
            memcpy(f[i].key, io.last_key, 4);
        }
    }

    for (size_t i = 0; i < DIFF_FRAMES; i++) {
        struct wsc__frame_head h;
        uint8_t hdr[WSC__FRAME_HEADER_MAX];
        const uint8_t *p = io.out.p + off;
        size_t avail = io.out.len - off;
        int rc;
        uint8_t *copy;
        size_t split;

        if (!CHECK_INT_EQ(off, f[i].offset))
            break;
        rc = wsc__frame_parse(p, avail, &h);
        if (!CHECK(rc > 0)) {
            UNIT_NOTE("frame %zu: parse returned %d", i, rc);
            UNIT_NOTE_BYTES("header", p, avail < 14 ? avail : 14);
            break;
        }
        if (!CHECK_INT_EQ(h.fin, f[i].fin) || !CHECK_INT_EQ(h.rsv, f[i].rsv << 4)
            || !CHECK_INT_EQ(h.opcode, f[i].opcode) || !CHECK_INT_EQ(h.masked, f[i].masked)
            || !CHECK(h.payload_len == f[i].len) || !CHECK_INT_EQ(h.header_len, rc)
            || (f[i].masked && !CHECK_MEM_EQ(h.mask, f[i].key, 4))
            || !CHECK(h.header_len + h.payload_len <= avail)) {
            UNIT_NOTE("frame %zu: len %zu opcode %d", i, f[i].len, f[i].opcode);
            break;
        }
        /* exactly the header's bytes parse the same; one fewer needs more */
        {
            struct wsc__frame_head h2;

            if (!CHECK_INT_EQ(wsc__frame_parse(p, h.header_len, &h2), rc)
                || !CHECK_INT_EQ(wsc__frame_parse(p, h.header_len - 1, &h2), 0))
                break;
        }
        /* the same header, byte for byte, from libwsc (FIN, RSV1 only) */
        if (f[i].fin && (f[i].rsv & 3) == 0) {
            size_t n = wsc__frame_header(hdr, f[i].rsv != 0, f[i].opcode, f[i].len,
                                         f[i].masked ? f[i].key : NULL);

            if (!CHECK_INT_EQ(n, h.header_len) || !CHECK_MEM_EQ(hdr, p, n)) {
                UNIT_NOTE("frame %zu: len %zu", i, f[i].len);
                break;
            }
        }
        /* unmask in two pieces at a random point, as a stream would */
        copy = malloc(f[i].len + 1);
        if (!CHECK(copy != NULL))
            break;
        memcpy(copy, p + h.header_len, f[i].len);
        if (h.masked) {
            split = rng_below(&io.rng, f[i].len + 1);
            wsc__mask(copy, split, h.mask, 0);
            wsc__mask(copy + split, f[i].len - split, h.mask, split);
        }
        if (!CHECK_MEM_EQ(copy, f[i].payload, f[i].len)) {
            UNIT_NOTE("frame %zu: len %zu masked %d", i, f[i].len, f[i].masked);
            free(copy);
            break;
        }
        free(copy);
        off += h.header_len + (size_t)h.payload_len;
    }
    CHECK_INT_EQ(off, io.out.len);
out:
    for (int k = 0; k < 2; k++)
        if (ctx[k] != NULL)
            wslay_frame_context_free(ctx[k]);
    bytes_free(&io.out);
    free_frames(f, DIFF_FRAMES);
}

/* libwsc encodes (wsc__frame_header + wsc__mask), wslay decodes. */
static void test_wsc_to_wslay(void)
{
    struct wslay_io io = { .rng = { 77 } };
    struct rng gen = { 424242 };
    struct sent_frame *f = calloc(DIFF_FRAMES, sizeof(*f));
    struct bytes stream = { 0 };
    struct bytes got = { 0 };
    wslay_frame_context_ptr ctx = NULL;

    if (!CHECK(f != NULL))
        return;
    for (size_t i = 0; i < DIFF_FRAMES; i++) {
        uint8_t hdr[WSC__FRAME_HEADER_MAX];
        uint8_t *masked;
        size_t n;

        f[i].opcode = (uint8_t)rng_below(&gen, 16);
        f[i].len = random_len(&gen);
        if (f[i].opcode >= 8)
            f[i].len %= 126;
        f[i].fin = 1;
        f[i].rsv = (uint8_t)(rng_below(&gen, 2) ? WSLAY_RSV1_BIT : 0);
        f[i].masked = (uint8_t)rng_below(&gen, 2);
        rng_fill(&gen, f[i].key, 4);
        f[i].payload = malloc(f[i].len + 1);
        masked = malloc(f[i].len + 1);
        if (!CHECK(f[i].payload != NULL && masked != NULL)) {
            free(masked);
            goto out;
        }
        rng_fill(&gen, f[i].payload, f[i].len);
        n = wsc__frame_header(hdr, f[i].rsv != 0, f[i].opcode, f[i].len,
                              f[i].masked ? f[i].key : NULL);
        memcpy(masked, f[i].payload, f[i].len);
        if (f[i].masked)
            wsc__mask(masked, f[i].len, f[i].key, 0);
        f[i].offset = stream.len;
        if (!CHECK(bytes_add(&stream, hdr, n) && bytes_add(&stream, masked, f[i].len))) {
            free(masked);
            goto out;
        }
        free(masked);
    }

    io.in = stream.p;
    io.in_len = stream.len;
    if (!CHECK_INT_EQ(wslay_frame_context_init(&ctx, &io_callbacks, &io), 0))
        goto out;
    for (size_t i = 0; i < DIFF_FRAMES; i++) {
        size_t guard = 0;

        got.len = 0;
        for (;;) {
            struct wslay_frame_iocb iocb;
            ssize_t r;

            memset(&iocb, 0, sizeof(iocb));
            r = wslay_frame_recv(ctx, &iocb);
            if (r == WSLAY_ERR_WANT_READ && io.in_off < io.in_len
                && ++guard < 10 * stream.len) {
                continue;
            }
            if (!CHECK(r >= 0)) {
                UNIT_NOTE("frame %zu: wslay_frame_recv returned %zd at input byte %zu "
                          "of %zu", i, r, io.in_off, io.in_len);
                goto out;
            }
            if (!CHECK_INT_EQ(iocb.fin, f[i].fin) || !CHECK_INT_EQ(iocb.rsv, f[i].rsv)
                || !CHECK_INT_EQ(iocb.opcode, f[i].opcode)
                || !CHECK_INT_EQ(iocb.mask, f[i].masked)
                || !CHECK(iocb.payload_length == f[i].len)
                || !CHECK_INT_EQ(iocb.data_length, r)
                || !CHECK(got.len + (size_t)r <= f[i].len)) {
                UNIT_NOTE("frame %zu: len %zu opcode %d", i, f[i].len, f[i].opcode);
                goto out;
            }
            if (!CHECK(bytes_add(&got, iocb.data, (size_t)r)))
                goto out;
            if (got.len == f[i].len)
                break;
        }
        if (!CHECK_MEM_EQ(got.p, f[i].payload, f[i].len)) {
            UNIT_NOTE("frame %zu: len %zu masked %d", i, f[i].len, f[i].masked);
            goto out;
        }
    }
    CHECK_INT_EQ(io.in_off, io.in_len);
out:
    if (ctx != NULL)
        wslay_frame_context_free(ctx);
    bytes_free(&stream);
    bytes_free(&got);
    free_frames(f, DIFF_FRAMES);
}

/* wslay refuses what libwsc refuses: the non-minimal lengths. */
static void test_wslay_agrees_bad(void)
{
    static const struct { int ext; uint64_t v; } cases[] = {
        { 126, 0 }, { 126, 125 }, { 126, 126 }, { 127, 0 }, { 127, 65535 },
        { 127, 65536 }, { 127, 1ull << 63 }, { 127, (1ull << 63) - 1 },
    };

    for (size_t i = 0; i < N_OF(cases); i++) {
        uint8_t buf[WSC__FRAME_HEADER_MAX];
        struct wslay_io io = { .rng = { 1 } };
        wslay_frame_context_ptr ctx = NULL;
        struct wslay_frame_iocb iocb;
        struct wsc__frame_head h;
        size_t n = make_ext_header(buf, cases[i].ext, cases[i].v, false);
        bool wsc_bad = wsc__frame_parse(buf, n, &h) == WSC__FRAME_BAD;
        bool wslay_bad;
        ssize_t r;

        io.in = buf;
        io.in_len = n;
        if (!CHECK_INT_EQ(wslay_frame_context_init(&ctx, &io_callbacks, &io), 0))
            return;
        do {
            memset(&iocb, 0, sizeof(iocb));
            r = wslay_frame_recv(ctx, &iocb);
        } while (r == WSLAY_ERR_WANT_READ && io.in_off < io.in_len);
        wslay_frame_context_free(ctx);
        /* a good header with no payload bytes: WANT_READ (or 0 bytes) */
        wslay_bad = r == WSLAY_ERR_PROTO;
        if (!CHECK_INT_EQ(wsc_bad, wslay_bad))
            UNIT_NOTE("ext %d value %llu: wslay returned %zd", cases[i].ext,
                      (unsigned long long)cases[i].v, r);
    }
}

/* ---- wsc__mask --------------------------------------------------------------- */

/* Every length 0..70, key offset 0..3 and buffer alignment 0..7 against the
 * byte loop; bytes around the range stay as they were. */
static void test_mask_reference(void)
{
    static const uint8_t keys[][4] = {
        { 0x37, 0xfa, 0x21, 0x3d }, { 0x00, 0x00, 0x00, 0x00 },
        { 0xff, 0xff, 0xff, 0xff }, { 0x01, 0x02, 0x04, 0x08 },
    };
    struct rng r = { 99 };
    uint8_t data[96], want[96], got[96 + 16];

    rng_fill(&r, data, sizeof(data));
    for (size_t ki = 0; ki < N_OF(keys); ki++)
    for (size_t align = 0; align < 8; align++)
    for (size_t off = 0; off < 4; off++)
    for (size_t n = 0; n <= 70; n++) {
        uint8_t *p = got + 8 + align;

        memset(got, 0xcc, sizeof(got));
        memcpy(p, data, n);
        memcpy(want, data, n);
        ref_mask(want, n, keys[ki], off);
        wsc__mask(p, n, keys[ki], off);
        if (!CHECK_MEM_EQ(p, want, n)) {
            UNIT_NOTE("key %zu align %zu offset %zu length %zu", ki, align, off, n);
            return;
        }
        for (size_t k = 0; k < sizeof(got); k++) {
            if ((k < 8 + align || k >= 8 + align + n) && !CHECK_INT_EQ(got[k], 0xcc)) {
                UNIT_NOTE("key %zu align %zu offset %zu length %zu: byte %zu "
                          "outside the range written", ki, align, off, n, k);
                return;
            }
        }
    }
}

/* Random keys, and offsets past 3 (a running offset) mean offset % 4. */
static void test_mask_random_keys(void)
{
    struct rng r = { 5150 };
    uint8_t data[300], want[300], got[300 + 8];

    for (int t = 0; t < 2000; t++) {
        uint8_t key[4];
        size_t n = rng_below(&r, 300);
        size_t off = rng_below(&r, 100000);
        size_t align = rng_below(&r, 8);

        rng_fill(&r, key, 4);
        rng_fill(&r, data, n);
        memcpy(want, data, n);
        ref_mask(want, n, key, off);
        memcpy(got + align, data, n);
        wsc__mask(got + align, n, key, off);
        if (!CHECK_MEM_EQ(got + align, want, n)) {
            UNIT_NOTE("length %zu offset %zu align %zu", n, off, align);
            return;
        }
    }
}

/* The last byte masked is the last before a PROT_NONE page. */
static void test_mask_guard_page(void)
{
    struct rng r = { 31337 };
    uint8_t data[80], want[80];

    rng_fill(&r, data, sizeof(data));
    for (size_t n = 0; n <= 70; n++) {
        for (size_t off = 0; off < 4; off++) {
            struct unit_guard g;
            uint8_t *p = unit_guard_copy(&g, data, n);
            bool ok;

            if (p == NULL)
                return;
            memcpy(want, data, n);
            ref_mask(want, n, key_a, off);
            wsc__mask(p, n, key_a, off);
            ok = CHECK_MEM_EQ(p, want, n);
            unit_guard_free(&g);
            if (!ok) {
                UNIT_NOTE("length %zu offset %zu", n, off);
                return;
            }
        }
    }
}

static void test_mask_twice(void)
{
    struct rng r = { 8 };
    static uint8_t data[70000], buf[70000 + 8];

    rng_fill(&r, data, sizeof(data));
    for (int t = 0; t < 50; t++) {
        uint8_t key[4];
        size_t n = t < 4 ? sizeof(data) : rng_below(&r, sizeof(data) + 1);
        size_t off = rng_below(&r, 4);
        size_t align = rng_below(&r, 8);

        rng_fill(&r, key, 4);
        memcpy(buf + align, data, n);
        wsc__mask(buf + align, n, key, off);
        if (n >= 64 && (key[0] | key[1] | key[2] | key[3]) != 0
            && !CHECK(memcmp(buf + align, data, n) != 0))
            return;
        wsc__mask(buf + align, n, key, off);
        if (!CHECK_MEM_EQ(buf + align, data, n)) {
            UNIT_NOTE("length %zu offset %zu align %zu", n, off, align);
            return;
        }
    }
}

/* The 16-byte-vector kernel on its own: on a CPU with AVX2 wsc__mask_high
 * takes it only below 512 bytes, on one without for every length. It
 * unmasks a multiple of 64 bytes and ORs exactly those into *high. */
static bool mask_v16_high_ok(const uint8_t *masked, const uint8_t *plain, size_t n,
                             const uint8_t key[4], size_t off)
{
    static uint8_t buf[1100];
    uint8_t key8[8] = { 0 };
    uint64_t k64, high = 0;
    uint8_t want = 0;
    size_t done;

    ref_mask(key8, 8, key, off); /* the key from off on, by the oracle */
    memcpy(&k64, key8, 8);
    memcpy(buf, masked, n);
    done = wsc__mask_v16(buf, n, k64, &high);
    for (size_t i = 0; i < done; i++)
        want |= plain[i];
    return CHECK_INT_EQ(done, n - n % 64) && CHECK_MEM_EQ(buf, plain, done) &&
           CHECK_INT_EQ((high & UINT64_C(0x8080808080808080)) != 0, (want & 0x80) != 0);
}

/* wsc__mask_high unmasks like wsc__mask and reports a byte at or above 0x80
 * wherever it is: every position of lengths on both sides of the 8-byte,
 * 64-byte (16-byte vectors) and 512-byte (widest vectors) steps, at every
 * key offset and a few alignments; all-ASCII text reports 0. */
static void test_mask_high(void)
{
    static const size_t lens[] = { 0, 1, 3, 4, 7, 8, 9, 23, 63, 64, 65, 127, 128,
                                   511, 512, 513, 575, 576, 1100 };
    struct rng r = { 4242 };
    static uint8_t plain[1100], want[1100], got[1100 + 8];

    for (size_t li = 0; li < N_OF(lens); li++)
    for (size_t off = 0; off < 4; off++)
    for (size_t align = 0; align < 8; align += 3) {
        size_t n = lens[li];
        uint8_t key[4];

        rng_fill(&r, key, 4);
        rng_fill(&r, plain, n);
        for (size_t i = 0; i < n; i++)
            plain[i] &= 0x7f; /* ASCII, masked below as a client would */
        memcpy(want, plain, n);
        ref_mask(want, n, key, off);
        memcpy(got + align, want, n);
        if (!mask_v16_high_ok(want, plain, n, key, off) ||
            !CHECK_INT_EQ(wsc__mask_high(got + align, n, key, off), 0) ||
            !CHECK_MEM_EQ(got + align, plain, n)) {
            UNIT_NOTE("ASCII, length %zu offset %zu align %zu", n, off, align);
            return;
        }
        for (size_t at = 0; at < n; at++) {
            uint8_t high = (uint8_t)(0x80 | (plain[at] + at)); /* any top-bit byte */

            uint8_t saved = plain[at];

            plain[at] = high;
            memcpy(want, plain, n);
            ref_mask(want, n, key, off);
            memcpy(got + align, want, n);
            if (!mask_v16_high_ok(want, plain, n, key, off)) {
                UNIT_NOTE("16-byte kernel: byte 0x%02x at %zu of %zu, offset %zu", high, at,
                          n, off);
                return;
            }
            plain[at] = saved;
            if (!CHECK(wsc__mask_high(got + align, n, key, off) != 0) ||
                !CHECK_INT_EQ(got[align + at], high)) {
                UNIT_NOTE("byte 0x%02x at %zu of %zu, offset %zu align %zu", high, at, n,
                          off, align);
                return;
            }
        }
    }
}

/* Masking a buffer in random chunks with the running offset equals masking
 * it whole (how a frame arriving in pieces is unmasked). */
static void test_mask_chunks(void)
{
    struct rng r = { 2718 };
    static uint8_t data[20000], whole[20000], parts[20000];

    for (int t = 0; t < 200; t++) {
        uint8_t key[4];
        size_t n = rng_below(&r, sizeof(data) + 1);
        size_t start = rng_below(&r, 4);
        size_t at = 0;
        size_t max_chunk = t % 3 == 0 ? 9 : t % 3 == 1 ? 40 : 3000;

        rng_fill(&r, key, 4);
        rng_fill(&r, data, n);
        memcpy(whole, data, n);
        memcpy(parts, data, n);
        wsc__mask(whole, n, key, start);
        while (at < n) {
            size_t c = rng_below(&r, max_chunk + 1);   /* may be 0 */

            if (c > n - at)
                c = n - at;
            wsc__mask(parts + at, c, key, start + at);
            at += c;
        }
        if (!CHECK_MEM_EQ(parts, whole, n)) {
            UNIT_NOTE("trial %d: length %zu", t, n);
            return;
        }
        ref_mask(data, n, key, start);
        if (!CHECK_MEM_EQ(whole, data, n))
            return;
    }
}

/* ---- close payloads and codes ----------------------------------------------- */

static void test_close_payload(void)
{
    uint8_t out[125 + 8];
    char reason[200];
    size_t n;

    for (size_t i = 0; i < sizeof(reason); i++)
        reason[i] = (char)('a' + i % 26);

    memset(out, 0xee, sizeof(out));
    CHECK_INT_EQ(wsc__frame_close_payload(out, 0, NULL, 0), 0);
    CHECK_INT_EQ(wsc__frame_close_payload(out, 0, "ignored", 7), 0);
    CHECK_INT_EQ(out[0], 0xee);

    memset(out, 0xee, sizeof(out));
    n = wsc__frame_close_payload(out, 1000, NULL, 0);
    CHECK_INT_EQ(n, 2);
    CHECK_MEM_EQ(out, "\x03\xe8", 2);
    CHECK_INT_EQ(out[2], 0xee);

    n = wsc__frame_close_payload(out, 1001, "bye", 3);
    CHECK_INT_EQ(n, 5);
    CHECK_MEM_EQ(out, "\x03\xe9" "bye", 5);

    n = wsc__frame_close_payload(out, 4999, "x", 1);
    CHECK_INT_EQ(n, 3);
    CHECK_MEM_EQ(out, "\x13\x87x", 3);

    n = wsc__frame_close_payload(out, 3000, "", 0);
    CHECK_INT_EQ(n, 2);
    CHECK_MEM_EQ(out, "\x0b\xb8", 2);

    /* the reason is cut to fit 125 bytes */
    for (size_t len = 120; len <= 200; len++) {
        size_t keep = len > 123 ? 123 : len;

        memset(out, 0xee, sizeof(out));
        n = wsc__frame_close_payload(out, 1011, reason, len);
        if (!CHECK_INT_EQ(n, 2 + keep) || !CHECK_MEM_EQ(out, "\x03\xf3", 2)
            || !CHECK_MEM_EQ(out + 2, reason, keep) || !CHECK_INT_EQ(out[125], 0xee)) {
            UNIT_NOTE("reason of %zu bytes", len);
            return;
        }
    }
}

static bool ref_code_valid(int code)
{
    return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014)
        || (code >= 3000 && code <= 4999);
}

static void test_close_code_valid(void)
{
    static const int valid[] = {
        1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014,
        3000, 3001, 3999, 4000, 4998, 4999,
    };
    static const int invalid[] = {
        999, 1004, 1005, 1006, 1015, 1016, 1999, 2000, 2999, 5000, 5001, 0, -1,
        -1000, 65535, 65536 + 1000, 0x10000 + 3000, INT_MIN, INT_MAX,
    };

    for (size_t i = 0; i < N_OF(valid); i++)
        if (!CHECK(wsc__close_code_valid(valid[i])))
            UNIT_NOTE("code %d", valid[i]);
    for (size_t i = 0; i < N_OF(invalid); i++)
        if (!CHECK(!wsc__close_code_valid(invalid[i])))
            UNIT_NOTE("code %d", invalid[i]);
    for (int code = -10; code <= 70000; code++) {
        if (!CHECK_INT_EQ(wsc__close_code_valid(code), ref_code_valid(code))) {
            UNIT_NOTE("code %d", code);
            return;
        }
    }
}

const struct unit_test frame_tests[] = {
    { "frame_header_bytes", test_header_bytes },
    { "frame_header_len", test_header_len },
    { "frame_header_fields", test_header_fields },
    { "frame_parse_round_trip", test_parse_round_trip },
    { "frame_parse_prefixes", test_parse_prefixes },
    { "frame_parse_rfc_examples", test_parse_rfc_examples },
    { "frame_parse_bad_lengths", test_parse_bad_lengths },
    { "frame_wslay_to_wsc", test_wslay_to_wsc },
    { "frame_wsc_to_wslay", test_wsc_to_wslay },
    { "frame_wslay_agrees_bad", test_wslay_agrees_bad },
    { "frame_mask_reference", test_mask_reference },
    { "frame_mask_random_keys", test_mask_random_keys },
    { "frame_mask_guard_page", test_mask_guard_page },
    { "frame_mask_twice", test_mask_twice },
    { "frame_mask_chunks", test_mask_chunks },
    { "frame_mask_high", test_mask_high },
    { "frame_close_payload", test_close_payload },
    { "frame_close_code_valid", test_close_code_valid },
    { NULL, NULL },
};
