/*
 * watch.c - which connections have input to read.
 *
 * On Linux each loop keeps its connections' sockets in an epoll set of its
 * own, which libevent watches as one descriptor: a connection then costs
 * no struct event (128 bytes) and no entry in libevent's descriptor map, a
 * fifth of what an idle connection used to cost (issue 14). When the set
 * is readable, one epoll_wait() takes up to WATCH_BATCH ready sockets and
 * io.c reads each.
 *
 * A plain socket whose reads drain it is edge-triggered: the kernel polls
 * a ready socket once per arrival, where level-triggered (libevent,
 * uWebSockets) polls it again on the next pass to find it drained, about
 * 3 % of the server's CPU when every pass reads a few bytes from many
 * sockets. A FIN or reset reported beside data (EPOLLRDHUP, EPOLLHUP,
 * EPOLLERR) is kicked here, since no further edge would announce what the
 * read leaves behind. A socket whose last read filled the buffer (a bulk
 * sender, io.c sets bulk_reader) is level-triggered until a read drains it
 * again: the next pass finds it as before, with no kick per read (kicks
 * that replace the poll make the loop flush replies in smaller writes,
 * 20 % less throughput under tcpkali's 16 KiB flood). EPOLL_CTL_MOD
 * switches it and reports it at once if it is readable, as adding a paused
 * socket back does. TLS sockets stay level-triggered: OpenSSL takes bytes
 * from the socket a record at a time.
 *
 * Elsewhere, or with ./configure --disable-epoll, a connection gets a
 * libevent read event of its own, made when it is first watched and kept
 * through pauses until its socket closes.
 *
 * Either way wsc__watch_kick() runs the read handler on the next pass with
 * nothing new on the socket (a stash to handle, bytes OpenSSL holds, the
 * end of a stream reported beside data): the loop keeps a queue of such
 * connections behind one libevent timeout of zero, which runs after the
 * next poll.
 */
#include "internal.h"

#include <stdlib.h>
#include <unistd.h>

#include <event2/event.h>

#if WSC__USE_EPOLL
#include <sys/epoll.h>
#endif

#define WATCH_BATCH 256

/* ---- kicks: read once more without a socket event -------------------------- */

static void watch_on_kick(evutil_socket_t fd, short what, void *arg)
{
    struct wsc__loop *loop = arg;
    struct ws_conn **q = loop->kicked;
    size_t n = loop->kicked_len, cap = loop->kicked_cap;

    (void)fd;
    (void)what;
    /* Take the queue: a handler may kick again, for the next pass. */
    loop->kicked = NULL;
    loop->kicked_len = loop->kicked_cap = 0;
    for (size_t i = 0; i < n; i++) {
        struct ws_conn *c = q[i];
        if (c->kicked) { /* else a pause or the release took it back */
            c->kicked = false;
            if (c->fd >= 0)
                wsc__io_on_readable(c);
        }
        ws_conn_unref(c);
    }
    if (loop->kicked == NULL && loop->kick_ev != NULL) { /* keep the array */
        loop->kicked = q;
        loop->kicked_cap = cap;
    } else {
        free(q);
    }
}

void wsc__watch_kick(struct ws_conn *c)
{
    struct wsc__loop *loop = c->loop;

    if (c->kicked || c->fd < 0 || loop->kick_ev == NULL)
        return;
    if (loop->kicked_len == loop->kicked_cap) {
        size_t cap = loop->kicked_cap ? loop->kicked_cap * 2 : 16;
        struct ws_conn **q = realloc(loop->kicked, cap * sizeof(*q));
        if (q == NULL) {
            /* Input that no socket event may ever announce (a stash, bytes
             * OpenSSL holds) would wait unseen: fail the connection rather
             * than stall it. */
            wsc__io_fail(c);
            return;
        }
        loop->kicked = q;
        loop->kicked_cap = cap;
    }
    ws_conn_ref(c);
    c->kicked = true;
    loop->kicked[loop->kicked_len++] = c;
    /* A zero timeout, not event_active(): libevent runs events activated
     * during its pass in that same pass, so a connection that kicks itself
     * on every read (a sender faster than we read, edge-triggered) would
     * keep the loop from ever polling again: no writes flushed, no timers,
     * no other socket. A timeout fires after the next poll. */
    if (loop->kicked_len == 1) {
        static const struct timeval next_pass = {0, 0};
        event_add(loop->kick_ev, &next_pass);
    }
}

/* ---- the descriptor set ----------------------------------------------------- */

#if WSC__USE_EPOLL

/* The batch being dispatched: a connection that stops being watched while
 * it waits in it (paused or released by an earlier one's callback) is
 * taken out, as libevent would skip an event deleted while active. */
static void watch_forget(struct ws_conn *c)
{
    struct wsc__loop *loop = c->loop;
    struct epoll_event *ev = loop->watch_batch;

    for (int i = loop->watch_next; i < loop->watch_len; i++)
        if (ev[i].data.ptr == c)
            ev[i].data.ptr = NULL;
}

static bool watch_level(const struct ws_conn *c)
{
    return c->ssl != NULL || c->bulk_reader;
}

static uint32_t watch_events(const struct ws_conn *c)
{
    return watch_level(c) ? EPOLLIN : EPOLLIN | EPOLLRDHUP | EPOLLET;
}

