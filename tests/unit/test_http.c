/*
 * test_http.c - the request-head parser and its helpers (libwsc/http.c).
 *
 * Inputs are copied into buffers of exactly their length (malloc, or a
 * guard page) wherever an over-read would matter, so a sanitizer or a
 * SIGSEGV catches the parser reading past len.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "internal.h"
#include "unit.h"

#define MAX_HDRS 100
/* A string literal as (pointer, length): embedded NULs allowed. */
#define LIT(s) s, sizeof(s) - 1
#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

struct parsed {
    struct wsc__http_request req;
    struct wsc__http_header hdrs[MAX_HDRS];
};

static int parse_n(struct parsed *p, const char *buf, size_t len)
{
    memset(p, 0, sizeof(*p));
    p->req.headers = p->hdrs;
    return wsc__http_parse_request(buf, len, 0, &p->req, MAX_HDRS);
}

static int parse(struct parsed *p, const char *s)
{
    return parse_n(p, s, strlen(s));
}

/* Parse a private copy of exactly len bytes; only the verdict survives. */
static int parse_copy(const char *data, size_t len, size_t max_headers)
{
    struct wsc__http_header *hdrs = calloc(max_headers + 1, sizeof(*hdrs));
    struct wsc__http_request req;
    char *buf = malloc(len + 1);
    int rc = WSC__HTTP_BAD - 100;

    if (!CHECK(hdrs != NULL && buf != NULL)) {
        free(hdrs);
        free(buf);
        return rc;
    }
    /* len + 1 so that malloc(0) is never asked for; the extra byte sits at
     * the front, so buf + 1 .. buf + 1 + len is still exactly the input. */
    memcpy(buf + 1, data, len);
    memset(&req, 0, sizeof(req));
    req.headers = hdrs;
    rc = wsc__http_parse_request(buf + 1, len, 0, &req, max_headers);
    free(buf);
    free(hdrs);
    return rc;
}

static const char *rc_name(int rc)
{
    switch (rc) {
    case WSC__HTTP_INCOMPLETE: return "INCOMPLETE";
    case WSC__HTTP_BAD: return "BAD";
    case WSC__HTTP_TOO_MANY_HEADERS: return "TOO_MANY_HEADERS";
    default: return rc >= 0 ? "a head length" : "an unknown code";
    }
}

/* ---- well-formed requests -------------------------------------------------- */

static void test_minimal_get(void)
{
    struct parsed p;
    const char *s = "GET / HTTP/1.1\r\n\r\n";

    CHECK_INT_EQ(parse(&p, s), strlen(s));
    CHECK_SLICE_EQ(p.req.method, p.req.method_len, "GET");
    CHECK_SLICE_EQ(p.req.target, p.req.target_len, "/");
    CHECK_SLICE_EQ(p.req.path, p.req.path_len, "/");
    CHECK_INT_EQ(p.req.query_len, 0);
    CHECK_INT_EQ(p.req.minor_version, 1);
    CHECK_INT_EQ(p.req.num_headers, 0);
    CHECK(p.req.headers == p.hdrs);
    /* Slices point into the caller's buffer (zero-copy). */
    CHECK(p.req.method == s);
    CHECK(p.req.target == s + 4);

    s = "GET /chat HTTP/1.0\r\nHost: example.com\r\n\r\n";
    CHECK_INT_EQ(parse(&p, s), strlen(s));
    CHECK_INT_EQ(p.req.minor_version, 0);
    CHECK_SLICE_EQ(p.req.path, p.req.path_len, "/chat");
    if (CHECK_INT_EQ(p.req.num_headers, 1)) {
        CHECK_SLICE_EQ(p.hdrs[0].name, p.hdrs[0].name_len, "Host");
        CHECK_SLICE_EQ(p.hdrs[0].value, p.hdrs[0].value_len, "example.com");
    }
}

static void test_method_token_chars(void)
{
    static const char *const ok[] = {
        "get / HTTP/1.1\r\n\r\n",
        "M-SEARCH * HTTP/1.1\r\n\r\n",
        "!#$%&'*+-.^_`|~09AZaz / HTTP/1.1\r\n\r\n",
    };
    struct parsed p;

    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        if (!CHECK_INT_EQ(parse(&p, ok[i]), strlen(ok[i])))
            UNIT_NOTE("request %zu", i);
    }
    CHECK_SLICE_EQ(p.req.method, p.req.method_len, "!#$%&'*+-.^_`|~09AZaz");
}

static void test_header_values_trimmed(void)
{
    static const char s[] =
        "GET / HTTP/1.1\r\n"
        "A:x\r\n"
        "B:   spaced   \r\n"
        "C: \t tab\t \r\n"
        "D:\r\n"
        "E:  \t \r\n"
        "F: in\tner  sp\r\n"
        "G: caf\xc3\xa9\r\n"
        "\r\n";
    static const char *const names[] = { "A", "B", "C", "D", "E", "F", "G" };
    static const char *const values[] = {
        "x", "spaced", "tab", "", "", "in\tner  sp", "caf\xc3\xa9",
    };
    struct parsed p;

    CHECK_INT_EQ(parse(&p, s), strlen(s));
    if (!CHECK_INT_EQ(p.req.num_headers, 7))
        return;
    for (size_t i = 0; i < 7; i++) {
        CHECK_SLICE_EQ(p.hdrs[i].name, p.hdrs[i].name_len, names[i]);
        CHECK_SLICE_EQ(p.hdrs[i].value, p.hdrs[i].value_len, values[i]);
    }
}

/* ---- header count limits ----------------------------------------------------- */

/* "GET / HTTP/1.1" plus n headers "X-H<i>: v<i>". */
static size_t build_request(char *buf, size_t size, size_t n)
{
    size_t len = (size_t)snprintf(buf, size, "GET / HTTP/1.1\r\n");

    for (size_t i = 0; i < n && len < size; i++)
        len += (size_t)snprintf(buf + len, size - len, "X-H%zu: v%zu\r\n", i, i);
    if (len < size)
        len += (size_t)snprintf(buf + len, size - len, "\r\n");
    CHECK(len < size);
    return len;
}

