/* policy.c - validation of ECR lifecycle policies (spec §4.5) and IAM-style repository/registry
 * permission policies (spec §3.1 SetRepositoryPolicy, §3.7 PutRegistryPolicy). Pure: no I/O, no
 * globals, thread-safe.
 *
 * Lifecycle validation runs in three phases and stops at the first failure:
 *   1. schema - the checks of the §4.5.2 table, in table order. The pass "every rule is an object"
 *      runs over all rules first; every later check runs rule by rule (the order moto's validator,
 *      the source of the table, uses). Inside a rule the objects are visited action, description,
 *      rulePriority, selection (alphabetical, as a JSON-schema validator walks properties; the
 *      table's "action before selection" agrees). Checks the table does not list (wrong JSON
 *      types, storageClass/targetStorageClass values, list element types) use the same
 *      JSON-schema-validator wording and sit next to the row of the member they concern.
 *   2. mapping - values the service's typed model cannot hold (rulePriority above INT_MAX).
 *   3. semantic - the §4.5.2 "Semantic checks" list, in list order, each over all rules in
 *      document order; the rule count limit (LC_MAX_RULES) runs first.
 * Every failure is BERR_PARAM_INVALID with the full ECR message in err->msg; whether the detail
 * is followed by a closing quote is per row (lc_fail's `quote`).
 *
 * Invariants of a returned struct lc_policy: 1..LC_MAX_RULES rules sorted by unique priority;
 * a tagged rule has exactly one non-empty list (prefixes or patterns), other rules none; pattern
 * lists hold at most 4 '*' per pattern; storage class, count type and action form one of the
 * combinations of §4.5.1. All strings are NUL-free (jansson rejects \u0000 by default).
 *
 * IAM validation is a yes/no check; the wire message never says what was wrong. */
#include "../base/feat.h"

#include "policy.h"

#include "../base/buf.h"
#include "../base/mem.h"

#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define LC_PREFIX                                                                                  \
	"Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint: "                \
	"'Lifecycle policy validation failure: "

#define LC_ONE_OF "instance failed to match exactly one schema (matched 0 out of 2)"
#define LC_NO_MAP "Could not map policyString into LifecyclePolicy."

/* Longest echo of client data (a value or a list of member names) inside a message: err->msg is
 * 512 bytes and the prefix plus template take ~200, so clipping keeps the closing quote. */
#define LC_ECHO_MAX 200
#define LC_MAX_WILDCARDS 4

/* ---- message helpers ---------------------------------------------------------------------- */

static enum berr_code lc_fail(struct berr *err, bool quote, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static enum berr_code lc_fail(struct berr *err, bool quote, const char *fmt, ...)
{
	char detail[384];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	return err_set(err, BERR_PARAM_INVALID, "%s%s%s", LC_PREFIX, detail, quote ? "'" : "");
}

/* Copies s into out (cap > 4), cutting at LC_ECHO_MAX bytes on a UTF-8 boundary with "...". */
static void clip(const char *s, char *out, size_t cap)
{
	size_t n = strlen(s);
	size_t max = cap - 1 < LC_ECHO_MAX ? cap - 1 : LC_ECHO_MAX;

	if (n <= max) {
		memcpy(out, s, n + 1);
		return;
	}
	n = max - 3;
	while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
		n--;
	memcpy(out, s, n);
	memcpy(out + n, "...", 4);
}

/* JSON type names as the live service prints them ("instance type (string) ..."). */
static const char *json_type_name(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return "object";
	case JSON_ARRAY:
		return "array";
	case JSON_STRING:
		return "string";
	case JSON_INTEGER:
		return "integer";
	case JSON_REAL:
		return "number";
	case JSON_TRUE:
	case JSON_FALSE:
		return "boolean";
	case JSON_NULL:
		return "null";
	}
	return "null";
}

/* "instance value (<v>) ...": strings bare (moto's test-checked form), other values as compact
 * JSON (null, 5, true, [...]); clipped. */
static void render_value(const json_t *v, char *out, size_t cap)
{
	char *dump;

	if (json_is_string(v)) {
		clip(json_string_value(v), out, cap);
		return;
	}
	dump = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
	clip(dump ? dump : "null", out, cap);
	free(dump);
}

