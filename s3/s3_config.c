/* Settings from common/config and credentials from config, env or file. */
#include "s3/s3_internal.h"

#include <ini.h>
#include <stdlib.h>
#include <string.h>

#include "common/config.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/util.h"

#define MIB (1024ULL * 1024ULL)

struct profile_scan {
	const char *profile;
	struct s3_creds *c;
	int seen;
};

/* What a profile of ~/.aws/config says about its keys (NULL: not said). */
struct cfg_profile {
	const char *section; /* "default" or "profile <name>" */
	char *process;       /* credential_process */
	char *role_arn;
	char *source_profile;
	char *credential_source;
	char *external_id;
	char *session_name; /* role_session_name */
	char *duration;     /* duration_seconds */
	char *mfa_serial;
	struct s3_creds keys; /* aws_access_key_id... in the config file itself */
};

#define ASSUME_DEPTH_MAX 4 /* source_profile links followed, at most */

static char *aws_file(const char *env, const char *name);
static int aws_file_fault(int rc, const char *path, const char *env, struct buf *err);
static int profile_cb(void *user, const char *section, const char *name, const char *value);
static int profile_read(const char *profile, struct cfg_profile *cp, struct buf *err);
static void profile_free(struct cfg_profile *cp);
static int profile_assume(const struct cfg_profile *cp, const char *profile, const char *region,
    int ask, int depth, struct s3_creds *out, struct buf *err);
static int source_keys(const char *profile, const char *region, int depth, struct s3_creds *out,
    struct buf *err);
static int file_keys(const char *profile, struct s3_creds *out, struct buf *err);
static int config_keys(const struct cfg_profile *cp, const char *profile, int ask,
    struct s3_creds *out, struct buf *err);
static char *dup_nonempty(const char *s);
static int creds_from(const char *id, const char *secret, const char *token, struct s3_creds *out);
static int ini_creds_cb(void *user, const char *section, const char *name, const char *value);
static int creds_from_file(const struct config *cfg, int ask, struct s3_creds *out,
    struct buf *err);
static int ca_file_check(const char *path, struct buf *err);
static int creds_from_file_or_role(const struct config *cfg, int ask, struct s3_creds *out,
    struct buf *err);
static int creds_resolve(const struct config *cfg, int ask, struct s3_creds *out, struct buf *err);
static int config_from(const struct config *cfg, int ask, struct s3_settings *s, struct buf *err);

const char *
s3_result_name(enum s3_result r)
{
	static const char *const names[] = { "OK", "NOT_FOUND", "AUTH", "BAD_REQUEST", "TRANSIENT",
		"NO_BUCKET", "LOCAL" };

	if ((unsigned)r < sizeof names / sizeof names[0])
		return names[r];
	return "UNKNOWN";
}

void
s3_settings_defaults(struct s3_settings *s)
{
	memset(s, 0, sizeof *s);
	s->connect_timeout_ms = 5000;
	s->fail_fast_connect_ms = 1000;
	s->low_speed_limit = 1024;
	s->low_speed_time_s = 30;
	s->total_timeout_ms = 600000;
	s->max_attempts = 5;
	s->backoff_base_ms = 100;
	s->backoff_cap_ms = 5000;
	s->multipart_threshold = 64 * MIB;
	s->part_size = 8 * MIB;
	s->upload_concurrency = 4;
}

void
s3_wipe_str(char *s)
{
	if (s != NULL)
		explicit_bzero(s, strlen(s));
	free(s);
}

void
s3_creds_clear(struct s3_creds *c)
{
	s3_wipe_str(c->access_key_id);
	s3_wipe_str(c->secret_access_key);
	s3_wipe_str(c->session_token);
	free(c->process);
	free(c->process_profile);
	c->access_key_id = c->secret_access_key = c->session_token = NULL;
	c->process = c->process_profile = NULL;
}

void
s3_settings_clear(struct s3_settings *s)
{
	free(s->bucket);
	free(s->prefix);
	free(s->endpoint);
	free(s->region);
	free(s->ca_file);
	s3_creds_clear(&s->creds);
	s->bucket = s->prefix = s->endpoint = s->region = s->ca_file = NULL;
}

