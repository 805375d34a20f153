/* test_manifest.c - unit tests for oci/manifest: every manifest kind, kind selection from hint /
 * body / structure, descriptor validation, limits and the exact client-facing messages. */
#include "base/feat.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "base/err.h"
#include "base/mem.h"
#include "oci/manifest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HEX_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define HEX_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define HEX_C "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"
#define HEX_D "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd"
#define DG_A "sha256:" HEX_A
#define DG_B "sha256:" HEX_B
#define DG_C "sha256:" HEX_C
#define DG_D "sha256:" HEX_D
#define DG_EMPTY "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"

#define MSG_INVALID_JSON "Invalid JSON syntax"
#define MSG_NO_MT "image manifest mediatype not provided in manifest or parameter"
#define MSG_LAYERS "Limit on number of layers per image exceeded"

#define MT_DOCKER_CONFIG "application/vnd.docker.container.image.v1+json"
#define MT_DOCKER_LAYER "application/vnd.docker.image.rootfs.diff.tar.gzip"
#define MT_OCI_CONFIG "application/vnd.oci.image.config.v1+json"
#define MT_OCI_LAYER "application/vnd.oci.image.layer.v1.tar+gzip"
#define MT_OCI_EMPTY "application/vnd.oci.empty.v1+json"

static const char docker_v2[] =
    "{\n"
    "   \"schemaVersion\": 2,\n"
    "   \"mediaType\": \"" MT_DOCKER_V2 "\",\n"
    "   \"config\": {\"mediaType\": \"" MT_DOCKER_CONFIG "\", \"size\": 2777, \"digest\": \"" DG_A
    "\"},\n"
    "   \"layers\": [\n"
    "      {\"mediaType\": \"" MT_DOCKER_LAYER "\", \"size\": 17743696, \"digest\": \"" DG_B
    "\"},\n"
    "      {\"mediaType\": \"" MT_DOCKER_LAYER "\", \"size\": 2565026, \"digest\": \"" DG_C "\"},\n"
    "      {\"mediaType\": \"" MT_DOCKER_LAYER "\", \"size\": 28005981, \"digest\": \"" DG_D
    "\"},\n"
    "      {\"mediaType\": \"" MT_DOCKER_LAYER "\", \"size\": 775, \"digest\": \"" DG_A "\"}\n"
    "   ]\n"
    "}";

/* OCI image manifest without a body mediaType (allowed by the image-spec). */
static const char oci_image_no_mt[] =
    "{\"schemaVersion\":2,"
    "\"config\":{\"mediaType\":\"" MT_OCI_CONFIG "\",\"digest\":\"" DG_A "\",\"size\":10},"
    "\"layers\":[{\"mediaType\":\"" MT_OCI_LAYER "\",\"digest\":\"" DG_B "\",\"size\":20}]}";

static const char docker_list[] =
    "{\"schemaVersion\":2,\"mediaType\":\"" MT_DOCKER_LIST "\",\"manifests\":["
    "{\"mediaType\":\"" MT_DOCKER_V2 "\",\"size\":528,\"digest\":\"" DG_A "\","
    "\"platform\":{\"architecture\":\"amd64\",\"os\":\"linux\"}},"
    "{\"mediaType\":\"" MT_DOCKER_V2 "\",\"size\":529,\"digest\":\"" DG_B "\","
    "\"platform\":{\"architecture\":\"arm64\",\"os\":\"linux\",\"variant\":\"v8\","
    "\"features\":[\"x\"]}}]}";

static const char oci_index_no_mt[] =
    "{\"schemaVersion\":2,\"manifests\":["
    "{\"mediaType\":\"" MT_OCI_MANIFEST "\",\"size\":100,\"digest\":\"" DG_C "\","
    "\"platform\":{\"architecture\":\"ppc64le\",\"os\":\"linux\",\"os.version\":\"1\"}}],"
    "\"annotations\":{\"org.opencontainers.image.ref.name\":\"1.0\"}}";

static const char oci_artifact[] =
    "{\"schemaVersion\":2,\"mediaType\":\"" MT_OCI_MANIFEST "\","
    "\"artifactType\":\"application/vnd.example.sbom.v1\","
    "\"config\":{\"mediaType\":\"" MT_OCI_EMPTY "\",\"digest\":\"" DG_EMPTY "\",\"size\":2},"
    "\"layers\":[{\"mediaType\":\"application/spdx+json\",\"digest\":\"" DG_B "\",\"size\":1234,"
    "\"annotations\":{\"org.opencontainers.image.title\":\"sbom.json\"}}],"
    "\"subject\":{\"mediaType\":\"" MT_OCI_MANIFEST "\",\"digest\":\"" DG_C "\",\"size\":7682},"
    "\"annotations\":{\"org.example.b\": \"2\", \"org.example.a\":\"1\"}}";

static const char schema1[] =
    "{\"schemaVersion\":1,\"name\":\"hello-world\",\"tag\":\"latest\",\"architecture\":\"amd64\","
    "\"fsLayers\":[{\"blobSum\":\"" DG_A "\"},{\"blobSum\":\"" DG_B "\"}],"
    "\"history\":[{\"v1Compatibility\":\"{}\"},{\"v1Compatibility\":\"{}\"}],"
    "\"signatures\":[{\"header\":{\"alg\":\"ES256\"},\"signature\":\"x\",\"protected\":\"y\"}]}";

