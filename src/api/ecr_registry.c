/* ecr_registry.c - registry-level ECR operations (spec §3.4, §3.6, §3.7, §4.7, §4.8):
 * authorization tokens, the registry policy, replication and scanning configuration, the
 * effective scanning settings of repositories, and account settings.
 *
 * State is kept as registry documents of the caller's registry (core_doc_*), one per name:
 *   "registry_policy"  the policy text exactly as put (returned verbatim by Get/Delete)
 *   "replication"      {"rules":[{"destinations":[{"region","registryId"}],
 *                                 "repositoryFilters":[{"filter","filterType"}]}]}
 *   "scanning"         {"scanType":"BASIC|ENHANCED",
 *                       "rules":[{"scanFrequency","repositoryFilters":[{"filter","filterType"}]}]}
 *   "setting:<NAME>"   {"name":"<NAME>","value":"<VALUE>"}
 * An absent document means the default. Structured documents are re-serialised from the
 * validated request, so unknown request members never reach storage. Effective per-repository
 * scanning settings are computed on read from "scanning" and the repository's legacy
 * scan_on_push flag, so new repositories and configuration changes apply immediately.
 *
 * Validation follows the order of §1.5 across the whole request: each check function runs once
 * per phase (JSON types, then required members, then lengths/enums/patterns/list sizes), so a
 * type error anywhere wins over a missing member, which wins over a bad value. Semantic checks
 * (frequency/scan-type combinations, replication destinations) come last. */
#include "../base/feat.h"

#include "ecr.h"
#include "../base/mem.h"
#include "../base/util.h"
#include "../core/policy.h"
#include "../crypto/sha256.h"
#include "../crypto/token.h"
#include "../oci/ref.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DOC_REGISTRY_POLICY "registry_policy"
#define DOC_REPLICATION "replication"
#define DOC_SCANNING "scanning"
#define DOC_SETTING_PREFIX "setting:"

#define REGISTRY_POLICY_MAX 10240
#define AUTH_IDS_MAX 10
#define REPL_MAX_RULES 10
#define REPL_MAX_DESTINATIONS 25 /* per rule and unique across the configuration */
#define REPL_MAX_FILTERS 100
#define SCAN_MAX_RULES 2
#define SCAN_MAX_FILTERS 100
#define SCAN_FILTER_MAX 255 /* model: ScanningRepositoryFilterValue 1..255 */
#define SCAN_BATCH_MAX 25

#define REGISTRY_ID_PATTERN "[0-9]{12}"
#define REGION_PATTERN "[0-9a-z-]{2,25}"
#define REPL_FILTER_PATTERN "^(?:[a-z0-9]+(?:[._-][a-z0-9]*)*/)*[a-z0-9]*(?:[._-][a-z0-9]*)*$"
#define SCAN_FILTER_PATTERN "^[a-z0-9*](?:[._\\-/a-z0-9*]?[a-z0-9*]+)*$"

static const char *const scan_types[] = {"BASIC", "ENHANCED", NULL};
static const char *const scan_frequencies[] = {"SCAN_ON_PUSH", "CONTINUOUS_SCAN", "MANUAL", NULL};
static const char *const wildcard_only[] = {"WILDCARD", NULL};
static const char *const prefix_match_only[] = {"PREFIX_MATCH", NULL};

/* ---- phased validation ---- */

enum phase { PH_TYPE, PH_REQUIRED, PH_VALUE };

enum kind { K_STR, K_ARR, K_OBJ };

/* One pass of a request check; values extracted in PH_VALUE are reliable. */
typedef enum berr_code (*check_fn)(json_t *in, enum phase ph, void *ctx, struct berr *err);

static enum berr_code validate(check_fn fn, json_t *in, void *ctx, struct berr *err)
{
	static const enum phase phases[] = {PH_TYPE, PH_REQUIRED, PH_VALUE};
	for (size_t i = 0; i < ARRAY_LEN(phases); i++) {
		enum berr_code rc = fn(in, phases[i], ctx, err);
		if (rc != BERR_OK)
			return rc;
	}
	return BERR_OK;
}

static json_t *member(json_t *obj, const char *name)
{
	json_t *v = json_object_get(obj, name);
	return json_is_null(v) ? NULL : v;
}

/* PH_TYPE: a present member must be of kind k. Later phases: a required member must be present.
 * *out = the member (borrowed) or NULL. */
