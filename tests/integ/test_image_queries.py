"""ListImages, DescribeImages, BatchGetImage (spec 3.2, 4.1, 4.3, 4.4, 4.13)."""

import datetime
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from berthctl import (ACCOUNT, DOCKER_CONFIG, DOCKER_MANIFEST, OCI_CONFIG,  # noqa: E402
                      OCI_INDEX, OCI_MANIFEST, module_server, BerthCase, digest_of, make_image,
                      push_image, push_index, put, uniq)

B = None
REPO = None
IMG = {}   # name -> Img
T0 = None


def setUpModule():
    """One repository with a fixed set of images, pushed in this order:
    A (docker, tags v1 then latest), Bi (oci, tag b1), C (docker, untagged),
    plus a second repository with an index over two children."""
    global B, REPO, T0
    B = module_server(name="queries")
    c = B.client()
    T0 = time.time()
    REPO = uniq("query")
    c.create_repository(repositoryName=REPO)
    IMG["A"] = push_image(c, REPO, tag="v1", kind="docker", nlayers=3, layer_size=4000)
    put(c, REPO, IMG["A"], "latest")
    IMG["B"] = push_image(c, REPO, tag="b1", kind="oci", nlayers=2, layer_size=9000)
    IMG["C"] = push_image(c, REPO, kind="docker", nlayers=1, layer_size=100)



def image_not_found(digest, tag, repo):
    return ("The image with imageId {imageDigest:'%s', imageTag:'%s'} does not exist within the "
            "repository with name '%s' in the registry with id '%s'"
            % (digest or "null", tag or "null", repo, ACCOUNT))


