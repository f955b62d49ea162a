/* libFuzzer target: the signature trailer of a remote object and the trusted
 * key text of the configuration (remote/sign.c), both from outside. No input
 * may verify under a key it was not signed with; key text that parses must
 * format back to itself. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "remote/sign.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t n)
{
	static struct sign_keyset *ks;
	unsigned char pk[SIGN_PK_LEN], sk[crypto_sign_SECRETKEYBYTES], seed[32] = { 7 };
	char err[256], line[SIGN_PUBKEY_TEXT_MAX];
	struct sign_trailer t;
	size_t body;

	if (ks == NULL) {
		if (sodium_init() < 0)
			abort();
		crypto_sign_seed_keypair(pk, sk, seed);
		ks = sign_keyset_new();
		sign_keyset_add(ks, pk);
	}
	/* a signature over anything the fuzzer finds would be a forgery */
	if (sign_verify_mem(ks, "manifests/x", data, n, &body) == SIGN_OK)
		abort();
	if (n >= SIGN_TRAILER_LEN && sign_trailer_parse(data + n - SIGN_TRAILER_LEN, n, &t) == 1 &&
	    t.body_len != n - SIGN_TRAILER_LEN)
		abort();
	if (sign_pubkey_parse((const char *)data, n, pk, err, sizeof err) == 0) {
		sign_pubkey_format(pk, line, sizeof line);
		if (strlen(line) != n || strncasecmp(line, (const char *)data, n) != 0)
			abort();
	}
	return 0;
}
