/* The crates of a workspace as cargo knows them: `cargo metadata
 * --format-version 1 --offline`, run in the workspace root, bounded in time
 * and in output, with the worker's niceness. It names each target the way
 * rustc's --crate-name does (a [lib] name may differ from its package's),
 * and its resolve graph gives the order cargo compiles in, leaves first. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "proto/worker.h"
#include "store/journal.h"
#include "store/pack.h"
#include "workers/prefetch/prefetch_internal.h"

extern char **environ;

struct graph {
	size_t n;
	const char **id;   /* package i's id */
	size_t *order;     /* packages, leaves first */
	size_t *dep_start; /* dependencies of i: dep[dep_start[i] .. dep_start[i+1]] */
	size_t *dep;
};

struct id_ix {
	const char *id;
	size_t i;
};

static char **child_env(void);
static pid_t spawn(const char *root, int out);
static int collect(pid_t pid, int fd, int64_t deadline, struct buf *out, char *why, size_t whylen);
static int finish(pid_t pid, int64_t deadline, char *why, size_t whylen);
static int cmp_id(const void *a, const void *b);
static size_t find_id(const struct id_ix *ix, size_t n, const char *id);
static void graph_order(json_t *nodes, struct graph *g);
static void graph_edges(json_t *nodes, struct graph *g);
static const char *str(json_t *v);
static int cmp_name_ix(const void *a, const void *b);
static void add_targets(json_t *pkg, struct strv *crates, struct strv *versioned);
static int kind_compiled(json_t *kinds);

/* The environment cargo runs with: the worker's, less the wrappers, so that
 * its rustc probes do not come back to kache. */
static char **
child_env(void)
{
	size_t n = 0, k = 0;
	char **env;

	while (environ[n] != NULL)
		n++;
	env = xcalloc(n + 1, sizeof *env);
	for (size_t i = 0; i < n; i++)
		if (strncmp(environ[i], "RUSTC_WRAPPER=", 14) != 0 &&
		    strncmp(environ[i], "RUSTC_WORKSPACE_WRAPPER=", 24) != 0)
			env[k++] = environ[i];
	return env;
}

/* Starts cargo metadata in root, its stdout on out, in a process group of
 * its own (killed whole on a timeout). $CARGO when cargo named itself to
 * the wrapper that started kache, else cargo from PATH. -1 when fork fails. */
static pid_t
spawn(const char *root, int out)
{
	const char *cargo = getenv("CARGO");
	char *argv[] = { "cargo", "metadata", "--format-version", "1", "--offline", NULL };
	char **env = child_env();
	pid_t pid;
	int null;

	if (cargo == NULL || cargo[0] != '/' || access(cargo, X_OK) != 0)
		cargo = "cargo";
	pid = fork();
	if (pid == 0) {
		setpgid(0, 0);
		null = open("/dev/null", O_RDWR | O_CLOEXEC);
		if (null < 0 || dup2(null, 0) < 0 || dup2(null, 2) < 0 || dup2(out, 1) < 0 ||
		    chdir(root) < 0)
			_exit(126);
		execvpe(cargo, argv, env);
		_exit(127);
	}
	if (pid > 0) /* as in the child: a kill of the group never misses it */
		setpgid(pid, pid);
	free(env);
	return pid;
}

/* Reads the child's stdout until EOF, at most PREFETCH_META_MAX bytes and
 * until deadline, beating meanwhile. 0 at EOF; -1 with why. */
