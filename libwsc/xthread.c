/*
 * xthread.c - sends from threads other than the loop's.
 *
 * Only the loop thread may touch a connection's socket and framing state, so a foreign thread hands the loop a message: it appends to a
 * mutex-guarded list and makes a persistent event active. The event has no
 * timeout (an activation racing a pending timeout can be lost in libevent
 * 2.1), and it is activated once per batch: producers that find a wake-up
 * already pending only append.
 */
#include <stdlib.h>

#include <event2/event.h>

#include "internal.h"

static void loop_deliver(struct wsc__xmsg *m)
{
    struct ws_conn *c = m->conn;

    switch (m->kind) {
    case WSC__X_BROADCAST:
        wsc__deliver_now(m->ep, NULL, false, m->opcode, m->data, m->len);
        free(m);
        return;
    case WSC__X_PUBLISH: { /* data: "topic\0payload", code: topic length */
        const char *topic = (const char *)m->data;
        wsc__deliver_now(m->ep, wsc__topic_find(m->ep, topic), true, m->opcode,
                         m->data + m->code + 1, m->len);
        free(m);
        return;
    }
    case WSC__X_ADOPT:
        if (atomic_load(&m->ep->stopping))
            evutil_closesocket(m->code);
        else /* out of memory, it answers 503 (plain) and closes */
            wsc__server_adopt(m->ep, m->code, (const struct sockaddr *)(void *)m->data,
                              m->tls);
        free(m);
        return;
    case WSC__X_STOP:
        wsc__worker_stop(m->ep);
        free(m);
        return;
    default:
        break;
    }
    switch (m->kind) {
    case WSC__X_SEND:
        /* Admitted when posted, so no second cap check. Closed meanwhile:
         * dropped, as if lost with the connection, and counted. */
        if (wsc__conn_send_now(c, m->opcode, m->data, m->len) != 0)
            atomic_fetch_add_explicit(&c->loop->dropped, 1, memory_order_relaxed);
        /* The reservation ends once the bytes are queued (and counted). */
        atomic_fetch_sub_explicit(&c->xqueued, wsc__conn_reservation(c, m->len),
                                  memory_order_relaxed);
        break;
    case WSC__X_PING:
        wsc__conn_send_now(c, m->opcode, m->data, m->len);
        break;
    case WSC__X_SLOW:
        wsc__conn_close_slow(c);
        break;
    case WSC__X_CLOSE:
        wsc__conn_close_now(c, m->code, (const char *)m->data, m->len);
        break;
    case WSC__X_BUDGET: /* the loop's output may have fallen already */
        if (c->fd >= 0)
            wsc__conn_budget_drained(c->ep);
        break;
    case WSC__X_PAUSE:
        if (c->fd >= 0)
            wsc__io_set_app_paused(c, true);
        break;
    case WSC__X_RESUME:
        if (c->fd >= 0)
            wsc__io_set_app_paused(c, false);
        break;
    default:
        break;
    }
    ws_conn_unref(c);
    free(m);
}

static void loop_on_wake(evutil_socket_t fd, short what, void *arg)
{
    struct wsc__loop *loop = arg;
    struct wsc__xmsg *batch;

    (void)fd;
    (void)what;
    wsc__loop_enter(loop);
    pthread_mutex_lock(&loop->lock);
    batch = loop->head;
    loop->head = loop->tail = NULL;
    loop->wake_pending = false;
    pthread_mutex_unlock(&loop->lock);

    /* Consecutive sends to one connection leave in one write: cork it
     * until the batch moves on to another. */
    while (batch != NULL) {
        struct wsc__xmsg *next = batch->next;
        /* Only a live connection: its release takes it out of the cork,
         * while a released one may be freed by this very message. */
        if (batch->conn != NULL && batch->kind <= WSC__X_CLOSE && batch->conn->fd >= 0)
            wsc__io_cork(batch->conn);
        loop_deliver(batch);
        batch = next;
    }
    wsc__io_uncork();
}

static void id_grow(struct wsc__loop *loop);

struct wsc__loop *wsc__loop_new(struct event_base *base, const struct ws_config *cfg,
                                unsigned index)
{
    struct wsc__loop *loop = calloc(1, sizeof(*loop));

    if (loop == NULL)
        return NULL;
    atomic_init(&loop->refs, 1);
    loop->base = base;
    atomic_init(&loop->owner, NULL);
    atomic_init(&loop->buffered, 0);
    atomic_init(&loop->dropped, 0);
    atomic_init(&loop->budget_waiting, false);
    loop->index = (uint8_t)index;
    loop->max_buffered = cfg->max_buffered;
    loop->close_slow = cfg->close_slow_consumers != 0;
    if (pthread_mutex_init(&loop->lock, NULL) != 0) {
        free(loop);
        return NULL;
    }
    loop->watch_fd = -1;
    loop->wake = event_new(base, -1, EV_PERSIST, loop_on_wake, loop);
    /* The id table exists before any connection: a later growth that
     * fails only lengthens chains, but with no table at all a connection
     * could not be entered and ws_server_send_to() would not find it. */
    id_grow(loop);
    if (loop->wake == NULL || loop->id_buckets == 0 || wsc__timers_init(loop) != 0 ||
        wsc__watch_init(loop) != 0) {
        if (loop->wake != NULL)
            event_free(loop->wake);
        wsc__timers_free(loop);
        free(loop->ids);
        free(loop->watch_batch);
        pthread_mutex_destroy(&loop->lock);
        free(loop);
        return NULL;
    }
    return loop;
}

