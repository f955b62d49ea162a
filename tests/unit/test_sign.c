/* Unit tests for remote/sign.c: key files and key text, the trailer parser,
 * and the signature check over every truncation and every single bit flip of
 * a signed object, a wrong name, an unknown key. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/fs.h"
#include "common/util.h"
#include "remote/sign.h"

#define NAME "packs/serde/00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff.pack"

struct fx {
	char *dir;
	struct sign_secret *s;
	struct sign_keyset *ks;
	struct buf obj; /* a signed object: body || trailer */
	size_t body_len;
};

static int
setup(void **state)
{
	struct fx *f = xcalloc(1, sizeof *f);
	char t[] = "/tmp/kache-sign-XXXXXX";
	unsigned char pk[SIGN_PK_LEN], trailer[SIGN_TRAILER_LEN];
	static const char body[] = "\x28\xb5\x2f\xfd a pack body, any bytes \x00\x01\x02";

	assert_non_null(mkdtemp(t));
	f->dir = xstrdup(t);
	f->s = sign_secret_generate();
	assert_non_null(f->s);
	sign_secret_pk(f->s, pk);
	f->ks = sign_keyset_new();
	assert_int_equal(sign_keyset_add(f->ks, pk), 0);
	buf_init(&f->obj);
	f->body_len = sizeof body - 1;
	sign_mem(f->s, NAME, body, f->body_len, trailer);
	buf_add(&f->obj, body, f->body_len);
	buf_add(&f->obj, trailer, sizeof trailer);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	fs_remove_tree(f->dir);
	free(f->dir);
	sign_secret_free(&f->s);
	assert_null(f->s);
	sign_keyset_free(&f->ks);
	buf_free(&f->obj);
	free(f);
	return 0;
}

static void
test_signed_object_verifies(void **state)
{
	struct fx *f = *state;
	size_t body = 0;

	assert_int_equal(sign_verify_mem(f->ks, NAME, f->obj.p, f->obj.len, &body), SIGN_OK);
	assert_int_equal(body, f->body_len);
	assert_int_equal(f->obj.len, f->body_len + SIGN_TRAILER_LEN);
	assert_memory_equal(f->obj.p + f->body_len, SIGN_MAGIC, SIGN_MAGIC_LEN);
}

/* Every prefix of a signed object is refused: none is taken for signed. */
static void
test_every_truncation_refused(void **state)
{
	struct fx *f = *state;
	size_t body;

	for (size_t n = 0; n < f->obj.len; n++) {
		enum sign_verdict v = sign_verify_mem(f->ks, NAME, f->obj.p, n, &body);

		assert_int_not_equal(v, SIGN_OK);
	}
}

/* Every single bit flipped, in the body or the trailer, is refused. */
static void
test_every_bit_flip_refused(void **state)
{
	struct fx *f = *state;
	size_t body;

	for (size_t i = 0; i < f->obj.len; i++)
		for (int bit = 0; bit < 8; bit++) {
			f->obj.p[i] ^= (char)(1 << bit);
			assert_int_not_equal(sign_verify_mem(f->ks, NAME, f->obj.p, f->obj.len,
			                         &body),
			    SIGN_OK);
			f->obj.p[i] ^= (char)(1 << bit);
		}
	assert_int_equal(sign_verify_mem(f->ks, NAME, f->obj.p, f->obj.len, &body), SIGN_OK);
}

/* A signature is bound to the name: the same bytes under another are refused. */
static void
test_other_name_refused(void **state)
{
	struct fx *f = *state;
	size_t body;

	assert_int_equal(sign_verify_mem(f->ks, "packs/serde/other.pack", f->obj.p, f->obj.len,
	                     &body),
	    SIGN_BAD_SIGNATURE);
	assert_int_equal(sign_verify_mem(f->ks, "", f->obj.p, f->obj.len, &body),
	    SIGN_BAD_SIGNATURE);
	/* a name of the same length, one letter apart (a manifest moved) */
	{
		char other[] = NAME;

		other[sizeof other - 7] ^= 1;
		assert_int_equal(sign_verify_mem(f->ks, other, f->obj.p, f->obj.len, &body),
		    SIGN_BAD_SIGNATURE);
	}
}

static void
test_unknown_key_and_unsigned(void **state)
{
	struct fx *f = *state;
	struct sign_secret *other = sign_secret_generate();
	struct sign_keyset *ks = sign_keyset_new(), *none = sign_keyset_new();
	unsigned char pk[SIGN_PK_LEN];
	size_t body;

	sign_secret_pk(other, pk);
	assert_int_equal(sign_keyset_add(ks, pk), 0);
	assert_int_equal(sign_verify_mem(ks, NAME, f->obj.p, f->obj.len, &body), SIGN_UNKNOWN_KEY);
	assert_int_equal(sign_verify_mem(none, NAME, f->obj.p, f->obj.len, &body),
	    SIGN_UNKNOWN_KEY);
	assert_int_equal(sign_verify_mem(f->ks, NAME, f->obj.p, f->body_len, &body), SIGN_UNSIGNED);
	/* rotation: both keys trusted, each one's objects verify */
	sign_secret_pk(f->s, pk);
	assert_int_equal(sign_keyset_add(ks, pk), 0);
	assert_int_equal(sign_keyset_count(ks), 2);
	assert_int_equal(sign_verify_mem(ks, NAME, f->obj.p, f->obj.len, &body), SIGN_OK);
	sign_secret_free(&other);
	sign_keyset_free(&ks);
	sign_keyset_free(&none);
}

