"""Wire protocol and hostile input (spec 1.1-1.5, 1.8): raw JSON 1.1 requests sent with
`requests`, including ones boto3 would refuse client-side. Bad input must never crash the
server nor leave partial state (the module cleanup asserts a clean exit 0 at the end)."""

import json
import os
import re
import socket
import sys
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from berthctl import (ACCOUNT, AMZ_JSON, BerthCase, digest_of, module_server,  # noqa: E402
                      push_image, uniq)

B = None
REPO = None


def setUpModule():
    global B, REPO
    B = module_server(name="badinput")
    REPO = uniq("bad")
    B.client().create_repository(repositoryName=REPO)
    # an image keeps REPO non-empty, so garbage DeleteRepository calls cannot remove it
    push_image(B.client(), REPO, tag="anchor")


def walk(x):
    if isinstance(x, dict):
        for k, v in x.items():
            yield k, v
            yield from walk(v)
    elif isinstance(x, list):
        for v in x:
            yield None, v
            yield from walk(v)


class Framing(BerthCase):
    def test_success_headers_and_shape(self):
        name = uniq("wire")
        r = B.raw("CreateRepository", {"repositoryName": name})
        self.assertEqual(200, r.status_code, r.text)
        self.assertTrue(r.headers.get("Content-Type", "").startswith(AMZ_JSON), r.headers)
        self.assertTrue(r.headers.get("x-amzn-RequestId"), r.headers)
        body = r.json()
        repo = body["repository"]
        # timestamps are epoch-second numbers; no nulls anywhere
        self.assertIsInstance(repo["createdAt"], (int, float))
        self.assertNotIsInstance(repo["createdAt"], bool)
        for k, v in walk(body):
            self.assertIsNotNone(v, "null member %r in %r" % (k, body))

    def test_error_headers_and_shape(self):
        r = B.raw("DescribeRepositories", {"repositoryNames": ["does-not-exist"]})
        body = self.assertRawError(r, "RepositoryNotFoundException")
        self.assertEqual("RepositoryNotFoundException", body["__type"])
        self.assertTrue(r.headers.get("Content-Type", "").startswith(AMZ_JSON), r.headers)
        self.assertTrue(r.headers.get("x-amzn-RequestId"))

    def test_request_ids_unique(self):
        ids = {B.raw("DescribeRegistry", {}).headers.get("x-amzn-RequestId") for _ in range(5)}
        self.assertEqual(5, len(ids))

    def test_empty_body_is_empty_object(self):
        r = B.raw("DescribeRegistry", None)
        self.assertEqual(200, r.status_code, r.text)
        self.assertEqual(ACCOUNT, r.json()["registryId"])

    def test_lenient_content_type(self):
        for ct in ("application/json", None, "application/x-amz-json-1.1; charset=utf-8"):
            with self.subTest(content_type=ct):
                r = B.raw("DescribeRegistry", {}, content_type=ct)
                self.assertEqual(200, r.status_code, r.text)

    def test_target_header_case_insensitive(self):
        r = B.raw("DescribeRegistry", {}, target=False,
                  headers={"x-amz-target": "AmazonEC2ContainerRegistry_V20150921.DescribeRegistry"})
        self.assertEqual(200, r.status_code, r.text)

    def test_query_string_ignored(self):
        import requests
        import botocore.auth
        import botocore.awsrequest
        import botocore.credentials
        url = B.url + "/?foo=bar"
        req = botocore.awsrequest.AWSRequest(
            method="POST", url=url, data=b"{}",
            headers={"Content-Type": AMZ_JSON,
                     "X-Amz-Target": "AmazonEC2ContainerRegistry_V20150921.DescribeRegistry"})
        botocore.auth.SigV4Auth(botocore.credentials.Credentials("AKIDEXAMPLE", "x"), "ecr",
                                "us-east-1").add_auth(req)
        r = requests.post(url, data=b"{}", headers=dict(req.headers.items()), timeout=30)
        self.assertEqual(200, r.status_code, r.text)

    def test_unknown_members_ignored_and_null_is_absent(self):
        r = B.raw("DescribeRepositories", {"repositoryNames": [REPO], "someFutureField": {"x": 1},
                                           "maxResults": None, "registryId": None})
        self.assertEqual(200, r.status_code, r.text)
        self.assertEqual(REPO, r.json()["repositories"][0]["repositoryName"])
        name = uniq("nulls")
        r = B.raw("CreateRepository", {"repositoryName": name, "tags": None,
                                       "imageTagMutability": None, "bogus": [1, 2]})
        self.assertEqual(200, r.status_code, r.text)
        self.assertEqual("MUTABLE", r.json()["repository"]["imageTagMutability"])

    def test_region_defaults_without_auth_header(self):
        name = uniq("noauth")
        r = B.raw("CreateRepository", {"repositoryName": name}, sign=False)
        self.assertEqual(200, r.status_code, r.text)
        self.assertIn(":ecr:us-east-1:", r.json()["repository"]["repositoryArn"])

    def test_region_from_scope(self):
        name = uniq("scope")
        r = B.raw("CreateRepository", {"repositoryName": name}, region="ap-southeast-1")
        self.assertEqual(200, r.status_code, r.text)
        self.assertEqual("arn:aws:ecr:ap-southeast-1:%s:repository/%s" % (ACCOUNT, name),
                         r.json()["repository"]["repositoryArn"])


