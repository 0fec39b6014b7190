/*
 * test-sendto.c - handles that cannot dangle (issue 10): ws_server_send_to
 * and ws_server_close_to by connection id, from several threads, on a
 * server with three worker loops; unknown and closed ids; a send queued
 * to a connection that closes before delivery is counted in
 * ws_server_dropped_sends; ws_conn_pause_reading / resume_reading from a
 * thread that is not the loop's. These calls are new in the fix (they did
 * not exist before). Prints PASS:/FAIL: lines.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/thread.h>

#include <wsc.h>

#define EMBEDTEST_NAME "sendto"
#include "embedtest.h"
#include "rawws.h"

#define CLIENTS 6
#define SENDERS 3
#define PER_SENDER 200

struct app {
    struct ws_server *srv;
    pthread_mutex_t lock;             /* open callbacks run on three loops */
    uint64_t ids[CLIENTS + 2];
    struct ws_conn *conns[CLIENTS + 2]; /* ref'd */
    unsigned nopen;
    atomic_uint closed;
    atomic_int hold;                  /* "hold" message: block until cleared */
    atomic_int holding;
    atomic_uint data;                 /* data callbacks */
};

static struct app app = { .lock = PTHREAD_MUTEX_INITIALIZER };

static void on_open(struct ws_conn *c, void *arg)
{
    (void)arg;
    pthread_mutex_lock(&app.lock);
    if (app.nopen < CLIENTS + 2) {
        ws_conn_ref(c);
        app.conns[app.nopen] = c;
        app.ids[app.nopen] = ws_conn_id(c);
        app.nopen++;
    }
    pthread_mutex_unlock(&app.lock);
}

static void on_close(struct ws_conn *c, const struct ws_close_info *info, void *arg)
{
    (void)c;
    (void)info;
    (void)arg;
    atomic_fetch_add(&app.closed, 1);
}

/* Echo; "hold" blocks this loop until the test has queued a send to this
 * connection from another thread, then closes it, so that send can only
 * be delivered to a closed connection. */
static void on_data(struct ws_conn *c, enum ws_opcode op, const void *d, size_t n, void *arg)
{
    (void)arg;
    atomic_fetch_add(&app.data, 1);
    if (n == 4 && memcmp(d, "hold", 4) == 0) {
        atomic_store(&app.holding, 1);
        for (int i = 0; i < 500 && atomic_load(&app.hold); i++)
            sleep_ms(10);
        ws_conn_close(c, 1000, "held");
        return;
    }
    ws_conn_send(c, op, d, n);
}

static void *run_server(void *srv)
{
    ws_server_run(srv);
    return NULL;
}

static unsigned wait_open(unsigned n)
{
    unsigned got = 0;

    for (int i = 0; i < 1000; i++) {
        pthread_mutex_lock(&app.lock);
        got = app.nopen;
        pthread_mutex_unlock(&app.lock);
        if (got >= n)
            break;
        sleep_ms(10);
    }
    return got;
}

/* ---- many senders by id ------------------------------------------------------ */

static atomic_int send_errors;

static void *sender(void *arg)
{
    unsigned t = (unsigned)(uintptr_t)arg;
    char msg[32];

    for (unsigned i = 0; i < PER_SENDER; i++) {
        for (unsigned k = 0; k < CLIENTS; k++) {
            int n = snprintf(msg, sizeof(msg), "t%u:%u", t, i);
            int rc = ws_server_send_to(app.srv, app.ids[k], WS_OP_TEXT, msg, (size_t)n);
            if (rc != 0)
                atomic_fetch_add(&send_errors, 1);
        }
    }
    return NULL;
}

/* Client k: SENDERS x PER_SENDER messages, each sender's in order. */
static int read_all(int fd)
{
    unsigned next[SENDERS] = { 0 };
    char buf[64];
    int op;

    for (unsigned got = 0; got < SENDERS * PER_SENDER; got++) {
        unsigned t, i;
        long n = rawws_read_frame(fd, &op, buf, sizeof(buf) - 1);
        if (n < 0 || op != 1)
            return 0;
        buf[n] = '\0';
        if (sscanf(buf, "t%u:%u", &t, &i) != 2 || t >= SENDERS || i != next[t])
            return 0;
        next[t]++;
    }
    return 1;
}

