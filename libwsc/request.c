/* request.c - the HTTP request view and response writer given to ws_http_cb. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>

#include "internal.h"

/* Copy a slice into the string arena and NUL-terminate it. */
static const char *arena_put(char **arena, const char *s, size_t len)
{
    char *dst = *arena;
    memcpy(dst, s, len);
    dst[len] = '\0';
    *arena += len + 1;
    return dst;
}

int wsc__request_init(struct ws_request *r, const struct wsc__http_request *h,
                      const void *body, size_t body_len, const char *remote)
{
    size_t n = h->num_headers;
    size_t bytes = h->method_len + h->path_len + h->query_len + 3;
    char *arena;

    for (size_t i = 0; i < n; i++)
        bytes += h->headers[i].name_len + h->headers[i].value_len + 2;
    /* One allocation: two pointer arrays, then the strings. */
    r->strbuf = malloc(2 * n * sizeof(char *) + bytes + 1);
    if (r->strbuf == NULL)
        return WS_ENOMEM;
    r->hnames = (const char **)(void *)r->strbuf;
    r->hvalues = r->hnames + n;
    arena = (char *)(r->hvalues + n);
    r->method = arena_put(&arena, h->method, h->method_len);
    r->path = h->path_len > 0 ? arena_put(&arena, h->path, h->path_len)
                              : arena_put(&arena, "/", 1);
    r->query = arena_put(&arena, h->query, h->query_len);
    for (size_t i = 0; i < n; i++) {
        r->hnames[i] = arena_put(&arena, h->headers[i].name, h->headers[i].name_len);
        r->hvalues[i] = arena_put(&arena, h->headers[i].value, h->headers[i].value_len);
    }
    r->body = body;
    r->body_len = body_len;
    r->remote = remote;
    r->num_headers = n;
    r->query_len = h->query_len;
    r->protocols = NULL; /* an upgrade's are added by upgrade.c */
    r->num_protocols = 0;
    r->tls = false;
    return 0;
}

void wsc__request_release(struct ws_request *r)
{
    free(r->strbuf);
    r->strbuf = NULL;
    for (size_t i = 0; i < r->num_protocols; i++)
        free(r->protocols[i]);
    free(r->protocols);
    r->protocols = NULL;
    r->num_protocols = 0;
}

const char *ws_request_method(const struct ws_request *req)
{
    return req != NULL ? req->method : NULL;
}

const char *ws_request_path(const struct ws_request *req)
{
    return req != NULL ? req->path : NULL;
}

const char *ws_request_query(const struct ws_request *req)
{
    return req != NULL ? req->query : NULL;
}

const char *ws_request_header(const struct ws_request *req, const char *name)
{
    if (req == NULL || name == NULL)
        return NULL;
    for (size_t i = 0; i < req->num_headers; i++)
        if (strcasecmp(req->hnames[i], name) == 0)
            return req->hvalues[i];
    return NULL;
}

size_t ws_request_header_count(const struct ws_request *req)
{
    return req != NULL ? req->num_headers : 0;
}

int ws_request_header_at(const struct ws_request *req, size_t index,
                         const char **name, const char **value)
{
    if (req == NULL)
        return WS_EINVAL;
    if (index >= req->num_headers)
        return WS_ENOTFOUND;
    if (name != NULL)
        *name = req->hnames[index];
    if (value != NULL)
        *value = req->hvalues[index];
    return 0;
}

int ws_request_query_param(const struct ws_request *req, const char *name,
                           char *out, size_t outlen)
{
    if (req == NULL)
        return WS_EINVAL;
    /* The copy, not the parsed slice: an upgrade's request outlives its
     * read buffer while the hook decides. */
    return wsc__http_query_param(req->query, req->query_len, name, out, outlen);
}

const void *ws_request_body(const struct ws_request *req, size_t *len)
{
    if (req == NULL)
        return NULL;
    if (len != NULL)
        *len = req->body_len;
    return req->body;
}

const char *ws_request_remote_addr(const struct ws_request *req)
{
    return req != NULL ? req->remote : NULL;
}

const char *ws_request_origin(const struct ws_request *req)
{
    return ws_request_header(req, "Origin");
}

size_t ws_request_subprotocol_count(const struct ws_request *req)
{
    return req != NULL ? req->num_protocols : 0;
}

const char *ws_request_subprotocol_at(const struct ws_request *req, size_t index)
{
    return req != NULL && index < req->num_protocols ? req->protocols[index] : NULL;
}

int ws_request_is_tls(const struct ws_request *req)
{
    return req != NULL && req->tls ? 1 : 0;
}

/* Header fields must not smuggle CR/LF into the response (splitting). */
static bool header_text_ok(const char *s)
{
    return strpbrk(s, "\r\n") == NULL;
}

int ws_response_add_header(struct ws_response *res, const char *name,
                           const char *value)
{
    if (res == NULL || name == NULL || value == NULL || name[0] == '\0' ||
        !header_text_ok(name) || !header_text_ok(value) || strchr(name, ':') != NULL)
        return WS_EINVAL;
    if (res->sent)
        return WS_ESTATE;
    if (evbuffer_add_printf(res->headers, "%s: %s\r\n", name, value) < 0)
        return WS_ENOMEM;
    return 0;
}

int ws_response_send(struct ws_response *res, int status, const char *content_type,
                     const void *body, size_t len)
{
    if (res == NULL || status < 200 || status > 999 || (body == NULL && len > 0) ||
        (content_type != NULL && !header_text_ok(content_type)))
        return WS_EINVAL;
    if (res->sent)
        return WS_ESTATE;
    res->sent = true;
    evbuffer_add_printf(res->out, "HTTP/1.1 %d %s\r\n", status,
                        wsc__http_status_text(status));
    if (content_type != NULL)
        evbuffer_add_printf(res->out, "Content-Type: %s\r\n", content_type);
    evbuffer_add_printf(res->out, "Content-Length: %zu\r\nConnection: %s\r\n", len,
                        res->keep_alive ? "keep-alive" : "close");
    evbuffer_add_buffer(res->out, res->headers);
    evbuffer_add(res->out, "\r\n", 2);
    if (!res->head_only && len > 0)
        evbuffer_add(res->out, body, len);
    return 0;
}

void wsc__response_simple(struct evbuffer *out, int status, const char *extra_headers)
{
    const char *text = wsc__http_status_text(status);

    evbuffer_add_printf(out,
                        "HTTP/1.1 %d %s\r\n"
                        "Content-Type: text/plain\r\n"
                        "Content-Length: %zu\r\n"
                        "Connection: close\r\n"
                        "%s\r\n"
                        "%s\n",
                        status, text, strlen(text) + 1,
                        extra_headers != NULL ? extra_headers : "", text);
}
