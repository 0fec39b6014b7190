/*
 * rtt-measure - measure the round-trip time to every client with WebSocket
 * pings, after the RTT example of Go's github.com/dgrr/websocket.
 *
 *   examples/rtt-measure/rtt-measure [HOST:PORT] [--interval SECONDS]
 *                                    [--demo N] [--count K]
 *                                    [--cert FILE --key FILE [--ca FILE]]
 *
 * Every interval each client gets a ping carrying the send time; the pong
 * brings it back unchanged, and now minus then is the round trip. --demo N
 * starts N clients in this process (demo-client.c) to have something to
 * measure (libwsc clients on this server's own loop, which answer pings by
 * themselves); --count K stops gracefully after K measurements. With --cert
 * and --key it serves wss://, and the demo clients speak wss too, trusting
 * the CA given with --ca (else the system's trust store).
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include <event2/event.h>
#include <wsc.h>

#include "demo-client.h"

#define DEFAULT_ADDR "127.0.0.1:9001"
#define MAX_DEMO 100

struct options {
    const char *addr;
    struct timeval interval;
    unsigned demo;
    unsigned long count; /* 0: run until SIGINT/SIGTERM */
    const char *cert, *key, *ca; /* wss when cert and key are given */
};

/* An open connection, in an intrusive list; the close callback finds it again
 * through ws_conn_get_user(), so removal needs no search. */
struct client {
    struct client *prev, *next;
    struct ws_conn *conn;
};

/* Callbacks and the ping timer all run on the server's loop thread, so this
 * state needs no lock. */
struct app {
    struct ws_server *srv;
    struct event *ticker;
    struct client *clients;
    unsigned long count, printed;
    struct demo_client *demo[MAX_DEMO]; /* on the server's loop too */
    unsigned demos;
};

/* ---- options ------------------------------------------------------------ */

_Noreturn static void usage(FILE *out, int status)
{
    fprintf(out,
            "usage: rtt-measure [HOST:PORT] [--interval SECONDS] [--demo N] "
            "[--count K]\n"
            "Ping every WebSocket client and print round-trip times.\n"
            "  HOST:PORT           where to listen (default %s)\n"
            "  --interval SECONDS  time between pings, fractions allowed "
            "(default 2)\n"
            "  --demo N            also run N clients in-process (max %d)\n"
            "  --count K           stop after K measurements\n"
            "  --cert FILE --key FILE  serve wss:// with this certificate chain and key\n"
            "  --ca FILE           the CA the demo clients trust (wss)\n"
            "  --help              show this help\n",
            DEFAULT_ADDR, MAX_DEMO);
    exit(status);
}

_Noreturn static void bad_value(const char *option, const char *value)
{
    fprintf(stderr, "rtt-measure: invalid %s value: %s\n", option, value);
    exit(2);
}

static unsigned long parse_ulong(const char *option, const char *s,
                                 unsigned long max)
{
    char *end;
    unsigned long n;

    errno = 0;
    n = strtoul(s, &end, 10);
    if (!isdigit((unsigned char)s[0]) || *end != '\0' || errno != 0 || n > max)
        bad_value(option, s);
    return n;
}

static struct timeval parse_interval(const char *s)
{
    char *end;
    double secs = strtod(s, &end);
    struct timeval tv;

    /* At least 1 ms, as a zero timeval would make the timer spin; the
     * comparison is also false for NaN. */
    if (end == s || *end != '\0' || !(secs >= 0.001 && secs <= 86400))
        bad_value("--interval", s);
    tv.tv_sec = (time_t)secs;
    tv.tv_usec = (suseconds_t)((secs - (double)tv.tv_sec) * 1e6);
    return tv;
}

static void parse_options(int argc, char **argv, struct options *opt)
{
    static const struct option longopts[] = {
        {"interval", required_argument, NULL, 'i'},
        {"demo", required_argument, NULL, 'd'},
        {"count", required_argument, NULL, 'c'},
        {"cert", required_argument, NULL, 'C'},
        {"key", required_argument, NULL, 'K'},
        {"ca", required_argument, NULL, 'A'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;

    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'i':
            opt->interval = parse_interval(optarg);
            break;
        case 'd':
            opt->demo = (unsigned)parse_ulong("--demo", optarg, MAX_DEMO);
            break;
        case 'c':
            opt->count = parse_ulong("--count", optarg, ULONG_MAX);
            break;
        case 'C':
            opt->cert = optarg;
            break;
        case 'K':
            opt->key = optarg;
            break;
        case 'A':
            opt->ca = optarg;
            break;
        case 'h':
            usage(stdout, 0);
        default:
            usage(stderr, 2);
        }
    }
    if (argc - optind > 1 || (opt->cert == NULL) != (opt->key == NULL) ||
        (opt->ca != NULL && opt->cert == NULL))
        usage(stderr, 2);
    if (optind < argc)
        opt->addr = argv[optind];
}

