/*
 * test_proxy.c - the PROXY protocol parser (v1 and v2), trusted-proxy CIDR
 * lists and the X-Forwarded-For walk (libwsc/proxy_protocol.c, forwarded.c).
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "internal.h"
#include "unit.h"

static int parse(const void *buf, size_t len, struct wsc__proxy_info *info)
{
    return wsc__proxy_parse(buf, len, info);
}

static void check_remote(const struct wsc__proxy_info *info, const char *want)
{
    char out[64];

    wsc__proxy_format(info, out, sizeof(out));
    CHECK_STR_EQ(out, want);
}

static void test_v1_valid(void)
{
    struct wsc__proxy_info info;
    const char *tcp4 = "PROXY TCP4 192.0.2.7 10.0.0.1 56324 443\r\nGET /";
    const char *tcp6 = "PROXY TCP6 2001:db8::1 ::1 65535 80\r\n";
    const char *unknown = "PROXY UNKNOWN whatever follows\r\n";

    CHECK_INT_EQ(parse(tcp4, strlen(tcp4), &info), (int)strlen(tcp4) - 5);
    CHECK(!info.local);
    check_remote(&info, "192.0.2.7:56324");
    CHECK_INT_EQ(parse(tcp6, strlen(tcp6), &info), (int)strlen(tcp6));
    check_remote(&info, "[2001:db8::1]:65535");
    CHECK_INT_EQ(parse(unknown, strlen(unknown), &info), (int)strlen(unknown));
    CHECK(info.local);
    CHECK_INT_EQ(parse("PROXY UNKNOWN\r\n", 15, &info), 15);
}

static void test_v1_incomplete(void)
{
    struct wsc__proxy_info info;
    const char *tcp4 = "PROXY TCP4 192.0.2.7 10.0.0.1 56324 443\r\n";

    /* Every strict prefix is incomplete, never accepted or refused. */
    for (size_t n = 0; n < strlen(tcp4); n++)
        CHECK_INT_EQ(parse(tcp4, n, &info), WSC__PROXY_INCOMPLETE);
}

static void test_v1_malformed(void)
{
    static const char *const bad[] = {
        "GET / HTTP/1.1\r\n\r\n",                         /* no header at all */
        "PROXY TCP4 192.0.2.7 10.0.0.1 56324 443\n",       /* LF without CR */
        "PROXY TCP4 192.0.2.7 10.0.0.1 56324\r\n",         /* a field short */
        "PROXY TCP4 192.0.2.7 10.0.0.1 56324 443 7\r\n",   /* one too many */
        "PROXY TCP4  192.0.2.7 10.0.0.1 56324 443\r\n",    /* two spaces */
        "PROXY TCP4 192.0.2.256 10.0.0.1 56324 443\r\n",   /* bad address */
        "PROXY TCP4 2001:db8::1 10.0.0.1 56324 443\r\n",   /* v6 in TCP4 */
        "PROXY TCP6 192.0.2.7 ::1 56324 443\r\n",          /* v4 in TCP6 */
        "PROXY TCP4 192.0.2.7 10.0.0.1 65536 443\r\n",     /* port too big */
        "PROXY TCP4 192.0.2.7 10.0.0.1 -1 443\r\n",        /* signed port */
        "PROXY TCP4 192.0.2.7 10.0.0.1 5x 443\r\n",        /* not a number */
        "PROXY UDP4 192.0.2.7 10.0.0.1 56324 443\r\n",     /* not TCP */
        "PROXY\r\n",
        "proxy TCP4 192.0.2.7 10.0.0.1 56324 443\r\n",     /* case matters */
    };
    struct wsc__proxy_info info;
    char longline[200];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (!CHECK_INT_EQ(parse(bad[i], strlen(bad[i]), &info), WSC__PROXY_BAD))
            CHECK_STR_EQ(bad[i], "(the one above)");
    /* The longest line v1 allows (107 bytes, CRLF included) is accepted. */
    memset(longline, 'x', sizeof(longline));
    memcpy(longline, "PROXY UNKNOWN ", 14);
    memcpy(longline + WSC__PROXY_V1_MAX - 2, "\r\n", 2);
    CHECK_INT_EQ(parse(longline, sizeof(longline), &info), WSC__PROXY_V1_MAX);
    CHECK(info.local);
    /* No end of line within the 107 bytes v1 allows. */
    memset(longline, 'x', sizeof(longline));
    memcpy(longline, "PROXY TCP4 ", 11);
    CHECK_INT_EQ(parse(longline, WSC__PROXY_V1_MAX - 1, &info), WSC__PROXY_INCOMPLETE);
    CHECK_INT_EQ(parse(longline, WSC__PROXY_V1_MAX, &info), WSC__PROXY_BAD);
    CHECK_INT_EQ(parse(longline, sizeof(longline), &info), WSC__PROXY_BAD);
}

