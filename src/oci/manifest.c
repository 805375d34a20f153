/* manifest.c - parse and validate image manifests and indexes with jansson (see manifest.h).
 *
 * Design: one pass over a jansson tree. The kind comes from the effective media type (the
 * out-of-band hint, else the body's "mediaType"); only when neither exists is it inferred from
 * the body's shape ("manifests" -> OCI index, "config"+"layers" -> OCI image manifest,
 * schemaVersion 1 -> schema 1). In that inferred case struct manifest.media_type stays NULL, so a
 * caller that must insist on an explicit type (ECR PutImage as moto models it) still can. A hint
 * that names a different type than the body is accepted as long as the body's structure fits the
 * hinted family; the body's own mediaType then only has to be a string.
 *
 * Invariants:
 *  - The input is never re-serialised (digests are over the caller's bytes); only the
 *    "annotations" object is dumped, compactly, for storage.
 *  - Every descriptor that survives has a digest accepted by ref_digest_is_valid and (outside
 *    schema 1) a size >= 0, so callers may use both without re-checking.
 *  - Hostile input is bounded: len is capped before parsing, jansson rejects invalid UTF-8,
 *    "\u0000" (JSON_ALLOW_NUL is off) and nesting beyond its parser depth limit, and layer/child
 *    counts are capped before any allocation proportional to them.
 *  - Error messages quote client strings only through msg_clip(), which keeps them short and
 *    printable ASCII so the message stays valid UTF-8 whatever the input was.
 *  - Duplicate object keys are accepted (jansson keeps the last), as most registries do.
 *
 * Too many children in an index is BERR_MANIFEST_INVALID (manifest.h reserves
 * BERR_LIMIT_EXCEEDED for the layer limit, whose ECR message text is fixed). */
#include "../base/feat.h"

#include "manifest.h"
#include "ref.h"
#include "../base/mem.h"
#include "../base/json_fast.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MSG_INVALID_JSON "Invalid JSON syntax"
#define MSG_NO_MEDIA_TYPE "image manifest mediatype not provided in manifest or parameter"
#define MSG_TOO_MANY_LAYERS "Limit on number of layers per image exceeded"

/* Longest client string quoted in an error message. */
#define MSG_CLIP_MAX 96

enum family {
	FAM_NONE,
	FAM_IMAGE,
	FAM_INDEX,
	FAM_SCHEMA1,
};

/* Copies s into out (cap >= 4) for quoting in a message: printable ASCII kept, every other byte
 * becomes '?', and long strings end in "...". Returns out. */
static const char *msg_clip(const char *s, char *out, size_t cap)
{
	size_t i = 0, n = 0;

	for (; s[i] && n + 1 < cap; i++)
		out[n++] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
	if (s[i] && cap >= 4) {
		n = cap - 4;
		memcpy(out + n, "...", 3);
		n += 3;
	}
	out[n] = '\0';
	return out;
}

static enum family media_type_family(const char *mt)
{
	if (!mt)
		return FAM_NONE;
	if (strcmp(mt, MT_DOCKER_V2) == 0 || strcmp(mt, MT_OCI_MANIFEST) == 0)
		return FAM_IMAGE;
	if (strcmp(mt, MT_DOCKER_LIST) == 0 || strcmp(mt, MT_OCI_INDEX) == 0)
		return FAM_INDEX;
	if (strcmp(mt, MT_DOCKER_V1) == 0 || strcmp(mt, MT_DOCKER_V1_SIGNED) == 0)
		return FAM_SCHEMA1;
	return FAM_NONE;
}

bool manifest_media_type_is_known(const char *mt)
{
	return media_type_family(mt) != FAM_NONE;
}

bool manifest_media_type_is_index(const char *mt)
{
	return media_type_family(mt) == FAM_INDEX;
}

static void descriptor_fini(struct descriptor *d)
{
	free(d->media_type);
	free(d->digest);
	free(d->artifact_type);
	memset(d, 0, sizeof(*d));
	d->size = -1;
}

