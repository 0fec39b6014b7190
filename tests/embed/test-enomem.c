/*
 * test-enomem.c - libwsc's out-of-memory paths, with allocation failures
 * injected into libwsc's own calls (enomem-wrap.c; libevent's and
 * OpenSSL's allocations are not reached, see enomem.h). Each scenario runs
 * over real sockets on 127.0.0.1 against a server on its own loop thread,
 * once with the failure and once without (so an injection that did
 * nothing fails the first's checks), and checks that libwsc's blocks all
 * come back after the server is freed:
 *  1. the kick queue cannot grow: the connection resumed with a stash is
 *     closed (peer sees EOF/RST), another one keeps echoing;
 *  2. the timer slot cannot be reserved at accept: the new connection is
 *     answered 503 and closed (its request was never read), existing ones
 *     carry on;
 *  3. broadcast cannot encode its frame: WS_ENOMEM, nobody gets a partial
 *     message, every connection keeps working; the queue array cannot
 *     grow: it degrades to direct writes and everyone gets the message;
 *  4. ws_conn_remote_addr cannot format: "unknown", then the address once
 *     memory is back;
 *  5. a large send cannot get its backlog, then the application closes the
 *     connection in the same callback: the teardown the failed send asked
 *     for is not pushed back to the close timeout (5 s here);
 *  6. with 2 worker loops, the acceptor cannot allocate the message that
 *     hands a socket to worker 1: the socket is answered 503 and closed,
 *     the connections on both workers carry on;
 *  7. with 2 worker loops, every allocation fails from ws_server_stop on:
 *     ws_server_run still returns (a worker with no connection was never
 *     told to stop when its stop message could not be allocated).
 * Then the sweeps (enomem-sweep.c with a raw client, enomem-client.c with
 * libwsc's). Prints PASS:/FAIL: lines.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <wsc.h>

#define EMBEDTEST_NAME "enomem"
#include "embedtest.h"
#include "rawws.h"
#include "enomem-srv.h"
#include "internal.h" /* the loop's timer slots, read on the loop thread */

#define NAMED 4
/* Over what the kernel takes in one write to a peer that does not read
 * (at most tcp_wmem's 4 MiB of send buffer and the peer's window), under
 * the case's max_buffered. */
#define BIG_SEND (64u << 20)
#define TIMER_CAP0 64 /* timers.c's first slot array */

static struct ws_conn *named[NAMED]; /* loop thread only */
static atomic_long last_injected;
static atomic_int last_rc;
static atomic_int bigclose_done; /* bigclose: the send and the close were made */

static void reply(struct ws_conn *c, const char *s)
{
    ws_conn_send(c, WS_OP_TEXT, s, strlen(s));
}

