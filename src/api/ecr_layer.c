/* ecr_layer.c - layer (blob) operations of the ECR door (spec §3.3, §4.15). They share the
 * upload sessions and blob store with /v2 (core/upload.c): a layer uploaded here can be pulled
 * through /v2 and vice versa. */
#include "../base/feat.h"

#include "ecr.h"
#include "../base/mem.h"
#include "../base/util.h"
#include "../crypto/sha256.h"
#include "../oci/ref.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PART_BYTES 20971520

static void echo(struct ecr_call *c, const struct meta_repo *r, const char *upload_id)
{
	json_object_set_new(c->out, "registryId", json_string(r->account));
	json_object_set_new(c->out, "repositoryName", json_string(r->name));
	if (upload_id)
		json_object_set_new(c->out, "uploadId", json_string(upload_id));
}

enum berr_code ecr_initiate_layer_upload(struct ecr_call *c, struct berr *err)
{
	struct meta_repo r = {0};
	char id[37];
	enum berr_code rc = ep_repo(c, &r, err);
	if (rc == BERR_OK && (rc = core_upload_start(c->core, c->m, &r, id, err)) == BERR_OK) {
		json_object_set_new(c->out, "uploadId", json_string(id));
		json_object_set_new(c->out, "partSize", json_integer(ECR_PART_SIZE));
	}
	meta_repo_clear(&r);
	return rc;
}

static enum berr_code upload_id_param(struct ecr_call *c, const char **id, struct berr *err)
{
	enum berr_code rc = ep_str(c->in, "uploadId", true, 0, 0, id, err);
	if (rc == BERR_OK && !uuid_is_valid(*id))
		rc = ep_invalid(err, "uploadId",
		                "Member must satisfy regular expression '[0-9a-fA-F]{8}-[0-9a-fA-F]"
		                "{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}'");
	return rc;
}

/* InvalidLayerPartException carries the session's position. */
static enum berr_code part_invalid(struct ecr_call *c, const struct meta_repo *r, const char *id,
                                   int64_t last_byte, struct berr *err)
{
	c->err_extra = json_pack("{s:s, s:s, s:s, s:I}", "registryId", r->account, "repositoryName",
	                         r->name, "uploadId", id, "lastValidByteReceived",
	                         (json_int_t)(last_byte < 0 ? 0 : last_byte));
	err->code = BERR_LAYER_PART_INVALID;
	return BERR_LAYER_PART_INVALID;
}

enum berr_code ecr_upload_layer_part(struct ecr_call *c, struct berr *err)
{
	const char *id = NULL, *blob64 = NULL;
	long long first = 0, last = 0;
	bool has_first = false, has_last = false;
	unsigned char *bytes = NULL;
	size_t len = 0;
	struct meta_repo r = {0};
	struct core_upload_writer *w = NULL;
	enum berr_code rc;
	if ((rc = upload_id_param(c, &id, err)) != BERR_OK ||
	    (rc = ep_int(c->in, "partFirstByte", 0, INT64_MAX, &has_first, &first, err)) !=
	        BERR_OK ||
	    (rc = ep_int(c->in, "partLastByte", 0, INT64_MAX, &has_last, &last, err)) != BERR_OK ||
	    (rc = ep_str(c->in, "layerPartBlob", true, 0, 0, &blob64, err)) != BERR_OK)
		return rc;
	if (!has_first || !has_last)
		return ep_invalid(err, has_first ? "partLastByte" : "partFirstByte",
		                  "Member must not be null");
	if (base64_decode(blob64, strlen(blob64), &bytes, &len, err) != BERR_OK)
		return err_set(err, BERR_SERIALIZATION,
		               "Value for member 'layerPartBlob' is not valid base64");
	if (len > MAX_PART_BYTES) {
		rc = ep_invalid(err, "layerPartBlob",
		                "Member must have length less than or equal to 20971520");
		goto out;
	}
	if ((rc = ep_repo(c, &r, err)) != BERR_OK)
		goto out;
	rc = core_upload_open(c->core, c->m, &r, id, first, &w, err);
	if (rc == BERR_LAYER_PART_INVALID) {
		rc = part_invalid(c, &r, id, err->last_byte, err);
		goto out;
	}
	if (rc != BERR_OK)
		goto out;
	int64_t have = core_upload_writer_start(w);
	if (last < first || (unsigned long long)(last - first) + 1 != len) {
		err_set(err, BERR_LAYER_PART_INVALID,
		        "The part's byte range %lld-%lld does not match its length %zu", first,
		        last, len);
		rc = part_invalid(c, &r, id, have - 1, err);
		goto out;
	}
	if (core_upload_writer_parts(w) >= ECR_MAX_PARTS) {
		rc = err_set(err, BERR_LIMIT_EXCEEDED,
		             "The upload '%s' already has the maximum of %d parts", id,
		             ECR_MAX_PARTS);
		goto out;
	}
	int64_t size = 0;
	if ((rc = core_upload_write(w, bytes, len, err)) != BERR_OK)
		goto out;
	rc = core_upload_close(w, c->m, &size, err);
	w = NULL;
	if (rc != BERR_OK)
		goto out;
	echo(c, &r, id);
	json_object_set_new(c->out, "lastByteReceived", json_integer(size - 1));
out:
	core_upload_abort(w);
	free(bytes);
	meta_repo_clear(&r);
	return rc;
}

