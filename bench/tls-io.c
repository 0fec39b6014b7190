/*
 * tls-io.c - wsc-bench's TLS client side; see tls-io.h.
 */
#define _GNU_SOURCE
#include "tls-io.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

struct tls_io {
    SSL *ssl;
    int fd;
    int err;         /* errno of a failed socket write, 0 if none */
    uint8_t *q;      /* ciphertext the socket did not take yet */
    size_t off, len, cap;
    char why[160];
};

static SSL_CTX *ctx;
static BIO_METHOD *queue_method;
static int verifying;

/* ---- the write side: a BIO that writes now or queues --------------------- */

static int queue_push(struct tls_io *t, const void *p, size_t n)
{
    if (t->off > 0 && t->off == t->len)
        t->off = t->len = 0;
    if (t->len + n > t->cap) {
        size_t cap = t->cap ? t->cap : 4096;
        uint8_t *nq;

        while (cap < t->len + n)
            cap *= 2;
        if ((nq = realloc(t->q, cap)) == NULL)
            return -1;
        t->q = nq;
        t->cap = cap;
    }
    memcpy(t->q + t->len, p, n);
    t->len += n;
    return 0;
}

/* OpenSSL's record output: behind queued bytes, or straight to the socket.
 * It always reports the whole record taken; a socket error is kept for the
 * caller's next tls_io_write or tls_io_flush. */
static int queue_write(BIO *b, const char *data, int len)
{
    struct tls_io *t = BIO_get_data(b);
    size_t n = (size_t)len;

    if (t->err == 0 && t->off == t->len) {
        ssize_t w = write(t->fd, data, n);

        if (w < 0 && errno != EAGAIN && errno != EINTR)
            t->err = errno;
        else if (w > 0) {
            data += w;
            n -= (size_t)w;
        }
    }
    if (t->err == 0 && n > 0 && queue_push(t, data, n) != 0)
        t->err = ENOMEM;
    return len;
}

static long queue_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)b;
    (void)num;
    (void)ptr;
    return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

int tls_io_flush(struct tls_io *t)
{
    while (t->err == 0 && t->off < t->len) {
        ssize_t w = write(t->fd, t->q + t->off, t->len - t->off);

        if (w < 0) {
            if (errno == EAGAIN || errno == EINTR)
                return 0;
            t->err = errno;
            break;
        }
        t->off += (size_t)w;
    }
    if (t->err != 0) {
        errno = t->err;
        return -1;
    }
    return 1;
}

/* ---- setup --------------------------------------------------------------- */

int tls_io_init(const char *ca_file, int insecure)
{
    if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL ||
        (queue_method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK,
                                     "wsc-bench queue")) == NULL ||
        !BIO_meth_set_write(queue_method, queue_write) ||
        !BIO_meth_set_ctrl(queue_method, queue_ctrl)) {
        fprintf(stderr, "wsc-bench: TLS setup failed\n");
        return -1;
    }
    /* An idle connection keeps no record buffers; reads come in large chunks. */
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_read_ahead(ctx, 1);
    verifying = !insecure;
    if (insecure) {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
        return 0;
    }
    if (SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1) {
        fprintf(stderr, "wsc-bench: cannot load CA file %s: %s\n", ca_file,
                ERR_reason_error_string(ERR_get_error()));
        return -1;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    return 0;
}

int tls_io_max_version(const char *version)
{
    int v = strcmp(version, "1.2") == 0 ? TLS1_2_VERSION
            : strcmp(version, "1.3") == 0 ? TLS1_3_VERSION : 0;

    if (v == 0 || SSL_CTX_set_max_proto_version(ctx, v) != 1) {
        fprintf(stderr, "wsc-bench: --tls-max: 1.2 or 1.3, not %s\n", version);
        return -1;
    }
    return 0;
}

struct tls_io *tls_io_new(int fd, const char *sni)
{
    struct tls_io *t = calloc(1, sizeof *t);
    BIO *rb = NULL, *wb = NULL;

    if (t == NULL)
        return NULL;
    t->fd = fd;
    if ((t->ssl = SSL_new(ctx)) == NULL || (rb = BIO_new_socket(fd, BIO_NOCLOSE)) == NULL ||
        (wb = BIO_new(queue_method)) == NULL)
        goto fail;
    BIO_set_data(wb, t);
    BIO_set_init(wb, 1);
    SSL_set_bio(t->ssl, rb, wb);
    rb = wb = NULL;
    if (!SSL_set_tlsext_host_name(t->ssl, sni) || (verifying && !SSL_set1_host(t->ssl, sni)))
        goto fail;
    SSL_set_connect_state(t->ssl);
    return t;
fail:
    BIO_free(rb);
    BIO_free(wb);
    ERR_clear_error();
    tls_io_free(t);
    return NULL;
}

void tls_io_free(struct tls_io *t)
{
    if (t == NULL)
        return;
    SSL_free(t->ssl);
    free(t->q);
    free(t);
}

const char *tls_io_why(const struct tls_io *t)
{
    return t->why[0] ? t->why : "TLS failure";
}

void tls_io_describe(const struct tls_io *t, char *buf, size_t len)
{
    snprintf(buf, len, "%s %s", SSL_get_version(t->ssl), SSL_get_cipher_name(t->ssl));
}

/* ---- operations ---------------------------------------------------------- */

/* Keep the reason of a failed SSL call and leave the error queue empty (as
 * SSL_get_error needs it before the next call). */
static void failed(struct tls_io *t, const char *what)
{
    long vr = SSL_get_verify_result(t->ssl);
    unsigned long e = ERR_get_error();

    if (vr != X509_V_OK)
        snprintf(t->why, sizeof t->why, "%s: certificate: %s", what,
                 X509_verify_cert_error_string(vr));
    else if (e != 0)
        snprintf(t->why, sizeof t->why, "%s: %s", what, ERR_reason_error_string(e));
    else
        snprintf(t->why, sizeof t->why, "%s: %s", what, strerror(errno ? errno : EPROTO));
    ERR_clear_error();
}

int tls_io_handshake(struct tls_io *t)
{
    int r = SSL_do_handshake(t->ssl);

    if (t->err != 0) {
        errno = t->err;
        failed(t, "TLS handshake");
        return -1;
    }
    if (r == 1)
        return 1;
    switch (SSL_get_error(t->ssl, r)) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
        return 0;
    default:
        failed(t, "TLS handshake");
        return -1;
    }
}

ssize_t tls_io_read(struct tls_io *t, void *buf, size_t len)
{
    int r;

    errno = 0; /* SSL_ERROR_SYSCALL with errno 0 is the end of the stream */
    r = SSL_read(t->ssl, buf, len > INT_MAX ? INT_MAX : (int)len);
    if (r > 0)
        return r;
    switch (SSL_get_error(t->ssl, r)) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
        errno = EAGAIN;
        return -1;
    case SSL_ERROR_ZERO_RETURN: /* close_notify */
        return 0;
    case SSL_ERROR_SYSCALL:
        ERR_clear_error();
        if (errno == 0)
            return 0; /* TCP ended without close_notify */
        return -1;
    default:
        failed(t, "TLS read");
        errno = EPROTO;
        return -1;
    }
}

ssize_t tls_io_write(struct tls_io *t, const void *buf, size_t len)
{
    int r;

    if (len == 0)
        return 0;
    if (t->err == 0) {
        r = SSL_write(t->ssl, buf, len > INT_MAX ? INT_MAX : (int)len);
        if (r <= 0) {
            failed(t, "TLS write");
            errno = EPROTO;
            return -1;
        }
        if (t->err == 0)
            return r;
    }
    errno = t->err;
    return -1;
}
