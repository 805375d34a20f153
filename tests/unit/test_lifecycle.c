/* test_lifecycle.c - unit tests for core/lifecycle.c, the pure evaluator of spec §4.5.3: the
 * worked examples of §4.5.4 (with their variants), AWS's documented examples, a simulated month
 * of the seed policy, selection semantics (storage class, tag status, prefix/pattern lists with
 * several tags), count ties, boundaries, time references (pull, restore, archive), protected
 * index children, overflow, a 100,000-image repository, and a randomized comparison with a
 * naive O(n^2) transcription of the spec.
 *
 * Policies are built from JSON with lc_policy_parse, written with ' for " (see dq()). Times are
 * milliseconds relative to NOW. */
#include "../../src/base/feat.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "../../src/base/err.h"
#include "../../src/base/mem.h"
#include "../../src/core/lifecycle.h"
#include "../../src/core/policy.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DAY INT64_C(86400000)
#define HOUR INT64_C(3600000)
#define NOW INT64_C(1700000000000)

/* ---- policy text building blocks ---------------------------------------------------------- */

#define POL(rules) "{'rules':[" rules "]}"
#define RULE(prio, sel, act) "{'rulePriority':" #prio ",'selection':{" sel "},'action':" act "}"
#define EXPIRE "{'type':'expire'}"
#define TRANSITION "{'type':'transition','targetStorageClass':'archive'}"
#define TAGGED_PAT(list) "'tagStatus':'tagged','tagPatternList':[" list "]"
#define TAGGED_PRE(list) "'tagStatus':'tagged','tagPrefixList':[" list "]"
#define UNTAGGED "'tagStatus':'untagged'"
#define ANY "'tagStatus':'any'"
#define ARCHIVE ",'storageClass':'archive'"
#define COUNT(n) ",'countType':'imageCountMoreThan','countNumber':" #n
#define PUSHED(n) ",'countType':'sinceImagePushed','countUnit':'days','countNumber':" #n
#define PULLED(n) ",'countType':'sinceImagePulled','countUnit':'days','countNumber':" #n
#define TRANSITIONED(n) ",'countType':'sinceImageTransitioned','countUnit':'days','countNumber':" #n

/* AWS's "keep the last 20 tagged images; expire untagged after 7 days" (berth's seed policy). */
#define SEED_POLICY                                                                                \
	POL(RULE(1, TAGGED_PAT("'*'") COUNT(20), EXPIRE) "," RULE(2, UNTAGGED PUSHED(7), EXPIRE))

/* ---- image building blocks ---------------------------------------------------------------- */

#define TAGS(...)                                                                                  \
	(const char *const[]){__VA_ARGS__}, ARRAY_LEN(((const char *const[]){__VA_ARGS__}))
#define NOTAGS NULL, 0

static struct lc_image img(int64_t id, const char *const *tags, size_t ntags, int64_t pushed_at)
{
	struct lc_image im = {.id = id, .tags = tags, .ntags = ntags, .pushed_at = pushed_at};

	return im;
}

static struct lc_image img_protected(struct lc_image im)
{
	im.protected_child = true;
	return im;
}

static struct lc_image img_pulled(struct lc_image im, int64_t pulled_at)
{
	im.pulled_at = pulled_at;
	return im;
}

static struct lc_image img_restored(struct lc_image im, int64_t activated_at)
{
	im.activated_at = activated_at;
	return im;
}

static struct lc_image img_archived(struct lc_image im, int64_t archived_at)
{
	im.archived = true;
	im.archived_at = archived_at;
	return im;
}

/* ---- helpers ------------------------------------------------------------------------------- */

/* New copy of s with every ' turned into ". */
static char *dq(const char *s)
{
	char *c = xstrdup(s);

	for (char *p = c; *p; p++)
		if (*p == '\'')
			*p = '"';
	return c;
}

static struct lc_policy *parse_at(const char *qpolicy, int line)
{
	char *text = dq(qpolicy);
	struct lc_policy *p = NULL;
	struct berr err;
	enum berr_code rc;

	err_clear(&err);
	rc = lc_policy_parse(text, strlen(text), &p, &err);
	if (rc != BERR_OK)
		print_error("line %d: policy %s rejected: %s\n", line, text, err.msg);
	free(text);
	assert_int_equal(rc, BERR_OK);
	assert_non_null(p);
	return p;
}
#define parse(qpolicy) parse_at(qpolicy, __LINE__)

/* Every decided image carries its rule's action; protected images are never decided. */
static void check_consistent(const struct lc_policy *p, const struct lc_image *imgs, size_t n,
                             const struct lc_decision *out)
{
	for (size_t i = 0; i < n; i++) {
		assert_true(out[i].rule >= -1 && out[i].rule < (int)p->nrules);
		if (out[i].rule >= 0)
			assert_int_equal(out[i].action, p->rules[out[i].rule].action);
		if (imgs[i].protected_child)
			assert_int_equal(out[i].rule, -1);
	}
}

/* Parses qpolicy, evaluates imgs[0..n) at now into out. */
static void eval_at(const char *qpolicy, const struct lc_image *imgs, size_t n, int64_t now,
                    struct lc_decision *out, int line)
{
	struct lc_policy *p = parse_at(qpolicy, line);

	lc_evaluate(p, imgs, n, now, out);
	check_consistent(p, imgs, n, out);
	lc_policy_free(p);
}
#define eval(qpolicy, imgs, out) eval_at(qpolicy, imgs, ARRAY_LEN(imgs), NOW, out, __LINE__)

static void check_at(const struct lc_decision *out, size_t n, const int *want, size_t nwant,
                     int line)
{
	assert_int_equal(n, nwant);
	for (size_t i = 0; i < n; i++) {
		if (out[i].rule != want[i])
			print_error("line %d: image #%zu decided by rule %d, want %d\n", line, i,
			            out[i].rule, want[i]);
		assert_int_equal(out[i].rule, want[i]);
	}
}
/* CHECK(out, r0, r1, ...): image i decided by rule index ri (-1 = untouched). */
#define CHECK(out, ...)                                                                            \
	check_at(out, ARRAY_LEN(out), (const int[]){__VA_ARGS__},                                  \
	         ARRAY_LEN(((const int[]){__VA_ARGS__})), __LINE__)

/* ---- §4.5.4 worked examples ----------------------------------------------------------------- */

