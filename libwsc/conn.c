/*
 * conn.c - one connection's life: creation, timers, closing, release, and
 * the public ws_conn_* calls (which may come from any thread).
 *
 * A connection belongs to one loop. Only that loop's thread touches its
 * socket, timer and receive state. The loop holds one reference from
 * accept until release; messages queued by other threads and applications
 * (ws_conn_ref) hold more. Release frees every I/O resource at once; the
 * struct itself goes when the last reference does.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <event2/event.h>
#include <netinet/tcp.h>
#include <openssl/rand.h>

#include "internal.h"

/* Idle memory per upgraded connection (issue 14): every idle connection
 * pays for the whole struct, so it must stay small. Budget on LP64: 216
 * bytes, a 224-byte malloc chunk (8 more for the read event's pointer
 * without epoll). Rarely used state goes behind pointers allocated on
 * demand instead. */
#if UINTPTR_MAX == UINT64_MAX
_Static_assert(sizeof(struct ws_conn) <= (WSC__USE_EPOLL ? 216 : 224),
               "struct ws_conn outgrew its idle-memory budget (issue 14)");
#endif

/* ---- release ------------------------------------------------------------- */

static void conn_release(struct ws_conn *c)
{
    struct wsc__endpoint *ep = c->ep;

    if (atomic_load(&c->state) == WSC__CONN_CLOSED)
        return;
    atomic_store(&c->state, WSC__CONN_CLOSED);
    wsc__timers_unreserve(c);
    wsc__io_release(c); /* closes the socket */
    wsc__conn_ext_free(c);
    if (c->opened) {              /* the phase union is the open side's */
        free(c->close_reason);
        c->close_reason = NULL;
        c->close_reason_len = 0;
        if (c->subs != NULL)      /* a subscription ends with its connection */
            wsc__topic_drop_conn(c);
        wsc__loop_remove_id(c->loop, c);
    } else {                      /* the phase union is the HTTP phase's */
        wsc__http_body_free(c);
        if (c->upgrade != NULL)   /* the hook's decision can no longer apply */
            wsc__upgrade_conn_gone(c);
    }
    wsc__endpoint_unlink(ep, c);
    ws_conn_unref(c); /* the loop's reference */
}

/* Drop now. The close callback (if it opened) gets the code we sent when
 * our close frame went unanswered, else 1006: no close frame at all. */
static void conn_drop(struct ws_conn *c, enum ws_close_cause cause)
{
    if (c->close_sent)
        wsc__conn_notify_close(c, cause, c->close_code,
                               c->close_reason != NULL ? c->close_reason : "",
                               c->close_reason_len, false);
    else
        wsc__conn_notify_close(c, cause, WS_CLOSE_ABNORMAL, "", 0, false);
    conn_release(c);
}

void wsc__conn_abort(struct ws_conn *c)
{
    c->close_notified = true; /* teardown or abandoned attempt: no callbacks */
    conn_release(c);
}

void wsc__conn_notify_close(struct ws_conn *c, enum ws_close_cause cause, int code,
                            const char *reason, size_t reason_len, bool remote)
{
    struct wsc__endpoint *ep = c->ep;
    struct ws_close_info info;
    char buf[124];

    if (!c->opened || c->close_notified)
        return;
    c->close_notified = true;
    /* What a client's reconnect callback is told about this end. */
    c->fail_error = cause == WS_CAUSE_CLEAN ? 0
                    : cause == WS_CAUSE_TIMEOUT ? WS_ETIMEDOUT
                    : cause == WS_CAUSE_DISCONNECT ? WS_ECONNECT : WS_ECLOSED;
    ep->num_open--;
    if (reason_len > sizeof(buf) - 1)
        reason_len = sizeof(buf) - 1;
    memcpy(buf, reason, reason_len);
    buf[reason_len] = '\0';
    info.code = code;
    info.reason = buf;
    info.reason_len = reason_len;
    info.cause = cause;
    info.remote = remote ? 1 : 0;
    if (ep->on_close != NULL)
        ep->on_close(c, &info, ep->close_arg);
}

/* ---- flushing and lingering ---------------------------------------------- */

/* The application's pause ends with the connection: the peer's close frame
 * and FIN must still be read (unread input would turn our close into a
 * RST). Over the output cap, reading stays off until the backlog drains. */
static void conn_unpause_for_close(struct ws_conn *c)
{
    if (c->app_paused)
        wsc__io_set_app_paused(c, false);
}