/* Parses a NUL-terminated text. */
static enum berr_code parse(const char *json, const char *hint, struct manifest **m, struct berr *e)
{
	err_clear(e);
	return manifest_parse(json, strlen(json), hint, m, e);
}

/* Asserts that json (with hint) fails with code and a message containing want. */
static void expect_fail(const char *json, const char *hint, enum berr_code code, const char *want)
{
	struct manifest *m = (struct manifest *)0x1;
	struct berr e;
	enum berr_code rc = parse(json, hint, &m, &e);

	if (rc != code)
		fail_msg("expected %s, got %s (%s) for: %.200s", err_name(code), err_name(rc),
		         e.msg, json);
	assert_int_equal(e.code, code);
	assert_null(m);
	if (want && !strstr(e.msg, want))
		fail_msg("message '%s' lacks '%s'", e.msg, want);
}

static struct manifest *expect_ok(const char *json, const char *hint)
{
	struct manifest *m = NULL;
	struct berr e;
	enum berr_code rc = parse(json, hint, &m, &e);

	if (rc != BERR_OK)
		fail_msg("unexpected %s: %s for: %.300s", err_name(rc), e.msg, json);
	assert_non_null(m);
	return m;
}

static void test_docker_v2(void **state)
{
	(void)state;
	struct manifest *m = expect_ok(docker_v2, NULL);
	assert_int_equal(m->kind, MANIFEST_IMAGE);
	assert_string_equal(m->media_type, MT_DOCKER_V2);
	assert_int_equal(m->schema_version, 2);
	assert_string_equal(m->config.digest, DG_A);
	assert_string_equal(m->config.media_type, MT_DOCKER_CONFIG);
	assert_int_equal(m->config.size, 2777);
	assert_int_equal(m->nlayers, 4);
	assert_string_equal(m->layers[0].digest, DG_B);
	assert_string_equal(m->layers[0].media_type, MT_DOCKER_LAYER);
	assert_int_equal(m->layers[2].size, 28005981);
	assert_false(m->layers[0].has_urls);
	assert_null(m->layers[0].artifact_type);
	assert_null(m->manifests);
	assert_int_equal(m->nmanifests, 0);
	assert_false(m->has_subject);
	assert_null(m->artifact_type);
	assert_null(m->annotations_json);
	/* ECR's documented example: 2,777 + 48,315,478. */
	assert_int_equal(manifest_image_size(m), 48318255);
	manifest_free(m);
}

static void test_oci_image_inferred(void **state)
{
	(void)state;
	struct manifest *m = expect_ok(oci_image_no_mt, NULL);
	assert_int_equal(m->kind, MANIFEST_IMAGE);
	assert_null(m->media_type); /* inferred, not given */
	assert_int_equal(m->nlayers, 1);
	assert_int_equal(manifest_image_size(m), 30);
	manifest_free(m);

	m = expect_ok(oci_image_no_mt, MT_OCI_MANIFEST);
	assert_int_equal(m->kind, MANIFEST_IMAGE);
	assert_string_equal(m->media_type, MT_OCI_MANIFEST);
	manifest_free(m);
}

static void test_docker_list(void **state)
{
	(void)state;
	struct manifest *m = expect_ok(docker_list, NULL);
	assert_int_equal(m->kind, MANIFEST_INDEX);
	assert_string_equal(m->media_type, MT_DOCKER_LIST);
	assert_int_equal(m->nmanifests, 2);
	assert_string_equal(m->manifests[0].digest, DG_A);
	assert_string_equal(m->manifests[1].media_type, MT_DOCKER_V2);
	assert_int_equal(m->manifests[1].size, 529);
	assert_null(m->config.digest);
	assert_int_equal(m->nlayers, 0);
	assert_int_equal(manifest_image_size(m), -1);
	manifest_free(m);
}

static void test_oci_index_inferred(void **state)
{
	(void)state;
	struct manifest *m = expect_ok(oci_index_no_mt, NULL);
	assert_int_equal(m->kind, MANIFEST_INDEX);
	assert_null(m->media_type);
	assert_int_equal(m->nmanifests, 1);
	assert_string_equal(m->annotations_json, "{\"org.opencontainers.image.ref.name\":\"1.0\"}");
	manifest_free(m);

	m = expect_ok(oci_index_no_mt, MT_OCI_INDEX);
	assert_string_equal(m->media_type, MT_OCI_INDEX);
	manifest_free(m);

	/* An empty index is valid. */
	m = expect_ok("{\"schemaVersion\":2,\"mediaType\":\"" MT_OCI_INDEX "\",\"manifests\":[]}",
	              NULL);
	assert_int_equal(m->nmanifests, 0);
	assert_null(m->manifests);
	manifest_free(m);
}

static void test_index_platform_types(void **state)
{
	(void)state;
	expect_fail("{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"" MT_OCI_MANIFEST
	            "\",\"size\":1,\"digest\":\"" DG_A "\",\"platform\":\"linux/amd64\"}]}",
	            NULL, BERR_MANIFEST_INVALID, "manifests[0].platform must be an object");
	expect_fail("{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"" MT_OCI_MANIFEST
	            "\",\"size\":1,\"digest\":\"" DG_A "\",\"platform\":{\"os\":7}}]}",
	            NULL, BERR_MANIFEST_INVALID, "manifests[0].platform.os must be a string");
	expect_fail("{\"schemaVersion\":2,\"manifests\":[{\"size\":1,\"digest\":\"" DG_A
	            "\"},{\"size\":1,\"digest\":\"sha256:nothex\"}]}",
	            NULL, BERR_MANIFEST_INVALID, "manifests[1]: invalid digest 'sha256:nothex'");
	expect_fail("{\"schemaVersion\":2,\"manifests\":[7]}", NULL, BERR_MANIFEST_INVALID,
	            "manifests[0] must be an object");
	expect_fail("{\"schemaVersion\":2,\"manifests\":{}}", NULL, BERR_MANIFEST_INVALID,
	            "manifests must be an array");
	expect_fail("{\"schemaVersion\":2,\"mediaType\":\"" MT_OCI_INDEX "\"}", NULL,
	            BERR_MANIFEST_INVALID, "missing manifests");
}

