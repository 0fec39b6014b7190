/*
 * message.c - from frames to messages (RFC 6455 sections 5 and 7).
 *
 * wslay's frame API parses headers, unmasks, and hands us payload in chunks
 * from its 4 KiB buffer. Everything above framing is here: opcode and
 * fragmentation rules, the message size limit (checked at each frame
 * header, before any payload is buffered), UTF-8 validated as bytes arrive
 * (fail fast), control frames, and the close frame's code and reason.
 *
 * The common case, a whole unfragmented message in one chunk, goes to the
 * data callback straight from wslay's buffer: no copy, no allocation.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static uint8_t allowed_rsv(const struct ws_conn *c, uint8_t opcode)
{
    bool first_data_frame = opcode == WS_OP_TEXT || opcode == WS_OP_BINARY;
    return c->pmd.enabled && first_data_frame ? WSLAY_RSV1_BIT : WSLAY_RSV_NONE;
}

static bool opcode_known(uint8_t op)
{
    return op == WS_OP_CONTINUATION || op == WS_OP_TEXT || op == WS_OP_BINARY ||
           op == WS_OP_CLOSE || op == WS_OP_PING || op == WS_OP_PONG;
}

static bool is_control(uint8_t op)
{
    return (op & 0x8) != 0;
}

static void fail_protocol(struct ws_conn *c, const char *why)
{
    wsc__conn_fail(c, WS_CAUSE_PROTOCOL, WS_CLOSE_PROTOCOL_ERROR, why);
}

/* Checks made once per frame, at its first chunk. False: connection failed. */
static bool frame_begin(struct ws_conn *c, const struct wslay_frame_iocb *f)
{
    const struct ws_config *cfg = &c->ep->cfg;

    c->got_traffic = true;
    c->frame_opcode = f->opcode;
    c->frame_fin = f->fin != 0;
    c->frame_left = f->payload_length;
    c->ctrl_len = 0;
    /* RSV1 means "compressed", and only on a message's first frame when
     * permessage-deflate was negotiated (RFC 7692 6). */
    if ((f->rsv & ~allowed_rsv(c, f->opcode)) != 0) {
        fail_protocol(c, "reserved bits set");
        return false;
    }
    if (!opcode_known(f->opcode)) {
        fail_protocol(c, "reserved opcode");
        return false;
    }
    /* RFC 6455 5.1: clients mask every frame, servers none. */
    if ((f->mask != 0) == c->ep->is_client) {
        fail_protocol(c, c->ep->is_client ? "server frame masked" : "client frame not masked");
        return false;
    }
    if (is_control(f->opcode))
        return true; /* wslay already refused > 125 bytes or fragmented */
    if (f->opcode == WS_OP_CONTINUATION && c->msg_opcode == 0) {
        fail_protocol(c, "continuation without a message");
        return false;
    }
    if (f->opcode != WS_OP_CONTINUATION && c->msg_opcode != 0) {
        fail_protocol(c, "new message inside a fragmented message");
        return false;
    }
    if (f->opcode != WS_OP_CONTINUATION) {
        c->msg_opcode = f->opcode;
        c->msg_len = 0;
        c->msg_wire_len = 0;
        c->utf8_state = WSC__UTF8_ACCEPT;
        c->msg_compressed = (f->rsv & WSLAY_RSV1_BIT) != 0;
    }
    if (c->msg_compressed) {
        /* The inflated size is checked while inflating; here only bound
         * the compressed bytes (incompressible data grows slightly). */
        c->msg_wire_len += f->payload_length;
        if (c->msg_wire_len > cfg->max_message_size + cfg->max_message_size / 64 + 64) {
            wsc__conn_fail(c, WS_CAUSE_PROTOCOL, WS_CLOSE_MESSAGE_TOO_BIG,
                           "message too big");
            return false;
        }
        return true;
    }
    if (f->payload_length > cfg->max_message_size - c->msg_len) {
        wsc__conn_fail(c, WS_CAUSE_PROTOCOL, WS_CLOSE_MESSAGE_TOO_BIG,
                       "message too big");
        return false;
    }
    return true;
}

