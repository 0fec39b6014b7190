/*
 * client.c - outgoing connections: URL, upgrade request, validating the
 * server's answer (RFC 6455 4.1), and reconnecting with backoff.
 *
 * A client is an endpoint with at most one connection. Once upgraded, the
 * connection is an ordinary struct ws_conn: conn.c and message.c run it,
 * masking what it sends because its endpoint is a client.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <signal.h>

#include <event2/buffer.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "internal.h"

struct ws_client {
    struct wsc__endpoint ep;      /* first: a conn's endpoint is its client */
    bool own_base, running, started, gave_up;
    struct event *stop_ev, *retry_ev, *sig_int, *sig_term;
    struct evdns_base *dns;
    struct evdns_getaddrinfo_request *lookup; /* a name being resolved */

    char *host;                   /* for resolution: no brackets */
    char *host_header;            /* as the Host header wants it */
    char *target;                 /* path and query */
    int port;
    struct evbuffer *extra_headers;
    char *subprotocols;           /* offered, as given */

    struct ws_conn *conn;         /* the attempt or connection, if any */
    char accept[WSC__ACCEPT_LEN + 1];
    char subprotocol[128];        /* chosen by the server */

    unsigned min_delay_ms, max_delay_ms, max_attempts, attempt;
    ws_reconnect_cb on_reconnect; void *reconnect_arg;
    ws_give_up_cb on_give_up;     void *give_up_arg;
    /* TLS (tls_client.c) */
    bool secure;                  /* wss:// */
    struct wsc__tls_client *tls;  /* options and context, once any is set */
};

struct wsc__tls_client **wsc__client_tls_slot(struct ws_client *cl)
{
    return &cl->tls;
}

static struct ws_client *client_of(struct wsc__endpoint *ep)
{
    return (struct ws_client *)(void *)ep;
}

/* ---- URL ------------------------------------------------------------------ */

