"""/v2 blobs and uploads (OCI Distribution Spec v1.1 "Pulling blobs", "Pushing blobs",
"Mounting a blob", "Deleting blobs"; ECR-API.md 3.3, 4.15, 5): GET/HEAD/DELETE with Range,
every upload form, 416 on out-of-order chunks, status/cancel, cross-repository mount (only with
BLOB_MOUNTING=ENABLED, else fallback to a normal upload) and the upload sessions shared with the
ECR layer API."""

import os
import re
import socket
import sys
import threading
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from berthctl import ACCOUNT, MIB, module_server, digest_of, uniq, upload_blob  # noqa: E402
from ocilib import V2, Chunked, OciCase, build_image  # noqa: E402

B = None
UUID_RE = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
# A second registry of the same server (same account, another region) selected by Host: the
# mount tests switch BLOB_MOUNTING on there without affecting the other tests.
MOUNT_REGION = "eu-west-2"
MOUNT_HOST = "%s.dkr.ecr.%s.amazonaws.com" % (ACCOUNT, MOUNT_REGION)


def setUpModule():
    global B
    B = module_server(name="oci-blobs")


def rnd(n):
    return os.urandom(n)


class Base(OciCase):
    def setUp(self):
        self.c = B.client()
        self.v = V2(B.url)
        self.addCleanup(self.v.close)
        self.repo = uniq("blobs")
        self.c.create_repository(repositoryName=self.repo)

    def new_repo(self, prefix="blobs", client=None):
        name = uniq(prefix)
        (client or self.c).create_repository(repositoryName=name)
        return name

    def start(self, repo=None):
        r = self.v.post("%s/blobs/uploads/" % (repo or self.repo))
        self.assertStatus(r, 202)
        loc = r.headers.get("Location")
        self.assertTrue(loc, "POST 202 without Location")
        self.assertRegex(loc, r"^(http://[^/]+)?/v2/%s/blobs/uploads/%s" % (
            re.escape(repo or self.repo), UUID_RE))
        return loc

    def blob_ok(self, repo, data, v=None):
        """The blob is readable in repo with the right bytes and headers."""
        d = digest_of(data)
        r = (v or self.v).get("%s/blobs/%s" % (repo, d))
        self.assertStatus(r, 200)
        self.assertEqual(data, r.content)
        self.assertEqual(d, r.headers.get("Docker-Content-Digest"))
        self.assertEqual(str(len(data)), r.headers.get("Content-Length"))

    def blob_absent(self, repo, digest, v=None):
        r = (v or self.v).head("%s/blobs/%s" % (repo, digest))
        self.assertOciError(r, None, 404)
        r = (v or self.v).get("%s/blobs/%s" % (repo, digest))
        self.assertOciError(r, "BLOB_UNKNOWN", 404)


