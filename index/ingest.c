/* Folding the wrappers' event journal into the index.
 *
 * How far each journal file has been read is kept per inode ('o' keys), in the
 * same batch as the changes those records made: a crash never applies a record
 * twice or loses one. Rotation is a rename, which keeps the inode, so the offset
 * follows the file. A rotated file (events.<n>) is read again after a grace
 * period, for wrappers that opened it before the rename, then renamed to
 * events.<n>.done, its offset forgotten, and unlinked; the inode cannot be reused
 * while the .done file exists, so a stale offset never applies to a new file. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/fs.h"
#include "common/log.h"
#include "index/internal.h"
#include "store/journal.h"

#define CHUNK (1u << 20)

struct apply_ctx {
	struct ix_txn *t;
	long applied;
};

static void apply_event(const struct journal_event *ev, void *arg);
static int apply_hit(struct ix_txn *t, const struct journal_event *ev);
static void touch_entry(struct ix_txn *t, const struct journal_event *ev);
static int take_prefetched(struct ix_txn *t, const unsigned char key[HASH_LEN]);
static void count_source(struct index *ix, const char *src);
static void note_imported(struct ix_txn *t, const struct journal_event *ev);
static void note_stored(struct ix_txn *t, const struct journal_event *ev);
static void note_removed(struct ix_txn *t, const unsigned char key[HASH_LEN]);
static void note_session(struct index *ix, const struct journal_event *ev);
static int crate_ok(const char *c);
static void count_lang(struct index *ix, const struct journal_event *ev);
static int ingest_chunk(struct index *ix, const unsigned char k[9], struct buf *b, uint64_t *off,
    long *applied);
static int ingest_file(struct index *ix, const char *path, long *applied, uint64_t *size);
static int retire_rotated(struct index *ix, const char *path);
static int rotate_live(struct index *ix, const char *jdir);
static void offset_key(unsigned char k[9], uint64_t ino);

static void
offset_key(unsigned char k[9], uint64_t ino)
{
	k[0] = 'o';
	put_be64(k + 1, ino);
}

/* A hit or remote hit: the entry was used now. */
static void
touch_entry(struct ix_txn *t, const struct journal_event *ev)
{
	struct ix_entry e;
	int64_t old;

	if (ix_entry_get(t->ix, t, ev->res, &e) != 1) {
		/* Not indexed yet (imported by another process): read its file. */
		if (ix_entry_add_from_store(t, ev->res, ev->ts_ms, ev->has_inv ? ev->inv : NULL) !=
		        1 ||
		    ix_entry_get(t->ix, t, ev->res, &e) != 1)
			return;
	}
	old = e.info.last_use_ms;
	if (ev->ts_ms > e.info.last_use_ms)
		e.info.last_use_ms = ev->ts_ms;
	e.info.hits++;
	ix_entry_put(t, &e, old);
	ix_entry_clear(&e);
}

/* 1 when key carries the mark of an entry prefetch imported and nothing used
 * yet; the mark goes either way (only the first use is prefetch's). */
static int
take_prefetched(struct ix_txn *t, const unsigned char key[HASH_LEN])
{
	unsigned char k[1 + HASH_LEN];
	struct buf v;
	int found;

	k[0] = 'p';
	memcpy(k + 1, key, HASH_LEN);
	buf_init(&v);
	found = ix_get(t->ix, t, k, sizeof k, &v) == 1;
	buf_free(&v);
	if (found)
		ix_del(t, k, sizeof k);
	return found;
}

/* A hit (local or fetched on a miss): counted; a local one on an entry
 * prefetch imported, its first use, is counted as prefetched too. 1 then. */
static int
apply_hit(struct ix_txn *t, const struct journal_event *ev)
{
	struct index *ix = t->ix;
	int prefetched = 0;

	ix_counter_add(ix, ev->type == JOURNAL_HIT ? "hits" : "remote_hits", 1);
	ix_counter_add(ix, "bytes_restored", ev->bytes);
	ix_counter_add(ix, "ms_saved", ev->ms);
	if (!ev->has_res)
		return 0;
	prefetched = take_prefetched(t, ev->res) && ev->type == JOURNAL_HIT;
	if (prefetched)
		ix_counter_add(ix, "prefetched_hits", 1);
	touch_entry(t, ev);
	return prefetched;
}

/* A prefetch import by the plan's source: "prefetch_imported/<src>" for
 * the known sources only (a stranger's reason makes no counter). */
