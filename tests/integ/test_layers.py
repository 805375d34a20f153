"""Layer API: InitiateLayerUpload, UploadLayerPart, CompleteLayerUpload,
BatchCheckLayerAvailability, GetDownloadUrlForLayer (spec 3.3, 4.15)."""

import os
import re
import sys
import urllib.parse
import uuid

import requests

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from berthctl import (ACCOUNT, DOCKER_CONFIG, DOCKER_LAYER, DOCKER_MANIFEST, MIB,  # noqa: E402
                      module_server, BerthCase, Img, blob_path, desc, digest_of, docker_manifest,
                      make_image, push_image, put, rand_bytes, uniq, upload_blob)

B = None
UUID_RE = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"


def setUpModule():
    global B
    B = module_server(name="layers")



class Uploads(BerthCase):
    def setUp(self):
        self.c = B.client()
        self.repo = uniq("layers")
        self.c.create_repository(repositoryName=self.repo)

    def initiate(self, repo=None):
        r = self.c.initiate_layer_upload(repositoryName=repo or self.repo)
        return r["uploadId"]

    def part(self, uid, first, data, repo=None, last=None):
        return self.c.upload_layer_part(
            repositoryName=repo or self.repo, uploadId=uid, partFirstByte=first,
            partLastByte=(first + len(data) - 1) if last is None else last, layerPartBlob=data)

    def complete(self, uid, digests, repo=None):
        return self.c.complete_layer_upload(repositoryName=repo or self.repo, uploadId=uid,
                                            layerDigests=digests)

    def test_initiate(self):
        r = self.c.initiate_layer_upload(repositoryName=self.repo)
        self.assertRegex(r["uploadId"], UUID_RE)
        self.assertEqual(10485760, r["partSize"])
        self.assertNotEqual(r["uploadId"], self.initiate())

    def test_three_parts(self):
        data = rand_bytes(5 * MIB) + rand_bytes(5 * MIB) + rand_bytes(1024)
        uid = self.initiate()
        r = self.part(uid, 0, data[:5 * MIB])
        self.assertEqual({"registryId": ACCOUNT, "repositoryName": self.repo, "uploadId": uid,
                          "lastByteReceived": 5 * MIB - 1},
                         {k: r[k] for k in ("registryId", "repositoryName", "uploadId",
                                            "lastByteReceived")})
        r = self.part(uid, 5 * MIB, data[5 * MIB:10 * MIB])
        self.assertEqual(10 * MIB - 1, r["lastByteReceived"])
        r = self.part(uid, 10 * MIB, data[10 * MIB:])
        self.assertEqual(len(data) - 1, r["lastByteReceived"])
        d = digest_of(data)
        r = self.complete(uid, [d])
        self.assertEqual({"registryId": ACCOUNT, "repositoryName": self.repo, "uploadId": uid,
                          "layerDigest": d},
                         {k: r[k] for k in ("registryId", "repositoryName", "uploadId",
                                            "layerDigest")})
        with open(blob_path(B.data_dir, d), "rb") as f:
            self.assertEqual(data, f.read(), "blob file content")
        lay = self.c.batch_check_layer_availability(repositoryName=self.repo,
                                                    layerDigests=[d])["layers"][0]
        self.assertEqual("AVAILABLE", lay["layerAvailability"])
        self.assertEqual(len(data), lay["layerSize"])
        # the session is closed
        self.assertClientError("UploadNotFoundException", self.part, uid, len(data), b"x")
        self.assertClientError("UploadNotFoundException", self.complete, uid, [d])

    def test_single_small_part(self):
        data = b"hello berth\n"
        d = upload_blob(self.c, self.repo, data)
        with open(blob_path(B.data_dir, d), "rb") as f:
            self.assertEqual(data, f.read())

    def test_one_byte_parts_as_final(self):
        # a single one-byte part is a final part: allowed
        uid = self.initiate()
        self.part(uid, 0, b"Z")
        self.assertEqual(digest_of(b"Z"), self.complete(uid, [digest_of(b"Z")])["layerDigest"])

    def test_digest_among_several(self):
        data = rand_bytes(300)
        uid = self.initiate()
        self.part(uid, 0, data)
        other = digest_of(b"other")
        r = self.complete(uid, [other, digest_of(data)])
        self.assertEqual(digest_of(data), r["layerDigest"])

    def test_part_too_small(self):
        uid = self.initiate()
        self.part(uid, 0, rand_bytes(1024))
        data2 = rand_bytes(1024)
        self.part(uid, 1024, data2)
        self.assertClientError("LayerPartTooSmallException", self.complete, uid,
                               [digest_of(b"whatever")])

    def test_part_just_under_5mib(self):
        data = rand_bytes(5 * MIB - 1) + b"end"
        uid = self.initiate()
        self.part(uid, 0, data[:5 * MIB - 1])
        self.part(uid, 5 * MIB - 1, data[5 * MIB - 1:])
        self.assertClientError("LayerPartTooSmallException", self.complete, uid,
                               [digest_of(data)])
        self.assertEqual("UNAVAILABLE", self.c.batch_check_layer_availability(
            repositoryName=self.repo, layerDigests=[digest_of(data)])["layers"][0][
            "layerAvailability"])

    def test_gap(self):
        first = rand_bytes(5 * MIB)
        uid = self.initiate()
        self.part(uid, 0, first)
        e = self.assertClientError("InvalidLayerPartException", self.part, uid, 5 * MIB + 10,
                                   b"abcdefghij")
        self.assertEqual(5 * MIB - 1, e.response.get("lastValidByteReceived"), e.response)
        self.assertEqual(uid, e.response.get("uploadId"))
        self.assertEqual(self.repo, e.response.get("repositoryName"))
        self.assertEqual(ACCOUNT, e.response.get("registryId"))
        # the session is still usable
        self.part(uid, 5 * MIB, b"abcdefghij")
        d = digest_of(first + b"abcdefghij")
        self.assertEqual(d, self.complete(uid, [d])["layerDigest"])

    def test_overlap(self):
        uid = self.initiate()
        self.part(uid, 0, b"0123456789")
        e = self.assertClientError("InvalidLayerPartException", self.part, uid, 5, b"56789abcde")
        self.assertEqual(9, e.response.get("lastValidByteReceived"))
        # a repeat of the same part is an overlap too
        self.assertClientError("InvalidLayerPartException", self.part, uid, 0, b"0123456789")

    def test_first_part_not_at_zero(self):
        uid = self.initiate()
        self.assertClientError("InvalidLayerPartException", self.part, uid, 1, b"abc")

    def test_length_mismatch(self):
        uid = self.initiate()
        self.assertClientError("InvalidLayerPartException", self.part, uid, 0, b"abcdef", last=9)
        self.assertClientError("InvalidLayerPartException", self.part, uid, 0, b"abcdef", last=2)
        # last < first
        self.assertClientError(("InvalidLayerPartException", "InvalidParameterException"),
                               self.part, uid, 5, b"", last=4)
        # still at -1: a correct first part works
        self.part(uid, 0, b"abcdef")

    def test_digest_mismatch_discards_upload(self):
        uid = self.initiate()
        self.part(uid, 0, b"some bytes")
        self.assertClientError("InvalidLayerException", self.complete, uid,
                               [digest_of(b"other bytes")])
        self.assertClientError("UploadNotFoundException", self.complete, uid,
                               [digest_of(b"some bytes")])
        self.assertEqual("UNAVAILABLE", self.c.batch_check_layer_availability(
            repositoryName=self.repo, layerDigests=[digest_of(b"some bytes")])["layers"][0][
            "layerAvailability"])

    def test_already_exists(self):
        data = rand_bytes(2048)
        upload_blob(self.c, self.repo, data)
        uid = self.initiate()
        self.part(uid, 0, data)
        self.assertClientError("LayerAlreadyExistsException", self.complete, uid,
                               [digest_of(data)])
        # session is closed afterwards
        self.assertClientError("UploadNotFoundException", self.complete, uid, [digest_of(data)])

    def test_same_blob_other_repo_is_new(self):
        data = rand_bytes(2048)
        upload_blob(self.c, self.repo, data)
        other = uniq("other")
        self.c.create_repository(repositoryName=other)
        self.assertEqual(digest_of(data), upload_blob(self.c, other, data))

    def test_unknown_upload(self):
        uid = str(uuid.uuid4())
        self.assertClientError("UploadNotFoundException", self.part, uid, 0, b"abc")
        self.assertClientError("UploadNotFoundException", self.complete, uid, [digest_of(b"abc")])

    def test_upload_of_other_repo(self):
        other = uniq("other")
        self.c.create_repository(repositoryName=other)
        uid = self.initiate(repo=other)
        self.assertClientError("UploadNotFoundException", self.part, uid, 0, b"abc")
        self.part(uid, 0, b"abc", repo=other)
        self.assertClientError("UploadNotFoundException", self.complete, uid, [digest_of(b"abc")])
        self.complete(uid, [digest_of(b"abc")], repo=other)

    def test_empty_upload(self):
        uid = self.initiate()
        self.assertClientError("EmptyUploadException", self.complete, uid,
                               [digest_of(b"")])

    def test_missing_repository(self):
        name = uniq("absent")
        msg = ("The repository with name '%s' does not exist in the registry with id '%s'"
               % (name, ACCOUNT))
        self.assertClientError("RepositoryNotFoundException", self.c.initiate_layer_upload,
                               repositoryName=name, msg=msg)
        uid = self.initiate()
        self.assertClientError("RepositoryNotFoundException", self.part, uid, 0, b"x", repo=name)
        self.assertClientError("RepositoryNotFoundException", self.complete, uid,
                               [digest_of(b"x")], repo=name)

    def test_invalid_layer_digest_pattern(self):
        uid = self.initiate()
        self.part(uid, 0, b"x")
        self.assertClientError("InvalidParameterException", self.complete, uid, ["not-a-digest"])

    def test_part_count_limit(self):
        """More than 4,200 parts -> LimitExceededException (raw requests on one connection)."""
        import requests as rq
        uid = self.initiate()
        sess = rq.Session()
        try:
            for i in range(4200):
                r = B.raw("UploadLayerPart", {
                    "repositoryName": self.repo, "uploadId": uid, "partFirstByte": i,
                    "partLastByte": i, "layerPartBlob": "QQ=="}, sign=False, session=sess)
                if r.status_code != 200:
                    self.fail("part %d: %s %s" % (i, r.status_code, r.text))
            r = B.raw("UploadLayerPart", {
                "repositoryName": self.repo, "uploadId": uid, "partFirstByte": 4200,
                "partLastByte": 4200, "layerPartBlob": "QQ=="}, sign=False, session=sess)
            self.assertRawError(r, "LimitExceededException")
        finally:
            sess.close()

    def test_other_registry_id(self):
        self.assertClientError(
            "RepositoryNotFoundException", self.c.initiate_layer_upload,
            repositoryName=self.repo, registryId="999999999999",
            msg="The repository with name '%s' does not exist in the registry with id "
                "'999999999999'" % self.repo)
        self.assertClientError("RepositoryNotFoundException", self.c.get_download_url_for_layer,
                               repositoryName=self.repo, registryId="999999999999",
                               layerDigest=digest_of(b"x"))
        self.assertClientError("RepositoryNotFoundException",
                               self.c.batch_check_layer_availability, repositoryName=self.repo,
                               registryId="999999999999", layerDigests=[digest_of(b"x")])

    def test_upload_deleted_with_repository(self):
        uid = self.initiate()
        self.part(uid, 0, b"abc")
        self.c.delete_repository(repositoryName=self.repo)
        self.c.create_repository(repositoryName=self.repo)
        self.assertClientError("UploadNotFoundException", self.complete, uid, [digest_of(b"abc")])