class BlobReads(Base):
    def test_get_and_head(self):
        data = rnd(70000)
        d = self.v.push_blob(self.repo, data)
        r = self.v.get("%s/blobs/%s" % (self.repo, d))
        self.assertStatus(r, 200)
        self.assertEqual(data, r.content)
        self.assertEqual(d, r.headers["Docker-Content-Digest"])
        self.assertEqual(str(len(data)), r.headers["Content-Length"])
        self.assertEqual("application/octet-stream", r.headers["Content-Type"])
        self.assertEqual("registry/2.0", r.headers.get("Docker-Distribution-Api-Version"))
        h = self.v.head("%s/blobs/%s" % (self.repo, d))
        self.assertStatus(h, 200)
        self.assertEqual(b"", h.content)
        self.assertEqual(d, h.headers["Docker-Content-Digest"])
        self.assertEqual(str(len(data)), h.headers["Content-Length"])
        self.assertEqual("application/octet-stream", h.headers["Content-Type"])

    def test_ranges(self):
        data = rnd(10000)
        d = self.v.push_blob(self.repo, data)
        path = "%s/blobs/%s" % (self.repo, d)
        for rng, a, b in (("bytes=0-0", 0, 0), ("bytes=10-99", 10, 99),
                          ("bytes=9000-", 9000, 9999), ("bytes=-100", 9900, 9999),
                          ("bytes=9990-20000", 9990, 9999), ("bytes=0-9999", 0, 9999)):
            with self.subTest(range=rng):
                r = self.v.get(path, headers={"Range": rng})
                self.assertStatus(r, 206)
                self.assertEqual(data[a:b + 1], r.content)
                self.assertEqual("bytes %d-%d/%d" % (a, b, len(data)),
                                 r.headers.get("Content-Range"))
                self.assertEqual(str(b - a + 1), r.headers.get("Content-Length"))
                self.assertEqual(d, r.headers.get("Docker-Content-Digest"))
        # HEAD with a range: same headers, no body
        h = self.v.head(path, headers={"Range": "bytes=100-199"})
        self.assertStatus(h, 206)
        self.assertEqual("100", h.headers.get("Content-Length"))
        self.assertEqual(b"", h.content)

    def test_unsatisfiable_range(self):
        data = rnd(1000)
        d = self.v.push_blob(self.repo, data)
        for rng in ("bytes=1000-", "bytes=5000-6000", "bytes=-0"):
            with self.subTest(range=rng):
                r = self.v.get("%s/blobs/%s" % (self.repo, d), headers={"Range": rng})
                self.assertEqual(416, r.status_code, r.text[:300])
                self.assertEqual("bytes */1000", r.headers.get("Content-Range"))
        # the blob is untouched
        self.blob_ok(self.repo, data)

    def test_unknown_blob(self):
        d = digest_of(rnd(32))
        self.blob_absent(self.repo, d)

    def test_blob_of_another_repository_is_invisible(self):
        """BLOB_UNKNOWN in B even though the bytes exist for A (spec 3: a repository only sees
        blobs linked to it)."""
        other = self.new_repo()
        data = rnd(4096)
        d = self.v.push_blob(self.repo, data)
        self.blob_ok(self.repo, data)
        self.blob_absent(other, d)
        lay = self.c.batch_check_layer_availability(repositoryName=other,
                                                    layerDigests=[d])["layers"][0]
        self.assertEqual("UNAVAILABLE", lay["layerAvailability"])

    def test_bad_digest(self):
        for bad in ("sha256:xyz", "notadigest", "sha256:" + "A" * 64 + "!", "SHA256:" + "a" * 64):
            with self.subTest(digest=bad):
                r = self.v.get("%s/blobs/%s" % (self.repo, bad))
                self.assertOciError(r, ("DIGEST_INVALID", "BLOB_UNKNOWN"), (400, 404))

    def test_missing_repository(self):
        name = uniq("absent")
        r = self.v.get("%s/blobs/%s" % (name, digest_of(b"x")))
        self.assertOciError(r, "NAME_UNKNOWN", 404,
                            msg="The repository with name '%s' does not exist in the registry "
                                "with id '%s'" % (name, ACCOUNT))

    def test_delete(self):
        data = rnd(2048)
        d = self.v.push_blob(self.repo, data)
        other = self.new_repo()
        self.v.push_blob(other, data)
        r = self.v.delete("%s/blobs/%s" % (self.repo, d))
        self.assertStatus(r, 202)
        self.blob_absent(self.repo, d)
        lay = self.c.batch_check_layer_availability(repositoryName=self.repo,
                                                    layerDigests=[d])["layers"][0]
        self.assertEqual("UNAVAILABLE", lay["layerAvailability"])
        # still there for the other repository
        self.blob_ok(other, data)
        r = self.v.delete("%s/blobs/%s" % (self.repo, d))
        self.assertOciError(r, "BLOB_UNKNOWN", 404)
        r = self.v.delete("%s/blobs/%s" % (self.repo, "sha256:nothex"))
        self.assertOciError(r, "DIGEST_INVALID", 400)


    def test_delete_of_a_blob_a_manifest_references(self):
        """A 202 means the blob is gone from the repository (a repeated DELETE is 404
        BLOB_UNKNOWN, as core_blob_unlink documents); a registry that keeps blobs its
        manifests reference (ECR-API.md 4.16 invariant) must refuse the DELETE instead
        (405/409 UNSUPPORTED or DENIED). Either way, no 202 for a delete that did nothing."""
        img = build_image(nlayers=1)
        self.v.push_image(self.repo, img, tag="t")
        d = digest_of(img.layers[0])
        path = "%s/blobs/%s" % (self.repo, d)
        r = self.v.delete(path)
        if r.status_code == 202:
            g = self.v.get(path)
            self.assertEqual(404, g.status_code,
                             "DELETE %s answered 202 but the blob is still served (%d)"
                             % (d, g.status_code))
            self.assertOciError(self.v.delete(path), "BLOB_UNKNOWN", 404)
        else:
            self.assertOciError(r, ("UNSUPPORTED", "DENIED"), (400, 403, 405, 409))
            self.blob_ok(self.repo, img.layers[0])
            self.assertOciError(self.v.delete(path), ("UNSUPPORTED", "DENIED"),
                                (400, 403, 405, 409))


