/* `kache flush [--timeout DURATION]`, and the flush `kache supervisor stop`
 * makes before it stops: wait for the background stores still running, have
 * the supervisor queue every intent on disk, and follow the uploads until
 * none is left or the timeout passes. The supervisor does the work in its
 * loop (jobs_flush); this side only asks how far it got, a few times a
 * second, and tells the user. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/config.h"
#include "proto/client.h"
#include "proto/paths.h"
#include "remote/remote.h"
#include "supervisor/sup_internal.h"

#define POLL_MS 200
#define ASK_MS 3000          /* one request: a busy supervisor still answers in time */
#define PLAIN_EVERY_MS 15000 /* not a terminal: a plain line this often */

struct progress {
	long uploaded0, uploaded, left;
	int pending, state;
	char why[200];
};

static int ask(const char *dir, int begin, struct progress *p);
static void show(const struct progress *p, int tty, int final);
static int left_line(const char *dir, const struct progress *p, const char *what);

/* One FLUSH request. 0 with p filled; -1 no answer; -2 the supervisor does
 * not know the request (an older kached). */
static int
ask(const char *dir, int begin, struct progress *p)
{
	struct msg req, rep;
	json_error_t jerr;
	json_t *root;
	int rc = -1;

	msg_init(&req, MSG_FLUSH, 0);
	req.count = begin;
	if (proto_client_request(dir, &req, &rep, clock_ms() + ASK_MS) != PROTO_OK)
		return -1;
	if (rep.type == MSG_ERROR && rep.status == MSG_ERR_UNKNOWN)
		rc = -2;
	if (rep.type == MSG_FLUSH_REPLY && rep.text &&
	    (root = json_loads(rep.text, 0, &jerr)) != NULL) {
		p->state = (int)rep.status;
		p->left = (long)rep.count;
		p->uploaded = (long)json_integer_value(json_object_get(root, "uploaded"));
		p->pending = (int)json_integer_value(json_object_get(root, "pending"));
		snprintf(p->why, sizeof p->why, "%s",
		    json_string_value(json_object_get(root, "why")) ?: "");
		if (begin)
			p->uploaded0 = p->uploaded;
		json_decref(root);
		rc = 0;
	}
	msg_clear(&rep);
	return rc;
}

/* On a terminal one line redrawn in place; otherwise plain lines. */
static void
show(const struct progress *p, int tty, int final)
{
	char stores[64] = "";

	if (p->pending > 0)
		snprintf(stores, sizeof stores, ", %d background store%s running", p->pending,
		    p->pending == 1 ? "" : "s");
	fprintf(stderr, "%sflush: %ld uploaded, %ld left%s%s", tty ? "\r" : "",
	    p->uploaded - p->uploaded0, p->left, stores, tty ? "\033[K" : "\n");
	if (tty && final)
		fputc('\n', stderr);
	fflush(stderr);
}

/* The line that says what did not make it, and that it is not lost. */
static int
left_line(const char *dir, const struct progress *p, const char *what)
{
	fprintf(stderr, "kache flush: %s: %ld upload intent%s left", what, p->left,
	    p->left == 1 ? "" : "s");
	if (p->pending > 0)
		fprintf(stderr, " (%d background store%s still running)", p->pending,
		    p->pending == 1 ? "" : "s");
	fprintf(stderr, "; they stay on disk in %s/intents for the next run\n", dir);
	return 1;
}

/* Flushes the running supervisor of dir, for at most timeout_ms. 0 when
 * everything reached the remote, 1 when something is left (said on stderr). */
int
sup_flush(const char *dir, int64_t timeout_ms)
{
	struct progress p = { 0 };
	int64_t start = clock_ms(), deadline = start + timeout_ms, next_plain = start;
	int tty = isatty(2), r = ask(dir, 1, &p);
	char what[256];

	if (r == -2) {
		fprintf(stderr,
		    "kache flush: the running supervisor is too old to flush; "
		    "restart it (`kache supervisor restart`), then flush again\n");
		return 1;
	}
	if (r == 0 && p.state == FLUSH_NO_REMOTE) {
		printf("flush: no remote configured (remote.type = none); nothing to upload\n");
		return 0;
	}
	while (r == 0 && p.state == FLUSH_BUSY && clock_ms() < deadline) {
		if (tty || clock_ms() >= next_plain) {
			show(&p, tty, 0);
			next_plain = clock_ms() + PLAIN_EVERY_MS;
		}
		usleep((useconds_t)(clock_left_ms(deadline) < POLL_MS ? clock_left_ms(deadline) :
		                                                        POLL_MS) *
		    1000);
		r = ask(dir, 0, &p);
	}
	if (r != 0)
		return left_line(dir, &p, "the supervisor stopped answering");
	show(&p, tty, 1);
	if (p.state == FLUSH_DONE)
		return 0;
	if (p.state == FLUSH_STUCK)
		return left_line(dir, &p, p.why);
	snprintf(what, sizeof what, "timed out after %.1f s", (double)timeout_ms / 1000);
	return left_line(dir, &p, what);
}

/* The flush timeout: --timeout, else remote.flush_timeout. -1 when malformed
 * (said on stderr). */
int64_t
sup_flush_timeout(const struct config *cfg, const char *flag)
{
	const char *v = flag ? flag : config_get(cfg, "remote.flush_timeout");
	int64_t ms;

	if (parse_duration(v, &ms) == -1) {
		fprintf(stderr, "kache: bad %s '%s': use a duration such as 90s, 10m or 1h\n",
		    flag ? "--timeout" : "remote.flush_timeout", v);
		return -1;
	}
	return ms;
}

int
supervisor_flush_cmd(int argc, char **argv)
{
	struct config *cfg;
	const char *flag = NULL;
	int64_t timeout;
	int rc = 2;

	if (argc == 3 && strcmp(argv[1], "--timeout") == 0)
		flag = argv[2];
	else if (argc != 1) {
		fprintf(stderr, "usage: kache flush [--timeout DURATION]\n");
		return 2;
	}
	cfg = config_load_warn(CONFIG_WARN_NONE, NULL);
	if ((timeout = sup_flush_timeout(cfg, flag)) < 0)
		goto out;
	rc = 0;
	if (!config_has_remote(cfg))
		printf("flush: no remote configured (remote.type = none); nothing to upload\n");
	else if ((rc = sup_start(config_get(cfg, "cache.dir"), 1)) == 0)
		rc = sup_flush(config_get(cfg, "cache.dir"), timeout);
out:
	config_free(&cfg);
	return rc;
}
