/* Shared between the supervisor's own files; nobody else includes this.
 * Layers, each calling only those below it:
 *   supervisor.c (the loop, requests, reload, stop)
 *   sup_jobs.c (uploads, fetches)   sup_route.c (index requests)   sup_status.c
 *   sup_workers.c (slots: spawn, reap, back-off, heartbeats)   sup_roles.c
 *   sup_io.c (replies to clients, events on the PUB socket, the rate-limited
 *             log of bad messages)
 * sup_cli.c and sup_flush.c are the other side: clients of a running one.
 * What a worker sends up is handed back to the loop (workers_on_message), and
 * a job whose worker died is left in s->lost for the loop: nothing below
 * calls up. */
#ifndef KACHE_SUPERVISOR_INTERNAL_H
#define KACHE_SUPERVISOR_INTERNAL_H

/* Longest a busy worker may stay silent (one upload or fetch) before it is
 * taken for hung and replaced. */
#define SUP_JOB_MAX_MS (10 * 60 * 1000)
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/config.h"
#include "common/exit.h"
#include "proto/msg.h"
#include "proto/paths.h"
#include "proto/zio.h"
#include "supervisor/supervisor.h"

#define SUP_MAX_WORKERS 64
#define SUP_BACKOFF_MIN_MS 1000
#define SUP_BACKOFF_MAX_MS 60000
#define SUP_DEATH_WINDOW_MS 60000
#define SUP_DEATH_LIMIT 5
#define SUP_STABLE_MS 10000 /* up this long: the next death is not a fast one */
#define SUP_DRAIN_MS 10000  /* stop: longest wait for queued uploads */
#define SUP_GRACE_MS 3000   /* stop: SHUTDOWN to SIGKILL */
#define SUP_MAINT_MS 500    /* maintenance tick: config, binary, idle, hint files */
#define SUP_BADLOG_MS 5000  /* bad messages: one line, then a count this often */
#define SUP_ALREADY 200     /* setup: another supervisor holds the store (exit 0) */

enum role { ROLE_UPLOADER = 0, ROLE_FETCHER, ROLE_INDEXER, ROLE_PREFETCH, ROLE_COUNT };
enum wstate { W_STARTING, W_READY, W_BUSY, W_BACKOFF, W_FAILED, W_STOPPING };

struct job;

/* The prefetch sessions' numbers since start (status: "prefetch"). */
struct prefetch_counts {
	long hints, malformed, dropped, sessions, done, failed;
	long retried; /* sessions handed again after their worker exited (once each) */
	/* early hints (cargo's first question); compile hints an early session
	 * had served already (its exact session manifest), not run again */
	long early, early_served;
	long dropped_off, dropped_busy, dropped_full, dropped_stale; /* why dropped */
	long dropped_replaced; /* an early hint, or a waiting one, a compile's replaced */
	long packs, bytes, present, over_cap, rejected, failed_packs, list_failed, refused;
	long hits; /* compiles served from entries prefetch imported (the indexer's events) */
	/* where sessions took their candidates (workers/prefetch/prefetch_plan.c) */
	long from_exact, from_closest, from_packs, from_planner, last_shared, garbage_sessions;
	long parts, packs_parts; /* bundle parts read, packs they brought */
	/* packs imported, by the session's source */
	long packs_exact, packs_closest, packs_packs, packs_planner;
};

struct slot {
	enum role role;
	unsigned index;
	enum wstate state;
	pid_t pid;
	int64_t spawned_ms, ready_ms, last_seen_ms, next_spawn_ms, backoff_ms;
	int64_t window_start_ms;
	int window_deaths;
	unsigned restarts;
	uint64_t jobs_done;
	char last_exit[96];
	char ident[ZIO_IDENT_MAX];
	size_t identlen;
	struct job *job; /* in flight, or NULL */
	int retire;      /* scaled away: drop the slot when it exits */
	int deferred;    /* never spawned yet: waits for its role's first job
	                  * (workers_wake) or next_spawn_ms, whichever is first */
	int killed_silent;
};

