/* The planner's Prometheus metrics: requests by endpoint and code, a latency
 * histogram by endpoint, plans by disposition, remote loads. Plain counters
 * updated with atomic adds: no lock on the request path. */
#include <inttypes.h>

#include "planner/planner_srv.h"

static const unsigned codes[] = { 200, 400, 401, 404, 405, 413, 500, 503 };
#define NCODES (sizeof codes / sizeof codes[0])
/* Bucket upper bounds in microseconds; the last bucket is +Inf. */
static const int64_t bounds_us[] = { 250, 500, 1000, 2500, 5000, 10000, 25000, 100000, 1000000 };
#define NBOUNDS (sizeof bounds_us / sizeof bounds_us[0])

static uint64_t requests[EP_N][NCODES + 1];
static uint64_t hist[EP_N][NBOUNDS + 1];
static uint64_t hist_sum_us[EP_N];
static uint64_t plans[PLANNER_DISPOSITIONS];
static uint64_t loads[2];

static unsigned code_index(unsigned code);
static void render_requests(struct buf *out);
static void render_hist(struct buf *out, enum planner_ep ep);

static unsigned
code_index(unsigned code)
{
	for (unsigned i = 0; i < NCODES; i++)
		if (codes[i] == code)
			return i;
	return NCODES;
}

const char *
planner_ep_name(enum planner_ep ep)
{
	static const char *const names[EP_N] = { "manifests", "prefetch_plan", "healthz", "readyz",
		"metrics", "other" };

	return (unsigned)ep < EP_N ? names[ep] : "other";
}

void
planner_metrics_request(enum planner_ep ep, unsigned code, int64_t us)
{
	unsigned b = 0;

	while (b < NBOUNDS && us > bounds_us[b])
		b++;
	__atomic_fetch_add(&requests[ep][code_index(code)], 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&hist[ep][b], 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&hist_sum_us[ep], (uint64_t)(us > 0 ? us : 0), __ATOMIC_RELAXED);
}

void
planner_metrics_plan(enum planner_disposition d)
{
	__atomic_fetch_add(&plans[d], 1, __ATOMIC_RELAXED);
}

void
planner_metrics_remote_load(int ok)
{
	__atomic_fetch_add(&loads[ok ? 1 : 0], 1, __ATOMIC_RELAXED);
}

static void
render_requests(struct buf *out)
{
	buf_addstr(out,
	    "# HELP kache_planner_requests_total Requests by endpoint and status.\n"
	    "# TYPE kache_planner_requests_total counter\n");
	for (unsigned e = 0; e < EP_N; e++) {
		for (unsigned c = 0; c <= NCODES; c++) {
			uint64_t v = __atomic_load_n(&requests[e][c], __ATOMIC_RELAXED);

			if (v == 0)
				continue;
			buf_addf(out,
			    "kache_planner_requests_total{endpoint=\"%s\",code=\"%s%u\"} %" PRIu64
			    "\n",
			    planner_ep_name(e), c < NCODES ? "" : "other",
			    c < NCODES ? codes[c] : 0, v);
		}
	}
}

/* One endpoint's cumulative buckets, in seconds. */
static void
render_hist(struct buf *out, enum planner_ep ep)
{
	uint64_t cum = 0;

	for (unsigned b = 0; b <= NBOUNDS; b++) {
		cum += __atomic_load_n(&hist[ep][b], __ATOMIC_RELAXED);
		if (b < NBOUNDS)
			buf_addf(out,
			    "kache_planner_request_seconds_bucket{endpoint=\"%s\",le=\"%g\"} "
			    "%" PRIu64 "\n",
			    planner_ep_name(ep), (double)bounds_us[b] / 1e6, cum);
		else
			buf_addf(out,
			    "kache_planner_request_seconds_bucket{endpoint=\"%s\",le=\"+Inf\"} "
			    "%" PRIu64 "\n",
			    planner_ep_name(ep), cum);
	}
	buf_addf(out, "kache_planner_request_seconds_sum{endpoint=\"%s\"} %.6f\n",
	    planner_ep_name(ep), (double)__atomic_load_n(&hist_sum_us[ep], __ATOMIC_RELAXED) / 1e6);
	buf_addf(out, "kache_planner_request_seconds_count{endpoint=\"%s\"} %" PRIu64 "\n",
	    planner_ep_name(ep), cum);
}

void
planner_metrics_render(struct buf *out, size_t manifests, int ready)
{
	render_requests(out);
	buf_addstr(out,
	    "# HELP kache_planner_request_seconds Request latency.\n"
	    "# TYPE kache_planner_request_seconds histogram\n");
	for (unsigned e = 0; e < EP_N; e++)
		render_hist(out, e);
	buf_addf(out, "# TYPE kache_planner_manifests gauge\nkache_planner_manifests %zu\n",
	    manifests);
	buf_addf(out, "# TYPE kache_planner_ready gauge\nkache_planner_ready %d\n", ready);
	buf_addstr(out, "# TYPE kache_planner_plans_total counter\n");
	for (unsigned d = 0; d < PLANNER_DISPOSITIONS; d++)
		buf_addf(out, "kache_planner_plans_total{disposition=\"%s\"} %" PRIu64 "\n",
		    planner_disposition_name(d), __atomic_load_n(&plans[d], __ATOMIC_RELAXED));
	buf_addf(out,
	    "# TYPE kache_planner_remote_loads_total counter\n"
	    "kache_planner_remote_loads_total{result=\"ok\"} %" PRIu64 "\n"
	    "kache_planner_remote_loads_total{result=\"failed\"} %" PRIu64 "\n",
	    __atomic_load_n(&loads[1], __ATOMIC_RELAXED),
	    __atomic_load_n(&loads[0], __ATOMIC_RELAXED));
}
