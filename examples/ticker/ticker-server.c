/*
 * ticker-server - a stock ticker over WebSocket: clients subscribe to
 * symbols and get every price change of those symbols as JSON.
 *
 *   examples/ticker/ticker-server [HOST:PORT] [--symbols AAPL,SPY,...]
 *       [--seed N] [--tick-ms MS] [--ping-interval S] [--ping-timeout S]
 *
 * The feed is simulated and reproducible: each symbol walks randomly, driven
 * by its own PRNG seeded from --seed and the symbol's name. Messages are
 * described in ticker-proto.h.
 *
 * Liveness is checked twice. The application pings every client
 * ({"type":"ping"}) each interval; a client that sends nothing within the
 * timeout after a ping is closed with 4000 "ping timeout" and loses its
 * subscriptions at once. Below that, the library's own heartbeat (protocol
 * pings) notices a dead TCP peer even if the application's timers were
 * wrong; it is set looser, so the application's timeout comes first.
 *
 * Several processes (behind nginx or HAProxy) share one feed over Redis
 * with --redis HOST:PORT: every symbol is a topic, a tick published by the
 * process that simulates it reaches the subscribers of all of them. Start
 * one with the feed and the others with --no-feed, or each symbol would be
 * simulated (and sent) once per process.
 *
 * Stop it with Ctrl-C or SIGTERM: every client is closed with 1001.
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <wsc.h>

#include "ticker-proto.h"

#define DEFAULT_ADDR "127.0.0.1:9001"
#define DEFAULT_SYMBOLS "AAPL,MSFT,GOOG,AMZN,NVDA,TSLA,META,SPY"
#define MAX_SYMBOLS 64 /* subscriptions are a 64-bit mask */
#define SYMBOL_MAX 15

struct options {
    const char *addr;
    const char *symbols;
    uint64_t seed;
    unsigned tick_ms, ping_ms, timeout_ms;
    const char *redis;  /* --redis HOST:PORT: symbols are topics across processes */
    bool no_feed;       /* --no-feed: relay other processes' ticks only */
};

struct symbol {
    char name[SYMBOL_MAX + 1];
    long long cents; /* integers: a walk in doubles drifts off the cent grid */
    uint64_t rng;    /* its own PRNG: its walk does not depend on the others */
    json_int_t seq;  /* changes so far */
};

struct app;

/* One open connection; found again through ws_conn_get_user(). */
struct client {
    struct client *prev, *next;
    struct app *app;
    struct ws_conn *conn;
    struct event *deadline; /* pending while a ping of ours is unanswered */
    uint64_t subs;          /* bit i: subscribed to app->sym[i] */
    bool dropping;          /* timed out: closing, gets nothing more */
};

/* Everything runs on the server's loop thread: no locks. */
struct app {
    struct options opt;
    struct ws_server *srv;
    struct symbol sym[MAX_SYMBOLS];
    size_t nsym;
    struct event *tick_ev, *ping_ev;
    struct client *clients;
    json_int_t ping_id;
};

/* ---- options ------------------------------------------------------------ */

_Noreturn static void usage(FILE *out, int status)
{
    fprintf(out,
            "usage: ticker-server [HOST:PORT] [--symbols LIST] [--seed N]\n"
            "                     [--tick-ms MS] [--ping-interval S] "
            "[--ping-timeout S]\n"
            "Stream simulated stock prices to WebSocket subscribers.\n"
            "  HOST:PORT          where to listen (default %s)\n"
            "  --symbols LIST     comma-separated symbols, at most %d\n"
            "                     (default %s)\n"
            "  --seed N           seed of the simulated feed (default 1)\n"
            "  --tick-ms MS       time between price changes (default 500)\n"
            "  --ping-interval S  application ping every S seconds "
            "(default 2)\n"
            "  --ping-timeout S   drop a client silent for S seconds after a\n"
            "                     ping (default 5)\n"
            "  --redis HOST:PORT  share ticks with other ticker-servers over Redis\n"
            "  --no-feed          simulate nothing, relay the others' ticks\n"
            "  --help             show this help\n",
            DEFAULT_ADDR, MAX_SYMBOLS, DEFAULT_SYMBOLS);
    exit(status);
}