class Uploads(Base):
    def test_monolithic_post(self):
        data = rnd(123457)
        d = digest_of(data)
        r = self.v.post("%s/blobs/uploads/?digest=%s" % (self.repo, d), data=data,
                        headers={"Content-Type": "application/octet-stream"})
        self.assertStatus(r, 201)
        self.assertEqual(d, r.headers.get("Docker-Content-Digest"))
        loc = r.headers.get("Location")
        self.assertTrue(loc and loc.endswith("/v2/%s/blobs/%s" % (self.repo, d)), loc)
        g = self.v.get(loc)
        self.assertStatus(g, 200)
        self.assertEqual(data, g.content)
        # the ECR door agrees (spec 5: BatchCheckLayerAvailability <-> HEAD)
        lay = self.c.batch_check_layer_availability(repositoryName=self.repo,
                                                    layerDigests=[d])["layers"][0]
        self.assertEqual("AVAILABLE", lay["layerAvailability"])
        self.assertEqual(len(data), lay["layerSize"])

    def test_monolithic_post_chunked_transfer_encoding(self):
        data = rnd(300000)
        d = digest_of(data)
        body = Chunked(data[i:i + 65536] for i in range(0, len(data), 65536))
        r = self.v.post("%s/blobs/uploads/?digest=%s" % (self.repo, d), data=body)
        self.assertStatus(r, 201)
        self.blob_ok(self.repo, data)

    def test_empty_blob(self):
        d = digest_of(b"")
        r = self.v.post("%s/blobs/uploads/?digest=%s" % (self.repo, d), data=b"")
        self.assertStatus(r, 201)
        self.blob_ok(self.repo, b"")

    def test_post_then_put(self):
        data = rnd(5000)
        d = digest_of(data)
        loc = self.start()
        r = self.v.put(loc, params={"digest": d}, data=data,
                       headers={"Content-Type": "application/octet-stream"})
        self.assertStatus(r, 201)
        self.assertEqual(d, r.headers.get("Docker-Content-Digest"))
        self.assertTrue(r.headers.get("Location", "").endswith("/blobs/%s" % d))
        self.blob_ok(self.repo, data)
        # the session is closed
        self.assertOciError(self.v.get(loc), "BLOB_UPLOAD_UNKNOWN", 404)
        self.assertOciError(self.v.patch(loc, data=b"more"), "BLOB_UPLOAD_UNKNOWN", 404)

    def test_chunked_with_content_range(self):
        data = rnd(3000)
        loc = self.start()
        uid = loc.rsplit("/", 1)[1]
        for a, b in ((0, 999), (1000, 1999)):
            r = self.v.patch(loc, data=data[a:b + 1],
                             headers={"Content-Range": "%d-%d" % (a, b),
                                      "Content-Type": "application/octet-stream"})
            self.assertStatus(r, 202)
            self.assertEqual("0-%d" % b, r.headers.get("Range"))
            loc = r.headers["Location"]
            self.assertIn(uid, loc)
            st = self.v.get(loc)
            self.assertStatus(st, 204)
            self.assertEqual("0-%d" % b, st.headers.get("Range"))
            self.assertIn(uid, st.headers.get("Location", ""))
        # the last chunk rides on the PUT
        r = self.v.put(loc, params={"digest": digest_of(data)}, data=data[2000:],
                       headers={"Content-Range": "2000-2999",
                                "Content-Type": "application/octet-stream"})
        self.assertStatus(r, 201)
        self.blob_ok(self.repo, data)

    def test_chunked_then_empty_put(self):
        data = rnd(4096)
        loc = self.start()
        r = self.v.patch(loc, data=data[:1024], headers={"Content-Range": "0-1023"})
        self.assertStatus(r, 202)
        r = self.v.patch(r.headers["Location"], data=data[1024:],
                         headers={"Content-Range": "1024-4095"})
        self.assertStatus(r, 202)
        r = self.v.put(r.headers["Location"], params={"digest": digest_of(data)})
        self.assertStatus(r, 201)
        self.blob_ok(self.repo, data)

    def test_out_of_order_chunk_is_416_with_current_range(self):
        data = rnd(3000)
        loc = self.start()
        r = self.v.patch(loc, data=data[:1000], headers={"Content-Range": "0-999"})
        self.assertStatus(r, 202)
        loc = r.headers["Location"]
        for a, b in ((1500, 1999), (0, 999), (500, 1499), (999, 1999)):
            with self.subTest(chunk="%d-%d" % (a, b)):
                r = self.v.patch(loc, data=data[a:b + 1],
                                 headers={"Content-Range": "%d-%d" % (a, b)})
                self.assertOciError(r, "BLOB_UPLOAD_INVALID", 416)
                self.assertEqual("0-999", r.headers.get("Range"))
                self.assertTrue(r.headers.get("Location"), "416 without Location")
        # nothing was recorded by the refused chunks; the upload resumes
        st = self.v.get(loc)
        self.assertStatus(st, 204)
        self.assertEqual("0-999", st.headers.get("Range"))
        r = self.v.patch(loc, data=data[1000:], headers={"Content-Range": "1000-2999"})
        self.assertStatus(r, 202)
        r = self.v.put(r.headers["Location"], params={"digest": digest_of(data)})
        self.assertStatus(r, 201)
        self.blob_ok(self.repo, data)

    def test_chunk_length_differs_from_content_range(self):
        data = rnd(2000)
        loc = self.start()
        r = self.v.patch(loc, data=data[:1000], headers={"Content-Range": "0-999"})
        self.assertStatus(r, 202)
        loc = r.headers["Location"]
        # claims 500 bytes, sends 600 / 400
        for n in (600, 400):
            with self.subTest(sent=n):
                r = self.v.patch(loc, data=data[1000:1000 + n],
                                 headers={"Content-Range": "1000-1499"})
                self.assertOciError(r, ("BLOB_UPLOAD_INVALID", "SIZE_INVALID"), (400, 416))
                st = self.v.get(loc)
                self.assertEqual("0-999", st.headers.get("Range"),
                                 "a refused chunk must leave no partial state")
        r = self.v.patch(loc, data=b"x", headers={"Content-Range": "garbage"})
        self.assertOciError(r, "BLOB_UPLOAD_INVALID", (400, 416))
        self.assertEqual("0-999", self.v.get(loc).headers.get("Range"))
        r = self.v.put(loc, params={"digest": digest_of(data)}, data=data[1000:])
        self.assertStatus(r, 201)
        self.blob_ok(self.repo, data)

    def test_streamed_patch_without_content_range(self):
        data = rnd(200000)
        loc = self.start()
        # chunked transfer encoding, no length, no Content-Range
        body = Chunked(data[i:i + 30000] for i in range(0, 120000, 30000))
        r = self.v.patch(loc, data=body, headers={"Content-Type": "application/octet-stream"})
        self.assertStatus(r, 202)
        self.assertEqual("0-119999", r.headers.get("Range"))
        # a second streamed PATCH appends (with a Content-Length this time)
        r = self.v.patch(r.headers["Location"], data=data[120000:])
        self.assertStatus(r, 202)
        self.assertEqual("0-199999", r.headers.get("Range"))
        r = self.v.put(r.headers["Location"], params={"digest": digest_of(data)})
        self.assertStatus(r, 201)
        self.blob_ok(self.repo, data)

    def test_status_and_cancel(self):
        loc = self.start()
        st = self.v.get(loc)
        self.assertStatus(st, 204)
        self.assertTrue(st.headers.get("Range", "").startswith("0-"), st.headers)
        self.assertIn(loc.rsplit("/", 1)[1], st.headers.get("Docker-Upload-UUID", "") +
                      st.headers.get("Location", ""))
        r = self.v.patch(loc, data=b"abc")
        self.assertStatus(r, 202)
        r = self.v.delete(loc)
        self.assertStatus(r, 204)
        self.assertOciError(self.v.get(loc), "BLOB_UPLOAD_UNKNOWN", 404)
        self.assertOciError(self.v.patch(loc, data=b"def"), "BLOB_UPLOAD_UNKNOWN", 404)
        self.assertOciError(self.v.put(loc, params={"digest": digest_of(b"abc")}),
                            "BLOB_UPLOAD_UNKNOWN", 404)
        self.assertOciError(self.v.delete(loc), "BLOB_UPLOAD_UNKNOWN", 404)
        self.blob_absent(self.repo, digest_of(b"abc"))

    def test_unknown_upload(self):
        for uid in (str(uuid.uuid4()), "not-a-uuid"):
            path = "%s/blobs/uploads/%s" % (self.repo, uid)
            with self.subTest(uid=uid):
                self.assertOciError(self.v.get(path), "BLOB_UPLOAD_UNKNOWN", 404)
                self.assertOciError(self.v.patch(path, data=b"x"), "BLOB_UPLOAD_UNKNOWN", 404)
                self.assertOciError(self.v.put(path, params={"digest": digest_of(b"x")},
                                               data=b"x"), "BLOB_UPLOAD_UNKNOWN", 404)
                self.assertOciError(self.v.delete(path), "BLOB_UPLOAD_UNKNOWN", 404)

    def test_session_belongs_to_its_repository(self):
        other = self.new_repo()
        loc = self.start()
        uid = loc.rsplit("/", 1)[1]
        path = "%s/blobs/uploads/%s" % (other, uid)
        self.assertOciError(self.v.get(path), "BLOB_UPLOAD_UNKNOWN", 404)
        self.assertOciError(self.v.patch(path, data=b"x"), "BLOB_UPLOAD_UNKNOWN", 404)
        self.assertOciError(self.v.put(path, params={"digest": digest_of(b"x")}, data=b"x"),
                            "BLOB_UPLOAD_UNKNOWN", 404)
        self.assertOciError(self.v.delete(path), "BLOB_UPLOAD_UNKNOWN", 404)
        self.assertStatus(self.v.get(loc), 204)

    def test_digest_mismatch_monolithic(self):
        data = rnd(1000)
        wrong = digest_of(b"something else")
        r = self.v.post("%s/blobs/uploads/?digest=%s" % (self.repo, wrong), data=data)
        self.assertOciError(r, "DIGEST_INVALID", 400)
        self.blob_absent(self.repo, wrong)
        self.blob_absent(self.repo, digest_of(data))

    def test_digest_mismatch_put(self):
        data = rnd(1000)
        loc = self.start()
        r = self.v.patch(loc, data=data)
        self.assertStatus(r, 202)
        wrong = digest_of(b"other")
        r = self.v.put(r.headers["Location"], params={"digest": wrong})
        self.assertOciError(r, "DIGEST_INVALID", 400)
        self.blob_absent(self.repo, wrong)
        self.blob_absent(self.repo, digest_of(data))

    def test_put_requires_valid_digest(self):
        loc = self.start()
        self.assertStatus(self.v.patch(loc, data=b"hello"), 202)
        for params in ({}, {"digest": "sha256:zz"}, {"digest": "garbage"}):
            with self.subTest(params=params):
                r = self.v.put(loc, params=params)
                self.assertOciError(r, "DIGEST_INVALID", 400)
        self.assertEqual("0-4", self.v.get(loc).headers.get("Range"))
        r = self.v.put(loc, params={"digest": digest_of(b"hello")})
        self.assertStatus(r, 201)

    def test_bad_digest_on_monolithic_post(self):
        for bad in ("sha256:1234", "md5:" + "a" * 32, "nope"):
            with self.subTest(digest=bad):
                r = self.v.post("%s/blobs/uploads/?digest=%s" % (self.repo, bad), data=b"abc")
                self.assertOciError(r, ("DIGEST_INVALID", "UNSUPPORTED"), 400)
        self.blob_absent(self.repo, digest_of(b"abc"))

    def test_push_to_missing_repository(self):
        name = uniq("missing")
        msg = ("The repository with name '%s' does not exist in the registry with id '%s'"
               % (name, ACCOUNT))
        r = self.v.post("%s/blobs/uploads/" % name)
        self.assertOciError(r, "NAME_UNKNOWN", 404, msg=msg)
        r = self.v.post("%s/blobs/uploads/?digest=%s" % (name, digest_of(b"abc")), data=b"abc")
        self.assertOciError(r, "NAME_UNKNOWN", 404, msg=msg)

    def test_bad_names(self):
        for name in ("Upper", "a", "x//y", "trailing-/x", "-lead", "a" * 257, "ns/Bad"):
            with self.subTest(name=name):
                r = self.v.post("%s/blobs/uploads/" % name)
                self.assertOciError(r, "NAME_INVALID", 400)
                r = self.v.get("%s/blobs/%s" % (name, digest_of(b"x")))
                self.assertOciError(r, "NAME_INVALID", 400)

    def test_namespaced_repository(self):
        name = "team-%s/app/api" % uuid.uuid4().hex[:8]
        self.c.create_repository(repositoryName=name)
        data = rnd(999)
        loc = self.start(name)
        r = self.v.put(loc, params={"digest": digest_of(data)}, data=data)
        self.assertStatus(r, 201)
        self.blob_ok(name, data)

    def test_upload_to_deleted_repository(self):
        repo = self.new_repo()
        loc = self.start(repo)
        self.c.delete_repository(repositoryName=repo, force=True)
        r = self.v.patch(loc, data=b"abc")
        self.assertOciError(r, ("NAME_UNKNOWN", "BLOB_UPLOAD_UNKNOWN"), 404)


