"""Online gc under load (src/core/gc.c safety argument): `berth gc --grace 5s` runs in a loop and
the server's own pass every second (--gc-interval 1s --gc-grace 5s) while 8 skopeo clients push
images that share layers, delete some of them, and push new images that reuse layers of the
deleted ones. A push may legitimately fail with MANIFEST_BLOB_UNKNOWN when gc removed a blob
skopeo found present a moment before (the client must upload it again), so each push is re-run
a bounded number of times. Afterwards every image reported pushed (and not deleted) pulls
byte-identically with skopeo, fsck finds no manifest with a missing blob, and a final gc leaves
exactly the referenced blobs on disk."""

import os
import shutil
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from berthctl import Berth, digest_of, uniq  # noqa: E402
from lcgclib import Layer, blob_digests, blob_files, fsck, gc, image_of  # noqa: E402
from ocilib import V2, OciCase, Tools, layout_blob, layout_top, write_layout  # noqa: E402

CLIENTS = 8
MIN_SECONDS = 9      # long enough for garbage to outlive the 5 s grace while pushes go on
MIN_ROUNDS = 4
MAX_ROUNDS = 60      # a bound only: MIN_SECONDS ends the loop
ROUND_MIN = 0.25     # seconds: paces fast machines, so the images to verify stay few
ATTEMPTS = 4
GRACE = "5s"
REUSE_AGE = 6.0      # seconds since its image was deleted: a layer that is garbage past grace


