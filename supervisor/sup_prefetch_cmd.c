/* `kache prefetch`: start a build session's prefetch before any cargo
 * command, as a CI job's first step. It leaves the early hint cargo's first
 * question to rustc would leave (proto/hint.h), with the target and profile
 * the user names instead of guessed ones, starts the supervisor if none runs,
 * and with --wait follows the session to its end. The supervisor and its
 * prefetch worker do the work; this side only asks how far they got. */
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/config.h"
#include "common/path.h"
#include "common/run.h"
#include "common/util.h"
#include "proto/client.h"
#include "proto/hint.h"
#include "supervisor/sup_internal.h"

#define POLL_MS 200
#define ASK_MS 3000    /* one request: a busy supervisor still answers in time */
#define RUSTC_MS 30000 /* `rustc -vV`: a rustup proxy may install a toolchain */
#define DEFAULT_WAIT "10m"
#define USAGE                                                                                      \
	"usage: kache prefetch [--manifest-path PATH] [--target TRIPLE] [--release | --profile "   \
	"NAME]\n"                                                                                  \
	"                      [--check] [--wait [--timeout DURATION]]\n"

struct pf_args {
	const char *manifest, *target, *profile, *timeout;
	int wait;
	int check; /* for cargo check, clippy or doc: a check session (proto/hint.h) */
};

/* The prefetch counters of the status document that say what a session did. */
struct pf_seen {
	long queued, done, lost, packs, present, rejected, failed, list_failed, exact, garbage,
	    no_prefetch;
	long long bytes;
	char pf_exit[64]; /* every prefetch worker failed: the last exit of one, else "" */
};

static int value_opt(int argc, char **argv, int *i, const char *name, const char **v);
static int parse_args(int argc, char **argv, struct pf_args *a);
static int hint_ok(const struct proto_hint *h);
static int make_hint(const struct pf_args *a, struct proto_hint *h, struct stat *ls);
static int toolchain(const char *root, char out[17]);
static int ask(const char *dir, struct pf_seen *s);
static int pending(const char *dir, const char *hint, struct pf_seen *e);
static int follow(const char *dir, const struct proto_hint *h, int64_t timeout_ms,
    const struct pf_seen *b, int ours);
static void say_done(const char *dir, const struct pf_seen *b, const struct pf_seen *e, int64_t ms);
static void prefetch_failed(const json_t *workers, char *out, size_t n);
static void say_failed(const char *dir, const struct pf_seen *e);
static enum proto_hint_left leave(const char *dir, const struct config *cfg,
    const struct proto_hint *h, const struct stat *ls);

/* --name VALUE or --name=VALUE at argv[*i] into *v (then 1, *i past it); 0
 * when argv[*i] is not that option; -1 when its value is missing or empty. */
static int
value_opt(int argc, char **argv, int *i, const char *name, const char **v)
{
	size_t n = strlen(name);

	if (strncmp(argv[*i], name, n) != 0 || (argv[*i][n] != '\0' && argv[*i][n] != '='))
		return 0;
	if (argv[*i][n] == '=')
		*v = argv[*i] + n + 1;
	else if (*i + 1 < argc)
		*v = argv[++*i];
	else
		return -1;
	return **v != '\0' ? 1 : -1;
}

static int
parse_args(int argc, char **argv, struct pf_args *a)
{
	static const char *const names[] = { "--manifest-path", "--target", "--profile",
		"--timeout" };
	int r;

	memset(a, 0, sizeof *a);
	for (int i = 1; i < argc; i++) {
		const char **v[] = { &a->manifest, &a->target, &a->profile, &a->timeout };

		r = 0;
		for (size_t k = 0; k < sizeof names / sizeof names[0] && r == 0; k++)
			r = value_opt(argc, argv, &i, names[k], v[k]);
		if (r < 0)
			return -1;
		if (r > 0)
			continue;
		if (strcmp(argv[i], "--release") == 0 || strcmp(argv[i], "-r") == 0)
			a->profile = "release";
		else if (strcmp(argv[i], "--wait") == 0)
			a->wait = 1;
		else if (strcmp(argv[i], "--check") == 0)
			a->check = 1;
		else
			return -1;
	}
	return a->timeout != NULL && !a->wait ? -1 : 0;
}

/* `rustc -vV`'s short id (the session's toolchain), run in the workspace's
 * root so that a rustup toolchain file there answers as it will for cargo.
 * $RUSTC when set. -1 (said) when it does not answer. */
