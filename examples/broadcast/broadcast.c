/*
 * broadcast - a server that pushes one message to all its clients, on a
 * timer and on demand, with ws_server_broadcast().
 *
 *   examples/broadcast/broadcast [--interval MS] [--max-connections N]
 *                                [HOST:PORT]
 *
 * Every interval each client gets "tick N HH:MM:SS.mmm to K clients".
 * Besides, two ways to broadcast on demand:
 *   - a client sends a text message: everyone, the sender too, gets it
 *     prefixed with the sender's connection id, "from 5: hello";
 *   - an HTTP POST of a UTF-8 body to /broadcast sends the body to everyone:
 *       curl --data-binary 'hello' http://127.0.0.1:9001/broadcast
 *     answers "sent to K clients" (400 if the body is not UTF-8).
 * ws_server_broadcast() frames each message once and queues the same bytes on
 * every open connection; a client too slow to keep up is skipped (the count
 * is printed), it never holds up the others. It may be called from any
 * thread; here everything runs on the server's loop.
 *
 * Stop it with Ctrl-C: ws_server_run() catches SIGINT/SIGTERM, closes every
 * connection with 1001 "going away" and returns.
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

#define DEFAULT_ADDR "127.0.0.1:9001"
#define MAX_INTERVAL_MS 86400000UL /* a day */

struct options {
    const char *addr;
    unsigned long interval_ms;
    unsigned max_connections;
    int set_max_connections; /* 0: the library's default */
};

/* The timer and every callback run on the server's loop thread, so this
 * state needs no lock. Clients are counted by the library
 * (ws_server_connection_count()), not here. */
struct app {
    struct ws_server *srv;
    struct event *ticker;
    unsigned long long ticks; /* sent so far: the next one is ticks + 1 */
};

/* ---- options ------------------------------------------------------------ */

_Noreturn static void usage(FILE *out, int status)
{
    fprintf(out,
            "usage: broadcast [--interval MS] [--max-connections N] [HOST:PORT]\n"
            "Broadcast a tick to every WebSocket client each interval, and\n"
            "on demand: a client's text message, or the body of an HTTP\n"
            "POST /broadcast.\n"
            "  HOST:PORT            where to listen (default %s)\n"
            "  --interval MS        time between ticks (default 1000)\n"
            "  --max-connections N  open connections allowed, 0 = no limit (default 10000)\n"
            "  --help               show this help\n",
            DEFAULT_ADDR);
    exit(status);
}

_Noreturn static void bad_value(const char *option, const char *value)
{
    fprintf(stderr, "broadcast: invalid %s value: %s\n", option, value);
    exit(2);
}

static unsigned long parse_ulong(const char *option, const char *s,
                                 unsigned long min, unsigned long max)
{
    char *end;
    unsigned long n;

    errno = 0;
    n = strtoul(s, &end, 10);
    if (!isdigit((unsigned char)s[0]) || *end != '\0' || errno != 0 ||
        n < min || n > max)
        bad_value(option, s);
    return n;
}

static void parse_options(int argc, char **argv, struct options *opt)
{
    static const struct option longopts[] = {
        {"interval", required_argument, NULL, 'i'},
        {"max-connections", required_argument, NULL, 'C'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;

    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'i':
            /* At least 1 ms: a zero timeval would make the timer spin. */
            opt->interval_ms = parse_ulong("--interval", optarg, 1,
                                           MAX_INTERVAL_MS);
            break;
        case 'C':
            /* "0" is a valid value here: no limit */
            opt->max_connections = (unsigned)parse_ulong("--max-connections",
                                                         optarg, 0, UINT_MAX);
            opt->set_max_connections = 1;
            break;
        case 'h':
            usage(stdout, 0);
        default:
            usage(stderr, 2);
        }
    }
    if (argc - optind > 1)
        usage(stderr, 2);
    if (optind < argc)
        opt->addr = argv[optind];
}

/* ---- broadcasting ------------------------------------------------------- */

static const char *plural(size_t n)
{
    return n == 1 ? "" : "s";
}

/* Wall-clock time as "12:34:56.789", for people reading the ticks. */
static void format_now(char *buf, size_t size)
{
    struct timespec ts;
    struct tm tm;
    size_t len;

    clock_gettime(CLOCK_REALTIME, &ts);
    localtime_r(&ts.tv_sec, &tm);
    len = strftime(buf, size, "%H:%M:%S", &tm);
    snprintf(buf + len, size - len, ".%03ld", ts.tv_nsec / 1000000);
}