static void test_example1_shadowing(void **state)
{
	const struct lc_image imgs[] = {
	    img(1, TAGS("rc-1", "live-1"), NOW - 10 * DAY),
	    img(2, TAGS("rc-2", "live-2"), NOW - 9 * DAY),
	    img(3, TAGS("rc-3"), NOW - 8 * DAY),
	};
	struct lc_decision out[ARRAY_LEN(imgs)];

	(void)state;
	/* P1 live* keep 1 claims I1, I2 (marks I1); P2 rc* marks I1, I2 - both claimed. */
	eval(POL(RULE(1, TAGGED_PAT("'live*'") COUNT(1),
	              EXPIRE) "," RULE(2, TAGGED_PAT("'rc*'") COUNT(1), EXPIRE)),
	     imgs, out);
	CHECK(out, 0, -1, -1);
	assert_int_equal(out[0].action, LC_EXPIRE);
	/* The same with prefix lists. */
	eval(POL(RULE(1, TAGGED_PRE("'live'") COUNT(1),
	              EXPIRE) "," RULE(2, TAGGED_PRE("'rc'") COUNT(1), EXPIRE)),
	     imgs, out);
	CHECK(out, 0, -1, -1);

	/* Swapped priorities (written in the other document order: indices follow priority). */
	eval(POL(RULE(2, TAGGED_PAT("'live*'") COUNT(1),
	              EXPIRE) "," RULE(1, TAGGED_PAT("'rc*'") COUNT(1), EXPIRE)),
	     imgs, out);
	CHECK(out, 0, 0, -1);
	eval(POL(RULE(1, TAGGED_PRE("'rc'") COUNT(1),
	              EXPIRE) "," RULE(2, TAGGED_PRE("'live'") COUNT(1), EXPIRE)),
	     imgs, out);
	CHECK(out, 0, 0, -1);
}

static void test_example2_mixed(void **state)
{
	/* J4 and J5 are both exactly one day old; J4 was pushed first (smaller id). */
	const struct lc_image imgs[] = {
	    img(1, TAGS("a-1", "b-1"), NOW - 4 * DAY),
	    img(2, NOTAGS, NOW - 3 * DAY),
	    img(3, TAGS("a-2"), NOW - 2 * DAY),
	    img(4, TAGS("build-7"), NOW - DAY),
	    img(5, NOTAGS, NOW - DAY),
	};
	struct lc_decision out[ARRAY_LEN(imgs)];

	(void)state;
	eval(POL(RULE(1, TAGGED_PAT("'a*'") COUNT(1), EXPIRE) "," RULE(
	         2, UNTAGGED PUSHED(1), EXPIRE) "," RULE(3, ANY COUNT(1), EXPIRE)),
	     imgs, out);
	CHECK(out, 0, 1, -1, 2, -1);
}

static void test_example3_several_prefixes(void **state)
{
	const struct lc_image imgs[] = {
	    img(1, TAGS("x-1"), NOW - 12 * DAY),        img(2, TAGS("y-1"), NOW - 11 * DAY),
	    img(3, TAGS("x-2", "y-2"), NOW - 10 * DAY), img(4, TAGS("x-3"), NOW - 4 * DAY),
	    img(5, TAGS("x-4", "y-4"), NOW - 2 * DAY),
	};
	struct lc_decision out[ARRAY_LEN(imgs)];

	(void)state;
	eval(POL(RULE(1, TAGGED_PRE("'x','y'") PUSHED(5), EXPIRE)), imgs, out);
	CHECK(out, -1, -1, 0, -1, -1);
	eval(POL(RULE(1, TAGGED_PRE("'x','y'") COUNT(1), EXPIRE)), imgs, out);
	CHECK(out, -1, -1, 0, -1, -1);
	/* AWS's tagPatternList form of the same examples. */
	eval(POL(RULE(1, TAGGED_PAT("'x*','y*'") PUSHED(5), EXPIRE)), imgs, out);
	CHECK(out, -1, -1, 0, -1, -1);
	eval(POL(RULE(1, TAGGED_PAT("'x*','y*'") COUNT(1), EXPIRE)), imgs, out);
	CHECK(out, -1, -1, 0, -1, -1);
}

static void test_example4_archive(void **state)
{
	const struct lc_image imgs[] = {
	    img(1, TAGS("l1"), NOW - 100 * DAY),
	    img_pulled(img(2, TAGS("l2"), NOW - 200 * DAY), NOW - 10 * DAY),
	    img_archived(img(3, TAGS("l3"), NOW - 400 * DAY), NOW - 120 * DAY),
	};
	struct lc_decision out[ARRAY_LEN(imgs)];

	(void)state;
	eval(POL(RULE(1, ANY PULLED(90), TRANSITION) "," RULE(2, ANY ARCHIVE TRANSITIONED(100),
	                                                      EXPIRE)),
	     imgs, out);
	CHECK(out, 0, -1, 1);
	assert_int_equal(out[0].action, LC_TRANSITION);
	assert_int_equal(out[2].action, LC_EXPIRE);
}

/* ---- AWS's documented examples -------------------------------------------------------------- */

static void test_aws_age_and_count(void **state)
{
	const struct lc_image imgs[] = {
	    img(1, NOTAGS, NOW - 20 * DAY),        img(2, TAGS("v1"), NOW - 15 * DAY),
	    img(3, NOTAGS, NOW - 14 * DAY - 1),    img(4, NOTAGS, NOW - 14 * DAY),
	    img(5, TAGS("latest"), NOW - 3 * DAY), img(6, NOTAGS, NOW - HOUR),
	};
	struct lc_decision out[ARRAY_LEN(imgs)];

	(void)state;
	/* "Filtering on image age": untagged, sinceImagePushed 14 days. */
	eval(POL(RULE(1, UNTAGGED PUSHED(14), EXPIRE)), imgs, out);
	CHECK(out, 0, -1, 0, -1, -1, -1);
	/* "Filtering on image count": any, keep 1 - only the newest survives. */
	eval(POL(RULE(1, ANY COUNT(1), EXPIRE)), imgs, out);
	CHECK(out, 0, 0, 0, 0, 0, -1);
	/* Tagged keep 1 with everything else aged out after 14 days. */
	eval(POL(RULE(1, TAGGED_PAT("'*'") COUNT(1), EXPIRE) "," RULE(2, ANY PUSHED(14), EXPIRE)),
	     imgs, out);
	CHECK(out, 1, 0, 1, -1, -1, -1);
}

