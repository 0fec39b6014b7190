/*
 * test-watch.c - the loop's read watching (libwsc/watch.c): what libevent
 * used to guarantee per event, now resting on one epoll set per loop.
 *  1. A connection paused by an earlier one's callback while its input
 *     waits later in the same batch is skipped: its socket is not read and
 *     no data callback comes until it is resumed, then its data once.
 *  2. More ready sockets than one batch (256) takes: every one is read on
 *     the following passes, nothing lost.
 *  3. A resume with input left in the stash and a silent peer handles it
 *     (the kick), and a kick cancelled by a pause in the same pass does not.
 *  4. A paused connection the application then closes still reads the
 *     peer's answering close frame: the handshake ends clean, not by the
 *     close timeout (runs last: it ends B).
 * The loop is held still by a callback that sleeps, so that several sockets
 * become ready before the next batch is taken. The pause checks read the
 * server side's unread bytes from /proc/net/tcp: with a paused connection
 * read anyway, its frame would wait in the stash instead, unseen by the
 * application but against the promise that its socket is not read.
 * Prints PASS:/FAIL:/SKIP: lines.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <wsc.h>

#define EMBEDTEST_NAME "watch"
#include "embedtest.h"
#include "rawws.h"

#define ROUNDS 10
#define HOLD_MS 120      /* one loop pass held still */
#define HOLD_LONG_MS 600 /* while MANY connections each send one message */
#define MANY 600         /* more than two batches of 256 */
#define HELLO_WIRE 11    /* "hello" masked from a client: 2 + 4 + 5 bytes */

enum { A, B, H, NAMED }; /* A commands B's reading, H holds the loop */

static struct ws_server *srv;
static struct ws_conn *named[NAMED]; /* loop thread only */
static atomic_int registered;
static atomic_int holding;
static atomic_int b_closed = -1; /* B's close cause, once its close callback ran */

/* What the loop did, in order: written by callbacks, read by main. */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
    int seq;       /* one step per recorded event */
    int pause_at;  /* A paused B */
    int resume_at; /* A resumed B */
    int hello_at;  /* B's "hello" handled (the last one) */
    int hellos;    /* how many times */
    int afters;    /* B's "after" (the frame left in the stash) handled */
    int commands;  /* A's commands handled */
} ev;

static int step(void) /* with mu held */
{
    return ++ev.seq;
}

static void on_data(struct ws_conn *c, enum ws_opcode op, const void *data, size_t len,
                    void *arg)
{
    const char *s = data;

    (void)arg;
    if (len == 4 && memcmp(s, "id:", 3) == 0 && s[3] >= '0' && s[3] < '0' + NAMED) {
        named[s[3] - '0'] = c;
        atomic_fetch_add(&registered, 1);
    } else if (len > 5 && memcmp(s, "hold:", 5) == 0) {
        atomic_store(&holding, 1);
        sleep_ms(atol(s + 5) > 0 ? atol(s + 5) : 1); /* blocks the loop: inputs pile up */
        atomic_store(&holding, 0);
    } else if (c == named[A] && len == 7 && memcmp(s, "pause-B", 7) == 0) {
        ws_conn_pause_reading(named[B]);
        pthread_mutex_lock(&mu);
        ev.pause_at = step();
        ev.commands++;
        pthread_mutex_unlock(&mu);
    } else if (c == named[A] && len == 8 && memcmp(s, "resume-B", 8) == 0) {
        pthread_mutex_lock(&mu);
        ev.resume_at = step();
        ev.commands++;
        pthread_mutex_unlock(&mu);
        ws_conn_resume_reading(named[B]);
    } else if (c == named[A] && len == 14 && memcmp(s, "resume-pause-B", 14) == 0) {
        /* The resume queues a kick (B has a stash); the pause takes it back. */
        ws_conn_resume_reading(named[B]);
        ws_conn_pause_reading(named[B]);
        pthread_mutex_lock(&mu);
        ev.commands++;
        pthread_mutex_unlock(&mu);
    } else if (c == named[A] && len == 13 && memcmp(s, "pause-close-B", 13) == 0) {
        ws_conn_pause_reading(named[B]);
        ws_conn_close(named[B], 1000, "bye");
        pthread_mutex_lock(&mu);
        ev.commands++;
        pthread_mutex_unlock(&mu);
    } else if (c == named[B] && len == 4 && memcmp(s, "stop", 4) == 0) {
        ws_conn_pause_reading(c); /* what follows in this read waits in the stash */
        ws_conn_send(c, op, data, len);
    } else {
        if (c == named[B]) {
            pthread_mutex_lock(&mu);
            if (len == 5 && memcmp(s, "hello", 5) == 0) {
                ev.hello_at = step();
                ev.hellos++;
            } else if (len == 5 && memcmp(s, "after", 5) == 0) {
                ev.afters++;
            }
            pthread_mutex_unlock(&mu);
        }
        ws_conn_send(c, op, data, len); /* echo */
    }
}

