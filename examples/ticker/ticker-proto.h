/*
 * ticker-proto.h - the stock-ticker demo's JSON messages, shared by
 * ticker-server and ticker-client. Every message is one WebSocket text
 * message holding one JSON object with a "type":
 *
 *   client -> server  {"type":"subscribe","symbols":["AAPL","SPY"]}
 *                     {"type":"unsubscribe","symbols":["SPY"]}
 *   server -> client  {"type":"tick","symbol":"AAPL","price":123.45,"seq":7}
 *                     {"type":"error","message":"..."}
 *   either way        {"type":"ping","id":1,"ts":123456}
 *                     {"type":"pong","id":1,"ts":123456}
 *
 * "ts" is the pinging side's own clock in microseconds; the pong echoes it
 * unchanged, so only the side that reads it back has to understand it.
 * "seq" counts the changes of one symbol, so a client can see what it missed.
 */
#ifndef TICKER_PROTO_H
#define TICKER_PROTO_H

#include <stddef.h>

#include <jansson.h>

struct ws_conn;

/* Lets the compiler check ticker_error()'s format against its arguments. */
#if defined(__GNUC__)
#define TICKER_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define TICKER_PRINTF(f, a)
#endif

/* Close code either side uses when the other stopped answering its pings
 * (the 4000-4999 range is for applications, RFC 6455 7.4.2). */
#define TICKER_CLOSE_PING_TIMEOUT 4000

enum ticker_type {
    TICKER_SUBSCRIBE,
    TICKER_UNSUBSCRIBE,
    TICKER_TICK,
    TICKER_PING,
    TICKER_PONG,
    TICKER_ERROR
};

/* A parsed message. Strings and the symbols array belong to root. */
struct ticker_msg {
    enum ticker_type type;
    json_t *root;
    json_t *symbols;     /* (un)subscribe: an array of strings, checked */
    const char *symbol;  /* tick */
    double price;        /* tick */
    json_int_t seq;      /* tick */
    json_int_t id;       /* ping, pong */
    json_int_t ts;       /* ping, pong: 0 when absent */
    const char *message; /* error */
};

/*
 * Parse one text message into msg. Returns 0 (release msg with
 * ticker_msg_release() afterwards) or -1 with the reason in err: not JSON,
 * not an object, an unknown type, or a field missing or of the wrong type.
 */
int ticker_parse(const void *data, size_t len, struct ticker_msg *msg,
                 char *err, size_t errlen);
void ticker_msg_release(struct ticker_msg *msg);

/* Builders: a new reference, or NULL when out of memory. type_name is
 * "subscribe" or "unsubscribe"; type is TICKER_PING or TICKER_PONG. */
json_t *ticker_subscription(const char *type_name, char *const *symbols,
                            size_t count);
json_t *ticker_tick(const char *symbol, double price, json_int_t seq);
json_t *ticker_ping(enum ticker_type type, json_int_t id, json_int_t ts);
json_t *ticker_error(const char *fmt, ...) TICKER_PRINTF(1, 2);

/* A message in its wire form; small ones need no allocation. */
struct ticker_text {
    char *data;
    size_t len;
    char small[256];
};

/* Serialise msg and drop the reference to it (NULL gives WS_ENOMEM, so a
 * builder's result can be passed straight in). Returns 0 or WS_ENOMEM; free
 * with ticker_text_free(). */
int ticker_encode(json_t *msg, struct ticker_text *out);
void ticker_text_free(struct ticker_text *text);

/* Encode msg (its reference is dropped) and send it as one text message:
 * ws_conn_send()'s result, or WS_ENOMEM. */
int ticker_send(struct ws_conn *conn, json_t *msg);

#endif /* TICKER_PROTO_H */
