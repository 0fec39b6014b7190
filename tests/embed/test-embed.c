/*
 * test-embed.c - libwsc on the application's own event_base: the
 * application runs the loop, keeps its own events, and ws_server_stop()
 * removes only the server's. A client thread speaks raw RFC 6455.
 * Prints PASS:/FAIL: lines for tests/run.
 */
#include <arpa/inet.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>

#include <wsc.h>

static int failures;

static void check(int ok, const char *what)
{
    printf("%s: embed %s\n", ok ? "PASS" : "FAIL", what);
    failures += !ok;
}

struct app {
    struct event_base *base;
    struct ws_server *srv;
    int port, port6;
    int opened, closed, app_ticks;
    char echoed[64];
};

static void on_open(struct ws_conn *c, void *arg)
{
    struct app *a = arg;
    a->opened++;
    ws_conn_send(c, WS_OP_TEXT, "welcome", 7);
}

static void on_data(struct ws_conn *c, enum ws_opcode op, const void *d, size_t n, void *arg)
{
    struct app *a = arg;
    snprintf(a->echoed, sizeof(a->echoed), "%.*s", (int)n, (const char *)d);
    ws_conn_send(c, op, d, n);
}

static void on_close(struct ws_conn *c, const struct ws_close_info *info, void *arg)
{
    struct app *a = arg;
    (void)c;
    a->closed++;
    /* After both sessions the server stops; the application's loop goes on. */
    if (info->code == 1000 && a->closed == 2)
        ws_server_stop(a->srv);
}

/* The application's own timer: proves its events live beside the server. */
static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    struct app *a = arg;
    (void)fd;
    (void)what;
    a->app_ticks++;
    if (a->closed == 2 && a->app_ticks > 5)
        event_base_loopbreak(a->base);
}

static int read_exact(int fd, unsigned char *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r <= 0)
            return -1;
        got += (size_t)r;
    }
    return 0;
}

/* Read one unmasked server frame with a payload < 126 bytes. */
static int read_frame(int fd, int *op, char *payload, size_t cap)
{
    unsigned char h[2];
    if (read_exact(fd, h, 2) != 0 || (h[1] & 0x80) || (h[1] & 0x7f) >= 126 ||
        (size_t)(h[1] & 0x7f) >= cap)
        return -1;
    *op = h[0] & 0x0f;
    if (read_exact(fd, (unsigned char *)payload, h[1] & 0x7f) != 0)
        return -1;
    payload[h[1] & 0x7f] = '\0';
    return h[1] & 0x7f;
}

static void send_masked(int fd, int op, const char *payload, size_t n)
{
    unsigned char f[2 + 4 + 125];
    const unsigned char mask[4] = { 0x11, 0x22, 0x33, 0x44 };
    f[0] = (unsigned char)(0x80 | op);
    f[1] = (unsigned char)(0x80 | n);
    memcpy(f + 2, mask, 4);
    for (size_t i = 0; i < n; i++)
        f[6 + i] = (unsigned char)payload[i] ^ mask[i % 4];
    if (write(fd, f, 6 + n) != (ssize_t)(6 + n))
        perror("write");
}

static const char *client_session(struct app *a, int v6);

