/* C and C++ compiles (gcc, clang) through kache, ccache's direct mode with
 * the Rust side's roots: see docs/design.md "C and C++ compiles". Apart from
 * the Rust path: main.c dispatches here once, on the compiler's name. */
#ifndef KACHE_WRAPPER_CC_H
#define KACHE_WRAPPER_CC_H

/* ---- cc_args.c: what a C compiler command line means for caching ---- */

struct cc_args {
	int argc;
	char **argv;             /* the arguments after the compiler, as given */
	const char *src;         /* the one source file */
	const char *obj;         /* the -o value */
	char *dep_file;          /* the user's own dep file (-MD), NULL when none */
	const char *pass_reason; /* non-NULL: do not cache, and why */
	const char *x_lang;      /* the -x value, NULL when none */
};

/* 1 when name's basename is a C or C++ compiler kache knows: cc, c++, gcc,
 * g++, clang, clang++, with a version suffix (gcc-12, clang-14) or a target
 * prefix (x86_64-linux-gnu-gcc). */
int cc_is_compiler(const char *name);
/* Parses argv (after the compiler). Never fails: what it cannot model safely
 * gets a pass_reason. */
void cc_args_parse(struct cc_args *a, int argc, char **argv);
void cc_args_free(struct cc_args *a);
/* The compile's language for stats: "c", "c++" or "asm", from -x, else the
 * source's extension, else the compiler's name (c++, g++, clang++: "c++"). */
const char *cc_args_lang(const struct cc_args *a, const char *compiler);

/* ---- cc.c ---- */

/* Serves `kache <cc> <args>` (argv[0] is the compiler); never returns when
 * the real compiler is run untouched. Returns the exit status. */
int cc_main(int argc, char **argv);

#endif
