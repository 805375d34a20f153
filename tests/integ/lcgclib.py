"""Helpers for the lifecycle-policy and garbage-collection integration tests
(test_lifecycle_*.py, test_gc_*.py).

* FakeClock / ClockedBerth: run berth (and its CLI tools) under libfaketime with a timestamp
  file holding an offset from the real clock, so a test can push images "over simulated days"
  without any test-only code path in berth. The offset file is replaced atomically; the
  monotonic clock is left real (timeouts inside berth keep working).
* run_berth / gc / lifecycle / fsck: run `berth gc|lifecycle|fsck` and parse their output.
* Data-directory inspection: blob files and their sizes, upload files.
* Image builders with shared layers (real tar.gz layers, via ocilib) and pull checks over /v2.
* The seed lifecycle policy of the issue and a small reference evaluator for it.
"""

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import uuid

from berthctl import BERTH_BIN, TSAN, Berth, blob_path, tsan_runtime
from ocilib import OCI_CONFIG, OCI_LAYER, OCI_MANIFEST, Image, random_layer, sha256_hex

DAY = 86400
HOUR = 3600
TOOL_TIMEOUT = 120
FAKETIME_LIB = os.environ.get("BERTH_FAKETIME_LIB",
                              "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1")


def faketime_available():
    return os.path.exists(FAKETIME_LIB)


# --------------------------------------------------------------------------------------------
# faked clock


class FakeClock:
    """A libfaketime clock: `offset` seconds from the real clock, kept in a timestamp file that
    every process started with env() re-reads on each time call (FAKETIME_NO_CACHE=1).

    File semantics (libfaketime README, "Changing the 'x' modifier during run-time" and 4d):
    the file holds one FAKETIME value; "+N"/"-N" is a relative offset in seconds, so the faked
    clock keeps ticking at real speed and moving it is just rewriting the file."""

    def __init__(self, offset=0):
        self.dir = tempfile.mkdtemp(prefix="berth-faketime-")
        self.path = os.path.join(self.dir, "faketime.rc")
        self.offset = 0
        self.set_offset(offset)

    def set_offset(self, seconds):
        self.offset = int(round(seconds))
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            f.write("%+d\n" % self.offset)
        os.replace(tmp, self.path)  # atomic: a reader never sees an empty file

    def advance(self, seconds):
        self.set_offset(self.offset + seconds)

    def now(self):
        """The faked time (epoch seconds) as the server sees it now."""
        return time.time() + self.offset

    def env(self):
        # Under the ASan build libfaketime is preloaded ahead of the sanitizer runtime; ASan
        # works with that but refuses to start unless its link-order check is turned off.
        asan = os.environ.get("ASAN_OPTIONS", "")
        asan = (asan + ":" if asan else "") + "verify_asan_link_order=0"
        return {"LD_PRELOAD": _preload(),
                "ASAN_OPTIONS": asan,
                "FAKETIME_TIMESTAMP_FILE": self.path,
                "FAKETIME_NO_CACHE": "1",
                "FAKETIME_DONT_RESET": "1",
                "FAKETIME_DONT_FAKE_MONOTONIC": "1"}

    def env_prefix(self):
        """argv prefix that runs a command under this clock (env execs it: same pid)."""
        return (["env", "-u", "FAKETIME"]
                + ["%s=%s" % kv for kv in sorted(self.env().items())])

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def _preload():
    """LD_PRELOAD for a faked clock. Under a ThreadSanitizer build TSan's runtime goes first.
    libfaketime wraps pthread_cond_init/timedwait/destroy and calls glibc's own (dlvsym of
    version GLIBC_2.3.2), passing TSan's interceptors by: TSan then never sees a timed wait
    release and retake its mutex, and reports the mutex "locked twice" and every access it
    guards as a race (false reports, all through pthread_cond_timedwait). Preloaded ahead of
    it, TSan's interceptor is what berth calls, and its call on to the real function (dlvsym
    RTLD_NEXT from libtsan) reaches libfaketime's wrapper, so the clock is still faked."""
    if TSAN:
        rt = tsan_runtime()
        if rt:
            return rt + ":" + FAKETIME_LIB
    return FAKETIME_LIB


class ClockedBerth(Berth):
    """A Berth whose process runs under a FakeClock (clock=None: the real clock)."""

    def __init__(self, clock=None, **kw):
        self.clock = clock
        super().__init__(**kw)

    def argv(self):
        a = super().argv()
        return (self.clock.env_prefix() + a) if self.clock is not None else a


# --------------------------------------------------------------------------------------------
# CLI tools


def run_berth(args, clock=None, timeout=TOOL_TIMEOUT):
    """Runs `berth ARGS...` (under clock if given); returns the CompletedProcess (text)."""
    argv = (clock.env_prefix() if clock is not None else []) + [BERTH_BIN] + list(args)
    try:
        return subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, timeout=timeout, text=True)
    except subprocess.TimeoutExpired as e:
        raise AssertionError("%s timed out after %ss; stderr: %s"
                             % (" ".join(argv), timeout, (e.stderr or "")[-2000:]))


