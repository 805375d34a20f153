/* sigv4.h - AWS Signature Version 4 verification (header-based, AWS4-HMAC-SHA256). Pure. */
#ifndef BERTH_SIGV4_H
#define BERTH_SIGV4_H

#include "../base/buf.h"
#include "../base/err.h"

#include <stdint.h>

/* Parsed `Authorization: AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/ecr/aws4_request,
 * SignedHeaders=host;x-amz-date, Signature=<64 hex>` */
struct sigv4_auth {
	char akid[129];
	char date[9]; /* yyyymmdd from the scope */
	char region[64];
	char service[64];
	char signed_headers[1024]; /* as given, lowercased: names separated by ';' */
	char signature[65];
};

/* Parses an Authorization header value. BERR_AUTH_MISSING if it is not an AWS4-HMAC-SHA256
 * header at all; BERR_AUTH_SIGNATURE ("Authorization header requires ... ") when malformed. */
enum berr_code sigv4_parse_authorization(const char *value, struct sigv4_auth *out,
                                         struct berr *err);

/* Returns the value of a request header (name given in lowercase), or NULL if absent. A header
 * sent several times should be returned as its values joined with ',' in arrival order (the
 * canonical form AWS signs); returning only the first value is correct for single headers. */
typedef const char *(*sigv4_header_fn)(void *ctx, const char *lower_name);

struct sigv4_request {
	const char *method;     /* "POST" */
	const char *path;       /* raw path as sent, e.g. "/" (percent-encoding as sent) */
	const char *query;      /* raw query string without '?', may be NULL or "" */
	sigv4_header_fn header; /* header lookup */
	void *header_ctx;
	const char *payload_hash; /* lowercase hex SHA-256 of the body */
};

/* Builds the canonical request text (AWS docs "Create a canonical request") into out, replacing
 * its content. BERR_TOO_LARGE if out's limit is reached. */
enum berr_code sigv4_canonical_request(const struct sigv4_request *req,
                                       const struct sigv4_auth *auth, struct buf *out,
                                       struct berr *err);
/* Builds the string to sign from amz_date (yyyymmddThhmmssZ), scope fields and canonical text
 * into out, replacing its content. */
enum berr_code sigv4_string_to_sign(const char *amz_date, const struct sigv4_auth *auth,
                                    const char *canonical_request, struct buf *out,
                                    struct berr *err);
/* Hex HMAC-SHA256 signature of string_to_sign with the key derived from secret and the scope
 * (date, region, service) of auth. out gets 64 lowercase hex digits + NUL. Used by verify and by
 * tests/clients that sign. */
void sigv4_signature_compute(const char *secret, const struct sigv4_auth *auth,
                             const char *string_to_sign, char out[65]);
/* Full check: X-Amz-Date (or Date) header present and within 15 minutes of now_ms
 * (BERR_AUTH_SKEW "Signature expired: ..." otherwise), scope date matches it, signature
 * recomputed with secret and compared in constant time (BERR_AUTH_SIGNATURE
 * "The request signature we calculated does not match the signature you provided. ..."). */
enum berr_code sigv4_verify(const struct sigv4_request *req, const struct sigv4_auth *auth,
                            const char *secret, int64_t now_ms, struct berr *err);

#endif