static void descriptors_free(struct descriptor *v, size_t n)
{
	if (!v)
		return;
	for (size_t i = 0; i < n; i++)
		descriptor_fini(&v[i]);
	free(v);
}

void manifest_free(struct manifest *m)
{
	if (!m)
		return;
	free(m->media_type);
	free(m->artifact_type);
	descriptor_fini(&m->config);
	descriptors_free(m->layers, m->nlayers);
	descriptors_free(m->manifests, m->nmanifests);
	descriptor_fini(&m->subject);
	free(m->annotations_json);
	free(m);
}

/* Optional string member: NULL/absent is fine, anything else must be a JSON string. On success
 * *out is a new copy or NULL. */
static enum berr_code opt_string(json_t *obj, const char *key, const char *where, char **out,
                                 struct berr *err)
{
	json_t *v = json_object_get(obj, key);

	*out = NULL;
	if (!v)
		return BERR_OK;
	if (!json_is_string(v))
		return err_set(err, BERR_MANIFEST_INVALID, "%s%s%s must be a string", where,
		               *where ? "." : "", key);
	*out = xstrdup(json_string_value(v));
	return BERR_OK;
}

/* "annotations" (optional): an object whose values are all strings (OCI: string-string map).
 * If out is non-NULL it receives a new compact JSON text (or NULL when absent). */
static enum berr_code annotations_check(json_t *obj, const char *where, char **out,
                                        struct berr *err)
{
	json_t *a = json_object_get(obj, "annotations");
	const char *key;
	json_t *val;

	if (out)
		*out = NULL;
	if (!a)
		return BERR_OK;
	if (!json_is_object(a))
		return err_set(err, BERR_MANIFEST_INVALID, "%s%sannotations must be an object",
		               where, *where ? "." : "");
	json_object_foreach (a, key, val) {
		if (!json_is_string(val)) {
			char kb[MSG_CLIP_MAX];
			return err_set(err, BERR_MANIFEST_INVALID,
			               "%s%sannotations: value of '%s' must be a string", where,
			               *where ? "." : "", msg_clip(key, kb, sizeof(kb)));
		}
	}
	if (out) {
		/* Values are strings, so the dump cannot fail short of OOM. */
		char *s = json_dumps(a, JSON_COMPACT);
		if (!s)
			return err_set(err, BERR_INTERNAL, "cannot serialise annotations");
		*out = xstrdup(s);
		free(s);
	}
	return BERR_OK;
}

/* Parses one content descriptor (config, layer, index child or subject). where names it in
 * error messages, e.g. "layers[3]". On failure d holds whatever was copied; the caller
 * finalises it either way. */
static enum berr_code descriptor_parse(json_t *j, const char *where, struct descriptor *d,
                                       struct berr *err)
{
	enum berr_code rc;
	json_t *v;
	char cb[MSG_CLIP_MAX];

	d->size = -1;
	if (!json_is_object(j))
		return err_set(err, BERR_MANIFEST_INVALID, "%s must be an object", where);

	rc = opt_string(j, "mediaType", where, &d->media_type, err);
	if (rc)
		return rc;

	v = json_object_get(j, "digest");
	if (!v)
		return err_set(err, BERR_MANIFEST_INVALID, "%s: missing digest", where);
	if (!json_is_string(v))
		return err_set(err, BERR_MANIFEST_INVALID, "%s.digest must be a string", where);
	if (!ref_digest_is_valid(json_string_value(v)))
		return err_set(err, BERR_MANIFEST_INVALID, "%s: invalid digest '%s'", where,
		               msg_clip(json_string_value(v), cb, sizeof(cb)));
	d->digest = xstrdup(json_string_value(v));

	v = json_object_get(j, "size");
	if (!v)
		return err_set(err, BERR_MANIFEST_INVALID, "%s: missing size", where);
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return err_set(err, BERR_MANIFEST_INVALID, "%s.size must be a non-negative integer",
		               where);
	d->size = (int64_t)json_integer_value(v);

