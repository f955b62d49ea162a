/* The invocation key: everything known before compiling that decides the result.
 * Paths are folded (roots.c) so that a moved checkout computes the same key. */
#include <dirent.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"
#include "common/path.h"
#include "wrapper/wrapper.h"

extern char **environ;

#define KEY_FORMAT "kache-invocation-v1"
#define RUSTC_VV "rustc-vV" /* the memo of `rustc -vV` (answer_memo_key) */

static char *answer_memo_key(const char *what, const char *id);
static int rustc_version(struct wrapper *w, struct buf *out);
static int run_capture(const char *prog, char *const argv[], struct buf *out);
static int hash_option(struct wrapper *w, struct hash_ctx *c, const char *opt, const char *v);
static void hash_env(struct wrapper *w, struct hash_ctx *c);
static void note_compiler(struct wrapper *w, const char *vv, size_t n);
static int hash_driver(struct wrapper *w, struct hash_ctx *c);
static void note_driver(struct wrapper *w, const char *version);
static int tool_answer(struct wrapper *w, char *const argv[], const char *what, struct buf *out);
static int hash_native_libs(struct wrapper *w, struct hash_ctx *c);
static const char *native_dir(const char *l);
static int hash_target_spec(struct wrapper *w, struct hash_ctx *c, const char *v);
static const char *codegen(const char *opt, const char *v, const char *name);
static int links(const struct rustc_args *a);
static int hash_input_file(struct wrapper *w, struct hash_ctx *c, const char *path);
static int hash_link_dir(struct wrapper *w, struct hash_ctx *c, const char *dir);
static int hash_link_arg(struct wrapper *w, struct hash_ctx *c, const char *arg);
static int hash_link_inputs(struct wrapper *w, struct hash_ctx *c);
static int hash_key_file(struct wrapper *w, const char *path, unsigned char h[HASH_LEN]);

/* Hashes a file that goes into the key by content, and remembers it: after the
 * compile, key_files_unchanged() checks that rustc read what the key says. */
static int
hash_key_file(struct wrapper *w, const char *path, unsigned char h[HASH_LEN])
{
	if (memo_hash_file(w, path, h, NULL, 1) < 0)
		return -1;
	strv_push(&w->key_files, path);
	buf_add(&w->key_hashes, h, HASH_LEN);
	return 0;
}

/* An --extern or a native library replaced while rustc ran (even with its old
 * mtime put back) built the result from other bytes than the key names: the
 * result must not be stored under that key. Rehashing costs a memo lookup when
 * the file is untouched. */
int
key_files_unchanged(struct wrapper *w)
{
	for (size_t i = 0; i < w->key_files.n; i++) {
		unsigned char h[HASH_LEN];

		if (memo_hash_file(w, w->key_files.v[i], h, NULL, 1) < 0 ||
		    memcmp(h, w->key_hashes.p + i * HASH_LEN, HASH_LEN) != 0) {
			log_info("%s changed during the compile", w->key_files.v[i]);
			return 0;
		}
	}
	return 1;
}

static int
run_capture(const char *prog, char *const argv[], struct buf *out)
{
	int p[2], status;
	pid_t pid;
	char chunk[4096];
	ssize_t n;

	if (pipe(p) < 0)
		return -1;
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		dup2(p[1], 1);
		close(p[0]);
		close(p[1]);
		execvp(prog, argv);
		_exit(127);
	}
	close(p[1]);
	while ((n = read(p[0], chunk, sizeof chunk)) > 0)
		buf_add(out, chunk, (size_t)n);
	close(p[0]);
	if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return -1;
	return 0;
}

/* The identity of the rustc binary `rustc` resolves to, for memos of what it
 * answers: its path (as given when absolute and not a link, else the real
 * one), size, mtime and inode (new string). NULL for a rustup proxy, which
 * answers for whichever toolchain is selected: a binary named rustup*, or one
 * hard-linked to a `rustup` beside it (rustup installs its proxies so). */