static void watch_on_ready(evutil_socket_t fd, short what, void *arg)
{
    struct wsc__loop *loop = arg;
    struct epoll_event *ev = loop->watch_batch;
    int n;

    (void)what;
    n = epoll_wait(fd, ev, WATCH_BATCH, 0);
    if (n <= 0)
        return;
    wsc__loop_ref(loop); /* its batch array outlives anything a callback frees */
    loop->watch_len = n;
    for (loop->watch_next = 0; loop->watch_next < n;) {
        uint32_t what_now = ev[loop->watch_next].events;
        struct ws_conn *c = ev[loop->watch_next++].data.ptr;
        if (c == NULL || c->fd < 0)
            continue;
        /* The read below may take the data and leave the end of the
         * stream unread: read once more, on the next pass. */
        if ((what_now & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) && !watch_level(c))
            wsc__watch_kick(c);
        wsc__io_on_readable(c);
        if (loop->dead)
            break;
    }
    loop->watch_len = loop->watch_next = 0;
    wsc__loop_unref(loop);
}

int wsc__watch_init(struct wsc__loop *loop)
{
    loop->watch_fd = epoll_create1(EPOLL_CLOEXEC);
    loop->watch_batch = malloc(WATCH_BATCH * sizeof(struct epoll_event));
    loop->kick_ev = event_new(loop->base, -1, 0, watch_on_kick, loop);
    if (loop->watch_fd >= 0 && loop->watch_batch != NULL && loop->kick_ev != NULL) {
        loop->watch_ev =
            event_new(loop->base, loop->watch_fd, EV_READ | EV_PERSIST, watch_on_ready, loop);
        if (loop->watch_ev != NULL && event_add(loop->watch_ev, NULL) == 0)
            return 0;
    }
    wsc__watch_free(loop);
    return -1;
}

int wsc__watch_start(struct ws_conn *c)
{
    struct epoll_event ev = {.events = watch_events(c), .data.ptr = c};

    if (c->watched)
        return 0;
    if (epoll_ctl(c->loop->watch_fd, EPOLL_CTL_ADD, c->fd, &ev) != 0)
        return WS_EEVENT;
    c->watched = true;
    return 0;
}

void wsc__watch_rearm(struct ws_conn *c)
{
    struct epoll_event ev = {.events = watch_events(c), .data.ptr = c};

    /* MOD reports the socket again if it is readable: nothing is missed. */
    if (c->watched && epoll_ctl(c->loop->watch_fd, EPOLL_CTL_MOD, c->fd, &ev) != 0)
        wsc__io_fail(c);
}

void wsc__watch_stop(struct ws_conn *c)
{
    if (c->kicked)
        c->kicked = false; /* the queue still holds its reference */
    if (!c->watched)
        return;
    epoll_ctl(c->loop->watch_fd, EPOLL_CTL_DEL, c->fd, NULL);
    c->watched = false;
    watch_forget(c);
}

void wsc__watch_release(struct ws_conn *c)
{
    wsc__watch_stop(c);
}

#else /* one libevent read event per watched connection */

static void watch_on_readable(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    wsc__io_on_readable(arg);
}

int wsc__watch_init(struct wsc__loop *loop)
{
    loop->watch_fd = -1;
    loop->kick_ev = event_new(loop->base, -1, 0, watch_on_kick, loop);
    return loop->kick_ev != NULL ? 0 : -1;
}

int wsc__watch_start(struct ws_conn *c)
{
    if (c->watched)
        return 0;
    if (c->rev == NULL) {
        c->rev = event_new(c->loop->base, c->fd, EV_READ | EV_PERSIST, watch_on_readable, c);
        if (c->rev == NULL)
            return WS_ENOMEM;
    }
    if (event_add(c->rev, NULL) != 0)
        return WS_EEVENT;
    c->watched = true;
    return 0;
}

void wsc__watch_rearm(struct ws_conn *c)
{
    (void)c; /* libevent's events are level-triggered already */
}

/* A pause keeps the event (a connection under backpressure pauses and
 * resumes often); the release frees it. */
void wsc__watch_stop(struct ws_conn *c)
{
    if (c->kicked)
        c->kicked = false;
    if (c->watched)
        event_del(c->rev); /* an activation waiting is dropped too */
    c->watched = false;
}

void wsc__watch_release(struct ws_conn *c)
{
    wsc__watch_stop(c);
    if (c->rev != NULL) {
        event_free(c->rev);
        c->rev = NULL;
    }
}

#endif

void wsc__watch_free(struct wsc__loop *loop)
{
    if (loop->watch_ev != NULL)
        event_free(loop->watch_ev);
    loop->watch_ev = NULL;
    if (loop->kick_ev != NULL)
        event_free(loop->kick_ev);
    loop->kick_ev = NULL;
    if (loop->watch_fd >= 0)
        close(loop->watch_fd);
    loop->watch_fd = -1;
    /* The batch array stays until the loop struct goes (a dispatch may
     * still be walking it); queued kicks hold connection references. */
    for (size_t i = 0; i < loop->kicked_len; i++) {
        loop->kicked[i]->kicked = false;
        ws_conn_unref(loop->kicked[i]);
    }
    free(loop->kicked);
    loop->kicked = NULL;
    loop->kicked_len = loop->kicked_cap = 0;
}
