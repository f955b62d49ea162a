/* One rustc invocation: look the key up, restore a hit without starting rustc,
 * or compile and store. Any failure before rustc runs falls back to rustc. */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/path.h"
#include "proto/client.h"
#include "store/journal.h"
#include "store/pending.h"
#include "wrapper/wrapper.h"

#define PENDING_WAIT_MS 5000
#define ARTIFACT_PREFIX "{\"$message_type\":\"artifact\""

enum restore_how { RESTORE_AUTO, RESTORE_REFLINK, RESTORE_HARDLINK, RESTORE_COPY };

static int candidate_matches(struct wrapper *w, const struct store_candidate *c);
static int restore_output(struct wrapper *w, const struct store_output *o, const char *out_dir);
static int restore_entry(struct wrapper *w, const struct store_entry *e);
static void replay(struct wrapper *w, const struct store_entry *e);
static int try_hit(struct wrapper *w);
static void journal(struct wrapper *w, enum journal_type t, const char *reason,
    const unsigned char *res, uint64_t ms, uint64_t bytes);
static int compile_and_store(struct wrapper *w);
static void finish_miss(struct wrapper *w, const struct run_result *r, const struct timespec *t0);
static int store_in_background(struct wrapper *w, const struct run_result *r,
    const struct timespec *t0);
static int wait_pending(struct wrapper *w);
static void ensure_supervisor(struct wrapper *w);
static int try_remote(struct wrapper *w);
static void queue_upload(struct wrapper *w, const unsigned char res[HASH_LEN]);
static char *env_form(struct wrapper *w, const char *name, const char *value);
static enum restore_how restore_mode(struct wrapper *w);
static int clone_blob(const char *blob, const char *tmp, mode_t mode);
static int place_blob(struct wrapper *w, const char *blob, const char *dst,
    const struct store_output *o);
static void json_escape(struct buf *b, const char *s);
static void add_notice(struct buf *b, const char *out_dir, const char *name, const char *emit);
static int collect_outputs(struct wrapper *w, const struct run_result *r, const char *out_dir,
    struct strv *names);
static void fold_stderr(struct wrapper *w, const struct buf *err, struct buf *out);
static int not_older(const struct timespec *a, const struct timespec *t0);
static const char *build_candidate(struct wrapper *w, const struct depinfo *d,
    const struct timespec *t0, struct store_candidate *c);
static const char *store_result(struct wrapper *w, const struct run_result *r,
    const struct timespec *t0, uint64_t *bytes, unsigned char res[HASH_LEN]);

static void
journal(struct wrapper *w, enum journal_type t, const char *reason, const unsigned char *res,
    uint64_t ms, uint64_t bytes)
{
	struct journal_event ev;

	memset(&ev, 0, sizeof ev);
	ev.type = t;
	snprintf(ev.crate, sizeof ev.crate, "%s", w->args.crate_name ? w->args.crate_name : "");
	snprintf(ev.reason, sizeof ev.reason, "%s", reason ? reason : "");
	ev.has_inv = 1;
	memcpy(ev.inv, w->inv, HASH_LEN);
	if (res) {
		ev.has_res = 1;
		memcpy(ev.res, res, HASH_LEN);
	}
	ev.ms = ms;
	ev.bytes = bytes;
	/* kache's own time: a miss's compile time is rustc's, not ours */
	ev.us = (uint64_t)(clock_us() - w->start_us);
	if (t == JOURNAL_MISS && ev.us > ms * 1000)
		ev.us -= ms * 1000;
	if (journal_append(store_dir(w->store), &ev) < 0)
		log_warn("journal append");
}

/* How an env-dep value is kept: roots folded; a secret only as its hash. */
static char *
env_form(struct wrapper *w, const char *name, const char *value)
{
	struct buf b;

	buf_init(&b);
	if (config_is_secret_env(name)) {
		unsigned char h[HASH_LEN];
		char hex[HASH_HEX_LEN + 1];

		hash_buffer(value, strlen(value), h);
		hash_to_hex(h, hex);
		buf_addf(&b, "blake2b:%s", hex);
	} else {
		roots_fold(&w->roots, value, strlen(value), &b);
	}
	return buf_detach(&b, NULL);
}

