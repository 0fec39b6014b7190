/*
 * fuzz_conn.c - libFuzzer target: arbitrary bytes from a peer into a real
 * libwsc server connection, through a real socket.
 *
 * Each input gets a fresh socketpair(AF_UNIX, SOCK_STREAM). One end becomes
 * a server connection (wsc__conn_new, exactly what accepting does); the
 * harness plays the peer on the other end: it writes the input in pieces,
 * runs the server's event loop between them, reads (or, on purpose, does
 * not read) what the server answers, then closes its end and runs the loop
 * until the connection is gone. So the whole input path runs as in
 * production: io.c (read, stash, cork, backlog), conn_http.c + http.c +
 * request.c (requests, keep-alive, bodies), handshake.c + extension.c (the
 * upgrade), message.c + frame.h (frames, unmasking, fragmentation, UTF-8),
 * deflate.c (permessage-deflate), and what the application does from its
 * callbacks and from outside them (echo, broadcast, publish, ping, close,
 * sends "from another thread", a graceful stop).
 *
 * Input layout (make-corpus.py writes seeds in it):
 *   byte 0  flags
 *           bits 0-1  which server (configuration), see make_server()
 *           bit 2     do not read the server's output until the end
 *           bit 3     the data callback also acts (broadcast, close, ...)
 *           bit 4     small SO_SNDBUF on the server's socket (backlog)
 *           bit 5     at the end, read everything before closing
 *           bit 6     at the end, half-close (SHUT_WR) first
 *           bit 7     timeouts elapse: the connection's timer fires after
 *                     some pieces and three times at the end
 *   byte 1  split: bits 6-7 piece-size class (whole, <= 16, <= 256,
 *           <= 2048 bytes), bits 0-5 seed of the piece-size PRNG
 *   byte 2  extras
 *           bit 0     a bystander: a second client, upgraded first, that
 *                     only listens (broadcasts and publishes reach it)
 *           bit 1     the bystander negotiates permessage-deflate
 *           bit 2     the bystander never reads (its backlog fills)
 *           bit 3     between pieces the application sends, broadcasts,
 *                     publishes, pings or closes (PRNG-chosen)
 *           bit 4     ... and does so as if from another thread
 *           bit 5     ws_server_stop() after one of the first pieces
 *           bit 6     the application holds a reference to the connection
 *                     (ws_conn_ref) and uses it after the close
 *           bit 7     amplify: the last piece is then sent again and again,
 *                     about 160 KiB more (large bodies and frames, server 3
 *                     takes messages up to 256 KiB)
 *   rest    the bytes the peer sends
 *
 * Invariants checked per input (abort() = a finding): the connections are
 * released and their sockets closed once the peers are gone; every open got
 * exactly one close callback; no callback after close; data and control
 * payloads honour the documented limits; text is valid UTF-8; calls on a
 * closed, referenced connection return WS_ECLOSED.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "internal.h"
#include "fuzz_common.h"

#define NUM_SERVERS 4
#define MAX_MESSAGE 4096

/* byte 2 */
#define X_BYSTANDER 0x01
#define X_BY_DEFLATE 0x02
#define X_BY_NO_READ 0x04
#define X_APP 0x08
#define X_FOREIGN 0x10
#define X_STOP 0x20
#define X_REF 0x40
#define X_AMPLIFY 0x80
#define AMPLIFY_BLOCK 32768
#define AMPLIFY_TIMES 5

static struct ws_server *servers[NUM_SERVERS];
static int trace = -1;            /* FUZZ_CONN_TRACE=1: server output on stderr */

/* What the callbacks know about one connection (its user pointer). */
struct side {
    const char *name;
    uint64_t id;                  /* 0 until created */
    struct ws_conn *ref;          /* held with ws_conn_ref (X_REF) */
    unsigned opens, closes;
    bool closed;
};

/* Per-input state. */
static struct {
    struct ws_server *srv;
    size_t max_message, max_body;
    bool actions;                 /* F_ACTIONS */
    bool hold_refs;               /* X_REF */
    struct side main, by;
    struct side *opening;         /* whose upgrade is being handled */
    unsigned datas, drains;
} g;

const char *const fuzz_target_name = "fuzz_conn";

static struct side *side_of(struct ws_conn *c, const char *event)
{
    struct side *s = ws_conn_get_user(c);

    if (s != &g.main && s != &g.by)
        fuzz_fail(event);
    if (s->opens != 1 || s->closed)
        fuzz_fail(event);
    return s;
}