static void on_close(struct ws_conn *c, const struct ws_close_info *info, void *arg)
{
    (void)arg;
    if (c == named[B])
        atomic_store(&b_closed, (int)info->cause);
}

static void *loop_main(void *arg)
{
    (void)arg;
    ws_server_run(srv);
    return NULL;
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int wait_flag(atomic_int *flag, int want, double seconds)
{
    double end = now_s() + seconds;

    while (atomic_load(flag) != want && now_s() < end)
        sleep_ms(1);
    return atomic_load(flag) == want;
}

/* One of the loop's counters in ev, read under its lock. */
static int counter(const int *which)
{
    int n;

    pthread_mutex_lock(&mu);
    n = *which;
    pthread_mutex_unlock(&mu);
    return n;
}

static int commands(void)
{
    return counter(&ev.commands);
}

/* Send one command on A and wait (bounded) until the loop has handled it. */
static int command(int fd_a, const char *what)
{
    int before = commands();
    double end = now_s() + 5;

    rawws_send(fd_a, WS_OP_TEXT, what, strlen(what));
    while (commands() == before && now_s() < end)
        sleep_ms(1);
    if (commands() != before)
        return 1;
    printf("# A's command %s was not handled\n", what);
    return 0;
}

static int local_port(int fd)
{
    struct sockaddr_in sin;
    socklen_t len = sizeof(sin);

    if (getsockname(fd, (struct sockaddr *)&sin, &len) != 0)
        return -1;
    return ntohs(sin.sin_port);
}

/* Bytes the server has not read on its end of the client socket fd (the
 * rx_queue of the entry from 127.0.0.1:port to the client's port); -1 if
 * it cannot be found. */
static long server_unread(int port, int fd)
{
    char line[512];
    unsigned lport, rport;
    unsigned long txq, rxq;
    long found = -1;
    int peer = local_port(fd);
    FILE *f = fopen("/proc/net/tcp", "r");

    if (f == NULL)
        return -1;
    while (found < 0 && fgets(line, sizeof(line), f) != NULL) {
        if (sscanf(line, " %*d: %*8x:%x %*8x:%x %*x %lx:%lx", &lport, &rport, &txq, &rxq) == 4 &&
            (int)lport == port && (int)rport == peer)
            found = (long)rxq;
    }
    fclose(f);
    return found;
}

static int expect_echo(int fd, const char *want)
{
    char buf[64];
    int op;
    long n = rawws_read_frame(fd, &op, buf, sizeof(buf));

    if (n == (long)strlen(want) && memcmp(buf, want, (size_t)n) == 0)
        return 1;
    printf("# expected \"%s\", got %ld bytes \"%.*s\"\n", want, n,
           n > 0 ? (int)(n < 32 ? n : 32) : 0, buf);
    return 0;
}

static void send_str(int fd, const char *s)
{
    rawws_send(fd, WS_OP_TEXT, s, strlen(s));
}

/* ---- 1. a pause of a connection waiting later in the same batch ------------ */

static void pause_in_batch(int port, const int fd[NAMED])
{
    int exercised = 0, before = 0, bad = 0;
    char hold[32];

    snprintf(hold, sizeof(hold), "hold:%d", HOLD_MS);
    for (int r = 0; r < ROUNDS && !bad; r++) {
        int in_hold, pause_at, hello_at, hellos, resume_at;
        long unread;

        pthread_mutex_lock(&mu);
        ev.pause_at = ev.resume_at = ev.hello_at = ev.hellos = ev.commands = 0;
        pthread_mutex_unlock(&mu);

        /* A's command, then B's message, both while the loop is held: the
         * next batch holds A, then (usually) B. */
        send_str(fd[H], hold);
        if (!wait_flag(&holding, 1, 5)) {
            printf("# round %d: the hold never started\n", r);
            bad = 1;
            break;
        }
        send_str(fd[A], "pause-B");
        sleep_ms(5); /* A's bytes surely in before B's */
        send_str(fd[B], "hello");
        in_hold = atomic_load(&holding);
        for (double end = now_s() + 5; commands() == 0 && now_s() < end;)
            sleep_ms(1); /* the pause, after the hold */
        sleep_ms(150); /* B, if read now, would be handled by now */

        pthread_mutex_lock(&mu);
        pause_at = ev.pause_at;
        hello_at = ev.hello_at;
        hellos = ev.hellos;
        pthread_mutex_unlock(&mu);
        unread = server_unread(port, fd[B]);
        if (pause_at == 0) {
            printf("# round %d: A's pause-B was never handled\n", r);
            bad = 1;
        } else if (hellos > 0 && hello_at < pause_at) {
            before++; /* B came first in the batch: nothing to skip */
        } else if (hellos > 0) {
            printf("# round %d: B's data was handled while paused (pause %d, data %d)\n", r,
                   pause_at, hello_at);
            bad = 1;
        } else if (unread != HELLO_WIRE) {
            printf("# round %d: paused B's socket holds %ld unread bytes, not %d: it was read "
                   "while paused\n", r, unread, HELLO_WIRE);
            bad = 1;
            exercised += in_hold;
        } else if (in_hold) {
            exercised++; /* B was ready when the batch was taken, after A */
        }

        if (!command(fd[A], "resume-B") || !expect_echo(fd[B], "hello")) {
            printf("# round %d: no echo of B's message after the resume\n", r);
            bad = 1;
        }
        sleep_ms(20); /* a second delivery would show */
        pthread_mutex_lock(&mu);
        resume_at = ev.resume_at;
        hello_at = ev.hello_at;
        hellos = ev.hellos;
        pthread_mutex_unlock(&mu);
        if (hellos != 1 || (hello_at > pause_at && hello_at < resume_at)) {
            printf("# round %d: B's data handled %d times (pause %d, resume %d, data %d)\n", r,
                   hellos, pause_at, resume_at, hello_at);
            bad = 1;
        }
    }
    printf("# %d rounds: B later in the batch than A's pause %d times, first %d times\n",
           ROUNDS, exercised, before);
    check(!bad, "a connection paused while it waits later in the batch is not read until "
                "resumed, then its data is handled once");
    check(exercised > 0, "the setup exercised it (B's input waited in the batch behind "
                                "A's pause at least once)");
}

/* ---- 2. more ready sockets than one batch ---------------------------------- */

static void many_ready(int port, int hold_fd)
{
    struct rlimit rl;
    static int fd[MANY];
    int opened = 0, echoed = 0, in_hold;
    char hold[32], msg[16];

    /* Both ends of every connection are in this process. */
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 4 * MANY) {
        rl.rlim_cur = rl.rlim_max < 4 * MANY ? rl.rlim_max : 4 * MANY;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur < 2 * MANY + 100) {
        printf("SKIP: watch %d ready connections: RLIMIT_NOFILE is %lu, under %d\n", MANY,
               (unsigned long)rl.rlim_cur, 2 * MANY + 100);
        return;
    }
    while (opened < MANY && (fd[opened] = rawws_open(port, 5)) >= 0)
        opened++;
    check(opened == MANY, "600 raw connections open");
    if (opened == MANY) {
        snprintf(hold, sizeof(hold), "hold:%d", HOLD_LONG_MS);
        send_str(hold_fd, hold);
        check(wait_flag(&holding, 1, 5), "the loop is held");
        for (int i = 0; i < MANY; i++) {
            int n = snprintf(msg, sizeof(msg), "m%d", i);
            rawws_send(fd[i], WS_OP_TEXT, msg, (size_t)n);
        }
        in_hold = atomic_load(&holding);
        printf("# all %d sent while the loop was held: %s\n", MANY, in_hold ? "yes" : "no");
        for (int i = 0; i < MANY; i++) { /* each read bounded by the 5 s timeout */
            snprintf(msg, sizeof(msg), "m%d", i);
            if (!expect_echo(fd[i], msg))
                break;
            echoed++;
        }
        check(echoed == MANY, "600 sockets ready at once (over two batches) are all read");
        check(in_hold, "the setup exercised it (all 600 were ready before the loop went on)");
    }
    for (int i = 0; i < opened; i++)
        close(fd[i]);
}

