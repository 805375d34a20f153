"""The two doors are two views of one store (ECR-API.md 5): pushes through /v2 show up in
DescribeImages/ListImages/BatchGetImage with the same digest, tags, size (4.13), push time and
media type; ECR deletes are gone for /v2 pulls and vice versa; ECR-uploaded layers are served by
/v2; repository deletion closes every /v2 path; manifest GETs update lastRecordedPullTime
(batched in memory, flushed every few seconds and at shutdown)."""

import os
import sys
import time

import requests
from botocore.exceptions import ClientError

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from berthctl import (DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, Berth, module_server,  # noqa: E402
                      digest_of, uniq, upload_blob)
from ocilib import V2, OciCase, build_image, build_index, wait_for  # noqa: E402

B = None
PULL_WAIT = 12.0  # the flush interval is "a few seconds"


def setUpModule():
    global B
    B = module_server(name="oci-crossdoor")


class Base(OciCase):
    def setUp(self):
        self.c = B.client()
        self.v = V2(B.url)
        self.addCleanup(self.v.close)
        self.repo = uniq("xd")
        self.c.create_repository(repositoryName=self.repo)

    def details(self, repo=None, **kw):
        return self.c.describe_images(repositoryName=repo or self.repo, **kw)["imageDetails"]

    def detail(self, digest, repo=None):
        return self.details(repo, imageIds=[{"imageDigest": digest}])[0]

    def assertEcrError(self, code, fn, **kw):
        with self.assertRaises(ClientError) as cm:
            fn(**kw)
        self.assertEqual(code, cm.exception.response["Error"]["Code"])
        return cm.exception


class PushViaV2(Base):
    def check(self, img, tag, media_type):
        t0 = time.time()
        r = self.v.push_image(self.repo, img, tag=tag)
        t1 = time.time()
        det = self.detail(r.headers["Docker-Content-Digest"])
        self.assertEqual(img.digest, det["imageDigest"])
        self.assertEqual([tag], det["imageTags"])
        self.assertEqual(img.size, det["imageSizeInBytes"])
        self.assertEqual(media_type, det["imageManifestMediaType"])
        self.assertGreaterEqual(det["imagePushedAt"].timestamp(), t0 - 2)
        self.assertLessEqual(det["imagePushedAt"].timestamp(), t1 + 2)
        ids = self.c.list_images(repositoryName=self.repo)["imageIds"]
        self.assertIn({"imageDigest": img.digest, "imageTag": tag}, ids)
        got = self.c.batch_get_image(repositoryName=self.repo, imageIds=[{"imageTag": tag}])
        self.assertEqual([], got["failures"])
        self.assertEqual(img.manifest.decode(), got["images"][0]["imageManifest"])
        self.assertEqual(media_type, got["images"][0]["imageManifestMediaType"])
        return det

    def test_docker_image(self):
        img = build_image(nlayers=3, docker=True)
        self.check(img, "docker", DOCKER_MANIFEST)

    def test_oci_image(self):
        img = build_image(nlayers=2)
        det = self.check(img, "oci", img.media_type)
        self.assertEqual(img.size, sum(d["size"] for d in img.layer_descs) +
                         img.config_desc["size"])
        self.assertEqual(img.config_desc["mediaType"], det.get("artifactMediaType"))

    def test_index_and_list(self):
        for docker, mt in ((False, OCI_INDEX), (True, DOCKER_LIST)):
            with self.subTest(media_type=mt):
                idx = build_index(docker=docker)
                for k in idx.children:
                    self.v.push_image(self.repo, k)
                det = self.check(idx, "multi-%s" % ("docker" if docker else "oci"), mt)
                self.assertEqual(max(k.size for k in idx.children), det["imageSizeInBytes"])
                # children are images of their own
                for k in idx.children:
                    self.assertEqual(k.size, self.detail(k.digest)["imageSizeInBytes"])
                    r = self.c.batch_delete_image(repositoryName=self.repo,
                                                  imageIds=[{"imageDigest": k.digest}])
                    self.assertEqual([], r["imageIds"])
                    self.assertEqual("ImageReferencedByManifestList",
                                     r["failures"][0]["failureCode"])
                    self.assertEqual(200, self.v.head("%s/manifests/%s" % (
                        self.repo, k.digest)).status_code)

    def test_content_type_is_recorded(self):
        """imageManifestMediaType = the PUT Content-Type (the body has no mediaType)."""
        import json
        img = build_image()
        m = json.loads(img.manifest)
        del m["mediaType"]
        body = json.dumps(m).encode()
        for b in img.blobs():
            self.v.push_blob(self.repo, b)
        r = self.v.push_manifest(self.repo, "ct", body, img.media_type)
        det = self.detail(r.headers["Docker-Content-Digest"])
        self.assertEqual(img.media_type, det["imageManifestMediaType"])

    def test_ecr_put_over_v2_push(self):
        img = build_image()
        self.v.push_image(self.repo, img, tag="t")
        self.assertEcrError("ImageAlreadyExistsException", self.c.put_image,
                            repositoryName=self.repo, imageManifest=img.manifest.decode(),
                            imageTag="t")
        r = self.c.put_image(repositoryName=self.repo, imageManifest=img.manifest.decode(),
                             imageTag="t2")
        self.assertEqual(img.digest, r["image"]["imageId"]["imageDigest"])
        self.assertEqual(["t", "t2"], sorted(self.detail(img.digest)["imageTags"]))
        self.assertEqual(["t", "t2"], self.v.get("%s/tags/list" % self.repo).json()["tags"])


