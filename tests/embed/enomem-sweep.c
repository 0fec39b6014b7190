/*
 * enomem-sweep.c - fail each of libwsc's allocations in turn during one
 * scripted session and check that nothing worse than a clear error comes
 * of it.
 *
 * The session (a raw client, the server on its own loop thread): a plain
 * HTTP request answered by the server's HTTP handler, then an upgrade
 * (with permessage-deflate in the second variant), a text, a 300-byte
 * binary, a text in two fragments, a ping, a broadcast, a subscription
 * and a publish to it, a send by the connection's id, the peer's address,
 * a clean close. It runs once to count libwsc's allocations K,
 * then for N = 1..K (with a stride if K is large) with the Nth failing.
 * Each run must end either complete or with an error the user can see:
 * an error return to the server's code, its close callback, or on the
 * wire a close frame, an HTTP status other than 101 or the socket closed.
 * A reply that never comes with none of those is a hang; every wait is
 * bounded. After each run: the same server serves a fresh connection, and
 * once freed every block libwsc allocated is back (LSan too, in the
 * sanitizer builds).
 */
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include <wsc.h>

#define EMBEDTEST_NAME "enomem"
#include "embedtest.h"
#include "rawws.h"
#include "enomem-srv.h"

#define MAX_RUNS 300     /* sweep runs per variant, at most */
#define WAIT_SLICE_MS 20 /* poll slices while waiting for a reply */
#define WAIT_MS 2000     /* a reply later than this, with no error anywhere: a hang */

static atomic_int user_errors; /* error returns the server's code saw */
static atomic_int user_closes; /* close callbacks */
static atomic_int lost_ids;    /* an open connection its id did not find */

static void sweep_on_data(struct ws_conn *c, enum ws_opcode op, const void *data, size_t len,
                          void *arg)
{
    int rc;

    (void)arg;
    if (len == 5 && memcmp(data, "bcast", 5) == 0) {
        rc = ws_server_broadcast(ws_conn_server(c), WS_OP_TEXT, "all:bcast", 9);
    } else if (len == 4 && memcmp(data, "addr", 4) == 0) {
        const char *a = ws_conn_remote_addr(c);
        rc = a != NULL ? ws_conn_send(c, WS_OP_TEXT, a, strlen(a)) : WS_EINVAL;
    } else if (len == 3 && memcmp(data, "sub", 3) == 0) {
        rc = ws_conn_subscribe(c, "news");
        if (rc == 0)
            rc = ws_server_publish(ws_conn_server(c), "news", WS_OP_TEXT, "pub:news", 8);
    } else if (len == 6 && memcmp(data, "sendto", 6) == 0) {
        rc = ws_server_send_to(ws_conn_server(c), ws_conn_id(c), WS_OP_TEXT, "sent-to", 7);
        if (rc == WS_ENOTFOUND) /* c is open: wsc.h promises this only for no open one */
            atomic_fetch_add(&lost_ids, 1);
    } else {
        rc = ws_conn_send(c, op, data, len);
    }
    if (rc < 0)
        atomic_fetch_add(&user_errors, 1);
}

/* A plain HTTP request: a small response with a header of our own. */
static void sweep_on_http(const struct ws_request *req, struct ws_response *res, void *arg)
{
    (void)req;
    (void)arg;
    if (ws_response_add_header(res, "X-Sweep", "1") < 0 ||
        ws_response_send(res, 200, "text/plain", "ok", 2) < 0)
        atomic_fetch_add(&user_errors, 1);
}

static void sweep_on_close(struct ws_conn *c, const struct ws_close_info *info, void *arg)
{
    (void)c;
    (void)info;
    (void)arg;
    atomic_fetch_add(&user_closes, 1);
}

/* ---- the raw client's side ---------------------------------------------------- */

enum outcome {
    DONE,    /* the step got its reply */
    ENDED,   /* the connection ended on the wire: EOF, RST, a close frame, a status */
    VISIBLE, /* no reply, but the server's code was told (error return, close) */
    WRONG,   /* a reply that is not what was sent */
    HANG     /* none of these in WAIT_MS */
};

static const char *const outcome_name[] = { "done", "ended", "error seen by the server",
                                            "wrong reply", "hang" };