/* Every recorded input must have the same content here and now, and every
 * env-dep the same value (after folding roots). */
static int
candidate_matches(struct wrapper *w, const struct store_candidate *c)
{
	for (size_t i = 0; i < c->n_envs; i++) {
		const char *now = getenv(c->envs[i].name);
		char *form;
		int same;

		if (now == NULL || c->envs[i].value == NULL) {
			if ((now == NULL) != (c->envs[i].value == NULL))
				return 0;
			continue;
		}
		form = env_form(w, c->envs[i].name, now);
		same = strcmp(form, c->envs[i].value) == 0;
		free(form);
		if (!same) {
			log_debug("%s: env %s differs", w->args.crate_name, c->envs[i].name);
			return 0;
		}
	}
	for (size_t i = 0; i < c->n_inputs; i++) {
		unsigned char h[HASH_LEN];
		struct buf p;
		int same;

		buf_init(&p);
		roots_expand(&w->roots, c->inputs[i].path, strlen(c->inputs[i].path), &p);
		same = store_hash_file(w->store, p.p, h, NULL) == 0 &&
		    memcmp(h, c->inputs[i].hash, HASH_LEN) == 0;
		buf_free(&p);
		if (!same) {
			log_debug("%s: input %s differs", w->args.crate_name, c->inputs[i].path);
			return 0;
		}
	}
	return 1;
}

static enum restore_how
restore_mode(struct wrapper *w)
{
	const char *m = config_get(w->cfg, "cache.restore");

	if (strcmp(m, "reflink") == 0)
		return RESTORE_REFLINK;
	if (strcmp(m, "hardlink") == 0)
		return RESTORE_HARDLINK;
	if (strcmp(m, "copy") == 0)
		return RESTORE_COPY;
	return RESTORE_AUTO;
}

/* A reflink of blob at tmp, with mode. -1 where the filesystem cannot. */
static int
clone_blob(const char *blob, const char *tmp, mode_t mode)
{
	int in = fs_open_regular(blob, O_RDONLY, 0), out, rc = -1;

	if (in < 0)
		return -1;
	out = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (out >= 0) {
		rc = ioctl(out, FICLONE, in) == 0 && fchmod(out, mode) == 0 ? 0 : -1;
		if (close(out) < 0)
			rc = -1;
		if (rc < 0)
			unlink(tmp);
	}
	close(in);
	return rc;
}

/* Puts the blob at dst: a reflink where the filesystem can, else a hardlink
 * (blobs are read-only, and outputs are unlinked before any compile writes
 * them, so nothing writes through it into the store), else a copy. */
static int
place_blob(struct wrapper *w, const char *blob, const char *dst, const struct store_output *o)
{
	enum restore_how how = restore_mode(w);
	char *tmp = fs_tmp_beside(dst);
	struct stat st;
	int placed = 0;

	if ((how == RESTORE_AUTO || how == RESTORE_REFLINK) && clone_blob(blob, tmp, o->mode) == 0)
		placed = 1;
	if (!placed && (how == RESTORE_AUTO || how == RESTORE_HARDLINK) && lstat(blob, &st) == 0 &&
	    S_ISREG(st.st_mode) && ((st.st_mode & 0111) != 0) == ((o->mode & 0111) != 0) && link(blob, tmp) == 0)
		placed = 1;
	if (placed) {
		/* rename(2) of a hardlink onto the same inode is a no-op: unlink tmp after */
		placed = rename(tmp, dst) == 0;
		unlink(tmp);
		free(tmp);
		return placed ? 0 : -1;
	}
	free(tmp);
	return fs_copy_atomic(blob, dst, o->mode);
}

/* Restores one output: verifies the blob (size, and hash through the stat memo,
 * so a blob changed in place is caught), places it, marks it fresh for cargo.
 * -2 when the blob is missing or damaged. */
