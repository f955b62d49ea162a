/* The planner's HTTP side, on libmicrohttpd: routing, the bearer token
 * (compared in constant time), bounds on every request (body 413, headers
 * through MHD's connection memory limit, time, connections), one log line
 * a request with its latency. Handlers run on MHD's thread pool. */
#include <arpa/inet.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "planner/planner_srv.h"

/* Bounds the header block and MHD's per-connection buffers. */
#define PLANNER_CONN_MEMORY (32 * 1024)

struct planner_srv {
	struct MHD_Daemon *d;
	struct planner_srv_cfg c;
	struct planner_state *st; /* NULL until ready; set once */
};

struct req {
	int64_t t0;
	enum planner_ep ep;
	unsigned code;
	int too_big;
	struct buf body;
};

static enum planner_ep route(const char *url);
static int authorized(struct planner_srv *s, struct MHD_Connection *c);
static void account(struct req *rq);
static enum MHD_Result reply(struct MHD_Connection *c, struct req *rq, unsigned code,
    const char *type, char *body);
static enum MHD_Result reply_error(struct MHD_Connection *c, struct req *rq, unsigned code,
    const char *why);
static enum MHD_Result first_call(struct planner_srv *s, struct MHD_Connection *c, struct req *rq,
    const char *method);
static enum MHD_Result do_manifest(struct planner_srv *s, struct MHD_Connection *c, struct req *rq);
static enum MHD_Result do_plan(struct planner_srv *s, struct MHD_Connection *c, struct req *rq);
static enum MHD_Result dispatch(struct planner_srv *s, struct MHD_Connection *c, struct req *rq);
static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url,
    const char *method, const char *version, const char *upload, size_t *upsize, void **con_cls);
static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
    enum MHD_RequestTerminationCode toe);

static enum planner_ep
route(const char *url)
{
	static const char *const paths[EP_N - 1] = { "/v1/manifests", "/v1/prefetch-plan",
		"/healthz", "/readyz", "/metrics" };

	for (unsigned i = 0; i < EP_N - 1; i++)
		if (strcmp(url, paths[i]) == 0)
			return (enum planner_ep)i;
	return EP_OTHER;
}

/* "Bearer <token>", compared in constant time over the token's length. */
static int
authorized(struct planner_srv *s, struct MHD_Connection *c)
{
	const char *h =
	    MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
	size_t n;

	if (h == NULL || strncmp(h, "Bearer ", 7) != 0)
		return 0;
	h += 7;
	n = strlen(h);
	return n == s->c.token_len && sodium_memcmp(h, s->c.token, n) == 0;
}

/* Counts and logs a request when it is answered (or, never answered, when
 * its connection ends): a client that has its answer finds it in /metrics. */
static void
account(struct req *rq)
{
	int64_t us = clock_us() - rq->t0;

	planner_metrics_request(rq->ep, rq->code, us);
	log_info("%s %u %lld us", planner_ep_name(rq->ep), rq->code, (long long)us);
}

