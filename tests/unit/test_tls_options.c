/*
 * test_tls_options.c - argument checks of ws_tls_set_min_version()
 * (libwsc/tls_server.c): the two versions of enum ws_tls_version are taken,
 * anything else (the neighbours on both sides, TLS 1.0/1.1, junk) and a NULL
 * options object are WS_EINVAL. What the setting does on the wire is tested
 * against Python's ssl in tests/tls/test_tls_version.py.
 */
#include "internal.h"
#include "unit.h"

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

static void test_min_version_valid(void)
{
    struct ws_tls *tls = ws_tls_new();

    if (!CHECK(tls != NULL))
        return;
    CHECK_INT_EQ(ws_tls_set_min_version(tls, WS_TLS_V1_3), 0);
    CHECK_INT_EQ(ws_tls_set_min_version(tls, WS_TLS_V1_2), 0);
    CHECK_INT_EQ(ws_tls_set_min_version(tls, WS_TLS_V1_3), 0);
    ws_tls_free(tls);
}

static void test_min_version_invalid(void)
{
    /* 0x0301/0x0302: TLS 1.0/1.1 (below the floor); 0x0305: past TLS 1.3;
     * 0x0300: SSL 3.0; 0x0304 with a high bit: not a version at all. */
    static const int bad[] = { 0, -1, 0x0300, 0x0301, 0x0302, 0x0305, 0x0403, 0x10304,
                               0x7fffffff };
    struct ws_tls *tls = ws_tls_new();

    if (!CHECK(tls != NULL))
        return;
    for (size_t i = 0; i < N_OF(bad); i++) {
        if (!CHECK_INT_EQ(ws_tls_set_min_version(tls, (enum ws_tls_version)bad[i]), WS_EINVAL))
            UNIT_NOTE("version 0x%x", (unsigned)bad[i]);
    }
    CHECK_INT_EQ(ws_tls_set_min_version(NULL, WS_TLS_V1_2), WS_EINVAL);
    CHECK_INT_EQ(ws_tls_set_min_version(NULL, WS_TLS_V1_3), WS_EINVAL);
    /* a refused call leaves the object usable */
    CHECK_INT_EQ(ws_tls_set_min_version(tls, WS_TLS_V1_3), 0);
    ws_tls_free(tls);
}

const struct unit_test tls_options_tests[] = {
    { "tls_min_version_valid", test_min_version_valid },
    { "tls_min_version_invalid", test_min_version_invalid },
    { NULL, NULL },
};