char *
key_rustc_identity(const char *rustc)
{
	char real[PATH_MAX];
	const char *path = real;
	struct stat st, up;
	char *dir, *up_path;
	int proxy;

	/* cargo's usual: the absolute path of the toolchain's binary itself (one
	 * lstat, where realpath costs a readlink per component) */
	if (rustc[0] == '/' && lstat(rustc, &st) == 0 && S_ISREG(st.st_mode))
		path = rustc;
	else if (realpath(rustc, real) == NULL || stat(real, &st) == -1)
		return NULL;
	if (strstr(path_basename(path), "rustup") != NULL)
		return NULL;
	if (st.st_nlink > 1) {
		dir = path_dirname(path);
		up_path = path_join(dir, "rustup");
		proxy = stat(up_path, &up) == 0 && up.st_ino == st.st_ino && up.st_dev == st.st_dev;
		free(dir);
		free(up_path);
		if (proxy)
			return NULL;
	}
	return xasprintf("%s\n%lld\n%lld.%09ld\n%llu", path, (long long)st.st_size,
	    (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec, (unsigned long long)st.st_ino);
}

/* The memo name of what the binary of identity id answered to `what`
 * (RUSTC_VV: `rustc -vV`). */
static char *
answer_memo_key(const char *what, const char *id)
{
	return xasprintf("%s\n%s", what, id);
}

/* What argv (argv[0] the program) prints, memoized in the store under what
 * and the program's identity (none for a rustup proxy: asked every time). */
static int
tool_answer(struct wrapper *w, char *const argv[], const char *what, struct buf *out)
{
	char *id = key_rustc_identity(argv[0]), *memo_key = NULL;
	int rc;

	if (id != NULL) {
		memo_key = answer_memo_key(what, id);
		free(id);
		if (store_memo_get_text(w->store, memo_key, out) == 0 && out->len > 0) {
			free(memo_key);
			return 0;
		}
		buf_reset(out);
	}
	rc = run_capture(argv[0], argv, out);
	if (rc == 0 && memo_key != NULL)
		store_memo_put_text(w->store, memo_key, out->p, out->len);
	free(memo_key);
	return rc;
}

/* `rustc -vV`, memoized by the binary's identity. */
static int
rustc_version(struct wrapper *w, struct buf *out)
{
	char *argv[] = { (char *)w->rustc, "-vV", NULL };

	return tool_answer(w, argv, RUSTC_VV, out);
}

void
key_rustc_version_seen(struct store *s, const char *id, const char *vv, size_t n)
{
	char *memo_key;

	if (n == 0)
		return;
	memo_key = answer_memo_key(RUSTC_VV, id);
	store_memo_put_text(s, memo_key, vv, n);
	free(memo_key);
}

/* The value of the codegen option name ("linker=" for -C linker=cc: "cc")
 * when opt and v are one (-C or --codegen), else NULL. */
static const char *
codegen(const char *opt, const char *v, const char *name)
{
	if (v == NULL || (strcmp(opt, "-C") != 0 && strcmp(opt, "--codegen") != 0) ||
	    !str_starts_with(v, name))
		return NULL;
	return v + strlen(name);
}

/* Adds one option to the key, in folded form. 1 when the option was left out. */
static int
hash_option(struct wrapper *w, struct hash_ctx *c, const char *opt, const char *v)
{
	const char *f;
	char *folded;
	struct buf b;
	int rc;

	if (strcmp(opt, "--out-dir") == 0)
		return 1; /* outputs are stored relative to it */
	if (codegen(opt, v, "incremental=") != NULL) {
		hash_str(c, "incremental");
		return 1;
	}
	hash_str(c, opt);
	if (v == NULL) {
		hash_str(c, NULL);
		return 0;
	}
	if (strcmp(opt, "--extern") == 0) {
		const char *eq = strchr(v, '=');
		unsigned char h[HASH_LEN];

		if (eq == NULL) {
			hash_str(c, v);
			return 0;
		}
		if (hash_key_file(w, eq + 1, h) < 0) {
			log_warn("cannot hash --extern %s", v);
			return -1;
		}
		hash_update(c, v, (size_t)(eq - v + 1));
		hash_update(c, h, HASH_LEN);
		return 0;
	}
	if ((f = codegen(opt, v, "profile-use=")) != NULL ||
	    (f = codegen(opt, v, "profile-sample-use=")) != NULL) {
		/* a PGO profile: read by LLVM, named in no dep-info */
		char *path = path_absolute(f, w->roots.cwd);

		rc = hash_input_file(w, c, path);
		hash_update(c, v, (size_t)(f - v));
		free(path);
		return rc;
	}
	if (strcmp(opt, "--target") == 0 && (rc = hash_target_spec(w, c, v)) <= 0)
		return rc;
	if ((f = codegen(opt, v, "linker=")) != NULL) {
		/* the linker's identity, not where it is installed */
		hash_str(c, path_basename(f));
		return 0;
	}
	buf_init(&b);
	roots_fold(&w->roots, v, strlen(v), &b);
	folded = buf_detach(&b, NULL);
	log_debug("key: %s %s", opt, folded);
	hash_str(c, folded);
	free(folded);
	return 0;
}

/* The dir of a -L value where native libraries are searched ("native=D",
 * "all=D", "D"), or NULL for one that holds crates only. */
static const char *
native_dir(const char *l)
{
	if (str_starts_with(l, "dependency=") || str_starts_with(l, "crate="))
		return NULL;
	return strchr(l, '=') ? strchr(l, '=') + 1 : l;
}

/* The native libraries named by -l, found in the -L search dirs, go into the
 * key by content: a rebuilt C library must not be served a stale rlib. */
static int
hash_native_libs(struct wrapper *w, struct hash_ctx *c)
{
	const struct rustc_args *a = &w->args;

	for (size_t i = 0; i < a->opt_names.n; i++) {
		const char *v = a->opt_values.v[i], *name;
		char *base;

		if (strcmp(a->opt_names.v[i], "-l") != 0 || v == NULL)
			continue;
		name = strchr(v, '=') ? strchr(v, '=') + 1 : v;
		base = xstrndup(name, strcspn(name, ":"));
		for (size_t k = 0; k < a->lib_dirs.n; k++) {
			const char *dir = native_dir(a->lib_dirs.v[k]);
			const char *ext[] = { ".a", ".so" };

			if (dir == NULL)
				continue;
			for (int e = 0; e < 2; e++) {
				char *f = xasprintf("%s/lib%s%s", dir, base, ext[e]);
				unsigned char h[HASH_LEN];

				if (access(f, F_OK) == 0) {
					if (hash_key_file(w, f, h) < 0) {
						free(f);
						free(base);
						return -1;
					}
					hash_str(c, base);
					hash_update(c, h, HASH_LEN);
				}
				free(f);
			}
		}
		free(base);
	}
	return 0;
}

/* 1 when the compile runs the linker: a binary, a test, a shared library, a
 * proc-macro (an rlib or a staticlib is an archive). */
static int
links(const struct rustc_args *a)
{
	static const char *const linked[] = { "bin", "test", "dylib", "cdylib", "proc-macro" };

	if (!(a->emit & EMIT_LINK))
		return 0;
	if (a->crate_types.n == 0)
		return 1; /* rustc's default: bin */
	for (size_t i = 0; i < a->crate_types.n; i++)
		for (size_t k = 0; k < sizeof linked / sizeof linked[0]; k++)
			if (strcmp(a->crate_types.v[i], linked[k]) == 0)
				return 1;
	return 0;
}

/* A file rustc or its linker reads that no dep-info names, by content under
 * its name (roots folded). */
static int
hash_input_file(struct wrapper *w, struct hash_ctx *c, const char *path)
{
	unsigned char h[HASH_LEN];
	char *folded;

	if (hash_key_file(w, path, h) < 0) {
		log_warn("cannot hash %s", path);
		return -1;
	}
	folded = roots_fold_path(&w->roots, path);
	hash_str(c, folded);
	hash_update(c, h, HASH_LEN);
	free(folded);
	return 0;
}

/* --target: a built-in triple by name; a custom target's spec (nightly), a
 * path ending in .json or a name rustc finds as <name>.json in a
 * RUST_TARGET_PATH dir, by content too: rustc reads it, no dep-info names it
 * (cargo puts a spec's content in -C metadata; a direct call does not).
 * 0, -1 when the spec cannot be read, 1 when v names no spec file. */
static int
hash_target_spec(struct wrapper *w, struct hash_ctx *c, const char *v)
{
	const char *dirs = getenv("RUST_TARGET_PATH");
	char *path = NULL;
	int rc;

	if (str_ends_with(v, ".json")) {
		path = path_absolute(v, w->roots.cwd);
	} else if (dirs != NULL && strchr(v, '/') == NULL) {
		for (const char *d = dirs; *d != '\0' && path == NULL;) {
			size_t n = strcspn(d, ":");
			char *p = xasprintf("%.*s/%s.json", (int)n, d, v);

			if (n > 0 && access(p, F_OK) == 0)
				path = p;
			else
				free(p);
			d += n + (d[n] == ':');
		}
	}
	if (path == NULL)
		return 1; /* a name: as any option's value */
	rc = hash_input_file(w, c, path);
	free(path);
	return rc;
}

/* The regular files directly in a native search dir of the build, sorted: what a linker
 * script there INCLUDEs (cortex-m-rt's memory.x beside its link.x), or an
 * archive a script names, is read by the linker, never by rustc. Objects,
 * dep-info and Rust sources a build script leaves there are not linker
 * inputs (an archive of the objects is). */
static int
hash_link_dir(struct wrapper *w, struct hash_ctx *c, const char *dir)
{
	static const char *const skip[] = { ".o", ".obj", ".d", ".rs", ".dwo" };
	struct strv names;
	struct dirent *de;
	struct stat st;
	char *f;
	int rc = 0, ok;
	DIR *d = opendir(dir);

	if (d == NULL)
		return 0; /* no dir: the linker finds nothing there either */
	strv_init(&names);
	while ((de = readdir(d)) != NULL) {
		ok = de->d_name[0] != '.';
		for (size_t i = 0; ok && i < sizeof skip / sizeof skip[0]; i++)
			ok = !str_ends_with(de->d_name, skip[i]);
		if (ok && fstatat(dirfd(d), de->d_name, &st, 0) == 0 && S_ISREG(st.st_mode))
			strv_push(&names, de->d_name);
	}
	closedir(d);
	strv_sort(&names);
	for (size_t i = 0; rc == 0 && i < names.n; i++) {
		f = path_join(dir, names.v[i]);
		rc = hash_input_file(w, c, f);
		free(f);
	}
	strv_free(&names);
	return rc;
}

/* The files a -C link-arg names (a script, an object, a version script:
 * `-Tlink.x`, `-Wl,--version-script=v.map`, `-Wl,-T,x.ld`, a path), where
 * they exist: split at spaces, commas and '=', "-T" taken off. */
static int
hash_link_arg(struct wrapper *w, struct hash_ctx *c, const char *arg)
{
	char *copy = xstrdup(arg), *save = NULL, *f;
	struct stat st;
	int rc = 0;

	for (char *t = strtok_r(copy, " ,=", &save); rc == 0 && t;
	     t = strtok_r(NULL, " ,=", &save)) {
		if (str_starts_with(t, "-T") && t[2] != '\0')
			t += 2;
		if (t[0] == '-')
			continue;
		f = path_absolute(t, w->roots.cwd);
		if (stat(f, &st) == 0 && S_ISREG(st.st_mode))
			rc = hash_input_file(w, c, f);
		free(f);
	}
	free(copy);
	return rc;
}

/* A linking compile's inputs that only the linker reads: they change the
 * binary and name nothing in rustc's dep-info. An edited memory.x that a
 * build script copied into its OUT_DIR re-ran the link with the same
 * arguments, and the old binary was served (a wrong build). */
static int
hash_link_inputs(struct wrapper *w, struct hash_ctx *c)
{
	const struct rustc_args *a = &w->args;
	const char *v;

	if (!links(a))
		return 0;
	for (size_t i = 0; i < a->lib_dirs.n; i++) {
		char *dir;
		int rc = 0;

		if ((v = native_dir(a->lib_dirs.v[i])) == NULL)
			continue;
		dir = path_absolute(v, w->roots.cwd);
		/* the build's own dirs only (build scripts' OUT_DIRs, the
		 * workspace's): a system dir a pkg-config crate names (thousands
		 * of libraries) is the system's, as the linker is */
		if (path_under(dir, w->roots.cwd) != NULL ||
		    (w->roots.target != NULL && path_under(dir, w->roots.target) != NULL))
			rc = hash_link_dir(w, c, dir);
		free(dir);
		if (rc < 0)
			return -1;
	}
	for (size_t i = 0; i < a->opt_names.n; i++) {
		const char *n = a->opt_names.v[i], *o = a->opt_values.v[i];

		if ((v = codegen(n, o, "link-arg=")) == NULL)
			v = codegen(n, o, "link-args=");
		if (v != NULL && hash_link_arg(w, c, v) < 0)
			return -1;
	}
	return 0;
}

/* Variables that reach rustc outside its arguments, "NAME=value" with roots
 * folded, sorted: what the key takes from the environment. Secrets never. */
void
key_env_vars(struct wrapper *w, struct strv *out)
{
	static const char *const named[] = { "CARGO_ENCODED_RUSTFLAGS", "RUSTFLAGS",
		"RUSTC_BOOTSTRAP", "RUST_TARGET_PATH", NULL };
	/* what clippy-driver reads and names in no dep-info: whether the package
	 * was selected (`--no-deps` lints those only), the package's rust-version
	 * (its default MSRV: a workspace's may change with no change to the
	 * member's Cargo.toml), the lints' documentation links */
	static const char *const driver[] = { "CARGO_PRIMARY_PACKAGE", "CARGO_PKG_RUST_VERSION",
		"CLIPPY_DISABLE_DOCS_LINKS", NULL };

	for (char **e = environ; *e; e++) {
		int take = str_starts_with(*e, "CARGO_CFG_");

		for (int i = 0; named[i] && !take; i++)
			take = str_starts_with(*e, named[i]) && (*e)[strlen(named[i])] == '=';
		for (int i = 0; w->driver != NULL && driver[i] && !take; i++)
			take = str_starts_with(*e, driver[i]) && (*e)[strlen(driver[i])] == '=';
		if (take && !config_is_secret_env(*e)) {
			struct buf b;

			buf_init(&b);
			roots_fold(&w->roots, *e, strlen(*e), &b);
			strv_push_owned(out, buf_detach(&b, NULL));
		}
	}
	strv_sort(out);
}

static void
hash_env(struct wrapper *w, struct hash_ctx *c)
{
	struct strv vars;

	strv_init(&vars);
	key_env_vars(w, &vars);
	for (size_t i = 0; i < vars.n; i++)
		hash_str(c, vars.v[i]);
	strv_free(&vars);
}

/* clippy-driver in front of rustc (driver.c): its version (`--version`,
 * memoized as rustc's; the why record's compiler names and digests it after
 * rustc's) and the configuration file it will read go into the key. 0, or
 * -1 when either cannot be had. */
static int
hash_driver(struct wrapper *w, struct hash_ctx *c)
{
	char *argv[] = { (char *)w->driver, "--version", NULL };
	struct buf b;
	int rc = -1;

	buf_init(&b);
	if (tool_answer(w, argv, "driver-version", &b) < 0 || b.len == 0) {
		log_warnx("cannot run %s --version", w->driver);
	} else {
		hash_str(c, "driver");
		hash_str(c, b.p);
		log_debug("key: driver %.*s", (int)strcspn(b.p, "\n"), b.p);
		note_driver(w, b.p);
		buf_reset(&b);
		if (driver_config(w, &b) == 0) {
			log_debug("key: driver configuration %s", b.p);
			hash_str(c, "driver-config");
			hash_str(c, b.p);
			free(w->driver_conf);
			w->driver_conf = buf_detach(&b, NULL); /* for a miss's why record */
			rc = 0;
		} else {
			log_warn("cannot look for clippy's configuration file");
		}
	}
	buf_free(&b);
	return rc;
}

/* Keeps the compiler's release line and the digest of `rustc -vV` for a
 * miss's why record (keyparts.c); memory only, so a hit pays nothing. */
static void
note_compiler(struct wrapper *w, const char *vv, size_t n)
{
	size_t len = strcspn(vv, "\n");

	hash_buffer(vv, n, w->rustc_digest);
	snprintf(w->rustc_release, sizeof w->rustc_release, "%.*s", (int)len, vv);
}

/* The driver's version line after rustc's release line, and in the digest. */
static void
note_driver(struct wrapper *w, const char *version)
{
	size_t len = strlen(w->rustc_release);
	struct hash_ctx c;

	snprintf(w->rustc_release + len, sizeof w->rustc_release - len, ", %.*s",
	    (int)strcspn(version, "\n"), version);
	hash_begin(&c);
	hash_update(&c, w->rustc_digest, HASH_LEN);
	hash_str(&c, version);
	hash_end(&c, w->rustc_digest);
}

int
key_invocation(struct wrapper *w, unsigned char out[HASH_LEN])
{
	const struct rustc_args *a = &w->args;
	struct hash_ctx c;
	struct buf vv;
	char *src;

	buf_init(&vv);
	if (rustc_version(w, &vv) < 0) {
		log_warnx("cannot run %s -vV", w->rustc);
		buf_free(&vv);
		return -1;
	}
	hash_begin(&c);
	hash_str(&c, KEY_FORMAT);
	hash_str(&c, vv.p);
	proto_hint_toolchain_id(vv.p, vv.len, w->toolchain);
	note_compiler(w, vv.p, vv.len);
	buf_free(&vv);
	if (w->driver != NULL && hash_driver(w, &c) < 0)
		return -1;
	src = roots_fold_path(&w->roots, a->src);
	log_debug("key: crate %s src %s roots W=%s T=%s H=%s", a->crate_name, src, w->roots.cwd,
	    w->roots.target ? w->roots.target : "-", w->roots.home ? w->roots.home : "-");
	hash_str(&c, src);
	free(src);
	for (size_t i = 0; i < a->opt_names.n; i++)
		if (hash_option(w, &c, a->opt_names.v[i], a->opt_values.v[i]) < 0)
			return -1;
	if (hash_native_libs(w, &c) < 0 || hash_link_inputs(w, &c) < 0)
		return -1;
	/* code for this CPU: the CPU, and for a miss's why record its label */
	if (a->native_cpu &&
	    hostcpu_hash(&c, a->crate_name, "-C target-cpu=native", w->host_cpu, sizeof w->host_cpu,
	        w->host_cpu_digest) < 0)
		return -1;
	hash_env(w, &c);
	/* a result whose proc macros' reads are keyed (trace.c) is never one made
	 * without: neither is served for the other */
	if (trace_wanted(w))
		hash_str(&c, "proc-macro-reads-traced");
	if (config_get_bool(w->cfg, "cache.remap")) {
		hash_str(&c, "remap");
	} else {
		/* Artifacts then embed real paths: the key must too. */
		hash_str(&c, w->roots.cwd);
		hash_str(&c, w->roots.target);
		hash_str(&c, w->roots.home);
	}
	hash_end(&c, out);
	return 0;
}
