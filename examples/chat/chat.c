/*
 * chat - a browser chat with one-time-password login, on one port:
 *
 *   GET  /              the chat page (chat-page.c, embedded)
 *   POST /login         {"username","password"} as JSON or a form ->
 *                       {"otp":"..."} (valid --otp-ttl ms, usable once) or 401;
 *                       503 + Retry-After while OTP_MAX (4096) are unused
 *   GET  /ws?otp=...    the WebSocket; the upgrade hook refuses a missing,
 *                       spent or expired OTP with 401
 *
 *   examples/chat/chat --user alice:secret --user bob:hunter2
 *       [--listen 127.0.0.1:8080] [--allowed-origin http://127.0.0.1:8080]...
 *       [--otp-ttl MS] [--ping-interval MS] [--pong-timeout MS]
 *
 * Events are JSON {"type": ..., "payload": {...}} both ways:
 *   send_message {message}  -> new_message {from, room, message, sent} to the room
 *   change_room  {name}     -> room_changed {name} to the sender
 *   anything malformed      -> error {message}; the connection stays open
 * The server says hello {username, room} after the upgrade. Rooms are
 * topics (ws_conn_subscribe/ws_server_publish). A message over 512 bytes
 * closes the connection with 1009 (max_message_size); the library's
 * heartbeat closes clients that stop answering pings.
 *
 * The demo credentials come from --user; passwords are compared as
 * SHA-256 digests with CRYPTO_memcmp. Stop it with Ctrl-C or SIGTERM.
 */
#include <ctype.h>
#include <getopt.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <wsc.h>

#include "chat-page.h"
#include "otp.h"

#define DEFAULT_ADDR "127.0.0.1:8080"
#define MAX_MESSAGE 512          /* as the original: larger -> close 1009 */
#define MAX_USERS 32
#define ROOM_MAX 32
#define DEFAULT_ROOM "general"
#define PASSWORD_MAX 127 /* what a login can carry (handle_login) */
#define ORIGINS_MAX 2047 /* the --allowed-origin list, as ws_config_set_allowed_origins allows */

struct user {
    char name[OTP_NAME_MAX + 1];
    unsigned char pass_sha[SHA256_DIGEST_LENGTH];
};

struct chat {
    struct ws_server *srv;
    struct otp_store *otps;
    struct event *purge;
    struct user users[MAX_USERS];
    size_t nusers;
};

/* One open WebSocket: ws_conn_get_user() leads here. */
struct member {
    char name[OTP_NAME_MAX + 1];
    char room[ROOM_MAX + 1];
};

/* ---- small helpers ------------------------------------------------------------ */

static bool name_ok(const char *s, size_t max)
{
    size_t n = strlen(s);

    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-' && s[i] != '.')
            return false;
    return true;
}

/* --NAME MS within [min, max]; says why not on stderr. */
static int parse_ms(const char *name, const char *s, unsigned min, unsigned max,
                    unsigned *out)
{
    char *end;
    unsigned long v;

    if (*s >= '0' && *s <= '9') {
        v = strtoul(s, &end, 10);
        if (*end == '\0' && v >= min && v <= max) {
            *out = (unsigned)v;
            return 0;
        }
    }
    fprintf(stderr, "chat: --%s must be %u..%u ms\n", name, min, max);
    return -1;
}

/* Send {"type": type, "payload": payload} (steals payload). */
static void send_event(struct ws_conn *c, const char *type, json_t *payload)
{
    json_t *ev = json_pack("{s:s, s:o}", "type", type, "payload", payload);
    char *text = ev != NULL ? json_dumps(ev, JSON_COMPACT) : NULL;

    if (text != NULL)
        ws_conn_send(c, WS_OP_TEXT, text, strlen(text));
    free(text);
    json_decref(ev);
}

static void send_error(struct ws_conn *c, const char *message)
{
    send_event(c, "error", json_pack("{s:s}", "message", message));
}

