/* The loop every worker runs after exec: connect to the supervisor, say READY,
 * exchange heartbeats, hand jobs to the role's handler, exit when told or when
 * the supervisor goes silent or dies. A role supplies only its job handler. */
#ifndef KACHE_PROTO_WORKER_H
#define KACHE_PROTO_WORKER_H

#include <stdint.h>

#include "proto/msg.h"

struct proto_worker_ops {
	/* Does one job (MSG_JOB_UPLOAD, MSG_JOB_FETCH) and sets done->status
	 * (enum job_status) and, when useful, done->text. */
	void (*job)(void *arg, const struct msg *job, struct msg *done);
};

/* Runs the worker loop for role/index of the store at kache_dir. Returns the
 * process exit status: 0 after SHUTDOWN, 1 when the supervisor is lost. */
int proto_worker_run(const char *kache_dir, const char *role, unsigned index,
    const struct proto_worker_ops *ops, void *arg);
/* The heartbeat interval (ms) shared by the supervisor and the workers;
 * KACHE_HEARTBEAT_MS overrides the default of 1000 (tests). */
int64_t proto_heartbeat_ms(void);
/* Opens the log file of a process and rotates it (to .1) when larger than max. */
void proto_logfile_open(const char *path);
void proto_logfile_rotate(const char *path, int64_t max);

#define PROTO_LOG_MAX (4 * 1024 * 1024)
#define PROTO_LIVENESS 3 /* intervals of silence before a peer is declared dead */

#endif
