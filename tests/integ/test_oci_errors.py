"""/v2 errors (OCI Distribution Spec v1.1 "Error Codes"; ECR-API.md 2.3, 5): the JSON body
{"errors":[{"code","message","detail"}]} with the right status everywhere, unknown endpoints,
wrong methods, the repository-name grammar (with namespaces), tolerated bad ranges."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from berthctl import module_server, digest_of, uniq  # noqa: E402
from ocilib import V2, OciCase, build_image  # noqa: E402

B = None


def setUpModule():
    global B
    B = module_server(name="oci-errors")


class Base(OciCase):
    def setUp(self):
        self.c = B.client()
        self.v = V2(B.url)
        self.addCleanup(self.v.close)


class Endpoints(Base):
    def test_version_check(self):
        for path in ("/v2/", "/v2"):
            with self.subTest(path=path):
                r = self.v.get(path)
                self.assertStatus(r, 200)
                self.assertEqual({}, r.json())
                self.assertEqual("registry/2.0", r.headers.get("Docker-Distribution-Api-Version"))
        h = self.v.head("/v2/")
        self.assertStatus(h, 200)

    def test_unknown_endpoints(self):
        repo = uniq("err")
        self.c.create_repository(repositoryName=repo)
        for path in ("/v2/%s" % repo, "/v2/%s/" % repo, "/v2/%s/unknown/x" % repo,
                     "/v2/%s/tags/other" % repo, "/v2/%s/manifests/" % repo,
                     "/v2/%s/blobs/" % repo, "/v2/_catalog/x", "/v2/%s/referrers/" % repo):
            with self.subTest(path=path):
                r = self.v.get(path)
                self.assertOciError(r, ("UNSUPPORTED", "NAME_INVALID", "NAME_UNKNOWN",
                                        "MANIFEST_UNKNOWN", "BLOB_UNKNOWN"), (400, 404, 405))
                self.assertEqual("registry/2.0", r.headers.get("Docker-Distribution-Api-Version"))

    def test_methods_not_allowed(self):
        repo = uniq("err")
        self.c.create_repository(repositoryName=repo)
        img = build_image()
        self.v.push_image(repo, img, tag="t")
        d = digest_of(img.layers[0])
        cases = [("POST", "/v2/"), ("DELETE", "/v2/"), ("PUT", "/v2/_catalog"),
                 ("POST", "%s/tags/list" % repo), ("DELETE", "%s/tags/list" % repo),
                 ("POST", "%s/manifests/t" % repo), ("PATCH", "%s/manifests/t" % repo),
                 ("PUT", "%s/blobs/%s" % (repo, d)), ("POST", "%s/blobs/%s" % (repo, d)),
                 ("PATCH", "%s/blobs/%s" % (repo, d)),
                 ("PUT", "%s/referrers/%s" % (repo, img.digest)),
                 ("GET", "%s/blobs/uploads/" % repo), ("PATCH", "%s/blobs/uploads/" % repo)]
        for method, path in cases:
            with self.subTest(method=method, path=path):
                r = self.v.req(method, path, data=b"x" if method in ("PUT", "PATCH", "POST")
                               else None)
                self.assertOciError(r, "UNSUPPORTED", (404, 405))
        # nothing changed
        self.assertEqual(img.manifest, self.v.get("%s/manifests/t" % repo).content)
        self.assertEqual(img.layers[0], self.v.get("%s/blobs/%s" % (repo, d)).content)
        self.assertEqual(1, len(self.c.describe_images(repositoryName=repo)["imageDetails"]))


class Names(Base):
    VALID = ["ab", "a.b", "a_b", "a__b", "a-b", "a--b", "a---b", "a1", "0a", "team/app/api",
             "a.b-c_d__e/f-g", "a/b/c/d/e/f", "x" * 256, ("y" * 127) + "/" + ("z" * 128)]
    INVALID = ["A", "Ab", "a", "a___b", "a..b", "a._b", "a-", "-a", "_a", ".a", "a/", "/a",
               "a//b", "a/B", "a b", "a$b", "x" * 257, "a/-b", "a/b-", "a:b", "a@b"]

    def test_grammar(self):
        """Valid names reach the lookup (NAME_UNKNOWN), invalid ones are NAME_INVALID."""
        d = digest_of(b"x")
        for name in self.VALID:
            with self.subTest(valid=name):
                for path in ("%s/tags/list" % name, "%s/manifests/latest" % name,
                             "%s/blobs/%s" % (name, d)):
                    r = self.v.get(path)
                    self.assertOciError(r, "NAME_UNKNOWN", 404)
                r = self.v.post("%s/blobs/uploads/" % name)
                self.assertOciError(r, "NAME_UNKNOWN", 404)
        for name in self.INVALID:
            with self.subTest(invalid=name):
                path = "/v2/%s/tags/list" % name.replace(" ", "%20")
                r = self.v.get(path)
                self.assertOciError(r, "NAME_INVALID", 400)
                r = self.v.post("/v2/%s/blobs/uploads/" % name.replace(" ", "%20"))
                self.assertOciError(r, "NAME_INVALID", 400)

    def test_valid_names_work_end_to_end(self):
        for name in ("a__b-%s" % uniq("n"), "%s/x/y.z" % uniq("ns"), "q" * 200 + uniq("")[:20]):
            with self.subTest(name=name):
                self.c.create_repository(repositoryName=name)
                img = build_image(nlayers=1)
                self.v.push_image(name, img, tag="t")
                self.assertEqual(img.manifest, self.v.get("%s/manifests/t" % name).content)
                self.assertIn(name, self.v.get("_catalog").json()["repositories"])


class Ranges(Base):
    def test_malformed_ranges_are_ignored_or_refused_cleanly(self):
        repo = uniq("rng")
        self.c.create_repository(repositoryName=repo)
        data = os.urandom(1000)
        d = self.v.push_blob(repo, data)
        for rng in ("bytes=abc", "items=0-10", "bytes=10-5", "bytes=0-1,5-6", "bytes=", "bytes=-",
                    "bytes=--5"):
            with self.subTest(range=rng):
                r = self.v.get("%s/blobs/%s" % (repo, d), headers={"Range": rng})
                # RFC 9110: a server may ignore an invalid Range and send the whole blob
                self.assertIn(r.status_code, (200, 416), r.text[:200])
                if r.status_code == 200:
                    self.assertEqual(data, r.content)
                    self.assertEqual(d, r.headers.get("Docker-Content-Digest"))
                else:
                    self.assertEqual("bytes */1000", r.headers.get("Content-Range"))
        self.assertEqual(data, self.v.get("%s/blobs/%s" % (repo, d)).content)

    def test_errors_have_no_body_on_head(self):
        repo = uniq("rng")
        self.c.create_repository(repositoryName=repo)
        for path in ("%s/blobs/%s" % (repo, digest_of(b"none")), "%s/manifests/none" % repo,
                     "%s/manifests/%s" % (uniq("absent"), digest_of(b"x"))):
            with self.subTest(path=path):
                r = self.v.head(path)
                self.assertEqual(404, r.status_code)
                self.assertEqual(b"", r.content)
