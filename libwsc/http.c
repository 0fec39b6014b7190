/*
 * http.c - minimal HTTP/1.1 request-head parser (RFC 9112), zero-copy.
 *
 * Stateless like picohttpparser: every call parses from the first byte and
 * fills slices pointing into the caller's buffer. Only the search for the
 * end of the head resumes (last_len), so a client dribbling one byte at a
 * time costs linear work, not quadratic. Size limits are the caller's: it
 * knows how many bytes it is willing to buffer.
 */
#include <string.h>
#include <strings.h>

#include "internal.h"

/* RFC 9110 5.6.2 tchar. */
static const char token_chars[256] = {
    ['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1, ['\''] = 1,
    ['*'] = 1, ['+'] = 1, ['-'] = 1, ['.'] = 1, ['^'] = 1, ['_'] = 1,
    ['`'] = 1, ['|'] = 1, ['~'] = 1,
    ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1,
    ['6'] = 1, ['7'] = 1, ['8'] = 1, ['9'] = 1,
    ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1,
    ['G'] = 1, ['H'] = 1, ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1,
    ['M'] = 1, ['N'] = 1, ['O'] = 1, ['P'] = 1, ['Q'] = 1, ['R'] = 1,
    ['S'] = 1, ['T'] = 1, ['U'] = 1, ['V'] = 1, ['W'] = 1, ['X'] = 1,
    ['Y'] = 1, ['Z'] = 1,
    ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1,
    ['g'] = 1, ['h'] = 1, ['i'] = 1, ['j'] = 1, ['k'] = 1, ['l'] = 1,
    ['m'] = 1, ['n'] = 1, ['o'] = 1, ['p'] = 1, ['q'] = 1, ['r'] = 1,
    ['s'] = 1, ['t'] = 1, ['u'] = 1, ['v'] = 1, ['w'] = 1, ['x'] = 1,
    ['y'] = 1, ['z'] = 1,
};

static bool is_token(unsigned char c)
{
    return token_chars[c] != 0;
}

/* field-value bytes: VCHAR, obs-text, SP, HTAB (RFC 9110 5.5). */
static bool is_value_char(unsigned char c)
{
    return c == '\t' || (c >= 0x20 && c != 0x7F);
}

/* Length of the head (through its empty line), or 0 if not complete. */
static size_t find_head_end(const char *buf, size_t len, size_t last_len)
{
    size_t i = last_len > 3 ? last_len - 3 : 0;

    for (; i < len; i++) {
        const char *nl = memchr(buf + i, '\n', len - i);
        if (nl == NULL)
            return 0;
        i = (size_t)(nl - buf);
        if (i >= 1 && buf[i - 1] == '\n')
            return i + 1;
        if (i >= 2 && buf[i - 1] == '\r' && buf[i - 2] == '\n')
            return i + 1;
    }
    return 0;
}

/* One line of [p, end): *eol is where its content ends (before CR LF or
 * LF); returns the start of the next line, or NULL on a stray CR. */
static const char *split_line(const char *p, const char *end, const char **eol)
{
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    const char *e;

    if (nl == NULL)
        return NULL;
    e = nl;
    if (e > p && e[-1] == '\r')
        e--;
    if (memchr(p, '\r', (size_t)(e - p)) != NULL)
        return NULL;
    *eol = e;
    return nl + 1;
}

static bool parse_target(struct wsc__http_request *req)
{
    const char *t = req->target, *end = t + req->target_len, *q;

    for (const char *p = t; p < end; p++)
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7F)
            return false;
    if (req->target_len == 1 && t[0] == '*') {
        req->path = t;
        req->path_len = 1;
        req->query = end;
        req->query_len = 0;
        return true;
    }
    if (t[0] != '/') {
        /* absolute-form (RFC 9112 3.2.2): skip scheme and authority. */
        const char *sep = memchr(t, ':', req->target_len);
        if (sep == NULL || end - sep < 3 || sep[1] != '/' || sep[2] != '/')
            return false;
        t = memchr(sep + 3, '/', (size_t)(end - sep - 3));
        if (t == NULL)
            t = end;
    }
    q = memchr(t, '?', (size_t)(end - t));
    req->path = t;
    req->path_len = (size_t)((q != NULL ? q : end) - t);
    req->query = q != NULL ? q + 1 : end;
    req->query_len = (size_t)(end - req->query);
    return true;
}

