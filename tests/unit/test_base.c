/* test_base.c - unit tests for base/: the error enum and its wire mapping table, struct buf,
 * and the util helpers (glob, UUIDs, durations, atomic file writes, mkdir -p). */
#include "base/feat.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/json_fast.h"
#include "base/mem.h"
#include "base/util.h"
#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- helpers ---- */

static int tmpdir_setup(void **state)
{
	char *dir = test_mkdtemp("base");
	*state = dir;
	return dir ? 0 : -1;
}

static int tmpdir_teardown(void **state)
{
	char *dir = *state;
	test_rm_rf(dir);
	free(dir);
	return 0;
}

/* Number of entries in dir other than . and .. */
static int dir_entries(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return -1;
	int n = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			n++;
	closedir(d);
	return n;
}

static bool is_dir(const char *p)
{
	struct stat sb;
	return stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
}

/* ---- err ---- */

static void test_err_set_clear(void **state)
{
	(void)state;
	struct berr e;
	memset(&e, 0x7f, sizeof(e));
	err_clear(&e);
	assert_int_equal(e.code, BERR_OK);
	assert_int_equal(e.sys_errno, 0);
	assert_int_equal(e.last_byte, -1);
	assert_string_equal(e.msg, "");

	assert_int_equal(err_set(&e, BERR_NOT_FOUND, "repo '%s' #%d", "x", 7), BERR_NOT_FOUND);
	assert_int_equal(e.code, BERR_NOT_FOUND);
	assert_string_equal(e.msg, "repo 'x' #7");
	assert_int_equal(e.sys_errno, 0);

	assert_int_equal(err_sys(&e, BERR_IO, EIO, "write: %s", "bad sector"), BERR_IO);
	assert_int_equal(e.code, BERR_IO);
	assert_int_equal(e.sys_errno, EIO);
	assert_string_equal(e.msg, "write: bad sector");
	/* a full disk or quota is an error of its own, whoever reports it */
	assert_int_equal(err_sys(&e, BERR_IO, ENOSPC, "write: %s", "full"), BERR_NO_SPACE);
	assert_int_equal(e.code, BERR_NO_SPACE);
	assert_int_equal(e.sys_errno, ENOSPC);
	assert_string_equal(e.msg, "write: full");
	assert_int_equal(err_sys(&e, BERR_IO, EDQUOT, "quota"), BERR_NO_SPACE);
	assert_int_equal(err_sys(&e, BERR_NOT_FOUND, ENOSPC, "odd"), BERR_NOT_FOUND);
	/* a later err_set resets the saved errno */
	err_set(&e, BERR_INVALID, "plain");
	assert_int_equal(e.sys_errno, 0);

	/* NULL is allowed: only the code comes back */
	assert_int_equal(err_set(NULL, BERR_CONFLICT, "ignored %d", 1), BERR_CONFLICT);
	assert_int_equal(err_sys(NULL, BERR_IO, EIO, "ignored"), BERR_IO);
	err_clear(NULL);

	/* long messages are truncated, always terminated */
	char big[2000];
	memset(big, 'm', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	err_set(&e, BERR_INTERNAL, "%s", big);
	assert_int_equal(strlen(e.msg), sizeof(e.msg) - 1);

	err_clear(&e);
	assert_int_equal(e.code, BERR_OK);
	assert_string_equal(e.msg, "");
	assert_int_equal(e.last_byte, -1);
}

static bool is_error_status(int s)
{
	return s >= 400 && s <= 599;
}

static void test_err_wire_table(void **state)
{
	(void)state;
	assert_int_equal(BERR_OK, 0);
	assert_string_equal(err_name(BERR_OK), "BERR_OK");
	assert_int_equal(err_oci_status(BERR_OK), 200);
	assert_int_equal(err_ecr_status(BERR_OK), 200);

	for (int c = 1; c < BERR__COUNT; c++) {
		const char *name = err_name((enum berr_code)c);
		const char *type = err_ecr_type((enum berr_code)c);
		const char *oci = err_oci_code((enum berr_code)c);
		if (!name || strncmp(name, "BERR_", 5) != 0 || !name[5])
			fail_msg("code %d has no name", c);
		if (!type || !*type)
			fail_msg("%s has no ECR __type", name);
		if (!oci || !*oci)
			fail_msg("%s has no OCI error code", name);
		if (!is_error_status(err_oci_status((enum berr_code)c)))
			fail_msg("%s: OCI status %d is not 4xx/5xx", name,
			         err_oci_status((enum berr_code)c));
		if (!is_error_status(err_ecr_status((enum berr_code)c)))
			fail_msg("%s: ECR status %d is not 4xx/5xx", name,
			         err_ecr_status((enum berr_code)c));
		/* ECR types are exception names; OCI codes are upper-case identifiers */
		if (strstr(type, "Exception") == NULL)
			fail_msg("%s: ECR type '%s' is not an exception name", name, type);
		for (const char *p = oci; *p; p++)
			if (!((*p >= 'A' && *p <= 'Z') || *p == '_'))
				fail_msg("%s: OCI code '%s' is not upper-case", name, oci);
		for (int d = 0; d < c; d++)
			if (strcmp(name, err_name((enum berr_code)d)) == 0)
				fail_msg("codes %d and %d share the name %s", d, c, name);
	}
	/* spot checks against the spec tables */
	assert_string_equal(err_name(BERR_NOT_FOUND), "BERR_NOT_FOUND");
	assert_int_equal(err_oci_status(BERR_IMAGE_NOT_FOUND), 404);
	assert_string_equal(err_oci_code(BERR_IMAGE_NOT_FOUND), "MANIFEST_UNKNOWN");
	assert_string_equal(err_ecr_type(BERR_IMAGE_NOT_FOUND), "ImageNotFoundException");
	assert_string_equal(err_ecr_type(BERR_REPO_NOT_FOUND), "RepositoryNotFoundException");
	assert_int_equal(err_oci_status(BERR_RANGE_INVALID), 416);
	assert_int_equal(err_ecr_status(BERR_INTERNAL), 500);

	/* out of range maps to a server error, never NULL */
	for (int c = BERR__COUNT; c < BERR__COUNT + 3; c++) {
		assert_non_null(err_name((enum berr_code)c));
		assert_non_null(err_ecr_type((enum berr_code)c));
		assert_non_null(err_oci_code((enum berr_code)c));
		assert_int_equal(err_oci_status((enum berr_code)c), 500);
		assert_int_equal(err_ecr_status((enum berr_code)c), 500);
	}
}

/* ---- buf ---- */

static void test_buf_append_limit(void **state)
{
	(void)state;
	struct berr e;
	err_clear(&e);
	struct buf b;
	buf_init(&b, 10);
	assert_int_equal(b.len, 0);
	assert_int_equal(buf_append(&b, "abcdef", 6, &e), BERR_OK);
	assert_int_equal(b.len, 6);
	assert_string_equal(b.p, "abcdef");

	/* over the limit: refused, content unchanged */
	assert_int_equal(buf_append(&b, "ghijk", 5, &e), BERR_TOO_LARGE);
	assert_int_equal(e.code, BERR_TOO_LARGE);
	assert_int_equal(b.len, 6);
	assert_string_equal(b.p, "abcdef");
	assert_int_equal(buf_puts(&b, "0123456789", &e), BERR_TOO_LARGE);
	assert_int_equal(buf_printf(&b, &e, "%s-%d", "xx", 12345), BERR_TOO_LARGE);
	assert_int_equal(b.len, 6);
	assert_string_equal(b.p, "abcdef");
	/* a size that would overflow len + n */
	assert_int_equal(buf_append(&b, "z", SIZE_MAX, &e), BERR_TOO_LARGE);
	assert_int_equal(buf_append(&b, "z", SIZE_MAX - 3, &e), BERR_TOO_LARGE);
	assert_int_equal(b.len, 6);

	/* exactly up to the limit is fine */
	assert_int_equal(buf_append(&b, "ghij", 4, &e), BERR_OK);
	assert_int_equal(b.len, 10);
	assert_string_equal(b.p, "abcdefghij");
	assert_int_equal(buf_append(&b, "", 0, &e), BERR_OK);
	assert_int_equal(buf_append(&b, "k", 1, &e), BERR_TOO_LARGE);
	assert_int_equal(buf_printf(&b, &e, "%s", ""), BERR_OK);
	assert_string_equal(b.p, "abcdefghij");

	/* reset keeps the limit */
	buf_reset(&b);
	assert_int_equal(b.len, 0);
	assert_string_equal(b.p, "");
	assert_int_equal(buf_append(&b, "0123456789x", 11, &e), BERR_TOO_LARGE);
	assert_int_equal(buf_append(&b, "0123456789", 10, &e), BERR_OK);
	buf_free(&b);
	assert_null(b.p);
	assert_int_equal(b.len, 0);
	buf_free(&b); /* twice is harmless */
}

static void test_buf_binary_printf(void **state)
{
	(void)state;
	struct berr e;
	struct buf b;
	buf_init(&b, 0); /* unlimited */
	assert_int_equal(buf_append(&b, "a\0b", 3, &e), BERR_OK);
	assert_int_equal(b.len, 3);
	assert_memory_equal(b.p, "a\0b", 4); /* with the terminator */
	buf_reset(&b);
	assert_int_equal(buf_printf(&b, &e, "%s=%d;", "x", 1), BERR_OK);
	assert_int_equal(buf_printf(&b, &e, "%05.1f|%-3s|%c", 2.5, "y", 'z'), BERR_OK);
	assert_string_equal(b.p, "x=1;002.5|y  |z");
	assert_int_equal(b.len, strlen(b.p));
	/* growth across many appends */
	buf_reset(&b);
	for (int i = 0; i < 5000; i++)
		assert_int_equal(buf_printf(&b, &e, "%04d", i), BERR_OK);
	assert_int_equal(b.len, 20000);
	assert_memory_equal(b.p, "000000010002", 12);
	assert_memory_equal(b.p + 19996, "4999", 5);
	assert_true(b.cap > b.len);
	buf_free(&b);
}

static void test_buf_steal(void **state)
{
	(void)state;
	struct berr e;
	struct buf b;
	buf_init(&b, 100);
	assert_int_equal(buf_puts(&b, "hello", &e), BERR_OK);
	size_t len = 0;
	char *s = buf_steal(&b, &len);
	assert_string_equal(s, "hello");
	assert_int_equal(len, 5);
	assert_null(b.p);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.cap, 0);
	free(s);

	/* an empty buffer yields an empty string, not NULL */
	s = buf_steal(&b, &len);
	assert_non_null(s);
	assert_string_equal(s, "");
	assert_int_equal(len, 0);
	free(s);

	/* the buffer is reusable, limit kept; len may be NULL */
	assert_int_equal(buf_puts(&b, "again", &e), BERR_OK);
	assert_int_equal(buf_append(&b, "x", 100, &e), BERR_TOO_LARGE);
	s = buf_steal(&b, NULL);
	assert_string_equal(s, "again");
	free(s);
	buf_free(&b);
}