static enum berr_code lc_type_err(struct berr *err, const json_t *v, const char *allowed)
{
	return lc_fail(err, true,
	               "instance type (%s) does not match any allowed primitive type "
	               "(allowed: [\"%s\"])",
	               json_type_name(v), allowed);
}

/* vals: the enum in sorted order, pre-rendered as the JSON list text. */
static enum berr_code lc_enum_err(struct berr *err, const json_t *v, const char *vals)
{
	char shown[LC_ECHO_MAX + 1];

	render_value(v, shown, sizeof(shown));
	return lc_fail(err, true, "instance value (%s) not found in enum :(possible values: %s)",
	               shown, vals);
}

/* True if v is a string equal to one of names[0..n). */
static bool str_in(const json_t *v, const char *const *names, size_t n)
{
	if (!json_is_string(v))
		return false;
	for (size_t i = 0; i < n; i++)
		if (strcmp(json_string_value(v), names[i]) == 0)
			return true;
	return false;
}

static int cmp_cstr(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Appends names (already sorted) as a JSON list `["a", "b"]` (Python json.dumps spacing, ASCII
 * escapes), clipped, into out. */
static void render_names(const char **names, size_t n, char *out, size_t cap)
{
	struct buf b;

	buf_init(&b, 0);
	buf_puts(&b, "[", NULL);
	for (size_t i = 0; i < n; i++) {
		json_t *s = json_string(names[i]);
		char *q = s ? json_dumps(s, JSON_ENCODE_ANY | JSON_ENSURE_ASCII) : NULL;

		if (i > 0)
			buf_puts(&b, ", ", NULL);
		buf_puts(&b, q ? q : "\"?\"", NULL);
		free(q);
		json_decref(s);
		if (b.len > LC_ECHO_MAX)
			break; /* clip() cuts it anyway; stop building a huge list */
	}
	buf_puts(&b, "]", NULL);
	clip(b.p, out, cap);
	buf_free(&b);
}

/* Row "lacks members": req is sorted; the message lists the missing ones in that order. */
static enum berr_code lc_check_required(const json_t *obj, const char *const *req, size_t n,
                                        struct berr *err)
{
	const char *missing[8];
	size_t nmiss = 0;
	char list[LC_ECHO_MAX + 1];

	for (size_t i = 0; i < n && nmiss < ARRAY_LEN(missing); i++)
		if (!json_object_get(obj, req[i]))
			missing[nmiss++] = req[i];
	if (nmiss == 0)
		return BERR_OK;
	render_names(missing, nmiss, list, sizeof(list));
	return lc_fail(err, true, "object has missing required properties (%s)", list);
}

/* Row "unknown member": every member not in allowed, sorted (the validator reports the set). */
static enum berr_code lc_check_allowed(const json_t *obj, const char *const *allowed, size_t n,
                                       struct berr *err)
{
	const char *key;
	json_t *val;
	const char **extra;
	size_t nextra = 0;
	char list[LC_ECHO_MAX + 1];

	json_object_foreach ((json_t *)obj, key, val) {
		bool ok = false;

		for (size_t i = 0; i < n && !ok; i++)
			ok = strcmp(key, allowed[i]) == 0;
		if (!ok)
			nextra++;
	}
	if (nextra == 0)
		return BERR_OK;
	extra = xmalloc(nextra * sizeof(*extra));
	nextra = 0;
	json_object_foreach ((json_t *)obj, key, val) {
		bool ok = false;

		for (size_t i = 0; i < n && !ok; i++)
			ok = strcmp(key, allowed[i]) == 0;
		if (!ok)
			extra[nextra++] = key;
	}
	qsort(extra, nextra, sizeof(*extra), cmp_cstr);
	render_names(extra, nextra, list, sizeof(list));
	free(extra);
	return lc_fail(err, true,
	               "object instance has properties which are not allowed by the schema: (%s)",
	               list);
}

/* ---- lifecycle: schema phase ---------------------------------------------------------------- */

static const char *const rule_required[] = {"action", "rulePriority", "selection"};
static const char *const rule_allowed[] = {"action", "description", "rulePriority", "selection"};
static const char *const action_required[] = {"type"};
static const char *const action_allowed[] = {"targetStorageClass", "type"};
static const char *const action_types[] = {"expire", "transition"};
static const char *const sel_required[] = {"countNumber", "countType", "tagStatus"};
static const char *const sel_allowed[] = {"countNumber",  "countType",      "countUnit",
                                          "storageClass", "tagPatternList", "tagPrefixList",
                                          "tagStatus"};
static const char *const tag_statuses[] = {"any", "tagged", "untagged"};
static const char *const count_types[] = {"imageCountMoreThan", "sinceImagePushed",
                                          "sinceImagePulled", "sinceImageTransitioned"};
static const char *const count_units[] = {"days"};
static const char *const storage_classes[] = {"archive", "standard"};
static const char *const target_classes[] = {"archive"};

/* Copies a JSON list of strings into a new NULL-terminated array; the schema check ran. */
static char **dup_str_list(const json_t *arr, size_t *n)
{
	size_t len = json_array_size(arr);
	char **v = xcalloc(len + 1, sizeof(*v));

	for (size_t i = 0; i < len; i++)
		v[i] = xstrdup(json_string_value(json_array_get(arr, i)));
	*n = len;
	return v;
}

static enum berr_code lc_check_str_list(const json_t *v, struct berr *err)
{
	size_t i;
	json_t *e;

	if (!json_is_array(v))
		return lc_type_err(err, v, "array");
	json_array_foreach (v, i, e)
		if (!json_is_string(e))
			return lc_type_err(err, e, "string");
	return BERR_OK;
}

static enum berr_code lc_action_parse(const json_t *a, struct lc_rule *r, struct berr *err)
{
	enum berr_code rc;
	const json_t *type, *tsc;

	if (!json_is_object(a))
		return lc_type_err(err, a, "object");
	if ((rc = lc_check_required(a, action_required, ARRAY_LEN(action_required), err)) ||
	    (rc = lc_check_allowed(a, action_allowed, ARRAY_LEN(action_allowed), err)))
		return rc;
	type = json_object_get(a, "type");
	if (!str_in(type, action_types, ARRAY_LEN(action_types)))
		return lc_enum_err(err, type, "[\"expire\", \"transition\"]");
	r->action = strcmp(json_string_value(type), "expire") == 0 ? LC_EXPIRE : LC_TRANSITION;

	/* oneOf {expire without targetStorageClass, transition with it}: a missing, surplus or
	 * null targetStorageClass matches neither branch (observed live for null); the value
	 * itself is an enum checked after, like countUnit. */
	tsc = json_object_get(a, "targetStorageClass");
	if (r->action == LC_EXPIRE ? tsc != NULL : (tsc == NULL || json_is_null(tsc)))
		return lc_fail(err, false, LC_ONE_OF);
	if (tsc && !str_in(tsc, target_classes, ARRAY_LEN(target_classes)))
		return lc_enum_err(err, tsc, "[\"archive\"]");
	return BERR_OK;
}

static enum berr_code lc_selection_parse(const json_t *s, struct lc_rule *r, struct berr *err)
{
	enum berr_code rc;
	const json_t *tag_status, *count_type, *unit, *num, *sc, *pats, *pres, *val;
	const char *key, *ct;
	long long n;

	if (!json_is_object(s))
		return lc_type_err(err, s, "object");
	if ((rc = lc_check_required(s, sel_required, ARRAY_LEN(sel_required), err)) ||
	    (rc = lc_check_allowed(s, sel_allowed, ARRAY_LEN(sel_allowed), err)))
		return rc;

	tag_status = json_object_get(s, "tagStatus");
	if (!str_in(tag_status, tag_statuses, ARRAY_LEN(tag_statuses)))
		return lc_enum_err(err, tag_status, "[\"any\", \"tagged\", \"untagged\"]");

	/* The selection is a oneOf of {imageCountMoreThan, no countUnit} and {since*, countUnit}:
	 * an unknown countType, a countUnit present/absent on the wrong side, or any null member
	 * matches neither branch. */
	json_object_foreach ((json_t *)s, key, val)
		if (json_is_null(val))
			return lc_fail(err, false, LC_ONE_OF);
	count_type = json_object_get(s, "countType");
	unit = json_object_get(s, "countUnit");
	if (!str_in(count_type, count_types, ARRAY_LEN(count_types)))
		return lc_fail(err, false, LC_ONE_OF);
	ct = json_string_value(count_type);
	if (strcmp(ct, "imageCountMoreThan") == 0 ? unit != NULL : unit == NULL)
		return lc_fail(err, false, LC_ONE_OF);

	if (unit && !str_in(unit, count_units, ARRAY_LEN(count_units)))
		return lc_enum_err(err, unit, "[\"days\"]");

	num = json_object_get(s, "countNumber");
	if (!json_is_integer(num))
		return lc_type_err(err, num, "integer");
	n = json_integer_value(num);
	if (n < 1)
		return lc_fail(err, false,
		               "numeric instance is lower than the required minimum (minimum: 1, "
		               "found: %lld)",
		               n);

	sc = json_object_get(s, "storageClass");
	if (sc && !str_in(sc, storage_classes, ARRAY_LEN(storage_classes)))
		return lc_enum_err(err, sc, "[\"archive\", \"standard\"]");
	pats = json_object_get(s, "tagPatternList");
	if (pats && (rc = lc_check_str_list(pats, err)))
		return rc;
	pres = json_object_get(s, "tagPrefixList");
	if (pres && (rc = lc_check_str_list(pres, err)))
		return rc;

	/* Schema passed: fill the rule. Empty lists are kept (semantic phase rejects them). */
	key = json_string_value(tag_status);
	r->tag_status = key[0] == 'a' ? LC_ANY : key[0] == 't' ? LC_TAGGED : LC_UNTAGGED;
	if (strcmp(ct, "imageCountMoreThan") == 0)
		r->count_type = LC_IMAGE_COUNT_MORE_THAN;
	else if (strcmp(ct, "sinceImagePushed") == 0)
		r->count_type = LC_SINCE_IMAGE_PUSHED;
	else if (strcmp(ct, "sinceImagePulled") == 0)
		r->count_type = LC_SINCE_IMAGE_PULLED;
	else
		r->count_type = LC_SINCE_IMAGE_TRANSITIONED;
	r->count_number = n;
	r->storage_class =
	    sc && strcmp(json_string_value(sc), "archive") == 0 ? LC_ARCHIVE : LC_STANDARD;
	if (pats)
		r->tag_patterns = dup_str_list(pats, &r->npatterns);
	if (pres)
		r->tag_prefixes = dup_str_list(pres, &r->nprefixes);
	return BERR_OK;
}

/* Schema checks of one rule (already known to be an object). *too_big is set when rulePriority
 * exceeds INT_MAX (a mapping failure, reported after the schema phase). */
static enum berr_code lc_rule_parse(const json_t *rule, struct lc_rule *r, bool *too_big,
                                    struct berr *err)
{
	enum berr_code rc;
	const json_t *desc, *prio;
	long long p;

	if ((rc = lc_check_required(rule, rule_required, ARRAY_LEN(rule_required), err)) ||
	    (rc = lc_check_allowed(rule, rule_allowed, ARRAY_LEN(rule_allowed), err)) ||
	    (rc = lc_action_parse(json_object_get(rule, "action"), r, err)))
		return rc;

	desc = json_object_get(rule, "description");
	if (desc && !json_is_string(desc))
		return lc_type_err(err, desc, "string");

	/* [proposed] the table has no row for rulePriority; the brief asks for integer >= 1 in the
	 * validator's wording (same texts as countNumber). */
	prio = json_object_get(rule, "rulePriority");
	if (!json_is_integer(prio))
		return lc_type_err(err, prio, "integer");
	p = json_integer_value(prio);
	if (p < 1)
		return lc_fail(err, false,
		               "numeric instance is lower than the required minimum (minimum: 1, "
		               "found: %lld)",
		               p);

	if ((rc = lc_selection_parse(json_object_get(rule, "selection"), r, err)))
		return rc;

	if (p > INT_MAX) {
		*too_big = true;
		p = INT_MAX;
	}
	r->priority = (int)p;
	r->description = desc ? xstrdup(json_string_value(desc)) : NULL;
	return BERR_OK;
}

/* ---- lifecycle: semantic phase ------------------------------------------------------------ */

static bool lc_combination_ok(const struct lc_rule *r)
{
	switch (r->count_type) {
	case LC_IMAGE_COUNT_MORE_THAN:
	case LC_SINCE_IMAGE_PUSHED:
		return r->storage_class == LC_STANDARD;
	case LC_SINCE_IMAGE_PULLED:
		return r->storage_class == LC_STANDARD && r->action == LC_TRANSITION;
	case LC_SINCE_IMAGE_TRANSITIONED:
		/* [unconfirmed] AWS keeps archived images >= 90 days, but whether countNumber < 90
		 * is rejected at validation time is not known: not enforced here; the evaluator
		 * must apply the minimum archive duration itself. */
		return r->storage_class == LC_ARCHIVE && r->action == LC_EXPIRE;
	}
	return false;
}

static size_t count_wildcards(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		n += *s == '*';
	return n;
}

/* Semantic-phase texts ([proposed]: spec §4.5.2, Appendix B; the rule-count text is ours). */
#define LC_SEM_UNIQUE "Rules must have unique rulePriority values"
#define LC_SEM_ANY_LAST "A rule with tagStatus 'any' must have the highest rulePriority"
#define LC_SEM_LISTS                                                                               \
	"tagPrefixList or tagPatternList must be specified only when tagStatus is tagged, and "    \
	"not both"
#define LC_SEM_WILDCARDS "tagPatternList patterns may contain at most 4 wildcards"
#define LC_SEM_UNTAGGED "Only one rule per storage class may select untagged images"
#define LC_SEM_PREFIXES "Tag prefixes must be unique across rules"
#define LC_SEM_COMBO "Invalid combination of countType, storageClass and action"

static bool lc_lists_ok(const struct lc_rule *r)
{
	bool has_pre = r->tag_prefixes != NULL, has_pat = r->tag_patterns != NULL;

	if (r->tag_status != LC_TAGGED)
		return !has_pre && !has_pat;
	return has_pre != has_pat && r->nprefixes + r->npatterns > 0;
}

static bool lc_share_prefix(const struct lc_rule *a, const struct lc_rule *b)
{
	for (size_t i = 0; i < a->nprefixes; i++)
		for (size_t j = 0; j < b->nprefixes; j++)
			if (strcmp(a->tag_prefixes[i], b->tag_prefixes[j]) == 0)
				return true;
	return false;
}

/* Returns the failing check's text, or NULL. Each check runs over all rules before the next. */
static const char *lc_semantic_fail(const struct lc_rule *rs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		for (size_t j = i + 1; j < n; j++)
			if (rs[i].priority == rs[j].priority)
				return LC_SEM_UNIQUE;

	/* "any must be last" is applied per storage class: §4.5.4 example 4 (an any/standard rule
	 * at priority 1 before an any/archive rule at 2) must be accepted, and rules of different
	 * classes never select the same image (§4.5.3 condition 1). */
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < n && rs[i].tag_status == LC_ANY; j++)
			if (j != i && rs[j].storage_class == rs[i].storage_class &&
			    rs[j].priority > rs[i].priority)
				return LC_SEM_ANY_LAST;

	for (size_t i = 0; i < n; i++)
		if (!lc_lists_ok(&rs[i]))
			return LC_SEM_LISTS;

	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < rs[i].npatterns; k++)
			if (count_wildcards(rs[i].tag_patterns[k]) > LC_MAX_WILDCARDS)
				return LC_SEM_WILDCARDS;

	/* Only tagStatus "untagged" counts here: an "any" rule next to an "untagged" one is the
	 * normal shape (§4.5.4 example 2). */
	for (size_t i = 0; i < n; i++)
		for (size_t j = i + 1; j < n; j++)
			if (rs[i].tag_status == LC_UNTAGGED && rs[j].tag_status == LC_UNTAGGED &&
			    rs[i].storage_class == rs[j].storage_class)
				return LC_SEM_UNTAGGED;

	for (size_t i = 0; i < n; i++)
		for (size_t j = i + 1; j < n; j++)
			if (rs[i].storage_class == rs[j].storage_class &&
			    lc_share_prefix(&rs[i], &rs[j]))
				return LC_SEM_PREFIXES;

	for (size_t i = 0; i < n; i++)
		if (!lc_combination_ok(&rs[i]))
			return LC_SEM_COMBO;
	return NULL;
}

