/*
 * test_error.c - error strings and the version (libwsc/error.c), close codes
 * and close payloads (libwsc/frame.c).
 */
#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "unit.h"

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

static const int known_codes[] = {
    WS_OK, WS_EINVAL, WS_ENOMEM, WS_ECLOSED, WS_EAGAIN, WS_ETOOBIG, WS_EADDR,
    WS_ELISTEN, WS_ESTATE, WS_EEVENT, WS_EUTF8, WS_ENOTFOUND, WS_ECODE,
};

static bool contains_word_unknown(const char *s)
{
    for (; *s != '\0'; s++) {
        size_t i = 0;
        while (s[i] != '\0' && i < 7 && tolower((unsigned char)s[i]) == "unknown"[i])
            i++;
        if (i == 7)
            return true;
    }
    return false;
}

static void test_strerror_known(void)
{
    const char *unknown = ws_strerror(12345);

    for (size_t i = 0; i < N_OF(known_codes); i++) {
        const char *t = ws_strerror(known_codes[i]);

        if (!CHECK(t != NULL && t[0] != '\0')) {
            UNIT_NOTE("code %d", known_codes[i]);
            continue;
        }
        if (!CHECK(unknown == NULL || strcmp(t, unknown) != 0))
            UNIT_NOTE("code %d reads as unknown: \"%s\"", known_codes[i], t);
        for (size_t j = 0; j < i; j++) {
            const char *u = ws_strerror(known_codes[j]);
            if (u != NULL && !CHECK(strcmp(t, u) != 0))
                UNIT_NOTE("codes %d and %d share \"%s\"", known_codes[i], known_codes[j], t);
        }
    }
    /* the codes are numbered as the header promises, never renumbered */
    CHECK_INT_EQ(WS_OK, 0);
    CHECK_INT_EQ(WS_EINVAL, -1);
    CHECK_INT_EQ(WS_ECODE, -12);
    for (size_t i = 0; i < N_OF(known_codes); i++)
        CHECK_INT_EQ(known_codes[i], -(int)i);
}

static void test_strerror_unknown(void)
{
    static const int codes[] = {
        12345, -9999, INT_MIN, INT_MAX, INT_MIN + 1, 1000, -1000,
    };
    const char *first = ws_strerror(codes[0]);

    if (!CHECK(first != NULL))
        return;
    CHECK(first[0] != '\0');
    CHECK(contains_word_unknown(first));
    for (size_t i = 0; i < N_OF(codes); i++) {
        const char *t = ws_strerror(codes[i]);
        if (!CHECK(t != NULL) || !CHECK_STR_EQ(t, first))
            UNIT_NOTE("code %d", codes[i]);
    }
    /* a wide sweep: never NULL, never empty */
    for (int code = -2000; code <= 2000; code++) {
        const char *t = ws_strerror(code);
        if (!CHECK(t != NULL && t[0] != '\0')) {
            UNIT_NOTE("code %d", code);
            break;
        }
    }
}

static void test_strerror_static(void)
{
    /* The text stays put: a later call does not overwrite an earlier one. */
    const char *a = ws_strerror(WS_EINVAL);
    char copy[256];

    if (!CHECK(a != NULL))
        return;
    snprintf(copy, sizeof(copy), "%s", a);
    for (size_t i = 0; i < N_OF(known_codes); i++)
        (void)ws_strerror(known_codes[i]);
    (void)ws_strerror(424242);
    CHECK_STR_EQ(a, copy);
    CHECK_STR_EQ(ws_strerror(WS_EINVAL), copy);
}

static void test_version(void)
{
    char want[32];

    CHECK_STR_EQ(ws_version(), WS_VERSION_STR);
    snprintf(want, sizeof(want), "%d.%d.%d", WS_VERSION_MAJOR, WS_VERSION_MINOR,
             WS_VERSION_PATCH);
    CHECK_STR_EQ(WS_VERSION_STR, want);
    CHECK_INT_EQ(WS_VERSION_NUM,
                 (WS_VERSION_MAJOR << 16) | (WS_VERSION_MINOR << 8) | WS_VERSION_PATCH);
    CHECK(WS_AT_LEAST_VERSION(0, 0, 0));
    CHECK(WS_AT_LEAST_VERSION(WS_VERSION_MAJOR, WS_VERSION_MINOR, WS_VERSION_PATCH));
    CHECK(!WS_AT_LEAST_VERSION(WS_VERSION_MAJOR + 1, 0, 0));
    CHECK(!WS_AT_LEAST_VERSION(WS_VERSION_MAJOR, WS_VERSION_MINOR + 1, 0));
}

