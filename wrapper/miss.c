/* A miss: run rustc with the remap arguments, collect the outputs it wrote,
 * and store them (blobs, entry, manifest candidate), in a child process when
 * configured so that storing leaves cargo's critical path. What cannot be
 * stored safely is journalled with the reason and left out. */
#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/config.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/path.h"
#include "store/journal.h"
#include "store/pending.h"
#include "preload/trace.h"
#include "wrapper/wrapper.h"

#define DEPINFO_MAX (64u << 20)

static void unlink_outputs(struct wrapper *w);
static void present_outputs(struct wrapper *w, const char *out_dir, struct strv *names);
static int announced_outputs(const struct run_result *r, const char *out_dir, struct strv *names);
static void split_debug_outputs(struct wrapper *w, const char *out_dir, const struct timespec *t0,
    struct strv *names);
static void fold_stderr(struct wrapper *w, const struct buf *err, struct buf *out);
static int not_older(const struct timespec *a, const struct timespec *t0);
static const char *hash_inputs(struct wrapper *w, const struct depinfo *d,
    const struct timespec *t0, struct store_candidate *c, struct hash_ctx *hc);
static int named_in_depinfo(const struct wrapper *w, const struct depinfo *d, const char *abs);
static const char *hash_traced(struct wrapper *w, const struct depinfo *d,
    const struct timespec *t0, struct store_candidate *c, struct hash_ctx *hc);
static int env_in_depinfo(const struct depinfo *d, const char *name);
static const char *build_candidate(struct wrapper *w, const struct depinfo *d,
    const struct timespec *t0, struct store_candidate *c);
static const char *put_outputs(struct wrapper *w, const char *out_dir, const struct strv *names,
    struct store_entry *e, struct buf *depinfo, uint64_t *bytes);
static const char *write_entry(struct wrapper *w, const struct run_result *r,
    const struct buf *depinfo, struct store_entry *e, const struct store_candidate *c);
static int secret_read(struct wrapper *w, const struct depinfo *d);
static const char *store_result(struct wrapper *w, const struct run_result *r,
    const struct timespec *t0, uint64_t *bytes, unsigned char res[HASH_LEN]);
static void finish_miss(struct wrapper *w, const struct run_result *r, const struct timespec *t0);
static int store_in_background(struct wrapper *w, const struct run_result *r,
    const struct timespec *t0);
static void drop_private_d(struct wrapper *w);
static int failure_kept(const struct wrapper *w, const struct run_result *r);

/* Unlinks every output rustc is expected to write: a store blob hardlinked
 * there by an earlier hit must never be written through. */
static void
unlink_outputs(struct wrapper *w)
{
	char *out_dir = path_absolute(w->args.out_dir, w->roots.cwd);
	struct strv expect;

	strv_init(&expect);
	args_expected_outputs(&w->args, &expect);
	for (size_t i = 0; i < expect.n; i++) {
		char *f = path_join(out_dir, expect.v[i]);

		unlink(f);
		free(f);
	}
	strv_free(&expect);
	free(out_dir);
}

/* Without --json=artifacts rustc names no outputs: the expected names that
 * exist are the outputs. */
static void
present_outputs(struct wrapper *w, const char *out_dir, struct strv *names)
{
	struct strv expect;

	strv_init(&expect);
	args_expected_outputs(&w->args, &expect);
	for (size_t i = 0; i < expect.n; i++) {
		char *f = path_join(out_dir, expect.v[i]);

		if (access(f, F_OK) == 0)
			strv_push(names, expect.v[i]);
		free(f);
	}
	strv_free(&expect);
}

/* The outputs rustc announced on stderr, relative to the out-dir. -1 if one
 * lies elsewhere (or in a subfolder): restore puts outputs in out_dir only. */
