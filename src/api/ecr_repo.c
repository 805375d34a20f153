/* ecr_repo.c - repository operations of the ECR door (spec §3.1, §3.5 lifecycle policy CRUD,
 * §2.5 resource tags). Settings changes are read-modify-write of one repository row inside a
 * write transaction, so concurrent TagResource calls cannot lose each other's tags. */
#include "../base/feat.h"

#include "ecr.h"
#include "../base/mem.h"
#include "../base/util.h"
#include "../core/policy.h"
#include "../oci/ref.h"

#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_RESOURCE_TAGS 50

static const char *const mutability_values[] = {"IMMUTABLE", "MUTABLE", "MUTABLE_WITH_EXCLUSION",
                                                "IMMUTABLE_WITH_EXCLUSION", NULL};

/* Starts a write transaction and loads the addressed repository. */
static enum berr_code repo_begin(struct ecr_call *c, struct meta_repo *r, struct berr *err)
{
	enum berr_code rc = c->m->ops->txn_begin(c->m, err);
	if (rc != BERR_OK)
		return rc;
	if ((rc = ep_repo(c, r, err)) != BERR_OK)
		c->m->ops->txn_rollback(c->m);
	return rc;
}

/* Saves r and commits (rolls back on failure). */
static enum berr_code repo_commit(struct ecr_call *c, const struct meta_repo *r, struct berr *err)
{
	enum berr_code rc = core_repo_save(c->m, r, err);
	if (rc == BERR_OK)
		rc = c->m->ops->txn_commit(c->m, err);
	if (rc != BERR_OK)
		c->m->ops->txn_rollback(c->m);
	return rc;
}

static void set_str(char **slot, const char *v)
{
	free(*slot);
	*slot = v ? xstrdup(v) : NULL;
}

static bool filter_chars_ok(const char *s)
{
	size_t n = strlen(s);
	if (n < 1 || n > 128)
		return false;
	for (; *s; s++) {
		char ch = *s;
		if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') ||
		      (ch >= 'A' && ch <= 'Z') || ch == '.' || ch == '_' || ch == '*' || ch == '-'))
			return false;
	}
	return true;
}

/* Validates imageTagMutability + imageTagMutabilityExclusionFilters; *filters_json receives
 * new JSON text (or NULL when there are no filters). */
static enum berr_code parse_mutability(json_t *in, bool required, const char **mut,
                                       char **filters_json, struct berr *err)
{
	const char *m = NULL;
	json_t *filters = NULL;
	const char *fname = "imageTagMutabilityExclusionFilters";
	enum berr_code rc = ep_enum(in, "imageTagMutability", required, mutability_values, &m, err);
	if (rc == BERR_OK)
		rc = ep_array(in, fname, false, 1, 5, &filters, err);
	if (rc != BERR_OK)
		return rc;
	size_t i;
	json_t *f;
	json_array_foreach (filters, i, f) {
		if (!json_is_object(f))
			return err_set(err, BERR_SERIALIZATION,
			               "Unexpected value type for member '%s': expected structure",
			               fname);
		json_t *type = json_object_get(f, "filterType");
		json_t *val = json_object_get(f, "filter");
		if (!json_is_string(type) || strcmp(json_string_value(type), "WILDCARD") != 0)
			return err_set(err, BERR_PARAM_INVALID,
			               "Invalid parameter at '%s' failed to satisfy constraint: "
			               "Invalid value for 'filterType' in mutability exclusion "
			               "filter: %s",
			               fname,
			               json_is_string(type) ? json_string_value(type) : "null");
		if (!json_is_string(val) || !filter_chars_ok(json_string_value(val)))
			return ep_invalid(err, fname,
			                  "Member must satisfy regular expression "
			                  "'^[0-9a-zA-Z._*-]{1,128}$'");
	}
	const char *eff = m ? m : "MUTABLE";
	bool with_excl = strstr(eff, "_WITH_EXCLUSION") != NULL;
	if (with_excl != (filters != NULL))
		return ep_invalid(err, fname,
		                  "ImageTagMutabilityExclusionFilters can't be null when "
		                  "imageTagMutability is set as %s",
		                  eff);
	*mut = eff;
	*filters_json = NULL;
	if (filters) {
		json_t *clean = json_array();
		json_array_foreach (filters, i, f) {
			json_array_append_new(clean,
			                      json_pack("{s:s, s:O}", "filterType", "WILDCARD",
			                                "filter", json_object_get(f, "filter")));
		}
		*filters_json = json_dumps(clean, JSON_COMPACT);
		json_decref(clean);
	}
	return BERR_OK;
}

