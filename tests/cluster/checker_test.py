"""The consistency checker (checker_history.py) catches bugs.

Unit cases: hand-made histories, one per rule. Then real runs on a 3-node
loopback cluster: the real client passes; the planted bugs of the load
(fault_load --mode publish-early: a block published before its data is
written; --mode drop-revision: the revision left out of the key) are
flagged."""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
import checker_history as ch  # noqa: E402
from fault_harness import Cluster, require_tools, run_load  # noqa: E402

KEY = "00112233445566778899aabbccddeeff"
KEYS = {(0, 0, 0): KEY, (1, 0, 0): "ff" * 16}
CONFIG = {"timeout_ms": 1000}


def put(t0, t1, writer=1, seq=1, code=0, tenant=0, rev=0):
    return {"op": "put", "t0": t0, "t1": t1, "th": writer - 1, "tenant": tenant, "rev": rev, "prefix": 0,
            "block": 0, "code": code, "writer": writer, "seq": seq}


def get(t0, t1, code=0, writer=1, seq=1, tenant=0, rev=0, h_tenant=None, h_rev=None, whole=True, h_key=KEY):
    o = {"op": "get", "t0": t0, "t1": t1, "th": 9, "tenant": tenant, "rev": rev, "prefix": 0, "block": 0,
         "code": code}
    if code == 0:
        o.update({"whole": whole, "h_key": h_key, "h_tenant": tenant if h_tenant is None else h_tenant,
                  "h_rev": rev if h_rev is None else h_rev, "h_writer": writer, "h_seq": seq})
    return o


def kinds(ops, **kw):
    return ch.check(ops, KEYS, CONFIG, **kw)["violation_kinds"]


MS = 1_000_000


def test_a_clean_history_passes():
    assert kinds([put(0, 10), get(20, 30), get(40, 50, code=-2)]) == {}


def test_each_rule_is_enforced():
    assert kinds([put(0, 10), get(20, 30, whole=False)]) == {"torn": 1}
    assert kinds([put(0, 10), get(20, 30, h_tenant=1)]) == {"other-tenant": 1}
    assert "other-revision" in kinds([put(0, 10), get(20, 30, h_rev=1)])
    assert kinds([get(20, 30, writer=5, seq=7)]) == {"no-store": 1}
    assert kinds([put(40, 50), get(20, 30)]) == {"from-future": 1}
    assert kinds([put(0, 10), get(20, 30, h_key="ab" * 16)]) == {"wrong-key": 1}
    erase = {"op": "delete", "t0": 12, "t1": 15, "th": 2, "tenant": 0, "rev": 0, "prefix": 0, "block": 0, "code": 0}
    assert kinds([put(0, 10), erase, get(20, 30)]) == {"after-erase": 1}
    bump = {"op": "bump", "t0": 12, "t1": 15, "th": 2, "tenant": 0, "rev": 0, "prefix": 0, "code": 0}
    assert kinds([put(0, 10), bump, get(20, 30)]) == {"after-erase": 1}
    # A bump of another tenant's namespace, a failed delete, a read that
    # overlaps the bump: all legal.
    assert kinds([put(0, 10), dict(bump, tenant=1), get(20, 30)]) == {}
    assert kinds([put(0, 10), dict(erase, code=-16), get(20, 30)]) == {}
    assert kinds([put(0, 10), bump, get(14, 30)]) == {}
    assert kinds([put(0, 10), get(20, 20 + 1500 * MS)]) == {"deadline": 1}


def test_survivor_hits_use_placement_and_outages():
    nodes = ["127.0.0.1:7000", "127.0.0.1:7001", "127.0.0.1:7002"]
    owners = ch.owners(KEY, nodes, 2)
    assert len(set(owners)) == 2
    other = [n for n in nodes if n not in owners][0]
    misses = [put(0, 10)] + [get(20 + i, 21 + i, code=-2) for i in range(10)]
    # Every owner up: misses count against the ratio.
    assert kinds(misses, nodes=nodes) == {"survivor-hits": 1}
    # An owner was killed after the store: not expected.
    killed = [{"t": 15, "node": owners[0], "ev": "kill"}, {"t": 18, "node": owners[0], "ev": "ready"}]
    assert kinds(misses, events=killed, nodes=nodes) == {}
    # The node that is not an owner going down changes nothing.
    bystander = [{"t": 15, "node": other, "ev": "kill"}, {"t": 18, "node": other, "ev": "ready"}]
    assert kinds(misses, events=bystander, nodes=nodes) == {"survivor-hits": 1}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    require_tools()
    c = Cluster(tmp_path_factory.mktemp("checker"))
    yield c
    c.stop()


@pytest.mark.parametrize("mode,expect", [("real", None), ("publish-early", "torn"),
                                         ("drop-revision", "other-revision")])
def test_the_checker_flags_planted_bugs_and_passes_the_real_client(cluster, tmp_path, mode, expect):
    history = tmp_path / ("history-%s.jsonl" % mode)
    run_load(cluster, history, 3.0, mode=mode, threads=4, prefixes=40)
    ops, keys, config = ch.load_history(history)
    s = ch.check(ops, keys, config, nodes=cluster.addrs)
    assert s["ops"].get("hit", 0) > 50, s
    if expect is None:
        assert s["violations"] == 0, s["first_violations"]
    else:
        assert s["violation_kinds"].get(expect, 0) > 0, s
