/*
 * server.c - listeners, accepting, the loop's lifecycle and graceful stop.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <event2/event.h>
#include <event2/listener.h>
#include <event2/thread.h>
#include <event2/util.h>

#include "internal.h"

/* How long accepting pauses when the process is out of descriptors. */
#define WSC__ACCEPT_PAUSE_MS 200

static void server_finish(struct ws_server *srv);

static void server_on_released(struct wsc__endpoint *ep, struct ws_conn *c)
{
    (void)c;
    if (atomic_load(&ep->stopping) && ep->num_live == 0)
        server_finish(wsc__server_of(ep));
}

/* ---- accepting ----------------------------------------------------------- */

static struct wsc__endpoint *server_worker(struct ws_server *srv, unsigned i)
{
    return i == 0 ? &srv->ep : &srv->workers[i - 1].ep;
}

/* The 503 of a server that is full or stopping (conn_http.c) and of a
 * socket turned away at accept, which must be sent without allocating.
 * A unit test keeps it what wsc__response_simple would format. */
const char wsc__http_503_retry[] = "HTTP/1.1 503 Service Unavailable\r\n"
                                   "Content-Type: text/plain\r\n"
                                   "Content-Length: 20\r\n"
                                   "Connection: close\r\n"
                                   "Retry-After: 1\r\n"
                                   "\r\n"
                                   "Service Unavailable\n";

/* Reads of what the peer already sent before closing: a request head
 * (max_head_size is 8 KiB by default) takes two or three. */
#define WSC__TURN_AWAY_READS 16

/* An accepted socket that could not become a connection (no memory for it,
 * or its socket could not be watched).
 * A plain one gets its 503 with no allocation: the fresh socket's send
 * buffer is empty, so one non-blocking send takes it whole. Then
 * half-close and discard what the peer already sent, so that close does
 * not answer unread input with a RST that could destroy the 503 before
 * the peer reads it. Best effort: a request arriving after the close can
 * still get that RST. A TLS peer is just closed: plaintext is garbage to
 * it, and a TLS alert would need an SSL, that is memory. */
static void server_turn_away(evutil_socket_t fd, const struct wsc__tls_listener *l)
{
    char sink[4096];

    if (l == NULL && send(fd, wsc__http_503_retry, sizeof(wsc__http_503_retry) - 1,
                          MSG_NOSIGNAL | MSG_DONTWAIT) > 0) {
        shutdown(fd, SHUT_WR);
        for (int i = 0; i < WSC__TURN_AWAY_READS; i++)
            if (recv(fd, sink, sizeof(sink), MSG_DONTWAIT) <= 0)
                break;
    }
    evutil_closesocket(fd);
}

/* A worker takes an accepted socket; a TLS listener's gets its SSL here. */
void wsc__server_adopt(struct wsc__endpoint *ep, evutil_socket_t fd,
                       const struct sockaddr *sa, struct wsc__tls_listener *l)
{
    struct ws_conn *c = wsc__conn_new(ep, fd, sa);

    if (c == NULL)
        server_turn_away(fd, l);
    else if (l != NULL && wsc__tls_server_attach(c, l) != 0)
        wsc__conn_abort(c);
}

/* One acceptor deals sockets out in turn: exact balance, and it works with
 * any listener (port 0 included), unlike SO_REUSEPORT's hashing. */
static void server_hand_out(struct ws_server *srv, evutil_socket_t fd,
                            const struct sockaddr *sa, int salen,
                            struct wsc__tls_listener *tls)
{
    unsigned i = srv->next_worker++ % srv->nworkers;
    struct wsc__xmsg *m;

    if (i == 0 || salen <= 0) {
        wsc__server_adopt(&srv->ep, fd, sa, tls);
        return;
    }
    m = malloc(sizeof(*m) + (size_t)salen);
    if (m == NULL) {
        server_turn_away(fd, tls);
        return;
    }
    m->kind = WSC__X_ADOPT;
    m->code = fd;
    m->conn = NULL;
    m->tls = tls;
    m->ep = server_worker(srv, i);
    m->len = (size_t)salen;
    memcpy(m->data, sa, (size_t)salen);
    wsc__loop_post(m->ep->loop, m);
}

/* The TLS options of listener l (NULL: a plain one). */
static struct wsc__tls_listener *server_listener_tls(struct ws_server *srv,
                                                     struct evconnlistener *l)
{
    for (size_t i = 0; srv->listener_tls != NULL && i < srv->num_listeners; i++)
        if (srv->listeners[i] == l)
            return srv->listener_tls[i];
    return NULL;
}