	rc = opt_string(j, "artifactType", where, &d->artifact_type, err);
	if (rc)
		return rc;

	v = json_object_get(j, "urls");
	if (v) {
		size_t i;
		json_t *u;
		if (!json_is_array(v))
			return err_set(err, BERR_MANIFEST_INVALID, "%s.urls must be an array",
			               where);
		json_array_foreach (v, i, u) {
			if (!json_is_string(u))
				return err_set(err, BERR_MANIFEST_INVALID,
				               "%s.urls[%zu] must be a string", where, i);
		}
		d->has_urls = json_array_size(v) > 0;
	}

	return annotations_check(j, where, NULL, err);
}

/* The "platform" of an index child: an object whose architecture/os, when present, are
 * strings. Nothing is stored. */
static enum berr_code platform_check(json_t *child, const char *where, struct berr *err)
{
	static const char *const keys[] = {"architecture", "os", "os.version", "variant"};
	json_t *p = json_object_get(child, "platform");

	if (!p)
		return BERR_OK;
	if (!json_is_object(p))
		return err_set(err, BERR_MANIFEST_INVALID, "%s.platform must be an object", where);
	for (size_t i = 0; i < ARRAY_LEN(keys); i++) {
		json_t *v = json_object_get(p, keys[i]);
		if (v && !json_is_string(v))
			return err_set(err, BERR_MANIFEST_INVALID,
			               "%s.platform.%s must be a string", where, keys[i]);
	}
	return BERR_OK;
}

/* Members shared by OCI 1.1 images and indexes: artifactType, subject, annotations. */
static enum berr_code oci11_members_parse(json_t *root, struct manifest *m, struct berr *err)
{
	enum berr_code rc;
	json_t *subj;

	rc = opt_string(root, "artifactType", "", &m->artifact_type, err);
	if (rc)
		return rc;
	subj = json_object_get(root, "subject");
	if (subj) {
		rc = descriptor_parse(subj, "subject", &m->subject, err);
		if (rc)
			return rc;
		m->has_subject = true;
	}
	return annotations_check(root, "", &m->annotations_json, err);
}

static enum berr_code schema_version_check(json_t *root, int want, struct manifest *m,
                                           struct berr *err)
{
	json_t *v = json_object_get(root, "schemaVersion");

	if (!v)
		return err_set(err, BERR_MANIFEST_INVALID, "missing schemaVersion");
	if (!json_is_integer(v) || json_integer_value(v) != want)
		return err_set(err, BERR_MANIFEST_INVALID, "schemaVersion must be %d", want);
	m->schema_version = want;
	return BERR_OK;
}

static enum berr_code image_parse(json_t *root, struct manifest *m, struct berr *err)
{
	enum berr_code rc;
	json_t *cfg, *layers, *l;
	size_t i, n;
	char where[48];

	m->kind = MANIFEST_IMAGE;
	rc = schema_version_check(root, 2, m, err);
	if (rc)
		return rc;

	cfg = json_object_get(root, "config");
	if (!cfg)
		return err_set(err, BERR_MANIFEST_INVALID, "missing config");
	rc = descriptor_parse(cfg, "config", &m->config, err);
	if (rc)
		return rc;

	layers = json_object_get(root, "layers");
	if (!layers)
		return err_set(err, BERR_MANIFEST_INVALID, "missing layers");
	if (!json_is_array(layers))
		return err_set(err, BERR_MANIFEST_INVALID, "layers must be an array");
	n = json_array_size(layers);
	if (n > MANIFEST_MAX_LAYERS)
		return err_set(err, BERR_LIMIT_EXCEEDED, MSG_TOO_MANY_LAYERS);
	m->layers = n ? xcalloc(n, sizeof(*m->layers)) : NULL;
	json_array_foreach (layers, i, l) {
		snprintf(where, sizeof(where), "layers[%zu]", i);
		m->nlayers = i + 1; /* so manifest_free finalises a half-parsed entry */
		rc = descriptor_parse(l, where, &m->layers[i], err);
		if (rc)
			return rc;
	}

