"""Garbage collection (README "gc", src/core/gc.c): `berth gc` while the server runs and the
background pass (--gc-interval/--gc-grace). Unreferenced blobs are freed after the grace period
and only then; referenced ones never; deleted images and force-deleted repositories release the
blobs no other manifest references; abandoned upload sessions are removed (BLOB_UPLOAD_UNKNOWN
afterwards, ECR-API.md 4.15 / README limits table); orphan files are removed; --dry-run only
reports. Every test runs its own server, so the counts are exact."""

import os
import sqlite3
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from berthctl import Berth, digest_of, uniq, upload_blob  # noqa: E402
from lcgclib import (Layer, blob_digests, blob_file, blob_files, check_pull, fsck,  # noqa: E402
                     gc, image_of, lifecycle, run_berth, upload_files)
from ocilib import V2, OciCase  # noqa: E402


class GcCase(OciCase):
    server_args = ["--gc-interval", "0", "--lifecycle-interval", "0"]

    def setUp(self):
        self.b = Berth(name="gc", extra_args=self.server_args).start()
        self.addCleanup(self.b.cleanup)
        self.c = self.b.client()
        self.v = V2(self.b.url)
        self.addCleanup(self.v.close)
        self.dir = self.b.data_dir

    def repo(self):
        name = uniq("gc")
        self.c.create_repository(repositoryName=name)
        return name

    def push(self, repo, layers, tag=None):
        img = image_of(layers)
        r = self.v.push_image(repo, img, tag=tag)
        self.assertEqual(201, r.status_code)
        return img

    def gc(self, grace="0s", dry_run=False):
        time.sleep(0.01)  # "older than the grace period" is strict, in milliseconds
        return gc(self.dir, grace=grace, dry_run=dry_run)

    def assertGc(self, res, blobs=0, nbytes=0, uploads=0, orphans=0):
        self.assertEqual((blobs, nbytes, uploads, orphans),
                         (res.blobs, res.bytes, res.uploads, res.orphans), res)


