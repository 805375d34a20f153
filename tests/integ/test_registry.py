"""Registry-level operations: DescribeRegistry, PutReplicationConfiguration, scanning
configuration, account settings, GetAuthorizationToken (spec 3.4, 3.6, 3.7, 4.7).

Registry state is per (account, region); each test class uses its own region(s) so the shared
server's registries do not interfere with each other.
"""

import base64
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from berthctl import ACCOUNT, module_server, BerthCase, uniq  # noqa: E402

B = None


def setUpModule():
    global B
    B = module_server(name="registry")



def dest(region, registry=ACCOUNT):
    return {"region": region, "registryId": registry}


class Replication(BerthCase):
    def test_describe_registry_default(self):
        r = B.client(region="ap-northeast-1").describe_registry()
        self.assertEqual(ACCOUNT, r["registryId"])
        self.assertEqual({"rules": []}, r["replicationConfiguration"])

    def test_put_and_describe(self):
        c = B.client(region="us-west-2")
        cfg = {"rules": [{"destinations": [dest("eu-west-1")]}]}
        r = c.put_replication_configuration(replicationConfiguration=cfg)
        self.assertEqual(cfg, r["replicationConfiguration"])
        self.assertEqual(cfg, c.describe_registry()["replicationConfiguration"])
        # a more complete configuration: two rules, filters, cross-account
        cfg2 = {"rules": [
            {"destinations": [dest("eu-west-1"), dest("us-west-2", "210987654321")],
             "repositoryFilters": [{"filter": "prod", "filterType": "PREFIX_MATCH"}]},
            {"destinations": [dest("ap-southeast-2")]},
        ]}
        r = c.put_replication_configuration(replicationConfiguration=cfg2)
        self.assertEqual(cfg2, r["replicationConfiguration"])
        self.assertEqual(cfg2, c.describe_registry()["replicationConfiguration"])
        # other regions unaffected
        self.assertEqual({"rules": []},
                         B.client(region="us-west-1").describe_registry()[
                             "replicationConfiguration"])
        # rules: [] disables replication
        r = c.put_replication_configuration(replicationConfiguration={"rules": []})
        self.assertEqual({"rules": []}, r["replicationConfiguration"])
        self.assertEqual({"rules": []}, c.describe_registry()["replicationConfiguration"])

    def test_same_as_source(self):
        c = B.client(region="ca-central-1")
        self.assertClientError(
            "InvalidParameterException", c.put_replication_configuration,
            replicationConfiguration={"rules": [{"destinations": [dest("ca-central-1")]}]},
            msg="Invalid parameter at 'replicationConfiguration' failed to satisfy constraint: "
                "'Replication destination cannot be the same as the source registry'")
        # nested in a later rule, among valid destinations
        self.assertClientError(
            "InvalidParameterException", c.put_replication_configuration,
            replicationConfiguration={"rules": [
                {"destinations": [dest("eu-west-1")]},
                {"destinations": [dest("us-east-2"), dest("ca-central-1")]}]},
            msg_contains="Replication destination cannot be the same as the source registry")
        # same region, other account: fine
        c.put_replication_configuration(replicationConfiguration={"rules": [
            {"destinations": [dest("ca-central-1", "210987654321")]}]})
        # the failed calls did not change the stored configuration
        self.assertEqual([dest("ca-central-1", "210987654321")],
                         c.describe_registry()["replicationConfiguration"]["rules"][0][
                             "destinations"])

    def test_validation(self):
        c = B.client(region="eu-central-2")
        bad = {
            "11 rules": {"rules": [{"destinations": [dest("eu-west-1")]}] * 11},
            "bad region": {"rules": [{"destinations": [dest("EU_WEST_1")]}]},
            "bad registry": {"rules": [{"destinations": [dest("eu-west-1", "12345")]}]},
            "bad filter type": {"rules": [{"destinations": [dest("eu-west-1")],
                                           "repositoryFilters": [
                                               {"filter": "prod", "filterType": "SUFFIX"}]}]},
            "26 destinations": {"rules": [{"destinations": [
                dest("eu-west-1", "%012d" % (100000000000 + i)) for i in range(26)]}]},
        }
        for label, cfg in bad.items():
            with self.subTest(case=label):
                self.assertClientError("InvalidParameterException",
                                       c.put_replication_configuration,
                                       replicationConfiguration=cfg)
        self.assertEqual({"rules": []}, c.describe_registry()["replicationConfiguration"])
        # exactly 10 rules are allowed (AWS; moto says "feature disabled")
        ok = {"rules": [{"destinations": [dest("eu-west-1", "%012d" % (200000000000 + i))]}
                        for i in range(10)]}
        self.assertEqual(ok, c.put_replication_configuration(replicationConfiguration=ok)[
            "replicationConfiguration"])


