/* Index requests: the CLI's INDEX_* requests go to the indexer worker, which
 * owns the index, under an id of ours; its reply goes back to the client with
 * the client's id. A request waits at most ROUTE_WAIT_MS for an indexer to be
 * up, and at most the job limit for its answer; when the indexer dies
 * meanwhile the client is told so at once. A long request (verify, purge, gc)
 * sends INDEX_PROGRESS on the way: each goes on to the client and gives the
 * request another job limit, up to ROUTE_CAP_MS in all. */
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "supervisor/sup_internal.h"

#define ROUTE_MAX 64
#define ROUTE_WAIT_MS 2500                /* for an indexer to come up; the CLI waits 3 s */
#define ROUTE_CAP_MS (24LL * 3600 * 1000) /* a request that keeps progressing */

struct route {
	int used, sent;
	uint64_t id;        /* ours, sent to the indexer */
	uint64_t client_id; /* the client's, echoed */
	pid_t pid;          /* the indexer it was sent to */
	int64_t deadline;
	int64_t cap;    /* sent + ROUTE_CAP_MS: progress extends deadline to here */
	struct msg req; /* kept until sent */
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
static struct route *route_find(struct supervisor *s, struct slot *w, uint64_t id);

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
		if (s->slots[i].role == ROLE_INDEXER && s->slots[i].pid > 0 &&
		    !s->slots[i].retire &&
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
	x->cap = now + ROUTE_CAP_MS;
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

/* The request sent to w under our id, NULL (logged) when none is in hand. */
static struct route *
route_find(struct supervisor *s, struct slot *w, uint64_t id)
{
	for (int i = 0; i < ROUTE_MAX; i++) {
		struct route *x = &s->routes->r[i];
		if (x->used && x->sent && x->id == id && x->pid == w->pid)
			return x;
	}
	log_warnx("message %llu from %s.%u answers no request; dropped", (unsigned long long)id,
	    role_name(w->role), w->index);
	return NULL;
}

void
route_reply(struct supervisor *s, struct slot *w, const struct msg *m)
{
	struct route *x = route_find(s, w, m->id);
	struct msg rep;

	if (x == NULL)
		return;
	rep = *m;
	rep.id = x->client_id;
	sup_reply(s, x->ident, x->identlen, &rep);
	x->used = 0;
}

void
route_progress(struct supervisor *s, struct slot *w, const struct msg *m)
{
	struct route *x = route_find(s, w, m->id);
	int64_t now = clock_ms();
	struct msg p;

	if (x == NULL)
		return;
	x->deadline = now + SUP_JOB_MAX_MS < x->cap ? now + SUP_JOB_MAX_MS : x->cap;
	p = *m;
	p.id = x->client_id;
	sup_reply(s, x->ident, x->identlen, &p);
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
			route_fail(s, x,
			    "the indexer exited while answering; it is restarted: "
			    "try again (`kache supervisor log indexer` says why)");
		else if (now >= x->deadline)
			route_fail(s, x,
			    x->sent ?
			        "the indexer did not answer in time" :
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
