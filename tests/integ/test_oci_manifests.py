"""/v2 manifests (OCI Distribution Spec v1.1 "Pulling manifests", "Pushing manifests",
"Deleting manifests"; ECR-API.md 4.2, 4.3, 4.6, 5): PUT/GET/HEAD/DELETE by tag and digest for
Docker schema 2, Docker manifest list, OCI manifest and OCI index (artifactType, subject),
reference checks, tag immutability, Accept negotiation, the 4 MiB limit, OCI-Subject."""

import json
import os
import sys
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from berthctl import (ACCOUNT, DOCKER_LIST, DOCKER_MANIFEST, MIB, OCI_INDEX,  # noqa: E402
                      OCI_MANIFEST, module_server, digest_of, uniq)
from ocilib import (V2, EMPTY_DIGEST, EMPTY_JSON, Index, OciCase, build_artifact,  # noqa: E402
                    build_image, build_index)

B = None


def setUpModule():
    global B
    B = module_server(name="oci-manifests")


class Base(OciCase):
    def setUp(self):
        self.c = B.client()
        self.v = V2(B.url)
        self.addCleanup(self.v.close)
        self.repo = uniq("man")
        self.c.create_repository(repositoryName=self.repo)

    def mpath(self, ref, repo=None):
        return "%s/manifests/%s" % (repo or self.repo, ref)

    def assertManifest(self, ref, img, repo=None):
        """GET and HEAD ref return exactly img's bytes and headers."""
        r = self.v.get(self.mpath(ref, repo))
        self.assertStatus(r, 200)
        self.assertEqual(img.manifest, r.content, "manifest bytes")
        self.assertEqual(img.media_type, r.headers.get("Content-Type"))
        self.assertEqual(img.digest, r.headers.get("Docker-Content-Digest"))
        self.assertEqual(str(len(img.manifest)), r.headers.get("Content-Length"))
        h = self.v.head(self.mpath(ref, repo))
        self.assertStatus(h, 200)
        self.assertEqual(b"", h.content)
        self.assertEqual(img.media_type, h.headers.get("Content-Type"))
        self.assertEqual(img.digest, h.headers.get("Docker-Content-Digest"))
        self.assertEqual(str(len(img.manifest)), h.headers.get("Content-Length"))

    def assertNoImages(self, repo=None):
        """No partial state: no image, no tag in the repository."""
        d = self.c.describe_images(repositoryName=repo or self.repo)["imageDetails"]
        self.assertEqual([], d)
        t = self.v.get("%s/tags/list" % (repo or self.repo))
        self.assertStatus(t, 200)
        self.assertEqual([], t.json().get("tags") or [])

    def describe(self, digest, repo=None):
        return self.c.describe_images(repositoryName=repo or self.repo,
                                      imageIds=[{"imageDigest": digest}])["imageDetails"][0]


