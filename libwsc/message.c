/*
 * message.c - from frames to messages (RFC 6455 sections 5 and 7).
 *
 * Frames are parsed in place in the bytes just read (frame.c), and checked
 * at their header, before any payload is buffered: opcode, reserved bits,
 * masking, control frame rules, fragmentation, and the message size limit.
 * UTF-8 is validated as bytes arrive (fail fast); control frames and the
 * close frame's code and reason are handled here.
 *
 * The common case, a whole unfragmented frame in the buffer, is unmasked in
 * place and goes to the data callback from there: no copy, no allocation.
 * A frame cut off by the end of the buffer is kept whole for the next read
 * (io.c) unless it is large; then its payload is streamed into the message
 * buffer as it arrives.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static uint8_t allowed_rsv(const struct ws_conn *c, uint8_t opcode)
{
    bool first_data_frame = opcode == WS_OP_TEXT || opcode == WS_OP_BINARY;
    return wsc__pmd_on(c) && first_data_frame ? 0x40 : 0;
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

/* Checks made at a frame's header, before its payload is here (so a bad
 * frame fails at once). Pure: it may run again on a header seen before.
 * False: connection failed. */
static bool frame_check(struct ws_conn *c, const struct wsc__frame_head *f)
{
    const struct ws_config *cfg = &c->ep->cfg;

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
    if (f->masked == c->is_client) {
        fail_protocol(c, c->is_client ? "server frame masked" : "client frame not masked");
        return false;
    }
    if (is_control(f->opcode)) {
        /* RFC 6455 5.5: at most 125 bytes, never fragmented. */
        if (f->payload_len > 125 || !f->fin) {
            fail_protocol(c, f->fin ? "control frame too long" : "fragmented control frame");
            return false;
        }
        return true;
    }
    if (f->opcode == WS_OP_CONTINUATION && c->msg_opcode == 0) {
        fail_protocol(c, "continuation without a message");
        return false;
    }
    if (f->opcode != WS_OP_CONTINUATION && c->msg_opcode != 0) {
        fail_protocol(c, "new message inside a fragmented message");
        return false;
    }
    if (f->opcode == WS_OP_CONTINUATION ? c->msg_compressed : (f->rsv & 0x40) != 0) {
        /* The inflated size is checked while inflating; here only bound
         * the compressed bytes (incompressible data grows slightly). */
        /* RSV1 passed: deflate is on, so c->ext exists. */
        uint64_t wire = (f->opcode == WS_OP_CONTINUATION ? c->ext->msg.wire_len : 0) +
                        f->payload_len;
        if (wire > cfg->max_message_size + cfg->max_message_size / 64 + 64) {
            wsc__conn_fail(c, WS_CAUSE_PROTOCOL, WS_CLOSE_MESSAGE_TOO_BIG,
                           "message too big");
            return false;
        }
        return true;
    }
    if (f->payload_len >
        cfg->max_message_size -
            (f->opcode == WS_OP_CONTINUATION && c->ext != NULL ? c->ext->msg.len : 0)) {
        wsc__conn_fail(c, WS_CAUSE_PROTOCOL, WS_CLOSE_MESSAGE_TOO_BIG, "message too big");
        return false;
    }
    return true;
}

/* A message's first frame: nothing of an earlier message carries over. */
static inline void message_begin(struct ws_conn *c, uint8_t opcode, bool compressed)
{
    c->msg_opcode = opcode;
    if (c->ext != NULL)
        c->ext->msg.len = c->ext->msg.wire_len = 0;
    c->utf8_state = WSC__UTF8_ACCEPT;
    c->msg_compressed = compressed;
}

/* A checked frame starts: take on its state. */
static void frame_begin(struct ws_conn *c, const struct wsc__frame_head *f)
{
    c->frame_opcode = f->opcode;
    c->frame_fin = f->fin;
    c->frame_left = f->payload_len;
    if (is_control(f->opcode))
        return;
    if (f->opcode != WS_OP_CONTINUATION)
        message_begin(c, f->opcode, (f->rsv & 0x40) != 0);
    if (c->msg_compressed)        /* deflate is on: c->ext exists */
        c->ext->msg.wire_len += f->payload_len;
}

static void deliver(struct ws_conn *c, uint8_t op, const uint8_t *data, size_t len)
{
    struct wsc__endpoint *ep = c->ep;

    c->msg_opcode = 0;
    /* Data after our close frame is read (to find the peer's close) but not
     * delivered: the application already said goodbye. */
    if (ep->on_data == NULL || c->close_sent)
        return;
    if (op != WS_OP_TEXT) {
        ep->on_data(c, (enum ws_opcode)op, data, len, ep->data_arg);
        return;
    }
    /* Validated on arrival: an echo of exactly this text is not checked
     * again. (Read passes do not nest, so there is no outer one to keep.) */
    wsc__valid_text = data;
    wsc__valid_text_len = len;
    ep->on_data(c, (enum ws_opcode)op, data, len, ep->data_arg);
    wsc__valid_text = NULL;
}