class PushViaEcr(Base):
    def test_pull_via_v2(self):
        img = build_image(docker=True)
        for b in img.blobs():
            upload_blob(self.c, self.repo, b)
        r = self.c.put_image(repositoryName=self.repo, imageManifest=img.manifest.decode(),
                             imageTag="ecr")
        self.assertEqual(img.digest, r["image"]["imageId"]["imageDigest"])
        g = self.v.get("%s/manifests/ecr" % self.repo)
        self.assertStatus(g, 200)
        self.assertEqual(img.manifest, g.content)
        self.assertEqual(DOCKER_MANIFEST, g.headers["Content-Type"])
        self.assertEqual(img.digest, g.headers["Docker-Content-Digest"])
        for b in img.blobs():
            r = self.v.get("%s/blobs/%s" % (self.repo, digest_of(b)))
            self.assertEqual(b, r.content)

    def test_media_type_parameter_is_the_content_type(self):
        img = build_image()
        for b in img.blobs():
            upload_blob(self.c, self.repo, b)
        self.c.put_image(repositoryName=self.repo, imageManifest=img.manifest.decode(),
                         imageTag="p", imageManifestMediaType=img.media_type)
        g = self.v.get("%s/manifests/p" % self.repo)
        self.assertEqual(img.media_type, g.headers["Content-Type"])
        self.assertEqual(self.detail(img.digest)["imageManifestMediaType"],
                         g.headers["Content-Type"])

    def test_download_url_serves_the_same_bytes(self):
        img = build_image()
        self.v.push_image(self.repo, img, tag="t")
        for b in img.layers:
            d = digest_of(b)
            url = self.c.get_download_url_for_layer(repositoryName=self.repo,
                                                    layerDigest=d)["downloadUrl"]
            self.assertEqual(d, self.c.get_download_url_for_layer(
                repositoryName=self.repo, layerDigest=d)["layerDigest"])
            via_url = requests.get(url, timeout=30)
            via_v2 = self.v.get("%s/blobs/%s" % (self.repo, d))
            self.assertEqual(200, via_url.status_code)
            self.assertEqual(via_v2.content, via_url.content)
            self.assertEqual(b, via_url.content)


