#!/usr/bin/env python3
"""berth's benchmark driver: berth vs CNCF Distribution (/v2) and vs moto (ECR API).

Starts berth, Debian's Distribution (`docker-registry`, filesystem storage in a temp dir, no
auth) and moto's server on loopback, seeds them, runs the same workloads against each
(repetitions alternate the order of the servers), and prints medians and the berth/peer ratio
as a Markdown table. Also measures the machine's limits in the same run (SHA-256 on one core,
disk write bandwidth with and without fdatasync in the data directory).

    python3 bench/bench.py [--quick] [--reps N] [--only SECTION,...] [--markdown FILE]
                           [--json FILE] [--berth PATH] [--loadgen PATH] [--workdir DIR]

`make bench` / `make bench-quick` (bench/bench.mk) build berth and bench/loadgen.c first.
Benchmarks are not tests: nothing here fails on a slow result; the exit status is non-zero
only when the harness itself breaks (a server does not start, a request fails, ...).

Sections (--only): limits, push, pull, manifest, lists, ecr, pages, rss.
Load: blob pushes from Python threads (http.client, bodies sent from memory); everything
measured in requests/s or latency by bench/loadgen (a closed-loop epoll HTTP/1.1 client in C:
wrk hangs on HEAD responses that carry Content-Length).
"""

import argparse
import datetime
import hashlib
import http.client
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

import requests

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
MiB = 1 << 20
HTTP_TIMEOUT = 120            # seconds, every request the driver makes itself
START_TIMEOUT = 60            # seconds for a server to accept connections
ECR_AUTH = ("AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/ecr/aws4_request, "
            "SignedHeaders=host, Signature=00")
ECR_TARGET = "AmazonEC2ContainerRegistry_V20150921."
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
ACCEPT = OCI_MANIFEST + ", application/vnd.docker.distribution.manifest.v2+json"
LAYER = b"berth-bench layer: the one small layer every seeded image shares\n"
CONFIG = json.dumps({"architecture": "amd64", "os": "linux",
                     "rootfs": {"type": "layers",
                                "diff_ids": ["sha256:" + hashlib.sha256(LAYER).hexdigest()]}},
                    separators=(",", ":")).encode()
CHUNK = 8 * MiB               # chunked uploads: PATCH size

# Sizes and durations. quick: same code paths, small sizes, < 2 minutes.
PROFILES = {
    "full": dict(reps=3, blob_mib=64, c1_blobs=4, c8_blobs=8, dur=5.0, pull_dur=4.0,
                 lat_dur=3.0, tags=10000, repos=1000, images_small=100, images_big=100000,
                 disk_mib=1024, sha_secs=3),
    "quick": dict(reps=2, blob_mib=16, c1_blobs=2, c8_blobs=8, dur=1.0, pull_dur=1.0,
                  lat_dur=1.0, tags=1000, repos=100, images_small=100, images_big=3000,
                  disk_mib=128, sha_secs=1),
}
SECTIONS = ["limits", "push", "pull", "manifest", "lists", "ecr", "pages", "rss"]

# --------------------------------------------------------------------------------------------
# child processes: each in its own session; stopped (SIGTERM, then SIGKILL) by pid on exit


CHILDREN = []


