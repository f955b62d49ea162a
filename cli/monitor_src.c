/* The monitor's sources (see monitor_internal.h).
 *
 * Build: the wrappers' journal (<store>/journal/events), tailed from its end
 * at start (no history is read, so a journal of any size costs nothing),
 * following a rotation (the indexer renames the file: the old descriptor is
 * read to its end, then the new file from 0). Records go through
 * journal_parse, which checks every length and field.
 * Remote: MSG_EVENTs from the supervisor's PUB socket, each frame size-capped
 * (ZMQ_MAXMSGSIZE) and decoded by msg_decode; a supervisor that comes and
 * goes is reconnected to by ZeroMQ itself.
 * Store, Workers: a thread, once a second, asks the supervisor for its status
 * (answer within MON_STATUS_MS, or it counts as hung) and every
 * MON_STORE_EVERY_MS (or four times as long as the last read took) reads the
 * index read-only (no lock, nothing written:
 * with or without a supervisor), so that neither a hung supervisor nor a
 * scan of 100k entries ever holds up the screen. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include "cli/monitor_internal.h"
#include "cli/report.h"
#include "common/clock.h"
#include "common/log.h"
#include "index/index.h"
#include "proto/client.h"
#include "proto/paths.h"
#include "proto/zio.h"
#include "store/journal.h"

#define MON_STATUS_MS 1000
#define MON_STORE_EVERY_MS 5000
#define MON_JOURNAL_CHUNK 65536
#define MON_PEND_MAX (4 * JOURNAL_MAX_RECORD)

static void on_record(const struct journal_event *ev, void *arg);
static int journal_open(struct monitor *m, int at_end);
static int journal_drain(struct monitor *m, int fd);
static int events_drain(struct monitor *m);
static void *bg_main(void *arg);
static void bg_status(struct monitor *m);
static void bg_store(struct monitor *m);
static int top_add(const struct index_entry_info *e, void *arg);
static int by_bytes(const void *a, const void *b);
static void gc_line(const char *dir, char *out, size_t n);

const char *const mon_lang_names[MON_LANGS] = { "rust", "c", "c++", "asm" };

/* Counts one compile and keeps it in the ring. */
static void
on_record(const struct journal_event *ev, void *arg)
{
	struct monitor *m = arg;
	struct mon_compile *c = &m->ring[m->head];
	const char *kind = report_hit_kind(m->imported, ev);

	if (ev->type == JOURNAL_IMPORT)
		return; /* not a compile: noted for the hit that uses it */
	c->ts_ms = ev->ts_ms;
	c->type = kind && strcmp(kind, "prefetched") == 0 ? MON_PREFETCHED_HIT : (int)ev->type;
	snprintf(c->crate, sizeof c->crate, "%s", ev->crate[0] ? ev->crate : "-");
	snprintf(c->reason, sizeof c->reason, "%s", ev->reason);
	snprintf(c->lang, sizeof c->lang, "%s", journal_lang(ev));
	for (int l = 0; l < MON_LANGS; l++)
		if (strcmp(c->lang, mon_lang_names[l]) == 0) {
			m->lang_hits[l] +=
			    ev->type == JOURNAL_HIT || ev->type == JOURNAL_REMOTE_HIT;
			m->lang_misses[l] += ev->type == JOURNAL_MISS;
		}
	c->ms = ev->ms;
	c->bytes = ev->bytes;
	m->head = (m->head + 1) % MON_RING;
	if (m->nring < MON_RING)
		m->nring++;
	if (ev->type == JOURNAL_HIT || ev->type == JOURNAL_REMOTE_HIT) {
		*(c->type == MON_PREFETCHED_HIT ? &m->n_prefetched :
		        ev->type == JOURNAL_HIT ? &m->n_hit :
		                                  &m->n_remote) += 1;
		m->ms_saved += ev->ms;
		m->bytes += ev->bytes;
	} else if (ev->type == JOURNAL_MISS) {
		m->n_miss++;
		m->compile_ms += ev->ms;
	} else if (ev->type == JOURNAL_PASS) {
		m->n_pass++;
	} else if (ev->type == JOURNAL_ERROR) {
		m->n_error++;
	}
}

/* Opens the live journal, at its end when at_end (the start), else at 0 (a
 * new file after a rotation). 0, or -1 when there is none yet. */
static int
journal_open(struct monitor *m, int at_end)
{
	char *path = xasprintf("%s/journal/events", m->dir);
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

	free(path);
	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (at_end)
		lseek(fd, 0, SEEK_END);
	m->jfd = fd;
	m->jino = st.st_ino;
	buf_reset(&m->jpend);
	return 0;
}

