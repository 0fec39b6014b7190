/*
 * wsc-bench - a WebSocket load generator for 127.0.0.0/8 servers, in the
 * style of tcpkali's WebSocket mode, built to never be the bottleneck.
 *
 *   wsc-bench [--mode echo|subscribe|idle|connect] [-c N] [-s BYTES]
 *             [-r MSGS_PER_S] [-d SECONDS] [--server-pid PID] ws://127.0.0.1:PORT/
 *   wsc-bench [...] --ca FILE|--insecure [--sni NAME] wss://127.0.0.1:PORT/
 *
 * One thread, raw edge-triggered epoll, no library. Client frames are binary
 * and masked with one key chosen at start: a template of K pre-masked frames
 * is built once, and before each write() only the masked timestamp and
 * sequence number of each frame are stored into it, so one syscall carries
 * up to --batch bytes of frames. The server's (unmasked) frames are parsed
 * incrementally with O(1) state per connection; no payload is buffered.
 *
 * Payload layout (when the message is large enough): bytes 0-7 the send time
 * (CLOCK_MONOTONIC ns, little-endian), bytes 8-15 the sequence number of the
 * message on its connection; latency is the receive time minus the stamp.
 *
 * wss:// targets: OpenSSL on the same non-blocking sockets and loop (see
 * tls-io.h), SNI sent; the certificate is verified against --ca FILE for
 * the --sni name (default localhost), or not at all with --insecure. The
 * TLS handshake counts in connect-to-101.
 *
 * Modes:
 *   echo       every connection sends, the server echoes; counts lost/extra
 *   subscribe  connections only receive and count (broadcast); with
 *              --publish connection 0 also sends at -r msg/s and every
 *              connection must receive every message it sent
 *   idle       open one connection, then the other -c - 1, wait --settle s,
 *              report the server's VmRSS growth per connection after the
 *              first (and counted from before it) (needs --server-pid)
 *   connect    -c connections at a time: connect, upgrade, close handshake,
 *              again, for -d seconds; reports handshakes per second
 *
 * The last line of output is "RESULT key=value ..." for scripts.
 * Exit status: 0 clean run, 1 lost/extra/corrupt messages or failed
 * connections, 2 usage, 3 hard timeout.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "tls-io.h"

#define NS_PER_S 1000000000ull
#define NS_PER_MS 1000000ull
#define RBUF_SIZE (256u * 1024u)
#define HS_CAP 2048u
#define MAX_EVENTS 512
#define TICK_NS NS_PER_MS
#define STAMP_LEN 16u
#define CLOSE_WAIT_NS (2 * NS_PER_S)
/* The RFC 6455 example key and its Sec-WebSocket-Accept. */
#define WS_KEY "dGhlIHNhbXBsZSBub25jZQ=="
#define WS_ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

/* ---- latency histogram: log-linear buckets, < 1.6% error ---------------- */

#define H_SUB_BITS 7u
#define H_SUB (1u << H_SUB_BITS)
#define H_HALF (H_SUB / 2u)
#define H_BUCKETS (H_SUB + 57u * H_HALF)

struct hist {
    uint64_t n;
    uint64_t b[H_BUCKETS];
};

static unsigned hist_index(uint64_t v)
{
    unsigned msb, shift;

    if (v < H_SUB)
        return (unsigned)v;
    msb = 63u - (unsigned)__builtin_clzll(v);
    shift = msb - (H_SUB_BITS - 1u);
    return H_SUB + (shift - 1u) * H_HALF + (unsigned)((v >> shift) - H_HALF);
}

/* The middle of bucket i. */
static uint64_t hist_value(unsigned i)
{
    unsigned k, shift;
    uint64_t m;

    if (i < H_SUB)
        return i;
    k = i - H_SUB;
    shift = k / H_HALF + 1u;
    m = k % H_HALF + H_HALF;
    return (m << shift) + ((1ull << shift) >> 1);
}

static void hist_add(struct hist *h, uint64_t v)
{
    h->b[hist_index(v)]++;
    h->n++;
}

/* Value at quantile q (0 < q <= 1), 0 when empty. */
static uint64_t hist_quantile(const struct hist *h, double q)
{
    uint64_t want = (uint64_t)(q * (double)h->n + 0.999999), seen = 0;
    unsigned i;

    if (h->n == 0)
        return 0;
    if (want == 0)
        want = 1;
    for (i = 0; i < H_BUCKETS; i++) {
        seen += h->b[i];
        if (seen >= want)
            return hist_value(i);
    }
    return hist_value(H_BUCKETS - 1u);
}

/* ---- state -------------------------------------------------------------- */

enum mode { MODE_ECHO, MODE_SUBSCRIBE, MODE_IDLE, MODE_CONNECT };
static const char *const mode_names[] = {"echo", "subscribe", "idle", "connect"};

/* C_TLS: the TLS handshake (wss only), between connect() and the upgrade. */
enum cstate { C_NEW, C_CONNECTING, C_TLS, C_HANDSHAKE, C_OPEN, C_CLOSING, C_DONE };

struct options {
    enum mode mode;
    struct sockaddr_in addr;
    char host[64];
    char path[256];
    unsigned conns;
    size_t size;          /* payload bytes per message */
    double rate;          /* messages/s per sending connection, 0 = unthrottled */
    double duration;      /* seconds of sending (or of connecting) */
    double timeout;       /* hard bound on the whole run, seconds */
    double drain;         /* seconds to wait for outstanding replies */
    double settle;        /* idle mode: seconds between last upgrade and RSS */
    double tick_ms;       /* rate mode: how often due messages are sent */
    size_t window;        /* bytes in flight per connection, 0 = auto */
    size_t batch;         /* bytes per write() */
    unsigned concurrency; /* handshakes in progress at once */
    unsigned sources;     /* bind to 127.0.0.1..127.0.0.N, 0 = auto */
    pid_t server_pid;
    int server_core;      /* core the server is pinned to, -1 = unknown */
    int publish;
    const char *label;
    uint16_t ports[16];   /* --ports: connection i goes to ports[i % nports] */
    unsigned nports;
    int tls;              /* a wss:// target */
    int insecure;         /* --insecure: no certificate verification */
    const char *ca;       /* --ca FILE */
    const char *sni;      /* --sni NAME */
    const char *tls_max;  /* --tls-max 1.2|1.3, NULL = OpenSSL's highest */
};

struct outq {
    uint8_t *buf;
    size_t off, len, cap;
};

struct conn {
    int fd;
    uint8_t state;
    uint8_t hdr_have;   /* header bytes buffered in hdr */
    uint8_t in_payload; /* the header is complete, payload follows */
    uint8_t op;         /* opcode of the current frame */
    uint8_t fin;
    uint8_t stamp_have; /* bytes of the current message's stamp captured */
    uint8_t ctl_have;
    uint8_t got_close;
    uint8_t sender;     /* this connection sends messages */
    uint8_t hdr[14];
    uint8_t stamp[STAMP_LEN];
    uint8_t ctl[125];
    uint32_t idx;
    uint64_t left;      /* payload bytes of the current frame still due */
    uint64_t msg_len;   /* payload bytes of the current message so far */
    uint64_t sent, recv;
    uint64_t t_start;   /* connect() time, or close-frame time when closing */
    double phase;       /* rate mode: offset of this connection's schedule */
    struct outq out;    /* bytes that must go before new frames */
    struct tls_io *tls; /* wss only */
    char *hs;           /* response head while in C_HANDSHAKE */
    size_t hs_len;
};

struct stats {
    uint64_t sent, recv, sent_bytes, recv_bytes;
    uint64_t bad, protocol_errors, errors, disconnects;
    uint64_t handshakes, cycles, pings;
};

