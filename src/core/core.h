/* core.h - registry semantics shared by the ECR and OCI doors: repositories, images, tags,
 * uploads, blob access, registry documents. No HTTP, no JSON wire format, no SQL.
 *
 * Callers pass a metadata connection (`struct meta *`, one per thread) and the registry the
 * request addresses. Functions that change state run their own transaction; they return domain
 * error codes (BERR_REPO_NOT_FOUND, ...) with the ECR message texts of shared/spec/ECR-API.md,
 * which the OCI door reuses. Blob bytes are made durable before any row that refers to them
 * is committed (see docs/design.md "write order"). */
#ifndef BERTH_CORE_H
#define BERTH_CORE_H

#include "../base/err.h"
#include "../blob/blob.h"
#include "../crypto/sha256.h"
#include "../meta/meta.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define DEFAULT_ACCOUNT "123456789012"
#define DEFAULT_REGION "us-east-1"
/* ECR API rule: every part of a layer upload but the last must be at least 5 MiB. */
#define ECR_MIN_PART_SIZE (5 * 1024 * 1024)
#define ECR_PART_SIZE 10485760
#define ECR_MAX_PARTS 4200
/* Registry tokens and download URLs live 12 hours (ECR's token lifetime). */
#define TOKEN_TTL_S (12 * 3600)

struct core_pulls;      /* pending lastRecordedPullTime updates (pull.c) */
struct core_writer;     /* group commit queue and its connection (txn.c) */
struct core_list_cache; /* recent tags/list first pages (listcache.c) */

struct core {
	struct meta_pool *pool;
	struct core_pulls *pulls;
	struct core_writer *writer;
	struct core_list_cache *lists;
	struct blob_store *blobs;
	char *lock_dir;                    /* data-dir/locks: upload session locks */
	unsigned char secret[32];          /* HMAC key for registry tokens and download URLs */
	int64_t reserve;                   /* storage reserve in bytes; -1: CORE_RESERVE_DEFAULT */
	_Atomic int64_t space_ok_until[2]; /* space.c: clock_mono_ms() until which to skip checks */
};

/* ---- the storage reserve (space.c) ----
 * Space kept free on the file systems of the blob store and of the database, so that deletes,
 * gc and lifecycle - which need a little room to record what they free - still work when
 * pushes have filled the disk. Pushes stop at the reserve with BERR_NO_SPACE; nothing else
 * is refused. Default: 64 MiB, or a tenth of a file system smaller than 640 MiB. */
#define CORE_RESERVE_DEFAULT (64LL << 20)
enum core_space { CORE_SPACE_BLOBS, CORE_SPACE_META };
/* BERR_NO_SPACE if writing `need` more bytes where `where` grows would leave less free than
 * the reserve. Stores that cannot tell their free space never refuse. m: the pooled
 * connection the caller holds, or NULL if it holds none; CORE_SPACE_META asks the database
 * on m, or on a connection borrowed from the pool if m is NULL. A caller holding a connection
 * must pass it: waiting for a second one while holding one deadlocks the pool once every
 * connection is held by a thread doing the same. Thread-safe. */
enum berr_code core_space_check(struct core *c, struct meta *m, enum core_space where, int64_t need,
                                struct berr *err);

/* A registry = (account, region). account is 12 digits for registries that can hold
 * repositories; lookups accept any short string (a malformed id names an empty registry). */
struct registry_id {
	char account[64];
	char region[64];
};

/* The registry of a repository row (or any account/region pair), truncated to fit. */
static inline struct registry_id registry_id_of(const char *account, const char *region)
{
	struct registry_id r;
	snprintf(r.account, sizeof(r.account), "%s", account);
	snprintf(r.region, sizeof(r.region), "%s", region);
	return r;
}

/* Opens the data directory: creates it, the blob store, the database (migrated) and the
 * server secret (data-dir/secret, 0600, created once). pool_size connections. */
enum berr_code core_open(const char *data_dir, int pool_size, struct core **out, struct berr *err);
void core_close(struct core *c);