static int
toolchain(const char *root, char out[17])
{
	const char *rustc = getenv("RUSTC") && getenv("RUSTC")[0] ? getenv("RUSTC") : "rustc";
	char *argv[] = { (char *)rustc, "-vV", NULL }, vv[8192];

	if (run_capture(argv, root, vv, sizeof vv, RUSTC_MS) != 0 ||
	    strncmp(vv, "rustc ", 6) != 0) {
		fprintf(stderr,
		    "kache prefetch: `%s -vV` in %s did not answer as rustc does; the toolchain "
		    "is part of a session's fingerprint: install it (or set RUSTC) first\n",
		    rustc, root);
		return -1;
	}
	proto_hint_toolchain_id(vv, strlen(vv), out);
	return 0;
}

/* 1 when h is a hint the supervisor would take (proto/hint.h's rules). */
static int
hint_ok(const struct proto_hint *h)
{
	struct msg m;
	int ok;

	msg_init(&m, MSG_PREFETCH_HINT, 0);
	ok = proto_hint_to_msg(h, &m) == 0;
	msg_clear(&m);
	return ok;
}

/* The hint a: the workspace of --manifest-path or of the working directory,
 * the target (--target, else CARGO_BUILD_TARGET, else the host) and profile
 * (--profile, --release, else dev) named, a check session's with --check.
 * -1 (said) when none can be made. */
static int
make_hint(const struct pf_args *a, struct proto_hint *h, struct stat *ls)
{
	char cwd[PATH_MAX], lock[PATH_MAX], *from, *abs;
	const char *target = a->target ? a->target : getenv("CARGO_BUILD_TARGET");
	const char *profile = proto_hint_profile_dir(a->profile ? a->profile : "dev");
	int rc;

	memset(h, 0, sizeof *h);
	if (getcwd(cwd, sizeof cwd) == NULL)
		return -1;
	abs = a->manifest ? path_absolute(a->manifest, cwd) : xstrdup(cwd);
	from = a->manifest ? path_dirname(abs) : xstrdup(abs);
	rc = proto_hint_find_lock_up(from, lock, sizeof lock, ls);
	if (rc < 0)
		fprintf(stderr,
		    "kache prefetch: no Cargo.lock at or above %s: run it in the workspace "
		    "(or give --manifest-path); a prefetch plans from Cargo.lock, so commit "
		    "it (or run `cargo generate-lockfile`) first\n",
		    from);
	free(from);
	free(abs);
	if (rc < 0)
		return -1;
	proto_hint_workspace(h, lock);
	snprintf(h->target, sizeof h->target, "%s", target ? target : "");
	snprintf(h->profile, sizeof h->profile, "%s", profile);
	if (a->check)
		proto_hint_mark_check(h);
	h->guess = 1;
	if (toolchain(h->root, h->toolchain) < 0)
		return -1;
	if (!hint_ok(h)) {
		fprintf(stderr,
		    "kache prefetch: target '%s' or profile '%s' cannot name a session (letters, "
		    "digits, '_', '.', '-', at most %d; a target given as a .json file is not "
		    "supported), or the workspace's path is too long\n",
		    target ? target : "", profile, PROTO_HINT_NAME_MAX);
		return -1;
	}
	return 0;
}

/* The supervisor's prefetch counters. 0, or -1 when it does not answer. */
static int
ask(const char *dir, struct pf_seen *s)
{
	struct msg req, rep;
	json_error_t jerr;
	json_t *root = NULL, *pf, *sk;
	int rc = -1;

	msg_init(&req, MSG_STATUS, 0);
	if (proto_client_request(dir, &req, &rep, clock_ms() + ASK_MS) != PROTO_OK)
		return -1;
	if (rep.type == MSG_STATUS_REPLY && rep.text &&
	    (root = json_loads(rep.text, 0, &jerr)) != NULL &&
	    json_is_object(pf = json_object_get(root, "prefetch"))) {
#define N(o, k) ((long)json_integer_value(json_object_get((o), (k))))
		sk = json_object_get(pf, "skipped");
		s->queued = N(pf, "sessions_queued");
		s->done = N(pf, "sessions_done");
		s->lost = N(pf, "sessions_lost");
		s->packs = N(pf, "packs");
		s->bytes = (long long)json_integer_value(json_object_get(pf, "bytes"));
		s->present = N(sk, "present");
		s->rejected = N(sk, "rejected");
		s->failed = N(sk, "failed");
		s->list_failed = N(sk, "listings_failed");
		s->exact = N(json_object_get(pf, "sources"), "exact_session");
		s->garbage = N(json_object_get(pf, "sources"), "sessions_not_valid");
		s->no_prefetch = N(json_object_get(pf, "hints_dropped_why"), "no_prefetch");
#undef N
		prefetch_failed(json_object_get(root, "workers"), s->pf_exit, sizeof s->pf_exit);
		rc = 0;
	}
	json_decref(root);
	msg_clear(&rep);
	return rc;
}

