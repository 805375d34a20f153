"""Upload parts are acknowledged before they are fsync'd (src/core/upload.c "Durability"):
the session records the kernel boot id, survives a process crash (SIGKILL) with every
acknowledged byte, and is dropped - BLOB_UPLOAD_UNKNOWN / UploadNotFoundException, never a
blob with a hole - when it was written under another boot (simulated by rewriting the row's
boot id while berth is down, as a power loss would leave it)."""

import hashlib
import os
import sqlite3
import sys
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from berthctl import MIB, Berth, rand_bytes  # noqa: E402
from ocilib import V2, OciCase  # noqa: E402


def boot_id():
    with open("/proc/sys/kernel/random/boot_id") as f:
        return f.read().strip()


class UploadAcrossCrashes(OciCase):
    def setUp(self):
        self.b = Berth(name="upload-dur").start()
        self.addCleanup(self.b.cleanup)
        self.c = self.b.client()
        self.c.create_repository(repositoryName="dur/app")
        self.v = V2(self.b.url)
        self.addCleanup(self.v.close)

    def db_rows(self):
        con = sqlite3.connect(os.path.join(self.b.data_dir, "berth.db"), timeout=10)
        try:
            return dict(con.execute("SELECT id, unsynced_boot FROM uploads").fetchall())
        finally:
            con.close()

    def set_boot(self, value):
        con = sqlite3.connect(os.path.join(self.b.data_dir, "berth.db"), timeout=10)
        try:
            con.execute("UPDATE uploads SET unsynced_boot=?", (value,))
            con.commit()
        finally:
            con.close()

    def test_acknowledged_part_survives_sigkill(self):
        first, rest = rand_bytes(3 * MIB), rand_bytes(MIB + 17)
        loc = self.v.start_upload("dur/app", first)
        self.assertEqual([boot_id()], list(self.db_rows().values()))
        self.b._kill()  # SIGKILL, a process crash: the page cache keeps the bytes
        self.b.start(port=self.b.port)
        r = self.v.get(loc)
        self.assertStatus(r, 204)
        self.assertEqual("0-%d" % (len(first) - 1), r.headers["Range"])
        blob = first + rest
        digest = "sha256:" + hashlib.sha256(blob).hexdigest()
        r = self.v.patch(loc, data=rest, headers={
            "Content-Type": "application/octet-stream",
            "Content-Range": "%d-%d" % (len(first), len(blob) - 1)})
        self.assertStatus(r, 202)
        loc = r.headers["Location"]
        r = self.v.put(loc + ("&" if "?" in loc else "?") + "digest=" + digest)
        self.assertStatus(r, 201)
        self.assertEqual({}, self.db_rows())  # completed: no session left
        r = self.v.get("dur/app/blobs/" + digest)
        self.assertStatus(r, 200)
        self.assertEqual(blob, r.content)

    def test_session_from_another_boot_is_dropped(self):
        loc = self.v.start_upload("dur/app", rand_bytes(MIB))
        ecr_id = self.c.initiate_layer_upload(repositoryName="dur/app")["uploadId"]
        self.c.upload_layer_part(repositoryName="dur/app", uploadId=ecr_id, partFirstByte=0,
                                 partLastByte=MIB - 1, layerPartBlob=rand_bytes(MIB))
        self.b.stop()
        self.set_boot(str(uuid.uuid4()))  # as if the machine rebooted under the sessions
        self.b.start(port=self.b.port)
        r = self.v.get(loc)
        self.assertOciError(r, "BLOB_UPLOAD_UNKNOWN", 404)
        r = self.v.put(loc + ("&" if "?" in loc else "?") + "digest=sha256:" + "0" * 64)
        self.assertOciError(r, "BLOB_UPLOAD_UNKNOWN", 404)
        self.assertClientError("UploadNotFoundException", self.c.upload_layer_part,
                               repositoryName="dur/app", uploadId=ecr_id, partFirstByte=MIB,
                               partLastByte=MIB + 9, layerPartBlob=b"x" * 10)
        self.assertEqual({}, self.db_rows())  # dropped, not merely refused

    def test_durable_session_from_another_boot_is_kept(self):
        # a session with no part yet has nothing that could be lost
        r = self.v.post("dur/app/blobs/uploads/")
        self.assertStatus(r, 202)
        loc = r.headers["Location"]
        self.b.stop()
        self.set_boot(None)
        self.b.start(port=self.b.port)
        r = self.v.get(loc)
        self.assertStatus(r, 204)
