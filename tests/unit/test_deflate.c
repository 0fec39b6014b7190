/* test_deflate.c - permessage-deflate: offer negotiation and zlib helpers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "internal.h"
#include "unit.h"

/* Negotiate against raw header lines ("Sec-WebSocket-Extensions: ..."). */
static bool negotiate(const char *ext_lines, const struct ws_config *cfg, char *resp,
                      size_t resplen)
{
    char raw[2048];
    struct wsc__http_header headers[16];
    struct wsc__http_request req = { .headers = headers };
    struct wsc__pmd pmd;

    snprintf(raw, sizeof(raw), "GET / HTTP/1.1\r\nHost: x\r\n%s\r\n", ext_lines);
    if (!CHECK(wsc__http_parse_request(raw, strlen(raw), 0, &req, 16) > 0))
        return false;
    resp[0] = '\0';
    if (!wsc__pmd_negotiate(&req, cfg, &pmd))
        return false;
    CHECK(wsc__pmd_response(&pmd, resp, resplen) > 0);
    return true;
}

static struct ws_config config(int takeover_allowed)
{
    struct ws_config cfg;
    wsc__config_defaults(&cfg);
    cfg.deflate_no_context_takeover = !takeover_allowed;
    return cfg;
}

static void test_plain_offer_forces_no_takeover_by_default(void)
{
    struct ws_config cfg = config(0);
    char r[256];
    CHECK(negotiate("Sec-WebSocket-Extensions: permessage-deflate\r\n", &cfg, r, sizeof(r)));
    CHECK_STR_EQ(r, "permessage-deflate; server_no_context_takeover; client_no_context_takeover");
}

static void test_takeover_allowed_echoes_client_wishes(void)
{
    struct ws_config cfg = config(1);
    char r[256];
    CHECK(negotiate("Sec-WebSocket-Extensions: permessage-deflate\r\n", &cfg, r, sizeof(r)));
    CHECK_STR_EQ(r, "permessage-deflate");
    CHECK(negotiate("Sec-WebSocket-Extensions: permessage-deflate; client_no_context_takeover\r\n",
                    &cfg, r, sizeof(r)));
    CHECK_STR_EQ(r, "permessage-deflate; client_no_context_takeover");
    CHECK(negotiate("Sec-WebSocket-Extensions: permessage-deflate;server_no_context_takeover\r\n",
                    &cfg, r, sizeof(r)));
    CHECK_STR_EQ(r, "permessage-deflate; server_no_context_takeover");
}

static void test_window_bits(void)
{
    struct ws_config cfg = config(1);
    char r[256];
    CHECK(negotiate("Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=10\r\n",
                    &cfg, r, sizeof(r)));
    CHECK_STR_EQ(r, "permessage-deflate; server_max_window_bits=10");
    /* quoted-string values are allowed (RFC 7692 7) */
    CHECK(negotiate("Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=\"12\"\r\n",
                    &cfg, r, sizeof(r)));
    CHECK_STR_EQ(r, "permessage-deflate; server_max_window_bits=12");
    /* client_max_window_bits with or without a value: accepted, never echoed */
    CHECK(negotiate("Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n",
                    &cfg, r, sizeof(r)));
    CHECK_STR_EQ(r, "permessage-deflate");
    CHECK(negotiate("Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits=9\r\n",
                    &cfg, r, sizeof(r)));
    CHECK_STR_EQ(r, "permessage-deflate");
    /* our cap below 15 is announced even when not asked */
    cfg.deflate_window_bits = 11;
    CHECK(negotiate("Sec-WebSocket-Extensions: permessage-deflate\r\n", &cfg, r, sizeof(r)));
    CHECK_STR_EQ(r, "permessage-deflate; server_max_window_bits=11");
    CHECK(negotiate("Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=13\r\n",
                    &cfg, r, sizeof(r)));
    CHECK_STR_EQ(r, "permessage-deflate; server_max_window_bits=11");
}