static bool parse_request_line(const char *p, const char *eol,
                               struct wsc__http_request *req)
{
    const char *s = p;

    while (p < eol && is_token((unsigned char)*p))
        p++;
    if (p == s || p == eol || *p != ' ')
        return false;
    req->method = s;
    req->method_len = (size_t)(p - s);

    s = ++p;
    while (p < eol && *p != ' ')
        p++;
    if (p == s || p == eol)
        return false;
    req->target = s;
    req->target_len = (size_t)(p - s);
    if (!parse_target(req))
        return false;

    p++;
    if (eol - p != 8 || memcmp(p, "HTTP/1.", 7) != 0 || (p[7] != '0' && p[7] != '1'))
        return false;
    req->minor_version = p[7] - '0';
    return true;
}

static bool parse_header_line(const char *p, const char *eol,
                              struct wsc__http_header *h)
{
    const char *s = p;

    while (p < eol && is_token((unsigned char)*p))
        p++;
    /* No whitespace between name and colon (RFC 9112 5.1: MUST reject). */
    if (p == s || p == eol || *p != ':')
        return false;
    h->name = s;
    h->name_len = (size_t)(p - s);
    p++;
    while (p < eol && (*p == ' ' || *p == '\t'))
        p++;
    s = p;
    for (; p < eol; p++)
        if (!is_value_char((unsigned char)*p))
            return false;
    while (p > s && (p[-1] == ' ' || p[-1] == '\t'))
        p--;
    h->value = s;
    h->value_len = (size_t)(p - s);
    return true;
}

/* Header lines from p up to the empty line that ends the head at end.
 * Returns head_len, or a negative WSC__HTTP_* code. */
static int parse_headers(const char *p, const char *end, struct wsc__http_request *req,
                         size_t max_headers, size_t head_len)
{
    const char *eol;

    for (;;) {
        const char *line = p;
        p = split_line(line, end, &eol);
        if (p == NULL)
            return WSC__HTTP_BAD;
        if (eol == line)
            return (int)head_len; /* the empty line */
        if (*line == ' ' || *line == '\t')
            return WSC__HTTP_BAD; /* obs-fold (RFC 9112 5.2) */
        if (req->num_headers == max_headers)
            return WSC__HTTP_TOO_MANY_HEADERS;
        if (!parse_header_line(line, eol, &req->headers[req->num_headers]))
            return WSC__HTTP_BAD;
        req->num_headers++;
    }
}

int wsc__http_parse_request(const char *buf, size_t len, size_t last_len,
                            struct wsc__http_request *req, size_t max_headers)
{
    size_t head_len = find_head_end(buf, len, last_len);
    const char *p = buf, *end = buf + head_len, *eol;

    if (head_len == 0)
        return WSC__HTTP_INCOMPLETE;
    if (head_len > (size_t)INT32_MAX)
        return WSC__HTTP_BAD;
    req->num_headers = 0;

    p = split_line(p, end, &eol);
    if (p == NULL || !parse_request_line(buf, eol, req))
        return WSC__HTTP_BAD;

    return parse_headers(p, end, req, max_headers, head_len);
}

static bool name_equals(const char *a, size_t alen, const char *b)
{
    return strlen(b) == alen && strncasecmp(a, b, alen) == 0;
}

const struct wsc__http_header *wsc__http_find_header(
    const struct wsc__http_request *req, const char *name)
{
    for (size_t i = 0; i < req->num_headers; i++)
        if (name_equals(req->headers[i].name, req->headers[i].name_len, name))
            return &req->headers[i];
    return NULL;
}