static int
restore_output(struct wrapper *w, const struct store_output *o, const char *out_dir)
{
	char hex[HASH_HEX_LEN + 1];
	unsigned char h[HASH_LEN];
	char *blob, *dst;
	struct stat st;
	int rc = -2;

	if (strchr(o->name, '/') != NULL)
		return -2;
	hash_to_hex(o->hash, hex);
	blob = store_path(w->store, "blobs", hex);
	dst = path_join(out_dir, o->name);
	if (store_hash_kept(w->store, blob, h, &st) == 0 && (uint64_t)st.st_size == o->size &&
	    memcmp(h, o->hash, HASH_LEN) == 0) {
		rc = place_blob(w, blob, dst, o);
		if (rc == 0 && (utimensat(AT_FDCWD, dst, NULL, 0) < 0 || stat(dst, &st) < 0))
			rc = -1;
		if (rc == 0)
			store_memo_put(w->store, &st, o->hash);
	} else if (lstat(blob, &st) == 0) {
		/* damaged in place, or not a regular file (a FIFO, a symlink): drop
		 * it, so the next store writes it afresh */
		log_warnx("blob %s of %s is damaged; removed", hex, w->args.crate_name);
		unlink(blob);
	}
	free(blob);
	free(dst);
	return rc;
}

/* -2: the entry is damaged (remove it); -1: could not restore (I/O). */
static int
restore_entry(struct wrapper *w, const struct store_entry *e)
{
	char *out_dir = path_absolute(w->args.out_dir, w->roots.cwd);
	int rc = 0;

	for (size_t i = 0; i < e->n_outputs && rc == 0; i++)
		rc = restore_output(w, &e->outputs[i], out_dir);
	if (rc == 0 && e->depinfo_name != NULL) {
		struct buf d, s;
		char *p;

		if (strchr(e->depinfo_name, '/') != NULL) {
			free(out_dir);
			return -2;
		}
		buf_init(&d);
		roots_expand(&w->roots, e->depinfo.p ? e->depinfo.p : "", e->depinfo.len, &d);
		buf_init(&s);
		depinfo_secrets(d.p ? d.p : "", d.len, 1, &s);
		p = path_join(out_dir, e->depinfo_name);
		rc = fs_write_atomic(p, s.p ? s.p : "", s.len, 0644);
		free(p);
		buf_free(&d);
		buf_free(&s);
	}
	free(out_dir);
	return rc;
}

static void
json_escape(struct buf *b, const char *s)
{
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			buf_addch(b, '\\');
		if ((unsigned char)*s < 0x20)
			buf_addf(b, "\\u%04x", (unsigned char)*s);
		else
			buf_addch(b, *s);
	}
}

static void
add_notice(struct buf *b, const char *out_dir, const char *name, const char *emit)
{
	char *p = path_join(out_dir, name);

	buf_addstr(b, ARTIFACT_PREFIX ",\"artifact\":\"");
	json_escape(b, p);
	buf_addf(b, "\",\"emit\":\"%s\"}\n", emit);
	free(p);
}

/* Prints what rustc printed, with this checkout's paths, then the artifact
 * notices cargo waits for (dep-info, metadata, link: rustc's order). */
static void
replay(struct wrapper *w, const struct store_entry *e)
{
	struct buf b;
	char *out_dir = path_absolute(w->args.out_dir, w->roots.cwd);

	buf_init(&b);
	roots_expand(&w->roots, e->out.p ? e->out.p : "", e->out.len, &b);
	fs_write_all(1, b.p ? b.p : "", b.len);
	buf_reset(&b);
	roots_expand(&w->roots, e->err.p ? e->err.p : "", e->err.len, &b);
	if (w->args.json_artifacts) {
		if (e->depinfo_name)
			add_notice(&b, out_dir, e->depinfo_name, "dep-info");
		for (size_t i = 0; i < e->n_outputs; i++)
			if (str_ends_with(e->outputs[i].name, ".rmeta"))
				add_notice(&b, out_dir, e->outputs[i].name, "metadata");
		for (size_t i = 0; i < e->n_outputs; i++)
			if (!str_ends_with(e->outputs[i].name, ".rmeta"))
				add_notice(&b, out_dir, e->outputs[i].name, "link");
	}
	fs_write_all(2, b.p ? b.p : "", b.len);
	buf_free(&b);
	free(out_dir);
}

