/* libFuzzer target: the planner's request decoders (planner/planner_json.c),
 * fed by any client holding the token. The first byte picks the decoder
 * (even: a manifest, odd: a build intent). What decodes must hold only valid
 * names and keys within the bounds, never a '-' in a crate name, and a
 * manifest must encode to JSON that decodes and encodes again to the same
 * bytes (what the planner stores is what it reads back after a restart). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "planner/planner.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n);

static void check_name(const char *s, int may_be_empty);
static void check_manifest(const struct planner_manifest *m);

static void
check_name(const char *s, int may_be_empty)
{
	size_t n = strlen(s);

	if ((n == 0 && !may_be_empty) || n > PLANNER_NAME_MAX ||
	    strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.+-") != n)
		abort();
}

static void
check_manifest(const struct planner_manifest *m)
{
	struct planner_manifest again;
	char why[256], *a, *b;

	if (m->n > PLANNER_MAX_KEYS || strlen(m->fp) != HASH_HEX_LEN)
		abort();
	for (size_t i = 0; i < m->n; i++) {
		check_name(m->k[i].crate, 0);
		check_name(m->k[i].version, 1);
		if (strchr(m->k[i].crate, '-') || strlen(m->k[i].res) != HASH_HEX_LEN)
			abort();
	}
	a = planner_encode_manifest(m);
	if (planner_decode_manifest(a, strlen(a), &again, why, sizeof why) < 0)
		abort();
	b = planner_encode_manifest(&again);
	if (strcmp(a, b) != 0)
		abort();
	planner_manifest_free(&again);
	free(a);
	free(b);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t n)
{
	struct planner_manifest m;
	struct planner_intent in;
	char why[256];

	if (n == 0)
		return 0;
	why[0] = '\0';
	if ((data[0] & 1) == 0) {
		if (planner_decode_manifest((const char *)data + 1, n - 1, &m, why, sizeof why) < 0) {
			if (why[0] == '\0')
				abort();
			return 0;
		}
		check_manifest(&m);
		planner_manifest_free(&m);
		return 0;
	}
	if (planner_decode_intent((const char *)data + 1, n - 1, &in, why, sizeof why) < 0) {
		if (why[0] == '\0')
			abort();
		return 0;
	}
	for (size_t i = 0; i < in.n; i++) {
		check_name(in.c[i].name, 0);
		check_name(in.c[i].version, 1);
	}
	planner_intent_free(&in);
	return 0;
}
