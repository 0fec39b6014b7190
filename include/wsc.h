/*
 * wsc.h - libwsc, an embeddable WebSocket (RFC 6455) library for C: servers
 * and clients on libevent, with permessage-deflate (RFC 7692).
 *
 * One header, opaque objects, one setter per event. Every function that can
 * fail returns 0 (or a non-negative value) on success and a negative WS_E*
 * code on failure; ws_strerror() names the code.
 *
 * Threads: a server or client runs on one event loop (libevent event_base).
 * Callbacks run on that loop's thread, and the loop's thread is whichever
 * thread runs it (not the one that set things up). ws_conn_send(),
 * ws_conn_ping(), ws_conn_close(), ws_conn_pause_reading(),
 * ws_conn_resume_reading(), ws_conn_ref(), ws_conn_unref(), ws_conn_id(),
 * ws_conn_remote_addr(), ws_conn_buffered_amount(), ws_server_send_to(),
 * ws_server_close_to(), ws_server_dropped_sends(), ws_server_broadcast(),
 * ws_server_publish(), ws_server_connection_count(), ws_server_stop() and
 * ws_client_stop() may be called from any thread; every other function
 * must be called from the loop's thread (or before the loop runs). See
 * man 3 wsc.
 */
#ifndef WSC_H
#define WSC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) && !defined(WSC_STATIC)
#define WS_EXTERN __attribute__((visibility("default")))
#else
#define WS_EXTERN
#endif

/* ---- version ------------------------------------------------------------ */

#define WS_VERSION_MAJOR 0
#define WS_VERSION_MINOR 1
#define WS_VERSION_PATCH 0
#define WS_VERSION_STR "0.1.0"
/* 0xMMmmpp, comparable with WS_AT_LEAST_VERSION(). */
#define WS_VERSION_NUM \
    ((WS_VERSION_MAJOR << 16) | (WS_VERSION_MINOR << 8) | WS_VERSION_PATCH)
#define WS_AT_LEAST_VERSION(x, y, z) \
    (WS_VERSION_NUM >= (((x) << 16) | ((y) << 8) | (z)))

/* Version of the library actually linked, as "MAJOR.MINOR.PATCH". */
WS_EXTERN const char *ws_version(void);

/* ---- errors ------------------------------------------------------------- */

/* Never renumbered; a retired code keeps its number. */
enum ws_error {
    WS_OK = 0,
    WS_EINVAL = -1,      /* an argument is invalid (NULL, bad opcode, ...) */
    WS_ENOMEM = -2,      /* out of memory */
    WS_ECLOSED = -3,     /* the connection is closing or closed */
    WS_EAGAIN = -4,      /* backpressure: try again after a drain */
    WS_ETOOBIG = -5,     /* payload over a limit (ping > 125 bytes, ...) */
    WS_EADDR = -6,       /* the address could not be parsed or resolved */
    WS_ELISTEN = -7,     /* bind() or listen() failed (see errno) */
    WS_ESTATE = -8,      /* not allowed in the current state */
    WS_EEVENT = -9,      /* libevent failed to create or add an event */
    WS_EUTF8 = -10,      /* text payload or reason is not valid UTF-8 */
    WS_ENOTFOUND = -11,  /* no such header or parameter */
    WS_ECODE = -12,      /* close code not allowed on the wire */
    WS_ECONNECT = -13,   /* TCP connection refused, reset or unreachable */
    WS_EHANDSHAKE = -14, /* the server's upgrade response was not acceptable */
    WS_ETIMEDOUT = -15,  /* connect or handshake took too long */
    WS_EDNS = -16,       /* host name could not be resolved */
    WS_EUNSUPPORTED = -17, /* not supported by this build */
    WS_EREDIS = -18,     /* the Redis bridge is down: nothing was published */
    WS_ETLS = -19        /* TLS: handshake or verification failed, bad
                            certificate/key file (see the TLS section) */
};

/* A static, never-NULL description of an error code (any int is accepted). */
WS_EXTERN const char *ws_strerror(int code);

/* ---- protocol constants ------------------------------------------------- */

enum ws_opcode {
    WS_OP_CONTINUATION = 0x0,
    WS_OP_TEXT = 0x1,
    WS_OP_BINARY = 0x2,
    WS_OP_CLOSE = 0x8,
    WS_OP_PING = 0x9,
    WS_OP_PONG = 0xA
};

/* Close status codes of RFC 6455 section 7.4.1 (and IANA's 1012-1014). */
enum ws_close_code {
    WS_CLOSE_NORMAL = 1000,
    WS_CLOSE_GOING_AWAY = 1001,
    WS_CLOSE_PROTOCOL_ERROR = 1002,
    WS_CLOSE_UNSUPPORTED_DATA = 1003,
    WS_CLOSE_NO_STATUS = 1005,      /* never sent: the peer gave no code */
    WS_CLOSE_ABNORMAL = 1006,       /* never sent: no close frame at all */
    WS_CLOSE_INVALID_PAYLOAD = 1007,
    WS_CLOSE_POLICY_VIOLATION = 1008,
    WS_CLOSE_MESSAGE_TOO_BIG = 1009,
    WS_CLOSE_MANDATORY_EXTENSION = 1010,
    WS_CLOSE_INTERNAL_ERROR = 1011,
    WS_CLOSE_SERVICE_RESTART = 1012,
    WS_CLOSE_TRY_AGAIN_LATER = 1013,
    WS_CLOSE_BAD_GATEWAY = 1014
};

