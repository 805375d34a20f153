/* oci.h - internals shared by the /v2 handlers (OCI Distribution Specification v1.1).
 *
 * The router parses /v2/<name>/<kind>/<ref>, authenticates (registry token or anonymous),
 * resolves the registry (token, else Host <account>.dkr.ecr.<region>.<domain>, else default;
 * with --credentials a Host naming another account than the token's is refused, DENIED) and
 * calls one handler. Handlers take a metadata connection only for the calls that need one,
 * never across a streamed body. */
#ifndef BERTH_OCI_H
#define BERTH_OCI_H

#include "api.h"

enum oci_kind {
	OCI_BASE,      /* /v2/ */
	OCI_CATALOG,   /* /v2/_catalog */
	OCI_TAGS,      /* /v2/<name>/tags/list */
	OCI_MANIFEST,  /* /v2/<name>/manifests/<ref> */
	OCI_BLOB,      /* /v2/<name>/blobs/<digest> */
	OCI_UPLOADS,   /* /v2/<name>/blobs/uploads/ */
	OCI_UPLOAD,    /* /v2/<name>/blobs/uploads/<uuid> */
	OCI_REFERRERS, /* /v2/<name>/referrers/<digest> */
	OCI_UNKNOWN,
};

struct oci_call {
	struct api_server *srv;
	struct core *core;
	const struct api_req *req;
	struct api_resp *resp;
	struct registry_id reg;
	/* The authenticated account (token or default); "" for a pre-signed download URL. */
	char caller[64];
	enum oci_kind kind;
	char *name; /* repository name (new) or NULL */
	char *ref;  /* tag/digest/uuid (new) or NULL */
};

/* Writes an OCI error response with code and message. Always returns code. */
enum berr_code oci_fail(struct api_resp *resp, enum berr_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Writes the error in err (mapping door-specific codes). */
void oci_fail_err(struct oci_call *c, const struct berr *err);
/* Loads the repository c->name of c->reg (NAME_UNKNOWN with ECR's message otherwise). */
enum berr_code oci_repo(struct oci_call *c, struct meta *m, struct meta_repo *r, struct berr *err);
/* First value of a request header / query argument. */
const char *oci_header(const struct oci_call *c, const char *name);
const char *oci_arg(const struct oci_call *c, const char *name);
/* Reads a setting document (registry "setting:<NAME>") value; def if unset. New string. */
char *oci_setting(struct meta *m, const struct registry_id *reg, const char *name, const char *def);

/* handlers (oci_blob.c, oci_upload.c, oci_manifest.c, oci_list.c) */
void oci_blob_get(struct oci_call *c);
void oci_blob_delete(struct oci_call *c);
void oci_upload_status(struct oci_call *c);
void oci_upload_cancel(struct oci_call *c);
/* POST/PATCH/PUT on uploads consume the body: they run from api_begin and return a plan. */
enum api_plan oci_upload_begin(struct oci_call *c, struct api_stream **stream);
void oci_manifest_get(struct oci_call *c);
void oci_manifest_put(struct oci_call *c);
void oci_manifest_delete(struct oci_call *c);
void oci_tags_list(struct oci_call *c);
void oci_catalog(struct oci_call *c);
void oci_referrers(struct oci_call *c);

/* Parses and authenticates a /v2 request into c (without touching the body). On failure the
 * error response is written and false returned. The call owns c->name/ref: oci_call_fini. */
bool oci_call_init(struct oci_call *c, struct api_server *s, const struct api_req *req,
                   struct api_resp *resp);
void oci_call_fini(struct oci_call *c);

#endif