/* The commands the raw peers send; anything else is echoed. */
static void on_data(struct ws_conn *c, enum ws_opcode op, const void *data, size_t len,
                    void *arg)
{
    char cmd[64], out[128];
    int n = 0, f = 0;

    (void)arg;
    snprintf(cmd, sizeof(cmd), "%.*s", (int)(len < 63 ? len : 63), (const char *)data);
    if (sscanf(cmd, "id:%d", &n) == 1 && n >= 0 && n < NAMED) {
        named[n] = c;
        reply(c, "ok");
    } else if (strcmp(cmd, "stop") == 0) {
        ws_conn_pause_reading(c); /* what follows in this read waits in the stash */
        reply(c, "stop");
    } else if (sscanf(cmd, "resume:%d:%d", &n, &f) == 2 && n >= 0 && n < NAMED) {
        if (f)
            enomem_arm(ENOMEM_REALLOC, 1, 0); /* the kick queue's first array */
        ws_conn_resume_reading(named[n]);
        atomic_store(&last_injected, f ? enomem_disarm() : 0);
        reply(c, "done");
    } else if (strcmp(cmd, "worker") == 0) {
        snprintf(out, sizeof(out), "worker=%u", (unsigned)c->loop->index);
        reply(c, out);
    } else if (strcmp(cmd, "stats") == 0) {
        const struct wsc__loop *l = c->loop;
        snprintf(out, sizeof(out), "cap=%zu reserved=%zu conns=%zu", l->cap_timers,
                 l->timers_reserved, ws_server_connection_count(ws_conn_server(c)));
        reply(c, out);
    } else if (sscanf(cmd, "bcast:%d", &n) == 1) {
        int rc;
        if (n > 0)
            enomem_arm(ENOMEM_ANY, n, 0);
        rc = ws_server_broadcast(ws_conn_server(c), WS_OP_TEXT, "all", 3);
        atomic_store(&last_injected, n > 0 ? enomem_disarm() : 0);
        atomic_store(&last_rc, rc);
        reply(c, "done");
    } else if (sscanf(cmd, "bigclose:%d", &f) == 1) {
        static char big[BIG_SEND]; /* zeros */
        if (f)
            enomem_arm(ENOMEM_ANY, 1, 1); /* the backlog, and the close reason */
        atomic_store(&last_rc, ws_conn_send(c, WS_OP_BINARY, big, sizeof(big)));
        ws_conn_close(c, WS_CLOSE_NORMAL, "bye");
        atomic_store(&last_injected, f ? enomem_disarm() : 0);
        atomic_store(&bigclose_done, 1);
    } else if (sscanf(cmd, "addr:%d", &f) == 1) {
        const char *addr;
        if (f)
            enomem_arm(ENOMEM_ANY, 1, 0);
        addr = ws_conn_remote_addr(c);
        atomic_store(&last_injected, f ? enomem_disarm() : 0);
        reply(c, addr != NULL ? addr : "(null)");
    } else {
        ws_conn_send(c, op, data, len);
    }
}

/* A text reply on fd equal to want. */
static int expect(int fd, const char *want)
{
    char buf[128];
    int op = 0;
    long n = rawws_read_frame(fd, &op, buf, sizeof(buf) - 1);

    if (n >= 0 && n < (long)sizeof(buf))
        buf[n] = '\0';
    if (op == WS_OP_TEXT && n == (long)strlen(want) && memcmp(buf, want, (size_t)n) == 0)
        return 1;
    printf("# expected \"%s\", got %ld bytes \"%s\"\n", want, n, n > 0 ? buf : "");
    return 0;
}

static int command(int fd, const char *cmd, const char *want)
{
    return rawws_send(fd, WS_OP_TEXT, cmd, strlen(cmd)) == 0 && expect(fd, want);
}