class DescribeImages(BerthCase):
    def setUp(self):
        self.c = B.client()

    def all_details(self, **kw):
        return {d["imageDigest"]: d for d in
                self.c.describe_images(repositoryName=REPO, **kw)["imageDetails"]}

    def test_all(self):
        got = self.all_details()
        self.assertEqual({IMG[k].digest for k in "ABC"}, set(got))
        a, b, c = (got[IMG[k].digest] for k in "ABC")
        for d in (a, b, c):
            self.assertEqual(ACCOUNT, d["registryId"])
            self.assertEqual(REPO, d["repositoryName"])
            self.assertIsInstance(d["imagePushedAt"], datetime.datetime)
            self.assertGreaterEqual(d["imagePushedAt"].timestamp(), T0 - 5)
            self.assertLessEqual(d["imagePushedAt"].timestamp(), time.time() + 5)
        self.assertEqual(["v1", "latest"], a["imageTags"])
        self.assertEqual(["b1"], b["imageTags"])
        self.assertNotIn("imageTags", c)
        self.assertEqual(DOCKER_MANIFEST, a["imageManifestMediaType"])
        self.assertEqual(OCI_MANIFEST, b["imageManifestMediaType"])
        self.assertEqual(DOCKER_CONFIG, a.get("artifactMediaType"))
        self.assertEqual(OCI_CONFIG, b.get("artifactMediaType"))

    def test_image_size(self):
        got = self.all_details()
        for k in "ABC":
            img = IMG[k]
            want = img.config[0]["size"] + sum(d["size"] for d, _ in img.layers)
            self.assertEqual(want, img.size)
            self.assertEqual(want, got[img.digest]["imageSizeInBytes"], k)

    def test_by_ids(self):
        r = self.c.describe_images(repositoryName=REPO, imageIds=[{"imageTag": "latest"}])
        self.assertEqual([IMG["A"].digest], [d["imageDigest"] for d in r["imageDetails"]])
        self.assertEqual(["v1", "latest"], r["imageDetails"][0]["imageTags"])
        r = self.c.describe_images(repositoryName=REPO,
                                   imageIds=[{"imageDigest": IMG["C"].digest},
                                             {"imageTag": "b1",
                                              "imageDigest": IMG["B"].digest}])
        self.assertEqual({IMG["C"].digest, IMG["B"].digest},
                         {d["imageDigest"] for d in r["imageDetails"]})
        self.assertNotIn("nextToken", r)

    def test_duplicates_collapse(self):
        r = self.c.describe_images(repositoryName=REPO, imageIds=[
            {"imageTag": "v1"}, {"imageTag": "latest"}, {"imageDigest": IMG["A"].digest}])
        self.assertEqual(1, len(r["imageDetails"]))

    def test_not_found(self):
        self.assertClientError("ImageNotFoundException", self.c.describe_images,
                               repositoryName=REPO, imageIds=[{"imageTag": "nope"}],
                               msg=image_not_found(None, "nope", REPO))
        d = digest_of(b"not an image")
        self.assertClientError("ImageNotFoundException", self.c.describe_images,
                               repositoryName=REPO,
                               imageIds=[{"imageTag": "v1"}, {"imageDigest": d}],
                               msg=image_not_found(d, None, REPO))
        # tag and digest of different images
        self.assertClientError("ImageNotFoundException", self.c.describe_images,
                               repositoryName=REPO,
                               imageIds=[{"imageTag": "v1", "imageDigest": IMG["B"].digest}],
                               msg=image_not_found(IMG["B"].digest, "v1", REPO))

    def test_filter(self):
        self.assertEqual({IMG["A"].digest, IMG["B"].digest},
                         set(self.all_details(filter={"tagStatus": "TAGGED"})))
        self.assertEqual({IMG["C"].digest}, set(self.all_details(filter={"tagStatus": "UNTAGGED"})))
        self.assertEqual({IMG[k].digest for k in "ABC"},
                         set(self.all_details(filter={"tagStatus": "ANY"})))
        self.assertClientError("InvalidParameterException", self.c.describe_images,
                               repositoryName=REPO, filter={"tagStatus": "SOMETIMES"})

    def test_pagination(self):
        r1 = self.c.describe_images(repositoryName=REPO, maxResults=2)
        self.assertEqual(2, len(r1["imageDetails"]))
        r2 = self.c.describe_images(repositoryName=REPO, maxResults=2, nextToken=r1["nextToken"])
        self.assertEqual(1, len(r2["imageDetails"]))
        self.assertNotIn("nextToken", r2)
        seen = [d["imageDigest"] for d in r1["imageDetails"] + r2["imageDetails"]]
        self.assertEqual(sorted(IMG[k].digest for k in "ABC"), sorted(seen))
        p = self.c.get_paginator("describe_images")
        pages = list(p.paginate(repositoryName=REPO, PaginationConfig={"PageSize": 1}))
        self.assertEqual(3, len(pages))
        paged = [d["imageDigest"] for pg in pages for d in pg["imageDetails"]]
        self.assertEqual(seen, paged, "page order must be stable")
        # pagination combined with the tag filter
        r = self.c.describe_images(repositoryName=REPO, maxResults=1,
                                   filter={"tagStatus": "TAGGED"})
        r = self.c.describe_images(repositoryName=REPO, maxResults=1, nextToken=r["nextToken"],
                                   filter={"tagStatus": "TAGGED"})
        self.assertNotIn("nextToken", r)

    def test_ids_with_pagination_rejected(self):
        self.assertClientError("InvalidParameterException", self.c.describe_images,
                               repositoryName=REPO, imageIds=[{"imageTag": "v1"}], maxResults=5)
        tok = self.c.describe_images(repositoryName=REPO, maxResults=1)["nextToken"]
        self.assertClientError("InvalidParameterException", self.c.describe_images,
                               repositoryName=REPO, imageIds=[{"imageTag": "v1"}], nextToken=tok)

    def test_bad_token_and_limits(self):
        self.assertClientError("InvalidParameterException", self.c.describe_images,
                               repositoryName=REPO, nextToken="garbage!!")
        self.assertClientError("InvalidParameterException", self.c.describe_images,
                               repositoryName=REPO, maxResults=1001)
        self.assertClientError("InvalidParameterException", self.c.describe_images,
                               repositoryName=REPO,
                               imageIds=[{"imageTag": "t%d" % i} for i in range(101)],
                               msg_contains="imageIds")

    def test_empty_and_missing_repository(self):
        name = uniq("empty")
        self.c.create_repository(repositoryName=name)
        self.assertEqual([], self.c.describe_images(repositoryName=name)["imageDetails"])
        self.assertClientError(
            "RepositoryNotFoundException", self.c.describe_images, repositoryName=uniq("absent"))


