/* access.c - cross-account isolation, shared by both doors.
 *
 * With --credentials every caller is an account (the one its access key maps to, or the one
 * its registry token names). Amazon ECR lets a principal reach another account's registry only
 * when a resource-based policy (repository or registry policy) of that account allows the
 * action; berth stores those policies but does not evaluate them yet, so until it does, no
 * policy allows anything: a request that names another account's registry (ECR registryId or
 * resourceArn, /v2 Host) is refused with ECR's AccessDeniedException text, whatever the
 * operation, before anything is read or written.
 *
 * Without --credentials there are no principals at all (any signature is accepted, /v2 is
 * anonymous): every caller can already do anything to the default account, so refusing other
 * accounts would protect nothing, and registryId and Host stay the way to address them (as in
 * moto and other local ECR stand-ins). */
#include "../base/feat.h"

#include "api.h"
#include "../base/util.h"

#include <string.h>

const char *api_partition(const char *region)
{
	if (str_has_prefix(region, "cn-"))
		return "aws-cn";
	if (str_has_prefix(region, "us-gov-"))
		return "aws-us-gov";
	if (str_has_prefix(region, "us-isob-"))
		return "aws-iso-b";
	if (str_has_prefix(region, "us-iso-"))
		return "aws-iso";
	return "aws";
}

enum berr_code api_access_check(const struct api_server *s, const char *caller_account,
                                const struct registry_id *target, const char *action,
                                const char *repo, struct berr *err)
{
	if (!s->creds || strcmp(caller_account, target->account) == 0)
		return BERR_OK;
	/* berth has no IAM users yet: the caller is its account's root principal. */
	const char *part = api_partition(target->region);
	return err_set(err, BERR_DENIED,
	               "User: arn:%s:iam::%s:root is not authorized to perform: ecr:%s on "
	               "resource: arn:%s:ecr:%s:%s:repository/%s because no resource-based policy "
	               "allows the ecr:%s action",
	               part, caller_account, action, part, target->region, target->account,
	               repo && *repo ? repo : "*", action);
}