static int
announced_outputs(const struct run_result *r, const char *out_dir, struct strv *names)
{
	static const char notice[] = WRAPPER_ARTIFACT_PREFIX ",\"artifact\":\"";
	const char *p = r->err.p ? r->err.p : "";

	while ((p = strstr(p, notice)) != NULL) {
		const char *start = p + strlen(notice);
		const char *end = strchr(start, '"');
		char *path;
		const char *rel;

		if (end == NULL)
			return -1;
		path = xstrndup(start, (size_t)(end - start));
		rel = path_under(path, out_dir);
		if (rel == NULL || !path_is_safe_relative(rel) || strchr(rel, '/') != NULL) {
			log_info("output %s is not in %s", path, out_dir);
			free(path);
			return -1;
		}
		strv_push(names, rel);
		free(path);
		p = end;
	}
	return 0;
}

/* stderr as stored: artifact notices dropped (replay makes fresh ones), roots folded. */
static void
fold_stderr(struct wrapper *w, const struct buf *err, struct buf *out)
{
	const char *p = err->p ? err->p : "", *end = p + err->len;
	size_t plen = strlen(WRAPPER_ARTIFACT_PREFIX);
	struct buf kept;

	buf_init(&kept);
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl ? (size_t)(nl - p) + 1 : (size_t)(end - p);

		if (!(len >= plen && memcmp(p, WRAPPER_ARTIFACT_PREFIX, plen) == 0))
			buf_add(&kept, p, len);
		p += len;
	}
	roots_fold(&w->roots, kept.p ? kept.p : "", kept.len, out);
	buf_free(&kept);
}

static int
not_older(const struct timespec *a, const struct timespec *t0)
{
	return a->tv_sec > t0->tv_sec || (a->tv_sec == t0->tv_sec && a->tv_nsec >= t0->tv_nsec);
}

/* Adds every dep-info input's folded path and hash to the candidate and to hc.
 * Refuses (reason) when an input cannot be read, or may have changed after
 * rustc read it: its ctime (which no tool can set back) or mtime is not older
 * than the compile's start. The stat checked is the one the hash belongs to
 * (see store_hash_file). */
static const char *
hash_inputs(struct wrapper *w, const struct depinfo *d, const struct timespec *t0,
    struct store_candidate *c, struct hash_ctx *hc)
{
	for (size_t i = 0; i < d->files.n; i++) {
		char *abs = path_absolute(d->files.v[i], w->roots.cwd);
		struct stat st;
		struct store_input *in = &c->inputs[c->n_inputs];

		if (memo_hash_file(w, abs, in->hash, &st, 0) < 0) {
			log_info("%s: cannot read input %s", w->args.crate_name, abs);
			free(abs);
			return "input-unreadable";
		}
		free(abs);
		if (not_older(&st.st_mtim, t0) || not_older(&st.st_ctim, t0)) {
			log_info("%s: input %s changed during the compile", w->args.crate_name,
			    d->files.v[i]);
			return "input-changed";
		}
		in->path = roots_fold_input(&w->roots, d->files.v[i]);
		c->n_inputs++;
		hash_str(hc, in->path);
		hash_update(hc, in->hash, HASH_LEN);
	}
	return NULL;
}

/* 1 when the dep-info names the file at abs (any spelling cwd resolves). */
static int
named_in_depinfo(const struct wrapper *w, const struct depinfo *d, const char *abs)
{
	int found = 0;

	for (size_t i = 0; i < d->files.n && !found; i++) {
		char *f = path_absolute(d->files.v[i], w->roots.cwd);

		found = strcmp(f, abs) == 0;
		free(f);
	}
	return found;
}

static int
env_in_depinfo(const struct depinfo *d, const char *name)
{
	for (size_t i = 0; i < d->env_names.n; i++)
		if (strcmp(d->env_names.v[i], name) == 0)
			return 1;
	return 0;
}

/* Adds to the candidate what the compile's proc macros read that the dep-info
 * does not name (trace.c): each path as it is now, which must be what the
 * proc macro found (a file read is still a file, a directory listed still a
 * directory, both older than the compile; a path not found still absent), and
 * each variable, its value only ever as a hash (a macro may read a database
 * URL with its password: depinfo_env_form_traced). */