class IndexSizes(BerthCase):
    def test_index_size_is_max_of_children(self):
        c = B.client()
        repo = uniq("idx")
        c.create_repository(repositoryName=repo)
        small = push_image(c, repo, kind="oci", nlayers=1, layer_size=100, arch="amd64")
        big = push_image(c, repo, kind="oci", nlayers=2, layer_size=5000, arch="arm64")
        idx = push_index(c, repo, [small, big], tag="multi")
        lst = push_index(c, repo, [big, small], tag="dlist", kind="docker")
        got = {d["imageDigest"]: d for d in c.describe_images(repositoryName=repo)["imageDetails"]}
        self.assertEqual(4, len(got))
        self.assertEqual(big.size, got[idx.digest]["imageSizeInBytes"])
        self.assertEqual(big.size, got[lst.digest]["imageSizeInBytes"])
        self.assertEqual(small.size, got[small.digest]["imageSizeInBytes"])
        self.assertEqual(OCI_INDEX, got[idx.digest]["imageManifestMediaType"])
        self.assertEqual(["multi"], got[idx.digest]["imageTags"])
        self.assertNotIn("imageTags", got[small.digest])
        # children are untagged images: the UNTAGGED filter returns them
        untagged = c.describe_images(repositoryName=repo, filter={"tagStatus": "UNTAGGED"})
        self.assertEqual({small.digest, big.digest},
                         {d["imageDigest"] for d in untagged["imageDetails"]})


