/* test_policy.c - unit tests for core/policy.c: every row of the ECR lifecycle validation table
 * (spec §4.5.2) with its exact message, the check order, the semantic checks, the worked
 * examples of §4.5.4, parsed fields, hostile input, and repository/registry IAM policies.
 *
 * JSON and expected details in this file are written with ' for " and ` for ' (see dq()) to
 * keep them readable. */
#include "../../src/base/feat.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "../../src/base/buf.h"
#include "../../src/base/mem.h"
#include "../../src/core/policy.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LC_PREFIX                                                                                  \
	"Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint: "                \
	"'Lifecycle policy validation failure: "
#define REPO_MSG                                                                                   \
	"Invalid parameter at 'PolicyText' failed to satisfy constraint: "                         \
	"'Invalid repository policy provided'"
#define REG_MSG                                                                                    \
	"Invalid parameter at 'PolicyText' failed to satisfy constraint: "                         \
	"'Invalid registry policy provided'"
#define ONE_OF "instance failed to match exactly one schema (matched 0 out of 2)"
#define NO_MAP "Could not map policyString into LifecyclePolicy."

/* Building blocks (quotes written as '). */
#define SEL_OK "{'tagStatus':'untagged','countType':'imageCountMoreThan','countNumber':30}"
#define ACT_OK "{'type':'expire'}"
#define RULE(prio, sel, act) "{'rulePriority':" prio ",'selection':" sel ",'action':" act "}"
#define POL(rules) "{'rules':[" rules "]}"
#define POL_SEL(sel) POL(RULE("1", sel, ACT_OK))
#define POL_ACT(act) POL(RULE("1", SEL_OK, act))

/* New copy of s with every ' turned into " and every ` into '. */
static char *dq(const char *s)
{
	char *c = xstrdup(s);

	for (char *p = c; *p; p++)
		if (*p == '\'')
			*p = '"';
		else if (*p == '`')
			*p = '\'';
	return c;
}

/* Parses a ' -quoted policy; the result must be the full message PREFIX + detail (+ '). */
static void expect_lc_err_at(const char *policy, const char *detail, bool quote, int line)
{
	char *text = dq(policy), *d = dq(detail);
	char want[1024];
	struct berr err;
	struct lc_policy *p = (struct lc_policy *)&err; /* must be reset to NULL */
	enum berr_code rc;

	err_clear(&err);
	rc = lc_policy_parse(text, strlen(text), &p, &err);
	snprintf(want, sizeof(want), "%s%s%s", LC_PREFIX, d, quote ? "'" : "");
	if (rc != BERR_PARAM_INVALID || strcmp(err.msg, want) != 0)
		print_error("line %d: policy %s\n  got  (%d) %s\n  want %s\n", line, text, rc,
		            err.msg, want);
	assert_int_equal(rc, BERR_PARAM_INVALID);
	assert_int_equal(err.code, BERR_PARAM_INVALID);
	assert_string_equal(err.msg, want);
	assert_null(p);
	free(text);
	free(d);
}
#define expect_lc_err(policy, detail, quote) expect_lc_err_at(policy, detail, quote, __LINE__)

/* Parses a ' -quoted policy that must be accepted; returns it (caller frees). */
static struct lc_policy *expect_lc_ok_at(const char *policy, int line)
{
	char *text = dq(policy);
	struct berr err;
	struct lc_policy *p = NULL;
	enum berr_code rc;

	err_clear(&err);
	rc = lc_policy_parse(text, strlen(text), &p, &err);
	if (rc != BERR_OK)
		print_error("line %d: policy %s\n  rejected: %s\n", line, text, err.msg);
	assert_int_equal(rc, BERR_OK);
	assert_non_null(p);
	free(text);
	return p;
}
#define expect_lc_ok(policy) expect_lc_ok_at(policy, __LINE__)
#define accept_lc(policy) lc_policy_free(expect_lc_ok(policy))

/* Raw (not '-converted) text must be rejected with some lifecycle message. */
static void expect_lc_rejected_raw(const char *text, size_t len)
{
	struct berr err;
	struct lc_policy *p = NULL;

	err_clear(&err);
	assert_int_equal(lc_policy_parse(text, len, &p, &err), BERR_PARAM_INVALID);
	assert_null(p);
	assert_true(strncmp(err.msg, LC_PREFIX, strlen(LC_PREFIX)) == 0);
	assert_true(strlen(err.msg) < sizeof(err.msg) - 1);
}

/* ---- §4.5.2 table, row by row ------------------------------------------------------------- */

static void test_row_not_json(void **state)
{
	struct berr err;
	struct lc_policy *p = NULL;

	(void)state;
	expect_lc_err("some invalid input", NO_MAP, true);
	expect_lc_err("{'rules':[", NO_MAP, true);
	expect_lc_err("", NO_MAP, true);
	expect_lc_err("[" RULE("1", SEL_OK, ACT_OK) "]", NO_MAP, true); /* moto "not_dict" */
	expect_lc_err("'a string'", NO_MAP, true);
	expect_lc_err("42", NO_MAP, true);
	expect_lc_err("null", NO_MAP, true);
	expect_lc_err(POL(RULE("1", SEL_OK, ACT_OK)) " trailing", NO_MAP, true);
	err_clear(&err);
	assert_int_equal(lc_policy_parse(NULL, 0, &p, &err), BERR_PARAM_INVALID);
	assert_string_equal(err.msg, LC_PREFIX NO_MAP "'");
}

static void test_row_rules_missing(void **state)
{
	(void)state;
	expect_lc_err("{'no_rules':'test'}", "object has missing required properties (['rules'])",
	              true);
	expect_lc_err("{'rules':" RULE("1", SEL_OK, ACT_OK) "}",
	              "object has missing required properties (['rules'])", true);
	expect_lc_err("{'rules':null}", "object has missing required properties (['rules'])", true);
	expect_lc_err("{'rules':'x'}", "object has missing required properties (['rules'])", true);
	expect_lc_err("{}", "object has missing required properties (['rules'])", true);
	/* not in the table: empty rule list (minItems wording) */
	expect_lc_err("{'rules':[]}",
	              "array is too short: must have at least 1 elements but instance has 0 "
	              "elements",
	              true);
}

static void test_row_rule_not_object(void **state)
{
	(void)state;
	expect_lc_err("{'rules':['not_dict']}",
	              "instance type (string) does not match any allowed primitive type "
	              "(allowed: ['object'])",
	              true);
	expect_lc_err("{'rules':[null]}",
	              "instance type (null) does not match any allowed primitive type "
	              "(allowed: ['object'])",
	              true);
	expect_lc_err("{'rules':[5]}",
	              "instance type (integer) does not match any allowed primitive type "
	              "(allowed: ['object'])",
	              true);
	expect_lc_err("{'rules':[1.5]}",
	              "instance type (number) does not match any allowed primitive type "
	              "(allowed: ['object'])",
	              true);
	expect_lc_err("{'rules':[true]}",
	              "instance type (boolean) does not match any allowed primitive type "
	              "(allowed: ['object'])",
	              true);
	expect_lc_err("{'rules':[[]]}",
	              "instance type (array) does not match any allowed primitive type "
	              "(allowed: ['object'])",
	              true);
	/* the type pass covers all rules before any member check */
	expect_lc_err("{'rules':[{'bogus':1}, 7]}",
	              "instance type (integer) does not match any allowed primitive type "
	              "(allowed: ['object'])",
	              true);
}

static void test_row_rule_missing_members(void **state)
{
	(void)state;
	expect_lc_err("{'rules':[{'selection':" SEL_OK ",'action':" ACT_OK "}]}",
	              "object has missing required properties (['rulePriority'])", true);
	expect_lc_err("{'rules':[{'rulePriority':1,'description':'d','action':" ACT_OK "}]}",
	              "object has missing required properties (['selection'])", true);
	expect_lc_err("{'rules':[{'rulePriority':1,'selection':" SEL_OK "}]}",
	              "object has missing required properties (['action'])", true);
	expect_lc_err("{'rules':[{}]}",
	              "object has missing required properties (['action', 'rulePriority', "
	              "'selection'])",
	              true);
	expect_lc_err("{'rules':[{'rulePriority':1}]}",
	              "object has missing required properties (['action', 'selection'])", true);
	/* missing wins over unknown */
	expect_lc_err("{'rules':[{'rulePriority':1,'unknown':2,'selection':" SEL_OK "}]}",
	              "object has missing required properties (['action'])", true);
}

