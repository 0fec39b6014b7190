/*
 * io.c - a connection's socket: reading, corked writing, the backlog.
 *
 * Reading: one read() into a buffer the thread's loops share, then every
 * complete frame in it is handled in place. Only a partial frame left at
 * the end is copied into the connection (its stash), so an idle
 * connection holds no input memory.
 *
 * Writing: replies made while a connection's input is handled go into the
 * thread's cork and leave with one writev() when the handling ends. Small
 * ones are copied into it; a large payload that lies in the input being
 * handled (an echo) is only pointed to, since that input stays put until
 * the cork is written.
 * Other sends are written at once. Whatever the socket does not take goes
 * into the connection's backlog (an evbuffer and a write event, allocated
 * only while there is one), which is what backpressure measures.
 *
 * So the steady state costs one read() and one write() per wake-up, and no
 * epoll_ctl: the write event is armed only when the socket is full.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "internal.h"

struct wsc__backlog {
    struct event wev;
    struct evbuffer *buf;
    bool armed;
};

/* ---- per-thread buffers ---------------------------------------------------- */

/* At most this many pieces gathered before the cork is written. */
#define WSC__CORK_IOV 64
/* A payload at least this long that lies in the bytes being parsed (an
 * echo) is written from there instead of being copied into the cork. */
#define WSC__CORK_REF_MIN 1024

struct io_thread {
    uint8_t *rbuf;                /* WSC__READ_SIZE */
    const uint8_t *pass_buf;      /* the input being handled now: stays put */
    size_t pass_len;              /* until the cork is written */
    struct ws_conn *cork_conn;    /* whose replies are being gathered */
    size_t cork_len;              /* bytes used in cork[] */
    size_t cork_bytes;            /* bytes the pieces add up to */
    int niov;
    bool tail_open;               /* the last piece ends at cork_len: grow it */
    uint8_t *tls_buf;             /* WSC__TLS_CHUNK: corked pieces made one record */
    struct iovec iov[WSC__CORK_IOV];
    uint8_t cork[];               /* WSC__CORK_SIZE */
};

static pthread_key_t io_key;
static pthread_once_t io_key_once = PTHREAD_ONCE_INIT;
/* initial-exec: a plain load from the thread pointer, not a call into the
 * dynamic linker on every access (the hot path reads it per message). */
static _Thread_local struct io_thread *io_tls __attribute__((tls_model("initial-exec")));

static void io_thread_free(void *p)
{
    struct io_thread *t = p;

    if (t != NULL) {
        free(t->tls_buf);
        free(t->rbuf);
        free(t);
    }
}

static void io_key_init(void)
{
    (void)pthread_key_create(&io_key, io_thread_free);
}

static struct io_thread *io_thread(void)
{
    struct io_thread *t = io_tls;

    if (t != NULL)
        return t;
    pthread_once(&io_key_once, io_key_init);
    t = calloc(1, sizeof(*t) + WSC__CORK_SIZE);
    if (t == NULL)
        return NULL;
    t->rbuf = malloc(WSC__READ_SIZE);
    if (t->rbuf == NULL) {
        free(t);
        return NULL;
    }
    pthread_setspecific(io_key, t);
    io_tls = t;
    return t;
}

void wsc__io_thread_cleanup(void)
{
    if (io_tls != NULL) {
        pthread_once(&io_key_once, io_key_init);
        pthread_setspecific(io_key, NULL);
        io_thread_free(io_tls);
        io_tls = NULL;
    }
}

/* ---- the backlog ------------------------------------------------------------ */

static void io_on_writable(evutil_socket_t fd, short what, void *arg);

/* The broadcast frames chained for c by wsc__io_queue_shared (none when
 * it is not queued, or has a backlog: then they went into that). */
static struct wsc__queued *io_chain(const struct ws_conn *c)
{
    struct wsc__queued *q;

    if (!c->dirty)
        return NULL;
    q = &c->ep->queued[c->queued_pos - 1];
    return q->head != WSC__QNONE ? q : NULL;
}

static size_t io_chained(const struct ws_conn *c)
{
    const struct wsc__queued *q = io_chain(c);

    return q != NULL ? q->bytes : 0;
}

static bool io_backlogged(const struct ws_conn *c)
{
    return (c->bl != NULL && evbuffer_get_length(c->bl->buf) > 0) || io_chained(c) > 0;
}

static int backlog_add_shared(struct wsc__backlog *bl, struct wsc__shared *s, size_t off);

/* Move c's chained frames, from frame item and offset off on, into its
 * backlog in order; each one's reference goes with it. On failure the
 * rest is dropped (the caller fails the connection). */
static int chain_to_backlog(struct wsc__endpoint *ep, struct wsc__backlog *bl, uint32_t item,
                            size_t off)
{
    int rc = 0;

    for (; item != WSC__QNONE; item = ep->qitems[item].next, off = 0) {
        struct wsc__shared *s = ep->qitems[item].s;
        if (rc == 0)
            rc = backlog_add_shared(bl, s, off);
        wsc__shared_unref(s); /* the backlog took its own, or it failed */
    }
    return rc;
}

static void chain_release(struct wsc__endpoint *ep, uint32_t item)
{
    for (; item != WSC__QNONE; item = ep->qitems[item].next)
        wsc__shared_unref(ep->qitems[item].s);
}

static struct wsc__backlog *backlog_get(struct ws_conn *c)
{
    struct wsc__backlog *bl = c->bl;
    struct wsc__queued *q;

    if (bl == NULL) {
        bl = malloc(sizeof(*bl));
        if (bl == NULL)
            return NULL;
        bl->buf = evbuffer_new();
        if (bl->buf == NULL) {
            free(bl);
            return NULL;
        }
        bl->armed = false;
        event_assign(&bl->wev, c->loop->base, c->fd, EV_WRITE | EV_PERSIST, io_on_writable,
                     c);
        c->bl = bl;
    }
    /* Output after queued broadcasts goes behind them: they move first. */
    if ((q = io_chain(c)) != NULL) {
        uint32_t head = q->head;
        q->head = q->tail = WSC__QNONE;
        q->bytes = 0;
        if (chain_to_backlog(c->ep, bl, head, 0) != 0)
            return NULL;
    }
    return bl;
}