/* Why a connection ended; see struct ws_close_info. */
enum ws_close_cause {
    WS_CAUSE_CLEAN = 0,      /* close frames exchanged (either side began) */
    WS_CAUSE_TIMEOUT = 1,    /* peer stopped answering: pong or close timeout */
    WS_CAUSE_PROTOCOL = 2,   /* peer broke the protocol or a limit; we failed it */
    WS_CAUSE_DISCONNECT = 3, /* TCP ended without a close frame */
    WS_CAUSE_ERROR = 4,      /* local error (out of memory, socket error) */
    WS_CAUSE_SHUTDOWN = 5,   /* server stop: peer did not answer 1001 in time */
    WS_CAUSE_SLOW = 6        /* slow consumer over max_buffered, closed by policy */
};

/* What the close callback is told. Borrowed for the callback's duration. */
struct ws_close_info {
    int code;                /* peer's code if it sent one, else the code we
                                sent; 1005 no code, 1006 no close frame */
    const char *reason;      /* UTF-8, NUL-terminated, "" when none */
    size_t reason_len;
    enum ws_close_cause cause;
    int remote;              /* 1 if the peer sent the first close frame */
};

/* ---- configuration ------------------------------------------------------ */

/*
 * Options, copied by ws_server_new(): free or reuse the config afterwards.
 * Each setter returns 0 or WS_EINVAL. A value of 0 for a timeout or interval
 * disables it unless stated otherwise. Defaults:
 *   max_message_size   1 MiB   (larger message -> close 1009)
 *   max_head_size      8 KiB   (HTTP request line + headers -> 431)
 *   max_headers        100     (-> 431)
 *   handshake_timeout  10000 ms (socket closed if no complete request head)
 *   ping_interval      30000 ms (idle connections get a ping)
 *   pong_timeout       10000 ms (no frame within it after a ping -> closed,
 *                                cause WS_CAUSE_TIMEOUT)
 *   close_timeout      5000 ms  (wait for the peer's close frame; also bounds
 *                                the drain time of ws_server_stop())
 *   max_connections    10000   (open WebSocket connections; more -> 503;
 *                               0 means no limit)
 *   handle_signals     1       (ws_server_run() stops on SIGINT/SIGTERM)
 *   threads            1       (server worker loops, one thread each)
 *   max_buffered       4 MiB   (bytes queued on one connection, frame
 *                               headers included: a send beyond it fails
 *                               with WS_EAGAIN, or closes the connection
 *                               with close_slow_consumers)
 *   max_buffered_total 1 GiB   (the same over all connections of a server,
 *                               shared out evenly between worker loops;
 *                               0: no server-wide budget)
 *   max_pending        1024    (sockets still in the HTTP handshake; a new
 *                               one beyond it sheds the oldest; 0: no cap)
 *   max_body_size      64 KiB  (non-upgrade request bodies for the HTTP
 *                               handler -> 413; without a handler requests
 *                               are answered at their head, bodies unread)
 *   keepalive_timeout  5000 ms (HTTP keep-alive: idle time allowed between
 *                               requests, from when a response has left
 *                               the library's buffers)
 *   close_slow_consumers 0     (1: over max_buffered -> close 1008, cause
 *                               WS_CAUSE_SLOW, instead of WS_EAGAIN)
 *   deflate            1       (accept permessage-deflate, RFC 7692)
 *   deflate_no_context_takeover 1 (forced both ways, see below)
 *   deflate_window_bits 15     (9..15: the window our compressor uses)
 *   deflate_mem_level  8       (1..9: zlib memLevel of our compressor)
 *   deflate_threshold  128     (smaller messages are sent uncompressed)
 *
 * Compression memory: with no context takeover (the default) connections
 * share one compressor and one decompressor per server, so an idle
 * connection holds no zlib memory; a message that arrives in several reads
 * holds a decompressor (39 KiB) until it ends. With context takeover each
 * connection keeps its own streams for its whole life: about
 * 2^(window_bits+2) + 2^(mem_level+9) bytes to compress (262 KiB measured
 * at 15/8)
 * plus 39 KiB to decompress (tests/unit/test_deflate.c measures both).
 */
struct ws_config;
struct event_base;

WS_EXTERN struct ws_config *ws_config_new(void);
WS_EXTERN void ws_config_free(struct ws_config *cfg);
WS_EXTERN int ws_config_set_max_message_size(struct ws_config *cfg, size_t bytes);
WS_EXTERN int ws_config_set_max_head_size(struct ws_config *cfg, size_t bytes);
WS_EXTERN int ws_config_set_max_headers(struct ws_config *cfg, unsigned count);
WS_EXTERN int ws_config_set_handshake_timeout(struct ws_config *cfg, unsigned ms);
/* Client: name resolution + TCP connect must finish within ms (default
 * 10000); the upgrade that follows has handshake_timeout. */
WS_EXTERN int ws_config_set_connect_timeout(struct ws_config *cfg, unsigned ms);
WS_EXTERN int ws_config_set_ping_interval(struct ws_config *cfg, unsigned ms);
WS_EXTERN int ws_config_set_pong_timeout(struct ws_config *cfg, unsigned ms);
WS_EXTERN int ws_config_set_close_timeout(struct ws_config *cfg, unsigned ms);
WS_EXTERN int ws_config_set_max_connections(struct ws_config *cfg, unsigned count);
WS_EXTERN int ws_config_set_handle_signals(struct ws_config *cfg, int on);
/*
 * Server worker loops (1..256; 0 means 1). With n > 1, ws_server_run()
 * starts n - 1 threads beside the caller's; accepted sockets are dealt to
 * the loops in turn. A connection's callbacks always run on its own loop,
 * so callbacks of different connections run concurrently: guard shared
 * application state. ws_server_broadcast/publish/stop reach every loop;
 * ws_server_event_base() is the caller's loop. Not combinable with
 * ws_config_set_event_base() (ws_server_new() returns NULL).
 */
WS_EXTERN int ws_config_set_threads(struct ws_config *cfg, unsigned n);
/* Backpressure cap per connection; the drain callback fires when a
 * connection that hit it is back at or below half of it. */
