/*
 * echo - the smallest useful libwsc server: every text or binary message
 * goes back to its sender unchanged, with the same opcode, and none is
 * lost however slowly the sender reads its echoes.
 *
 *   examples/echo/echo [options] [HOST:PORT]      (--help lists them)
 *
 * Backpressure, done right: when an echo does not fit (WS_EAGAIN: the
 * client reads slower than it writes), the message is kept and the
 * connection stops reading (ws_conn_pause_reading), so the client's own
 * TCP window closes and it waits. The drain callback sends the kept echo
 * and resumes reading.
 *
 * Behind a load balancer, with --tag every reply starts with "[NAME] "
 * (--tag-host: the host name), so a client can tell which backend
 * answered; --trusted-proxies and --proxy-protocol let it see the real
 * client address (--log prints it per connection). Without a tag it is a
 * plain echo (conformance suites use it).
 * With --cert and --key it serves wss:// (TLS); SIGHUP re-reads the files;
 * --tls-min-version 1.3 turns TLS 1.2 clients away.
 * --proxy-protocol and --reuseport apply to it too: behind HAProxy in TCP
 * mode (send-proxy-v2) the PROXY header comes before the TLS handshake.
 *
 * Stop it with Ctrl-C: ws_server_run() catches SIGINT/SIGTERM, closes every
 * connection with 1001 "going away" and returns.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <wsc.h>

#define DEFAULT_ADDR "127.0.0.1:9001"

_Noreturn static void usage(FILE *out, int status)
{
    fprintf(out,
            "usage: echo [options] [HOST:PORT]\n"
            "Echo every WebSocket message back to its sender.\n"
            "  HOST:PORT              where to listen (default %s)\n"
            "  --max-message BYTES    largest message accepted, >= 1 (default 1 MiB)\n"
            "  --max-buffered BYTES   output queued per connection before reading\n"
            "                         pauses, >= 1024 and > max-message (default 4 MiB)\n"
            "  --max-connections N    open connections allowed, 0 = no limit\n"
            "                         (default 10000)\n"
            "  --threads N            worker loops, 1..256 (default 1)\n"
            "  --no-deflate           decline permessage-deflate\n"
            "  --deflate-context-takeover\n"
            "                         keep compression context between messages\n"
            "                         where the client allows (more memory)\n"
            "  --tag NAME             prefix every reply with \"[NAME] \"\n"
            "  --tag-host             the same with the host name\n"
            "  --trusted-proxies CIDRS  believe X-Forwarded-For / PROXY from these\n"
            "  --proxy-protocol       connections begin with a PROXY header (v1/v2)\n"
            "  --reuseport            SO_REUSEPORT: several processes on one port\n"
            "  --log                  print \"open ADDR\" for every connection\n"
            "  --cert FILE --key FILE serve wss:// with this PEM certificate chain\n"
            "                         and key (SIGHUP reloads them)\n"
            "  --ca FILE              require client certificates signed by this CA\n"
            "  --tls-min-version V    oldest TLS version accepted: 1.2 (default) or 1.3\n"
            "  --help                 show this help\n",
            DEFAULT_ADDR);
    exit(status);
}

/* A decimal number in [min, max], or exit 2 naming the option. */
static unsigned long long parse_number(const char *opt, const char *s, unsigned long long min,
                                       unsigned long long max)
{
    char *end;
    unsigned long long n;

    errno = 0;
    n = strtoull(s, &end, 10);
    if (s[0] < '0' || s[0] > '9' || *end != '\0' || errno != 0 || n < min || n > max) {
        fprintf(stderr, "echo: --%s: expected a number from %llu to %llu, got \"%s\"\n", opt,
                min, max, s);
        exit(2);
    }
    return n;
}

/* The one echo that did not fit, kept until the connection drains. */
struct held {
    enum ws_opcode op;
    size_t len;
    unsigned char data[];
};

