/*
 * test-shortpath.c - the refusal side of the short send path
 * (wsc__io_send_short): small sends made from inside a connection's own
 * read pass go straight into the thread's cork, and must meet the same
 * admission limits as any other send.
 *
 * 1. max_buffered: the data callback answers one message with a burst of
 *    small sends. Those whose frames (2-byte headers included) fit under
 *    max_buffered return 0, the first that does not returns WS_EAGAIN, and
 *    the room left is tested on both sides (a send that fills it exactly is
 *    accepted, one byte more is refused). Run with max_buffered equal to
 *    the accepted total and one byte less. The client receives exactly the
 *    accepted frames, in order, byte for byte; the drain callback follows
 *    and a send from it is accepted. The same burst to a second connection
 *    (not the short path) is all accepted.
 * 2. max_buffered_total: a connection that does not read holds a backlog
 *    that leaves the loop's share (the whole budget with one loop) a known
 *    room; a short-path send one byte over it is refused, one that fills it
 *    exactly is accepted, and then even an empty frame is refused (the
 *    frame corked in this pass counts). No drain callback comes while the
 *    slow peer's backlog fills the budget; once that backlog is gone (the
 *    peer resets), it comes and a send from it is accepted.
 * Prints PASS:/FAIL: lines.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <wsc.h>

#define EMBEDTEST_NAME "shortpath"
#include "embedtest.h"
#include "rawws.h"

#define BURST 70         /* sends in one read pass */
#define P 14             /* their payload: a 16-byte frame */
#define FRAME (P + 2)
#define MAXSENDS (BURST + 4)
#define BUDGET (64u * 1024u)
#define FILL_STEPS 16384 /* bound on the sends that fill the slow peer */
#define BIG 16384

enum mode { MODE_CAP, MODE_BUDGET };

/* One send made on the loop thread: its payload length and result. */
struct sent {
    size_t len;
    int rc;
};

static struct {
    pthread_mutex_t mu;
    enum mode mode;
    struct ws_conn *conns[2]; /* in order of opening: A, B */
    int nconns;
    struct sent a[MAXSENDS]; /* A's sends in its burst pass */
    int na;
    int b_rc[BURST];          /* the burst's copy to B */
    int nb;
    long room;                /* MODE_BUDGET: the budget's room left for A */
    int fill_ok;              /* MODE_BUDGET: B filled without a refusal */
    int burst_done;
    int drains_a;             /* drain callbacks for A */
    int drain_rc;             /* the send from A's drain callback */
    size_t b_at_drain;        /* B's output when A's drain came */
    int end_rc[2];
} st = { .mu = PTHREAD_MUTEX_INITIALIZER };

static struct ws_server *srv;

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Payload of send i: ASCII (valid text) that differs from send to send. */
static void payload(int i, char *buf, size_t len)
{
    for (size_t j = 0; j < len; j++)
        buf[j] = (char)('a' + (i * 7 + (int)j) % 26);
}

static void on_open(struct ws_conn *c, void *arg)
{
    (void)arg;
    pthread_mutex_lock(&st.mu);
    if (st.nconns < 2) {
        ws_conn_ref(c);
        st.conns[st.nconns++] = c;
    }
    pthread_mutex_unlock(&st.mu);
}

/* A's send of i's payload, len bytes, recorded (mutex held). */
static void send_a(struct ws_conn *a, int i, size_t len)
{
    char buf[256];

    payload(i, buf, len);
    st.a[st.na].len = len;
    st.a[st.na++].rc = ws_conn_send(a, WS_OP_TEXT, buf, len);
}

/* MODE_CAP, in A's pass: the burst, then the room it leaves, both sides. */
static void burst_cap(struct ws_conn *a, struct ws_conn *b)
{
    char buf[P];
    size_t room = (size_t)st.room; /* max_buffered, set by main */

    for (int i = 0; i < BURST; i++) {
        send_a(a, i, P);
        if (st.a[i].rc == 0 && room >= FRAME)
            room -= FRAME; /* counted here, not asked of the library */
    }
    if (room >= 2) {
        send_a(a, BURST, room - 1); /* one byte over: refused */
        send_a(a, BURST + 1, room - 2); /* fills it exactly */
    }
    send_a(a, BURST + 2, 0); /* no room left even for an empty frame */
    /* B is not this pass's connection: the general path, its own limit. */
    for (int i = 0; b != NULL && i < BURST; i++) {
        payload(i, buf, P);
        st.b_rc[st.nb++] = ws_conn_send(b, WS_OP_TEXT, buf, P);
    }
}

/* MODE_BUDGET, in A's pass: fill B (which does not read) until the
 * budget's room is 150..200 bytes (each step aims at 150; B's backlog
 * grows by at most the frame), then A's sends on both sides of it. */