int main(void)
{
    struct ws_config *cfg = ws_config_new();
    int fds[CLIENTS + 2], port, op, ok, loops_seen = 0;
    unsigned seen_loop[256] = { 0 };
    pthread_t srv_th, senders[SENDERS];
    char buf[128];
    long n;

    evthread_use_pthreads();
    ws_config_set_threads(cfg, 3);
    ws_config_set_handle_signals(cfg, 0);
    ws_config_set_close_timeout(cfg, 200); /* raw peers never answer a close */
    app.srv = ws_server_new(cfg);
    ws_config_free(cfg);
    ws_server_handle_open(app.srv, on_open, NULL);
    ws_server_handle_data(app.srv, on_data, NULL);
    ws_server_handle_close(app.srv, on_close, NULL);
    port = ws_server_listen(app.srv, "127.0.0.1:0");
    pthread_create(&srv_th, NULL, run_server, app.srv);

    /* One at a time, so ids[k] is the connection of fds[k]. */
    ok = 1;
    for (int k = 0; k < CLIENTS + 2; k++) {
        fds[k] = rawws_open(port, 10);
        ok &= fds[k] >= 0 && wait_open((unsigned)k + 1) == (unsigned)k + 1;
    }
    check(ok, "every raw client opened");
    if (!ok)
        return 1;
    for (int k = 0; k < CLIENTS + 2; k++)
        if (!seen_loop[app.ids[k] & 0xff]++)
            loops_seen++;
    printf("# connections spread over %d worker loops\n", loops_seen);

    /* 1. Three threads send by id to six connections on three loops. */
    for (unsigned t = 0; t < SENDERS; t++)
        pthread_create(&senders[t], NULL, sender, (void *)(uintptr_t)t);
    ok = 1;
    for (int k = 0; k < CLIENTS; k++)
        ok &= read_all(fds[k]);
    for (unsigned t = 0; t < SENDERS; t++)
        pthread_join(senders[t], NULL);
    check(atomic_load(&send_errors) == 0, "ws_server_send_to from 3 threads: every call returned 0");
    check(ok, "every message delivered to every connection, each sender's in order");

    /* 2. Ids that name no connection. */
    check(ws_server_send_to(app.srv, ((uint64_t)1 << 40) | 1, WS_OP_TEXT, "x", 1) == WS_ENOTFOUND,
          "unknown id (existing loop) -> WS_ENOTFOUND");
    check(ws_server_send_to(app.srv, ((uint64_t)1 << 40) | 200, WS_OP_TEXT, "x", 1) == WS_ENOTFOUND,
          "unknown id (no such loop) -> WS_ENOTFOUND");
    check(ws_server_close_to(app.srv, ((uint64_t)1 << 40) | 1, 1000, NULL) == WS_ENOTFOUND,
          "ws_server_close_to unknown id -> WS_ENOTFOUND");
    check(ws_server_send_to(app.srv, 0, WS_OP_TEXT, "x", 1) == WS_EINVAL, "id 0 -> WS_EINVAL");

    /* 3. ws_server_close_to from this thread: the peer sees 1000 "bye". */
    check(ws_server_close_to(app.srv, app.ids[0], 1000, "bye") == 0, "ws_server_close_to -> 0");
    n = rawws_read_frame(fds[0], &op, buf, sizeof(buf));
    check(n == 5 && op == 8 && memcmp(buf, "\x03\xe8" "bye", 5) == 0,
          "the peer got close 1000 \"bye\"");
    rawws_send(fds[0], 8, buf, 2);
    shutdown(fds[0], SHUT_WR); /* the TCP close too: nothing lingers */
    for (int i = 0; i < 500 && atomic_load(&app.closed) < 1; i++)
        sleep_ms(10);
    check(atomic_load(&app.closed) == 1, "close callback ran");
    {
        /* The id leaves the table right after the close callback returns,
         * on the loop thread: until then a send gets WS_ECLOSED. */
        int rc = WS_ECLOSED, tries = 0;

        for (; tries < 500 && rc == WS_ECLOSED; tries++) {
            rc = ws_server_send_to(app.srv, app.ids[0], WS_OP_TEXT, "x", 1);
            if (rc == WS_ECLOSED)
                sleep_ms(10);
        }
        printf("# send_to the closed id: %s after %d tries\n", ws_strerror(rc), tries);
        check(rc == WS_ENOTFOUND, "id of a closed connection -> WS_ENOTFOUND");
    }
    check(ws_server_close_to(app.srv, app.ids[0], 1000, NULL) == WS_ENOTFOUND,
          "ws_server_close_to a closed connection -> WS_ENOTFOUND");

    /* 4. A send queued from this thread to a connection that closes before
     * its loop delivers it: dropped and counted. */
    {
        uint64_t before = ws_server_dropped_sends(app.srv);
        int rc;

        atomic_store(&app.hold, 1);
        rawws_send(fds[1], 1, "hold", 4);
        for (int i = 0; i < 500 && !atomic_load(&app.holding); i++)
            sleep_ms(10);
        rc = ws_server_send_to(app.srv, app.ids[1], WS_OP_TEXT, "late", 4);
        atomic_store(&app.hold, 0); /* the loop closes the conn, then delivers */
        check(rc == 0, "send_to a connection whose loop is busy -> 0 (queued)");
        for (int i = 0; i < 500 && ws_server_dropped_sends(app.srv) == before; i++)
            sleep_ms(10);
        printf("# dropped sends: %llu -> %llu\n", (unsigned long long)before,
               (unsigned long long)ws_server_dropped_sends(app.srv));
        check(ws_server_dropped_sends(app.srv) == before + 1,
              "the undeliverable send is counted in ws_server_dropped_sends");
        n = rawws_read_frame(fds[1], &op, buf, sizeof(buf));
        check(n >= 2 && op == 8, "the peer got the close, not the late message");
    }

    /* 5. Pause and resume reading from a thread that is not the loop's. */
    {
        unsigned before;

        check(ws_conn_pause_reading(app.conns[2]) == 0, "ws_conn_pause_reading from main -> 0");
        sleep_ms(100); /* takes effect on the loop shortly after */
        before = atomic_load(&app.data);
        rawws_send(fds[2], 1, "while paused", 12);
        sleep_ms(300);
        check(atomic_load(&app.data) == before, "paused: the message is not handled");
        check(ws_conn_resume_reading(app.conns[2]) == 0, "ws_conn_resume_reading from main -> 0");
        n = rawws_read_frame(fds[2], &op, buf, sizeof(buf));
        check(n == 12 && op == 1 && memcmp(buf, "while paused", 12) == 0,
              "resumed: the held message is handled and echoed");
    }

    ws_server_stop(app.srv);
    pthread_join(srv_th, NULL);
    for (int k = 0; k < CLIENTS + 2; k++) {
        ws_conn_unref(app.conns[k]);
        if (fds[k] >= 0)
            close(fds[k]);
    }
    ws_server_free(app.srv);
    return failures > 0;
}