static void test_row_rule_unknown_member(void **state)
{
	(void)state;
	expect_lc_err("{'rules':[{'rulePriority':1,'selection':" SEL_OK ",'action':" ACT_OK
	              ",'unknown':123}]}",
	              "object instance has properties which are not allowed by the schema: "
	              "(['unknown'])",
	              true);
	expect_lc_err("{'rules':[{'zz':0,'rulePriority':1,'selection':" SEL_OK ",'action':" ACT_OK
	              ",'aa':1}]}",
	              "object instance has properties which are not allowed by the schema: "
	              "(['aa', 'zz'])",
	              true);
	/* member names are JSON-escaped */
	expect_lc_err("{'rules':[{'q\\'x':0,'rulePriority':1,'selection':" SEL_OK
	              ",'action':" ACT_OK "}]}",
	              "object instance has properties which are not allowed by the schema: "
	              "(['q\\'x'])",
	              true);
}

static void test_row_action(void **state)
{
	(void)state;
	expect_lc_err(POL_ACT("{}"), "object has missing required properties (['type'])", true);
	expect_lc_err(POL_ACT("{'targetStorageClass':'archive'}"),
	              "object has missing required properties (['type'])", true);
	expect_lc_err(POL_ACT("{'type':'expire','unknown':123}"),
	              "object instance has properties which are not allowed by the schema: "
	              "(['unknown'])",
	              true);
	expect_lc_err(POL_ACT("{'type':'keep'}"),
	              "instance value (keep) not found in enum :(possible values: ['expire', "
	              "'transition'])",
	              true);
	expect_lc_err(POL_ACT("{'type':null}"),
	              "instance value (null) not found in enum :(possible values: ['expire', "
	              "'transition'])",
	              true);
	expect_lc_err(POL_ACT("{'type':5}"),
	              "instance value (5) not found in enum :(possible values: ['expire', "
	              "'transition'])",
	              true);
	expect_lc_err(POL_ACT("{'type':'Expire'}"),
	              "instance value (Expire) not found in enum :(possible values: ['expire', "
	              "'transition'])",
	              true);
	/* unknown wins over a bad type value */
	expect_lc_err(POL_ACT("{'type':'keep','x':1}"),
	              "object instance has properties which are not allowed by the schema: (['x'])",
	              true);
	/* action not an object (not in the table) */
	expect_lc_err(POL_ACT("'expire'"),
	              "instance type (string) does not match any allowed primitive type "
	              "(allowed: ['object'])",
	              true);
	expect_lc_err(POL_ACT("null"),
	              "instance type (null) does not match any allowed primitive type "
	              "(allowed: ['object'])",
	              true);
}

static void test_row_selection_missing(void **state)
{
	(void)state;
	expect_lc_err(POL_SEL("{'countType':'imageCountMoreThan','countNumber':30}"),
	              "object has missing required properties (['tagStatus'])", true);
	expect_lc_err(POL_SEL("{'tagStatus':'untagged','countNumber':30}"),
	              "object has missing required properties (['countType'])", true);
	expect_lc_err(POL_SEL("{'tagStatus':'untagged','countType':'imageCountMoreThan'}"),
	              "object has missing required properties (['countNumber'])", true);
	expect_lc_err(POL_SEL("{}"),
	              "object has missing required properties (['countNumber', 'countType', "
	              "'tagStatus'])",
	              true);
	expect_lc_err(POL_SEL("{'countUnit':'days'}"),
	              "object has missing required properties (['countNumber', 'countType', "
	              "'tagStatus'])",
	              true);
	expect_lc_err(POL_SEL("'x'"),
	              "instance type (string) does not match any allowed primitive type "
	              "(allowed: ['object'])",
	              true);
}

static void test_row_selection_unknown(void **state)
{
	(void)state;
	expect_lc_err(POL_SEL("{'tagStatus':'untagged','countType':'imageCountMoreThan',"
	                      "'countNumber':30,'unknown':123}"),
	              "object instance has properties which are not allowed by the schema: "
	              "(['unknown'])",
	              true);
	/* unknown wins over a bad tagStatus */
	expect_lc_err(POL_SEL("{'tagStatus':'bad','countType':'imageCountMoreThan',"
	                      "'countNumber':30,'tagFilter':[]}"),
	              "object instance has properties which are not allowed by the schema: "
	              "(['tagFilter'])",
	              true);
}

static void test_row_tag_status(void **state)
{
	(void)state;
	expect_lc_err(POL_SEL("{'tagStatus':'unknown','countType':'imageCountMoreThan',"
	                      "'countNumber':30}"),
	              "instance value (unknown) not found in enum :(possible values: ['any', "
	              "'tagged', 'untagged'])",
	              true);
	expect_lc_err(POL_SEL("{'tagStatus':null,'countType':'imageCountMoreThan',"
	                      "'countNumber':30}"),
	              "instance value (null) not found in enum :(possible values: ['any', "
	              "'tagged', 'untagged'])",
	              true);
	/* tagStatus is checked before the oneOf row */
	expect_lc_err(POL_SEL("{'tagStatus':'TAGGED','countType':'bogus','countNumber':0}"),
	              "instance value (TAGGED) not found in enum :(possible values: ['any', "
	              "'tagged', 'untagged'])",
	              true);
}

static void test_row_one_of(void **state)
{
	(void)state;
	/* countType invalid */
	expect_lc_err(POL_SEL("{'tagStatus':'untagged','countType':'unknown','countNumber':30}"),
	              ONE_OF, false);
	expect_lc_err(POL_SEL("{'tagStatus':'untagged','countType':7,'countNumber':30}"), ONE_OF,
	              false);
	/* countUnit/countType combination */
	expect_lc_err(POL_SEL("{'tagStatus':'untagged','countType':'imageCountMoreThan',"
	                      "'countUnit':'days','countNumber':30}"),
	              ONE_OF, false);
	expect_lc_err(POL_SEL("{'tagStatus':'untagged','countType':'sinceImagePushed',"
	                      "'countNumber':30}"),
	              ONE_OF, false);
	/* the oneOf row precedes the countUnit enum row */
	expect_lc_err(POL_SEL("{'tagStatus':'untagged','countType':'imageCountMoreThan',"
	                      "'countUnit':'hours','countNumber':30}"),
	              ONE_OF, false);
	/* null members (observed for countUnit:null, targetStorageClass:null) */
	expect_lc_err(POL_SEL("{'tagStatus':'untagged','countType':'sinceImagePushed',"
	                      "'countUnit':null,'countNumber':30}"),
	              ONE_OF, false);
	expect_lc_err(POL_SEL("{'tagStatus':'untagged','countType':'imageCountMoreThan',"
	                      "'countNumber':null}"),
	              ONE_OF, false);
	expect_lc_err(POL_SEL("{'tagStatus':'untagged','countType':'imageCountMoreThan',"
	                      "'countNumber':1,'storageClass':null}"),
	              ONE_OF, false);
	expect_lc_err(POL_SEL("{'tagStatus':'tagged','tagPrefixList':null,"
	                      "'countType':'imageCountMoreThan','countNumber':1}"),
	              ONE_OF, false);
	expect_lc_err(POL_SEL("{'tagStatus':'any','countType':null,'countNumber':1}"), ONE_OF,
	              false);
	/* action: targetStorageClass required iff transition */
	expect_lc_err(POL_ACT("{'type':'transition','targetStorageClass':null}"), ONE_OF, false);
	expect_lc_err(POL_ACT("{'type':'transition'}"), ONE_OF, false);
	expect_lc_err(POL_ACT("{'type':'expire','targetStorageClass':'archive'}"), ONE_OF, false);
}