/* A v2 header: signature, ver/cmd, family, length, then body. */
static size_t v2(uint8_t *out, uint8_t ver_cmd, uint8_t fam, const uint8_t *body,
                 size_t body_len)
{
    static const uint8_t sig[12] = { 0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                     0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A };
    memcpy(out, sig, 12);
    out[12] = ver_cmd;
    out[13] = fam;
    out[14] = (uint8_t)(body_len >> 8);
    out[15] = (uint8_t)body_len;
    if (body_len > 0)
        memcpy(out + 16, body, body_len);
    return 16 + body_len;
}

static void test_v2_valid(void)
{
    uint8_t buf[2048], body[64] = { 0 };
    struct wsc__proxy_info info;
    size_t n;

    /* TCP4 198.51.100.9:40000 -> 10.0.0.1:80 */
    memcpy(body, "\xc6\x33\x64\x09\x0a\x00\x00\x01\x9c\x40\x00\x50", 12);
    n = v2(buf, 0x21, 0x11, body, 12);
    CHECK_INT_EQ(parse(buf, n, &info), (int)n);
    CHECK(!info.local);
    check_remote(&info, "198.51.100.9:40000");
    /* with TLVs after the addresses (skipped), and bytes after the header */
    memcpy(body + 12, "\x04\x00\x03" "abc", 6);
    n = v2(buf, 0x21, 0x11, body, 18);
    memcpy(buf + n, "GET", 3);
    CHECK_INT_EQ(parse(buf, n + 3, &info), (int)n);
    /* TCP6 2001:db8::5 port 1 */
    memset(body, 0, sizeof(body));
    body[0] = 0x20; body[1] = 0x01; body[2] = 0x0d; body[3] = 0xb8; body[15] = 5;
    body[32] = 0; body[33] = 1;
    n = v2(buf, 0x21, 0x21, body, 36);
    CHECK_INT_EQ(parse(buf, n, &info), (int)n);
    check_remote(&info, "[2001:db8::5]:1");
    /* LOCAL (health checks) and UNSPEC keep the peer */
    n = v2(buf, 0x20, 0x00, NULL, 0);
    CHECK_INT_EQ(parse(buf, n, &info), 16);
    CHECK(info.local);
    n = v2(buf, 0x21, 0x00, NULL, 0);
    CHECK_INT_EQ(parse(buf, n, &info), 16);
    CHECK(info.local);
    /* the largest header accepted */
    memset(body, 0, sizeof(body));
    n = v2(buf, 0x21, 0x11, body, 12);
    buf[14] = (uint8_t)((WSC__PROXY_V2_MAX - 16) >> 8);
    buf[15] = (uint8_t)(WSC__PROXY_V2_MAX - 16);
    memset(buf + n, 0, WSC__PROXY_V2_MAX - n);
    CHECK_INT_EQ(parse(buf, WSC__PROXY_V2_MAX, &info), WSC__PROXY_V2_MAX);
}