/* Parse n headers with a limit of max into an array of exactly max entries
 * followed by a sentinel that must stay untouched. */
static void check_header_limit(size_t max, size_t n)
{
    char buf[16384];
    size_t len = build_request(buf, sizeof(buf), n);
    struct wsc__http_header *hdrs = malloc((max + 1) * sizeof(*hdrs));
    struct wsc__http_header sentinel;
    struct wsc__http_request req;
    int rc;

    if (!CHECK(hdrs != NULL))
        return;
    memset(&sentinel, 0x5A, sizeof(sentinel));
    memcpy(&hdrs[max], &sentinel, sizeof(sentinel));
    memset(&req, 0, sizeof(req));
    req.headers = hdrs;
    rc = wsc__http_parse_request(buf, len, 0, &req, max);
    if (n <= max) {
        if (CHECK_INT_EQ(rc, len) && CHECK_INT_EQ(req.num_headers, n) && n > 0) {
            char name[32], value[32];
            snprintf(name, sizeof(name), "X-H%zu", n - 1);
            snprintf(value, sizeof(value), "v%zu", n - 1);
            CHECK_SLICE_EQ(hdrs[n - 1].name, hdrs[n - 1].name_len, name);
            CHECK_SLICE_EQ(hdrs[n - 1].value, hdrs[n - 1].value_len, value);
        }
    } else {
        CHECK_INT_EQ(rc, WSC__HTTP_TOO_MANY_HEADERS);
    }
    if (!CHECK(memcmp(&hdrs[max], &sentinel, sizeof(sentinel)) == 0))
        UNIT_NOTE("header array overrun");
    if (rc != (n <= max ? (int)len : WSC__HTTP_TOO_MANY_HEADERS))
        UNIT_NOTE("max_headers %zu, %zu headers: got %d (%s)", max, n, rc, rc_name(rc));
    free(hdrs);
}

static void test_max_headers_100(void)
{
    check_header_limit(100, 0);
    check_header_limit(100, 99);
    check_header_limit(100, 100);
    check_header_limit(100, 101);
    check_header_limit(100, 150);
}

static void test_max_headers_small(void)
{
    check_header_limit(3, 0);
    check_header_limit(3, 2);
    check_header_limit(3, 3);
    check_header_limit(3, 4);
    check_header_limit(3, 100);
    check_header_limit(1, 1);
    check_header_limit(1, 2);
    check_header_limit(0, 0);
    check_header_limit(0, 1);
}

/* ---- incomplete and incremental input ---------------------------------------- */

static const char *const good_requests[] = {
    "GET /chat?room=1 HTTP/1.1\r\n"
    "Host: server.example.com\r\n"
    "Upgrade: websocket\r\n"
    "Connection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Sec-WebSocket-Version: 13\r\n"
    "\r\n",
    "GET / HTTP/1.1\nHost: a\nX-Empty:\n\n",
    "GET / HTTP/1.0\r\nA: 1\nB: 2\r\n\n",
    "GET / HTTP/1.1\nA: 1\r\n\r\n",
    "GET / HTTP/1.1\r\n\r\n",
    "GET / HTTP/1.1\n\n",
    "GET / HTTP/1.1\n\r\n",
};
#define N_GOOD (sizeof(good_requests) / sizeof(good_requests[0]))

static void test_incomplete_every_offset(void)
{
    for (size_t r = 0; r < N_GOOD; r++) {
        const char *s = good_requests[r];
        size_t len = strlen(s);

        for (size_t i = 0; i < len; i++) {
            int rc = parse_copy(s, i, MAX_HDRS);
            if (!CHECK_INT_EQ(rc, WSC__HTTP_INCOMPLETE)) {
                UNIT_NOTE("request %zu cut at %zu of %zu bytes: %s", r, i, len,
                          rc_name(rc));
                break;
            }
        }
        if (!CHECK_INT_EQ(parse_copy(s, len, MAX_HDRS), len))
            UNIT_NOTE("request %zu whole", r);
    }
}

/* Everything the parser reports, compared between two parses of the same
 * buffer (so equal slices are equal pointers). */
static bool same_result(int rc_a, const struct wsc__http_request *a,
                        int rc_b, const struct wsc__http_request *b)
{
    bool ok = CHECK_INT_EQ(rc_a, rc_b);

    if (!ok || rc_a < 0)
        return ok;
    ok = CHECK(a->method == b->method) && ok;
    ok = CHECK_INT_EQ(a->method_len, b->method_len) && ok;
    ok = CHECK(a->target == b->target) && ok;
    ok = CHECK_INT_EQ(a->target_len, b->target_len) && ok;
    ok = CHECK(a->path == b->path) && ok;
    ok = CHECK_INT_EQ(a->path_len, b->path_len) && ok;
    ok = CHECK(a->query_len == 0 || a->query == b->query) && ok;
    ok = CHECK_INT_EQ(a->query_len, b->query_len) && ok;
    ok = CHECK_INT_EQ(a->minor_version, b->minor_version) && ok;
    if (!CHECK_INT_EQ(a->num_headers, b->num_headers))
        return false;
    for (size_t i = 0; i < a->num_headers; i++) {
        const struct wsc__http_header *x = &a->headers[i], *y = &b->headers[i];
        ok = CHECK(x->name == y->name && x->name_len == y->name_len &&
                   x->value == y->value && x->value_len == y->value_len) && ok;
    }
    return ok;
}

/* Feed buf in steps of `step` bytes, passing last_len from the previous
 * INCOMPLETE call; every call must match a parse from scratch. */
