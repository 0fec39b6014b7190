/*
 * deflate.c - permessage-deflate's zlib side (RFC 7692 section 7.2).
 *
 * Raw deflate streams (negative windowBits: no zlib header). A sender ends
 * each message with a sync flush and strips the final 0x00 0x00 0xff 0xff;
 * a receiver appends those four bytes before inflating the message's end.
 * Every allocation goes through a counter, so the memory a stream costs is
 * a measured number (docs/CONFORMANCE.md), not a guess.
 */
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "internal.h"

static const uint8_t deflate_tail[4] = { 0x00, 0x00, 0xff, 0xff };

/* zlib allocation through a byte counter; the size lives before the block. */
static void *counted_alloc(void *opaque, unsigned items, unsigned size)
{
    size_t *counter = opaque;
    size_t n = (size_t)items * size;
    size_t *p = malloc(sizeof(size_t) + n);

    if (p == NULL)
        return NULL;
    *p = n;
    if (counter != NULL)
        *counter += n;
    return p + 1;
}

static void counted_free(void *opaque, void *ptr)
{
    size_t *counter = opaque;
    size_t *p = (size_t *)ptr - 1;

    if (counter != NULL)
        *counter -= *p;
    free(p);
}

struct z_stream_s *wsc__inflater_new(size_t *mem_counter)
{
    z_stream *zs = calloc(1, sizeof(*zs));

    if (zs == NULL)
        return NULL;
    zs->zalloc = counted_alloc;
    zs->zfree = counted_free;
    zs->opaque = mem_counter;
    /* A 15-bit window inflates anything a peer with a smaller one sends. */
    if (inflateInit2(zs, -15) != Z_OK) {
        free(zs);
        return NULL;
    }
    return zs;
}

struct z_stream_s *wsc__deflater_new(size_t *mem_counter, int window_bits, int mem_level)
{
    z_stream *zs = calloc(1, sizeof(*zs));

    if (zs == NULL)
        return NULL;
    zs->zalloc = counted_alloc;
    zs->zfree = counted_free;
    zs->opaque = mem_counter;
    if (deflateInit2(zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -window_bits, mem_level,
                     Z_DEFAULT_STRATEGY) != Z_OK) {
        free(zs);
        return NULL;
    }
    return zs;
}

void wsc__inflater_free(struct z_stream_s *zs)
{
    if (zs != NULL) {
        inflateEnd(zs);
        free(zs);
    }
}

void wsc__deflater_free(struct z_stream_s *zs)
{
    if (zs != NULL) {
        deflateEnd(zs);
        free(zs);
    }
}

void wsc__inflater_reset(struct z_stream_s *zs)
{
    inflateReset(zs);
}

/* Make room for at least `want` more bytes, never beyond limit + 1 (one
 * byte over the limit is how "too big" is detected). */
static bool buf_reserve(uint8_t **buf, size_t *cap, size_t len, size_t want, size_t limit)
{
    size_t need = len + want, newcap;
    uint8_t *p;

    if (need <= *cap)
        return true;
    newcap = *cap * 2 > need ? *cap * 2 : need;
    if (newcap > limit + 1)
        newcap = limit + 1;
    if (newcap <= *cap)
        return true; /* at the ceiling: inflate stops there */
    p = realloc(*buf, newcap);
    if (p == NULL)
        return false;
    *buf = p;
    *cap = newcap;
    return true;
}

/* zlib counts in uInt (32 bits): larger spans are fed in pieces, never
 * truncated by a cast. */
#define WSC__ZCHUNK ((size_t)1 << 30)

static uInt zclamp(size_t n)
{
    return (uInt)(n < WSC__ZCHUNK ? n : WSC__ZCHUNK);
}

static int inflate_some(z_stream *zs, const uint8_t *in, size_t len, uint8_t **buf,
                        size_t *cap, size_t *out_len, size_t limit, bool *ended)
{
    size_t rest = len - zclamp(len); /* input not yet handed to zlib */

    *ended = false;
    zs->next_in = (Bytef *)(uintptr_t)in;
    zs->avail_in = zclamp(len);
    for (;;) {
        int r;
        if (zs->avail_in == 0 && rest > 0) {
            zs->avail_in = zclamp(rest);
            rest -= zs->avail_in;
        }
        if (!buf_reserve(buf, cap, *out_len, zs->avail_in * 2 + 256, limit))
            return WSC__INFLATE_NOMEM;
        zs->next_out = *buf + *out_len;
        zs->avail_out = zclamp(*cap - *out_len);
        r = inflate(zs, Z_SYNC_FLUSH);
        *out_len = (size_t)(zs->next_out - *buf);
        /* The size limit is checked as output appears, never after: a
         * small message that inflates to gigabytes stops at limit + 1. */
        if (*out_len > limit)
            return WSC__INFLATE_TOO_BIG;
        if (r == Z_STREAM_END) {
            /* A final block (BFINAL) ends the stream; the rest of the
             * message, if any, starts a new one. */
            inflateReset(zs);
            if (zs->avail_in == 0 && rest == 0) {
                *ended = true;
                return 0;
            }
            continue;
        }
        if (r != Z_OK && r != Z_BUF_ERROR)
            return r == Z_MEM_ERROR ? WSC__INFLATE_NOMEM : WSC__INFLATE_BAD;
        if (zs->avail_out == 0 || rest > 0)
            continue; /* output full, or input left: go on */
        return 0;     /* sync flush with room left: all input consumed */
    }
}

int wsc__inflate(struct z_stream_s *zs, const uint8_t *in, size_t len, bool last,
                 uint8_t **buf, size_t *cap, size_t *out_len, size_t limit)
{
    bool ended = false;
    int rc = 0;

    if (len > 0)
        rc = inflate_some(zs, in, len, buf, cap, out_len, limit, &ended);
    /* The tail completes a sync-flushed message; a message whose data ended
     * with a final block (RFC 7692 7.2.3.4) is complete already. */
    if (rc == 0 && last && !ended)
        rc = inflate_some(zs, deflate_tail, sizeof(deflate_tail), buf, cap, out_len, limit,
                          &ended);
    return rc;
}

int wsc__deflate(struct z_stream_s *zs, const uint8_t *in, size_t len, uint8_t **buf,
                 size_t *cap, size_t *out_len, bool reset)
{
    size_t bound = deflateBound(zs, (uLong)len) + 16, rest = len;

    if (!buf_reserve(buf, cap, 0, bound, SIZE_MAX - 1))
        return WS_ENOMEM;
    zs->next_in = (Bytef *)(uintptr_t)in;
    zs->next_out = *buf;
    /* With enough output space (deflateBound) each piece is consumed
     * whole; the last is sync-flushed. */
    do {
        size_t room = *cap - (size_t)(zs->next_out - *buf);
        zs->avail_in = zclamp(rest);
        rest -= zs->avail_in;
        zs->avail_out = zclamp(room);
        if (deflate(zs, rest == 0 ? Z_SYNC_FLUSH : Z_NO_FLUSH) != Z_OK || zs->avail_in != 0)
            return WS_ENOMEM;
    } while (rest > 0);
    *out_len = (size_t)(zs->next_out - *buf);
    if (*out_len >= 4 && memcmp(*buf + *out_len - 4, deflate_tail, 4) == 0)
        *out_len -= 4;
    if (reset)
        deflateReset(zs);
    return 0;
}