class Child:
    def __init__(self, name, argv, log_path, cwd=None):
        self.name = name
        self.log_path = log_path
        self.log = open(log_path, "wb")
        self.p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self.log,
                                  stderr=subprocess.STDOUT, cwd=cwd, start_new_session=True)
        CHILDREN.append(self)

    @property
    def pid(self):
        return self.p.pid

    def alive(self):
        return self.p.poll() is None

    def stop(self):
        if self.p.poll() is None:
            for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
                try:
                    os.killpg(self.p.pid, sig)
                except (ProcessLookupError, PermissionError):
                    break
                try:
                    self.p.wait(wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
        self.log.close()

    def tail(self, n=20):
        try:
            with open(self.log_path, "rb") as f:
                return b"\n".join(f.read().splitlines()[-n:]).decode("utf-8", "replace")
        except OSError:
            return ""


def stop_children():
    while CHILDREN:
        CHILDREN.pop().stop()


def on_sigterm(signum, frame):
    raise SystemExit(128 + signum)


class BenchError(Exception):
    pass


def log(msg):
    print(msg, flush=True)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(child, port, timeout=START_TIMEOUT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not child.alive():
            raise BenchError("%s exited at start:\n%s" % (child.name, child.tail()))
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise BenchError("%s did not listen on %d within %ds" % (child.name, port, timeout))


def run_cmd(argv, timeout, **kw):
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)


# --------------------------------------------------------------------------------------------
# servers


class Server:
    """One server under test. kind: berth | distribution | moto."""

    def __init__(self, kind, name, port, child, data_dir=None):
        self.kind, self.name, self.port, self.child, self.data_dir = kind, name, port, child, data_dir
        self.addr = "127.0.0.1:%d" % port
        self.base = "http://" + self.addr
        self.s = requests.Session()
        self.s.trust_env = False  # loopback only, never a proxy

    # ---- ECR JSON 1.1
    def ecr(self, op, body, ok=(200,)):
        r = self.s.post(self.base + "/", data=json.dumps(body), timeout=HTTP_TIMEOUT,
                        headers=ecr_headers(op))
        if r.status_code not in ok:
            raise BenchError("%s %s -> %d %s" % (self.name, op, r.status_code, r.text[:300]))
        return r.json() if r.content else {}

    # ---- /v2
    def v2(self, method, path, ok=(200,), **kw):
        url = path if path.startswith("http") else self.base + path
        r = self.s.request(method, url, timeout=HTTP_TIMEOUT, **kw)
        if r.status_code not in ok:
            raise BenchError("%s %s %s -> %d %s" % (self.name, method, path, r.status_code,
                                                      r.text[:300]))
        return r

    def push_small(self, repo, data):
        """Monolithic POST+PUT of a small blob; returns its digest."""
        d = "sha256:" + hashlib.sha256(data).hexdigest()
        r = self.v2("POST", "/v2/%s/blobs/uploads/" % repo, ok=(202,))
        loc = location_path(r.headers["Location"])
        self.v2("PUT", loc + ("&" if "?" in loc else "?") + "digest=" + d, ok=(201,), data=data,
                headers={"Content-Type": "application/octet-stream"})
        return d

    def vmhwm(self):
        return proc_status_kb(self.child.pid, "VmHWM")

    def reset_hwm(self):
        try:
            with open("/proc/%d/clear_refs" % self.child.pid, "w") as f:
                f.write("5")
            return True
        except OSError:
            return False


def ecr_headers(op):
    return {"X-Amz-Target": ECR_TARGET + op, "Content-Type": "application/x-amz-json-1.1",
            "Authorization": ECR_AUTH}


def location_path(loc):
    u = urllib.parse.urlsplit(loc)
    return u.path + ("?" + u.query if u.query else "")


def proc_status_kb(pid, field):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def start_berth(binary, work):
    port = free_port()
    data = os.path.join(work, "berth-data")
    os.makedirs(data)
    child = Child("berth", [binary, "serve", "--listen", "127.0.0.1:%d" % port, "--data-dir", data,
                            "--log-level", "warn", "--gc-interval", "0",
                            "--lifecycle-interval", "0"],
                  os.path.join(work, "berth.log"))
    wait_port(child, port)
    return Server("berth", "berth", port, child, data)


def start_distribution(binary, work):
    port = free_port()
    data = os.path.join(work, "distribution-data")
    os.makedirs(data)
    cfg = os.path.join(work, "distribution.yml")
    # Filesystem storage, no auth, no request logging (berth runs at warn level too).
    with open(cfg, "w") as f:
        f.write("""version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  cache:
    blobdescriptor: inmemory
  delete:
    enabled: true
  redirect:
    disable: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:%d
""" % (data, port))
    child = Child("distribution", [binary, "serve", cfg], os.path.join(work, "distribution.log"))
    wait_port(child, port)
    return Server("distribution", "Distribution", port, child, data)


def start_moto(work):
    port = free_port()
    child = Child("moto", [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                  os.path.join(work, "moto.log"), cwd=work)
    wait_port(child, port)
    return Server("moto", "moto", port, child)


# --------------------------------------------------------------------------------------------
# loadgen


class SendfileProbe:
    """Stands in for a server in alternate(): loadgen -S serves `file` by sendfile(2) alone,
    so the same client measures the loopback sendfile limit of this machine."""
    name = "sendfile limit"
    child = None  # loadgen runs the server itself

    def __init__(self, file):
        self.file = file


class Loadgen:
    def __init__(self, binary, work):
        self.binary, self.work = binary, work
        self.nfile = 0

    def body_file(self, body):
        self.nfile += 1
        p = os.path.join(self.work, "body-%d.json" % self.nfile)
        with open(p, "wb") as f:
            f.write(body if isinstance(body, bytes) else body.encode())
        return p

    def run(self, srv, path="/", method="GET", conns=1, threads=1, dur=5.0, n=None,
            headers=(), body=None, prefix="", timeout_ms=30000):
        """srv: a Server, or a SendfileProbe (loadgen's own sendfile-only server)."""
        target = ["-S", srv.file] if isinstance(srv, SendfileProbe) else ["-a", srv.addr]
        argv = [self.binary] + target + ["-c", str(conns), "-t", str(threads),
                "-d", str(dur), "-m", method, "-u", path, "-T", str(timeout_ms)]
        if n is not None:
            argv += ["-n", str(n)]
        for h in headers:
            argv += ["-H", h]
        if body is not None:
            argv += ["-b", self.body_file(body)]
        if prefix:
            argv += ["-P", prefix]
        try:
            p = run_cmd(argv, timeout=dur + timeout_ms / 1000 + 30)
        except subprocess.TimeoutExpired:
            raise BenchError("loadgen timed out: %s" % " ".join(argv))
        if p.returncode != 0:
            raise BenchError("loadgen failed (%d): %s" % (p.returncode, p.stderr.strip()))
        res = json.loads(p.stdout.strip().splitlines()[-1])
        res["rps"] = res["requests"] / max(res["duration_us"], 1) * 1e6
        return res

    def ecr(self, srv, op, body, **kw):
        hdrs = ["%s: %s" % kv for kv in ecr_headers(op).items()]
        return self.run(srv, "/", "POST", headers=hdrs, body=json.dumps(body), **kw)


def check_ok(res, what, srv, need=None):
    bad = res["requests"] - res["s2xx"]
    if bad or res["requests"] == 0 or (need is not None and res["s2xx"] < need):
        raise BenchError("%s on %s: %d of %d responses not 2xx (need %s; errors: connect %d, "
                         "read %d, timeouts %d); first error: %s"
                         % (what, srv.name, bad, res["requests"], need, res["connect_err"],
                            res["read_err"], res["timeouts"], res["first_error"]))
    return res


# --------------------------------------------------------------------------------------------
# seeding


def manifest_json(cfg_digest, layer_digest, ident):
    return json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                       "config": {"mediaType": OCI_CONFIG, "digest": cfg_digest,
                                  "size": len(CONFIG)},
                       "layers": [{"mediaType": OCI_LAYER, "digest": layer_digest,
                                   "size": len(LAYER)}],
                       "annotations": {"org.example.bench.id": ident}},
                      separators=(",", ":"))


CFG_DIGEST = "sha256:" + hashlib.sha256(CONFIG).hexdigest()
LAYER_DIGEST = "sha256:" + hashlib.sha256(LAYER).hexdigest()
MANIFEST_TEMPLATE = manifest_json(CFG_DIGEST, LAYER_DIGEST, "@ID@")
PUT_CONNS = 64  # connections for the ECR PutImage target (see run_ecr)


