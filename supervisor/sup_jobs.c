/* Jobs: upload intents (durable files the wrappers write) queued for the
 * uploaders, and fetch requests handed to fetchers on a wrapper's behalf.
 * An upload leaves the queue only when its uploader reports success; the
 * intent file itself is removed by the uploader. */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/hash.h"
#include "common/log.h"
#include "store/pending.h"
#include "store/store.h"
#include "supervisor/sup_internal.h"

#define NBUCKETS 4096
#define MAX_UPLOADS 1000000
#define RETRY_MS 2000       /* first retry of a failed upload */
#define RETRY_MAX_MS 300000 /* back-off cap */
#define RESCAN_MIN_MS 1000

enum job_kind { JOB_UPLOAD, JOB_FETCH };

struct job {
	enum job_kind kind;
	char key[MSG_KEY_MAX + 1];
	uint64_t id; /* sent to the worker */
	int inflight;
	int64_t not_before; /* uploads: retry time */
	int failures;       /* uploads: failed attempts so far */
	int64_t deadline;   /* fetches: the wrapper's */
	uint64_t client_id; /* fetches: request id to echo */
	char ident[ZIO_IDENT_MAX];
	size_t identlen;
	int probe;         /* fetches: the breaker's own, no wrapper waits on it */
	struct job *next;  /* queue order */
	struct job *hnext; /* upload hash chain */
};

struct jobs {
	struct job *buckets[NBUCKETS];
	struct job *uq_head, *uq_tail; /* uploads, in order */
	struct job *fq_head, *fq_tail; /* fetches, in order */
	long nuploads, ninflight, nfetches;
	uint64_t next_id;
	int64_t last_scan;
	int fetch_failures; /* in a row: failed, or not answered in time */
	int64_t probe_at;   /* breaker open: when the next probe goes */
	int64_t probe_every;
	int probing;              /* a probe is queued or in flight */
	char last_failure[128];   /* the upload failure last logged; "" after a success */
	long uploaded;            /* uploads done since start */
	struct jobs_outcomes out; /* how uploads and fetches ended, by kind */
	int remote_off;           /* an uploader found the remote switched off: uploads paused */
};

/* The fetch breaker: a remote that failed FETCH_FAILURES_TO_SKIP fetches in a
 * row, or one fetch for want of a connection (refused, no such host, nothing
 * answered within the connect timeout), is left alone, so that it does not
 * cost every compile its fetch: wrappers' fetches miss at once. Whether it
 * answers again is the supervisor's own question, a probe (a fetch of a key
 * no result has) that no wrapper waits on, first after FETCH_PROBE_FIRST_MS,
 * then twice as long after each probe that failed, up to FETCH_PROBE_MAX_MS.
 * An answer to any fetch closes it. */
#define FETCH_FAILURES_TO_SKIP 3
#define FETCH_PROBE_FIRST_MS 5000
#define FETCH_PROBE_MAX_MS 60000
#define FETCH_PROBE_WAIT_MS 10000 /* a probe's own deadline */
#define PROBE_KEY "0000000000000000000000000000000000000000000000000000000000000000"

/* How a fetch ended, for the breaker. */
enum fetch_end { FETCH_ANSWERED, FETCH_FAILED, FETCH_UNREACHABLE };

static unsigned bucket(const char *key);
static void fetch_outcome(struct supervisor *s, enum fetch_end end, int probe, int64_t now);
static void breaker_open(struct jobs *j, int64_t now, int unreachable);
static int breaker_is_open(const struct jobs *j);
static void probe_queue(struct supervisor *s, int64_t now);
static struct job *upload_find(struct jobs *j, const char *key);
static void upload_add(struct supervisor *s, const char *key);
static void upload_remove(struct jobs *j, struct job *x);
static void fetch_reply(struct supervisor *s, struct job *x, int status);
static void fetch_ack(struct supervisor *s, struct job *x);
static void dispatch_uploads(struct supervisor *s, int64_t now);
static void dispatch_fetches(struct supervisor *s, int64_t now);
static struct job *list_unlink(struct job **head, struct job **tail, struct job *x);
static void upload_failed(struct supervisor *s, struct job *x, const struct msg *done);
static void remote_off(struct supervisor *s, const struct msg *done);
static void count_fetch(struct jobs *j, int status, int late);
static void fetch_end(struct supervisor *s, struct job *x, int status);

void
jobs_new(struct supervisor *s)
{
	s->jobs = xcalloc(1, sizeof *s->jobs);
	s->jobs->next_id = 1;
}