struct bench {
    struct options o;
    int ep;
    struct conn *conns;
    unsigned nslots;
    unsigned next_start; /* next slot to connect in the opening phase */
    unsigned in_handshake, opened, failed, active;
    int restart;         /* connect mode: finished slots connect again */
    int sending;
    uint8_t mask[4];
    uint64_t mask8;
    uint8_t *tpl;        /* tpl_frames pre-masked frames of flen bytes */
    size_t flen, hlen, tpl_frames;
    uint64_t window_msgs, refill_msgs;
    uint8_t *rbuf;
    char request[512];
    size_t request_len;
    uint64_t t_begin, t0, t_end, hard_deadline, next_tick;
    struct stats st;
    struct hist lat;     /* message round trip, ns */
    struct hist hs_lat;  /* connect() to 101, ns */
};

static struct bench g;

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

static double ns_to_s(uint64_t ns)
{
    return (double)ns / (double)NS_PER_S;
}

static uint64_t s_to_ns(double s)
{
    return s <= 0 ? 0 : (uint64_t)(s * (double)NS_PER_S);
}

/* ---- /proc and getrusage ------------------------------------------------ */

/* utime + stime of a whole process (all threads), seconds, and utime alone
 * in *user (the part spent in the server's own code and libraries; the
 * rest is the kernel working for it); -1 if unknown. */
static double proc_cpu_seconds(pid_t pid, double *user)
{
    char path[64], buf[1024], *p;
    unsigned long long ut = 0, st = 0;
    FILE *f;
    size_t n;

    *user = -1;
    if (pid <= 0)
        return -1;
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    if ((f = fopen(path, "r")) == NULL)
        return -1;
    n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* Fields after the ")" ending the command name: state is field 3,
     * utime field 14 and stime field 15. */
    if ((p = strrchr(buf, ')')) == NULL ||
        sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
               &ut, &st) != 2)
        return -1;
    *user = (double)ut / (double)sysconf(_SC_CLK_TCK);
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* VmRSS of a process in KiB; -1 if unknown. */
static long proc_rss_kib(pid_t pid)
{
    char path[64], line[256];
    long kib = -1;
    FILE *f;

    if (pid <= 0)
        return -1;
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    if ((f = fopen(path, "r")) == NULL)
        return -1;
    while (fgets(line, sizeof line, f) != NULL)
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
            break;
    fclose(f);
    return kib;
}

/* Busy and softirq seconds of one core from /proc/stat. Network stack work
 * done in softirq context is not charged to any process's utime/stime. */
static int core_seconds(int core, double *busy, double *softirq)
{
    char name[16], line[512];
    unsigned long long v[8] = {0};
    FILE *f;
    int found = 0;

    *busy = *softirq = -1;
    if (core < 0 || (f = fopen("/proc/stat", "r")) == NULL)
        return -1;
    snprintf(name, sizeof name, "cpu%d ", core);
    while (!found && fgets(line, sizeof line, f) != NULL)
        found = strncmp(line, name, strlen(name)) == 0 &&
                sscanf(line + strlen(name), "%llu %llu %llu %llu %llu %llu %llu %llu",
                       &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]) == 8;
    fclose(f);
    if (!found)
        return -1;
    /* user nice system idle iowait irq softirq steal */
    *busy = (double)(v[0] + v[1] + v[2] + v[5] + v[6]) / (double)sysconf(_SC_CLK_TCK);
    *softirq = (double)v[6] / (double)sysconf(_SC_CLK_TCK);
    return 0;
}