static void
count_source(struct index *ix, const char *src)
{
	static const char *const known[] = JOURNAL_IMPORT_SOURCES;
	char name[64];

	for (size_t i = 0; i < JOURNAL_IMPORT_NSOURCES; i++)
		if (strcmp(src, known[i]) == 0) {
			snprintf(name, sizeof name, "prefetch_imported/%s", known[i]);
			ix_counter_add(ix, name, 1);
		}
}

/* A pack imported (the record precedes any hit on the entry, store/pack.c):
 * counted by reason; an entry prefetch brought in that nothing used here yet
 * gets the mark take_prefetched looks for. Indexed already with no hit is
 * fine: a gc's scan or a rebuild may have found the file first. */
static void
note_imported(struct ix_txn *t, const struct journal_event *ev)
{
	unsigned char k[1 + HASH_LEN];
	struct ix_entry e;
	size_t pn = strlen(JOURNAL_IMPORT_PREFETCH);
	int prefetch = journal_import_is_prefetch(ev->reason), known, used = 0;

	ix_counter_add(t->ix, prefetch ? "prefetch_imported" : "fetch_imported", 1);
	if (prefetch && ev->reason[pn] == '/')
		count_source(t->ix, ev->reason + pn + 1);
	if (!ev->has_res)
		return;
	if ((known = ix_entry_get(t->ix, t, ev->res, &e) == 1)) {
		used = e.info.hits > 0;
		ix_entry_clear(&e);
	}
	if (!known &&
	    ix_entry_add_from_store(t, ev->res, ev->ts_ms, ev->has_inv ? ev->inv : NULL) != 1)
		return; /* gone already */
	if (prefetch && !used) {
		k[0] = 'p';
		memcpy(k + 1, ev->res, HASH_LEN);
		ix_put(t, k, sizeof k, "p", 1);
	}
}

/* A miss that stored its result: index the entry, or, when it is known already
 * (stored twice, or found by a scan first), refresh its last use and learn its
 * manifest. */
static void
note_stored(struct ix_txn *t, const struct journal_event *ev)
{
	struct ix_entry e;
	int64_t old;

	take_prefetched(t, ev->res); /* compiled here: not prefetch's to serve */
	if (ix_entry_get(t->ix, t, ev->res, &e) != 1) {
		ix_entry_add_from_store(t, ev->res, ev->ts_ms, ev->has_inv ? ev->inv : NULL);
		return;
	}
	old = e.info.last_use_ms;
	if (!e.has_inv && ev->has_inv) {
		e.has_inv = 1;
		memcpy(e.inv, ev->inv, HASH_LEN);
	}
	if (ev->ts_ms > old)
		e.info.last_use_ms = ev->ts_ms;
	ix_entry_put(t, &e, old);
	ix_entry_clear(&e);
}

/* A wrapper found an entry damaged and removed it: forget it if it is gone. */
static void
note_removed(struct ix_txn *t, const unsigned char key[HASH_LEN])
{
	char hex[HASH_HEX_LEN + 1], *p;
	struct ix_entry e;
	struct stat st;

	hash_to_hex(key, hex);
	p = store_path(t->ix->store, "entries", hex);
	if (stat(p, &st) < 0 && errno == ENOENT && ix_entry_get(t->ix, t, key, &e) == 1) {
		ix_entry_drop(t, &e);
		ix_entry_clear(&e);
	}
	free(p);
}

/* A result a build session used (a hit, a remote hit, a stored compile; not
 * one kept on this machine, which no other runner can fetch):
 * "crate result bytes[ version]" appended to run/sessions/<ws>.used, which a session manifest
 * is made of (remote/session.h). Outside the batch: a record applied again
 * after a failed commit only repeats a line, which the reader drops. */
