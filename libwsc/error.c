/* error.c - error strings and the runtime version. */
#include "internal.h"

/* One table: code and text together, so they cannot drift apart. */
#define WSC_ERROR_MAP(X)                                               \
    X(WS_OK, "success")                                                \
    X(WS_EINVAL, "invalid argument")                                   \
    X(WS_ENOMEM, "out of memory")                                      \
    X(WS_ECLOSED, "connection is closing or closed")                   \
    X(WS_EAGAIN, "send buffer full, try again after drain")           \
    X(WS_ETOOBIG, "payload exceeds a limit")                           \
    X(WS_EADDR, "address cannot be parsed or resolved")                \
    X(WS_ELISTEN, "cannot bind or listen on the address")              \
    X(WS_ESTATE, "operation not allowed in the current state")         \
    X(WS_EEVENT, "libevent failed to create or add an event")          \
    X(WS_EUTF8, "text is not valid UTF-8")                             \
    X(WS_ENOTFOUND, "no such header or parameter")                     \
    X(WS_ECODE, "close code not allowed on the wire")                 \
    X(WS_ECONNECT, "connection refused, reset or unreachable")         \
    X(WS_EHANDSHAKE, "the server's upgrade response was not acceptable") \
    X(WS_ETIMEDOUT, "timed out (connect, handshake, pong or close)")                  \
    X(WS_EDNS, "host name could not be resolved")                      \
    X(WS_EUNSUPPORTED, "not supported by this build")                  \
    X(WS_EREDIS, "the Redis bridge is down")                          \
    X(WS_ETLS, "TLS failed (handshake, certificate or key)")

const char *ws_strerror(int code)
{
    switch (code) {
#define WSC_ERROR_CASE(c, text) case c: return text;
    WSC_ERROR_MAP(WSC_ERROR_CASE)
#undef WSC_ERROR_CASE
    default:
        return "unknown error";
    }
}

const char *ws_version(void)
{
    return WS_VERSION_STR;
}