static char *
dup_nonempty(const char *s)
{
	return s != NULL && *s != '\0' ? xstrdup(s) : NULL;
}

/* An AWS file: the variable env names it, else ~/.aws/<name> (new string). */
static char *
aws_file(const char *env, const char *name)
{
	const char *file = getenv(env), *home = getenv("HOME");

	return file && *file ? xstrdup(file) : xasprintf("%s/.aws/%s", home ? home : "", name);
}

/* ini_parse's rc for the AWS file at path (named by env) said in err when the
 * file could be opened but not read whole (a syntax error's line, or no
 * memory): 1; else 0. */
static int
aws_file_fault(int rc, const char *path, const char *env, struct buf *err)
{
	if (rc > 0)
		buf_addf(err,
		    "S3 credentials: line %d of %s is not `name = value` or `[profile]`; fix it "
		    "(or point %s elsewhere)",
		    rc, path, env);
	else if (rc < -1)
		buf_addf(err, "S3 credentials: %s could not be read (out of memory)", path);
	return rc > 0 || rc < -1;
}

static int
profile_cb(void *user, const char *section, const char *name, const char *value)
{
	struct cfg_profile *cp = user;
	static const char *const names[] = { "credential_process", "role_arn", "source_profile",
		"credential_source", "external_id", "role_session_name", "duration_seconds",
		"mfa_serial", "aws_access_key_id", "aws_secret_access_key", "aws_session_token" };
	char **slots[] = { &cp->process, &cp->role_arn, &cp->source_profile, &cp->credential_source,
		&cp->external_id, &cp->session_name, &cp->duration, &cp->mfa_serial,
		&cp->keys.access_key_id, &cp->keys.secret_access_key, &cp->keys.session_token };

	if (strcmp(section, cp->section) != 0)
		return 1;
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (strcmp(name, names[i]) == 0) {
			free(*slots[i]);
			*slots[i] = dup_nonempty(value);
		}
	return 1;
}

/* Profile's section ("[default]" or "[profile NAME]") of AWS_CONFIG_FILE,
 * else ~/.aws/config, into cp (profile_free frees it): 1 when it names a
 * credential_process, a role_arn or keys; 0 when it does not (no file, no
 * such profile, no such line); -1 with why in err when the file cannot be
 * read whole (its line said). */
static int
profile_read(const char *profile, struct cfg_profile *cp, struct buf *err)
{
	char *path = aws_file("AWS_CONFIG_FILE", "config");
	char *sect =
	    strcmp(profile, "default") == 0 ? xstrdup("default") : xasprintf("profile %s", profile);
	int rc;

	memset(cp, 0, sizeof *cp);
	cp->section = sect;
	rc = ini_parse(path, profile_cb, cp);
	if (aws_file_fault(rc, path, "AWS_CONFIG_FILE", err)) {
		free(path);
		return -1;
	}
	free(path);
	return cp->process != NULL || cp->role_arn != NULL || cp->keys.access_key_id != NULL ||
	    cp->keys.secret_access_key != NULL;
}

static void
profile_free(struct cfg_profile *cp)
{
	char **all[] = { &cp->process, &cp->role_arn, &cp->source_profile, &cp->credential_source,
		&cp->external_id, &cp->session_name, &cp->duration, &cp->mfa_serial };

	for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
		free(*all[i]);
		*all[i] = NULL;
	}
	s3_creds_clear(&cp->keys);
	free((char *)cp->section);
	cp->section = NULL;
}

/* The keys of the credentials file's [profile], as the shared file gives
 * them: 1 (out filled), 0 when it has none, -1 with why in err when the file
 * is wrong or holds half a pair. */
static int
file_keys(const char *profile, struct s3_creds *out, struct buf *err)
{
	char *path = aws_file("AWS_SHARED_CREDENTIALS_FILE", "credentials");
	struct profile_scan ps = { profile, out, 0 };
	int rc = ini_parse(path, ini_creds_cb, &ps), keys;

	keys = (out->access_key_id != NULL) + (out->secret_access_key != NULL);
	if (rc != 0 && rc != -1) {
		(void)aws_file_fault(rc, path, "AWS_SHARED_CREDENTIALS_FILE", err);
		keys = -1;
	} else if (keys == 1) {
		buf_addf(err, "profile [%s] of %s has half a key pair", profile, path);
		keys = -1;
	}
	free(path);
	if (keys != 2)
		s3_creds_clear(out);
	return keys == 2 ? 1 : keys;
}

