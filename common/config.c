#include "common/config.h"

#include <errno.h>
#include <ini.h>
#include <strings.h>

#include "common/log.h"
#include <stdlib.h>
#include <string.h>

#include "common/path.h"

/* What a value must be: checked when the settings are loaded (a value that is
 * not one is said, and the default taken in its place). */
enum config_kind {
	K_STR = 0, /* any text */
	K_BOOL,    /* true, false, 1, 0, yes, no, on, off */
	K_COUNT,   /* a whole number >= 0 */
	K_SIZE,    /* parse_size: 10G, 512M, 1048576 */
	K_SECS,    /* parse_duration: a plain number is seconds (90, 90s, 10m, 1h) */
	K_MS,      /* a plain number is milliseconds; or a duration with its unit (2s) */
	K_ENUM,    /* one of choices (any case) */
	K_NAME,    /* one of choices, any case, spelled as they are; another word
	            * is kept as written, for the code that uses it to refuse */
};

struct config_def {
	const char *key;  /* section.name */
	const char *env;  /* overriding environment variable */
	const char *dflt; /* NULL: computed */
	int secret;
	const char *help;
	enum config_kind kind;
	const char *choices; /* K_ENUM: "a|b|c" */
	int64_t min;         /* K_COUNT, K_SIZE, K_SECS, K_MS: the least value (ms for times) */
};