class ScanningConfiguration(BerthCase):
    def test_repository_scan_on_push(self):
        c = B.client()
        name = uniq("scan")
        c.create_repository(repositoryName=name)
        r = c.put_image_scanning_configuration(repositoryName=name,
                                               imageScanningConfiguration={"scanOnPush": True})
        self.assertEqual(ACCOUNT, r["registryId"])
        self.assertEqual(name, r["repositoryName"])
        self.assertEqual({"scanOnPush": True}, r["imageScanningConfiguration"])
        d = c.describe_repositories(repositoryNames=[name])["repositories"][0]
        self.assertEqual({"scanOnPush": True}, d["imageScanningConfiguration"])
        b = c.batch_get_repository_scanning_configuration(repositoryNames=[name])
        self.assertTrue(b["scanningConfigurations"][0]["scanOnPush"])
        # absent member -> false
        r = c.put_image_scanning_configuration(repositoryName=name, imageScanningConfiguration={})
        self.assertEqual({"scanOnPush": False}, r["imageScanningConfiguration"])
        d = c.describe_repositories(repositoryNames=[name])["repositories"][0]
        self.assertEqual({"scanOnPush": False}, d["imageScanningConfiguration"])

    def test_repository_scan_missing_repo(self):
        name = uniq("absent")
        self.assertClientError(
            "RepositoryNotFoundException", B.client().put_image_scanning_configuration,
            repositoryName=name, imageScanningConfiguration={"scanOnPush": True},
            msg="The repository with name '%s' does not exist in the registry with id '%s'"
                % (name, ACCOUNT))

    def test_batch_get_defaults_and_failures(self):
        c = B.client()
        a, b = uniq("bga"), uniq("bgb")
        arn_a = c.create_repository(repositoryName=a)["repository"]["repositoryArn"]
        arn_b = c.create_repository(repositoryName=b)["repository"]["repositoryArn"]
        r = c.batch_get_repository_scanning_configuration(repositoryNames=[b, "missing-x", a])
        self.assertEqual([
            {"repositoryArn": arn_b, "repositoryName": b, "scanOnPush": False,
             "scanFrequency": "MANUAL", "appliedScanFilters": []},
            {"repositoryArn": arn_a, "repositoryName": a, "scanOnPush": False,
             "scanFrequency": "MANUAL", "appliedScanFilters": []},
        ], r["scanningConfigurations"])
        self.assertEqual([{"repositoryName": "missing-x", "failureCode": "REPOSITORY_NOT_FOUND",
                           "failureReason": "REPOSITORY_NOT_FOUND"}], r["failures"])
        r = c.batch_get_repository_scanning_configuration(repositoryNames=[a])
        self.assertEqual([], r["failures"])

    def test_batch_get_limits(self):
        c = B.client()
        self.assertClientError("InvalidParameterException",
                               c.batch_get_repository_scanning_configuration,
                               repositoryNames=["r%02d" % i for i in range(26)])
        self.assertClientError("InvalidParameterException",
                               c.batch_get_repository_scanning_configuration,
                               repositoryNames=["Invalid-Name"])

    def test_registry_default(self):
        r = B.client(region="me-south-1").get_registry_scanning_configuration()
        self.assertEqual(ACCOUNT, r["registryId"])
        self.assertEqual({"scanType": "BASIC", "rules": []}, r["scanningConfiguration"])

    def test_registry_rules_applied(self):
        c = B.client(region="af-south-1")
        early = "repo-prod-early"
        c.create_repository(repositoryName=early)
        cfg = {"scanType": "BASIC", "rules": [{"scanFrequency": "SCAN_ON_PUSH",
                                               "repositoryFilters": [
                                                   {"filter": "prod", "filterType": "WILDCARD"}]}]}
        r = c.put_registry_scanning_configuration(**cfg)
        self.assertEqual(cfg, r["registryScanningConfiguration"])
        g = c.get_registry_scanning_configuration()
        self.assertEqual(ACCOUNT, g["registryId"])
        self.assertEqual(cfg, g["scanningConfiguration"])
        for n in ("prod", "prod-repo", "prodrepo", "x-prod-y", "other"):
            c.create_repository(repositoryName=n)
        got = {s["repositoryName"]: s for s in c.batch_get_repository_scanning_configuration(
            repositoryNames=[early, "prod", "prod-repo", "prodrepo", "x-prod-y", "other"])[
            "scanningConfigurations"]}
        # no '*': substring match; existing repositories are re-evaluated too
        for n in (early, "prod", "prod-repo", "prodrepo", "x-prod-y"):
            self.assertEqual("SCAN_ON_PUSH", got[n]["scanFrequency"], n)
            self.assertEqual([{"filter": "prod", "filterType": "WILDCARD"}],
                             got[n]["appliedScanFilters"], n)
        self.assertEqual("MANUAL", got["other"]["scanFrequency"])
        self.assertEqual([], got["other"]["appliedScanFilters"])

    def test_registry_wildcard_filters(self):
        c = B.client(region="ap-east-1")
        names = ["prod", "repo-prod", "prod-repo", "prodrepo", "repo-prod-repo"]
        for n in names:
            c.create_repository(repositoryName=n)

        def freq(filt):
            c.put_registry_scanning_configuration(scanType="BASIC", rules=[{
                "scanFrequency": "SCAN_ON_PUSH",
                "repositoryFilters": [{"filter": filt, "filterType": "WILDCARD"}]}])
            r = c.batch_get_repository_scanning_configuration(repositoryNames=names)
            return {s["repositoryName"]: s["scanFrequency"] == "SCAN_ON_PUSH"
                    for s in r["scanningConfigurations"]}

        self.assertEqual({"prod": True, "repo-prod": True, "prod-repo": False, "prodrepo": False,
                          "repo-prod-repo": False}, freq("*prod"))
        self.assertEqual({"prod": True, "repo-prod": False, "prod-repo": True, "prodrepo": True,
                          "repo-prod-repo": False}, freq("prod*"))
        self.assertEqual({"prod": False, "repo-prod": False, "prod-repo": True, "prodrepo": True,
                          "repo-prod-repo": False}, freq("prod*repo"))

    def test_registry_enhanced(self):
        c = B.client(region="il-central-1")
        c.create_repository(repositoryName="cont-app")
        c.create_repository(repositoryName="push-app")
        c.create_repository(repositoryName="plain")
        cfg = {"scanType": "ENHANCED", "rules": [
            {"scanFrequency": "CONTINUOUS_SCAN",
             "repositoryFilters": [{"filter": "cont", "filterType": "WILDCARD"}]},
            {"scanFrequency": "SCAN_ON_PUSH",
             "repositoryFilters": [{"filter": "*-app", "filterType": "WILDCARD"}]}]}
        self.assertEqual(cfg, c.put_registry_scanning_configuration(**cfg)[
            "registryScanningConfiguration"])
        got = {s["repositoryName"]: s["scanFrequency"] for s in
               c.batch_get_repository_scanning_configuration(
                   repositoryNames=["cont-app", "push-app"])["scanningConfigurations"]}
        self.assertEqual({"cont-app": "CONTINUOUS_SCAN", "push-app": "SCAN_ON_PUSH"}, got)
        # back to the default
        r = c.put_registry_scanning_configuration()
        self.assertEqual({"scanType": "BASIC", "rules": []}, r["registryScanningConfiguration"])

    def test_registry_validation(self):
        c = B.client(region="ap-southeast-3")
        rule = {"scanFrequency": "SCAN_ON_PUSH",
                "repositoryFilters": [{"filter": "x", "filterType": "WILDCARD"}]}
        self.assertClientError("InvalidParameterException",
                               c.put_registry_scanning_configuration, scanType="DEEP")
        self.assertClientError("InvalidParameterException",
                               c.put_registry_scanning_configuration, scanType="BASIC",
                               rules=[rule, rule, rule])
        self.assertClientError("InvalidParameterException",
                               c.put_registry_scanning_configuration, scanType="BASIC",
                               rules=[dict(rule, scanFrequency="SOMETIMES")])
        self.assertEqual({"scanType": "BASIC", "rules": []},
                         c.get_registry_scanning_configuration()["scanningConfiguration"])