static enum berr_code lc_semantic_check(const struct lc_policy *p, struct berr *err)
{
	const char *bad;

	if (p->nrules > LC_MAX_RULES)
		return lc_fail(err, true, "A lifecycle policy may contain at most %d rules",
		               LC_MAX_RULES);
	bad = lc_semantic_fail(p->rules, p->nrules);
	return bad ? lc_fail(err, true, "%s", bad) : BERR_OK;
}

static int cmp_rule_priority(const void *a, const void *b)
{
	int pa = ((const struct lc_rule *)a)->priority, pb = ((const struct lc_rule *)b)->priority;

	return (pa > pb) - (pa < pb);
}

enum berr_code lc_policy_parse(const char *text, size_t len, struct lc_policy **out,
                               struct berr *err)
{
	json_t *root = NULL, *rules, *rule;
	struct lc_policy *p = NULL;
	enum berr_code rc = BERR_OK;
	bool too_big = false;
	size_t i, n;

	if (out)
		*out = NULL;
	if (text)
		root = json_loadb(text, len, 0, NULL);
	if (!root || !json_is_object(root)) {
		rc = lc_fail(err, true, LC_NO_MAP);
		goto out;
	}
	rules = json_object_get(root, "rules");
	if (!json_is_array(rules)) {
		rc = lc_fail(err, true, "object has missing required properties ([\"rules\"])");
		goto out;
	}
	n = json_array_size(rules);
	/* [proposed] an empty rule list is not in the table; rejected with the validator's
	 * minItems wording (the console cannot create an empty policy). */
	if (n == 0) {
		rc = lc_fail(err, true,
		             "array is too short: must have at least 1 elements but instance has 0 "
		             "elements");
		goto out;
	}
	json_array_foreach (rules, i, rule)
		if (!json_is_object(rule)) {
			rc = lc_type_err(err, rule, "object");
			goto out;
		}