static void test_row_count_unit(void **state)
{
	(void)state;
	expect_lc_err(POL_SEL("{'tagStatus':'untagged','countType':'sinceImagePushed',"
	                      "'countUnit':'unknown','countNumber':30}"),
	              "instance value (unknown) not found in enum :(possible values: ['days'])",
	              true);
	expect_lc_err(POL_SEL("{'tagStatus':'untagged','countType':'sinceImagePushed',"
	                      "'countUnit':'Days','countNumber':0}"),
	              "instance value (Days) not found in enum :(possible values: ['days'])", true);
	expect_lc_err(POL_SEL("{'tagStatus':'untagged','countType':'sinceImagePushed',"
	                      "'countUnit':1,'countNumber':30}"),
	              "instance value (1) not found in enum :(possible values: ['days'])", true);
}

static void test_row_count_number(void **state)
{
	(void)state;
	expect_lc_err(POL_SEL("{'tagStatus':'untagged','countType':'imageCountMoreThan',"
	                      "'countNumber':0}"),
	              "numeric instance is lower than the required minimum (minimum: 1, found: 0)",
	              false);
	expect_lc_err(POL_SEL("{'tagStatus':'untagged','countType':'imageCountMoreThan',"
	                      "'countNumber':-1}"),
	              "numeric instance is lower than the required minimum (minimum: 1, found: -1)",
	              false);
	expect_lc_err(POL_SEL("{'tagStatus':'untagged','countType':'sinceImagePushed',"
	                      "'countUnit':'days','countNumber':-9223372036854775808}"),
	              "numeric instance is lower than the required minimum (minimum: 1, "
	              "found: -9223372036854775808)",
	              false);
	/* wrong types (not in the table) */
	expect_lc_err(POL_SEL("{'tagStatus':'untagged','countType':'imageCountMoreThan',"
	                      "'countNumber':'5'}"),
	              "instance type (string) does not match any allowed primitive type "
	              "(allowed: ['integer'])",
	              true);
	expect_lc_err(POL_SEL("{'tagStatus':'untagged','countType':'imageCountMoreThan',"
	                      "'countNumber':2.5}"),
	              "instance type (number) does not match any allowed primitive type "
	              "(allowed: ['integer'])",
	              true);
	expect_lc_err(POL_SEL("{'tagStatus':'untagged','countType':'imageCountMoreThan',"
	                      "'countNumber':true}"),
	              "instance type (boolean) does not match any allowed primitive type "
	              "(allowed: ['integer'])",
	              true);
}

/* Members the table does not list get the validator's type/enum wording. */
static void test_unlisted_members(void **state)
{
	(void)state;
	expect_lc_err(POL(RULE("'1'", SEL_OK, ACT_OK)),
	              "instance type (string) does not match any allowed primitive type "
	              "(allowed: ['integer'])",
	              true);
	expect_lc_err(POL(RULE("1.0", SEL_OK, ACT_OK)),
	              "instance type (number) does not match any allowed primitive type "
	              "(allowed: ['integer'])",
	              true);
	expect_lc_err(POL(RULE("null", SEL_OK, ACT_OK)),
	              "instance type (null) does not match any allowed primitive type "
	              "(allowed: ['integer'])",
	              true);
	expect_lc_err(POL(RULE("0", SEL_OK, ACT_OK)),
	              "numeric instance is lower than the required minimum (minimum: 1, found: 0)",
	              false);
	expect_lc_err(POL(RULE("-3", SEL_OK, ACT_OK)),
	              "numeric instance is lower than the required minimum (minimum: 1, found: -3)",
	              false);
	/* above the service's 32-bit model: a mapping failure */
	expect_lc_err(POL(RULE("2147483648", SEL_OK, ACT_OK)), NO_MAP, true);
	accept_lc(POL(RULE("2147483647", SEL_OK, ACT_OK)));
	expect_lc_err("{'rules':[{'rulePriority':1,'description':5,'selection':" SEL_OK
	              ",'action':" ACT_OK "}]}",
	              "instance type (integer) does not match any allowed primitive type "
	              "(allowed: ['string'])",
	              true);
	expect_lc_err("{'rules':[{'rulePriority':1,'description':null,'selection':" SEL_OK
	              ",'action':" ACT_OK "}]}",
	              "instance type (null) does not match any allowed primitive type "
	              "(allowed: ['string'])",
	              true);
	expect_lc_err(POL_SEL("{'tagStatus':'untagged','countType':'imageCountMoreThan',"
	                      "'countNumber':1,'storageClass':'glacier'}"),
	              "instance value (glacier) not found in enum :(possible values: ['archive', "
	              "'standard'])",
	              true);
	expect_lc_err(POL_ACT("{'type':'transition','targetStorageClass':'standard'}"),
	              "instance value (standard) not found in enum :(possible values: "
	              "['archive'])",
	              true);
	expect_lc_err(POL_SEL("{'tagStatus':'tagged','tagPrefixList':'v','countType':"
	                      "'imageCountMoreThan','countNumber':1}"),
	              "instance type (string) does not match any allowed primitive type "
	              "(allowed: ['array'])",
	              true);
	expect_lc_err(POL_SEL("{'tagStatus':'tagged','tagPatternList':['v*', 3],'countType':"
	                      "'imageCountMoreThan','countNumber':1}"),
	              "instance type (integer) does not match any allowed primitive type "
	              "(allowed: ['string'])",
	              true);
}

/* First failure wins: table order inside a rule, and rules in document order. */
static void test_check_order(void **state)
{
	(void)state;
	/* action (checked first) vs selection */
	expect_lc_err(POL(RULE("1", "{'tagStatus':'bad','countType':'x','countNumber':0}",
	                       "{'type':'keep'}")),
	              "instance value (keep) not found in enum :(possible values: ['expire', "
	              "'transition'])",
	              true);
	/* rulePriority (after action, before selection) */
	expect_lc_err(POL(RULE("0", "{'tagStatus':'bad','countType':'x','countNumber':0}", ACT_OK)),
	              "numeric instance is lower than the required minimum (minimum: 1, found: 0)",
	              false);
	/* countUnit enum before countNumber */
	expect_lc_err(POL_SEL("{'tagStatus':'any','countType':'sinceImagePulled',"
	                      "'countUnit':'weeks','countNumber':0}"),
	              "instance value (weeks) not found in enum :(possible values: ['days'])",
	              true);
	/* the first rule's late-row error wins over the second rule's early-row error */
	expect_lc_err(POL(RULE("1",
	                       "{'tagStatus':'untagged','countType':'imageCountMoreThan',"
	                       "'countNumber':0}",
	                       ACT_OK) ","
	                               "{'rulePriority':2}"),
	              "numeric instance is lower than the required minimum (minimum: 1, found: 0)",
	              false);
	/* schema errors win over semantic ones */
	expect_lc_err(POL(RULE("1", SEL_OK, ACT_OK) "," RULE("1", SEL_OK, "{'type':'x'}")),
	              "instance value (x) not found in enum :(possible values: ['expire', "
	              "'transition'])",
	              true);
	/* semantic checks run in list order: duplicate priority before combination */
	expect_lc_err(POL(RULE("1", SEL_OK, ACT_OK) "," RULE(
	                  "1",
	                  "{'tagStatus':'untagged','countType':'sinceImagePulled',"
	                  "'countUnit':'days','countNumber':3}",
	                  ACT_OK)),
	              "Rules must have unique rulePriority values", true);
}

/* ---- semantic checks ---------------------------------------------------------------------- */

#define TAGGED_PRE(list)                                                                           \
	"{'tagStatus':'tagged','tagPrefixList':" list ","                                          \
	"'countType':'imageCountMoreThan','countNumber':1}"
#define TAGGED_PAT(list)                                                                           \
	"{'tagStatus':'tagged','tagPatternList':" list ","                                         \
	"'countType':'imageCountMoreThan','countNumber':1}"
