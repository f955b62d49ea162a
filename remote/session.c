/* Session manifests: the object's text form, reading it from a remote, and
 * saving the store's finished sessions into it (remote/session.h). */
#include "remote/session.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/path.h"
#include "remote/bundle.h"
#include "remote/planner_client.h"
#include "remote/transport.h"
#include "store/journal.h"
#include "store/pack.h"

struct lines {
	const char *p, *end;
	long no;
};

/* A key, sorted by result key to find repeats. */
struct key_ref {
	struct remote_session_key *k;
};

struct marker {
	char lock[1024];
	char toolchain[REMOTE_SESSION_NAME_MAX + 1];
	char target[REMOTE_SESSION_NAME_MAX + 1];
	char profile[REMOTE_SESSION_NAME_MAX + 1];
};

static int name_ok(const char *s, size_t n);
static int next_line(struct lines *l, const char **line, size_t *n);
static int take_field(struct lines *l, const char *key, char *out, size_t cap, int hex);
static int take_key(const char *line, size_t n, struct remote_session *s, int v3);
static int take_part(const char *f, int *part);
static int take_parts(struct lines *l, struct remote_session *s);
static int parse_head(struct lines *l, struct remote_session *s, size_t *count, int v2);
static void dedupe(struct remote_session *s);
static int cmp_res(const void *a, const void *b);
static int read_marker(const char *path, struct marker *m);
static int read_used(const char *path, struct remote_session *s);
static int save_one(struct remote *r, const char *kache_dir, const char *dir, const char *ws,
    void (*beat)(void));
static char *saved_path(const char *dir, const char *fp);
static void test_gate(void (*beat)(void));
static int save_lock(const char *kache_dir, int64_t wait_ms);
static int save_all(struct remote *r, const char *kache_dir, int64_t idle_ms, void (*beat)(void));
static int save_locked(struct remote *r, const char *kache_dir, int64_t idle_ms, void (*beat)(void),
    int end_job);
static void job_end(const char *kache_dir);
static size_t merge_saved(const char *dir, const char *fp, struct remote_session *s);
static size_t merge_remote(struct remote *r, const char *kache_dir, const char *name,
    const char *fp, struct remote_session *s);
static char *take_features(const char *dir, const char *ws);
static void read_features(const char *path, struct remote_session *s);
static void merge_features(char *into, const char *old);
static void features_done(const char *dir, const char *ws, char *taken, int keep);
static int fill_head(const char *dir, const char *ws, struct remote_session *s, struct marker *m);
static void saved(struct remote *r, const char *dir, const char *fp, const struct remote_session *s,
    const struct buf *b, const char *lock, size_t earlier, size_t others);
static int cmp_crate(const void *a, const void *b);
static int cmp_key_res(const void *a, const void *b);
static void adopt_parts(struct remote_session *s, const struct remote_session *old);
static void prune_parts(struct remote_session *s);
static void drop_replaced_parts(const char *dir, struct remote_session *s);

/* [A-Za-z0-9_.-]{1,64} */
static int
name_ok(const char *s, size_t n)
{
	static const char ok[] =
	    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-";

	if (n == 0 || n > REMOTE_SESSION_NAME_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (s[i] == '\0' || strchr(ok, s[i]) == NULL)
			return 0;
	return 1;
}

void
remote_session_fingerprint(const char *lock, const char *toolchain, const char *target,
    const char *profile, char fp[HASH_HEX_LEN + 1])
{
	struct hash_ctx c;
	unsigned char h[HASH_LEN];

	hash_begin(&c);
	hash_str(&c, "kache-session-v1");
	hash_str(&c, lock);
	hash_str(&c, toolchain);
	hash_str(&c, target);
	hash_str(&c, profile);
	hash_end(&c, h);
	hash_to_hex(h, fp);
}

void
remote_session_features_digest(struct strv *lines, char out[17])
{
	struct hash_ctx c;
	unsigned char h[HASH_LEN];
	char hex[HASH_HEX_LEN + 1];

	strv_sort(lines);
	hash_begin(&c);
	hash_str(&c, "kache-features-v1");
	for (size_t i = 0; i < lines->n; i++)
		if (i == 0 || strcmp(lines->v[i], lines->v[i - 1]) != 0)
			hash_str(&c, lines->v[i]);
	hash_end(&c, h);
	hash_to_hex(h, hex);
	snprintf(out, 17, "%.16s", hex);
}

char *
remote_session_name(const char *fp)
{
	return xasprintf("%s%s", REMOTE_SESSION_PREFIX, fp);
}

void
remote_session_add(struct remote_session *s, const char *crate, const char *res, uint64_t bytes,
    const char *version)
{
	struct remote_session_key *x;

	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 64;
		s->k = xrealloc(s->k, s->cap * sizeof *s->k);
	}
	x = &s->k[s->n++];
	snprintf(x->crate, sizeof x->crate, "%s", crate);
	snprintf(x->res, sizeof x->res, "%s", res);
	x->bytes = bytes;
	snprintf(x->version, sizeof x->version, "%s", version ? version : "");
	x->part = -1;
}

void
remote_session_free(struct remote_session *s)
{
	free(s->k);
	free(s->parts);
	memset(s, 0, sizeof *s);
}

