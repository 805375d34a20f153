"""gc against every writer that can race it, in a tight seeded loop (src/core/gc.c's safety
argument, tested).

One server collects garbage five times a second with a 1 s grace period, while
  * workers push images through both doors (/v2 monolithic and chunked uploads, ECR layer
    uploads + PutImage, cross-repository mounts, and "skip what HEAD says is there" pushes the
    way skopeo and docker push), move tags and delete images through both doors (/v2 manifest
    DELETE, ECR BatchDeleteImage), and re-push blobs of images deleted a moment ago, i.e.
    right when gc may be deleting them;
  * `berth gc --grace 1s` runs in a loop in another process;
  * `berth fsck` (and now and then `berth fsck --repair`) runs in a loop in a third process and
    must never report damage: a missing file, a corrupt blob or a manifest whose blob is gone;
  * every worker keeps pulling images it pushed and has not deleted: each must pull
    byte-identically at any moment.
A push may fail with MANIFEST_BLOB_UNKNOWN / LayersNotFoundException when gc took a blob the
client believed present (the client then uploads it again, as skopeo does); nothing else may
fail. At the end every image still alive pulls byte-identically, fsck is clean and a gc with
no grace leaves exactly the referenced blobs on disk.

The old code (commit d8864aa, before blob files were named by generation and owned as gc.c
describes) failed this test in 10 of 10 runs of `STRESS_SECONDS=60`, every time within 5 s:
`fsck --repair` re-indexed files that were being committed or deleted (5 of 5 runs, within
0.3 s) and, with --repair taken out, plain fsck reported "missing file: blob ... has a row but
no file" for blobs the server's gc pass had just freed (5 of 5 runs, within 1.4-5.0 s): the
failure of test_gc_concurrency seen in `make check`. On the old code `fsck --repair` could
also delete a blob pushed again a moment after gc took it, or re-index a file gc was about to
unlink, leaving a row without its file.

Knobs (environment): STRESS_SECONDS (default 20; `make stress` runs 300), STRESS_SEED (default
random, printed; a run's operation sequence follows from it), STRESS_WORKERS (default 6)."""

import hashlib
import json
import os
import random
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from berthctl import OCI_CONFIG, OCI_LAYER, OCI_MANIFEST, Berth, error_code, uniq  # noqa: E402
from botocore.exceptions import ClientError  # noqa: E402
from lcgclib import blob_files, fsck, gc  # noqa: E402
from ocilib import V2, OciCase  # noqa: E402

SECONDS = float(os.environ.get("STRESS_SECONDS", "20"))
WORKERS = int(os.environ.get("STRESS_WORKERS", "6"))
SEED = int(os.environ.get("STRESS_SEED", str(random.SystemRandom().randrange(1 << 30))))
GRACE = 1.0
SHARED_LAYERS = 16
ATTEMPTS = 6  # pushes retried after a legitimate "blob unknown"


def sha(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Pushed:
    """An image a worker pushed: manifest bytes, blobs {digest: bytes}, tag."""

    def __init__(self, manifest, blobs, tag):
        self.manifest = manifest
        self.digest = sha(manifest)
        self.blobs = blobs
        self.tag = tag


def manifest_of(config, layers):
    m = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
         "config": {"mediaType": OCI_CONFIG, "digest": sha(config), "size": len(config)},
         "layers": [{"mediaType": OCI_LAYER, "digest": sha(l), "size": len(l)}
                    for l in layers]}
    return json.dumps(m).encode()


class BlobUnknown(Exception):
    """The registry no longer has a blob the client believed present (legitimate under gc)."""


