/*
 * wsc-fanout - libwsc's peer for the cross-node fan-out bench (bench/run-fanout):
 * every connection subscribes to one topic when it opens, and every message
 * any connection sends is published to that topic with ws_server_publish().
 * With --redis the topic is bridged over Redis pub/sub, so a message sent to
 * one backend reaches the subscribers of every backend on the same Redis.
 *
 *   wsc-fanout [--redis HOST:PORT] [HOST:PORT]     (default 127.0.0.1:9001)
 *
 * Prints "listening on ws://127.0.0.1:PORT/" and, with --redis, "redis up" /
 * "redis down" as the bridge's state changes; on exit (SIGINT/SIGTERM) the
 * bridge's counters as one "redis-stats k=v ..." line on stderr.
 * No connection limit (max_connections 0) and no cap on pending handshakes;
 * other settings are the library's defaults.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <wsc.h>

#define TOPIC "fanout"

static unsigned long long skipped; /* deliveries the backpressure cap refused */

static void on_open(struct ws_conn *conn, void *arg)
{
    (void)arg;
    if (ws_conn_subscribe(conn, TOPIC) != 0)
        ws_conn_close(conn, 1011, "subscribe failed");
}

static void on_data(struct ws_conn *conn, enum ws_opcode op, const void *data, size_t len,
                    void *arg)
{
    int rc = ws_server_publish(ws_conn_server(conn), TOPIC, op, data, len);

    (void)arg;
    if (rc > 0)
        skipped += (unsigned long long)rc;
    else if (rc < 0)
        fprintf(stderr, "wsc-fanout: publish: %s\n", ws_strerror(rc));
}

static void on_redis(struct ws_server *srv, int up, void *arg)
{
    (void)srv;
    (void)arg;
    printf("redis %s\n", up ? "up" : "down");
}

static void print_redis_stats(struct ws_server *srv)
{
    struct ws_redis_stats st;

    if (ws_server_redis_stats(srv, &st) != 0)
        return;
    fprintf(stderr,
            "redis-stats published=%" PRIu64 " publish_errors=%" PRIu64 " received=%" PRIu64
            " own_ignored=%" PRIu64 " lost=%" PRIu64 " stale=%" PRIu64 "\n",
            st.published, st.publish_errors, st.received, st.own_ignored, st.lost, st.stale);
}

int main(int argc, char **argv)
{
    const char *addr = "127.0.0.1:9001", *redis = NULL;
    struct ws_config *cfg = ws_config_new();
    struct ws_server *srv;
    int port, rc;

    setvbuf(stdout, NULL, _IOLBF, 0);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--redis") == 0 && i + 1 < argc)
            redis = argv[++i];
        else if (argv[i][0] != '-')
            addr = argv[i];
        else {
            fprintf(stderr, "usage: wsc-fanout [--redis HOST:PORT] [HOST:PORT]\n");
            return 2;
        }
    }
    if (cfg == NULL)
        return 1;
    ws_config_set_max_connections(cfg, 0);
    ws_config_set_max_pending(cfg, 0);
    srv = ws_server_new(cfg);
    ws_config_free(cfg);
    if (srv == NULL)
        return 1;
    ws_server_handle_open(srv, on_open, NULL);
    ws_server_handle_data(srv, on_data, NULL);
    if (redis != NULL) {
        if ((rc = ws_server_redis_attach(srv, redis, NULL)) != 0) {
            fprintf(stderr, "wsc-fanout: --redis %s: %s\n", redis, ws_strerror(rc));
            ws_server_free(srv);
            return rc == WS_EUNSUPPORTED ? 3 : 1;
        }
        ws_server_handle_redis(srv, on_redis, NULL);
    }
    if ((port = ws_server_listen(srv, addr)) < 0) {
        fprintf(stderr, "wsc-fanout: cannot listen on %s: %s\n", addr, ws_strerror(port));
        ws_server_free(srv);
        return 1;
    }
    printf("listening on ws://127.0.0.1:%d/\n", port);
    ws_server_run(srv); /* until SIGINT/SIGTERM */
    if (redis != NULL)
        print_redis_stats(srv);
    ws_server_free(srv);
    fprintf(stderr, "wsc-fanout: %llu deliveries skipped by backpressure\n", skipped);
    return 0;
}
