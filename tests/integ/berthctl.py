"""Integration-test harness for berth.

Starts the real server binary on a free loopback port with its own data directory, hands out
boto3 ECR clients pointed at it, and provides helpers to make blobs, upload them through the ECR
layer API, and build Docker v2 / OCI manifests and indexes.

Environment:
  BERTH_BIN            server binary (default /work/main/build/berth)
  BERTH_LOG_LEVEL      passed as --log-level (default debug; "none" to omit the option)
  BERTH_START_TIMEOUT  seconds to wait for the port to accept connections (default 10 s x
                       BERTH_SLOW)
  BERTH_KEEP           "1": keep temp dirs (data + logs) even when everything passed; they are
                       always kept for servers involved in a failing test
  BERTH_SLOW           factor for timeouts that bound berth's own speed (default 1, or 8 when
                       BERTH_BIN is a ThreadSanitizer build, which runs 5-15x slower)
  BERTH_TSAN_REPORTS   directory for ThreadSanitizer reports (default: a new temp dir)

ThreadSanitizer builds (BERTH_BIN linked with -fsanitize=thread, found by its __tsan_init
symbol): every berth process the tests start -- servers and CLI tools alike, since they all
inherit this environment -- writes its reports to BERTH_TSAN_REPORTS/tsan.<pid> (TSAN_OPTIONS
log_path, added to whatever TSAN_OPTIONS the caller set; halt_on_error=0 and exitcode=66
unless set). A report fails the test during which it was written (checked after the test's
own cleanups, so a server stopped there counts), or the module cleanup that stopped its
server; run.py fails the run for any report no test claimed. tests/tsan.supp lists the
suppressed reports, each with the reason it is benign.
"""

import base64
import datetime
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import unittest.mock
import uuid

import boto3
import botocore.auth
import botocore.awsrequest
import botocore.config
import botocore.credentials
import requests
from botocore.exceptions import ClientError

HERE = os.path.dirname(os.path.abspath(__file__))
BERTH_BIN = os.environ.get("BERTH_BIN", "/work/main/build/berth")


def _is_tsan_build(path):
    try:
        with open(path, "rb") as f:
            return b"__tsan_init" in f.read()
    except OSError:
        return False


TSAN = _is_tsan_build(BERTH_BIN)
# Sanitizer builds are slower: timeouts that only bound how long berth takes scale with SLOW
# (never ones that a test measures berth's own timers against).
SLOW = float(os.environ.get("BERTH_SLOW") or (8 if TSAN else 1))
START_TIMEOUT = float(os.environ.get("BERTH_START_TIMEOUT") or 10 * SLOW)
STOP_TIMEOUT = 10.0 * SLOW
LOG_LEVEL = os.environ.get("BERTH_LOG_LEVEL", "debug")

ACCOUNT = "123456789012"
TARGET_PREFIX = "AmazonEC2ContainerRegistry_V20150921."
AMZ_JSON = "application/x-amz-json-1.1"

# media types
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"

MIB = 1024 * 1024
PART_SIZE = 10485760
MIN_PART = 5 * MIB

_LIVE = []  # Berth instances currently running (for log tails on failure)
_LOCK = threading.Lock()
_any_failure = False
_in_test = None     # while a BerthCase test runs: servers started during it
_pending_rm = []    # temp dirs of servers cleaned up during the running test


# --------------------------------------------------------------------------------------------
# small helpers


def uniq(prefix="repo"):
    """A unique, valid repository name."""
    return "%s-%s" % (prefix, uuid.uuid4().hex[:10])


def rand_bytes(n):
    return os.urandom(n)


def digest_of(data):
    if isinstance(data, str):
        data = data.encode("utf-8")
    return "sha256:" + hashlib.sha256(data).hexdigest()


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def port_open(port, timeout=0.2):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