static int named_peer(int port, int k)
{
    char id[16];
    int fd = rawws_open(port, 2);

    snprintf(id, sizeof(id), "id:%d", k);
    if (fd >= 0 && !command(fd, id, "ok")) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Check that the server ends fd's connection (EOF/RST) before the peer's
 * receive timeout, after at most max_got bytes; who names the peer in the
 * comment a failure prints. */
static void check_peer_ends(int fd, long max_got, const char *what, const char *who)
{
    long got;
    enum peer_end end = peer_wait_end(fd, &got);

    check(end == PEER_ENDED && got <= max_got, what);
    if (end != PEER_ENDED || got > max_got)
        printf("# %s: %s after %ld bytes\n", who, end == PEER_ENDED ? "ended" : "timed out", got);
}

static void label(char *out, size_t n, const char *scenario, int inject, const char *what)
{
    snprintf(out, n, "%s: %s: %s", scenario,
             inject ? "allocation failed" : "allocation allowed", what);
}

/* ---- 1. the kick queue cannot grow ----------------------------------------- */

static void kick_case(int inject)
{
    struct srv s;
    unsigned char wire[64];
    char what[160], cmd[32];
    int a, b;
    size_t n;

    if (srv_start(&s, on_data, NULL, NULL, 0) != 0) {
        check(0, "kick: server started");
        return;
    }
    a = named_peer(s.port, 0);
    b = named_peer(s.port, 1);
    /* "stop" pauses B; "after", read in the same recv, waits in the stash. */
    n = rawws_frame(wire, 1, WS_OP_TEXT, "stop", 4);
    n += rawws_frame(wire + n, 1, WS_OP_TEXT, "after", 5);
    label(what, sizeof(what), "kick", inject,
          "B paused itself with a frame in the stash, then A resumed it (the setup)");
    snprintf(cmd, sizeof(cmd), "resume:1:%d", inject);
    check(a >= 0 && b >= 0 && write(b, wire, n) == (ssize_t)n && expect(b, "stop") &&
              command(a, cmd, "done"), what);
    check(atomic_load(&last_injected) == inject,
          inject ? "kick: allocation failed: the kick queue's growth was the one failed"
                 : "kick: allocation allowed: nothing failed");
    if (inject) {
        check_peer_ends(b, 0,
                        "kick: allocation failed: B is closed (EOF/RST), its stashed frame "
                        "never handled",
                        "B");
    } else {
        check(expect(b, "after") && peer_echoes(b, "more"),
              "kick: allocation allowed: the resume handles B's stashed frame, B echoes");
    }
    label(what, sizeof(what), "kick", inject, "A on the same loop keeps echoing");
    check(peer_echoes(a, "still here"), what);
    close(a);
    close(b);
    label(what, sizeof(what), "kick", inject, "every libwsc block freed with the server");
    check(srv_stop(&s) == 0, what);
}

/* ---- 2. the timer slot cannot be reserved at accept ------------------------ */

static int stats_are(int fd, size_t cap, size_t reserved, size_t conns)
{
    char want[96];

    snprintf(want, sizeof(want), "cap=%zu reserved=%zu conns=%zu", cap, reserved, conns);
    return command(fd, "stats", want);
}

/* Read fd until the server ends it (EOF or RST): 1 when what came before
 * starts with want. */
static int peer_gets_then_ends(int fd, const char *want)
{
    char head[256];
    size_t got = 0, n = strlen(want);

    for (int i = 0; i < 64 && fd >= 0; i++) {
        ssize_t r = read(fd, head + got, sizeof(head) - 1 - got);
        if (r > 0 && (got += (size_t)r) < sizeof(head) - 1)
            continue;
        head[got] = '\0';
        if (r == 0 || (r < 0 && errno == ECONNRESET)) {
            if (got >= n && memcmp(head, want, n) == 0)
                return 1;
            printf("# got %zu bytes \"%.40s\" before the end\n", got, head);
            return 0;
        }
        if (r < 0 && errno != EINTR)
            break; /* the receive timeout */
        if (r > 0)
            break; /* more than a refusal */
    }
    printf("# no end after %zu bytes\n", got);
    return 0;
}

/* Connect and send an upgrade request without reading the answer. */
static int raw_request(int port)
{
    static const char req[] =
        "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n";
    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    struct timeval tv = { 2, 0 };
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    if (fd < 0)
        return -1;
    inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0 ||
        write(fd, req, sizeof(req) - 1) != (ssize_t)(sizeof(req) - 1)) {
        close(fd);
        return -1;
    }
    return fd;
}