static enum berr_code v_member(json_t *obj, const char *name, enum kind k, bool required,
                               enum phase ph, json_t **out, struct berr *err)
{
	static const char *const want[] = {"string", "list", "structure"};
	json_t *v = member(obj, name);
	*out = v;
	if (ph == PH_TYPE) {
		bool ok = !v || (k == K_STR && json_is_string(v)) ||
		          (k == K_ARR && json_is_array(v)) || (k == K_OBJ && json_is_object(v));
		if (!ok) {
			*out = NULL;
			return err_set(err, BERR_SERIALIZATION,
			               "Unexpected value type for member '%s': expected %s", name,
			               want[k]);
		}
		return BERR_OK;
	}
	if (!v && required)
		return ep_invalid(err, name, "Member must not be null");
	return BERR_OK;
}

static enum berr_code v_str(json_t *obj, const char *name, bool required, size_t min, size_t max,
                            enum phase ph, const char **out, struct berr *err)
{
	json_t *v = NULL;
	enum berr_code rc = v_member(obj, name, K_STR, required, ph, &v, err);
	if (rc != BERR_OK || ph != PH_VALUE)
		return rc;
	return ep_str(obj, name, required, min, max, out, err);
}

static enum berr_code v_enum(json_t *obj, const char *name, bool required,
                             const char *const *values, enum phase ph, const char **out,
                             struct berr *err)
{
	json_t *v = NULL;
	enum berr_code rc = v_member(obj, name, K_STR, required, ph, &v, err);
	if (rc != BERR_OK || ph != PH_VALUE)
		return rc;
	return ep_enum(obj, name, required, values, out, err);
}

/* *out is set in every phase (once PH_TYPE passed) so callers can descend into the items. */
static enum berr_code v_arr(json_t *obj, const char *name, bool required, size_t min, size_t max,
                            enum phase ph, json_t **out, struct berr *err)
{
	enum berr_code rc = v_member(obj, name, K_ARR, required, ph, out, err);
	if (rc != BERR_OK || ph != PH_VALUE || !*out)
		return rc;
	return ep_array(obj, name, required, min, max, out, err);
}

/* List items are checked as if they were the list member itself, so messages name the list
 * (as ECR's do): a null item is "must not be null", a wrong item type a SerializationException. */
static enum berr_code v_item_obj(const char *list, json_t *item, enum phase ph, json_t **out,
                                 struct berr *err)
{
	json_t *w = json_object();
	json_object_set(w, list, item);
	enum berr_code rc = v_member(w, list, K_OBJ, true, ph, out, err);
	json_decref(w);
	return rc; /* *out borrowed from item, which outlives w */
}

static enum berr_code v_item_str(const char *list, json_t *item, size_t min, size_t max,
                                 enum phase ph, const char **out, struct berr *err)
{
	json_t *w = json_object();
	json_object_set(w, list, item);
	enum berr_code rc = v_str(w, list, true, min, max, ph, out, err);
	json_decref(w);
	return rc;
}

static bool is_registry_id(const char *s)
{
	size_t n = 0;
	for (; s[n]; n++)
		if (s[n] < '0' || s[n] > '9')
			return false;
	return n == 12;
}

static bool is_lower_alnum(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9');
}

/* [0-9a-z-]{2,25} (length checked by the caller). */
static bool is_region(const char *s)
{
	for (; *s; s++)
		if (!is_lower_alnum(*s) && *s != '-')
			return false;
	return true;
}

/* REPL_FILTER_PATTERN. It reduces to: '/'-separated components over [a-z0-9._-]; every
 * component followed by a '/' is non-empty and starts with [a-z0-9]; the last component is any
 * run of [a-z0-9._-], possibly empty. */
static bool is_repl_filter(const char *s)
{
	bool comp_start = true;
	for (; *s; s++) {
		char ch = *s;
		if (ch == '/') {
			if (comp_start)
				return false;
			comp_start = true;
			continue;
		}
		if (comp_start && !is_lower_alnum(ch)) {
			/* a separator may open only the last component */
			if (strchr(s, '/'))
				return false;
		}
		if (!is_lower_alnum(ch) && ch != '.' && ch != '_' && ch != '-')
			return false;
		comp_start = false;
	}
	return true;
}

/* SCAN_FILTER_PATTERN = A(S?A+)* with A = [a-z0-9*], S = [._/-]: characters from A and S,
 * first and last from A, no two separators in a row. */
static bool is_scan_filter(const char *s)
{
	bool prev_sep = true; /* forbids a leading separator */
	if (!*s)
		return false;
	for (; *s; s++) {
		bool a = is_lower_alnum(*s) || *s == '*';
		bool sep = *s == '.' || *s == '_' || *s == '-' || *s == '/';
		if (!a && !sep)
			return false;
		if (sep && prev_sep)
			return false;
		prev_sep = sep;
	}
	return !prev_sep;
}

