"""`kvc cluster drain --wait`: the draining node copies its host blocks to
their new owners (acting as each block's tenant through the cluster's
shared admin token) before it leaves. A 3-node etcd cluster, R=1, one
tenant: blocks stored through the cluster address stay readable byte-exact
after the drained node is SIGKILLed; a tenant's own credential cannot use
the node-to-node `kvc-as-tenant` authority.

The hand-off goes hottest first (the host policy's order, then the blocks
only the SSD tier holds): with a host tier of a few blocks the SSD-only ones
reach the new owner too, and a pass cut short (the test-only knob
KVC_HANDOFF_MAX_BLOCKS, as if the node had been stopped mid-pass) has copied
exactly the blocks read last.

Skips loudly without the etcd binary (Debian: etcd-server)."""
import json
import os
import signal
import subprocess
import time

from test_cluster import KVC, TOOL, TTL, etcd, eventually, kvc, nodes, require  # noqa: F401 (etcd: a fixture)

NS = ["--model", "m", "--revision", "r1", "--layers", "2", "--kv-heads", "2", "--head-dim", "8",
      "--block-tokens", "4"]
SHARD = 2 * 2 * 4 * 2 * 8 * 2
N = 24
ADMIN = "drain-test-admin-token-0123456789"


class Node:
    def __init__(self, cluster, node_id, base, tenants, admin_file, host_capacity="64MiB", args=(), env=None):
        self.id = node_id
        self.ready = os.path.join(base, node_id + ".addr")
        self.logpath = os.path.join(base, node_id + ".log")
        env = dict(os.environ, KVC_CLUSTER_LEASE_TTL_S=str(TTL), **(env or {}))
        self.proc = subprocess.Popen(
            [KVC, "serve", "--listen", "127.0.0.1:0", "--cluster", cluster, "--node-id", node_id,
             "--host-capacity", host_capacity, "--ready-file", self.ready, "--tenants-file", tenants,
             "--admin-token-file", admin_file, *args],
            env=env, stdout=subprocess.DEVNULL, stderr=open(self.logpath, "ab"))
        deadline = time.time() + 15
        while not os.path.exists(self.ready):
            assert self.proc.poll() is None, f"node {node_id} exited: {self.log()}"
            assert time.time() < deadline, f"node {node_id} not ready: {self.log()}"
            time.sleep(0.05)
        self.address = open(self.ready).read().strip()

    def log(self):
        return open(self.logpath, errors="replace").read()

    def kill(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()


def key(i):
    return f"{i + 1:032x}"


def tool(*args, metadata=None):
    env = dict(os.environ)
    if metadata:
        env["KVC_TEST_METADATA"] = metadata
    r = subprocess.run([TOOL, *args], capture_output=True, text=True, timeout=10, env=env)
    return r.returncode, r.stdout + r.stderr


def test_drain_hands_blocks_off(etcd, tmp_path):
    require(("kvc", KVC), ("kvc_cluster_store_tool", TOOL))
    base = str(tmp_path)
    tenants = os.path.join(base, "tenants.json")
    r = kvc("tenant", "--config", tenants, "create", "acme", "--json")
    assert r.returncode == 0, r.stderr
    cred = json.loads(r.stdout)["credential"]
    admin_file = os.path.join(base, "admin-token")
    with open(admin_file, "w") as f:
        f.write(ADMIN)
    os.chmod(admin_file, 0o600)
    cluster = f"etcd://{etcd.endpoint}/drain"
    r = kvc("cluster", "init", "--cluster", cluster, "--replication", "1", "--write-quorum", "1")
    assert r.returncode == 0, r.stderr
    # The same tenants file on every node: one tenant, one salt.
    ns = [Node(cluster, f"n{i}", base, tenants, admin_file) for i in range(3)]
    try:
        env = dict(os.environ, KVC_TENANT="acme", KVC_CREDENTIAL=cred)
        eventually(lambda: len(nodes(cluster)["nodes"]) == 3, 10, "three nodes registered")
        for i in range(N):
            p = os.path.join(base, f"b{i}")
            with open(p, "wb") as f:
                f.write(bytes([(i * 7 + j) % 251 for j in range(SHARD)]))
            r = subprocess.run([KVC, "put", "--node", cluster, *NS, "--key", key(i), "--file", p, "--json"],
                               capture_output=True, text=True, timeout=20, env=env)
            assert r.returncode == 0, r.stderr

        def held(n):
            c = 0
            for i in range(N):
                r = subprocess.run([KVC, "get", "--node", n.address, *NS, "--key", key(i), "--file",
                                    os.path.join(base, "probe"), "--json"], capture_output=True, text=True,
                                   timeout=10, env=env)
                c += r.returncode == 0
            return c

        counts = {n.id: held(n) for n in ns}
        assert sum(counts.values()) == N, counts  # R=1: each block on exactly one node
        victim = max(ns, key=lambda n: counts[n.id])
        assert counts[victim.id] > 0

        r = kvc("cluster", "drain", "--cluster", cluster, victim.id, "--wait", "20", "--json", timeout=40)
        assert r.returncode == 0, r.stdout + r.stderr + victim.log()
        out = json.loads(r.stdout)
        assert out["handoff"] == "done" and out["handed_off"] == counts[victim.id], out
        st = subprocess.run([KVC, "stat", "--node", victim.address, "--admin-token-file", admin_file,
                             "--json"], capture_output=True, text=True, timeout=10)
        assert st.returncode == 0, st.stderr
        drain = json.loads(st.stdout)["drain"]
        assert drain["state"] == "done" and drain["blocks"] == counts[victim.id] and drain["failures"] == 0, drain
        assert drain["bytes"] == counts[victim.id] * SHARD

        victim.kill()
        eventually(lambda: victim.id not in [n["id"] for n in nodes(cluster)["nodes"]], 3 * TTL + 5,
                   "the killed node left")
        for i in range(N):
            p = os.path.join(base, "back")
            r = subprocess.run([KVC, "get", "--node", cluster, *NS, "--key", key(i), "--file", p, "--json"],
                               capture_output=True, text=True, timeout=20, env=env)
            assert r.returncode == 0, f"block {i}: {r.stderr}"
            assert open(p, "rb").read() == bytes([(i * 7 + j) % 251 for j in range(SHARD)]), f"block {i}"

        # kvc-as-tenant is node-to-node authority: a tenant's credential, or a
        # wrong admin token, cannot use it; the right admin token can.
        target = next(n for n in ns if n is not victim)
        epoch = str(nodes(cluster)["epoch"])
        rc, out = tool("store", target.address, epoch, "z",
                       metadata=f"authorization=Bearer acme:{cred},kvc-as-tenant=acme")
        assert rc == 2 and "credential" in out, out
        rc, out = tool("store", target.address, epoch, "z",
                       metadata=f"authorization=Bearer acme:{cred},kvc-as-tenant=acme,kvc-admin-token=wrong")
        assert rc == 2, out
        rc, out = tool("load", target.address, "z", metadata=f"kvc-as-tenant=acme,kvc-admin-token={ADMIN}")
        assert rc == 2, out  # Load does not take it
        rc, out = tool("store", target.address, epoch, "z", metadata=f"kvc-as-tenant=acme,kvc-admin-token={ADMIN}")
        assert rc == 0 and json.loads(out)["code"] == 0, out
    finally:
        for n in ns:
            n.kill()


def test_drain_without_admin_token_says_so(etcd, tmp_path):
    require(("kvc", KVC), ("kvc_cluster_store_tool", TOOL))
    cluster = f"etcd://{etcd.endpoint}/noadmin"
    r = kvc("cluster", "init", "--cluster", cluster, "--replication", "1", "--write-quorum", "1")
    assert r.returncode == 0, r.stderr
    env = dict(os.environ, KVC_CLUSTER_LEASE_TTL_S=str(TTL))
    ready = os.path.join(str(tmp_path), "n.addr")
    log = os.path.join(str(tmp_path), "n.log")
    p = subprocess.Popen([KVC, "serve", "--listen", "127.0.0.1:0", "--cluster", cluster, "--node-id", "solo",
                          "--host-capacity", "16MiB", "--ready-file", ready],
                         env=env, stdout=subprocess.DEVNULL, stderr=open(log, "ab"))
    try:
        eventually(lambda: os.path.exists(ready), 15, "node ready")
        r = kvc("cluster", "drain", "--cluster", cluster, "solo", "--wait", "15", "--json", timeout=30)
        assert r.returncode == 1, r.stdout + r.stderr
        assert json.loads(r.stdout)["handoff"] == "no-admin-token"
        assert "no admin token" in open(log, errors="replace").read()
    finally:
        p.kill()
        p.wait()


# Blocks of 32 KiB (2 x 2 layers x 16 tokens x 2 heads x 128 x fp16), so
# that a 128 KiB host tier holds only a few of them.
BIG_NS = ["--model", "m", "--revision", "r1", "--layers", "2", "--kv-heads", "2", "--head-dim", "128",
          "--block-tokens", "16"]
BIG_SHARD = 2 * 2 * 16 * 2 * 128 * 2


def content(i):
    return bytes([(i * 13 + j) % 253 for j in range(BIG_SHARD)])


def setup_cluster(etcd, tmp_path, name):
    """A cluster, a tenants file with one tenant, an admin token file; returns
    (base, cluster, tenants, admin_file, client env)."""
    base = str(tmp_path)
    tenants = os.path.join(base, "tenants.json")
    r = kvc("tenant", "--config", tenants, "create", "acme", "--json")
    assert r.returncode == 0, r.stderr
    cred = json.loads(r.stdout)["credential"]
    admin_file = os.path.join(base, "admin-token")
    with open(admin_file, "w") as f:
        f.write(ADMIN)
    os.chmod(admin_file, 0o600)
    cluster = f"etcd://{etcd.endpoint}/{name}"
    r = kvc("cluster", "init", "--cluster", cluster, "--replication", "1", "--write-quorum", "1")
    assert r.returncode == 0, r.stderr
    return base, cluster, tenants, admin_file, dict(os.environ, KVC_TENANT="acme", KVC_CREDENTIAL=cred)


def put_all(base, where, env, n):
    for i in range(n):
        p = os.path.join(base, f"b{i}")
        with open(p, "wb") as f:
            f.write(content(i))
        r = subprocess.run([KVC, "put", "--node", where, *BIG_NS, "--key", key(i), "--file", p, "--json"],
                           capture_output=True, text=True, timeout=20, env=env)
        assert r.returncode == 0, r.stderr


def readable(base, where, env, i):
    """Whether block i reads back byte-exact from `where` (a node or the cluster)."""
    p = os.path.join(base, "probe")
    r = subprocess.run([KVC, "get", "--node", where, *BIG_NS, "--key", key(i), "--file", p, "--json"],
                       capture_output=True, text=True, timeout=20, env=env)
    return r.returncode == 0 and open(p, "rb").read() == content(i)


def node_stats(node, admin_file):
    st = subprocess.run([KVC, "stat", "--node", node.address, "--admin-token-file", admin_file, "--json"],
                        capture_output=True, text=True, timeout=10)
    assert st.returncode == 0, st.stderr
    return json.loads(st.stdout)


def drain_stats(node, admin_file):
    return node_stats(node, admin_file)["drain"]


def test_drain_hands_off_ssd_only_blocks(etcd, tmp_path):
    """A node whose host tier holds 3 of 20 blocks hands off all 20: the host
    ones, then those only its SSD tier holds; they read back from the new
    owner once the drained node is gone."""
    require(("kvc", KVC))
    n = 20
    base, cluster, tenants, admin_file, env = setup_cluster(etcd, tmp_path, "drainssd")
    # Alone at first, so it owns every block.
    victim = Node(cluster, "v", base, tenants, admin_file, host_capacity="128KiB",
                  args=["--ssd-dir", os.path.join(base, "ssd"), "--ssd-capacity", "64MiB"])
    ns = [victim]
    try:
        eventually(lambda: len(nodes(cluster)["nodes"]) == 1, 10, "the node registered")
        put_all(base, cluster, env, n)
        ns.append(Node(cluster, "t", base, tenants, admin_file))
        eventually(lambda: len(nodes(cluster)["nodes"]) == 2, 10, "the target registered")
        # A demotion dropped for want of staging room (32 KiB here) loses its
        # block before any drain: it cannot be handed off.
        before = node_stats(victim, admin_file)
        held = n - before.get("demotions_dropped", 0)
        assert held >= n - 2, before

        r = kvc("cluster", "drain", "--cluster", cluster, victim.id, "--wait", "20", "--json", timeout=40)
        assert r.returncode == 0, r.stdout + r.stderr + victim.log()
        drain = drain_stats(victim, admin_file)
        print("drain of a node with 128 KiB of host tier:", drain)
        assert drain["state"] == "done" and drain["failures"] == 0, drain
        assert drain["host_blocks"] + drain["ssd_blocks"] == held, drain
        assert 1 <= drain["host_blocks"] <= 4, drain  # 128 KiB of 32 KiB blocks
        assert drain["ssd_blocks"] >= held - 4 and drain["ssd_unknown_namespace"] == 0, drain
        assert drain["bytes"] == held * BIG_SHARD, drain
        assert "only on SSD" in victim.log()

        victim.kill()
        eventually(lambda: victim.id not in [x["id"] for x in nodes(cluster)["nodes"]], 3 * TTL + 5,
                   "the killed node left")
        back = [i for i in range(n) if readable(base, cluster, env, i)]
        assert len(back) == held, back
    finally:
        for x in ns:
            x.kill()


def test_drain_hands_off_hottest_first(etcd, tmp_path):
    """A pass cut short after 4 blocks (KVC_HANDOFF_MAX_BLOCKS, a test-only
    knob) has copied exactly the 4 blocks read last, not the others."""
    require(("kvc", KVC))
    n, hot = 16, [13, 2, 9, 5]
    base, cluster, tenants, admin_file, env = setup_cluster(etcd, tmp_path, "drainhot")
    victim = Node(cluster, "v", base, tenants, admin_file, env={"KVC_HANDOFF_MAX_BLOCKS": str(len(hot))})
    ns = [victim]
    try:
        eventually(lambda: len(nodes(cluster)["nodes"]) == 1, 10, "the node registered")
        put_all(base, cluster, env, n)
        for i in hot:  # the hot blocks: read after every block was stored
            assert readable(base, victim.address, env, i)
        target = Node(cluster, "t", base, tenants, admin_file)
        ns.append(target)
        eventually(lambda: len(nodes(cluster)["nodes"]) == 2, 10, "the target registered")

        r = kvc("cluster", "drain", "--cluster", cluster, victim.id, "--wait", "20", "--json", timeout=40)
        assert r.returncode == 1, r.stdout + r.stderr  # the hand-off ended "stopped", not "done"
        assert json.loads(r.stdout)["handoff"] == "stopped", r.stdout
        drain = drain_stats(victim, admin_file)
        assert drain["state"] == "stopped" and "KVC_HANDOFF_MAX_BLOCKS" in drain["error"], drain
        assert drain["host_blocks"] == len(hot) and drain["failures"] == 0, drain
        on_target = [i for i in range(n) if readable(base, target.address, env, i)]
        assert sorted(on_target) == sorted(hot), on_target
    finally:
        for x in ns:
            x.kill()
