/* test_token.c - registry tokens: issue/verify round trip, expiry, and rejection of tampered,
 * forged and garbage passwords. Expected MACs are computed here with hmac_sha256 so the tests
 * can build tokens that carry a valid signature over a payload token_issue would never make. */
#include "base/feat.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/mem.h"
#include "crypto/sha256.h"
#include "crypto/token.h"

static const unsigned char key[32] = "0123456789abcdef0123456789abcdef";
static const unsigned char other_key[32] = "0123456789abcdef0123456789abcdeF";
#define NOW 1709288430LL

static const char msg_invalid[] = "Your authorization token is invalid.";
static const char msg_expired[] =
    "Your authorization token has expired. Reauthenticate and try again.";

/* New token for an arbitrary payload, signed with k. */
static char *sign_payload(const unsigned char *k, size_t klen, const char *payload)
{
	unsigned char mac[SHA256_DIGEST_LEN];
	hmac_sha256(k, klen, payload, strlen(payload), mac);
	char *p = base64url_encode(payload, strlen(payload));
	char *m = base64url_encode(mac, sizeof(mac));
	char *t = xasprintf("%s.%s", p, m);
	free(p);
	free(m);
	return t;
}

static enum berr_code verify(const char *pw, int64_t now, struct token_claims *c, struct berr *e)
{
	err_clear(e);
	return token_verify(key, sizeof(key), pw, now, c, e);
}

static void expect_invalid(const char *pw)
{
	struct token_claims c;
	struct berr e;
	assert_int_equal(verify(pw, NOW, &c, &e), BERR_AUTH_SIGNATURE);
	assert_string_equal(e.msg, msg_invalid);
	assert_string_equal(c.account, "");
	assert_string_equal(c.region, "");
	assert_int_equal(c.expires_at, 0);
}

static void test_round_trip(void **state)
{
	(void)state;
	struct token_claims in = {"123456789012", "eu-west-1", NOW + 43200};
	char *t = token_issue(key, sizeof(key), &in);
	struct token_claims out;
	struct berr e;
	assert_int_equal(verify(t, NOW, &out, &e), BERR_OK);
	assert_string_equal(out.account, "123456789012");
	assert_string_equal(out.region, "eu-west-1");
	assert_int_equal(out.expires_at, NOW + 43200);
	/* Shape: payload "." mac, base64url without padding, MAC of 32 bytes -> 43 chars. */
	const char *dot = strchr(t, '.');
	assert_non_null(dot);
	assert_null(strchr(dot + 1, '.'));
	assert_int_equal(strlen(dot + 1), 43);
	assert_null(strpbrk(t, "+/="));

	/* Two issues of the same claims differ (random nonce) and both verify. */
	char *t2 = token_issue(key, sizeof(key), &in);
	assert_string_not_equal(t, t2);
	assert_int_equal(verify(t2, NOW, &out, &e), BERR_OK);

	/* The payload decodes to the documented v1 layout. */
	unsigned char *p = NULL;
	size_t plen = 0;
	assert_int_equal(base64url_decode(t, (size_t)(dot - t), &p, &plen, NULL), BERR_OK);
	char *payload = xstrndup((const char *)p, plen);
	char nonce[17];
	long long exp = 0;
	int used = 0;
	assert_int_equal(
	    sscanf(payload, "v1|123456789012|eu-west-1|%lld|%16[0-9a-f]%n", &exp, nonce, &used), 2);
	assert_int_equal(exp, NOW + 43200);
	assert_int_equal((size_t)used, plen);
	free(payload);
	free(p);
	free(t);
	free(t2);
}

static void test_regions_and_accounts(void **state)
{
	(void)state;
	static const char *const regions[] = {
	    "us-east-1",
	    "a",
	    "cn-northwest-1",
	    "us-gov-west-1",
	    "abcdefghijklmnopqrstuvwxyz0123456789-abcdefghijklmnopqrstuvwxyz", /* 63 */
	};
	for (size_t i = 0; i < ARRAY_LEN(regions); i++) {
		struct token_claims in = {"000000000000", "", NOW + 1};
		snprintf(in.region, sizeof(in.region), "%s", regions[i]);
		char *t = token_issue(key, sizeof(key), &in);
		struct token_claims out;
		struct berr e;
		assert_int_equal(verify(t, NOW, &out, &e), BERR_OK);
		assert_string_equal(out.region, regions[i]);
		assert_string_equal(out.account, "000000000000");
		free(t);
	}
}