	p = xcalloc(1, sizeof(*p));
	p->rules = xcalloc(n, sizeof(*p->rules));
	p->nrules = n; /* zeroed rules free cleanly if we stop half-way */
	json_array_foreach (rules, i, rule)
		if ((rc = lc_rule_parse(rule, &p->rules[i], &too_big, err)))
			goto out;

	/* [proposed] the service maps the document onto a model with 32-bit ints; a priority it
	 * cannot hold fails the mapping, which reports like unparsable text. */
	if (too_big) {
		rc = lc_fail(err, true, LC_NO_MAP);
		goto out;
	}
	if ((rc = lc_semantic_check(p, err)))
		goto out;
	qsort(p->rules, p->nrules, sizeof(*p->rules), cmp_rule_priority);
	if (out) {
		*out = p;
		p = NULL;
	}
out:
	lc_policy_free(p);
	json_decref(root);
	return rc;
}

static void free_str_list(char **v)
{
	if (!v)
		return;
	for (char **s = v; *s; s++)
		free(*s);
	free(v);
}

void lc_policy_free(struct lc_policy *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->nrules; i++) {
		free(p->rules[i].description);
		free_str_list(p->rules[i].tag_prefixes);
		free_str_list(p->rules[i].tag_patterns);
	}
	free(p->rules);
	free(p);
}