/* Makes the calling process the one server of data_dir (created if missing): takes an
 * exclusive flock(2) on data-dir/serve.lock without waiting and writes the PID into it. *fd is
 * the lock, held until core_serve_unlock or the process exits. BERR_CONFLICT "data directory
 * DIR is in use by another berth serve (pid N)" when another process holds it. Only `berth
 * serve` takes it; maintenance commands run beside a server. Call before core_open. */
enum berr_code core_serve_lock(const char *data_dir, int *fd, struct berr *err);
void core_serve_unlock(int fd);

/* ---- group commit ---- */

/* A change to run inside a transaction on the connection m it is given (not the caller's). */
typedef enum berr_code (*core_txn_fn)(struct meta *m, void *ctx, struct berr *err);
/* Runs fn in a transaction shared with concurrent callers (one commit for all of them, see
 * txn.c) and returns its result once that commit is durable. fn's error undoes only fn's
 * changes. fn may be run more than once (the last run counts: it sets its outputs afresh each
 * time) and must not call core_txn. Thread-safe. */
enum berr_code core_txn(struct core *c, core_txn_fn fn, void *ctx, struct berr *err);

/* ---- cached list pages (listcache.c) ---- */

/* A built page: the response body, and the last name on it when there are more (for the
 * Link header), else NULL. */
struct core_list_page {
	char *body;
	size_t len;
	char *last;
};
void core_list_page_clear(struct core_list_page *p);
struct core_list_cache *core_list_cache_new(void);
void core_list_cache_free(struct core_list_cache *lc);
/* A copy of the page of n names cached for repository repo_id at tags version version, if
 * any (false otherwise). Thread-safe. */
bool core_list_cache_get(struct core_list_cache *lc, int64_t repo_id, int64_t version, long long n,
                         struct core_list_page *out);
/* Caches a copy of page, built from rows read after reading version (see listcache.c). */
void core_list_cache_put(struct core_list_cache *lc, int64_t repo_id, int64_t version, long long n,
                         const struct core_list_page *page);

/* ---- repositories ---- */

/* Loads repository name of reg into *out (meta_repo_clear it). BERR_REPO_NOT_FOUND with ECR's
 * message otherwise. */
enum berr_code core_repo_get(struct meta *m, const struct registry_id *reg, const char *name,
                             struct meta_repo *out, struct berr *err);
/* Inserts r (account/region/name and settings filled by the caller; created_at set here).
 * BERR_REPO_EXISTS if the name is taken. */
enum berr_code core_repo_create(struct meta *m, struct meta_repo *r, struct berr *err);
/* Deletes a repository with its images, tags, links and uploads. Without force a repository
 * holding images fails with BERR_REPO_NOT_EMPTY. *out receives the row as it was. */
enum berr_code core_repo_delete(struct core *c, struct meta *m, const struct registry_id *reg,
                                const char *name, bool force, struct meta_repo *out,
                                struct berr *err);
/* Writes the mutable settings of r (already loaded with core_repo_get). */
enum berr_code core_repo_save(struct meta *m, const struct meta_repo *r, struct berr *err);
/* True if tag may not be moved in r (mutability + exclusion filters, spec §4.6). */
bool core_tag_is_immutable(const struct meta_repo *r, const char *tag);

/* ---- images ---- */

enum core_put_mode {
	CORE_PUT_ECR, /* re-push of a tag already on the image -> BERR_IMAGE_EXISTS */
	CORE_PUT_OCI, /* same case is an idempotent success */
};

struct core_put_result {
	char digest[DIGEST_STR_LEN];
	char *media_type; /* new: the effective manifest media type */
	char *subject;    /* new or NULL: subject digest (OCI-Subject header) */
};

/* Stores manifest bytes data[0..len) in repo, optionally tagging it (tag may be NULL).
 * expect_digest (may be NULL) must equal the computed digest. Errors: BERR_MANIFEST_INVALID,
 * BERR_MANIFEST_TOO_LARGE, BERR_LIMIT_EXCEEDED, BERR_IMAGE_DIGEST_MISMATCH,
 * BERR_LAYERS_NOT_FOUND, BERR_REFERENCED_NOT_FOUND, BERR_IMAGE_EXISTS (ECR mode),
 * BERR_TAG_IMMUTABLE. res->media_type/subject are new on success.
 * repo is a repository row, or only account, region and name (heap strings) with id 0: the
 * row is then read in the put's own transaction (which spares a read on a connection whose
 * cache every commit empties) and stored into *repo, or BERR_REPO_NOT_FOUND; repo->id stays
 * 0 if the call failed before that. The caller clears *repo either way. The caller holds no
 * pooled connection (the put waits in the group commit, and its space check borrows one). */