/* When no prefetch worker of the status's workers can run (each failed: a
 * configuration error, or restarted past its limit), the last exit of one
 * into out; else out is "". */
static void
prefetch_failed(const json_t *workers, char *out, size_t n)
{
	const json_t *w;
	size_t i;

	out[0] = '\0';
	json_array_foreach(workers, i, w) {
		const char *role = json_string_value(json_object_get(w, "role"));
		const char *state = json_string_value(json_object_get(w, "state"));
		const char *last = json_string_value(json_object_get(w, "last_exit"));

		if (role == NULL || strcmp(role, "prefetch") != 0)
			continue;
		if (state == NULL || strcmp(state, "failed") != 0) {
			out[0] = '\0';
			return;
		}
		snprintf(out, n, "%s", last != NULL ? last : "?");
	}
}

/* No prefetch worker can run: why, with its log's last warning. */
static void
say_failed(const char *dir, const struct pf_seen *e)
{
	char warning[512];

	sup_worker_warning(dir, "prefetch", 0, warning, sizeof warning);
	printf("prefetch: no session: the prefetch worker cannot run (%s); the build's misses "
	       "are compiled here; fix it, then `kache supervisor restart`. %s%s\n",
	    e->pf_exit, warning[0] ? "Its log says: " : "See `kache supervisor log prefetch.0`",
	    warning);
}

/* The session's counters in e, and 1 while it is not over: its hint file
 * still waits in run/hints (not taken by the supervisor yet), or a session is
 * queued or running; -1 when the supervisor does not answer. The file is
 * looked at before the status is asked: the supervisor counts a hint in the
 * turn it takes the file, so a status asked after the file was seen gone
 * has it. Asked the other way round, a hint taken between the answer and
 * the look read as over with the counters from before it (said as "no
 * session manifest": CI, sanitizer pass). */
static int
pending(const char *dir, const char *hint, struct pf_seen *e)
{
	struct stat st;
	int waiting = stat(hint, &st) == 0;

#ifdef KACHE_FAULT_INJECTION
	if (getenv("KACHE_TEST_PREFETCH_WAIT_PAUSE_MS") != NULL) /* the supervisor takes the file */
		/* NOLINTNEXTLINE(cert-err34-c): a fault-injection knob set by the tests */
		usleep((useconds_t)atoi(getenv("KACHE_TEST_PREFETCH_WAIT_PAUSE_MS")) * 1000);
#endif
	if (ask(dir, e) < 0)
		return -1;
	return waiting || e->queued > 0;
}

/* Follows the session until the hint was taken and no session is queued or
 * running, for at most timeout_ms, and says what it did (ours: the session
 * started here; else one under way, whose numbers status has), or that it
 * goes on.
 * 0 either way: whatever is not imported yet is fetched or compiled on its
 * miss, so a CI step waiting here never fails the job for it. */
static int
follow(const char *dir, const struct proto_hint *h, int64_t timeout_ms, const struct pf_seen *b,
    int ours)
{
	struct pf_seen e = *b;
	int64_t start = clock_ms(), deadline = start + timeout_ms;
	char ws[17], *hint;
	int r;

	proto_hint_ws_id(h->lock, proto_hint_is_check(h->profile), ws);
	hint = xasprintf("%s/%s/%s", dir, PROTO_HINT_DIR, ws);
	while ((r = pending(dir, hint, &e)) > 0 && clock_ms() < deadline)
		usleep(POLL_MS * 1000);
	free(hint);
	if (r < 0) {
		fprintf(stderr,
		    "kache prefetch: the supervisor stopped answering; see `kache "
		    "supervisor status`\n");
		return 0;
	}
	if (r > 0) {
		fprintf(stderr,
		    "kache prefetch: still at it after %.1f s; it goes on in the background "
		    "(`kache supervisor status` follows it), and what is not there yet is "
		    "fetched on its miss\n",
		    (double)timeout_ms / 1000);
		return 0;
	}
	if (ours)
		say_done(dir, b, &e, clock_ms() - start);
	else if (e.pf_exit[0] != '\0')
		say_failed(dir, &e);
	else
		printf("prefetch: no session running now (`kache supervisor status` says what "
		       "they imported)\n");
	return 0;
}

