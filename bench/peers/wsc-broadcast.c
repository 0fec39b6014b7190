/*
 * wsc-broadcast - libwsc's peer for the broadcast scenario: every message
 * any connection sends goes to every open connection, sender included, with
 * ws_server_broadcast() (what node-echo.js does on /broadcast).
 *
 *   wsc-broadcast [HOST:PORT]      (default 127.0.0.1:9001)
 *
 * No connection limit (max_connections 0); other settings are the library's
 * defaults. Built by bench/Makefile against a libwsc build tree (WSC_BUILD).
 */
#include <stdio.h>
#include <stdlib.h>

#include <wsc.h>

static unsigned long long skipped; /* deliveries the backpressure cap refused */

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
    const char *addr = argc > 1 ? argv[1] : "127.0.0.1:9001";
    struct ws_server *srv = make_server();
    int port;

    setvbuf(stdout, NULL, _IOLBF, 0);
    if (srv == NULL) {
        fprintf(stderr, "wsc-broadcast: %s\n", ws_strerror(WS_ENOMEM));
        return 1;
    }
    ws_server_handle_data(srv, on_data, NULL);
    if ((port = ws_server_listen(srv, addr)) < 0) {
        fprintf(stderr, "wsc-broadcast: cannot listen on %s: %s\n", addr, ws_strerror(port));
        ws_server_free(srv);
        return 1;
    }
    printf("listening on ws://127.0.0.1:%d/\n", port);
    ws_server_run(srv); /* until SIGINT/SIGTERM */
    ws_server_free(srv);
    fprintf(stderr, "wsc-broadcast: %llu deliveries skipped by backpressure\n", skipped);
    return 0;
}
