"""BatchDeleteImage (spec 3.2 table, 4.1, 4.3, 4.4)."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from berthctl import (ACCOUNT, BerthCase, digest_of, make_image, module_server,  # noqa: E402
                      push_image, push_index, put, uniq)

B = None
MISSING = "Invalid request parameters: both tag and digest cannot be null"
BAD_DIGEST = ("Invalid request parameters: image digest should satisfy the regex "
              "'[a-zA-Z0-9-_+.]+:[a-fA-F0-9]+'")
NOT_FOUND = "Requested image not found"
REFERENCED = "Requested image referenced by manifest list"


def setUpModule():
    global B
    B = module_server(name="batchdelete")


def key(i):
    return (i.get("imageDigest", ""), i.get("imageTag", ""))


class BatchDeleteImage(BerthCase):
    def setUp(self):
        self.c = B.client()
        self.repo = uniq("bdi")
        self.c.create_repository(repositoryName=self.repo)

    def bdi(self, ids, repo=None):
        return self.c.batch_delete_image(repositoryName=repo or self.repo, imageIds=ids)

    def listing(self):
        return sorted((key(i) for i in self.c.list_images(repositoryName=self.repo)["imageIds"]))

    def tags_of(self, img):
        d = self.c.describe_images(repositoryName=self.repo,
                                   imageIds=[{"imageDigest": img.digest}])["imageDetails"][0]
        return d.get("imageTags")

    def test_by_last_tag_deletes_image(self):
        a = push_image(self.c, self.repo, tag="only")
        r = self.bdi([{"imageTag": "only"}])
        self.assertEqual([{"imageDigest": a.digest, "imageTag": "only"}], r["imageIds"])
        self.assertEqual([], r["failures"])
        self.assertEqual([], self.listing())
        self.assertClientError("ImageNotFoundException", self.c.describe_images,
                               repositoryName=self.repo, imageIds=[{"imageDigest": a.digest}])

    def test_by_tag_keeps_image_with_other_tags(self):
        a = push_image(self.c, self.repo, tag="one")
        put(self.c, self.repo, a, "two")
        put(self.c, self.repo, a, "three")
        r = self.bdi([{"imageTag": "two"}])
        self.assertEqual([{"imageDigest": a.digest, "imageTag": "two"}], r["imageIds"])
        self.assertEqual(["one", "three"], self.tags_of(a))

    def test_by_digest_removes_all_tags(self):
        a = push_image(self.c, self.repo, tag="x")
        put(self.c, self.repo, a, "y")
        put(self.c, self.repo, a, "z")
        b = push_image(self.c, self.repo, tag="keep")
        r = self.bdi([{"imageDigest": a.digest}])
        self.assertEqual(sorted([(a.digest, "x"), (a.digest, "y"), (a.digest, "z")]),
                         sorted(key(i) for i in r["imageIds"]))
        self.assertEqual([], r["failures"])
        self.assertEqual([(b.digest, "keep")], self.listing())
        # the tags are free again
        c = push_image(self.c, self.repo, tag="x")
        self.assertEqual(["x"], self.tags_of(c))

    def test_by_digest_untagged(self):
        a = push_image(self.c, self.repo)
        r = self.bdi([{"imageDigest": a.digest}])
        self.assertEqual([{"imageDigest": a.digest}], r["imageIds"])
        self.assertEqual([], self.listing())

    def test_digest_and_tag_matching_deletes_whole_image(self):
        a = push_image(self.c, self.repo, tag="p")
        put(self.c, self.repo, a, "q")
        r = self.bdi([{"imageDigest": a.digest, "imageTag": "p"}])
        self.assertEqual(sorted([(a.digest, "p"), (a.digest, "q")]),
                         sorted(key(i) for i in r["imageIds"]))
        self.assertEqual([], self.listing())

    def test_digest_and_tag_mismatch(self):
        a = push_image(self.c, self.repo, tag="a")
        b = push_image(self.c, self.repo, tag="b")
        ident = {"imageDigest": a.digest, "imageTag": "b"}
        r = self.bdi([ident])
        self.assertEqual([], r["imageIds"])
        self.assertEqual([{"imageId": ident, "failureCode": "ImageNotFound",
                           "failureReason": NOT_FOUND}], r["failures"])
        self.assertEqual(sorted([(a.digest, "a"), (b.digest, "b")]), self.listing())

    def test_missing_digest_and_tag(self):
        push_image(self.c, self.repo, tag="a")
        r = self.bdi([{}])
        self.assertEqual([], r["imageIds"])
        self.assertEqual([{"imageId": {}, "failureCode": "MissingDigestAndTag",
                           "failureReason": MISSING}], r["failures"])
        self.assertEqual(1, len(self.listing()))

    def test_invalid_digest(self):
        for bad in ("sha256:xyz", "justtext", "sha256:" + "a" * 63, ":abc"):
            with self.subTest(digest=bad):
                r = self.bdi([{"imageDigest": bad}])
                self.assertEqual([{"imageId": {"imageDigest": bad},
                                   "failureCode": "InvalidImageDigest",
                                   "failureReason": BAD_DIGEST}], r["failures"])

    def test_invalid_tag(self):
        a = push_image(self.c, self.repo, tag="a")
        for bad in ("a/b", "a:b", "sp ace", "x" * 301):
            with self.subTest(tag=bad[:20]):
                r = self.bdi([{"imageTag": bad}])
                self.assertEqual([], r["imageIds"])
                self.assertEqual(1, len(r["failures"]))
                f = r["failures"][0]
                self.assertEqual({"imageTag": bad}, f["imageId"])
                self.assertEqual("InvalidImageTag", f["failureCode"])
                self.assertTrue(f["failureReason"].startswith(
                    "Invalid request parameters: image tag"), f["failureReason"])
        self.assertEqual([(a.digest, "a")], self.listing())

    def test_unknown(self):
        push_image(self.c, self.repo, tag="a")
        ghost = digest_of(b"ghost")
        r = self.bdi([{"imageTag": "nope"}, {"imageDigest": ghost}])
        self.assertEqual([], r["imageIds"])
        self.assertEqual(sorted([
            ({"imageTag": "nope"}, "ImageNotFound", NOT_FOUND),
            ({"imageDigest": ghost}, "ImageNotFound", NOT_FOUND)], key=str),
            sorted(((f["imageId"], f["failureCode"], f["failureReason"])
                    for f in r["failures"]), key=str))
        self.assertEqual(1, len(self.listing()))

    def test_mixed_batch(self):
        a = push_image(self.c, self.repo, tag="a")
        b = push_image(self.c, self.repo, tag="b")
        c = push_image(self.c, self.repo)
        r = self.bdi([{"imageTag": "a"}, {"imageTag": "nope"}, {"imageDigest": c.digest}, {}])
        self.assertEqual(sorted([(a.digest, "a"), (c.digest, "")]),
                         sorted(key(i) for i in r["imageIds"]))
        self.assertEqual(sorted(["ImageNotFound", "MissingDigestAndTag"]),
                         sorted(f["failureCode"] for f in r["failures"]))
        self.assertEqual([(b.digest, "b")], self.listing())

    def test_same_image_twice_in_one_request(self):
        a = push_image(self.c, self.repo, tag="a")
        r = self.bdi([{"imageTag": "a"}, {"imageDigest": a.digest}])
        self.assertEqual([], self.listing())
        self.assertIn((a.digest, "a"), [key(i) for i in r["imageIds"]])
        # the second entry finds nothing left to delete (or is folded into the first)
        for f in r["failures"]:
            self.assertEqual("ImageNotFound", f["failureCode"])

    def test_child_of_index_is_protected(self):
        a = push_image(self.c, self.repo, kind="oci")
        b = push_image(self.c, self.repo, kind="oci", arch="arm64")
        idx = push_index(self.c, self.repo, [a, b], tag="multi")
        r = self.bdi([{"imageDigest": a.digest}])
        self.assertEqual([], r["imageIds"])
        self.assertEqual([{"imageId": {"imageDigest": a.digest},
                           "failureCode": "ImageReferencedByManifestList",
                           "failureReason": REFERENCED}], r["failures"])
        self.assertEqual(3, len(self.listing()))
        # delete the index (by its tag), then the children can go
        r = self.bdi([{"imageTag": "multi"}])
        self.assertEqual([{"imageDigest": idx.digest, "imageTag": "multi"}], r["imageIds"])
        r = self.bdi([{"imageDigest": a.digest}, {"imageDigest": b.digest}])
        self.assertEqual([], r["failures"])
        self.assertEqual([], self.listing())

    def test_child_of_docker_list_is_protected(self):
        a = push_image(self.c, self.repo, kind="docker")
        push_index(self.c, self.repo, [a], tag="list", kind="docker")
        r = self.bdi([{"imageDigest": a.digest}])
        self.assertEqual("ImageReferencedByManifestList", r["failures"][0]["failureCode"])

    def test_index_and_child_in_one_request(self):
        a = push_image(self.c, self.repo, kind="oci")
        idx = push_index(self.c, self.repo, [a], tag="multi")
        r = self.bdi([{"imageDigest": idx.digest}, {"imageDigest": a.digest}])
        # reference check uses the state at the start of the request
        self.assertEqual([{"imageDigest": idx.digest, "imageTag": "multi"}], r["imageIds"])
        self.assertEqual([{"imageId": {"imageDigest": a.digest},
                           "failureCode": "ImageReferencedByManifestList",
                           "failureReason": REFERENCED}], r["failures"])
        self.assertEqual([(a.digest, "")], self.listing())
        r = self.bdi([{"imageDigest": a.digest}])
        self.assertEqual([], r["failures"])
        self.assertEqual([], self.listing())

    def test_child_referenced_by_two_indexes(self):
        a = push_image(self.c, self.repo, kind="oci")
        i1 = push_index(self.c, self.repo, [a], tag="i1")
        b = push_image(self.c, self.repo, kind="oci", arch="arm64")
        push_index(self.c, self.repo, [a, b], tag="i2")
        self.bdi([{"imageDigest": i1.digest}])
        r = self.bdi([{"imageDigest": a.digest}])
        self.assertEqual("ImageReferencedByManifestList", r["failures"][0]["failureCode"])

    def test_too_many_ids(self):
        a = push_image(self.c, self.repo, tag="t0")
        ids = [{"imageTag": "t%d" % i} for i in range(101)]
        self.assertClientError("InvalidParameterException", self.bdi, ids,
                               msg_contains="imageIds")
        self.assertEqual([(a.digest, "t0")], self.listing(), "nothing may be deleted")

    def test_thousands_of_tags_raw(self):
        a = push_image(self.c, self.repo, tag="t0")
        body = {"repositoryName": self.repo,
                "imageIds": [{"imageTag": "t%d" % i} for i in range(5000)]}
        r = B.raw("BatchDeleteImage", body)
        self.assertRawError(r, "InvalidParameterException", msg_contains="imageIds")
        self.assertEqual([(a.digest, "t0")], self.listing())
        self.assertTrue(B.healthy())

    def test_exactly_100(self):
        a = push_image(self.c, self.repo, tag="t0")
        ids = [{"imageTag": "t%d" % i} for i in range(100)]
        r = self.bdi(ids)
        self.assertEqual([{"imageDigest": a.digest, "imageTag": "t0"}], r["imageIds"])
        self.assertEqual(99, len(r["failures"]))

    def test_missing_repository(self):
        name = uniq("absent")
        self.assertClientError(
            "RepositoryNotFoundException", self.bdi, [{"imageTag": "x"}], repo=name,
            msg="The repository with name '%s' does not exist in the registry with id '%s'"
                % (name, ACCOUNT))

    def test_repository_deletable_once_empty(self):
        a = push_image(self.c, self.repo, tag="a")
        self.assertClientError("RepositoryNotEmptyException", self.c.delete_repository,
                               repositoryName=self.repo)
        self.bdi([{"imageDigest": a.digest}])
        self.c.delete_repository(repositoryName=self.repo)

    def test_image_can_be_pushed_again_after_delete(self):
        a = push_image(self.c, self.repo, tag="a")
        self.bdi([{"imageTag": "a"}])
        # the blobs may or may not have been garbage-collected; re-upload to be safe
        b = make_image(self.c, self.repo)
        put(self.c, self.repo, b, "a")
        self.assertEqual([(b.digest, "a")], self.listing())
        self.assertNotEqual(a.digest, b.digest)
