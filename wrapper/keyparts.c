/* Why a miss missed: the parts of its key, each with a digest, written to the
 * crate's why file (store/why.h) by a stored miss (in the background store's
 * child when there is one), never by a hit. The parts mirror key.c's
 * invocation key (compiler, options, --extern files, native libraries,
 * environment, roots without remap) and the candidate's inputs (sources and
 * env-deps), which decide whether a candidate matches. */
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/path.h"
#include "store/why.h"
#include "wrapper/wrapper.h"

static void add_text(struct why_rec *r, enum why_kind k, const char *name, const char *text);
static void add_options(struct wrapper *w, struct why_rec *r);
static void add_extern(struct wrapper *w, struct why_rec *r, const char *v);
static void add_env(struct wrapper *w, struct why_rec *r);
static void add_inputs(struct why_rec *r, const struct store_candidate *c);
static int is_extern_path(const struct rustc_args *a, const char *f);

/* 1 when f is the file of an --extern (key.c hashed it as such). */
static int
is_extern_path(const struct rustc_args *a, const char *f)
{
	for (size_t i = 0; i < a->opt_names.n; i++) {
		const char *v = a->opt_values.v[i];

		if (strcmp(a->opt_names.v[i], "--extern") == 0 && v != NULL && strchr(v, '=') &&
		    strcmp(strchr(v, '=') + 1, f) == 0)
			return 1;
	}
	return 0;
}

/* A part whose digest is that of text. */
static void
add_text(struct why_rec *r, enum why_kind k, const char *name, const char *text)
{
	unsigned char h[HASH_LEN];

	/* an unset env-dep: a form no set value has (names have no '=') */
	hash_buffer(text ? text : "=unset", strlen(text ? text : "=unset"), h);
	why_rec_add(r, k, name, h);
}

/* --extern NAME=path: the digest key.c hashed for that path (w->key_files). */
static void
add_extern(struct wrapper *w, struct why_rec *r, const char *v)
{
	const char *eq = strchr(v, '=');
	char *name;

	if (eq == NULL) {
		add_text(r, WHY_ARG, v, v);
		return;
	}
	name = xstrndup(v, (size_t)(eq - v));
	for (size_t i = 0; i < w->key_files.n; i++)
		if (strcmp(w->key_files.v[i], eq + 1) == 0) {
			why_rec_add(r, WHY_EXTERN, name,
			    (const unsigned char *)w->key_hashes.p + i * HASH_LEN);
			break;
		}
	free(name);
}

/* Every option as key.c folds it (--out-dir is not in the key), and a
 * driver's configuration file. */
static void
add_options(struct wrapper *w, struct why_rec *r)
{
	const struct rustc_args *a = &w->args;
	char *src = roots_fold_path(&w->roots, a->src);
	char *t = xasprintf("source %s", src);

	add_text(r, WHY_ARG, t, t);
	free(t);
	free(src);
	if (w->driver_conf != NULL) { /* the clippy.toml key.c took (driver.c) */
		t = xasprintf("clippy configuration file %s", w->driver_conf);
		add_text(r, WHY_ARG, t, t);
		free(t);
	}
	for (size_t i = 0; i < a->opt_names.n; i++) {
		const char *o = a->opt_names.v[i], *v = a->opt_values.v[i];
		struct buf b;

		if (strcmp(o, "--out-dir") == 0)
			continue;
		if (strcmp(o, "--extern") == 0 && v != NULL) {
			add_extern(w, r, v);
			continue;
		}
		buf_init(&b);
		buf_addstr(&b, o);
		if (v != NULL && str_starts_with(v, "incremental=")) {
			buf_addstr(&b, " incremental");
		} else if (v != NULL) {
			buf_addch(&b, ' ');
			roots_fold(&w->roots, v, strlen(v), &b);
		}
		add_text(r, WHY_ARG, b.p, b.p);
		buf_free(&b);
	}
}

/* The environment the key takes (by name), and the native libraries. */
static void
add_env(struct wrapper *w, struct why_rec *r)
{
	struct strv vars;

	strv_init(&vars);
	key_env_vars(w, &vars);
	for (size_t i = 0; i < vars.n; i++) {
		char *name = xstrndup(vars.v[i], strcspn(vars.v[i], "="));

		add_text(r, WHY_ENV, name, vars.v[i]);
		free(name);
	}
	strv_free(&vars);
	for (size_t i = 0; i < w->key_files.n; i++) {
		const char *f = w->key_files.v[i];
		char *folded;

		if (is_extern_path(&w->args, f))
			continue; /* already there */
		folded = roots_fold_path(&w->roots, f);
		why_rec_add(r, WHY_NATIVE, folded,
		    (const unsigned char *)w->key_hashes.p + i * HASH_LEN);
		free(folded);
	}
}

/* The candidate's inputs: sources by content, env-deps by stored form. */
static void
add_inputs(struct why_rec *r, const struct store_candidate *c)
{
	for (size_t i = 0; i < c->n_inputs; i++)
		why_rec_add(r, WHY_SOURCE, c->inputs[i].path, c->inputs[i].hash);
	for (size_t i = 0; i < c->n_envs; i++)
		add_text(r, WHY_ENVDEP, c->envs[i].name, c->envs[i].value);
}

void
keyparts_record(struct wrapper *w, const struct store_candidate *c)
{
	struct why_rec r;

	if (w->args.crate_name == NULL || !why_crate_valid(w->args.crate_name))
		return;
	why_rec_init(&r);
	snprintf(r.crate, sizeof r.crate, "%s", w->args.crate_name);
	memcpy(r.inv, w->inv, HASH_LEN);
	why_rec_add(&r, WHY_COMPILER, w->rustc_release, w->rustc_digest);
	add_options(w, &r);
	if (w->args.native_cpu)
		why_rec_add(&r, WHY_HOST_CPU, w->host_cpu, w->host_cpu_digest);
	add_env(w, &r);
	add_inputs(&r, c);
	if (!config_get_bool(w->cfg, "cache.remap")) {
		add_text(&r, WHY_ROOT_WS, w->roots.cwd, w->roots.cwd);
		add_text(&r, WHY_ROOT_TARGET, w->roots.target, w->roots.target);
		add_text(&r, WHY_ROOT_HOME, w->roots.home, w->roots.home);
	}
	why_append(store_dir(w->store), &r);
	why_rec_clear(&r);
}
