/* oci_router.c - the /v2 door: path parsing, authentication, registry selection, dispatch.
 *
 * Authentication follows ECR: with --credentials every request needs
 * `Authorization: Basic base64(AWS:<token>)` where the token comes from GetAuthorizationToken
 * (verified statelessly with the data-directory secret); otherwise 401 with a Basic challenge.
 * Without credentials anonymous access works. The token names the registry; without one the
 * Host `<account>.dkr.ecr.<region>.<domain>` does; else the default registry. With
 * --credentials, a Host naming another account than the token's addresses that account's
 * registry, which is refused with 403 DENIED and ECR's AccessDeniedException text (access.c:
 * no resource-based policy is evaluated yet), for every endpoint but the /v2/ version check;
 * without credentials the token still wins over the Host. Download URLs from
 * GetDownloadUrlForLayer carry their own signature instead of a token. */
#include "../base/feat.h"

#include "oci.h"
#include "../base/log.h"
#include "../base/mem.h"
#include "../base/util.h"
#include "../crypto/sha256.h"
#include "../crypto/token.h"
#include "../oci/manifest.h"
#include "../oci/ref.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum berr_code oci_fail(struct api_resp *resp, enum berr_code code, const char *fmt, ...)
{
	struct berr e;
	err_clear(&e);
	e.code = code;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(e.msg, sizeof(e.msg), fmt, ap);
	va_end(ap);
	api_oci_error(resp, &e);
	return code;
}

void oci_fail_err(struct oci_call *c, const struct berr *err)
{
	struct berr e = *err;
	/* Door-specific mappings: a too-long layer list is an invalid manifest here (a 429 would
	 * make clients retry); a digest mismatch on upload completion is DIGEST_INVALID. */
	if (e.code == BERR_LIMIT_EXCEEDED && c->kind == OCI_MANIFEST)
		e.code = BERR_MANIFEST_INVALID;
	if (err_oci_status(e.code) >= 500) {
		char what[300];
		snprintf(what, sizeof(what), "%s %.256s", c->req->method, c->req->path);
		api_log_failure(c->req->request_id, what, &e);
	}
	api_oci_error(c->resp, &e);
}

const char *oci_header(const struct oci_call *c, const char *name)
{
	return c->req->header(c->req->ctx, name);
}

const char *oci_arg(const struct oci_call *c, const char *name)
{
	return c->req->arg(c->req->ctx, name);
}

enum berr_code oci_repo(struct oci_call *c, struct meta *m, struct meta_repo *r, struct berr *err)
{
	return core_repo_get(m, &c->reg, c->name, r, err);
}

char *oci_setting(struct meta *m, const struct registry_id *reg, const char *name, const char *def)
{
	char *key = xasprintf("setting:%s", name);
	char *doc = NULL;
	struct berr e;
	char *value = NULL;
	if (core_doc_get(m, reg, key, &doc, &e) == BERR_OK) {
		json_t *j = json_loads(doc, 0, NULL);
		const char *v = json_string_value(json_object_get(j, "value"));
		if (v)
			value = xstrdup(v);
		json_decref(j);
	}
	free(doc);
	free(key);
	return value ? value : xstrdup(def);
}

/* ---- path parsing ---- */

static bool parse_path(struct oci_call *c, const char *path)
{
	c->kind = OCI_UNKNOWN;
	if (strcmp(path, "/v2") == 0 || strcmp(path, "/v2/") == 0) {
		c->kind = OCI_BASE;
		return true;
	}
	const char *p = path + 4; /* after "/v2/" */
	if (strcmp(p, "_catalog") == 0) {
		c->kind = OCI_CATALOG;
		return true;
	}
	const char *slash = strrchr(p, '/');
	if (!slash || slash == p)
		return false;
	const char *last = slash + 1;
	size_t head = (size_t)(slash - p); /* p[0..head) = "<name>/<kind>" */
	struct {
		const char *suffix;
		enum oci_kind kind;
	} kinds[] = {
	    {"/tags", OCI_TAGS},  {"/manifests", OCI_MANIFEST},  {"/blobs/uploads", OCI_UPLOAD},
	    {"/blobs", OCI_BLOB}, {"/referrers", OCI_REFERRERS},
	};
	for (size_t i = 0; i < ARRAY_LEN(kinds); i++) {
		size_t n = strlen(kinds[i].suffix);
		if (head <= n || strncmp(p + head - n, kinds[i].suffix, n) != 0)
			continue;
		c->kind = kinds[i].kind;
		if (c->kind == OCI_TAGS && strcmp(last, "list") != 0)
			return false;
		if (c->kind == OCI_UPLOAD && !*last)
			c->kind = OCI_UPLOADS;
		else if (c->kind != OCI_TAGS && !*last)
			return false;
		c->name = xstrndup(p, head - n);
		if (c->kind != OCI_TAGS && c->kind != OCI_UPLOADS)
			c->ref = xstrdup(last);
		return true;
	}
	return false;
}

