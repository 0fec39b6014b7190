/*
 * wsc-test-client - a configurable libwsc client for the client tests
 * (tests/client). It connects to one URL with ws_client_*, and prints every
 * event as one line on stdout (line buffered):
 *
 *   CONNECT rc=<rc>                  ws_client_connect's result
 *   OPEN <remote> proto=<subprotocol>
 *   DATA text <len> <first 40 bytes, control characters as '.'>
 *   DATA binary <len> <sha1 hex of the payload>
 *   PING <len>                       (already answered by the library)
 *   PONG <len> <payload, control characters as '.'>
 *   CLOSE code=<c> cause=<cause> remote=<0|1> reason=<r>
 *   RECONNECT attempt=<n> delay=<ms> error=<code>
 *   GIVEUP error=<code> <ws_strerror text>
 *   ERROR <call> rc=<rc>             (an API call failed)
 *   SENDERS DONE                     (--send-threads: every sender finished)
 *   PUSH DONE sent=<n> echoed=<n> bad=<n> eagain=<n>   (--push: all echoed)
 *   PUSH BAD seq=<n>                 (--push: an echo out of order or changed)
 *   PUSH STATE sent=.. echoed=.. ... (--push: counts at close)
 *
 * After ws_client_run returns: threads are joined, the client freed, exit 0.
 * Bad options: exit 2. SIGTERM/SIGINT stop the client gracefully while
 * ws_client_run runs (and are ignored before and after it). See --help.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "wsc.h"

#define MAX_SENDS 64
#define MAX_HEADERS 64

struct sender {
    pthread_t thread;
    unsigned index;
    struct ws_conn *conn;
    int started;
};

struct app {
    struct ws_client *cl;

    const char *sends[MAX_SENDS];
    unsigned nsends;
    long long binary_size;     /* -1: none */
    int close_code;            /* 0: do not close */
    const char *close_reason;
    unsigned expect;
    unsigned received;         /* data messages on this connection */
    const char *ping;

    unsigned send_threads, send_count;
    struct sender *senders;
    int senders_launched;
    atomic_uint senders_left;

    /* --push N:SIZE (issue 10's deadlock): N binary messages, honouring
     * WS_EAGAIN (wait for drain), each echo checked in order. */
    unsigned push_count, push_sent, push_echoed, push_bad, push_eagain;
    size_t push_size;
    unsigned char *push_buf;
    int push_blocked;

    int stop_after_open;
    pthread_t stopper;
    int stopper_started;
    int opened_once;
};

static struct app app = { .binary_size = -1 };

/* cause as text; a cause added later prints as its number. */
static const char *cause_name(enum ws_close_cause cause, char *buf, size_t buflen)
{
    switch ((int)cause) {
    case WS_CAUSE_CLEAN: return "clean";
    case WS_CAUSE_TIMEOUT: return "timeout";
    case WS_CAUSE_PROTOCOL: return "protocol";
    case WS_CAUSE_DISCONNECT: return "disconnect";
    case WS_CAUSE_ERROR: return "error";
    case WS_CAUSE_SHUTDOWN: return "shutdown";
    default:
        snprintf(buf, buflen, "%d", (int)cause);
        return buf;
    }
}

/* Printable copy of at most max bytes: control characters become '.'. */
static void printable(char *out, const void *data, size_t len, size_t max)
{
    const unsigned char *p = data;
    size_t n = len < max ? len : max;

    for (size_t i = 0; i < n; i++)
        out[i] = (p[i] < 0x20 || p[i] == 0x7f) ? '.' : (char)p[i];
    out[n] = '\0';
}

/* ---- threads -------------------------------------------------------------- */

static void *sender_main(void *arg)
{
    struct sender *s = arg;
    char msg[64];

    for (unsigned seq = 0; seq < app.send_count; seq++) {
        int n = snprintf(msg, sizeof(msg), "t%u:%u", s->index, seq);
        int rc = ws_conn_send(s->conn, WS_OP_TEXT, msg, (size_t)n);
        if (rc != 0)
            printf("ERROR ws_conn_send t%u:%u rc=%d\n", s->index, seq, rc);
    }
    ws_conn_unref(s->conn); /* taken by the loop thread before we started */
    if (atomic_fetch_sub(&app.senders_left, 1) == 1)
        printf("SENDERS DONE\n");
    return NULL;
}