static void test_oci_artifact(void **state)
{
	(void)state;
	struct manifest *m = expect_ok(oci_artifact, NULL);
	assert_int_equal(m->kind, MANIFEST_IMAGE);
	assert_string_equal(m->artifact_type, "application/vnd.example.sbom.v1");
	assert_string_equal(m->config.media_type, MT_OCI_EMPTY);
	assert_string_equal(m->config.digest, DG_EMPTY);
	assert_true(m->has_subject);
	assert_string_equal(m->subject.digest, DG_C);
	assert_string_equal(m->subject.media_type, MT_OCI_MANIFEST);
	assert_int_equal(m->subject.size, 7682);
	/* Compact, member order preserved. */
	assert_string_equal(m->annotations_json,
	                    "{\"org.example.b\":\"2\",\"org.example.a\":\"1\"}");
	assert_int_equal(manifest_image_size(m), 1236);
	manifest_free(m);

	/* Artifact with no layers at all (OCI 1.1 allows an empty array). */
	m = expect_ok("{\"schemaVersion\":2,\"mediaType\":\"" MT_OCI_MANIFEST "\","
	              "\"artifactType\":\"application/vnd.example+type\","
	              "\"config\":{\"mediaType\":\"" MT_OCI_EMPTY "\",\"digest\":\"" DG_EMPTY
	              "\",\"size\":2},\"layers\":[],"
	              "\"subject\":{\"mediaType\":\"" MT_OCI_INDEX "\",\"digest\":\"" DG_A
	              "\",\"size\":1}}",
	              NULL);
	assert_int_equal(m->nlayers, 0);
	assert_true(m->has_subject);
	assert_int_equal(manifest_image_size(m), 2);
	manifest_free(m);

	/* An index may carry a subject and artifactType too. */
	m = expect_ok("{\"schemaVersion\":2,\"mediaType\":\"" MT_OCI_INDEX "\","
	              "\"artifactType\":\"application/x\",\"manifests\":[],"
	              "\"subject\":{\"mediaType\":\"" MT_OCI_MANIFEST "\",\"digest\":\"" DG_B
	              "\",\"size\":3}}",
	              NULL);
	assert_true(m->has_subject);
	assert_string_equal(m->subject.digest, DG_B);
	assert_string_equal(m->artifact_type, "application/x");
	manifest_free(m);

	/* Descriptor-level artifactType. */
	m = expect_ok("{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"" MT_OCI_MANIFEST
	              "\",\"digest\":\"" DG_A "\",\"size\":5,\"artifactType\":\"application/y\"}]}",
	              NULL);
	assert_string_equal(m->manifests[0].artifact_type, "application/y");
	manifest_free(m);
}

static void test_oci11_member_types(void **state)
{
	(void)state;
	expect_fail("{\"schemaVersion\":2,\"artifactType\":5,\"config\":{\"digest\":\"" DG_A
	            "\",\"size\":1},\"layers\":[]}",
	            NULL, BERR_MANIFEST_INVALID, "artifactType must be a string");
	expect_fail("{\"schemaVersion\":2,\"subject\":\"x\",\"config\":{\"digest\":\"" DG_A
	            "\",\"size\":1},\"layers\":[]}",
	            NULL, BERR_MANIFEST_INVALID, "subject must be an object");
	expect_fail("{\"schemaVersion\":2,\"subject\":{\"digest\":\"sha256:x\",\"size\":1},"
	            "\"config\":{\"digest\":\"" DG_A "\",\"size\":1},\"layers\":[]}",
	            NULL, BERR_MANIFEST_INVALID, "subject: invalid digest");
	expect_fail("{\"schemaVersion\":2,\"subject\":{\"digest\":\"" DG_B "\"},"
	            "\"config\":{\"digest\":\"" DG_A "\",\"size\":1},\"layers\":[]}",
	            NULL, BERR_MANIFEST_INVALID, "subject: missing size");
	expect_fail("{\"schemaVersion\":2,\"annotations\":[],\"config\":{\"digest\":\"" DG_A
	            "\",\"size\":1},\"layers\":[]}",
	            NULL, BERR_MANIFEST_INVALID, "annotations must be an object");
	expect_fail("{\"schemaVersion\":2,\"annotations\":{\"k\":1},\"config\":{\"digest\":\"" DG_A
	            "\",\"size\":1},\"layers\":[]}",
	            NULL, BERR_MANIFEST_INVALID, "annotations: value of 'k' must be a string");
	expect_fail("{\"schemaVersion\":2,\"config\":{\"digest\":\"" DG_A
	            "\",\"size\":1,\"annotations\":{\"k\":null}},\"layers\":[]}",
	            NULL, BERR_MANIFEST_INVALID, "config.annotations");
	expect_fail("{\"schemaVersion\":2,\"config\":{\"digest\":\"" DG_A "\",\"size\":1,"
	            "\"artifactType\":[]},\"layers\":[]}",
	            NULL, BERR_MANIFEST_INVALID, "config.artifactType must be a string");
}

