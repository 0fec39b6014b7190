/*
 * utf8-bench.c - libwsc's UTF-8 validation in GB/s, per kind of text and per
 * kernel: "bytes" is the byte-at-a-time machine alone (wsc__utf8_feed_scalar,
 * libwsc's validator before the vectors); the others are wsc__utf8_feed with
 * each kernel (scalar: the front end around the byte loop, no vectors).
 *
 *   bench/build/utf8-bench [--size BYTES] [--time SECONDS]
 *
 * Built from libwsc/utf8.c and libwsc/utf8_simd.c directly (their functions
 * are internal). Each figure is the median of 7 timed runs of repeated
 * wsc__utf8_feed() calls over one buffer (16 KiB by default: the message size
 * of the benchmark's scenario 2, and in L1/L2 as a message just read is),
 * after a warm-up. Also: nanoseconds per call on a 22-byte message, the
 * size of scenario 1. One thread; pin it (taskset) on a quiet machine.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

/* Samples, repeated to fill the buffer (cut at a character boundary, the
 * rest ASCII spaces). */
static const struct {
    const char *name;
    const char *sample;
} kinds[] = {
    { "ascii", "The quick brown fox jumps over the lazy dog; {\"id\": 12345, \"ok\": true}. " },
    /* mostly two-byte letters, some ASCII: Polish, Czech, French, German */
    { "latin", "Zażółć gęślą jaźń. Příliš žluťoučký kůň úpěl ďábelské ódy. "
               "Dès Noël où un zéphyr haï me vêt de glaçons würmiens. Größenänderung. " },
    /* three-byte: Chinese, Japanese, Korean, no spaces */
    { "cjk", "我能吞下玻璃而不伤身体。私はガラスを食べられます。それは私を傷つけません。"
             "나는 유리를 먹을 수 있어요. 그래도 아프지 않아요" },
    /* four-byte, with some ZWJ sequences and skin tones (three-byte) */
    { "emoji", "😀😃😄😁😆😅🤣😂🙂🙃😉😊😇🥰😍🤩😘😗👍🏽👩‍💻🧑‍🚀🏳️‍🌈🎉🚀🔥💯" },
};

enum { RUNS = 7 };

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void fill(uint8_t *buf, size_t size, const char *sample)
{
    size_t n = strlen(sample), i = 0;

    while (i + n <= size) {
        memcpy(buf + i, sample, n);
        i += n;
    }
    /* a cut character would make the buffer invalid: ASCII instead */
    while (i < size)
        buf[i++] = ' ';
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Median over RUNS of calls per second on buf[0..size), each run about
 * secs / RUNS long. */
typedef uint32_t feed_fn(uint32_t state, const uint8_t *p, size_t len);

static double calls_per_s(feed_fn *feed, const uint8_t *buf, size_t size, double secs)
{
    double rate[RUNS];
    size_t iters = 1;

    /* warm up, and size the runs */
    for (;;) {
        double t0 = now();
        for (size_t i = 0; i < iters; i++)
            if (feed(WSC__UTF8_ACCEPT, buf, size) != WSC__UTF8_ACCEPT)
                abort();
        if (now() - t0 > secs / RUNS / 4)
            break;
        iters *= 2;
    }
    iters *= 4;
    for (int r = 0; r < RUNS; r++) {
        double t0 = now(), t1;
        for (size_t i = 0; i < iters; i++)
            if (feed(WSC__UTF8_ACCEPT, buf, size) != WSC__UTF8_ACCEPT)
                abort();
        t1 = now();
        rate[r] = (double)iters / (t1 - t0);
    }
    qsort(rate, RUNS, sizeof(rate[0]), cmp_double);
    return rate[RUNS / 2];
}

int main(int argc, char **argv)
{
    static const struct {
        enum wsc__utf8_kernel k; /* "bytes" uses none: any will do */
        const char *name;
        feed_fn *feed;
    } kernels[] = {
        { WSC__UTF8_BEST, "bytes", wsc__utf8_feed_scalar },
        { WSC__UTF8_SCALAR, "scalar", wsc__utf8_feed },
        { WSC__UTF8_SSE41, "sse4.1", wsc__utf8_feed },
        { WSC__UTF8_AVX2, "avx2", wsc__utf8_feed },
    };
    size_t size = 16384;
    double secs = 1.0;
    uint8_t *buf;
    uint8_t small[22];

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--size") == 0 && i + 1 < argc) {
            size = strtoul(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--time") == 0 && i + 1 < argc) {
            secs = strtod(argv[++i], NULL);
        } else {
            fprintf(stderr, "usage: %s [--size BYTES] [--time SECONDS]\n", argv[0]);
            return 2;
        }
    }
    if (size < 64 || secs <= 0) {
        fprintf(stderr, "utf8-bench: --size at least 64, --time above 0\n");
        return 2;
    }
    buf = malloc(size);
    if (buf == NULL)
        return 1;
    printf("UTF-8 validation, %zu-byte buffers, GB/s (10^9 bytes), median of %d runs\n", size,
           RUNS);
    printf("%-8s", "kind");
    for (size_t k = 0; k < sizeof(kernels) / sizeof(kernels[0]); k++)
        printf(" %10s", kernels[k].name);
    printf("\n");
    for (size_t t = 0; t < sizeof(kinds) / sizeof(kinds[0]); t++) {
        fill(buf, size, kinds[t].sample);
        printf("%-8s", kinds[t].name);
        for (size_t k = 0; k < sizeof(kernels) / sizeof(kernels[0]); k++) {
            if (!wsc__utf8_use(kernels[k].k)) {
                printf(" %10s", "n/a");
                continue;
            }
            printf(" %10.2f",
                   calls_per_s(kernels[k].feed, buf, size, secs) *
                       (double)size / 1e9);
            fflush(stdout);
        }
        printf("\n");
    }
    printf("22-byte messages, ns per call\n");
    for (size_t t = 0; t < sizeof(kinds) / sizeof(kinds[0]); t++) {
        fill(small, sizeof(small), kinds[t].sample);
        printf("%-8s", kinds[t].name);
        for (size_t k = 0; k < sizeof(kernels) / sizeof(kernels[0]); k++) {
            if (!wsc__utf8_use(kernels[k].k)) {
                printf(" %10s", "n/a");
                continue;
            }
            printf(" %10.1f", 1e9 / calls_per_s(kernels[k].feed, small, sizeof(small),
                                                secs / 4));
        }
        printf("\n");
    }
    free(buf);
    return 0;
}