static const struct config_def defs[] = {
	{ "cache.dir", "KACHE_DIR", NULL, 0, "local store directory", .kind = K_STR },
	{ "cache.max_size", "KACHE_MAX_SIZE", "10G", 0, "size cap applied by gc", .kind = K_SIZE },
	{ "cache.restore", "KACHE_RESTORE", "auto", 0, "auto | reflink | hardlink | copy",
	    .kind = K_ENUM, .choices = "auto|reflink|hardlink|copy" },
	{ "cache.remap", "KACHE_REMAP", "true", 0,
	    "inject --remap-path-prefix for portable artifacts", .kind = K_BOOL },
	{ "cache.shared", "KACHE_SHARED", "false", 0,
	    "create a new store readable by group and others (else 0700)", .kind = K_BOOL },
	{ "cache.background_store", "KACHE_BACKGROUND_STORE", "true", 0,
	    "store misses in a child, off the build's critical path", .kind = K_BOOL },
	{ "cache.trace_proc_macros", "KACHE_TRACE_PROC_MACROS", "true", 0,
	    "key what proc macros read behind rustc's back (kache-trace.so preloaded into rustc "
	    "on a miss)",
	    .kind = K_BOOL },
	{ "cache.import_writes", "KACHE_IMPORT_WRITES", "auto", 0,
	    "auto | buffered | direct: how fetched blobs are written (auto: O_DIRECT for blobs of "
	    "1 MiB or more unless the disk is 8x slower per byte than the page cache)",
	    .kind = K_ENUM, .choices = "auto|buffered|direct" },
	{ "cache.disabled", "KACHE_DISABLED", "false", 0, "pass every compile through",
	    .kind = K_BOOL },
	{ "cache.recache", "KACHE_RECACHE", "false", 0,
	    "compile every cacheable compile, serve none, and store each result over the "
	    "store's and the remote's",
	    .kind = K_BOOL },
	{ "log.level", "KACHE_LOG", "off", 0, "off | warn | info | debug (wrapper log)",
	    .kind = K_ENUM, .choices = "off|warn|info|debug|0|1" },
	{ "log.file", "KACHE_LOG_FILE", "", 0, "wrapper log file (default <dir>/logs/wrapper.log)",
	    .kind = K_STR },
	{ "wrapper.deadline_ms", "KACHE_DEADLINE_MS", "500", 0,
	    "longest a miss waits for the supervisor to acknowledge a fetch (or to come up)",
	    .kind = K_MS },
	{ "wrapper.fetch_timeout_ms", "KACHE_FETCH_TIMEOUT_MS", "5000", 0,
	    "longest a compile waits for an acknowledged remote fetch", .kind = K_MS },
	{ "remote.type", "KACHE_REMOTE", "none", 0, "none | dir | s3", .kind = K_NAME,
	    .choices = "none|dir|s3" }, /* remote.c refuses another */
	{ "remote.path", "KACHE_REMOTE_PATH", "", 0, "directory remote location", .kind = K_STR },
	{ "remote.read_only", "KACHE_REMOTE_READ_ONLY", "false", 0,
	    "fetch but never upload (any remote; also s3.read_only)", .kind = K_BOOL },
	{ "remote.signing_key", "KACHE_SIGNING_KEY_FILE", "", 0,
	    "secret key file that signs every upload (kache keygen)", .kind = K_STR },
	{ "remote.trusted_keys", "KACHE_TRUSTED_KEYS", "", 0,
	    "[\"id:base64\", ...]: import only objects they signed", .kind = K_STR },
	{ "remote.flush_timeout", "KACHE_FLUSH_TIMEOUT", "10m", 0,
	    "longest `kache flush` and `kache supervisor stop` wait for uploads", .kind = K_SECS },
	{ "s3.bucket", "KACHE_S3_BUCKET", "", 0, "bucket name", .kind = K_STR },
	{ "s3.prefix", "KACHE_S3_PREFIX", "kache", 0, "key prefix inside the bucket",
	    .kind = K_STR },
	{ "s3.endpoint", "KACHE_S3_ENDPOINT", "", 0, "http(s)://host:port (default AWS)",
	    .kind = K_STR },
	{ "s3.region", "KACHE_S3_REGION", "us-east-1", 0, "SigV4 region", .kind = K_STR },
	{ "s3.addressing", "KACHE_S3_ADDRESSING", "path", 0, "path | virtual", .kind = K_ENUM,
	    .choices = "path|virtual" },
	{ "s3.ca_file", "KACHE_S3_CA_FILE", "", 0,
	    "PEM file of the CA certificates an https endpoint is verified with (empty: "
	    "the system's)",
	    .kind = K_STR },
	{ "s3.read_only", "KACHE_S3_READ_ONLY", "false", 0, "fetch but never upload",
	    .kind = K_BOOL },
	{ "s3.profile", "KACHE_S3_PROFILE", "", 0, "profile in ~/.aws/credentials", .kind = K_STR },
	{ "s3.access_key_id", "KACHE_S3_ACCESS_KEY_ID", "", 1,
	    "access key (prefer AWS_* or a profile)", .kind = K_STR },
	{ "s3.secret_access_key", "KACHE_S3_SECRET_ACCESS_KEY", "", 1, "secret key",
	    .kind = K_STR },
	{ "s3.session_token", "KACHE_S3_SESSION_TOKEN", "", 1, "session token", .kind = K_STR },
	{ "s3.upload_concurrency", "KACHE_S3_UPLOAD_CONCURRENCY", "4", 0, "parallel uploads",
	    .kind = K_COUNT },
	{ "s3.fetch_concurrency", "KACHE_S3_FETCH_CONCURRENCY", "4", 0,
	    "transfers a prefetch session has in flight (dir and s3 remotes)", .kind = K_COUNT },
	{ "s3.multipart_threshold", "KACHE_S3_MULTIPART_THRESHOLD", "64M", 0,
	    "multipart above this size", .kind = K_SIZE },
	{ "s3.fetch_connect_timeout_ms", "KACHE_S3_FETCH_CONNECT_TIMEOUT_MS", "1000", 0,
	    "ms a fetch a build waits on gives the connection (100..60000); raise it for "
	    "a far endpoint",
	    .kind = K_MS },
	{ "prefetch.cooldown", "KACHE_PREFETCH_COOLDOWN", "300", 0,
	    "seconds (or 5m, 1h) between two prefetch hints of one workspace", .kind = K_SECS },
	{ "prefetch.max_bytes", "KACHE_PREFETCH_MAX_BYTES", "2G", 0,
	    "bytes of packs one prefetch session imports at most (0: prefetch off)",
	    .kind = K_SIZE },
	{ "prefetch.save_manifest", "KACHE_PREFETCH_SAVE_MANIFEST", "true", 0,
	    "record the result keys each build session used in the remote (sessions/)",
	    .kind = K_BOOL },
	{ "prefetch.bundles", "KACHE_PREFETCH_BUNDLES", "true", 0,
	    "with each session manifest, put its packs together a few MiB to an object "
	    "(bundles/), read by the next runner's prefetch in a few requests (false: "
	    "none written, none read)",
	    .kind = K_BOOL },
	{ "workers.uploaders", "KACHE_UPLOADERS", "1", 0, "number of uploader workers",
	    .kind = K_COUNT },
	{ "workers.uploaders_wait", "KACHE_UPLOADERS_WAIT", "10", 0,
	    "seconds the uploaders wait, from the supervisor's start, for a first upload before "
	    "they start anyway (a build that only hits never pays their start; 0: they start "
	    "with the supervisor)",
	    .kind = K_SECS },
	{ "workers.zygote", "KACHE_ZYGOTE", "true", 0,
	    "fork each worker from one pristine kached the supervisor starts, instead of an "
	    "exec of its own (about 11 ms of CPU less per worker; false: exec each)",
	    .kind = K_BOOL },
	{ "workers.fetchers", "KACHE_FETCHERS", "2", 0,
	    "number of fetcher workers (remote fetches on a miss, in parallel)", .kind = K_COUNT },
	{ "supervisor.idle_timeout", "KACHE_IDLE_TIMEOUT", "0", 0,
	    "seconds idle before exit (0: never)", .kind = K_SECS },
	{ "supervisor.watchdog", "KACHE_WATCHDOG", "30", 0,
	    "seconds the supervisor's loop may stand still before it ends itself and the next "
	    "kache starts a fresh one (0: never)",
	    .kind = K_SECS },
	{ "supervisor.gc_interval", "KACHE_GC_INTERVAL", "600", 0,
	    "seconds between size-capped gc runs (the supervisor's, or with no remote a "
	    "background gc a wrapper starts)",
	    .kind = K_SECS, .min = 1000 },
	{ "planner.listen", "KACHE_PLANNER_LISTEN", "127.0.0.1:8080", 0,
	    "kache-planner: IPv4 address:port to serve on", .kind = K_STR },
	{ "planner.db", "KACHE_PLANNER_DB", "", 0, "kache-planner: its state directory",
	    .kind = K_STR },
	{ "planner.token", "KACHE_PLANNER_TOKEN", "", 1,
	    "bearer token (kache-planner's, and its clients')", .kind = K_STR },
	{ "planner.endpoint", "KACHE_PLANNER_ENDPOINT", "", 0,
	    "client: http://host:port of kache-planner (empty: no planner)", .kind = K_STR },
	{ "planner.timeout_ms", "KACHE_PLANNER_TIMEOUT_MS", "750", 0,
	    "client: longest one planner request takes in all", .kind = K_MS },
	{ "planner.ca_file", "KACHE_PLANNER_CA_FILE", "", 0,
	    "client: PEM file of the CA certificates an https planner.endpoint is verified "
	    "with (empty: the system's)",
	    .kind = K_STR },
	{ "planner.token_file", "KACHE_PLANNER_TOKEN_FILE", "", 0,
	    "kache-planner: file holding its bearer token", .kind = K_STR },
	{ "planner.max_plan_bytes", "KACHE_PLANNER_MAX_PLAN_BYTES", "2G", 0,
	    "kache-planner: bytes of packs one plan names at most", .kind = K_SIZE },
	{ "planner.max_body", "KACHE_PLANNER_MAX_BODY", "16M", 0,
	    "kache-planner: largest request body (413 above)", .kind = K_SIZE },
	{ "planner.max_connections", "KACHE_PLANNER_MAX_CONNECTIONS", "256", 0,
	    "kache-planner: connections served at once", .kind = K_COUNT },
	{ "planner.request_timeout", "KACHE_PLANNER_REQUEST_TIMEOUT", "10s", 0,
	    "kache-planner: an idle connection is closed after this", .kind = K_SECS },
	{ "planner.threads", "KACHE_PLANNER_THREADS", "4", 0, "kache-planner: request threads",
	    .kind = K_COUNT },
	{ "planner.from_remote", "KACHE_PLANNER_FROM_REMOTE", "false", 0,
	    "kache-planner: (re)build state from the remote's sessions/", .kind = K_BOOL },
	{ "planner.refresh", "KACHE_PLANNER_REFRESH", "5m", 0,
	    "kache-planner: time between two reloads from the remote", .kind = K_SECS },
	{ "planner.max_sessions", "KACHE_PLANNER_MAX_SESSIONS", "100000", 0,
	    "kache-planner: session manifests held at most (the oldest go; 0: no bound)",
	    .kind = K_COUNT },
	{ "planner.max_age", "KACHE_PLANNER_MAX_AGE", "0", 0,
	    "kache-planner: a session manifest older than this goes (0: never)", .kind = K_SECS },
};

