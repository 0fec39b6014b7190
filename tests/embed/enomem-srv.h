/*
 * enomem-srv.h - what test-enomem's scenarios and sweep share: a server on
 * its own loop thread, raw peers that tell an ended connection from a
 * silent one, and the leak count through the allocation wrapper.
 */
#ifndef ENOMEM_SRV_H
#define ENOMEM_SRV_H

#include <errno.h>
#include <pthread.h>

#include "enomem.h"

/* The close timeout and max_buffered srv_start gives the server (a case
 * may change them; 0: the library's default). */
static unsigned srv_close_timeout_ms = 200; /* raw peers may never answer a close */
static size_t srv_max_buffered;
/* Worker loops (ws_config_set_threads; 1: the server's own loop only). */
static unsigned srv_threads = 1;

struct srv {
    struct ws_server *ws;
    pthread_t loop;
    int port;
    long live_before; /* libwsc's blocks before the server existed */
};

/* ws_server_run calls that have returned: a bounded wait for one. */
static atomic_int srv_runs_returned;

static void *srv_loop_main(void *arg)
{
    ws_server_run(arg);
    atomic_fetch_add(&srv_runs_returned, 1);
    return NULL;
}

/* A server on 127.0.0.1:0 (signals left alone, close timeout 200 ms,
 * permessage-deflate if asked, an HTTP handler if given) run by its own
 * thread (the acceptor and worker 0; srv_threads - 1 workers beside it);
 * 0 or -1. */
static inline int srv_start_http(struct srv *s, ws_data_cb on_data, ws_close_cb on_close,
                                 ws_http_cb on_http, void *arg, int deflate)
{
    struct ws_config *cfg;

    s->live_before = enomem_live(); /* before the config, freed in between */
    cfg = ws_config_new();
    ws_config_set_handle_signals(cfg, 0);
    ws_config_set_close_timeout(cfg, srv_close_timeout_ms);
    if (srv_max_buffered > 0)
        ws_config_set_max_buffered(cfg, srv_max_buffered);
    if (srv_threads > 1)
        ws_config_set_threads(cfg, srv_threads);
    ws_config_set_deflate(cfg, deflate);
    ws_config_set_deflate_threshold(cfg, 0);
    s->ws = ws_server_new(cfg);
    ws_config_free(cfg);
    if (s->ws == NULL)
        return -1;
    ws_server_handle_data(s->ws, on_data, arg);
    if (on_http != NULL)
        ws_server_handle_http(s->ws, on_http, arg);
    if (on_close != NULL)
        ws_server_handle_close(s->ws, on_close, arg);
    s->port = ws_server_listen(s->ws, "127.0.0.1:0");
    if (s->port <= 0 || pthread_create(&s->loop, NULL, srv_loop_main, s->ws) != 0) {
        ws_server_free(s->ws);
        s->ws = NULL;
        return -1;
    }
    return 0;
}

static inline int srv_start(struct srv *s, ws_data_cb on_data, ws_close_cb on_close,
                            void *arg, int deflate)
{
    return srv_start_http(s, on_data, on_close, NULL, arg, deflate);
}

/* Stop and free it; the blocks libwsc still holds that it did not hold
 * before srv_start (0: nothing leaked through the wrapper). */
static inline long srv_stop(struct srv *s)
{
    if (s->ws == NULL)
        return 0;
    ws_server_stop(s->ws);
    pthread_join(s->loop, NULL);
    ws_server_free(s->ws);
    s->ws = NULL;
    return enomem_live() - s->live_before;
}

enum peer_end { PEER_TIMEOUT, PEER_ENDED };

/* Read fd until the server ends the connection (EOF or RST) or the
 * socket's receive timeout passes; bytes read before go to *got. The
 * buffer is large: 10,000 reads must outlast whatever the socket buffers
 * hold (512-byte reads ran out after 5.12 MB of an 8 MiB send and called
 * it a timeout). */
static inline enum peer_end peer_wait_end(int fd, long *got)
{
    char buf[64 * 1024];

    *got = 0;
    for (int i = 0; i < 10000; i++) {
        ssize_t r = read(fd, buf, sizeof(buf));
        if (r > 0) {
            *got += r;
            continue;
        }
        if (r == 0 || errno == ECONNRESET || errno == EPIPE)
            return PEER_ENDED;
        if (errno != EINTR)
            return PEER_TIMEOUT; /* EAGAIN: the receive timeout */
    }
    return PEER_TIMEOUT;
}

/* One echo round trip of a text message on a raw peer. */
static inline int peer_echoes(int fd, const char *msg);

/* After a run: the loop still serves a new connection (one echo). */
static inline int srv_serves_fresh(const struct srv *s)
{
    int fd = rawws_open(s->port, 2), ok = fd >= 0 && peer_echoes(fd, "again");

    if (fd >= 0)
        close(fd);
    return ok;
}

/* One echo round trip of a text message on a raw peer. */
static inline int peer_echoes(int fd, const char *msg)
{
    char buf[128];
    int op = 0;
    long n;

    if (rawws_send(fd, WS_OP_TEXT, msg, strlen(msg)) != 0)
        return 0;
    n = rawws_read_frame(fd, &op, buf, sizeof(buf));
    return op == WS_OP_TEXT && n == (long)strlen(msg) && memcmp(buf, msg, (size_t)n) == 0;
}

#endif
