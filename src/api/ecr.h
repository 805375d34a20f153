/* ecr.h - internals shared by the ECR handlers: the call context, parameter validation that
 * produces ECR's exact InvalidParameterException texts, and JSON shapes used by several
 * operations. Handlers are `enum berr_code ecr_<operation>(struct ecr_call *, struct berr *)`:
 * they read c->in, fill c->out (a new object created by the router) and on failure return a
 * code with the message set; they may set c->err_extra (new reference) for exceptions with
 * extra members. */
#ifndef BERTH_ECR_H
#define BERTH_ECR_H

#include "api.h"
#include "../base/buf.h"

struct ecr_call {
	struct api_server *srv;
	struct core *core;
	struct meta *m;
	const struct api_req *req;
	struct registry_id caller; /* account of the credentials, region of the scope */
	const char *action;        /* the operation's name, e.g. "DeleteRepository" (static) */
	json_t *in;                /* borrowed: the request object */
	json_t *out;               /* the response object, owned by the router */
	json_t *err_extra;         /* optional extra error members (new reference) */
	/* Hot paths may write the response JSON text themselves (see buf_json_string); when
	 * raw_out.len > 0 the router sends it instead of serialising out. */
	struct buf raw_out;
};

typedef enum berr_code (*ecr_handler_fn)(struct ecr_call *c, struct berr *err);

/* The call's pool connection (c->m), borrowed on first use for handlers that start without
 * one; the router returns it. */
struct meta *ecr_meta(struct ecr_call *c);

#define X(op, fn) enum berr_code fn(struct ecr_call *c, struct berr *err);
#include "ecr_actions.def"
#undef X

/* ---- parameters (ecr_params.c) ----
 * All getters: absent or JSON null -> *out untouched and BERR_OK unless required (then
 * InvalidParameterException "... 'Member must not be null'"); wrong JSON type ->
 * SerializationException naming the member. */
enum berr_code ep_str(json_t *obj, const char *name, bool required, size_t min, size_t max,
                      const char **out, struct berr *err);
enum berr_code ep_bool(json_t *obj, const char *name, bool *out, struct berr *err);
enum berr_code ep_int(json_t *obj, const char *name, long long min, long long max, bool *has,
                      long long *out, struct berr *err);
enum berr_code ep_array(json_t *obj, const char *name, bool required, size_t min, size_t max,
                        json_t **out, struct berr *err);
enum berr_code ep_object(json_t *obj, const char *name, bool required, json_t **out,
                         struct berr *err);
enum berr_code ep_enum(json_t *obj, const char *name, bool required, const char *const *values,
                       const char **out, struct berr *err);
/* Invalid parameter at '<name>' failed to satisfy constraint: '<fmt...>' */
enum berr_code ep_invalid(struct berr *err, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* repositoryName: required, length 2..256, ECR's pattern (which a NUL byte never matches). */
enum berr_code ep_repo_name(json_t *obj, const char *name, const char **out, struct berr *err);
/* Request bodies are parsed with JSON_ALLOW_NUL ("\u0000" is valid JSON: a NUL in a member
 * gets that member's InvalidParameterException, not SerializationException). Handlers read
 * strings as C strings, where "a\u0000b" would read as "a"; so the router calls this before
 * any handler: the first top-level member (in document order) holding a string with a NUL
 * anywhere inside it fails, a top-level repositoryName as ep_repo_name fails it, any other
 * member with "Member must not contain NUL characters". ep_str refuses NULs as well. */
enum berr_code ep_nul_check(json_t *in, struct berr *err);
/* The addressed registry: registryId if given (any string up to 63 chars; malformed ids name
 * empty registries) else the caller's account; region of the caller. strict: registryId must
 * be 12 digits (CreateRepository). Another account's registry is refused (api_access_check:
 * AccessDeniedException for c->action on repository `repo`, NULL meaning all of them). */
enum berr_code ep_registry(struct ecr_call *c, bool strict, const char *repo,
                           struct registry_id *out, struct berr *err);
/* registryId + repositoryName from the request (name borrowed from the request); refused as
 * in ep_registry. */
enum berr_code ep_repo_addr(struct ecr_call *c, struct registry_id *reg, const char **name,
                            struct berr *err);
/* Repo lookup with registryId + repositoryName from the request. */
enum berr_code ep_repo(struct ecr_call *c, struct meta_repo *out, struct berr *err);
/* Pagination: maxResults (1..max, default def) and nextToken (opaque cursor). */
struct ep_page {
	long long limit;
	int64_t after; /* resume after this row id */
	int64_t skip;  /* entries of the next row already returned */
	bool given;    /* maxResults or nextToken present */
};
enum berr_code ep_page(json_t *obj, long long max, long long def, struct ep_page *pg,
                       struct berr *err);
/* A nextToken for a cursor position. */
json_t *ep_token(int64_t last_id, int64_t skip);

/* ---- shapes (ecr_shapes.c) ---- */
const char *ecr_partition(const char *region);
const char *ecr_dns_suffix(const char *region);
/* The Repository object of a row. */
json_t *ecr_repository_json(const struct meta_repo *r);
/* Epoch milliseconds as the JSON number of seconds ECR uses. */
json_t *ecr_time(int64_t ms);
/* The same number written as JSON text into b. */
void ecr_time_raw(struct buf *b, int64_t ms);

#endif