static void server_on_accept(struct evconnlistener *l, evutil_socket_t fd,
                             struct sockaddr *sa, int salen, void *arg)
{
    struct ws_server *srv = arg;
    int one = 1;

    wsc__loop_enter(srv->ep.loop);
    if (atomic_load(&srv->ep.stopping)) {
        evutil_closesocket(fd);
        return;
    }
    /* Small frames (pings, RTT probes, chat) must not wait for Nagle. */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    server_hand_out(srv, fd, sa, salen, server_listener_tls(srv, l));
}

static void server_on_resume(evutil_socket_t fd, short what, void *arg)
{
    struct ws_server *srv = arg;

    (void)fd;
    (void)what;
    for (size_t i = 0; i < srv->num_listeners; i++)
        evconnlistener_enable(srv->listeners[i]);
}

static void server_on_accept_error(struct evconnlistener *l, void *arg)
{
    struct ws_server *srv = arg;
    int err = EVUTIL_SOCKET_ERROR();

    (void)l;
    /* Out of descriptors: accept() would fail in a busy loop. Pause. */
    if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
        struct timeval tv = { 0, WSC__ACCEPT_PAUSE_MS * 1000 };
        for (size_t i = 0; i < srv->num_listeners; i++)
            evconnlistener_disable(srv->listeners[i]);
        evtimer_add(srv->resume_ev, &tv);
    }
}

/* Split "host:port", "[v6]:port" or ":port". */
static int split_addr(const char *addr, char *host, size_t hostlen, char *port,
                      size_t portlen)
{
    const char *colon, *h = addr, *hend;

    if (addr[0] == '[') {
        hend = strchr(addr, ']');
        if (hend == NULL || hend[1] != ':')
            return WS_EADDR;
        h = addr + 1;
        colon = hend + 1;
    } else {
        colon = strrchr(addr, ':');
        if (colon == NULL)
            return WS_EADDR;
        hend = colon;
    }
    if ((size_t)(hend - h) >= hostlen || strlen(colon + 1) >= portlen ||
        colon[1] == '\0' || strspn(colon + 1, "0123456789") != strlen(colon + 1) ||
        atoi(colon + 1) > 65535)
        return WS_EADDR;
    memcpy(host, h, (size_t)(hend - h));
    host[hend - h] = '\0';
    strcpy(port, colon + 1);
    return 0;
}

static int bound_port(evutil_socket_t fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);

    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
        return WS_ELISTEN;
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)(void *)&ss)->sin6_port);
    return ntohs(((struct sockaddr_in *)(void *)&ss)->sin_port);
}

int ws_server_listen(struct ws_server *srv, const char *addr)
{
    return wsc__server_listen(srv, addr, 0, NULL);
}

int ws_server_listen_opts(struct ws_server *srv, const char *addr, unsigned opts)
{
    return wsc__server_listen(srv, addr, opts, NULL);
}

int wsc__server_listen(struct ws_server *srv, const char *addr, unsigned opts,
                       struct wsc__tls_listener *tls)
{
    char host[256], port[8];
    struct addrinfo hints = { 0 }, *res = NULL;
    struct evconnlistener *l, **grown;
    unsigned flags = LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC;

    if (srv == NULL || addr == NULL ||
        (opts & ~(unsigned)(WS_LISTEN_PROXY_PROTOCOL | WS_LISTEN_REUSEPORT)) != 0)
        return WS_EINVAL;
    if (opts & WS_LISTEN_REUSEPORT)
        flags |= LEV_OPT_REUSEABLE_PORT;
    if (atomic_load(&srv->ep.stopping))
        return WS_ESTATE;
    if (split_addr(addr, host, sizeof(host), port, sizeof(port)) != 0)
        return WS_EADDR;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    if (getaddrinfo(host[0] != '\0' ? host : "0.0.0.0", port, &hints, &res) != 0)
        return WS_EADDR;
    grown = realloc(srv->listeners, (srv->num_listeners + 1) * sizeof(*grown));
    if (grown == NULL) {
        freeaddrinfo(res);
        return WS_ENOMEM;
    }
    srv->listeners = grown;
    if (tls != NULL || srv->listener_tls != NULL) { /* parallel to listeners */
        struct wsc__tls_listener **t =
            realloc(srv->listener_tls, (srv->num_listeners + 1) * sizeof(*t));
        if (t == NULL) {
            freeaddrinfo(res);
            return WS_ENOMEM;
        }
        if (srv->listener_tls == NULL)
            memset(t, 0, srv->num_listeners * sizeof(*t));
        srv->listener_tls = t;
        t[srv->num_listeners] = tls;
    }
    l = evconnlistener_new_bind(srv->ep.loop->base, server_on_accept, srv, flags, 511,
                                res->ai_addr, (int)res->ai_addrlen);
    freeaddrinfo(res);
    if (l == NULL)
        return WS_ELISTEN;
    evconnlistener_set_error_cb(l, server_on_accept_error);
    /* Not kept on failure: a TLS listener's options are freed by the caller. */
    if ((opts & WS_LISTEN_PROXY_PROTOCOL) &&
        wsc__proxy_listener_add(srv, evconnlistener_get_fd(l)) != 0) {
        evconnlistener_free(l);
        return WS_ENOMEM;
    }
    srv->listeners[srv->num_listeners++] = l;
    return bound_port(evconnlistener_get_fd(l));
}

