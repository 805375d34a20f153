"""/v2 content discovery (OCI Distribution Spec v1.1 "Content discovery": tags/list with n,
last and Link; the referrers API with the artifactType filter; _catalog with pagination) and
their ECR twins (ListImages, ListImageReferrers, DescribeRepositories; ECR-API.md 5)."""

import os
import re
import sys
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from berthctl import ACCOUNT, OCI_INDEX, OCI_MANIFEST, module_server, digest_of, uniq  # noqa: E402
from ocilib import V2, Index, OciCase, build_artifact, build_image  # noqa: E402

B = None
# the catalog tests use a registry of their own (same account, another region, chosen by Host)
CAT_REGION = "ap-south-1"
CAT_HOST = "%s.dkr.ecr.%s.amazonaws.com" % (ACCOUNT, CAT_REGION)
LINK_RE = re.compile(r'^<([^>]+)>;\s*rel="next"$')


def setUpModule():
    global B
    B = module_server(name="oci-discovery")


def next_link(resp):
    link = resp.headers.get("Link")
    if link is None:
        return None
    m = LINK_RE.match(link)
    if not m:
        raise AssertionError("malformed Link header %r" % link)
    return m.group(1)


class Tags(OciCase):
    TAGS = ["v1.9", "v1.10", "latest", "Zeta", "alpha", "_under", "a-b", "a.b", "a_b",
            "0start", "9", "z" * 128]

    @classmethod
    def setUpClass(cls):
        cls.c = B.client()
        cls.v = V2(B.url)
        cls.repo = uniq("tags")
        cls.c.create_repository(repositoryName=cls.repo)
        img = build_image()
        cls.v.push_image(cls.repo, img, tag=cls.TAGS[0])
        for t in cls.TAGS[1:]:
            cls.v.push_manifest(cls.repo, t, img.manifest, img.media_type)
        cls.v.push_image(cls.repo, build_image())  # an untagged image must not show up
        cls.sorted = sorted(cls.TAGS)

    @classmethod
    def tearDownClass(cls):
        cls.v.close()

    def tags(self, **params):
        r = self.v.get("%s/tags/list" % self.repo, params=params)
        self.assertStatus(r, 200)
        self.assertTrue(r.headers.get("Content-Type", "").startswith("application/json"))
        body = r.json()
        self.assertEqual(self.repo, body["name"])
        return body["tags"], r

    def test_all_in_lexical_order(self):
        tags, r = self.tags()
        self.assertEqual(self.sorted, tags)
        self.assertIsNone(r.headers.get("Link"))

    def test_same_as_list_images(self):
        ids = self.c.list_images(repositoryName=self.repo,
                                 filter={"tagStatus": "TAGGED"})["imageIds"]
        self.assertEqual(set(self.TAGS), {i["imageTag"] for i in ids})
        self.assertEqual(set(self.TAGS), set(self.tags()[0]))

    def test_pagination_follows_link(self):
        for n in (1, 3, 5, len(self.TAGS) - 1):
            with self.subTest(n=n):
                got, pages = [], 0
                tags, r = self.tags(n=n)
                while True:
                    pages += 1
                    self.assertLessEqual(len(tags), n)
                    got += tags
                    link = next_link(r)
                    if link is None:
                        break
                    q = urllib.parse.parse_qs(urllib.parse.urlparse(link).query)
                    self.assertEqual([str(n)], q.get("n"), link)
                    self.assertEqual([tags[-1]], q.get("last"), link)
                    self.assertTrue(link.startswith("/v2/%s/tags/list?" % self.repo), link)
                    r = self.v.get(link)
                    self.assertStatus(r, 200)
                    tags = r.json()["tags"]
                    self.assertLess(pages, 50, "pagination does not end")
                self.assertEqual(self.sorted, got)

    def test_exact_last_page_has_no_link(self):
        tags, r = self.tags(n=len(self.TAGS))
        self.assertEqual(self.sorted, tags)
        self.assertIsNone(r.headers.get("Link"))
        tags, r = self.tags(n=len(self.TAGS) - 1)
        self.assertIsNotNone(r.headers.get("Link"))

    def test_last(self):
        for i, last in enumerate(self.sorted):
            with self.subTest(last=last):
                tags, _ = self.tags(last=last)
                self.assertEqual(self.sorted[i + 1:], tags)
        # a `last` that is not a tag: lexically after it
        tags, _ = self.tags(last="b")
        self.assertEqual([t for t in self.sorted if t > "b"], tags)
        tags, r = self.tags(last="z" * 130)
        self.assertEqual([], tags)
        self.assertIsNone(r.headers.get("Link"))
        tags, _ = self.tags(n=2, last="a-b")
        self.assertEqual(self.sorted[self.sorted.index("a-b") + 1:][:2], tags)

    def test_n_zero(self):
        tags, r = self.tags(n=0)
        self.assertEqual([], tags or [])

    def test_bad_n(self):
        for n in ("-1", "abc", "1x"):
            with self.subTest(n=n):
                r = self.v.get("%s/tags/list" % self.repo, params={"n": n})
                self.assertOciError(r, ("UNSUPPORTED", "PAGINATION_NUMBER_INVALID"), 400)

    def test_empty_and_missing_repository(self):
        name = uniq("tags-empty")
        self.c.create_repository(repositoryName=name)
        r = self.v.get("%s/tags/list" % name)
        self.assertStatus(r, 200)
        self.assertEqual(name, r.json()["name"])
        self.assertEqual([], r.json()["tags"] or [])
        r = self.v.get("%s/tags/list" % uniq("tags-none"))
        self.assertOciError(r, "NAME_UNKNOWN", 404)

    def test_deleted_tag_disappears(self):
        name = uniq("tags-del")
        self.c.create_repository(repositoryName=name)
        img = build_image()
        self.v.push_image(name, img, tag="one")
        self.v.push_manifest(name, "two", img.manifest, img.media_type)
        self.c.batch_delete_image(repositoryName=name, imageIds=[{"imageTag": "one"}])
        r = self.v.get("%s/tags/list" % name)
        self.assertEqual(["two"], r.json()["tags"])

    def test_list_follows_every_change(self):
        # tags/list pages are cached per repository; every change to the tag names must show
        # on the next request, whichever door or operation made it.
        name = uniq("tags-chg")
        self.c.create_repository(repositoryName=name)
        a, b = build_image(), build_image()
        self.v.push_image(name, a, tag="a1")
        self.v.push_image(name, b)

        def listed(**params):
            r = self.v.get("%s/tags/list" % name, params=params)
            self.assertStatus(r, 200)
            return r.json()["tags"] or [], r.headers.get("Link")

        for _ in range(2):  # the second answer may come from the cache
            self.assertEqual((["a1"], None), listed())
        self.v.push_manifest(name, "a2", a.manifest, a.media_type)
        self.assertEqual(["a1", "a2"], listed()[0])
        self.assertEqual(["a1"], listed(n=1)[0])
        self.c.put_image(repositoryName=name, imageManifest=b.manifest.decode(),
                         imageManifestMediaType=b.media_type, imageTag="0b")
        self.assertEqual(["0b", "a1", "a2"], listed()[0])
        self.assertEqual(["0b"], listed(n=1)[0])
        # moving a tag to another image leaves the names as they are
        self.v.push_manifest(name, "a2", b.manifest, b.media_type)
        self.assertEqual(["0b", "a1", "a2"], listed()[0])
        self.c.batch_delete_image(repositoryName=name, imageIds=[{"imageTag": "a1"}])
        self.assertEqual(["0b", "a2"], listed()[0])
        # deleting image b by digest takes both of its tags
        self.assertStatus(self.v.delete("%s/manifests/%s" % (name, digest_of(b.manifest))), 202)
        self.assertEqual(([], None), listed())
        self.v.push_manifest(name, "back", a.manifest, a.media_type)
        self.assertEqual(["back"], listed()[0])
        # a repository deleted and created again under the same name starts empty
        self.c.delete_repository(repositoryName=name, force=True)
        self.c.create_repository(repositoryName=name)
        self.assertEqual(([], None), listed())


