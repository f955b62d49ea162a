/* Bundle parts: their format, the session saver's writer and the prefetch's
 * reader (remote/bundle.h). */
#include "remote/bundle.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/path.h"
#include "remote/layout.h"
#include "remote/transport.h"
#include "store/pack.h"

/* A part's header of n packs at most: its magic, "packs <n>", n lines (a
 * crate, a key, a size of up to 7 digits) and "end". */
#define PART_HEAD(n) (64 + (size_t)(n) * (64 + 1 + HASH_HEX_LEN + 1 + 7 + 1))

/* A part being put together: its packs' documents, one after the other. */
struct part {
	struct buf body;
	size_t *keys;  /* the session's keys it holds */
	size_t *lens;  /* their documents' sizes */
	size_t packed; /* their packs' sizes, summed: a bound on the frame's */
	size_t n;
};

static int parse_line(const char *line, size_t n, size_t max, struct bundle_pack *p);
static int parse_count(const char *line, size_t len, size_t *count);
static int place_packs(struct bundle_index *ix, size_t n, char *why, size_t whylen);
static int add_pack(struct remote *r, struct remote_session *s, struct part *pt, size_t key,
    const char *pack, size_t len, int *written);
static enum remote_result read_whole(struct remote *r, const char *tmpdir, const char *name,
    char *buf, size_t cap, size_t *len, int *vouched);
static int put_part(struct remote *r, struct remote_session *s, struct part *pt);
static enum remote_result read_part(struct remote *r, const char *tmpdir, const char *name,
    char **buf, size_t *n, int *vouched, int *kept);
struct held;
static void import_one(struct held *h, size_t j, const char *d);
static void docs_ready(void *arg, const char *docs, size_t avail);
static enum remote_result import_held(struct held *h, const char *d, size_t n, const char *name);

char *
bundle_name(const char *id)
{
	return xasprintf("%s%s", BUNDLE_PREFIX, id);
}

int
bundle_part_worth(size_t planned, size_t held)
{
	return planned * 2 >= held;
}

/* "<crate> <64 hex> <bytes>", every field checked, bytes 1..max. */
static int
parse_line(const char *line, size_t n, size_t max, struct bundle_pack *p)
{
	char tmp[64 + HASH_HEX_LEN + 24], crate[65], res[HASH_HEX_LEN + 1], num[21], *end;
	unsigned long long v;
	int used = 0;

	if (n >= sizeof tmp || memchr(line, '\0', n) != NULL)
		return -1;
	memcpy(tmp, line, n);
	tmp[n] = '\0';
	/* scanf's space would take any run of white space: one space it is */
	if (strstr(tmp, "  ") != NULL || strcspn(tmp, "\t\n\v\f\r") != n)
		return -1;
	if (sscanf(tmp, "%64[A-Za-z0-9_-] %64[0-9a-f] %20[0-9]%n", crate, res, num, &used) != 3 ||
	    (size_t)used != n || !pack_crate_name_ok(crate) || strlen(res) != HASH_HEX_LEN ||
	    !hash_hex_valid(res) || (num[0] == '0' && num[1] != '\0'))
		return -1;
	errno = 0;
	v = strtoull(num, &end, 10);
	if (errno != 0 || *end != '\0' || v == 0 || v > max)
		return -1;
	snprintf(p->crate, sizeof p->crate, "%s", crate);
	memcpy(p->res, res, sizeof p->res);
	p->len = (size_t)v;
	return 0;
}

/* Where each pack lies: version 1, one after the other from ix->body_off to
 * the object's end n; version 2, within the documents, which must sum to at
 * most PACK_DOCS_MAX, with a frame after "end". */
static int
place_packs(struct bundle_index *ix, size_t n, char *why, size_t whylen)
{
	size_t off = ix->version == 1 ? ix->body_off : 0;
	size_t end = ix->version == 1 ? n : PACK_DOCS_MAX;

	for (size_t i = 0; i < ix->n; i++) {
		if (ix->p[i].len > end - off) {
			snprintf(why, whylen, "its packs' sizes pass its end");
			return -1;
		}
		ix->p[i].off = off;
		off += ix->p[i].len;
	}
	if (ix->version == 1 && off != n) {
		snprintf(why, whylen, "%zu bytes follow its last pack", n - off);
		return -1;
	}
	if (ix->version == 2 && ix->body_off == n) {
		snprintf(why, whylen, "no frame follows its pack lines");
		return -1;
	}
	ix->docs_len = ix->version == 2 ? off : 0;
	return 0;
}