int
remote_session_part_add(struct remote_session *s, const char *id)
{
	for (size_t i = 0; i < s->nparts; i++)
		if (strcmp(s->parts[i], id) == 0)
			return (int)i;
	s->parts = xrealloc(s->parts, (s->nparts + 1) * sizeof *s->parts);
	snprintf(s->parts[s->nparts], sizeof s->parts[0], "%s", id);
	return (int)s->nparts++;
}

const char *
remote_session_key_part(const struct remote_session *s, size_t i)
{
	int part = s->k[i].part;

	return part >= 0 && (size_t)part < s->nparts ? s->parts[part] : NULL;
}

/* The next line (without its newline) of l. -1 at the end, or when the last
 * line has no newline (a truncated object). */
static int
next_line(struct lines *l, const char **line, size_t *n)
{
	if (str_next_line(&l->p, l->end, line, n) < 0)
		return -1;
	l->no++;
	return 0;
}

/* "<key> <value>": value into out ("-" read as ""), a name, or exactly 64
 * lowercase hex digits when hex. */
static int
take_field(struct lines *l, const char *key, char *out, size_t cap, int hex)
{
	size_t k = strlen(key), n, vn;
	const char *line, *v;

	if (next_line(l, &line, &n) < 0 || n <= k + 1 || memcmp(line, key, k) != 0 ||
	    line[k] != ' ')
		return -1;
	v = line + k + 1;
	vn = n - k - 1;
	if (vn >= cap || !name_ok(v, vn))
		return -1;
	memcpy(out, v, vn);
	out[vn] = '\0';
	if (hex)
		return hash_hex_valid(out) ? 0 : -1;
	if (strcmp(out, "-") == 0)
		out[0] = '\0';
	return 0;
}

/* The part field of a version 3 key line: "-" (-1) or an index below
 * REMOTE_SESSION_MAX_PARTS (checked against the parts read later). */
static int
take_part(const char *f, int *part)
{
	size_t n = strlen(f);
	long v;

	if (strcmp(f, "-") == 0) {
		*part = -1;
		return 0;
	}
	if (n == 0 || n > 4 || strspn(f, "0123456789") != n || (n > 1 && f[0] == '0') ||
	    (v = strtol(f, NULL, 10)) >= REMOTE_SESSION_MAX_PARTS)
		return -1;
	*part = (int)v;
	return 0;
}

/* "<crate> <64 hex> <bytes>[ <version>]": every field checked; the version
 * (cargo's CARGO_PKG_VERSION, journal_version_valid) may be absent. v3:
 * "<crate> <64 hex> <bytes> <version|-> <part|->", all five there. */
static int
take_key(const char *line, size_t n, struct remote_session *s, int v3)
{
	char tmp[64 + HASH_HEX_LEN + 20 + JOURNAL_VERSION_MAX + 16], *f[6], *save = NULL, *end;
	unsigned long long v;
	size_t nf = 0;
	int part = -1;

	if (n >= sizeof tmp || memchr(line, '\0', n) != NULL)
		return -1;
	memcpy(tmp, line, n);
	tmp[n] = '\0';
	if (n == 0 || tmp[0] == ' ' || tmp[n - 1] == ' ' || strstr(tmp, "  ") != NULL)
		return -1;
	for (char *t = strtok_r(tmp, " ", &save); t != NULL && nf < 6;
	     t = strtok_r(NULL, " ", &save))
		f[nf++] = t;
	if (v3 && (nf != 5 || take_part(f[4], &part) < 0))
		return -1;
	if (v3 && strcmp(f[3], "-") == 0)
		nf = 3; /* no version */
	if (nf < 3 || nf > (v3 ? 5u : 4u) || !pack_crate_name_ok(f[0]) ||
	    strlen(f[1]) != HASH_HEX_LEN || !hash_hex_valid(f[1]) || strlen(f[2]) > 20 ||
	    strspn(f[2], "0123456789") != strlen(f[2]) || (nf >= 4 && !journal_version_valid(f[3])))
		return -1;
	errno = 0;
	v = strtoull(f[2], &end, 10);
	if (errno != 0 || *end != '\0')
		return -1;
	remote_session_add(s, f[0], f[1], v, nf >= 4 ? f[3] : "");
	s->k[s->n - 1].part = part;
	return 0;
}

/* Version 3's "parts <m>" and its m ids, each key's part checked against m. */
static int
take_parts(struct lines *l, struct remote_session *s)
{
	char num[8], id[HASH_HEX_LEN + 1];
	size_t m;

	if (take_field(l, "parts", num, sizeof num, 0) < 0 || num[0] < '0' || num[0] > '9' ||
	    strspn(num, "0123456789") != strlen(num) ||
	    (m = strtoul(num, NULL, 10)) > REMOTE_SESSION_MAX_PARTS)
		return -1;
	for (size_t i = 0; i < m; i++) {
		const char *line;
		size_t n;

		if (next_line(l, &line, &n) < 0 || n != HASH_HEX_LEN)
			return -1;
		memcpy(id, line, n);
		id[n] = '\0';
		if (!hash_hex_valid(id) || remote_session_part_add(s, id) != (int)i)
			return -1; /* not hex, or a repeat */
	}
	for (size_t i = 0; i < s->n; i++)
		if (s->k[i].part >= (int)m)
			return -1;
	return 0;
}

