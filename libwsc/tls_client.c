/*
 * tls_client.c - wss:// for clients: the SSL_CTX (system trust store or a
 * CA file, an optional client certificate), the per-attempt SSL with SNI
 * and the host name check, and why an attempt failed.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "internal.h"

struct wsc__tls_client {
    SSL_CTX *ctx;                 /* built by prepare, for every attempt */
    char *ca, *chain, *key;
    bool insecure;
    char error[256];              /* why the last attempt failed */
};

static struct wsc__tls_client *tls_client(struct ws_client *cl)
{
    struct wsc__tls_client **slot = wsc__client_tls_slot(cl);

    if (*slot == NULL)
        *slot = calloc(1, sizeof(**slot));
    return *slot;
}

int ws_client_set_tls_ca_file(struct ws_client *cl, const char *ca_file)
{
    struct wsc__tls_client *tc;

    if (cl == NULL)
        return WS_EINVAL;
    tc = tls_client(cl);
    return tc == NULL ? WS_ENOMEM : wsc__tls_set_str(&tc->ca, ca_file);
}

int ws_client_set_tls_cert_file(struct ws_client *cl, const char *chain_file,
                                const char *key_file)
{
    struct wsc__tls_client *tc;

    if (cl == NULL || (chain_file == NULL) != (key_file == NULL))
        return WS_EINVAL;
    tc = tls_client(cl);
    if (tc == NULL)
        return WS_ENOMEM;
    return wsc__tls_set_str(&tc->chain, chain_file) != 0 || wsc__tls_set_str(&tc->key, key_file) != 0
               ? WS_ENOMEM : 0;
}

int ws_client_set_tls_insecure_skip_verify(struct ws_client *cl, int on)
{
    struct wsc__tls_client *tc;

    if (cl == NULL)
        return WS_EINVAL;
    tc = tls_client(cl);
    if (tc == NULL)
        return WS_ENOMEM;
    tc->insecure = on != 0;
    return 0;
}

const char *ws_client_tls_verify_error(struct ws_client *cl)
{
    struct wsc__tls_client *tc = cl != NULL ? *wsc__client_tls_slot(cl) : NULL;

    return tc != NULL ? tc->error : "";
}

/* The reason OpenSSL gave for its last error, or otherwise. */
static const char *ssl_reason(const char *otherwise)
{
    unsigned long e = ERR_peek_last_error();
    const char *r = e != 0 ? ERR_reason_error_string(e) : NULL;

    return r != NULL ? r : otherwise;
}

static int prepare_fail(struct wsc__tls_client *tc, const char *what, const char *file)
{
    snprintf(tc->error, sizeof(tc->error), "%s %s: %s", what, file != NULL ? file : "",
             ssl_reason("failed"));
    ERR_clear_error();
    SSL_CTX_free(tc->ctx);
    tc->ctx = NULL;
    return WS_ETLS;
}

int wsc__tls_client_prepare(struct wsc__tls_client *tc)
{
    ERR_clear_error();
    SSL_CTX_free(tc->ctx);
    tc->error[0] = '\0';
    tc->ctx = wsc__tls_ctx_new(false);
    if (tc->ctx == NULL)
        return prepare_fail(tc, "SSL_CTX_new", NULL);
    if (tc->ca != NULL ? SSL_CTX_load_verify_locations(tc->ctx, tc->ca, NULL) != 1
                       : SSL_CTX_set_default_verify_paths(tc->ctx) != 1)
        return prepare_fail(tc, "CA file", tc->ca != NULL ? tc->ca : "(system)");
    if (tc->chain != NULL) {
        if (SSL_CTX_use_certificate_chain_file(tc->ctx, tc->chain) != 1)
            return prepare_fail(tc, "certificate", tc->chain);
        if (SSL_CTX_use_PrivateKey_file(tc->ctx, tc->key, SSL_FILETYPE_PEM) != 1 ||
            SSL_CTX_check_private_key(tc->ctx) != 1)
            return prepare_fail(tc, "private key", tc->key);
    }
    SSL_CTX_set_verify(tc->ctx, tc->insecure ? SSL_VERIFY_NONE : SSL_VERIFY_PEER, NULL);
    return 0;
}

static bool is_ip(const char *host)
{
    unsigned char a[16];

    return inet_pton(AF_INET, host, a) == 1 || inet_pton(AF_INET6, host, a) == 1;
}

int wsc__tls_client_attach(struct ws_conn *c, struct wsc__tls_client *tc, const char *host)
{
    SSL *ssl;
    bool ip = is_ip(host);

    if (tc == NULL || tc->ctx == NULL)
        return WS_ESTATE;
    tc->error[0] = '\0';
    ssl = SSL_new(tc->ctx);
    if (ssl == NULL)
        goto fail;
    if (!ip && SSL_set_tlsext_host_name(ssl, host) != 1)
        goto fail; /* SNI: never for an address (RFC 6066 3) */
    if (!tc->insecure) {
        X509_VERIFY_PARAM *vp = SSL_get0_param(ssl);
        if (ip ? X509_VERIFY_PARAM_set1_ip_asc(vp, host) != 1
               : SSL_set1_host(ssl, host) != 1)
            goto fail;
        X509_VERIFY_PARAM_set_hostflags(vp, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    }
    wsc__tls_adopt(c, ssl, false);
    return 0;
fail:
    SSL_free(ssl);
    ERR_clear_error();
    return WS_ENOMEM;
}

void wsc__tls_client_failed(struct ws_conn *c)
{
    struct ws_client *cl = ws_conn_client(c);
    struct wsc__tls_client *tc = cl != NULL ? *wsc__client_tls_slot(cl) : NULL;
    long v;

    if (tc == NULL)
        return;
    v = SSL_get_verify_result(c->ssl);
    if (v != X509_V_OK) {
        snprintf(tc->error, sizeof(tc->error), "certificate verify failed: %s",
                 X509_verify_cert_error_string(v));
    } else {
        snprintf(tc->error, sizeof(tc->error), "TLS handshake failed: %s",
                 ssl_reason("connection closed"));
    }
}

void wsc__tls_client_free(struct wsc__tls_client *tc)
{
    if (tc == NULL)
        return;
    SSL_CTX_free(tc->ctx);
    free(tc->ca);
    free(tc->chain);
    free(tc->key);
    free(tc);
}
