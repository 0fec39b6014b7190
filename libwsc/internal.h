/*
 * internal.h - what libwsc's files share and nobody else sees.
 * Cross-file internals are named wsc__<file>_<verb>; file-local helpers are
 * static. Public names (ws_*, WS_*) live only in include/wsc.h.
 */
#ifndef WSC_INTERNAL_H
#define WSC_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <event2/event_struct.h>

#include "wsc.h"

/* watch.c: an epoll set per loop (Linux), else a libevent event per
 * connection; ./configure --disable-epoll builds the latter anywhere. */
#ifndef WSC__USE_EPOLL
#ifdef __linux__
#define WSC__USE_EPOLL 1
#else
#define WSC__USE_EPOLL 0
#endif
#endif

struct event;
struct event_base;
struct bufferevent;
struct evbuffer;
struct evconnlistener;

/* ---- utf8.c: incremental validation (fail-fast) -------------------------- */

enum { WSC__UTF8_ACCEPT = 0, WSC__UTF8_REJECT = 1 };
/* Feed bytes; state starts at WSC__UTF8_ACCEPT. Returns the new state:
 * REJECT as soon as a byte makes the sequence invalid (the call that feeds
 * that byte returns REJECT, and REJECT sticks), ACCEPT at a character
 * boundary, anything else mid-character (the same value the byte-at-a-time
 * machine would give, however the input was cut into calls). */
uint32_t wsc__utf8_feed(uint32_t state, const uint8_t *p, size_t len);
bool wsc__utf8_valid(const void *p, size_t len);
/* The text message a data callback on this thread is being given: it was
 * validated on arrival, so echoing or broadcasting exactly it is not
 * validated again. */
extern _Thread_local const void *wsc__valid_text __attribute__((tls_model("initial-exec")));
extern _Thread_local size_t wsc__valid_text_len __attribute__((tls_model("initial-exec")));
static inline bool wsc__utf8_check(const void *p, size_t len)
{
    return (p == wsc__valid_text && len == wsc__valid_text_len) || wsc__utf8_valid(p, len);
}

/* ---- utf8.c / utf8_simd.c: the vector validator and its oracle ------------ */
/* The byte-at-a-time state machine, same contract as wsc__utf8_feed: the
 * reference the vector code is tested against, and its path for short
 * inputs and for the bytes around a call's ends. */
uint32_t wsc__utf8_feed_scalar(uint32_t state, const uint8_t *p, size_t len);
enum wsc__utf8_kernel { WSC__UTF8_SCALAR, WSC__UTF8_SSE41, WSC__UTF8_AVX2, WSC__UTF8_BEST };
/* Is p[0..len) complete, valid UTF-8? With the kernel in use: by default the
 * widest this CPU has, picked at first use (the scalar code where none). */
bool wsc__utf8_vector_valid(const uint8_t *p, size_t len);
/* Use kernel k from now on, process-wide (tests, benchmarks); false if this
 * build or CPU lacks it. */
bool wsc__utf8_use(enum wsc__utf8_kernel k);

/* ---- http.c: stateless zero-copy request parser -------------------------- */

struct wsc__http_header {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
};

struct wsc__http_request {
    const char *method;
    size_t method_len;
    const char *target;      /* path?query as sent */
    size_t target_len;
    const char *path;
    size_t path_len;
    const char *query;       /* after '?', may be empty */
    size_t query_len;
    int minor_version;       /* HTTP/1.x */
    struct wsc__http_header *headers; /* caller's array */
    size_t num_headers;      /* out: headers found */
};

enum {
    WSC__HTTP_INCOMPLETE = -2,    /* head not complete yet */
    WSC__HTTP_BAD = -1,           /* malformed -> 400 */
    WSC__HTTP_TOO_MANY_HEADERS = -3 /* -> 431 */
};

/*
 * Parse one request head in buf[0..len). req->headers must point to an array
 * of max_headers entries. last_len is the length of a previous call on the
 * same bytes that returned INCOMPLETE (0 at first): scanning for the end of
 * the head resumes there, so byte-by-byte arrival stays linear.
 * Returns the head's length including the blank line, or a negative
 * WSC__HTTP_* code. Slices in req point into buf.
 */
int wsc__http_parse_request(const char *buf, size_t len, size_t last_len,
                            struct wsc__http_request *req, size_t max_headers);

/* A response head: the status plus headers (in head.headers, so the
 * header helpers below work on it). */
struct wsc__http_response {
    int status;
    int minor_version;
    struct wsc__http_request head; /* only headers/num_headers are used */
};
/* Like wsc__http_parse_request, for "HTTP/1.x NNN reason" heads. */
int wsc__http_parse_response(const char *buf, size_t len, size_t last_len,
                             struct wsc__http_response *resp, size_t max_headers);

/* First header of that name (case-insensitive), or NULL. */
const struct wsc__http_header *wsc__http_find_header(
    const struct wsc__http_request *req, const char *name);
/* How many headers have that name (case-insensitive). */
size_t wsc__http_count_headers(const struct wsc__http_request *req, const char *name);
/* Does any header of that name carry token in its comma list
 * (case-insensitive, optional whitespace)? */
bool wsc__http_header_has_token(const struct wsc__http_request *req,
                                const char *name, const char *token);
/* Percent-decode a query parameter value; see ws_request_query_param(). */
int wsc__http_query_param(const char *query, size_t query_len, const char *name,
                          char *out, size_t outlen);
const char *wsc__http_status_text(int status);

/* ---- handshake.c: RFC 6455 section 4.2 ------------------------------------ */

#define WSC__ACCEPT_LEN 28 /* base64 of a SHA-1 digest */

/* accept = base64(SHA1(key + GUID)); out gets WSC__ACCEPT_LEN + NUL. */
int wsc__handshake_accept(const char *key, size_t key_len,
                          char out[WSC__ACCEPT_LEN + 1]);
/* A key is valid when it is base64 of exactly 16 bytes. */
bool wsc__handshake_key_valid(const char *key, size_t key_len);

enum wsc__upgrade_verdict {
    WSC__NOT_UPGRADE = 0,   /* plain HTTP request */
    WSC__UPGRADE_OK = 101,
    WSC__UPGRADE_BAD = 400,
    WSC__UPGRADE_METHOD = 405,
    WSC__UPGRADE_VERSION = 426
};
/* Classify a parsed request; on UPGRADE_OK *key is the Sec-WebSocket-Key. */
enum wsc__upgrade_verdict wsc__handshake_check(const struct wsc__http_request *req,
                                               const struct wsc__http_header **key);

/* ---- extension.c / deflate.c: permessage-deflate (RFC 7692) ------------- */

struct z_stream_s;