/* "packs <n>", n 1..BUNDLE_PACKS_MAX; -1 otherwise. */
static int
parse_count(const char *line, size_t len, size_t *count)
{
	char num[8];

	if (len < 7 || len > 6 + sizeof num - 1 || memcmp(line, "packs ", 6) != 0)
		return -1;
	memcpy(num, line + 6, len - 6);
	num[len - 6] = '\0';
	if (strspn(num, "0123456789") != len - 6 || num[0] == '0' ||
	    (*count = strtoul(num, NULL, 10)) > BUNDLE_PACKS_MAX)
		return -1;
	return 0;
}

int
bundle_parse(const char *d, size_t n, struct bundle_index *ix, char *why, size_t whylen)
{
	size_t magic = strlen(BUNDLE_MAGIC), len, count;
	const char *p = d + magic, *end = d + n, *line;

	memset(ix, 0, sizeof *ix);
	if (n > BUNDLE_PART_MAX || n < magic ||
	    (memcmp(d, BUNDLE_MAGIC, magic) != 0 && memcmp(d, BUNDLE_MAGIC_V1, magic) != 0)) {
		snprintf(why, whylen, "not a kache-bundle 1 or 2 object of at most %u MiB",
		    BUNDLE_PART_MAX >> 20);
		return -1;
	}
	if (str_next_line(&p, end, &line, &len) < 0 || parse_count(line, len, &count) < 0) {
		snprintf(why, whylen, "its second line is not \"packs <n>\" with n 1..%d",
		    BUNDLE_PACKS_MAX);
		return -1;
	}
	ix->version = memcmp(d, BUNDLE_MAGIC, magic) == 0 ? 2 : 1;
	ix->p = xcalloc(count, sizeof *ix->p);
	for (ix->n = 0; ix->n < count; ix->n++) {
		if (str_next_line(&p, end, &line, &len) < 0 ||
		    parse_line(line, len, ix->version == 2 ? PACK_DOCS_MAX : BUNDLE_PART_MAX,
		        &ix->p[ix->n]) < 0) {
			snprintf(why, whylen, "line %zu is not a pack line", ix->n + 3);
			bundle_index_free(ix);
			return -1;
		}
	}
	if (str_next_line(&p, end, &line, &len) < 0 || len != 3 || memcmp(line, "end", 3) != 0) {
		snprintf(why, whylen, "its %zu pack lines are not followed by \"end\"", count);
		bundle_index_free(ix);
		return -1;
	}
	ix->body_off = (size_t)(p - d);
	if (place_packs(ix, n, why, whylen) < 0) {
		bundle_index_free(ix);
		return -1;
	}
	return 0;
}

void
bundle_index_free(struct bundle_index *ix)
{
	free(ix->p);
	memset(ix, 0, sizeof *ix);
}

/* Object name whole into buf (at most cap bytes), read into memory when the
 * transport can, else opened and read: REMOTE_OK with *len (past cap when it
 * is larger: nothing to use then) and *vouched as the transport says;
 * REMOTE_MISS absent or refused; REMOTE_FAILED. */
static enum remote_result
read_whole(struct remote *r, const char *tmpdir, const char *name, char *buf, size_t cap,
    size_t *len, int *vouched)
{
	enum remote_result rr;
	struct buf b;
	int fd;

	*vouched = 0;
	if (r->t->read != NULL)
		return r->t->read(r, name, buf, cap, len, vouched);
	if ((rr = r->t->open(r, name, tmpdir, &fd, vouched)) != REMOTE_OK)
		return rr;
	buf_init(&b);
	if (fs_read_fd(fd, &b, cap) == 0) {
		memcpy(buf, b.p, b.len);
		*len = b.len;
	} else if (errno == EFBIG) {
		*len = cap + 1;
	} else {
		rr = REMOTE_FAILED;
	}
	buf_free(&b);
	close(fd);
	return rr;
}

/* The part's header and body put as bundles/<id>, recorded in s. 0, or -1
 * (logged; its keys stay without a part). */
