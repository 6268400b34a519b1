#!/usr/bin/env python3
"""Benchmark of the Python node client against memcpy, in one run.

Starts an in-process node (kvc.NodeServer) on a free loopback port and a
unix socket, stores --blocks block shards of 1 MiB, then measures loads of
them into one numpy array:
  - NodeNamespace.get_batch, --batch blocks a request, over the same-host
    path ("unix:") and over gRPC (TCP);
  - NodeNamespace.get_into, one block a call, over both;
  - the peer: numpy.copyto of the same bytes from one array into another
    (memcpy), the bound of any copy.
Each figure is the best of --rounds rounds (the peer and the node
alternate), in GB/s, with its ratio to memcpy.

usage: bench_node.py [--seconds S] [--rounds R] [--blocks N] [--batch B] [--quick] [-o text|json]
"""

import argparse
import json
import pathlib
import sys
import tempfile
import time

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if pathlib.Path(p or ".").resolve() != HERE]
import kvc  # noqa: E402

MIB = 1 << 20
ONE_MIB = dict(model="kvc-py-node-bench", revision="1", dtype="fp16", layers=32, kv_heads=8,
               head_dim=64, block_tokens=16)


def gbps(fn, nbytes, seconds):
    """Bytes moved per second by repeated fn() (each moves nbytes)."""
    fn()  # warm
    n, t0 = 0, time.perf_counter()
    while True:
        fn()
        n += 1
        dt = time.perf_counter() - t0
        if dt >= seconds:
            return n * nbytes / dt / 1e9


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=1.0, help="length of one measurement")
    ap.add_argument("--rounds", type=int, default=3, help="rounds; the best is kept")
    ap.add_argument("--blocks", type=int, default=64, help="1 MiB blocks stored and loaded in turn")
    ap.add_argument("--batch", type=int, default=16, help="blocks per get_batch")
    ap.add_argument("--quick", action="store_true", help="short run (a smoke test)")
    ap.add_argument("-o", "--output", choices=("text", "json"), default="text")
    a = ap.parse_args()
    if a.quick:
        a.seconds, a.rounds, a.blocks, a.batch = 0.1, 1, 8, 4
    if "grpc" not in kvc.features():
        print("bench_node: SKIP: libkvc was built without gRPC", file=sys.stderr)
        return 77  # CTest's SKIP_RETURN_CODE
    if a.blocks % a.batch:
        sys.exit("bench_node: --blocks must be a multiple of --batch")

    with tempfile.TemporaryDirectory(prefix="kvc-py-node-bench-") as d, \
            kvc.NodeServer(listen="127.0.0.1:0", unix_path=f"{d}/node.sock",
                           cache=dict(host_capacity_bytes=(a.blocks + 8) * MIB)) as srv:
        results = {}
        nodes = {"unix": kvc.Node(srv.unix_address), "tcp": kvc.Node(srv.address)}
        ns = {k: n.namespace(**ONE_MIB) for k, n in nodes.items()}
        assert ns["unix"].shard_bytes == MIB
        _, keys = ns["unix"].match_tokens(np.arange(a.blocks * 16, dtype=np.uint32), keys=True)
        src = ns["unix"].new_block(a.blocks)
        src.view(np.uint8)[...] = (np.arange(src.nbytes, dtype=np.uint32) % 251).reshape(
            src.view(np.uint8).shape).astype(np.uint8)
        for i in range(0, a.blocks, a.batch):
            r = ns["unix"].put_batch(keys[i:i + a.batch], src[i:i + a.batch])
            assert all(x.ok for x in r), r
        dst = ns["unix"].new_block(a.blocks)
        nbytes = a.blocks * MIB

        def memcpy():
            np.copyto(dst, src)

        def batches(n):
            def run():
                for i in range(0, a.blocks, a.batch):
                    r = n.get_batch(keys[i:i + a.batch], dst[i:i + a.batch])
                    if not r[-1].ok:
                        raise RuntimeError(f"get_batch: {r}")
            return run

        def singles(n):
            def run():
                for i in range(a.blocks):
                    n.get_into(keys[i], dst[i])
            return run

        cases = {"memcpy": memcpy}
        for k in ("unix", "tcp"):
            cases[f"get_batch {k}"] = batches(ns[k])
            cases[f"get_into {k}"] = singles(ns[k])
        for _ in range(a.rounds):
            for name, fn in cases.items():
                results[name] = max(results.get(name, 0.0), gbps(fn, nbytes, a.seconds))
        dst[...] = 0
        batches(ns["unix"])()
        if dst.tobytes() != src.tobytes():
            sys.exit("bench_node: the loaded bytes differ from the stored ones")
        for n in nodes.values():
            n.close()

    base = results["memcpy"]
    rows = [{"case": k, "gbps": round(v, 3), "ratio_to_memcpy": round(v / base, 3)}
            for k, v in results.items()]
    if a.output == "json":
        print(json.dumps({"blocks": a.blocks, "batch": a.batch, "block_bytes": MIB, "rows": rows}))
    else:
        print(f"{a.blocks} blocks of 1 MiB, {a.batch} per batch, best of {a.rounds} x {a.seconds} s")
        for r in rows:
            print(f"  {r['case']:<16} {r['gbps']:8.2f} GB/s  {r['ratio_to_memcpy']:.2f} of memcpy")
    return 0


if __name__ == "__main__":
    sys.exit(main())