static const char *
hash_traced(struct wrapper *w, const struct depinfo *d, const struct timespec *t0,
    struct store_candidate *c, struct hash_ctx *hc)
{
	const struct trace *t = &w->trace;

	for (size_t i = 0; i < t->inputs.n; i++) {
		const char *path = t->inputs.v[i] + 1;
		char *abs = path_absolute(path, w->roots.cwd);
		struct store_input *in = &c->inputs[c->n_inputs];
		struct stat st;
		int kind, same;

		if (named_in_depinfo(w, d, abs)) {
			free(abs);
			continue;
		}
		/* a directory opened without O_DIRECTORY is one listed */
		same = trace_input_hash(w, abs, in->hash, &st, &kind) == 0 &&
		    (kind == t->inputs.v[i][0] ||
		        (kind == TRACE_DIR && t->inputs.v[i][0] == TRACE_READ)) &&
		    (kind == TRACE_ABSENT ||
		        (!not_older(&st.st_mtim, t0) && !not_older(&st.st_ctim, t0)));
		free(abs);
		if (!same) {
			log_info("%s: %s, which a proc macro read, changed during the compile",
			    w->args.crate_name, path);
			return "input-changed";
		}
		in->path = roots_fold_input(&w->roots, path);
		c->n_inputs++;
		hash_str(hc, in->path);
		hash_update(hc, in->hash, HASH_LEN);
	}
	for (size_t i = 0; i < t->envs.n; i++) {
		const char *name = t->envs.v[i], *v = getenv(name);
		struct store_envdep *e;

		if (env_in_depinfo(d, name))
			continue;
		e = &c->envs[c->n_envs++];
		e->name = xstrdup(name);
		if (v != NULL)
			e->value = depinfo_env_form_traced(&w->roots, name, v);
		hash_str(hc, e->name);
		hash_str(hc, e->value);
	}
	return NULL;
}

/* Fills the candidate from rustc's dep-info: every input (hash_inputs), every
 * env-dep in its stored form, what its proc macros read (hash_traced), and the
 * result key over all of them. Refuses (reason) as hash_inputs does, or when a
 * file hashed into the invocation key has other bytes now than when the key
 * was computed. */
static const char *
build_candidate(struct wrapper *w, const struct depinfo *d, const struct timespec *t0,
    struct store_candidate *c)
{
	struct hash_ctx hc;
	const char *why;

	memset(c, 0, sizeof *c);
	c->inputs = xcalloc(d->files.n + w->trace.inputs.n + 1, sizeof *c->inputs);
	c->envs = xcalloc(d->env_names.n + w->trace.envs.n + 1, sizeof *c->envs);
	if (!key_files_unchanged(w))
		return "input-changed";
	hash_begin(&hc);
	hash_str(&hc, "kache-result-v1");
	hash_update(&hc, w->inv, HASH_LEN);
	if ((why = hash_inputs(w, d, t0, c, &hc)) != NULL)
		return why;
	for (size_t i = 0; i < d->env_names.n; i++) {
		struct store_envdep *e = &c->envs[c->n_envs++];
		const char *v = d->env_values.v[i];

		e->name = xstrdup(d->env_names.v[i]);
		if (v != NULL)
			e->value = depinfo_env_form(&w->roots, e->name, v);
		hash_str(&hc, e->name);
		hash_str(&hc, e->value);
	}
	if ((why = hash_traced(w, d, t0, c, &hc)) != NULL)
		return why;
	hash_end(&hc, c->result);
	return NULL;
}

/* Puts every named output into the blob store and describes it in e; the
 * first .d is not a blob but the dep-info, read into depinfo. Returns NULL, or
 * why the result cannot be stored. */
static const char *
put_outputs(struct wrapper *w, const char *out_dir, const struct strv *names, struct store_entry *e,
    struct buf *depinfo, uint64_t *bytes)
{
	int may_link = hit_may_hardlink(w);
	const char *why = NULL;

