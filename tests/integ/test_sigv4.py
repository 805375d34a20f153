"""SigV4 verification with --credentials, and --account-id (spec 1.2, 1.4)."""

import base64
import os
import sys
import time

import requests

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from berthctl import (Berth, BerthCase, module_server, new_client,  # noqa: E402
                      push_image, uniq)

B = None
ONE = ("AKIDTESTONE0000000001", "secret/one+with/slashes", "111111111111")
TWO = ("AKIDTESTTWO0000000002", "secrettwo", "222222222222")

CREDENTIALS = """# berth credentials: ACCESS_KEY_ID SECRET_ACCESS_KEY ACCOUNT_ID
%s %s %s

   # indented comment, blank lines are fine

%s %s %s
""" % (ONE + TWO)


def setUpModule():
    global B
    B = module_server(name="sigv4", credentials=CREDENTIALS)


def client(who=ONE, region="us-east-1"):
    return B.client(region=region, access_key=who[0], secret=who[1])


class SignedRequests(BerthCase):
    def test_valid_signature_and_account(self):
        c = client()
        name = uniq("signed")
        r = c.create_repository(repositoryName=name)["repository"]
        self.assertEqual(ONE[2], r["registryId"])
        self.assertEqual("arn:aws:ecr:us-east-1:%s:repository/%s" % (ONE[2], name),
                         r["repositoryArn"])
        self.assertEqual(ONE[2], c.describe_registry()["registryId"])

    def test_accounts_are_separate(self):
        name = uniq("mine")
        client(ONE).create_repository(repositoryName=name)
        self.assertClientError(
            "RepositoryNotFoundException", client(TWO).describe_repositories,
            repositoryNames=[name],
            msg="The repository with name '%s' does not exist in the registry with id '%s'"
                % (name, TWO[2]))
        r = client(TWO).create_repository(repositoryName=name)["repository"]
        self.assertEqual(TWO[2], r["registryId"])
        # naming the other account's registry is refused (test_cross_account.py: every case)
        self.assertClientError(
            "AccessDeniedException", client(ONE).describe_repositories, registryId=TWO[2],
            repositoryNames=[name],
            msg="User: arn:aws:iam::%s:root is not authorized to perform: "
                "ecr:DescribeRepositories on resource: arn:aws:ecr:us-east-1:%s:repository/%s "
                "because no resource-based policy allows the ecr:DescribeRepositories action"
                % (ONE[2], TWO[2], name))
        got = client(ONE).describe_repositories(registryId=ONE[2], repositoryNames=[name])
        self.assertEqual(ONE[2], got["repositories"][0]["registryId"])

    def test_region_from_scope(self):
        name = uniq("region")
        r = client(region="eu-west-1").create_repository(repositoryName=name)["repository"]
        self.assertEqual("arn:aws:ecr:eu-west-1:%s:repository/%s" % (ONE[2], name),
                         r["repositoryArn"])

    def test_unknown_access_key(self):
        c = B.client(access_key="AKIDUNKNOWN000000000", secret="whatever")
        self.assertClientError("UnrecognizedClientException", c.describe_registry, status=400)
        self.assertClientError("UnrecognizedClientException", c.create_repository,
                               repositoryName=uniq("nope"), status=400)

    def test_wrong_secret(self):
        c = B.client(access_key=ONE[0], secret="not-the-secret")
        self.assertClientError("InvalidSignatureException", c.describe_registry, status=403)
        name = uniq("badsig")
        self.assertClientError("InvalidSignatureException", c.create_repository,
                               repositoryName=name, status=403)
        self.assertClientError("RepositoryNotFoundException", client().describe_repositories,
                               repositoryNames=[name])

    def test_secret_of_other_key(self):
        c = B.client(access_key=ONE[0], secret=TWO[1])
        self.assertClientError("InvalidSignatureException", c.describe_registry, status=403)

    def test_missing_authorization(self):
        r = B.raw("DescribeRegistry", {}, sign=False)
        self.assertRawError(r, "MissingAuthenticationTokenException", status=403)
        r = B.raw("CreateRepository", {"repositoryName": uniq("anon")}, sign=False)
        self.assertRawError(r, "MissingAuthenticationTokenException", status=403)

    def test_tampered_body(self):
        name = uniq("tamper")

        def swap(data):
            return data.replace(name.encode(), (name + "x").encode())

        r = B.raw("CreateRepository", {"repositoryName": name}, access_key=ONE[0],
                  secret=ONE[1], tamper=swap)
        self.assertRawError(r, "InvalidSignatureException", status=403)
        for n in (name, name + "x"):
            self.assertClientError("RepositoryNotFoundException", client().describe_repositories,
                                   repositoryNames=[n])

    def test_tampered_target_header(self):
        r = B.raw("DescribeRegistry", {}, access_key=ONE[0], secret=ONE[1])
        self.assertEqual(200, r.status_code, r.text)
        import botocore.auth
        import botocore.awsrequest
        import botocore.credentials
        req = botocore.awsrequest.AWSRequest(
            method="POST", url=B.url + "/", data=b"{}",
            headers={"Content-Type": "application/x-amz-json-1.1",
                     "X-Amz-Target": "AmazonEC2ContainerRegistry_V20150921.DescribeRegistry"})
        botocore.auth.SigV4Auth(botocore.credentials.Credentials(ONE[0], ONE[1]), "ecr",
                                "us-east-1").add_auth(req)
        h = dict(req.headers.items())
        h["X-Amz-Target"] = "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken"
        r = requests.post(B.url + "/", data=b"{}", headers=h, timeout=30)
        self.assertRawError(r, "InvalidSignatureException", status=403)

    def test_clock_skew(self):
        for skew in (-20 * 60, 20 * 60, -24 * 3600):
            with self.subTest(skew=skew):
                r = B.raw("DescribeRegistry", {}, access_key=ONE[0], secret=ONE[1], skew=skew)
                self.assertRawError(r, "InvalidSignatureException", status=403)
        # within a couple of minutes is fine
        for skew in (-90, 90):
            r = B.raw("DescribeRegistry", {}, access_key=ONE[0], secret=ONE[1], skew=skew)
            self.assertEqual(200, r.status_code, r.text)

    def test_garbage_authorization_header(self):
        for value in ("Basic QVdTOmZvbw==", "AWS4-HMAC-SHA256", "AWS4-HMAC-SHA256 Credential=",
                      "AWS4-HMAC-SHA256 Credential=%s/20200101/us-east-1/ecr/aws4_request, "
                      "SignedHeaders=host, Signature=zz" % ONE[0], "x" * 4000):
            with self.subTest(value=value[:40]):
                r = B.raw("DescribeRegistry", {}, sign=False, headers={
                    "Authorization": value, "X-Amz-Date": time.strftime("%Y%m%dT%H%M%SZ",
                                                                        time.gmtime())})
                self.assertIn(r.status_code, (400, 403), r.text[:200])
                self.assertRegex(r.json().get("__type", ""),
                                 r"^(InvalidSignatureException|IncompleteSignatureException|"
                                 r"UnrecognizedClientException|"
                                 r"MissingAuthenticationTokenException)$")
        self.assertTrue(B.healthy(ONE[0], ONE[1]))

    def test_auth_token_uses_account(self):
        r = client(TWO, region="eu-central-1").get_authorization_token()
        d = r["authorizationData"][0]
        self.assertEqual("https://%s.dkr.ecr.eu-central-1.amazonaws.com" % TWO[2],
                         d["proxyEndpoint"])
        self.assertTrue(base64.b64decode(d["authorizationToken"]).startswith(b"AWS:"))

    def test_download_url_needs_no_auth(self):
        c = client()
        repo = uniq("dl")
        c.create_repository(repositoryName=repo)
        img = push_image(c, repo, tag="v1")
        url = c.get_download_url_for_layer(repositoryName=repo,
                                           layerDigest=img.layers[0][0]["digest"])["downloadUrl"]
        r = requests.get(url, timeout=30)
        self.assertEqual(200, r.status_code)
        self.assertEqual(img.layers[0][1], r.content)

    def test_big_signed_upload(self):
        # a 5 MiB + tail upload: the signature covers a large body
        from berthctl import MIB, rand_bytes, upload_blob, digest_of
        c = client()
        repo = uniq("bigsig")
        c.create_repository(repositoryName=repo)
        data = rand_bytes(5 * MIB) + rand_bytes(10)
        self.assertEqual(digest_of(data),
                         upload_blob(c, repo, data, part_sizes=[5 * MIB, 10]))


class AccountIdOption(BerthCase):
    """Without --credentials, --account-id sets the account every caller gets."""

    def test_account_id(self):
        b = Berth(name="acct", account_id="999988887777").start()
        try:
            c = new_client(b.url, "us-east-1", "AKIDANY", "anything")
            r = c.create_repository(repositoryName="acct-repo")["repository"]
            self.assertEqual("999988887777", r["registryId"])
            self.assertEqual("arn:aws:ecr:us-east-1:999988887777:repository/acct-repo",
                             r["repositoryArn"])
            self.assertEqual("999988887777", c.describe_registry()["registryId"])
            c.close()
        finally:
            b.cleanup()

    def test_default_account_accepts_any_signature(self):
        b = Berth(name="anysig").start()
        try:
            for ak, sk in (("AKIDEXAMPLE", "x"), ("SOMEONE", "else"), ("A", "B")):
                c = new_client(b.url, "us-east-1", ak, sk)
                self.assertEqual("123456789012", c.describe_registry()["registryId"])
                c.close()
        finally:
            b.cleanup()
