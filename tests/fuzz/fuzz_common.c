/*
 * fuzz_common.c - the harness parts both fuzz targets share (fuzz_common.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include "fuzz_common.h"

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#include <sanitizer/asan_interface.h>
#define HAVE_ASAN 1
#endif
#endif
#ifndef HAVE_ASAN
#define ASAN_POISON_MEMORY_REGION(p, n) ((void)(p), (void)(n))
#define ASAN_UNPOISON_MEMORY_REGION(p, n) ((void)(p), (void)(n))
#endif

void fuzz_fail(const char *what)
{
    fprintf(stderr, "%s: invariant broken: %s\n", fuzz_target_name, what);
    abort();
}

static volatile uint8_t sink;

void fuzz_touch(const void *p, size_t n)
{
    const volatile uint8_t *b = p;
    uint8_t x = 0;

    for (size_t i = 0; i < n; i++)
        x ^= b[i];
    sink = x;
}

uint32_t fuzz_prng(uint32_t *s)
{
    uint32_t x = *s;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *s = x;
}

bool fuzz_input_parse(struct fuzz_input *in, const uint8_t *data, size_t size)
{
    if (size < 3)
        return false;
    in->flags = data[0];
    in->split = data[1];
    in->extra = data[2];
    in->kind = in->flags & 3;
    in->seed = (uint32_t)(in->split & 0x3f) * 2654435761u + 1;
    in->app_seed = in->seed ^ 0x5bd1e995u;
    in->stop_after = in->split & 3;
    in->data = data + 3;
    in->size = size - 3;
    return true;
}

bool fuzz_trace_wanted(const char *env)
{
    const char *v = getenv(env);
    return v != NULL && atoi(v) > 0;
}

size_t fuzz_piece_len(uint8_t split, unsigned piece, size_t left, uint32_t *seed)
{
    static const size_t class_max[4] = { 0, 16, 256, 2048 };
    size_t cm = class_max[split >> 6];

    if (cm > 0 && piece < FUZZ_MAX_PIECES - 1) {
        size_t r = 1 + fuzz_prng(seed) % cm;
        if (r < left)
            return r;
    }
    return left;
}

static void trace_bytes(const uint8_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (b[i] == '\n' || (b[i] >= 0x20 && b[i] < 0x7f && b[i] != '\\'))
            fputc(b[i], stderr);
        else
            fprintf(stderr, "\\x%02x", b[i]);
    }
}

bool fuzz_peer_drain(int fd, bool trace)
{
    static uint8_t buf[65536];

    for (;;) {
        ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n > 0) {
            if (trace)
                trace_bytes(buf, (size_t)n);
            continue;
        }
        return n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
    }
}

bool fuzz_peer_write(int fd, const uint8_t *data, size_t len, void (*pump)(void *), void *arg)
{
    int stalls = 0;

    while (len > 0) {
        ssize_t w = send(fd, data, len, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (w > 0) {
            data += w;
            len -= (size_t)w;
        } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
            if (++stalls > 100)
                return true; /* the library does not read: give up on the rest */
            pump(arg);
        } else {
            return false;
        }
    }
    return true;
}

/* ---- read poisoning ---------------------------------------------------------- */

static int watched[2] = { -1, -1 };
static uint8_t *poisoned;
static size_t poisoned_len;

void fuzz_watch_reads(int slot, int fd)
{
    watched[slot] = fd;
}

void fuzz_unpoison(void)
{
    if (poisoned != NULL)
        ASAN_UNPOISON_MEMORY_REGION(poisoned, poisoned_len);
    poisoned = NULL;
    poisoned_len = 0;
}

#ifdef FUZZ_WRAP_READ
ssize_t __real_read(int fd, void *buf, size_t count);
ssize_t __wrap_read(int fd, void *buf, size_t count);
ssize_t __wrap_read(int fd, void *buf, size_t count)
{
    ssize_t n;

    if (fd < 0 || (fd != watched[0] && fd != watched[1]))
        return __real_read(fd, buf, count);
    fuzz_unpoison();
    n = __real_read(fd, buf, count);
    if (n >= 0 && (size_t)n < count) {
        poisoned = (uint8_t *)buf + n;
        poisoned_len = count - (size_t)n;
        ASAN_POISON_MEMORY_REGION(poisoned, poisoned_len);
    }
    return n;
}
#endif

/* ---- shared invariants ----------------------------------------------------------- */

void fuzz_check_data(enum ws_opcode op, const void *data, size_t len, size_t max_message)
{
    if (op != WS_OP_TEXT && op != WS_OP_BINARY)
        fuzz_fail("data opcode");
    if (len > max_message)
        fuzz_fail("message over max_message_size delivered");
    if (len > 0 && data == NULL)
        fuzz_fail("NULL data");
    fuzz_touch(data, len);
    if (op == WS_OP_TEXT && !wsc__utf8_valid(data, len))
        fuzz_fail("invalid UTF-8 delivered as text");
}

void fuzz_check_control(const void *data, size_t len, const char *what_if_long)
{
    if (len > 125)
        fuzz_fail(what_if_long);
    fuzz_touch(data, len);
}

void fuzz_check_close_info(const struct ws_close_info *info)
{
    if (info->reason == NULL || info->reason_len > 123 ||
        strlen(info->reason) > info->reason_len || info->reason[info->reason_len] != '\0')
        fuzz_fail("close reason");
    if (info->code < 1000 || info->code > 4999)
        fuzz_fail("close code");
}

void fuzz_check_closed_ref(struct ws_conn *ref)
{
    if (ws_conn_send(ref, WS_OP_TEXT, "x", 1) != WS_ECLOSED ||
        ws_conn_ping(ref, NULL, 0) != WS_ECLOSED || ws_conn_close(ref, 1000, NULL) != WS_ECLOSED)
        fuzz_fail("a closed, referenced connection accepted a call");
    if (ws_conn_buffered_amount(ref) != 0)
        fuzz_fail("buffered amount of a closed connection");
    ws_conn_unref(ref);
}