	e->outputs = xcalloc(names->n + 1, sizeof *e->outputs);
	for (size_t i = 0; i < names->n && why == NULL; i++) {
		char *f = path_join(out_dir, names->v[i]);
		struct stat st;
		struct store_output *o = &e->outputs[e->n_outputs];

		if (str_ends_with(names->v[i], ".d") && e->depinfo_name == NULL) {
			e->depinfo_name = xstrdup(names->v[i]);
			if (fs_read_file(f, depinfo, DEPINFO_MAX) < 0)
				why = "dep-info-unreadable";
		} else if (stat(f, &st) < 0 ||
		    store_blob_put(w->store, f, (st.st_mode & 0111) != 0, may_link, o->hash,
		        &o->size) < 0) {
			why = "store-write-failed";
		} else {
			o->name = xstrdup(names->v[i]);
			o->mode = (st.st_mode & 0111) ? 0755 : 0644;
			*bytes += o->size;
			e->n_outputs++;
		}
		free(f);
	}
	if (why == NULL && e->depinfo_name == NULL && w->private_d == NULL)
		why = "no-dep-info";
	return why;
}

/* Completes the entry with its texts as stored (dep-info without secret
 * values, rustc's stdout and stderr, all with roots folded) and bookkeeping,
 * and writes it, then the candidate: the entry before the manifest, so that a
 * reader never finds a candidate whose entry is not there yet. Returns NULL,
 * or why nothing was stored. */
static const char *
write_entry(struct wrapper *w, const struct run_result *r, const struct buf *depinfo,
    struct store_entry *e, const struct store_candidate *c)
{
	struct buf d_text;

	buf_init(&d_text);
	depinfo_secrets(depinfo->p ? depinfo->p : "", depinfo->len, 0, &d_text);
	roots_fold(&w->roots, d_text.p ? d_text.p : "", d_text.len, &e->depinfo);
	roots_fold(&w->roots, r->out.p ? r->out.p : "", r->out.len, &e->out);
	fold_stderr(w, &r->err, &e->err);
	e->crate = xstrdup(w->args.crate_name);
	e->compile_ms = r->ms;
	e->created_ms = clock_wall_ms();
	buf_free(&d_text);
	if (store_entry_write(w->store, c->result, e) < 0 ||
	    store_manifest_add(w->store, w->inv, c) < 0)
		return "store-write-failed";
	return NULL;
}

/* 1 when the compile read a secret-looking variable (env! of an API token,
 * say): its outputs may hold the value, so the result stays on this machine,
 * never uploaded (said once per compile in the log). */
static int
secret_read(struct wrapper *w, const struct depinfo *d)
{
	for (size_t k = 0; k < 2; k++) {
		const struct strv *names = k == 0 ? &d->env_names : &w->trace.envs;

		for (size_t i = 0; i < names->n; i++)
			if (config_is_secret_env(names->v[i])) {
				log_info("%s: kept on this machine, not uploaded: its compile "
				         "read %s, a secret-looking variable whose value its "
				         "outputs may hold",
				    w->args.crate_name, names->v[i]);
				return 1;
			}
	}
	return 0;
}

/* The split DWARF rustc wrote beside the outputs and does not announce:
 * unpacked, the .dwo of each codegen unit (<stem>.<cgu>.rcgu.dwo, written by
 * this compile: a unit an older compile of the crate had may be left in the
 * out-dir); packed, the .dwp of a binary or shared library. */
static void
split_debug_outputs(struct wrapper *w, const char *out_dir, const struct timespec *t0,
    struct strv *names)
{
	const char *mode = w->args.split_debuginfo;
	int64_t since = clock_ts_ms(t0) - 10; /* file times run a tick behind */
	char *stem, *f;
	struct dirent *de;
	struct stat st;
	size_t n = names->n, k;
	DIR *d;