class Interrupted(Base):
    """Bodies cut short by the client never leave partial state (spec 8)."""

    def send_partial(self, method, path, declared, sent, headers=()):
        """Sends a request declaring `declared` body bytes, sends `sent` of them, closes."""
        s = socket.create_connection(("127.0.0.1", B.port), timeout=10)
        try:
            head = ["%s %s HTTP/1.1" % (method, path), "Host: 127.0.0.1:%d" % B.port,
                    "Content-Length: %d" % declared,
                    "Content-Type: application/octet-stream"] + list(headers)
            s.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
            s.sendall(os.urandom(sent))
            time.sleep(0.2)
        finally:
            s.close()
        time.sleep(0.3)  # let the server notice the disconnect

    def test_patch_cut_short(self):
        data = rnd(3000)
        loc = self.start()
        self.assertStatus(self.v.patch(loc, data=data[:1000], headers={
            "Content-Range": "0-999"}), 202)
        self.send_partial("PATCH", loc, 100000, 5000)
        self.send_partial("PATCH", loc, 2000, 1000, ["Content-Range: 1000-2999"])
        st = self.v.get(loc)
        self.assertStatus(st, 204)
        self.assertEqual("0-999", st.headers.get("Range"))
        # the session is usable (not locked, not corrupted)
        r = self.v.put(loc, params={"digest": digest_of(data)}, data=data[1000:],
                       headers={"Content-Range": "1000-2999"})
        self.assertStatus(r, 201)
        self.blob_ok(self.repo, data)

    def test_monolithic_post_cut_short(self):
        data = rnd(50000)
        d = digest_of(data)
        self.send_partial("POST", "/v2/%s/blobs/uploads/?digest=%s" % (self.repo, d),
                          len(data), 20000)
        self.blob_absent(self.repo, d)
        self.assertEqual(d, self.v.push_blob(self.repo, data))
        self.blob_ok(self.repo, data)

    def test_concurrent_patches_to_one_session(self):
        """Appends to one session are serialised: both claim bytes 0-..., one wins, the other
        gets 416 with the winner's Range; the bytes never interleave."""
        a, b = rnd(400000), rnd(400000)
        loc = self.start()
        results = {}

        def slow():
            def gen():
                for i in range(0, len(a), 50000):
                    yield a[i:i + 50000]
                    time.sleep(0.05)
            v = V2(B.url)
            try:
                results["a"] = v.patch(loc, data=gen(), headers={
                    "Content-Range": "0-%d" % (len(a) - 1)})
            finally:
                v.close()

        t = threading.Thread(target=slow)
        t.start()
        time.sleep(0.15)  # the slow PATCH holds the session now
        vb = V2(B.url)
        self.addCleanup(vb.close)
        results["b"] = vb.patch(loc, data=b, headers={
            "Content-Range": "0-%d" % (len(b) - 1)})
        t.join(30)
        self.assertFalse(t.is_alive())
        codes = sorted([results["a"].status_code, results["b"].status_code])
        self.assertEqual([202, 416], codes, "one PATCH wins, the other is out of order")
        winner = a if results["a"].status_code == 202 else b
        loser = results["b"] if winner is a else results["a"]
        self.assertEqual("0-%d" % (len(winner) - 1), loser.headers.get("Range"))
        r = self.v.put(loc, params={"digest": digest_of(winner)})
        self.assertStatus(r, 201)
        self.blob_ok(self.repo, winner)

    def test_same_blob_twice_is_fine(self):
        data = rnd(1000)
        d = self.v.push_blob(self.repo, data)
        self.assertEqual(d, self.v.push_blob(self.repo, data))
        loc = self.start()
        self.assertStatus(self.v.put(loc, params={"digest": d}, data=data), 201)
        self.blob_ok(self.repo, data)
        # the ECR door reports it as already there
        uid = self.c.initiate_layer_upload(repositoryName=self.repo)["uploadId"]
        self.c.upload_layer_part(repositoryName=self.repo, uploadId=uid, partFirstByte=0,
                                 partLastByte=len(data) - 1, layerPartBlob=data)
        with self.assertRaises(Exception) as cm:
            self.c.complete_layer_upload(repositoryName=self.repo, uploadId=uid,
                                         layerDigests=[d])
        self.assertIn("LayerAlreadyExistsException", str(cm.exception))