static void test_v2_incomplete_and_bad(void)
{
    uint8_t buf[2048], body[36] = { 0 };
    struct wsc__proxy_info info;
    size_t n = v2(buf, 0x21, 0x11, body, 12);

    for (size_t i = 0; i < n; i++)
        CHECK_INT_EQ(parse(buf, i, &info), WSC__PROXY_INCOMPLETE);
    buf[12] = 0x11;                               /* version 1 in binary form */
    CHECK_INT_EQ(parse(buf, n, &info), WSC__PROXY_BAD);
    buf[12] = 0x22;                               /* command 2 */
    CHECK_INT_EQ(parse(buf, n, &info), WSC__PROXY_BAD);
    n = v2(buf, 0x21, 0x11, body, 11);            /* addresses cut short */
    CHECK_INT_EQ(parse(buf, n, &info), WSC__PROXY_BAD);
    n = v2(buf, 0x21, 0x21, body, 35);
    CHECK_INT_EQ(parse(buf, n, &info), WSC__PROXY_BAD);
    n = v2(buf, 0x21, 0x12, body, 12);            /* UDP */
    CHECK_INT_EQ(parse(buf, n, &info), WSC__PROXY_BAD);
    n = v2(buf, 0x21, 0x11, body, 12);            /* one byte over the cap */
    buf[14] = (uint8_t)((WSC__PROXY_V2_MAX - 15) >> 8);
    buf[15] = (uint8_t)(WSC__PROXY_V2_MAX - 15);
    CHECK_INT_EQ(parse(buf, n, &info), WSC__PROXY_BAD);
    memcpy(buf, "\x0d\x0a\x0d\x0a\x00\x0d\x0a\x51\x55\x49\x54\x0b", 12); /* bad sig */
    CHECK_INT_EQ(parse(buf, 12, &info), WSC__PROXY_BAD);
}

static void test_trusted_list(void)
{
    struct ws_config *cfg = ws_config_new();
    uint8_t a[16];
    char many[600] = "";

    if (!CHECK(cfg != NULL))
        return;
    CHECK_INT_EQ(ws_config_set_trusted_proxies(cfg, "127.0.0.1/32, 10.0.0.0/8,::1/128 "), 0);
    CHECK_INT_EQ(cfg->num_trusted, 3);
    inet_pton(AF_INET, "10.200.3.4", a);
    CHECK(wsc__addr_trusted(cfg, AF_INET, a));
    inet_pton(AF_INET, "11.0.0.1", a);
    CHECK(!wsc__addr_trusted(cfg, AF_INET, a));
    inet_pton(AF_INET6, "::ffff:10.1.2.3", a);            /* v4-mapped */
    CHECK(wsc__addr_trusted(cfg, AF_INET6, a));
    inet_pton(AF_INET6, "::1", a);
    CHECK(wsc__addr_trusted(cfg, AF_INET6, a));
    inet_pton(AF_INET6, "::2", a);
    CHECK(!wsc__addr_trusted(cfg, AF_INET6, a));
    /* a prefix that is not a whole number of bytes */
    CHECK_INT_EQ(ws_config_set_trusted_proxies(cfg, "192.168.4.0/22"), 0);
    inet_pton(AF_INET, "192.168.7.255", a);
    CHECK(wsc__addr_trusted(cfg, AF_INET, a));
    inet_pton(AF_INET, "192.168.8.0", a);
    CHECK(!wsc__addr_trusted(cfg, AF_INET, a));
    /* malformed lists leave the old one */
    CHECK_INT_EQ(ws_config_set_trusted_proxies(cfg, "10.0.0.0/33"), WS_EINVAL);
    CHECK_INT_EQ(ws_config_set_trusted_proxies(cfg, "10.0.0.0/"), WS_EINVAL);
    CHECK_INT_EQ(ws_config_set_trusted_proxies(cfg, "10.0.0/8"), WS_EINVAL);
    CHECK_INT_EQ(ws_config_set_trusted_proxies(cfg, "::1/129"), WS_EINVAL);
    CHECK_INT_EQ(ws_config_set_trusted_proxies(cfg, "localhost"), WS_EINVAL);
    CHECK_INT_EQ(ws_config_set_trusted_proxies(cfg, "10.0.0.0/-8"), WS_EINVAL);
    CHECK_INT_EQ(ws_config_set_trusted_proxies(cfg, "10.0.0.0/8x"), WS_EINVAL);
    CHECK_INT_EQ(ws_config_set_trusted_proxies(cfg, "10.0.0.0/8/8"), WS_EINVAL);
    CHECK_INT_EQ(cfg->num_trusted, 1);
    /* the widest prefixes, and one ending where the next entry begins */
    CHECK_INT_EQ(ws_config_set_trusted_proxies(cfg, "10.0.0.1/32,::1/128,192.0.2.0/024"), 0);
    CHECK_INT_EQ(cfg->num_trusted, 3);
    CHECK_INT_EQ(cfg->trusted[0].bits, 32);
    CHECK_INT_EQ(cfg->trusted[1].bits, 128);
    CHECK_INT_EQ(cfg->trusted[2].bits, 24);
    /* 16 entries fit, 17 do not */
    for (int i = 0; i < 16; i++)
        sprintf(many + strlen(many), "10.0.%d.0/24,", i);
    CHECK_INT_EQ(ws_config_set_trusted_proxies(cfg, many), 0);
    CHECK_INT_EQ(cfg->num_trusted, 16);
    strcat(many, "10.1.0.0/16");
    CHECK_INT_EQ(ws_config_set_trusted_proxies(cfg, many), WS_EINVAL);
    CHECK_INT_EQ(ws_config_set_trusted_proxies(cfg, NULL), 0);
    CHECK_INT_EQ(cfg->num_trusted, 0);
    CHECK_INT_EQ(ws_config_set_trusted_proxies(NULL, "::1"), WS_EINVAL);
    ws_config_free(cfg);
}