/* Queues code with body (taken; NULL: empty). */
static enum MHD_Result
reply(struct MHD_Connection *c, struct req *rq, unsigned code, const char *type, char *body)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(body ? strlen(body) : 0,
	    body ? body : (char *)"", body ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
	enum MHD_Result ret;

	if (r == NULL) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	if (code == MHD_HTTP_UNAUTHORIZED)
		MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
	rq->code = code;
	account(rq);
	ret = MHD_queue_response(c, code, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result
reply_error(struct MHD_Connection *c, struct req *rq, unsigned code, const char *why)
{
	json_t *o = json_pack("{s:s}", "error", why);
	char *s = json_dumps(o, JSON_COMPACT);

	json_decref(o);
	return reply(c, rq, code, "application/json", s);
}

/* Headers only: method, route, token and declared length are checked before
 * any of the body is read. */
static enum MHD_Result
first_call(struct planner_srv *s, struct MHD_Connection *c, struct req *rq, const char *method)
{
	const char *cl;
	int post = rq->ep == EP_MANIFESTS || rq->ep == EP_PLAN;

	if (rq->ep == EP_OTHER)
		return reply_error(c, rq, MHD_HTTP_NOT_FOUND, "no such endpoint");
	if (strcmp(method, post ? "POST" : "GET") != 0)
		return reply_error(c, rq, MHD_HTTP_METHOD_NOT_ALLOWED,
		    post ? "use POST" : "use GET");
	if (post && !authorized(s, c))
		return reply_error(c, rq, MHD_HTTP_UNAUTHORIZED,
		    "a valid 'Authorization: Bearer <token>' header is required");
	cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
	if (post && cl != NULL && strtoull(cl, NULL, 10) > s->c.max_body)
		return reply_error(c, rq, MHD_HTTP_CONTENT_TOO_LARGE, "the body is too large");
	return MHD_YES;
}

static enum MHD_Result
do_manifest(struct planner_srv *s, struct MHD_Connection *c, struct req *rq)
{
	struct planner_manifest m;
	char why[256];
	size_t n;
	int rc;

	if (planner_decode_manifest(rq->body.p ? rq->body.p : "", rq->body.len, &m, why,
	        sizeof why) < 0)
		return reply_error(c, rq, MHD_HTTP_BAD_REQUEST, why);
	if (m.created_ms == 0)
		m.created_ms = clock_wall_ms();
	rc = planner_state_put(s->st, &m, 0);
	n = m.n;
	planner_manifest_free(&m);
	if (rc < 0)
		return reply_error(c, rq, MHD_HTTP_INTERNAL_SERVER_ERROR, "cannot store it");
	return reply(c, rq, MHD_HTTP_OK, "application/json",
	    xasprintf("{\"stored\":%s,\"fingerprint\":\"%s\",\"keys\":%zu}",
	        rc == 1 ? "true" : "false", m.fp, n));
}

static enum MHD_Result
do_plan(struct planner_srv *s, struct MHD_Connection *c, struct req *rq)
{
	struct planner_intent in;
	struct planner_plan p;
	char why[256], *body;
	uint64_t cap = s->c.max_plan_bytes;

	if (planner_decode_intent(rq->body.p ? rq->body.p : "", rq->body.len, &in, why,
	        sizeof why) < 0)
		return reply_error(c, rq, MHD_HTTP_BAD_REQUEST, why);
	if (in.has_max && in.max_bytes < cap)
		cap = in.max_bytes;
	planner_state_plan(s->st, &in, cap, &p);
	if (cap == 0)
		p.d = PLANNER_DO_NOTHING;
	planner_metrics_plan(p.d);
	body = planner_encode_plan(&p);
	planner_plan_free(&p);
	planner_intent_free(&in);
	return reply(c, rq, MHD_HTTP_OK, "application/json", body);
}

/* The whole request is here (body within bounds). */
static enum MHD_Result
dispatch(struct planner_srv *s, struct MHD_Connection *c, struct req *rq)
{
	struct planner_state *st = __atomic_load_n(&s->st, __ATOMIC_ACQUIRE);
	struct buf m;

	if (rq->too_big)
		return reply_error(c, rq, MHD_HTTP_CONTENT_TOO_LARGE, "the body is too large");
	switch (rq->ep) {
	case EP_HEALTHZ: return reply(c, rq, MHD_HTTP_OK, "text/plain", xstrdup("ok\n"));
	case EP_READYZ:
		return st ?
		    reply(c, rq, MHD_HTTP_OK, "text/plain", xstrdup("ready\n")) :
		    reply(c, rq, MHD_HTTP_SERVICE_UNAVAILABLE, "text/plain", xstrdup("loading\n"));
	case EP_METRICS:
		buf_init(&m);
		planner_metrics_render(&m, st ? planner_state_count(st) : 0, st != NULL);
		return reply(c, rq, MHD_HTTP_OK, "text/plain; version=0.0.4", buf_detach(&m, NULL));
	default: break;
	}
	if (st == NULL)
		return reply_error(c, rq, MHD_HTTP_SERVICE_UNAVAILABLE, "state is loading; retry");
	return rq->ep == EP_MANIFESTS ? do_manifest(s, c, rq) : do_plan(s, c, rq);
}

static enum MHD_Result
handler(void *cls, struct MHD_Connection *c, const char *url, const char *method,
    const char *version, const char *upload, size_t *upsize, void **con_cls)
{
	struct planner_srv *s = cls;
	struct req *rq = *con_cls;

	if (rq == NULL) {
		rq = xcalloc(1, sizeof *rq);
		rq->t0 = clock_us();
		rq->ep = route(url);
		buf_init(&rq->body);
		*con_cls = rq;
		return first_call(s, c, rq, method);
	}
	if (rq->code != 0) { /* answered already: the rest of the body is dropped */
		*upsize = 0;
		return MHD_YES;
	}
	if (*upsize > 0) {
		if (rq->too_big || rq->body.len + *upsize > s->c.max_body) {
			rq->too_big = 1;
			buf_free(&rq->body);
		} else {
			buf_add(&rq->body, upload, *upsize);
		}
		*upsize = 0;
		return MHD_YES;
	}
	return dispatch(s, c, rq);
}

/* Frees a request; one never answered is counted here. */
static void
completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe)
{
	struct req *rq = *con_cls;

	if (rq == NULL)
		return;
	if (rq->code == 0)
		account(rq);
	if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK)
		log_info("%s %u: connection ended early", planner_ep_name(rq->ep), rq->code);
	buf_free(&rq->body);
	free(rq);
	*con_cls = NULL;
}

struct planner_srv *
planner_srv_start(const struct planner_srv_cfg *c)
{
	struct planner_srv *s = xcalloc(1, sizeof *s);
	struct sockaddr_in sa;

	s->c = *c;
	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_port = htons(c->port);
	if (inet_pton(AF_INET, c->host, &sa.sin_addr) != 1) {
		log_warnx("planner: listen address %s is not an IPv4 address", c->host);
		free(s);
		return NULL;
	}
	s->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO, 0, NULL, NULL,
	    handler, s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_THREAD_POOL_SIZE,
	    c->threads, MHD_OPTION_CONNECTION_LIMIT, c->max_connections,
	    MHD_OPTION_CONNECTION_TIMEOUT, c->timeout_s, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
	    (size_t)PLANNER_CONN_MEMORY, MHD_OPTION_NOTIFY_COMPLETED, completed, s, MHD_OPTION_END);
	if (s->d == NULL) {
		log_warnx("planner: cannot listen on %s:%u", c->host, c->port);
		free(s);
		return NULL;
	}
	log_info("planner: listening on %s:%u", c->host, c->port);
	return s;
}

void
planner_srv_set_state(struct planner_srv *s, struct planner_state *st)
{
	__atomic_store_n(&s->st, st, __ATOMIC_RELEASE);
}

void
planner_srv_stop(struct planner_srv **sp)
{
	if (*sp == NULL)
		return;
	MHD_stop_daemon((*sp)->d);
	free(*sp);
	*sp = NULL;
}
