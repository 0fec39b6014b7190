/*
 * wsc-test-server - a configurable libwsc server for the integration tests
 * (tests/integration). Every event is printed as one line on stdout (line
 * buffered), so the tests can wait for and assert on them:
 *
 *   LISTENING <port>
 *   OPEN <id> <remote>
 *   PING <id> <len>
 *   PONG <id> <len> <hex payload>
 *   CLOSE <id> code=<code> cause=<cause> remote=<0|1> reason=<reason>
 *   CMD ping <id> rc=<rc>          (--ping-on-message: ws_conn_ping's result)
 *   CMD close <id> rc=<rc>         (--close-on-message: ws_conn_close's result)
 *   SEND ERROR <code>              (ws_conn_send returned non-zero)
 *   SENDERS DONE                   (--send-threads: every sender finished)
 *   CMD bcast rc=<rc>              (--broadcast-on-message: ws_server_broadcast's result)
 *   CMD sub|unsub|pub rc=<rc>      (text "sub:<t>", "unsub:<t>", "pub:<t>:<payload>")
 *   EAGAIN <id> buffered=<n>       (flood: the first WS_EAGAIN after each drain)
 *   DRAIN <id> buffered=<n>        (drain callback)
 *   FLOOD <id> sent=<n>            (flood: total sent, when the connection closes)
 *   STOPPED                        (ws_server_run returned; about to exit)
 *   REDIS UP|DOWN                  (--redis: the bridge's state callback)
 * With --redis, "rsub:<t>", "rpub:<t>:<payload>" and "rstats" are answered
 * to the sender with "RSUB rc=<rc>", "RPUB rc=<rc>" and "RSTATS k=v ...".
 *
 * Default behaviour: echo every message with its opcode. See --help.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wsc.h"

struct sender {
    pthread_t thread;
    unsigned index;
    int started;
};

struct app {
    struct ws_server *srv;
    int close_on_message;
    int ping_on_message;
    int broadcast_on_message;
    struct flood *floods;     /* "flood:<size>" connections */
    int send_broadcast;       /* senders use ws_server_broadcast */
    const char *send_topic;   /* senders publish here; connections subscribe */
    unsigned threads;         /* --threads: print which loop runs callbacks */
    const char *redis;        /* --redis HOST:PORT */

    /* --send-threads mode */
    unsigned send_threads;
    unsigned send_conns;
    unsigned send_count;
    struct ws_conn **conns;   /* the first send_conns connections, ref'd */
    unsigned nconns;          /* loop thread only */
    struct sender *senders;
    atomic_uint senders_left;
    int senders_launched;
};

/* A connection the server sends numbered binary messages to as fast as
 * backpressure allows (text "flood:<size>"). */
struct flood {
    struct flood *next;
    struct ws_conn *conn;
    size_t size;
    uint64_t sent;
    int blocked;              /* got WS_EAGAIN, waiting for drain */
};

static struct app app;
/* With --threads, open callbacks run on several loops at once. */
static pthread_mutex_t app_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *cause_name(enum ws_close_cause cause)
{
    switch (cause) {
    case WS_CAUSE_CLEAN: return "clean";
    case WS_CAUSE_TIMEOUT: return "timeout";
    case WS_CAUSE_PROTOCOL: return "protocol";
    case WS_CAUSE_DISCONNECT: return "disconnect";
    case WS_CAUSE_ERROR: return "error";
    case WS_CAUSE_SHUTDOWN: return "shutdown";
    case WS_CAUSE_SLOW: return "slow";
    }
    return "unknown";
}

/* ---- sender threads --------------------------------------------------- */

static void *sender_main(void *arg)
{
    struct sender *s = arg;
    char msg[64];

    /* The loop thread holds one ref per connection for every sender; this
     * thread takes its own too, to exercise ws_conn_ref from a thread. */
    for (unsigned c = 0; c < app.send_conns; c++)
        ws_conn_ref(app.conns[c]);
    for (unsigned seq = 0; seq < app.send_count; seq++) {
        int n = snprintf(msg, sizeof(msg), "t%u:%u", s->index, seq);
        if (app.send_broadcast || app.send_topic != NULL) {
            int rc = app.send_topic != NULL
                         ? ws_server_publish(app.srv, app.send_topic, WS_OP_TEXT, msg, (size_t)n)
                         : ws_server_broadcast(app.srv, WS_OP_TEXT, msg, (size_t)n);
            if (rc != 0)
                printf("SEND ERROR %d\n", rc);
            continue;
        }
        for (unsigned c = 0; c < app.send_conns; c++) {
            int rc = ws_conn_send(app.conns[c], WS_OP_TEXT, msg, (size_t)n);
            if (rc != 0)
                printf("SEND ERROR %d\n", rc);
        }
    }
    for (unsigned c = 0; c < app.send_conns; c++) {
        ws_conn_unref(app.conns[c]);
        ws_conn_unref(app.conns[c]); /* the ref the loop thread took for us */
    }
    if (atomic_fetch_sub(&app.senders_left, 1) == 1)
        printf("SENDERS DONE\n");
    return NULL;
}