struct wsc__pmd {                  /* what was negotiated, from our side */
    bool enabled;
    bool tx_no_context_takeover;   /* our compressor resets per message */
    bool rx_no_context_takeover;   /* the peer's does */
    bool announce_tx_bits;         /* server: say server_max_window_bits */
    uint8_t tx_window_bits;        /* our compressor's window */
};

/* ---- slim (conn_ext.c): state most connections never need, behind one
 * pointer allocated on demand (idle memory, issue 14): the permessage-
 * deflate state (while negotiated) and a message being assembled (while
 * one is: fragmented, streamed or compressed). ---- */
struct wsc__msg_asm {
    uint64_t wire_len;            /* compressed bytes of the message so far */
    uint8_t *buf;
    size_t len, cap;
};
struct wsc__conn_ext {
    struct wsc__msg_asm msg;      /* all zero when no message is assembled */
    bool pmd_on;                  /* permessage-deflate negotiated: */
    struct wsc__pmd params;
    struct z_stream_s *inflater;  /* own stream: takeover, or a message in pieces */
    struct z_stream_s *deflater;  /* own stream: server context takeover only */
};
struct ws_conn;
/* Use params (not enabled: deflate off). 0 or WS_ENOMEM. */
int wsc__conn_pmd_set(struct ws_conn *c, const struct wsc__pmd *params);
/* c->ext, made if need be; NULL: no memory. */
struct wsc__conn_ext *wsc__conn_ext(struct ws_conn *c);
/* Drop the assembled message; free c->ext if nothing else is in it. */
void wsc__conn_ext_msg_done(struct ws_conn *c);
/* Free it all (release). */
void wsc__conn_ext_free(struct ws_conn *c);
/* ---- end slim ext ---- */

struct ws_config;
/* Pick the first acceptable offer; false: no compression on this conn. */
bool wsc__pmd_negotiate(const struct wsc__http_request *req,
                        const struct ws_config *cfg, struct wsc__pmd *pmd);
/* Client: the server's answer (one header value); false fails the
 * handshake. */
bool wsc__pmd_parse_response(const char *value, size_t len, const struct ws_config *cfg,
                             struct wsc__pmd *pmd);
/* The Sec-WebSocket-Extensions response value; length or WS_ENOMEM. */
int wsc__pmd_response(const struct wsc__pmd *pmd, char *out, size_t outlen);

/* The compression scratch buffer is freed after use beyond this size. */
#define WSC__ZBUF_KEEP (256u * 1024u)

enum {
    WSC__INFLATE_TOO_BIG = -100,   /* -> 1009 */
    WSC__INFLATE_BAD = -101,       /* corrupt data -> 1007 */
    WSC__INFLATE_NOMEM = -102      /* -> 1011 */
};
/* Streams count their zlib allocations into *mem_counter (may be NULL). */
struct z_stream_s *wsc__inflater_new(size_t *mem_counter);
struct z_stream_s *wsc__deflater_new(size_t *mem_counter, int window_bits, int mem_level);
void wsc__inflater_free(struct z_stream_s *zs);
void wsc__deflater_free(struct z_stream_s *zs);
void wsc__inflater_reset(struct z_stream_s *zs);
/* Inflate in[0..len) onto *buf (grown as needed, never past limit + 1);
 * last appends the 00 00 ff ff tail. 0 or a WSC__INFLATE_* code. */
int wsc__inflate(struct z_stream_s *zs, const uint8_t *in, size_t len, bool last,
                 uint8_t **buf, size_t *cap, size_t *out_len, size_t limit);
/* Compress one whole message into *buf (tail stripped); reset for no
 * context takeover. 0 or WS_ENOMEM. */
int wsc__deflate(struct z_stream_s *zs, const uint8_t *in, size_t len, uint8_t **buf,
                 size_t *cap, size_t *out_len, bool reset);

/* ---- config.c ------------------------------------------------------------ */

struct ws_config {
    size_t max_message_size;
    size_t max_head_size;
    unsigned max_headers;
    unsigned handshake_timeout_ms;
    unsigned connect_timeout_ms;
    unsigned ping_interval_ms;
    unsigned pong_timeout_ms;
    unsigned close_timeout_ms;
    unsigned max_connections;
    int handle_signals;
    struct event_base *base;
    int deflate;                  /* offer permessage-deflate */
    int deflate_no_context_takeover; /* force it both ways (shared streams) */
    unsigned deflate_window_bits; /* 9..15: our compressor's window */
    unsigned deflate_mem_level;   /* 1..9 */
    size_t max_buffered;          /* backpressure cap per connection */
    size_t max_buffered_total;    /* the same over all connections of a server */
    size_t max_body_size;         /* HTTP request bodies (with a handler) */
    unsigned max_pending;         /* sockets still in the handshake */
    unsigned keepalive_timeout_ms; /* HTTP keep-alive: idle between requests */
    int close_slow_consumers;
    unsigned threads;             /* worker loops */
    size_t deflate_threshold;     /* smaller messages go uncompressed */
    /* upgrade.c: Origin allow-list, inline so configs copy by value */
    char allowed_origins[2048];
    /* forwarded.c: peers allowed to name the client (X-Forwarded-For, PROXY) */
    struct wsc__cidr {
        uint8_t family;           /* AF_INET or AF_INET6 */
        uint8_t bits;
        uint8_t addr[16];
    } trusted[16];
    unsigned num_trusted;
};
#define WSC__MAX_TRUSTED 16
void wsc__config_defaults(struct ws_config *cfg);

/* ---- frame.h / frame.c: RFC 6455 5.2 frames ----------------------------- */

#include "frame.h"

/* ---- conn.c: one connection ---------------------------------------------- */

enum wsc__conn_state {
    WSC__CONN_HTTP = 0,   /* reading the request head */
    WSC__CONN_OPEN,       /* upgraded */
    WSC__CONN_CLOSING,    /* we sent close; waiting for the peer's */
    WSC__CONN_FLUSHING,   /* done; writing out the last bytes */
    WSC__CONN_CLOSED      /* I/O released; shell alive while referenced */
};

struct wsc__loop;
struct wsc__sub;
struct wsc__topic;

struct wsc__backlog;
struct wsc__deadline;

/* Input kept for the next read; one allocation, only while it holds bytes. */
struct wsc__stash {
    size_t len, cap;
    uint8_t data[];
};
/* ---- slim (addr.c): a peer address in 20 bytes, for idle memory (issue 14) ---- */
struct wsc__addr {
    uint8_t family;               /* AF_INET, AF_INET6, or 0: unknown */
    uint8_t spare;
    uint16_t port;                /* host order */
    uint8_t bytes[16];            /* network order; 4 used for AF_INET */
};
#define WSC__ADDR_STRLEN 56       /* "[v6 address]:port" fits */
struct sockaddr;
struct wsc__proxy_info;
/* From an accepted / connected socket's address (NULL or another family:
 * unknown). */
