/*
 * tls_server.c - TLS listeners: the options object (struct ws_tls), the
 * SSL_CTXs made from it, SNI, and reloading them while the server runs.
 *
 * A listener's contexts form a generation: the default SSL_CTX and one per
 * SNI name. New connections take a reference to the current generation
 * (under a mutex, at accept); ws_server_reload_tls() builds a complete new
 * generation from the files, off the loop, and swaps it in. Connections keep
 * the generation they started with until they end, so a reload never
 * touches them, and a failed reload changes nothing.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "internal.h"

struct wsc__tls_sni_opt {
    char *name, *chain, *key;
};

struct ws_tls {
    char *chain, *key, *ca, *ciphers, *groups;
    int min_version;
    bool sni_strict;
    struct wsc__tls_sni_opt *sni;
    size_t nsni;
    SSL_CTX *user_ctx;            /* a reference, or NULL */
};

struct wsc__tls_gen {
    _Atomic int refs;
    SSL_CTX *ctx;                 /* default certificate */
    bool strict;
    size_t nsni;
    struct {
        char *name;
        SSL_CTX *ctx;
    } *sni;
};

struct wsc__tls_listener {
    struct wsc__tls_listener *next;
    struct ws_tls opts;           /* a deep copy: reload reads its files */
    struct wsc__tls_gen *gen;     /* current; guarded by the server's lock */
    struct wsc__tls_server *ts;
};

struct wsc__tls_server {
    pthread_mutex_t lock;         /* guards gen swaps, the listener list, error */
    pthread_mutex_t reload_lock;  /* one reload at a time */
    struct wsc__tls_listener *listeners;
    char error[256];
};

/* ---- the options object ----------------------------------------------------- */

struct ws_tls *ws_tls_new(void)
{
    struct ws_tls *tls = calloc(1, sizeof(*tls));

    if (tls != NULL)
        tls->min_version = WS_TLS_V1_2;
    return tls;
}

static void tls_opts_clear(struct ws_tls *tls)
{
    free(tls->chain);
    free(tls->key);
    free(tls->ca);
    free(tls->ciphers);
    free(tls->groups);
    for (size_t i = 0; i < tls->nsni; i++) {
        free(tls->sni[i].name);
        free(tls->sni[i].chain);
        free(tls->sni[i].key);
    }
    free(tls->sni);
    SSL_CTX_free(tls->user_ctx);
    memset(tls, 0, sizeof(*tls));
}

void ws_tls_free(struct ws_tls *tls)
{
    if (tls != NULL) {
        tls_opts_clear(tls);
        free(tls);
    }
}

int ws_tls_set_cert_file(struct ws_tls *tls, const char *chain_file, const char *key_file)
{
    if (tls == NULL || chain_file == NULL || key_file == NULL)
        return WS_EINVAL;
    return wsc__tls_set_str(&tls->chain, chain_file) != 0 || wsc__tls_set_str(&tls->key, key_file) != 0
               ? WS_ENOMEM : 0;
}

int ws_tls_set_ca_file(struct ws_tls *tls, const char *ca_file)
{
    return tls == NULL ? WS_EINVAL : wsc__tls_set_str(&tls->ca, ca_file);
}

int ws_tls_set_min_version(struct ws_tls *tls, enum ws_tls_version version)
{
    if (tls == NULL || (version != WS_TLS_V1_2 && version != WS_TLS_V1_3))
        return WS_EINVAL;
    tls->min_version = (int)version;
    return 0;
}

int ws_tls_set_ciphers(struct ws_tls *tls, const char *ciphers)
{
    return tls == NULL ? WS_EINVAL : wsc__tls_set_str(&tls->ciphers, ciphers);
}

int ws_tls_set_groups(struct ws_tls *tls, const char *groups)
{
    return tls == NULL ? WS_EINVAL : wsc__tls_set_str(&tls->groups, groups);
}

int ws_tls_add_sni(struct ws_tls *tls, const char *server_name, const char *chain_file,
                   const char *key_file)
{
    struct wsc__tls_sni_opt *grown, *e;

    if (tls == NULL || server_name == NULL || server_name[0] == '\0' ||
        strlen(server_name) > 255 || chain_file == NULL || key_file == NULL)
        return WS_EINVAL;
    grown = realloc(tls->sni, (tls->nsni + 1) * sizeof(*grown));
    if (grown == NULL)
        return WS_ENOMEM;
    tls->sni = grown;
    e = &grown[tls->nsni];
    e->name = strdup(server_name);
    e->chain = strdup(chain_file);
    e->key = strdup(key_file);
    if (e->name == NULL || e->chain == NULL || e->key == NULL) {
        free(e->name);
        free(e->chain);
        free(e->key);
        return WS_ENOMEM;
    }
    tls->nsni++;
    return 0;
}

