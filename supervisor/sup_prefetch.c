/* Prefetch hints: a wrapper's hint (a file in run/hints/, or a
 * MSG_PREFETCH_HINT from an older wrapper) becomes a JOB_PREFETCH for an idle
 * prefetch worker. One session per workspace and mode (a build's, a check's)
 * at a time: a hint for one queued or in progress is dropped (counted, with
 * why), but for a
 * compile's hint after an early one (proto/hint.h: sent at cargo's first
 * question, its target and profile guessed): that one replaces the early
 * hint still queued, or waits for the early session to end and runs then,
 * unless that session found the exact session manifest of the same
 * fingerprint (it did the compile's work); the same when the early session
 * had ended before the compile's hint came (less than prefetch.cooldown
 * before). The sessions' numbers come back in
 * JOB_DONE's text and are summed for the status document. */
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/fs.h"
#include "common/log.h"
#include "proto/hint.h"
#include "supervisor/sup_internal.h"

#define PF_QUEUE_MAX 8
/* why a hint is dropped when no prefetch worker can run (now, or any more) */
#define PF_NO_WORKER "no prefetch worker can run (see `kache supervisor status`)"
/* A hint file older than this when found (left while no supervisor could
 * take it) is for a session long over: removed unused. */
#define PF_HINT_MAX_AGE_MS (10 * 60 * 1000)
/* How often the cargo links of commands gone are removed (proto/hint.h). */
#define PF_SWEEP_MS (60 * 1000)

struct pf_hint {
	int used, sent;
	int retried; /* handed again once after its worker exited */
	uint64_t id;
	pid_t pid; /* the worker it went to */
	struct msg job;
	struct proto_hint h; /* what job says */
	/* a compile's hint that came while this early session ran */
	int has_next;
	struct proto_hint next;
};

struct prefetches {
	struct pf_hint q[PF_QUEUE_MAX];
	uint64_t next_id;
	struct prefetch_counts n;
	char *dir; /* run/hints */
	int ifd;   /* inotify on dir, or -1 (then the maintenance scan alone) */
	/* early sessions that used their exact session manifest and ended before
	 * the compile's hint came (it is then served by them), oldest replaced */
	struct proto_hint served[PF_QUEUE_MAX];
	int64_t served_ms[PF_QUEUE_MAX];
	int served_next;
	int64_t next_sweep;
};

static struct pf_hint *find_session(struct prefetches *p, const struct proto_hint *h);
static struct slot *slot_of(struct supervisor *s, pid_t pid);
static void add_counts(struct prefetch_counts *n, const char *text);
static void drop(struct prefetches *p, long *why, const char *root, const char *what);
static void take_file(struct supervisor *s, const char *path);
static void take_claimed(struct supervisor *s, const char *claimed, const char *path);
static void set_job(struct pf_hint *x, const struct proto_hint *h);
static int same_fingerprint(const struct proto_hint *a, const struct proto_hint *b);
static int found_exact(const char *text);
static int take_served(struct supervisor *s, const struct proto_hint *h);
static void unqueue(struct prefetches *p, struct pf_hint *x);

void
prefetch_new(struct supervisor *s)
{
	struct prefetches *p = xcalloc(1, sizeof *p);

	s->prefetches = p;
	p->next_id = 1;
	p->dir = xasprintf("%s/" PROTO_HINT_DIR, s->kache_dir);
	if (fs_mkdir_p(p->dir, 0700) < 0 && errno != EEXIST)
		log_warn("mkdir %s", p->dir);
	p->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (p->ifd >= 0 && inotify_add_watch(p->ifd, p->dir, IN_MOVED_TO | IN_CLOSE_WRITE) < 0) {
		log_warn("inotify on %s (hints are then taken every %d ms)", p->dir, SUP_MAINT_MS);
		close(p->ifd);
		p->ifd = -1;
	}
}