static void launch_senders(struct ws_conn *conn)
{
    app.senders = calloc(app.send_threads, sizeof(*app.senders));
    if (app.senders == NULL) {
        printf("ERROR calloc rc=%d\n", WS_ENOMEM);
        return;
    }
    app.senders_launched = 1;
    atomic_store(&app.senders_left, app.send_threads);
    for (unsigned t = 0; t < app.send_threads; t++) {
        int rc;
        app.senders[t].index = t;
        app.senders[t].conn = conn;
        ws_conn_ref(conn);
        rc = pthread_create(&app.senders[t].thread, NULL, sender_main, &app.senders[t]);
        if (rc != 0) {
            fprintf(stderr, "wsc-test-client: pthread_create: %s\n", strerror(rc));
            exit(1);
        }
        app.senders[t].started = 1;
    }
}

static void *stopper_main(void *arg)
{
    int rc = ws_client_stop(arg);
    if (rc != 0)
        printf("ERROR ws_client_stop rc=%d\n", rc);
    return NULL;
}

static void join_threads(void)
{
    if (app.senders != NULL) {
        for (unsigned t = 0; t < app.send_threads; t++)
            if (app.senders[t].started)
                pthread_join(app.senders[t].thread, NULL);
        free(app.senders);
        app.senders = NULL;
    }
    if (app.stopper_started)
        pthread_join(app.stopper, NULL);
    app.stopper_started = 0;
}

/* ---- --push: many big messages, with backpressure honoured ----------------- */

/* Message seq: 4 bytes of seq, then bytes that depend on seq and offset. */
static void push_fill(unsigned char *buf, size_t len, unsigned seq)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = (unsigned char)(seq * 7u + i);
    if (len >= 4)
        memcpy(buf, &seq, 4);
}

/* Send until done or WS_EAGAIN; the drain callback calls again. */
static void push_more(struct ws_conn *conn)
{
    app.push_blocked = 0;
    while (app.push_sent < app.push_count) {
        int rc;
        push_fill(app.push_buf, app.push_size, app.push_sent);
        rc = ws_conn_send(conn, WS_OP_BINARY, app.push_buf, app.push_size);
        if (rc == WS_EAGAIN) {
            app.push_blocked = 1;
            app.push_eagain++;
            return;
        }
        if (rc != 0) {
            printf("ERROR ws_conn_send push %u rc=%d\n", app.push_sent, rc);
            return;
        }
        app.push_sent++;
    }
}

static void push_echo(struct ws_conn *conn, enum ws_opcode op, const void *data, size_t len)
{
    const unsigned char *p = data;
    int ok = op == WS_OP_BINARY && len == app.push_size;

    for (size_t i = 4; ok && i < len; i++)
        ok = p[i] == (unsigned char)(app.push_echoed * 7u + i);
    if (ok && len >= 4) {
        unsigned seq;
        memcpy(&seq, p, 4);
        ok = seq == app.push_echoed;
    }
    if (!ok && app.push_bad++ < 5)
        printf("PUSH BAD seq=%u\n", app.push_echoed);
    if (++app.push_echoed == app.push_count) {
        printf("PUSH DONE sent=%u echoed=%u bad=%u eagain=%u\n", app.push_sent,
               app.push_echoed, app.push_bad, app.push_eagain);
        ws_conn_close(conn, 1000, "pushed");
    }
}

static void on_drain(struct ws_conn *conn, void *arg)
{
    (void)arg;
    if (app.push_blocked)
        push_more(conn);
}

/* ---- callbacks ------------------------------------------------------------ */

static void maybe_close(struct ws_conn *conn)
{
    int rc;

    if (app.close_code == 0 || app.received != app.expect)
        return;
    rc = ws_conn_close(conn, app.close_code, app.close_reason);
    if (rc != 0)
        printf("ERROR ws_conn_close rc=%d\n", rc);
}