/* Reads what fd has new (at most a few chunks a call, so a burst never
 * freezes the screen), parses the whole records, keeps a torn tail. 1 when
 * anything was read. */
static int
journal_drain(struct monitor *m, int fd)
{
	char chunk[MON_JOURNAL_CHUNK];
	size_t used;
	ssize_t n;
	int got = 0;

	for (int i = 0; i < 16 && (n = read(fd, chunk, sizeof chunk)) > 0; i++) {
		buf_add(&m->jpend, chunk, (size_t)n);
		used = journal_parse(m->jpend.p, m->jpend.len, on_record, m);
		memmove(m->jpend.p, m->jpend.p + used, m->jpend.len - used);
		m->jpend.len -= used;
		if (m->jpend.len > MON_PEND_MAX)
			buf_reset(&m->jpend); /* cannot be a torn record: damage */
		got = 1;
	}
	return got;
}

/* MSG_EVENTs waiting on the SUB socket, each checked by msg_decode. */
static int
events_drain(struct monitor *m)
{
	struct zio_frames f;
	struct msg ev;
	int got = 0;

	for (int i = 0; i < 1000 && m->sub != NULL && zio_recv(m->sub, &f) == 0; i++) {
		if (f.n == 1 && !f.truncated && msg_decode(f.data[0], f.len[0], &ev) == 0) {
			if (ev.type == MSG_EVENT && ev.status > 0 &&
			    ev.status < (int64_t)(sizeof m->ev / sizeof m->ev[0]))
				m->ev[ev.status]++;
			msg_clear(&ev);
			got = 1;
		}
		zio_frames_free(&f);
	}
	return got;
}

int
mon_src_poll(struct monitor *m)
{
	char *path;
	struct stat st;
	int got = events_drain(m);

	if (m->jfd < 0) {
		if (journal_open(m, 0) < 0)
			return got;
	}
	got |= journal_drain(m, m->jfd);
	path = xasprintf("%s/journal/events", m->dir);
	if (stat(path, &st) == 0 && st.st_ino != m->jino) {
		/* rotated: finish the old file, then take the new one from 0 */
		got |= journal_drain(m, m->jfd);
		close(m->jfd);
		m->jfd = -1;
		if (journal_open(m, 0) == 0)
			got |= journal_drain(m, m->jfd);
	}
	free(path);
	return got;
}

void
mon_src_start(struct monitor *m)
{
	struct proto_paths p;
	int linger = 0;
	int64_t max = MSG_MAX_SIZE;

	m->jfd = -1;
	buf_init(&m->jpend);
	m->imported = json_object();
	journal_open(m, 1);
	pthread_mutex_init(&m->mu, NULL);
	if (proto_paths_init(&p, m->dir) == 0 && (m->zctx = zmq_ctx_new()) != NULL &&
	    (m->sub = zmq_socket(m->zctx, ZMQ_SUB)) != NULL) {
		zmq_setsockopt(m->sub, ZMQ_LINGER, &linger, sizeof linger);
		zmq_setsockopt(m->sub, ZMQ_MAXMSGSIZE, &max, sizeof max);
		zmq_setsockopt(m->sub, ZMQ_SUBSCRIBE, "", 0);
		zmq_connect(m->sub, p.pub);
	}
	m->th_started = pthread_create(&m->th, NULL, bg_main, m) == 0;
}

/* Stops the thread (it notices within one step: a status request of at most
 * MON_STATUS_MS, or one entry of an index scan) and closes everything. */
void
mon_src_stop(struct monitor *m)
{
	m->stop = 1;
	if (m->th_started)
		pthread_join(m->th, NULL);
	if (m->sub)
		zmq_close(m->sub);
	if (m->zctx)
		zmq_ctx_term(m->zctx);
	if (m->jfd >= 0)
		close(m->jfd);
	buf_free(&m->jpend);
	json_decref(m->imported);
	json_decref(m->bg.status);
	pthread_mutex_destroy(&m->mu);
}

static void *
bg_main(void *arg)
{
	struct monitor *m = arg;
	int64_t next_store = 0;

	while (!m->stop) {
		bg_status(m);
		if (!m->stop && clock_ms() >= next_store) {
			int64_t t0 = clock_ms(), took;

			bg_store(m);
			/* a large store is read again less often: at most a fifth of the time */
			took = clock_ms() - t0;
			next_store = clock_ms() +
			    (took * 4 > MON_STORE_EVERY_MS ? took * 4 : MON_STORE_EVERY_MS);
		}
		for (int i = 0; i < 10 && !m->stop; i++)
			usleep(100 * 1000);
	}
	return NULL;
}