/* 1: served from the store; 0: miss. */
static int
try_hit(struct wrapper *w)
{
	struct store_manifest m;
	enum store_get g0;
	int served = 0;

	g0 = store_manifest_read(w->store, w->inv, &m);
	if (g0 == STORE_CORRUPT) {
		/* removed, so that the compile's add starts afresh */
		store_manifest_remove(w->store, w->inv);
		journal(w, JOURNAL_CORRUPT, "manifest", NULL, 0, 0);
	}
	if (g0 != STORE_FOUND) {
		log_debug("%s: no manifest", w->args.crate_name);
		return 0;
	}
	for (size_t i = 0; i < m.n && !served; i++) {
		struct store_entry e;
		int rc;

		if (!candidate_matches(w, &m.c[i]))
			continue;
		enum store_get g = store_entry_read(w->store, m.c[i].result, &e);
		if (g == STORE_CORRUPT) {
			store_entry_remove(w->store, m.c[i].result);
			journal(w, JOURNAL_CORRUPT, "entry", m.c[i].result, 0, 0);
		}
		if (g != STORE_FOUND)
			continue;
		rc = restore_entry(w, &e);
		if (rc == 0) {
			uint64_t bytes = 0;

			for (size_t k = 0; k < e.n_outputs; k++)
				bytes += e.outputs[k].size;
			replay(w, &e);
			journal(w, w->from_remote ? JOURNAL_REMOTE_HIT : JOURNAL_HIT, NULL,
			    m.c[i].result, e.compile_ms, bytes);
			served = 1;
		} else if (rc == -2) {
			store_entry_remove(w->store, m.c[i].result);
			journal(w, JOURNAL_CORRUPT, "blob", m.c[i].result, 0, 0);
		}
		store_entry_clear(&e);
	}
	store_manifest_clear(&m);
	return served;
}

/* The outputs rustc announced (or, without --json=artifacts, the expected
 * names that exist), relative to the out-dir. -1 if one lies elsewhere. */
static int
collect_outputs(struct wrapper *w, const struct run_result *r, const char *out_dir,
    struct strv *names)
{
	const char *p = r->err.p ? r->err.p : "";