class Blobs(GcCase):
    def test_unreferenced_blob_waits_for_grace_then_goes(self):
        repo = self.repo()
        data = os.urandom(100 * 1024)
        d = self.v.push_blob(repo, data)
        ecr = upload_blob(self.c, repo, os.urandom(2000))
        path = blob_file(self.dir, d)
        self.assertTrue(os.path.exists(path))
        self.assertGc(self.gc(grace="1h"))
        self.assertTrue(os.path.exists(path))
        self.assertGc(self.gc(dry_run=True), 2, len(data) + 2000)
        self.assertTrue(os.path.exists(path), "a dry run removed the file")
        self.assertStatus(self.v.head("%s/blobs/%s" % (repo, d)), 200)

        self.assertGc(self.gc(), 2, len(data) + 2000)
        self.assertFalse(os.path.exists(path))
        self.assertFalse(os.path.exists(blob_file(self.dir, ecr)))
        self.assertEqual({}, blob_files(self.dir))
        self.assertOciError(self.v.head("%s/blobs/%s" % (repo, d)), "BLOB_UNKNOWN", 404)
        self.assertOciError(self.v.get("%s/blobs/%s" % (repo, d)), "BLOB_UNKNOWN", 404)
        r = self.c.batch_check_layer_availability(repositoryName=repo, layerDigests=[d, ecr])
        self.assertEqual([], [x for x in r["layers"] if x.get("layerAvailability") ==
                              "AVAILABLE"])
        self.assertGc(self.gc())
        # it can be pushed again, under a name of its own (gc.c: a name never comes back)
        self.v.push_blob(repo, data)
        self.assertNotEqual(path, blob_file(self.dir, d))
        with open(blob_file(self.dir, d), "rb") as f:
            self.assertEqual(data, f.read())

    def test_referenced_blobs_are_never_collected(self):
        repo = self.repo()
        base = Layer(4096)
        tagged = self.push(repo, [base, Layer(2048)], tag="v1")
        untagged = self.push(repo, [base, Layer(2048)])
        both = self.push(repo, [Layer(1024)], tag="a")
        r = self.v.push_manifest(repo, "b", both.manifest, both.media_type)
        self.assertStatus(r, 201)
        before = blob_files(self.dir)
        self.assertGc(self.gc())
        # removing one of two tags keeps the image and its blobs
        self.c.batch_delete_image(repositoryName=repo, imageIds=[{"imageTag": "a"}])
        self.assertGc(self.gc())
        self.assertEqual(before, blob_files(self.dir))
        for ref, img in (("v1", tagged), (untagged.digest, untagged), ("b", both)):
            self.assertEqual([], check_pull(self.v, repo, ref, img))

    def test_deleted_image_frees_only_its_own_blobs(self):
        repo = self.repo()
        base = Layer(8192)
        a = self.push(repo, [base, Layer(3000)], tag="a")
        b = self.push(repo, [base, Layer(3000)], tag="b")
        own_a = {d: n for d, n in blob_digests(a).items() if d != base.digest}
        r = self.c.batch_delete_image(repositoryName=repo, imageIds=[{"imageDigest": a.digest}])
        self.assertEqual([], r["failures"])
        self.assertGc(self.gc(), len(own_a), sum(own_a.values()))
        on_disk = blob_files(self.dir)
        self.assertEqual(blob_digests(b), on_disk)
        self.assertEqual([], check_pull(self.v, repo, "b", b))
        # the last image goes through /v2 DELETE; then nothing is left
        self.assertStatus(self.v.delete("%s/manifests/%s" % (repo, b.digest)), 202)
        self.assertGc(self.gc(), 3, sum(blob_digests(b).values()))
        self.assertEqual({}, blob_files(self.dir))
        self.assertOciError(self.v.get("%s/blobs/%s" % (repo, base.digest)), "BLOB_UNKNOWN",
                            404)

    def test_orphan_files(self):
        """Files no row names: removed once older than the grace period; a blob-looking name
        only (other files are left alone)."""
        data = os.urandom(5000)
        d = digest_of(data)
        path = blob_file(self.dir, d)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
        junk = os.path.join(os.path.dirname(path), "not-a-digest")
        with open(junk, "wb") as f:
            f.write(b"x")
        stale_upload = os.path.join(self.dir, "uploads", str(uuid.uuid4()))
        with open(stale_upload, "wb") as f:
            f.write(b"y" * 100)
        self.assertGc(self.gc(grace="1h"))  # too young
        self.assertTrue(os.path.exists(path))
        old = time.time() - 2 * 3600
        os.utime(path, (old, old))
        os.utime(stale_upload, (old, old))
        self.assertGc(self.gc(grace="1h", dry_run=True), orphans=2)
        self.assertTrue(os.path.exists(path))
        res = self.gc(grace="1h")
        self.assertGc(res, orphans=2)
        self.assertEqual(5100, res.orphan_bytes)
        self.assertFalse(os.path.exists(path))
        self.assertFalse(os.path.exists(stale_upload))
        self.assertTrue(os.path.exists(junk))