_Noreturn static void bad_value(const char *option, const char *value)
{
    fprintf(stderr, "ticker-server: invalid %s value: %s\n", option, value);
    exit(2);
}

static unsigned long long parse_ull(const char *option, const char *s,
                                    unsigned long long min,
                                    unsigned long long max)
{
    char *end;
    unsigned long long n;

    errno = 0;
    n = strtoull(s, &end, 10);
    if (!isdigit((unsigned char)s[0]) || *end != '\0' || errno != 0 ||
        n < min || n > max)
        bad_value(option, s);
    return n;
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
        {"symbols", required_argument, NULL, 'S'},
        {"seed", required_argument, NULL, 's'},
        {"tick-ms", required_argument, NULL, 't'},
        {"ping-interval", required_argument, NULL, 'i'},
        {"ping-timeout", required_argument, NULL, 'T'},
        {"help", no_argument, NULL, 'h'},
        {"redis", required_argument, NULL, 'r'},
        {"no-feed", no_argument, NULL, 'n'},
        {NULL, 0, NULL, 0},
    };
    int c;

    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'S': opt->symbols = optarg; break;
        case 's': opt->seed = parse_ull("--seed", optarg, 0, UINT64_MAX); break;
        case 't':
            opt->tick_ms = (unsigned)parse_ull("--tick-ms", optarg, 1, 3600000);
            break;
        case 'i': opt->ping_ms = parse_seconds("--ping-interval", optarg); break;
        case 'T': opt->timeout_ms = parse_seconds("--ping-timeout", optarg); break;
        case 'r': opt->redis = optarg; break;
        case 'n': opt->no_feed = true; break;
        case 'h': usage(stdout, 0);
        default: usage(stderr, 2);
        }
    }
    if (argc - optind > 1)
        usage(stderr, 2);
    if (optind < argc)
        opt->addr = argv[optind];
}

/* ---- the simulated feed ------------------------------------------------- */