WS_EXTERN int ws_config_set_max_buffered(struct ws_config *cfg, size_t bytes);
WS_EXTERN int ws_config_set_close_slow_consumers(struct ws_config *cfg, int on);
/* Server-wide output budget (sum of every connection's queued bytes, those
 * corked in the current read pass included; 0 or >= 1024). Over it a send
 * gets WS_EAGAIN (drain follows when the loop's output is down to half its
 * share), or with close_slow_consumers the
 * connection with the largest backlog on that loop is closed first. */
WS_EXTERN int ws_config_set_max_buffered_total(struct ws_config *cfg, size_t bytes);
/* Cap on sockets still in their handshake (slowloris defence). */
WS_EXTERN int ws_config_set_max_pending(struct ws_config *cfg, unsigned count);
/* Largest request body an HTTP handler is given (-> 413 beyond). */
WS_EXTERN int ws_config_set_max_body_size(struct ws_config *cfg, size_t bytes);
/* Idle time allowed between HTTP keep-alive requests (0: no limit). */
WS_EXTERN int ws_config_set_keepalive_timeout(struct ws_config *cfg, unsigned ms);
/* permessage-deflate: off declines every offer. */
WS_EXTERN int ws_config_set_deflate(struct ws_config *cfg, int on);
/* 1: answer with server_ and client_no_context_takeover whatever the client
 * offered (low memory). 0: keep context across messages where the client
 * allows it (better ratio, per-connection memory). */
WS_EXTERN int ws_config_set_deflate_no_context_takeover(struct ws_config *cfg, int on);
WS_EXTERN int ws_config_set_deflate_window_bits(struct ws_config *cfg, unsigned bits);
WS_EXTERN int ws_config_set_deflate_mem_level(struct ws_config *cfg, unsigned level);
WS_EXTERN int ws_config_set_deflate_threshold(struct ws_config *cfg, size_t bytes);
/*
 * Run on the application's own event_base instead of a private one. The
 * application then runs the loop itself (ws_server_run() returns WS_ESTATE).
 * libevent threading must be enabled (evthread_use_pthreads()) before that
 * base was created, or cross-thread sends cannot wake it.
 */
WS_EXTERN int ws_config_set_event_base(struct ws_config *cfg, struct event_base *base);

/*
 * Reverse proxies allowed to name the client: a comma- or space-separated
 * CIDR list, e.g. "127.0.0.1/32, 10.0.0.0/8, ::1/128" (an address alone is
 * one host); NULL or "" trusts nobody (the default). At most 16 entries
 * (else WS_EINVAL, as for a malformed one; the old list is kept then).
 * X-Forwarded-For is believed only when the TCP peer is in the list, and
 * only up to the right-most address that is not (the client: whatever is
 * left of it the client wrote itself); ws_conn_remote_addr() and
 * ws_request_remote_addr() then show that address with port 0 (the header
 * carries none). A listener with WS_LISTEN_PROXY_PROTOCOL accepts the PROXY
 * header from these peers only.
 */
WS_EXTERN int ws_config_set_trusted_proxies(struct ws_config *cfg, const char *list);

/* ---- server ------------------------------------------------------------- */

struct ws_server;
struct ws_client;
struct ws_conn;
struct ws_request;
struct ws_response;

/* cfg may be NULL for the defaults. Returns NULL when out of memory. */
WS_EXTERN struct ws_server *ws_server_new(const struct ws_config *cfg);

/*
 * Listen on "host:port", "[v6addr]:port" or ":port" (all IPv4 addresses).
 * Port 0 picks a free port. May be called several times for several
 * listeners. Returns the bound port (> 0) or WS_EADDR / WS_ELISTEN / WS_ESTATE.
 */
WS_EXTERN int ws_server_listen(struct ws_server *srv, const char *addr);

/* Listener options for ws_server_listen_opts() (bits, combinable). */
enum ws_listen_flag {
    /*
     * Every connection begins with HAProxy's PROXY protocol header, v1 or
     * v2 (send-proxy / send-proxy-v2), naming the client. Only a peer in
     * the trusted proxies (ws_config_set_trusted_proxies) may send it; a
     * connection from any other peer, or with a missing, malformed or
     * truncated header, is closed without an answer. LOCAL and UNKNOWN
     * headers (the proxy's health checks) keep the peer's address.
     */
    WS_LISTEN_PROXY_PROTOCOL = 1 << 0,
    /*
     * SO_REUSEPORT: several processes may listen on the same address and
     * port, and the kernel spreads new connections over them (by a hash
     * of the addresses). Every one of them must set it.
     */
    WS_LISTEN_REUSEPORT = 1 << 1
};
/* ws_server_listen() with options: flags is 0 or ws_listen_flag bits
 * (WS_EINVAL for unknown bits). Returns the bound port or a WS_E* code. */
WS_EXTERN int ws_server_listen_opts(struct ws_server *srv, const char *addr, unsigned flags);

/*
 * Run the server's own loop until ws_server_stop() has finished (or, with
 * handle_signals, SIGINT/SIGTERM). Returns 0, or WS_ESTATE when the server
 * runs on an application's event_base or is already running.
 */
WS_EXTERN int ws_server_run(struct ws_server *srv);

/*
 * Graceful stop, from any thread: listeners close, every open connection is
 * sent close 1001 and given close_timeout to answer, then dropped; when none
 * is left the loop returns from ws_server_run(). Returns 0, or WS_ESTATE when
 * already stopping.
 */
WS_EXTERN int ws_server_stop(struct ws_server *srv);

/*
 * Frees the server. Before calling it: ws_server_run() has returned (or,
 * on an application's event_base, that loop is no longer running this
 * server's events), and the call is made on the thread that ran the loop
 * (or any thread once it is stopped). Connections still open are dropped
 * without callbacks. Connections the application still references stay
 * safe to use: sends, closes and pauses on them return WS_ECLOSED, and
 * the accessors return neutral values (NULL, "", 0), from any thread,
 * even while ws_server_free runs. Calling ws_server_send_to() and the
 * other ws_server_* functions on a freed server is undefined. NULL is
 * ignored.
 */
