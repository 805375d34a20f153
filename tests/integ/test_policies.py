"""Repository policy, lifecycle policy and registry policy (spec 3.1, 3.5, 3.7, 4.5)."""

import datetime
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from berthctl import ACCOUNT, module_server, BerthCase, uniq  # noqa: E402

B = None


def setUpModule():
    global B
    B = module_server(name="policies")



def stmt(**kw):
    s = {"Sid": "s1", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::%s:root" % ACCOUNT},
         "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]}
    for k, v in kw.items():
        if v is None:
            s.pop(k, None)
        else:
            s[k] = v
    return s


def policy(*stmts, version="2012-10-17", **top):
    p = {}
    if version:
        p["Version"] = version
    p["Statement"] = list(stmts) if stmts else [stmt()]
    p.update(top)
    return json.dumps(p)


BAD_REPO_POLICY = ("Invalid parameter at 'PolicyText' failed to satisfy constraint: 'Invalid "
                   "repository policy provided'")


class RepositoryPolicy(BerthCase):
    def setUp(self):
        self.c = B.client()
        self.name = uniq("pol")
        self.c.create_repository(repositoryName=self.name)

    def test_set_get_delete(self):
        text = policy()
        r = self.c.set_repository_policy(repositoryName=self.name, policyText=text)
        self.assertEqual(ACCOUNT, r["registryId"])
        self.assertEqual(self.name, r["repositoryName"])
        self.assertEqual(json.loads(text), json.loads(r["policyText"]))
        g = self.c.get_repository_policy(repositoryName=self.name)
        self.assertEqual(ACCOUNT, g["registryId"])
        self.assertEqual(self.name, g["repositoryName"])
        self.assertEqual(json.loads(text), json.loads(g["policyText"]))
        d = self.c.delete_repository_policy(repositoryName=self.name)
        self.assertEqual(json.loads(text), json.loads(d["policyText"]))
        self.assertEqual(self.name, d["repositoryName"])
        msg = ("Repository policy does not exist for the repository with name '%s' in the "
               "registry with id '%s'" % (self.name, ACCOUNT))
        self.assertClientError("RepositoryPolicyNotFoundException", self.c.get_repository_policy,
                               repositoryName=self.name, msg=msg)
        self.assertClientError("RepositoryPolicyNotFoundException",
                               self.c.delete_repository_policy, repositoryName=self.name, msg=msg)

    def test_stored_verbatim_and_replaced(self):
        text = '{\n  "Version" : "2012-10-17",\n\t"Statement": [ %s ]\n}\n' % json.dumps(stmt())
        self.c.set_repository_policy(repositoryName=self.name, policyText=text)
        self.assertEqual(text, self.c.get_repository_policy(repositoryName=self.name)[
            "policyText"])
        text2 = policy(stmt(Sid="other", Effect="Deny"))
        self.c.set_repository_policy(repositoryName=self.name, policyText=text2, force=True)
        self.assertEqual(json.loads(text2), json.loads(
            self.c.get_repository_policy(repositoryName=self.name)["policyText"]))

    def test_accepted_variants(self):
        good = [
            policy(version="2008-10-17"),
            policy(version=None),
            policy(stmt(Sid="dup"), stmt(Sid="dup", Effect="Deny")),
            policy(stmt(Action="ecr:*")),
            policy(stmt(Action=None, NotAction=["ecr:DeleteRepository"])),
            policy(stmt(Resource="*", Condition={"StringEquals": {"aws:PrincipalOrgID": "o-1"}})),
            policy(Id="my-policy"),
        ]
        for text in good:
            with self.subTest(policy=text):
                self.c.set_repository_policy(repositoryName=self.name, policyText=text)
                self.assertEqual(json.loads(text), json.loads(
                    self.c.get_repository_policy(repositoryName=self.name)["policyText"]))

    def test_rejected_variants(self):
        bad = [
            "not json at all",
            "",
            "[]",
            '"a string"',
            policy(Unknown="x"),
            json.dumps({"Version": "2012-10-17"}),
            json.dumps({"Version": "2012-10-17", "Statement": []}),
            policy(stmt(Effect=None)),
            policy(stmt(Effect="Maybe")),
            policy(stmt(Action=None)),
            policy(stmt(Action=[])),
            policy(stmt(NotAction=["ecr:PutImage"])),
            policy(stmt(Bogus="x")),
            policy(stmt(Action=["BatchGetImage"])),
        ]
        self.c.set_repository_policy(repositoryName=self.name, policyText=policy(stmt(Sid="keep")))
        for text in bad:
            with self.subTest(policy=text):
                self.assertClientError("InvalidParameterException", self.c.set_repository_policy,
                                       repositoryName=self.name, policyText=text,
                                       msg=BAD_REPO_POLICY)
        # the previous policy is untouched
        got = json.loads(self.c.get_repository_policy(repositoryName=self.name)["policyText"])
        self.assertEqual("keep", got["Statement"][0]["Sid"])

    def test_too_long(self):
        text = policy(stmt(Sid="x" * 10300))
        self.assertGreater(len(text), 10240)
        self.assertClientError("InvalidParameterException", self.c.set_repository_policy,
                               repositoryName=self.name, policyText=text)

    def test_missing_repository(self):
        name = uniq("absent")
        msg = ("The repository with name '%s' does not exist in the registry with id '%s'"
               % (name, ACCOUNT))
        self.assertClientError("RepositoryNotFoundException", self.c.set_repository_policy,
                               repositoryName=name, policyText=policy(), msg=msg)
        self.assertClientError("RepositoryNotFoundException", self.c.get_repository_policy,
                               repositoryName=name, msg=msg)
        self.assertClientError("RepositoryNotFoundException", self.c.delete_repository_policy,
                               repositoryName=name, msg=msg)


# ------------------------------------------------------------------------------------------
# lifecycle

LC_PREFIX = ("Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint: "
             "'Lifecycle policy validation failure: ")


def rule(prio=1, action=None, description=None, **sel):
    s = {"tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days",
         "countNumber": 14}
    for k, v in sel.items():
        if v is None:
            s.pop(k, None)
        else:
            s[k] = v
    return {"rulePriority": prio, "description": description or "rule %d" % prio,
            "selection": s,
            "action": {"type": "expire"} if action is None else action}


def lc(*rules, pad=True):
    text = json.dumps({"rules": list(rules)})
    if pad and len(text) < 100:
        text += " " * (100 - len(text))
    return text


def padded(text):
    return text + " " * max(0, 100 - len(text))


class LifecyclePolicy(BerthCase):
    def setUp(self):
        self.c = B.client()
        self.name = uniq("lc")
        self.c.create_repository(repositoryName=self.name)

    def test_put_get_delete(self):
        text = lc(rule(1), rule(2, tagStatus="tagged", tagPrefixList=["prod"],
                               countType="imageCountMoreThan", countUnit=None, countNumber=5))
        r = self.c.put_lifecycle_policy(repositoryName=self.name, lifecyclePolicyText=text)
        self.assertEqual(ACCOUNT, r["registryId"])
        self.assertEqual(self.name, r["repositoryName"])
        self.assertEqual(json.loads(text), json.loads(r["lifecyclePolicyText"]))
        g = self.c.get_lifecycle_policy(repositoryName=self.name)
        self.assertEqual(self.name, g["repositoryName"])
        self.assertEqual(ACCOUNT, g["registryId"])
        self.assertEqual(json.loads(text), json.loads(g["lifecyclePolicyText"]))
        self.assertIsInstance(g["lastEvaluatedAt"], datetime.datetime)
        d = self.c.delete_lifecycle_policy(repositoryName=self.name)
        self.assertEqual(json.loads(text), json.loads(d["lifecyclePolicyText"]))
        self.assertIsInstance(d["lastEvaluatedAt"], datetime.datetime)
        msg = ("Lifecycle policy does not exist for the repository with name '%s' in the "
               "registry with id '%s'" % (self.name, ACCOUNT))
        self.assertClientError("LifecyclePolicyNotFoundException", self.c.get_lifecycle_policy,
                               repositoryName=self.name, msg=msg)
        self.assertClientError("LifecyclePolicyNotFoundException",
                               self.c.delete_lifecycle_policy, repositoryName=self.name, msg=msg)

    def test_replace(self):
        self.c.put_lifecycle_policy(repositoryName=self.name, lifecyclePolicyText=lc(rule(1)))
        t2 = lc(rule(7, countNumber=30))
        self.c.put_lifecycle_policy(repositoryName=self.name, lifecyclePolicyText=t2)
        self.assertEqual(json.loads(t2), json.loads(
            self.c.get_lifecycle_policy(repositoryName=self.name)["lifecyclePolicyText"]))

    def test_valid_policies(self):
        good = [
            lc(rule(1, tagStatus="any", countType="imageCountMoreThan", countUnit=None,
                    countNumber=10)),
            lc(rule(1, tagStatus="tagged", tagPatternList=["prod*", "*-rc-*"],
                    countType="imageCountMoreThan", countUnit=None, countNumber=3),
               rule(2), rule(3, tagStatus="any", countNumber=90)),
            # AWS archive features (not known to moto)
            lc(rule(1, tagStatus="any", countType="sinceImagePulled", countNumber=90,
                    action={"type": "transition", "targetStorageClass": "archive"})),
            lc(rule(1, tagStatus="any", storageClass="archive",
                    countType="sinceImageTransitioned", countNumber=120)),
        ]
        for text in good:
            with self.subTest(policy=text):
                self.c.put_lifecycle_policy(repositoryName=self.name, lifecyclePolicyText=text)

    def assertLcError(self, text, detail=None, closing=True, contains=None):
        self.c.put_lifecycle_policy(repositoryName=self.name, lifecyclePolicyText=lc(rule(42)))
        kw = {}
        if detail is not None:
            kw["msg"] = LC_PREFIX + detail + ("'" if closing else "")
        else:
            kw["msg_contains"] = [LC_PREFIX] + ([contains] if contains else [])
        self.assertClientError("InvalidParameterException", self.c.put_lifecycle_policy,
                               repositoryName=self.name, lifecyclePolicyText=text, **kw)
        # the stored policy is unchanged
        got = json.loads(self.c.get_lifecycle_policy(repositoryName=self.name)[
            "lifecyclePolicyText"])
        self.assertEqual(42, got["rules"][0]["rulePriority"])

    def test_schema_errors_exact(self):
        self.assertLcError(padded("this is not JSON; " * 6),
                           "Could not map policyString into LifecyclePolicy.")
        self.assertLcError(padded('["rules", "but", "an", "array"]'),
                           "Could not map policyString into LifecyclePolicy.")
        self.assertLcError(padded("{}"), 'object has missing required properties (["rules"])')
        self.assertLcError(padded('{"rules": "nope"}'),
                           'object has missing required properties (["rules"])')
        self.assertLcError(lc({"rulePriority": 1}),
                           'object has missing required properties (["action", "selection"])')
        self.assertLcError(lc({"description": "x"}),
                           'object has missing required properties (["action", "rulePriority", '
                           '"selection"])')
        r = rule(1)
        r["extra"] = True
        self.assertLcError(lc(r), 'object instance has properties which are not allowed by the '
                                  'schema: (["extra"])')
        self.assertLcError(lc(rule(1, action={})),
                           'object has missing required properties (["type"])')
        self.assertLcError(lc(rule(1, action={"type": "expire", "when": "now"})),
                           'object instance has properties which are not allowed by the schema: '
                           '(["when"])')
        self.assertLcError(lc(rule(1, countType=None, countNumber=None)),
                           'object has missing required properties (["countNumber", '
                           '"countType"])')
        self.assertLcError(lc(rule(1, color="red")),
                           'object instance has properties which are not allowed by the schema: '
                           '(["color"])')
        self.assertLcError(lc(rule(1, countNumber=0)),
                           "numeric instance is lower than the required minimum (minimum: 1, "
                           "found: 0)", closing=False)
        self.assertLcError(lc(rule(1, countType="sinceForever")),
                           "instance failed to match exactly one schema (matched 0 out of 2)",
                           closing=False)

    def test_schema_errors_enums(self):
        self.assertLcError(lc(rule(1, tagStatus="sometimes")),
                           contains='not found in enum :(possible values: ["any", "tagged", '
                                    '"untagged"])')
        self.assertLcError(lc(rule(1, action={"type": "delete"})),
                           contains='not found in enum :(possible values: ["expire", '
                                    '"transition"])')
        self.assertLcError(lc(rule(1, countUnit="hours")))
        self.assertLcError(lc(rule(1, countType="imageCountMoreThan")))  # countUnit forbidden
        self.assertLcError(lc(rule(1, countUnit=None)))                  # countUnit required

    def test_semantic_errors(self):
        self.assertLcError(lc(rule(1), rule(1, countNumber=3)))          # duplicate priority
        self.assertLcError(lc(rule(1, tagStatus="any"), rule(2)))        # any not last
        self.assertLcError(lc(rule(1, tagStatus="tagged")))              # tagged needs a list
        self.assertLcError(lc(rule(1, tagStatus="tagged", tagPrefixList=["a"],
                                   tagPatternList=["b*"])))             # not both lists
        self.assertLcError(lc(rule(1, tagStatus="untagged", tagPrefixList=["a"])))
        self.assertLcError(lc(rule(1, tagStatus="tagged", tagPatternList=["a*b*c*d*e*f"])))
        self.assertLcError(lc(rule(1, action={"type": "transition"})))   # needs target class
        self.assertLcError(lc(rule(1, countType="sinceImagePulled")))    # pulled -> transition

    def test_rule_count_limit(self):
        fifty = lc(*[rule(i, tagStatus="tagged", tagPrefixList=["p%02d" % i]) for i in
                     range(1, 51)])
        self.c.put_lifecycle_policy(repositoryName=self.name, lifecyclePolicyText=fifty)
        self.assertLcError(lc(*[rule(i, tagStatus="tagged", tagPrefixList=["p%02d" % i])
                                for i in range(1, 52)]))

    def test_length_limits(self):
        # below the model minimum (botocore would refuse, so send it raw)
        r = B.raw("PutLifecyclePolicy", {"repositoryName": self.name,
                                         "lifecyclePolicyText": '{"rules":[]}'})
        body = self.assertRawError(r, "InvalidParameterException")
        self.assertIn("lifecyclepolicytext", body["message"].lower())
        long_text = lc(*[rule(i, tagStatus="tagged", tagPrefixList=["p%05d" % i],
                              description="x" * 600) for i in range(1, 51)])
        self.assertGreater(len(long_text), 30720)
        self.assertClientError("InvalidParameterException", self.c.put_lifecycle_policy,
                               repositoryName=self.name, lifecyclePolicyText=long_text)

    def test_missing_repository(self):
        name = uniq("absent")
        msg = ("The repository with name '%s' does not exist in the registry with id '%s'"
               % (name, ACCOUNT))
        self.assertClientError("RepositoryNotFoundException", self.c.put_lifecycle_policy,
                               repositoryName=name, lifecyclePolicyText=lc(rule(1)), msg=msg)
        self.assertClientError("RepositoryNotFoundException", self.c.get_lifecycle_policy,
                               repositoryName=name, msg=msg)
        self.assertClientError("RepositoryNotFoundException", self.c.delete_lifecycle_policy,
                               repositoryName=name, msg=msg)


# ------------------------------------------------------------------------------------------
# registry policy

BAD_REG_POLICY = ("Invalid parameter at 'PolicyText' failed to satisfy constraint: 'Invalid "
                  "registry policy provided'")


def reg_policy(actions=("ecr:CreateRepository", "ecr:ReplicateImage"), region="eu-north-1"):
    return json.dumps({"Version": "2012-10-17", "Statement": [{
        "Sid": "ReplicationAccessCrossAccount", "Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::210987654321:root"},
        "Action": list(actions) if not isinstance(actions, str) else actions,
        "Resource": "arn:aws:ecr:%s:%s:repository/*" % (region, ACCOUNT)}]})


