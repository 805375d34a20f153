"""Helpers for the /v2 (OCI Distribution Spec v1.1) integration tests.

* V2: a small raw-HTTP client for the /v2 door of a running Berth (requests, loopback only,
  every call with a timeout), with helpers to push blobs/manifests and check OCI error bodies.
* Image builders: real gzipped tar layers with random content and a config whose diff_ids match
  (so podman can unpack them), written as an OCI image layout on disk (single image or a
  multi-platform index) -- no network, no Docker engine.
* skopeo / podman runners with timeouts and isolated auth/config files.
* Registry tokens: from GetAuthorizationToken, or minted with the data directory's secret
  (to make expired ones).
* Process memory (VmHWM) helpers and a streaming data source for big blobs.
"""

import base64
import gzip
import hashlib
import hmac
import io
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
import uuid

import requests

from berthctl import (DOCKER_CONFIG, DOCKER_LAYER, DOCKER_LIST, DOCKER_MANIFEST,  # noqa: F401
                      OCI_CONFIG, OCI_INDEX, OCI_LAYER, OCI_MANIFEST, BerthCase, digest_of)

HTTP_TIMEOUT = 60          # seconds, every raw request
TOOL_TIMEOUT = 120         # seconds, every skopeo/podman run
OCI_EMPTY_CONFIG = "application/vnd.oci.empty.v1+json"
EMPTY_JSON = b"{}"
EMPTY_DIGEST = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
# Canonical OCI error codes (distribution-spec "Error Codes").
OCI_ERROR_CODES = {"BLOB_UNKNOWN", "BLOB_UPLOAD_INVALID", "BLOB_UPLOAD_UNKNOWN", "DIGEST_INVALID",
                   "MANIFEST_BLOB_UNKNOWN", "MANIFEST_INVALID", "MANIFEST_UNKNOWN",
                   "NAME_INVALID", "NAME_UNKNOWN", "SIZE_INVALID", "UNAUTHORIZED", "DENIED",
                   "UNSUPPORTED", "TOOMANYREQUESTS",
                   "TAG_INVALID"}  # TAG_INVALID: Docker distribution's code, ECR uses it


def sha256_hex(data):
    return hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------------------------------------
# raw /v2 client


