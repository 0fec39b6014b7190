/*
 * otp.c - the chat's one-time passwords: 16 bytes from RAND_bytes, hex,
 * compared with CRYPTO_memcmp against every live entry (no early exit, so
 * timing says nothing about how much of a guess matched).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "otp.h"

#define OTP_MAX 4096 /* live passwords at most: a login flood cannot grow it */

struct otp {
    char key[OTP_HEX_LEN + 1];
    char user[OTP_NAME_MAX + 1];
    uint64_t expires_ms;
};

struct otp_store {
    unsigned ttl_ms;
    size_t n;
    struct otp items[OTP_MAX];
};

static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

struct otp_store *otp_store_new(unsigned ttl_ms)
{
    struct otp_store *s = calloc(1, sizeof(*s));

    if (s != NULL)
        s->ttl_ms = ttl_ms;
    return s;
}

void otp_store_free(struct otp_store *s)
{
    if (s != NULL)
        OPENSSL_cleanse(s, sizeof(*s));
    free(s);
}

static void remove_at(struct otp_store *s, size_t i)
{
    s->items[i] = s->items[--s->n];
    OPENSSL_cleanse(&s->items[s->n], sizeof(s->items[0]));
}

int otp_issue(struct otp_store *s, const char *user, char out[OTP_HEX_LEN + 1])
{
    unsigned char raw[OTP_HEX_LEN / 2];
    struct otp *o;

    if (strlen(user) > OTP_NAME_MAX)
        return -1;
    if (s->n == OTP_MAX && otp_purge(s) == 0)
        return OTP_FULL;
    if (RAND_bytes(raw, sizeof(raw)) != 1)
        return -1;
    o = &s->items[s->n++];
    for (size_t i = 0; i < sizeof(raw); i++)
        snprintf(o->key + 2 * i, 3, "%02x", raw[i]);
    snprintf(o->user, sizeof(o->user), "%s", user);
    o->expires_ms = now_ms() + s->ttl_ms;
    memcpy(out, o->key, sizeof(o->key));
    return 0;
}

bool otp_redeem(struct otp_store *s, const char *otp, char user[OTP_NAME_MAX + 1])
{
    uint64_t now = now_ms();
    size_t found = SIZE_MAX;

    if (strlen(otp) != OTP_HEX_LEN)
        return false;
    for (size_t i = 0; i < s->n; i++)
        if (CRYPTO_memcmp(s->items[i].key, otp, OTP_HEX_LEN) == 0)
            found = i;
    if (found == SIZE_MAX)
        return false;
    if (s->items[found].expires_ms <= now) {
        remove_at(s, found);
        return false;
    }
    memcpy(user, s->items[found].user, OTP_NAME_MAX + 1);
    remove_at(s, found); /* usable once */
    return true;
}

size_t otp_purge(struct otp_store *s)
{
    uint64_t now = now_ms();
    size_t gone = 0;

    for (size_t i = 0; i < s->n;) {
        if (s->items[i].expires_ms <= now) {
            remove_at(s, i);
            gone++;
        } else {
            i++;
        }
    }
    return gone;
}

size_t otp_count(const struct otp_store *s)
{
    return s->n;
}