static void test_schema1(void **state)
{
	(void)state;
	/* No media type anywhere: schemaVersion 1 identifies it. */
	struct manifest *m = expect_ok(schema1, NULL);
	assert_int_equal(m->kind, MANIFEST_SCHEMA1);
	assert_null(m->media_type);
	assert_int_equal(m->schema_version, 1);
	assert_int_equal(m->nlayers, 2);
	assert_string_equal(m->layers[0].digest, DG_A);
	assert_null(m->layers[0].media_type);
	assert_int_equal(m->layers[0].size, -1);
	assert_null(m->config.digest);
	assert_int_equal(m->config.size, -1);
	assert_int_equal(manifest_image_size(m), 0);
	manifest_free(m);

	m = expect_ok(schema1, MT_DOCKER_V1_SIGNED);
	assert_int_equal(m->kind, MANIFEST_SCHEMA1);
	assert_string_equal(m->media_type, MT_DOCKER_V1_SIGNED);
	manifest_free(m);

	m = expect_ok("{\"schemaVersion\":1,\"mediaType\":\"" MT_DOCKER_V1 "\",\"fsLayers\":[]}",
	              NULL);
	assert_int_equal(m->kind, MANIFEST_SCHEMA1);
	assert_string_equal(m->media_type, MT_DOCKER_V1);
	manifest_free(m);

	expect_fail("{\"schemaVersion\":1}", NULL, BERR_MANIFEST_INVALID, "missing fsLayers");
	expect_fail("{\"schemaVersion\":1,\"fsLayers\":[{\"blobSum\":\"md5:x:y\"}]}", NULL,
	            BERR_MANIFEST_INVALID, "fsLayers[0]: invalid digest");
	expect_fail("{\"schemaVersion\":1,\"fsLayers\":[{}]}", NULL, BERR_MANIFEST_INVALID,
	            "fsLayers[0].blobSum must be a string");
	expect_fail("{\"schemaVersion\":1,\"fsLayers\":[1]}", NULL, BERR_MANIFEST_INVALID,
	            "fsLayers[0] must be an object");
	expect_fail("{\"schemaVersion\":1,\"fsLayers\":{}}", NULL, BERR_MANIFEST_INVALID,
	            "fsLayers must be an array");
	/* A v2 body pushed as schema 1 does not fit the family. */
	expect_fail(docker_v2, MT_DOCKER_V1, BERR_MANIFEST_INVALID, "schemaVersion must be 1");
}

static void test_missing_config_layers(void **state)
{
	(void)state;
	expect_fail("{\"schemaVersion\":2,\"mediaType\":\"" MT_DOCKER_V2 "\",\"layers\":[]}", NULL,
	            BERR_MANIFEST_INVALID, "missing config");
	expect_fail("{\"schemaVersion\":2,\"layers\":[]}", MT_OCI_MANIFEST, BERR_MANIFEST_INVALID,
	            "missing config");
	expect_fail("{\"schemaVersion\":2,\"mediaType\":\"" MT_OCI_MANIFEST
	            "\",\"config\":{\"digest\":\"" DG_A "\",\"size\":1}}",
	            NULL, BERR_MANIFEST_INVALID, "missing layers");
	expect_fail("{\"schemaVersion\":2,\"mediaType\":\"" MT_OCI_MANIFEST
	            "\",\"config\":[],\"layers\":[]}",
	            NULL, BERR_MANIFEST_INVALID, "config must be an object");
	expect_fail("{\"schemaVersion\":2,\"mediaType\":\"" MT_OCI_MANIFEST
	            "\",\"config\":{\"digest\":\"" DG_A "\",\"size\":1},\"layers\":{}}",
	            NULL, BERR_MANIFEST_INVALID, "layers must be an array");
	expect_fail("{\"schemaVersion\":2,\"mediaType\":\"" MT_OCI_MANIFEST
	            "\",\"config\":{\"size\":1},\"layers\":[]}",
	            NULL, BERR_MANIFEST_INVALID, "config: missing digest");
}

static void test_descriptor_digest(void **state)
{
	static const char *const bad[] = {
	    "sha256:" HEX_A "a", "sha256:ABC",        "SHA256:" HEX_A, "sha256", "",
	    ":" HEX_A,           "sha256:" HEX_A " ", "sha512:" HEX_A,
	};
	char json[1024];
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
		snprintf(json, sizeof(json),
		         "{\"schemaVersion\":2,\"mediaType\":\"" MT_DOCKER_V2 "\","
		         "\"config\":{\"digest\":\"" DG_A "\",\"size\":1},"
		         "\"layers\":[{\"digest\":\"" DG_B "\",\"size\":1},"
		         "{\"digest\":\"%s\",\"size\":1}]}",
		         bad[i]);
		expect_fail(json, NULL, BERR_MANIFEST_INVALID, "layers[1]: invalid digest");
	}
	expect_fail("{\"schemaVersion\":2,\"config\":{\"digest\":5,\"size\":1},\"layers\":[]}",
	            NULL, BERR_MANIFEST_INVALID, "config.digest must be a string");

	/* Other registered-grammar algorithms are syntactically fine here (support is the
	 * caller's decision). */
	struct manifest *m =
	    expect_ok("{\"schemaVersion\":2,\"config\":{\"digest\":\"" DG_A "\",\"size\":1},"
	              "\"layers\":[{\"digest\":\"blake3:abc\",\"size\":1}]}",
	              NULL);
	assert_string_equal(m->layers[0].digest, "blake3:abc");
	manifest_free(m);
}