/* "Filtering on multiple rules" with prod/beta prefixes (AWS's example A). */
static void test_aws_multiple_rules(void **state)
{
	const struct lc_image imgs[] = {
	    img(1, TAGS("beta-1", "prod-1"), NOW - 10 * DAY),
	    img(2, TAGS("beta-2", "prod-2"), NOW - 9 * DAY),
	    img(3, TAGS("beta-3"), NOW - 8 * DAY),
	};
	struct lc_decision out[ARRAY_LEN(imgs)];

	(void)state;
	eval(POL(RULE(1, TAGGED_PRE("'prod'") COUNT(1),
	              EXPIRE) "," RULE(2, TAGGED_PRE("'beta'") COUNT(1), EXPIRE)),
	     imgs, out);
	CHECK(out, 0, -1, -1);
	eval(POL(RULE(1, TAGGED_PRE("'beta'") COUNT(1),
	              EXPIRE) "," RULE(2, TAGGED_PRE("'prod'") COUNT(1), EXPIRE)),
	     imgs, out);
	CHECK(out, 0, 0, -1);
}

/* A month of the seed policy: every day 2 tagged and 4 untagged pushes, one evaluation at 23:00
 * whose expirations are applied before the next day. */
#define SIM_DAYS 40
#define SIM_PER_DAY 6

struct sim_img {
	int64_t pushed_at;
	bool tagged;
	bool deleted;
	char tag[32];
	const char *tagv[1];
};

static void test_seed_policy_simulation(void **state)
{
	static const int64_t hours[SIM_PER_DAY] = {1, 9, 10, 12, 15, 23}; /* push hours */
	struct sim_img *all = xcalloc(SIM_DAYS * SIM_PER_DAY, sizeof(*all));
	struct lc_image *imgs = xcalloc(SIM_DAYS * SIM_PER_DAY, sizeof(*imgs));
	struct lc_decision *out = xcalloc(SIM_DAYS * SIM_PER_DAY, sizeof(*out));
	size_t *map = xcalloc(SIM_DAYS * SIM_PER_DAY, sizeof(*map));
	struct lc_policy *p = parse(SEED_POLICY);
	size_t total = 0;
	const int64_t t0 = NOW - 100 * DAY;

	(void)state;
	for (int d = 0; d < SIM_DAYS; d++) {
		int64_t now = t0 + d * DAY + 23 * HOUR;
		size_t n = 0, tagged_left = 0, tagged_pushed = 0;

		for (int k = 0; k < SIM_PER_DAY; k++) {
			struct sim_img *s = &all[total++];

			s->pushed_at = t0 + d * DAY + hours[k] * HOUR;
			s->tagged = k == 1 || k == 4;
			snprintf(s->tag, sizeof(s->tag), "v%d.%d", d, k);
			s->tagv[0] = s->tag;
		}
		for (size_t i = 0; i < total; i++) {
			if (all[i].deleted)
				continue;
			imgs[n] =
			    img((int64_t)i, all[i].tagv, all[i].tagged ? 1 : 0, all[i].pushed_at);
			map[n++] = i;
		}
		lc_evaluate(p, imgs, n, now, out);
		check_consistent(p, imgs, n, out);
		for (size_t j = 0; j < n; j++)
			if (out[j].rule >= 0)
				all[map[j]].deleted = true;

		/* The 20 newest tagged images survive; untagged ones survive iff at most 7 days old
		 * (the one pushed at 23:00 seven days ago is exactly 7 days old: kept). */
		for (size_t i = total; i-- > 0;) {
			if (!all[i].tagged)
				continue;
			tagged_pushed++;
			assert_int_equal(all[i].deleted, tagged_pushed > 20);
			tagged_left += !all[i].deleted;
		}
		assert_int_equal(tagged_left, tagged_pushed < 20 ? tagged_pushed : 20);
		for (size_t i = 0; i < total; i++)
			if (!all[i].tagged)
				assert_int_equal(all[i].deleted, now - all[i].pushed_at > 7 * DAY);
		if (d >= 7) {
			/* day d-7 at 23:00 is exactly 7 days old: kept; its 10:00 push is older */
			size_t exact = (size_t)(d - 7) * SIM_PER_DAY + 5;

			assert_int_equal(now - all[exact].pushed_at, 7 * DAY);
			assert_false(all[exact].deleted);
			assert_true(all[exact - 3].deleted); /* 12:00 that day, untagged */
		}
	}
	lc_policy_free(p);
	free(map);
	free(out);
	free(imgs);
	free(all);
}

/* ---- selection ------------------------------------------------------------------------------ */

static void test_several_tags_every_some(void **state)
{
	const int64_t old = NOW - 10 * DAY;
	const struct lc_image imgs[] = {
	    img(1, TAGS("a1"), old),             /* no tag for b */
	    img(2, TAGS("a1", "b1"), old),       /* each prefix by a different tag */
	    img(3, TAGS("ab"), old),             /* "b" is not a prefix of "ab" */
	    img(4, TAGS("b1", "zz", "a1"), old), /* order of tags does not matter */
	    img(5, NOTAGS, old),
	    img(6, TAGS("ba", "zz"), old), /* "a" is not a prefix of "ba" */
	};
	const struct lc_image one_tag[] = {
	    img(1, TAGS("abc"), old),    /* one tag serves both prefixes */
	    img(2, TAGS("a", "x"), old), /* "ab" not a prefix of "a" */
	    img(3, TAGS("ab"), old),
	};
	const struct lc_image pat[] = {
	    img(1, TAGS("axb"), old),       /* *x* only */
	    img(2, TAGS("axb", "yz"), old), /* each pattern by a different tag */
	    img(3, TAGS("yx"), old),        /* one tag matches both */
	    img(4, TAGS("zy"), old),        /* neither pattern */
	    img(5, NOTAGS, old),
	};
	struct lc_decision out[ARRAY_LEN(imgs)], out1[ARRAY_LEN(one_tag)], out2[ARRAY_LEN(pat)];

	(void)state;
	eval(POL(RULE(1, TAGGED_PRE("'a','b'") PUSHED(1), EXPIRE)), imgs, out);
	CHECK(out, -1, 0, -1, 0, -1, -1);
	eval(POL(RULE(1, TAGGED_PRE("'a'") PUSHED(1), EXPIRE)), imgs, out);
	CHECK(out, 0, 0, 0, 0, -1, -1);
	eval(POL(RULE(1, TAGGED_PRE("'a','ab'") PUSHED(1), EXPIRE)), one_tag, out1);
	CHECK(out1, 0, -1, 0);
	eval(POL(RULE(1, TAGGED_PAT("'*x*','y*'") PUSHED(1), EXPIRE)), pat, out2);
	CHECK(out2, -1, 0, 0, -1, -1);
	eval(POL(RULE(1, TAGGED_PAT("'*'") PUSHED(1), EXPIRE)), pat, out2);
	CHECK(out2, 0, 0, 0, 0, -1); /* '*' = every tagged image, never an untagged one */
	eval(POL(RULE(1, UNTAGGED PUSHED(1), EXPIRE)), pat, out2);
	CHECK(out2, -1, -1, -1, -1, 0);
	eval(POL(RULE(1, ANY PUSHED(1), EXPIRE)), pat, out2);
	CHECK(out2, 0, 0, 0, 0, 0);
}