void
jobs_free(struct supervisor *s)
{
	struct job *x, *n;

	if (s->jobs == NULL)
		return;
	for (x = s->jobs->uq_head; x; x = n)
		n = x->next, free(x);
	for (x = s->jobs->fq_head; x; x = n)
		n = x->next, free(x);
	free(s->jobs);
	s->jobs = NULL;
}

static unsigned
bucket(const char *key)
{
	return (unsigned)strtoul((char[]){ key[0], key[1], key[2], key[3], 0 }, NULL, 16) %
	    NBUCKETS;
}

static struct job *
upload_find(struct jobs *j, const char *key)
{
	for (struct job *x = j->buckets[bucket(key)]; x; x = x->hnext)
		if (strcmp(x->key, key) == 0)
			return x;
	return NULL;
}

static void
upload_add(struct supervisor *s, const char *key)
{
	struct jobs *j = s->jobs;
	struct job *x;
	unsigned b;

	if (!hash_hex_valid(key) || upload_find(j, key) != NULL || j->nuploads >= MAX_UPLOADS)
		return;
	x = xcalloc(1, sizeof *x);
	x->kind = JOB_UPLOAD;
	snprintf(x->key, sizeof x->key, "%s", key);
	b = bucket(key);
	x->hnext = j->buckets[b];
	j->buckets[b] = x;
	if (j->uq_tail)
		j->uq_tail->next = x;
	else
		j->uq_head = x;
	j->uq_tail = x;
	j->nuploads++;
	workers_wake(s, ROLE_UPLOADER); /* those waiting for a first upload */
}

static struct job *
list_unlink(struct job **head, struct job **tail, struct job *x)
{
	struct job *prev = NULL;

	for (struct job *y = *head; y; prev = y, y = y->next) {
		if (y != x)
			continue;
		if (prev)
			prev->next = x->next;
		else
			*head = x->next;
		if (*tail == x)
			*tail = prev;
		x->next = NULL;
		return x;
	}
	return NULL;
}

static void
upload_remove(struct jobs *j, struct job *x)
{
	struct job **pp = &j->buckets[bucket(x->key)];

	while (*pp && *pp != x)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = x->hnext;
	list_unlink(&j->uq_head, &j->uq_tail, x);
	j->nuploads--;
	free(x);
}

/* Queues every intent file not queued yet. With no remote nothing is queued:
 * the intents stay on disk for when one is configured. */
void
jobs_scan_intents(struct supervisor *s)
{
	struct dirent *de;
	char *dir;
	DIR *d;

	s->jobs->last_scan = clock_ms();
	if (s->remote_none)
		return;
	dir = store_intent_path(s->kache_dir, NULL);
	d = opendir(dir);
	free(dir);
	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL)
		if (hash_hex_valid(de->d_name))
			upload_add(s, de->d_name);
	closedir(d);
}

void
jobs_notify(struct supervisor *s, const char *key)
{
	char *path;

	if (s->remote_none)
		return;
	path = store_intent_path(s->kache_dir, key);
	if (hash_hex_valid(key) && access(path, F_OK) == 0)
		upload_add(s, key);
	free(path);
	if (clock_ms() - s->jobs->last_scan >= RESCAN_MIN_MS)
		jobs_scan_intents(s);
}

static void
fetch_reply(struct supervisor *s, struct job *x, int status)
{
	struct msg rep;

	if (x->probe)
		return;
	msg_init(&rep, MSG_FETCH_REPLY, x->client_id);
	rep.status = status;
	sup_reply(s, x->ident, x->identlen, &rep);
	sup_publish(s, status == JOB_OK ? EVENT_FETCH : EVENT_MISS, x->key);
}

/* The breaker's count of fetches that failed in a row, opened past the
 * limit or at once when the remote could not be reached; an answer (a
 * result or a plain miss, in time) closes it. A probe that failed puts the
 * next one off twice as long. */
static void
fetch_outcome(struct supervisor *s, enum fetch_end end, int probe, int64_t now)
{
	struct jobs *j = s->jobs;

	if (end == FETCH_ANSWERED) {
		if (breaker_is_open(j))
			log_info("the remote answers again; fetching resumed");
		j->fetch_failures = 0;
		return;
	}
	if (probe) {
		j->probe_every = j->probe_every * 2 < FETCH_PROBE_MAX_MS ? j->probe_every * 2 :
		                                                           FETCH_PROBE_MAX_MS;
		j->probe_at = now + j->probe_every;
		return;
	}
	if (breaker_is_open(j))
		return;
	if (end == FETCH_UNREACHABLE)
		j->fetch_failures = FETCH_FAILURES_TO_SKIP;
	else
		j->fetch_failures++;
	if (breaker_is_open(j))
		breaker_open(j, now, end == FETCH_UNREACHABLE);
}