	return oci11_members_parse(root, m, err);
}

static enum berr_code index_parse(json_t *root, struct manifest *m, struct berr *err)
{
	enum berr_code rc;
	json_t *children, *c;
	size_t i, n;
	char where[48];

	m->kind = MANIFEST_INDEX;
	rc = schema_version_check(root, 2, m, err);
	if (rc)
		return rc;

	children = json_object_get(root, "manifests");
	if (!children)
		return err_set(err, BERR_MANIFEST_INVALID, "missing manifests");
	if (!json_is_array(children))
		return err_set(err, BERR_MANIFEST_INVALID, "manifests must be an array");
	n = json_array_size(children);
	if (n > MANIFEST_MAX_CHILDREN)
		return err_set(err, BERR_MANIFEST_INVALID,
		               "index references %zu manifests, more than the limit of %d", n,
		               MANIFEST_MAX_CHILDREN);
	m->manifests = n ? xcalloc(n, sizeof(*m->manifests)) : NULL;
	json_array_foreach (children, i, c) {
		snprintf(where, sizeof(where), "manifests[%zu]", i);
		m->nmanifests = i + 1;
		rc = descriptor_parse(c, where, &m->manifests[i], err);
		if (rc)
			return rc;
		rc = platform_check(c, where, err);
		if (rc)
			return rc;
	}

	return oci11_members_parse(root, m, err);
}

/* Legacy schema 1: fsLayers[].blobSum. Signatures (prettyjws) are not verified. */
static enum berr_code schema1_parse(json_t *root, struct manifest *m, struct berr *err)
{
	enum berr_code rc;
	json_t *layers, *l, *sum;
	size_t i, n;
	char cb[MSG_CLIP_MAX];

	m->kind = MANIFEST_SCHEMA1;
	rc = schema_version_check(root, 1, m, err);
	if (rc)
		return rc;

	layers = json_object_get(root, "fsLayers");
	if (!layers)
		return err_set(err, BERR_MANIFEST_INVALID, "missing fsLayers");
	if (!json_is_array(layers))
		return err_set(err, BERR_MANIFEST_INVALID, "fsLayers must be an array");
	n = json_array_size(layers);
	if (n > MANIFEST_MAX_LAYERS)
		return err_set(err, BERR_LIMIT_EXCEEDED, MSG_TOO_MANY_LAYERS);
	m->layers = n ? xcalloc(n, sizeof(*m->layers)) : NULL;
	json_array_foreach (layers, i, l) {
		m->nlayers = i + 1;
		m->layers[i].size = -1;
		if (!json_is_object(l))
			return err_set(err, BERR_MANIFEST_INVALID,
			               "fsLayers[%zu] must be an object", i);
		sum = json_object_get(l, "blobSum");
		if (!json_is_string(sum))
			return err_set(err, BERR_MANIFEST_INVALID,
			               "fsLayers[%zu].blobSum must be a string", i);
		if (!ref_digest_is_valid(json_string_value(sum)))
			return err_set(err, BERR_MANIFEST_INVALID,
			               "fsLayers[%zu]: invalid digest '%s'", i,
			               msg_clip(json_string_value(sum), cb, sizeof(cb)));
		m->layers[i].digest = xstrdup(json_string_value(sum));
	}
	return BERR_OK;
}

/* Kind from the body's shape when no media type was given anywhere. */
static enum family family_infer(json_t *root)
{
	bool has_children = json_object_get(root, "manifests") != NULL;
	bool has_config = json_object_get(root, "config") != NULL;
	bool has_layers = json_object_get(root, "layers") != NULL;
	json_t *sv = json_object_get(root, "schemaVersion");