/* ---- util: strings ---- */

static void test_glob_match(void **state)
{
	(void)state;
	static const struct {
		const char *p, *s;
		bool want;
	} cases[] = {
	    {"", "", true},
	    {"", "a", false},
	    {"a", "", false},
	    {"*", "", true},
	    {"*", "anything at all", true},
	    {"**", "", true},
	    {"***", "abc", true},
	    {"abc", "abc", true},
	    {"abc", "abcd", false},
	    {"abcd", "abc", false},
	    {"a*", "a", true},
	    {"a*", "ab", true},
	    {"a*", "ba", false},
	    {"*a", "a", true},
	    {"*a", "ba", true},
	    {"*a", "ab", false},
	    {"a*b*c", "abc", true},
	    {"a*b*c", "aXbYc", true},
	    {"a*b*c", "aXXbYYbZZc", true},
	    {"a*b*c", "abcc", true},
	    {"a*b*c", "aXbYcZ", false},
	    {"a*b*c", "acb", false},
	    {"a*b*c", "ab", false},
	    {"*a*b*c*", "xxaxxbxxcxx", true},
	    {"*a*b*c*", "xxcxxbxxaxx", false},
	    {"a**b", "ab", true},
	    {"*.*.*", "1.2.3", true},
	    {"*.*.*", "1.2", false},
	    {"prod-*", "prod-", true},
	    {"prod-*", "prod", false},
	    {"v*-rc*", "v1.0-rc2", true},
	    {"v*-rc*", "v1.0-beta", false},
	    {"*ab", "aab", true}, /* needs a backtrack past a partial match */
	    {"*aab", "aaab", true},
	    {"a*aab", "aaaab", true},
	    {"a?c", "abc", false}, /* '?' and '[' are literal */
	    {"a?c", "a?c", true},
	    {"[ab]", "a", false},
	    {"[ab]", "[ab]", true},
	    {"A*", "abc", false}, /* case-sensitive */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (str_glob_match(cases[i].p, cases[i].s) != cases[i].want)
			fail_msg("glob('%s', '%s') != %s", cases[i].p, cases[i].s,
			         cases[i].want ? "true" : "false");
}

static void test_glob_no_blowup(void **state)
{
	(void)state;
	enum { N = 200000 };
	char *s = xmalloc(N + 2);
	memset(s, 'a', N);
	s[N] = '\0';
	static const char *const patterns[] = {
	    "a*a*a*a*a*b",
	    "*a*a*a*a*a*a*a*a*a*a*a*a*b",
	    "*aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab",
	    "a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b*",
	};
	int64_t t0 = clock_mono_ms();
	for (size_t i = 0; i < sizeof(patterns) / sizeof(patterns[0]); i++)
		assert_false(str_glob_match(patterns[i], s));
	s[N] = 'b';
	s[N + 1] = '\0';
	for (size_t i = 0; i < 3; i++)
		assert_true(str_glob_match(patterns[i], s));
	int64_t ms = clock_mono_ms() - t0;
	free(s);
	if (ms > 2000)
		fail_msg("glob took %lld ms on a %d-byte subject", (long long)ms, N);
}

static void test_str_helpers(void **state)
{
	(void)state;
	assert_true(str_has_prefix("sha256:abc", "sha256:"));
	assert_true(str_has_prefix("abc", ""));
	assert_false(str_has_prefix("sha2", "sha256:"));
	assert_false(str_has_prefix("", "a"));
	static const unsigned char in[] = {0x00, 0x01, 0x7f, 0x80, 0xab, 0xff};
	char out[2 * sizeof(in) + 1];
	memset(out, 'Q', sizeof(out));
	hex_encode(in, sizeof(in), out);
	assert_string_equal(out, "00017f80abff");
	hex_encode(in, 0, out);
	assert_string_equal(out, "");
}

/* ---- json_fast ---- */

/* The fast reader's own subset, read as jansson reads it. */
static void test_json_fast_reads(void **state)
{
	(void)state;
	const char *doc = " {\"a\": [1, -0, 123456789012345678, true, false, null],"
	                  " \"s\": \"q\\\"\\\\\\/\\n\\u00e9\\ud83d\\ude00\","
	                  " \"a\": {\"k\": \"\"}, \"z\": []} ";
	json_t *v = json_fast_only(doc, strlen(doc), 0);
	assert_non_null(v);
	json_t *ref = json_loadb(doc, strlen(doc), 0, NULL);
	assert_true(json_equal(v, ref));
	/* duplicate "a": the last value, in the first one's place */
	assert_true(json_is_object(json_object_get(v, "a")));
	assert_string_equal(json_object_iter_key(json_object_iter(v)), "a");
	assert_string_equal(json_string_value(json_object_get(v, "s")),
	                    "q\"\\/\n\xc3\xa9\xf0\x9f\x98\x80");
	json_decref(ref);
	json_decref(v);
}

/* Outside the subset the fast reader defers, and json_fast_loadb answers as jansson does. */
static void test_json_fast_defers(void **state)
{
	(void)state;
	static const char *const defer_ok[] = {
	    "[1.5]",
	    "[1e3]",
	    "[1234567890123456789]",
	    "{\"k\": \"caf\xc3\xa9\"}",
	};
	static const char *const bad[] = {
	    "",
	    "1",
	    "\"s\"",
	    "[01]",
	    "[1,]",
	    "{\"a\":1,}",
	    "{\"a\" 1}",
	    "[tru]",
	    "[\"\\u0000\"]",
	    "[\"\\ud800\"]",
	    "[\"\\udc00x\"]",
	    "{} x",
	    "[\"\x01\"]",
	    "[\"\\q\"]",
	    "{1:2}",
	};
	for (size_t i = 0; i < sizeof(defer_ok) / sizeof(*defer_ok); i++) {
		const char *d = defer_ok[i];
		assert_null(json_fast_only(d, strlen(d), 0));
		json_t *v = json_fast_loadb(d, strlen(d), 0);
		assert_non_null(v);
		json_decref(v);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		const char *d = bad[i];
		assert_null(json_fast_only(d, strlen(d), 0));
		assert_null(json_fast_loadb(d, strlen(d), 0));
	}
	/* nesting deeper than the fast reader goes */
	char deep[201];
	memset(deep, '[', 100);
	memset(deep + 100, ']', 100);
	deep[200] = 0;
	assert_null(json_fast_only(deep, 200, 0));
	json_t *v = json_fast_loadb(deep, 200, 0);
	assert_non_null(v);
	json_decref(v);
}

/* "\u0000" with JSON_ALLOW_NUL: a NUL byte inside the string value, counted by its length, as
 * jansson reads it; never in a key; refused without the flag. */
static void test_json_fast_nul(void **state)
{
	(void)state;
	const char *doc = "{\"repositoryName\": \"a\\u0000b\", \"l\": [\"\\u0000\", \"x\\u0000\"]}";
	size_t len = strlen(doc);
	json_t *v = json_fast_only(doc, len, JSON_ALLOW_NUL);
	assert_non_null(v);
	json_t *name = json_object_get(v, "repositoryName");
	assert_int_equal(json_string_length(name), 3);
	assert_memory_equal(json_string_value(name), "a\0b", 3);
	assert_int_equal(json_string_length(json_array_get(json_object_get(v, "l"), 0)), 1);
	assert_int_equal(json_string_length(json_array_get(json_object_get(v, "l"), 1)), 2);
	json_t *ref = json_loadb(doc, len, JSON_ALLOW_NUL, NULL);
	assert_non_null(ref);
	assert_true(json_equal(v, ref));
	json_decref(ref);
	json_decref(v);
	v = json_fast_loadb(doc, len, JSON_ALLOW_NUL);
	assert_non_null(v);
	json_decref(v);

	/* without the flag: deferred, and refused as jansson refuses it */
	assert_null(json_fast_only(doc, len, 0));
	assert_null(json_fast_loadb(doc, len, 0));

	/* a NUL in a key: deferred and refused whatever the flags (jansson never takes one) */
	const char *key = "{\"a\\u0000b\": 1}";
	assert_null(json_fast_only(key, strlen(key), JSON_ALLOW_NUL));
	assert_null(json_fast_loadb(key, strlen(key), JSON_ALLOW_NUL));

	/* a raw NUL byte is a control character: never JSON */
	const char raw[] = "[\"a\0b\"]";
	assert_null(json_fast_loadb(raw, sizeof(raw) - 1, JSON_ALLOW_NUL));
}

/* ---- util: UUIDs ---- */

static void test_uuid_v4(void **state)
{
	(void)state;
	/* more than one thread-local pool of random bytes (256 ids each), all distinct */
	enum { N = 600 };
	static char seen[N][37];
	for (int k = 0; k < N; k++) {
		char *u = seen[k];
		memset(u, 'Z', 37);
		uuid_v4(u);
		assert_int_equal(strlen(u), 36);
		for (int i = 0; i < 36; i++) {
			if (i == 8 || i == 13 || i == 18 || i == 23) {
				assert_int_equal(u[i], '-');
				continue;
			}
			if (!((u[i] >= '0' && u[i] <= '9') || (u[i] >= 'a' && u[i] <= 'f')))
				fail_msg("uuid '%s' char %d is not lowercase hex", u, i);
		}
		assert_int_equal(u[14], '4');           /* version */
		assert_non_null(strchr("89ab", u[19])); /* RFC 4122 variant */
		assert_true(uuid_is_valid(u));
		for (int j = 0; j < k; j++)
			assert_string_not_equal(u, seen[j]);
	}
}

static void test_uuid_is_valid(void **state)
{
	(void)state;
	static const char *const ok[] = {
	    "123e4567-e89b-42d3-a456-426614174000",
	    "00000000-0000-0000-0000-000000000000",
	    "ABCDEF01-2345-6789-ABCD-EF0123456789",
	    "aBcDeF01-2345-6789-abCD-ef0123456789",
	};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		if (!uuid_is_valid(ok[i]))
			fail_msg("expected valid: '%s'", ok[i]);
	static const char *const bad[] = {
	    "",
	    "123e4567-e89b-42d3-a456-42661417400",   /* short */
	    "123e4567-e89b-42d3-a456-4266141740000", /* long */
	    "123e4567e89b-42d3-a456-4266141740000",  /* dash missing */
	    "123e4567-e89b-42d3-a4564-26614174000",  /* dash moved */
	    "123e4567-e89b-42d3-a456-42661417400g",
	    "123e4567-e89b-42d3-a456-42661417400-",
	    "{123e4567-e89b-42d3-a456-426614174000}",
	    " 123e4567-e89b-42d3-a456-426614174000",
	    "123e4567-e89b-42d3-a456-426614174000 ",
	    "123e4567-e89b-42d3-a456-426614174000\n",
	    "123e4567_e89b_42d3_a456_426614174000",
	    "../../../../../../../../../../../etc",
	    "123e4567-e89b-42d3-a456-42661417/000",
	    "123e4567-e89b-42d3-a456",
	    "------------------------------------",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (uuid_is_valid(bad[i]))
			fail_msg("expected invalid: '%s'", bad[i]);
}

/* ---- util: durations ---- */

static void test_duration_parse(void **state)
{
	(void)state;
	static const struct {
		const char *s;
		int64_t ms;
	} ok[] = {
	    {"30s", 30000},    {"10m", 600000},  {"1h", 3600000},   {"2d", 172800000},
	    {"500ms", 500},    {"0ms", 0},       {"45", 45000},     {"0", 0},
	    {"1s", 1000},      {"90m", 5400000}, {"24h", 86400000}, {"365d", 31536000000LL},
	    {"3600", 3600000}, {"1ms", 1},
	};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		int64_t v = duration_parse_ms(ok[i].s);
		if (v != ok[i].ms)
			fail_msg("duration '%s' = %lld, want %lld", ok[i].s, (long long)v,
			         (long long)ok[i].ms);
	}
	static const char *const bad[] = {
	    "",
	    "-1",
	    "-1s",
	    "+1s",
	    "1x",
	    "s",
	    "ms",
	    "1.5h",
	    " 1s",
	    "1s ",
	    "1 s",
	    "1S",
	    "1H",
	    "1sec",
	    "1hm",
	    "1m1s",
	    "0x10",
	    "1e3",
	    "99999999999999999999",
	    "9223372036854775807",
	    "9223372036854775808s",
	    "18446744073709551617ms",
	    "100000000000d",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int64_t v = duration_parse_ms(bad[i]);
		if (v != -1)
			fail_msg("duration '%s' = %lld, want -1", bad[i], (long long)v);
	}
	assert_int_equal(duration_parse_ms(NULL), -1);
	/* whatever is accepted never overflows into a negative or wrapped value */
	static const char *const big[] = {"3153600000", "3153600000s", "3153600000m", "3153600000h",
	                                  "3153600000d"};
	for (size_t i = 0; i < sizeof(big) / sizeof(big[0]); i++) {
		int64_t v = duration_parse_ms(big[i]);
		assert_true(v == -1 || v >= 3153600000LL);
	}
}

static void test_size_parse(void **state)
{
	(void)state;
	static const struct {
		const char *s;
		int64_t v;
	} ok[] = {
	    {"0", 0},
	    {"512", 512},
	    {"64K", 65536},
	    {"64k", 65536},
	    {"64M", 64 << 20},
	    {"64MiB", 64 << 20},
	    {"64MB", 64 << 20},
	    {"1G", 1LL << 30},
	    {"2T", 2LL << 40},
	    {"4611686018427387904", 1LL << 62},
	    {"4096T", 1LL << 52},
	};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		if (size_parse_bytes(ok[i].s) != ok[i].v)
			fail_msg("size '%s' = %lld, want %lld", ok[i].s,
			         (long long)size_parse_bytes(ok[i].s), (long long)ok[i].v);
	static const char *const bad[] = {"",
	                                  "-1",
	                                  "+1",
	                                  "1X",
	                                  "1.5G",
	                                  " 1M",
	                                  "1M ",
	                                  "M",
	                                  "1MiBs",
	                                  "1Mb",
	                                  "1KK",
	                                  "0x10",
	                                  "4611686018427387905",
	                                  "4194305T",
	                                  "99999999999999999999"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (size_parse_bytes(bad[i]) != -1)
			fail_msg("size '%s' = %lld, want -1", bad[i],
			         (long long)size_parse_bytes(bad[i]));
	assert_int_equal(size_parse_bytes(NULL), -1);
}

/* ---- util: files ---- */

static void test_fs_write_read(void **state)
{
	const char *dir = *state;
	struct berr e;
	err_clear(&e);
	char *p = xasprintf("%s/file", dir);
	static const char data[] = "line 1\n\0binary\xff tail";
	assert_int_equal(fs_write_atomic(p, data, sizeof(data) - 1, 0600, &e), BERR_OK);
	struct stat sb;
	assert_int_equal(stat(p, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	assert_int_equal(sb.st_size, sizeof(data) - 1);
	assert_int_equal(dir_entries(dir), 1); /* no temp file left behind */

	char *out = NULL;
	size_t len = 0;
	assert_int_equal(fs_read_all(p, 1 << 20, &out, &len, &e), BERR_OK);
	assert_int_equal(len, sizeof(data) - 1);
	assert_memory_equal(out, data, len);
	assert_int_equal(out[len], '\0'); /* terminated */
	free(out);

	/* replace: readers see the new content, still one file */
	assert_int_equal(fs_write_atomic(p, "new", 3, 0644, &e), BERR_OK);
	assert_int_equal(fs_read_all(p, 100, &out, NULL, &e), BERR_OK);
	assert_string_equal(out, "new");
	free(out);
	assert_int_equal(dir_entries(dir), 1);

	/* empty file */
	assert_int_equal(fs_write_atomic(p, "", 0, 0644, &e), BERR_OK);
	assert_int_equal(fs_read_all(p, 100, &out, &len, &e), BERR_OK);
	assert_int_equal(len, 0);
	assert_string_equal(out, "");
	free(out);

	/* a larger file spanning several read buffers */
	size_t n = 100000;
	char *big = xmalloc(n);
	for (size_t i = 0; i < n; i++)
		big[i] = (char)('a' + i % 26);
	assert_int_equal(fs_write_atomic(p, big, n, 0644, &e), BERR_OK);
	assert_int_equal(fs_read_all(p, n * 2, &out, &len, &e), BERR_OK);
	assert_int_equal(len, n);
	assert_memory_equal(out, big, n);
	free(out);
	free(big);

	/* into a directory that does not exist */
	char *missing = xasprintf("%s/no/such/dir/file", dir);
	assert_int_equal(fs_write_atomic(missing, "x", 1, 0644, &e), BERR_IO);
	free(missing);
	assert_int_equal(dir_entries(dir), 1);
	free(p);
}

static void test_fs_read_missing(void **state)
{
	const char *dir = *state;
	struct berr e;
	err_clear(&e);
	char *p = xasprintf("%s/absent", dir);
	char *out = (char *)"untouched";
	assert_int_equal(fs_read_all(p, 100, &out, NULL, &e), BERR_NOT_FOUND);
	assert_int_equal(e.code, BERR_NOT_FOUND);
	assert_string_equal(out, "untouched");
	free(p);
	/* a directory is not a readable file */
	assert_true(fs_read_all(dir, 100, &out, NULL, &e) != BERR_OK);
}

/* Writes n bytes to dir/f and reads them back with the given limit. */
static enum berr_code read_sized(const char *dir, size_t n, size_t limit, size_t *got)
{
	struct berr e;
	char *p = xasprintf("%s/sized", dir);
	char *data = xmalloc(n ? n : 1);
	memset(data, 'q', n);
	if (fs_write_atomic(p, data, n, 0644, &e) != BERR_OK)
		fail_msg("write %zu bytes: %s", n, e.msg);
	free(data);
	char *out = NULL;
	*got = 0;
	enum berr_code rc = fs_read_all(p, limit, &out, got, &e);
	free(out);
	free(p);
	return rc;
}

static void test_fs_read_limit(void **state)
{
	const char *dir = *state;
	/* A file of exactly limit bytes is accepted, one more byte is refused, at every size
	 * (small limits, and limits on the 4 KiB read-buffer boundaries). */
	static const size_t limits[] = {1, 10, 4095, 4096, 4097, 8192, 10000, 16384};
	int failures = 0;
	for (size_t i = 0; i < sizeof(limits) / sizeof(limits[0]); i++) {
		size_t lim = limits[i], got = 0;
		enum berr_code rc = read_sized(dir, lim, lim, &got);
		if (rc != BERR_OK || got != lim) {
			print_error("fs_read_all of a %zu-byte file with limit %zu: %s\n", lim, lim,
			            err_name(rc));
			failures++;
		}
		rc = read_sized(dir, lim + 1, lim, &got);
		if (rc != BERR_TOO_LARGE) {
			print_error("fs_read_all of a %zu-byte file with limit %zu: %s\n", lim + 1,
			            lim, err_name(rc));
			failures++;
		}
		if (lim > 1) {
			rc = read_sized(dir, lim - 1, lim, &got);
			if (rc != BERR_OK || got != lim - 1) {
				print_error("fs_read_all of a %zu-byte file with limit %zu: %s\n",
				            lim - 1, lim, err_name(rc));
				failures++;
			}
		}
	}
	size_t got;
	assert_int_equal(read_sized(dir, 100000, 50000, &got), BERR_TOO_LARGE);
	assert_int_equal(read_sized(dir, 0, 0, &got), BERR_OK);
	if (failures)
		fail_msg("%d limit checks failed", failures);
}

static void test_fs_mkdirs(void **state)
{
	const char *dir = *state;
	struct berr e;
	err_clear(&e);
	char *p = xasprintf("%s/a/b/c/d", dir);
	assert_int_equal(fs_mkdirs(p, &e), BERR_OK);
	assert_true(is_dir(p));
	assert_int_equal(fs_mkdirs(p, &e), BERR_OK); /* idempotent */
	struct stat sb;
	assert_int_equal(stat(p, &sb), 0);
	free(p);

	p = xasprintf("%s/a/b/x/", dir); /* trailing slash; partly existing */
	assert_int_equal(fs_mkdirs(p, &e), BERR_OK);
	free(p);
	p = xasprintf("%s/a/b/x", dir);
	assert_true(is_dir(p));
	free(p);
	p = xasprintf("%s//a//b//y", dir); /* doubled slashes */
	assert_int_equal(fs_mkdirs(p, &e), BERR_OK);
	free(p);
	p = xasprintf("%s/a/b/y", dir);
	assert_true(is_dir(p));
	free(p);
	assert_int_equal(fs_mkdirs("/", &e), BERR_OK);
	assert_int_equal(fs_mkdirs(dir, &e), BERR_OK);

	/* a component that is a regular file */
	char *f = xasprintf("%s/plain", dir);
	assert_int_equal(fs_write_atomic(f, "x", 1, 0644, &e), BERR_OK);
	p = xasprintf("%s/plain/sub", dir);
	assert_int_equal(fs_mkdirs(p, &e), BERR_IO);
	free(p);
	free(f);
}

static void test_fs_mkdirs_existing_file(void **state)
{
	const char *dir = *state;
	struct berr e;
	err_clear(&e);
	/* Like mkdir -p: a path that exists but is not a directory is an error, otherwise the
	 * caller goes on to use a "directory" that is a file. */
	char *f = xasprintf("%s/plain", dir);
	assert_int_equal(fs_write_atomic(f, "x", 1, 0644, &e), BERR_OK);
	enum berr_code rc = fs_mkdirs(f, &e);
	free(f);
	if (rc != BERR_IO)
		fail_msg("fs_mkdirs on an existing regular file = %s, want BERR_IO", err_name(rc));
}

static void test_fs_mkdirs_empty_path(void **state)
{
	(void)state;
	/* Run in a child: an out-of-bounds read would abort the whole test binary under ASan. */
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct berr e;
		enum berr_code rc = fs_mkdirs("", &e);
		_exit(rc == BERR_OK ? 3 : 0);
	}
	int st = 0;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	if (WIFSIGNALED(st))
		fail_msg("fs_mkdirs(\"\") crashed with signal %d", WTERMSIG(st));
	if (WEXITSTATUS(st) == 3)
		fail_msg("fs_mkdirs(\"\") succeeded");
	if (WEXITSTATUS(st) != 0)
		fail_msg("fs_mkdirs(\"\") failed in the child (exit %d: sanitizer report above)",
		         WEXITSTATUS(st));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_err_set_clear),
	    cmocka_unit_test(test_err_wire_table),
	    cmocka_unit_test(test_buf_append_limit),
	    cmocka_unit_test(test_buf_binary_printf),
	    cmocka_unit_test(test_buf_steal),
	    cmocka_unit_test(test_glob_match),
	    cmocka_unit_test(test_glob_no_blowup),
	    cmocka_unit_test(test_str_helpers),
	    cmocka_unit_test(test_json_fast_reads),
	    cmocka_unit_test(test_json_fast_defers),
	    cmocka_unit_test(test_json_fast_nul),
	    cmocka_unit_test(test_uuid_v4),
	    cmocka_unit_test(test_uuid_is_valid),
	    cmocka_unit_test(test_duration_parse),
	    cmocka_unit_test(test_size_parse),
	    cmocka_unit_test_setup_teardown(test_fs_write_read, tmpdir_setup, tmpdir_teardown),
	    cmocka_unit_test_setup_teardown(test_fs_read_missing, tmpdir_setup, tmpdir_teardown),
	    cmocka_unit_test_setup_teardown(test_fs_read_limit, tmpdir_setup, tmpdir_teardown),
	    cmocka_unit_test_setup_teardown(test_fs_mkdirs, tmpdir_setup, tmpdir_teardown),
	    cmocka_unit_test_setup_teardown(test_fs_mkdirs_existing_file, tmpdir_setup,
	                                    tmpdir_teardown),
	    cmocka_unit_test(test_fs_mkdirs_empty_path),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