/* Publish c's backlog length for other threads' admission, and keep the
 * loop's sum (the server-wide budget) in step. Loop thread only writes. */
static void io_publish(struct ws_conn *c, size_t len)
{
    struct wsc__loop *loop = c->loop;
    size_t old = atomic_load_explicit(&c->outbuf, memory_order_relaxed);

    if (old == len)
        return;
    atomic_store_explicit(&c->outbuf, len, memory_order_relaxed);
    atomic_store_explicit(&loop->buffered,
                          atomic_load_explicit(&loop->buffered, memory_order_relaxed) + len - old,
                          memory_order_relaxed);
    /* Sends refused for the budget get their drain callbacks from the
     * flush event, outside whatever callback is running now. */
    if (len < old && atomic_load_explicit(&loop->budget_waiting, memory_order_relaxed) &&
        atomic_load_explicit(&loop->buffered, memory_order_relaxed) <= loop->budget / 2)
        event_active(c->ep->flush_ev, EV_WRITE, 0);
}

static void backlog_arm(struct ws_conn *c)
{
    /* During a TLS handshake the write event belongs to it (io_tls_step). */
    if (!c->bl->armed && !c->tls_hs && event_add(&c->bl->wev, NULL) == 0)
        c->bl->armed = true;
    io_publish(c, evbuffer_get_length(c->bl->buf));
}

static void backlog_free(struct ws_conn *c)
{
    struct wsc__backlog *bl = c->bl;

    if (bl == NULL)
        return;
    if (bl->armed)
        event_del(&bl->wev);
    evbuffer_free(bl->buf); /* runs the cleanups of shared frames */
    free(bl);
    c->bl = NULL;
    io_publish(c, io_chained(c));
}

void wsc__io_unqueue(struct ws_conn *c)
{
    struct wsc__queued *q = io_chain(c);

    if (q == NULL)
        return;
    chain_release(c->ep, q->head);
    q->head = q->tail = WSC__QNONE;
    q->bytes = 0;
    io_publish(c, c->bl != NULL ? evbuffer_get_length(c->bl->buf) : 0);
}

/* The socket refused output: what is queued can never arrive. The drop is
 * deferred to the connection's timer, because we may be deep inside a
 * callback that still uses the connection. */
void wsc__io_fail(struct ws_conn *c)
{
    if (c->write_failed)
        return;
    c->write_failed = true;
    wsc__io_unqueue(c);
    backlog_free(c); /* nothing queued can arrive; no write event either */
    wsc__conn_arm_timer(c, 0);
}

static bool io_would_block(int err)
{
    return err == EAGAIN || err == EWOULDBLOCK || err == EINTR;
}

/* ---- the syscalls, or OpenSSL in their place ------------------------------ */

/* Can output go straight to the socket (nothing queued ahead of it)? */
static bool io_direct(const struct ws_conn *c)
{
    return !io_backlogged(c) && !c->connecting && !c->tls_hs;
}

/* recv()/send() rather than read()/write(): a connection's fd is always a
 * socket, and the socket calls skip the VFS layer (and send() the iovec
 * copy of a one-piece writev()), which shows in the kernel's share at one
 * small message per wake-up. */
static ssize_t io_read(struct ws_conn *c, uint8_t *buf, size_t len)
{
    return c->ssl != NULL ? wsc__tls_read(c, buf, len) : recv(c->fd, buf, len, 0);
}

/* TLS: write buf whole record by record until it is done or would block. */
static ssize_t io_tls_write_all(struct ws_conn *c, const uint8_t *buf, size_t len)
{
    size_t off = 0;

    while (off < len) {
        ssize_t w = wsc__tls_write(c, buf + off, len - off);
        if (w <= 0)
            return off > 0 ? (ssize_t)off : w;
        off += (size_t)w;
    }
    return (ssize_t)off;
}

/* A piece at least this long fills whole TLS records by itself: it is
 * written from where it lies, not copied into the coalescing buffer. */
#define WSC__TLS_RECORD (16u * 1024u)

/* Write p[0..len) whole: false when the socket took less (or failed);
 * *total counts what went out, *last is the last write's result. */
static bool io_tls_put(struct ws_conn *c, const uint8_t *p, size_t len, size_t *total,
                       ssize_t *last)
{
    ssize_t w = io_tls_write_all(c, p, len);

    *last = w;
    if (w > 0)
        *total += (size_t)w;
    return w == (ssize_t)len;
}

/* TLS: small corked pieces are coalesced into chunks, so replies leave as
 * one record (up to 16 KiB) instead of one per piece; a piece of a record
 * or more goes straight out. Bytes written, or -1 (errno) if none. */
static ssize_t io_tls_writev(struct ws_conn *c, const struct iovec *iov, int n)
{
    struct io_thread *t;
    size_t total = 0, fill = 0;
    ssize_t last = 0;

    if (n == 1)
        return io_tls_write_all(c, iov[0].iov_base, iov[0].iov_len);
    if ((t = io_thread()) == NULL ||
        (t->tls_buf == NULL && (t->tls_buf = malloc(WSC__TLS_CHUNK)) == NULL)) {
        errno = ENOMEM;
        return -1;
    }
    for (int i = 0; i < n; i++) {
        const uint8_t *p = iov[i].iov_base;
        size_t len = iov[i].iov_len;
        if (len >= WSC__TLS_RECORD) {
            if ((fill > 0 && !io_tls_put(c, t->tls_buf, fill, &total, &last)) ||
                !io_tls_put(c, p, len, &total, &last))
                goto out;
            fill = 0;
            continue;
        }
        while (len > 0) {
            size_t k = len < WSC__TLS_CHUNK - fill ? len : WSC__TLS_CHUNK - fill;
            memcpy(t->tls_buf + fill, p, k);
            fill += k;
            p += k;
            len -= k;
            if (fill == WSC__TLS_CHUNK) {
                if (!io_tls_put(c, t->tls_buf, fill, &total, &last))
                    goto out;
                fill = 0;
            }
        }
    }
    if (fill > 0)
        io_tls_put(c, t->tls_buf, fill, &total, &last);
out:
    return total > 0 ? (ssize_t)total : last < 0 ? last : 0;
}

