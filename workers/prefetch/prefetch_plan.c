/* Choosing what a session imports. The one function a planner (or session
 * manifests) will slot into; for now: the packs of the Cargo.lock's crates. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "proto/worker.h"
#include "store/store.h"
#include "workers/prefetch/prefetch_internal.h"

struct listing {
	struct prefetch_plan *plan;
	struct store *store;
	const char *crate;
	size_t prefix_len;
	uint64_t max_bytes, bytes;
};

static int on_object(const char *name, uint64_t size, void *arg);
static void plan_add(struct prefetch_plan *plan, const char *crate, const char *res, uint64_t size);

static void
plan_add(struct prefetch_plan *plan, const char *crate, const char *res, uint64_t size)
{
	struct prefetch_pack *x;

	if (plan->n == plan->cap) {
		plan->cap = plan->cap ? plan->cap * 2 : 64;
		plan->p = xrealloc(plan->p, plan->cap * sizeof *plan->p);
	}
	x = &plan->p[plan->n++];
	snprintf(x->crate, sizeof x->crate, "%s", crate);
	snprintf(x->res, sizeof x->res, "%s", res);
	x->size = size;
}

/* One listed object under packs/<crate>/: "<64 hex>.pack" is a candidate
 * unless the store has its result or the byte cap is reached; anything else
 * (a temporary, a stranger's file) is passed over. */
static int
on_object(const char *name, uint64_t size, void *arg)
{
	struct listing *l = arg;
	const char *base = name + l->prefix_len;
	char res[HASH_HEX_LEN + 1], *entry;
	int present;

	proto_worker_beat();
	if (strlen(base) != HASH_HEX_LEN + 5 || strcmp(base + HASH_HEX_LEN, ".pack") != 0)
		return 0;
	memcpy(res, base, HASH_HEX_LEN);
	res[HASH_HEX_LEN] = '\0';
	if (!hash_hex_valid(res))
		return 0;
	entry = store_path(l->store, "entries", res);
	present = access(entry, F_OK) == 0;
	free(entry);
	if (present) {
		l->plan->present++;
	} else if (l->bytes + size > l->max_bytes) {
		l->plan->over_cap++;
		l->plan->over_cap_bytes += size;
	} else {
		l->bytes += size;
		plan_add(l->plan, l->crate, res, size);
	}
	return 0;
}

void
prefetch_plan_make(struct remote *r, const char *kache_dir, const struct strv *crates,
    uint64_t max_bytes, struct prefetch_plan *plan)
{
	struct listing l = { .plan = plan, .max_bytes = max_bytes };
	char *prefix;

	memset(plan, 0, sizeof *plan);
	if ((l.store = store_open(kache_dir)) == NULL) {
		log_warn("prefetch: cannot open the store %s", kache_dir);
		return;
	}
	/* a remote failing three listings in a row is left for this session */
	for (size_t i = 0, failed = 0; i < crates->n && failed < 3; i++) {
		prefix = xasprintf("packs/%s/", crates->v[i]);
		l.crate = crates->v[i];
		l.prefix_len = strlen(prefix);
		if (remote_list(r, prefix, on_object, &l) != REMOTE_OK)
			plan->list_failed++, failed++;
		else
			failed = 0;
		free(prefix);
	}
	store_free(&l.store);
}

void
prefetch_plan_free(struct prefetch_plan *plan)
{
	free(plan->p);
	memset(plan, 0, sizeof *plan);
}