int ws_tls_set_sni_strict(struct ws_tls *tls, int on)
{
    if (tls == NULL)
        return WS_EINVAL;
    tls->sni_strict = on != 0;
    return 0;
}

int ws_tls_set_ssl_ctx(struct ws_tls *tls, void *ssl_ctx)
{
    if (tls == NULL)
        return WS_EINVAL;
    if (ssl_ctx != NULL && SSL_CTX_up_ref(ssl_ctx) != 1)
        return WS_ENOMEM;
    SSL_CTX_free(tls->user_ctx);
    tls->user_ctx = ssl_ctx;
    return 0;
}

static int tls_opts_copy(struct ws_tls *dst, const struct ws_tls *src)
{
    memset(dst, 0, sizeof(*dst));
    dst->min_version = src->min_version;
    dst->sni_strict = src->sni_strict;
    if (wsc__tls_set_str(&dst->chain, src->chain) || wsc__tls_set_str(&dst->key, src->key) ||
        wsc__tls_set_str(&dst->ca, src->ca) || wsc__tls_set_str(&dst->ciphers, src->ciphers) ||
        wsc__tls_set_str(&dst->groups, src->groups))
        return WS_ENOMEM;
    for (size_t i = 0; i < src->nsni; i++)
        if (ws_tls_add_sni(dst, src->sni[i].name, src->sni[i].chain, src->sni[i].key) != 0)
            return WS_ENOMEM;
    if (src->user_ctx != NULL && ws_tls_set_ssl_ctx(dst, src->user_ctx) != 0)
        return WS_ENOMEM;
    return 0;
}

/* ---- contexts ------------------------------------------------------------------ */

/* The reason OpenSSL gave, after what we were doing. */
static void tls_reason(char *out, size_t len, const char *what, const char *file)
{
    unsigned long e = ERR_peek_last_error();
    const char *r = e != 0 ? ERR_reason_error_string(e) : NULL;

    snprintf(out, len, "%s%s%s: %s", what, file != NULL ? " " : "", file != NULL ? file : "",
             r != NULL ? r : "failed");
    ERR_clear_error();
}

/* ---- the CA file: read once per generation ---------------------------------------- */

/*
 * Whom client certificates must chain to: the CA file's certificates in one
 * store that every context of a generation shares, and their subjects as the
 * acceptable-CA list each context sends. The file is read once per
 * generation (it was read twice per context: the list, then the store), so
 * a file replaced during a reload cannot give one generation's contexts, or
 * one context's list and store, different CAs.
 */
struct tls_ca {
    X509_STORE *store;
    STACK_OF(X509_NAME) *names;
};

static int tls_name_cmp(const X509_NAME *const *a, const X509_NAME *const *b)
{
    return X509_NAME_cmp(*a, *b);
}

static void tls_ca_clear(struct tls_ca *ca)
{
    X509_STORE_free(ca->store);
    sk_X509_NAME_pop_free(ca->names, X509_NAME_free);
    ca->store = NULL;
    ca->names = NULL;
}

static int tls_ca_load(struct tls_ca *ca, const char *file, char *err, size_t errlen)
{
    BIO *in;
    X509 *x;
    unsigned long e;
    size_t n = 0;

    ERR_clear_error();
    in = BIO_new_file(file, "r");
    ca->store = X509_STORE_new();
    ca->names = sk_X509_NAME_new(tls_name_cmp);
    if (in == NULL || ca->store == NULL || ca->names == NULL)
        goto fail;
    while ((x = PEM_read_bio_X509_AUX(in, NULL, NULL, NULL)) != NULL) {
        X509_NAME *name = X509_NAME_dup(X509_get_subject_name(x));
        bool stored = name != NULL && X509_STORE_add_cert(ca->store, x) == 1;

        X509_free(x);
        if (stored && sk_X509_NAME_find(ca->names, name) >= 0) {
            X509_NAME_free(name); /* listed once, as SSL_load_client_CA_file does */
        } else if (!stored || sk_X509_NAME_push(ca->names, name) == 0) {
            X509_NAME_free(name);
            goto fail;
        }
        n++;
    }
    /* The end of the file shows as "no start line"; anything else is a
     * broken certificate. */
    e = ERR_peek_last_error();
    if (n == 0 || (e != 0 && !(ERR_GET_LIB(e) == ERR_LIB_PEM &&
                               ERR_GET_REASON(e) == PEM_R_NO_START_LINE)))
        goto fail;
    ERR_clear_error();
    BIO_free(in);
    return 0;
fail:
    tls_reason(err, errlen, "CA file", file);
    BIO_free(in);
    tls_ca_clear(ca);
    return -1;
}