	if (mode != NULL && strcmp(mode, "packed") == 0) {
		for (size_t i = 0; i < n; i++) {
			f = xasprintf("%s/%s.dwp", out_dir, names->v[i]);
			if (lstat(f, &st) == 0 && S_ISREG(st.st_mode))
				strv_push_owned(names, xasprintf("%s.dwp", names->v[i]));
			free(f);
		}
	}
	if (mode == NULL || strcmp(mode, "unpacked") != 0 || (d = opendir(out_dir)) == NULL)
		return;
	stem = args_stem(&w->args);
	k = strlen(stem);
	while ((de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, stem, k) != 0 || de->d_name[k] != '.' ||
		    !str_ends_with(de->d_name, ".dwo") ||
		    fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISREG(st.st_mode) || clock_ts_ms(&st.st_mtim) < since)
			continue;
		strv_push(names, de->d_name);
	}
	closedir(d);
	free(stem);
}

/* Stores a successful compile, or a probe's failure: blobs, entry, manifest
 * candidate. Returns NULL, or why nothing was stored. */
static const char *
store_result(struct wrapper *w, const struct run_result *r, const struct timespec *t0,
    uint64_t *bytes, unsigned char res[HASH_LEN])
{
	char *out_dir = path_absolute(w->args.out_dir, w->roots.cwd);
	struct strv names;
	struct store_entry e;
	struct store_candidate c;
	struct depinfo d;
	struct buf text;
	const char *why = w->trace.refuse;  /* a proc macro did what no key holds */
	int private = w->private_d != NULL; /* a probe's dep-info is kache's own */

	strv_init(&names);
	store_entry_init(&e);
	memset(&c, 0, sizeof c);
	memset(&d, 0, sizeof d);
	buf_init(&text);
	*bytes = 0;
	if (!w->args.json_artifacts)
		present_outputs(w, out_dir, &names);
	else if (announced_outputs(r, out_dir, &names) < 0)
		why = "output-outside-out-dir";
	if (why == NULL && r->status == 0)
		split_debug_outputs(w, out_dir, t0, &names);
	/* a probe's failure is kept only as an exit status: nothing but its
	 * dep-info may have been written */
	for (size_t i = 0; r->status != 0 && why == NULL && i < names.n; i++)
		if (!str_ends_with(names.v[i], ".d"))
			why = "failed-with-outputs";
	if (why == NULL)
		why = put_outputs(w, out_dir, &names, &e, &text, bytes);
	if (why == NULL && private && fs_read_file(w->private_d, &text, DEPINFO_MAX) < 0)
		why = "dep-info-unreadable";
	drop_private_d(w); /* read: its work is done, whatever came of it */
	if (why == NULL) {
		depinfo_parse(text.p ? text.p : "", text.len, &d);
		why = build_candidate(w, &d, t0, &c);
		w->local_only = secret_read(w, &d);
	}
	if (why == NULL) {
		memcpy(res, c.result, HASH_LEN);
		if (private)
			buf_reset(&text); /* kache's own dep-info: not the caller's to get back */
		e.status = r->status;
		why = write_entry(w, r, &text, &e, &c);
		if (why == NULL)
			keyparts_record(w, &c);
	}
	store_candidate_clear(&c);
	depinfo_free(&d);
	store_entry_clear(&e);
	strv_free(&names);
	buf_free(&text);
	free(out_dir);
	return why;
}

/* Records a successful compile: store it, journal it, queue its upload. */
static void
finish_miss(struct wrapper *w, const struct run_result *r, const struct timespec *t0)
{
	unsigned char res[HASH_LEN];
	uint64_t bytes = 0;
	const char *why;

	why = store_result(w, r, t0, &bytes, res);
	memo_save(w);
	if (why != NULL) {
		log_info("%s: not stored: %s", w->args.crate_name, why);
		wrapper_journal(w, JOURNAL_MISS, why, NULL, r->ms, 0);
		return;
	}
	wrapper_journal(w, JOURNAL_MISS, w->recache ? "recache" : NULL, res, r->ms, bytes);
	if (!w->local_only)
		wrapper_queue_upload(w, res);
	wrapper_gc_kick(w->cfg, w->store);
}