static ssize_t io_sys_writev(struct ws_conn *c, struct iovec *iov, int n)
{
    if (c->ssl != NULL)
        return io_tls_writev(c, iov, n);
    if (n == 1)
        return send(c->fd, iov[0].iov_base, iov[0].iov_len, MSG_NOSIGNAL);
    return writev(c->fd, iov, n);
}

/* Write from the front of buf: bytes written, or -1 with errno. */
static int io_buf_write(struct ws_conn *c, struct evbuffer *buf)
{
    int total = 0;

    if (c->ssl == NULL)
        return evbuffer_write(buf, c->fd);
    while (evbuffer_get_length(buf) > 0) {
        size_t len = evbuffer_get_length(buf);
        struct evbuffer_iovec first;
        const void *p;
        ssize_t w;
        if (len > WSC__TLS_CHUNK)
            len = WSC__TLS_CHUNK; /* >= any blocked write's: it retries here */
        /* A first chain of a record or more is written where it lies; only
         * small ones are gathered (copied) into one. Either way a retry
         * after a blocked write starts from the same bytes, no shorter. */
        if (evbuffer_peek(buf, -1, NULL, &first, 1) >= 1 && first.iov_len >= WSC__TLS_RECORD) {
            if (len > first.iov_len)
                len = first.iov_len;
            p = first.iov_base;
        } else {
            p = evbuffer_pullup(buf, (ssize_t)len);
        }
        w = io_tls_write_all(c, p, len);
        if (w <= 0)
            return total > 0 ? total : (int)w;
        evbuffer_drain(buf, (size_t)w);
        total += (int)w;
    }
    return total;
}

/* Write iov now if nothing is ahead of it; backlog what the socket leaves. */
static int io_writev(struct ws_conn *c, struct iovec *iov, int n)
{
    struct wsc__backlog *bl;
    size_t total = 0;

    if (c->fd < 0 || c->write_failed)
        return WS_ECLOSED;
    for (int i = 0; i < n; i++)
        total += iov[i].iov_len;
    if (io_direct(c)) {
        ssize_t w = io_sys_writev(c, iov, n);
        if (w < 0) {
            if (!io_would_block(errno)) {
                wsc__io_fail(c);
                return WS_ECLOSED;
            }
            w = 0;
        }
        if ((size_t)w == total)
            return 0;
        for (int i = 0; i < n && w > 0; i++) {
            size_t k = (size_t)w < iov[i].iov_len ? (size_t)w : iov[i].iov_len;
            iov[i].iov_base = (uint8_t *)iov[i].iov_base + k;
            iov[i].iov_len -= k;
            w -= (ssize_t)k;
        }
    }
    bl = backlog_get(c);
    if (bl == NULL) {
        wsc__io_fail(c);
        return WS_ENOMEM;
    }
    for (int i = 0; i < n; i++)
        if (iov[i].iov_len > 0 && evbuffer_add(bl->buf, iov[i].iov_base, iov[i].iov_len) != 0) {
            wsc__io_fail(c);
            return WS_ENOMEM;
        }
    backlog_arm(c);
    return 0;
}

/* Write out what the cork holds for c (it stays corked). */
void wsc__io_flush(struct ws_conn *c)
{
    struct io_thread *t = io_tls;
    int n;

    if (t == NULL || t->cork_conn != c || t->niov == 0)
        return;
    n = t->niov;
    t->niov = 0;
    t->cork_len = t->cork_bytes = 0;
    t->tail_open = false;
    io_writev(c, t->iov, n);
}

void wsc__io_cork(struct ws_conn *c)
{
    struct io_thread *t = io_thread();

    if (t == NULL || t->cork_conn == c)
        return;
    wsc__io_uncork();
    t->cork_conn = c;
}

void wsc__io_uncork(void)
{
    struct io_thread *t = io_tls;
    struct ws_conn *c;

    if (t == NULL || t->cork_conn == NULL)
        return;
    c = t->cork_conn;
    wsc__io_flush(c);
    t->cork_conn = NULL;
}

static void cork_copy(struct io_thread *t, const void *p, size_t n)
{
    if (n == 0)
        return;
    memcpy(t->cork + t->cork_len, p, n);
    if (t->tail_open) {
        t->iov[t->niov - 1].iov_len += n;
    } else {
        t->iov[t->niov].iov_base = t->cork + t->cork_len;
        t->iov[t->niov++].iov_len = n;
        t->tail_open = true;
    }
    t->cork_len += n;
    t->cork_bytes += n;
}

/* Build a frame at the end of the cork (the caller checked it fits). */
static inline void cork_put_frame(struct io_thread *t, bool rsv1, int opcode, const void *data,
                                  size_t len)
{
    uint8_t *p = t->cork + t->cork_len;
    size_t n = wsc__frame_header(p, rsv1, opcode, len, NULL);

    if (len > 0)
        memcpy(p + n, data, len);
    n += len;
    if (t->tail_open) {
        t->iov[t->niov - 1].iov_len += n;
    } else {
        t->iov[t->niov].iov_base = p;
        t->iov[t->niov++].iov_len = n;
        t->tail_open = true;
    }
    t->cork_len += n;
    t->cork_bytes += n;
}