/* Client certificates are required, and must chain to ca. */
static int tls_ca_apply(SSL_CTX *ctx, const struct tls_ca *ca)
{
    STACK_OF(X509_NAME) *names = SSL_dup_CA_list(ca->names);

    if (names == NULL || X509_STORE_up_ref(ca->store) != 1) {
        sk_X509_NAME_pop_free(names, X509_NAME_free);
        return -1;
    }
    SSL_CTX_set_cert_store(ctx, ca->store); /* takes the reference */
    SSL_CTX_set_client_CA_list(ctx, names);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    return 0;
}

/* ---- contexts and generations -------------------------------------------------------- */

static SSL_CTX *tls_ctx_new(const struct ws_tls *o, const struct tls_ca *ca, const char *chain,
                            const char *key, char *err, size_t errlen)
{
    SSL_CTX *ctx;
    static const unsigned char sid[] = "libwsc";

    ERR_clear_error();
    ctx = wsc__tls_ctx_new(true);
    if (ctx == NULL) {
        tls_reason(err, errlen, "SSL_CTX_new", NULL);
        return NULL;
    }
    SSL_CTX_set_session_id_context(ctx, sid, sizeof(sid) - 1);
    if (SSL_CTX_set_min_proto_version(ctx, o->min_version) != 1) {
        tls_reason(err, errlen, "minimum version", NULL);
        goto fail;
    }
    if (o->ciphers != NULL && SSL_CTX_set_cipher_list(ctx, o->ciphers) != 1) {
        tls_reason(err, errlen, "cipher list", o->ciphers);
        goto fail;
    }
    if (o->groups != NULL && SSL_CTX_set1_groups_list(ctx, o->groups) != 1) {
        tls_reason(err, errlen, "groups", o->groups);
        goto fail;
    }
    if (SSL_CTX_use_certificate_chain_file(ctx, chain) != 1) {
        tls_reason(err, errlen, "certificate", chain);
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
        tls_reason(err, errlen, "private key", key);
        goto fail;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        tls_reason(err, errlen, "key does not match certificate", chain);
        goto fail;
    }
    if (ca->store != NULL && tls_ca_apply(ctx, ca) != 0) {
        tls_reason(err, errlen, "CA file", o->ca);
        goto fail;
    }
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

static void tls_gen_free(struct wsc__tls_gen *g)
{
    SSL_CTX_free(g->ctx);
    for (size_t i = 0; i < g->nsni; i++) {
        free(g->sni[i].name);
        SSL_CTX_free(g->sni[i].ctx);
    }
    free(g->sni);
    free(g);
}

void wsc__tls_gen_unref(struct wsc__tls_gen *g)
{
    if (g != NULL && atomic_fetch_sub(&g->refs, 1) == 1)
        tls_gen_free(g);
}

/* ---- slim: a server SSL's generation (referenced) rides in the SSL's own
 * ex_data rather than in struct ws_conn (idle memory, issue 14) ---- */
static pthread_once_t gen_index_once = PTHREAD_ONCE_INIT;
static int gen_index = -1;

static void gen_index_init(void)
{
    gen_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

struct wsc__tls_gen *wsc__tls_gen_of(SSL *ssl)
{
    pthread_once(&gen_index_once, gen_index_init);
    return gen_index >= 0 ? SSL_get_ex_data(ssl, gen_index) : NULL;
}
/* ---- end slim ---- */

/* ClientHello's server name picks the certificate. */
static int tls_on_servername(SSL *ssl, int *alert, void *arg)
{
    struct wsc__tls_gen *g = wsc__tls_gen_of(ssl);
    const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);

    (void)arg;
    if (g == NULL)
        return SSL_TLSEXT_ERR_OK;
    for (size_t i = 0; name != NULL && i < g->nsni; i++) {
        if (strcasecmp(name, g->sni[i].name) == 0) {
            if (SSL_set_SSL_CTX(ssl, g->sni[i].ctx) == NULL) {
                *alert = SSL_AD_INTERNAL_ERROR;
                return SSL_TLSEXT_ERR_ALERT_FATAL;
            }
            return SSL_TLSEXT_ERR_OK;
        }
    }
    if (g->strict) {
        *alert = SSL_AD_UNRECOGNIZED_NAME;
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    }
    return SSL_TLSEXT_ERR_OK;
}

static struct wsc__tls_gen *tls_gen_build(const struct ws_tls *o, char *err, size_t errlen)
{
    struct wsc__tls_gen *g = calloc(1, sizeof(*g));
    struct tls_ca ca = {NULL, NULL};

    if (g == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    atomic_init(&g->refs, 1);
    g->strict = o->sni_strict;
    if (o->user_ctx != NULL) {
        SSL_CTX_up_ref(o->user_ctx);
        g->ctx = o->user_ctx;
        return g;
    }
    if (o->chain == NULL) {
        snprintf(err, errlen, "no certificate (ws_tls_set_cert_file)");
        goto fail;
    }
    if (o->ca != NULL && tls_ca_load(&ca, o->ca, err, errlen) != 0)
        goto fail;
    g->ctx = tls_ctx_new(o, &ca, o->chain, o->key, err, errlen);
    if (g->ctx == NULL)
        goto fail;
    if (o->nsni > 0 || o->sni_strict)
        SSL_CTX_set_tlsext_servername_callback(g->ctx, tls_on_servername);
    if (o->nsni > 0 && (g->sni = calloc(o->nsni, sizeof(*g->sni))) == NULL) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < o->nsni; i++) {
        g->sni[i].name = strdup(o->sni[i].name);
        g->nsni++;
        if (g->sni[i].name == NULL) {
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
        g->sni[i].ctx = tls_ctx_new(o, &ca, o->sni[i].chain, o->sni[i].key, err, errlen);
        if (g->sni[i].ctx == NULL)
            goto fail;
    }
    tls_ca_clear(&ca); /* the contexts hold the store */
    return g;
fail:
    tls_ca_clear(&ca);
    tls_gen_free(g);
    return NULL;
}

/* ---- the server side --------------------------------------------------------------- */

static void tls_set_error(struct wsc__tls_server *ts, const char *reason)
{
    pthread_mutex_lock(&ts->lock);
    snprintf(ts->error, sizeof(ts->error), "%s", reason);
    pthread_mutex_unlock(&ts->lock);
}

static struct wsc__tls_server *tls_server_get(struct ws_server *srv)
{
    struct wsc__tls_server *ts = srv->tls;

    if (ts != NULL)
        return ts;
    ts = calloc(1, sizeof(*ts));
    if (ts == NULL)
        return NULL;
    pthread_mutex_init(&ts->lock, NULL);
    pthread_mutex_init(&ts->reload_lock, NULL);
    srv->tls = ts;
    return ts;
}

static void tls_listener_free(struct wsc__tls_listener *l)
{
    wsc__tls_gen_unref(l->gen);
    tls_opts_clear(&l->opts);
    free(l);
}

int ws_server_listen_tls(struct ws_server *srv, const char *addr, const struct ws_tls *tls)
{
    return ws_server_listen_tls_opts(srv, addr, tls, 0);
}

/* The flags are ws_server_listen_opts()'s; a PROXY header is read in front
 * of the handshake (proxy_protocol.c, wsc__proxy_tls_input). */
int ws_server_listen_tls_opts(struct ws_server *srv, const char *addr, const struct ws_tls *tls,
                              unsigned flags)
{
    struct wsc__tls_server *ts;
    struct wsc__tls_listener *l;
    char err[256];
    int rc;

    if (srv == NULL || addr == NULL || tls == NULL)
        return WS_EINVAL;
    ts = tls_server_get(srv);
    l = ts != NULL ? calloc(1, sizeof(*l)) : NULL;
    if (l == NULL)
        return WS_ENOMEM;
    l->ts = ts;
    if (tls_opts_copy(&l->opts, tls) != 0) {
        tls_listener_free(l);
        return WS_ENOMEM;
    }
    l->gen = tls_gen_build(&l->opts, err, sizeof(err));
    if (l->gen == NULL) {
        tls_set_error(ts, err);
        tls_listener_free(l);
        return WS_ETLS;
    }
    rc = wsc__server_listen(srv, addr, flags, l);
    if (rc < 0) {
        tls_listener_free(l);
        return rc;
    }
    pthread_mutex_lock(&ts->lock);
    l->next = ts->listeners;
    ts->listeners = l;
    pthread_mutex_unlock(&ts->lock);
    return rc;
}

int ws_server_reload_tls(struct ws_server *srv)
{
    struct wsc__tls_server *ts;
    struct wsc__tls_listener *first, *l;
    struct wsc__tls_gen **fresh;
    size_t n = 0, i;
    char err[256];
    int rc = 0;

    if (srv == NULL)
        return WS_EINVAL;
    ts = srv->tls; /* set before the first TLS listener, by the loop thread */
    if (ts == NULL)
        return 0;
    pthread_mutex_lock(&ts->reload_lock);
    /* Listeners are only ever added at the head and freed with the server:
     * the first n from this snapshot stay put while the files are read. */
    pthread_mutex_lock(&ts->lock);
    first = ts->listeners;
    for (l = first; l != NULL; l = l->next)
        n++;
    pthread_mutex_unlock(&ts->lock);
    fresh = calloc(n + 1, sizeof(*fresh));
    if (fresh == NULL) {
        pthread_mutex_unlock(&ts->reload_lock);
        return WS_ENOMEM;
    }
    /* Built outside the lock: handshakes go on meanwhile. */
    for (i = 0, l = first; i < n; i++, l = l->next) {
        fresh[i] = tls_gen_build(&l->opts, err, sizeof(err));
        if (fresh[i] == NULL) {
            tls_set_error(ts, err);
            rc = WS_ETLS;
            break;
        }
    }
    if (rc == 0) {
        pthread_mutex_lock(&ts->lock);
        for (i = 0, l = first; i < n; i++, l = l->next) {
            struct wsc__tls_gen *old = l->gen;
            l->gen = fresh[i];
            fresh[i] = old; /* released below, outside the lock */
        }
        ts->error[0] = '\0';
        pthread_mutex_unlock(&ts->lock);
    }
    for (i = 0; i < n; i++)
        wsc__tls_gen_unref(fresh[i]);
    free(fresh);
    pthread_mutex_unlock(&ts->reload_lock);
    return rc;
}

int ws_server_tls_error(struct ws_server *srv, char *buf, size_t len)
{
    struct wsc__tls_server *ts;
    int n;

    if (srv == NULL || buf == NULL || len == 0)
        return WS_EINVAL;
    ts = srv->tls;
    if (ts == NULL) {
        buf[0] = '\0';
        return 0;
    }
    pthread_mutex_lock(&ts->lock);
    n = snprintf(buf, len, "%s", ts->error);
    pthread_mutex_unlock(&ts->lock);
    return n < (int)len ? n : (int)len - 1;
}

int wsc__tls_server_attach(struct ws_conn *c, struct wsc__tls_listener *l)
{
    struct wsc__tls_gen *g;
    SSL *ssl;

    pthread_mutex_lock(&l->ts->lock);
    g = l->gen;
    atomic_fetch_add(&g->refs, 1);
    pthread_mutex_unlock(&l->ts->lock);
    ssl = SSL_new(g->ctx);
    pthread_once(&gen_index_once, gen_index_init);
    if (ssl == NULL || SSL_set_fd(ssl, c->fd) != 1 || gen_index < 0 ||
        SSL_set_ex_data(ssl, gen_index, g) != 1) {
        SSL_free(ssl);
        wsc__tls_gen_unref(g);
        ERR_clear_error();
        return WS_ENOMEM;
    }
    wsc__tls_adopt(c, ssl, true); /* the SSL holds the reference to g */
    return 0;
}

void wsc__tls_server_free(struct wsc__tls_server *ts)
{
    struct wsc__tls_listener *l, *next;

    if (ts == NULL)
        return;
    for (l = ts->listeners; l != NULL; l = next) {
        next = l->next;
        tls_listener_free(l);
    }
    pthread_mutex_destroy(&ts->lock);
    pthread_mutex_destroy(&ts->reload_lock);
    free(ts);
}