static void test_pattern_match(void **state)
{
	(void)state;
	assert_true(lc_pattern_match("*", "anything"));
	assert_true(lc_pattern_match("*", ""));
	assert_true(lc_pattern_match("**", "x"));
	assert_true(lc_pattern_match("prod*", "prod"));
	assert_true(lc_pattern_match("prod*", "prod1"));
	assert_true(lc_pattern_match("prod*", "production-x"));
	assert_false(lc_pattern_match("prod*", "xprod"));
	assert_false(lc_pattern_match("prod*", "pro"));
	assert_false(lc_pattern_match("prod*", "Prod1")); /* case-sensitive */
	assert_true(lc_pattern_match("*prod*", "repo-production"));
	assert_true(lc_pattern_match("*prod*", "prod"));
	assert_false(lc_pattern_match("*prod*", "pro-d"));
	assert_true(lc_pattern_match("*prod", "my-prod"));
	assert_false(lc_pattern_match("*prod", "prod-1")); /* whole tag: anchored at the end */
	assert_true(lc_pattern_match("a*b*c", "abc"));
	assert_true(lc_pattern_match("a*b*c", "aXbYc"));
	assert_true(lc_pattern_match("a*b*c", "abcc"));
	assert_true(lc_pattern_match("a*b*c", "abbcbc"));
	assert_false(lc_pattern_match("a*b*c", "acb"));
	assert_false(lc_pattern_match("a*b*c", "abcd"));
	assert_false(lc_pattern_match("a*b*c", "ab"));
	assert_true(lc_pattern_match("a*a", "aa"));
	assert_false(lc_pattern_match("a*a", "a"));
	assert_true(lc_pattern_match("*-rc-*", "v1-rc-2"));
	assert_false(lc_pattern_match("*-rc-*", "v1-rc2"));
	assert_true(lc_pattern_match("v1.0", "v1.0"));
	assert_false(lc_pattern_match("v1.0", "v1x0")); /* '.' is literal */
	assert_false(lc_pattern_match("?", "a"));       /* so are '?' and '[' */
	assert_true(lc_pattern_match("?", "?"));
	assert_false(lc_pattern_match("[ab]", "a"));
	assert_true(lc_pattern_match("", ""));
	assert_false(lc_pattern_match("", "a"));
	assert_false(lc_pattern_match("a", ""));
	assert_true(lc_pattern_match("*a*a*a*a", "aaaa"));
	assert_false(lc_pattern_match("*a*a*a*a", "aaa"));
	assert_false(
	    lc_pattern_match("*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"));
}

static void test_pattern_rules(void **state)
{
	const int64_t old = NOW - 10 * DAY;
	const struct lc_image imgs[] = {
	    img(1, TAGS("prod"), old),
	    img(2, TAGS("production-x"), old),
	    img(3, TAGS("repo-production"), old),
	    img(4, TAGS("abc"), old),
	    img(5, TAGS("a-b-c-d"), old),
	    img(6, TAGS("xprod"), old),
	};
	struct lc_decision out[ARRAY_LEN(imgs)];

	(void)state;
	eval(POL(RULE(1, TAGGED_PAT("'prod*'") PUSHED(1), EXPIRE)), imgs, out);
	CHECK(out, 0, 0, -1, -1, -1, -1);
	eval(POL(RULE(1, TAGGED_PAT("'*prod*'") PUSHED(1), EXPIRE)), imgs, out);
	CHECK(out, 0, 0, 0, -1, -1, 0);
	eval(POL(RULE(1, TAGGED_PAT("'a*b*c'") PUSHED(1), EXPIRE)), imgs, out);
	CHECK(out, -1, -1, -1, 0, -1, -1);
	eval(POL(RULE(1, TAGGED_PAT("'*'") PUSHED(1), EXPIRE)), imgs, out);
	CHECK(out, 0, 0, 0, 0, 0, 0);
	eval(POL(RULE(1, TAGGED_PAT("'****'") PUSHED(1), EXPIRE)), imgs, out);
	CHECK(out, 0, 0, 0, 0, 0, 0);
	eval(POL(RULE(1, TAGGED_PAT("'prod'") PUSHED(1), EXPIRE)), imgs, out);
	CHECK(out, 0, -1, -1, -1, -1, -1); /* no wildcard: exact tag */
	eval(POL(RULE(1, TAGGED_PAT("''") PUSHED(1), EXPIRE)), imgs, out);
	CHECK(out, -1, -1, -1, -1, -1, -1); /* empty pattern matches only an empty tag */
	eval(POL(RULE(1, TAGGED_PRE("''") PUSHED(1), EXPIRE)), imgs, out);
	CHECK(out, 0, 0, 0, 0, 0, 0); /* empty prefix: any tag */
}

/* ---- counting ------------------------------------------------------------------------------- */