/* ---- registry documents ---- */

/* *out = the parsed JSON object document or NULL when absent. */
static enum berr_code doc_load(struct ecr_call *c, const char *name, json_t **out, struct berr *err)
{
	char *text = NULL;
	*out = NULL;
	enum berr_code rc = core_doc_get(c->m, &c->caller, name, &text, err);
	if (rc == BERR_NOT_FOUND) {
		err_clear(err);
		return BERR_OK;
	}
	if (rc != BERR_OK)
		return rc;
	json_t *v = json_loads(text, 0, NULL);
	free(text);
	if (!json_is_object(v)) {
		json_decref(v);
		return err_set(err, BERR_INTERNAL, "registry document '%s' is corrupt", name);
	}
	*out = v;
	return BERR_OK;
}

static enum berr_code doc_store(struct ecr_call *c, const char *name, const json_t *v,
                                struct berr *err)
{
	char *text = json_dumps(v, JSON_COMPACT);
	if (!text)
		return err_set(err, BERR_INTERNAL, "cannot serialise registry document '%s'", name);
	enum berr_code rc = core_doc_put(c->m, &c->caller, name, text, err);
	free(text);
	return rc;
}

/* ---- GetAuthorizationToken (§3.4, §4.11) ---- */

static enum berr_code auth_check(json_t *in, enum phase ph, void *ctx, struct berr *err)
{
	json_t **ids = ctx, *item;
	size_t i;
	enum berr_code rc = v_arr(in, "registryIds", false, 1, AUTH_IDS_MAX, ph, ids, err);
	if (rc != BERR_OK)
		return rc;
	json_array_foreach (*ids, i, item) {
		const char *id = NULL;
		if ((rc = v_item_str("registryIds", item, 0, 0, ph, &id, err)) != BERR_OK)
			return rc;
		if (ph == PH_VALUE && id && !is_registry_id(id))
			return ep_invalid(err, "registryIds",
			                  "must satisfy regular expression '%s'",
			                  REGISTRY_ID_PATTERN);
	}
	return BERR_OK;
}

/* The token always names the caller's account: it authorises the principal, not the registry
 * in proxyEndpoint, so asking for another registry id cannot mint access to that account (with
 * --credentials, /v2 refuses that proxyEndpoint's Host for this token: access.c). ECR answers
 * any registryIds, since ecr:GetAuthorizationToken has no resource to deny on. */
static json_t *auth_data(struct ecr_call *c, const char *account, int64_t expires_s)
{
	struct token_claims claims = {.expires_at = expires_s};
	snprintf(claims.account, sizeof(claims.account), "%.12s", c->caller.account);
	snprintf(claims.region, sizeof(claims.region), "%s", c->caller.region);
	char *password = token_issue(c->core->secret, sizeof c->core->secret, &claims);
	char *basic = xasprintf("AWS:%s", password);
	char *token = base64_encode(basic, strlen(basic));
	char *endpoint = xasprintf("https://%s.dkr.ecr.%s.%s", account, c->caller.region,
	                           ecr_dns_suffix(c->caller.region));
	json_t *o = json_pack("{s:s, s:o, s:s}", "authorizationToken", token, "expiresAt",
	                      ecr_time(expires_s * 1000), "proxyEndpoint", endpoint);
	free(endpoint);
	free(token);
	free(basic);
	free(password);
	return o;
}

enum berr_code ecr_get_authorization_token(struct ecr_call *c, struct berr *err)
{
	json_t *ids = NULL, *item;
	size_t i;
	enum berr_code rc = validate(auth_check, c->in, &ids, err);
	if (rc != BERR_OK)
		return rc;
	int64_t expires_s = clock_now_ms() / 1000 + TOKEN_TTL_S;
	json_t *list = json_array();
	if (!ids)
		json_array_append_new(list, auth_data(c, c->caller.account, expires_s));
	json_array_foreach (ids, i, item) {
		json_array_append_new(list, auth_data(c, json_string_value(item), expires_s));
	}
	json_object_set_new(c->out, "authorizationData", list);
	return BERR_OK;
}

/* ---- registry policy (§3.7) ---- */

static enum berr_code policy_not_found(struct ecr_call *c, struct berr *err)
{
	return err_set(err, BERR_REGISTRY_POLICY_NOT_FOUND,
	               "Registry policy does not exist in the registry with id '%s'",
	               c->caller.account);
}

static void policy_out(struct ecr_call *c, const char *text)
{
	json_object_set_new(c->out, "registryId", json_string(c->caller.account));
	json_object_set_new(c->out, "policyText", json_string(text));
}