def _describe(p):
    return "berth %s -> exit %s\nstdout:\n%s\nstderr:\n%s" % (
        " ".join(p.args[-6:]), p.returncode, p.stdout[-3000:], p.stderr[-2000:])


GC_RE = re.compile(r"^gc: (freed|would free) (\d+) blobs \((\d+) bytes\), (\d+) upload sessions, "
                   r"(\d+) orphan files \((\d+) bytes\)$", re.M)


class GcResult:
    def __init__(self, proc):
        self.proc = proc
        m = GC_RE.search(proc.stdout)
        if proc.returncode != 0 or not m:
            raise AssertionError("gc failed or printed no summary:\n" + _describe(proc))
        self.dry_run = m.group(1) == "would free"
        self.blobs, self.bytes, self.uploads, self.orphans, self.orphan_bytes = (
            int(g) for g in m.groups()[1:])

    def __repr__(self):
        return "<gc %s blobs=%d bytes=%d uploads=%d orphans=%d (%d bytes)>" % (
            "dry" if self.dry_run else "real", self.blobs, self.bytes, self.uploads,
            self.orphans, self.orphan_bytes)


def gc(data_dir, grace="0s", dry_run=False, clock=None):
    args = ["gc", "--data-dir", data_dir, "--grace", grace]
    if dry_run:
        args.append("--dry-run")
    return GcResult(run_berth(args, clock=clock))


LC_LINE = re.compile(r"^(would-expire|expired|would-transition) (\d{12})/([^/ ]+)/(\S+) "
                     r"(sha256:[0-9a-f]{64}) pushed (\S+) rule (\d+) tags \[([^\]]*)\]$")
LC_SUMMARY = re.compile(r"^lifecycle: (acted on|would act on) (\d+) image\(s\)$", re.M)
HIST_LINE = re.compile(r"^(\S+) (EXPIRE|TRANSITION) (\d{12})/([^/ ]+)/(\S+) "
                       r"(sha256:[0-9a-f]{64}) pushed (\S+) rule (\d+) tags (.*)$")


class LcResult:
    """Parsed `berth lifecycle` output: actions [{verb, account, region, repo, digest, pushed,
    rule, tags}], count (summary), history [{at, action, ..., tags}]."""

    def __init__(self, proc, history=False):
        self.proc = proc
        if proc.returncode != 0:
            raise AssertionError("berth lifecycle failed:\n" + _describe(proc))
        self.actions, self.history, self.count = [], [], None
        for line in proc.stdout.splitlines():
            if history:
                m = HIST_LINE.match(line)
                if not m:
                    raise AssertionError("unparsable history line %r:\n%s"
                                         % (line, _describe(proc)))
                self.history.append({"at": m.group(1), "action": m.group(2),
                                     "account": m.group(3), "region": m.group(4),
                                     "repo": m.group(5), "digest": m.group(6),
                                     "pushed": m.group(7), "rule": int(m.group(8)),
                                     "tags": json.loads(m.group(9))})
                continue
            m = LC_LINE.match(line)
            if m:
                self.actions.append({"verb": m.group(1), "account": m.group(2),
                                     "region": m.group(3), "repo": m.group(4),
                                     "digest": m.group(5), "pushed": m.group(6),
                                     "rule": int(m.group(7)),
                                     "tags": sorted(t for t in m.group(8).split(",") if t)})
                continue
            m = LC_SUMMARY.match(line)
            if m:
                self.count = int(m.group(2))
                continue
            raise AssertionError("unexpected line %r:\n%s" % (line, _describe(proc)))
        if not history and self.count is None:
            raise AssertionError("no summary line:\n" + _describe(proc))


def lifecycle(data_dir, repo=None, dry_run=False, history=False, clock=None, extra=()):
    args = ["lifecycle", "--data-dir", data_dir]
    if repo:
        args += ["--repo", repo]
    if dry_run:
        args.append("--dry-run")
    if history:
        args.append("--history")
    return LcResult(run_berth(args + list(extra), clock=clock), history=history)


FSCK_SUMMARY = re.compile(r"^fsck: (\d+) blobs \((\d+) bytes\) checked; (\d+) corrupt, (\d+) "
                          r"missing files, (\d+) missing references, (\d+) orphan files; "
                          r"(\d+) repaired$", re.M)


class FsckResult:
    def __init__(self, proc):
        self.proc = proc
        self.rc = proc.returncode
        m = FSCK_SUMMARY.search(proc.stdout)
        if not m or self.rc not in (0, 1):
            raise AssertionError("fsck printed no summary or crashed:\n" + _describe(proc))
        (self.checked, self.bytes, self.corrupt, self.missing_files, self.missing_refs,
         self.orphans, self.repaired) = (int(g) for g in m.groups())
        self.lines = [l for l in proc.stdout.splitlines() if not l.startswith("fsck: ")]

    def text(self):
        return _describe(self.proc)


