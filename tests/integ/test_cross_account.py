"""Cross-account isolation (issue 14 item 7).

With --credentials a key belongs to one account. Amazon ECR lets it reach another account's
registry only where a resource-based policy of that account allows the action; berth does not
evaluate those policies yet, so every request that names another account's registry is refused
before anything is read or written:

- the ECR door: every operation with a registryId member (or a resourceArn naming another
  account) answers 400 AccessDeniedException "User: arn:aws:iam::<caller>:root is not authorized
  to perform: ecr:<Action> on resource: arn:aws:ecr:<region>:<target>:repository/<name> because
  no resource-based policy allows the ecr:<Action> action"; the same call naming the caller's
  own registryId works;
- the /v2 door: a token of account B with a Host `<A>.dkr.ecr.<region>.<domain>` gets 403 DENIED
  with the same text (the /v2/ version check alone stays open).

GetAuthorizationToken's registryIds is answered as ECR does (its action has no resource to
deny), but the token it returns is the caller's: it cannot open the other registry.

Without --credentials there are no principals, and registryId / Host keep addressing any
account (tests at the end)."""

import base64
import json
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from berthctl import (BerthCase, digest_of, make_image, module_server, put,  # noqa: E402
                      rand_bytes, uniq, upload_blob)
from ocilib import V2, OciCase, build_image, registry_password  # noqa: E402

SRV = None
ANON = None
A = ("AKIDCROSSACCOUNTA001", "secret-a", "111111111111")
B = ("AKIDCROSSACCOUNTB002", "secret-b", "222222222222")
REGION = "us-east-1"

LIFECYCLE = json.dumps({"rules": [{
    "rulePriority": 1, "description": "expire old untagged images",
    "selection": {"tagStatus": "untagged", "countType": "sinceImagePushed",
                  "countUnit": "days", "countNumber": 30},
    "action": {"type": "expire"}}]})