/* ---- 3. a resume with input in the stash and a silent peer ------------------- */

static int afters(void)
{
    return counter(&ev.afters);
}

/* Two frames in one write: B pauses itself on "stop", "after" stays in
 * the stash. 1 if B's socket is left empty (the setup worked). */
static int stop_and_stash(int port, int fd)
{
    unsigned char wire[64];
    size_t n = rawws_frame(wire, 1, WS_OP_TEXT, "stop", 4);
    long unread;

    n += rawws_frame(wire + n, 1, WS_OP_TEXT, "after", 5);
    if (write(fd, wire, n) != (ssize_t)n || !expect_echo(fd, "stop"))
        return 0;
    sleep_ms(100);
    unread = server_unread(port, fd);
    if (unread != 0)
        printf("# B's socket still holds %ld bytes\n", unread);
    return unread == 0;
}

static void stash_kick(int port, const int fd[NAMED])
{
    long unread;

    pthread_mutex_lock(&mu);
    ev.afters = 0;
    pthread_mutex_unlock(&mu);

    /* The peer sends nothing more: only the kick can handle the stash. */
    check(stop_and_stash(port, fd[B]), "B paused itself with a frame in the stash, its "
                                       "socket empty (the setup)");
    check(afters() == 0, "paused: the stashed frame is not handled");
    check(command(fd[A], "resume-B") && expect_echo(fd[B], "after"), "a resume handles the stashed frame with no new input");
    sleep_ms(20);
    check(afters() == 1, "the stashed frame is handled once");

    /* Resumed and paused again in one callback: the queued kick is dropped,
     * so neither the stash nor the socket (holding "extra") is read. */
    check(stop_and_stash(port, fd[B]), "B paused itself again with a frame in the stash");
    send_str(fd[B], "extra");
    sleep_ms(50);
    check(server_unread(port, fd[B]) == HELLO_WIRE, "paused: a new frame waits in the socket");
    command(fd[A], "resume-pause-B");
    sleep_ms(150); /* a kick left queued would have run by now */
    unread = server_unread(port, fd[B]);
    check(afters() == 1 && unread == HELLO_WIRE,
          "a resume taken back by a pause in the same pass reads nothing");
    if (unread != HELLO_WIRE)
        printf("# B's socket holds %ld bytes, not %d\n", unread, HELLO_WIRE);
    check(command(fd[A], "resume-B") && expect_echo(fd[B], "after") &&
              expect_echo(fd[B], "extra"),
          "the next resume handles the stash, then the socket, in order");
    sleep_ms(20);
    check(afters() == 2, "that stashed frame too is handled once");
}