static void launch_senders(void)
{
    app.senders_launched = 1;
    atomic_store(&app.senders_left, app.send_threads);
    for (unsigned c = 0; c < app.send_conns; c++)
        for (unsigned t = 0; t < app.send_threads; t++)
            ws_conn_ref(app.conns[c]);
    for (unsigned t = 0; t < app.send_threads; t++) {
        int rc;
        app.senders[t].index = t;
        rc = pthread_create(&app.senders[t].thread, NULL, sender_main, &app.senders[t]);
        if (rc != 0) {
            fprintf(stderr, "wsc-test-server: pthread_create: %s\n", strerror(rc));
            exit(1);
        }
        app.senders[t].started = 1;
    }
}

static void join_senders(void)
{
    if (app.senders == NULL)
        return;
    for (unsigned t = 0; t < app.send_threads; t++)
        if (app.senders[t].started)
            pthread_join(app.senders[t].thread, NULL);
}

/* ---- flood mode (backpressure) -------------------------------------------- */

static struct flood *flood_find(struct ws_conn *conn)
{
    for (struct flood *f = app.floods; f != NULL; f = f->next)
        if (f->conn == conn)
            return f;
    return NULL;
}

/* Send until the library says WS_EAGAIN; the drain callback resumes. */
static void flood_pump(struct flood *f)
{
    unsigned char *msg = calloc(1, f->size);
    int rc = 0;

    if (msg == NULL)
        return;
    for (int i = 0; i < 100000 && !f->blocked; i++) {
        for (int b = 0; b < 8; b++) /* sequence number, big-endian */
            msg[b] = (unsigned char)(f->sent >> (56 - 8 * b));
        rc = ws_conn_send(f->conn, WS_OP_BINARY, msg, f->size);
        if (rc == WS_EAGAIN) {
            f->blocked = 1;
            printf("EAGAIN %" PRIu64 " buffered=%zu\n", ws_conn_id(f->conn),
                   ws_conn_buffered_amount(f->conn));
        } else if (rc != 0) {
            break;
        } else {
            f->sent++;
        }
    }
    free(msg);
}

static void on_drain(struct ws_conn *conn, void *arg)
{
    struct flood *f = flood_find(conn);

    (void)arg;
    printf("DRAIN %" PRIu64 " buffered=%zu\n", ws_conn_id(conn), ws_conn_buffered_amount(conn));
    if (f != NULL) {
        f->blocked = 0;
        flood_pump(f);
    }
}

static void flood_start(struct ws_conn *conn, const char *size, size_t len)
{
    struct flood *f = calloc(1, sizeof(*f));
    char buf[32];

    if (f == NULL || len == 0 || len >= sizeof(buf)) {
        free(f);
        return;
    }
    memcpy(buf, size, len);
    buf[len] = '\0';
    f->conn = conn;
    f->size = (size_t)strtoul(buf, NULL, 10);
    if (f->size < 8)
        f->size = 8;
    f->next = app.floods;
    app.floods = f;
    flood_pump(f);
}

static void flood_end(struct ws_conn *conn)
{
    for (struct flood **p = &app.floods; *p != NULL; p = &(*p)->next) {
        if ((*p)->conn == conn) {
            struct flood *f = *p;
            printf("FLOOD %" PRIu64 " sent=%" PRIu64 "\n", ws_conn_id(conn), f->sent);
            *p = f->next;
            free(f);
            return;
        }
    }
}

/* ---- callbacks ---------------------------------------------------------- */

static void on_open(struct ws_conn *conn, void *arg)
{
    (void)arg;
    printf("OPEN %" PRIu64 " %s\n", ws_conn_id(conn), ws_conn_remote_addr(conn));
    if (ws_conn_is_tls(conn)) {
        char subject[512];
        int n = ws_conn_peer_subject(conn, subject, sizeof(subject));
        printf("TLS %" PRIu64 " subject=%s\n", ws_conn_id(conn), n >= 0 ? subject : "-");
    }
    if (app.threads > 1)
        printf("LOOP %" PRIu64 " %lu\n", ws_conn_id(conn), (unsigned long)pthread_self());
    if (app.send_topic != NULL && ws_conn_subscribe(conn, app.send_topic) != 0)
        printf("SUBSCRIBE ERROR\n");
    pthread_mutex_lock(&app_lock);
    if (app.send_threads > 0 && app.nconns < app.send_conns) {
        app.conns[app.nconns++] = conn;
        if (app.nconns == app.send_conns)
            launch_senders();
    }
    pthread_mutex_unlock(&app_lock);
}

