"""A static-peers kvc cluster of real `kvc serve` processes on loopback, for
the fault and checker tests: fixed free ports (a restarted node comes back
on its own address), a shared tenants file, node events (kill, ready) with
CLOCK_MONOTONIC times for the checker."""
import json
import os
import shutil
import signal
import socket
import subprocess
import time

import pytest

KVC = os.environ.get("KVC_BIN") or shutil.which("kvc")
LOAD = os.environ.get("KVC_FAULT_LOAD")


def require_tools():
    if not KVC or not os.path.exists(KVC):
        pytest.skip("SKIPPED LOUDLY: the kvc CLI is not built (KVC_BIN)")
    if not LOAD or not os.path.exists(LOAD):
        pytest.skip("SKIPPED LOUDLY: tests/cluster/fault_load is not built (KVC_FAULT_LOAD)")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_tenants(tmp, names=("t0", "t1")):
    path = str(tmp / "tenants.json")
    creds = []
    for n in names:
        r = subprocess.run([KVC, "tenant", "--config", path, "create", n, "--isolation", "isolated", "--json"],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
        creds.append((n, json.loads(r.stdout)["credential"]))
    return path, creds


class Cluster:
    def __init__(self, tmp, n=3, host_capacity="256MiB"):
        self.tmp = tmp
        self.tenants, self.creds = make_tenants(tmp)
        self.addrs = ["127.0.0.1:%d" % free_port() for _ in range(n)]
        self.procs = [None] * n
        self.events = []
        self.capacity = host_capacity
        for i in range(n):
            self.start(i)

    def peers(self, replication=2, write_quorum=1):
        return "peers:%s?replication=%d&write_quorum=%d" % (",".join(self.addrs), replication, write_quorum)

    def start(self, i, timeout=20.0):
        ready = self.tmp / ("ready-%d" % i)
        if ready.exists():
            ready.unlink()
        log = open(self.tmp / ("node-%d.log" % i), "ab")
        self.procs[i] = subprocess.Popen(
            [KVC, "serve", "--listen", self.addrs[i], "--tenants-file", self.tenants, "--host-capacity",
             self.capacity, "--ready-file", str(ready), "--shutdown-grace-ms", "200"],
            stdout=log, stderr=log)
        end = time.monotonic() + timeout
        while not ready.exists():
            if self.procs[i].poll() is not None:
                # The port may still be held a moment after a kill: try again.
                if time.monotonic() < end:
                    time.sleep(0.1)
                    self.procs[i] = subprocess.Popen(self.procs[i].args, stdout=log, stderr=log)
                    continue
                raise AssertionError("node %d exited with %s" % (i, self.procs[i].returncode))
            if time.monotonic() > end:
                raise AssertionError("node %d not ready within %.0f s" % (i, timeout))
            time.sleep(0.02)
        self.events.append({"t": time.monotonic_ns(), "node": self.addrs[i], "ev": "ready"})

    def kill9(self, i):
        self.events.append({"t": time.monotonic_ns(), "node": self.addrs[i], "ev": "kill"})
        self.procs[i].send_signal(signal.SIGKILL)
        self.procs[i].wait()

    def write_events(self):
        path = self.tmp / "events.jsonl"
        with open(path, "w") as f:
            for e in self.events:
                f.write(json.dumps(e) + "\n")
        return str(path)

    def stop(self):
        for p in self.procs:
            if p and p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            if p:
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()


def run_load(cluster, history, seconds, mode="real", threads=4, timeout_ms=1000, prefixes=200, replication=2,
             write_quorum=1, background=False, address=None):
    args = [LOAD, "--cluster", address or cluster.peers(replication, write_quorum), "--tenants",
            ",".join("%s:%s" % c for c in cluster.creds), "--seconds", str(seconds), "--history", str(history),
            "--threads", str(threads), "--timeout-ms", str(timeout_ms), "--prefixes", str(prefixes), "--mode", mode,
            "--model", "fault-" + mode]
    if background:
        return subprocess.Popen(args, stderr=subprocess.PIPE, text=True)
    r = subprocess.run(args, stderr=subprocess.PIPE, text=True, timeout=seconds + 60)
    assert r.returncode == 0, r.stderr
    return r
