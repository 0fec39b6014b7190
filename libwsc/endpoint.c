/*
 * endpoint.c - what servers and clients share: one-time library setup,
 * connection ids, and the endpoint (options, loop, callbacks, the list of
 * live connections, shared zlib streams).
 */
#include <signal.h>
#include <stdlib.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "internal.h"

static pthread_once_t lib_once = PTHREAD_ONCE_INIT;
static int lib_init_rc;
static _Atomic uint64_t conn_ids = 1;
static _Atomic unsigned live_endpoints;

static void lib_init(void)
{
    struct sigaction old;

    /* Cross-thread wake-ups need libevent's locks and notification fds. */
    lib_init_rc = evthread_use_pthreads();
    /* A peer that vanishes must not kill the process with SIGPIPE while a
     * connection writes; only touch the default disposition. */
    if (sigaction(SIGPIPE, NULL, &old) == 0 && old.sa_handler == SIG_DFL)
        signal(SIGPIPE, SIG_IGN);
}

int wsc__library_init(void)
{
    pthread_once(&lib_once, lib_init);
    return lib_init_rc;
}

/* The low byte names the loop (worker) the connection lives on, so an id
 * alone routes ws_server_send_to() to the right loop without a global
 * table or lock. */
uint64_t wsc__next_conn_id(unsigned index)
{
    return (atomic_fetch_add_explicit(&conn_ids, 1, memory_order_relaxed) << 8) | (index & 0xff);
}

int wsc__endpoint_init(struct wsc__endpoint *ep, const struct ws_config *cfg,
                       struct event_base *base, unsigned index, unsigned nloops)
{
    if (cfg != NULL)
        ep->cfg = *cfg;
    else
        wsc__config_defaults(&ep->cfg);
    ep->cfg.base = base;
    atomic_init(&ep->stopping, 0);
    /* Server-wide limits are shared out between the loops. */
    ep->max_pending = ep->cfg.max_pending == 0 ? 0 : (ep->cfg.max_pending + nloops - 1) / nloops;
    ep->hdr_scratch = calloc(ep->cfg.max_headers, sizeof(*ep->hdr_scratch));
    if (ep->hdr_scratch == NULL)
        return WS_ENOMEM;
    ep->loop = wsc__loop_new(base, &ep->cfg, index);
    if (ep->loop == NULL) {
        free(ep->hdr_scratch);
        return WS_EEVENT;
    }
    ep->loop->budget = ep->cfg.max_buffered_total / nloops;
    ep->flush_ev = event_new(base, -1, 0, wsc__io_flush_queued, ep);
    if (ep->flush_ev == NULL) {
        wsc__loop_kill(ep->loop);
        wsc__loop_unref(ep->loop);
        free(ep->hdr_scratch);
        return WS_EEVENT;
    }
    atomic_fetch_add(&live_endpoints, 1);
    return 0;
}

void wsc__endpoint_destroy(struct wsc__endpoint *ep)
{
    /* No callbacks from here on: the application is tearing down. */
    atomic_store(&ep->stopping, 0);
    ep->on_released = NULL;
    ep->on_drain = NULL;
    atomic_store(&ep->loop->budget_waiting, false);
    while (ep->pending_head != NULL)
        wsc__conn_abort(ep->pending_head);
    while (ep->conns != NULL)
        wsc__conn_abort(ep->conns);
    /* Referenced connections keep the loop object; it refuses posts now. */
    wsc__loop_kill(ep->loop);
    wsc__loop_unref(ep->loop);
    ep->loop = NULL;
    for (size_t i = 0; i < ep->num_queued; i++)
        ws_conn_unref(ep->queued[i].conn); /* released above (their frames
                                              dropped); the shells go now */
    free(ep->queued);
    free(ep->qitems);
    if (ep->flush_ev != NULL)
        event_free(ep->flush_ev);
    wsc__topics_free(ep);
    wsc__inflater_free(ep->shared_inflater);
    wsc__deflater_free(ep->shared_deflater);
    free(ep->zbuf);
    free(ep->hdr_scratch);
    /* Worker threads free their read and cork buffers as they exit; the
     * thread that frees the last endpoint frees its own here. */
    if (atomic_fetch_sub(&live_endpoints, 1) == 1)
        wsc__io_thread_cleanup();
}

/* A connection is on one of the endpoint's two lists at a time (open, or
 * pending: still in its handshake), through the same links. Take it off
 * the list with this head (and tail, for the list that keeps one). */
static void list_remove(struct ws_conn **head, struct ws_conn **tail, struct ws_conn *c)
{
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        *head = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    else if (tail != NULL)
        *tail = c->prev;
    c->prev = c->next = NULL;
}

static void open_push(struct wsc__endpoint *ep, struct ws_conn *c)
{
    c->prev = NULL;
    c->next = ep->conns;
    if (ep->conns != NULL)
        ep->conns->prev = c;
    ep->conns = c;
}

static void pending_leave(struct wsc__endpoint *ep, struct ws_conn *c)
{
    list_remove(&ep->pending_head, &ep->pending_tail, c);
    c->pending = false;
    ep->num_pending--;
}

void wsc__endpoint_link(struct wsc__endpoint *ep, struct ws_conn *c)
{
    open_push(ep, c);
    ep->num_live++;
}

void wsc__endpoint_add_pending(struct wsc__endpoint *ep, struct ws_conn *c)
{
    /* Shed the oldest half-open socket rather than refuse the newcomer:
     * a slowloris holding the cap cannot lock real clients out. */
    if (ep->max_pending > 0 && ep->num_pending >= ep->max_pending && ep->pending_head != NULL)
        wsc__conn_abort(ep->pending_head);
    c->pending = true;
    c->next = NULL;
    c->prev = ep->pending_tail;
    if (ep->pending_tail != NULL)
        ep->pending_tail->next = c;
    else
        ep->pending_head = c;
    ep->pending_tail = c;
    ep->num_pending++;
    ep->num_live++;
}

void wsc__endpoint_promote(struct wsc__endpoint *ep, struct ws_conn *c)
{
    if (c->pending) {
        pending_leave(ep, c);
        open_push(ep, c);
    }
}

void wsc__endpoint_unlink(struct wsc__endpoint *ep, struct ws_conn *c)
{
    if (c->pending)
        pending_leave(ep, c);
    else
        list_remove(&ep->conns, NULL, c);
    ep->num_live--;
    if (ep->on_released != NULL)
        ep->on_released(ep, c);
}

static void shutdown_list(struct ws_conn *c)
{
    struct ws_conn *next;

    for (; c != NULL; c = next) {
        next = c->next; /* shutdown may unlink c */
        wsc__conn_shutdown(c);
    }
}

void wsc__endpoint_shutdown_all(struct wsc__endpoint *ep)
{
    shutdown_list(ep->pending_head); /* dropped */
    shutdown_list(ep->conns);        /* sent 1001 */
}