class Catalog(OciCase):
    @classmethod
    def setUpClass(cls):
        cls.c = B.client(region=CAT_REGION)
        cls.v = V2(B.url, host=CAT_HOST)
        base = uniq("cat")
        cls.names = sorted([base + "-a", base + "-b", base + "/ns/one", base + "/ns/two",
                            base + "-c", base + ".d", base + "_e"])
        for n in cls.names:
            cls.c.create_repository(repositoryName=n)

    @classmethod
    def tearDownClass(cls):
        cls.v.close()

    def catalog(self, **params):
        r = self.v.get("_catalog", params=params)
        self.assertStatus(r, 200)
        return r.json()["repositories"], r

    def test_all(self):
        repos, r = self.catalog()
        self.assertEqual(self.names, repos)
        self.assertIsNone(r.headers.get("Link"))
        ecr = sorted(x["repositoryName"] for x in
                     self.c.describe_repositories()["repositories"])
        self.assertEqual(ecr, repos)

    def test_pagination(self):
        for n in (1, 2, 4):
            with self.subTest(n=n):
                got = []
                repos, r = self.catalog(n=n)
                for _ in range(50):
                    self.assertLessEqual(len(repos), n)
                    got += repos
                    link = next_link(r)
                    if link is None:
                        break
                    self.assertTrue(link.startswith("/v2/_catalog?"), link)
                    q = urllib.parse.parse_qs(urllib.parse.urlparse(link).query)
                    self.assertEqual([repos[-1]], q.get("last"))
                    r = self.v.get(link)
                    self.assertStatus(r, 200)
                    repos = r.json()["repositories"]
                self.assertEqual(self.names, got)

    def test_last(self):
        repos, _ = self.catalog(last=self.names[2], n=2)
        self.assertEqual(self.names[3:5], repos)
        repos, r = self.catalog(last=self.names[-1])
        self.assertEqual([], repos)
        self.assertIsNone(r.headers.get("Link"))

    def test_registries_are_separate(self):
        """The default registry's catalog does not list this registry's repositories."""
        dflt = V2(B.url)
        self.addCleanup(dflt.close)
        r = dflt.get("_catalog")
        self.assertStatus(r, 200)
        self.assertFalse(set(self.names) & set(r.json()["repositories"]))

    def test_deleted_repository_disappears(self):
        name = uniq("zz-cat-del")
        self.c.create_repository(repositoryName=name)
        self.assertIn(name, self.catalog()[0])
        self.c.delete_repository(repositoryName=name)
        self.assertNotIn(name, self.catalog()[0])
        self.assertEqual(self.names, self.catalog()[0])