static void room_topic(const char *room, char *out, size_t outlen)
{
    snprintf(out, outlen, "room:%s", room);
}

/* ---- login -------------------------------------------------------------------- */

/* Check a name and password against every demo user (no early exit). */
static bool credentials_ok(const struct chat *chat, const char *name, const char *pass)
{
    unsigned char sha[SHA256_DIGEST_LENGTH];
    bool ok = false;

    SHA256((const unsigned char *)pass, strlen(pass), sha);
    for (size_t i = 0; i < chat->nusers; i++) {
        bool same_name = strcmp(chat->users[i].name, name) == 0;
        bool same_pass = CRYPTO_memcmp(chat->users[i].pass_sha, sha, sizeof(sha)) == 0;
        ok |= same_name && same_pass;
    }
    return ok;
}

static int hexval(int ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    ch = tolower(ch);
    return ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
}

/* The value of key in an application/x-www-form-urlencoded body. */
static bool form_value(const char *body, size_t len, const char *key, char *out, size_t outlen)
{
    size_t klen = strlen(key), i = 0;

    while (i < len) {
        size_t end = i;
        while (end < len && body[end] != '&')
            end++;
        if (end - i > klen && memcmp(body + i, key, klen) == 0 && body[i + klen] == '=') {
            size_t o = 0;
            for (size_t p = i + klen + 1; p < end; p++) {
                int ch = (unsigned char)body[p];
                if (ch == '+') {
                    ch = ' ';
                } else if (ch == '%') {
                    int hi = p + 2 < end ? hexval(body[p + 1]) : -1;
                    int lo = p + 2 < end ? hexval(body[p + 2]) : -1;
                    if (hi < 0 || lo < 0)
                        return false;
                    ch = hi * 16 + lo;
                    p += 2;
                }
                if (ch == 0 || o + 1 >= outlen)
                    return false;
                out[o++] = (char)ch;
            }
            out[o] = '\0';
            return true;
        }
        i = end + 1;
    }
    return false;
}

/* username and password from a JSON or form body. */
static bool login_fields(const struct ws_request *req, char *name, size_t nlen, char *pass,
                         size_t plen)
{
    const char *type = ws_request_header(req, "Content-Type");
    size_t len;
    const char *body = ws_request_body(req, &len);

    if (type != NULL && strncasecmp(type, "application/json", 16) == 0) {
        json_t *doc = json_loadb(body, len, 0, NULL);
        const char *u, *p;
        bool ok = doc != NULL &&
                  json_unpack(doc, "{s:s, s:s}", "username", &u, "password", &p) == 0 &&
                  strlen(u) < nlen && strlen(p) < plen;
        if (ok) {
            strcpy(name, u);
            strcpy(pass, p);
        }
        json_decref(doc);
        return ok;
    }
    return form_value(body, len, "username", name, nlen) &&
           form_value(body, len, "password", pass, plen);
}

static void reply_json(struct ws_response *res, int status, json_t *doc)
{
    char *text = json_dumps(doc, JSON_COMPACT);

    ws_response_add_header(res, "Cache-Control", "no-store");
    ws_response_send(res, status, "application/json", text, text != NULL ? strlen(text) : 0);
    free(text);
    json_decref(doc);
}

static void handle_login(struct chat *chat, const struct ws_request *req,
                         struct ws_response *res)
{
    char name[OTP_NAME_MAX + 1], pass[PASSWORD_MAX + 1], otp[OTP_HEX_LEN + 1];
    int rc;