static int
put_part(struct remote *r, struct remote_session *s, struct part *pt)
{
	char id[HASH_HEX_LEN + 1], *name;
	unsigned char h[HASH_LEN];
	struct buf obj;
	int part, rc = -1;

	buf_init(&obj);
	buf_addf(&obj, "%spacks %zu\n", BUNDLE_MAGIC, pt->n);
	for (size_t i = 0; i < pt->n; i++) {
		const struct remote_session_key *k = &s->k[pt->keys[i]];

		buf_addf(&obj, "%s %s %zu\n", k->crate, k->res, pt->lens[i]);
	}
	buf_addstr(&obj, "end\n");
	if (pack_docs_deflate(pt->body.p, pt->body.len, &obj) < 0)
		goto out;
	hash_buffer(obj.p, obj.len, h);
	hash_to_hex(h, id);
	name = bundle_name(id);
	if (obj.len > BUNDLE_PART_MAX) {
		log_warnx("bundle part of %zu packs: %zu bytes with its header; not written", pt->n,
		    obj.len);
	} else if (r->t->put(r, name, obj.p, obj.len) != REMOTE_OK) {
		log_warnx("bundle part %s not written: the remote failed", name);
	} else {
		part = remote_session_part_add(s, id);
		for (size_t i = 0; i < pt->n; i++)
			s->k[pt->keys[i]].part = part;
		log_info("bundle part %s written: %zu packs, %zu bytes (%zu of packs, %zu "
		         "inflated)",
		    name, pt->n, obj.len, pt->packed, pt->body.len);
		rc = 0;
	}
	free(name);
out:
	buf_free(&obj);
	buf_reset(&pt->body);
	pt->n = 0;
	pt->packed = 0;
	return rc;
}

/* Adds the pack of the session's key to the part, its document inflated; the
 * part is put first when the pack would take it past BUNDLE_PART_MAX (its
 * packs' bytes: the frame's bound), BUNDLE_PACKS_MAX or PACK_DOCS_MAX. 0, or
 * -1 when the pack does not inflate within PACK_DOCS_MAX alone. */
static int
add_pack(struct remote *r, struct remote_session *s, struct part *pt, size_t key, const char *pack,
    size_t len, int *written)
{
	size_t mark = pt->body.len;

	if (pt->n > 0 &&
	    (pt->n == BUNDLE_PACKS_MAX ||
	        pt->packed + len + PART_HEAD(pt->n + 1) > BUNDLE_PART_MAX)) {
		*written += put_part(r, s, pt) == 0;
		mark = 0;
	}
	if (pack_doc_of(pack, len, &pt->body, PACK_DOCS_MAX) < 0) {
		if (mark == 0)
			return -1;
		*written += put_part(r, s, pt) == 0; /* full: the pack starts the next */
		if (pack_doc_of(pack, len, &pt->body, PACK_DOCS_MAX) < 0)
			return -1;
		mark = 0;
	}
	pt->lens[pt->n] = pt->body.len - mark;
	pt->packed += len;
	pt->keys[pt->n++] = key;
	return 0;
}

