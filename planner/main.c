/* kache-planner: the planner service (docs/planner.md). Settings from flags,
 * the kache config file ([planner] section; --config FILE) and KACHE_PLANNER_*
 * variables; the token from planner.token_file or KACHE_PLANNER_TOKEN, never
 * from the command line. The main thread only waits for a signal and, with
 * --from-remote, reloads the state from the remote on a timer. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "common/clock.h"
#include "common/config.h"
#include "common/exit.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/path.h"
#include "planner/planner_srv.h"

struct opts {
	struct planner_srv_cfg c;
	char *db;
	int from_remote;
	int64_t refresh_ms;
	int64_t max_sessions;
	int64_t max_age_ms;
};

static void usage(void) __attribute__((noreturn));
static int parse_flags(int argc, char **argv, struct config *cfg, int *from_remote);
static int read_token(const struct config *cfg, struct planner_srv_cfg *c);
static int parse_listen(const char *v, struct planner_srv_cfg *c);
static int settings(const struct config *cfg, struct opts *o);
static int wait_signal(int64_t ms);
static int serve(const struct config *cfg, struct opts *o);
static void expire(struct planner_state *st);

static void
usage(void)
{
	fprintf(stderr,
	    "usage: kache-planner [--listen ADDR:PORT] [--db DIR] [--config FILE]\n"
	    "                     [--from-remote] [--refresh DURATION]\n"
	    "                     [--max-sessions N] [--max-age DURATION]\n"
	    "the token: planner.token_file, KACHE_PLANNER_TOKEN_FILE or "
	    "KACHE_PLANNER_TOKEN (see docs/planner.md)\n");
	exit(KACHE_EXIT_CONFIG);
}

/* Flags override the file and the environment (config_set). --config must
 * come first to matter: it is read before the others apply. */
static int
parse_flags(int argc, char **argv, struct config *cfg, int *from_remote)
{
	static const struct option lo[] = { { "listen", required_argument, NULL, 'l' },
		{ "db", required_argument, NULL, 'd' }, { "config", required_argument, NULL, 'c' },
		{ "from-remote", no_argument, NULL, 'r' },
		{ "refresh", required_argument, NULL, 'R' }, { "help", no_argument, NULL, 'h' },
		{ "max-sessions", required_argument, NULL, 'S' },
		{ "max-age", required_argument, NULL, 'A' }, { NULL, 0, NULL, 0 } };
	int ch;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		if (ch == 'l')
			config_set(cfg, "planner.listen", optarg);
		else if (ch == 'd')
			config_set(cfg, "planner.db", optarg);
		else if (ch == 'r')
			*from_remote = 1;
		else if (ch == 'R')
			config_set(cfg, "planner.refresh", optarg);
		else if (ch == 'S')
			config_set(cfg, "planner.max_sessions", optarg);
		else if (ch == 'A')
			config_set(cfg, "planner.max_age", optarg);
		else if (ch != 'c')
			return -1;
	}
	return optind == argc ? 0 : -1;
}

static int
read_token(const struct config *cfg, struct planner_srv_cfg *c)
{
	const char *file = config_get(cfg, "planner.token_file");
	struct buf b;

	buf_init(&b);
	if (file[0] != '\0') {
		if (fs_read_file(file, &b, sizeof c->token - 1) < 0) {
			log_warn("planner: cannot read the token file %s", file);
			buf_free(&b);
			return -1;
		}
	} else {
		buf_addstr(&b, config_get(cfg, "planner.token"));
	}
	while (b.len > 0 && (b.p[b.len - 1] == '\n' || b.p[b.len - 1] == '\r'))
		b.p[--b.len] = '\0';
	if (b.len < 16 || b.len >= sizeof c->token || strlen(b.p) != b.len) {
		log_warnx("planner: a token of 16 to %zu bytes is required (planner.token_file, "
		          "KACHE_PLANNER_TOKEN_FILE or KACHE_PLANNER_TOKEN)",
		    sizeof c->token - 1);
		buf_free(&b);
		return -1;
	}
	memcpy(c->token, b.p, b.len + 1);
	c->token_len = b.len;
	sodium_memzero(b.p, b.len);
	buf_free(&b);
	return 0;
}

static int
parse_listen(const char *v, struct planner_srv_cfg *c)
{
	const char *colon = strrchr(v, ':');
	char *end;
	long port;

	if (colon == NULL || (size_t)(colon - v) >= sizeof c->host || colon == v)
		return -1;
	port = strtol(colon + 1, &end, 10);
	if (*end != '\0' || port <= 0 || port > 65535)
		return -1;
	memcpy(c->host, v, (size_t)(colon - v));
	c->host[colon - v] = '\0';
	c->port = (uint16_t)port;
	return 0;
}

