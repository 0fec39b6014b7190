/*
 * ticker-client - subscribe to some symbols of ticker-server and print
 * their prices as they change; stay connected through server restarts.
 *
 *   examples/ticker/ticker-client URL SYMBOL... [--ping-interval S]
 *       [--ping-timeout S] [--reconnect-min-ms N] [--reconnect-max-ms N]
 *
 * The library reconnects with exponential backoff after any failure; every
 * open subscribes again, so a new connection resumes where the old one
 * stopped. The client also pings the server ({"type":"ping"}) and prints the
 * latency of each pong; a server that does not answer within the timeout is
 * closed with 4000 "ping timeout", which starts a reconnect. (A stopped or
 * wedged server keeps its TCP connections open: only an answer proves it is
 * serving.) Messages are described in ticker-proto.h.
 *
 * Ctrl-C or SIGTERM closes the connection with 1000 and exits 0.
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <wsc.h>

#include "ticker-proto.h"

struct options {
    const char *url;
    char **symbols;
    size_t nsymbols;
    unsigned ping_ms, timeout_ms, reconnect_min_ms, reconnect_max_ms;
};

/* Everything runs on the client's loop thread: no locks. */
struct app {
    struct options opt;
    struct ws_client *cl;
    struct event *ping_ev;  /* persistent while connected */
    struct event *deadline; /* pending while our ping is unanswered */
    json_int_t ping_id;     /* the ping awaited */
    char why[160];          /* how the last connection ended, or "" */
};

/* ---- options ------------------------------------------------------------ */

_Noreturn static void usage(FILE *out, int status)
{
    fprintf(out,
            "usage: ticker-client URL SYMBOL... [--ping-interval S] "
            "[--ping-timeout S]\n"
            "                     [--reconnect-min-ms N] "
            "[--reconnect-max-ms N]\n"
            "Print the price changes of SYMBOLs streamed by ticker-server.\n"
            "  URL                   the server, e.g. ws://127.0.0.1:9001/\n"
            "  SYMBOL...             symbols to subscribe to, e.g. AAPL SPY\n"
            "  --ping-interval S     ping the server every S seconds "
            "(default 2)\n"
            "  --ping-timeout S      reconnect when a ping, connect or close "
            "takes\n"
            "                        longer than S seconds (default 5)\n"
            "  --reconnect-min-ms N  first retry delay (default 250)\n"
            "  --reconnect-max-ms N  longest retry delay (default 5000)\n"
            "  --help                show this help\n");
    exit(status);
}

_Noreturn static void bad_value(const char *option, const char *value)
{
    fprintf(stderr, "ticker-client: invalid %s value: %s\n", option, value);
    exit(2);
}

static unsigned parse_ms(const char *option, const char *s)
{
    char *end;
    unsigned long n;

    errno = 0;
    n = strtoul(s, &end, 10);
    if (!isdigit((unsigned char)s[0]) || *end != '\0' || errno != 0 ||
        n < 1 || n > 3600000)
        bad_value(option, s);
    return (unsigned)n;
}

/* Seconds, fractions allowed, as milliseconds (at least 1; a day at most). */
static unsigned parse_seconds(const char *option, const char *s)
{
    char *end;
    double secs = strtod(s, &end);

    /* The comparison is also false for NaN. */
    if (end == s || *end != '\0' || !(secs >= 0.001 && secs <= 86400))
        bad_value(option, s);
    return (unsigned)(secs * 1000 + 0.5);
}

static void parse_options(int argc, char **argv, struct options *opt)
{
    static const struct option longopts[] = {
        {"ping-interval", required_argument, NULL, 'i'},
        {"ping-timeout", required_argument, NULL, 'T'},
        {"reconnect-min-ms", required_argument, NULL, 'm'},
        {"reconnect-max-ms", required_argument, NULL, 'M'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;

    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'i': opt->ping_ms = parse_seconds("--ping-interval", optarg); break;
        case 'T': opt->timeout_ms = parse_seconds("--ping-timeout", optarg); break;
        case 'm': opt->reconnect_min_ms = parse_ms("--reconnect-min-ms", optarg); break;
        case 'M': opt->reconnect_max_ms = parse_ms("--reconnect-max-ms", optarg); break;
        case 'h': usage(stdout, 0);
        default: usage(stderr, 2);
        }
    }
    if (argc - optind < 2) /* getopt_long moved the options first */
        usage(stderr, 2);
    if (opt->reconnect_max_ms < opt->reconnect_min_ms) {
        fprintf(stderr, "ticker-client: --reconnect-max-ms is below "
                "--reconnect-min-ms\n");
        exit(2);
    }
    opt->url = argv[optind];
    opt->symbols = argv + optind + 1;
    opt->nsymbols = (size_t)(argc - optind - 1);
}