/*
 * Broadcast a text message and print how many clients backpressure made it
 * skip. Returns what ws_server_broadcast() returned: the skipped count, or
 * WS_E*. Errors are reported here, except WS_EUTF8: invalid text is the
 * sender's fault, and the caller tells the sender.
 */
static int broadcast_text(struct app *app, const char *what, const void *data,
                          size_t len)
{
    int rc = ws_server_broadcast(app->srv, WS_OP_TEXT, data, len);

    if (rc > 0)
        printf("%s: %d client%s skipped (backpressure)\n", what, rc,
               plural((size_t)rc));
    else if (rc < 0 && rc != WS_EUTF8)
        fprintf(stderr, "broadcast: %s: %s\n", what, ws_strerror(rc));
    return rc;
}

/* Connections the last broadcast reached: the open ones minus the skipped. */
static size_t reached(const struct app *app, int skipped)
{
    size_t open = ws_server_connection_count(app->srv);

    return open > (size_t)skipped ? open - (size_t)skipped : 0;
}

/* On the server's loop, every interval. Ticks go out with no client too, so
 * their numbers count the intervals since the start. */
static void on_tick(evutil_socket_t fd, short events, void *arg)
{
    struct app *app = arg;
    size_t clients = ws_server_connection_count(app->srv);
    char now[32], msg[128];
    int len;

    (void)fd;
    (void)events;
    format_now(now, sizeof(now));
    len = snprintf(msg, sizeof(msg), "tick %llu %s to %zu client%s",
                   ++app->ticks, now, clients, plural(clients));
    if (len > 0 && (size_t)len < sizeof(msg))
        broadcast_text(app, "tick", msg, (size_t)len);
}

/* ---- WebSocket events --------------------------------------------------- */

static void on_open(struct ws_conn *conn, void *arg)
{
    struct app *app = arg;
    size_t clients = ws_server_connection_count(app->srv); /* this one too */

    printf("client %" PRIu64 " at %s connected (%zu client%s)\n",
           ws_conn_id(conn), ws_conn_remote_addr(conn), clients,
           plural(clients));
}

static void on_close(struct ws_conn *conn, const struct ws_close_info *info,
                     void *arg)
{
    struct app *app = arg;
    size_t clients = ws_server_connection_count(app->srv); /* without it */

    printf("client %" PRIu64 " at %s disconnected, code %d (%zu client%s)\n",
           ws_conn_id(conn), ws_conn_remote_addr(conn), info->code, clients,
           plural(clients));
}

/* A client's text message goes to everyone as "from ID: text". */
static void on_data(struct ws_conn *conn, enum ws_opcode op, const void *data,
                    size_t len, void *arg)
{
    struct app *app = arg;
    char prefix[48];
    int plen;
    char *msg;

    if (op != WS_OP_TEXT) {
        /* What a binary message would mean to the others is unclear: say so
         * with the close code meant for it. */
        int rc = ws_conn_close(conn, WS_CLOSE_UNSUPPORTED_DATA, "text only");

        if (rc < 0 && rc != WS_ECLOSED)
            fprintf(stderr, "broadcast: close %s: %s\n",
                    ws_conn_remote_addr(conn), ws_strerror(rc));
        return;
    }
    plen = snprintf(prefix, sizeof(prefix), "from %" PRIu64 ": ",
                    ws_conn_id(conn));
    /* data is borrowed and len is at most max_message_size (1 MiB by
     * default); ws_server_broadcast() copies, so msg is ours to free. */
    msg = malloc((size_t)plen + len);
    if (msg == NULL) {
        fprintf(stderr, "broadcast: message from %s: %s\n",
                ws_conn_remote_addr(conn), ws_strerror(WS_ENOMEM));
        return;
    }
    memcpy(msg, prefix, (size_t)plen);
    if (len > 0)
        memcpy(msg + plen, data, len);
    /* The library checked the text is UTF-8; an ASCII prefix keeps it so. */
    broadcast_text(app, "message", msg, (size_t)plen + len);
    free(msg);
}

/* ---- HTTP --------------------------------------------------------------- */

/* Answer with a short text body; a failure only means a malformed call. */
static void reply(struct ws_response *res, int status, const char *text)
{
    int rc = ws_response_send(res, status, "text/plain; charset=utf-8", text,
                              strlen(text));

    if (rc < 0)
        fprintf(stderr, "broadcast: HTTP %d response: %s\n", status,
                ws_strerror(rc));
}

