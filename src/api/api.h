/* api.h - the protocol adapters' socket-free request/response model. The http layer fills a
 * struct api_req from libmicrohttpd and turns a struct api_resp into a response; everything in
 * api/ can therefore be driven in-process by tests.
 *
 * Ownership: the request and everything it points to are borrowed for the call. The response
 * owns its body and header strings (api_resp_free releases them) and, when fd >= 0, the file
 * descriptor, which the http layer hands to libmicrohttpd. */
#ifndef BERTH_API_H
#define BERTH_API_H

#include "../base/err.h"
#include "../core/core.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Largest ECR request body: UploadLayerPart carries up to 20 MiB as base64 (~27 MiB). */
#define API_ECR_MAX_BODY (32 * 1024 * 1024)

struct api_req {
	const char *method;
	const char *path;  /* as sent, without the query */
	const char *query; /* raw query string without '?', or NULL */
	/* First value of a header (case-insensitive name) or NULL. */
	const char *(*header)(void *ctx, const char *name);
	/* Decoded value of a query argument or NULL. */
	const char *(*arg)(void *ctx, const char *name);
	void *ctx;
	const char *body;
	size_t body_len;
	bool body_too_large; /* the body exceeded the limit chosen by api_begin (body is NULL) */
	char request_id[37];
};

struct api_header {
	char *name;
	char *value;
};

struct api_resp {
	int status;
	struct api_header *headers;
	size_t nheaders;
	char *body;
	size_t body_len;
	int fd; /* >= 0: send this file's [offset, offset+length) as the body */
	int64_t offset;
	int64_t length;
	bool head; /* HEAD: send headers (incl. Content-Length) only */
};

/* One access key from --credentials. */
struct api_cred {
	char *akid;
	char *secret;
	char account[13];
};

struct api_server {
	struct core *core;
	struct api_cred *creds; /* NULL when no --credentials: any signature accepted */
	size_t ncreds;
	char default_account[13];
	char *base_url; /* "http://host:port" used in download URLs */
};

void api_resp_init(struct api_resp *r);
void api_resp_free(struct api_resp *r);
void api_resp_header(struct api_resp *r, const char *name, const char *value);
/* Takes ownership of body (malloc'd). */
void api_resp_body(struct api_resp *r, char *body, size_t len);

/* Loads a credentials file: lines "AKID SECRET ACCOUNT", '#' comments. */
enum berr_code api_creds_load(struct api_server *s, const char *path, struct berr *err);
void api_server_fini(struct api_server *s);

/* A request body consumer for streamed uploads (blob PATCH/PUT/POST on /v2): the http layer
 * feeds body chunks to write() as they arrive, then calls finish() once (which fills the
 * response and frees the stream), or abort() if the connection dies (frees it). After a write
 * error the http layer discards the rest of the body and still calls finish(), which reports
 * the error. */
struct api_stream {
	enum berr_code (*write)(struct api_stream *st, const void *data, size_t len,
	                        struct berr *err);
	void (*finish)(struct api_stream *st, const struct api_req *req, struct api_resp *resp);
	void (*abort)(struct api_stream *st);
};

enum api_plan {
	API_PLAN_BUFFER,  /* read the body (up to *limit bytes), then api_handle */
	API_PLAN_STREAM,  /* feed the body to *stream */
	API_PLAN_RESPOND, /* resp is complete; do not read the body */
};

/* Called when the request headers have arrived (req->body is NULL). Chooses how the body is
 * consumed. */
enum api_plan api_begin(struct api_server *s, const struct api_req *req, size_t *limit,
                        struct api_stream **stream, struct api_resp *resp);

/* Entry point for a complete request (body fully read). */
void api_handle(struct api_server *s, const struct api_req *req, struct api_resp *resp);

/* ---- shared by the doors (errmap.c) ---- */

/* Writes an ECR JSON error (status, __type, message, extra members merged from extra which
 * may be NULL and is borrowed). */
void api_ecr_error(struct api_resp *r, const struct berr *e, json_t *extra);
/* Writes an OCI error body {"errors":[{code,message,detail}]} with the mapped status. */
void api_oci_error(struct api_resp *r, const struct berr *e);
/* Logs a request that failed on the server's side (a 5xx): "<request id> <what>: <message>".
 * A full disk refuses every push while it lasts: that cause is logged once, then at most once
 * every 10 s with the number of requests refused meanwhile, not once per request. */
void api_log_failure(const char *request_id, const char *what, const struct berr *e);
/* Serialises a JSON value as the response body (compact; reals with ms precision). */
void api_json_body(struct api_resp *r, json_t *v);

/* The OCI descriptor of a referrer image (mediaType, digest, size, artifactType, annotations),
 * shared by GET /v2/<name>/referrers and ListImageReferrers. New reference. */
json_t *api_referrer_descriptor(const struct meta_image *img);

/* ---- cross-account isolation (access.c) ---- */

/* The AWS partition of a region ("aws", "aws-cn", ...). Static string. */
const char *api_partition(const char *region);
/* Whether a caller of caller_account may perform ECR action `action` (e.g. "DeleteRepository")
 * on repository `repo` (NULL or "" for all of them) of registry `target`. With --credentials
 * only the caller's own account is allowed (resource-based policies are not evaluated yet);
 * without, every registry is. BERR_DENIED with ECR's AccessDeniedException message otherwise.
 * Thread-safe. */
enum berr_code api_access_check(const struct api_server *s, const char *caller_account,
                                const struct registry_id *target, const char *action,
                                const char *repo, struct berr *err);

/* ---- routers ---- */
void ecr_route(struct api_server *s, const struct api_req *req, struct api_resp *resp);
void oci_route(struct api_server *s, const struct api_req *req, struct api_resp *resp);
enum api_plan oci_begin(struct api_server *s, const struct api_req *req, size_t *limit,
                        struct api_stream **stream, struct api_resp *resp);

/* True for paths served by the /v2 door. */
bool api_is_oci_path(const char *path);

#endif