/* Merges tags (array of {Key, Value}) into the JSON list *stored (insertion order kept,
 * existing keys overwritten). Enforces key/value limits and the 50-tag cap. */
static enum berr_code merge_tags(json_t *tags, char **stored, struct berr *err)
{
	json_t *cur = *stored ? json_loads(*stored, 0, NULL) : NULL;
	if (!json_is_array(cur)) {
		json_decref(cur);
		cur = json_array();
	}
	enum berr_code rc = BERR_OK;
	size_t i;
	json_t *t;
	json_array_foreach (tags, i, t) {
		json_t *k = json_object_get(t, "Key"), *v = json_object_get(t, "Value");
		if (!json_is_object(t) || !json_is_string(k) || (v && !json_is_string(v))) {
			rc = err_set(err, BERR_SERIALIZATION,
			             "Unexpected value type for member 'tags': expected Tag "
			             "structures with string Key and Value");
			goto out;
		}
		const char *key = json_string_value(k), *val = v ? json_string_value(v) : "";
		if (!*key || strlen(key) > 128 || strlen(val) > 256 ||
		    str_has_prefix(key, "aws:")) {
			rc = err_set(err, BERR_TAG_PARAM_INVALID,
			             "Tag key '%.128s' or its value is invalid: keys must be 1-128 "
			             "characters and not start with 'aws:', values at most 256 "
			             "characters",
			             key);
			goto out;
		}
		size_t j;
		json_t *e;
		bool found = false;
		json_array_foreach (cur, j, e) {
			if (strcmp(json_string_value(json_object_get(e, "Key")), key) == 0) {
				json_object_set_new(e, "Value", json_string(val));
				found = true;
				break;
			}
		}
		if (!found)
			json_array_append_new(cur,
			                      json_pack("{s:s, s:s}", "Key", key, "Value", val));
	}
	if (json_array_size(cur) > MAX_RESOURCE_TAGS) {
		rc = err_set(err, BERR_TOO_MANY_TAGS,
		             "The list of tags on the repository is over the limit. The maximum "
		             "number of tags that can be applied to a repository is 50.");
		goto out;
	}
	free(*stored);
	*stored = json_array_size(cur) ? json_dumps(cur, JSON_COMPACT) : NULL;
out:
	json_decref(cur);
	return rc;
}

static const char *const enc_values[] = {"AES256", "KMS", "KMS_DSSE", NULL};

enum berr_code ecr_create_repository(struct ecr_call *c, struct berr *err)
{
	struct meta_repo r = {0};
	const char *name = NULL, *mut = NULL, *enc_type = "AES256", *kms = NULL;
	char *filters = NULL;
	json_t *tags = NULL, *scan = NULL, *enc = NULL;
	bool scan_on_push = false;
	struct registry_id reg;
	enum berr_code rc;
	if ((rc = ep_repo_name(c->in, "repositoryName", &name, err)) != BERR_OK ||
	    (rc = ep_registry(c, true, name, &reg, err)) != BERR_OK ||
	    (rc = ep_array(c->in, "tags", false, 0, 0, &tags, err)) != BERR_OK ||
	    (rc = parse_mutability(c->in, false, &mut, &filters, err)) != BERR_OK ||
	    (rc = ep_object(c->in, "imageScanningConfiguration", false, &scan, err)) != BERR_OK ||
	    (rc = ep_bool(scan, "scanOnPush", &scan_on_push, err)) != BERR_OK ||
	    (rc = ep_object(c->in, "encryptionConfiguration", false, &enc, err)) != BERR_OK)
		goto out;
	if (enc &&
	    ((rc = ep_enum(enc, "encryptionType", true, enc_values, &enc_type, err)) != BERR_OK ||
	     (rc = ep_str(enc, "kmsKey", false, 1, 2048, &kms, err)) != BERR_OK))
		goto out;
	if (kms && strcmp(enc_type, "AES256") == 0) {
		rc = ep_invalid(err, "encryptionConfiguration",
		                "kmsKey can only be specified when encryptionType is KMS or "
		                "KMS_DSSE");
		goto out;
	}
	r.account = xstrdup(reg.account);
	r.region = xstrdup(reg.region);
	r.name = xstrdup(name);
	r.mutability = xstrdup(mut);
	r.mutability_filters = filters;
	filters = NULL;
	r.scan_on_push = scan_on_push;
	r.encryption_type = xstrdup(enc_type);
	if (kms) {
		r.kms_key = xstrdup(kms);
	} else if (strcmp(enc_type, "AES256") != 0) {
		/* ECR fills in the AWS-managed key's ARN. */
		char id[37];
		uuid_v4(id);
		r.kms_key = xasprintf("arn:%s:kms:%s:%s:key/%s", ecr_partition(reg.region),
		                      reg.region, reg.account, id);
	}
	if (tags && (rc = merge_tags(tags, &r.resource_tags, err)) != BERR_OK)
		goto out;
	if ((rc = core_repo_create(c->m, &r, err)) != BERR_OK)
		goto out;
	json_object_set_new(c->out, "repository", ecr_repository_json(&r));
out:
	free(filters);
	meta_repo_clear(&r);
	return rc;
}