/* ---- callbacks ------------------------------------------------------------ */

static void on_open(struct ws_conn *c, void *arg)
{
    struct side *s = g.opening;

    (void)arg;
    if (s == NULL || s->opens > 0 || s->closed || ws_conn_id(c) != s->id)
        fuzz_fail("open: unexpected connection, or a second open");
    s->opens++;
    if (ws_conn_server(c) != g.srv || ws_conn_client(c) != NULL)
        fuzz_fail("ws_conn_server/ws_conn_client");
    fuzz_touch(ws_conn_remote_addr(c), strlen(ws_conn_remote_addr(c)));
    fuzz_touch(ws_conn_subprotocol(c), strlen(ws_conn_subprotocol(c)));
    ws_conn_set_user(c, s);
    if (ws_conn_subscribe(c, "fuzz") != 0 || ws_conn_subscribe(c, "fuzz") != 0)
        fuzz_fail("subscribe in open");
    if (g.hold_refs) {
        ws_conn_ref(c);
        s->ref = c;
    }
}

static const uint8_t big[MAX_MESSAGE] = { 0 };

static void on_data(struct ws_conn *c, enum ws_opcode op, const void *data, size_t len,
                    void *arg)
{
    const uint8_t *d = data;

    (void)arg;
    if (side_of(c, "data outside open..close") != &g.main)
        fuzz_fail("data from the bystander, which sends none");
    fuzz_check_data(op, data, len, g.max_message);
    g.datas++;
    ws_conn_send(c, op, data, len); /* echo */
    (void)ws_conn_buffered_amount(c);
    if (!g.actions || len == 0)
        return;
    switch (d[0] & 7) {
    case 0:
        ws_server_broadcast(g.srv, op, data, len);
        break;
    case 1:
        ws_conn_close(c, 1000 + (len & 3), len > 1 && d[1] & 1 ? "bye" : NULL);
        break;
    case 2:
        ws_conn_ping(c, data, len < 125 ? len : 125);
        break;
    case 3: /* fill the backlog: WS_EAGAIN, drain, slow-consumer close */
        for (int i = 0; i < 8; i++)
            if (ws_conn_send(c, WS_OP_BINARY, big, sizeof(big)) != 0)
                break;
        break;
    case 4:
        ws_server_publish(g.srv, "fuzz", op, data, len);
        break;
    case 5:
        if (ws_conn_unsubscribe(c, "fuzz") == 0)
            ws_conn_subscribe(c, "other");
        ws_server_publish(g.srv, "other", WS_OP_BINARY, data, len);
        break;
    case 6:
        ws_conn_close(c, 4000 + d[len - 1], "going");
        ws_conn_send(c, op, data, len); /* after close: WS_ECLOSED */
        break;
    case 7:
        ws_server_broadcast(g.srv, WS_OP_BINARY, big, ((size_t)d[len - 1] * 16) % MAX_MESSAGE);
        ws_conn_send(c, WS_OP_TEXT, "x", 1);
        break;
    }
}

static void on_ping(struct ws_conn *c, const void *data, size_t len, void *arg)
{
    (void)arg;
    side_of(c, "ping outside open..close");
    fuzz_check_control(data, len, "ping payload over 125 bytes");
}

static void on_pong(struct ws_conn *c, const void *data, size_t len, void *arg)
{
    (void)arg;
    side_of(c, "pong outside open..close");
    fuzz_check_control(data, len, "pong payload over 125 bytes");
    if (g.actions && len > 0 && ((const uint8_t *)data)[0] == 'P')
        ws_conn_ping(c, "again", 5);
}

static void on_close(struct ws_conn *c, const struct ws_close_info *info, void *arg)
{
    struct side *s = side_of(c, "close without open, or twice");

    (void)arg;
    s->closed = true;
    s->closes++;
    fuzz_check_close_info(info);
    /* wsc.h: sends after close began return WS_ECLOSED, from the close
     * callback too, however the connection ended. */
    if (ws_conn_send(c, WS_OP_TEXT, "late", 4) != WS_ECLOSED)
        fuzz_fail("a send inside the close callback was not refused with WS_ECLOSED");
}

static void on_drain(struct ws_conn *c, void *arg)
{
    (void)arg;
    side_of(c, "drain outside open..close");
    g.drains++;
    ws_conn_send(c, WS_OP_TEXT, "drained", 7);
}