static bool feed_in_steps(const char *buf, size_t len, size_t step, size_t max)
{
    struct wsc__http_header h_inc[MAX_HDRS], h_one[MAX_HDRS];
    struct wsc__http_request inc, one;
    size_t last = 0;

    for (size_t n = step < len ? step : len;; n = n + step < len ? n + step : len) {
        int rc_inc, rc_one;

        memset(&inc, 0, sizeof(inc));
        memset(&one, 0, sizeof(one));
        inc.headers = h_inc;
        one.headers = h_one;
        rc_inc = wsc__http_parse_request(buf, n, last, &inc, max);
        rc_one = wsc__http_parse_request(buf, n, 0, &one, max);
        if (!same_result(rc_inc, &inc, rc_one, &one)) {
            UNIT_NOTE("step %zu: %zu bytes, last_len %zu: %s vs %s from scratch",
                      step, n, last, rc_name(rc_inc), rc_name(rc_one));
            return false;
        }
        if (rc_inc == WSC__HTTP_INCOMPLETE)
            last = n;
        if (n == len)
            return true;
    }
}

static void test_incremental_last_len(void)
{
    static const char *const extra[] = {
        /* complete head followed by a second, pipelined one */
        "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: y\r\n\r\n",
        /* malformed: must be BAD whichever way it arrives */
        "GET / HTTP/1.1\r\nBad Name: x\r\n\r\n",
        "GET / HTTP/2.0\r\n\r\n",
        /* four headers: TOO_MANY with a limit of 3 */
        "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n",
        /* near-terminators that are not one */
        "GET / HTTP/1.1\r\nA: \r\r\n\rB: 2\r\n\r\n",
        "GET / HTTP/1.1\r\nA: 1\r\n\r",
    };

    for (size_t r = 0; r < N_GOOD + N_OF(extra); r++) {
        const char *s = r < N_GOOD ? good_requests[r] : extra[r - N_GOOD];
        size_t len = strlen(s);

        for (size_t step = 1; step <= len; step++) {
            if (!feed_in_steps(s, len, step, MAX_HDRS) ||
                !feed_in_steps(s, len, step, 3)) {
                UNIT_NOTE("request %zu", r);
                break;
            }
        }
    }
}

static void test_incremental_one_byte(void)
{
    /* The plain case spelled out: one byte at a time ends in the one-shot
     * result, and every shorter prefix is INCOMPLETE. */
    const char *s = good_requests[0];
    size_t len = strlen(s), last = 0;
    struct parsed inc, one;
    int rc = WSC__HTTP_INCOMPLETE;

    for (size_t n = 1; n <= len; n++) {
        memset(&inc, 0, sizeof(inc));
        inc.req.headers = inc.hdrs;
        rc = wsc__http_parse_request(s, n, last, &inc.req, MAX_HDRS);
        if (n < len && !CHECK_INT_EQ(rc, WSC__HTTP_INCOMPLETE)) {
            UNIT_NOTE("at %zu bytes", n);
            return;
        }
        last = n;
    }
    same_result(rc, &inc.req, parse(&one, s), &one.req);
    CHECK_INT_EQ(rc, len);
    CHECK_INT_EQ(inc.req.num_headers, 5);
}

static void test_bare_lf(void)
{
    struct parsed p;
    const char *s = "GET /x?y=1 HTTP/1.1\nHost: a\nConnection: Upgrade\n\n";

    CHECK_INT_EQ(parse(&p, s), strlen(s));
    CHECK_SLICE_EQ(p.req.path, p.req.path_len, "/x");
    CHECK_SLICE_EQ(p.req.query, p.req.query_len, "y=1");
    if (CHECK_INT_EQ(p.req.num_headers, 2)) {
        CHECK_SLICE_EQ(p.hdrs[0].value, p.hdrs[0].value_len, "a");
        CHECK_SLICE_EQ(p.hdrs[1].name, p.hdrs[1].name_len, "Connection");
        CHECK_SLICE_EQ(p.hdrs[1].value, p.hdrs[1].value_len, "Upgrade");
    }

    /* CRLF and LF mixed, and each possible empty-line form. */
    s = "GET / HTTP/1.1\r\nA: 1\nB: 2\r\n\n";
    CHECK_INT_EQ(parse(&p, s), strlen(s));
    CHECK_INT_EQ(p.req.num_headers, 2);
    CHECK_SLICE_EQ(p.hdrs[0].value, p.hdrs[0].value_len, "1");
    CHECK_SLICE_EQ(p.hdrs[1].value, p.hdrs[1].value_len, "2");
    s = "GET / HTTP/1.1\nA: 1\n\r\n";
    CHECK_INT_EQ(parse(&p, s), strlen(s));
    CHECK_INT_EQ(p.req.num_headers, 1);
    s = "GET / HTTP/1.1\n\n";
    CHECK_INT_EQ(parse(&p, s), strlen(s));
    CHECK_INT_EQ(p.req.num_headers, 0);
}

/* ---- header lookup -------------------------------------------------------------- */

static void test_repeated_headers(void)
{
    struct parsed p;
    const char *s = "GET / HTTP/1.1\r\nSet: a\r\nOther: z\r\nset: b\r\nSET: c\r\n\r\n";

    CHECK_INT_EQ(parse(&p, s), strlen(s));
    if (!CHECK_INT_EQ(p.req.num_headers, 4))
        return;
    CHECK_SLICE_EQ(p.hdrs[0].name, p.hdrs[0].name_len, "Set");
    CHECK_SLICE_EQ(p.hdrs[0].value, p.hdrs[0].value_len, "a");
    CHECK_SLICE_EQ(p.hdrs[1].name, p.hdrs[1].name_len, "Other");
    CHECK_SLICE_EQ(p.hdrs[2].name, p.hdrs[2].name_len, "set");
    CHECK_SLICE_EQ(p.hdrs[2].value, p.hdrs[2].value_len, "b");
    CHECK_SLICE_EQ(p.hdrs[3].name, p.hdrs[3].name_len, "SET");
    CHECK_SLICE_EQ(p.hdrs[3].value, p.hdrs[3].value_len, "c");
    /* lookup gives the first */
    CHECK(wsc__http_find_header(&p.req, "set") == &p.hdrs[0]);
    CHECK(wsc__http_find_header(&p.req, "Other") == &p.hdrs[1]);
}