static void timer_case(int inject)
{
    struct srv s;
    int fd[TIMER_CAP0], opened = 0, extra;
    char what[160];

    if (srv_start(&s, on_data, NULL, NULL, 0) != 0) {
        check(0, "timer: server started");
        return;
    }
    while (opened < TIMER_CAP0 && (fd[opened] = rawws_open(s.port, 2)) >= 0)
        opened++;
    label(what, sizeof(what), "timer", inject,
          "64 connections fill the first slot array (the setup)");
    check(opened == TIMER_CAP0 && stats_are(fd[0], TIMER_CAP0, TIMER_CAP0, TIMER_CAP0), what);
    if (opened < TIMER_CAP0)
        goto out;
    if (inject) /* all idle: the next realloc is the 65th's slot array growth */
        enomem_arm(ENOMEM_REALLOC, 1, 0);
    extra = raw_request(s.port);
    if (inject) {
        check(peer_gets_then_ends(extra, "HTTP/1.1 503 "),
              "timer: allocation failed: the new connection gets a 503, then EOF/RST");
        check(enomem_disarm() == 1, "timer: allocation failed: it was the one failed");
        check(stats_are(fd[0], TIMER_CAP0, TIMER_CAP0, TIMER_CAP0),
              "timer: allocation failed: no slot taken, no connection left behind");
    } else {
        char head[256] = "";
        ssize_t r = extra >= 0 ? read(extra, head, sizeof(head) - 1) : -1;
        check(r >= 12 && memcmp(head, "HTTP/1.1 101", 12) == 0,
              "timer: allocation allowed: the new connection is upgraded");
        check(stats_are(fd[0], 2 * TIMER_CAP0, TIMER_CAP0 + 1, TIMER_CAP0 + 1),
              "timer: allocation allowed: the slot array grew for it");
    }
    if (extra >= 0)
        close(extra);
    label(what, sizeof(what), "timer", inject, "existing connections keep echoing");
    check(peer_echoes(fd[0], "first") && peer_echoes(fd[TIMER_CAP0 - 1], "last"), what);
out:
    for (int i = 0; i < opened; i++)
        close(fd[i]);
    label(what, sizeof(what), "timer", inject, "every libwsc block freed with the server");
    check(srv_stop(&s) == 0, what);
}

/* ---- 3. broadcast ------------------------------------------------------------ */

/* Read text frames until want; *all set if "all" came on the way. */
static int until(int fd, const char *want, int *all)
{
    char buf[128];
    int op;

    *all = 0;
    for (int i = 0; i < 4; i++) {
        long n = rawws_read_frame(fd, &op, buf, sizeof(buf));
        if (n < 0)
            return 0;
        if (n == 3 && memcmp(buf, "all", 3) == 0)
            *all = 1;
        else if (n == (long)strlen(want) && memcmp(buf, want, (size_t)n) == 0)
            return 1;
    }
    return 0;
}

/* fail_nth: 0 none, 1 the frame's buffer, 2 the endpoint's queue array. */
static void bcast_case(int fail_nth)
{
    static const char *const name[] = { "allocation allowed", "frame allocation failed",
                                        "queue array growth failed" };
    static const int want_rc[] = { 0, WS_ENOMEM, 0 };
    struct srv s;
    char what[160], cmd[32];
    int a, b, all_a = 0, all_b = 0, got_a, got_b, rc;

    if (srv_start(&s, on_data, NULL, NULL, 0) != 0) {
        check(0, "broadcast: server started");
        return;
    }
    a = named_peer(s.port, 0);
    b = named_peer(s.port, 1);
    snprintf(cmd, sizeof(cmd), "bcast:%d", fail_nth);
    got_a = a >= 0 && rawws_send(a, WS_OP_TEXT, cmd, strlen(cmd)) == 0 && until(a, "done", &all_a);
    /* B's own echo comes after anything broadcast before it. */
    got_b = b >= 0 && rawws_send(b, WS_OP_TEXT, "x", 1) == 0 && until(b, "x", &all_b);
    rc = atomic_load(&last_rc);
    snprintf(what, sizeof(what), "broadcast: %s: returns %d (%s), %d allocation(s) failed",
             name[fail_nth], want_rc[fail_nth], ws_strerror(want_rc[fail_nth]),
             fail_nth > 0);
    check(got_a && got_b && rc == want_rc[fail_nth] &&
              atomic_load(&last_injected) == (fail_nth > 0), what);
    if (rc != want_rc[fail_nth])
        printf("# it returned %d\n", rc);
    snprintf(what, sizeof(what), "broadcast: %s: %s", name[fail_nth],
             want_rc[fail_nth] == 0 ? "both connections get the message"
                                    : "no connection gets any of it");
    check(want_rc[fail_nth] == 0 ? all_a && all_b : !all_a && !all_b, what);
    snprintf(what, sizeof(what), "broadcast: %s: both connections keep echoing",
             name[fail_nth]);
    check(peer_echoes(a, "a again") && peer_echoes(b, "b again"), what);
    close(a);
    close(b);
    snprintf(what, sizeof(what), "broadcast: %s: every libwsc block freed with the server",
             name[fail_nth]);
    check(srv_stop(&s) == 0, what);
}