/* "prefix<rest>": returns rest or NULL. */
static const char *command(const char *data, size_t len, const char *prefix, size_t *restlen)
{
    size_t plen = strlen(prefix);
    if (len < plen || memcmp(data, prefix, plen) != 0)
        return NULL;
    *restlen = len - plen;
    return data + plen;
}

static void do_close_command(struct ws_conn *conn, const char *rest, size_t restlen)
{
    char buf[256];
    char *colon, *end;
    long code;
    int rc;

    if (restlen >= sizeof(buf)) {
        printf("CMD close %" PRIu64 " rc=bad-command\n", ws_conn_id(conn));
        return;
    }
    memcpy(buf, rest, restlen);
    buf[restlen] = '\0';
    colon = strchr(buf, ':');
    if (colon != NULL)
        *colon = '\0';
    errno = 0;
    code = strtol(buf, &end, 10);
    if (errno != 0 || end == buf || *end != '\0' || code < INT_MIN || code > INT_MAX) {
        printf("CMD close %" PRIu64 " rc=bad-command\n", ws_conn_id(conn));
        return;
    }
    rc = ws_conn_close(conn, (int)code, colon != NULL ? colon + 1 : NULL);
    printf("CMD close %" PRIu64 " rc=%d\n", ws_conn_id(conn), rc);
}

/* ---- --redis: commands answered to the sender (scale-out tests) ---------- */

static void redis_reply(struct ws_conn *conn, const char *what, int rc)
{
    char buf[64];
    int n = snprintf(buf, sizeof(buf), "%s rc=%d", what, rc);
    ws_conn_send(conn, WS_OP_TEXT, buf, (size_t)n);
}

static bool redis_command(struct ws_conn *conn, const char *data, size_t len)
{
    char topic[256], buf[512];
    const char *rest, *colon;
    size_t restlen = 0;
    struct ws_redis_stats st;
    int n;

    if ((rest = command(data, len, "rsub:", &restlen)) != NULL && restlen < sizeof(topic)) {
        snprintf(topic, sizeof(topic), "%.*s", (int)restlen, rest);
        redis_reply(conn, "RSUB", ws_conn_subscribe(conn, topic));
        return true;
    }
    if ((rest = command(data, len, "rpub:", &restlen)) != NULL &&
        (colon = memchr(rest, ':', restlen)) != NULL && (size_t)(colon - rest) < sizeof(topic)) {
        snprintf(topic, sizeof(topic), "%.*s", (int)(colon - rest), rest);
        redis_reply(conn, "RPUB", ws_server_publish(app.srv, topic, WS_OP_TEXT, colon + 1,
                                                    restlen - (size_t)(colon - rest) - 1));
        return true;
    }
    if (len == 6 && memcmp(data, "rstats", 6) == 0) {
        int rc = ws_server_redis_stats(app.srv, &st);
        if (rc != 0) {
            redis_reply(conn, "RSTATS", rc);
            return true;
        }
        n = snprintf(buf, sizeof(buf),
                     "RSTATS up=%d node=%" PRIu64 " published=%" PRIu64 " publish_errors=%" PRIu64
                     " received=%" PRIu64 " own_ignored=%" PRIu64 " lost=%" PRIu64
                     " stale=%" PRIu64 " reconnects=%" PRIu64 " subscriptions=%zu",
                     st.up, st.node, st.published, st.publish_errors, st.received, st.own_ignored,
                     st.lost, st.stale, st.reconnects, st.subscriptions);
        ws_conn_send(conn, WS_OP_TEXT, buf, (size_t)n);
        return true;
    }
    return false;
}

static void on_redis_state(struct ws_server *srv, int up, void *arg)
{
    (void)srv;
    (void)arg;
    printf("REDIS %s\n", up ? "UP" : "DOWN");
}

/* ---- end --redis ------------------------------------------------------------ */

/* "sub:<t>", "unsub:<t>", "pub:<t>:<payload>"; true if it was one. */
static bool topic_command(struct ws_conn *conn, const char *data, size_t len)
{
    char topic[256];
    const char *rest, *colon;
    size_t restlen = 0;
    int rc;

    if ((rest = command(data, len, "sub:", &restlen)) != NULL && restlen < sizeof(topic)) {
        snprintf(topic, sizeof(topic), "%.*s", (int)restlen, rest);
        printf("CMD sub rc=%d\n", ws_conn_subscribe(conn, topic));
        return true;
    }
    if ((rest = command(data, len, "unsub:", &restlen)) != NULL && restlen < sizeof(topic)) {
        snprintf(topic, sizeof(topic), "%.*s", (int)restlen, rest);
        printf("CMD unsub rc=%d\n", ws_conn_unsubscribe(conn, topic));
        return true;
    }
    if ((rest = command(data, len, "pub:", &restlen)) != NULL &&
        (colon = memchr(rest, ':', restlen)) != NULL && (size_t)(colon - rest) < sizeof(topic)) {
        snprintf(topic, sizeof(topic), "%.*s", (int)(colon - rest), rest);
        rc = ws_server_publish(app.srv, topic, WS_OP_TEXT, colon + 1,
                               restlen - (size_t)(colon - rest) - 1);
        printf("CMD pub rc=%d\n", rc);
        return true;
    }
    return false;
}