def tail(path, n=40):
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - 64 * 1024))
            lines = f.read().decode("utf-8", "replace").splitlines()
        return "\n".join(lines[-n:])
    except OSError as e:
        return "<no log: %s>" % e


def error_code(exc):
    return exc.response.get("Error", {}).get("Code")


def error_message(exc):
    return exc.response.get("Error", {}).get("Message")


def http_status(resp_or_exc):
    r = resp_or_exc.response if isinstance(resp_or_exc, ClientError) else resp_or_exc
    return r["ResponseMetadata"]["HTTPStatusCode"]


# --------------------------------------------------------------------------------------------
# ThreadSanitizer reports (see the module docstring)

TSAN_SUPPRESSIONS = os.path.join(os.path.dirname(os.path.dirname(HERE)), "tests", "tsan.supp")
TSAN_REPORTS = None
_tsan_seen = {}  # report file -> bytes of it already claimed by a test
_tsan_pids = {}  # pid -> Berth, to name the server a report came from


def _tsan_setup():
    global TSAN_REPORTS
    TSAN_REPORTS = os.environ.get("BERTH_TSAN_REPORTS") or tempfile.mkdtemp(prefix="berth-tsan-")
    os.makedirs(TSAN_REPORTS, exist_ok=True)
    opts = os.environ.get("TSAN_OPTIONS", "").replace(":", " ").split()
    have = {o.split("=", 1)[0] for o in opts}
    defaults = ["halt_on_error=0", "exitcode=66", "second_deadlock_stack=1",
                "suppressions=" + TSAN_SUPPRESSIONS]
    opts = [d for d in defaults if d.split("=", 1)[0] not in have] + \
        [o for o in opts if not o.startswith("log_path=")]
    # the last log_path wins; ours is the one the checks below read
    os.environ["TSAN_OPTIONS"] = " ".join(opts + ["log_path=%s/tsan" % TSAN_REPORTS])


if TSAN:
    _tsan_setup()