/* Connect over IPv4, or IPv6 when v6 is set. */
static int connect_loopback(int port, int v6)
{
    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port) };
    int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM, 0);
    int rc;

    inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
    inet_pton(AF_INET6, "::1", &sin6.sin6_addr);
    rc = v6 ? connect(fd, (struct sockaddr *)&sin6, sizeof(sin6))
            : connect(fd, (struct sockaddr *)&sin, sizeof(sin));
    if (rc != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* One whole session: handshake, welcome, echo, close 1000 (last over IPv6). */
static void *client(void *arg)
{
    struct app *a = arg;
    const char *err = NULL;

    for (int v6 = 0; v6 <= 1 && err == NULL; v6++)
        err = client_session(a, v6);
    return (void *)err;
}

static const char *client_session(struct app *a, int v6)
{
    static const char req[] =
        "GET /embed HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n";
    char buf[512], payload[126];
    int fd = connect_loopback(v6 ? a->port6 : a->port, v6), op = -1;
    size_t got = 0;

    if (fd < 0)
        return "connect";
    if (write(fd, req, sizeof(req) - 1) != (ssize_t)(sizeof(req) - 1)) {
        close(fd);
        return "write request";
    }
    /* Read the 101 response up to its blank line, byte by byte. */
    while (got < sizeof(buf) - 1 && read(fd, buf + got, 1) == 1) {
        got++;
        buf[got] = '\0';
        if (got >= 4 && memcmp(buf + got - 4, "\r\n\r\n", 4) == 0)
            break;
    }
    if (strncmp(buf, "HTTP/1.1 101", 12) != 0 ||
        strstr(buf, "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") == NULL) {
        close(fd);
        return "handshake";
    }
    if (read_frame(fd, &op, payload, sizeof(payload)) != 7 || strcmp(payload, "welcome") != 0) {
        close(fd);
        return "welcome";
    }
    send_masked(fd, 1, "embedded", 8);
    if (read_frame(fd, &op, payload, sizeof(payload)) != 8 || op != 1 ||
        strcmp(payload, "embedded") != 0) {
        close(fd);
        return "echo";
    }
    send_masked(fd, 8, "\x03\xe8", 2); /* close 1000 */
    if (read_frame(fd, &op, payload, sizeof(payload)) != 2 || op != 8) {
        close(fd);
        return "close echo";
    }
    close(fd);
    return NULL;
}

int main(void)
{
    struct app a = { 0 };
    struct ws_config *cfg = ws_config_new();
    struct timeval tick = { 0, 20000 };
    struct event *timer;
    pthread_t th;
    void *client_err = (void *)"not run";

    evthread_use_pthreads(); /* before the base, as wsc.h asks */
    a.base = event_base_new();
    ws_config_set_event_base(cfg, a.base);
    a.srv = ws_server_new(cfg);
    ws_config_free(cfg);
    check(a.srv != NULL, "server on an application base");
    check(ws_server_run(a.srv) == WS_ESTATE, "ws_server_run refuses a foreign base");
    ws_server_handle_open(a.srv, on_open, &a);
    ws_server_handle_data(a.srv, on_data, &a);
    ws_server_handle_close(a.srv, on_close, &a);
    a.port = ws_server_listen(a.srv, "127.0.0.1:0");
    check(a.port > 0, "listen on port 0 returns the bound port");
    a.port6 = ws_server_listen(a.srv, "[::1]:0");
    check(a.port6 > 0 && a.port6 != a.port, "second listener, on IPv6");
    check(ws_server_listen(a.srv, "127.0.0.1") == WS_EADDR, "address without a port is WS_EADDR");
    check(ws_server_listen(a.srv, "127.0.0.1:70000") == WS_EADDR, "port over 65535 is WS_EADDR");
    check(ws_server_event_base(a.srv) == a.base, "ws_server_event_base is the application's");

    timer = event_new(a.base, -1, EV_PERSIST, on_tick, &a);
    event_add(timer, &tick);
    pthread_create(&th, NULL, client, &a);
    event_base_dispatch(a.base); /* the application's loop */
    pthread_join(th, &client_err);

    check(client_err == NULL, client_err == NULL ? "client exchange" : (const char *)client_err);
    check(a.opened == 2 && a.closed == 2, "open and close callbacks once per connection");
    check(strcmp(a.echoed, "embedded") == 0, "data callback got the message");
    check(a.app_ticks > 5, "application timer kept running beside the server");
    check(ws_server_stop(a.srv) == WS_ESTATE, "second stop reports WS_ESTATE");

    event_free(timer);
    ws_server_free(a.srv);
    event_base_free(a.base);
    return failures > 0;
}
