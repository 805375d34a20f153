"""One server per port and per data directory (issue 14 item 8).

A second `berth serve` on a port where a server listens used to start (SO_REUSEPORT) and the
kernel split connections between two data directories. Now it exits at once, status 1, with
"address already in use", before it creates or opens anything; a second `berth serve` on a data
directory that a running server owns (data-dir/serve.lock, flock) exits 1 naming the owner's
PID. Maintenance commands (gc, fsck, lifecycle) still run beside the server, and a server
restarted right after SIGTERM gets the same port and directory at once (SO_REUSEADDR)."""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest

import requests

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from berthctl import (BERTH_BIN, Berth, BerthCase, free_port, module_server,  # noqa: E402
                      port_open, uniq)

S = None
ONLY_HERE = uniq("only-in-first")
REFUSE_WITHIN = 5.0  # seconds a refused server may take to exit


def setUpModule():
    global S
    S = module_server(name="owner")
    S.client().create_repository(repositoryName=ONLY_HERE)


def serve(port, data_dir, host="127.0.0.1", wait=REFUSE_WITHIN):
    """Runs `berth serve` and waits up to `wait` s for it to exit: (process, exit status or
    None if still running, stderr so far if it exited)."""
    listen = "[%s]:%d" % (host, port) if ":" in host else "%s:%d" % (host, port)
    p = subprocess.Popen([BERTH_BIN, "serve", "--listen", listen, "--data-dir", data_dir],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, close_fds=True)
    try:
        out, err = p.communicate(timeout=wait)
        return p, p.returncode, out + err
    except subprocess.TimeoutExpired:
        return p, None, None


def stop(p):
    if p.poll() is None:
        p.terminate()
        try:
            p.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            p.kill()
            p.communicate()


class SingleOwner(BerthCase):
    def tmpdir(self):
        d = tempfile.mkdtemp(prefix="berth-integ-owner-")
        self.addCleanup(shutil.rmtree, d, True)
        return d

    def assertFirstServesAll(self, n=20):
        """n requests on fresh connections: every one answered by S (only its data directory
        has ONLY_HERE)."""
        for i in range(n):
            r = S.raw("DescribeRepositories", {"repositoryNames": [ONLY_HERE]},
                      session=requests.Session())
            self.assertEqual(200, r.status_code, "request %d: %s" % (i, r.text[:300]))
            self.assertEqual(ONLY_HERE, r.json()["repositories"][0]["repositoryName"])

    def test_busy_port(self):
        other = os.path.join(self.tmpdir(), "data")
        t0 = time.monotonic()
        p, rc, err = serve(S.port, other)
        if rc is None:
            stop(p)
            self.fail("a second server on a busy port kept running")
        self.assertLess(time.monotonic() - t0, REFUSE_WITHIN)
        self.assertEqual(1, rc, err)
        self.assertIn("cannot listen on 127.0.0.1:%d: address already in use" % S.port, err)
        self.assertNotIn("listening", err)
        # refused before it touched anything
        self.assertFalse(os.path.exists(other), os.listdir(os.path.dirname(other)))
        self.assertTrue(S.alive())
        self.assertFirstServesAll()

    def test_busy_data_dir(self):
        port = free_port()
        p, rc, err = serve(port, S.data_dir)
        if rc is None:
            stop(p)
            self.fail("a second server on a busy data directory kept running")
        self.assertEqual(1, rc, err)
        self.assertIn("data directory %s is in use by another berth serve (pid %d)"
                      % (S.data_dir, S.proc.pid), err)
        self.assertNotIn("listening", err)
        self.assertFalse(port_open(port), "the refused server left its port bound")
        with open(os.path.join(S.data_dir, "serve.lock")) as f:
            self.assertEqual("%d\n" % S.proc.pid, f.read())
        self.assertFirstServesAll(5)

    def test_maintenance_commands_run_beside_the_server(self):
        for argv in (["gc", "--data-dir", S.data_dir],
                     ["gc", "--data-dir", S.data_dir, "--dry-run"],
                     ["fsck", "--data-dir", S.data_dir],
                     ["lifecycle", "--data-dir", S.data_dir, "--dry-run"]):
            with self.subTest(argv=argv):
                p = subprocess.run([BERTH_BIN] + argv, capture_output=True, text=True,
                                   timeout=60, stdin=subprocess.DEVNULL)
                self.assertEqual(0, p.returncode, p.stdout + p.stderr)
        self.assertFirstServesAll(3)

    def test_two_servers_started_together(self):
        """Both may bind before either listens (SO_REUSEADDR): listen(2) decides."""
        port = free_port()
        a = subprocess.Popen([BERTH_BIN, "serve", "--listen", "127.0.0.1:%d" % port,
                              "--data-dir", os.path.join(self.tmpdir(), "a")],
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        b = subprocess.Popen([BERTH_BIN, "serve", "--listen", "127.0.0.1:%d" % port,
                              "--data-dir", os.path.join(self.tmpdir(), "b")],
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        self.addCleanup(stop, a)
        self.addCleanup(stop, b)
        deadline = time.monotonic() + REFUSE_WITHIN
        while time.monotonic() < deadline and a.poll() is None and b.poll() is None:
            time.sleep(0.05)
        time.sleep(0.5)  # the survivor must still run
        states = [a.poll(), b.poll()]
        self.assertEqual(1, states.count(None), "exactly one server survives: %r" % states)
        loser = a if a.poll() is not None else b
        self.assertEqual(1, loser.returncode)
        self.assertIn("address already in use", loser.communicate()[1])
        self.assertTrue(port_open(port))

    def test_restart_on_same_port_and_dir_at_once(self):
        b = Berth(name="owner-restart").start()
        self.addCleanup(b.cleanup)
        name = uniq("kept")
        b.client().create_repository(repositoryName=name)
        port = b.port
        for i in range(3):
            with self.subTest(restart=i):
                # connections closed by the server at shutdown linger in TIME_WAIT on its side
                sess = requests.Session()
                for _ in range(5):
                    b.raw("DescribeRegistry", {}, session=sess)
                b.stop()
                t0 = time.monotonic()
                b._spawn()  # same port, no fallback: raises if the server does not come up
                self.assertEqual(port, b.port)
                self.assertLess(time.monotonic() - t0, REFUSE_WITHIN)
                got = b.client().describe_repositories(repositoryNames=[name])
                self.assertEqual(name, got["repositories"][0]["repositoryName"])
                sess.close()

    def test_ipv6(self):
        try:
            s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
            s.bind(("::1", 0))
            s.close()
        except OSError:
            self.skipTest("no IPv6 loopback")
        port = free_port()
        first, rc, err = serve(port, os.path.join(self.tmpdir(), "v6"), host="::1", wait=1.0)
        self.assertIsNone(rc, err)
        self.addCleanup(stop, first)
        deadline = time.monotonic() + 10
        while True:
            try:
                r = requests.get("http://[::1]:%d/v2/" % port, timeout=2)
                break
            except requests.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        self.assertEqual(200, r.status_code)
        p, rc, err = serve(port, os.path.join(self.tmpdir(), "v6b"), host="::1")
        if rc is None:
            stop(p)
            self.fail("a second server on a busy IPv6 port kept running")
        self.assertEqual(1, rc)
        self.assertIn("address already in use", err)


if __name__ == "__main__":
    unittest.main()
