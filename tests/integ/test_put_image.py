"""PutImage (spec 3.2, 4.1-4.3, 1.7): manifest types, exact-bytes digests, reference checks,
tag handling."""

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from berthctl import (ACCOUNT, DOCKER_CONFIG, DOCKER_LAYER, DOCKER_LIST,  # noqa: E402
                      DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST, BerthCase, Img, config_blob,
                      desc, digest_of, docker_list, docker_manifest, make_image, module_server,
                      oci_index, oci_manifest, push_image, push_index, put, rand_bytes, uniq,
                      upload_blob)

B = None


def setUpModule():
    global B
    B = module_server(name="putimage")



class PutImage(BerthCase):
    def setUp(self):
        self.c = B.client()
        self.repo = uniq("put")
        self.c.create_repository(repositoryName=self.repo)

    def get(self, **image_id):
        r = self.c.batch_get_image(repositoryName=self.repo, imageIds=[image_id])
        self.assertEqual([], r["failures"])
        self.assertEqual(1, len(r["images"]))
        return r["images"][0]

    def detail(self, digest):
        return self.c.describe_images(repositoryName=self.repo,
                                      imageIds=[{"imageDigest": digest}])["imageDetails"][0]

    def digests(self):
        return {i["imageDigest"] for i in self.c.list_images(repositoryName=self.repo)["imageIds"]}

    def assertPutResponse(self, r, img, tag=None, media_type=None):
        image = r["image"]
        self.assertEqual(ACCOUNT, image["registryId"])
        self.assertEqual(self.repo, image["repositoryName"])
        want = {"imageDigest": img.digest}
        if tag is not None:
            want["imageTag"] = tag
        self.assertEqual(want, image["imageId"])
        self.assertEqual(img.manifest, image["imageManifest"])
        self.assertEqual(media_type or img.media_type, image["imageManifestMediaType"])

    # --- the four manifest types ------------------------------------------------------------

    def test_docker_v2(self):
        img = make_image(self.c, self.repo, kind="docker", nlayers=2)
        r = put(self.c, self.repo, img, "v1")
        self.assertPutResponse(r, img, "v1")
        self.assertEqual(digest_of(img.manifest), r["image"]["imageId"]["imageDigest"])
        g = self.get(imageTag="v1")
        self.assertEqual(img.manifest, g["imageManifest"])
        self.assertEqual(DOCKER_MANIFEST, g["imageManifestMediaType"])

    def test_oci_manifest(self):
        img = make_image(self.c, self.repo, kind="oci", nlayers=3)
        r = put(self.c, self.repo, img, "oci")
        self.assertPutResponse(r, img, "oci")
        self.assertEqual(OCI_MANIFEST, self.detail(img.digest)["imageManifestMediaType"])

    def test_oci_manifest_media_type_from_parameter(self):
        base = make_image(self.c, self.repo, kind="oci")
        text = oci_manifest(base.config[0], [d for d, _ in base.layers], media_type=False)
        self.assertNotIn("mediaType\": \"application/vnd.oci.image.manifest", text)
        img = Img(text, OCI_MANIFEST)
        r = put(self.c, self.repo, img, "nomt", media_type=OCI_MANIFEST)
        self.assertPutResponse(r, img, "nomt")
        self.assertEqual(OCI_MANIFEST, self.detail(img.digest)["imageManifestMediaType"])
        self.assertEqual(OCI_MANIFEST, self.get(imageTag="nomt")["imageManifestMediaType"])

    def test_docker_manifest_list(self):
        amd = push_image(self.c, self.repo, kind="docker", arch="amd64")
        arm = push_image(self.c, self.repo, kind="docker", arch="arm64")
        lst = push_index(self.c, self.repo, [amd, arm], tag="multi", kind="docker")
        self.assertEqual(DOCKER_LIST, lst.media_type)
        g = self.get(imageTag="multi")
        self.assertEqual(lst.manifest, g["imageManifest"])
        self.assertEqual(DOCKER_LIST, g["imageManifestMediaType"])
        self.assertEqual(lst.digest, g["imageId"]["imageDigest"])
        self.assertEqual({amd.digest, arm.digest, lst.digest}, self.digests())

    def test_oci_index(self):
        amd = push_image(self.c, self.repo, kind="oci", arch="amd64")
        arm = push_image(self.c, self.repo, kind="oci", arch="arm64")
        idx = push_index(self.c, self.repo, [amd, arm], tag="multi", kind="oci")
        g = self.get(imageTag="multi")
        self.assertEqual(idx.manifest, g["imageManifest"])
        self.assertEqual(OCI_INDEX, g["imageManifestMediaType"])
        self.assertEqual(OCI_INDEX, self.detail(idx.digest)["imageManifestMediaType"])

    def test_oci_index_media_type_from_parameter(self):
        amd = push_image(self.c, self.repo, kind="oci")
        text = oci_index([amd.child_entry()], media_type=False)
        img = Img(text, OCI_INDEX, children=[amd])
        r = put(self.c, self.repo, img, "idx", media_type=OCI_INDEX)
        self.assertPutResponse(r, img, "idx")

    def test_index_of_index_children_mixed(self):
        docker = push_image(self.c, self.repo, kind="docker")
        oci = push_image(self.c, self.repo, kind="oci")
        idx = push_index(self.c, self.repo, [docker, oci], kind="oci")
        self.assertIn(idx.digest, self.digests())

    # --- exact bytes --------------------------------------------------------------------------

    def test_unusual_whitespace_round_trips(self):
        base = make_image(self.c, self.repo)
        cfg, lay = base.config[0], base.layers[0][0]
        text = ('\n{  "layers" :[\n\t{"digest":"%s",  "size":%d,"mediaType":"%s"}\n\n] ,'
                '\r\n   "schemaVersion":  2,"config":{"size":%d ,"mediaType":"%s","digest":"%s"},'
                '\t"mediaType" : "%s"   }  \n\n'
                % (lay["digest"], lay["size"], DOCKER_LAYER, cfg["size"], DOCKER_CONFIG,
                   cfg["digest"], DOCKER_MANIFEST))
        img = Img(text, DOCKER_MANIFEST)
        r = put(self.c, self.repo, img, "ws")
        self.assertEqual(digest_of(text), r["image"]["imageId"]["imageDigest"])
        self.assertEqual(text, r["image"]["imageManifest"])
        self.assertEqual(text, self.get(imageTag="ws")["imageManifest"])
        self.assertEqual(text, self.get(imageDigest=img.digest)["imageManifest"])
        # the compact form of the same JSON is a different image
        compact = json.dumps(json.loads(text), separators=(",", ":"))
        put(self.c, self.repo, Img(compact, DOCKER_MANIFEST), "compact")
        self.assertNotEqual(digest_of(compact), img.digest)
        self.assertEqual(compact, self.get(imageTag="compact")["imageManifest"])
        self.assertEqual({img.digest, digest_of(compact)}, self.digests())

    def test_unicode_and_escapes_round_trip(self):
        base = make_image(self.c, self.repo, kind="oci")
        ann = {"note": "caf\u00e9 \u2603 \U0001F433 \"quoted\" back\\slash / tab\t nl\n",
               "org.opencontainers.image.title": "\u00fcber"}
        cfg = base.config[0]
        layers = [d for d, _ in base.layers]
        raw_utf8 = json.dumps(json.loads(oci_manifest(cfg, layers, annotations=ann)),
                              ensure_ascii=False, indent=1)
        escaped = json.dumps(json.loads(raw_utf8), ensure_ascii=True, indent=1)
        self.assertNotEqual(raw_utf8, escaped)
        for tag, text in (("utf8", raw_utf8), ("escaped", escaped)):
            with self.subTest(tag=tag):
                img = Img(text, OCI_MANIFEST)
                self.assertEqual("sha256:", img.digest[:7])
                r = put(self.c, self.repo, img, tag)
                self.assertEqual(digest_of(text.encode("utf-8")),
                                 r["image"]["imageId"]["imageDigest"])
                self.assertEqual(text, self.get(imageTag=tag)["imageManifest"])
                self.assertEqual(digest_of(text), self.detail(img.digest)["imageDigest"])

    # --- digests ------------------------------------------------------------------------------

    def test_digest_parameter_matching(self):
        img = make_image(self.c, self.repo)
        r = put(self.c, self.repo, img, "d", imageDigest=img.digest)
        self.assertEqual(img.digest, r["image"]["imageId"]["imageDigest"])

    def test_digest_parameter_mismatch(self):
        img = make_image(self.c, self.repo)
        wrong = digest_of(b"something else")
        self.assertClientError("ImageDigestDoesNotMatchException", put, self.c, self.repo, img,
                               "d", imageDigest=wrong)
        self.assertEqual(set(), self.digests())

    # --- reference checks ---------------------------------------------------------------------

    def test_layers_not_found(self):
        img = make_image(self.c, self.repo, nlayers=2, upload=False)
        self.assertClientError("LayersNotFoundException", put, self.c, self.repo, img, "v1")
        # config present, one layer missing
        cfg = config_blob()
        upload_blob(self.c, self.repo, cfg)
        have = rand_bytes(100)
        upload_blob(self.c, self.repo, have)
        missing = rand_bytes(100)
        text = docker_manifest(desc(DOCKER_CONFIG, cfg), [desc(DOCKER_LAYER, have),
                                                          desc(DOCKER_LAYER, missing)])
        e = self.assertClientError("LayersNotFoundException", put, self.c, self.repo,
                                   Img(text, DOCKER_MANIFEST), "v1")
        self.assertIn(digest_of(missing), e.response["Error"]["Message"])
        # missing config only
        text = docker_manifest(desc(DOCKER_CONFIG, config_blob()), [desc(DOCKER_LAYER, have)])
        self.assertClientError("LayersNotFoundException", put, self.c, self.repo,
                               Img(text, DOCKER_MANIFEST), "v1")
        self.assertEqual(set(), self.digests(), "failed PutImage must not store anything")
        self.assertClientError("ImageNotFoundException", self.c.describe_images,
                               repositoryName=self.repo, imageIds=[{"imageTag": "v1"}])

    def test_layers_of_other_repository_not_usable(self):
        other = uniq("other")
        self.c.create_repository(repositoryName=other)
        img = push_image(self.c, other, tag="v1")
        self.assertClientError("LayersNotFoundException", put, self.c, self.repo, img, "v1")

    def test_referenced_images_not_found(self):
        amd = push_image(self.c, self.repo)
        ghost = make_image(self.c, self.repo)  # blobs uploaded, manifest never put
        for kind in ("oci", "docker"):
            with self.subTest(kind=kind):
                entries = [amd.child_entry("amd64"), ghost.child_entry("arm64")]
                text = oci_index(entries) if kind == "oci" else docker_list(entries)
                mt = OCI_INDEX if kind == "oci" else DOCKER_LIST
                self.assertClientError("ReferencedImagesNotFoundException", put, self.c,
                                       self.repo, Img(text, mt), "multi")
        self.assertEqual({amd.digest}, self.digests())

    def test_referenced_image_in_other_repository(self):
        other = uniq("other")
        self.c.create_repository(repositoryName=other)
        child = push_image(self.c, other)
        text = oci_index([child.child_entry()])
        self.assertClientError("ReferencedImagesNotFoundException", put, self.c, self.repo,
                               Img(text, OCI_INDEX), "multi")

    # --- tags -------------------------------------------------------------------------------

    def test_image_already_exists(self):
        img = push_image(self.c, self.repo, tag="v1")
        self.assertClientError(
            "ImageAlreadyExistsException", put, self.c, self.repo, img, "v1",
            msg="Image with digest '%s' and tag 'v1' already exists in the repository with name "
                "'%s' in registry with id '%s'" % (img.digest, self.repo, ACCOUNT))

    def test_same_manifest_new_tag(self):
        img = push_image(self.c, self.repo, tag="v1")
        pushed_at = self.detail(img.digest)["imagePushedAt"]
        time.sleep(1.1)
        r = put(self.c, self.repo, img, "v2")
        self.assertEqual({"imageDigest": img.digest, "imageTag": "v2"}, r["image"]["imageId"])
        put(self.c, self.repo, img, "latest")
        d = self.detail(img.digest)
        self.assertEqual(["v1", "v2", "latest"], d["imageTags"])
        self.assertEqual(pushed_at, d["imagePushedAt"], "imagePushedAt must not change")
        self.assertEqual({img.digest}, self.digests())

    def test_put_without_tag(self):
        img = make_image(self.c, self.repo)
        r = put(self.c, self.repo, img)
        self.assertEqual({"imageDigest": img.digest}, r["image"]["imageId"])
        d = self.detail(img.digest)
        self.assertNotIn("imageTags", d)

    def test_move_tag_leaves_old_image_untagged(self):
        a = push_image(self.c, self.repo, tag="latest")
        b = push_image(self.c, self.repo, tag="latest")
        self.assertEqual(b.digest, self.get(imageTag="latest")["imageId"]["imageDigest"])
        da = self.detail(a.digest)
        self.assertNotIn("imageTags", da, "old image must stay, untagged")
        self.assertEqual(["latest"], self.detail(b.digest)["imageTags"])
        ids = self.c.list_images(repositoryName=self.repo)["imageIds"]
        self.assertIn({"imageDigest": a.digest}, ids)
        self.assertIn({"imageDigest": b.digest, "imageTag": "latest"}, ids)
        self.assertEqual(2, len(ids))
        # and back again: a is re-tagged, b becomes untagged
        put(self.c, self.repo, a, "latest")
        self.assertEqual(["latest"], self.detail(a.digest)["imageTags"])
        self.assertNotIn("imageTags", self.detail(b.digest))

    def test_move_one_of_several_tags(self):
        a = push_image(self.c, self.repo, tag="x")
        put(self.c, self.repo, a, "y")
        put(self.c, self.repo, a, "z")
        b = push_image(self.c, self.repo, tag="y")
        self.assertEqual(["x", "z"], self.detail(a.digest)["imageTags"])
        self.assertEqual(["y"], self.detail(b.digest)["imageTags"])

    def test_tag_is_case_sensitive(self):
        a = push_image(self.c, self.repo, tag="Latest")
        b = push_image(self.c, self.repo, tag="latest")
        self.assertEqual(["Latest"], self.detail(a.digest)["imageTags"])
        self.assertEqual(["latest"], self.detail(b.digest)["imageTags"])

    def test_tag_lengths(self):
        img = make_image(self.c, self.repo)
        put(self.c, self.repo, img, "t" * 300)
        self.assertClientError("InvalidParameterException", put, self.c, self.repo, img, "t" * 301,
                               msg_contains="imageTag")

    def test_tag_charset(self):
        img = make_image(self.c, self.repo)
        for bad in ("a/b", "a:b", "a@b", "a b", "tab\t", "nl\n"):
            with self.subTest(tag=bad):
                self.assertClientError("InvalidParameterException", put, self.c, self.repo, img,
                                       bad, msg_contains="imageTag")
        self.assertEqual(set(), self.digests())
        for good in ("v1.2.3", "_x", "UPPER-lower_1.0", "-dash", ".dot", "a" * 128):
            with self.subTest(tag=good):
                put(self.c, self.repo, img, good)

    # --- manifest validation ----------------------------------------------------------------

    def test_no_media_type(self):
        base = make_image(self.c, self.repo, kind="oci")
        text = oci_manifest(base.config[0], [d for d, _ in base.layers], media_type=False)
        self.assertClientError("InvalidParameterException", put, self.c, self.repo,
                               Img(text, None), "x",
                               msg="image manifest mediatype not provided in manifest or "
                                   "parameter")
        self.assertEqual(set(), self.digests())

    def test_invalid_json(self):
        for text in ("this is not json", '{"schemaVersion": 2,', "{'single': 'quotes'}"):
            with self.subTest(text=text):
                self.assertClientError(
                    "InvalidParameterException", put, self.c, self.repo, Img(text, None), "x",
                    media_type=DOCKER_MANIFEST,
                    msg="Invalid parameter at 'ImageManifest' failed to satisfy constraint: "
                        "'Invalid JSON syntax'")
        self.assertEqual(set(), self.digests())

    def test_structurally_invalid_manifest(self):
        cases = ['[]', '"string"', '{"schemaVersion": 2, "mediaType": "%s"}' % DOCKER_MANIFEST,
                 '{"schemaVersion": 2, "mediaType": "%s", "config": "x", "layers": 5}'
                 % DOCKER_MANIFEST,
                 '{"schemaVersion": 2, "mediaType": "%s", "manifests": {}}' % OCI_INDEX]
        for text in cases:
            with self.subTest(text=text):
                self.assertClientError(
                    ("InvalidParameterException", "LayersNotFoundException",
                     "ReferencedImagesNotFoundException"),
                    put, self.c, self.repo, Img(text, None), "x")
        self.assertEqual(set(), self.digests())

    def test_unknown_media_type_rejected(self):
        img = make_image(self.c, self.repo)
        self.assertClientError("InvalidParameterException", put, self.c, self.repo, img, "x",
                               media_type="application/x-not-a-manifest")

    def test_media_type_parameter_wins(self):
        img = make_image(self.c, self.repo, kind="docker")
        r = put(self.c, self.repo, img, "p", media_type=OCI_MANIFEST)
        self.assertEqual(OCI_MANIFEST, r["image"]["imageManifestMediaType"])
        self.assertEqual(OCI_MANIFEST, self.detail(img.digest)["imageManifestMediaType"])

    def test_manifest_too_large(self):
        base = make_image(self.c, self.repo, kind="oci")
        text = oci_manifest(base.config[0], [d for d, _ in base.layers],
                            annotations={"pad": "x" * (4194304 + 10)})
        self.assertClientError("InvalidParameterException", put, self.c, self.repo,
                               Img(text, OCI_MANIFEST), "big")
        self.assertEqual(set(), self.digests())

    # --- addressing -------------------------------------------------------------------------

    def test_missing_repository(self):
        name = uniq("absent")
        img = make_image(self.c, self.repo)
        self.assertClientError(
            "RepositoryNotFoundException", put, self.c, name, img, "v1",
            msg="The repository with name '%s' does not exist in the registry with id '%s'"
                % (name, ACCOUNT))

    def test_missing_repository_wins_over_manifest_errors(self):
        # The repository is looked up inside the put's transaction, after the manifest is
        # parsed; an invalid manifest or a digest mismatch must still report the repository.
        name = uniq("absent")
        img = make_image(self.c, self.repo)
        for text, extra in (("this is not json", {}),
                            (img.manifest, {"imageDigest": "sha256:" + "0" * 64})):
            with self.subTest(text=text[:20]):
                self.assertClientError(
                    "RepositoryNotFoundException", put, self.c, name, Img(text, None), "v1",
                    media_type=DOCKER_MANIFEST, **extra)

    def test_registry_id(self):
        img = make_image(self.c, self.repo)
        r = put(self.c, self.repo, img, "v1", registryId=ACCOUNT)
        self.assertEqual(ACCOUNT, r["image"]["registryId"])
        self.assertClientError(
            "RepositoryNotFoundException", put, self.c, self.repo, img, "v2",
            registryId="999988887777",
            msg="The repository with name '%s' does not exist in the registry with id "
                "'999988887777'" % self.repo)

    def test_push_into_other_registry(self):
        other = "210987654321"
        name = uniq("xreg")
        self.c.create_repository(repositoryName=name, registryId=other)
        img = make_image(self.c, self.repo, upload=False)
        # blobs must be in *that* registry's repository
        self.assertClientError("LayersNotFoundException", put, self.c, name, img, "v1",
                               registryId=other)
        for d, data in [img.config] + img.layers:
            upload_blob(self.c, name, data, registry_id=other)
        r = put(self.c, name, img, "v1", registryId=other)
        self.assertEqual(other, r["image"]["registryId"])
        ids = self.c.list_images(repositoryName=name, registryId=other)["imageIds"]
        self.assertEqual([{"imageDigest": img.digest, "imageTag": "v1"}], ids)
        g = self.c.batch_get_image(repositoryName=name, registryId=other,
                                   imageIds=[{"imageTag": "v1"}])
        self.assertEqual(other, g["images"][0]["registryId"])
        self.assertEqual(img.manifest, g["images"][0]["imageManifest"])
        d = self.c.describe_images(repositoryName=name, registryId=other)["imageDetails"][0]
        self.assertEqual(other, d["registryId"])
        # the caller's own registry has no such repository
        self.assertClientError("RepositoryNotFoundException", self.c.list_images,
                               repositoryName=name)
        self.c.delete_repository(repositoryName=name, registryId=other, force=True)

    def test_same_manifest_two_repositories(self):
        other = uniq("other")
        self.c.create_repository(repositoryName=other)
        img = make_image(self.c, self.repo)
        for d, data in [img.config] + img.layers:
            upload_blob(self.c, other, data)
        put(self.c, self.repo, img, "a")
        put(self.c, other, img, "b")
        self.assertEqual(["a"], self.detail(img.digest)["imageTags"])
        d2 = self.c.describe_images(repositoryName=other, imageIds=[{"imageDigest": img.digest}])
        self.assertEqual(["b"], d2["imageDetails"][0]["imageTags"])
        self.c.batch_delete_image(repositoryName=other, imageIds=[{"imageDigest": img.digest}])
        self.assertEqual(["a"], self.detail(img.digest)["imageTags"])


class ArtifactTypes(BerthCase):
    """OCI artifacts: config media type drives artifactMediaType."""

    def test_artifact_config_media_type(self):
        c = B.client()
        repo = uniq("art")
        c.create_repository(repositoryName=repo)
        cfg = b'{"kind":"helm-chart"}'
        blob = rand_bytes(500)
        upload_blob(c, repo, cfg)
        upload_blob(c, repo, blob)
        mt = "application/vnd.cncf.helm.config.v1+json"
        text = oci_manifest(desc(mt, cfg),
                            [desc("application/vnd.cncf.helm.chart.content.v1.tar+gzip", blob)])
        put(c, repo, Img(text, OCI_MANIFEST), "chart")
        d = c.describe_images(repositoryName=repo, imageIds=[{"imageTag": "chart"}])[
            "imageDetails"][0]
        self.assertEqual(mt, d.get("artifactMediaType"))