class V2:
    """Raw HTTP access to /v2 of one server.

    auth: None (anonymous), a registry password (sent as Basic AWS:<password>), or a full
    Authorization header value given as ("raw", value)."""

    def __init__(self, base_url, auth=None, host=None, timeout=HTTP_TIMEOUT):
        self.base = base_url.rstrip("/")
        self.auth = auth
        self.host = host
        self.timeout = timeout
        self.s = requests.Session()
        self.s.trust_env = False  # never a proxy: loopback only

    def close(self):
        self.s.close()

    def headers(self, extra=None):
        h = {}
        if self.auth is not None:
            if isinstance(self.auth, tuple) and self.auth[0] == "raw":
                h["Authorization"] = self.auth[1]
            else:
                h["Authorization"] = basic("AWS", self.auth)
        if self.host:
            h["Host"] = self.host
        if extra:
            h.update(extra)
        return h

    def url(self, path):
        if path.startswith("http://"):
            return path
        if not path.startswith("/"):
            path = "/v2/" + path
        return self.base + path

    def req(self, method, path, headers=None, **kw):
        kw.setdefault("timeout", self.timeout)
        kw.setdefault("allow_redirects", False)
        return self.s.request(method, self.url(path), headers=self.headers(headers), **kw)

    def get(self, path, **kw):
        return self.req("GET", path, **kw)

    def head(self, path, **kw):
        return self.req("HEAD", path, **kw)

    def put(self, path, **kw):
        return self.req("PUT", path, **kw)

    def post(self, path, **kw):
        return self.req("POST", path, **kw)

    def patch(self, path, **kw):
        return self.req("PATCH", path, **kw)

    def delete(self, path, **kw):
        return self.req("DELETE", path, **kw)

    # -- helpers -----------------------------------------------------------------------------

    def start_upload(self, repo, data):
        """POST + one PATCH of data (202s asserted); returns the session's Location."""
        r = self.post("%s/blobs/uploads/" % repo)
        if r.status_code != 202:
            raise AssertionError("POST upload -> %d" % r.status_code)
        loc = r.headers["Location"]
        r = self.patch(loc, data=data, headers={
            "Content-Type": "application/octet-stream",
            "Content-Range": "0-%d" % (len(data) - 1)})
        if r.status_code != 202:
            raise AssertionError("PATCH -> %d" % r.status_code)
        return r.headers.get("Location", loc)

    def push_blob(self, repo, data, check=True):
        """Monolithic POST ?digest=. Returns the digest."""
        d = digest_of(data)
        r = self.post("%s/blobs/uploads/?digest=%s" % (repo, d), data=data,
                      headers={"Content-Type": "application/octet-stream"})
        if check and r.status_code != 201:
            raise AssertionError("blob push %s -> %d %s" % (d, r.status_code, r.text[:300]))
        return d

    def push_manifest(self, repo, ref, body, media_type, check=True):
        if isinstance(body, str):
            body = body.encode()
        r = self.put("%s/manifests/%s" % (repo, ref), data=body,
                     headers={"Content-Type": media_type} if media_type else {})
        if check and r.status_code != 201:
            raise AssertionError("manifest push %s:%s -> %d %s" % (repo, ref, r.status_code,
                                                                     r.text[:300]))
        return r

    def push_image(self, repo, img, tag=None):
        """Uploads an Image's blobs (monolithic) and puts its manifest by tag or digest.
        For an Index only the index itself is put (its children must be there already)."""
        for data in getattr(img, "blobs", list)():
            self.push_blob(repo, data)
        return self.push_manifest(repo, tag or img.digest, img.manifest, img.media_type)

    def push_index(self, repo, idx, tag=None):
        for child in idx.children:
            self.push_image(repo, child)
        return self.push_manifest(repo, tag or idx.digest, idx.manifest, idx.media_type)


def basic(user, password):
    return "Basic " + base64.b64encode(("%s:%s" % (user, password)).encode()).decode()


def oci_errors(resp):
    """The `errors` array of an OCI error response (AssertionError if the body is not one)."""
    try:
        body = resp.json()
    except ValueError:
        raise AssertionError("error body is not JSON: status %d %r"
                             % (resp.status_code, resp.text[:300]))
    errs = body.get("errors") if isinstance(body, dict) else None
    if not isinstance(errs, list) or not errs:
        raise AssertionError("not an OCI error body: %r" % body)
    return errs


def excerpt(resp, n=500):
    """A short, safe excerpt of a response body for failure messages (never reads a big
    or streamed body)."""
    cl = resp.headers.get("Content-Length", "")
    if not getattr(resp, "_content_consumed", True) or not cl.isdigit() or int(cl) > 65536:
        return "<body of %s bytes not shown>" % (cl or "unknown")
    return resp.content[:n]