int wsc__io_cork_frame(struct ws_conn *c, bool rsv1, int opcode, const void *data,
                      size_t len)
{
    struct io_thread *t = io_tls;

    /* A backlog (or a pending connect) comes first: the general path. */
    if (c->write_failed)
        return 0; /* wsc__io_send reports it */
    if (t == NULL || t->cork_conn != c || c->bl != NULL || io_chained(c) > 0 ||
        WSC__FRAME_HEADER_MAX + len > WSC__CORK_SIZE)
        return 0;
    if (t->cork_len + WSC__FRAME_HEADER_MAX + len > WSC__CORK_SIZE ||
        t->niov == WSC__CORK_IOV) {
        wsc__io_flush(c);
        if (c->bl != NULL)
            return 0;
    }
    cork_put_frame(t, rsv1, opcode, data, len);
    return 1;
}

/*
 * The short send path: a small data frame sent from inside c's own read
 * pass (an echo, a reply) with nothing queued before it. Being in c's pass
 * on this thread already proves what the general path works out call by
 * call (the caller owns the loop, no backlog waits, the connection is
 * still reading), so only the checks that can fail here remain: the
 * admission limits, then the frame goes straight into the cork. 1 = sent;
 * 0 = take the general path (which decides every other case, errors too).
 */
int wsc__io_send_short(struct ws_conn *c, int opcode, const void *data, size_t len)
{
    struct io_thread *t = io_tls;
    size_t need;

    if (t == NULL || t->cork_conn != c || len > WSC__SMALL_FRAME || c->bl != NULL ||
        c->dirty || c->is_client || c->write_failed || c->close_sent || c->close_notified ||
        wsc__pmd_on(c) ||
        atomic_load_explicit(&c->state, memory_order_relaxed) != WSC__CONN_OPEN ||
        t->cork_len + WSC__FRAME_HEADER_MAX + len > WSC__CORK_SIZE || t->niov == WSC__CORK_IOV)
        return 0;
    /* conn_admit's test: with no backlog or chain, the cork is all that is pending */
    need = len + wsc__frame_header_len(len, false);
    if (wsc__loop_admit(c->loop,
                        atomic_load_explicit(&c->xqueued, memory_order_relaxed) + t->cork_bytes,
                        t->cork_bytes, need) != WSC__ADMITTED)
        return 0;
    cork_put_frame(t, false, opcode, data, len);
    return 1;
}

static bool in_pass(const struct io_thread *t, const void *p, size_t n)
{
    const uint8_t *b = p;

    return t->pass_buf != NULL && b >= t->pass_buf && n <= t->pass_len &&
           b - t->pass_buf <= (ptrdiff_t)(t->pass_len - n);
}

int wsc__io_send(struct ws_conn *c, const void *a, size_t alen, const void *b, size_t blen)
{
    struct io_thread *t = io_tls;
    struct iovec iov[2];
    int n = 0;

    if (c->fd < 0 || c->write_failed)
        return WS_ECLOSED;
    if (t != NULL && t->cork_conn == c && !io_backlogged(c)) {
        bool ref = blen >= WSC__CORK_REF_MIN && in_pass(t, b, blen);
        size_t copy = alen + (ref ? 0 : blen);
        if (t->cork_len + copy > WSC__CORK_SIZE || t->niov + 2 > WSC__CORK_IOV)
            wsc__io_flush(c);
        if (copy <= WSC__CORK_SIZE && !io_backlogged(c)) {
            cork_copy(t, a, alen);
            if (ref) {
                t->iov[t->niov].iov_base = (void *)(uintptr_t)b;
                t->iov[t->niov++].iov_len = blen;
                t->cork_bytes += blen;
                t->tail_open = false;
            } else {
                cork_copy(t, b, blen);
            }
            return 0;
        }
    }
    if (alen > 0) {
        iov[n].iov_base = (void *)(uintptr_t)a;
        iov[n++].iov_len = alen;
    }
    if (blen > 0) {
        iov[n].iov_base = (void *)(uintptr_t)b;
        iov[n++].iov_len = blen;
    }
    return n > 0 ? io_writev(c, iov, n) : 0;
}

/* What wsc__io_send_buffer copies rather than moves into a backlog. */
#define WSC__SMALL_COPY 4096

int wsc__io_send_buffer(struct ws_conn *c, struct evbuffer *buf)
{
    struct wsc__backlog *bl;
    size_t len;

    if (c->fd < 0 || c->write_failed) {
        evbuffer_drain(buf, evbuffer_get_length(buf));
        return WS_ECLOSED;
    }
    wsc__io_flush(c);
    if (io_direct(c)) {
        while (evbuffer_get_length(buf) > 0) {
            int w = io_buf_write(c, buf);
            if (w < 0 && !io_would_block(errno)) {
                evbuffer_drain(buf, evbuffer_get_length(buf));
                wsc__io_fail(c);
                return WS_ECLOSED;
            }
            if (w <= 0)
                break;
        }
        if (evbuffer_get_length(buf) == 0)
            return 0;
    }
    bl = backlog_get(c);
    /* Small responses are copied into the backlog's free space: moving
     * their chains would cost a mostly empty chain each, and thousands of
     * pipelined requests would make the backlog's memory many times its
     * length (the length is what max_buffered counts). */
    len = evbuffer_get_length(buf);
    if (bl == NULL ||
        (len <= WSC__SMALL_COPY ? evbuffer_add(bl->buf, evbuffer_pullup(buf, -1), len)
                                : evbuffer_add_buffer(bl->buf, buf)) != 0) {
        evbuffer_drain(buf, evbuffer_get_length(buf));
        wsc__io_fail(c);
        return WS_ENOMEM;
    }
    evbuffer_drain(buf, evbuffer_get_length(buf));
    backlog_arm(c);
    return 0;
}

/* ---- shared frames ------------------------------------------------------------ */

/* Below this, the unwritten rest of a shared frame is copied: a reference
 * is itself an allocated chain. */
#define WSC__SHARED_REFERENCE_MIN 512