class Dispatch(BerthCase):
    def test_unknown_operation(self):
        for target in ("AmazonEC2ContainerRegistry_V20150921.FlyToTheMoon",
                       "AmazonEC2ContainerRegistry_V20150921.",
                       "SomethingElse_20200101.DescribeRegistry",
                       "AmazonEC2ContainerRegistry_V20150921.describeregistry",
                       "DescribeRegistry", "x" * 5000):
            with self.subTest(target=target[:60]):
                r = B.raw(None, {}, target=target)
                self.assertRawError(r, "UnknownOperationException")

    def test_missing_target(self):
        r = B.raw(None, {}, target=False)
        self.assertRawError(r, "UnknownOperationException")

    def test_serialization_errors(self):
        bodies = ["{", "not json", '{"repositoryName": "x",}', "[1,2,3]", '"just a string"',
                  "123", '{"a": "\\ud800"', b"\xff\xfe\x00garbage", "{}{}",
                  '{"repositoryName": "' + "a" * 100 + '"']
        for body in bodies:
            with self.subTest(body=body[:30]):
                r = B.raw("CreateRepository", body)
                self.assertRawError(r, "SerializationException")
        self.assertTrue(B.healthy())

    def test_wrong_json_types(self):
        cases = [
            ("CreateRepository", {"repositoryName": 123}),
            ("CreateRepository", {"repositoryName": ["a"]}),
            ("CreateRepository", {"repositoryName": "typed", "tags": "notalist"}),
            ("CreateRepository", {"repositoryName": "typed", "imageScanningConfiguration":
                                  {"scanOnPush": "yes"}}),
            ("DescribeRepositories", {"maxResults": "10"}),
            ("DescribeRepositories", {"maxResults": 1.5}),
            ("DescribeRepositories", {"repositoryNames": "abc"}),
            ("DeleteRepository", {"repositoryName": REPO, "force": "true"}),
            ("BatchGetImage", {"repositoryName": REPO, "imageIds": [{"imageTag": 5}]}),
            ("BatchGetImage", {"repositoryName": REPO, "imageIds": ["v1"]}),
            ("UploadLayerPart", {"repositoryName": REPO, "uploadId": str(uuid.uuid4()),
                                 "partFirstByte": "0", "partLastByte": 0,
                                 "layerPartBlob": "AA=="}),
        ]
        for op, body in cases:
            with self.subTest(op=op, body=json.dumps(body)[:80]):
                r = B.raw(op, body)
                self.assertRawError(r, ("SerializationException", "InvalidParameterException"))
        # nothing was created or deleted
        names = {x["repositoryName"] for x in B.client().describe_repositories()["repositories"]}
        self.assertNotIn("typed", names)
        self.assertIn(REPO, names)

    def test_bad_base64_blob(self):
        uid = B.client().initiate_layer_upload(repositoryName=REPO)["uploadId"]
        r = B.raw("UploadLayerPart", {"repositoryName": REPO, "uploadId": uid,
                                      "partFirstByte": 0, "partLastByte": 2,
                                      "layerPartBlob": "!!!not base64!!!"})
        self.assertRawError(r, ("SerializationException", "InvalidParameterException"))