/* ---- scale-out: --tag, proxies, --log ---------------------------------- */
static char tag[80];              /* "[NAME] ", empty without a tag */
static size_t tag_len;
static unsigned listen_flags;     /* WS_LISTEN_* */
static int log_open;

/* name NULL: the host name. */
static void set_tag(const char *name)
{
    char host[64] = "";

    if (name == NULL && gethostname(host, sizeof(host) - 1) == 0)
        name = host;
    snprintf(tag, sizeof(tag), "[%s] ", name != NULL ? name : "echo");
    tag_len = strlen(tag);
}

static void on_open(struct ws_conn *conn, void *arg)
{
    (void)arg;
    if (log_open)
        printf("open %s\n", ws_conn_remote_addr(conn));
}
/* ---- end scale-out -------------------------------------------------------- */

/* An echo as its own copy: the tag (if any), then the message. */
static struct held *held_new(enum ws_opcode op, const void *data, size_t len)
{
    struct held *h = malloc(sizeof(*h) + tag_len + len);

    if (h == NULL)
        return NULL;
    h->op = op;
    h->len = tag_len + len;
    memcpy(h->data, tag, tag_len);
    if (len > 0)
        memcpy(h->data + tag_len, data, len);
    return h;
}

/* Called on the server's loop thread once per complete message. */
static void on_data(struct ws_conn *conn, enum ws_opcode op, const void *data,
                    size_t len, void *arg)
{
    struct held *h = NULL;
    int rc;

    (void)arg;
    /* ws_conn_send() copies data, so sending the borrowed buffer is fine;
     * a tagged reply needs a buffer of its own, which is kept if need be. */
    if (tag_len > 0 && (h = held_new(op, data, len)) == NULL) {
        ws_conn_close(conn, WS_CLOSE_INTERNAL_ERROR, "out of memory");
        return;
    }
    rc = h != NULL ? ws_conn_send(conn, op, h->data, h->len) : ws_conn_send(conn, op, data, len);
    if (rc == WS_EAGAIN) {
        /* Keep it, and read nothing more until the client catches up. */
        if (h == NULL && (h = held_new(op, data, len)) == NULL) {
            ws_conn_close(conn, WS_CLOSE_INTERNAL_ERROR, "out of memory");
            return;
        }
        ws_conn_set_user(conn, h);
        ws_conn_pause_reading(conn);
        return;
    }
    if (rc < 0 && rc != WS_ECLOSED) /* ECLOSED: the peer is leaving */
        fprintf(stderr, "echo: send to %s: %s\n", ws_conn_remote_addr(conn),
                ws_strerror(rc));
    free(h);
}

/* Back at half of max_buffered: send the kept echo, then read again. */
static void on_drain(struct ws_conn *conn, void *arg)
{
    struct held *h = ws_conn_get_user(conn);
    int rc;

    (void)arg;
    if (h == NULL)
        return;
    rc = ws_conn_send(conn, h->op, h->data, h->len);
    if (rc == WS_EAGAIN)
        return; /* another drain follows */
    ws_conn_set_user(conn, NULL);
    free(h);
    if (rc == 0)
        ws_conn_resume_reading(conn);
}

static void on_close(struct ws_conn *conn, const struct ws_close_info *info, void *arg)
{
    (void)info;
    (void)arg;
    free(ws_conn_get_user(conn));
    ws_conn_set_user(conn, NULL);
}

/* The host as given (":port" means every IPv4 address), the port as bound:
 * port 0 lets the system pick one. */
static void print_url(const char *addr, int port, int tls)
{
    int hostlen = (int)(strrchr(addr, ':') - addr);

    printf("listening on %s://%.*s:%d/\n", tls ? "wss" : "ws", hostlen > 0 ? hostlen : 7,
           hostlen > 0 ? addr : "0.0.0.0", port);
}

/* SIGHUP: reload the certificate (ws_server_reload_tls works from any
 * thread; this one only waits for the signal). */
