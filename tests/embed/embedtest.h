/*
 * embedtest.h - the setup the embedding tests share (test-ownership,
 * test-lifetime, test-sendto): PASS:/FAIL: lines and their count, a short
 * sleep, a server that leaves signals alone. Define EMBEDTEST_NAME (the
 * word after "PASS: ") before including it.
 */
#ifndef EMBEDTEST_H
#define EMBEDTEST_H

#include <stdio.h>
#include <time.h>

#include <wsc.h>

#ifndef EMBEDTEST_NAME
#error "define EMBEDTEST_NAME before including embedtest.h"
#endif

static int failures;

static inline void check(int ok, const char *what)
{
    printf("%s: " EMBEDTEST_NAME " %s\n", ok ? "PASS" : "FAIL", what);
    fflush(stdout);
    failures += !ok;
}

static inline void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

/* A server that leaves signals alone (several share this process). */
static inline struct ws_server *quiet_server(void)
{
    struct ws_config *cfg = ws_config_new();
    struct ws_server *srv;

    ws_config_set_handle_signals(cfg, 0);
    ws_config_set_close_timeout(cfg, 200); /* raw peers never answer a close */
    srv = ws_server_new(cfg);
    ws_config_free(cfg);
    return srv;
}

#endif