WS_EXTERN void ws_server_free(struct ws_server *srv);

/* The loop the server runs on: add your own timers and events to it. */
WS_EXTERN struct event_base *ws_server_event_base(struct ws_server *srv);

/*
 * Send one message (WS_OP_TEXT or WS_OP_BINARY) to every open connection.
 * The frame is encoded once (and compressed once for every connection that
 * shares the server's compressor) and the same bytes are queued on each
 * connection. Any thread; from another thread the message is copied and
 * delivered by the loop in order with that thread's other sends. A
 * connection over max_buffered is skipped (and gets a drain callback later)
 * or closed, by the same policy as ws_conn_send(). On the loop thread
 * returns the number of connections skipped (0: all got it); from other
 * threads 0. Errors: WS_EINVAL, WS_EUTF8, WS_ENOMEM (the connections, or
 * worker loops, reached before memory ran out keep the message).
 */
WS_EXTERN int ws_server_broadcast(struct ws_server *srv, enum ws_opcode op,
                                  const void *data, size_t len);

/*
 * Topics (publish/subscribe inside this server). ws_conn_subscribe() adds
 * conn to a topic (a non-empty name of at most 1024 bytes; subscribing twice
 * is harmless); ws_conn_unsubscribe() removes it (WS_ENOTFOUND if it was
 * not subscribed). Subscriptions end with their connection. Loop thread;
 * server connections only (WS_EINVAL for a client's).
 * ws_server_publish() sends to the topic's subscribers on the same
 * encode-once path and backpressure policy as ws_server_broadcast(), from
 * any thread; on the loop thread it returns the number of subscribers
 * skipped (0 when the topic has none).
 */
WS_EXTERN int ws_conn_subscribe(struct ws_conn *conn, const char *topic);
WS_EXTERN int ws_conn_unsubscribe(struct ws_conn *conn, const char *topic);
WS_EXTERN int ws_server_publish(struct ws_server *srv, const char *topic,
                                enum ws_opcode op, const void *data, size_t len);

/*
 * Send to a connection by its id (ws_conn_id), from any thread, with no
 * pointer to keep alive and no lock of the application's: the id names
 * the worker loop, which resolves it. Same results as ws_conn_send()
 * (0 when queued, WS_EAGAIN, WS_EUTF8, ...), or WS_ENOTFOUND when no open
 * connection has that id. A message queued from another thread to a
 * connection that ends before the loop delivers it is dropped and counted
 * in ws_server_dropped_sends(). ws_server_close_to() is ws_conn_close() by
 * id. Not after ws_server_free().
 */
WS_EXTERN int ws_server_send_to(struct ws_server *srv, uint64_t conn_id, enum ws_opcode op,
                                const void *data, size_t len);
WS_EXTERN int ws_server_close_to(struct ws_server *srv, uint64_t conn_id, int code,
                                 const char *reason);
/* Messages queued from other threads (ws_conn_send, ws_server_send_to)
 * that were dropped because their connection ended first. Any thread. */
WS_EXTERN uint64_t ws_server_dropped_sends(const struct ws_server *srv);

/* Number of open WebSocket connections, summed over the worker loops
 * (any thread; with several loops a moment's snapshot). */
WS_EXTERN size_t ws_server_connection_count(const struct ws_server *srv);

/* ---- topics across processes: the Redis bridge -------------------------- */

/*
 * Bridge the server's topics over Redis pub/sub (only in builds with
 * hiredis, else WS_EUNSUPPORTED), so that ws_server_publish() on any
 * process reaches the topic's subscribers on every process attached to the
 * same Redis with the same prefix (NULL: "wsc:"; the Redis channel is
 * prefix + topic), each exactly once while Redis is up. addr is
 * "host:port". Call before ws_server_run(), on the loop thread; the bridge
 * connects in the background on the server's first loop (no thread of its
 * own), keeps one Redis subscription per topic that has local subscribers,
 * and reconnects with backoff (100 ms doubling to 5 s) after a failure,
 * subscribing again to the live topics. While it is down ws_server_publish()
 * returns WS_EREDIS and delivers to nobody, local subscribers included.
 * Returns 0, WS_EADDR, WS_ESTATE (attached already, or running), WS_EINVAL,
 * WS_ENOMEM, WS_EEVENT or WS_EUNSUPPORTED.
 */
WS_EXTERN int ws_server_redis_attach(struct ws_server *srv, const char *addr,
                                     const char *prefix);

/* The bridge went up (both Redis links connected, publishes accepted) or
 * down. Runs on the server's first loop. */
typedef void (*ws_redis_cb)(struct ws_server *srv, int up, void *arg);
/* Set after ws_server_redis_attach(); ignored without a bridge. */
WS_EXTERN void ws_server_handle_redis(struct ws_server *srv, ws_redis_cb cb, void *arg);

/* Counters of the bridge since it was attached (see ws_server_redis_stats). */
struct ws_redis_stats {
    int up;                  /* 1 while publishes are accepted */
    uint64_t node;           /* this process's random node id (never 0) */
    uint64_t published;      /* publishes handed to Redis */
    uint64_t publish_errors; /* refused (WS_EREDIS) or lost with the link */
    uint64_t received;       /* messages of other nodes delivered here */
    uint64_t own_ignored;    /* our own messages coming back from Redis */
    uint64_t lost;           /* holes in other nodes' per-topic sequences */
    uint64_t stale;          /* repeated or reordered messages, dropped */
    uint64_t reconnects;     /* reconnection attempts */
    size_t subscriptions;    /* topics Redis confirmed we are subscribed to */
};
/* Copy the counters; any thread. 0, WS_EINVAL, WS_ESTATE (no bridge) or
 * WS_EUNSUPPORTED. */
