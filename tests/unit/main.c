/*
 * main.c - runs the unit test tables.
 *
 *   wsc-unit [FILTER]
 *
 * Runs every test whose name contains FILTER (all without one), each in a
 * child process so a crash or a hang fails that test alone. Prints
 * "PASS: unit <name>" or "FAIL: unit <name>" per test, then
 * "N passed, M failed"; exits 1 if any test failed.
 * WSC_UNIT_NOFORK=1 runs the tests in this process (for a debugger).
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "unit.h"

/* Seconds a single test may run before it counts as hung. */
#define UNIT_TIMEOUT 120

/* Failed checks in the test now running. */
static unsigned unit_failed_checks;

static void report_head(const char *file, int line)
{
    unit_failed_checks++;
    printf("  %s:%d: ", file, line);
}

/* Print bytes C-escaped between quotes (at most 200 of them). */
static void print_escaped(const void *data, size_t len)
{
    const unsigned char *p = data;
    size_t n = len > 200 ? 200 : len;

    putchar('"');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = p[i];
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c == '\r')
            fputs("\\r", stdout);
        else if (c == '\n')
            fputs("\\n", stdout);
        else if (c == '\t')
            fputs("\\t", stdout);
        else if (c < 0x20 || c >= 0x7F)
            printf("\\x%02x", c);
        else
            putchar(c);
    }
    putchar('"');
    if (n < len)
        printf("... (%zu bytes)", len);
}

bool unit_check(bool ok, const char *file, int line, const char *expr)
{
    if (!ok) {
        report_head(file, line);
        printf("CHECK(%s) failed\n", expr);
    }
    return ok;
}

bool unit_check_int(intmax_t a, intmax_t b, const char *file, int line,
                    const char *ea, const char *eb)
{
    if (a != b) {
        report_head(file, line);
        printf("CHECK_INT_EQ(%s, %s) failed: %jd != %jd\n", ea, eb, a, b);
    }
    return a == b;
}

bool unit_check_str(const char *a, const char *b, const char *file, int line,
                    const char *ea, const char *eb)
{
    bool ok = (a == NULL || b == NULL) ? a == b : strcmp(a, b) == 0;

    if (!ok) {
        report_head(file, line);
        printf("CHECK_STR_EQ(%s, %s) failed: ", ea, eb);
        if (a != NULL)
            print_escaped(a, strlen(a));
        else
            fputs("NULL", stdout);
        fputs(" != ", stdout);
        if (b != NULL)
            print_escaped(b, strlen(b));
        else
            fputs("NULL", stdout);
        putchar('\n');
    }
    return ok;
}

bool unit_check_slice(const char *p, size_t len, const char *s,
                      const char *file, int line, const char *ep, const char *es)
{
    bool ok = strlen(s) == len && (len == 0 || (p != NULL && memcmp(p, s, len) == 0));

    if (!ok) {
        report_head(file, line);
        printf("CHECK_SLICE_EQ(%s, %s) failed: ", ep, es);
        if (p != NULL)
            print_escaped(p, len);
        else
            fputs("NULL", stdout);
        fputs(" != ", stdout);
        print_escaped(s, strlen(s));
        putchar('\n');
    }
    return ok;
}

bool unit_check_mem(const void *a, const void *b, size_t len, const char *file,
                    int line, const char *ea, const char *eb)
{
    bool ok = len == 0 || memcmp(a, b, len) == 0;

    if (!ok) {
        report_head(file, line);
        printf("CHECK_MEM_EQ(%s, %s) failed: ", ea, eb);
        print_escaped(a, len);
        fputs(" != ", stdout);
        print_escaped(b, len);
        putchar('\n');
    }
    return ok;
}

void unit_note(const char *file, int line, const char *fmt, ...)
{
    va_list ap;

    printf("  %s:%d: note: ", file, line);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
}

void unit_note_bytes(const char *file, int line, const char *label,
                     const void *data, size_t len)
{
    printf("  %s:%d: note: %s ", file, line, label);
    print_escaped(data, len);
    putchar('\n');
}

void *unit_guard_copy(struct unit_guard *g, const void *data, size_t len)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t pages = (len + page - 1) / page;
    char *map;

    if (pages == 0)
        pages = 1;
    g->map_len = (pages + 1) * page;
    map = mmap(NULL, g->map_len, PROT_READ | PROT_WRITE,
               MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (map == MAP_FAILED) {
        g->map = NULL;
        unit_check(false, __FILE__, __LINE__, "mmap() of the guarded buffer");
        return NULL;
    }
    g->map = map;
    if (mprotect(map + pages * page, page, PROT_NONE) != 0) {
        unit_check(false, __FILE__, __LINE__, "mprotect() of the guard page");
        unit_guard_free(g);
        return NULL;
    }
    memcpy(map + pages * page - len, data, len);
    return map + pages * page - len;
}

void unit_guard_free(struct unit_guard *g)
{
    if (g->map != NULL)
        munmap(g->map, g->map_len);
    g->map = NULL;
}

static bool run_in_process(const struct unit_test *t)
{
    unit_failed_checks = 0;
    t->fn();
    return unit_failed_checks == 0;
}

static bool run_forked(const struct unit_test *t)
{
    pid_t pid;
    int status;

    fflush(stdout);
    fflush(stderr);
    pid = fork();
    if (pid < 0) {
        perror("fork");
        return run_in_process(t);
    }
    if (pid == 0) {
        alarm(UNIT_TIMEOUT);
        bool ok = run_in_process(t);
        fflush(stdout);
        /* exit(), not _exit(): sanitizers' leak checks run at exit. */
        exit(ok ? 0 : 1);
    }
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            perror("waitpid");
            return false;
        }
    }
    if (WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);
        printf("  %s: killed by signal %d (%s)%s\n", t->name, sig, strsignal(sig),
               sig == SIGALRM ? ": timed out" : "");
        return false;
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) > 1)
        printf("  %s: exit status %d\n", t->name, WEXITSTATUS(status));
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

int main(int argc, char **argv)
{
    static const struct unit_test *const tables[] = {
        http_tests, handshake_tests, utf8_tests, utf8_vector_tests, error_tests, deflate_tests, frame_tests,
        proxy_tests, /* scale-out: PROXY protocol, trusted proxies */
        tls_options_tests, /* wss: ws_tls_set_min_version arguments */
    };
    const char *filter = argc > 1 ? argv[1] : NULL;
    const char *nofork = getenv("WSC_UNIT_NOFORK");
    bool fork_each = nofork == NULL || strcmp(nofork, "1") != 0;
    unsigned passed = 0, failed = 0;

    for (size_t i = 0; i < sizeof(tables) / sizeof(tables[0]); i++) {
        for (const struct unit_test *t = tables[i]; t->name != NULL; t++) {
            bool ok;

            if (filter != NULL && strstr(t->name, filter) == NULL)
                continue;
            ok = fork_each ? run_forked(t) : run_in_process(t);
            printf("%s: unit %s\n", ok ? "PASS" : "FAIL", t->name);
            if (ok)
                passed++;
            else
                failed++;
        }
    }
    printf("%u passed, %u failed\n", passed, failed);
    return failed > 0 ? 1 : 0;
}
