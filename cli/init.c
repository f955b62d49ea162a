/* `kache init [--check | --undo]`: makes cargo use kache, by writing
 * build.rustc-wrapper = "kache" and, for build scripts' C and C++ compilers
 * (the cc crate reads CC and CXX), [env] CC = "kache cc", CXX = "kache c++"
 * into $CARGO_HOME/config.toml. The rest of the file stays byte for byte:
 * lines are inserted after an existing [build] or [env] header, or the table
 * is appended. The old file is kept beside it (config.toml.kache-backup) and
 * both are written by temp+rename. A wrapper, CC or CXX set to something else
 * is never overwritten: the user decides. --undo removes the lines as init
 * writes them (and a table header left empty by that). */
#include "cli/init.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/cargo_cfg.h"
#include "cli/commands.h"
#include "common/fs.h"
#include "common/util.h"

#define WRAPPER_LINE "rustc-wrapper = \"kache\"\n"
#define CC_LINE "CC = \"kache cc\"\n"
#define CXX_LINE "CXX = \"kache c++\"\n"

/* Text to insert at an offset of the old file. */
struct ins {
	size_t at;
	struct buf text;
};

static int init_check(const char *path, const struct cargo_cfg_scan *r);
static int init_write(const char *path, const struct buf *old);
static int init_save(const char *path, const struct buf *old, const struct buf *out);
static void table_ins(struct ins *in, size_t olen, const struct cargo_cfg_table *t,
    const char *name, const char *lines, int appended_before);
static void splice(const char *op, size_t olen, struct ins *v, size_t n, struct buf *out);
static int init_undo(const char *path, const struct buf *old, const struct cargo_cfg_scan *r);
static void drop_empty_table(const char *op, const struct cargo_cfg_table *t, char *gone);
static void note_cc(const char *path, const struct cargo_cfg_scan *r);
static void init_offer_unit(void);
static int init_apply(const char *home, const char *path, const struct buf *old,
    const struct cargo_cfg_scan *r);
static int env_wrapper_other(void);
static void init_follow_link(char **path);

/* A config.toml that is a symlink (a dotfiles repository) is read and written
 * where it points, so the link stays a link. */
static void
init_follow_link(char **path)
{
	struct stat st;
	char *real;

	if (lstat(*path, &st) == 0 && S_ISLNK(st.st_mode) && (real = realpath(*path, NULL))) {
		free(*path);
		*path = real;
	}
}

/* 1 (said on stderr) when RUSTC_WRAPPER is set to something other than kache:
 * it overrides the config file. */
static int
env_wrapper_other(void)
{
	const char *w = getenv("RUSTC_WRAPPER");

	if (w == NULL || w[0] == '\0' || cargo_cfg_is_kache(w))
		return 0;
	fprintf(stderr,
	    "kache init: warning: RUSTC_WRAPPER=%s is set in this environment and overrides "
	    "the config file; unset it (or set it to kache)\n",
	    w);
	return 1;
}

/* --check: 0 when cargo would use kache, 1 (said) when not. */
static int
init_check(const char *path, const struct cargo_cfg_scan *r)
{
	const char *w = getenv("RUSTC_WRAPPER");

	if (w != NULL && w[0] != '\0') {
		printf("RUSTC_WRAPPER=%s: %s\n", w,
		    cargo_cfg_is_kache(w) ? "kache is set up" : "not kache");
		return cargo_cfg_is_kache(w) ? 0 : 1;
	}
	if (r->found && cargo_cfg_is_kache(r->value)) {
		printf("%s: build.rustc-wrapper = \"%s\": kache is set up\n", path, r->value);
		return 0;
	}
	if (r->found)
		printf("%s: build.rustc-wrapper = \"%s\", not kache\n", path, r->value);
	else
		printf("%s: no build.rustc-wrapper; `kache init` sets it\n", path);
	return 1;
}

/* The insertion of lines into table t (after its header, or a new table at
 * the end; appended_before: another table is appended there first). op ends
 * with a newline (or is empty). */
static void
table_ins(struct ins *in, size_t olen, const struct cargo_cfg_table *t, const char *name,
    const char *lines, int appended_before)
{
	buf_init(&in->text);
	in->at = t->has ? t->end : olen;
	if (!t->has) {
		if (olen > 0 || appended_before)
			buf_addch(&in->text, '\n');
		buf_addstr(&in->text, name);
	}
	buf_addstr(&in->text, lines);
}