static void test_count_ties_and_restore(void **state)
{
	const int64_t t = NOW - 3 * DAY;
	/* Same push time: larger id is the later push, whatever the array order. */
	const struct lc_image ties[] = {
	    img(10, TAGS("a"), t),
	    img(3, TAGS("b"), t),
	    img(7, TAGS("c"), t),
	    img(5, TAGS("d"), t),
	};
	/* A restore makes an old image young again (ageRef = activated_at). */
	const struct lc_image restored[] = {
	    img_restored(img(1, TAGS("old"), NOW - 300 * DAY), NOW - HOUR),
	    img(2, TAGS("mid"), NOW - 2 * DAY),
	    img(3, TAGS("new"), NOW - DAY),
	};
	struct lc_decision out[ARRAY_LEN(ties)], out2[ARRAY_LEN(restored)];

	(void)state;
	eval(POL(RULE(1, ANY COUNT(2), EXPIRE)), ties, out);
	CHECK(out, -1, 0, -1, 0);
	eval(POL(RULE(1, ANY COUNT(1), EXPIRE)), ties, out);
	CHECK(out, -1, 0, 0, 0);
	eval(POL(RULE(1, ANY COUNT(4), EXPIRE)), ties, out);
	CHECK(out, -1, -1, -1, -1);
	eval(POL(RULE(1, ANY COUNT(1), EXPIRE)), restored, out2);
	CHECK(out2, -1, 0, 0);
	eval(POL(RULE(1, ANY PUSHED(1), EXPIRE)), restored, out2);
	CHECK(out2, -1, 0, -1); /* restored an hour ago; "new" is exactly one day old */
}

static void test_empty(void **state)
{
	struct lc_policy *p = parse(SEED_POLICY);
	struct lc_policy none = {.rules = NULL, .nrules = 0};
	const struct lc_image imgs[] = {img(1, NOTAGS, NOW - 100 * DAY)};
	struct lc_decision out[1] = {{.rule = 5, .action = LC_TRANSITION}};

	(void)state;
	lc_evaluate(p, NULL, 0, NOW, NULL); /* empty repository */
	lc_evaluate(&none, imgs, 1, NOW, out);
	assert_int_equal(out[0].rule, -1);
	lc_evaluate(p, imgs, 1, NOW, out);
	assert_int_equal(out[0].rule, 1);
	lc_policy_free(p);
}

static void test_protected_children(void **state)
{
	/* Untagged children of an index: never acted on, but they take a "keep" slot ... */
	const struct lc_image newest_child[] = {
	    img_protected(img(3, NOTAGS, NOW - DAY)),
	    img(2, NOTAGS, NOW - 5 * DAY),
	    img(1, NOTAGS, NOW - 6 * DAY),
	};
	/* ... and, once selected, shield themselves from lower rules too. */
	const struct lc_image mixed[] = {
	    img_protected(img(1, NOTAGS, NOW - 30 * DAY)),
	    img(2, NOTAGS, NOW - 30 * DAY),
	    img(3, TAGS("t"), NOW - 30 * DAY),
	    img_protected(img(4, TAGS("child-tag"), NOW - 30 * DAY)),
	    img(5, TAGS("keep-me"), NOW),
	};
	struct lc_decision out[ARRAY_LEN(newest_child)], out2[ARRAY_LEN(mixed)];

	(void)state;
	eval(POL(RULE(1, UNTAGGED COUNT(1), EXPIRE)), newest_child, out);
	CHECK(out, -1, 0, 0);
	eval(POL(RULE(1, UNTAGGED PUSHED(7), EXPIRE)), newest_child, out);
	CHECK(out, -1, -1, -1);
	eval(POL(RULE(1, UNTAGGED PUSHED(7), EXPIRE) "," RULE(2, ANY COUNT(1), EXPIRE)), mixed,
	     out2);
	CHECK(out2, -1, 0, 1, -1, -1);
	/* A protected image is counted: with keep 2 it holds the second slot, so 2 and 3 go. */
	eval(POL(RULE(1, ANY COUNT(2), EXPIRE)), mixed, out2);
	CHECK(out2, -1, 0, 0, -1, -1); /* newest 5, then the 30-day tie by id: 4, 3, 2, 1 */
}

/* ---- time references and boundaries -------------------------------------------------------- */

static void test_boundaries(void **state)
{
	const struct lc_image pushed[] = {
	    img(1, NOTAGS, NOW - 7 * DAY),     /* exactly 7 days: kept */
	    img(2, NOTAGS, NOW - 7 * DAY - 1), /* one ms more: expired */
	    img(3, NOTAGS, NOW - 7 * DAY + 1),
	    img(4, NOTAGS, NOW + DAY), /* clock skew: pushed "in the future" */
	};
	const struct lc_image pulled[] = {
	    img_pulled(img(1, NOTAGS, NOW - 400 * DAY), NOW - 90 * DAY),
	    img_pulled(img(2, NOTAGS, NOW - 400 * DAY), NOW - 90 * DAY - 1),
	    img(3, NOTAGS, NOW - 90 * DAY),
	    img(4, NOTAGS, NOW - 90 * DAY - 1),
	};
	const struct lc_image archived[] = {
	    img_archived(img(1, NOTAGS, NOW - 400 * DAY), NOW - 100 * DAY),
	    img_archived(img(2, NOTAGS, NOW - 400 * DAY), NOW - 100 * DAY - 1),
	};
	struct lc_decision out[4], out2[ARRAY_LEN(archived)];

	(void)state;
	eval(POL(RULE(1, UNTAGGED PUSHED(7), EXPIRE)), pushed, out);
	CHECK(out, -1, 0, -1, -1);
	eval(POL(RULE(1, ANY PULLED(90), TRANSITION)), pulled, out);
	CHECK(out, -1, 0, -1, 0);
	eval(POL(RULE(1, ANY ARCHIVE TRANSITIONED(100), EXPIRE)), archived, out2);
	CHECK(out2, -1, 0);
}

