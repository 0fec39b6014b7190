/*
 * unit.h - the unit tests' tiny framework.
 *
 * Each test file exports a table of tests ending in {NULL, NULL}. A check
 * that fails prints file:line, the expression and the values involved, and
 * the test goes on; a test with any failed check (or one that crashes or
 * hangs: main.c runs each test in a child process) counts as failed.
 *
 * Every CHECK* is an expression worth true when it passed, so a test can stop
 * where going on would crash:  if (!CHECK(h != NULL)) return;
 */
#ifndef WSC_UNIT_H
#define WSC_UNIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct unit_test {
    const char *name;
    void (*fn)(void);
};

extern const struct unit_test http_tests[];
extern const struct unit_test handshake_tests[];
extern const struct unit_test utf8_tests[];
extern const struct unit_test utf8_vector_tests[];
extern const struct unit_test error_tests[];
extern const struct unit_test deflate_tests[];
extern const struct unit_test frame_tests[];
extern const struct unit_test proxy_tests[];
/* wss: ws_tls_* argument checks */
extern const struct unit_test tls_options_tests[];

/* Plain truth. */
#define CHECK(expr) unit_check((expr) ? true : false, __FILE__, __LINE__, #expr)
/* Integers (any signedness, compared as intmax_t). */
#define CHECK_INT_EQ(a, b)                                                  \
    unit_check_int((intmax_t)(a), (intmax_t)(b), __FILE__, __LINE__, #a, #b)
/* NUL-terminated strings; NULL equals only NULL. */
#define CHECK_STR_EQ(a, b) unit_check_str((a), (b), __FILE__, __LINE__, #a, #b)
/* A (pointer, length) slice against a NUL-terminated string. */
#define CHECK_SLICE_EQ(p, len, s)                                           \
    unit_check_slice((p), (len), (s), __FILE__, __LINE__, #p, #s)
/* Two byte ranges of the same length. */
#define CHECK_MEM_EQ(a, b, len)                                             \
    unit_check_mem((a), (b), (len), __FILE__, __LINE__, #a, #b)

/* Context for the failure just reported (e.g. the loop index). */
#define UNIT_NOTE(...) unit_note(__FILE__, __LINE__, __VA_ARGS__)
/* The same with a byte range, printed C-escaped. */
#define UNIT_NOTE_BYTES(label, p, len)                                      \
    unit_note_bytes(__FILE__, __LINE__, (label), (p), (len))

bool unit_check(bool ok, const char *file, int line, const char *expr);
bool unit_check_int(intmax_t a, intmax_t b, const char *file, int line,
                    const char *ea, const char *eb);
bool unit_check_str(const char *a, const char *b, const char *file, int line,
                    const char *ea, const char *eb);
bool unit_check_slice(const char *p, size_t len, const char *s,
                      const char *file, int line, const char *ep, const char *es);
bool unit_check_mem(const void *a, const void *b, size_t len, const char *file,
                    int line, const char *ea, const char *eb);
#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
void unit_note(const char *file, int line, const char *fmt, ...);
void unit_note_bytes(const char *file, int line, const char *label,
                     const void *data, size_t len);

/*
 * A copy of len bytes whose last byte is the last byte before a PROT_NONE
 * page, so reading one byte past the end faults. NULL if mmap fails (the
 * failure is reported). Free with unit_guard_free().
 */
struct unit_guard {
    void *map;
    size_t map_len;
};
void *unit_guard_copy(struct unit_guard *g, const void *data, size_t len);
void unit_guard_free(struct unit_guard *g);

#endif /* WSC_UNIT_H */
