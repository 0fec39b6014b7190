/*
 * ticker-proto.c - building and parsing the ticker's JSON messages with
 * jansson: json_loadb() and json_unpack_ex() check the shapes, json_pack()
 * builds, json_dumpb() serialises. See ticker-proto.h for the messages.
 */
#include "ticker-proto.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <wsc.h>

/* ---- parsing ------------------------------------------------------------- */

static const struct {
    const char *name;
    enum ticker_type type;
} type_names[] = {
    {"subscribe", TICKER_SUBSCRIBE}, {"unsubscribe", TICKER_UNSUBSCRIBE},
    {"tick", TICKER_TICK},           {"ping", TICKER_PING},
    {"pong", TICKER_PONG},           {"error", TICKER_ERROR},
};

static int type_of(const char *name, enum ticker_type *type)
{
    for (size_t i = 0; i < sizeof(type_names) / sizeof(type_names[0]); i++) {
        if (strcmp(name, type_names[i].name) == 0) {
            *type = type_names[i].type;
            return 0;
        }
    }
    return -1;
}

/* The receiver indexes the array without looking again: check it here. */
static int check_symbols(const json_t *symbols, char *err, size_t errlen)
{
    size_t i;
    json_t *s;

    json_array_foreach(symbols, i, s) {
        if (!json_is_string(s)) {
            snprintf(err, errlen, "symbols[%zu] is not a string", i);
            return -1;
        }
    }
    return 0;
}

/* The fields each type needs; unknown extra fields are ignored, so either
 * side may add some later. */
static int unpack_fields(struct ticker_msg *msg, json_error_t *jerr)
{
    switch (msg->type) {
    case TICKER_SUBSCRIBE:
    case TICKER_UNSUBSCRIBE:
        return json_unpack_ex(msg->root, jerr, 0, "{s:o}", "symbols",
                              &msg->symbols);
    case TICKER_TICK:
        return json_unpack_ex(msg->root, jerr, 0, "{s:s, s:F, s:I}", "symbol",
                              &msg->symbol, "price", &msg->price, "seq",
                              &msg->seq);
    case TICKER_PING:
    case TICKER_PONG:
        return json_unpack_ex(msg->root, jerr, 0, "{s:I, s?I}", "id", &msg->id,
                              "ts", &msg->ts);
    case TICKER_ERROR:
        return json_unpack_ex(msg->root, jerr, 0, "{s:s}", "message",
                              &msg->message);
    }
    return -1;
}

int ticker_parse(const void *data, size_t len, struct ticker_msg *msg,
                 char *err, size_t errlen)
{
    json_error_t jerr;
    const char *type;

    memset(msg, 0, sizeof(*msg));
    msg->root = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
    if (msg->root == NULL) {
        snprintf(err, errlen, "malformed JSON: %s", jerr.text);
        return -1;
    }
    if (json_unpack_ex(msg->root, &jerr, 0, "{s:s}", "type", &type) != 0) {
        snprintf(err, errlen, "bad message: %s", jerr.text);
    } else if (type_of(type, &msg->type) != 0) {
        snprintf(err, errlen, "unknown message type \"%.40s\"", type);
    } else if (unpack_fields(msg, &jerr) != 0) {
        snprintf(err, errlen, "bad %s message: %s", type, jerr.text);
    } else if (msg->symbols != NULL && !json_is_array(msg->symbols)) {
        snprintf(err, errlen, "bad %s message: symbols is not an array", type);
    } else if (msg->symbols == NULL ||
               check_symbols(msg->symbols, err, errlen) == 0) {
        return 0;
    }
    ticker_msg_release(msg);
    return -1;
}

void ticker_msg_release(struct ticker_msg *msg)
{
    json_decref(msg->root);
    memset(msg, 0, sizeof(*msg));
}

/* ---- building ------------------------------------------------------------ */

json_t *ticker_subscription(const char *type_name, char *const *symbols,
                            size_t count)
{
    json_t *list = json_array();

    for (size_t i = 0; list != NULL && i < count; i++) {
        if (json_array_append_new(list, json_string(symbols[i])) != 0) {
            json_decref(list);
            list = NULL;
        }
    }
    /* "o" steals list; json_pack() releases it on failure too. */
    return list != NULL
               ? json_pack("{s:s, s:o}", "type", type_name, "symbols", list)
               : NULL;
}

json_t *ticker_tick(const char *symbol, double price, json_int_t seq)
{
    return json_pack("{s:s, s:s, s:f, s:I}", "type", "tick", "symbol", symbol,
                     "price", price, "seq", seq);
}

json_t *ticker_ping(enum ticker_type type, json_int_t id, json_int_t ts)
{
    return json_pack("{s:s, s:I, s:I}", "type",
                     type == TICKER_PONG ? "pong" : "ping", "id", id, "ts", ts);
}

json_t *ticker_error(const char *fmt, ...)
{
    char message[200];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);
    /* "s%" would also take a length; a NUL-terminated copy is simpler. */
    return json_pack("{s:s, s:s}", "type", "error", "message", message);
}

/* ---- wire form ----------------------------------------------------------- */

/* Prices have cents: 12 significant digits print 123.45 as "123.45", not as
 * the 17-digit "123.45000000000000284" jansson would choose by default. */
#define DUMP_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(12))

int ticker_encode(json_t *msg, struct ticker_text *out)
{
    size_t need;

    out->data = out->small;
    out->len = 0;
    if (msg == NULL)
        return WS_ENOMEM;
    need = json_dumpb(msg, out->small, sizeof(out->small), DUMP_FLAGS);
    if (need > sizeof(out->small)) {
        /* Too big for the stack buffer: json_dumpb() told us the size. */
        out->data = malloc(need);
        if (out->data != NULL)
            need = json_dumpb(msg, out->data, need, DUMP_FLAGS);
    }
    json_decref(msg);
    if (out->data == NULL || need == 0) {
        ticker_text_free(out);
        return WS_ENOMEM;
    }
    out->len = need;
    return 0;
}

void ticker_text_free(struct ticker_text *text)
{
    if (text->data != text->small)
        free(text->data);
    text->data = text->small;
    text->len = 0;
}

int ticker_send(struct ws_conn *conn, json_t *msg)
{
    struct ticker_text text;
    int rc = ticker_encode(msg, &text);

    if (rc == 0)
        rc = ws_conn_send(conn, WS_OP_TEXT, text.data, text.len);
    ticker_text_free(&text);
    return rc;
}
