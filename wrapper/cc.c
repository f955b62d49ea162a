/* `kache gcc -c foo.c -o foo.o ...`: ccache's direct mode, on kache's store.
 * The invocation key covers the compiler's identity (its `-v` output,
 * memoized by the binary's stat), the arguments and compiler environment with
 * roots folded; a manifest candidate covers the source and every header the
 * compiler's own -MD output named, by content. A miss runs the compiler with
 * -MD -MF and -ffile-prefix-map for the roots, so objects are location free.
 * Anything not understood, and any failure before the compiler ran, runs the
 * real compiler untouched. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/path.h"
#include "store/journal.h"
#include "wrapper/cc.h"
#include "wrapper/wrapper.h"

#define CC_ID_MAX (64u << 10)
#define CC_ID_TIMEOUT_MS 10000
#define CC_DEP_MAX (16u << 20)

struct cc {
	struct config *cfg;
	struct store *store;
	const char *cc; /* as given */
	struct cc_args a;
	struct roots roots;
	unsigned char inv[HASH_LEN];
	int64_t start_us;
	int from_remote; /* the entry being served was just fetched */
	int recache;     /* cache.recache: compile and store over, never serve */
	char crate[65];  /* the pack's crate name (cc_crate) */
	char ws[17];     /* the workspace id (session_ws_of_caller), "" when unknown */
};

static void cc_journal(struct cc *c, enum journal_type t, const char *reason,
    const unsigned char *res, uint64_t ms, uint64_t bytes);
static int capture(char *const argv[], struct buf *out);
static int compiler_identity(struct cc *c, struct hash_ctx *hc);
static int cc_key(struct cc *c);
static int native_cpu(const struct cc_args *a);
static int inputs_match(struct cc *c, const struct store_candidate *cand);
static int restore_text(struct cc *c, const struct buf *text, const char *path);
static int serve(struct cc *c, const struct store_candidate *cand);
static int try_hit(struct cc *c);
static void join_lines(const struct buf *in, struct buf *out);
static int not_older(const struct timespec *a, const struct timespec *t0);
static const char *hash_inputs(struct cc *c, const char *dep_path, const struct timespec *t0,
    struct store_candidate *cand);
static const char *store_result(struct cc *c, const struct run_result *r, const char *dep_path,
    const struct timespec *t0, unsigned char res[HASH_LEN], uint64_t *bytes);
static int miss(struct cc *c);
static void setup(struct cc *c);
static void cc_crate(struct cc *c);
static int lookup(struct cc *c);

static void
cc_journal(struct cc *c, enum journal_type t, const char *reason, const unsigned char *res,
    uint64_t ms, uint64_t bytes)
{
	struct journal_event ev;

	if (c->store == NULL)
		return;
	memset(&ev, 0, sizeof ev);
	ev.type = t;
	/* the pack's crate, so that a session manifest names the pack where it is */
	snprintf(ev.crate, sizeof ev.crate, "%s", c->crate);
	snprintf(ev.ws, sizeof ev.ws, "%s", c->ws);
	snprintf(ev.reason, sizeof ev.reason, "%s", reason ? reason : "");
	snprintf(ev.lang, sizeof ev.lang, "%s", cc_args_lang(&c->a, c->cc));
	ev.has_inv = t != JOURNAL_PASS;
	memcpy(ev.inv, c->inv, HASH_LEN);
	if (res) {
		ev.has_res = 1;
		memcpy(ev.res, res, HASH_LEN);
	}
	ev.ms = ms;
	ev.bytes = bytes;
	wrapper_journal_append(c->store, &ev, c->start_us);
}

/* Runs argv with stdout and stderr into out (at most CC_ID_MAX bytes),
 * within CC_ID_TIMEOUT_MS (then killed). 0 when it exited 0. */