static void test_invalid_offers_are_declined(void)
{
    static const char *bad[] = {
        "permessage-deflate; server_max_window_bits=8",   /* zlib cannot */
        "permessage-deflate; server_max_window_bits=7",
        "permessage-deflate; server_max_window_bits=16",
        "permessage-deflate; server_max_window_bits=010",
        "permessage-deflate; server_max_window_bits",      /* value required */
        "permessage-deflate; client_max_window_bits=abc",
        "permessage-deflate; server_no_context_takeover=1",
        "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
        "permessage-deflate; client_max_window_bits; client_max_window_bits=10",
        "permessage-deflate; unknown_param",
        "permessage-deflate; server_max_window_bits=\"10",
        "x-webkit-deflate-frame",
        "permessage-deflate x",
    };
    struct ws_config cfg = config(1);
    char r[256], line[256];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(line, sizeof(line), "Sec-WebSocket-Extensions: %s\r\n", bad[i]);
        if (!CHECK(!negotiate(line, &cfg, r, sizeof(r))))
            UNIT_NOTE("accepted: %s -> %s", bad[i], r);
    }
}

static void test_first_acceptable_offer_wins(void)
{
    struct ws_config cfg = config(1);
    char r[256];
    CHECK(negotiate("Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=8, "
                    "permessage-deflate; server_max_window_bits=9, permessage-deflate\r\n",
                    &cfg, r, sizeof(r)));
    CHECK_STR_EQ(r, "permessage-deflate; server_max_window_bits=9");
    /* offers spread over two header lines */
    CHECK(negotiate("Sec-WebSocket-Extensions: foo; bar=1\r\n"
                    "Sec-WebSocket-Extensions: permessage-deflate; client_no_context_takeover\r\n",
                    &cfg, r, sizeof(r)));
    CHECK_STR_EQ(r, "permessage-deflate; client_no_context_takeover");
}

static void test_disabled_declines_everything(void)
{
    struct ws_config cfg = config(1);
    char r[256];
    cfg.deflate = 0;
    CHECK(!negotiate("Sec-WebSocket-Extensions: permessage-deflate\r\n", &cfg, r, sizeof(r)));
    cfg.deflate = 1;
    CHECK(!negotiate("X-Other: 1\r\n", &cfg, r, sizeof(r)));
}

/* Compress like a peer: raw deflate, sync flush, tail stripped. */
static size_t peer_deflate(const void *in, size_t len, uint8_t *out, size_t cap)
{
    z_stream zs = { 0 };
    size_t n;
    deflateInit2(&zs, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY);
    zs.next_in = (Bytef *)(uintptr_t)in;
    zs.avail_in = (uInt)len;
    zs.next_out = out;
    zs.avail_out = (uInt)cap;
    deflate(&zs, Z_SYNC_FLUSH);
    n = cap - zs.avail_out - 4;
    deflateEnd(&zs);
    return n;
}

static void test_roundtrip_and_split_input(void)
{
    size_t mem = 0, out_len = 0, cap = 0, zcap = 0, zlen = 0;
    struct z_stream_s *def = wsc__deflater_new(&mem, 15, 8);
    struct z_stream_s *inf = wsc__inflater_new(&mem);
    uint8_t *buf = NULL, *z = NULL;
    char text[5000];

    for (size_t i = 0; i < sizeof(text); i++)
        text[i] = (char)('a' + (i * 7) % 26);
    if (!CHECK(def != NULL && inf != NULL))
        return;
    CHECK_INT_EQ(wsc__deflate(def, (const uint8_t *)text, sizeof(text), &z, &zcap, &zlen, true), 0);
    CHECK(zlen < sizeof(text) / 4);
    CHECK(zlen >= 4 && memcmp(z + zlen - 4, "\x00\x00\xff\xff", 4) != 0);
    /* inflate byte by byte: same output as at once */
    for (size_t i = 0; i < zlen; i++)
        CHECK_INT_EQ(wsc__inflate(inf, z + i, 1, i + 1 == zlen, &buf, &cap, &out_len, 1 << 20), 0);
    CHECK_INT_EQ(out_len, sizeof(text));
    CHECK(out_len == sizeof(text) && memcmp(buf, text, sizeof(text)) == 0);
    wsc__deflater_free(def);
    wsc__inflater_free(inf);
    CHECK_INT_EQ(mem, 0); /* every counted byte returned */
    free(buf);
    free(z);
}

