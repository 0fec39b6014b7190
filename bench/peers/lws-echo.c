/*
 * lws-echo - the libwebsockets peer of the benchmark: echo every message
 * back to its sender, as libwebsockets documents it (messages queued on
 * RECEIVE, one lws_write() per SERVER_WRITEABLE callback, rx flow control
 * when a connection has too many replies queued).
 *
 *   lws-echo [--cert FILE --key FILE] [PORT]   (127.0.0.1, default 9001)
 *
 * With --cert and --key it serves wss:// through libwebsockets' own TLS
 * (Debian builds it with OpenSSL).
 *
 * Buffers are raised to 64 KiB (rx_buffer_size, pt_serv_buf_size) so that a
 * 16 KiB message arrives in one callback and leaves in one send().
 */
#include <libwebsockets.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BUF_SIZE 65536
#define QUEUE_HIGH 256 /* stop reading a connection with this many replies queued */
#define QUEUE_LOW 64   /* and read again below this */

struct msg {
    struct msg *next;
    size_t len;
    int binary;
    unsigned char buf[]; /* LWS_PRE bytes of headroom, then the payload */
};

struct session {
    struct msg *head, *tail;
    unsigned queued;
    int reading_paused;
    int in_message;
    int rx_binary;
    unsigned char *rx; /* the message being assembled */
    size_t rx_len, rx_cap;
};

static volatile sig_atomic_t interrupted;

static int rx_append(struct session *s, const void *in, size_t len)
{
    if (s->rx_len + len > s->rx_cap) {
        size_t cap = s->rx_cap ? s->rx_cap : 256;
        unsigned char *p;

        while (cap < s->rx_len + len)
            cap *= 2;
        if ((p = realloc(s->rx, cap)) == NULL)
            return -1;
        s->rx = p;
        s->rx_cap = cap;
    }
    memcpy(s->rx + s->rx_len, in, len);
    s->rx_len += len;
    return 0;
}

static int enqueue(struct lws *wsi, struct session *s)
{
    struct msg *m = malloc(sizeof *m + LWS_PRE + s->rx_len);

    if (m == NULL)
        return -1;
    m->next = NULL;
    m->len = s->rx_len;
    m->binary = s->rx_binary;
    memcpy(m->buf + LWS_PRE, s->rx, s->rx_len);
    if (s->tail)
        s->tail->next = m;
    else
        s->head = m;
    s->tail = m;
    s->queued++;
    if (s->queued >= QUEUE_HIGH && !s->reading_paused) {
        lws_rx_flow_control(wsi, 0);
        s->reading_paused = 1;
    }
    lws_callback_on_writable(wsi);
    return 0;
}

static int on_receive(struct lws *wsi, struct session *s, const void *in, size_t len)
{
    if (!s->in_message) {
        s->in_message = 1;
        s->rx_len = 0;
        s->rx_binary = lws_frame_is_binary(wsi);
    }
    if (rx_append(s, in, len) != 0)
        return -1;
    if (lws_is_final_fragment(wsi) && lws_remaining_packet_payload(wsi) == 0) {
        s->in_message = 0;
        return enqueue(wsi, s);
    }
    return 0;
}

static int on_writeable(struct lws *wsi, struct session *s)
{
    struct msg *m = s->head;

    if (m == NULL)
        return 0;
    if (lws_write(wsi, m->buf + LWS_PRE, m->len,
                  m->binary ? LWS_WRITE_BINARY : LWS_WRITE_TEXT) < (int)m->len)
        return -1;
    s->head = m->next;
    if (s->head == NULL)
        s->tail = NULL;
    s->queued--;
    free(m);
    if (s->reading_paused && s->queued < QUEUE_LOW) {
        lws_rx_flow_control(wsi, 1);
        s->reading_paused = 0;
    }
    if (s->head)
        lws_callback_on_writable(wsi);
    return 0;
}

static void session_free(struct session *s)
{
    while (s->head) {
        struct msg *m = s->head;

        s->head = m->next;
        free(m);
    }
    free(s->rx);
    memset(s, 0, sizeof *s);
}

static int callback_echo(struct lws *wsi, enum lws_callback_reasons reason, void *user,
                         void *in, size_t len)
{
    struct session *s = user;

    switch (reason) {
    case LWS_CALLBACK_ESTABLISHED:
        memset(s, 0, sizeof *s);
        return 0;
    case LWS_CALLBACK_RECEIVE:
        return on_receive(wsi, s, in, len);
    case LWS_CALLBACK_SERVER_WRITEABLE:
        return on_writeable(wsi, s);
    case LWS_CALLBACK_CLOSED:
        session_free(s);
        return 0;
    default:
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    }
}

static const struct lws_protocols protocols[] = {
    {"echo", callback_echo, sizeof(struct session), BUF_SIZE, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

int main(int argc, char **argv)
{
    struct lws_context_creation_info info;
    struct lws_context *ctx;
    const char *cert = NULL, *key = NULL, *port = "9001";
    int i;

    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    lws_set_log_level(LLL_ERR | LLL_WARN, NULL);
    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--cert") == 0 && i + 1 < argc)
            cert = argv[++i];
        else if (strcmp(argv[i], "--key") == 0 && i + 1 < argc)
            key = argv[++i];
        else
            port = argv[i];
    }
    if ((cert == NULL) != (key == NULL)) {
        fprintf(stderr, "usage: lws-echo [--cert FILE --key FILE] [PORT]\n");
        return 2;
    }
    memset(&info, 0, sizeof info);
    info.port = atoi(port);
    info.iface = "127.0.0.1";
    info.protocols = protocols;
    info.pt_serv_buf_size = BUF_SIZE;
    info.options = LWS_SERVER_OPTION_DISABLE_IPV6;
    if (cert != NULL) {
        info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
        info.ssl_cert_filepath = cert;
        info.ssl_private_key_filepath = key;
    }
    if ((ctx = lws_create_context(&info)) == NULL) {
        fprintf(stderr, "lws-echo: cannot create the context\n");
        return 1;
    }
    printf("listening on %s://127.0.0.1:%d/\n", cert ? "wss" : "ws", info.port);
    while (!interrupted && lws_service(ctx, 0) >= 0)
        ;
    lws_context_destroy(ctx);
    return 0;
}