class SharedWithEcrLayerApi(Base):
    """One upload implementation behind both doors (spec 5, 4.15)."""

    def test_ecr_layer_pullable_via_v2(self):
        data = rnd(6 * MIB + 123)
        d = upload_blob(self.c, self.repo, data, part_sizes=[5 * MIB, MIB + 123])
        r = self.v.head("%s/blobs/%s" % (self.repo, d))
        self.assertStatus(r, 200)
        self.assertEqual(str(len(data)), r.headers["Content-Length"])
        self.blob_ok(self.repo, data)
        r = self.v.get("%s/blobs/%s" % (self.repo, d), headers={"Range": "bytes=5242870-5242889"})
        self.assertStatus(r, 206)
        self.assertEqual(data[5242870:5242890], r.content)

    def test_ecr_session_completed_via_v2(self):
        data = rnd(3000)
        uid = self.c.initiate_layer_upload(repositoryName=self.repo)["uploadId"]
        self.c.upload_layer_part(repositoryName=self.repo, uploadId=uid, partFirstByte=0,
                                 partLastByte=999, layerPartBlob=data[:1000])
        loc = "%s/blobs/uploads/%s" % (self.repo, uid)
        st = self.v.get(loc)
        self.assertStatus(st, 204)
        self.assertEqual("0-999", st.headers.get("Range"))
        r = self.v.patch(loc, data=data[1000:2000], headers={"Content-Range": "1000-1999"})
        self.assertStatus(r, 202)
        # ECR sees the bytes /v2 appended
        r2 = self.c.upload_layer_part(repositoryName=self.repo, uploadId=uid, partFirstByte=2000,
                                      partLastByte=2999, layerPartBlob=data[2000:])
        self.assertEqual(2999, r2["lastByteReceived"])
        r = self.v.put(loc, params={"digest": digest_of(data)})
        self.assertStatus(r, 201)
        self.blob_ok(self.repo, data)

    def test_v2_session_completed_via_ecr(self):
        # the first part comes through /v2; ECR's 5 MiB rule for non-final parts still holds
        n = 5 * MIB
        data = rnd(n + 500)
        loc = self.start()
        uid = loc.rsplit("/", 1)[1]
        r = self.v.patch(loc, data=data[:n], headers={"Content-Range": "0-%d" % (n - 1)})
        self.assertStatus(r, 202)
        # wrong first byte: the same rule (InvalidLayerPartException <-> 416)
        with self.assertRaises(Exception) as cm:
            self.c.upload_layer_part(repositoryName=self.repo, uploadId=uid, partFirstByte=0,
                                     partLastByte=499, layerPartBlob=data[n:])
        self.assertIn("InvalidLayerPartException", str(cm.exception))
        self.c.upload_layer_part(repositoryName=self.repo, uploadId=uid, partFirstByte=n,
                                 partLastByte=n + 499, layerPartBlob=data[n:])
        r = self.c.complete_layer_upload(repositoryName=self.repo, uploadId=uid,
                                         layerDigests=[digest_of(data)])
        self.assertEqual(digest_of(data), r["layerDigest"])
        self.blob_ok(self.repo, data)
        self.assertOciError(self.v.get(loc), "BLOB_UPLOAD_UNKNOWN", 404)

    def test_ecr_digest_check_equals_v2_digest_check(self):
        data = rnd(100)
        uid = self.c.initiate_layer_upload(repositoryName=self.repo)["uploadId"]
        self.c.upload_layer_part(repositoryName=self.repo, uploadId=uid, partFirstByte=0,
                                 partLastByte=99, layerPartBlob=data)
        r = self.v.put("%s/blobs/uploads/%s" % (self.repo, uid),
                       params={"digest": digest_of(b"nope")})
        self.assertOciError(r, "DIGEST_INVALID", 400)
        self.blob_absent(self.repo, digest_of(data))


