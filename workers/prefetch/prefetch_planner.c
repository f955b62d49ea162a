/* The planner as the first source of a prefetch plan: the build intent
 * posted to kache-planner's /v1/prefetch-plan, its answer checked field by
 * field (prefetch_internal.h). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "remote/planner_client.h"
#include "remote/session.h"
#include "workers/prefetch/prefetch_internal.h"

/* Candidates one answer may name at most (the server's own key bound). */
#define PREFETCH_PLANNER_MAX 65536

static char *intent(const struct proto_hint *h, const struct strv *crates, const char *fp);
static int decode(const char *text, size_t n, struct prefetch_planner_answer *a, char *why,
    size_t whylen);
static int take(json_t *v, size_t i, struct prefetch_planner_answer *a, char *why, size_t whylen);
static int crate_valid(const char *s);
static void once_per_kind(const struct planner_client *pc, int kind, const char *what);

/* The JSON of the build intent: fingerprint, toolchain, target, profile
 * (those the hint has), crates: "name version" entries as name and version
 * (the planner ranks sessions by crate@version), "name" ones by name only. */
static char *
intent(const struct proto_hint *h, const struct strv *crates, const char *fp)
{
	json_t *root = json_object(), *a = json_array();
	char *s;

	planner_client_build_fields(root, fp, h->toolchain, h->target, h->profile);
	for (size_t i = 0; crates != NULL && i < crates->n; i++) {
		const char *sp = strchr(crates->v[i], ' ');
		json_t *c = json_object();

		json_object_set_new(c, "name",
		    sp ? json_stringn(crates->v[i], (size_t)(sp - crates->v[i])) :
		         json_string(crates->v[i]));
		if (sp != NULL)
			json_object_set_new(c, "version", json_string(sp + 1));
		json_array_append_new(a, c);
	}
	json_object_set_new(root, "crates", a);
	s = json_dumps(root, JSON_COMPACT);
	json_decref(root);
	return s;
}

/* [A-Za-z0-9_]{1,64}: a crate name as rustc spells it (and as the planner
 * folds it). */
static int
crate_valid(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 64)
		return 0;
	return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") == n;
}

/* Candidate i: key (64 hex), crate (a crate name), size (a non-negative
 * integer), part (optional: 64 hex, the bundle part holding the pack); else
 * -1 with why. */
static int
take(json_t *v, size_t i, struct prefetch_planner_answer *a, char *why, size_t whylen)
{
	const char *key = json_string_value(json_object_get(v, "key"));
	const char *crate = json_string_value(json_object_get(v, "crate"));
	json_t *size = json_object_get(v, "size"), *pj = json_object_get(v, "part");
	const char *part = json_string_value(pj);
	struct prefetch_pack *p = &a->p[i];

	if (key == NULL || strlen(key) != HASH_HEX_LEN || !hash_hex_valid(key)) {
		snprintf(why, whylen, "candidates[%zu]: 'key' is not 64 hex digits", i);
		return -1;
	}
	if (crate == NULL || !crate_valid(crate)) {
		snprintf(why, whylen, "candidates[%zu]: 'crate' is not a crate name", i);
		return -1;
	}
	if (!json_is_integer(size) || json_integer_value(size) < 0) {
		snprintf(why, whylen, "candidates[%zu]: 'size' is not a non-negative integer", i);
		return -1;
	}
	if (pj != NULL && !json_is_null(pj) &&
	    (part == NULL || strlen(part) != HASH_HEX_LEN || !hash_hex_valid(part))) {
		snprintf(why, whylen, "candidates[%zu]: 'part' is not 64 hex digits", i);
		return -1;
	}
	snprintf(p->crate, sizeof p->crate, "%s", crate);
	snprintf(p->res, sizeof p->res, "%s", key);
	snprintf(p->part, sizeof p->part, "%s", part != NULL ? part : "");
	p->size = (uint64_t)json_integer_value(size);
	return 0;
}