/* ---- 4. ws_conn_remote_addr -------------------------------------------------- */

static void addr_case(void)
{
    struct srv s;
    struct sockaddr_in sin;
    socklen_t slen = sizeof(sin);
    char mine[64];
    int a;

    if (srv_start(&s, on_data, NULL, NULL, 0) != 0) {
        check(0, "addr: server started");
        return;
    }
    a = rawws_open(s.port, 2);
    getsockname(a, (struct sockaddr *)&sin, &slen);
    snprintf(mine, sizeof(mine), "127.0.0.1:%u", (unsigned)ntohs(sin.sin_port));
    check(a >= 0 && command(a, "addr:1", "unknown") && atomic_load(&last_injected) == 1,
          "addr: allocation failed: ws_conn_remote_addr returns \"unknown\"");
    check(command(a, "addr:0", mine) && atomic_load(&last_injected) == 0,
          "addr: allocation allowed: the peer's address, made then");
    check(command(a, "addr:1", mine) && atomic_load(&last_injected) == 0,
          "addr: once made it is kept: no allocation to fail");
    check(peer_echoes(a, "still here"), "addr: the connection keeps echoing");
    close(a);
    check(srv_stop(&s) == 0, "addr: every libwsc block freed with the server");
}

/* ---- 5. a failed send, then a close in the same callback --------------------- */

static void send_close_case(int inject)
{
    struct srv s;
    char what[160], cmd[32];
    unsigned char head[2] = {0, 0};
    int a, b, op = 0, started;
    long n;

    srv_close_timeout_ms = 5000; /* longer than the peer's 2 s wait */
    srv_max_buffered = 128u << 20;
    started = srv_start(&s, on_data, NULL, NULL, 0) == 0;
    srv_close_timeout_ms = 200;
    srv_max_buffered = 0;
    if (!started) {
        check(0, "send+close: server started");
        return;
    }
    a = named_peer(s.port, 0);
    b = named_peer(s.port, 1);
    snprintf(cmd, sizeof(cmd), "bigclose:%d", inject);
    label(what, sizeof(what), "send+close", inject,
          "A asks for a 64 MiB message and a close in one callback (not reading meanwhile)");
    atomic_store(&bigclose_done, 0);
    check(a >= 0 && b >= 0 && rawws_send(a, WS_OP_TEXT, cmd, strlen(cmd)) == 0, what);
    /* The message must not fit in the two sockets' buffers, or nothing
     * needs the backlog whose allocation is failed: BIG_SEND is over what
     * they hold while A does not read, and A does not read before the
     * callback returned (reading meanwhile let one write take it whole). */
    for (int i = 0; i < 2000 && !atomic_load(&bigclose_done); i++)
        sleep_ms(1);
    label(what, sizeof(what), "send+close", inject, "the callback sent and closed within 2 s");
    check(atomic_load(&bigclose_done), what);
    if (inject) {
        /* The end comes after the callback's last store: read the count after it. */
        check_peer_ends(a, (long)BIG_SEND - 1,
                        "send+close: allocation failed: A is closed at once (EOF/RST), not "
                        "after the 5 s close timeout",
                        "A");
        check(atomic_load(&last_injected) > 0,
              "send+close: allocation failed: the backlog's allocation was failed");
    } else {
        n = rawws_read_frame(a, &op, head, sizeof(head));
        check(atomic_load(&last_rc) == 0 && op == WS_OP_BINARY && n == (long)BIG_SEND,
              "send+close: allocation allowed: A reads the whole 64 MiB message");
        n = rawws_read_frame(a, &op, head, sizeof(head));
        check(op == WS_OP_CLOSE && n >= 2 && head[0] == 0x03 && head[1] == 0xe8,
              "send+close: allocation allowed: then the close frame (1000)");
    }
    label(what, sizeof(what), "send+close", inject, "B on the same loop keeps echoing");
    check(peer_echoes(b, "still here"), what);
    if (a >= 0)
        close(a);
    if (b >= 0)
        close(b);
    label(what, sizeof(what), "send+close", inject, "every libwsc block freed with the server");
    check(srv_stop(&s) == 0, what);
}