/* A whole uncompressed message in one piece: delivered, or the connection
 * failed if it is text and not valid UTF-8. ascii: the unmasking found
 * every byte below 0x80, so the text is valid without a look. */
static inline void deliver_whole(struct ws_conn *c, uint8_t op, const uint8_t *data,
                                 size_t len, bool ascii)
{
    if (op == WS_OP_TEXT && !ascii && !wsc__utf8_valid(data, len)) {
        wsc__conn_fail(c, WS_CAUSE_PROTOCOL, WS_CLOSE_INVALID_PAYLOAD, "invalid UTF-8");
        return;
    }
    deliver(c, op, data, len);
}

static bool msg_append(struct ws_conn *c, const uint8_t *data, size_t len)
{
    struct wsc__conn_ext *ext = wsc__conn_ext(c);
    struct wsc__msg_asm *m;

    if (ext == NULL)
        return false;
    m = &ext->msg;
    if (m->len + len > m->cap) {
        /* Grow by at least double, looking ahead into the frame by at most
         * what has arrived (64 KiB at first): a header announcing 1 GiB
         * reserves memory in step with the bytes really sent, not 1 GiB
         * per connection up front. */
        size_t need = m->len + len;
        size_t ahead = need > WSC__GATHER_MAX ? need : WSC__GATHER_MAX;
        size_t want = need + ((size_t)c->frame_left < ahead ? (size_t)c->frame_left : ahead);
        size_t cap = m->cap * 2 > want ? m->cap * 2 : want;
        uint8_t *p;
        if (cap > c->ep->cfg.max_message_size)
            cap = c->ep->cfg.max_message_size;
        p = realloc(m->buf, cap);
        if (p == NULL)
            return false;
        m->buf = p;
        m->cap = cap;
    }
    memcpy(m->buf + m->len, data, len);
    m->len += len;
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

    if (c->ext->inflater == NULL && c->ext->params.rx_no_context_takeover && whole_now) {
        if (ep->shared_inflater == NULL)
            ep->shared_inflater = wsc__inflater_new(&ep->zmem);
        else
            wsc__inflater_reset(ep->shared_inflater);
        return ep->shared_inflater;
    }
    if (c->ext->inflater == NULL)
        c->ext->inflater = wsc__inflater_new(&ep->zmem);
    return c->ext->inflater;
}

static void inflater_done(struct ws_conn *c)
{
    if (c->ext->params.rx_no_context_takeover && c->ext->inflater != NULL) {
        wsc__inflater_free(c->ext->inflater);
        c->ext->inflater = NULL;
    }
}

static void msg_release(struct ws_conn *c)
{
    /* An idle connection should hold no payload memory. */
    wsc__conn_ext_msg_done(c);
}

