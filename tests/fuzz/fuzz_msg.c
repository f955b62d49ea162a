/* libFuzzer target: one message frame from a socket (proto/msg.c). A frame that
 * decodes must encode again and decode to the same message. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t n)
{
	struct msg m, again;
	struct buf b;

	if (msg_decode(data, n, &m) != MSG_DECODE_OK) {
		(void)msg_type_name(m.type);
		msg_clear(&m);
		return 0;
	}
	(void)msg_type_name(m.type);
	buf_init(&b);
	if (msg_encode(&m, &b) < 0)
		abort(); /* a decoded message must fit its own limits */
	if (msg_decode(b.p, b.len, &again) != MSG_DECODE_OK || again.type != m.type ||
	    again.id != m.id || strcmp(again.key, m.key) != 0 || strcmp(again.role, m.role) != 0 ||
	    (m.text == NULL) != (again.text == NULL) ||
	    (m.text != NULL && strcmp(m.text, again.text) != 0))
		abort();
	msg_clear(&again);
	msg_clear(&m);
	buf_free(&b);
	return 0;
}