/* ---- IAM policies ------------------------------------------------------------------------- */

/* Which checks differ between SetRepositoryPolicy (§3.1) and PutRegistryPolicy (§3.7). */
struct iam_profile {
	bool registry;
};

static const char *const registry_actions[] = {"ecr:ReplicateImage", "ecr:CreateRepository",
                                               "ecr:BatchImportUpstreamImage"};

/* "vendor:name": vendor [A-Za-z0-9.-]+, exactly one colon, non-empty name; or "*". */
static bool iam_action_ok(const char *s, const struct iam_profile *prof)
{
	const char *colon;

	if (prof->registry) {
		/* IAM action names are case-insensitive; wildcards are not accepted here because
		 * they would grant more than the three registry-level permissions. */
		for (size_t i = 0; i < ARRAY_LEN(registry_actions); i++)
			if (strcasecmp(s, registry_actions[i]) == 0)
				return true;
		return false;
	}
	if (strcmp(s, "*") == 0)
		return true;
	colon = strchr(s, ':');
	if (!colon || colon == s || colon[1] == '\0' || strchr(colon + 1, ':'))
		return false;
	for (const char *c = s; c < colon; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
		      (*c >= '0' && *c <= '9') || *c == '-' || *c == '.'))
			return false;
	return true;
}