/* ---- lifecycle ----------------------------------------------------------- */

static void server_close_listeners(struct ws_server *srv)
{
    for (size_t i = 0; i < srv->num_listeners; i++)
        evconnlistener_free(srv->listeners[i]);
    free(srv->listeners);
    srv->listeners = NULL;
    free(srv->listener_tls);
    srv->listener_tls = NULL;
    srv->num_listeners = 0;
}

static void server_remove_signals(struct ws_server *srv)
{
    if (srv->sig_int != NULL)
        event_free(srv->sig_int);
    if (srv->sig_term != NULL)
        event_free(srv->sig_term);
    srv->sig_int = srv->sig_term = NULL;
}

/* Every connection is gone after a stop: let the loop end. */
static void server_finish(struct ws_server *srv)
{
    server_remove_signals(srv);
    evtimer_del(srv->resume_ev);
    if (srv->own_base)
        event_base_loopexit(srv->ep.loop->base, NULL);
}

static void server_on_stop(evutil_socket_t fd, short what, void *arg)
{
    struct ws_server *srv = arg;

    (void)fd;
    (void)what;
    wsc__loop_enter(srv->ep.loop);
    server_close_listeners(srv);
    for (unsigned i = 1; i < srv->nworkers; i++) {
        struct wsc__worker *w = &srv->workers[i - 1];
        struct wsc__xmsg *m = w->stop_msg;
        if (m != NULL) { /* a worker left waiting would hang ws_server_run */
            w->stop_msg = NULL;
            m->kind = WSC__X_STOP;
            m->ep = &w->ep;
            wsc__loop_post(m->ep->loop, m);
        }
    }
    wsc__endpoint_shutdown_all(&srv->ep);
    if (srv->ep.num_live == 0)
        server_finish(srv);
}

static void server_on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    ws_server_stop(arg);
}

/* ---- worker loops ------------------------------------------------------- */

/* A worker ends its loop once stopping and its last connection is gone. */
static void worker_on_released(struct wsc__endpoint *ep, struct ws_conn *c)
{
    (void)c;
    if (atomic_load(&ep->stopping) && ep->num_live == 0)
        event_base_loopexit(ep->loop->base, NULL);
}

void wsc__worker_stop(struct wsc__endpoint *ep)
{
    wsc__endpoint_shutdown_all(ep);
    if (ep->num_live == 0)
        event_base_loopexit(ep->loop->base, NULL);
}

static void *worker_main(void *arg)
{
    struct wsc__worker *w = arg;

    wsc__loop_mark_owner(w->ep.loop);
    /* Idle workers have no events yet must keep running. */
    event_base_loop(w->ep.loop->base, EVLOOP_NO_EXIT_ON_EMPTY);
    return NULL;
}

static int server_add_workers(struct ws_server *srv, const struct ws_config *cfg)
{
    srv->workers = calloc(srv->nworkers - 1, sizeof(*srv->workers));
    if (srv->workers == NULL)
        return WS_ENOMEM;
    for (unsigned i = 1; i < srv->nworkers; i++) {
        struct wsc__worker *w = &srv->workers[i - 1];
        struct event_base *base = event_base_new();
        w->stop_msg = calloc(1, sizeof(*w->stop_msg));
        if (base == NULL || w->stop_msg == NULL ||
            wsc__endpoint_init(&w->ep, cfg, base, i, srv->nworkers) != 0) {
            if (base != NULL)
                event_base_free(base);
            free(w->stop_msg);
            w->stop_msg = NULL;
            srv->nworkers = i; /* free the ones made so far */
            return WS_ENOMEM;
        }
        w->ep.srv = srv;
        w->ep.on_released = worker_on_released;
    }
    return 0;
}