static void test_find_header_case(void)
{
    struct parsed p;
    const char *s = "GET / HTTP/1.1\r\nHost: example.com\r\nX-Thing: 1\r\n\r\n";

    CHECK_INT_EQ(parse(&p, s), strlen(s));
    if (!CHECK_INT_EQ(p.req.num_headers, 2))
        return;
    CHECK(wsc__http_find_header(&p.req, "Host") == &p.hdrs[0]);
    CHECK(wsc__http_find_header(&p.req, "host") == &p.hdrs[0]);
    CHECK(wsc__http_find_header(&p.req, "HOST") == &p.hdrs[0]);
    CHECK(wsc__http_find_header(&p.req, "hOsT") == &p.hdrs[0]);
    CHECK(wsc__http_find_header(&p.req, "x-thing") == &p.hdrs[1]);
    CHECK(wsc__http_find_header(&p.req, "X-THING") == &p.hdrs[1]);
    /* whole names only */
    CHECK(wsc__http_find_header(&p.req, "Hos") == NULL);
    CHECK(wsc__http_find_header(&p.req, "Hostx") == NULL);
    CHECK(wsc__http_find_header(&p.req, "Host ") == NULL);
    CHECK(wsc__http_find_header(&p.req, "") == NULL);
    CHECK(wsc__http_find_header(&p.req, "Missing") == NULL);

    s = "GET / HTTP/1.1\r\n\r\n";
    CHECK_INT_EQ(parse(&p, s), strlen(s));
    CHECK(wsc__http_find_header(&p.req, "Host") == NULL);
}

static void test_header_token_list(void)
{
    struct parsed p;
    const char *s =
        "GET / HTTP/1.1\r\n"
        "A: keep-alive, Upgrade\r\n"
        "B: upgrades\r\n"
        "C: xupgrade, upgrade-x, up\r\n"
        "D: keep-alive,upgrade\r\n"
        "E: close ,\tUPGRADE\t, keep-alive\r\n"
        "F: ,, upgrade ,,\r\n"
        "G:\r\n"
        "H: keep-alive\r\n"
        "H: upgrade\r\n"
        "X-I: upgrade\r\n"
        "\r\n";

    CHECK_INT_EQ(parse(&p, s), strlen(s));
    CHECK(wsc__http_header_has_token(&p.req, "A", "upgrade"));
    CHECK(wsc__http_header_has_token(&p.req, "a", "UPGRADE"));
    CHECK(wsc__http_header_has_token(&p.req, "A", "keep-alive"));
    CHECK(wsc__http_header_has_token(&p.req, "A", "Keep-Alive"));
    CHECK(!wsc__http_header_has_token(&p.req, "A", "keep"));
    CHECK(!wsc__http_header_has_token(&p.req, "A", "alive"));
    CHECK(!wsc__http_header_has_token(&p.req, "A", "keep-alive, Upgrade"));
    CHECK(!wsc__http_header_has_token(&p.req, "B", "upgrade"));
    CHECK(wsc__http_header_has_token(&p.req, "B", "upgrades"));
    CHECK(!wsc__http_header_has_token(&p.req, "C", "upgrade"));
    CHECK(wsc__http_header_has_token(&p.req, "C", "up"));
    CHECK(wsc__http_header_has_token(&p.req, "D", "upgrade"));
    CHECK(wsc__http_header_has_token(&p.req, "D", "keep-alive"));
    CHECK(wsc__http_header_has_token(&p.req, "E", "upgrade"));
    CHECK(wsc__http_header_has_token(&p.req, "E", "close"));
    CHECK(wsc__http_header_has_token(&p.req, "E", "keep-alive"));
    CHECK(wsc__http_header_has_token(&p.req, "F", "upgrade"));
    CHECK(!wsc__http_header_has_token(&p.req, "G", "upgrade"));
    /* repeated headers: every one is searched */
    CHECK(wsc__http_header_has_token(&p.req, "H", "upgrade"));
    CHECK(wsc__http_header_has_token(&p.req, "h", "keep-alive"));
    /* the header name must match whole */
    CHECK(!wsc__http_header_has_token(&p.req, "I", "upgrade"));
    CHECK(!wsc__http_header_has_token(&p.req, "Missing", "upgrade"));
}

/* ---- targets ---------------------------------------------------------------------- */

static void test_path_query(void)
{
    static const struct {
        const char *target, *path, *query;
    } cases[] = {
        { "/", "/", "" },
        { "/chat", "/chat", "" },
        { "/chat?room=1&x=2", "/chat", "room=1&x=2" },
        { "/a?b?c", "/a", "b?c" },
        { "/a?", "/a", "" },
        { "/?x", "/", "x" },
        { "/a/b%20c/?q=%3F", "/a/b%20c/", "q=%3F" },
    };
    struct parsed p;
    char s[256];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(s, sizeof(s), "GET %s HTTP/1.1\r\n\r\n", cases[i].target);
        if (!CHECK_INT_EQ(parse(&p, s), strlen(s))) {
            UNIT_NOTE("target %s", cases[i].target);
            continue;
        }
        CHECK_SLICE_EQ(p.req.target, p.req.target_len, cases[i].target);
        CHECK_SLICE_EQ(p.req.path, p.req.path_len, cases[i].path);
        if (!CHECK_SLICE_EQ(p.req.query, p.req.query_len, cases[i].query))
            UNIT_NOTE("target %s", cases[i].target);
    }

    /* asterisk-form and absolute-form are accepted */
    snprintf(s, sizeof(s), "OPTIONS * HTTP/1.1\r\n\r\n");
    CHECK_INT_EQ(parse(&p, s), strlen(s));
    CHECK_SLICE_EQ(p.req.target, p.req.target_len, "*");
    CHECK_INT_EQ(p.req.query_len, 0);
    snprintf(s, sizeof(s), "GET http://example.com/chat?x=1 HTTP/1.1\r\n\r\n");
    CHECK_INT_EQ(parse(&p, s), strlen(s));
    CHECK_SLICE_EQ(p.req.target, p.req.target_len, "http://example.com/chat?x=1");
    CHECK_SLICE_EQ(p.req.query, p.req.query_len, "x=1");
}

