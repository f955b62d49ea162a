/* The planner's JSON: request decoders (every byte from a client checked
 * before it is kept) and the encoders of stored manifests and plans. */
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "planner/planner.h"

static void why_set(char *why, size_t whylen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int name_ok(const char *s, int crate);
static int get_name(json_t *o, const char *field, char *out, int optional, int crate, char *why,
    size_t whylen);
static int get_hex(json_t *o, const char *field, char *out, int optional, char *why, size_t whylen);
static int get_uint(json_t *o, const char *field, uint64_t *out, int optional, char *why,
    size_t whylen);
static json_t *get_array(json_t *o, const char *field, size_t max, int optional, char *why,
    size_t whylen);
static int decode_key(json_t *o, size_t i, struct planner_key *k, char *why, size_t whylen);
static int decode_features(json_t *root, struct strv *f, char *why, size_t whylen);
static int decode_head(json_t *root, char *fp, char *toolchain, char *target, char *profile,
    char *why, size_t whylen);
static int decode_keys(json_t *root, struct planner_manifest *m, char *why, size_t whylen);
static int decode_crates(json_t *root, struct planner_intent *in, char *why, size_t whylen);
static json_t *load(const char *d, size_t n, char *why, size_t whylen);
static void set_name(json_t *o, const char *field, const char *s);
static json_t *key_json(const struct planner_key *k);

static void
why_set(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
}

/* [A-Za-z0-9_.+-]{1,64}; a crate name [A-Za-z0-9_-]{1,64}. */
static int
name_ok(const char *s, int crate)
{
	static const char ok[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-";
	size_t n = strlen(s);

	if (n == 0 || n > PLANNER_NAME_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (strchr(ok, s[i]) == NULL && (crate || (s[i] != '.' && s[i] != '+')))
			return 0;
	return 1;
}

/* A string field holding a name (optional: absent or null gives ""). */
static int
get_name(json_t *o, const char *field, char *out, int optional, int crate, char *why, size_t whylen)
{
	json_t *v = json_object_get(o, field);
	const char *s;

	out[0] = '\0';
	if (v == NULL || json_is_null(v)) {
		if (optional)
			return 0;
		why_set(why, whylen, "field '%s' is missing", field);
		return -1;
	}
	if (!json_is_string(v) || strlen(s = json_string_value(v)) != json_string_length(v) ||
	    !name_ok(s, crate)) {
		why_set(why, whylen, "field '%s' must be a string of 1 to 64 of [A-Za-z0-9_%s-]",
		    field, crate ? "" : ".+");
		return -1;
	}
	memcpy(out, s, strlen(s) + 1); /* name_ok: at most 64 bytes, out holds 65 */
	if (crate)
		for (char *p = out; *p; p++)
			if (*p == '-')
				*p = '_';
	return 0;
}

/* A field of 64 hex digits, lowercased (optional: absent or null gives ""). */
static int
get_hex(json_t *o, const char *field, char *out, int optional, char *why, size_t whylen)
{
	json_t *v = json_object_get(o, field);
	const char *s = json_is_string(v) ? json_string_value(v) : NULL;

	out[0] = '\0';
	if (optional && (v == NULL || json_is_null(v)))
		return 0;

	if (s == NULL || strlen(s) != HASH_HEX_LEN ||
	    strspn(s, "0123456789abcdefABCDEF") != HASH_HEX_LEN) {
		why_set(why, whylen, "field '%s' must be 64 hex digits", field);
		return -1;
	}
	for (size_t i = 0; i <= HASH_HEX_LEN; i++)
		out[i] = (char)(s[i] >= 'A' && s[i] <= 'F' ? s[i] - 'A' + 'a' : s[i]);
	return 0;
}

static int
get_uint(json_t *o, const char *field, uint64_t *out, int optional, char *why, size_t whylen)
{
	json_t *v = json_object_get(o, field);

	*out = 0;
	if (v == NULL && optional)
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < 0) {
		why_set(why, whylen, "field '%s' must be a non-negative integer", field);
		return -1;
	}
	*out = (uint64_t)json_integer_value(v);
	return 0;
}

static json_t *
get_array(json_t *o, const char *field, size_t max, int optional, char *why, size_t whylen)
{
	json_t *v = json_object_get(o, field);

	if (v == NULL && optional)
		return json_array();
	if (!json_is_array(v)) {
		why_set(why, whylen, "field '%s' must be an array", field);
		return NULL;
	}
	if (json_array_size(v) > max) {
		why_set(why, whylen, "field '%s' has more than %zu elements", field, max);
		return NULL;
	}
	return json_incref(v);
}

static int
decode_key(json_t *o, size_t i, struct planner_key *k, char *why, size_t whylen)
{
	char sub[256];
	uint64_t order;

	if (!json_is_object(o)) {
		why_set(why, whylen, "keys[%zu] must be an object", i);
		return -1;
	}
	if (get_hex(o, "key", k->res, 0, sub, sizeof sub) < 0 ||
	    get_hex(o, "part", k->part, 1, sub, sizeof sub) < 0 ||
	    get_name(o, "crate", k->crate, 0, 1, sub, sizeof sub) < 0 ||
	    get_name(o, "version", k->version, 1, 0, sub, sizeof sub) < 0 ||
	    get_uint(o, "compile_ms", &k->compile_ms, 1, sub, sizeof sub) < 0 ||
	    get_uint(o, "bytes", &k->bytes, 0, sub, sizeof sub) < 0 ||
	    get_uint(o, "order", &order, 1, sub, sizeof sub) < 0) {
		why_set(why, whylen, "keys[%zu]: %s", i, sub);
		return -1;
	}
	k->order = json_object_get(o, "order") ?
	    (uint32_t)(order > UINT32_MAX ? UINT32_MAX : order) :
	    (uint32_t)i;
	return 0;
}

static int
decode_features(json_t *root, struct strv *f, char *why, size_t whylen)
{
	json_t *a = get_array(root, "features", PLANNER_MAX_FEATURES, 1, why, whylen), *v;
	size_t i;

	if (a == NULL)
		return -1;
	json_array_foreach(a, i, v) {
		const char *s = json_is_string(v) ? json_string_value(v) : NULL;

		if (s == NULL || strlen(s) == 0 || strlen(s) > 128 ||
		    strlen(s) != json_string_length(v)) {
			why_set(why, whylen, "features[%zu] must be a string of 1 to 128 bytes", i);
			json_decref(a);
			return -1;
		}
		strv_push(f, s);
	}
	json_decref(a);
	return 0;
}

/* The fields a manifest and an intent share. */
static int
decode_head(json_t *root, char *fp, char *toolchain, char *target, char *profile, char *why,
    size_t whylen)
{
	if (get_hex(root, "fingerprint", fp, 0, why, whylen) < 0 ||
	    get_name(root, "toolchain", toolchain, 1, 0, why, whylen) < 0 ||
	    get_name(root, "target", target, 1, 0, why, whylen) < 0 ||
	    get_name(root, "profile", profile, 1, 0, why, whylen) < 0)
		return -1;
	return 0;
}

static int
decode_keys(json_t *root, struct planner_manifest *m, char *why, size_t whylen)
{
	json_t *a = get_array(root, "keys", PLANNER_MAX_KEYS, 0, why, whylen), *v;
	size_t i;

	if (a == NULL)
		return -1;
	m->k = xcalloc(json_array_size(a) + 1, sizeof *m->k);
	json_array_foreach(a, i, v) {
		if (decode_key(v, i, &m->k[i], why, whylen) < 0) {
			json_decref(a);
			return -1;
		}
		m->n = i + 1;
	}
	json_decref(a);
	return 0;
}

static int
decode_crates(json_t *root, struct planner_intent *in, char *why, size_t whylen)
{
	json_t *a = get_array(root, "crates", PLANNER_MAX_KEYS, 0, why, whylen), *v;
	char sub[256];
	size_t i;

	if (a == NULL)
		return -1;
	in->c = xcalloc(json_array_size(a) + 1, sizeof *in->c);
	json_array_foreach(a, i, v) {
		if (!json_is_object(v) ||
		    get_name(v, "name", in->c[i].name, 0, 1, sub, sizeof sub) < 0 ||
		    get_name(v, "version", in->c[i].version, 1, 0, sub, sizeof sub) < 0) {
			why_set(why, whylen, "crates[%zu]: %s", i,
			    json_is_object(v) ? sub : "must be an object");
			json_decref(a);
			return -1;
		}
		in->n = i + 1;
	}
	json_decref(a);
	return 0;
}

static json_t *
load(const char *d, size_t n, char *why, size_t whylen)
{
	json_error_t err;
	json_t *root = json_loadb(d, n, JSON_REJECT_DUPLICATES, &err);

	if (root == NULL) {
		why_set(why, whylen, "not JSON: %s at line %d column %d", err.text, err.line,
		    err.column);
		return NULL;
	}
	if (!json_is_object(root)) {
		why_set(why, whylen, "the body must be a JSON object");
		json_decref(root);
		return NULL;
	}
	return root;
}

int
planner_decode_manifest(const char *d, size_t n, struct planner_manifest *m, char *why,
    size_t whylen)
{
	json_t *root = load(d, n, why, whylen);
	uint64_t created;
	int rc = -1;

	memset(m, 0, sizeof *m);
	strv_init(&m->features);
	if (root == NULL)
		return -1;
	if (decode_head(root, m->fp, m->toolchain, m->target, m->profile, why, whylen) == 0 &&
	    get_uint(root, "created_ms", &created, 1, why, whylen) == 0 &&
	    decode_features(root, &m->features, why, whylen) == 0 &&
	    decode_keys(root, m, why, whylen) == 0) {
		m->created_ms = (int64_t)(created > INT64_MAX ? INT64_MAX : created);
		rc = 0;
	}
	json_decref(root);
	if (rc < 0)
		planner_manifest_free(m);
	return rc;
}

int
planner_decode_intent(const char *d, size_t n, struct planner_intent *in, char *why, size_t whylen)
{
	json_t *root = load(d, n, why, whylen);
	int rc = -1;

	memset(in, 0, sizeof *in);
	if (root == NULL)
		return -1;
	in->has_max = json_object_get(root, "max_bytes") != NULL;
	if (decode_head(root, in->fp, in->toolchain, in->target, in->profile, why, whylen) == 0 &&
	    get_uint(root, "max_bytes", &in->max_bytes, 1, why, whylen) == 0 &&
	    decode_crates(root, in, why, whylen) == 0)
		rc = 0;
	json_decref(root);
	if (rc < 0)
		planner_intent_free(in);
	return rc;
}

void
planner_manifest_free(struct planner_manifest *m)
{
	free(m->k);
	m->k = NULL;
	m->n = 0;
	strv_free(&m->features);
}

void
planner_intent_free(struct planner_intent *in)
{
	free(in->c);
	in->c = NULL;
	in->n = 0;
}

void
planner_plan_free(struct planner_plan *p)
{
	free(p->k);
	p->k = NULL;
	p->n = 0;
}

const char *
planner_disposition_name(enum planner_disposition d)
{
	static const char *const names[PLANNER_DISPOSITIONS] = { "execute", "use_fallback",
		"do_nothing" };

	return (unsigned)d < PLANNER_DISPOSITIONS ? names[d] : "?";
}

/* Sets o[field] to s, or leaves it out when s is "". */
static void
set_name(json_t *o, const char *field, const char *s)
{
	if (s[0] != '\0')
		json_object_set_new(o, field, json_string(s));
}

/* One key of a stored manifest. */
static json_t *
key_json(const struct planner_key *k)
{
	json_t *o = json_object();

	json_object_set_new(o, "key", json_string(k->res));
	json_object_set_new(o, "crate", json_string(k->crate));
	set_name(o, "version", k->version);
	json_object_set_new(o, "bytes", json_integer((json_int_t)k->bytes));
	json_object_set_new(o, "compile_ms", json_integer((json_int_t)k->compile_ms));
	json_object_set_new(o, "order", json_integer(k->order));
	set_name(o, "part", k->part);
	return o;
}

char *
planner_encode_manifest(const struct planner_manifest *m)
{
	json_t *o = json_object(), *keys = json_array(), *f = json_array();
	char *s;

	json_object_set_new(o, "fingerprint", json_string(m->fp));
	set_name(o, "toolchain", m->toolchain);
	set_name(o, "target", m->target);
	set_name(o, "profile", m->profile);
	json_object_set_new(o, "created_ms", json_integer(m->created_ms));
	for (size_t i = 0; i < m->features.n; i++)
		json_array_append_new(f, json_string(m->features.v[i]));
	json_object_set_new(o, "features", f);
	for (size_t i = 0; i < m->n; i++)
		json_array_append_new(keys, key_json(&m->k[i]));
	json_object_set_new(o, "keys", keys);
	s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return s;
}

/* Written directly, not through jansson (a plan is the hot answer): every
 * string in it is a validated name, hex or a fixed word, so none needs
 * escaping; the form is the one key_json gives. */
char *
planner_encode_plan(const struct planner_plan *p)
{
	struct buf b;

	buf_init(&b);
	buf_addf(&b, "{\"disposition\":\"%s\",\"source\":\"%s\",\"sessions\":[",
	    planner_disposition_name(p->d), p->source);
	for (size_t i = 0; i < p->nsessions; i++)
		buf_addf(&b, "%s\"%s\"", i ? "," : "", p->sessions[i]);
	buf_addf(&b, "],\"bytes\":%" PRIu64 ",\"candidates\":[", p->bytes);
	for (size_t i = 0; i < p->n; i++) {
		const struct planner_key *k = &p->k[i];

		buf_addf(&b, "%s{\"key\":\"%s\",\"crate\":\"%s\"", i ? "," : "", k->res, k->crate);
		if (k->version[0] != '\0')
			buf_addf(&b, ",\"version\":\"%s\"", k->version);
		buf_addf(&b,
		    ",\"size\":%" PRIu64 ",\"expected_saving_ms\":%" PRIu64 ",\"order\":%" PRIu32,
		    k->bytes, k->compile_ms, k->order);
		if (k->part[0] != '\0')
			buf_addf(&b, ",\"part\":\"%s\"", k->part);
		buf_addch(&b, '}');
	}
	buf_addstr(&b, "]}");
	return buf_detach(&b, NULL);
}