struct repo_page {
	json_t *list;
	int64_t last_id;
	long long limit;
	long long n;
};

static int add_repo(void *ctx, const struct meta_repo *r)
{
	struct repo_page *p = ctx;
	if (p->n++ >= p->limit)
		return 1; /* the extra row only tells us there is a next page */
	json_array_append_new(p->list, ecr_repository_json(r));
	p->last_id = r->id;
	return 0;
}

enum berr_code ecr_describe_repositories(struct ecr_call *c, struct berr *err)
{
	struct registry_id reg;
	json_t *names = NULL;
	struct ep_page pg;
	enum berr_code rc;
	if ((rc = ep_array(c->in, "repositoryNames", false, 1, 100, &names, err)) != BERR_OK ||
	    (rc = ep_page(c->in, 1000, 100, &pg, err)) != BERR_OK ||
	    (rc = ep_registry(c, false, json_string_value(json_array_get(names, 0)), &reg, err)) !=
	        BERR_OK)
		return rc;
	json_t *list = json_array();
	json_object_set_new(c->out, "repositories", list);
	if (names) {
		if (pg.given)
			return ep_invalid(err, "nextToken",
			                  "nextToken and maxResults cannot be used with "
			                  "repositoryNames");
		size_t i;
		json_t *n;
		json_array_foreach (names, i, n) {
			if (!json_is_string(n))
				return err_set(err, BERR_SERIALIZATION,
				               "Unexpected value type in 'repositoryNames'");
			const char *name = json_string_value(n);
			if (strlen(name) < REPO_NAME_MIN || strlen(name) > REPO_NAME_MAX ||
			    !ref_repo_name_is_valid(name))
				return ep_invalid(err, "repositoryNames",
				                  "must satisfy regular expression '%s'",
				                  REF_REPO_NAME_PATTERN_MSG);
		}
		json_array_foreach (names, i, n) {
			struct meta_repo r = {0};
			if ((rc = core_repo_get(c->m, &reg, json_string_value(n), &r, err)) !=
			    BERR_OK)
				return rc;
			json_array_append_new(list, ecr_repository_json(&r));
			meta_repo_clear(&r);
		}
		return BERR_OK;
	}
	struct repo_page p = {list, 0, pg.limit, 0};
	rc = c->m->ops->repo_list(c->m, reg.account, reg.region, pg.after, pg.limit + 1, add_repo,
	                          &p, err);
	if (rc == BERR_OK && p.n > pg.limit)
		json_object_set_new(c->out, "nextToken", ep_token(p.last_id, 0));
	return rc;
}

enum berr_code ecr_delete_repository(struct ecr_call *c, struct berr *err)
{
	const char *name = NULL;
	bool force = false;
	struct registry_id reg;
	struct meta_repo r = {0};
	enum berr_code rc;
	if ((rc = ep_repo_name(c->in, "repositoryName", &name, err)) != BERR_OK ||
	    (rc = ep_registry(c, false, name, &reg, err)) != BERR_OK ||
	    (rc = ep_bool(c->in, "force", &force, err)) != BERR_OK)
		return rc;
	rc = core_repo_delete(c->core, c->m, &reg, name, force, &r, err);
	if (rc == BERR_OK)
		json_object_set_new(c->out, "repository", ecr_repository_json(&r));
	meta_repo_clear(&r);
	return rc;
}