class Seeder:
    def __init__(self, lg):
        self.lg = lg
        self.rates = {}  # (server name, repo) -> images/s

    def repo(self, srv, name):
        """A repository holding the shared config and layer blobs."""
        if srv.kind == "berth":
            srv.ecr("CreateRepository", {"repositoryName": name})
        if srv.kind in ("berth", "distribution"):
            srv.push_small(name, CONFIG)
            srv.push_small(name, LAYER)
        else:
            srv.ecr("CreateRepository", {"repositoryName": name})

    def images(self, srv, repo, n, tag_prefix):
        """n distinct images tagged <tag_prefix>0..n-1 (the annotation differs)."""
        t0 = time.monotonic()
        if srv.kind == "distribution":
            # /v2 manifest PUTs: Distribution scales with concurrent writers
            res = self.lg.run(srv, "/v2/%s/manifests/%s@ID@" % (repo, tag_prefix), "PUT",
                              conns=16, threads=2, dur=3000, n=n,
                              headers=["Content-Type: " + OCI_MANIFEST],
                              body=MANIFEST_TEMPLATE.replace("@ID@", tag_prefix + "@ID@"))
        else:
            # ECR PutImage. berth commits each image with synchronous=FULL and serialises
            # writers; one or two connections seed fastest there.
            body = {"repositoryName": repo,
                    "imageManifest": MANIFEST_TEMPLATE.replace("@ID@", tag_prefix + "@ID@"),
                    "imageTag": tag_prefix + "@ID@"}
            res = self.lg.ecr(srv, "PutImage", body, conns=2 if srv.kind == "berth" else 4,
                              threads=1, dur=3000, n=n)
        check_ok(res, "seeding %d images in %s" % (n, repo), srv, need=n)
        dt = time.monotonic() - t0
        self.rates[(srv.name, repo)] = n / dt
        log("  seeded %s: %s with %d images in %.1fs (%.0f/s)" % (srv.name, repo, n, dt, n / dt))

    def catalog(self, srv, n):
        """n repositories cat/r0..r<n-1>, each with one image (config+layer mounted)."""
        t0 = time.monotonic()
        if srv.kind == "berth":
            srv.ecr("PutAccountSetting", {"name": "BLOB_MOUNTING", "value": "ENABLED"})
            check_ok(self.lg.ecr(srv, "CreateRepository", {"repositoryName": "cat/r@ID@"},
                                 conns=2, dur=3000, n=n), "CreateRepository", srv, need=n)
        for d in (CFG_DIGEST, LAYER_DIGEST):
            res = self.lg.run(srv, "/v2/cat/r@ID@/blobs/uploads/?mount=%s&from=bench/app" % d,
                              "POST", conns=8, threads=1, dur=3000, n=n)
            check_ok(res, "mounting blobs", srv, need=n)
        res = self.lg.run(srv, "/v2/cat/r@ID@/manifests/latest", "PUT",
                          conns=8 if srv.kind == "distribution" else 2, threads=1, dur=3000,
                          n=n, headers=["Content-Type: " + OCI_MANIFEST], body=MANIFEST_TEMPLATE)
        check_ok(res, "catalog manifests", srv, need=n)
        dt = time.monotonic() - t0
        log("  seeded %s: %d repositories in %.1fs" % (srv.name, n, dt))


# --------------------------------------------------------------------------------------------
# blob push (Python threads, bodies from memory) and helpers


class BlobSource:
    """size-byte blobs: one random base plus a random 16-byte suffix per blob, so every
    blob is distinct while its digest costs only a hash copy."""

    def __init__(self, size):
        self.size = size
        self.base = memoryview(os.urandom(size - 16))
        self.h = hashlib.sha256(self.base)

    def make(self):
        suffix = os.urandom(16)
        h = self.h.copy()
        h.update(suffix)
        return suffix, "sha256:" + h.hexdigest()

    def chunks(self, suffix, chunk):
        """(offset, [parts]) for each chunk of the blob."""
        out, off, total = [], 0, self.size
        while off < total:
            end = min(off + chunk, total)
            parts = []
            if off < len(self.base):
                parts.append(self.base[off:min(end, len(self.base))])
            if end > len(self.base):
                parts.append(suffix[max(0, off - len(self.base)):])
            out.append((off, end, parts))
            off = end
        return out


def http_req(conn, method, url, body=None, headers=None, ok=(200,)):
    conn.request(method, url, body=body, headers=headers or {})
    r = conn.getresponse()
    data = r.read()
    if r.status not in ok:
        raise BenchError("%s %s -> %d %s" % (method, url, r.status, data[:300]))
    return r


def push_one(conn, srv, repo, src, suffix, digest, chunked):
    r = http_req(conn, "POST", "/v2/%s/blobs/uploads/" % repo, body=b"",
                 headers={"Content-Length": "0"}, ok=(202,))
    loc = location_path(r.getheader("Location"))
    if chunked:
        for start, end, parts in src.chunks(suffix, CHUNK):
            r = http_req(conn, "PATCH", loc, body=parts, ok=(202,),
                         headers={"Content-Type": "application/octet-stream",
                                  "Content-Length": str(end - start),
                                  "Content-Range": "%d-%d" % (start, end - 1)})
            loc = location_path(r.getheader("Location"))
        body, length = b"", 0
    else:
        body, length = [src.base, suffix], src.size
    sep = "&" if "?" in loc else "?"
    http_req(conn, "PUT", loc + sep + "digest=" + digest, body=body, ok=(201,),
             headers={"Content-Type": "application/octet-stream", "Content-Length": str(length)})


def push_run(srv, repo, src, conc, per_thread, chunked):
    """conc threads each push per_thread distinct blobs; returns (MiB/s, digests)."""
    jobs = [[src.make() for _ in range(per_thread)] for _ in range(conc)]
    errors = []
    barrier = threading.Barrier(conc + 1, timeout=HTTP_TIMEOUT)
    ends = [None] * conc

    def worker(i):
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=HTTP_TIMEOUT)
        try:
            barrier.wait()
            for suffix, digest in jobs[i]:
                push_one(conn, srv, repo, src, suffix, digest, chunked)
            ends[i] = time.monotonic()
        except Exception as e:  # reported by the main thread
            errors.append(e)
        finally:
            conn.close()

    ths = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(conc)]
    for t in ths:
        t.start()
    sync_disk()
    barrier.wait()
    t0 = time.monotonic()
    deadline = t0 + HTTP_TIMEOUT * per_thread * 4
    for t in ths:
        t.join(max(0.0, deadline - time.monotonic()))
        if t.is_alive():
            raise BenchError("push to %s did not finish in time" % srv.name)
    if errors:
        raise BenchError("push to %s: %s" % (srv.name, errors[0]))
    dt = max(ends) - t0
    return conc * per_thread * src.size / MiB / dt, [d for j in jobs for _, d in j]


def sync_disk():
    """Start every timed write workload with no dirty pages from the previous one, and (when
    allowed, i.e. as root) with the page cache emptied: otherwise each run finds less free
    memory than the one before, and on a VM whose host backs guest memory lazily the runs
    that must grow the cache into fresh memory write at a fraction of the speed of earlier
    ones, whichever server they measure."""
    try:
        subprocess.run(["sync"], timeout=120, check=False)
    except subprocess.TimeoutExpired:
        pass
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("1")
    except OSError:
        pass


# --------------------------------------------------------------------------------------------
# machine limits