void wsc__addr_set(struct wsc__addr *a, const struct sockaddr *sa);
/* From what a PROXY header or X-Forwarded-For said. */
void wsc__addr_set_proxy(struct wsc__addr *a, const struct wsc__proxy_info *info);
/* "a.b.c.d:port", "[v6]:port" or "unknown". */
void wsc__addr_format(const struct wsc__addr *a, char *out, size_t outlen);
struct ws_conn;
/* c's names with this (server) subprotocol, for wsc__conn_names_install;
 * NULL: no memory. */
char *wsc__conn_names_new(const struct ws_conn *c, const char *subprotocol);
/* Before the handle is out (loop thread): names replace c's. */
void wsc__conn_names_install(struct ws_conn *c, char *names);
/* Server: the accepted subprotocol, or "". */
const char *wsc__conn_subprotocol(const struct ws_conn *c);
/* ---- end slim addr ---- */

struct ws_conn {
    _Atomic int refs;
    _Atomic uint8_t state;        /* enum wsc__conn_state */
    /* bytes another thread reads: each its own (no bit-fields) */
    bool is_client;               /* copied from the endpoint: any thread */
    bool tls_on;                  /* over TLS: ws_conn_is_tls, ws_request_is_tls */
    _Atomic bool want_drain;      /* a send got WS_EAGAIN: call drain when low */
    uint64_t id;
    struct wsc__endpoint *ep;     /* loop thread only, and never once released:
                                     the endpoint may be gone by then */
    struct wsc__loop *loop;       /* its loop (referenced): any thread */
    evutil_socket_t fd;           /* -1 once released */
    uint32_t queued_pos;          /* io.c: its index in ep->queued + 1 while dirty */
#if !WSC__USE_EPOLL
    struct event *rev;            /* watch.c: readable (while watched) */
#endif
    uint32_t timer_slot;          /* timers.c: heap position + 1; 0 = no deadline */
    /* ---- slim: flags only the loop thread reads or writes, as bit-fields
     * (they share storage: a flag another thread reads must not be here) ---- */
    bool timer_reserved : 1;      /* timers.c: holds a heap slot (until release) */
    bool watched : 1;             /* watch.c: its socket is watched for input */
    bool kicked : 1;              /* watch.c: queued to read once more */
    bool bulk_reader : 1;         /* io.c: its last read filled the buffer */
    bool lingering : 1;
    bool shutting_down : 1;       /* 1001 sent by ws_server_stop() */
    bool connected : 1;           /* client: TCP connect completed */
    bool connecting : 1;          /* client: waiting for connect() */
    bool slow : 1;                /* over max_buffered: closing by policy */
    bool write_failed : 1;        /* the socket refused output: dropping */
    bool dirty : 1;               /* on its endpoint's list of output to flush */
    bool read_paused : 1;         /* the read event is removed (either reason) */
    bool app_paused : 1;          /* ws_conn_pause_reading() */
    bool pending : 1;             /* on the endpoint's list of handshaking sockets */
    bool keepalive_idle : 1;      /* HTTP: between requests (keepalive timer) */
    bool stash_handled : 1;       /* the stash is a partial frame, not unanswered input */
    bool awaiting_pong : 1;       /* heartbeat */
    bool got_traffic : 1;         /* any frame since the last heartbeat tick */
    bool close_sent : 1;
    bool close_notified : 1;
    bool opened : 1;
    bool frame_fin : 1;
    bool msg_compressed : 1;      /* RSV1 on its first frame */
    bool tls_hs : 1;              /* handshake running: output waits in the backlog */
    bool tls_wait_write : 1;      /* OpenSSL must write before it can go on */
    bool tls_failed : 1;          /* the handshake failed (client: WS_ETLS); implies tls_broken */
    bool tls_broken : 1;          /* fatal TLS error: no close_notify */
    /* ---- end slim flags ---- */
    struct wsc__backlog *bl;      /* output the socket has not taken yet */
    struct wsc__stash *stash;     /* input not parsed yet (a partial frame) */
    void *user;
    struct ws_conn *prev, *next;  /* the endpoint's list: open or pending */
    uint8_t proxy_phase;          /* proxy_protocol.c: enum wsc__proxy_phase */
    int8_t fail_error;            /* why it ended (WS_E*), for a client's callbacks */
    struct wsc__addr remote;      /* slim: the peer, binary; loop thread, set
                                     before the handle is out */
    struct wsc__conn_ext *ext;    /* conn_ext.c: deflate state, message assembly */
    _Atomic size_t outbuf;        /* output bytes, as last published by the loop */
    _Atomic size_t xqueued;       /* bytes admitted from other threads, not yet queued */

    /* ---- slim: each phase's state over the same bytes: the HTTP phase's
     * until wsc__conn_open (opened false), then the open connection's
     * (zeroed there). Check opened before touching either when the state
     * does not already say which (release); idle memory, issue 14. ---- */
    union {
        struct {                  /* HTTP phase: !opened */
            size_t http_scanned;  /* bytes already scanned for the head end */
            struct wsc__http_body *body; /* a request body being received */
            struct ws_upgrade *upgrade; /* upgrade.c: a decision pending: input is held */
        };
        struct {                  /* open: opened */
            struct ws_conn *id_next; /* chain in the loop's id table */
            struct wsc__sub *subs; /* topics it subscribed to (server only) */
            /* receive side: the frame being read and the message being assembled */
            uint64_t frame_left;  /* payload bytes still to come; 0 = header next */
            char *close_reason;   /* allocated only for a non-empty reason */
            uint32_t utf8_state;
            uint8_t rx_mask[4];   /* the streamed frame's masking key */
            uint8_t frame_opcode;
            uint8_t rx_mask_off;  /* where in the key its next byte is */
            uint8_t msg_opcode;   /* 0 = no fragmented message in progress */
            uint8_t close_reason_len;
            uint16_t close_code;  /* what our close frame said */
        };
    };
    /* ---- end slim phase union ---- */
    /* ---- TLS (tls.c); ssl is NULL on a plain connection ---- */
    struct ssl_st *ssl;
    /* ---- end TLS ---- */
    /* ---- slim (addr.c): "remote\0subprotocol\0", made at the first
     * ws_conn_remote_addr() or when the upgrade hook accepts a subprotocol
     * (server); freed at the last unref ---- */
    _Atomic(char *) names;
};

static inline size_t wsc__stash_len(const struct ws_conn *c)
{
    return c->stash != NULL ? c->stash->len : 0;
}

/* slim: permessage-deflate is on for c. */
static inline bool wsc__pmd_on(const struct ws_conn *c)
{
    return c->ext != NULL && c->ext->pmd_on;
}

struct sockaddr;

/* Linger after our last byte: half-close, then read and discard until the
 * peer closes or this many ms pass, so a peer still sending does not get a
 * RST that destroys the response it has not read yet. */