/* Every field of the trailer is checked: version, alg, reserved, length. */
static void
test_trailer_fields_checked(void **state)
{
	struct fx *f = *state;
	unsigned char *t = (unsigned char *)f->obj.p + f->body_len;
	struct sign_trailer tr;
	static const size_t at[] = { 8, 9, 10, 11, 20, 27 };

	assert_int_equal(sign_trailer_parse(t, f->obj.len, &tr), 1);
	assert_int_equal(tr.body_len, f->body_len);
	assert_int_equal(sign_trailer_parse(t, f->obj.len + 1, &tr), -1);
	assert_int_equal(sign_trailer_parse(t, SIGN_TRAILER_LEN - 1, &tr), 0);
	for (size_t i = 0; i < sizeof at / sizeof at[0]; i++) {
		t[at[i]] ^= 0x40;
		assert_int_equal(sign_trailer_parse(t, f->obj.len, &tr), -1);
		t[at[i]] ^= 0x40;
	}
	t[0] ^= 1;
	assert_int_equal(sign_trailer_parse(t, f->obj.len, &tr), 0);
	t[0] ^= 1;
}

static void
test_public_key_text(void **state)
{
	struct fx *f = *state;
	unsigned char pk[SIGN_PK_LEN], back[SIGN_PK_LEN];
	char line[SIGN_PUBKEY_TEXT_MAX], bad[SIGN_PUBKEY_TEXT_MAX], err[256], *list;
	struct sign_keyset *ks = sign_keyset_new();

	sign_secret_pk(f->s, pk);
	sign_pubkey_format(pk, line, sizeof line);
	assert_int_equal(strlen(line), SIGN_ID_HEX_LEN + 1 + 44);
	assert_int_equal(sign_pubkey_parse(line, strlen(line), back, err, sizeof err), 0);
	assert_memory_equal(pk, back, SIGN_PK_LEN);
	snprintf(bad, sizeof bad, "%s", line);
	bad[0] = bad[0] == '0' ? '1' : '0'; /* an id that is not the key's */
	assert_int_equal(sign_pubkey_parse(bad, strlen(bad), back, err, sizeof err), -1);
	assert_non_null(strstr(err, "does not match"));
	assert_int_equal(sign_pubkey_parse(line, strlen(line) - 1, back, err, sizeof err), -1);
	assert_int_equal(sign_pubkey_parse("kache-secret-key-1:00", 21, back, err, sizeof err), -1);
	assert_non_null(strstr(err, "secret key"));
	list = xasprintf("[\"%s\", '%s']", line, line);
	assert_int_equal(sign_keyset_parse(ks, list, err, sizeof err), 0);
	assert_int_equal(sign_keyset_count(ks), 1); /* duplicates once */
	free(list);
	list = xasprintf("%s,%sx", line, line);
	assert_int_equal(sign_keyset_parse(ks, list, err, sizeof err), -1);
	free(list);
	assert_int_equal(sign_keyset_parse(ks, "  [ ] ", err, sizeof err), 0);
	sign_keyset_free(&ks);
}

/* The key file: written 0600, never over an existing file, read back whole;
 * group- or other-readable refused with what to do; damaged refused. */
static void
test_secret_key_file(void **state)
{
	struct fx *f = *state;
	char *path = xasprintf("%s/k", f->dir), err[512];
	unsigned char pk[SIGN_PK_LEN], pk2[SIGN_PK_LEN];
	struct sign_secret *s;
	struct stat st;
	struct buf b;

	assert_int_equal(sign_secret_write(f->s, path, err, sizeof err), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(sign_secret_write(f->s, path, err, sizeof err), -1);
	assert_non_null(strstr(err, "exists"));
	s = sign_secret_load(path, err, sizeof err);
	assert_non_null(s);
	sign_secret_pk(s, pk);
	sign_secret_pk(f->s, pk2);
	assert_memory_equal(pk, pk2, SIGN_PK_LEN);
	sign_secret_free(&s);
	assert_int_equal(chmod(path, 0644), 0);
	assert_null(sign_secret_load(path, err, sizeof err));
	assert_non_null(strstr(err, "chmod 600"));
	assert_int_equal(sign_secret_check_file(path, err, sizeof err), -1);
	assert_int_equal(chmod(path, 0600), 0);
	buf_init(&b);
	assert_int_equal(fs_read_file(path, &b, 4096), 0);
	b.p[40] = b.p[40] == 'A' ? 'B' : 'A'; /* the id no longer the key's */
	unlink(path);
	assert_int_equal(fs_write_atomic(path, b.p, b.len, 0600), 0);
	assert_null(sign_secret_load(path, err, sizeof err));
	assert_non_null(strstr(err, "not a kache secret key"));
	unlink(path); /* empty, then too long: its text padded with spaces past 255 bytes */
	assert_int_equal(fs_write_atomic(path, "", 0, 0600), 0);
	assert_null(sign_secret_load(path, err, sizeof err));
	assert_non_null(strstr(err, "is empty or too long"));
	unlink(path);
	assert_int_equal(sign_secret_write(f->s, path, err, sizeof err), 0);
	buf_free(&b);
	buf_init(&b);
	assert_int_equal(fs_read_file(path, &b, 4096), 0);
	while (b.len < 256)
		buf_addstr(&b, " ");
	unlink(path);
	assert_int_equal(fs_write_atomic(path, b.p, b.len, 0600), 0);
	assert_null(sign_secret_load(path, err, sizeof err));
	assert_non_null(strstr(err, "is empty or too long"));
	buf_free(&b);
	free(path);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_signed_object_verifies, setup, teardown),
		cmocka_unit_test_setup_teardown(test_every_truncation_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_every_bit_flip_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_other_name_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_key_and_unsigned, setup, teardown),
		cmocka_unit_test_setup_teardown(test_trailer_fields_checked, setup, teardown),
		cmocka_unit_test_setup_teardown(test_public_key_text, setup, teardown),
		cmocka_unit_test_setup_teardown(test_secret_key_file, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
