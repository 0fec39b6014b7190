/*
 * upgrade.c - the upgrade hook and the Origin allow-list.
 *
 * A valid upgrade request first meets the allow-list (403), then the
 * application's upgrade callback, which accepts it, refuses it, or keeps
 * the handle (ws_upgrade_ref) and decides later on the loop thread.
 *
 * Ownership. A handle is counted: the connection holds one reference while
 * the decision is pending, the callback's caller one for the duration of
 * the call, and the application one per ws_upgrade_ref. The request is a
 * copy (strings, remote address), so a handle never reads the connection's
 * read buffer, and up->conn is cleared before the connection can go (the
 * decision, or release calling wsc__upgrade_conn_gone). A late decision
 * therefore finds conn == NULL and returns WS_ECLOSED instead of touching
 * freed memory.
 *
 * While pending, the connection stays in its HTTP state with c->upgrade
 * set: conn_http.c hands input to wsc__upgrade_hold_input, which keeps it
 * in the connection's stash (so EOF is still seen); after an accept the
 * stash is parsed as frames by re-activating the read event.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "internal.h"

enum upgrade_state { UP_PENDING, UP_ACCEPTED, UP_REJECTED, UP_ABORTED };

struct ws_upgrade {
    int refs;                     /* loop thread only */
    enum upgrade_state state;
    struct ws_conn *conn;         /* while pending; NULL once decided or gone */
    struct ws_request req;        /* a copy: valid as long as the handle */
    struct ws_response res;       /* headers added so far; written by reject */
    void *data;                   /* ws_upgrade_set_data */
    char accept[WSC__ACCEPT_LEN + 1];
    char remote[56];
};

/* ---- the Origin allow-list -------------------------------------------------- */

int ws_config_set_allowed_origins(struct ws_config *cfg, const char *list)
{
    size_t len = list != NULL ? strlen(list) : 0;

    if (cfg == NULL || (list != NULL && strpbrk(list, "\r\n") != NULL))
        return WS_EINVAL;
    if (len >= sizeof(cfg->allowed_origins))
        return WS_ETOOBIG;
    if (len > 0)
        memcpy(cfg->allowed_origins, list, len);
    cfg->allowed_origins[len] = '\0';
    return 0;
}

static bool is_ows(char ch)
{
    return ch == ' ' || ch == '\t';
}

/* Is the comma list's token equal (case-insensitively) to s[0..len)? */
static bool list_has(const char *list, const char *s, size_t len)
{
    const char *p = list;

    while (*p != '\0') {
        const char *end = strchr(p, ',');
        const char *e = end != NULL ? end : p + strlen(p);
        while (p < e && is_ows(*p))
            p++;
        const char *t = e;
        while (t > p && is_ows(t[-1]))
            t--;
        if ((size_t)(t - p) == len && len > 0 && strncasecmp(p, s, len) == 0)
            return true;
        if (end == NULL)
            break;
        p = end + 1;
    }
    return false;
}

/* RFC 6454 origins are compared whole; a request with two Origin headers
 * is ambiguous and refused. */
static bool origin_allowed(const struct ws_config *cfg, const struct wsc__http_request *req)
{
    const struct wsc__http_header *origin = NULL;
    const char *list = cfg->allowed_origins;

    if (list[0] == '\0')
        return true;
    for (size_t i = 0; i < req->num_headers; i++) {
        const struct wsc__http_header *h = &req->headers[i];
        if (h->name_len == 6 && strncasecmp(h->name, "Origin", 6) == 0) {
            if (origin != NULL)
                return false;
            origin = h;
        }
    }
    if (origin == NULL)
        return !list_has(list, "-", 1);
    return list_has(list, origin->value, origin->value_len);
}

/* ---- handles ------------------------------------------------------------------ */

static void upgrade_free(struct ws_upgrade *up)
{
    wsc__request_release(&up->req);
    if (up->res.headers != NULL)
        evbuffer_free(up->res.headers);
    free(up);
}

/* The connection's side of a decision: it no longer waits on up. */
static struct ws_conn *upgrade_detach(struct ws_upgrade *up, enum upgrade_state state)
{
    struct ws_conn *c = up->conn;

    up->conn = NULL;
    up->state = state;
    c->upgrade = NULL;
    return c;
}

void ws_upgrade_ref(struct ws_upgrade *up)
{
    if (up != NULL)
        up->refs++;
}

