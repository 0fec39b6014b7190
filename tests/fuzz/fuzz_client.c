/*
 * fuzz_client.c - libFuzzer target: arbitrary bytes from a server into a real
 * libwsc client connection, through a real socket.
 *
 * For each input the client connects with the public API
 * (ws_client_connect("ws://127.0.0.1:9/fuzz")); connect() is wrapped
 * (-Wl,--wrap=connect) so that the client's socket becomes one end of a
 * socketpair(AF_UNIX, SOCK_STREAM) instead of a TCP connection (no ports,
 * no TIME_WAIT, deterministic). The harness plays the server on the other
 * end: it reads the client's upgrade request, writes the input in pieces
 * (the upgrade response and frames), runs the client's event loop between
 * them, reads (or, on purpose, does not read) what the client sends, then
 * closes its end and runs the loop until the client has given up. So the
 * client's whole input path runs as in production: io.c (connect, read,
 * stash), client.c + http.c (the response head, RFC 6455 4.1 checks,
 * Sec-WebSocket-Accept/-Extensions/-Protocol), extension.c (the server's
 * permessage-deflate answer), message.c + frame.h (unmasked frames,
 * fragmentation, control frames, close codes, UTF-8), deflate.c, and what
 * an application does from its callbacks (echo, ping, close, stop).
 *
 * RAND_bytes is wrapped too (-Wl,--wrap=RAND_bytes): the client's key, and
 * so the Sec-WebSocket-Accept it expects, is fixed, and make-corpus.py can
 * write valid responses. (Masks are fixed as well; nothing here depends on
 * their being unpredictable.)
 *
 * Input layout (make-corpus.py --client writes seeds in it):
 *   byte 0  flags
 *           bits 0-1  which client (configuration), see make_client()
 *           bit 2     do not read the client's output until the end
 *           bit 3     the callbacks act (echo, ping, close, stop: by payload)
 *           bit 4     small SO_SNDBUF on the client's socket (backlog)
 *           bit 5     at the end, read everything before closing
 *           bit 6     at the end, half-close (SHUT_WR) first
 *           bit 7     timeouts elapse: the connection's timer fires after
 *                     some pieces and three times at the end
 *   byte 1  split: bits 6-7 piece-size class (whole, <= 16, <= 256,
 *           <= 2048 bytes), bits 0-5 seed of the piece-size PRNG
 *   byte 2  extras
 *           bit 0     between pieces the application sends, pings or closes
 *           bit 1     ws_client_stop() after one of the first pieces
 *           bit 2     the application holds a reference to the connection
 *                     (ws_conn_ref) and uses it after the close
 *           bit 3     do not read the request before answering
 *   rest    the bytes the server sends
 *
 * Invariants (abort() = a finding): every attempt ends with exactly one
 * give-up callback and the connection released, its socket closed; at most
 * one open, and only if the input holds the expected Sec-WebSocket-Accept;
 * an open gets exactly one close callback and no callback comes outside
 * open..close; the subprotocol is "" or one that was offered; delivered
 * messages are within max_message_size, text is valid UTF-8, control
 * payloads are at most 125 bytes, close reasons at most 123; calls on a
 * closed, referenced connection return WS_ECLOSED. LeakSanitizer checks for
 * leaks per input and at exit.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/evp.h>

#include "internal.h"
#include "fuzz_common.h"

#define NUM_CLIENTS 4
#define FUZZ_PORT 9              /* the address connect() turns into a socketpair */
#define SUBPROTOCOLS "chat, superchat"
/* base64 of the 16 bytes __wrap_RAND_bytes gives the key, and its accept. */
#define FUZZ_ACCEPT_LEN WSC__ACCEPT_LEN

/* byte 2 */
#define X_APP 0x01
#define X_STOP 0x02
#define X_REF 0x04
#define X_NO_REQUEST 0x08