class PushPull(Base):
    def check_push(self, img, tag):
        r = self.v.push_image(self.repo, img, tag=tag)
        self.assertEqual(201, r.status_code)
        self.assertEqual(img.digest, r.headers.get("Docker-Content-Digest"))
        self.assertTrue(r.headers.get("Location", "").endswith(
            "/v2/%s/manifests/%s" % (self.repo, img.digest)), r.headers.get("Location"))
        self.assertManifest(tag, img)
        self.assertManifest(img.digest, img)
        det = self.describe(img.digest)
        self.assertEqual([tag], det.get("imageTags"))
        self.assertEqual(img.media_type, det["imageManifestMediaType"])
        return det

    def test_docker_schema2(self):
        img = build_image(docker=True)
        det = self.check_push(img, "v1")
        self.assertEqual(img.size, det["imageSizeInBytes"])

    def test_oci_manifest(self):
        img = build_image(nlayers=3)
        det = self.check_push(img, "v1")
        self.assertEqual(img.size, det["imageSizeInBytes"])

    def test_docker_manifest_list(self):
        idx = build_index(docker=True)
        for k in idx.children:
            self.v.push_image(self.repo, k)
        self.check_push(idx, "multi")
        for k in idx.children:
            self.assertManifest(k.digest, k)

    def test_oci_index_with_artifact_type_and_subject(self):
        subject = build_image()
        self.v.push_image(self.repo, subject, tag="base")
        a, b = build_image(), build_image(arch="arm64")
        for k in (a, b):
            self.v.push_image(self.repo, k)
        idx = Index([a, b], [{"architecture": "amd64", "os": "linux"},
                             {"architecture": "arm64", "os": "linux"}],
                    artifact_type="application/vnd.berth.bundle",
                    subject=subject.descriptor(), annotations={"x": "y"})
        r = self.v.push_manifest(self.repo, "bundle", idx.manifest, OCI_INDEX)
        self.assertEqual(subject.digest, r.headers.get("OCI-Subject"))
        self.assertManifest("bundle", idx)
        det = self.describe(idx.digest)
        self.assertEqual(OCI_INDEX, det["imageManifestMediaType"])
        self.assertEqual(subject.digest, det.get("subjectManifestDigest"))
        self.assertEqual("application/vnd.berth.bundle", det.get("artifactMediaType"))

    def test_artifact_with_subject_sets_oci_subject(self):
        subject = build_image()
        self.v.push_image(self.repo, subject, tag="app")
        art = build_artifact(subject.descriptor())
        self.assertEqual(EMPTY_DIGEST, digest_of(EMPTY_JSON))
        for blob in art.blobs():
            self.v.push_blob(self.repo, blob)
        r = self.v.push_manifest(self.repo, art.digest, art.manifest, OCI_MANIFEST)
        self.assertEqual(subject.digest, r.headers.get("OCI-Subject"))
        self.assertManifest(art.digest, art)
        self.assertEqual(subject.digest, self.describe(art.digest).get("subjectManifestDigest"))

    def test_referrer_before_its_subject(self):
        """OCI 1.1: a manifest with a subject that does not exist (yet) is accepted."""
        ghost = build_image()
        art = build_artifact(ghost.descriptor())
        r = self.v.push_image(self.repo, art)
        self.assertEqual(201, r.status_code)
        self.assertEqual(ghost.digest, r.headers.get("OCI-Subject"))

    def test_no_oci_subject_without_subject(self):
        img = build_image()
        r = self.v.push_image(self.repo, img, tag="plain")
        self.assertNotIn("OCI-Subject", r.headers)

    def test_push_by_digest_then_tag(self):
        img = build_image()
        r = self.v.push_image(self.repo, img)
        self.assertEqual(201, r.status_code)
        self.assertEqual([], self.v.get("%s/tags/list" % self.repo).json().get("tags") or [])
        det = self.describe(img.digest)
        self.assertNotIn("imageTags", det)
        r = self.v.push_manifest(self.repo, "later", img.manifest, img.media_type)
        self.assertEqual(img.digest, r.headers.get("Docker-Content-Digest"))
        self.assertEqual(["later"], self.describe(img.digest).get("imageTags"))

    def test_repush_same_tag_is_idempotent(self):
        img = build_image()
        self.v.push_image(self.repo, img, tag="same")
        before = self.describe(img.digest)
        r = self.v.push_manifest(self.repo, "same", img.manifest, img.media_type)
        self.assertEqual(201, r.status_code)
        after = self.describe(img.digest)
        self.assertEqual(before["imagePushedAt"], after["imagePushedAt"])
        self.assertEqual(["same"], after["imageTags"])

    def test_several_tags_and_overwrite(self):
        a, b = build_image(), build_image()
        self.v.push_image(self.repo, a, tag="x")
        self.v.push_manifest(self.repo, "y", a.manifest, a.media_type)
        self.assertEqual({"x", "y"}, set(self.describe(a.digest)["imageTags"]))
        self.v.push_image(self.repo, b, tag="x")  # mutable repository: the tag moves
        self.assertManifest("x", b)
        self.assertManifest("y", a)
        self.assertEqual(["y"], self.describe(a.digest)["imageTags"])
        self.assertEqual(["x"], self.describe(b.digest)["imageTags"])

    def test_put_digest_mismatch(self):
        img = build_image()
        for blob in img.blobs():
            self.v.push_blob(self.repo, blob)
        wrong = digest_of(b"not it")
        r = self.v.push_manifest(self.repo, wrong, img.manifest, img.media_type, check=False)
        self.assertOciError(r, "DIGEST_INVALID", 400)
        self.assertNoImages()

    def test_content_type_recorded_and_json_falls_back_to_body(self):
        # OCI manifest whose body has no mediaType: the PUT Content-Type decides
        img = build_image()
        m = json.loads(img.manifest)
        del m["mediaType"]
        body = json.dumps(m).encode()
        for blob in img.blobs():
            self.v.push_blob(self.repo, blob)
        r = self.v.push_manifest(self.repo, "notype", body, OCI_MANIFEST)
        d = r.headers["Docker-Content-Digest"]
        self.assertEqual(digest_of(body), d)
        self.assertEqual(OCI_MANIFEST, self.describe(d)["imageManifestMediaType"])
        self.assertEqual(OCI_MANIFEST, self.v.get(self.mpath("notype")).headers["Content-Type"])
        # a generic Content-Type: the body's mediaType is used
        img2 = build_image(docker=True)
        for blob in img2.blobs():
            self.v.push_blob(self.repo, blob)
        r = self.v.push_manifest(self.repo, "json", img2.manifest, "application/json")
        self.assertEqual(DOCKER_MANIFEST, self.describe(img2.digest)["imageManifestMediaType"])

    def test_manifest_bytes_are_kept_verbatim(self):
        img = build_image()
        for blob in img.blobs():
            self.v.push_blob(self.repo, blob)
        body = b"  \n" + json.dumps(json.loads(img.manifest), indent=7).encode() + b"\n\n"
        r = self.v.push_manifest(self.repo, "odd", body, OCI_MANIFEST)
        self.assertEqual(digest_of(body), r.headers["Docker-Content-Digest"])
        self.assertEqual(body, self.v.get(self.mpath("odd")).content)

    def test_namespaced_repository(self):
        name = "team-%s/app/api" % uuid.uuid4().hex[:6]
        self.c.create_repository(repositoryName=name)
        img = build_image()
        self.v.push_image(name, img, tag="v1")
        self.assertManifest("v1", img, repo=name)


