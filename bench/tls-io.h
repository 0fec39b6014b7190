/*
 * tls-io.h - wsc-bench's TLS client side (wss:// targets): OpenSSL on a
 * non-blocking socket the caller's epoll loop owns.
 *
 * Reads go straight from the socket (a socket BIO). Writes go through a
 * BIO of ours that writes the ciphertext to the socket at once and queues
 * what the socket does not take, so SSL_write never stops half-way:
 * tls_io_write() always takes the whole buffer, and the caller holds back
 * new data until tls_io_flush() says the queue is empty. wsc-bench's frame
 * accounting stays the same as over plain TCP.
 */
#ifndef WSC_BENCH_TLS_IO_H
#define WSC_BENCH_TLS_IO_H

#include <stddef.h>
#include <sys/types.h>

struct tls_io;

/* The client context: verify against ca_file, or not at all if insecure.
 * Returns 0, or -1 with the reason on stderr. */
int tls_io_init(const char *ca_file, int insecure);

/* Cap the protocol version ("1.2" or "1.3"); after tls_io_init. 0 or -1. */
int tls_io_max_version(const char *version);

/* A TLS session on connected socket fd, SNI and verified name sni; NULL on
 * failure. */
struct tls_io *tls_io_new(int fd, const char *sni);

/* Drive the handshake: 1 done, 0 waiting for the socket, -1 failed (the
 * reason in tls_io_why()). */
int tls_io_handshake(struct tls_io *t);

/* Like read(2) on the socket: -1 with errno EAGAIN when blocked, 0 at the
 * end of the stream. tls_io_write takes all len bytes (queueing what the
 * socket does not take) or fails with -1. */
ssize_t tls_io_read(struct tls_io *t, void *buf, size_t len);
ssize_t tls_io_write(struct tls_io *t, const void *buf, size_t len);

/* Write queued ciphertext: 1 none left, 0 blocked, -1 failed. */
int tls_io_flush(struct tls_io *t);

const char *tls_io_why(const struct tls_io *t);

/* "TLSv1.3 TLS_AES_256_GCM_SHA384": what the handshake agreed on. */
void tls_io_describe(const struct tls_io *t, char *buf, size_t len);
void tls_io_free(struct tls_io *t);

#endif
