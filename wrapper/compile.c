/* One rustc invocation: decide the order (local hit, a store under way,
 * remote fetch, compile) and talk to the supervisor. The hit lives in hit.c,
 * the compile and store in miss.c. Any failure before rustc runs falls back
 * to rustc. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/path.h"
#include "proto/client.h"
#include "store/journal.h"
#include "store/pending.h"
#include "wrapper/wrapper.h"

#define PENDING_WAIT_MS 5000
/* A supervisor that left a fetch unacknowledged for the whole of
 * wrapper.deadline_ms (hung or stopped) is remembered in run/fetch.unanswered
 * for UNANSWERED_MS: the misses after it wait only UNANSWERED_ACK_MS for
 * theirs, so that it costs a build one long wait and not one per miss. A
 * loaded but healthy supervisor answers within the long wait, and the next
 * answer anyone gets removes the mark. */
#define UNANSWERED_MS 10000
#define UNANSWERED_ACK_MS 50

static int unanswered_recently(const char *mark);
static void unanswered_note(const char *mark, int timed_out, int seen);
static int try_remote(struct wrapper *w);
static int wait_pending(struct wrapper *w);

char *
wrapper_beside(const char *rel)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	char *dir, *path;

	if (n <= 0)
		return NULL;
	self[n] = '\0';
	dir = path_dirname(self);
	path = path_join(dir, rel);
	free(dir);
	return path;
}

char *
wrapper_kached_path(void)
{
	return wrapper_beside("kached");
}

void
wrapper_journal(struct wrapper *w, enum journal_type t, const char *reason,
    const unsigned char *res, uint64_t ms, uint64_t bytes)
{
	struct journal_event ev;

	memset(&ev, 0, sizeof ev);
	ev.type = t;
	snprintf(ev.crate, sizeof ev.crate, "%s", w->args.crate_name ? w->args.crate_name : "");
	snprintf(ev.reason, sizeof ev.reason, "%s", reason ? reason : "");
	ev.has_inv = 1;
	memcpy(ev.inv, w->inv, HASH_LEN);
	if (res) {
		ev.has_res = 1;
		memcpy(ev.res, res, HASH_LEN);
	}
	ev.ms = ms;
	ev.bytes = bytes;
	snprintf(ev.ws, sizeof ev.ws, "%s", w->ws);
	ev.local_only = w->local_only;
	wrapper_journal_append(w->store, &ev, w->start_us);
}

void
wrapper_journal_append(struct store *s, struct journal_event *ev, int64_t start_us)
{
	const char *ver;

	/* the package's version, as cargo tells every compiler it runs */
	if ((ver = getenv("CARGO_PKG_VERSION")) != NULL && journal_version_valid(ver))
		snprintf(ev->version, sizeof ev->version, "%s", ver);
	/* kache's own time: a miss's compile time is the compiler's, not ours */
	ev->us = (uint64_t)(clock_us() - start_us);
	if (ev->type == JOURNAL_MISS && ev->us > ev->ms * 1000)
		ev->us -= ev->ms * 1000;
	if (journal_append(store_dir(s), ev) < 0)
		log_warn("journal append");
}

void
wrapper_ensure_supervisor(struct store *s)
{
	char *kached = wrapper_kached_path();

	if (kached != NULL)
		proto_supervisor_ensure(store_dir(s), kached);
	free(kached);
}

/* The time of the last gc's start is run/gc.stamp's mtime: set before the
 * spawn, so that of the wrappers that find it old together one or a few
 * spawn (the gc's lock keeps one at work). A store without it gets it now:
 * the gc of a store this new would find nothing to do. */
void
wrapper_gc_kick(const struct config *cfg, struct store *s)
{
	int64_t every = config_get_duration(cfg, "supervisor.gc_interval");
	char *run, *stamp, *kached;
	struct stat st;
	int fd;

	if (config_has_remote(cfg))
		return; /* its supervisor's indexer collects */
	run = xasprintf("%s/run", store_dir(s));
	stamp = xasprintf("%s/gc.stamp", run);
	if (stat(stamp, &st) < 0) {
		if (errno == ENOENT && (mkdir(run, 0700) == 0 || errno == EEXIST) &&
		    (fd = open(stamp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
		         0600)) != -1)
			close(fd);
	} else if (clock_age_ms(&st.st_mtim) >= every &&
	    utimensat(AT_FDCWD, stamp, NULL, AT_SYMLINK_NOFOLLOW) == 0 &&
	    (kached = wrapper_kached_path()) != NULL) {
		proto_gc_spawn(store_dir(s), kached);
		free(kached);
	}
	free(stamp);
	free(run);
}

/* On a local miss with a remote: ask the supervisor's fetcher, within the
 * wrapper's deadline, then look again. With no supervisor up, one is started
 * (or is being started by another wrapper): the wrapper waits for its socket
 * within the same deadline and asks then, so that the first misses of a
 * fresh runner are fetched too rather than compiled. 1 when served. */