static void on_data(struct ws_conn *conn, enum ws_opcode op, const void *data,
                    size_t len, void *arg)
{
    const char *rest;
    size_t restlen = 0;
    int rc;

    (void)arg;
    if (op == WS_OP_TEXT && app.close_on_message &&
        (rest = command(data, len, "close:", &restlen)) != NULL) {
        do_close_command(conn, rest, restlen);
        return;
    }
    if (op == WS_OP_TEXT && topic_command(conn, data, len))
        return;
    if (op == WS_OP_TEXT && app.redis != NULL && redis_command(conn, data, len))
        return;
    if (op == WS_OP_TEXT && (rest = command(data, len, "flood:", &restlen)) != NULL) {
        flood_start(conn, rest, restlen);
        return;
    }
    if (app.broadcast_on_message && (rest = command(data, len, "bcast:", &restlen)) != NULL) {
        rc = ws_server_broadcast(app.srv, op, rest, restlen);
        printf("CMD bcast rc=%d\n", rc);
        return;
    }
    if (op == WS_OP_TEXT && app.ping_on_message &&
        (rest = command(data, len, "ping:", &restlen)) != NULL) {
        rc = ws_conn_ping(conn, rest, restlen);
        printf("CMD ping %" PRIu64 " rc=%d\n", ws_conn_id(conn), rc);
        return;
    }
    if (app.threads > 1) /* callbacks of one connection stay on its loop */
        printf("DATALOOP %" PRIu64 " %lu\n", ws_conn_id(conn), (unsigned long)pthread_self());
    rc = ws_conn_send(conn, op, data, len);
    if (rc != 0)
        printf("SEND ERROR %d\n", rc);
}

static void on_ping(struct ws_conn *conn, const void *data, size_t len, void *arg)
{
    (void)data;
    (void)arg;
    printf("PING %" PRIu64 " %zu\n", ws_conn_id(conn), len);
}

static void on_pong(struct ws_conn *conn, const void *data, size_t len, void *arg)
{
    (void)arg;
    /* One printf call per line: the sender threads print too. */
    char hex[2 * 125 + 1];
    size_t n = len <= 125 ? len : 125;
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++)
        snprintf(hex + 2 * i, 3, "%02x", p[i]);
    hex[2 * n] = '\0';
    printf("PONG %" PRIu64 " %zu %s\n", ws_conn_id(conn), len, hex);
}

static void on_close(struct ws_conn *conn, const struct ws_close_info *info, void *arg)
{
    (void)arg;
    printf("CLOSE %" PRIu64 " code=%d cause=%s remote=%d reason=%.*s\n",
           ws_conn_id(conn), info->code, cause_name(info->cause), info->remote,
           (int)info->reason_len, info->reason != NULL ? info->reason : "");
    flood_end(conn);
}

static void on_http(const struct ws_request *req, struct ws_response *res, void *arg)
{
    const char *method = ws_request_method(req);
    const char *path = ws_request_path(req);
    int rc = 0;

    (void)arg;
    if (strcmp(method, "GET") == 0 && strcmp(path, "/hello") == 0) {
        rc = ws_response_send(res, 200, "text/plain", "hello", 5);
    } else if (strcmp(method, "GET") == 0 && strcmp(path, "/query") == 0) {
        char value[1024];
        int n = ws_request_query_param(req, "name", value, sizeof(value));
        if (n >= 0)
            rc = ws_response_send(res, 200, "text/plain", value, (size_t)n);
        else
            rc = ws_response_send(res, 400, "text/plain", ws_strerror(n),
                                  strlen(ws_strerror(n)));
    } else if (strcmp(method, "POST") == 0 && strcmp(path, "/echo") == 0) {
        size_t len = 0;
        const void *body = ws_request_body(req, &len);
        rc = ws_response_send(res, 200, "application/octet-stream", body, len);
    }
    /* Any other request: no response, the library answers 404. */
    if (rc != 0)
        printf("HTTP ERROR %d\n", rc);
}

/* ---- command line ------------------------------------------------------- */