static void conn_start_linger(struct ws_conn *c)
{
    c->lingering = true;
    wsc__io_shutdown_write(c);
    wsc__conn_arm_timer(c, WSC__LINGER_MS);
    conn_unpause_for_close(c);
}

/* How long a closing connection may take to read what we still owe it. */
static unsigned conn_drain_ms(const struct ws_conn *c)
{
    unsigned ms = c->ep->cfg.close_timeout_ms;

    return ms > WSC__LINGER_MS ? ms : WSC__LINGER_MS;
}

/* A keep-alive connection answered its request. The idle wait for the next
 * one (keepalive_timeout) starts once the response has left our buffers,
 * as nginx's does; until then the peer gets conn_drain_ms from each write
 * it takes, like a closing connection, so a large response read slowly is
 * not cut off mid-body. */
void wsc__conn_keepalive_wait(struct ws_conn *c)
{
    c->keepalive_idle = true;
    if (wsc__io_pending(c, NULL) > 0)
        wsc__conn_arm_timer(c, conn_drain_ms(c));
    else
        wsc__conn_set_timeout(c, c->ep->cfg.keepalive_timeout_ms);
}

void wsc__conn_flush_and_close(struct ws_conn *c)
{
    int st = atomic_load(&c->state);

    if (st == WSC__CONN_FLUSHING || st == WSC__CONN_CLOSED)
        return;
    atomic_store(&c->state, WSC__CONN_FLUSHING);
    wsc__io_flush(c); /* replies gathered in the cork go first */
    if (wsc__io_pending(c, NULL) == 0) {
        conn_start_linger(c);
        return;
    }
    /* wsc__conn_io_drained() lingers once the backlog is out. A peer that
     * reads slowly gets close_timeout per step of progress to take its
     * response; one that stops reading is dropped after that long. */
    wsc__conn_arm_timer(c, conn_drain_ms(c));
}

void wsc__conn_fail(struct ws_conn *c, enum ws_close_cause cause, int code,
                    const char *reason)
{
    int st = atomic_load(&c->state);
    size_t rlen = strlen(reason);

    if (st == WSC__CONN_OPEN && !c->close_sent) {
        uint8_t payload[125];
        size_t n = wsc__frame_close_payload(payload, code, reason, rlen);
        wsc__conn_write_frame(c, false, WS_OP_CLOSE, payload, n);
        c->close_sent = true;
    }
    wsc__conn_notify_close(c, cause, code, reason, rlen, false);
    wsc__conn_flush_and_close(c);
}

void wsc__conn_close_received(struct ws_conn *c, int code, const char *reason,
                              size_t reason_len)
{
    if (!c->close_sent) {
        /* Echo the peer's code (RFC 6455 5.5.1); none -> empty close. */
        uint8_t payload[125];
        size_t n = wsc__frame_close_payload(payload, code == WS_CLOSE_NO_STATUS ? 0 : code,
                                            NULL, 0);
        wsc__conn_write_frame(c, false, WS_OP_CLOSE, payload, n);
        c->close_sent = true;
        wsc__conn_notify_close(c, WS_CAUSE_CLEAN, code, reason, reason_len, true);
    } else {
        wsc__conn_notify_close(c, WS_CAUSE_CLEAN, code, reason, reason_len, false);
    }
    /* The server closes TCP first (RFC 6455 7.1.1). */
    wsc__conn_flush_and_close(c);
}

/* ---- socket events (io.c calls these) ------------------------------------- */

size_t wsc__conn_input(struct ws_conn *c, uint8_t *buf, size_t len)
{
    size_t used = 0;

    while (used < len) {
        int st = atomic_load(&c->state);
        if (st == WSC__CONN_HTTP)
            used += c->ep->is_client ? wsc__client_http_input(c, buf + used, len - used)
                                     : wsc__conn_http_input(c, buf + used, len - used);
        else if (st == WSC__CONN_OPEN || st == WSC__CONN_CLOSING)
            used += wsc__conn_ws_input(c, buf + used, len - used);
        else
            return len; /* flushing or lingering: the rest no longer matters */
        if (atomic_load(&c->state) == st)
            break; /* the parser wants more bytes */
    }
    return used;
}

void wsc__conn_io_closed(struct ws_conn *c)
{
    if (atomic_load(&c->state) == WSC__CONN_HTTP && c->ep->is_client)
        c->fail_error = c->tls_failed ? WS_ETLS : c->connected ? WS_EHANDSHAKE : WS_ECONNECT;
    conn_drop(c, WS_CAUSE_DISCONNECT);
}