static void test_pull_reference(void **state)
{
	const struct lc_image imgs[] = {
	    /* never pulled: push time (100 days) */
	    img(1, TAGS("a"), NOW - 100 * DAY),
	    /* never pulled, pushed 30 days ago */
	    img(2, TAGS("b"), NOW - 30 * DAY),
	    /* pulled 10 days ago */
	    img_pulled(img(3, TAGS("c"), NOW - 300 * DAY), NOW - 10 * DAY),
	    /* pulled 200 days ago, then restored 95 days ago: restore time counts */
	    img_restored(img_pulled(img(4, TAGS("d"), NOW - 300 * DAY), NOW - 200 * DAY),
	                 NOW - 95 * DAY),
	    /* pulled 200 days ago, then restored 80 days ago */
	    img_restored(img_pulled(img(5, TAGS("e"), NOW - 300 * DAY), NOW - 200 * DAY),
	                 NOW - 80 * DAY),
	    /* restored 200 days ago, pulled 20 days ago: the pull counts */
	    img_restored(img_pulled(img(6, TAGS("f"), NOW - 300 * DAY), NOW - 20 * DAY),
	                 NOW - 200 * DAY),
	    /* restored 200 days ago, pulled 100 days ago */
	    img_restored(img_pulled(img(7, TAGS("g"), NOW - 300 * DAY), NOW - 100 * DAY),
	                 NOW - 200 * DAY),
	    /* pulled 100 days ago, pushed again (re-push of the same digest) 20 days ago */
	    img_pulled(img(8, TAGS("h"), NOW - 20 * DAY), NOW - 100 * DAY),
	};
	struct lc_decision out[ARRAY_LEN(imgs)];

	(void)state;
	eval(POL(RULE(1, ANY PULLED(90), TRANSITION)), imgs, out);
	CHECK(out, 0, -1, -1, 0, -1, -1, 0, -1);
	for (size_t i = 0; i < ARRAY_LEN(imgs); i++)
		if (out[i].rule == 0)
			assert_int_equal(out[i].action, LC_TRANSITION);
}

static void test_storage_classes(void **state)
{
	const struct lc_image imgs[] = {
	    img(1, TAGS("s1"), NOW - 500 * DAY),                                /* standard */
	    img_archived(img(2, TAGS("a1"), NOW - 500 * DAY), NOW - 120 * DAY), /* archived */
	    img_archived(img(3, NOTAGS, NOW - 500 * DAY), NOW - 95 * DAY),      /* archived */
	    img_archived(img(4, TAGS("a2"), NOW - DAY), NOW - 91 * DAY),        /* newest push */
	    img(5, TAGS("s2"), NOW - 5 * DAY),                                  /* standard */
	    img_archived(img(6, TAGS("a3"), NOW - 500 * DAY), 0),               /* time unknown */
	    img_archived(img(7, TAGS("a4"), NOW - 500 * DAY), NOW - 90 * DAY),  /* exactly 90 */
	};
	struct lc_decision out[ARRAY_LEN(imgs)];

	(void)state;
	/* Archive rules only see archived images. */
	eval(POL(RULE(1, ANY ARCHIVE TRANSITIONED(100), EXPIRE)), imgs, out);
	CHECK(out, -1, 0, -1, -1, -1, -1, -1);
	eval(POL(RULE(1, TAGGED_PRE("'a'") ARCHIVE TRANSITIONED(90), EXPIRE)), imgs, out);
	CHECK(out, -1, 0, -1, 0, -1, -1, -1);
	/* Archived images stay at least 90 days, whatever countNumber says (§4.12). */
	eval(POL(RULE(1, ANY ARCHIVE TRANSITIONED(1), EXPIRE)), imgs, out);
	CHECK(out, -1, 0, 0, 0, -1, -1, -1);
	/* Standard rules neither see nor count archived images. */
	eval(POL(RULE(1, ANY COUNT(1), EXPIRE)), imgs, out);
	CHECK(out, 0, -1, -1, -1, -1, -1, -1);
	eval(POL(RULE(1, ANY PUSHED(1), EXPIRE)), imgs, out);
	CHECK(out, 0, -1, -1, -1, 0, -1, -1);
	/* Both classes in one policy, both "any". */
	eval(POL(RULE(1, ANY PULLED(30), TRANSITION) "," RULE(2, ANY ARCHIVE TRANSITIONED(100),
	                                                      EXPIRE)),
	     imgs, out);
	CHECK(out, 0, 1, -1, -1, -1, -1, -1);
	assert_int_equal(out[0].action, LC_TRANSITION);
	assert_int_equal(out[1].action, LC_EXPIRE);
}

static void test_huge_count_number(void **state)
{
	const struct lc_image imgs[] = {
	    img(1, NOTAGS, INT64_MIN), /* overflowing differences */
	    img(2, NOTAGS, 0),
	    img(3, TAGS("x"), NOW - 100000 * DAY),
	    img_archived(img(4, NOTAGS, INT64_MIN), INT64_MIN),
	    img(5, NOTAGS, INT64_MAX),
	};
	struct lc_decision out[ARRAY_LEN(imgs)];

	(void)state;
	eval(POL(RULE(1, ANY COUNT(9223372036854775807), EXPIRE)), imgs, out);
	CHECK(out, -1, -1, -1, -1, -1);
	eval(POL(RULE(1, ANY PUSHED(9223372036854775807), EXPIRE)), imgs, out);
	CHECK(out, -1, -1, -1, -1, -1);
	eval(POL(RULE(1, ANY PULLED(9223372036854775807), TRANSITION)), imgs, out);
	CHECK(out, -1, -1, -1, -1, -1);
	eval(POL(RULE(1, ANY ARCHIVE TRANSITIONED(9223372036854775807), EXPIRE)), imgs, out);
	CHECK(out, -1, -1, -1, -1, -1);
	/* Exact even past int64: NOW - INT64_MIN is 106752010843 days and 19575808 ms. */
	eval(POL(RULE(1, ANY PUSHED(106752010843), EXPIRE)), imgs, out);
	CHECK(out, 0, -1, -1, -1, -1);
	eval(POL(RULE(1, ANY PUSHED(106752010844), EXPIRE)), imgs, out);
	CHECK(out, -1, -1, -1, -1, -1);
	eval(POL(RULE(1, ANY PUSHED(213503982335), EXPIRE)), imgs, out); /* product > UINT64_MAX */
	CHECK(out, -1, -1, -1, -1, -1);
	eval(POL(RULE(1, ANY ARCHIVE TRANSITIONED(106752010843), EXPIRE)), imgs, out);
	CHECK(out, -1, -1, -1, 0, -1);
	eval(POL(RULE(1, ANY PUSHED(1), EXPIRE)), imgs, out);
	CHECK(out, 0, 0, 0, -1, -1);
	/* Evaluating "at" the extremes must not overflow either. */
	eval_at(POL(RULE(1, ANY PUSHED(1), EXPIRE)), imgs, ARRAY_LEN(imgs), INT64_MAX, out,
	        __LINE__);
	CHECK(out, 0, 0, 0, -1, -1);
	eval_at(POL(RULE(1, ANY PUSHED(1), EXPIRE)), imgs, ARRAY_LEN(imgs), INT64_MIN, out,
	        __LINE__);
	CHECK(out, -1, -1, -1, -1, -1);
}

