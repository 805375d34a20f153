/* manifest.h - parse and validate image manifests and indexes (Docker v2 schema 2, Docker
 * manifest list, OCI image manifest, OCI image index; schema 1 recognised). Pure, no I/O.
 *
 * The parser never re-serialises: digests are computed by callers over the exact bytes. */
#ifndef BERTH_MANIFEST_H
#define BERTH_MANIFEST_H

#include "../base/err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MT_DOCKER_V1 "application/vnd.docker.distribution.manifest.v1+json"
#define MT_DOCKER_V1_SIGNED "application/vnd.docker.distribution.manifest.v1+prettyjws"
#define MT_DOCKER_V2 "application/vnd.docker.distribution.manifest.v2+json"
#define MT_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"
#define MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define MT_OCI_INDEX "application/vnd.oci.image.index.v1+json"

/* 4 MiB: ECR's model limit on imageManifest and the OCI spec's minimum a registry must accept. */
#define MANIFEST_MAX_BYTES (4 * 1024 * 1024)
/* Layers per image manifest (ECR: "Limit on number of layers per image exceeded"). */
#define MANIFEST_MAX_LAYERS 4096
/* Entries per index. */
#define MANIFEST_MAX_CHILDREN 4096

enum manifest_kind {
	MANIFEST_IMAGE,   /* Docker v2 schema 2 or OCI image manifest: config + layers */
	MANIFEST_INDEX,   /* Docker manifest list or OCI image index: manifests[] */
	MANIFEST_SCHEMA1, /* legacy Docker v2 schema 1: fsLayers[] (blobSum) */
};

struct descriptor {
	char *media_type;    /* new; may be NULL for schema 1 layers */
	char *digest;        /* new; validated with ref_digest_is_valid */
	int64_t size;        /* -1 when absent (schema 1) */
	char *artifact_type; /* new or NULL */
	bool has_urls;       /* foreign/non-distributable layer: exempt from existence checks */
};

struct manifest {
	enum manifest_kind kind;
	/* Effective media type: the hint if given, else the body's mediaType, else NULL. */
	char *media_type;
	int schema_version;
	char *artifact_type;       /* top-level artifactType or NULL */
	struct descriptor config;  /* MANIFEST_IMAGE only (digest NULL otherwise) */
	struct descriptor *layers; /* image layers, or schema-1 fsLayers; nlayers entries */
	size_t nlayers;
	struct descriptor *manifests; /* index children */
	size_t nmanifests;
	bool has_subject;
	struct descriptor subject;
	char *annotations_json; /* compact JSON text of "annotations" object, or NULL */
};

/* Parses data[0..len) (need not be NUL-terminated). media_type_hint (borrowed, may be NULL) is
 * the media type supplied out of band (ECR imageManifestMediaType / HTTP Content-Type).
 * On success *out is new (manifest_free). Errors:
 *   BERR_MANIFEST_TOO_LARGE  len > MANIFEST_MAX_BYTES
 *   BERR_MANIFEST_INVALID    not UTF-8 JSON object; wrong member types; missing config/layers/
 *                            manifests; bad descriptor (digest/size); schemaVersion wrong;
 *                            media type not one of the six known manifest types;
 *                            msg "Invalid JSON syntax" for unparseable JSON,
 *                            "image manifest mediatype not provided in manifest or parameter"
 *                            when neither hint nor body gives a type (kind cannot be known)
 *   BERR_LIMIT_EXCEEDED      more than MANIFEST_MAX_LAYERS layers ("Limit on number of layers
 *                            per image exceeded")
 * A hint that disagrees with the body's mediaType is accepted (the hint wins) as long as the
 * body's structure matches the hinted kind's family. */
enum berr_code manifest_parse(const char *data, size_t len, const char *media_type_hint,
                              struct manifest **out, struct berr *err);
void manifest_free(struct manifest *m);

/* True for the six known manifest media types. */
bool manifest_media_type_is_known(const char *mt);
bool manifest_media_type_is_index(const char *mt);

/* Sum of config.size + layers[].size for images (sizes < 0 count as 0); -1 for indexes. */
int64_t manifest_image_size(const struct manifest *m);

#endif