/* A drain invites more sends, so it waits for the loop's output as well as
 * the connection's: a send refused for the budget must not be called back
 * into a budget still over half full. Then the budget's own pass
 * (wsc__conn_budget_drained) calls it once the loop is down to half. */
static bool loop_output_low(struct wsc__loop *loop)
{
    if (loop->budget == 0 ||
        atomic_load_explicit(&loop->buffered, memory_order_relaxed) <= loop->budget / 2)
        return true;
    atomic_store(&loop->budget_waiting, true);
    return false;
}

/* Output fell to len bytes: linger when flushing is done, and tell a
 * waiting sender once it is down to the low watermark (half the cap). */
void wsc__conn_io_drained(struct ws_conn *c, size_t len)
{
    struct wsc__endpoint *ep = c->ep;
    int st = atomic_load(&c->state);

    if (st == WSC__CONN_FLUSHING) {
        if (len == 0 && !c->lingering)
            conn_start_linger(c);
        else if (!c->lingering) /* progress: the peer is reading */
            wsc__conn_arm_timer(c, conn_drain_ms(c));
        return;
    }
    if (st == WSC__CONN_HTTP && c->keepalive_idle) {
        wsc__conn_keepalive_wait(c); /* progress, or the response is out */
        return;
    }
    if (st == WSC__CONN_OPEN && len <= ep->cfg.max_buffered / 2 &&
        atomic_load(&c->want_drain) && loop_output_low(c->loop) &&
        atomic_exchange(&c->want_drain, false) && ep->on_drain != NULL)
        ep->on_drain(c, ep->drain_arg);
}

void wsc__conn_budget_drained(struct wsc__endpoint *ep)
{
    struct ws_conn **wait = NULL, *c;
    size_t n = 0, cap = 0;

    if (atomic_load_explicit(&ep->loop->buffered, memory_order_relaxed) > ep->loop->budget / 2)
        return;
    atomic_store(&ep->loop->budget_waiting, false);
    /* Collect first: a drain callback may close any connection. */
    for (c = ep->conns; c != NULL; c = c->next) {
        if (!atomic_load(&c->want_drain) || atomic_load(&c->state) != WSC__CONN_OPEN ||
            wsc__io_pending(c, NULL) > ep->cfg.max_buffered / 2)
            continue;
        if (n == cap) {
            struct ws_conn **grown = realloc(wait, (cap = cap ? cap * 2 : 16) * sizeof(*wait));
            if (grown == NULL)
                break;
            wait = grown;
        }
        ws_conn_ref(c);
        wait[n++] = c;
    }
    for (size_t i = 0; i < n; i++) {
        c = wait[i];
        if (atomic_load(&c->state) == WSC__CONN_OPEN && atomic_exchange(&c->want_drain, false) &&
            ep->on_drain != NULL)
            ep->on_drain(c, ep->drain_arg);
        ws_conn_unref(c);
    }
    free(wait);
}

/* A client's TCP connection is up: send the upgrade request. */
void wsc__conn_io_connected(struct ws_conn *c, int err)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    int one = 1;

    if (err != 0) {
        c->fail_error = WS_ECONNECT;
        conn_drop(c, WS_CAUSE_DISCONNECT);
        return;
    }
    c->connected = true;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (getpeername(c->fd, (struct sockaddr *)&ss, &len) == 0)
        wsc__addr_set(&c->remote, (struct sockaddr *)&ss);
    wsc__conn_set_timeout(c, c->ep->cfg.handshake_timeout_ms);
    wsc__client_connected(c);
}