/* splitmix64: tiny, fast and good enough to drive a demo's random walk. */
static uint64_t next_random(uint64_t *state)
{
    uint64_t z = (*state += UINT64_C(0x9E3779B97F4A7C15));

    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

/* FNV-1a: mixes the name into the seed, so a symbol's walk stays the same
 * whatever else is listed. */
static uint64_t hash_name(const char *s)
{
    uint64_t h = UINT64_C(0xcbf29ce484222325);

    while (*s != '\0')
        h = (h ^ (unsigned char)*s++) * UINT64_C(0x100000001b3);
    return h;
}

static bool symbol_name_ok(const char *s, size_t len)
{
    if (len == 0 || len > SYMBOL_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!isalnum((unsigned char)s[i]) && strchr(".-^", s[i]) == NULL)
            return false;
    return true;
}

static int find_symbol(const struct app *app, const char *name)
{
    for (size_t i = 0; i < app->nsym; i++)
        if (strcmp(app->sym[i].name, name) == 0)
            return (int)i;
    return -1;
}

/* Fills app->sym from "AAPL,SPY,..."; prints why and returns -1 if bad. */
static int load_symbols(struct app *app, const char *list, uint64_t seed)
{
    for (const char *p = list;; p++) {
        size_t len = strcspn(p, ",");
        struct symbol *s = &app->sym[app->nsym];

        if (!symbol_name_ok(p, len) || app->nsym == MAX_SYMBOLS) {
            fprintf(stderr, "ticker-server: bad --symbols list (at most %d "
                    "names of 1-%d letters, digits, '.', '-', '^'): %s\n",
                    MAX_SYMBOLS, SYMBOL_MAX, list);
            return -1;
        }
        memcpy(s->name, p, len);
        s->name[len] = '\0';
        if (find_symbol(app, s->name) < 0) { /* a repeat is harmless */
            s->rng = seed ^ hash_name(s->name);
            s->cents = 2000 + (long long)(next_random(&s->rng) % 48000);
            app->nsym++;
        }
        p += len;
        if (*p == '\0')
            return 0;
    }
}

/* One step of the walk: up to 0.5% either way, at least a cent. Returns
 * whether the price changed. */
static bool step_price(struct symbol *s)
{
    long long bp = (long long)(next_random(&s->rng) % 101) - 50; /* 0.01% */
    long long delta = s->cents * bp / 10000;

    if (delta == 0 && bp != 0)
        delta = bp > 0 ? 1 : -1;
    if (delta == 0 || s->cents + delta < 1)
        return false;
    s->cents += delta;
    s->seq++;
    return true;
}

/* ---- sending ------------------------------------------------------------ */

static void send_text(struct client *c, const struct ticker_text *text)
{
    int rc = ws_conn_send(c->conn, WS_OP_TEXT, text->data, text->len);

    /* Closing, or backed up over max_buffered: a price is stale by the next
     * tick anyway, so this one is simply skipped. */
    if (rc < 0 && rc != WS_ECLOSED && rc != WS_EAGAIN)
        fprintf(stderr, "ticker-server: send to %s: %s\n",
                ws_conn_remote_addr(c->conn), ws_strerror(rc));
}

static void send_tick(struct client *c, const struct symbol *s)
{
    struct ticker_text text;

    if (ticker_encode(ticker_tick(s->name, (double)s->cents / 100, s->seq),
                      &text) == 0)
        send_text(c, &text);
    ticker_text_free(&text);
}

/* Tells the client, and the log, and keeps the connection. */
static void send_error(struct client *c, const char *message)
{
    printf("client %s: error: %s\n", ws_conn_remote_addr(c->conn), message);
    ticker_send(c->conn, ticker_error("%s", message));
}

/* Encoded once, whatever the number of subscribers. */
static void publish(struct app *app, size_t i)
{
    const struct symbol *s = &app->sym[i];
    struct ticker_text text;

    if (ticker_encode(ticker_tick(s->name, (double)s->cents / 100, s->seq),
                      &text) != 0) {
        fprintf(stderr, "ticker-server: %s\n", ws_strerror(WS_ENOMEM));
        return;
    }
    if (app->opt.redis != NULL) {
        /* To this process's subscribers and, through Redis, the others'. */
        int rc = ws_server_publish(app->srv, s->name, WS_OP_TEXT, text.data, text.len);
        if (rc < 0 && rc != WS_EREDIS) /* WS_EREDIS: "redis down" was said */
            fprintf(stderr, "ticker-server: publish %s: %s\n", s->name, ws_strerror(rc));
        ticker_text_free(&text);
        return;
    }
    for (struct client *c = app->clients; c != NULL; c = c->next)
        if (!c->dropping && (c->subs >> i & 1))
            send_text(c, &text);
    ticker_text_free(&text);
}

static void on_tick(evutil_socket_t fd, short events, void *arg)
{
    struct app *app = arg;

    (void)fd;
    (void)events;
    for (size_t i = 0; i < app->nsym; i++)
        if (step_price(&app->sym[i]))
            publish(app, i);
}

/* ---- application-level ping -------------------------------------------- */

/* Only this process reads "ts" back, so a clock that never jumps will do. */
static json_int_t now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (json_int_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* A ping goes unanswered: stop sending (its subscriptions go now, not when
 * the close handshake ends), and close. A peer that does not answer the
 * close either is dropped after the library's close timeout. */
static void on_deadline(evutil_socket_t fd, short events, void *arg)
{
    struct client *c = arg;

    (void)fd;
    (void)events;
    printf("client %s dropped: ping timeout (silent for %u ms)\n",
           ws_conn_remote_addr(c->conn), c->app->opt.timeout_ms);
    c->dropping = true;
    c->subs = 0;
    ws_conn_close(c->conn, TICKER_CLOSE_PING_TIMEOUT, "ping timeout");
}

/* Every interval: a ping to each client that has none outstanding. The
 * deadline runs from the oldest unanswered ping, not the newest. */
static void on_ping_timer(evutil_socket_t fd, short events, void *arg)
{
    struct app *app = arg;
    struct timeval tv = {.tv_sec = app->opt.timeout_ms / 1000,
                         .tv_usec = app->opt.timeout_ms % 1000 * 1000};

    (void)fd;
    (void)events;
    for (struct client *c = app->clients; c != NULL; c = c->next) {
        if (c->dropping || evtimer_pending(c->deadline, NULL))
            continue;
        if (ticker_send(c->conn, ticker_ping(TICKER_PING, ++app->ping_id,
                                             now_us())) == 0)
            evtimer_add(c->deadline, &tv);
    }
}

/* ---- subscriptions ------------------------------------------------------ */

/* (Un)subscribes to each symbol listed; a new subscriber gets the current
 * price at once instead of waiting for the next change. */
static void subscribe(struct client *c, json_t *symbols, bool on)
{
    struct app *app = c->app;
    char done[MAX_SYMBOLS * (SYMBOL_MAX + 1) + 1] = "";
    size_t i;
    json_t *v;

    json_array_foreach(symbols, i, v) {
        int k = find_symbol(app, json_string_value(v));
        uint64_t bit;

        if (k < 0) {
            char msg[80];

            snprintf(msg, sizeof(msg), "unknown symbol \"%.40s\"",
                     json_string_value(v));
            send_error(c, msg);
            continue;
        }
        bit = UINT64_C(1) << k;
        if (((c->subs & bit) != 0) == on)
            continue; /* nothing changes */
        c->subs ^= bit;
        if (app->opt.redis != NULL && on) /* ticks arrive by topic then */
            ws_conn_subscribe(c->conn, app->sym[k].name);
        else if (app->opt.redis != NULL)
            ws_conn_unsubscribe(c->conn, app->sym[k].name);
        strcat(strcat(done, " "), app->sym[k].name);
        if (on)
            send_tick(c, &app->sym[k]);
    }
    if (done[0] != '\0')
        printf("client %s %s%s\n", ws_conn_remote_addr(c->conn),
               on ? "subscribed to" : "unsubscribed from", done);
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
    if (c != NULL)
        c->deadline = evtimer_new(ws_server_event_base(app->srv), on_deadline, c);
    if (c == NULL || c->deadline == NULL) {
        free(c);
        ws_conn_close(conn, WS_CLOSE_INTERNAL_ERROR, "out of memory");
        return;
    }
    c->app = app;
    c->conn = conn;
    c->next = app->clients;
    if (c->next != NULL)
        c->next->prev = c;
    app->clients = c;
    ws_conn_set_user(conn, c);
}

static void handle_message(struct client *c, const struct ticker_msg *msg)
{
    switch (msg->type) {
    case TICKER_SUBSCRIBE:
    case TICKER_UNSUBSCRIBE:
        subscribe(c, msg->symbols, msg->type == TICKER_SUBSCRIBE);
        break;
    case TICKER_PING: /* the client measures us: echo id and ts */
        ticker_send(c->conn, ticker_ping(TICKER_PONG, msg->id, msg->ts));
        break;
    case TICKER_PONG: /* liveness is all it proves, and that is done */
        break;
    case TICKER_TICK:
    case TICKER_ERROR:
        send_error(c, "clients may send subscribe, unsubscribe, ping, pong");
        break;
    }
}

static void on_data(struct ws_conn *conn, enum ws_opcode op, const void *data,
                    size_t len, void *arg)
{
    struct client *c = ws_conn_get_user(conn);
    struct ticker_msg msg;
    char err[160];

    (void)arg;
    if (c == NULL || c->dropping)
        return;
    /* Any message proves the client alive, as a pong would. */
    evtimer_del(c->deadline);
    if (op != WS_OP_TEXT)
        send_error(c, "binary messages are not understood: send JSON text");
    else if (ticker_parse(data, len, &msg, err, sizeof(err)) != 0)
        send_error(c, err);
    else {
        handle_message(c, &msg);
        ticker_msg_release(&msg);
    }
}

static void client_free(struct client *c)
{
    event_free(c->deadline);
    free(c);
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
        client_free(c);
    }
    printf("client %s disconnected (code %d%s%s%s, %s)\n",
           ws_conn_remote_addr(conn), info->code, info->reason[0] ? " \"" : "",
           info->reason, info->reason[0] ? "\"" : "", cause_name(info->cause));
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

/* The library's heartbeat backs the application's ping up: it pings only an
 * idle connection and allows a pong the application's timeout, after an
 * interval long enough that the application's deadline always comes first. */
static struct ws_config *make_config(const struct options *opt)
{
    struct ws_config *cfg = ws_config_new();

    if (cfg == NULL)
        return NULL;
    ws_config_set_ping_interval(cfg, opt->ping_ms + 2 * opt->timeout_ms);
    ws_config_set_pong_timeout(cfg, opt->timeout_ms);
    ws_config_set_close_timeout(cfg, opt->timeout_ms);
    return cfg;
}

static int add_timer(struct app *app, struct event **ev, unsigned ms,
                     event_callback_fn cb)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = ms % 1000 * 1000};

    *ev = event_new(ws_server_event_base(app->srv), -1, EV_PERSIST, cb, app);
    return *ev != NULL && event_add(*ev, &tv) == 0 ? 0 : WS_EEVENT;
}

