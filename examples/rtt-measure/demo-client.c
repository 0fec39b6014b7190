/*
 * demo-client.c - a tiny blocking WebSocket client: handshake, then answer
 * pings until the server closes. wslay does the framing (and the masking
 * every client frame needs); OpenSSL provides randomness, SHA-1 and base64.
 */
#include "demo-client.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <wslay/wslay.h>

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

struct demo_client {
    pthread_t thread;
    int fd;
    unsigned index;
    atomic_bool stopping; /* set by demo_client_stop(): errors are expected */
    char host[300];       /* for the Host header: "name:port" or "[v6]:port" */
    wslay_frame_context_ptr frames;
    bool eof;             /* the socket said EOF or failed */
    char in[4096];        /* response head, then the first frames */
    size_t in_off, in_len;
    uint8_t out[256];     /* one outgoing frame: control frames are small */
    size_t out_len;
};

/* ---- socket helpers ---------------------------------------------------- */

static ssize_t recv_some(int fd, void *buf, size_t len)
{
    ssize_t n;

    do
        n = recv(fd, buf, len, 0);
    while (n < 0 && errno == EINTR);
    return n;
}

/* MSG_NOSIGNAL: a server that went away is an error here, not SIGPIPE. */
static int send_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;

    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int connect_to(const char *host, int port)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICSERV};
    struct addrinfo *res, *ai;
    char service[16];
    int fd = -1, one = 1;

    snprintf(service, sizeof(service), "%d", port);
    if (getaddrinfo(host, service, &hints, &res) != 0)
        return -1;
    for (ai = res; ai != NULL && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    /* Latency is what we measure: never let Nagle hold a pong back. */
    if (fd >= 0)
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

/* ---- opening handshake (RFC 6455 section 4.1) --------------------------- */

/* base64(SHA-1(key + GUID)): what the server must answer for our key. */
static int expected_accept(const char *key, char accept[29])
{
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int dlen;
    char buf[64];
    int n = snprintf(buf, sizeof(buf), "%s%s", key, WS_GUID);

    if (!EVP_Digest(buf, (size_t)n, digest, &dlen, EVP_sha1(), NULL))
        return -1;
    EVP_EncodeBlock((unsigned char *)accept, digest, (int)dlen);
    return 0;
}

/* Whether a list header value such as "keep-alive, Upgrade" has token. */
static bool has_token(const char *list, const char *token)
{
    size_t tlen = strlen(token);

    while (*list != '\0') {
        size_t len;

        list += strspn(list, " \t,");
        len = strcspn(list, ",");
        while (len > 0 && (list[len - 1] == ' ' || list[len - 1] == '\t'))
            len--;
        if (len == tlen && strncasecmp(list, token, len) == 0)
            return true;
        list += strcspn(list, ",");
    }
    return false;
}

/* Strips the optional white space around a header value. */
static char *trim(char *s)
{
    size_t len;

    s += strspn(s, " \t");
    len = strlen(s);
    while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
        s[--len] = '\0';
    return s;
}

/* Checks a NUL-terminated response head; returns NULL or what is wrong. */
static const char *check_response(char *head, const char *accept)
{
    char *save, *line = strtok_r(head, "\r\n", &save);
    bool upgrade = false, connection = false, accepted = false;

    if (line == NULL || strncmp(line, "HTTP/1.1 101", 12) != 0 ||
        (line[12] != ' ' && line[12] != '\0'))
        return "the server refused the upgrade";
    while ((line = strtok_r(NULL, "\r\n", &save)) != NULL) {
        char *value = strchr(line, ':');

        if (value == NULL)
            return "malformed response header";
        *value++ = '\0';
        value = trim(value);
        if (strcasecmp(line, "Upgrade") == 0)
            upgrade = strcasecmp(value, "websocket") == 0;
        else if (strcasecmp(line, "Connection") == 0)
            connection = has_token(value, "upgrade");
        else if (strcasecmp(line, "Sec-WebSocket-Accept") == 0)
            accepted = strcmp(value, accept) == 0;
    }
    if (!upgrade || !connection)
        return "missing Upgrade: websocket or Connection: upgrade";
    return accepted ? NULL : "wrong Sec-WebSocket-Accept";
}

/* Reads up to the blank line ending the response head. Bytes after it are
 * already frames: they stay in dc->in for wslay. */
static const char *read_head(struct demo_client *dc)
{
    for (;;) {
        char *end;
        ssize_t n;

        dc->in[dc->in_len] = '\0';
        end = strstr(dc->in, "\r\n\r\n");
        if (end != NULL) {
            end[2] = '\0'; /* cut the blank line, keep the last CRLF */
            dc->in_off = (size_t)(end - dc->in) + 4;
            return NULL;
        }
        if (dc->in_len == sizeof(dc->in) - 1)
            return "response head too long";
        n = recv_some(dc->fd, dc->in + dc->in_len,
                      sizeof(dc->in) - 1 - dc->in_len);
        if (n <= 0)
            return "connection closed during the handshake";
        dc->in_len += (size_t)n;
    }
}

static const char *handshake(struct demo_client *dc)
{
    unsigned char nonce[16];
    char key[25], accept[29], req[512];
    const char *err;
    int n;

    if (RAND_bytes(nonce, sizeof(nonce)) != 1)
        return "RAND_bytes failed";
    EVP_EncodeBlock((unsigned char *)key, nonce, sizeof(nonce));
    if (expected_accept(key, accept) < 0)
        return "SHA-1 failed";
    n = snprintf(req, sizeof(req),
                 "GET / HTTP/1.1\r\n"
                 "Host: %s\r\n"
                 "Upgrade: websocket\r\n"
                 "Connection: Upgrade\r\n"
                 "Sec-WebSocket-Key: %s\r\n"
                 "Sec-WebSocket-Version: 13\r\n"
                 "\r\n",
                 dc->host, key);
    if (send_all(dc->fd, req, (size_t)n) < 0)
        return "cannot send the upgrade request";
    err = read_head(dc);
    return err != NULL ? err : check_response(dc->in, accept);
}

/* ---- frames (wslay's frame API with blocking I/O) ----------------------- */

/* Bytes left over from the handshake first, then the socket. wslay cannot
 * tell EOF from "nothing yet", so EOF is remembered in dc->eof. */
static ssize_t recv_cb(uint8_t *buf, size_t len, int flags, void *user)
{
    struct demo_client *dc = user;
    size_t left = dc->in_len - dc->in_off;
    ssize_t n;

    (void)flags;
    if (left > 0) {
        if (left > len)
            left = len;
        memcpy(buf, dc->in + dc->in_off, left);
        dc->in_off += left;
        return (ssize_t)left;
    }
    n = recv_some(dc->fd, buf, len);
    dc->eof = n <= 0;
    return n > 0 ? n : -1;
}

/* wslay hands a frame over in pieces (header, then masked payload): collect
 * them so that each frame leaves in a single write. */
static ssize_t send_cb(const uint8_t *data, size_t len, int flags, void *user)
{
    struct demo_client *dc = user;

    (void)flags;
    if (len > sizeof(dc->out) - dc->out_len)
        return -1;
    memcpy(dc->out + dc->out_len, data, len);
    dc->out_len += len;
    return (ssize_t)len;
}

/* Clients must mask every frame, with an unpredictable key. */
static int genmask_cb(uint8_t *buf, size_t len, void *user)
{
    (void)user;
    return RAND_bytes(buf, (int)len) == 1 ? 0 : -1;
}

static int send_frame(struct demo_client *dc, uint8_t opcode,
                      const uint8_t *payload, size_t len)
{
    struct wslay_frame_iocb iocb = {.fin = 1, .opcode = opcode, .mask = 1,
                                    .payload_length = len, .data = payload,
                                    .data_length = len};

    dc->out_len = 0;
    if (wslay_frame_send(dc->frames, &iocb) != (ssize_t)len)
        return -1;
    return send_all(dc->fd, dc->out, dc->out_len);
}

/* wslay returns a frame's payload in chunks: gather control payloads (at most
 * 125 bytes) and act once a frame is complete. Returns NULL on a close. */
static const char *answer_pings(struct demo_client *dc)
{
    uint8_t payload[125];
    size_t got = 0;
    uint64_t left = 0; /* payload bytes still to come; 0: next is a new frame */

    for (;;) {
        struct wslay_frame_iocb in = {0};
        ssize_t n = wslay_frame_recv(dc->frames, &in);

        if (n == WSLAY_ERR_WANT_READ && !dc->eof)
            continue; /* a partial header: read more */
        if (n == WSLAY_ERR_WANT_READ)
            return "connection closed without a close frame";
        if (n < 0 || in.mask || in.rsv != 0)
            return "protocol error from the server";
        if (left == 0) {
            left = in.payload_length;
            got = 0;
        }
        /* wslay already rejects control payloads over 125 bytes. */
        if (wslay_is_ctrl_frame(in.opcode) &&
            got + in.data_length <= sizeof(payload)) {
            memcpy(payload + got, in.data, in.data_length);
            got += in.data_length;
        }
        left -= in.data_length;
        if (left > 0)
            continue; /* more of this frame to come */
        if (in.opcode == WSLAY_PING &&
            send_frame(dc, WSLAY_PONG, payload, got) < 0)
            return "cannot send a pong";
        if (in.opcode == WSLAY_CONNECTION_CLOSE) {
            /* Echo the status code (if any). Nothing may follow a close
             * frame, so send FIN too: the server need not wait for it. */
            send_frame(dc, WSLAY_CONNECTION_CLOSE, payload, got < 2 ? 0 : 2);
            shutdown(dc->fd, SHUT_WR);
            return NULL;
        }
    }
}

static void *client_main(void *arg)
{
    struct demo_client *dc = arg;
    const char *err = handshake(dc);

    if (err == NULL)
        err = answer_pings(dc);
    if (err != NULL && !atomic_load(&dc->stopping))
        fprintf(stderr, "demo client %u: %s\n", dc->index, err);
    return NULL;
}

/* ---- public API --------------------------------------------------------- */

/* Signals belong to the server's thread (ws_server_run() handles SIGINT and
 * SIGTERM): the client thread starts with all of them blocked. */
static int start_thread(struct demo_client *dc)
{
    sigset_t all, old;
    int rc;

    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = pthread_create(&dc->thread, NULL, client_main, dc);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc;
}

struct demo_client *demo_client_start(const char *host, int port,
                                      unsigned index)
{
    static const struct wslay_frame_callbacks callbacks = {send_cb, recv_cb,
                                                           genmask_cb};
    struct demo_client *dc = calloc(1, sizeof(*dc));
    const char *err = NULL;
    int rc;

    if (dc == NULL) {
        fprintf(stderr, "demo client %u: out of memory\n", index);
        return NULL;
    }
    dc->index = index;
    atomic_init(&dc->stopping, false);
    snprintf(dc->host, sizeof(dc->host),
             strchr(host, ':') != NULL ? "[%s]:%d" : "%s:%d", host, port);
    dc->fd = connect_to(host, port);
    if (dc->fd < 0)
        err = "cannot connect";
    else if (wslay_frame_context_init(&dc->frames, &callbacks, dc) != 0)
        err = "out of memory";
    else if ((rc = start_thread(dc)) != 0)
        err = strerror(rc);
    if (err == NULL)
        return dc;
    fprintf(stderr, "demo client %u: %s: %s\n", index, dc->host, err);
    if (dc->frames != NULL)
        wslay_frame_context_free(dc->frames);
    if (dc->fd >= 0)
        close(dc->fd);
    free(dc);
    return NULL;
}

void demo_client_stop(struct demo_client *dc)
{
    if (dc == NULL)
        return;
    atomic_store(&dc->stopping, true);
    /* shutdown() wakes a recv() blocked in the thread; close() would not. */
    shutdown(dc->fd, SHUT_RDWR);
    pthread_join(dc->thread, NULL);
    wslay_frame_context_free(dc->frames);
    close(dc->fd);
    free(dc);
}