static bool iam_resource_ok(const char *s, const struct iam_profile *prof)
{
	(void)prof;
	return strcmp(s, "*") == 0 || strncmp(s, "arn:", 4) == 0;
}

static bool iam_nonempty_ok(const char *s, const struct iam_profile *prof)
{
	(void)prof;
	return s[0] != '\0';
}

/* A string or a non-empty list of strings, each accepted by ok. */
typedef bool (*iam_item_fn)(const char *s, const struct iam_profile *prof);

static bool iam_str_or_list(const json_t *v, iam_item_fn ok, const struct iam_profile *prof)
{
	size_t i;
	json_t *e;

	if (json_is_string(v))
		return ok(json_string_value(v), prof);
	if (!json_is_array(v) || json_array_size(v) == 0)
		return false;
	json_array_foreach (v, i, e)
		if (!json_is_string(e) || !ok(json_string_value(e), prof))
			return false;
	return true;
}

/* "*" or {"AWS"|"Service"|"Federated"|"CanonicalUser": string or list}, non-empty. */
static bool iam_principal_ok(const json_t *v, const struct iam_profile *prof)
{
	static const char *const kinds[] = {"AWS", "CanonicalUser", "Federated", "Service"};
	const char *key;
	json_t *val;

	if (json_is_string(v))
		return strcmp(json_string_value(v), "*") == 0;
	if (!json_is_object(v) || json_object_size(v) == 0)
		return false;
	json_object_foreach ((json_t *)v, key, val) {
		bool known = false;

		for (size_t i = 0; i < ARRAY_LEN(kinds) && !known; i++)
			known = strcmp(key, kinds[i]) == 0;
		if (!known || !iam_str_or_list(val, iam_nonempty_ok, prof))
			return false;
	}
	return true;
}

