"""Cluster membership with a real etcd and real `kvc serve` processes on
loopback: registration, listing, draining, departures; the write fence
under a paused node (SIGSTOP past its lease) and under an etcd that went
away; `kvc cluster up/status/nodes/drain/down` end to end; and the C++
membership tests (membership_test.cc) against the same etcd.

Skips loudly without the etcd binary (Debian: etcd-server). Leases are 2 s
here (KVC_CLUSTER_LEASE_TTL_S) to keep the whole file within ~40 s."""
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

KVC = os.environ.get("KVC_BIN") or shutil.which("kvc")
TOOL = os.environ.get("KVC_CLUSTER_STORE_TOOL")
MEMBERSHIP_TEST = os.environ.get("KVC_CLUSTER_MEMBERSHIP_TEST")
ETCD = os.environ.get("KVC_ETCD_BIN") or shutil.which("etcd")
TTL = 2
FENCED = -18


def require(*tools):
    if os.environ.get("KVC_CLUSTER_NO_ETCD"):
        pytest.skip("SKIPPED LOUDLY: kvc was built without etcd membership (no etcd protos: golang-etcd-server-dev)")
    if not ETCD:
        pytest.skip("SKIPPED LOUDLY: no etcd binary (Debian: etcd-server; or set KVC_ETCD_BIN)")
    for name, path in tools:
        if not path or not os.path.exists(path):
            pytest.skip(f"SKIPPED LOUDLY: {name} is not built")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Etcd:
    def __init__(self, base):
        self.dir = os.path.join(base, "etcd")
        self.client = free_port()
        self.peer = free_port()
        self.proc = None
        self.log = open(os.path.join(base, "etcd.log"), "ab")

    @property
    def endpoint(self):
        return f"127.0.0.1:{self.client}"

    def start(self):
        c, p = f"http://127.0.0.1:{self.client}", f"http://127.0.0.1:{self.peer}"
        self.proc = subprocess.Popen(
            [ETCD, "--name", "t", "--data-dir", self.dir, "--listen-client-urls", c,
             "--advertise-client-urls", c, "--listen-peer-urls", p,
             "--initial-advertise-peer-urls", p, "--initial-cluster", f"t={p}",
             "--log-level", "error"], stdout=self.log, stderr=self.log)
        deadline = time.time() + 15
        while time.time() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.client), 0.2):
                    pass
                # Serving once a read works.
                r = subprocess.run([KVC, "cluster", "nodes", "--cluster", f"etcd://{self.endpoint}/probe",
                                    "--timeout-ms", "1000", "--json"], capture_output=True, timeout=10)
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


@pytest.fixture
def etcd():
    require(("kvc", KVC))
    base = tempfile.mkdtemp(prefix="kvc-cluster-test-")
    e = Etcd(base)
    e.start()
    yield e
    e.kill()
    shutil.rmtree(base, ignore_errors=True)


class Node:
    def __init__(self, cluster, node_id, base, unix_socket=None):
        self.id = node_id
        self.ready = os.path.join(base, node_id + ".addr")
        self.logpath = os.path.join(base, node_id + ".log")
        env = dict(os.environ, KVC_CLUSTER_LEASE_TTL_S=str(TTL))
        extra = ["--unix-socket", unix_socket] if unix_socket else []
        self.proc = subprocess.Popen(
            [KVC, "serve", "--listen", "127.0.0.1:0", "--cluster", cluster, "--node-id", node_id,
             "--host-capacity", "64MiB", "--ready-file", self.ready, *extra],
            env=env, stdout=subprocess.DEVNULL, stderr=open(self.logpath, "ab"))
        deadline = time.time() + 15
        while not os.path.exists(self.ready):
            assert self.proc.poll() is None, f"node {node_id} exited: {self.log()}"
            assert time.time() < deadline, f"node {node_id} not ready: {self.log()}"
            time.sleep(0.05)
        self.address = open(self.ready).read().strip()

    def log(self):
        return open(self.logpath, errors="replace").read()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def kvc(*args, timeout=30):
    return subprocess.run([KVC, *args], capture_output=True, text=True, timeout=timeout)


def nodes(cluster):
    r = kvc("cluster", "nodes", "--cluster", cluster, "--json", "--timeout-ms", "2000")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def store(addr, epoch, char):
    r = subprocess.run([TOOL, "store", addr, str(epoch), char], capture_output=True, text=True, timeout=10)
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout)