enum berr_code core_image_put(struct core *c, struct meta_repo *repo, const char *data, size_t len,
                              const char *media_type_hint, const char *tag,
                              const char *expect_digest, enum core_put_mode mode,
                              struct core_put_result *res, struct berr *err);
void core_put_result_clear(struct core_put_result *r);

/* Resolves an image identifier (tag and/or digest; both must designate the same image).
 * BERR_IMAGE_NOT_FOUND (with ECR's message) otherwise. */
enum berr_code core_image_find(struct meta *m, const struct meta_repo *repo, const char *tag,
                               const char *digest, bool with_manifest, struct meta_image *out,
                               struct berr *err);
/* Formats ECR's image-not-found message for (digest, tag) into err. */
enum berr_code core_image_not_found(struct berr *err, const struct meta_repo *repo,
                                    const char *digest, const char *tag);

/* One BatchDeleteImage entry, applied inside a caller-held transaction. referenced_at_start:
 * whether the image (by digest) was referenced by an index when the batch began.
 * For each removed (digest, tag) pair fn(ctx, digest, tag) is called (tag NULL when the deleted
 * image had no tag). Errors (per entry): BERR_IMAGE_NOT_FOUND, BERR_IMAGE_REFERENCED. */
typedef void (*core_deleted_fn)(void *ctx, const char *digest, const char *tag);
enum berr_code core_image_delete_entry(struct meta *m, const struct meta_repo *repo,
                                       const char *tag, const char *digest,
                                       bool referenced_at_start, core_deleted_fn fn, void *ctx,
                                       struct berr *err);
/* Collects the tags of an image into a new NULL-terminated array (free with core_strv_free). */
enum berr_code core_image_tags(struct meta *m, int64_t image_id, char ***out, size_t *n,
                               struct berr *err);
void core_strv_free(char **v);

/* ---- uploads (shared by the ECR layer API and /v2 uploads) ---- */

enum core_upload_rules {
	CORE_UPLOAD_ECR, /* 5 MiB minimum non-final part, EmptyUpload, LayerAlreadyExists */
	CORE_UPLOAD_OCI,
};

/* Starts an upload session in repo; out_id receives the new UUID. */
enum berr_code core_upload_start(struct core *c, struct meta *m, const struct meta_repo *repo,
                                 char out_id[37], struct berr *err);

/* An exclusive write handle on one upload session (held across a streamed request body). */
struct core_upload_writer;
/* Opens upload id of repo for appending at first_byte (-1 = at the current end); m is used
 * only during the call.
 * BERR_UPLOAD_NOT_FOUND, or BERR_LAYER_PART_INVALID (err->last_byte = last byte received) if
 * first_byte is not the current size. *out is new. */
enum berr_code core_upload_open(struct core *c, struct meta *m, const struct meta_repo *repo,
                                const char *id, int64_t first_byte, struct core_upload_writer **out,
                                struct berr *err);
/* Bytes received before this writer opened, and parts recorded so far. */
int64_t core_upload_writer_start(const struct core_upload_writer *w);
int64_t core_upload_writer_parts(const struct core_upload_writer *w);
/* Appends bytes (hashes as it writes). After an error the
 * writer's hash no longer matches its bytes: only core_upload_abort may follow. */
enum berr_code core_upload_write(struct core_upload_writer *w, const void *data, size_t len,
                                 struct berr *err);
/* Records the appended bytes as one part (m: a metadata connection,
 * which the writer does not hold while bytes stream); then frees w. On failure the session is
 * left as it was before open. *size (may be NULL) = total bytes received. */
enum berr_code core_upload_close(struct core_upload_writer *w, struct meta *m, int64_t *size,
                                 struct berr *err);
/* Abandons a writer without recording anything (bytes past the old size are truncated). */
void core_upload_abort(struct core_upload_writer *w);

