/* ZeroMQ helpers for the processes that link libzmq (supervisor, workers):
 * receive one multipart message with bounded frames, send a catalogue
 * message, optionally behind a routing identity. */
#ifndef KACHE_PROTO_ZIO_H
#define KACHE_PROTO_ZIO_H

#include <stddef.h>

#include "proto/msg.h"

#define ZIO_MAX_FRAMES 4
#define ZIO_IDENT_MAX 256

struct zio_frames {
	int n;         /* frames received (all counted, only the first ZIO_MAX_FRAMES kept) */
	int truncated; /* a frame was larger than MSG_MAX_SIZE */
	size_t len[ZIO_MAX_FRAMES];
	char *data[ZIO_MAX_FRAMES];
};

/* Receives one whole multipart message without blocking. 0, or -1 when
 * nothing was there. Frames beyond ZIO_MAX_FRAMES are read and dropped. */
int zio_recv(void *sock, struct zio_frames *f);
void zio_frames_free(struct zio_frames *f);
/* Sends m as one frame, after a routing identity frame when ident != NULL.
 * Never blocks: a peer that cannot take it loses it. 0 / -1. */
int zio_send(void *sock, const void *ident, size_t identlen, const struct msg *m);
/* Binds a socket of type, after removing a stale socket file. NULL (logged). */
void *zio_bind(void *ctx, int type, const char *endpoint);

#endif
