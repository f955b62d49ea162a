/* What a compile's proc macros read behind rustc's back (preload/trace.h):
 * a miss that may load a proc macro runs rustc with kache-trace.so preloaded,
 * and its records become inputs of the result like the dep-info's: a file's
 * content, a directory's names, a file's absence, a variable's value. A proc
 * macro that wrote a file, ran a program or opened a connection made a result
 * that depends on more than a key can hold: it is not stored. Without this, a
 * result made from a file or variable cargo does not track either (sqlx's
 * query files, askama's templates, a macro reading `DATABASE_URL`) was served
 * to every later build, and over a remote to every runner, after it changed. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/config.h"
#include "common/fs.h"
#include "common/hash.h"
#include "common/log.h"
#include "common/path.h"
#include "preload/trace.h"
#include "wrapper/wrapper.h"

/* More records than any proc macro needs: past this, nothing is stored. */
#define TRACE_MAX (16u << 20)

static char *library_path(void);
static void add_crate_dir(const struct wrapper *w, struct strv *dirs, const char *v, int is_file);
static void env_for_rustc(struct wrapper *w, const char *lib, const struct stat *st);
static int open_trace_file(struct wrapper *w);
static void take_record(struct wrapper *w, int kind, const char *s);
static int ignored_path(const char *p);
static int hash_dir(const char *path, unsigned char out[HASH_LEN]);

int
trace_wanted(const struct wrapper *w)
{
	int may = 0;

	/* a macro is loaded from a crate an --extern names by its file, or from
	 * one that re-exports it (which an --extern names too); a -L that rustc
	 * searches for crates the source names (crate=, all=, a bare dir) may
	 * hold one. `-L dependency=` alone (cargo gives one to every compile)
	 * and `--extern proc_macro` (the sysroot's) load none. */
	for (size_t i = 0; i < w->args.externs.n && !may; i++)
		may = strchr(w->args.externs.v[i], '=') != NULL;
	for (size_t i = 0; i < w->args.lib_dirs.n && !may; i++) {
		const char *v = w->args.lib_dirs.v[i];

		may = !str_starts_with(v, "dependency=") && !str_starts_with(v, "native=") &&
		    !str_starts_with(v, "framework=");
	}
	return may && config_get_bool(w->cfg, "cache.trace_proc_macros");
}

/* Adds the directory of a crate rustc may load (an --extern's file, or a -L
 * value: "KIND=DIR" or DIR) to dirs, absolute. */
static void
add_crate_dir(const struct wrapper *w, struct strv *dirs, const char *v, int is_file)
{
	const char *eq = strchr(v, '=');
	char *abs;

	if (eq != NULL)
		v = eq + 1;
	else if (is_file) /* --extern NAME: a crate of the sysroot */
		return;
	abs = path_absolute(v, w->roots.cwd);
	strv_push_owned(dirs, is_file ? path_dirname(abs) : xstrdup(abs));
	free(abs);
}

/* kache-trace.so where the install puts it, lib/kache/ beside bin/, as a
 * real path (new string), or NULL when it is not there. */
static char *
library_path(void)
{
	char *lib = wrapper_beside("../lib/kache/kache-trace.so"), *real;

	real = lib != NULL ? realpath(lib, NULL) : NULL;
	free(lib);
	return real;
}

/* A file with no name under the store's tmp/, open for appending, which rustc
 * inherits. -1 when none can be made. */
static int
open_trace_file(struct wrapper *w)
{
	char *tmp = path_join(store_dir(w->store), "tmp");
	int fd = open(tmp, O_TMPFILE | O_RDWR | O_APPEND, 0600);

	if (fd < 0) { /* a filesystem without O_TMPFILE: a name, at once removed */
		char *name = xasprintf("%s/trace-%d", tmp, (int)getpid());

		fd = open(name, O_CREAT | O_EXCL | O_RDWR | O_APPEND, 0600);
		unlink(name);
		free(name);
	}
	free(tmp);
	return fd;
}

