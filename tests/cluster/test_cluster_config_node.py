"""An etcd cluster's configuration taken up by real `kvc serve` nodes
(cluster/config_sync.h, docs/cluster.md "Cluster configuration"): records
written with etcdctl under /kvc/<cluster>/tenants/, revisions/ and hints/
reach running nodes within about a second and nodes started later at once;
revision counts are applied once (a re-list or a counted BumpRevision RPC
bumps nothing more), also across a restart on the same SSD tier; a delete
hint written while a node was down is applied, and removed, before the node
registers.

Skips loudly without etcd or etcdctl (Debian: etcd-server, etcd-client)."""
import hashlib
import json
import os
import secrets
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from cluster_harness import KVC, Etcd, Node, eventually, kvc, require  # noqa: E402

TOOL = os.environ.get("KVC_CONFIG_NODE_TOOL")
ADMIN = "cfg-admin-token"

NS = {"hash": "sha256", "model": "cfg-model", "revision": "r1", "adapter": "", "dtype": "fp16", "layers": 1,
      "kv_heads": 1, "head_dim": 8, "block_tokens": 4, "shards": 1}
NS_FLAGS = ["--model", "cfg-model", "--revision", "r1", "--layers", "1", "--kv-heads", "1", "--head-dim", "8",
            "--block-tokens", "4"]
SHARD_BYTES = 1 * 2 * 4 * 1 * 8 * 2  # layers * K,V * tokens * heads * dim * fp16
KEY = "0123456789abcdef0123456789abcdef"
KEY2 = "fedcba9876543210fedcba9876543210"


@pytest.fixture
def etcd(tmp_path):
    require(("kvc", KVC), ("kvc_config_node_tool", TOOL))
    e = Etcd(str(tmp_path))
    e.start()
    e.ctl("version")  # skips loudly without etcdctl
    yield e
    e.kill()


def credential():
    return "kvc_" + secrets.token_hex(24)


def put_tenant(etcd, cluster, name, cred, isolation="isolated", salt=None, host_quota=0):
    rec = {"isolation": isolation, "host_quota_bytes": host_quota, "ssd_quota_bytes": 0, "borrow": False,
           "credential_sha256": hashlib.sha256(cred.encode()).hexdigest(),
           "salt": (salt or secrets.token_hex(32)) if isolation == "isolated" else ""}
    etcd.ctl("put", f"/kvc/{cluster}/tenants/{name}", json.dumps(rec))
    return rec


def nsid(tenant):
    r = subprocess.run([TOOL, "nsid", tenant, json.dumps(NS)], capture_output=True, text=True, timeout=10)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def put_revision(etcd, cluster, tenant, count):
    etcd.ctl("put", f"/kvc/{cluster}/revisions/{nsid(tenant)}",
             json.dumps({"count": count, "tenant": tenant, "ns": NS}))


def bump(node, tenant, cred, count):
    r = subprocess.run([TOOL, "bump", node.address, tenant, cred, str(count), json.dumps(NS)],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout)


def as_tenant(tenant, cred):
    return ["--tenant", tenant, "--credential", cred] if tenant else []


def put_block(node, tmp_path, key=KEY, tenant="", cred="", fill=b"k"):
    f = tmp_path / f"shard-{key}"
    f.write_bytes(fill * SHARD_BYTES)
    r = kvc("put", "--node", node.address, *as_tenant(tenant, cred), *NS_FLAGS, "--key", key, "--file", str(f))
    assert r.returncode == 0, r.stderr + node.log()


