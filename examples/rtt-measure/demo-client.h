/*
 * demo-client.h - a tiny WebSocket client for the rtt-measure demo.
 *
 * Each client connects over real TCP, performs the RFC 6455 opening
 * handshake and then, on its own thread with a blocking socket, answers
 * every ping with a pong carrying the same payload. It echoes a close frame
 * and stops. libwsc has no client API (yet); this is just enough of one.
 */
#ifndef DEMO_CLIENT_H
#define DEMO_CLIENT_H

struct demo_client;

/*
 * Connect to host:port (host is a name or a numeric IPv4/IPv6 address) and
 * start the client's thread; the handshake runs there, so the server's loop
 * may start later. index only names the client in error messages. Returns
 * NULL after printing why to stderr.
 */
struct demo_client *demo_client_start(const char *host, int port,
                                      unsigned index);

/* Close the connection, join the thread, free the client. NULL is ignored. */
void demo_client_stop(struct demo_client *dc);

#endif /* DEMO_CLIENT_H */