static void on_open(struct ws_conn *conn, void *arg)
{
    int rc;

    (void)arg;
    printf("OPEN %s proto=%s\n", ws_conn_remote_addr(conn), ws_conn_subprotocol(conn));
    app.received = 0;
    for (unsigned i = 0; i < app.nsends; i++) {
        rc = ws_conn_send(conn, WS_OP_TEXT, app.sends[i], strlen(app.sends[i]));
        if (rc != 0)
            printf("ERROR ws_conn_send rc=%d\n", rc);
    }
    if (app.binary_size >= 0) {
        size_t n = (size_t)app.binary_size;
        unsigned char *buf = malloc(n > 0 ? n : 1);
        if (buf == NULL) {
            printf("ERROR malloc rc=%d\n", WS_ENOMEM);
        } else {
            for (size_t i = 0; i < n; i++)
                buf[i] = (unsigned char)(i % 251);
            rc = ws_conn_send(conn, WS_OP_BINARY, buf, n);
            if (rc != 0)
                printf("ERROR ws_conn_send rc=%d\n", rc);
            free(buf);
        }
    }
    if (app.ping != NULL) {
        rc = ws_conn_ping(conn, app.ping, strlen(app.ping));
        if (rc != 0)
            printf("ERROR ws_conn_ping rc=%d\n", rc);
    }
    if (!app.opened_once) {
        app.opened_once = 1;
        if (app.send_threads > 0 && app.send_count > 0)
            launch_senders(conn);
        if (app.stop_after_open) {
            rc = pthread_create(&app.stopper, NULL, stopper_main, app.cl);
            if (rc != 0) {
                fprintf(stderr, "wsc-test-client: pthread_create: %s\n", strerror(rc));
                exit(1);
            }
            app.stopper_started = 1;
        }
    }
    if (app.push_count > 0 && app.push_sent == 0)
        push_more(conn);
    maybe_close(conn); /* --expect 0 */
}

static void on_data(struct ws_conn *conn, enum ws_opcode op, const void *data,
                    size_t len, void *arg)
{
    (void)arg;
    if (app.push_count > 0) {
        push_echo(conn, op, data, len);
        return;
    }
    if (op == WS_OP_TEXT) {
        char head[41];
        printable(head, data, len, 40);
        printf("DATA text %zu %s\n", len, head);
    } else {
        static const unsigned char empty[1];
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned mdlen = 0;
        char hex[2 * EVP_MAX_MD_SIZE + 1];
        if (EVP_Digest(len > 0 ? data : empty, len, md, &mdlen, EVP_sha1(), NULL) != 1)
            mdlen = 0;
        for (unsigned i = 0; i < mdlen; i++)
            snprintf(hex + 2 * i, 3, "%02x", md[i]);
        hex[2 * mdlen] = '\0';
        printf("DATA binary %zu %s\n", len, hex);
    }
    app.received++;
    maybe_close(conn);
}

static void on_ping(struct ws_conn *conn, const void *data, size_t len, void *arg)
{
    (void)conn;
    (void)data;
    (void)arg;
    printf("PING %zu\n", len);
}

static void on_pong(struct ws_conn *conn, const void *data, size_t len, void *arg)
{
    char text[126];

    (void)conn;
    (void)arg;
    printable(text, data, len, 125);
    printf("PONG %zu %s\n", len, text);
}

static void on_close(struct ws_conn *conn, const struct ws_close_info *info, void *arg)
{
    char num[16];

    (void)conn;
    (void)arg;
    printf("CLOSE code=%d cause=%s remote=%d reason=%.*s\n", info->code,
           cause_name(info->cause, num, sizeof(num)), info->remote, (int)info->reason_len,
           info->reason != NULL ? info->reason : "");
    if (app.push_count > 0)
        printf("PUSH STATE sent=%u echoed=%u bad=%u eagain=%u blocked=%d\n", app.push_sent,
               app.push_echoed, app.push_bad, app.push_eagain, app.push_blocked);
}