static struct ws_client *clients[NUM_CLIENTS];
static size_t client_max_message[NUM_CLIENTS];
static char expected_accept[FUZZ_ACCEPT_LEN + 1];
static int trace = -1;            /* FUZZ_CLIENT_TRACE=1: client output on stderr */

/* Per-input state. */
static struct {
    struct ws_client *cl;
    size_t max_message;
    bool actions, hold_refs, small_sndbuf;
    const uint8_t *input;
    size_t input_len;
    int peer_fd, client_fd;       /* the socketpair; -1 when closed / none */
    bool peer_reading, peer_eof, peer_gone;
    struct ws_conn *ref;
    unsigned opens, closes, give_ups, connects;
    bool closed;
} g;

const char *const fuzz_target_name = "fuzz_client";

/* ---- wrapped libc / OpenSSL calls ------------------------------------------------ */

int __real_connect(int fd, const struct sockaddr *sa, socklen_t len);
int __wrap_connect(int fd, const struct sockaddr *sa, socklen_t len);
int __wrap_connect(int fd, const struct sockaddr *sa, socklen_t len)
{
    const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
    int sv[2], small = 1;

    if (sa->sa_family != AF_INET || ntohs(in->sin_port) != FUZZ_PORT)
        return __real_connect(fd, sa, len);
    g.connects++;
    if (g.peer_fd >= 0 || g.connects > 1) { /* one attempt per input */
        errno = ECONNREFUSED;
        return -1;
    }
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0)
        fuzz_fail("socketpair");
    /* The client's socket now is our end's partner: same fd, non-blocking
     * (the flag belongs to the shared file description). */
    if (dup2(sv[0], fd) < 0)
        fuzz_fail("dup2");
    close(sv[0]);
    if (g.small_sndbuf)
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
    g.client_fd = fd;
    g.peer_fd = sv[1];
    fuzz_watch_reads(0, fd);
    errno = EINPROGRESS; /* as a TCP connect would: completion is a write event */
    return -1;
}

int __wrap_RAND_bytes(unsigned char *buf, int num);
int __wrap_RAND_bytes(unsigned char *buf, int num)
{
    for (int i = 0; i < num; i++)
        buf[i] = (unsigned char)(i * 37 + 11);
    return 1;
}

/* ---- callbacks ------------------------------------------------------------ */

static void check_live(struct ws_conn *c, const char *event)
{
    if (g.opens != 1 || g.closed || ws_conn_client(c) != g.cl)
        fuzz_fail(event);
}

static bool input_has_accept(void)
{
    size_t n = strlen(expected_accept);

    for (size_t i = 0; i + n <= g.input_len; i++)
        if (memcmp(g.input + i, expected_accept, n) == 0)
            return true;
    return false;
}

static bool subprotocol_offered(const char *p)
{
    return p[0] == '\0' || strcmp(p, "chat") == 0 || strcmp(p, "superchat") == 0;
}

static void on_open(struct ws_conn *c, void *arg)
{
    (void)arg;
    if (g.opens++ > 0 || g.closed)
        fuzz_fail("a second open");
    if (!input_has_accept())
        fuzz_fail("opened without the expected Sec-WebSocket-Accept");
    if (ws_conn_client(c) != g.cl || ws_conn_server(c) != NULL || ws_client_conn(g.cl) != c)
        fuzz_fail("ws_conn_client/ws_conn_server/ws_client_conn");
    if (!subprotocol_offered(ws_conn_subprotocol(c)))
        fuzz_fail("a subprotocol that was not offered");
    fuzz_touch(ws_conn_remote_addr(c), strlen(ws_conn_remote_addr(c)));
    if (g.hold_refs) {
        ws_conn_ref(c);
        g.ref = c;
    }
    if (g.actions)
        ws_conn_send(c, WS_OP_TEXT, "hello from the client, compressible compressible", 48);
}