static void echo_repo_id(struct ecr_call *c, const struct meta_repo *r)
{
	json_object_set_new(c->out, "registryId", json_string(r->account));
	json_object_set_new(c->out, "repositoryName", json_string(r->name));
}

enum berr_code ecr_put_image_tag_mutability(struct ecr_call *c, struct berr *err)
{
	const char *mut = NULL;
	char *filters = NULL;
	struct meta_repo r = {0};
	enum berr_code rc = parse_mutability(c->in, true, &mut, &filters, err);
	if (rc != BERR_OK)
		return rc;
	if ((rc = repo_begin(c, &r, err)) != BERR_OK)
		goto out;
	set_str(&r.mutability, mut);
	free(r.mutability_filters);
	r.mutability_filters = filters;
	filters = NULL;
	if ((rc = repo_commit(c, &r, err)) != BERR_OK)
		goto out;
	echo_repo_id(c, &r);
	json_object_set_new(c->out, "imageTagMutability", json_string(r.mutability));
	if (r.mutability_filters)
		json_object_set_new(c->out, "imageTagMutabilityExclusionFilters",
		                    json_loads(r.mutability_filters, 0, NULL));
out:
	free(filters);
	meta_repo_clear(&r);
	return rc;
}

enum berr_code ecr_put_image_scanning_configuration(struct ecr_call *c, struct berr *err)
{
	json_t *scan = NULL;
	bool on = false;
	struct meta_repo r = {0};
	enum berr_code rc;
	if ((rc = ep_object(c->in, "imageScanningConfiguration", true, &scan, err)) != BERR_OK ||
	    (rc = ep_bool(scan, "scanOnPush", &on, err)) != BERR_OK ||
	    (rc = repo_begin(c, &r, err)) != BERR_OK)
		return rc;
	r.scan_on_push = on;
	if ((rc = repo_commit(c, &r, err)) == BERR_OK) {
		echo_repo_id(c, &r);
		json_object_set_new(c->out, "imageScanningConfiguration",
		                    json_pack("{s:b}", "scanOnPush", on));
	}
	meta_repo_clear(&r);
	return rc;
}

enum berr_code ecr_set_repository_policy(struct ecr_call *c, struct berr *err)
{
	const char *text = NULL;
	bool force = false;
	struct meta_repo r = {0};
	enum berr_code rc;
	if ((rc = ep_str(c->in, "policyText", true, 0, 10240, &text, err)) != BERR_OK ||
	    (rc = ep_bool(c->in, "force", &force, err)) != BERR_OK ||
	    (rc = repo_begin(c, &r, err)) != BERR_OK)
		return rc;
	if ((rc = iam_repo_policy_validate(text, strlen(text), err)) != BERR_OK) {
		c->m->ops->txn_rollback(c->m);
		goto out;
	}
	set_str(&r.policy, text);
	if ((rc = repo_commit(c, &r, err)) == BERR_OK) {
		echo_repo_id(c, &r);
		json_object_set_new(c->out, "policyText", json_string(text));
	}
out:
	meta_repo_clear(&r);
	return rc;
}

static enum berr_code policy_missing(struct berr *err, const struct meta_repo *r)
{
	return err_set(err, BERR_REPO_POLICY_NOT_FOUND,
	               "Repository policy does not exist for the repository with name '%s' in the "
	               "registry with id '%s'",
	               r->name, r->account);
}

enum berr_code ecr_get_repository_policy(struct ecr_call *c, struct berr *err)
{
	struct meta_repo r = {0};
	enum berr_code rc = ep_repo(c, &r, err);
	if (rc == BERR_OK && !r.policy)
		rc = policy_missing(err, &r);
	if (rc == BERR_OK) {
		echo_repo_id(c, &r);
		json_object_set_new(c->out, "policyText", json_string(r.policy));
	}
	meta_repo_clear(&r);
	return rc;
}

enum berr_code ecr_delete_repository_policy(struct ecr_call *c, struct berr *err)
{
	struct meta_repo r = {0};
	enum berr_code rc = repo_begin(c, &r, err);
	if (rc != BERR_OK)
		return rc;
	if (!r.policy) {
		c->m->ops->txn_rollback(c->m);
		rc = policy_missing(err, &r);
		goto out;
	}
	char *old = r.policy;
	r.policy = NULL;
	if ((rc = repo_commit(c, &r, err)) == BERR_OK) {
		echo_repo_id(c, &r);
		json_object_set_new(c->out, "policyText", json_string(old));
	}
	free(old);
out:
	meta_repo_clear(&r);
	return rc;
}

