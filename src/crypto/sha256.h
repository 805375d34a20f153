/* sha256.h - streaming SHA-256 whose state can be saved and resumed.
 *
 * Upload sessions hash bytes as they arrive, across many requests and possibly across nodes;
 * the running state is persisted with the session (sha256_state_export) so completing an upload
 * never re-reads the file. The exported form is the raw OpenSSL SHA256_CTX: valid only between
 * builds on the same architecture, which is checked by its size and a version tag. */
#ifndef BERTH_SHA256_H
#define BERTH_SHA256_H

#include "../base/err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SHA256_DIGEST_LEN 32
/* "sha256:" + 64 hex + NUL */
#define DIGEST_STR_LEN 72

struct sha256 {
	/* opaque storage for OpenSSL's SHA256_CTX (112 bytes on LP64) */
	uint64_t st[16];
};

void sha256_init(struct sha256 *h);
void sha256_update(struct sha256 *h, const void *data, size_t n);
void sha256_final(struct sha256 *h, unsigned char out[SHA256_DIGEST_LEN]);
/* Convenience: one-shot hash to "sha256:<hex>". */
void sha256_digest_str(const void *data, size_t n, char out[DIGEST_STR_LEN]);
/* Finishes a copy of h (h stays usable) as "sha256:<hex>". */
void sha256_peek_str(const struct sha256 *h, char out[DIGEST_STR_LEN]);

/* Size of the exported state. */
size_t sha256_state_size(void);
/* Copies the state into out (sha256_state_size() bytes). */
void sha256_state_export(const struct sha256 *h, void *out);
/* Restores a state; false if the blob is not a state of this build's format. */
bool sha256_state_import(struct sha256 *h, const void *in, size_t n);

/* HMAC-SHA256 (one shot). */
void hmac_sha256(const void *key, size_t keylen, const void *data, size_t n,
                 unsigned char out[SHA256_DIGEST_LEN]);
/* Constant-time comparison. */
bool crypto_equal(const void *a, const void *b, size_t n);

/* Standard base64 with padding. encode: out gets a new NUL-terminated string. */
char *base64_encode(const void *in, size_t n);
/* Unpadded base64url. */
char *base64url_encode(const void *in, size_t n);
/* Strict standard base64 decode (padding required, no whitespace). *out is new, *outlen set.
 * BERR_INVALID on malformed input. */
enum berr_code base64_decode(const char *in, size_t n, unsigned char **out, size_t *outlen,
                             struct berr *err);
/* base64url without padding. */
enum berr_code base64url_decode(const char *in, size_t n, unsigned char **out, size_t *outlen,
                                struct berr *err);

#endif