static void usage(FILE *f)
{
    fputs("usage: wsc-test-server [options]\n"
          "  --listen ADDR            listen address (default 127.0.0.1:0)\n"
          "  --max-message N          ws_config_set_max_message_size\n"
          "  --max-head N             ws_config_set_max_head_size\n"
          "  --max-headers N          ws_config_set_max_headers\n"
          "  --handshake-timeout MS   ws_config_set_handshake_timeout\n"
          "  --ping-interval MS       ws_config_set_ping_interval\n"
          "  --pong-timeout MS        ws_config_set_pong_timeout\n"
          "  --close-timeout MS       ws_config_set_close_timeout\n"
          "  --max-connections N      ws_config_set_max_connections\n"
          "  --http                   serve GET /hello, GET /query?name=, POST /echo\n"
          "  --send-threads T --send-conns C --send-count M\n"
          "                           once C connections are open, T threads each\n"
          "                           send M messages \"t<thread>:<seq>\" to all C\n"
          "  --close-on-message       text \"close:<code>:<reason>\" -> ws_conn_close\n"
          "  --ping-on-message        text \"ping:<payload>\" -> ws_conn_ping\n"
          "  --broadcast-on-message   \"bcast:<payload>\" -> ws_server_broadcast (same opcode)\n"
          "  --send-broadcast         senders call ws_server_broadcast once per message\n"
          "  --no-deflate             ws_config_set_deflate(cfg, 0)\n"
          "  --deflate-context-takeover  ws_config_set_deflate_no_context_takeover(cfg, 0)\n"
          "  --deflate-threshold N    ws_config_set_deflate_threshold\n"
          "  --max-buffered N         ws_config_set_max_buffered\n"
          "  --close-slow             ws_config_set_close_slow_consumers(cfg, 1)\n"
          "  --max-body N             ws_config_set_max_body_size\n"
          "  --max-pending N          ws_config_set_max_pending\n"
          "  --keepalive-timeout MS   ws_config_set_keepalive_timeout\n"
          "  --max-buffered-total N   ws_config_set_max_buffered_total\n"
          "  --redis HOST:PORT        ws_server_redis_attach (exit 3: not in this build)\n"
          "  --tls-cert FILE --tls-key FILE  the listener speaks TLS (wss)\n"
          "  --tls-ca FILE            require client certificates from this CA\n"
          "  --tls-sni NAME:CERT:KEY  another certificate for server name NAME\n"
          "  --tls-sni-strict         refuse unknown server names\n"
          "  --proxy-protocol         the --listen listener expects a PROXY header\n"
          "  --trusted-proxies CIDRS  ws_config_set_trusted_proxies\n"
          "  --plain-listen ADDR      also a plain listener (prints PLAIN <port>)\n"
          "  (TLS: SIGHUP reloads the certificates from another thread: RELOAD rc=<rc> <why>)\n"
          "  (text \"flood:<size>\" always starts sending numbered binary messages)\n",
          f);
}

static unsigned long long parse_number(const char *opt, const char *s, unsigned long long max)
{
    char *end;
    unsigned long long v;

    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || s[0] == '-' || v > max) {
        fprintf(stderr, "wsc-test-server: bad value for --%s: %s\n", opt, s);
        exit(2);
    }
    return v;
}

static void check_set(const char *opt, int rc)
{
    if (rc != 0) {
        fprintf(stderr, "wsc-test-server: --%s: %s\n", opt, ws_strerror(rc));
        exit(2);
    }
}

enum {
    OPT_LISTEN = 256, OPT_MAX_MESSAGE, OPT_MAX_HEAD, OPT_MAX_HEADERS,
    OPT_HANDSHAKE_TIMEOUT, OPT_PING_INTERVAL, OPT_PONG_TIMEOUT, OPT_CLOSE_TIMEOUT,
    OPT_MAX_CONNECTIONS, OPT_HTTP, OPT_SEND_THREADS, OPT_SEND_CONNS,
    OPT_SEND_COUNT, OPT_CLOSE_ON_MESSAGE, OPT_PING_ON_MESSAGE, OPT_HELP,
    OPT_BROADCAST_ON_MESSAGE, OPT_SEND_BROADCAST, OPT_NO_DEFLATE, OPT_DEFLATE_TAKEOVER,
    OPT_DEFLATE_THRESHOLD, OPT_MAX_BUFFERED, OPT_CLOSE_SLOW, OPT_SEND_TOPIC, OPT_THREADS,
    OPT_MAX_BODY, OPT_MAX_PENDING, OPT_KEEPALIVE_TIMEOUT, OPT_MAX_BUFFERED_TOTAL,
    OPT_REDIS,
    OPT_TLS_CERT, OPT_TLS_KEY, OPT_TLS_CA, OPT_TLS_SNI, OPT_TLS_SNI_STRICT, OPT_PLAIN_LISTEN,
    OPT_PROXY_PROTOCOL, OPT_TRUSTED_PROXIES
};