static double self_cpu_seconds(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* Lift the soft RLIMIT_NOFILE to the hard one; returns the soft limit. */
static rlim_t raise_nofile(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 1024;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    return rl.rlim_cur;
}

/* ---- output queue: a partial frame, pongs, close frames ----------------- */

static int outq_push(struct outq *q, const void *data, size_t len)
{
    if (q->off > 0 && q->off == q->len)
        q->off = q->len = 0;
    if (q->len + len > q->cap) {
        size_t cap = q->cap ? q->cap : 256;
        uint8_t *nb;

        while (cap < q->len + len)
            cap *= 2;
        if ((nb = realloc(q->buf, cap)) == NULL)
            return -1;
        q->buf = nb;
        q->cap = cap;
    }
    memcpy(q->buf + q->len, data, len);
    q->len += len;
    return 0;
}

static void outq_free(struct outq *q)
{
    free(q->buf);
    memset(q, 0, sizeof *q);
}

/* ---- frames we send ----------------------------------------------------- */

static size_t frame_header_len(size_t len)
{
    return 2u + (len < 126 ? 0u : len <= 0xffff ? 2u : 8u) + 4u;
}

/* A masked client frame header for a payload of len bytes; returns its size. */
static size_t write_frame_header(uint8_t *h, unsigned op, size_t len)
{
    size_t n = 2;

    h[0] = (uint8_t)(0x80u | op);
    if (len < 126) {
        h[1] = (uint8_t)(0x80u | len);
    } else if (len <= 0xffff) {
        h[1] = 0x80u | 126u;
        h[2] = (uint8_t)(len >> 8);
        h[3] = (uint8_t)len;
        n = 4;
    } else {
        uint64_t be = htobe64((uint64_t)len);

        h[1] = 0x80u | 127u;
        memcpy(h + 2, &be, 8);
        n = 10;
    }
    memcpy(h + n, g.mask, 4);
    return n + 4;
}

/* One masked control frame (pong, close) with payload len <= 125. */
static size_t build_control(uint8_t *out, unsigned op, const uint8_t *p, size_t len)
{
    size_t h = write_frame_header(out, op, len), i;

    for (i = 0; i < len; i++)
        out[h + i] = p[i] ^ g.mask[i & 3u];
    return h + len;
}

/* The template: as many whole frames as fit in --batch (at least one). */
static int build_template(void)
{
    size_t i, j;

    g.hlen = frame_header_len(g.o.size);
    g.flen = g.hlen + g.o.size;
    g.tpl_frames = g.o.batch / g.flen;
    if (g.tpl_frames == 0)
        g.tpl_frames = 1;
    if ((g.tpl = malloc(g.tpl_frames * g.flen)) == NULL)
        return -1;
    for (i = 0; i < g.tpl_frames; i++) {
        uint8_t *f = g.tpl + i * g.flen;

        write_frame_header(f, 0x2, g.o.size);
        for (j = 0; j < g.o.size; j++)
            f[g.hlen + j] = (uint8_t)('a' + j % 26) ^ g.mask[j & 3u];
    }
    return 0;
}

/* Store the masked stamp (time, sequence) into the first k template frames.
 * Both fields start at a multiple of 4, so each is masked by mask8. */
static void stamp_template(size_t k, uint64_t first_seq, uint64_t t)
{
    uint64_t mt = htole64(t) ^ g.mask8;
    size_t i;

    if (g.o.size < 8)
        return;
    for (i = 0; i < k; i++) {
        uint8_t *p = g.tpl + i * g.flen + g.hlen;

        memcpy(p, &mt, 8);
        if (g.o.size >= STAMP_LEN) {
            uint64_t ms = htole64(first_seq + i) ^ g.mask8;

            memcpy(p + 8, &ms, 8);
        }
    }
}

/* ---- the socket, plain or TLS -------------------------------------------- */

static ssize_t net_read(struct conn *c, void *buf, size_t len)
{
    return c->tls ? tls_io_read(c->tls, buf, len) : read(c->fd, buf, len);
}

/* Over TLS every byte is taken (what the socket refuses is queued as
 * ciphertext, and flush_out holds new frames back until it has gone). */
static ssize_t net_write(struct conn *c, const void *buf, size_t len)
{
    return c->tls ? tls_io_write(c->tls, buf, len) : write(c->fd, buf, len);
}

/* ---- connection lifecycle ----------------------------------------------- */

static void conn_start(struct conn *c);

static void conn_release(struct conn *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    tls_io_free(c->tls);
    c->tls = NULL;
    free(c->hs);
    c->hs = NULL;
    outq_free(&c->out);
    if (c->state == C_CONNECTING || c->state == C_TLS || c->state == C_HANDSHAKE)
        g.in_handshake--;
    if (c->state >= C_OPEN && c->state < C_DONE)
        g.active--;
    c->state = C_DONE;
}

/* A connection that never upgraded. */
static void conn_failed(struct conn *c, const char *why)
{
    if (g.st.errors < 5)
        fprintf(stderr, "wsc-bench: connection %u: %s\n", c->idx, why);
    g.st.errors++;
    if (c->state <= C_HANDSHAKE)
        g.failed++;
    conn_release(c);
}

/* TCP ended (or failed) after the upgrade. Slots are reused (connect mode)
 * only from on_event() and tick(), never below a parser or a sender. */
static void conn_ended(struct conn *c)
{
    if (c->state == C_CLOSING && c->got_close)
        g.st.cycles++;
    else if (g.o.mode != MODE_CONNECT)
        g.st.disconnects++;
    else
        g.st.errors++;
    conn_release(c);
}

static void conn_start(struct conn *c)
{
    unsigned src = g.o.sources > 1 ? c->idx % g.o.sources : 0;
    int one = 1;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
                             .data.ptr = c};

    c->hdr_have = c->in_payload = c->stamp_have = c->ctl_have = c->got_close = 0;
    c->left = c->msg_len = 0;
    c->hs_len = 0;
    c->t_start = now_ns();
    c->state = C_CONNECTING;
    g.in_handshake++;
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        g.restart = 0; /* out of descriptors: do not spin */
        conn_failed(c, strerror(errno));
        return;
    }
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (src > 0) {
        struct sockaddr_in sa = {.sin_family = AF_INET};

        sa.sin_addr.s_addr = htonl(0x7f000001u + src);
        setsockopt(c->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
        if (bind(c->fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
            conn_failed(c, strerror(errno));
            return;
        }
    }
    struct sockaddr_in to = g.o.addr;
    if (g.o.nports > 0) /* --ports: spread over several servers */
        to.sin_port = htons(g.o.ports[c->idx % g.o.nports]);
    if (connect(c->fd, (struct sockaddr *)&to, sizeof to) != 0 &&
        errno != EINPROGRESS) {
        conn_failed(c, strerror(errno));
        return;
    }
    if (epoll_ctl(g.ep, EPOLL_CTL_ADD, c->fd, &ev) != 0)
        conn_failed(c, strerror(errno));
}

/* Opening phase: keep at most --concurrency handshakes going. */
static void start_more(void)
{
    while (g.next_start < g.nslots && g.in_handshake < g.o.concurrency)
        conn_start(&g.conns[g.next_start++]);
}

/* Write what is queued; 1 when the queue is empty, 0 blocked, -1 failed. */
static int flush_out(struct conn *c)
{
    int r;

    if (c->tls && (r = tls_io_flush(c->tls)) <= 0)
        return r;
    while (c->out.off < c->out.len) {
        ssize_t n = net_write(c, c->out.buf + c->out.off, c->out.len - c->out.off);

        if (n < 0)
            return errno == EAGAIN || errno == EINTR ? 0 : -1;
        c->out.off += (size_t)n;
    }
    return 1;
}

static void queue_control(struct conn *c, unsigned op, const uint8_t *p, size_t len)
{
    uint8_t frame[2 + 4 + 125];

    if (outq_push(&c->out, frame, build_control(frame, op, p, len)) != 0 ||
        flush_out(c) < 0)
        conn_ended(c);
}

static void send_close(struct conn *c)
{
    static const uint8_t code[2] = {0x03, 0xe8}; /* 1000 */

    c->state = C_CLOSING;
    c->t_start = now_ns();
    queue_control(c, 0x8, code, sizeof code);
}

/* ---- sending messages --------------------------------------------------- */

/* Rate mode: the messages c's schedule has made due by now (nothing comes
 * due after the end, should a tick run late). */
static uint64_t due_by(const struct conn *c, uint64_t now)
{
    if (now > g.t_end)
        now = g.t_end;
    return (uint64_t)(g.o.rate * ns_to_s(now > g.t0 ? now - g.t0 : 0) + c->phase);
}

/* Rate mode: the most messages one tick makes due on a connection. */
static uint64_t msgs_per_tick(void)
{
    return (uint64_t)(g.o.rate * g.o.tick_ms / 1e3 + 0.999999);
}

/* Messages this connection may send now. */
static uint64_t send_allowance(const struct conn *c, uint64_t now)
{
    uint64_t inflight = c->sent > c->recv ? c->sent - c->recv : 0;
    uint64_t allow = inflight >= g.window_msgs ? 0 : g.window_msgs - inflight;

    if (g.o.mode != MODE_ECHO)
        allow = UINT64_MAX; /* a publisher is paced by --rate alone */
    if (g.o.rate > 0) {
        uint64_t due = due_by(c, now);
        uint64_t owed = due > c->sent ? due - c->sent : 0;

        return owed < allow ? owed : allow;
    }
    if (inflight > 0 && allow < g.refill_msgs)
        return 0; /* wait for a bigger gap: fewer, larger writes */
    return allow;
}

/* One write() of k stamped frames; 1 all written, 0 blocked, -1 failed. */
static int send_batch(struct conn *c, size_t k)
{
    size_t len = k * g.flen, whole, part;
    ssize_t n;

    stamp_template(k, c->sent, now_ns());
    n = net_write(c, g.tpl, len);
    if (n < 0)
        return errno == EAGAIN || errno == EINTR ? 0 : -1;
    whole = (size_t)n / g.flen;
    part = (size_t)n % g.flen;
    if (part > 0) {
        /* The rest of a started frame must go before anything else. */
        if (outq_push(&c->out, g.tpl + n, g.flen - part) != 0)
            return -1;
        whole++;
    }
    c->sent += whole;
    g.st.sent += whole;
    g.st.sent_bytes += whole * g.o.size;
    return (size_t)n == len ? 1 : 0;
}

/* Flush what is queued, then send what this connection may send now.
 * In rate mode new messages go out on the tick only (on_tick): sending
 * from every read event too would clock the load by the server's replies,
 * a write per echo received whatever --tick-ms says. */
static void try_send(struct conn *c, int on_tick)
{
    uint64_t allow;
    int r;

    if (c->state != C_OPEN && c->state != C_CLOSING)
        return;
    if ((r = flush_out(c)) <= 0) {
        if (r < 0)
            conn_ended(c);
        return;
    }
    if (!g.sending || !c->sender || c->state != C_OPEN || (g.o.rate > 0 && !on_tick))
        return;
    allow = send_allowance(c, now_ns());
    while (allow > 0) {
        size_t k = allow < g.tpl_frames ? (size_t)allow : g.tpl_frames;

        if ((r = send_batch(c, k)) <= 0) {
            if (r < 0)
                conn_ended(c);
            return;
        }
        allow -= k;
    }
}

/* ---- frames we receive -------------------------------------------------- */

static void message_done(struct conn *c, uint64_t now)
{
    c->recv++;
    g.st.recv++;
    g.st.recv_bytes += c->msg_len;
    if (c->stamp_have >= 8) {
        uint64_t t;

        memcpy(&t, c->stamp, 8);
        t = le64toh(t);
        if (t <= now && now - t < 3600 * NS_PER_S)
            hist_add(&g.lat, now - t);
    }
    if (c->stamp_have >= STAMP_LEN && (c->sender || g.o.publish)) {
        uint64_t seq;

        memcpy(&seq, c->stamp + 8, 8);
        if (le64toh(seq) != c->recv - 1)
            g.st.bad++;
    }
}

static void control_done(struct conn *c)
{
    if (c->op == 0x9) {
        g.st.pings++;
        if (!c->got_close)
            queue_control(c, 0xA, c->ctl, c->ctl_have);
    } else if (c->op == 0x8) {
        c->got_close = 1;
        if (c->state == C_OPEN) { /* the server began: answer with its code */
            c->state = C_CLOSING;
            queue_control(c, 0x8, c->ctl, c->ctl_have >= 2 ? 2 : 0);
        }
    }
}

/* The frame in hdr/op/fin ended. */
static void frame_done(struct conn *c, uint64_t now)
{
    c->in_payload = 0;
    c->hdr_have = 0;
    if (c->op >= 0x8)
        control_done(c);
    else if (c->fin)
        message_done(c, now);
}

/* Payload bytes of the current frame: stamps and control payloads are kept,
 * the rest is only counted. */
static void payload_bytes(struct conn *c, const uint8_t *p, size_t n)
{
    if (c->op >= 0x8) {
        memcpy(c->ctl + c->ctl_have, p, n);
        c->ctl_have = (uint8_t)(c->ctl_have + n);
        return;
    }
    c->msg_len += n;
    if (c->stamp_have < STAMP_LEN) {
        size_t k = STAMP_LEN - c->stamp_have < n ? STAMP_LEN - c->stamp_have : n;

        memcpy(c->stamp + c->stamp_have, p, k);
        c->stamp_have = (uint8_t)(c->stamp_have + k);
    }
}

/* Header length implied by the first two bytes. */
static unsigned header_need(const uint8_t *h)
{
    unsigned l7 = h[1] & 0x7fu;

    return 2u + (l7 == 126 ? 2u : l7 == 127 ? 8u : 0u) + (h[1] & 0x80u ? 4u : 0u);
}

/* The header in c->hdr is complete: check it and start the payload.
 * Returns -1 on a protocol error. */
static int header_done(struct conn *c)
{
    const uint8_t *h = c->hdr;
    unsigned l7 = h[1] & 0x7fu, op = h[0] & 0x0fu;
    uint64_t len = l7;

    if (h[1] & 0x80u || h[0] & 0x70u)
        return -1; /* server frames are never masked; no extensions */
    if (l7 == 126) {
        len = (uint64_t)h[2] << 8 | h[3];
    } else if (l7 == 127) {
        memcpy(&len, h + 2, 8);
        len = be64toh(len);
    }
    if (op >= 0x8 && (len > 125 || !(h[0] & 0x80u)))
        return -1;
    c->op = (uint8_t)op;
    c->fin = (uint8_t)(h[0] >> 7);
    c->left = len;
    c->in_payload = 1;
    if (op == 0x1 || op == 0x2) { /* a new message */
        c->stamp_have = 0;
        c->msg_len = 0;
    } else if (op >= 0x8) {
        c->ctl_have = 0;
    }
    return 0;
}

/* Fast path: a whole small data frame at p (unmasked, 7-bit length).
 * Returns its size, or 0 if the general path must handle it. */
static size_t whole_small_frame(struct conn *c, const uint8_t *p, size_t n, uint64_t now)
{
    size_t len;

    if (n < 2 || (p[0] & 0x7fu) != 0x2 || (p[1] & 0x80u) || (p[1] & 0x7fu) >= 126)
        return 0;
    len = p[1] & 0x7fu;
    if (n < 2 + len)
        return 0;
    c->msg_len = len;
    c->stamp_have = (uint8_t)(len < STAMP_LEN ? len : STAMP_LEN);
    memcpy(c->stamp, p + 2, c->stamp_have);
    if (p[0] & 0x80u)
        message_done(c, now);
    else {
        c->op = 0x2; /* a first fragment: continue in the general path */
        c->fin = 0;
    }
    return 2 + len;
}

/* Feed n received bytes through the frame parser; -1 on a protocol error. */
static int frames_input(struct conn *c, const uint8_t *p, size_t n, uint64_t now)
{
    while (n > 0) {
        size_t k;

        if (c->in_payload) {
            k = c->left < n ? (size_t)c->left : n;
            payload_bytes(c, p, k);
            c->left -= k;
            if (c->left == 0)
                frame_done(c, now);
        } else if (c->hdr_have == 0 && (k = whole_small_frame(c, p, n, now)) > 0) {
            /* handled */
        } else {
            unsigned need = c->hdr_have < 2 ? 2u : header_need(c->hdr);

            k = need - c->hdr_have < n ? need - c->hdr_have : n;
            memcpy(c->hdr + c->hdr_have, p, k);
            c->hdr_have = (uint8_t)(c->hdr_have + k);
            if (c->hdr_have >= 2 && c->hdr_have == header_need(c->hdr)) {
                if (header_done(c) < 0)
                    return -1;
                if (c->left == 0)
                    frame_done(c, now);
            }
        }
        if (c->state == C_DONE)
            return 0; /* an answer to a control frame could not be sent */
        p += k;
        n -= k;
    }
    return 0;
}

/* ---- handshake ---------------------------------------------------------- */

static void send_request(struct conn *c)
{
    if (net_write(c, g.request, g.request_len) != (ssize_t)g.request_len) {
        conn_failed(c, "cannot send the upgrade request");
        return;
    }
    c->state = C_HANDSHAKE;
}

/* wss: go on with the TLS handshake; the upgrade request follows it. */
static void tls_step(struct conn *c)
{
    static int told;
    int r = tls_io_handshake(c->tls);
    char what[128];

    if (r < 0) {
        conn_failed(c, tls_io_why(c->tls));
        return;
    }
    if (r == 0)
        return;
    if (!told++) {
        tls_io_describe(c->tls, what, sizeof what);
        printf("wsc-bench: TLS %s\n", what);
    }
    send_request(c);
}

static void on_connected(struct conn *c)
{
    int err = 0;
    socklen_t len = sizeof err;

    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
        conn_failed(c, strerror(err ? err : errno));
        return;
    }
    if (!g.o.tls) {
        send_request(c);
        return;
    }
    if ((c->tls = tls_io_new(c->fd, g.o.sni)) == NULL) {
        conn_failed(c, "cannot start TLS");
        return;
    }
    c->state = C_TLS;
    tls_step(c);
}