static int
breaker_is_open(const struct jobs *j)
{
	return j->fetch_failures >= FETCH_FAILURES_TO_SKIP;
}

static void
breaker_open(struct jobs *j, int64_t now, int unreachable)
{
	j->probe_every = FETCH_PROBE_FIRST_MS;
	j->probe_at = now + j->probe_every;
	if (unreachable)
		log_warnx("the remote could not be reached; fetching skipped until it answers "
		          "(asked again in %d s, then less often, by the supervisor: no compile "
		          "waits for it)",
		    FETCH_PROBE_FIRST_MS / 1000);
	else
		log_warnx("the remote failed %d fetches in a row; fetching skipped until it "
		          "answers (asked again in %d s, then less often, by the supervisor: no "
		          "compile waits for it)",
		    FETCH_FAILURES_TO_SKIP, FETCH_PROBE_FIRST_MS / 1000);
}

/* The breaker's probe, when due: a fetch no wrapper waits on, queued first. */
static void
probe_queue(struct supervisor *s, int64_t now)
{
	struct jobs *j = s->jobs;
	struct job *p;

	if (!breaker_is_open(j) || j->probing || now < j->probe_at)
		return;
	p = xcalloc(1, sizeof *p);
	p->kind = JOB_FETCH;
	p->probe = 1;
	snprintf(p->key, sizeof p->key, "%s", PROBE_KEY);
	p->deadline = now + FETCH_PROBE_WAIT_MS;
	p->next = j->fq_head;
	j->fq_head = p;
	if (j->fq_tail == NULL)
		j->fq_tail = p;
	j->nfetches++;
	j->probing = 1;
}

/* Tells the wrapper its fetch is queued: it waited only a short deadline for
 * this, and now waits the longer fetch timeout for the result. */
static void
fetch_ack(struct supervisor *s, struct job *x)
{
	struct msg rep;

	msg_init(&rep, MSG_OK, x->client_id);
	msg_set_text(&rep, "queued");
	sup_reply(s, x->ident, x->identlen, &rep);
	msg_clear(&rep);
}

/* A wrapper's fetch: a miss at once when there is no remote or no fetcher up
 * or starting;
 * otherwise queued until a fetcher is free or the wrapper's deadline passes. */
void
jobs_fetch(struct supervisor *s, const void *ident, size_t identlen, const struct msg *req)
{
	struct jobs *j = s->jobs;
	struct job x = { .kind = JOB_FETCH, .client_id = req->id }, *p;

	memcpy(x.ident, ident, identlen);
	x.identlen = identlen;
	snprintf(x.key, sizeof x.key, "%s", req->key);
	/* a fetcher still starting (the supervisor was just started) gets the
	 * job when it says READY, within the wrapper's deadline */
	if (s->remote_none || s->stopping || !workers_any_coming(s, ROLE_FETCHER) ||
	    !hash_hex_valid(req->key) || req->deadline <= 0 || j->nfetches >= 10000 ||
	    breaker_is_open(j)) {
		if (!s->remote_none && breaker_is_open(j))
			j->out.fetch_skipped++;
		fetch_reply(s, &x, JOB_MISS);
		return;
	}
	p = xmalloc(sizeof *p);
	*p = x;
	p->deadline = clock_ms() + (req->deadline < 60000 ? req->deadline : 60000);
	if (j->fq_tail)
		j->fq_tail->next = p;
	else
		j->fq_head = p;
	j->fq_tail = p;
	j->nfetches++;
	fetch_ack(s, &x);
	dispatch_fetches(s, clock_ms());
}

static int
send_job(struct supervisor *s, struct slot *w, struct job *x)
{
	struct msg m;

	msg_init(&m, x->kind == JOB_UPLOAD ? MSG_JOB_UPLOAD : MSG_JOB_FETCH, s->jobs->next_id++);
	snprintf(m.key, sizeof m.key, "%s", x->key);
	if (x->kind == JOB_FETCH) /* what the wrapper still waits: the fetcher's bound */
		m.deadline = x->deadline > clock_ms() ? x->deadline - clock_ms() : 1;
	if (workers_send(s, w, &m) == -1)
		return -1;
	x->id = m.id;
	x->inflight = 1;
	w->job = x;
	w->state = W_BUSY;
	return 0;
}