static void on_http(const struct ws_request *req, struct ws_response *res, void *arg)
{
    const char *method = ws_request_method(req), *path = ws_request_path(req);
    const char *query = ws_request_query(req), *name, *value, *host;
    char small[8], large[512];
    size_t n = ws_request_header_count(req), body_len = 0, plen;
    const void *body;
    int qlen;

    (void)arg;
    fuzz_touch(method, strlen(method) + 1);
    fuzz_touch(path, strlen(path) + 1);
    fuzz_touch(query, strlen(query) + 1);
    for (size_t i = 0; i <= n; i++) {
        int rc = ws_request_header_at(req, i, &name, &value);
        if (i == n ? rc != WS_ENOTFOUND : rc != 0)
            fuzz_fail("ws_request_header_at");
        if (rc == 0) {
            fuzz_touch(name, strlen(name) + 1);
            fuzz_touch(value, strlen(value) + 1);
        }
    }
    host = ws_request_header(req, "host");
    if (host != NULL)
        fuzz_touch(host, strlen(host));
    (void)ws_request_query_param(req, "a", small, sizeof(small));
    qlen = ws_request_query_param(req, "b", large, sizeof(large));
    if (qlen >= 0 && (size_t)qlen >= sizeof(large))
        fuzz_fail("query param length");
    body = ws_request_body(req, &body_len);
    if (body_len > g.max_body)
        fuzz_fail("body over max_body_size");
    fuzz_touch(body, body_len);
    fuzz_touch(ws_request_remote_addr(req), strlen(ws_request_remote_addr(req)));
    plen = strlen(path);
    switch (path[plen - 1] & 3) {
    case 0: /* no response: 404 */
        break;
    case 1:
        if (ws_response_add_header(res, "X-Fuzz", query) != 0)
            fuzz_fail("add_header");
        ws_response_send(res, 200, "application/octet-stream", body, body_len);
        break;
    case 2:
        if (ws_response_add_header(res, "Bad", "a\r\nb") != WS_EINVAL)
            fuzz_fail("header splitting accepted");
        ws_response_send(res, 204, NULL, NULL, 0);
        if (ws_response_send(res, 200, NULL, NULL, 0) != WS_ESTATE ||
            ws_response_add_header(res, "Late", "x") != WS_ESTATE)
            fuzz_fail("response sent twice");
        break;
    case 3:
        ws_response_send(res, 200, "text/plain", qlen > 0 ? large : "",
                         qlen > 0 ? (size_t)qlen : 0);
        break;
    }
}

/* ---- servers -------------------------------------------------------------- */

static struct ws_server *make_server(int kind)
{
    struct ws_config *cfg = ws_config_new();
    struct ws_server *srv;

    if (cfg == NULL)
        fuzz_fail("ws_config_new");
    ws_config_set_max_message_size(cfg, MAX_MESSAGE);
    ws_config_set_max_body_size(cfg, MAX_MESSAGE); /* small, so that it is reached */
    ws_config_set_max_head_size(cfg, 1024);
    ws_config_set_max_headers(cfg, 16);
    ws_config_set_handle_signals(cfg, 0);
    ws_config_set_max_buffered(cfg, 16384);
    switch (kind) {
    case 0: /* the defaults: deflate, no context takeover forced */
        break;
    case 1: /* context takeover kept, small window, everything compressed,
             * slow consumers closed */
        ws_config_set_deflate_no_context_takeover(cfg, 0);
        ws_config_set_deflate_window_bits(cfg, 9);
        ws_config_set_deflate_mem_level(cfg, 1);
        ws_config_set_deflate_threshold(cfg, 0);
        ws_config_set_close_slow_consumers(cfg, 1);
        ws_config_set_max_buffered(cfg, 4096);
        break;
    case 2: /* no deflate, no HTTP handler (426), few headers, small messages */
        ws_config_set_deflate(cfg, 0);
        ws_config_set_max_headers(cfg, 6);
        ws_config_set_max_message_size(cfg, 300);
        break;
    case 3: /* timeouts off but the heartbeat, context takeover, a low
             * compression threshold, large messages (with X_AMPLIFY) */
        ws_config_set_max_message_size(cfg, 256 * 1024);
        ws_config_set_max_body_size(cfg, 256 * 1024);
        ws_config_set_max_buffered(cfg, 2 * 1024 * 1024);
        ws_config_set_handshake_timeout(cfg, 0);
        ws_config_set_pong_timeout(cfg, 0);
        ws_config_set_close_timeout(cfg, 0);
        ws_config_set_deflate_threshold(cfg, 16);
        ws_config_set_deflate_no_context_takeover(cfg, 0);
        ws_config_set_deflate_window_bits(cfg, 12);
        break;
    }
    srv = ws_server_new(cfg);
    ws_config_free(cfg);
    if (srv == NULL)
        fuzz_fail("ws_server_new");
    /* The harness is the loop's thread (ws_server_run would mark it). */
    wsc__loop_mark_owner(srv->ep.loop);
    ws_server_handle_open(srv, on_open, NULL);
    ws_server_handle_data(srv, on_data, NULL);
    ws_server_handle_ping(srv, on_ping, NULL);
    ws_server_handle_pong(srv, on_pong, NULL);
    ws_server_handle_close(srv, on_close, NULL);
    ws_server_handle_drain(srv, on_drain, NULL);
    if (kind != 2)
        ws_server_handle_http(srv, on_http, NULL);
    return srv;
}