WS_EXTERN int ws_server_redis_stats(struct ws_server *srv, struct ws_redis_stats *stats);

/* ---- events: one setter per event, (callback, arg) ---------------------- */

/* A connection finished its upgrade. */
typedef void (*ws_open_cb)(struct ws_conn *conn, void *arg);
/* A whole message: op is WS_OP_TEXT (valid UTF-8) or WS_OP_BINARY. data is
 * borrowed until the callback returns and is not NUL-terminated. */
typedef void (*ws_data_cb)(struct ws_conn *conn, enum ws_opcode op,
                           const void *data, size_t len, void *arg);
/* A ping (already answered with a pong) or a pong; payload <= 125 bytes. */
typedef void (*ws_control_cb)(struct ws_conn *conn, const void *data,
                              size_t len, void *arg);
/* Exactly once per opened connection; conn stays valid until it returns
 * (longer only if referenced with ws_conn_ref()). */
typedef void (*ws_close_cb)(struct ws_conn *conn,
                            const struct ws_close_info *info, void *arg);
/* A connection that got WS_EAGAIN is back at or below half of max_buffered
 * (and, with max_buffered_total set, its loop's output at or below half of
 * its share). */
typedef void (*ws_drain_cb)(struct ws_conn *conn, void *arg);
/* A request that is not a WebSocket upgrade. Respond with ws_response_send();
 * without a response the client gets 404. Request strings are borrowed. */
typedef void (*ws_http_cb)(const struct ws_request *req,
                           struct ws_response *res, void *arg);

WS_EXTERN void ws_server_handle_open(struct ws_server *srv, ws_open_cb cb, void *arg);
WS_EXTERN void ws_server_handle_data(struct ws_server *srv, ws_data_cb cb, void *arg);
WS_EXTERN void ws_server_handle_ping(struct ws_server *srv, ws_control_cb cb, void *arg);
WS_EXTERN void ws_server_handle_pong(struct ws_server *srv, ws_control_cb cb, void *arg);
WS_EXTERN void ws_server_handle_close(struct ws_server *srv, ws_close_cb cb, void *arg);
WS_EXTERN void ws_server_handle_drain(struct ws_server *srv, ws_drain_cb cb, void *arg);
/* Without an HTTP handler, non-upgrade requests get 426 Upgrade Required. */
WS_EXTERN void ws_server_handle_http(struct ws_server *srv, ws_http_cb cb, void *arg);

/* ---- connections -------------------------------------------------------- */

/*
 * Queue a message (WS_OP_TEXT or WS_OP_BINARY). data is copied before the
 * call returns. Any thread. Returns 0 when queued (it will be sent unless
 * the connection ends first), WS_EAGAIN when it would take the connection
 * over max_buffered (nothing queued; the drain callback says when to try
 * again), WS_ETOOBIG when the message alone (with its frame header, 2 to
 * 14 bytes) exceeds max_buffered, WS_ECLOSED after
 * close began (or the connection was just closed as a slow consumer),
 * WS_EUTF8 for invalid text, WS_EINVAL, WS_ENOMEM.
 */
WS_EXTERN int ws_conn_send(struct ws_conn *conn, enum ws_opcode op,
                           const void *data, size_t len);
/* Send a ping; len <= 125 (else WS_ETOOBIG). Any thread. */
WS_EXTERN int ws_conn_ping(struct ws_conn *conn, const void *data, size_t len);
/*
 * Begin the close handshake with code (1000-1003, 1007-1014, 3000-4999, else
 * WS_ECODE) and an optional UTF-8 reason (NULL for none; at most 123 bytes,
 * else WS_ETOOBIG). The close callback follows. Any thread.
 */
WS_EXTERN int ws_conn_close(struct ws_conn *conn, int code, const char *reason);

/*
 * Input flow control (libuv's uv_read_stop): while paused, no more of the
 * peer's frames are handled and its socket is not read, so its TCP window
 * closes and a well-behaved peer waits. Frames already read wait too and
 * are handled first on resume. The usual use: pause when a relay's
 * ws_conn_send() returns WS_EAGAIN, resume in the drain callback, and
 * nothing is lost at any reader speed. While paused the heartbeat sends no
 * ping and times nothing out. A close ends the pause (the peer's close
 * frame and FIN are still read; no data callback follows). Any thread
 * (from another thread it takes effect on the loop shortly after).
 * 0, WS_ECLOSED, WS_EINVAL, WS_ENOMEM.
 */
WS_EXTERN int ws_conn_pause_reading(struct ws_conn *conn);
WS_EXTERN int ws_conn_resume_reading(struct ws_conn *conn);

/*
 * Bytes queued for conn but not yet written to its socket (uWebSockets'
 * getBufferedAmount). Exact on the loop thread; from other threads a recent
 * value (never lower than the truth at the time it was published).
 */
WS_EXTERN size_t ws_conn_buffered_amount(const struct ws_conn *conn);

/* Keep conn valid past its close callback; every ref needs one unref. Any
 * thread. Sending on a closed but referenced conn returns WS_ECLOSED, even
 * after its server or client was freed (see ws_server_free). */
WS_EXTERN void ws_conn_ref(struct ws_conn *conn);
WS_EXTERN void ws_conn_unref(struct ws_conn *conn);

/* Unique within the process for its lifetime, never 0. Any thread. */
WS_EXTERN uint64_t ws_conn_id(const struct ws_conn *conn);
/* Peer address as "1.2.3.4:port" or "[::1]:port", made on the first call
 * that finds memory for it ("unknown" until then). Any thread. */
WS_EXTERN const char *ws_conn_remote_addr(const struct ws_conn *conn);
/* Per-connection application pointer (loop thread). */
WS_EXTERN void ws_conn_set_user(struct ws_conn *conn, void *user);
WS_EXTERN void *ws_conn_get_user(const struct ws_conn *conn);
WS_EXTERN struct ws_server *ws_conn_server(const struct ws_conn *conn);