static enum berr_code policy_check(json_t *in, enum phase ph, void *ctx, struct berr *err)
{
	return v_str(in, "policyText", true, 0, REGISTRY_POLICY_MAX, ph, ctx, err);
}

enum berr_code ecr_put_registry_policy(struct ecr_call *c, struct berr *err)
{
	const char *text = NULL;
	enum berr_code rc = validate(policy_check, c->in, &text, err);
	if (rc == BERR_OK)
		rc = iam_registry_policy_validate(text, strlen(text), err);
	if (rc == BERR_OK)
		rc = core_doc_put(c->m, &c->caller, DOC_REGISTRY_POLICY, text, err);
	if (rc == BERR_OK)
		policy_out(c, text);
	return rc;
}

enum berr_code ecr_get_registry_policy(struct ecr_call *c, struct berr *err)
{
	char *text = NULL;
	enum berr_code rc = core_doc_get(c->m, &c->caller, DOC_REGISTRY_POLICY, &text, err);
	if (rc == BERR_NOT_FOUND)
		return policy_not_found(c, err);
	if (rc == BERR_OK)
		policy_out(c, text);
	free(text);
	return rc;
}

enum berr_code ecr_delete_registry_policy(struct ecr_call *c, struct berr *err)
{
	struct meta *m = c->m;
	char *text = NULL;
	/* One transaction: of two concurrent deletes exactly one returns the removed text. */
	enum berr_code rc = m->ops->txn_begin(m, err);
	if (rc != BERR_OK)
		return rc;
	rc = core_doc_get(m, &c->caller, DOC_REGISTRY_POLICY, &text, err);
	if (rc == BERR_NOT_FOUND)
		rc = policy_not_found(c, err);
	if (rc == BERR_OK)
		rc = core_doc_delete(m, &c->caller, DOC_REGISTRY_POLICY, err);
	if (rc == BERR_OK)
		rc = m->ops->txn_commit(m, err);
	if (rc != BERR_OK)
		m->ops->txn_rollback(m);
	else
		policy_out(c, text);
	free(text);
	return rc;
}

/* ---- replication (§3.7, §4.8) ---- */

static enum berr_code repl_destination_check(json_t *item, enum phase ph, struct berr *err)
{
	json_t *d = NULL;
	const char *region = NULL, *id = NULL;
	enum berr_code rc = v_item_obj("destinations", item, ph, &d, err);
	if (rc != BERR_OK || !d)
		return rc;
	if ((rc = v_str(d, "region", true, 2, 25, ph, &region, err)) != BERR_OK)
		return rc;
	if (ph == PH_VALUE && region && !is_region(region))
		return ep_invalid(err, "region", "must satisfy regular expression '%s'",
		                  REGION_PATTERN);
	if ((rc = v_str(d, "registryId", true, 0, 0, ph, &id, err)) != BERR_OK)
		return rc;
	if (ph == PH_VALUE && id && !is_registry_id(id))
		return ep_invalid(err, "registryId", "must satisfy regular expression '%s'",
		                  REGISTRY_ID_PATTERN);
	return BERR_OK;
}

static enum berr_code repl_filter_check(json_t *item, enum phase ph, struct berr *err)
{
	json_t *f = NULL;
	const char *filter = NULL, *type = NULL;
	enum berr_code rc = v_item_obj("repositoryFilters", item, ph, &f, err);
	if (rc != BERR_OK || !f)
		return rc;
	if ((rc = v_str(f, "filter", true, 2, 256, ph, &filter, err)) != BERR_OK)
		return rc;
	if (ph == PH_VALUE && filter && !is_repl_filter(filter))
		return ep_invalid(err, "filter", "must satisfy regular expression '%s'",
		                  REPL_FILTER_PATTERN);
	return v_enum(f, "filterType", true, prefix_match_only, ph, &type, err);
}

static enum berr_code repl_check(json_t *in, enum phase ph, void *ctx, struct berr *err)
{
	json_t *cfg = NULL, *rules = NULL, *item, *sub;
	size_t i, j;
	(void)ctx;
	enum berr_code rc = v_member(in, "replicationConfiguration", K_OBJ, true, ph, &cfg, err);
	if (rc != BERR_OK || !cfg)
		return rc;
	if ((rc = v_arr(cfg, "rules", true, 0, REPL_MAX_RULES, ph, &rules, err)) != BERR_OK)
		return rc;
	json_array_foreach (rules, i, item) {
		json_t *rule = NULL, *dests = NULL, *filters = NULL;
		if ((rc = v_item_obj("rules", item, ph, &rule, err)) != BERR_OK)
			return rc;
		if (!rule)
			continue;
		if ((rc = v_arr(rule, "destinations", true, 1, REPL_MAX_DESTINATIONS, ph, &dests,
		                err)) != BERR_OK)
			return rc;
		json_array_foreach (dests, j, sub) {
			if ((rc = repl_destination_check(sub, ph, err)) != BERR_OK)
				return rc;
		}
		if ((rc = v_arr(rule, "repositoryFilters", false, 0, REPL_MAX_FILTERS, ph, &filters,
		                err)) != BERR_OK)
			return rc;
		json_array_foreach (filters, j, sub) {
			if ((rc = repl_filter_check(sub, ph, err)) != BERR_OK)
				return rc;
		}
	}
	return BERR_OK;
}