class ListImages(BerthCase):
    def setUp(self):
        self.c = B.client()

    def test_all_in_order(self):
        r = self.c.list_images(repositoryName=REPO)
        self.assertEqual([
            {"imageDigest": IMG["A"].digest, "imageTag": "v1"},
            {"imageDigest": IMG["A"].digest, "imageTag": "latest"},
            {"imageDigest": IMG["B"].digest, "imageTag": "b1"},
            {"imageDigest": IMG["C"].digest},
        ], r["imageIds"])
        self.assertNotIn("nextToken", r)

    def test_filter(self):
        r = self.c.list_images(repositoryName=REPO, filter={"tagStatus": "TAGGED"})
        self.assertEqual(3, len(r["imageIds"]))
        self.assertTrue(all("imageTag" in i for i in r["imageIds"]))
        r = self.c.list_images(repositoryName=REPO, filter={"tagStatus": "UNTAGGED"})
        self.assertEqual([{"imageDigest": IMG["C"].digest}], r["imageIds"])
        r = self.c.list_images(repositoryName=REPO, filter={"tagStatus": "ANY"})
        self.assertEqual(4, len(r["imageIds"]))

    def test_image_status_filter(self):
        all4 = self.c.list_images(repositoryName=REPO)["imageIds"]
        for st, want in (("ACTIVE", all4), ("ANY", all4), ("ARCHIVED", []), ("ACTIVATING", [])):
            with self.subTest(imageStatus=st):
                r = self.c.list_images(repositoryName=REPO, filter={"imageStatus": st})
                self.assertEqual(want, r["imageIds"])
                r = self.c.describe_images(repositoryName=REPO, filter={"imageStatus": st})
                self.assertEqual(len({i["imageDigest"] for i in want}), len(r["imageDetails"]))
        for op in (self.c.list_images, self.c.describe_images):
            self.assertClientError("InvalidParameterException", op, repositoryName=REPO,
                                   filter={"imageStatus": "DELETED"}, msg_contains="imageStatus")

    def test_pagination(self):
        full = self.c.list_images(repositoryName=REPO)["imageIds"]
        r1 = self.c.list_images(repositoryName=REPO, maxResults=3)
        self.assertEqual(full[:3], r1["imageIds"])
        r2 = self.c.list_images(repositoryName=REPO, maxResults=3, nextToken=r1["nextToken"])
        self.assertEqual(full[3:], r2["imageIds"])
        self.assertNotIn("nextToken", r2)
        p = self.c.get_paginator("list_images")
        pages = list(p.paginate(repositoryName=REPO, PaginationConfig={"PageSize": 1}))
        self.assertEqual(4, len(pages))
        self.assertEqual(full, [i for pg in pages for i in pg["imageIds"]])

    def test_default_page_size(self):
        repo = uniq("manytags")
        self.c.create_repository(repositoryName=repo)
        img = push_image(self.c, repo, tag="t000")
        for i in range(1, 130):
            put(self.c, repo, img, "t%03d" % i)
        r = self.c.list_images(repositoryName=repo)
        self.assertEqual(100, len(r["imageIds"]))
        self.assertIn("nextToken", r)
        r2 = self.c.list_images(repositoryName=repo, nextToken=r["nextToken"])
        self.assertEqual(30, len(r2["imageIds"]))
        tags = [i["imageTag"] for i in r["imageIds"] + r2["imageIds"]]
        self.assertEqual(["t%03d" % i for i in range(130)], tags)
        d = self.c.describe_images(repositoryName=repo)["imageDetails"]
        self.assertEqual(1, len(d))
        self.assertEqual(130, len(d[0]["imageTags"]))

    def test_errors(self):
        self.assertClientError("RepositoryNotFoundException", self.c.list_images,
                               repositoryName=uniq("absent"))
        for rid in ("222", "999999999999"):
            with self.subTest(registryId=rid):
                self.assertClientError(
                    "RepositoryNotFoundException", self.c.list_images, repositoryName=REPO,
                    registryId=rid,
                    msg="The repository with name '%s' does not exist in the registry with id "
                        "'%s'" % (REPO, rid))
        self.assertClientError("InvalidParameterException", self.c.list_images,
                               repositoryName=REPO, nextToken="garbage!!")
        self.assertClientError("InvalidParameterException", self.c.list_images,
                               repositoryName=REPO, maxResults=1001)
        self.assertClientError("InvalidParameterException", self.c.list_images,
                               repositoryName=REPO, filter={"tagStatus": "SOMETIMES"})

    def test_empty(self):
        name = uniq("empty")
        self.c.create_repository(repositoryName=name)
        r = self.c.list_images(repositoryName=name)
        self.assertEqual([], r["imageIds"])


MISSING = "Invalid request parameters: both tag and digest cannot be null"
BAD_DIGEST = ("Invalid request parameters: image digest should satisfy the regex "
              "'[a-zA-Z0-9-_+.]+:[a-fA-F0-9]+'")