/* Everything before the keys; *count is the number of key lines announced. */
static int
parse_head(struct lines *l, struct remote_session *s, size_t *count, int v2)
{
	char num[REMOTE_SESSION_NAME_MAX + 1], *end;
	unsigned long long v;

	if (take_field(l, "lock", s->lock, sizeof s->lock, 1) < 0 ||
	    take_field(l, "toolchain", s->toolchain, sizeof s->toolchain, 0) < 0 ||
	    take_field(l, "target", s->target, sizeof s->target, 0) < 0 ||
	    take_field(l, "profile", s->profile, sizeof s->profile, 0) < 0 ||
	    (v2 && take_field(l, "features", s->features, sizeof s->features, 0) < 0) ||
	    take_field(l, "created", num, 20, 0) < 0 || num[0] < '0' || num[0] > '9')
		return -1;
	errno = 0;
	v = strtoull(num, &end, 10);
	if (*end != '\0' || errno != 0 || v > INT64_MAX)
		return -1;
	s->created_ms = (int64_t)v;
	if (take_field(l, "keys", num, 8, 0) < 0 || num[0] < '0' || num[0] > '9')
		return -1;
	v = strtoull(num, &end, 10);
	if (*end != '\0' || v > REMOTE_SESSION_MAX_KEYS)
		return -1;
	*count = (size_t)v;
	return 0;
}

int
remote_session_parse(const char *d, size_t n, struct remote_session *s, char *why, size_t whylen)
{
	size_t magic = strlen(REMOTE_SESSION_MAGIC), count = 0, len;
	struct lines l = { d + magic, d + n, 1 };
	const char *line;
	int v2, v3;

	memset(s, 0, sizeof *s);
	if (n > REMOTE_SESSION_MAX_BYTES || n < magic ||
	    (memcmp(d, REMOTE_SESSION_MAGIC, magic) != 0 &&
	        memcmp(d, REMOTE_SESSION_MAGIC2, magic) != 0 &&
	        memcmp(d, REMOTE_SESSION_MAGIC3, magic) != 0)) {
		snprintf(why, whylen, "not a kache-session 1, 2 or 3 object");
		return -1;
	}
	v3 = memcmp(d, REMOTE_SESSION_MAGIC3, magic) == 0;
	v2 = v3 || memcmp(d, REMOTE_SESSION_MAGIC2, magic) == 0;
	if (parse_head(&l, s, &count, v2) < 0) {
		snprintf(why, whylen, "line %ld is not what the format says", l.no);
		return -1;
	}
	for (size_t i = 0; i < count; i++) {
		if (next_line(&l, &line, &len) < 0 || take_key(line, len, s, v3) < 0) {
			snprintf(why, whylen, "line %ld is not a key line", l.no);
			remote_session_free(s);
			return -1;
		}
	}
	if (v3 && take_parts(&l, s) < 0) {
		snprintf(why, whylen, "line %ld is not what the parts section says", l.no);
		remote_session_free(s);
		return -1;
	}
	if (next_line(&l, &line, &len) < 0 || len != 3 || memcmp(line, "end", 3) != 0 ||
	    l.p != l.end) {
		snprintf(why, whylen, "it does not end after its %zu keys", count);
		remote_session_free(s);
		return -1;
	}
	return 0;
}

void
remote_session_encode(const struct remote_session *s, struct buf *out)
{
	int v3 = s->nparts > 0;

	buf_addstr(out,
	    v3                 ? REMOTE_SESSION_MAGIC3 :
	        s->features[0] ? REMOTE_SESSION_MAGIC2 :
	                         REMOTE_SESSION_MAGIC);
	buf_addf(out, "lock %s\ntoolchain %s\ntarget %s\nprofile %s\n", s->lock,
	    s->toolchain[0] ? s->toolchain : "-", s->target[0] ? s->target : "-",
	    s->profile[0] ? s->profile : "-");
	if (s->features[0] || v3)
		buf_addf(out, "features %s\n", s->features[0] ? s->features : "-");
	buf_addf(out, "created %" PRId64 "\n", s->created_ms);
	buf_addf(out, "keys %zu\n", s->n);
	for (size_t i = 0; i < s->n; i++) {
		const struct remote_session_key *k = &s->k[i];

		if (!v3) {
			buf_addf(out, "%s %s %" PRIu64 "%s%s\n", k->crate, k->res, k->bytes,
			    k->version[0] ? " " : "", k->version);
			continue;
		}
		buf_addf(out, "%s %s %" PRIu64 " %s ", k->crate, k->res, k->bytes,
		    k->version[0] ? k->version : "-");
		if (k->part >= 0)
			buf_addf(out, "%d\n", k->part);
		else
			buf_addstr(out, "-\n");
	}
	if (v3) {
		buf_addf(out, "parts %zu\n", s->nparts);
		for (size_t i = 0; i < s->nparts; i++)
			buf_addf(out, "%s\n", s->parts[i]);
	}
	buf_addstr(out, "end\n");
}