static int
collect(pid_t pid, int fd, int64_t deadline, struct buf *out, char *why, size_t whylen)
{
	char chunk[65536];
	struct pollfd p = { .fd = fd, .events = POLLIN, .revents = 0 };
	int64_t left;
	ssize_t got;

	(void)pid;
	while ((left = deadline - clock_ms()) > 0) {
		proto_worker_beat();
		if (poll(&p, 1, left < 100 ? (int)left : 100) < 0 && errno != EINTR) {
			snprintf(why, whylen, "poll: %s", strerror(errno));
			return -1;
		}
		if (p.revents == 0)
			continue;
		if ((got = read(fd, chunk, sizeof chunk)) == 0)
			return 0;
		if (got < 0 && errno != EINTR && errno != EAGAIN) {
			snprintf(why, whylen, "read: %s", strerror(errno));
			return -1;
		}
		if (got > 0 && out->len + (size_t)got > PREFETCH_META_MAX) {
			snprintf(why, whylen, "it wrote more than %d MiB", PREFETCH_META_MAX >> 20);
			return -1;
		}
		if (got > 0)
			buf_add(out, chunk, (size_t)got);
	}
	snprintf(why, whylen, "it took longer than %d s", PREFETCH_META_TIMEOUT_MS / 1000);
	return -1;
}

/* Reaps the child by deadline (its output is whole: it exits at once). 0
 * when it exited 0; -1 with why, the group killed when still running. */
static int
finish(pid_t pid, int64_t deadline, char *why, size_t whylen)
{
	int status = 0;
	pid_t w;

	while ((w = waitpid(pid, &status, WNOHANG)) == 0 && clock_ms() < deadline)
		usleep(5000);
	if (w == 0) {
		kill(-pid, SIGKILL);
		waitpid(pid, &status, 0);
		snprintf(why, whylen, "it did not exit in time");
		return -1;
	}
	if (w < 0) {
		snprintf(why, whylen, "waitpid: %s", strerror(errno));
		return -1;
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
		snprintf(why, whylen, "cargo was not found (PATH)");
	else
		snprintf(why, whylen, "it exited with status %d",
		    WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
	return -1;
}

int
prefetch_meta_read(const char *root, struct strv *crates, struct strv *versioned, char *why,
    size_t whylen)
{
	int64_t deadline = clock_ms() + PREFETCH_META_TIMEOUT_MS;
	int p[2], rc = -1;
	struct buf out;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) < 0) {
		snprintf(why, whylen, "pipe: %s", strerror(errno));
		return -1;
	}
	if ((pid = spawn(root, p[1])) < 0)
		snprintf(why, whylen, "fork: %s", strerror(errno));
	close(p[1]);
	buf_init(&out);
	if (pid > 0 && collect(pid, p[0], deadline, &out, why, whylen) < 0) {
		kill(-pid, SIGKILL);
		waitpid(pid, NULL, 0);
	} else if (pid > 0 && finish(pid, deadline + 1000, why, whylen) == 0) {
		rc = prefetch_meta_parse(out.p ? out.p : "", out.len, crates, versioned, why,
		    whylen);
	}
	close(p[0]);
	buf_free(&out);
	return rc;
}

/* A JSON string's text; "" for anything else. */
static const char *
str(json_t *v)
{
	return json_is_string(v) ? json_string_value(v) : "";
}

static int
cmp_name_ix(const void *a, const void *b)
{
	const struct id_ix *x = a, *y = b;
	int c = strcmp(x->id, y->id);

	return c != 0 ? c : (x->i > y->i) - (x->i < y->i);
}

void
prefetch_unique_in_order(struct strv *v)
{
	struct id_ix *ix = xcalloc(v->n + 1, sizeof *ix);
	unsigned char *drop = xcalloc(v->n + 1, 1);
	size_t out = 0;

	for (size_t i = 0; i < v->n; i++)
		ix[i] = (struct id_ix){ v->v[i], i };
	if (v->n > 1) /* an empty array may be NULL */
		qsort(ix, v->n, sizeof *ix, cmp_name_ix);
	for (size_t i = 1; i < v->n; i++)
		drop[ix[i].i] = strcmp(ix[i].id, ix[i - 1].id) == 0;
	for (size_t i = 0; i < v->n; i++) {
		if (drop[i])
			free(v->v[i]);
		else
			v->v[out++] = v->v[i];
	}
	v->n = out;
	free(drop);
	free(ix);
}

static int
cmp_id(const void *a, const void *b)
{
	return strcmp(((const struct id_ix *)a)->id, ((const struct id_ix *)b)->id);
}

