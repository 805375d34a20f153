/* token.h - registry tokens (the docker login password from GetAuthorizationToken).
 *
 * password = base64url(payload) "." base64url(HMAC-SHA256(key, payload)), where payload is
 * "v1|<account>|<region>|<expiry epoch seconds>|<16 random hex>". Any node holding the key can
 * verify it without state. */
#ifndef BERTH_TOKEN_H
#define BERTH_TOKEN_H

#include "../base/err.h"

#include <stddef.h>
#include <stdint.h>

struct token_claims {
	char account[13];
	char region[64];
	int64_t expires_at; /* epoch seconds */
};

/* Returns a new password string. */
char *token_issue(const unsigned char *key, size_t keylen, const struct token_claims *c);
/* Verifies signature and expiry. BERR_AUTH_SIGNATURE if malformed or forged,
 * BERR_TOKEN_EXPIRED if past expires_at (claims are still filled). */
enum berr_code token_verify(const unsigned char *key, size_t keylen, const char *password,
                            int64_t now_s, struct token_claims *out, struct berr *err);

#endif