static void test_expiry(void **state)
{
	(void)state;
	struct token_claims in = {"123456789012", "us-east-1", NOW};
	char *t = token_issue(key, sizeof(key), &in);
	struct token_claims out;
	struct berr e;
	assert_int_equal(verify(t, NOW - 1, &out, &e), BERR_OK);
	/* Valid while now < expires_at. */
	assert_int_equal(verify(t, NOW, &out, &e), BERR_TOKEN_EXPIRED);
	assert_string_equal(e.msg, msg_expired);
	/* Claims are still filled for an expired token. */
	assert_string_equal(out.account, "123456789012");
	assert_string_equal(out.region, "us-east-1");
	assert_int_equal(out.expires_at, NOW);
	assert_int_equal(verify(t, NOW + 86400 * 365, &out, &e), BERR_TOKEN_EXPIRED);
	free(t);

	/* Expiry 0 (the epoch) is well-formed and long expired. */
	char *z = sign_payload(key, sizeof(key), "v1|123456789012|us-east-1|0|0123456789abcdef");
	assert_int_equal(verify(z, NOW, &out, &e), BERR_TOKEN_EXPIRED);
	assert_int_equal(out.expires_at, 0);
	free(z);
}

static void test_wrong_key(void **state)
{
	(void)state;
	struct token_claims in = {"123456789012", "us-east-1", NOW + 60};
	char *t = token_issue(other_key, sizeof(other_key), &in);
	expect_invalid(t);
	free(t);
	/* A key that is a prefix of the right one is a different key. */
	t = token_issue(key, sizeof(key) - 1, &in);
	expect_invalid(t);
	free(t);
	/* Expired and forged: forged wins (nothing about the claims is revealed). */
	in.expires_at = NOW - 60;
	t = token_issue(other_key, sizeof(other_key), &in);
	expect_invalid(t);
	free(t);
}

static void test_tampered_payload(void **state)
{
	(void)state;
	struct token_claims in = {"123456789012", "us-east-1", NOW + 60};
	char *t = token_issue(key, sizeof(key), &in);
	const char *dot = strchr(t, '.');
	/* Re-encode a modified payload but keep the original MAC. */
	unsigned char *p = NULL;
	size_t plen = 0;
	assert_int_equal(base64url_decode(t, (size_t)(dot - t), &p, &plen, NULL), BERR_OK);
	char *payload = xstrndup((const char *)p, plen);
	char *at = strstr(payload, "|17");
	assert_non_null(at);
	at[1] = '9'; /* push the expiry far into the future */
	char *p64 = base64url_encode(payload, plen);
	char *forged = xasprintf("%s%s", p64, dot);
	expect_invalid(forged);
	free(forged);
	free(p64);
	/* Account swapped for another. */
	memcpy(payload + 3, "999999999999", 12);
	p64 = base64url_encode(payload, plen);
	forged = xasprintf("%s%s", p64, dot);
	expect_invalid(forged);
	free(forged);
	free(p64);
	/* Every single-character change of the encoded payload is rejected. */
	for (size_t i = 0; i < (size_t)(dot - t); i++) {
		char *c = xstrdup(t);
		c[i] = c[i] == 'A' ? 'B' : 'A';
		expect_invalid(c);
		free(c);
	}
	free(payload);
	free(p);
	free(t);
}

static void test_tampered_signature(void **state)
{
	(void)state;
	struct token_claims in = {"123456789012", "us-east-1", NOW + 60};
	char *t = token_issue(key, sizeof(key), &in);
	size_t dot = (size_t)(strchr(t, '.') - t);
	for (size_t i = dot + 1; t[i]; i++) {
		char *c = xstrdup(t);
		c[i] = c[i] == 'A' ? 'B' : 'A';
		expect_invalid(c);
		free(c);
	}
	/* Truncated, extended, or missing MAC. */
	char *c = xstrdup(t);
	c[strlen(c) - 1] = '\0';
	expect_invalid(c);
	free(c);
	c = xasprintf("%sAA", t);
	expect_invalid(c);
	free(c);
	c = xstrndup(t, dot + 1);
	expect_invalid(c);
	free(c);
	c = xstrndup(t, dot);
	expect_invalid(c);
	free(c);
	free(t);
}