class References(Base):
    def test_missing_layer(self):
        img = build_image(nlayers=2)
        self.v.push_blob(self.repo, img.config)
        self.v.push_blob(self.repo, img.layers[0])
        r = self.v.push_manifest(self.repo, "t", img.manifest, img.media_type, check=False)
        e = self.assertOciError(r, "MANIFEST_BLOB_UNKNOWN", (400, 404))
        self.assertIn(digest_of(img.layers[1]), json.dumps(e))
        self.assertNoImages()

    def test_missing_config(self):
        img = build_image(nlayers=1)
        self.v.push_blob(self.repo, img.layers[0])
        r = self.v.push_manifest(self.repo, "t", img.manifest, img.media_type, check=False)
        self.assertOciError(r, "MANIFEST_BLOB_UNKNOWN", (400, 404))
        self.assertNoImages()

    def test_blobs_of_another_repository_do_not_count(self):
        other = uniq("man-other")
        self.c.create_repository(repositoryName=other)
        img = build_image()
        for blob in img.blobs():
            self.v.push_blob(other, blob)
        r = self.v.push_manifest(self.repo, "t", img.manifest, img.media_type, check=False)
        self.assertOciError(r, "MANIFEST_BLOB_UNKNOWN", (400, 404))
        self.assertNoImages()

    def test_index_with_missing_child(self):
        idx = build_index()
        self.v.push_image(self.repo, idx.children[0])
        r = self.v.push_manifest(self.repo, "multi", idx.manifest, idx.media_type, check=False)
        e = self.assertOciError(r, ("MANIFEST_UNKNOWN", "MANIFEST_BLOB_UNKNOWN"), (400, 404))
        self.assertIn(idx.children[1].digest, json.dumps(e))
        det = self.c.describe_images(repositoryName=self.repo)["imageDetails"]
        self.assertEqual([idx.children[0].digest], [d["imageDigest"] for d in det])

    def test_docker_list_with_missing_child(self):
        idx = build_index(docker=True)
        r = self.v.push_manifest(self.repo, "multi", idx.manifest, DOCKER_LIST, check=False)
        self.assertOciError(r, ("MANIFEST_UNKNOWN", "MANIFEST_BLOB_UNKNOWN"), (400, 404))
        self.assertNoImages()

    def test_foreign_layers_are_exempt(self):
        """Descriptors with urls (non-distributable layers) need no blob (ECR-API.md 4.2);
        they still count in imageSizeInBytes (4.13)."""
        img = build_image(nlayers=1, docker=True)
        for blob in img.blobs():
            self.v.push_blob(self.repo, blob)
        m = json.loads(img.manifest)
        m["layers"].insert(0, {
            "mediaType": "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
            "size": 123456, "digest": digest_of(b"foreign layer"),
            "urls": ["https://example.invalid/layer.tar.gz"]})
        body = json.dumps(m).encode()
        r = self.v.push_manifest(self.repo, "foreign", body, DOCKER_MANIFEST, check=False)
        self.assertStatus(r, 201)
        self.assertEqual(img.size + 123456, self.describe(digest_of(body))["imageSizeInBytes"])

    def test_empty_config_must_be_uploaded(self):
        art = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
               "artifactType": "application/vnd.berth.empty",
               "config": {"mediaType": "application/vnd.oci.empty.v1+json",
                          "digest": EMPTY_DIGEST, "size": 2}, "layers": []}
        body = json.dumps(art).encode()
        r = self.v.push_manifest(self.repo, "e", body, OCI_MANIFEST, check=False)
        e = self.assertOciError(r, "MANIFEST_BLOB_UNKNOWN", (400, 404))
        self.assertIn(EMPTY_DIGEST, json.dumps(e))
        self.assertNoImages()
        self.v.push_blob(self.repo, EMPTY_JSON)
        self.assertStatus(self.v.push_manifest(self.repo, "e", body, OCI_MANIFEST), 201)
        det = self.describe(digest_of(body))
        self.assertEqual(2, det["imageSizeInBytes"])
        self.assertEqual("application/vnd.berth.empty", det.get("artifactMediaType"))

    def test_push_to_missing_repository(self):
        name = uniq("nope")
        img = build_image()
        r = self.v.push_manifest(name, "t", img.manifest, img.media_type, check=False)
        self.assertOciError(r, "NAME_UNKNOWN", 404,
                            msg="The repository with name '%s' does not exist in the registry "
                                "with id '%s'" % (name, ACCOUNT))