def machine_info():
    info = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "nproc": os.cpu_count(), "kernel": platform.release()}
    try:
        info["nproc"] = int(run_cmd(["nproc"], 10).stdout.strip())
    except Exception:
        pass
    try:
        with open("/proc/cpuinfo") as f:
            m = re.search(r"^model name\s*:\s*(.+)$", f.read(), re.M)
            info["cpu"] = m.group(1).strip() if m else platform.processor()
    except OSError:
        info["cpu"] = "?"
    try:
        free = run_cmd(["free", "-h"], 10).stdout
        info["free"] = free.rstrip()
        m = re.search(r"^Mem:\s+(\S+)", free, re.M)
        info["mem"] = m.group(1) if m else "?"
    except Exception:
        info["free"], info["mem"] = "", "?"
    try:
        with open("/etc/debian_version") as f:
            info["os"] = "Debian " + f.read().strip()
    except OSError:
        info["os"] = platform.platform()
    info["loadavg_start"] = os.getloadavg()
    try:
        rev = run_cmd(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], 10).stdout.strip()
        dirty = run_cmd(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no",
                         "src"], 10).stdout.strip()
        info["commit"] = rev + (" + uncommitted src/ changes" if dirty else "") if rev else "?"
    except Exception:
        info["commit"] = "?"
    return info


def versions(berth_bin, dist_bin):
    v = {}
    for name, argv in (("berth", [berth_bin, "--version"]), ("distribution", [dist_bin, "--version"])):
        try:
            v[name] = run_cmd(argv, 10).stdout.strip().splitlines()[0]
        except Exception:
            v[name] = "?"
    m = re.search(r"distribution (\S+)", v["distribution"])
    if m:
        v["distribution"] = "Distribution %s (docker-registry)" % m.group(1)
    try:
        import moto
        v["moto"] = "moto " + moto.__version__
    except Exception:
        v["moto"] = "moto ?"
    return v


def sha256_speed(secs):
    """openssl speed -evp sha256, 16 KiB blocks, one core: MiB/s."""
    p = run_cmd(["openssl", "speed", "-evp", "sha256", "-seconds", str(secs)], secs * 6 + 60)
    for line in p.stdout.splitlines():
        if line.lower().startswith("sha256") and line.rstrip().endswith("k"):
            return float(line.split()[-1].rstrip("k")) * 1000 / MiB
    raise BenchError("cannot parse openssl speed output: %s" % p.stdout[-500:])


def disk_write(path, total_mib, fdatasync, n):
    """Write total_mib in 1 MiB writes (random data) to a new file disk-probe-<n>.bin in
    path: MiB/s, counting the final fdatasync if asked. The file is kept (disk_cleanup) so
    each repetition writes into memory the page cache has not used yet, as pushes do."""
    buf = os.urandom(MiB)
    fn = os.path.join(path, "disk-probe-%d.bin" % n)
    sync_disk()
    fd = os.open(fn, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        t0 = time.monotonic()
        for _ in range(total_mib):
            os.write(fd, buf)
        if fdatasync:
            os.fdatasync(fd)
        dt = time.monotonic() - t0
    finally:
        os.close(fd)
    return total_mib / dt


def disk_cleanup(path):
    for f in os.listdir(path):
        if f.startswith("disk-probe-"):
            os.unlink(os.path.join(path, f))


# --------------------------------------------------------------------------------------------
# results


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


class Results:
    def __init__(self):
        self.rows = []
        self.raw = {}

    def add(self, section, name, unit, berth, peer_name, peer, target=None, check=None,
            note=""):
        """berth/peer: a value or the list of per-repetition values (None = not measured).
        check(berth, peer, ratio) -> bool, on the medians."""
        runs_b = list(berth) if isinstance(berth, list) else None
        runs_p = list(peer) if isinstance(peer, list) else None
        berth = med(berth) if runs_b is not None else berth
        peer = med(peer) if runs_p is not None else peer
        ratio = berth / peer if berth is not None and peer else None
        met = None
        if check is not None and berth is not None:
            try:
                met = bool(check(berth, peer, ratio))
            except TypeError:
                met = None
        self.rows.append(dict(section=section, name=name, unit=unit, berth=berth,
                              peer_name=peer_name, peer=peer, ratio=ratio, target=target or "",
                              met=met, note=note, berth_runs=runs_b, peer_runs=runs_p))
        log("  => %s: berth %s, %s %s, ratio %s %s" % (name, fmt(berth), peer_name or "-",
                                                        fmt(peer), fmt_ratio(ratio),
                                                        "" if met is None else
                                                        ("(target met)" if met else "(MISSES target)")))


def fmt(v):
    if v is None:
        return "n/a"
    if abs(v) >= 1000:
        return "{:,.0f}".format(v)
    if abs(v) >= 100:
        return "%.0f" % v
    if abs(v) >= 10:
        return "%.1f" % v
    if abs(v) >= 1:
        return "%.2f" % v
    return "%.3f" % v


def spread(runs):
    """(max - min) / median of the repetitions, as a percentage."""
    runs = [x for x in runs or [] if x is not None]
    if len(runs) < 2 or not statistics.median(runs):
        return "—"
    return "%.0f%%" % (100.0 * (max(runs) - min(runs)) / statistics.median(runs))


def fmt_ratio(r):
    if r is None:
        return "—"
    return "%.2f×" % r if r < 10 else "%.1f×" % r


def markdown(results, info, vers, prof_name, prof, limits):
    la = info.get("loadavg_start", (0, 0, 0))
    lines = ["## Results: %s run, %s" % (prof_name, info["date"]), "",
             "- machine: %s CPUs (`nproc`), %s, %s RAM (`free -h` total), %s, Linux %s"
             % (info["nproc"], info.get("cpu", "?"), info.get("mem", "?"), info.get("os", "?"),
                info.get("kernel", "?")),
             "- load average at start: %.2f %.2f %.2f; at end: %.2f %.2f %.2f"
             % (tuple(la) + tuple(info.get("loadavg_end", (0, 0, 0)))),
             "- servers: %s (commit %s); %s; %s" % (vers.get("berth"), info.get("commit", "?"),
                                                    vers.get("distribution"), vers.get("moto")),
             "- medians of %d repetitions, servers alternating in each; ratio = berth / peer"
             % prof["reps"]]
    if "sha256" in limits:
        lines.append("- machine limits (same run): SHA-256 one core %s MiB/s (`openssl speed "
                     "-evp sha256`, 16 KiB blocks); disk write in the data dir (%d MiB to a new file "
                     "per repetition): %s MiB/s buffered, %s MiB/s with fdatasync"
                     % (fmt(limits.get("sha256")), prof["disk_mib"], fmt(limits.get("disk")),
                        fmt(limits.get("disk_sync"))))
    if "sendfile_c1" in limits:
        lines.append("- loopback sendfile limit (same run, alternating with the servers): "
                     "`loadgen -S` against its own server that only calls sendfile(2) on the "
                     "%d MiB blob file berth serves: %s MiB/s at concurrency 1, %s MiB/s at 8"
                     % (prof["blob_mib"], fmt(limits.get("sendfile_c1")),
                        fmt(limits.get("sendfile_c8"))))
    lines += ["- spread: (max - min) / median over the repetitions, berth ; peer", "",
              "| workload | unit | berth | peer | peer value | berth/peer | target | met | spread |",
              "|---|---|--:|---|--:|--:|---|:-:|--:|"]
    for r in results.rows:
        met = "" if r["met"] is None else ("yes" if r["met"] else "**no**")
        name = r["name"] + (" (%s)" % r["note"] if r["note"] else "")
        sp = spread(r["berth_runs"]) + (" ; " + spread(r["peer_runs"]) if r["peer_runs"] else "")
        lines.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s |"
                     % (name, r["unit"], fmt(r["berth"]), r["peer_name"] or "—", fmt(r["peer"]),
                        fmt_ratio(r["ratio"]), r["target"], met,
                        sp if r["berth_runs"] else ""))
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------
# the benchmark