int
bundle_write(struct remote *r, const char *kache_dir, struct remote_session *s, void (*beat)(void))
{
	size_t want = 0, len;
	char *tmpdir, *name, *buf;
	struct part pt = { 0 };
	int written = 0, signs, vouched;
	enum remote_result rr;
	long unvouched = 0;
	int64_t t0 = clock_ms();

	for (size_t i = 0; i < s->n; i++)
		want += s->k[i].part < 0;
	if (want < BUNDLE_MIN_PACKS || r->read_only || r->off || r->t == NULL)
		return 0;
	/* a signing writer signs each part whole: it must never sign what it
	 * could not verify (its own key is trusted once its secret is loaded) */
	if ((signs = sign_writer_ready(r)) < 0)
		return 0;
	tmpdir = path_join(kache_dir, "tmp");
	buf = xmalloc(BUNDLE_PART_MAX);
	buf_init(&pt.body);
	pt.keys = xcalloc(s->n, sizeof *pt.keys);
	pt.lens = xcalloc(s->n, sizeof *pt.lens);
	for (size_t i = 0; i < s->n; i++) {
		struct remote_session_key *k = &s->k[i];

		/* outputs past four parts: its pack is not going to fit (packs
		 * are compressed; one never grows much past its outputs) */
		if (k->part >= 0 || k->bytes > 4 * (uint64_t)BUNDLE_PART_MAX)
			continue;
		if (clock_ms() - t0 > BUNDLE_WRITE_MAX_MS) {
			log_warnx("bundle: %d s spent reading packs back; the rest of the session "
			          "stays without a part",
			    BUNDLE_WRITE_MAX_MS / 1000);
			break;
		}
		name = layout_pack_name(k->crate, k->res);
		rr = read_whole(r, tmpdir, name, buf, BUNDLE_PART_MAX - PART_HEAD(1), &len,
		    &vouched);
		free(name);
		if (beat != NULL)
			beat();
		if (rr == REMOTE_FAILED)
			break; /* the remote failed: what is together is still put */
		if (rr != REMOTE_OK || len > BUNDLE_PART_MAX - PART_HEAD(1))
			continue; /* not there, refused, or larger than a part */
		if (signs && !vouched) {
			unvouched++;
			continue;
		}
		if (add_pack(r, s, &pt, i, buf, len, &written) < 0)
			log_warnx("bundle: pack %s of %s is not a valid pack, or inflates past %zu "
			          "MiB; left out of the parts",
			    k->res, k->crate, PACK_DOCS_MAX >> 20);
	}
	if (pt.n >= BUNDLE_MIN_PACKS || (pt.n > 0 && written > 0))
		written += put_part(r, s, &pt) == 0;
	if (unvouched > 0)
		log_warnx("bundle: %ld packs left out of the parts: no trusted key signed them, "
		          "and this runner signs what it puts",
		    unvouched);
	if (written > 0)
		log_info("bundle: %d parts written in %" PRId64 " ms", written, clock_ms() - t0);
	free(pt.keys);
	free(pt.lens);
	buf_free(&pt.body);
	free(buf);
	free(tmpdir);
	return written;
}

/* The part whole, into a kept pack buffer (*kept 1) or, when none can be
 * had, a new one of BUNDLE_PART_MAX bytes; larger than a part is REMOTE_MISS
 * (said by the caller: not a part). */
static enum remote_result
read_part(struct remote *r, const char *tmpdir, const char *name, char **buf, size_t *n,
    int *vouched, int *kept)
{
	enum remote_result rr;

	*kept = (*buf = pack_buffer_take()) != NULL;
	if (!*kept)
		*buf = xmalloc(BUNDLE_PART_MAX);
	rr = read_whole(r, tmpdir, name, *buf, *kept ? PACK_MEM_MAX : BUNDLE_PART_MAX, n, vouched);
	return rr == REMOTE_OK && *n > BUNDLE_PART_MAX ? REMOTE_MISS : rr;
}

#ifdef KACHE_FAULT_INJECTION
/* Test builds: with KACHE_TEST_BUNDLE_GATE set, once the first pack of a
 * part is imported and its lock let go, the import waits (10 s at most) for
 * that file to appear and removes it. A test takes the pack's lock meanwhile
 * and only then makes the file: found while the part is still being
 * imported only if the lock was let go at once. Once per process. */
static void
test_gate(void)
{
	static int passed;
	const char *g = getenv("KACHE_TEST_BUNDLE_GATE");

	if (g == NULL || __atomic_fetch_add(&passed, 1, __ATOMIC_RELAXED) > 0)
		return;
	for (int i = 0; i < 1000 && unlink(g) != 0; i++)
		usleep(10000);
}
#else
static void
test_gate(void)
{
}
#endif

/* A part being imported: the packs this thread holds the lock of (mine),
 * each let go as soon as its import is over. */
struct held {
	struct store *s;
	const struct bundle_index *ix;
	struct bundle_want *w;
	size_t n;
	char *mine;
	int *lock;
	unsigned flags;
	size_t next; /* version 2: the part's first pack not yet inflated whole */
};

/* Imports the part's pack j from its bytes at d (version 1: the pack;
 * version 2: its document) when it is wanted and this thread's to import
 * (mine: its lock held, or the lock file cannot be had at all), and lets go
 * of its lock at once: a wrapper's fetch that joined it (a compile cargo
 * waits for) goes on then, not when the whole part is in. */