struct session {
    int fd;
    int deflate;       /* permessage-deflate agreed */
    int errors_before; /* user_errors + user_closes at the start */
};

static int server_told(const struct session *s)
{
    return atomic_load(&user_errors) + atomic_load(&user_closes) > s->errors_before;
}

/* Wait until fd is readable; DONE, or VISIBLE / HANG. */
static enum outcome wait_input(const struct session *s)
{
    struct pollfd p = { .fd = s->fd, .events = POLLIN };

    for (int waited = 0; waited < WAIT_MS; waited += WAIT_SLICE_MS) {
        if (poll(&p, 1, WAIT_SLICE_MS) > 0)
            return DONE;
        if (server_told(s))
            return VISIBLE;
    }
    return HANG;
}

/* One client frame (masked), fin or not. A failed write shows in the read
 * that follows. */
static void send_frame(int fd, int fin, int op, const void *payload, size_t n)
{
    (void)rawws_send_frame(fd, fin, op, payload, n);
}

/* Inflate one message sent with server_no_context_takeover; its length,
 * or -1. */
static long inflate_message(const unsigned char *in, size_t n, unsigned char *out, size_t cap)
{
    unsigned char buf[1024 + 4];
    z_stream zs;
    long got;

    if (n > 1024)
        return -1;
    memcpy(buf, in, n);
    memcpy(buf + n, "\x00\x00\xff\xff", 4); /* RFC 7692 7.2.2 */
    memset(&zs, 0, sizeof(zs));
    if (inflateInit2(&zs, -15) != Z_OK)
        return -1;
    zs.next_in = buf;
    zs.avail_in = (uInt)(n + 4);
    zs.next_out = out;
    zs.avail_out = (uInt)cap;
    got = inflate(&zs, Z_SYNC_FLUSH) == Z_OK ? (long)(cap - zs.avail_out) : -1;
    inflateEnd(&zs);
    return got;
}

/* The next server frame: DONE with *op, payload (inflated) and its length,
 * or ENDED (EOF, RST, a close frame unless want_close), VISIBLE, HANG. */
static enum outcome read_frame(const struct session *s, int want_close, int *op,
                               unsigned char *out, size_t cap, long *len)
{
    unsigned char h[8], raw[1024];
    enum outcome o = wait_input(s);
    size_t n;

    if (o != DONE)
        return o;
    if (rawws_read_exact(s->fd, h, 2) != 0)
        return errno == EAGAIN ? HANG : ENDED;
    *op = h[0] & 0x0f;
    n = h[1] & 0x7f;
    if (n == 126) {
        if (rawws_read_exact(s->fd, h + 2, 2) != 0)
            return errno == EAGAIN ? HANG : ENDED;
        n = ((size_t)h[2] << 8) | h[3];
    }
    if (n > sizeof(raw) || n == 127 || rawws_read_exact(s->fd, raw, n) != 0)
        return WRONG;
    if (*op == WS_OP_CLOSE && !want_close)
        return ENDED;
    if (h[0] & 0x40) { /* RSV1: compressed */
        *len = inflate_message(raw, n, out, cap);
        return *len >= 0 ? DONE : WRONG;
    }
    if (n > cap)
        return WRONG;
    memcpy(out, raw, n);
    *len = (long)n;
    return DONE;
}

/* Send one message (text, binary, ping) and read its answer, which must
 * be want_op with want (or alt, if not NULL). */
static enum outcome round_trip(const struct session *s, int op, const void *msg, size_t n,
                               int want_op, const char *want, size_t want_len,
                               const char *alt)
{
    unsigned char got[1024];
    long len = 0;
    int rop = 0;
    enum outcome o;

    send_frame(s->fd, 1, op, msg, n);
    o = read_frame(s, 0, &rop, got, sizeof(got), &len);
    if (o != DONE)
        return o;
    if (rop == want_op && len == (long)want_len && memcmp(got, want, want_len) == 0)
        return DONE;
    if (alt != NULL && rop == want_op && len == (long)strlen(alt) &&
        memcmp(got, alt, strlen(alt)) == 0)
        return DONE;
    return WRONG;
}

/* Upgrade on a fresh socket: DONE (101), or how it went otherwise. */
static enum outcome open_session(struct session *s, int port, int deflate)
{
    char req[512], head[1024];
    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    struct timeval tv = { 2, 0 };
    size_t got = 0;
    int n;
    enum outcome o;

