/* test_ref.c - unit tests for oci/ref: repository names, ECR and OCI tags, digests. */
#include "base/feat.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "oci/ref.h"

#include <string.h>

#define SHA256_HEX "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define SHA512_HEX                                                                                 \
	"cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce"                         \
	"47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e"

/* Fills buf with n copies of c and a NUL. */
static char *repeat(char *buf, char c, size_t n)
{
	memset(buf, c, n);
	buf[n] = '\0';
	return buf;
}

static void test_repo_name_valid(void **state)
{
	static const char *const ok[] = {
	    "ab",
	    "a1",
	    "00",
	    "library/ubuntu",
	    "a__b",
	    "a---b",
	    "a-b",
	    "a.b",
	    "a_b",
	    "a.b_c-d",
	    "a/b",
	    "a/b/c/d",
	    "project-a/web",
	    "x--y/z__w.v",
	    "a1b2c3",
	    "team/a-b-c",
	    "a.b.c.d.e",
	    "name-with--two",
	    "foo/bar_baz",
	};
	(void)state;
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		if (!ref_repo_name_is_valid(ok[i]))
			fail_msg("expected valid: '%s'", ok[i]);
	}
}

static void test_repo_name_invalid(void **state)
{
	static const char *const bad[] = {
	    "",     "a",    "../x",   "UPPER", "tesT", "Org/repo", "a//b",  "a/",    "/a",   "-abc",
	    "abc-", "_abc", "abc_",   ".abc",  "abc.", "a___b",    "a..b",  "a._b",  "a_-b", "a-_b",
	    "a.-b", "a b",  "a:b",    "a@b",   "a/-b", "a-/b",     "a/.b",  "a/b/",  "//",   "a\tb",
	    "a+b",  "é-x",  "a/b//c", "a/_b",  "a_/b", "a__/b",    "a/__b", "a/b-.", "ab\n",
	};
	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (ref_repo_name_is_valid(bad[i]))
			fail_msg("expected invalid: '%s'", bad[i]);
	}
	assert_false(ref_repo_name_is_valid(NULL));
}

static void test_repo_name_length(void **state)
{
	char buf[600];
	(void)state;
	assert_true(ref_repo_name_is_valid(repeat(buf, 'a', REPO_NAME_MAX)));
	assert_false(ref_repo_name_is_valid(repeat(buf, 'a', REPO_NAME_MAX + 1)));
	assert_false(ref_repo_name_is_valid(repeat(buf, 'a', 500)));
	assert_true(ref_repo_name_is_valid(repeat(buf, 'a', REPO_NAME_MIN)));
	assert_false(ref_repo_name_is_valid(repeat(buf, 'a', REPO_NAME_MIN - 1)));

	/* 256 with separators and components */
	repeat(buf, 'a', 256);
	for (size_t i = 10; i < 250; i += 10)
		buf[i] = '/';
	assert_true(ref_repo_name_is_valid(buf));
	/* A 257th character that would otherwise be valid. */
	buf[256] = 'b';
	buf[257] = '\0';
	assert_false(ref_repo_name_is_valid(buf));
}

static void test_repo_name_pattern_msg(void **state)
{
	(void)state;
	assert_string_equal(REF_REPO_NAME_PATTERN_MSG,
	                    "(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*");
}

static void test_tag_ecr(void **state)
{
	char buf[400];
	static const char *const ok[] = {
	    "latest",        "v1.0", "1",       "UPPER_case-1.2",
	    "-leading-dash", ".dot", "ünïcödé", "标签",
	    "a+b",           "a#b",  "a!b",     "emoji-\xf0\x9f\x90\xb3",
	    "a=b",           "x,y",
	};
	static const char *const bad[] = {
	    "",
	    "a/b",
	    "a:b",
	    "a@b",
	    "a b",
	    "a\tb",
	    "a\nb",
	    "\x7f",
	    "a\x01",
	    "\xff",
	    "\xc0\xaf",         /* overlong '/' */
	    "\xed\xa0\x80",     /* surrogate */
	    "\xf4\x90\x80\x80", /* > U+10FFFF */
	    "\xe2\x82",         /* truncated */
	    "a\xc2\xa0-b",      /* NBSP */
	    "a\xe2\x80\x83-b",  /* EM SPACE */
	    "a\xc2\x85",        /* NEL (C1) */
	    "\xe3\x80\x80",     /* ideographic space */
	};
	(void)state;
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		if (!ref_tag_is_valid_ecr(ok[i]))
			fail_msg("expected valid ecr tag: '%s'", ok[i]);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (ref_tag_is_valid_ecr(bad[i]))
			fail_msg("expected invalid ecr tag #%zu", i);
	assert_false(ref_tag_is_valid_ecr(NULL));
	assert_true(ref_tag_is_valid_ecr(repeat(buf, 'x', ECR_TAG_MAX)));
	assert_false(ref_tag_is_valid_ecr(repeat(buf, 'x', ECR_TAG_MAX + 1)));
	/* Byte length counts, not characters: 150 two-byte chars = 300 bytes OK, 151 not. */
	for (size_t i = 0; i < 151; i++)
		memcpy(buf + 2 * i, "\xc3\xa9", 2);
	buf[302] = '\0';
	assert_false(ref_tag_is_valid_ecr(buf));
	buf[300] = '\0';
	assert_true(ref_tag_is_valid_ecr(buf));
	/* Cutting a multi-byte character in half makes it invalid UTF-8. */
	buf[299] = '\0';
	assert_false(ref_tag_is_valid_ecr(buf));
}

