/* libFuzzer target: a session manifest (remote/session.c), written by any
 * machine sharing the remote. What parses must hold only safe names and
 * keys, parts that are hex and keys' parts that are among them, and its encoding must decode and
 * encode again to the same bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "remote/session.h"
#include "store/pack.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t n)
{
	struct remote_session s;
	struct buf b, c;
	char why[160];

	if (remote_session_parse((const char *)data, n, &s, why, sizeof why) < 0) {
		if (why[0] == '\0')
			abort();
		return 0;
	}
	if (s.n > REMOTE_SESSION_MAX_KEYS || !hash_hex_valid(s.lock))
		abort();
	for (size_t i = 0; i < s.n; i++)
		if (!pack_crate_name_ok(s.k[i].crate) || !hash_hex_valid(s.k[i].res) ||
		    s.k[i].part < -1 || s.k[i].part >= (int)s.nparts)
			abort();
	for (size_t i = 0; i < s.nparts; i++) /* a part's name is bundles/<this> */
		if (!hash_hex_valid(s.parts[i]))
			abort();
	/* what decodes encodes to an object that decodes to the same encoding */
	buf_init(&b);
	buf_init(&c);
	remote_session_encode(&s, &b);
	remote_session_free(&s);
	if (remote_session_parse(b.p, b.len, &s, why, sizeof why) < 0)
		abort();
	remote_session_encode(&s, &c);
	if (b.len != c.len || memcmp(b.p, c.p, b.len) != 0)
		abort();
	buf_free(&b);
	buf_free(&c);
	remote_session_free(&s);
	return 0;
}