static char *dup_slice(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (p != NULL) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

/* Parse "ws://host[:port][/path][?query]" into the client. */
static int client_parse_url(struct ws_client *cl, const char *url)
{
    const char *p, *host, *hend, *target;
    char hh[300];
    bool secure = strncasecmp(url, "wss://", 6) == 0;
    size_t scheme = secure ? 6 : 5;
    long port = secure ? 443 : 80;

    if (!secure && strncasecmp(url, "ws://", 5) != 0)
        return WS_EADDR;
    host = url + scheme;
    if (*host == '[') {
        hend = strchr(host, ']');
        if (hend == NULL)
            return WS_EADDR;
        host++;
        p = hend + 1;
        if (*p != '\0' && *p != ':' && *p != '/' && *p != '?')
            return WS_EADDR; /* "[::1]x" */
    } else {
        hend = host + strcspn(host, ":/?#");
        p = hend;
    }
    if (hend == host || (size_t)(hend - host) > 253)
        return WS_EADDR;
    /* The host goes into the Host header: no spaces, controls or '@'. */
    for (const char *h = host; h < hend; h++)
        if ((unsigned char)*h <= 0x20 || *h == 0x7f || *h == '@' || *h == '/')
            return WS_EADDR;
    if (*p == ':') {
        size_t digits = strspn(p + 1, "0123456789");
        /* Digits only: strtol alone would take a sign or leading spaces. */
        port = digits > 0 && digits <= 5 ? strtol(p + 1, NULL, 10) : 0;
        if (port < 1 || port > 65535 || (p[1 + digits] != '\0' && p[1 + digits] != '/' &&
                                         p[1 + digits] != '?'))
            return WS_EADDR;
        p += 1 + digits;
    }
    target = *p == '\0' ? "/" : p;
    if (strchr(target, '#') != NULL || strpbrk(target, " \t\r\n") != NULL)
        return WS_EADDR;
    free(cl->host);
    free(cl->host_header);
    free(cl->target);
    cl->host = dup_slice(host, (size_t)(hend - host));
    /* Host keeps the brackets of an IPv6 literal, and the port if given. */
    snprintf(hh, sizeof(hh), "%.*s", (int)(p - (url + scheme)), url + scheme);
    cl->host_header = strdup(hh);
    /* "ws://host?q" has an empty path: the request target is "/?q". */
    if (*target == '?') {
        cl->target = malloc(strlen(target) + 2);
        if (cl->target != NULL) {
            cl->target[0] = '/';
            strcpy(cl->target + 1, target);
        }
    } else {
        cl->target = strdup(target);
    }
    cl->port = (int)port;
    cl->secure = secure;
    return cl->host && cl->host_header && cl->target ? 0 : WS_ENOMEM;
}

/* ---- the upgrade request and the answer ---------------------------------- */

static int client_send_request(struct ws_client *cl, struct ws_conn *c)
{
    unsigned char raw[16];
    char key[25];
    struct evbuffer *out;
    int rc;

    if (RAND_bytes(raw, sizeof(raw)) != 1)
        return WS_ENOMEM;
    EVP_EncodeBlock((unsigned char *)key, raw, sizeof(raw));
    if (wsc__handshake_accept(key, 24, cl->accept) != 0)
        return WS_ENOMEM;
    out = evbuffer_new();
    if (out == NULL)
        return WS_ENOMEM;
    evbuffer_add_printf(out,
                        "GET %s HTTP/1.1\r\n"
                        "Host: %s\r\n"
                        "Upgrade: websocket\r\n"
                        "Connection: Upgrade\r\n"
                        "Sec-WebSocket-Key: %s\r\n"
                        "Sec-WebSocket-Version: 13\r\n",
                        cl->target, cl->host_header, key);
    if (cl->subprotocols != NULL)
        evbuffer_add_printf(out, "Sec-WebSocket-Protocol: %s\r\n", cl->subprotocols);
    if (cl->ep.cfg.deflate)
        evbuffer_add_printf(out, "Sec-WebSocket-Extensions: permessage-deflate; "
                                 "client_max_window_bits%s\r\n",
                            cl->ep.cfg.deflate_no_context_takeover
                                ? "; client_no_context_takeover; server_no_context_takeover"
                                : "");
    evbuffer_add_buffer_reference(out, cl->extra_headers);
    evbuffer_add(out, "\r\n", 2);
    rc = wsc__io_send_buffer(c, out);
    evbuffer_free(out);
    return rc;
}

void wsc__client_connected(struct ws_conn *c)
{
    struct ws_client *cl = client_of(c->ep);

    if (client_send_request(cl, c) != 0) {
        c->fail_error = WS_ENOMEM;
        wsc__conn_flush_and_close(c);
    }
}

/* Is the chosen subprotocol one we offered? */
static bool client_offered(const struct ws_client *cl, const char *v, size_t len)
{
    const char *p = cl->subprotocols;

    while (p != NULL && *p != '\0') {
        size_t n;
        p += strspn(p, " \t,");
        n = strcspn(p, " \t,");
        if (n == len && n > 0 && strncmp(p, v, n) == 0)
            return true;
        p += n;
    }
    return false;
}

/* RFC 6455 4.1: the checks a client MUST make of the server's response. */
static bool client_response_ok(struct ws_client *cl, struct ws_conn *c,
                               const struct wsc__http_response *resp)
{
    const struct wsc__http_request *h = &resp->head;
    const struct wsc__http_header *accept, *ext, *proto;
    struct wsc__pmd pmd;

    /* RFC 6455 4.1: the opening handshake is HTTP/1.1 (or later). */
    if (resp->status != 101 || resp->minor_version < 1 ||
        !wsc__http_header_has_token(h, "Upgrade", "websocket") ||
        !wsc__http_header_has_token(h, "Connection", "upgrade"))
        return false;
    /* Each of these may appear once (RFC 6455 4.1, 11.3): checking only
     * the first of two would let a second one slip past. */
    if (wsc__http_count_headers(h, "Sec-WebSocket-Accept") != 1 ||
        wsc__http_count_headers(h, "Sec-WebSocket-Extensions") > 1 ||
        wsc__http_count_headers(h, "Sec-WebSocket-Protocol") > 1)
        return false;
    accept = wsc__http_find_header(h, "Sec-WebSocket-Accept");
    if (accept == NULL || accept->value_len != WSC__ACCEPT_LEN ||
        memcmp(accept->value, cl->accept, WSC__ACCEPT_LEN) != 0)
        return false;
    ext = wsc__http_find_header(h, "Sec-WebSocket-Extensions");
    memset(&pmd, 0, sizeof(pmd));
    if (ext != NULL &&
        !wsc__pmd_parse_response(ext->value, ext->value_len, &cl->ep.cfg, &pmd))
        return false;
    if (wsc__conn_pmd_set(c, &pmd) != 0)
        return false;
    proto = wsc__http_find_header(h, "Sec-WebSocket-Protocol");
    cl->subprotocol[0] = '\0';
    if (proto != NULL) {
        if (!client_offered(cl, proto->value, proto->value_len) ||
            proto->value_len >= sizeof(cl->subprotocol))
            return false;
        memcpy(cl->subprotocol, proto->value, proto->value_len);
        cl->subprotocol[proto->value_len] = '\0';
    }
    return true;
}

size_t wsc__client_http_input(struct ws_conn *c, uint8_t *in, size_t avail)
{
    struct ws_client *cl = client_of(c->ep);
    size_t scan = avail < cl->ep.cfg.max_head_size ? avail : cl->ep.cfg.max_head_size;
    struct wsc__http_response resp = { .head.headers = cl->ep.hdr_scratch };
    int head_len = wsc__http_parse_response((const char *)in, scan, c->http_scanned, &resp,
                                            cl->ep.cfg.max_headers);

    if (head_len == WSC__HTTP_INCOMPLETE && avail < cl->ep.cfg.max_head_size) {
        c->http_scanned = scan;
        return 0;
    }
    if (head_len < 0 || !client_response_ok(cl, c, &resp)) {
        c->fail_error = WS_EHANDSHAKE;
        wsc__conn_flush_and_close(c);
        return avail;
    }
    cl->attempt = 0; /* a success restarts the backoff */
    if (wsc__conn_open(c) != 0) {
        c->fail_error = WS_ENOMEM;
        wsc__conn_flush_and_close(c);
        return avail;
    }
    return (size_t)head_len; /* frames right behind the 101 are read next */
}

/* ---- attempts and reconnecting ------------------------------------------- */

static void client_finish(struct ws_client *cl, int error)
{
    if (cl->gave_up)
        return;
    cl->gave_up = true;
    if (cl->retry_ev != NULL)
        evtimer_del(cl->retry_ev);
    if (cl->sig_int != NULL)
        event_free(cl->sig_int);
    if (cl->sig_term != NULL)
        event_free(cl->sig_term);
    cl->sig_int = cl->sig_term = NULL;
    if (cl->own_base)
        event_base_loopexit(cl->ep.loop->base, NULL);
    /* Last: the application may start a new connect from here. */
    if (cl->on_give_up != NULL)
        cl->on_give_up(cl, error, cl->give_up_arg);
}

static bool client_host_is_numeric(const struct ws_client *cl)
{
    unsigned char addr[16];

    return evutil_inet_pton(AF_INET, cl->host, addr) == 1 ||
           evutil_inet_pton(AF_INET6, cl->host, addr) == 1;
}

/* Numeric hosts need no resolver: libevent converts them without blocking.
 * Names get the client's evdns base, made the first time one is needed (it
 * holds a UDP socket, which numeric-only clients should not pay for). */
static struct evdns_base *client_resolver(struct ws_client *cl)
{
    if (client_host_is_numeric(cl))
        return NULL;
    if (cl->dns == NULL)
        cl->dns = evdns_base_new(cl->ep.loop->base, EVDNS_BASE_INITIALIZE_NAMESERVERS);
    return cl->dns;
}

/* Connect to the first address; failures end the attempt like a refused
 * connection would (release, then reconnect or give up). */
static void client_connect_to(struct ws_conn *c, const struct evutil_addrinfo *ai,
                              int error)
{
    if (ai == NULL || wsc__io_connect(c, ai->ai_addr, (int)ai->ai_addrlen) != 0) {
        c->fail_error = ai == NULL ? error : WS_ECONNECT;
        wsc__conn_abort(c);
    }
}

static void client_on_resolved(int result, struct evutil_addrinfo *res, void *arg)
{
    struct ws_client *cl = arg;
    struct ws_conn *c = cl->conn;

    if (result != EVUTIL_EAI_CANCEL) { /* cancelled: the attempt is gone */
        wsc__loop_enter(cl->ep.loop);
        cl->lookup = NULL;
        if (c != NULL && c->fd < 0 && atomic_load(&c->state) == WSC__CONN_HTTP)
            client_connect_to(c, result == 0 ? res : NULL, WS_EDNS);
    }
    if (res != NULL)
        evutil_freeaddrinfo(res);
}

static int client_start_attempt(struct ws_client *cl)
{
    struct evutil_addrinfo hints, *res = NULL;
    struct evdns_base *dns = client_resolver(cl);
    struct evdns_getaddrinfo_request *req;
    struct ws_conn *c;
    char port[8];

    if (dns == NULL && !client_host_is_numeric(cl))
        return WS_ENOMEM;
    c = wsc__conn_new(&cl->ep, -1, NULL);
    if (c == NULL)
        return WS_ENOMEM;
    if (cl->secure && wsc__tls_client_attach(c, cl->tls, cl->host) != 0) {
        wsc__conn_abort(c);
        return WS_ENOMEM;
    }
    cl->conn = c;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    snprintf(port, sizeof(port), "%d", cl->port);
    if (dns == NULL) { /* numeric: converted without blocking */
        hints.ai_flags = EVUTIL_AI_NUMERICHOST;
        client_connect_to(c, evutil_getaddrinfo(cl->host, port, &hints, &res) == 0
                                     ? res : NULL, WS_EDNS);
        if (res != NULL)
            evutil_freeaddrinfo(res);
        return 0;
    }
    hints.ai_flags = EVUTIL_AI_ADDRCONFIG;
    /* A lookup that fails at once runs its callback before this returns
     * (and returns NULL). */
    req = evdns_getaddrinfo(dns, cl->host, port, &hints, client_on_resolved, cl);
    if (req != NULL && cl->conn == c && c->fd < 0 && atomic_load(&c->state) == WSC__CONN_HTTP)
        cl->lookup = req;
    return 0;
}

static void client_on_retry(evutil_socket_t fd, short what, void *arg)
{
    struct ws_client *cl = arg;

    (void)fd;
    (void)what;
    wsc__loop_enter(cl->ep.loop);
    if (client_start_attempt(cl) != 0)
        client_finish(cl, WS_ENOMEM);
}

/* Delay of retry n (1-based): exponential, capped, minus up to half. */
static unsigned client_backoff(const struct ws_client *cl, unsigned n)
{
    unsigned long long d = cl->min_delay_ms;
    unsigned jitter = 0;

    for (unsigned i = 1; i < n && d < cl->max_delay_ms; i++)
        d *= 2;
    if (d > cl->max_delay_ms)
        d = cl->max_delay_ms;
    if (d >= 2 && RAND_bytes((unsigned char *)&jitter, sizeof(jitter)) == 1)
        d -= jitter % (d / 2 + 1);
    return d > 0 ? (unsigned)d : 1;
}

static void client_on_released(struct wsc__endpoint *ep, struct ws_conn *c)
{
    struct ws_client *cl = client_of(ep);
    int error = c->fail_error;
    unsigned delay;
    struct timeval tv;

    if (cl->conn == c) {
        cl->conn = NULL;
        if (cl->lookup != NULL) { /* released while its name resolved */
            evdns_getaddrinfo_cancel(cl->lookup);
            cl->lookup = NULL;
        }
    }
    if (atomic_load(&ep->stopping) || cl->min_delay_ms == 0 ||
        (cl->max_attempts > 0 && cl->attempt >= cl->max_attempts)) {
        client_finish(cl, error);
        return;
    }
    cl->attempt++;
    delay = client_backoff(cl, cl->attempt);
    if (cl->on_reconnect != NULL)
        cl->on_reconnect(cl, cl->attempt, delay, error, cl->reconnect_arg);
    if (atomic_load(&ep->stopping)) { /* stopped from the callback */
        client_finish(cl, error);
        return;
    }
    tv.tv_sec = delay / 1000;
    tv.tv_usec = (delay % 1000) * 1000;
    evtimer_add(cl->retry_ev, &tv);
}

static void client_on_stop(evutil_socket_t fd, short what, void *arg)
{
    static const char reason[] = "client stopping";
    struct ws_client *cl = arg;
    struct ws_conn *c = cl->conn;

    (void)fd;
    (void)what;
    wsc__loop_enter(cl->ep.loop);
    evtimer_del(cl->retry_ev);
    if (c == NULL) {
        client_finish(cl, 0);
    } else if (atomic_load(&c->state) == WSC__CONN_OPEN) {
        /* Like a server stop: bounded even when close_timeout is 0. */
        c->shutting_down = true;
        wsc__conn_close_now(c, WS_CLOSE_NORMAL, reason, sizeof(reason) - 1);
        if (cl->ep.cfg.close_timeout_ms == 0)
            wsc__conn_arm_timer(c, WSC__LINGER_MS);
    } else if (atomic_load(&c->state) == WSC__CONN_HTTP) {
        wsc__conn_abort(c); /* released: give-up follows */
    }
}

static void client_on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    ws_client_stop(arg);
}