/* ---- query parameters --------------------------------------------------------------- */

/* Look name up in query (not NUL-terminated: a private exact copy) with an
 * output buffer of outlen bytes followed by canaries that must survive. */
static int query_param(const char *query, const char *name, char *out, size_t outlen)
{
    size_t qlen = strlen(query);
    char *q = malloc(qlen + 1);
    char buf[64];
    int rc;

    out[0] = '\0';
    if (!CHECK(q != NULL && outlen + 8 <= sizeof(buf))) {
        free(q);
        return WS_ENOMEM;
    }
    memcpy(q + 1, query, qlen);
    memset(buf, '#', sizeof(buf));
    rc = wsc__http_query_param(q + 1, qlen, name, buf, outlen);
    free(q);
    for (size_t i = outlen; i < sizeof(buf); i++)
        if (!CHECK(buf[i] == '#')) {
            UNIT_NOTE("query \"%s\", name \"%s\", outlen %zu: byte %zu written",
                      query, name, outlen, i);
            break;
        }
    if (rc >= 0) {
        if (CHECK((size_t)rc < outlen) && CHECK_INT_EQ(buf[rc], '\0'))
            memcpy(out, buf, (size_t)rc + 1);
    }
    return rc;
}

static void test_query_param_decode(void)
{
    const char *q = "a=%41&b=x+y&c=hello%20world&ab=2&e=%2b%2B%3d%26&utf=%C3%A9";
    char out[64];

    CHECK_INT_EQ(query_param(q, "a", out, 32), 1);
    CHECK_STR_EQ(out, "A");
    CHECK_INT_EQ(query_param(q, "b", out, 32), 3);
    CHECK_STR_EQ(out, "x y");
    CHECK_INT_EQ(query_param(q, "c", out, 32), 11);
    CHECK_STR_EQ(out, "hello world");
    CHECK_INT_EQ(query_param(q, "ab", out, 32), 1);
    CHECK_STR_EQ(out, "2");
    CHECK_INT_EQ(query_param(q, "e", out, 32), 4);
    CHECK_STR_EQ(out, "++=&");
    CHECK_INT_EQ(query_param(q, "utf", out, 32), 2);
    CHECK_STR_EQ(out, "\xc3\xa9");
    /* the first of repeated parameters */
    CHECK_INT_EQ(query_param("k=1&k=2", "k", out, 32), 1);
    CHECK_STR_EQ(out, "1");
    /* the only parameter, no '&' anywhere */
    CHECK_INT_EQ(query_param("solo=yes", "solo", out, 32), 3);
    CHECK_STR_EQ(out, "yes");
}

static void test_query_param_missing_empty(void)
{
    char out[64];

    CHECK_INT_EQ(query_param("a=1&b=2", "c", out, 32), WS_ENOTFOUND);
    CHECK_INT_EQ(query_param("", "a", out, 32), WS_ENOTFOUND);
    /* names match whole, not by prefix or suffix */
    CHECK_INT_EQ(query_param("abc=1", "a", out, 32), WS_ENOTFOUND);
    CHECK_INT_EQ(query_param("abc=1", "abcd", out, 32), WS_ENOTFOUND);
    CHECK_INT_EQ(query_param("xa=1", "a", out, 32), WS_ENOTFOUND);
    /* a value is not a name */
    CHECK_INT_EQ(query_param("x=a", "a", out, 32), WS_ENOTFOUND);
    /* empty value */
    CHECK_INT_EQ(query_param("a=1&c=&b=2", "c", out, 32), 0);
    CHECK_STR_EQ(out, "");
    CHECK_INT_EQ(query_param("c=", "c", out, 32), 0);
    CHECK_STR_EQ(out, "");
    CHECK_INT_EQ(query_param("c=", "c", out, 1), 0);
    CHECK_STR_EQ(out, "");
    /* even "" needs room for its NUL */
    CHECK_INT_EQ(query_param("c=", "c", out, 0), WS_ETOOBIG);

    /* the query ends at query_len, not at a NUL */
    CHECK_INT_EQ(wsc__http_query_param("a=1&b=2", 3, "b", out, sizeof(out)),
                 WS_ENOTFOUND);
    CHECK_INT_EQ(wsc__http_query_param("a=123", 4, "a", out, sizeof(out)), 2);
    CHECK_STR_EQ(out, "12");
}

static void test_query_param_small_buffer(void)
{
    char out[64];

    /* "hello" needs 6 bytes with the NUL */
    CHECK_INT_EQ(query_param("x=hello", "x", out, 6), 5);
    CHECK_STR_EQ(out, "hello");
    CHECK_INT_EQ(query_param("x=hello", "x", out, 5), WS_ETOOBIG);
    CHECK_INT_EQ(query_param("x=hello", "x", out, 1), WS_ETOOBIG);
    CHECK_INT_EQ(query_param("x=hello", "x", out, 0), WS_ETOOBIG);
    /* the decoded length counts, not the encoded one */
    CHECK_INT_EQ(query_param("x=%41%42", "x", out, 3), 2);
    CHECK_STR_EQ(out, "AB");
    CHECK_INT_EQ(query_param("x=%41%42", "x", out, 2), WS_ETOOBIG);
    CHECK_INT_EQ(query_param("x=a+b", "x", out, 4), 3);
    CHECK_STR_EQ(out, "a b");
    CHECK_INT_EQ(query_param("x=a+b", "x", out, 3), WS_ETOOBIG);
}