#define WSC__LINGER_MS 2000

/* A connection on fd (-1: a client's, not connected yet); NULL when out of
 * memory or when fd cannot be watched, and then fd is still the caller's to
 * answer or close. */
struct ws_conn *wsc__conn_new(struct wsc__endpoint *ep, int fd, const struct sockaddr *sa);
/* Input parsers: each takes buf[0..len) (writable: frames are unmasked in
 * place) and returns how many bytes it used; the rest is kept for the
 * next read. They stop when the connection leaves their state. */
/* client.c: the outgoing side of the HTTP phase. */
void wsc__client_connected(struct ws_conn *c);
size_t wsc__client_http_input(struct ws_conn *c, uint8_t *buf, size_t len);
/* conn_http.c: the request phase; upgrades to OPEN on success. */
size_t wsc__conn_http_input(struct ws_conn *c, uint8_t *buf, size_t len);
/* message.c: frames to messages. */
size_t wsc__conn_ws_input(struct ws_conn *c, uint8_t *buf, size_t len);
/* conn.c: route input to the parser of the connection's state. */
size_t wsc__conn_input(struct ws_conn *c, uint8_t *buf, size_t len);
/* The socket reached EOF or failed (cause DISCONNECT), or the connect did. */
void wsc__conn_io_closed(struct ws_conn *c);
/* The backlog drained (len bytes left): drain callback, linger. */
void wsc__conn_io_drained(struct ws_conn *c, size_t len);
/* Client: connect() finished; err is its errno (0: connected). */
void wsc__conn_io_connected(struct ws_conn *c, int err);
/* Frame and queue one whole frame on c (masked if c is a client's). */
int wsc__conn_write_frame(struct ws_conn *c, bool rsv1, int opcode, const void *data,
                          size_t len);
/* Upgrade done, 101 written: create the framing context, fire open. */
int wsc__conn_open(struct ws_conn *c);
/* Fail the connection (RFC 6455 7.1.7): close frame with code, close
 * callback with cause, then flush and close TCP. */
void wsc__conn_fail(struct ws_conn *c, enum ws_close_cause cause, int code,
                    const char *reason);
/* Peer's close frame arrived (already validated). */
void wsc__conn_close_received(struct ws_conn *c, int code, const char *reason,
                              size_t reason_len);
/* conn.c: a keep-alive response is queued: wait for the next request
 * (keepalive_timeout once the response is out of our buffers). */
void wsc__conn_keepalive_wait(struct ws_conn *c);
/* Write what is queued, then half-close and linger (see WSC__LINGER_MS). */
void wsc__conn_flush_and_close(struct ws_conn *c);
/* Fire the close callback if the connection opened and it has not fired. */
void wsc__conn_notify_close(struct ws_conn *c, enum ws_close_cause cause, int code,
                            const char *reason, size_t reason_len, bool remote);
/* On the loop thread: frame and queue a message / control frame, no cap. */
int wsc__conn_send_now(struct ws_conn *c, int opcode, const void *data, size_t len);
/* May len more bytes be queued? 0, or WS_EAGAIN / WS_ETOOBIG / WS_ECLOSED
 * (the slow-consumer policy was applied). Loop thread. */
int wsc__conn_admit(struct ws_conn *c, size_t len);
/* The bytes a message of len takes in the output (frame header included). */
size_t wsc__conn_reservation(const struct ws_conn *c, size_t len);
/* The loop's output fell while a send waited for the budget: drain
 * callbacks for the connections that were refused. */
void wsc__conn_budget_drained(struct wsc__endpoint *ep);
/* Free a request body being received (release). */
void wsc__http_body_free(struct ws_conn *c);
/* timers.c: a connection's one deadline, kept in its loop's heap.
 * (Re)arm it ms from now (0: at the next loop pass). */
void wsc__conn_arm_timer(struct ws_conn *c, unsigned ms);
/* The deadline is now ms from now; 0: none (0 to arm_timer means "at
 * once"). */
void wsc__conn_set_timeout(struct ws_conn *c, unsigned ms);
void wsc__conn_disarm_timer(struct ws_conn *c);
/* A live connection holds a heap slot: taken at creation (-1: no memory),
 * given back at release (which also disarms). */
int wsc__timers_reserve(struct ws_conn *c);
void wsc__timers_unreserve(struct ws_conn *c);
/* conn.c: the deadline passed; what it means depends on the state. */
void wsc__conn_on_timer(struct ws_conn *c);
/* Close a slow consumer by policy (deferred to the next loop pass). */
void wsc__conn_close_slow(struct ws_conn *c);
int wsc__conn_close_now(struct ws_conn *c, int code, const char *reason, size_t len);
/* Drop a connection at once, without a close callback. */
void wsc__conn_abort(struct ws_conn *c);
/* Server is stopping: 1001 to open connections, drop handshaking ones. */
void wsc__conn_shutdown(struct ws_conn *c);

/* ---- io.c: the socket (read into a per-thread buffer, corked writes) ---- */

/* Bytes read per read(); a thread's loops share one such buffer. */
#define WSC__READ_SIZE (256u * 1024u)
/* Replies made while one connection's input is handled are gathered here
 * and written with one syscall when the handling ends. */
#define WSC__CORK_SIZE (64u * 1024u)
/* A partial data frame up to this size is kept whole until it completes;
 * larger ones are streamed into the message buffer. */
#define WSC__GATHER_MAX (64u * 1024u)
/* A stashed partial frame this large is read on in place (io.c): its
 * stash keeps WSC__GROW_SPARE free, grown to twice what it holds plus
 * that when it has less. */
#define WSC__GROW_MIN (4u * 1024u)
#define WSC__GROW_SPARE (16u * 1024u)

/* Take over a connected (or, with connecting, connect-pending) socket. */
int wsc__io_start(struct ws_conn *c, evutil_socket_t fd);
/* Client: start a non-blocking connect; completion via conn_io_connected. */
int wsc__io_connect(struct ws_conn *c, const struct sockaddr *sa, int salen);
/* Close the socket and free every I/O resource (unsent output is lost). */
void wsc__io_release(struct ws_conn *c);
/* Queue a then b (either may be empty): corked, written, or backlogged. */
int wsc__io_send(struct ws_conn *c, const void *a, size_t alen, const void *b,
                 size_t blen);
/* Build an unmasked frame right in c's cork: 1 when done, 0 when c is not
 * corked or has a backlog (then use wsc__io_send). */
int wsc__io_cork_frame(struct ws_conn *c, bool rsv1, int opcode, const void *data,
                      size_t len);