/* The client that owns conn, or NULL for a server's connection. */
WS_EXTERN struct ws_client *ws_conn_client(const struct ws_conn *conn);
/* The subprotocol the handshake agreed on, "" when none. */
WS_EXTERN const char *ws_conn_subprotocol(const struct ws_conn *conn);

/* ---- client -------------------------------------------------------------- */

/*
 * A client keeps at most one connection to one URL, reconnecting if asked.
 * Its connections are ordinary struct ws_conn: the same callbacks, and
 * ws_conn_send/ping/close from any thread. Frames are masked with keys from
 * OpenSSL's RAND_bytes. Options from cfg (NULL for defaults): message and
 * head limits, connect/handshake timeouts, heartbeat, close timeout,
 * permessage-deflate (offered unless disabled), event_base (many clients
 * may share one), handle_signals (for ws_client_run()).
 */
WS_EXTERN struct ws_client *ws_client_new(const struct ws_config *cfg);

/* Extra request header for every attempt; CR/LF not allowed (WS_EINVAL). */
WS_EXTERN int ws_client_add_header(struct ws_client *cl, const char *name,
                                   const char *value);
/* Offer subprotocols, e.g. "chat, superchat"; the server's choice must be
 * one of them (else WS_EHANDSHAKE). */
WS_EXTERN int ws_client_set_subprotocols(struct ws_client *cl, const char *protocols);
/*
 * Reconnect after a failed attempt or a closed connection: the n-th retry
 * waits min(max_delay_ms, min_delay_ms * 2^(n-1)), reduced by up to half at
 * random (jitter, so many clients do not return in step). max_attempts 0
 * retries forever. min_delay_ms 0 turns reconnecting off (the default).
 * The count restarts after every successful open.
 */
WS_EXTERN int ws_client_set_reconnect(struct ws_client *cl, unsigned min_delay_ms,
                                      unsigned max_delay_ms, unsigned max_attempts);

/* A retry is scheduled: attempt 1, 2, ...; error is why the last one ended
 * (a WS_E* code, or 0 after a normal close). */
typedef void (*ws_reconnect_cb)(struct ws_client *cl, unsigned attempt,
                                unsigned delay_ms, int error, void *arg);
/* No more attempts (reconnect off, max_attempts reached, or stopped):
 * error as above. The client is idle afterwards. */
typedef void (*ws_give_up_cb)(struct ws_client *cl, int error, void *arg);

WS_EXTERN void ws_client_handle_open(struct ws_client *cl, ws_open_cb cb, void *arg);
WS_EXTERN void ws_client_handle_data(struct ws_client *cl, ws_data_cb cb, void *arg);
WS_EXTERN void ws_client_handle_ping(struct ws_client *cl, ws_control_cb cb, void *arg);
WS_EXTERN void ws_client_handle_pong(struct ws_client *cl, ws_control_cb cb, void *arg);
WS_EXTERN void ws_client_handle_close(struct ws_client *cl, ws_close_cb cb, void *arg);
WS_EXTERN void ws_client_handle_drain(struct ws_client *cl, ws_drain_cb cb, void *arg);
WS_EXTERN void ws_client_handle_reconnect(struct ws_client *cl, ws_reconnect_cb cb, void *arg);
WS_EXTERN void ws_client_handle_give_up(struct ws_client *cl, ws_give_up_cb cb, void *arg);

/*
 * Start connecting to "ws://host[:port][/path][?query]" (host may be a
 * name, an IPv4 address or [IPv6]); resolution is non-blocking (evdns).
 * "wss://" connects over TLS (see the TLS section). Returns 0, WS_EADDR
 * (bad URL), WS_ETLS (the TLS options cannot be loaded) or WS_ESTATE
 * (already connecting or connected).
 */
WS_EXTERN int ws_client_connect(struct ws_client *cl, const char *url);
/* Run the client's own loop until it is stopped or gives up. Returns 0, or
 * WS_ESTATE on an application's event_base. */
WS_EXTERN int ws_client_run(struct ws_client *cl);
/* Any thread: close the connection with 1000 (or abandon the attempt) and
 * do not reconnect; the give-up callback follows. */
WS_EXTERN int ws_client_stop(struct ws_client *cl);
/* Loop thread, after the loop returned or the client gave up; never from
 * one of the client's own callbacks. The connection, if any, is dropped
 * without callbacks. */
WS_EXTERN void ws_client_free(struct ws_client *cl);
/* The open connection, or NULL (loop thread). */
WS_EXTERN struct ws_conn *ws_client_conn(struct ws_client *cl);
WS_EXTERN struct event_base *ws_client_event_base(struct ws_client *cl);

/* ---- TLS (wss) ------------------------------------------------------------ */

/*
 * TLS runs under the library's own socket I/O (OpenSSL), so everything above
 * it works unchanged over wss. Server side, a struct ws_tls holds a TLS
 * listener's options; ws_server_listen_tls() copies them, so the object may
 * be freed or reused afterwards. Files are read when the listener is made
 * and again by ws_server_reload_tls(). Setters return 0, WS_EINVAL or
 * WS_ENOMEM; file and option errors show at listen/reload time as WS_ETLS,
 * with the reason from ws_server_tls_error().
 */
struct ws_tls;

/* Protocol versions for ws_tls_set_min_version() (TLS 1.2 by default). */
enum ws_tls_version {
    WS_TLS_V1_2 = 0x0303,
    WS_TLS_V1_3 = 0x0304
};

WS_EXTERN struct ws_tls *ws_tls_new(void);
WS_EXTERN void ws_tls_free(struct ws_tls *tls);
/* PEM certificate chain (leaf first) and private key: the default
 * certificate. */
WS_EXTERN int ws_tls_set_cert_file(struct ws_tls *tls, const char *chain_file,
                                   const char *key_file);
