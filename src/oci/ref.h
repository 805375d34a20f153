/* ref.h - name, tag and digest grammar shared by the ECR and OCI doors. Pure, no I/O. */
#ifndef BERTH_REF_H
#define BERTH_REF_H

#include <stdbool.h>
#include <stddef.h>

#define REPO_NAME_MIN 2
#define REPO_NAME_MAX 256
#define ECR_TAG_MAX 300
#define OCI_TAG_MAX 128

/* ECR repository name: length 2..256 and the model pattern
 * [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*  (whole string). */
bool ref_repo_name_is_valid(const char *s);
/* The regular expression text quoted in ECR's error message for invalid names. */
extern const char REF_REPO_NAME_PATTERN_MSG[];

/* ECR API tag (PutImage imageTag etc.): 1..300 bytes, no '/', ':', '@', whitespace or control
 * characters, valid UTF-8. */
bool ref_tag_is_valid_ecr(const char *s);
/* OCI/docker tag: [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}. */
bool ref_tag_is_valid_oci(const char *s);

/* ECR's loose digest pattern [a-zA-Z0-9-_+.]+:[a-fA-F0-9]+ (whole string). */
bool ref_digest_matches_ecr_pattern(const char *s);
/* OCI digest grammar (algorithm:encoded) with the registered-algorithm rules: sha256 needs 64
 * lowercase hex, sha512 128 lowercase hex; other algorithms are syntactically valid but
 * unsupported (see ref_digest_is_supported). */
bool ref_digest_is_valid(const char *s);
/* True only for "sha256:" + 64 lowercase hex - the one algorithm berth stores. */
bool ref_digest_is_supported(const char *s);

#endif