/* POST /broadcast sends its body to every client; nothing else is served. */
static void on_http(const struct ws_request *req, struct ws_response *res,
                    void *arg)
{
    struct app *app = arg;
    const void *body;
    char text[64];
    size_t len;
    int rc;

    if (strcmp(ws_request_path(req), "/broadcast") != 0) {
        reply(res, 404, "not found: POST to /broadcast\n");
        return;
    }
    if (strcmp(ws_request_method(req), "POST") != 0) {
        rc = ws_response_add_header(res, "Allow", "POST");
        if (rc < 0)
            fprintf(stderr, "broadcast: Allow header: %s\n", ws_strerror(rc));
        reply(res, 405, "use POST\n");
        return;
    }
    body = ws_request_body(req, &len);
    rc = broadcast_text(app, "POST /broadcast", body, len);
    if (rc == WS_EUTF8) {
        reply(res, 400, "the body is not valid UTF-8\n");
    } else if (rc < 0) {
        snprintf(text, sizeof(text), "%s\n", ws_strerror(rc));
        reply(res, 500, text);
    } else {
        size_t n = reached(app, rc);

        snprintf(text, sizeof(text), "sent to %zu client%s\n", n, plural(n));
        reply(res, 200, text);
    }
}

/* ---- server ------------------------------------------------------------- */

/* "ws://host:port/" from the address as given (":port" means every IPv4
 * address) and the port as bound: port 0 lets the system pick. */
static void print_url(const char *addr, int port)
{
    int hostlen = (int)(strrchr(addr, ':') - addr);

    printf("listening on ws://%.*s:%d/\n", hostlen > 0 ? hostlen : 7,
           hostlen > 0 ? addr : "0.0.0.0", port);
}

/* The server with its options and callbacks. Returns 0 or WS_E*. */
static int create(struct app *app, const struct options *opt)
{
    /* The config is copied by ws_server_new(), so it can be freed here. */
    struct ws_config *cfg = ws_config_new();
    int rc = 0;

    if (cfg == NULL)
        return WS_ENOMEM;
    if (opt->set_max_connections)
        rc = ws_config_set_max_connections(cfg, opt->max_connections);
    if (rc == 0) {
        app->srv = ws_server_new(cfg);
        if (app->srv == NULL)
            rc = WS_ENOMEM;
    }
    ws_config_free(cfg);
    if (rc < 0)
        return rc;
    ws_server_handle_open(app->srv, on_open, app);
    ws_server_handle_data(app->srv, on_data, app);
    ws_server_handle_close(app->srv, on_close, app);
    ws_server_handle_http(app->srv, on_http, app);
    return 0;
}

/* Listen, print the URL, arm the tick timer. Returns the port or WS_E*. */
static int setup(struct app *app, const struct options *opt)
{
    struct timeval interval = {
        .tv_sec = (time_t)(opt->interval_ms / 1000),
        .tv_usec = (suseconds_t)(opt->interval_ms % 1000 * 1000),
    };
    int rc = create(app, opt), port;

    if (rc < 0)
        return rc;
    port = ws_server_listen(app->srv, opt->addr);
    if (port < 0)
        return port;
    print_url(opt->addr, port);
    /* A persistent timer on the server's own loop: no thread of our own,
     * and the broadcasts it makes are loop-thread calls (they return the
     * skipped count). */
    app->ticker = event_new(ws_server_event_base(app->srv), -1, EV_PERSIST,
                            on_tick, app);
    if (app->ticker == NULL || event_add(app->ticker, &interval) < 0)
        return WS_EEVENT;
    return port;
}

static void teardown(struct app *app)
{
    if (app->ticker != NULL)
        event_free(app->ticker); /* before the server frees its event_base */
    ws_server_free(app->srv);
}

static int run(const struct options *opt)
{
    struct app app = {0};
    int port = setup(&app, opt), rc = 1;

    if (port < 0)
        fprintf(stderr, "broadcast: %s: %s%s%s\n", opt->addr,
                ws_strerror(port), port == WS_ELISTEN ? ": " : "",
                port == WS_ELISTEN ? strerror(errno) : "");
    else {
        rc = ws_server_run(app.srv); /* until SIGINT/SIGTERM */
        if (rc < 0)
            fprintf(stderr, "broadcast: %s\n", ws_strerror(rc));
    }
    teardown(&app);
    return rc != 0;
}

int main(int argc, char **argv)
{
    struct options opt = {.addr = DEFAULT_ADDR, .interval_ms = 1000};

    setvbuf(stdout, NULL, _IOLBF, 0); /* stdout may be a pipe: line by line */
    parse_options(argc, argv, &opt);
    return run(&opt);
}