/* ---- 6. the hand-out message to another worker cannot be allocated ---------- */

#define HANDOUT_PEERS 4 /* dealt in turn over 2 workers, 3 are enough */

/* The worker loop fd's connection runs on, or -1. */
static int worker_of(int fd)
{
    char buf[32];
    int op = 0;
    unsigned w;
    long n;

    if (fd < 0 || rawws_send(fd, WS_OP_TEXT, "worker", 6) != 0)
        return -1;
    n = rawws_read_frame(fd, &op, buf, sizeof(buf) - 1);
    if (op != WS_OP_TEXT || n < 0 || n >= (long)sizeof(buf))
        return -1;
    buf[n] = '\0';
    return sscanf(buf, "worker=%u", &w) == 1 ? (int)w : -1;
}

/* The response head to raw_request, byte by byte so no frame byte is
 * consumed: 1 if it is a 101. */
static int peer_upgraded(int fd)
{
    char head[512];
    size_t got = 0;

    while (fd >= 0 && got < sizeof(head) - 1 && read(fd, head + got, 1) == 1) {
        head[++got] = '\0';
        if (got >= 4 && memcmp(head + got - 4, "\r\n\r\n", 4) == 0)
            break;
    }
    return got >= 12 && memcmp(head, "HTTP/1.1 101", 12) == 0;
}

/* libwsc made no allocation call for 20 ms (tried for at most 1 s): the
 * wrapper counts every thread's calls, so nothing else takes the armed one. */
static int srv_idle(void)
{
    for (int i = 0; i < 50; i++) {
        long before = enomem_calls();
        sleep_ms(20);
        if (enomem_calls() == before)
            return 1;
    }
    return 0;
}

/* The test's server with worker 0 and worker 1; false (and a FAIL) if it
 * did not start. */
static int srv_start_two_workers(struct srv *s, const char *scenario)
{
    char what[96];
    int ok;

    srv_threads = 2;
    ok = srv_start(s, on_data, NULL, NULL, 0) == 0;
    srv_threads = 1;
    if (!ok) {
        snprintf(what, sizeof(what), "%s: server started", scenario);
        check(0, what);
    }
    return ok;
}