static void test_descriptor_size(void **state)
{
	static const char *const bad[] = {
	    "-1", "1.5", "1e3", "\"10\"", "null", "true", "{}", "[]", "-9223372036854775808"};
	char json[1024];
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
		snprintf(json, sizeof(json),
		         "{\"schemaVersion\":2,\"config\":{\"digest\":\"" DG_A "\",\"size\":1},"
		         "\"layers\":[{\"digest\":\"" DG_B "\",\"size\":%s}]}",
		         bad[i]);
		expect_fail(json, NULL, BERR_MANIFEST_INVALID,
		            "layers[0].size must be a non-negative integer");
	}
	expect_fail("{\"schemaVersion\":2,\"config\":{\"digest\":\"" DG_A "\"},\"layers\":[]}",
	            NULL, BERR_MANIFEST_INVALID, "config: missing size");

	/* 0 is fine, and so is the largest int64. */
	struct manifest *m =
	    expect_ok("{\"schemaVersion\":2,\"config\":{\"digest\":\"" DG_A "\",\"size\":0},"
	              "\"layers\":[{\"digest\":\"" DG_B "\",\"size\":9223372036854775807},"
	              "{\"digest\":\"" DG_C "\",\"size\":9223372036854775807}]}",
	              NULL);
	assert_int_equal(m->config.size, 0);
	assert_true(m->layers[0].size == INT64_MAX);
	/* The sum saturates instead of overflowing. */
	assert_true(manifest_image_size(m) == INT64_MAX);
	manifest_free(m);
}

static void test_descriptor_misc(void **state)
{
	(void)state;
	struct manifest *m = expect_ok(
	    "{\"schemaVersion\":2,\"config\":{\"digest\":\"" DG_A "\",\"size\":1},\"layers\":["
	    "{\"mediaType\":\"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip\","
	    "\"digest\":\"" DG_B "\",\"size\":5,\"urls\":[\"https://example.com/layer\"]},"
	    "{\"digest\":\"" DG_C "\",\"size\":6,\"urls\":[]},"
	    "{\"digest\":\"" DG_D "\",\"size\":7}]}",
	    NULL);
	assert_true(m->layers[0].has_urls);
	assert_false(m->layers[1].has_urls);
	assert_false(m->layers[2].has_urls);
	assert_null(m->layers[2].media_type); /* lenient: mediaType optional */
	manifest_free(m);

	expect_fail("{\"schemaVersion\":2,\"config\":{\"digest\":\"" DG_A "\",\"size\":1},"
	            "\"layers\":[{\"digest\":\"" DG_B "\",\"size\":1,\"urls\":\"x\"}]}",
	            NULL, BERR_MANIFEST_INVALID, "layers[0].urls must be an array");
	expect_fail("{\"schemaVersion\":2,\"config\":{\"digest\":\"" DG_A "\",\"size\":1},"
	            "\"layers\":[{\"digest\":\"" DG_B "\",\"size\":1,\"urls\":[\"a\",2]}]}",
	            NULL, BERR_MANIFEST_INVALID, "layers[0].urls[1] must be a string");
	expect_fail("{\"schemaVersion\":2,\"config\":{\"digest\":\"" DG_A "\",\"size\":1},"
	            "\"layers\":[{\"digest\":\"" DG_B "\",\"size\":1,\"mediaType\":3}]}",
	            NULL, BERR_MANIFEST_INVALID, "layers[0].mediaType must be a string");
	expect_fail("{\"schemaVersion\":2,\"config\":{\"digest\":\"" DG_A "\",\"size\":1},"
	            "\"layers\":[null]}",
	            NULL, BERR_MANIFEST_INVALID, "layers[0] must be an object");
}

static void test_schema_version(void **state)
{
	(void)state;
	expect_fail("{\"mediaType\":\"" MT_DOCKER_V2 "\",\"config\":{\"digest\":\"" DG_A
	            "\",\"size\":1},\"layers\":[]}",
	            NULL, BERR_MANIFEST_INVALID, "missing schemaVersion");
	expect_fail("{\"schemaVersion\":\"2\",\"config\":{\"digest\":\"" DG_A
	            "\",\"size\":1},\"layers\":[]}",
	            NULL, BERR_MANIFEST_INVALID, "schemaVersion must be 2");
	expect_fail("{\"schemaVersion\":3,\"config\":{\"digest\":\"" DG_A
	            "\",\"size\":1},\"layers\":[]}",
	            NULL, BERR_MANIFEST_INVALID, "schemaVersion must be 2");
	expect_fail("{\"schemaVersion\":2.0,\"config\":{\"digest\":\"" DG_A
	            "\",\"size\":1},\"layers\":[]}",
	            NULL, BERR_MANIFEST_INVALID, "schemaVersion must be 2");
	/* config+layers wins over schemaVersion 1 when inferring. */
	expect_fail("{\"schemaVersion\":1,\"config\":{\"digest\":\"" DG_A
	            "\",\"size\":1},\"layers\":[]}",
	            NULL, BERR_MANIFEST_INVALID, "schemaVersion must be 2");
	expect_fail("{\"schemaVersion\":1,\"manifests\":[]}", NULL, BERR_MANIFEST_INVALID,
	            "schemaVersion must be 2");
	expect_fail("{\"schemaVersion\":2,\"fsLayers\":[]}", MT_DOCKER_V1, BERR_MANIFEST_INVALID,
	            "schemaVersion must be 1");
}