class Validation(BerthCase):
    def setUp(self):
        self.c = B.client()

    def assertInvalid(self, op, body, field=None):
        r = B.raw(op, body)
        b = self.assertRawError(r, "InvalidParameterException")
        if field:
            self.assertIn(field.lower(), b["message"].lower(), b)
        return b

    def test_missing_required(self):
        self.assertInvalid("CreateRepository", {}, "repositoryName")
        self.assertInvalid("PutImage", {"repositoryName": REPO}, "imageManifest")
        self.assertInvalid("BatchGetImage", {"repositoryName": REPO}, "imageIds")
        self.assertInvalid("UploadLayerPart", {"repositoryName": REPO}, None)
        self.assertInvalid("TagResource", {"tags": []}, "resourceArn")

    def test_repository_names(self):
        bad = ["../x", "UPPER", "x" * 257, "a", "", "-lead", "trail-", "a//b", "a/", "/a",
               "sp ace", "tab\there", "uni\u00e9", "a..b", ".hidden", "a:b", "a@sha256"]
        for name in bad:
            for op in ("CreateRepository", "DescribeRepositories", "DeleteRepository",
                       "ListImages"):
                body = ({"repositoryNames": [name]} if op == "DescribeRepositories"
                        else {"repositoryName": name})
                with self.subTest(name=name[:20], op=op):
                    self.assertInvalid(op, body, "repositoryName")
        # none got created
        names = {x["repositoryName"] for x in self.c.describe_repositories()["repositories"]}
        self.assertFalse(set(bad) & names)

    def test_nul_in_name(self):
        # "\u0000" is valid JSON (issue 14): the member's own validation error, never
        # SerializationException, and never the name cut at the NUL ("ab", "a": valid names)
        pattern = ("Invalid parameter at 'repositoryName' failed to satisfy constraint: "
                   "'must satisfy regular expression '")
        for name in ("ab\x00cd", "a\x00b", "ab\x00", "\x00ab"):
            for op in ("CreateRepository", "DeleteRepository", "ListImages", "PutImage"):
                with self.subTest(name=repr(name), op=op):
                    body = {"repositoryName": name, "imageManifest": "{}"}
                    b = self.assertRawError(B.raw(op, body), "InvalidParameterException")
                    self.assertTrue(b["message"].startswith(pattern), b["message"])
        # the body as a client writes it, escape and all
        r = B.raw("CreateRepository", '{"repositoryName": "a\\u0000b"}')
        b = self.assertRawError(r, "InvalidParameterException")
        self.assertTrue(b["message"].startswith(pattern), b["message"])
        # too long counts the NUL as a character: the length message, as for any long name
        b = self.assertInvalid("CreateRepository", {"repositoryName": "a" * 256 + "\x00"})
        self.assertIn("less than or equal to 256", b["message"])
        r = B.raw("DescribeRepositories", {"repositoryNames": ["ab"]})
        self.assertRawError(r, "RepositoryNotFoundException")
        names = {x["repositoryName"] for x in self.c.describe_repositories()["repositories"]}
        self.assertFalse({"a", "ab", "ba", "\x00ab"} & names)

    def test_nul_in_nested_members(self):
        # strings inside lists and structures: the top-level member's InvalidParameterException
        cases = [
            ("DescribeRepositories", {"repositoryNames": ["ab\x00"]}, "repositoryNames"),
            ("BatchGetImage", {"repositoryName": REPO, "imageIds": [{"imageTag": "anchor\x00x"}]},
             "imageIds"),
            ("BatchDeleteImage", {"repositoryName": REPO,
                                  "imageIds": [{"imageTag": "anchor\x00"}]}, "imageIds"),
            ("BatchCheckLayerAvailability", {"repositoryName": REPO,
                                             "layerDigests": ["sha256:\x00"]}, "layerDigests"),
            ("CreateRepository", {"repositoryName": uniq("nul"),
                                  "tags": [{"Key": "k", "Value": "v\x00"}]}, "tags"),
            ("PutImageTagMutability", {"repositoryName": REPO, "imageTagMutability": "MUTABLE\x00"},
             "imageTagMutability"),
            ("GetAuthorizationToken", {"registryIds": [ACCOUNT + "\x00"]}, "registryIds"),
        ]
        for op, body, member in cases:
            with self.subTest(op=op):
                b = self.assertRawError(B.raw(op, body), "InvalidParameterException")
                self.assertEqual("Invalid parameter at '%s' failed to satisfy constraint: "
                                 "'Member must not contain NUL characters'" % member,
                                 b["message"])
        # nothing changed: the anchor image is still tagged, nothing was created
        r = self.c.batch_get_image(repositoryName=REPO, imageIds=[{"imageTag": "anchor"}])
        self.assertEqual(1, len(r["images"]))
        # a NUL in a member name is not a member's value: jansson refuses such keys outright
        r = B.raw("CreateRepository", '{"repository\\u0000Name": "abc"}')
        self.assertRawError(r, "SerializationException")

    def test_name_pattern_message(self):
        b = self.assertInvalid("CreateRepository", {"repositoryName": "UPPER"})
        self.assertTrue(b["message"].startswith(
            "Invalid parameter at 'repositoryName' failed to satisfy constraint: 'must satisfy "
            "regular expression '"), b["message"])

    def test_name_length_message(self):
        b = self.assertInvalid("CreateRepository", {"repositoryName": "x" * 257})
        self.assertIn("256", b["message"])
        b = self.assertInvalid("CreateRepository", {"repositoryName": "x"})
        self.assertIn("2", b["message"])

    def test_registry_id_pattern(self):
        self.assertInvalid("CreateRepository", {"repositoryName": uniq("rid"),
                                                "registryId": "abc"}, "registryId")

    def test_invalid_digests(self):
        for d in ("sha256:zzzz", "sha256", "nocolon", "", "sha256:" + "g" * 64):
            with self.subTest(digest=d):
                self.assertInvalid("GetDownloadUrlForLayer",
                                   {"repositoryName": REPO, "layerDigest": d}, "layerDigest")
        uid = self.c.initiate_layer_upload(repositoryName=REPO)["uploadId"]
        self.assertInvalid("CompleteLayerUpload", {"repositoryName": REPO, "uploadId": uid,
                                                   "layerDigests": ["bad digest"]},
                           "layerDigests")

    def test_upload_id_pattern(self):
        for uid in ("not-a-uuid", "", "../../etc/passwd", "00000000-0000-0000-0000-00000000000g"):
            with self.subTest(uploadId=uid):
                self.assertInvalid("UploadLayerPart", {
                    "repositoryName": REPO, "uploadId": uid, "partFirstByte": 0,
                    "partLastByte": 0, "layerPartBlob": "QQ=="}, "uploadId")
                self.assertInvalid("CompleteLayerUpload", {
                    "repositoryName": REPO, "uploadId": uid,
                    "layerDigests": [digest_of(b"A")]}, "uploadId")

    def test_negative_byte_offsets(self):
        uid = self.c.initiate_layer_upload(repositoryName=REPO)["uploadId"]
        r = B.raw("UploadLayerPart", {"repositoryName": REPO, "uploadId": uid,
                                      "partFirstByte": -1, "partLastByte": 0,
                                      "layerPartBlob": "QQ=="})
        self.assertRawError(r, ("InvalidParameterException", "InvalidLayerPartException"))

    def test_list_sizes(self):
        ids101 = [{"imageTag": "t%d" % i} for i in range(101)]
        self.assertInvalid("BatchGetImage", {"repositoryName": REPO, "imageIds": ids101},
                           "imageIds")
        b = self.assertInvalid("BatchDeleteImage", {"repositoryName": REPO, "imageIds": ids101},
                               "imageIds")
        self.assertIn("100", b["message"])
        self.assertInvalid("DescribeImages", {"repositoryName": REPO, "imageIds": ids101},
                           "imageIds")
        self.assertInvalid("BatchGetImage", {"repositoryName": REPO, "imageIds": []}, "imageIds")
        self.assertInvalid("BatchCheckLayerAvailability",
                           {"repositoryName": REPO,
                            "layerDigests": [digest_of(b"%d" % i) for i in range(101)]},
                           "layerDigests")
        self.assertInvalid("BatchCheckLayerAvailability",
                           {"repositoryName": REPO, "layerDigests": ["a" * 1001]},
                           "layerDigests")

    def test_numeric_ranges(self):
        for mr in (0, -5, 1001):
            with self.subTest(maxResults=mr):
                self.assertInvalid("DescribeRepositories", {"maxResults": mr}, "maxResults")
                self.assertInvalid("ListImages", {"repositoryName": REPO, "maxResults": mr},
                                   "maxResults")
        for mr in (2 ** 40, 2 ** 70, 1e300):
            with self.subTest(maxResults=mr):
                r = B.raw("DescribeImages", {"repositoryName": REPO, "maxResults": mr})
                self.assertRawError(r, ("InvalidParameterException", "SerializationException"))

    def test_enums(self):
        self.assertInvalid("PutImageTagMutability", {"repositoryName": REPO,
                                                     "imageTagMutability": "mutable"},
                           "imageTagMutability")
        self.assertInvalid("ListImages", {"repositoryName": REPO,
                                          "filter": {"tagStatus": "tagged"}}, "tagStatus")

    def test_image_tag_lengths(self):
        self.assertInvalid("PutImage", {"repositoryName": REPO, "imageManifest": "{}",
                                        "imageTag": ""}, "imageTag")
        self.assertInvalid("PutImage", {"repositoryName": REPO, "imageManifest": "",
                                        "imageTag": "x"}, "imageManifest")

    def test_huge_tag_batch_thousands(self):
        body = {"repositoryName": REPO,
                "imageIds": [{"imageTag": "tag-%05d" % i} for i in range(20000)]}
        r = B.raw("BatchDeleteImage", body)
        self.assertRawError(r, "InvalidParameterException", msg_contains="imageIds")
        r = B.raw("BatchGetImage", body)
        self.assertRawError(r, "InvalidParameterException", msg_contains="imageIds")
        self.assertTrue(B.healthy())

    def test_deeply_nested_json(self):
        body = '{"repositoryName": "nest", "tags": ' + "[" * 5000 + "]" * 5000 + "}"
        r = B.raw("CreateRepository", body)
        self.assertIn(r.status_code, (400, 413), r.text[:200])
        self.assertTrue(B.healthy())
        self.assertClientError("RepositoryNotFoundException", self.c.describe_repositories,
                               repositoryNames=["nest"])

    def test_long_strings_everywhere(self):
        long = "a" * 100000
        for op, body in (("CreateRepository", {"repositoryName": long}),
                         ("ListTagsForResource", {"resourceArn": long}),
                         ("GetAccountSetting", {"name": long}),
                         ("PutImage", {"repositoryName": REPO, "imageManifest": "{}",
                                       "imageTag": long})):
            with self.subTest(op=op):
                r = B.raw(op, body)
                self.assertEqual(400, r.status_code, r.text[:200])
                self.assertIn("__type", r.json())
        # per-entry problems may be reported as failures (InvalidImageTag) or rejected
        r = B.raw("BatchGetImage", {"repositoryName": REPO, "imageIds": [{"imageTag": long}]})
        self.assertIn(r.status_code, (200, 400), r.text[:200])
        if r.status_code == 200:
            self.assertEqual([], r.json()["images"])
        self.assertTrue(B.healthy())


