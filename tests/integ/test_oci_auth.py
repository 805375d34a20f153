"""/v2 version check and authentication as ECR does it (ECR-API.md 4.11, 5; OCI Distribution
Spec v1.1 "Determining support" and error codes UNAUTHORIZED/DENIED):
with --credentials every /v2 request needs Basic base64(AWS:<GetAuthorizationToken password>),
verified statelessly (signature, expiry, account, region); otherwise 401 with a Basic challenge.
Expired tokens get 403 DENIED "token expired". The registry comes from the token, else from a
Host <account>.dkr.ecr.<region>.<domain>, else the default; a Host naming another account than
the token's is refused (403 DENIED). Without credentials anonymous access works. Also skopeo with and without credentials."""

import base64
import os
import re
import sys
import tempfile
import time
import unittest

import requests

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from berthctl import ACCOUNT, module_server, digest_of, uniq  # noqa: E402
from ocilib import (SKOPEO_OK, SKOPEO_WHY, V2, OciCase, Tools, basic,  # noqa: E402
                    build_image, layout_blob, mint_password, registry_password, write_layout)

B = None      # with --credentials
ANON = None   # without
TOOLS = None
ONE = ("AKIDOCIAUTHONE000001", "secret-one", "111111111111")
TWO = ("AKIDOCIAUTHTWO000002", "secret-two", "222222222222")
EXPIRED_MSG = "Your authorization token has expired. Reauthenticate and try again."
CHALLENGE_RE = re.compile(r'^Basic realm="https://(\d{12})\.dkr\.ecr\.([a-z0-9-]+)'
                          r'\.amazonaws\.com/",service="ecr\.amazonaws\.com"$')


def setUpModule():
    global B, ANON, TOOLS
    B = module_server(name="oci-auth", credentials=[ONE, TWO])
    ANON = module_server(name="oci-anon")
    TOOLS = Tools()
    unittest.addModuleCleanup(TOOLS.cleanup)


def client(who=ONE, region="us-east-1", server=None):
    return (server or B).client(region=region, access_key=who[0], secret=who[1])


class Base(OciCase):
    def v2(self, auth=None, host=None, server=None):
        v = V2((server or B).url, auth=auth, host=host)
        self.addCleanup(v.close)
        return v

    def assertChallenge(self, resp, account=None, region=None):
        self.assertOciError(resp, "UNAUTHORIZED", 401)
        h = resp.headers.get("WWW-Authenticate", "")
        m = CHALLENGE_RE.match(h)
        self.assertTrue(m, "WWW-Authenticate %r" % h)
        if account:
            self.assertEqual(account, m.group(1))
        if region:
            self.assertEqual(region, m.group(2))
        self.assertEqual("registry/2.0", resp.headers.get("Docker-Distribution-Api-Version"))


