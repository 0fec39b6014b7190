/*
 * tls.c - one connection's TLS: OpenSSL's SSL_read/SSL_write in place of
 * read()/writev() under io.c, the handshake, close_notify.
 *
 * The SSL object reads and writes the socket itself (a socket BIO), so the
 * only changes above are that "would block" may mean "wait until the socket
 * is writable" (c->tls_wait_write), and that decrypted bytes may wait in
 * OpenSSL where no socket event announces them (wsc__tls_has_pending).
 * Our contexts read ahead: without it OpenSSL reads each record with two
 * read()s (header, then body); with it one read() takes what the socket has,
 * and the records wait in OpenSSL (wsc__tls_has_pending counts them too).
 *
 * Writes run with SSL_MODE_ENABLE_PARTIAL_WRITE: every SSL_write that
 * succeeds has put whole records on the wire, and one that blocks keeps its
 * record inside OpenSSL; io.c then backlogs the same bytes and retries with
 * them at the front (SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER lets the address
 * change). Every write is capped at WSC__TLS_CHUNK so a retry always covers
 * what the blocked write had taken.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "internal.h"

/* A fatal TLS error: no close_notify may follow it, and a client that is
 * still before its upgrade says why (once: the first reason is the real one;
 * in TLS 1.3 a client may learn only after its side of the handshake that
 * the server refused it, e.g. for want of a client certificate). */
static void tls_fail(struct ws_conn *c)
{
    if (!c->tls_failed && c->ep->is_client && atomic_load(&c->state) == WSC__CONN_HTTP)
        wsc__tls_client_failed(c);
    c->tls_failed = true;
    c->tls_broken = true;
}

/* What SSL_get_error said, as io.c's errno: 0 means "would block". After a
 * fatal error the caller clears the error queue (once it has the reason):
 * "would block" leaves it empty, so the application finds nothing of ours. */
static int tls_errno(struct ws_conn *c, int rc)
{
    switch (SSL_get_error(c->ssl, rc)) {
    case SSL_ERROR_WANT_READ:
        return 0;
    case SSL_ERROR_WANT_WRITE:
        c->tls_wait_write = true;
        return 0;
    case SSL_ERROR_ZERO_RETURN:   /* close_notify: an orderly end */
        return EPIPE;
    case SSL_ERROR_SYSCALL:       /* errno, or 0 for an EOF inside TLS */
        c->tls_broken = true;
        return errno != 0 ? errno : EPIPE;
    default:                      /* a protocol error: garbage, bad MAC, alert */
        tls_fail(c);
        return EPROTO;
    }
}

ssize_t wsc__tls_read(struct ws_conn *c, uint8_t *buf, size_t len)
{
    size_t have = 0;
    int err = 0;

    c->tls_wait_write = false;
    ERR_clear_error(); /* SSL_get_error needs it empty; successes keep it so */
    while (have < len) {
        size_t got = 0;
        errno = 0;
        if (SSL_read_ex(c->ssl, buf + have, len - have, &got) == 1) {
            have += got;
            /* Nothing buffered in OpenSSL: stop, as the plain path stops
             * after its one read(). Asking again would only read() an
             * EAGAIN; more data, or the EOF, wakes the loop again. */
            if (!SSL_has_pending(c->ssl))
                break;
            continue;
        }
        if ((err = tls_errno(c, 0)) != 0)
            ERR_clear_error();
        break;
    }
    if (have > 0) {
        /* An EOF or error right behind data shows on the next read: come
         * back for it even if the socket has nothing more to say. */
        if (err != 0)
            wsc__watch_kick(c);
        return (ssize_t)have;
    }
    if (err == EPIPE)
        return 0; /* close_notify, or the peer's FIN */
    errno = err != 0 ? err : EAGAIN;
    return -1;
}

ssize_t wsc__tls_write(struct ws_conn *c, const void *buf, size_t len)
{
    size_t done = 0;
    int rc, err;

    if (len > WSC__TLS_CHUNK)
        len = WSC__TLS_CHUNK;
    if (len == 0)
        return 0;
    ERR_clear_error();
    errno = 0;
    rc = SSL_write_ex(c->ssl, buf, len, &done);
    if (rc == 1)
        return (ssize_t)done;
    if ((err = tls_errno(c, 0)) != 0)
        ERR_clear_error();
    errno = err != 0 ? err : EAGAIN;
    return -1;
}

