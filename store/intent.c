/* Upload intents: $KACHE_DIR/intents/<result hex>, each holding the invocation
 * key in hex, then " replace" for a result compiled again under cache.recache
 * (the remote's pack of the same result is put over). Durable (temp + rename), so an upload
 * survives a supervisor or uploader that is down or dies; the only place that spells their path. */
#include "store/store.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/fs.h"
#include "common/log.h"

char *
store_intent_path(const char *kache_dir, const char *res_hex)
{
	if (res_hex == NULL)
		return xasprintf("%s/" STORE_INTENTS, kache_dir);
	return xasprintf("%s/" STORE_INTENTS "/%s", kache_dir, res_hex);
}

#define REPLACE_WORD " replace"

int
store_intent_add(struct store *s, const unsigned char res[HASH_LEN],
    const unsigned char inv[HASH_LEN], int replace)
{
	char hex[HASH_HEX_LEN + 1], text[HASH_HEX_LEN + sizeof REPLACE_WORD];
	char *p;
	int rc;

	hash_to_hex(res, hex);
	hash_to_hex(inv, text);
	if (replace)
		memcpy(text + HASH_HEX_LEN, REPLACE_WORD, sizeof REPLACE_WORD);
	p = store_intent_path(store_dir(s), hex);
	rc = fs_write_atomic(p, text, strlen(text), store_mode(s, 0644));
	free(p);
	return rc;
}

int
store_intent_read(const char *kache_dir, const char *res_hex, char inv_hex[HASH_HEX_LEN + 1],
    int *replace)
{
	struct buf b;
	char *p;
	int rc = -1;

	if (!hash_hex_valid(res_hex))
		return -1;
	p = store_intent_path(kache_dir, res_hex);
	buf_init(&b);
	if (fs_read_file(p, &b, 256) == 0 &&
	    (b.len == HASH_HEX_LEN ||
	        (b.len == HASH_HEX_LEN + strlen(REPLACE_WORD) &&
	            memcmp(b.p + HASH_HEX_LEN, REPLACE_WORD, strlen(REPLACE_WORD)) == 0))) {
		memcpy(inv_hex, b.p, HASH_HEX_LEN);
		inv_hex[HASH_HEX_LEN] = '\0';
		*replace = b.len > HASH_HEX_LEN;
		rc = hash_hex_valid(inv_hex) ? 0 : -1;
	}
	buf_free(&b);
	free(p);
	return rc;
}

int
store_intent_remove(const char *kache_dir, const char *res_hex)
{
	char *p = store_intent_path(kache_dir, res_hex);
	int rc = 0;

	if (unlink(p) == -1 && errno != ENOENT) {
		log_warn("unlink %s", p);
		rc = -1;
	}
	free(p);
	return rc;
}