def tsan_runtime():
    """Path of the ThreadSanitizer runtime library BERTH_BIN loads (from ldd), or None."""
    try:
        out = subprocess.run(["ldd", BERTH_BIN], capture_output=True, text=True,
                             timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    for line in out.splitlines():
        parts = line.split()
        if parts and parts[0].startswith("libtsan.so") and len(parts) >= 3 and parts[1] == "=>":
            return parts[2]
    return None


def tsan_reports():
    """ThreadSanitizer output written since the last call, as [(file, text)]; each piece of
    text is returned once. Empty unless BERTH_BIN is a TSan build."""
    if not TSAN_REPORTS:
        return []
    out = []
    try:
        names = sorted(os.listdir(TSAN_REPORTS))
    except OSError:
        return []
    for n in names:
        p = os.path.join(TSAN_REPORTS, n)
        seen = _tsan_seen.get(p, 0)
        try:
            with open(p, "rb") as f:
                f.seek(seen)
                data = f.read()
        except OSError:
            continue
        if data:
            _tsan_seen[p] = seen + len(data)
            out.append((p, data.decode("utf-8", "replace")))
    return out


def tsan_describe(reports):
    """Failure text for tsan_reports(): which process wrote each report, and the report."""
    parts = []
    for path, text in reports:
        pid = path.rsplit(".", 1)[-1]
        b = _tsan_pids.get(int(pid)) if pid.isdigit() else None
        who = ("server %s (port %s, log %s)" % (b.name, b.port, b.log_path) if b
               else "berth process %s (a CLI tool, or a server the harness did not start)" % pid)
        if b is not None:  # keep it next to the server's own log lines too
            try:
                with open(b.log_path, "ab") as f:
                    f.write(("\n==== ThreadSanitizer report (%s)\n%s" % (path, text)).encode())
            except OSError:
                pass
        parts.append("ThreadSanitizer output of %s in %s:\n%s" % (who, path, text.rstrip()))
    return "\n\n".join(parts)


def tsan_check():
    """Raises AssertionError if a ThreadSanitizer report was written since the last check."""
    reports = tsan_reports()
    if reports:
        raise AssertionError(tsan_describe(reports))


# --------------------------------------------------------------------------------------------
# server control


class Berth:
    """One berth server process."""

    def __init__(self, data_dir=None, credentials=None, account_id=None, extra_args=(),
                 name="berth", log_level=None):
        self.name = name
        self.workdir = tempfile.mkdtemp(prefix="berth-integ-%s-" % name)
        self.own_data_dir = data_dir is None
        self.data_dir = data_dir or os.path.join(self.workdir, "data")
        os.makedirs(self.data_dir, exist_ok=True)
        self.log_path = os.path.join(self.workdir, "server.log")
        self.credentials = None
        if credentials is not None:
            if isinstance(credentials, str) and os.path.exists(credentials):
                self.credentials = credentials
            else:  # list of (akid, secret, account) or raw text
                path = os.path.join(self.workdir, "credentials")
                with open(path, "w") as f:
                    if isinstance(credentials, str):
                        f.write(credentials)
                    else:
                        f.write("# berth integ credentials\n")
                        for ak, sk, acct in credentials:
                            f.write("%s %s %s\n" % (ak, sk, acct))
                self.credentials = path
        self.account_id = account_id
        self.extra_args = list(extra_args)
        self.log_level = LOG_LEVEL if log_level is None else log_level
        self.proc = None
        self.port = None
        self._clients = {}
        self._log = None
        self.starts = 0
        self.keep = False  # set when a test fails while this server is involved

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def argv(self):
        a = [BERTH_BIN, "serve", "--listen", "127.0.0.1:%d" % self.port,
             "--data-dir", self.data_dir]
        if self.credentials:
            a += ["--credentials", self.credentials]
        if self.account_id:
            a += ["--account-id", str(self.account_id)]
        if self.log_level and self.log_level != "none":
            a += ["--log-level", self.log_level]
        return a + self.extra_args

    def start(self, port=None):
        if not os.path.exists(BERTH_BIN):
            if self.starts == 0:
                shutil.rmtree(self.workdir, ignore_errors=True)
            raise RuntimeError("berth binary not found: %s (set BERTH_BIN or run make)" % BERTH_BIN)
        last = None
        for attempt in range(3):
            self.port = port if (port and attempt == 0) else free_port()
            try:
                self._spawn()
                return self
            except RuntimeError as e:
                last = e
                if "exited" not in str(e):
                    raise
        raise last

    def _spawn(self):
        self._log = open(self.log_path, "ab")
        self._log.write(("\n==== start #%d: %s\n" % (self.starts + 1, " ".join(self.argv())))
                        .encode())
        self._log.flush()
        self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT, close_fds=True)
        _tsan_pids[self.proc.pid] = self
        self.starts += 1
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            rc = self.proc.poll()
            if rc is not None:
                self._log.close()
                self.proc = None
                raise RuntimeError("berth exited with %s during startup; log tail:\n%s"
                                   % (rc, tail(self.log_path)))
            if port_open(self.port):
                with _LOCK:
                    _LIVE.append(self)
                    if _in_test is not None and self not in _in_test:
                        _in_test.append(self)
                return
            time.sleep(0.05)
        self._kill()
        raise RuntimeError("berth did not accept connections on port %d within %.0fs; log:\n%s"
                           % (self.port, START_TIMEOUT, tail(self.log_path)))

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def _kill(self):
        if self.proc is not None:
            try:
                self.proc.kill()
                self.proc.wait(5)
            except Exception:
                pass
            self.proc = None
        if self._log:
            self._log.close()

    def terminate(self, timeout=STOP_TIMEOUT):
        """SIGTERM the server; return (exit code, seconds taken). Kills it after `timeout`."""
        self._drop_clients()
        with _LOCK:
            if self in _LIVE:
                _LIVE.remove(self)
        if self.proc is None:
            raise AssertionError("berth is not running")
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            self.proc = None
            self._log.close()
            raise AssertionError("berth did not exit within %.0fs of SIGTERM; log tail:\n%s"
                                 % (timeout, tail(self.log_path)))
        took = time.monotonic() - t0
        self.proc = None
        self._log.close()
        return rc, took

    def stop(self, timeout=STOP_TIMEOUT):
        """SIGTERM and assert a clean exit (status 0)."""
        if self.proc is None:
            return
        rc, _ = self.terminate(timeout)
        if rc != 0:
            raise AssertionError("berth exited with status %s (expected 0); log tail:\n%s"
                                 % (rc, tail(self.log_path)))

    def restart(self):
        port = self.port
        self.stop()
        # Prefer the same port so URLs stay valid; fall back to a fresh one.
        try:
            self.port = port
            self._spawn()
        except RuntimeError:
            self.start()
        return self

    def cleanup(self, keep=None):
        """Stop (asserting exit 0 and no ThreadSanitizer report) and remove temp dirs unless
        something failed."""
        try:
            try:
                self.stop()
            finally:
                tsan_check()
        except AssertionError:
            keep = True
            raise
        finally:
            if keep is None:
                keep = self.keep or os.environ.get("BERTH_KEEP") == "1"
            if keep:
                sys.stderr.write("[berthctl] kept %s (log %s)\n" % (self.workdir, self.log_path))
            elif _in_test is not None:
                _pending_rm.append(self.workdir)  # decided once the test's outcome is known
            else:
                shutil.rmtree(self.workdir, ignore_errors=True)

    def log_tail(self, n=40):
        return tail(self.log_path, n)

    # -- clients -----------------------------------------------------------------------------

    def _drop_clients(self):
        for c in self._clients.values():
            try:
                c.close()
            except Exception:
                pass
        self._clients = {}

    def client(self, region="us-east-1", access_key="AKIDEXAMPLE", secret="x"):
        key = (self.url, region, access_key, secret)
        c = self._clients.get(key)
        if c is None:
            c = new_client(self.url, region, access_key, secret)
            self._clients[key] = c
        return c

    def raw(self, op, body=None, region="us-east-1", access_key="AKIDEXAMPLE", secret="x",
            sign=True, target=None, content_type=AMZ_JSON, headers=None, timeout=60,
            tamper=None, skew=0, session=None):
        """POST / with an arbitrary body. body: dict/list (JSON-encoded), str/bytes (verbatim),
        None (empty). target: full X-Amz-Target (default prefix + op); False = no header.
        skew: seconds added to the signing clock. session: a requests.Session to reuse."""
        if isinstance(body, (dict, list)):
            data = json.dumps(body).encode()
        elif isinstance(body, str):
            data = body.encode("utf-8")
        elif body is None:
            data = b""
        else:
            data = body
        h = {}
        if content_type:
            h["Content-Type"] = content_type
        if target is None:
            target = TARGET_PREFIX + op
        if target is not False:
            h["X-Amz-Target"] = target
        if headers:
            h.update(headers)
        url = self.url + "/"
        if sign:
            req = botocore.awsrequest.AWSRequest(method="POST", url=url, data=data, headers=h)
            creds = botocore.credentials.Credentials(access_key, secret)
            signer = botocore.auth.SigV4Auth(creds, "ecr", region)
            if skew:
                when = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None) \
                    + datetime.timedelta(seconds=skew)
                with unittest.mock.patch("botocore.auth.get_current_datetime",
                                         return_value=when):
                    signer.add_auth(req)
            else:
                signer.add_auth(req)
            h = dict(req.headers.items())
        if tamper is not None:
            data = tamper(data)
        return (session or requests).post(url, data=data, headers=h, timeout=timeout)

    def healthy(self, access_key="AKIDEXAMPLE", secret="x"):
        """True if the process runs and answers a trivial API call."""
        if not self.alive():
            return False
        try:
            r = self.raw("DescribeRegistry", {}, timeout=10, access_key=access_key,
                         secret=secret)
            return r.status_code == 200
        except requests.RequestException:
            return False


