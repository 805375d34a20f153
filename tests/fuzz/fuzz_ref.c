/* fuzz_ref.c - libFuzzer target for oci/ref: every matcher on the same input, plus the
 * implications between them (a supported digest is valid, an OCI tag is also an ECR tag, ...).
 * The input is copied into an exact-size NUL-terminated buffer so ASan sees any overread. */
#include "base/feat.h"

#include "oci/ref.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool cond)
{
	if (!cond)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	size_t len = strlen(s);

	bool name = ref_repo_name_is_valid(s);
	bool tag_ecr = ref_tag_is_valid_ecr(s);
	bool tag_oci = ref_tag_is_valid_oci(s);
	bool dg_ecr = ref_digest_matches_ecr_pattern(s);
	bool dg_valid = ref_digest_is_valid(s);
	bool dg_supported = ref_digest_is_supported(s);

	if (name) {
		check(len >= REPO_NAME_MIN && len <= REPO_NAME_MAX);
		check(!strstr(s, "//") && s[0] != '/' && s[len - 1] != '/');
		check(!strstr(s, "___") && !strchr(s, ':') && !strchr(s, '@'));
	}
	if (tag_oci) {
		check(len >= 1 && len <= OCI_TAG_MAX);
		check(tag_ecr); /* the OCI charset is a subset of what the ECR door accepts */
	}
	if (tag_ecr)
		check(len >= 1 && len <= ECR_TAG_MAX && !strpbrk(s, "/:@ \t\r\n"));
	if (dg_supported) {
		check(dg_valid && dg_ecr && len == 71);
	}
	if (dg_valid && strncmp(s, "sha256:", 7) == 0)
		check(dg_supported);
	if (dg_valid || dg_ecr)
		check(strchr(s, ':') != NULL && !tag_ecr && !tag_oci && !name);
	free(s);
	return 0;
}