static void on_reconnect(struct ws_client *cl, unsigned attempt, unsigned delay_ms,
                         int error, void *arg)
{
    (void)cl;
    (void)arg;
    printf("RECONNECT attempt=%u delay=%u error=%d\n", attempt, delay_ms, error);
}

static void on_give_up(struct ws_client *cl, int error, void *arg)
{
    (void)arg;
    printf("GIVEUP error=%d %s\n", error, ws_strerror(error));
    if (error == WS_ETLS)
        printf("TLSERR %s\n", ws_client_tls_verify_error(cl));
}

/* ---- command line --------------------------------------------------------- */

static void usage(FILE *f)
{
    fputs("usage: wsc-test-client URL [options]\n"
          "  --send TEXT              send a text message after open (repeatable)\n"
          "  --send-binary-size N     then one binary message of N bytes (byte i = i % 251)\n"
          "  --ping PAYLOAD           then a ping\n"
          "  --expect N               data messages to wait for before --close (default 0)\n"
          "  --close CODE[:REASON]    ws_conn_close once --expect messages arrived\n"
          "  --subprotocols LIST      ws_client_set_subprotocols\n"
          "  --header NAME:VALUE      ws_client_add_header (repeatable)\n"
          "  --no-deflate             ws_config_set_deflate(cfg, 0)\n"
          "  --deflate-context-takeover  ws_config_set_deflate_no_context_takeover(cfg, 0)\n"
          "  --reconnect MIN:MAX:ATTEMPTS  ws_client_set_reconnect\n"
          "  --connect-timeout MS     ws_config_set_connect_timeout\n"
          "  --handshake-timeout MS   ws_config_set_handshake_timeout\n"
          "  --ping-interval MS       ws_config_set_ping_interval\n"
          "  --pong-timeout MS        ws_config_set_pong_timeout\n"
          "  --close-timeout MS       ws_config_set_close_timeout\n"
          "  --max-message N          ws_config_set_max_message_size\n"
          "  --send-threads T --send-count M\n"
          "                           after the first open, T threads each send M\n"
          "                           messages \"t<thread>:<seq>\" with ws_conn_send\n"
          "  --stop-after-open        ws_client_stop from another thread after open\n"
          "  --max-buffered N         ws_config_set_max_buffered\n"
          "  --push N:SIZE            send N binary messages of SIZE bytes, waiting for\n"
          "                           drain on WS_EAGAIN; check the echoes; close 1000\n"
          "  --tls-ca FILE            wss: trust this CA instead of the system's\n"
          "  --tls-cert CERT:KEY      wss: client certificate and key\n"
          "  --tls-insecure           wss: no verification at all (tests only)\n"
          "  (a WS_ETLS give-up also prints TLSERR <reason>)\n",
          f);
}

static unsigned long long parse_number(const char *opt, const char *s, unsigned long long max)
{
    char *end;
    unsigned long long v;

    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || s[0] == '-' || s[0] == '+' ||
        s[0] == ' ' || v > max) {
        fprintf(stderr, "wsc-test-client: bad value for --%s: %s\n", opt, s);
        exit(2);
    }
    return v;
}

static void check_set(const char *opt, int rc)
{
    if (rc != 0) {
        fprintf(stderr, "wsc-test-client: --%s: %s\n", opt, ws_strerror(rc));
        exit(2);
    }
}

/* "A:B:C" into three numbers. */
static void parse_reconnect(const char *s, unsigned out[3])
{
    char buf[32];
    const char *p = s;

    for (int i = 0; i < 3; i++) {
        size_t n = strcspn(p, ":");
        if (n == 0 || n >= sizeof(buf) || (i < 2 ? p[n] != ':' : p[n] != '\0')) {
            fprintf(stderr, "wsc-test-client: --reconnect wants MIN:MAX:ATTEMPTS: %s\n", s);
            exit(2);
        }
        memcpy(buf, p, n);
        buf[n] = '\0';
        out[i] = (unsigned)parse_number("reconnect", buf, UINT_MAX);
        p += n + 1;
    }
}