static void free_servers(void)
{
    for (int i = 0; i < NUM_SERVERS; i++) {
        ws_server_free(servers[i]);
        servers[i] = NULL;
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    for (int i = 0; i < NUM_SERVERS; i++)
        servers[i] = make_server(i);
    atexit(free_servers); /* so LeakSanitizer sees only real leaks */
    return 0;
}

/* ---- the peers ---------------------------------------------------------------- */

struct peer {
    int fd;                       /* -1 once closed (or never opened) */
    int server_fd;                /* the server's end */
    bool reading;
    bool eof;                     /* the server closed or half-closed */
    bool gone;                    /* writes fail: the server closed its end */
};

static struct peer peers[2];      /* 0: the fuzzed peer, 1: the bystander */

static void peer_read(struct peer *p)
{
    if (p->fd >= 0 && p->reading && !p->eof)
        p->eof = fuzz_peer_drain(p->fd, trace && p == &peers[0]);
}

/* One non-blocking pass of the server's loop. */
static void loop_pass(struct ws_server *srv)
{
    event_base_loop(srv->ep.loop->base, EVLOOP_NONBLOCK);
    fuzz_unpoison(); /* the next pass copies a stash into that buffer */
}

static void pump(struct ws_server *srv)
{
    loop_pass(srv);
    peer_read(&peers[0]);
    peer_read(&peers[1]);
    loop_pass(srv);
}

static void pump_arg(void *srv)
{
    pump(srv);
}

static void peer_write(struct ws_server *srv, struct peer *p, const uint8_t *data, size_t len)
{
    if (!p->gone && !fuzz_peer_write(p->fd, data, len, pump_arg, srv))
        p->gone = true;
}

static void peer_open(struct ws_server *srv, struct peer *p, int index, bool small_sndbuf)
{
    int sv[2], small = 1;
    struct ws_conn *c;
    struct side *s = index == 0 ? &g.main : &g.by;

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0)
        fuzz_fail("socketpair");
    /* The kernel's minimum: the server's writes stop short, so its
     * backlog and write events run. */
    if (small_sndbuf)
        setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
    fuzz_watch_reads(index, sv[0]);
    c = wsc__conn_new(&srv->ep, sv[0], NULL);
    if (c == NULL)
        fuzz_fail("wsc__conn_new");
    s->id = ws_conn_id(c);
    p->fd = sv[1];
    p->server_fd = sv[0];
}

static void peer_close(struct peer *p)
{
    if (p->fd >= 0)
        close(p->fd);
    p->fd = -1;
}

/* A live connection by id (NULL once released: never a dangling pointer). */
static struct ws_conn *live_conn(struct ws_server *srv, uint64_t id)
{
    for (struct ws_conn *c = srv->ep.conns; c != NULL; c = c->next)
        if (c->id == id)
            return c;
    return NULL;
}

/* A timeout elapses now: fire the connection's timer if it is armed (it
 * is, in every state, when the configured timeouts are non-zero). Firing
 * it early is exactly what the timeout would do later, without the wait. */
static void fire_timer(struct ws_server *srv)
{
    struct ws_conn *c = live_conn(srv, g.main.id);

    if (c != NULL && c->timer_slot != 0) {
        wsc__conn_arm_timer(c, 0); /* due now: the next loop pass fires it */
        pump(srv);
    }
}

/* The application acts from outside any callback, as its own code or (with
 * foreign) as another thread would: the loop's owner is unset for the call,
 * so the library takes its cross-thread path (queue + wake-up) for it. */
