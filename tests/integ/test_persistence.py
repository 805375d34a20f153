"""Restart persistence and SIGTERM handling (issue: "Persistent across restarts").

Each test owns its server because it restarts or signals it."""

import json
import os
import sqlite3
import sys
import threading
import time

import requests

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from berthctl import (ACCOUNT, MIB, Berth, BerthCase, blob_path, digest_of,  # noqa: E402
                      make_image, push_image, push_index, put, rand_bytes, upload_blob, desc,
                      docker_manifest, oci_manifest, DOCKER_LAYER, DOCKER_MANIFEST,
                      OCI_MANIFEST, Img)

POLICY = ('{"Version":"2012-10-17","Statement":[{"Sid":"p","Effect":"Allow",'
          '"Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"ecr:BatchGetImage"}]}')
LIFECYCLE = ('{"rules":[{"rulePriority":1,"selection":{"tagStatus":"untagged",'
             '"countType":"sinceImagePushed","countUnit":"days","countNumber":3},'
             '"action":{"type":"expire"}}]}')
REG_POLICY = json.dumps({"Version": "2012-10-17", "Statement": [{
    "Sid": "r", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::210987654321:root"},
    "Action": ["ecr:ReplicateImage"], "Resource": "arn:aws:ecr:us-east-1:%s:repository/*"
    % ACCOUNT}]})