static bool iam_scalar(const json_t *v)
{
	return json_is_string(v) || json_is_number(v) || json_is_boolean(v);
}

/* {"<Operator>": {"<key>": scalar or list of scalars}} */
static bool iam_condition_ok(const json_t *v)
{
	const char *op, *key;
	json_t *block, *val, *e;
	size_t i;

	if (!json_is_object(v))
		return false;
	json_object_foreach ((json_t *)v, op, block) {
		if (!json_is_object(block))
			return false;
		json_object_foreach (block, key, val) {
			if (iam_scalar(val))
				continue;
			if (!json_is_array(val))
				return false;
			json_array_foreach (val, i, e)
				if (!iam_scalar(e))
					return false;
		}
	}
	return true;
}

/* At most one of k and "Not"+k; returns the one present (NULL if none). */
static bool iam_pair(const json_t *st, const char *k, const char *notk, const json_t **v,
                     bool *negated)
{
	const json_t *a = json_object_get(st, k), *b = json_object_get(st, notk);

	if (a && b)
		return false;
	*v = a ? a : b;
	*negated = b != NULL;
	return true;
}

static bool iam_statement_ok(const json_t *st, const struct iam_profile *prof)
{
	static const char *const allowed[] = {"Action",    "Condition",    "Effect",
	                                      "NotAction", "NotPrincipal", "NotResource",
	                                      "Principal", "Resource",     "Sid"};
	const char *key;
	json_t *val;
	const json_t *v, *eff;
	bool neg;

	if (!json_is_object(st))
		return false;
	json_object_foreach ((json_t *)st, key, val) {
		bool known = false;

		for (size_t i = 0; i < ARRAY_LEN(allowed) && !known; i++)
			known = strcmp(key, allowed[i]) == 0;
		if (!known)
			return false;
	}
	if ((v = json_object_get(st, "Sid")) && !json_is_string(v))
		return false;
	eff = json_object_get(st, "Effect");
	if (!json_is_string(eff) || (strcmp(json_string_value(eff), "Allow") != 0 &&
	                             strcmp(json_string_value(eff), "Deny") != 0))
		return false;

	if (!iam_pair(st, "Action", "NotAction", &v, &neg) || !v || (prof->registry && neg) ||
	    !iam_str_or_list(v, iam_action_ok, prof))
		return false;

	/* [unconfirmed for ECR's validator] a resource policy names who it applies to, so a
	 * Principal (or NotPrincipal) is required for repository policies too (AWS's general IAM
	 * rule; every moto test policy has one). */
	if (!iam_pair(st, "Principal", "NotPrincipal", &v, &neg) || !v || (prof->registry && neg) ||
	    !iam_principal_ok(v, prof))
		return false;

	/* Resource is optional for repository policies (moto, test-checked), required for the
	 * registry policy. */
	if (!iam_pair(st, "Resource", "NotResource", &v, &neg))
		return false;
	if (prof->registry && (!v || neg))
		return false;
	if (v && !iam_str_or_list(v, iam_resource_ok, prof))
		return false;

	if ((v = json_object_get(st, "Condition")) && !iam_condition_ok(v))
		return false;
	return true;
}