	if (!w->args.json_artifacts) {
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
		return 0;
	}
	while ((p = strstr(p, ARTIFACT_PREFIX ",\"artifact\":\"")) != NULL) {
		const char *start = p + strlen(ARTIFACT_PREFIX ",\"artifact\":\"");
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
	struct buf kept;

	buf_init(&kept);
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl ? (size_t)(nl - p) + 1 : (size_t)(end - p);

		if (!(len >= strlen(ARTIFACT_PREFIX) && memcmp(p, ARTIFACT_PREFIX,
		    strlen(ARTIFACT_PREFIX)) == 0))
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

/* Fills the candidate from rustc's dep-info: every input's folded path and
 * hash, every env-dep. Refuses (reason) when an input may have changed after
 * rustc read it: its ctime (which no tool can set back) or mtime is not older
 * than the compile's start, or a file hashed into the key has other bytes now.
 * The stat checked is the one the hash belongs to (see store_hash_file). */
static const char *
build_candidate(struct wrapper *w, const struct depinfo *d, const struct timespec *t0,
    struct store_candidate *c)
{
	struct hash_ctx hc;

	memset(c, 0, sizeof *c);
	c->inputs = xcalloc(d->files.n + 1, sizeof *c->inputs);
	c->envs = xcalloc(d->env_names.n + 1, sizeof *c->envs);
	if (!key_files_unchanged(w))
		return "input-changed";
	hash_begin(&hc);
	hash_str(&hc, "kache-result-v1");
	hash_update(&hc, w->inv, HASH_LEN);
	for (size_t i = 0; i < d->files.n; i++) {
		char *abs = path_absolute(d->files.v[i], w->roots.cwd);
		struct stat st;
		struct store_input *in = &c->inputs[c->n_inputs];

		if (store_hash_file(w->store, abs, in->hash, &st) < 0) {
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
		in->path = roots_fold_path(&w->roots, d->files.v[i]);
		c->n_inputs++;
		hash_str(&hc, in->path);
		hash_update(&hc, in->hash, HASH_LEN);
	}
	for (size_t i = 0; i < d->env_names.n; i++) {
		struct store_envdep *e = &c->envs[c->n_envs++];
		const char *v = d->env_values.v[i];

		e->name = xstrdup(d->env_names.v[i]);
		if (v != NULL)
			e->value = env_form(w, e->name, v);
		hash_str(&hc, e->name);
		hash_str(&hc, e->value);
	}
	hash_end(&hc, c->result);
	return NULL;
}

/* Stores a successful compile: blobs, entry, manifest candidate. Returns NULL,
 * or why nothing was stored. */
static const char *
store_result(struct wrapper *w, const struct run_result *r, const struct timespec *t0,
    uint64_t *bytes, unsigned char res[HASH_LEN])
{
	char *out_dir = path_absolute(w->args.out_dir, w->roots.cwd);
	struct strv names;
	struct store_entry e;
	struct store_candidate c;
	struct depinfo d;
	struct buf text, d_text;
	const char *why = NULL;

	buf_init(&d_text);
	strv_init(&names);
	store_entry_init(&e);
	memset(&c, 0, sizeof c);
	memset(&d, 0, sizeof d);
	buf_init(&text);
	*bytes = 0;
	if (collect_outputs(w, r, out_dir, &names) < 0) {
		why = "output-outside-out-dir";
		goto out;
	}
	e.outputs = xcalloc(names.n + 1, sizeof *e.outputs);
	for (size_t i = 0; i < names.n; i++) {
		char *f = path_join(out_dir, names.v[i]);
		struct stat st;
		struct store_output *o = &e.outputs[e.n_outputs];

		if (str_ends_with(names.v[i], ".d") && e.depinfo_name == NULL) {
			e.depinfo_name = xstrdup(names.v[i]);
			if (fs_read_file(f, &text, 64u << 20) < 0)
				why = "dep-info-unreadable";
		} else if (stat(f, &st) < 0 ||
		    store_blob_put(w->store, f, (st.st_mode & 0111) != 0,
		    restore_mode(w) == RESTORE_AUTO || restore_mode(w) == RESTORE_HARDLINK, o->hash,
		    &o->size) < 0) {
			why = "store-write-failed";
		} else {
			o->name = xstrdup(names.v[i]);
			o->mode = (st.st_mode & 0111) ? 0755 : 0644;
			*bytes += o->size;
			e.n_outputs++;
		}
		free(f);
		if (why)
			goto out;
	}
	if (e.depinfo_name == NULL) {
		why = "no-dep-info";
		goto out;
	}
	depinfo_parse(text.p ? text.p : "", text.len, &d);
	if ((why = build_candidate(w, &d, t0, &c)) != NULL)
		goto out;
	buf_reset(&d_text);
	depinfo_secrets(text.p ? text.p : "", text.len, 0, &d_text);
	roots_fold(&w->roots, d_text.p ? d_text.p : "", d_text.len, &e.depinfo);
	roots_fold(&w->roots, r->out.p ? r->out.p : "", r->out.len, &e.out);
	fold_stderr(w, &r->err, &e.err);
	e.crate = xstrdup(w->args.crate_name);
	e.compile_ms = r->ms;
	e.created_ms = clock_wall_ms();
	memcpy(res, c.result, HASH_LEN);
	/* The entry before the manifest: a reader never finds a candidate whose
	 * entry is not there yet. */
	if (store_entry_write(w->store, c.result, &e) < 0 ||
	    store_manifest_add(w->store, w->inv, &c) < 0)
		why = "store-write-failed";
out:
	store_candidate_clear(&c);
	depinfo_free(&d);
	store_entry_clear(&e);
	strv_free(&names);
	buf_free(&text);
	buf_free(&d_text);
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

	if ((why = store_result(w, r, t0, &bytes, res)) != NULL) {
		log_info("%s: not stored: %s", w->args.crate_name, why);
		journal(w, JOURNAL_MISS, why, NULL, r->ms, 0);
		return;
	}
	journal(w, JOURNAL_MISS, NULL, res, r->ms, bytes);
	if (config_has_remote(w->cfg))
		queue_upload(w, res);
}

/* Stores the result in a child process, so cargo can start the dependents
 * while the outputs are hashed and linked into the store: storing leaves the
 * critical path of the build. A locked marker tmp/pending-<inv> says a store
 * of this key is under way (store/pending.h); a wrapper that misses on that
 * key waits for it (see wait_pending), and so does `kache flush`. The lock
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

/* A miss on a key whose store is under way in another live process: wait (up
 * to PENDING_WAIT_MS) for it, rather than compile the same thing twice. A
 * marker whose writer is gone is removed, not waited for. 1 when a store was
 * awaited. */
static int
wait_pending(struct wrapper *w)
{
	return store_pending_wait(store_dir(w->store), w->inv, clock_ms() + PENDING_WAIT_MS);
}

/* Runs rustc (with the remap arguments) after unlinking the outputs it will
 * write, then stores what it produced. Returns rustc's exit status, or -1 when
 * rustc could not be started (the caller then runs it untouched). */
static int
compile_and_store(struct wrapper *w)
{
	struct strv argv, expect;
	struct run_result r;
	struct timespec t0;
	char *out_dir = path_absolute(w->args.out_dir, w->roots.cwd);

	strv_init(&argv);
	strv_init(&expect);
	args_expected_outputs(&w->args, &expect);
	for (size_t i = 0; i < expect.n; i++) {
		char *f = path_join(out_dir, expect.v[i]);

		unlink(f);
		free(f);
	}
	free(out_dir);
	strv_push(&argv, w->rustc);
	for (int i = 0; i < w->args.argc; i++)
		strv_push(&argv, w->args.argv[i]);
	if (config_get_bool(w->cfg, "cache.remap"))
		roots_remap_args(&w->roots, &argv);
	clock_gettime(CLOCK_REALTIME, &t0);
	if (run_rustc(w->rustc, argv.v, &r) < 0) {
		strv_free(&argv);
		strv_free(&expect);
		return -1;
	}
	if (r.status != 0)
		journal(w, JOURNAL_MISS, "compile-failed", NULL, r.ms, 0);
	else if (!config_get_bool(w->cfg, "cache.background_store") ||
	    store_in_background(w, &r, &t0) < 0)
		finish_miss(w, &r, &t0);
	buf_free(&r.out);
	buf_free(&r.err);
	strv_free(&argv);
	strv_free(&expect);
	return r.status;
}

/* Starts a supervisor for this store when none runs; never waits for it. */
static void
ensure_supervisor(struct wrapper *w)
{
	char *kached = wrapper_kached_path();

	if (kached != NULL)
		proto_supervisor_ensure(store_dir(w->store), kached);
	free(kached);
}

/* On a local miss with a remote: ask the supervisor's fetcher, within the
 * wrapper's deadline, then look again. 1 when served. */
static int
try_remote(struct wrapper *w)
{
	char hex[HASH_HEX_LEN + 1];
	int64_t now = clock_ms();
	enum proto_result r;

	hash_to_hex(w->inv, hex);
	r = proto_client_fetch(store_dir(w->store), hex,
	    now + config_get_int(w->cfg, "wrapper.deadline_ms"),
	    now + config_get_int(w->cfg, "wrapper.fetch_timeout_ms"));
	log_debug("%s: remote fetch: %s", w->args.crate_name, proto_result_name(r));
	if (r == PROTO_UNAVAILABLE)
		ensure_supervisor(w);
	if (r != PROTO_OK)
		return 0;
	w->from_remote = 1;
	return try_hit(w);
}

/* A durable intent first, so nothing is lost while the supervisor is down;
 * then a notice that does not wait. */
static void
queue_upload(struct wrapper *w, const unsigned char res[HASH_LEN])
{
	char hex[HASH_HEX_LEN + 1];

	if (config_get_bool(w->cfg, "s3.read_only") && strcmp(config_get(w->cfg, "remote.type"),
	    "s3") == 0)
		return;
	if (store_intent_add(w->store, res, w->inv) < 0) {
		log_warn("%s: cannot write upload intent", w->args.crate_name);
		return;
	}
	hash_to_hex(res, hex);
	ensure_supervisor(w);
	proto_client_notify_upload(store_dir(w->store), hex);
}

int
wrapper_compile(struct wrapper *w)
{
	if (w->args.pass_reason != NULL)
		return -1;
	roots_find(&w->roots, &w->args);
	if (key_invocation(w, w->inv) < 0) {
		journal(w, JOURNAL_ERROR, "key", NULL, 0, 0);
		return -1;
	}
	if (try_hit(w))
		return 0;
	if (wait_pending(w) && try_hit(w))
		return 0;
	if (config_has_remote(w->cfg) && try_remote(w))
		return 0;
	return compile_and_store(w);
}