/* ---- close codes (frame.c) --------------------------------------------------- */

static bool close_code_expected(int code)
{
    return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
           (code >= 3000 && code <= 4999);
}

static void test_close_code_valid(void)
{
    static const struct {
        int code;
        bool valid;
    } spot[] = {
        { 0, false }, { 1, false }, { 999, false },
        { 1000, true }, { 1001, true }, { 1002, true }, { 1003, true },
        { 1004, false }, { 1005, false }, { 1006, false },
        { 1007, true }, { 1008, true }, { 1009, true }, { 1010, true },
        { 1011, true }, { 1012, true }, { 1013, true }, { 1014, true },
        { 1015, false }, { 1016, false }, { 2000, false }, { 2999, false },
        { 3000, true }, { 3999, true }, { 4000, true }, { 4999, true },
        { 5000, false }, { 65535, false }, { 65536 + 1000, false },
        { -1, false }, { -1000, false }, { INT_MIN, false }, { INT_MAX, false },
    };

    for (size_t i = 0; i < N_OF(spot); i++)
        if (!CHECK_INT_EQ(wsc__close_code_valid(spot[i].code), spot[i].valid))
            UNIT_NOTE("close code %d", spot[i].code);
    /* and the whole table, beyond what a 16-bit field can carry */
    for (int code = -70000; code <= 70000; code++) {
        if (!CHECK_INT_EQ(wsc__close_code_valid(code), close_code_expected(code))) {
            UNIT_NOTE("close code %d", code);
            break;
        }
    }
}

static void test_close_payload(void)
{
    uint8_t *out = malloc(125); /* exactly 125, so a write past it is caught */
    char reason[124];

    if (!CHECK(out != NULL))
        return;
    CHECK_INT_EQ(wsc__frame_close_payload(out, 1000, "bye", 3), 5);
    CHECK_MEM_EQ(out, "\x03\xe8" "bye", 5);
    CHECK_INT_EQ(wsc__frame_close_payload(out, 1000, NULL, 0), 2);
    CHECK_MEM_EQ(out, "\x03\xe8", 2);
    CHECK_INT_EQ(wsc__frame_close_payload(out, 1001, "", 0), 2);
    CHECK_MEM_EQ(out, "\x03\xe9", 2);
    CHECK_INT_EQ(wsc__frame_close_payload(out, 4999, "x", 1), 3);
    CHECK_MEM_EQ(out, "\x13\x87x", 3);
    CHECK_INT_EQ(wsc__frame_close_payload(out, 3000, "\xce\xba", 2), 4);
    CHECK_MEM_EQ(out, "\x0b\xb8\xce\xba", 4);
    /* reason_len counts, not a NUL */
    CHECK_INT_EQ(wsc__frame_close_payload(out, 1011, "a\0b", 3), 5);
    CHECK_MEM_EQ(out, "\x03\xf3" "a\0b", 5);
    /* code 0: an empty payload */
    CHECK_INT_EQ(wsc__frame_close_payload(out, 0, NULL, 0), 0);
    CHECK_INT_EQ(wsc__frame_close_payload(out, 0, "ignored", 7), 0);
    /* the longest reason that fits a control frame: 123 bytes */
    memset(reason, 'r', sizeof(reason));
    CHECK_INT_EQ(wsc__frame_close_payload(out, 1000, reason, 123), 125);
    CHECK_MEM_EQ(out, "\x03\xe8", 2);
    CHECK_MEM_EQ(out + 2, reason, 123);
    free(out);
}

const struct unit_test error_tests[] = {
    { "error_strerror_known", test_strerror_known },
    { "error_strerror_unknown", test_strerror_unknown },
    { "error_strerror_static", test_strerror_static },
    { "error_version", test_version },
    { "error_close_code_valid", test_close_code_valid },
    { "error_close_payload", test_close_payload },
    { NULL, NULL },
};