#define ANY_KEEP "{'tagStatus':'any','countType':'imageCountMoreThan','countNumber':5}"
#define LISTS_MSG                                                                                  \
	"tagPrefixList or tagPatternList must be specified only when tagStatus is tagged, and "    \
	"not both"
#define COMBO_MSG "Invalid combination of countType, storageClass and action"

static void test_sem_unique_priority(void **state)
{
	(void)state;
	expect_lc_err(POL(RULE("3", SEL_OK, ACT_OK) "," RULE("3", TAGGED_PRE("['a']"), ACT_OK)),
	              "Rules must have unique rulePriority values", true);
}

static void test_sem_any_last(void **state)
{
	(void)state;
	expect_lc_err(POL(RULE("1", ANY_KEEP, ACT_OK) "," RULE("2", SEL_OK, ACT_OK)),
	              "A rule with tagStatus `any` must have the highest rulePriority", true);
	expect_lc_err(POL(RULE("2", ANY_KEEP, ACT_OK) "," RULE("5", ANY_KEEP, ACT_OK)),
	              "A rule with tagStatus `any` must have the highest rulePriority", true);
	/* document order does not matter, priority does */
	accept_lc(POL(RULE("9", ANY_KEEP, ACT_OK) "," RULE("2", SEL_OK, ACT_OK)));
}

static void test_sem_lists(void **state)
{
	(void)state;
	expect_lc_err(POL_SEL("{'tagStatus':'tagged','countType':'imageCountMoreThan',"
	                      "'countNumber':1}"),
	              LISTS_MSG, true);
	expect_lc_err(POL_SEL(TAGGED_PRE("[]")), LISTS_MSG, true);
	expect_lc_err(POL_SEL(TAGGED_PAT("[]")), LISTS_MSG, true);
	expect_lc_err(POL_SEL("{'tagStatus':'tagged','tagPrefixList':['a'],'tagPatternList':['b*'],"
	                      "'countType':'imageCountMoreThan','countNumber':1}"),
	              LISTS_MSG, true);
	expect_lc_err(POL_SEL("{'tagStatus':'untagged','tagPrefixList':['a'],"
	                      "'countType':'imageCountMoreThan','countNumber':1}"),
	              LISTS_MSG, true);
	expect_lc_err(POL_SEL("{'tagStatus':'any','tagPatternList':['a*'],"
	                      "'countType':'imageCountMoreThan','countNumber':1}"),
	              LISTS_MSG, true);
	expect_lc_err(POL_SEL("{'tagStatus':'untagged','tagPrefixList':[],"
	                      "'countType':'imageCountMoreThan','countNumber':1}"),
	              LISTS_MSG, true);
	/* moto's test_put_lifecycle_policy variant: untagged with both lists + countUnit on
	 * imageCountMoreThan; AWS semantics reject it (schema first: the countUnit oneOf). */
	expect_lc_err(POL_SEL("{'tagStatus':'untagged','tagPatternList':['a*'],'tagPrefixList':"
	                      "['a'],'countType':'imageCountMoreThan','countUnit':'days',"
	                      "'countNumber':1}"),
	              ONE_OF, false);
	accept_lc(POL_SEL(TAGGED_PRE("['a', 'b']")));
	accept_lc(POL_SEL(TAGGED_PAT("['a*']")));
}

static void test_sem_wildcards(void **state)
{
	(void)state;
	expect_lc_err(POL_SEL(TAGGED_PAT("['ok*', '*a*b*c*d*']")),
	              "tagPatternList patterns may contain at most 4 wildcards", true);
	accept_lc(POL_SEL(TAGGED_PAT("['*a*b*c*d']")));
	accept_lc(POL_SEL(TAGGED_PAT("['****']")));
	/* prefixes are literal: no wildcard limit */
	accept_lc(POL_SEL(TAGGED_PRE("['*****']")));
}

static void test_sem_untagged_and_prefixes(void **state)
{
	(void)state;
	expect_lc_err(POL(RULE("1", SEL_OK, ACT_OK) "," RULE(
	                  "2",
	                  "{'tagStatus':'untagged','countType':'sinceImagePushed',"
	                  "'countUnit':'days','countNumber':3}",
	                  ACT_OK)),
	              "Only one rule per storage class may select untagged images", true);
	/* one untagged rule per class: standard + archive is fine */
	accept_lc(POL(RULE("1", SEL_OK, ACT_OK) "," RULE(
	    "2",
	    "{'tagStatus':'untagged','storageClass':'archive','countType':"
	    "'sinceImageTransitioned','countUnit':'days','countNumber':100}",
	    ACT_OK)));
	expect_lc_err(POL(RULE("1", TAGGED_PRE("['a', 'rel']"),
	                       ACT_OK) "," RULE("2", TAGGED_PRE("['b', 'rel']"), ACT_OK)),
	              "Tag prefixes must be unique across rules", true);
	/* same prefix in different storage classes is allowed */
	accept_lc(POL(RULE("1", TAGGED_PRE("['rel']"), ACT_OK) "," RULE(
	    "2",
	    "{'tagStatus':'tagged','tagPrefixList':['rel'],'storageClass':'archive',"
	    "'countType':'sinceImageTransitioned','countUnit':'days','countNumber':90}",
	    ACT_OK)));
	/* patterns are not prefixes */
	accept_lc(POL(RULE("1", TAGGED_PAT("['rel*']"),
	                   ACT_OK) "," RULE("2", TAGGED_PAT("['rel*']"), ACT_OK)));
}

#define SEL_CT(ct, sc)                                                                             \
	"{'tagStatus':'any','countType':'" ct "','countUnit':'days','countNumber':100"             \
	",'storageClass':'" sc "'}"
#define ACT_TRANS "{'type':'transition','targetStorageClass':'archive'}"

static void test_sem_combinations(void **state)
{
	(void)state;
	/* sinceImagePulled only with transition */
	expect_lc_err(POL(RULE("1", SEL_CT("sinceImagePulled", "standard"), ACT_OK)), COMBO_MSG,
	              true);
	accept_lc(POL(RULE("1", SEL_CT("sinceImagePulled", "standard"), ACT_TRANS)));
	/* sinceImageTransitioned only with expire + archive */
	expect_lc_err(POL(RULE("1", SEL_CT("sinceImageTransitioned", "standard"), ACT_OK)),
	              COMBO_MSG, true);
	expect_lc_err(POL(RULE("1", SEL_CT("sinceImageTransitioned", "archive"), ACT_TRANS)),
	              COMBO_MSG, true);
	accept_lc(POL(RULE("1", SEL_CT("sinceImageTransitioned", "archive"), ACT_OK)));
	/* [unconfirmed 90-day minimum] not enforced at validation */
	accept_lc(POL(RULE("1",
	                   "{'tagStatus':'any','storageClass':'archive','countType':"
	                   "'sinceImageTransitioned','countUnit':'days','countNumber':1}",
	                   ACT_OK)));
	/* imageCountMoreThan / sinceImagePushed / sinceImagePulled only with standard */
	expect_lc_err(POL(RULE("1", SEL_CT("sinceImagePushed", "archive"), ACT_OK)), COMBO_MSG,
	              true);
	expect_lc_err(POL(RULE("1", SEL_CT("sinceImagePulled", "archive"), ACT_TRANS)), COMBO_MSG,
	              true);
	expect_lc_err(POL(RULE("1",
	                       "{'tagStatus':'any','countType':'imageCountMoreThan',"
	                       "'countNumber':1,'storageClass':'archive'}",
	                       ACT_OK)),
	              COMBO_MSG, true);
	accept_lc(POL(RULE("1", SEL_CT("sinceImagePushed", "standard"), ACT_TRANS)));
	accept_lc(POL(RULE("1",
	                   "{'tagStatus':'any','countType':'imageCountMoreThan',"
	                   "'countNumber':3}",
	                   ACT_TRANS)));
}

