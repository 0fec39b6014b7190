/*
 * conn_http.c - a connection's HTTP phase: read the request head within
 * its limits, answer plain requests (keep-alive), refuse bad upgrades with
 * the status RFC 6455 4.2.2 asks for, or switch protocols.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "internal.h"

/* Answer with a complete error response and close after it is written. */
void wsc__http_refuse(struct ws_conn *c, int status, const char *extra_headers)
{
    struct evbuffer *out = evbuffer_new();

    if (out != NULL) {
        wsc__response_simple(out, status, extra_headers);
        wsc__io_send_buffer(c, out);
        evbuffer_free(out);
    }
    wsc__conn_flush_and_close(c);
}

static bool wants_keep_alive(const struct wsc__http_request *req)
{
    if (wsc__http_header_has_token(req, "Connection", "close"))
        return false;
    if (req->minor_version == 0)
        return wsc__http_header_has_token(req, "Connection", "keep-alive");
    return true;
}

/* Content-Length as a number, 0 when absent, -1 when malformed or repeated
 * (two lengths are how request smuggling starts: RFC 9112 6.3). */
static long long content_length(const struct wsc__http_request *req)
{
    const struct wsc__http_header *h = NULL;
    long long n = 0;

    for (size_t i = 0; i < req->num_headers; i++) {
        if (req->headers[i].name_len == 14 &&
            strncasecmp(req->headers[i].name, "Content-Length", 14) == 0) {
            if (h != NULL)
                return -1;
            h = &req->headers[i];
        }
    }
    if (h == NULL)
        return 0;
    if (h->value_len == 0 || h->value_len > 15)
        return -1;
    for (size_t i = 0; i < h->value_len; i++) {
        if (h->value[i] < '0' || h->value[i] > '9')
            return -1;
        n = n * 10 + (h->value[i] - '0');
    }
    return n;
}

/* A request body still arriving: the whole request (head and body) is
 * gathered here, appended to as bytes come, parsed once when complete. */
struct wsc__http_body {
    size_t need, have;
    uint8_t data[];
};

void wsc__http_body_free(struct ws_conn *c)
{
    free(c->body);
    c->body = NULL;
}

/* Answer one complete request (head and body in buf) with the handler.
 * Returns false when the connection is now closing. */
static bool http_answer(struct ws_conn *c, const struct wsc__http_request *req,
                        size_t head_len, const char *buf, size_t body_len)
{
    struct wsc__endpoint *ep = c->ep;
    struct evbuffer *out;
    struct ws_request r;
    struct ws_response res;
    char remote[WSC__ADDR_STRLEN]; /* the request's, formatted for it */

    wsc__addr_format(&c->remote, remote, sizeof(remote));
    if (wsc__request_init(&r, req, buf + head_len, body_len, remote) != 0) {
        wsc__http_refuse(c, 500, NULL);
        return false;
    }
    r.tls = c->tls_on;
    res.headers = evbuffer_new();
    res.out = out = evbuffer_new();
    res.sent = false;
    res.head_only = req->method_len == 4 && memcmp(req->method, "HEAD", 4) == 0;
    res.keep_alive = wants_keep_alive(req) && !atomic_load(&ep->stopping);
    if (res.headers == NULL || out == NULL) {
        if (res.headers != NULL)
            evbuffer_free(res.headers);
        if (out != NULL)
            evbuffer_free(out);
        wsc__request_release(&r);
        wsc__http_refuse(c, 500, NULL);
        return false;
    }
    wsc__server_of(ep)->on_http(&r, &res, wsc__server_of(ep)->http_arg);
    if (!res.sent)
        ws_response_send(&res, 404, "text/plain", "Not Found\n", 10);
    wsc__io_send_buffer(c, out);
    evbuffer_free(out);
    evbuffer_free(res.headers);
    wsc__request_release(&r);
    if (!res.keep_alive) {
        wsc__conn_flush_and_close(c);
        return false;
    }
    /* Idle until the next request: its own timeout, re-armed per request. */
    wsc__conn_keepalive_wait(c);
    return true;
}

/*
 * A plain HTTP request. Without a handler it is answered at its head and
 * its body never buffered. With one, a body up to max_body_size is
 * gathered (appended, never re-copied). Returns the bytes it consumed,
 * or -1 when the connection is now closing.
 */
