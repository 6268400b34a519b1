"""Batches through a static-peers cluster: kvc_node_put_batch and
kvc_node_get_batch on a `peers:` address (cluster_batch_tool, from C) over
three real `kvc serve` processes on loopback. The blocks spread over every
node, each on its R replicas; a batch get gives each block what a get of it
alone gives; with one node killed, gets fail over to the other replica and
puts still reach the write quorum."""
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request

import pytest

KVC = os.environ.get("KVC_BIN") or shutil.which("kvc")
TOOL = os.environ.get("KVC_CLUSTER_BATCH_TOOL")
OK, NOT_FOUND, UNAVAILABLE, TIMEOUT = 0, -2, -16, -6
N = 48


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def nodes(tmp_path):
    if not KVC or not os.path.exists(KVC):
        pytest.skip("SKIPPED LOUDLY: the kvc CLI is not built (KVC_BIN)")
    if not TOOL or not os.path.exists(TOOL):
        pytest.skip("SKIPPED LOUDLY: tests/cluster/cluster_batch_tool is not built (KVC_CLUSTER_BATCH_TOOL)")
    addrs, procs, metrics = [], [], []
    try:
        for i in range(3):
            addr = "127.0.0.1:%d" % free_port()
            metrics.append("127.0.0.1:%d" % free_port())
            ready = tmp_path / ("ready-%d" % i)
            log = open(tmp_path / ("node-%d.log" % i), "ab")
            procs.append(subprocess.Popen([KVC, "serve", "--listen", addr, "--host-capacity", "64MiB",
                                           "--ready-file", str(ready), "--shutdown-grace-ms", "200",
                                           "--metrics-listen", metrics[i]],
                                          stdout=log, stderr=log))
            addrs.append(addr)
            end = time.monotonic() + 20
            while not ready.exists():
                assert procs[i].poll() is None, "node %d exited: %s" % (i, (tmp_path / ("node-%d.log" % i)).read_text())
                assert time.monotonic() < end, "node %d not ready" % i
                time.sleep(0.02)
        yield addrs, procs, metrics
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def peers(addrs, r=2, w=1):
    return "peers:%s?replication=%d&write_quorum=%d" % (",".join(addrs), r, w)


def tool(*args):
    r = subprocess.run([TOOL, *map(str, args)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def check_get(g, expect_all_found):
    # Each item as a get of it alone through the same address; the bytes of
    # every block found are the ones stored; block N was never stored.
    assert g["status"] == g["single"], g
    for i, s in enumerate(g["status"]):
        if s == OK:
            assert g["len"][i] == 4096 and g["bytes_ok"][i] and i < N, (i, g)
        else:
            assert g["len"][i] == 0, (i, g)
    if expect_all_found:
        assert g["status"][N] == NOT_FOUND
        assert g["status"][:N] == [OK] * N, g
        assert g["rc"] == OK, g
    # The call fails only when some item could not be answered.
    unanswered = [s for s in g["status"] if s not in (OK, NOT_FOUND)]
    assert (g["rc"] == OK) == (not unanswered), g
    if unanswered:
        assert g["rc"] in unanswered, g


def test_batches_group_by_owner_and_fail_over(nodes):
    addrs, procs, _ = nodes
    p = tool("put", peers(addrs), ",".join(addrs), N, 7)
    assert p["rc"] == OK and p["status"] == [OK] * N, p
    # Every block on its two replicas (all nodes up: both acknowledged),
    # and every node holds some of them.
    assert all(len(h) == 2 for h in p["holders"]), p["holders"]
    for j in range(3):
        assert any(j in h for h in p["holders"]), "node %d holds none of the blocks: %s" % (j, p["holders"])
    check_get(tool("get", peers(addrs), N, 7), True)

    # One node killed: every block still has a live replica, and the batch
    # gets it there, within the deadline.
    procs[0].send_signal(signal.SIGKILL)
    procs[0].wait()
    g = tool("get", peers(addrs), N, 7)
    check_get(g, True)
    assert g["seconds"] < 5, g

    # With R=1 the dead node's blocks (and the unstored block it would
    # own) cannot be answered: those items say UNAVAILABLE, as a get of each
    # alone does, and so does the call; the others are answered.
    g1 = tool("get", peers(addrs, 1, 1), N, 7)
    check_get(g1, False)
    assert g1["rc"] == UNAVAILABLE and UNAVAILABLE in g1["status"] and OK in g1["status"], g1

    # Puts reach the write quorum (W=1) on the live replica of each block.
    p2 = tool("put", peers(addrs), ",".join(addrs[1:]), N, 9)
    assert p2["rc"] == OK and p2["status"] == [OK] * N, p2
    assert all(len(h) >= 1 for h in p2["holders"]), p2["holders"]
    check_get(tool("get", peers(addrs), N, 9), True)

    # With W=2 a block one of whose replicas is the dead node is not
    # committed: its item fails (UNAVAILABLE), the call says so, the others
    # are stored.
    p3 = tool("put", peers(addrs, 2, 2), ",".join(addrs[1:]), N, 11)
    both_live = [i for i, h in enumerate(p3["holders"]) if len(h) == 2]
    assert p3["rc"] == UNAVAILABLE, p3
    for i, s in enumerate(p3["status"]):
        assert s == (OK if i in both_live else UNAVAILABLE), (i, p3)
    assert 0 < len(both_live) < N, p3


def calls(metrics_addr, rpc):
    # The node's count of `rpc` calls served (kvc_request_duration_seconds).
    try:
        text = urllib.request.urlopen("http://%s/metrics" % metrics_addr, timeout=5).read().decode()
    except OSError as e:
        pytest.skip("SKIPPED LOUDLY: no metrics endpoint (a build without cpp-httplib?): %s" % e)
    for line in text.splitlines():
        if line.startswith('kvc_request_duration_seconds_count{rpc="%s"}' % rpc):
            return int(float(line.split()[-1]))
    raise AssertionError("no %s count in the metrics of %s" % (rpc, metrics_addr))


def test_one_call_per_node(nodes):
    # A batch through the cluster is one Store (Load) stream per node, not one
    # per block: 48 blocks over 3 nodes, each node called once.
    addrs, _, metrics = nodes
    before = [calls(m, "Store") for m in metrics]
    p = tool("put", peers(addrs), ",".join(addrs), N, 5)
    assert p["rc"] == OK and p["status"] == [OK] * N, p
    after = [calls(m, "Store") for m in metrics]
    assert [a - b for a, b in zip(after, before)] == [1, 1, 1], (before, after)
    before = [calls(m, "Load") for m in metrics]
    g = tool("getb", peers(addrs), N, 5)
    assert g["rc"] == OK and g["status"] == [OK] * N + [NOT_FOUND], g
    after = [calls(m, "Load") for m in metrics]
    delta = [a - b for a, b in zip(after, before)]
    # Each block from its first replica; the unstored block asked of both of
    # its replicas (a miss moves on): at most two calls a node.
    assert all(1 <= d <= 2 for d in delta) and sum(delta) <= 5, delta
