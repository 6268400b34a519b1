"""Deletes reach every node that was ever in an etcd cluster (docs/cluster.md,
"Cluster configuration", the roster): each registering node writes
/kvc/<cluster>/roster/<id>; a delete through the cluster address goes to
every node of the view, and leaves a hint for every roster node that did not
answer, so a node that was out of the view (stopped cleanly, or killed and
its lease expired) applies the delete before it serves its SSD tier again.
`kvc cluster forget` removes a retired node's roster record and hints.

Real etcd and real `kvc serve` nodes (SSD tier, write-through) on loopback;
skips loudly without etcd or etcdctl."""
import ctypes
import json
import time

from cluster_harness import eventually
from test_cluster_config import (NS, SSD_WRITE_OUT_S, Cluster, KvcError, NamespaceOptions, NodeOptions, etcd,  # noqa: F401
                                 get, get_json, key, libkvc, put, run)

KVC_ERR_UNAVAILABLE = -16


def hints_of(e, cluster, node_id):
    return e.keys(f"/kvc/{cluster}/hints/{node_id}/")


def put_everywhere(cl, i, env):
    """Block i stored directly on every node (owner or not)."""
    for n in cl.nodes:
        r = put(n.address, i, env)
        assert r.returncode == 0, r.stderr
    assert all(get(n.address, i, env) for n in cl.nodes)


def rm(cl, i, env):
    return run("rm", "--node", cl.address, *NS, "--key", key(i), "--timeout-ms", "3000", env=env)


def test_deletes_reach_nodes_out_of_the_view(etcd, tmp_path):
    cl = Cluster(etcd, str(tmp_path), "ros", n=3, replication=2, ssd=True)
    try:
        n0, n1, n2 = cl.nodes
        env = cl.tenant()
        # Every node that registered is in the roster, for good (no lease).
        roster = etcd.keys("/kvc/ros/roster/")
        assert roster == ["/kvc/ros/roster/n0", "/kvc/ros/roster/n1", "/kvc/ros/roster/n2"], roster
        rec = get_json(etcd, "/kvc/ros/roster/n2")
        assert rec["address"] == n2.address and rec["first_registered"] > 1.7e12, rec
        assert json.loads(etcd.ctl("get", "-w", "json", "/kvc/ros/roster/n2"))["kvs"][0].get("lease", 0) == 0

        for i in range(6):
            put_everywhere(cl, i, env)

        # (a) A node of the view that is not an owner (R=2 of 3) but holds
        # the key gets the delete too; every node answered: no hint.
        r = rm(cl, 0, env)
        assert r.returncode == 0, r.stderr
        assert not any(get(n.address, 0, env) for n in cl.nodes)
        assert etcd.keys("/kvc/ros/hints/") == []

        time.sleep(SSD_WRITE_OUT_S)
        # (b) n2 stops cleanly: it revokes its lease and leaves the view at
        # once. A delete made now (a client whose view never had n2) is OK
        # and leaves n2 a hint, which it applies before it serves again.
        n2.stop()
        eventually(lambda: "n2" not in cl.members(), 10, "n2 left the view")
        r = rm(cl, 1, env)
        assert r.returncode == 0, r.stderr
        hints = hints_of(etcd, "ros", "n2")
        assert len(hints) == 1, etcd.keys("/kvc/ros/hints/")
        assert get_json(etcd, hints[0])["key"] == key(1)
        assert etcd.keys("/kvc/ros/hints/") == hints  # the nodes that answered get none
        n2.start()
        cl.registered(n2)
        assert hints_of(etcd, "ros", "n2") == [], n2.log()
        assert not get(n2.address, 1, env), n2.log()
        assert get(n2.address, 2, env), n2.log()  # its SSD tier kept the rest

        # (c) n1 killed: once its lease expires (TTL 2 s) it is out of the
        # view, and the delete leaves it a hint all the same.
        n1.kill9()
        eventually(lambda: "n1" not in cl.members(), 10, "n1's lease expired")
        r = rm(cl, 2, env)
        assert r.returncode == 0, r.stderr
        hints = hints_of(etcd, "ros", "n1")
        assert len(hints) == 1 and get_json(etcd, hints[0])["key"] == key(2), etcd.keys("/kvc/ros/hints/")
        n1.start()
        cl.registered(n1)
        assert hints_of(etcd, "ros", "n1") == [], n1.log()
        assert not get(n1.address, 2, env), n1.log()
        assert get(n1.address, 3, env), n1.log()

        # (d) kvc cluster forget: refused while the node is registered.
        r = run("cluster", "forget", "--cluster", cl.address, "n0", "--json")
        assert r.returncode == 1 and "KVC_ERR_INVALID_ARGUMENT" in r.stderr and "registered" in r.stderr, r.stderr
        assert "/kvc/ros/roster/n0" in etcd.keys("/kvc/ros/roster/")
        # A stopped node's roster record and hints go; later deletes leave
        # it none.
        n2.stop()
        eventually(lambda: "n2" not in cl.members(), 10, "n2 left the view")
        assert rm(cl, 3, env).returncode == 0
        assert rm(cl, 4, env).returncode == 0
        assert len(hints_of(etcd, "ros", "n2")) == 2
        r = run("cluster", "forget", "--cluster", cl.address, "n2", "--json")
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout) == {"id": "n2", "forgotten": True}
        assert etcd.keys("/kvc/ros/roster/") == ["/kvc/ros/roster/n0", "/kvc/ros/roster/n1"]
        assert hints_of(etcd, "ros", "n2") == []
        assert etcd.keys("/kvc/ros/hints/") == []
        r = run("cluster", "forget", "--cluster", cl.address, "n2")
        assert r.returncode == 1 and "KVC_ERR_NOT_FOUND" in r.stderr, r.stderr
        assert rm(cl, 5, env).returncode == 0
        assert etcd.keys("/kvc/ros/hints/") == []
        r = run("cluster", "forget", "--cluster", cl.address, "bad/id")
        assert r.returncode == 1 and "KVC_ERR_INVALID_ARGUMENT" in r.stderr, r.stderr
        r = run("cluster", "forget", "--cluster", "peers:127.0.0.1:1", "n2")
        assert r.returncode == 1 and "KVC_ERR_INVALID_ARGUMENT" in r.stderr, r.stderr
        # A forgotten node that comes back registers in the roster again.
        n2.start()
        cl.registered(n2)
        assert "/kvc/ros/roster/n2" in etcd.keys("/kvc/ros/roster/")
    finally:
        cl.stop()