/* The keys a role_arn profile's source gives (source_profile named
 * profile): the credentials file's, else the config file's keys, its
 * credential_process or its own role_arn (depth: links followed). 0, or -1
 * with why in err. */
static int
source_keys(const char *profile, const char *region, int depth, struct s3_creds *out,
    struct buf *err)
{
	struct cfg_profile cp;
	int rc = file_keys(profile, out, err);

	if (rc != 0)
		return rc > 0 ? 0 : -1;
	if (profile_read(profile, &cp, err) < 0) {
		profile_free(&cp);
		return -1;
	}
	if (cp.role_arn != NULL)
		rc = profile_assume(&cp, profile, region, 1, depth, out, err);
	else if ((rc = config_keys(&cp, profile, 1, out, err)) > 0) {
		buf_addf(err,
		    "source_profile [%s] has no keys (in the credentials file or the config "
		    "file), no credential_process and no role_arn",
		    profile);
		rc = -1;
	}
	profile_free(&cp);
	return rc;
}

/* The keys a config file profile gives of itself: its own key pair, else its
 * credential_process's (run only when ask). 0 (out filled, or nothing asked),
 * -1 with why in err (half a pair, the process failing), 1 when it names
 * neither. */
static int
config_keys(const struct cfg_profile *cp, const char *profile, int ask, struct s3_creds *out,
    struct buf *err)
{
	if (cp->keys.access_key_id != NULL || cp->keys.secret_access_key != NULL) {
		if (creds_from(cp->keys.access_key_id, cp->keys.secret_access_key,
		        cp->keys.session_token, out) > 0)
			return 0;
		buf_addf(err,
		    "S3 credentials: profile [%s] of the config file has half a key pair; give "
		    "both aws_access_key_id and aws_secret_access_key",
		    profile);
		return -1;
	}
	if (cp->process == NULL)
		return 1;
	return !ask || s3_process_creds(cp->process, profile, out, err) == 0 ? 0 : -1;
}

/* A role_arn profile's keys (its source's keys, exchanged at STS by a signed
 * AssumeRole), as the AWS SDKs assume it: exactly one of source_profile and
 * credential_source (Ec2InstanceMetadata, EcsContainer);
 * role_session_name (else "kache"), external_id, duration_seconds (900 to
 * 43200, else 3600); an mfa_serial is refused (a code a person types). With
 * ask 0 only the profile is checked. 0, or -1 with why in err. */
static int
profile_assume(const struct cfg_profile *cp, const char *profile, const char *region, int ask,
    int depth, struct s3_creds *out, struct buf *err)
{
	struct s3_creds src = { 0 };
	struct s3_assume r = { cp->role_arn, cp->session_name ? cp->session_name : "kache",
		cp->external_id, 3600 };
	const char *cs = cp->credential_source;
	struct buf why;
	char *end = NULL;
	long d;
	int rc = -1;

	buf_init(&why);
	if (cp->duration != NULL) {
		d = strtol(cp->duration, &end, 10);
		if (*end != '\0' || d < 900 || d > 43200) {
			buf_addf(&why, "duration_seconds '%s' is not 900 to 43200", cp->duration);
			goto out;
		}
		r.duration_s = (int)d;
	}
	if (cp->mfa_serial != NULL)
		buf_addstr(&why,
		    "it names an mfa_serial, whose code a person types; give kache a profile "
		    "without one (or a credential_process)");
	else if ((cp->source_profile != NULL) == (cs != NULL))
		buf_addstr(&why, "it needs exactly one of source_profile and credential_source");
	else if (cs != NULL && strcmp(cs, "Ec2InstanceMetadata") != 0 &&
	    strcmp(cs, "EcsContainer") != 0)
		buf_addf(&why,
		    "credential_source '%s' is not Ec2InstanceMetadata or EcsContainer (keys in "
		    "AWS_ACCESS_KEY_ID sign as they are, before any profile)",
		    cs);
	else if (depth >= ASSUME_DEPTH_MAX)
		buf_addf(&why, "more than %d source_profile links (a loop?)", ASSUME_DEPTH_MAX);
	else if (!ask)
		rc = 0;
	else if (cp->source_profile != NULL)
		rc = source_keys(cp->source_profile, region, depth + 1, &src, &why);
	else
		rc = s3_role_creds(strcmp(cs, "EcsContainer") == 0 ? S3_ROLE_CONTAINER :
		                                                     S3_ROLE_INSTANCE,
		    region, &src, &why);
	if (rc == 0 && ask) {
		rc = s3_role_assume(&r, region, &src, out, &why);
		if (rc == 0) {
			out->role = S3_ROLE_ASSUMED;
			out->process_profile = xstrdup(profile);
		}
	}
out:
	if (rc < 0)
		buf_addf(err, "profile [%s]'s role_arn (%s): %s", profile, cp->role_arn, why.p);
	s3_creds_clear(&src);
	buf_free(&why);
	return rc;
}