static void *reload_on_sighup(void *arg)
{
    struct ws_server *srv = arg;
    sigset_t hup;
    int sig;

    sigemptyset(&hup);
    sigaddset(&hup, SIGHUP);
    sigaddset(&hup, SIGUSR2); /* serve() ends us before it frees the server */
    while (sigwait(&hup, &sig) == 0 && sig == SIGHUP) {
        char why[256];
        int rc = ws_server_reload_tls(srv);
        ws_server_tls_error(srv, why, sizeof(why));
        printf("reload: %s%s%s\n", rc == 0 ? "ok" : ws_strerror(rc), rc == 0 ? "" : ": ",
               rc == 0 ? "" : why);
    }
    return NULL;
}

static int serve(const char *addr, const struct ws_config *cfg, const struct ws_tls *tls)
{
    struct ws_server *srv = ws_server_new(cfg);
    pthread_t reloader;
    bool reloading;
    int port, rc;

    if (srv == NULL) {
        fprintf(stderr, "echo: %s\n", ws_strerror(WS_ENOMEM));
        return 1;
    }
    ws_server_handle_data(srv, on_data, NULL);
    ws_server_handle_drain(srv, on_drain, NULL);
    ws_server_handle_close(srv, on_close, NULL);
    ws_server_handle_open(srv, on_open, NULL);
    port = tls != NULL ? ws_server_listen_tls_opts(srv, addr, tls, listen_flags)
                       : ws_server_listen_opts(srv, addr, listen_flags);
    if (port < 0) {
        char why[256] = "";
        if (port == WS_ETLS)
            ws_server_tls_error(srv, why, sizeof(why));
        fprintf(stderr, "echo: cannot listen on %s: %s%s%s\n", addr,
                ws_strerror(port), port == WS_ELISTEN || port == WS_ETLS ? ": " : "",
                port == WS_ELISTEN ? strerror(errno) : why);
        ws_server_free(srv);
        return 1;
    }
    reloading = tls != NULL && pthread_create(&reloader, NULL, reload_on_sighup, srv) == 0;
    print_url(addr, port, tls != NULL);
    rc = ws_server_run(srv); /* until SIGINT/SIGTERM and a graceful stop */
    if (reloading) { /* it uses srv: gone before srv is */
        pthread_kill(reloader, SIGUSR2);
        pthread_join(reloader, NULL);
    }
    if (rc < 0)
        fprintf(stderr, "echo: %s\n", ws_strerror(rc));
    ws_server_free(srv);
    return rc < 0;
}