struct wsc__shared *wsc__shared_new(size_t len)
{
    struct wsc__shared *s = malloc(sizeof(*s) + len);

    if (s != NULL) {
        s->refs = 1;
        s->len = len;
    }
    return s;
}

void wsc__shared_unref(struct wsc__shared *s)
{
    if (s != NULL && --s->refs == 0)
        free(s);
}

static void shared_cleanup(const void *data, size_t len, void *arg)
{
    (void)data;
    (void)len;
    wsc__shared_unref(arg);
}

/* Append s from off on to a backlog: copied if short, else by reference
 * (a reference of its own). */
static int backlog_add_shared(struct wsc__backlog *bl, struct wsc__shared *s, size_t off)
{
    int rc;

    if (s->len - off < WSC__SHARED_REFERENCE_MIN)
        return evbuffer_add(bl->buf, s->data + off, s->len - off);
    s->refs++;
    rc = evbuffer_add_reference(bl->buf, s->data + off, s->len - off, shared_cleanup, s);
    if (rc != 0)
        s->refs--;
    return rc;
}

int wsc__io_send_shared(struct ws_conn *c, struct wsc__shared *s)
{
    struct wsc__backlog *bl;
    size_t off = 0;

    if (c->fd < 0 || c->write_failed)
        return WS_ECLOSED;
    wsc__io_flush(c);
    if (io_direct(c)) {
        struct iovec one = { .iov_base = s->data, .iov_len = s->len };
        ssize_t w = io_sys_writev(c, &one, 1);
        if (w < 0) {
            if (!io_would_block(errno)) {
                wsc__io_fail(c);
                return WS_ECLOSED;
            }
            w = 0;
        }
        off = (size_t)w;
        if (off == s->len)
            return 0;
    }
    bl = backlog_get(c);
    if (bl == NULL || backlog_add_shared(bl, s, off) != 0) {
        wsc__io_fail(c);
        return WS_ENOMEM;
    }
    backlog_arm(c);
    return 0;
}

int wsc__io_queue_shared(struct ws_conn *c, struct wsc__shared *s)
{
    struct wsc__endpoint *ep = c->ep;
    struct io_thread *t = io_tls;
    struct wsc__queued *q;
    uint32_t item;

    if (c->fd < 0 || c->write_failed)
        return WS_ECLOSED;
    if ((t != NULL && t->cork_conn == c) || c->connecting || c->tls_hs)
        return wsc__io_send_shared(c, s); /* behind its cork: keep the order */
    if (!c->dirty) {
        if (ep->num_queued == ep->queued_cap) {
            size_t cap = ep->queued_cap ? ep->queued_cap * 2 : 64;
            struct wsc__queued *nq = realloc(ep->queued, cap * sizeof(*nq));
            if (nq == NULL)
                return wsc__io_send_shared(c, s);
            ep->queued = nq;
            ep->queued_cap = cap;
        }
        ws_conn_ref(c);
        ep->queued[ep->num_queued] = (struct wsc__queued){ c, WSC__QNONE, WSC__QNONE, 0 };
        c->queued_pos = (uint32_t)++ep->num_queued;
        c->dirty = true;
        if (ep->num_queued == 1)
            event_active(ep->flush_ev, EV_WRITE, 0);
    }
    if (c->bl != NULL) { /* output is waiting already: the frame goes behind it */
        if (backlog_add_shared(c->bl, s, 0) != 0) {
            wsc__io_fail(c);
            return WS_ENOMEM;
        }
        io_publish(c, evbuffer_get_length(c->bl->buf));
        return 0;
    }
    /* Chained, not copied: the flush writes the frames from where they lie. */
    if (ep->num_qitems == ep->qitems_cap) {
        size_t cap = ep->qitems_cap ? ep->qitems_cap * 2 : 256;
        struct wsc__qitem *ni = cap < WSC__QNONE ? realloc(ep->qitems, cap * sizeof(*ni)) : NULL;
        if (ni == NULL)
            return wsc__io_send_shared(c, s); /* backlog_get moves the chain first */
        ep->qitems = ni;
        ep->qitems_cap = cap;
    }
    item = (uint32_t)ep->num_qitems++;
    ep->qitems[item] = (struct wsc__qitem){ s, WSC__QNONE };
    s->refs++;
    q = &ep->queued[c->queued_pos - 1];
    if (q->head == WSC__QNONE)
        q->head = item;
    else
        ep->qitems[q->tail].next = item;
    q->tail = item;
    q->bytes += s->len;
    io_publish(c, q->bytes);
    return 0;
}

/* Write the frames chained for one connection (taken off its queue entry),
 * up to 64 per writev; what the socket leaves goes to the backlog, from
 * the frame and offset where it stopped. */
static void flush_chain(struct ws_conn *c, uint32_t item)
{
    struct wsc__endpoint *ep = c->ep;

    while (item != WSC__QNONE) {
        struct iovec iov[64];
        size_t want = 0, done;
        ssize_t w;
        int n = 0;

        for (uint32_t i = item; i != WSC__QNONE && n < 64; i = ep->qitems[i].next) {
            iov[n].iov_base = ep->qitems[i].s->data;
            iov[n++].iov_len = ep->qitems[i].s->len;
            want += ep->qitems[i].s->len;
        }
        w = io_sys_writev(c, iov, n);
        if (w < 0 && !io_would_block(errno)) {
            chain_release(ep, item);
            wsc__io_fail(c);
            return;
        }
        done = w > 0 ? (size_t)w : 0;
        for (; item != WSC__QNONE && done >= ep->qitems[item].s->len;
             item = ep->qitems[item].next) {
            done -= ep->qitems[item].s->len;
            wsc__shared_unref(ep->qitems[item].s);
        }
        if (w < 0 || (size_t)w < want) { /* the socket is full */
            struct wsc__backlog *bl = backlog_get(c);
            if (bl == NULL) {
                chain_release(ep, item);
                wsc__io_fail(c);
            } else if (chain_to_backlog(ep, bl, item, done) != 0) {
                wsc__io_fail(c);
            } else {
                backlog_arm(c);
            }
            return;
        }
    }
    io_publish(c, c->bl != NULL ? evbuffer_get_length(c->bl->buf) : 0);
    if (c->bl == NULL)
        wsc__conn_io_drained(c, 0);
}