void
prefetch_free(struct supervisor *s)
{
	if (s->prefetches == NULL)
		return;
	for (int i = 0; i < PF_QUEUE_MAX; i++)
		msg_clear(&s->prefetches->q[i].job);
	if (s->prefetches->ifd >= 0)
		close(s->prefetches->ifd);
	free(s->prefetches->dir);
	free(s->prefetches);
	s->prefetches = NULL;
}

int
prefetch_hint_fd(const struct supervisor *s)
{
	return s->prefetches->ifd;
}

/* One hint file: claimed, then taken. */
static void
take_file(struct supervisor *s, const char *path)
{
	/* Claimed by a rename first: a workspace's early hint and its compile's
	 * hint have the same name, and a compile's hint renamed onto it while
	 * the early one was being read was then removed unread (the session
	 * never saw the compile's hint: CI, sanitizer pass). Renamed onto the
	 * name now, it is a new file, taken on the next scan. The claimed name
	 * is not a hint file's; a scan takes it as one left by a supervisor
	 * that died holding it (none can hold it across two scans). */
	char *claimed = xasprintf("%s.taking", path);

	if (rename(path, claimed) == 0)
		take_claimed(s, claimed, path);
	free(claimed);
}

/* A claimed hint file (path's, renamed to claimed): read, removed, then
 * handled as a hint message would be. */
static void
take_claimed(struct supervisor *s, const char *claimed, const char *path)
{
	struct msg m;
	struct stat st;
	int stale, bad = 0;

	if (lstat(claimed, &st) < 0)
		return;
	stale = clock_wall_ms() - clock_ts_ms(&st.st_mtim) > PF_HINT_MAX_AGE_MS;
	if (!stale)
		bad = proto_hint_file_read(claimed, &m) < 0;
	unlink(claimed);
	if (stale) {
		s->prefetches->n.hints++;
		drop(s->prefetches, &s->prefetches->n.dropped_stale, path,
		    "left while no supervisor ran, too old now");
	} else if (bad) {
		s->prefetches->n.hints++;
		s->prefetches->n.malformed++;
		sup_bad_message(s, "%s: not a prefetch hint; removed", path);
	} else {
		prefetch_hint(s, &m);
		msg_clear(&m);
	}
}

#ifdef KACHE_FAULT_INJECTION
/* Test builds: with KACHE_TEST_HINT_TAKE_AFTER_MS a hint file younger than
 * that is left for a later turn (the maintenance tick takes it), so that a
 * test can have it taken while `kache prefetch --wait` is between its look
 * and its question. */
static int
hint_too_young(const char *path)
{
	const char *after = getenv("KACHE_TEST_HINT_TAKE_AFTER_MS");
	struct stat st;

	if (after == NULL || stat(path, &st) < 0)
		return 0;
	/* NOLINTNEXTLINE(cert-err34-c): a fault-injection knob set by the tests */
	return clock_wall_ms() - clock_ts_ms(&st.st_mtim) < atoi(after);
}
#endif

/* Takes every hint file in run/hints (after draining the inotify events
 * that woke us). Left alone while stopping: the next supervisor takes them. */