static void burst_budget(struct ws_conn *a, struct ws_conn *b)
{
    static char big[BIG + 4];
    long room = BUDGET;
    int steps = 0;

    st.fill_ok = 1;
    memset(big, 'f', sizeof(big));
    /* B's output counts for the budget once the kernel holds no more. */
    while ((room = (long)BUDGET - (long)ws_conn_buffered_amount(b)) > 200 &&
           steps++ < FILL_STEPS) {
        long need = room - 150 < BIG + 4 ? room - 150 : BIG + 4;
        size_t len;
        if (need == 128 || need == 129) /* no frame has that size */
            need = 100;
        len = (size_t)(need >= 130 ? need - 4 : need - 2);
        if (ws_conn_send(b, WS_OP_BINARY, big, len) != 0) {
            st.fill_ok = 0;
            break;
        }
    }
    st.room = room;
    if (room < 130 || room > 200)
        return;
    /* Payloads over 125 bytes take a 4-byte header. */
    send_a(a, 0, (size_t)room - 3); /* one byte over the budget */
    send_a(a, 1, (size_t)room - 4); /* fills it exactly */
    /* That frame waits in this pass's cork, not in a backlog: it counts
     * for the budget all the same, so not even an empty frame fits now. */
    send_a(a, 2, 0);
}

static void on_data(struct ws_conn *c, enum ws_opcode op, const void *data, size_t len,
                    void *arg)
{
    (void)op;
    (void)arg;
    pthread_mutex_lock(&st.mu);
    if (len == 5 && memcmp(data, "burst", 5) == 0 && c == st.conns[0] && !st.burst_done) {
        if (st.mode == MODE_CAP)
            burst_cap(c, st.conns[1]);
        else
            burst_budget(c, st.conns[1]);
        st.burst_done = 1;
    } else if (len == 3 && memcmp(data, "end", 3) == 0) {
        st.end_rc[c == st.conns[1]] = ws_conn_send(c, WS_OP_TEXT, "end", 3);
    }
    pthread_mutex_unlock(&st.mu);
}

static void on_drain(struct ws_conn *c, void *arg)
{
    (void)arg;
    pthread_mutex_lock(&st.mu);
    if (c == st.conns[0]) {
        if (st.drains_a++ == 0) {
            st.b_at_drain = st.conns[1] != NULL ? ws_conn_buffered_amount(st.conns[1]) : 0;
            st.drain_rc = ws_conn_send(c, WS_OP_TEXT, "drained", 7);
        }
    }
    pthread_mutex_unlock(&st.mu);
}

static void *loop_main(void *arg)
{
    (void)arg;
    ws_server_run(srv);
    return NULL;
}

static int start(size_t max_buffered, size_t total, pthread_t *loop)
{
    struct ws_config *cfg = ws_config_new();
    int port;

    ws_config_set_handle_signals(cfg, 0);
    ws_config_set_close_timeout(cfg, 200); /* raw peers never answer a close */
    ws_config_set_deflate(cfg, 0);
    ws_config_set_max_buffered(cfg, max_buffered);
    ws_config_set_max_buffered_total(cfg, total);
    srv = ws_server_new(cfg);
    ws_config_free(cfg);
    if (srv == NULL)
        return -1;
    ws_server_handle_open(srv, on_open, NULL);
    ws_server_handle_data(srv, on_data, NULL);
    ws_server_handle_drain(srv, on_drain, NULL);
    port = ws_server_listen(srv, "127.0.0.1:0");
    if (port <= 0 || pthread_create(loop, NULL, loop_main, NULL) != 0) {
        ws_server_free(srv);
        return -1;
    }
    return port;
}

/* The clients' sockets (-1: not open), then the server. */
static void stop(pthread_t loop, int fa, int fb)
{
    if (fa >= 0)
        close(fa);
    if (fb >= 0)
        close(fb);
    ws_server_stop(srv);
    pthread_join(loop, NULL);
    for (int i = 0; i < st.nconns; i++)
        ws_conn_unref(st.conns[i]);
    ws_server_free(srv);
}

static void reset(enum mode mode)
{
    pthread_mutex_lock(&st.mu);
    st.mode = mode;
    st.conns[0] = st.conns[1] = NULL;
    st.nconns = st.na = st.nb = st.burst_done = st.drains_a = st.fill_ok = 0;
    st.drain_rc = st.end_rc[0] = st.end_rc[1] = 1;
    st.room = 0;
    st.b_at_drain = 0;
    pthread_mutex_unlock(&st.mu);
}