enum remote_result
remote_session_get(struct remote *r, const char *kache_dir, const char *name,
    struct remote_session *s, char *why, size_t whylen)
{
	char *tmpdir = path_join(kache_dir, "tmp");
	enum remote_result rr;
	struct buf b;
	int fd;

	why[0] = '\0';
	memset(s, 0, sizeof *s);
	buf_init(&b);
	if (r->t == NULL || r->off)
		rr = REMOTE_FAILED;
	else if ((rr = r->t->open(r, name, tmpdir, &fd, NULL)) == REMOTE_OK) {
		if (fs_read_fd(fd, &b, REMOTE_SESSION_MAX_BYTES) < 0) {
			snprintf(why, whylen, "it is larger than %d MiB or cannot be read",
			    REMOTE_SESSION_MAX_BYTES >> 20);
			rr = REMOTE_MISS;
		} else if (remote_session_parse(b.p ? b.p : "", b.len, s, why, whylen) < 0) {
			rr = REMOTE_MISS;
		}
		close(fd);
	}
	buf_free(&b);
	free(tmpdir);
	return rr;
}

/* Sorting a copy by result key to drop repeats, keeping the first use. */
static int
cmp_res(const void *a, const void *b)
{
	const struct remote_session_key *x = ((const struct key_ref *)a)->k;
	const struct remote_session_key *y = ((const struct key_ref *)b)->k;
	int c = strcmp(x->res, y->res);

	return c != 0 ? c : (x < y ? -1 : x > y);
}

/* Drops repeated result keys, keeping each one's first line (the order
 * cargo used them in: leaves first). */
static void
dedupe(struct remote_session *s)
{
	struct key_ref *v = xmalloc((s->n ? s->n : 1) * sizeof *v);
	size_t out = 0;

	for (size_t i = 0; i < s->n; i++)
		v[i].k = &s->k[i];
	if (s->n > 1) /* an empty array may be NULL */
		qsort(v, s->n, sizeof *v, cmp_res);
	for (size_t i = 1; i < s->n; i++)
		if (strcmp(v[i].k->res, v[i - 1].k->res) == 0)
			v[i].k->crate[0] = '\0'; /* a later repeat */
	for (size_t i = 0; i < s->n; i++)
		if (s->k[i].crate[0] != '\0')
			s->k[out++] = s->k[i];
	s->n = out;
	free(v);
}

/* The session marker the wrapper wrote (wrapper/session.c): lock=, target=,
 * profile=, toolchain= lines. -1 when it names no Cargo.lock. */
static int
read_marker(const char *path, struct marker *m)
{
	struct buf b;
	const char *p, *nl;

	memset(m, 0, sizeof *m);
	buf_init(&b);
	if (fs_read_file(path, &b, 16384) < 0) {
		buf_free(&b);
		return -1;
	}
	buf_addch(&b, '\0');
	for (p = b.p; (nl = strchr(p, '\n')) != NULL; p = nl + 1) {
		int n = (int)(nl - p);

		if (n > 5 && strncmp(p, "lock=", 5) == 0)
			snprintf(m->lock, sizeof m->lock, "%.*s", n - 5, p + 5);
		else if (n > 7 && strncmp(p, "target=", 7) == 0 && name_ok(p + 7, (size_t)n - 7))
			snprintf(m->target, sizeof m->target, "%.*s", n - 7, p + 7);
		else if (n > 8 && strncmp(p, "profile=", 8) == 0 && name_ok(p + 8, (size_t)n - 8))
			snprintf(m->profile, sizeof m->profile, "%.*s", n - 8, p + 8);
		else if (n > 10 && strncmp(p, "toolchain=", 10) == 0 &&
		    name_ok(p + 10, (size_t)n - 10))
			snprintf(m->toolchain, sizeof m->toolchain, "%.*s", n - 10, p + 10);
	}
	buf_free(&b);
	return m->lock[0] == '/' ? 0 : -1;
}

/* The "crate res" lines the index appended; a torn or strange line is
 * passed over (the file is ours, but a crash may cut its last line). */
static int
read_used(const char *path, struct remote_session *s)
{
	struct buf b;
	const char *p, *end, *nl;

	buf_init(&b);
	if (fs_read_file(path, &b, REMOTE_SESSION_MAX_BYTES) < 0) {
		buf_free(&b);
		return -1;
	}
	end = b.p + b.len;
	for (p = b.p; p && p < end && (nl = memchr(p, '\n', (size_t)(end - p))); p = nl + 1)
		if (s->n < REMOTE_SESSION_MAX_KEYS)
			take_key(p, (size_t)(nl - p), s, 0);
	buf_free(&b);
	dedupe(s);
	return 0;
}

/* run/sessions/<fp>.saved: what this store last wrote as sessions/<fp>. */
static char *
saved_path(const char *dir, const char *fp)
{
	return xasprintf("%s/%s%s", dir, fp, REMOTE_SESSION_SAVED_SUFFIX);
}

/* Puts the keys this store recorded earlier under fp (its .saved record, when
 * valid and of that fingerprint) before s's own, repeats dropped (the first
 * use kept), the oldest dropped past REMOTE_SESSION_MAX_KEYS: a save in the
 * middle of a job (an idle one) then never loses what an earlier session of
 * the job used. Returns the number of keys taken from the record. */
