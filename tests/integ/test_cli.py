"""A few AWS CLI (awscli v1) calls against berth."""

import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from berthctl import (ACCOUNT, BerthCase, digest_of, make_image,  # noqa: E402
                      module_server, uniq)

B = None
AWS = shutil.which("aws")


def setUpModule():
    global B
    if AWS is None:
        raise unittest.SkipTest("aws CLI not installed")
    B = module_server(name="cli")


def aws(*args, check=True, timeout=120):
    env = dict(os.environ)
    env.update({"AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "dummy-secret",
                "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
                "AWS_MAX_ATTEMPTS": "1", "AWS_RETRY_MODE": "standard", "AWS_PAGER": ""})
    env.pop("AWS_PROFILE", None)
    env.pop("AWS_SESSION_TOKEN", None)
    env.pop("AWS_DEFAULT_REGION", None)
    cmd = [AWS, "ecr"] + list(args) + ["--endpoint-url", B.url, "--region", "us-east-1",
                                       "--output", "json"]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout,
                       stdin=subprocess.DEVNULL)
    if check and p.returncode != 0:
        raise AssertionError("%s failed (%d):\n%s\n%s" % (" ".join(cmd), p.returncode,
                                                          p.stdout, p.stderr))
    return p


class Cli(BerthCase):
    def test_create_describe_put_get(self):
        name = uniq("cli")
        out = json.loads(aws("create-repository", "--repository-name", name,
                             "--image-tag-mutability", "IMMUTABLE").stdout)
        self.assertEqual(name, out["repository"]["repositoryName"])
        self.assertEqual("IMMUTABLE", out["repository"]["imageTagMutability"])
        self.assertEqual(ACCOUNT, out["repository"]["registryId"])
        self.assertIsInstance(out["repository"]["createdAt"], (int, float, str))

        out = json.loads(aws("describe-repositories", "--repository-names", name).stdout)
        self.assertEqual([name], [r["repositoryName"] for r in out["repositories"]])

        # put-image with the manifest from a file; blobs uploaded with boto3 first
        img = make_image(B.client(), name, indent=2)
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            f.write(img.manifest)
            path = f.name
        try:
            out = json.loads(aws("put-image", "--repository-name", name, "--image-tag", "v1",
                                 "--image-manifest", "file://" + path).stdout)
        finally:
            os.unlink(path)
        self.assertEqual(digest_of(img.manifest), out["image"]["imageId"]["imageDigest"])
        self.assertEqual("v1", out["image"]["imageId"]["imageTag"])

        out = json.loads(aws("batch-get-image", "--repository-name", name,
                             "--image-ids", "imageTag=v1").stdout)
        self.assertEqual(img.manifest, out["images"][0]["imageManifest"])

        out = json.loads(aws("list-images", "--repository-name", name).stdout)
        self.assertEqual([{"imageDigest": img.digest, "imageTag": "v1"}], out["imageIds"])

        out = json.loads(aws("describe-images", "--repository-name", name).stdout)
        self.assertEqual(["v1"], out["imageDetails"][0]["imageTags"])
        self.assertEqual(img.size, out["imageDetails"][0]["imageSizeInBytes"])

    def test_error_exit_status(self):
        p = aws("describe-repositories", "--repository-names", "no-such-cli-repo", check=False)
        self.assertNotEqual(0, p.returncode)
        self.assertIn("RepositoryNotFoundException", p.stderr)
        p = aws("create-repository", "--repository-name", "Invalid_UPPER", check=False)
        self.assertNotEqual(0, p.returncode)
        self.assertIn("InvalidParameterException", p.stderr)

    def test_get_login_password(self):
        p = aws("get-login-password")
        password = p.stdout.strip()
        self.assertTrue(password)
        token = B.client().get_authorization_token()["authorizationData"][0][
            "authorizationToken"]
        self.assertTrue(base64.b64decode(token).decode().startswith("AWS:"))

    def test_cli_pagination(self):
        c = B.client(region="us-east-1")
        names = ["cli-page-%s-%d" % (uniq("p")[2:8], i) for i in range(5)]
        for n in names:
            c.create_repository(repositoryName=n)
        # the CLI auto-paginates with a small page size
        out = json.loads(aws("describe-repositories", "--page-size", "2").stdout)
        got = {r["repositoryName"] for r in out["repositories"]}
        self.assertTrue(set(names) <= got, got)
