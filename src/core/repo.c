/* repo.c - repositories: lookup, creation, deletion, settings, tag mutability (spec §3.1, §4.6).
 * Repository rows carry their small settings documents (filters, resource tags, policies) as
 * JSON text; the api layer validates them before they get here. */
#include "../base/feat.h"

#include "core.h"
#include "../base/mem.h"
#include "../base/util.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

enum berr_code core_repo_get(struct meta *m, const struct registry_id *reg, const char *name,
                             struct meta_repo *out, struct berr *err)
{
	enum berr_code rc = m->ops->repo_get(m, reg->account, reg->region, name, out, err);
	if (rc == BERR_NOT_FOUND)
		return err_set(err, BERR_REPO_NOT_FOUND,
		               "The repository with name '%s' does not exist in the registry with "
		               "id '%s'",
		               name, reg->account);
	return rc;
}

enum berr_code core_repo_create(struct meta *m, struct meta_repo *r, struct berr *err)
{
	r->created_at = clock_now_ms();
	enum berr_code rc = m->ops->repo_insert(m, r, err);
	if (rc == BERR_CONFLICT)
		return err_set(err, BERR_REPO_EXISTS,
		               "The repository with name '%s' already exists in the registry with "
		               "id '%s'",
		               r->name, r->account);
	return rc;
}

enum berr_code core_repo_delete(struct core *c, struct meta *m, const struct registry_id *reg,
                                const char *name, bool force, struct meta_repo *out,
                                struct berr *err)
{
	(void)c;
	enum berr_code rc = m->ops->txn_begin(m, err);
	if (rc != BERR_OK)
		return rc;
	if ((rc = core_repo_get(m, reg, name, out, err)) != BERR_OK)
		goto fail;
	int64_t n = 0;
	if ((rc = m->ops->repo_image_count(m, out->id, &n, err)) != BERR_OK)
		goto fail;
	if (n > 0 && !force) {
		rc = err_set(err, BERR_REPO_NOT_EMPTY,
		             "The repository with name '%s' in registry with id '%s' cannot be "
		             "deleted because it still contains images",
		             name, reg->account);
		goto fail;
	}
	/* Images, tags, refs, links and upload rows go by ON DELETE CASCADE. Upload files and
	 * unreferenced blobs are left for garbage collection, which removes files with no row. */
	if ((rc = m->ops->repo_delete(m, out->id, err)) != BERR_OK)
		goto fail;
	if ((rc = m->ops->txn_commit(m, err)) != BERR_OK)
		goto fail;
	return BERR_OK;
fail:
	m->ops->txn_rollback(m);
	return rc;
}

enum berr_code core_repo_save(struct meta *m, const struct meta_repo *r, struct berr *err)
{
	return m->ops->repo_update(m, r, err);
}

bool core_tag_is_immutable(const struct meta_repo *r, const char *tag)
{
	const char *mut = r->mutability ? r->mutability : "MUTABLE";
	if (strcmp(mut, "MUTABLE") == 0)
		return false;
	if (strcmp(mut, "IMMUTABLE") == 0)
		return true;
	bool excluded = false;
	json_t *filters = r->mutability_filters ? json_loads(r->mutability_filters, 0, NULL) : NULL;
	size_t i;
	json_t *f;
	json_array_foreach (filters, i, f) {
		const char *pat = json_string_value(json_object_get(f, "filter"));
		if (pat && str_glob_match(pat, tag)) {
			excluded = true;
			break;
		}
	}
	json_decref(filters);
	if (strcmp(mut, "MUTABLE_WITH_EXCLUSION") == 0)
		return excluded; /* listed tags are frozen */
	return !excluded;        /* IMMUTABLE_WITH_EXCLUSION: listed tags may move */
}
