"""Crash safety, tested by killing (docs/reliability.md "Crashes").

A server takes 64 concurrent clients - /v2 monolithic and chunked uploads, manifest PUTs, ECR
layer uploads and PutImage, tag moves, deletes through both doors - and is killed with SIGKILL
at a random moment, then started again on the same data directory. Every acknowledged blob,
manifest and tag must be there and byte-identical (deletes acknowledged must have happened);
the one operation each client had in flight may have happened or not, but never half: a
manifest that is visible pulls completely, a blob that is visible has its digest's bytes;
`berth fsck` finds no damage and no orphan. Rounds repeat on the same data directory with
seeded choices. Then the same for `berth gc`, a lifecycle pass and DeleteRepository with force,
each killed in the middle: their changes are all or nothing, nothing still referenced is lost,
and the next pass finishes the work.

Knobs (environment): KILL_ROUNDS (default 2; `make stress` runs 20), KILL_SEED (default random,
printed), KILL_CLIENTS (default 64)."""

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from berthctl import (BERTH_BIN, OCI_CONFIG, OCI_LAYER, OCI_MANIFEST, Berth,  # noqa: E402
                      error_code, new_client, uniq)
from botocore.exceptions import ClientError  # noqa: E402
from lcgclib import blob_files, fsck, gc  # noqa: E402
from ocilib import V2, OciCase  # noqa: E402

ROUNDS = int(os.environ.get("KILL_ROUNDS", "2"))
SEED = int(os.environ.get("KILL_SEED", str(random.SystemRandom().randrange(1 << 30))))
CLIENTS = int(os.environ.get("KILL_CLIENTS", "64"))
REPOS = 8
MIB = 1024 * 1024


def sha(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def manifest_of(config, layers):
    return json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": sha(config), "size": len(config)},
        "layers": [{"mediaType": OCI_LAYER, "digest": sha(l), "size": len(l)}
                   for l in layers]}).encode()


class Image:
    def __init__(self, repo, config, layers):
        self.repo = repo
        self.blobs = {sha(b): b for b in [config] + layers}
        self.manifest = manifest_of(config, layers)
        self.digest = sha(self.manifest)


def pull_problems(v2, repo, img):
    """Problems pulling img from repo completely (empty: manifest and blobs byte-identical)."""
    r = v2.get("%s/manifests/%s" % (repo, img.digest), headers={"Accept": OCI_MANIFEST})
    if r.status_code != 200 or r.content != img.manifest:
        return ["manifest %s -> %d" % (img.digest, r.status_code)]
    out = []
    for d, data in img.blobs.items():
        b = v2.get("%s/blobs/%s" % (repo, d))
        if b.status_code != 200 or b.content != data:
            out.append("blob %s of %s -> %d" % (d, img.digest, b.status_code))
    return out


def sizes_of(imgs):
    """{digest: size} of the blobs of imgs."""
    return {d: len(x) for img in imgs for d, x in img.blobs.items()}


def tag_digest(v2, repo, tag):
    r = v2.head("%s/manifests/%s" % (repo, tag), headers={"Accept": OCI_MANIFEST})
    return r.headers.get("Docker-Content-Digest") if r.status_code == 200 else None