static void compressed_chunk(struct ws_conn *c, const uint8_t *data, size_t len,
                             bool first_chunk)
{
    bool last = c->frame_left == 0 && c->frame_fin;
    bool whole_now = first_chunk && last && c->frame_opcode != WS_OP_CONTINUATION;
    struct z_stream_s *zs = pick_inflater(c, whole_now);
    struct wsc__msg_asm *m = &c->ext->msg; /* deflate is on: c->ext exists */
    size_t before = m->len;
    int rc;

    if (zs == NULL) {
        wsc__conn_fail(c, WS_CAUSE_ERROR, WS_CLOSE_INTERNAL_ERROR, "out of memory");
        return;
    }
    rc = wsc__inflate(zs, data, len, last, &m->buf, &m->cap, &m->len,
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
    if (c->msg_opcode == WS_OP_TEXT && m->len > before) {
        c->utf8_state = wsc__utf8_feed(c->utf8_state, m->buf + before, m->len - before);
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
    deliver(c, c->msg_opcode, m->buf, m->len);
    msg_release(c);
}

static void data_chunk(struct ws_conn *c, const uint8_t *data, size_t len,
                       bool first_chunk, bool ascii)
{
    bool frame_done = c->frame_left == 0;
    bool text = c->msg_opcode == WS_OP_TEXT;

    if (c->msg_compressed) {
        compressed_chunk(c, data, len, first_chunk);
        return;
    }
    /* Fast path: a whole single-frame message in one chunk. */
    if (first_chunk && frame_done && c->frame_fin && (c->ext == NULL || c->ext->msg.len == 0) &&
        c->frame_opcode != WS_OP_CONTINUATION) {
        deliver_whole(c, c->msg_opcode, data, len, ascii);
        return;
    }
    /* ASCII after a whole character leaves the state where it was. (ascii
     * describes these bytes as they came: compressed data never gets here,
     * and it is false for a client's unmasked input.) */
    if (text && !(ascii && c->utf8_state == WSC__UTF8_ACCEPT)) {
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
    if (c->ext != NULL)
        deliver(c, c->msg_opcode, c->ext->msg.buf, c->ext->msg.len);
    else                          /* every fragment was empty */
        deliver(c, c->msg_opcode, NULL, 0);
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

static bool still_reading(struct ws_conn *c)
{
    int st = atomic_load(&c->state);
    return st == WSC__CONN_OPEN || st == WSC__CONN_CLOSING;
}

/* Text and compressed data are checked as they arrive (a bad byte fails
 * the connection at once, not when the frame completes), so a partial
 * frame of theirs is streamed however small it is. */
static bool must_stream(const struct ws_conn *c, const struct wsc__frame_head *f)
{
    if (f->opcode == WS_OP_CONTINUATION)
        return c->msg_opcode == WS_OP_TEXT || c->msg_compressed;
    return f->opcode == WS_OP_TEXT || (f->rsv & 0x40) != 0;
}

/* The payload of the current frame: n bytes at p, already unmasked (ascii:
 * and every one of them below 0x80). */
static void frame_payload(struct ws_conn *c, const uint8_t *p, size_t n, bool first_chunk,
                          bool ascii)
{
    c->frame_left -= n;
    if (is_control(c->frame_opcode))
        control_frame(c, p, n); /* always whole: control frames are gathered */
    else
        data_chunk(c, p, n, first_chunk, ascii);
}

/*
 * The common case in one test: a whole client frame of at most 125 bytes,
 * text or binary, FIN, no RSV bit, masked, with no message in progress and
 * not over max_message_size. It leaves the state the general path would
 * (frame_check, frame_begin, then data_chunk's whole-message path) and
 * delivers. False: not such a frame, take the general path.
 */
static bool small_frame(struct ws_conn *c, uint8_t **pp, size_t avail)
{
    uint8_t *p = *pp, op = p[0] & 0x0f;
    size_t n = p[1] & 0x7f;

    /* The cheap tests first: max_message_size is rarely below 125. */
    if ((p[0] != 0x81 && p[0] != 0x82) || (p[1] & 0x80) == 0 || n > 125 || 6 + n > avail ||
        c->msg_opcode != 0 || c->is_client || n > c->ep->cfg.max_message_size)
        return false;
    bool ascii = false;
    if (op == WS_OP_TEXT)
        ascii = wsc__mask_high(p + 6, n, p + 2, 0) == 0;
    else
        wsc__mask(p + 6, n, p + 2, 0); /* binary: no ORs to pay for */
    *pp = p + 6 + n;
    c->frame_opcode = op;
    c->frame_fin = true;
    message_begin(c, op, false);
    deliver_whole(c, op, p + 6, n, ascii);
    return true;
}

size_t wsc__conn_ws_input(struct ws_conn *c, uint8_t *buf, size_t len)
{
    uint8_t *p = buf, *end = buf + len;

    /* Over the output cap, the rest waits (io.c stops reading until the
     * backlog is down to half): a ping flood cannot grow our output. */
    while (p < end && still_reading(c) && !wsc__io_input_blocked(c)) {
        struct wsc__frame_head f;
        size_t avail = (size_t)(end - p);
        int hlen;

        if (c->frame_left == 0 && avail >= 6 && small_frame(c, &p, avail))
            continue;
        if (c->frame_left > 0) { /* streaming a large frame's payload */
            size_t n = c->frame_left < avail ? (size_t)c->frame_left : avail;
            bool ascii = !c->is_client && wsc__mask_high(p, n, c->rx_mask, c->rx_mask_off) == 0;
            c->rx_mask_off = (uint8_t)((c->rx_mask_off + n) & 3);
            p += n;
            frame_payload(c, p - n, n, false, ascii);
            continue;
        }
        hlen = wsc__frame_parse(p, avail, &f);
        if (hlen == 0)
            break; /* header incomplete */
        if (hlen < 0) {
            fail_protocol(c, "malformed frame header");
            break;
        }
        if (!frame_check(c, &f))
            break;
        if (f.payload_len <= avail - (size_t)hlen) { /* the whole frame is here */
            uint8_t *payload = p + hlen;
            size_t n = (size_t)f.payload_len;
            bool ascii = f.masked && wsc__mask_high(payload, n, f.mask, 0) == 0;
            p = payload + n;
            frame_begin(c, &f);
            frame_payload(c, payload, n, true, ascii);
            continue;
        }
        if (is_control(f.opcode) ||
            (f.payload_len + (size_t)hlen <= WSC__GATHER_MAX && !must_stream(c, &f)))
            break; /* small: wait for all of it */
        /* Large: take its header now and stream the payload. */
        frame_begin(c, &f);
        memcpy(c->rx_mask, f.mask, 4);
        c->rx_mask_off = 0;
        p += hlen;
    }
    return (size_t)(p - buf);
}
