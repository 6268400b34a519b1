"""Store, match, load, view, delete and revision flows of the Python API."""

import numpy as np
import pytest

import kvc
from conftest import BT, SMALL, block, tokens


def test_library_facts():
    assert kvc.version() == kvc.__version__
    major, minor, patch = (int(x) for x in kvc.version().split("."))
    assert kvc.version_number() == major * 10000 + minor * 100 + patch
    assert {"sha256", "xxh3"} <= kvc.features()
    assert kvc.policy_default() in kvc.policy_names()
    assert kvc.status_name(kvc.NotFoundError(-2, "x").code) == "KVC_ERR_NOT_FOUND"
    assert kvc.status_str(0) == "ok"
    assert kvc.KEY_BYTES == 16


def test_namespace_facts(ns):
    assert ns.block_tokens == BT
    assert ns.shards == 1
    assert ns.shard_bytes == 2 * 2 * BT * 2 * 16 * 2  # layers, K+V, tokens, heads, dim, fp16
    assert ns.block_shape == (2, 2, BT, 2, 16)
    assert ns.numpy_dtype == "float16"
    assert ns.new_block().nbytes == ns.shard_bytes
    assert ns.new_block(3).shape == (3,) + ns.block_shape
    assert len(ns.seed) == 16
    assert ns.epoch >= 1
    assert ns.info()["shard_bytes"] == ns.shard_bytes
    assert "test-model" in repr(ns)


