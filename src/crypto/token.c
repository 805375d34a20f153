/* token.c - registry tokens: the password `docker login` gets from GetAuthorizationToken.
 *
 * Format (see token.h): base64url(payload) "." base64url(HMAC-SHA256(key, payload)) with
 * payload "v1|<12-digit account>|<region>|<expiry epoch s>|<16 lowercase hex random>".
 * Design: stateless; any node holding the key verifies. The MAC is checked, in constant time,
 * before a single byte of the payload is interpreted, so forged input never reaches the field
 * parser; every malformed or forged token gets the same message (no oracle). A token is valid
 * while now < expires_at. */
#include "../base/feat.h"

#include "token.h"
#include "sha256.h"
#include "../base/mem.h"
#include "../base/util.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOKEN_VERSION "v1"
/* Far above any real token (~150 chars); bounds the work spent on garbage. */
#define TOKEN_MAX_LEN 1024
#define NONCE_BYTES 8

static const char msg_invalid[] = "Your authorization token is invalid.";
static const char msg_expired[] =
    "Your authorization token has expired. Reauthenticate and try again.";

char *token_issue(const unsigned char *key, size_t keylen, const struct token_claims *c)
{
	unsigned char nonce[NONCE_BYTES], mac[SHA256_DIGEST_LEN];
	char nonce_hex[2 * NONCE_BYTES + 1];
	rand_bytes(nonce, sizeof(nonce));
	hex_encode(nonce, sizeof(nonce), nonce_hex);
	char *payload = xasprintf(TOKEN_VERSION "|%s|%s|%lld|%s", c->account, c->region,
	                          (long long)c->expires_at, nonce_hex);
	size_t plen = strlen(payload);
	hmac_sha256(key, keylen, payload, plen, mac);
	char *p64 = base64url_encode(payload, plen);
	char *m64 = base64url_encode(mac, sizeof(mac));
	char *out = xasprintf("%s.%s", p64, m64);
	free(payload);
	free(p64);
	free(m64);
	return out;
}

static bool all_digits(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

static bool region_ok(const char *s, size_t n)
{
	if (n < 1 || n > 63)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
			return false;
	return true;
}

static bool lower_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

/* Parses an authenticated payload into out; false if it is not a v1 payload. */
static bool payload_parse(const char *p, size_t n, struct token_claims *out)
{
	const char *f[5];
	size_t flen[5], nf = 0, start = 0;
	for (size_t i = 0; i <= n; i++) {
		if (i < n && p[i] == '\0')
			return false;
		if (i == n || p[i] == '|') {
			if (nf == 5)
				return false;
			f[nf] = p + start;
			flen[nf] = i - start;
			nf++;
			start = i + 1;
		}
	}
	if (nf != 5)
		return false;
	if (flen[0] != strlen(TOKEN_VERSION) || memcmp(f[0], TOKEN_VERSION, flen[0]) != 0)
		return false;
	if (flen[1] != 12 || !all_digits(f[1], 12))
		return false;
	if (!region_ok(f[2], flen[2]))
		return false;
	/* 1..18 digits: always fits an int64_t. */
	if (flen[3] < 1 || flen[3] > 18 || !all_digits(f[3], flen[3]))
		return false;
	if (flen[4] != 2 * NONCE_BYTES || !lower_hex(f[4], flen[4]))
		return false;
	int64_t exp = 0;
	for (size_t i = 0; i < flen[3]; i++)
		exp = exp * 10 + (f[3][i] - '0');
	memcpy(out->account, f[1], 12);
	out->account[12] = '\0';
	memcpy(out->region, f[2], flen[2]);
	out->region[flen[2]] = '\0';
	out->expires_at = exp;
	return true;
}

enum berr_code token_verify(const unsigned char *key, size_t keylen, const char *password,
                            int64_t now_s, struct token_claims *out, struct berr *err)
{
	memset(out, 0, sizeof(*out));
	if (!password)
		return err_set(err, BERR_AUTH_SIGNATURE, "%s", msg_invalid);
	size_t n = strnlen(password, TOKEN_MAX_LEN + 1);
	const char *dot = memchr(password, '.', n);
	if (n > TOKEN_MAX_LEN || !dot || memchr(dot + 1, '.', n - (size_t)(dot - password) - 1))
		return err_set(err, BERR_AUTH_SIGNATURE, "%s", msg_invalid);

	unsigned char *payload = NULL, *mac = NULL;
	size_t plen = 0, mlen = 0;
	enum berr_code rc = BERR_AUTH_SIGNATURE;
	size_t p64len = (size_t)(dot - password);
	if (base64url_decode(password, p64len, &payload, &plen, NULL) != BERR_OK ||
	    base64url_decode(dot + 1, n - p64len - 1, &mac, &mlen, NULL) != BERR_OK ||
	    mlen != SHA256_DIGEST_LEN)
		goto out;
	unsigned char want[SHA256_DIGEST_LEN];
	hmac_sha256(key, keylen, payload, plen, want);
	if (!crypto_equal(want, mac, sizeof(want)))
		goto out;
	if (!payload_parse((const char *)payload, plen, out))
		goto out;
	rc = now_s >= out->expires_at ? BERR_TOKEN_EXPIRED : BERR_OK;
out:
	free(payload);
	free(mac);
	if (rc == BERR_AUTH_SIGNATURE) {
		memset(out, 0, sizeof(*out));
		return err_set(err, rc, "%s", msg_invalid);
	}
	if (rc == BERR_TOKEN_EXPIRED)
		return err_set(err, rc, "%s", msg_expired);
	return BERR_OK;
}
