"""podman against the /v2 door (rootful, vfs storage in a temp dir): pull an image pushed with
skopeo, push it to another repository (podman recompresses the layers: the pushed layers must
decompress to the original diff_ids), Docker schema 2 push, a platform out of an index, and
login/push/pull with a GetAuthorizationToken password on a server with --credentials.
Skipped (with the reason) when podman is missing or cannot run in this sandbox."""

import gzip
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from berthctl import DOCKER_MANIFEST, OCI_MANIFEST, module_server, uniq  # noqa: E402
from ocilib import (SKOPEO_OK, SKOPEO_WHY, V2, OciCase, Tools, build_image,  # noqa: E402
                    build_index, podman_usable, registry_password, wait_for, write_layout)

OK, WHY = podman_usable() if SKOPEO_OK else (False, SKOPEO_WHY + " (seeds the images)")
B = None
SECURE = None  # a server with --credentials
TOOLS = None
ROOT = None
CREDS = [("AKIDOCIPODMAN0000001", "podman-secret", "333333333333")]


def setUpModule():
    global B, SECURE, TOOLS, ROOT
    if not OK:
        return
    B = module_server(name="oci-podman")
    SECURE = module_server(name="oci-podman-creds", credentials=CREDS)
    TOOLS = Tools()
    unittest.addModuleCleanup(TOOLS.cleanup)
    ROOT = tempfile.mkdtemp(prefix="berth-podman-")
    unittest.addModuleCleanup(shutil.rmtree, ROOT, True)


def podman(*args, check=True):
    argv = ["podman", "--storage-driver", "vfs", "--root", os.path.join(ROOT, "root"),
            "--runroot", os.path.join(ROOT, "run"), "--cgroup-manager", "cgroupfs",
            "--events-backend", "file"] + list(args)
    return TOOLS.run(argv, check=check)


@unittest.skipUnless(OK, WHY)
class Podman(OciCase):
    server = None

    def setUp(self):
        self.b = self.server or B
        self.c = self.b.client() if self.b is B else self.b.client(
            access_key=CREDS[0][0], secret=CREDS[0][1])
        self.tmp = tempfile.mkdtemp(prefix="berth-podman-t-")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def host(self):
        return "127.0.0.1:%d" % self.b.port

    def name(self, repo, tag):
        return "%s/%s:%s" % (self.host(), repo, tag)

    def seed(self, img, repo, tag, creds=None):
        """Push img with skopeo (OCI layout -> berth)."""
        src = write_layout(os.path.join(self.tmp, uniq("layout")), img)
        extra = ["--dest-creds", creds] if creds else []
        TOOLS.skopeo("copy", "--dest-tls-verify=false", *extra, "oci:%s:latest" % src,
                     "docker://" + self.name(repo, tag))

    def new_repo(self, prefix):
        r = uniq(prefix)
        self.c.create_repository(repositoryName=r)
        return r

    def check_layers_match(self, v, repo, manifest, img):
        """Every layer of a (re)pushed manifest decompresses to the original layer's diff_id;
        the config is the original config byte for byte."""
        cfg = v.get("%s/blobs/%s" % (repo, manifest["config"]["digest"])).content
        self.assertEqual(img.config, cfg)
        diff_ids = json.loads(img.config)["rootfs"]["diff_ids"]
        self.assertEqual(len(diff_ids), len(manifest["layers"]))
        for desc, want in zip(manifest["layers"], diff_ids):
            r = v.get("%s/blobs/%s" % (repo, desc["digest"]))
            self.assertStatus(r, 200)
            self.assertEqual(desc["size"], len(r.content))
            self.assertEqual(desc["digest"], "sha256:" + hashlib.sha256(r.content).hexdigest())
            self.assertEqual(want, "sha256:" + hashlib.sha256(gzip.decompress(r.content))
                             .hexdigest())