static void test_query_param_bad_escape(void)
{
    static const char *const bad[] = {
        "x=%G1", "x=%1G", "x=%4", "x=%", "x=a%", "x=%%41", "x=%4&y=1",
        "x=% 1", "x=%-1",
    };
    char out[64];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (!CHECK_INT_EQ(query_param(bad[i], "x", out, 32), WS_EINVAL))
            UNIT_NOTE("query \"%s\"", bad[i]);
    /* a good parameter next to a bad one is still fine */
    CHECK_INT_EQ(query_param("x=%G1&y=%41", "y", out, 32), 1);
    CHECK_STR_EQ(out, "A");
}

/* ---- malformed heads ------------------------------------------------------------------ */

struct bad_case {
    const char *data;
    size_t len;
};

static const struct bad_case bad_request_lines[] = {
    { LIT(" / HTTP/1.1\r\n\r\n") },            /* empty method */
    { LIT(" GET / HTTP/1.1\r\n\r\n") },
    { LIT("GE T / HTTP/1.1\r\n\r\n") },
    { LIT("GE(T / HTTP/1.1\r\n\r\n") },
    { LIT("GE\"T / HTTP/1.1\r\n\r\n") },
    { LIT("GE,T / HTTP/1.1\r\n\r\n") },
    { LIT("GE:T / HTTP/1.1\r\n\r\n") },
    { LIT("GE/T / HTTP/1.1\r\n\r\n") },
    { LIT("G\xc3\x89T / HTTP/1.1\r\n\r\n") },
    { LIT("GET\t/ HTTP/1.1\r\n\r\n") },
    { LIT("GET  / HTTP/1.1\r\n\r\n") },        /* empty target */
    { LIT("GET\r\n\r\n") },
    { LIT("GET /\r\n\r\n") },                   /* missing version */
    { LIT("GET / \r\n\r\n") },
    { LIT("GET / HTTP/2.0\r\n\r\n") },
    { LIT("GET / HTTP/1.1x\r\n\r\n") },
    { LIT("GET / HTTP/1.2\r\n\r\n") },
    { LIT("GET / HTTP/1.\r\n\r\n") },
    { LIT("GET / HTTP/1\r\n\r\n") },
    { LIT("GET / HTTP/11\r\n\r\n") },
    { LIT("GET / HTTP/1.10\r\n\r\n") },
    { LIT("GET / http/1.1\r\n\r\n") },
    { LIT("GET / HTTP/1.1 \r\n\r\n") },
    { LIT("GET / HTTP/1.1\rX\r\n\r\n") },      /* stray CR */
    { LIT("GET / HTTP/1.1 extra\r\n\r\n") },
};

static const struct bad_case bad_targets[] = {
    { LIT("GET chat HTTP/1.1\r\n\r\n") },
    { LIT("GET ?x HTTP/1.1\r\n\r\n") },
    { LIT("GET ** HTTP/1.1\r\n\r\n") },
    { LIT("GET /a\x7f HTTP/1.1\r\n\r\n") },
    { LIT("GET /\x80 HTTP/1.1\r\n\r\n") },
    { LIT("GET /\xc3\xa9 HTTP/1.1\r\n\r\n") },
    { LIT("GET /a\x01 HTTP/1.1\r\n\r\n") },
    { LIT("GET /a\tb HTTP/1.1\r\n\r\n") },
};

static const struct bad_case bad_header_names[] = {
    { LIT("GET / HTTP/1.1\r\nHost : x\r\n\r\n") }, /* space before colon */
    { LIT("GET / HTTP/1.1\r\nHost\t: x\r\n\r\n") },
    { LIT("GET / HTTP/1.1\r\nHost x\r\n\r\n") },   /* no colon */
    { LIT("GET / HTTP/1.1\r\nHost\r\n\r\n") },
    { LIT("GET / HTTP/1.1\r\nA: 1\r\nHost\r\n\r\n") },
    { LIT("GET / HTTP/1.1\r\n: x\r\n\r\n") },      /* empty name */
    { LIT("GET / HTTP/1.1\r\nHo st: x\r\n\r\n") },
    { LIT("GET / HTTP/1.1\r\nHo(st: x\r\n\r\n") },
    { LIT("GET / HTTP/1.1\r\nHo\xc3\xa9st: x\r\n\r\n") },
    { LIT("GET / HTTP/1.1\r\nHo\x01st: x\r\n\r\n") },
};

static const struct bad_case bad_header_values[] = {
    { LIT("GET / HTTP/1.1\r\nX: a\x01" "b\r\n\r\n") },
    { LIT("GET / HTTP/1.1\r\nX: \x1b[31m\r\n\r\n") },
    { LIT("GET / HTTP/1.1\r\nX: a\x7f\r\n\r\n") },
    { LIT("GET / HTTP/1.1\r\nX: a\x0b" "b\r\n\r\n") },
    { LIT("GET / HTTP/1.1\r\nX: a\x0c" "b\r\n\r\n") },
    { LIT("GET / HTTP/1.1\r\nX: a\rb\r\n\r\n") },
    { LIT("GET / HTTP/1.1\r\nX: a\r\r\n\r\n") },
    { LIT("GET / HTTP/1.1\r\nX: \x1f\r\n\r\n") },
};

static const struct bad_case bad_obs_folds[] = {
    { LIT("GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n") },
    { LIT("GET / HTTP/1.1\r\nX: a\r\n\tb\r\n\r\n") },
    { LIT("GET / HTTP/1.1\r\n Host: x\r\n\r\n") },
    { LIT("GET / HTTP/1.1\nX: a\n b\n\n") },
    { LIT("GET / HTTP/1.1\r\nX: a\r\n \r\n\r\n") },
};

static void check_bad(const struct bad_case *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int rc = parse_copy(cases[i].data, cases[i].len, MAX_HDRS);
        if (!CHECK_INT_EQ(rc, WSC__HTTP_BAD)) {
            UNIT_NOTE("case %zu: %s", i, rc_name(rc));
            UNIT_NOTE_BYTES("input", cases[i].data, cases[i].len);
        }
    }
}