/* Queue the whole of buf and empty it. */
int wsc__io_send_buffer(struct ws_conn *c, struct evbuffer *buf);
/* A refcounted frame shared by many connections (broadcast). */
struct wsc__shared {
    unsigned refs;                /* loop thread only */
    size_t len;
    uint8_t data[];
};
struct wsc__shared *wsc__shared_new(size_t len);
void wsc__shared_unref(struct wsc__shared *s);
/* Queue s on c: written now if possible, the rest by reference. */
int wsc__io_send_shared(struct ws_conn *c, struct wsc__shared *s);
/* Queue s on c without writing: the endpoint flushes every connection so
 * queued once the current callbacks are done, so that broadcasts made in
 * one pass leave in one write per connection. */
int wsc__io_queue_shared(struct ws_conn *c, struct wsc__shared *s);
/* A connection queued for the flush after this pass, and the frames
 * chained for it (indexes into the endpoint's qitems). */
#define WSC__QNONE UINT32_MAX
struct wsc__queued {
    struct ws_conn *conn;
    uint32_t head, tail;          /* WSC__QNONE: nothing chained */
    size_t bytes;                 /* the chained frames' length */
};
struct wsc__qitem {
    struct wsc__shared *s;        /* one reference held */
    uint32_t next;
};
/* Drop what the flush would have written to c (it is failing or going). */
void wsc__io_unqueue(struct ws_conn *c);
/* The endpoint's flush event (created by endpoint init). */
void wsc__io_flush_queued(evutil_socket_t fd, short what, void *arg);
/* Gather c's output until uncork (at most one corked connection per thread). */
void wsc__io_cork(struct ws_conn *c);
void wsc__io_uncork(void);
/* Write out what the cork holds for c now (c stays corked). */
void wsc__io_flush(struct ws_conn *c);
/* Free the calling thread's buffers (the last endpoint is gone). */
void wsc__io_thread_cleanup(void);
/* Provoked output past 1.5 x max_buffered waits in the backlog (reading
 * pauses until it is down to half the cap). */
bool wsc__io_over_cap(const struct ws_conn *c);
/* Input must wait: over the cap, or the application paused reading. */
bool wsc__io_input_blocked(const struct ws_conn *c);
/* Input held in the stash (e.g. while the upgrade hook decided) is to be
 * handled now, on the next loop pass. */
void wsc__io_handle_stash(struct ws_conn *c);
/* Keep buf[0..len) as the connection's unparsed input (false: no memory);
 * free it. */
bool wsc__io_stash(struct ws_conn *c, const uint8_t *buf, size_t len);
void wsc__io_stash_free(struct ws_conn *c);
/* ws_conn_pause_reading / resume_reading on the loop thread. */
void wsc__io_set_app_paused(struct ws_conn *c, bool paused);
/* Bytes waiting for the socket (corked or backlogged); of those, the bytes
 * corked for c in the current read pass go to *corked unless it is NULL. */
size_t wsc__io_pending(const struct ws_conn *c, size_t *corked);
/* Half-close (after our last byte), then read and discard. */
void wsc__io_shutdown_write(struct ws_conn *c);

/* ---- xthread.c: sends from other threads --------------------------------- */

enum wsc__xmsg_kind {
    WSC__X_SEND, WSC__X_PING, WSC__X_CLOSE, WSC__X_BROADCAST, WSC__X_SLOW, WSC__X_PUBLISH,
    WSC__X_ADOPT,   /* worker: take this accepted socket (code: fd, data: address) */
    WSC__X_STOP,    /* worker: the server is stopping */
    WSC__X_BUDGET,  /* another thread's send met the budget: check it on the loop */
    WSC__X_PAUSE,   /* ws_conn_pause_reading / resume_reading from elsewhere */
    WSC__X_RESUME
};

struct wsc__xmsg {
    struct wsc__xmsg *next;
    struct ws_conn *conn;         /* holds a reference (NULL for broadcast) */
    struct wsc__endpoint *ep;     /* broadcast/publish: the loop's endpoint */
    uint8_t kind;
    uint8_t opcode;
    int code;
    size_t len;
    struct wsc__tls_listener *tls; /* adopt: the TLS listener, or NULL */
    uint8_t data[];
};

/*
 * The part of a loop that outlives its endpoint: other threads and
 * referenced connections reach the loop only through this, so a send
 * racing ws_server_free() finds it dead instead of touching freed memory.
 * Heap-allocated and refcounted (the endpoint and every connection on it
 * hold a reference).
 */
struct wsc__loop {
    _Atomic int refs;
    struct event_base *base;
    _Atomic(const char *) owner;  /* &wsc__thread_tag of the thread running it */
    pthread_mutex_t lock;         /* guards the queue, dead and the id table */
    bool dead;                    /* its endpoint is gone: posts are refused */
    struct wsc__xmsg *head, *tail;
    bool wake_pending;
    struct event *wake;           /* no timeout: activation is never lost */
    /* Limits other threads apply without touching the endpoint. */
    size_t max_buffered;          /* per connection */
    size_t budget;                /* this loop's share of max_buffered_total */
    bool close_slow;
    _Atomic size_t buffered;      /* sum of its connections' published output */
    _Atomic bool budget_waiting;  /* a send (any thread) was refused by the budget */
    _Atomic uint64_t dropped;     /* cross-thread sends lost to a closed conn */
    uint8_t index;                /* worker number: the low byte of conn ids */
    /* Open connections by id (ws_server_send_to), chained, under lock. */
    struct ws_conn **ids;
    size_t id_buckets, num_ids;
    /* timers.c: its connections' deadlines (loop thread only) */
    struct wsc__deadline *timers; /* min-heap by deadline */
    size_t num_timers, cap_timers, timers_reserved;
    struct event *timer_ev;       /* set to the earliest deadline */
    uint64_t timer_walk_now;      /* nonzero while due deadlines fire */
    /* watch.c: which sockets have input (loop thread only) */
    int watch_fd;                 /* its epoll set; -1 without one */
    struct event *watch_ev;       /* libevent's event for watch_fd */
    void *watch_batch;            /* struct epoll_event[]: the batch in hand */
    int watch_len, watch_next;    /* its size, and the next to dispatch */
    struct event *kick_ev;        /* runs the kicked connections */
    struct ws_conn **kicked;
    size_t kicked_len, kicked_cap;
};
/* watch.c */
int wsc__watch_init(struct wsc__loop *loop);
void wsc__watch_free(struct wsc__loop *loop); /* keeps watch_batch: freed with the struct */
int wsc__watch_start(struct ws_conn *c);      /* watch c->fd for input */
void wsc__watch_stop(struct ws_conn *c);      /* stop (pause, release), drop a kick */
void wsc__watch_release(struct ws_conn *c);   /* stop for good: free what watching held */
void wsc__watch_rearm(struct ws_conn *c);     /* c->ssl or c->bulk_reader changed */
/* Run the read handler on the next pass even without new input. */
void wsc__watch_kick(struct ws_conn *c);
/* io.c: a small data frame from inside c's own read pass straight into
 * the cork; 0 when the general send path must decide. */
