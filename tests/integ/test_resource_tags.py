"""TagResource / UntagResource / ListTagsForResource (spec 3.1, 2.2, 2.5)."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from berthctl import ACCOUNT, module_server, BerthCase, uniq  # noqa: E402

B = None
INVALID_ARN = "Invalid parameter at 'resourceArn' failed to satisfy constraint: 'Invalid ARN'"


def setUpModule():
    global B
    B = module_server(name="tags")



def T(k, v):
    return {"Key": k, "Value": v}


class ResourceTags(BerthCase):
    def setUp(self):
        self.c = B.client()
        self.name = uniq("tagged")
        self.arn = self.c.create_repository(repositoryName=self.name)["repository"][
            "repositoryArn"]

    def tags(self, arn=None):
        return self.c.list_tags_for_resource(resourceArn=arn or self.arn)["tags"]

    def test_empty(self):
        self.assertEqual([], self.tags())

    def test_tag_list_untag(self):
        r = self.c.tag_resource(resourceArn=self.arn, tags=[T("b", "2"), T("a", "1")])
        self.assertEqual(200, r["ResponseMetadata"]["HTTPStatusCode"])
        self.assertEqual([T("b", "2"), T("a", "1")], self.tags())
        # overwrite keeps position/others, new key appended
        self.c.tag_resource(resourceArn=self.arn, tags=[T("a", "one"), T("c", "3")])
        got = self.tags()
        self.assertEqual({"a": "one", "b": "2", "c": "3"}, {t["Key"]: t["Value"] for t in got})
        self.assertEqual(3, len(got))
        # untag: absent keys ignored
        self.c.untag_resource(resourceArn=self.arn, tagKeys=["b", "does-not-exist"])
        self.assertEqual({"a": "one", "c": "3"}, {t["Key"]: t["Value"] for t in self.tags()})
        self.c.untag_resource(resourceArn=self.arn, tagKeys=["a", "c"])
        self.assertEqual([], self.tags())

    def test_insertion_order(self):
        keys = ["zeta", "alpha", "mid", "Beta", "aws-ish"]
        for k in keys:
            self.c.tag_resource(resourceArn=self.arn, tags=[T(k, k.upper())])
        self.assertEqual(keys, [t["Key"] for t in self.tags()])

    def test_empty_value_and_max_lengths(self):
        self.c.tag_resource(resourceArn=self.arn, tags=[T("k" * 128, "v" * 256), T("e", "")])
        self.assertEqual({"k" * 128: "v" * 256, "e": ""},
                         {t["Key"]: t["Value"] for t in self.tags()})

    def test_fifty_limit(self):
        self.c.tag_resource(resourceArn=self.arn, tags=[T("k%02d" % i, "v") for i in range(50)])
        self.assertEqual(50, len(self.tags()))
        # overwriting existing keys keeps the count at 50: allowed
        self.c.tag_resource(resourceArn=self.arn, tags=[T("k00", "new")])
        self.assertClientError("TooManyTagsException", self.c.tag_resource,
                               resourceArn=self.arn, tags=[T("k50", "v")])
        tags = self.tags()
        self.assertEqual(50, len(tags))
        self.assertNotIn("k50", [t["Key"] for t in tags])

    def test_limit_counts_after_merge(self):
        self.c.tag_resource(resourceArn=self.arn, tags=[T("old%02d" % i, "v") for i in range(30)])
        self.assertClientError("TooManyTagsException", self.c.tag_resource,
                               resourceArn=self.arn,
                               tags=[T("new%02d" % i, "v") for i in range(21)])
        self.assertEqual(30, len(self.tags()), "failed TagResource must not add any tag")
        self.c.tag_resource(resourceArn=self.arn, tags=[T("new%02d" % i, "v") for i in range(20)])
        self.assertEqual(50, len(self.tags()))

    def test_single_call_over_limit(self):
        self.assertClientError("TooManyTagsException", self.c.tag_resource,
                               resourceArn=self.arn, tags=[T("k%02d" % i, "v") for i in range(51)])
        self.assertEqual([], self.tags())

    def test_invalid_tag_parameters(self):
        for bad, codes in ((T("k" * 129, "v"), "InvalidTagParameterException"),
                           (T("k", "v" * 257), "InvalidTagParameterException"),
                           (T("aws:reserved", "v"), "InvalidTagParameterException"),
                           # empty key: spec only says keys are 1..128 chars
                           (T("", "v"), ("InvalidTagParameterException",
                                         "InvalidParameterException"))):
            with self.subTest(klen=len(bad["Key"]), vlen=len(bad["Value"])):
                self.assertClientError(codes, self.c.tag_resource,
                                       resourceArn=self.arn, tags=[T("fine", "x"), bad])
                self.assertEqual([], self.tags(), "nothing may be applied on failure")

    def test_bad_arn(self):
        for arn in ("not-an-arn", "arn:aws:s3:::bucket",
                    "arn:aws:ecr:us-east-1:%s:cluster/x" % ACCOUNT, ""):
            with self.subTest(arn=arn):
                self.assertClientError("InvalidParameterException", self.c.list_tags_for_resource,
                                       resourceArn=arn, msg=INVALID_ARN)
                self.assertClientError("InvalidParameterException", self.c.tag_resource,
                                       resourceArn=arn, tags=[T("a", "b")], msg=INVALID_ARN)
                self.assertClientError("InvalidParameterException", self.c.untag_resource,
                                       resourceArn=arn, tagKeys=["a"], msg=INVALID_ARN)

    def test_missing_repository(self):
        arn = "arn:aws:ecr:us-east-1:%s:repository/no-such-repo" % ACCOUNT
        msg = ("The repository with name 'no-such-repo' does not exist in the registry with id "
               "'%s'" % ACCOUNT)
        self.assertClientError("RepositoryNotFoundException", self.c.list_tags_for_resource,
                               resourceArn=arn, msg=msg)
        self.assertClientError("RepositoryNotFoundException", self.c.tag_resource,
                               resourceArn=arn, tags=[T("a", "b")], msg=msg)
        self.assertClientError("RepositoryNotFoundException", self.c.untag_resource,
                               resourceArn=arn, tagKeys=["a"], msg=msg)

    def test_arn_of_other_account_names_that_account(self):
        arn = self.arn.replace(":%s:" % ACCOUNT, ":111122223333:")
        self.assertClientError(
            "RepositoryNotFoundException", self.c.list_tags_for_resource, resourceArn=arn,
            msg="The repository with name '%s' does not exist in the registry with id "
                "'111122223333'" % self.name)

    def test_nested_repository_name_in_arn(self):
        name = "group-%s/sub/leaf" % uniq("g")
        arn = self.c.create_repository(repositoryName=name)["repository"]["repositoryArn"]
        self.assertTrue(arn.endswith("repository/" + name))
        self.c.tag_resource(resourceArn=arn, tags=[T("nested", "yes")])
        self.assertEqual([T("nested", "yes")], self.tags(arn))
        self.assertEqual([], self.tags())