def policy(account):
    return json.dumps({"Version": "2012-10-17", "Statement": [{
        "Sid": "pull", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::%s:root" % account},
        "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]}]})


def setUpModule():
    global SRV, ANON
    SRV = module_server(name="xacct", credentials=[A, B])
    ANON = module_server(name="xacct-anon")


def client(who):
    return SRV.client(region=REGION, access_key=who[0], secret=who[1])


def denied_msg(action, target, repo, caller=B[2], region=REGION):
    return ("User: arn:aws:iam::%s:root is not authorized to perform: ecr:%s on resource: "
            "arn:aws:ecr:%s:%s:repository/%s because no resource-based policy allows the "
            "ecr:%s action" % (caller, action, region, target, repo, action))


class Fixture:
    """One account's repository with a tagged image, resource tags, a lifecycle policy, a
    repository policy and an open layer upload."""

    def __init__(self, who):
        self.who = who
        self.account = who[2]
        self.c = client(who)
        self.repo = uniq("xacct")
        r = self.c.create_repository(repositoryName=self.repo,
                                     tags=[{"Key": "owner", "Value": who[0]}])
        self.arn = r["repository"]["repositoryArn"]
        self.img = make_image(self.c, self.repo)
        put(self.c, self.repo, self.img, "v1")
        self.c.put_lifecycle_policy(repositoryName=self.repo, lifecyclePolicyText=LIFECYCLE)
        self.c.set_repository_policy(repositoryName=self.repo, policyText=policy(self.account))
        self.c.start_lifecycle_policy_preview(repositoryName=self.repo)
        self.upload = self.c.initiate_layer_upload(repositoryName=self.repo)["uploadId"]
        self.layer = self.img.layers[0][0]["digest"]

    def snapshot(self):
        """Everything another account's call could have changed, read by the owner."""
        c, n = self.c, self.repo
        repo = c.describe_repositories(repositoryNames=[n])["repositories"][0]
        imgs = c.batch_get_image(repositoryName=n, imageIds=[{"imageTag": "v1"}])["images"]
        return {
            "repository": {k: repo[k] for k in ("repositoryArn", "imageTagMutability",
                                                "imageScanningConfiguration")},
            "images": sorted((i.get("imageTag", ""), i["imageDigest"])
                             for i in c.list_images(repositoryName=n)["imageIds"]),
            "manifest": [i["imageManifest"] for i in imgs],
            "tags": c.list_tags_for_resource(resourceArn=self.arn)["tags"],
            "lifecycle": c.get_lifecycle_policy(repositoryName=n)["lifecyclePolicyText"],
            "policy": json.loads(c.get_repository_policy(repositoryName=n)["policyText"]),
            "layers": [x["layerAvailability"] for x in c.batch_check_layer_availability(
                repositoryName=n, layerDigests=[self.layer])["layers"]],
            "repositories": sorted(r["repositoryName"] for r in
                                   c.describe_repositories()["repositories"]),
        }


# Every operation berth serves with a registryId member (botocore's ECR model), as
# (action, boto3 method, arguments for fixture f with `reg` as registryId). The same call is
# made by B naming A's registry (refused) and naming its own (works).
REGISTRY_ID_OPS = [
    ("CreateRepository", "create_repository",
     lambda f, reg: {"registryId": reg, "repositoryName": f.new_repo}),
    ("DescribeRepositories", "describe_repositories",
     lambda f, reg: {"registryId": reg}),
    ("DescribeRepositories", "describe_repositories",
     lambda f, reg: {"registryId": reg, "repositoryNames": [f.repo]}),
    ("DeleteRepository", "delete_repository",
     lambda f, reg: {"registryId": reg, "repositoryName": f.repo, "force": True}),
    ("PutImageTagMutability", "put_image_tag_mutability",
     lambda f, reg: {"registryId": reg, "repositoryName": f.repo,
                     "imageTagMutability": "IMMUTABLE"}),
    ("PutImageScanningConfiguration", "put_image_scanning_configuration",
     lambda f, reg: {"registryId": reg, "repositoryName": f.repo,
                     "imageScanningConfiguration": {"scanOnPush": True}}),
    ("SetRepositoryPolicy", "set_repository_policy",
     lambda f, reg: {"registryId": reg, "repositoryName": f.repo,
                     "policyText": policy(B[2]), "force": True}),
    ("GetRepositoryPolicy", "get_repository_policy",
     lambda f, reg: {"registryId": reg, "repositoryName": f.repo}),
    ("DeleteRepositoryPolicy", "delete_repository_policy",
     lambda f, reg: {"registryId": reg, "repositoryName": f.repo}),
    ("PutLifecyclePolicy", "put_lifecycle_policy",
     lambda f, reg: {"registryId": reg, "repositoryName": f.repo,
                     "lifecyclePolicyText": LIFECYCLE.replace("30", "1")}),
    ("GetLifecyclePolicy", "get_lifecycle_policy",
     lambda f, reg: {"registryId": reg, "repositoryName": f.repo}),
    ("DeleteLifecyclePolicy", "delete_lifecycle_policy",
     lambda f, reg: {"registryId": reg, "repositoryName": f.repo}),
    ("StartLifecyclePolicyPreview", "start_lifecycle_policy_preview",
     lambda f, reg: {"registryId": reg, "repositoryName": f.repo}),
    ("GetLifecyclePolicyPreview", "get_lifecycle_policy_preview",
     lambda f, reg: {"registryId": reg, "repositoryName": f.repo}),
    ("PutImage", "put_image",
     lambda f, reg: {"registryId": reg, "repositoryName": f.repo,
                     "imageManifest": f.img.manifest, "imageTag": "v2"}),
    ("BatchGetImage", "batch_get_image",
     lambda f, reg: {"registryId": reg, "repositoryName": f.repo,
                     "imageIds": [{"imageTag": "v1"}]}),
    ("BatchDeleteImage", "batch_delete_image",
     lambda f, reg: {"registryId": reg, "repositoryName": f.repo,
                     "imageIds": [{"imageTag": "v1"}]}),
    ("DescribeImages", "describe_images",
     lambda f, reg: {"registryId": reg, "repositoryName": f.repo}),
    ("ListImages", "list_images",
     lambda f, reg: {"registryId": reg, "repositoryName": f.repo}),
    ("ListImageReferrers", "list_image_referrers",
     lambda f, reg: {"registryId": reg, "repositoryName": f.repo,
                     "subjectId": {"imageDigest": f.img.digest}}),
    ("InitiateLayerUpload", "initiate_layer_upload",
     lambda f, reg: {"registryId": reg, "repositoryName": f.repo}),
    ("UploadLayerPart", "upload_layer_part",
     lambda f, reg: {"registryId": reg, "repositoryName": f.repo, "uploadId": f.upload,
                     "partFirstByte": 0, "partLastByte": 2, "layerPartBlob": b"abc"}),
    ("CompleteLayerUpload", "complete_layer_upload",
     lambda f, reg: {"registryId": reg, "repositoryName": f.repo, "uploadId": f.upload,
                     "layerDigests": [digest_of(b"abc")]}),
    ("BatchCheckLayerAvailability", "batch_check_layer_availability",
     lambda f, reg: {"registryId": reg, "repositoryName": f.repo,
                     "layerDigests": [f.layer]}),
    ("GetDownloadUrlForLayer", "get_download_url_for_layer",
     lambda f, reg: {"registryId": reg, "repositoryName": f.repo, "layerDigest": f.layer}),
]

# Operations that address a repository by ARN: (action, method, arguments with `arn`).
ARN_OPS = [
    ("TagResource", "tag_resource",
     lambda arn: {"resourceArn": arn, "tags": [{"Key": "owner", "Value": "mallory"}]}),
    ("UntagResource", "untag_resource",
     lambda arn: {"resourceArn": arn, "tagKeys": ["owner"]}),
    ("ListTagsForResource", "list_tags_for_resource",
     lambda arn: {"resourceArn": arn}),
]


class CrossAccount(BerthCase):
    """For each operation: B naming A's registry is refused and changes nothing; B naming its
    own registry works."""

    def setUp(self):
        self.a = Fixture(A)
        self.b = Fixture(B)
        self.a.new_repo = self.b.new_repo = uniq("xacct-new")

    def check_denied(self, action, method, kwargs, repo):
        before = self.a.snapshot()
        self.assertClientError("AccessDeniedException", getattr(self.b.c, method), **kwargs,
                               msg=denied_msg(action, A[2], repo))
        self.assertEqual(before, self.a.snapshot(), "%s changed A's registry" % action)
        # A's open upload still takes its first part
        r = self.a.c.upload_layer_part(repositoryName=self.a.repo, uploadId=self.a.upload,
                                       partFirstByte=0, partLastByte=2, layerPartBlob=b"abc")
        self.assertEqual(2, r["lastByteReceived"])


def _registry_id_test(action, method, args):
    def test(self):
        kw = args(self.a, A[2])
        repo = kw.get("repositoryName") or (kw.get("repositoryNames") or ["*"])[0]
        self.check_denied(action, method, kw, repo)
        if action == "CreateRepository":
            self.assertNotIn(self.a.new_repo, self.a.snapshot()["repositories"])
        # the same call naming B's own registry works
        if action == "CompleteLayerUpload":
            self.b.c.upload_layer_part(repositoryName=self.b.repo, uploadId=self.b.upload,
                                       partFirstByte=0, partLastByte=2, layerPartBlob=b"abc")
        getattr(self.b.c, method)(**args(self.b, B[2]))
    return test


def _arn_test(action, method, args):
    def test(self):
        self.check_denied(action, method, args(self.a.arn), self.a.repo)
        getattr(self.b.c, method)(**args(self.b.arn))
    return test


for _i, (_action, _method, _args) in enumerate(REGISTRY_ID_OPS):
    setattr(CrossAccount, "test_%02d_%s" % (_i, _method),
            _registry_id_test(_action, _method, _args))
for _i, (_action, _method, _args) in enumerate(ARN_OPS):
    setattr(CrossAccount, "test_arn_%s" % _method, _arn_test(_action, _method, _args))


class CrossAccountDetails(BerthCase):
    def test_every_registry_id_operation_is_covered(self):
        """Every operation berth serves whose input names a registry (botocore's model) is in
        the tables above, so a new operation cannot slip past this module."""
        here = os.path.dirname(os.path.abspath(__file__))
        with open(os.path.join(here, "..", "..", "src", "api", "ecr_actions.def")) as f:
            served = [ln[2:].split(",")[0] for ln in f if ln.startswith("X(")]
        model = client(A).meta.service_model
        covered = {a for a, _, _ in REGISTRY_ID_OPS + ARN_OPS} | {"GetAuthorizationToken"}
        for op in served:
            members = model.operation_model(op).input_shape.members
            if "registryId" in members or "resourceArn" in members or "registryIds" in members:
                self.assertIn(op, covered)

    def test_arn_account_decides(self):
        """The ARN's account decides, whatever else the ARN says."""
        f = Fixture(A)
        arn = f.arn.replace(A[2], B[2])
        # B naming its own account in the ARN: its own registry, where the repository is absent
        self.assertClientError("RepositoryNotFoundException", client(B).list_tags_for_resource,
                               resourceArn=arn)
        self.assertClientError("AccessDeniedException", client(B).list_tags_for_resource,
                               resourceArn=f.arn, msg=denied_msg("ListTagsForResource", A[2],
                                                                 f.repo))

    def test_denied_also_for_absent_repositories_and_malformed_ids(self):
        """Refused before any lookup: B learns nothing about what A has."""
        name = uniq("absent")
        self.assertClientError("AccessDeniedException", client(B).describe_images,
                               registryId=A[2], repositoryName=name,
                               msg=denied_msg("DescribeImages", A[2], name))
        self.assertClientError("AccessDeniedException", client(B).list_images,
                               registryId="123", repositoryName=name,
                               msg=denied_msg("ListImages", "123", name))
        # the longest action with the longest name: the message is not cut short
        name = "a" * 256
        self.assertClientError("AccessDeniedException", client(B).batch_check_layer_availability,
                               registryId=A[2], repositoryName=name,
                               layerDigests=[digest_of(b"x")],
                               msg=denied_msg("BatchCheckLayerAvailability", A[2], name))

    def test_region_in_resource(self):
        c = SRV.client(region="eu-west-1", access_key=B[0], secret=B[1])
        self.assertClientError("AccessDeniedException", c.describe_repositories,
                               registryId=A[2],
                               msg=denied_msg("DescribeRepositories", A[2], "*",
                                              region="eu-west-1"))

    def test_error_shape(self):
        r = SRV.raw("DeleteRepository", {"registryId": A[2], "repositoryName": "x-y"},
                    access_key=B[0], secret=B[1])
        body = self.assertRawError(r, "AccessDeniedException", 400,
                                   msg=denied_msg("DeleteRepository", A[2], "x-y"))
        self.assertEqual({"__type", "message"}, set(body))
        self.assertEqual("AccessDeniedException", r.headers.get("x-amzn-ErrorType"))

    def test_authorization_token_for_another_registry(self):
        """ECR answers GetAuthorizationToken for any registryIds (the action has no resource);
        the token is the caller's and does not open the other account's registry."""
        f = Fixture(A)
        r = client(B).get_authorization_token(registryIds=[A[2]])["authorizationData"][0]
        self.assertEqual("https://%s.dkr.ecr.%s.amazonaws.com" % (A[2], REGION),
                         r["proxyEndpoint"])
        pw = base64.b64decode(r["authorizationToken"]).decode().partition(":")[2]
        v = V2(SRV.url, auth=pw, host="%s.dkr.ecr.%s.amazonaws.com" % (A[2], REGION))
        self.addCleanup(v.close)
        resp = v.get("%s/manifests/v1" % f.repo)
        self.assertEqual(403, resp.status_code, resp.text[:300])
        self.assertEqual("DENIED", resp.json()["errors"][0]["code"])
        # without the Host the token addresses B's own registry
        own = V2(SRV.url, auth=pw)
        self.addCleanup(own.close)
        self.assertEqual(404, own.get("%s/manifests/v1" % f.repo).status_code)


class OciCrossAccount(OciCase):
    """/v2 with B's token and a Host naming A's registry: 403 DENIED everywhere but the
    version check; A's images intact."""

    @classmethod
    def setUpClass(cls):
        cls.a = Fixture(A)
        cls.host = "%s.dkr.ecr.%s.amazonaws.com" % (A[2], REGION)

    def v2(self, who, host=None):
        v = V2(SRV.url, auth=registry_password(client(who)), host=host)
        self.addCleanup(v.close)
        return v

    def assertDenied(self, resp, action, repo):
        if resp.request.method == "HEAD":
            self.assertOciError(resp, "DENIED", 403)
        else:
            self.assertOciError(resp, "DENIED", 403, msg=denied_msg(action, A[2], repo))

    def assertIntact(self):
        s = self.a.snapshot()
        self.assertEqual([("v1", self.a.img.digest)], s["images"])
        self.assertEqual([self.a.img.manifest], s["manifest"])
        own = self.v2(A)
        self.assertEqual(self.a.img.manifest.encode(),
                         own.get("%s/manifests/v1" % self.a.repo).content)
        self.assertEqual(200, own.get("%s/blobs/%s" % (self.a.repo, self.a.layer)).status_code)

    def test_version_check_stays_open(self):
        self.assertStatus(self.v2(B, self.host).get(""), 200)

    def test_pull(self):
        v, n = self.v2(B, self.host), self.a.repo
        self.assertDenied(v.get("%s/manifests/v1" % n), "BatchGetImage", n)
        self.assertDenied(v.head("%s/manifests/v1" % n), "BatchGetImage", n)
        self.assertDenied(v.get("%s/blobs/%s" % (n, self.a.layer)), "GetDownloadUrlForLayer", n)
        self.assertDenied(v.head("%s/blobs/%s" % (n, self.a.layer)),
                          "BatchCheckLayerAvailability", n)
        self.assertDenied(v.get("%s/referrers/%s" % (n, self.a.img.digest)),
                          "ListImageReferrers", n)
        self.assertIntact()

    def test_list(self):
        v, n = self.v2(B, self.host), self.a.repo
        self.assertDenied(v.get("%s/tags/list" % n), "ListImages", n)
        self.assertDenied(v.get("_catalog"), "DescribeRepositories", "*")
        self.assertIntact()

    def test_push(self):
        v, n = self.v2(B, self.host), self.a.repo
        img = build_image()
        data = rand_bytes(100)
        r = v.post("%s/blobs/uploads/?digest=%s" % (n, digest_of(data)), data=data,
                   headers={"Content-Type": "application/octet-stream"})
        self.assertDenied(r, "InitiateLayerUpload", n)
        self.assertDenied(v.post("%s/blobs/uploads/" % n), "InitiateLayerUpload", n)
        # an upload session of A's, driven with B's token
        loc = self.v2(A).post("%s/blobs/uploads/" % n).headers["Location"]
        self.assertDenied(v.patch(loc, data=data), "UploadLayerPart", n)
        self.assertDenied(v.get(loc), "UploadLayerPart", n)
        done = "%s%sdigest=%s" % (loc, "&" if "?" in loc else "?", digest_of(data))
        self.assertDenied(v.put(done, data=data), "CompleteLayerUpload", n)
        self.assertDenied(v.delete(loc), "UploadLayerPart", n)
        self.assertDenied(v.put("%s/manifests/v1" % n, data=img.manifest,
                                headers={"Content-Type": img.media_type}), "PutImage", n)
        self.assertDenied(v.put("%s/manifests/v1" % n, data=self.a.img.manifest,
                                headers={"Content-Type": self.a.img.media_type}), "PutImage", n)
        self.assertIntact()
        # A's session is still usable by A
        r = self.v2(A).patch(loc, data=data, headers={"Content-Type": "application/octet-stream"})
        self.assertStatus(r, 202)

    def test_delete(self):
        v, n = self.v2(B, self.host), self.a.repo
        self.assertDenied(v.delete("%s/manifests/v1" % n), "BatchDeleteImage", n)
        self.assertDenied(v.delete("%s/manifests/%s" % (n, self.a.img.digest)),
                          "BatchDeleteImage", n)
        self.assertDenied(v.delete("%s/blobs/%s" % (n, self.a.layer)), "BatchDeleteImage", n)
        self.assertIntact()

    def test_own_host_and_no_host_work(self):
        """B's token with B's own Host (or none) reaches B's registry."""
        b = Fixture(B)
        for host in (None, "%s.dkr.ecr.%s.amazonaws.com" % (B[2], REGION)):
            with self.subTest(host=host):
                v = self.v2(B, host)
                self.assertEqual(b.img.manifest.encode(),
                                 v.get("%s/manifests/v1" % b.repo).content)
                self.assertIn(b.repo, v.get("_catalog").json()["repositories"])
        img = build_image()
        self.v2(B, "%s.dkr.ecr.%s.amazonaws.com" % (B[2], REGION)).push_image(b.repo, img, "v9")
        got = b.c.batch_get_image(repositoryName=b.repo, imageIds=[{"imageTag": "v9"}])
        self.assertEqual(img.digest, got["images"][0]["imageId"]["imageDigest"])


class AnonymousMode(OciCase):
    """Without --credentials nobody is authenticated: registryId and Host address any
    account, as before (there is no "other" account to protect from)."""

    def test_registry_id_and_host_address_any_account(self):
        other = "333333333333"
        c = ANON.client()
        name = uniq("anon-x")
        c.create_repository(repositoryName=name, registryId=other)
        upload_blob(c, name, b"layer", registry_id=other)
        c.tag_resource(resourceArn="arn:aws:ecr:us-east-1:%s:repository/%s" % (other, name),
                       tags=[{"Key": "k", "Value": "v"}])
        v = V2(ANON.url, host="%s.dkr.ecr.us-east-1.amazonaws.com" % other)
        self.addCleanup(v.close)
        self.assertStatus(v.get("%s/blobs/%s" % (name, digest_of(b"layer"))), 200)
        self.assertIn(name, v.get("_catalog").json()["repositories"])
        c.delete_repository(repositoryName=name, registryId=other, force=True)


if __name__ == "__main__":
    unittest.main()