    if (!login_fields(req, name, sizeof(name), pass, sizeof(pass)) ||
        !credentials_ok(chat, name, pass)) {
        printf("LOGIN refused\n");
        reply_json(res, 401, json_pack("{s:s}", "error", "wrong username or password"));
        return;
    }
    OPENSSL_cleanse(pass, sizeof(pass));
    rc = otp_issue(chat->otps, name, otp);
    if (rc == OTP_FULL) {
        /* A slot frees when an OTP is spent or expires: a retry soon may do. */
        printf("LOGIN refused: too many unused one-time passwords\n");
        ws_response_add_header(res, "Retry-After", "1");
        reply_json(res, 503, json_pack("{s:s}", "error",
                                       "too many unused one-time passwords; try again soon"));
        return;
    }
    if (rc != 0) {
        reply_json(res, 503, json_pack("{s:s}", "error", "try again"));
        return;
    }
    printf("LOGIN ok user=%s\n", name);
    reply_json(res, 200, json_pack("{s:s}", "otp", otp));
}

static void on_http(const struct ws_request *req, struct ws_response *res, void *arg)
{
    struct chat *chat = arg;
    const char *method = ws_request_method(req), *path = ws_request_path(req);

    if (strcmp(path, "/") == 0 || strcmp(path, "/index.html") == 0) {
        if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
            ws_response_add_header(res, "Allow", "GET, HEAD");
            ws_response_send(res, 405, "text/plain", "method not allowed\n", 19);
            return;
        }
        ws_response_add_header(res, "Content-Security-Policy",
                               "default-src 'self'; style-src 'unsafe-inline'; "
                               "script-src 'unsafe-inline'; connect-src 'self' ws: wss:");
        ws_response_send(res, 200, "text/html; charset=utf-8", chat_page, chat_page_len);
    } else if (strcmp(path, "/login") == 0) {
        if (strcmp(method, "POST") != 0) {
            ws_response_add_header(res, "Allow", "POST");
            ws_response_send(res, 405, "text/plain", "method not allowed\n", 19);
            return;
        }
        handle_login(chat, req, res);
    } else {
        ws_response_send(res, 404, "text/plain", "not found\n", 10);
    }
}

/* ---- the WebSocket -------------------------------------------------------------- */

/* The upgrade hook: /ws with a valid OTP, nothing else. */
static void on_upgrade(struct ws_upgrade *up, void *arg)
{
    struct chat *chat = arg;
    const struct ws_request *req = ws_upgrade_request(up);
    char otp[OTP_HEX_LEN + 2], name[OTP_NAME_MAX + 1];
    struct member *m;

    if (strcmp(ws_request_path(req), "/ws") != 0) {
        ws_upgrade_reject(up, 404, "text/plain", "not found\n", 10);
        return;
    }
    if (ws_request_query_param(req, "otp", otp, sizeof(otp)) < 0 ||
        !otp_redeem(chat->otps, otp, name)) {
        printf("UPGRADE refused otp\n");
        ws_upgrade_reject(up, 401, "text/plain", "missing, spent or expired OTP\n", 30);
        return;
    }
    m = calloc(1, sizeof(*m));
    if (m == NULL) {
        ws_upgrade_reject(up, 503, NULL, NULL, 0);
        return;
    }
    snprintf(m->name, sizeof(m->name), "%s", name);
    snprintf(m->room, sizeof(m->room), "%s", DEFAULT_ROOM);
    if (ws_upgrade_accept(up, NULL, m) != 0)
        free(m);
}

static void on_open(struct ws_conn *c, void *arg)
{
    struct member *m = ws_conn_get_user(c);
    char topic[ROOM_MAX + 8];

    (void)arg;
    room_topic(m->room, topic, sizeof(topic));
    ws_conn_subscribe(c, topic);
    printf("JOIN user=%s room=%s\n", m->name, m->room);
    send_event(c, "hello", json_pack("{s:s, s:s}", "username", m->name, "room", m->room));
}

