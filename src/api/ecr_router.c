/* ecr_router.c - the ECR door: AWS JSON 1.1 over POST / (spec §1).
 *
 * Pipeline: X-Amz-Target -> operation; authentication (SigV4 when --credentials is set, else
 * the credential scope only supplies the region); body -> JSON object; handler with a pooled
 * metadata connection; response or error via errmap.c. */
#include "../base/feat.h"

#include "ecr.h"
#include "../base/log.h"
#include "../base/mem.h"
#include "../base/util.h"
#include "../base/json_fast.h"
#include "../crypto/sigv4.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TARGET_PREFIX "AmazonEC2ContainerRegistry_V20150921."

struct ecr_action {
	const char *name;
	ecr_handler_fn fn;
};

static const struct ecr_action ecr_actions[] = {
#define X(op, fn) {#op, fn},
#include "ecr_actions.def"
#undef X
};

static const struct ecr_action *find_action(const char *target)
{
	if (!target || !str_has_prefix(target, TARGET_PREFIX))
		return NULL;
	const char *op = target + strlen(TARGET_PREFIX);
	for (size_t i = 0; i < ARRAY_LEN(ecr_actions); i++)
		if (strcmp(ecr_actions[i].name, op) == 0)
			return &ecr_actions[i];
	return NULL;
}

static const char *hdr(const struct api_req *req, const char *name)
{
	return req->header(req->ctx, name);
}

struct sig_ctx {
	const struct api_req *req;
};

static const char *sig_header(void *ctx, const char *lower_name)
{
	struct sig_ctx *s = ctx;
	return hdr(s->req, lower_name);
}

static bool region_ok(const char *r)
{
	if (!*r || strlen(r) > 63)
		return false;
	for (; *r; r++)
		if (!((*r >= 'a' && *r <= 'z') || (*r >= '0' && *r <= '9') || *r == '-'))
			return false;
	return true;
}

/* Establishes the caller: account and region. */
static enum berr_code authenticate(struct api_server *s, const struct api_req *req,
                                   struct registry_id *who, struct berr *err)
{
	snprintf(who->account, sizeof(who->account), "%s", s->default_account);
	snprintf(who->region, sizeof(who->region), "%s", DEFAULT_REGION);
	const char *authz = hdr(req, "Authorization");
	struct sigv4_auth auth;
	if (!s->creds) {
		/* No credentials configured: accept any signature; the scope names the region. */
		struct berr ignore;
		if (authz && sigv4_parse_authorization(authz, &auth, &ignore) == BERR_OK &&
		    region_ok(auth.region))
			snprintf(who->region, sizeof(who->region), "%s", auth.region);
		return BERR_OK;
	}
	if (!authz || !*authz)
		return err_set(err, BERR_AUTH_MISSING, "Missing Authentication Token");
	enum berr_code rc = sigv4_parse_authorization(authz, &auth, err);
	if (rc != BERR_OK)
		return rc;
	const struct api_cred *cred = NULL;
	for (size_t i = 0; i < s->ncreds; i++)
		if (strcmp(s->creds[i].akid, auth.akid) == 0)
			cred = &s->creds[i];
	if (!cred)
		return err_set(err, BERR_AUTH_UNKNOWN_KEY,
		               "The security token included in the request is invalid.");
	char payload[DIGEST_STR_LEN];
	sha256_digest_str(req->body ? req->body : "", req->body_len, payload);
	struct sig_ctx sc = {req};
	struct sigv4_request sr = {
	    .method = req->method,
	    .path = req->path,
	    .query = req->query,
	    .header = sig_header,
	    .header_ctx = &sc,
	    .payload_hash = payload + 7,
	};
	if ((rc = sigv4_verify(&sr, &auth, cred->secret, clock_now_ms(), err)) != BERR_OK)
		return rc;
	if (!region_ok(auth.region))
		return err_set(err, BERR_AUTH_SIGNATURE,
		               "Credential should be scoped to a valid region.");
	snprintf(who->account, sizeof(who->account), "%s", cred->account);
	snprintf(who->region, sizeof(who->region), "%s", auth.region);
	return BERR_OK;
}