/* Every setting checked; -1 with one log line naming what to fix. */
static int
settings(const struct config *cfg, struct opts *o)
{
	int64_t tmo = 0;

	if (parse_listen(config_get(cfg, "planner.listen"), &o->c) < 0) {
		log_warnx("planner: --listen / planner.listen must be IPV4:PORT, not '%s'",
		    config_get(cfg, "planner.listen"));
		return -1;
	}
	o->db = xstrdup(config_get(cfg, "planner.db"));
	if (o->db[0] == '\0') {
		log_warnx("planner: a state directory is required (--db DIR or KACHE_PLANNER_DB)");
		return -1;
	}
	o->c.max_body = (uint64_t)config_get_size(cfg, "planner.max_body");
	o->c.max_plan_bytes = (uint64_t)config_get_size(cfg, "planner.max_plan_bytes");
	o->c.max_connections = (unsigned)config_get_int(cfg, "planner.max_connections");
	o->c.threads = (unsigned)config_get_int(cfg, "planner.threads");
	if (config_get_size(cfg, "planner.max_body") <= 0 ||
	    config_get_size(cfg, "planner.max_plan_bytes") < 0 || o->c.max_connections == 0 ||
	    o->c.max_connections > 65536 || o->c.threads == 0 || o->c.threads > 256 ||
	    parse_duration(config_get(cfg, "planner.request_timeout"), &tmo) < 0 || tmo < 1000 ||
	    parse_duration(config_get(cfg, "planner.refresh"), &o->refresh_ms) < 0 ||
	    o->refresh_ms < 1000) {
		log_warnx("planner: a planner.* size, count or duration is out of range "
		          "(kache config shows them)");
		return -1;
	}
	o->c.timeout_s = (unsigned)(tmo / 1000);
	o->max_sessions = config_get_int(cfg, "planner.max_sessions");
	if (o->max_sessions < 0 || o->max_sessions > 100000000 ||
	    parse_duration(config_get(cfg, "planner.max_age"), &o->max_age_ms) < 0) {
		log_warnx("planner: planner.max_sessions must be 0 to 100000000 and "
		          "planner.max_age a duration (720h; 0: never), not '%s' / '%s'",
		    config_get(cfg, "planner.max_sessions"), config_get(cfg, "planner.max_age"));
		return -1;
	}
	o->from_remote = o->from_remote || config_get_bool(cfg, "planner.from_remote");
	if (o->from_remote && !config_has_remote(cfg)) {
		log_warnx("planner: --from-remote needs a remote (remote.type, KACHE_REMOTE)");
		return -1;
	}
	return read_token(cfg, &o->c);
}

/* Waits up to ms for SIGINT or SIGTERM (blocked in every thread): 1 when
 * one came. */
static int
wait_signal(int64_t ms)
{
	sigset_t set;
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000 };

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	return sigtimedwait(&set, NULL, &ts) > 0;
}

/* The bounds applied now; what went is said in one line. */
static void
expire(struct planner_state *st)
{
	int n = planner_state_expire(st, clock_wall_ms());

	if (n > 0)
		log_info("planner: %d session manifests expired (planner.max_sessions, "
		         "planner.max_age); %zu held",
		    n, planner_state_count(st));
}

static int
serve(const struct config *cfg, struct opts *o)
{
	struct planner_srv *srv = planner_srv_start(&o->c);
	char *dbdir = path_join(o->db, "state"), *scratch = path_join(o->db, "tmp");
	char *tmp = xstrdup(o->db); /* remote reads go through <db>/tmp */
	struct planner_state *st = srv ? planner_state_open(dbdir) : NULL;
	int loaded = 0;

	if (st != NULL && fs_mkdir_p(scratch, 0700) < 0) {
		log_warn("planner: cannot create %s", scratch);
		planner_state_free(&st);
	}
	free(dbdir);
	free(scratch);
	if (st == NULL) {
		planner_srv_stop(&srv);
		free(tmp);
		return 1;
	}
	planner_state_set_bounds(st, (size_t)o->max_sessions, o->max_age_ms);
	expire(st);
	if (!o->from_remote)
		planner_srv_set_state(srv, st);
	for (;;) {
		if (o->from_remote) {
			int ok = planner_remote_load(cfg, st, tmp) >= 0;

			planner_metrics_remote_load(ok);
			if (ok && !loaded++)
				planner_srv_set_state(srv, st);
		}
		/* until the first load, retried every 2 s; ages checked at each
		 * wake (hourly without a remote) */
		if (wait_signal(o->from_remote && !loaded ? 2000 :
		            o->from_remote                ? o->refresh_ms :
		                                            3600 * 1000))
			break;
		expire(st);
	}
	log_info("planner: stopping");
	planner_srv_stop(&srv);
	planner_state_free(&st);
	free(tmp);
	return 0;
}

int
main(int argc, char **argv)
{
	struct buf warn;
	struct config *cfg;
	struct opts o;
	sigset_t set;
	int rc;

	memset(&o, 0, sizeof o);
	log_init("planner", stderr, LOG_LEVEL_INFO);
	for (int i = 1; i + 1 < argc; i++)
		if (strcmp(argv[i], "--config") == 0)
			setenv("KACHE_CONFIG", argv[i + 1], 1);
	buf_init(&warn);
	cfg = config_load(&warn);
	if (warn.len > 0)
		fprintf(stderr, "%s", warn.p);
	buf_free(&warn);
	if (sodium_init() < 0 || parse_flags(argc, argv, cfg, &o.from_remote) < 0)
		usage();
	if (settings(cfg, &o) < 0)
		exit(KACHE_EXIT_CONFIG);
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	rc = serve(cfg, &o);
	sodium_memzero(o.c.token, sizeof o.c.token);
	free(o.db);
	config_free(&cfg);
	return rc;
}