static void
dispatch_uploads(struct supervisor *s, int64_t now)
{
	struct slot *w;

	if (s->jobs->remote_off)
		return; /* the intents stay on disk until a reload or a restart */
	for (struct job *x = s->jobs->uq_head; x; x = x->next) {
		if (x->inflight || x->not_before > now)
			continue;
		if ((w = workers_idle(s, ROLE_UPLOADER)) == NULL || send_job(s, w, x) == -1)
			return;
		s->jobs->ninflight++;
	}
}

static void
dispatch_fetches(struct supervisor *s, int64_t now)
{
	struct jobs *j = s->jobs;
	struct job *x, *n;
	struct slot *w;

	probe_queue(s, now);
	for (x = j->fq_head; x; x = n) {
		n = x->next;
		if (x->inflight)
			continue;
		if (now >= x->deadline) { /* the wrapper has given up already */
			fetch_outcome(s, FETCH_FAILED, x->probe, now);
			fetch_end(s, x, JOB_MISS);
			continue;
		}
		if (breaker_is_open(j) && !x->probe) { /* opened while it waited: a miss now */
			j->out.fetch_skipped++;
			fetch_end(s, x, JOB_MISS);
			continue;
		}
		if ((w = workers_idle(s, ROLE_FETCHER)) == NULL || send_job(s, w, x) == -1)
			return;
	}
}

void
jobs_dispatch(struct supervisor *s, int64_t now)
{
	dispatch_fetches(s, now);
	if (!s->remote_none)
		dispatch_uploads(s, now);
}

void
jobs_done(struct supervisor *s, struct slot *w, const struct msg *done)
{
	struct job *x = w->job;

	if (x == NULL || x->id != done->id) {
		log_warnx("%s.%u reported job %llu it does not hold", role_name(w->role), w->index,
		    (unsigned long long)done->id);
		return;
	}
	w->job = NULL;
	w->jobs_done++;
	if (w->state == W_BUSY)
		w->state = W_READY;
	if (x->kind == JOB_FETCH) {
		int late = clock_ms() > x->deadline;
		enum fetch_end end = FETCH_ANSWERED;

		if (done->status == JOB_UNREACHABLE)
			end = FETCH_UNREACHABLE;
		else if (late || (done->status != JOB_OK && done->status != JOB_MISS))
			end = FETCH_FAILED;
		if (!x->probe)
			count_fetch(s->jobs, done->status, late);
		fetch_outcome(s, end, x->probe, clock_ms());
		fetch_end(s, x, done->status == JOB_OK ? JOB_OK : JOB_MISS);
		return;
	}
	s->jobs->ninflight--;
	x->inflight = 0;
	s->jobs->out.upload[done->status >= 0 && done->status < JOBS_OUTCOMES ? done->status :
	                                                                        JOB_FAILED]++;
	if (done->status == JOB_OK) {
		s->jobs->last_failure[0] = '\0';
		s->jobs->uploaded++;
		sup_publish(s, EVENT_UPLOAD, x->key);
		upload_remove(s->jobs, x);
	} else if (done->status == JOB_REMOTE_OFF) {
		remote_off(s, done);
		sup_publish(s, EVENT_UPLOAD_FAILED, x->key);
	} else {
		upload_failed(s, x, done);
	}
}

/* A failed upload is retried with back-off. The failure is said once per kind,
 * not once per crate: the worker's log has the detail; a success clears it. */
static void
upload_failed(struct supervisor *s, struct job *x, const struct msg *done)
{
	int64_t delay = RETRY_MS << (x->failures < 8 ? x->failures : 8);
	const char *why = done->text ? done->text : "";

	if (delay > RETRY_MAX_MS)
		delay = RETRY_MAX_MS;
	if (x->failures++ == 0 &&
	    strncmp(why, s->jobs->last_failure, sizeof s->jobs->last_failure) != 0) {
		log_warnx("upload %s failed: %s; retrying with back-off (further "
		          "failures like this one are not repeated here)",
		    x->key, why);
		snprintf(s->jobs->last_failure, sizeof s->jobs->last_failure, "%s", why);
	} else {
		log_debug("upload %s failed: %s", x->key, why);
	}
	sup_publish(s, EVENT_UPLOAD_FAILED, x->key);
	x->not_before = clock_ms() + delay;
}

/* An uploader found the remote switched off (403, clock skew, no bucket): no
 * retry can succeed, so no more intents are handed out until the
 * configuration is reloaded or the supervisor restarts. Said once. */