/* Re-serialises a validated configuration (known members only, request order kept). */
static json_t *repl_normalise(json_t *cfg)
{
	json_t *rules = json_array(), *rule, *sub;
	size_t i, j;
	json_array_foreach (json_object_get(cfg, "rules"), i, rule) {
		json_t *dests = json_array(), *r = json_object();
		json_array_foreach (json_object_get(rule, "destinations"), j, sub) {
			json_array_append_new(
			    dests, json_pack("{s:O, s:O}", "region", json_object_get(sub, "region"),
			                     "registryId", json_object_get(sub, "registryId")));
		}
		json_object_set_new(r, "destinations", dests);
		json_t *filters = member(rule, "repositoryFilters");
		if (filters) {
			json_t *fl = json_array();
			json_array_foreach (filters, j, sub) {
				json_array_append_new(
				    fl, json_pack("{s:O, s:O}", "filter",
				                  json_object_get(sub, "filter"), "filterType",
				                  json_object_get(sub, "filterType")));
			}
			json_object_set_new(r, "repositoryFilters", fl);
		}
		json_array_append_new(rules, r);
	}
	return json_pack("{s:o}", "rules", rules);
}

/* Same-source and unique-destination checks on a normalised configuration. */
static enum berr_code repl_semantics(struct ecr_call *c, json_t *cfg, struct berr *err)
{
	json_t *seen = json_object(), *rule, *d;
	size_t i, j;
	enum berr_code rc = BERR_OK;
	json_array_foreach (json_object_get(cfg, "rules"), i, rule) {
		json_array_foreach (json_object_get(rule, "destinations"), j, d) {
			const char *region = json_string_value(json_object_get(d, "region"));
			const char *id = json_string_value(json_object_get(d, "registryId"));
			if (strcmp(region, c->caller.region) == 0 &&
			    strcmp(id, c->caller.account) == 0) {
				rc = ep_invalid(err, "replicationConfiguration",
				                "Replication destination cannot be the same as the "
				                "source registry");
				goto out;
			}
			char *key = xasprintf("%s|%s", region, id);
			json_object_set_new(seen, key, json_true());
			free(key);
		}
	}
	if (json_object_size(seen) > REPL_MAX_DESTINATIONS)
		rc = ep_invalid(err, "replicationConfiguration",
		                "Replication configuration cannot have more than %d unique "
		                "destinations",
		                REPL_MAX_DESTINATIONS);
out:
	json_decref(seen);
	return rc;
}

static json_t *repl_default(void)
{
	return json_pack("{s:[]}", "rules");
}

enum berr_code ecr_describe_registry(struct ecr_call *c, struct berr *err)
{
	json_t *cfg = NULL;
	enum berr_code rc = doc_load(c, DOC_REPLICATION, &cfg, err);
	if (rc != BERR_OK)
		return rc;
	json_object_set_new(c->out, "registryId", json_string(c->caller.account));
	json_object_set_new(c->out, "replicationConfiguration", cfg ? cfg : repl_default());
	return BERR_OK;
}

enum berr_code ecr_put_replication_configuration(struct ecr_call *c, struct berr *err)
{
	enum berr_code rc = validate(repl_check, c->in, NULL, err);
	if (rc != BERR_OK)
		return rc;
	json_t *cfg = repl_normalise(json_object_get(c->in, "replicationConfiguration"));
	if ((rc = repl_semantics(c, cfg, err)) == BERR_OK &&
	    (rc = doc_store(c, DOC_REPLICATION, cfg, err)) == BERR_OK)
		json_object_set(c->out, "replicationConfiguration", cfg);
	json_decref(cfg);
	return rc;
}

/* ---- registry scanning configuration (§3.6, §4.7) ---- */