class Worker:
    def __init__(self, t, i, rng, repo, peers, shared):
        self.t, self.i, self.rng, self.repo, self.peers = t, i, rng, repo, peers
        self.shared = shared
        self.v2 = V2(t.b.url)
        self.ecr = t.b.client()
        self.alive = {}      # digest -> Pushed (pushed, acknowledged, not deleted by us)
        self.tags = {}       # tag -> digest (our view: the last acknowledged push of the tag)
        self.dead = []       # (when deleted, [blobs]) of images we deleted
        self.counts = {}
        self.problems = []
        self.retries = 0
        self.n = 0

    def count(self, what):
        self.counts[what] = self.counts.get(what, 0) + 1

    # -- blob transports -----------------------------------------------------------------

    def put_blob_v2(self, data):
        d = sha(data)
        if self.rng.random() < 0.5:
            r = self.v2.post("%s/blobs/uploads/?digest=%s" % (self.repo, d), data=data,
                             headers={"Content-Type": "application/octet-stream"})
        else:
            r = self.v2.post("%s/blobs/uploads/" % self.repo)
            self.check(r, 202, "POST upload")
            loc = r.headers["Location"]
            half = len(data) // 2
            for lo, hi in ((0, half), (half, len(data))):
                if hi > lo:
                    r = self.v2.patch(loc, data=data[lo:hi], headers={
                        "Content-Type": "application/octet-stream",
                        "Content-Range": "%d-%d" % (lo, hi - 1)})
                    self.check(r, 202, "PATCH")
                    loc = r.headers.get("Location", loc)
            sep = "&" if "?" in loc else "?"
            r = self.v2.put("%s%sdigest=%s" % (loc, sep, d))
        self.check(r, 201, "blob upload")

    def put_blob_ecr(self, data):
        up = self.ecr.initiate_layer_upload(repositoryName=self.repo)
        self.ecr.upload_layer_part(repositoryName=self.repo, uploadId=up["uploadId"],
                                   partFirstByte=0, partLastByte=len(data) - 1,
                                   layerPartBlob=data)
        try:
            self.ecr.complete_layer_upload(repositoryName=self.repo, uploadId=up["uploadId"],
                                           layerDigests=[sha(data)])
        except ClientError as e:
            if error_code(e) != "LayerAlreadyExistsException":
                raise

    def mount(self, data):
        """Cross-repository mount from a peer; falls back to an upload (202) as clients do."""
        peer = self.rng.choice(self.peers)
        r = self.v2.post("%s/blobs/uploads/?mount=%s&from=%s" % (self.repo, sha(data), peer))
        if r.status_code == 201:
            self.count("mounted")
            return
        self.check(r, 202, "mount fallback")
        self.count("mount-fallback")
        self.put_blob_v2(data)

    def check(self, r, status, what):
        if r.status_code != status:
            raise AssertionError("worker %d: %s -> %d %s" % (self.i, what, r.status_code,
                                                              r.text[:300]))

    # -- operations ----------------------------------------------------------------------

    def new_image(self):
        layers = self.rng.sample(self.shared, self.rng.randint(1, 3))
        # a blob of an image deleted a moment ago: garbage at once if it was uploaded over a
        # grace period ago, so a gc pass (five a second) may be freeing it right now
        ripe = [b for when, bs in self.dead if time.monotonic() - when < 0.5 for b in bs]
        if ripe and self.rng.random() < 0.6:
            layers.append(self.rng.choice(ripe))
        self.n += 1
        layers.append(("w%d-%d-%d" % (self.i, self.n, self.rng.randrange(1 << 30))).encode()
                      * self.rng.randint(1, 64))
        config = ("cfg w%d n%d %d" % (self.i, self.n, self.rng.randrange(1 << 30))).encode()
        return config, layers

    def push(self):
        config, layers = self.new_image()
        blobs = [config] + layers
        man = manifest_of(config, layers)
        tag = "t%d" % self.rng.randrange(6)
        door = self.rng.choice(("v2", "v2-skip", "ecr", "mount"))
        for attempt in range(ATTEMPTS):
            try:
                for data in blobs:
                    if door == "v2-skip" and attempt == 0:
                        # skopeo's way: HEAD, upload only what is missing
                        if self.v2.head("%s/blobs/%s" % (self.repo, sha(data))).status_code == 200:
                            continue
                    if door == "ecr":
                        self.put_blob_ecr(data)
                    elif door == "mount" and data is not config:
                        self.mount(data)
                    else:
                        self.put_blob_v2(data)
                self.put_manifest(door, man, tag)
                break
            except BlobUnknown:
                self.retries += 1
        else:
            self.problems.append("worker %d: push failed %d times" % (self.i, ATTEMPTS))
            return
        p = Pushed(man, {sha(b): b for b in blobs}, tag)
        self.alive[p.digest] = p
        self.tags[tag] = p.digest
        self.count("push-" + door)

    def put_manifest(self, door, man, tag):
        if door == "ecr":
            try:
                self.ecr.put_image(repositoryName=self.repo, imageManifest=man.decode(),
                                   imageManifestMediaType=OCI_MANIFEST, imageTag=tag)
            except ClientError as e:
                if error_code(e) == "LayersNotFoundException":
                    raise BlobUnknown()
                raise
            return
        r = self.v2.put("%s/manifests/%s" % (self.repo, tag), data=man,
                        headers={"Content-Type": OCI_MANIFEST})
        if r.status_code == 400 and "MANIFEST_BLOB_UNKNOWN" in r.text:
            raise BlobUnknown()
        self.check(r, 201, "manifest PUT")

    def delete(self):
        if not self.alive:
            return
        d = self.rng.choice(sorted(self.alive))
        p = self.alive.pop(d)
        if self.rng.random() < 0.5:
            r = self.v2.delete("%s/manifests/%s" % (self.repo, d))
            self.check(r, 202, "manifest DELETE")
            self.count("delete-v2")
        else:
            out = self.ecr.batch_delete_image(repositoryName=self.repo,
                                              imageIds=[{"imageDigest": d}])
            if out["failures"]:
                raise AssertionError("worker %d: BatchDeleteImage %s" % (self.i, out["failures"]))
            self.count("delete-ecr")
        for t in [t for t, td in self.tags.items() if td == d]:
            del self.tags[t]
        self.dead.append((time.monotonic(), list(p.blobs.values())))
        self.dead = self.dead[-20:]

    def verify(self, p=None):
        if not self.alive:
            return
        p = p or self.alive[self.rng.choice(sorted(self.alive))]
        r = self.v2.get("%s/manifests/%s" % (self.repo, p.digest),
                        headers={"Accept": OCI_MANIFEST})
        if r.status_code != 200 or r.content != p.manifest:
            self.problems.append("worker %d: manifest %s -> %d" % (self.i, p.digest,
                                                                   r.status_code))
            return
        for d, data in p.blobs.items():
            r = self.v2.get("%s/blobs/%s" % (self.repo, d))
            if r.status_code != 200 or r.content != data:
                self.problems.append("worker %d: blob %s of image %s -> %d (%d bytes)"
                                     % (self.i, d, p.digest, r.status_code, len(r.content)))
        for t, d in self.tags.items():
            if d == p.digest:
                r = self.v2.head("%s/manifests/%s" % (self.repo, t),
                                 headers={"Accept": OCI_MANIFEST})
                if r.headers.get("Docker-Content-Digest") != d:
                    self.problems.append("worker %d: tag %s -> %s, expected %s" % (
                        self.i, t, r.headers.get("Docker-Content-Digest"), d))
        self.count("verify")

    def run(self, deadline, stop, errors):
        try:
            while time.monotonic() < deadline and not self.problems and not stop.is_set():
                x = self.rng.random()
                if x < 0.5:
                    self.push()
                elif x < 0.75:
                    self.delete()
                else:
                    self.verify()
        except Exception as e:  # noqa: BLE001
            errors.append("worker %d: %r" % (self.i, e))