def alternate(reps, servers, fn, label):
    """fn(server, rep) -> dict of metrics; returns {server.name: {metric: [values]}}.
    Repetition r runs the servers in order, r+1 in reverse order."""
    out = {s.name: {} for s in servers}
    for r in range(reps):
        order = servers if r % 2 == 0 else list(reversed(servers))
        for s in order:
            if s.child is not None and not s.child.alive():
                raise BenchError("%s died:\n%s" % (s.name, s.child.tail()))
            m = fn(s, r)
            for k, v in m.items():
                out[s.name].setdefault(k, []).append(v)
            log("  %-12s rep %d %-34s %s" % (s.name, r + 1, label,
                                             ", ".join("%s=%s" % (k, fmt(v)) for k, v in m.items())))
    return out


class Case:
    """One of several measurements that alternate() interleaves as if it were a server: the
    latency ratios below compare pages measured in the same repetitions, so that a phase of
    the VM shifts both sides alike."""

    def __init__(self, name, server, arg):
        self.name, self.server, self.arg, self.child = name, server, arg, server.child


class Bench:
    def __init__(self, args, prof, work):
        self.args, self.prof, self.work = args, prof, work
        self.lg = Loadgen(args.loadgen, work)
        self.seed = Seeder(self.lg)
        self.res = Results()
        self.limits = {}
        self.berth = self.dist = self.moto = None
        self.berth_peak = 0

    def want(self, section):
        return not self.args.only or section in self.args.only

    def berth_hwm_reset(self):
        """Remember berth's peak so far, then reset it (VmHWM covers one phase)."""
        h = self.berth.vmhwm() or 0
        self.berth_peak = max(self.berth_peak, h)
        return self.berth.reset_hwm()

    def run(self):
        p, R = self.prof, self.res
        if self.want("limits"):
            log("# machine limits")
            self.limits["sha256"] = med([sha256_speed(p["sha_secs"]) for _ in range(p["reps"])])
            runs = [disk_write(self.work, p["disk_mib"], False, i) for i in range(p["reps"])]
            runs_sync = [disk_write(self.work, p["disk_mib"], True, p["reps"] + i)
                         for i in range(p["reps"])]
            disk_cleanup(self.work)
            self.limits.update(disk=med(runs), disk_sync=med(runs_sync), disk_runs=runs,
                               disk_sync_runs=runs_sync)
            log("  disk MiB/s per repetition: buffered %s; fdatasync %s"
                % (", ".join(fmt(x) for x in runs), ", ".join(fmt(x) for x in runs_sync)))
            log("  sha256 %.0f MiB/s; disk %.0f MiB/s buffered, %.0f MiB/s fdatasync"
                % (self.limits["sha256"], self.limits["disk"], self.limits["disk_sync"]))

        log("# starting servers")
        self.berth = start_berth(self.args.berth, self.work)
        self.dist = start_distribution(self.args.distribution, self.work)
        need_moto = self.want("ecr") or self.want("pages")
        if need_moto:
            self.moto = start_moto(self.work)
        v2s = [self.berth, self.dist]
        # idle: a few requests so every lazily-initialised part is in, then a rest
        for _ in range(3):
            self.berth.v2("GET", "/v2/")
            self.berth.ecr("DescribeRepositories", {})
        time.sleep(1.0)
        idle_berth, idle_dist = self.berth.vmhwm(), self.dist.vmhwm()

        log("# seeding")
        for s in v2s:
            for repo in ("bench/app", "bench/blobs", "bench/tags"):
                self.seed.repo(s, repo)
            s.v2("PUT", "/v2/bench/app/manifests/latest", ok=(201,),
                 data=MANIFEST_TEMPLATE.replace("@ID@", "latest"),
                 headers={"Content-Type": OCI_MANIFEST})
        ecr_servers = [self.berth] + ([self.moto] if self.moto else [])
        if self.want("lists"):
            for s in v2s:
                self.seed.images(s, "bench/tags", p["tags"], "t")
                self.seed.catalog(s, p["repos"])
        if self.want("ecr") or self.want("pages"):
            for s in ecr_servers:
                for repo in ("bench/img-small", "bench/put", "bench/put16"):
                    self.seed.repo(s, repo)
                self.seed.images(s, "bench/img-small", p["images_small"], "i")
        if self.want("pages"):
            self.seed.repo(self.berth, "bench/img-big")
            self.seed.images(self.berth, "bench/img-big", p["images_big"], "b")
        sync_disk()
        perf = self.start_perf()

        if self.want("push") or self.want("pull"):
            self.run_push(v2s)
        if self.want("manifest"):
            self.run_manifest(v2s)
        if self.want("lists"):
            self.run_lists(v2s)
        if self.want("ecr"):
            self.run_ecr(ecr_servers)
        if self.want("pages"):
            self.run_pages(ecr_servers)
        if perf:
            self.stop_perf(perf)
        rates = self.seed.rates
        if ("berth", "bench/tags") in rates:
            R.add("seed", "seeding %s tagged images into one repository (one pass; berth: "
                  "PutImage, 2 connections; Distribution: manifest PUT, 16 connections)"
                  % "{:,}".format(p["tags"]), "images/s", rates[("berth", "bench/tags")],
                  "Distribution", rates.get(("Distribution", "bench/tags")))
        if ("berth", "bench/img-big") in rates:
            R.add("seed", "seeding %s tagged images into one repository (one pass; PutImage, "
                  "2 connections)" % "{:,}".format(p["images_big"]), "images/s",
                  rates[("berth", "bench/img-big")], None, None)
        if self.want("rss"):
            self.berth_hwm_reset()
            R.add("rss", "berth peak RSS (VmHWM), idle", "MB", idle_berth / 1e6, "Distribution",
                  idle_dist / 1e6 if idle_dist else None, "< 16 MB",
                  lambda b, q, r: b < 16)
            if self.hwm_64 is not None:
                R.add("rss", "berth peak RSS (VmHWM), manifest GET/HEAD with 64 connections",
                      "MB", self.hwm_64 / 1e6, "Distribution",
                      self.hwm_64_dist / 1e6 if self.hwm_64_dist else None, "< 64 MB",
                      lambda b, q, r: b < 64)
            R.add("rss", "berth peak RSS (VmHWM), whole run incl. seeding and 8 pushes", "MB",
                  self.berth_peak / 1e6, "Distribution", (self.dist.vmhwm() or 0) / 1e6)

    hwm_64 = hwm_64_dist = None

    def start_perf(self):
        """--perf FILE: perf record berth during the workloads (not the seeding)."""
        if not self.args.perf:
            return None
        perf = shutil.which("perf")
        if not perf:
            raise BenchError("--perf: perf not found (apt-get install linux-perf)")
        argv = [perf, "record"] + self.args.perf_args.split() + [
            "-p", str(self.berth.child.pid), "-o", os.path.abspath(self.args.perf)]
        child = Child("perf", argv, os.path.join(self.work, "perf.log"))
        time.sleep(1.0)
        if not child.alive():
            raise BenchError("perf record failed:\n%s" % child.tail())
        log("# perf record on berth (pid %d) -> %s" % (self.berth.child.pid, self.args.perf))
        return child

    def stop_perf(self, child):
        try:
            os.kill(child.pid, signal.SIGINT)  # perf writes its data and exits on SIGINT
            child.p.wait(60)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
        child.stop()
        if child in CHILDREN:
            CHILDREN.remove(child)
        log("  perf data in %s: perf report -i %s --no-children" % (self.args.perf,
                                                                     self.args.perf))

    # ---- blobs
    def run_push(self, v2s):
        p, R = self.prof, self.res
        size = p["blob_mib"] * MiB
        log("# blob push/pull (%d MiB blobs)" % p["blob_mib"])
        src = BlobSource(size)
        pulled = {}
        if self.want("push"):
            # Warm-up, not measured: the first few hundred MiB of page cache a run fills can
            # be several times faster than the rest (VMs back guest memory lazily), which
            # would favour whichever server pushes first.
            for s in v2s:
                mibs, _ = push_run(s, "bench/blobs", src, 8, max(1, p["c8_blobs"] // 8), False)
                log("  %-12s warm-up push (not counted) %s MiB/s" % (s.name, fmt(mibs)))
            for chunked in (False, True):
                for conc, nblobs in ((1, p["c1_blobs"]), (8, p["c8_blobs"])):
                    per = max(1, nblobs // conc)
                    label = "push %s c%d" % ("chunked" if chunked else "monolithic", conc)

                    def fn(s, r, conc=conc, per=per, chunked=chunked):
                        mibs, digests = push_run(s, "bench/blobs", src, conc, per, chunked)
                        pulled.setdefault(s.name, digests[0])
                        return {"MiB/s": mibs}
                    out = alternate(p["reps"], v2s, fn, label)
                    b, d = out["berth"]["MiB/s"], out["Distribution"]["MiB/s"]
                    disk = self.limits.get("disk_sync")
                    R.add("push", "blob push, %s%s, concurrency %d"
                          % ("chunked" if chunked else "monolithic",
                             " (8 MiB PATCHes)" if chunked else "", conc),
                          "MiB/s", b, "Distribution", d,
                          "≥ 3× or ≥ 80%% of fdatasync disk%s"
                          % (" (%s MiB/s)" % fmt(0.8 * disk) if disk else ""),
                          lambda b, q, r: (r is not None and r >= 3) or
                          (disk is not None and b >= 0.8 * disk))
        if self.want("pull"):
            for s in v2s:
                if s.name not in pulled:
                    mibs, digests = push_run(s, "bench/blobs", src, 1, 1, False)
                    pulled[s.name] = digests[0]
            # The ceiling: the same client against a server that only calls sendfile(2), on
            # the very file berth serves, measured in the same repetitions. (The file matters:
            # one written in a single write(2) gets large page-cache folios and sends ~40%
            # faster on this kernel than one that arrived in ~128 KiB network-sized pieces,
            # as every pushed blob does.)
            hexd = pulled["berth"].split(":", 1)[1]
            probe = SendfileProbe(os.path.join(self.berth.data_dir, "blobs", "sha256", hexd[:2],
                                               hexd))
            for conc in (1, 8):
                def fn(s, r, conc=conc):
                    res = self.lg.run(s, "/v2/bench/blobs/blobs/" + pulled.get(s.name, ""),
                                      conns=conc, threads=min(conc, 2), dur=p["pull_dur"],
                                      timeout_ms=60000)
                    check_ok(res, "blob pull", s)
                    return {"MiB/s": res["bytes"] / MiB / (res["duration_us"] / 1e6)}
                out = alternate(p["reps"], v2s + [probe], fn, "pull c%d" % conc)
                limit = med(out[probe.name]["MiB/s"])
                self.limits["sendfile_c%d" % conc] = limit
                R.add("pull", "blob pull, concurrency %d" % conc, "MiB/s",
                      (out["berth"]["MiB/s"]), "Distribution",
                      (out["Distribution"]["MiB/s"]),
                      "≥ 1.5× or ≥ 80%% of the loopback sendfile limit (%s MiB/s)"
                      % fmt(0.8 * limit),
                      lambda b, q, r, limit=limit: (r is not None and r >= 1.5) or
                      b >= 0.8 * limit)


    # ---- manifests
    def run_manifest(self, v2s):
        p, R = self.prof, self.res
        log("# manifest GET/HEAD, 64 connections")
        self.berth_hwm_reset()
        self.dist.reset_hwm()
        for method in ("GET", "HEAD"):
            def fn(s, r, method=method):
                res = self.lg.run(s, "/v2/bench/app/manifests/latest", method, conns=64,
                                  threads=2, dur=p["dur"], headers=["Accept: " + ACCEPT])
                check_ok(res, "manifest " + method, s)
                return {"req/s": res["rps"], "p99 ms": res["lat_p99_us"] / 1000}
            out = alternate(p["reps"], v2s, fn, "manifest " + method)
            R.add("manifest", "manifest %s by tag, 64 connections" % method, "req/s",
                  (out["berth"]["req/s"]), "Distribution", (out["Distribution"]["req/s"]),
                  "≥ 10×", lambda b, q, r: r is not None and r >= 10)
            R.add("manifest", "manifest %s by tag, 64 connections, p99 latency" % method, "ms",
                  (out["berth"]["p99 ms"]), "Distribution",
                  (out["Distribution"]["p99 ms"]), "≤ 0.1×",
                  lambda b, q, r: r is not None and r <= 0.1)
        self.hwm_64 = self.berth.vmhwm()
        self.hwm_64_dist = self.dist.vmhwm()

    # ---- tags list and catalog
    def run_lists(self, v2s):
        p, R = self.prof, self.res
        log("# tags list (%d tags), _catalog (%d repositories)" % (p["tags"], p["repos"]))
        for s in v2s:
            r = s.v2("GET", "/v2/bench/tags/tags/list")
            n = len(r.json().get("tags") or [])
            if n != p["tags"] or "Link" in r.headers:
                raise BenchError("%s tags/list: %d tags, Link %r (want %d, one page)"
                                 % (s.name, n, r.headers.get("Link"), p["tags"]))
            r = s.v2("GET", "/v2/_catalog?n=%d" % p["repos"])
            n = len(r.json().get("repositories") or [])
            if n != p["repos"]:
                raise BenchError("%s _catalog?n=%d: %d repositories" % (s.name, p["repos"], n))
        for what, path, target in (
                ("tags list, %s tags" % "{:,}".format(p["tags"]), "/v2/bench/tags/tags/list",
                 10),
                ("_catalog?n=%d, %s repositories" % (p["repos"], "{:,}".format(p["repos"])),
                 "/v2/_catalog?n=%d" % p["repos"], None)):
            def fn(s, r, path=path):
                res = self.lg.run(s, path, conns=8, threads=2, dur=p["dur"])
                check_ok(res, what, s)
                return {"req/s": res["rps"], "p99 ms": res["lat_p99_us"] / 1000}
            out = alternate(p["reps"], v2s, fn, what[:30])
            R.add("lists", what + ", 8 connections", "req/s", (out["berth"]["req/s"]),
                  "Distribution", (out["Distribution"]["req/s"]),
                  "≥ %d×" % target if target else "",
                  (lambda b, q, r: r is not None and r >= target) if target else None)
            R.add("lists", what + ", 8 connections, p99 latency", "ms",
                  (out["berth"]["p99 ms"]), "Distribution",
                  (out["Distribution"]["p99 ms"]))

    # ---- ECR API
    # Operations/s are throughput under a load that keeps the server busy. Reads keep berth
    # busy at 16 connections (more only add threads to schedule). A put is answered only
    # after the fdatasync that makes it durable, so at 16 connections the puts in flight, not
    # the server, bound berth's PutImage (each waits about one sync cycle for its batch, the
    # machine ~30 % idle): its target row uses 64 connections, as the manifest rows do. The
    # 16-connection PutImage row stays, without target, on a repository of its own (moto's
    # PutImage slows as its repository grows).
    def run_ecr(self, servers):
        p, R = self.prof, self.res
        log("# ECR API operations")

        def put(repo):
            return lambda r: {"repositoryName": repo,
                              "imageManifest": MANIFEST_TEMPLATE.replace("@ID@", "r%d-@ID@" % r),
                              "imageTag": "r%d-@ID@" % r}
        ops = (("DescribeImages", 16, lambda r: {"repositoryName": "bench/img-small",
                                                 "maxResults": 100}),
               ("BatchGetImage", 16, lambda r: {"repositoryName": "bench/img-small",
                                                "imageIds": [{"imageTag": "i42"}]}),
               ("PutImage", PUT_CONNS, put("bench/put")),
               ("PutImage", 16, put("bench/put16")))
        notes = {"DescribeImages": "repository of %d images, maxResults 100" % p["images_small"],
                 "BatchGetImage": "one image by tag",
                 "PutImage": "a new distinct image and tag each"}
        for op, conns, body in ops:
            def fn(s, r, op=op, conns=conns, body=body):
                res = self.lg.ecr(s, op, body(r), conns=conns, threads=2, dur=p["dur"])
                check_ok(res, op, s)
                return {"ops/s": res["rps"], "p99 ms": res["lat_p99_us"] / 1000}
            out = alternate(p["reps"], servers, fn, "%s c%d" % (op, conns))
            peer = "moto" if self.moto else None
            target = op != "PutImage" or conns == PUT_CONNS
            R.add("ecr", "ECR %s, %d connections" % (op, conns), "ops/s",
                  (out["berth"]["ops/s"]), peer, (out["moto"]["ops/s"]) if self.moto else None,
                  "≥ 50×" if target else "",
                  (lambda b, q, r: r is not None and r >= 50) if target else None,
                  note=notes[op])

    # ---- DescribeImages page latency
    def run_pages(self, servers):
        p, R = self.prof, self.res
        log("# DescribeImages page latency (1 connection)")
        small, big = p["images_small"], p["images_big"]
        # a page token in the middle of the big repository (walk the pages)
        token, seen, t0 = None, 0, time.monotonic()
        while seen < big // 2 and time.monotonic() - t0 < 300:
            body = {"repositoryName": "bench/img-big", "maxResults": 100}
            if token:
                body["nextToken"] = token
            out = self.berth.ecr("DescribeImages", body)
            seen += len(out["imageDetails"])
            token = out.get("nextToken")
            if not token:
                break
        mid_token = token

        def lat(c, r):
            repo, tok = c.arg
            body = {"repositoryName": repo, "maxResults": 100}
            if tok:
                body["nextToken"] = tok
            res = self.lg.ecr(c.server, "DescribeImages", body, conns=1, threads=1,
                              dur=p["lat_dur"])
            check_ok(res, "DescribeImages page", c.server)
            return {"p50 ms": res["lat_p50_us"] / 1000, "p99 ms": res["lat_p99_us"] / 1000}
        cases = [Case(s.name, s, ("bench/img-small", None)) for s in servers]
        cases.append(Case("first", self.berth, ("bench/img-big", None)))
        if mid_token:
            cases.append(Case("middle", self.berth, ("bench/img-big", mid_token)))
        out = alternate(p["reps"], cases, lat,
                        "page of %d / %d images" % (small, big))
        b_small = (out["berth"]["p50 ms"])
        R.add("pages", "DescribeImages page of 100, repository of %s images, median latency"
              % "{:,}".format(small), "ms", b_small, "moto" if self.moto else None,
              (out["moto"]["p50 ms"]) if self.moto else None)
        b_big = (out["first"]["p50 ms"])
        R.add("pages", "DescribeImages first page, repository of %s images, median latency"
              % "{:,}".format(big), "ms", b_big, None, None,
              note="moto not seeded: its PutImage scans the repository, O(n²)")
        rows = [("first", b_big)]
        if mid_token:
            b_mid = (out["middle"]["p50 ms"])
            R.add("pages", "DescribeImages middle page (image %s), %s images, median latency"
                  % ("{:,}".format(big // 2), "{:,}".format(big)), "ms", b_mid, None, None)
            rows.append(("middle", b_mid))
        for which, v in rows:
            R.add("pages", "page latency, %s images / %s images (%s page; berth)"
                  % ("{:,}".format(big), "{:,}".format(small), which), "×",
                  med(v) / med(b_small),
                  None, None, "≤ 2×", lambda b, q, r: b <= 2)
        self.run_tag_pages(small, big)

    def run_tag_pages(self, small, big):
        """/v2 tags/list?n=100 page latency, 100 tags against 100,000 (first and middle page).

        Tags are i<N> and b<N>, so "last=b<big/2>" lands in the middle of the sorted names."""
        p, R = self.prof, self.res
        log("# tags/list page latency (1 connection)")

        def lat(c, r):
            res = self.lg.run(c.server, c.arg, conns=1, threads=1, dur=p["lat_dur"])
            check_ok(res, "tags/list page", c.server)
            return {"p50 ms": res["lat_p50_us"] / 1000}
        paths = (("small", "/v2/bench/img-small/tags/list?n=100"),
                 ("first", "/v2/bench/img-big/tags/list?n=100"),
                 ("middle", "/v2/bench/img-big/tags/list?n=100&last=b%d" % (big // 2)))
        for _, path in paths:
            n = len(self.berth.v2("GET", path).json().get("tags") or [])
            if n != 100:
                raise BenchError("berth %s: %d tags, want 100" % (path, n))
        runs = alternate(p["reps"], [Case(which, self.berth, path) for which, path in paths],
                         lat, "tags/list?n=100 page")
        out = {which: runs[which]["p50 ms"] for which, _ in paths}
        R.add("pages", "tags/list?n=100, repository of %s images, median latency"
              % "{:,}".format(small), "ms", out["small"], None, None)
        for which in ("first", "middle"):
            R.add("pages", "tags/list?n=100 %s page, %s images, median latency"
                  % (which, "{:,}".format(big)), "ms", out[which], None, None)
            R.add("pages", "tags/list page latency, %s images / %s images (%s page; berth)"
                  % ("{:,}".format(big), "{:,}".format(small), which), "×",
                  med(out[which]) / med(out["small"]), None, None, "≤ 2×",
                  lambda b, q, r: b <= 2)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, fewer repetitions")
    ap.add_argument("--reps", type=int, help="repetitions (default 3, quick 2)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=N",
                    help="override a size of the profile, e.g. --set images_big=20000 "
                         "(keys: %s)" % ", ".join(sorted(PROFILES["full"])))
    ap.add_argument("--only", help="comma-separated sections: " + ",".join(SECTIONS))
    ap.add_argument("--berth", default=os.path.join(ROOT, "build", "berth"))
    ap.add_argument("--loadgen", default=os.path.join(ROOT, "build", "bench", "loadgen"))
    ap.add_argument("--distribution", default=shutil.which("docker-registry") or
                    "/usr/bin/docker-registry")
    ap.add_argument("--workdir", help="parent of the temporary directory (default: $TMPDIR)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    ap.add_argument("--markdown", help="also write the results table to this file")
    ap.add_argument("--json", help="also write all results as JSON to this file")
    ap.add_argument("--perf", metavar="FILE",
                    help="perf record berth during the workloads (after seeding) into FILE")
    ap.add_argument("--perf-args", default="-g -F 499",
                    help="perf record options for --perf (default: '-g -F 499'; try "
                         "'--call-graph dwarf -F 199' for stacks through libsqlite3)")
    args = ap.parse_args(argv)
    prof_name = "quick" if args.quick else "full"
    prof = dict(PROFILES[prof_name])
    if args.reps:
        prof["reps"] = max(1, min(args.reps, 50))
    for kv in args.set:
        k, _, v = kv.partition("=")
        if k not in prof:
            ap.error("--set: unknown key %s" % k)
        try:
            prof[k] = type(prof[k])(v)
        except ValueError:
            ap.error("--set: bad value %s" % kv)
    if args.only:
        args.only = set(x.strip() for x in args.only.split(",") if x.strip())
        bad = args.only - set(SECTIONS)
        if bad:
            ap.error("unknown sections: %s" % ", ".join(sorted(bad)))
    for what, path in (("berth", args.berth), ("loadgen", args.loadgen),
                       ("docker-registry", args.distribution)):
        if not os.access(path, os.X_OK):
            ap.error("%s not found at %s (make; apt-get install docker-registry)" % (what, path))

    signal.signal(signal.SIGTERM, on_sigterm)
    signal.signal(signal.SIGHUP, on_sigterm)
    info = machine_info()
    vers = versions(args.berth, args.distribution)
    work = tempfile.mkdtemp(prefix="berth-bench-", dir=args.workdir)
    t0 = time.monotonic()
    log("berth bench (%s): %d reps; work dir %s" % (prof_name, prof["reps"], work))
    log("machine: %s CPUs, %s, %s RAM; load average %.2f %.2f %.2f"
        % ((info["nproc"], info.get("cpu"), info.get("mem")) + tuple(info["loadavg_start"])))
    b = Bench(args, prof, work)
    rc = 0
    try:
        b.run()
    except BenchError as e:
        log("bench: error: %s" % e)
        rc = 1
    except KeyboardInterrupt:
        log("bench: interrupted")
        rc = 130
    finally:
        stop_children()
        if args.keep:
            log("bench: everything kept in %s" % work)
        elif rc == 0:
            shutil.rmtree(work, ignore_errors=True)
        else:  # keep the logs to look at, not the (possibly large) data
            for d in ("berth-data", "distribution-data"):
                shutil.rmtree(os.path.join(work, d), ignore_errors=True)
            disk_cleanup(work)
            log("bench: server logs kept in %s" % work)
    if rc:
        return rc
    info["loadavg_end"] = os.getloadavg()
    md = markdown(b.res, info, vers, prof_name, prof, b.limits)
    log("")
    log(md)
    log("bench: done in %.0fs" % (time.monotonic() - t0))
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(md)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"info": info, "versions": vers, "profile": prof_name, "params": prof,
                       "limits": b.limits, "rows": b.res.rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