/* ---- authentication ---- */

/* "<account>.dkr.ecr.<region>.<domain>[:port]" -> registry. */
static bool registry_from_host(const char *host, struct registry_id *reg)
{
	if (!host)
		return false;
	size_t n = strspn(host, "0123456789");
	if (n != 12 || strncmp(host + 12, ".dkr.ecr.", 9) != 0)
		return false;
	const char *region = host + 21;
	size_t rl = strspn(region, "abcdefghijklmnopqrstuvwxyz0123456789-");
	if (rl == 0 || rl >= sizeof(reg->region) || region[rl] != '.')
		return false;
	snprintf(reg->account, sizeof(reg->account), "%.12s", host);
	snprintf(reg->region, sizeof(reg->region), "%.*s", (int)rl, region);
	return true;
}

static void challenge(struct oci_call *c)
{
	char *realm = xasprintf("Basic realm=\"https://%s.dkr.ecr.%s.amazonaws.com/\","
	                        "service=\"ecr.amazonaws.com\"",
	                        c->reg.account, c->reg.region);
	api_resp_header(c->resp, "WWW-Authenticate", realm);
	free(realm);
}

/* Decodes "Basic base64(AWS:<password>)" and verifies the token. */
static enum berr_code check_token(struct oci_call *c, const char *authz, struct berr *err)
{
	if (strncasecmp(authz, "Basic ", 6) != 0)
		return err_set(err, BERR_AUTH_MISSING, "authentication required");
	const char *b64 = authz + 6;
	while (*b64 == ' ')
		b64++;
	unsigned char *raw = NULL;
	size_t len = 0;
	if (strlen(b64) > 8192 || base64_decode(b64, strlen(b64), &raw, &len, err) != BERR_OK)
		return err_set(err, BERR_AUTH_SIGNATURE, "Your authorization token is invalid.");
	char *s = xstrndup((const char *)raw, len);
	free(raw);
	enum berr_code rc;
	struct token_claims claims;
	if (strncmp(s, "AWS:", 4) != 0)
		rc = err_set(err, BERR_AUTH_SIGNATURE, "Your authorization token is invalid.");
	else
		rc = token_verify(c->core->secret, sizeof(c->core->secret), s + 4,
		                  clock_now_ms() / 1000, &claims, err);
	free(s);
	if (rc == BERR_OK) {
		snprintf(c->reg.account, sizeof(c->reg.account), "%s", claims.account);
		snprintf(c->reg.region, sizeof(c->reg.region), "%s", claims.region);
	}
	return rc;
}

static bool authenticate(struct oci_call *c)
{
	snprintf(c->reg.account, sizeof(c->reg.account), "%s", c->srv->default_account);
	snprintf(c->reg.region, sizeof(c->reg.region), "%s", DEFAULT_REGION);
	struct registry_id host;
	bool by_host = registry_from_host(oci_header(c, "Host"), &host);
	if (by_host)
		c->reg = host;
	/* A pre-signed download URL (GetDownloadUrlForLayer) authenticates itself. */
	if (c->kind == OCI_BLOB && oci_arg(c, "X-Berth-Signature"))
		return true;
	const char *authz = oci_header(c, "Authorization");
	struct berr err;
	err_clear(&err);
	if (!c->srv->creds) {
		/* Anonymous access; a valid token still selects its registry. */
		if (authz)
			check_token(c, authz, &err);
		snprintf(c->caller, sizeof(c->caller), "%s", c->reg.account);
		return true;
	}
	if (!authz) {
		challenge(c);
		oci_fail(c->resp, BERR_AUTH_MISSING, "authentication required");
		return false;
	}
	enum berr_code rc = check_token(c, authz, &err);
	if (rc == BERR_OK) {
		snprintf(c->caller, sizeof(c->caller), "%s", c->reg.account);
		/* The Host names another account's registry: oci_call_init refuses it. */
		if (by_host && strcmp(host.account, c->reg.account) != 0)
			c->reg = host;
		return true;
	}
	if (rc == BERR_TOKEN_EXPIRED) {
		oci_fail(c->resp, BERR_TOKEN_EXPIRED,
		         "Your authorization token has expired. Reauthenticate and try again.");
	} else {
		challenge(c);
		oci_fail(c->resp, BERR_AUTH_SIGNATURE, "%s", err.msg);
	}
	return false;
}

/* The ECR action a /v2 request stands for (the one ECR's own /v2 names when it denies). */
static const char *oci_action(const struct oci_call *c)
{
	const char *m = c->req->method;
	switch (c->kind) {
	case OCI_CATALOG:
		return "DescribeRepositories";
	case OCI_TAGS:
		return "ListImages";
	case OCI_REFERRERS:
		return "ListImageReferrers";
	case OCI_MANIFEST:
		return strcmp(m, "PUT") == 0      ? "PutImage"
		       : strcmp(m, "DELETE") == 0 ? "BatchDeleteImage"
		                                  : "BatchGetImage";
	case OCI_BLOB:
		return strcmp(m, "HEAD") == 0     ? "BatchCheckLayerAvailability"
		       : strcmp(m, "DELETE") == 0 ? "BatchDeleteImage"
		                                  : "GetDownloadUrlForLayer";
	case OCI_UPLOADS:
		return "InitiateLayerUpload";
	case OCI_UPLOAD:
		return strcmp(m, "PUT") == 0 ? "CompleteLayerUpload" : "UploadLayerPart";
	default:
		return "BatchGetImage";
	}
}