class Deletes(Base):
    def test_batch_delete_by_tag_is_gone_for_a_pull(self):
        img = build_image()
        self.v.push_image(self.repo, img, tag="a")
        self.v.push_manifest(self.repo, "b", img.manifest, img.media_type)
        r = self.c.batch_delete_image(repositoryName=self.repo, imageIds=[{"imageTag": "a"}])
        self.assertEqual([], r["failures"])
        self.assertOciError(self.v.get("%s/manifests/a" % self.repo), "MANIFEST_UNKNOWN", 404)
        self.assertOciError(self.v.head("%s/manifests/a" % self.repo), None, 404)
        self.assertEqual(200, self.v.get("%s/manifests/b" % self.repo).status_code)
        self.assertEqual(["b"], self.v.get("%s/tags/list" % self.repo).json()["tags"])
        self.c.batch_delete_image(repositoryName=self.repo, imageIds=[{"imageTag": "b"}])
        for ref in ("b", img.digest):
            self.assertOciError(self.v.get("%s/manifests/%s" % (self.repo, ref)),
                                "MANIFEST_UNKNOWN", 404)

    def test_batch_delete_by_digest(self):
        img = build_image()
        self.v.push_image(self.repo, img, tag="a")
        self.c.batch_delete_image(repositoryName=self.repo, imageIds=[{"imageDigest": img.digest}])
        for ref in ("a", img.digest):
            self.assertOciError(self.v.get("%s/manifests/%s" % (self.repo, ref)),
                                "MANIFEST_UNKNOWN", 404)
        self.assertEqual([], self.v.get("%s/tags/list" % self.repo).json()["tags"] or [])

    def test_v2_delete_is_seen_by_ecr(self):
        img = build_image()
        self.v.push_image(self.repo, img, tag="a")
        self.assertStatus(self.v.delete("%s/manifests/%s" % (self.repo, img.digest)), 202)
        self.assertEcrError("ImageNotFoundException", self.c.describe_images,
                            repositoryName=self.repo, imageIds=[{"imageDigest": img.digest}])
        got = self.c.batch_get_image(repositoryName=self.repo, imageIds=[{"imageTag": "a"}])
        self.assertEqual("ImageNotFound", got["failures"][0]["failureCode"])
        self.assertEqual([], self.c.list_images(repositoryName=self.repo)["imageIds"])

    def test_v2_tag_delete_is_seen_by_ecr(self):
        img = build_image()
        self.v.push_image(self.repo, img, tag="a")
        self.v.push_manifest(self.repo, "b", img.manifest, img.media_type)
        self.assertStatus(self.v.delete("%s/manifests/a" % self.repo), 202)
        self.assertEqual(["b"], self.detail(img.digest)["imageTags"])
        ids = self.c.list_images(repositoryName=self.repo)["imageIds"]
        self.assertEqual([{"imageDigest": img.digest, "imageTag": "b"}], ids)

    def test_delete_repository_closes_every_path(self):
        img = build_image()
        self.v.push_image(self.repo, img, tag="a")
        loc = self.v.post("%s/blobs/uploads/" % self.repo).headers["Location"]
        self.c.delete_repository(repositoryName=self.repo, force=True)
        d = digest_of(img.layers[0])
        for method, path in (("GET", "%s/manifests/a" % self.repo),
                             ("GET", "%s/manifests/%s" % (self.repo, img.digest)),
                             ("GET", "%s/blobs/%s" % (self.repo, d)),
                             ("GET", "%s/tags/list" % self.repo),
                             ("GET", "%s/referrers/%s" % (self.repo, img.digest)),
                             ("GET", loc), ("PATCH", loc),
                             ("POST", "%s/blobs/uploads/" % self.repo),
                             ("DELETE", "%s/manifests/%s" % (self.repo, img.digest))):
            with self.subTest(method=method, path=path):
                r = self.v.req(method, path)
                self.assertOciError(r, "NAME_UNKNOWN", 404)
        self.assertNotIn(self.repo, self.v.get("_catalog").json()["repositories"])
        # a recreated repository starts empty
        self.c.create_repository(repositoryName=self.repo)
        self.assertOciError(self.v.get("%s/manifests/a" % self.repo), "MANIFEST_UNKNOWN", 404)
        self.assertOciError(self.v.get("%s/blobs/%s" % (self.repo, d)), "BLOB_UNKNOWN", 404)