# every operation of the issue: garbage in, 400 out, never a 5xx or a dropped connection
OPS = ["CreateRepository", "DescribeRepositories", "DeleteRepository", "TagResource",
       "UntagResource", "ListTagsForResource", "PutImageTagMutability",
       "PutImageScanningConfiguration", "BatchGetRepositoryScanningConfiguration",
       "SetRepositoryPolicy", "GetRepositoryPolicy", "DeleteRepositoryPolicy",
       "PutLifecyclePolicy", "GetLifecyclePolicy", "DeleteLifecyclePolicy", "DescribeRegistry",
       "PutRegistryPolicy", "GetRegistryPolicy", "DeleteRegistryPolicy",
       "PutReplicationConfiguration", "PutRegistryScanningConfiguration",
       "GetRegistryScanningConfiguration", "GetAccountSetting", "PutAccountSetting",
       "InitiateLayerUpload", "UploadLayerPart", "CompleteLayerUpload",
       "BatchCheckLayerAvailability", "GetDownloadUrlForLayer", "PutImage", "ListImages",
       "DescribeImages", "BatchGetImage", "BatchDeleteImage", "GetAuthorizationToken"]

GARBAGE = ["{", "[]", '"s"', "0", "null", "{}",
           {"repositoryName": None, "registryId": 5},
           {"repositoryName": [], "imageIds": {}, "tags": 7, "layerDigests": "x",
            "replicationConfiguration": [], "rules": {}, "name": False, "value": 1,
            "policyText": 5, "lifecyclePolicyText": {}, "resourceArn": [], "uploadId": 0},
           {"repositoryName": REPO if REPO else "x", "imageIds": [None, 1, "a", []],
            "layerDigests": [None, 1], "tags": [None, {"Key": 1}], "tagKeys": [1],
            "repositoryNames": [None], "registryIds": [1], "rules": [None],
            "replicationConfiguration": {"rules": [None, {"destinations": [None]}]},
            "imageScanningConfiguration": [], "encryptionConfiguration": "x",
            "imageTagMutabilityExclusionFilters": [None, 3], "filter": [],
            "imageManifest": 5, "partFirstByte": [], "layerPartBlob": 5},
           {"repositoryName": "\ud800\udfff-\ud800", "name": "\u0000"}]


