/* A hit: find a manifest candidate whose inputs and env-deps match here and
 * now, put its outputs in place without starting rustc, and print what rustc
 * printed. Damaged manifests, entries and blobs are removed and journalled,
 * never served. */
#include <fcntl.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <errno.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "common/config.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/path.h"
#include "store/journal.h"
#include "wrapper/wrapper.h"

enum restore_how { RESTORE_AUTO, RESTORE_REFLINK, RESTORE_HARDLINK, RESTORE_COPY };

static int envs_match(struct wrapper *w, const struct store_candidate *c);
static int inputs_match(struct wrapper *w, const struct store_candidate *c);
static enum restore_how restore_mode(const struct wrapper *w);
static int final_artifact(const struct wrapper *w);
static void blob_mode_now(const char *blob, const struct stat *bst, const struct store_output *o);
static int clone_blob(const char *blob, const char *tmp, mode_t mode);
static int may_reflink(const char *dst);
static int same_inode(const char *path, const struct stat *st);
static int same_bytes(const char *path, const char *data, size_t n);
static int place_blob(struct wrapper *w, const char *blob, const struct stat *bst, const char *dst,
    const struct store_output *o);
static int restore_output(struct wrapper *w, const struct store_output *o, const char *out_dir);
static int restore_depinfo(struct wrapper *w, const struct store_entry *e, const char *out_dir);
static int restore_entry(struct wrapper *w, const struct store_entry *e);
static void json_escape(struct buf *b, const char *s);
static void add_notice(struct buf *b, const char *out_dir, const char *name, const char *emit);
static void replay(struct wrapper *w, const struct store_entry *e);
static int serve_candidate(struct wrapper *w, const struct store_candidate *c);

/* Every env-dep the candidate recorded has the same value here (after folding
 * roots; a secret compared by hash), and the unset ones are still unset. */
static int
envs_match(struct wrapper *w, const struct store_candidate *c)
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
		/* a traced variable's form is a hash; a secret's is alike either way */
		form = str_starts_with(c->envs[i].value, "blake2b:") ?
		    depinfo_env_form_traced(&w->roots, c->envs[i].name, now) :
		    depinfo_env_form(&w->roots, c->envs[i].name, now);
		same = strcmp(form, c->envs[i].value) == 0;
		free(form);
		if (!same) {
			log_debug("%s: env %s differs", w->args.crate_name, c->envs[i].name);
			return 0;
		}
	}
	return 1;
}

/* Every input the candidate recorded has the same content here and now (a
 * directory a proc macro listed, the same names; a path it did not find, still
 * absent: trace_input_hash). */
static int
inputs_match(struct wrapper *w, const struct store_candidate *c)
{
	struct buf p; /* one buffer for every path */
	int same = 1;

	buf_init(&p);
	for (size_t i = 0; i < c->n_inputs && same; i++) {
		unsigned char h[HASH_LEN];

		buf_reset(&p);
		roots_expand(&w->roots, c->inputs[i].path, strlen(c->inputs[i].path), &p);
		same = p.p != NULL && trace_input_hash(w, p.p, h, NULL, NULL) == 0 &&
		    memcmp(h, c->inputs[i].hash, HASH_LEN) == 0;
		if (!same)
			log_debug("%s: input %s differs", w->args.crate_name, c->inputs[i].path);
	}
	buf_free(&p);
	return same;
}

static enum restore_how
restore_mode(const struct wrapper *w)
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

/* A final artifact: what a user takes from target/ and may change in place
 * (GNU strip, patchelf, wasm-opt and ar write into a file that has several
 * hardlinks, to keep them): a bin, cdylib or staticlib of a compile that is
 * neither a test harness nor a build script. Linked to its blob, the change
 * would reach the store and every checkout linked to the same blob. */
static int
final_artifact(const struct wrapper *w)
{
	const struct strv *t = &w->args.crate_types;
	int final = 0;

	if (str_starts_with(w->args.crate_name ? w->args.crate_name : "", "build_script_"))
		return 0;
	for (size_t i = 0; i < t->n; i++) {
		if (strcmp(t->v[i], "test") == 0)
			return 0;
		final |= strcmp(t->v[i], "bin") == 0 || strcmp(t->v[i], "cdylib") == 0 ||
		    strcmp(t->v[i], "staticlib") == 0;
	}
	return final;
}

int
hit_may_hardlink(const struct wrapper *w)
{
	enum restore_how how = restore_mode(w);

	return how == RESTORE_HARDLINK || (how == RESTORE_AUTO && !final_artifact(w));
}

/* A reflink of blob at tmp, with mode less the umask (the kernel's, as it
 * creates tmp: store_blob_mode's, with no read of the umask on a reflinking
 * filesystem's every hit). -1 where the filesystem cannot. */