static void on_redis(struct ws_server *srv, int up, void *arg)
{
    (void)srv;
    (void)arg;
    printf("redis %s\n", up ? "up" : "down");
}

/* Listen, print the URL, start the feed (unless --no-feed) and the pings.
 * Returns the port or WS_E*. */
static int setup(struct app *app)
{
    struct ws_config *cfg = make_config(&app->opt);
    int port;

    app->srv = ws_server_new(cfg);
    ws_config_free(cfg);
    if (app->srv == NULL)
        return WS_ENOMEM;
    ws_server_handle_open(app->srv, on_open, app);
    ws_server_handle_data(app->srv, on_data, app);
    ws_server_handle_close(app->srv, on_close, app);
    if (app->opt.redis != NULL) {
        int rc = ws_server_redis_attach(app->srv, app->opt.redis, "ticker:");
        if (rc < 0)
            return rc;
        ws_server_handle_redis(app->srv, on_redis, app);
    }
    port = ws_server_listen(app->srv, app->opt.addr);
    if (port < 0)
        return port;
    print_url(app->opt.addr, port);
    if ((!app->opt.no_feed && add_timer(app, &app->tick_ev, app->opt.tick_ms, on_tick) < 0) ||
        add_timer(app, &app->ping_ev, app->opt.ping_ms, on_ping_timer) < 0)
        return WS_EEVENT;
    return port;
}