/* ---- scale ---------------------------------------------------------------------------------- */

/* 100,000 images, one a minute (id = index = push order): i%3 == 0 untagged, 1 "prod-<i>",
 * 2 "dev-<i>". Rules: newest 1000 prod; untagged after 7 days; dev-...7 after 30 days; then
 * keep the newest 5000 of everything. An O(n^2) evaluator would take minutes (more under ASan). */
static void test_large_repository(void **state)
{
	enum { N = 100000, KEEP_PROD = 1000, KEEP_ANY = 5000 };
	const int64_t minute = 60000;
	struct lc_image *imgs = xcalloc(N, sizeof(*imgs));
	struct lc_decision *out = xcalloc(N, sizeof(*out));
	char(*tags)[32] = xcalloc(N, sizeof(*tags));
	const char **tagv = xcalloc(N, sizeof(*tagv));
	size_t decided[4] = {0, 0, 0, 0};

	(void)state;
	for (size_t i = 0; i < N; i++) {
		snprintf(tags[i], sizeof(tags[i]), "%s-%zu", i % 3 == 1 ? "prod" : "dev", i);
		tagv[i] = tags[i];
		imgs[i] =
		    img((int64_t)i, &tagv[i], i % 3 == 0 ? 0 : 1, NOW - (int64_t)(N - i) * minute);
	}
	eval_at(POL(RULE(1, TAGGED_PRE("'prod'") COUNT(1000), EXPIRE) "," RULE(
	            2, UNTAGGED PUSHED(7), EXPIRE) "," RULE(3, TAGGED_PAT("'*dev-*7'") PUSHED(30),
	                                                    EXPIRE) "," RULE(4, ANY COUNT(5000),
	                                                                     EXPIRE)),
	        imgs, N, NOW, out, __LINE__);
	for (size_t i = 0; i < N; i++) {
		int64_t age = (int64_t)(N - i) * minute;
		int want = -1;

		if (i % 3 == 1)
			want = i < N - 3 * KEEP_PROD ? 0 : -1; /* newest 1000 prod: i >= 97000 */
		else if (i % 3 == 0)
			want = age > 7 * DAY ? 1 : -1;
		else if (i % 10 == 7)
			want = age > 30 * DAY ? 2 : -1; /* claimed by rule 3 either way */
		else if (i < N - KEEP_ANY)
			want = 3;
		if (out[i].rule != want)
			print_error("image %zu: rule %d, want %d\n", i, out[i].rule, want);
		assert_int_equal(out[i].rule, want);
		if (want >= 0)
			decided[want]++;
	}
	assert_int_equal(decided[0], N / 3 - KEEP_PROD);
	for (size_t k = 1; k < 4; k++)
		assert_true(decided[k] > 1000); /* every rule acts on a real share */

	/* All pushed at the same instant: ids decide, still n log n. */
	for (size_t i = 0; i < N; i++)
		imgs[i].pushed_at = NOW - DAY;
	eval_at(POL(RULE(1, ANY COUNT(10), EXPIRE)), imgs, N, NOW, out, __LINE__);
	for (size_t i = 0; i < N; i++)
		assert_int_equal(out[i].rule, i < N - 10 ? 0 : -1);

	free(tagv);
	free(tags);
	free(out);
	free(imgs);
}

/* ---- randomized comparison with a literal transcription of §4.5.3 -------------------------- */

static uint64_t rng_state = 0x9E3779B97F4A7C15u;

static uint32_t rnd(uint32_t n)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (uint32_t)(rng_state % n);
}

static bool naive_glob(const char *p, const char *s)
{
	if (*p == '\0')
		return *s == '\0';
	if (*p == '*')
		return naive_glob(p + 1, s) || (*s != '\0' && naive_glob(p, s + 1));
	return *s == *p && naive_glob(p + 1, s + 1);
}

static bool naive_sel(const struct lc_rule *r, const struct lc_image *im)
{
	if ((im->archived ? LC_ARCHIVE : LC_STANDARD) != r->storage_class)
		return false;
	if (r->tag_status == LC_UNTAGGED && im->ntags != 0)
		return false;
	if (r->tag_status == LC_TAGGED && im->ntags == 0)
		return false;
	for (size_t k = 0; k < r->nprefixes; k++) {
		bool some = false;

		for (size_t t = 0; t < im->ntags; t++)
			some |= strncmp(im->tags[t], r->tag_prefixes[k],
			                strlen(r->tag_prefixes[k])) == 0;
		if (!some)
			return false;
	}
	for (size_t k = 0; k < r->npatterns; k++) {
		bool some = false;

		for (size_t t = 0; t < im->ntags; t++)
			some |= naive_glob(r->tag_patterns[k], im->tags[t]);
		if (!some)
			return false;
	}
	return true;
}

static int64_t naive_age_ref(const struct lc_image *im)
{
	return im->activated_at ? im->activated_at : im->pushed_at;
}

static bool naive_mark(const struct lc_rule *r, const struct lc_image *imgs, size_t n, size_t i,
                       const bool *in_m, int64_t now)
{
	const struct lc_image *im = &imgs[i];
	int64_t ref = 0, last = im->pushed_at > im->activated_at ? im->pushed_at : im->activated_at;
	long long days = r->count_number;
	long long newer = 0;

	switch (r->count_type) {
	case LC_IMAGE_COUNT_MORE_THAN:
		for (size_t j = 0; j < n; j++)
			if (in_m[j] && j != i &&
			    (naive_age_ref(&imgs[j]) > naive_age_ref(im) ||
			     (naive_age_ref(&imgs[j]) == naive_age_ref(im) &&
			      (imgs[j].id > im->id || (imgs[j].id == im->id && j > i)))))
				newer++;
		return newer >= r->count_number;
	case LC_SINCE_IMAGE_PUSHED:
		ref = naive_age_ref(im);
		break;
	case LC_SINCE_IMAGE_PULLED:
		ref = im->pulled_at && im->pulled_at > last ? im->pulled_at : naive_age_ref(im);
		break;
	case LC_SINCE_IMAGE_TRANSITIONED:
		if (im->archived_at == 0)
			return false;
		ref = im->archived_at;
		days = days < 90 ? 90 : days;
		break;
	}
	return now - ref > days * DAY;
}