void wsc__io_flush_queued(evutil_socket_t fd, short what, void *arg)
{
    struct wsc__endpoint *ep = arg;

    (void)fd;
    (void)what;
    wsc__loop_enter(ep->loop);
    /* Connections queued while this runs (a drain callback broadcasting)
     * go to the back and are flushed in this same pass. */
    for (size_t i = 0; i < ep->num_queued; i++) {
        struct ws_conn *c = ep->queued[i].conn;
        uint32_t head = ep->queued[i].head;
        ep->queued[i].head = ep->queued[i].tail = WSC__QNONE;
        ep->queued[i].bytes = 0;
        c->dirty = false;
        c->queued_pos = 0;
        if (head != WSC__QNONE) {
            /* No backlog (else the frames would be in it) and still open
             * (a failing or released connection dropped its chain). */
            flush_chain(c, head);
        } else if (c->fd >= 0 && !c->write_failed && c->bl != NULL && !c->bl->armed &&
                   !c->tls_hs) {
            size_t left;
            if (io_buf_write(c, c->bl->buf) < 0 && !io_would_block(errno)) {
                wsc__io_fail(c);
            } else if ((left = evbuffer_get_length(c->bl->buf)) == 0) {
                backlog_free(c);
                wsc__conn_io_drained(c, 0);
            } else {
                backlog_arm(c); /* the write event takes the rest */
            }
        }
    }
    for (size_t i = 0; i < ep->num_queued; i++)
        ws_conn_unref(ep->queued[i].conn);
    ep->num_queued = 0;
    ep->num_qitems = 0;
    if (atomic_load_explicit(&ep->loop->budget_waiting, memory_order_relaxed))
        wsc__conn_budget_drained(ep);
}

size_t wsc__io_pending(const struct ws_conn *c, size_t *corked)
{
    const struct io_thread *t = io_tls;
    size_t n = (c->bl != NULL ? evbuffer_get_length(c->bl->buf) : 0) + io_chained(c);
    size_t k = t != NULL && t->cork_conn == c ? t->cork_bytes : 0;

    if (corked != NULL)
        *corked = k;
    return n + k;
}

/* ---- read throttling and flow control ------------------------------------------ */

/*
 * Output a peer makes us produce without reading it (pongs to a ping flood,
 * answers to pipelined HTTP requests) must not grow without limit. Data
 * sends are refused at max_buffered (headers counted), so only such
 * provoked output can take the backlog past 1.5 x max_buffered: then the
 * connection's input is not read, its TCP window closes and the peer
 * stalls. Reading resumes once the backlog is down to half the cap.
 *
 * The margin is what keeps two libwsc endpoints that both honour
 * WS_EAGAIN from waiting on each other: each one's own data stays within
 * the cap, so neither stops reading because of it.
 */
bool wsc__io_over_cap(const struct ws_conn *c)
{
    size_t cap = c->loop->max_buffered;

    return c->bl != NULL && evbuffer_get_length(c->bl->buf) > cap + cap / 2;
}

bool wsc__io_input_blocked(const struct ws_conn *c)
{
    return c->app_paused || wsc__io_over_cap(c);
}

static void io_pause_reading(struct ws_conn *c)
{
    if (!c->read_paused && c->fd >= 0) {
        wsc__watch_stop(c);
        c->read_paused = true;
    }
}

static void io_resume_reading(struct ws_conn *c)
{
    if (!c->read_paused || c->fd < 0 || c->write_failed || wsc__io_input_blocked(c))
        return;
    c->read_paused = false;
    if (wsc__watch_start(c) != 0) {
        wsc__io_fail(c);
        return;
    }
    /* Bytes kept in the stash (input not handled yet) may be all the
     * peer sends: handle them now rather than wait for more input. */
    if (wsc__stash_len(c) > 0 || wsc__tls_has_pending(c))
        wsc__watch_kick(c);
}

void wsc__io_handle_stash(struct ws_conn *c)
{
    /* While reading is paused the resume does this. */
    if (c->fd < 0 || wsc__stash_len(c) == 0 || c->read_paused)
        return;
    c->stash_handled = false;
    wsc__watch_kick(c); /* read with nothing new: the stash */
}

void wsc__io_set_app_paused(struct ws_conn *c, bool paused)
{
    /* Once our close is sent nothing more is delivered, and the peer's
     * close frame and FIN must still be read: a pause no longer holds. */
    if (paused && (c->close_sent || c->lingering))
        return;
    c->app_paused = paused;
    if (paused) {
        /* Frames already read in this pass stop at the next boundary
         * (the parsers check wsc__io_input_blocked) and wait in the stash. */
        io_pause_reading(c);
    } else {
        c->stash_handled = false; /* what waits there is unhandled input */
        io_resume_reading(c);
    }
}

/* ---- the TLS handshake --------------------------------------------------------- */

/* Keep the write event armed exactly while OpenSSL waits to write (during
 * the handshake it is not the backlog's: that waits for the handshake). */
static void io_tls_want_write(struct ws_conn *c, bool on)
{
    struct wsc__backlog *bl = c->bl;

    if (on) {
        bl = backlog_get(c);
        if (bl == NULL) {
            wsc__io_fail(c);
            return;
        }
        if (!bl->armed && event_add(&bl->wev, NULL) == 0)
            bl->armed = true;
        return;
    }
    if (bl == NULL)
        return;
    if (!io_backlogged(c))
        backlog_free(c);
    else if (c->tls_hs && bl->armed && event_del(&bl->wev) == 0)
        bl->armed = false;
}

