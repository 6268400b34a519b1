#!/usr/bin/env python3
"""Consistency checker of a cluster load's history (tests/cluster/fault_load.cc).

Reads the history (one JSON object per line) and, when given, the node
events of the run (kill and ready times per node address), and checks:

- every hit is whole: the block's embedded checksum matches its payload;
- every hit was written by a real store of the same key, tenant and
  revision (the writer and sequence number the block carries name a put of
  the history with those fields, begun before the read ended);
- no hit on a block after a delete of its key or a revision bump of its
  namespace that completed (began after the store ended, ended before the
  read began);
- no call ran past its deadline (timeout_ms plus a scheduling slack);
- with node events: reads of blocks whose replicas all stayed up from the
  store to the read hit at least --min-survivor-hits of the time (the
  owners are recomputed with the placement spec of libkvc/cluster/placement.h).

Prints a JSON summary; exit status 1 when a check fails.
"""
import argparse
import json
import math
import sys
from bisect import bisect_left
from collections import defaultdict

OK, NOT_FOUND, EXISTS = 0, -2, -4
MASK = (1 << 64) - 1


def splitmix64(x):
    x = (x + 0x9E3779B97F4A7C15) & MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK
    return x ^ (x >> 31)


def node_hash(node_id):
    h = 0xCBF29CE484222325
    for c in node_id.encode():
        h = ((h ^ c) * 0x100000001B3) & MASK
    return splitmix64(h)


def owners(key_hex, nodes, replication):
    """The write replicas of a key over equally weighted nodes without zones
    (a static peer list): the R best scores -1/ln(u)."""
    low = int.from_bytes(bytes.fromhex(key_hex)[:8], "little")
    scored = []
    for i, n in enumerate(nodes):
        u = ((splitmix64(low ^ node_hash(n)) >> 11) + 0.5) * 2.0 ** -53
        scored.append((-1.0 / math.log(u), -i, n))
    scored.sort(reverse=True)
    return [n for _, _, n in scored[:replication]]