int
wrapper_fetch(const struct config *cfg, struct store *s, const unsigned char inv[HASH_LEN],
    const char *label)
{
	char hex[HASH_HEX_LEN + 1];
	char *mark = xasprintf("%s/run/fetch.unanswered", store_dir(s));
	int64_t now = clock_ms(), wait = config_get_int(cfg, "wrapper.deadline_ms"),
	        end = now + config_get_int(cfg, "wrapper.fetch_timeout_ms"), ack, waited;
	int seen = unanswered_recently(mark), short_wait = seen == 1 && wait > UNANSWERED_ACK_MS;
	enum proto_result r;

	ack = now + (short_wait ? UNANSWERED_ACK_MS : wait);
	hash_to_hex(inv, hex);
	r = proto_client_fetch(store_dir(s), hex, ack, end);
	if (r == PROTO_UNAVAILABLE) {
		wrapper_ensure_supervisor(s);
		/* a supervisor coming up gets the whole wait, mark or not */
		if (proto_supervisor_wait(store_dir(s), now + wait))
			r = proto_client_fetch(store_dir(s), hex, now + wait, end);
	}
	/* a timeout before end is the acknowledgement's */
	unanswered_note(mark, r == PROTO_TIMEOUT && clock_ms() < end && !short_wait,
	    seen >= 0 && (r == PROTO_OK || r == PROTO_MISS));
	waited = clock_ms() - now;
	if (r == PROTO_TIMEOUT && short_wait)
		log_debug("%s: remote fetch: timeout after %lld ms (short wait: the supervisor "
		          "left a fetch unanswered less than %d s ago)",
		    label, (long long)waited, UNANSWERED_MS / 1000);
	else
		log_debug("%s: remote fetch: %s after %lld ms", label, proto_result_name(r),
		    (long long)waited);
	free(mark);
	return r == PROTO_OK;
}

/* 1 when the mark of an unanswered fetch is younger than UNANSWERED_MS, 0
 * when it is older, -1 when there is none. */
static int
unanswered_recently(const char *mark)
{
	struct stat st;

	if (stat(mark, &st) < 0)
		return -1;
	return clock_age_ms(&st.st_mtim) < UNANSWERED_MS;
}

/* Leaves (or renews) the mark after a long wait went unanswered; removes it
 * after an answer when it was there. Best effort: a lost mark costs one more
 * long wait. */
static void
unanswered_note(const char *mark, int timed_out, int seen)
{
	int fd;

	if (timed_out) {
		fd = open(mark, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd >= 0) {
			futimens(fd, NULL);
			close(fd);
		}
	} else if (seen) {
		unlink(mark);
	}
}

static int
try_remote(struct wrapper *w)
{
	if (!wrapper_fetch(w->cfg, w->store, w->inv, w->args.crate_name))
		return 0;
	w->from_remote = 1;
	return hit_try(w);
}

void
wrapper_upload(const struct config *cfg, struct store *s, const unsigned char res[HASH_LEN],
    const unsigned char inv[HASH_LEN], const char *label, int replace)
{
	char hex[HASH_HEX_LEN + 1];

	if (!config_has_remote(cfg))
		return;
	if (config_get_bool(cfg, "s3.read_only") &&
	    strcmp(config_get(cfg, "remote.type"), "s3") == 0)
		return;
	if (store_intent_add(s, res, inv, replace) < 0) {
		log_warn("%s: cannot write upload intent", label);
		return;
	}
	hash_to_hex(res, hex);
	wrapper_ensure_supervisor(s);
	proto_client_notify_upload(store_dir(s), hex);
}

void
wrapper_queue_upload(struct wrapper *w, const unsigned char res[HASH_LEN])
{
	wrapper_upload(w->cfg, w->store, res, w->inv, w->args.crate_name, w->recache);
}

/* A miss on a key whose store is under way in another live process (see
 * miss.c's store_in_background): wait (up to PENDING_WAIT_MS) for it, rather
 * than compile the same thing twice. A marker whose writer is gone is removed,
 * not waited for. 1 when a store was awaited. */
static int
wait_pending(struct wrapper *w)
{
	return store_pending_wait(store_dir(w->store), w->inv, clock_ms() + PENDING_WAIT_MS);
}

int
wrapper_compile(struct wrapper *w)
{
	if (w->args.pass_reason != NULL)
		return -1;
	roots_find(&w->roots, &w->args);
	memo_load(w);
	w->recache = config_get_bool(w->cfg, "cache.recache");
	if (key_invocation(w, w->inv) < 0) {
		wrapper_journal(w, JOURNAL_ERROR, "key", NULL, 0, 0);
		return -1;
	}
	if (session_hint(w))
		wrapper_ensure_supervisor(w->store);
	session_features(w);
	if (w->recache)
		return miss_compile(w); /* nothing served: the store's result is replaced */
	if (hit_try(w))
		return w->hit_status;
	if (wait_pending(w) && hit_try(w))
		return w->hit_status;
	if (config_has_remote(w->cfg) && try_remote(w))
		return w->hit_status;
	return miss_compile(w);
}
