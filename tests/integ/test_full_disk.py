"""A full disk (docs/reliability.md "A full disk"): berth runs on a small file system that the
test mounts (tmpfs, and ext4 on a loop device, where uploads take the O_DIRECT path).

Pushes that do not fit get a clean error - /v2: 507 Insufficient Storage with a JSON `errors`
body; ECR: ServerException (500) - never a crash, a hang, a half-visible blob or a corrupt
database. Acknowledged data stays readable while the disk is full; once space is freed (delete
and gc, or whatever filled the disk goes) the same pushes succeed, fsck is clean and SQLite's
integrity check passes. The same when the metadata database is what cannot grow.

Needs root to mount; skipped (with the reason) where mounting is not permitted."""

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from berthctl import (OCI_CONFIG, OCI_LAYER, OCI_MANIFEST, Berth, error_code,  # noqa: E402
                      http_status, upload_blob, uniq)
from botocore.exceptions import ClientError  # noqa: E402
from lcgclib import fsck, gc  # noqa: E402
from ocilib import V2, OciCase, oci_errors  # noqa: E402

MIB = 1024 * 1024


def sha(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Mount:
    """A small file system mounted at a fresh directory: tmpfs, or ext4 on a loop device."""

    def __init__(self, kind, mib):
        self.kind = kind
        self.dir = tempfile.mkdtemp(prefix="berth-full-%s-" % kind)
        self.image = None
        if kind == "tmpfs":
            cmd = ["mount", "-t", "tmpfs", "-o", "size=%dm" % mib, "tmpfs", self.dir]
        else:
            self.image = self.dir + ".img"
            with open(self.image, "wb") as f:
                f.truncate(mib * MIB)
            p = subprocess.run(["mkfs.ext4", "-q", "-F", "-m", "0", self.image],
                               capture_output=True, text=True)
            if p.returncode != 0:
                self.cleanup()
                raise unittest.SkipTest("mkfs.ext4 failed: %s" % p.stderr.strip())
            cmd = ["mount", "-o", "loop", self.image, self.dir]
        p = subprocess.run(cmd, capture_output=True, text=True)
        if p.returncode != 0:
            self.cleanup(mounted=False)
            raise unittest.SkipTest("cannot mount a %s here (%s): %s" % (
                kind, " ".join(cmd[:3]), p.stderr.strip()))

    def cleanup(self, mounted=True):
        if mounted:
            if subprocess.run(["umount", self.dir], capture_output=True).returncode != 0:
                subprocess.run(["umount", "-l", self.dir], capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)
        if self.image:
            try:
                os.unlink(self.image)
            except FileNotFoundError:
                pass


class Img:
    def __init__(self, tag, layer_size):
        self.config = json.dumps({"architecture": "amd64", "os": "linux", "tag": tag}).encode()
        self.layer = os.urandom(layer_size)
        self.blobs = {sha(self.config): self.config, sha(self.layer): self.layer}
        self.manifest = json.dumps({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": sha(self.config),
                       "size": len(self.config)},
            "layers": [{"mediaType": OCI_LAYER, "digest": sha(self.layer),
                        "size": len(self.layer)}]}).encode()
        self.digest = sha(self.manifest)
        self.tag = tag


