"""Start and stop a real etcd and real `kvc serve` processes for the cluster
tests, on random free loopback ports and in temporary directories.

    from cluster_harness import require, Etcd, Node, kvc, eventually

    require(("kvc", KVC))                  # skips loudly without etcd
    e = Etcd(str(tmp_path)); e.start()     # e.endpoint, e.cluster("c1"),
                                           # e.ctl("get", "--prefix", "/kvc/")
    n = Node(e.cluster("c1"), "n1", str(tmp_path), ssd_dir=...)  # started
    n.stop(); n.start()                    # SIGTERM, then the same node again
    e.kill(); e.start()                    # the same data dir: history kept

Environment: KVC_BIN (the kvc binary; else `kvc` on PATH), KVC_ETCD_BIN
(else `etcd` on PATH), KVC_ETCDCTL_BIN (else `etcdctl`),
KVC_CLUSTER_NO_ETCD=1 when kvc was built without etcd membership.
Leases are TTL seconds (KVC_CLUSTER_LEASE_TTL_S) to keep tests short."""
import os
import shutil
import signal
import socket
import subprocess
import time

import pytest

KVC = os.environ.get("KVC_BIN") or shutil.which("kvc")
ETCD = os.environ.get("KVC_ETCD_BIN") or shutil.which("etcd")
ETCDCTL = os.environ.get("KVC_ETCDCTL_BIN") or shutil.which("etcdctl")
TTL = 2


def require(*tools):
    """Skips loudly without etcd, or when a named tool (name, path) is missing."""
    if os.environ.get("KVC_CLUSTER_NO_ETCD"):
        pytest.skip("SKIPPED LOUDLY: kvc was built without etcd membership (no etcd protos: golang-etcd-server-dev)")
    if not ETCD:
        pytest.skip("SKIPPED LOUDLY: no etcd binary (Debian: etcd-server; or set KVC_ETCD_BIN)")
    for name, path in tools:
        if not path or not os.path.exists(path):
            pytest.skip(f"SKIPPED LOUDLY: {name} is not available")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def kvc(*args, timeout=30, env=None):
    """Runs the kvc binary; returns the CompletedProcess (text)."""
    return subprocess.run([KVC, *args], capture_output=True, text=True, timeout=timeout,
                          env=dict(os.environ, **(env or {})))


def eventually(pred, seconds=10.0, what="condition", step=0.05):
    deadline = time.time() + seconds
    while True:
        v = pred()
        if v:
            return v
        if time.time() >= deadline:
            raise AssertionError(f"{what} did not hold within {seconds} s")
        time.sleep(step)


class Etcd:
    """One etcd member on random loopback ports, its data under base/etcd."""

    def __init__(self, base):
        self.base = base
        self.dir = os.path.join(base, "etcd")
        self.client = free_port()
        self.peer = free_port()
        self.proc = None
        self.log = open(os.path.join(base, "etcd.log"), "ab")

    @property
    def endpoint(self):
        return f"127.0.0.1:{self.client}"

    def cluster(self, name):
        """The --cluster address of cluster `name` in this etcd."""
        return f"etcd://{self.endpoint}/{name}"

    def start(self, timeout=15.0):
        c, p = f"http://127.0.0.1:{self.client}", f"http://127.0.0.1:{self.peer}"
        self.proc = subprocess.Popen(
            [ETCD, "--name", "t", "--data-dir", self.dir, "--listen-client-urls", c,
             "--advertise-client-urls", c, "--listen-peer-urls", p,
             "--initial-advertise-peer-urls", p, "--initial-cluster", f"t={p}",
             "--log-level", "error"], stdout=self.log, stderr=self.log)
        deadline = time.time() + timeout
        while time.time() < deadline:
            assert self.proc.poll() is None, "etcd exited; see " + os.path.join(self.base, "etcd.log")
            try:
                with socket.create_connection(("127.0.0.1", self.client), 0.2):
                    pass
                # Serving once a read works.
                r = kvc("cluster", "nodes", "--cluster", self.cluster("probe"), "--timeout-ms", "1000", "--json",
                        timeout=10)
                if r.returncode == 0:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise AssertionError("etcd did not start")

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def ctl(self, *args, check=True, input=None):
        """Runs etcdctl (API v3) against this etcd; returns its stdout.
        Skips loudly when etcdctl is missing (Debian: etcd-client)."""
        if not ETCDCTL:
            pytest.skip("SKIPPED LOUDLY: no etcdctl (Debian: etcd-client; or set KVC_ETCDCTL_BIN)")
        r = subprocess.run([ETCDCTL, "--endpoints", self.endpoint, *args], capture_output=True, text=True,
                           timeout=15, input=input, env=dict(os.environ, ETCDCTL_API="3"))
        if check:
            assert r.returncode == 0, f"etcdctl {' '.join(args)}: {r.stderr}"
        return r.stdout

    def keys(self, prefix):
        """The keys under `prefix`, sorted."""
        out = self.ctl("get", "--prefix", "--keys-only", prefix)
        return sorted(k for k in out.splitlines() if k)


class Node:
    """A `kvc serve` in `cluster` as `node_id`; started by the constructor
    (start=False: by start()). Extra `kvc serve` flags in `args`."""

    def __init__(self, cluster, node_id, base, args=(), env=None, ssd_dir=None, ssd_capacity="64MiB",
                 host_capacity="64MiB", write_through=False, start=True):
        self.cluster = cluster
        self.id = node_id
        self.base = base
        self.ready = os.path.join(base, node_id + ".addr")
        self.logpath = os.path.join(base, node_id + ".log")
        self.env = dict(os.environ, KVC_CLUSTER_LEASE_TTL_S=str(TTL), **(env or {}))
        flags = ["--host-capacity", host_capacity]
        if ssd_dir:
            flags += ["--ssd-dir", ssd_dir, "--ssd-capacity", ssd_capacity]
        if write_through:
            flags += ["--write-mode", "write-through"]
        self.argv = [KVC, "serve", "--listen", "127.0.0.1:0", "--cluster", cluster, "--node-id", node_id,
                     "--ready-file", self.ready, *flags, *args]
        self.proc = None
        self.address = None
        if start:
            self.start()

    def start(self, timeout=15.0):
        if os.path.exists(self.ready):
            os.unlink(self.ready)
        self.proc = subprocess.Popen(self.argv, env=self.env, stdout=subprocess.DEVNULL,
                                     stderr=open(self.logpath, "ab"))
        deadline = time.time() + timeout
        while not os.path.exists(self.ready):
            assert self.proc.poll() is None, f"node {self.id} exited: {self.log()}"
            assert time.time() < deadline, f"node {self.id} not ready: {self.log()}"
            time.sleep(0.05)
        self.address = open(self.ready).read().strip()
        return self

    def log(self):
        try:
            return open(self.logpath, errors="replace").read()
        except FileNotFoundError:
            return ""

    def stop(self):
        """SIGTERM (a graceful stop: a write-back node flushes to its SSD tier)."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def kill9(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
