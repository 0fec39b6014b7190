/*
 * broadcast.c - one message to every open connection, framed once.
 *
 * Server frames are unmasked, so the same bytes suit every client: the frame
 * is encoded once into a refcounted buffer (compressed once too, for every
 * connection on the shared no-context-takeover compressor) and written to
 * each connection from there: queued on each (copied if small, by
 * reference if large) and written once the current callbacks are done, so
 * that all broadcasts of one pass leave in one write per connection.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

struct bcast_frame {
    struct wsc__shared *s;        /* NULL until first needed */
};

/* Encode one frame into f. */
static int bcast_encode(struct bcast_frame *f, bool rsv1, int op, const void *data,
                        size_t len)
{
    uint8_t hdr[WSC__FRAME_HEADER_MAX];
    size_t hlen = wsc__frame_header(hdr, rsv1, op, len, NULL);

    f->s = wsc__shared_new(hlen + len);
    if (f->s == NULL)
        return WS_ENOMEM;
    memcpy(f->s->data, hdr, hlen);
    if (len > 0)
        memcpy(f->s->data + hlen, data, len);
    return 0;
}

static void bcast_queue(struct ws_conn *c, const struct bcast_frame *f)
{
    wsc__io_queue_shared(c, f->s);
}

/* Compress once for every connection on the shared compressor. Sets
 * *use_plain when compression does not make the message smaller. */
static int bcast_compress(struct wsc__endpoint *ep, struct bcast_frame *f, int op,
                          const void *data, size_t len, bool *use_plain)
{
    size_t out_len = 0;
    int rc;

    if (ep->shared_deflater == NULL)
        ep->shared_deflater = wsc__deflater_new(&ep->zmem, (int)ep->cfg.deflate_window_bits,
                                                 (int)ep->cfg.deflate_mem_level);
    if (ep->shared_deflater == NULL)
        return WS_ENOMEM;
    rc = wsc__deflate(ep->shared_deflater, data, len, &ep->zbuf, &ep->zbuf_cap, &out_len,
                      true);
    if (rc != 0)
        return rc;
    *use_plain = out_len >= len;
    return *use_plain ? 0 : bcast_encode(f, true, op, ep->zbuf, out_len);
}

/* Does this connection share the server's compressed frame? */
static bool uses_shared_compression(const struct ws_conn *c, size_t len)
{
    const struct ws_config *cfg = &c->ep->cfg;

    return wsc__pmd_on(c) && len >= cfg->deflate_threshold &&
           c->ext->params.tx_no_context_takeover &&
           c->ext->params.tx_window_bits == cfg->deflate_window_bits;
}

/* The connections a delivery goes to: all, or one topic's subscribers. */
struct targets {
    struct ws_conn *next_conn;
    struct wsc__sub *cursor;
    bool by_topic;
};

static struct ws_conn *targets_first(struct targets *it, struct wsc__endpoint *ep,
                                     const struct wsc__topic *topic, bool by_topic)
{
    it->by_topic = by_topic;
    if (by_topic)
        return topic != NULL ? wsc__topic_first(topic, &it->cursor) : NULL;
    it->next_conn = ep->conns != NULL ? ep->conns->next : NULL;
    return ep->conns;
}

static struct ws_conn *targets_next(struct targets *it)
{
    struct ws_conn *c;

    if (it->by_topic)
        return wsc__topic_next(&it->cursor);
    c = it->next_conn;
    if (c != NULL)
        it->next_conn = c->next;
    return c;
}

int wsc__deliver_now(struct wsc__endpoint *ep, const struct wsc__topic *topic,
                     bool by_topic, int op, const void *data, size_t len)
{
    struct bcast_frame plain = { 0 }, packed = { 0 };
    bool packed_is_plain = false;
    int rc = 0, skipped = 0;
    struct targets it;

    for (struct ws_conn *c = targets_first(&it, ep, topic, by_topic); c != NULL && rc == 0;
         c = targets_next(&it)) {
        if (atomic_load(&c->state) != WSC__CONN_OPEN || c->close_sent)
            continue;
        /* A slow consumer is skipped or closed; it never holds up the rest.
         * (The frame header is a few bytes more than len: close enough.) */
        if (wsc__conn_admit(c, len) != 0) {
            skipped++;
            continue;
        }
        if (wsc__pmd_on(c) && len >= ep->cfg.deflate_threshold &&
            !uses_shared_compression(c, len)) {
            /* Its own compression context: it has to compress for itself. */
            wsc__conn_send_now(c, op, data, len);
            continue;
        }
        if (uses_shared_compression(c, len) && !packed_is_plain) {
            if (packed.s == NULL)
                rc = bcast_compress(ep, &packed, op, data, len, &packed_is_plain);
            if (rc == 0 && !packed_is_plain) {
                bcast_queue(c, &packed);
                continue;
            }
        }
        if (rc == 0 && plain.s == NULL)
            rc = bcast_encode(&plain, false, op, data, len);
        if (rc == 0)
            bcast_queue(c, &plain);
    }
    wsc__shared_unref(plain.s); /* backlogs that reference it keep it */
    wsc__shared_unref(packed.s);
    if (ep->zbuf_cap > WSC__ZBUF_KEEP) {
        free(ep->zbuf);
        ep->zbuf = NULL;
        ep->zbuf_cap = 0;
    }
    return rc != 0 ? rc : skipped;
}

int ws_server_broadcast(struct ws_server *srv, enum ws_opcode op, const void *data, size_t len)
{
    if (srv == NULL || (op != WS_OP_TEXT && op != WS_OP_BINARY) || (data == NULL && len > 0))
        return WS_EINVAL;
    if (op == WS_OP_TEXT && !wsc__utf8_check(data, len))
        return WS_EUTF8;
    return wsc__server_fan_out(srv, NULL, op, data, len);
}