/* Resolves resourceArn to a repository, inside a write transaction when write is set. */
static enum berr_code arn_repo(struct ecr_call *c, bool write, struct meta_repo *r,
                               struct berr *err)
{
	const char *arn = NULL;
	enum berr_code rc = ep_str(c->in, "resourceArn", true, 0, 0, &arn, err);
	if (rc != BERR_OK)
		return rc;
	regex_t re;
	regmatch_t mt[5];
	if (regcomp(&re, "^arn:([^:]+):ecr:([^:]+):([^:]+):repository/(.*)$", REG_EXTENDED) != 0)
		return err_set(err, BERR_INTERNAL, "regex");
	int nomatch = regexec(&re, arn, 5, mt, 0);
	regfree(&re);
	if (nomatch)
		return ep_invalid(err, "resourceArn", "Invalid ARN");
	struct registry_id reg = c->caller;
	int alen = (int)(mt[3].rm_eo - mt[3].rm_so);
	snprintf(reg.account, sizeof(reg.account), "%.*s", alen, arn + mt[3].rm_so);
	const char *name = arn + mt[4].rm_so;
	if ((rc = api_access_check(c->srv, c->caller.account, &reg, c->action, name, err)) !=
	    BERR_OK)
		return rc;
	if (write && (rc = c->m->ops->txn_begin(c->m, err)) != BERR_OK)
		return rc;
	rc = core_repo_get(c->m, &reg, name, r, err);
	if (rc != BERR_OK && write)
		c->m->ops->txn_rollback(c->m);
	return rc;
}

enum berr_code ecr_tag_resource(struct ecr_call *c, struct berr *err)
{
	json_t *tags = NULL;
	struct meta_repo r = {0};
	enum berr_code rc = ep_array(c->in, "tags", true, 0, 0, &tags, err);
	if (rc != BERR_OK || (rc = arn_repo(c, true, &r, err)) != BERR_OK)
		return rc;
	if ((rc = merge_tags(tags, &r.resource_tags, err)) != BERR_OK)
		c->m->ops->txn_rollback(c->m);
	else
		rc = repo_commit(c, &r, err);
	meta_repo_clear(&r);
	return rc;
}

enum berr_code ecr_untag_resource(struct ecr_call *c, struct berr *err)
{
	json_t *keys = NULL;
	struct meta_repo r = {0};
	enum berr_code rc = ep_array(c->in, "tagKeys", true, 0, 0, &keys, err);
	if (rc != BERR_OK)
		return rc;
	size_t i;
	json_t *k;
	json_array_foreach (keys, i, k) {
		if (!json_is_string(k))
			return err_set(err, BERR_SERIALIZATION,
			               "Unexpected value type in 'tagKeys': expected string");
	}
	if ((rc = arn_repo(c, true, &r, err)) != BERR_OK)
		return rc;
	json_t *cur = r.resource_tags ? json_loads(r.resource_tags, 0, NULL) : json_array();
	json_t *kept = json_array();
	size_t j;
	json_t *t;
	json_array_foreach (cur, j, t) {
		const char *tk = json_string_value(json_object_get(t, "Key"));
		bool drop = false;
		json_array_foreach (keys, i, k)
			drop = drop || (tk && strcmp(tk, json_string_value(k)) == 0);
		if (!drop)
			json_array_append(kept, t);
	}
	free(r.resource_tags);
	r.resource_tags = json_array_size(kept) ? json_dumps(kept, JSON_COMPACT) : NULL;
	json_decref(cur);
	json_decref(kept);
	rc = repo_commit(c, &r, err);
	meta_repo_clear(&r);
	return rc;
}

enum berr_code ecr_list_tags_for_resource(struct ecr_call *c, struct berr *err)
{
	struct meta_repo r = {0};
	enum berr_code rc = arn_repo(c, false, &r, err);
	if (rc != BERR_OK)
		return rc;
	json_t *tags = r.resource_tags ? json_loads(r.resource_tags, 0, NULL) : NULL;
	json_object_set_new(c->out, "tags", tags ? tags : json_array());
	meta_repo_clear(&r);
	return BERR_OK;
}

static enum berr_code lifecycle_missing(struct berr *err, const struct meta_repo *r)
{
	return err_set(err, BERR_LIFECYCLE_NOT_FOUND,
	               "Lifecycle policy does not exist for the repository with name '%s' in the "
	               "registry with id '%s'",
	               r->name, r->account);
}