#define NDEFS (sizeof defs / sizeof defs[0])

struct config {
	char *value[NDEFS];
	enum config_source source[NDEFS];
	enum config_source ignored[NDEFS]; /* a value from there was not valid */
	char *file;
	struct buf *warnings;
};

static int def_index(const char *key);
static char *unquote(const char *v);
static int ini_cb(void *user, const char *section, const char *name, const char *value);
static char *default_dir(void);
static char *config_path(void);
static int time_ms(const struct config_def *d, const char *v, int64_t *ms);
static const char *choice(const struct config_def *d, const char *v);
static int bool_value(const char *v);
static const char *invalid(const struct config_def *d, const char *v);
static void check(struct config *cfg, size_t i);

static int
def_index(const char *key)
{
	for (size_t i = 0; i < NDEFS; i++)
		if (strcmp(defs[i].key, key) == 0)
			return (int)i;
	return -1;
}

static char *
unquote(const char *v)
{
	size_t n = strlen(v);

	if (n >= 2 && ((v[0] == '"' && v[n - 1] == '"') || (v[0] == '\'' && v[n - 1] == '\'')))
		return xstrndup(v + 1, n - 2);
	return xstrdup(v);
}

static int
ini_cb(void *user, const char *section, const char *name, const char *value)
{
	struct config *cfg = user;
	char *key = xasprintf("%s.%s", section, name);
	int i = def_index(key);

	if (i < 0) {
		if (cfg->warnings)
			buf_addf(cfg->warnings, "%s: unknown key '%s' ignored\n", cfg->file, key);
	} else if (cfg->source[i] != CONFIG_ENV) {
		free(cfg->value[i]);
		cfg->value[i] = unquote(value);
		cfg->source[i] = CONFIG_FILE;
	}
	free(key);
	return 1;
}