/* One deadline per connection; what it means depends on the state. */
void wsc__conn_on_timer(struct ws_conn *c)
{
    const struct ws_config *cfg = &c->ep->cfg;

    if (c->write_failed) { /* the socket refused our output (io.c) */
        wsc__conn_io_closed(c);
        return;
    }
    if (c->slow) {
        /* Its output backlog goes with it: waiting for it to drain is
         * exactly what a slow consumer cannot be granted. */
        static const char reason[] = "slow consumer";
        wsc__conn_notify_close(c, WS_CAUSE_SLOW, WS_CLOSE_POLICY_VIOLATION, reason,
                               sizeof(reason) - 1, false);
        conn_release(c);
        return;
    }
    switch (atomic_load(&c->state)) {
    case WSC__CONN_HTTP:       /* connect or handshake timeout */
        if (c->ep->is_client)
            c->fail_error = WS_ETIMEDOUT;
        conn_release(c);
        break;
    case WSC__CONN_FLUSHING:   /* peer never read or never closed */
        conn_release(c);
        break;
    case WSC__CONN_CLOSING:    /* our close frame was not answered */
        conn_drop(c, c->shutting_down ? WS_CAUSE_SHUTDOWN : WS_CAUSE_TIMEOUT);
        break;
    case WSC__CONN_OPEN:
        /* Any bytes since the last tick (read, or taken by the peer) prove
         * it alive: no ping. While the application holds reading paused
         * a pong could not be seen, so nothing is concluded. */
        if (c->got_traffic || c->app_paused) {
            c->got_traffic = false;
            c->awaiting_pong = false;
            wsc__conn_arm_timer(c, cfg->ping_interval_ms);
        } else if (c->awaiting_pong) {
            conn_drop(c, WS_CAUSE_TIMEOUT);
        } else {
            wsc__conn_send_now(c, WS_OP_PING, NULL, 0);
            c->awaiting_pong = cfg->pong_timeout_ms > 0;
            wsc__conn_arm_timer(c, c->awaiting_pong ? cfg->pong_timeout_ms
                                               : cfg->ping_interval_ms);
        }
        break;
    default:
        break;
    }
}

/* ---- creation and opening ------------------------------------------------ */

/* On failure fd stays the caller's: an accepting server answers it first. */
struct ws_conn *wsc__conn_new(struct wsc__endpoint *ep, int fd, const struct sockaddr *sa)
{
    struct ws_conn *c = calloc(1, sizeof(*c));

    if (c == NULL)
        return NULL;
    atomic_init(&c->refs, 1);
    atomic_init(&c->state, WSC__CONN_HTTP);
    c->id = wsc__next_conn_id(ep->loop->index);
    c->ep = ep;
    c->loop = ep->loop;
    c->is_client = ep->is_client;
    c->fd = -1;
    wsc__addr_set(&c->remote, sa);
    if (wsc__timers_reserve(c) != 0) {
        free(c);
        return NULL;
    }
    if (fd >= 0 && wsc__io_start(c, fd) != 0) {
        wsc__watch_release(c); /* an event made before event_add failed */
        wsc__timers_unreserve(c);
        free(c);
        return NULL;
    }
    wsc__loop_ref(c->loop);
    if (ep->is_client)
        wsc__endpoint_link(ep, c);
    else
        wsc__endpoint_add_pending(ep, c);
    /* A client first has to connect; a server's peer has to send its head. */
    if (ep->is_client ? ep->cfg.connect_timeout_ms > 0 : ep->cfg.handshake_timeout_ms > 0)
        wsc__conn_arm_timer(c, ep->is_client ? ep->cfg.connect_timeout_ms
                                        : ep->cfg.handshake_timeout_ms);
    return c;
}

int wsc__conn_write_frame(struct ws_conn *c, bool rsv1, int opcode, const void *data,
                          size_t len)
{
    uint8_t hdr[WSC__FRAME_HEADER_MAX], mask[4], small[256], *frame;
    size_t hlen;
    int rc;

    if (!c->ep->is_client) { /* servers never mask: header and payload as they are */
        /* Small frames are built right in the cork: one copy, no call. */
        if (len <= WSC__SMALL_FRAME && wsc__io_cork_frame(c, rsv1, opcode, data, len))
            return 0;
        hlen = wsc__frame_header(hdr, rsv1, opcode, len, NULL);
        return wsc__io_send(c, hdr, hlen, data, len);
    }
    /* RFC 6455 10.3: a client's masking key must be unpredictable. */
    if (RAND_bytes(mask, sizeof(mask)) != 1)
        return WS_ENOMEM;
    hlen = wsc__frame_header(hdr, rsv1, opcode, len, mask);
    frame = hlen + len <= sizeof(small) ? small : malloc(hlen + len);
    if (frame == NULL)
        return WS_ENOMEM;
    memcpy(frame, hdr, hlen);
    if (len > 0) {
        memcpy(frame + hlen, data, len);
        wsc__mask(frame + hlen, len, mask, 0);
    }
    rc = wsc__io_send(c, frame, hlen + len, NULL, 0);
    if (frame != small)
        free(frame);
    return rc;
}