/* Completes upload id: verifies the digest (any of want[0..nwant) must equal the computed one;
 * nwant == 0 accepts any), commits the blob durably and links it to repo. *out_digest receives
 * the computed digest. Errors: BERR_UPLOAD_NOT_FOUND, BERR_UPLOAD_EMPTY (ECR),
 * BERR_LAYER_PART_TOO_SMALL (ECR), BERR_LAYER_INVALID (digest mismatch; the upload is
 * discarded), BERR_LAYER_EXISTS (ECR; blob already in the repository; upload discarded). */
enum berr_code core_upload_complete(struct core *c, struct meta *m, const struct meta_repo *repo,
                                    const char *id, const char *const *want, size_t nwant,
                                    enum core_upload_rules rules, char out_digest[DIGEST_STR_LEN],
                                    struct berr *err);
/* Abandoned uploads: sessions not written for this long are removed (ECR leaves the value
 * unconfirmed; a day matches what docker and skopeo need to resume). */
#define UPLOAD_TTL_MS (24LL * 3600 * 1000)
/* Removes upload sessions (row, file, lock) last written before `before`; *n = how many. */
enum berr_code core_upload_expire(struct core *c, struct meta *m, int64_t before, int64_t *n,
                                  struct berr *err);
/* Bytes received so far by upload id of repo. BERR_UPLOAD_NOT_FOUND. */
enum berr_code core_upload_size(struct meta *m, const struct meta_repo *repo, const char *id,
                                int64_t *size, struct berr *err);
/* Cancels an upload session (file and row). */
enum berr_code core_upload_cancel(struct core *c, struct meta *m, const struct meta_repo *repo,
                                  const char *id, struct berr *err);

/* ---- blobs ---- */

/* Blob digest as seen by repo: *size, *media_type (new or NULL), *referenced (by a manifest).
 * BERR_BLOB_UNKNOWN if not linked to or referenced in the repository. */
enum berr_code core_blob_get(struct meta *m, const struct meta_repo *repo, const char *digest,
                             int64_t *size, char **media_type, bool *referenced, struct berr *err);

/* Opens blob digest of repo for reading: *fd is new (the caller closes it), *size its length.
 * BERR_BLOB_UNKNOWN if it is not readable in the repository (or was collected meanwhile). */
enum berr_code core_blob_open(struct core *c, struct meta *m, const struct meta_repo *repo,
                              const char *digest, int *fd, int64_t *size, struct berr *err);

/* Links digest into repo `to` if it is readable in `from` (from == NULL: anywhere in the
 * registry of `to`), in one write transaction. BERR_BLOB_UNKNOWN when it is not mountable. */
enum berr_code core_blob_mount(struct meta *m, const struct meta_repo *to,
                               const struct meta_repo *from, const char *digest, struct berr *err);
/* Removes the blob's link to repo. BERR_BLOB_UNKNOWN if it is not readable there;
 * BERR_METHOD_NOT_ALLOWED if a manifest of the repository references it. */
enum berr_code core_blob_unlink(struct meta *m, const struct meta_repo *repo, const char *digest,
                                struct berr *err);

/* Deletes one image or tag (the /v2 DELETE manifest): by digest the whole image, by tag the tag
 * (and the image with its last tag). BERR_IMAGE_NOT_FOUND, BERR_IMAGE_REFERENCED. */
enum berr_code core_image_delete(struct meta *m, const struct meta_repo *repo, const char *tag,
                                 const char *digest, struct berr *err);

/* ---- pull bookkeeping (pull.c) ----
 * Pulls are recorded in memory and written in one transaction per flush, so a pull costs no
 * database write; lastRecordedPullTime lags by at most the flush interval. */
void core_pull_record(struct core *c, int64_t image_id, int64_t at_ms);
enum berr_code core_pull_flush(struct core *c, struct meta *m, struct berr *err);

/* ---- lifecycle policies (lifecycle_run.c; the evaluator is lifecycle.c) ---- */

/* One image a rule acts on, as reported to callers (all borrowed for the call). */
struct core_lc_action {
	const char *digest;
	char **tags; /* NULL-terminated */
	size_t ntags;
	int64_t pushed_at;
	int rule_priority;
	bool expire;   /* else transition to archive */
	bool archived; /* current storage class */
	bool applied;  /* the applier performed it (expire) */
};
typedef void (*core_lc_fn)(void *ctx, const struct meta_repo *repo, const struct core_lc_action *a);

