/* A C compiler's command line, as far as caching goes: one source, -c, -o,
 * the user's dep file. Anything else that changes what is written, or how
 * many files, is a pass-through with a reason. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "common/path.h"
#include "common/util.h"
#include "wrapper/cc.h"

static int strip_version(const char *name, size_t *len);
static int takes_value(const char *opt);
static int is_source(const char *path);
static const char *refused(const char *arg);
static int parse_one(struct cc_args *a, int *i, int *has_c, int *md);
static void finish(struct cc_args *a, int has_c, int md);

/* The length of name without a "-<digits>[.digits]" suffix in *len. */
static int
strip_version(const char *name, size_t *len)
{
	const char *dash = strrchr(name, '-');

	*len = strlen(name);
	if (dash == NULL || !isdigit((unsigned char)dash[1]))
		return 0;
	for (const char *p = dash + 1; *p; p++)
		if (!isdigit((unsigned char)*p) && *p != '.')
			return 0;
	*len = (size_t)(dash - name);
	return 1;
}

int
cc_is_compiler(const char *name)
{
	static const char *const known[] = { "cc", "c++", "gcc", "g++", "clang", "clang++" };
	const char *base = path_basename(name);
	size_t len;

	strip_version(base, &len);
	for (size_t k = 0; k < sizeof known / sizeof known[0]; k++) {
		size_t kl = strlen(known[k]);

		if (len == kl && strncmp(base, known[k], kl) == 0)
			return 1;
		if (len > kl + 1 && base[len - kl - 1] == '-' &&
		    strncmp(base + len - kl, known[k], kl) == 0)
			return 1;
	}
	return 0;
}

/* Options whose value is the next argument. */
static int
takes_value(const char *opt)
{
	static const char *const v[] = { "-I", "-D", "-U", "-include", "-isystem", "-iquote",
		"-idirafter", "-imacros", "-isysroot", "--sysroot", "-target", "-arch", "-Xclang",
		"-MT", "-MQ", "-MF", "-o", "-x", "-Xassembler", "-Xpreprocessor", "-L", "-iprefix",
		"-iwithprefix", "-aux-info", "--param", "-G" };

	for (size_t k = 0; k < sizeof v / sizeof v[0]; k++)
		if (strcmp(opt, v[k]) == 0)
			return 1;
	return 0;
}

static int
is_source(const char *path)
{
	static const char *const ext[] = { ".c", ".cc", ".cpp", ".cxx", ".c++", ".C", ".S", ".s",
		".sx" };

	for (size_t k = 0; k < sizeof ext / sizeof ext[0]; k++)
		if (str_ends_with(path, ext[k]))
			return 1;
	return 0;
}

/* Why an option alone makes the compile uncacheable here, or NULL. */
static const char *
refused(const char *arg)
{
	if (arg[0] == '@')
		return "response-file";
	if (strcmp(arg, "-E") == 0)
		return "preprocess-only";
	if (strcmp(arg, "-S") == 0)
		return "assembly-output";
	if (strcmp(arg, "-M") == 0 || strcmp(arg, "-MM") == 0)
		return "dep-only";
	if (strcmp(arg, "-MMD") == 0)
		return "user-mmd";
	if (strncmp(arg, "-save-temps", 11) == 0 || strcmp(arg, "-gsplit-dwarf") == 0 ||
	    strcmp(arg, "--coverage") == 0 || strncmp(arg, "-fprofile-", 10) == 0 ||
	    strcmp(arg, "-ftest-coverage") == 0 || strncmp(arg, "-fdump-", 7) == 0 ||
	    strncmp(arg, "-Wp,", 4) == 0)
		return "extra-outputs";
	return NULL;
}

