/* --from-remote: the planner's state rebuilt from the session manifests in
 * the remote (docs/remote-layout.md), read with kache's own remote code, so
 * that any replica over one bucket answers the same plans and losing the
 * planner's disk loses nothing. A session manifest names crates and sizes
 * but no versions or compile times: its keys match an intent's crates by
 * name and save nothing per byte (ranked by order of first use). */
#include <stdio.h>
#include <string.h>

#include "common/clock.h"
#include "common/config.h"
#include "common/log.h"
#include "planner/planner.h"
#include "remote/remote.h"
#include "remote/session.h"

static int on_name(const char *name, uint64_t size, int64_t mtime_ms, void *arg);
static void to_manifest(const struct remote_session *s, struct planner_manifest *m);

/* Collects sessions/<64 hex> names; anything else in the prefix is not one. */
static int
on_name(const char *name, uint64_t size, int64_t mtime_ms, void *arg)
{
	const char *fp = name + strlen(REMOTE_SESSION_PREFIX);

	if (str_starts_with(name, REMOTE_SESSION_PREFIX) && strlen(fp) == HASH_HEX_LEN &&
	    strspn(fp, "0123456789abcdef") == HASH_HEX_LEN)
		strv_push(arg, name);
	return 0;
}

static void
to_manifest(const struct remote_session *s, struct planner_manifest *m)
{
	const char *part;

	memset(m, 0, sizeof *m);
	strv_init(&m->features);
	remote_session_fingerprint(s->lock, s->toolchain, s->target, s->profile, m->fp);
	snprintf(m->toolchain, sizeof m->toolchain, "%s", s->toolchain);
	snprintf(m->target, sizeof m->target, "%s", s->target);
	snprintf(m->profile, sizeof m->profile, "%s", s->profile);
	m->created_ms = s->created_ms;
	m->k = xcalloc(s->n + 1, sizeof *m->k);
	for (size_t i = 0; i < s->n && i < PLANNER_MAX_KEYS; i++) {
		snprintf(m->k[i].res, sizeof m->k[i].res, "%s", s->k[i].res);
		snprintf(m->k[i].crate, sizeof m->k[i].crate, "%s", s->k[i].crate);
		for (char *p = m->k[i].crate; *p; p++)
			if (*p == '-')
				*p = '_';
		snprintf(m->k[i].version, sizeof m->k[i].version, "%s", s->k[i].version);
		m->k[i].bytes = s->k[i].bytes;
		m->k[i].order = (uint32_t)i;
		if ((part = remote_session_key_part(s, i)) != NULL)
			memcpy(m->k[i].part, part, sizeof m->k[i].part);
		m->n = i + 1;
	}
}

int
planner_remote_load(const struct config *cfg, struct planner_state *st, const char *tmp)
{
	struct remote *r;
	struct strv names;
	char err[512], why[256];
	size_t stored = 0, bad = 0, failed = 0;
	int64_t t0 = clock_ms();
	int rc = 0;

	if ((r = remote_open(cfg, err, sizeof err)) == NULL) {
		log_warnx("planner: cannot open the remote: %s", err);
		return -1;
	}
	strv_init(&names);
	if (remote_list(r, REMOTE_SESSION_PREFIX, on_name, &names) != REMOTE_OK) {
		log_warnx("planner: cannot list %s in the remote; state not reloaded",
		    REMOTE_SESSION_PREFIX);
		rc = -1;
	}
	for (size_t i = 0; rc == 0 && i < names.n; i++) {
		struct remote_session s;
		struct planner_manifest m;
		enum remote_result rr = remote_session_get(r, tmp, names.v[i], &s, why, sizeof why);

		if (rr == REMOTE_FAILED) {
			failed++; /* logged by the transport; the next reload tries again */
		} else if (rr == REMOTE_OK) {
			to_manifest(&s, &m);
			if (planner_state_put(st, &m, 1) > 0)
				stored++;
			planner_manifest_free(&m);
		} else if (why[0] != '\0') {
			bad++;
		}
		remote_session_free(&s);
	}
	if (bad > 0)
		log_warnx("planner: %zu session manifests in the remote are not valid; ignored",
		    bad);
	log_info("planner: remote: %zu session manifests listed, %zu new, %zu unread, in %lld ms",
	    names.n, stored, failed, (long long)(clock_ms() - t0));
	rc = rc < 0 ? -1 : (int)names.n;
	strv_free(&names);
	remote_free(&r);
	return rc;
}