int
s3_profile_assume(const char *profile, const char *region, struct s3_creds *out, struct buf *err)
{
	struct cfg_profile cp;
	int rc = profile_read(profile, &cp, err);

	memset(out, 0, sizeof *out);
	if (rc >= 0 && cp.role_arn == NULL) {
		buf_addf(err, "profile [%s] has no role_arn any longer", profile);
		rc = -1;
	}
	if (rc >= 0)
		rc = profile_assume(&cp, profile, region, 1, 0, out, err);
	profile_free(&cp);
	return rc < 0 ? -1 : 0;
}

/* 1 when id and secret are both set (out filled), 0 when neither, -1 when
 * only one is: half a key pair is a mistake worth reporting. */
static int
creds_from(const char *id, const char *secret, const char *token, struct s3_creds *out)
{
	int has_id = id != NULL && *id != '\0', has_secret = secret != NULL && *secret != '\0';

	if (!has_id && !has_secret)
		return 0;
	if (has_id != has_secret)
		return -1;
	out->access_key_id = xstrdup(id);
	out->secret_access_key = xstrdup(secret);
	out->session_token = dup_nonempty(token);
	return 1;
}

static int
ini_creds_cb(void *user, const char *section, const char *name, const char *value)
{
	struct profile_scan *ps = user;
	char **slot = NULL;

	if (strcmp(section, ps->profile) != 0)
		return 1;
	ps->seen = 1;
	if (strcmp(name, "aws_access_key_id") == 0)
		slot = &ps->c->access_key_id;
	else if (strcmp(name, "aws_secret_access_key") == 0)
		slot = &ps->c->secret_access_key;
	else if (strcmp(name, "aws_session_token") == 0)
		slot = &ps->c->session_token;
	if (slot != NULL) {
		free(*slot);
		*slot = dup_nonempty(value);
	}
	return 1;
}

/* The shared credentials file's profile (AWS_PROFILE, else s3.profile, else
 * "default"): 0 with its keys, or, when it has none, with those of the
 * profile's credential_process in ~/.aws/config (s3_process.c: its failure,
 * or that file's syntax error, is -2); -1 when there are none to take and a role may
 * have them (no file; no default profile, or one without keys, when none was
 * named); -2 when the file is wrong (a syntax error, a profile named that it
 * lacks or that has no keys, half a key pair): the error, so that a typo never
 * signs with the instance's keys instead (botocore stops at all but the
 * keyless named profile). A role_arn in the config file's profile comes
 * before the credentials file's keys, as in the AWS SDKs' chain; that file's
 * keys of the profile, when the credentials file has none, after. */
