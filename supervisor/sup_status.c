/* The status document (JSON) the STATUS request returns. */
#include <jansson.h>
#include <stdlib.h>
#include <unistd.h>

#include "common/clock.h"
#include "supervisor/sup_internal.h"

static json_t *worker_json(const struct slot *w, int64_t now);
static json_t *prefetch_json(const struct prefetch_counts *n);

/* The prefetch sessions: hints seen, sessions run, what they imported and
 * what they skipped, and why. */
static json_t *
prefetch_json(const struct prefetch_counts *n)
{
	json_t *j =
	    json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:{s:I, s:I, s:I, s:I, s:I, "
	              "s:I}}",
	        "hints", (json_int_t)n->hints, "hints_dropped", (json_int_t)n->dropped,
	        "hints_malformed", (json_int_t)n->malformed, "sessions", (json_int_t)n->sessions,
	        "sessions_done", (json_int_t)n->done, "sessions_lost", (json_int_t)n->failed,
	        "packs", (json_int_t)n->packs, "bytes", (json_int_t)n->bytes, "skipped", "present",
	        (json_int_t)n->present, "over_max_bytes", (json_int_t)n->over_cap, "rejected",
	        (json_int_t)n->rejected, "failed", (json_int_t)n->failed_packs, "listings_failed",
	        (json_int_t)n->list_failed, "lock_refused", (json_int_t)n->refused);

	json_object_set_new(j, "sources",
	    json_pack("{s:I, s:I, s:I, s:I, s:I}", "exact_session", (json_int_t)n->from_exact,
	        "closest_session", (json_int_t)n->from_closest, "packs", (json_int_t)n->from_packs,
	        "last_shared_crates", (json_int_t)n->last_shared, "sessions_not_valid",
	        (json_int_t)n->garbage_sessions));
	return j;
}

static json_t *
worker_json(const struct slot *w, int64_t now)
{
	int up = w->pid > 0 && w->state != W_BACKOFF;

	return json_pack("{s:s, s:i, s:I, s:s, s:I, s:i, s:s, s:I, s:i}", "role",
	    role_name(w->role), "index", (int)w->index, "pid", (json_int_t)w->pid, "state",
	    wstate_name(w->state), "uptime_s", (json_int_t)(up ? (now - w->spawned_ms) / 1000 : 0),
	    "restarts", (int)w->restarts, "last_exit", w->last_exit, "jobs_done",
	    (json_int_t)w->jobs_done, "queue", w->job != NULL);
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
	    prefetch_json(prefetch_counts(s)));
	out = json_dumps(root, JSON_INDENT(2));
	json_decref(root);
	return out;
}