def module_server(**kw):
    """Start a Berth for a test module (call from setUpModule). It is stopped -- asserting a
    clean exit 0 -- by a module cleanup, which also runs when the rest of setUpModule fails."""
    b = Berth(**kw).start()
    unittest.addModuleCleanup(b.cleanup)
    return b


def new_client(url, region="us-east-1", access_key="AKIDEXAMPLE", secret="x"):
    cfg = botocore.config.Config(
        # "retries disabled": exactly one attempt per call, so server errors are never masked.
        retries={"total_max_attempts": 1, "mode": "standard"},
        connect_timeout=5, read_timeout=120, max_pool_connections=20)
    sess = boto3.session.Session(aws_access_key_id=access_key, aws_secret_access_key=secret,
                                 region_name=region)
    return sess.client("ecr", endpoint_url=url, config=cfg)


# --------------------------------------------------------------------------------------------
# test-case base class: prints the server log tail when a test fails


class BerthCase(unittest.TestCase):
    maxDiff = 4000

    def run(self, result=None):
        global _any_failure, _in_test
        before = (len(result.failures) + len(result.errors)) if result is not None else 0
        _in_test = []
        # registered first, so it runs last: after the test's cleanups have stopped its servers
        self.addCleanup(tsan_check)
        try:
            out = super().run(result)
        finally:
            touched, _in_test = _in_test, None
        failed = result is not None and len(result.failures) + len(result.errors) > before
        with _LOCK:
            servers = list(_LIVE) + [b for b in touched if b not in _LIVE]
            pending = list(_pending_rm)
            del _pending_rm[:]
        if failed:
            _any_failure = True
            for b in servers:
                b.keep = True
                sys.stderr.write("\n---- %s (port %s) log tail for %s ----\n%s\n---- end ----\n"
                                 % (b.name, b.port, self.id(), b.log_tail()))
            for d in pending:
                sys.stderr.write("[berthctl] kept %s\n" % d)
        else:
            for d in pending:
                shutil.rmtree(d, ignore_errors=True)
        return out

    # assertion helpers
    def assertClientError(self, code, fn, *args, msg=None, msg_contains=None, status=400,
                          **kwargs):
        """Call fn and assert it raises ClientError with __type `code` (str or tuple)."""
        try:
            resp = fn(*args, **kwargs)
        except ClientError as e:
            got = error_code(e)
            codes = code if isinstance(code, tuple) else (code,)
            self.assertIn(got, codes, "wrong error type; message=%r" % error_message(e))
            if status is not None:
                self.assertEqual(status, http_status(e), "HTTP status for %s" % got)
            if msg is not None:
                self.assertEqual(msg, error_message(e))
            if msg_contains is not None:
                for piece in ([msg_contains] if isinstance(msg_contains, str) else msg_contains):
                    self.assertIn(piece, error_message(e) or "")
            return e
        self.fail("expected %s, call succeeded: %r" % (code, _short(resp)))

    def assertRawError(self, resp, code, status=400, msg=None, msg_contains=None):
        self.assertEqual(status, resp.status_code, "status; body=%r" % resp.text[:500])
        try:
            body = resp.json()
        except ValueError:
            self.fail("error body is not JSON: %r" % resp.text[:500])
        codes = code if isinstance(code, tuple) else (code,)
        got = body.get("__type", "")
        got = got.split("#")[-1].split(":")[0]
        self.assertIn(got, codes, "body=%r" % body)
        self.assertIsInstance(body.get("message"), str, "error body lacks message: %r" % body)
        if msg is not None:
            self.assertEqual(msg, body.get("message"))
        if msg_contains is not None:
            for piece in ([msg_contains] if isinstance(msg_contains, str) else msg_contains):
                self.assertIn(piece, body.get("message") or "")
        return body

    def assertRecent(self, dt, slack=300):
        ts = dt.timestamp() if hasattr(dt, "timestamp") else float(dt)
        self.assertLess(abs(time.time() - ts), slack, "timestamp %r not close to now" % (dt,))