int wsc__tls_handshake(struct ws_conn *c)
{
    int rc, err;

    if (SSL_get_fd(c->ssl) != c->fd && SSL_set_fd(c->ssl, c->fd) != 1)
        return -1;
    c->tls_wait_write = false;
    ERR_clear_error();
    errno = 0;
    rc = SSL_do_handshake(c->ssl);
    if (rc == 1) {
        c->tls_hs = false;
        return 1;
    }
    err = tls_errno(c, rc);
    if (err == 0)
        return 0;
    tls_fail(c); /* any end of a handshake is its failure, an EOF too */
    ERR_clear_error();
    return -1;
}

bool wsc__tls_has_pending(const struct ws_conn *c)
{
    return c->ssl != NULL && SSL_has_pending(c->ssl);
}

void wsc__tls_close_notify(struct ws_conn *c)
{
    if (c->ssl == NULL || c->tls_hs || c->tls_broken ||
        (SSL_get_shutdown(c->ssl) & SSL_SENT_SHUTDOWN))
        return;
    ERR_clear_error();
    (void)SSL_shutdown(c->ssl); /* one try: the FIN follows regardless */
    ERR_clear_error();
}

void wsc__tls_release(struct ws_conn *c)
{
    if (c->ssl != NULL) {
        struct wsc__tls_gen *g = wsc__tls_gen_of(c->ssl); /* server: its reference */

        SSL_free(c->ssl);
        c->ssl = NULL;
        if (g != NULL)
            wsc__tls_gen_unref(g);
    }
    c->tls_hs = c->tls_wait_write = false;
}

int ws_conn_is_tls(const struct ws_conn *conn)
{
    return conn != NULL && conn->tls_on; /* kept after release */
}

int ws_conn_peer_subject(const struct ws_conn *conn, char *buf, size_t len)
{
    X509 *peer;
    BIO *bio;
    char *p;
    long n;
    int rc;

    if (conn == NULL || buf == NULL || len == 0)
        return WS_EINVAL;
    if (conn->ssl == NULL || conn->tls_hs || SSL_get_verify_result(conn->ssl) != X509_V_OK)
        return WS_ENOTFOUND;
    peer = SSL_get1_peer_certificate(conn->ssl);
    if (peer == NULL)
        return WS_ENOTFOUND;
    bio = BIO_new(BIO_s_mem());
    if (bio == NULL ||
        X509_NAME_print_ex(bio, X509_get_subject_name(peer), 0, XN_FLAG_RFC2253) < 0) {
        BIO_free(bio);
        X509_free(peer);
        return WS_ENOMEM;
    }
    n = BIO_get_mem_data(bio, &p);
    if (n < 0 || (size_t)n >= len) {
        rc = WS_ETOOBIG;
    } else {
        memcpy(buf, p, (size_t)n);
        buf[n] = '\0';
        rc = (int)n;
    }
    BIO_free(bio);
    X509_free(peer);
    return rc;
}

SSL_CTX *wsc__tls_ctx_new(bool server)
{
    SSL_CTX *ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());

    if (ctx == NULL)
        return NULL;
    /* Partial writes and moving buffers: the cork and backlog hand OpenSSL
     * what they have. Released buffers: an idle connection keeps no
     * record buffers. Read-ahead: one read() for many records. */
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF |
                                 (server ? SSL_OP_CIPHER_SERVER_PREFERENCE : 0));
    SSL_CTX_set_read_ahead(ctx, 1);
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    return ctx;
}

void wsc__tls_adopt(struct ws_conn *c, SSL *ssl, bool server)
{
    SSL_set_app_data(ssl, c);
    if (server)
        SSL_set_accept_state(ssl);
    else
        SSL_set_connect_state(ssl);
    c->ssl = ssl;
    c->tls_on = true; /* ws_conn_is_tls, ws_request_is_tls */
    c->tls_hs = true;
    wsc__watch_rearm(c); /* an accepted socket is watched before it gets its SSL */
}

int wsc__tls_set_str(char **slot, const char *v)
{
    char *copy = NULL;

    if (v != NULL && (copy = strdup(v)) == NULL)
        return WS_ENOMEM;
    free(*slot);
    *slot = copy;
    return 0;
}
