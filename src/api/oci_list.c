/* oci_list.c - content discovery: GET /v2/<name>/tags/list, GET /v2/_catalog (both with
 * ?n=&last= and a Link header to the next page) and GET /v2/<name>/referrers/<digest>
 * (OCI 1.1, with the artifactType filter). Lists come from indexed database range scans. */
#include "../base/feat.h"

#include "oci.h"
#include "../base/buf.h"
#include "../base/mem.h"
#include "../base/util.h"
#include "../oci/manifest.h"
#include "../oci/ref.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Page size when n is absent (the spec lets a registry return everything; we cap it so one
 * request stays bounded) and the largest n accepted. */
#define LIST_MAX 10000

/* Tag and repository lists are written straight into a buffer (not a jansson tree): a
 * 10,000-tag list is the hot path of tags/list. */
struct name_page {
	struct buf out;
	long long n;
	long long count;
	char last[512]; /* the last name added (repository names and tags are shorter) */
	bool more;
};

static int add_name(void *ctx, const char *s)
{
	struct name_page *p = ctx;
	if (p->count >= p->n) {
		p->more = true;
		return 1;
	}
	if (p->count)
		buf_append(&p->out, ",", 1, NULL);
	buf_json_string(&p->out, s);
	if (++p->count == p->n) { /* the last name of a full page: the Link header's last= */
		size_t len = strlen(s);
		if (len >= sizeof(p->last))
			len = sizeof(p->last) - 1;
		memcpy(p->last, s, len);
		p->last[len] = '\0';
	}
	return 0;
}

/* ?n= and ?last=. false (and a 400 written) if n is malformed. */
static bool page_args(struct oci_call *c, long long *n, const char **last)
{
	const char *ns = oci_arg(c, "n");
	*last = oci_arg(c, "last");
	if (*last && !**last)
		*last = NULL;
	*n = LIST_MAX;
	if (!ns)
		return true;
	char *e = NULL;
	long long v = isdigit((unsigned char)*ns) ? strtoll(ns, &e, 10) : -1;
	if (v < 0 || (e && *e)) {
		oci_fail(c->resp, BERR_PARAM_INVALID, "n must be a non-negative integer");
		return false;
	}
	*n = v > LIST_MAX ? LIST_MAX : v;
	return true;
}

/* Link: </v2/<path>?n=<n>&last=<last>>; rel="next" */
static void link_next(struct oci_call *c, const char *path, long long n, const char *last)
{
	char *link = xasprintf("</v2/%s?n=%lld&last=%s>; rel=\"next\"", path, n, last);
	api_resp_header(c->resp, "Link", link);
	free(link);
}

static void send_json(struct oci_call *c, json_t *body, const char *ct)
{
	api_json_body(c->resp, body);
	api_resp_header(c->resp, "Content-Type", ct);
}

void oci_tags_list(struct oci_call *c)
{
	long long n;
	const char *last;
	if (!page_args(c, &n, &last))
		return;
	struct berr err;
	err_clear(&err);
	struct name_page p = {.n = n};
	buf_init(&p.out, 0);
	buf_puts(&p.out, "{\"name\":", NULL);
	buf_json_string(&p.out, c->name);
	buf_puts(&p.out, ",\"tags\":[", NULL);
	struct meta *m = meta_pool_acquire(c->core->pool);
	struct meta_repo r = {0};
	struct core_list_page page = {0};
	enum berr_code rc = oci_repo(c, m, &r, &err);
	/* First pages come from the cache while the repository's tag names are unchanged. */
	bool cached = rc == BERR_OK && !last &&
	              core_list_cache_get(c->core->lists, r.id, r.tags_version, n, &page);
	if (rc == BERR_OK && n > 0 && !cached)
		rc = m->ops->tag_list(m, r.id, last, n + 1, add_name, &p, &err);
	meta_pool_release(c->core->pool, m);
	if (rc == BERR_OK && !cached) {
		buf_puts(&p.out, "]}", NULL);
		page.body = buf_steal(&p.out, &page.len);
		page.last = p.more ? xstrdup(p.last) : NULL;
		if (!last)
			core_list_cache_put(c->core->lists, r.id, r.tags_version, n, &page);
	}
	if (rc != BERR_OK) {
		oci_fail_err(c, &err);
	} else {
		api_resp_body(c->resp, page.body, page.len);
		page.body = NULL;
		api_resp_header(c->resp, "Content-Type", "application/json");
		if (page.last) {
			char *path = xasprintf("%s/tags/list", c->name);
			link_next(c, path, n, page.last);
			free(path);
		}
	}
	core_list_page_clear(&page);
	buf_free(&p.out);
	meta_repo_clear(&r);
}

void oci_catalog(struct oci_call *c)
{
	long long n;
	const char *last;
	if (!page_args(c, &n, &last))
		return;
	struct berr err;
	err_clear(&err);
	struct name_page p = {.n = n};
	buf_init(&p.out, 0);
	buf_puts(&p.out, "{\"repositories\":[", NULL);
	struct meta *m = meta_pool_acquire(c->core->pool);
	enum berr_code rc = BERR_OK;
	if (n > 0)
		rc = m->ops->repo_names(m, c->reg.account, c->reg.region, last, n + 1, add_name, &p,
		                        &err);
	meta_pool_release(c->core->pool, m);
	if (rc != BERR_OK) {
		oci_fail_err(c, &err);
	} else {
		buf_puts(&p.out, "]}", NULL);
		size_t len = 0;
		char *body = buf_steal(&p.out, &len);
		api_resp_body(c->resp, body, len);
		api_resp_header(c->resp, "Content-Type", "application/json");
		if (p.more)
			link_next(c, "_catalog", n, p.last);
	}
	buf_free(&p.out);
}

struct referrers {
	json_t *list;
	const char *filter; /* artifactType or NULL */
};

static int add_referrer(void *ctx, const struct meta_image *img)
{
	struct referrers *rf = ctx;
	if (rf->filter && (!img->artifact_type || strcmp(img->artifact_type, rf->filter) != 0))
		return 0;
	json_t *d = api_referrer_descriptor(img);
	json_array_append_new(rf->list, d);
	return 0;
}

void oci_referrers(struct oci_call *c)
{
	if (!ref_digest_is_valid(c->ref)) {
		oci_fail(c->resp, BERR_DIGEST_INVALID, "invalid digest '%.128s'", c->ref);
		return;
	}
	struct berr err;
	err_clear(&err);
	struct referrers rf = {json_array(), oci_arg(c, "artifactType")};
	struct meta *m = meta_pool_acquire(c->core->pool);
	struct meta_repo r = {0};
	enum berr_code rc = oci_repo(c, m, &r, &err);
	if (rc == BERR_OK)
		rc = m->ops->image_referrers(m, r.id, c->ref, add_referrer, &rf, &err);
	meta_pool_release(c->core->pool, m);
	meta_repo_clear(&r);
	if (rc != BERR_OK) {
		oci_fail_err(c, &err);
	} else {
		json_t *body = json_pack("{s:i, s:s, s:O}", "schemaVersion", 2, "mediaType",
		                         MT_OCI_INDEX, "manifests", rf.list);
		send_json(c, body, MT_OCI_INDEX);
		json_decref(body);
		if (rf.filter)
			api_resp_header(c->resp, "OCI-Filters-Applied", "artifactType");
	}
	json_decref(rf.list);
}