struct ws_server *ws_server_new(const struct ws_config *cfg)
{
    struct ws_server *srv;
    struct event_base *base = cfg != NULL ? cfg->base : NULL;
    unsigned threads = cfg != NULL && cfg->threads > 0 ? cfg->threads : 1;

    /* Worker threads need loops of their own: not with an application base. */
    if (wsc__library_init() != 0 || (base != NULL && threads > 1))
        return NULL;
    srv = calloc(1, sizeof(*srv));
    if (srv == NULL)
        return NULL;
    if (base == NULL) {
        base = event_base_new();
        srv->own_base = true;
    }
    if (base == NULL || wsc__endpoint_init(&srv->ep, cfg, base, 0, threads) != 0) {
        if (base != NULL && srv->own_base)
            event_base_free(base);
        free(srv);
        return NULL;
    }
    srv->nworkers = 1;
    srv->ep.srv = srv;
    srv->ep.on_released = server_on_released;
    srv->stop_ev = event_new(base, -1, 0, server_on_stop, srv);
    srv->resume_ev = evtimer_new(base, server_on_resume, srv);
    if (srv->stop_ev == NULL || srv->resume_ev == NULL) {
        ws_server_free(srv);
        return NULL;
    }
    srv->nworkers = threads;
    if (threads > 1 && server_add_workers(srv, cfg) != 0) {
        ws_server_free(srv);
        return NULL;
    }
    return srv;
}

/* Handlers are set on the server; every worker needs its copy. */
static void server_copy_handlers(struct ws_server *srv)
{
    for (unsigned i = 1; i < srv->nworkers; i++) {
        struct wsc__endpoint *ep = server_worker(srv, i);
        ep->on_open = srv->ep.on_open;   ep->open_arg = srv->ep.open_arg;
        ep->on_data = srv->ep.on_data;   ep->data_arg = srv->ep.data_arg;
        ep->on_ping = srv->ep.on_ping;   ep->ping_arg = srv->ep.ping_arg;
        ep->on_pong = srv->ep.on_pong;   ep->pong_arg = srv->ep.pong_arg;
        ep->on_close = srv->ep.on_close; ep->close_arg = srv->ep.close_arg;
        ep->on_drain = srv->ep.on_drain; ep->drain_arg = srv->ep.drain_arg;
    }
}

int wsc__server_fan_out(struct ws_server *srv, const char *topic, int op, const void *data,
                        size_t len)
{
    size_t tlen = topic != NULL ? strlen(topic) + 1 : 0;
    int skipped = 0;

    for (unsigned i = 0; i < srv->nworkers; i++) {
        struct wsc__endpoint *ep = server_worker(srv, i);
        struct wsc__xmsg *m;
        if (wsc__loop_is_owner(ep->loop)) {
            int rc = wsc__deliver_now(ep, topic != NULL ? wsc__topic_find(ep, topic) : NULL,
                                      topic != NULL, op, data, len);
            if (rc < 0)
                return rc;
            skipped += rc;
            continue;
        }
        m = malloc(sizeof(*m) + tlen + len);
        if (m == NULL)
            return WS_ENOMEM;
        m->kind = topic != NULL ? WSC__X_PUBLISH : WSC__X_BROADCAST;
        m->opcode = (uint8_t)op;
        m->code = topic != NULL ? (int)tlen - 1 : 0;
        m->conn = NULL;
        m->ep = ep;
        m->len = len;
        if (tlen > 0)
            memcpy(m->data, topic, tlen);
        if (len > 0)
            memcpy(m->data + tlen, data, len);
        wsc__loop_post(ep->loop, m);
    }
    return skipped;
}