/* A crate name as packs take it: [A-Za-z0-9_-]{1,64} (store/pack.h). */
static int
crate_ok(const char *c)
{
	size_t n = strlen(c);

	return n > 0 && n <= 64 &&
	    strspn(c, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") == n;
}

static void
note_session(struct index *ix, const struct journal_event *ev)
{
	char hex[HASH_HEX_LEN + 1], line[HASH_HEX_LEN + 240], *path;
	int fd, n;

	if (ev->ws[0] == '\0' || !ev->has_res || ev->local_only || !crate_ok(ev->crate) ||
	    (ev->type != JOURNAL_HIT && ev->type != JOURNAL_REMOTE_HIT && ev->type != JOURNAL_MISS))
		return;
	hash_to_hex(ev->res, hex);
	n = snprintf(line, sizeof line, "%s %s %llu%s%s\n", ev->crate, hex,
	    (unsigned long long)ev->bytes, ev->version[0] ? " " : "", ev->version);
	path = xasprintf("%s/%s/%s.used", ix->dir, JOURNAL_SESSIONS_DIR, ev->ws);
	fd = fs_open_regular(path, O_WRONLY | O_APPEND | O_CREAT, 0600);
	if (fd >= 0) {
		if (write(fd, line, (size_t)n) != n)
			log_warn("index: append to %s", path);
		close(fd);
	}
	free(path);
}

/* lang.<language>.<hits|misses|passes|errors>: the compiles by compiler
 * language (rust, c, c++, asm), for stats, report and the monitor. */
static void
count_lang(struct index *ix, const struct journal_event *ev)
{
	const char *what = ev->type == JOURNAL_HIT || ev->type == JOURNAL_REMOTE_HIT ? "hits" :
	    ev->type == JOURNAL_MISS                                                 ? "misses" :
	    ev->type == JOURNAL_PASS                                                 ? "passes" :
	    ev->type == JOURNAL_ERROR                                                ? "errors" :
	                                                                               NULL;
	char *name;

	if (what == NULL)
		return;
	name = xasprintf("lang.%s.%s", journal_lang(ev), what);
	ix_counter_add(ix, name, 1);
	free(name);
}

static void
apply_event(const struct journal_event *ev, void *arg)
{
	struct apply_ctx *c = arg;
	struct index *ix = c->t->ix;
	int prefetched = 0;
	char *name;

	c->applied++;
	ix_counter_add(ix, "kache_us", ev->us);
	note_session(ix, ev);
	count_lang(ix, ev);
	switch (ev->type) {
	case JOURNAL_HIT:
	case JOURNAL_REMOTE_HIT: prefetched = apply_hit(c->t, ev); break;
	case JOURNAL_MISS:
		ix_counter_add(ix, "misses", 1);
		ix_counter_add(ix, "compile_ms", ev->ms);
		if (ev->has_res)
			note_stored(c->t, ev);
		if (ev->has_res && ev->local_only)
			ix_counter_add(ix, "kept_local", 1);
		break;
	case JOURNAL_PASS:
	case JOURNAL_ERROR:
		ix_counter_add(ix, ev->type == JOURNAL_PASS ? "passes" : "errors", 1);
		name = xasprintf("%s.%s", ev->type == JOURNAL_PASS ? "pass" : "error",
		    ev->reason[0] ? ev->reason : "unknown");
		ix_counter_add(ix, name, 1);
		free(name);
		break;
	case JOURNAL_REJECTED:
		ix_counter_add(ix, "rejected", 1);
		name = xasprintf("rejected.%s", ev->reason[0] ? ev->reason : "unknown");
		ix_counter_add(ix, name, 1);
		free(name);
		break;
	case JOURNAL_CORRUPT:
		ix_counter_add(ix, "corrupt", 1);
		if (ev->has_res)
			note_removed(c->t, ev->res);
		break;
	case JOURNAL_IMPORT: note_imported(c->t, ev); break;
	}
	if (ix->on_record)
		ix->on_record((int)ev->type, ev->has_res ? ev->res : NULL, prefetched,
		    ix->on_record_arg);
}

/* Applies the whole records in b and the new offset in one batch. 0, -1, or 1
 * when b holds no whole record (a torn tail: the rest is on its way). */
static int
ingest_chunk(struct index *ix, const unsigned char k[9], struct buf *b, uint64_t *off,
    long *applied)
{
	struct ix_txn t;
	struct apply_ctx c;
	unsigned char v[8];
	size_t used;

	ix_txn_begin(&t, ix);
	c.t = &t;
	c.applied = 0;
	used = journal_parse(b->p, b->len, apply_event, &c);
	if (used == 0) {
		ix_txn_abort(&t);
		return 1;
	}
	put_be64(v, *off + used);
	ix_put(&t, k, 9, v, sizeof v);
	if (ix_txn_commit(&t) < 0)
		return -1;
	*off += used;
	*applied += c.applied;
	return 0;
}

/* Applies the complete records of path past its stored offset, one batch per
 * chunk. Sets *size to the file's size. 0, -1, or 1 when the file is absent. */
static int
ingest_file(struct index *ix, const char *path, long *applied, uint64_t *size)
{
	unsigned char k[9];
	struct buf b, ov;
	struct stat st;
	uint64_t off = 0;
	int fd, rc = 0;

	if ((fd = fs_open_regular(path, O_RDONLY, 0)) < 0)
		return errno == ENOENT ? 1 : -1;
	if (fstat(fd, &st) < 0) {
		close(fd);
		return -1;
	}
	*size = (uint64_t)st.st_size;
	offset_key(k, (uint64_t)st.st_ino);
	buf_init(&ov);
	if (ix_get(ix, NULL, k, sizeof k, &ov) == 1 && ov.len == 8)
		off = get_be64((const unsigned char *)ov.p);
	buf_free(&ov);
	if (off > *size) {
		log_warnx("index: %s is shorter than what was read of it; rereading", path);
		off = 0;
	}
	buf_init(&b);
	while (rc == 0 && off < *size) {
		size_t want = *size - off > CHUNK ? CHUNK : (size_t)(*size - off);
		ssize_t n;

		buf_reset(&b);
		buf_grow(&b, want);
		if ((n = pread(fd, b.p, want, (off_t)off)) <= 0)
			break;
		b.len = (size_t)n;
		rc = ingest_chunk(ix, k, &b, &off, applied);
	}
	if (rc == 1)
		rc = 0; /* a torn tail waits for the next call */
	buf_free(&b);
	close(fd);
	return rc;
}

/* Finishes a rotated journal file: forgets its offset, then unlinks it. */
static int
retire_rotated(struct index *ix, const char *path)
{
	char *done = str_ends_with(path, ".done") ? xstrdup(path) : xasprintf("%s.done", path);
	unsigned char k[9];
	struct stat st;
	struct ix_txn t;
	int rc = 0;

	if (strcmp(done, path) != 0 && rename(path, done) < 0) {
		log_warn("index: rename %s", path);
		free(done);
		return -1;
	}
	if (stat(done, &st) == 0) {
		offset_key(k, (uint64_t)st.st_ino);
		ix_txn_begin(&t, ix);
		ix_del(&t, k, sizeof k);
		rc = ix_txn_commit(&t);
	}
	if (rc == 0 && unlink(done) < 0 && errno != ENOENT)
		rc = -1;
	free(done);
	return rc;
}

/* Renames the live journal to events.<n>, n one past the highest in use. */
static int
rotate_live(struct index *ix, const char *jdir)
{
	DIR *d = opendir(jdir);
	struct dirent *de;
	unsigned long n = 0;
	char *from, *to;
	int rc;

	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL)
		if (strncmp(de->d_name, "events.", 7) == 0) {
			unsigned long m = strtoul(de->d_name + 7, NULL, 10);

			if (m > n)
				n = m;
		}
	closedir(d);
	from = xasprintf("%s/events", jdir);
	to = xasprintf("%s/events.%lu", jdir, n + 1);
	rc = rename(from, to);
	if (rc < 0)
		log_warn("index: rotate %s", from);
	else
		log_info("index: rotated the journal to %s", to);
	free(from);
	free(to);
	return rc;
}