class Mount(Base):
    """Cross-repository mount: honoured only with BLOB_MOUNTING=ENABLED (spec 3.7, 5);
    otherwise (and whenever the mount is refused) POST falls back to a new upload (202)."""

    def test_mount_refused_by_default_falls_back_to_upload(self):
        src = self.new_repo()
        data = rnd(5000)
        d = self.v.push_blob(src, data)
        self.assertEqual("DISABLED", self.c.get_account_setting(name="BLOB_MOUNTING")["value"])
        for query in ("mount=%s&from=%s" % (d, src), "mount=%s" % d):
            with self.subTest(query=query):
                r = self.v.post("%s/blobs/uploads/?%s" % (self.repo, query))
                self.assertStatus(r, 202)
                loc = r.headers.get("Location", "")
                self.assertRegex(loc, r"/v2/%s/blobs/uploads/%s" % (re.escape(self.repo),
                                                                     UUID_RE))
                self.blob_absent(self.repo, d)
        # the fallback session is a normal upload
        r = self.v.put(loc, params={"digest": d}, data=data)
        self.assertStatus(r, 201)
        self.blob_ok(self.repo, data)


class MountEnabled(OciCase):
    """In a registry (same account, region MOUNT_REGION, selected by Host) with mounting on."""

    @classmethod
    def setUpClass(cls):
        cls.c = B.client(region=MOUNT_REGION)
        cls.c.put_account_setting(name="BLOB_MOUNTING", value="ENABLED")
        cls.v = V2(B.url, host=MOUNT_HOST)

    @classmethod
    def tearDownClass(cls):
        cls.v.close()

    def repo(self):
        name = uniq("mnt")
        self.c.create_repository(repositoryName=name)
        return name

    def test_mount_from(self):
        a, b = self.repo(), self.repo()
        data = rnd(7777)
        d = self.v.push_blob(a, data)
        r = self.v.post("%s/blobs/uploads/?mount=%s&from=%s" % (b, d, a))
        self.assertStatus(r, 201)
        self.assertEqual(d, r.headers.get("Docker-Content-Digest"))
        self.assertTrue(r.headers.get("Location", "").endswith("/v2/%s/blobs/%s" % (b, d)),
                        r.headers.get("Location"))
        g = self.v.get("%s/blobs/%s" % (b, d))
        self.assertStatus(g, 200)
        self.assertEqual(data, g.content)
        lay = self.c.batch_check_layer_availability(repositoryName=b,
                                                    layerDigests=[d])["layers"][0]
        self.assertEqual(("AVAILABLE", len(data)), (lay["layerAvailability"], lay["layerSize"]))

    def test_mount_without_from(self):
        a, b = self.repo(), self.repo()
        data = rnd(3333)
        d = self.v.push_blob(a, data)
        r = self.v.post("%s/blobs/uploads/?mount=%s" % (b, d))
        self.assertStatus(r, 201)
        self.assertEqual(data, self.v.get("%s/blobs/%s" % (b, d)).content)

    def test_ecr_layer_is_mountable(self):
        a, b = self.repo(), self.repo()
        data = rnd(4444)
        d = upload_blob(self.c, a, data)
        r = self.v.post("%s/blobs/uploads/?mount=%s&from=%s" % (b, d, a))
        self.assertStatus(r, 201)
        self.assertEqual(data, self.v.get("%s/blobs/%s" % (b, d)).content)

    def test_refused_mounts_fall_back(self):
        a, b, c = self.repo(), self.repo(), self.repo()
        data = rnd(1234)
        d = self.v.push_blob(a, data)
        unknown = digest_of(rnd(10))
        cases = {
            "blob not in from": "mount=%s&from=%s" % (d, c),
            "from does not exist": "mount=%s&from=%s" % (d, uniq("ghost")),
            "from invalid": "mount=%s&from=%s" % (d, "BAD"),
            "unknown blob, no from": "mount=%s" % unknown,
            "unknown blob": "mount=%s&from=%s" % (unknown, a),
        }
        for what, q in cases.items():
            with self.subTest(what):
                r = self.v.post("%s/blobs/uploads/?%s" % (b, q))
                self.assertEqual(202, r.status_code, r.text[:300])
                self.assertRegex(r.headers.get("Location", ""), r"/blobs/uploads/%s" % UUID_RE)
                self.assertOciError(self.v.get("%s/blobs/%s" % (b, d)), "BLOB_UNKNOWN", 404)

    def test_mount_does_not_cross_registries(self):
        """A blob known only to the default registry is not mountable here (no from)."""
        data = rnd(2222)
        dflt = V2(B.url)
        self.addCleanup(dflt.close)
        a = uniq("mnt-default")
        B.client().create_repository(repositoryName=a)
        d = dflt.push_blob(a, data)
        b = self.repo()
        r = self.v.post("%s/blobs/uploads/?mount=%s" % (b, d))
        self.assertEqual(202, r.status_code, r.text[:300])
        # and a same-named repository in this registry does not expose the other's blob
        self.c.create_repository(repositoryName=a)
        r = self.v.post("%s/blobs/uploads/?mount=%s&from=%s" % (b, d, a))
        self.assertEqual(202, r.status_code, r.text[:300])
        self.assertOciError(self.v.get("%s/blobs/%s" % (b, d)), "BLOB_UNKNOWN", 404)