class GcUnderLoad(OciCase):
    def setUp(self):
        if shutil.which("skopeo") is None:
            self.skipTest("skopeo not installed")
        self.b = Berth(name="gc-load", extra_args=["--gc-interval", "1s", "--gc-grace", GRACE,
                                                   "--lifecycle-interval", "0"]).start()
        self.addCleanup(self.b.cleanup)
        self.c = self.b.client()
        self.tmp = tempfile.mkdtemp(prefix="berth-gc-load-")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def ref(self, repo, tag):
        return "docker://127.0.0.1:%d/%s:%s" % (self.b.port, repo, tag)

    def test_gc_loop_while_8_clients_push_shared_layers(self):
        base = [Layer(n) for n in (40000, 30000, 20000, 10000)]
        repos = [uniq("load%d" % i) for i in range(CLIENTS)]
        for r in repos:
            self.c.create_repository(repositoryName=r)
        lock = threading.Lock()
        pushed, deleted, retries, failures, errors = {}, set(), [], [], []
        gc_runs = []
        stop_gc = threading.Event()

        def gc_loop():
            try:
                while not stop_gc.is_set():
                    gc_runs.append(gc(self.b.data_dir, grace=GRACE))
                    time.sleep(0.1)
            except Exception as e:  # noqa: BLE001
                errors.append("gc loop: %r" % e)

        def client(i):
            tools = Tools()
            v = V2(self.b.url)
            repo = repos[i]
            uniques = []
            deleted_at = {}  # round -> when its image was deleted
            try:
                t0 = time.monotonic()
                r = 0
                while r < MAX_ROUNDS and (r < MIN_ROUNDS or time.monotonic() - t0 < MIN_SECONDS):
                    round_start = time.monotonic()
                    u = Layer(8000 + 100 * i + r)
                    layers = [base[(i + r) % 4], base[(i + r + 1) % 4], u]
                    # the layer of an image deleted long ago (even rounds are deleted two
                    # rounds later): garbage older than the grace period, which gc may remove
                    # while skopeo pushes an image that uses it again
                    old_enough = [k for k, t in deleted_at.items()
                                  if time.monotonic() - t > REUSE_AGE]
                    if old_enough and r % 2 == 0:
                        k = max(old_enough)
                        del deleted_at[k]
                        layers.append(uniques[k])
                    uniques.append(u)
                    img = image_of(layers, label="c%d-r%d" % (i, r))
                    src = write_layout(os.path.join(self.tmp, "src-%d-%d" % (i, r)), img, "src")
                    for attempt in range(ATTEMPTS):
                        p = tools.skopeo("copy", "--dest-tls-verify=false", "oci:%s:src" % src,
                                         self.ref(repo, "r%d" % r), check=False)
                        if p.returncode == 0:
                            with lock:
                                pushed[(i, r)] = (repo, img, src)
                            break
                        with lock:
                            retries.append((i, r, attempt,
                                            p.stderr.decode("utf-8", "replace")[-300:]))
                    else:
                        with lock:
                            failures.append((i, r))
                    # delete the image of two rounds ago on even rounds: garbage for gc
                    old = (i, r - 2)
                    if r >= 2 and (r - 2) % 2 == 0 and old in pushed:
                        d = pushed[old][1].digest
                        resp = v.delete("%s/manifests/%s" % (repo, d))
                        if resp.status_code != 202:
                            errors.append("DELETE %s@%s -> %d" % (repo, d, resp.status_code))
                        else:
                            deleted_at[r - 2] = time.monotonic()
                            with lock:
                                deleted.add(old)
                    r += 1
                    time.sleep(max(0.0, ROUND_MIN - (time.monotonic() - round_start)))
            except Exception as e:  # noqa: BLE001
                errors.append("client %d: %r" % (i, e))
            finally:
                v.close()
                tools.cleanup()

        gct = threading.Thread(target=gc_loop, daemon=True)
        gct.start()
        threads = [threading.Thread(target=client, args=(i,), daemon=True)
                   for i in range(CLIENTS)]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join(150)
        took = time.monotonic() - t0
        stop_gc.set()
        gct.join(60)
        self.assertFalse(any(t.is_alive() for t in threads), "clients still running")
        self.assertEqual([], errors)
        self.assertEqual([], failures, "pushes that failed %d times; retries: %s"
                         % (ATTEMPTS, retries[-5:]))
        for _, _, _, msg in retries:  # the only legitimate reason to fail
            self.assertIn("blob unknown", msg.lower(), "unexpected push failure: %s" % msg)
        self.assertGreater(len(gc_runs), 5)
        freed_meanwhile = sum(r.blobs for r in gc_runs)
        with open(self.b.log_path) as f:
            bg_passes = f.read().count("gc: freed ")
        self.assertGreater(freed_meanwhile + bg_passes, 0,
                           "gc freed nothing while the clients pushed (%.1fs)" % took)

        alive = {k: v for k, v in pushed.items() if k not in deleted}
        self.assertGreaterEqual(len(alive), CLIENTS * MIN_ROUNDS // 2)

        # every image still there pulls byte-identically with skopeo
        keys = sorted(alive)
        problems = []

        def puller(part):
            tools = Tools()
            try:
                for k in part:
                    repo, img, _ = alive[k]
                    dst = os.path.join(self.tmp, "pull-%d-%d" % k)
                    p = tools.skopeo("copy", "--src-tls-verify=false",
                                     self.ref(repo, "r%d" % k[1]), "oci:%s:got" % dst,
                                     check=False)
                    if p.returncode != 0:
                        problems.append("pull %s: %s" % (k, p.stderr[-300:]))
                        continue
                    desc, manifest = layout_top(dst)
                    if manifest != img.manifest or desc["digest"] != img.digest:
                        problems.append("manifest of %s differs" % (k,))
                    for data in img.blobs():
                        d = digest_of(data)
                        try:
                            if layout_blob(dst, d) != data:
                                problems.append("blob %s of %s differs" % (d, k))
                        except OSError as e:
                            problems.append("blob %s of %s missing: %s" % (d, k, e))
            except Exception as e:  # noqa: BLE001
                problems.append("puller: %r" % e)
            finally:
                tools.cleanup()

        pts = [threading.Thread(target=puller, args=(keys[j::CLIENTS],), daemon=True)
               for j in range(CLIENTS)]
        for t in pts:
            t.start()
        for t in pts:
            t.join(150)
        self.assertEqual([], problems)

        # the deleted ones are gone; DescribeImages agrees
        v = V2(self.b.url)
        self.addCleanup(v.close)
        for k in deleted:
            repo, img, _ = pushed[k]
            self.assertOciError(v.get("%s/manifests/%s" % (repo, img.digest)),
                                "MANIFEST_UNKNOWN", 404)
        for i, repo in enumerate(repos):
            want = {img.digest for (ci, _), (_, img, _) in alive.items() if ci == i}
            got = {d["imageDigest"] for d in
                   self.c.describe_images(repositoryName=repo, maxResults=1000)["imageDetails"]}
            self.assertEqual(want, got, repo)

        # no manifest lost a blob; a final gc leaves exactly the referenced blobs
        f = fsck(self.b.data_dir)
        self.assertEqual((0, 0), (f.rc, f.missing_refs), f.text())
        time.sleep(0.01)
        gc(self.b.data_dir, grace="0s")
        referenced = {}
        for _, img, _ in alive.values():
            referenced.update(blob_digests(img))
        self.assertEqual(referenced, blob_files(self.b.data_dir))
        self.assertEqual(0, fsck(self.b.data_dir).rc)