static void deliver(struct ws_conn *c, uint8_t op, const uint8_t *data, size_t len)
{
    struct wsc__endpoint *ep = c->ep;

    c->msg_opcode = 0;
    /* Data after our close frame is read (to find the peer's close) but not
     * delivered: the application already said goodbye. */
    if (ep->on_data != NULL && !c->close_sent)
        ep->on_data(c, (enum ws_opcode)op, data, len, ep->data_arg);
}

static bool msg_append(struct ws_conn *c, const uint8_t *data, size_t len)
{
    if (c->msg_len + len > c->msg_cap) {
        /* Grow to the size announced by the frame header, at least double. */
        size_t want = c->msg_len + len + (size_t)c->frame_left;
        size_t cap = c->msg_cap * 2 > want ? c->msg_cap * 2 : want;
        uint8_t *p;
        if (cap > c->ep->cfg.max_message_size)
            cap = c->ep->cfg.max_message_size;
        p = realloc(c->msg_buf, cap);
        if (p == NULL)
            return false;
        c->msg_buf = p;
        c->msg_cap = cap;
    }
    memcpy(c->msg_buf + c->msg_len, data, len);
    c->msg_len += len;
    return true;
}

/*
 * The inflater for a compressed message. With client context takeover the
 * connection keeps its own stream. Without, a message that is whole in this
 * chunk borrows the server's shared stream; one that arrives in pieces gets
 * a stream of its own until it ends (so pieces of messages on different
 * connections never mix in one stream).
 */
static struct z_stream_s *pick_inflater(struct ws_conn *c, bool whole_now)
{
    struct wsc__endpoint *ep = c->ep;

    if (c->inflater == NULL && c->pmd.rx_no_context_takeover && whole_now) {
        if (ep->shared_inflater == NULL)
            ep->shared_inflater = wsc__inflater_new(&ep->zmem);
        else
            wsc__inflater_reset(ep->shared_inflater);
        return ep->shared_inflater;
    }
    if (c->inflater == NULL)
        c->inflater = wsc__inflater_new(&ep->zmem);
    return c->inflater;
}

static void inflater_done(struct ws_conn *c)
{
    if (c->pmd.rx_no_context_takeover && c->inflater != NULL) {
        wsc__inflater_free(c->inflater);
        c->inflater = NULL;
    }
}

static void msg_release(struct ws_conn *c)
{
    /* An idle connection should hold no payload memory. */
    free(c->msg_buf);
    c->msg_buf = NULL;
    c->msg_len = c->msg_cap = 0;
}

static void compressed_chunk(struct ws_conn *c, const uint8_t *data, size_t len,
                             bool first_chunk)
{
    bool last = c->frame_left == 0 && c->frame_fin;
    bool whole_now = first_chunk && last && c->frame_opcode != WS_OP_CONTINUATION;
    struct z_stream_s *zs = pick_inflater(c, whole_now);
    size_t before = c->msg_len;
    int rc;

    if (zs == NULL) {
        wsc__conn_fail(c, WS_CAUSE_ERROR, WS_CLOSE_INTERNAL_ERROR, "out of memory");
        return;
    }
    rc = wsc__inflate(zs, data, len, last, &c->msg_buf, &c->msg_cap, &c->msg_len,
                      c->ep->cfg.max_message_size);
    if (rc == WSC__INFLATE_TOO_BIG) {
        wsc__conn_fail(c, WS_CAUSE_PROTOCOL, WS_CLOSE_MESSAGE_TOO_BIG, "message too big");
        return;
    }
    if (rc != 0) {
        if (rc == WSC__INFLATE_BAD)
            wsc__conn_fail(c, WS_CAUSE_PROTOCOL, WS_CLOSE_INVALID_PAYLOAD,
                           "invalid compressed data");
        else
            wsc__conn_fail(c, WS_CAUSE_ERROR, WS_CLOSE_INTERNAL_ERROR, "out of memory");
        return;
    }
    if (c->msg_opcode == WS_OP_TEXT && c->msg_len > before) {
        c->utf8_state = wsc__utf8_feed(c->utf8_state, c->msg_buf + before,
                                       c->msg_len - before);
        if (c->utf8_state == WSC__UTF8_REJECT) {
            wsc__conn_fail(c, WS_CAUSE_PROTOCOL, WS_CLOSE_INVALID_PAYLOAD, "invalid UTF-8");
            return;
        }
    }
    if (last && c->msg_opcode == WS_OP_TEXT && c->utf8_state != WSC__UTF8_ACCEPT) {
        wsc__conn_fail(c, WS_CAUSE_PROTOCOL, WS_CLOSE_INVALID_PAYLOAD, "invalid UTF-8");
        return;
    }
    if (!last)
        return;
    inflater_done(c);
    c->msg_compressed = false;
    deliver(c, c->msg_opcode, c->msg_buf, c->msg_len);
    msg_release(c);
}