static long long http_serve(struct ws_conn *c, const struct wsc__http_request *req,
                            size_t head_len, const char *buf, size_t avail)
{
    struct wsc__endpoint *ep = c->ep;
    long long body_len = content_length(req);
    struct wsc__http_body *b;

    if (wsc__server_of(ep)->on_http == NULL) {
        wsc__http_refuse(c, 426, "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n");
        return -1;
    }
    if (wsc__http_find_header(req, "Transfer-Encoding") != NULL) {
        wsc__http_refuse(c, 501, NULL); /* chunked bodies are not supported */
        return -1;
    }
    if (body_len < 0) {
        wsc__http_refuse(c, 400, NULL);
        return -1;
    }
    if ((unsigned long long)body_len > ep->cfg.max_body_size) {
        wsc__http_refuse(c, 413, NULL);
        return -1;
    }
    if (avail >= head_len + (size_t)body_len) {
        if (!http_answer(c, req, head_len, buf, (size_t)body_len))
            return -1;
        return (long long)(head_len + (size_t)body_len);
    }
    /* Not all here: gather the request in a buffer of its final size. */
    b = malloc(sizeof(*b) + head_len + (size_t)body_len);
    if (b == NULL) {
        wsc__http_refuse(c, 500, NULL);
        return -1;
    }
    b->need = head_len + (size_t)body_len;
    b->have = avail;
    memcpy(b->data, buf, avail);
    c->body = b;
    return (long long)avail;
}

/* More bytes of a gathered request; answers it once complete. */
static size_t http_body_input(struct ws_conn *c, const uint8_t *buf, size_t len)
{
    struct wsc__http_body *b = c->body;
    struct wsc__http_request req = { .headers = c->ep->hdr_scratch };
    size_t n = b->need - b->have < len ? b->need - b->have : len;
    int head_len;

    memcpy(b->data + b->have, buf, n);
    b->have += n;
    if (b->have < b->need)
        return n;
    head_len = wsc__http_parse_request((const char *)b->data, b->need, 0, &req,
                                       c->ep->cfg.max_headers);
    if (head_len > 0)
        http_answer(c, &req, (size_t)head_len, (const char *)b->data,
                    b->need - (size_t)head_len);
    else /* it parsed before; it must again */
        wsc__http_refuse(c, 500, NULL);
    wsc__http_body_free(c);
    return n;
}

/* RFC 9112 3.2: an HTTP/1.1 request needs exactly one Host; none in
 * 1.0 is allowed, two never. */
static bool host_ok(const struct wsc__http_request *req)
{
    size_t n = wsc__http_count_headers(req, "Host");

    return n == 1 || (n == 0 && req->minor_version == 0);
}

/* Write 101 Switching Protocols (RFC 6455 4.2.2 item 5); tail holds the
 * upgrade hook's header lines and ends the head. */
static int http_switch_protocols(struct ws_conn *c, const char *accept, const char *tail,
                                 size_t tail_len)
{
    char ext[160] = "", head[320];
    int n;

    if (wsc__pmd_on(c)) {
        memcpy(ext, "Sec-WebSocket-Extensions: ", 26);
        if (wsc__pmd_response(&c->ext->params, ext + 26, sizeof(ext) - 28) < 0)
            return WS_ENOMEM;
        strcat(ext, "\r\n");
    }
    n = snprintf(head, sizeof(head),
                 "HTTP/1.1 101 Switching Protocols\r\n"
                 "Upgrade: websocket\r\n"
                 "Connection: Upgrade\r\n"
                 "Sec-WebSocket-Accept: %s\r\n%s",
                 accept, ext);
    if (n < 0 || (size_t)n >= sizeof(head))
        return WS_ENOMEM;
    return wsc__io_send(c, head, (size_t)n, tail, tail_len);
}

/* A full or stopping server's refusal: the bytes a socket turned away at
 * accept gets too (server.c), from one constant. */
static void http_refuse_busy(struct ws_conn *c)
{
    wsc__io_send(c, wsc__http_503_retry, strlen(wsc__http_503_retry), NULL, 0);
    wsc__conn_flush_and_close(c);
}

/* Returns true when the request was an accepted upgrade. */
bool wsc__conn_http_upgrade(struct ws_conn *c, const char *accept, const char *tail,
                            size_t tail_len)
{
    struct wsc__endpoint *ep = c->ep;

    if (atomic_load(&ep->stopping) ||
        (ep->cfg.max_connections > 0 &&
         ws_server_connection_count(ep->srv) >= ep->cfg.max_connections)) {
        http_refuse_busy(c);
        return false;
    }
    if (http_switch_protocols(c, accept, tail, tail_len) != 0 || wsc__conn_open(c) != 0) {
        wsc__http_refuse(c, 500, NULL);
        return false;
    }
    return true;
}