class Persistence(BerthCase):
    def setUp(self):
        self.b = Berth(name="persist").start()
        self.addCleanup(self.b.cleanup)

    def populate(self, c):
        st = {}
        st["repo"] = "persist/app"
        created = c.create_repository(
            repositoryName=st["repo"], imageTagMutability="IMMUTABLE_WITH_EXCLUSION",
            imageTagMutabilityExclusionFilters=[{"filterType": "WILDCARD", "filter": "dev-*"}],
            imageScanningConfiguration={"scanOnPush": True},
            encryptionConfiguration={"encryptionType": "KMS", "kmsKey": "alias/k"},
            tags=[{"Key": "team", "Value": "a"}, {"Key": "cost", "Value": "b"}])["repository"]
        st["created"] = created
        c.set_repository_policy(repositoryName=st["repo"], policyText=POLICY)
        c.put_lifecycle_policy(repositoryName=st["repo"], lifecyclePolicyText=LIFECYCLE)
        # images: a multi-part layer, tags, an untagged image and an index
        big = rand_bytes(5 * MIB) + rand_bytes(4096)
        base = make_image(c, st["repo"], kind="docker", nlayers=2)
        upload_blob(c, st["repo"], big, part_sizes=[5 * MIB, 4096])
        text = docker_manifest(base.config[0], [d for d, _ in base.layers]
                               + [desc(DOCKER_LAYER, big)], indent=3)
        img = Img(text, DOCKER_MANIFEST, base.config, base.layers + [(desc(DOCKER_LAYER, big),
                                                                     big)])
        put(c, st["repo"], img, "v1")
        put(c, st["repo"], img, "latest")
        st["img"] = img
        st["untagged"] = push_image(c, st["repo"], kind="oci")
        child = push_image(c, st["repo"], kind="oci", arch="arm64")
        st["index"] = push_index(c, st["repo"], [st["untagged"], child], tag="dev-multi")
        st["child"] = child
        # a blob uploaded but unreferenced, and an unfinished upload
        st["loose"] = upload_blob(c, st["repo"], b"loose blob")
        # second repository, deleted repository, registry-level state
        c.create_repository(repositoryName="persist-other")
        c.create_repository(repositoryName="persist-gone")
        c.delete_repository(repositoryName="persist-gone")
        c.put_registry_policy(policyText=REG_POLICY)
        st["repl"] = {"rules": [{"destinations": [{"region": "eu-west-1",
                                                   "registryId": ACCOUNT}]}]}
        c.put_replication_configuration(replicationConfiguration=st["repl"])
        st["scan"] = {"scanType": "ENHANCED", "rules": [{
            "scanFrequency": "CONTINUOUS_SCAN",
            "repositoryFilters": [{"filter": "persist", "filterType": "WILDCARD"}]}]}
        c.put_registry_scanning_configuration(**st["scan"])
        c.put_account_setting(name="BLOB_MOUNTING", value="ENABLED")
        eu = self.b.client(region="eu-west-1")
        eu.create_repository(repositoryName="persist-eu")
        st["pushed_at"] = c.describe_images(repositoryName=st["repo"], imageIds=[
            {"imageTag": "v1"}])["imageDetails"][0]["imagePushedAt"]
        return st

    def verify(self, c, st):
        repo = st["repo"]
        r = c.describe_repositories(repositoryNames=[repo])["repositories"][0]
        for k in ("repositoryArn", "registryId", "repositoryUri", "createdAt",
                  "imageTagMutability", "imageTagMutabilityExclusionFilters",
                  "imageScanningConfiguration", "encryptionConfiguration"):
            self.assertEqual(st["created"][k], r[k], k)
        names = {x["repositoryName"] for x in c.describe_repositories()["repositories"]}
        self.assertEqual({repo, "persist-other"}, names)
        self.assertEqual([{"Key": "team", "Value": "a"}, {"Key": "cost", "Value": "b"}],
                         c.list_tags_for_resource(resourceArn=r["repositoryArn"])["tags"])
        self.assertEqual(json.loads(POLICY), json.loads(
            c.get_repository_policy(repositoryName=repo)["policyText"]))
        self.assertEqual(json.loads(LIFECYCLE), json.loads(
            c.get_lifecycle_policy(repositoryName=repo)["lifecyclePolicyText"]))
        # images, tags, exact manifests
        img = st["img"]
        got = c.batch_get_image(repositoryName=repo, imageIds=[{"imageTag": "latest"}])
        self.assertEqual(img.manifest, got["images"][0]["imageManifest"])
        self.assertEqual(DOCKER_MANIFEST, got["images"][0]["imageManifestMediaType"])
        details = {d["imageDigest"]: d for d in
                   c.describe_images(repositoryName=repo)["imageDetails"]}
        self.assertEqual({img.digest, st["untagged"].digest, st["child"].digest,
                          st["index"].digest}, set(details))
        self.assertEqual(["v1", "latest"], details[img.digest]["imageTags"])
        self.assertNotIn("imageTags", details[st["untagged"].digest])
        self.assertEqual(img.size, details[img.digest]["imageSizeInBytes"])
        self.assertEqual(st["pushed_at"], details[img.digest]["imagePushedAt"])
        self.assertEqual(st["child"].size if st["child"].size > st["untagged"].size
                         else st["untagged"].size, details[st["index"].digest]["imageSizeInBytes"])
        # index still protects its children
        r = c.batch_delete_image(repositoryName=repo,
                                 imageIds=[{"imageDigest": st["child"].digest}])
        self.assertEqual("ImageReferencedByManifestList", r["failures"][0]["failureCode"])
        # mutability still enforced
        other = make_image(c, repo)
        self.assertClientError("ImageTagAlreadyExistsException", put, c, repo, other, "v1")
        # blobs: still downloadable, byte-identical, and on disk
        for d, data in [img.config] + img.layers:
            url = c.get_download_url_for_layer(repositoryName=repo,
                                               layerDigest=d["digest"])["downloadUrl"]
            resp = requests.get(url, timeout=60)
            self.assertEqual(200, resp.status_code)
            self.assertEqual(digest_of(data), digest_of(resp.content))
            with open(blob_path(self.b.data_dir, d["digest"]), "rb") as f:
                self.assertEqual(data, f.read())
        self.assertClientError("LayerInaccessibleException", c.get_download_url_for_layer,
                               repositoryName=repo, layerDigest=st["loose"])
        avail = c.batch_check_layer_availability(repositoryName=repo,
                                                 layerDigests=[st["loose"]])["layers"][0]
        self.assertEqual("AVAILABLE", avail["layerAvailability"])
        # registry-level state
        self.assertEqual(json.loads(REG_POLICY), json.loads(c.get_registry_policy()["policyText"]))
        self.assertEqual(st["repl"], c.describe_registry()["replicationConfiguration"])
        self.assertEqual(st["scan"], c.get_registry_scanning_configuration()[
            "scanningConfiguration"])
        self.assertEqual("ENABLED", c.get_account_setting(name="BLOB_MOUNTING")["value"])
        self.assertEqual(["persist-eu"], [x["repositoryName"] for x in self.b.client(
            region="eu-west-1").describe_repositories()["repositories"]])
        # the deleted repository stays deleted
        self.assertClientError("RepositoryNotFoundException", c.describe_repositories,
                               repositoryNames=["persist-gone"])

    def test_restart_keeps_everything(self):
        c = self.b.client()
        st = self.populate(c)
        self.verify(c, st)
        self.b.restart()
        c = self.b.client()
        self.verify(c, st)
        # still writable after restart, and a second restart keeps the new state too
        push_image(c, "persist-other", tag="after")
        self.b.restart()
        c = self.b.client()
        self.verify(c, st)
        self.assertEqual(["after"], [i.get("imageTag") for i in c.list_images(
            repositoryName="persist-other")["imageIds"]])

    def test_reopen_data_dir_with_new_server(self):
        c = self.b.client()
        repo = "reopen"
        c.create_repository(repositoryName=repo)
        img = push_image(c, repo, tag="v1")
        data_dir = self.b.data_dir
        self.b.stop()
        b2 = Berth(name="persist2", data_dir=data_dir).start()
        try:
            c2 = b2.client()
            got = c2.batch_get_image(repositoryName=repo, imageIds=[{"imageTag": "v1"}])
            self.assertEqual(img.manifest, got["images"][0]["imageManifest"])
        finally:
            b2.cleanup()  # removes only its own temp dir; the data dir belongs to self.b

    def test_state_changes_persist(self):
        c = self.b.client()
        c.create_repository(repositoryName="chg")
        a = push_image(c, "chg", tag="a")
        put(c, "chg", a, "b")
        c.batch_delete_image(repositoryName="chg", imageIds=[{"imageTag": "a"}])
        c.put_image_tag_mutability(repositoryName="chg", imageTagMutability="IMMUTABLE")
        c.set_repository_policy(repositoryName="chg", policyText=POLICY)
        c.delete_repository_policy(repositoryName="chg")
        arn = c.describe_repositories(repositoryNames=["chg"])["repositories"][0]["repositoryArn"]
        c.tag_resource(resourceArn=arn, tags=[{"Key": "x", "Value": "1"}])
        c.untag_resource(resourceArn=arn, tagKeys=["x"])
        c.tag_resource(resourceArn=arn, tags=[{"Key": "y", "Value": "2"}])
        self.b.restart()
        c = self.b.client()
        self.assertEqual([{"imageDigest": a.digest, "imageTag": "b"}],
                         c.list_images(repositoryName="chg")["imageIds"])
        self.assertEqual("IMMUTABLE", c.describe_repositories(repositoryNames=["chg"])[
            "repositories"][0]["imageTagMutability"])
        self.assertClientError("RepositoryPolicyNotFoundException", c.get_repository_policy,
                               repositoryName="chg")
        self.assertEqual([{"Key": "y", "Value": "2"}],
                         c.list_tags_for_resource(resourceArn=arn)["tags"])