static int
capture(char *const argv[], struct buf *out)
{
	int p[2], status = -1;
	int64_t end = clock_ms() + CC_ID_TIMEOUT_MS;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) < 0)
		return -1;
	if ((pid = fork()) < 0) {
		close(p[0]), close(p[1]);
		return -1;
	}
	if (pid == 0) {
		dup2(p[1], 1);
		dup2(p[1], 2);
		execvp(argv[0], argv);
		_exit(127);
	}
	close(p[1]);
	for (;;) {
		struct pollfd pf = { .fd = p[0], .events = POLLIN, .revents = 0 };
		char chunk[4096];
		int64_t left = end - clock_ms();
		ssize_t n;

		if (left <= 0 || poll(&pf, 1, (int)left) == 0) {
			kill(pid, SIGKILL);
			break;
		}
		n = read(p[0], chunk, sizeof chunk);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0 || out->len + (size_t)n > CC_ID_MAX)
			break;
		buf_add(out, chunk, (size_t)n);
	}
	close(p[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

/* Hashes the compiler's identity into hc: its path, size and mtime, and its
 * `-v` output, memoized in the store under that stat (like `rustc -vV`). */
static int
compiler_identity(struct cc *c, struct hash_ctx *hc)
{
	char *path = path_find_program(c->cc), *mkey;
	struct stat st;
	struct buf text;
	int rc = 0;

	if (path == NULL || stat(path, &st) < 0) {
		log_info("cannot find compiler %s", c->cc);
		free(path);
		return -1;
	}
	mkey = xasprintf("cc-id:%s:%llu:%llu:%lld.%ld", path, (unsigned long long)st.st_dev,
	    (unsigned long long)st.st_ino, (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
	buf_init(&text);
	if (store_memo_get_text(c->store, mkey, &text) < 0) {
		char *argv[] = { path, "-v", NULL };

		buf_free(&text);
		buf_init(&text);
		if ((rc = capture(argv, &text)) == 0)
			store_memo_put_text(c->store, mkey, text.p ? text.p : "", text.len);
		else
			log_info("%s -v failed", path);
	}
	hash_str(hc, mkey);
	hash_update(hc, text.p ? text.p : "", text.len);
	buf_free(&text);
	free(mkey);
	free(path);
	return rc;
}

/* 1 when a compile's code is for the host CPU: -march=, -mcpu= or -mtune=native. */
static int
native_cpu(const struct cc_args *a)
{
	for (int i = 0; i < a->argc; i++)
		if (strcmp(a->argv[i], "-march=native") == 0 ||
		    strcmp(a->argv[i], "-mcpu=native") == 0 ||
		    strcmp(a->argv[i], "-mtune=native") == 0)
			return 1;
	return 0;
}

/* The invocation key: identity, arguments and environment, roots folded. */
static int
cc_key(struct cc *c)
{
	static const char *const env[] = { "CPATH", "C_INCLUDE_PATH", "CPLUS_INCLUDE_PATH",
		"OBJC_INCLUDE_PATH", "SOURCE_DATE_EPOCH", "GCC_EXEC_PREFIX", "COMPILER_PATH",
		"LANG", "LC_ALL", "LC_MESSAGES", "GCC_COMPARE_DEBUG" };
	struct hash_ctx hc;

	hash_begin(&hc);
	hash_str(&hc, "kache-cc-v1");
	if (compiler_identity(c, &hc) < 0)
		return -1;
	hash_str(&hc, config_get_bool(c->cfg, "cache.remap") ? "remap" : "no-remap");
	if (native_cpu(&c->a) && hostcpu_hash(&hc, c->a.src, "-march=native", NULL, 0, NULL) < 0)
		return -1;
	for (int i = 0; i < c->a.argc; i++) {
		struct buf b;

		buf_init(&b);
		roots_fold(&c->roots, c->a.argv[i], strlen(c->a.argv[i]), &b);
		hash_update(&hc, b.p ? b.p : "", b.len);
		hash_str(&hc, "\n");
		buf_free(&b);
	}
	for (size_t k = 0; k < sizeof env / sizeof env[0]; k++) {
		const char *v = getenv(env[k]);
		char *f = v ? depinfo_env_form(&c->roots, env[k], v) : NULL;

		hash_str(&hc, env[k]);
		hash_str(&hc, f ? f : "-unset-");
		free(f);
	}
	hash_end(&hc, c->inv);
	return 0;
}

/* Every input of the candidate has the same content here and now. */
static int
inputs_match(struct cc *c, const struct store_candidate *cand)
{
	for (size_t i = 0; i < cand->n_inputs; i++) {
		unsigned char h[HASH_LEN];
		struct buf p;
		int same;

		buf_init(&p);
		roots_expand(&c->roots, cand->inputs[i].path, strlen(cand->inputs[i].path), &p);
		same = store_hash_file(c->store, p.p, h, NULL) == 0 &&
		    memcmp(h, cand->inputs[i].hash, HASH_LEN) == 0;
		buf_free(&p);
		if (!same)
			return 0;
	}
	return 1;
}

/* Writes stored text (roots expanded) to path, temp + rename. */
static int
restore_text(struct cc *c, const struct buf *text, const char *path)
{
	struct buf b;
	int rc;

	buf_init(&b);
	roots_expand(&c->roots, text->p ? text->p : "", text->len, &b);
	rc = fs_write_atomic(path, b.p ? b.p : "", b.len, 0644);
	buf_free(&b);
	return rc;
}

/* Restores the candidate's object (verified against its hash first), the
 * user's dep file, and what the compiler printed. 1 served, 0 not. */
static int
serve(struct cc *c, const struct store_candidate *cand)
{
	struct store_entry e;
	char hex[HASH_HEX_LEN + 1];
	unsigned char h[HASH_LEN];
	struct stat st;
	char *blob = NULL;
	int ok = 0;

	store_entry_init(&e);
	if (store_entry_read(c->store, cand->result, &e) != STORE_FOUND || e.n_outputs != 1 ||
	    (e.depinfo_name != NULL) != (c->a.dep_file != NULL))
		goto out;
	hash_to_hex(e.outputs[0].hash, hex);
	blob = store_path(c->store, "blobs", hex);
	if (store_hash_kept(c->store, blob, h, &st) < 0 ||
	    memcmp(h, e.outputs[0].hash, HASH_LEN) != 0 || fs_copy_atomic(blob, c->a.obj, 0644) < 0)
		goto out;
	if (c->a.dep_file != NULL && restore_text(c, &e.depinfo, c->a.dep_file) < 0)
		goto out;
	{
		struct buf o, er;

		buf_init(&o), buf_init(&er);
		roots_expand(&c->roots, e.out.p ? e.out.p : "", e.out.len, &o);
		roots_expand(&c->roots, e.err.p ? e.err.p : "", e.err.len, &er);
		fs_write_all(1, o.p ? o.p : "", o.len);
		fs_write_all(2, er.p ? er.p : "", er.len);
		buf_free(&o), buf_free(&er);
	}
	cc_journal(c, c->from_remote ? JOURNAL_REMOTE_HIT : JOURNAL_HIT, NULL, cand->result,
	    e.compile_ms, e.outputs[0].size);
	ok = 1;
out:
	free(blob);
	store_entry_clear(&e);
	return ok;
}

static int
try_hit(struct cc *c)
{
	struct store_manifest m;
	int served = 0;

	memset(&m, 0, sizeof m);
	if (store_manifest_read(c->store, c->inv, &m) != STORE_FOUND)
		return 0;
	for (size_t i = 0; i < m.n && !served; i++)
		if (inputs_match(c, &m.c[i]))
			served = serve(c, &m.c[i]);
	store_manifest_clear(&m);
	return served;
}

/* A Makefile dep file with its backslash-newline continuations joined. */
static void
join_lines(const struct buf *in, struct buf *out)
{
	for (size_t i = 0; i < in->len; i++) {
		if (in->p[i] == '\\' && i + 1 < in->len && in->p[i + 1] == '\n') {
			buf_addch(out, ' ');
			i++;
		} else {
			buf_addch(out, in->p[i]);
		}
	}
}

static int
not_older(const struct timespec *a, const struct timespec *t0)
{
	return a->tv_sec > t0->tv_sec || (a->tv_sec == t0->tv_sec && a->tv_nsec >= t0->tv_nsec);
}

/* The candidate from the compiler's dep file: every input folded and hashed,
 * and the result key over them. Refuses (reason) an unreadable input, or one
 * whose mtime or ctime is not older than the compile's start (the Rust rule). */
static const char *
hash_inputs(struct cc *c, const char *dep_path, const struct timespec *t0,
    struct store_candidate *cand)
{
	struct buf raw, text;
	struct depinfo d;
	struct hash_ctx hc;
	const char *why = NULL;

	buf_init(&raw), buf_init(&text);
	memset(&d, 0, sizeof d);
	if (fs_read_file(dep_path, &raw, CC_DEP_MAX) < 0)
		why = "dep-file-unreadable";
	join_lines(&raw, &text);
	depinfo_parse(text.p ? text.p : "", text.len, &d);
	if (why == NULL && d.files.n == 0)
		why = "dep-file-empty";
	cand->inputs = xcalloc(d.files.n + 1, sizeof *cand->inputs);
	hash_begin(&hc);
	hash_str(&hc, "kache-cc-result-v1");
	hash_update(&hc, c->inv, HASH_LEN);
	for (size_t i = 0; i < d.files.n && why == NULL; i++) {
		struct store_input *in = &cand->inputs[cand->n_inputs];
		char *abs = path_absolute(d.files.v[i], c->roots.cwd);
		struct stat st;

		if (store_hash_file(c->store, abs, in->hash, &st) < 0)
			why = "input-unreadable";
		else if (not_older(&st.st_mtim, t0) || not_older(&st.st_ctim, t0))
			why = "input-changed";
		free(abs);
		if (why != NULL)
			break;
		in->path = roots_fold_input(&c->roots, d.files.v[i]);
		cand->n_inputs++;
		hash_str(&hc, in->path);
		hash_update(&hc, in->hash, HASH_LEN);
	}
	hash_end(&hc, cand->result);
	depinfo_free(&d);
	buf_free(&raw), buf_free(&text);
	return why;
}

/* Stores a successful compile: the object as a blob, an entry (the user's
 * dep file and the compiler's output folded), a manifest candidate. NULL, or
 * why nothing was stored. */
static const char *
store_result(struct cc *c, const struct run_result *r, const char *dep_path,
    const struct timespec *t0, unsigned char res[HASH_LEN], uint64_t *bytes)
{
	struct store_candidate cand;
	struct store_entry e;
	struct buf dep;
	const char *why;

	memset(&cand, 0, sizeof cand);
	store_entry_init(&e);
	buf_init(&dep);
	why = hash_inputs(c, dep_path, t0, &cand);
	e.outputs = xcalloc(1, sizeof *e.outputs);
	if (why == NULL &&
	    store_blob_put(c->store, c->a.obj, 0, 0, e.outputs[0].hash, &e.outputs[0].size) < 0)
		why = "store-write-failed";
	if (why == NULL && c->a.dep_file != NULL) {
		if (fs_read_file(c->a.dep_file, &dep, CC_DEP_MAX) < 0)
			why = "dep-file-unreadable";
		e.depinfo_name = xstrdup(path_basename(c->a.dep_file));
		roots_fold(&c->roots, dep.p ? dep.p : "", dep.len, &e.depinfo);
	}
	if (why == NULL) {
		e.n_outputs = 1;
		e.outputs[0].name = xstrdup(path_basename(c->a.obj));
		e.outputs[0].mode = 0644;
		e.crate = xstrdup(c->crate);
		roots_fold(&c->roots, r->out.p ? r->out.p : "", r->out.len, &e.out);
		roots_fold(&c->roots, r->err.p ? r->err.p : "", r->err.len, &e.err);
		e.compile_ms = r->ms;
		e.created_ms = clock_wall_ms();
		*bytes = e.outputs[0].size;
		memcpy(res, cand.result, HASH_LEN);
		if (store_entry_write(c->store, cand.result, &e) < 0 ||
		    store_manifest_add(c->store, c->inv, &cand) < 0)
			why = "store-write-failed";
	}
	store_candidate_clear(&cand);
	store_entry_clear(&e);
	buf_free(&dep);
	return why;
}

/* Runs the compiler with the dep-file and prefix-map arguments, then stores
 * the result. The compiler's status, or -1 when it could not be started. */
static int
miss(struct cc *c)
{
	struct strv argv, remap;
	struct run_result r;
	struct timespec t0;
	unsigned char res[HASH_LEN];
	uint64_t bytes = 0;
	char *tmp = NULL;
	const char *why;

	strv_init(&argv), strv_init(&remap);
	strv_push(&argv, c->cc);
	for (int i = 0; i < c->a.argc; i++)
		strv_push(&argv, c->a.argv[i]);
	if (config_get_bool(c->cfg, "cache.remap"))
		roots_remap_args(&c->roots, &remap);
	for (size_t i = 0; i < remap.n; i++)
		strv_push_owned(&argv,
		    xasprintf("-ffile-prefix-map=%s", strchr(remap.v[i], '=') + 1));
	if (c->a.dep_file == NULL) {
		tmp = xasprintf("%s/tmp/cc-%ld.d", store_dir(c->store), (long)getpid());
		strv_push(&argv, "-MD");
		strv_push(&argv, "-MF");
		strv_push(&argv, tmp);
	}
	unlink(c->a.obj);
	clock_gettime(CLOCK_REALTIME, &t0);
	if (run_rustc(c->cc, argv.v, NULL, &r) < 0) {
		free(tmp);
		strv_free(&argv), strv_free(&remap);
		return -1;
	}
	if (r.status != 0)
		why = "compile-failed";
	else
		why = store_result(c, &r, tmp ? tmp : c->a.dep_file, &t0, res, &bytes);
	if (why != NULL)
		log_info("%s: not stored: %s", c->a.src, why);
	else
		wrapper_upload(c->cfg, c->store, res, c->inv, c->a.src, c->recache);
	cc_journal(c, JOURNAL_MISS,
	    why            ? why :
	        c->recache ? "recache" :
	                     NULL,
	    why ? NULL : res, r.ms, bytes);
	if (why == NULL)
		wrapper_gc_kick(c->cfg, c->store);
	if (tmp != NULL)
		unlink(tmp);
	free(tmp);
	buf_free(&r.out), buf_free(&r.err);
	strv_free(&argv), strv_free(&remap);
	return r.status;
}

/* Config, log, store and roots (the target dir found above OUT_DIR or the
 * object's folder, as roots.c finds it above rustc's out-dir). */
static void
setup(struct cc *c)
{
	struct rustc_args ra;
	const char *file;
	char *dir;

	c->cfg = config_load(NULL);
	log_init("wrapper", NULL, log_level_from_string(config_get(c->cfg, "log.level")));
	file = config_get(c->cfg, "log.file");
	if (file[0] != '\0')
		log_open_file(file);
	if (config_get_bool(c->cfg, "cache.disabled"))
		return;
	c->store = store_open_shared(config_get(c->cfg, "cache.dir"),
	    config_get_bool(c->cfg, "cache.shared"));
	memset(&ra, 0, sizeof ra);
	/* a build script's OUT_DIR (cargo sets it) is nearer the target dir than
	 * the object's, which the cc crate nests in subfolders */
	dir = getenv("OUT_DIR") ? xstrdup(getenv("OUT_DIR")) :
	    c->a.obj            ? path_dirname(c->a.obj) :
	                          xstrdup(".");
	ra.out_dir = dir;
	roots_find(&c->roots, &ra);
	/* as session_hint: sessions are for the remote, and only a save takes them */
	if (c->store != NULL && config_has_remote(c->cfg) &&
	    config_get_bool(c->cfg, "prefetch.save_manifest"))
		session_ws_of_caller(c->cfg, store_dir(c->store), &c->roots, c->ws);
	free(dir);
}

/* The crate a C object's pack goes under (packs/<crate>/, docs/remote-layout.md):
 * the package whose build script runs the compiler (cargo's CARGO_PKG_NAME,
 * '-' as '_', as rustc's --crate-name has it), so that a prefetch of that
 * crate's packs brings its C objects too; "_kache_cc" outside cargo or for a
 * name packs refuse (crates.io names never start with '_'). */
static void
cc_crate(struct cc *c)
{
	static const char ok[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-";
	const char *p = getenv("CARGO_PKG_NAME");
	size_t n = p ? strlen(p) : 0;

	if (n == 0 || n >= sizeof c->crate || strspn(p, ok) != n)
		p = "_kache_cc";
	snprintf(c->crate, sizeof c->crate, "%s", p);
	for (char *q = c->crate; *q; q++)
		if (*q == '-')
			*q = '_';
}

/* A local hit; else, with a remote, a fetch of the invocation key by the
 * supervisor's fetcher and a second look. 1 when served. */
static int
lookup(struct cc *c)
{
	if (try_hit(c))
		return 1;
	if (!config_has_remote(c->cfg) || !wrapper_fetch(c->cfg, c->store, c->inv, c->a.src))
		return 0;
	c->from_remote = 1;
	return try_hit(c);
}

int
cc_main(int argc, char **argv)
{
	struct cc c;
	int rc = -1;

	memset(&c, 0, sizeof c);
	c.start_us = clock_us();
	c.cc = argv[0];
	cc_crate(&c);
	cc_args_parse(&c.a, argc - 1, argv + 1);
	setup(&c);
	if (c.store != NULL && c.a.pass_reason != NULL) {
		log_info("pass-through (%s): %s", c.a.pass_reason, c.cc);
		cc_journal(&c, JOURNAL_PASS, c.a.pass_reason, NULL, 0, 0);
	} else if (c.store != NULL && cc_key(&c) < 0) {
		cc_journal(&c, JOURNAL_ERROR, "key", NULL, 0, 0);
	} else if (c.store != NULL) {
		c.recache = config_get_bool(c.cfg, "cache.recache");
		rc = !c.recache && lookup(&c) ? 0 : miss(&c);
	}
	cc_args_free(&c.a);
	roots_free(&c.roots);
	store_free(&c.store);
	config_free(&c.cfg);
	if (rc < 0)
		exec_rustc(argv[0], argc - 1, argv + 1);
	return rc;
}
