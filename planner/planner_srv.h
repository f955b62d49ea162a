/* The kache-planner process: HTTP (planner_http.c), metrics
 * (planner_metrics.c) and the main loop (main.c). */
#ifndef KACHE_PLANNER_SRV_H
#define KACHE_PLANNER_SRV_H

#include <stddef.h>
#include <stdint.h>

#include "common/util.h"
#include "planner/planner.h"

enum planner_ep { EP_MANIFESTS = 0, EP_PLAN, EP_HEALTHZ, EP_READYZ, EP_METRICS, EP_OTHER, EP_N };

struct planner_srv_cfg {
	char host[64];
	uint16_t port;
	char token[256];
	size_t token_len;
	uint64_t max_body;
	uint64_t max_plan_bytes;
	unsigned max_connections;
	unsigned timeout_s;
	unsigned threads;
};

struct planner_srv;

/* Starts serving (not ready: /readyz and /v1/ answer 503 until
 * planner_srv_set_state). NULL, logged, when it cannot listen. */
struct planner_srv *planner_srv_start(const struct planner_srv_cfg *c);
/* The state to serve from; ready from now on. */
void planner_srv_set_state(struct planner_srv *s, struct planner_state *st);
/* Stops serving (waits for requests in flight); NULLs *sp. */
void planner_srv_stop(struct planner_srv **sp);

/* planner_metrics.c: counters, updated from any thread. */
void planner_metrics_request(enum planner_ep ep, unsigned code, int64_t us);
void planner_metrics_plan(enum planner_disposition d);
void planner_metrics_remote_load(int ok);
/* The Prometheus text exposition. */
void planner_metrics_render(struct buf *out, size_t manifests, int ready);
const char *planner_ep_name(enum planner_ep ep);

#endif