struct supervisor {
	char kache_dir[PROTO_PATH_MAX];
	char exe[PROTO_PATH_MAX];
	struct proto_paths paths;
	struct config *cfg;
	int64_t cfg_mtime;
	int64_t exe_mtime;
	void *ctx, *ctl, *wrk, *pub;
	int sigfd, lockfd;
	int detached;
	struct slot slots[SUP_MAX_WORKERS];
	int nslots;
	int wanted[ROLE_COUNT];
	int configured[ROLE_COUNT]; /* what the configuration asks for */
	int scaled[ROLE_COUNT];     /* run/scale (sup_scale.c); -1: not scaled */
	struct jobs *jobs;
	int remote_none;
	int64_t hb_ms, next_hb, next_maint, started_ms, started_wall_ms, last_activity;
	int64_t idle_timeout_ms;
	int death_limit;
	int stopping; /* 1 draining, 2 shutting workers down */
	int64_t drain_deadline, kill_deadline;
	int reexec, done;
	int64_t next_rescan;
	struct job *lost[SUP_MAX_WORKERS]; /* jobs of workers that died, for the loop */
	int nlost;
	struct routes *routes;
	struct prefetches *prefetches;
	int64_t bad_next; /* bad messages are not logged one by one before this */
	long bad_suppressed;
	/* sup_zygote.c: the zygote's socket and pid (-1: none), when the next
	 * may start, whether it may at all; workers forked by it or exec'd */
	int zfd;
	pid_t zpid;
	int64_t znext_ms;
	int zygote_ok;
	long spawned_forked, spawned_exec;
};

/* sup_zygote.c: workers forked by a pristine `kached __zygote` instead of
 * exec'd. zygote_init once the configuration is read (the supervisor becomes
 * the subreaper the workers are handed to); zygote_spawn: the worker's pid,
 * or -1 when the zygote cannot (off, failed, not yet due again): exec it then;
 * zygote_reaped: 1 when pid was the zygote's (it is started again later);
 * zygote_stop: at the end (the zygote ends with its socket). */
void zygote_init(struct supervisor *s);
pid_t zygote_spawn(struct supervisor *s, enum role r, unsigned index, int logfd, int64_t now);
int zygote_reaped(struct supervisor *s, pid_t pid);
void zygote_stop(struct supervisor *s);

/* sup_io.c: below everything else */
void sup_reply(struct supervisor *s, const void *ident, size_t identlen, const struct msg *m);
void sup_error_reply(struct supervisor *s, const void *ident, size_t identlen, uint64_t id,
    int code, const char *text);
/* Publishes an event (enum msg_event) on the PUB socket for live monitors. */
void sup_publish(struct supervisor *s, int event, const char *key);
/* Logs a bad message (garbage from a wrapper, a worker or a stranger), rate
 * limited: a flood costs a line and a count per SUP_BADLOG_MS. */