static void data_chunk(struct ws_conn *c, const uint8_t *data, size_t len,
                       bool first_chunk)
{
    bool frame_done = c->frame_left == 0;
    bool text = c->msg_opcode == WS_OP_TEXT;

    if (c->msg_compressed) {
        compressed_chunk(c, data, len, first_chunk);
        return;
    }
    /* Fast path: a whole single-frame message in one chunk. */
    if (first_chunk && frame_done && c->frame_fin && c->msg_len == 0 &&
        c->frame_opcode != WS_OP_CONTINUATION) {
        if (text && !wsc__utf8_valid(data, len)) {
            wsc__conn_fail(c, WS_CAUSE_PROTOCOL, WS_CLOSE_INVALID_PAYLOAD, "invalid UTF-8");
            return;
        }
        deliver(c, c->msg_opcode, data, len);
        return;
    }
    if (text) {
        c->utf8_state = wsc__utf8_feed(c->utf8_state, data, len);
        if (c->utf8_state == WSC__UTF8_REJECT) {
            wsc__conn_fail(c, WS_CAUSE_PROTOCOL, WS_CLOSE_INVALID_PAYLOAD, "invalid UTF-8");
            return;
        }
    }
    if (len > 0 && !msg_append(c, data, len)) {
        wsc__conn_fail(c, WS_CAUSE_ERROR, WS_CLOSE_INTERNAL_ERROR, "out of memory");
        return;
    }
    if (!frame_done || !c->frame_fin)
        return;
    if (text && c->utf8_state != WSC__UTF8_ACCEPT) {
        wsc__conn_fail(c, WS_CAUSE_PROTOCOL, WS_CLOSE_INVALID_PAYLOAD,
                       "truncated UTF-8");
        return;
    }
    deliver(c, c->msg_opcode, c->msg_buf, c->msg_len);
    msg_release(c);
}

static void close_frame(struct ws_conn *c, const uint8_t *p, size_t len)
{
    int code = WS_CLOSE_NO_STATUS;
    const char *reason = "";
    size_t reason_len = 0;

    if (len == 1) {
        fail_protocol(c, "close payload of one byte");
        return;
    }
    if (len >= 2) {
        code = (p[0] << 8) | p[1];
        reason = (const char *)p + 2;
        reason_len = len - 2;
        if (!wsc__close_code_valid(code)) {
            fail_protocol(c, "invalid close code");
            return;
        }
        if (!wsc__utf8_valid(reason, reason_len)) {
            wsc__conn_fail(c, WS_CAUSE_PROTOCOL, WS_CLOSE_INVALID_PAYLOAD,
                           "invalid UTF-8 in close reason");
            return;
        }
    }
    wsc__conn_close_received(c, code, reason, reason_len);
}