static void app_act(struct ws_server *srv, uint32_t r, bool foreign)
{
    static const uint8_t payload[MAX_MESSAGE] = { 'a' };
    struct ws_conn *m = live_conn(srv, g.main.id), *b = live_conn(srv, g.by.id);
    size_t len = (r >> 8) % (MAX_MESSAGE + 1);

    if (foreign)
        atomic_store(&srv->ep.loop->owner, NULL);
    switch (r & 7) {
    case 0:
        if (m != NULL)
            ws_conn_send(m, r & 0x10 ? WS_OP_TEXT : WS_OP_BINARY, payload, len);
        break;
    case 1:
        ws_server_broadcast(srv, r & 0x10 ? WS_OP_TEXT : WS_OP_BINARY, payload, len);
        break;
    case 2:
        ws_server_publish(srv, r & 0x10 ? "fuzz" : "other", WS_OP_TEXT, payload, len);
        break;
    case 3:
        if (m != NULL)
            ws_conn_ping(m, payload, len % 126);
        break;
    case 4:
        if (m != NULL)
            ws_conn_close(m, r & 0x10 ? 1000 : 3000 + (int)(len % 2000), "app");
        break;
    case 5:
        if (b != NULL)
            ws_conn_send(b, WS_OP_BINARY, payload, len);
        break;
    case 6:
        if (b != NULL)
            ws_conn_close(b, 1001, NULL);
        break;
    case 7:
        if (m != NULL)
            (void)ws_conn_buffered_amount(m);
        ws_server_broadcast(srv, WS_OP_BINARY, payload, 0);
        break;
    }
    if (foreign)
        wsc__loop_mark_owner(srv->ep.loop);
    pump(srv);
}

/* The bystander upgrades (optionally with permessage-deflate) and then
 * only listens. */
static void bystander_open(struct ws_server *srv, bool deflate, bool reads)
{
    static const char head[] = "GET /by HTTP/1.1\r\n"
                               "Host: b\r\n"
                               "Upgrade: websocket\r\n"
                               "Connection: Upgrade\r\n"
                               "Sec-WebSocket-Key: YnlzdGFuZGVyLWtleS0xNg==\r\n"
                               "Sec-WebSocket-Version: 13\r\n";
    static const char pmd[] = "Sec-WebSocket-Extensions: permessage-deflate\r\n";
    struct peer *p = &peers[1];

    peer_open(srv, p, 1, !reads);
    p->reading = true;
    g.opening = &g.by;
    peer_write(srv, p, (const uint8_t *)head, sizeof(head) - 1);
    if (deflate)
        peer_write(srv, p, (const uint8_t *)pmd, sizeof(pmd) - 1);
    peer_write(srv, p, (const uint8_t *)"\r\n", 2);
    for (int i = 0; i < 8 && g.by.opens == 0; i++)
        pump(srv);
    peer_read(p); /* the 101 */
    p->reading = reads;
    g.opening = &g.main;
}

static bool server_idle(const struct ws_server *srv)
{
    return srv->ep.num_live == 0 && srv->ep.num_queued == 0 && srv->ep.loop->head == NULL;
}

