/* What cargo asks rustc before it compiles anything: `rustc -vV` and its
 * target query (`rustc - --crate-name ___ --print=file-names ... --print=cfg`,
 * stdin from /dev/null). cargo keeps the answers in target/.rustc_info.json,
 * which `cargo clean` removes, so every build after one asked again: three
 * starts of rustc in a row before the first compile. The answers depend on
 * the toolchain, the arguments and a few variables rustc reads, so they are
 * memoized in the store under exactly those, framed with their digest: a
 * damaged memo is never handed to cargo. `cargo clippy` asks them through
 * clippy-driver (`kache clippy-driver rustc -vV`, driver.c), which answers as
 * the rustc it is built on: memoized under both binaries' identities. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "common/fs.h"
#include "common/hash.h"
#include "common/log.h"
#include "wrapper/wrapper.h"

#define QUERY_MAGIC "kache-query-1"
#define QUERY_MAX (256 * 1024) /* a target query answers in about 2 KiB */

/* What rustc reads from the environment that can change these answers. */
static const char *const query_env[] = { "RUSTC_BOOTSTRAP", "RUST_TARGET_PATH",
	"RUSTC_OVERRIDE_VERSION_STRING", "SDKROOT", "MACOSX_DEPLOYMENT_TARGET",
	"IPHONEOS_DEPLOYMENT_TARGET", "TVOS_DEPLOYMENT_TARGET", "WATCHOS_DEPLOYMENT_TARGET",
	"XROS_DEPLOYMENT_TARGET", NULL };

/* The --print kinds answered without compiling, from the toolchain alone. */
static const char *const print_kinds[] = { "file-names", "sysroot", "split-debuginfo", "crate-name",
	"cfg", "target-libdir", "host-tuple", "target-list", NULL };

/* The other options a target query may carry: each says its effect in full. */
static const char *const query_opts[] = { "--crate-name", "--crate-type", "-C", "--codegen",
	"--cfg", "--check-cfg", "-W", "-A", "-D", "-F", "--cap-lints", "--edition", "--sysroot",
	NULL };

static int is_query(const struct rustc_args *a);
static int query_option(const char *opt, const char *v);
static int in_list(const char *const *list, const char *s);
static int stdin_is_null(void);
static char *query_identity(const struct wrapper *w);
static char *memo_key(const char *id, int argc, char **argv);
static int count_field(const char **q, char sep, size_t *n);
static void replay(const struct buf *memo, size_t body, size_t nout, size_t nerr);
static void version_answered(struct wrapper *w, const char *vv, size_t n);
static void record(struct store *s, const char *key, const struct run_result *r);

static int
in_list(const char *const *list, const char *s)
{
	for (; *list != NULL; list++)
		if (strcmp(*list, s) == 0)
			return 1;
	return 0;
}

/* An option of a target query whose effect the arguments say in full: no
 * file named (a custom target's .json, -Z options, argfiles), nothing of the
 * host machine (target-cpu=native). 1 when it may be memoized. */
static int
query_option(const char *opt, const char *v)
{
	if (v == NULL) /* a flag: none of a query's */
		return 0;
	if (strcmp(opt, "--print") == 0)
		return in_list(print_kinds, v);
	if (strstr(v, "native") != NULL)
		return 0;
	if (strcmp(opt, "--target") == 0)
		return strchr(v, '/') == NULL && strstr(v, ".json") == NULL;
	return in_list(query_opts, opt);
}

/* 1 for `-vV` (or -V, --version) alone, and for a target query (as args.c
 * parsed it): source `-` read from /dev/null and no other, at least one
 * --print of print_kinds, every option one query_option takes. */
static int
is_query(const struct rustc_args *a)
{
	int prints = 0;

	if (a->argc == 1)
		return strcmp(a->argv[0], "-vV") == 0 || strcmp(a->argv[0], "-V") == 0 ||
		    strcmp(a->argv[0], "--version") == 0;
	if (a->stdin_sources != 1 || a->src != NULL || a->unmodelled > 0)
		return 0;
	for (size_t i = 0; i < a->opt_names.n; i++) {
		if (!query_option(a->opt_names.v[i], a->opt_values.v[i]))
			return 0;
		prints += strcmp(a->opt_names.v[i], "--print") == 0;
	}
	return prints > 0 && stdin_is_null();
}

/* stdin is /dev/null (as cargo gives its queries): the `-` source is empty. */
static int
stdin_is_null(void)
{
	struct stat st;

	return fstat(0, &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3);
}

/* The identity the answers are memoized under (new string): rustc's, and
 * through clippy-driver the driver's before it. NULL when one cannot be
 * named (a rustup proxy: asked every time). */
static char *
query_identity(const struct wrapper *w)
{
	char *rid = key_rustc_identity(w->rustc), *did, *id = NULL;

	if (rid == NULL || w->driver == NULL)
		return rid;
	if ((did = key_rustc_identity(w->driver)) != NULL) {
		id = xasprintf("driver %s\n%s", did, rid);
		free(did);
	}
	free(rid);
	return id;
}

/* The memo's name: the binary's identity, each argument (length-prefixed:
 * no two argument lists read alike) and the variables of query_env. */
static char *
memo_key(const char *id, int argc, char **argv)
{
	struct buf b;
	const char *v;

	buf_init(&b);
	buf_addf(&b, "rustc-query\n%s\n", id);
	for (int i = 0; i < argc; i++)
		buf_addf(&b, "%zu:%s\n", strlen(argv[i]), argv[i]);
	for (size_t i = 0; query_env[i] != NULL; i++)
		if ((v = getenv(query_env[i])) != NULL)
			buf_addf(&b, "%s=%zu:%s\n", query_env[i], strlen(v), v);
	return buf_detach(&b, NULL);
}