def load(addr, char):
    r = subprocess.run([TOOL, "load", addr, char], capture_output=True, text=True, timeout=10)
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout)


def eventually(pred, seconds=10.0, what="condition"):
    deadline = time.time() + seconds
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError(f"{what} did not hold within {seconds} s")


def test_membership_unit_tests_against_etcd(etcd):
    require(("kvc_cluster_membership_test", MEMBERSHIP_TEST))
    r = subprocess.run([MEMBERSHIP_TEST], env=dict(os.environ, KVC_TEST_ETCD=etcd.endpoint),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout[-6000:] + r.stderr[-3000:]
    assert "Status: SUCCESS" in r.stdout


def test_register_list_drain_depart(etcd, tmp_path):
    cluster = f"etcd://{etcd.endpoint}/c1"
    r = kvc("cluster", "init", "--cluster", cluster, "--replication", "2", "--write-quorum", "1")
    assert r.returncode == 0, r.stderr
    r = kvc("cluster", "init", "--cluster", cluster, "--replication", "3")
    assert r.returncode == 1 and "KVC_ERR_EXISTS" in r.stderr
    r = kvc("cluster", "init", "--cluster", cluster, "--replication", "2", "--write-quorum", "3", "--overwrite")
    assert r.returncode == 1 and "write_quorum" in r.stderr
    n1 = Node(cluster, "n1", str(tmp_path))
    n2 = Node(cluster, "n2", str(tmp_path))
    try:
        m = nodes(cluster)
        assert m["cluster"] == "c1" and m["replication"] == 2 and m["write_quorum"] == 1
        assert [n["id"] for n in m["nodes"]] == ["n1", "n2"]
        assert [n["address"] for n in m["nodes"]] == [n1.address, n2.address]
        assert all(n["state"] == "up" and n["capacity_bytes"] == 64 << 20 for n in m["nodes"])
        assert m["epoch"] >= max(n["registered_epoch"] for n in m["nodes"]) > 0
        # Writes and reads on a registered node.
        assert store(n1.address, 0, "a")["code"] == 0
        assert store(n1.address, m["epoch"], "b")["code"] == 0
        assert load(n1.address, "a")["intact"]

        st = json.loads(kvc("cluster", "status", "--cluster", cluster, "--json").stdout)
        assert st["total"]["healthy"] == 2 and st["total"]["nodes"] == 2
        assert st["total"]["hits"] >= 1
        assert {n["id"]: n["health"] for n in st["nodes"]} == {"n1": "ok", "n2": "ok"}

        r = kvc("cluster", "drain", "--cluster", cluster, "n2", "--json")
        assert r.returncode == 0, r.stderr
        assert {n["id"]: n["state"] for n in nodes(cluster)["nodes"]} == {"n1": "up", "n2": "draining"}
        assert store(n2.address, 0, "c")["code"] == 0  # a draining node still takes what it is sent
        r = kvc("cluster", "drain", "--cluster", cluster, "n2", "--undo")
        assert r.returncode == 0, r.stderr
        assert {n["id"]: n["state"] for n in nodes(cluster)["nodes"]} == {"n1": "up", "n2": "up"}
        r = kvc("cluster", "drain", "--cluster", cluster, "nobody")
        assert r.returncode == 1 and "KVC_ERR_NOT_FOUND" in r.stderr

        # A revision bump on every node: the block stored above vanishes.
        assert load(n1.address, "a")["intact"]
        r = kvc("cluster", "revision", "bump", "--cluster", cluster, "--model", "cluster-test-model",
                "--revision", "r1", "--layers", "2", "--kv-heads", "2", "--head-dim", "8", "--block-tokens", "4",
                "--json")
        assert r.returncode == 0, r.stderr
        bumped = json.loads(r.stdout)
        assert bumped["ok"] and bumped["namespace_epoch"] >= 1
        assert load(n1.address, "a")["code"] != 0
        # The cluster's tenants live in etcd (test_cluster_config.py): none yet.
        r = kvc("cluster", "tenant", "list", "--cluster", cluster, "--json")
        assert r.returncode == 0 and json.loads(r.stdout) == [], r.stderr

        # A clean stop revokes the lease: gone at once, at a higher epoch.
        before = nodes(cluster)["epoch"]
        n2.stop()
        m = nodes(cluster)
        assert [n["id"] for n in m["nodes"]] == ["n1"]
        assert m["epoch"] > before
    finally:
        n1.stop()
        n2.stop()


def test_paused_node_is_fenced_until_it_reregisters(etcd, tmp_path):
    require(("kvc_cluster_store_tool", TOOL))
    cluster = f"etcd://{etcd.endpoint}/c2"
    n = Node(cluster, "p1", str(tmp_path))
    try:
        e1 = nodes(cluster)["nodes"][0]["registered_epoch"]
        assert store(n.address, e1, "a")["code"] == 0
        # Pause the node past its lease; etcd expires it.
        n.proc.send_signal(signal.SIGSTOP)
        eventually(lambda: not nodes(cluster)["nodes"], TTL + 5, "the lease to expire")
        # Freeze etcd too, so that the resumed node cannot re-register yet:
        # what it does on resume is then its own judgement.
        etcd.proc.send_signal(signal.SIGSTOP)
        try:
            n.proc.send_signal(signal.SIGCONT)
            r = store(n.address, e1, "b")
            assert r["code"] == FENCED, r
            # Refused by the lease rule; or, if the node had registered again
            # already (seen once in five runs on a machine loaded by several
            # builds), by the epoch rule: e1 is older than its new epoch.
            assert "lease" in r["message"] or (
                "epoch" in r["message"] and n.log().count("registered as") >= 2), (r, n.log())
            assert store(n.address, 0, "b")["code"] == FENCED
            # Reads go on while the node only judges its lease stale by its
            # own clock. If etcd got to answer that the lease expired before
            # it froze (a keep-alive in flight at the SIGSTOP: seen about once
            # in seven runs on a loaded machine), the node rightly dropped
            # what it held: then the block must be gone, not half there.
            r = load(n.address, "a")
            assert r["intact"] or ("lease lost" in n.log() and r["code"] == -2), (r, n.log())
        finally:
            etcd.proc.send_signal(signal.SIGCONT)
        # It re-registers at a new epoch; the old epoch stays fenced.
        m = eventually(lambda: (lambda v: v if v["nodes"] else None)(nodes(cluster)), 10, "re-registration")
        e2 = m["nodes"][0]["registered_epoch"]
        assert e2 > e1
        eventually(lambda: store(n.address, e2, "c")["code"] == 0, 5, "writes at the new epoch")
        # Out of the cluster it may have missed deletes and bumps: what it
        # held before is gone.
        assert load(n.address, "a")["code"] != 0
        r = store(n.address, e1, "d")
        assert r["code"] == FENCED and "epoch" in r["message"], r
        assert load(n.address, "d")["code"] != 0  # nothing was published
        assert store(n.address, 0, "e")["code"] == 0
    finally:
        n.stop()


def test_etcd_away_fences_writes_after_the_lease_and_recovers(etcd, tmp_path):
    require(("kvc_cluster_store_tool", TOOL))
    cluster = f"etcd://{etcd.endpoint}/c3"
    n = Node(cluster, "e1", str(tmp_path))
    try:
        assert store(n.address, 0, "a")["code"] == 0
        etcd.kill()
        t0 = time.time()
        # Within the lease: writes still admitted.
        assert store(n.address, 0, "b")["code"] == 0
        assert time.time() - t0 < TTL - 0.5
        # Past it: fenced; reads go on.
        eventually(lambda: store(n.address, 0, "c")["code"] == FENCED, TTL + 3, "the fence")
        assert load(n.address, "a")["intact"] and load(n.address, "b")["intact"]
        etcd.start()
        eventually(lambda: store(n.address, 0, "d")["code"] == 0, 15, "writes after etcd returned")
        assert [x["id"] for x in nodes(cluster)["nodes"]] == ["e1"]
    finally:
        n.stop()


def unix_put(sock, key_hex, path):
    """`kvc put` over the same-host path: (exit status, stderr)."""
    r = kvc("put", "--node", "unix:" + sock, "--model", "m", "--revision", "r", "--layers", "1",
            "--kv-heads", "1", "--head-dim", "8", "--block-tokens", "4", "--key", key_hex,
            "--file", path, "--timeout-ms", "3000")
    return r.returncode, r.stderr


def test_same_host_stores_are_fenced_too(etcd, tmp_path):
    # The fence is the node's, whatever the door: a store over unix: is
    # refused once the lease is gone, and admitted again after the node
    # registered anew.
    cluster = f"etcd://{etcd.endpoint}/c4"
    sock = str(tmp_path / "kvc.sock")
    n = Node(cluster, "u1", str(tmp_path), unix_socket=sock)
    block = tmp_path / "block.bin"
    block.write_bytes(b"\x07" * (2 * 1 * 1 * 8 * 4 * 2))  # K and V, 1 layer, 1 head, dim 8, 4 tokens, fp16
    try:
        rc, err = unix_put(sock, "00" * 15 + "01", str(block))
        assert rc == 0, err
        etcd.kill()
        eventually(lambda: "fenced" in unix_put(sock, "00" * 15 + "02", str(block))[1].lower(), TTL + 3,
                   "the fence over unix:")
        etcd.start()
        eventually(lambda: unix_put(sock, "00" * 15 + "03", str(block))[0] == 0, 15,
                   "unix: stores after etcd returned")
    finally:
        n.stop()


def test_cli_up_status_nodes_drain_down(tmp_path):
    require(("kvc", KVC))
    d = str(tmp_path / "local")
    r = kvc("cluster", "up", "--nodes", "3", "--dir", d, "--zones", "a,b", "--etcd", ETCD, timeout=60)
    assert r.returncode == 0, r.stderr
    address = r.stdout.strip()
    assert address.startswith("etcd://127.0.0.1:") and address.endswith("/local")
    state = json.load(open(os.path.join(d, "cluster.json")))
    pids = [state["etcd"]["pid"]] + [x["pid"] for x in state["nodes"]]
    try:
        r = kvc("cluster", "up", "--nodes", "1", "--dir", d, "--etcd", ETCD)
        assert r.returncode == 1 and "exists" in r.stderr
        m = nodes(address)
        assert [x["id"] for x in m["nodes"]] == ["node-1", "node-2", "node-3"]
        assert [x["zone"] for x in m["nodes"]] == ["a", "b", "a"]
        assert m["replication"] == 2
        st = kvc("cluster", "status", "--cluster", address, "--json")
        assert st.returncode == 0, st.stderr
        assert json.loads(st.stdout)["total"]["healthy"] == 3
        table = kvc("cluster", "status", "--cluster", address)
        assert table.returncode == 0 and "3/3 node(s) healthy" in table.stdout
        assert kvc("cluster", "drain", "--cluster", address, "node-2").returncode == 0
        assert {x["id"]: x["state"] for x in nodes(address)["nodes"]}["node-2"] == "draining"
    finally:
        r = kvc("cluster", "down", "--dir", d, "--grace-ms", "3000")
    assert r.returncode == 0, r.stderr
    for p in pids:
        assert not os.path.exists(f"/proc/{p}") or open(f"/proc/{p}/stat").read().split(")")[1].split()[0] == "Z"
    assert not os.path.exists(os.path.join(d, "cluster.json"))
    r = kvc("cluster", "down", "--dir", d)
    assert r.returncode == 1 and "no cluster state" in r.stderr


def test_cli_help_and_bad_input():
    require(("kvc", KVC))
    for sub in ["init", "status", "nodes", "drain", "tenant", "revision", "up", "down"]:
        r = kvc("cluster", sub, "--help")
        assert r.returncode == 0 and "Usage" in r.stdout, sub
    r = kvc("cluster", "nodes", "--cluster", "127.0.0.1:2379/c")
    assert r.returncode == 1 and "etcd://" in r.stderr
    r = kvc("cluster", "nodes", "--cluster", "etcd://127.0.0.1:1/c", "--timeout-ms", "300")
    assert r.returncode == 1 and "KVC_ERR_UNAVAILABLE" in r.stderr
    r = kvc("cluster", "nodes", "--cluster", "peers:127.0.0.1:7000,127.0.0.1:7001", "--json")
    assert r.returncode == 0 and len(json.loads(r.stdout)["nodes"]) == 2
    r = kvc("cluster", "up", "--nodes", "0")
    assert r.returncode == 1 and "--nodes" in r.stderr