static size_t
merge_saved(const char *dir, const char *fp, struct remote_session *s)
{
	char *path = saved_path(dir, fp), why[160], rfp[HASH_HEX_LEN + 1];
	struct remote_session old, m = { .created_ms = s->created_ms };
	struct buf b;
	size_t drop, n = 0;

	buf_init(&b);
	if (fs_read_file(path, &b, REMOTE_SESSION_MAX_BYTES) < 0)
		goto out; /* none: the first save of fp since the job began */
	if (remote_session_parse(b.p ? b.p : "", b.len, &old, why, sizeof why) < 0) {
		log_warnx("session record %s is not valid (%s); removed", path, why);
		unlink(path);
		goto out;
	}
	remote_session_fingerprint(old.lock, old.toolchain, old.target, old.profile, rfp);
	if (strcmp(rfp, fp) == 0) {
		memcpy(m.lock, s->lock, sizeof m.lock);
		memcpy(m.toolchain, s->toolchain, sizeof m.toolchain);
		memcpy(m.target, s->target, sizeof m.target);
		memcpy(m.profile, s->profile, sizeof m.profile);
		memcpy(m.features, s->features, sizeof m.features);
		merge_features(m.features, old.features);
		for (size_t i = 0; i < old.n + s->n; i++) {
			const struct remote_session_key *k =
			    i < old.n ? &old.k[i] : &s->k[i - old.n];

			remote_session_add(&m, k->crate, k->res, k->bytes, k->version);
		}
		dedupe(&m);
		n = m.n - s->n; /* s's keys are distinct and all in m: the rest are the record's */
		drop = m.n > REMOTE_SESSION_MAX_KEYS ? m.n - REMOTE_SESSION_MAX_KEYS : 0;
		memmove(m.k, m.k + drop, (m.n - drop) * sizeof *m.k);
		m.n -= drop;
		n = n > drop ? n - drop : 0;
		remote_session_free(s);
		*s = m;
		adopt_parts(s, &old);
	}
	remote_session_free(&old);
out:
	buf_free(&b);
	free(path);
	return n;
}

/* By result key alone. */
static int
cmp_key_res(const void *a, const void *b)
{
	return strcmp(((const struct key_ref *)a)->k->res, ((const struct key_ref *)b)->k->res);
}

/* Each key of s that no part holds yet takes the part old names for the same
 * result (old: an earlier object of the fingerprint, this store's record or
 * the remote's): a save of what is already bundled writes no part. */
static void
adopt_parts(struct remote_session *s, const struct remote_session *old)
{
	struct key_ref *v, want, *hit;
	struct remote_session_key probe;
	size_t n = 0;

	if (old->nparts == 0)
		return;
	v = xmalloc((old->n ? old->n : 1) * sizeof *v);
	for (size_t i = 0; i < old->n; i++)
		if (remote_session_key_part(old, i) != NULL)
			v[n++].k = &old->k[i];
	if (n > 1)
		qsort(v, n, sizeof *v, cmp_key_res);
	want.k = &probe;
	for (size_t i = 0; i < s->n && n > 0; i++) {
		if (s->k[i].part >= 0)
			continue;
		memcpy(probe.res, s->k[i].res, sizeof probe.res);
		if ((hit = bsearch(&want, v, n, sizeof *v, cmp_key_res)) != NULL &&
		    strcmp(hit->k->crate, s->k[i].crate) == 0)
			s->k[i].part = remote_session_part_add(s, old->parts[hit->k->part]);
	}
	free(v);
}

void
remote_session_replaced(const char *kache_dir, const char *res_hex)
{
	char *dir = xasprintf("%s/%s", kache_dir, JOURNAL_SESSIONS_DIR),
	     *path = xasprintf("%s/%s%s", dir, res_hex, REMOTE_SESSION_REPLACED_SUFFIX);

	if (fs_mkdir_p(dir, 0755) < 0 || fs_write_atomic(path, "", 0, 0644) < 0)
		log_warn("%s not written: a session save may keep the replaced pack's bundle "
		         "part",
		    path);
	free(path);
	free(dir);
}

/* A key whose pack was replaced in this job (remote_session_replaced) takes
 * no part from an earlier object: that part holds the old pack. It goes into
 * a new part, read back from the remote as it is now. */
static void
drop_replaced_parts(const char *dir, struct remote_session *s)
{
	for (size_t i = 0; i < s->n; i++) {
		char *mark;

		if (s->k[i].part < 0)
			continue;
		mark = xasprintf("%s/%s%s", dir, s->k[i].res, REMOTE_SESSION_REPLACED_SUFFIX);
		if (access(mark, F_OK) == 0)
			s->k[i].part = -1;
		free(mark);
	}
}

/* Drops the parts no key names any longer, the rest renumbered in order. */
static void
prune_parts(struct remote_session *s)
{
	int *to = xcalloc(s->nparts + 1, sizeof *to);
	size_t out = 0;

	for (size_t i = 0; i < s->n; i++)
		if (s->k[i].part >= 0)
			to[s->k[i].part] = 1;
	for (size_t i = 0; i < s->nparts; i++) {
		if (!to[i]) {
			to[i] = -1;
			continue;
		}
		to[i] = (int)out;
		if (out != i)
			memcpy(s->parts[out], s->parts[i], sizeof s->parts[0]);
		out++;
	}
	s->nparts = out;
	for (size_t i = 0; i < s->n; i++)
		if (s->k[i].part >= 0)
			s->k[i].part = to[s->k[i].part];
	free(to);
}