/* One argument at *i (moves *i past its value). 0, or -1 with pass_reason set. */
static int
parse_one(struct cc_args *a, int *i, int *has_c, int *md)
{
	const char *arg = a->argv[*i], *val = NULL;

	if ((a->pass_reason = refused(arg)) != NULL)
		return -1;
	if (arg[0] == '-' && arg[1] != '\0' && takes_value(arg)) {
		if (*i + 1 >= a->argc) {
			a->pass_reason = "missing-value";
			return -1;
		}
		val = a->argv[++*i];
	}
	if (strcmp(arg, "-c") == 0)
		*has_c = 1;
	else if (strcmp(arg, "-MD") == 0)
		*md = 1;
	else if (strcmp(arg, "-o") == 0)
		a->obj = val;
	else if (strncmp(arg, "-o", 2) == 0)
		a->obj = arg + 2;
	else if (strcmp(arg, "-MF") == 0)
		a->dep_file = xstrdup(val);
	else if (strcmp(arg, "-x") == 0 || strncmp(arg, "-x", 2) == 0) {
		const char *l = val ? val : arg + 2;

		a->x_lang = l;
		if (strcmp(l, "c") != 0 && strcmp(l, "c++") != 0 &&
		    strcmp(l, "assembler-with-cpp") != 0 && strcmp(l, "assembler") != 0)
			a->pass_reason = "language";
	} else if (arg[0] != '-') {
		if (a->src != NULL)
			a->pass_reason = "several-sources";
		else if (!is_source(arg))
			a->pass_reason = "unknown-input";
		a->src = arg;
	} else if (strcmp(arg, "-") == 0)
		a->pass_reason = "stdin-source";
	return a->pass_reason ? -1 : 0;
}

/* The checks that need the whole line; the default dep file of -MD. */
static void
finish(struct cc_args *a, int has_c, int md)
{
	if (!has_c)
		a->pass_reason = "no-c";
	else if (a->src == NULL)
		a->pass_reason = "no-source";
	else if (a->obj == NULL)
		a->pass_reason = "no-output";
	else if (strcmp(a->obj, "-") == 0 || a->obj[0] == '\0')
		a->pass_reason = "output-stdout";
	else if (!md && a->dep_file != NULL)
		a->pass_reason = "mf-without-md";
	if (a->pass_reason != NULL || !md || a->dep_file != NULL)
		return;
	{
		const char *dot = strrchr(a->obj, '.'), *slash = strrchr(a->obj, '/');
		size_t len =
		    dot && (!slash || dot > slash) ? (size_t)(dot - a->obj) : strlen(a->obj);

		a->dep_file = xasprintf("%.*s.d", (int)len, a->obj);
	}
}

void
cc_args_parse(struct cc_args *a, int argc, char **argv)
{
	int has_c = 0, md = 0;

	memset(a, 0, sizeof *a);
	a->argc = argc;
	a->argv = argv;
	if (getenv("DEPENDENCIES_OUTPUT") || getenv("SUNPRO_DEPENDENCIES")) {
		a->pass_reason = "dependencies-output-env";
		return;
	}
	for (int i = 0; i < argc; i++)
		if (parse_one(a, &i, &has_c, &md) < 0)
			return;
	finish(a, has_c, md);
}

const char *
cc_args_lang(const struct cc_args *a, const char *compiler)
{
	static const char *const cxx[] = { ".cc", ".cpp", ".cxx", ".c++", ".C" };
	static const char *const as[] = { ".S", ".s", ".sx" };

	if (a->x_lang != NULL)
		return strncmp(a->x_lang, "assembler", 9) == 0 ? "asm" :
		    strcmp(a->x_lang, "c++") == 0              ? "c++" :
		                                                 "c";
	for (size_t k = 0; a->src != NULL && k < sizeof cxx / sizeof cxx[0]; k++)
		if (str_ends_with(a->src, cxx[k]))
			return "c++";
	for (size_t k = 0; a->src != NULL && k < sizeof as / sizeof as[0]; k++)
		if (str_ends_with(a->src, as[k]))
			return "asm";
	if (a->src != NULL && str_ends_with(a->src, ".c"))
		return "c";
	return strstr(path_basename(compiler), "++") != NULL ? "c++" : "c";
}

void
cc_args_free(struct cc_args *a)
{
	free(a->dep_file);
	a->dep_file = NULL;
}