/* Request a client certificate and require it to verify against the PEM CA
 * file (NULL: no client certificates, the default). */
WS_EXTERN int ws_tls_set_ca_file(struct ws_tls *tls, const char *ca_file);
WS_EXTERN int ws_tls_set_min_version(struct ws_tls *tls, enum ws_tls_version version);
/* OpenSSL cipher list for TLS 1.2 (e.g. "ECDHE+AESGCM"), and key exchange
 * groups (e.g. "X25519:P-256"); NULL: OpenSSL's defaults. */
WS_EXTERN int ws_tls_set_ciphers(struct ws_tls *tls, const char *ciphers);
WS_EXTERN int ws_tls_set_groups(struct ws_tls *tls, const char *groups);
/* SNI: a client asking for server_name (case-insensitive, exact) gets this
 * certificate instead of the default one. */
WS_EXTERN int ws_tls_add_sni(struct ws_tls *tls, const char *server_name,
                             const char *chain_file, const char *key_file);
/* 1: a handshake naming no configured server name (or none) is refused
 * (alert unrecognized_name); 0 (default): it gets the default certificate. */
WS_EXTERN int ws_tls_set_sni_strict(struct ws_tls *tls, int on);
/* Use the application's own SSL_CTX (an SSL_CTX *, taken by reference)
 * instead of the options above; reload leaves it alone. */
WS_EXTERN int ws_tls_set_ssl_ctx(struct ws_tls *tls, void *ssl_ctx);

/*
 * Like ws_server_listen(), for wss: the TLS handshake runs before the HTTP
 * request, within handshake_timeout. Plain and TLS listeners may coexist.
 * Returns the port, or WS_ETLS (reason: ws_server_tls_error()) and the
 * errors of ws_server_listen().
 */
WS_EXTERN int ws_server_listen_tls(struct ws_server *srv, const char *addr,
                                   const struct ws_tls *tls);
/* ---- TLS listeners with options (PROXY protocol, SO_REUSEPORT) ---- */
/*
 * ws_server_listen_tls() with ws_server_listen_opts()'s flags, same
 * semantics. With WS_LISTEN_PROXY_PROTOCOL the PROXY header (v1 or v2) comes
 * in plaintext before the TLS ClientHello, as HAProxy in TCP mode sends it
 * (send-proxy / send-proxy-v2 in front of a wss backend); it is read and
 * checked first, within handshake_timeout, then TLS starts on the bytes
 * behind it. WS_EINVAL for unknown bits.
 */
WS_EXTERN int ws_server_listen_tls_opts(struct ws_server *srv, const char *addr,
                                        const struct ws_tls *tls, unsigned flags);
/* ---- end TLS listeners with options ---- */
/*
 * Any thread: re-read every TLS listener's certificate, key and CA files.
 * New handshakes use the new ones; open connections keep theirs. On failure
 * nothing changes and WS_ETLS is returned (reason: ws_server_tls_error()).
 * 0 also when the server has no TLS listener.
 */
WS_EXTERN int ws_server_reload_tls(struct ws_server *srv);
/* Any thread: the reason of the last WS_ETLS from listen_tls/reload_tls,
 * copied NUL-terminated into buf; returns its length ("" when none). */
WS_EXTERN int ws_server_tls_error(struct ws_server *srv, char *buf, size_t len);

/* 1 if conn runs over TLS (server or client side), else 0. Any thread. */
WS_EXTERN int ws_conn_is_tls(const struct ws_conn *conn);
/* The verified client certificate's subject (RFC 2253, e.g. "CN=alice,O=x")
 * into buf: its length, WS_ENOTFOUND (no verified certificate) or
 * WS_ETOOBIG (buf too small). Loop thread, while the connection is open. */
WS_EXTERN int ws_conn_peer_subject(const struct ws_conn *conn, char *buf, size_t len);

/*
 * Client: wss:// URLs verify the server by default: chain against the
 * system's trust store (or the CA file given), host name (or IP address)
 * against the certificate, SNI sent. A failure ends the attempt with
 * WS_ETLS (reconnect treats it like any failed attempt); the reason is in
 * ws_client_tls_verify_error(). Options apply from the next connect.
 */
WS_EXTERN int ws_client_set_tls_ca_file(struct ws_client *cl, const char *ca_file);
/* Present this certificate chain and key when the server asks for one. */
WS_EXTERN int ws_client_set_tls_cert_file(struct ws_client *cl, const char *chain_file,
                                          const char *key_file);
/* DANGER: 1 turns off all verification of the server (tests only). */
WS_EXTERN int ws_client_set_tls_insecure_skip_verify(struct ws_client *cl, int on);
/* Why the last attempt failed with WS_ETLS ("" when it did not). Loop
 * thread; valid until the next attempt. */
WS_EXTERN const char *ws_client_tls_verify_error(struct ws_client *cl);

/* ---- end TLS -------------------------------------------------------------- */

/* ---- HTTP requests and responses (inside ws_http_cb) -------------------- */

WS_EXTERN const char *ws_request_method(const struct ws_request *req);
/* Path without the query, e.g. "/chat". */
WS_EXTERN const char *ws_request_path(const struct ws_request *req);
/* Raw query without '?', "" when none. */
WS_EXTERN const char *ws_request_query(const struct ws_request *req);
/* First header with that name (case-insensitive), or NULL. */
WS_EXTERN const char *ws_request_header(const struct ws_request *req, const char *name);
/* Headers in arrival order: count, then each by index (0 or WS_ENOTFOUND). */
WS_EXTERN size_t ws_request_header_count(const struct ws_request *req);
WS_EXTERN int ws_request_header_at(const struct ws_request *req, size_t index,
                                   const char **name, const char **value);
/*
 * Percent-decoded value of query parameter name into out (NUL-terminated).
 * Returns the decoded length, WS_ENOTFOUND, or WS_ETOOBIG if out is too small.
 */
