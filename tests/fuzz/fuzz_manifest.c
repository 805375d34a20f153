/* fuzz_manifest.c - libFuzzer target for oci/manifest.
 *
 * Each input is parsed twice: without a media-type hint and with one picked by the input length,
 * so plain manifest files work as seeds while the fuzzer still reaches every hint. On success
 * the documented invariants are checked (digests valid, sizes non-negative, counts bounded,
 * annotations re-parse as a JSON object). The data is copied to an exact-size, unterminated
 * buffer so ASan catches any read past len. */
#include "base/feat.h"

#include "base/err.h"
#include "oci/manifest.h"
#include "oci/ref.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const hints[] = {
    NULL,
    "",
    MT_DOCKER_V1,
    MT_DOCKER_V1_SIGNED,
    MT_DOCKER_V2,
    MT_DOCKER_LIST,
    MT_OCI_MANIFEST,
    MT_OCI_INDEX,
    "application/json",
};

static void check(bool cond)
{
	if (!cond)
		abort();
}

static void check_descriptor(const struct descriptor *d, bool sized)
{
	check(d->digest != NULL && ref_digest_is_valid(d->digest));
	check(sized ? d->size >= 0 : d->size == -1);
}

static void check_manifest(const struct manifest *m, const char *hint)
{
	if (hint && *hint)
		check(m->media_type && strcmp(m->media_type, hint) == 0);
	if (m->media_type)
		check(manifest_media_type_is_known(m->media_type));
	switch (m->kind) {
	case MANIFEST_IMAGE:
		check(m->schema_version == 2);
		check_descriptor(&m->config, true);
		check(m->nlayers <= MANIFEST_MAX_LAYERS && m->nmanifests == 0);
		for (size_t i = 0; i < m->nlayers; i++)
			check_descriptor(&m->layers[i], true);
		check(manifest_image_size(m) >= 0);
		break;
	case MANIFEST_INDEX:
		check(m->schema_version == 2 && m->config.digest == NULL);
		check(m->nmanifests <= MANIFEST_MAX_CHILDREN && m->nlayers == 0);
		for (size_t i = 0; i < m->nmanifests; i++)
			check_descriptor(&m->manifests[i], true);
		check(manifest_image_size(m) == -1);
		break;
	case MANIFEST_SCHEMA1:
		check(m->schema_version == 1 && m->config.digest == NULL);
		check(m->nlayers <= MANIFEST_MAX_LAYERS);
		for (size_t i = 0; i < m->nlayers; i++)
			check_descriptor(&m->layers[i], false);
		check(manifest_image_size(m) == 0);
		break;
	default:
		check(false);
	}
	if (m->has_subject)
		check_descriptor(&m->subject, true);
	if (m->annotations_json) {
		json_t *a = json_loads(m->annotations_json, 0, NULL);
		check(a != NULL && json_is_object(a));
		json_decref(a);
	}
}

static void run(const char *buf, size_t size, const char *hint)
{
	struct manifest *m = NULL;
	struct berr err;

	err_clear(&err);
	enum berr_code rc = manifest_parse(buf, size, hint, &m, &err);
	if (rc == BERR_OK) {
		check(m != NULL);
		check_manifest(m, hint);
	} else {
		check(m == NULL && err.code == rc && err.msg[0] != '\0');
		check(rc == BERR_MANIFEST_INVALID || rc == BERR_MANIFEST_TOO_LARGE ||
		      rc == BERR_LIMIT_EXCEEDED);
	}
	manifest_free(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size ? size : 1);
	if (!buf)
		return 0;
	memcpy(buf, data, size);
	run(buf, size, NULL);
	run(buf, size, hints[size % (sizeof(hints) / sizeof(hints[0]))]);
	free(buf);
	return 0;
}
