/* The monitor's screen: a header (store, daemon online/offline), the tab bar,
 * and one of four tabs. Everything is drawn into stdscr each time; ncurses
 * sends only what changed, so nothing flickers. */
#include <curses.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/monitor_internal.h"
#include "proto/msg.h"
#include "store/journal.h"

static void draw_header(struct monitor *m, const struct mon_bg *bg);
static void draw_build(struct monitor *m, int row);
static void draw_langs(struct monitor *m, int row);
static void draw_store(struct monitor *m, const struct mon_bg *bg, int row);
static void draw_workers(const struct mon_bg *bg, int row);
static void draw_remote(struct monitor *m, const struct mon_bg *bg, int row);
static int draw_outcomes(json_t *o, int row);
static const char *result_name(int type);
static int by_key(const void *a, const void *b);
static long long jint(const json_t *o, const char *k);
static const char *jstr(const json_t *o, const char *k);

static const char *tab_names[TAB_COUNT] = { "Build", "Store", "Workers", "Remote" };
static int sort_key; /* for by_key: 0 bytes, 1 hits, 2 entries */

static long long
jint(const json_t *o, const char *k)
{
	return (long long)json_integer_value(json_object_get(o, k));
}

static const char *
jstr(const json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));

	return s ? s : "-";
}

static const char *
result_name(int type)
{
	switch (type) {
	case JOURNAL_HIT: return "hit";
	case MON_PREFETCHED_HIT: return "prefetched hit";
	case JOURNAL_REMOTE_HIT: return "remote hit";
	case JOURNAL_MISS: return "miss";
	case JOURNAL_PASS: return "pass-through";
	case JOURNAL_ERROR: return "error";
	case JOURNAL_CORRUPT: return "corrupt";
	default: return "?";
	}
}

static void
draw_header(struct monitor *m, const struct mon_bg *bg)
{
	int x;

	attron(A_BOLD);
	mvprintw(0, 0, "kache monitor");
	attroff(A_BOLD);
	printw("  store %s  ", m->dir);
	if (bg->online)
		printw("daemon: online (pid %lld, %s)", jint(bg->status, "pid"),
		    jstr(bg->status, "version"));
	else
		printw("daemon: offline (%s; reading the journal and the store)",
		    bg->hung ? "hung: holds its lock, no answer" : "not running");
	if (m->paused)
		printw("  [paused]");
	move(1, 0);
	for (int i = 0; i < TAB_COUNT; i++) {
		if (i == m->tab)
			attron(A_REVERSE);
		printw(" %d %s ", i + 1, tab_names[i]);
		if (i == m->tab)
			attroff(A_REVERSE);
		printw(" ");
	}
	x = getcurx(stdscr);
	(void)x;
	printw("  q quit  Tab/1-4 tabs  f filter  s sort  p pause");
	if (m->filtering || m->filter[0])
		mvprintw(2, 0, "filter: %s%s", m->filter, m->filtering ? "_" : "");
}

/* "by language: rust 3 hits 1 misses  c 2 hits 0 misses", the languages seen
 * this session; an empty line before any. */
static void
draw_langs(struct monitor *m, int row)
{
	int col = 0;

	for (int l = 0; l < MON_LANGS; l++) {
		if (m->lang_hits[l] + m->lang_misses[l] == 0)
			continue;
		mvprintw(row, col, "%s%s %llu hits %llu misses",
		    col ? "  " : "by language: ", mon_lang_names[l],
		    (unsigned long long)m->lang_hits[l], (unsigned long long)m->lang_misses[l]);
		col = getcurx(stdscr);
	}
}