static void test_bad_request_line(void)
{
    check_bad(bad_request_lines, N_OF(bad_request_lines));
}

static void test_bad_target(void)
{
    check_bad(bad_targets, N_OF(bad_targets));
}

static void test_bad_header_name(void)
{
    check_bad(bad_header_names, N_OF(bad_header_names));
}

static void test_bad_header_value(void)
{
    check_bad(bad_header_values, N_OF(bad_header_values));
}

static void test_bad_obs_fold(void)
{
    check_bad(bad_obs_folds, N_OF(bad_obs_folds));
}

static void test_bad_nul_byte(void)
{
    /* A NUL inserted anywhere in the head: BAD. Only inside the final empty
     * line ("\n\n" or "\n\r\n") does it leave no head end, so INCOMPLETE is
     * right there too; after the head it is pipelined data. */
    for (size_t r = 0; r < N_GOOD; r++) {
        const char *s = good_requests[r];
        size_t len = strlen(s);
        size_t term = len >= 3 && s[len - 3] == '\n' && s[len - 2] == '\r' ? len - 3 : len - 2;
        char *buf = malloc(len + 1);

        if (!CHECK(buf != NULL))
            return;
        for (size_t i = 0; i <= len; i++) {
            int rc, want;

            memcpy(buf, s, i);
            buf[i] = '\0';
            memcpy(buf + i + 1, s + i, len - i);
            rc = parse_copy(buf, len + 1, MAX_HDRS);
            if (i == len)
                want = (int)len;
            else if (i > term)
                want = rc == WSC__HTTP_INCOMPLETE ? rc : WSC__HTTP_BAD;
            else
                want = WSC__HTTP_BAD;
            if (!CHECK_INT_EQ(rc, want)) {
                UNIT_NOTE("request %zu, NUL inserted at %zu: %s", r, i, rc_name(rc));
                UNIT_NOTE_BYTES("input", buf, len + 1);
                break;
            }
        }
        free(buf);
    }
}

/* ---- head length and pipelining ----------------------------------------------------- */

static void test_head_length_pipelined(void)
{
    struct parsed p;
    const char *s = "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: y\r\n\r\n";
    size_t first = strlen("GET /a HTTP/1.1\r\nHost: x\r\n\r\n");
    int rc = parse(&p, s);

    CHECK_INT_EQ(rc, first);
    CHECK_SLICE_EQ(p.req.path, p.req.path_len, "/a");
    if (CHECK_INT_EQ(p.req.num_headers, 1))
        CHECK_SLICE_EQ(p.hdrs[0].value, p.hdrs[0].value_len, "x");
    if (rc > 0) {
        CHECK_INT_EQ(parse(&p, s + rc), strlen(s) - first);
        CHECK_SLICE_EQ(p.req.path, p.req.path_len, "/b");
        if (CHECK_INT_EQ(p.req.num_headers, 1))
            CHECK_SLICE_EQ(p.hdrs[0].value, p.hdrs[0].value_len, "y");
    }

    /* a body, or garbage, after the head is not looked at */
    s = "POST /x HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello";
    CHECK_INT_EQ(parse(&p, s), strlen(s) - 5);
    CHECK_INT_EQ(parse_copy(LIT("GET / HTTP/1.1\r\n\r\n\x01\x02 bad\x7f\r\n\r\n"), MAX_HDRS),
                 strlen("GET / HTTP/1.1\r\n\r\n"));
    CHECK_INT_EQ(parse_copy(LIT("GET / HTTP/1.1\r\n\r\n\0"), MAX_HDRS),
                 strlen("GET / HTTP/1.1\r\n\r\n"));
    s = "GET / HTTP/1.1\nHost: x\n\nBODY";
    CHECK_INT_EQ(parse(&p, s), strlen(s) - 4);
    s = "GET / HTTP/1.1\r\nHost: x\r\n\r\n\r\n";
    CHECK_INT_EQ(parse(&p, s), strlen(s) - 2);
    /* headers after the blank line are not counted, however many */
    CHECK_INT_EQ(parse_copy(LIT("GET / HTTP/1.1\r\nA: 1\r\n\r\nB: 2\r\nC: 3\r\n\r\n"), 1),
                 strlen("GET / HTTP/1.1\r\nA: 1\r\n\r\n"));
}

/* ---- reading past the end -------------------------------------------------------------- */