/* n rules with priorities 1..n, each untagged-free and prefix-unique. */
static char *make_rules(size_t n)
{
	struct buf b;
	char *s;

	buf_init(&b, 0);
	buf_puts(&b, "{\"rules\":[", NULL);
	for (size_t i = 1; i <= n; i++)
		buf_printf(&b, NULL,
		           "%s{\"rulePriority\":%zu,\"selection\":{\"tagStatus\":\"tagged\","
		           "\"tagPrefixList\":[\"p%zu-\"],\"countType\":\"imageCountMoreThan\","
		           "\"countNumber\":%zu},\"action\":{\"type\":\"expire\"}}",
		           i > 1 ? "," : "", n + 1 - i, i, i);
	buf_puts(&b, "]}", NULL);
	s = buf_steal(&b, NULL);
	buf_free(&b);
	return s;
}

static void test_sem_rule_count(void **state)
{
	char *text;
	struct lc_policy *p = NULL;
	struct berr err;

	(void)state;
	text = make_rules(LC_MAX_RULES);
	err_clear(&err);
	assert_int_equal(lc_policy_parse(text, strlen(text), &p, &err), BERR_OK);
	assert_int_equal(p->nrules, LC_MAX_RULES);
	for (size_t i = 0; i < p->nrules; i++)
		assert_int_equal(p->rules[i].priority, (int)i + 1);
	lc_policy_free(p);
	free(text);

	text = make_rules(LC_MAX_RULES + 1);
	p = NULL;
	assert_int_equal(lc_policy_parse(text, strlen(text), &p, &err), BERR_PARAM_INVALID);
	assert_string_equal(err.msg, LC_PREFIX "A lifecycle policy may contain at most 50 rules'");
	assert_null(p);
	free(text);
}

/* ---- accepted policies and parsed fields -------------------------------------------------- */

static void test_moto_validate_policy(void **state)
{
	struct lc_policy *p;

	(void)state;
	p = expect_lc_ok(POL(
	    RULE("1", SEL_OK, ACT_OK) ","
	                              "{'rulePriority':2,'description':'test policy','selection':{"
	                              "'tagStatus':'tagged','tagPrefixList':['3.9'],'countType':"
	                              "'sinceImagePushed','countUnit':'days','countNumber':30},"
	                              "'action':{'type':'expire'}}"));
	assert_int_equal(p->nrules, 2);
	assert_string_equal(p->rules[1].description, "test policy");
	assert_null(p->rules[0].description);
	lc_policy_free(p);
}

static void test_seed_policy(void **state)
{
	static const char seed[] =
	    "{'rules':["
	    "{'rulePriority':1,'description':'keep the last 20 tagged images',"
	    "'selection':{'tagStatus':'tagged','tagPatternList':['*'],"
	    "'countType':'imageCountMoreThan','countNumber':20},'action':{'type':'expire'}},"
	    "{'rulePriority':2,'description':'expire untagged after 7 days',"
	    "'selection':{'tagStatus':'untagged','countType':'sinceImagePushed',"
	    "'countUnit':'days','countNumber':7},'action':{'type':'expire'}}]}";
	struct lc_policy *p;
	const struct lc_rule *r;

	(void)state;
	p = expect_lc_ok(seed);
	assert_int_equal(p->nrules, 2);
	r = &p->rules[0];
	assert_int_equal(r->priority, 1);
	assert_string_equal(r->description, "keep the last 20 tagged images");
	assert_int_equal(r->tag_status, LC_TAGGED);
	assert_int_equal(r->npatterns, 1);
	assert_string_equal(r->tag_patterns[0], "*");
	assert_null(r->tag_patterns[1]);
	assert_null(r->tag_prefixes);
	assert_int_equal(r->nprefixes, 0);
	assert_int_equal(r->storage_class, LC_STANDARD);
	assert_int_equal(r->count_type, LC_IMAGE_COUNT_MORE_THAN);
	assert_int_equal(r->count_number, 20);
	assert_int_equal(r->action, LC_EXPIRE);
	r = &p->rules[1];
	assert_int_equal(r->priority, 2);
	assert_int_equal(r->tag_status, LC_UNTAGGED);
	assert_null(r->tag_patterns);
	assert_null(r->tag_prefixes);
	assert_int_equal(r->count_type, LC_SINCE_IMAGE_PUSHED);
	assert_int_equal(r->count_number, 7);
	assert_int_equal(r->action, LC_EXPIRE);
	lc_policy_free(p);
}

#define LIVE_KEEP1 TAGGED_PAT("['live*']")
#define RC_KEEP1 TAGGED_PAT("['rc*']")

static void test_worked_examples(void **state)
{
	struct lc_policy *p;

	(void)state;
	/* Example 1 and its swap */
	accept_lc(POL(RULE("1", LIVE_KEEP1, ACT_OK) "," RULE("2", RC_KEEP1, ACT_OK)));
	accept_lc(POL(RULE("1", RC_KEEP1, ACT_OK) "," RULE("2", LIVE_KEEP1, ACT_OK)));
	/* Example 2 */
	accept_lc(POL(RULE("1", TAGGED_PAT("['a*']"), ACT_OK) "," RULE(
	    "2",
	    "{'tagStatus':'untagged','countType':'sinceImagePushed','countUnit':'days',"
	    "'countNumber':1}",
	    ACT_OK) "," RULE("3",
	                     "{'tagStatus':'any','countType':'imageCountMoreThan',"
	                     "'countNumber':1}",
	                     ACT_OK)));
	/* Example 3, both variants */
	p = expect_lc_ok(POL(RULE("1",
	                          "{'tagStatus':'tagged','tagPrefixList':['x','y'],"
	                          "'countType':'sinceImagePushed','countUnit':'days',"
	                          "'countNumber':5}",
	                          ACT_OK)));
	assert_int_equal(p->rules[0].nprefixes, 2);
	assert_string_equal(p->rules[0].tag_prefixes[0], "x");
	assert_string_equal(p->rules[0].tag_prefixes[1], "y");
	assert_null(p->rules[0].tag_prefixes[2]);
	lc_policy_free(p);
	accept_lc(POL(RULE("1", TAGGED_PRE("['x','y']"), ACT_OK)));
	/* Example 4 */
	p = expect_lc_ok(POL(RULE(
	    "1",
	    "{'tagStatus':'any','countType':'sinceImagePulled','countUnit':'days',"
	    "'countNumber':90}",
	    ACT_TRANS) "," RULE("2",
	                        "{'tagStatus':'any','storageClass':'archive','countType':"
	                        "'sinceImageTransitioned','countUnit':'days','countNumber':100}",
	                        ACT_OK)));
	assert_int_equal(p->nrules, 2);
	assert_int_equal(p->rules[0].tag_status, LC_ANY);
	assert_int_equal(p->rules[0].storage_class, LC_STANDARD);
	assert_int_equal(p->rules[0].count_type, LC_SINCE_IMAGE_PULLED);
	assert_int_equal(p->rules[0].count_number, 90);
	assert_int_equal(p->rules[0].action, LC_TRANSITION);
	assert_int_equal(p->rules[1].storage_class, LC_ARCHIVE);
	assert_int_equal(p->rules[1].count_type, LC_SINCE_IMAGE_TRANSITIONED);
	assert_int_equal(p->rules[1].count_number, 100);
	assert_int_equal(p->rules[1].action, LC_EXPIRE);
	lc_policy_free(p);
}