	/* A document that looks like both is ambiguous; guessing either way would let one set
	 * of bytes mean two things. */
	if (has_children && (has_config || has_layers))
		return FAM_NONE;
	if (has_children)
		return FAM_INDEX;
	if (has_config && has_layers)
		return FAM_IMAGE;
	if (json_is_integer(sv) && json_integer_value(sv) == 1)
		return FAM_SCHEMA1;
	return FAM_NONE;
}

enum berr_code manifest_parse(const char *data, size_t len, const char *media_type_hint,
                              struct manifest **out, struct berr *err)
{
	enum berr_code rc;
	json_t *root = NULL, *body_mt;
	struct manifest *m = NULL;
	const char *eff = NULL;
	enum family fam;
	char cb[MSG_CLIP_MAX];

	*out = NULL;
	if (len > MANIFEST_MAX_BYTES)
		return err_set(err, BERR_MANIFEST_TOO_LARGE,
		               "manifest is %zu bytes, larger than the limit of %d bytes", len,
		               MANIFEST_MAX_BYTES);
	if (!data || len == 0)
		return err_set(err, BERR_MANIFEST_INVALID, MSG_INVALID_JSON);

	/* flags 0: object or array at top level, no trailing data, no "\u0000", strict UTF-8. */
	root = json_fast_loadb(data, len, 0);
	if (!root)
		return err_set(err, BERR_MANIFEST_INVALID, MSG_INVALID_JSON);
	if (!json_is_object(root)) {
		rc = err_set(err, BERR_MANIFEST_INVALID, "manifest must be a JSON object");
		goto out;
	}

	m = xcalloc(1, sizeof(*m));
	m->config.size = -1;
	m->subject.size = -1;

	body_mt = json_object_get(root, "mediaType");
	if (body_mt && !json_is_string(body_mt)) {
		rc = err_set(err, BERR_MANIFEST_INVALID, "mediaType must be a string");
		goto out;
	}
	/* An empty hint counts as absent (ECR's optional imageManifestMediaType ""). */
	if (media_type_hint && *media_type_hint)
		eff = media_type_hint;
	else if (body_mt)
		eff = json_string_value(body_mt);

	if (eff) {
		fam = media_type_family(eff);
		if (fam == FAM_NONE) {
			rc = err_set(err, BERR_MANIFEST_INVALID,
			             "unsupported manifest media type '%s'",
			             msg_clip(eff, cb, sizeof(cb)));
			goto out;
		}
		m->media_type = xstrdup(eff);
	} else {
		fam = family_infer(root);
		if (fam == FAM_NONE) {
			rc = err_set(err, BERR_MANIFEST_INVALID, MSG_NO_MEDIA_TYPE);
			goto out;
		}
	}

	switch (fam) {
	case FAM_IMAGE:
		rc = image_parse(root, m, err);
		break;
	case FAM_INDEX:
		rc = index_parse(root, m, err);
		break;
	case FAM_SCHEMA1:
		rc = schema1_parse(root, m, err);
		break;
	case FAM_NONE:
	default:
		rc = err_set(err, BERR_INTERNAL, "manifest family not decided");
		break;
	}
	if (rc == BERR_OK) {
		*out = m;
		m = NULL;
	}
out:
	manifest_free(m);
	json_decref(root);
	return rc;
}

/* a + b for non-negative operands, saturating at INT64_MAX. */
static int64_t add_sat(int64_t a, int64_t b)
{
	return a > INT64_MAX - b ? INT64_MAX : a + b;
}

int64_t manifest_image_size(const struct manifest *m)
{
	int64_t total = 0;

	if (!m || m->kind == MANIFEST_INDEX)
		return -1;
	if (m->config.size > 0)
		total = m->config.size;
	for (size_t i = 0; i < m->nlayers; i++)
		if (m->layers[i].size > 0)
			total = add_sat(total, m->layers[i].size);
	return total;
}