static bool iam_document_ok(const char *text, size_t len, const struct iam_profile *prof)
{
	json_t *root = NULL;
	const json_t *v, *stmts;
	const char *key;
	json_t *val;
	bool ok = false;
	size_t i;

	if (!text || !(root = json_loadb(text, len, 0, NULL)) || !json_is_object(root))
		goto out;
	json_object_foreach (root, key, val)
		if (strcmp(key, "Version") != 0 && strcmp(key, "Id") != 0 &&
		    strcmp(key, "Statement") != 0)
			goto out;
	/* Version: registry 2012-10-17 only (required); repository also 2008-10-17 or absent. */
	v = json_object_get(root, "Version");
	if (v || prof->registry) {
		const char *ver = json_string_value(v); /* NULL unless a string */

		if (!ver || (strcmp(ver, "2012-10-17") != 0 &&
		             (prof->registry || strcmp(ver, "2008-10-17") != 0)))
			goto out;
	}
	if ((v = json_object_get(root, "Id")) && !json_is_string(v))
		goto out;

	/* Statement: one statement object or a non-empty list of them (IAM grammar). Duplicate
	 * Sids are accepted (moto, test-checked). */
	stmts = json_object_get(root, "Statement");
	if (json_is_object(stmts)) {
		ok = iam_statement_ok(stmts, prof);
		goto out;
	}
	if (!json_is_array(stmts) || json_array_size(stmts) == 0)
		goto out;
	json_array_foreach (stmts, i, val)
		if (!iam_statement_ok(val, prof))
			goto out;
	ok = true;
out:
	json_decref(root);
	return ok;
}

enum berr_code iam_repo_policy_validate(const char *text, size_t len, struct berr *err)
{
	static const struct iam_profile prof = {.registry = false};

	if (iam_document_ok(text, len, &prof))
		return BERR_OK;
	return err_set(err, BERR_PARAM_INVALID,
	               "Invalid parameter at 'PolicyText' failed to satisfy constraint: "
	               "'Invalid repository policy provided'");
}

enum berr_code iam_registry_policy_validate(const char *text, size_t len, struct berr *err)
{
	static const struct iam_profile prof = {.registry = true};

	if (iam_document_ok(text, len, &prof))
		return BERR_OK;
	return err_set(err, BERR_PARAM_INVALID,
	               "Invalid parameter at 'PolicyText' failed to satisfy constraint: "
	               "'Invalid registry policy provided'");
}
