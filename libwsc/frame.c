/* frame.c - writing frames through wslay's frame API; close payloads. */
#include <string.h>

#include <event2/buffer.h>

#include "internal.h"

int wsc__frame_write(wslay_frame_context_ptr fctx, bool mask, bool rsv1, int opcode,
                     bool fin, const void *data, size_t len)
{
    struct wslay_frame_iocb iocb = {
        .fin = fin ? 1 : 0,
        .rsv = rsv1 ? WSLAY_RSV1_BIT : WSLAY_RSV_NONE,
        .opcode = (uint8_t)opcode,
        .payload_length = len,
        .mask = mask ? 1 : 0,
        .data = data,
        .data_length = len,
    };
    ssize_t r;

    /* The context's send callback appends to the connection's output
     * buffer and never refuses bytes, so one call writes the whole frame. */
    r = wslay_frame_send(fctx, &iocb);
    if (r < 0 || (size_t)r != len)
        return WS_ENOMEM;
    return 0;
}

size_t wsc__frame_close_payload(uint8_t out[125], int code, const char *reason,
                                size_t reason_len)
{
    if (code == 0)
        return 0;
    if (reason_len > 123)
        reason_len = 123;
    out[0] = (uint8_t)(code >> 8);
    out[1] = (uint8_t)code;
    if (reason_len > 0)
        memcpy(out + 2, reason, reason_len);
    return 2 + reason_len;
}

bool wsc__close_code_valid(int code)
{
    /* RFC 6455 7.4.1 plus IANA's 1012-1014; 1004-1006 and 1015 are never
     * sent on the wire; 3000-4999 belong to libraries and applications. */
    if (code >= 1000 && code <= 1003)
        return true;
    if (code >= 1007 && code <= 1014)
        return true;
    return code >= 3000 && code <= 4999;
}