enum berr_code ecr_complete_layer_upload(struct ecr_call *c, struct berr *err)
{
	const char *id = NULL;
	json_t *digests = NULL;
	struct meta_repo r = {0};
	enum berr_code rc;
	if ((rc = upload_id_param(c, &id, err)) != BERR_OK ||
	    (rc = ep_array(c->in, "layerDigests", true, 1, 100, &digests, err)) != BERR_OK)
		return rc;
	size_t n = json_array_size(digests);
	const char **want = xcalloc(n, sizeof(*want));
	for (size_t i = 0; i < n; i++) {
		json_t *d = json_array_get(digests, i);
		if (!json_is_string(d)) {
			rc = err_set(err, BERR_SERIALIZATION,
			             "Unexpected value type in 'layerDigests': expected string");
			goto out;
		}
		want[i] = json_string_value(d);
		if (!ref_digest_matches_ecr_pattern(want[i])) {
			rc = ep_invalid(err, "layerDigests",
			                "Member must satisfy regular expression "
			                "'[a-zA-Z0-9-_+.]+:[a-fA-F0-9]+'");
			goto out;
		}
	}
	if ((rc = ep_repo(c, &r, err)) != BERR_OK)
		goto out;
	char digest[DIGEST_STR_LEN];
	rc = core_upload_complete(c->core, c->m, &r, id, want, n, CORE_UPLOAD_ECR, digest, err);
	if (rc == BERR_OK) {
		echo(c, &r, id);
		json_object_set_new(c->out, "layerDigest", json_string(digest));
	}
out:
	free(want);
	meta_repo_clear(&r);
	return rc;
}