static void on_data(struct ws_conn *c, enum ws_opcode op, const void *data, size_t len,
                    void *arg)
{
    const uint8_t *d = data;

    (void)arg;
    check_live(c, "data outside open..close");
    fuzz_check_data(op, data, len, g.max_message);
    if (!g.actions || len == 0) {
        ws_conn_send(c, op, data, len); /* echo */
        return;
    }
    switch (d[0] & 7) {
    case 0:
    case 1:
        ws_conn_send(c, op, data, len);
        break;
    case 2:
        ws_conn_ping(c, data, len < 125 ? len : 125);
        break;
    case 3:
        ws_conn_close(c, 1000 + (len & 3), len > 1 && d[1] & 1 ? "bye" : NULL);
        if (ws_conn_send(c, op, data, len) != WS_ECLOSED)
            fuzz_fail("a send after close was not refused");
        break;
    case 4:
        ws_client_stop(g.cl);
        break;
    case 5: /* fill the backlog: WS_EAGAIN, drain */
        for (int i = 0; i < 16; i++)
            if (ws_conn_send(c, WS_OP_BINARY, data, len) != 0)
                break;
        break;
    case 6:
        (void)ws_conn_buffered_amount(c);
        ws_conn_send(c, WS_OP_TEXT, "", 0);
        break;
    case 7:
        ws_conn_close(c, 4000 + d[len - 1], "going");
        break;
    }
}

static void on_control(struct ws_conn *c, const void *data, size_t len, void *arg)
{
    (void)arg;
    check_live(c, "ping/pong outside open..close");
    fuzz_check_control(data, len, "control payload over 125 bytes");
}

static void on_close(struct ws_conn *c, const struct ws_close_info *info, void *arg)
{
    (void)arg;
    check_live(c, "close without open, or twice");
    g.closed = true;
    g.closes++;
    fuzz_check_close_info(info);
    if (ws_conn_send(c, WS_OP_TEXT, "late", 4) != WS_ECLOSED)
        fuzz_fail("a send inside the close callback was not refused with WS_ECLOSED");
}

static void on_drain(struct ws_conn *c, void *arg)
{
    (void)arg;
    check_live(c, "drain outside open..close");
    ws_conn_send(c, WS_OP_BINARY, "drained", 7);
}

static void on_give_up(struct ws_client *cl, int error, void *arg)
{
    (void)arg;
    (void)error;
    if (cl != g.cl)
        fuzz_fail("give-up for another client");
    g.give_ups++;
}

/* ---- clients -------------------------------------------------------------- */

static struct ws_client *make_client(int kind)
{
    struct ws_config *cfg = ws_config_new();
    struct ws_client *cl;

    if (cfg == NULL)
        fuzz_fail("ws_config_new");
    ws_config_set_max_message_size(cfg, 4096);
    ws_config_set_max_head_size(cfg, 1024);
    ws_config_set_max_headers(cfg, 16);
    ws_config_set_handle_signals(cfg, 0);
    ws_config_set_max_buffered(cfg, 16384);
    switch (kind) {
    case 0: /* defaults: deflate offered with no context takeover */
        break;
    case 1: /* context takeover allowed, small window, everything compressed */
        ws_config_set_deflate_no_context_takeover(cfg, 0);
        ws_config_set_deflate_window_bits(cfg, 9);
        ws_config_set_deflate_threshold(cfg, 0);
        ws_config_set_close_slow_consumers(cfg, 1);
        ws_config_set_max_buffered(cfg, 4096);
        break;
    case 2: /* no deflate, few headers, small messages */
        ws_config_set_deflate(cfg, 0);
        ws_config_set_max_headers(cfg, 6);
        ws_config_set_max_message_size(cfg, 300);
        break;
    case 3: /* no timeouts but the heartbeat, large messages */
        ws_config_set_max_message_size(cfg, 256 * 1024);
        ws_config_set_connect_timeout(cfg, 0);
        ws_config_set_pong_timeout(cfg, 0);
        ws_config_set_close_timeout(cfg, 0);
        ws_config_set_deflate_threshold(cfg, 16);
        ws_config_set_deflate_no_context_takeover(cfg, 0);
        break;
    }
    cl = ws_client_new(cfg);
    ws_config_free(cfg);
    if (cl == NULL)
        fuzz_fail("ws_client_new");
    client_max_message[kind] = ((struct wsc__endpoint *)(void *)cl)->cfg.max_message_size;
    if (kind != 2 && ws_client_set_subprotocols(cl, SUBPROTOCOLS) != 0)
        fuzz_fail("ws_client_set_subprotocols");
    if (kind == 1 && ws_client_add_header(cl, "X-Fuzz", "1") != 0)
        fuzz_fail("ws_client_add_header");
    ws_client_handle_open(cl, on_open, NULL);
    ws_client_handle_data(cl, on_data, NULL);
    ws_client_handle_ping(cl, on_control, NULL);
    ws_client_handle_pong(cl, on_control, NULL);
    ws_client_handle_close(cl, on_close, NULL);
    ws_client_handle_drain(cl, on_drain, NULL);
    ws_client_handle_give_up(cl, on_give_up, NULL);
    return cl;
}