/* ---- public API ------------------------------------------------------------ */

struct ws_client *ws_client_new(const struct ws_config *cfg)
{
    struct ws_client *cl;
    struct event_base *base = cfg != NULL ? cfg->base : NULL;

    if (wsc__library_init() != 0)
        return NULL;
    cl = calloc(1, sizeof(*cl));
    if (cl == NULL)
        return NULL;
    if (base == NULL) {
        base = event_base_new();
        cl->own_base = true;
    }
    if (base == NULL || wsc__endpoint_init(&cl->ep, cfg, base, 0, 1) != 0) {
        if (base != NULL && cl->own_base)
            event_base_free(base);
        free(cl);
        return NULL;
    }
    cl->ep.is_client = true;
    cl->ep.on_released = client_on_released;
    cl->stop_ev = event_new(base, -1, 0, client_on_stop, cl);
    cl->retry_ev = evtimer_new(base, client_on_retry, cl);
    cl->extra_headers = evbuffer_new();
    if (cl->stop_ev == NULL || cl->retry_ev == NULL || cl->extra_headers == NULL) {
        ws_client_free(cl);
        return NULL;
    }
    return cl;
}

int ws_client_add_header(struct ws_client *cl, const char *name, const char *value)
{
    if (cl == NULL || name == NULL || value == NULL || name[0] == '\0' ||
        strpbrk(name, "\r\n:") != NULL || strpbrk(value, "\r\n") != NULL)
        return WS_EINVAL;
    return evbuffer_add_printf(cl->extra_headers, "%s: %s\r\n", name, value) < 0
               ? WS_ENOMEM : 0;
}