class LegacyNames(GcCase):
    def test_blobs_stored_before_generations(self):
        """A data directory written before migration 0009 names blob files by digest alone
        (blobs.gen = ''): they are served, checked and collected as before, and a blob pushed
        again after gc took it gets a generation."""
        repo = self.repo()
        keep, drop = self.push(repo, [Layer(3000)], tag="keep"), self.push(repo, [Layer(2000)])
        self.b.stop()
        db = sqlite3.connect(os.path.join(self.dir, "berth.db"))
        for d in list(blob_digests(keep)) + list(blob_digests(drop)):
            path = blob_file(self.dir, d)
            os.rename(path, os.path.join(os.path.dirname(path), d.split(":")[1]))
            db.execute("UPDATE blobs SET gen='' WHERE digest=?", (d,))
        db.commit()
        db.close()
        self.b.start()
        self.v = V2(self.b.url)
        self.addCleanup(self.v.close)
        self.assertEqual([], check_pull(self.v, repo, "keep", keep))
        self.assertEqual([], check_pull(self.v, repo, drop.digest, drop))
        self.assertEqual(0, fsck(self.dir).rc)
        self.assertStatus(self.v.delete("%s/manifests/%s" % (repo, drop.digest)), 202)
        self.assertGc(self.gc(), 2, sum(blob_digests(drop).values()))
        self.assertEqual(blob_digests(keep), blob_files(self.dir))
        for d in blob_digests(keep):
            self.assertEqual(d.split(":")[1], os.path.basename(blob_file(self.dir, d)))
        self.assertStatus(self.v.push_image(repo, drop, tag="back"), 201)
        for d in blob_digests(drop):
            self.assertTrue(os.path.basename(blob_file(self.dir, d)).startswith(
                d.split(":")[1] + "."))
        self.assertEqual([], check_pull(self.v, repo, "back", drop))
        self.assertEqual(0, fsck(self.dir).rc)


class DeleteRepository(GcCase):
    def test_force_delete_releases_blobs_unless_still_referenced(self):
        shared = Layer(6000)
        ra, rb = self.repo(), self.repo()
        a = self.push(ra, [shared, Layer(3000)], tag="a")
        a2 = self.push(ra, [Layer(1000)])
        b = self.push(rb, [shared, Layer(3000)], tag="b")
        self.assertClientError("RepositoryNotEmptyException", self.c.delete_repository,
                               repositoryName=ra)
        self.c.delete_repository(repositoryName=ra, force=True)
        own_a = {}
        for img in (a, a2):
            own_a.update({d: n for d, n in blob_digests(img).items() if d != shared.digest})
        self.assertGc(self.gc(), len(own_a), sum(own_a.values()))
        on_disk = blob_files(self.dir)
        self.assertEqual(blob_digests(b), on_disk, "the shared layer must stay for %s" % rb)
        self.assertEqual([], check_pull(self.v, rb, "b", b))
        self.assertOciError(self.v.get("%s/manifests/a" % ra), "NAME_UNKNOWN", 404)
        # the other repository goes too, with an upload in progress: everything is freed
        loc = self.v.start_upload(rb, os.urandom(500))
        self.c.delete_repository(repositoryName=rb, force=True)
        res = self.gc()
        self.assertEqual((3, sum(blob_digests(b).values())), (res.blobs, res.bytes), res)
        self.assertEqual(1, res.uploads + res.orphans, res)
        self.assertEqual({}, blob_files(self.dir))
        self.assertEqual([], upload_files(self.dir))
        self.assertOciError(self.v.patch(loc, data=b"x", headers={
            "Content-Type": "application/octet-stream", "Content-Range": "500-500"}),
            ("NAME_UNKNOWN", "BLOB_UPLOAD_UNKNOWN"), 404)