/* ---- time --------------------------------------------------------------- */

/* Pings carry CLOCK_MONOTONIC time: only this process reads it back, and a
 * clock that never jumps cannot produce negative or bogus round trips. */
static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Network byte order, so any client may look at the payload. */
static void put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static uint64_t get_be64(const uint8_t *p)
{
    uint64_t v = 0;

    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

/* A duration the way Go prints one, to three significant digits: "850ns",
 * "85.3µs", "1.52ms", "2.01s". */
static void format_duration(uint64_t ns, char *buf, size_t size)
{
    static const char *const units[] = {"ns", "µs", "ms", "s"};
    uint64_t p = 1, scale = 1;
    unsigned u = 0;
    size_t len;

    while (ns / p >= 1000) /* round first: 999.96µs becomes 1ms */
        p *= 10;
    ns = (ns + p / 2) / p * p;
    for (; u < 3 && ns >= scale * 1000; u++)
        scale *= 1000;
    snprintf(buf, size, "%" PRIu64 ".%0*" PRIu64, ns / scale, (int)(3 * u),
             ns % scale);
    len = strlen(buf);
    while (buf[len - 1] == '0') /* stops at the '.' at the latest */
        len--;
    if (buf[len - 1] == '.')
        len--;
    snprintf(buf + len, size - len, "%s", units[u]);
}

/* ---- WebSocket events --------------------------------------------------- */

static const char *cause_name(enum ws_close_cause cause)
{
    switch (cause) {
    case WS_CAUSE_CLEAN: return "clean";
    case WS_CAUSE_TIMEOUT: return "timeout";
    case WS_CAUSE_PROTOCOL: return "protocol error";
    case WS_CAUSE_DISCONNECT: return "no close frame";
    case WS_CAUSE_ERROR: return "local error";
    case WS_CAUSE_SHUTDOWN: return "shutdown";
    case WS_CAUSE_SLOW: return "slow consumer";
    }
    return "unknown";
}

static void on_open(struct ws_conn *conn, void *arg)
{
    struct app *app = arg;
    struct client *c = calloc(1, sizeof(*c));

    printf("client %s connected\n", ws_conn_remote_addr(conn));
    if (c == NULL) {
        ws_conn_close(conn, WS_CLOSE_INTERNAL_ERROR, "out of memory");
        return;
    }
    c->conn = conn;
    c->next = app->clients;
    if (c->next != NULL)
        c->next->prev = c;
    app->clients = c;
    ws_conn_set_user(conn, c);
}

static void on_close(struct ws_conn *conn, const struct ws_close_info *info,
                     void *arg)
{
    struct app *app = arg;
    struct client *c = ws_conn_get_user(conn);

    /* conn is gone when we return: unlink it before the next tick. */
    if (c != NULL) {
        if (c->prev != NULL)
            c->prev->next = c->next;
        else
            app->clients = c->next;
        if (c->next != NULL)
            c->next->prev = c->prev;
        free(c);
    }
    printf("client %s disconnected (code %d, %s)\n", ws_conn_remote_addr(conn),
           info->code, cause_name(info->cause));
}

static void on_tick(evutil_socket_t fd, short events, void *arg)
{
    struct app *app = arg;

    (void)fd;
    (void)events;
    for (struct client *c = app->clients; c != NULL; c = c->next) {
        uint8_t stamp[8];
        int rc;

        put_be64(stamp, now_ns());
        rc = ws_conn_ping(c->conn, stamp, sizeof(stamp));
        if (rc < 0 && rc != WS_ECLOSED) /* closing connections don't count */
            fprintf(stderr, "rtt-measure: ping %s: %s\n",
                    ws_conn_remote_addr(c->conn), ws_strerror(rc));
    }
}

static void on_pong(struct ws_conn *conn, const void *data, size_t len,
                    void *arg)
{
    uint64_t now = now_ns(), sent;
    struct app *app = arg;
    char rtt[32];

    /* Only our own 8-byte stamps, and nothing once --count is reached. */
    if (len != 8 || (app->count > 0 && app->printed == app->count))
        return;
    sent = get_be64(data);
    if (sent > now)
        return; /* not a stamp of ours */
    format_duration(now - sent, rtt, sizeof(rtt));
    printf("RTT with %s is %s\n", ws_conn_remote_addr(conn), rtt);
    if (++app->printed == app->count) {
        /* The same graceful stop as on Ctrl-C; WS_ESTATE if that came first. */
        event_del(app->ticker);
        ws_server_stop(app->srv);
    }
}

/* ---- server ------------------------------------------------------------- */

/* "ws://host:port/" from the address as given (":port" means every IPv4
 * address) and the port as bound: port 0 lets the system pick. */
static void print_url(const char *addr, int port, int tls)
{
    int hostlen = (int)(strrchr(addr, ':') - addr);

    printf("listening on %s://%.*s:%d/\n", tls ? "wss" : "ws", hostlen > 0 ? hostlen : 7,
           hostlen > 0 ? addr : "0.0.0.0", port);
}

/* Where the demo clients dial: the listen host without brackets, with the
 * wildcard addresses replaced by loopback. */
static void dial_host(const char *addr, char *out, size_t size)
{
    int hostlen = (int)(strrchr(addr, ':') - addr);

    if (addr[0] == '[') {
        addr++;
        hostlen -= 2;
    }
    snprintf(out, size, "%.*s", hostlen, addr);
    if (out[0] == '\0' || strcmp(out, "0.0.0.0") == 0)
        snprintf(out, size, "127.0.0.1");
    else if (strcmp(out, "::") == 0)
        snprintf(out, size, "::1");
}

/* Listen, print the URL, arm the ping timer. Returns the port or WS_E*. */
static int setup(struct app *app, const struct options *opt)
{
    int port;

    app->srv = ws_server_new(NULL);
    if (app->srv == NULL)
        return WS_ENOMEM;
    ws_server_handle_open(app->srv, on_open, app);
    ws_server_handle_pong(app->srv, on_pong, app);
    ws_server_handle_close(app->srv, on_close, app);
    if (opt->cert != NULL) {
        struct ws_tls *tls = ws_tls_new();
        port = tls == NULL ? WS_ENOMEM : ws_tls_set_cert_file(tls, opt->cert, opt->key);
        if (port == 0)
            port = ws_server_listen_tls(app->srv, opt->addr, tls);
        ws_tls_free(tls); /* the listener keeps a copy */
    } else {
        port = ws_server_listen(app->srv, opt->addr);
    }
    if (port < 0)
        return port;
    print_url(opt->addr, port, opt->cert != NULL);
    /* A persistent timer on the server's own loop: no thread of our own. */
    app->ticker = event_new(ws_server_event_base(app->srv), -1, EV_PERSIST,
                            on_tick, app);
    if (app->ticker == NULL || event_add(app->ticker, &opt->interval) < 0)
        return WS_EEVENT;
    return port;
}

/* N clients in this process that dial our own port over real TCP. They
 * share the server's event_base: one thread runs both ends. */
static int start_demos(struct app *app, const struct options *opt, int port, unsigned n)
{
    const char *addr = opt->addr;
    struct event_base *base = ws_server_event_base(app->srv);
    char host[256];

    dial_host(addr, host, sizeof(host));
    while (app->demos < n) {
        struct demo_client *dc =
            demo_client_start(base, host, port, app->demos + 1, opt->cert != NULL, opt->ca);

        if (dc == NULL)
            return -1;
        app->demo[app->demos++] = dc;
    }
    return 0;
}

static void teardown(struct app *app)
{
    /* The graceful stop closed their connections (or the loop never ran and
     * demo_client_stop() drops them). They use the server's event_base, so
     * they go before the server frees it. */
    while (app->demos > 0)
        demo_client_stop(app->demo[--app->demos]);
    if (app->ticker != NULL)
        event_free(app->ticker); /* before the server frees its event_base */
    ws_server_free(app->srv);
    /* ws_server_free() drops connections still open without callbacks. */
    while (app->clients != NULL) {
        struct client *c = app->clients;

        app->clients = c->next;
        free(c);
    }
}

static int run(const struct options *opt)
{
    struct app app = {.count = opt->count};
    int port = setup(&app, opt), rc = 1;

    if (port < 0) {
        char why[256] = "";
        if (port == WS_ETLS)
            ws_server_tls_error(app.srv, why, sizeof(why));
        fprintf(stderr, "rtt-measure: %s: %s%s%s\n", opt->addr,
                ws_strerror(port), port == WS_ELISTEN || port == WS_ETLS ? ": " : "",
                port == WS_ELISTEN ? strerror(errno) : why);
    } else if (start_demos(&app, opt, port, opt->demo) == 0) {
        rc = ws_server_run(app.srv); /* until --count or SIGINT/SIGTERM */
        if (rc < 0)
            fprintf(stderr, "rtt-measure: %s\n", ws_strerror(rc));
    }
    teardown(&app);
    return rc != 0;
}

int main(int argc, char **argv)
{
    struct options opt = {.addr = DEFAULT_ADDR, .interval = {.tv_sec = 2}};

    setvbuf(stdout, NULL, _IOLBF, 0); /* stdout may be a pipe: line by line */
    parse_options(argc, argv, &opt);
    return run(&opt);
}
