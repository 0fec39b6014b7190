/*
 * demo-client.h - the clients rtt-measure --demo measures: libwsc clients
 * on the server's own event_base, so no thread is needed. They connect over
 * real TCP and do nothing themselves: a libwsc client answers every ping
 * with a pong carrying the same payload, which is all rtt-measure needs.
 */
#ifndef DEMO_CLIENT_H
#define DEMO_CLIENT_H

struct demo_client;
struct event_base;

/*
 * Start connecting to host:port (host is a name or a numeric IPv4/IPv6
 * address) on base; the connection is made once that loop runs. index only
 * names the client in error messages. With tls it speaks wss, trusting
 * ca_file (NULL: the system's trust store). Returns NULL after printing why
 * to stderr.
 */
struct demo_client *demo_client_start(struct event_base *base,
                                      const char *host, int port,
                                      unsigned index, int tls, const char *ca_file);

/* After the loop has returned: stop and free the client (its connection,
 * if still there, is dropped). NULL is ignored. */
void demo_client_stop(struct demo_client *dc);

#endif /* DEMO_CLIENT_H */