static void conn_opened(struct conn *c, uint64_t now)
{
    g.in_handshake--;
    g.opened++;
    g.active++;
    g.st.handshakes++;
    hist_add(&g.hs_lat, now - c->t_start);
    c->state = C_OPEN;
    free(c->hs);
    c->hs = NULL;
}

/* The response head so far is in c->hs: 0 incomplete, 1 upgraded (bytes
 * after the head are copied to g.rbuf, their count in *rest), -1 bad. */
static int handshake_input(struct conn *c, size_t *rest)
{
    char *end;
    size_t head;

    c->hs[c->hs_len] = '\0';
    if ((end = strstr(c->hs, "\r\n\r\n")) == NULL)
        return c->hs_len < HS_CAP - 1 ? 0 : -1;
    head = (size_t)(end - c->hs) + 4;
    if (strncmp(c->hs, "HTTP/1.1 101", 12) != 0 || strstr(c->hs, WS_ACCEPT) == NULL)
        return -1;
    *rest = c->hs_len - head;
    memcpy(g.rbuf, c->hs + head, *rest);
    return 1;
}

static void read_frames(struct conn *c, uint32_t ev);

/* The upgrade is done: frames that came with the head, then the mode's
 * first step. */
static void after_upgrade(struct conn *c, size_t rest, uint64_t now)
{
    conn_opened(c, now);
    if (rest > 0 && frames_input(c, g.rbuf, rest, now) < 0) {
        g.st.protocol_errors++;
        conn_ended(c);
        return;
    }
    if (c->state != C_OPEN)
        return;
    if (g.o.mode == MODE_CONNECT)
        send_close(c);
    else if (!g.restart)
        start_more();
}

/* Read the response head. */
static void read_handshake(struct conn *c)
{
    size_t rest = 0;
    ssize_t n;
    int r = 0;

    if (c->hs == NULL && (c->hs = malloc(HS_CAP)) == NULL) {
        conn_failed(c, "out of memory");
        return;
    }
    while (r == 0) {
        n = net_read(c, c->hs + c->hs_len, HS_CAP - 1 - c->hs_len);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        if (n <= 0) {
            conn_failed(c, n == 0 ? "closed during the handshake" : strerror(errno));
            return;
        }
        c->hs_len += (size_t)n;
        r = handshake_input(c, &rest);
    }
    if (r < 0) {
        conn_failed(c, "bad upgrade response");
        return;
    }
    after_upgrade(c, rest, now_ns());
    /* TLS may hold more records than the head's: edge-triggered epoll will
     * not say so again. */
    if (c->tls && (c->state == C_OPEN || c->state == C_CLOSING))
        read_frames(c, 0);
}