class Challenge(Base):
    def test_version_check_without_credentials(self):
        r = self.v2().get("")
        self.assertChallenge(r, ACCOUNT, "us-east-1")
        # both spellings of the base path
        self.assertChallenge(self.v2().get("/v2"))

    def test_challenge_names_the_host_registry(self):
        r = self.v2(host="%s.dkr.ecr.eu-west-3.amazonaws.com" % TWO[2]).get("")
        self.assertChallenge(r, TWO[2], "eu-west-3")

    def test_every_endpoint_needs_a_token(self):
        repo = uniq("auth")
        client().create_repository(repositoryName=repo)
        img = build_image()
        d = digest_of(b"x")
        v = self.v2()
        calls = [
            ("GET", "_catalog", {}), ("GET", "%s/tags/list" % repo, {}),
            ("GET", "%s/manifests/latest" % repo, {}), ("HEAD", "%s/manifests/latest" % repo, {}),
            ("PUT", "%s/manifests/latest" % repo,
             {"data": img.manifest, "headers": {"Content-Type": img.media_type}}),
            ("DELETE", "%s/manifests/%s" % (repo, img.digest), {}),
            ("GET", "%s/blobs/%s" % (repo, d), {}), ("HEAD", "%s/blobs/%s" % (repo, d), {}),
            ("DELETE", "%s/blobs/%s" % (repo, d), {}),
            ("POST", "%s/blobs/uploads/" % repo, {}),
            ("POST", "%s/blobs/uploads/?digest=%s" % (repo, d), {"data": b"x"}),
            ("PATCH", "%s/blobs/uploads/%s" % (repo, "0" * 8 + "-0000-0000-0000-" + "0" * 12),
             {"data": b"x"}),
            ("GET", "%s/referrers/%s" % (repo, d), {}),
        ]
        for method, path, kw in calls:
            with self.subTest(method=method, path=path):
                r = v.req(method, path, **kw)
                if method == "HEAD":
                    self.assertEqual(401, r.status_code)
                    self.assertTrue(CHALLENGE_RE.match(r.headers.get("WWW-Authenticate", "")))
                else:
                    self.assertChallenge(r)
        # nothing happened
        self.assertEqual([], client().describe_images(repositoryName=repo)["imageDetails"])
        self.assertEqual("UNAVAILABLE", client().batch_check_layer_availability(
            repositoryName=repo, layerDigests=[d])["layers"][0]["layerAvailability"])

    def test_bad_authorization_headers(self):
        pw = registry_password(client())
        mac_flipped = pw[:-2] + ("A" if pw[-2] != "A" else "B") + pw[-1]
        payload, _, mac = pw.partition(".")
        bad = {
            "wrong user": basic("bob", pw),
            "lowercase user": basic("aws", pw),
            "tampered mac": basic("AWS", mac_flipped),
            "tampered payload": basic("AWS", payload[:-3] + "xyz." + mac),
            "garbage password": basic("AWS", "garbage"),
            "empty password": basic("AWS", ""),
            "no colon": "Basic " + base64.b64encode(b"AWS" + pw.encode()).decode(),
            "not base64": "Basic !!!not-base64!!!",
            "bearer": "Bearer " + pw,
            "other key": basic("AWS", self.foreign_token()),
            "raw token": pw,
        }
        for what, h in bad.items():
            with self.subTest(what):
                r = self.v2(auth=("raw", h)).get("")
                self.assertChallenge(r)

    def foreign_token(self):
        """A well-formed token signed with another key."""
        d = tempfile.mkdtemp(prefix="berth-oci-key-")
        try:
            with open(os.path.join(d, "secret"), "wb") as f:
                f.write(os.urandom(32))
            return mint_password(d, ONE[2], "us-east-1", time.time() + 3600)
        finally:
            import shutil
            shutil.rmtree(d, ignore_errors=True)