void sup_bad_message(struct supervisor *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* The count of the bad messages not logged, once SUP_BADLOG_MS has passed. */
void sup_bad_summary(struct supervisor *s, int64_t now);

/* sup_watchdog.c: a thread (started once the signals are blocked, so that
 * none is delivered to it) that ends the supervisor when its loop has not
 * gone round (sup_watchdog_beat) for the limit set (ms of on-time seconds;
 * <= 0: off; set again on a reload). */
void sup_watchdog_set(int64_t limit_ms);
int sup_watchdog_start(void);
void sup_watchdog_beat(void);
/* One tick of the watchdog at now, the loop's count being now_beats: 1 when
 * the loop has stood still for limit ms of ticks that came on time (a tick
 * late by seconds means the whole process was frozen: the count restarts). */
struct sup_watch {
	int64_t limit, then;
	uint64_t seen;
	int64_t still;
};
int sup_watchdog_step(struct sup_watch *w, int64_t now, uint64_t now_beats);

/* sup_roles.c */
const char *role_name(enum role r);
int role_from_name(const char *name);
/* How many workers of role r may run: a fixed count (the indexer: 1, as the
 * index takes one writer), or -1 when scale may set any. */
int role_fixed_count(enum role r);

/* sup_scale.c: run-time scale kept in run/scale across restarts and re-execs */
/* Reads run/scale into s->scaled (-1 for a role not scaled); a damaged file
 * is ignored whole, logged once. */
void scale_load(struct supervisor *s);
/* Records role r scaled to n (n equal to its configured count clears it) and
 * writes run/scale (temp + rename; removed when nothing is scaled). 0 / -1. */
int scale_save(struct supervisor *s, enum role r, int n);
/* The count role r runs at: its scale when set, else its configured count. */
int scale_wanted(const struct supervisor *s, enum role r);

/* sup_workers.c: the slots */
void workers_init(struct supervisor *s);
void workers_resize(struct supervisor *s, enum role r, int n);
void workers_tick(struct supervisor *s, int64_t now);
void workers_reap(struct supervisor *s);
/* Takes one message from the worker socket: READY and heartbeats are dealt
 * with here; anything else from a known worker (JOB_DONE, EVENT, a reply to a
 * routed request) is decoded into *m for the loop, with *from its slot, and 1
 * is returned (the caller msg_clears m). 0 when nothing is left for the loop. */
int workers_on_message(struct supervisor *s, const struct zio_frames *f, struct slot **from,
    struct msg *m);
void workers_shutdown_all(struct supervisor *s);
void workers_kill_all(struct supervisor *s);
int workers_alive(const struct supervisor *s);
int64_t workers_next_deadline(const struct supervisor *s, int64_t now);
const char *wstate_name(enum wstate st);
/* Role r's slots that wait for a first job (workers_init) are due now. */
void workers_wake(struct supervisor *s, enum role r);
/* An idle ready worker of role, least recently busy first; NULL when none. */
struct slot *workers_idle(struct supervisor *s, enum role r);
/* 1 when some worker of role is up (ready or busy). */
int workers_any_up(const struct supervisor *s, enum role r);
int workers_any_coming(const struct supervisor *s, enum role r);
/* 0 when no worker of role can run (none wanted, or every one failed). */
int workers_can_run(const struct supervisor *s, enum role r);
int workers_send(struct supervisor *s, struct slot *w, const struct msg *m);

/* sup_jobs.c: intents, the upload queue and pending fetches */
void jobs_new(struct supervisor *s);
void jobs_free(struct supervisor *s);
void jobs_scan_intents(struct supervisor *s);
void jobs_notify(struct supervisor *s, const char *key);
void jobs_fetch(struct supervisor *s, const void *ident, size_t identlen, const struct msg *req);
void jobs_dispatch(struct supervisor *s, int64_t now);
void jobs_done(struct supervisor *s, struct slot *w, const struct msg *done);
/* Takes up the jobs of workers that died (s->lost): uploads go back to the
 * queue, fetches miss. */
void jobs_take_lost(struct supervisor *s);
void jobs_counts(const struct supervisor *s, long *queued, long *inflight, long *fetches);
int jobs_idle(const struct supervisor *s);
/* 1 while uploads are paused because the remote refused an uploader for good. */
int jobs_remote_off(const struct supervisor *s);
/* How uploads and fetches ended since start, indexed by enum job_status (ok,
 * miss, failed, remote off); fetches answered after the wrapper's deadline
 * and fetches not tried while the breaker is open apart. */
#define JOBS_OUTCOMES 4
struct jobs_outcomes {
	long upload[JOBS_OUTCOMES], fetch[JOBS_OUTCOMES];
	long fetch_late, fetch_skipped;
};
const struct jobs_outcomes *jobs_outcomes(const struct supervisor *s);
/* 1 while wrappers' fetches are not tried: the remote failed several in a
 * row, or could not be reached, and no probe found it answering since. */
int jobs_fetch_breaker_open(const struct supervisor *s);
/* MSG_FLUSH: fills rep (MSG_FLUSH_REPLY). */
void jobs_flush(struct supervisor *s, const struct msg *req, struct msg *rep);
/* The configuration changed: uploads paused for a switched-off remote resume,
 * and an open fetch breaker closes (the next fetch tries the remote). */
void jobs_remote_reset(struct supervisor *s);

/* sup_route.c: index requests, routed from clients to the indexer and back */
void route_new(struct supervisor *s);
void route_free(struct supervisor *s);
/* Forwards req (an INDEX_* request) to the indexer, or queues it while the
 * indexer is starting; the reply comes back through route_reply. */
void route_request(struct supervisor *s, const void *ident, size_t identlen, const struct msg *req);
/* A reply (INDEX_REPLY or ERROR) from the indexer: sent on to its client. */
void route_reply(struct supervisor *s, struct slot *w, const struct msg *m);
/* An INDEX_PROGRESS from the indexer: sent on to the client of the request,
 * whose deadline moves another job limit on (within a cap of a day). */
void route_progress(struct supervisor *s, struct slot *w, const struct msg *m);
/* Sends what waited for the indexer, fails what waited too long or whose
 * indexer died, and keeps the indexer's slot busy while it works. */
void route_tick(struct supervisor *s, int64_t now);
/* The nearest time route_tick has something to do. */
int64_t route_next_deadline(const struct supervisor *s, int64_t now);

/* sup_manifest.c: saves the store's session manifests (after ingesting the
 * journal). quiet: `supervisor stop` (says only what was saved; the job's
 * records of what it saved are then forgotten: remote_session_save_job). An
 * exit status. */
struct config;
int sup_save_manifests(const struct config *cfg, int quiet);

/* sup_cli.c: the last warning in the log of worker role.index of the store
 * at dir (its text after "warn: "), at most n bytes; "" when none. */
void sup_worker_warning(const char *dir, const char *role, long long index, char *out, size_t n);

/* sup_prefetch.c: prefetch hints, one session per workspace and mode at a time */
void prefetch_new(struct supervisor *s);
void prefetch_free(struct supervisor *s);
/* MSG_PREFETCH_HINT: queued for the prefetch worker, or dropped (counted). */
void prefetch_hint(struct supervisor *s, const struct msg *req);
/* The inotify descriptor on run/hints for the poll loop, or -1. */
int prefetch_hint_fd(const struct supervisor *s);
/* Takes the hint files wrappers left in run/hints (proto/hint.h): at start,
 * when the descriptor is readable, and every maintenance tick. */
void prefetch_take_hints(struct supervisor *s);
/* Every minute (from the maintenance tick): removes the cargo links of
 * commands gone (proto_hint_sweep_links). */
void prefetch_sweep(struct supervisor *s, int64_t now);
/* The indexer ingested a hit on an entry prefetch imported (EVENT_PREFETCH_HIT). */
void prefetch_note_hit(struct supervisor *s);
/* Sends queued hints to idle prefetch workers; fails sessions whose worker died. */
void prefetch_tick(struct supervisor *s);
/* JOB_DONE from a prefetch worker. */
void prefetch_done(struct supervisor *s, struct slot *w, const struct msg *done);
const struct prefetch_counts *prefetch_counts(const struct supervisor *s);
/* 1 when no session is queued or running. */
int prefetch_idle(const struct supervisor *s);
/* Sessions queued or running, and compile hints waiting for an early session. */
long prefetch_queued(const struct supervisor *s);

/* sup_status.c */
char *status_json(const struct supervisor *s);

/* supervisor.c: `supervisor run`, the whole life of a supervisor. Returns the
 * exit status; re-executes itself instead when a newer binary asked for it. */
int sup_run(int detached);

/* sup_cli.c: starts one unless one answers; 0 or an exit status */
int sup_start(const char *dir, int quiet);

/* sup_flush.c: the user's side of a flush (a client of the supervisor) */
/* --timeout (flag, may be NULL) else remote.flush_timeout, in ms; -1 when bad (said) */
int64_t sup_flush_timeout(const struct config *cfg, const char *flag);
/* 0 when every intent reached the remote, 1 when some are left (said) */
int sup_flush(const char *dir, int64_t timeout_ms);

#endif
