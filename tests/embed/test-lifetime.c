/*
 * test-lifetime.c - a referenced connection outlives its server or client
 * (issue 10, defect 2). After ws_server_free / ws_client_free every call on
 * a conn the application still references is safe: an error or a neutral
 * value. And a thread sending on a referenced conn while the loop thread
 * stops and frees the server (the connection still open) never touches
 * freed memory (ASan) and gets 0 or WS_ECLOSED. Before the fix the accessors read conn->ep after the free
 * (ASan heap-use-after-free) and a racing send posted into a destroyed
 * loop. Prints PASS:/FAIL: lines.
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

#define EMBEDTEST_NAME "lifetime"
#include "embedtest.h"
#include "rawws.h"

static void on_open_ref(struct ws_conn *c, void *arg)
{
    ws_conn_ref(c);
    atomic_store((_Atomic(struct ws_conn *) *)arg, c);
}

static void echo_data(struct ws_conn *c, enum ws_opcode op, const void *d, size_t n, void *arg)
{
    (void)arg;
    ws_conn_send(c, op, d, n);
}

static struct ws_conn *wait_conn(_Atomic(struct ws_conn *) *slot)
{
    for (int i = 0; i < 1000 && atomic_load(slot) == NULL; i++)
        sleep_ms(10);
    return atomic_load(slot);
}

static void *run_server(void *srv)
{
    ws_server_run(srv);
    return NULL;
}

static void *run_client(void *cl)
{
    ws_client_run(cl);
    return NULL;
}

/* Every call on a conn whose endpoint is gone: errors or neutral values. */
static void calls_after_free(struct ws_conn *c, const char *who)
{
    char what[160];
    const char *proto;

#define CHECK(cond, text)                                       \
    do {                                                        \
        snprintf(what, sizeof(what), "%s: %s", who, text);      \
        check(cond, what);                                      \
    } while (0)
    CHECK(ws_conn_buffered_amount(c) == 0, "ws_conn_buffered_amount is 0");
    CHECK(ws_conn_subscribe(c, "news") < 0, "ws_conn_subscribe fails");
    CHECK(ws_conn_unsubscribe(c, "news") < 0, "ws_conn_unsubscribe fails");
    CHECK(ws_conn_server(c) == NULL, "ws_conn_server is NULL");
    CHECK(ws_conn_client(c) == NULL, "ws_conn_client is NULL");
    proto = ws_conn_subprotocol(c);
    CHECK(proto != NULL && proto[0] == '\0', "ws_conn_subprotocol is \"\"");
    CHECK(ws_conn_send(c, WS_OP_TEXT, "late", 4) == WS_ECLOSED, "ws_conn_send is WS_ECLOSED");
    CHECK(ws_conn_ping(c, "p", 1) == WS_ECLOSED, "ws_conn_ping is WS_ECLOSED");
    CHECK(ws_conn_close(c, 1000, "bye") == WS_ECLOSED, "ws_conn_close is WS_ECLOSED");
    CHECK(ws_conn_pause_reading(c) == WS_ECLOSED, "ws_conn_pause_reading is WS_ECLOSED"); /* new API */
    CHECK(ws_conn_resume_reading(c) == WS_ECLOSED, "ws_conn_resume_reading is WS_ECLOSED"); /* new API */
    CHECK(ws_conn_id(c) != 0, "ws_conn_id still readable");
#undef CHECK
}

static void server_conn_after_free(void)
{
    _Atomic(struct ws_conn *) slot = NULL;
    struct ws_server *srv = quiet_server();
    struct ws_conn *c;
    pthread_t th;
    int fd, port;

    ws_server_handle_open(srv, on_open_ref, &slot);
    port = ws_server_listen(srv, "127.0.0.1:0");
    pthread_create(&th, NULL, run_server, srv);
    fd = rawws_open(port, 10);
    c = wait_conn(&slot);
    check(fd >= 0 && c != NULL, "server: raw client upgraded, conn referenced");
    ws_server_stop(srv);
    pthread_join(th, NULL);
    ws_server_free(srv);
    if (c != NULL) {
        calls_after_free(c, "after ws_server_free");
        ws_conn_unref(c);
    }
    if (fd >= 0)
        close(fd);
}

static void client_conn_after_free(void)
{
    _Atomic(struct ws_conn *) slot = NULL;
    struct ws_server *srv = quiet_server();
    struct ws_client *cl = ws_client_new(NULL);
    struct ws_conn *c;
    pthread_t srv_th, cl_th;
    char url[64];

    ws_server_handle_data(srv, echo_data, NULL);
    snprintf(url, sizeof(url), "ws://127.0.0.1:%d/", ws_server_listen(srv, "127.0.0.1:0"));
    pthread_create(&srv_th, NULL, run_server, srv);
    ws_client_handle_open(cl, on_open_ref, &slot);
    check(ws_client_connect(cl, url) == 0, "client: ws_client_connect");
    pthread_create(&cl_th, NULL, run_client, cl);
    c = wait_conn(&slot);
    check(c != NULL, "client: opened, conn referenced");
    ws_client_stop(cl);
    pthread_join(cl_th, NULL);
    ws_client_free(cl);
    if (c != NULL) {
        calls_after_free(c, "after ws_client_free");
        ws_conn_unref(c);
    }
    ws_server_stop(srv);
    pthread_join(srv_th, NULL);
    ws_server_free(srv);
}