class BatchGetImage(BerthCase):
    def setUp(self):
        self.c = B.client()

    def bgi(self, ids, **kw):
        return self.c.batch_get_image(repositoryName=REPO, imageIds=ids, **kw)

    def test_by_tag(self):
        r = self.bgi([{"imageTag": "latest"}])
        self.assertEqual([], r["failures"])
        img = r["images"][0]
        self.assertEqual(ACCOUNT, img["registryId"])
        self.assertEqual(REPO, img["repositoryName"])
        self.assertEqual({"imageDigest": IMG["A"].digest, "imageTag": "latest"}, img["imageId"])
        self.assertEqual(IMG["A"].manifest, img["imageManifest"])
        self.assertEqual(DOCKER_MANIFEST, img["imageManifestMediaType"])

    def test_by_digest(self):
        r = self.bgi([{"imageDigest": IMG["B"].digest}])
        self.assertEqual([], r["failures"])
        img = r["images"][0]
        self.assertEqual(IMG["B"].digest, img["imageId"]["imageDigest"])
        self.assertEqual(IMG["B"].manifest, img["imageManifest"])
        self.assertEqual(OCI_MANIFEST, img["imageManifestMediaType"])
        # untagged image by digest
        r = self.bgi([{"imageDigest": IMG["C"].digest}])
        self.assertEqual(IMG["C"].manifest, r["images"][0]["imageManifest"])

    def test_by_tag_and_digest(self):
        r = self.bgi([{"imageTag": "b1", "imageDigest": IMG["B"].digest}])
        self.assertEqual([], r["failures"])
        self.assertEqual(IMG["B"].manifest, r["images"][0]["imageManifest"])
        # mismatch: never returns an image
        ident = {"imageTag": "b1", "imageDigest": IMG["A"].digest}
        r = self.bgi([ident])
        self.assertEqual([], r["images"])
        self.assertEqual(1, len(r["failures"]))
        self.assertIn(r["failures"][0]["failureCode"],
                      ("ImageNotFound", "ImageTagDoesNotMatchDigest"))
        self.assertEqual(ident, r["failures"][0]["imageId"])

    def test_failures(self):
        ghost = digest_of(b"ghost")
        r = self.bgi([{"imageTag": "nope"}, {}, {"imageDigest": "sha256:xyz"},
                      {"imageDigest": ghost}, {"imageTag": "v1"}])
        self.assertEqual(1, len(r["images"]))
        self.assertEqual(IMG["A"].digest, r["images"][0]["imageId"]["imageDigest"])
        f = r["failures"]
        self.assertEqual(4, len(f), f)
        by_code = {}
        for x in f:
            by_code.setdefault(x["failureCode"], []).append(x)
        nf = sorted(by_code["ImageNotFound"], key=lambda x: str(x["imageId"]))
        self.assertEqual([{"imageId": {"imageDigest": ghost},
                           "failureCode": "ImageNotFound",
                           "failureReason": "Requested image not found"},
                          {"imageId": {"imageTag": "nope"},
                           "failureCode": "ImageNotFound",
                           "failureReason": "Requested image not found"}], nf)
        self.assertEqual([{"imageId": {}, "failureCode": "MissingDigestAndTag",
                           "failureReason": MISSING}], by_code["MissingDigestAndTag"])
        self.assertEqual([{"imageId": {"imageDigest": "sha256:xyz"},
                           "failureCode": "InvalidImageDigest",
                           "failureReason": BAD_DIGEST}], by_code["InvalidImageDigest"])

    def test_invalid_tag(self):
        r = self.bgi([{"imageTag": "a/b"}, {"imageTag": "x" * 301}, {"imageTag": "v1"}])
        self.assertEqual(1, len(r["images"]))
        self.assertEqual(["InvalidImageTag", "InvalidImageTag"],
                         [f["failureCode"] for f in r["failures"]])
        self.assertEqual([{"imageTag": "a/b"}, {"imageTag": "x" * 301}],
                         [f["imageId"] for f in r["failures"]])

    def test_always_both_arrays(self):
        r = self.bgi([{"imageTag": "v1"}])
        self.assertEqual([], r["failures"])
        r = self.bgi([{"imageTag": "missing"}])
        self.assertEqual([], r["images"])

    def test_accepted_media_types(self):
        r = self.bgi([{"imageTag": "v1"}], acceptedMediaTypes=[DOCKER_MANIFEST])
        self.assertEqual(IMG["A"].manifest, r["images"][0]["imageManifest"])
        r = self.bgi([{"imageTag": "v1"}, {"imageTag": "b1"}],
                     acceptedMediaTypes=[OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST])
        self.assertEqual(2, len(r["images"]))
        self.assertEqual([], r["failures"])
        # stored type not accepted: a failure, never a converted manifest
        r = self.bgi([{"imageTag": "b1"}, {"imageTag": "v1"}], acceptedMediaTypes=[OCI_MANIFEST])
        self.assertEqual([IMG["B"].digest], [i["imageId"]["imageDigest"] for i in r["images"]])
        self.assertEqual(IMG["B"].manifest, r["images"][0]["imageManifest"])
        self.assertEqual(1, len(r["failures"]))
        self.assertEqual({"imageTag": "v1"}, r["failures"][0]["imageId"])
        self.assertEqual("ImageNotFound", r["failures"][0]["failureCode"])

    def test_limits_and_missing_repository(self):
        self.assertClientError("InvalidParameterException", self.bgi,
                               [{"imageTag": "t%d" % i} for i in range(101)],
                               msg_contains="imageIds")
        r = self.bgi([{"imageTag": "t%d" % i} for i in range(99)] + [{"imageTag": "v1"}])
        self.assertEqual(1, len(r["images"]))
        self.assertEqual(99, len(r["failures"]))
        self.assertClientError("RepositoryNotFoundException", self.c.batch_get_image,
                               repositoryName=uniq("absent"), imageIds=[{"imageTag": "v1"}])

    def test_index(self):
        repo = uniq("bgi-idx")
        self.c.create_repository(repositoryName=repo)
        a = push_image(self.c, repo, kind="oci")
        idx = push_index(self.c, repo, [a], tag="multi")
        r = self.c.batch_get_image(repositoryName=repo, imageIds=[{"imageTag": "multi"}],
                                   acceptedMediaTypes=[OCI_INDEX, OCI_MANIFEST])
        self.assertEqual(idx.manifest, r["images"][0]["imageManifest"])
        self.assertEqual(OCI_INDEX, r["images"][0]["imageManifestMediaType"])

    def test_after_repush_and_retag(self):
        repo = uniq("bgi-retag")
        self.c.create_repository(repositoryName=repo)
        a = push_image(self.c, repo, tag="t")
        b = make_image(self.c, repo)
        put(self.c, repo, b, "t")
        r = self.c.batch_get_image(repositoryName=repo, imageIds=[{"imageTag": "t"}])
        self.assertEqual(b.manifest, r["images"][0]["imageManifest"])
        r = self.c.batch_get_image(repositoryName=repo, imageIds=[{"imageDigest": a.digest}])
        self.assertEqual(a.manifest, r["images"][0]["imageManifest"])


