/* `kache save-manifest`, and `kache supervisor stop`'s last step: the store's
 * finished build sessions become session manifests in the remote
 * (remote/session.h). The journal is folded in first (by the supervisor's
 * indexer when one runs, else here), so that the last compiles are in. */
#include <stdio.h>
#include <string.h>

#include "common/clock.h"
#include "common/config.h"
#include "common/log.h"
#include "index/index.h"
#include "proto/client.h"
#include "proto/paths.h"
#include "remote/remote.h"
#include "remote/session.h"
#include "supervisor/sup_internal.h"
#include "supervisor/supervisor.h"

/* The indexer ingests before it answers INDEX_STATS. */
#define MANIFEST_INGEST_WAIT_MS 30000

static void ingest(const char *dir);

/* Folds the journal into the index: through the supervisor's indexer, or
 * here with none running. A failure is said; what is in run/sessions is
 * saved anyway. */
static void
ingest(const char *dir)
{
	struct proto_paths p;
	struct index *ix;
	struct msg req, rep;

	if (proto_paths_init(&p, dir) == 0 && proto_supervisor_running(&p)) {
		msg_init(&req, MSG_INDEX_STATS, 0);
		req.epoch = proto_client_epoch();
		if (proto_client_request(dir, &req, &rep, clock_ms() + MANIFEST_INGEST_WAIT_MS) ==
		    PROTO_OK)
			msg_clear(&rep);
		else
			fprintf(stderr,
			    "kache: the indexer did not answer; the last compiles "
			    "may be left out of the session manifest\n");
		msg_clear(&req);
		return;
	}
	if ((ix = index_open_wait(dir, 5000)) == NULL) {
		fprintf(stderr,
		    "kache: cannot open the index of %s; the last compiles may be "
		    "left out of the session manifest\n",
		    dir);
		return;
	}
	index_ingest(ix);
	index_free(&ix);
}

int
sup_save_manifests(const struct config *cfg, int quiet)
{
	const char *dir = config_get(cfg, "cache.dir");
	struct remote *r;
	char err[512];
	int n;

	if (!config_has_remote(cfg)) {
		if (!quiet)
			printf("kache save-manifest: no remote configured; nothing saved\n");
		return 0;
	}
	if ((r = remote_open(cfg, err, sizeof err)) == NULL) {
		fprintf(stderr, "kache save-manifest: %s\n", err);
		return 1;
	}
	if (remote_read_only(r)) {
		printf("kache save-manifest: the remote is read-only; no session manifest "
		       "written\n");
		remote_free(&r);
		return 0;
	}
	ingest(dir);
	/* the stop: the job's union is complete once this save is in */
	n = quiet ? remote_session_save_job(r, dir) : remote_session_save(r, dir, 0, NULL);
	remote_free(&r);
	if (n < 0) {
		fprintf(stderr,
		    "kache save-manifest: a session manifest could not be written "
		    "(see above); its keys stay in %s/run/sessions for the next try\n",
		    dir);
		return 1;
	}
	if (!quiet || n > 0)
		printf("kache%s: %d session manifest%s saved\n",
		    quiet ? " supervisor" : " save-manifest", n, n == 1 ? "" : "s");
	return 0;
}

int
supervisor_save_manifest_cmd(int argc, char **argv)
{
	struct config *cfg;
	int rc;

	(void)argv;
	if (argc != 1) {
		fprintf(stderr, "usage: kache save-manifest\n");
		return 2;
	}
	cfg = config_load_warn(CONFIG_WARN_STDERR, NULL);
	rc = sup_save_manifests(cfg, 0);
	config_free(&cfg);
	return rc;
}