/* Payloads with a valid MAC but not of the v1 shape are still refused. */
static void test_signed_but_malformed(void **state)
{
	(void)state;
	static const char *const bad[] = {
	    "",
	    "v1",
	    "v2|123456789012|us-east-1|1709288490|0123456789abcdef",
	    "V1|123456789012|us-east-1|1709288490|0123456789abcdef",
	    "v1|12345678901|us-east-1|1709288490|0123456789abcdef",
	    "v1|1234567890123|us-east-1|1709288490|0123456789abcdef",
	    "v1|12345678901a|us-east-1|1709288490|0123456789abcdef",
	    "v1|123456789012|US-EAST-1|1709288490|0123456789abcdef",
	    "v1|123456789012|us_east_1|1709288490|0123456789abcdef",
	    "v1|123456789012||1709288490|0123456789abcdef",
	    ("v1|123456789012|abcdefghijklmnopqrstuvwxyz0123456789-abcdefghijklmnopqrstuvwxyz0|"
	     "1709288490|0123456789abcdef"),
	    "v1|123456789012|us-east-1||0123456789abcdef",
	    "v1|123456789012|us-east-1|-1|0123456789abcdef",
	    "v1|123456789012|us-east-1|+1709288490|0123456789abcdef",
	    "v1|123456789012|us-east-1|1709288490 |0123456789abcdef",
	    "v1|123456789012|us-east-1|9999999999999999999|0123456789abcdef",
	    "v1|123456789012|us-east-1|1709288490|0123456789ABCDEF",
	    "v1|123456789012|us-east-1|1709288490|0123456789abcde",
	    "v1|123456789012|us-east-1|1709288490|0123456789abcdef0",
	    "v1|123456789012|us-east-1|1709288490",
	    "v1|123456789012|us-east-1|1709288490|0123456789abcdef|",
	    "v1|123456789012|us-east-1|1709288490|0123456789abcdef|x",
	    "|v1|123456789012|us-east-1|1709288490|0123456789abcdef",
	};
	for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
		char *t = sign_payload(key, sizeof(key), bad[i]);
		expect_invalid(t);
		free(t);
	}
	/* An embedded NUL is refused too (payload built by hand). */
	static const char nul[] = "v1|123456789012|us-east-1|1709288490|0123456789abcde\0";
	unsigned char mac[SHA256_DIGEST_LEN];
	hmac_sha256(key, sizeof(key), nul, sizeof(nul) - 1, mac);
	char *p = base64url_encode(nul, sizeof(nul) - 1);
	char *m = base64url_encode(mac, sizeof(mac));
	char *t = xasprintf("%s.%s", p, m);
	expect_invalid(t);
	free(t);
	free(p);
	free(m);
	/* The control: a hand-built good payload verifies. */
	t = sign_payload(key, sizeof(key), "v1|123456789012|us-east-1|1709288490|0123456789abcdef");
	struct token_claims c;
	struct berr e;
	assert_int_equal(verify(t, NOW, &c, &e), BERR_OK);
	assert_int_equal(c.expires_at, 1709288490);
	free(t);
}

static void test_garbage(void **state)
{
	(void)state;
	static const char *const bad[] = {
	    "",
	    ".",
	    "..",
	    "abc",
	    "abc.",
	    ".abc",
	    "a.b.c",
	    "AWS:password",
	    "QVdTOnBhc3N3b3Jk",
	    "dGVzdA==.dGVzdA==",
	    "!!!!.????",
	    "djF8.AAAA",
	    "a b.c d",
	    /* standard-base64 characters are not base64url */
	    "djF8MTIzNDU2Nzg5MDEy+/.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
	};
	for (size_t i = 0; i < ARRAY_LEN(bad); i++)
		expect_invalid(bad[i]);
	expect_invalid(NULL);

	/* Oversized input is refused without decoding it. */
	char *big = xmalloc(5000);
	memset(big, 'A', 4999);
	big[4999] = '\0';
	big[2000] = '.';
	expect_invalid(big);
	free(big);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_round_trip),
	    cmocka_unit_test(test_regions_and_accounts),
	    cmocka_unit_test(test_expiry),
	    cmocka_unit_test(test_wrong_key),
	    cmocka_unit_test(test_tampered_payload),
	    cmocka_unit_test(test_tampered_signature),
	    cmocka_unit_test(test_signed_but_malformed),
	    cmocka_unit_test(test_garbage),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