/* What the session did: b the counters before, e after. */
static void
say_done(const char *dir, const struct pf_seen *b, const struct pf_seen *e, int64_t ms)
{
	char size[32];

	format_size((uint64_t)(e->bytes - b->bytes), size, sizeof size);
	if (e->no_prefetch > b->no_prefetch) {
		if (e->pf_exit[0] != '\0') {
			say_failed(dir, e);
			return;
		}
		printf("prefetch: the running supervisor took no session (no remote in its "
		       "configuration, or no prefetch worker can run: `kache supervisor status`; "
		       "`kache supervisor restart` to take this configuration)\n");
		return;
	}
	if (e->list_failed > b->list_failed && e->packs == b->packs) {
		printf(
		    "prefetch: the remote could not be read; nothing imported (`kache supervisor "
		    "log prefetch.0` says why); the build's misses are fetched or compiled\n");
		return;
	}
	if (e->exact == b->exact && e->packs == b->packs && e->garbage > b->garbage) {
		printf("prefetch: a session manifest in the remote is not valid (`kache "
		       "supervisor log prefetch.0` says which and why); ignored: cargo's first "
		       "compile plans without it\n");
		return;
	}
	if (e->exact == b->exact && e->packs == b->packs) {
		printf("prefetch: no session manifest of this fingerprint (Cargo.lock, toolchain, "
		       "target, profile) in the remote; cargo's first compile plans from the "
		       "closest session or the crates' packs\n");
		return;
	}
	printf("prefetch: %ld packs imported (%s) in %.1f s; %ld already here, %ld rejected, "
	       "%ld failed%s\n",
	    e->packs - b->packs, size, (double)ms / 1000, e->present - b->present,
	    e->rejected - b->rejected, e->failed - b->failed,
	    e->lost > b->lost ? "; the session was lost (see `kache supervisor log prefetch.0`)" :
	                        "");
}

/* The early hint, as the wrapper leaves it at cargo's first question (its
 * marker <ws>.early), unless a session of the workspace is under way: a
 * compile's or an early hint within prefetch.cooldown. */
static enum proto_hint_left
leave(const char *dir, const struct config *cfg, const struct proto_hint *h, const struct stat *ls)
{
	char *early = proto_hint_early_due(dir, cfg, h->lock, ls, proto_hint_is_check(h->profile));
	enum proto_hint_left left = PROTO_HINT_UNDER_WAY;

	if (early != NULL)
		left = proto_hint_leave(dir, cfg, early, ls, h);
	free(early);
	return left;
}

int
supervisor_prefetch_cmd(int argc, char **argv)
{
	struct config *cfg;
	struct pf_args a;
	struct proto_hint h;
	struct pf_seen before = { 0 };
	struct stat ls;
	enum proto_hint_left left;
	const char *dir;
	int64_t timeout = 0;
	int rc = 1;

	if (parse_args(argc, argv, &a) < 0) {
		fputs(USAGE, stderr);
		return 2;
	}
	cfg = config_load_warn(CONFIG_WARN_STDERR, NULL);
	dir = config_get(cfg, "cache.dir");
	if (!config_has_remote(cfg) || config_get_size(cfg, "prefetch.max_bytes") <= 0) {
		fprintf(stderr, "kache prefetch: %s: nothing to prefetch\n",
		    !config_has_remote(cfg) ?
		        "no remote configured (remote.type = none; see `kache "
		        "help config`)" :
		        "prefetch is off (prefetch.max_bytes = 0)");
		goto out;
	}
	if (a.wait && parse_duration(a.timeout ? a.timeout : DEFAULT_WAIT, &timeout) < 0) {
		fprintf(stderr,
		    "kache prefetch: bad --timeout '%s': use a duration such as 90s, "
		    "10m or 1h\n",
		    a.timeout);
		rc = 2;
		goto out;
	}
	if (make_hint(&a, &h, &ls) < 0)
		goto out;
	if ((rc = sup_start(dir, 1)) != 0)
		goto out;
	rc = 1;
	if (a.wait && ask(dir, &before) < 0) {
		fprintf(stderr, "kache prefetch: the supervisor does not answer\n");
		goto out;
	}
	left = leave(dir, cfg, &h, &ls);
	if (left == PROTO_HINT_FAILED) {
		fprintf(stderr, "kache prefetch: the hint could not be written under %s/%s\n", dir,
		    PROTO_HINT_DIR);
		goto out;
	}
	printf("prefetch: %s %s (target %s, profile %s)\n",
	    left == PROTO_HINT_UNDER_WAY ? "a session is under way for" : "session started for",
	    h.root, h.target[0] ? h.target : "host", h.profile);
	rc = a.wait ? follow(dir, &h, timeout, &before, left != PROTO_HINT_UNDER_WAY) : 0;
out:
	config_free(&cfg);
	return rc;
}