static enum berr_code scan_filter_check(json_t *item, enum phase ph, struct berr *err)
{
	json_t *f = NULL;
	const char *filter = NULL, *type = NULL;
	enum berr_code rc = v_item_obj("repositoryFilters", item, ph, &f, err);
	if (rc != BERR_OK || !f)
		return rc;
	if ((rc = v_str(f, "filter", true, 1, SCAN_FILTER_MAX, ph, &filter, err)) != BERR_OK)
		return rc;
	if (ph == PH_VALUE && filter && !is_scan_filter(filter))
		return ep_invalid(err, "filter", "must satisfy regular expression '%s'",
		                  SCAN_FILTER_PATTERN);
	return v_enum(f, "filterType", true, wildcard_only, ph, &type, err);
}

static enum berr_code scan_check(json_t *in, enum phase ph, void *ctx, struct berr *err)
{
	json_t *rules = NULL, *item, *sub;
	const char *type = NULL;
	size_t i, j;
	(void)ctx;
	enum berr_code rc = v_enum(in, "scanType", false, scan_types, ph, &type, err);
	if (rc != BERR_OK)
		return rc;
	if ((rc = v_arr(in, "rules", false, 0, SCAN_MAX_RULES, ph, &rules, err)) != BERR_OK)
		return rc;
	json_array_foreach (rules, i, item) {
		json_t *rule = NULL, *filters = NULL;
		const char *freq = NULL;
		if ((rc = v_item_obj("rules", item, ph, &rule, err)) != BERR_OK)
			return rc;
		if (!rule)
			continue;
		if ((rc = v_enum(rule, "scanFrequency", true, scan_frequencies, ph, &freq, err)) !=
		    BERR_OK)
			return rc;
		if ((rc = v_arr(rule, "repositoryFilters", true, 1, SCAN_MAX_FILTERS, ph, &filters,
		                err)) != BERR_OK)
			return rc;
		json_array_foreach (filters, j, sub) {
			if ((rc = scan_filter_check(sub, ph, err)) != BERR_OK)
				return rc;
		}
	}
	return BERR_OK;
}

/* BASIC allows SCAN_ON_PUSH and MANUAL; ENHANCED allows SCAN_ON_PUSH and CONTINUOUS_SCAN. */
static bool scan_frequency_allowed(const char *type, const char *freq)
{
	if (strcmp(freq, "SCAN_ON_PUSH") == 0)
		return true;
	if (strcmp(type, "BASIC") == 0)
		return strcmp(freq, "MANUAL") == 0;
	return strcmp(freq, "CONTINUOUS_SCAN") == 0;
}

/* Validated request -> stored form: {"scanType", "rules"} with defaults filled in. */
static json_t *scan_normalise(json_t *in)
{
	json_t *type = member(in, "scanType"), *rules = json_array(), *rule, *f;
	size_t i, j;
	json_array_foreach (member(in, "rules"), i, rule) {
		json_t *fl = json_array();
		json_array_foreach (json_object_get(rule, "repositoryFilters"), j, f) {
			json_array_append_new(
			    fl, json_pack("{s:O, s:O}", "filter", json_object_get(f, "filter"),
			                  "filterType", json_object_get(f, "filterType")));
		}
		json_array_append_new(rules, json_pack("{s:O, s:o}", "scanFrequency",
		                                       json_object_get(rule, "scanFrequency"),
		                                       "repositoryFilters", fl));
	}
	return json_pack("{s:s, s:o}", "scanType", type ? json_string_value(type) : "BASIC",
	                 "rules", rules);
}

static enum berr_code scan_semantics(json_t *cfg, struct berr *err)
{
	const char *type = json_string_value(json_object_get(cfg, "scanType"));
	json_t *rule;
	size_t i;
	json_array_foreach (json_object_get(cfg, "rules"), i, rule) {
		const char *freq = json_string_value(json_object_get(rule, "scanFrequency"));
		if (!scan_frequency_allowed(type, freq))
			return ep_invalid(err, "scanFrequency",
			                  "Scan frequency %s is not supported for scan type %s",
			                  freq, type);
	}
	return BERR_OK;
}

static json_t *scan_default(void)
{
	return json_pack("{s:s, s:[]}", "scanType", "BASIC", "rules");
}

enum berr_code ecr_put_registry_scanning_configuration(struct ecr_call *c, struct berr *err)
{
	enum berr_code rc = validate(scan_check, c->in, NULL, err);
	if (rc != BERR_OK)
		return rc;
	json_t *cfg = scan_normalise(c->in);
	if ((rc = scan_semantics(cfg, err)) == BERR_OK &&
	    (rc = doc_store(c, DOC_SCANNING, cfg, err)) == BERR_OK)
		json_object_set(c->out, "registryScanningConfiguration", cfg);
	json_decref(cfg);
	return rc;
}

