/* The supervisor's outgoing messages to clients and monitors: replies on the
 * control socket, events on the PUB socket, and the rate-limited log of bad
 * messages on either socket. Below every other part, so that
 * jobs, routes and the loop all answer through it. */
#include <stdarg.h>
#include <stdio.h>

#include "common/clock.h"
#include "common/log.h"
#include "supervisor/sup_internal.h"

void
sup_reply(struct supervisor *s, const void *ident, size_t identlen, const struct msg *m)
{
	if (zio_send(s->ctl, ident, identlen, m) == -1)
		log_debug("reply %s not sent (client gone?)", msg_type_name(m->type));
}

void
sup_error_reply(struct supervisor *s, const void *ident, size_t identlen, uint64_t id, int code,
    const char *text)
{
	struct msg rep;

	msg_init(&rep, MSG_ERROR, id);
	rep.status = code;
	msg_set_text(&rep, text);
	sup_reply(s, ident, identlen, &rep);
	msg_clear(&rep);
}

void
sup_publish(struct supervisor *s, int event, const char *key)
{
	struct msg m;

	msg_init(&m, MSG_EVENT, 0);
	m.status = event;
	snprintf(m.key, sizeof m.key, "%s", key);
	zio_send(s->pub, NULL, 0, &m);
}

void
sup_bad_message(struct supervisor *s, const char *fmt, ...)
{
	char line[256];
	va_list ap;

	if (clock_ms() < s->bad_next) {
		s->bad_suppressed++;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	log_warnx("%s (further bad messages are counted, not logged, for %d s)", line,
	    SUP_BADLOG_MS / 1000);
	s->bad_next = clock_ms() + SUP_BADLOG_MS;
}

void
sup_bad_summary(struct supervisor *s, int64_t now)
{
	if (s->bad_suppressed == 0 || now < s->bad_next)
		return;
	log_warnx("suppressed %ld more bad messages in the last %d s", s->bad_suppressed,
	    SUP_BADLOG_MS / 1000);
	s->bad_suppressed = 0;
	s->bad_next = now + SUP_BADLOG_MS;
}