static void test_sorted_and_out_null(void **state)
{
	struct lc_policy *p;
	char *text;
	struct berr err;

	(void)state;
	p = expect_lc_ok(
	    POL(RULE("30", ANY_KEEP, ACT_OK) "," RULE("7", TAGGED_PRE("['b']"), ACT_OK) "," RULE(
	        "12", SEL_OK, ACT_OK) "," RULE("1", TAGGED_PRE("['a']"), ACT_OK)));
	assert_int_equal(p->nrules, 4);
	assert_int_equal(p->rules[0].priority, 1);
	assert_string_equal(p->rules[0].tag_prefixes[0], "a");
	assert_int_equal(p->rules[1].priority, 7);
	assert_string_equal(p->rules[1].tag_prefixes[0], "b");
	assert_int_equal(p->rules[2].priority, 12);
	assert_int_equal(p->rules[2].tag_status, LC_UNTAGGED);
	assert_int_equal(p->rules[3].priority, 30);
	assert_int_equal(p->rules[3].tag_status, LC_ANY);
	lc_policy_free(p);
	lc_policy_free(NULL);

	/* out == NULL: validation only */
	text = dq(POL(RULE("1", SEL_OK, ACT_OK)));
	err_clear(&err);
	assert_int_equal(lc_policy_parse(text, strlen(text), NULL, &err), BERR_OK);
	free(text);
	/* err == NULL is allowed */
	assert_int_equal(lc_policy_parse("x", 1, NULL, NULL), BERR_PARAM_INVALID);
	/* extra top-level members are ignored; duplicate keys: last wins */
	p = expect_lc_ok("{'x':1,'rules':[" RULE("1", SEL_OK, ACT_OK) "]}");
	lc_policy_free(p);
	p = expect_lc_ok("{'rules':[{'rulePriority':9,'rulePriority':4,'selection':" SEL_OK
	                 ",'action':" ACT_OK "}]}");
	assert_int_equal(p->rules[0].priority, 4);
	lc_policy_free(p);
	/* the text need not be NUL-terminated: len bounds it */
	text = dq(POL(RULE("1", SEL_OK, ACT_OK)) "garbage");
	assert_int_equal(lc_policy_parse(text, strlen(text) - strlen("garbage"), NULL, &err),
	                 BERR_OK);
	free(text);
	/* huge but in-range countNumber is kept as is */
	p = expect_lc_ok(POL_SEL("{'tagStatus':'untagged','countType':'imageCountMoreThan',"
	                         "'countNumber':9223372036854775807}"));
	assert_true(p->rules[0].count_number == LLONG_MAX);
	lc_policy_free(p);
}

/* ---- hostile input ------------------------------------------------------------------------ */

static void test_hostile_nesting(void **state)
{
	size_t depth = 100000;
	char *s = xmalloc(2 * depth + 64), *q;

	(void)state;
	/* beyond the parser's depth limit */
	memset(s, '[', depth);
	memset(s + depth, ']', depth);
	expect_lc_rejected_raw(s, 2 * depth);
	/* deep but parseable value in a member: a type error, not a crash */
	q = s + sprintf(s, "{\"rules\":[{\"rulePriority\":1,\"description\":");
	memset(q, '[', 1000);
	memset(q + 1000, ']', 1000);
	strcpy(q + 2000, "}]}");
	expect_lc_rejected_raw(s, strlen(s));
	free(s);
	s = xmalloc(2100);
	q = s + sprintf(s, "{'rules':[");
	memset(q, '[', 1000);
	memset(q + 1000, ']', 1000);
	strcpy(q + 2000, "]}");
	expect_lc_err(s,
	              "instance type (array) does not match any allowed primitive type "
	              "(allowed: ['object'])",
	              true);
	free(s);
}

static void test_hostile_numbers(void **state)
{
	(void)state;
	expect_lc_err(POL_SEL("{'tagStatus':'untagged','countType':'imageCountMoreThan',"
	                      "'countNumber':1e400}"),
	              NO_MAP, true);
	expect_lc_err(POL_SEL("{'tagStatus':'untagged','countType':'imageCountMoreThan',"
	                      "'countNumber':99999999999999999999999999}"),
	              NO_MAP, true);
	expect_lc_err(POL(RULE("-99999999999999999999999", SEL_OK, ACT_OK)), NO_MAP, true);
	expect_lc_err(POL(RULE("9223372036854775807", SEL_OK, ACT_OK)), NO_MAP, true);
	expect_lc_err(POL_SEL("{'tagStatus':'untagged','countType':'imageCountMoreThan',"
	                      "'countNumber':1e3}"),
	              "instance type (number) does not match any allowed primitive type "
	              "(allowed: ['integer'])",
	              true);
	expect_lc_err(POL_SEL("{'tagStatus':'untagged','countType':'imageCountMoreThan',"
	                      "'countNumber':NaN}"),
	              NO_MAP, true);
}

/* Replaces every member of a valid rule, one at a time, by each hostile value. */
static void test_hostile_wrong_types(void **state)
{
	static const char *const values[] = {
	    "null",
	    "true",
	    "0",
	    "-1",
	    "1.5",
	    "'s'",
	    "''",
	    "[]",
	    "{}",
	    "[null]",
	    "{'a':null}",
	    "'\\u00e9\\ud83d\\ude00'",
	    "9223372036854775807",
	    "-9223372036854775808",
	};
	static const char *const templ[] = {
	    "{'rules':[{'rulePriority':%s,'selection':" SEL_OK ",'action':" ACT_OK "}]}",
	    "{'rules':[{'rulePriority':1,'description':%s,'selection':" SEL_OK ",'action':" ACT_OK
	    "}]}",
	    "{'rules':[{'rulePriority':1,'selection':%s,'action':" ACT_OK "}]}",
	    "{'rules':[{'rulePriority':1,'selection':" SEL_OK ",'action':%s}]}",
	    "{'rules':[%s]}",
	    "{'rules':%s}",
	    POL_ACT("{'type':%s}"),
	    POL_ACT("{'type':'transition','targetStorageClass':%s}"),
	    POL_SEL("{'tagStatus':%s,'countType':'imageCountMoreThan','countNumber':1}"),
	    POL_SEL("{'tagStatus':'untagged','countType':%s,'countNumber':1}"),
	    POL_SEL("{'tagStatus':'untagged','countType':'sinceImagePushed','countUnit':%s,"
	            "'countNumber':1}"),
	    POL_SEL("{'tagStatus':'untagged','countType':'imageCountMoreThan',"
	            "'countNumber':%s}"),
	    POL_SEL("{'tagStatus':'untagged','countType':'imageCountMoreThan','countNumber':1,"
	            "'storageClass':%s}"),
	    POL_SEL("{'tagStatus':'tagged','countType':'imageCountMoreThan','countNumber':1,"
	            "'tagPrefixList':%s}"),
	    POL_SEL("{'tagStatus':'tagged','countType':'imageCountMoreThan','countNumber':1,"
	            "'tagPatternList':[%s]}"),
	};
	char buf[2048];
	size_t accepted = 0;

	(void)state;
	for (size_t t = 0; t < ARRAY_LEN(templ); t++)
		for (size_t v = 0; v < ARRAY_LEN(values); v++) {
			char *text;
			struct lc_policy *p = NULL;
			struct berr err;
			enum berr_code rc;

			snprintf(buf, sizeof(buf), templ[t], values[v]);
			text = dq(buf);
			err_clear(&err);
			rc = lc_policy_parse(text, strlen(text), &p, &err);
			if (rc == BERR_OK) {
				accepted++;
				assert_non_null(p);
				lc_policy_free(p);
			} else {
				assert_int_equal(rc, BERR_PARAM_INVALID);
				assert_null(p);
				assert_true(strncmp(err.msg, LC_PREFIX, strlen(LC_PREFIX)) == 0);
			}
			free(text);
		}
	/* the only valid substitutions: description and a tagPatternList element 's', '' or
	 * unicode, and countNumber 9223372036854775807 (rulePriority that large is not) */
	assert_int_equal(accepted, 7);
}