static int
clone_blob(const char *blob, const char *tmp, mode_t mode)
{
	int in = fs_open_regular(blob, O_RDONLY, 0), out, rc = -1;

	if (in < 0)
		return -1;
	out = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (out >= 0) {
		rc = ioctl(out, FICLONE, in) == 0 ? 0 : -1;
		if (close(out) < 0)
			rc = -1;
		if (rc < 0)
			unlink(tmp);
	}
	close(in);
	return rc;
}

/* 0 when dst's filesystem is one that never clones (ext2/3/4, tmpfs): there a
 * reflink attempt costs a temporary file made and removed per output, and
 * creating an inode is the dearest thing a hit does. Asked once per process
 * (a hit restores into one out-dir). */
static int
may_reflink(const char *dst)
{
	static int known = -1;
	struct statfs fs;
	char *dir;

	if (known >= 0)
		return known;
	dir = path_dirname(dst);
	known =
	    !(statfs(dir, &fs) == 0 && (fs.f_type == EXT4_SUPER_MAGIC || fs.f_type == TMPFS_MAGIC));
	free(dir);
	return known;
}

/* 1 when the file at path holds exactly these n bytes: a dep-info already
 * right is left alone (rewriting it is a new inode, and replacing a file by
 * rename makes ext4 flush the new one: the dearest part of such a hit). -1
 * when there is no file at path (after `cargo clean`), 0 otherwise. */
static int
same_bytes(const char *path, const char *data, size_t n)
{
	struct buf have;
	int same;

	buf_init(&have);
	if (fs_read_file(path, &have, n + 1) < 0)
		same = errno == ENOENT ? -1 : 0;
	else
		same = have.len == n && (n == 0 || memcmp(have.p, data, n) == 0);
	buf_free(&have);
	return same;
}

/* 1 when path is the file st describes (a hardlink of it). */
static int
same_inode(const char *path, const struct stat *st)
{
	struct stat here;

	return lstat(path, &here) == 0 && here.st_dev == st->st_dev && here.st_ino == st->st_ino;
}

/* A blob an older kache made is given, before it is linked, the mode a
 * blob has now (store_blob_mode): its owner's write bit (read-only before
 * 2026-12-03: rustc refuses to replace an output it cannot write, which
 * failed a build with the wrapper off over this target), and the read and
 * run bits the umask gives group and others (masked to a private store's
 * 0700 before 2026-12-04: a binary in target/ no other user could run). A
 * blob with any group or other bit is one of now's: no umask read. */
static void
blob_mode_now(const char *blob, const struct stat *bst, const struct store_output *o)
{
	mode_t have = bst->st_mode & 07777, want = have | S_IWUSR;

	if ((have & 077) == 0)
		want |= store_blob_mode((o->mode & 0111) != 0) & 055;
	if (want != have)
		(void)chmod(blob, want);
}

/* Puts the blob at dst: a reflink where the filesystem can, else a hardlink
 * (outputs are unlinked before any compile through kache writes them, and
 * rustc and the linker replace an output rather than write into it, so
 * nothing writes through it into the store; not a final artifact, which a
 * user may change in place: final_artifact; not a blob another checkout
 * links: the hit sets the output's mtime, and an inode has one, so the other
 * checkout's outputs would turn newer than what cargo made there, and its
 * next build dirty), else a copy; each with the mode
 * rustc would give the output (blob_mode_now). bst: the blob's stat as the
 * hash check took it (no second lstat). */