/* 4. B paused, then closed by the application: B's peer answers the close
 * frame, and the server must read that answer. */
static void close_paused(const int fd[NAMED])
{
    static const unsigned char answer[2] = { 0x03, 0xe8 }; /* 1000 */
    unsigned char payload[125];
    int op = -1, cause = -1;
    long n = 0;

    if (!command(fd[A], "pause-close-B")) {
        check(0, "close while paused: the command was handled");
        return;
    }
    for (int i = 0; i < 100 && op != WS_OP_CLOSE && n >= 0; i++)
        n = rawws_read_frame(fd[B], &op, payload, sizeof(payload));
    check(op == WS_OP_CLOSE, "close while paused: B's peer gets the close frame");
    rawws_send(fd[B], WS_OP_CLOSE, answer, sizeof(answer));
    for (int i = 0; i < 2000 && (cause = atomic_load(&b_closed)) < 0; i++)
        sleep_ms(1);
    if (cause != WS_CAUSE_CLEAN)
        printf("# B's close cause %d (%d is clean, %d the close timeout)\n", cause,
               WS_CAUSE_CLEAN, WS_CAUSE_TIMEOUT);
    check(cause == WS_CAUSE_CLEAN,
          "close while paused: the peer's answering close is read (clean, no timeout)");
}

int main(void)
{
    pthread_t loop;
    int port, fd[NAMED];
    char id[8];

    setvbuf(stdout, NULL, _IOLBF, 0);
    srv = quiet_server();
    ws_server_handle_data(srv, on_data, NULL);
    ws_server_handle_close(srv, on_close, NULL);
    port = ws_server_listen(srv, "127.0.0.1:0");
    if (srv == NULL || port <= 0 || pthread_create(&loop, NULL, loop_main, NULL) != 0) {
        check(0, "server started");
        return 1;
    }
    for (int k = 0; k < NAMED; k++) {
        fd[k] = rawws_open(port, 5);
        snprintf(id, sizeof(id), "id:%d", k);
        send_str(fd[k], id);
        for (int i = 0; i < 5000 && atomic_load(&registered) <= k; i++)
            sleep_ms(1);
    }
    check(fd[A] >= 0 && fd[B] >= 0 && fd[H] >= 0 && atomic_load(&registered) == NAMED,
          "three connections open");
    if (atomic_load(&registered) == NAMED) {
        pause_in_batch(port, fd);
        stash_kick(port, fd);
        many_ready(port, fd[H]);
        close_paused(fd);
    }

    for (int k = 0; k < NAMED; k++)
        close(fd[k]);
    ws_server_stop(srv);
    pthread_join(loop, NULL);
    ws_server_free(srv);
    return failures != 0;
}