/* ---- application-level ping -------------------------------------------- */

/* Only this process reads "ts" back, so a clock that never jumps will do. */
static json_int_t now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (json_int_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static struct timeval ms_to_tv(unsigned ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = ms % 1000 * 1000};

    return tv;
}

/* Our ping went unanswered: close, and the library reconnects once the
 * close is answered or its timeout (the same as ours) has passed. */
static void on_deadline(evutil_socket_t fd, short events, void *arg)
{
    struct app *app = arg;
    struct ws_conn *conn = ws_client_conn(app->cl);

    (void)fd;
    (void)events;
    printf("server did not answer ping %lld within %u ms: closing\n",
           (long long)app->ping_id, app->opt.timeout_ms);
    snprintf(app->why, sizeof(app->why), "ping timeout");
    event_del(app->ping_ev);
    if (conn != NULL)
        ws_conn_close(conn, TICKER_CLOSE_PING_TIMEOUT, "ping timeout");
}

/* One ping at a time: while one is unanswered its deadline keeps running. */
static void on_ping_timer(evutil_socket_t fd, short events, void *arg)
{
    struct app *app = arg;
    struct ws_conn *conn = ws_client_conn(app->cl);
    struct timeval tv = ms_to_tv(app->opt.timeout_ms);

    (void)fd;
    (void)events;
    if (conn == NULL || evtimer_pending(app->deadline, NULL))
        return;
    if (ticker_send(conn, ticker_ping(TICKER_PING, ++app->ping_id,
                                      now_us())) == 0)
        evtimer_add(app->deadline, &tv);
}

static void on_pong(struct app *app, const struct ticker_msg *msg)
{
    /* A late answer to an older ping proves little: wait for ours. */
    if (msg->id != app->ping_id || !evtimer_pending(app->deadline, NULL))
        return;
    evtimer_del(app->deadline);
    printf("pong from server in %.2fms\n", (double)(now_us() - msg->ts) / 1000);
}

/* ---- WebSocket events --------------------------------------------------- */

static void on_open(struct ws_conn *conn, void *arg)
{
    struct app *app = arg;
    struct timeval tv = ms_to_tv(app->opt.ping_ms);
    int rc;

    printf("connected to %s\n", app->opt.url);
    app->why[0] = '\0';
    /* Subscriptions belong to a connection: a new one starts with none. */
    rc = ticker_send(conn, ticker_subscription("subscribe", app->opt.symbols,
                                               app->opt.nsymbols));
    if (rc < 0)
        fprintf(stderr, "ticker-client: subscribe: %s\n", ws_strerror(rc));
    evtimer_del(app->deadline);
    event_add(app->ping_ev, &tv);
}

static void on_data(struct ws_conn *conn, enum ws_opcode op, const void *data,
                    size_t len, void *arg)
{
    struct app *app = arg;
    struct ticker_msg msg;
    char err[160];

    if (op != WS_OP_TEXT || ticker_parse(data, len, &msg, err, sizeof(err)) != 0) {
        fprintf(stderr, "ticker-client: ignoring a message: %s\n",
                op != WS_OP_TEXT ? "binary" : err);
        return;
    }
    switch (msg.type) {
    case TICKER_TICK:
        printf("tick %s %.2f (seq %lld)\n", msg.symbol, msg.price,
               (long long)msg.seq);
        break;
    case TICKER_PING: /* the server checks on us: echo id and ts */
        ticker_send(conn, ticker_ping(TICKER_PONG, msg.id, msg.ts));
        break;
    case TICKER_PONG:
        on_pong(app, &msg);
        break;
    case TICKER_ERROR:
        printf("server error: %s\n", msg.message);
        break;
    default:
        fprintf(stderr, "ticker-client: ignoring a message a server should "
                "not send\n");
        break;
    }
    ticker_msg_release(&msg);
}

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