/* out = op with each insertion put at its offset (v in offset order). */
static void
splice(const char *op, size_t olen, struct ins *v, size_t n, struct buf *out)
{
	size_t pos = 0;

	for (size_t i = 0; i < n; i++) {
		buf_add(out, op + pos, v[i].at - pos);
		buf_add(out, v[i].text.p ? v[i].text.p : "", v[i].text.len);
		pos = v[i].at;
	}
	buf_add(out, op + pos, olen - pos);
}

/* Writes old (a final newline added) with kache's missing lines added: the wrapper line into
 * [build], CC and CXX into [env], each unless set already. Nothing to add: nothing written. 0 / 1.
 */
static int
init_write(const char *path, const struct buf *old)
{
	struct cargo_cfg_scan rs, *r = &rs;
	struct buf in, out;
	char cc[64];
	struct ins v[2];
	size_t n = 0;
	int rc = 0;

	buf_init(&in); /* the old text, ending with a newline */
	buf_add(&in, old->p ? old->p : "", old->len);
	if (in.len > 0 && in.p[in.len - 1] != '\n')
		buf_addch(&in, '\n');
	cargo_cfg_scan(in.p ? in.p : "", in.len, r);
	snprintf(cc, sizeof cc, "%s%s", r->found_cc ? "" : CC_LINE, r->found_cxx ? "" : CXX_LINE);
	if (!r->found)
		table_ins(&v[n++], in.len, &r->build, "[build]\n", WRAPPER_LINE, 0);
	if (cc[0] != '\0') {
		table_ins(&v[n], in.len, &r->env, "[env]\n", cc, !r->found && !r->build.has);
		n++;
	}
	/* in offset order; at the same offset (the end) an existing table's lines first */
	if (n == 2 && (v[1].at < v[0].at || (v[1].at == v[0].at && r->env.has))) {
		struct ins t = v[0];

		v[0] = v[1], v[1] = t;
	}
	buf_init(&out);
	splice(in.p ? in.p : "", in.len, v, n, &out);
	if (n > 0 && (rc = init_save(path, old, &out)) == 0)
		printf("kache init: wrote into %s:%s%s%s\n", path,
		    r->found ? "" : " build.rustc-wrapper = \"kache\"",
		    r->found_cc ? "" : " [env] CC = \"kache cc\"",
		    r->found_cxx ? "" : " [env] CXX = \"kache c++\"");
	for (size_t i = 0; i < n; i++)
		buf_free(&v[i].text);
	buf_free(&out), buf_free(&in);
	return rc;
}

/* Keeps old as the backup (when there was one), then writes out; both by
 * temp+rename. 0 / 1 (said). */
static int
init_save(const char *path, const struct buf *old, const struct buf *out)
{
	char *backup = xasprintf("%s.kache-backup", path);
	int rc = 0;

	if (old->len > 0 && fs_write_atomic(backup, old->p, old->len, 0644) < 0) {
		fprintf(stderr, "kache init: cannot write the backup %s: %s\n", backup,
		    strerror(errno));
		rc = 1;
	} else if (fs_write_atomic(path, out->p ? out->p : "", out->len, 0644) < 0) {
		fprintf(stderr, "kache init: cannot write %s: %s\n", path, strerror(errno));
		rc = 1;
	} else if (old->len > 0) {
		printf("kache init: the old file is kept as %s\n", backup);
	}
	free(backup);
	return rc;
}

/* Marks t's header for removal (with the blank line init put before it) when
 * nothing but kache's lines is in the table. */
static void
drop_empty_table(const char *op, const struct cargo_cfg_table *t, char *gone)
{
	size_t from = t->start;

	if (!t->has || t->other_lines > 0)
		return;
	if (from >= 2 && op[from - 1] == '\n' && op[from - 2] == '\n')
		from--;
	memset(gone + from, 1, t->end - from);
}

