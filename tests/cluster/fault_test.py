"""Kill -9 one node of three, 20 times, under a steady read/write load
through the cluster client (R=2, write quorum 1, 1 s deadlines); the
history must pass the consistency checker: 0 torn, foreign, other-tenant or
other-revision hits, none after a completed delete or bump, no call past its
deadline, and >= 99% hits on blocks whose replicas all survived.

Static peers here (the view never changes: the client fails over); the
etcd variant (fault_etcd_test.py) changes the view at each kill and restart."""
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import checker_history  # noqa: E402
from fault_harness import Cluster, require_tools, run_load  # noqa: E402

KILLS = int(os.environ.get("KVC_FAULT_KILLS", "20"))
SECONDS = float(os.environ.get("KVC_FAULT_SECONDS", "50"))


def kill_restart_under_load(cluster, tmp_path, address, ids):
    """Runs the load on `address` while nodes are killed and restarted in
    turn, KILLS times; returns the checker's summary."""
    history = tmp_path / "history.jsonl"
    try:
        load = run_load(cluster, history, SECONDS, threads=4, timeout_ms=1000, prefixes=200, background=True,
                        address=address)
        time.sleep(2.0)  # a warm cache first
        began = time.monotonic()
        # The kills spread over the load, leaving 3 s at the end for reads
        # of what was stored during the last outage.
        period = max(1.0, (SECONDS - 2.0 - 3.0) / KILLS)
        for k in range(KILLS):
            i = k % len(cluster.addrs)
            cluster.kill9(i)
            time.sleep(0.3 * period)
            cluster.start(i)
            time.sleep(max(0.0, began + (k + 1) * period - time.monotonic()))
        _, err = load.communicate(timeout=SECONDS + 60)
        assert load.returncode == 0, err
    finally:
        cluster.stop()
    ops, keys, config = checker_history.load_history(history)
    events = cluster.events
    s = checker_history.check(ops, keys, config, events, ids, replication=2)
    print(json.dumps(s, indent=1))
    (tmp_path / "summary.json").write_text(json.dumps(s, indent=1))
    assert sum(e["ev"] == "kill" for e in events) == KILLS
    assert s["ops"].get("put", 0) > 1000 and s["ops"].get("get", 0) > 1000, s["ops"]
    assert s["expected_hits"] > 500, s
    assert s["violations"] == 0, s["first_violations"]
    assert s["survivor_hit_ratio"] >= 0.99
    return s


def test_kill9_one_node_of_three_under_load(tmp_path):
    require_tools()
    cluster = Cluster(tmp_path)
    # Static peers: a node's id is its address.
    kill_restart_under_load(cluster, tmp_path, cluster.peers(2, 1), cluster.addrs)