bool oci_call_init(struct oci_call *c, struct api_server *s, const struct api_req *req,
                   struct api_resp *resp)
{
	memset(c, 0, sizeof(*c));
	c->srv = s;
	c->core = s->core;
	c->req = req;
	c->resp = resp;
	api_resp_header(resp, "Docker-Distribution-Api-Version", "registry/2.0");
	if (!parse_path(c, req->path)) {
		oci_fail(resp, BERR_UNKNOWN_OPERATION, "unknown /v2 endpoint");
		return false;
	}
	if (!authenticate(c))
		return false;
	if (c->name && !ref_repo_name_is_valid(c->name)) {
		oci_fail(resp, BERR_NAME_INVALID, "invalid repository name '%.256s'", c->name);
		return false;
	}
	struct berr err;
	err_clear(&err);
	if (c->caller[0] && c->kind != OCI_BASE &&
	    api_access_check(s, c->caller, &c->reg, oci_action(c), c->name, &err) != BERR_OK) {
		api_oci_error(resp, &err);
		return false;
	}
	return true;
}

void oci_call_fini(struct oci_call *c)
{
	free(c->name);
	free(c->ref);
	c->name = c->ref = NULL;
}

static bool is(const struct api_req *req, const char *m)
{
	return strcmp(req->method, m) == 0;
}

static void method_not_allowed(struct oci_call *c)
{
	oci_fail(c->resp, BERR_METHOD_NOT_ALLOWED, "method %s not allowed on %s", c->req->method,
	         c->req->path);
}

enum api_plan oci_begin(struct api_server *s, const struct api_req *req, size_t *limit,
                        struct api_stream **stream, struct api_resp *resp)
{
	struct oci_call c;
	*limit = 0;
	bool writes_blob =
	    (is(req, "POST") && strstr(req->path, "/blobs/uploads/")) ||
	    ((is(req, "PATCH") || is(req, "PUT")) && strstr(req->path, "/blobs/uploads/"));
	if (!writes_blob) {
		/* Manifests are the only other bodies: buffer up to the manifest limit. */
		*limit = MANIFEST_MAX_BYTES;
		return API_PLAN_BUFFER;
	}
	if (!oci_call_init(&c, s, req, resp)) {
		oci_call_fini(&c);
		return API_PLAN_RESPOND;
	}
	enum api_plan plan = API_PLAN_RESPOND;
	if (c.kind == OCI_UPLOADS && is(req, "POST"))
		plan = oci_upload_begin(&c, stream);
	else if (c.kind == OCI_UPLOAD && (is(req, "PATCH") || is(req, "PUT")))
		plan = oci_upload_begin(&c, stream);
	else
		method_not_allowed(&c);
	oci_call_fini(&c);
	return plan;
}

void oci_route(struct api_server *s, const struct api_req *req, struct api_resp *resp)
{
	struct oci_call c;
	if (!oci_call_init(&c, s, req, resp)) {
		oci_call_fini(&c);
		return;
	}
	bool get = is(req, "GET") || is(req, "HEAD");
	switch (c.kind) {
	case OCI_BASE:
		if (!get) {
			method_not_allowed(&c);
			break;
		}
		api_resp_header(resp, "Content-Type", "application/json");
		api_resp_body(resp, xstrdup("{}"), 2);
		break;
	case OCI_CATALOG:
		get ? oci_catalog(&c) : method_not_allowed(&c);
		break;
	case OCI_TAGS:
		get ? oci_tags_list(&c) : method_not_allowed(&c);
		break;
	case OCI_REFERRERS:
		get ? oci_referrers(&c) : method_not_allowed(&c);
		break;
	case OCI_MANIFEST:
		if (get)
			oci_manifest_get(&c);
		else if (is(req, "PUT"))
			oci_manifest_put(&c);
		else if (is(req, "DELETE"))
			oci_manifest_delete(&c);
		else
			method_not_allowed(&c);
		break;
	case OCI_BLOB:
		if (get)
			oci_blob_get(&c);
		else if (is(req, "DELETE"))
			oci_blob_delete(&c);
		else
			method_not_allowed(&c);
		break;
	case OCI_UPLOAD:
		if (is(req, "GET"))
			oci_upload_status(&c);
		else if (is(req, "DELETE"))
			oci_upload_cancel(&c);
		else
			method_not_allowed(&c);
		break;
	default:
		method_not_allowed(&c);
		break;
	}
	oci_call_fini(&c);
}