/* The supervisor's status: online, hung (lock held, no answer), or stopped. */
static void
bg_status(struct monitor *m)
{
	struct proto_paths p;
	struct msg req, rep;
	json_error_t jerr;
	json_t *doc = NULL;
	int running = proto_paths_init(&p, m->dir) == 0 && proto_supervisor_running(&p);

	if (running) {
		msg_init(&req, MSG_STATUS, 0);
		req.epoch = proto_client_epoch();
		if (proto_client_request(m->dir, &req, &rep, clock_ms() + MON_STATUS_MS) ==
		        PROTO_OK &&
		    rep.type == MSG_STATUS_REPLY && rep.text != NULL)
			doc = json_loads(rep.text, 0, &jerr);
		msg_clear(&rep);
		msg_clear(&req);
	}
	pthread_mutex_lock(&m->mu);
	json_decref(m->bg.status);
	m->bg.status = doc;
	m->bg.online = doc != NULL;
	m->bg.hung = running && doc == NULL;
	pthread_mutex_unlock(&m->mu);
}

/* Aggregates one entry into the crate table (arg: struct mon_bg). */
struct top_ctx {
	struct monitor *m;
	struct mon_crate *c;
	size_t n, cap;
};

static int
top_add(const struct index_entry_info *e, void *arg)
{
	struct top_ctx *t = arg;
	const char *name = e->crate[0] ? e->crate : "-";
	size_t i;

	for (i = 0; i < t->n && strcmp(t->c[i].name, name) != 0; i++)
		;
	if (i == t->n) {
		if (t->n == t->cap) {
			t->cap = t->cap ? t->cap * 2 : 64;
			t->c = xrealloc(t->c, t->cap * sizeof *t->c);
		}
		memset(&t->c[i], 0, sizeof t->c[i]);
		snprintf(t->c[i].name, sizeof t->c[i].name, "%s", name);
		t->n++;
	}
	t->c[i].bytes += e->size;
	t->c[i].hits += e->hits;
	t->c[i].entries++;
	return t->m->stop;
}

static int
by_bytes(const void *a, const void *b)
{
	const struct mon_crate *x = a, *y = b;

	return x->bytes < y->bytes ? 1 : x->bytes > y->bytes ? -1 : 0;
}

/* The store per its index, opened read-only (works beside a supervisor and
 * without one), and the indexer's last gc line. */
static void
bg_store(struct monitor *m)
{
	struct top_ctx t = { m, NULL, 0, 0 };
	struct index_stats st;
	struct index *ix;
	char gc[200] = "";
	int64_t t0 = clock_ms();
	int ok = 0;

	memset(&st, 0, sizeof st);
	if ((ix = index_open_readonly(m->dir)) != NULL) {
		ok = index_stats(ix, &st) == 0 && index_list(ix, NULL, top_add, &t) == 0;
		index_free(&ix);
	}
	gc_line(m->dir, gc, sizeof gc);
	if (t.n > 1)
		qsort(t.c, t.n, sizeof *t.c, by_bytes);
	pthread_mutex_lock(&m->mu);
	if (ok) {
		m->bg.store_ready = 1;
		m->bg.store_err[0] = '\0';
		m->bg.entries = st.entries, m->bg.bytes = st.store_bytes;
		m->bg.hits = st.hits, m->bg.remote_hits = st.remote_hits;
		m->bg.misses = st.misses, m->bg.passes = st.passes, m->bg.ms_saved = st.ms_saved;
		m->bg.ntop = t.n < MON_TOP ? t.n : MON_TOP;
		if (m->bg.ntop > 0) /* t.c is NULL on an empty store */
			memcpy(m->bg.top, t.c, m->bg.ntop * sizeof *t.c);
		m->bg.store_ms = clock_ms() - t0;
	} else if (!m->stop) {
		snprintf(m->bg.store_err, sizeof m->bg.store_err,
		    "the index of %s cannot be read (none yet? `kache stats` builds it)", m->dir);
	}
	snprintf(m->bg.gc_line, sizeof m->bg.gc_line, "%s", gc);
	pthread_mutex_unlock(&m->mu);
	index_stats_clear(&st);
	free(t.c);
}

/* The last "gc: ..." line of the indexer's log, from its last 16 KiB. */
static void
gc_line(const char *dir, char *out, size_t n)
{
	char *path = xasprintf("%s/logs/indexer.0.log", dir);

	log_last_line(path, "gc: removed", out, n);
	free(path);
}