static void control_frame(struct ws_conn *c, const uint8_t *p, size_t len)
{
    struct wsc__endpoint *ep = c->ep;

    switch (c->frame_opcode) {
    case WS_OP_PING:
        if (c->close_sent)
            return;
        wsc__conn_send_now(c, WS_OP_PONG, p, len);
        if (ep->on_ping != NULL)
            ep->on_ping(c, p, len, ep->ping_arg);
        break;
    case WS_OP_PONG:
        if (c->awaiting_pong && c->ep->cfg.ping_interval_ms > 0) {
            /* Answered: the next ping is due one interval from now, not
             * after what is left of the pong timeout. */
            c->awaiting_pong = false;
            c->got_traffic = false;
            wsc__conn_arm_timer(c, c->ep->cfg.ping_interval_ms);
        }
        c->awaiting_pong = false;
        if (ep->on_pong != NULL && !c->close_sent)
            ep->on_pong(c, p, len, ep->pong_arg);
        break;
    case WS_OP_CLOSE:
        close_frame(c, p, len);
        break;
    }
}

static void control_chunk(struct ws_conn *c, const uint8_t *data, size_t len)
{
    /* Usually whole in one chunk; a frame split across reads is gathered. */
    if (c->frame_left == 0 && c->ctrl_len == 0) {
        control_frame(c, data, len);
        return;
    }
    memcpy(c->ctrl_buf + c->ctrl_len, data, len);
    c->ctrl_len = (uint8_t)(c->ctrl_len + len);
    if (c->frame_left == 0)
        control_frame(c, c->ctrl_buf, c->ctrl_len);
}

static bool still_reading(struct ws_conn *c)
{
    int st = atomic_load(&c->state);
    return st == WSC__CONN_OPEN || st == WSC__CONN_CLOSING;
}

/* Wire size of a frame's header (wslay refuses non-minimal lengths). */
static uint64_t header_size(const struct wslay_frame_iocb *f)
{
    uint64_t n = 2 + (f->mask ? 4 : 0);
    if (f->payload_length >= 65536)
        return n + 8;
    return f->payload_length >= 126 ? n + 2 : n;
}

/* Between frames with every byte given to wslay accounted for, its buffer
 * is empty: give the context back, so an idle connection holds none. */
static void rx_fctx_release_if_idle(struct ws_conn *c)
{
    if (c->rx_fctx != NULL && c->frame_left == 0 && c->rx_given == c->rx_framed &&
        atomic_load(&c->state) != WSC__CONN_CLOSED) {
        wsc__rx_fctx_put(c->ep, c->rx_fctx);
        c->rx_fctx = NULL;
        c->rx_given = c->rx_framed = 0;
    }
}

void wsc__conn_ws_readable(struct ws_conn *c)
{
    struct wsc__endpoint *ep = c->ep;

    if (c->rx_fctx == NULL && (c->rx_fctx = wsc__rx_fctx_get(ep)) == NULL) {
        wsc__conn_fail(c, WS_CAUSE_ERROR, WS_CLOSE_INTERNAL_ERROR, "out of memory");
        return;
    }
    /* Callbacks may close or release c; keep it alive until we return. */
    ws_conn_ref(c);
    while (still_reading(c)) {
        struct wslay_frame_iocb f;
        bool first_chunk = c->frame_left == 0;
        ssize_t r;

        ep->rx_conn = c; /* the context's recv callback reads from c */
        r = wslay_frame_recv(c->rx_fctx, &f);
        if (r == WSLAY_ERR_WANT_READ)
            break;
        if (r < 0) {
            fail_protocol(c, "malformed frame header");
            break;
        }
        if (first_chunk)
            c->rx_framed += header_size(&f);
        c->rx_framed += f.data_length;
        if (first_chunk && !frame_begin(c, &f))
            break;
        c->frame_left -= f.data_length;
        if (is_control(c->frame_opcode))
            control_chunk(c, f.data, f.data_length);
        else
            data_chunk(c, f.data, f.data_length, first_chunk);
    }
    rx_fctx_release_if_idle(c);
    ws_conn_unref(c);
}