static void
import_one(struct held *h, size_t j, const char *d)
{
	const struct bundle_pack *bp = &h->ix->p[j];
	unsigned char res[HASH_LEN];
	enum pack_result pr;

	for (size_t i = 0; i < h->n; i++) {
		if (!h->mine[i] || h->w[i].done || strcmp(h->w[i].res, bp->res) != 0 ||
		    strcmp(h->w[i].crate, bp->crate) != 0)
			continue;
		hash_from_hex(h->w[i].res, res);
		pr = h->ix->version == 2 ? pack_import_doc(h->s, d, bp->len, NULL, res, h->flags) :
		                           pack_import(h->s, d, bp->len, NULL, res, h->flags);
		if (pr == PACK_OK)
			h->w[i].done = h->w[i].imported = 1;
		else
			log_warnx("remote: pack %s of bundle part rejected (%s)", h->w[i].res,
			    pack_result_name(pr));
		layout_lock_release(h->lock[i]);
		h->lock[i] = -1;
		h->mine[i] = 0; /* no longer this thread's, whatever came of it */
		test_gate();
	}
}

/* pack_docs_fn of a version 2 part: imports, in the part's order (cargo's),
 * each pack whose document is now inflated whole. */
static void
docs_ready(void *arg, const char *docs, size_t avail)
{
	struct held *h = arg;

	while (h->next < h->ix->n && h->ix->p[h->next].off <= avail &&
	    h->ix->p[h->next].len <= avail - h->ix->p[h->next].off) {
		import_one(h, h->next, docs + h->ix->p[h->next].off);
		h->next++;
	}
}

/* Imports what the parsed part d holds for this thread: REMOTE_OK, or
 * REMOTE_MISS (logged) when a version 2 frame does not inflate whole (the
 * packs it gave whole before that were verified one by one, and stay). */
static enum remote_result
import_held(struct held *h, const char *d, size_t n, const char *name)
{
	const struct bundle_index *ix = h->ix;

	if (ix->version == 1) {
		for (size_t j = 0; j < ix->n; j++)
			import_one(h, j, d + ix->p[j].off);
		return REMOTE_OK;
	}
	if (pack_docs_inflate(d + ix->body_off, n - ix->body_off, ix->docs_len, docs_ready, h) ==
	    PACK_OK)
		return REMOTE_OK;
	log_warnx("remote: bundle part %s is not valid (its frame does not inflate whole to "
	          "%zu bytes); its packs are fetched one by one",
	    name, ix->docs_len);
	return REMOTE_MISS;
}

enum remote_result
bundle_import(struct remote *r, const char *kache_dir, const char *id, struct bundle_want *w,
    size_t n)
{
	char *name, *tmpdir, *buf = NULL, why[160];
	struct bundle_index ix = { 0 };
	enum remote_result rr = REMOTE_OK;
	int *lock, held = 0, vouched, kept = 0;
	char *mine;
	struct store *s;
	size_t len = 0;

	if (r->off || !hash_hex_valid(id))
		return REMOTE_MISS;
	if ((s = store_open(kache_dir)) == NULL)
		return REMOTE_FAILED;
	store_set_import_source(s, r->import_source);
	lock = xcalloc(n + 1, sizeof *lock);
	mine = xcalloc(n + 1, 1);
	for (size_t i = 0; i < n; i++) {
		lock[i] = -1;
		if (store_has_entry(s, w[i].res))
			w[i].done = 1;
		else if (layout_lock_take(kache_dir, w[i].res, 0, &lock[i]) != 1)
			held += mine[i] =
			    1; /* as a fetch: a lock that cannot be had at all is none */
	}
	name = bundle_name(id);
	tmpdir = path_join(kache_dir, "tmp");
	if (held > 0) {
		rr = read_part(r, tmpdir, name, &buf, &len, &vouched, &kept);
		if (rr == REMOTE_OK && bundle_parse(buf, len, &ix, why, sizeof why) < 0) {
			log_warnx("remote: bundle part %s is not valid (%s); its packs are fetched "
			          "one by one",
			    name, why);
			rr = REMOTE_MISS;
		} else if (rr == REMOTE_MISS) {
			log_warnx("remote: bundle part %s is missing, too large or refused; its "
			          "packs are fetched one by one",
			    name);
		} else if (rr == REMOTE_OK) {
			struct held h = { s, &ix, w, n, mine, lock,
				vouched ? PACK_BLOBS_VOUCHED : 0, 0 };

			rr = import_held(&h, buf, len, name);
		}
	}
	for (size_t i = 0; i < n; i++)
		layout_lock_release(lock[i]);
	if (kept)
		pack_buffer_give(buf);
	else
		free(buf);
	bundle_index_free(&ix);
	free(lock);
	free(mine);
	free(tmpdir);
	free(name);
	store_free(&s);
	return rr;
}
