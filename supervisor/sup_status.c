/* The status document (JSON) the STATUS request returns. */
#include <jansson.h>
#include <stdlib.h>
#include <unistd.h>

#include "common/clock.h"
#include "supervisor/sup_internal.h"

static json_t *worker_json(const struct slot *w, int64_t now);
static json_t *prefetch_json(const struct supervisor *s, const struct prefetch_counts *n);
static json_t *outcomes_json(const struct supervisor *s);

#define SET(o, name, v) json_object_set_new((o), (name), json_integer((json_int_t)(v)))

/* The prefetch sessions: hints seen (and why some were dropped), sessions
 * run, what they imported and what they skipped, and why, and the compiles
 * the imported entries served. */
static json_t *
prefetch_json(const struct supervisor *s, const struct prefetch_counts *n)
{
	json_t *o = json_object(), *why = json_object(), *skipped = json_object();

	SET(o, "hints", n->hints);
	SET(o, "hints_early", n->early);
	SET(o, "sessions_queued", prefetch_queued(s));
	SET(o, "hints_served_early", n->early_served);
	SET(o, "hints_dropped", n->dropped);
	SET(why, "session_running", n->dropped_busy);
	SET(why, "no_prefetch", n->dropped_off);
	SET(why, "queue_full", n->dropped_full);
	SET(why, "stale", n->dropped_stale);
	SET(why, "replaced", n->dropped_replaced);
	json_object_set_new(o, "hints_dropped_why", why);
	SET(o, "hints_malformed", n->malformed);
	SET(o, "sessions", n->sessions);
	SET(o, "sessions_done", n->done);
	SET(o, "sessions_lost", n->failed);
	SET(o, "sessions_retried", n->retried);
	SET(o, "packs", n->packs);
	SET(o, "bytes", n->bytes);
	SET(o, "hits", n->hits);
	SET(o, "bundle_parts", n->parts);
	SET(o, "packs_from_bundle_parts", n->packs_parts);
	SET(skipped, "present", n->present);
	SET(skipped, "over_max_bytes", n->over_cap);
	SET(skipped, "rejected", n->rejected);
	SET(skipped, "failed", n->failed_packs);
	SET(skipped, "listings_failed", n->list_failed);
	SET(skipped, "lock_refused", n->refused);
	json_object_set_new(o, "skipped", skipped);
	json_object_set_new(o, "sources",
	    json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}", "planner", (json_int_t)n->from_planner,
	        "exact_session", (json_int_t)n->from_exact, "closest_session",
	        (json_int_t)n->from_closest, "packs", (json_int_t)n->from_packs,
	        "last_shared_crates", (json_int_t)n->last_shared, "sessions_not_valid",
	        (json_int_t)n->garbage_sessions));
	json_object_set_new(o, "packs_from",
	    json_pack("{s:I, s:I, s:I, s:I}", "planner", (json_int_t)n->packs_planner,
	        "exact_session", (json_int_t)n->packs_exact, "closest_session",
	        (json_int_t)n->packs_closest, "packs", (json_int_t)n->packs_packs));
	return o;
}

/* Uploads and fetches by how they ended, and the fetch breaker. */
static json_t *
outcomes_json(const struct supervisor *s)
{
	const struct jobs_outcomes *o = jobs_outcomes(s);

	return json_pack("{s:s, s:{s:I, s:I, s:I}, s:{s:I, s:I, s:I, s:I, s:I, s:I}}",
	    "fetch_breaker", jobs_fetch_breaker_open(s) ? "open" : "closed", "uploads", "ok",
	    (json_int_t)o->upload[JOB_OK], "failed",
	    (json_int_t)o->upload[JOB_FAILED] + (json_int_t)o->upload[JOB_MISS], "remote_off",
	    (json_int_t)o->upload[JOB_REMOTE_OFF], "fetches", "ok", (json_int_t)o->fetch[JOB_OK],
	    "miss", (json_int_t)o->fetch[JOB_MISS], "failed", (json_int_t)o->fetch[JOB_FAILED],
	    "remote_off", (json_int_t)o->fetch[JOB_REMOTE_OFF], "late", (json_int_t)o->fetch_late,
	    "skipped_breaker_open", (json_int_t)o->fetch_skipped);
}

static json_t *
worker_json(const struct slot *w, int64_t now)
{
	int up = w->pid > 0 && w->state != W_BACKOFF;

	return json_pack("{s:s, s:i, s:I, s:s, s:I, s:i, s:s, s:I, s:i}", "role",
	    role_name(w->role), "index", (int)w->index, "pid", (json_int_t)w->pid, "state",
	    w->deferred ? "waiting" : wstate_name(w->state), "uptime_s",
	    (json_int_t)(up ? (now - w->spawned_ms) / 1000 : 0), "restarts", (int)w->restarts,
	    "last_exit", w->last_exit, "jobs_done", (json_int_t)w->jobs_done, "queue",
	    w->job != NULL);
}

/* A new string the caller frees. */
char *
status_json(const struct supervisor *s)
{
	int64_t now = clock_ms();
	long queued, inflight, fetches;
	json_t *root, *workers = json_array();
	char *out;

	for (int i = 0; i < s->nslots; i++)
		json_array_append_new(workers, worker_json(&s->slots[i], now));
	jobs_counts(s, &queued, &inflight, &fetches);
	root = json_pack("{s:I, s:s, s:I, s:s, s:s, s:s, s:b, s:{s:I, s:I, s:I}, s:o, s:o}", "pid",
	    (json_int_t)getpid(), "version", KACHE_VERSION, "uptime_s",
	    (json_int_t)((now - s->started_ms) / 1000), "kache_dir", s->kache_dir, "remote",
	    config_get(s->cfg, "remote.type"), "state", s->stopping ? "stopping" : "running",
	    "remote_off", jobs_remote_off(s), "queue", "uploads", (json_int_t)queued, "uploading",
	    (json_int_t)inflight, "fetches", (json_int_t)fetches, "workers", workers, "prefetch",
	    prefetch_json(s, prefetch_counts(s)));
	if (root != NULL) {
		json_object_set_new(root, "outcomes", outcomes_json(s));
		json_object_set_new(root, "spawned",
		    json_pack("{s:I, s:I, s:I}", "forked", (json_int_t)s->spawned_forked, "exec",
		        (json_int_t)s->spawned_exec, "zygote_pid", (json_int_t)s->zpid));
	}
	out = json_dumps(root, JSON_INDENT(2));
	json_decref(root);
	return out;
}