int wsc__conn_open(struct ws_conn *c)
{
    struct wsc__endpoint *ep = c->ep;

    /* The HTTP phase's state ends (an upgrade has no body, its decision is
     * detached): its bytes become the message's. */
    wsc__http_body_free(c);
    c->http_scanned = 0;
    c->upgrade = NULL;
    c->id_next = NULL;
    c->subs = NULL;
    c->frame_left = 0;
    c->close_reason = NULL;
    c->utf8_state = WSC__UTF8_ACCEPT;
    memset(c->rx_mask, 0, sizeof(c->rx_mask));
    c->frame_opcode = c->rx_mask_off = c->msg_opcode = c->close_reason_len = 0;
    c->close_code = 0;
    atomic_store(&c->state, WSC__CONN_OPEN);
    c->opened = true;
    ep->num_open++;
    wsc__endpoint_promote(ep, c);
    wsc__loop_add_id(c->loop, c);
    wsc__conn_set_timeout(c, ep->cfg.ping_interval_ms);
    if (ep->on_open != NULL)
        ep->on_open(c, ep->open_arg);
    return 0;
}

/* ---- loop-thread sending ------------------------------------------------- */

/* The deflater for this connection: the server's shared one when nothing
 * carries over between messages and the window matches, else its own. */
static struct z_stream_s *conn_deflater(struct ws_conn *c)
{
    struct wsc__endpoint *ep = c->ep;
    bool shared = c->ext->params.tx_no_context_takeover &&
                  c->ext->params.tx_window_bits == ep->cfg.deflate_window_bits;
    struct z_stream_s **slot = shared ? &ep->shared_deflater : &c->ext->deflater;

    if (*slot == NULL)
        *slot = wsc__deflater_new(&ep->zmem, c->ext->params.tx_window_bits,
                                  (int)ep->cfg.deflate_mem_level);
    return *slot;
}

static int conn_send_compressed(struct ws_conn *c, int opcode, const void *data, size_t len)
{
    struct wsc__endpoint *ep = c->ep;
    struct z_stream_s *zs = conn_deflater(c);
    size_t out_len = 0;
    int rc;

    if (zs == NULL)
        return WS_ENOMEM;
    rc = wsc__deflate(zs, data, len, &ep->zbuf, &ep->zbuf_cap, &out_len,
                      c->ext->params.tx_no_context_takeover);
    if (rc != 0)
        return rc;
    /* Without context takeover no state ties us to the compressed form:
     * send whichever is smaller. With it, the peer's window must see it. */
    if (c->ext->params.tx_no_context_takeover && out_len >= len)
        rc = wsc__conn_write_frame(c, false, opcode, data, len);
    else
        rc = wsc__conn_write_frame(c, true, opcode, ep->zbuf, out_len);
    if (ep->zbuf_cap > WSC__ZBUF_KEEP) { /* do not pin a huge scratch buffer */
        free(ep->zbuf);
        ep->zbuf = NULL;
        ep->zbuf_cap = 0;
    }
    return rc;
}

int wsc__conn_send_now(struct ws_conn *c, int opcode, const void *data, size_t len)
{
    int rc;

    /* close_notified: a send from the close callback of a connection that
     * is being dropped (still OPEN, but its socket is about to go). */
    if (atomic_load(&c->state) != WSC__CONN_OPEN || c->close_sent || c->close_notified)
        return WS_ECLOSED;
    if (wsc__pmd_on(c) && c->ext->params.tx_window_bits >= 9 &&
        (opcode == WS_OP_TEXT || opcode == WS_OP_BINARY) &&
        len >= c->ep->cfg.deflate_threshold)
        rc = conn_send_compressed(c, opcode, data, len);
    else
        rc = wsc__conn_write_frame(c, false, opcode, data, len);
    return rc;
}

/* ---- admission (backpressure) -------------------------------------------- */

/* What a message of len bytes occupies in the output: its frame header
 * counts too, or many small messages would overrun the cap by their
 * headers (up to 14 bytes each). */
size_t wsc__conn_reservation(const struct ws_conn *c, size_t len)
{
    return len + wsc__frame_header_len(len, c->is_client);
}

static struct wsc__xmsg *xmsg_new(struct ws_conn *c, enum wsc__xmsg_kind kind, int opcode,
                                  int code, const void *data, size_t len)
{
    struct wsc__xmsg *m = malloc(sizeof(*m) + len);

    if (m == NULL)
        return NULL;
    m->ep = NULL;
    m->kind = (uint8_t)kind;
    m->opcode = (uint8_t)opcode;
    m->code = code;
    m->len = len;
    if (len > 0)
        memcpy(m->data, data, len);
    ws_conn_ref(c);
    m->conn = c;
    return m;
}

