/* lifecycle_run.c - runs the pure evaluator (lifecycle.c) over a repository's images: previews
 * (stored for GetLifecyclePolicyPreview) and the applier used by the background thread and
 * `berth lifecycle`. Both build the same input and call the same function, so a preview shows
 * exactly what the applier will do at that moment.
 *
 * The applier evaluates and deletes inside one write transaction (BEGIN IMMEDIATE): concurrent
 * passes on several nodes serialise, and the second finds the images already gone. Deleting an
 * image removes its tags and references with it (ON DELETE CASCADE); its blobs are left to gc.
 * Transitions to the archive storage class are reported but not applied: berth has no archive
 * tier yet. Preview results are stored as JSON:
 *     [{"d": digest, "t": [tags], "p": pushed_ms, "r": priority, "a": "EXPIRE"|"TRANSITION",
 *       "c": "STANDARD"|"ARCHIVE"}, ...]  */
#include "../base/feat.h"

#include "core_int.h"
#include "lifecycle.h"
#include "../base/log.h"
#include "../base/mem.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

struct img_row {
	struct meta_image img;
	char **tags;
	size_t ntags;
};

struct load_ctx {
	struct meta *m;
	struct img_row *v;
	size_t n, cap;
	int64_t last_id;
	enum berr_code rc;
	struct berr *err;
};

static int add_img(void *ctx, const struct meta_image *img)
{
	struct load_ctx *l = ctx;
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 64;
		l->v = xrealloc(l->v, l->cap * sizeof(*l->v));
	}
	struct img_row *r = &l->v[l->n++];
	memset(r, 0, sizeof(*r));
	r->img.id = img->id;
	r->img.digest = xstrdup(img->digest);
	r->img.pushed_at = img->pushed_at;
	r->img.pulled_at = img->pulled_at;
	r->img.status = xstrdup(img->status ? img->status : "ACTIVE");
	l->last_id = img->id;
	/* image_list attached the tags; keep a NULL-terminated copy. */
	r->tags = xcalloc(img->ntags + 1, sizeof(char *));
	for (size_t i = 0; i < img->ntags; i++)
		r->tags[i] = xstrdup(img->tags[i]);
	r->ntags = img->ntags;
	return 0;
}

struct strset {
	char **v;
	size_t n, cap;
};

static int add_str(void *ctx, const char *s)
{
	struct strset *ss = ctx;
	if (ss->n == ss->cap) {
		ss->cap = ss->cap ? ss->cap * 2 : 16;
		ss->v = xrealloc(ss->v, ss->cap * sizeof(char *));
	}
	ss->v[ss->n++] = xstrdup(s);
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void free_rows(struct img_row *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		meta_image_clear(&v[i].img);
		core_strv_free(v[i].tags);
	}
	free(v);
}

/* Loads every image of the repository with its tags and whether an index references it. */
static enum berr_code load_images(struct meta *m, int64_t repo_id, struct img_row **out, size_t *n,
                                  struct lc_image **lcv, struct berr *err)
{
	struct load_ctx l = {m, NULL, 0, 0, 0, BERR_OK, err};
	enum berr_code rc;
	do {
		size_t before = l.n;
		rc = m->ops->image_list(m, repo_id, l.last_id, 1000, META_TAGS_ANY, add_img, &l,
		                        err);
		if (rc == BERR_OK)
			rc = l.rc;
		if (rc != BERR_OK || l.n - before < 1000)
			break;
	} while (1);
	struct strset children = {0};
	if (rc == BERR_OK)
		rc = m->ops->repo_child_digests(m, repo_id, add_str, &children, err);
	if (rc != BERR_OK) {
		free_rows(l.v, l.n);
		for (size_t i = 0; i < children.n; i++)
			free(children.v[i]);
		free(children.v);
		return rc;
	}
	if (children.n)
		qsort(children.v, children.n, sizeof(char *), cmp_str);
	struct lc_image *imgs = xcalloc(l.n ? l.n : 1, sizeof(*imgs));
	for (size_t i = 0; i < l.n; i++) {
		struct img_row *r = &l.v[i];
		const char *key = r->img.digest;
		imgs[i].id = r->img.id;
		imgs[i].digest = r->img.digest;
		imgs[i].tags = (const char *const *)r->tags;
		imgs[i].ntags = r->ntags;
		imgs[i].pushed_at = r->img.pushed_at;
		imgs[i].pulled_at = r->img.pulled_at;
		imgs[i].archived = strcmp(r->img.status, "ARCHIVED") == 0;
		imgs[i].protected_child =
		    children.n && bsearch(&key, children.v, children.n, sizeof(char *), cmp_str);
	}
	for (size_t i = 0; i < children.n; i++)
		free(children.v[i]);
	free(children.v);
	*out = l.v;
	*n = l.n;
	*lcv = imgs;
	return BERR_OK;
}

struct order {
	size_t idx;
	int64_t pushed_at;
	int64_t id;
};

