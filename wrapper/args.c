/* rustc's command line, as far as caching needs to understand it. Anything not
 * modelled safely becomes a pass-through with a reason. */
#include <stdlib.h>
#include <string.h>

#include "wrapper/wrapper.h"

/* Options that take their value as the next argument (or after '='). */
static const char *const takes_value[] = { "-o", "-L", "-l", "--crate-type", "--crate-name",
	"--edition", "--emit", "--print", "--out-dir", "--explain", "--target", "-A", "-W", "-D",
	"-F", "--force-warn", "--allow", "--warn", "--deny", "--forbid", "--cap-lints", "-C",
	"--codegen", "--cfg", "--check-cfg", "--extern", "--sysroot", "--error-format", "--json",
	"--color", "--diagnostic-width", "--remap-path-prefix", "--remap-path-scope", "-Z",
	"--env-set", "--extern-location", "--crate-attr", "--pretty", NULL };

static int option_takes_value(const char *opt);
static void parse_emit(struct rustc_args *a, const char *v);
static void parse_codegen(struct rustc_args *a, const char *v);
static void parse_one(struct rustc_args *a, const char *opt, const char *v);
static char *link_name(const char *type, const char *stem);
static int output_names_ok(const struct rustc_args *a);
static int in_out_dir_env(const char *dir);

static int
option_takes_value(const char *opt)
{
	for (int i = 0; takes_value[i]; i++)
		if (strcmp(opt, takes_value[i]) == 0)
			return 1;
	return 0;
}

static void
parse_emit(struct rustc_args *a, const char *v)
{
	static const struct {
		const char *name;
		unsigned bit;
	} kinds[] = {
		{ "link", EMIT_LINK },
		{ "metadata", EMIT_METADATA },
		{ "dep-info", EMIT_DEPINFO },
		{ "obj", EMIT_OBJ },
		{ "asm", EMIT_ASM },
		{ "llvm-ir", EMIT_LLVM_IR },
		{ "llvm-bc", EMIT_LLVM_BC },
		{ "mir", EMIT_MIR },
	};
	char *copy = xstrdup(v), *save = NULL;

	for (char *k = strtok_r(copy, ",", &save); k; k = strtok_r(NULL, ",", &save)) {
		size_t i;

		if (strchr(k, '=') != NULL) {
			a->pass_reason = "emit-to-path";
			continue;
		}
		for (i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
			if (strcmp(k, kinds[i].name) == 0)
				break;
		if (i == sizeof kinds / sizeof kinds[0])
			a->pass_reason = "emit-unknown";
		else
			a->emit |= kinds[i].bit;
	}
	free(copy);
}

static void
parse_codegen(struct rustc_args *a, const char *v)
{
	if (str_starts_with(v, "incremental="))
		a->incremental = 1;
	else if (str_starts_with(v, "extra-filename="))
		a->extra_filename = v + strlen("extra-filename=");
	else if (v != NULL && strcmp(v, "target-cpu=native") == 0)
		a->native_cpu = 1;
	else if (v != NULL && str_starts_with(v, "split-debuginfo="))
		a->split_debuginfo = v + strlen("split-debuginfo=");
}

/* Records one option and its value (NULL for flags). */
static void
parse_one(struct rustc_args *a, const char *opt, const char *v)
{
	strv_push(&a->opt_names, opt);
	strv_push_owned(&a->opt_values, v ? xstrdup(v) : NULL);
	if (strcmp(opt, "--crate-name") == 0) {
		a->crate_name = v;
	} else if (strcmp(opt, "--crate-type") == 0) {
		char *copy = xstrdup(v), *save = NULL;

		for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save))
			strv_push(&a->crate_types, t);
		free(copy);
	} else if (strcmp(opt, "--emit") == 0) {
		parse_emit(a, v);
	} else if (strcmp(opt, "--out-dir") == 0) {
		a->out_dir = v;
	} else if (strcmp(opt, "-o") == 0) {
		a->pass_reason = "explicit-output";
	} else if (strcmp(opt, "-C") == 0 || strcmp(opt, "--codegen") == 0) {
		parse_codegen(a, v);
	} else if (strcmp(opt, "--extern") == 0) {
		strv_push(&a->externs, v);
	} else if (strcmp(opt, "-L") == 0) {
		strv_push(&a->lib_dirs, v);
	} else if (strcmp(opt, "--print") == 0) {
		a->pass_reason = "print";
	} else if (strcmp(opt, "--pretty") == 0 || strcmp(opt, "--explain") == 0) {
		a->pass_reason = "pretty";
	} else if (strcmp(opt, "-Z") == 0 &&
	    (str_starts_with(v, "unpretty") || str_starts_with(v, "ls"))) {
		a->pass_reason = "unpretty";
	} else if (strcmp(opt, "-Z") == 0 && v != NULL && strcmp(v, "tune-cpu=native") == 0) {
		a->native_cpu = 1;
	} else if (strcmp(opt, "--json") == 0) {
		if (v != NULL && strstr(v, "artifacts") != NULL)
			a->json_artifacts = 1;
	} else if (strcmp(opt, "--test") == 0) {
		strv_push(&a->crate_types, "test");
	}
}