class Availability(BerthCase):
    def setUp(self):
        self.c = B.client()
        self.repo = uniq("avail")
        self.c.create_repository(repositoryName=self.repo)

    def test_mixed(self):
        data = rand_bytes(777)
        d = upload_blob(self.c, self.repo, data)
        unknown = digest_of(b"never uploaded")
        r = self.c.batch_check_layer_availability(
            repositoryName=self.repo, layerDigests=[d, unknown, "", "garbage"])
        layers = {l["layerDigest"]: l for l in r["layers"]}
        self.assertEqual("AVAILABLE", layers[d]["layerAvailability"])
        self.assertEqual(777, layers[d]["layerSize"])
        self.assertEqual("UNAVAILABLE", layers[unknown]["layerAvailability"])
        self.assertEqual(2, len(r["layers"]))
        fails = {f["layerDigest"]: f for f in r["failures"]}
        self.assertEqual("MissingLayerDigest", fails[""]["failureCode"])
        self.assertEqual("InvalidLayerDigest", fails["garbage"]["failureCode"])
        for f in fails.values():
            self.assertTrue(f.get("failureReason"))
        self.assertEqual(2, len(r["failures"]))

    def test_always_both_arrays(self):
        r = self.c.batch_check_layer_availability(repositoryName=self.repo,
                                                  layerDigests=[digest_of(b"n")])
        self.assertEqual([], r["failures"])
        r = self.c.batch_check_layer_availability(repositoryName=self.repo,
                                                  layerDigests=["bad"])
        self.assertEqual([], r["layers"])

    def test_media_type_after_push(self):
        img = push_image(self.c, self.repo, tag="v1")
        cfg_digest = img.config[0]["digest"]
        layer_digest = img.layers[0][0]["digest"]
        r = self.c.batch_check_layer_availability(repositoryName=self.repo,
                                                  layerDigests=[cfg_digest, layer_digest])
        got = {l["layerDigest"]: l for l in r["layers"]}
        self.assertEqual(DOCKER_CONFIG, got[cfg_digest].get("mediaType"))
        self.assertEqual(DOCKER_LAYER, got[layer_digest].get("mediaType"))
        self.assertEqual(img.config[0]["size"], got[cfg_digest]["layerSize"])
        self.assertEqual(img.layers[0][0]["size"], got[layer_digest]["layerSize"])

    def test_per_repository(self):
        d = upload_blob(self.c, self.repo, rand_bytes(64))
        other = uniq("other")
        self.c.create_repository(repositoryName=other)
        r = self.c.batch_check_layer_availability(repositoryName=other, layerDigests=[d])
        self.assertEqual("UNAVAILABLE", r["layers"][0]["layerAvailability"])

    def test_limits_and_missing_repo(self):
        self.assertClientError("InvalidParameterException", self.c.batch_check_layer_availability,
                               repositoryName=self.repo,
                               layerDigests=[digest_of(b"%d" % i) for i in range(101)])
        self.c.batch_check_layer_availability(
            repositoryName=self.repo, layerDigests=[digest_of(b"%d" % i) for i in range(100)])
        self.assertClientError("RepositoryNotFoundException",
                               self.c.batch_check_layer_availability,
                               repositoryName=uniq("absent"), layerDigests=[digest_of(b"x")])