class Robustness(BerthCase):
    def test_garbage_for_every_operation(self):
        GARBAGE[8]["repositoryName"] = REPO
        for op in OPS:
            for body in GARBAGE:
                with self.subTest(op=op, body=json.dumps(body)[:40]):
                    r = B.raw(op, body)
                    self.assertIn(r.status_code, (200, 400), "%s %r -> %s %s"
                                  % (op, body, r.status_code, r.text[:200]))
                    if r.status_code == 400:
                        t = r.json().get("__type")
                        self.assertRegex(t or "", r"^[A-Za-z]+Exception$")
        self.assertTrue(B.healthy())
        # repository still intact
        self.assertEqual(REPO, B.client().describe_repositories(repositoryNames=[REPO])[
            "repositories"][0]["repositoryName"])

    def test_non_post_and_odd_paths(self):
        import requests
        for method, path in (("GET", "/"), ("PUT", "/"), ("DELETE", "/"),
                             ("POST", "/some/where"), ("GET", "/favicon.ico")):
            with self.subTest(method=method, path=path):
                r = requests.request(method, B.url + path, timeout=30, headers={
                    "X-Amz-Target": "AmazonEC2ContainerRegistry_V20150921.DescribeRegistry"})
                self.assertLess(r.status_code, 500, r.text[:200])
        self.assertTrue(B.healthy())

    def test_truncated_and_garbage_connections(self):
        payloads = [b"GARBAGE\r\n\r\n", b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n"
                    b"\r\n{\"a\":", b"\x00" * 1000, b"POST / HTTP/1.1\r\n" + b"X: y\r\n" * 5000]
        for p in payloads:
            s = socket.create_connection(("127.0.0.1", B.port), timeout=5)
            try:
                s.sendall(p)
                s.shutdown(socket.SHUT_WR)
                try:
                    s.recv(4096)
                except OSError:
                    pass
            finally:
                s.close()
        self.assertTrue(B.healthy())

    def test_content_length_lies(self):
        s = socket.create_connection(("127.0.0.1", B.port), timeout=10)
        try:
            s.sendall(b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: " + AMZ_JSON.encode()
                      + b"\r\nX-Amz-Target: AmazonEC2ContainerRegistry_V20150921.DescribeRegistry"
                      b"\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}{}{}")
            data = b""
            while True:
                try:
                    chunk = s.recv(65536)
                except socket.timeout:
                    break
                if not chunk:
                    break
                data += chunk
        finally:
            s.close()
        self.assertTrue(re.match(rb"HTTP/1\.[01] 200", data), data[:200])
        self.assertTrue(B.healthy())

    def test_no_partial_state_after_failed_create(self):
        name = uniq("partial")
        r = B.raw("CreateRepository", {"repositoryName": name,
                                       "tags": [{"Key": "k%d" % i, "Value": "v"}
                                                for i in range(51)]})
        self.assertRawError(r, "TooManyTagsException")
        r = B.raw("CreateRepository", {"repositoryName": name, "imageTagMutability": "NOPE"})
        self.assertRawError(r, "InvalidParameterException")
        # name is still free and creates cleanly
        r = self.client_create(name)
        self.assertEqual("MUTABLE", r["imageTagMutability"])

    def client_create(self, name):
        return B.client().create_repository(repositoryName=name)["repository"]

    def test_still_pushes_after_abuse(self):
        img = push_image(B.client(), REPO, tag="after-abuse")
        r = B.client().batch_get_image(repositoryName=REPO, imageIds=[{"imageTag": "after-abuse"}])
        self.assertEqual(img.manifest, r["images"][0]["imageManifest"])