/* One step of the handshake, on either event. */
static void io_tls_step(struct ws_conn *c)
{
    int r = wsc__tls_handshake(c);

    if (r < 0) {
        wsc__conn_io_closed(c);
        return;
    }
    io_tls_want_write(c, c->tls_wait_write);
    if (r == 1 && c->fd >= 0 && !c->write_failed) {
        if (io_backlogged(c))
            backlog_arm(c); /* a client's request, written behind the handshake */
        /* Application data may have come with the last handshake flight. */
        wsc__watch_kick(c);
    }
}

/* ---- events ------------------------------------------------------------------- */

static void io_on_writable(evutil_socket_t fd, short what, void *arg)
{
    struct ws_conn *c = arg;
    struct wsc__backlog *bl = c->bl;
    size_t left;
    int w;

    (void)what;
    wsc__loop_enter(c->loop);
    if (c->connecting) {
        int err = 0;
        socklen_t len = sizeof(err);
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
            err = errno;
        c->connecting = false;
        if (err == 0 && wsc__watch_start(c) != 0)
            err = ENOMEM;
        if (!io_backlogged(c))
            backlog_free(c);
        ws_conn_ref(c);
        wsc__conn_io_connected(c, err);
        if (err == 0 && c->ssl != NULL && c->tls_hs && c->fd >= 0)
            io_tls_step(c); /* the ClientHello; the request waits behind it */
        ws_conn_unref(c);
        return;
    }
    if (c->ssl != NULL && c->tls_hs) {
        io_tls_step(c);
        return;
    }
    if (c->ssl != NULL && c->tls_wait_write) { /* a read had to write first */
        c->tls_wait_write = false;
        wsc__watch_kick(c);
        io_tls_want_write(c, false);
        bl = c->bl;
    }
    if (bl == NULL || !bl->armed)
        return;
    if ((w = io_buf_write(c, bl->buf)) < 0 && !io_would_block(errno)) {
        wsc__io_fail(c);
        return;
    }
    if (w > 0)
        c->got_traffic = true; /* the peer is taking our bytes: alive */
    left = evbuffer_get_length(bl->buf);
    io_publish(c, left);
    if (left == 0)
        backlog_free(c); /* an idle connection keeps no output buffer */
    if (left <= c->loop->max_buffered / 2)
        io_resume_reading(c);
    wsc__conn_io_drained(c, left);
}

/* Keep buf[0..len) for the next read. */
bool wsc__io_stash(struct ws_conn *c, const uint8_t *buf, size_t len)
{
    struct wsc__stash *s = c->stash;

    if (s == NULL || len > s->cap) {
        /* buf never lies in a stash this small: no move from freed memory */
        s = realloc(s, sizeof(*s) + len);
        if (s == NULL)
            return false;
        s->cap = len;
        c->stash = s;
    }
    memmove(s->data, buf, len);
    s->len = len;
    return true;
}

void wsc__io_stash_free(struct ws_conn *c)
{
    free(c->stash);
    c->stash = NULL;
}

static bool io_still_reading(const struct ws_conn *c)
{
    int st = atomic_load(&c->state);

    /* After wsc__io_fail nothing more is handled: input could re-arm the
     * timer that tears the connection down (a request read after a failed
     * read buffer set the keep-alive timer, and nothing was ever sent). */
    return c->fd >= 0 && !c->lingering && !c->write_failed &&
           (st == WSC__CONN_HTTP || st == WSC__CONN_OPEN || st == WSC__CONN_CLOSING);
}

/* A plain socket a read filled may hold more, and no edge would say so:
 * level-triggered until a read drains it (watch.c). */
static void io_track_fill(struct ws_conn *c, bool filled)
{
    if (c->ssl == NULL && c->fd >= 0 && filled != c->bulk_reader) {
        c->bulk_reader = filled;
        wsc__watch_rearm(c);
    }
}

/* c's stash as the buffer to read on behind it, at least room bytes in all
 * (grown to grown when smaller); ours while we parse, so a release must not
 * free it. NULL when it cannot grow: c keeps it. */
static struct wsc__stash *io_stash_take(struct ws_conn *c, size_t room, size_t grown)
{
    struct wsc__stash *own = c->stash;

    if (own->cap < room) {
        own = realloc(own, sizeof(*own) + grown);
        if (own == NULL)
            return NULL;
        own->cap = grown;
    }
    c->stash = NULL;
    return own;
}

