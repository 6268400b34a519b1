"""The cluster client over etcd membership under faults: a steady read/write
load (tests/cluster/fault_load.cc, R=2, W=1, 1 s deadlines) on three
`kvc serve` nodes registered in a real etcd, while one node is killed with
SIGKILL and restarted, one is paused (SIGSTOP) past its lease and resumed,
and etcd itself is killed for longer than the lease and restarted.

The recorded history must pass the consistency checker (checker_history.py:
no torn, foreign, other-tenant or other-revision hit, no hit after a
completed delete or bump, no call past its deadline), reads must keep
hitting while etcd is away (the last known membership serves), and writes
must succeed again once etcd is back. Skips loudly without etcd."""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(__file__))
import checker_history  # noqa: E402

KVC = os.environ.get("KVC_BIN") or shutil.which("kvc")
LOAD = os.environ.get("KVC_FAULT_LOAD")
ETCD = os.environ.get("KVC_ETCD_BIN") or shutil.which("etcd")
TTL = 2
SECONDS = float(os.environ.get("KVC_ETCD_FAULT_SECONDS", "28"))
OK = 0
NOT_FOUND = -2
EXISTS = -4


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class EtcdCluster:
    def __init__(self, tmp, n=3):
        self.tmp = tmp
        self.client, self.peer = free_port(), free_port()
        self.address = f"etcd://127.0.0.1:{self.client}/faults"
        self.etcd = None
        self.start_etcd()
        r = subprocess.run([KVC, "cluster", "init", "--cluster", self.address, "--replication", "2",
                            "--write-quorum", "1"], capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
        self.tenants = str(tmp / "tenants.json")
        self.creds = []
        for name in ("t0", "t1"):
            r = subprocess.run([KVC, "tenant", "--config", self.tenants, "create", name, "--json"],
                               capture_output=True, text=True, timeout=30)
            assert r.returncode == 0, r.stderr
            self.creds.append((name, json.loads(r.stdout)["credential"]))
        self.ids = ["n%d" % i for i in range(n)]
        self.addrs = ["127.0.0.1:%d" % free_port() for _ in range(n)]
        self.procs = [None] * n
        self.events = []
        for i in range(n):
            self.start(i)

    def start_etcd(self):
        c, p = f"http://127.0.0.1:{self.client}", f"http://127.0.0.1:{self.peer}"
        log = open(self.tmp / "etcd.log", "ab")
        self.etcd = subprocess.Popen(
            [ETCD, "--name", "f", "--data-dir", str(self.tmp / "etcd"), "--listen-client-urls", c,
             "--advertise-client-urls", c, "--listen-peer-urls", p, "--initial-advertise-peer-urls", p,
             "--initial-cluster", f"f={p}", "--log-level", "error"], stdout=log, stderr=log)
        end = time.monotonic() + 15
        while time.monotonic() < end:
            r = subprocess.run([KVC, "cluster", "nodes", "--cluster", self.address, "--timeout-ms", "500"],
                               capture_output=True, timeout=10)
            if r.returncode == 0:
                return
            time.sleep(0.1)
        raise AssertionError("etcd did not start")

    def start(self, i, timeout=20.0):
        ready = self.tmp / ("ready-%d" % i)
        if ready.exists():
            ready.unlink()
        log = open(self.tmp / ("node-%d.log" % i), "ab")
        args = [KVC, "serve", "--listen", self.addrs[i], "--cluster", self.address, "--node-id", self.ids[i],
                "--tenants-file", self.tenants, "--host-capacity", "256MiB", "--ready-file", str(ready),
                "--shutdown-grace-ms", "200"]
        env = dict(os.environ, KVC_CLUSTER_LEASE_TTL_S=str(TTL))
        end = time.monotonic() + timeout
        self.procs[i] = subprocess.Popen(args, stdout=log, stderr=log, env=env)
        while not ready.exists():
            if self.procs[i].poll() is not None:
                assert time.monotonic() < end, "node %d exited" % i
                time.sleep(0.1)  # the port may be held a moment after a kill
                self.procs[i] = subprocess.Popen(args, stdout=log, stderr=log, env=env)
                continue
            assert time.monotonic() < end, "node %d not ready" % i
            time.sleep(0.02)
        self.events.append({"t": time.monotonic_ns(), "node": self.ids[i], "ev": "ready"})

    def kill9(self, i):
        self.events.append({"t": time.monotonic_ns(), "node": self.ids[i], "ev": "kill"})
        self.procs[i].send_signal(signal.SIGKILL)
        self.procs[i].wait()

    def pause(self, i, seconds):
        # A paused node is down for the checker's expected hits.
        self.events.append({"t": time.monotonic_ns(), "node": self.ids[i], "ev": "kill"})
        self.procs[i].send_signal(signal.SIGSTOP)
        time.sleep(seconds)
        self.procs[i].send_signal(signal.SIGCONT)
        self.events.append({"t": time.monotonic_ns(), "node": self.ids[i], "ev": "ready"})

    def stop(self):
        for p in self.procs:
            if p and p.poll() is None:
                p.send_signal(signal.SIGCONT)
                p.send_signal(signal.SIGTERM)
        for p in self.procs + [self.etcd]:
            if p and p.poll() is None:
                if p is self.etcd:
                    p.kill()
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()


def test_load_through_node_kill_node_pause_and_etcd_outage(tmp_path):
    if os.environ.get("KVC_CLUSTER_NO_ETCD"):
        pytest.skip("SKIPPED LOUDLY: kvc was built without etcd membership (no etcd protos)")
    if not ETCD:
        pytest.skip("SKIPPED LOUDLY: no etcd binary (Debian: etcd-server; or set KVC_ETCD_BIN)")
    for name, path in (("kvc", KVC), ("fault_load", LOAD)):
        if not path or not os.path.exists(path):
            pytest.skip(f"SKIPPED LOUDLY: {name} is not built")
    c = EtcdCluster(tmp_path)
    history = tmp_path / "history.jsonl"
    try:
        load = subprocess.Popen(
            [LOAD, "--cluster", c.address, "--tenants", ",".join("%s:%s" % x for x in c.creds), "--seconds",
             str(SECONDS), "--history", str(history), "--threads", "4", "--timeout-ms", "1000", "--prefixes", "100",
             "--model", "etcd-faults"], stderr=subprocess.PIPE, text=True)
        began = time.monotonic_ns()
        time.sleep(2.5)  # a warm cache
        c.kill9(0)
        time.sleep(1.0)
        c.start(0)
        time.sleep(2.0)
        c.pause(1, TTL + 1.5)
        time.sleep(2.5)
        etcd_down = time.monotonic_ns()
        c.etcd.kill()
        c.etcd.wait()
        time.sleep(TTL + 2.0)
        etcd_up = time.monotonic_ns()
        c.start_etcd()
        etcd_back = time.monotonic_ns()  # serving again
        assert etcd_back < began + (SECONDS - 6) * 1e9, "the faults took too long for the load to judge recovery"
        _, err = load.communicate(timeout=SECONDS + 60)
        assert load.returncode == 0, err
    finally:
        c.stop()
    ops, keys, config = checker_history.load_history(history)
    # Expected hits are not judged here (placement's owners over etcd ids
    # is the fault test's business); every other rule is.
    s = checker_history.check(ops, keys, config, c.events, None, replication=2)
    print(json.dumps(s, indent=1))
    assert s["violations"] == 0, s["first_violations"]
    assert s["ops"].get("put", 0) > 200 and s["ops"].get("get", 0) > 200, s["ops"]
    # A put's fine outcomes: stored, or already there (another writer).
    def codes(xs):
        out = {}
        for o in xs:
            out[o["code"]] = out.get(o["code"], 0) + 1
        return out

    def ratio(xs):
        return sum(o["code"] == OK for o in xs) / max(1, len(xs))

    span = etcd_up - etcd_down
    before = [o for o in ops if o["op"] == "get" and etcd_down - span < o["t0"] and o["t1"] < etcd_down]
    during = [o for o in ops if o["op"] == "get" and etcd_down < o["t0"] and o["t1"] < etcd_up]
    fenced = [o for o in ops if o["op"] == "put" and etcd_down < o["t0"] and o["t1"] < etcd_up]
    after = [o for o in ops if o["op"] == "put" and o["t0"] > etcd_back + 3_000_000_000]
    print("reads before etcd went:", codes(before), "reads while away:", codes(during),
          "puts while away:", codes(fenced), "puts after it returned:", codes(after))
    # The data path keeps serving with the last known membership: reads
    # answer (hit or miss, no errors) and hit about as often as before.
    assert len(during) > 50, "too few reads while etcd was away"
    assert sum(o["code"] not in (OK, NOT_FOUND) for o in during) <= 0.01 * len(during), codes(during)
    assert ratio(during) >= 0.5 * ratio(before), (ratio(during), ratio(before))
    assert after and sum(o["code"] in (OK, EXISTS) for o in after) > 0.95 * len(after), \
        "writes did not recover after etcd returned: %s" % codes(after)