enum berr_code ecr_batch_check_layer_availability(struct ecr_call *c, struct berr *err)
{
	json_t *digests = NULL;
	struct meta_repo r = {0};
	enum berr_code rc = ep_array(c->in, "layerDigests", true, 1, 100, &digests, err);
	if (rc != BERR_OK)
		return rc;
	size_t i;
	json_t *d;
	json_array_foreach (digests, i, d) {
		if (!json_is_string(d))
			return err_set(err, BERR_SERIALIZATION,
			               "Unexpected value type in 'layerDigests': expected string");
		if (json_string_length(d) > 1000)
			return ep_invalid(err, "layerDigests",
			                  "Member must have length less than or equal to 1000");
	}
	if ((rc = ep_repo(c, &r, err)) != BERR_OK)
		return rc;
	json_t *layers = json_array(), *failures = json_array();
	json_object_set_new(c->out, "layers", layers);
	json_object_set_new(c->out, "failures", failures);
	json_array_foreach (digests, i, d) {
		const char *dg = json_string_value(d);
		if (!*dg) {
			json_array_append_new(
			    failures, json_pack("{s:s, s:s, s:s}", "layerDigest", dg, "failureCode",
			                        "MissingLayerDigest", "failureReason",
			                        "Layer digest must not be empty"));
			continue;
		}
		if (!ref_digest_matches_ecr_pattern(dg)) {
			json_array_append_new(failures,
			                      json_pack("{s:s, s:s, s:s}", "layerDigest", dg,
			                                "failureCode", "InvalidLayerDigest",
			                                "failureReason", "Invalid layer digest"));
			continue;
		}
		int64_t size = 0;
		char *mt = NULL;
		struct berr ferr;
		enum berr_code brc = core_blob_get(c->m, &r, dg, &size, &mt, NULL, &ferr);
		if (brc == BERR_OK) {
			json_t *l =
			    json_pack("{s:s, s:s, s:I}", "layerDigest", dg, "layerAvailability",
			              "AVAILABLE", "layerSize", (json_int_t)size);
			if (mt)
				json_object_set_new(l, "mediaType", json_string(mt));
			json_array_append_new(layers, l);
		} else if (brc == BERR_BLOB_UNKNOWN) {
			json_array_append_new(layers,
			                      json_pack("{s:s, s:s}", "layerDigest", dg,
			                                "layerAvailability", "UNAVAILABLE"));
		} else {
			*err = ferr;
			rc = brc;
			break;
		}
		free(mt);
	}
	meta_repo_clear(&r);
	return rc;
}

enum berr_code ecr_get_download_url_for_layer(struct ecr_call *c, struct berr *err)
{
	const char *digest = NULL;
	struct meta_repo r = {0};
	bool referenced = false;
	enum berr_code rc = ep_str(c->in, "layerDigest", true, 0, 0, &digest, err);
	if (rc != BERR_OK)
		return rc;
	if (!ref_digest_matches_ecr_pattern(digest))
		return ep_invalid(err, "layerDigest",
		                  "Member must satisfy regular expression "
		                  "'[a-zA-Z0-9-_+.]+:[a-fA-F0-9]+'");
	if ((rc = ep_repo(c, &r, err)) != BERR_OK)
		return rc;
	rc = core_blob_get(c->m, &r, digest, NULL, NULL, &referenced, err);
	if (rc == BERR_BLOB_UNKNOWN) {
		rc =
		    err_set(err, BERR_LAYERS_NOT_FOUND,
		            "The layer with digest '%s' does not exist in the repository with name "
		            "'%s' in the registry with id '%s'",
		            digest, r.name, r.account);
	} else if (rc == BERR_OK && !referenced) {
		rc = err_set(err, BERR_LAYER_INACCESSIBLE,
		             "The layer with digest '%s' is not referenced by any image in the "
		             "repository with name '%s'; you can only get URLs for layers that are "
		             "referenced by an image",
		             digest, r.name);
	}
	if (rc == BERR_OK) {
		/* A URL served by berth itself, valid like a pre-signed S3 URL for a limited
		 * time, reachable at the address the client used for this call. */
		const char *host = c->req->header(c->req->ctx, "Host");
		int64_t exp = clock_now_ms() / 1000 + TOKEN_TTL_S;
		struct registry_id reg = registry_id_of(r.account, r.region);
		char *sig = core_blob_url_sig(c->core, &reg, r.name, digest, exp);
		char *url = host ? xasprintf("http://%s", host) : xstrdup(c->srv->base_url);
		char *full = xasprintf("%s/v2/%s/blobs/%s?X-Berth-Registry=%s&X-Berth-Region=%s&"
		                       "X-Berth-Expires=%" PRId64 "&X-Berth-Signature=%s",
		                       url, r.name, digest, r.account, r.region, exp, sig);
		json_object_set_new(c->out, "downloadUrl", json_string(full));
		json_object_set_new(c->out, "layerDigest", json_string(digest));
		free(sig);
		free(url);
		free(full);
	}
	meta_repo_clear(&r);
	return rc;
}