enum berr_code ecr_get_registry_scanning_configuration(struct ecr_call *c, struct berr *err)
{
	json_t *cfg = NULL;
	enum berr_code rc = doc_load(c, DOC_SCANNING, &cfg, err);
	if (rc != BERR_OK)
		return rc;
	json_object_set_new(c->out, "registryId", json_string(c->caller.account));
	json_object_set_new(c->out, "scanningConfiguration", cfg ? cfg : scan_default());
	return BERR_OK;
}

/* §4.7: without '*' a filter matches names containing it; with '*' it globs the whole name. */
static bool scan_filter_matches(const char *filter, const char *name)
{
	if (strchr(filter, '*'))
		return str_glob_match(filter, name);
	return strstr(name, filter) != NULL;
}

/* The RepositoryScanningConfiguration of r under the registry configuration cfg. */
static json_t *repo_scanning_json(json_t *cfg, const struct meta_repo *r)
{
	/* Matching filters per frequency: SCAN_ON_PUSH, CONTINUOUS_SCAN, MANUAL. */
	json_t *matched[3] = {json_array(), json_array(), json_array()};
	const char *type = json_string_value(json_object_get(cfg, "scanType"));
	json_t *rule, *f;
	size_t i, j, k;
	json_array_foreach (json_object_get(cfg, "rules"), i, rule) {
		const char *freq = json_string_value(json_object_get(rule, "scanFrequency"));
		for (k = 0; k < ARRAY_LEN(matched); k++)
			if (freq && strcmp(freq, scan_frequencies[k]) == 0)
				break;
		if (k == ARRAY_LEN(matched))
			continue;
		json_array_foreach (json_object_get(rule, "repositoryFilters"), j, f) {
			const char *filter = json_string_value(json_object_get(f, "filter"));
			if (filter && scan_filter_matches(filter, r->name))
				json_array_append(matched[k], f);
		}
	}
	enum { PUSH, CONT, MANUAL, NONE } pick = NONE;
	const char *freq = "MANUAL";
	if (type && strcmp(type, "ENHANCED") == 0) {
		/* CONTINUOUS_SCAN beats SCAN_ON_PUSH; unmatched repositories are not scanned. */
		if (json_array_size(matched[CONT]))
			pick = CONT;
		else if (json_array_size(matched[PUSH]))
			pick = PUSH;
	} else {
		/* BASIC: a SCAN_ON_PUSH rule or the legacy flag scans on push. */
		if (json_array_size(matched[PUSH]))
			pick = PUSH;
		else if (r->scan_on_push)
			freq = "SCAN_ON_PUSH";
		else if (json_array_size(matched[MANUAL]))
			pick = MANUAL;
	}
	json_t *applied;
	if (pick == NONE) {
		applied = json_array();
	} else {
		freq = scan_frequencies[pick];
		applied = json_incref(matched[pick]);
	}
	for (k = 0; k < ARRAY_LEN(matched); k++)
		json_decref(matched[k]);
	char *arn = xasprintf("arn:%s:ecr:%s:%s:repository/%s", ecr_partition(r->region), r->region,
	                      r->account, r->name);
	json_t *o = json_pack("{s:s, s:s, s:b, s:s, s:o}", "repositoryArn", arn, "repositoryName",
	                      r->name, "scanOnPush", r->scan_on_push, "scanFrequency", freq,
	                      "appliedScanFilters", applied);
	free(arn);
	return o;
}

static enum berr_code scan_batch_check(json_t *in, enum phase ph, void *ctx, struct berr *err)
{
	json_t **names = ctx, *item;
	size_t i;
	enum berr_code rc = v_arr(in, "repositoryNames", true, 1, SCAN_BATCH_MAX, ph, names, err);
	if (rc != BERR_OK)
		return rc;
	json_array_foreach (*names, i, item) {
		const char *name = NULL;
		rc = v_item_str("repositoryNames", item, REPO_NAME_MIN, REPO_NAME_MAX, ph, &name,
		                err);
		if (rc != BERR_OK)
			return rc;
		if (ph == PH_VALUE && name && !ref_repo_name_is_valid(name))
			return ep_invalid(err, "repositoryNames",
			                  "must satisfy regular expression '%s'",
			                  REF_REPO_NAME_PATTERN_MSG);
	}
	return BERR_OK;
}