class GcStress(OciCase):
    def setUp(self):
        self.b = Berth(name="gc-stress", log_level="info", extra_args=[
            "--gc-interval", "200ms", "--gc-grace", "%gs" % GRACE,
            "--lifecycle-interval", "0"]).start()
        self.addCleanup(self.b.cleanup)

    def loop(self, stop, errors, fn):
        def body():
            try:
                while not stop.is_set():
                    fn()
            except Exception as e:  # noqa: BLE001
                errors.append("%s: %r" % (fn.__name__, e))
        t = threading.Thread(target=body, daemon=True)
        t.start()
        return t

    def test_gc_races_every_writer(self):
        sys.stderr.write("\n[gc-stress] seed %d, %g s, %d workers\n" % (SEED, SECONDS, WORKERS))
        master = random.Random(SEED)
        c = self.b.client()
        c.put_account_setting(name="BLOB_MOUNTING", value="ENABLED")
        repos = [uniq("stress%d" % i) for i in range(WORKERS)]
        for r in repos:
            c.create_repository(repositoryName=r)
        shared = [("shared layer %d " % k).encode() * master.randint(10, 400)
                  for k in range(SHARED_LAYERS)]
        workers = [Worker(self, i, random.Random(master.randrange(1 << 62)), repos[i],
                          [r for r in repos if r != repos[i]], shared)
                   for i in range(WORKERS)]

        stop, errors, fsck_runs, gc_runs = threading.Event(), [], [], []
        data_dir = self.b.data_dir

        cli_rng = random.Random(master.randrange(1 << 62))

        def cli_gc():
            gc_runs.append(gc(data_dir, grace="%gs" % GRACE))
            time.sleep(cli_rng.random() * 0.1)  # leave the clients some CPU

        fsck_rng = random.Random(master.randrange(1 << 62))

        def cli_fsck():
            repair = fsck_rng.random() < 0.2
            f = fsck(data_dir, repair=repair)
            fsck_runs.append(f)
            time.sleep(fsck_rng.random() * 0.1)
            if f.corrupt or f.missing_files or f.missing_refs or f.repaired:
                errors.append("fsck%s reported damage after %.1f s:\n%s" % (
                    " --repair" if repair else "", time.monotonic() - t0,
                    "\n".join(f.lines[:10])))
                stop.set()

        t0 = time.monotonic()
        bg = [self.loop(stop, errors, cli_gc), self.loop(stop, errors, cli_fsck)]
        deadline = t0 + SECONDS
        threads = [threading.Thread(target=w.run, args=(deadline, stop, errors), daemon=True)
                   for w in workers]
        for t in threads:
            t.start()
        for t in threads:
            t.join(SECONDS + 120)
        stop.set()
        for t in bg:
            t.join(120)
        self.assertFalse(any(t.is_alive() for t in threads + bg), "threads still running")
        counts = {}
        for w in workers:
            for k, v in w.counts.items():
                counts[k] = counts.get(k, 0) + v
        sys.stderr.write("[gc-stress] seed %d: %s; %d retries; %d cli gc (%d blobs freed); "
                         "%d fsck\n" % (SEED, sorted(counts.items()),
                                        sum(w.retries for w in workers), len(gc_runs),
                                        sum(g.blobs for g in gc_runs), len(fsck_runs)))
        self.assertEqual([], errors, "seed %d" % SEED)
        self.assertEqual([], [p for w in workers for p in w.problems], "seed %d" % SEED)
        self.assertGreater(len(fsck_runs), 2)
        self.assertGreater(counts.get("push-v2", 0) + counts.get("push-ecr", 0), 10)

        # every image still alive pulls byte-identically; the deleted ones are gone
        for w in workers:
            for p in list(w.alive.values()):
                w.verify(p)
            self.assertEqual([], w.problems, "seed %d" % SEED)
        f = fsck(data_dir)
        self.assertEqual(0, f.rc, f.text())
        gc(data_dir, grace="0s")
        referenced = {d: len(b) for w in workers for p in w.alive.values()
                      for d, b in p.blobs.items()}
        self.assertEqual(referenced, blob_files(data_dir), "seed %d" % SEED)
        self.assertEqual(0, fsck(data_dir).rc)