/* Parse and handle one request at buf[0..avail). Returns the bytes used
 * (0: the request is not complete yet). The connection's state says
 * whether to go on: still HTTP means another pipelined request may
 * follow. */
static size_t http_handle_one(struct ws_conn *c, const char *buf, size_t avail)
{
    struct wsc__endpoint *ep = c->ep;
    size_t scan = avail < ep->cfg.max_head_size ? avail : ep->cfg.max_head_size;
    struct wsc__http_request req = { .headers = ep->hdr_scratch };
    const struct wsc__http_header *key = NULL;
    char accept[WSC__ACCEPT_LEN + 1];
    struct wsc__pmd pmd;
    long long used;
    int head_len;

    if (c->upgrade != NULL) /* the upgrade hook has not decided yet */
        return wsc__upgrade_hold_input(c, avail);
    if (c->keepalive_idle) { /* the next request begins: bound its head */
        c->keepalive_idle = false;
        wsc__conn_set_timeout(c, ep->cfg.handshake_timeout_ms);
    }
    head_len = wsc__http_parse_request(buf, scan, c->http_scanned, &req,
                                       ep->cfg.max_headers);
    if (head_len == WSC__HTTP_INCOMPLETE) {
        if (avail >= ep->cfg.max_head_size) {
            wsc__http_refuse(c, 431, NULL);
            return avail;
        }
        c->http_scanned = scan;
        return 0;
    }
    c->http_scanned = 0;
    if (head_len >= 0)
        wsc__forwarded_apply(c, &req); /* the client behind a trusted proxy */
    if (head_len == WSC__HTTP_TOO_MANY_HEADERS) {
        wsc__http_refuse(c, 431, NULL);
        return avail;
    }
    if (head_len < 0 || !host_ok(&req)) {
        wsc__http_refuse(c, 400, NULL);
        return avail;
    }

    switch (wsc__handshake_check(&req, &key)) {
    case WSC__NOT_UPGRADE:
        used = http_serve(c, &req, (size_t)head_len, buf, avail);
        return used < 0 ? avail : (size_t)used;
    case WSC__UPGRADE_METHOD:
        wsc__http_refuse(c, 405, "Allow: GET\r\n");
        return avail;
    case WSC__UPGRADE_VERSION:
        wsc__http_refuse(c, 426, "Sec-WebSocket-Version: 13\r\n");
        return avail;
    case WSC__UPGRADE_BAD:
        wsc__http_refuse(c, 400, NULL);
        return avail;
    case WSC__UPGRADE_OK:
        break;
    }
    /* An upgrade has no body: one declared would be parsed as frames. */
    if (wsc__http_find_header(&req, "Transfer-Encoding") != NULL || content_length(&req) != 0) {
        wsc__http_refuse(c, 400, NULL);
        return avail;
    }
    wsc__pmd_negotiate(&req, &ep->cfg, &pmd);
    if (wsc__conn_pmd_set(c, &pmd) != 0 ||
        wsc__handshake_accept(key->value, key->value_len, accept) != 0) {
        wsc__http_refuse(c, 500, NULL);
        return avail;
    }
    /* Frames sent right behind the request are read once we return (or,
     * when the hook decides later, after its accept). */
    wsc__upgrade_start(c, &req, accept);
    return (size_t)head_len;
}

size_t wsc__conn_http_input(struct ws_conn *c, uint8_t *buf, size_t len)
{
    size_t used = 0;

    /* A PROXY protocol header comes before the request (proxy_protocol.c). */
    if (c->proxy_phase == WSC__PROXY_UNCHECKED || c->proxy_phase == WSC__PROXY_EXPECTED) {
        used = wsc__proxy_input(c, buf, len);
        if (c->proxy_phase == WSC__PROXY_EXPECTED || atomic_load(&c->state) != WSC__CONN_HTTP)
            return used;
    }

    /* Over the output cap, the remaining requests wait (io.c throttles). */
    while (used < len && atomic_load(&c->state) == WSC__CONN_HTTP &&
           !wsc__io_input_blocked(c)) {
        size_t n = c->body != NULL ? http_body_input(c, buf + used, len - used)
                                   : http_handle_one(c, (const char *)buf + used, len - used);
        if (n == 0)
            break;
        used += n;
    }
    return used;
}