/* The index of the package whose id is id; n when none. */
static size_t
find_id(const struct id_ix *ix, size_t n, const char *id)
{
	struct id_ix key = { id, 0 };
	const struct id_ix *hit = bsearch(&key, ix, n, sizeof *ix, cmp_id);

	return hit ? hit->i : n;
}

/* 1 when a target of these kinds is compiled under its own name (tests,
 * benches and examples are not fetched ahead). */
static int
kind_compiled(json_t *kinds)
{
	static const char *const ok[] = { "lib", "rlib", "dylib", "cdylib", "staticlib",
		"proc-macro", "bin", "custom-build" };
	size_t i, k;
	json_t *v;

	json_array_foreach(kinds, i, v)
		for (k = 0; k < sizeof ok / sizeof ok[0]; k++)
			if (json_is_string(v) && strcmp(json_string_value(v), ok[k]) == 0)
				return 1;
	return 0;
}

/* Each compiled target's crate name ('-' as '_'), when it is a name kache
 * would have packed (pack_crate_name_ok); others are passed over. With
 * versioned, "name version" too, when the package's version is valid. */
static void
add_targets(json_t *pkg, struct strv *crates, struct strv *versioned)
{
	json_t *targets = json_object_get(pkg, "targets"), *t;
	const char *s, *ver = str(json_object_get(pkg, "version"));
	char name[65], *nv;
	size_t i;

	json_array_foreach(targets, i, t) {
		s = json_string_value(json_object_get(t, "name"));
		if (s == NULL || strlen(s) >= sizeof name ||
		    !kind_compiled(json_object_get(t, "kind")))
			continue;
		snprintf(name, sizeof name, "%s", s);
		for (char *p = name; *p; p++)
			if (*p == '-')
				*p = '_';
		if (!pack_crate_name_ok(name))
			continue;
		strv_push(crates, name);
		if (versioned == NULL)
			continue;
		nv = journal_version_valid(ver) ? xasprintf("%s %s", name, ver) : xstrdup(name);
		strv_push(versioned, nv);
		free(nv);
	}
}

/* The dependency edges of resolve.nodes into g->dep (by package index);
 * edges naming an unknown package are dropped. */
static void
graph_edges(json_t *nodes, struct graph *g)
{
	struct id_ix *ix = xcalloc(g->n + 1, sizeof *ix);
	size_t *from = NULL, *to = NULL, ne = 0, cap = 0, i, k, a, b;
	json_t *node, *dep;

	for (i = 0; i < g->n; i++)
		ix[i] = (struct id_ix){ g->id[i], i };
	if (g->n > 1) /* an empty array may be NULL */
		qsort(ix, g->n, sizeof *ix, cmp_id);
	json_array_foreach(nodes, i, node) {
		a = find_id(ix, g->n, str(json_object_get(node, "id")));
		json_array_foreach(json_object_get(node, "dependencies"), k, dep) {
			b = find_id(ix, g->n, str(dep));
			if (a == g->n || b == g->n || a == b)
				continue;
			if (ne == cap) {
				cap = cap ? cap * 2 : 256;
				from = xrealloc(from, cap * sizeof *from);
				to = xrealloc(to, cap * sizeof *to);
			}
			from[ne] = a;
			to[ne++] = b;
		}
	}
	g->dep_start = xcalloc(g->n + 2, sizeof *g->dep_start);
	g->dep = xcalloc(ne + 1, sizeof *g->dep);
	for (k = 0; k < ne; k++) /* counts at +2, sums, places at +1: a stable CSR */
		g->dep_start[from[k] + 2]++;
	for (i = 2; i <= g->n + 1; i++)
		g->dep_start[i] += g->dep_start[i - 1];
	for (k = 0; k < ne; k++)
		g->dep[g->dep_start[from[k] + 1]++] = to[k];
	free(from);
	free(to);
	free(ix);
}

/* Fills g->order with every package after its dependencies: a depth-first
 * walk from each package in package order, emitting a package when its
 * dependencies are done (iterative: a deep graph does not grow the stack).
 * An edge back into the walk (dev-dependencies make cycles) is passed over. */