class OciCase(BerthCase):
    """BerthCase with assertions for OCI error responses."""

    def assertOciError(self, resp, code, status, msg=None, msg_contains=None):
        """status/code of an OCI error response; codes may be a tuple of acceptable codes.
        Checks the body shape {"errors":[{"code","message","detail"}]} (not for HEAD)."""
        where = "%s %s" % (resp.request.method, resp.request.path_url)
        statuses = status if isinstance(status, tuple) else (status,)
        if resp.status_code not in statuses:
            self.fail("%s: status %d, expected %s; body=%r" % (where, resp.status_code,
                                                              statuses, excerpt(resp)))
        if resp.request.method == "HEAD":
            self.assertEqual(b"", resp.content)
            return None
        self.assertTrue(resp.headers.get("Content-Type", "").startswith("application/json"),
                        "%s: error Content-Type %r" % (where, resp.headers.get("Content-Type")))
        errs = oci_errors(resp)
        e = errs[0]
        codes = code if isinstance(code, tuple) else (code,)
        self.assertIn(e.get("code"), codes, "%s: body=%r" % (where, excerpt(resp)))
        self.assertIn(e.get("code"), OCI_ERROR_CODES, "not a spec error code")
        self.assertIsInstance(e.get("message"), str, "%s: message; body=%r" % (where, errs))
        self.assertIn("detail", e, "%s: detail member; body=%r" % (where, errs))
        if msg is not None:
            self.assertEqual(msg, e["message"])
        if msg_contains is not None:
            for piece in ([msg_contains] if isinstance(msg_contains, str) else msg_contains):
                self.assertIn(piece, e["message"])
        return e

    def assertStatus(self, resp, status):
        statuses = status if isinstance(status, tuple) else (status,)
        if resp.status_code not in statuses:
            self.fail("%s %s: status %d, expected %s; body=%r" % (
                resp.request.method, resp.request.path_url, resp.status_code, statuses,
                excerpt(resp)))
        return resp


# --------------------------------------------------------------------------------------------
# images


