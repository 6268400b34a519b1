"""Fixtures of the kvc Python binding's tests.

Run with the build tree's package on PYTHONPATH (CTest does:
``ctest -L python``), e.g.
``PYTHONPATH=build/bindings/python /usr/bin/python3 -m pytest bindings/python/tests``.
"""

import os
import pathlib

import pytest

import kvc

SOURCE_DIR = pathlib.Path(os.environ.get("KVC_SOURCE_DIR", pathlib.Path(__file__).resolve().parents[3]))

# 2 layers, K and V, 16 tokens, 2 heads of 16, fp16: 4 KiB block shards.
SMALL = dict(model="test-model", revision="r1", dtype="fp16", layers=2, kv_heads=2,
             head_dim=16, block_tokens=16)
BT = SMALL["block_tokens"]


@pytest.fixture
def cache():
    with kvc.Cache(host_capacity_bytes=16 << 20, prefault=2) as c:
        yield c


@pytest.fixture
def ns(cache):
    with cache.namespace(**SMALL) as n:
        yield n


def tokens(n, start=1):
    """n deterministic token ids."""
    return [(i * 7 + start) & 0xFFFFFFFF for i in range(n)]


def block(ns, seed):
    """A block shard of `ns` filled from `seed`."""
    import numpy as np
    a = ns.new_block()
    a[...] = np.arange(a.size, dtype=np.float32).reshape(a.shape) % 251 + seed
    return a