WS_EXTERN int ws_request_query_param(const struct ws_request *req, const char *name,
                                     char *out, size_t outlen);
/* Request body (Content-Length bytes); *len may be 0. */
WS_EXTERN const void *ws_request_body(const struct ws_request *req, size_t *len);
WS_EXTERN const char *ws_request_remote_addr(const struct ws_request *req);

/* Add a response header before ws_response_send(); name and value must not
 * contain CR or LF (else WS_EINVAL). */
WS_EXTERN int ws_response_add_header(struct ws_response *res, const char *name,
                                     const char *value);
/* Send the response (once; again -> WS_ESTATE). content_type may be NULL. */
WS_EXTERN int ws_response_send(struct ws_response *res, int status,
                               const char *content_type,
                               const void *body, size_t len);


/* ---- upgrade hook (accept, reject or decide later) ------------------------ */

/*
 * Every valid upgrade request that passed the Origin allow-list is shown to
 * the upgrade callback before any response is sent. The request
 * (ws_upgrade_request) can be read with the ws_request_* accessors. Decide
 * with exactly one of ws_upgrade_accept() or ws_upgrade_reject(), in the
 * callback or later on the connection's loop thread:
 *
 *  - in the callback: the handle is borrowed and goes when it returns;
 *  - later: take a reference with ws_upgrade_ref() before returning and drop
 *    it with ws_upgrade_unref() when done. Until the decision the connection
 *    waits (bytes the client sends meanwhile are kept, up to max_head_size,
 *    and handled after the accept); handshake_timeout still applies. If the
 *    client goes away, the timeout fires or the server stops first, the
 *    abort callback is called and any later decision returns WS_ECLOSED;
 *    the handle stays valid until the last unref.
 *
 * A callback that returns without deciding and without a reference, or a
 * last unref before a decision, refuses the request with 500. Without an
 * upgrade callback every upgrade is accepted. Loop thread only.
 */
struct ws_upgrade;
typedef void (*ws_upgrade_cb)(struct ws_upgrade *up, void *arg);
WS_EXTERN void ws_server_handle_upgrade(struct ws_server *srv, ws_upgrade_cb cb, void *arg);
/* A request kept for a later decision ended before it (client gone,
 * handshake_timeout, server stopping). Not called from ws_server_free(). */
WS_EXTERN void ws_server_handle_upgrade_abort(struct ws_server *srv, ws_upgrade_cb cb,
                                              void *arg);

/* The request, valid as long as the handle (also after the abort). */
WS_EXTERN const struct ws_request *ws_upgrade_request(const struct ws_upgrade *up);
/*
 * Accept: subprotocol must be one the client offered (else WS_EINVAL) or NULL
 * for none; user becomes the connection's user pointer before its open
 * callback. The 101 is queued and the open callback runs before this
 * returns (then frames the client sent early are handled). Returns 0,
 * WS_ECLOSED (the connection went away), WS_ESTATE (already decided),
 * WS_EINVAL, WS_ENOMEM.
 */
WS_EXTERN int ws_upgrade_accept(struct ws_upgrade *up, const char *subprotocol, void *user);
/* Refuse with status (300-599), an optional body (content_type may be NULL)
 * and the headers added so far; the connection closes after it. Errors as
 * for ws_upgrade_accept(). */
WS_EXTERN int ws_upgrade_reject(struct ws_upgrade *up, int status, const char *content_type,
                                const void *body, size_t len);
/* A header for the response (101 or refusal), before the decision. CR/LF,
 * ':' in the name and the handshake's own headers (Upgrade, Connection,
 * Content-Length, Sec-WebSocket-*) -> WS_EINVAL. */
WS_EXTERN int ws_upgrade_add_header(struct ws_upgrade *up, const char *name,
                                    const char *value);
/* Keep the handle past the callback / give it back. */
WS_EXTERN void ws_upgrade_ref(struct ws_upgrade *up);
WS_EXTERN void ws_upgrade_unref(struct ws_upgrade *up);
/* 1 while the decision is still open and the client still there, else 0. */
WS_EXTERN int ws_upgrade_pending(const struct ws_upgrade *up);
/* The application's pointer for this request (not the connection's). */
WS_EXTERN void ws_upgrade_set_data(struct ws_upgrade *up, void *data);
WS_EXTERN void *ws_upgrade_get_data(const struct ws_upgrade *up);

/* The Origin header, or NULL (same as ws_request_header(req, "Origin")). */
WS_EXTERN const char *ws_request_origin(const struct ws_request *req);
/* Subprotocols offered in Sec-WebSocket-Protocol, in order (0 outside an
 * upgrade). ws_request_subprotocol_at returns NULL past the end. */
WS_EXTERN size_t ws_request_subprotocol_count(const struct ws_request *req);
WS_EXTERN const char *ws_request_subprotocol_at(const struct ws_request *req, size_t index);
/* 1 when the request came over TLS, else 0. */
WS_EXTERN int ws_request_is_tls(const struct ws_request *req);

/*
 * Cross-site WebSocket hijacking defence: a comma-separated list of origins
 * ("https://chat.example, http://127.0.0.1:8080", compared case-insensitively
 * and exactly) allowed to open WebSockets. A request whose Origin is not on
 * it gets 403 before the upgrade callback runs. Requests without Origin
 * (non-browser clients) are allowed unless the list holds the token "-".
 * "null" matches the literal Origin "null" (sandboxed or file: pages).
 * NULL or "" allows every origin (the default). At most 2047 bytes
 * (else WS_ETOOBIG).
 */
WS_EXTERN int ws_config_set_allowed_origins(struct ws_config *cfg, const char *list);
/* ---- end of upgrade hook ------------------------------------------------- */

#ifdef __cplusplus
}
#endif

#endif /* WSC_H */