static char *
default_dir(void)
{
	const char *x = getenv("XDG_CACHE_HOME");
	const char *home = getenv("HOME");

	if (x && x[0] == '/')
		return xasprintf("%s/kache", x);
	return xasprintf("%s/.cache/kache", home && *home ? home : "/tmp");
}

static char *
config_path(void)
{
	const char *p = getenv("KACHE_CONFIG");
	const char *x = getenv("XDG_CONFIG_HOME");
	const char *home = getenv("HOME");

	if (p && *p)
		return xstrdup(p);
	if (x && x[0] == '/')
		return xasprintf("%s/kache/config.toml", x);
	return xasprintf("%s/.config/kache/config.toml", home && *home ? home : "/");
}

struct config *
config_load(struct buf *warnings)
{
	struct config *cfg = xcalloc(1, sizeof *cfg);
	FILE *f;

	cfg->warnings = warnings;
	cfg->file = config_path();
	for (size_t i = 0; i < NDEFS; i++) {
		const char *e = getenv(defs[i].env);

		if (e != NULL) {
			cfg->value[i] = xstrdup(e);
			cfg->source[i] = CONFIG_ENV;
		} else {
			cfg->value[i] = defs[i].dflt ? xstrdup(defs[i].dflt) : default_dir();
		}
	}
	f = fopen(cfg->file, "re");
	if (f != NULL) {
		int line = ini_parse_file(f, ini_cb, cfg);

		if (line != 0 && warnings)
			buf_addf(warnings, "%s: line %d is not 'key = value' or '[section]'\n",
			    cfg->file, line);
		fclose(f);
	} else if (errno != ENOENT && warnings) {
		buf_addf(warnings, "%s: cannot read: %s\n", cfg->file, strerror(errno));
	}
	for (size_t i = 0; i < NDEFS; i++)
		check(cfg, i);
	cfg->warnings = NULL;
	return cfg;
}

/* A time value of d in ms: a plain number is seconds (K_SECS) or
 * milliseconds (K_MS); else a duration with its unit. -1 when not one. */
static int
time_ms(const struct config_def *d, const char *v, int64_t *ms)
{
	size_t n = strspn(v, "0123456789");

	if (d->kind == K_MS && n > 0 && v[n] == '\0') {
		if (n > 12)
			return -1;
		*ms = strtoll(v, NULL, 10);
		return 0;
	}
	return parse_duration(v, ms);
}

/* The choice of d that v names (any case), or NULL. */
static const char *
choice(const struct config_def *d, const char *v)
{
	static char out[32];
	const char *c = d->choices, *bar;
	size_t n;

	while (c != NULL && *c != '\0') {
		bar = strchr(c, '|');
		n = bar ? (size_t)(bar - c) : strlen(c);
		if (n < sizeof out && strlen(v) == n && strncasecmp(v, c, n) == 0) {
			memcpy(out, c, n);
			out[n] = '\0';
			return out;
		}
		c = bar ? bar + 1 : NULL;
	}
	return NULL;
}