class PullPush(Podman):
    def test_pull_then_push_to_another_repository(self):
        src, dst = self.new_repo("pod-src"), self.new_repo("pod-dst")
        img = build_image(nlayers=3)
        self.seed(img, src, "v1")
        p = podman("pull", "--tls-verify=false", "--signature-policy", TOOLS.policy,
                   self.name(src, "v1"))
        image_id = p.stdout.decode().strip().splitlines()[-1]
        self.assertEqual(img.config_desc["digest"].split(":")[1], image_id)
        info = json.loads(podman("image", "inspect", self.name(src, "v1")).stdout)[0]
        self.assertEqual(img.digest, info["Digest"])
        self.assertEqual(json.loads(img.config)["rootfs"]["diff_ids"], info["RootFS"]["Layers"])
        # the pull is a pull for ECR too
        got = wait_for(lambda: self.c.describe_images(repositoryName=src)["imageDetails"][0]
                       .get("lastRecordedPullTime"), timeout=12)
        self.assertIsNotNone(got, "podman pull did not update lastRecordedPullTime")

        podman("tag", self.name(src, "v1"), self.name(dst, "v2"))
        t0 = time.time()
        podman("push", "--tls-verify=false", "--signature-policy", TOOLS.policy,
               self.name(dst, "v2"))
        t1 = time.time()
        det = self.c.describe_images(repositoryName=dst)["imageDetails"]
        self.assertEqual(1, len(det))
        det = det[0]
        self.assertEqual(["v2"], det["imageTags"])
        v = V2(self.b.url)
        self.addCleanup(v.close)
        r = v.get("%s/manifests/v2" % dst)
        self.assertStatus(r, 200)
        self.assertEqual(det["imageDigest"], r.headers["Docker-Content-Digest"])
        self.assertEqual(det["imageDigest"], "sha256:" + hashlib.sha256(r.content).hexdigest())
        self.assertEqual(det["imageManifestMediaType"], r.headers["Content-Type"])
        m = r.json()
        self.assertEqual(m["config"]["size"] + sum(l["size"] for l in m["layers"]),
                         det["imageSizeInBytes"])
        self.assertGreaterEqual(det["imagePushedAt"].timestamp(), t0 - 2)
        self.assertLessEqual(det["imagePushedAt"].timestamp(), t1 + 2)
        self.check_layers_match(v, dst, m, img)

    def test_push_docker_format(self):
        src, dst = self.new_repo("pod-src"), self.new_repo("pod-v2s2")
        img = build_image(nlayers=1)
        self.seed(img, src, "v1")
        podman("pull", "--tls-verify=false", "--signature-policy", TOOLS.policy,
               self.name(src, "v1"))
        podman("push", "--tls-verify=false", "--signature-policy", TOOLS.policy,
               "--format", "v2s2", self.name(src, "v1"), "docker://" + self.name(dst, "d"))
        det = self.c.describe_images(repositoryName=dst)["imageDetails"][0]
        self.assertEqual(DOCKER_MANIFEST, det["imageManifestMediaType"])
        v = V2(self.b.url)
        self.addCleanup(v.close)
        r = v.get("%s/manifests/d" % dst)
        self.assertEqual(DOCKER_MANIFEST, r.headers["Content-Type"])
        self.check_layers_match(v, dst, r.json(), img)

    def test_pull_one_platform_of_an_index(self):
        repo = self.new_repo("pod-multi")
        idx = build_index(("amd64", "arm64"))
        src = write_layout(os.path.join(self.tmp, "idx"), idx)
        TOOLS.skopeo("copy", "--all", "--dest-tls-verify=false", "oci:%s:latest" % src,
                     "docker://" + self.name(repo, "multi"))
        podman("pull", "--tls-verify=false", "--signature-policy", TOOLS.policy,
               "--arch", "arm64", self.name(repo, "multi"))
        info = json.loads(podman("image", "inspect", self.name(repo, "multi")).stdout)[0]
        self.assertEqual("arm64", info["Architecture"])
        self.assertEqual(idx.children[1].config_desc["digest"].split(":")[1], info["Id"])

    def test_pull_missing_tag_fails(self):
        repo = self.new_repo("pod-none")
        p = podman("pull", "--tls-verify=false", "--signature-policy", TOOLS.policy,
                   self.name(repo, "nope"), check=False)
        self.assertNotEqual(0, p.returncode)
        err = p.stderr.decode("utf-8", "replace").lower()
        self.assertTrue("manifest unknown" in err or "not found" in err, err[-600:])


class WithCredentials(Podman):
    @property
    def server(self):
        return SECURE

    def test_login_push_pull(self):
        src, dst = self.new_repo("pod-auth"), self.new_repo("pod-auth-dst")
        pw = registry_password(self.c)
        img = build_image()
        self.seed(img, src, "v1", creds="AWS:" + pw)
        authfile = os.path.join(self.tmp, "auth.json")
        # without credentials the pull is refused
        p = podman("pull", "--tls-verify=false", "--signature-policy", TOOLS.policy,
                   "--authfile", authfile, self.name(src, "v1"), check=False)
        self.assertNotEqual(0, p.returncode)
        # `podman login -u AWS -p <password>` (docker login's GET /v2/ with Basic)
        p = podman("login", "--tls-verify=false", "--authfile", authfile, "-u", "AWS",
                   "-p", pw, self.host())
        self.assertIn("Login Succeeded", p.stdout.decode())
        bad = podman("login", "--tls-verify=false", "--authfile",
                     os.path.join(self.tmp, "bad.json"), "-u", "AWS", "-p", pw[:-4] + "AAAA",
                     self.host(), check=False)
        self.assertNotEqual(0, bad.returncode)
        podman("pull", "--tls-verify=false", "--signature-policy", TOOLS.policy,
               "--authfile", authfile, self.name(src, "v1"))
        podman("push", "--tls-verify=false", "--signature-policy", TOOLS.policy,
               "--authfile", authfile, self.name(src, "v1"), "docker://" + self.name(dst, "v1"))
        det = self.c.describe_images(repositoryName=dst)["imageDetails"]
        self.assertEqual(["v1"], det[0]["imageTags"])
        self.assertIn(det[0]["imageManifestMediaType"], (OCI_MANIFEST, DOCKER_MANIFEST))
