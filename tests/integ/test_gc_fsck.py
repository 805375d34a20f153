"""`berth fsck` (README maintenance commands, src/core/fsck.c) against a running server's data
directory: clean -> exit 0; a corrupt, truncated or missing blob file and an orphan file are
reported with exit 1; --repair drops bad blobs (the registry stops serving them and a client
can push them again), re-indexes valid orphans and removes invalid ones; manifests that
reference a dropped blob are reported, not deleted, so fsck keeps exiting 1 ("exit 1 if damage
remains") until the blob is pushed again."""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from berthctl import Berth, digest_of, uniq  # noqa: E402
from lcgclib import (Layer, blob_digests, blob_file, blob_files, check_pull, fsck, gc,  # noqa
                     image_of)
from ocilib import V2, OciCase  # noqa: E402


class Fsck(OciCase):
    def setUp(self):
        self.b = Berth(name="fsck", extra_args=["--gc-interval", "0",
                                                "--lifecycle-interval", "0"]).start()
        self.addCleanup(self.b.cleanup)
        self.c = self.b.client()
        self.v = V2(self.b.url)
        self.addCleanup(self.v.close)
        self.dir = self.b.data_dir
        self.repo = uniq("fsck")
        self.c.create_repository(repositoryName=self.repo)
        self.layer = Layer(20000)
        self.img = image_of([Layer(4000), self.layer])
        self.other = image_of([Layer(3000)])
        self.assertStatus(self.v.push_image(self.repo, self.img, tag="hurt"), 201)
        self.assertStatus(self.v.push_image(self.repo, self.other, tag="fine"), 201)
        self.path = blob_file(self.dir, self.layer.digest)

    def fsck(self, repair=False, rc=None):
        res = fsck(self.dir, repair=repair)
        if rc is not None:
            self.assertEqual(rc, res.rc, res.text())
        return res

    def assertLine(self, res, prefix, *pieces):
        lines = [l for l in res.lines if l.startswith(prefix)]
        self.assertTrue(lines, "no %r line:\n%s" % (prefix, res.text()))
        for p in pieces:
            self.assertTrue(any(p in l for l in lines), "%r not in %s" % (p, lines))

    def missing_ref_line(self, res):
        self.assertLine(res, "missing blob:", self.img.digest, self.repo, self.layer.digest)

    def push_layer_again_and_check(self):
        """Pushing the blob again heals the store: fsck exits 0, the image pulls."""
        self.v.push_blob(self.repo, self.layer.gz)
        res = self.fsck(rc=0)
        self.assertEqual((0, 0, 0, 0), (res.corrupt, res.missing_files, res.missing_refs,
                                        res.orphans))
        self.assertEqual([], check_pull(self.v, self.repo, "hurt", self.img))
        self.assertEqual([], check_pull(self.v, self.repo, "fine", self.other))

    def test_clean_store_exits_0(self):
        res = self.fsck(rc=0)
        files = blob_files(self.dir)
        self.assertEqual((len(files), sum(files.values())), (res.checked, res.bytes))
        self.assertEqual((0, 0, 0, 0, 0), (res.corrupt, res.missing_files, res.missing_refs,
                                           res.orphans, res.repaired))
        self.assertEqual([], res.lines)
        self.assertEqual(0, self.fsck(repair=True).rc)
        self.assertEqual(files, blob_files(self.dir))

    def corrupt(self):
        with open(self.path, "r+b") as f:
            f.seek(1000)
            b = f.read(1)
            f.seek(1000)
            f.write(bytes([b[0] ^ 0xFF]))

    def test_corrupt_blob_reported_then_repaired(self):
        self.corrupt()
        res = self.fsck(rc=1)
        self.assertEqual(1, res.corrupt)
        self.assertLine(res, "corrupt:", self.layer.digest)
        self.assertTrue(os.path.exists(self.path), "fsck without --repair changed the store")

        res = self.fsck(repair=True, rc=1)
        self.assertEqual((1, 1), (res.corrupt, res.repaired))
        self.assertLine(res, "corrupt:", self.layer.digest)
        self.missing_ref_line(res)  # the image referencing it is reported as missing a blob
        self.assertFalse(os.path.exists(self.path))
        # the registry no longer serves the bad bytes; the manifest is left alone
        self.assertOciError(self.v.get("%s/blobs/%s" % (self.repo, self.layer.digest)),
                            "BLOB_UNKNOWN", 404)
        self.assertStatus(self.v.get("%s/manifests/hurt" % self.repo), 200)
        self.assertEqual(2, len(self.c.describe_images(repositoryName=self.repo)
                                ["imageDetails"]))
        # damage remains until the blob is pushed again
        res = self.fsck(rc=1)
        self.assertEqual((0, 0, 1), (res.corrupt, res.missing_files, res.missing_refs))
        self.missing_ref_line(res)
        self.push_layer_again_and_check()

    def test_truncated_blob(self):
        with open(self.path, "r+b") as f:
            f.truncate(100)
        res = self.fsck(rc=1)
        self.assertEqual(1, res.corrupt)
        self.assertLine(res, "corrupt:", self.layer.digest)
        self.fsck(repair=True, rc=1)
        self.assertFalse(os.path.exists(self.path))
        self.push_layer_again_and_check()

    def test_missing_blob_file(self):
        os.unlink(self.path)
        res = self.fsck(rc=1)
        self.assertEqual(1, res.missing_files)
        self.assertLine(res, "missing file:", self.layer.digest)
        res = self.fsck(repair=True, rc=1)
        self.missing_ref_line(res)
        res = self.fsck(rc=1)
        self.assertEqual((0, 1), (res.missing_files, res.missing_refs))
        self.push_layer_again_and_check()

    def test_orphan_files(self):
        valid = os.urandom(6000)
        vd = digest_of(valid)
        bad = os.urandom(500)
        bd = digest_of(os.urandom(16))  # a name its content does not match
        for d, data in ((vd, valid), (bd, bad)):
            p = blob_file(self.dir, d)
            os.makedirs(os.path.dirname(p), exist_ok=True)
            with open(p, "wb") as f:
                f.write(data)
        res = self.fsck(rc=1)
        self.assertEqual(2, res.orphans)
        self.assertLine(res, "orphan:", vd, bd, "(6000 bytes)")
        self.assertTrue(os.path.exists(blob_file(self.dir, bd)))

        res = self.fsck(repair=True, rc=0)
        self.assertEqual((2, 2), (res.orphans, res.repaired))
        self.assertTrue(os.path.exists(blob_file(self.dir, vd)), "valid orphan re-indexed")
        self.assertFalse(os.path.exists(blob_file(self.dir, bd)), "invalid orphan removed")
        self.assertEqual(0, self.fsck(rc=0).orphans)
        # the re-indexed blob is unreferenced: gc frees it later
        time.sleep(0.01)
        res = gc(self.dir, grace="0s")
        self.assertEqual((1, 6000), (res.blobs, res.bytes), res)
        self.assertNotIn(vd, blob_files(self.dir))
        self.assertEqual(sorted(list(blob_digests(self.img)) + list(blob_digests(self.other))),
                         sorted(blob_files(self.dir)))
        self.fsck(rc=0)