static void on_close(struct ws_conn *conn, const struct ws_close_info *info,
                     void *arg)
{
    struct app *app = arg;

    (void)conn;
    event_del(app->ping_ev);
    event_del(app->deadline);
    printf("disconnected (code %d%s%s%s, %s)\n", info->code,
           info->reason[0] ? " \"" : "", info->reason,
           info->reason[0] ? "\"" : "", cause_name(info->cause));
    /* The reconnect line that follows says why: our reason if we closed,
     * else what the server or the library's heartbeat did. */
    if (app->why[0] != '\0')
        return;
    if (info->cause == WS_CAUSE_DISCONNECT)
        snprintf(app->why, sizeof(app->why), "connection lost");
    else if (info->cause == WS_CAUSE_TIMEOUT)
        snprintf(app->why, sizeof(app->why), "no answer to protocol pings");
    else if (info->remote)
        snprintf(app->why, sizeof(app->why), "closed by the server: %d %s",
                 info->code, info->reason);
    else
        snprintf(app->why, sizeof(app->why), "closed (%s)",
                 cause_name(info->cause));
}

static void on_reconnect(struct ws_client *cl, unsigned attempt,
                         unsigned delay_ms, int error, void *arg)
{
    struct app *app = arg;

    (void)cl;
    printf("reconnecting in %u ms (attempt %u): %s\n", delay_ms, attempt,
           app->why[0] != '\0' ? app->why : ws_strerror(error));
    app->why[0] = '\0'; /* failed attempts from now on speak for themselves */
}

static void on_give_up(struct ws_client *cl, int error, void *arg)
{
    (void)cl;
    (void)arg;
    if (error != 0)
        printf("gave up: %s\n", ws_strerror(error));
}

/* ---- client ------------------------------------------------------------- */

/* The library's heartbeat backs ours up (it pings only when nothing
 * arrives, later than we would give up); connecting, the upgrade and the
 * close handshake get our timeout too, so a stopped server cannot hold an
 * attempt for long. */
static struct ws_config *make_config(const struct options *opt)
{
    struct ws_config *cfg = ws_config_new();

    if (cfg == NULL)
        return NULL;
    ws_config_set_ping_interval(cfg, opt->ping_ms + 2 * opt->timeout_ms);
    ws_config_set_pong_timeout(cfg, opt->timeout_ms);
    ws_config_set_close_timeout(cfg, opt->timeout_ms);
    ws_config_set_connect_timeout(cfg, opt->timeout_ms);
    ws_config_set_handshake_timeout(cfg, opt->timeout_ms);
    return cfg;
}

static int setup(struct app *app)
{
    struct ws_config *cfg = make_config(&app->opt);
    struct event_base *base;

    app->cl = ws_client_new(cfg); /* NULL cfg: out of memory anyway */
    ws_config_free(cfg);
    if (cfg == NULL || app->cl == NULL)
        return WS_ENOMEM;
    base = ws_client_event_base(app->cl);
    app->ping_ev = event_new(base, -1, EV_PERSIST, on_ping_timer, app);
    app->deadline = evtimer_new(base, on_deadline, app);
    if (app->ping_ev == NULL || app->deadline == NULL)
        return WS_EEVENT;
    ws_client_handle_open(app->cl, on_open, app);
    ws_client_handle_data(app->cl, on_data, app);
    ws_client_handle_close(app->cl, on_close, app);
    ws_client_handle_reconnect(app->cl, on_reconnect, app);
    ws_client_handle_give_up(app->cl, on_give_up, app);
    return ws_client_set_reconnect(app->cl, app->opt.reconnect_min_ms,
                                   app->opt.reconnect_max_ms, 0);
}

static void teardown(struct app *app)
{
    /* Our events live on the client's event_base: free them before it. */
    if (app->ping_ev != NULL)
        event_free(app->ping_ev);
    if (app->deadline != NULL)
        event_free(app->deadline);
    ws_client_free(app->cl);
}

int main(int argc, char **argv)
{
    struct app app = {
        .opt = {.ping_ms = 2000, .timeout_ms = 5000, .reconnect_min_ms = 250,
                .reconnect_max_ms = 5000},
    };
    int rc;

    setvbuf(stdout, NULL, _IOLBF, 0); /* stdout may be a pipe: line by line */
    parse_options(argc, argv, &app.opt);
    rc = setup(&app);
    if (rc == 0)
        rc = ws_client_connect(app.cl, app.opt.url);
    if (rc == 0) /* the first attempt may fail too: then the retries run */
        rc = ws_client_run(app.cl); /* until SIGINT/SIGTERM */
    if (rc < 0)
        fprintf(stderr, "ticker-client: %s: %s\n", app.opt.url, ws_strerror(rc));
    teardown(&app);
    return rc < 0;
}