int main(int argc, char **argv)
{
    static const struct option options[] = {
        {"max-message", required_argument, NULL, 'm'},
        {"max-buffered", required_argument, NULL, 'b'},
        {"no-deflate", no_argument, NULL, 'D'},
        {"max-connections", required_argument, NULL, 'C'},
        {"threads", required_argument, NULL, 't'},
        {"deflate-context-takeover", no_argument, NULL, 'T'},
        {"cert", required_argument, NULL, 'c'},
        {"key", required_argument, NULL, 'k'},
        {"ca", required_argument, NULL, 'a'},
        {"help", no_argument, NULL, 'h'},
        {"tag", required_argument, NULL, 'g'},
        {"tag-host", no_argument, NULL, 'H'},
        {"trusted-proxies", required_argument, NULL, 'P'},
        {"proxy-protocol", no_argument, NULL, 'x'},
        {"reuseport", no_argument, NULL, 'R'},
        {"log", no_argument, NULL, 'l'},
        {"tls-min-version", required_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    unsigned long long max_message = 1 << 20, max_buffered = 4 << 20;
    const char *cert = NULL, *key = NULL, *ca = NULL;
    struct ws_tls *tls = NULL;
    enum ws_tls_version tls_min = WS_TLS_V1_2;
    int tls_min_set = 0;
    sigset_t hup;
    struct ws_config *cfg;
    int opt, rc;

    setvbuf(stdout, NULL, _IOLBF, 0); /* stdout may be a pipe: line by line */
    /* The config is copied by ws_server_new(), so it can live here. */
    cfg = ws_config_new();
    if (cfg == NULL) {
        fprintf(stderr, "echo: %s\n", ws_strerror(WS_ENOMEM));
        return 1;
    }
    while ((opt = getopt_long(argc, argv, "h", options, NULL)) != -1) {
        switch (opt) {
        case 'm':
            max_message = parse_number("max-message", optarg, 1, SIZE_MAX / 2);
            break;
        case 'b':
            max_buffered = parse_number("max-buffered", optarg, 1024, SIZE_MAX / 2);
            break;
        case 'D':
            ws_config_set_deflate(cfg, 0);
            break;
        case 'C':
            ws_config_set_max_connections(
                cfg, (unsigned)parse_number("max-connections", optarg, 0, UINT32_MAX));
            break;
        case 't':
            ws_config_set_threads(cfg, (unsigned)parse_number("threads", optarg, 1, 256));
            break;
        case 'T':
            ws_config_set_deflate_no_context_takeover(cfg, 0);
            break;
        case 'g':
            set_tag(optarg);
            break;
        case 'H':
            set_tag(NULL);
            break;
        case 'P':
            if (ws_config_set_trusted_proxies(cfg, optarg) < 0) {
                fprintf(stderr, "echo: --trusted-proxies: not a CIDR list: %s\n", optarg);
                ws_config_free(cfg);
                return 2;
            }
            break;
        case 'x':
            listen_flags |= WS_LISTEN_PROXY_PROTOCOL;
            break;
        case 'R':
            listen_flags |= WS_LISTEN_REUSEPORT;
            break;
        case 'l':
            log_open = 1;
            break;
        case 'c':
            cert = optarg;
            break;
        case 'k':
            key = optarg;
            break;
        case 'a':
            ca = optarg;
            break;
        case 'V':
            if (strcmp(optarg, "1.2") != 0 && strcmp(optarg, "1.3") != 0) {
                fprintf(stderr, "echo: --tls-min-version: expected 1.2 or 1.3, got \"%s\"\n",
                        optarg);
                ws_config_free(cfg);
                return 2;
            }
            tls_min = optarg[2] == '3' ? WS_TLS_V1_3 : WS_TLS_V1_2;
            tls_min_set = 1;
            break;
        default:
            ws_config_free(cfg);
            usage(opt == 'h' ? stdout : stderr, opt == 'h' ? 0 : 2);
        }
    }
    if (argc - optind > 1 || (cert == NULL) != (key == NULL) || (ca != NULL && cert == NULL) ||
        (tls_min_set && cert == NULL)) {
        ws_config_free(cfg);
        usage(stderr, 2);
    }
    /* A kept echo must fit once the connection has drained to half. */
    if (max_buffered / 2 < max_message + 14 + tag_len) {
        fprintf(stderr, "echo: --max-buffered must be at least twice --max-message "
                        "(plus a frame header and the tag)\n");
        ws_config_free(cfg);
        return 2;
    }
    ws_config_set_max_message_size(cfg, (size_t)max_message);
    ws_config_set_max_buffered(cfg, (size_t)max_buffered);
    if (cert != NULL) { /* the listener copies the options */
        tls = ws_tls_new();
        if (tls == NULL || ws_tls_set_cert_file(tls, cert, key) != 0 ||
            (ca != NULL && ws_tls_set_ca_file(tls, ca) != 0) ||
            ws_tls_set_min_version(tls, tls_min) != 0) {
            fprintf(stderr, "echo: %s\n", ws_strerror(WS_ENOMEM));
            ws_config_free(cfg);
            return 1;
        }
        /* Only the reload thread takes SIGHUP (threads inherit the mask). */
        sigemptyset(&hup);
        sigaddset(&hup, SIGHUP);
        sigaddset(&hup, SIGUSR2);
        pthread_sigmask(SIG_BLOCK, &hup, NULL);
    }
    rc = serve(optind < argc ? argv[optind] : DEFAULT_ADDR, cfg, tls);
    ws_config_free(cfg);
    ws_tls_free(tls);
    return rc;
}