void
trace_begin(struct wrapper *w)
{
	struct trace *t = &w->trace;
	struct stat st;
	char *lib;

	t->fd = -1;
	if (!trace_wanted(w))
		return;
	t->wanted = 1;
	lib = library_path();
	/* LD_PRELOAD splits at spaces and colons: such a path would load nothing
	 * and make the loader complain on rustc's stderr */
	if (lib == NULL || strpbrk(lib, " \t:") != NULL) {
		log_info("%s: not stored: kache-trace.so is %s (lib/kache/ beside the bin/ "
		         "kache runs from), so what its proc macros read would be unknown",
		    w->args.crate_name,
		    lib == NULL ? "missing" : "in a path with a space or colon");
		t->refuse = lib == NULL ? "trace-library-missing" : "trace-library-path";
		free(lib);
		return;
	}
	if ((t->fd = open_trace_file(w)) < 0 || fstat(t->fd, &st) < 0)
		t->refuse = "trace-file-failed";
	else
		env_for_rustc(w, lib, &st);
	free(lib);
}

/* LD_PRELOAD (the library before the user's own), the trace file's number,
 * device and inode (st), and the crate directories (unique), for rustc. */
static void
env_for_rustc(struct wrapper *w, const char *lib, const struct stat *st)
{
	struct trace *t = &w->trace;
	const char *old = getenv("LD_PRELOAD");
	struct strv dirs;
	struct buf list;

	strv_init(&dirs);
	buf_init(&list);
	for (size_t i = 0; i < w->args.externs.n; i++)
		add_crate_dir(w, &dirs, w->args.externs.v[i], 1);
	for (size_t i = 0; i < w->args.lib_dirs.n; i++)
		add_crate_dir(w, &dirs, w->args.lib_dirs.v[i], 0);
	strv_sort_unique(&dirs);
	for (size_t i = 0; i < dirs.n; i++)
		buf_addf(&list, "%s%s", i ? "\n" : "", dirs.v[i]);
	strv_push_owned(&t->env_add,
	    old != NULL && *old != '\0' ? xasprintf("LD_PRELOAD=%s:%s", lib, old) :
	                                  xasprintf("LD_PRELOAD=%s", lib));
	strv_push_owned(&t->env_add,
	    xasprintf("%s=%d:%llu:%llu", TRACE_ENV_FD, t->fd, (unsigned long long)st->st_dev,
	        (unsigned long long)st->st_ino));
	strv_push_owned(&t->env_add, xasprintf("%s=%s", TRACE_ENV_DIRS, list.p ? list.p : ""));
	buf_free(&list);
	strv_free(&dirs);
}

/* Files the kernel makes up, never a source. */
static int
ignored_path(const char *p)
{
	return str_starts_with(p, "/proc/") || str_starts_with(p, "/sys/") ||
	    str_starts_with(p, "/dev/");
}

static void
take_record(struct wrapper *w, int kind, const char *s)
{
	struct trace *t = &w->trace;
	const char *why, *what;

	switch (kind) {
	case TRACE_LOADED: t->loaded = 1; return;
	case TRACE_READ:
	case TRACE_ABSENT:
	case TRACE_DIR:
		if (*s != '\0' && !ignored_path(s))
			strv_push_owned(&t->inputs, xasprintf("%c%s", kind, s));
		return;
	case TRACE_ENV:
		if (*s != '\0' && strcmp(s, "LD_PRELOAD") != 0 &&
		    !str_starts_with(s, "KACHE_TRACE_"))
			strv_push(&t->envs, s);
		return;
	case TRACE_WRITE:
		if (ignored_path(s))
			return;
		why = "proc-macro-wrote-a-file";
		what = "wrote";
		break;
	case TRACE_EXEC:
		why = "proc-macro-ran-a-program";
		what = "ran";
		break;
	case TRACE_CONNECT:
		why = "proc-macro-connected";
		what = "connected a socket";
		break;
	case TRACE_UNREADABLE:
		why = "trace-incomplete";
		what = "made a call the trace could not write down";
		break;
	default: why = "trace-malformed"; what = "left a record kache does not know";
	}
	if (t->refuse == NULL) {
		log_info("%s: not stored: a proc macro it loads %s%s%s", w->args.crate_name, what,
		    *s ? " " : "", s);
		t->refuse = why;
	}
}

