/*
 * enomem-client.c - the sweep's client half: libwsc's own client (its
 * loop in this thread) against a libwsc server (its loop in another),
 * with each allocation of either failing in turn. The client sends a
 * text, a 300-byte binary and a broadcast request, checks each answer,
 * and closes with 1000. Each run must complete, or end with something
 * the application sees: a NULL or negative return, a close callback that
 * is not a clean close, a give-up with an error. A watchdog thread stops
 * a client that has neither after WATCHDOG_MS (a hang). Then the server
 * must serve a fresh connection and every libwsc block must be back.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <wsc.h>

#define EMBEDTEST_NAME "enomem"
#include "embedtest.h"
#include "rawws.h"
#include "enomem-srv.h"

#define WATCHDOG_MS 3000
#define MAX_RUNS 300

/* Server side: echo, and "bcast" broadcast. What its application is told
 * (an error return, a close that is not clean) counts as seen too. */
static atomic_int server_seen;

static void server_on_data(struct ws_conn *c, enum ws_opcode op, const void *data, size_t len,
                           void *arg)
{
    int rc;

    (void)arg;
    if (len == 5 && memcmp(data, "bcast", 5) == 0)
        rc = ws_server_broadcast(ws_conn_server(c), WS_OP_TEXT, "all:bcast", 9);
    else
        rc = ws_conn_send(c, op, data, len);
    if (rc < 0)
        atomic_store(&server_seen, 1);
}

static void server_on_close(struct ws_conn *c, const struct ws_close_info *info, void *arg)
{
    (void)c;
    (void)arg;
    if (info->cause != WS_CAUSE_CLEAN)
        atomic_store(&server_seen, 1);
}

/* Client side: one run's state, on the client's loop (this thread) except
 * where atomic. */
static struct {
    int step;          /* answers received in order */
    int seen;          /* something the application was told went wrong */
    int wrong;         /* an answer that is not what was sent */
    int clean_close;   /* the close callback said WS_CAUSE_CLEAN */
    unsigned char bin[300];
} cs;

/* An application told that a send failed gives up on the session. */
static void client_send(struct ws_conn *c, enum ws_opcode op, const void *data, size_t len)
{
    if (ws_conn_send(c, op, data, len) < 0) {
        cs.seen = 1;
        ws_client_stop(ws_conn_client(c));
    }
}

static void client_on_open(struct ws_conn *c, void *arg)
{
    (void)arg;
    client_send(c, WS_OP_TEXT, "hello", 5);
}

static void client_on_data(struct ws_conn *c, enum ws_opcode op, const void *data, size_t len,
                           void *arg)
{
    static const char *const text[] = { "hello", NULL, "all:bcast" };

    (void)arg;
    if (cs.step > 2 ||
        (cs.step == 1 ? op != WS_OP_BINARY || len != sizeof(cs.bin) ||
                            memcmp(data, cs.bin, len) != 0
                      : op != WS_OP_TEXT || len != strlen(text[cs.step]) ||
                            memcmp(data, text[cs.step], len) != 0)) {
        cs.wrong = 1;
        ws_conn_close(c, 1000, NULL);
        return;
    }
    if (++cs.step == 1)
        client_send(c, WS_OP_BINARY, cs.bin, sizeof(cs.bin));
    else if (cs.step == 2)
        client_send(c, WS_OP_TEXT, "bcast", 5);
    else if (ws_conn_close(c, 1000, "bye") != 0)
        cs.seen = 1;
}

static void client_on_close(struct ws_conn *c, const struct ws_close_info *info, void *arg)
{
    (void)c;
    (void)arg;
    cs.clean_close = info->cause == WS_CAUSE_CLEAN;
    if (!cs.clean_close)
        cs.seen = 1;
}

static void client_on_give_up(struct ws_client *cl, int error, void *arg)
{
    (void)cl;
    (void)arg;
    if (error != 0)
        cs.seen = 1;
}

/* The watchdog: stops the client if the run is not finished in time. */
static pthread_mutex_t wd_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wd_cv = PTHREAD_COND_INITIALIZER;
static int wd_finished;
static int wd_fired;

/* The watchdog: stops the client once the server's application was told
 * of an error (the client may wait for an answer that will not come: the
 * application's protocol, not libwsc's), or after WATCHDOG_MS: a hang. */
static void *watchdog(void *arg)
{
    struct timespec until;

    pthread_mutex_lock(&wd_mu);
    for (int waited = 0; !wd_finished && waited < WATCHDOG_MS; waited += 20) {
        if (atomic_load(&server_seen))
            break;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += 20 * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&wd_cv, &wd_mu, &until);
    }
    if (!wd_finished) {
        wd_fired = !atomic_load(&server_seen);
        ws_client_stop(arg); /* under the lock: the client is not freed meanwhile */
    }
    pthread_mutex_unlock(&wd_mu);
    return NULL;
}

enum client_outcome { C_DONE, C_SEEN, C_WRONG, C_HANG };

struct client_run {
    enum client_outcome outcome;
    long allocations, injected, leaked;
    int fresh_ok;
};

static struct client_run client_run(int deflate, long nth)
{
    struct client_run r = { .outcome = C_WRONG };
    struct srv srv;
    struct ws_config *cfg;
    struct ws_client *cl = NULL;
    pthread_t wd;
    char url[64];
    long calls;
    int wd_started = 0;