static void test_not_json(void **state)
{
	static const char *const bad[] = {
	    "",
	    "not json",
	    "{",
	    "{\"schemaVersion\":2,}",
	    "{\"a\":1} trailing",
	    "{\"a\":1}{}",
	    "\"string\"",
	    "42",
	    "null",
	    "{'a':1}",
	    "{\"a\":\"\\u0000\"}",
	    "{\"a\":\"\xff\"}",
	    "{\"a\":\"\xc0\xaf\"}",
	    "{\"a\":\"\xed\xa0\x80\"}",
	    "{\"a\":\"\\ud800\"}",
	    "{\"a\":99999999999999999999999}",
	    "\xef\xbb\xbf{}",
	};
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
		struct manifest *m = NULL;
		struct berr e;
		enum berr_code rc = parse(bad[i], MT_OCI_MANIFEST, &m, &e);
		if (rc != BERR_MANIFEST_INVALID)
			fail_msg("case %zu: expected invalid, got %s", i, err_name(rc));
		assert_string_equal(e.msg, MSG_INVALID_JSON);
		assert_null(m);
	}

	/* NULL data with len 0 is just empty input. */
	struct manifest *m = NULL;
	struct berr e;
	err_clear(&e);
	assert_int_equal(manifest_parse(NULL, 0, NULL, &m, &e), BERR_MANIFEST_INVALID);
	assert_string_equal(e.msg, MSG_INVALID_JSON);
	assert_null(m);
	/* err may be NULL. */
	assert_int_equal(manifest_parse("x", 1, NULL, &m, NULL), BERR_MANIFEST_INVALID);
}

static void test_json_array(void **state)
{
	(void)state;
	expect_fail("[]", NULL, BERR_MANIFEST_INVALID, "manifest must be a JSON object");
	expect_fail("[{\"schemaVersion\":2}]", MT_OCI_INDEX, BERR_MANIFEST_INVALID,
	            "manifest must be a JSON object");
}

static void test_not_nul_terminated(void **state)
{
	/* The parser must stop at len even though garbage follows. */
	char buf[sizeof(oci_image_no_mt) + 16];
	struct manifest *m = NULL;
	struct berr e;
	(void)state;
	memcpy(buf, oci_image_no_mt, sizeof(oci_image_no_mt) - 1);
	memset(buf + sizeof(oci_image_no_mt) - 1, 'x', 17);
	assert_int_equal(manifest_parse(buf, sizeof(oci_image_no_mt) - 1, NULL, &m, &e), BERR_OK);
	assert_int_equal(m->kind, MANIFEST_IMAGE);
	manifest_free(m);
}

static void test_too_large(void **state)
{
	const char *head = "{\"schemaVersion\":2,\"mediaType\":\"" MT_OCI_MANIFEST "\","
	                   "\"config\":{\"digest\":\"" DG_A "\",\"size\":1},\"layers\":[]";
	size_t n = MANIFEST_MAX_BYTES + 1;
	char *buf = xmalloc(n);
	struct manifest *m = (struct manifest *)0x1;
	struct berr e;
	(void)state;

	/* Exactly the limit: accepted (padding is JSON whitespace). */
	memset(buf, ' ', n);
	memcpy(buf, head, strlen(head));
	buf[MANIFEST_MAX_BYTES - 1] = '}';
	err_clear(&e);
	assert_int_equal(manifest_parse(buf, MANIFEST_MAX_BYTES, NULL, &m, &e), BERR_OK);
	manifest_free(m);

	/* One byte more: rejected before parsing. */
	buf[MANIFEST_MAX_BYTES - 1] = ' ';
	buf[MANIFEST_MAX_BYTES] = '}';
	m = (struct manifest *)0x1;
	assert_int_equal(manifest_parse(buf, n, NULL, &m, &e), BERR_MANIFEST_TOO_LARGE);
	assert_int_equal(e.code, BERR_MANIFEST_TOO_LARGE);
	assert_null(m);
	free(buf);
}

/* Builds an image manifest with n layers (new string). */
static char *image_with_layers(size_t n, const char *array_key, bool schema1_layers)
{
	size_t cap = 256 + n * 120;
	char *s = xmalloc(cap);
	size_t off = 0;

	if (schema1_layers)
		off += (size_t)snprintf(s + off, cap - off, "{\"schemaVersion\":1,\"%s\":[",
		                        array_key);
	else
		off += (size_t)snprintf(s + off, cap - off,
		                        "{\"schemaVersion\":2,\"config\":{\"digest\":\"" DG_A
		                        "\",\"size\":1},\"%s\":[",
		                        array_key);
	for (size_t i = 0; i < n; i++)
		off += (size_t)snprintf(s + off, cap - off,
		                        schema1_layers ? "%s{\"blobSum\":\"" DG_B "\"}"
		                                       : "%s{\"digest\":\"" DG_B "\",\"size\":2}",
		                        i ? "," : "");
	snprintf(s + off, cap - off, "]}");
	return s;
}