static void
remote_off(struct supervisor *s, const struct msg *done)
{
	if (s->jobs->remote_off)
		return;
	s->jobs->remote_off = 1;
	log_warnx("uploads paused: %s; %ld upload intents stay on disk until the configuration "
	          "changes or the supervisor restarts",
	    done->text ? done->text : "the remote is off", s->jobs->nuploads);
}

/* A reload: the remote may work again. */
void
jobs_remote_reset(struct supervisor *s)
{
	if (s->jobs != NULL && s->jobs->remote_off) {
		s->jobs->remote_off = 0;
		log_info("uploads resumed after a configuration change");
	}
	if (s->jobs != NULL && breaker_is_open(s->jobs)) {
		s->jobs->fetch_failures = 0; /* another remote, perhaps: it gets its try */
		log_info("fetching resumed after a configuration change");
	}
}

/* A flush request (kache flush, kache supervisor stop): count 1 begins one
 * (every intent on disk queued, failed uploads retried now); each request
 * reports how far it got. Intents that background stores still running
 * write are taken up as they appear: the intents are rescanned each time. */
void
jobs_flush(struct supervisor *s, const struct msg *req, struct msg *rep)
{
	struct jobs *j = s->jobs;
	char text[320];
	int pending = store_pending_live(s->kache_dir), stuck;

	rep->type = MSG_FLUSH_REPLY;
	if (s->remote_none) {
		rep->status = FLUSH_NO_REMOTE;
		msg_set_text(rep, "{}");
		return;
	}
	jobs_scan_intents(s);
	if (req->count == 1)
		for (struct job *x = j->uq_head; x; x = x->next)
			x->not_before = 0;
	stuck = j->remote_off || !workers_can_run(s, ROLE_UPLOADER);
	rep->count = j->nuploads;
	rep->status = stuck                  ? FLUSH_STUCK :
	    j->nuploads == 0 && pending == 0 ? FLUSH_DONE :
	                                       FLUSH_BUSY;
	snprintf(text, sizeof text,
	    "{\"uploaded\": %ld, \"left\": %ld, \"pending\": %d, "
	    "\"why\": \"%s\"}",
	    j->uploaded, j->nuploads, pending,
	    j->remote_off ? "the remote is switched off (credentials, clock skew or no bucket; "
	                    "see `kache supervisor log uploader.0`)" :
	        stuck     ? "no uploader can run (see `kache supervisor status`)" :
	                    "");
	msg_set_text(rep, text);
}

/* Workers died holding jobs: uploads go back to the queue, fetches miss. */
void
jobs_take_lost(struct supervisor *s)
{
	struct job *x;

	while (s->nlost > 0) {
		x = s->lost[--s->nlost];
		if (x->kind == JOB_UPLOAD) {
			x->inflight = 0;
			s->jobs->ninflight--;
			continue;
		}
		if (x->probe)
			fetch_outcome(s, FETCH_FAILED, 1, clock_ms());
		fetch_end(s, x, JOB_MISS);
	}
}

/* A fetch leaves the queue: its wrapper answered (a probe: the next one may
 * go). */
static void
fetch_end(struct supervisor *s, struct job *x, int status)
{
	fetch_reply(s, x, status);
	if (x->probe)
		s->jobs->probing = 0;
	list_unlink(&s->jobs->fq_head, &s->jobs->fq_tail, x);
	s->jobs->nfetches--;
	free(x);
}

void
jobs_counts(const struct supervisor *s, long *queued, long *inflight, long *fetches)
{
	*queued = s->jobs->nuploads - s->jobs->ninflight;
	*inflight = s->jobs->ninflight;
	*fetches = s->jobs->nfetches;
}

/* One fetch's end, by the worker's status; an answer after the wrapper's
 * deadline is counted late whatever it was. */
static void
count_fetch(struct jobs *j, int status, int late)
{
	if (late)
		j->out.fetch_late++;
	else
		j->out.fetch[status >= 0 && status < JOBS_OUTCOMES ? status : JOB_FAILED]++;
}

int
jobs_fetch_breaker_open(const struct supervisor *s)
{
	return breaker_is_open(s->jobs);
}

const struct jobs_outcomes *
jobs_outcomes(const struct supervisor *s)
{
	return &s->jobs->out;
}

int
jobs_remote_off(const struct supervisor *s)
{
	return s->jobs->remote_off;
}

int
jobs_idle(const struct supervisor *s)
{
	return s->jobs->nuploads == 0 && s->jobs->nfetches == 0;
}