/* A decimal count of at most QUERY_MAX bytes at *q, in its one spelling (no
 * sign, no leading zero), followed by sep; moves *q past sep. -1 when it is
 * not one. */
static int
count_field(const char **q, char sep, size_t *n)
{
	unsigned long long v;
	char *end;

	if (**q < '0' || **q > '9' || ((*q)[0] == '0' && (*q)[1] != sep))
		return -1;
	v = strtoull(*q, &end, 10);
	if (*end != sep || v > QUERY_MAX)
		return -1;
	*n = (size_t)v;
	*q = end + 1;
	return 0;
}

int
query_memo_decode(const char *p, size_t n, size_t *body, size_t *nout, size_t *nerr)
{
	char hex[HASH_HEX_LEN + 1];
	unsigned char h[HASH_LEN];
	const char *nl = n > 0 ? memchr(p, '\n', n) : NULL, *q;

	if (nl == NULL || (size_t)(nl - p) < sizeof QUERY_MAGIC ||
	    memcmp(p, QUERY_MAGIC " ", sizeof QUERY_MAGIC) != 0)
		return -1;
	q = p + sizeof QUERY_MAGIC;
	if (count_field(&q, ' ', nout) < 0 || count_field(&q, ' ', nerr) < 0 ||
	    nl - q != HASH_HEX_LEN)
		return -1;
	*body = (size_t)(nl + 1 - p);
	if (n - *body != *nout + *nerr)
		return -1;
	hash_buffer(nl + 1, *nout + *nerr, h);
	hash_to_hex(h, hex);
	return memcmp(hex, q, HASH_HEX_LEN) == 0 ? 0 : -1;
}

void
query_memo_encode(const char *out, size_t nout, const char *err, size_t nerr, struct buf *b)
{
	unsigned char h[HASH_LEN];
	char hex[HASH_HEX_LEN + 1];
	struct hash_ctx c;

	hash_begin(&c);
	hash_update(&c, out, nout);
	hash_update(&c, err, nerr);
	hash_end(&c, h);
	hash_to_hex(h, hex);
	buf_addf(b, QUERY_MAGIC " %zu %zu %s\n", nout, nerr, hex);
	buf_add(b, out, nout);
	buf_add(b, err, nerr);
}

/* Prints a memoized answer that query_memo_decode found whole (its body at
 * body: nout bytes of stdout, then nerr of stderr). */
static void
replay(const struct buf *memo, size_t body, size_t nout, size_t nerr)
{
	if (fs_write_all(1, memo->p + body, nout) < 0 ||
	    fs_write_all(2, memo->p + body + nout, nerr) < 0)
		log_warn("query answer"); /* cargo went away: nothing else to do */
}

/* Memoizes a successful answer (a failed query is asked again next time). */
static void
record(struct store *s, const char *key, const struct run_result *r)
{
	struct buf b;

	if (r->status != 0 || r->out.len > QUERY_MAX || r->err.len > QUERY_MAX)
		return;
	buf_init(&b);
	query_memo_encode(r->out.p ? r->out.p : "", r->out.len, r->err.p ? r->err.p : "",
	    r->err.len, &b);
	store_memo_put_text(s, key, b.p, b.len);
	buf_free(&b);
}

/* cargo's first question, `rustc -vV`, answered (vv): the build session
 * starts here, before any compile shows it (session_hint_early). */
static void
version_answered(struct wrapper *w, const char *vv, size_t n)
{
	if (session_hint_early(w, vv, n))
		wrapper_ensure_supervisor(w->store);
}

int
query_answer(struct wrapper *w)
{
	const struct rustc_args *a = &w->args;
	int version = a->argc == 1 && strcmp(a->argv[0], "-vV") == 0, lead;
	struct run_result r;
	struct buf memo;
	char *id, *key, **v;
	/* the driver is given the rustc it wraps: program [rustc] args */
	const char *program = w->driver != NULL ? w->driver : w->rustc;
	size_t body, nout, nerr;
	int rc = -1;

	if (!is_query(a) || (id = query_identity(w)) == NULL)
		return -1;
	key = memo_key(id, a->argc, a->argv);
	buf_init(&memo);
	if (store_memo_get_text(w->store, key, &memo) == 0 &&
	    query_memo_decode(memo.p, memo.len, &body, &nout, &nerr) == 0) {
		log_debug("rustc %s: answered from its memo", a->argv[0]);
		if (version)
			version_answered(w, memo.p + body, nout);
		replay(&memo, body, nout, nerr);
		rc = 0;
	} else {
		lead = w->driver != NULL ? 2 : 1;
		v = xcalloc((size_t)a->argc + (size_t)lead + 1, sizeof *v);
		v[0] = (char *)program;
		v[lead - 1] = (char *)w->rustc;
		memcpy(v + lead, a->argv, (size_t)a->argc * sizeof *v);
		if (run_rustc(program, v, NULL, &r) == 0) {
			record(w->store, key, &r);
			if (version && r.status == 0) {
				if (w->driver == NULL) /* rustc's own, for the key */
					key_rustc_version_seen(w->store, id, r.out.p ? r.out.p : "",
					    r.out.len);
				version_answered(w, r.out.p ? r.out.p : "", r.out.len);
			}
			rc = r.status;
			buf_free(&r.out);
			buf_free(&r.err);
		}
		free(v);
	}
	buf_free(&memo);
	free(key);
	free(id);
	return rc;
}
