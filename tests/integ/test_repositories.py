"""CreateRepository / DescribeRepositories / DeleteRepository (spec 3.1, 2.2, 2.3)."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from berthctl import (ACCOUNT, module_server, BerthCase, push_image, uniq,  # noqa: E402
                      upload_blob, rand_bytes)

B = None


def setUpModule():
    global B
    B = module_server(name="repos")



def rnf(name, registry=ACCOUNT):
    return ("The repository with name '%s' does not exist in the registry with id '%s'"
            % (name, registry))


class CreateRepository(BerthCase):
    def setUp(self):
        self.c = B.client()

    def test_defaults(self):
        name = uniq("defaults")
        r = self.c.create_repository(repositoryName=name)["repository"]
        self.assertEqual(name, r["repositoryName"])
        self.assertEqual(ACCOUNT, r["registryId"])
        self.assertEqual("arn:aws:ecr:us-east-1:%s:repository/%s" % (ACCOUNT, name),
                         r["repositoryArn"])
        self.assertEqual("%s.dkr.ecr.us-east-1.amazonaws.com/%s" % (ACCOUNT, name),
                         r["repositoryUri"])
        self.assertEqual("MUTABLE", r["imageTagMutability"])
        self.assertEqual({"scanOnPush": False}, r["imageScanningConfiguration"])
        self.assertEqual({"encryptionType": "AES256"}, r["encryptionConfiguration"])
        self.assertNotIn("imageTagMutabilityExclusionFilters", r)
        self.assertRecent(r["createdAt"])

    def test_all_options(self):
        name = uniq("opts")
        filters = [{"filterType": "WILDCARD", "filter": "dev-*"},
                   {"filterType": "WILDCARD", "filter": "latest"}]
        r = self.c.create_repository(
            repositoryName=name,
            tags=[{"Key": "team", "Value": "infra"}, {"Key": "env", "Value": ""}],
            imageTagMutability="IMMUTABLE_WITH_EXCLUSION",
            imageTagMutabilityExclusionFilters=filters,
            imageScanningConfiguration={"scanOnPush": True},
            encryptionConfiguration={"encryptionType": "KMS", "kmsKey": "alias/my-key"},
        )["repository"]
        self.assertEqual("IMMUTABLE_WITH_EXCLUSION", r["imageTagMutability"])
        self.assertEqual(filters, r["imageTagMutabilityExclusionFilters"])
        self.assertEqual({"scanOnPush": True}, r["imageScanningConfiguration"])
        self.assertEqual({"encryptionType": "KMS", "kmsKey": "alias/my-key"},
                         r["encryptionConfiguration"])
        # the same values come back from DescribeRepositories
        d = self.c.describe_repositories(repositoryNames=[name])["repositories"][0]
        for k in ("repositoryArn", "registryId", "repositoryName", "repositoryUri",
                  "imageTagMutability", "imageTagMutabilityExclusionFilters",
                  "imageScanningConfiguration", "encryptionConfiguration", "createdAt"):
            self.assertEqual(r[k], d[k], k)
        tags = self.c.list_tags_for_resource(resourceArn=r["repositoryArn"])["tags"]
        self.assertEqual([{"Key": "team", "Value": "infra"}, {"Key": "env", "Value": ""}], tags)

    def test_kms_without_key_gets_aws_managed_key(self):
        name = uniq("kms")
        r = self.c.create_repository(repositoryName=name,
                                     encryptionConfiguration={"encryptionType": "KMS"})
        enc = r["repository"]["encryptionConfiguration"]
        self.assertEqual("KMS", enc["encryptionType"])
        self.assertTrue(enc.get("kmsKey", "").startswith(
            "arn:aws:kms:us-east-1:%s:key/" % ACCOUNT), enc)

    def test_nested_name(self):
        name = "project-%s/web__app/v1.x" % uniq("n")
        r = self.c.create_repository(repositoryName=name)["repository"]
        self.assertTrue(r["repositoryArn"].endswith(":repository/" + name))
        self.assertTrue(r["repositoryUri"].endswith(".amazonaws.com/" + name))
        self.assertEqual(name, self.c.describe_repositories(repositoryNames=[name])
                         ["repositories"][0]["repositoryName"])

    def test_already_exists(self):
        name = uniq("dup")
        self.c.create_repository(repositoryName=name)
        self.assertClientError(
            "RepositoryAlreadyExistsException", self.c.create_repository, repositoryName=name,
            msg="The repository with name '%s' already exists in the registry with id '%s'"
            % (name, ACCOUNT))

    def test_invalid_names(self):
        for bad in ("UPPER", "tesT", "../x", "-abc", "abc-", "a//b", "a/", "/a", "a..b",
                    "a b", "x" * 257, "a:b", "a@b"):
            with self.subTest(name=bad):
                self.assertClientError(
                    "InvalidParameterException", self.c.create_repository, repositoryName=bad,
                    msg_contains="Invalid parameter at 'repositoryName' failed to satisfy "
                                 "constraint:")
        # none of them was created
        names = {r["repositoryName"] for r in self._all()}
        self.assertFalse({"UPPER", "tesT", "../x", "x" * 257} & names)

    def test_valid_name_edge_cases(self):
        base = uniq("edge")
        for good in (base + "--x", base + "__x", base + "/a/b/c", "0" + base,
                     base + ".y", base + "_y-z"):
            with self.subTest(name=good):
                self.c.create_repository(repositoryName=good)
        long_name = ("a" * 100 + "/") * 2 + "b" * (256 - 202)
        self.assertEqual(256, len(long_name))
        self.c.create_repository(repositoryName=long_name)
        self.c.delete_repository(repositoryName=long_name)

    def test_invalid_mutability(self):
        name = uniq("mut")
        self.assertClientError("InvalidParameterException", self.c.create_repository,
                               repositoryName=name, imageTagMutability="SOMETIMES",
                               msg_contains="imageTagMutability")
        self.assertRepoAbsent(name)

    def test_exclusion_filters_required_with_exclusion_mutability(self):
        for mut in ("MUTABLE_WITH_EXCLUSION", "IMMUTABLE_WITH_EXCLUSION"):
            with self.subTest(mut=mut):
                name = uniq("excl")
                self.assertClientError(
                    "InvalidParameterException", self.c.create_repository,
                    repositoryName=name, imageTagMutability=mut,
                    msg="Invalid parameter at 'imageTagMutabilityExclusionFilters' failed to "
                        "satisfy constraint: 'ImageTagMutabilityExclusionFilters can't be null "
                        "when imageTagMutability is set as %s'" % mut)
                self.assertRepoAbsent(name)

    def test_exclusion_filters_rejected_without_exclusion_mutability(self):
        for mut in ("MUTABLE", "IMMUTABLE", None):
            with self.subTest(mut=mut):
                name = uniq("excl")
                args = dict(repositoryName=name, imageTagMutabilityExclusionFilters=[
                    {"filterType": "WILDCARD", "filter": "x*"}])
                if mut:
                    args["imageTagMutability"] = mut
                self.assertClientError("InvalidParameterException", self.c.create_repository,
                                       msg_contains="imageTagMutabilityExclusionFilters", **args)
                self.assertRepoAbsent(name)

    def test_exclusion_filter_validation(self):
        cases = [
            [{"filterType": "REGEX", "filter": "x*"}],
            [{"filterType": "WILDCARD", "filter": "has space"}],
            [{"filterType": "WILDCARD", "filter": "a/b"}],
            [{"filterType": "WILDCARD", "filter": "x" * 129}],
            [{"filterType": "WILDCARD", "filter": "f%d" % i} for i in range(6)],
        ]
        for filters in cases:
            with self.subTest(filters=filters[0]["filter"][:20], n=len(filters)):
                name = uniq("exf")
                self.assertClientError(
                    "InvalidParameterException", self.c.create_repository, repositoryName=name,
                    imageTagMutability="MUTABLE_WITH_EXCLUSION",
                    imageTagMutabilityExclusionFilters=filters)
                self.assertRepoAbsent(name)

    def test_invalid_encryption_type(self):
        name = uniq("enc")
        self.assertClientError("InvalidParameterException", self.c.create_repository,
                               repositoryName=name,
                               encryptionConfiguration={"encryptionType": "ROT13"})
        self.assertRepoAbsent(name)

    def test_too_many_tags_creates_nothing(self):
        name = uniq("tags")
        tags = [{"Key": "k%d" % i, "Value": "v"} for i in range(51)]
        self.assertClientError("TooManyTagsException", self.c.create_repository,
                               repositoryName=name, tags=tags)
        self.assertRepoAbsent(name)
        # exactly 50 is fine
        self.c.create_repository(repositoryName=name, tags=tags[:50])
        arn = self.c.describe_repositories(repositoryNames=[name])["repositories"][0][
            "repositoryArn"]
        self.assertEqual(50, len(self.c.list_tags_for_resource(resourceArn=arn)["tags"]))

    def test_bad_tag_creates_nothing(self):
        name = uniq("tags")
        self.assertClientError("InvalidTagParameterException", self.c.create_repository,
                               repositoryName=name, tags=[{"Key": "k" * 129, "Value": "v"}])
        self.assertRepoAbsent(name)

    def test_explicit_own_registry_id(self):
        name = uniq("own")
        r = self.c.create_repository(repositoryName=name, registryId=ACCOUNT)["repository"]
        self.assertEqual(ACCOUNT, r["registryId"])
        self.c.describe_repositories(repositoryNames=[name])

    def test_other_registry_id(self):
        other = "210987654321"
        name = uniq("other")
        r = self.c.create_repository(repositoryName=name, registryId=other)["repository"]
        self.assertEqual(other, r["registryId"])
        self.assertEqual("arn:aws:ecr:us-east-1:%s:repository/%s" % (other, name),
                         r["repositoryArn"])
        self.assertEqual("%s.dkr.ecr.us-east-1.amazonaws.com/%s" % (other, name),
                         r["repositoryUri"])
        got = self.c.describe_repositories(registryId=other, repositoryNames=[name])
        self.assertEqual(other, got["repositories"][0]["registryId"])
        # it belongs to the other registry, not the caller's
        self.assertClientError("RepositoryNotFoundException", self.c.describe_repositories,
                               repositoryNames=[name], msg=rnf(name))
        self.c.delete_repository(repositoryName=name, registryId=other)

    def test_regions_are_separate_registries(self):
        name = uniq("region")
        self.c.create_repository(repositoryName=name)
        eu = B.client(region="eu-west-1")
        self.assertClientError("RepositoryNotFoundException", eu.describe_repositories,
                               repositoryNames=[name])
        r = eu.create_repository(repositoryName=name)["repository"]
        self.assertEqual("arn:aws:ecr:eu-west-1:%s:repository/%s" % (ACCOUNT, name),
                         r["repositoryArn"])
        self.assertEqual("%s.dkr.ecr.eu-west-1.amazonaws.com/%s" % (ACCOUNT, name),
                         r["repositoryUri"])

    def test_china_partition(self):
        cn = B.client(region="cn-north-1")
        name = uniq("cn")
        r = cn.create_repository(repositoryName=name)["repository"]
        self.assertEqual("arn:aws-cn:ecr:cn-north-1:%s:repository/%s" % (ACCOUNT, name),
                         r["repositoryArn"])
        self.assertEqual("%s.dkr.ecr.cn-north-1.amazonaws.com.cn/%s" % (ACCOUNT, name),
                         r["repositoryUri"])

    # helpers
    def _all(self, client=None):
        p = (client or self.c).get_paginator("describe_repositories")
        return [r for page in p.paginate() for r in page["repositories"]]

    def assertRepoAbsent(self, name):
        self.assertClientError("RepositoryNotFoundException", self.c.describe_repositories,
                               repositoryNames=[name])


class DescribeRepositories(BerthCase):
    REGION = "ap-south-1"  # a registry only this class uses
    NAMES = []

    @classmethod
    def setUpClass(cls):
        c = B.client(region=cls.REGION)
        cls.NAMES = ["page-%03d" % i for i in range(7)]
        for n in cls.NAMES:
            c.create_repository(repositoryName=n)

    def setUp(self):
        self.c = B.client(region=self.REGION)

    def test_all(self):
        repos = self.c.describe_repositories()["repositories"]
        self.assertEqual(sorted(self.NAMES), sorted(r["repositoryName"] for r in repos))
        for r in repos:
            self.assertEqual(ACCOUNT, r["registryId"])
            self.assertEqual("MUTABLE", r["imageTagMutability"])
            self.assertTrue(r["repositoryArn"].startswith("arn:aws:ecr:ap-south-1:"))

    def test_by_names(self):
        r = self.c.describe_repositories(repositoryNames=["page-003", "page-001"])
        self.assertEqual({"page-003", "page-001"},
                         {x["repositoryName"] for x in r["repositories"]})
        self.assertNotIn("nextToken", r)

    def test_missing_name_fails_whole_call(self):
        self.assertClientError("RepositoryNotFoundException", self.c.describe_repositories,
                               repositoryNames=["page-001", "nope-nope"], msg=rnf("nope-nope"))

    def test_pagination_max_results(self):
        seen = []
        r = self.c.describe_repositories(maxResults=3)
        self.assertEqual(3, len(r["repositories"]))
        seen += r["repositories"]
        r = self.c.describe_repositories(maxResults=3, nextToken=r["nextToken"])
        self.assertEqual(3, len(r["repositories"]))
        seen += r["repositories"]
        r = self.c.describe_repositories(maxResults=3, nextToken=r["nextToken"])
        self.assertEqual(1, len(r["repositories"]))
        self.assertNotIn("nextToken", r)
        seen += r["repositories"]
        names = [x["repositoryName"] for x in seen]
        self.assertEqual(len(names), len(set(names)), names)
        self.assertEqual(sorted(self.NAMES), sorted(names))

    def test_exact_page_boundary_has_no_token(self):
        r = self.c.describe_repositories(maxResults=7)
        self.assertEqual(7, len(r["repositories"]))
        self.assertNotIn("nextToken", r)

    def test_paginator_and_stable_order(self):
        p = self.c.get_paginator("describe_repositories")
        pages = list(p.paginate(PaginationConfig={"PageSize": 2}))
        self.assertEqual(4, len(pages))
        names = [r["repositoryName"] for pg in pages for r in pg["repositories"]]
        self.assertEqual(sorted(self.NAMES), sorted(names))
        unpaged = [r["repositoryName"] for r in self.c.describe_repositories()["repositories"]]
        self.assertEqual(unpaged, names, "page order must match unpaginated order")

    def test_names_with_pagination_params_rejected(self):
        self.assertClientError("InvalidParameterException", self.c.describe_repositories,
                               repositoryNames=["page-001"], maxResults=5)
        tok = self.c.describe_repositories(maxResults=1)["nextToken"]
        self.assertClientError("InvalidParameterException", self.c.describe_repositories,
                               repositoryNames=["page-001"], nextToken=tok)

    def test_bad_token_and_max_results(self):
        self.assertClientError("InvalidParameterException", self.c.describe_repositories,
                               nextToken="this-is-not-a-token")
        self.assertClientError("InvalidParameterException", self.c.describe_repositories,
                               maxResults=1001)
        self.assertEqual(7, len(self.c.describe_repositories(maxResults=1000)["repositories"]))

    def test_registry_without_repositories(self):
        r = self.c.describe_repositories(registryId="109876543210")
        self.assertEqual([], r["repositories"])

    def test_malformed_registry_id_is_not_found(self):
        self.assertClientError("RepositoryNotFoundException", self.c.describe_repositories,
                               registryId="123", repositoryNames=["page-001"])

    def test_invalid_name_in_list(self):
        self.assertClientError("InvalidParameterException", self.c.describe_repositories,
                               repositoryNames=["page-001", "Bad_Name"],
                               msg_contains="repositoryName")

    def test_too_many_names(self):
        self.assertClientError("InvalidParameterException", self.c.describe_repositories,
                               repositoryNames=["n%03d" % i for i in range(101)],
                               msg_contains="repositoryNames")


class DefaultPageSize(BerthCase):
    def test_default_page_is_100(self):
        c = B.client(region="sa-east-1")
        for i in range(103):
            c.create_repository(repositoryName="many-%03d" % i)
        r = c.describe_repositories()
        self.assertEqual(100, len(r["repositories"]))
        self.assertIn("nextToken", r)
        r2 = c.describe_repositories(nextToken=r["nextToken"])
        self.assertEqual(3, len(r2["repositories"]))
        self.assertNotIn("nextToken", r2)
        all_names = {x["repositoryName"] for x in r["repositories"] + r2["repositories"]}
        self.assertEqual(103, len(all_names))


class DeleteRepository(BerthCase):
    def setUp(self):
        self.c = B.client()

    def test_delete_empty(self):
        name = uniq("del")
        created = self.c.create_repository(
            repositoryName=name, imageTagMutability="IMMUTABLE")["repository"]
        r = self.c.delete_repository(repositoryName=name)["repository"]
        for k in ("repositoryArn", "registryId", "repositoryName", "repositoryUri",
                  "imageTagMutability"):
            self.assertEqual(created[k], r[k], k)
        self.assertClientError("RepositoryNotFoundException", self.c.describe_repositories,
                               repositoryNames=[name], msg=rnf(name))

    def test_delete_missing(self):
        name = uniq("nope")
        self.assertClientError("RepositoryNotFoundException", self.c.delete_repository,
                               repositoryName=name, msg=rnf(name))

    def test_not_empty_without_force(self):
        name = uniq("full")
        self.c.create_repository(repositoryName=name)
        push_image(self.c, name, tag="v1")
        for force in (None, False):
            args = {"repositoryName": name}
            if force is not None:
                args["force"] = force
            self.assertClientError(
                "RepositoryNotEmptyException", self.c.delete_repository,
                msg="The repository with name '%s' in registry with id '%s' cannot be deleted "
                    "because it still contains images" % (name, ACCOUNT), **args)
        # still intact
        self.assertEqual(1, len(self.c.list_images(repositoryName=name)["imageIds"]))

    def test_untagged_image_still_blocks(self):
        name = uniq("untagged")
        self.c.create_repository(repositoryName=name)
        push_image(self.c, name)
        self.assertClientError("RepositoryNotEmptyException", self.c.delete_repository,
                               repositoryName=name)

    def test_only_blobs_is_empty(self):
        name = uniq("blobs")
        self.c.create_repository(repositoryName=name)
        upload_blob(self.c, name, rand_bytes(100))
        self.c.delete_repository(repositoryName=name)

    def test_force_and_clean_slate(self):
        name = uniq("force")
        self.c.create_repository(repositoryName=name, tags=[{"Key": "a", "Value": "b"}],
                                 imageTagMutability="IMMUTABLE")
        img = push_image(self.c, name, tag="v1")
        self.c.set_repository_policy(repositoryName=name, policyText=POLICY)
        self.c.put_lifecycle_policy(repositoryName=name, lifecyclePolicyText=LIFECYCLE)
        r = self.c.delete_repository(repositoryName=name, force=True)["repository"]
        self.assertEqual(name, r["repositoryName"])
        self.assertClientError("RepositoryNotFoundException", self.c.list_images,
                               repositoryName=name)
        # recreate: nothing survives
        r = self.c.create_repository(repositoryName=name)["repository"]
        self.assertEqual("MUTABLE", r["imageTagMutability"])
        self.assertEqual([], self.c.list_images(repositoryName=name)["imageIds"])
        self.assertEqual([], self.c.list_tags_for_resource(resourceArn=r["repositoryArn"])[
            "tags"])
        self.assertClientError("RepositoryPolicyNotFoundException",
                               self.c.get_repository_policy, repositoryName=name)
        self.assertClientError("LifecyclePolicyNotFoundException",
                               self.c.get_lifecycle_policy, repositoryName=name)
        layers = self.c.batch_check_layer_availability(
            repositoryName=name, layerDigests=[img.layers[0][0]["digest"]])["layers"]
        self.assertEqual("UNAVAILABLE", layers[0]["layerAvailability"])
        # the old image cannot be re-put without re-uploading its blobs
        self.assertClientError("LayersNotFoundException", self.c.put_image,
                               repositoryName=name, imageManifest=img.manifest, imageTag="v1")

    def test_delete_other_registry_id_not_found(self):
        name = uniq("reg")
        self.c.create_repository(repositoryName=name)
        self.assertClientError("RepositoryNotFoundException", self.c.delete_repository,
                               repositoryName=name, registryId="999999999999",
                               msg=rnf(name, "999999999999"))
        self.c.describe_repositories(repositoryNames=[name])


POLICY = ('{"Version":"2012-10-17","Statement":[{"Sid":"pull","Effect":"Allow",'
          '"Principal":{"AWS":"arn:aws:iam::123456789012:root"},'
          '"Action":["ecr:BatchGetImage","ecr:GetDownloadUrlForLayer"]}]}')
LIFECYCLE = ('{"rules":[{"rulePriority":1,"description":"expire untagged",'
             '"selection":{"tagStatus":"untagged","countType":"sinceImagePushed",'
             '"countUnit":"days","countNumber":14},"action":{"type":"expire"}}]}')