/* ---- TLS: options and SIGHUP reload (from its own thread) ---- */
static struct ws_tls *tls_opts;
static const char *tls_cert, *tls_key;

static void *reload_main(void *arg)
{
    sigset_t *set = arg;
    int sig;

    while (sigwait(set, &sig) == 0) {
        char why[256];
        int rc;
        if (sig != SIGHUP)
            break;
        rc = ws_server_reload_tls(app.srv);
        ws_server_tls_error(app.srv, why, sizeof(why));
        printf("RELOAD rc=%d %s\n", rc, rc == 0 ? "ok" : why);
    }
    return NULL;
}

static struct ws_tls *tls_get(void)
{
    if (tls_opts == NULL && (tls_opts = ws_tls_new()) == NULL) {
        fprintf(stderr, "wsc-test-server: out of memory\n");
        exit(1);
    }
    return tls_opts;
}

static void tls_add_sni(const char *spec)
{
    char name[256], cert[1024], key[1024];

    if (sscanf(spec, "%255[^:]:%1023[^:]:%1023s", name, cert, key) != 3) {
        fprintf(stderr, "wsc-test-server: bad --tls-sni: %s\n", spec);
        exit(2);
    }
    check_set("tls-sni", ws_tls_add_sni(tls_get(), name, cert, key));
}
/* ---- end TLS ---- */