/* Stores the result in a child process, so cargo can start the dependents
 * while the outputs are hashed and linked into the store: storing leaves the
 * critical path of the build. A locked marker tmp/pending-<inv> says a store
 * of this key is under way (store/pending.h); a wrapper that misses on that
 * key waits for it (see wrapper_compile), and so does `kache flush`. The lock
 * goes with the child: a killed store leaves a marker nobody waits for.
 * 0 when the child took over, -1 to store here instead. */
static int
store_in_background(struct wrapper *w, const struct run_result *r, const struct timespec *t0)
{
	int fd = store_pending_begin(store_dir(w->store), w->inv);
	pid_t pid;

	if (fd < 0)
		return -1;
	pid = fork();
	if (pid < 0) {
		store_pending_end(store_dir(w->store), w->inv, fd);
		return -1;
	}
	if (pid > 0) {
		close(fd); /* the child holds the lock now */
		return 0;
	}
	/* The child: cargo waits for EOF on our stdout and stderr, so let go of them. */
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null >= 0) {
		dup2(null, 0);
		dup2(null, 1);
		dup2(null, 2);
	}
	finish_miss(w, r, t0);
	store_pending_end(store_dir(w->store), w->inv, fd);
	_exit(0);
}

int
miss_compile(struct wrapper *w)
{
	struct strv argv;
	struct run_result r;
	struct timespec t0;

	unlink_outputs(w);
	strv_init(&argv);
	if (w->driver != NULL) /* clippy-driver, then the rustc it stands for */
		strv_push(&argv, w->driver);
	strv_push(&argv, w->rustc);
	for (int i = 0; i < w->args.argc; i++)
		strv_push(&argv, w->args.argv[i]);
	if (config_get_bool(w->cfg, "cache.remap"))
		roots_remap_args(&w->roots, &argv);
	if (w->args.private_depinfo) { /* a probe's inputs, learnt from kache's own dep-info */
		w->private_d = xasprintf("%s/tmp/probe-%d.d", store_dir(w->store), (int)getpid());
		unlink(w->private_d);
		strv_push_owned(&argv, xasprintf("--emit=dep-info=%s", w->private_d));
	}
	trace_begin(w);
	clock_gettime(CLOCK_REALTIME, &t0);
	if (run_rustc(argv.v[0], argv.v, w->trace.env_add.v, &r) < 0) {
		drop_private_d(w);
		strv_free(&argv);
		return -1;
	}
	trace_collect(w);
	if (r.status != 0 && !failure_kept(w, &r))
		wrapper_journal(w, JOURNAL_MISS, "compile-failed", NULL, r.ms, 0);
	else if (!config_get_bool(w->cfg, "cache.background_store") ||
	    store_in_background(w, &r, &t0) < 0)
		finish_miss(w, &r, &t0);
	else {
		free(w->private_d); /* the child that stores reads and removes it */
		w->private_d = NULL;
	}
	drop_private_d(w);
	buf_free(&r.out);
	buf_free(&r.err);
	strv_free(&argv);
	return r.status;
}

/* A probe's failure is its answer (anyhow's, thiserror's feature checks), kept
 * when it can only be the language's: rustc's error exit (1; never a crash's
 * 101 or a signal's) with an error code on stderr (E0554 for a #![feature] on
 * stable; an error without one may be the machine's: a full disk, a write
 * refused), and nothing searched for that its inputs would not show (no
 * --extern, no -L: a crate not found is not in the dep-info). */
static int
failure_kept(const struct wrapper *w, const struct run_result *r)
{
	return w->args.probe && r->status == 1 && w->args.externs.n == 0 &&
	    w->args.lib_dirs.n == 0 && r->err.p != NULL && strstr(r->err.p, "error[E") != NULL;
}

/* kache's own dep-info of a probe, when still there: removed. */
static void
drop_private_d(struct wrapper *w)
{
	if (w->private_d == NULL)
		return;
	unlink(w->private_d);
	free(w->private_d);
	w->private_d = NULL;
}