int wsc__io_send_short(struct ws_conn *c, int opcode, const void *data, size_t len);
/* Frames up to this size are built in the cork (one copy, no call). */
#define WSC__SMALL_FRAME 256
/* io.c: c's socket is readable (or kicked). */
void wsc__io_on_readable(struct ws_conn *c);
/* io.c: the socket is unusable: stop I/O, tear down on the next pass. */
void wsc__io_fail(struct ws_conn *c);
/* Admission on the loop's own thread: a message occupying need bytes fits
 * when the connection's pending output (queued, its cork included) leaves
 * room under max_buffered and the loop's budget share has room too. The
 * loop's sum (buffered) holds only what waits in backlogs, so the bytes
 * corked for this connection in the current pass (corked) count on top. */
enum wsc__admit { WSC__ADMITTED, WSC__OVER_CAP, WSC__OVER_BUDGET };
static inline enum wsc__admit wsc__loop_admit(const struct wsc__loop *loop, size_t queued,
                                              size_t corked, size_t need)
{
    if (queued + need > loop->max_buffered)
        return WSC__OVER_CAP;
    if (loop->budget > 0 &&
        atomic_load_explicit(&((struct wsc__loop *)loop)->buffered, memory_order_relaxed) + corked +
                need >
            loop->budget)
        return WSC__OVER_BUDGET;
    return WSC__ADMITTED;
}
int wsc__timers_init(struct wsc__loop *loop);
void wsc__timers_free(struct wsc__loop *loop);

struct wsc__loop *wsc__loop_new(struct event_base *base, const struct ws_config *cfg,
                                unsigned index);
/* The endpoint is going: refuse posts, drop what is queued, free the
 * event; the struct stays while connections reference it. */
void wsc__loop_kill(struct wsc__loop *loop);
void wsc__loop_ref(struct wsc__loop *loop);
void wsc__loop_unref(struct wsc__loop *loop);
void wsc__loop_mark_owner(struct wsc__loop *loop);
/* One byte per thread: its address names the thread, and comparing it
 * costs no call (every send asks whether it runs on the loop's thread). */
extern _Thread_local char wsc__thread_tag __attribute__((tls_model("initial-exec")));
static inline bool wsc__loop_is_owner(struct wsc__loop *loop)
{
    return atomic_load_explicit(&loop->owner, memory_order_acquire) == &wsc__thread_tag;
}
/* Every libwsc event callback starts here: the owner is whichever thread
 * actually runs the loop, whatever thread set things up. */
static inline void wsc__loop_enter(struct wsc__loop *loop)
{
    if (atomic_load_explicit(&loop->owner, memory_order_relaxed) != &wsc__thread_tag)
        wsc__loop_mark_owner(loop);
}
/* Hand a message to the loop; it takes ownership of m (and its ref).
 * Returns WS_ECLOSED (m freed, ref dropped) once the loop is dead. */
int wsc__loop_post(struct wsc__loop *loop, struct wsc__xmsg *m);
/* The id table: add at open, remove at release (loop thread); find from
 * any thread (returns a referenced conn or NULL). */
void wsc__loop_add_id(struct wsc__loop *loop, struct ws_conn *c);
void wsc__loop_remove_id(struct wsc__loop *loop, struct ws_conn *c);
struct ws_conn *wsc__loop_find_id(struct wsc__loop *loop, uint64_t id);

/* ---- server.c ------------------------------------------------------------ */

/*
 * What servers and clients share: the options, the loop, the callbacks and
 * the connections living on it. A connection points to its endpoint and
 * never needs to know which kind it belongs to, except for masking.
 */
struct wsc__endpoint {
    struct ws_config cfg;
    struct wsc__loop *loop;       /* refcounted: connections keep it */
    bool is_client;               /* mask what we send, expect unmasked */
    struct ws_server *srv;        /* the server it serves (NULL: a client) */
    _Atomic int stopping;
    struct wsc__http_header *hdr_scratch; /* max_headers entries, loop only */
    struct ws_conn *conns;        /* live connections, except the pending */
    /* Server sockets still in their HTTP phase, oldest first: capped at
     * max_pending (this loop's share), the oldest shed for a newcomer. */
    struct ws_conn *pending_head, *pending_tail;
    size_t num_pending, max_pending;
    _Atomic size_t num_open;      /* upgraded, not yet notified closed */
    size_t num_live;
    /* Called when a connection is released (loop thread). */
    void (*on_released)(struct wsc__endpoint *ep, struct ws_conn *c);

    /* No-context-takeover connections share these (loop thread only). */
    struct z_stream_s *shared_inflater, *shared_deflater;
    uint8_t *zbuf;                /* compressed output scratch */
    size_t zbuf_cap;
    size_t zmem;                  /* bytes zlib holds for this endpoint now */

    ws_open_cb on_open;   void *open_arg;
    ws_data_cb on_data;   void *data_arg;
    ws_control_cb on_ping; void *ping_arg;
    ws_control_cb on_pong; void *pong_arg;
    ws_close_cb on_close; void *close_arg;
    ws_drain_cb on_drain; void *drain_arg;

    /* Broadcast and topics act on the connections of this loop. */
    struct event *flush_ev;       /* writes what broadcasts queued */
    struct wsc__queued *queued;   /* connections with such output (refs held) */
    size_t num_queued, queued_cap;
    /* Shared frames queued on connections without a backlog, chained per
     * connection (wsc__queued.head): no allocation per delivery. */
    struct wsc__qitem *qitems;
    size_t num_qitems, qitems_cap;
    struct wsc__topic **topics;   /* hash table, topic_buckets (power of 2) */
    size_t topic_buckets, num_topics;
};

/* The server an endpoint belongs to (server endpoints only). */
static inline struct ws_server *wsc__server_of(struct wsc__endpoint *ep)
{
    return ep->srv;
}

/* One-time process setup (libevent threading, SIGPIPE); 0 on success. */
int wsc__library_init(void);

int wsc__endpoint_init(struct wsc__endpoint *ep, const struct ws_config *cfg,
                       struct event_base *base, unsigned index, unsigned nloops);
void wsc__endpoint_destroy(struct wsc__endpoint *ep);

/* A worker loop beyond the first (config threads > 1). */
struct wsc__worker {
    struct wsc__endpoint ep;
    pthread_t thread;
    bool started;
    struct wsc__xmsg *stop_msg;   /* made with the worker: stopping cannot
                                     fail for memory; NULL once posted */
};