class AccountSettings(BerthCase):
    KNOWN = {"BASIC_SCAN_TYPE_VERSION": {"AWS_NATIVE", "CLAIR"},
             "REGISTRY_POLICY_SCOPE": {"V1", "V2"},
             "BLOB_MOUNTING": {"ENABLED", "DISABLED"}}

    def test_get_defaults(self):
        c = B.client(region="eu-west-3")
        for name, values in self.KNOWN.items():
            with self.subTest(name=name):
                r = c.get_account_setting(name=name)
                self.assertEqual(name, r["name"])
                self.assertIn(r["value"], values)

    def test_put_then_get(self):
        c = B.client(region="eu-west-2")
        for name, value in (("BLOB_MOUNTING", "ENABLED"), ("REGISTRY_POLICY_SCOPE", "V1"),
                            ("BASIC_SCAN_TYPE_VERSION", "CLAIR")):
            with self.subTest(name=name):
                r = c.put_account_setting(name=name, value=value)
                self.assertEqual({"name": name, "value": value},
                                 {"name": r["name"], "value": r["value"]})
                r = c.get_account_setting(name=name)
                self.assertEqual(value, r["value"])
        c.put_account_setting(name="BLOB_MOUNTING", value="DISABLED")
        self.assertEqual("DISABLED", c.get_account_setting(name="BLOB_MOUNTING")["value"])

    def test_invalid(self):
        c = B.client(region="eu-west-2")
        bad = ("InvalidParameterException", "ValidationException")
        self.assertClientError(bad, c.get_account_setting, name="NO_SUCH_SETTING")
        self.assertClientError(bad, c.put_account_setting, name="NO_SUCH_SETTING", value="X")
        self.assertClientError(bad, c.put_account_setting, name="BLOB_MOUNTING", value="MAYBE")
        self.assertClientError(bad, c.get_account_setting, name="X" * 65)