static void teardown(struct app *app)
{
    /* Our events live on the server's event_base: free them before it. */
    if (app->tick_ev != NULL)
        event_free(app->tick_ev);
    if (app->ping_ev != NULL)
        event_free(app->ping_ev);
    /* ws_server_free() drops connections still open without callbacks. */
    while (app->clients != NULL) {
        struct client *c = app->clients;

        app->clients = c->next;
        client_free(c);
    }
    ws_server_free(app->srv);
}

static void print_feed(const struct app *app)
{
    printf("symbols:");
    for (size_t i = 0; i < app->nsym; i++)
        printf(" %s", app->sym[i].name);
    printf(" (seed %" PRIu64 ", a change every %u ms)\n", app->opt.seed,
           app->opt.tick_ms);
}

int main(int argc, char **argv)
{
    struct app app = {
        .opt = {.addr = DEFAULT_ADDR, .symbols = DEFAULT_SYMBOLS, .seed = 1,
                .tick_ms = 500, .ping_ms = 2000, .timeout_ms = 5000},
    };
    int port, rc = 1;

    setvbuf(stdout, NULL, _IOLBF, 0); /* stdout may be a pipe: line by line */
    parse_options(argc, argv, &app.opt);
    if (load_symbols(&app, app.opt.symbols, app.opt.seed) < 0)
        return 2;
    port = setup(&app);
    if (port < 0) {
        fprintf(stderr, "ticker-server: %s: %s%s%s\n", app.opt.addr,
                ws_strerror(port), port == WS_ELISTEN ? ": " : "",
                port == WS_ELISTEN ? strerror(errno) : "");
    } else {
        print_feed(&app);
        rc = ws_server_run(app.srv); /* until SIGINT/SIGTERM */
        if (rc < 0)
            fprintf(stderr, "ticker-server: %s\n", ws_strerror(rc));
    }
    teardown(&app);
    return rc != 0;
}
