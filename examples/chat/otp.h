/*
 * otp.h - one-time passwords for the chat's WebSocket login: issued after
 * POST /login, valid for a few seconds, usable once.
 */
#ifndef CHAT_OTP_H
#define CHAT_OTP_H

#include <stdbool.h>
#include <stddef.h>

#define OTP_HEX_LEN 32 /* 16 random bytes */
#define OTP_NAME_MAX 32

struct otp_store;

struct otp_store *otp_store_new(unsigned ttl_ms);
void otp_store_free(struct otp_store *s);
#define OTP_FULL (-2) /* otp_issue: OTP_MAX (4096) unspent, unexpired passwords */

/* A new password for user into out (OTP_HEX_LEN + NUL). 0, OTP_FULL or -1. */
int otp_issue(struct otp_store *s, const char *user, char out[OTP_HEX_LEN + 1]);
/* Spend otp: true (and the user's name into user) when it was issued,
 * has not expired and was not spent before. Constant time in the value. */
bool otp_redeem(struct otp_store *s, const char *otp, char user[OTP_NAME_MAX + 1]);
/* Drop expired passwords; returns how many went. */
size_t otp_purge(struct otp_store *s);
size_t otp_count(const struct otp_store *s);

#endif
