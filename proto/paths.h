/* Where the supervisor of one store lives: its run directory (lock, pid file),
 * its socket directory and the ZeroMQ endpoints in it. Shared by the
 * supervisor, its workers and clients, so all agree on the names. */
#ifndef KACHE_PROTO_PATHS_H
#define KACHE_PROTO_PATHS_H

#include <limits.h>
#include <stddef.h>

#define PROTO_PATH_MAX 4096

struct proto_paths {
	char rundir[PROTO_PATH_MAX];    /* $KACHE_DIR/run: lock, pid file */
	char lock[PROTO_PATH_MAX];      /* flock(LOCK_EX) held by the running supervisor */
	char spawnlock[PROTO_PATH_MAX]; /* held while one is being started */
	char backoff[PROTO_PATH_MAX];   /* spawn back-off, kept in its timestamps (client.c) */
	char pidfile[PROTO_PATH_MAX];
	char sockdir[PROTO_PATH_MAX]; /* rundir, or a short runtime dir when that is too long */
	char ctl[PROTO_PATH_MAX];     /* ROUTER for wrappers and the CLI */
	char wrk[PROTO_PATH_MAX];     /* ROUTER for workers */
	char pub[PROTO_PATH_MAX];     /* PUB of events */
	char logdir[PROTO_PATH_MAX];  /* $KACHE_DIR/logs */
};

/* Fills p for the store at kache_dir (absolute). When a socket path would not
 * fit a Unix socket address (108 bytes), the sockets go to
 * $XDG_RUNTIME_DIR/kache/<hash> or /tmp/kache-<uid>/<hash>. -1 (logged) when
 * even that is too long. Endpoint strings carry the "ipc://" prefix. */
int proto_paths_init(struct proto_paths *p, const char *kache_dir);
/* Creates (when create) and checks the run and socket directories: each must
 * be a real directory owned by us with no group/other access. On failure
 * writes a sentence for the user into err and returns -1. */
int proto_paths_prepare(const struct proto_paths *p, int create, char *err, size_t errlen);
/* 1 when a supervisor holds the lock of this store, 0 when none does, without
 * taking it for more than an instant. Cheap: an open and a flock. */
int proto_supervisor_running(const struct proto_paths *p);
/* 1 while a supervisor is being started (the spawn lock is held, from the
 * wrapper's fork until the new supervisor holds its own lock). */
int proto_supervisor_starting(const struct proto_paths *p);
/* The filesystem path of an "ipc://" endpoint. */
const char *proto_endpoint_file(const char *endpoint);

#endif
