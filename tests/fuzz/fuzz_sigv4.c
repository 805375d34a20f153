/* fuzz_sigv4.c - libFuzzer target: SigV4 Authorization parsing, canonicalisation and verify, and
 * registry-token verification, all on client-controlled bytes.
 *
 * Input: '\n'-separated fields, all optional:
 *   Authorization value \n path \n query \n X-Amz-Date \n Date \n value of any other header
 * The whole input (as one string) is also fed to sigv4_parse_authorization and token_verify, so
 * plain header values and raw passwords work as seeds too. Bytes after a NUL are ignored by the
 * string APIs, which is what the HTTP layer hands over. Nothing here may crash, leak or trip a
 * sanitizer; results are not checked except for internal consistency. */
#include "base/feat.h"

#include "base/buf.h"
#include "base/err.h"
#include "base/mem.h"
#include "crypto/sigv4.h"
#include "crypto/token.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NFIELDS 6
#define NOW_MS 1440938160000LL /* 20150830T123600Z, the AWS test-suite date */

struct fields {
	const char *f[NFIELDS];
};

static const char *fuzz_header(void *ctx, const char *lower_name)
{
	const struct fields *fs = ctx;
	if (strcmp(lower_name, "x-amz-date") == 0)
		return fs->f[3];
	if (strcmp(lower_name, "date") == 0)
		return fs->f[4];
	return fs->f[5];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const unsigned char key[] = "fuzz-token-key";
	char *whole = xmalloc(size + 1);
	memcpy(whole, data, size);
	whole[size] = '\0';

	struct berr err;
	struct sigv4_auth auth;
	struct token_claims claims;
	err_clear(&err);
	sigv4_parse_authorization(whole, &auth, &err);
	token_verify(key, sizeof(key) - 1, whole, NOW_MS / 1000, &claims, &err);

	/* Split a copy into fields. */
	char *copy = xstrdup(whole);
	struct fields fs = {{NULL, NULL, NULL, NULL, NULL, NULL}};
	char *p = copy;
	for (int i = 0; i < NFIELDS && p; i++) {
		fs.f[i] = p;
		p = strchr(p, '\n');
		if (p)
			*p++ = '\0';
	}

	if (fs.f[0] && sigv4_parse_authorization(fs.f[0], &auth, &err) == BERR_OK) {
		struct sigv4_request req = {
		    .method = "POST",
		    .path = fs.f[1],
		    .query = fs.f[2],
		    .header = fuzz_header,
		    .header_ctx = &fs,
		    .payload_hash =
		        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		};
		struct buf creq, sts;
		buf_init(&creq, 1 << 20);
		buf_init(&sts, 0);
		if (sigv4_canonical_request(&req, &auth, &creq, &err) == BERR_OK &&
		    sigv4_string_to_sign("20150830T123600Z", &auth, creq.p, &sts, &err) ==
		        BERR_OK) {
			char sig[65];
			sigv4_signature_compute("secret", &auth, sts.p, sig);
			if (strlen(sig) != 64)
				abort();
		}
		enum berr_code rc = sigv4_verify(&req, &auth, "secret", NOW_MS, &err);
		if (rc != BERR_OK && err.msg[0] == '\0')
			abort();
		buf_free(&creq);
		buf_free(&sts);
	}

	free(copy);
	free(whole);
	return 0;
}
