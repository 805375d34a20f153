"""Concurrent clients against one server: racing tag writes, parallel uploads of one blob,
racing repository creation, mixed load, more requests than pooled database connections."""

import os
import sys
import threading

import requests
from botocore.exceptions import ClientError

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from berthctl import (MIB, BerthCase, blob_path, digest_of, error_code,  # noqa: E402
                      make_image, module_server, new_client, put, rand_bytes, uniq, upload_blob)

B = None
JOIN_TIMEOUT = 120


def setUpModule():
    global B
    B = module_server(name="concurrency")


def run_parallel(n, fn):
    """Run fn(i, client) in n threads released together; return list of (result, exc)."""
    barrier = threading.Barrier(n, timeout=60)
    clients = [new_client(B.url) for _ in range(n)]
    out = [None] * n

    def worker(i):
        try:
            barrier.wait()
            out[i] = (fn(i, clients[i]), None)
        except Exception as e:  # noqa: BLE001 - reported by the caller
            out[i] = (None, e)

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(JOIN_TIMEOUT)
    for c in clients:
        c.close()
    if any(t.is_alive() for t in threads):
        raise AssertionError("worker threads did not finish within %ss" % JOIN_TIMEOUT)
    return out


class Races(BerthCase):
    def setUp(self):
        self.c = B.client()

    def test_ten_puts_same_tag(self):
        repo = uniq("race-tag")
        self.c.create_repository(repositoryName=repo)
        imgs = [make_image(self.c, repo) for _ in range(10)]
        out = run_parallel(10, lambda i, c: put(c, repo, imgs[i], "hot"))
        errors = [e for _, e in out if e is not None]
        self.assertEqual([], errors, "mutable tag: every PutImage must succeed")
        details = self.c.describe_images(repositoryName=repo)["imageDetails"]
        self.assertEqual(10, len(details), "moved-off images stay (untagged)")
        holders = [d for d in details if "hot" in d.get("imageTags", [])]
        self.assertEqual(1, len(holders), details)
        untagged = [d for d in details if not d.get("imageTags")]
        self.assertEqual(9, len(untagged))
        tagged = self.c.list_images(repositoryName=repo, filter={"tagStatus": "TAGGED"})
        self.assertEqual([{"imageDigest": holders[0]["imageDigest"], "imageTag": "hot"}],
                         tagged["imageIds"])
        got = self.c.batch_get_image(repositoryName=repo, imageIds=[{"imageTag": "hot"}])
        self.assertEqual(holders[0]["imageDigest"], got["images"][0]["imageId"]["imageDigest"])
        self.assertEqual(digest_of(got["images"][0]["imageManifest"]),
                         holders[0]["imageDigest"])
        self.assertTrue(B.healthy())

    def test_ten_puts_same_immutable_tag(self):
        repo = uniq("race-imm")
        self.c.create_repository(repositoryName=repo, imageTagMutability="IMMUTABLE")
        imgs = [make_image(self.c, repo) for _ in range(10)]
        out = run_parallel(10, lambda i, c: put(c, repo, imgs[i], "frozen"))
        ok = [i for i, (_, e) in enumerate(out) if e is None]
        codes = sorted(error_code(e) for _, e in out if isinstance(e, ClientError))
        self.assertEqual(1, len(ok), out)
        self.assertEqual(["ImageTagAlreadyExistsException"] * 9, codes)
        details = self.c.describe_images(repositoryName=repo)["imageDetails"]
        self.assertEqual([imgs[ok[0]].digest], [d["imageDigest"] for d in details])
        self.assertEqual(["frozen"], details[0]["imageTags"])

    def test_same_manifest_same_tag_in_parallel(self):
        repo = uniq("race-same")
        self.c.create_repository(repositoryName=repo)
        img = make_image(self.c, repo)
        out = run_parallel(8, lambda i, c: put(c, repo, img, "t"))
        ok = [r for r, e in out if e is None]
        codes = [error_code(e) for _, e in out if isinstance(e, ClientError)]
        self.assertEqual(1, len(ok), out)
        self.assertEqual(["ImageAlreadyExistsException"] * 7, codes)
        self.assertEqual([{"imageDigest": img.digest, "imageTag": "t"}],
                         self.c.list_images(repositoryName=repo)["imageIds"])

    def test_eight_parallel_uploads_of_one_blob(self):
        repo = uniq("race-blob")
        self.c.create_repository(repositoryName=repo)
        data = rand_bytes(5 * MIB) + rand_bytes(MIB + 3)
        d = digest_of(data)

        def upload(i, c):
            return upload_blob(c, repo, data, part_sizes=[5 * MIB, MIB + 3])

        out = run_parallel(8, upload)
        ok = [r for r, e in out if e is None]
        other = [e for _, e in out if e is not None and not (
            isinstance(e, ClientError) and error_code(e) == "LayerAlreadyExistsException")]
        self.assertEqual([], other, "only success or LayerAlreadyExistsException allowed")
        self.assertGreaterEqual(len(ok), 1)
        self.assertTrue(all(r == d for r in ok))
        with open(blob_path(B.data_dir, d), "rb") as f:
            self.assertEqual(d, digest_of(f.read()), "blob file content")
        lay = self.c.batch_check_layer_availability(repositoryName=repo, layerDigests=[d])[
            "layers"][0]
        self.assertEqual("AVAILABLE", lay["layerAvailability"])
        self.assertEqual(len(data), lay["layerSize"])
        # one file holds the blob: no duplicate, temp or partial files next to it
        stored = [n for n in os.listdir(os.path.dirname(blob_path(B.data_dir, d)))
                  if n.startswith(d.split(":")[1])]
        self.assertEqual([os.path.basename(blob_path(B.data_dir, d))], stored)

    def test_same_blob_parallel_into_different_repos(self):
        repos = [uniq("race-r%d" % i) for i in range(6)]
        for r in repos:
            self.c.create_repository(repositoryName=r)
        data = rand_bytes(3 * MIB + 5)
        out = run_parallel(6, lambda i, c: upload_blob(c, repos[i], data))
        self.assertEqual([None] * 6, [e for _, e in out])
        for r in repos:
            lay = self.c.batch_check_layer_availability(repositoryName=r,
                                                        layerDigests=[digest_of(data)])
            self.assertEqual("AVAILABLE", lay["layers"][0]["layerAvailability"])

    def test_racing_create_repository(self):
        name = uniq("race-create")
        out = run_parallel(8, lambda i, c: c.create_repository(repositoryName=name))
        ok = [r for r, e in out if e is None]
        codes = [error_code(e) for _, e in out if isinstance(e, ClientError)]
        self.assertEqual(1, len(ok), out)
        self.assertEqual(["RepositoryAlreadyExistsException"] * 7, codes)
        self.assertEqual(1, len(self.c.describe_repositories(repositoryNames=[name])[
            "repositories"]))

    def test_racing_delete_and_push(self):
        name = uniq("race-del")
        self.c.create_repository(repositoryName=name)
        imgs = [make_image(self.c, name) for _ in range(6)]

        def work(i, c):
            if i < 6:
                return put(c, name, imgs[i], "t%d" % i)
            return c.delete_repository(repositoryName=name, force=True)

        out = run_parallel(7, work)
        for _, e in out:
            if e is not None:
                self.assertIsInstance(e, ClientError)
                self.assertIn(error_code(e), ("RepositoryNotFoundException",
                                              "LayersNotFoundException"), e)
        self.assertIsNone(out[6][1], "the forced delete must succeed")
        self.assertClientError("RepositoryNotFoundException", self.c.describe_repositories,
                               repositoryNames=[name])
        self.assertTrue(B.healthy())

    def test_mixed_load(self):
        repos = [uniq("load%d" % i) for i in range(4)]
        for r in repos:
            self.c.create_repository(repositoryName=r)

        def work(i, c):
            repo = repos[i % len(repos)]
            for j in range(5):
                img = make_image(c, repo, layer_size=2000 + j)
                put(c, repo, img, "w%d-%d" % (i, j))
                put(c, repo, img, "latest-%d" % (i % 3))
                c.list_images(repositoryName=repo)
                c.describe_images(repositoryName=repo, maxResults=5)
                c.batch_get_image(repositoryName=repo, imageIds=[{"imageTag": "w%d-%d" % (i, j)}])
                if j % 2:
                    c.batch_delete_image(repositoryName=repo,
                                         imageIds=[{"imageTag": "w%d-%d" % (i, j)}])
            return True

        out = run_parallel(12, work)
        self.assertEqual([None] * 12, [e for _, e in out])
        total = 0
        for r in repos:
            ids = self.c.list_images(repositoryName=r)["imageIds"]
            tags = [i["imageTag"] for i in ids if "imageTag" in i]
            self.assertEqual(len(tags), len(set(tags)), "a tag must belong to one image")
            total += len([t for t in tags if t.startswith("w")])
        self.assertEqual(12 * 3, total)
        self.assertTrue(B.healthy())


class Pool(BerthCase):
    """More concurrent requests than pooled database connections (16)."""

    def test_upload_starts_past_the_pool_size(self):
        # An upload start holds a pooled connection while it checks the storage reserve; the
        # check once took a second connection from the pool, so 16 starts at once (the check
        # is cached for 100 ms, then made by everyone who arrives) each held one and waited for
        # another, and every request of the server hung behind them.
        c = B.client()
        repo = uniq("pool")
        c.create_repository(repositoryName=repo)

        def work(i, ecr):
            with requests.Session() as s:
                for k in range(25):
                    if (i + k) % 2:
                        ecr.initiate_layer_upload(repositoryName=repo)
                    else:
                        r = s.post("%s/v2/%s/blobs/uploads/" % (B.url, repo), timeout=60)
                        assert r.status_code == 202, (r.status_code, r.text[:200])
            return True

        out = run_parallel(48, work)
        self.assertEqual([None] * 48, [e for _, e in out])
        self.assertTrue(B.healthy())