/* By crate name, then version. */
static int
cmp_crate(const void *a, const void *b)
{
	const struct remote_session_key *x = a, *y = b;
	int c = strcmp(x->crate, y->crate);

	return c != 0 ? c : strcmp(x->version, y->version);
}

/* Keeps what the object already at name (another runner's save of fp) names
 * for every crate (name and version) this session did not use, after s's own
 * keys, up to REMOTE_SESSION_MAX_KEYS: a job that built a part of the
 * workspace (`cargo build -p x`) then no longer takes the rest away from the
 * next full build's prefetch. A crate this session used keeps only this
 * session's keys, so that rebuilt workspace members do not pile up. Returns
 * the number of keys kept from the object. */
static size_t
merge_remote(struct remote *r, const char *kache_dir, const char *name, const char *fp,
    struct remote_session *s)
{
	struct remote_session old;
	struct remote_session_key *used;
	char why[160], rfp[HASH_HEX_LEN + 1];
	size_t mine = s->n, kept = 0;

	if (remote_session_get(r, kache_dir, name, &old, why, sizeof why) != REMOTE_OK) {
		if (why[0] != '\0')
			log_info("session manifest %s there is not valid (%s): replaced", name,
			    why);
		remote_session_free(&old);
		return 0;
	}
	remote_session_fingerprint(old.lock, old.toolchain, old.target, old.profile, rfp);
	if (strcmp(rfp, fp) != 0) { /* not a save of this fingerprint: nothing of it kept */
		remote_session_free(&old);
		return 0;
	}
	/* this session's crates, sorted, to look the object's up in */
	used = xcalloc(mine + 1, sizeof *used);
	memcpy(used, s->k, mine * sizeof *used);
	qsort(used, mine, sizeof *used, cmp_crate);
	for (size_t i = 0; i < old.n && s->n < REMOTE_SESSION_MAX_KEYS; i++) {
		const struct remote_session_key *k = &old.k[i];

		if (bsearch(k, used, mine, sizeof *used, cmp_crate) == NULL) {
			remote_session_add(s, k->crate, k->res, k->bytes, k->version);
			kept++;
		}
	}
	free(used);
	if (kept > 0) {
		dedupe(s);
		kept = s->n - mine;
		merge_features(s->features, old.features);
	}
	adopt_parts(s, &old);
	remote_session_free(&old);
	return kept;
}

/* The session's <ws>.features (session_features in the wrapper), renamed
 * away as its .used is; the taken name, or NULL when there is none. */
static char *
take_features(const char *dir, const char *ws)
{
	char *f = xasprintf("%s/%s.features", dir, ws);
	char *taken = xasprintf("%s.%ld", f, (long)getpid());

	if (rename(f, taken) < 0) {
		free(taken);
		taken = NULL;
	}
	free(f);
	return taken;
}

/* The digest of the "<crate> <features>" lines at path into s->features;
 * a line that is not one is passed over (a crash may cut the last). */
static void
read_features(const char *path, struct remote_session *s)
{
	struct buf b;
	struct strv lines;
	const char *p, *end, *nl, *sp;

	buf_init(&b);
	strv_init(&lines);
	if (path != NULL && fs_read_file(path, &b, REMOTE_SESSION_MAX_BYTES) == 0) {
		end = b.p + b.len;
		for (p = b.p; p && p < end && (nl = memchr(p, '\n', (size_t)(end - p)));
		     p = nl + 1) {
			sp = memchr(p, ' ', (size_t)(nl - p));
			if (sp != NULL && sp > p && sp + 1 < nl &&
			    memchr(p, '\0', (size_t)(nl - p)) == NULL)
				strv_push_owned(&lines, xstrndup(p, (size_t)(nl - p)));
		}
	}
	if (lines.n > 0)
		remote_session_features_digest(&lines, s->features);
	strv_free(&lines);
	buf_free(&b);
}

/* The features of an object merging an earlier one (old) into into: the
 * known one when the other is not known, "mixed" when both are and differ. */
static void
merge_features(char *into, const char *old)
{
	if (old[0] == '\0' || strcmp(into, old) == 0)
		return;
	snprintf(into, REMOTE_SESSION_NAME_MAX + 1, "%s",
	    into[0] == '\0' ? old : REMOTE_SESSION_FEATURES_MIXED);
}

/* The taken .features file: removed once saved, else put back (unless a
 * new one began meanwhile: its lines are then lost, the keys are not). */
static void
features_done(const char *dir, const char *ws, char *taken, int keep)
{
	char *f;

	if (taken == NULL)
		return;
	f = xasprintf("%s/%s.features", dir, ws);
	if (!keep || access(f, F_OK) == 0 || rename(taken, f) < 0)
		unlink(taken);
	free(f);
	free(taken);
}

/* The fingerprint's parts of session ws into s: from its marker, and
 * Cargo.lock's bytes as they are now (its path into lock). -1 logged. */