/* Apply the slow-consumer policy to a send that does not fit. */
static int conn_over_cap(struct ws_conn *c, bool owner)
{
    if (c->loop->close_slow) {
        struct wsc__xmsg *m;
        if (owner)
            wsc__conn_close_slow(c);
        else if ((m = xmsg_new(c, WSC__X_SLOW, 0, 0, NULL, 0)) != NULL)
            wsc__loop_post(c->loop, m);
        return WS_ECLOSED;
    }
    atomic_store(&c->want_drain, true);
    return WS_EAGAIN;
}

/* The server-wide budget (max_buffered_total, this loop's share) is
 * spent. On the loop thread with close_slow_consumers the largest backlog
 * on the loop goes first; otherwise the send is refused and a drain
 * follows once the loop's output is down to half its share. From another
 * thread the first refusal of a wait also asks the loop to check at once,
 * in case its output fell while this thread read a stale sum. */
static int conn_over_budget(struct ws_conn *c, bool owner)
{
    /* want_drain before the flag: a loop clearing the flag scans after. */
    atomic_store(&c->want_drain, true);
    if (!owner) {
        struct wsc__xmsg *m;
        if (!atomic_exchange(&c->loop->budget_waiting, true) &&
            (m = xmsg_new(c, WSC__X_BUDGET, 0, 0, NULL, 0)) != NULL)
            wsc__loop_post(c->loop, m);
        return WS_EAGAIN;
    }
    if (c->loop->close_slow) {
        struct ws_conn *big = NULL, *it;
        size_t most = 0;
        for (it = c->ep->conns; it != NULL; it = it->next) {
            size_t n = wsc__io_pending(it, NULL);
            if (n > most && atomic_load(&it->state) == WSC__CONN_OPEN && !it->slow) {
                most = n;
                big = it;
            }
        }
        if (big != NULL)
            wsc__conn_close_slow(big);
        if (big == c)
            return WS_ECLOSED;
    }
    atomic_store(&c->loop->budget_waiting, true);
    return WS_EAGAIN;
}

/*
 * May a message of len bytes be queued? On the loop thread the count is
 * exact (cork and backlog, plus what other threads reserved). Other
 * threads reserve their bytes with a compare-and-swap on xqueued against
 * the count the loop last published, so concurrent senders cannot
 * together pass the cap; the loop releases a reservation once the bytes
 * are queued and counted. On success with owner false, need bytes are
 * reserved.
 */
static int conn_admit(struct ws_conn *c, size_t len, bool owner)
{
    struct wsc__loop *loop = c->loop;
    size_t cap = loop->max_buffered, need = wsc__conn_reservation(c, len);

    if (need > cap) /* could never fit, even into an empty output */
        return WS_ETOOBIG;
    if (owner) {
        size_t corked, queued = atomic_load_explicit(&c->xqueued, memory_order_relaxed) +
                                wsc__io_pending(c, &corked);
        switch (wsc__loop_admit(loop, queued, corked, need)) {
        case WSC__ADMITTED: return 0;
        case WSC__OVER_CAP: return conn_over_cap(c, true);
        case WSC__OVER_BUDGET: break;
        }
        return conn_over_budget(c, true);
    }
    size_t x = atomic_load_explicit(&c->xqueued, memory_order_relaxed);
    for (;;) {
        size_t out = atomic_load_explicit(&c->outbuf, memory_order_relaxed);
        if (out + x + need > cap)
            return conn_over_cap(c, false);
        if (loop->budget > 0 &&
            atomic_load_explicit(&loop->buffered, memory_order_relaxed) + x + need >
                loop->budget) /* its own reservations count too */
            return conn_over_budget(c, false);
        if (atomic_compare_exchange_weak_explicit(&c->xqueued, &x, x + need,
                                                  memory_order_relaxed, memory_order_relaxed))
            return 0;
    }
}

int wsc__conn_admit(struct ws_conn *c, size_t len)
{
    return conn_admit(c, len, wsc__loop_is_owner(c->loop));
}

void wsc__conn_close_slow(struct ws_conn *c)
{
    if (atomic_load(&c->state) != WSC__CONN_OPEN)
        return;
    c->slow = true;
    atomic_store(&c->state, WSC__CONN_CLOSING); /* no more sends */
    wsc__conn_arm_timer(c, 0);
}