/* ---- a send racing ws_server_free ------------------------------------------- */

struct race {
    struct event_base *base;
    struct ws_server *srv;
    struct ws_conn *conn;
    atomic_int stop;
    atomic_uint ok, closed, other, after_free_ok;
    atomic_int freed;
    uint64_t dropped_before_free;
    int drained_fd;
};

static void *hammer(void *arg)
{
    struct race *r = arg;

    while (!atomic_load(&r->stop)) {
        int freed = atomic_load(&r->freed);
        int rc = ws_conn_send(r->conn, WS_OP_TEXT, "hammer", 6);
        if (rc == 0)
            atomic_fetch_add(freed ? &r->after_free_ok : &r->ok, 1);
        else if (rc == WS_ECLOSED)
            atomic_fetch_add(&r->closed, 1);
        else
            atomic_fetch_add(&r->other, 1);
        if (rc == WS_EAGAIN)
            sleep_ms(1);
    }
    return NULL;
}

/* The loop thread: run the application's base until main breaks it, then
 * free the server at once, its connection still open and being sent to. */
static void *run_and_free(void *arg)
{
    struct race *r = arg;

    event_base_loop(r->base, EVLOOP_NO_EXIT_ON_EMPTY);
    r->dropped_before_free = ws_server_dropped_sends(r->srv); /* new API */
    ws_server_free(r->srv);
    atomic_store(&r->freed, 1);
    return NULL;
}

/* The raw peer reads everything, so sends do not pile up. */
static void *drain_socket(void *arg)
{
    struct race *r = arg;
    char buf[65536];

    while (read(r->drained_fd, buf, sizeof(buf)) > 0)
        ;
    return NULL;
}

static void send_racing_free(void)
{
    _Atomic(struct ws_conn *) slot = NULL;
    struct race r = { .base = event_base_new(), .drained_fd = -1 };
    struct ws_config *cfg = ws_config_new();
    pthread_t loop_th, sender, drainer;
    int port;

    ws_config_set_event_base(cfg, r.base);
    r.srv = ws_server_new(cfg);
    ws_config_free(cfg);
    ws_server_handle_open(r.srv, on_open_ref, &slot);
    port = ws_server_listen(r.srv, "127.0.0.1:0");
    pthread_create(&loop_th, NULL, run_and_free, &r);
    r.drained_fd = rawws_open(port, 10);
    r.conn = wait_conn(&slot);
    check(r.drained_fd >= 0 && r.conn != NULL, "race: conn referenced");
    if (r.conn == NULL) {
        event_base_loopbreak(r.base);
        pthread_join(loop_th, NULL);
        event_base_free(r.base);
        return;
    }
    pthread_create(&drainer, NULL, drain_socket, &r);
    pthread_create(&sender, NULL, hammer, &r);
    sleep_ms(150);
    /* The loop stops with the connection open; its thread frees the
     * server while the sender keeps going. */
    event_base_loopbreak(r.base);
    pthread_join(loop_th, NULL);
    sleep_ms(50);
    atomic_store(&r.stop, 1);
    pthread_join(sender, NULL);
    printf("# race: %u queued, %u WS_ECLOSED, %u other, %u queued after the free; "
           "%llu dropped before the free\n",
           atomic_load(&r.ok), atomic_load(&r.closed), atomic_load(&r.other),
           atomic_load(&r.after_free_ok), (unsigned long long)r.dropped_before_free);
    check(atomic_load(&r.ok) > 0, "race: sends queued while the server ran");
    check(atomic_load(&r.closed) > 0, "race: sends after the free return WS_ECLOSED");
    check(atomic_load(&r.other) == 0, "race: no result other than 0 or WS_ECLOSED");
    check(atomic_load(&r.after_free_ok) == 0, "race: nothing queued after ws_server_free");
    check(ws_conn_send(r.conn, WS_OP_TEXT, "x", 1) == WS_ECLOSED, "race: a send after all is WS_ECLOSED");
    ws_conn_unref(r.conn);
    shutdown(r.drained_fd, SHUT_RDWR);
    pthread_join(drainer, NULL);
    close(r.drained_fd);
    event_base_free(r.base);
}

int main(void)
{
    evthread_use_pthreads();
    server_conn_after_free();
    client_conn_after_free();
    send_racing_free();
    return failures > 0;
}