def held(node, key=KEY, tenant="", cred=""):
    """Blocks of [key] the node holds (0 or 1) as that caller."""
    r = kvc("match", "--node", node.address, *as_tenant(tenant, cred), *NS_FLAGS, "--key", key, "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)["blocks"]


def accepted(node, tenant, cred):
    r = kvc("stat", "--node", node.address, *as_tenant(tenant, cred), "--no-retries", "--timeout-ms", "2000")
    return r.returncode == 0


def token_keys(node, tenant, cred):
    r = kvc("match", "--node", node.address, *as_tenant(tenant, cred), *NS_FLAGS, "--tokens",
            ",".join(str(i) for i in range(1, 13)), "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)["keys"]


def tenant_list(node):
    r = kvc("tenant", "list", "--node", node.address, "--json", env={"KVC_ADMIN_TOKEN": ADMIN})
    assert r.returncode == 0, r.stderr
    j = json.loads(r.stdout)
    return {t["name"]: t for t in (j["tenants"] if isinstance(j, dict) else j)}


def admin_node(etcd, cluster, node_id, base, env=None, **kw):
    return Node(etcd.cluster(cluster), node_id, base, env={"KVC_ADMIN_TOKEN": ADMIN, **(env or {})}, **kw)


def test_cluster_tenants_reach_running_and_new_nodes(etcd, tmp_path):
    c = "cten"
    tmpdir = tmp_path / "tmpdir"  # where a node without an SSD tier keeps its tenants file
    tmpdir.mkdir()
    n1 = admin_node(etcd, c, "n1", str(tmp_path), env={"TMPDIR": str(tmpdir)})
    n2 = None
    try:
        private = list(tmpdir.iterdir())
        assert len(private) == 1 and private[0].name.startswith("kvc-node-tenants-"), private
        assert private[0].stat().st_mode & 0o777 == 0o700
        assert accepted(n1, "", "")  # no tenants yet: open
        cred, salt = credential(), secrets.token_hex(32)
        t0 = time.time()
        put_tenant(etcd, c, "acme", cred, salt=salt)
        eventually(lambda: accepted(n1, "acme", cred), 5, "the running node accepts the cluster tenant")
        took = time.time() - t0
        assert took < 3.0, f"took {took:.2f} s"
        print(f"cluster tenant accepted by a running node after {took * 1000:.0f} ms")
        assert not accepted(n1, "acme", credential())  # a wrong credential
        assert not accepted(n1, "", "")  # tenants now: anonymous refused

        # A node started later takes it up before it serves.
        n2 = admin_node(etcd, c, "n2", str(tmp_path))
        assert accepted(n2, "acme", cred)
        # One isolated tenant, one salt: the same keys on every node.
        k1, k2 = token_keys(n1, "acme", cred), token_keys(n2, "acme", cred)
        assert len(k1) == 3 and k1 == k2
        # Another tenant with another salt: other keys.
        cred_b = credential()
        put_tenant(etcd, c, "beta", cred_b)
        eventually(lambda: accepted(n1, "beta", cred_b), 5, "beta on n1")
        assert token_keys(n1, "beta", cred_b) != k1

        # A quota change reaches the node's tenant list; the id stays.
        before = tenant_list(n1)["acme"]
        put_tenant(etcd, c, "acme", cred, salt=salt, host_quota=1 << 20)
        eventually(lambda: tenant_list(n1)["acme"]["host_quota_bytes"] == 1 << 20, 5, "the new quota")
        assert tenant_list(n1)["acme"]["id"] == before["id"]

        # A local tenant survives the cluster's syncs.
        r = kvc("tenant", "create", "local1", "--node", n1.address, "--json", env={"KVC_ADMIN_TOKEN": ADMIN})
        assert r.returncode == 0, r.stderr
        out = r.stdout.strip()
        local_cred = json.loads(out)["credential"] if out.startswith("{") else out.split()[-1]
        assert accepted(n1, "local1", local_cred)
        etcd.ctl("del", f"/kvc/{c}/tenants/beta")
        eventually(lambda: not accepted(n1, "beta", cred_b), 5, "beta deleted")
        assert accepted(n1, "local1", local_cred)
        assert set(tenant_list(n1)) == {"acme", "local1"}

        # Deleting a record: refused, and its blocks gone (the same record
        # again is a new tenant: it finds nothing).
        put_block(n1, tmp_path, tenant="acme", cred=cred)
        assert held(n1, tenant="acme", cred=cred) == 1
        etcd.ctl("del", f"/kvc/{c}/tenants/acme")
        eventually(lambda: not accepted(n1, "acme", cred), 5, "acme deleted")
        put_tenant(etcd, c, "acme", cred, salt=salt, host_quota=1 << 20)
        eventually(lambda: accepted(n1, "acme", cred), 5, "acme again")
        assert held(n1, tenant="acme", cred=cred) == 0

        # A record that does not parse is skipped; the others stay.
        etcd.ctl("put", f"/kvc/{c}/tenants/broken", "{not json")
        etcd.ctl("put", f"/kvc/{c}/tenants/acme", "{\"isolation\": 7}")  # acme keeps its last good record
        cred_g = credential()
        put_tenant(etcd, c, "gamma", cred_g)
        eventually(lambda: accepted(n1, "gamma", cred_g), 5, "gamma after a broken record")
        assert accepted(n1, "acme", cred)
        assert "skipped" in n1.log()
        assert (private[0] / "tenants.json").exists()
        n1.stop()
        assert list(tmpdir.iterdir()) == []  # removed at shutdown
    finally:
        n1.stop()
        if n2:
            n2.stop()


def test_revision_counts_apply_once(etcd, tmp_path):
    c = "crev"
    cred = credential()
    put_tenant(etcd, c, "acme", cred)
    n1 = admin_node(etcd, c, "n1", str(tmp_path))
    try:
        put_block(n1, tmp_path, tenant="acme", cred=cred)
        assert held(n1, tenant="acme", cred=cred) == 1
        t0 = time.time()
        put_revision(etcd, c, "acme", 1)
        eventually(lambda: held(n1, tenant="acme", cred=cred) == 0, 5, "the bumped block is a miss")
        print(f"revision count applied by a running node after {(time.time() - t0) * 1000:.0f} ms")
        # The same count through the RPC (a client that bumped the node and
        # counted in etcd): nothing more.
        e1 = bump(n1, "acme", cred, 1)
        assert e1["code"] == 0, e1
        put_block(n1, tmp_path, tenant="acme", cred=cred)
        e1b = bump(n1, "acme", cred, 1)
        assert e1b["code"] == 0 and e1b["epoch"] == e1["epoch"]
        assert held(n1, tenant="acme", cred=cred) == 1
        # A higher count through the RPC bumps once; the record of that
        # count arriving later bumps nothing.
        e2 = bump(n1, "acme", cred, 2)
        assert e2["code"] == 0 and e2["epoch"] == e1["epoch"] + 1
        assert held(n1, tenant="acme", cred=cred) == 0
        put_block(n1, tmp_path, tenant="acme", cred=cred)
        put_revision(etcd, c, "acme", 2)
        cred_b = credential()
        put_tenant(etcd, c, "beta", cred_b)  # a later event: the count-2 record was seen
        eventually(lambda: accepted(n1, "beta", cred_b), 5, "beta")
        assert held(n1, tenant="acme", cred=cred) == 1
        # An unknown tenant's record is skipped quietly.
        put_revision(etcd, c, "nobody", 3)
        # etcd restarts: the node re-lists and applies no count again.
        listings = n1.log().count("cluster config: applied")
        etcd.kill()
        etcd.start()
        eventually(lambda: n1.log().count("cluster config: applied") > listings, 10, "a re-list")
        assert held(n1, tenant="acme", cred=cred) == 1
        assert bump(n1, "acme", cred, 2)["epoch"] == e2["epoch"]
        assert "nobody" not in n1.log()
    finally:
        n1.stop()


def test_restart_on_ssd_applies_missed_bumps_only(etcd, tmp_path):
    c = "cssd"
    ssd = tmp_path / "ssd"
    ssd.mkdir()
    n1 = Node(etcd.cluster(c), "n1", str(tmp_path), ssd_dir=str(ssd), write_through=True)
    try:
        put_block(n1, tmp_path, key=KEY)
        assert held(n1, KEY) == 1
        n1.stop()
        put_revision(etcd, c, "", 1)  # a bump the node missed
        n1.start()
        assert held(n1, KEY) == 0, "a block of a revision bumped while the node was down was served"
        cred = credential()
        put_tenant(etcd, c, "acme", cred)  # the tenants file of a node with an SSD tier: in its directory
        eventually(lambda: (ssd / "tenants.json").exists(), 5, "tenants.json in the SSD directory")
        assert json.loads((ssd / "tenants.json").read_text())["tenants"][0]["cluster"] is True
        etcd.ctl("del", f"/kvc/{c}/tenants/acme")  # anonymous calls again
        eventually(lambda: accepted(n1, "", ""), 5, "no tenants again")
        assert json.loads((ssd / "cluster-revisions.json").read_text())["counts"][nsid("")] == 1
        put_block(n1, tmp_path, key=KEY2)
        n1.stop()
        n1.start()  # no bump while down: the SSD block is served
        assert held(n1, KEY2) == 1
    finally:
        n1.stop()


def test_missed_delete_hint_applied_before_registering(etcd, tmp_path):
    c = "chint"
    ssd = tmp_path / "ssd"
    ssd.mkdir()
    n1 = Node(etcd.cluster(c), "n1", str(tmp_path), ssd_dir=str(ssd), write_through=True)
    try:
        put_block(n1, tmp_path, key=KEY)
        put_block(n1, tmp_path, key=KEY2)
        n1.stop()
        assert etcd.keys(f"/kvc/{c}/nodes/") == []
        hint = json.dumps({"op": "delete", "tenant": "", "ns": NS, "key": KEY})
        etcd.ctl("put", f"/kvc/{c}/hints/n1/h1", hint)
        etcd.ctl("put", f"/kvc/{c}/hints/n1/h2", "{\"op\": \"move\"}")  # does not parse: skipped, kept
        etcd.ctl("put", f"/kvc/{c}/hints/n2/h1", hint)  # another node's
        n1.start()
        assert held(n1, KEY) == 0
        assert held(n1, KEY2) == 1
        assert etcd.keys(f"/kvc/{c}/hints/") == [f"/kvc/{c}/hints/n1/h2", f"/kvc/{c}/hints/n2/h1"]
        # Applied before the node registered (one stderr, in order).
        log = n1.log().split("kvc node n1: cluster config: applied 0 tenants, 0 revision records and 2 hints")
        assert len(log) == 2, n1.log()
        assert "registered as 'n1'" in log[1].split("kvc node n1: cluster config: applied")[0]
        assert "skipped hint" in log[0] + log[1]
        # A hint for a running node.
        put_block(n1, tmp_path, key=KEY)
        etcd.ctl("put", f"/kvc/{c}/hints/n1/h3", hint)
        eventually(lambda: held(n1, KEY) == 0, 5, "the hint applied")
        eventually(lambda: f"/kvc/{c}/hints/n1/h3" not in etcd.keys(f"/kvc/{c}/hints/"), 5, "the hint removed")
    finally:
        n1.stop()


def test_node_without_an_id_takes_up_the_configuration_under_its_address(etcd, tmp_path):
    # Port 0 and no --node-id: the id comes from the bound address, so the
    # configuration is read after binding (still before registering).
    c = "cnoid"
    cred = credential()
    put_tenant(etcd, c, "acme", cred)
    n = Node(etcd.cluster(c), "x", str(tmp_path), start=False)
    n.argv = [a for a in n.argv if a not in ("--node-id", "x")]
    n.start()
    try:
        assert accepted(n, "acme", cred)
        node_id = n.address.replace(":", "-")
        assert f"kvc node {node_id}: cluster config: applied 1 tenants" in n.log()
        assert etcd.keys(f"/kvc/{c}/nodes/") == [f"/kvc/{c}/nodes/{node_id}"]
        hint = json.dumps({"op": "delete", "tenant": "acme", "ns": NS, "key": KEY})
        put_block(n, tmp_path, tenant="acme", cred=cred)
        etcd.ctl("put", f"/kvc/{c}/hints/{node_id}/h1", hint)
        eventually(lambda: held(n, tenant="acme", cred=cred) == 0, 5, "the hint applied")
    finally:
        n.stop()
