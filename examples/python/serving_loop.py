#!/usr/bin/env python3
"""kvc in an inference engine's serving loop, in Python with numpy.

The engine keeps each request's KV as a numpy array of blocks shaped like a
real layer-major KV block: (layers, 2, block_tokens, kv_heads, head_dim),
K then V, fp16. For each request: match the prompt against the cache, load
the cached prefix straight into that array, "compute" the rest (a
deterministic stand-in for prefill), and store the new blocks. Three
requests share a system prompt; the second hits its blocks, the third (a
repeat of the first) hits every full block. Exits 1 if it does not.

Run with the kvc package importable (installed, or PYTHONPATH=<build>/bindings/python).
"""

import sys
from typing import Sequence

import numpy as np
import numpy.typing as npt

import kvc

BLOCK_TOKENS = 16
SYSTEM = [1000 + i * 13 for i in range(64)]


def compute_block(key: bytes, shape: Sequence[int]) -> npt.NDArray[np.float16]:
    """The engine's prefill, standing in: a block's KV is a function of its
    key, that is of the whole token prefix the block ends."""
    rng = np.random.default_rng(int.from_bytes(key[:8], "little"))
    return rng.standard_normal(shape, dtype=np.float32).astype(np.float16)


def serve(ns: kvc.Namespace, request: int, prompt: Sequence[int]) -> int:
    """Serves one request; returns the number of blocks found in the cache."""
    tokens = np.asarray(prompt, dtype=np.uint32)  # used in place by kvc
    hit, keys = ns.match_tokens(tokens, keys=True)
    kv = ns.new_block(len(keys))  # (blocks, layers, 2, block_tokens, kv_heads, head_dim)
    # Load the cached prefix into kv[:hit] (a block evicted since the match
    # is a miss: loaded < hit, and the engine computes it instead).
    loaded = ns.load_batch(keys[:hit], kv[:hit]) if hit else 0
    for i in range(loaded):
        if not np.array_equal(kv[i], compute_block(keys[i], ns.block_shape)):
            sys.exit(f"serving_loop: block {i} loaded from the cache differs")
    for i in range(loaded, len(keys)):
        kv[i] = compute_block(keys[i], ns.block_shape)
    stored = ns.store_batch(keys[loaded:], kv[loaded:]) if loaded < len(keys) else 0
    print(f"request {request}: {len(tokens):3d} tokens, {len(keys)} full blocks: "
          f"{loaded} from the cache, {len(keys) - loaded} computed, {stored} stored")
    return loaded


def main() -> int:
    with kvc.Cache(host_capacity_bytes=64 << 20) as cache:
        ns = cache.namespace(model="example/llama-tiny", revision="v1", dtype="fp16", layers=4,
                             kv_heads=4, head_dim=64, block_tokens=BLOCK_TOKENS)
        print(f"kvc {kvc.version()}: blocks of shape {ns.block_shape} {ns.numpy_dtype} "
              f"({ns.shard_bytes} bytes), {ns.block_tokens} tokens each")
        a = SYSTEM + [50000 + i * 7 for i in range(45)]
        b = SYSTEM + [90000 + i * 3 for i in range(37)]
        hits = [serve(ns, 1, a), serve(ns, 2, b), serve(ns, 3, a)]

        # A zero-copy read of a cached block: the array pins it while alive.
        key = ns.keys_compute(SYSTEM)[0]
        layer0_k = ns.view(key).array()[0, 0]  # layer 0, K: (block_tokens, kv_heads, head_dim)
        assert np.array_equal(layer0_k, compute_block(key, ns.block_shape)[0, 0])
        pins = cache.stats().pins
        del layer0_k
        stats = cache.stats()
        print(f"zero-copy view of layer 0's K: {pins} pin while the array lived, {stats.pins} after; "
              f"{stats.stores} blocks stored, {stats.hits} hits, {stats.misses} misses")

    full = len(a) // BLOCK_TOKENS
    ok = hits == [0, len(SYSTEM) // BLOCK_TOKENS, full] and pins == 1 and stats.pins == 0
    print(f"{'ok' if ok else 'FAILED'}: the second request reused {hits[1]} blocks of the system "
          f"prompt, the repeat {hits[2]} of {full}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