int main(int argc, char **argv)
{
    static const struct option options[] = {
        { "listen", required_argument, NULL, OPT_LISTEN },
        { "max-message", required_argument, NULL, OPT_MAX_MESSAGE },
        { "max-head", required_argument, NULL, OPT_MAX_HEAD },
        { "max-headers", required_argument, NULL, OPT_MAX_HEADERS },
        { "handshake-timeout", required_argument, NULL, OPT_HANDSHAKE_TIMEOUT },
        { "ping-interval", required_argument, NULL, OPT_PING_INTERVAL },
        { "pong-timeout", required_argument, NULL, OPT_PONG_TIMEOUT },
        { "close-timeout", required_argument, NULL, OPT_CLOSE_TIMEOUT },
        { "max-connections", required_argument, NULL, OPT_MAX_CONNECTIONS },
        { "http", no_argument, NULL, OPT_HTTP },
        { "send-threads", required_argument, NULL, OPT_SEND_THREADS },
        { "send-conns", required_argument, NULL, OPT_SEND_CONNS },
        { "send-count", required_argument, NULL, OPT_SEND_COUNT },
        { "close-on-message", no_argument, NULL, OPT_CLOSE_ON_MESSAGE },
        { "ping-on-message", no_argument, NULL, OPT_PING_ON_MESSAGE },
        { "help", no_argument, NULL, OPT_HELP },
        { "broadcast-on-message", no_argument, NULL, OPT_BROADCAST_ON_MESSAGE },
        { "send-broadcast", no_argument, NULL, OPT_SEND_BROADCAST },
        { "no-deflate", no_argument, NULL, OPT_NO_DEFLATE },
        { "deflate-context-takeover", no_argument, NULL, OPT_DEFLATE_TAKEOVER },
        { "deflate-threshold", required_argument, NULL, OPT_DEFLATE_THRESHOLD },
        { "max-buffered", required_argument, NULL, OPT_MAX_BUFFERED },
        { "close-slow", no_argument, NULL, OPT_CLOSE_SLOW },
        { "send-topic", required_argument, NULL, OPT_SEND_TOPIC },
        { "threads", required_argument, NULL, OPT_THREADS },
        { "max-body", required_argument, NULL, OPT_MAX_BODY },
        { "max-pending", required_argument, NULL, OPT_MAX_PENDING },
        { "keepalive-timeout", required_argument, NULL, OPT_KEEPALIVE_TIMEOUT },
        { "max-buffered-total", required_argument, NULL, OPT_MAX_BUFFERED_TOTAL },
        { "redis", required_argument, NULL, OPT_REDIS },
        { "tls-cert", required_argument, NULL, OPT_TLS_CERT },
        { "tls-key", required_argument, NULL, OPT_TLS_KEY },
        { "tls-ca", required_argument, NULL, OPT_TLS_CA },
        { "tls-sni", required_argument, NULL, OPT_TLS_SNI },
        { "tls-sni-strict", no_argument, NULL, OPT_TLS_SNI_STRICT },
        { "plain-listen", required_argument, NULL, OPT_PLAIN_LISTEN },
        { "proxy-protocol", no_argument, NULL, OPT_PROXY_PROTOCOL },
        { "trusted-proxies", required_argument, NULL, OPT_TRUSTED_PROXIES },
        { NULL, 0, NULL, 0 }
    };
    const char *listen_addr = "127.0.0.1:0", *plain_listen = NULL;
    unsigned listen_flags = 0;
    sigset_t hup;
    bool reloading;
    pthread_t reloader;
    struct ws_config *cfg;
    struct ws_server *srv;
    int http = 0, opt, port, rc;

    setvbuf(stdout, NULL, _IOLBF, 0);

    cfg = ws_config_new();
    if (cfg == NULL) {
        fprintf(stderr, "wsc-test-server: out of memory\n");
        return 1;
    }
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (opt) {
        case OPT_LISTEN:
            listen_addr = optarg;
            break;
        case OPT_MAX_MESSAGE:
            check_set("max-message", ws_config_set_max_message_size(
                          cfg, (size_t)parse_number("max-message", optarg, SIZE_MAX)));
            break;
        case OPT_MAX_HEAD:
            check_set("max-head", ws_config_set_max_head_size(
                          cfg, (size_t)parse_number("max-head", optarg, SIZE_MAX)));
            break;
        case OPT_MAX_HEADERS:
            check_set("max-headers", ws_config_set_max_headers(
                          cfg, (unsigned)parse_number("max-headers", optarg, UINT_MAX)));
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
        case OPT_MAX_CONNECTIONS:
            check_set("max-connections", ws_config_set_max_connections(
                          cfg, (unsigned)parse_number("max-connections", optarg, UINT_MAX)));
            break;
        case OPT_HTTP:
            http = 1;
            break;
        case OPT_SEND_THREADS:
            app.send_threads = (unsigned)parse_number("send-threads", optarg, 1024);
            break;
        case OPT_SEND_CONNS:
            app.send_conns = (unsigned)parse_number("send-conns", optarg, 100000);
            break;
        case OPT_SEND_COUNT:
            app.send_count = (unsigned)parse_number("send-count", optarg, UINT_MAX);
            break;
        case OPT_CLOSE_ON_MESSAGE:
            app.close_on_message = 1;
            break;
        case OPT_PING_ON_MESSAGE:
            app.ping_on_message = 1;
            break;
        case OPT_BROADCAST_ON_MESSAGE:
            app.broadcast_on_message = 1;
            break;
        case OPT_SEND_BROADCAST:
            app.send_broadcast = 1;
            break;
        case OPT_NO_DEFLATE:
            check_set("no-deflate", ws_config_set_deflate(cfg, 0));
            break;
        case OPT_DEFLATE_TAKEOVER:
            check_set("deflate-context-takeover",
                      ws_config_set_deflate_no_context_takeover(cfg, 0));
            break;
        case OPT_MAX_BUFFERED:
            check_set("max-buffered", ws_config_set_max_buffered(
                          cfg, (size_t)parse_number("max-buffered", optarg, SIZE_MAX)));
            break;
        case OPT_THREADS:
            app.threads = (unsigned)parse_number("threads", optarg, 256);
            check_set("threads", ws_config_set_threads(cfg, app.threads));
            break;
        case OPT_SEND_TOPIC:
            app.send_topic = optarg;
            break;
        case OPT_REDIS:
            app.redis = optarg;
            break;
        case OPT_CLOSE_SLOW:
            check_set("close-slow", ws_config_set_close_slow_consumers(cfg, 1));
            break;
        case OPT_MAX_BODY:
            check_set("max-body", ws_config_set_max_body_size(
                          cfg, (size_t)parse_number("max-body", optarg, SIZE_MAX)));
            break;
        case OPT_MAX_PENDING:
            check_set("max-pending", ws_config_set_max_pending(
                          cfg, (unsigned)parse_number("max-pending", optarg, UINT_MAX)));
            break;
        case OPT_KEEPALIVE_TIMEOUT:
            check_set("keepalive-timeout", ws_config_set_keepalive_timeout(
                          cfg, (unsigned)parse_number("keepalive-timeout", optarg, UINT_MAX)));
            break;
        case OPT_MAX_BUFFERED_TOTAL:
            check_set("max-buffered-total", ws_config_set_max_buffered_total(
                          cfg, (size_t)parse_number("max-buffered-total", optarg, SIZE_MAX)));
            break;
        case OPT_DEFLATE_THRESHOLD:
            check_set("deflate-threshold", ws_config_set_deflate_threshold(
                          cfg, (size_t)parse_number("deflate-threshold", optarg, SIZE_MAX)));
            break;
        case OPT_TLS_CERT:
            tls_cert = optarg;
            break;
        case OPT_TLS_KEY:
            tls_key = optarg;
            break;
        case OPT_TLS_CA:
            check_set("tls-ca", ws_tls_set_ca_file(tls_get(), optarg));
            break;
        case OPT_TLS_SNI:
            tls_add_sni(optarg);
            break;
        case OPT_TLS_SNI_STRICT:
            check_set("tls-sni-strict", ws_tls_set_sni_strict(tls_get(), 1));
            break;
        case OPT_PLAIN_LISTEN:
            plain_listen = optarg;
            break;
        case OPT_PROXY_PROTOCOL:
            listen_flags |= WS_LISTEN_PROXY_PROTOCOL;
            break;
        case OPT_TRUSTED_PROXIES:
            check_set("trusted-proxies", ws_config_set_trusted_proxies(cfg, optarg));
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
    if ((tls_cert == NULL) != (tls_key == NULL) || (tls_opts != NULL && tls_cert == NULL)) {
        fprintf(stderr, "wsc-test-server: TLS needs --tls-cert and --tls-key\n");
        return 2;
    }
    if (tls_cert != NULL)
        check_set("tls-cert", ws_tls_set_cert_file(tls_get(), tls_cert, tls_key));
    /* SIGHUP is taken by the reload thread only (threads inherit the mask). */
    sigemptyset(&hup);
    sigaddset(&hup, SIGHUP);
    sigaddset(&hup, SIGUSR2); /* ends the reloader at exit */
    pthread_sigmask(SIG_BLOCK, &hup, NULL);
    if (optind != argc) {
        usage(stderr);
        ws_config_free(cfg);
        return 2;
    }
    if (app.send_threads > 0) {
        if (app.send_conns == 0) {
            fprintf(stderr, "wsc-test-server: --send-threads needs --send-conns > 0\n");
            ws_config_free(cfg);
            return 2;
        }
        app.conns = calloc(app.send_conns, sizeof(*app.conns));
        app.senders = calloc(app.send_threads, sizeof(*app.senders));
        if (app.conns == NULL || app.senders == NULL) {
            fprintf(stderr, "wsc-test-server: out of memory\n");
            return 1;
        }
    }

    srv = ws_server_new(cfg);
    app.srv = srv;
    ws_config_free(cfg);
    if (srv == NULL) {
        fprintf(stderr, "wsc-test-server: ws_server_new failed\n");
        return 1;
    }
    ws_server_handle_open(srv, on_open, NULL);
    ws_server_handle_data(srv, on_data, NULL);
    ws_server_handle_ping(srv, on_ping, NULL);
    ws_server_handle_pong(srv, on_pong, NULL);
    ws_server_handle_close(srv, on_close, NULL);
    ws_server_handle_drain(srv, on_drain, NULL);
    if (http)
        ws_server_handle_http(srv, on_http, NULL);
    if (app.redis != NULL) {
        rc = ws_server_redis_attach(srv, app.redis, NULL);
        if (rc != 0) {
            fprintf(stderr, "wsc-test-server: --redis %s: %s\n", app.redis, ws_strerror(rc));
            ws_server_free(srv);
            return rc == WS_EUNSUPPORTED ? 3 : 1;
        }
        ws_server_handle_redis(srv, on_redis_state, NULL);
    }

    port = tls_opts != NULL ? ws_server_listen_tls_opts(srv, listen_addr, tls_opts, listen_flags)
                            : ws_server_listen_opts(srv, listen_addr, listen_flags);
    if (port <= 0) {
        char why[256] = "";
        ws_server_tls_error(srv, why, sizeof(why));
        fprintf(stderr, "wsc-test-server: listen %s: %s %s\n", listen_addr, ws_strerror(port),
                why);
        ws_server_free(srv);
        return 1;
    }
    ws_tls_free(tls_opts); /* copied by the listener */
    if (plain_listen != NULL) {
        int p = ws_server_listen(srv, plain_listen);
        if (p <= 0) {
            fprintf(stderr, "wsc-test-server: listen %s: %s\n", plain_listen, ws_strerror(p));
            ws_server_free(srv);
            return 1;
        }
        printf("PLAIN %d\n", p);
    }
    reloading = pthread_create(&reloader, NULL, reload_main, &hup) == 0;
    printf("LISTENING %d\n", port);

    rc = ws_server_run(srv);
    if (rc != 0)
        fprintf(stderr, "wsc-test-server: ws_server_run: %s\n", ws_strerror(rc));
    if (reloading) { /* it uses the server: gone before the server is */
        pthread_kill(reloader, SIGUSR2);
        pthread_join(reloader, NULL);
    }
    /* Senders hold refs; let them finish before the server goes away. */
    join_senders();
    ws_server_free(srv);
    free(app.conns);
    free(app.senders);
    printf("STOPPED\n");
    fflush(stdout);
    return rc == 0 ? 0 : 1;
}
