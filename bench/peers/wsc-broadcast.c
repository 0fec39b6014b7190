/*
 * wsc-broadcast - libwsc's peer for the broadcast scenario: every message
 * any connection sends goes to every open connection, sender included, with
 * ws_server_broadcast() (what node-echo.js does on /broadcast).
 *
 *   wsc-broadcast [--per-client] [HOST:PORT]      (default 127.0.0.1:9001)
 *
 * --per-client does the same with a loop calling ws_conn_send() for every
 * connection, the baseline the encode-once path is measured against.
 *
 * No connection limit (max_connections 0); other settings are the library's
 * defaults. Built by bench/Makefile against a libwsc build tree (WSC_BUILD).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <wsc.h>

#include <string.h>

static unsigned long long skipped; /* deliveries the backpressure cap refused */

/* --per-client: the open connections, kept by the open/close callbacks
 * (one loop, so no locking). */
static struct ws_conn **conns;
static size_t num_conns, conns_cap;

static void on_data(struct ws_conn *conn, enum ws_opcode op, const void *data,
                    size_t len, void *arg)
{
    int rc = ws_server_broadcast(ws_conn_server(conn), op, data, len);

    (void)arg;
    if (rc > 0)
        skipped += (unsigned long long)rc;
    else if (rc < 0)
        fprintf(stderr, "wsc-broadcast: %s\n", ws_strerror(rc));
}

static void on_data_per_client(struct ws_conn *conn, enum ws_opcode op, const void *data,
                               size_t len, void *arg)
{
    (void)conn;
    (void)arg;
    for (size_t i = 0; i < num_conns; i++)
        if (ws_conn_send(conns[i], op, data, len) != 0)
            skipped++;
}

static void on_open(struct ws_conn *conn, void *arg)
{
    (void)arg;
    if (num_conns == conns_cap) {
        size_t cap = conns_cap ? conns_cap * 2 : 1024;
        struct ws_conn **p = realloc(conns, cap * sizeof(*p));
        if (p == NULL) {
            ws_conn_close(conn, 1011, "out of memory");
            return;
        }
        conns = p;
        conns_cap = cap;
    }
    ws_conn_set_user(conn, (void *)(uintptr_t)num_conns);
    conns[num_conns++] = conn;
}

static void on_close(struct ws_conn *conn, const struct ws_close_info *info, void *arg)
{
    size_t i = (size_t)(uintptr_t)ws_conn_get_user(conn);

    (void)info;
    (void)arg;
    if (i < num_conns && conns[i] == conn) { /* move the last one into its slot */
        conns[i] = conns[--num_conns];
        ws_conn_set_user(conns[i], (void *)(uintptr_t)i);
    }
}

static struct ws_server *make_server(void)
{
    struct ws_config *cfg = ws_config_new();
    struct ws_server *srv;

    if (cfg == NULL)
        return NULL;
    ws_config_set_max_connections(cfg, 0);
    srv = ws_server_new(cfg);
    ws_config_free(cfg);
    return srv;
}

int main(int argc, char **argv)
{
    bool per_client = argc > 1 && strcmp(argv[1], "--per-client") == 0;
    const char *addr = argc > 1 + per_client ? argv[1 + per_client] : "127.0.0.1:9001";
    struct ws_server *srv = make_server();
    int port;

    setvbuf(stdout, NULL, _IOLBF, 0);
    if (srv == NULL) {
        fprintf(stderr, "wsc-broadcast: %s\n", ws_strerror(WS_ENOMEM));
        return 1;
    }
    if (per_client) {
        ws_server_handle_open(srv, on_open, NULL);
        ws_server_handle_close(srv, on_close, NULL);
        ws_server_handle_data(srv, on_data_per_client, NULL);
    } else {
        ws_server_handle_data(srv, on_data, NULL);
    }
    if ((port = ws_server_listen(srv, addr)) < 0) {
        fprintf(stderr, "wsc-broadcast: cannot listen on %s: %s\n", addr, ws_strerror(port));
        ws_server_free(srv);
        return 1;
    }
    printf("listening on ws://127.0.0.1:%d/\n", port);
    ws_server_run(srv); /* until SIGINT/SIGTERM */
    ws_server_free(srv);
    free(conns);
    fprintf(stderr, "wsc-broadcast: %llu deliveries skipped by backpressure\n", skipped);
    return 0;
}