class DownloadUrl(BerthCase):
    def setUp(self):
        self.c = B.client()
        self.repo = uniq("dl")
        self.c.create_repository(repositoryName=self.repo)

    def fetch(self, url):
        r = requests.get(url, timeout=60)
        self.assertEqual(200, r.status_code, r.text[:300])
        return r.content

    def test_download_layers_and_config(self):
        img = push_image(self.c, self.repo, tag="v1", nlayers=2, layer_size=70000)
        for d, data in [img.config] + img.layers:
            r = self.c.get_download_url_for_layer(repositoryName=self.repo,
                                                  layerDigest=d["digest"])
            self.assertEqual(d["digest"], r["layerDigest"])
            url = r["downloadUrl"]
            u = urllib.parse.urlparse(url)
            self.assertEqual("http", u.scheme, url)
            self.assertEqual(B.port, u.port, url)
            self.assertEqual(data, self.fetch(url))

    def test_download_big_multipart_blob(self):
        data = rand_bytes(5 * MIB) + rand_bytes(3 * MIB + 17)
        base = make_image(self.c, self.repo)  # uploads a config and one small layer
        d = upload_blob(self.c, self.repo, data, part_sizes=[5 * MIB, 3 * MIB + 17])
        text = docker_manifest(base.config[0], [base.layers[0][0], desc(DOCKER_LAYER, data)])
        put(self.c, self.repo, Img(text, DOCKER_MANIFEST), "big")
        url = self.c.get_download_url_for_layer(repositoryName=self.repo, layerDigest=d)[
            "downloadUrl"]
        got = self.fetch(url)
        self.assertEqual(len(data), len(got))
        self.assertEqual(digest_of(data), digest_of(got))

    def test_tampered_url_rejected(self):
        img = push_image(self.c, self.repo, tag="v1")
        url = self.c.get_download_url_for_layer(
            repositoryName=self.repo, layerDigest=img.layers[0][0]["digest"])["downloadUrl"]
        if "?" not in url:
            self.skipTest("download URL carries no signature")
        bad = url[:-1] + ("A" if url[-1] != "A" else "B")
        r = requests.get(bad, timeout=60)
        self.assertGreaterEqual(r.status_code, 400)
        self.assertLess(r.status_code, 500)
        self.assertNotEqual(img.layers[0][1], r.content)
        # the URL of one blob cannot fetch another one
        other = img.config[0]["digest"]
        swapped = url.replace(img.layers[0][0]["digest"], other)
        r = requests.get(swapped, timeout=60)
        self.assertGreaterEqual(r.status_code, 400)

    def test_url_needs_no_auth_headers(self):
        img = push_image(self.c, self.repo, tag="v1")
        url = self.c.get_download_url_for_layer(
            repositoryName=self.repo, layerDigest=img.layers[0][0]["digest"])["downloadUrl"]
        r = requests.get(url, timeout=60, headers={"Authorization": ""})
        self.assertEqual(200, r.status_code)
        self.assertEqual(img.layers[0][1], r.content)

    def test_unreferenced_blob_inaccessible(self):
        d = upload_blob(self.c, self.repo, rand_bytes(99))
        self.assertClientError("LayerInaccessibleException", self.c.get_download_url_for_layer,
                               repositoryName=self.repo, layerDigest=d)

    def test_blob_unreferenced_after_image_deleted(self):
        img = push_image(self.c, self.repo, tag="v1")
        d = img.layers[0][0]["digest"]
        self.c.get_download_url_for_layer(repositoryName=self.repo, layerDigest=d)
        self.c.batch_delete_image(repositoryName=self.repo, imageIds=[{"imageTag": "v1"}])
        self.assertClientError(("LayerInaccessibleException", "LayersNotFoundException"),
                               self.c.get_download_url_for_layer, repositoryName=self.repo,
                               layerDigest=d)

    def test_unknown_blob(self):
        self.assertClientError("LayersNotFoundException", self.c.get_download_url_for_layer,
                               repositoryName=self.repo, layerDigest=digest_of(b"nope"))

    def test_blob_of_other_repository(self):
        img = push_image(self.c, self.repo, tag="v1")
        other = uniq("other")
        self.c.create_repository(repositoryName=other)
        self.assertClientError("LayersNotFoundException", self.c.get_download_url_for_layer,
                               repositoryName=other, layerDigest=img.layers[0][0]["digest"])

    def test_invalid_digest(self):
        for bad in ("sha256:xyz", "nodigest", "sha256:"):
            with self.subTest(digest=bad):
                self.assertClientError("InvalidParameterException",
                                       self.c.get_download_url_for_layer,
                                       repositoryName=self.repo, layerDigest=bad)

    def test_missing_repository(self):
        self.assertClientError("RepositoryNotFoundException", self.c.get_download_url_for_layer,
                               repositoryName=uniq("absent"), layerDigest=digest_of(b"x"))


# a tiny sanity check of the harness itself (no server needed)
class Harness(BerthCase):
    def test_digest(self):
        self.assertEqual("sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                         digest_of(b""))
        self.assertTrue(re.match(r"^sha256:[0-9a-f]{64}$", digest_of("x")))