static bool list_has_token(const char *v, size_t len, const char *token)
{
    const char *end = v + len;

    while (v < end) {
        const char *comma = memchr(v, ',', (size_t)(end - v));
        const char *e = comma != NULL ? comma : end;
        const char *s = v;
        while (s < e && (*s == ' ' || *s == '\t'))
            s++;
        const char *t = e;
        while (t > s && (t[-1] == ' ' || t[-1] == '\t'))
            t--;
        if (name_equals(s, (size_t)(t - s), token))
            return true;
        v = e + 1;
    }
    return false;
}

bool wsc__http_header_has_token(const struct wsc__http_request *req,
                                const char *name, const char *token)
{
    for (size_t i = 0; i < req->num_headers; i++) {
        const struct wsc__http_header *h = &req->headers[i];
        if (name_equals(h->name, h->name_len, name) &&
            list_has_token(h->value, h->value_len, token))
            return true;
    }
    return false;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decode one application/x-www-form-urlencoded value. */
static int percent_decode(const char *v, size_t len, char *out, size_t outlen)
{
    size_t n = 0;

    if (outlen == 0)
        return WS_ETOOBIG;
    for (size_t i = 0; i < len; i++) {
        char c = v[i];
        if (c == '%') {
            int hi, lo;
            if (i + 2 >= len)
                return WS_EINVAL; /* truncated escape */
            hi = hex_value(v[i + 1]);
            lo = hex_value(v[i + 2]);
            if (hi < 0 || lo < 0)
                return WS_EINVAL;
            c = (char)(hi * 16 + lo);
            i += 2;
        } else if (c == '+') {
            c = ' ';
        }
        if (n + 1 >= outlen)
            return WS_ETOOBIG;
        out[n++] = c;
    }
    out[n] = '\0';
    return (int)n;
}

int wsc__http_query_param(const char *query, size_t query_len, const char *name,
                          char *out, size_t outlen)
{
    const char *p = query, *end = query + query_len;

    if (name == NULL || out == NULL)
        return WS_EINVAL;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *e = amp != NULL ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(e - p));
        const char *ne = eq != NULL ? eq : e;
        if ((size_t)(ne - p) == strlen(name) && memcmp(p, name, (size_t)(ne - p)) == 0) {
            const char *v = eq != NULL ? eq + 1 : e;
            return percent_decode(v, (size_t)(e - v), out, outlen);
        }
        p = e + 1;
    }
    return WS_ENOTFOUND;
}

const char *wsc__http_status_text(int status)
{
    switch (status) {
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 426: return "Upgrade Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
    }
}

/* "HTTP/1.x SP 3DIGIT SP reason" (RFC 9112 4). */
static bool parse_status_line(const char *p, const char *eol,
                              struct wsc__http_response *resp)
{
    if (eol - p < 12 || memcmp(p, "HTTP/1.", 7) != 0 || (p[7] != '0' && p[7] != '1') ||
        p[8] != ' ')
        return false;
    for (int i = 9; i < 12; i++)
        if (p[i] < '0' || p[i] > '9')
            return false;
    if (eol - p > 12 && p[12] != ' ')
        return false;
    resp->minor_version = p[7] - '0';
    resp->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
    return true;
}

int wsc__http_parse_response(const char *buf, size_t len, size_t last_len,
                             struct wsc__http_response *resp, size_t max_headers)
{
    size_t head_len = find_head_end(buf, len, last_len);
    const char *p = buf, *end = buf + head_len, *eol;
    struct wsc__http_request *h = &resp->head;

    if (head_len == 0)
        return WSC__HTTP_INCOMPLETE;
    if (head_len > (size_t)INT32_MAX)
        return WSC__HTTP_BAD;
    h->num_headers = 0;
    p = split_line(p, end, &eol);
    if (p == NULL || !parse_status_line(buf, eol, resp))
        return WSC__HTTP_BAD;
    return parse_headers(p, end, h, max_headers, head_len);
}

size_t wsc__http_count_headers(const struct wsc__http_request *req, const char *name)
{
    size_t n = 0, len = strlen(name);

    for (size_t i = 0; i < req->num_headers; i++)
        if (req->headers[i].name_len == len && strncasecmp(req->headers[i].name, name, len) == 0)
            n++;
    return n;
}