int ws_client_set_subprotocols(struct ws_client *cl, const char *protocols)
{
    char *copy;

    if (cl == NULL || (protocols != NULL && strpbrk(protocols, "\r\n") != NULL))
        return WS_EINVAL;
    copy = protocols != NULL ? strdup(protocols) : NULL;
    if (protocols != NULL && copy == NULL)
        return WS_ENOMEM;
    free(cl->subprotocols);
    cl->subprotocols = copy;
    return 0;
}

int ws_client_set_reconnect(struct ws_client *cl, unsigned min_delay_ms,
                            unsigned max_delay_ms, unsigned max_attempts)
{
    if (cl == NULL || (min_delay_ms > 0 && max_delay_ms < min_delay_ms))
        return WS_EINVAL;
    cl->min_delay_ms = min_delay_ms;
    cl->max_delay_ms = max_delay_ms;
    cl->max_attempts = max_attempts;
    return 0;
}

int ws_client_connect(struct ws_client *cl, const char *url)
{
    int rc;

    if (cl == NULL || url == NULL)
        return WS_EINVAL;
    if (cl->conn != NULL || evtimer_pending(cl->retry_ev, NULL))
        return WS_ESTATE;
    rc = client_parse_url(cl, url);
    if (rc != 0)
        return rc;
    if (cl->secure) { /* files are read now: a bad one fails here */
        struct wsc__tls_client **tc = wsc__client_tls_slot(cl);
        if (*tc == NULL && ws_client_set_tls_insecure_skip_verify(cl, 0) != 0)
            return WS_ENOMEM;
        rc = wsc__tls_client_prepare(*tc);
        if (rc != 0)
            return rc;
    }
    event_del(cl->stop_ev); /* a stop requested before this connect is spent */
    atomic_store(&cl->ep.stopping, 0);
    cl->gave_up = false;
    cl->started = true;
    cl->attempt = 0;
    return client_start_attempt(cl);
}