int wsc__conn_close_now(struct ws_conn *c, int code, const char *reason, size_t len)
{
    uint8_t payload[125];
    size_t n;

    if (atomic_load(&c->state) != WSC__CONN_OPEN || c->close_sent || c->close_notified)
        return WS_ECLOSED;
    n = wsc__frame_close_payload(payload, code, reason, len);
    wsc__conn_write_frame(c, false, WS_OP_CLOSE, payload, n);
    c->close_sent = true;
    c->close_code = code;
    free(c->close_reason); /* kept to report it if the peer never answers */
    c->close_reason = len > 0 ? malloc(len) : NULL;
    c->close_reason_len = c->close_reason != NULL ? (uint8_t)len : 0;
    if (c->close_reason != NULL)
        memcpy(c->close_reason, reason, len);
    atomic_store(&c->state, WSC__CONN_CLOSING);
    wsc__conn_set_timeout(c, c->ep->cfg.close_timeout_ms);
    conn_unpause_for_close(c);
    return 0;
}

void wsc__conn_shutdown(struct ws_conn *c)
{
    static const char reason[] = "server shutting down";

    switch (atomic_load(&c->state)) {
    case WSC__CONN_HTTP:
        conn_release(c);
        break;
    case WSC__CONN_OPEN:
        c->shutting_down = true;
        wsc__conn_close_now(c, WS_CLOSE_GOING_AWAY, reason, sizeof(reason) - 1);
        /* Unbounded close timeout would make stop unbounded too. */
        if (c->ep->cfg.close_timeout_ms == 0)
            wsc__conn_arm_timer(c, WSC__LINGER_MS);
        break;
    case WSC__CONN_CLOSING:
        c->shutting_down = true;
        break;
    default:
        break;
    }
}

/* ---- public API (any thread unless noted) ---------------------------------- */

/* On the loop thread act now; elsewhere queue for the loop. Only the
 * conn's state and its loop object are touched before that decision, so
 * a referenced connection whose server is gone is safe to call. */
static int conn_dispatch(struct ws_conn *c, enum wsc__xmsg_kind kind, int opcode,
                         int code, const void *data, size_t len)
{
    struct wsc__xmsg *m;
    bool owner;
    int rc;

    if (atomic_load(&c->state) != WSC__CONN_OPEN)
        return WS_ECLOSED;
    owner = wsc__loop_is_owner(c->loop);
    if (owner && c->close_notified)
        return WS_ECLOSED; /* called from its close callback */
    if (kind == WSC__X_SEND && (rc = conn_admit(c, len, owner)) != 0)
        return rc;
    if (owner) {
        if (kind == WSC__X_CLOSE)
            return wsc__conn_close_now(c, code, data, len);
        return wsc__conn_send_now(c, opcode, data, len);
    }
    m = xmsg_new(c, kind, opcode, code, data, len);
    if (m == NULL || (rc = wsc__loop_post(c->loop, m)) != 0) {
        /* Admitted (reserved) but never queued: give the bytes back. */
        if (kind == WSC__X_SEND)
            atomic_fetch_sub_explicit(&c->xqueued, wsc__conn_reservation(c, len),
                                      memory_order_relaxed);
        return m == NULL ? WS_ENOMEM : rc;
    }
    return 0;
}

int ws_conn_send(struct ws_conn *conn, enum ws_opcode op, const void *data, size_t len)
{
    if (conn == NULL || (op != WS_OP_TEXT && op != WS_OP_BINARY) ||
        (data == NULL && len > 0))
        return WS_EINVAL;
    /* Text must be UTF-8 on the wire, or a strict peer fails us with 1007. */
    if (op == WS_OP_TEXT && !wsc__utf8_check(data, len))
        return WS_EUTF8;
    if (wsc__io_send_short(conn, op, data, len))
        return 0;
    return conn_dispatch(conn, WSC__X_SEND, op, 0, data, len);
}

int ws_conn_ping(struct ws_conn *conn, const void *data, size_t len)
{
    if (conn == NULL || (data == NULL && len > 0))
        return WS_EINVAL;
    if (len > 125)
        return WS_ETOOBIG;
    return conn_dispatch(conn, WSC__X_PING, WS_OP_PING, 0, data, len);
}