static void send_message(struct chat *chat, struct ws_conn *c, json_t *payload)
{
    struct member *m = ws_conn_get_user(c);
    const char *text;
    char sent[32], topic[ROOM_MAX + 8], *out;
    time_t now = time(NULL);
    struct tm tm;
    json_t *ev;

    if (json_unpack(payload, "{s:s}", "message", &text) != 0 || text[0] == '\0') {
        send_error(c, "send_message needs a non-empty \"message\" string");
        return;
    }
    gmtime_r(&now, &tm);
    strftime(sent, sizeof(sent), "%Y-%m-%dT%H:%M:%SZ", &tm);
    ev = json_pack("{s:s, s:{s:s, s:s, s:s, s:s}}", "type", "new_message", "payload", "from",
                   m->name, "room", m->room, "message", text, "sent", sent);
    out = ev != NULL ? json_dumps(ev, JSON_COMPACT) : NULL;
    room_topic(m->room, topic, sizeof(topic));
    /* With --redis the room spans every chat process; while Redis is down
     * nobody gets it, so the sender is told rather than left guessing. */
    if (out != NULL && ws_server_publish(chat->srv, topic, WS_OP_TEXT, out, strlen(out)) ==
                           WS_EREDIS)
        send_error(c, "messages cannot be delivered right now");
    free(out);
    json_decref(ev);
}

static void change_room(struct ws_conn *c, json_t *payload)
{
    struct member *m = ws_conn_get_user(c);
    const char *name;
    char topic[ROOM_MAX + 8];

    if (json_unpack(payload, "{s:s}", "name", &name) != 0 || !name_ok(name, ROOM_MAX)) {
        send_error(c, "change_room needs a \"name\" of 1-32 letters, digits, . _ -");
        return;
    }
    room_topic(m->room, topic, sizeof(topic));
    ws_conn_unsubscribe(c, topic);
    snprintf(m->room, sizeof(m->room), "%s", name);
    room_topic(m->room, topic, sizeof(topic));
    ws_conn_subscribe(c, topic);
    printf("ROOM user=%s room=%s\n", m->name, m->room);
    send_event(c, "room_changed", json_pack("{s:s}", "name", m->room));
}

static void on_data(struct ws_conn *c, enum ws_opcode op, const void *data, size_t len,
                    void *arg)
{
    json_t *ev, *payload;
    const char *type;

    if (op != WS_OP_TEXT) {
        send_error(c, "events are JSON text");
        return;
    }
    ev = json_loadb(data, len, 0, NULL);
    if (ev == NULL || json_unpack(ev, "{s:s, s:o}", "type", &type, "payload", &payload) != 0) {
        send_error(c, "malformed event: want {\"type\": string, \"payload\": object}");
    } else if (strcmp(type, "send_message") == 0) {
        send_message(arg, c, payload);
    } else if (strcmp(type, "change_room") == 0) {
        change_room(c, payload);
    } else {
        send_error(c, "unknown event type");
    }
    json_decref(ev);
}

static void on_close(struct ws_conn *c, const struct ws_close_info *info, void *arg)
{
    struct member *m = ws_conn_get_user(c);

    (void)arg;
    printf("LEAVE user=%s code=%d\n", m != NULL ? m->name : "?", info->code);
    free(m);
}

static void on_purge(evutil_socket_t fd, short what, void *arg)
{
    struct chat *chat = arg;
    size_t gone;

    (void)fd;
    (void)what;
    gone = otp_purge(chat->otps);
    if (gone > 0)
        printf("PURGED %zu\n", gone);
}

static void on_redis(struct ws_server *srv, int up, void *arg)
{
    (void)srv;
    (void)arg;
    printf("REDIS %s\n", up ? "up" : "down");
}

/* ---- setup ---------------------------------------------------------------------- */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: chat --user NAME:PASSWORD [--user ...] [options]\n"
            "A chat: log in (POST /login) for a one-time password, then open /ws?otp=...\n"
            "  --user NAME:PASSWORD     a demo account (repeatable, at least one;\n"
            "                           PASSWORD at most %d bytes)\n"
            "  --listen HOST:PORT       where to listen (default " DEFAULT_ADDR ")\n"
            "  --allowed-origin ORIGIN  browsers from this Origin only (repeatable, at\n"
            "                           most %d characters in all; default: any)\n"
            "  --otp-ttl MS             one-time password lifetime, 100..600000\n"
            "                           (default 5000)\n"
            "  --ping-interval MS       heartbeat, 0..3600000, 0 = off (default 30000)\n"
            "  --pong-timeout MS        silent clients closed after, 0..3600000\n"
            "                           (default 10000)\n"
            "  --cert FILE --key FILE   serve https/wss (certificate chain, key)\n"
            "  --redis HOST:PORT        rooms span every chat process on this Redis\n"
            "  --help                   show this help\n",
            PASSWORD_MAX, ORIGINS_MAX);
}