void
prefetch_take_hints(struct supervisor *s)
{
	struct prefetches *p = s->prefetches;
	char ev[4096];
	struct dirent *de;
	DIR *d;

	if (p->ifd >= 0)
		while (read(p->ifd, ev, sizeof ev) > 0)
			;
	if (s->stopping || (d = opendir(p->dir)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		char name[17], *path, *claimed;

		if (strnlen(de->d_name, 16) < 16)
			continue;
		memcpy(name, de->d_name, 16);
		name[16] = '\0';
		if (!proto_hint_file_name_ok(name))
			continue;
		path = xasprintf("%s/%s", p->dir, name);
		if (de->d_name[16] == '\0') {
#ifdef KACHE_FAULT_INJECTION
			if (hint_too_young(path)) {
				free(path);
				continue;
			}
#endif
			take_file(s, path);
		} else if (strcmp(de->d_name + 16, ".taking") == 0) {
			claimed = xasprintf("%s/%s", p->dir, de->d_name);
			take_claimed(s, claimed, path);
			free(claimed);
		}
		free(path);
	}
	closedir(d);
}

void
prefetch_sweep(struct supervisor *s, int64_t now)
{
	struct prefetches *p = s->prefetches;
	int n;

	if (now < p->next_sweep)
		return;
	p->next_sweep = now + PF_SWEEP_MS;
	if ((n = proto_hint_sweep_links(s->kache_dir)) > 0)
		log_debug("removed %d cargo link%s of commands gone", n, n == 1 ? "" : "s");
}

/* A hint not taken: counted in all and under why, and said once. */
static void
drop(struct prefetches *p, long *why, const char *root, const char *what)
{
	p->n.dropped++;
	(*why)++;
	log_info("prefetch hint for %s dropped: %s", root, what);
}

/* The session queued or running for h's workspace and mode (a build's, or
 * a check's: one of each may run). */
static struct pf_hint *
find_session(struct prefetches *p, const struct proto_hint *h)
{
	for (int i = 0; i < PF_QUEUE_MAX; i++)
		if (p->q[i].used && strcmp(p->q[i].h.root, h->root) == 0 &&
		    proto_hint_is_check(p->q[i].h.profile) == proto_hint_is_check(h->profile))
			return &p->q[i];
	return NULL;
}

/* A hint: checked, then queued unless its workspace has a session queued or
 * running, or no prefetch worker can run (no remote, stopping). */
void
prefetch_hint(struct supervisor *s, const struct msg *req)
{
	struct prefetches *p = s->prefetches;
	struct proto_hint h;
	struct pf_hint *x = NULL;

	p->n.hints++;
	if (proto_hint_from_msg(req, &h) < 0) {
		sup_bad_message(s, "control socket: a malformed prefetch hint");
		p->n.malformed++;
		return;
	}
	if (s->remote_none || s->stopping || !workers_can_run(s, ROLE_PREFETCH)) {
		drop(p, &p->n.dropped_off, h.root,
		    s->remote_none  ? "no remote configured" :
		        s->stopping ? "the supervisor is stopping" :
		                      PF_NO_WORKER);
		return;
	}
	p->n.early += h.guess;
	if ((x = find_session(p, &h)) != NULL) {
		if (h.guess || !x->h.guess) {
			drop(p, &p->n.dropped_busy, h.root,
			    "a session for it is queued or running");
		} else if (!x->sent) {
			drop(p, &p->n.dropped_replaced, h.root, "its early hint, by the compile's");
			set_job(x, &h);
		} else {
			if (x->has_next)
				drop(p, &p->n.dropped_replaced, h.root,
				    "a waiting hint, by a newer one");
			x->next = h;
			x->has_next = 1;
			log_info("prefetch hint for %s (after its early session)", h.root);
		}
		return;
	}
	if (!h.guess && take_served(s, &h)) {
		p->n.early_served++;
		log_info("prefetch hint for %s served by its early session", h.root);
		return;
	}
	for (int i = 0; i < PF_QUEUE_MAX && x == NULL; i++)
		if (!p->q[i].used)
			x = &p->q[i];
	if (x == NULL) {
		drop(p, &p->n.dropped_full, h.root, "8 sessions are queued already");
		return;
	}
	memset(x, 0, sizeof *x);
	x->used = 1;
	set_job(x, &h);
	log_info("prefetch hint for %s%s", h.root,
	    h.guess ? " (early: target and profile from cargo's command line or `kache prefetch`)" :
	              "");
}

/* x's job (not sent yet) is h. */
static void
set_job(struct pf_hint *x, const struct proto_hint *h)
{
	msg_clear(&x->job);
	msg_init(&x->job, MSG_JOB_PREFETCH, 0);
	proto_hint_to_msg(h, &x->job);
	x->h = *h;
	x->sent = 0;
	x->retried = 0;
	x->has_next = 0;
}

/* The same session manifest would be chosen for both (remote/session.h). */
static int
same_fingerprint(const struct proto_hint *a, const struct proto_hint *b)
{
	return strcmp(a->lock_hash, b->lock_hash) == 0 && strcmp(a->toolchain, b->toolchain) == 0 &&
	    strcmp(a->target, b->target) == 0 && strcmp(a->profile, b->profile) == 0;
}

/* 1 when an early session of h's workspace and fingerprint used its exact
 * session manifest and ended less than prefetch.cooldown ago (forgotten then:
 * one compile's hint per early session). */
static int
take_served(struct supervisor *s, const struct proto_hint *h)
{
	struct prefetches *p = s->prefetches;
	int64_t cooldown = config_get_duration(s->cfg, "prefetch.cooldown");

	for (int i = 0; i < PF_QUEUE_MAX; i++) {
		if (p->served_ms[i] == 0 || strcmp(p->served[i].root, h->root) != 0 ||
		    !same_fingerprint(&p->served[i], h))
			continue;
		if (clock_ms() - p->served_ms[i] < cooldown) {
			p->served_ms[i] = 0;
			return 1;
		}
		p->served_ms[i] = 0; /* too old: forgotten */
	}
	return 0;
}

/* 1 when a session's JOB_DONE text says its exact session manifest was used. */
static int
found_exact(const char *text)
{
	json_t *j = json_loads(text ? text : "", 0, NULL);
	const char *src = json_string_value(json_object_get(j, "source"));
	int exact = src != NULL && strcmp(src, "exact") == 0;

	json_decref(j);
	return exact;
}

static struct slot *
slot_of(struct supervisor *s, pid_t pid)
{
	for (int i = 0; i < s->nslots; i++)
		if (s->slots[i].role == ROLE_PREFETCH && s->slots[i].pid == pid &&
		    (s->slots[i].state == W_READY || s->slots[i].state == W_BUSY))
			return &s->slots[i];
	return NULL;
}

/* A session not sent, and the compile's hint waiting behind it, dropped:
 * no prefetch worker can run any more. */
static void
unqueue(struct prefetches *p, struct pf_hint *x)
{
	drop(p, &p->n.dropped_off, x->h.root, PF_NO_WORKER);
	if (x->has_next)
		drop(p, &p->n.dropped_off, x->next.root, PF_NO_WORKER);
	msg_clear(&x->job);
	x->used = 0;
}

/* Hands queued hints to idle prefetch workers, gives up sessions whose
 * worker died (counted as failed), and drops those no worker can take. */
void
prefetch_tick(struct supervisor *s)
{
	struct prefetches *p = s->prefetches;
	struct slot *w;

	for (int i = 0; i < PF_QUEUE_MAX; i++) {
		struct pf_hint *x = &p->q[i];

		if (!x->used)
			continue;
		if (x->sent && slot_of(s, x->pid) == NULL) {
			if (!x->retried && !x->has_next && !s->stopping &&
			    workers_can_run(s, ROLE_PREFETCH)) {
				/* a worker killed, or one that exited just as the job
				 * went to it (judged silent by a supervisor back from a
				 * stop): a session imports only what is missing, so it
				 * goes once more to the next prefetch worker (a compile's
				 * hint waiting for it takes its place instead) */
				log_warnx("prefetch of %s: its worker exited; handed again",
				    x->h.root);
				p->n.retried++;
				x->retried = 1;
				x->sent = 0;
				continue;
			}
			log_warnx("prefetch of %s lost: its worker exited", x->h.root);
			p->n.failed++;
			if (x->has_next) /* the compile's hint is still to be served */
				set_job(x, &x->next);
			else
				x->used = 0;
		} else if (!x->sent && !s->stopping && !workers_can_run(s, ROLE_PREFETCH)) {
			/* the role gave up (or was scaled to 0) while it waited:
			 * nothing would ever take it, and an idle exit would wait */
			unqueue(p, x);
		} else if (!x->sent && !s->stopping &&
		    (w = workers_idle(s, ROLE_PREFETCH)) != NULL) {
			x->job.id = x->id = p->next_id++;
			if (workers_send(s, w, &x->job) == -1)
				continue;
			if (!x->retried) /* counted once */
				p->n.sessions++;
			x->sent = 1;
			x->pid = w->pid;
			w->state = W_BUSY;
		}
	}
}

static void
add_counts(struct prefetch_counts *n, const char *text)
{
	json_t *j = json_loads(text ? text : "", 0, NULL);
	const char *src;
	long packs;

	if (j == NULL)
		return;
	packs = (long)json_integer_value(json_object_get(j, "packs"));
	n->packs += json_integer_value(json_object_get(j, "packs"));
	n->bytes += json_integer_value(json_object_get(j, "bytes"));
	n->present += json_integer_value(json_object_get(j, "present"));
	n->over_cap += json_integer_value(json_object_get(j, "over_cap"));
	n->rejected += json_integer_value(json_object_get(j, "rejected"));
	n->failed_packs += json_integer_value(json_object_get(j, "failed"));
	n->list_failed += json_integer_value(json_object_get(j, "list_failed"));
	n->refused += json_integer_value(json_object_get(j, "refused"));
	n->garbage_sessions += json_integer_value(json_object_get(j, "garbage_sessions"));
	n->parts += json_integer_value(json_object_get(j, "parts"));
	n->packs_parts += json_integer_value(json_object_get(j, "from_parts"));
	src = json_string_value(json_object_get(j, "source"));
	if (src != NULL && strcmp(src, "exact") == 0)
		n->from_exact++, n->packs_exact += packs;
	else if (src != NULL && strcmp(src, "closest") == 0)
		n->from_closest++, n->packs_closest += packs,
		    n->last_shared = json_integer_value(json_object_get(j, "shared"));
	else if (src != NULL && strcmp(src, "packs") == 0)
		n->from_packs++, n->packs_packs += packs;
	else if (src != NULL && strcmp(src, "planner") == 0)
		n->from_planner++, n->packs_planner += packs;
	json_decref(j);
}

/* JOB_DONE from a prefetch worker: the session is over; its numbers add up. */
void
prefetch_done(struct supervisor *s, struct slot *w, const struct msg *done)
{
	struct prefetches *p = s->prefetches;
	int exact;

	for (int i = 0; i < PF_QUEUE_MAX; i++) {
		struct pf_hint *x = &p->q[i];

		if (!x->used || !x->sent || x->id != done->id || x->pid != w->pid)
			continue;
		add_counts(&p->n, done->text);
		p->n.done++;
		exact = x->h.guess && found_exact(done->text);
		if (x->has_next && same_fingerprint(&x->h, &x->next) && exact) {
			p->n.early_served++;
			log_info("prefetch hint for %s served by its early session", x->h.root);
			x->has_next = 0;
		} else if (exact && !x->has_next) { /* for the compile's hint to come */
			p->served[p->served_next] = x->h;
			p->served_ms[p->served_next] = clock_ms();
			p->served_next = (p->served_next + 1) % PF_QUEUE_MAX;
		}
		if (x->has_next) { /* the early guess was not it: the compile's hint now */
			set_job(x, &x->next);
		} else {
			msg_clear(&x->job);
			x->used = 0;
		}
		w->jobs_done++;
		if (w->state == W_BUSY)
			w->state = W_READY;
		return;
	}
	log_warnx("prefetch.%u reported job %llu it does not hold", w->index,
	    (unsigned long long)done->id);
}

void
prefetch_note_hit(struct supervisor *s)
{
	s->prefetches->n.hits++;
}

const struct prefetch_counts *
prefetch_counts(const struct supervisor *s)
{
	return &s->prefetches->n;
}

long
prefetch_queued(const struct supervisor *s)
{
	long n = 0;

	for (int i = 0; i < PF_QUEUE_MAX; i++)
		n += s->prefetches->q[i].used +
		    (s->prefetches->q[i].used && s->prefetches->q[i].has_next);
	return n;
}

int
prefetch_idle(const struct supervisor *s)
{
	for (int i = 0; i < PF_QUEUE_MAX; i++)
		if (s->prefetches->q[i].used)
			return 0;
	return 1;
}