class Immutability(Base):
    def test_immutable_tag(self):
        self.c.put_image_tag_mutability(repositoryName=self.repo, imageTagMutability="IMMUTABLE")
        a, b = build_image(), build_image()
        self.v.push_image(self.repo, a, tag="stable")
        for blob in b.blobs():
            self.v.push_blob(self.repo, blob)
        r = self.v.push_manifest(self.repo, "stable", b.manifest, b.media_type, check=False)
        self.assertOciError(
            r, "TAG_INVALID", 400,
            msg="The image tag 'stable' already exists in the '%s' repository and cannot be "
                "overwritten because the repository is immutable." % self.repo)
        self.assertManifest("stable", a)
        # b was not stored either (no partial state)
        self.assertOciError(self.v.get(self.mpath(b.digest)), "MANIFEST_UNKNOWN", 404)
        # re-pushing the same manifest to the tag is fine; a new tag is fine
        self.assertEqual(201, self.v.push_manifest(self.repo, "stable", a.manifest,
                                                   a.media_type).status_code)
        self.assertEqual(201, self.v.push_manifest(self.repo, "other", b.manifest,
                                                   b.media_type).status_code)

    def test_same_message_as_ecr(self):
        self.c.put_image_tag_mutability(repositoryName=self.repo, imageTagMutability="IMMUTABLE")
        a, b = build_image(), build_image()
        self.v.push_image(self.repo, a, tag="t")
        for blob in b.blobs():
            self.v.push_blob(self.repo, blob)
        r = self.v.push_manifest(self.repo, "t", b.manifest, b.media_type, check=False)
        e = self.assertOciError(r, "TAG_INVALID", 400)
        with self.assertRaises(Exception) as cm:
            self.c.put_image(repositoryName=self.repo, imageManifest=b.manifest.decode(),
                             imageTag="t")
        self.assertEqual("ImageTagAlreadyExistsException",
                         cm.exception.response["Error"]["Code"])
        self.assertEqual(cm.exception.response["Error"]["Message"], e["message"])


    def overwrite(self, tag):
        """Pushes a new image over `tag` (which holds some image); returns the response."""
        b = build_image(nlayers=1)
        for blob in b.blobs():
            self.v.push_blob(self.repo, blob)
        return self.v.push_manifest(self.repo, tag, b.manifest, b.media_type, check=False)

    def test_exclusion_filters(self):
        """ECR-API.md 4.6: *_WITH_EXCLUSION mutability applies to /v2 pushes."""
        cases = [
            ("IMMUTABLE_WITH_EXCLUSION", ["latest", "dev-*"],
             {"latest": 201, "dev-1": 201, "dev-x-y": 201, "v1": 400, "dev": 400,
              "latest2": 400}),
            ("MUTABLE_WITH_EXCLUSION", ["release-*", "stable"],
             {"release-1": 400, "stable": 400, "latest": 201, "stable2": 201, "release": 201}),
        ]
        for mode, filters, expect in cases:
            with self.subTest(mode=mode):
                self.repo = uniq("excl")
                self.c.create_repository(repositoryName=self.repo)
                first = build_image(nlayers=1)
                self.v.push_image(self.repo, first)
                for tag in expect:
                    self.v.push_manifest(self.repo, tag, first.manifest, first.media_type)
                self.c.put_image_tag_mutability(
                    repositoryName=self.repo, imageTagMutability=mode,
                    imageTagMutabilityExclusionFilters=[
                        {"filterType": "WILDCARD", "filter": f} for f in filters])
                for tag, status in expect.items():
                    with self.subTest(tag=tag):
                        r = self.overwrite(tag)
                        if status == 201:
                            self.assertStatus(r, 201)
                        else:
                            self.assertOciError(r, "TAG_INVALID", 400, msg_contains=tag)
                            self.assertManifest(tag, first)