/* A put waits in the group commit on the writer connection: holding a pool connection there
 * would cap concurrent puts at the pool's size and keep it from readers, so PutImage borrows
 * one (ecr_meta) only if it needs one. */
static bool borrows_lazily(const struct ecr_action *a)
{
	return a->fn == ecr_put_image;
}

struct meta *ecr_meta(struct ecr_call *c)
{
	if (!c->m)
		c->m = meta_pool_acquire(c->core->pool);
	return c->m;
}

void ecr_route(struct api_server *s, const struct api_req *req, struct api_resp *resp)
{
	struct berr err;
	err_clear(&err);
	json_t *in = NULL, *extra = NULL;
	struct ecr_call call = {0};
	const char *target = hdr(req, "X-Amz-Target");
	const struct ecr_action *act = NULL;
	enum berr_code rc = BERR_OK;

	if (strcmp(req->method, "POST") != 0 || strcmp(req->path, "/") != 0) {
		rc = err_set(&err, BERR_UNKNOWN_OPERATION, "%s %s is not an ECR API operation",
		             req->method, req->path);
		goto out;
	}
	if (!(act = find_action(target))) {
		rc = err_set(&err, BERR_UNKNOWN_OPERATION, "Operation %s is not supported",
		             target ? target : "(missing X-Amz-Target)");
		goto out;
	}
	if ((rc = authenticate(s, req, &call.caller, &err)) != BERR_OK)
		goto out;
	if (req->body_len == 0) {
		in = json_object();
	} else {
		/* what jansson accepts: invalid UTF-8 is refused, nesting bounded; "\u0000" in a
		 * string is valid JSON, refused below as the member's error */
		if (!(in = json_fast_loadb(req->body, req->body_len, JSON_ALLOW_NUL)) ||
		    !json_is_object(in)) {
			rc = err_set(&err, BERR_SERIALIZATION,
			             "The request body is not a valid JSON object");
			goto out;
		}
		/* no string can hold a NUL unless the text has this escape (a raw NUL byte is
		 * not JSON): the walk is skipped for nearly every request */
		if (memmem(req->body, req->body_len, "\\u0000", 6) &&
		    (rc = ep_nul_check(in, &err)) != BERR_OK)
			goto out;
	}
	call.srv = s;
	call.core = s->core;
	call.req = req;
	call.action = act->name;
	call.in = in;
	call.out = json_object();
	if (!borrows_lazily(act))
		call.m = meta_pool_acquire(s->core->pool);
	rc = act->fn(&call, &err);
	if (call.m)
		meta_pool_release(s->core->pool, call.m);
	extra = call.err_extra;
	if (rc == BERR_OK && call.raw_out.len) {
		size_t len = 0;
		char *body = buf_steal(&call.raw_out, &len);
		api_resp_body(resp, body, len);
		api_resp_header(resp, "Content-Type", "application/x-amz-json-1.1");
	} else if (rc == BERR_OK) {
		api_json_body(resp, call.out);
		api_resp_header(resp, "Content-Type", "application/x-amz-json-1.1");
	}
out:
	if (rc != BERR_OK) {
		if (err.code == BERR_OK)
			err_set(&err, rc, "internal error");
		if (err_ecr_status(rc) >= 500) {
			char what[96];
			snprintf(what, sizeof(what), "ecr %s", act ? act->name : "?");
			api_log_failure(req->request_id, what, &err);
		} else
			log_debug("%s ecr %s: %s: %s", req->request_id, act ? act->name : "?",
			          err_ecr_type(rc), err.msg);
		api_ecr_error(resp, &err, extra);
	}
	api_resp_header(resp, "x-amzn-RequestId", req->request_id);
	json_decref(extra);
	json_decref(call.out);
	buf_free(&call.raw_out);
	json_decref(in);
}
