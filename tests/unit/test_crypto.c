/* test_crypto.c - unit tests for crypto/sha256: SHA-256 vectors (FIPS 180-2 / NIST CAVP),
 * streaming and resumable state, HMAC-SHA256 (RFC 4231), base64/base64url (RFC 4648) and
 * constant-time comparison. */
#include "base/feat.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "base/util.h"
#include "crypto/sha256.h"

#include <stdlib.h>
#include <string.h>

static void hex_of(const unsigned char *md, size_t n, char *out)
{
	hex_encode(md, n, out);
}

/* One-shot digest through init/update/final, as lowercase hex. */
static void sha_hex(const void *data, size_t n, char out[65])
{
	struct sha256 h;
	unsigned char md[SHA256_DIGEST_LEN];
	sha256_init(&h);
	sha256_update(&h, data, n);
	sha256_final(&h, md);
	hex_of(md, sizeof(md), out);
}

static const struct {
	const char *msg;
	const char *hex;
} vectors[] = {
    {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
    {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
    /* 448-bit message (FIPS 180-2 B.2) */
    {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
     "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
    /* 896-bit message (FIPS 180-4 examples) */
    {"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmn"
     "opqrsmnopqrstnopqrstu",
     "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"},
};

static void test_sha256_vectors(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
		char hex[65];
		sha_hex(vectors[i].msg, strlen(vectors[i].msg), hex);
		assert_string_equal(hex, vectors[i].hex);
		char d[DIGEST_STR_LEN];
		sha256_digest_str(vectors[i].msg, strlen(vectors[i].msg), d);
		assert_memory_equal(d, "sha256:", 7);
		assert_string_equal(d + 7, vectors[i].hex);
	}
}

static void test_sha256_million_a_streamed(void **state)
{
	(void)state;
	static const char want[] =
	    "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0";
	static const size_t chunks[] = {1, 3, 7, 13, 55, 63, 64, 65, 127, 128, 129, 1000, 4093};
	enum { TOTAL = 1000000 };
	char *a = malloc(4096);
	assert_non_null(a);
	memset(a, 'a', 4096);
	struct sha256 h;
	sha256_init(&h);
	size_t done = 0, k = 0;
	while (done < TOTAL) {
		size_t n = chunks[k++ % (sizeof(chunks) / sizeof(chunks[0]))];
		if (n > TOTAL - done)
			n = TOTAL - done;
		sha256_update(&h, a, n);
		sha256_update(&h, a, 0); /* empty updates are no-ops */
		done += n;
	}
	unsigned char md[SHA256_DIGEST_LEN];
	char hex[65];
	sha256_final(&h, md);
	hex_of(md, sizeof(md), hex);
	assert_string_equal(hex, want);

	/* and in one piece */
	char *big = malloc(TOTAL);
	assert_non_null(big);
	memset(big, 'a', TOTAL);
	sha_hex(big, TOTAL, hex);
	assert_string_equal(hex, want);
	free(big);
	free(a);
}

static void test_sha256_digest_str_format(void **state)
{
	(void)state;
	unsigned char bytes[256];
	for (size_t i = 0; i < sizeof(bytes); i++)
		bytes[i] = (unsigned char)i;
	char d[DIGEST_STR_LEN];
	memset(d, 'X', sizeof(d));
	sha256_digest_str(bytes, sizeof(bytes), d);
	assert_int_equal(DIGEST_STR_LEN, 72);
	assert_int_equal(strlen(d), 71);
	assert_memory_equal(d, "sha256:", 7);
	for (size_t i = 7; i < 71; i++)
		if (!((d[i] >= '0' && d[i] <= '9') || (d[i] >= 'a' && d[i] <= 'f')))
			fail_msg("digest char %zu is '%c'", i, d[i]);
	char hex[65];
	sha_hex(bytes, sizeof(bytes), hex);
	assert_string_equal(d + 7, hex);
	/* 40aff2e9d2d8922e47afd4648e6967497158785fbd1da870e7110266bf944880 = sha256(0..255) */
	assert_string_equal(
	    d, "sha256:40aff2e9d2d8922e47afd4648e6967497158785fbd1da870e7110266bf944880");
}

static void test_sha256_peek(void **state)
{
	(void)state;
	const char *msg = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
	struct sha256 h;
	sha256_init(&h);
	char p[DIGEST_STR_LEN], want[DIGEST_STR_LEN];
	sha256_peek_str(&h, p);
	sha256_digest_str("", 0, want);
	assert_string_equal(p, want);
	sha256_update(&h, msg, 3);
	sha256_peek_str(&h, p);
	assert_string_equal(
	    p, "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	/* peeking does not disturb the running hash */
	sha256_update(&h, msg + 3, strlen(msg) - 3);
	unsigned char md[SHA256_DIGEST_LEN];
	char hex[65];
	sha256_final(&h, md);
	hex_of(md, sizeof(md), hex);
	assert_string_equal(hex, vectors[2].hex);
}

/* Hashes data[0..split) into h, exports, imports into a garbage-filled fresh struct, finishes
 * there and compares with the one-shot digest; also finishes the original. */
static void resume_at(const unsigned char *data, size_t n, size_t split)
{
	char want[65], got[65], orig[65];
	sha_hex(data, n, want);

	struct sha256 h;
	sha256_init(&h);
	sha256_update(&h, data, split);
	size_t sz = sha256_state_size();
	unsigned char *blob = malloc(sz);
	assert_non_null(blob);
	sha256_state_export(&h, blob);

	struct sha256 r;
	memset(&r, 0xa5, sizeof(r));
	assert_true(sha256_state_import(&r, blob, sz));
	/* an exported state is not tied to the original's address: move the bytes around */
	unsigned char *moved = malloc(sz + 1);
	assert_non_null(moved);
	memcpy(moved + 1, blob, sz);
	struct sha256 r2;
	memset(&r2, 0x5a, sizeof(r2));
	assert_true(sha256_state_import(&r2, moved + 1, sz));

	unsigned char md[SHA256_DIGEST_LEN];
	sha256_update(&r, data + split, n - split);
	sha256_final(&r, md);
	hex_of(md, sizeof(md), got);
	if (strcmp(got, want) != 0)
		fail_msg("resume at %zu of %zu: %s != %s", split, n, got, want);

	sha256_update(&r2, data + split, n - split);
	sha256_final(&r2, md);
	hex_of(md, sizeof(md), got);
	assert_string_equal(got, want);

	sha256_update(&h, data + split, n - split);
	sha256_final(&h, md);
	hex_of(md, sizeof(md), orig);
	assert_string_equal(orig, want);
	free(moved);
	free(blob);
}

static void test_sha256_state_roundtrip(void **state)
{
	(void)state;
	enum { N = 5000 };
	unsigned char *data = malloc(N);
	assert_non_null(data);
	for (size_t i = 0; i < N; i++)
		data[i] = (unsigned char)(i * 131 + 7);
	static const size_t splits[] = {0, 1, 55, 56, 63, 64, 65, 777, 1024, 4999, 5000};
	for (size_t i = 0; i < sizeof(splits) / sizeof(splits[0]); i++)
		resume_at(data, N, splits[i]);

	/* Several save/restore cycles in a row, as an upload with many parts does. */
	struct sha256 h;
	sha256_init(&h);
	size_t sz = sha256_state_size();
	unsigned char *blob = malloc(sz);
	assert_non_null(blob);
	size_t off = 0;
	for (size_t part = 1; off < N; part += 97) {
		size_t n = part < N - off ? part : N - off;
		sha256_update(&h, data + off, n);
		off += n;
		sha256_state_export(&h, blob);
		memset(&h, 0, sizeof(h));
		assert_true(sha256_state_import(&h, blob, sz));
	}
	char got[DIGEST_STR_LEN], want[DIGEST_STR_LEN];
	sha256_peek_str(&h, got);
	sha256_digest_str(data, N, want);
	assert_string_equal(got, want);
	free(blob);
	free(data);
}

static void test_sha256_state_import_rejects(void **state)
{
	(void)state;
	struct sha256 h;
	sha256_init(&h);
	sha256_update(&h, "partial", 7);
	size_t sz = sha256_state_size();
	assert_true(sz > 4);
	assert_true(sz <= 4 + sizeof(h.st));
	unsigned char *blob = calloc(1, sz + 16);
	assert_non_null(blob);
	sha256_state_export(&h, blob);

	struct sha256 r;
	assert_false(sha256_state_import(&r, blob, 0));
	assert_false(sha256_state_import(&r, blob, 4));
	assert_false(sha256_state_import(&r, blob, sz - 1));
	assert_false(sha256_state_import(&r, blob, sz + 1));
	assert_false(sha256_state_import(&r, blob, sz + 16));
	for (size_t i = 0; i < 4; i++) {
		blob[i] ^= 0x01;
		if (sha256_state_import(&r, blob, sz))
			fail_msg("import accepted a state with magic byte %zu changed", i);
		blob[i] ^= 0x01;
	}
	unsigned char *zero = calloc(1, sz);
	assert_non_null(zero);
	assert_false(sha256_state_import(&r, zero, sz));
	free(zero);
	/* the untouched blob still imports */
	assert_true(sha256_state_import(&r, blob, sz));
	char a[DIGEST_STR_LEN], b[DIGEST_STR_LEN];
	sha256_peek_str(&r, a);
	sha256_digest_str("partial", 7, b);
	assert_string_equal(a, b);
	free(blob);
}

static void check_hmac(const void *key, size_t keylen, const void *data, size_t n, const char *want)
{
	unsigned char md[SHA256_DIGEST_LEN];
	char hex[65];
	memset(md, 0, sizeof(md));
	hmac_sha256(key, keylen, data, n, md);
	hex_of(md, sizeof(md), hex);
	assert_string_equal(hex, want);
}

static void test_hmac_rfc4231(void **state)
{
	(void)state;
	unsigned char key[131], data[50];

	/* Test Case 1 */
	memset(key, 0x0b, 20);
	check_hmac(key, 20, "Hi There", 8,
	           "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
	/* Test Case 2: key shorter than the block */
	check_hmac("Jefe", 4, "what do ya want for nothing?", 28,
	           "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
	/* Test Case 3 */
	memset(key, 0xaa, 20);
	memset(data, 0xdd, 50);
	check_hmac(key, 20, data, 50,
	           "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe");
	/* Test Case 4 */
	for (int i = 0; i < 25; i++)
		key[i] = (unsigned char)(i + 1);
	memset(data, 0xcd, 50);
	check_hmac(key, 25, data, 50,
	           "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b");
	/* Test Case 6: key longer than the block is hashed first */
	memset(key, 0xaa, 131);
	check_hmac(key, 131, "Test Using Larger Than Block-Size Key - Hash Key First", 54,
	           "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
	/* empty key and message */
	check_hmac("", 0, "", 0,
	           "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
}

/* RFC 4648 section 10 */
static const struct {
	const char *in, *std, *url;
} b64_vectors[] = {
    {"", "", ""},
    {"f", "Zg==", "Zg"},
    {"fo", "Zm8=", "Zm8"},
    {"foo", "Zm9v", "Zm9v"},
    {"foob", "Zm9vYg==", "Zm9vYg"},
    {"fooba", "Zm9vYmE=", "Zm9vYmE"},
    {"foobar", "Zm9vYmFy", "Zm9vYmFy"},
};

static void check_decode(bool url, const char *in, const void *want, size_t wantlen)
{
	unsigned char *out = NULL;
	size_t outlen = 12345;
	struct berr e;
	err_clear(&e);
	enum berr_code rc = url ? base64url_decode(in, strlen(in), &out, &outlen, &e)
	                        : base64_decode(in, strlen(in), &out, &outlen, &e);
	if (rc != BERR_OK)
		fail_msg("%s decode '%s': %s (%s)", url ? "base64url" : "base64", in, err_name(rc),
		         e.msg);
	assert_non_null(out);
	assert_int_equal(outlen, wantlen);
	assert_memory_equal(out, want, wantlen);
	free(out);
}

static void test_base64_rfc4648(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(b64_vectors) / sizeof(b64_vectors[0]); i++) {
		const char *in = b64_vectors[i].in;
		char *s = base64_encode(in, strlen(in));
		assert_string_equal(s, b64_vectors[i].std);
		free(s);
		s = base64url_encode(in, strlen(in));
		assert_string_equal(s, b64_vectors[i].url);
		free(s);
		check_decode(false, b64_vectors[i].std, in, strlen(in));
		check_decode(true, b64_vectors[i].url, in, strlen(in));
	}
}

static void test_base64_alphabets(void **state)
{
	(void)state;
	static const unsigned char hi[] = {0xfb, 0xef, 0xbe, 0xff, 0xff};
	char *s = base64_encode(hi, sizeof(hi));
	assert_string_equal(s, "++++//8=");
	free(s);
	s = base64url_encode(hi, sizeof(hi));
	assert_string_equal(s, "----__8");
	free(s);
	check_decode(false, "++++//8=", hi, sizeof(hi));
	check_decode(true, "----__8", hi, sizeof(hi));
	static const unsigned char nul[] = {0, 0, 0, 0};
	s = base64_encode(nul, sizeof(nul));
	assert_string_equal(s, "AAAAAA==");
	free(s);
	check_decode(false, "AAAAAA==", nul, sizeof(nul));
}

static void test_base64_roundtrip(void **state)
{
	(void)state;
	unsigned char data[100];
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (unsigned char)(i * 193 + 17);
	for (size_t n = 0; n <= sizeof(data); n++) {
		char *s = base64_encode(data, n);
		assert_int_equal(strlen(s), 4 * ((n + 2) / 3));
		check_decode(false, s, data, n);
		free(s);
		s = base64url_encode(data, n);
		assert_int_equal(strlen(s), (4 * n + 2) / 3);
		assert_null(strchr(s, '='));
		assert_null(strchr(s, '+'));
		assert_null(strchr(s, '/'));
		check_decode(true, s, data, n);
		free(s);
	}
}

static void check_reject(bool url, const char *in, size_t n)
{
	unsigned char *out = NULL;
	size_t outlen = 0;
	struct berr e;
	err_clear(&e);
	enum berr_code rc = url ? base64url_decode(in, n, &out, &outlen, &e)
	                        : base64_decode(in, n, &out, &outlen, &e);
	if (rc != BERR_INVALID) {
		free(out);
		fail_msg("%s decode of '%.*s' (%zu bytes) = %s, want BERR_INVALID",
		         url ? "base64url" : "base64", (int)n, in, n, err_name(rc));
	}
}

static void test_base64_decode_rejects(void **state)
{
	(void)state;
	static const char *const bad_std[] = {
	    /* characters outside the alphabet, whitespace, the url alphabet */
	    "Zm9v!A==",
	    "Zm 9v",
	    "Zm9v\n",
	    " Zm9v",
	    "Zm9v\r\n",
	    "Zm9-",
	    "Zm9_",
	    "Zg\t=",
	    /* padding: missing, short, excess, in the middle, alone */
	    "Zg",
	    "Zm8",
	    "Zg=",
	    "Z===",
	    "====",
	    "Zm9=v",
	    "Zg==Zg==",
	    "Zm8==",
	    "Zm9vY",
	    "Zm=v",
	    "=Zm9",
	    "Zg=A",
	    /* non-canonical: unused trailing bits set */
	    "Zh==",
	    "Zm9=",
	    "Zm+=",
	    "ZmZ=",
	    "Zz==",
	    "Zm9vYh==",
	};
	for (size_t i = 0; i < sizeof(bad_std) / sizeof(bad_std[0]); i++)
		check_reject(false, bad_std[i], strlen(bad_std[i]));

	static const char *const bad_url[] = {
	    "Zm9v!A", "Zm 9v", "Zm9v\n", "Zm9+",   "Zm9/", /* std alphabet is not url */
	    "Zg==",   "Zm8=",  "Zg=",                      /* no padding in base64url */
	    "Z",      "Zm9vY",                             /* a lone 6-bit group */
	    "Zh",     "Zm9",   "Zm-",    "Zm9vYh",         /* trailing bits set */
	};
	for (size_t i = 0; i < sizeof(bad_url) / sizeof(bad_url[0]); i++)
		check_reject(true, bad_url[i], strlen(bad_url[i]));

	/* The length is authoritative: an embedded NUL is a bad character. */
	check_reject(false, "Zm9v\0AAA", 8);
	check_reject(true, "Zm9v\0A", 6);
	/* Only n bytes are read: a valid prefix of a longer buffer decodes. */
	unsigned char *out = NULL;
	size_t outlen = 0;
	struct berr e;
	assert_int_equal(base64_decode("Zm9v!!!!", 4, &out, &outlen, &e), BERR_OK);
	assert_int_equal(outlen, 3);
	assert_memory_equal(out, "foo", 3);
	free(out);
}

static void test_crypto_equal(void **state)
{
	(void)state;
	unsigned char a[64], b[64];
	for (size_t i = 0; i < sizeof(a); i++)
		a[i] = b[i] = (unsigned char)i;
	assert_true(crypto_equal(a, b, sizeof(a)));
	assert_true(crypto_equal(a, b, 0));
	assert_true(crypto_equal("x", "y", 0));
	b[63] ^= 0x80;
	assert_false(crypto_equal(a, b, sizeof(a)));
	assert_true(crypto_equal(a, b, 63));
	b[63] = a[63];
	b[0] ^= 1;
	assert_false(crypto_equal(a, b, sizeof(a)));
	assert_false(crypto_equal(a, b, 1));
	assert_true(crypto_equal(a + 1, b + 1, 63));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_sha256_vectors),
	    cmocka_unit_test(test_sha256_million_a_streamed),
	    cmocka_unit_test(test_sha256_digest_str_format),
	    cmocka_unit_test(test_sha256_peek),
	    cmocka_unit_test(test_sha256_state_roundtrip),
	    cmocka_unit_test(test_sha256_state_import_rejects),
	    cmocka_unit_test(test_hmac_rfc4231),
	    cmocka_unit_test(test_base64_rfc4648),
	    cmocka_unit_test(test_base64_alphabets),
	    cmocka_unit_test(test_base64_roundtrip),
	    cmocka_unit_test(test_base64_decode_rejects),
	    cmocka_unit_test(test_crypto_equal),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