/* After the input: the connection is gone, and a referenced one refuses. */
static void side_finish(struct side *s)
{
    if (s->opens != s->closes)
        fuzz_fail("an opened connection got no close callback");
    if (s->ref != NULL) {
        if (atomic_load(&s->ref->state) != WSC__CONN_CLOSED)
            fuzz_fail("referenced connection not closed");
        fuzz_check_closed_ref(s->ref);
        s->ref = NULL;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ws_server *srv;
    struct fuzz_input in;
    bool stopped = false;
    size_t off = 0, last = 0;

    if (trace < 0)
        trace = fuzz_trace_wanted("FUZZ_CONN_TRACE");
    if (!fuzz_input_parse(&in, data, size))
        return 0;
    srv = servers[in.kind];

    memset(&g, 0, sizeof(g));
    memset(peers, 0, sizeof(peers));
    peers[0].fd = peers[1].fd = -1;
    g.srv = srv;
    g.max_message = srv->ep.cfg.max_message_size;
    g.max_body = srv->ep.cfg.max_body_size;
    g.actions = (in.flags & F_ACTIONS) != 0;
    g.hold_refs = (in.extra & X_REF) != 0;
    g.main.name = "main";
    g.by.name = "bystander";

    if (in.extra & X_BYSTANDER)
        bystander_open(srv, (in.extra & X_BY_DEFLATE) != 0, (in.extra & X_BY_NO_READ) == 0);
    g.opening = &g.main;
    peer_open(srv, &peers[0], 0, (in.flags & F_SMALL_SNDBUF) != 0);
    peers[0].reading = (in.flags & F_NO_READ) == 0;

    /* The input in pieces, the loop running between them. */
    for (unsigned piece = 0; off < in.size && !peers[0].gone; piece++) {
        size_t n = fuzz_piece_len(in.split, piece, in.size - off, &in.seed);
        peer_write(srv, &peers[0], in.data + off, n);
        last = off;
        off += n;
        pump(srv);
        if ((in.flags & F_TIMERS) && (fuzz_prng(&in.seed) & 3) == 0)
            fire_timer(srv);
        if (in.extra & X_APP)
            app_act(srv, fuzz_prng(&in.app_seed), (in.extra & X_FOREIGN) != 0);
        if ((in.extra & X_STOP) && piece == in.stop_after) {
            ws_server_stop(srv);
            stopped = true;
            pump(srv);
        }
    }
    if ((in.extra & X_AMPLIFY) && off > last) {
        static uint8_t block[AMPLIFY_BLOCK];
        size_t n = off - last, fill = 0;
        while (fill + n <= sizeof(block)) {
            memcpy(block + fill, in.data + last, n);
            fill += n;
        }
        /* Only while a large unit is pending (a body being stashed, a frame
         * being streamed): a flood of small pipelined requests or frames
         * would cost much time and teach nothing new. */
        for (int i = 0; i < AMPLIFY_TIMES && !peers[0].gone; i++) {
            struct ws_conn *c;
            peer_write(srv, &peers[0], block, fill);
            pump(srv);
            c = live_conn(srv, g.main.id);
            if (c == NULL || (wsc__stash_len(c) < AMPLIFY_BLOCK / 2 && c->frame_left == 0))
                break;
        }
    }
    if ((in.extra & X_STOP) && !stopped) {
        ws_server_stop(srv);
        stopped = true;
        pump(srv);
    }
    if (in.flags & F_TIMERS)
        for (int i = 0; i < 3; i++)
            fire_timer(srv);

    /* The end: maybe read out what is left, maybe half-close, then close. */
    if (in.flags & F_READ_OUT) {
        peers[0].reading = true;
        for (int i = 0; i < 20 && !peers[0].eof; i++)
            pump(srv);
    }
    if (in.flags & F_HALF_CLOSE) {
        shutdown(peers[0].fd, SHUT_WR);
        for (int i = 0; i < 4; i++)
            pump(srv);
    }
    peer_close(&peers[0]);
    /* A send right after the peer vanished: written before the EOF is
     * read, it fails (EPIPE) and the connection is dropped for it. */
    if (in.extra & X_APP)
        app_act(srv, fuzz_prng(&in.app_seed), (in.extra & X_FOREIGN) != 0);
    for (int i = 0; i < 4; i++)
        loop_pass(srv);
    peer_close(&peers[1]);
    for (int i = 0; i < FUZZ_DRAIN_ITERATIONS && !server_idle(srv); i++)
        loop_pass(srv);
    fuzz_watch_reads(0, -1);
    fuzz_watch_reads(1, -1);

    if (!server_idle(srv))
        fuzz_fail("connection not released after the peer closed");
    if (srv->ep.num_open != 0 || ws_server_connection_count(srv) != 0)
        fuzz_fail("open count not back to 0");
    if (srv->ep.conns != NULL)
        fuzz_fail("connection list not empty");
    for (int i = 0; i < 2; i++)
        if (peers[i].server_fd > 0 &&
            (fcntl(peers[i].server_fd, F_GETFD) != -1 || errno != EBADF))
            fuzz_fail("server socket not closed");
    side_finish(&g.main);
    side_finish(&g.by);
    if (in.extra & X_BYSTANDER && g.by.opens != 1)
        fuzz_fail("the bystander did not open");
    if (trace)
        fprintf(stderr, "\n[fuzz_conn: server %d, main %u open %u close, bystander %u open, "
                        "%u in.data, %u drain%s]\n",
                in.kind, g.main.opens, g.main.closes, g.by.opens, g.datas, g.drains,
                stopped ? ", stopped" : "");
    if (stopped) { /* a stopped server stays stopped: make a new one */
        ws_server_free(srv);
        servers[in.kind] = make_server(in.kind);
    }
    return 0;
}