class Sigterm(BerthCase):
    def test_sigterm_exits_zero_and_data_persists(self):
        b = Berth(name="sigterm").start()
        try:
            c = b.client()
            c.create_repository(repositoryName="term")
            img = push_image(c, "term", tag="v1")
            # keep an idle keep-alive connection open while signalling
            c.describe_repositories()
            rc, took = b.terminate(timeout=10)
            self.assertEqual(0, rc, b.log_tail())
            self.assertLess(took, 5.0, "SIGTERM took %.1fs" % took)
            b.start()
            got = b.client().batch_get_image(repositoryName="term", imageIds=[{"imageTag": "v1"}])
            self.assertEqual(img.manifest, got["images"][0]["imageManifest"])
        finally:
            b.cleanup()

    def test_sigterm_with_open_upload(self):
        b = Berth(name="sigterm-upload").start()
        try:
            c = b.client()
            c.create_repository(repositoryName="term")
            uid = c.initiate_layer_upload(repositoryName="term")["uploadId"]
            c.upload_layer_part(repositoryName="term", uploadId=uid, partFirstByte=0,
                                partLastByte=5 * MIB - 1, layerPartBlob=rand_bytes(5 * MIB))
            rc, took = b.terminate(timeout=10)
            self.assertEqual(0, rc, b.log_tail())
            self.assertLess(took, 5.0)
            b.start()
            self.assertEqual([], b.client().list_images(repositoryName="term")["imageIds"])
        finally:
            b.cleanup()

    def test_sigterm_during_requests(self):
        b = Berth(name="sigterm-busy").start()
        try:
            c = b.client()
            c.create_repository(repositoryName="busy")
            stop = threading.Event()
            done = []
            answered = threading.Semaphore(0)  # one release per thread, after its first call

            def hammer():
                from berthctl import new_client
                cl = new_client(b.url)
                n = 0
                while not stop.is_set():
                    try:
                        cl.describe_repositories()
                        n += 1
                        if n == 1:
                            answered.release()
                    except Exception:
                        break
                done.append(n)

            threads = [threading.Thread(target=hammer, daemon=True) for _ in range(4)]
            for t in threads:
                t.start()
            # every thread is sending requests (making a boto3 client alone can take a second
            # on a loaded machine) before the signal arrives
            for _ in threads:
                self.assertTrue(answered.acquire(timeout=30))
            time.sleep(0.2)
            rc, took = b.terminate(timeout=10)
            stop.set()
            for t in threads:
                t.join(15)
            self.assertEqual(0, rc, b.log_tail())
            self.assertLess(took, 5.0)
            self.assertTrue(sum(done) > 0)
            b.start()
            self.assertEqual(["busy"], [r["repositoryName"] for r in
                                        b.client().describe_repositories()["repositories"]])
        finally:
            b.cleanup()

    def test_sigkill_during_puts_keeps_every_acknowledged_image(self):
        # Concurrent PutImages share group commits (and the writer's log goes to the file in
        # one write per commit); a process crash right in the middle must lose nothing that
        # was answered, and leave a database SQLite finds intact.
        b = Berth(name="sigkill-puts").start()
        try:
            c = b.client()
            c.create_repository(repositoryName="crash")
            base = make_image(c, "crash", kind="oci")
            acked = {}
            lock = threading.Lock()
            stop = threading.Event()
            answered = threading.Semaphore(0)

            def hammer(t):
                from berthctl import new_client
                cl = new_client(b.url)
                for i in range(100000):
                    if stop.is_set():
                        return
                    text = oci_manifest(base.config[0],
                                        [d for d, _ in base.layers],
                                        annotations={"n": "%d-%d" % (t, i)})
                    tag = "t%d-%d" % (t, i)
                    try:
                        r = cl.put_image(repositoryName="crash", imageManifest=text,
                                         imageTag=tag, imageManifestMediaType=OCI_MANIFEST)
                    except Exception:
                        return  # the server is gone
                    with lock:
                        acked[tag] = r["image"]["imageId"]["imageDigest"]
                    if i == 5:
                        answered.release()

            threads = [threading.Thread(target=hammer, args=(t,), daemon=True)
                       for t in range(8)]
            for t in threads:
                t.start()
            for _ in threads:
                self.assertTrue(answered.acquire(timeout=60))
            time.sleep(0.5)
            b._kill()  # SIGKILL: whatever the process held in memory is gone
            stop.set()
            for t in threads:
                t.join(30)
            with lock:
                acked = dict(acked)
            self.assertGreater(len(acked), 48)
            b.start()
            c = b.client()
            tags = list(acked)
            for i in range(0, len(tags), 100):
                r = c.batch_get_image(repositoryName="crash",
                                      imageIds=[{"imageTag": t} for t in tags[i:i + 100]])
                self.assertEqual([], r["failures"])
                got = {im["imageId"]["imageTag"]: im["imageId"]["imageDigest"]
                       for im in r["images"]}
                self.assertEqual({t: acked[t] for t in tags[i:i + 100]}, got)
            rc, _ = b.terminate()
            self.assertEqual(0, rc, b.log_tail())
            con = sqlite3.connect(os.path.join(b.data_dir, "berth.db"))
            try:
                self.assertEqual([("ok",)], con.execute("PRAGMA integrity_check").fetchall())
            finally:
                con.close()
        finally:
            b.cleanup()