static void test_tag_oci(void **state)
{
	char buf[300];
	static const char *const ok[] = {
	    "latest", "v1.0.0", "_x", "A", "9", "1.2-rc_3", "__", "a..b", "a--", "Z_.-",
	};
	static const char *const bad[] = {
	    "",    "-x", ".x",  "a/b",   "a:b", "a@b", "a b",
	    "a+b", "ü",  "a\n", "a\x01", "a#b", "a=b", "a!",
	};
	(void)state;
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		if (!ref_tag_is_valid_oci(ok[i]))
			fail_msg("expected valid oci tag: '%s'", ok[i]);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (ref_tag_is_valid_oci(bad[i]))
			fail_msg("expected invalid oci tag: '%s'", bad[i]);
	assert_false(ref_tag_is_valid_oci(NULL));
	assert_true(ref_tag_is_valid_oci(repeat(buf, 'x', OCI_TAG_MAX)));
	assert_false(ref_tag_is_valid_oci(repeat(buf, 'x', OCI_TAG_MAX + 1)));
	assert_false(ref_tag_is_valid_oci(repeat(buf, 'x', 250)));
}

static void test_digest_ecr_pattern(void **state)
{
	static const char *const ok[] = {
	    "sha256:" SHA256_HEX, "sha256:ABCDEF", "a:0", "A-_+.z:fF09", "sha256:" SHA512_HEX,
	};
	static const char *const bad[] = {
	    "",           ":abc",       "sha256:",     "sha256",     "sha256:xyz", "sha256:abc:def",
	    "sha 256:ab", "sha256:ab ", "sha256/x:ab", "sha256:ab=", "é:ab",
	};
	(void)state;
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		if (!ref_digest_matches_ecr_pattern(ok[i]))
			fail_msg("expected ecr digest match: '%s'", ok[i]);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (ref_digest_matches_ecr_pattern(bad[i]))
			fail_msg("expected ecr digest mismatch: '%s'", bad[i]);
	assert_false(ref_digest_matches_ecr_pattern(NULL));
}

static void test_digest_oci_valid(void **state)
{
	static const char *const ok[] = {
	    "sha256:" SHA256_HEX,
	    "sha512:" SHA512_HEX,
	    "multihash+base58:QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8",
	    "sha256+b64u:LCa0a2j_xo_5m0U8HTBBNBNCLXBkg7-g-YpeiGJm564",
	    "blake3:abc",
	    "a.b_c-d+e:x=Y_z-0",
	    "sha384:anything",
	};
	(void)state;
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		if (!ref_digest_is_valid(ok[i]))
			fail_msg("expected valid digest: '%s'", ok[i]);
}

static void test_digest_oci_invalid(void **state)
{
	static const char *const bad[] = {
	    "",
	    "sha256",
	    "sha256:",
	    ":" SHA256_HEX,
	    "SHA256:" SHA256_HEX,
	    "sha256:" SHA256_HEX "0",
	    "sha256:" SHA256_HEX "\n",
	    "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
	    "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85",
	    "sha256:g3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
	    "sha512:" SHA256_HEX,
	    "sha512:" SHA512_HEX "a",
	    "+sha:abc",
	    "sha+:abc",
	    "sha++x:abc",
	    "sha..x:abc",
	    "sh a:abc",
	    "sha/256:abc",
	    "a:b:c",
	    "a:b c",
	    "a:b+c",
	    "a:b.c",
	    "a:é",
	    " sha256:" SHA256_HEX,
	};
	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (ref_digest_is_valid(bad[i]))
			fail_msg("expected invalid digest: '%s'", bad[i]);
	assert_false(ref_digest_is_valid(NULL));
}

static void test_digest_supported(void **state)
{
	(void)state;
	assert_true(ref_digest_is_supported("sha256:" SHA256_HEX));
	assert_false(ref_digest_is_supported("sha512:" SHA512_HEX));
	assert_false(ref_digest_is_supported("sha256:" SHA256_HEX "0"));
	assert_false(ref_digest_is_supported(
	    "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85"));
	assert_false(ref_digest_is_supported(
	    "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"));
	assert_false(ref_digest_is_supported("blake3:abc"));
	assert_false(ref_digest_is_supported("sha256:"));
	assert_false(ref_digest_is_supported(""));
	assert_false(ref_digest_is_supported(NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_repo_name_valid),
	    cmocka_unit_test(test_repo_name_invalid),
	    cmocka_unit_test(test_repo_name_length),
	    cmocka_unit_test(test_repo_name_pattern_msg),
	    cmocka_unit_test(test_tag_ecr),
	    cmocka_unit_test(test_tag_oci),
	    cmocka_unit_test(test_digest_ecr_pattern),
	    cmocka_unit_test(test_digest_oci_valid),
	    cmocka_unit_test(test_digest_oci_invalid),
	    cmocka_unit_test(test_digest_supported),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