class PullTime(Base):
    def pulled_at(self, digest):
        return self.detail(digest).get("lastRecordedPullTime")

    def test_manifest_get_updates_last_recorded_pull_time(self):
        img = build_image()
        self.v.push_image(self.repo, img, tag="p")
        self.assertIsNone(self.pulled_at(img.digest))
        # HEAD is a check, not a pull; blob reads are not pulls either
        self.v.head("%s/manifests/p" % self.repo)
        before = time.time()
        r = self.v.get("%s/manifests/p" % self.repo)
        self.assertStatus(r, 200)
        got = wait_for(lambda: self.pulled_at(img.digest), timeout=PULL_WAIT)
        self.assertIsNotNone(got, "lastRecordedPullTime not set %.0fs after a pull" % PULL_WAIT)
        self.assertGreaterEqual(got.timestamp(), before - 2)
        self.assertLessEqual(got.timestamp(), time.time() + 2)
        # a later pull (by digest) moves it forward
        time.sleep(1.1)
        mark = time.time()
        self.v.get("%s/manifests/%s" % (self.repo, img.digest))
        later = wait_for(lambda: (self.pulled_at(img.digest).timestamp() >= mark - 0.5
                                  and self.pulled_at(img.digest)), timeout=PULL_WAIT)
        self.assertTrue(later, "lastRecordedPullTime did not move forward after a second pull")


    def test_pull_of_a_deleted_image_is_not_inherited(self):
        """An image that was never pulled has no lastRecordedPullTime, even when it is pushed
        right after another image was pulled and deleted (before the batched pull times
        were flushed). Three ways to delete: /v2 DELETE, BatchDeleteImage, DeleteRepository;
        the new image in the same or another repository."""
        other = uniq("xd-other")
        self.c.create_repository(repositoryName=other)
        ways = {
            "v2 delete": lambda x, repo: self.v.delete("%s/manifests/%s" % (repo, x.digest)),
            "BatchDeleteImage": lambda x, repo: self.c.batch_delete_image(
                repositoryName=repo, imageIds=[{"imageDigest": x.digest}]),
            "DeleteRepository": lambda x, repo: self.c.delete_repository(
                repositoryName=repo, force=True),
        }
        for way, delete in ways.items():
            targets = ["other repository"] if way == "DeleteRepository" else \
                ["same repository", "other repository"]
            for target in targets:
                with self.subTest(way=way, target=target):
                    repo = uniq("xd-pulled")
                    self.c.create_repository(repositoryName=repo)
                    dest = other if target == "other repository" else repo
                    x, y = build_image(nlayers=1), build_image(nlayers=1)
                    self.v.push_image(repo, x, tag="x")
                    for b in y.blobs():
                        self.v.push_blob(dest, b)
                    # pull x, delete it, push y -- with no ECR read in between (those flush)
                    self.assertStatus(self.v.get("%s/manifests/x" % repo), 200)
                    delete(x, repo)
                    self.v.push_manifest(dest, "y-%s" % uniq("t")[-6:], y.manifest,
                                         y.media_type)
                    time.sleep(0.1)
                    det = self.detail(y.digest, repo=dest)
                    self.assertNotIn(
                        "lastRecordedPullTime", det,
                        "never-pulled image %s got lastRecordedPullTime %s (pushed %s): it "
                        "inherited the pending pull of the deleted image %s"
                        % (y.digest, det.get("lastRecordedPullTime"), det["imagePushedAt"],
                           x.digest))


class PullTimeAtShutdown(OciCase):
    def test_pending_pull_times_survive_a_restart(self):
        b = Berth(name="oci-pull-restart").start()
        self.addCleanup(b.cleanup)
        c = b.client()
        repo = uniq("pr")
        c.create_repository(repositoryName=repo)
        v = V2(b.url)
        img = build_image()
        v.push_image(repo, img, tag="t")
        before = time.time()
        self.assertStatus(v.get("%s/manifests/t" % repo), 200)
        v.close()
        b.restart()  # SIGTERM right away: the pending time is flushed at shutdown
        det = b.client().describe_images(repositoryName=repo)["imageDetails"][0]
        self.assertIn("lastRecordedPullTime", det)
        self.assertGreaterEqual(det["lastRecordedPullTime"].timestamp(), before - 2)