class RegistryPolicy(BerthCase):
    REGION = "eu-north-1"

    def setUp(self):
        self.c = B.client(region=self.REGION)

    def test_lifecycle(self):
        msg = "Registry policy does not exist in the registry with id '%s'" % ACCOUNT
        self.assertClientError("RegistryPolicyNotFoundException", self.c.get_registry_policy,
                               msg=msg)
        text = reg_policy()
        r = self.c.put_registry_policy(policyText=text)
        self.assertEqual(ACCOUNT, r["registryId"])
        self.assertEqual(json.loads(text), json.loads(r["policyText"]))
        g = self.c.get_registry_policy()
        self.assertEqual(ACCOUNT, g["registryId"])
        self.assertEqual(json.loads(text), json.loads(g["policyText"]))
        # replace with a single-string action
        text2 = reg_policy("ecr:ReplicateImage")
        self.c.put_registry_policy(policyText=text2)
        self.assertEqual(json.loads(text2), json.loads(self.c.get_registry_policy()["policyText"]))
        # other regions are other registries
        self.assertClientError("RegistryPolicyNotFoundException",
                               B.client(region="eu-south-1").get_registry_policy)
        d = self.c.delete_registry_policy()
        self.assertEqual(ACCOUNT, d["registryId"])
        self.assertEqual(json.loads(text2), json.loads(d["policyText"]))
        self.assertClientError("RegistryPolicyNotFoundException", self.c.get_registry_policy,
                               msg=msg)
        self.assertClientError("RegistryPolicyNotFoundException", self.c.delete_registry_policy,
                               msg=msg)

    def test_invalid(self):
        c = B.client(region="eu-south-2")
        for text in ("not json", "{}", reg_policy(["ecr:DescribeRepositories"]),
                     json.dumps({"Version": "2012-10-17"})):
            with self.subTest(policy=text):
                self.assertClientError("InvalidParameterException", c.put_registry_policy,
                                       policyText=text, msg=BAD_REG_POLICY)
        self.assertClientError("RegistryPolicyNotFoundException", c.get_registry_policy)
