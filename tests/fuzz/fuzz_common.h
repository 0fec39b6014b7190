/*
 * fuzz_common.h - the harness parts fuzz_conn.c and fuzz_client.c share:
 * reporting a broken invariant, reading borrowed buffers for ASan, the
 * piece-size PRNG, the peer's end of the socketpair (drain, write with a
 * stall bound), read poisoning (FUZZ_WRAP_READ), and the checks every
 * callback and every closed, referenced connection must pass.
 */
#ifndef FUZZ_COMMON_H
#define FUZZ_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "internal.h"

#define FUZZ_MAX_PIECES 64
#define FUZZ_DRAIN_ITERATIONS 400

/* Every input starts with three control bytes (the layouts at the top of
 * fuzz_conn.c and fuzz_client.c). Byte 0: bits 0-1 pick the configuration,
 * the others are these; byte 1 is the split (fuzz_piece_len); byte 2 the
 * target's own extras. */
#define F_NO_READ 0x04      /* do not read the library's output until the end */
#define F_ACTIONS 0x08      /* the callbacks act */
#define F_SMALL_SNDBUF 0x10 /* small SO_SNDBUF on the library's socket */
#define F_READ_OUT 0x20     /* at the end, read everything before closing */
#define F_HALF_CLOSE 0x40   /* at the end, half-close (SHUT_WR) first */
#define F_TIMERS 0x80       /* the connection's timer fires */

struct fuzz_input {
    uint8_t flags, split, extra;
    int kind;                   /* flags bits 0-1 */
    uint32_t seed;              /* piece sizes and timer firings */
    uint32_t app_seed;          /* the application's actions */
    unsigned stop_after;        /* the piece after which a stop comes */
    const uint8_t *data;        /* what the peer sends */
    size_t size;
};

/* Split an input into its control bytes and the peer's bytes; false if it
 * is too short to hold the control bytes. */
bool fuzz_input_parse(struct fuzz_input *in, const uint8_t *data, size_t size);

/* Whether the environment variable env asks for a trace (set and > 0). */
bool fuzz_trace_wanted(const char *env);

/* The target's name for fuzz_fail's message ("fuzz_conn", "fuzz_client"). */
extern const char *const fuzz_target_name;

/* A broken invariant: say which, then abort() (libFuzzer saves the input). */
_Noreturn void fuzz_fail(const char *what);

/* Read every byte of a borrowed buffer, so ASan checks the whole range. */
void fuzz_touch(const void *p, size_t n);

/* xorshift32: the piece sizes and the application's actions. */
uint32_t fuzz_prng(uint32_t *s);

/* The length of the next piece of `left` bytes for the split byte (bits
 * 6-7: whole, <= 16, <= 256, <= 2048 bytes); the last piece takes the rest. */
size_t fuzz_piece_len(uint8_t split, unsigned piece, size_t left, uint32_t *seed);

/* Read what the library sent on fd until it would block (trace: copy it to
 * stderr, escaped). Returns true once the library closed or half-closed. */
bool fuzz_peer_drain(int fd, bool trace);

/* Write all of data on fd, running pump(arg) while the socket is full (at
 * most 100 times: a library that does not read loses the rest). Returns
 * false once writes fail (the library closed its end). */
bool fuzz_peer_write(int fd, const uint8_t *data, size_t len, void (*pump)(void *), void *arg);

/* Read poisoning: with FUZZ_WRAP_READ and -Wl,--wrap=read, a read() on one
 * of the watched fds poisons the part of the buffer it did not fill until
 * fuzz_unpoison() (after each loop pass). io.c parses in place inside one
 * large buffer, so an over-read past the input would otherwise be silent. */
void fuzz_watch_reads(int slot, int fd); /* slot 0 or 1; fd -1 to stop */
void fuzz_unpoison(void);

/* The checks on what a callback is handed. */
void fuzz_check_data(enum ws_opcode op, const void *data, size_t len, size_t max_message);
void fuzz_check_control(const void *data, size_t len, const char *what_if_long);
void fuzz_check_close_info(const struct ws_close_info *info);

/* A connection the application still references after it closed refuses
 * every call; the reference is dropped. */
void fuzz_check_closed_ref(struct ws_conn *ref);

#endif
