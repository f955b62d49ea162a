/* Prefetch hints: a wrapper's MSG_PREFETCH_HINT becomes a JOB_PREFETCH for an
 * idle prefetch worker. One session per workspace at a time: a hint for a
 * workspace queued or in progress is dropped (counted). The sessions' numbers
 * come back in JOB_DONE's text and are summed for the status document. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "proto/hint.h"
#include "supervisor/sup_internal.h"

#define PF_QUEUE_MAX 8

struct pf_hint {
	int used, sent;
	uint64_t id;
	pid_t pid; /* the worker it went to */
	struct msg job;
	char root[PROTO_HINT_PATH_MAX];
};

struct prefetches {
	struct pf_hint q[PF_QUEUE_MAX];
	uint64_t next_id;
	struct prefetch_counts n;
};

static struct pf_hint *find_root(struct prefetches *p, const char *root);
static struct slot *slot_of(struct supervisor *s, pid_t pid);
static void add_counts(struct prefetch_counts *n, const char *text);

void
prefetch_new(struct supervisor *s)
{
	s->prefetches = xcalloc(1, sizeof *s->prefetches);
	s->prefetches->next_id = 1;
}

void
prefetch_free(struct supervisor *s)
{
	if (s->prefetches == NULL)
		return;
	for (int i = 0; i < PF_QUEUE_MAX; i++)
		msg_clear(&s->prefetches->q[i].job);
	free(s->prefetches);
	s->prefetches = NULL;
}

static struct pf_hint *
find_root(struct prefetches *p, const char *root)
{
	for (int i = 0; i < PF_QUEUE_MAX; i++)
		if (p->q[i].used && strcmp(p->q[i].root, root) == 0)
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
	if (s->remote_none || s->stopping || !workers_can_run(s, ROLE_PREFETCH) ||
	    find_root(p, h.root) != NULL) {
		p->n.dropped++;
		return;
	}
	for (int i = 0; i < PF_QUEUE_MAX && x == NULL; i++)
		if (!p->q[i].used)
			x = &p->q[i];
	if (x == NULL) {
		p->n.dropped++;
		return;
	}
	memset(x, 0, sizeof *x);
	x->used = 1;
	snprintf(x->root, sizeof x->root, "%s", h.root);
	msg_init(&x->job, MSG_JOB_PREFETCH, 0);
	proto_hint_to_msg(&h, &x->job);
	log_info("prefetch hint for %s", h.root);
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

/* Hands queued hints to idle prefetch workers, and gives up sessions whose
 * worker died (counted as failed). */
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
			log_warnx("prefetch of %s lost: its worker exited", x->root);
			p->n.failed++;
			x->used = 0;
		} else if (!x->sent && !s->stopping &&
		    (w = workers_idle(s, ROLE_PREFETCH)) != NULL) {
			x->job.id = x->id = p->next_id++;
			if (workers_send(s, w, &x->job) == -1)
				continue;
			x->sent = 1;
			x->pid = w->pid;
			w->state = W_BUSY;
			p->n.sessions++;
		}
	}
}

static void
add_counts(struct prefetch_counts *n, const char *text)
{
	json_t *j = json_loads(text ? text : "", 0, NULL);
	const char *src;

	if (j == NULL)
		return;
	n->packs += json_integer_value(json_object_get(j, "packs"));
	n->bytes += json_integer_value(json_object_get(j, "bytes"));
	n->present += json_integer_value(json_object_get(j, "present"));
	n->over_cap += json_integer_value(json_object_get(j, "over_cap"));
	n->rejected += json_integer_value(json_object_get(j, "rejected"));
	n->failed_packs += json_integer_value(json_object_get(j, "failed"));
	n->list_failed += json_integer_value(json_object_get(j, "list_failed"));
	n->refused += json_integer_value(json_object_get(j, "refused"));
	n->garbage_sessions += json_integer_value(json_object_get(j, "garbage_sessions"));
	src = json_string_value(json_object_get(j, "source"));
	if (src != NULL && strcmp(src, "exact") == 0)
		n->from_exact++;
	else if (src != NULL && strcmp(src, "closest") == 0)
		n->from_closest++,
		    n->last_shared = json_integer_value(json_object_get(j, "shared"));
	else if (src != NULL && strcmp(src, "packs") == 0)
		n->from_packs++;
	json_decref(j);
}

/* JOB_DONE from a prefetch worker: the session is over; its numbers add up. */
void
prefetch_done(struct supervisor *s, struct slot *w, const struct msg *done)
{
	struct prefetches *p = s->prefetches;

	for (int i = 0; i < PF_QUEUE_MAX; i++) {
		struct pf_hint *x = &p->q[i];

		if (!x->used || !x->sent || x->id != done->id || x->pid != w->pid)
			continue;
		add_counts(&p->n, done->text);
		p->n.done++;
		msg_clear(&x->job);
		x->used = 0;
		w->jobs_done++;
		if (w->state == W_BUSY)
			w->state = W_READY;
		return;
	}
	log_warnx("prefetch.%u reported job %llu it does not hold", w->index,
	    (unsigned long long)done->id);
}

const struct prefetch_counts *
prefetch_counts(const struct supervisor *s)
{
	return &s->prefetches->n;
}

int
prefetch_idle(const struct supervisor *s)
{
	for (int i = 0; i < PF_QUEUE_MAX; i++)
		if (s->prefetches->q[i].used)
			return 0;
	return 1;
}