static int cmp_order(const void *a, const void *b)
{
	const struct order *x = a, *y = b;
	if (x->pushed_at != y->pushed_at)
		return x->pushed_at < y->pushed_at ? -1 : 1;
	return x->id < y->id ? -1 : x->id > y->id;
}

/* Evaluates and calls visit for each decided image, oldest first. */
typedef enum berr_code (*visit_fn)(void *ctx, const struct img_row *row, const struct lc_image *li,
                                   const struct lc_rule *rule, enum lc_action action,
                                   struct berr *err);

static enum berr_code evaluate(struct meta *m, int64_t repo_id, const struct lc_policy *p,
                               int64_t now, visit_fn visit, void *ctx, int64_t *count,
                               struct berr *err)
{
	struct img_row *rows = NULL;
	struct lc_image *imgs = NULL;
	size_t n = 0;
	enum berr_code rc = load_images(m, repo_id, &rows, &n, &imgs, err);
	if (rc != BERR_OK)
		return rc;
	struct lc_decision *dec = xcalloc(n ? n : 1, sizeof(*dec));
	lc_evaluate(p, imgs, n, now, dec);
	struct order *ord = xcalloc(n ? n : 1, sizeof(*ord));
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (dec[i].rule >= 0)
			ord[k++] = (struct order){i, imgs[i].pushed_at, imgs[i].id};
	qsort(ord, k, sizeof(*ord), cmp_order);
	for (size_t j = 0; j < k && rc == BERR_OK; j++) {
		size_t i = ord[j].idx;
		rc = visit(ctx, &rows[i], &imgs[i], &p->rules[dec[i].rule], dec[i].action, err);
	}
	if (count)
		*count = (int64_t)k;
	free(ord);
	free(dec);
	free(imgs);
	free_rows(rows, n);
	return rc;
}

static enum berr_code parse_policy(const char *text, struct lc_policy **p, struct berr *err)
{
	return lc_policy_parse(text, strlen(text), p, err);
}

/* ---- preview ---- */

static enum berr_code add_result(void *ctx, const struct img_row *row, const struct lc_image *li,
                                 const struct lc_rule *rule, enum lc_action action,
                                 struct berr *err)
{
	(void)err;
	json_t *tags = json_array();
	for (size_t i = 0; i < row->ntags; i++)
		json_array_append_new(tags, json_string(row->tags[i]));
	json_array_append_new(ctx,
	                      json_pack("{s:s, s:o, s:I, s:i, s:s, s:s}", "d", li->digest, "t",
	                                tags, "p", (json_int_t)li->pushed_at, "r", rule->priority,
	                                "a", action == LC_EXPIRE ? "EXPIRE" : "TRANSITION", "c",
	                                li->archived ? "ARCHIVE" : "STANDARD"));
	return BERR_OK;
}

enum berr_code core_lifecycle_preview(struct core *c, struct meta *m, const struct meta_repo *repo,
                                      const char *policy_text, int64_t now_ms, struct berr *err)
{
	(void)c;
	const char *text = policy_text ? policy_text : repo->lifecycle_policy;
	if (!text)
		return err_set(err, BERR_LIFECYCLE_NOT_FOUND,
		               "Lifecycle policy does not exist for the repository with name '%s' "
		               "in the registry with id '%s'",
		               repo->name, repo->account);
	struct lc_policy *p = NULL;
	enum berr_code rc = parse_policy(text, &p, err);
	if (rc != BERR_OK)
		return rc;
	json_t *results = json_array();
	rc = evaluate(m, repo->id, p, now_ms, add_result, results, NULL, err);
	if (rc == BERR_OK) {
		char *js = json_dumps(results, JSON_COMPACT);
		rc = m->ops->preview_put(m, repo->id, text, "COMPLETE", js, now_ms, err);
		free(js);
	}
	json_decref(results);
	lc_policy_free(p);
	return rc;
}

/* ---- applier ---- */

struct apply_ctx {
	struct meta *m;
	const struct meta_repo *repo;
	bool dry_run;
	int64_t now;
	core_lc_fn fn;
	void *ctx;
};

static enum berr_code apply_one(void *ctx, const struct img_row *row, const struct lc_image *li,
                                const struct lc_rule *rule, enum lc_action action, struct berr *err)
{
	struct apply_ctx *a = ctx;
	struct core_lc_action act = {
	    .digest = li->digest,
	    .tags = row->tags,
	    .ntags = row->ntags,
	    .pushed_at = li->pushed_at,
	    .rule_priority = rule->priority,
	    .expire = action == LC_EXPIRE,
	    .archived = li->archived,
	};
	enum berr_code rc = BERR_OK;
	if (!a->dry_run && act.expire) {
		json_t *tags = json_array();
		for (size_t i = 0; i < row->ntags; i++)
			json_array_append_new(tags, json_string(row->tags[i]));
		char *tj = json_dumps(tags, JSON_COMPACT);
		json_decref(tags);
		struct meta_history h = {
		    .at = a->now,
		    .account = a->repo->account,
		    .region = a->repo->region,
		    .repo_name = a->repo->name,
		    .digest = li->digest,
		    .tags = tj,
		    .rule_priority = rule->priority,
		    .action = "EXPIRE",
		    .pushed_at = li->pushed_at,
		};
		rc = a->m->ops->image_delete(a->m, li->id, err);
		if (rc == BERR_OK)
			rc = a->m->ops->history_insert(a->m, &h, err);
		free(tj);
		act.applied = rc == BERR_OK;
	}
	if (rc == BERR_OK && a->fn)
		a->fn(a->ctx, a->repo, &act);
	return rc;
}