def test_store_match_load(ns, cache):
    toks = tokens(4 * BT + 5)
    keys = ns.keys_compute(toks)
    assert len(keys) == 4 and all(isinstance(k, bytes) and len(k) == 16 for k in keys)
    assert ns.match_tokens(toks) == 0
    assert ns.match(keys) == 0
    out = ns.new_block()
    with pytest.raises(kvc.NotFoundError) as e:
        ns.load(keys[0], out)
    assert isinstance(e.value, KeyError)
    assert e.value.code == -2 and e.value.name == "KVC_ERR_NOT_FOUND"

    b0 = block(ns, 1)
    assert ns.store(keys[0], b0) is True
    assert ns.store(keys[0], b0) is False  # already committed
    assert ns.load(keys[0], out) is out
    assert np.array_equal(out, b0)
    n, tiers = ns.match(keys, tiers=True)
    assert n == 1
    assert tiers == [kvc.Tier.HOST, kvc.Tier.NONE, kvc.Tier.NONE, kvc.Tier.NONE]

    # The rest of the chain in one call, from one (4, *block_shape) array.
    chain = np.stack([block(ns, i) for i in range(4)])
    assert ns.store_batch(keys, chain) == 3  # the first was present
    assert ns.match_tokens(toks) == 4
    n, again = ns.match_tokens(np.array(toks, dtype=np.uint32), keys=True)
    assert n == 4 and again == keys
    assert ns.match(b"".join(keys)) == 4  # one buffer of keys
    assert ns.match_batch([keys, keys[2:], []]) == [4, 2, 0]

    dst = ns.new_block(4)
    assert ns.load_batch(keys, dst) == 4
    assert np.array_equal(dst[1:], chain[1:]) and np.array_equal(dst[0], b0)
    parts = [bytearray(ns.shard_bytes) for _ in keys]
    assert ns.load_batch(keys, parts) == 4
    assert bytes(parts[3]) == chain[3].tobytes()

    # Any buffer type in and out: bytes, bytearray, memoryview.
    raw = bytes(range(256)) * (ns.shard_bytes // 256)
    k = kvc.hash_keys(tokens(BT, start=999), **SMALL)[1][0]
    assert ns.store(k, memoryview(raw))
    got = bytearray(ns.shard_bytes)
    ns.load(k, memoryview(got))
    assert bytes(got) == raw

    st = cache.stats()
    assert st.stores == 5 and st["store_exists"] >= 1
    assert st.misses_by_reason["absent"] >= 1
    assert isinstance(st, dict)


def test_delete_and_load_batch_miss(ns):
    keys = ns.keys_compute(tokens(3 * BT))
    ns.store_batch(keys, [block(ns, i) for i in range(3)])
    ns.delete(keys[1])
    with pytest.raises(kvc.NotFoundError):
        ns.delete(keys[1])
    assert ns.match(keys) == 1
    dst = ns.new_block(3)
    assert ns.load_batch(keys, dst) == 1  # a miss is not an error


def test_revision_bump(ns, cache):
    keys = ns.keys_compute(tokens(2 * BT))
    ns.store_batch(keys, ns.new_block(2))
    epoch = ns.epoch
    assert ns.bump_revision() == epoch + 1
    assert ns.epoch == epoch + 1
    assert ns.match(keys) == 0
    with pytest.raises(kvc.NotFoundError):
        ns.load(keys[0], ns.new_block())
    assert cache.stats().misses_by_reason["stale"] >= 1
    assert ns.store(keys[0], ns.new_block())  # storable again under the new epoch
    assert ns.match(keys) == 1


def test_two_phase_store(ns):
    k = ns.keys_compute(tokens(BT))[0]
    r = ns.store_begin(k)
    with pytest.raises(kvc.PendingError):
        ns.store_begin(k)
    assert ns.store(k, ns.new_block()) is False  # pending: another writer has it
    with pytest.raises(kvc.TimeoutError) as e:
        ns.store_wait(k, timeout_ms=10)
    assert isinstance(e.value, TimeoutError)
    r.abort()
    assert r.done
    assert ns.store_wait(k, timeout_ms=10) is False  # aborted
    data = block(ns, 7)
    with ns.store_begin(k, ttl_ms=60000) as r:
        r.write(data)
        r.commit()
    assert ns.store_wait(k, timeout_ms=10) is True
    with pytest.raises(kvc.ExistsError):
        ns.store_begin(k)
    out = ns.new_block()
    assert np.array_equal(ns.load(k, out), data)
    # Leaving a with block without a commit aborts.
    k2 = ns.keys_compute(tokens(BT, start=5))[0]
    with ns.store_begin(k2) as r:
        r.write(data)
    assert ns.match([k2]) == 0
    r = ns.store_begin(k2)
    with pytest.raises(kvc.InvalidArgumentError, match="nothing was written"):
        r.commit()  # the buffer holds stale bytes: refused, still open
    r.write(data)
    r.commit()
    assert np.array_equal(ns.load(k2, out), data)


def test_store_options(ns):
    keys = ns.keys_compute(tokens(2 * BT))
    assert ns.store(keys[0], ns.new_block(), ttl_ms=60000)
    assert ns.store(keys[1], ns.new_block(), parent=keys[0], reservation_timeout_ms=1000)
    assert ns.match(keys) == 2
    with pytest.raises(TypeError, match="unknown store option 'ttl'"):
        ns.store(keys[0], ns.new_block(), ttl=5)


def test_view_pin_lifetime(ns, cache):
    k = ns.keys_compute(tokens(BT))[0]
    data = block(ns, 3)
    ns.store(k, data)
    assert cache.stats().pins == 0
    v = ns.view(k)
    assert v.nbytes == ns.shard_bytes
    a = v.array()
    assert a.shape == ns.block_shape and a.dtype == np.float16
    assert not a.flags.writeable
    assert np.array_equal(a, data)
    v.close()
    assert cache.stats().pins == 1  # the array still holds it
    del a
    assert cache.stats().pins == 0

    # An array made straight from a view holds the pin by itself.
    a = ns.view(k).array()
    raw = ns.view(k).array(np.uint8, (ns.shard_bytes,))
    assert cache.stats().pins == 2
    assert raw.tobytes() == data.tobytes()
    del a, raw
    assert cache.stats().pins == 0

    # Explicit release; a deleted block stays readable through its view.
    with ns.view(k) as v:
        m = v.memoryview()
        ns.delete(k)
        assert bytes(m) == data.tobytes()
        m.release()
        v.release()
        assert v.released
        assert cache.stats().pins == 0


def test_view_outlives_close(cache):
    ns = cache.namespace(**SMALL)
    k = ns.keys_compute(tokens(BT))[0]
    data = block(ns, 9)
    ns.store(k, data)
    a = ns.view(k).array()
    ns.close()
    cache.close()
    # The view keeps the namespace and the cache's memory until it goes.
    assert np.array_equal(a, data)
    del a


def test_close_is_idempotent_and_context_managers():
    with kvc.Cache(host_capacity_bytes=1 << 20, prefault=2) as c:
        with c.namespace(**SMALL) as ns:
            assert not ns.closed
        assert ns.closed
        ns.close()
    assert c.closed
    c.close()
    assert "closed" in repr(c)


def test_salt_and_adapter_change_keys(cache):
    toks = tokens(BT)
    plain = cache.namespace(**SMALL).keys_compute(toks)
    salted = cache.namespace(salt=bytearray(b"\x00secret"), **SMALL)
    assert salted.keys_compute(toks) != plain
    assert cache.namespace(adapter="lora-1", **SMALL).keys_compute(toks) != plain
    assert cache.namespace(hash="xxh3-128", **SMALL).keys_compute(toks) != plain
    assert kvc.hash_keys(toks, salt=b"\x00secret", **SMALL)[1] == salted.keys_compute(toks)


def test_eviction_under_pressure():
    with kvc.Cache(host_capacity_bytes=1 << 20, prefault=2) as c:
        ns = c.namespace(**SMALL)
        data = ns.new_block()
        for i in range(1000):
            assert ns.store(i.to_bytes(16, "little"), data)
        counters = c.counters()
        assert counters["evictions"] > 0 and counters["stores"] == 1000
        assert counters["used_bytes"] <= counters["capacity_bytes"]
        assert len(counters["misses_by_reason"]) == 8
        assert c.stats().stores == 1000


def test_sim_run(tmp_path):
    trace = tmp_path / "trace.jsonl"
    trace.write_text('{"timestamp": 0, "input_length": 64, "output_length": 1, "hash_ids": [1, 2, 3, 4]}\n'
                     '{"timestamp": 1, "input_length": 64, "output_length": 1, "hash_ids": [1, 2, 3, 5]}\n')
    rows = kvc.sim_run(str(trace), "lru", [8])
    assert rows[0]["policy"] == "lru" and rows[0]["hits"] == 3 and rows[0]["lookups"] == 8
    with pytest.raises(kvc.Error):
        kvc.sim_run(str(tmp_path / "missing.jsonl"), "lru", [8])