def fsck(data_dir, repair=False, clock=None):
    args = ["fsck", "--data-dir", data_dir]
    if repair:
        args.append("--repair")
    return FsckResult(run_berth(args, clock=clock))


# --------------------------------------------------------------------------------------------
# the data directory


def blob_file(data_dir, digest):
    """The file holding a blob (berthctl.blob_path)."""
    return blob_path(data_dir, digest)


def blob_files(data_dir):
    """{digest: size} of every blob file on disk; a digest stored in two files appears a
    second time as "<digest> (duplicate)", so comparisons with the expected set fail."""
    out = {}
    root = os.path.join(data_dir, "blobs", "sha256")
    for sub in os.listdir(root) if os.path.isdir(root) else ():
        d = os.path.join(root, sub)
        for name in os.listdir(d):
            try:
                size = os.stat(os.path.join(d, name)).st_size
            except FileNotFoundError:
                continue  # gc removed it while we listed
            key = "sha256:" + name.split(".", 1)[0]
            out[key + " (duplicate)" if key in out else key] = size
    return out


def blob_bytes(data_dir):
    return sum(blob_files(data_dir).values())


def upload_files(data_dir):
    d = os.path.join(data_dir, "uploads")
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


# --------------------------------------------------------------------------------------------
# images with shared layers


class Layer:
    """A gzipped tar layer (real content) with its diff_id."""

    def __init__(self, size):
        self.gz, tar = random_layer(size)
        self.diff_id = "sha256:" + sha256_hex(tar)
        self.digest = "sha256:" + sha256_hex(self.gz)
        self.size = len(self.gz)


def image_of(layers, label=None):
    """An OCI image (ocilib.Image) made of the given Layers, with a unique config."""
    cfg = {"architecture": "amd64", "os": "linux", "created": "2024-01-01T00:00:00Z",
           "config": {"Cmd": ["/bin/true"],
                      "Labels": {"berth.test": label or uuid.uuid4().hex}},
           "rootfs": {"type": "layers", "diff_ids": [l.diff_id for l in layers]},
           "history": [{"created": "2024-01-01T00:00:00Z", "created_by": "berth lcgc test"}
                       for _ in layers]}
    config = json.dumps(cfg, sort_keys=True).encode()
    return Image(config, OCI_CONFIG, [l.gz for l in layers], OCI_LAYER, OCI_MANIFEST)


def blob_digests(img):
    """{digest: size} of an image's config and layers."""
    out = {img.config_desc["digest"]: img.config_desc["size"]}
    for d in img.layer_descs:
        out[d["digest"]] = d["size"]
    return out


def check_pull(v2, repo, ref, img):
    """GETs ref's manifest and every blob over /v2; returns a list of problems (empty = the
    image pulls byte-identically)."""
    problems = []
    r = v2.get("%s/manifests/%s" % (repo, ref),
               headers={"Accept": img.media_type})
    if r.status_code != 200:
        return ["GET manifest %s:%s -> %d %s" % (repo, ref, r.status_code, r.text[:200])]
    if r.content != img.manifest:
        problems.append("manifest %s:%s differs" % (repo, ref))
    for data in img.blobs():
        d = "sha256:" + hashlib.sha256(data).hexdigest()
        b = v2.get("%s/blobs/%s" % (repo, d))
        if b.status_code != 200:
            problems.append("GET blob %s of %s:%s -> %d %s" % (d, repo, ref, b.status_code,
                                                               b.text[:200]))
        elif b.content != data:
            problems.append("blob %s of %s:%s differs" % (d, repo, ref))
    return problems


# --------------------------------------------------------------------------------------------
# the seed policy


SEED_POLICY = json.dumps({"rules": [
    {"rulePriority": 1, "description": "keep the last 20 tagged images",
     "selection": {"tagStatus": "tagged", "tagPatternList": ["*"],
                   "countType": "imageCountMoreThan", "countNumber": 20},
     "action": {"type": "expire"}},
    {"rulePriority": 2, "description": "expire untagged images after 7 days",
     "selection": {"tagStatus": "untagged", "countType": "sinceImagePushed",
                   "countUnit": "days", "countNumber": 7},
     "action": {"type": "expire"}},
]})


def seed_expected(images, now):
    """The seed policy's decisions (ECR-API.md 4.5.3) for images [(digest, tags, pushed_at
    epoch seconds, push sequence)] at `now`: {digest: rule priority}."""
    out = {}
    tagged = sorted((i for i in images if i[1]), key=lambda i: (i[2], i[3]), reverse=True)
    for d, _, _, _ in tagged[20:]:
        out[d] = 1
    for d, tags, pushed, _ in images:
        if not tags and now - pushed > 7 * DAY:
            out[d] = 2
    return out