class Tokens(Base):
    def test_valid_token(self):
        r = self.v2(auth=registry_password(client())).get("")
        self.assertStatus(r, 200)
        self.assertEqual({}, r.json())
        self.assertEqual("registry/2.0", r.headers.get("Docker-Distribution-Api-Version"))

    def test_token_from_get_authorization_token_as_is(self):
        """The authorizationToken is directly usable as `Authorization: Basic <token>`."""
        tok = client().get_authorization_token()["authorizationData"][0]["authorizationToken"]
        r = self.v2(auth=("raw", "Basic " + tok)).get("")
        self.assertStatus(r, 200)

    def test_expired_token(self):
        pw = mint_password(B.data_dir, ONE[2], "us-east-1", time.time() - 5)
        for path in ("", "_catalog", "x/tags/list"):
            with self.subTest(path=path):
                r = self.v2(auth=pw).get(path)
                self.assertOciError(r, "DENIED", 403, msg=EXPIRED_MSG)
        # a minted token that is still valid works: only the expiry differs
        ok = mint_password(B.data_dir, ONE[2], "us-east-1", time.time() + 60)
        self.assertStatus(self.v2(auth=ok).get(""), 200)

    def test_token_selects_account_and_region(self):
        name = uniq("acct")
        client(ONE).create_repository(repositoryName=name)
        client(TWO, region="eu-central-1").create_repository(repositoryName=name)
        one = self.v2(auth=registry_password(client(ONE)))
        two_eu = self.v2(auth=registry_password(client(TWO, region="eu-central-1")))
        two_us = self.v2(auth=registry_password(client(TWO)))
        img1, img2 = build_image(), build_image()
        one.push_image(name, img1, tag="t")
        two_eu.push_image(name, img2, tag="t")
        self.assertEqual(img1.manifest, one.get("%s/manifests/t" % name).content)
        self.assertEqual(img2.manifest, two_eu.get("%s/manifests/t" % name).content)
        # same account, other region: another registry
        self.assertOciError(two_us.get("%s/manifests/t" % name), "NAME_UNKNOWN", 404,
                            msg="The repository with name '%s' does not exist in the registry "
                                "with id '%s'" % (name, TWO[2]))
        # the ECR door sees each push in its own registry
        d1 = client(ONE).describe_images(repositoryName=name)["imageDetails"]
        d2 = client(TWO, region="eu-central-1").describe_images(repositoryName=name)
        self.assertEqual([img1.digest], [x["imageDigest"] for x in d1])
        self.assertEqual([img2.digest], [x["imageDigest"] for x in d2["imageDetails"]])
        self.assertEqual(ONE[2], d1[0]["registryId"])
        # catalogs are per registry
        self.assertIn(name, one.get("_catalog").json()["repositories"])
        self.assertNotIn(name, two_us.get("_catalog").json()["repositories"])

    def test_host_of_another_account_is_denied(self):
        """A Host naming another account's registry is that registry, which the token's
        account may not reach (test_cross_account.py covers every endpoint)."""
        name = uniq("host")
        client(ONE).create_repository(repositoryName=name)
        client(TWO).create_repository(repositoryName=name)
        v = self.v2(auth=registry_password(client(ONE)),
                    host="%s.dkr.ecr.us-east-1.amazonaws.com" % TWO[2])
        self.assertOciError(
            v.get("%s/tags/list" % name), "DENIED", 403,
            msg="User: arn:aws:iam::%s:root is not authorized to perform: ecr:ListImages on "
                "resource: arn:aws:ecr:us-east-1:%s:repository/%s because no resource-based "
                "policy allows the ecr:ListImages action" % (ONE[2], TWO[2], name))
        self.assertStatus(v.get(""), 200)

    def test_token_wins_over_host_of_same_account(self):
        """A Host naming the token's own account in another region: the token's registry."""
        name = uniq("host")
        client(ONE).create_repository(repositoryName=name)
        v = self.v2(auth=registry_password(client(ONE)),
                    host="%s.dkr.ecr.eu-west-1.amazonaws.com" % ONE[2])
        self.assertStatus(v.get("%s/tags/list" % name), 200)

    def test_token_valid_for_every_registry_call(self):
        """A token from one region works for the whole session: push, pull, delete."""
        name = uniq("session")
        client(ONE, region="ap-northeast-1").create_repository(repositoryName=name)
        v = self.v2(auth=registry_password(client(ONE, region="ap-northeast-1")))
        img = build_image()
        v.push_image(name, img, tag="v1")
        self.assertStatus(v.head("%s/manifests/v1" % name), 200)
        self.assertStatus(v.get("%s/blobs/%s" % (name, digest_of(img.layers[0]))), 200)
        self.assertStatus(v.delete("%s/manifests/%s" % (name, img.digest)), 202)

    def test_download_url_needs_no_token(self):
        name = uniq("dl")
        c = client()
        c.create_repository(repositoryName=name)
        img = build_image()
        self.v2(auth=registry_password(c)).push_image(name, img, tag="t")
        d = digest_of(img.layers[0])
        url = c.get_download_url_for_layer(repositoryName=name, layerDigest=d)["downloadUrl"]
        r = requests.get(url, timeout=30)
        self.assertEqual(200, r.status_code, r.text[:300])
        self.assertEqual(img.layers[0], r.content)
        tampered = re.sub(r"(X-Berth-Signature=)([0-9A-Za-z_-])",
                          lambda m: m.group(1) + ("A" if m.group(2) != "A" else "B"), url)
        self.assertNotEqual(url, tampered)
        r = requests.get(tampered, timeout=30)
        self.assertIn(r.status_code, (401, 403), r.text[:300])


class Anonymous(Base):
    def test_anonymous_access(self):
        v = self.v2(server=ANON)
        r = v.get("")
        self.assertStatus(r, 200)
        self.assertEqual({}, r.json())
        name = uniq("anon")
        ANON.client().create_repository(repositoryName=name)
        img = build_image()
        v.push_image(name, img, tag="t")
        self.assertEqual(img.manifest, v.get("%s/manifests/t" % name).content)

    def test_host_selects_registry(self):
        other = "210987654321"
        name = uniq("hosted")
        ANON.client(region="eu-west-1").create_repository(repositoryName=name, registryId=other)
        host = "%s.dkr.ecr.eu-west-1.amazonaws.com" % other
        for h in (host, host + ":443", "%s.dkr.ecr.eu-west-1.amazonaws.com.cn" % other):
            with self.subTest(host=h):
                v = self.v2(server=ANON, host=h)
                self.assertStatus(v.get("%s/tags/list" % name), 200)
                self.assertIn(name, v.get("_catalog").json()["repositories"])
        img = build_image()
        self.v2(server=ANON, host=host).push_image(name, img, tag="t")
        det = ANON.client(region="eu-west-1").describe_images(
            repositoryName=name, registryId=other)["imageDetails"]
        self.assertEqual([img.digest], [x["imageDigest"] for x in det])
        # default Host: the default registry, where the repository does not exist
        self.assertOciError(self.v2(server=ANON).get("%s/tags/list" % name), "NAME_UNKNOWN", 404)
        # not of the form <12 digits>.dkr.ecr.<region>.<domain>: default registry
        for h in ("registry.example.com", "21098765432.dkr.ecr.eu-west-1.amazonaws.com",
                  "%s.dkr.ecr..amazonaws.com" % other):
            with self.subTest(host=h):
                r = self.v2(server=ANON, host=h).get("%s/tags/list" % name)
                self.assertOciError(r, "NAME_UNKNOWN", 404)

    def test_token_selects_registry_without_credentials(self):
        name = uniq("anon-tok")
        c = ANON.client(region="sa-east-1")
        c.create_repository(repositoryName=name)
        v = self.v2(server=ANON, auth=registry_password(c))
        self.assertStatus(v.get("%s/tags/list" % name), 200)
        self.assertOciError(self.v2(server=ANON).get("%s/tags/list" % name), "NAME_UNKNOWN", 404)


