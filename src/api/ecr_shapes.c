/* ecr_shapes.c - JSON shapes shared by several ECR operations (spec §2, Appendix C). */
#include "../base/feat.h"

#include "ecr.h"
#include "../base/mem.h"
#include "../base/util.h"

#include <stdlib.h>
#include <string.h>

const char *ecr_partition(const char *region)
{
	return api_partition(region);
}

const char *ecr_dns_suffix(const char *region)
{
	if (str_has_prefix(region, "cn-"))
		return "amazonaws.com.cn";
	if (str_has_prefix(region, "us-isob-"))
		return "sc2s.sgov.gov";
	if (str_has_prefix(region, "us-iso-"))
		return "c2s.ic.gov";
	return "amazonaws.com";
}

json_t *ecr_time(int64_t ms)
{
	return json_real((double)ms / 1000.0);
}

json_t *ecr_repository_json(const struct meta_repo *r)
{
	char *arn = xasprintf("arn:%s:ecr:%s:%s:repository/%s", ecr_partition(r->region), r->region,
	                      r->account, r->name);
	char *uri = xasprintf("%s.dkr.ecr.%s.%s/%s", r->account, r->region,
	                      ecr_dns_suffix(r->region), r->name);
	json_t *enc = json_pack("{s:s}", "encryptionType", r->encryption_type);
	if (r->kms_key)
		json_object_set_new(enc, "kmsKey", json_string(r->kms_key));
	json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:o, s:s, s:{s:b}, s:o}", "repositoryArn", arn,
	                      "registryId", r->account, "repositoryName", r->name, "repositoryUri",
	                      uri, "createdAt", ecr_time(r->created_at), "imageTagMutability",
	                      r->mutability, "imageScanningConfiguration", "scanOnPush",
	                      r->scan_on_push, "encryptionConfiguration", enc);
	if (r->mutability_filters) {
		json_t *f = json_loads(r->mutability_filters, 0, NULL);
		if (f)
			json_object_set_new(o, "imageTagMutabilityExclusionFilters", f);
	}
	free(arn);
	free(uri);
	return o;
}

void ecr_time_raw(struct buf *b, int64_t ms)
{
	/* Seconds with millisecond precision, as json_real would print them but without
	 * floating-point formatting on the hot path. */
	if (ms < 0)
		ms = 0;
	buf_printf(b, NULL, "%lld.%03lld", (long long)(ms / 1000), (long long)(ms % 1000));
}