/* Compiles, newest first (s: slowest first), those whose crate holds the filter. */
static void
draw_build(struct monitor *m, int row)
{
	char tbuf[16], sz[32];
	size_t idx[MON_RING], n = 0;

	mvprintw(row++, 0,
	    "this session: %llu hits, %llu prefetched, %llu remote hits, %llu misses, %llu "
	    "pass-throughs, %llu errors; time saved %.1f s; restored %.1f MB",
	    (unsigned long long)m->n_hit, (unsigned long long)m->n_prefetched,
	    (unsigned long long)m->n_remote, (unsigned long long)m->n_miss,
	    (unsigned long long)m->n_pass, (unsigned long long)m->n_error,
	    (double)m->ms_saved / 1e3, (double)m->bytes / 1e6);
	draw_langs(m, row++);
	attron(A_BOLD);
	mvprintw(row++, 0, "%-8s %-28s %-4s %-12s %9s %10s  %s", "TIME", "CRATE", "LANG", "RESULT",
	    "MS", "BYTES", "REASON");
	attroff(A_BOLD);
	for (size_t i = 0; i < m->nring; i++) {
		size_t k = (m->head + MON_RING - 1 - i) % MON_RING;

		if (m->filter[0] == '\0' || strstr(m->ring[k].crate, m->filter) != NULL)
			idx[n++] = k;
	}
	for (size_t i = 1; m->sort == 1 && i < n; i++) /* insertion sort by ms, few rows */
		for (size_t j = i; j > 0 && m->ring[idx[j]].ms > m->ring[idx[j - 1]].ms; j--) {
			size_t t = idx[j];
			idx[j] = idx[j - 1], idx[j - 1] = t;
		}
	for (size_t i = 0; i < n && row < LINES; i++) {
		const struct mon_compile *c = &m->ring[idx[i]];
		time_t t = (time_t)(c->ts_ms / 1000);
		struct tm tm;

		if (localtime_r(&t, &tm) == NULL ||
		    strftime(tbuf, sizeof tbuf, "%H:%M:%S", &tm) == 0)
			snprintf(tbuf, sizeof tbuf, "-");
		format_size(c->bytes, sz, sizeof sz);
		mvprintw(row++, 0, "%-8s %-28.28s %-4s %-12s %9llu %10s  %s", tbuf, c->crate,
		    c->lang, result_name(c->type), (unsigned long long)c->ms, sz, c->reason);
	}
	if (n == 0)
		mvprintw(row, 0, "(waiting for compiles: run cargo with RUSTC_WRAPPER=kache)");
}

static int
by_key(const void *a, const void *b)
{
	const struct mon_crate *x = a, *y = b;
	uint64_t u = sort_key == 0 ? x->bytes : sort_key == 1 ? x->hits : x->entries;
	uint64_t v = sort_key == 0 ? y->bytes : sort_key == 1 ? y->hits : y->entries;

	return u < v ? 1 : u > v ? -1 : strcmp(x->name, y->name);
}

static void
draw_store(struct monitor *m, const struct mon_bg *bg, int row)
{
	static const char *keys[] = { "size", "hits", "entries" };
	struct mon_crate top[MON_TOP];
	char a[32], b[32];

	if (!bg->store_ready) {
		mvprintw(row, 0, "%s", bg->store_err[0] ? bg->store_err : "reading the index...");
		return;
	}
	format_size(bg->bytes, a, sizeof a);
	format_size(m->cap, b, sizeof b);
	mvprintw(row++, 0, "size %s of cap %s (%.0f%%), %llu entries  (index read in %lld ms)", a,
	    b, m->cap ? 100.0 * (double)bg->bytes / (double)m->cap : 0.0,
	    (unsigned long long)bg->entries, (long long)bg->store_ms);
	mvprintw(row++, 0,
	    "all time: %llu hits, %llu remote hits, %llu misses, %llu "
	    "pass-throughs; time saved %.1f s",
	    (unsigned long long)bg->hits, (unsigned long long)bg->remote_hits,
	    (unsigned long long)bg->misses, (unsigned long long)bg->passes,
	    (double)bg->ms_saved / 1e3);
	mvprintw(row++, 0, "gc: %s", bg->gc_line[0] ? bg->gc_line : "no gc run logged yet");
	row++;
	memcpy(top, bg->top, bg->ntop * sizeof *top);
	sort_key = m->sort;
	qsort(top, bg->ntop, sizeof *top, by_key);
	attron(A_BOLD);
	mvprintw(row++, 0, "top crates by %s (s: sort)", keys[m->sort]);
	mvprintw(row++, 0, "%-32s %12s %8s %8s", "CRATE", "SIZE", "HITS", "ENTRIES");
	attroff(A_BOLD);
	for (size_t i = 0; i < bg->ntop && row < LINES; i++) {
		if (m->filter[0] && strstr(top[i].name, m->filter) == NULL)
			continue;
		format_size(top[i].bytes, a, sizeof a);
		mvprintw(row++, 0, "%-32.32s %12s %8llu %8llu", top[i].name, a,
		    (unsigned long long)top[i].hits, (unsigned long long)top[i].entries);
	}
}

