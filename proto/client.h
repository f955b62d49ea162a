/* The wrapper's side of the supervisor: a Lazy Pirate client with one hard
 * absolute deadline per request, and the local-daemon pattern (start one
 * supervisor per store when none runs). libzmq is loaded with dlopen on first
 * use only, so a wrapper linking this never has libzmq in DT_NEEDED and a local
 * hit never pays for it. Nothing here writes to stderr unless logging is on. */
#ifndef KACHE_PROTO_CLIENT_H
#define KACHE_PROTO_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "proto/msg.h"

enum proto_result {
	PROTO_OK,          /* done: for a fetch, the result is now in the local store */
	PROTO_MISS,        /* the supervisor answered: nothing to fetch (or no remote) */
	PROTO_TIMEOUT,     /* no answer before the deadline (supervisor hung or busy) */
	PROTO_UNAVAILABLE, /* no supervisor for this store, or libzmq cannot be loaded */
	PROTO_ERROR,       /* malformed reply, wrong protocol version, error reply */
	PROTO_REFUSED      /* the run or socket directory is not ours alone: not contacted */
};

/* Asks the supervisor to have a fetcher import the remote result(s) for this
 * invocation key (64 hex digits) into the local store. The supervisor must
 * acknowledge by ack_deadline_ms (so a hung one costs at most that), then the
 * result may take until deadline_ms; both are absolute clock_ms() values.
 * Never waits past either. */
enum proto_result proto_client_fetch(const char *kache_dir, const char *inv_key_hex,
    int64_t ack_deadline_ms, int64_t deadline_ms);
/* Tells the supervisor an upload intent was written (the caller writes the
 * durable intent file $KACHE_DIR/intents/<result_key_hex> first). Fire and
 * forget: waits at most a few milliseconds for the acknowledgement, and the
 * supervisor replays intent files anyway. */
void proto_client_notify_upload(const char *kache_dir, const char *result_key_hex);
struct proto_hint;
/* Sends a prefetch hint over the socket (MSG_PREFETCH_HINT), waiting for the
 * acknowledgement until deadline_ms (absolute) at most. The wrapper does not
 * use this: it leaves a hint file (proto_hint_file_write), waiting for nobody;
 * this is for tools and tests that talk to a supervisor directly. */
enum proto_result proto_client_prefetch_hint(const char *kache_dir, const struct proto_hint *h,
    int64_t deadline_ms);
/* When no supervisor runs for kache_dir, starts `kached_path supervisor run`
 * detached (double fork, setsid, stdio on /dev/null) under a lock, so that
 * many wrappers at once start exactly one. Never waits for it to come up.
 * 0 when one runs or is being started, -1 (logged) when it cannot be. */
int proto_supervisor_ensure(const char *kache_dir, const char *kached_path);
/* Starts `kached_path __gc` for kache_dir detached (double fork, a process
 * group of its own in the caller's session, stdio on /dev/null, no other
 * descriptor) and returns at once: the gc of a store no supervisor serves. */
void proto_gc_spawn(const char *kache_dir, const char *kached_path);
/* Waits, never past deadline_ms (absolute clock_ms()), for the supervisor of
 * kache_dir that is being started (proto_supervisor_ensure) to open its
 * control socket: a wrapper's first misses after it started one are then
 * fetched, not compiled. 1 when the socket is there, 0 when none is coming
 * (nothing being started, or it died) or the deadline passed. Polls every 2 ms:
 * a few stats, no libzmq. */
int proto_supervisor_wait(const char *kache_dir, int64_t deadline_ms);
/* proto_supervisor_ensure with force: 1 (`kache supervisor start`) ignoring the
 * spawn back-off. The back-off (run/spawn.backoff): spawns at least 1 s apart,
 * the gap doubling to 5 min while each supervisor dies within 60 s of its
 * spawn, so wrappers do not respawn one that keeps dying. */
int proto_supervisor_start(const char *kache_dir, const char *kached_path, int force);

/* For the CLI: sends req (its id is set here) and waits for the reply with the
 * same id until deadline. PROTO_OK means rep holds a decoded reply (which may
 * be MSG_ERROR); free it with msg_clear. */
enum proto_result proto_client_request(const char *kache_dir, struct msg *req, struct msg *rep,
    int64_t deadline_ms);
/* Called for each MSG_INDEX_PROGRESS the supervisor sends on a long request. */
typedef void (*proto_progress_fn)(const struct msg *progress, void *arg);
/* proto_client_request for a long request (verify, purge, gc): waits as long
 * as progress keeps coming, each report passed to fn, but at most idle_ms
 * after the request or the last report, and never past deadline_ms. */
enum proto_result proto_client_request_long(const char *kache_dir, struct msg *req, struct msg *rep,
    int64_t idle_ms, int64_t deadline_ms, proto_progress_fn fn, void *arg);
/* The check every client makes before it connects, with the supervisor's rule
 * (proto_paths_prepare): the run directory (and a short socket directory with
 * its parent) must be a directory owned by our euid, without group or other
 * access. 0 when safe, or when the store has no run directory yet (nothing to
 * connect to); -1 with a sentence for the user in err. */
int proto_client_check(const char *kache_dir, char *err, size_t errlen);
/* The build epoch this process sends: the mtime of its executable (seconds). */
int64_t proto_client_epoch(void);
const char *proto_result_name(enum proto_result r);

#endif