enum berr_code core_lifecycle_apply(struct core *c, struct meta *m, int64_t repo_id,
                                    const struct registry_id *reg, const char *repo_name,
                                    bool dry_run, int64_t now_ms, core_lc_fn fn, void *ctx,
                                    int64_t *n, struct berr *err)
{
	(void)c;
	(void)repo_id;
	struct meta_repo r = {0};
	struct lc_policy *p = NULL;
	*n = 0;
	enum berr_code rc = m->ops->txn_begin(m, err);
	if (rc != BERR_OK)
		return rc;
	/* Re-read the repository under the write lock: the policy may just have changed. */
	if ((rc = core_repo_get(m, reg, repo_name, &r, err)) != BERR_OK)
		goto fail;
	if (!r.lifecycle_policy) {
		rc = err_set(err, BERR_LIFECYCLE_NOT_FOUND,
		             "Lifecycle policy does not exist for the repository with name '%s' in "
		             "the registry with id '%s'",
		             r.name, r.account);
		goto fail;
	}
	if ((rc = parse_policy(r.lifecycle_policy, &p, err)) != BERR_OK)
		goto fail;
	struct apply_ctx a = {m, &r, dry_run, now_ms, fn, ctx};
	if ((rc = evaluate(m, r.id, p, now_ms, apply_one, &a, n, err)) != BERR_OK)
		goto fail;
	if (!dry_run) {
		r.lifecycle_evaluated_at = now_ms;
		if ((rc = core_repo_save(m, &r, err)) != BERR_OK)
			goto fail;
	}
	if ((rc = dry_run ? BERR_OK : m->ops->txn_commit(m, err)) != BERR_OK)
		goto fail;
	if (dry_run)
		m->ops->txn_rollback(m);
	lc_policy_free(p);
	meta_repo_clear(&r);
	return BERR_OK;
fail:
	m->ops->txn_rollback(m);
	lc_policy_free(p);
	meta_repo_clear(&r);
	return rc;
}

struct repo_ref {
	int64_t id;
	struct registry_id reg;
	char *name;
};

struct repo_refs {
	struct repo_ref *v;
	size_t n, cap;
	int64_t last;
};

static int add_repo_ref(void *ctx, const struct meta_repo *r)
{
	struct repo_refs *l = ctx;
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 16;
		l->v = xrealloc(l->v, l->cap * sizeof(*l->v));
	}
	struct repo_ref *x = &l->v[l->n++];
	x->id = r->id;
	snprintf(x->reg.account, sizeof(x->reg.account), "%s", r->account);
	snprintf(x->reg.region, sizeof(x->reg.region), "%s", r->region);
	x->name = xstrdup(r->name);
	l->last = r->id;
	return 0;
}

enum berr_code core_lifecycle_apply_all(struct core *c, struct meta *m, bool dry_run,
                                        int64_t now_ms, core_lc_fn fn, void *ctx, int64_t *n,
                                        struct berr *err)
{
	struct repo_refs l = {0};
	enum berr_code rc;
	*n = 0;
	for (;;) {
		size_t before = l.n;
		rc = m->ops->repo_list_lifecycle(m, l.last, 500, add_repo_ref, &l, err);
		if (rc != BERR_OK || l.n - before < 500)
			break;
	}
	for (size_t i = 0; i < l.n && rc == BERR_OK; i++) {
		int64_t k = 0;
		struct berr e;
		err_clear(&e);
		enum berr_code r = core_lifecycle_apply(c, m, l.v[i].id, &l.v[i].reg, l.v[i].name,
		                                        dry_run, now_ms, fn, ctx, &k, &e);
		/* One repository's failure (deleted meanwhile, bad stored policy) must not stop
		 * the others; only database trouble aborts the pass. */
		if (r == BERR_IO || r == BERR_BUSY || r == BERR_INTERNAL || r == BERR_NO_SPACE) {
			*err = e;
			rc = r;
		} else if (r != BERR_OK && r != BERR_REPO_NOT_FOUND &&
		           r != BERR_LIFECYCLE_NOT_FOUND) {
			log_warn("lifecycle: %s: %s", l.v[i].name, e.msg);
		}
		*n += k;
	}
	for (size_t i = 0; i < l.n; i++)
		free(l.v[i].name);
	free(l.v);
	return rc;
}
