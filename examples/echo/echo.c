/*
 * echo - the smallest useful libwsc server: every text or binary message
 * goes back to its sender unchanged, with the same opcode.
 *
 *   examples/echo/echo [--max-message BYTES] [--max-connections N] [--no-deflate]
 *                      [--deflate-context-takeover] [HOST:PORT]
 *
 * Stop it with Ctrl-C: ws_server_run() catches SIGINT/SIGTERM, closes every
 * connection with 1001 "going away" and returns.
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <wsc.h>

#define DEFAULT_ADDR "127.0.0.1:9001"

_Noreturn static void usage(FILE *out, int status)
{
    fprintf(out,
            "usage: echo [--max-message BYTES] [--no-deflate]\n"
            "            [--deflate-context-takeover] [HOST:PORT]\n"
            "Echo every WebSocket message back to its sender.\n"
            "  HOST:PORT            where to listen (default %s)\n"
            "  --max-message BYTES  largest message accepted (default 1 MiB)\n"
            "  --max-connections N  open connections allowed, 0 = no limit (default 10000)\n"
            "  --no-deflate         decline permessage-deflate\n"
            "  --deflate-context-takeover\n"
            "                       keep compression context between messages\n"
            "                       where the client allows (more memory)\n"
            "  --help               show this help\n",
            DEFAULT_ADDR);
    exit(status);
}

/* A decimal byte count, or 0 (which the library rejects) if s is not one. */
static size_t parse_size(const char *s)
{
    char *end;
    unsigned long long n;

    errno = 0;
    n = strtoull(s, &end, 10);
    if (!isdigit((unsigned char)s[0]) || *end != '\0' || errno != 0 ||
        n != (size_t)n)
        return 0;
    return (size_t)n;
}

/* Called on the server's loop thread once per complete message. */
static void on_data(struct ws_conn *conn, enum ws_opcode op, const void *data,
                    size_t len, void *arg)
{
    /* ws_conn_send() copies data, so sending the borrowed buffer is fine. */
    int rc = ws_conn_send(conn, op, data, len);

    (void)arg;
    /* WS_ECLOSED just means the peer is already leaving. */
    if (rc < 0 && rc != WS_ECLOSED)
        fprintf(stderr, "echo: send to %s: %s\n", ws_conn_remote_addr(conn),
                ws_strerror(rc));
}

/* The host as given (":port" means every IPv4 address), the port as bound:
 * port 0 lets the system pick one. */
static void print_url(const char *addr, int port)
{
    int hostlen = (int)(strrchr(addr, ':') - addr);

    printf("listening on ws://%.*s:%d/\n", hostlen > 0 ? hostlen : 7,
           hostlen > 0 ? addr : "0.0.0.0", port);
}

static int serve(const char *addr, const struct ws_config *cfg)
{
    struct ws_server *srv = ws_server_new(cfg);
    int port, rc;

    if (srv == NULL) {
        fprintf(stderr, "echo: %s\n", ws_strerror(WS_ENOMEM));
        return 1;
    }
    ws_server_handle_data(srv, on_data, NULL);
    port = ws_server_listen(srv, addr);
    if (port < 0) {
        fprintf(stderr, "echo: cannot listen on %s: %s%s%s\n", addr,
                ws_strerror(port), port == WS_ELISTEN ? ": " : "",
                port == WS_ELISTEN ? strerror(errno) : "");
        ws_server_free(srv);
        return 1;
    }
    print_url(addr, port);
    rc = ws_server_run(srv); /* until SIGINT/SIGTERM and a graceful stop */
    if (rc < 0)
        fprintf(stderr, "echo: %s\n", ws_strerror(rc));
    ws_server_free(srv);
    return rc < 0;
}

int main(int argc, char **argv)
{
    static const struct option options[] = {
        {"max-message", required_argument, NULL, 'm'},
        {"no-deflate", no_argument, NULL, 'D'},
        {"max-connections", required_argument, NULL, 'C'},
        {"deflate-context-takeover", no_argument, NULL, 'T'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *max_message = NULL, *max_connections = NULL;
    struct ws_config *cfg;
    int opt, rc = 0, deflate = 1, takeover = 0;

    setvbuf(stdout, NULL, _IOLBF, 0); /* stdout may be a pipe: line by line */
    while ((opt = getopt_long(argc, argv, "h", options, NULL)) != -1) {
        if (opt == 'm')
            max_message = optarg;
        else if (opt == 'D')
            deflate = 0;
        else if (opt == 'C')
            max_connections = optarg;
        else if (opt == 'T')
            takeover = 1;
        else
            usage(opt == 'h' ? stdout : stderr, opt == 'h' ? 0 : 2);
    }
    if (argc - optind > 1)
        usage(stderr, 2);

    /* The config is copied by ws_server_new(), so it can live here. */
    cfg = ws_config_new();
    if (cfg == NULL) {
        fprintf(stderr, "echo: %s\n", ws_strerror(WS_ENOMEM));
        return 1;
    }
    ws_config_set_deflate(cfg, deflate);
    ws_config_set_deflate_no_context_takeover(cfg, !takeover);
    if (max_connections != NULL) /* "0" is a valid value here: no limit */
        ws_config_set_max_connections(cfg, (unsigned)strtoul(max_connections, NULL, 10));
    if (max_message != NULL)
        rc = ws_config_set_max_message_size(cfg, parse_size(max_message));
    if (rc < 0)
        fprintf(stderr, "echo: --max-message %s: %s\n", max_message,
                ws_strerror(rc));
    else
        rc = serve(optind < argc ? argv[optind] : DEFAULT_ADDR, cfg);
    ws_config_free(cfg);
    return rc < 0 ? 2 : rc;
}