static void
graph_order(json_t *nodes, struct graph *g)
{
	unsigned char *state = xcalloc(g->n + 1, 1); /* 0 new, 1 on the walk, 2 done */
	size_t *stack = xcalloc(g->n + 1, sizeof *stack), *next = xcalloc(g->n + 1, sizeof *next);
	size_t top, out = 0, v, w;

	graph_edges(nodes, g);
	for (size_t r = 0; r < g->n; r++) {
		if (state[r] != 0)
			continue;
		stack[0] = r, top = 1, state[r] = 1, next[r] = g->dep_start[r];
		while (top > 0) {
			v = stack[top - 1];
			if (next[v] < g->dep_start[v + 1]) {
				w = g->dep[next[v]++];
				if (state[w] == 0)
					stack[top++] = w, state[w] = 1, next[w] = g->dep_start[w];
				continue;
			}
			top--, state[v] = 2, g->order[out++] = v;
		}
	}
	free(state);
	free(stack);
	free(next);
}

int
prefetch_meta_parse(const char *text, size_t n, struct strv *crates, struct strv *versioned,
    char *why, size_t whylen)
{
	json_error_t err;
	json_t *root = json_loadb(text, n, JSON_REJECT_DUPLICATES, &err), *packages, *pkg;
	struct graph g = { 0 };
	size_t i;

	packages = json_object_get(root, "packages");
	if (!json_is_array(packages) || json_array_size(packages) == 0 ||
	    json_array_size(packages) > PREFETCH_PACKAGES_MAX) {
		snprintf(why, whylen, "its output is not cargo metadata (%s)",
		    root == NULL ? err.text : "no packages");
		json_decref(root);
		return -1;
	}
	g.n = json_array_size(packages);
	g.id = xcalloc(g.n, sizeof *g.id);
	g.order = xcalloc(g.n + 1, sizeof *g.order);
	json_array_foreach(packages, i, pkg)
		g.id[i] = str(json_object_get(pkg, "id"));
	graph_order(json_object_get(json_object_get(root, "resolve"), "nodes"), &g);
	for (i = 0; i < g.n; i++)
		add_targets(json_array_get(packages, g.order[i]), crates, versioned);
	prefetch_unique_in_order(crates);
	if (versioned != NULL)
		prefetch_unique_in_order(versioned);
	free(g.id), free(g.order), free(g.dep_start), free(g.dep);
	json_decref(root);
	if (crates->n == 0) {
		snprintf(why, whylen, "it names no crate");
		return -1;
	}
	return 0;
}

int
prefetch_crates(const struct proto_hint *h, struct strv *crates, struct strv *versioned,
    struct prefetch_plan *plan)
{
	char why[200], lwhy[160];
	int64_t t0 = clock_ms();

	if (prefetch_meta_read(h->root, crates, versioned, why, sizeof why) == 0) {
		plan->crates_from = PREFETCH_CRATES_METADATA;
	} else {
		strv_free(crates);
		strv_init(crates);
		if (versioned != NULL) {
			strv_free(versioned);
			strv_init(versioned);
		}
		if (prefetch_lock_read(h->lock, crates, lwhy, sizeof lwhy) < 0) {
			snprintf(plan->refused, sizeof plan->refused,
			    "%s is not used: %s (the build goes on; "
			    "fix or regenerate it with `cargo generate-lockfile`)",
			    h->lock, lwhy);
			plan->meta_ms = clock_ms() - t0;
			return -1;
		}
		log_warnx("prefetch %s: cargo metadata gave no crate names: %s; using "
		          "Cargo.lock's package names (a crate whose [lib] name differs "
		          "from its package's is not prefetched from packs)",
		    h->root, why);
		/* build scripts are all compiled as build_script_build */
		strv_push(crates, "build_script_build");
		for (size_t i = 0; versioned != NULL && i < crates->n; i++)
			strv_push(versioned, crates->v[i]); /* names only */
		plan->crates_from = PREFETCH_CRATES_LOCK;
	}
	plan->crates = (long)crates->n;
	plan->meta_ms = clock_ms() - t0;
	return 0;
}
