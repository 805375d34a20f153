"""skopeo against the /v2 door: copy OCI image layouts (random tar.gz layers, real config) into
berth and back, byte for byte and digest for digest; Docker schema 2; `copy --all` of a
two-platform index; inspect, list-tags, delete; and what the ECR door sees afterwards
(DescribeImages digest/tags/size/push time/media type, ECR-API.md 4.13 and 5)."""

import json
import os
import shutil
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from berthctl import (DOCKER_MANIFEST, OCI_INDEX, module_server, digest_of,  # noqa: E402
                      uniq, upload_blob)
from ocilib import (SKOPEO_OK, SKOPEO_WHY, V2, OciCase, Tools, build_image,  # noqa: E402
                    build_index, dir_blob, dir_manifest, layout_blob, layout_top, write_dir,
                    write_layout)

B = None
TOOLS = None


def setUpModule():
    global B, TOOLS
    if not SKOPEO_OK:
        return
    B = module_server(name="oci-skopeo")
    TOOLS = Tools()
    unittest.addModuleCleanup(TOOLS.cleanup)


@unittest.skipUnless(SKOPEO_OK, SKOPEO_WHY)
class Base(OciCase):
    def setUp(self):
        self.c = B.client()
        self.v = V2(B.url)
        self.addCleanup(self.v.close)
        self.tmp = tempfile.mkdtemp(prefix="berth-oci-skopeo-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.repo = uniq("sk")
        self.c.create_repository(repositoryName=self.repo)

    def ref(self, tag=None, repo=None, digest=None):
        r = "docker://127.0.0.1:%d/%s" % (B.port, repo or self.repo)
        if digest:
            return r + "@" + digest
        return r + (":" + tag if tag else "")

    def layout(self, top, name="src", tag="latest"):
        return write_layout(os.path.join(self.tmp, name), top, tag)

    def copy_in(self, layout, tag, *extra, repo=None):
        return TOOLS.skopeo("copy", "--dest-tls-verify=false", *extra,
                            "oci:%s:latest" % layout, self.ref(tag, repo))

    def copy_out(self, tag, name, *extra, repo=None):
        dst = os.path.join(self.tmp, name)
        TOOLS.skopeo("copy", "--src-tls-verify=false", *extra, self.ref(tag, repo),
                     "oci:%s:latest" % dst)
        return dst

    def details(self, repo=None, **kw):
        return self.c.describe_images(repositoryName=repo or self.repo, **kw)["imageDetails"]

    def assertBlobsEqual(self, img, dst):
        """Every blob of img is in layout dst, byte for byte, under its digest."""
        for b in img.blobs():
            d = digest_of(b)
            got = layout_blob(dst, d)
            self.assertEqual(len(b), len(got), "size of %s" % d)
            self.assertEqual(b, got, "bytes of %s" % d)
            self.assertEqual(d, digest_of(got))

    def assertPushed(self, det, img, tags, t0, t1):
        self.assertEqual(img.digest, det["imageDigest"])
        self.assertEqual(sorted(tags), sorted(det.get("imageTags", [])))
        self.assertEqual(img.size, det["imageSizeInBytes"])
        self.assertEqual(img.media_type, det["imageManifestMediaType"])
        pushed = det["imagePushedAt"].timestamp()
        self.assertGreaterEqual(pushed, t0 - 2, "imagePushedAt before the push")
        self.assertLessEqual(pushed, t1 + 2, "imagePushedAt after the push")


class Copy(Base):
    def test_oci_roundtrip(self):
        img = build_image(sizes=[10, 300000, 2 * 1024 * 1024 + 17])
        src = self.layout(img)
        t0 = time.time()
        self.copy_in(src, "v1")
        t1 = time.time()
        det = self.details()
        self.assertEqual(1, len(det))
        self.assertPushed(det[0], img, ["v1"], t0, t1)
        # blobs landed with their sizes (the ECR door agrees)
        lay = self.c.batch_check_layer_availability(
            repositoryName=self.repo, layerDigests=[digest_of(b) for b in img.blobs()])
        self.assertEqual([], lay["failures"])
        self.assertEqual({digest_of(b): len(b) for b in img.blobs()},
                         {x["layerDigest"]: x["layerSize"] for x in lay["layers"]
                          if x["layerAvailability"] == "AVAILABLE"})
        # and back, byte for byte
        dst = self.copy_out("v1", "dst")
        desc, manifest = layout_top(dst)
        self.assertEqual(img.digest, desc["digest"])
        self.assertEqual(img.manifest, manifest)
        self.assertBlobsEqual(img, dst)

    def test_docker_schema2_roundtrip(self):
        # skopeo's oci: layouts only index OCI types; dir: keeps any manifest verbatim
        img = build_image(nlayers=2, docker=True)
        src = write_dir(os.path.join(self.tmp, "src"), img)
        t0 = time.time()
        TOOLS.skopeo("copy", "--dest-tls-verify=false", "dir:" + src, self.ref("d1"))
        t1 = time.time()
        det = self.details()
        self.assertPushed(det[0], img, ["d1"], t0, t1)
        self.assertEqual(DOCKER_MANIFEST, det[0]["imageManifestMediaType"])
        r = self.v.get("%s/manifests/d1" % self.repo, headers={"Accept": DOCKER_MANIFEST})
        self.assertEqual(DOCKER_MANIFEST, r.headers["Content-Type"])
        self.assertEqual(img.manifest, r.content)
        dst = os.path.join(self.tmp, "dst")
        TOOLS.skopeo("copy", "--src-tls-verify=false", self.ref("d1"), "dir:" + dst)
        self.assertEqual(img.manifest, dir_manifest(dst))
        for b in img.blobs():
            self.assertEqual(b, dir_blob(dst, digest_of(b)))

    def test_convert_to_docker_format_on_push(self):
        img = build_image(nlayers=1)
        src = self.layout(img)
        self.copy_in(src, "conv", "--format", "v2s2")
        det = self.details()
        self.assertEqual(1, len(det))
        self.assertEqual(DOCKER_MANIFEST, det[0]["imageManifestMediaType"])
        m = json.loads(self.v.get("%s/manifests/conv" % self.repo).content)
        self.assertEqual(img.size, det[0]["imageSizeInBytes"])
        self.assertEqual([digest_of(b) for b in img.layers], [l["digest"] for l in m["layers"]])
        dst = self.copy_out("conv", "dst")
        for b in img.layers:
            self.assertEqual(b, layout_blob(dst, digest_of(b)))

    def test_copy_all_two_platform_index(self):
        idx = build_index(("amd64", "arm64"))
        src = self.layout(idx)
        t0 = time.time()
        self.copy_in(src, "multi", "--all")
        t1 = time.time()
        det = {d["imageDigest"]: d for d in self.details()}
        self.assertEqual({idx.digest} | {k.digest for k in idx.children}, set(det))
        top = det[idx.digest]
        self.assertEqual(["multi"], top["imageTags"])
        self.assertEqual(OCI_INDEX, top["imageManifestMediaType"])
        self.assertEqual(max(k.size for k in idx.children), top["imageSizeInBytes"])
        self.assertGreaterEqual(top["imagePushedAt"].timestamp(), t0 - 2)
        self.assertLessEqual(top["imagePushedAt"].timestamp(), t1 + 2)
        for k in idx.children:
            self.assertPushed(det[k.digest], k, [], t0, t1)
        p = TOOLS.skopeo("inspect", "--raw", "--tls-verify=false", self.ref("multi"))
        self.assertEqual(idx.manifest, p.stdout)
        dst = self.copy_out("multi", "dst", "--all")
        desc, manifest = layout_top(dst)
        self.assertEqual(idx.digest, desc["digest"])
        self.assertEqual(idx.manifest, manifest)
        for k in idx.children:
            self.assertEqual(k.manifest, layout_blob(dst, k.digest))
            self.assertBlobsEqual(k, dst)

    def test_single_platform_of_an_index(self):
        idx = build_index(("amd64", "arm64"))
        self.copy_in(self.layout(idx), "multi", "--all")
        dst = os.path.join(self.tmp, "arm")
        TOOLS.skopeo("--override-arch", "arm64", "copy", "--src-tls-verify=false",
                     self.ref("multi"), "oci:%s:latest" % dst)
        arm = idx.children[1]
        desc, manifest = layout_top(dst)
        self.assertEqual(arm.digest, desc["digest"])
        self.assertBlobsEqual(arm, dst)

    def test_registry_to_registry_copy(self):
        img = build_image()
        self.copy_in(self.layout(img), "v1")
        other = uniq("sk-to")
        self.c.create_repository(repositoryName=other)
        TOOLS.skopeo("copy", "--src-tls-verify=false", "--dest-tls-verify=false",
                     self.ref("v1"), self.ref("copied", repo=other))
        det = self.details(repo=other)
        self.assertEqual([img.digest], [d["imageDigest"] for d in det])
        self.assertEqual(["copied"], det[0]["imageTags"])
        for b in img.blobs():
            self.assertEqual(b, self.v.get("%s/blobs/%s" % (other, digest_of(b))).content)

    def test_namespaced_repository(self):
        name = "%s/team/app" % uniq("ns")
        self.c.create_repository(repositoryName=name)
        img = build_image()
        self.copy_in(self.layout(img), "v1", repo=name)
        self.assertEqual([img.digest], [d["imageDigest"] for d in self.details(repo=name)])
        dst = self.copy_out("v1", "dst", repo=name)
        self.assertBlobsEqual(img, dst)

    def test_push_to_missing_repository_fails(self):
        name = uniq("sk-missing")
        p = TOOLS.skopeo("copy", "--dest-tls-verify=false",
                         "oci:%s:latest" % self.layout(build_image()),
                         self.ref("v1", repo=name), check=False)
        self.assertNotEqual(0, p.returncode)
        err = p.stderr.decode("utf-8", "replace")
        self.assertTrue("does not exist" in err or "name unknown" in err.lower(), err[-800:])
        self.assertNotIn(name, self.v.get("_catalog").json()["repositories"])

    def test_pull_image_pushed_with_ecr_api(self):
        img = build_image(nlayers=2, docker=True)
        for b in img.blobs():
            upload_blob(self.c, self.repo, b)
        self.c.put_image(repositoryName=self.repo, imageManifest=img.manifest.decode(),
                         imageTag="ecr")
        dst = os.path.join(self.tmp, "dst")
        TOOLS.skopeo("copy", "--src-tls-verify=false", self.ref("ecr"), "dir:" + dst)
        self.assertEqual(img.manifest, dir_manifest(dst))
        for b in img.blobs():
            self.assertEqual(b, dir_blob(dst, digest_of(b)))


class Inspection(Base):
    def test_inspect(self):
        img = build_image(nlayers=3)
        self.copy_in(self.layout(img), "v1")
        self.v.push_manifest(self.repo, "v2", img.manifest, img.media_type)
        p = TOOLS.skopeo("inspect", "--tls-verify=false", self.ref("v1"))
        info = json.loads(p.stdout)
        self.assertEqual(img.digest, info["Digest"])
        self.assertEqual("amd64", info["Architecture"])
        self.assertEqual("linux", info["Os"])
        self.assertEqual([digest_of(b) for b in img.layers], info["Layers"])
        self.assertEqual(["v1", "v2"], sorted(info["RepoTags"]))
        p = TOOLS.skopeo("inspect", "--raw", "--tls-verify=false", self.ref("v1"))
        self.assertEqual(img.manifest, p.stdout)
        p = TOOLS.skopeo("inspect", "--config", "--raw", "--tls-verify=false", self.ref("v1"))
        self.assertEqual(img.config, p.stdout)
        p = TOOLS.skopeo("inspect", "--raw", "--tls-verify=false",
                         self.ref(digest=img.digest))
        self.assertEqual(img.manifest, p.stdout)

    def test_list_tags(self):
        img = build_image()
        self.copy_in(self.layout(img), "a")
        for t in ("b", "c-1", "Z"):
            self.v.push_manifest(self.repo, t, img.manifest, img.media_type)
        p = TOOLS.skopeo("list-tags", "--tls-verify=false", self.ref())
        info = json.loads(p.stdout)
        self.assertEqual(["Z", "a", "b", "c-1"], sorted(info["Tags"]))
        ids = self.c.list_images(repositoryName=self.repo)["imageIds"]
        self.assertEqual(sorted(info["Tags"]), sorted(i["imageTag"] for i in ids))

    def test_delete_by_tag(self):
        img = build_image()
        self.copy_in(self.layout(img), "gone")
        TOOLS.skopeo("delete", "--tls-verify=false", self.ref("gone"))
        self.assertEqual([], self.details())
        self.assertOciError(self.v.get("%s/manifests/gone" % self.repo), "MANIFEST_UNKNOWN", 404)
        p = TOOLS.skopeo("inspect", "--raw", "--tls-verify=false", self.ref("gone"), check=False)
        self.assertNotEqual(0, p.returncode)

    def test_delete_by_digest(self):
        a, b = build_image(), build_image()
        self.copy_in(self.layout(a, "a"), "a")
        self.copy_in(self.layout(b, "b"), "b")
        TOOLS.skopeo("delete", "--tls-verify=false", self.ref(digest=a.digest))
        det = self.details()
        self.assertEqual([b.digest], [d["imageDigest"] for d in det])
        self.assertOciError(self.v.get("%s/manifests/a" % self.repo), "MANIFEST_UNKNOWN", 404)
        p = TOOLS.skopeo("list-tags", "--tls-verify=false", self.ref())
        self.assertEqual(["b"], json.loads(p.stdout)["Tags"])