class FullDisk(OciCase):
    def serve_on(self, kind, mib):
        m = Mount(kind, mib)
        self.addCleanup(m.cleanup)
        self.mount = m
        b = Berth(name="full-" + kind, data_dir=os.path.join(m.dir, "data"), log_level="info",
                  extra_args=["--gc-interval", "0", "--lifecycle-interval", "0"])
        b.start()
        self.addCleanup(b.cleanup)  # LIFO: the server stops before the unmount
        self.b, self.c, self.v = b, b.client(), V2(b.url)
        self.addCleanup(self.v.close)
        self.repo = uniq("full")
        self.c.create_repository(repositoryName=self.repo)

    def push(self, img):
        """Pushes img over /v2; returns None or the failing response."""
        for d, data in img.blobs.items():
            r = self.v.post("%s/blobs/uploads/?digest=%s" % (self.repo, d), data=data,
                            headers={"Content-Type": "application/octet-stream"})
            if r.status_code != 201:
                return r
        r = self.v.put("%s/manifests/%s" % (self.repo, img.tag), data=img.manifest,
                       headers={"Content-Type": OCI_MANIFEST})
        return None if r.status_code == 201 else r

    def assertFull(self, r):
        """A /v2 full-disk answer: 507 with an OCI error body."""
        self.assertEqual(507, r.status_code, r.text[:300])
        self.assertIn("storage is full", oci_errors(r)[0]["message"])

    def assertFullEcr(self, e):
        self.assertEqual("ServerException", error_code(e))
        self.assertEqual(500, http_status(e))
        self.assertIn("storage is full", str(e))

    def pulls(self, img):
        r = self.v.get("%s/manifests/%s" % (self.repo, img.digest),
                       headers={"Accept": OCI_MANIFEST})
        if r.status_code != 200 or r.content != img.manifest:
            return False
        return all(self.v.get("%s/blobs/%s" % (self.repo, d)).content == data
                   for d, data in img.blobs.items())

    def assertHealthy(self, acked):
        for img in acked:
            self.assertTrue(self.pulls(img), img.tag)
        got = {d["imageDigest"] for p in self.c.get_paginator("describe_images").paginate(
            repositoryName=self.repo) for d in p["imageDetails"]}
        self.assertTrue({i.digest for i in acked} <= got)
        self.assertTrue(self.b.healthy())

    def assertFewLogLines(self):
        """A full disk is one cause: a few lines, not one per refused request."""
        with open(self.b.log_path) as f:
            lines = [l for l in f if "storage" in l or "No space" in l or "disk is full" in l]
        self.assertLessEqual(len(lines), 4, "".join(lines[:10]))

    def assertStoreClean(self):
        f = fsck(self.b.data_dir)
        self.assertEqual(0, f.rc, f.text())
        con = sqlite3.connect(os.path.join(self.b.data_dir, "berth.db"), timeout=30)
        try:
            self.assertEqual([("ok",)], con.execute("PRAGMA integrity_check").fetchall())
        finally:
            con.close()

    def blobs_fill_the_disk(self, kind):
        self.serve_on(kind, 40)
        acked, failed = [], None
        for k in range(60):  # 40 MiB holds fewer than 20 images of 2 MiB
            img = Img("fill%d" % k, 2 * MIB)
            r = self.push(img)
            if r is not None:
                failed = (img, r)
                break
            acked.append(img)
        self.assertIsNotNone(failed, "the disk never filled")
        self.assertFull(failed[1])
        self.assertGreater(len(acked), 3)
        # the blob that did not fit is not there, not even in part
        for d in failed[0].blobs:
            r = self.v.head("%s/blobs/%s" % (self.repo, d))
            self.assertIn(r.status_code, (200, 404))
            if r.status_code == 200:  # the small config went in before the layer failed
                self.assertEqual(failed[0].blobs[d], self.v.get(
                    "%s/blobs/%s" % (self.repo, d)).content)
        self.assertEqual(404, self.v.head("%s/blobs/%s" % (self.repo, sha(failed[0].layer)))
                         .status_code)

        # a chunked upload stops at the chunk that does not fit, and says what it holds
        big = os.urandom(12 * MIB)
        r = self.v.post("%s/blobs/uploads/" % self.repo)
        self.assertStatus(r, 202)
        loc, stored, last = r.headers["Location"], 0, None
        for lo in range(0, len(big), 3 * MIB):
            r = self.v.patch(loc, data=big[lo:lo + 3 * MIB], headers={
                "Content-Type": "application/octet-stream",
                "Content-Range": "%d-%d" % (lo, lo + 3 * MIB - 1)})
            if r.status_code != 202:
                last = r
                break
            loc = r.headers.get("Location", loc)
            stored = lo + 3 * MIB
        self.assertIsNotNone(last, "a 12 MiB upload fit on a full disk")
        self.assertFull(last)
        r = self.v.get(loc)
        self.assertStatus(r, 204)
        self.assertEqual("0-%d" % (stored - 1) if stored else "0-0", r.headers.get("Range"))

        # the ECR door
        with self.assertRaises(ClientError) as cm:
            upload_blob(self.c, self.repo, os.urandom(6 * MIB), part_sizes=[5 * MIB, MIB])
        self.assertFullEcr(cm.exception)

        # the reserve held: deletes and gc have room
        st = os.statvfs(self.mount.dir)
        self.assertGreater(st.f_bavail * st.f_frsize, MIB, "the reserve was used up")
        # reads keep working
        self.assertHealthy(acked)
        for k in range(20):  # clients retrying
            self.assertFull(self.push(Img("retry%d" % k, MIB)))
        self.assertFewLogLines()
        self.c.get_authorization_token()
        self.assertStatus(self.v.get("_catalog"), 200)
        self.assertStoreClean()

        # free space: delete half the images and collect; the same pushes then succeed
        gone = acked[::2]
        out = self.c.batch_delete_image(repositoryName=self.repo,
                                        imageIds=[{"imageDigest": i.digest} for i in gone])
        self.assertEqual([], out["failures"])
        self.assertStatus(self.v.delete(loc), 204)
        gc(self.b.data_dir, grace="0s")
        self.assertIsNone(self.push(failed[0]))
        upload_blob(self.c, self.repo, os.urandom(6 * MIB), part_sizes=[5 * MIB, MIB])
        self.assertHealthy([i for i in acked if i not in gone] + [failed[0]])
        self.assertStoreClean()

    def test_blob_store_full_tmpfs(self):
        self.blobs_fill_the_disk("tmpfs")

    def test_blob_store_full_ext4(self):
        self.blobs_fill_the_disk("ext4")

    def fill(self, path, leave=0):
        """Fills the file system of path with a file, leaving about `leave` bytes free."""
        st = os.statvfs(path)
        room = st.f_bavail * st.f_frsize - leave
        with open(os.path.join(path, "filler"), "wb", buffering=0) as f:
            try:
                while room > 0:
                    f.write(b"\0" * min(65536, room))
                    room -= 65536
            except OSError:
                pass
        return os.path.join(path, "filler")

    def put_all(self, imgs):
        """Puts imgs' manifests (blobs already there), alternating doors; returns (acked,
        refused); every refusal must be the full-disk answer of its door."""
        acked, refused = [], []
        for k, img in enumerate(imgs):
            try:
                if k % 2:
                    self.c.put_image(repositoryName=self.repo,
                                     imageManifest=img.manifest.decode(),
                                     imageManifestMediaType=OCI_MANIFEST, imageTag=img.tag)
                else:
                    r = self.v.put("%s/manifests/%s" % (self.repo, img.tag), data=img.manifest,
                                   headers={"Content-Type": OCI_MANIFEST})
                    if r.status_code != 201:
                        self.assertFull(r)
                        refused.append(img)
                        continue
                acked.append(img)
            except ClientError as e:
                self.assertFullEcr(e)
                refused.append(img)
        for img in refused:  # not half there
            self.assertEqual(404, self.v.head("%s/manifests/%s" % (
                self.repo, img.digest)).status_code)
        return acked, refused

    def upload_blobs(self, imgs):
        for img in imgs:
            for d, data in img.blobs.items():
                self.assertStatus(self.v.post("%s/blobs/uploads/?digest=%s" % (self.repo, d),
                                              data=data), 201)

    def test_database_volume_fills(self):
        """The database on a file system of its own (berth.db a symlink into it, as an
        operator may set up): manifests stop at the reserve, reads and deletes go on, and
        pushes resume once the volume has room again."""
        db = Mount("tmpfs", 64)
        self.addCleanup(db.cleanup)
        data_dir = tempfile.mkdtemp(prefix="berth-full-data-")
        self.addCleanup(shutil.rmtree, data_dir, True)
        os.symlink(os.path.join(db.dir, "berth.db"), os.path.join(data_dir, "berth.db"))
        b = Berth(name="full-db", data_dir=data_dir, log_level="info",
                  extra_args=["--gc-interval", "0", "--lifecycle-interval", "0"])
        b.start()
        self.addCleanup(b.cleanup)
        self.b, self.c, self.v = b, b.client(), V2(b.url)
        self.addCleanup(self.v.close)
        self.repo = uniq("full")
        self.c.create_repository(repositoryName=self.repo)
        imgs = [Img("db%d" % k, 500) for k in range(400)]
        self.upload_blobs(imgs)
        self.assertTrue(os.path.exists(os.path.join(db.dir, "berth.db-wal")),
                        "the database did not follow the symlink")
        filler = self.fill(db.dir, leave=int(6.4 * MIB) + 256 * 1024)
        acked, refused = self.put_all(imgs)
        self.assertTrue(refused, "the database grew into its reserve")
        self.assertHealthy(acked)
        out = self.c.batch_delete_image(repositoryName=self.repo,
                                        imageIds=[{"imageDigest": i.digest} for i in acked[:20]])
        self.assertEqual(([], 20), (out["failures"], len(out["imageIds"])))
        gc(self.b.data_dir, grace="0s")
        os.unlink(filler)  # the volume grows
        self.upload_blobs(refused)  # gc took them: nothing referenced them
        again, still = self.put_all(refused)
        self.assertEqual([], still)
        self.assertHealthy(acked[20:] + refused)
        self.assertStoreClean()

    def test_something_else_fills_the_disk(self):
        """Another program takes every byte, the reserve included: berth refuses writes
        cleanly, keeps serving reads, and resumes when the space comes back."""
        self.serve_on("tmpfs", 24)
        imgs = [Img("ext%d" % k, 1000) for k in range(60)]
        self.upload_blobs(imgs)
        acked, refused = self.put_all(imgs[:30])
        self.assertEqual([], refused)
        filler = self.fill(self.mount.dir)
        more, refused = self.put_all(imgs[30:])
        self.assertTrue(refused, "the database grew on a full disk")
        self.assertFewLogLines()
        with self.assertRaises(ClientError) as cm:
            upload_blob(self.c, self.repo, os.urandom(1000))
        self.assertFullEcr(cm.exception)
        self.assertHealthy(acked + more)
        os.unlink(filler)
        again, still = self.put_all(refused)
        self.assertEqual([], still)
        self.assertHealthy(imgs)
        self.assertStoreClean()
        self.b.restart()
        self.v = V2(self.b.url)
        self.addCleanup(self.v.close)
        self.c = self.b.client()
        self.assertHealthy(imgs)