    s->deflate = 0;
    s->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (s->fd < 0)
        return WRONG;
    inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
    setsockopt(s->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(s->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    n = snprintf(req, sizeof(req),
                 "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                 "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                 "Sec-WebSocket-Version: 13\r\n%s\r\n",
                 deflate ? "Sec-WebSocket-Extensions: permessage-deflate; "
                           "server_no_context_takeover\r\n" : "");
    if (connect(s->fd, (struct sockaddr *)&sin, sizeof(sin)) != 0 ||
        write(s->fd, req, (size_t)n) != n)
        return ENDED;
    while (got < sizeof(head) - 1) {
        if ((o = wait_input(s)) != DONE)
            return o;
        if (read(s->fd, head + got, 1) != 1)
            return errno == EAGAIN ? HANG : ENDED;
        head[++got] = '\0';
        if (got >= 4 && memcmp(head + got - 4, "\r\n\r\n", 4) == 0)
            break;
    }
    if (strncmp(head, "HTTP/1.1 101", 12) != 0)
        return got >= 12 && strncmp(head, "HTTP/1.1 ", 9) == 0 ? ENDED : WRONG;
    s->deflate = strstr(head, "permessage-deflate") != NULL;
    return DONE;
}

/* A plain HTTP GET on its own socket: DONE for 200 with body "ok". */
static enum outcome http_exchange(struct session *s, int port)
{
    static const char req[] = "GET /plain HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    struct timeval tv = { 2, 0 };
    char resp[1024];
    size_t got = 0;
    enum outcome o = DONE;

    s->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (s->fd < 0)
        return WRONG;
    inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
    setsockopt(s->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (connect(s->fd, (struct sockaddr *)&sin, sizeof(sin)) != 0 ||
        write(s->fd, req, sizeof(req) - 1) != (ssize_t)(sizeof(req) - 1))
        o = ENDED;
    while (o == DONE && got < sizeof(resp) - 1) { /* until "ok" or the end */
        ssize_t r;
        if ((o = wait_input(s)) != DONE)
            break;
        r = read(s->fd, resp + got, sizeof(resp) - 1 - got);
        if (r <= 0) {
            o = r < 0 && errno == EAGAIN ? HANG : ENDED;
            break;
        }
        got += (size_t)r;
        resp[got] = '\0';
        if (strstr(resp, "\r\n\r\nok") != NULL)
            break;
    }
    close(s->fd);
    s->fd = -1;
    if (o != DONE)
        return o == ENDED && got > 0 && strncmp(resp, "HTTP/1.1 200", 12) == 0 ? WRONG : o;
    return strncmp(resp, "HTTP/1.1 200", 12) == 0 && strstr(resp, "X-Sweep: 1") != NULL
               ? DONE
               : got >= 12 && strncmp(resp, "HTTP/1.1 ", 9) == 0 ? ENDED : WRONG;
}

/* The script, up to its first step that is not DONE. */
static enum outcome session(struct session *s, int port, int deflate)
{
    unsigned char bin[300], got[16];
    char mine[64];
    struct sockaddr_in sin;
    socklen_t slen = sizeof(sin);
    enum outcome o;
    long len = 0, end;
    int op = 0;

    s->errors_before = atomic_load(&user_errors) + atomic_load(&user_closes);
    if ((o = http_exchange(s, port)) != DONE || (o = open_session(s, port, deflate)) != DONE)
        return o;
    for (size_t i = 0; i < sizeof(bin); i++)
        bin[i] = (unsigned char)(i * 7);
    getsockname(s->fd, (struct sockaddr *)&sin, &slen);
    snprintf(mine, sizeof(mine), "127.0.0.1:%u", (unsigned)ntohs(sin.sin_port));
    if ((o = round_trip(s, WS_OP_TEXT, "hello", 5, WS_OP_TEXT, "hello", 5, NULL)) != DONE ||
        (o = round_trip(s, WS_OP_BINARY, bin, sizeof(bin), WS_OP_BINARY, (const char *)bin,
                        sizeof(bin), NULL)) != DONE)
        return o;
    send_frame(s->fd, 0, WS_OP_TEXT, "frag", 4);
    if ((o = round_trip(s, WS_OP_CONTINUATION, "ment", 4, WS_OP_TEXT, "fragment", 8, NULL)) != DONE ||
        (o = round_trip(s, WS_OP_PING, "p", 1, WS_OP_PONG, "p", 1, NULL)) != DONE ||
        (o = round_trip(s, WS_OP_TEXT, "bcast", 5, WS_OP_TEXT, "all:bcast", 9, NULL)) != DONE ||
        (o = round_trip(s, WS_OP_TEXT, "sub", 3, WS_OP_TEXT, "pub:news", 8, NULL)) != DONE ||
        (o = round_trip(s, WS_OP_TEXT, "sendto", 6, WS_OP_TEXT, "sent-to", 7, NULL)) != DONE ||
        (o = round_trip(s, WS_OP_TEXT, "addr", 4, WS_OP_TEXT, mine, strlen(mine),
                        "unknown")) != DONE)
        return o;
    send_frame(s->fd, 1, WS_OP_CLOSE, "\x03\xe8", 2); /* 1000 */
    if ((o = read_frame(s, 1, &op, got, sizeof(got), &len)) != DONE)
        return o;
    if (op != WS_OP_CLOSE || len < 2 || got[0] != 0x03 || got[1] != 0xe8)
        return WRONG;
    return peer_wait_end(s->fd, &end) == PEER_ENDED ? DONE : HANG;
}

/* ---- the sweep ------------------------------------------------------------------ */

struct run {
    enum outcome outcome;
    long allocations; /* libwsc calls during the session */
    long injected;
    int fresh_ok;     /* the loop served a new connection afterwards */
    long leaked;
    int deflate;      /* the session agreed on permessage-deflate */
};

/* One session with the nth allocation failing (0: none). */
static struct run one_run(int deflate, long nth)
{
    struct run r = { .outcome = WRONG };
    struct session s = { .fd = -1 };
    struct srv srv;
    long calls;
    int lost = atomic_load(&lost_ids);

    if (srv_start_http(&srv, sweep_on_data, sweep_on_close, sweep_on_http, NULL, deflate) != 0)
        return r;
    calls = enomem_calls();
    if (nth > 0)
        enomem_arm(ENOMEM_ANY, nth, 0);
    r.outcome = session(&s, srv.port, deflate);
    r.allocations = enomem_calls() - calls;
    r.injected = enomem_disarm();
    if (atomic_load(&lost_ids) != lost) {
        printf("# ws_server_send_to: WS_ENOTFOUND for its own open connection\n");
        r.outcome = WRONG;
    }
    r.deflate = s.deflate;
    if (s.fd >= 0)
        close(s.fd);
    r.fresh_ok = srv_serves_fresh(&srv);
    r.leaked = srv_stop(&srv);
    return r;
}

/* A list of run numbers for a FAIL's comment line. */
static void note(char *list, size_t cap, long nth)
{
    size_t used = strlen(list);

    if (used + 24 < cap)
        snprintf(list + used, cap - used, " %ld", nth);
}

static void sweep_variant(int deflate)
{
    const char *v = deflate ? "permessage-deflate" : "plain";
    struct run base = one_run(deflate, 0);
    char what[200], bad_end[512] = "", bad_fresh[512] = "", bad_leak[512] = "";
    long k = base.allocations, stride, runs = 0, visible = 0, absorbed = 0, unreached = 0;

    snprintf(what, sizeof(what), "sweep %s: with nothing failed the session completes "
             "(%ld libwsc allocations)%s", v, k, deflate ? ", deflate agreed" : "");
    check(base.outcome == DONE && base.fresh_ok && base.leaked == 0 && k > 0 &&
              base.deflate == deflate, what);
    if (base.outcome != DONE)
        printf("# baseline session: %s\n", outcome_name[base.outcome]);
    stride = k > MAX_RUNS ? k / MAX_RUNS + 1 : 1;
    for (long nth = 1; nth <= k; nth += stride) {
        struct run r = one_run(deflate, nth);
        runs++;
        if (r.injected == 0)
            unreached++;
        else if (r.outcome == DONE && ++absorbed > 0)
            printf("# %s: allocation %ld failed: absorbed, the session completed\n", v, nth);
        else if (r.outcome == ENDED || r.outcome == VISIBLE)
            visible++;
        if (r.outcome == HANG || r.outcome == WRONG) {
            printf("# %s: allocation %ld failed: %s\n", v, nth, outcome_name[r.outcome]);
            note(bad_end, sizeof(bad_end), nth);
        }
        if (!r.fresh_ok) {
            printf("# %s: allocation %ld failed: no fresh connection served after\n", v, nth);
            note(bad_fresh, sizeof(bad_fresh), nth);
        }
        if (r.leaked != 0) {
            printf("# %s: allocation %ld failed: %ld blocks not freed\n", v, nth, r.leaked);
            note(bad_leak, sizeof(bad_leak), nth);
        }
    }
    printf("# sweep %s: %ld runs (stride %ld) over %ld allocations: %ld ended visibly, "
           "%ld absorbed, %ld not reached\n", v, runs, stride, k, visible, absorbed,
           unreached);
    snprintf(what, sizeof(what), "sweep %s: every failed allocation ends the session "
             "visibly or is absorbed, never a hang or a wrong reply", v);
    check(bad_end[0] == '\0', what);
    snprintf(what, sizeof(what), "sweep %s: after each, the same loop serves a fresh "
             "connection", v);
    check(bad_fresh[0] == '\0', what);
    snprintf(what, sizeof(what), "sweep %s: after each, every libwsc block is freed", v);
    check(bad_leak[0] == '\0', what);
    snprintf(what, sizeof(what), "sweep %s: the failures reached the session (some "
             "ended it visibly)", v);
    check(visible > 0, what);
}

/* ws_config_new, ws_server_new and ws_server_listen with each of their
 * allocations failing: an error return (NULL, a negative code), nothing
 * leaked, and a server that did come up serves a connection. */
static int setup_with_failure(long nth, long *injected)
{
    long live = enomem_live();
    struct ws_config *cfg;
    struct ws_server *srv = NULL;
    pthread_t loop;
    int port = WS_ENOMEM, ok = 1;

    if (nth > 0)
        enomem_arm(ENOMEM_ANY, nth, 0);
    cfg = ws_config_new();
    ws_config_set_handle_signals(cfg, 0); /* WS_EINVAL if cfg is NULL */
    if (cfg != NULL)
        srv = ws_server_new(cfg);
    ws_config_free(cfg);
    if (srv != NULL)
        port = ws_server_listen(srv, "127.0.0.1:0");
    *injected = enomem_disarm();
    if (srv != NULL && port > 0) {
        ws_server_handle_data(srv, sweep_on_data, NULL);
        ok = pthread_create(&loop, NULL, srv_loop_main, srv) == 0;
        if (ok) {
            int fd = rawws_open(port, 2);
            ok = fd >= 0 && peer_echoes(fd, "up");
            if (fd >= 0)
                close(fd);
            ws_server_stop(srv);
            pthread_join(loop, NULL);
        }
    } else if (srv != NULL && port != WS_ENOMEM) {
        printf("# allocation %ld failed: ws_server_listen returned %d\n", nth, port);
        ok = 0;
    }
    ws_server_free(srv);
    if (enomem_live() != live) {
        printf("# allocation %ld failed: %ld blocks not freed\n", nth, enomem_live() - live);
        ok = 0;
    }
    return ok;
}

static void sweep_setup(void)
{
    long calls = enomem_calls(), k, injected, bad = 0, failed = 0;
    int base_ok = setup_with_failure(0, &injected);
    char what[160];

    k = enomem_calls() - calls;
    for (long nth = 1; nth <= k && nth <= MAX_RUNS; nth++) {
        if (!setup_with_failure(nth, &injected))
            bad++;
        failed += injected > 0;
    }
    snprintf(what, sizeof(what), "sweep setup: with nothing failed a server comes up and "
             "echoes (%ld libwsc allocations, the echo included)", k);
    check(base_ok && k > 0, what);
    check(bad == 0 && failed > 0, "sweep setup: each failed allocation of ws_config_new, "
          "ws_server_new or ws_server_listen gives NULL or WS_ENOMEM, leaks nothing, or "
          "is absorbed by a server that works");
}

int enomem_sweep(void)
{
    sweep_setup();
    sweep_variant(0);
    sweep_variant(1);
    return failures;
}