/* Wait (bounded) until *flag (read under the mutex) is at least want. */
static int wait_for(const int *flag, int want)
{
    double deadline = now_s() + 5;
    int v;

    do {
        pthread_mutex_lock(&st.mu);
        v = *flag;
        pthread_mutex_unlock(&st.mu);
        if (v >= want)
            return 1;
        sleep_ms(1);
    } while (now_s() < deadline);
    return 0;
}

/* Open a raw client and wait until the server counts n connections. */
static int open_client(int port, int n, int rcvbuf)
{
    int fd = rawws_open(port, 5);

    if (fd >= 0 && rcvbuf > 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    if (fd >= 0 && !wait_for(&st.nconns, n)) {
        close(fd);
        return -1;
    }
    return fd;
}

/* The next frame is a text frame carrying exactly want[0..len). */
static int read_expect(int fd, const char *want, size_t len)
{
    char got[512];
    int op = 0;
    long n = rawws_read_frame(fd, &op, got, sizeof(got));

    return n == (long)len && op == WS_OP_TEXT && memcmp(got, want, len) == 0;
}

/* Ask for "end" and expect it next: nothing unexpected came before. */
static int read_end(int fd)
{
    return rawws_send(fd, WS_OP_TEXT, "end", 3) == 0 && read_expect(fd, "end", 3);
}

/* Part 1: max_buffered = cap; the burst's expected outcome follows from
 * cap alone (wsc.h: frame headers count, a send beyond the cap gets
 * WS_EAGAIN and nothing is queued). */
static void test_cap(size_t cap)
{
    char what[160], buf[256];
    pthread_t loop;
    int port, fa, fb, ok, fits = (int)(cap / FRAME);
    size_t room = cap - (size_t)fits * FRAME;
    struct sent want[MAXSENDS];
    int nwant = 0;

    reset(MODE_CAP);
    pthread_mutex_lock(&st.mu);
    st.room = (long)cap;
    pthread_mutex_unlock(&st.mu);
    for (int i = 0; i < BURST; i++)
        want[nwant++] = (struct sent){ P, i < fits ? 0 : WS_EAGAIN };
    if (room >= 2) {
        want[nwant++] = (struct sent){ room - 1, WS_EAGAIN };
        want[nwant++] = (struct sent){ room - 2, 0 };
    }
    want[nwant++] = (struct sent){ 0, WS_EAGAIN };

    port = start(cap, 0, &loop);
    snprintf(what, sizeof(what), "max_buffered %zu: server started", cap);
    check(port > 0, what);
    if (port <= 0)
        return;
    fa = open_client(port, 1, 0);
    fb = fa >= 0 ? open_client(port, 2, 0) : -1;
    snprintf(what, sizeof(what), "max_buffered %zu: both connections open", cap);
    check(fa >= 0 && fb >= 0, what);
    if (fa < 0 || fb < 0)
        goto out;
    rawws_send(fa, WS_OP_TEXT, "burst", 5);
    ok = wait_for(&st.burst_done, 1);
    snprintf(what, sizeof(what), "max_buffered %zu: the burst ran", cap);
    check(ok, what);
    if (!ok)
        goto out;

    pthread_mutex_lock(&st.mu);
    ok = st.na == nwant;
    for (int i = 0; ok && i < nwant; i++) {
        ok = st.a[i].len == want[i].len && st.a[i].rc == want[i].rc;
        if (!ok)
            printf("# send %d (%zu bytes): %d, want %d\n", i, want[i].len, st.a[i].rc,
                   want[i].rc);
    }
    pthread_mutex_unlock(&st.mu);
    snprintf(what, sizeof(what),
             "max_buffered %zu: %d sends of %d bytes fit, the next gets WS_EAGAIN; "
             "room %zu taken exactly, not a byte more",
             cap, fits, FRAME, room);
    check(ok, what);

    /* The client gets exactly the accepted frames, in order. */
    ok = 1;
    for (int i = 0; ok && i < nwant; i++) {
        if (want[i].rc != 0)
            continue;
        payload(i, buf, want[i].len);
        ok = read_expect(fa, buf, want[i].len);
        if (!ok)
            printf("# frame of send %d missing or wrong\n", i);
    }
    snprintf(what, sizeof(what), "max_buffered %zu: the client reads exactly the accepted frames",
             cap);
    check(ok, what);
    ok = read_expect(fa, "drained", 7);
    snprintf(what, sizeof(what), "max_buffered %zu: the drain callback's send arrives next", cap);
    check(ok, what);
    ok = read_end(fa);
    snprintf(what, sizeof(what), "max_buffered %zu: nothing else was written (end follows)", cap);
    check(ok, what);
    pthread_mutex_lock(&st.mu);
    ok = st.drains_a == 1 && st.drain_rc == 0 && st.end_rc[0] == 0;
    pthread_mutex_unlock(&st.mu);
    snprintf(what, sizeof(what),
             "max_buffered %zu: one drain callback, and its send is accepted", cap);
    check(ok, what);

    /* B: sends made in A's pass are not short-path sends to B. */
    pthread_mutex_lock(&st.mu);
    ok = st.nb == BURST;
    for (int i = 0; ok && i < BURST; i++)
        ok = st.b_rc[i] == 0;
    pthread_mutex_unlock(&st.mu);
    for (int i = 0; ok && i < BURST; i++) {
        payload(i, buf, P);
        ok = read_expect(fb, buf, P);
    }
    ok = ok && read_end(fb);
    snprintf(what, sizeof(what),
             "max_buffered %zu: the same burst to another connection is all accepted and read",
             cap);
    check(ok, what);
out:
    stop(loop, fa, fb);
}

/* Part 2: the server-wide budget (one loop: its share is all of it). */
static void test_budget(void)
{
    char buf[256];
    pthread_t loop;
    int port, fa, fb, ok, fill_ok, na;
    long room;
    struct sent a[3];

    reset(MODE_BUDGET);
    port = start(16u << 20, BUDGET, &loop); /* only the budget can refuse */
    check(port > 0, "budget: server started");
    if (port <= 0)
        return;
    fa = open_client(port, 1, 0);
    fb = fa >= 0 ? open_client(port, 2, 4096) : -1; /* B: a small window, never read yet */
    check(fa >= 0 && fb >= 0, "budget: both connections open");
    if (fa < 0 || fb < 0)
        goto out;
    rawws_send(fa, WS_OP_TEXT, "burst", 5);
    ok = wait_for(&st.burst_done, 1);
    check(ok, "budget: the burst ran");
    if (!ok)
        goto out;
    pthread_mutex_lock(&st.mu);
    room = st.room;
    fill_ok = st.fill_ok;
    na = st.na;
    memcpy(a, st.a, sizeof(a));
    pthread_mutex_unlock(&st.mu);
    printf("# budget room left by the slow peer: %ld bytes; A's sends: %zu -> %d, %zu -> %d\n",
           room, a[0].len, a[0].rc, a[1].len, a[1].rc);
    check(fill_ok && room >= 130 && room <= 200,
          "budget: the slow peer's backlog fills the budget");
    if (na != 3)
        goto out;
    check(a[0].len == (size_t)room - 3 && a[0].rc == WS_EAGAIN,
          "budget: a short-path send one byte over the room gets WS_EAGAIN");
    check(a[1].len == (size_t)room - 4 && a[1].rc == 0,
          "budget: a short-path send filling the room exactly is accepted");
    check(a[2].len == 0 && a[2].rc == WS_EAGAIN,
          "budget: the frame corked in this pass counts: then even an empty frame is refused");
    payload(1, buf, a[1].len);
    check(read_expect(fa, buf, a[1].len), "budget: the client reads exactly the accepted frame");

    /* A's drain comes once the loop's output is down to half its share
     * (wsc.h), not when A's own output is empty. B's backlog must go
     * first: the kernel holds megabytes for B by now (reading them through
     * its 4 KiB window would take minutes), so B resets its connection and
     * the server drops B's backlog with it. */
    {
        double deadline = now_s() + 5;
        int drains = 0;
        struct linger rst = {1, 0};
        sleep_ms(100); /* time for a wrong early drain to show */
        pthread_mutex_lock(&st.mu);
        drains = st.drains_a;
        pthread_mutex_unlock(&st.mu);
        check(drains == 0, "budget: no drain callback while the loop's output fills the budget");
        setsockopt(fb, SOL_SOCKET, SO_LINGER, &rst, sizeof(rst));
        close(fb);
        fb = -1;
        while (drains == 0 && now_s() < deadline) {
            sleep_ms(1);
            pthread_mutex_lock(&st.mu);
            drains = st.drains_a;
            pthread_mutex_unlock(&st.mu);
        }
    }
    pthread_mutex_lock(&st.mu);
    ok = st.drains_a == 1 && st.drain_rc == 0;
    printf("# budget: A's drain came with %zu bytes still queued for B\n", st.b_at_drain);
    ok = ok && st.b_at_drain <= BUDGET / 2;
    pthread_mutex_unlock(&st.mu);
    check(ok, "budget: the drain callback comes once B's output is down to half the budget, "
              "and its send is accepted");
    check(read_expect(fa, "drained", 7) && read_end(fa),
          "budget: the drain callback's send arrives, nothing else");
out:
    stop(loop, fa, fb);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    test_cap(65 * FRAME);     /* the 65th send fits exactly */
    test_cap(65 * FRAME - 1); /* the 65th is one byte over */
    test_budget();
    return failures != 0;
}