static void test_too_many_layers(void **state)
{
	(void)state;
	char *s = image_with_layers(MANIFEST_MAX_LAYERS, "layers", false);
	struct manifest *m = expect_ok(s, MT_DOCKER_V2);
	assert_int_equal(m->nlayers, MANIFEST_MAX_LAYERS);
	assert_int_equal(manifest_image_size(m), 1 + 2 * MANIFEST_MAX_LAYERS);
	manifest_free(m);
	free(s);

	s = image_with_layers(MANIFEST_MAX_LAYERS + 1, "layers", false);
	struct berr e;
	m = (struct manifest *)0x1;
	assert_int_equal(parse(s, MT_DOCKER_V2, &m, &e), BERR_LIMIT_EXCEEDED);
	assert_string_equal(e.msg, MSG_LAYERS);
	assert_null(m);
	free(s);

	s = image_with_layers(MANIFEST_MAX_LAYERS + 1, "fsLayers", true);
	assert_int_equal(parse(s, NULL, &m, &e), BERR_LIMIT_EXCEEDED);
	assert_string_equal(e.msg, MSG_LAYERS);
	free(s);
}

static void test_too_many_children(void **state)
{
	(void)state;
	/* The helper also emits "config"; with an index hint that member is ignored. */
	char *s = image_with_layers(MANIFEST_MAX_CHILDREN, "manifests", false);
	struct manifest *m = expect_ok(s, MT_OCI_INDEX);
	assert_int_equal(m->kind, MANIFEST_INDEX);
	assert_int_equal(m->nmanifests, MANIFEST_MAX_CHILDREN);
	manifest_free(m);
	free(s);

	s = image_with_layers(MANIFEST_MAX_CHILDREN + 1, "manifests", false);
	expect_fail(s, MT_OCI_INDEX, BERR_MANIFEST_INVALID, "more than the limit");
	free(s);
}

static void test_hint_vs_body(void **state)
{
	(void)state;
	/* moto's case: Docker v2 body with an OCI parameter - accepted, parameter recorded. */
	struct manifest *m = expect_ok(docker_v2, MT_OCI_MANIFEST);
	assert_int_equal(m->kind, MANIFEST_IMAGE);
	assert_string_equal(m->media_type, MT_OCI_MANIFEST);
	manifest_free(m);

	/* Hint wins even over an unknown body type. */
	m = expect_ok("{\"schemaVersion\":2,\"mediaType\":\"application/x-unknown\","
	              "\"config\":{\"digest\":\"" DG_A "\",\"size\":1},\"layers\":[]}",
	              MT_DOCKER_V2);
	assert_string_equal(m->media_type, MT_DOCKER_V2);
	manifest_free(m);

	/* Empty hint counts as absent: the body decides. */
	m = expect_ok(docker_list, "");
	assert_string_equal(m->media_type, MT_DOCKER_LIST);
	manifest_free(m);

	/* Different family: the structure does not fit the hint. */
	expect_fail(docker_v2, MT_OCI_INDEX, BERR_MANIFEST_INVALID, "missing manifests");
	expect_fail(docker_list, MT_DOCKER_V2, BERR_MANIFEST_INVALID, "missing config");

	/* Unknown types, from either source. */
	expect_fail(docker_v2, "application/json", BERR_MANIFEST_INVALID,
	            "unsupported manifest media type 'application/json'");
	expect_fail(docker_v2, MT_OCI_MANIFEST "; charset=utf-8", BERR_MANIFEST_INVALID,
	            "unsupported manifest media type");
	expect_fail("{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.artifact.manifest.v1+"
	            "json\",\"config\":{\"digest\":\"" DG_A "\",\"size\":1},\"layers\":[]}",
	            NULL, BERR_MANIFEST_INVALID, "unsupported manifest media type");
	expect_fail("{\"schemaVersion\":2,\"mediaType\":7,\"manifests\":[]}", MT_OCI_INDEX,
	            BERR_MANIFEST_INVALID, "mediaType must be a string");
}

static void test_no_media_type(void **state)
{
	struct berr e;
	struct manifest *m = NULL;
	(void)state;
	static const char *const cases[] = {
	    "{}",
	    "{\"schemaVersion\":2}",
	    "{\"schemaVersion\":2,\"layers\":[]}",
	    "{\"schemaVersion\":2,\"config\":{}}",
	    "{\"schemaVersion\":\"1\",\"fsLayers\":[]}",
	    /* Ambiguous: both an index and an image shape. */
	    "{\"schemaVersion\":2,\"manifests\":[],\"layers\":[]}",
	    "{\"schemaVersion\":2,\"manifests\":[],\"config\":{}}",
	};
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		assert_int_equal(parse(cases[i], NULL, &m, &e), BERR_MANIFEST_INVALID);
		assert_string_equal(e.msg, MSG_NO_MT);
		assert_null(m);
		assert_int_equal(parse(cases[i], "", &m, &e), BERR_MANIFEST_INVALID);
		assert_string_equal(e.msg, MSG_NO_MT);
	}
}