class Negotiation(Base):
    def test_accept(self):
        d, o = build_image(docker=True), build_image()
        self.v.push_image(self.repo, d, tag="docker")
        self.v.push_image(self.repo, o, tag="oci")
        ok = {
            "docker": [DOCKER_MANIFEST, "*/*", "%s, %s" % (OCI_MANIFEST, DOCKER_MANIFEST),
                       "%s;q=0.5, %s;q=0.9" % (DOCKER_MANIFEST, OCI_INDEX), ""],
            "oci": [OCI_MANIFEST, "%s,%s,%s" % (DOCKER_MANIFEST, DOCKER_LIST, OCI_MANIFEST)],
        }
        for tag, accepts in ok.items():
            img = d if tag == "docker" else o
            for acc in accepts:
                with self.subTest(tag=tag, accept=acc):
                    r = self.v.get(self.mpath(tag), headers={"Accept": acc})
                    self.assertStatus(r, 200)
                    self.assertEqual(img.media_type, r.headers["Content-Type"])
                    self.assertEqual(img.manifest, r.content)
        bad = {"docker": OCI_MANIFEST, "oci": "%s, %s" % (DOCKER_MANIFEST, OCI_INDEX)}
        for tag, acc in bad.items():
            with self.subTest(tag=tag, accept=acc, expect="refused"):
                r = self.v.get(self.mpath(tag), headers={"Accept": acc})
                self.assertOciError(r, ("MANIFEST_UNKNOWN", "UNSUPPORTED"), (404, 406))

    def test_multiple_accept_headers(self):
        """Docker sends one Accept header per type; all of them count, in any order."""
        import http.client
        d, o = build_image(docker=True), build_image()
        self.v.push_image(self.repo, d, tag="d")
        self.v.push_image(self.repo, o, tag="o")
        for tag, img in (("d", d), ("o", o)):
            for accepts in ([OCI_MANIFEST, DOCKER_MANIFEST], [DOCKER_MANIFEST, OCI_MANIFEST],
                            [DOCKER_LIST, OCI_INDEX, img.media_type]):
                with self.subTest(tag=tag, accept=accepts):
                    conn = http.client.HTTPConnection("127.0.0.1", B.port, timeout=30)
                    try:
                        conn.putrequest("GET", "/v2/%s/manifests/%s" % (self.repo, tag))
                        for a in accepts:
                            conn.putheader("Accept", a)
                        conn.endheaders()
                        r = conn.getresponse()
                        body = r.read()
                    finally:
                        conn.close()
                    self.assertEqual(200, r.status, body[:300])
                    self.assertEqual(img.media_type, r.getheader("Content-Type"))
                    self.assertEqual(img.manifest, body)