static int
creds_from_file(const struct config *cfg, int ask, struct s3_creds *out, struct buf *err)
{
	const char *prof = getenv("AWS_PROFILE"), *region = cfg ? config_get(cfg, "s3.region") : "";
	char *path = aws_file("AWS_SHARED_CREDENTIALS_FILE", "credentials");
	struct s3_creds c = { 0 };
	struct profile_scan ps = { NULL, &c, 0 };
	struct cfg_profile cp;
	struct buf cfg_err;
	int rc, named, keys, found;

	if (prof == NULL || *prof == '\0')
		prof = cfg ? config_get(cfg, "s3.profile") : "";
	named = *prof != '\0';
	ps.profile = named ? prof : "default";
	buf_init(&cfg_err);
	found = profile_read(ps.profile, &cp, &cfg_err);
	if (found > 0 && cp.role_arn != NULL) { /* first, as in the AWS SDKs' chain */
		rc = profile_assume(&cp, ps.profile, region, ask, 0, out, err) == 0 ? 0 : -2;
		goto out;
	}
	rc = ini_parse(path, ini_creds_cb, &ps);
	keys = (c.access_key_id != NULL) + (c.secret_access_key != NULL);
	if (rc == 0 && keys == 2) {
		*out = c;
		memset(&c, 0, sizeof c);
		rc = 0;
		goto out;
	}
	if ((rc == 0 || rc == -1) && keys == 0 && found != 0) { /* the config file's profile */
		if (found < 0)
			buf_add(err, cfg_err.p, cfg_err.len);
		rc = found > 0 && config_keys(&cp, ps.profile, ask, out, err) == 0 ? 0 : -2;
		goto out;
	}
	if (rc == -1)
		buf_addf(err,
		    "no S3 credentials: set KACHE_S3_ACCESS_KEY_ID and "
		    "KACHE_S3_SECRET_ACCESS_KEY, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
		    "or create %s",
		    path);
	else if (rc != 0)
		(void)aws_file_fault(rc, path, "AWS_SHARED_CREDENTIALS_FILE", err);
	else if (!ps.seen)
		buf_addf(err,
		    "no S3 credentials: profile [%s] is not in %s; add it, or set AWS_PROFILE "
		    "(s3.profile) to one it has",
		    ps.profile, path);
	else
		buf_addf(err,
		    "no usable S3 credentials in profile [%s] of %s: it needs both "
		    "aws_access_key_id and aws_secret_access_key (or a credential_process or a "
		    "role_arn in ~/.aws/config; its SSO profiles are not read)",
		    ps.profile, path);
	rc = rc == -1 || (rc == 0 && keys == 0 && !named) ? -1 : -2;
out:
	profile_free(&cp);
	buf_free(&cfg_err);
	s3_creds_clear(&c);
	free(path);
	return rc;
}

/* The shared credentials file, else a role's keys. */
static int
creds_from_file_or_role(const struct config *cfg, int ask, struct s3_creds *out, struct buf *err)
{
	struct buf why, role;
	int rc;

	buf_init(&why);
	buf_init(&role);
	if ((rc = creds_from_file(cfg, ask, out, &why)) == 0 || (rc == -1 && !ask)) {
		rc = 0;
		goto out;
	}
	if (rc == -1 && s3_role_creds(S3_ROLE_ANY, config_get(cfg, "s3.region"), out, &role) == 0) {
		rc = 0;
		goto out;
	}
	s3_creds_clear(out);
	buf_add(err, why.p, why.len);
	if (role.len > 0)
		buf_addf(err,
		    "; nor a role's (%s; AWS_EC2_METADATA_DISABLED=true skips asking the "
		    "instance's)",
		    role.p);
	rc = -1;
out:
	buf_free(&why);
	buf_free(&role);
	return rc;
}

int
s3_creds_resolve(const struct config *cfg, struct s3_creds *out, struct buf *err)
{
	return creds_resolve(cfg, 1, out, err);
}

/* ask 0: the settings check's; what is local is read and checked (the keys
 * given, the credentials file, the config file's syntax), and a source that
 * must be asked (STS, a credential_process, a role's service) is not: 0 with
 * no keys in out. */
static int
creds_resolve(const struct config *cfg, int ask, struct s3_creds *out, struct buf *err)
{
	int rc = 0;

	memset(out, 0, sizeof *out);
	if (cfg != NULL)
		rc = creds_from(config_get(cfg, "s3.access_key_id"),
		    config_get(cfg, "s3.secret_access_key"), config_get(cfg, "s3.session_token"),
		    out);
	if (rc < 0) {
		buf_addstr(err,
		    "only one of s3.access_key_id / s3.secret_access_key "
		    "(KACHE_S3_ACCESS_KEY_ID / KACHE_S3_SECRET_ACCESS_KEY) is set; check "
		    "credentials");
		return -1;
	}
	if (rc == 0)
		rc = creds_from(getenv("AWS_ACCESS_KEY_ID"), getenv("AWS_SECRET_ACCESS_KEY"),
		    getenv("AWS_SESSION_TOKEN"), out);
	if (rc < 0) {
		buf_addstr(err,
		    "only one of AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY is set; "
		    "check credentials");
		return -1;
	}
	if (rc > 0)
		return 0;
	if (s3_role_web_identity_named()) {
		if (!ask)
			return 0;
		if (s3_role_creds(S3_ROLE_WEB_IDENTITY, config_get(cfg, "s3.region"), out, err) ==
		    0)
			return 0;
		s3_creds_clear(out);
		buf_addstr(err, "; check AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN");
		return -1;
	}
	return creds_from_file_or_role(cfg, ask, out, err);
}