void
trace_collect(struct wrapper *w)
{
	struct trace *t = &w->trace;
	struct buf b;
	struct stat st;

	if (!t->wanted || t->fd < 0)
		return;
	buf_init(&b);
	if (fstat(t->fd, &st) < 0 || (uint64_t)st.st_size > TRACE_MAX) {
		t->refuse = t->refuse ? t->refuse : "trace-too-large";
	} else if (st.st_size > 0) {
		buf_grow(&b, (size_t)st.st_size + 1);
		if (pread(t->fd, b.p, (size_t)st.st_size, 0) != st.st_size)
			t->refuse = t->refuse ? t->refuse : "trace-unreadable";
		else
			b.len = (size_t)st.st_size;
	}
	/* records: a kind byte, a string, a NUL; a torn last one (a write cut
	 * short: a full disk) may have been a read, so nothing is stored */
	for (size_t i = 0; i < b.len && t->refuse == NULL;) {
		const char *end = memchr(b.p + i, '\0', b.len - i);

		if (end == NULL) {
			t->refuse = "trace-incomplete";
			break;
		}
		b.p[end - b.p] = '\0';
		take_record(w, (unsigned char)b.p[i], b.p + i + 1);
		i = (size_t)(end - b.p) + 1;
	}
	if (!t->loaded && t->refuse == NULL) {
		log_info("%s: not stored: kache-trace.so did not load into rustc, so what its "
		         "proc macros read is unknown (cache.trace_proc_macros = false stores it "
		         "anyway)",
		    w->args.crate_name);
		t->refuse = "trace-not-loaded";
	}
	strv_sort_unique(&t->inputs);
	strv_sort_unique(&t->envs);
	log_debug("%s: traced its proc macros: %zu paths, %zu variables%s%s", w->args.crate_name,
	    t->inputs.n, t->envs.n, t->refuse ? "; not stored: " : "", t->refuse ? t->refuse : "");
	for (size_t i = 0; i < t->inputs.n; i++)
		log_debug("%s: a proc macro %s %s", w->args.crate_name,
		    t->inputs.v[i][0] == TRACE_READ    ? "read" :
		        t->inputs.v[i][0] == TRACE_DIR ? "listed" :
		                                         "did not find",
		    t->inputs.v[i] + 1);
	for (size_t i = 0; i < t->envs.n; i++)
		log_debug("%s: a proc macro read $%s", w->args.crate_name, t->envs.v[i]);
	buf_free(&b);
	close(t->fd);
	t->fd = -1;
}

void
trace_free(struct wrapper *w)
{
	if (w->trace.wanted && w->trace.fd >= 0)
		close(w->trace.fd);
	w->trace.fd = -1;
	strv_free(&w->trace.env_add);
	strv_free(&w->trace.inputs);
	strv_free(&w->trace.envs);
}

/* A directory's names, sorted, under a tag no file's content hash shares. */
static int
hash_dir(const char *path, unsigned char out[HASH_LEN])
{
	DIR *d = opendir(path);
	struct dirent *e;
	struct strv names;
	struct hash_ctx c;

	if (d == NULL)
		return -1;
	strv_init(&names);
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			strv_push(&names, e->d_name);
	closedir(d);
	strv_sort(&names);
	hash_begin(&c);
	hash_str(&c, "kache-traced-dir-v1");
	for (size_t i = 0; i < names.n; i++)
		hash_str(&c, names.v[i]);
	hash_end(&c, out);
	strv_free(&names);
	return 0;
}

int
trace_input_hash(struct wrapper *w, const char *path, unsigned char out[HASH_LEN], struct stat *st,
    int *kind)
{
	struct stat tmp;
	int k = TRACE_READ;

	if (st == NULL)
		st = &tmp;
	if (memo_hash_file(w, path, out, st, 0) == 0)
		goto done;
	if (stat(path, st) < 0) {
		if (errno != ENOENT && errno != ENOTDIR)
			return -1;
		hash_buffer("kache-traced-absent-v1", 22, out);
		memset(st, 0, sizeof *st);
		k = TRACE_ABSENT;
	} else if (S_ISDIR(st->st_mode) && hash_dir(path, out) == 0) {
		k = TRACE_DIR;
	} else {
		return -1;
	}
done:
	if (kind != NULL)
		*kind = k;
	return 0;
}