/* 1 or 0 for the words of true and false (any case), -1 for another. */
static int
bool_value(const char *v)
{
	static const char *const words[] = { "true", "1", "yes", "on", "false", "0", "no", "off" };

	for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
		if (strcasecmp(v, words[i]) == 0)
			return i < 4;
	return -1;
}

/* What is wrong with v as a value of d (NULL: nothing). */
static const char *
invalid(const struct config_def *d, const char *v)
{
	int64_t x = 0;

	switch (d->kind) {
	case K_STR:
	case K_NAME: return NULL;
	case K_BOOL: return bool_value(v) < 0 ? "is not true or false" : NULL;
	case K_COUNT:
		if (strspn(v, "0123456789") != strlen(v) || strlen(v) > 12)
			return "is not a whole number";
		x = strtoll(v, NULL, 10);
		break;
	case K_SIZE:
		if ((x = parse_size(v)) < 0)
			return "is not a size (10G, 512M, 1048576)";
		break;
	case K_SECS:
		if (time_ms(d, v, &x) < 0)
			return "is not a duration (90, 90s, 10m, 1h: a plain number is seconds)";
		break;
	case K_MS:
		if (time_ms(d, v, &x) < 0)
			return "is not a duration (500, 500ms, 2s: a plain number is milliseconds)";
		break;
	case K_ENUM: return choice(d, v) ? NULL : "is none of the values it takes";
	}
	return x < d->min ? "is below the least it takes" : NULL;
}

/* Value i as loaded: an empty one is unset (the default); one that is not
 * valid is said, with the values it takes, and the default taken instead; a
 * choice is spelled as the table does (S3: s3). */
static void
check(struct config *cfg, size_t i)
{
	const struct config_def *d = &defs[i];
	const char *why = NULL, *c;

	if (cfg->source[i] == CONFIG_DEFAULT || d->kind == K_STR)
		return;
	if (cfg->value[i][0] != '\0' && (why = invalid(d, cfg->value[i])) == NULL) {
		if ((d->kind == K_ENUM || d->kind == K_NAME) &&
		    (c = choice(d, cfg->value[i])) != NULL && strcmp(c, cfg->value[i]) != 0) {
			free(cfg->value[i]);
			cfg->value[i] = xstrdup(c);
		}
		return;
	}
	if (cfg->value[i][0] != '\0' && cfg->warnings != NULL) {
		if (cfg->source[i] == CONFIG_ENV)
			buf_addf(cfg->warnings, "%s=%s (%s) ", d->env, cfg->value[i], d->key);
		else
			buf_addf(cfg->warnings, "%s: %s = %s ", cfg->file, d->key, cfg->value[i]);
		buf_addf(cfg->warnings, "%s", why);
		if (d->kind == K_ENUM)
			buf_addf(cfg->warnings, " (%s)", d->choices);
		else if (d->min > 0)
			buf_addf(cfg->warnings, " (%lld%s)", (long long)d->min,
			    d->kind == K_SECS || d->kind == K_MS ? "ms" : "");
		buf_addf(cfg->warnings, "; the default, %s, is used\n", d->dflt);
		cfg->ignored[i] = cfg->source[i];
	}
	free(cfg->value[i]);
	cfg->value[i] = xstrdup(d->dflt);
	cfg->source[i] = CONFIG_DEFAULT;
}

struct config *
config_load_warn(enum config_warn how, struct buf *keep)
{
	struct buf warnings;
	struct config *cfg;
	const char *p, *line;
	size_t n;

	buf_init(&warnings);
	cfg = config_load(&warnings);
	p = warnings.p;
	while (warnings.len && str_next_line(&p, warnings.p + warnings.len, &line, &n) == 0) {
		if (how == CONFIG_WARN_STDERR) /* a line each */
			fprintf(stderr, "kache: warning: %.*s\n", (int)n, line);
		else if (how == CONFIG_WARN_LOG)
			log_warnx("%.*s", (int)n, line);
	}
	if (keep != NULL && warnings.len)
		buf_add(keep, warnings.p, warnings.len);
	buf_free(&warnings);
	return cfg;
}

void
config_free(struct config **cfgp)
{
	struct config *cfg = *cfgp;

	if (cfg == NULL)
		return;
	for (size_t i = 0; i < NDEFS; i++)
		free(cfg->value[i]);
	free(cfg->file);
	free(cfg);
	*cfgp = NULL;
}

