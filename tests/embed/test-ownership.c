/*
 * test-ownership.c - the loop's owner is the thread that runs it, not the
 * one that set things up (issue 10, defect 1). A client and a server on an
 * application's event_base are set up on main, the loop is run by another
 * thread, and main then calls ws_conn_send() over and over while the loop
 * thread works: main must take the cross-thread path. Before the fix main
 * stayed "owner" and wrote the output buffer beside the loop (SIGSEGV, or
 * ASan heap-use-after-free in evbuffer_add). Prints PASS:/FAIL: lines.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <event2/thread.h>

#include <wsc.h>

#define EMBEDTEST_NAME "ownership"
#include "embedtest.h"
#include "rawws.h"

/* Big enough that the socket backs up and an output backlog builds, which
 * the loop thread drains while main appends: where the old race was. */
#define MESSAGES 300
#define MSG_SIZE (64 * 1024)

/* Message i: "<i>:" then filler up to MSG_SIZE bytes. */
static size_t make_message(char *buf, unsigned i)
{
    int n = snprintf(buf, 16, "%u:", i);
    memset(buf + n, 'a' + (int)(i % 26), MSG_SIZE - (size_t)n);
    return MSG_SIZE;
}

/* Send on main until queued: WS_EAGAIN waits a little (bounded). */
static int send_with_retry(struct ws_conn *c, const char *buf, size_t len)
{
    int rc = WS_EAGAIN;

    for (int tries = 0; tries < 5000 && rc == WS_EAGAIN; tries++) {
        rc = ws_conn_send(c, WS_OP_TEXT, buf, len);
        if (rc == WS_EAGAIN)
            sleep_ms(1);
    }
    return rc;
}

/* ---- an echo server on its own thread (ws_server_run) -------------------- */

/* A little slower than main writes, so the client's output backs up. */
static void echo_data(struct ws_conn *c, enum ws_opcode op, const void *d, size_t n, void *arg)
{
    (void)arg;
    sleep_ms(1);
    ws_conn_send(c, op, d, n);
}

static void *run_server(void *srv)
{
    ws_server_run(srv);
    return NULL;
}

/* ---- 1. a client on the application's base ------------------------------- */

struct client_side {
    struct event_base *base;
    _Atomic(struct ws_conn *) conn; /* ref'd on open */
    atomic_uint echoed;
    atomic_int out_of_order;
};

static void cl_open(struct ws_conn *c, void *arg)
{
    struct client_side *s = arg;
    ws_conn_ref(c);
    atomic_store(&s->conn, c);
}

static void cl_data(struct ws_conn *c, enum ws_opcode op, const void *d, size_t n, void *arg)
{
    struct client_side *s = arg;
    static char want[MSG_SIZE]; /* loop thread only */
    unsigned i = atomic_load(&s->echoed);

    if (op == WS_OP_BINARY)
        return; /* an ack, echoed */
    if (op != WS_OP_TEXT || n != make_message(want, i) || memcmp(d, want, n) != 0)
        atomic_store(&s->out_of_order, 1);
    atomic_store(&s->echoed, i + 1);
    /* The loop thread writes to this connection too, while main does. */
    ws_conn_send(c, WS_OP_BINARY, "ack", 3);
}

static void *run_base(void *base)
{
    event_base_loop(base, EVLOOP_NO_EXIT_ON_EMPTY);
    return NULL;
}

static struct ws_conn *wait_conn(_Atomic(struct ws_conn *) *slot)
{
    for (int i = 0; i < 1000 && atomic_load(slot) == NULL; i++)
        sleep_ms(10);
    return atomic_load(slot);
}