def targz_layer(files):
    """files: list of (name, bytes). Returns (compressed tar.gz bytes, uncompressed tar bytes)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, data in files:
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            ti.mode = 0o644
            ti.mtime = 1700000000
            tf.addfile(ti, io.BytesIO(data))
    tar = raw.getvalue()
    return gzip.compress(tar, compresslevel=1, mtime=0), tar


def random_layer(size):
    """A gzipped tar layer holding one random file of `size` bytes."""
    name = "data/%s.bin" % uuid.uuid4().hex[:12]
    return targz_layer([(name, os.urandom(size))])


class Image:
    """An image manifest with its blobs (bytes), ready to be pushed or written to a layout."""

    def __init__(self, config, config_mt, layers, layer_mt, manifest_mt, artifact_type=None,
                 subject=None, annotations=None):
        self.config = config                  # bytes
        self.layers = list(layers)            # [bytes]
        self.config_desc = {"mediaType": config_mt, "digest": digest_of(config),
                            "size": len(config)}
        self.layer_descs = [{"mediaType": layer_mt, "digest": digest_of(b), "size": len(b)}
                            for b in self.layers]
        m = {"schemaVersion": 2, "mediaType": manifest_mt}
        if artifact_type:
            m["artifactType"] = artifact_type
        m["config"] = self.config_desc
        m["layers"] = self.layer_descs
        if subject:
            m["subject"] = subject
        if annotations:
            m["annotations"] = annotations
        self.media_type = manifest_mt
        self.manifest = json.dumps(m, indent=2).encode()
        self.digest = digest_of(self.manifest)
        self.artifact_type = artifact_type
        self.annotations = annotations

    def blobs(self):
        return [self.config] + self.layers

    @property
    def size(self):
        """imageSizeInBytes as ECR computes it (spec 4.13)."""
        return self.config_desc["size"] + sum(d["size"] for d in self.layer_descs)

    def descriptor(self, platform=None):
        d = {"mediaType": self.media_type, "digest": self.digest, "size": len(self.manifest)}
        if platform:
            d["platform"] = platform
        return d


class Index:
    def __init__(self, children, platforms, media_type=OCI_INDEX, artifact_type=None,
                 subject=None, annotations=None):
        self.children = list(children)
        m = {"schemaVersion": 2, "mediaType": media_type}
        if artifact_type:
            m["artifactType"] = artifact_type
        m["manifests"] = [c.descriptor(p) for c, p in zip(children, platforms)]
        if subject:
            m["subject"] = subject
        if annotations:
            m["annotations"] = annotations
        self.media_type = media_type
        self.manifest = json.dumps(m, indent=2).encode()
        self.digest = digest_of(self.manifest)
        self.artifact_type = artifact_type
        self.annotations = annotations

    @property
    def size(self):
        return max(c.size for c in self.children)

    def descriptor(self, platform=None):
        return {"mediaType": self.media_type, "digest": self.digest, "size": len(self.manifest)}


def build_image(nlayers=2, layer_size=4096, arch="amd64", docker=False, sizes=None):
    """A runnable-looking image: real tar.gz layers with random content, a config with the
    matching diff_ids. docker=True gives Docker schema 2 media types, else OCI."""
    sizes = list(sizes) if sizes is not None else [layer_size + 97 * i for i in range(nlayers)]
    gz, diff_ids = [], []
    for n in sizes:
        c, tar = random_layer(n)
        gz.append(c)
        diff_ids.append("sha256:" + sha256_hex(tar))
    cfg = {"architecture": arch, "os": "linux", "created": "2024-01-01T00:00:00Z",
           "config": {"Env": ["PATH=/usr/bin:/bin"], "Cmd": ["/bin/true"],
                      "Labels": {"berth.test": uuid.uuid4().hex}},
           "rootfs": {"type": "layers", "diff_ids": diff_ids},
           "history": [{"created": "2024-01-01T00:00:00Z", "created_by": "berth test"}
                       for _ in sizes]}
    config = json.dumps(cfg, sort_keys=True).encode()
    if docker:
        return Image(config, DOCKER_CONFIG, gz, DOCKER_LAYER, DOCKER_MANIFEST)
    return Image(config, OCI_CONFIG, gz, OCI_LAYER, OCI_MANIFEST)


def build_index(archs=("amd64", "arm64"), docker=False, nlayers=2, layer_size=2048):
    kids = [build_image(nlayers, layer_size, arch=a, docker=docker) for a in archs]
    plats = [{"architecture": a, "os": "linux"} for a in archs]
    return Index(kids, plats, media_type=DOCKER_LIST if docker else OCI_INDEX)


def build_artifact(subject, artifact_type="application/vnd.berth.test.sig", payload=None,
                   annotations=None, empty_config=True):
    """An OCI 1.1 artifact manifest (empty config, one blob) with a subject."""
    payload = payload if payload is not None else os.urandom(64)
    if empty_config:
        return Image(EMPTY_JSON, OCI_EMPTY_CONFIG, [payload], "application/octet-stream",
                     OCI_MANIFEST, artifact_type=artifact_type, subject=subject,
                     annotations=annotations)
    cfg = json.dumps({"kind": artifact_type, "n": uuid.uuid4().hex}).encode()
    return Image(cfg, artifact_type, [payload], "application/octet-stream", OCI_MANIFEST,
                 subject=subject, annotations=annotations)


def write_layout(path, top, tag="latest"):
    """Writes an OCI image layout at path with `top` (Image or Index) under ref name `tag`."""
    os.makedirs(os.path.join(path, "blobs", "sha256"), exist_ok=True)
    with open(os.path.join(path, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)

    def put(data):
        p = os.path.join(path, "blobs", "sha256", sha256_hex(data))
        with open(p, "wb") as f:
            f.write(data)

    images = top.children if isinstance(top, Index) else [top]
    for img in images:
        for b in img.blobs():
            put(b)
        put(img.manifest)
    if isinstance(top, Index):
        put(top.manifest)
    d = top.descriptor()
    d["annotations"] = {"org.opencontainers.image.ref.name": tag}
    with open(os.path.join(path, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [d]}, f)
    return path


def write_dir(path, img):
    """Writes a single image in skopeo's `dir:` format (any manifest type, kept verbatim)."""
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, "version"), "w") as f:
        f.write("Directory Transport Version: 1.1\n")
    with open(os.path.join(path, "manifest.json"), "wb") as f:
        f.write(img.manifest)
    for b in img.blobs():
        with open(os.path.join(path, sha256_hex(b)), "wb") as f:
            f.write(b)
    return path


def dir_blob(path, digest):
    with open(os.path.join(path, digest.split(":", 1)[1]), "rb") as f:
        return f.read()


def dir_manifest(path):
    with open(os.path.join(path, "manifest.json"), "rb") as f:
        return f.read()


