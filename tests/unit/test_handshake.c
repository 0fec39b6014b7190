/*
 * test_handshake.c - RFC 6455 section 4.2 checks and the accept key
 * (libwsc/handshake.c). Requests are parsed from raw text by the real parser.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "unit.h"

#define MAX_HDRS 32
#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

static const char rfc_key[] = "dGhlIHNhbXBsZSBub25jZQ==";

/* ---- accept key ------------------------------------------------------------ */

static void check_accept(const char *key, const char *want)
{
    char out[WSC__ACCEPT_LEN + 2];

    memset(out, '#', sizeof(out));
    if (!CHECK_INT_EQ(wsc__handshake_accept(key, strlen(key), out), 0))
        return;
    CHECK_INT_EQ(out[WSC__ACCEPT_LEN], '\0');
    CHECK_INT_EQ(out[WSC__ACCEPT_LEN + 1], '#'); /* nothing past the NUL */
    out[WSC__ACCEPT_LEN] = '\0';
    CHECK_STR_EQ(out, want);
}

static void test_accept_rfc_example(void)
{
    /* RFC 6455 section 1.3 */
    check_accept(rfc_key, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    /* a second, independently computed pair */
    check_accept("x3JJHMbDL1EzLkh9GBhXDw==", "HSmrc0sMlYUkAGmm5OPpG2HaGWk=");
    CHECK_INT_EQ(WSC__ACCEPT_LEN, 28);
}

static void test_accept_uses_key_len(void)
{
    /* Only key_len bytes are hashed: trailing bytes do not count. */
    char key[64];
    char out[WSC__ACCEPT_LEN + 1];

    snprintf(key, sizeof(key), "%sGARBAGE", rfc_key);
    if (CHECK_INT_EQ(wsc__handshake_accept(key, strlen(rfc_key), out), 0))
        CHECK_STR_EQ(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

/* ---- key validity -------------------------------------------------------------- */

static bool key_valid(const char *key)
{
    /* An exact copy, so reading past key_len would be caught. */
    size_t len = strlen(key);
    char *copy = malloc(len + 1);
    bool ok;

    if (!CHECK(copy != NULL))
        return false;
    memcpy(copy + 1, key, len);
    ok = wsc__handshake_key_valid(copy + 1, len);
    free(copy);
    return ok;
}

static void test_key_valid(void)
{
    static const char *const good[] = {
        "dGhlIHNhbXBsZSBub25jZQ==",
        "x3JJHMbDL1EzLkh9GBhXDw==",
        "AAAAAAAAAAAAAAAAAAAAAA==",
        "+/+/+/+/+/+/+/+/+/+/+w==",
        "zzzzzzzzzzzzzzzzzzzzzw==",
        "0123456789abcdefABCDEQ==",
    };

    for (size_t i = 0; i < N_OF(good); i++)
        if (!CHECK(key_valid(good[i])))
            UNIT_NOTE_BYTES("key", good[i], strlen(good[i]));
}

static void test_key_invalid(void)
{
    static const char *const bad[] = {
        "",
        "dGhlIHNhbXBsZSBub25jZQ=",     /* 23 chars */
        "dGhlIHNhbXBsZSBub25jZQ===",   /* 25 chars */
        "dGhlIHNhbXBsZSBub25jZQ",      /* padding missing (22 chars) */
        "dGhlIHNhbXBsZSBub25jZQAA",    /* 24 chars, no padding: 18 bytes */
        "AAAAAAAAAAAAAAAAAAAA",        /* 15 bytes */
        "AAAAAAAAAAAAAAAAAAAA====",    /* 15 bytes, padded to 24 */
        "AAAAAAAAAAAAAAAAAAAAAAA=",    /* 17 bytes */
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAA", /* 21 bytes */
        "dGhlIHNhbXBsZSBub25jZ!==",    /* bad chars */
        "dGhlIHNhbXBsZSBub25j-Q==",    /* base64url alphabet */
        "dGhlIHNhbXBsZSBub25j_Q==",
        "dGhlIHNhbX BsZSBub25jZ==",  
        "dGhlIHNhbXBs=SBub25jZQ==",    /* '=' inside */
        "=GhlIHNhbXBsZSBub25jZQ==",
        "dGhlIHNhbXBsZSBub25jZ\x80==",
        "dGhlIHNhbXBsZSBub25jZ\t==",
        "========================",
    };

    for (size_t i = 0; i < N_OF(bad); i++)
        if (!CHECK(!key_valid(bad[i])))
            UNIT_NOTE_BYTES("key", bad[i], strlen(bad[i]));

    /* key_len counts, not the NUL */
    CHECK(!wsc__handshake_key_valid(rfc_key, 23));
    CHECK(!wsc__handshake_key_valid(rfc_key, 0));
    {
        char nul_key[] = "dGhlIHNhbXBsZSBub25jZQ==";
        nul_key[5] = '\0';
        CHECK(!wsc__handshake_key_valid(nul_key, 24));
    }
}

/* ---- wsc__handshake_check -------------------------------------------------------- */

struct request {
    struct wsc__http_request req;
    struct wsc__http_header hdrs[MAX_HDRS];
    char *buf;
};

/* Parse text (request line and header lines, "\r\n" added after each
 * '|'-separated part, then the empty line) into r. */
static bool build(struct request *r, const char *text)
{
    size_t len = 0, cap = strlen(text) * 2 + 8;
    int rc;

    memset(r, 0, sizeof(*r));
    r->buf = malloc(cap);
    if (!CHECK(r->buf != NULL))
        return false;
    for (const char *p = text; *p != '\0'; p++) {
        if (*p == '|') {
            r->buf[len++] = '\r';
            r->buf[len++] = '\n';
        } else {
            r->buf[len++] = *p;
        }
    }
    memcpy(r->buf + len, "\r\n\r\n", 4);
    len += 4;
    r->req.headers = r->hdrs;
    rc = wsc__http_parse_request(r->buf, len, 0, &r->req, MAX_HDRS);
    if (!CHECK_INT_EQ(rc, len)) {
        UNIT_NOTE_BYTES("request", r->buf, len);
        free(r->buf);
        r->buf = NULL;
        return false;
    }
    return true;
}

/* The verdict for text; *value gets the key's value on UPGRADE_OK. */
static int verdict(const char *text, char *value, size_t value_size)
{
    struct request r;
    const struct wsc__http_header *key = NULL;
    enum wsc__upgrade_verdict v;

    if (!build(&r, text))
        return -1;
    v = wsc__handshake_check(&r.req, &key);
    if (value != NULL)
        value[0] = '\0';
    if (v == WSC__UPGRADE_OK && CHECK(key != NULL) && value != NULL) {
        CHECK(key >= r.hdrs && key < r.hdrs + r.req.num_headers);
        if (CHECK(key->value_len < value_size)) {
            memcpy(value, key->value, key->value_len);
            value[key->value_len] = '\0';
        }
    }
    free(r.buf);
    return (int)v;
}

#define OK_REQUEST                                  \
    "GET /chat HTTP/1.1|"                           \
    "Host: server.example.com|"                     \
    "Upgrade: websocket|"                           \
    "Connection: Upgrade|"                          \
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==|"  \
    "Origin: http://example.com|"                   \
    "Sec-WebSocket-Version: 13"

static void check_verdict(const char *text, int want)
{
    int got = verdict(text, NULL, 0);

    if (!CHECK_INT_EQ(got, want))
        UNIT_NOTE_BYTES("request", text, strlen(text));
}

static void test_check_ok(void)
{
    char value[64];

    CHECK_INT_EQ(verdict(OK_REQUEST, value, sizeof(value)), WSC__UPGRADE_OK);
    CHECK_STR_EQ(value, rfc_key);

    /* header names and the Upgrade / Connection values are case-insensitive;
     * Connection is a list */
    CHECK_INT_EQ(verdict("GET / HTTP/1.1|host: a|upgrade: WebSocket|"
                         "connection: keep-alive, Upgrade|"
                         "sec-websocket-key: x3JJHMbDL1EzLkh9GBhXDw==|"
                         "SEC-WEBSOCKET-VERSION: 13",
                         value, sizeof(value)),
                 WSC__UPGRADE_OK);
    CHECK_STR_EQ(value, "x3JJHMbDL1EzLkh9GBhXDw==");
    check_verdict("GET / HTTP/1.1|Host: a|Upgrade: WEBSOCKET|Connection: UPGRADE|"
                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==|Sec-WebSocket-Version: 13",
                  WSC__UPGRADE_OK);
    /* Connection repeated: the token may be in either */
    check_verdict("GET / HTTP/1.1|Host: a|Upgrade: websocket|Connection: keep-alive|"
                  "Connection: upgrade|"
                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==|Sec-WebSocket-Version: 13",
                  WSC__UPGRADE_OK);
    /* bare-LF request, extra headers, query string */
    {
        static const char raw[] =
            "GET /chat?room=1 HTTP/1.1\nHost: a\nUpgrade: websocket\n"
            "Connection: Upgrade\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\n"
            "Sec-WebSocket-Protocol: chat\nSec-WebSocket-Version: 13\n\n";
        struct wsc__http_header h[MAX_HDRS];
        struct wsc__http_request req;
        const struct wsc__http_header *key = NULL;

        memset(&req, 0, sizeof(req));
        req.headers = h;
        CHECK_INT_EQ(wsc__http_parse_request(raw, sizeof(raw) - 1, 0, &req, MAX_HDRS),
                     sizeof(raw) - 1);
        CHECK_INT_EQ(wsc__handshake_check(&req, &key), WSC__UPGRADE_OK);
        if (CHECK(key != NULL))
            CHECK_SLICE_EQ(key->value, key->value_len, rfc_key);
    }
}

static void test_check_not_upgrade(void)
{
    check_verdict("GET / HTTP/1.1|Host: a", WSC__NOT_UPGRADE);
    check_verdict("GET / HTTP/1.0", WSC__NOT_UPGRADE);
    check_verdict("POST /form HTTP/1.1|Host: a|Content-Length: 0", WSC__NOT_UPGRADE);
    check_verdict("GET / HTTP/1.1|Host: a|Upgrade: h2c|Connection: Upgrade, HTTP2-Settings",
                  WSC__NOT_UPGRADE);
    check_verdict("GET / HTTP/1.1|Host: a|Upgrade: websockets|Connection: Upgrade",
                  WSC__NOT_UPGRADE);
    check_verdict("GET / HTTP/1.1|Host: a|X-Upgrade: websocket|Connection: Upgrade",
                  WSC__NOT_UPGRADE);
    /* everything but Upgrade: still plain HTTP */
    check_verdict("GET /chat HTTP/1.1|Host: a|Connection: Upgrade|"
                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==|Sec-WebSocket-Version: 13",
                  WSC__NOT_UPGRADE);
    /* NOT_UPGRADE is decided first: a bad method, version and key change nothing */
    check_verdict("POST / HTTP/1.0|Sec-WebSocket-Version: 7|Sec-WebSocket-Key: x",
                  WSC__NOT_UPGRADE);
}

static void test_check_method(void)
{
    check_verdict("POST /chat HTTP/1.1|Host: server.example.com|Upgrade: websocket|"
                  "Connection: Upgrade|Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==|"
                  "Sec-WebSocket-Version: 13",
                  WSC__UPGRADE_METHOD);
    check_verdict("HEAD / HTTP/1.1|Host: a|Upgrade: websocket|Connection: Upgrade|"
                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==|Sec-WebSocket-Version: 13",
                  WSC__UPGRADE_METHOD);
    /* methods are case-sensitive (RFC 9110 9.1) */
    check_verdict("get / HTTP/1.1|Host: a|Upgrade: websocket|Connection: Upgrade|"
                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==|Sec-WebSocket-Version: 13",
                  WSC__UPGRADE_METHOD);
    check_verdict("GETX / HTTP/1.1|Host: a|Upgrade: websocket|Connection: Upgrade|"
                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==|Sec-WebSocket-Version: 13",
                  WSC__UPGRADE_METHOD);
    /* METHOD comes before VERSION and the 400 checks */
    check_verdict("PUT / HTTP/1.0|Upgrade: websocket", WSC__UPGRADE_METHOD);
    check_verdict("POST / HTTP/1.1|Upgrade: websocket|Sec-WebSocket-Version: 8",
                  WSC__UPGRADE_METHOD);
}

static void test_check_version(void)
{
    /* missing */
    check_verdict("GET / HTTP/1.1|Host: a|Upgrade: websocket|Connection: Upgrade|"
                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
                  WSC__UPGRADE_VERSION);
    /* not 13 */
    static const char *const versions[] = { "8", "12", "14", "130", "1", "", "13, 8",
                                            "0x0d", "+13", "013" };
    char text[512];

    for (size_t i = 0; i < N_OF(versions); i++) {
        snprintf(text, sizeof(text),
                 "GET / HTTP/1.1|Host: a|Upgrade: websocket|Connection: Upgrade|"
                 "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==|Sec-WebSocket-Version: %s",
                 versions[i]);
        check_verdict(text, WSC__UPGRADE_VERSION);
    }
    /* optional whitespace around the value is not part of it */
    check_verdict("GET / HTTP/1.1|Host: a|Upgrade: websocket|Connection: Upgrade|"
                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==|Sec-WebSocket-Version:   13  ",
                  WSC__UPGRADE_OK);
    /* VERSION comes before the 400 checks */
    check_verdict("GET / HTTP/1.0|Upgrade: websocket", WSC__UPGRADE_VERSION);
    check_verdict("GET / HTTP/1.1|Upgrade: websocket|Sec-WebSocket-Version: 8|"
                  "Sec-WebSocket-Key: bad",
                  WSC__UPGRADE_VERSION);
}

static void test_check_bad(void)
{
    /* HTTP/1.0 */
    check_verdict("GET / HTTP/1.0|Host: a|Upgrade: websocket|Connection: Upgrade|"
                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==|Sec-WebSocket-Version: 13",
                  WSC__UPGRADE_BAD);
    /* no Host */
    check_verdict("GET / HTTP/1.1|Upgrade: websocket|Connection: Upgrade|"
                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==|Sec-WebSocket-Version: 13",
                  WSC__UPGRADE_BAD);
    /* no Connection */
    check_verdict("GET / HTTP/1.1|Host: a|Upgrade: websocket|"
                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==|Sec-WebSocket-Version: 13",
                  WSC__UPGRADE_BAD);
    /* Connection without the upgrade token */
    check_verdict("GET / HTTP/1.1|Host: a|Upgrade: websocket|Connection: keep-alive|"
                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==|Sec-WebSocket-Version: 13",
                  WSC__UPGRADE_BAD);
    check_verdict("GET / HTTP/1.1|Host: a|Upgrade: websocket|Connection: upgrades|"
                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==|Sec-WebSocket-Version: 13",
                  WSC__UPGRADE_BAD);
    check_verdict("GET / HTTP/1.1|Host: a|Upgrade: websocket|Connection:|"
                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==|Sec-WebSocket-Version: 13",
                  WSC__UPGRADE_BAD);
    /* no key */
    check_verdict("GET / HTTP/1.1|Host: a|Upgrade: websocket|Connection: Upgrade|"
                  "Sec-WebSocket-Version: 13",
                  WSC__UPGRADE_BAD);
    /* invalid keys */
    static const char *const keys[] = {
        "", "dGhlIHNhbXBsZSBub25jZQ=", "dGhlIHNhbXBsZSBub25jZQ===",
        "dGhlIHNhbXBsZSBub25jZQ", "AAAAAAAAAAAAAAAAAAAAAAA=", "AAAAAAAAAAAAAAAAAAAA",
        "dGhlIHNhbXBsZSBub25jZ!==", "not a key",
    };
    char text[512];

    for (size_t i = 0; i < N_OF(keys); i++) {
        snprintf(text, sizeof(text),
                 "GET / HTTP/1.1|Host: a|Upgrade: websocket|Connection: Upgrade|"
                 "Sec-WebSocket-Key: %s|Sec-WebSocket-Version: 13",
                 keys[i]);
        check_verdict(text, WSC__UPGRADE_BAD);
    }
}

const struct unit_test handshake_tests[] = {
    { "handshake_accept_rfc_example", test_accept_rfc_example },
    { "handshake_accept_uses_key_len", test_accept_uses_key_len },
    { "handshake_key_valid", test_key_valid },
    { "handshake_key_invalid", test_key_invalid },
    { "handshake_check_ok", test_check_ok },
    { "handshake_check_not_upgrade", test_check_not_upgrade },
    { "handshake_check_method", test_check_method },
    { "handshake_check_version", test_check_version },
    { "handshake_check_bad", test_check_bad },
    { NULL, NULL },
};