static void free_clients(void)
{
    for (int i = 0; i < NUM_CLIENTS; i++) {
        ws_client_free(clients[i]);
        clients[i] = NULL;
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    uint8_t raw[16];
    char key[25];

    (void)argc;
    (void)argv;
    for (int i = 0; i < NUM_CLIENTS; i++)
        clients[i] = make_client(i);
    __wrap_RAND_bytes(raw, sizeof(raw));
    EVP_EncodeBlock((unsigned char *)key, raw, sizeof(raw));
    if (wsc__handshake_accept(key, 24, expected_accept) != 0)
        fuzz_fail("accept");
    atexit(free_clients);
    return 0;
}

/* ---- the server's side ------------------------------------------------------- */

static struct event_base *base_of(void)
{
    return ws_client_event_base(g.cl);
}

static void loop_pass(void)
{
    event_base_loop(base_of(), EVLOOP_NONBLOCK);
    fuzz_unpoison();
}

static void peer_read(bool force)
{
    if (g.peer_fd >= 0 && !g.peer_eof && (g.peer_reading || force))
        g.peer_eof = fuzz_peer_drain(g.peer_fd, trace);
}

static void pump(void)
{
    loop_pass();
    peer_read(false);
    loop_pass();
}

static void pump_arg(void *unused)
{
    (void)unused;
    pump();
}

static void peer_write(const uint8_t *data, size_t len)
{
    if (!g.peer_gone && g.peer_fd >= 0 && !fuzz_peer_write(g.peer_fd, data, len, pump_arg, NULL))
        g.peer_gone = true;
}

static struct ws_conn *attempt(void)
{
    return ((struct wsc__endpoint *)(void *)g.cl)->conns;
}

/* A timeout elapses now: fire the connection's timer if it is armed. */
static void fire_timer(void)
{
    struct ws_conn *c = attempt();

    if (c != NULL && c->timer_slot != 0) {
        wsc__conn_arm_timer(c, 0); /* due now: the next loop pass fires it */
        pump();
    }
}

/* The application acts from outside any callback. */
static void app_act(uint32_t r)
{
    static const uint8_t payload[4096] = { 'a' };
    struct ws_conn *c = ws_client_conn(g.cl);
    size_t len = (r >> 8) % (sizeof(payload) + 1);

    if (c == NULL)
        return;
    switch (r & 3) {
    case 0:
        ws_conn_send(c, r & 0x10 ? WS_OP_TEXT : WS_OP_BINARY, payload, len);
        break;
    case 1:
        ws_conn_ping(c, payload, len % 126);
        break;
    case 2:
        ws_conn_close(c, r & 0x10 ? 1000 : 3000 + (int)(len % 2000), "app");
        break;
    case 3:
        (void)ws_conn_buffered_amount(c);
        break;
    }
    pump();
}

static bool client_idle(void)
{
    const struct wsc__endpoint *ep = (const struct wsc__endpoint *)(const void *)g.cl;
    return ep->conns == NULL && ep->num_live == 0 && ep->num_queued == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_input in;
    size_t off = 0;
    int rc;

    if (trace < 0)
        trace = fuzz_trace_wanted("FUZZ_CLIENT_TRACE");
    if (!fuzz_input_parse(&in, data, size))
        return 0;

    memset(&g, 0, sizeof(g));
    g.cl = clients[in.kind];
    g.max_message = client_max_message[in.kind];
    g.actions = (in.flags & F_ACTIONS) != 0;
    g.hold_refs = (in.extra & X_REF) != 0;
    g.small_sndbuf = (in.flags & F_SMALL_SNDBUF) != 0;
    g.input = in.data;
    g.input_len = in.size;
    g.peer_fd = g.client_fd = -1;
    g.peer_reading = (in.flags & F_NO_READ) == 0;

    rc = ws_client_connect(g.cl, "ws://127.0.0.1:9/fuzz?x=1");
    if (rc != 0)
        fuzz_fail("ws_client_connect");
    if (g.peer_fd < 0)
        fuzz_fail("connect() was not intercepted");
    /* The connect completes: the client writes its request. */
    pump();
    if (!(in.extra & X_NO_REQUEST))
        peer_read(true);

    for (unsigned piece = 0; off < in.size && !g.peer_gone; piece++) {
        size_t n = fuzz_piece_len(in.split, piece, in.size - off, &in.seed);
        peer_write(in.data + off, n);
        off += n;
        pump();
        if ((in.flags & F_TIMERS) && (fuzz_prng(&in.seed) & 3) == 0)
            fire_timer();
        if (in.extra & X_APP)
            app_act(fuzz_prng(&in.app_seed));
        if ((in.extra & X_STOP) && piece == in.stop_after) {
            ws_client_stop(g.cl);
            pump();
        }
    }
    if (in.flags & F_TIMERS)
        for (int i = 0; i < 3; i++)
            fire_timer();
    if (in.flags & F_READ_OUT) {
        g.peer_reading = true;
        for (int i = 0; i < 20 && !g.peer_eof; i++)
            pump();
    }
    if ((in.flags & F_HALF_CLOSE) && g.peer_fd >= 0) {
        shutdown(g.peer_fd, SHUT_WR);
        for (int i = 0; i < 4; i++)
            pump();
    }
    if (g.peer_fd >= 0)
        close(g.peer_fd);
    g.peer_fd = -1;
    if (in.extra & X_APP)
        app_act(fuzz_prng(&in.app_seed));
    for (int i = 0; i < FUZZ_DRAIN_ITERATIONS && (!client_idle() || g.give_ups == 0); i++)
        loop_pass();

    if (!client_idle())
        fuzz_fail("connection not released after the server closed");
    if (g.give_ups != 1)
        fuzz_fail("not exactly one give-up callback");
    if (ws_client_conn(g.cl) != NULL)
        fuzz_fail("ws_client_conn after the end");
    if (g.opens != g.closes)
        fuzz_fail("an opened connection got no close callback");
    if (g.client_fd >= 0 && (fcntl(g.client_fd, F_GETFD) != -1 || errno != EBADF))
        fuzz_fail("client socket not closed");
    if (g.ref != NULL) {
        fuzz_check_closed_ref(g.ref);
        g.ref = NULL;
    }
    if (trace)
        fprintf(stderr, "\n[fuzz_client: client %d, %u open %u close, %u give-up]\n", in.kind,
                g.opens, g.closes, g.give_ups);
    g.client_fd = -1;
    fuzz_watch_reads(0, -1);
    return 0;
}