def layout_blob(path, digest):
    with open(os.path.join(path, "blobs", "sha256", digest.split(":", 1)[1]), "rb") as f:
        return f.read()


def layout_top(path):
    """(descriptor, manifest bytes) of the single image in a layout's index.json."""
    with open(os.path.join(path, "index.json")) as f:
        idx = json.load(f)
    assert len(idx["manifests"]) == 1, idx
    d = idx["manifests"][0]
    return d, layout_blob(path, d["digest"])


# --------------------------------------------------------------------------------------------
# tokens


def registry_password(client):
    """The password of GetAuthorizationToken (decoded token after 'AWS:')."""
    data = client.get_authorization_token()["authorizationData"][0]
    raw = base64.b64decode(data["authorizationToken"]).decode()
    user, _, pw = raw.partition(":")
    assert user == "AWS", raw
    return pw


def _b64url(b):
    return base64.urlsafe_b64encode(b).decode().rstrip("=")


def mint_password(data_dir, account, region, expires_at):
    """A registry password signed with the server's own secret (format of src/crypto/token.h):
    lets a test make an expired but otherwise valid token."""
    with open(os.path.join(data_dir, "secret"), "rb") as f:
        key = f.read()
    payload = ("v1|%s|%s|%d|%s" % (account, region, int(expires_at), os.urandom(8).hex())).encode()
    mac = hmac.new(key, payload, hashlib.sha256).digest()
    return "%s.%s" % (_b64url(payload), _b64url(mac))


# --------------------------------------------------------------------------------------------
# external tools


class Tools:
    """Runs skopeo/podman with a private auth file, a permissive policy and timeouts."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="berth-oci-tools-")
        self.authfile = os.path.join(self.dir, "auth.json")
        with open(self.authfile, "w") as f:
            f.write('{"auths":{}}')
        self.policy = os.path.join(self.dir, "policy.json")
        with open(self.policy, "w") as f:
            json.dump({"default": [{"type": "insecureAcceptAnything"}]}, f)
        self.env = dict(os.environ)
        self.env.update({"REGISTRY_AUTH_FILE": self.authfile, "HOME": self.dir,
                         "XDG_RUNTIME_DIR": os.path.join(self.dir, "run"),
                         "XDG_CONFIG_HOME": os.path.join(self.dir, "config")})
        for k in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY",
                  "all_proxy"):
            self.env.pop(k, None)
        self.env["NO_PROXY"] = "127.0.0.1,localhost"
        os.makedirs(self.env["XDG_RUNTIME_DIR"], mode=0o700, exist_ok=True)

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def run(self, argv, timeout=TOOL_TIMEOUT, check=True):
        try:
            p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, env=self.env, timeout=timeout)
        except subprocess.TimeoutExpired as e:
            raise AssertionError("%s timed out after %ss; stderr: %s"
                                 % (" ".join(argv), timeout,
                                    (e.stderr or b"").decode("utf-8", "replace")[-2000:]))
        if check and p.returncode != 0:
            raise AssertionError("%s failed with status %d:\nstdout: %s\nstderr: %s"
                                 % (" ".join(argv), p.returncode,
                                    p.stdout.decode("utf-8", "replace")[-2000:],
                                    p.stderr.decode("utf-8", "replace")[-3000:]))
        return p

    def skopeo(self, *args, timeout=TOOL_TIMEOUT, check=True):
        return self.run(["skopeo", "--insecure-policy", "--policy", self.policy]
                        + list(args), timeout=timeout, check=check)


SKOPEO_OK = shutil.which("skopeo") is not None
SKOPEO_WHY = "skopeo is not installed (apt-get install -y skopeo)"


def have_podman():
    return shutil.which("podman") is not None


_PODMAN_OK = None


def podman_usable():
    """(ok, reason): podman exists and can run rootful with vfs storage here."""
    global _PODMAN_OK
    if _PODMAN_OK is not None:
        return _PODMAN_OK
    if not have_podman():
        _PODMAN_OK = (False, "podman is not installed (apt-get install -y podman)")
        return _PODMAN_OK
    if os.geteuid() != 0:
        _PODMAN_OK = (False, "podman tests need root (rootful podman)")
        return _PODMAN_OK
    d = tempfile.mkdtemp(prefix="berth-podman-probe-")
    try:
        p = subprocess.run(["podman", "--storage-driver", "vfs", "--root", d + "/root",
                            "--runroot", d + "/run", "--cgroup-manager", "cgroupfs",
                            "--events-backend", "file", "images"],
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=60)
        if p.returncode != 0:
            _PODMAN_OK = (False, "podman cannot run here: %s"
                          % p.stderr.decode("utf-8", "replace")[-300:])
        else:
            _PODMAN_OK = (True, "")
    except (OSError, subprocess.TimeoutExpired) as e:
        _PODMAN_OK = (False, "podman cannot run here: %s" % e)
    finally:
        shutil.rmtree(d, ignore_errors=True)
    return _PODMAN_OK


# --------------------------------------------------------------------------------------------
# memory and big streams


def proc_status(pid, field):
    """A kB field of /proc/<pid>/status (e.g. VmHWM, VmRSS) in bytes."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(field)