class Limits(Base):
    def padded(self, total):
        """An OCI artifact manifest (empty config, no layers) of exactly `total` bytes."""
        self.v.push_blob(self.repo, EMPTY_JSON)
        base = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                "artifactType": "application/vnd.berth.pad",
                "config": {"mediaType": "application/vnd.oci.empty.v1+json",
                           "digest": EMPTY_DIGEST, "size": 2},
                "layers": [], "annotations": {"pad": ""}}
        n = len(json.dumps(base).encode())
        base["annotations"]["pad"] = "p" * (total - n)
        body = json.dumps(base).encode()
        assert len(body) == total
        return body

    def test_4mib_manifest_accepted(self):
        body = self.padded(4 * MIB)
        r = self.v.push_manifest(self.repo, "big", body, OCI_MANIFEST, check=False)
        self.assertStatus(r, 201)
        g = self.v.get(self.mpath("big"))
        self.assertEqual(body, g.content)

    def test_larger_manifest_refused(self):
        for total in (4 * MIB + 1, 5 * MIB):
            with self.subTest(size=total):
                body = self.padded(total)
                r = self.v.push_manifest(self.repo, "toobig", body, OCI_MANIFEST, check=False)
                self.assertOciError(r, ("MANIFEST_INVALID", "SIZE_INVALID"), 413)
                self.assertNoImages()
                r = self.v.push_manifest(self.repo, digest_of(body), body, OCI_MANIFEST,
                                         check=False)
                self.assertOciError(r, ("MANIFEST_INVALID", "SIZE_INVALID"), 413)
                self.assertNoImages()

    def test_layer_limit(self):
        """More than the layer limit: refused as an invalid manifest with ECR's wording
        (ECR-API.md 4.2, 5), never as a retryable 429."""
        img = build_image(nlayers=1)
        for blob in img.blobs():
            self.v.push_blob(self.repo, blob)
        m = json.loads(img.manifest)
        m["layers"] = [dict(m["layers"][0], annotations={"i": str(i)}) for i in range(5000)]
        r = self.v.push_manifest(self.repo, "many", json.dumps(m).encode(), OCI_MANIFEST,
                                 check=False)
        self.assertOciError(r, ("MANIFEST_INVALID", "UNSUPPORTED"), (400, 405),
                            msg_contains="Limit on number of layers per image exceeded")
        self.assertNoImages()
        # many layers below the limit are fine
        m["layers"] = m["layers"][:300]
        body = json.dumps(m).encode()
        self.assertStatus(self.v.push_manifest(self.repo, "ok", body, OCI_MANIFEST), 201)

    def test_huge_body_is_refused_without_reading_it_all(self):
        """64 MiB streamed at a manifest: a 413 (the server may close early), no state."""
        def gen():
            chunk = b"x" * MIB
            for _ in range(64):
                yield chunk
        try:
            r = self.v.put(self.mpath("huge"), data=gen(),
                           headers={"Content-Type": OCI_MANIFEST})
            self.assertOciError(r, ("MANIFEST_INVALID", "SIZE_INVALID"), 413)
        except (ConnectionError, OSError) as e:  # server closed the connection mid-body
            self.assertIn("onnection", str(e))
        self.assertNoImages()


class InvalidManifests(Base):
    def test_invalid_bodies(self):
        img = build_image()
        for blob in img.blobs():
            self.v.push_blob(self.repo, blob)
        m = json.loads(img.manifest)
        cases = {
            "not json": (b"this is not json", OCI_MANIFEST),
            "json array": (b"[]", OCI_MANIFEST),
            "empty": (b"", OCI_MANIFEST),
            "schemaVersion 1": (json.dumps(dict(m, schemaVersion=1)).encode(), OCI_MANIFEST),
            "schemaVersion 3": (json.dumps(dict(m, schemaVersion=3)).encode(), OCI_MANIFEST),
            "no config": (json.dumps({k: v for k, v in m.items() if k != "config"}).encode(),
                          OCI_MANIFEST),
            "layers not a list": (json.dumps(dict(m, layers={})).encode(), OCI_MANIFEST),
            "bad layer digest": (json.dumps(dict(m, layers=[dict(m["layers"][0],
                                                                 digest="sha256:xyz")])).encode(),
                                 OCI_MANIFEST),
            "index without manifests": (json.dumps({"schemaVersion": 2,
                                                    "mediaType": OCI_INDEX}).encode(), OCI_INDEX),
            "no media type anywhere": (json.dumps({k: v for k, v in m.items()
                                                   if k != "mediaType"}).encode(), None),
        }
        for what, (body, ct) in cases.items():
            with self.subTest(what):
                r = self.v.push_manifest(self.repo, "bad", body, ct, check=False)
                self.assertOciError(r, "MANIFEST_INVALID", 400)
        self.assertNoImages()

    def test_bad_references(self):
        img = build_image()
        for ref in ("-bad", "a" * 129, "sha256:xyz", "ta:g", ".dot"):
            with self.subTest(ref=ref):
                r = self.v.push_manifest(self.repo, ref, img.manifest, img.media_type,
                                         check=False)
                self.assertOciError(r, ("TAG_INVALID", "DIGEST_INVALID", "MANIFEST_INVALID",
                                        "NAME_INVALID"), (400, 404))
                r = self.v.get(self.mpath(ref))
                self.assertOciError(r, ("TAG_INVALID", "DIGEST_INVALID", "MANIFEST_UNKNOWN",
                                        "NAME_INVALID"), (400, 404))
        self.assertNoImages()

    def test_tag_of_128_chars_is_valid(self):
        img = build_image()
        tag = "T" + "a" * 127
        self.assertEqual(201, self.v.push_image(self.repo, img, tag=tag).status_code)
        self.assertManifest(tag, img)