static void test_hostile_long_values(void **state)
{
	size_t n = 5000;
	struct buf b;
	char *s;
	struct berr err;
	size_t len;

	(void)state;
	/* a 5000-byte enum value: clipped, and the message still ends with the closing quote */
	buf_init(&b, 0);
	buf_puts(&b, "{\"rules\":[{\"rulePriority\":1,\"action\":{\"type\":\"", NULL);
	for (size_t i = 0; i < n; i++)
		buf_puts(&b, "\xc3\xa9", NULL); /* multi-byte: clip on a UTF-8 boundary */
	buf_puts(&b, "\"},\"selection\":{}}]}", NULL);
	err_clear(&err);
	assert_int_equal(lc_policy_parse(b.p, b.len, NULL, &err), BERR_PARAM_INVALID);
	len = strlen(err.msg);
	assert_true(len < sizeof(err.msg) - 1);
	assert_true(strstr(err.msg, "...) not found in enum :(possible values: [\"expire\", "
	                            "\"transition\"])'") != NULL);
	assert_true(strstr(err.msg, "\xc3\xa9\xc3\xa9...") != NULL);
	buf_free(&b);

	/* 5000 unknown members: clipped list, closing quote kept */
	buf_init(&b, 0);
	buf_puts(&b, "{\"rules\":[{\"rulePriority\":1,\"action\":{},\"selection\":{}", NULL);
	for (size_t i = 0; i < n; i++)
		buf_printf(&b, NULL, ",\"k%05zu\":0", i);
	buf_puts(&b, "}]}", NULL);
	assert_int_equal(lc_policy_parse(b.p, b.len, NULL, &err), BERR_PARAM_INVALID);
	assert_true(strstr(err.msg, "not allowed by the schema: ([\"k00000\", \"k00001\"") != NULL);
	assert_true(err.msg[strlen(err.msg) - 1] == '\'');
	buf_free(&b);

	/* long but valid strings are kept whole */
	buf_init(&b, 0);
	buf_puts(&b, "{\"rules\":[{\"rulePriority\":1,\"description\":\"", NULL);
	for (size_t i = 0; i < n; i++)
		buf_puts(&b, "d", NULL);
	buf_puts(&b,
	         "\",\"action\":{\"type\":\"expire\"},\"selection\":{\"tagStatus\":\"any\","
	         "\"countType\":\"imageCountMoreThan\",\"countNumber\":1}}]}",
	         NULL);
	{
		struct lc_policy *p = NULL;

		assert_int_equal(lc_policy_parse(b.p, b.len, &p, &err), BERR_OK);
		assert_int_equal(strlen(p->rules[0].description), n);
		lc_policy_free(p);
	}
	s = buf_steal(&b, NULL);
	free(s);
	buf_free(&b);
}

static void test_hostile_bytes(void **state)
{
	static const char nul[] = "{\"rules\":[{\"rulePriority\":1,\"action\":{\"type\":"
	                          "\"expire\"},\"selection\":{\"tagStatus\":\"any\","
	                          "\"countType\":\"imageCountMoreThan\",\"countNumber\":1}}]}\0";
	static const char esc_nul[] =
	    "{\"rules\":[{\"rulePriority\":1,\"description\":\"a\\u0000b\"}]}";
	static const char bad_utf8[] =
	    "{\"rules\":[{\"rulePriority\":1,\"description\":\"\xff\"}]}";

	(void)state;
	expect_lc_rejected_raw(nul, sizeof(nul) - 1);
	expect_lc_rejected_raw(esc_nul, strlen(esc_nul));
	expect_lc_rejected_raw(bad_utf8, strlen(bad_utf8));
	expect_lc_rejected_raw("\xef\xbb\xbf{}", 5);
	expect_lc_rejected_raw("{", 1);
	expect_lc_rejected_raw("", 0);
}

/* ---- IAM policies ------------------------------------------------------------------------- */

static void expect_iam_at(bool registry, const char *policy, bool ok, int line)
{
	char *text = dq(policy);
	struct berr err;
	enum berr_code rc;

	err_clear(&err);
	rc = registry ? iam_registry_policy_validate(text, strlen(text), &err)
	              : iam_repo_policy_validate(text, strlen(text), &err);
	if ((rc == BERR_OK) != ok)
		print_error("line %d: %s policy %s: got %s\n", line,
		            registry ? "registry" : "repository", text, err.msg);
	if (ok) {
		assert_int_equal(rc, BERR_OK);
	} else {
		assert_int_equal(rc, BERR_PARAM_INVALID);
		assert_string_equal(err.msg, registry ? REG_MSG : REPO_MSG);
	}
	free(text);
}
#define repo_ok(p) expect_iam_at(false, p, true, __LINE__)
#define repo_bad(p) expect_iam_at(false, p, false, __LINE__)
#define reg_ok(p) expect_iam_at(true, p, true, __LINE__)
#define reg_bad(p) expect_iam_at(true, p, false, __LINE__)

#define PRINC "'Principal':{'AWS':'arn:aws:iam::123456789012:root'}"
#define STMT(body) "{'Version':'2012-10-17','Statement':[{" body "}]}"

static void test_repo_policy_accept(void **state)
{
	(void)state;
	/* moto's test policy */
	repo_ok("{'Version':'2012-10-17','Statement':[{'Sid':'root','Effect':'Allow',"
	        "'Principal':{'AWS':'arn:aws:iam::123456789012:root'},"
	        "'Action':['ecr:DescribeImages']}]}");
	repo_ok("{'Version':'2008-10-17','Statement':[{'Effect':'Deny','Principal':'*',"
	        "'Action':'ecr:*'}]}");
	repo_ok("{'Statement':[{'Effect':'Allow','Principal':'*','Action':'*'}]}");
	repo_ok("{'Version':'2012-10-17','Id':'x','Statement':{'Effect':'Allow','Principal':'*',"
	        "'Action':'ecr:BatchGetImage'}}");
	/* duplicate Sids */
	repo_ok("{'Version':'2012-10-17','Statement':[{'Sid':'a','Effect':'Allow'," PRINC
	        ",'Action':'ecr:GetDownloadUrlForLayer'},{'Sid':'a','Effect':'Allow'," PRINC
	        ",'Action':'ecr:BatchGetImage'}]}");
	repo_ok(STMT("'Effect':'Allow','Principal':{'Service':['codebuild.amazonaws.com'],"
	             "'AWS':['arn:aws:iam::111111111111:root','222222222222']},"
	             "'NotAction':['ecr:DeleteRepository'],'Resource':'*',"
	             "'Condition':{'StringEquals':{'aws:SourceAccount':'123456789012'},"
	             "'Bool':{'aws:SecureTransport':false},'NumericLessThan':{'k':[1,2]}}"));
	repo_ok(STMT("'Effect':'Allow','NotPrincipal':{'AWS':'arn:aws:iam::1:root'},"
	             "'Action':'ecr:Get*','NotResource':['arn:aws:ecr:us-east-1:1:repository/x']"));
}