def reset_peak_rss(pid):
    """Resets VmHWM (echo 5 > /proc/pid/clear_refs). False if not permitted."""
    try:
        with open("/proc/%d/clear_refs" % pid, "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


class StreamSource:
    """`length` bytes of deterministic pseudo-random data, produced in `chunk`-sized pieces
    and never held whole: every piece is a random base block stamped with its index.
    Iterating hashes what it yields (self.hexdigest() afterwards); digest() precomputes the
    digest with a separate pass (needed for a monolithic POST ?digest=). Has __len__ so
    requests sends a Content-Length, and __iter__ so http.client sends piece by piece.
    slice(a, b) is a source for bytes [a, b) of the same stream."""

    def __init__(self, length, chunk=4 * 1024 * 1024, base=None, seed=None, start=0):
        assert start % chunk == 0
        self.length = length
        self.chunk = chunk
        self.base = base if base is not None else os.urandom(chunk)
        self.seed = seed if seed is not None else os.urandom(8)
        self.start = start
        self.h = None
        self.sent = 0

    def __len__(self):
        return self.length

    def _pieces(self):
        off = 0
        i = self.start // self.chunk
        buf = bytearray(self.base)
        while off < self.length:
            n = min(self.chunk, self.length - off)
            buf[0:16] = self.seed + i.to_bytes(8, "big")
            yield bytes(buf[:n])
            off += n
            i += 1

    def __iter__(self):
        self.h = hashlib.sha256()
        self.sent = 0
        for piece in self._pieces():
            self.h.update(piece)
            self.sent += len(piece)
            yield piece

    def digest(self):
        h = hashlib.sha256()
        for piece in self._pieces():
            h.update(piece)
        return "sha256:" + h.hexdigest()

    def hexdigest(self):
        assert self.h is not None and self.sent == self.length, "stream not fully consumed"
        return self.h.hexdigest()

    def slice(self, a, b):
        return StreamSource(b - a, self.chunk, self.base, self.seed, self.start + a)


class Chunked:
    """Wraps an iterator so requests sends it with Transfer-Encoding: chunked (no length)."""

    def __init__(self, it):
        self.it = iter(it)

    def __iter__(self):
        return self.it


def stream_digest(resp, chunk=4 * 1024 * 1024):
    """Hashes a streamed response body; returns (digest, length)."""
    h = hashlib.sha256()
    n = 0
    for piece in resp.iter_content(chunk):
        h.update(piece)
        n += len(piece)
    return "sha256:" + h.hexdigest(), n


def wait_for(fn, timeout=12.0, interval=0.25):
    """Polls fn() until it returns a truthy value or timeout; returns the last value."""
    deadline = time.monotonic() + timeout
    v = fn()
    while not v and time.monotonic() < deadline:
        time.sleep(interval)
        v = fn()
    return v