class Referrers(OciCase):
    def setUp(self):
        self.c = B.client()
        self.v = V2(B.url)
        self.addCleanup(self.v.close)
        self.repo = uniq("refs")
        self.c.create_repository(repositoryName=self.repo)

    def referrers(self, digest, repo=None, **params):
        r = self.v.get("%s/referrers/%s" % (repo or self.repo, digest), params=params)
        self.assertStatus(r, 200)
        self.assertEqual(OCI_INDEX, r.headers.get("Content-Type"))
        body = r.json()
        self.assertEqual(2, body["schemaVersion"])
        self.assertEqual(OCI_INDEX, body["mediaType"])
        return body["manifests"], r

    def test_referrers(self):
        subject = build_image()
        self.v.push_image(self.repo, subject, tag="app")
        sig = build_artifact(subject.descriptor(), "application/vnd.berth.sig",
                             annotations={"org.opencontainers.image.created": "2024-01-01"})
        sbom = build_artifact(subject.descriptor(), "application/vnd.berth.sbom")
        cfgtyped = build_artifact(subject.descriptor(), "application/vnd.berth.cfgtype",
                                  empty_config=False)
        kids = [build_image(), build_image(arch="arm64")]
        for k in kids:
            self.v.push_image(self.repo, k)
        idx = Index(kids, [{"architecture": "amd64", "os": "linux"},
                           {"architecture": "arm64", "os": "linux"}],
                    artifact_type="application/vnd.berth.bundle", subject=subject.descriptor())
        unrelated = build_artifact(build_image().descriptor(), "application/vnd.berth.sig")
        for a in (sig, sbom, cfgtyped, unrelated):
            self.v.push_image(self.repo, a)
        self.v.push_manifest(self.repo, idx.digest, idx.manifest, OCI_INDEX)

        got, r = self.referrers(subject.digest)
        self.assertIsNone(r.headers.get("OCI-Filters-Applied"))
        want = {
            sig.digest: {"mediaType": OCI_MANIFEST, "digest": sig.digest,
                         "size": len(sig.manifest), "artifactType": "application/vnd.berth.sig",
                         "annotations": {"org.opencontainers.image.created": "2024-01-01"}},
            sbom.digest: {"mediaType": OCI_MANIFEST, "digest": sbom.digest,
                          "size": len(sbom.manifest),
                          "artifactType": "application/vnd.berth.sbom"},
            # no artifactType in the manifest: the config media type stands in
            cfgtyped.digest: {"mediaType": OCI_MANIFEST, "digest": cfgtyped.digest,
                              "size": len(cfgtyped.manifest),
                              "artifactType": "application/vnd.berth.cfgtype"},
            idx.digest: {"mediaType": OCI_INDEX, "digest": idx.digest,
                         "size": len(idx.manifest),
                         "artifactType": "application/vnd.berth.bundle"},
        }
        self.assertEqual(sorted(want), sorted(d["digest"] for d in got))
        for d in got:
            self.assertEqual(want[d["digest"]], d)

        got, r = self.referrers(subject.digest, artifactType="application/vnd.berth.sig")
        self.assertEqual([sig.digest], [d["digest"] for d in got])
        self.assertEqual("artifactType", r.headers.get("OCI-Filters-Applied"))
        got, r = self.referrers(subject.digest, artifactType="application/none")
        self.assertEqual([], got)
        self.assertEqual("artifactType", r.headers.get("OCI-Filters-Applied"))

        # the ECR twin lists the same set (spec 5)
        ecr = self.c.list_image_referrers(repositoryName=self.repo,
                                          subjectId={"imageDigest": subject.digest})
        self.assertEqual(sorted(want), sorted(x["digest"] for x in ecr["referrers"]))
        for x in ecr["referrers"]:
            self.assertEqual(want[x["digest"]]["artifactType"], x["artifactType"])
            self.assertEqual(want[x["digest"]]["size"], x["size"])

        # deleting a referrer removes it from the list
        self.assertStatus(self.v.delete("%s/manifests/%s" % (self.repo, sbom.digest)), 202)
        got, _ = self.referrers(subject.digest)
        self.assertNotIn(sbom.digest, [d["digest"] for d in got])
        self.assertEqual(3, len(got))

    def test_unknown_subject_gives_empty_index(self):
        got, r = self.referrers(digest_of(b"nothing refers to me"))
        self.assertEqual([], got)

    def test_referrers_before_subject(self):
        ghost = build_image()
        art = build_artifact(ghost.descriptor())
        self.v.push_image(self.repo, art)
        got, _ = self.referrers(ghost.digest)
        self.assertEqual([art.digest], [d["digest"] for d in got])

    def test_referrers_are_per_repository(self):
        other = uniq("refs-other")
        self.c.create_repository(repositoryName=other)
        subject = build_image()
        self.v.push_image(self.repo, subject)
        self.v.push_image(other, subject)
        art = build_artifact(subject.descriptor())
        self.v.push_image(other, art)
        self.assertEqual([], self.referrers(subject.digest)[0])
        self.assertEqual([art.digest],
                         [d["digest"] for d in self.referrers(subject.digest, repo=other)[0]])

    def test_errors(self):
        r = self.v.get("%s/referrers/%s" % (self.repo, "sha256:nothex"))
        self.assertOciError(r, "DIGEST_INVALID", 400)
        r = self.v.get("%s/referrers/%s" % (self.repo, "latest"))
        self.assertOciError(r, "DIGEST_INVALID", 400)
        r = self.v.get("%s/referrers/%s" % (uniq("refs-none"), digest_of(b"x")))
        self.assertOciError(r, "NAME_UNKNOWN", 404)