static void handout_case(int inject)
{
    struct srv s;
    int fd[HANDOUT_PEERS], on[HANDOUT_PEERS], opened = 0, w1 = -1, extra = -1, ok;
    char what[160];

    if (!srv_start_two_workers(&s, "hand-out"))
        return;
    /* Worker 0 adopts its sockets directly; a socket for worker 1 needs the
     * acceptor's malloc'd message. Connect until one is on worker 1 and the
     * last on worker 0: the next socket is dealt to worker 1. */
    while (opened < HANDOUT_PEERS && (fd[opened] = rawws_open(s.port, 2)) >= 0) {
        on[opened] = worker_of(fd[opened]);
        if (on[opened] == 1 && w1 < 0)
            w1 = opened;
        if (on[opened++] == 0 && w1 >= 0)
            break;
    }
    ok = opened > 0 && on[0] == 0 && w1 >= 0 && on[opened - 1] == 0;
    label(what, sizeof(what), "hand-out", inject,
          "peers on both workers, the last on worker 0, the server idle (the setup)");
    check(ok && srv_idle(), what);
    if (!ok)
        goto out;
    if (inject) /* idle: the next malloc is the acceptor's, for the next socket */
        enomem_arm(ENOMEM_MALLOC, 1, 0);
    extra = raw_request(s.port);
    if (inject) {
        int next;
        check(peer_gets_then_ends(extra, "HTTP/1.1 503 "),
              "hand-out: allocation failed: the new connection gets a 503, then EOF/RST");
        check(enomem_disarm() == 1, "hand-out: allocation failed: it was the one failed");
        check(stats_are(fd[w1], TIMER_CAP0, 1, (size_t)opened),
              "hand-out: allocation failed: worker 1 took no slot, no connection left behind");
        /* The 503 could also come from worker 0's adoption: show it was not. */
        next = rawws_open(s.port, 2);
        check(worker_of(next) == 0,
              "hand-out: allocation failed: it had worker 1's turn (the next is on worker 0)");
        if (next >= 0)
            close(next);
    } else {
        check(peer_upgraded(extra) && worker_of(extra) == 1,
              "hand-out: allocation allowed: the new connection is upgraded on worker 1");
        check(stats_are(fd[w1], TIMER_CAP0, 2, (size_t)opened + 1),
              "hand-out: allocation allowed: worker 1 has both connections");
    }
    if (extra >= 0)
        close(extra);
    label(what, sizeof(what), "hand-out", inject, "connections on both workers keep echoing");
    check(peer_echoes(fd[0], "worker 0") && peer_echoes(fd[w1], "worker 1"), what);
out:
    for (int i = 0; i < opened; i++)
        close(fd[i]);
    label(what, sizeof(what), "hand-out", inject, "every libwsc block freed with the server");
    check(srv_stop(&s) == 0, what);
}

/* ---- 7. stopping a server with workers, out of memory ------------------------ */

static void stop_case(int inject)
{
    struct srv s;
    int fd, returned = 0, runs;
    char what[160];

    if (!srv_start_two_workers(&s, "stop"))
        return;
    fd = rawws_open(s.port, 2); /* worker 0's: worker 1 has none to end it */
    label(what, sizeof(what), "stop", inject, "one connection, the server idle (the setup)");
    check(fd >= 0 && srv_idle(), what);
    runs = atomic_load(&srv_runs_returned);
    if (inject)
        enomem_arm(ENOMEM_ANY, 1, 1);
    ws_server_stop(s.ws);
    for (int i = 0; i < 250 && !returned; i++) {
        sleep_ms(20);
        returned = atomic_load(&srv_runs_returned) > runs;
    }
    if (inject)
        enomem_disarm();
    label(what, sizeof(what), "stop", inject,
          "ws_server_run returns within 5 s: every worker loop stopped");
    check(returned, what);
    if (!returned) { /* its thread cannot be joined: nothing more to check */
        printf("FAIL: enomem stop: abandoned (a worker loop never stopped)\n");
        exit(1);
    }
    if (fd >= 0)
        close(fd);
    label(what, sizeof(what), "stop", inject, "every libwsc block freed with the server");
    check(srv_stop(&s) == 0, what);
}

int main(int argc, char **argv)
{
    int only_sweep = argc > 1 && strcmp(argv[1], "--sweep") == 0;

    setvbuf(stdout, NULL, _IOLBF, 0);
    if (!only_sweep) {
        kick_case(0);
        kick_case(1);
        timer_case(0);
        timer_case(1);
        bcast_case(0);
        bcast_case(1);
        bcast_case(2);
        addr_case();
        send_close_case(0);
        send_close_case(1);
        handout_case(0);
        handout_case(1);
        stop_case(0);
        stop_case(1);
    }
    failures += enomem_sweep();
    failures += enomem_client_sweep();
    return failures != 0;
}