void ws_upgrade_unref(struct ws_upgrade *up)
{
    if (up == NULL || up->refs <= 0)
        return;
    if (--up->refs == 0) {
        upgrade_free(up);
        return;
    }
    /* Only the connection's reference is left: nobody can decide any more. */
    if (up->refs == 1 && up->state == UP_PENDING) {
        struct ws_conn *c = upgrade_detach(up, UP_REJECTED);
        wsc__http_refuse(c, 500, NULL);
        ws_upgrade_unref(up); /* the connection's */
    }
}

static int decision_check(const struct ws_upgrade *up)
{
    if (up == NULL)
        return WS_EINVAL;
    if (up->state == UP_ABORTED)
        return WS_ECLOSED;
    if (up->state != UP_PENDING)
        return WS_ESTATE;
    if (!wsc__loop_is_owner(up->conn->loop))
        return WS_ESTATE;
    return 0;
}

/* Names whose values the handshake itself decides. */
static bool reserved_header(const char *name)
{
    static const char *const names[] = { "Upgrade", "Connection", "Content-Length",
                                         "Transfer-Encoding" };

    if (strncasecmp(name, "Sec-WebSocket-", 14) == 0)
        return true;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcasecmp(name, names[i]) == 0)
            return true;
    return false;
}

int ws_upgrade_add_header(struct ws_upgrade *up, const char *name, const char *value)
{
    int rc = decision_check(up);

    if (rc != 0)
        return rc;
    if (name != NULL && reserved_header(name))
        return WS_EINVAL;
    return ws_response_add_header(&up->res, name, value);
}

static bool offered(const struct ws_request *req, const char *protocol)
{
    for (size_t i = 0; i < req->num_protocols; i++)
        if (strcmp(req->protocols[i], protocol) == 0)
            return true;
    return false;
}

int ws_upgrade_accept(struct ws_upgrade *up, const char *subprotocol, void *user)
{
    struct evbuffer *tail;
    struct ws_conn *c;
    char *proto = NULL;           /* the connection's names, with the subprotocol */
    bool held, ok;
    int rc = decision_check(up);

    if (rc != 0)
        return rc;
    if (subprotocol != NULL && !offered(&up->req, subprotocol))
        return WS_EINVAL;
    tail = evbuffer_new();
    if (tail == NULL ||
        (subprotocol != NULL && (proto = wsc__conn_names_new(up->conn, subprotocol)) == NULL) ||
        (proto != NULL &&
         evbuffer_add_printf(tail, "Sec-WebSocket-Protocol: %s\r\n", subprotocol) < 0) ||
        evbuffer_add_buffer(tail, up->res.headers) != 0 || evbuffer_add(tail, "\r\n", 2) != 0) {
        if (tail != NULL)
            evbuffer_free(tail);
        free(proto);
        return WS_ENOMEM;
    }
    c = upgrade_detach(up, UP_ACCEPTED);
    if (proto != NULL)
        wsc__conn_names_install(c, proto);
    c->user = user; /* before the open callback */
    held = wsc__stash_len(c) > 0;
    ok = wsc__conn_http_upgrade(c, up->accept, (const char *)evbuffer_pullup(tail, -1),
                                evbuffer_get_length(tail));
    evbuffer_free(tail);
    /* Frames that arrived while we decided: parse them now. */
    if (ok && held && (atomic_load(&c->state) == WSC__CONN_OPEN ||
                       atomic_load(&c->state) == WSC__CONN_CLOSING)) /* open may close */
        wsc__io_handle_stash(c);
    ws_upgrade_unref(up); /* the connection's */
    return ok ? 0 : WS_ECLOSED;
}

int ws_upgrade_reject(struct ws_upgrade *up, int status, const char *content_type,
                      const void *body, size_t len)
{
    struct evbuffer *out;
    struct ws_conn *c;
    int rc = decision_check(up);

    if (rc != 0)
        return rc;
    if (status < 300 || status > 599)
        return WS_EINVAL;
    out = evbuffer_new();
    if (out == NULL)
        return WS_ENOMEM;
    up->res.out = out; /* keep_alive is false: Connection: close */
    rc = ws_response_send(&up->res, status, content_type, body, len);
    if (rc != 0) {
        up->res.out = NULL;
        evbuffer_free(out);
        return rc;
    }
    c = upgrade_detach(up, UP_REJECTED);
    wsc__io_send_buffer(c, out);
    evbuffer_free(out);
    wsc__conn_flush_and_close(c);
    ws_upgrade_unref(up); /* the connection's */
    return 0;
}

const struct ws_request *ws_upgrade_request(const struct ws_upgrade *up)
{
    return up != NULL ? &up->req : NULL;
}

int ws_upgrade_pending(const struct ws_upgrade *up)
{
    return up != NULL && up->state == UP_PENDING ? 1 : 0;
}