enum berr_code ecr_batch_get_repository_scanning_configuration(struct ecr_call *c, struct berr *err)
{
	json_t *names = NULL, *cfg = NULL, *item;
	size_t i;
	enum berr_code rc = validate(scan_batch_check, c->in, &names, err);
	if (rc == BERR_OK)
		rc = doc_load(c, DOC_SCANNING, &cfg, err);
	if (rc != BERR_OK)
		return rc;
	if (!cfg)
		cfg = scan_default();
	json_t *configs = json_array(), *failures = json_array();
	json_array_foreach (names, i, item) {
		const char *name = json_string_value(item);
		struct meta_repo r = {0};
		rc = core_repo_get(c->m, &c->caller, name, &r, err);
		if (rc == BERR_OK) {
			json_array_append_new(configs, repo_scanning_json(cfg, &r));
		} else if (rc == BERR_REPO_NOT_FOUND) {
			err_clear(err);
			rc = BERR_OK;
			json_array_append_new(failures,
			                      json_pack("{s:s, s:s, s:s}", "repositoryName", name,
			                                "failureCode", "REPOSITORY_NOT_FOUND",
			                                "failureReason", "REPOSITORY_NOT_FOUND"));
		}
		meta_repo_clear(&r);
		if (rc != BERR_OK)
			break;
	}
	if (rc == BERR_OK) {
		json_object_set(c->out, "scanningConfigurations", configs);
		json_object_set(c->out, "failures", failures);
	}
	json_decref(configs);
	json_decref(failures);
	json_decref(cfg);
	return rc;
}

/* ---- account settings (§3.7) ---- */

struct account_setting {
	const char *name;
	const char *def;
	const char *const *values;
};

static const char *const basic_scan_values[] = {"AWS_NATIVE", "CLAIR", NULL};
static const char *const policy_scope_values[] = {"V1", "V2", NULL};
static const char *const blob_mounting_values[] = {"ENABLED", "DISABLED", NULL};
static const char *const setting_names[] = {"BASIC_SCAN_TYPE_VERSION", "REGISTRY_POLICY_SCOPE",
                                            "BLOB_MOUNTING", NULL};

static const struct account_setting account_settings[] = {
    {"BASIC_SCAN_TYPE_VERSION", "AWS_NATIVE", basic_scan_values},
    {"REGISTRY_POLICY_SCOPE", "V2", policy_scope_values},
    {"BLOB_MOUNTING", "DISABLED", blob_mounting_values},
};

static const struct account_setting *setting_find(const char *name)
{
	for (size_t i = 0; i < ARRAY_LEN(account_settings); i++)
		if (strcmp(account_settings[i].name, name) == 0)
			return &account_settings[i];
	return NULL;
}

struct setting_req {
	const char *name;
	const char *value;
	bool with_value;
};

static enum berr_code setting_check(json_t *in, enum phase ph, void *ctx, struct berr *err)
{
	struct setting_req *q = ctx;
	enum berr_code rc = v_str(in, "name", true, 1, 64, ph, &q->name, err);
	if (rc == BERR_OK && q->with_value)
		rc = v_str(in, "value", true, 0, 0, ph, &q->value, err);
	if (rc != BERR_OK || ph != PH_VALUE)
		return rc;
	if ((rc = ep_enum(in, "name", true, setting_names, &q->name, err)) != BERR_OK)
		return rc;
	if (q->with_value)
		rc = ep_enum(in, "value", true, setting_find(q->name)->values, &q->value, err);
	return rc;
}

static void setting_out(struct ecr_call *c, const char *name, const char *value)
{
	json_object_set_new(c->out, "name", json_string(name));
	json_object_set_new(c->out, "value", json_string(value));
}

enum berr_code ecr_get_account_setting(struct ecr_call *c, struct berr *err)
{
	struct setting_req q = {0};
	json_t *doc = NULL;
	enum berr_code rc = validate(setting_check, c->in, &q, err);
	if (rc != BERR_OK)
		return rc;
	const struct account_setting *s = setting_find(q.name);
	char *docname = xasprintf(DOC_SETTING_PREFIX "%s", s->name);
	rc = doc_load(c, docname, &doc, err);
	free(docname);
	if (rc != BERR_OK)
		return rc;
	const char *value = json_string_value(json_object_get(doc, "value"));
	setting_out(c, s->name, value ? value : s->def);
	json_decref(doc);
	return BERR_OK;
}

enum berr_code ecr_put_account_setting(struct ecr_call *c, struct berr *err)
{
	struct setting_req q = {.with_value = true};
	enum berr_code rc = validate(setting_check, c->in, &q, err);
	if (rc != BERR_OK)
		return rc;
	char *docname = xasprintf(DOC_SETTING_PREFIX "%s", q.name);
	json_t *doc = json_pack("{s:s, s:s}", "name", q.name, "value", q.value);
	rc = doc_store(c, docname, doc, err);
	json_decref(doc);
	free(docname);
	if (rc == BERR_OK)
		setting_out(c, q.name, q.value);
	return rc;
}