/* --undo: the file without the lines init writes. 0 / 1. */
static int
init_undo(const char *path, const struct buf *old, const struct cargo_cfg_scan *r)
{
	const char *op = old->p ? old->p : "";
	char *gone;
	struct buf out;
	int rc = 0;

	if (r->n_kache_lines == 0) {
		printf("kache init --undo: %s holds no line kache init writes; nothing to do\n",
		    path);
		return 0;
	}
	gone = xcalloc(old->len + 1, 1);
	for (size_t i = 0; i < r->n_kache_lines; i++)
		memset(gone + r->kache_line[i][0], 1, r->kache_line[i][1] - r->kache_line[i][0]);
	drop_empty_table(op, &r->build, gone);
	drop_empty_table(op, &r->env, gone);
	buf_init(&out);
	for (size_t i = 0; i < old->len; i++)
		if (!gone[i])
			buf_addch(&out, op[i]);
	if ((rc = init_save(path, old, &out)) == 0)
		printf("kache init --undo: removed kache's %zu line(s) from %s\n", r->n_kache_lines,
		    path);
	buf_free(&out);
	free(gone);
	return rc;
}

/* Says when CC or CXX is set to something that does not go through kache,
 * in the file (left as it is) or in the environment (which overrides [env]). */
static void
note_cc(const char *path, const struct cargo_cfg_scan *r)
{
	static const char *const names[] = { "CC", "CXX" };

	for (int i = 0; i < 2; i++) {
		const char *v = i ? r->cxx : r->cc, *e = getenv(names[i]);

		if ((i ? r->found_cxx : r->found_cc) && !cargo_cfg_cc_is_kache(v))
			fprintf(stderr,
			    "kache init: note: %s sets [env] %s = \"%s\"; not changing it, so "
			    "build "
			    "scripts' %s compiles do not go through kache. To route them: %s = "
			    "\"kache %s\"\n",
			    path, names[i], v, i ? "C++" : "C", names[i], v);
		if (e != NULL && e[0] != '\0' && !cargo_cfg_cc_is_kache(e))
			fprintf(stderr,
			    "kache init: warning: %s=%s is set in this environment and overrides "
			    "cargo's [env] %s; set it to \"kache %s\" (or unset it) to cache those "
			    "compiles\n",
			    names[i], e, names[i], e);
	}
}

/* The lines kache needs, unless the user's wrapper is another (then nothing
 * changes and exit 1, saying which line to remove). 0 / 1. */
static int
init_apply(const char *home, const char *path, const struct buf *old,
    const struct cargo_cfg_scan *r)
{
	int rc;

	env_wrapper_other();
	if (r->found && !cargo_cfg_is_kache(r->value)) {
		fprintf(stderr,
		    "kache init: %s already sets build.rustc-wrapper = \"%s\"; not changing it. "
		    "Remove that line (or set it to \"kache\") and run `kache init` again\n",
		    path, r->value);
		return 1;
	}
	note_cc(path, r);
	if (r->found && r->found_cc && r->found_cxx) {
		printf("kache init: %s already sets build.rustc-wrapper = \"%s\", CC and CXX; "
		       "nothing to do\n",
		    path, r->value);
		rc = 0;
	} else {
		rc = fs_mkdir_p(home, 0755) < 0 ? 1 : init_write(path, old);
	}
	if (rc == 0)
		init_offer_unit();
	return rc;
}

static void
init_offer_unit(void)
{
	printf("To keep the supervisor running across logins as a systemd user service:\n"
	       "    kache supervisor install\n"
	       "(otherwise the wrapper starts one when a remote is configured.)\n");
}

int
cmd_init(int argc, char **argv)
{
	struct cargo_cfg_scan r;
	struct buf old;
	char *home, *path;
	int check = argc == 2 && strcmp(argv[1], "--check") == 0, rc;
	int undo = argc == 2 && strcmp(argv[1], "--undo") == 0;

	if (argc > 2 || (argc == 2 && !check && !undo)) {
		fprintf(stderr, "usage: kache init [--check | --undo]\n");
		return EXIT_USAGE;
	}
	if ((home = cargo_cfg_home()) == NULL) {
		fprintf(stderr, "kache init: neither CARGO_HOME nor HOME is set\n");
		return 1;
	}
	path = cargo_cfg_file(home);
	init_follow_link(&path);
	buf_init(&old);
	if (fs_read_file(path, &old, (size_t)16 << 20) < 0 && errno != ENOENT) {
		fprintf(stderr, "kache init: cannot read %s: %s\n", path, strerror(errno));
		rc = 1;
		goto out;
	}
	cargo_cfg_scan(old.p ? old.p : "", old.len, &r);
	if (check || undo) {
		rc = check ? init_check(path, &r) : init_undo(path, &old, &r);
		goto out;
	}
	rc = init_apply(home, path, &old, &r);
out:
	buf_free(&old);
	free(path);
	free(home);
	return rc;
}