void
args_parse(struct rustc_args *a, int argc, char **argv)
{
	memset(a, 0, sizeof *a);
	a->argc = argc;
	a->argv = argv;
	for (int i = 0; i < argc; i++) {
		const char *arg = argv[i];
		char opt[32];
		const char *eq;

		if (arg[0] == '@') {
			a->pass_reason = "argfile";
			a->unmodelled++;
		} else if (strcmp(arg, "-") == 0) {
			a->pass_reason = "stdin";
			a->stdin_sources++;
		} else if (arg[0] != '-') {
			if (a->src != NULL)
				a->pass_reason = "multiple-sources";
			a->src = arg;
		} else if (strcmp(arg, "-vV") == 0 || strcmp(arg, "-V") == 0 ||
		    strcmp(arg, "--version") == 0 || strcmp(arg, "-h") == 0 ||
		    strcmp(arg, "--help") == 0) {
			a->pass_reason = "version-or-help";
			a->unmodelled++;
		} else if (arg[1] != '-' && arg[1] != '\0' && arg[2] != '\0' &&
		    option_takes_value((char[]){ '-', arg[1], '\0' })) {
			/* -Cfoo=bar, -Lpath, -Zflag: a short option glued to its value */
			parse_one(a, (char[]){ '-', arg[1], '\0' }, arg + 2);
		} else if ((eq = strchr(arg, '=')) != NULL && arg[1] == '-' &&
		    (size_t)(eq - arg) < sizeof opt) {
			memcpy(opt, arg, (size_t)(eq - arg));
			opt[eq - arg] = '\0';
			if (option_takes_value(opt)) {
				parse_one(a, opt, eq + 1);
			} else {
				a->pass_reason = "unknown-option";
				a->unmodelled++;
			}
		} else if (option_takes_value(arg)) {
			if (i + 1 >= argc) {
				a->pass_reason = "missing-value";
				a->unmodelled++;
				break;
			}
			parse_one(a, arg, argv[++i]);
		} else {
			parse_one(a, arg, NULL);
		}
	}
	if (a->pass_reason != NULL)
		return;
	if (a->src == NULL)
		a->pass_reason = "no-source";
	else if (a->crate_name == NULL)
		a->pass_reason = "no-crate-name";
	else if (a->out_dir == NULL)
		a->pass_reason = "no-out-dir";
	else if (a->emit == 0)
		a->emit = EMIT_LINK; /* rustc's default */
	if (a->pass_reason == NULL &&
	    (a->emit & (EMIT_OBJ | EMIT_ASM | EMIT_LLVM_IR | EMIT_LLVM_BC | EMIT_MIR)))
		a->pass_reason = "emit-intermediate";
	if (a->pass_reason == NULL)
		a->probe = in_out_dir_env(a->out_dir);
	if (a->pass_reason == NULL && !(a->emit & EMIT_DEPINFO)) {
		if (a->probe)
			a->private_depinfo = 1;
		else
			a->pass_reason = "no-dep-info";
	}
	if (a->pass_reason == NULL && !output_names_ok(a))
		a->pass_reason = "unusual-output-name";
}

/* 1 when dir (absolute, as build scripts pass it) is $OUT_DIR or under it:
 * the compile is a build script's probe, not one of cargo's (whose out-dir is
 * deps/ even when OUT_DIR is set for the crate). */
static int
in_out_dir_env(const char *dir)
{
	const char *od = getenv("OUT_DIR");
	size_t n;

	if (od == NULL || od[0] != '/' || dir[0] != '/')
		return 0;
	n = strlen(od);
	while (n > 1 && od[n - 1] == '/')
		n--;
	return strncmp(dir, od, n) == 0 && (dir[n] == '\0' || dir[n] == '/');
}

/* The output names are built from the crate name and extra-filename, and
 * kache unlinks them in the out-dir before a compile: a '/' in either (rustc
 * itself refuses such a crate name, but only after kache ran) would name a
 * file elsewhere. A crate name is [A-Za-z0-9_]+, as rustc requires. */
static int
output_names_ok(const struct rustc_args *a)
{
	const char *c = a->crate_name;

	if (*c == '\0')
		return 0;
	for (; *c; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
		        (*c >= '0' && *c <= '9') || *c == '_'))
			return 0;
	return a->extra_filename == NULL || strchr(a->extra_filename, '/') == NULL;
}

void
args_free(struct rustc_args *a)
{
	strv_free(&a->crate_types);
	strv_free(&a->externs);
	strv_free(&a->lib_dirs);
	strv_free(&a->opt_names);
	strv_free(&a->opt_values);
}

/* The link output name for one crate type. */
static char *
link_name(const char *type, const char *stem)
{
	if (strcmp(type, "bin") == 0 || strcmp(type, "test") == 0)
		return xstrdup(stem);
	if (strcmp(type, "staticlib") == 0)
		return xasprintf("lib%s.a", stem);
	if (strcmp(type, "dylib") == 0 || strcmp(type, "cdylib") == 0 ||
	    strcmp(type, "proc-macro") == 0)
		return xasprintf("lib%s.so", stem);
	return xasprintf("lib%s.rlib", stem);
}

char *
args_stem(const struct rustc_args *a)
{
	return xasprintf("%s%s", a->crate_name, a->extra_filename ? a->extra_filename : "");
}

void
args_expected_outputs(const struct rustc_args *a, struct strv *out)
{
	char *stem = args_stem(a);

	if (a->emit & EMIT_DEPINFO)
		strv_push_owned(out, xasprintf("%s.d", stem));
	if (a->emit & EMIT_METADATA)
		strv_push_owned(out, xasprintf("lib%s.rmeta", stem));
	if (a->emit & EMIT_LINK) {
		if (a->crate_types.n == 0)
			strv_push_owned(out, link_name("bin", stem));
		for (size_t i = 0; i < a->crate_types.n; i++)
			strv_push_owned(out, link_name(a->crate_types.v[i], stem));
	}
	free(stem);
}