class Client:
    """One of the 64: works in one repository, on tags of its own (c<i>-t<k>), so the expected
    state of everything it touched follows from its own acknowledged operations."""

    def __init__(self, i, rng, url, ecr, repo, shared):
        self.i, self.rng, self.repo, self.shared = i, rng, repo, shared
        self.url, self.ecr = url, ecr
        self.v2 = None
        self.images = {}    # digest -> Image: acknowledged pushes (by tag or digest)
        self.deleted = set()  # digests whose acknowledged delete came after their push
        self.tags = {}      # tag -> digest, from acknowledged operations
        self.blobs = {}     # digest -> bytes: acknowledged blob uploads
        self.pending = None  # the operation in flight when the server died
        self.n = 0
        self.acked = 0
        self.error = None   # an operation that failed before the kill

    def new_image(self):
        self.n += 1
        config = ("config c%d n%d %d" % (self.i, self.n, self.rng.randrange(1 << 40))).encode()
        layers = self.rng.sample(self.shared, 2)
        if self.rng.random() < 0.3:  # chunked pushes of a bigger layer now and then
            layers.append(os.urandom(self.rng.randint(MIB, 3 * MIB)))
        else:
            layers.append(("own c%d n%d " % (self.i, self.n)).encode() * 50)
        return Image(self.repo, config, layers)

    # -- transports --------------------------------------------------------------------

    def check(self, r, status, what):
        if r.status_code != status:
            raise AssertionError("client %d: %s -> %d %s" % (self.i, what, r.status_code,
                                                              r.text[:300]))

    def blob_v2(self, data, chunked):
        d = sha(data)
        if not chunked:
            r = self.v2.post("%s/blobs/uploads/?digest=%s" % (self.repo, d), data=data,
                             headers={"Content-Type": "application/octet-stream"})
            self.check(r, 201, "monolithic upload")
            return
        r = self.v2.post("%s/blobs/uploads/" % self.repo)
        self.check(r, 202, "POST upload")
        loc = r.headers["Location"]
        step = max(1, len(data) // 3)
        for lo in range(0, len(data), step):
            hi = min(len(data), lo + step)
            r = self.v2.patch(loc, data=data[lo:hi], headers={
                "Content-Type": "application/octet-stream",
                "Content-Range": "%d-%d" % (lo, hi - 1)})
            self.check(r, 202, "PATCH")
            loc = r.headers.get("Location", loc)
        r = self.v2.put("%s%sdigest=%s" % (loc, "&" if "?" in loc else "?", d))
        self.check(r, 201, "PUT upload")

    def blob_ecr(self, data):
        up = self.ecr.initiate_layer_upload(repositoryName=self.repo)["uploadId"]
        part = 5 * MIB if len(data) > 5 * MIB else len(data)
        for lo in range(0, len(data), part):
            hi = min(len(data), lo + part)
            self.ecr.upload_layer_part(repositoryName=self.repo, uploadId=up,
                                       partFirstByte=lo, partLastByte=hi - 1,
                                       layerPartBlob=data[lo:hi])
        try:
            self.ecr.complete_layer_upload(repositoryName=self.repo, uploadId=up,
                                           layerDigests=[sha(data)])
        except ClientError as e:
            if error_code(e) != "LayerAlreadyExistsException":
                raise

    # -- operations (each ends with its acknowledgement) -------------------------------

    def op_push(self, door):
        img = self.new_image()
        tag = "c%d-t%d" % (self.i, self.rng.randrange(4))
        self.pending = ("push", img, tag)
        for d, data in img.blobs.items():
            if door == "ecr":
                self.blob_ecr(data)
            else:
                self.blob_v2(data, chunked=len(data) > MIB or self.rng.random() < 0.2)
            self.blobs[d] = data  # each blob upload is acknowledged on its own
        if door == "ecr":
            self.ecr.put_image(repositoryName=self.repo, imageManifest=img.manifest.decode(),
                               imageManifestMediaType=OCI_MANIFEST, imageTag=tag)
        else:
            r = self.v2.put("%s/manifests/%s" % (self.repo, tag), data=img.manifest,
                            headers={"Content-Type": OCI_MANIFEST})
            self.check(r, 201, "manifest PUT")
        self.images[img.digest] = img
        self.tags[tag] = img.digest

    def op_retag(self):
        alive = [d for d in self.images if d not in self.deleted]
        if not alive:
            return
        d = self.rng.choice(sorted(alive))
        tag = "c%d-t%d" % (self.i, self.rng.randrange(4))
        if self.tags.get(tag) == d:
            return  # ECR refuses a put that changes nothing (ImageAlreadyExists)
        self.pending = ("retag", self.images[d], tag)
        if self.rng.random() < 0.5:
            self.ecr.put_image(repositoryName=self.repo,
                               imageManifest=self.images[d].manifest.decode(),
                               imageManifestMediaType=OCI_MANIFEST, imageTag=tag)
        else:
            r = self.v2.put("%s/manifests/%s" % (self.repo, tag), data=self.images[d].manifest,
                            headers={"Content-Type": OCI_MANIFEST})
            self.check(r, 201, "manifest PUT (tag move)")
        self.tags[tag] = d

    def op_delete(self):
        alive = [d for d in self.images if d not in self.deleted]
        if not alive:
            return
        d = self.rng.choice(sorted(alive))
        self.pending = ("delete", self.images[d], None)
        if self.rng.random() < 0.5:
            r = self.v2.delete("%s/manifests/%s" % (self.repo, d))
            self.check(r, 202, "manifest DELETE")
        else:
            out = self.ecr.batch_delete_image(repositoryName=self.repo,
                                              imageIds=[{"imageDigest": d}])
            if out["failures"]:
                raise AssertionError("client %d: %s" % (self.i, out["failures"]))
        self.deleted.add(d)
        for t in [t for t, td in self.tags.items() if td == d]:
            del self.tags[t]

    def run(self, killed):
        self.v2 = V2(self.url, timeout=30)
        try:
            while not killed.is_set():
                x = self.rng.random()
                if x < 0.35:
                    self.op_push("v2")
                elif x < 0.6:
                    self.op_push("ecr")
                elif x < 0.8:
                    self.op_retag()
                else:
                    self.op_delete()
                self.pending = None
                self.acked += 1
        except Exception as e:  # noqa: BLE001
            if not killed.is_set():
                self.error = repr(e)[:300]  # not the kill: a real failure
        finally:
            self.v2.close()

    # -- verification after the restart ------------------------------------------------

    def settle(self, v2):
        """Finds out whether the operation in flight happened and updates the model: it did
        entirely or not at all (a push makes its image and tag in one transaction)."""
        if not self.pending:
            return []
        kind, img, tag = self.pending
        self.pending = None
        there = v2.head("%s/manifests/%s" % (self.repo, img.digest),
                        headers={"Accept": OCI_MANIFEST}).status_code == 200
        problems = []
        if kind == "push":
            if there:
                self.images[img.digest] = img
                if tag_digest(v2, self.repo, tag) == img.digest:
                    self.tags[tag] = img.digest
                else:
                    problems.append("push of %s by tag %s: image without its tag"
                                    % (img.digest, tag))
            # blobs of an interrupted push that are visible have their digest's bytes
            for d in img.blobs:
                b = v2.get("%s/blobs/%s" % (self.repo, d))
                if b.status_code == 200 and sha(b.content) != d:
                    problems.append("blob %s visible with other bytes" % d)
        elif kind == "retag":
            if tag_digest(v2, self.repo, tag) == img.digest:
                self.tags[tag] = img.digest
        elif kind == "delete" and not there:
            self.deleted.add(img.digest)
            for t in [t for t, td in self.tags.items() if td == img.digest]:
                del self.tags[t]
        return problems

    def verify(self, v2):
        problems = self.settle(v2)
        for d, img in self.images.items():
            if d in self.deleted:
                r = v2.head("%s/manifests/%s" % (self.repo, d), headers={"Accept": OCI_MANIFEST})
                if r.status_code != 404:
                    problems.append("deleted %s -> %d" % (d, r.status_code))
            else:
                problems += pull_problems(v2, self.repo, img)
        for d, data in self.blobs.items():
            r = v2.get("%s/blobs/%s" % (self.repo, d))
            if r.status_code != 200 or r.content != data:
                problems.append("acknowledged blob %s -> %d" % (d, r.status_code))
        for t, d in self.tags.items():
            got = tag_digest(v2, self.repo, t)
            if got != d:
                problems.append("tag %s -> %s, expected %s" % (t, got, d))
        return problems


class CrashKill(OciCase):
    def start(self, data_dir=None, extra=()):
        b = Berth(name="kill", data_dir=data_dir, log_level="info",
                  extra_args=["--gc-interval", "0", "--lifecycle-interval", "0"] + list(extra))
        b.start()
        self.addCleanup(b.cleanup)
        return b

    def restart(self, b):
        b._kill()
        b.start(port=b.port)
        return b

    def assertClean(self, data_dir):
        f = fsck(data_dir)
        self.assertEqual(0, f.rc, f.text())
        self.assertEqual((0, 0, 0, 0), (f.corrupt, f.missing_files, f.missing_refs, f.orphans))

    def test_sigkill_under_64_clients(self):
        sys.stderr.write("\n[kill] seed %d, %d rounds, %d clients\n" % (SEED, ROUNDS, CLIENTS))
        master = random.Random(SEED)
        b = self.start()
        ecr = b.client()
        repos = [uniq("kill%d" % k) for k in range(REPOS)]
        for r in repos:
            ecr.create_repository(repositoryName=r)
        shared = [("shared %d " % k).encode() * master.randint(100, 3000) for k in range(12)]
        clients = [Client(i, random.Random(master.randrange(1 << 62)), b.url, new_client(b.url),
                          repos[i % REPOS], shared) for i in range(CLIENTS)]
        for rnd in range(ROUNDS):
            killed = threading.Event()
            threads = [threading.Thread(target=c.run, args=(killed,), daemon=True)
                       for c in clients]
            for t in threads:
                t.start()
            time.sleep(master.uniform(1.0, 4.0))
            # still serving under the load (a server that hangs would pass every other check)
            self.assertTrue(b.healthy(), "seed %d round %d: no answer under load" % (SEED, rnd))
            killed.set()
            os.kill(b.proc.pid, signal.SIGKILL)
            for t in threads:
                t.join(60)
            self.assertFalse(any(t.is_alive() for t in threads), "clients hang")
            self.assertEqual([], [(c.i, c.error) for c in clients if c.error],
                             "operations failed before the kill")
            acked = sum(c.acked for c in clients)
            self.restart(b)  # the same port: the clients' URLs stay valid
            problems = []

            def check(part):
                v2 = V2(b.url)
                try:
                    for c in part:
                        problems.extend("client %d: %s" % (c.i, p) for p in c.verify(v2))
                finally:
                    v2.close()
            vs = [threading.Thread(target=check, args=(clients[j::8],)) for j in range(8)]
            for t in vs:
                t.start()
            for t in vs:
                t.join(300)
            sys.stderr.write("[kill] round %d: %d operations acknowledged so far, %d images\n"
                             % (rnd, acked, sum(len(c.images) for c in clients)))
            self.assertEqual([], problems[:20], "seed %d round %d" % (SEED, rnd))
            self.assertClean(b.data_dir)
        self.assertGreater(sum(c.acked for c in clients), CLIENTS)
        # and gc, with nothing in flight, frees exactly the unreferenced blobs
        gc(b.data_dir, grace="0s")
        v2 = V2(b.url)
        self.addCleanup(v2.close)
        for c in clients:
            for d, img in c.images.items():
                if d not in c.deleted:
                    self.assertEqual([], pull_problems(v2, c.repo, img))
        self.assertClean(b.data_dir)

    # -- maintenance passes killed in the middle -----------------------------------------

    def push_many(self, b, repo, n, shared=(), tag_every=0):
        """n small images into repo over /v2 (8 threads); returns [Image]."""
        rng = random.Random(SEED + n)
        imgs = [Image(repo, ("cfg %s %d %d" % (repo, k, rng.randrange(1 << 40))).encode(),
                      list(shared) + [("layer %s %d " % (repo, k)).encode() * 20])
                for k in range(n)]

        def worker(part):
            v2 = V2(b.url)
            try:
                for k, img in part:
                    for d, data in img.blobs.items():
                        v2.push_blob(repo, data)
                    tag = "t%d" % k if tag_every and k % tag_every == 0 else img.digest
                    v2.push_manifest(repo, tag, img.manifest, OCI_MANIFEST)
            finally:
                v2.close()
        items = list(enumerate(imgs))
        ts = [threading.Thread(target=worker, args=(items[j::8],)) for j in range(8)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(300)
        return imgs

    def test_sigkill_during_gc(self):
        b = self.start()
        c = b.client()
        keep_repo, drop_repo = uniq("keep"), uniq("drop")
        for r in (keep_repo, drop_repo):
            c.create_repository(repositoryName=r)
        shared = [b"shared layer " * 500]
        keep = self.push_many(b, keep_repo, 20, shared)
        self.push_many(b, drop_repo, 400, shared)
        c.delete_repository(repositoryName=drop_repo, force=True)
        rng = random.Random(SEED)
        kills = 0
        for attempt in range(5):
            p = subprocess.Popen([BERTH_BIN, "gc", "--data-dir", b.data_dir, "--grace", "0s"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            time.sleep(rng.uniform(0.01, 0.15))
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
                kills += 1
            p.communicate(timeout=60)
            v2 = V2(b.url)
            for img in keep:
                self.assertEqual([], pull_problems(v2, keep_repo, img))
            v2.close()
            self.assertClean(b.data_dir)
        self.assertGreater(kills, 0, "gc always finished before the kill")
        gc(b.data_dir, grace="0s")
        self.assertEqual(sizes_of(keep), blob_files(b.data_dir))
        self.assertClean(b.data_dir)

    def test_sigkill_during_lifecycle_pass(self):
        """The whole pass is one write transaction: after a kill, a repository's images are
        either all there or exactly the policy's survivors."""
        b = self.start()
        c = b.client()
        repo = uniq("lc")
        c.create_repository(repositoryName=repo)
        imgs = self.push_many(b, repo, 300, tag_every=10)
        c.put_lifecycle_policy(repositoryName=repo, lifecyclePolicyText=json.dumps({"rules": [
            {"rulePriority": 1, "selection": {"tagStatus": "untagged",
                                              "countType": "imageCountMoreThan",
                                              "countNumber": 5},
             "action": {"type": "expire"}}]}))
        before = {img.digest for img in imgs}
        rng = random.Random(SEED)
        outcomes = set()
        for attempt in range(4):
            p = subprocess.Popen([BERTH_BIN, "lifecycle", "--data-dir", b.data_dir,
                                  "--repo", repo], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE)
            time.sleep(rng.uniform(0.0, 0.2))
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
            p.communicate(timeout=60)
            got = {d["imageDigest"] for page in c.get_paginator("describe_images").paginate(
                repositoryName=repo) for d in page["imageDetails"]}
            tagged = {img.digest for k, img in enumerate(imgs) if k % 10 == 0}
            if got == before:
                outcomes.add("none")
            else:
                self.assertEqual(30 + 5, len(got), "a partial pass is visible")
                self.assertTrue(tagged <= got)
                outcomes.add("all")
                break
        self.assertClean(b.data_dir)
        gc(b.data_dir, grace="0s")
        v2 = V2(b.url)
        self.addCleanup(v2.close)
        for img in imgs:
            if img.digest in got:
                self.assertEqual([], pull_problems(v2, repo, img))
        self.assertClean(b.data_dir)

    def test_sigkill_during_force_delete_repository(self):
        b = self.start()
        c = b.client()
        doomed, other = uniq("doomed"), uniq("other")
        for r in (doomed, other):
            c.create_repository(repositoryName=r)
        shared = [b"shared between repositories " * 300]
        mine = self.push_many(b, doomed, 300, shared)
        theirs = self.push_many(b, other, 10, shared)
        rng = random.Random(SEED)
        t = threading.Thread(target=lambda: self._try(lambda: c.delete_repository(
            repositoryName=doomed, force=True)), daemon=True)
        t.start()
        time.sleep(rng.uniform(0.0, 0.05))
        self.restart(b)
        t.join(60)
        c = b.client()
        names = {r["repositoryName"] for r in c.describe_repositories()["repositories"]}
        v2 = V2(b.url)
        self.addCleanup(v2.close)
        if doomed in names:
            got = {d["imageDigest"] for page in c.get_paginator("describe_images").paginate(
                repositoryName=doomed) for d in page["imageDetails"]}
            self.assertEqual({i.digest for i in mine}, got, "a half-deleted repository")
        for img in theirs:
            self.assertEqual([], pull_problems(v2, other, img))
        self.assertClean(b.data_dir)
        if doomed in names:
            c.delete_repository(repositoryName=doomed, force=True)
        gc(b.data_dir, grace="0s")
        self.assertEqual(sizes_of(theirs), blob_files(b.data_dir))
        self.assertClean(b.data_dir)

    @staticmethod
    def _try(fn):
        try:
            fn()
        except Exception:  # noqa: BLE001 - the server died under the call
            pass
