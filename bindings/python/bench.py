#!/usr/bin/env python3
"""Benchmark of the Python binding against the C API, in one run.

Measures, with the same layout and loop as the C program bench_load.c
(built as kvc_py_bench_load):
  - loads of 1 MiB block shards into a numpy array (Namespace.load), in GB/s,
    and the C API's kvc_load rate; target: Python >= 80% of C;
  - the per-call time of match_tokens (16 tokens: one block) from a list and
    from a uint32 array, and of match on one key, against C's
    kvc_match_tokens: the binding's per-call overhead;
  - loads of 16 MiB block shards from 1 and from 2 threads: the GIL is
    released during copies, so 2 threads should beat 1 where 2 cores are free.
Each figure is the best of --rounds rounds (C and Python alternate), the
round least disturbed by other work on the machine.

usage: bench.py [--seconds S] [--rounds R] [--quick] [--c-bench PATH] [-o text|json]
"""

import argparse
import json
import os
import pathlib
import shutil
import subprocess
import sys
import threading
import time

import numpy as np

# Run from the source tree, the script's folder holds the sources of kvc/
# without the built extension: import the built package instead.
HERE = pathlib.Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if pathlib.Path(p or ".").resolve() != HERE]
import kvc  # noqa: E402

MIB = 1 << 20
ONE_MIB = dict(model="kvc-py-bench", revision="1", dtype="fp16", layers=32, kv_heads=8,
               head_dim=64, block_tokens=16)  # the layout of bench_load.c
SIXTEEN_MIB = dict(model="kvc-py-bench-16", revision="1", dtype="fp16", layers=64, kv_heads=8,
                   head_dim=128, block_tokens=64)
MATCH_TOKENS = 16


def find_c_bench(given):
    if given:
        return given
    if os.environ.get("KVC_PY_BENCH_LOAD"):
        return os.environ["KVC_PY_BENCH_LOAD"]
    for build in sorted(HERE.parents[1].glob("build*")):
        p = build / "bindings" / "python" / "kvc_py_bench_load"
        if p.exists():
            return str(p)
    return shutil.which("kvc_py_bench_load")


def run_c(path, seconds, blocks):
    out = subprocess.run([path, str(seconds), str(blocks), str(MATCH_TOKENS)], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)


def rate(fn, seconds):
    """Calls fn() (returns units done) until `seconds` pass; units per second."""
    t0 = time.perf_counter()
    units = 0
    while True:
        units += fn()
        dt = time.perf_counter() - t0
        if dt >= seconds:
            return units / dt


def stored_namespace(cache, layout, n, fill=0x5A):
    ns = cache.namespace(**layout)
    src = np.full(ns.shard_bytes, fill, dtype=np.uint8)
    keys = [(i.to_bytes(8, "little") + bytes(7) + b"\xb1") for i in range(n)]
    for k in keys:
        ns.store(k, src)
    return ns, keys


def py_load_gbps(ns, keys, seconds):
    out = ns.new_block()
    n = len(keys)
    state = {"i": 0}
    load = ns.load

    def batch():
        i = state["i"]
        for j in range(16):
            load(keys[(i + j) % n], out)
        state["i"] = i + 16
        return 16

    gbps = rate(batch, seconds) * ns.shard_bytes / 1e9
    raw = out.reshape(-1).view(np.uint8)
    assert raw[0] == 0x5A and raw[-1] == 0x5A, "loads returned other bytes"
    return gbps


def py_call_ns(fn, seconds):
    def batch():
        for _ in range(256):
            fn()
        return 256
    return 1e9 / rate(batch, seconds)