const char *
config_get(const struct config *cfg, const char *key)
{
	int i = def_index(key);

	if (i < 0)
		fatalx("config: unknown key %s asked for", key);
	return cfg->value[i];
}

int
config_has_remote(const struct config *cfg)
{
	const char *type = config_get(cfg, "remote.type");

	return type[0] != '\0' && strcmp(type, "none") != 0;
}

int64_t
config_get_int(const struct config *cfg, const char *key)
{
	int i = def_index(key);

	if (i < 0)
		fatalx("config: unknown key %s asked for", key);
	if (defs[i].kind == K_SECS)
		return config_get_duration(cfg, key) / 1000;
	if (defs[i].kind == K_MS)
		return config_get_duration(cfg, key);
	if (defs[i].kind == K_SIZE)
		return config_get_size(cfg, key);
	return strtoll(cfg->value[i], NULL, 10);
}

int
config_get_bool(const struct config *cfg, const char *key)
{
	return bool_value(config_get(cfg, key)) == 1;
}

int64_t
config_get_size(const struct config *cfg, const char *key)
{
	int i = def_index(key);
	int64_t v;

	if (i < 0)
		fatalx("config: unknown key %s asked for", key);
	if ((v = parse_size(cfg->value[i])) < 0 && defs[i].dflt != NULL)
		v = parse_size(defs[i].dflt);
	return v;
}

int64_t
config_get_duration(const struct config *cfg, const char *key)
{
	int i = def_index(key);
	int64_t ms = 0;

	if (i < 0)
		fatalx("config: unknown key %s asked for", key);
	if (time_ms(&defs[i], cfg->value[i], &ms) < 0 &&
	    (defs[i].dflt == NULL || time_ms(&defs[i], defs[i].dflt, &ms) < 0))
		ms = 0;
	return ms;
}

void
config_set(struct config *cfg, const char *key, const char *value)
{
	int i = def_index(key);

	if (i < 0)
		fatalx("config: unknown key %s set", key);
	free(cfg->value[i]);
	cfg->value[i] = xstrdup(value);
	cfg->source[i] = CONFIG_ENV;
}

void
config_dump(const struct config *cfg, FILE *out)
{
	fprintf(out, "# config file: %s\n", cfg->file);
	for (size_t i = 0; i < NDEFS; i++) {
		const char *v = cfg->value[i];
		char src[96];

		if (cfg->source[i] != CONFIG_DEFAULT)
			snprintf(src, sizeof src, "%s",
			    cfg->source[i] == CONFIG_ENV ? defs[i].env : "file");
		else if (cfg->ignored[i] != CONFIG_DEFAULT)
			snprintf(src, sizeof src, "default; %s's value is not valid",
			    cfg->ignored[i] == CONFIG_ENV ? defs[i].env : "the file");
		else
			snprintf(src, sizeof src, "default");
		if (defs[i].secret && v[0] != '\0')
			v = "********";
		fprintf(out, "%-26s = %-24s # %s (%s)\n", defs[i].key, v, src, defs[i].help);
	}
}

const char *
config_file_path(const struct config *cfg)
{
	return cfg->file;
}

/* 1 when the n bytes at w are, in any case, one of words (NULL-ended). */
static int
word_in(const char *w, size_t n, const char *const *words)
{
	for (; *words; words++)
		if (strlen(*words) == n && strncasecmp(w, *words, n) == 0)
			return 1;
	return 0;
}

int
config_is_secret_env(const char *name)
{
	static const char *const secret[] = { "TOKEN", "TOKENS", "SECRET", "SECRETS", "PASSWORD",
		"PASSWORDS", "PASSWD", "PASS", "PASSPHRASE", "CREDENTIAL", "CREDENTIALS", "AUTH",
		"SESSION", "PRIVATE", "APIKEY", NULL };
	static const char *const keyed[] = { "ACCESS", "API", "SIGNING", "ENCRYPTION", "MASTER",
		NULL };
	static const char alnum[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
	size_t end = strcspn(name, "="), i = 0, n, prev = 0, prev_n = 0;

	/* whole words only: CARGO_PKG_AUTHORS reads no secret */
	while (i < end) {
		n = strspn(name + i, alnum); /* stops at the '=' too */
		if (n > 0) {
			if (word_in(name + i, n, secret) ||
			    (n == 3 && strncasecmp(name + i, "KEY", 3) == 0 && prev_n > 0 &&
			        word_in(name + prev, prev_n, keyed)))
				return 1;
			prev = i;
			prev_n = n;
		}
		i += n + 1;
	}
	return 0;
}