void wsc__io_on_readable(struct ws_conn *c)
{
    evutil_socket_t fd = c->fd;
    struct io_thread *t = io_thread();
    uint8_t *buf;
    struct wsc__stash *own = NULL;
    size_t have = 0, cap = WSC__READ_SIZE, used, stashed = wsc__stash_len(c);
    size_t room = 0, grown = 0; /* reading on in the stash: its size wanted */
    ssize_t n;
    bool filled, grow = false;

    wsc__loop_enter(c->loop);
    if (t == NULL) {
        wsc__io_fail(c);
        return;
    }
    if (!io_still_reading(c)) {
        /* Lingering or flushing: the peer's bytes no longer matter (TLS
         * records too: they are dropped undecrypted). */
        n = recv(fd, t->rbuf, WSC__READ_SIZE, 0);
        if (n == 0 || (n < 0 && !io_would_block(errno)))
            wsc__conn_io_closed(c);
        else
            io_track_fill(c, n == (ssize_t)WSC__READ_SIZE);
        return;
    }
    if (c->ssl != NULL && c->tls_hs) {
        /* A PROXY header comes before the ClientHello (proxy_protocol.c). */
        if (wsc__proxy_tls_input(c))
            io_tls_step(c);
        return;
    }
    buf = t->rbuf;
    if (stashed >= WSC__GROW_MIN && stashed <= WSC__READ_SIZE / 2 && c->stash_handled &&
        !c->bulk_reader) {
        /* A partial frame (or head) of some size arriving in small reads:
         * read on behind it in the stash itself, grown geometrically,
         * rather than copy it into the read buffer and back on every read
         * (a 64 KiB frame arriving a segment at a time made that
         * quadratic). A bulk reader takes the read buffer's full 256 KiB
         * instead: one copy of the stash per full read costs little. */
        room = stashed + WSC__GROW_SPARE;
        grown = 2 * stashed + WSC__GROW_SPARE; /* doubling: few reallocs */
        grow = true;
    } else if (stashed > 0 && stashed <= WSC__READ_SIZE / 2) {
        memcpy(buf, c->stash->data, stashed);
        have = stashed;
    } else if (stashed > 0) {
        /* A large stash (input held while reading was blocked, or a long
         * head under a large max_head_size): read on behind it, in its
         * own buffer. (Request bodies are gathered by conn_http.c.) */
        room = grown = stashed + WSC__READ_SIZE;
    }
    if (room > 0) {
        own = io_stash_take(c, room, grown);
        if (own == NULL) {
            wsc__io_fail(c);
            return;
        }
        cap = own->cap;
        buf = own->data;
        have = stashed;
    }
    n = io_read(c, buf + have, cap - have);
    filled = n > 0 && (size_t)n == cap - have;
    if (n < 0 && c->tls_wait_write)
        io_tls_want_write(c, true); /* OpenSSL must write before it reads on */
    if (n <= 0) {
        bool again = n < 0 && io_would_block(errno);
        if (again && have > 0 && !c->stash_handled) {
            n = 0; /* nothing new, but stashed requests to answer (resumed) */
        } else {
            if (own != NULL) { /* give it back */
                own->len = have;
                c->stash = own;
            }
            if (!again)
                wsc__conn_io_closed(c);
            return;
        }
    }
    if (own == NULL && have > 0)
        c->stash->len = 0; /* its bytes are in buf now */
    have += (size_t)n;
    if (n > 0)
        c->got_traffic = true; /* any bytes prove the peer alive, mid-frame too */

    ws_conn_ref(c); /* callbacks may close or release c */
    wsc__io_cork(c);
    t->pass_buf = buf;
    t->pass_len = have;
    used = wsc__conn_input(c, buf, have);
    wsc__io_uncork(); /* before buf changes: the cork may point into it */
    t->pass_buf = NULL;
    t->pass_len = 0;
    if (used < have && io_still_reading(c)) {
        if (grow && have - used >= WSC__GROW_MIN) {
            /* Still a sizeable partial frame: the grown stash stays. */
            if (used > 0)
                memmove(own->data, own->data + used, have - used);
            own->len = have - used;
            c->stash = own;
            own = NULL;
        } else if (!wsc__io_stash(c, buf + used, have - used)) {
            wsc__io_fail(c);
        }
    }
    /* A stash left because input is blocked (output over the cap, or the
     * application paused reading) is unhandled input, not a partial
     * frame: handle it once reading resumes. */
    c->stash_handled = !wsc__io_input_blocked(c);
    if (wsc__io_input_blocked(c))
        io_pause_reading(c);
    if (c->stash != NULL && c->stash->len == 0)
        wsc__io_stash_free(c); /* an idle connection keeps no input buffer */
    /* A full buffer may leave decrypted bytes in OpenSSL: no socket event
     * would announce them. */
    if (c->ssl != NULL && !c->read_paused && io_still_reading(c) && wsc__tls_has_pending(c))
        wsc__watch_kick(c);
    io_track_fill(c, filled);
    free(own);
    /* A send refused while the cork held (or pointed to) this pass's
     * replies gets its drain here if they all left in the one write: no
     * backlog is left to report it. Last, so that a resume from the drain
     * callback finds reading paused and the stash in place. */
    if (c->fd >= 0 && !io_backlogged(c) && !c->write_failed &&
        atomic_load_explicit(&c->want_drain, memory_order_relaxed))
        wsc__conn_io_drained(c, 0);
    ws_conn_unref(c);
}

/* ---- lifetime ------------------------------------------------------------------- */

int wsc__io_start(struct ws_conn *c, evutil_socket_t fd)
{
    c->fd = fd;
    if (c->connecting)
        return 0; /* reading starts once connected */
    return wsc__watch_start(c);
}

int wsc__io_connect(struct ws_conn *c, const struct sockaddr *sa, int salen)
{
    struct wsc__backlog *bl;
    evutil_socket_t fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    if (fd < 0 || (connect(fd, sa, (socklen_t)salen) != 0 && errno != EINPROGRESS)) {
        /* Refused at once (or no socket): report it from the loop, as a
         * connect that failed later would be, not from inside the caller. */
        if (fd >= 0)
            evutil_closesocket(fd);
        c->write_failed = true;
        wsc__conn_arm_timer(c, 0);
        return 0;
    }
    c->connecting = true;
    wsc__io_start(c, fd);
    bl = backlog_get(c);
    if (bl == NULL || event_add(&bl->wev, NULL) != 0) {
        wsc__io_release(c);
        return WS_ENOMEM;
    }
    bl->armed = true;
    return 0;
}

void wsc__io_shutdown_write(struct ws_conn *c)
{
    if (c->fd >= 0) {
        wsc__tls_close_notify(c); /* before the FIN */
        shutdown(c->fd, SHUT_WR);
    }
    wsc__io_stash_free(c);
}

void wsc__io_release(struct ws_conn *c)
{
    struct io_thread *t = io_tls;

    if (t != NULL && t->cork_conn == c) {
        t->cork_conn = NULL;
        t->niov = 0;
        t->cork_len = t->cork_bytes = 0;
        t->tail_open = false;
    }
    if (c->fd >= 0) {
        wsc__watch_release(c);
        wsc__io_unqueue(c);
        backlog_free(c);
        evutil_closesocket(c->fd);
        c->fd = -1;
    }
    c->connecting = false;
    wsc__io_stash_free(c);
    wsc__tls_release(c);
}
