/*
 * timers.c - every connection deadline of a loop behind one libevent timer.
 *
 * A connection has at most one deadline (handshake, heartbeat, close,
 * keep-alive, linger: conn.c decides what it means when it fires). An
 * embedded struct event for it cost 128 bytes per connection, idle or not;
 * here a connection costs one heap slot (16 bytes) while it has a deadline
 * and a 4-byte position always. The loop keeps a binary min-heap ordered by
 * deadline and one timer event set to the earliest. Deadlines are exact
 * (no wheel ticks), so every timeout keeps the meaning it had.
 *
 * Loop thread only, like the rest of a connection's I/O state.
 */
#include <stdlib.h>
#include <time.h>

#include <event2/event.h>

#include "internal.h"

struct wsc__deadline {
    uint64_t due_us;        /* CLOCK_MONOTONIC, microseconds */
    struct ws_conn *conn;
};

static uint64_t monotonic_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void heap_place(struct wsc__loop *l, size_t i, struct wsc__deadline d)
{
    l->timers[i] = d;
    d.conn->timer_slot = (uint32_t)i + 1;
}

static void heap_up(struct wsc__loop *l, size_t i)
{
    struct wsc__deadline d = l->timers[i];

    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (l->timers[parent].due_us <= d.due_us)
            break;
        heap_place(l, i, l->timers[parent]);
        i = parent;
    }
    heap_place(l, i, d);
}

static void heap_down(struct wsc__loop *l, size_t i)
{
    struct wsc__deadline d = l->timers[i];
    size_t n = l->num_timers;

    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= n)
            break;
        if (child + 1 < n && l->timers[child + 1].due_us < l->timers[child].due_us)
            child++;
        if (d.due_us <= l->timers[child].due_us)
            break;
        heap_place(l, i, l->timers[child]);
        i = child;
    }
    heap_place(l, i, d);
}

static void heap_remove(struct wsc__loop *l, size_t i)
{
    struct ws_conn *gone = l->timers[i].conn;

    gone->timer_slot = 0;
    if (--l->num_timers == i)
        return;
    l->timers[i] = l->timers[l->num_timers];
    l->timers[i].conn->timer_slot = (uint32_t)i + 1;
    if (i > 0 && l->timers[(i - 1) / 2].due_us > l->timers[i].due_us)
        heap_up(l, i);
    else
        heap_down(l, i);
}

/* Point the loop's timer at the earliest deadline (none: leave it; a
 * wake-up that finds nothing due costs one comparison). */
static void schedule(struct wsc__loop *l, uint64_t now)
{
    uint64_t wait;
    struct timeval tv;

    if (l->num_timers == 0 || l->timer_ev == NULL)
        return;
    wait = l->timers[0].due_us > now ? l->timers[0].due_us - now : 0;
    tv.tv_sec = (time_t)(wait / 1000000u);
    tv.tv_usec = (suseconds_t)(wait % 1000000u);
    evtimer_add(l->timer_ev, &tv);
}

/* Fire what is due. A deadline set while firing (even "at once") waits for
 * the next pass, as a re-added libevent timer would: no callback can keep
 * this walk going. The loop reference survives an endpoint freed from a
 * callback; once it is dead there is nothing left to fire. */
static void timers_on_expiry(evutil_socket_t fd, short what, void *arg)
{
    struct wsc__loop *l = arg;
    uint64_t now = monotonic_us();

    (void)fd;
    (void)what;
    wsc__loop_enter(l);
    wsc__loop_ref(l);
    l->timer_walk_now = now;
    while (!l->dead && l->num_timers > 0 && l->timers[0].due_us <= now) {
        struct ws_conn *c = l->timers[0].conn;
        heap_remove(l, 0);
        wsc__conn_on_timer(c);
    }
    l->timer_walk_now = 0;
    if (!l->dead)
        schedule(l, monotonic_us());
    wsc__loop_unref(l);
}

/* Each live connection holds a slot in advance, so arming never fails
 * halfway through a state change; the array shrinks as they go. */
int wsc__timers_reserve(struct ws_conn *c)
{
    struct wsc__loop *l = c->loop;

    if (l->timer_ev == NULL)
        return -1;
    if (l->timers_reserved == l->cap_timers) {
        size_t cap = l->cap_timers ? l->cap_timers * 2 : 64;
        struct wsc__deadline *t = realloc(l->timers, cap * sizeof(*t));
        if (t == NULL)
            return -1;
        l->timers = t;
        l->cap_timers = cap;
    }
    l->timers_reserved++;
    c->timer_reserved = true;
    return 0;
}

void wsc__timers_unreserve(struct ws_conn *c)
{
    struct wsc__loop *l = c->loop;

    if (!c->timer_reserved)
        return;
    wsc__conn_disarm_timer(c);
    c->timer_reserved = false;
    if (l->timer_ev == NULL)
        return; /* freed with the loop */
    l->timers_reserved--;
    if (l->cap_timers > 64 && l->timers_reserved < l->cap_timers / 4) {
        struct wsc__deadline *t = realloc(l->timers, l->cap_timers / 2 * sizeof(*t));
        if (t != NULL) { /* else keep the larger one */
            l->timers = t;
            l->cap_timers /= 2;
        }
    }
}

int wsc__timers_init(struct wsc__loop *l)
{
    l->timer_ev = evtimer_new(l->base, timers_on_expiry, l);
    return l->timer_ev != NULL ? 0 : -1;
}

void wsc__timers_free(struct wsc__loop *l)
{
    for (size_t i = 0; i < l->num_timers; i++)
        l->timers[i].conn->timer_slot = 0;
    free(l->timers);
    l->timers = NULL;
    l->num_timers = l->cap_timers = l->timers_reserved = 0;
    if (l->timer_ev != NULL)
        event_free(l->timer_ev);
    l->timer_ev = NULL;
}

void wsc__conn_arm_timer(struct ws_conn *c, unsigned ms)
{
    struct wsc__loop *l = c->loop;
    uint64_t now = monotonic_us();
    struct wsc__deadline d = { now + (uint64_t)ms * 1000u, c };
    size_t i;

    if (!c->timer_reserved || l->timer_ev == NULL)
        return; /* released, or the loop is dead: nothing would fire it */
    if (c->write_failed)
        d.due_us = now; /* the teardown wsc__io_fail asked for: no state change delays it */
    if (l->timer_walk_now != 0 && d.due_us <= l->timer_walk_now)
        d.due_us = l->timer_walk_now + 1;
    if (c->timer_slot != 0) {
        i = c->timer_slot - 1;
        uint64_t old = l->timers[i].due_us;
        l->timers[i].due_us = d.due_us;
        if (d.due_us < old)
            heap_up(l, i);
        else
            heap_down(l, i);
    } else {
        i = l->num_timers++;
        l->timers[i] = d;
        heap_up(l, i);
    }
    /* Only a new earliest deadline moves the loop's timer; in a walk the
     * walk reschedules once at its end. */
    if (c->timer_slot == 1 && l->timer_walk_now == 0)
        schedule(l, now);
}

void wsc__conn_disarm_timer(struct ws_conn *c)
{
    if (c->timer_slot != 0)
        heap_remove(c->loop, c->timer_slot - 1);
}

void wsc__conn_set_timeout(struct ws_conn *c, unsigned ms)
{
    if (ms > 0 || c->write_failed)
        wsc__conn_arm_timer(c, ms);
    else
        wsc__conn_disarm_timer(c);
}
