/* index_fixture: populates a store through the store API for the CLI tests.
 *
 *   index_fixture STORE entry CRATE SIZE TS   a unique blob of SIZE bytes, an entry,
 *                                             a manifest candidate and a miss record
 *                                             at wall time TS (ms); prints the key
 *   index_fixture STORE hit KEY TS MS BYTES   a hit record
 *   index_fixture STORE pass|error REASON     a pass-through or error record
 *   index_fixture STORE burst N SIZE          N entries, each with an upload intent */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/fs.h"
#include "common/hash.h"
#include "common/util.h"
#include "store/journal.h"
#include "store/store.h"

static int make_entry(struct store *s, const char *crate, uint64_t size, int64_t ts, int intent);

static int
make_entry(struct store *s, const char *crate, uint64_t size, int64_t ts, int intent)
{
	struct store_entry e;
	struct store_output o;
	struct store_candidate c;
	struct journal_event ev;
	unsigned char key[HASH_LEN], inv[HASH_LEN];
	char hex[HASH_HEX_LEN + 1], *src, *data;
	uint64_t got;

	data = xmalloc(size + 1);
	for (uint64_t i = 0; i < size; i++)
		data[i] = (char)random();
	src = xasprintf("%s/tmp/fixture.%ld", store_dir(s), (long)getpid());
	if (fs_write_atomic(src, data, size, 0644) < 0 ||
	    store_blob_put(s, src, 0, 0, o.hash, &got) < 0)
		return 1;
	unlink(src);
	hash_buffer(data, size, key);
	key[0] ^= 0x5a;
	hash_buffer(key, HASH_LEN, inv);
	o.name = "libx.rlib";
	o.size = got;
	o.mode = 0644;
	store_entry_init(&e);
	e.crate = (char *)crate;
	e.outputs = &o;
	e.n_outputs = 1;
	e.created_ms = ts;
	if (store_entry_write(s, key, &e) < 0)
		return 1;
	memset(&c, 0, sizeof c);
	memcpy(c.result, key, HASH_LEN);
	store_manifest_add(s, inv, &c);
	if (intent && store_intent_add(s, key, inv, 0) < 0)
		return 1;
	memset(&ev, 0, sizeof ev);
	ev.type = JOURNAL_MISS;
	ev.ts_ms = ts;
	snprintf(ev.crate, sizeof ev.crate, "%s", crate);
	ev.has_res = ev.has_inv = 1;
	memcpy(ev.res, key, HASH_LEN);
	memcpy(ev.inv, inv, HASH_LEN);
	ev.ms = 1000;
	ev.us = 500;
	if (journal_append(store_dir(s), &ev) < 0)
		return 1;
	hash_to_hex(key, hex);
	printf("%s\n", hex);
	free(data);
	free(src);
	return 0;
}

int
main(int argc, char **argv)
{
	struct journal_event ev;
	struct store *s;
	int rc = 2;

	if (argc < 4 || (s = store_open(argv[1])) == NULL) {
		fprintf(stderr, "usage: index_fixture STORE entry|hit|pass|error ...\n");
		return 2;
	}
	srandom((unsigned)getpid());
	memset(&ev, 0, sizeof ev);
	if (strcmp(argv[2], "entry") == 0 && argc == 6) {
		rc = make_entry(s, argv[3], strtoull(argv[4], NULL, 10), strtoll(argv[5], NULL, 10),
		    0);
	} else if (strcmp(argv[2], "burst") == 0 && argc == 5) {
		rc = 0;
		for (long i = 0; i < strtol(argv[3], NULL, 10) && rc == 0; i++)
			rc = make_entry(s, "burst", strtoull(argv[4], NULL, 10), 1000 + i, 1);
	} else if (strcmp(argv[2], "hit") == 0 && argc == 7) {
		ev.type = JOURNAL_HIT;
		ev.has_res = hash_from_hex(argv[3], ev.res) == 0;
		ev.ts_ms = strtoll(argv[4], NULL, 10);
		ev.ms = strtoull(argv[5], NULL, 10);
		ev.bytes = strtoull(argv[6], NULL, 10);
		ev.us = 100;
		rc = journal_append(argv[1], &ev) < 0;
	} else if ((strcmp(argv[2], "pass") == 0 || strcmp(argv[2], "error") == 0) && argc == 4) {
		ev.type = argv[2][0] == 'p' ? JOURNAL_PASS : JOURNAL_ERROR;
		snprintf(ev.reason, sizeof ev.reason, "%s", argv[3]);
		ev.us = 10;
		rc = journal_append(argv[1], &ev) < 0;
	}
	store_free(&s);
	return rc;
}