static void client_on_app_base(void)
{
    struct client_side s = { 0 };
    struct ws_config *cfg = ws_config_new();
    struct ws_server *srv = quiet_server();
    struct ws_client *cl;
    struct ws_conn *conn;
    pthread_t srv_th, loop_th;
    static char buf[MSG_SIZE];
    char url[64];
    int port, rc = 0;
    unsigned sent = 0;

    ws_server_handle_data(srv, echo_data, NULL);
    port = ws_server_listen(srv, "127.0.0.1:0");
    pthread_create(&srv_th, NULL, run_server, srv);

    s.base = event_base_new();
    ws_config_set_event_base(cfg, s.base);
    cl = ws_client_new(cfg);
    ws_config_free(cfg);
    ws_client_handle_open(cl, cl_open, &s);
    ws_client_handle_data(cl, cl_data, &s);
    snprintf(url, sizeof(url), "ws://127.0.0.1:%d/", port);
    /* Connect on main, before the loop runs (ws_client(3) allows it)... */
    check(ws_client_connect(cl, url) == 0, "client: ws_client_connect on main before the loop runs");
    /* ...then another thread runs the loop. */
    pthread_create(&loop_th, NULL, run_base, s.base);

    conn = wait_conn(&s.conn);
    check(conn != NULL, "client: opened with the loop on another thread");
    for (unsigned i = 0; conn != NULL && i < MESSAGES && rc == 0; i++) {
        rc = send_with_retry(conn, buf, make_message(buf, i));
        sent += rc == 0;
    }
    check(rc == 0 && sent == MESSAGES, "client: every ws_conn_send from main queued");
    for (int i = 0; i < 1000 && atomic_load(&s.echoed) < sent; i++)
        sleep_ms(10);
    printf("# client: sent %u, echoed %u\n", sent, atomic_load(&s.echoed));
    check(atomic_load(&s.echoed) == MESSAGES && !atomic_load(&s.out_of_order),
          "client: every message echoed, in order, unchanged");

    ws_client_stop(cl);
    event_base_loopbreak(s.base);
    pthread_join(loop_th, NULL);
    ws_conn_unref(conn);
    ws_client_free(cl);
    event_base_free(s.base);
    ws_server_stop(srv);
    pthread_join(srv_th, NULL);
    ws_server_free(srv);
}

/* ---- 2. a server on the application's base -------------------------------- */

struct server_side {
    _Atomic(struct ws_conn *) conn; /* ref'd on open */
    int fd;
    unsigned got;
    int bad;
};

static void srv_open(struct ws_conn *c, void *arg)
{
    struct server_side *s = arg;
    ws_conn_ref(c);
    atomic_store(&s->conn, c);
}

/* The raw peer: read MESSAGES text frames and check each. */
static void *raw_reader(void *arg)
{
    struct server_side *s = arg;
    static char want[MSG_SIZE], got[MSG_SIZE]; /* the reader thread only */
    int op;

    while (s->got < MESSAGES) {
        long n = rawws_read_frame(s->fd, &op, got, sizeof(got));
        if (n < 0)
            break;
        if (op != 1 || (size_t)n != make_message(want, s->got) || memcmp(got, want, MSG_SIZE) != 0)
            s->bad = 1;
        s->got++;
    }
    return NULL;
}

static void server_on_app_base(void)
{
    struct server_side s = { .fd = -1 };
    struct event_base *base = event_base_new();
    struct ws_config *cfg = ws_config_new();
    struct ws_server *srv;
    struct ws_conn *conn;
    pthread_t loop_th, reader;
    static char buf[MSG_SIZE];
    int port, rc = 0;
    unsigned sent = 0;

    /* Everything set up on main... */
    ws_config_set_event_base(cfg, base);
    ws_config_set_handle_signals(cfg, 0);
    ws_config_set_close_timeout(cfg, 200); /* raw peers never answer a close */
    srv = ws_server_new(cfg);
    ws_config_free(cfg);
    ws_server_handle_open(srv, srv_open, &s);
    port = ws_server_listen(srv, "127.0.0.1:0");
    check(srv != NULL && port > 0, "server: set up on main on the application's base");
    /* ...and the loop run by another thread. */
    pthread_create(&loop_th, NULL, run_base, base);

    s.fd = rawws_open(port, 10);
    conn = wait_conn(&s.conn);
    check(s.fd >= 0 && conn != NULL, "server: a raw client upgraded");
    if (s.fd >= 0)
        pthread_create(&reader, NULL, raw_reader, &s);
    for (unsigned i = 0; conn != NULL && s.fd >= 0 && i < MESSAGES && rc == 0; i++) {
        rc = send_with_retry(conn, buf, make_message(buf, i));
        sent += rc == 0;
    }
    check(rc == 0 && sent == MESSAGES, "server: every ws_conn_send from main queued");
    if (s.fd >= 0)
        pthread_join(reader, NULL);
    printf("# server: sent %u, received %u\n", sent, s.got);
    check(s.got == MESSAGES && !s.bad, "server: every message arrived, in order, unchanged");

    ws_server_stop(srv);
    event_base_loopbreak(base);
    pthread_join(loop_th, NULL);
    if (conn != NULL)
        ws_conn_unref(conn);
    ws_server_free(srv);
    event_base_free(base);
    if (s.fd >= 0)
        close(s.fd);
}

int main(void)
{
    evthread_use_pthreads(); /* before any base, as wsc.h asks */
    client_on_app_base();
    server_on_app_base();
    return failures > 0;
}