    memset(&cs, 0, sizeof(cs));
    atomic_store(&server_seen, 0);
    for (size_t i = 0; i < sizeof(cs.bin); i++)
        cs.bin[i] = (unsigned char)(i * 13);
    if (srv_start(&srv, server_on_data, server_on_close, NULL, deflate) != 0)
        return r;
    snprintf(url, sizeof(url), "ws://127.0.0.1:%d/", srv.port);
    calls = enomem_calls();
    if (nth > 0)
        enomem_arm(ENOMEM_ANY, nth, 0);
    cfg = ws_config_new();
    ws_config_set_handle_signals(cfg, 0);
    ws_config_set_deflate(cfg, deflate);
    ws_config_set_deflate_threshold(cfg, 0);
    ws_config_set_close_timeout(cfg, 500);
    if (cfg != NULL)
        cl = ws_client_new(cfg);
    ws_config_free(cfg);
    if (cl == NULL) {
        cs.seen = 1;
    } else {
        ws_client_handle_open(cl, client_on_open, NULL);
        ws_client_handle_data(cl, client_on_data, NULL);
        ws_client_handle_close(cl, client_on_close, NULL);
        ws_client_handle_give_up(cl, client_on_give_up, NULL);
        wd_finished = wd_fired = 0;
        if (ws_client_connect(cl, url) != 0) {
            cs.seen = 1;
        } else {
            wd_started = pthread_create(&wd, NULL, watchdog, cl) == 0;
            if (ws_client_run(cl) != 0)
                cs.seen = 1;
        }
        pthread_mutex_lock(&wd_mu);
        wd_finished = 1;
        pthread_cond_signal(&wd_cv);
        pthread_mutex_unlock(&wd_mu);
        if (wd_started)
            pthread_join(wd, NULL);
        ws_client_free(cl);
    }
    r.allocations = enomem_calls() - calls;
    r.injected = enomem_disarm();
    if (wd_fired)
        r.outcome = C_HANG;
    else if (cs.wrong)
        r.outcome = C_WRONG;
    else if (cs.step == 3 && cs.clean_close && !cs.seen)
        r.outcome = C_DONE;
    else if (cs.seen || atomic_load(&server_seen))
        r.outcome = C_SEEN;
    else
        r.outcome = C_HANG; /* ended, yet nobody was told why */
    r.fresh_ok = srv_serves_fresh(&srv);
    r.leaked = srv_stop(&srv);
    return r;
}

static void client_variant(int deflate)
{
    static const char *const name[] = { "done", "error seen by the application",
                                        "wrong answer", "hang" };
    const char *v = deflate ? "permessage-deflate" : "plain";
    struct client_run base = client_run(deflate, 0);
    long k = base.allocations, stride = k > MAX_RUNS ? k / MAX_RUNS + 1 : 1;
    long runs = 0, seen = 0, absorbed = 0, bad_end = 0, bad_fresh = 0, bad_leak = 0;
    char what[200];

    snprintf(what, sizeof(what), "sweep client %s: with nothing failed the libwsc client's "
             "session completes (%ld libwsc allocations, both sides)", v, k);
    check(base.outcome == C_DONE && base.fresh_ok && base.leaked == 0 && k > 0, what);
    if (base.outcome != C_DONE)
        printf("# baseline: %s\n", name[base.outcome]);
    for (long nth = 1; nth <= k; nth += stride) {
        struct client_run r = client_run(deflate, nth);
        runs++;
        if (r.outcome == C_HANG)
            printf("# client %s: allocation %ld failed: step %d, client told %d, server told "
                   "%d, watchdog %d\n", v, nth, cs.step, cs.seen, atomic_load(&server_seen),
                   wd_fired);
        if (r.injected > 0 && r.outcome == C_DONE)
            absorbed++;
        seen += r.injected > 0 && r.outcome == C_SEEN;
        if (r.outcome == C_WRONG || r.outcome == C_HANG) {
            printf("# client %s: allocation %ld failed: %s\n", v, nth, name[r.outcome]);
            bad_end++;
        }
        if (!r.fresh_ok) {
            printf("# client %s: allocation %ld failed: no fresh connection after\n", v, nth);
            bad_fresh++;
        }
        if (r.leaked != 0) {
            printf("# client %s: allocation %ld failed: %ld blocks not freed\n", v, nth,
                   r.leaked);
            bad_leak++;
        }
    }
    printf("# sweep client %s: %ld runs (stride %ld) over %ld allocations: %ld seen by the "
           "application, %ld absorbed\n", v, runs, stride, k, seen, absorbed);
    snprintf(what, sizeof(what), "sweep client %s: every failed allocation is seen by the "
             "application or absorbed, never a hang or a wrong answer", v);
    check(bad_end == 0, what);
    snprintf(what, sizeof(what), "sweep client %s: after each, the server serves a fresh "
             "connection", v);
    check(bad_fresh == 0, what);
    snprintf(what, sizeof(what), "sweep client %s: after each, every libwsc block is freed", v);
    check(bad_leak == 0, what);
    snprintf(what, sizeof(what), "sweep client %s: the failures reached the session", v);
    check(seen > 0, what);
}

int enomem_client_sweep(void)
{
    client_variant(0);
    client_variant(1);
    return failures;
}
