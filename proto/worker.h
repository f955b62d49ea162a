/* The loop every worker runs after exec: connect to the supervisor, say READY,
 * exchange heartbeats, hand jobs to the role's handler, exit when told or when
 * the supervisor goes silent or dies. A role supplies only its job handler. */
#ifndef KACHE_PROTO_WORKER_H
#define KACHE_PROTO_WORKER_H

#include <stdint.h>

#include "proto/msg.h"

struct proto_worker_ops {
	/* Does one job (MSG_JOB_UPLOAD, MSG_JOB_FETCH) and sets done->status
	 * (enum job_status) and, when useful, done->text. NULL: the role takes
	 * no jobs. */
	void (*job)(void *arg, const struct msg *job, struct msg *done);
	/* Optional: answers a request the supervisor routed from a client (any
	 * type but the above and HEARTBEAT/SHUTDOWN). rep is initialised as
	 * MSG_ERROR with the request's id, which the reply must keep. */
	void (*request)(void *arg, const struct msg *req, struct msg *rep);
	/* Optional: periodic work, run every tick_ms (> 0) from the loop, whose
	 * poll timeout is the nearest of the heartbeat and the tick. */
	void (*tick)(void *arg, int64_t now_ms);
	int64_t tick_ms;
};

/* Runs the worker loop for role/index of the store at kache_dir. Returns the
 * process exit status: 0 after SHUTDOWN, 1 when the supervisor is lost. */
int proto_worker_run(const char *kache_dir, const char *role, unsigned index,
    const struct proto_worker_ops *ops, void *arg);
/* Sends m up to the supervisor from inside a callback of the running worker
 * (events, for one). Also counts as a heartbeat. 0 / -1. */
int proto_worker_send(const struct msg *m);
/* Sends a heartbeat when one is due: long work inside a callback calls it now
 * and then so that the supervisor does not take the worker for hung. */
void proto_worker_beat(void);
/* Long work inside a request callback calls this as often as it likes (every
 * file): it sends the request's client how far it got (MSG_INDEX_PROGRESS:
 * phase, done of total, total 0 when not known) when the phase changes and
 * otherwise at most every PROTO_PROGRESS_MS, and beats when nothing else went
 * up: the one call long work needs. Outside a request it only beats. */
void proto_worker_progress(const char *phase, int64_t done, int64_t total);
/* The heartbeat interval (ms) shared by the supervisor and the workers;
 * KACHE_HEARTBEAT_MS overrides the default of 1000 (tests). */
int64_t proto_heartbeat_ms(void);
/* Opens the log file of a process and rotates it (to .1) when larger than max. */
void proto_logfile_open(const char *path);
void proto_logfile_rotate(const char *path, int64_t max);

#define PROTO_LOG_MAX (4 * 1024 * 1024)
#define PROTO_PROGRESS_MS 250 /* at most four progress reports a second */
#define PROTO_LIVENESS 3      /* intervals of silence before a peer is declared dead */

#endif