int ws_conn_close(struct ws_conn *conn, int code, const char *reason)
{
    size_t len = reason != NULL ? strlen(reason) : 0;

    if (conn == NULL)
        return WS_EINVAL;
    if (!wsc__close_code_valid(code))
        return WS_ECODE;
    if (len > 123)
        return WS_ETOOBIG;
    if (!wsc__utf8_valid(reason, len))
        return WS_EUTF8;
    return conn_dispatch(conn, WSC__X_CLOSE, WS_OP_CLOSE, code, reason, len);
}

static int conn_set_paused(struct ws_conn *conn, bool paused)
{
    struct wsc__xmsg *m;

    if (conn == NULL)
        return WS_EINVAL;
    if (atomic_load(&conn->state) == WSC__CONN_CLOSED)
        return WS_ECLOSED;
    if (wsc__loop_is_owner(conn->loop)) {
        if (conn->fd < 0)
            return WS_ECLOSED;
        wsc__io_set_app_paused(conn, paused);
        return 0;
    }
    m = xmsg_new(conn, paused ? WSC__X_PAUSE : WSC__X_RESUME, 0, 0, NULL, 0);
    return m == NULL ? WS_ENOMEM : wsc__loop_post(conn->loop, m);
}

int ws_conn_pause_reading(struct ws_conn *conn)
{
    return conn_set_paused(conn, true);
}

int ws_conn_resume_reading(struct ws_conn *conn)
{
    return conn_set_paused(conn, false);
}

size_t ws_conn_buffered_amount(const struct ws_conn *conn)
{
    size_t n;

    if (conn == NULL || atomic_load(&conn->state) == WSC__CONN_CLOSED)
        return 0;
    n = atomic_load_explicit(&conn->xqueued, memory_order_relaxed);
    if (wsc__loop_is_owner(conn->loop))
        return n + wsc__io_pending(conn, NULL);
    return n + atomic_load_explicit(&conn->outbuf, memory_order_relaxed);
}

void ws_conn_ref(struct ws_conn *conn)
{
    if (conn != NULL)
        atomic_fetch_add_explicit(&conn->refs, 1, memory_order_relaxed);
}

void ws_conn_unref(struct ws_conn *conn)
{
    if (conn == NULL)
        return;
    if (atomic_fetch_sub_explicit(&conn->refs, 1, memory_order_acq_rel) == 1) {
        /* remote address and subprotocol: readable until the last reference */
        free(atomic_load_explicit(&conn->names, memory_order_relaxed));
        wsc__loop_unref(conn->loop); /* every I/O resource went at release */
        free(conn);
    }
}

uint64_t ws_conn_id(const struct ws_conn *conn)
{
    return conn != NULL ? conn->id : 0;
}

void ws_conn_set_user(struct ws_conn *conn, void *user)
{
    if (conn != NULL)
        conn->user = user;
}

void *ws_conn_get_user(const struct ws_conn *conn)
{
    return conn != NULL ? conn->user : NULL;
}

struct ws_server *ws_conn_server(const struct ws_conn *conn)
{
    if (conn == NULL || conn->is_client || atomic_load(&conn->state) == WSC__CONN_CLOSED)
        return NULL;
    return wsc__server_of(conn->ep);
}

/* ---- sends by id (any thread) ----------------------------------------------- */

/* The connection with that id on its own loop (the id's low byte names
 * the worker), referenced, or NULL. */
static struct ws_conn *server_find(struct ws_server *srv, uint64_t id)
{
    struct wsc__loop *loop = wsc__server_loop(srv, (unsigned)(id & 0xff));

    return loop != NULL ? wsc__loop_find_id(loop, id) : NULL;
}

int ws_server_send_to(struct ws_server *srv, uint64_t conn_id, enum ws_opcode op,
                      const void *data, size_t len)
{
    struct ws_conn *c;
    int rc;

    if (srv == NULL || conn_id == 0)
        return WS_EINVAL;
    if ((c = server_find(srv, conn_id)) == NULL)
        return WS_ENOTFOUND;
    rc = ws_conn_send(c, op, data, len);
    ws_conn_unref(c);
    return rc;
}

int ws_server_close_to(struct ws_server *srv, uint64_t conn_id, int code,
                       const char *reason)
{
    struct ws_conn *c;
    int rc;

    if (srv == NULL || conn_id == 0)
        return WS_EINVAL;
    if ((c = server_find(srv, conn_id)) == NULL)
        return WS_ENOTFOUND;
    rc = ws_conn_close(c, code, reason);
    ws_conn_unref(c);
    return rc;
}