def test_delete_fails_when_etcd_cannot_take_the_hints(etcd, tmp_path):
    """A handle that outlives etcd: its delete reaches every node of its
    view, but the roster cannot be read, so nodes out of the view may keep
    the block: KVC_ERR_UNAVAILABLE."""
    lib = libkvc()
    cl = Cluster(etcd, str(tmp_path), "rosnoetcd", n=2, replication=2)
    node = ctypes.c_void_p()
    try:
        env = cl.tenant()
        o = NodeOptions(ctypes.sizeof(NodeOptions), env["KVC_TENANT"].encode(), env["KVC_CREDENTIAL"].encode(),
                        2000, 1500, None, None, None, None, 0)
        err = KvcError()
        assert lib.kvc_node_connect(ctypes.byref(node), cl.address.encode(), ctypes.byref(o), ctypes.byref(err)) == 0, \
            err.message
        ns = NamespaceOptions(ctypes.sizeof(NamespaceOptions), None, b"cfg-model", b"r1", None, b"fp16", 2, 2, 8, 4, 1,
                              None, 0, 0, None, None, 0)
        for i in range(2):
            assert put(cl.address, i, env).returncode == 0
        assert lib.kvc_node_delete(node, ctypes.byref(ns), bytes.fromhex(key(0)), ctypes.byref(err)) == 0, \
            err.message
        etcd.kill()
        t0 = time.monotonic()
        rc = lib.kvc_node_delete(node, ctypes.byref(ns), bytes.fromhex(key(1)), ctypes.byref(err))
        assert time.monotonic() - t0 < 5
        assert rc == KVC_ERR_UNAVAILABLE and b"roster" in err.message, (rc, err.message)
        # The nodes of the view did the delete all the same.
        assert not any(get(n.address, 1, env) for n in cl.nodes)
    finally:
        if node:
            lib.kvc_node_close(node)
        for n in cl.nodes:
            n.kill9()