enum berr_code ecr_put_lifecycle_policy(struct ecr_call *c, struct berr *err)
{
	const char *text = NULL;
	struct meta_repo r = {0};
	enum berr_code rc = ep_str(c->in, "lifecyclePolicyText", true, LC_POLICY_MIN_LEN,
	                           LC_POLICY_MAX_LEN, &text, err);
	if (rc != BERR_OK || (rc = repo_begin(c, &r, err)) != BERR_OK)
		return rc;
	if ((rc = lc_policy_parse(text, strlen(text), NULL, err)) != BERR_OK) {
		c->m->ops->txn_rollback(c->m);
		goto out;
	}
	set_str(&r.lifecycle_policy, text);
	if ((rc = repo_commit(c, &r, err)) == BERR_OK) {
		echo_repo_id(c, &r);
		json_object_set_new(c->out, "lifecyclePolicyText", json_string(text));
	}
out:
	meta_repo_clear(&r);
	return rc;
}

static void echo_lifecycle(struct ecr_call *c, const struct meta_repo *r, const char *text)
{
	echo_repo_id(c, r);
	json_object_set_new(c->out, "lifecyclePolicyText", json_string(text));
	json_object_set_new(c->out, "lastEvaluatedAt", ecr_time(r->lifecycle_evaluated_at));
}

enum berr_code ecr_get_lifecycle_policy(struct ecr_call *c, struct berr *err)
{
	struct meta_repo r = {0};
	enum berr_code rc = ep_repo(c, &r, err);
	if (rc == BERR_OK && !r.lifecycle_policy)
		rc = lifecycle_missing(err, &r);
	if (rc == BERR_OK)
		echo_lifecycle(c, &r, r.lifecycle_policy);
	meta_repo_clear(&r);
	return rc;
}

enum berr_code ecr_delete_lifecycle_policy(struct ecr_call *c, struct berr *err)
{
	struct meta_repo r = {0};
	enum berr_code rc = repo_begin(c, &r, err);
	if (rc != BERR_OK)
		return rc;
	if (!r.lifecycle_policy) {
		c->m->ops->txn_rollback(c->m);
		rc = lifecycle_missing(err, &r);
		goto out;
	}
	char *old = r.lifecycle_policy;
	r.lifecycle_policy = NULL;
	if ((rc = repo_commit(c, &r, err)) == BERR_OK)
		echo_lifecycle(c, &r, old);
	free(old);
out:
	meta_repo_clear(&r);
	return rc;
}

/* ---- lifecycle policy preview (spec §3.5) ---- */

enum berr_code ecr_start_lifecycle_policy_preview(struct ecr_call *c, struct berr *err)
{
	const char *text = NULL;
	struct meta_repo r = {0};
	enum berr_code rc = ep_str(c->in, "lifecyclePolicyText", false, LC_POLICY_MIN_LEN,
	                           LC_POLICY_MAX_LEN, &text, err);
	if (rc != BERR_OK || (rc = ep_repo(c, &r, err)) != BERR_OK)
		return rc;
	/* Evaluation is fast enough to finish within the call: the stored preview is COMPLETE
	 * at once, while the response says IN_PROGRESS as ECR's does. */
	rc = core_lifecycle_preview(c->core, c->m, &r, text, clock_now_ms(), err);
	if (rc == BERR_OK) {
		echo_repo_id(c, &r);
		json_object_set_new(c->out, "lifecyclePolicyText",
		                    json_string(text ? text : r.lifecycle_policy));
		json_object_set_new(c->out, "status", json_string("IN_PROGRESS"));
	}
	meta_repo_clear(&r);
	return rc;
}

static const char *const preview_tag_status[] = {"TAGGED", "UNTAGGED", "ANY", NULL};

/* True if preview result e is selected by the request's imageIds (NULL = all). */
static bool preview_selected(json_t *e, json_t *ids)
{
	if (!ids)
		return true;
	const char *d = json_string_value(json_object_get(e, "d"));
	json_t *tags = json_object_get(e, "t");
	size_t i;
	json_t *id;
	json_array_foreach (ids, i, id) {
		const char *wd = json_string_value(json_object_get(id, "imageDigest"));
		const char *wt = json_string_value(json_object_get(id, "imageTag"));
		bool ok = !wd || (d && strcmp(wd, d) == 0);
		if (ok && wt) {
			bool has = false;
			size_t j;
			json_t *t;
			json_array_foreach (tags, j, t)
				has = has || strcmp(json_string_value(t), wt) == 0;
			ok = has;
		}
		if (ok && (wd || wt))
			return true;
	}
	return false;
}