/* s3.ca_file, when set: a regular file this process can read (whether it
 * holds certificates, the TLS handshake tells). 0, or -1 with advice. */
static int
ca_file_check(const char *path, struct buf *err)
{
	const char *why;

	if (*path == '\0')
		return 0;
	if ((why = fs_unreadable_why(path)) != NULL)
		buf_addf(err,
		    "s3.ca_file '%s' cannot be read (%s); give the PEM file of the CA "
		    "certificates that sign the endpoint's certificate (KACHE_S3_CA_FILE), or "
		    "leave it empty for the system's",
		    path, why);
	return why != NULL ? -1 : 0;
}

/* The config keys map one to one; sizes are checked so that a typo in
 * s3.multipart_threshold is an error, not a silent default. */
int
s3_config_from(const struct config *cfg, struct s3_settings *s, struct buf *err)
{
	return config_from(cfg, 1, s, err);
}

static int
config_from(const struct config *cfg, int ask, struct s3_settings *s, struct buf *err)
{
	const char *addr = config_get(cfg, "s3.addressing");
	int64_t thr = config_get_size(cfg, "s3.multipart_threshold");
	int64_t conc = config_get_int(cfg, "s3.upload_concurrency");
	int64_t ffc = config_get_int(cfg, "s3.fetch_connect_timeout_ms");

	s3_settings_defaults(s);
	if (ffc < 100 || ffc > 60000) {
		buf_addf(err, "s3.fetch_connect_timeout_ms is '%s'; use 100 to 60000 (ms)",
		    config_get(cfg, "s3.fetch_connect_timeout_ms"));
		return -1;
	}
	if (strcmp(addr, "path") != 0 && strcmp(addr, "virtual") != 0) {
		buf_addf(err, "s3.addressing is '%s'; use 'path' or 'virtual'", addr);
		return -1;
	}
	if (thr < 5 * (int64_t)MIB) {
		buf_addstr(err, "s3.multipart_threshold must be a size of at least 5M");
		return -1;
	}
	if (ca_file_check(config_get(cfg, "s3.ca_file"), err) < 0)
		return -1;
	if (*config_get(cfg, "s3.bucket") == '\0') {
		buf_addstr(err, "s3.bucket is not set; set KACHE_S3_BUCKET");
		return -1;
	}
	s->bucket = xstrdup(config_get(cfg, "s3.bucket"));
	s->prefix = xstrdup(config_get(cfg, "s3.prefix"));
	s->endpoint = xstrdup(config_get(cfg, "s3.endpoint"));
	s->region = xstrdup(config_get(cfg, "s3.region"));
	s->virtual_hosted = strcmp(addr, "virtual") == 0;
	s->ca_file = dup_nonempty(config_get(cfg, "s3.ca_file"));
	s->read_only = config_get_bool(cfg, "s3.read_only");
	s->multipart_threshold = (uint64_t)thr;
	s->upload_concurrency = conc > 0 && conc < 256 ? (int)conc : 4;
	s->fail_fast_connect_ms = (long)ffc;
	if (creds_resolve(cfg, ask, &s->creds, err) < 0) {
		s3_settings_clear(s);
		return -1;
	}
	return 0;
}

int
s3_config_check(const struct config *cfg, struct buf *err)
{
	struct s3_settings s;
	int rc;

	if (config_from(cfg, 0, &s, err) < 0)
		return -1;
	rc = s3_settings_check(&s, err);
	s3_settings_clear(&s);
	return rc;
}