/* ---- events ------------------------------------------------------------- */

/* Read until EAGAIN, or until a short read unless the peer's FIN is known
 * to be pending (edge-triggered epoll will not report it again). */
static void read_frames(struct conn *c, uint32_t ev)
{
    for (;;) {
        ssize_t n = net_read(c, g.rbuf, RBUF_SIZE);

        if (n <= 0) {
            if (n < 0 && (errno == EAGAIN || errno == EINTR))
                return;
            conn_ended(c);
            return;
        }
        if (frames_input(c, g.rbuf, (size_t)n, now_ns()) < 0) {
            g.st.protocol_errors++;
            conn_ended(c);
            return;
        }
        if (c->state != C_OPEN && c->state != C_CLOSING)
            return;
        /* TLS returns a record at a time: read until EAGAIN. */
        if (!c->tls && (size_t)n < RBUF_SIZE && !(ev & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
            return; /* drained; edge-triggered epoll reports new data */
    }
}

static void on_event(struct conn *c, uint32_t ev)
{
    if (c->state == C_CONNECTING) {
        if (!(ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
            return;
        on_connected(c);
    } else if (c->state == C_TLS) {
        tls_step(c);
    }
    if (c->state == C_HANDSHAKE && (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
        read_handshake(c);
    if ((c->state == C_OPEN || c->state == C_CLOSING) &&
        (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
        read_frames(c, ev);
    if (c->state == C_OPEN || c->state == C_CLOSING)
        try_send(c, 0);
    if (c->state == C_DONE && g.restart)
        conn_start(c); /* connect mode: the slot goes round again */
}

/* Connect mode: a server that never ends the TCP connection after the close
 * handshake gets CLOSE_WAIT_NS, then we close ourselves. */
static void reap_closing(uint64_t now)
{
    unsigned i;

    for (i = 0; i < g.nslots; i++) {
        struct conn *c = &g.conns[i];

        if (c->state == C_CLOSING && now - c->t_start > CLOSE_WAIT_NS) {
            if (c->got_close)
                g.st.cycles++;
            else
                g.st.errors++;
            conn_release(c);
        }
        if (c->state == C_DONE && g.restart)
            conn_start(c); /* also retries slots whose start failed */
    }
}

static void tick(uint64_t now)
{
    unsigned i;

    if (now < g.next_tick)
        return;
    g.next_tick = now + (g.o.rate > 0 ? s_to_ns(g.o.tick_ms / 1e3) : 10 * TICK_NS);
    if (g.sending && g.o.rate > 0)
        for (i = 0; i < g.nslots; i++)
            if (g.conns[i].sender && g.conns[i].state == C_OPEN)
                try_send(&g.conns[i], 1);
    if (g.o.mode == MODE_CONNECT)
        reap_closing(now);
    else
        start_more(); /* the opening phase goes on past failed connections */
}

typedef int (*done_fn)(void);

/* Run the loop until done() or deadline; returns 1 on the hard timeout. */
static int loop_until(uint64_t deadline, done_fn done)
{
    struct epoll_event ev[MAX_EVENTS];

    for (;;) {
        uint64_t now = now_ns(), until;
        int n, i, ms;

        if (now >= g.hard_deadline)
            return 1;
        if ((done != NULL && done()) || now >= deadline)
            return 0;
        until = deadline < g.hard_deadline ? deadline : g.hard_deadline;
        if (g.next_tick < until)
            until = g.next_tick > now ? g.next_tick : now;
        ms = (int)((until - now + NS_PER_MS - 1) / NS_PER_MS);
        n = epoll_wait(g.ep, ev, MAX_EVENTS, ms);
        if (n < 0 && errno != EINTR) {
            perror("wsc-bench: epoll_wait");
            return 1;
        }
        for (i = 0; i < n; i++)
            on_event(ev[i].data.ptr, ev[i].events);
        tick(now_ns());
    }
}

static int all_settled(void)
{
    return g.opened + g.failed >= g.nslots;
}

static uint64_t expected_per_conn(const struct conn *c)
{
    return g.o.mode == MODE_ECHO ? c->sent : g.o.publish ? g.conns[0].sent : c->recv;
}

static int nothing_outstanding(void)
{
    unsigned i;

    for (i = 0; i < g.nslots; i++) {
        const struct conn *c = &g.conns[i];

        if (c->state == C_OPEN && c->recv < expected_per_conn(c))
            return 0;
    }
    return 1;
}

static int none_active(void)
{
    return g.active == 0 && g.in_handshake == 0;
}

/* ---- report ------------------------------------------------------------- */

struct sample {
    uint64_t t;
    double srv_cpu, srv_user, gen_cpu, core_busy, core_softirq;
};

static void take_sample(struct sample *s)
{
    s->t = now_ns();
    s->srv_cpu = proc_cpu_seconds(g.o.server_pid, &s->srv_user);
    s->gen_cpu = self_cpu_seconds();
    core_seconds(g.o.server_core, &s->core_busy, &s->core_softirq);
}

/* The server core's busy seconds, softirq share and the time other
 * processes took from it (a sign of a busy machine), as a RESULT fragment. */
static void print_core(const struct sample *a, const struct sample *b, double wall)
{
    double busy = b->core_busy - a->core_busy, sirq = b->core_softirq - a->core_softirq;
    double other = busy - sirq - (b->srv_cpu - a->srv_cpu);

    if (g.o.server_core < 0 || a->core_busy < 0 || b->core_busy < 0)
        busy = sirq = other = -1;
    else if (g.o.server_pid <= 0 || a->srv_cpu < 0 || b->srv_cpu < 0)
        other = -1;
    if (busy >= 0)
        fprintf(stderr, "wsc-bench: server core %d busy %.2f s of %.2f s: %.2f s softirq "
                "(network stack, charged to no process), %.2f s other processes\n",
                g.o.server_core, busy, wall, sirq, other < 0 ? 0 : other);
    printf("core_busy_s=%.3f core_softirq_s=%.3f core_other_s=%.3f ", busy, sirq,
           other < 0 ? 0 : other);
}

static void count_losses(uint64_t *lost, uint64_t *extra)
{
    unsigned i;

    *lost = *extra = 0;
    for (i = 0; i < g.nslots; i++) {
        const struct conn *c = &g.conns[i];
        uint64_t want = expected_per_conn(c);

        if (g.o.mode == MODE_SUBSCRIBE && !g.o.publish)
            continue;
        if (c->recv < want)
            *lost += want - c->recv;
        else
            *extra += c->recv - want;
    }
}

static double per(double x, double y)
{
    return y > 0 ? x / y : 0;
}

static void print_latency(FILE *out, const char *what, const struct hist *h)
{
    fprintf(out, "%s p50 %.1f us  p99 %.1f us  p99.9 %.1f us  max %.1f us  (%llu samples)\n",
            what, hist_quantile(h, 0.50) / 1e3, hist_quantile(h, 0.99) / 1e3,
            hist_quantile(h, 0.999) / 1e3, hist_quantile(h, 1.0) / 1e3,
            (unsigned long long)h->n);
}

/* Rate mode: messages due by the end that were never sent, beyond the one
 * tick the last send may lag the end by (a window or a socket that held
 * them back); 0 unthrottled. */
static uint64_t messages_behind(void)
{
    uint64_t behind = 0, slack;

    if (g.o.rate <= 0)
        return 0;
    slack = msgs_per_tick();
    for (unsigned i = 0; i < g.nslots; i++) {
        const struct conn *c = &g.conns[i];
        uint64_t due = due_by(c, g.t_end);
        if (c->sender && due > c->sent + slack)
            behind += due - c->sent - slack;
    }
    return behind;
}

static void print_traffic(const struct sample *a, const struct sample *b)
{
    double wall = ns_to_s(b->t - a->t), srv = b->srv_cpu - a->srv_cpu;
    double gen = b->gen_cpu - a->gen_cpu;
    double user = a->srv_user < 0 || b->srv_user < 0 ? -1 : b->srv_user - a->srv_user;
    uint64_t lost, extra, behind = messages_behind();

    count_losses(&lost, &extra);
    printf("sent     %llu msgs  %.0f msg/s  %.2f MB/s\n", (unsigned long long)g.st.sent,
           per((double)g.st.sent, wall), per((double)g.st.sent_bytes / 1e6, wall));
    printf("received %llu msgs  %.0f msg/s  %.2f MB/s\n", (unsigned long long)g.st.recv,
           per((double)g.st.recv, wall), per((double)g.st.recv_bytes / 1e6, wall));
    printf("lost %llu  extra %llu  out-of-order/corrupt %llu  disconnects %llu  errors %llu"
           "  protocol errors %llu\n",
           (unsigned long long)lost, (unsigned long long)extra, (unsigned long long)g.st.bad,
           (unsigned long long)g.st.disconnects, (unsigned long long)g.st.errors,
           (unsigned long long)g.st.protocol_errors);
    print_latency(stdout, "latency", &g.lat);
    if (srv >= 0 && g.o.server_pid > 0)
        printf("server CPU %.2f s (%.0f%% of %.2f s; %.2f s in user space): %.0f msgs/CPU-s"
               "  %.2f MB/CPU-s\n",
               srv, 100 * per(srv, wall), wall, user, per((double)g.st.recv, srv),
               per((double)g.st.recv_bytes / 1e6, srv));
    printf("wsc-bench CPU %.2f s (%.0f%% of one core)%s\n", gen, 100 * per(gen, wall),
           per(gen, wall) > 0.9 ? "  WARNING: the load generator may be the bottleneck" : "");
    if (behind > 0)
        printf("WARNING: %llu messages due by the end were never sent: the offered rate was "
               "not met\n", (unsigned long long)behind);
    printf("RESULT behind=%llu ", (unsigned long long)behind);
    print_core(a, b, wall);
    printf("label=%s mode=%s conns=%u size=%zu rate=%g wall_s=%.3f "
           "sent=%llu recv=%llu lost=%llu extra=%llu bad=%llu disconnects=%llu errors=%llu "
           "msg_s=%.0f mb_s_out=%.3f mb_s_in=%.3f srv_cpu_s=%.3f srv_cpu_pct=%.1f "
           "srv_user_s=%.3f msgs_per_srv_cpu_s=%.0f mb_per_srv_cpu_s=%.3f p50_us=%.1f "
           "p99_us=%.1f p999_us=%.1f gen_cpu_s=%.3f gen_cpu_pct=%.1f\n",
           g.o.label, mode_names[g.o.mode], g.opened, g.o.size, g.o.rate, wall,
           (unsigned long long)g.st.sent, (unsigned long long)g.st.recv,
           (unsigned long long)lost, (unsigned long long)extra, (unsigned long long)g.st.bad,
           (unsigned long long)g.st.disconnects, (unsigned long long)g.st.errors,
           per((double)g.st.recv, wall), per((double)g.st.sent_bytes / 1e6, wall),
           per((double)g.st.recv_bytes / 1e6, wall), srv, 100 * per(srv, wall), user,
           per((double)g.st.recv, srv), per((double)g.st.recv_bytes / 1e6, srv),
           hist_quantile(&g.lat, 0.5) / 1e3, hist_quantile(&g.lat, 0.99) / 1e3,
           hist_quantile(&g.lat, 0.999) / 1e3, gen, 100 * per(gen, wall));
}

static void print_connect(const struct sample *a, const struct sample *b, uint64_t hs)
{
    double wall = ns_to_s(b->t - a->t), srv = b->srv_cpu - a->srv_cpu;
    double gen = b->gen_cpu - a->gen_cpu;

    printf("handshakes %llu in %.2f s: %.0f/s  closed cleanly %llu  errors %llu\n",
           (unsigned long long)hs, wall, per((double)hs, wall),
           (unsigned long long)g.st.cycles, (unsigned long long)g.st.errors);
    print_latency(stdout, "connect-to-101", &g.hs_lat);
    if (g.o.server_pid > 0)
        printf("server CPU %.2f s (%.0f%%): %.0f handshakes/CPU-s\n", srv,
               100 * per(srv, wall), per((double)hs, srv));
    printf("wsc-bench CPU %.2f s (%.0f%% of one core)\n", gen, 100 * per(gen, wall));
    printf("RESULT ");
    print_core(a, b, wall);
    printf("label=%s mode=connect conns=%u wall_s=%.3f handshakes=%llu "
           "hs_s=%.0f cycles=%llu errors=%llu srv_cpu_s=%.3f srv_cpu_pct=%.1f "
           "hs_per_srv_cpu_s=%.0f p50_us=%.1f p99_us=%.1f p999_us=%.1f "
           "gen_cpu_s=%.3f gen_cpu_pct=%.1f\n",
           g.o.label, g.nslots, wall, (unsigned long long)hs, per((double)hs, wall),
           (unsigned long long)g.st.cycles, (unsigned long long)g.st.errors, srv,
           100 * per(srv, wall), per((double)hs, srv), hist_quantile(&g.hs_lat, 0.5) / 1e3,
           hist_quantile(&g.hs_lat, 0.99) / 1e3, hist_quantile(&g.hs_lat, 0.999) / 1e3, gen,
           100 * per(gen, wall));
}

static void print_idle(long rss_cold, long rss0, long rss1, unsigned warm, double setup_s)
{
    unsigned n = g.opened > warm ? g.opened - warm : 0;
    double per_conn = n ? (double)(rss1 - rss0) * 1024.0 / n : 0;
    double cold = g.opened ? (double)(rss1 - rss_cold) * 1024.0 / g.opened : 0;

    printf("opened %u of %u connections in %.2f s (%.0f/s), failed %u\n", g.opened,
           g.nslots, setup_s, per(g.opened, setup_s), g.failed);
    print_latency(stdout, "connect-to-101", &g.hs_lat);
    printf("server VmRSS %ld KiB before, %ld KiB after %u warm-up connection(s), %ld KiB "
           "with %u idle connections: %.0f bytes per connection after the warm-up "
           "(%.0f counting from before it)\n",
           rss_cold, rss0, warm, rss1, g.opened, per_conn, cold);
    printf("pings answered %llu, disconnects %llu\n", (unsigned long long)g.st.pings,
           (unsigned long long)g.st.disconnects);
    printf("RESULT label=%s mode=idle conns=%u failed=%u setup_s=%.3f rss0_kib=%ld "
           "rss1_kib=%ld bytes_per_conn=%.0f rss_cold_kib=%ld cold_bytes_per_conn=%.0f "
           "pings=%llu disconnects=%llu errors=%llu\n",
           g.o.label, g.opened, g.failed, setup_s, rss0, rss1, per_conn, rss_cold, cold,
           (unsigned long long)g.st.pings, (unsigned long long)g.st.disconnects,
           (unsigned long long)g.st.errors);
}

/* ---- phases ------------------------------------------------------------- */

static int open_all(void)
{
    uint64_t t = now_ns();
    int timed_out;

    start_more();
    timed_out = loop_until(g.hard_deadline, all_settled);
    fprintf(stderr, "wsc-bench: %u/%u connections open in %.2f s\n", g.opened, g.nslots,
            ns_to_s(now_ns() - t));
    return timed_out;
}

static void close_all(void)
{
    unsigned i;

    g.restart = 0;
    for (i = 0; i < g.nslots; i++)
        if (g.conns[i].state != C_DONE && g.conns[i].state != C_NEW)
            conn_release(&g.conns[i]);
}

static int run_traffic(void)
{
    struct sample a, b;
    uint64_t lost, extra;
    unsigned i;
    int timed_out;

    take_sample(&a);
    g.t0 = a.t;
    g.t_end = g.t0 + s_to_ns(g.o.duration);
    g.sending = 1;
    g.next_tick = 0;
    for (i = 0; i < g.nslots; i++)
        try_send(&g.conns[i], 1);
    timed_out = loop_until(g.t_end, NULL);
    g.sending = 0;
    if (!timed_out)
        timed_out = loop_until(g.t_end + s_to_ns(g.o.drain), nothing_outstanding);
    take_sample(&b);
    print_traffic(&a, &b);
    count_losses(&lost, &extra);
    if (timed_out)
        return 3;
    return lost || extra || g.st.bad || g.failed || g.st.disconnects ? 1 : 0;
}

/* The baseline is taken after one warm-up connection: a server's first
 * handshake pulls in code and one-time state (OpenSSL's SHA-1 and its
 * provider set: ~2 MiB of pages for libwsc and floor-echo, nothing for
 * uWebSockets, which carries its own SHA-1), and that is no connection's
 * cost. The figure counted from before it is reported beside. */
static int run_idle(void)
{
    long rss_cold = proc_rss_kib(g.o.server_pid), rss0, rss1;
    unsigned n = g.nslots, warm;
    uint64_t t;
    double setup;
    int timed_out;

    g.nslots = 1; /* until the baseline: the loop's ticks start more */
    timed_out = open_all();
    if (!timed_out)
        timed_out = loop_until(now_ns() + s_to_ns(0.3), NULL);
    warm = g.opened;
    rss0 = proc_rss_kib(g.o.server_pid);
    g.nslots = n;
    t = now_ns();
    if (!timed_out)
        timed_out = open_all();
    setup = ns_to_s(now_ns() - t);
    if (!timed_out)
        timed_out = loop_until(now_ns() + s_to_ns(g.o.settle), NULL);
    rss1 = proc_rss_kib(g.o.server_pid);
    print_idle(rss_cold, rss0, rss1, warm, setup);
    if (timed_out)
        return 3;
    return g.failed || g.st.disconnects ? 1 : 0;
}

static int run_connect(void)
{
    struct sample a, b;
    uint64_t hs;
    int timed_out;

    take_sample(&a);
    g.t0 = a.t;
    g.t_end = g.t0 + s_to_ns(g.o.duration);
    g.restart = 1;
    g.sending = 1;
    start_more();
    timed_out = loop_until(g.t_end, NULL);
    hs = g.st.handshakes;
    take_sample(&b);
    g.restart = 0;
    g.sending = 0;
    if (!timed_out)
        timed_out = loop_until(g.t_end + s_to_ns(g.o.drain), none_active);
    print_connect(&a, &b, hs);
    if (timed_out)
        return 3;
    return g.st.errors || hs == 0 ? 1 : 0;
}

/* ---- options ------------------------------------------------------------ */

_Noreturn static void usage(FILE *out, int status)
{
    fprintf(out,
        "usage: wsc-bench [options] ws://127.0.0.1:PORT/[PATH]\n"
        "       wsc-bench [options] --ca FILE|--insecure wss://127.0.0.1:PORT/[PATH]\n"
        "  --mode MODE         echo (default), subscribe, idle or connect\n"
        "  -c, --connections N connections (connect mode: kept in flight) [100]\n"
        "  -s, --size BYTES    payload per message, >= 16 to check order [23]\n"
        "  -r, --rate N        messages/s per connection, 0 = unthrottled [0]\n"
        "  -d, --duration S    seconds of load [10]\n"
        "  --timeout S         hard bound on the whole run [duration + 60]\n"
        "  --drain S           wait for outstanding echoes after the load [5]\n"
        "  --settle S          idle mode: wait before reading VmRSS [2]\n"
        "  --tick-ms MS        rate mode: send what is due every MS ms [1]\n"
        "  --window BYTES      bytes in flight per connection\n"
        "                      [auto: 1 MiB / N within 4-256 KiB, >= 4 messages]\n"
        "  --batch BYTES       bytes of frames per write() [65536]\n"
        "  --concurrency N     handshakes in progress at once [256]\n"
        "  --sources N         bind to 127.0.0.1 .. 127.0.0.N [auto]\n"
        "  --server-pid PID    report the server's CPU time and VmRSS\n"
        "  --server-core N     report core N's busy and softirq time\n"
        "  --publish           subscribe mode: connection 0 sends at --rate\n"
        "  --label TEXT        copied into the RESULT line\n"
        "  --ports P1,P2,...   connection i goes to the URL's host on port P(i mod n)\n"
        "                      instead (at most 16; connection 0 on P1)\n"

        "  --ca FILE           wss: verify the server's certificate against FILE\n"
        "  --insecure          wss: do not verify the certificate (tests only)\n"
        "  --sni NAME          wss: server name sent and verified [localhost]\n"
        "  --tls-max VERSION   wss: highest protocol version offered, 1.2 or 1.3\n");
    exit(status);
}

static double parse_num(const char *s, const char *what)
{
    char *end;
    double v = strtod(s, &end);

    if (end == s || *end != '\0' || v < 0) {
        fprintf(stderr, "wsc-bench: bad %s: %s\n", what, s);
        exit(2);
    }
    return v;
}

/* --ports P1,P2,...: 1 to 16 ports, each 1..65535. */
static void parse_ports(struct options *o, const char *list)
{
    char *end;

    for (o->nports = 0; *list != '\0'; list = *end == ',' ? end + 1 : end) {
        unsigned long v = strtoul(list, &end, 10);
        if (end == list || v == 0 || v > 65535 || o->nports == 16 ||
            (*end != ',' && *end != '\0')) {
            fprintf(stderr, "wsc-bench: bad --ports: %s\n", list);
            exit(2);
        }
        o->ports[o->nports++] = (uint16_t)v;
    }
}

/* ws://127.x.y.z:PORT/path; any other address is refused. */
/* ws:// or wss://127.x.y.z:PORT/path; any other address is refused. */
static void parse_url(struct options *o, const char *url)
{
    const char *p = url, *colon, *slash;
    long port;

    if (strncmp(p, "wss://", 6) == 0) {
        o->tls = 1;
        p += 6;
    } else if (strncmp(p, "ws://", 5) == 0) {
        p += 5;
    } else {
        usage(stderr, 2);
    }
    colon = strchr(p, ':');
    slash = strchr(p, '/');
    if (colon == NULL || (slash && slash < colon) || (size_t)(colon - p) >= sizeof o->host)
        usage(stderr, 2);
    memcpy(o->host, p, (size_t)(colon - p));
    o->host[colon - p] = '\0';
    port = strtol(colon + 1, NULL, 10);
    o->addr.sin_family = AF_INET;
    o->addr.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, o->host, &o->addr.sin_addr) != 1 ||
        (ntohl(o->addr.sin_addr.s_addr) >> 24) != 127 || port <= 0 || port > 65535) {
        fprintf(stderr, "wsc-bench: only ws[s]://127.x.x.x:PORT/ targets are allowed\n");
        exit(2);
    }
    snprintf(o->path, sizeof o->path, "%s", slash ? slash : "/");
}

static enum mode parse_mode(const char *s)
{
    unsigned i;

    for (i = 0; i < sizeof mode_names / sizeof mode_names[0]; i++)
        if (strcmp(s, mode_names[i]) == 0)
            return (enum mode)i;
    fprintf(stderr, "wsc-bench: unknown mode %s\n", s);
    exit(2);
}

static void parse_options(struct options *o, int argc, char **argv)
{
    static const struct option lo[] = {
        {"mode", required_argument, NULL, 'm'},     {"connections", required_argument, NULL, 'c'},
        {"size", required_argument, NULL, 's'},     {"rate", required_argument, NULL, 'r'},
        {"duration", required_argument, NULL, 'd'}, {"timeout", required_argument, NULL, 'T'},
        {"drain", required_argument, NULL, 'D'},    {"settle", required_argument, NULL, 'S'},
        {"window", required_argument, NULL, 'w'},   {"batch", required_argument, NULL, 'b'},
        {"concurrency", required_argument, NULL, 'C'}, {"sources", required_argument, NULL, 'a'},
        {"server-pid", required_argument, NULL, 'p'}, {"publish", no_argument, NULL, 'P'},
        {"server-core", required_argument, NULL, 'k'},
        {"tick-ms", required_argument, NULL, 't'},
        {"label", required_argument, NULL, 'l'},    {"help", no_argument, NULL, 'h'},
        {"ports", required_argument, NULL, 'o'},
        {"ca", required_argument, NULL, 'A'},       {"insecure", no_argument, NULL, 'I'},
        {"sni", required_argument, NULL, 'N'},      {"tls-max", required_argument, NULL, 'V'},
        {NULL, 0, NULL, 0}};
    int opt;

    *o = (struct options){.mode = MODE_ECHO, .conns = 100, .size = 23, .duration = 10,
                          .timeout = -1, .drain = 5, .settle = 2, .batch = 65536,
                          .concurrency = 256, .server_core = -1, .tick_ms = 1, .label = "-",
                          .sni = "localhost"};
    while ((opt = getopt_long(argc, argv, "c:s:r:d:h", lo, NULL)) != -1) {
        switch (opt) {
        case 'm': o->mode = parse_mode(optarg); break;
        case 'c': o->conns = (unsigned)parse_num(optarg, "connection count"); break;
        case 's': o->size = (size_t)parse_num(optarg, "size"); break;
        case 'r': o->rate = parse_num(optarg, "rate"); break;
        case 'd': o->duration = parse_num(optarg, "duration"); break;
        case 'T': o->timeout = parse_num(optarg, "timeout"); break;
        case 'D': o->drain = parse_num(optarg, "drain"); break;
        case 'S': o->settle = parse_num(optarg, "settle"); break;
        case 'w': o->window = (size_t)parse_num(optarg, "window"); break;
        case 'b': o->batch = (size_t)parse_num(optarg, "batch"); break;
        case 'C': o->concurrency = (unsigned)parse_num(optarg, "concurrency"); break;
        case 'a': o->sources = (unsigned)parse_num(optarg, "sources"); break;
        case 'p': o->server_pid = (pid_t)parse_num(optarg, "pid"); break;
        case 'P': o->publish = 1; break;
        case 't': o->tick_ms = parse_num(optarg, "tick"); break;
        case 'k': o->server_core = (int)parse_num(optarg, "core"); break;
        case 'l': o->label = optarg; break;
        case 'o': parse_ports(o, optarg); break;
        case 'A': o->ca = optarg; break;
        case 'I': o->insecure = 1; break;
        case 'N': o->sni = optarg; break;
        case 'V': o->tls_max = optarg; break;
        case 'h': usage(stdout, 0);
        default: usage(stderr, 2);
        }
    }
    if (argc - optind != 1 || o->conns == 0 || o->concurrency == 0)
        usage(stderr, 2);
    if (o->publish && (o->mode != MODE_SUBSCRIBE || o->rate <= 0)) {
        fprintf(stderr, "wsc-bench: --publish needs --mode subscribe and --rate\n");
        exit(2);
    }
    parse_url(o, argv[optind]);
    if (o->tls && (o->ca == NULL) == !o->insecure) {
        fprintf(stderr, "wsc-bench: a wss:// target needs --ca FILE or --insecure (one of them)\n");
        exit(2);
    }
    if (!o->tls && (o->ca != NULL || o->insecure || o->tls_max != NULL)) {
        fprintf(stderr, "wsc-bench: --ca, --insecure and --tls-max are for wss:// targets\n");
        exit(2);
    }
    if (o->timeout < 0)
        o->timeout = o->duration + o->drain + o->settle + 60;
}

/* ---- setup -------------------------------------------------------------- */

static void pick_mask(void)
{
    uint64_t seed = now_ns() ^ (uint64_t)getpid() * 0x9e3779b97f4a7c15ull;
    unsigned i;

    for (i = 0; i < 4; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        g.mask[i] = (uint8_t)(seed >> 56);
    }
    memcpy(&g.mask8, g.mask, 4);
    memcpy((uint8_t *)&g.mask8 + 4, g.mask, 4);
}

/* Window: enough to keep the server busy, small enough to drain fast. */
static void size_window(void)
{
    size_t w = g.o.window;

    if (w == 0) {
        w = (1u << 20) / g.o.conns;
        w = w > 262144 ? 262144 : w < 4096 ? 4096 : w;
    }
    g.window_msgs = w / g.flen;
    if (g.window_msgs < 4)
        g.window_msgs = 4;
    if (g.o.rate > 0 && g.o.window == 0) {
        /* Paced: room for two ticks' messages, so that the rate, not the
         * window, sets what goes out on each tick. */
        if (g.window_msgs < 2 * msgs_per_tick())
            g.window_msgs = 2 * msgs_per_tick();
    }
    g.refill_msgs = g.window_msgs / 4 ? g.window_msgs / 4 : 1;
}

static int setup(void)
{
    unsigned i;
    rlim_t fds = raise_nofile();

    g.nslots = g.o.conns;
    if (g.o.mode == MODE_CONNECT)
        g.o.concurrency = g.nslots;
    if (g.o.sources == 0)
        g.o.sources = g.o.mode == MODE_CONNECT ? 8 : (g.nslots + 15999) / 16000;
    if ((rlim_t)g.nslots + 16 > fds) {
        fprintf(stderr, "wsc-bench: %u connections need more descriptors than "
                "RLIMIT_NOFILE allows (%llu)\n", g.nslots, (unsigned long long)fds);
        return -1;
    }
    if (g.o.tls && (tls_io_init(g.o.ca, g.o.insecure) != 0 ||
                    (g.o.tls_max != NULL && tls_io_max_version(g.o.tls_max) != 0)))
        return -1;
    pick_mask();
    g.request_len = (size_t)snprintf(g.request, sizeof g.request,
        "GET %s HTTP/1.1\r\nHost: %s:%u\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: " WS_KEY "\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n",
        g.o.path, g.o.host, (unsigned)ntohs(g.o.addr.sin_port));
    if (build_template() != 0 || (g.rbuf = malloc(RBUF_SIZE)) == NULL ||
        (g.conns = calloc(g.nslots, sizeof *g.conns)) == NULL ||
        (g.ep = epoll_create1(EPOLL_CLOEXEC)) < 0)
        return -1;
    size_window();
    for (i = 0; i < g.nslots; i++) {
        g.conns[i].fd = -1;
        g.conns[i].idx = i;
        g.conns[i].phase = (double)i / g.nslots;
        g.conns[i].sender = g.o.mode == MODE_ECHO || (g.o.publish && i == 0);
    }
    return 0;
}

int main(int argc, char **argv)
{
    int rc;

    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN);
    parse_options(&g.o, argc, argv);
    if (setup() != 0) {
        fprintf(stderr, "wsc-bench: setup failed\n");
        return 1;
    }
    g.t_begin = now_ns();
    g.hard_deadline = g.t_begin + s_to_ns(g.o.timeout);
    alarm((unsigned)g.o.timeout + 15); /* last resort if the loop wedges */
    printf("wsc-bench: %s %s://%s:%u%s  %u connections  %zu-byte messages  %s\n",
           mode_names[g.o.mode], g.o.tls ? "wss" : "ws", g.o.host, (unsigned)ntohs(g.o.addr.sin_port), g.o.path,
           g.nslots, g.o.size, g.o.rate > 0 ? "rate-limited" : "unthrottled");
    if (g.o.mode == MODE_IDLE)
        rc = run_idle();
    else if (g.o.mode == MODE_CONNECT)
        rc = run_connect();
    else if (open_all() != 0)
        rc = 3;
    else if (g.opened == 0)
        rc = 1; /* nothing to measure; open_all() said why */
    else
        rc = run_traffic();
    if (rc == 3)
        fprintf(stderr, "wsc-bench: hard timeout (%.0f s) reached\n", g.o.timeout);
    close_all();
    return rc;
}