int ws_client_run(struct ws_client *cl)
{
    struct event_base *base;

    if (cl == NULL)
        return WS_EINVAL;
    if (!cl->own_base || cl->running)
        return WS_ESTATE;
    base = cl->ep.loop->base;
    cl->running = true;
    wsc__loop_mark_owner(cl->ep.loop);
    if (cl->ep.cfg.handle_signals && !cl->gave_up) {
        cl->sig_int = evsignal_new(base, SIGINT, client_on_signal, cl);
        cl->sig_term = evsignal_new(base, SIGTERM, client_on_signal, cl);
        if (cl->sig_int != NULL)
            evsignal_add(cl->sig_int, NULL);
        if (cl->sig_term != NULL)
            evsignal_add(cl->sig_term, NULL);
    }
    if (cl->started && !cl->gave_up)
        event_base_dispatch(base);
    cl->running = false;
    return 0;
}

int ws_client_stop(struct ws_client *cl)
{
    int expected = 0;

    if (cl == NULL)
        return WS_EINVAL;
    if (!atomic_compare_exchange_strong(&cl->ep.stopping, &expected, 1))
        return WS_ESTATE;
    event_active(cl->stop_ev, EV_READ, 0);
    return 0;
}

void ws_client_free(struct ws_client *cl)
{
    struct event_base *base;

    if (cl == NULL)
        return;
    base = cl->ep.loop->base;
    if (cl->lookup != NULL)
        evdns_getaddrinfo_cancel(cl->lookup);
    cl->lookup = NULL;
    wsc__endpoint_destroy(&cl->ep); /* drops the connection, no callbacks */
    cl->conn = NULL;
    if (cl->stop_ev != NULL)
        event_free(cl->stop_ev);
    if (cl->retry_ev != NULL)
        event_free(cl->retry_ev);
    if (cl->sig_int != NULL)
        event_free(cl->sig_int);
    if (cl->sig_term != NULL)
        event_free(cl->sig_term);
    if (cl->dns != NULL)
        evdns_base_free(cl->dns, 0);
    if (cl->extra_headers != NULL)
        evbuffer_free(cl->extra_headers);
    free(cl->host);
    free(cl->host_header);
    free(cl->target);
    free(cl->subprotocols);
    wsc__tls_client_free(cl->tls);
    if (cl->own_base)
        event_base_free(base);
    free(cl);
}

