/* A small string -> uint32 map (open addressing, linear probing, FNV-1a):
 * the planner's fingerprint and crate@version indexes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "planner/planner_int.h"

static uint64_t fnv(const char *s);
static size_t slot(const struct smap *m, const char *key);
static void grow(struct smap *m);

static uint64_t
fnv(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

/* The slot holding key, or the empty slot where it would go (cap > 0). */
static size_t
slot(const struct smap *m, const char *key)
{
	size_t i = (size_t)fnv(key) & (m->cap - 1);

	while (m->keys[i] != NULL && strcmp(m->keys[i], key) != 0)
		i = (i + 1) & (m->cap - 1);
	return i;
}

static void
grow(struct smap *m)
{
	struct smap old = *m;

	m->cap = old.cap ? old.cap * 2 : 64;
	m->keys = xcalloc(m->cap, sizeof *m->keys);
	m->vals = xcalloc(m->cap, sizeof *m->vals);
	for (size_t i = 0; i < old.cap; i++) {
		if (old.keys[i] != NULL) {
			size_t j = slot(m, old.keys[i]);

			m->keys[j] = old.keys[i];
			m->vals[j] = old.vals[i];
		}
	}
	free(old.keys);
	free(old.vals);
}

uint32_t *
smap_get(const struct smap *m, const char *key)
{
	size_t i;

	if (m->cap == 0)
		return NULL;
	i = slot(m, key);
	return m->keys[i] != NULL ? &m->vals[i] : NULL;
}

uint32_t *
smap_put(struct smap *m, const char *key, uint32_t val)
{
	size_t i;

	if ((m->n + 1) * 2 > m->cap)
		grow(m);
	i = slot(m, key);
	if (m->keys[i] == NULL) {
		m->keys[i] = xstrdup(key);
		m->n++;
	}
	m->vals[i] = val;
	return &m->vals[i];
}

void
smap_free(struct smap *m)
{
	for (size_t i = 0; i < m->cap; i++)
		free(m->keys[i]);
	free(m->keys);
	free(m->vals);
	memset(m, 0, sizeof *m);
}

void
planner_crate_key(const char *crate, const char *version, char *out)
{
	snprintf(out, 2 * PLANNER_NAME_MAX + 2, "%s@%s", crate, version);
}

void
planner_tp_key(const char *target, const char *profile, char *out)
{
	snprintf(out, 2 * PLANNER_NAME_MAX + 2, "%s/%s", target, profile);
}
