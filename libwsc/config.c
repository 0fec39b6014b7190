/* config.c - ws_config: options with documented defaults (see wsc.h). */
#include <stdlib.h>

#include "internal.h"

void wsc__config_defaults(struct ws_config *cfg)
{
    cfg->num_trusted = 0;         /* forwarded.c: nobody names the client */
    cfg->max_message_size = 1u << 20;
    cfg->max_head_size = 8192;
    cfg->max_headers = 100;
    cfg->handshake_timeout_ms = 10000;
    cfg->connect_timeout_ms = 10000;
    cfg->ping_interval_ms = 30000;
    cfg->pong_timeout_ms = 10000;
    cfg->close_timeout_ms = 5000;
    cfg->max_connections = 10000;
    cfg->handle_signals = 1;
    cfg->base = NULL;
    cfg->deflate = 1;
    cfg->deflate_no_context_takeover = 1;
    cfg->deflate_window_bits = 15;
    cfg->deflate_mem_level = 8;
    cfg->deflate_threshold = 128;
    cfg->max_buffered = 4u << 20;
    cfg->max_buffered_total = (size_t)1 << 30;
    cfg->max_body_size = 64u << 10;
    cfg->max_pending = 1024;
    cfg->keepalive_timeout_ms = 5000;
    cfg->close_slow_consumers = 0;
    cfg->threads = 1;
    cfg->allowed_origins[0] = '\0'; /* every origin (upgrade.c) */
}

struct ws_config *ws_config_new(void)
{
    struct ws_config *cfg = malloc(sizeof(*cfg));
    if (cfg != NULL)
        wsc__config_defaults(cfg);
    return cfg;
}

void ws_config_free(struct ws_config *cfg)
{
    free(cfg);
}

int ws_config_set_max_message_size(struct ws_config *cfg, size_t bytes)
{
    if (cfg == NULL || bytes == 0)
        return WS_EINVAL;
    cfg->max_message_size = bytes;
    return 0;
}

int ws_config_set_max_head_size(struct ws_config *cfg, size_t bytes)
{
    /* The shortest valid upgrade request is well over 64 bytes; INT_MAX
     * keeps head offsets in the parser's int return value. */
    if (cfg == NULL || bytes < 64 || bytes > (1u << 30))
        return WS_EINVAL;
    cfg->max_head_size = bytes;
    return 0;
}

int ws_config_set_max_headers(struct ws_config *cfg, unsigned count)
{
    if (cfg == NULL || count == 0 || count > 10000)
        return WS_EINVAL;
    cfg->max_headers = count;
    return 0;
}

#define WSC_CONFIG_SETTER(name, field)                  \
    int ws_config_set_##name(struct ws_config *cfg, unsigned v) \
    {                                                   \
        if (cfg == NULL)                                \
            return WS_EINVAL;                           \
        cfg->field = v;                                 \
        return 0;                                       \
    }

WSC_CONFIG_SETTER(handshake_timeout, handshake_timeout_ms)
WSC_CONFIG_SETTER(connect_timeout, connect_timeout_ms)
WSC_CONFIG_SETTER(ping_interval, ping_interval_ms)
WSC_CONFIG_SETTER(pong_timeout, pong_timeout_ms)
WSC_CONFIG_SETTER(close_timeout, close_timeout_ms)
WSC_CONFIG_SETTER(max_connections, max_connections)
WSC_CONFIG_SETTER(max_pending, max_pending)
WSC_CONFIG_SETTER(keepalive_timeout, keepalive_timeout_ms)

int ws_config_set_max_buffered_total(struct ws_config *cfg, size_t bytes)
{
    if (cfg == NULL || (bytes != 0 && bytes < 1024))
        return WS_EINVAL;
    cfg->max_buffered_total = bytes;
    return 0;
}

int ws_config_set_max_body_size(struct ws_config *cfg, size_t bytes)
{
    if (cfg == NULL)
        return WS_EINVAL;
    cfg->max_body_size = bytes;
    return 0;
}

int ws_config_set_handle_signals(struct ws_config *cfg, int on)
{
    if (cfg == NULL)
        return WS_EINVAL;
    cfg->handle_signals = on != 0;
    return 0;
}

int ws_config_set_event_base(struct ws_config *cfg, struct event_base *base)
{
    if (cfg == NULL)
        return WS_EINVAL;
    cfg->base = base;
    return 0;
}

int ws_config_set_deflate(struct ws_config *cfg, int on)
{
    if (cfg == NULL)
        return WS_EINVAL;
    cfg->deflate = on != 0;
    return 0;
}

int ws_config_set_deflate_no_context_takeover(struct ws_config *cfg, int on)
{
    if (cfg == NULL)
        return WS_EINVAL;
    cfg->deflate_no_context_takeover = on != 0;
    return 0;
}

int ws_config_set_deflate_window_bits(struct ws_config *cfg, unsigned bits)
{
    /* zlib's raw deflate has no 8-bit window (it would use 9). */
    if (cfg == NULL || bits < 9 || bits > 15)
        return WS_EINVAL;
    cfg->deflate_window_bits = bits;
    return 0;
}

int ws_config_set_deflate_mem_level(struct ws_config *cfg, unsigned level)
{
    if (cfg == NULL || level < 1 || level > 9)
        return WS_EINVAL;
    cfg->deflate_mem_level = level;
    return 0;
}

int ws_config_set_deflate_threshold(struct ws_config *cfg, size_t bytes)
{
    if (cfg == NULL)
        return WS_EINVAL;
    cfg->deflate_threshold = bytes;
    return 0;
}

int ws_config_set_max_buffered(struct ws_config *cfg, size_t bytes)
{
    if (cfg == NULL || bytes < 1024)
        return WS_EINVAL;
    cfg->max_buffered = bytes;
    return 0;
}

int ws_config_set_close_slow_consumers(struct ws_config *cfg, int on)
{
    if (cfg == NULL)
        return WS_EINVAL;
    cfg->close_slow_consumers = on != 0;
    return 0;
}

int ws_config_set_threads(struct ws_config *cfg, unsigned n)
{
    if (cfg == NULL || n > 256)
        return WS_EINVAL;
    cfg->threads = n == 0 ? 1 : n;
    return 0;
}