static void
draw_workers(const struct mon_bg *bg, int row)
{
	json_t *q, *w;
	size_t i;

	if (!bg->online) {
		mvprintw(row, 0,
		    bg->hung ? "the supervisor holds its lock but does not answer: "
		               "`kache daemon log`, then restart it" :
		               "no supervisor runs for this store (`kache supervisor "
		               "start`, or a wrapper starts one on demand)");
		return;
	}
	q = json_object_get(bg->status, "queue");
	mvprintw(row++, 0, "supervisor pid %lld, up %lld s, %s; remote %s", jint(bg->status, "pid"),
	    jint(bg->status, "uptime_s"), jstr(bg->status, "state"), jstr(bg->status, "remote"));
	mvprintw(row++, 0, "queues: %lld uploads queued, %lld uploading, %lld fetches in flight",
	    jint(q, "uploads"), jint(q, "uploading"), jint(q, "fetches"));
	row++;
	attron(A_BOLD);
	mvprintw(row++, 0, "%-10s %5s %8s %-12s %8s %8s %6s %5s  %s", "ROLE", "INDEX", "PID",
	    "STATE", "UPTIME", "RESTARTS", "JOBS", "BUSY", "LAST EXIT");
	attroff(A_BOLD);
	json_array_foreach(json_object_get(bg->status, "workers"), i, w) {
		if (row >= LINES)
			break;
		mvprintw(row++, 0, "%-10s %5lld %8lld %-12s %7llds %8lld %6lld %5lld  %s",
		    jstr(w, "role"), jint(w, "index"), jint(w, "pid"), jstr(w, "state"),
		    jint(w, "uptime_s"), jint(w, "restarts"), jint(w, "jobs_done"),
		    jint(w, "queue"), jstr(w, "last_exit"));
	}
}

/* The supervisor's uploads and fetches by how they ended, since it started. */
static int
draw_outcomes(json_t *o, int row)
{
	json_t *u = json_object_get(o, "uploads"), *f = json_object_get(o, "fetches");

	if (o == NULL)
		return row;
	mvprintw(row++, 0, "fetch breaker: %s", jstr(o, "fetch_breaker"));
	mvprintw(row++, 0, "uploads: %lld ok, %lld failed (retried), %lld refused (remote off)",
	    jint(u, "ok"), jint(u, "failed"), jint(u, "remote_off"));
	mvprintw(row++, 0,
	    "fetches: %lld ok, %lld not in the remote, %lld failed, %lld late, %lld remote off, "
	    "%lld skipped (breaker open)",
	    jint(f, "ok"), jint(f, "miss"), jint(f, "failed"), jint(f, "late"),
	    jint(f, "remote_off"), jint(f, "skipped_breaker_open"));
	return row;
}

static void
draw_remote(struct monitor *m, const struct mon_bg *bg, int row)
{
	json_t *q = json_object_get(bg->status, "queue"), *pf;

	if (bg->online) {
		mvprintw(row++, 0, "remote %s; breaker: %s", jstr(bg->status, "remote"),
		    json_is_true(json_object_get(bg->status, "remote_off")) ?
		        "OPEN (the remote refused an uploader for good: uploads paused)" :
		        "closed");
		mvprintw(row++, 0, "queues: %lld uploads queued, %lld uploading, %lld fetches",
		    jint(q, "uploads"), jint(q, "uploading"), jint(q, "fetches"));
		row = draw_outcomes(json_object_get(bg->status, "outcomes"), row);
	} else {
		mvprintw(row++, 0, "daemon offline: no uploads or fetches run");
	}
	row++;
	mvprintw(row++, 0, "since the monitor started:");
	mvprintw(row++, 2, "uploads done     %llu", (unsigned long long)m->ev[EVENT_UPLOAD]);
	mvprintw(row++, 2, "uploads failed   %llu", (unsigned long long)m->ev[EVENT_UPLOAD_FAILED]);
	mvprintw(row++, 2, "fetches done     %llu", (unsigned long long)m->ev[EVENT_FETCH]);
	mvprintw(row++, 2, "remote hits      %llu (restored from a fetch)",
	    (unsigned long long)m->n_remote);
	if (bg->online && (pf = json_object_get(bg->status, "prefetch")) != NULL) {
		row++;
		mvprintw(row++, 0,
		    "prefetch: %lld sessions (%lld done, %lld lost), %lld packs, %lld "
		    "bytes; %lld hints",
		    jint(pf, "sessions"), jint(pf, "sessions_done"), jint(pf, "sessions_lost"),
		    jint(pf, "packs"), jint(pf, "bytes"), jint(pf, "hints"));
	}
}

void
mon_draw(struct monitor *m)
{
	struct mon_bg bg;
	int row = 4;

	pthread_mutex_lock(&m->mu);
	bg = m->bg;
	bg.status = json_incref(m->bg.status);
	pthread_mutex_unlock(&m->mu);
	erase();
	draw_header(m, &bg);
	if (m->tab == TAB_BUILD)
		draw_build(m, row);
	else if (m->tab == TAB_STORE)
		draw_store(m, &bg, row);
	else if (m->tab == TAB_WORKERS)
		draw_workers(&bg, row);
	else
		draw_remote(m, &bg, row);
	refresh();
	json_decref(bg.status);
}