static void test_repo_policy_reject(void **state)
{
	(void)state;
	/* moto's test_set_repository_policy_error_invalid_param */
	repo_bad("{'Version':'2012-10-17','Statement':[{'Effect':'Allow'}]}");
	repo_bad("not json");
	repo_bad("");
	repo_bad("[]");
	repo_bad("{'Version':'2012-10-17'}");
	repo_bad("{'Version':'2012-10-17','Statement':[]}");
	repo_bad("{'Version':'2012-10-17','Statement':null}");
	repo_bad("{'Version':'2012-10-17','Statement':'x'}");
	repo_bad("{'Version':'2012-10-17','Statement':[5]}");
	repo_bad("{'Version':'2012-10-17','Extra':1,'Statement':[{'Effect':'Allow','Principal':"
	         "'*','Action':'ecr:*'}]}");
	repo_bad("{'Version':'2010-01-01','Statement':[{'Effect':'Allow','Principal':'*',"
	         "'Action':'ecr:*'}]}");
	repo_bad("{'Version':2012,'Statement':[{'Effect':'Allow','Principal':'*','Action':'*'}]}");
	repo_bad("{'Id':5,'Statement':[{'Effect':'Allow','Principal':'*','Action':'*'}]}");
	repo_bad(STMT("'Principal':'*','Action':'ecr:*'"));                  /* no Effect */
	repo_bad(STMT("'Effect':'allow','Principal':'*','Action':'ecr:*'")); /* case */
	repo_bad(STMT("'Effect':'Maybe','Principal':'*','Action':'ecr:*'"));
	repo_bad(STMT("'Effect':'Allow','Principal':'*'")); /* no Action */
	repo_bad(STMT("'Effect':'Allow','Principal':'*','Action':[]"));
	repo_bad(STMT("'Effect':'Allow','Principal':'*','Action':''"));
	repo_bad(STMT("'Effect':'Allow','Principal':'*','Action':5"));
	repo_bad(STMT("'Effect':'Allow','Principal':'*','Action':['ecr:A',null]"));
	repo_bad(STMT("'Effect':'Allow','Principal':'*','Action':'ecr:A','NotAction':'ecr:B'"));
	repo_bad(STMT("'Effect':'Allow','Principal':'*','Action':'DescribeImages'"));
	repo_bad(STMT("'Effect':'Allow','Principal':'*','Action':'ecr:a:b'"));
	repo_bad(STMT("'Effect':'Allow','Principal':'*','Action':'e cr:a'"));
	repo_bad(STMT("'Effect':'Allow','Principal':'*','Action':'ecr:'"));
	repo_bad(STMT("'Effect':'Allow','Principal':'*','Action':':x'"));
	repo_bad(STMT("'Effect':'Allow','Principal':'*','Action':'ecr:*','Unknown':1"));
	repo_bad(STMT("'Effect':'Allow','Action':'ecr:*'")); /* no Principal */
	repo_bad(STMT("'Effect':'Allow','Principal':'someone','Action':'ecr:*'"));
	repo_bad(STMT("'Effect':'Allow','Principal':{},'Action':'ecr:*'"));
	repo_bad(STMT("'Effect':'Allow','Principal':{'User':'x'},'Action':'ecr:*'"));
	repo_bad(STMT("'Effect':'Allow','Principal':{'AWS':[]},'Action':'ecr:*'"));
	repo_bad(STMT("'Effect':'Allow','Principal':'*','NotPrincipal':'*','Action':'ecr:*'"));
	repo_bad(STMT("'Effect':'Allow','Principal':'*','Action':'ecr:*','Resource':'repo'"));
	repo_bad(STMT("'Effect':'Allow','Principal':'*','Action':'ecr:*','Resource':[]"));
	repo_bad(STMT("'Effect':'Allow','Principal':'*','Action':'ecr:*','Resource':'*',"
	              "'NotResource':'*'"));
	repo_bad(STMT("'Effect':'Allow','Principal':'*','Action':'ecr:*','Condition':'x'"));
	repo_bad(STMT("'Effect':'Allow','Principal':'*','Action':'ecr:*','Condition':{'A':[]}"));
	repo_bad(STMT("'Effect':'Allow','Principal':'*','Action':'ecr:*',"
	              "'Condition':{'StringEquals':{'k':{'x':1}}}"));
	repo_bad(STMT("'Sid':5,'Effect':'Allow','Principal':'*','Action':'ecr:*'"));
	assert_int_equal(iam_repo_policy_validate(NULL, 0, NULL), BERR_PARAM_INVALID);
}

#define REG_STMT(action)                                                                           \
	"{'Version':'2012-10-17','Statement':[{'Effect':'Allow','Principal':{'AWS':["              \
	"'arn:aws:iam::111111111111:root','222222222222']},'Action':" action ","                   \
	"'Resource':'*'}]}"

static void test_registry_policy(void **state)
{
	(void)state;
	/* moto's accepted cases */
	reg_ok(REG_STMT("'ecr:CreateRepository'"));
	reg_ok(REG_STMT("['ecr:CreateRepository','ecr:ReplicateImage']"));
	/* AWS column: BatchImportUpstreamImage too */
	reg_ok(REG_STMT("['ecr:BatchImportUpstreamImage','ecr:CreateRepository']"));
	reg_ok("{'Version':'2012-10-17','Statement':{'Sid':'r','Effect':'Allow','Principal':"
	       "{'AWS':'arn:aws:iam::111111111111:root'},'Action':'ecr:ReplicateImage',"
	       "'Resource':['arn:aws:ecr:us-east-1:123456789012:repository/*']}}");
	/* moto's rejected case */
	reg_bad(REG_STMT("['ecr:CreateRepository','ecr:ReplicateImage',"
	                 "'ecr:DescribeRepositories']"));
	reg_bad(REG_STMT("'ecr:*'"));
	reg_bad(REG_STMT("'*'"));
	reg_bad(REG_STMT("[]"));
	reg_bad(REG_STMT("null"));
	reg_bad("{'Version':'2012-10-17','Statement':[{'Effect':'Allow','Principal':'*',"
	        "'Action':'ecr:CreateRepository'}]}"); /* no Resource */
	reg_bad("{'Version':'2012-10-17','Statement':[{'Effect':'Allow',"
	        "'Action':'ecr:CreateRepository','Resource':'*'}]}"); /* no Principal */
	reg_bad("{'Version':'2012-10-17','Statement':[{'Principal':'*',"
	        "'Action':'ecr:CreateRepository','Resource':'*'}]}"); /* no Effect */
	reg_bad("{'Statement':[{'Effect':'Allow','Principal':'*',"
	        "'Action':'ecr:CreateRepository','Resource':'*'}]}"); /* no Version */
	reg_bad("{'Version':'2008-10-17','Statement':[{'Effect':'Allow','Principal':'*',"
	        "'Action':'ecr:CreateRepository','Resource':'*'}]}");
	reg_bad("{'Version':'2012-10-17','Statement':[{'Effect':'Allow','Principal':'*',"
	        "'NotAction':'ecr:CreateRepository','Resource':'*'}]}");
	reg_bad("{'Version':'2012-10-17','Statement':[{'Effect':'Allow','Principal':'*',"
	        "'Action':'ecr:CreateRepository','NotResource':'*'}]}");
	reg_bad("{'Version':'2012-10-17','Statement':[{'Effect':'Allow','NotPrincipal':'*',"
	        "'Action':'ecr:CreateRepository','Resource':'*'}]}");
	reg_bad("{'Version':'2012-10-17','Statement':[]}");
	reg_bad("{'Version':'2012-10-17'}");
	reg_bad("nope");
	assert_int_equal(iam_registry_policy_validate(NULL, 0, NULL), BERR_PARAM_INVALID);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_row_not_json),
	    cmocka_unit_test(test_row_rules_missing),
	    cmocka_unit_test(test_row_rule_not_object),
	    cmocka_unit_test(test_row_rule_missing_members),
	    cmocka_unit_test(test_row_rule_unknown_member),
	    cmocka_unit_test(test_row_action),
	    cmocka_unit_test(test_row_selection_missing),
	    cmocka_unit_test(test_row_selection_unknown),
	    cmocka_unit_test(test_row_tag_status),
	    cmocka_unit_test(test_row_one_of),
	    cmocka_unit_test(test_row_count_unit),
	    cmocka_unit_test(test_row_count_number),
	    cmocka_unit_test(test_unlisted_members),
	    cmocka_unit_test(test_check_order),
	    cmocka_unit_test(test_sem_unique_priority),
	    cmocka_unit_test(test_sem_any_last),
	    cmocka_unit_test(test_sem_lists),
	    cmocka_unit_test(test_sem_wildcards),
	    cmocka_unit_test(test_sem_untagged_and_prefixes),
	    cmocka_unit_test(test_sem_combinations),
	    cmocka_unit_test(test_sem_rule_count),
	    cmocka_unit_test(test_moto_validate_policy),
	    cmocka_unit_test(test_seed_policy),
	    cmocka_unit_test(test_worked_examples),
	    cmocka_unit_test(test_sorted_and_out_null),
	    cmocka_unit_test(test_hostile_nesting),
	    cmocka_unit_test(test_hostile_numbers),
	    cmocka_unit_test(test_hostile_wrong_types),
	    cmocka_unit_test(test_hostile_long_values),
	    cmocka_unit_test(test_hostile_bytes),
	    cmocka_unit_test(test_repo_policy_accept),
	    cmocka_unit_test(test_repo_policy_reject),
	    cmocka_unit_test(test_registry_policy),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