class PullTime(BerthCase):
    """BatchGetImage records lastRecordedPullTime; DescribeImages shows it only after a pull
    (spec 3.2 BatchGetImage/DescribeImages, 5)."""

    def test_last_recorded_pull_time(self):
        c = B.client()
        repo = uniq("pull")
        c.create_repository(repositoryName=repo)
        a = push_image(c, repo, tag="a")
        b = push_image(c, repo, tag="b")

        def details():
            return {d["imageDigest"]: d for d in
                    c.describe_images(repositoryName=repo)["imageDetails"]}

        d = details()
        self.assertNotIn("lastRecordedPullTime", d[a.digest])
        self.assertNotIn("lastRecordedPullTime", d[b.digest])
        c.batch_get_image(repositoryName=repo, imageIds=[{"imageTag": "a"}])
        d = details()
        self.assertIn("lastRecordedPullTime", d[a.digest])
        self.assertRecent(d[a.digest]["lastRecordedPullTime"])
        self.assertNotIn("lastRecordedPullTime", d[b.digest], "only the pulled image")
        first = d[a.digest]["lastRecordedPullTime"]
        time.sleep(1.1)
        c.batch_get_image(repositoryName=repo, imageIds=[{"imageDigest": b.digest},
                                                         {"imageTag": "a"}])
        d = details()
        self.assertRecent(d[b.digest]["lastRecordedPullTime"])
        self.assertGreater(d[a.digest]["lastRecordedPullTime"], first)
        # a failed lookup records nothing and does not disturb the others
        c.batch_get_image(repositoryName=repo, imageIds=[{"imageTag": "nope"}])
        self.assertEqual(set(d), set(details()))