enum {
    OPT_SEND = 256, OPT_SEND_BINARY_SIZE, OPT_CLOSE, OPT_EXPECT, OPT_PING,
    OPT_SUBPROTOCOLS, OPT_HEADER, OPT_NO_DEFLATE, OPT_DEFLATE_TAKEOVER, OPT_RECONNECT,
    OPT_CONNECT_TIMEOUT, OPT_HANDSHAKE_TIMEOUT, OPT_PING_INTERVAL, OPT_PONG_TIMEOUT,
    OPT_CLOSE_TIMEOUT, OPT_MAX_MESSAGE, OPT_SEND_THREADS, OPT_SEND_COUNT,
    OPT_STOP_AFTER_OPEN, OPT_HELP, OPT_MAX_BUFFERED, OPT_PUSH, OPT_TLS_CA, OPT_TLS_CERT,
    OPT_TLS_INSECURE
};

int main(int argc, char **argv)
{
    static const struct option options[] = {
        { "send", required_argument, NULL, OPT_SEND },
        { "send-binary-size", required_argument, NULL, OPT_SEND_BINARY_SIZE },
        { "close", required_argument, NULL, OPT_CLOSE },
        { "expect", required_argument, NULL, OPT_EXPECT },
        { "ping", required_argument, NULL, OPT_PING },
        { "subprotocols", required_argument, NULL, OPT_SUBPROTOCOLS },
        { "header", required_argument, NULL, OPT_HEADER },
        { "no-deflate", no_argument, NULL, OPT_NO_DEFLATE },
        { "deflate-context-takeover", no_argument, NULL, OPT_DEFLATE_TAKEOVER },
        { "reconnect", required_argument, NULL, OPT_RECONNECT },
        { "connect-timeout", required_argument, NULL, OPT_CONNECT_TIMEOUT },
        { "handshake-timeout", required_argument, NULL, OPT_HANDSHAKE_TIMEOUT },
        { "ping-interval", required_argument, NULL, OPT_PING_INTERVAL },
        { "pong-timeout", required_argument, NULL, OPT_PONG_TIMEOUT },
        { "close-timeout", required_argument, NULL, OPT_CLOSE_TIMEOUT },
        { "max-message", required_argument, NULL, OPT_MAX_MESSAGE },
        { "send-threads", required_argument, NULL, OPT_SEND_THREADS },
        { "send-count", required_argument, NULL, OPT_SEND_COUNT },
        { "stop-after-open", no_argument, NULL, OPT_STOP_AFTER_OPEN },
        { "help", no_argument, NULL, OPT_HELP },
        { "max-buffered", required_argument, NULL, OPT_MAX_BUFFERED },
        { "push", required_argument, NULL, OPT_PUSH },
        { "tls-ca", required_argument, NULL, OPT_TLS_CA },
        { "tls-cert", required_argument, NULL, OPT_TLS_CERT },
        { "tls-insecure", no_argument, NULL, OPT_TLS_INSECURE },
        { NULL, 0, NULL, 0 }
    };
    const char *headers[MAX_HEADERS];
    unsigned nheaders = 0;
    const char *subprotocols = NULL;
    unsigned reconnect[3] = { 0, 0, 0 };
    int have_reconnect = 0;
    const char *url, *tls_ca = NULL, *tls_cert = NULL;
    int tls_insecure = 0;
    struct ws_config *cfg;
    struct ws_client *cl;
    int opt, rc;

    setvbuf(stdout, NULL, _IOLBF, 0);

    cfg = ws_config_new();
    if (cfg == NULL) {
        fprintf(stderr, "wsc-test-client: out of memory\n");
        return 1;
    }
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (opt) {
        case OPT_SEND:
            if (app.nsends == MAX_SENDS) {
                fprintf(stderr, "wsc-test-client: too many --send\n");
                exit(2);
            }
            app.sends[app.nsends++] = optarg;
            break;
        case OPT_SEND_BINARY_SIZE:
            app.binary_size = (long long)parse_number("send-binary-size", optarg, 1u << 30);
            break;
        case OPT_CLOSE: {
            char *end;
            long code;
            errno = 0;
            code = strtol(optarg, &end, 10);
            if (errno != 0 || end == optarg || (*end != '\0' && *end != ':') ||
                code < 1 || code > 65535) {
                fprintf(stderr, "wsc-test-client: bad value for --close: %s\n", optarg);
                exit(2);
            }
            app.close_code = (int)code;
            app.close_reason = *end == ':' ? end + 1 : NULL;
            break;
        }
        case OPT_EXPECT:
            app.expect = (unsigned)parse_number("expect", optarg, UINT_MAX);
            break;
        case OPT_PING:
            app.ping = optarg;
            break;
        case OPT_SUBPROTOCOLS:
            subprotocols = optarg;
            break;
        case OPT_HEADER:
            if (nheaders == MAX_HEADERS || strchr(optarg, ':') == NULL) {
                fprintf(stderr, "wsc-test-client: bad --header: %s\n", optarg);
                exit(2);
            }
            headers[nheaders++] = optarg;
            break;
        case OPT_NO_DEFLATE:
            check_set("no-deflate", ws_config_set_deflate(cfg, 0));
            break;
        case OPT_DEFLATE_TAKEOVER:
            check_set("deflate-context-takeover",
                      ws_config_set_deflate_no_context_takeover(cfg, 0));
            break;
        case OPT_RECONNECT:
            parse_reconnect(optarg, reconnect);
            have_reconnect = 1;
            break;
        case OPT_CONNECT_TIMEOUT:
            check_set("connect-timeout", ws_config_set_connect_timeout(
                          cfg, (unsigned)parse_number("connect-timeout", optarg, UINT_MAX)));
            break;
        case OPT_HANDSHAKE_TIMEOUT:
            check_set("handshake-timeout", ws_config_set_handshake_timeout(
                          cfg, (unsigned)parse_number("handshake-timeout", optarg, UINT_MAX)));
            break;
        case OPT_PING_INTERVAL:
            check_set("ping-interval", ws_config_set_ping_interval(
                          cfg, (unsigned)parse_number("ping-interval", optarg, UINT_MAX)));
            break;
        case OPT_PONG_TIMEOUT:
            check_set("pong-timeout", ws_config_set_pong_timeout(
                          cfg, (unsigned)parse_number("pong-timeout", optarg, UINT_MAX)));
            break;
        case OPT_CLOSE_TIMEOUT:
            check_set("close-timeout", ws_config_set_close_timeout(
                          cfg, (unsigned)parse_number("close-timeout", optarg, UINT_MAX)));
            break;
        case OPT_MAX_MESSAGE:
            check_set("max-message", ws_config_set_max_message_size(
                          cfg, (size_t)parse_number("max-message", optarg, SIZE_MAX)));
            break;
        case OPT_SEND_THREADS:
            app.send_threads = (unsigned)parse_number("send-threads", optarg, 256);
            break;
        case OPT_SEND_COUNT:
            app.send_count = (unsigned)parse_number("send-count", optarg, UINT_MAX);
            break;
        case OPT_STOP_AFTER_OPEN:
            app.stop_after_open = 1;
            break;
        case OPT_MAX_BUFFERED:
            check_set("max-buffered", ws_config_set_max_buffered(
                          cfg, (size_t)parse_number("max-buffered", optarg, SIZE_MAX)));
            break;
        case OPT_PUSH: {
            char count[32];
            size_t n = strcspn(optarg, ":");
            if (n == 0 || n >= sizeof(count) || optarg[n] != ':') {
                fprintf(stderr, "wsc-test-client: --push wants N:SIZE: %s\n", optarg);
                exit(2);
            }
            memcpy(count, optarg, n);
            count[n] = '\0';
            app.push_count = (unsigned)parse_number("push", count, UINT_MAX);
            app.push_size = (size_t)parse_number("push", optarg + n + 1, 1u << 26);
            app.push_buf = malloc(app.push_size > 0 ? app.push_size : 1);
            if (app.push_buf == NULL)
                exit(1);
            break;
        }
        case OPT_TLS_CA:
            tls_ca = optarg;
            break;
        case OPT_TLS_CERT: /* CERT:KEY */
            tls_cert = optarg;
            break;
        case OPT_TLS_INSECURE:
            tls_insecure = 1;
            break;
        case OPT_HELP:
            usage(stdout);
            ws_config_free(cfg);
            return 0;
        default:
            usage(stderr);
            ws_config_free(cfg);
            return 2;
        }
    }
    if (optind + 1 != argc) {
        usage(stderr);
        ws_config_free(cfg);
        return 2;
    }
    url = argv[optind];

    cl = ws_client_new(cfg);
    ws_config_free(cfg);
    if (cl == NULL) {
        fprintf(stderr, "wsc-test-client: ws_client_new failed\n");
        return 1;
    }
    app.cl = cl;
    for (unsigned i = 0; i < nheaders; i++) {
        char name[256];
        const char *colon = strchr(headers[i], ':');
        size_t n = (size_t)(colon - headers[i]);
        if (n >= sizeof(name)) {
            fprintf(stderr, "wsc-test-client: header name too long\n");
            ws_client_free(cl);
            return 2;
        }
        memcpy(name, headers[i], n);
        name[n] = '\0';
        rc = ws_client_add_header(cl, name, colon + 1);
        if (rc != 0) {
            fprintf(stderr, "wsc-test-client: --header %s: %s\n", headers[i], ws_strerror(rc));
            ws_client_free(cl);
            return 2;
        }
    }
    if (subprotocols != NULL) {
        rc = ws_client_set_subprotocols(cl, subprotocols);
        if (rc != 0) {
            fprintf(stderr, "wsc-test-client: --subprotocols: %s\n", ws_strerror(rc));
            ws_client_free(cl);
            return 2;
        }
    }
    if (have_reconnect) {
        rc = ws_client_set_reconnect(cl, reconnect[0], reconnect[1], reconnect[2]);
        if (rc != 0) {
            fprintf(stderr, "wsc-test-client: --reconnect: %s\n", ws_strerror(rc));
            ws_client_free(cl);
            return 2;
        }
    }
    /* ---- TLS ---- */
    if (tls_ca != NULL && ws_client_set_tls_ca_file(cl, tls_ca) != 0)
        printf("ERROR ws_client_set_tls_ca_file\n");
    if (tls_cert != NULL) {
        char cert[1024];
        const char *colon = strchr(tls_cert, ':');
        if (colon == NULL || (size_t)(colon - tls_cert) >= sizeof(cert)) {
            fprintf(stderr, "wsc-test-client: --tls-cert CERT:KEY\n");
            ws_client_free(cl);
            return 2;
        }
        snprintf(cert, sizeof(cert), "%.*s", (int)(colon - tls_cert), tls_cert);
        if (ws_client_set_tls_cert_file(cl, cert, colon + 1) != 0)
            printf("ERROR ws_client_set_tls_cert_file\n");
    }
    if (tls_insecure)
        ws_client_set_tls_insecure_skip_verify(cl, 1);
    /* ---- end TLS ---- */
    ws_client_handle_open(cl, on_open, NULL);
    ws_client_handle_data(cl, on_data, NULL);
    ws_client_handle_ping(cl, on_ping, NULL);
    ws_client_handle_pong(cl, on_pong, NULL);
    ws_client_handle_close(cl, on_close, NULL);
    ws_client_handle_drain(cl, on_drain, NULL);
    ws_client_handle_reconnect(cl, on_reconnect, NULL);
    ws_client_handle_give_up(cl, on_give_up, NULL);

    /* ws_client_run turns SIGTERM/SIGINT into a graceful stop while it
     * runs; before and after (exiting anyway) they must not kill us half
     * way. libevent restores this disposition when the run ends. */
    signal(SIGTERM, SIG_IGN);
    signal(SIGINT, SIG_IGN);

    rc = ws_client_connect(cl, url);
    printf("CONNECT rc=%d\n", rc);

    rc = ws_client_run(cl);
    if (rc != 0)
        printf("ERROR ws_client_run rc=%d\n", rc);
    /* Senders hold references; they finish before the client goes away. */
    join_threads();
    ws_client_free(cl);
    free(app.push_buf);
    fflush(stdout);
    return 0;
}