class Deletes(Base):
    def test_delete_by_digest(self):
        img = build_image()
        self.v.push_image(self.repo, img, tag="a")
        self.v.push_manifest(self.repo, "b", img.manifest, img.media_type)
        r = self.v.delete(self.mpath(img.digest))
        self.assertStatus(r, 202)
        for ref in (img.digest, "a", "b"):
            self.assertOciError(self.v.get(self.mpath(ref)), "MANIFEST_UNKNOWN", 404)
            self.assertOciError(self.v.head(self.mpath(ref)), None, 404)
        self.assertNoImages()
        self.assertOciError(self.v.delete(self.mpath(img.digest)), "MANIFEST_UNKNOWN", 404)

    def test_delete_by_tag(self):
        img = build_image()
        self.v.push_image(self.repo, img, tag="a")
        self.v.push_manifest(self.repo, "b", img.manifest, img.media_type)
        r = self.v.delete(self.mpath("a"))
        self.assertStatus(r, 202)
        self.assertOciError(self.v.get(self.mpath("a")), "MANIFEST_UNKNOWN", 404)
        self.assertManifest("b", img)
        self.assertEqual(["b"], self.describe(img.digest)["imageTags"])
        # removing the last tag deletes the image (ECR-API.md 5)
        self.assertStatus(self.v.delete(self.mpath("b")), 202)
        self.assertOciError(self.v.get(self.mpath(img.digest)), "MANIFEST_UNKNOWN", 404)
        self.assertNoImages()
        self.assertOciError(self.v.delete(self.mpath("b")), "MANIFEST_UNKNOWN", 404)

    def test_child_of_index_cannot_be_deleted(self):
        idx = build_index()
        self.v.push_index(self.repo, idx, tag="multi")
        child = idx.children[0]
        r = self.v.delete(self.mpath(child.digest))
        self.assertOciError(r, ("UNSUPPORTED", "DENIED", "MANIFEST_INVALID"), (400, 405, 409))
        self.assertManifest(child.digest, child)
        # delete the index first, then the child goes
        self.assertStatus(self.v.delete(self.mpath(idx.digest)), 202)
        self.assertStatus(self.v.delete(self.mpath(child.digest)), 202)
        self.assertOciError(self.v.get(self.mpath(child.digest)), "MANIFEST_UNKNOWN", 404)

    def test_unknown(self):
        self.assertOciError(self.v.get(self.mpath("nosuchtag")), "MANIFEST_UNKNOWN", 404)
        self.assertOciError(self.v.get(self.mpath(digest_of(b"x"))), "MANIFEST_UNKNOWN", 404)
        self.assertOciError(self.v.delete(self.mpath("nosuchtag")), "MANIFEST_UNKNOWN", 404)
        self.assertOciError(self.v.delete(self.mpath(digest_of(b"x"))), "MANIFEST_UNKNOWN",
                            404)

    def test_manifest_of_other_repository_is_invisible(self):
        other = uniq("man-other")
        self.c.create_repository(repositoryName=other)
        img = build_image()
        self.v.push_image(other, img, tag="t")
        self.assertOciError(self.v.get(self.mpath(img.digest)), "MANIFEST_UNKNOWN", 404)
        self.assertOciError(self.v.get(self.mpath("t")), "MANIFEST_UNKNOWN", 404)
        self.assertOciError(self.v.delete(self.mpath(img.digest)), "MANIFEST_UNKNOWN", 404)
        self.assertManifest("t", img, repo=other)