static int
fill_head(const char *dir, const char *ws, struct remote_session *s, struct marker *m)
{
	char *mk = xasprintf("%s/%s", dir, ws);
	unsigned char h[HASH_LEN];
	uint64_t size;
	int fd, rc = -1;

	if (read_marker(mk, m) < 0 || (fd = fs_open_input(m->lock)) < 0) {
		log_warnx("session %s: its marker or Cargo.lock is gone; not saved", ws);
	} else {
		if (hash_fd(fd, h, &size) < 0)
			log_warn("session %s: read %s; not saved", ws, m->lock);
		else
			rc = 0;
		close(fd);
	}
	free(mk);
	if (rc == 0) {
		hash_to_hex(h, s->lock);
		memcpy(s->toolchain, m->toolchain, sizeof s->toolchain);
		memcpy(s->target, m->target, sizeof s->target);
		memcpy(s->profile, m->profile, sizeof s->profile);
	}
	return rc;
}

/* After the put of sessions/<fp> (body b): said, recorded for the job's
 * later saves (merge_saved), posted to the planner. */
static void
saved(struct remote *r, const char *dir, const char *fp, const struct remote_session *s,
    const struct buf *b, const char *lock, size_t earlier, size_t others)
{
	char *record = saved_path(dir, fp);

	log_info("session manifest %s%s saved: %zu result keys used by %s (%zu of them by "
	         "earlier sessions of the job; %zu kept from the object there, for crates "
	         "this job did not use)",
	    REMOTE_SESSION_PREFIX, fp, s->n, lock, earlier, others);
	if (fs_write_atomic(record, b->p, b->len, 0644) < 0)
		log_warn("session record %s not written; a later save of %s%s may drop these "
		         "keys",
		    record, REMOTE_SESSION_PREFIX, fp);
	free(record);
	if (r->planner != NULL)
		planner_client_post_session(r->planner, fp, s);
}

/* One finished session: its .used lines taken away first (renamed, so that
 * the index's next appends start a new session; its .features with them),
 * the fingerprint made from the marker and Cargo.lock as they are now, the
 * keys of the job's earlier saves of it put first, the object put. 1
 * written, 0 nothing to write, -1 failed (the lines are put back). */
static int
save_one(struct remote *r, const char *kache_dir, const char *dir, const char *ws,
    void (*beat)(void))
{
	char *used = xasprintf("%s/%s.used", dir, ws), *taken, *name = NULL, *tmpdir;
	char fp[HASH_HEX_LEN + 1], *feat = NULL;
	struct remote_session s = { .created_ms = clock_wall_ms() };
	struct marker m;
	struct buf b;
	int rc = 0, kept = 0;
	size_t earlier, others;

	taken = xasprintf("%s.%ld", used, (long)getpid());
	tmpdir = path_join(kache_dir, "tmp");
	buf_init(&b);
	if (rename(used, taken) < 0) {
		rc = errno == ENOENT ? 0 : -1; /* another saver took it */
		goto out;
	}
	test_gate(beat);
	feat = take_features(dir, ws);
	if (fill_head(dir, ws, &s, &m) < 0 || read_used(taken, &s) < 0 || s.n == 0)
		goto out;
	read_features(feat, &s);
	remote_session_fingerprint(s.lock, s.toolchain, s.target, s.profile, fp);
	name = remote_session_name(fp);
	earlier = merge_saved(dir, fp, &s);
	others = merge_remote(r, kache_dir, name, fp, &s);
	drop_replaced_parts(dir, &s);
	prune_parts(&s);
	if (r->bundles)
		bundle_write(r, kache_dir, &s, beat); /* before the manifest that names its parts */
	remote_session_encode(&s, &b);
	if (layout_format_check(r, tmpdir, 1) < 0 || r->t->put(r, name, b.p, b.len) != REMOTE_OK) {
		log_warnx("session manifest %s of %s not saved: the remote failed; kept for later",
		    name, m.lock);
		/* failed either way: a stop must not end the job's records then */
		kept = access(used, F_OK) != 0 && rename(taken, used) == 0;
		rc = -1;
		goto out;
	}
	saved(r, dir, fp, &s, &b, m.lock, earlier, others);
	rc = 1;
out:
	if (!kept)
		unlink(taken);
	features_done(dir, ws, feat, kept);
	buf_free(&b);
	remote_session_free(&s);
	free(name);
	free(tmpdir);
	free(taken);
	free(used);
	return rc;
}

#ifdef KACHE_FAULT_INJECTION
/* Test builds: with KACHE_TEST_SAVE_GATE set, a save that took a session's
 * lines makes <gate>.held and waits (20 s at most, beating) for <gate> to
 * appear: a test stops the store meanwhile. Once per process. */
static void
test_gate(void (*beat)(void))
{
	static int passed;
	const char *g = getenv("KACHE_TEST_SAVE_GATE");
	char *held;

	if (g == NULL || passed++ > 0)
		return;
	held = xasprintf("%s.held", g);
	fs_write_atomic(held, "", 0, 0644);
	free(held);
	for (int i = 0; i < 2000 && access(g, F_OK) != 0; i++) {
		if (beat != NULL && i % 10 == 0)
			beat();
		usleep(10000);
	}
}
#else
static void
test_gate(void (*beat)(void))
{
	(void)beat;
}
#endif