/* Drop queued messages: they still hold connection references. */
static void loop_drop_queue(struct wsc__xmsg *m)
{
    while (m != NULL) {
        struct wsc__xmsg *next = m->next;
        if (m->kind == WSC__X_ADOPT)
            evutil_closesocket(m->code); /* a socket nobody took */
        if (m->kind == WSC__X_SEND && m->conn != NULL)
            atomic_fetch_add_explicit(&m->conn->loop->dropped, 1, memory_order_relaxed);
        ws_conn_unref(m->conn); /* NULL for broadcasts: ignored */
        free(m);
        m = next;
    }
}

void wsc__loop_kill(struct wsc__loop *loop)
{
    struct wsc__xmsg *m;

    pthread_mutex_lock(&loop->lock);
    loop->dead = true;
    m = loop->head;
    loop->head = loop->tail = NULL;
    if (loop->wake != NULL)
        event_free(loop->wake);
    loop->wake = NULL;
    free(loop->ids);
    loop->ids = NULL;
    loop->id_buckets = loop->num_ids = 0;
    pthread_mutex_unlock(&loop->lock);
    wsc__timers_free(loop); /* loop thread state: no lock */
    wsc__watch_free(loop);
    loop_drop_queue(m);
}

void wsc__loop_ref(struct wsc__loop *loop)
{
    atomic_fetch_add_explicit(&loop->refs, 1, memory_order_relaxed);
}

void wsc__loop_unref(struct wsc__loop *loop)
{
    if (loop != NULL && atomic_fetch_sub_explicit(&loop->refs, 1, memory_order_acq_rel) == 1) {
        pthread_mutex_destroy(&loop->lock);
        free(loop->watch_batch);
        free(loop);
    }
}

_Thread_local char wsc__thread_tag __attribute__((tls_model("initial-exec")));

void wsc__loop_mark_owner(struct wsc__loop *loop)
{
    atomic_store_explicit(&loop->owner, &wsc__thread_tag, memory_order_release);
}

int wsc__loop_post(struct wsc__loop *loop, struct wsc__xmsg *m)
{
    bool wake;

    m->next = NULL;
    pthread_mutex_lock(&loop->lock);
    if (loop->dead) {
        pthread_mutex_unlock(&loop->lock);
        loop_drop_queue(m);
        return WS_ECLOSED;
    }
    if (loop->tail != NULL)
        loop->tail->next = m;
    else
        loop->head = m;
    loop->tail = m;
    wake = !loop->wake_pending;
    loop->wake_pending = true;
    /* Activate under the lock: the loop cannot free the event meanwhile. */
    if (wake)
        event_active(loop->wake, EV_READ, 0);
    pthread_mutex_unlock(&loop->lock);
    return 0;
}

/* ---- the id table ---------------------------------------------------------- */

/* Fibonacci hashing of the sequence part of the id (the low byte is the
 * worker number, the same for every id of this loop). */
static size_t id_slot(size_t buckets, uint64_t id)
{
    return (size_t)(((id >> 8) * 0x9E3779B97F4A7C15ull) >> 32) & (buckets - 1);
}

static void id_grow(struct wsc__loop *loop)
{
    size_t n = loop->id_buckets ? loop->id_buckets * 2 : 64;
    struct ws_conn **t = calloc(n, sizeof(*t));

    if (t == NULL)
        return; /* chains just get longer */
    for (size_t i = 0; i < loop->id_buckets; i++) {
        struct ws_conn *c = loop->ids[i], *next;
        for (; c != NULL; c = next) {
            size_t k = id_slot(n, c->id);
            next = c->id_next;
            c->id_next = t[k];
            t[k] = c;
        }
    }
    free(loop->ids);
    loop->ids = t;
    loop->id_buckets = n;
}

void wsc__loop_add_id(struct wsc__loop *loop, struct ws_conn *c)
{
    size_t k;

    pthread_mutex_lock(&loop->lock);
    /* Two per bucket on average: half the table an idle connection pays
     * for (8 bytes a bucket), for one more step of a short chain. */
    if (!loop->dead && loop->num_ids >= 2 * loop->id_buckets)
        id_grow(loop);
    if (!loop->dead && loop->id_buckets > 0) {
        k = id_slot(loop->id_buckets, c->id);
        c->id_next = loop->ids[k];
        loop->ids[k] = c;
        loop->num_ids++;
    }
    pthread_mutex_unlock(&loop->lock);
}

void wsc__loop_remove_id(struct wsc__loop *loop, struct ws_conn *c)
{
    pthread_mutex_lock(&loop->lock);
    if (loop->id_buckets > 0) {
        struct ws_conn **pp = &loop->ids[id_slot(loop->id_buckets, c->id)];
        while (*pp != NULL && *pp != c)
            pp = &(*pp)->id_next;
        if (*pp == c) {
            *pp = c->id_next;
            loop->num_ids--;
        }
    }
    c->id_next = NULL;
    pthread_mutex_unlock(&loop->lock);
}

struct ws_conn *wsc__loop_find_id(struct wsc__loop *loop, uint64_t id)
{
    struct ws_conn *c = NULL;

    pthread_mutex_lock(&loop->lock);
    if (loop->id_buckets > 0) {
        for (c = loop->ids[id_slot(loop->id_buckets, id)]; c != NULL && c->id != id; c = c->id_next)
            ;
        if (c != NULL)
            ws_conn_ref(c); /* under the lock: its release waits for us */
    }
    pthread_mutex_unlock(&loop->lock);
    return c;
}