enum berr_code ecr_get_lifecycle_policy_preview(struct ecr_call *c, struct berr *err)
{
	json_t *ids = NULL, *filter = NULL;
	const char *ts = NULL;
	struct ep_page pg;
	struct meta_repo r = {0};
	char *policy = NULL, *status = NULL, *results = NULL;
	enum berr_code rc;
	if ((rc = ep_array(c->in, "imageIds", false, 1, 100, &ids, err)) != BERR_OK ||
	    (rc = ep_object(c->in, "filter", false, &filter, err)) != BERR_OK ||
	    (rc = ep_enum(filter, "tagStatus", false, preview_tag_status, &ts, err)) != BERR_OK ||
	    (rc = ep_page(c->in, 100, 100, &pg, err)) != BERR_OK)
		return rc;
	if (ids && pg.given)
		return ep_invalid(err, "nextToken", "nextToken cannot be used with imageIds");
	if ((rc = ep_repo(c, &r, err)) != BERR_OK)
		return rc;
	rc = c->m->ops->preview_get(c->m, r.id, &policy, &status, &results, err);
	if (rc == BERR_NOT_FOUND) {
		rc = err_set(err, BERR_PREVIEW_NOT_FOUND,
		             "Lifecycle policy preview does not exist for the repository with name "
		             "'%s' in the registry with id '%s'",
		             r.name, r.account);
		goto out;
	}
	if (rc != BERR_OK)
		goto out;
	json_t *all = json_loads(results, 0, NULL);
	json_t *page = json_array();
	int64_t expiring = 0, transitioning = 0;
	size_t i, shown = 0, idx = 0;
	json_t *e;
	bool more = false;
	json_array_foreach (all, i, e) {
		bool expire = strcmp(json_string_value(json_object_get(e, "a")), "EXPIRE") == 0;
		expire ? expiring++ : transitioning++;
		size_t nt = json_array_size(json_object_get(e, "t"));
		if (ts && ((strcmp(ts, "TAGGED") == 0 && nt == 0) ||
		           (strcmp(ts, "UNTAGGED") == 0 && nt > 0)))
			continue;
		if (!preview_selected(e, ids))
			continue;
		if ((int64_t)idx++ < pg.after)
			continue; /* the token counts results already returned */
		if ((long long)shown >= pg.limit) {
			more = true;
			continue;
		}
		json_t *res = json_pack("{s:s, s:O, s:{s:s}, s:O, s:s}", "imageDigest",
		                        json_string_value(json_object_get(e, "d")), "imagePushedAt",
		                        json_object_get(e, "p"), "action", "type",
		                        expire ? "EXPIRE" : "TRANSITION", "appliedRulePriority",
		                        json_object_get(e, "r"), "storageClass",
		                        json_string_value(json_object_get(e, "c")));
		json_object_set_new(res, "imagePushedAt",
		                    ecr_time(json_integer_value(json_object_get(e, "p"))));
		if (!expire)
			json_object_set_new(json_object_get(res, "action"), "targetStorageClass",
			                    json_string("ARCHIVE"));
		if (nt)
			json_object_set(res, "imageTags", json_object_get(e, "t"));
		json_array_append_new(page, res);
		shown++;
	}
	echo_repo_id(c, &r);
	json_object_set_new(c->out, "lifecyclePolicyText", json_string(policy));
	json_object_set_new(c->out, "status", json_string(status));
	json_object_set_new(c->out, "previewResults", page);
	json_t *summary = json_pack("{s:I}", "expiringImageTotalCount", (json_int_t)expiring);
	if (transitioning)
		json_object_set_new(summary, "transitioningImageTotalCounts",
		                    json_pack("[{s:s, s:I}]", "targetStorageClass", "ARCHIVE",
		                              "imageTotalCount", (json_int_t)transitioning));
	json_object_set_new(c->out, "summary", summary);
	if (more)
		json_object_set_new(c->out, "nextToken", ep_token(pg.after + (int64_t)shown, 0));
	json_decref(all);
out:
	free(policy);
	free(status);
	free(results);
	meta_repo_clear(&r);
	return rc;
}
