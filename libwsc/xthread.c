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
        else /* on failure wsc__conn_new closes the socket itself */
            wsc__conn_new(m->ep, m->code, (const struct sockaddr *)(void *)m->data);
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
        atomic_fetch_sub_explicit(&c->xqueued, m->len, memory_order_relaxed);
        /* fall through: admitted when posted, so no second cap check */
    case WSC__X_PING:
        /* Closed meanwhile: dropped, as if lost with the connection. */
        wsc__conn_send_now(c, m->opcode, m->data, m->len);
        break;
    case WSC__X_SLOW:
        wsc__conn_close_slow(c);
        break;
    case WSC__X_CLOSE:
        wsc__conn_close_now(c, m->code, (const char *)m->data, m->len);
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

int wsc__loop_init(struct wsc__loop *loop, struct event_base *base)
{
    loop->base = base;
    atomic_init(&loop->owner, NULL);
    loop->head = loop->tail = NULL;
    loop->wake_pending = false;
    if (pthread_mutex_init(&loop->lock, NULL) != 0)
        return WS_ENOMEM;
    loop->wake = event_new(base, -1, EV_PERSIST, loop_on_wake, loop);
    if (loop->wake == NULL) {
        pthread_mutex_destroy(&loop->lock);
        return WS_EEVENT;
    }
    return 0;
}

void wsc__loop_destroy(struct wsc__loop *loop)
{
    struct wsc__xmsg *m = loop->head;

    /* Messages nobody delivered still hold connection references. */
    while (m != NULL) {
        struct wsc__xmsg *next = m->next;
        if (m->kind == WSC__X_ADOPT)
            evutil_closesocket(m->code); /* a socket nobody took */
        ws_conn_unref(m->conn); /* NULL for broadcasts: ignored */
        free(m);
        m = next;
    }
    loop->head = loop->tail = NULL;
    if (loop->wake != NULL)
        event_free(loop->wake);
    loop->wake = NULL;
    pthread_mutex_destroy(&loop->lock);
}

_Thread_local char wsc__thread_tag __attribute__((tls_model("initial-exec")));

void wsc__loop_mark_owner(struct wsc__loop *loop)
{
    atomic_store_explicit(&loop->owner, &wsc__thread_tag, memory_order_release);
}

void wsc__loop_post(struct wsc__loop *loop, struct wsc__xmsg *m)
{
    bool wake;

    m->next = NULL;
    pthread_mutex_lock(&loop->lock);
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
}