def _short(x, n=400):
    s = repr(x)
    return s if len(s) <= n else s[:n] + "..."


# --------------------------------------------------------------------------------------------
# blobs and layer uploads


def upload_blob(client, repo, data, part_sizes=None, registry_id=None, allow_exists=False):
    """Upload `data` via InitiateLayerUpload/UploadLayerPart/CompleteLayerUpload.

    part_sizes: list of part lengths (must sum to len(data)); default: 10 MiB parts.
    Returns the digest. With allow_exists, LayerAlreadyExistsException counts as success.
    """
    extra = {"registryId": registry_id} if registry_id else {}
    if part_sizes is None:
        part_sizes = [PART_SIZE] * (len(data) // PART_SIZE)
        if len(data) % PART_SIZE or not data:
            part_sizes.append(len(data) % PART_SIZE)
    assert sum(part_sizes) == len(data), "part sizes do not add up"
    up = client.initiate_layer_upload(repositoryName=repo, **extra)
    uid = up["uploadId"]
    off = 0
    for n in part_sizes:
        if n == 0:
            continue
        r = client.upload_layer_part(repositoryName=repo, uploadId=uid, partFirstByte=off,
                                     partLastByte=off + n - 1, layerPartBlob=data[off:off + n],
                                     **extra)
        assert r["lastByteReceived"] == off + n - 1, r
        off += n
    d = digest_of(data)
    try:
        r = client.complete_layer_upload(repositoryName=repo, uploadId=uid, layerDigests=[d],
                                         **extra)
        assert r["layerDigest"] == d, r
    except ClientError as e:
        if not (allow_exists and error_code(e) == "LayerAlreadyExistsException"):
            raise
    return d


def blob_path(data_dir, digest):
    """The file holding a blob: <hex>.<upload id> (or <hex>, stored before generations)."""
    hexd = digest.split(":", 1)[1]
    d = os.path.join(data_dir, "blobs", "sha256", hexd[:2])
    names = sorted(n for n in (os.listdir(d) if os.path.isdir(d) else ())
                   if n == hexd or n.startswith(hexd + "."))
    return os.path.join(d, names[0] if names else hexd)


# --------------------------------------------------------------------------------------------
# manifests


def desc(media_type, data=None, digest=None, size=None, **extra):
    d = {"mediaType": media_type,
         "size": len(data) if data is not None else size,
         "digest": digest_of(data) if data is not None else digest}
    d.update(extra)
    return d


def config_blob(arch="amd64", nonce=None):
    cfg = {"architecture": arch, "os": "linux", "config": {},
           "rootfs": {"type": "layers", "diff_ids": []},
           "created": "2024-01-01T00:00:00Z",
           "comment": nonce or uuid.uuid4().hex}
    return json.dumps(cfg, sort_keys=True).encode()


def docker_manifest(config, layers, indent=None):
    """config/layers: descriptors (dicts). Returns the manifest text."""
    m = {"schemaVersion": 2, "mediaType": DOCKER_MANIFEST, "config": config, "layers": layers}
    return json.dumps(m, indent=indent)


def oci_manifest(config, layers, media_type=True, artifact_type=None, subject=None,
                 annotations=None, indent=None):
    m = {"schemaVersion": 2}
    if media_type:
        m["mediaType"] = OCI_MANIFEST
    if artifact_type:
        m["artifactType"] = artifact_type
    m["config"] = config
    m["layers"] = layers
    if subject:
        m["subject"] = subject
    if annotations:
        m["annotations"] = annotations
    return json.dumps(m, indent=indent)


def _platform(arch):
    return {"architecture": arch, "os": "linux"}


def docker_list(children, indent=None):
    """children: list of (digest, size, mediaType, arch)."""
    m = {"schemaVersion": 2, "mediaType": DOCKER_LIST,
         "manifests": [{"mediaType": mt, "size": sz, "digest": d, "platform": _platform(a)}
                       for d, sz, mt, a in children]}
    return json.dumps(m, indent=indent)


def oci_index(children, indent=None, media_type=True):
    m = {"schemaVersion": 2}
    if media_type:
        m["mediaType"] = OCI_INDEX
    m["manifests"] = [{"mediaType": mt, "size": sz, "digest": d, "platform": _platform(a)}
                      for d, sz, mt, a in children]
    return json.dumps(m, indent=indent)


class Img:
    """A pushed (or prepared) image: manifest text, digest, sizes, blobs."""

    def __init__(self, manifest, media_type, config=None, layers=(), children=()):
        self.manifest = manifest
        self.media_type = media_type
        self.digest = digest_of(manifest)
        self.config = config            # (descriptor, bytes) or None
        self.layers = list(layers)      # [(descriptor, bytes)]
        self.children = list(children)  # [Img]
        self.tag = None

    @property
    def size(self):
        """Expected imageSizeInBytes (spec 4.13)."""
        if self.children:
            return max(c.size for c in self.children)
        return self.config[0]["size"] + sum(d["size"] for d, _ in self.layers)

    @property
    def manifest_size(self):
        return len(self.manifest.encode("utf-8"))

    def child_entry(self, arch="amd64"):
        return (self.digest, self.manifest_size, self.media_type, arch)


def make_image(client, repo, kind="docker", nlayers=1, layer_size=1024, upload=True,
               indent=None, arch="amd64"):
    """Create (and upload) config + layer blobs and build a manifest; nothing is put."""
    if kind == "docker":
        cmt, lmt = DOCKER_CONFIG, DOCKER_LAYER
    else:
        cmt, lmt = OCI_CONFIG, OCI_LAYER
    cfg = config_blob(arch)
    layers = [rand_bytes(layer_size + i) for i in range(nlayers)]
    if upload:
        upload_blob(client, repo, cfg, allow_exists=True)
        for l in layers:
            upload_blob(client, repo, l, allow_exists=True)
    cdesc = desc(cmt, cfg)
    ldescs = [desc(lmt, l) for l in layers]
    if kind == "docker":
        text, mt = docker_manifest(cdesc, ldescs, indent=indent), DOCKER_MANIFEST
    else:
        text, mt = oci_manifest(cdesc, ldescs, indent=indent), OCI_MANIFEST
    return Img(text, mt, (cdesc, cfg), list(zip(ldescs, layers)))


def push_image(client, repo, tag=None, kind="docker", nlayers=1, layer_size=1024, **kw):
    img = make_image(client, repo, kind=kind, nlayers=nlayers, layer_size=layer_size, **kw)
    put(client, repo, img, tag)
    return img


def put(client, repo, img, tag=None, media_type=None, **extra):
    args = dict(repositoryName=repo, imageManifest=img.manifest)
    if tag is not None:
        args["imageTag"] = tag
    if media_type:
        args["imageManifestMediaType"] = media_type
    args.update(extra)
    r = client.put_image(**args)
    if tag is not None:
        img.tag = tag
    return r


def push_index(client, repo, children, tag=None, kind="oci", indent=None):
    """children: list of Img already put in repo."""
    entries = [c.child_entry(arch) for c, arch in zip(children, ["amd64", "arm64", "ppc64le",
                                                                  "s390x", "386", "riscv64"])]
    if kind == "oci":
        img = Img(oci_index(entries, indent=indent), OCI_INDEX, children=children)
    else:
        img = Img(docker_list(entries, indent=indent), DOCKER_LIST, children=children)
    put(client, repo, img, tag)
    return img


def b64(data):
    return base64.b64encode(data).decode()