long
index_ingest(struct index *ix)
{
	char *jdir = xasprintf("%s/journal", ix->dir), *live;
	struct strv rotated;
	DIR *d;
	struct dirent *de;
	long applied = 0;
	uint64_t size = 0;
	int rc = 0;

	if (ix->nospace && ix_space_retry(ix) < 0) {
		free(jdir);
		errno = ENOSPC;
		return -1; /* the records wait in the journal until there is room */
	}
	strv_init(&rotated);
	if ((d = opendir(jdir)) != NULL) {
		while ((de = readdir(d)) != NULL)
			if (strncmp(de->d_name, "events.", 7) == 0)
				strv_push_owned(&rotated, xasprintf("%s/%s", jdir, de->d_name));
		closedir(d);
	}
	strv_sort(&rotated);
	for (size_t i = 0; rc >= 0 && i < rotated.n; i++) {
		const char *p = rotated.v[i];
		struct stat st;

		if (str_ends_with(p, ".done")) {
			rc = retire_rotated(ix, p);
			continue;
		}
		if (stat(p, &st) < 0)
			continue;
		/* Judge the age (the rename set ctime) before the last read: a file
		 * past its grace then gets no append after that read. */
		int old = clock_wall_ms() - clock_ts_ms(&st.st_ctim) >= ix->grace_ms;

		rc = ingest_file(ix, p, &applied, &size);
		if (rc == 0 && old)
			rc = retire_rotated(ix, p);
	}
	live = xasprintf("%s/events", jdir);
	size = 0;
	if (rc >= 0)
		rc = ingest_file(ix, live, &applied, &size);
	if (rc == 0 && size > ix->rotate_size)
		rotate_live(ix, jdir);
	free(live);
	free(jdir);
	strv_free(&rotated);
	return rc < 0 ? -1 : applied;
}