class Uploads(GcCase):
    def test_abandoned_upload_sessions(self):
        repo = self.repo()
        loc = self.v.start_upload(repo, os.urandom(1000))
        up = self.c.initiate_layer_upload(repositoryName=repo)["uploadId"]
        part = os.urandom(1000)
        self.c.upload_layer_part(repositoryName=repo, uploadId=up, partFirstByte=0,
                                 partLastByte=999, layerPartBlob=part)
        ids = upload_files(self.dir)
        self.assertEqual(2, len(ids))
        self.assertIn(up, ids)
        self.assertGc(self.gc(grace="1h"))
        self.assertGc(self.gc(dry_run=True), uploads=2)
        self.assertEqual(ids, upload_files(self.dir), "a dry run removed upload files")

        self.assertGc(self.gc(), uploads=2)
        self.assertEqual([], upload_files(self.dir))
        for i in ids:
            self.assertFalse(os.path.exists(os.path.join(self.dir, "locks", i)), "lock file")
        more = os.urandom(10)
        self.assertOciError(self.v.patch(loc, data=more, headers={
            "Content-Type": "application/octet-stream", "Content-Range": "1000-1009"}),
            "BLOB_UPLOAD_UNKNOWN", 404)
        self.assertOciError(self.v.get(loc), "BLOB_UPLOAD_UNKNOWN", 404)
        sep = "&" if "?" in loc else "?"
        self.assertOciError(self.v.put(loc + sep + "digest=" + digest_of(b"x" * 1000)),
                            "BLOB_UPLOAD_UNKNOWN", 404)
        self.assertClientError("UploadNotFoundException", self.c.upload_layer_part,
                               repositoryName=repo, uploadId=up, partFirstByte=1000,
                               partLastByte=1000, layerPartBlob=b"z")
        self.assertClientError("UploadNotFoundException", self.c.complete_layer_upload,
                               repositoryName=repo, uploadId=up,
                               layerDigests=[digest_of(part)])
        self.assertEqual({}, blob_files(self.dir))

    def test_active_upload_survives_gc(self):
        repo = self.repo()
        first = os.urandom(3000)
        loc = self.v.start_upload(repo, first)
        self.assertGc(self.gc(grace="30s"))
        rest = os.urandom(2000)
        r = self.v.patch(loc, data=rest, headers={"Content-Type": "application/octet-stream",
                                                  "Content-Range": "3000-4999"})
        self.assertStatus(r, 202)
        loc = r.headers.get("Location", loc)
        sep = "&" if "?" in loc else "?"
        d = digest_of(first + rest)
        self.assertStatus(self.v.put(loc + sep + "digest=" + d), 201)
        self.assertEqual(first + rest, self.v.get("%s/blobs/%s" % (repo, d)).content)


class Background(GcCase):
    """The server's own pass: --gc-interval 1s --gc-grace 2s."""

    server_args = ["--gc-interval", "1s", "--gc-grace", "2s", "--lifecycle-interval", "0"]

    def test_background_pass_collects(self):
        repo = self.repo()
        keep = self.push(repo, [Layer(2048)], tag="keep")
        loose = self.v.push_blob(repo, os.urandom(7777))
        self.v.start_upload(repo, os.urandom(100))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if loose not in blob_files(self.dir) and not upload_files(self.dir):
                break
            time.sleep(0.3)
        self.assertNotIn(loose, blob_files(self.dir))
        self.assertEqual([], upload_files(self.dir))
        self.assertEqual(blob_digests(keep), blob_files(self.dir))
        self.assertEqual([], check_pull(self.v, repo, "keep", keep))
        with open(self.b.log_path) as f:
            log = f.read()
        self.assertRegex(log, r"gc: freed 1 blobs \(7777 bytes\), (0|1) upload sessions")


class Cli(GcCase):
    def test_cli_errors(self):
        p = run_berth(["gc", "--data-dir", self.dir, "--grace", "soon"])
        self.assertEqual(2, p.returncode, p.stderr)
        self.assertIn("bad duration", p.stderr)
        p = run_berth(["gc", "--data-dir", self.dir, "--repair"])
        self.assertEqual(2, p.returncode, p.stderr)
        repo = self.repo()
        p = run_berth(["lifecycle", "--data-dir", self.dir, "--repo", repo])
        self.assertEqual(1, p.returncode, p.stdout + p.stderr)
        self.assertIn("Lifecycle policy does not exist", p.stderr)
        p = run_berth(["lifecycle", "--data-dir", self.dir, "--repo", uniq("none")])
        self.assertEqual(1, p.returncode, p.stdout + p.stderr)
        # without any policy, a pass over all repositories does nothing
        self.assertEqual(0, lifecycle(self.dir).count)
        self.assertEqual([], lifecycle(self.dir, history=True).history)
