"""PutImageTagMutability and its enforcement on PutImage (spec 3.1, 4.6)."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from berthctl import ACCOUNT, module_server, BerthCase, make_image, put, uniq  # noqa: E402

B = None
ENUM_MSG = ("Invalid parameter at 'imageTagMutability' failed to satisfy constraint: 'Member "
            "must satisfy enum value set: [IMMUTABLE, MUTABLE, MUTABLE_WITH_EXCLUSION, "
            "IMMUTABLE_WITH_EXCLUSION]'")


def setUpModule():
    global B
    B = module_server(name="mutability")



def W(f):
    return {"filterType": "WILDCARD", "filter": f}


class PutImageTagMutability(BerthCase):
    def setUp(self):
        self.c = B.client()
        self.name = uniq("mut")
        self.c.create_repository(repositoryName=self.name)

    def describe(self):
        return self.c.describe_repositories(repositoryNames=[self.name])["repositories"][0]

    def test_set_immutable_and_back(self):
        r = self.c.put_image_tag_mutability(repositoryName=self.name,
                                            imageTagMutability="IMMUTABLE")
        self.assertEqual(ACCOUNT, r["registryId"])
        self.assertEqual(self.name, r["repositoryName"])
        self.assertEqual("IMMUTABLE", r["imageTagMutability"])
        self.assertEqual("IMMUTABLE", self.describe()["imageTagMutability"])
        r = self.c.put_image_tag_mutability(repositoryName=self.name,
                                            imageTagMutability="MUTABLE")
        self.assertEqual("MUTABLE", r["imageTagMutability"])
        self.assertEqual("MUTABLE", self.describe()["imageTagMutability"])

    def test_with_exclusion_filters(self):
        filters = [W("dev-*"), W("latest")]
        r = self.c.put_image_tag_mutability(repositoryName=self.name,
                                            imageTagMutability="IMMUTABLE_WITH_EXCLUSION",
                                            imageTagMutabilityExclusionFilters=filters)
        self.assertEqual("IMMUTABLE_WITH_EXCLUSION", r["imageTagMutability"])
        self.assertEqual(filters, r["imageTagMutabilityExclusionFilters"])
        d = self.describe()
        self.assertEqual("IMMUTABLE_WITH_EXCLUSION", d["imageTagMutability"])
        self.assertEqual(filters, d["imageTagMutabilityExclusionFilters"])
        # replacing the setting replaces the filters; no list = no filters
        r = self.c.put_image_tag_mutability(repositoryName=self.name,
                                            imageTagMutability="MUTABLE_WITH_EXCLUSION",
                                            imageTagMutabilityExclusionFilters=[W("rel-*")])
        self.assertEqual([W("rel-*")], self.describe()["imageTagMutabilityExclusionFilters"])
        self.c.put_image_tag_mutability(repositoryName=self.name, imageTagMutability="IMMUTABLE")
        d = self.describe()
        self.assertEqual("IMMUTABLE", d["imageTagMutability"])
        self.assertFalse(d.get("imageTagMutabilityExclusionFilters"), d)

    def test_invalid_enum_exact_message(self):
        self.assertClientError("InvalidParameterException", self.c.put_image_tag_mutability,
                               repositoryName=self.name, imageTagMutability="FROZEN",
                               msg=ENUM_MSG)
        # validated before the repository lookup
        self.assertClientError("InvalidParameterException", self.c.put_image_tag_mutability,
                               repositoryName=uniq("absent"), imageTagMutability="FROZEN",
                               msg=ENUM_MSG)
        self.assertEqual("MUTABLE", self.describe()["imageTagMutability"])

    def test_invalid_filter_type(self):
        self.assertClientError(
            "InvalidParameterException", self.c.put_image_tag_mutability,
            repositoryName=self.name, imageTagMutability="MUTABLE_WITH_EXCLUSION",
            imageTagMutabilityExclusionFilters=[{"filterType": "REGEX", "filter": "a.*"}])
        self.assertEqual("MUTABLE", self.describe()["imageTagMutability"])

    def test_invalid_filter_value_and_count(self):
        for filters in ([W("bad filter")], [W("x%d" % i) for i in range(6)]):
            with self.subTest(n=len(filters)):
                self.assertClientError(
                    "InvalidParameterException", self.c.put_image_tag_mutability,
                    repositoryName=self.name, imageTagMutability="IMMUTABLE_WITH_EXCLUSION",
                    imageTagMutabilityExclusionFilters=filters)
        self.assertEqual("MUTABLE", self.describe()["imageTagMutability"])

    def test_filters_consistency(self):
        # as in CreateRepository: *_WITH_EXCLUSION needs filters, the others take none
        for mut in ("MUTABLE_WITH_EXCLUSION", "IMMUTABLE_WITH_EXCLUSION"):
            with self.subTest(mut=mut):
                self.assertClientError(
                    "InvalidParameterException", self.c.put_image_tag_mutability,
                    repositoryName=self.name, imageTagMutability=mut,
                    msg="Invalid parameter at 'imageTagMutabilityExclusionFilters' failed to "
                        "satisfy constraint: 'ImageTagMutabilityExclusionFilters can't be null "
                        "when imageTagMutability is set as %s'" % mut)
        for mut in ("MUTABLE", "IMMUTABLE"):
            with self.subTest(mut=mut):
                self.assertClientError(
                    "InvalidParameterException", self.c.put_image_tag_mutability,
                    repositoryName=self.name, imageTagMutability=mut,
                    imageTagMutabilityExclusionFilters=[W("x*")],
                    msg_contains="imageTagMutabilityExclusionFilters")
        self.assertEqual("MUTABLE", self.describe()["imageTagMutability"])

    def test_five_filters_allowed(self):
        filters = [W("f%d-*" % i) for i in range(5)]
        r = self.c.put_image_tag_mutability(repositoryName=self.name,
                                            imageTagMutability="MUTABLE_WITH_EXCLUSION",
                                            imageTagMutabilityExclusionFilters=filters)
        self.assertEqual(filters, r["imageTagMutabilityExclusionFilters"])

    def test_missing_repository(self):
        name = uniq("absent")
        self.assertClientError(
            "RepositoryNotFoundException", self.c.put_image_tag_mutability,
            repositoryName=name, imageTagMutability="IMMUTABLE",
            msg="The repository with name '%s' does not exist in the registry with id '%s'"
                % (name, ACCOUNT))


class Enforcement(BerthCase):
    """What PutImage does with a tag already held by another image."""

    def setUp(self):
        self.c = B.client()

    def repo(self, mutability, filters=None):
        name = uniq(mutability.lower().replace("_", "-"))
        args = {"repositoryName": name, "imageTagMutability": mutability}
        if filters:
            args["imageTagMutabilityExclusionFilters"] = [W(f) for f in filters]
        self.c.create_repository(**args)
        return name

    def holder(self, repo, tag):
        r = self.c.batch_get_image(repositoryName=repo, imageIds=[{"imageTag": tag}])
        self.assertEqual(1, len(r["images"]), r)
        return r["images"][0]["imageId"]["imageDigest"]

    def images(self, repo, n):
        return [make_image(self.c, repo) for _ in range(n)]

    def assertMovable(self, repo, tag, a, b):
        put(self.c, repo, a, tag)
        put(self.c, repo, b, tag)
        self.assertEqual(b.digest, self.holder(repo, tag))

    def assertFrozen(self, repo, tag, a, b):
        put(self.c, repo, a, tag)
        self.assertClientError("ImageTagAlreadyExistsException", put, self.c, repo, b, tag)
        self.assertEqual(a.digest, self.holder(repo, tag))
        # b was not stored as a side effect of the failed put
        self.assertClientError("ImageNotFoundException", self.c.describe_images,
                               repositoryName=repo, imageIds=[{"imageDigest": b.digest}])

    def test_mutable(self):
        repo = self.repo("MUTABLE")
        a, b = self.images(repo, 2)
        self.assertMovable(repo, "latest", a, b)

    def test_immutable(self):
        repo = self.repo("IMMUTABLE")
        a, b = self.images(repo, 2)
        self.assertFrozen(repo, "v1", a, b)
        # same image, same tag: ImageAlreadyExistsException (nothing changed)
        self.assertClientError("ImageAlreadyExistsException", put, self.c, repo, a, "v1")
        # adding another tag to the same image is fine; b can get its own tag
        put(self.c, repo, a, "v1-alias")
        put(self.c, repo, b, "v2")
        d = self.c.describe_images(repositoryName=repo, imageIds=[{"imageDigest": a.digest}])
        self.assertEqual(["v1", "v1-alias"], d["imageDetails"][0]["imageTags"])

    def test_immutable_tag_can_be_deleted_and_reused(self):
        repo = self.repo("IMMUTABLE")
        a, b = self.images(repo, 2)
        put(self.c, repo, a, "v1")
        put(self.c, repo, a, "keep")
        r = self.c.batch_delete_image(repositoryName=repo, imageIds=[{"imageTag": "v1"}])
        self.assertEqual([], r["failures"])
        put(self.c, repo, b, "v1")
        self.assertEqual(b.digest, self.holder(repo, "v1"))

    def test_immutable_with_exclusion(self):
        repo = self.repo("IMMUTABLE_WITH_EXCLUSION", ["dev-*", "latest"])
        imgs = self.images(repo, 6)
        self.assertMovable(repo, "dev-1", imgs[0], imgs[1])      # excluded -> mutable
        self.assertMovable(repo, "latest", imgs[0], imgs[1])     # excluded -> mutable
        self.assertFrozen(repo, "prod-1", imgs[2], imgs[3])      # not excluded -> immutable
        # whole-tag glob: "latest" does not match "latest2", "dev-*" does not match "xdev-1"
        self.assertFrozen(repo, "latest2", imgs[4], imgs[5])
        self.assertFrozen(repo, "xdev-1", imgs[4], imgs[5])

    def test_mutable_with_exclusion(self):
        repo = self.repo("MUTABLE_WITH_EXCLUSION", ["release-*", "v1.*"])
        imgs = self.images(repo, 6)
        self.assertFrozen(repo, "release-1", imgs[0], imgs[1])   # listed -> frozen
        self.assertMovable(repo, "latest", imgs[0], imgs[1])     # others move
        # '.' is a literal character in a WILDCARD filter, not a regex operator
        self.assertMovable(repo, "v1x2", imgs[2], imgs[3])
        self.assertFrozen(repo, "v1.3", imgs[4], imgs[5])

    def test_star_matches_empty_and_middle(self):
        repo = self.repo("IMMUTABLE_WITH_EXCLUSION", ["a*b"])
        imgs = self.images(repo, 3)
        self.assertMovable(repo, "ab", imgs[0], imgs[1])
        self.assertMovable(repo, "a-x-b", imgs[0], imgs[1])
        self.assertFrozen(repo, "a-x-bc", imgs[0], imgs[2])

    def test_change_applies_to_future_pushes_only(self):
        repo = self.repo("MUTABLE")
        a, b, c = self.images(repo, 3)
        put(self.c, repo, a, "t")
        self.c.put_image_tag_mutability(repositoryName=repo, imageTagMutability="IMMUTABLE")
        self.assertClientError("ImageTagAlreadyExistsException", put, self.c, repo, b, "t")
        self.c.put_image_tag_mutability(repositoryName=repo, imageTagMutability="MUTABLE")
        put(self.c, repo, c, "t")
        self.assertEqual(c.digest, self.holder(repo, "t"))
