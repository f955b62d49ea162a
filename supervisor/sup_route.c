/* Index requests: the CLI's INDEX_* requests go to the indexer worker, which
 * owns the index, under an id of ours; its reply goes back to the client with
 * the client's id. A request waits at most ROUTE_WAIT_MS for an indexer to be
 * up, and at most the job limit for its answer; when the indexer dies
 * meanwhile the client is told so at once. */
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "supervisor/sup_internal.h"

#define ROUTE_MAX 64
#define ROUTE_WAIT_MS 2500 /* for an indexer to come up; the CLI waits 3 s */

struct route {
	int used, sent;
	uint64_t id;        /* ours, sent to the indexer */
	uint64_t client_id; /* the client's, echoed */
	pid_t pid;          /* the indexer it was sent to */
	int64_t deadline;
	struct msg req;     /* kept until sent */
	char ident[ZIO_IDENT_MAX];
	size_t identlen;
};

struct routes {
	struct route r[ROUTE_MAX];
	uint64_t next_id;
};

static struct slot *indexer_slot(struct supervisor *s);
static void route_send(struct supervisor *s, struct route *x, struct slot *w, int64_t now);
static void route_fail(struct supervisor *s, struct route *x, const char *text);

void
route_new(struct supervisor *s)
{
	s->routes = xcalloc(1, sizeof *s->routes);
	s->routes->next_id = 1;
}

void
route_free(struct supervisor *s)
{
	if (s->routes == NULL)
		return;
	for (int i = 0; i < ROUTE_MAX; i++)
		msg_clear(&s->routes->r[i].req);
	free(s->routes);
	s->routes = NULL;
}

/* The indexer's slot when it is up (ready or busy), else NULL. */
static struct slot *
indexer_slot(struct supervisor *s)
{
	for (int i = 0; i < s->nslots; i++)
		if (s->slots[i].role == ROLE_INDEXER && s->slots[i].pid > 0 && !s->slots[i].retire &&
		    (s->slots[i].state == W_READY || s->slots[i].state == W_BUSY))
			return &s->slots[i];
	return NULL;
}

static void
route_fail(struct supervisor *s, struct route *x, const char *text)
{
	sup_error_reply(s, x->ident, x->identlen, x->client_id, MSG_ERR_STATE, text);
	msg_clear(&x->req);
	x->used = 0;
}

static void
route_send(struct supervisor *s, struct route *x, struct slot *w, int64_t now)
{
	x->req.id = x->id;
	if (workers_send(s, w, &x->req) == -1)
		return; /* retried from route_tick */
	msg_clear(&x->req);
	x->sent = 1;
	x->pid = w->pid;
	x->deadline = now + SUP_JOB_MAX_MS;
	w->state = W_BUSY;
}

void
route_request(struct supervisor *s, const void *ident, size_t identlen, const struct msg *req)
{
	struct route *x = NULL;
	struct slot *w;
	int64_t now = clock_ms();

	for (int i = 0; i < ROUTE_MAX && x == NULL; i++)
		if (!s->routes->r[i].used)
			x = &s->routes->r[i];
	if (x == NULL || identlen > sizeof x->ident) {
		sup_error_reply(s, ident, identlen, req->id, MSG_ERR_STATE,
		    "the indexer has too many requests in hand; try again");
		return;
	}
	memset(x, 0, sizeof *x);
	x->used = 1;
	x->id = s->routes->next_id++;
	x->client_id = req->id;
	memcpy(x->ident, ident, identlen);
	x->identlen = identlen;
	x->deadline = now + ROUTE_WAIT_MS;
	x->req = *req;
	x->req.text = req->text ? xstrdup(req->text) : NULL;
	if ((w = indexer_slot(s)) != NULL)
		route_send(s, x, w, now);
}

void
route_reply(struct supervisor *s, struct slot *w, const struct msg *m)
{
	struct msg rep;

	for (int i = 0; i < ROUTE_MAX; i++) {
		struct route *x = &s->routes->r[i];
		if (!x->used || !x->sent || x->id != m->id || x->pid != w->pid)
			continue;
		rep = *m;
		rep.id = x->client_id;
		sup_reply(s, x->ident, x->identlen, &rep);
		x->used = 0;
		return;
	}
	log_warnx("%s %llu from %s.%u answers no request; dropped", msg_type_name(m->type),
	    (unsigned long long)m->id, role_name(w->role), w->index);
}

void
route_tick(struct supervisor *s, int64_t now)
{
	struct slot *w = indexer_slot(s);
	int busy = 0;

	for (int i = 0; i < ROUTE_MAX; i++) {
		struct route *x = &s->routes->r[i];
		if (!x->used)
			continue;
		if (x->sent && (w == NULL || w->pid != x->pid))
			route_fail(s, x, "the indexer exited while answering; it is restarted: "
			    "try again (`kache supervisor log indexer` says why)");
		else if (now >= x->deadline)
			route_fail(s, x, x->sent ? "the indexer did not answer in time" :
			    "the indexer is not up (see `kache supervisor status`); try again");
		else if (!x->sent && w != NULL && !s->stopping)
			route_send(s, x, w, now);
		busy |= x->used && x->sent;
	}
	if (w != NULL && w->state == W_BUSY && !busy)
		w->state = W_READY;
}

int64_t
route_next_deadline(const struct supervisor *s, int64_t now)
{
	int64_t next = now + 1000;

	for (int i = 0; i < ROUTE_MAX; i++)
		if (s->routes->r[i].used && s->routes->r[i].deadline < next)
			next = s->routes->r[i].deadline;
	return next;
}