@unittest.skipUnless(SKOPEO_OK, SKOPEO_WHY)
class Skopeo(Base):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="berth-oci-auth-")
        self.addCleanup(__import__("shutil").rmtree, self.tmp, True)

    def ref(self, repo, tag):
        return "docker://127.0.0.1:%d/%s:%s" % (B.port, repo, tag)

    def test_copy_with_and_without_credentials(self):
        c = client()
        repo = uniq("skauth")
        c.create_repository(repositoryName=repo)
        img = build_image()
        src = write_layout(os.path.join(self.tmp, "src"), img)
        pw = registry_password(c)
        # without credentials: refused, nothing stored
        p = TOOLS.skopeo("copy", "--dest-tls-verify=false", "oci:%s:latest" % src,
                         self.ref(repo, "v1"), check=False)
        self.assertNotEqual(0, p.returncode)
        err = p.stderr.decode("utf-8", "replace").lower()
        self.assertTrue("unauthorized" in err or "authentication required" in err, err[-800:])
        self.assertEqual([], c.describe_images(repositoryName=repo)["imageDetails"])
        # with the token
        TOOLS.skopeo("copy", "--dest-tls-verify=false", "--dest-creds", "AWS:" + pw,
                     "oci:%s:latest" % src, self.ref(repo, "v1"))
        det = c.describe_images(repositoryName=repo)["imageDetails"]
        self.assertEqual([img.digest], [x["imageDigest"] for x in det])
        self.assertEqual(["v1"], det[0]["imageTags"])
        # list-tags / inspect / copy back with credentials
        p = TOOLS.skopeo("list-tags", "--tls-verify=false", "--creds", "AWS:" + pw,
                         "docker://127.0.0.1:%d/%s" % (B.port, repo))
        self.assertIn('"v1"', p.stdout.decode())
        p = TOOLS.skopeo("inspect", "--raw", "--tls-verify=false", "--creds", "AWS:" + pw,
                         self.ref(repo, "v1"))
        self.assertEqual(img.manifest, p.stdout)
        dst = os.path.join(self.tmp, "dst")
        TOOLS.skopeo("copy", "--src-tls-verify=false", "--src-creds", "AWS:" + pw,
                     self.ref(repo, "v1"), "oci:%s:latest" % dst)
        for b in img.blobs():
            self.assertEqual(b, layout_blob(dst, digest_of(b)))
        # list-tags without credentials fails
        p = TOOLS.skopeo("list-tags", "--tls-verify=false",
                         "docker://127.0.0.1:%d/%s" % (B.port, repo), check=False)
        self.assertNotEqual(0, p.returncode)
        # delete with credentials
        TOOLS.skopeo("delete", "--tls-verify=false", "--creds", "AWS:" + pw,
                     self.ref(repo, "v1"))
        self.assertEqual([], c.describe_images(repositoryName=repo)["imageDetails"])

    def test_expired_token_is_reported(self):
        c = client()
        repo = uniq("skexp")
        c.create_repository(repositoryName=repo)
        src = write_layout(os.path.join(self.tmp, "src"), build_image())
        pw = mint_password(B.data_dir, ONE[2], "us-east-1", time.time() - 60)
        p = TOOLS.skopeo("copy", "--dest-tls-verify=false", "--dest-creds", "AWS:" + pw,
                         "oci:%s:latest" % src, self.ref(repo, "v1"), check=False)
        self.assertNotEqual(0, p.returncode)
        err = p.stderr.decode("utf-8", "replace")
        # skopeo's first authenticated call is a HEAD (no body), so it may only show the 403
        self.assertTrue("expired" in err.lower() or "403" in err, err[-800:])
        self.assertEqual([], c.describe_images(repositoryName=repo)["imageDetails"])
