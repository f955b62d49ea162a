/* The supervisor's outgoing messages to clients and monitors: replies on the
 * control socket and events on the PUB socket. Below every other part, so that
 * jobs, routes and the loop all answer through it. */
#include <stdio.h>

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