/* Evaluates policy_text (NULL: the repository's stored policy) over repo at now_ms and
 * stores the result as the repository's preview (StartLifecyclePolicyPreview).
 * BERR_LIFECYCLE_NOT_FOUND when there is no policy; BERR_PARAM_INVALID for a bad text. */
enum berr_code core_lifecycle_preview(struct core *c, struct meta *m, const struct meta_repo *repo,
                                      const char *policy_text, int64_t now_ms, struct berr *err);
/* Evaluates the stored policy and, unless dry_run, expires the images it selects (rows of
 * the images and their tags go in one transaction, with a history row each), then records
 * lastEvaluatedAt. fn (may be NULL) sees each action, oldest image first. *n = actions.
 * Safe to run on several nodes at once: the whole pass is one write transaction. */
enum berr_code core_lifecycle_apply(struct core *c, struct meta *m, int64_t repo_id,
                                    const struct registry_id *reg, const char *repo_name,
                                    bool dry_run, int64_t now_ms, core_lc_fn fn, void *ctx,
                                    int64_t *n, struct berr *err);
/* Runs core_lifecycle_apply over every repository (of every registry) with a policy. */
enum berr_code core_lifecycle_apply_all(struct core *c, struct meta *m, bool dry_run,
                                        int64_t now_ms, core_lc_fn fn, void *ctx, int64_t *n,
                                        struct berr *err);

/* ---- garbage collection (gc.c) and consistency checks (fsck.c) ---- */

struct core_gc_opts {
	int64_t grace_ms; /* protects blobs linked and uploads written within this window */
	bool dry_run;     /* count what would go, change nothing */
	/* Optional progress report (long runs); called every few thousand candidates. */
	void (*progress)(void *ctx, const char *msg);
	void *ctx;
};

struct core_gc_stats {
	int64_t blobs, bytes;               /* unreferenced blobs (rows + files) */
	int64_t uploads;                    /* abandoned upload sessions */
	int64_t orphan_files, orphan_bytes; /* files no row names (crash leftovers) */
};

/* One online collection pass; see the safety argument at the top of gc.c. */
enum berr_code core_gc(struct core *c, struct meta *m, const struct core_gc_opts *o,
                       struct core_gc_stats *st, struct berr *err);

struct core_fsck_stats {
	int64_t blobs_checked, bytes_checked;
	int64_t corrupt;       /* blob files whose content does not match their digest */
	int64_t missing_files; /* blob rows without a file */
	int64_t missing_refs;  /* manifest references to blobs that have no row */
	int64_t orphan_files;  /* blob files without a row */
	int64_t repaired;
};

/* Checks every blob file against its digest and every manifest reference; report(ctx, line)
 * receives one line per finding. With repair: corrupt and missing blobs lose their rows and
 * files (so they can be pushed again), orphan files are indexed if valid or removed. */
enum berr_code core_fsck(struct core *c, struct meta *m, bool repair,
                         void (*report)(void *ctx, const char *line), void *ctx,
                         struct core_fsck_stats *st, struct berr *err);

/* ---- registry documents (registry policy, replication, scanning, account settings) ---- */

enum berr_code core_doc_get(struct meta *m, const struct registry_id *reg, const char *name,
                            char **value, struct berr *err);
enum berr_code core_doc_put(struct meta *m, const struct registry_id *reg, const char *name,
                            const char *value, struct berr *err);
enum berr_code core_doc_delete(struct meta *m, const struct registry_id *reg, const char *name,
                               struct berr *err);

/* ---- signed download URLs (GetDownloadUrlForLayer) ---- */

/* Returns a new "expires.signature" query credential for (reg, repo, digest). */
char *core_blob_url_sig(const struct core *c, const struct registry_id *reg, const char *repo,
                        const char *digest, int64_t expires_s);
/* Verifies it; BERR_DENIED if forged or expired. */
enum berr_code core_blob_url_verify(const struct core *c, const struct registry_id *reg,
                                    const char *repo, const char *digest, int64_t expires_s,
                                    const char *sig, int64_t now_s, struct berr *err);

#endif