class AuthorizationToken(BerthCase):
    def check(self, data, registry=ACCOUNT, region="us-east-1", suffix="amazonaws.com"):
        token = data["authorizationToken"]
        self.assertRegex(token, r"^\S+$")
        decoded = base64.b64decode(token, validate=True).decode()
        user, _, password = decoded.partition(":")
        self.assertEqual("AWS", user)
        self.assertTrue(password)
        self.assertNotRegex(password, r"\s")
        exp = data["expiresAt"].timestamp()
        self.assertLess(abs(exp - (time.time() + 12 * 3600)), 600, data["expiresAt"])
        self.assertEqual("https://%s.dkr.ecr.%s.%s" % (registry, region, suffix),
                         data["proxyEndpoint"])
        return password

    def test_default(self):
        r = B.client().get_authorization_token()
        self.assertEqual(1, len(r["authorizationData"]))
        self.check(r["authorizationData"][0])

    def test_region_from_scope(self):
        r = B.client(region="eu-central-1").get_authorization_token()
        self.check(r["authorizationData"][0], region="eu-central-1")
        r = B.client(region="cn-northwest-1").get_authorization_token()
        self.check(r["authorizationData"][0], region="cn-northwest-1",
                   suffix="amazonaws.com.cn")

    def test_registry_ids(self):
        ids = ["111111111111", "222222222222"]
        r = B.client().get_authorization_token(registryIds=ids)
        self.assertEqual(2, len(r["authorizationData"]))
        eps = sorted(d["proxyEndpoint"] for d in r["authorizationData"])
        self.assertEqual(["https://%s.dkr.ecr.us-east-1.amazonaws.com" % i for i in ids], eps)
        for d in r["authorizationData"]:
            self.check(d, registry=re.search(r"//(\d{12})\.", d["proxyEndpoint"]).group(1))

    def test_invalid_registry_ids(self):
        c = B.client()
        self.assertClientError("InvalidParameterException", c.get_authorization_token,
                               registryIds=["1234"])
        self.assertClientError("InvalidParameterException", c.get_authorization_token,
                               registryIds=["%012d" % i for i in range(11)])

    def test_tokens_differ(self):
        a = self.check(B.client().get_authorization_token()["authorizationData"][0])
        time.sleep(1.1)
        b = self.check(B.client().get_authorization_token()["authorizationData"][0])
        self.assertNotEqual(a, b, "passwords should not be a constant")