/* The store's save lock (run/session-save.lock, an flock): one save at a time,
 * so that a stop's save and its end of the job come after an idle save under
 * way, never between its taking of the lines and its record. wait_ms 0: try
 * once. The lock's fd; -1 held by another save past wait_ms, or no lock file
 * (logged); -2 the store has no run directory (nor sessions to save). */
static int
save_lock(const char *kache_dir, int64_t wait_ms)
{
	char *path = xasprintf("%s/run/session-save.lock", kache_dir);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644), rc;

	if (fd < 0) {
		rc = errno == ENOENT ? -2 : -1; /* no run directory: no sessions either */
		if (rc == -1)
			log_warn("open %s", path);
		free(path);
		return rc;
	}
	if ((rc = fs_flock_wait(fd, clock_ms(), 20)) == -2 && wait_ms > 0) {
		log_info("waiting for another save of the sessions to end");
		rc = fs_flock_wait(fd, clock_ms() + wait_ms, 20);
	}
	if (rc == -1)
		log_warn("lock %s", path);
	else if (rc == -2 && wait_ms > 0)
		log_warnx("another save of the sessions still runs after %llds; "
		          "the keys stay for the next save",
		    (long long)(wait_ms / 1000));
	if (rc < 0) {
		close(fd);
		fd = -1;
	}
	free(path);
	return fd;
}

/* remote_session_save's work, the save lock held. */
static int
save_all(struct remote *r, const char *kache_dir, int64_t idle_ms, void (*beat)(void))
{
	char *dir = xasprintf("%s/%s", kache_dir, JOURNAL_SESSIONS_DIR), *path;
	int saved = 0, failed = 0, rc;
	struct dirent *de;
	struct stat st;
	DIR *d;

	if ((d = opendir(dir)) == NULL) {
		free(dir);
		return 0;
	}
	while ((de = readdir(d)) != NULL) {
		char ws[JOURNAL_WS_LEN + 1];

		if (strlen(de->d_name) != JOURNAL_WS_LEN + 5 ||
		    strcmp(de->d_name + JOURNAL_WS_LEN, ".used") != 0)
			continue;
		snprintf(ws, sizeof ws, "%.*s", JOURNAL_WS_LEN, de->d_name);
		path = xasprintf("%s/%s", dir, de->d_name);
		rc = stat(path, &st);
		free(path);
		if (!journal_ws_valid(ws) || rc < 0 ||
		    (idle_ms > 0 && clock_age_ms(&st.st_mtim) < idle_ms))
			continue;
		rc = save_one(r, kache_dir, dir, ws, beat);
		saved += rc > 0;
		failed += rc < 0;
	}
	closedir(d);
	free(dir);
	return failed ? -1 : saved;
}

/* The save lock taken (an idle save tries once, a save of everything waits),
 * the sessions saved, and with end_job the job's records forgotten after a
 * save that went well. As remote_session_save. */
static int
save_locked(struct remote *r, const char *kache_dir, int64_t idle_ms, void (*beat)(void),
    int end_job)
{
	int fd, n;

	if (r->read_only || r->t == NULL)
		return 0;
	if ((fd = save_lock(kache_dir, idle_ms > 0 ? 0 : REMOTE_SESSION_SAVE_WAIT_MS)) < 0)
		return idle_ms > 0 || fd == -2 ? 0 : -1;
	if ((n = save_all(r, kache_dir, idle_ms, beat)) >= 0 && end_job)
		job_end(kache_dir);
	close(fd);
	return n;
}

int
remote_session_save(struct remote *r, const char *kache_dir, int64_t idle_ms, void (*beat)(void))
{
	return save_locked(r, kache_dir, idle_ms, beat, 0);
}

int
remote_session_save_job(struct remote *r, const char *kache_dir)
{
	return save_locked(r, kache_dir, 0, NULL, 1);
}

void
remote_session_end_job(const char *kache_dir)
{
	int fd = save_lock(kache_dir, REMOTE_SESSION_SAVE_WAIT_MS);

	if (fd < 0)
		return;
	job_end(kache_dir);
	close(fd);
}

/* The end of a job (a stop, after its save): forgets the
 * run/sessions/<fp>.saved records, so that the next job's saves start their
 * union afresh, and the <res>.replaced marks, which every save of the job
 * has taken. */
static void
job_end(const char *kache_dir)
{
	char *dir = xasprintf("%s/%s", kache_dir, JOURNAL_SESSIONS_DIR), *path;
	struct dirent *de;
	DIR *d;

	if ((d = opendir(dir)) == NULL) {
		free(dir);
		return;
	}
	while ((de = readdir(d)) != NULL) {
		const char *suffix = de->d_name + strnlen(de->d_name, HASH_HEX_LEN);

		if (suffix != de->d_name + HASH_HEX_LEN ||
		    (strcmp(suffix, REMOTE_SESSION_SAVED_SUFFIX) != 0 &&
		        strcmp(suffix, REMOTE_SESSION_REPLACED_SUFFIX) != 0))
			continue;
		path = xasprintf("%s/%s", dir, de->d_name);
		if (unlink(path) < 0 && errno != ENOENT)
			log_warn("remove %s", path);
		free(path);
	}
	closedir(d);
	free(dir);
}