struct ws_server {
    struct wsc__endpoint ep;      /* worker 0: the caller's loop; it accepts */
    struct wsc__worker *workers;  /* workers 1 .. nworkers - 1 */
    unsigned nworkers;
    unsigned next_worker;         /* round-robin hand-out of accepted sockets */
    bool own_base;
    bool running;
    struct event *stop_ev;
    struct event *resume_ev;      /* re-enables accepting after EMFILE */
    struct event *sig_int, *sig_term;
    struct evconnlistener **listeners;
    size_t num_listeners;
    ws_http_cb on_http;   void *http_arg;
    /* upgrade.c */
    ws_upgrade_cb on_upgrade;       void *upgrade_arg;
    ws_upgrade_cb on_upgrade_abort; void *upgrade_abort_arg;
    struct wsc__redis *redis;     /* redis.c: the bridge, or NULL */
    /* proxy_protocol.c: local addresses of WS_LISTEN_PROXY_PROTOCOL listeners */
    struct sockaddr_storage *proxy_listeners;
    size_t num_proxy_listeners;
    /* TLS: listener i is plain when listener_tls[i] is NULL */
    struct wsc__tls_listener **listener_tls;
    struct wsc__tls_server *tls;  /* NULL until the first TLS listener */
};

/* Broadcast (topic NULL) or publish to every worker: directly on the
 * caller's own loop, queued for the others. Skipped count or WS_E*. */
int wsc__server_fan_out(struct ws_server *srv, const char *topic, int op, const void *data,
                        size_t len);
/* The loop of worker index (0: the server's own), or NULL. */
struct wsc__loop *wsc__server_loop(struct ws_server *srv, unsigned index);
/* On a worker's loop: the stop reached it. */
void wsc__worker_stop(struct wsc__endpoint *ep);

/* broadcast.c: frame once, queue on every open connection, or (by_topic)
 * on the subscribers of topic (NULL: nobody). Loop thread. Returns the
 * number skipped by backpressure, or a negative WS_E* code. */
int wsc__deliver_now(struct wsc__endpoint *ep, const struct wsc__topic *topic,
                     bool by_topic, int op, const void *data, size_t len);

/* topic.c */
struct wsc__topic;
struct wsc__sub;
struct wsc__topic *wsc__topic_find(struct wsc__endpoint *ep, const char *name);
/* Walk a topic's subscribers: first, then next until NULL. */
struct ws_conn *wsc__topic_first(const struct wsc__topic *t, struct wsc__sub **cursor);
struct ws_conn *wsc__topic_next(struct wsc__sub **cursor);
/* A connection is released: end its subscriptions. */
void wsc__topic_drop_conn(struct ws_conn *c);
void wsc__topics_free(struct wsc__endpoint *ep);
void wsc__endpoint_link(struct wsc__endpoint *ep, struct ws_conn *c);
void wsc__endpoint_unlink(struct wsc__endpoint *ep, struct ws_conn *c);
/* A server socket starts its HTTP phase: on the pending list (FIFO). If
 * the list is at its cap the oldest is shed first. */
void wsc__endpoint_add_pending(struct wsc__endpoint *ep, struct ws_conn *c);
/* Server stop: drop handshaking sockets, send 1001 to open connections. */
void wsc__endpoint_shutdown_all(struct wsc__endpoint *ep);
/* Upgraded: from the pending list to the list of connections. */
void wsc__endpoint_promote(struct wsc__endpoint *ep, struct ws_conn *c);
uint64_t wsc__next_conn_id(unsigned index);

/* topic.c, for the Redis bridge: walk a hash chain, read a topic's name. */
struct wsc__topic *wsc__topic_chain_next(const struct wsc__topic *t);
const char *wsc__topic_name(const struct wsc__topic *t, size_t *len);

/* ---- redis.c: topics across processes (stubs without hiredis) ------------ */

struct wsc__redis;
/* A loop got its first subscriber to topic (added) or lost its last. */
void wsc__redis_topic_loop(struct wsc__redis *r, const char *topic, size_t len, bool added);
/* ws_server_publish() with a bridge: local delivery, then Redis; the
 * skipped count or WS_EREDIS / WS_ENOMEM. Any thread. */
int wsc__redis_publish(struct wsc__redis *r, const char *topic, int op, const void *data,
                       size_t len);
/* Before the server's base is freed. NULL is ignored. */
void wsc__redis_free(struct wsc__redis *r);

/* ---- proxy_protocol.c / forwarded.c: the client behind a proxy ----------- */

enum wsc__proxy_phase {
    WSC__PROXY_UNCHECKED = 0,     /* the listener not looked at yet */
    WSC__PROXY_NONE,              /* no header expected (or LOCAL/UNKNOWN) */
    WSC__PROXY_EXPECTED,          /* a PROXY header must come first */
    WSC__PROXY_DONE               /* remote is the header's source */
};
/* What a PROXY header said. */
struct wsc__proxy_info {
    bool local;                   /* LOCAL / UNKNOWN / UNSPEC: keep the peer */
    int family;
    uint8_t addr[16];
    uint16_t port;
};
#define WSC__PROXY_V1_MAX 107     /* the longest v1 line, CRLF included */
#define WSC__PROXY_V2_MAX 1024    /* 16-byte head + addresses + TLVs we accept */
enum { WSC__PROXY_INCOMPLETE = 0, WSC__PROXY_BAD = -1 };
/* Parse a v1 or v2 header at buf: its length, INCOMPLETE or BAD. */
int wsc__proxy_parse(const uint8_t *buf, size_t len, struct wsc__proxy_info *out);
/* "a.b.c.d:port" or "[v6]:port". */
void wsc__proxy_format(const struct wsc__proxy_info *info, char *out, size_t outlen);
/* Remember a listener whose connections begin with a PROXY header. */
int wsc__proxy_listener_add(struct ws_server *srv, evutil_socket_t fd);
/* Server HTTP phase, before the request: consume the PROXY header if this
 * connection's listener expects one (closing it when it is refused).
 * Returns the bytes used; 0 with proxy_phase EXPECTED: wait for more. */
size_t wsc__proxy_input(struct ws_conn *c, const uint8_t *buf, size_t len);
/* ---- proxy_protocol.c: the PROXY header in front of TLS (scale2) ---- */
/* io.c, a server TLS connection before its handshake: take a PROXY header
 * off the socket if its listener expects one. true: run the handshake;
 * false: wait for more input, or c was closed (header refused). */
bool wsc__proxy_tls_input(struct ws_conn *c);
/* ---- end PROXY header in front of TLS ---- */

bool wsc__addr_trusted(const struct ws_config *cfg, int family, const uint8_t *addr);
/* Is the TCP peer of c one of the trusted proxies? */
bool wsc__peer_trusted(const struct ws_conn *c);
enum { WSC__XFF_OK = 0, WSC__XFF_NONE = 1, WSC__XFF_BAD = -1 };
/* The client in X-Forwarded-For header values (in arrival order): the
 * right-most untrusted entry, or the left-most if all are trusted. */
int wsc__xff_client(const struct ws_config *cfg, const char *const *values,
                    const size_t *lens, size_t count, int *family, uint8_t addr[16]);