static void test_guard_page(void)
{
    struct unit_guard g;
    struct parsed p;

    /* every prefix of every good request, ending right before the guard */
    for (size_t r = 0; r < N_GOOD; r++) {
        const char *s = good_requests[r];
        size_t len = strlen(s);

        for (size_t i = 0; i <= len; i++) {
            char *buf = unit_guard_copy(&g, s, i);
            int rc;

            if (buf == NULL)
                return;
            rc = parse_n(&p, buf, i);
            /* and the incremental path, resuming near the end */
            if (rc == WSC__HTTP_INCOMPLETE && i > 0) {
                memset(&p, 0, sizeof(p));
                p.req.headers = p.hdrs;
                rc = wsc__http_parse_request(buf, i, i - 1, &p.req, MAX_HDRS);
            }
            unit_guard_free(&g);
            if (!CHECK_INT_EQ(rc, i < len ? WSC__HTTP_INCOMPLETE : (int)len)) {
                UNIT_NOTE("request %zu, %zu of %zu bytes", r, i, len);
                break;
            }
        }
    }

    /* every malformed case */
    {
        static const struct {
            const struct bad_case *cases;
            size_t n;
        } sets[] = {
            { bad_request_lines, N_OF(bad_request_lines) },
            { bad_targets, N_OF(bad_targets) },
            { bad_header_names, N_OF(bad_header_names) },
            { bad_header_values, N_OF(bad_header_values) },
            { bad_obs_folds, N_OF(bad_obs_folds) },
        };
        for (size_t k = 0; k < N_OF(sets); k++) {
            for (size_t i = 0; i < sets[k].n; i++) {
                char *buf = unit_guard_copy(&g, sets[k].cases[i].data, sets[k].cases[i].len);
                int rc;

                if (buf == NULL)
                    return;
                rc = parse_n(&p, buf, sets[k].cases[i].len);
                unit_guard_free(&g);
                if (!CHECK_INT_EQ(rc, WSC__HTTP_BAD))
                    UNIT_NOTE("bad set %zu case %zu", k, i);
            }
        }
    }

    /* too many headers, the last one right before the guard */
    {
        static const char s[] = "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\n\r\n";
        char *buf = unit_guard_copy(&g, s, sizeof(s) - 1);
        struct wsc__http_header h[1];
        struct wsc__http_request req;

        if (buf != NULL) {
            memset(&req, 0, sizeof(req));
            req.headers = h;
            CHECK_INT_EQ(wsc__http_parse_request(buf, sizeof(s) - 1, 0, &req, 1),
                         WSC__HTTP_TOO_MANY_HEADERS);
            unit_guard_free(&g);
        }
    }

    /* query parameters ending right before the guard */
    {
        static const struct {
            const char *query, *name;
            int want;
        } q[] = {
            { "x=%4", "x", WS_EINVAL },
            { "x=%", "x", WS_EINVAL },
            { "x=%41", "x", 1 },
            { "x=1&y", "y", 0 },
            { "x=1&y", "yy", WS_ENOTFOUND },
            { "x=1&", "y", WS_ENOTFOUND },
            { "x", "x", 0 },
            { "x", "xy", WS_ENOTFOUND },
        };
        char out[32];

        for (size_t i = 0; i < N_OF(q); i++) {
            size_t qlen = strlen(q[i].query);
            char *buf = unit_guard_copy(&g, q[i].query, qlen);
            int rc;

            if (buf == NULL)
                return;
            rc = wsc__http_query_param(buf, qlen, q[i].name, out, sizeof(out));
            unit_guard_free(&g);
            /* a name without '=' may read as empty or as absent */
            if (q[i].want == 0 && rc == WS_ENOTFOUND)
                continue;
            if (!CHECK_INT_EQ(rc, q[i].want))
                UNIT_NOTE("query \"%s\", name \"%s\"", q[i].query, q[i].name);
        }
    }
}

/* ---- status text ------------------------------------------------------------------------ */

static void test_status_text(void)
{
    CHECK_STR_EQ(wsc__http_status_text(101), "Switching Protocols");
    CHECK_STR_EQ(wsc__http_status_text(200), "OK");
    CHECK_STR_EQ(wsc__http_status_text(400), "Bad Request");
    CHECK_STR_EQ(wsc__http_status_text(404), "Not Found");
    CHECK_STR_EQ(wsc__http_status_text(405), "Method Not Allowed");
    CHECK_STR_EQ(wsc__http_status_text(426), "Upgrade Required");
    CHECK_STR_EQ(wsc__http_status_text(431), "Request Header Fields Too Large");
    CHECK_STR_EQ(wsc__http_status_text(500), "Internal Server Error");
    CHECK_STR_EQ(wsc__http_status_text(503), "Service Unavailable");
    for (int status = -1000; status < 1000; status++) {
        const char *t = wsc__http_status_text(status);
        if (!CHECK(t != NULL && t[0] != '\0')) {
            UNIT_NOTE("status %d", status);
            break;
        }
    }
    CHECK(wsc__http_status_text(INT_MIN) != NULL);
    CHECK(wsc__http_status_text(INT_MAX) != NULL);
}

/* The 503 an accepted socket gets when memory runs out is a constant copy
 * of the cap's refusal; they must not drift apart. */
static void test_turn_away_503(void)
{
    struct evbuffer *out = evbuffer_new();
    char got[512];
    size_t n;

    if (!CHECK(out != NULL))
        return;
    wsc__response_simple(out, 503, "Retry-After: 1\r\n");
    n = evbuffer_get_length(out);
    if (CHECK(n < sizeof(got))) {
        evbuffer_remove(out, got, n);
        got[n] = '\0';
        CHECK_STR_EQ(wsc__http_503_retry, got);
    }
    evbuffer_free(out);
}

const struct unit_test http_tests[] = {
    { "http_minimal_get", test_minimal_get },
    { "http_method_token_chars", test_method_token_chars },
    { "http_header_values_trimmed", test_header_values_trimmed },
    { "http_max_headers_100", test_max_headers_100 },
    { "http_max_headers_small", test_max_headers_small },
    { "http_incomplete_every_offset", test_incomplete_every_offset },
    { "http_incremental_last_len", test_incremental_last_len },
    { "http_incremental_one_byte", test_incremental_one_byte },
    { "http_bare_lf", test_bare_lf },
    { "http_repeated_headers", test_repeated_headers },
    { "http_find_header_case", test_find_header_case },
    { "http_header_token_list", test_header_token_list },
    { "http_path_query", test_path_query },
    { "http_query_param_decode", test_query_param_decode },
    { "http_query_param_missing_empty", test_query_param_missing_empty },
    { "http_query_param_small_buffer", test_query_param_small_buffer },
    { "http_query_param_bad_escape", test_query_param_bad_escape },
    { "http_bad_request_line", test_bad_request_line },
    { "http_bad_target", test_bad_target },
    { "http_bad_header_name", test_bad_header_name },
    { "http_bad_header_value", test_bad_header_value },
    { "http_bad_obs_fold", test_bad_obs_fold },
    { "http_bad_nul_byte", test_bad_nul_byte },
    { "http_head_length_pipelined", test_head_length_pipelined },
    { "http_guard_page", test_guard_page },
    { "http_status_text", test_status_text },
    { "http_turn_away_503", test_turn_away_503 },
    { NULL, NULL },
};