int ws_server_run(struct ws_server *srv)
{
    if (srv == NULL)
        return WS_EINVAL;
    if (!srv->own_base || srv->running)
        return WS_ESTATE;
    srv->running = true;
    wsc__loop_mark_owner(srv->ep.loop);
    if (srv->ep.cfg.handle_signals && !atomic_load(&srv->ep.stopping)) {
        srv->sig_int = evsignal_new(srv->ep.loop->base, SIGINT, server_on_signal, srv);
        srv->sig_term = evsignal_new(srv->ep.loop->base, SIGTERM, server_on_signal, srv);
        if (srv->sig_int == NULL || srv->sig_term == NULL ||
            evsignal_add(srv->sig_int, NULL) != 0 || evsignal_add(srv->sig_term, NULL) != 0) {
            server_remove_signals(srv);
            srv->running = false;
            return WS_EEVENT;
        }
    }
    server_copy_handlers(srv);
    for (unsigned i = 1; i < srv->nworkers; i++) {
        struct wsc__worker *w = &srv->workers[i - 1];
        w->started = pthread_create(&w->thread, NULL, worker_main, w) == 0;
        if (!w->started)
            atomic_store(&w->ep.stopping, 1); /* takes no sockets then */
    }
    event_base_dispatch(srv->ep.loop->base);
    /* Worker 0 is drained; the others drain within the same bounds. */
    for (unsigned i = 1; i < srv->nworkers; i++)
        if (srv->workers[i - 1].started)
            pthread_join(srv->workers[i - 1].thread, NULL);
    server_remove_signals(srv);
    srv->running = false;
    return 0;
}

int ws_server_stop(struct ws_server *srv)
{
    int expected = 0;

    if (srv == NULL)
        return WS_EINVAL;
    if (!atomic_compare_exchange_strong(&srv->ep.stopping, &expected, 1))
        return WS_ESTATE;
    for (unsigned i = 1; i < srv->nworkers; i++)
        atomic_store(&srv->workers[i - 1].ep.stopping, 1);
    /* No timeout on this event, so the activation cannot be lost. */
    event_active(srv->stop_ev, EV_READ, 0);
    return 0;
}

void ws_server_free(struct ws_server *srv)
{
    struct event_base *base;

    if (srv == NULL)
        return;
    base = srv->ep.loop->base;
    server_close_listeners(srv);
    server_remove_signals(srv);
    if (srv->stop_ev != NULL)
        event_free(srv->stop_ev);
    if (srv->resume_ev != NULL)
        event_free(srv->resume_ev);
    wsc__redis_free(srv->redis); /* while its loop and base still exist */
    srv->redis = NULL;           /* the topics dropped below need not report */
    wsc__endpoint_destroy(&srv->ep);
    for (unsigned i = 1; i < srv->nworkers && srv->workers != NULL; i++) {
        struct event_base *wbase = srv->workers[i - 1].ep.loop->base;
        wsc__endpoint_destroy(&srv->workers[i - 1].ep);
        event_base_free(wbase);
        free(srv->workers[i - 1].stop_msg); /* never run, or never stopped */
    }
    free(srv->workers);
    free(srv->proxy_listeners);
    wsc__tls_server_free(srv->tls); /* after every connection: they use it */
    if (srv->own_base)
        event_base_free(base);
    free(srv);
}

struct wsc__loop *wsc__server_loop(struct ws_server *srv, unsigned index)
{
    return index < srv->nworkers ? server_worker(srv, index)->loop : NULL;
}

uint64_t ws_server_dropped_sends(const struct ws_server *srv)
{
    uint64_t n = 0;

    if (srv == NULL)
        return 0;
    for (unsigned i = 0; i < srv->nworkers; i++)
        n += atomic_load(&server_worker((struct ws_server *)(uintptr_t)srv, i)->loop->dropped);
    return n;
}

struct event_base *ws_server_event_base(struct ws_server *srv)
{
    return srv != NULL ? srv->ep.loop->base : NULL;
}

size_t ws_server_connection_count(const struct ws_server *srv)
{
    size_t n = 0;

    if (srv == NULL)
        return 0;
    n = atomic_load(&srv->ep.num_open);
    for (unsigned i = 1; i < srv->nworkers; i++)
        n += atomic_load(&srv->workers[i - 1].ep.num_open);
    return n;
}

#define WSC_HANDLER_SETTER(event, type)                                      \
    void ws_server_handle_##event(struct ws_server *srv, type cb, void *arg) \
    {                                                                        \
        if (srv == NULL)                                                     \
            return;                                                          \
        srv->ep.on_##event = cb;                                             \
        srv->ep.event##_arg = arg;                                           \
    }

WSC_HANDLER_SETTER(open, ws_open_cb)
WSC_HANDLER_SETTER(data, ws_data_cb)
WSC_HANDLER_SETTER(ping, ws_control_cb)
WSC_HANDLER_SETTER(pong, ws_control_cb)
WSC_HANDLER_SETTER(close, ws_close_cb)

WSC_HANDLER_SETTER(drain, ws_drain_cb)

void ws_server_handle_http(struct ws_server *srv, ws_http_cb cb, void *arg)
{
    if (srv == NULL)
        return;
    srv->on_http = cb;
    srv->http_arg = arg;
}