static int
place_blob(struct wrapper *w, const char *blob, const struct stat *bst, const char *dst,
    const struct store_output *o)
{
	enum restore_how how = restore_mode(w);
	char *tmp = fs_tmp_beside(dst);
	int placed = 0;

	if ((how == RESTORE_REFLINK || (how == RESTORE_AUTO && may_reflink(dst))) &&
	    clone_blob(blob, tmp, o->mode) == 0)
		placed = 1;
	if (!placed && hit_may_hardlink(w) && S_ISREG(bst->st_mode) &&
	    ((bst->st_mode & 0111) != 0) == ((o->mode & 0111) != 0)) {
		if (bst->st_nlink > 1) {
			/* linked outside the store already: this output itself
			 * (nothing to do), or another checkout's, whose mtime the
			 * hit's would move (a copy of its own, below) */
			if (same_inode(dst, bst)) {
				free(tmp);
				return 0;
			}
		} else {
			if ((bst->st_mode & S_IWUSR) == 0 || (bst->st_mode & 077) == 0)
				blob_mode_now(blob, bst, o);
			/* straight to dst when nothing is there (after cargo clean:
			 * one call, atomic); else beside it, then renamed over it */
			if (link(blob, dst) == 0) {
				free(tmp);
				return 0;
			}
			placed = link(blob, tmp) == 0;
		}
	}
	if (placed) {
		/* rename(2) of a hardlink onto the same inode is a no-op: unlink tmp after */
		placed = rename(tmp, dst) == 0;
		unlink(tmp);
		free(tmp);
		return placed ? 0 : -1;
	}
	free(tmp);
	return fs_copy_atomic(blob, dst, store_blob_mode((o->mode & 0111) != 0));
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
		ino_t blob_ino = st.st_ino;

		rc = place_blob(w, blob, &st, dst, o);
		if (rc == 0 && (utimensat(AT_FDCWD, dst, NULL, 0) < 0 || stat(dst, &st) < 0))
			rc = -1;
		/* the blob's inode (its mtime just moved), for the next restore and
		 * for a dependent hashing it as an --extern; a copy's for the
		 * latter only: a final artifact is nobody's --extern, and a memo
		 * of each build's new copy of it would only pile up */
		if (rc == 0 && (st.st_ino == blob_ino || !final_artifact(w)))
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

/* Writes the entry's dep-info into out_dir with this checkout's roots and this
 * process's secret values put back. -2 when its name is unsafe (a damaged
 * entry), -1 when it cannot be written. */
static int
restore_depinfo(struct wrapper *w, const struct store_entry *e, const char *out_dir)
{
	struct buf d, s;
	char *p;
	int rc, have;

	if (strchr(e->depinfo_name, '/') != NULL)
		return -2;
	buf_init(&d);
	roots_expand(&w->roots, e->depinfo.p ? e->depinfo.p : "", e->depinfo.len, &d);
	buf_init(&s);
	depinfo_secrets(d.p ? d.p : "", d.len, 1, &s);
	p = path_join(out_dir, e->depinfo_name);
	/* absent: made in place (cargo reads it only once this process has
	 * exited well); there: replaced whole, by rename */
	have = same_bytes(p, s.p ? s.p : "", s.len);
	rc = 0;
	if (have == -1 && (rc = fs_write_new(p, s.p ? s.p : "", s.len, 0644)) < 0 &&
	    errno == EEXIST)
		have = 0; /* made by another process meanwhile */
	if (have == 0)
		rc = fs_write_atomic(p, s.p ? s.p : "", s.len, 0644);
	free(p);
	buf_free(&d);
	buf_free(&s);
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
	if (rc == 0 && e->depinfo_name != NULL)
		rc = restore_depinfo(w, e, out_dir);
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

	buf_addstr(b, WRAPPER_ARTIFACT_PREFIX ",\"artifact\":\"");
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

/* Serves one matching candidate: reads its entry, restores and replays it.
 * A damaged entry or blob is removed (and journalled) so that the compile that
 * follows stores it afresh. 1 when served, 0 when the next one should be tried. */
static int
serve_candidate(struct wrapper *w, const struct store_candidate *c)
{
	struct store_entry e;
	enum store_get g;
	int rc;

	g = store_entry_read(w->store, c->result, &e);
	if (g == STORE_CORRUPT) {
		store_entry_remove(w->store, c->result);
		wrapper_journal(w, JOURNAL_CORRUPT, "entry", c->result, 0, 0);
	}
	if (g != STORE_FOUND)
		return 0;
	rc = restore_entry(w, &e);
	if (rc == 0) {
		uint64_t bytes = 0;

		for (size_t k = 0; k < e.n_outputs; k++)
			bytes += e.outputs[k].size;
		memo_save(w);
		replay(w, &e);
		w->hit_status = e.status;
		w->local_only = 0;
		for (size_t k = 0; k < c->n_envs; k++)
			w->local_only |= config_is_secret_env(c->envs[k].name);
		wrapper_journal(w, w->from_remote ? JOURNAL_REMOTE_HIT : JOURNAL_HIT, NULL,
		    c->result, e.compile_ms, bytes);
	} else if (rc == -2) {
		store_entry_remove(w->store, c->result);
		wrapper_journal(w, JOURNAL_CORRUPT, "blob", c->result, 0, 0);
	}
	store_entry_clear(&e);
	return rc == 0;
}

int
hit_try(struct wrapper *w)
{
	struct store_manifest m;
	enum store_get g;
	int served = 0;

	g = store_manifest_read(w->store, w->inv, &m);
	if (g == STORE_CORRUPT) {
		/* removed, so that the compile's add starts afresh */
		store_manifest_remove(w->store, w->inv);
		wrapper_journal(w, JOURNAL_CORRUPT, "manifest", NULL, 0, 0);
	}
	if (g != STORE_FOUND) {
		log_debug("%s: no manifest", w->args.crate_name);
		return 0;
	}
	for (size_t i = 0; i < m.n && !served; i++)
		if (envs_match(w, &m.c[i]) && inputs_match(w, &m.c[i]))
			served = serve_candidate(w, &m.c[i]);
	store_manifest_clear(&m);
	return served;
}
