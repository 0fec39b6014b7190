/*
 * test-bcast-order.c - broadcasts queued for the flush after a pass and
 * sends made in the same pass to the same connection leave in the order
 * they were made. A broadcast to a connection without a backlog is only
 * chained (written after the callbacks), so a direct send that followed it
 * must not overtake it; large frames (by reference) and small ones
 * (copied) alike, and a slow reader whose socket fills mid-chain gets the
 * rest in order from its backlog. Prints PASS:/FAIL: lines.
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

#define EMBEDTEST_NAME "bcast-order"
#include "embedtest.h"
#include "rawws.h"

#define ROUNDS 200
#define BIG 3000 /* over the by-reference threshold */

static struct ws_server *srv;
static struct ws_conn *listener; /* the second connection: receives only */
static atomic_int opened;

static void on_open(struct ws_conn *c, void *arg)
{
    (void)arg;
    if (atomic_fetch_add(&opened, 1) == 1)
        listener = c; /* loop thread only */
}

/* Every message from the first connection: broadcast "b<i>", send "d<i>"
 * to the listener, broadcast a large "B<i>", send a large "D<i>". */
static void on_data(struct ws_conn *c, enum ws_opcode op, const void *data, size_t len,
                    void *arg)
{
    static char big[BIG];
    char small[32];
    int n;

    (void)op;
    (void)arg;
    if (c == listener || listener == NULL)
        return;
    n = snprintf(small, sizeof(small), "b%.*s", (int)len, (const char *)data);
    ws_server_broadcast(srv, WS_OP_TEXT, small, (size_t)n);
    small[0] = 'd';
    ws_conn_send(listener, WS_OP_TEXT, small, (size_t)n);
    memset(big, 'x', sizeof(big));
    memcpy(big, small, (size_t)n);
    big[0] = 'B';
    ws_server_broadcast(srv, WS_OP_BINARY, big, sizeof(big));
    big[0] = 'D';
    ws_conn_send(listener, WS_OP_BINARY, big, sizeof(big));
}

static void *loop_main(void *arg)
{
    (void)arg;
    ws_server_run(srv);
    return NULL;
}

/* Read the listener's frames: for rounds first..last-1, b<i> d<i> B<i> D<i>. */
static int read_in_order(int fd, int first, int last)
{
    static char payload[BIG + 16];
    static const char tags[4] = { 'b', 'd', 'B', 'D' };

    for (int i = first; i < last; i++) {
        for (int k = 0; k < 4; k++) {
            char want[32];
            int op, n = snprintf(want, sizeof(want), "%c%d", tags[k], i);
            long got = rawws_read_frame(fd, &op, payload, sizeof(payload));
            if (got < n || memcmp(payload, want, (size_t)n) != 0 ||
                (k >= 2 && got != BIG)) {
                printf("# round %d: expected %s, got %ld bytes \"%.*s\"\n", i, want, got,
                       got > 0 ? (int)(got < 12 ? got : 12) : 0, payload);
                return 0;
            }
        }
    }
    return 1;
}

int main(void)
{
    pthread_t loop;
    int port, sender, recvr, slow_ok, fast_ok;
    char num[16];

    setvbuf(stdout, NULL, _IOLBF, 0);
    srv = quiet_server();
    ws_server_handle_open(srv, on_open, NULL);
    ws_server_handle_data(srv, on_data, NULL);
    port = ws_server_listen(srv, "127.0.0.1:0");
    if (srv == NULL || port <= 0 || pthread_create(&loop, NULL, loop_main, NULL) != 0) {
        check(0, "server started");
        return 1;
    }
    sender = rawws_open(port, 5);
    for (int i = 0; i < 5000 && atomic_load(&opened) < 1; i++)
        sleep_ms(1);
    recvr = rawws_open(port, 5);
    for (int i = 0; i < 5000 && atomic_load(&opened) < 2; i++)
        sleep_ms(1);
    check(sender >= 0 && recvr >= 0 && atomic_load(&opened) == 2, "two connections open");

    /* Read as it comes: the chain is written whole at the flush. */
    for (int i = 0; i < ROUNDS / 2; i++) {
        int n = snprintf(num, sizeof(num), "%d", i);
        rawws_send(sender, WS_OP_TEXT, num, (size_t)n);
    }
    fast_ok = read_in_order(recvr, 0, ROUNDS / 2);
    check(fast_ok, "broadcasts and sends of one pass arrive in the order made");

    /* Not read until all are sent: the listener's socket fills, the rest
     * of a chain goes to its backlog and later sends queue behind it. */
    {
        int rcv = 4096;
        setsockopt(recvr, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
    }
    for (int i = ROUNDS / 2; i < ROUNDS; i++) {
        int n = snprintf(num, sizeof(num), "%d", i);
        rawws_send(sender, WS_OP_TEXT, num, (size_t)n);
    }
    sleep_ms(300);
    slow_ok = read_in_order(recvr, ROUNDS / 2, ROUNDS);
    check(slow_ok, "with the reader's socket full, the backlog keeps the order");

    close(sender);
    close(recvr);
    ws_server_stop(srv);
    pthread_join(loop, NULL);
    ws_server_free(srv);
    return failures != 0;
}