static void naive_evaluate(const struct lc_policy *p, const struct lc_image *imgs, size_t n,
                           int64_t now, int *rule)
{
	bool claimed[64] = {false}, in_m[64];
	size_t order[8];

	assert_true(n <= 64 && p->nrules <= 8);
	for (size_t k = 0; k < p->nrules; k++)
		order[k] = k;
	for (size_t a = 0; a + 1 < p->nrules; a++) /* bubble sort: stable */
		for (size_t b = 0; b + 1 < p->nrules - a; b++)
			if (p->rules[order[b + 1]].priority < p->rules[order[b]].priority) {
				size_t t = order[b];

				order[b] = order[b + 1];
				order[b + 1] = t;
			}
	for (size_t i = 0; i < n; i++)
		rule[i] = -1;
	for (size_t k = 0; k < p->nrules; k++) {
		const struct lc_rule *r = &p->rules[order[k]];

		for (size_t i = 0; i < n; i++)
			in_m[i] = naive_sel(r, &imgs[i]);
		for (size_t i = 0; i < n; i++)
			if (in_m[i] && naive_mark(r, imgs, n, i, in_m, now) && !claimed[i] &&
			    !imgs[i].protected_child)
				rule[i] = (int)order[k];
		for (size_t i = 0; i < n; i++)
			claimed[i] = claimed[i] || in_m[i];
	}
}

static const char *const tag_pool[] = {"a",      "ab",       "abc", "b",    "ba", "prod",
                                       "prod-1", "x-prod-y", "v1",  "v1.2", "rc", "aXbYc"};
static const char *const prefix_pool[] = {"a", "ab", "b", "p", "prod", "v", "x", ""};
static const char *const pattern_pool[] = {"*",  "a*", "*b",  "a*b*c", "*prod*", "prod*", "v1*",
                                           "b?", "**", "*-*", "ab",    "*a*b*c", "rc*",   ""};

/* A NULL-terminated list of k entries drawn from pool (borrowed strings, new array). */
static char **rand_list(const char *const *pool, size_t npool, size_t k)
{
	char **v = xcalloc(k + 1, sizeof(*v));

	for (size_t i = 0; i < k; i++)
		v[i] = (char *)pool[rnd((uint32_t)npool)];
	return v;
}

static void test_random_against_naive(void **state)
{
	(void)state;
	for (int iter = 0; iter < 3000; iter++) {
		struct lc_image imgs[64];
		const char *tagv[64][3];
		struct lc_decision out[64];
		int want[64];
		struct lc_rule rules[6];
		struct lc_policy p = {.rules = rules, .nrules = 1 + rnd(5)};
		size_t n = rnd(40);

		memset(rules, 0, sizeof(rules));
		for (size_t i = 0; i < n; i++) {
			struct lc_image *im = &imgs[i];

			memset(im, 0, sizeof(*im));
			im->id = (int64_t)rnd(20); /* duplicates too: index breaks those ties */
			im->ntags = rnd(4) == 0 ? 0 : 1 + rnd(3);
			for (size_t t = 0; t < im->ntags; t++)
				tagv[i][t] = tag_pool[rnd(ARRAY_LEN(tag_pool))];
			im->tags = tagv[i];
			im->pushed_at =
			    NOW - (int64_t)rnd(200) * DAY - (rnd(2) ? 0 : rnd(3) * HOUR);
			if (rnd(3) == 0)
				im->pulled_at = im->pushed_at + (int64_t)rnd(250) * DAY - 50 * DAY;
			if (rnd(4) == 0)
				im->activated_at = im->pushed_at + (int64_t)rnd(150) * DAY;
			if (rnd(4) == 0) {
				im->archived = true;
				im->archived_at = rnd(8) == 0 ? 0 : NOW - (int64_t)rnd(150) * DAY;
			}
			im->protected_child = rnd(8) == 0;
		}
		for (size_t k = 0; k < p.nrules; k++) {
			struct lc_rule *r = &rules[k];

			r->priority = (int)rnd(10); /* unsorted, possibly equal */
			r->tag_status = (enum lc_tag_status)rnd(3);
			r->storage_class = rnd(3) == 0 ? LC_ARCHIVE : LC_STANDARD;
			r->count_type = (enum lc_count_type)rnd(4);
			r->count_number =
			    r->count_type == LC_IMAGE_COUNT_MORE_THAN ? rnd(6) + 1 : rnd(130) + 1;
			r->action = (enum lc_action)rnd(2);
			if (r->tag_status == LC_TAGGED && rnd(2))
				r->tag_prefixes = rand_list(prefix_pool, ARRAY_LEN(prefix_pool),
				                            r->nprefixes = 1 + rnd(3));
			else if (r->tag_status == LC_TAGGED)
				r->tag_patterns = rand_list(pattern_pool, ARRAY_LEN(pattern_pool),
				                            r->npatterns = 1 + rnd(3));
		}
		/* Equal priorities: both sides visit them in document order. */
		lc_evaluate(&p, imgs, n, NOW, out);
		naive_evaluate(&p, imgs, n, NOW, want);
		check_consistent(&p, imgs, n, out);
		for (size_t i = 0; i < n; i++) {
			if (out[i].rule != want[i])
				print_error("iteration %d image %zu: rule %d, want %d\n", iter, i,
				            out[i].rule, want[i]);
			assert_int_equal(out[i].rule, want[i]);
		}
		for (size_t k = 0; k < p.nrules; k++) {
			free(rules[k].tag_prefixes);
			free(rules[k].tag_patterns);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_example1_shadowing),
	    cmocka_unit_test(test_example2_mixed),
	    cmocka_unit_test(test_example3_several_prefixes),
	    cmocka_unit_test(test_example4_archive),
	    cmocka_unit_test(test_aws_age_and_count),
	    cmocka_unit_test(test_aws_multiple_rules),
	    cmocka_unit_test(test_seed_policy_simulation),
	    cmocka_unit_test(test_several_tags_every_some),
	    cmocka_unit_test(test_pattern_match),
	    cmocka_unit_test(test_pattern_rules),
	    cmocka_unit_test(test_count_ties_and_restore),
	    cmocka_unit_test(test_empty),
	    cmocka_unit_test(test_protected_children),
	    cmocka_unit_test(test_boundaries),
	    cmocka_unit_test(test_pull_reference),
	    cmocka_unit_test(test_storage_classes),
	    cmocka_unit_test(test_huge_count_number),
	    cmocka_unit_test(test_large_repository),
	    cmocka_unit_test(test_random_against_naive),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