void ws_upgrade_set_data(struct ws_upgrade *up, void *data)
{
    if (up != NULL)
        up->data = data;
}

void *ws_upgrade_get_data(const struct ws_upgrade *up)
{
    return up != NULL ? up->data : NULL;
}

/* ---- the connection's side ------------------------------------------------------ */

/* Sec-WebSocket-Protocol values (any number of headers), comma-separated
 * tokens, into req->protocols. */
static int parse_protocols(struct ws_request *r, const struct wsc__http_request *h)
{
    for (size_t i = 0; i < h->num_headers; i++) {
        const struct wsc__http_header *hd = &h->headers[i];
        const char *p = hd->value, *end = hd->value + hd->value_len;
        if (hd->name_len != 22 || strncasecmp(hd->name, "Sec-WebSocket-Protocol", 22) != 0)
            continue;
        while (p < end) {
            const char *comma = memchr(p, ',', (size_t)(end - p));
            const char *e = comma != NULL ? comma : end, *t = e;
            char **list;
            while (p < t && is_ows(*p))
                p++;
            while (t > p && is_ows(t[-1]))
                t--;
            if (t > p) {
                list = realloc(r->protocols, (r->num_protocols + 1) * sizeof(*list));
                if (list == NULL)
                    return WS_ENOMEM;
                r->protocols = list;
                list[r->num_protocols] = strndup(p, (size_t)(t - p));
                if (list[r->num_protocols] == NULL)
                    return WS_ENOMEM;
                r->num_protocols++;
            }
            p = e + (comma != NULL ? 1 : 0);
        }
    }
    return 0;
}

void wsc__upgrade_start(struct ws_conn *c, const struct wsc__http_request *req,
                        const char *accept)
{
    struct ws_server *srv = wsc__server_of(c->ep);
    struct ws_upgrade *up;

    if (!origin_allowed(&c->ep->cfg, req)) {
        wsc__http_refuse(c, 403, NULL);
        return;
    }
    if (srv->on_upgrade == NULL) {
        wsc__conn_http_upgrade(c, accept, "\r\n", 2);
        return;
    }
    up = calloc(1, sizeof(*up));
    if (up == NULL) {
        wsc__http_refuse(c, 500, NULL);
        return;
    }
    wsc__addr_format(&c->remote, up->remote, sizeof(up->remote));
    memcpy(up->accept, accept, sizeof(up->accept));
    if (wsc__request_init(&up->req, req, NULL, 0, up->remote) != 0) {
        free(up);
        wsc__http_refuse(c, 500, NULL);
        return;
    }
    up->req.tls = c->tls_on;
    up->res.headers = evbuffer_new();
    if (up->res.headers == NULL || parse_protocols(&up->req, req) != 0) {
        upgrade_free(up);
        wsc__http_refuse(c, 500, NULL);
        return;
    }
    up->refs = 2; /* the connection's and this call's */
    up->state = UP_PENDING;
    up->conn = c;
    c->upgrade = up;
    srv->on_upgrade(up, srv->upgrade_arg);
    /* Undecided and not kept, the connection's reference is the last:
     * unref answers 500, as nobody could ever decide. */
    ws_upgrade_unref(up); /* this call's */
}

size_t wsc__upgrade_hold_input(struct ws_conn *c, size_t len)
{
    /* A browser sends nothing before the 101; a peer that streams on while
     * we decide is not given unbounded memory. */
    if (len <= c->ep->cfg.max_head_size)
        return 0;
    wsc__upgrade_conn_gone(c);
    wsc__conn_flush_and_close(c);
    return len;
}

void wsc__upgrade_conn_gone(struct ws_conn *c)
{
    struct ws_upgrade *up = c->upgrade;
    struct ws_server *srv = wsc__server_of(c->ep);

    if (up == NULL)
        return;
    upgrade_detach(up, UP_ABORTED);
    /* close_notified: the server is being freed (no callbacks then). */
    if (!c->close_notified && srv->on_upgrade_abort != NULL)
        srv->on_upgrade_abort(up, srv->upgrade_abort_arg);
    ws_upgrade_unref(up); /* the connection's */
}

void ws_server_handle_upgrade(struct ws_server *srv, ws_upgrade_cb cb, void *arg)
{
    if (srv == NULL)
        return;
    srv->on_upgrade = cb;
    srv->upgrade_arg = arg;
}

void ws_server_handle_upgrade_abort(struct ws_server *srv, ws_upgrade_cb cb, void *arg)
{
    if (srv == NULL)
        return;
    srv->on_upgrade_abort = cb;
    srv->upgrade_abort_arg = arg;
}