struct ws_conn *ws_client_conn(struct ws_client *cl)
{
    if (cl == NULL || cl->conn == NULL || atomic_load(&cl->conn->state) != WSC__CONN_OPEN)
        return NULL;
    return cl->conn;
}

struct event_base *ws_client_event_base(struct ws_client *cl)
{
    return cl != NULL ? cl->ep.loop->base : NULL;
}

/* A released connection's client may be gone: neutral answers then. */
struct ws_client *ws_conn_client(const struct ws_conn *conn)
{
    if (conn == NULL || !conn->is_client || atomic_load(&conn->state) == WSC__CONN_CLOSED)
        return NULL;
    return client_of(conn->ep);
}

const char *ws_conn_subprotocol(const struct ws_conn *conn)
{
    if (conn == NULL || atomic_load(&conn->state) == WSC__CONN_CLOSED)
        return "";
    if (!conn->is_client) /* chosen by the upgrade hook (upgrade.c) */
        return wsc__conn_subprotocol(conn);
    return client_of(conn->ep)->subprotocol;
}

#define WSC_CLIENT_HANDLER(event, type)                                      \
    void ws_client_handle_##event(struct ws_client *cl, type cb, void *arg) \
    {                                                                        \
        if (cl == NULL)                                                      \
            return;                                                          \
        cl->ep.on_##event = cb;                                              \
        cl->ep.event##_arg = arg;                                            \
    }

WSC_CLIENT_HANDLER(open, ws_open_cb)
WSC_CLIENT_HANDLER(data, ws_data_cb)
WSC_CLIENT_HANDLER(ping, ws_control_cb)
WSC_CLIENT_HANDLER(pong, ws_control_cb)
WSC_CLIENT_HANDLER(close, ws_close_cb)
WSC_CLIENT_HANDLER(drain, ws_drain_cb)

void ws_client_handle_reconnect(struct ws_client *cl, ws_reconnect_cb cb, void *arg)
{
    if (cl != NULL) {
        cl->on_reconnect = cb;
        cl->reconnect_arg = arg;
    }
}

void ws_client_handle_give_up(struct ws_client *cl, ws_give_up_cb cb, void *arg)
{
    if (cl != NULL) {
        cl->on_give_up = cb;
        cl->give_up_arg = arg;
    }
}