def threaded_gbps(ns, keys, threads, seconds):
    stop = time.perf_counter() + seconds
    counts = [0] * threads

    def work(t):
        out = np.empty(ns.shard_bytes, dtype=np.uint8)
        k = keys[t % len(keys)]
        while time.perf_counter() < stop:
            ns.load(k, out)
            counts[t] += 1

    ts = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    t0 = time.perf_counter()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return sum(counts) * ns.shard_bytes / (time.perf_counter() - t0) / 1e9


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=1.0, help="length of one measurement")
    ap.add_argument("--rounds", type=int, default=3, help="rounds; the best is kept")
    ap.add_argument("--blocks", type=int, default=64, help="1 MiB blocks stored and loaded in turn")
    ap.add_argument("--quick", action="store_true", help="short run (a smoke test)")
    ap.add_argument("--c-bench", help="path of kvc_py_bench_load")
    ap.add_argument("-o", "--output", choices=("text", "json"), default="text")
    args = ap.parse_args()
    if args.quick:
        args.seconds, args.rounds, args.blocks = 0.1, 1, 8
    c_bench = find_c_bench(args.c_bench)
    if not c_bench:
        sys.exit("bench.py: kvc_py_bench_load not found; build it or pass --c-bench")

    r = {"block_bytes": MIB, "c_load_gbps": 0.0, "py_load_gbps": 0.0, "c_match_ns": float("inf"),
         "py_match_list_ns": float("inf"), "py_match_array_ns": float("inf"),
         "py_match_key_ns": float("inf"), "threads1_gbps": 0.0, "threads2_gbps": 0.0}
    with kvc.Cache(host_capacity_bytes=(args.blocks + 16) * MIB) as cache:
        ns, keys = stored_namespace(cache, ONE_MIB, args.blocks)
        assert ns.shard_bytes == MIB
        toks_list = [i * 7 + 3 for i in range(MATCH_TOKENS)]  # as bench_load.c
        toks_arr = np.array(toks_list, dtype=np.uint32)
        key_list = [keys[0]]
        for _ in range(args.rounds):
            c = run_c(c_bench, args.seconds, args.blocks)
            r["c_load_gbps"] = max(r["c_load_gbps"], c["load_gbps"])
            r["c_match_ns"] = min(r["c_match_ns"], c["match_ns"])
            r["py_load_gbps"] = max(r["py_load_gbps"], py_load_gbps(ns, keys, args.seconds))
            q = args.seconds / 4
            r["py_match_list_ns"] = min(r["py_match_list_ns"], py_call_ns(lambda: ns.match_tokens(toks_list), q))
            r["py_match_array_ns"] = min(r["py_match_array_ns"], py_call_ns(lambda: ns.match_tokens(toks_arr), q))
            r["py_match_key_ns"] = min(r["py_match_key_ns"], py_call_ns(lambda: ns.match(key_list), q))
        ns.close()
    with kvc.Cache(host_capacity_bytes=48 * MIB) as cache:
        ns, keys = stored_namespace(cache, SIXTEEN_MIB, 2)
        for _ in range(args.rounds):
            r["threads1_gbps"] = max(r["threads1_gbps"], threaded_gbps(ns, keys, 1, args.seconds))
            r["threads2_gbps"] = max(r["threads2_gbps"], threaded_gbps(ns, keys, 2, args.seconds))
        ns.close()

    r["load_ratio"] = r["py_load_gbps"] / r["c_load_gbps"]
    r["load_target"] = "python >= 0.80 of C"
    r["load_target_met"] = r["load_ratio"] >= 0.80
    r["match_overhead_list_ns"] = r["py_match_list_ns"] - r["c_match_ns"]
    r["match_overhead_array_ns"] = r["py_match_array_ns"] - r["c_match_ns"]
    r["threads_ratio"] = r["threads2_gbps"] / r["threads1_gbps"]
    r["cpus"] = os.cpu_count()
    r["seconds"], r["rounds"] = args.seconds, args.rounds
    if args.output == "json":
        print(json.dumps(r, indent=2))
        return
    print(f"load 1 MiB blocks    C {r['c_load_gbps']:7.2f} GB/s   Python (numpy) {r['py_load_gbps']:7.2f} GB/s"
          f"   ratio {r['load_ratio']:.2f} ({'met' if r['load_target_met'] else 'MISSED'}: {r['load_target']})")
    print(f"match_tokens 16 tok  C {r['c_match_ns']:7.0f} ns     Python list {r['py_match_list_ns']:6.0f} ns"
          f" (+{r['match_overhead_list_ns']:.0f})   uint32 array {r['py_match_array_ns']:6.0f} ns"
          f" (+{r['match_overhead_array_ns']:.0f})")
    print(f"match 1 key          Python {r['py_match_key_ns']:6.0f} ns")
    print(f"load 16 MiB blocks   1 thread {r['threads1_gbps']:6.2f} GB/s   2 threads {r['threads2_gbps']:6.2f} GB/s"
          f"   ratio {r['threads_ratio']:.2f} ({r['cpus']} CPUs)")


if __name__ == "__main__":
    main()