static int add_user(struct chat *chat, const char *arg)
{
    const char *colon = strchr(arg, ':');
    struct user *u;

    /* A longer password would be accepted here but could never log in. */
    if (colon == NULL || chat->nusers == MAX_USERS || (size_t)(colon - arg) > OTP_NAME_MAX ||
        colon[1] == '\0' || strlen(colon + 1) > PASSWORD_MAX)
        return -1;
    u = &chat->users[chat->nusers];
    memcpy(u->name, arg, (size_t)(colon - arg));
    u->name[colon - arg] = '\0';
    if (!name_ok(u->name, OTP_NAME_MAX))
        return -1;
    SHA256((const unsigned char *)colon + 1, strlen(colon + 1), u->pass_sha);
    chat->nusers++;
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "listen", required_argument, NULL, 'l' },
        { "user", required_argument, NULL, 'u' },
        { "allowed-origin", required_argument, NULL, 'o' },
        { "redis", required_argument, NULL, 'r' },
        { "otp-ttl", required_argument, NULL, 'T' },
        { "ping-interval", required_argument, NULL, 'p' },
        { "pong-timeout", required_argument, NULL, 't' },
        { "cert", required_argument, NULL, 'c' },
        { "key", required_argument, NULL, 'k' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    static struct chat chat;
    static char origins[ORIGINS_MAX + 1];
    const char *addr = DEFAULT_ADDR, *cert = NULL, *key = NULL, *redis = NULL;
    unsigned ttl = 5000, ping = 30000, pong = 10000;
    struct timeval purge_tv;
    struct ws_config *cfg;
    int ch, port, rc = 1;

    setvbuf(stdout, NULL, _IOLBF, 0);
    while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (ch) {
        case 'l':
            addr = optarg;
            break;
        case 'u':
            if (add_user(&chat, optarg) != 0) {
                /* Only the name: error output goes to logs, passwords must not. */
                int name_len = (int)strcspn(optarg, ":");
                fprintf(stderr, "chat: bad --user '%.*s%s' (NAME:PASSWORD, NAME 1-32 of "
                                "letters, digits, . _ -; PASSWORD 1-%d bytes; at most %d "
                                "users)\n",
                        name_len > 64 ? 64 : name_len, optarg,
                        optarg[name_len] == ':' ? ":..." : "", PASSWORD_MAX, MAX_USERS);
                return 2;
            }
            break;
        case 'r':
            redis = optarg;
            break;
        case 'o':
            if (strpbrk(optarg, ", \r\n") != NULL || optarg[0] == '\0') {
                fprintf(stderr, "chat: bad --allowed-origin '%s'\n", optarg);
                return 2;
            }
            /* The comma-joined list, as ws_config_set_allowed_origins takes it. */
            if (strlen(origins) + (origins[0] != '\0') + strlen(optarg) > ORIGINS_MAX) {
                fprintf(stderr, "chat: the --allowed-origin list is over %d characters "
                                "(joined with commas)\n", ORIGINS_MAX);
                return 2;
            }
            if (origins[0] != '\0')
                strcat(origins, ",");
            strcat(origins, optarg);
            break;
        case 'T':
            if (parse_ms("otp-ttl", optarg, 100, 600000, &ttl) != 0)
                return 2;
            break;
        case 'p':
            if (parse_ms("ping-interval", optarg, 0, 3600000, &ping) != 0)
                return 2;
            break;
        case 't':
            if (parse_ms("pong-timeout", optarg, 0, 3600000, &pong) != 0)
                return 2;
            break;
        case 'c':
            cert = optarg;
            break;
        case 'k':
            key = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc || chat.nusers == 0) {
        usage(stderr);
        return 2;
    }
    /* Passwords and one-time passwords cross this connection: both files
     * or neither, never a half-configured https. */
    if ((cert == NULL) != (key == NULL)) {
        fprintf(stderr, "chat: --cert and --key go together\n");
        return 2;
    }

    cfg = ws_config_new();
    if (cfg == NULL || ws_config_set_max_message_size(cfg, MAX_MESSAGE) != 0 ||
        ws_config_set_ping_interval(cfg, ping) != 0 ||
        ws_config_set_pong_timeout(cfg, pong) != 0 ||
        ws_config_set_allowed_origins(cfg, origins) != 0) {
        fprintf(stderr, "chat: configuration refused\n");
        ws_config_free(cfg);
        return 1;
    }
    chat.otps = otp_store_new(ttl);
    chat.srv = ws_server_new(cfg);
    ws_config_free(cfg);
    if (chat.otps == NULL || chat.srv == NULL)
        goto out;
    ws_server_handle_http(chat.srv, on_http, &chat);
    ws_server_handle_upgrade(chat.srv, on_upgrade, &chat);
    ws_server_handle_open(chat.srv, on_open, &chat);
    ws_server_handle_data(chat.srv, on_data, &chat);
    ws_server_handle_close(chat.srv, on_close, &chat);
    if (redis != NULL) {
        int rrc = ws_server_redis_attach(chat.srv, redis, "chat:");
        if (rrc < 0) {
            fprintf(stderr, "chat: --redis %s: %s\n", redis, ws_strerror(rrc));
            goto out;
        }
        ws_server_handle_redis(chat.srv, on_redis, &chat);
    }
    /* Expired OTPs go at least once a second (and never outlive 2 x TTL). */
    purge_tv.tv_sec = ttl >= 1000 ? 1 : 0;
    purge_tv.tv_usec = ttl >= 1000 ? 0 : (suseconds_t)ttl * 1000;
    chat.purge = event_new(ws_server_event_base(chat.srv), -1, EV_PERSIST, on_purge, &chat);
    if (chat.purge == NULL || event_add(chat.purge, &purge_tv) != 0)
        goto out;
    if (cert != NULL) { /* https and wss on one port */
        struct ws_tls *tls = ws_tls_new();
        if (tls == NULL || ws_tls_set_cert_file(tls, cert, key) != 0) {
            fprintf(stderr, "chat: --cert/--key: cannot use %s / %s\n", cert, key);
            ws_tls_free(tls);
            goto out;
        }
        port = ws_server_listen_tls(chat.srv, addr, tls);
        ws_tls_free(tls); /* copied by the listener */
    } else {
        port = ws_server_listen(chat.srv, addr);
    }
    if (port < 0) {
        char why[256] = "";
        if (port == WS_ETLS)
            ws_server_tls_error(chat.srv, why, sizeof(why));
        fprintf(stderr, "chat: listen on %s: %s%s%s\n", addr, ws_strerror(port),
                why[0] != '\0' ? ": " : "", why);
        goto out;
    }
    printf("LISTENING %d\n", port);
    {
        const char *colon = strrchr(addr, ':');
        int hostlen = colon != NULL ? (int)(colon - addr) : 0;
        fprintf(stderr, "chat: open %s://%.*s:%d/ in a browser\n", cert != NULL ? "https" : "http",
                hostlen > 0 ? hostlen : 9, hostlen > 0 ? addr : "127.0.0.1", port);
    }
    ws_server_run(chat.srv);
    rc = 0;
out:
    if (chat.purge != NULL)
        event_free(chat.purge);
    ws_server_free(chat.srv);
    otp_store_free(chat.otps);
    return rc;
}
