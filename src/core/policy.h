/* policy.h - parsing/validation of policy documents: ECR lifecycle policies (§4.5 of
 * shared/spec/ECR-API.md) and IAM-style repository/registry permission policies. Pure. */
#ifndef BERTH_POLICY_H
#define BERTH_POLICY_H

#include "../base/err.h"

#include <stdbool.h>
#include <stddef.h>

enum lc_tag_status { LC_TAGGED, LC_UNTAGGED, LC_ANY };
enum lc_count_type {
	LC_IMAGE_COUNT_MORE_THAN,
	LC_SINCE_IMAGE_PUSHED,
	LC_SINCE_IMAGE_PULLED,
	LC_SINCE_IMAGE_TRANSITIONED,
};
enum lc_storage_class { LC_STANDARD, LC_ARCHIVE };
enum lc_action { LC_EXPIRE, LC_TRANSITION };

struct lc_rule {
	int priority;
	char *description; /* may be NULL */
	enum lc_tag_status tag_status;
	char **tag_prefixes; /* NULL-terminated array or NULL */
	size_t nprefixes;
	char **tag_patterns; /* NULL-terminated array or NULL */
	size_t npatterns;
	enum lc_storage_class storage_class;
	enum lc_count_type count_type;
	long long count_number;
	enum lc_action action;
};

struct lc_policy {
	struct lc_rule *rules; /* sorted by priority ascending */
	size_t nrules;
};

#define LC_POLICY_MIN_LEN 100
#define LC_POLICY_MAX_LEN 30720
#define LC_MAX_RULES 50

/* Validates a lifecycle policy text exactly as §4.5.1-4.5.2 describe (schema checks in the
 * listed order, first failure wins, then semantic checks). On failure returns
 * BERR_PARAM_INVALID with msg set to the FULL ECR message:
 *   "Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint: 'Lifecycle policy
 *    validation failure: <detail>'"  (closing quote present or absent per the table).
 * Length (100..30720) is checked by the caller, not here. On success *out (if out != NULL) is a
 * new policy (lc_policy_free). */
enum berr_code lc_policy_parse(const char *text, size_t len, struct lc_policy **out,
                               struct berr *err);
void lc_policy_free(struct lc_policy *p);

/* Repository policy (SetRepositoryPolicy) validation per spec §3.1. On failure
 * BERR_PARAM_INVALID with "Invalid parameter at 'PolicyText' failed to satisfy constraint:
 * 'Invalid repository policy provided'". */
enum berr_code iam_repo_policy_validate(const char *text, size_t len, struct berr *err);
/* Registry policy (PutRegistryPolicy) validation per spec §3.7. On failure BERR_PARAM_INVALID
 * with "... 'Invalid registry policy provided'". */
enum berr_code iam_registry_policy_validate(const char *text, size_t len, struct berr *err);

#endif
