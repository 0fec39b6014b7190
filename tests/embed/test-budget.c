/*
 * test-budget.c - the server-wide output budget (max_buffered_total) seen
 * from a thread that is not the loop's: a sender thread fills the budget
 * towards a peer that does not read, gets WS_EAGAIN, and must get the
 * drain callback once the peer reads (the refusal happens on the sender's
 * thread, where the endpoint cannot be reached; the wait is recorded on
 * the loop object). Also the other side of the limit: below the budget
 * the same sends are accepted. Prints PASS:/FAIL: lines.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <wsc.h>

#define EMBEDTEST_NAME "budget"
#include "embedtest.h"
#include "rawws.h"

#define BUDGET (64u * 1024u)
#define MSG 8192
#define SEND_LIMIT (256u << 20) /* bytes: a bound, never reached when it works */

static struct ws_server *srv;
static _Atomic(struct ws_conn *) conn;
static atomic_int drained;

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void on_open(struct ws_conn *c, void *arg)
{
    (void)arg;
    ws_conn_ref(c);
    atomic_store(&conn, c);
}

static void on_drain(struct ws_conn *c, void *arg)
{
    (void)c;
    (void)arg;
    atomic_store(&drained, 1);
}

static void *loop_main(void *arg)
{
    (void)arg;
    ws_server_run(srv);
    return NULL;
}

int main(void)
{
    static char msg[MSG];
    struct ws_config *cfg = ws_config_new();
    pthread_t loop;
    struct ws_conn *c = NULL;
    size_t sent = 0;
    int port, fd, rc = 0;
    double deadline;

    setvbuf(stdout, NULL, _IOLBF, 0);
    ws_config_set_max_buffered_total(cfg, BUDGET);
    ws_config_set_max_buffered(cfg, 16u << 20); /* only the budget can refuse */
    ws_config_set_deflate(cfg, 0);
    ws_config_set_handle_signals(cfg, 0);
    srv = ws_server_new(cfg);
    ws_config_free(cfg);
    ws_server_handle_open(srv, on_open, NULL);
    ws_server_handle_drain(srv, on_drain, NULL);
    port = ws_server_listen(srv, "127.0.0.1:0");
    if (srv == NULL || port <= 0 || pthread_create(&loop, NULL, loop_main, NULL) != 0) {
        check(0, "server started");
        return 1;
    }
    fd = rawws_open(port, 5);
    for (deadline = now_s() + 5; (c = atomic_load(&conn)) == NULL && now_s() < deadline;)
        sleep_ms(1);
    check(fd >= 0 && c != NULL, "connection open");
    if (c == NULL)
        return 1;

    /* This thread is not the loop's: send until the budget refuses. */
    memset(msg, 'b', sizeof(msg));
    deadline = now_s() + 20;
    while (sent < SEND_LIMIT && now_s() < deadline) {
        rc = ws_conn_send(c, WS_OP_BINARY, msg, sizeof(msg));
        if (rc != 0)
            break;
        sent += sizeof(msg);
    }
    check(sent > 0, "sends below the budget are accepted");
    check(rc == WS_EAGAIN, "the budget refuses with WS_EAGAIN");
    /* Refused only near the budget: a refusal means what is outstanding
     * (at most all that was accepted) plus this message passed it. (What is
     * buffered now is no measure: the loop goes on writing to the kernel.) */
    check(sent + MSG + 4 > BUDGET, "refused only once the output is near the budget");
    printf("# refused after %zu bytes, %zu buffered\n", sent, ws_conn_buffered_amount(c));

    /* The peer reads: output falls under half the budget, drain follows. */
    deadline = now_s() + 20;
    while (!atomic_load(&drained) && now_s() < deadline) {
        char buf[65536];
        if (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) <= 0)
            sleep_ms(1);
    }
    check(atomic_load(&drained), "the drain callback follows when the peer reads");
    check(ws_conn_send(c, WS_OP_BINARY, msg, sizeof(msg)) == 0, "a send after the drain is accepted");

    close(fd);
    ws_server_stop(srv);
    pthread_join(loop, NULL);
    ws_conn_unref(c);
    ws_server_free(srv);
    return failures != 0;
}
