/* `kache monitor`: the terminal, the keys and the loop (see monitor_internal.h).
 *
 * The loop wakes every MON_TICK_MS at most (ncurses' getch timeout): it reads
 * keys, the journal and the PUB socket, and redraws when something changed or
 * a second passed (the thread's numbers). q, Esc, SIGINT, SIGTERM and SIGHUP
 * all end it the same way: endwin() first, so the terminal is restored even
 * while the thread finishes its last step. */
#include "cli/monitor.h"

#include <curses.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/commands.h"
#include "cli/monitor_internal.h"
#include "common/clock.h"
#include "common/config.h"
#include "common/log.h"

#define MON_TICK_MS 100
#define MON_REDRAW_MS 1000
#define KEY_ESC 27

static volatile sig_atomic_t mon_quit;

static void on_signal(int sig);
static void install_signals(void);
static int on_key(struct monitor *m, int ch);
static int filter_key(struct monitor *m, int ch);
static void mon_loop(struct monitor *m);

static void
on_signal(int sig)
{
	(void)sig;
	mon_quit = 1;
}

/* SIGINT, SIGTERM, SIGHUP end the loop (no SA_RESTART: getch returns). */
static void
install_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
}

/* A key while the filter line is being typed: Enter or Esc end it. */
static int
filter_key(struct monitor *m, int ch)
{
	size_t n = strlen(m->filter);

	if (ch == '\n' || ch == KEY_ENTER || ch == KEY_ESC)
		m->filtering = 0;
	else if ((ch == KEY_BACKSPACE || ch == 127 || ch == 8) && n > 0)
		m->filter[n - 1] = '\0';
	else if (ch >= 32 && ch < 127 && n + 1 < sizeof m->filter)
		m->filter[n] = (char)ch, m->filter[n + 1] = '\0';
	return 0;
}

/* One key: 1 to quit. */
static int
on_key(struct monitor *m, int ch)
{
	if (m->filtering)
		return filter_key(m, ch);
	switch (ch) {
	case 'q':
	case 'Q':
	case KEY_ESC: return 1;
	case '\t': m->tab = (m->tab + 1) % TAB_COUNT; break;
	case KEY_BTAB: m->tab = (m->tab + TAB_COUNT - 1) % TAB_COUNT; break;
	case '1':
	case '2':
	case '3':
	case '4': m->tab = ch - '1'; break;
	case 'f':
		m->filtering = 1;
		m->filter[0] = '\0';
		break;
	case 's': m->sort = (m->sort + 1) % 3; break;
	case 'p': m->paused = !m->paused; break;
	default: break;
	}
	return 0;
}

static void
mon_loop(struct monitor *m)
{
	int64_t next_draw = 0;
	int ch, dirty = 1;

	while (!mon_quit) {
		ch = getch();
		if (ch == KEY_RESIZE)
			dirty = 1;
		else if (ch != ERR && on_key(m, ch))
			break;
		else if (ch != ERR)
			dirty = 1;
		if (!m->paused && mon_src_poll(m))
			dirty = 1;
		if (dirty || clock_ms() >= next_draw) {
			if (!m->paused || dirty)
				mon_draw(m);
			next_draw = clock_ms() + MON_REDRAW_MS;
			dirty = 0;
		}
	}
}

int
cmd_monitor(int argc, char **argv)
{
	struct monitor *m;
	struct config *cfg;
	int64_t cap;

	(void)argv;
	if (argc > 1) {
		fprintf(stderr, "usage: kache monitor\n");
		return EXIT_USAGE;
	}
	if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO)) {
		fprintf(stderr,
		    "kache monitor: needs a terminal; `kache stats` and `kache "
		    "supervisor status --json` print the same numbers\n");
		return 1;
	}
	cfg = config_load(NULL);
	m = xcalloc(1, sizeof *m);
	m->dir = xstrdup(config_get(cfg, "cache.dir"));
	cap = config_get_size(cfg, "cache.max_size");
	m->cap = cap > 0 ? (uint64_t)cap : 0;
	config_free(&cfg);
	log_init("monitor", NULL, LOG_LEVEL_OFF); /* nothing may write over the screen */
	install_signals();
	mon_src_start(m);
	if (initscr() == NULL) {
		mon_src_stop(m);
		fprintf(stderr, "kache monitor: cannot set up the terminal (TERM=%s)\n",
		    getenv("TERM") ? getenv("TERM") : "");
		free(m->dir), free(m);
		return 1;
	}
	cbreak();
	noecho();
	keypad(stdscr, TRUE);
	curs_set(0);
	set_escdelay(25);
	timeout(MON_TICK_MS);
	mon_loop(m);
	endwin();
	mon_src_stop(m);
	free(m->dir);
	free(m);
	return 0;
}