static void test_media_type_predicates(void **state)
{
	(void)state;
	assert_true(manifest_media_type_is_known(MT_DOCKER_V1));
	assert_true(manifest_media_type_is_known(MT_DOCKER_V1_SIGNED));
	assert_true(manifest_media_type_is_known(MT_DOCKER_V2));
	assert_true(manifest_media_type_is_known(MT_DOCKER_LIST));
	assert_true(manifest_media_type_is_known(MT_OCI_MANIFEST));
	assert_true(manifest_media_type_is_known(MT_OCI_INDEX));
	assert_false(manifest_media_type_is_known(NULL));
	assert_false(manifest_media_type_is_known(""));
	assert_false(manifest_media_type_is_known("application/json"));
	assert_false(manifest_media_type_is_known(MT_OCI_CONFIG));
	assert_false(manifest_media_type_is_known("APPLICATION/VND.OCI.IMAGE.INDEX.V1+JSON"));

	assert_true(manifest_media_type_is_index(MT_DOCKER_LIST));
	assert_true(manifest_media_type_is_index(MT_OCI_INDEX));
	assert_false(manifest_media_type_is_index(MT_OCI_MANIFEST));
	assert_false(manifest_media_type_is_index(MT_DOCKER_V2));
	assert_false(manifest_media_type_is_index(MT_DOCKER_V1));
	assert_false(manifest_media_type_is_index(NULL));
	assert_false(manifest_media_type_is_index("x"));
}

static void test_image_size(void **state)
{
	struct manifest fake;
	struct descriptor layers[3];
	(void)state;

	assert_int_equal(manifest_image_size(NULL), -1);

	memset(&fake, 0, sizeof(fake));
	memset(layers, 0, sizeof(layers));
	fake.kind = MANIFEST_IMAGE;
	fake.config.size = -1;
	layers[0].size = 10;
	layers[1].size = -1;
	layers[2].size = 5;
	fake.layers = layers;
	fake.nlayers = 3;
	assert_int_equal(manifest_image_size(&fake), 15);
	fake.config.size = 100;
	assert_int_equal(manifest_image_size(&fake), 115);
	fake.nlayers = 0;
	assert_int_equal(manifest_image_size(&fake), 100);
	fake.kind = MANIFEST_INDEX;
	assert_int_equal(manifest_image_size(&fake), -1);
}

static void test_hostile(void **state)
{
	(void)state;
	/* Deep nesting inside an ignored member: jansson's depth limit turns it into a syntax
	 * error instead of a stack overflow. */
	size_t depth = 100000;
	char *s = xmalloc(2 * depth + 64);
	size_t off = (size_t)sprintf(s, "{\"x\":");
	memset(s + off, '[', depth);
	off += depth;
	memset(s + off, ']', depth);
	off += depth;
	strcpy(s + off, "}");
	expect_fail(s, MT_OCI_MANIFEST, BERR_MANIFEST_INVALID, MSG_INVALID_JSON);
	free(s);

	/* Nesting within the limit in an ignored member is fine. */
	depth = 500;
	s = xmalloc(2 * depth + 256);
	off = (size_t)sprintf(s, "{\"schemaVersion\":2,\"config\":{\"digest\":\"" DG_A
	                         "\",\"size\":1},\"layers\":[],\"x\":");
	memset(s + off, '[', depth);
	off += depth;
	memset(s + off, ']', depth);
	off += depth;
	strcpy(s + off, "}");
	struct manifest *m = expect_ok(s, NULL);
	manifest_free(m);
	free(s);

	/* A huge, non-printable digest is quoted short and printable. */
	size_t n = 100000;
	s = xmalloc(n + 256);
	off = (size_t)sprintf(s, "{\"schemaVersion\":2,\"config\":{\"digest\":\"sha256:");
	for (size_t i = 0; i < n; i += 2)
		memcpy(s + off + i, "\xc3\xa9", 2);
	off += n;
	strcpy(s + off, "\",\"size\":1},\"layers\":[]}");
	struct berr e;
	m = NULL;
	assert_int_equal(parse(s, NULL, &m, &e), BERR_MANIFEST_INVALID);
	assert_non_null(strstr(e.msg, "config: invalid digest 'sha256:??"));
	assert_true(strlen(e.msg) < 160);
	for (const char *p = e.msg; *p; p++)
		assert_true(*p >= 0x20 && *p < 0x7f);
	assert_non_null(strstr(e.msg, "...'"));
	free(s);

	/* Duplicate keys: accepted, the last one counts (lenient, like most registries). */
	m = expect_ok("{\"schemaVersion\":1,\"schemaVersion\":2,\"config\":{\"digest\":\"" DG_A
	              "\",\"size\":1},\"layers\":[]}",
	              NULL);
	assert_int_equal(m->schema_version, 2);
	manifest_free(m);

	manifest_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_docker_v2),
	    cmocka_unit_test(test_oci_image_inferred),
	    cmocka_unit_test(test_docker_list),
	    cmocka_unit_test(test_oci_index_inferred),
	    cmocka_unit_test(test_index_platform_types),
	    cmocka_unit_test(test_oci_artifact),
	    cmocka_unit_test(test_oci11_member_types),
	    cmocka_unit_test(test_schema1),
	    cmocka_unit_test(test_missing_config_layers),
	    cmocka_unit_test(test_descriptor_digest),
	    cmocka_unit_test(test_descriptor_size),
	    cmocka_unit_test(test_descriptor_misc),
	    cmocka_unit_test(test_schema_version),
	    cmocka_unit_test(test_not_json),
	    cmocka_unit_test(test_json_array),
	    cmocka_unit_test(test_not_nul_terminated),
	    cmocka_unit_test(test_too_large),
	    cmocka_unit_test(test_too_many_layers),
	    cmocka_unit_test(test_too_many_children),
	    cmocka_unit_test(test_hint_vs_body),
	    cmocka_unit_test(test_no_media_type),
	    cmocka_unit_test(test_media_type_predicates),
	    cmocka_unit_test(test_image_size),
	    cmocka_unit_test(test_hostile),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