/* Per request: set c->remote from X-Forwarded-For when the peer is trusted. */
void wsc__forwarded_apply(struct ws_conn *c, const struct wsc__http_request *req);

/* ---- request.c: the public request/response objects ---------------------- */

struct ws_request {
    const char *method, *path, *query; /* NUL-terminated copies in strbuf */
    char *strbuf;
    const char **hnames, **hvalues;    /* NUL-terminated, num_headers each */
    const void *body;
    size_t body_len;
    const char *remote;
    size_t num_headers, query_len;     /* the view needs nothing of h after init */
    char **protocols;                  /* upgrade.c: offered subprotocols */
    size_t num_protocols;
    bool tls;
};

struct ws_response {
    struct evbuffer *headers;
    struct evbuffer *out;         /* where the response goes */
    bool sent;
    bool head_only;               /* HEAD request: no body bytes */
    bool keep_alive;
};

/* Build the request view (allocates strbuf); free with _release. */
int wsc__request_init(struct ws_request *r, const struct wsc__http_request *h,
                      const void *body, size_t body_len, const char *remote);
void wsc__request_release(struct ws_request *r);
/* A complete small response with Connection: close (errors, 426, 503...). */
void wsc__response_simple(struct evbuffer *out, int status, const char *extra_headers);

/* ---- upgrade.c: the upgrade hook, Origin allow-list --------------------- */

/* A valid upgrade request (accept key computed, compression negotiated):
 * check the Origin, run the hook, and accept, refuse or hold it. */
void wsc__upgrade_start(struct ws_conn *c, const struct wsc__http_request *req,
                        const char *accept);
/* Input while a decision is pending: returns 0 (keep the bytes for after
 * the accept) or len when too much arrived and the connection was closed. */
size_t wsc__upgrade_hold_input(struct ws_conn *c, size_t len);
/* The connection is released with a decision pending: abort the handle. */
void wsc__upgrade_conn_gone(struct ws_conn *c);
/* conn_http.c: answer with a complete error response (status, optional
 * extra header lines) and close once it is written. */
void wsc__http_refuse(struct ws_conn *c, int status, const char *extra_headers);
/* conn_http.c: answer 101 (tail: extra header lines, then the blank line),
 * open the connection. false when it was refused instead (503/500). */
bool wsc__conn_http_upgrade(struct ws_conn *c, const char *accept, const char *tail,
                            size_t tail_len);
/* ---- tls.c, tls_server.c, tls_client.c: wss ---------------------------- */

struct ssl_st;
struct ssl_ctx_st;
struct wsc__tls_gen;              /* one generation of a listener's SSL_CTXs */
struct wsc__tls_listener;         /* a TLS listener's options and contexts */
struct wsc__tls_server;           /* a server's TLS listeners (reload) */
struct wsc__tls_client;           /* a client's TLS options and context */

/* Largest plaintext handed to one SSL_write: every write, and every retry
 * of one that blocked, stays within it (OpenSSL wants a retry to cover
 * what it already encrypted). */
#define WSC__TLS_CHUNK (64u * 1024u)

/* Plaintext into buf (SSL_read until it would block or buf is full). >0
 * bytes, 0 at EOF, -1 with errno EAGAIN (c->tls_wait_write says whether it
 * waits for writability) or another errno on failure. */
ssize_t wsc__tls_read(struct ws_conn *c, uint8_t *buf, size_t len);
/* Encrypt and write up to WSC__TLS_CHUNK bytes of buf: bytes taken, or -1
 * with errno EAGAIN (nothing taken) or another errno on failure. */
ssize_t wsc__tls_write(struct ws_conn *c, const void *buf, size_t len);
/* A new SSL_CTX with what every libwsc context wants (partial writes,
 * moving buffers, released idle buffers, read-ahead, no renegotiation,
 * TLS 1.2 at least; the server's cipher preference), or NULL. */
struct ssl_ctx_st *wsc__tls_ctx_new(bool server);
/* c now speaks TLS through ssl (its handshake next, as server or client). */
void wsc__tls_adopt(struct ws_conn *c, struct ssl_st *ssl, bool server);
/* Replace *slot with a copy of v (NULL: none); 0 or WS_ENOMEM. */
int wsc__tls_set_str(char **slot, const char *v);
/* Drive the handshake: 1 done, 0 in progress, -1 failed. */
int wsc__tls_handshake(struct ws_conn *c);
/* Plaintext OpenSSL holds already decrypted (no socket event will come). */
bool wsc__tls_has_pending(const struct ws_conn *c);
/* close_notify, before the FIN (best effort). */
void wsc__tls_close_notify(struct ws_conn *c);
/* Free the connection's SSL (and its generation's reference). */
void wsc__tls_release(struct ws_conn *c);

/* Server: give the accepted connection an SSL from listener l's current
 * contexts; 0 or WS_ENOMEM. */
int wsc__tls_server_attach(struct ws_conn *c, struct wsc__tls_listener *l);
void wsc__tls_gen_unref(struct wsc__tls_gen *g);
/* slim: the generation a server SSL came from (its ex_data), else NULL. */
struct ssl_st;
struct wsc__tls_gen *wsc__tls_gen_of(struct ssl_st *ssl);
void wsc__tls_server_free(struct wsc__tls_server *ts);
/* server.c: listen on addr for l (NULL: plain). Port or WS_E*. */
int wsc__server_listen(struct ws_server *srv, const char *addr, unsigned opts,
                       struct wsc__tls_listener *l);
/* server.c: a worker takes an accepted socket (TLS through l if not NULL);
 * when it cannot become a connection (no memory, or it cannot be watched),
 * a plain one is answered 503 and closed, a TLS one closed. */
void wsc__server_adopt(struct wsc__endpoint *ep, evutil_socket_t fd,
                       const struct sockaddr *sa, struct wsc__tls_listener *l);
/* server.c: the 503 of a full or stopping server, and of a plain socket
 * turned away at accept (unit test: what wsc__response_simple formats). */
extern const char wsc__http_503_retry[];

/* Client: the client's TLS state (created on first use; NULL when out of
 * memory). */
struct wsc__tls_client **wsc__client_tls_slot(struct ws_client *cl);
/* Build the client's context for a wss:// connect: 0 or WS_ETLS/WS_ENOMEM. */
int wsc__tls_client_prepare(struct wsc__tls_client *tc);
/* Give a client attempt an SSL for host (SNI, name check): 0 or WS_E*. */
int wsc__tls_client_attach(struct ws_conn *c, struct wsc__tls_client *tc, const char *host);
/* Record why c's handshake failed (the verify reason, if any). */
void wsc__tls_client_failed(struct ws_conn *c);
void wsc__tls_client_free(struct wsc__tls_client *tc);

/* ---- end wss ---- */

#endif /* WSC_INTERNAL_H */