def load_history(path):
    ops, keys, config = [], {}, {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            r = json.loads(line)
            if r["op"] == "key":
                keys[(r["rev"], r["prefix"], r["block"])] = r["key"]
            elif r["op"] == "config":
                config = r
            else:
                ops.append(r)
    return ops, keys, config


def down_intervals(events, end_ns):
    """Per node, the [kill, ready] intervals (a node not yet ready at the end
    stays down to the end)."""
    out = defaultdict(list)
    since = {}
    for e in sorted(events, key=lambda e: e["t"]):
        if e["ev"] == "kill" and e["node"] not in since:
            since[e["node"]] = e["t"]
        elif e["ev"] == "ready" and e["node"] in since:
            out[e["node"]].append((since.pop(e["node"]), e["t"]))
    for n, t in since.items():
        out[n].append((t, end_ns))
    return out


def check(ops, keys, config, events=None, nodes=None, replication=2, slack_ms=250.0, min_survivor_hits=0.99):
    violations = []

    def flag(kind, op, why):
        violations.append({"kind": kind, "op": op, "why": why})

    timeout_ns = config.get("timeout_ms", 1000) * 1e6
    puts = {}
    erasers = defaultdict(list)  # (tenant, rev, prefix, block) -> completed deletes
    bumps = defaultdict(list)    # (tenant, rev) -> completed bumps
    latest_ok = defaultdict(list)  # (tenant, rev, prefix, block) -> [(t1, t0)] of OK puts
    # Every delete and bump, failed ones too (they may have erased some
    # replicas): a read after one is not expected to hit.
    tried_erase = defaultdict(list)
    tried_bump = defaultdict(list)
    for o in ops:
        if o["op"] == "delete":
            tried_erase[(o["tenant"], o["rev"], o["prefix"], o["block"])].append((o["t0"], o["t1"]))
        elif o["op"] == "bump":
            tried_bump[(o["tenant"], o["rev"])].append((o["t0"], o["t1"]))
    for o in ops:
        if o["op"] == "put":
            puts[(o["writer"], o["seq"])] = o
            if o["code"] == OK:
                latest_ok[(o["tenant"], o["rev"], o["prefix"], o["block"])].append((o["t1"], o["t0"]))
        elif o["op"] == "delete" and o["code"] in (OK, NOT_FOUND):
            erasers[(o["tenant"], o["rev"], o["prefix"], o["block"])].append((o["t0"], o["t1"]))
        elif o["op"] == "bump" and o["code"] == OK:
            bumps[(o["tenant"], o["rev"])].append((o["t0"], o["t1"]))
    for v in latest_ok.values():
        v.sort()

    def erased_between(tenant, rev, prefix, block, after_ns, before_ns):
        for t0, t1 in erasers[(tenant, rev, prefix, block)] + bumps[(tenant, rev)]:
            if t0 > after_ns and t1 < before_ns:
                return True
        return False

    def touched_between(tenant, rev, prefix, block, lo, hi):
        for t0, t1 in tried_erase[(tenant, rev, prefix, block)] + tried_bump[(tenant, rev)]:
            if t0 < hi and t1 > lo:
                return True
        return False

    end_ns = max((o["t1"] for o in ops), default=0)
    down = down_intervals(events or [], end_ns)
    counts = defaultdict(int)
    max_ms = 0.0
    expected = hits_expected = 0
    for o in ops:
        counts[o["op"]] += 1
        took = o["t1"] - o["t0"]
        max_ms = max(max_ms, took / 1e6)
        if took > timeout_ns + slack_ms * 1e6:
            flag("deadline", o, "took %.1f ms, deadline %d ms" % (took / 1e6, config.get("timeout_ms", 1000)))
        if o["op"] != "get":
            continue
        tenant, rev, prefix, block = o["tenant"], o["rev"], o["prefix"], o["block"]
        if o["code"] == OK:
            counts["hit"] += 1
            if not o["whole"]:
                flag("torn", o, "the block's checksum does not match its payload (unwritten or torn data)")
                continue
            if o["h_key"] != keys.get((rev, prefix, block)):
                flag("wrong-key", o, "the block names key %s" % o["h_key"])
            if o["h_tenant"] != tenant:
                flag("other-tenant", o, "tenant %d read a block of tenant %d" % (tenant, o["h_tenant"]))
            if o["h_rev"] != rev:
                flag("other-revision", o, "revision %d read a block of revision %d" % (rev, o["h_rev"]))
            p = puts.get((o["h_writer"], o["h_seq"]))
            if p is None or (p["tenant"], p["rev"], p["prefix"], p["block"]) != (tenant, rev, prefix, block):
                flag("no-store", o, "no store of this key, tenant and revision wrote writer %d seq %d" %
                     (o["h_writer"], o["h_seq"]))
            elif p["t0"] > o["t1"]:
                flag("from-future", o, "the store began after the read ended")
            elif erased_between(tenant, rev, prefix, block, p["t1"], o["t0"]):
                flag("after-erase", o, "hit after a completed delete or revision bump")
        elif o["code"] not in (NOT_FOUND,):
            counts["get_error"] += 1
        # Expected hits: an OK store that ended before the read, nothing
        # erased since, every owner up from the store to the read.
        if nodes is None:
            continue
        stores = latest_ok.get((tenant, rev, prefix, block))
        if not stores:
            continue
        i = bisect_left(stores, (o["t0"], 0))
        if i == 0:
            continue
        p_t1, p_t0 = stores[i - 1]
        if touched_between(tenant, rev, prefix, block, p_t0, o["t1"]):
            continue
        key = keys.get((rev, prefix, block))
        if any(lo < o["t1"] and hi > p_t0 for n in owners(key, nodes, replication) for lo, hi in down.get(n, [])):
            continue
        expected += 1
        hits_expected += o["code"] == OK
    ratio = hits_expected / expected if expected else 1.0
    if nodes is not None and expected and ratio < min_survivor_hits:
        violations.append({"kind": "survivor-hits", "op": None,
                           "why": "%.4f of %d expected hits (need %.2f)" % (ratio, expected, min_survivor_hits)})
    kinds = defaultdict(int)
    for v in violations:
        kinds[v["kind"]] += 1
    return {
        "ops": dict(counts),
        "max_call_ms": round(max_ms, 1),
        "expected_hits": expected,
        "survivor_hit_ratio": round(ratio, 5),
        "violations": len(violations),
        "violation_kinds": dict(kinds),
        "first_violations": violations[:5],
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("history")
    ap.add_argument("--events", help="node events: JSON lines {t, node, ev: kill|ready}")
    ap.add_argument("--nodes", help="the peers, comma-separated (node ids = addresses)")
    ap.add_argument("--replication", type=int, default=2)
    ap.add_argument("--slack-ms", type=float, default=250.0)
    ap.add_argument("--min-survivor-hits", type=float, default=0.99)
    a = ap.parse_args()
    ops, keys, config = load_history(a.history)
    events = None
    if a.events:
        with open(a.events) as f:
            events = [json.loads(x) for x in f if x.strip()]
    nodes = a.nodes.split(",") if a.nodes else None
    s = check(ops, keys, config, events, nodes, a.replication, a.slack_ms, a.min_survivor_hits)
    print(json.dumps(s, indent=1))
    return 1 if s["violations"] else 0


if __name__ == "__main__":
    sys.exit(main())