static int xff(const struct ws_config *cfg, const char *v1, const char *v2, char *out)
{
    const char *values[2] = { v1, v2 };
    size_t lens[2] = { strlen(v1), v2 != NULL ? strlen(v2) : 0 };
    uint8_t addr[16];
    int family = 0, rc;

    rc = wsc__xff_client(cfg, values, lens, v2 != NULL ? 2 : 1, &family, addr);
    out[0] = '\0';
    if (rc == WSC__XFF_OK)
        inet_ntop(family, addr, out, INET6_ADDRSTRLEN);
    return rc;
}

static void test_xff_walk(void)
{
    struct ws_config *cfg = ws_config_new();
    char out[INET6_ADDRSTRLEN];

    if (!CHECK(cfg != NULL))
        return;
    CHECK_INT_EQ(ws_config_set_trusted_proxies(cfg, "127.0.0.0/8, 10.0.0.0/8"), 0);
    CHECK_INT_EQ(xff(cfg, "203.0.113.5", NULL, out), WSC__XFF_OK);
    CHECK_STR_EQ(out, "203.0.113.5");
    /* a forged entry on the left is not believed: the right-most untrusted */
    CHECK_INT_EQ(xff(cfg, "6.6.6.6, 203.0.113.5, 10.1.1.1", NULL, out), WSC__XFF_OK);
    CHECK_STR_EQ(out, "203.0.113.5");
    /* two headers are one list */
    CHECK_INT_EQ(xff(cfg, "6.6.6.6, 203.0.113.5", "10.0.0.2", out), WSC__XFF_OK);
    CHECK_STR_EQ(out, "203.0.113.5");
    /* all trusted: the left-most */
    CHECK_INT_EQ(xff(cfg, "10.9.9.9,127.0.0.1", NULL, out), WSC__XFF_OK);
    CHECK_STR_EQ(out, "10.9.9.9");
    /* IPv6, bracketed, with ports */
    CHECK_INT_EQ(xff(cfg, "[2001:db8::7]:1234", NULL, out), WSC__XFF_OK);
    CHECK_STR_EQ(out, "2001:db8::7");
    CHECK_INT_EQ(xff(cfg, "2001:db8::8", NULL, out), WSC__XFF_OK);
    CHECK_STR_EQ(out, "2001:db8::8");
    CHECK_INT_EQ(xff(cfg, "198.51.100.1:8080", NULL, out), WSC__XFF_OK);
    CHECK_STR_EQ(out, "198.51.100.1");
    /* malformed: ignored as a whole */
    CHECK_INT_EQ(xff(cfg, "203.0.113.5, unknown", NULL, out), WSC__XFF_BAD);
    CHECK_INT_EQ(xff(cfg, "203.0.113.5,,10.0.0.1", NULL, out), WSC__XFF_BAD);
    CHECK_INT_EQ(xff(cfg, "", NULL, out), WSC__XFF_NONE);
    CHECK_INT_EQ(xff(cfg, " ", NULL, out), WSC__XFF_BAD);
    ws_config_free(cfg);
}

const struct unit_test proxy_tests[] = {
    { "proxy_v1_valid", test_v1_valid },
    { "proxy_v1_incomplete", test_v1_incomplete },
    { "proxy_v1_malformed", test_v1_malformed },
    { "proxy_v2_valid", test_v2_valid },
    { "proxy_v2_incomplete_and_bad", test_v2_incomplete_and_bad },
    { "proxy_trusted_list", test_trusted_list },
    { "proxy_xff_walk", test_xff_walk },
    { NULL, NULL },
};
