/* fuzz_lifecycle.c - libFuzzer target for core/policy.c: feeds the same bytes to the lifecycle
 * policy parser and to both IAM policy validators.
 *
 * Invariants checked beyond "no crash, no leak, no UB": every result is BERR_OK or
 * BERR_PARAM_INVALID; a rejection always carries its full wire message (the lifecycle one ending
 * in the detail, with or without the closing quote, never cut by the 512-byte buffer); an
 * accepted lifecycle policy has 1..LC_MAX_RULES rules in strictly ascending priority, and every
 * list is NULL-terminated with the advertised length. */
#include "../../src/base/feat.h"

#include "../../src/core/policy.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_list(char **v, size_t n)
{
	if (!v) {
		if (n != 0)
			abort();
		return;
	}
	for (size_t i = 0; i < n; i++)
		if (!v[i])
			abort();
	if (v[n])
		abort();
}

static void check_policy(const struct lc_policy *p)
{
	if (p->nrules < 1 || p->nrules > LC_MAX_RULES)
		abort();
	for (size_t i = 0; i < p->nrules; i++) {
		const struct lc_rule *r = &p->rules[i];

		if (r->priority < 1 || (i > 0 && r->priority <= p->rules[i - 1].priority))
			abort();
		if (r->count_number < 1)
			abort();
		check_list(r->tag_prefixes, r->nprefixes);
		check_list(r->tag_patterns, r->npatterns);
		if ((r->tag_status == LC_TAGGED) != (r->nprefixes + r->npatterns > 0))
			abort();
	}
}

static void check_err(enum berr_code rc, const struct berr *err, const char *prefix)
{
	size_t len;

	if (rc == BERR_OK)
		return;
	if (rc != BERR_PARAM_INVALID || err->code != BERR_PARAM_INVALID)
		abort();
	len = strlen(err->msg);
	if (strncmp(err->msg, prefix, strlen(prefix)) != 0 || len + 1 >= sizeof(err->msg))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	struct lc_policy *p = NULL;
	struct berr err;
	enum berr_code rc;

	err_clear(&err);
	rc = lc_policy_parse(text, size, &p, &err);
	check_err(rc, &err,
	          "Invalid parameter at 'LifecyclePolicyText' failed to satisfy "
	          "constraint: 'Lifecycle policy validation failure: ");
	if ((rc == BERR_OK) != (p != NULL))
		abort();
	if (p)
		check_policy(p);
	lc_policy_free(p);

	err_clear(&err);
	rc = iam_repo_policy_validate(text, size, &err);
	check_err(rc, &err,
	          "Invalid parameter at 'PolicyText' failed to satisfy constraint: "
	          "'Invalid repository policy provided'");

	err_clear(&err);
	rc = iam_registry_policy_validate(text, size, &err);
	check_err(rc, &err,
	          "Invalid parameter at 'PolicyText' failed to satisfy constraint: "
	          "'Invalid registry policy provided'");
	return 0;
}
