/* libzmq through dlopen: the wrapper must not pay for loading libzmq on a
 * local hit, so it never links it. zmq_dl_load() opens "libzmq.so.5" on first
 * use and resolves the few functions the client needs. The types and
 * constants below are the stable ZeroMQ 4.x ABI, copied so that no zmq.h is
 * needed. */
#ifndef KACHE_PROTO_ZMQ_DL_H
#define KACHE_PROTO_ZMQ_DL_H

#include <stddef.h>

#define ZDL_DEALER 5
#define ZDL_LINGER 17
#define ZDL_SNDMORE 2
#define ZDL_DONTWAIT 1
#define ZDL_POLLIN 1
#define ZDL_RCVMORE 13
#define ZDL_MAXMSGSIZE 22
#define ZDL_IMMEDIATE 39

struct zdl_pollitem {
	void *socket;
	int fd;
	short events;
	short revents;
};

struct zmq_dl {
	void *(*ctx_new)(void);
	int (*ctx_term)(void *);
	void *(*socket)(void *, int);
	int (*close)(void *);
	int (*setsockopt)(void *, int, const void *, size_t);
	int (*getsockopt)(void *, int, void *, size_t *);
	int (*connect)(void *, const char *);
	int (*send)(void *, const void *, size_t, int);
	int (*recv)(void *, void *, size_t, int);
	int (*poll)(struct zdl_pollitem *, int, long);
	int (*errno_)(void);
	const char *(*strerror)(int);
};

/* The loaded functions, or NULL (logged once) when libzmq cannot be loaded.
 * Loads at most once per process. */
const struct zmq_dl *zmq_dl_load(void);

#endif