/* The answer: disposition, and for execute its candidates, every one checked. */
static int
decode(const char *text, size_t n, struct prefetch_planner_answer *a, char *why, size_t whylen)
{
	json_t *root = json_loadb(text, n, JSON_REJECT_DUPLICATES, NULL), *c;
	const char *d = root ? json_string_value(json_object_get(root, "disposition")) : NULL;
	int rc = -1;

	if (d == NULL) {
		snprintf(why, whylen, "its answer is not JSON with a string 'disposition'");
	} else if (strcmp(d, "use_fallback") == 0 || strcmp(d, "do_nothing") == 0) {
		a->disposition = d[0] == 'u' ? PREFETCH_PLANNER_FALLBACK : PREFETCH_PLANNER_NOTHING;
		rc = 0;
	} else if (strcmp(d, "execute") != 0) {
		snprintf(why, whylen, "unknown disposition '%.40s'", d);
	} else if (!json_is_array(c = json_object_get(root, "candidates")) ||
	    json_array_size(c) > PREFETCH_PLANNER_MAX) {
		snprintf(why, whylen, "'candidates' is not an array of at most %d",
		    PREFETCH_PLANNER_MAX);
	} else {
		a->n = json_array_size(c);
		a->p = xcalloc(a->n ? a->n : 1, sizeof *a->p);
		rc = 0;
		for (size_t i = 0; rc == 0 && i < a->n; i++)
			rc = take(json_array_get(c, i), i, a, why, whylen);
		a->disposition = PREFETCH_PLANNER_EXECUTE;
	}
	json_decref(root);
	return rc;
}

/* One log line per kind of fallback (answer, failure) for the life of the
 * worker: a planner down is said once, not once per session. */
static void
once_per_kind(const struct planner_client *pc, int kind, const char *what)
{
	static int said[2];

	if (kind < 0 || kind > 1 || said[kind]++)
		return;
	log_warnx("planner %s: %s; prefetching without it", planner_client_endpoint(pc), what);
}

int
prefetch_planner_parse(const char *text, size_t n, struct prefetch_planner_answer *a, char *why,
    size_t whylen)
{
	memset(a, 0, sizeof *a);
	if (decode(text, n, a, why, whylen) == 0)
		return 0;
	prefetch_planner_free(a);
	return -1;
}

void
prefetch_planner_ask(struct remote *r, const struct proto_hint *h, const struct strv *crates,
    struct prefetch_planner_answer *a)
{
	struct planner_client *pc = r ? remote_planner(r) : NULL;
	char fp[HASH_HEX_LEN + 1], why[400], msg[480];
	struct buf resp;
	char *body;
	int rc;

	memset(a, 0, sizeof *a);
	if (pc == NULL)
		return; /* PREFETCH_PLANNER_OFF */
	if (h->lock_hash[0] == '\0') {
		a->disposition = PREFETCH_PLANNER_FALLBACK;
		return;
	}
	remote_session_fingerprint(h->lock_hash, h->toolchain, h->target, h->profile, fp);
	body = intent(h, crates, fp);
	buf_init(&resp);
	rc = -1;
	snprintf(why, sizeof why, "the build intent could not be encoded");
	if (body != NULL)
		rc = planner_client_post(pc, "/v1/prefetch-plan", body, &resp, why, sizeof why);
	if (rc == 0)
		rc = prefetch_planner_parse(resp.p, resp.len, a, why, sizeof why);
	if (rc < 0) {
		snprintf(msg, sizeof msg, "no plan (%s)", why);
		once_per_kind(pc, 1, msg);
		a->disposition = PREFETCH_PLANNER_FAILED;
	} else if (a->disposition == PREFETCH_PLANNER_FALLBACK) {
		once_per_kind(pc, 0, "answered use_fallback (no recorded session matches)");
	}
	buf_free(&resp);
	free(body);
}

void
prefetch_planner_free(struct prefetch_planner_answer *a)
{
	free(a->p);
	a->p = NULL;
	a->n = 0;
}
