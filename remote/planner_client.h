/* The client of kache-planner (docs/planner.md): one bounded HTTP POST of
 * JSON with the bearer token, and the session manifest posted after it is
 * saved. Processes only (libcurl); never the wrapper. */
#ifndef KACHE_PLANNER_CLIENT_H
#define KACHE_PLANNER_CLIENT_H

#include <jansson.h>
#include <stddef.h>

#include "common/config.h"
#include "common/util.h"

/* A planner answer larger than this is refused. */
#define PLANNER_CLIENT_RESPONSE_MAX (8 << 20)

struct planner_client;
struct remote_session;

/* From planner.endpoint, planner.token (KACHE_PLANNER_TOKEN) and
 * planner.timeout_ms; NULL when planner.endpoint is empty (no planner). */
struct planner_client *planner_client_open(const struct config *cfg);
void planner_client_free(struct planner_client **pc);
const char *planner_client_endpoint(const struct planner_client *pc);

/* POSTs body (JSON) to <endpoint><path> within planner.timeout_ms in all,
 * the answer (at most PLANNER_CLIENT_RESPONSE_MAX bytes) into resp. 0 on a
 * 200; -1 with one sentence in why (connection, timeout, HTTP status with
 * the server's reason, size), nothing logged. */
int planner_client_post(struct planner_client *pc, const char *path, const char *body,
    struct buf *resp, char *why, size_t whylen);

/* Sets the fields that name a build in a manifest and in a plan request:
 * fingerprint, and toolchain, target and profile when known (non-empty). */
void planner_client_build_fields(json_t *root, const char *fp, const char *toolchain,
    const char *target, const char *profile);

/* Posts session s of fingerprint fp to /v1/manifests, best effort: one log
 * line when it fails. 0 posted, -1 not. */
int planner_client_post_session(struct planner_client *pc, const char *fp,
    const struct remote_session *s);

#endif