static void test_inflate_limit_both_sides(void)
{
    size_t n = 100000, zlen, cap = 0, out_len = 0;
    uint8_t *zeros = calloc(1, n + 1), *z = malloc(n), *buf = NULL;
    struct z_stream_s *inf = wsc__inflater_new(NULL);

    zlen = peer_deflate(zeros, n, z, n);
    CHECK_INT_EQ(wsc__inflate(inf, z, zlen, true, &buf, &cap, &out_len, n), 0);
    CHECK_INT_EQ(out_len, n); /* exactly the limit: fine */
    wsc__inflater_reset(inf);
    out_len = 0;
    zlen = peer_deflate(zeros, n + 1, z, n);
    CHECK_INT_EQ(wsc__inflate(inf, z, zlen, true, &buf, &cap, &out_len, n), WSC__INFLATE_TOO_BIG);
    CHECK(cap <= n + 1); /* never buffered beyond the limit */
    wsc__inflater_free(inf);
    free(zeros);
    free(z);
    free(buf);
}

static void test_corrupt_data_is_rejected(void)
{
    static const uint8_t junk[] = { 0xff, 0xff, 0xff, 0xff, 0x00, 0x12 };
    size_t cap = 0, out_len = 0;
    uint8_t *buf = NULL;
    struct z_stream_s *inf = wsc__inflater_new(NULL);
    CHECK_INT_EQ(wsc__inflate(inf, junk, sizeof(junk), true, &buf, &cap, &out_len, 1000),
                 WSC__INFLATE_BAD);
    wsc__inflater_free(inf);
    free(buf);
}

/* The figures documented in wsc.h and docs/CONFORMANCE.md. */
static void test_stream_memory_is_as_documented(void)
{
    size_t mem = 0, cap = 0, out_len = 0, zcap = 0, zlen = 0;
    uint8_t msg[300] = { 0 }, *buf = NULL, *z = NULL;
    struct z_stream_s *def = wsc__deflater_new(&mem, 15, 8);
    size_t deflate_mem = mem;
    struct z_stream_s *inf = wsc__inflater_new(&mem);

    wsc__deflate(def, msg, sizeof(msg), &z, &zcap, &zlen, false);
    wsc__inflate(inf, z, zlen, true, &buf, &cap, &out_len, 1000); /* window allocated now */
    UNIT_NOTE("deflate 15/8: %zu bytes, inflate: %zu bytes", deflate_mem, mem - deflate_mem);
    CHECK(deflate_mem > 250 * 1024 && deflate_mem < 280 * 1024);
    CHECK(mem - deflate_mem > 32 * 1024 && mem - deflate_mem < 48 * 1024);
    wsc__deflater_free(def);
    wsc__inflater_free(inf);
    free(buf);
    free(z);
}

const struct unit_test deflate_tests[] = {
    {"pmd_plain_offer_forces_no_takeover", test_plain_offer_forces_no_takeover_by_default},
    {"pmd_takeover_allowed", test_takeover_allowed_echoes_client_wishes},
    {"pmd_window_bits", test_window_bits},
    {"pmd_invalid_offers_declined", test_invalid_offers_are_declined},
    {"pmd_first_acceptable_offer_wins", test_first_acceptable_offer_wins},
    {"pmd_disabled", test_disabled_declines_everything},
    {"deflate_roundtrip_split", test_roundtrip_and_split_input},
    {"deflate_inflate_limit_both_sides", test_inflate_limit_both_sides},
    {"deflate_corrupt_data", test_corrupt_data_is_rejected},
    {"deflate_stream_memory", test_stream_memory_is_as_documented},
    {NULL, NULL},
};
