"""Bad inputs surface as the right kvc.Error subclass, with a message, and
never crash: wrong sizes, None, closed handles, short token lists, double
releases, use after close, wrong types."""

import threading

import numpy as np
import pytest

import kvc
from conftest import BT, SMALL, tokens


def test_one_class_per_code():
    from kvc import _capi
    codes = {getattr(_capi, n): n for n in dir(_capi) if n.startswith("KVC_ERR_")}
    assert len(codes) >= 17
    for code, symbol in codes.items():
        cls = kvc.error_class(code)
        assert cls is not kvc.Error and issubclass(cls, kvc.Error)
        assert getattr(kvc, cls.__name__) is cls
        assert cls.__name__ in kvc.__all__
        e = cls(code, "boom")
        assert e.code == code and e.name == symbol and str(e) == "boom"
    assert kvc.error_class(-12345) is kvc.Error
    assert issubclass(kvc.NotFoundError, KeyError)
    assert issubclass(kvc.InvalidArgumentError, ValueError)
    assert issubclass(kvc.LayoutError, ValueError)
    assert issubclass(kvc.TimeoutError, TimeoutError)
    assert kvc.InvalidArgumentError.__name__ == "InvalidArgumentError"
    assert kvc.NoSpaceError(-5, "x").name == "KVC_ERR_NO_SPACE"


def test_cache_options_errors():
    with pytest.raises(kvc.InvalidArgumentError, match="minimum"):
        kvc.Cache(host_capacity_bytes=1000)
    with pytest.raises(kvc.InvalidArgumentError, match="lru"):
        kvc.Cache(host_policy="no-such-policy", host_capacity_bytes=1 << 20, prefault=2)
    with pytest.raises(TypeError, match="unknown cache option 'capacity'"):
        kvc.Cache(capacity=1 << 20)
    with pytest.raises(TypeError, match="host_capacity_bytes"):
        kvc.Cache(host_capacity_bytes="big")
    with pytest.raises(TypeError):
        kvc.Cache(host_capacity_bytes=-1)


def test_namespace_options_errors(cache):
    bad = dict(SMALL)
    del bad["model"]
    with pytest.raises(kvc.InvalidArgumentError, match="model"):
        cache.namespace(**bad)
    with pytest.raises(kvc.LayoutError, match="dtype"):
        cache.namespace(**dict(SMALL, dtype="fp13"))
    with pytest.raises(kvc.LayoutError):
        cache.namespace(**dict(SMALL, shards=3))  # 2 heads are not a multiple of 3
    with pytest.raises(kvc.LayoutError):
        cache.namespace(**dict(SMALL, layers=0))
    with pytest.raises(kvc.InvalidArgumentError):
        cache.namespace(**dict(SMALL, hash="md5"))
    with pytest.raises(TypeError, match="unknown namespace option 'layer'"):
        cache.namespace(layer=2, **SMALL)
    with pytest.raises(TypeError, match="salt"):
        cache.namespace(**dict(SMALL, salt=12))


def test_wrong_buffers(ns):
    k = ns.keys_compute(tokens(BT))[0]
    with pytest.raises(kvc.LayoutError, match="bytes") as e:
        ns.store(k, bytes(ns.shard_bytes - 1))
    assert e.value.code == -8 and e.value.message
    with pytest.raises(kvc.LayoutError):
        ns.store(k, b"")
    with pytest.raises(kvc.InvalidArgumentError):
        ns.store(k, None)
    with pytest.raises(TypeError, match="bytes-like"):
        ns.store(k, "a string")
    assert ns.store(k, ns.new_block())
    with pytest.raises(kvc.LayoutError):
        ns.load(k, bytearray(3))
    with pytest.raises(kvc.InvalidArgumentError):
        ns.load(k, None)
    with pytest.raises((BufferError, TypeError)):
        ns.load(k, bytes(ns.shard_bytes))  # read-only
    with pytest.raises((BufferError, ValueError)):
        ns.load(k, ns.new_block(2)[:, 0])  # not contiguous
    ro = ns.new_block()
    ro.flags.writeable = False
    with pytest.raises((BufferError, ValueError)):
        ns.load(k, ro)
    ns.load(k, ns.new_block())  # the block is unchanged and loadable


def test_wrong_keys(ns):
    data = ns.new_block()
    with pytest.raises(kvc.InvalidArgumentError, match="key is 15 bytes"):
        ns.store(b"x" * 15, data)
    with pytest.raises(kvc.InvalidArgumentError):
        ns.store(None, data)
    with pytest.raises(TypeError, match="16-byte"):
        ns.load(12, data)
    with pytest.raises(kvc.InvalidArgumentError, match=r"keys\[1\] is 3 bytes"):
        ns.match([b"k" * 16, b"abc"])
    with pytest.raises(kvc.InvalidArgumentError, match="not a whole number"):
        ns.match(b"k" * 17)
    with pytest.raises(TypeError):
        ns.match(42)
    with pytest.raises(kvc.InvalidArgumentError):
        kvc.key_from_hex("xyz")
    assert ns.match([]) == 0


def test_short_and_bad_tokens(ns):
    with pytest.raises(kvc.InvalidArgumentError, match="16") as e:
        ns.match_tokens(tokens(BT - 1))
    assert "fewer" in e.value.message or "16" in e.value.message
    with pytest.raises(kvc.InvalidArgumentError):
        ns.keys_compute(tokens(BT - 1))
    with pytest.raises(kvc.InvalidArgumentError):
        ns.match_tokens([])
    with pytest.raises(kvc.InvalidArgumentError, match=r"tokens\[3\] is -1"):
        ns.match_tokens([1, 2, 3, -1] + [0] * BT)
    with pytest.raises(kvc.InvalidArgumentError, match="4294967296"):
        ns.match_tokens([2 ** 32] * BT)
    with pytest.raises(kvc.InvalidArgumentError):
        ns.match_tokens(np.full(BT, -5, dtype=np.int64))
    with pytest.raises(TypeError, match="int"):
        ns.match_tokens([1.5] * BT)
    with pytest.raises(TypeError, match="format"):
        ns.match_tokens(np.zeros(BT, dtype=np.float32))
    with pytest.raises(TypeError):
        ns.match_tokens("not tokens")
    # Other integer arrays are converted; a strided uint32 array too.
    toks = tokens(2 * BT)
    want = ns.keys_compute(toks)
    assert ns.keys_compute(np.array(toks, dtype=np.int64)) == want
    assert ns.keys_compute(np.array(toks + toks, dtype=np.uint32)[::2][:0].tolist() + toks) == want
    strided = np.repeat(np.array(toks, dtype=np.uint32), 2)[::2]
    assert not strided.flags.c_contiguous
    assert ns.keys_compute(strided) == want
    assert ns.keys_compute(tuple(np.uint32(t) for t in toks)) == want


def test_batch_errors(ns):
    keys = ns.keys_compute(tokens(4 * BT))
    with pytest.raises(kvc.InvalidArgumentError, match="4 keys but 3 buffers"):
        ns.store_batch(keys, [ns.new_block()] * 3)
    with pytest.raises(kvc.LayoutError, match="not 4 equal blocks"):
        ns.load_batch(keys, bytearray(4 * ns.shard_bytes + 1))
    bufs = [ns.new_block() for _ in keys]
    bufs[2] = bytearray(5)
    with pytest.raises(kvc.LayoutError, match="block 2"):
        ns.load_batch(keys, bufs)
    with pytest.raises(TypeError):
        ns.store_batch(keys, 5)
    with pytest.raises(kvc.InvalidArgumentError, match="shard"):
        ns.store_batch(keys, ns.new_block(4), shard=-1)
    with pytest.raises(kvc.InvalidArgumentError):
        ns.store(keys[0], ns.new_block(), shard=5)


def test_closed_namespace(cache):
    ns = cache.namespace(**SMALL)
    k = ns.keys_compute(tokens(BT))[0]
    ns.store(k, ns.new_block())
    ns.close()
    calls = [
        lambda: ns.match([k]), lambda: ns.match_tokens(tokens(BT)), lambda: ns.keys_compute(tokens(BT)),
        lambda: ns.load(k, bytearray(ns.shard_bytes)), lambda: ns.store(k, bytes(ns.shard_bytes)),
        lambda: ns.store_batch([k], bytes(ns.shard_bytes)), lambda: ns.load_batch([k], bytearray(ns.shard_bytes)),
        lambda: ns.view(k), lambda: ns.delete(k), lambda: ns.bump_revision(), lambda: ns.store_begin(k),
        lambda: ns.store_wait(k), lambda: ns.info(), lambda: ns.match_batch([[k]]),
    ]
    for call in calls:
        with pytest.raises(kvc.ClosedError, match="closed") as e:
            call()
        assert e.value.code == -7
    assert "closed" in repr(ns)


def test_closed_cache():
    c = kvc.Cache(host_capacity_bytes=1 << 20, prefault=2)
    ns = c.namespace(**SMALL)
    c.close()
    with pytest.raises(kvc.ClosedError):
        c.stats()
    with pytest.raises(kvc.ClosedError):
        c.namespace(**SMALL)
    with pytest.raises(kvc.ClosedError):
        ns.match_tokens(tokens(BT))  # closing the cache closed its namespaces


def test_reservation_misuse(ns):
    k = ns.keys_compute(tokens(BT))[0]
    r = ns.store_begin(k)
    with pytest.raises(kvc.LayoutError):
        r.write(b"short")
    with pytest.raises(kvc.InvalidArgumentError):
        r.write(None)
    r.write(ns.new_block())
    r.commit()
    with pytest.raises(kvc.ClosedError, match="committed or aborted"):
        r.write(ns.new_block())
    with pytest.raises(kvc.ClosedError):
        r.commit()
    r.abort()  # idempotent
    r2 = ns.store_begin(ns.keys_compute(tokens(BT, start=3))[0])
    del r2  # an abandoned reservation is aborted, not leaked
    assert ns.store_begin(ns.keys_compute(tokens(BT, start=3))[0]).done is False


def test_view_misuse(ns, cache):
    k = ns.keys_compute(tokens(BT))[0]
    with pytest.raises(kvc.NotFoundError):
        ns.view(k)
    ns.store(k, ns.new_block())
    v = ns.view(k)
    a = v.array()
    with pytest.raises(BufferError, match="still use"):
        v.release()  # an array still reads it
    assert cache.stats().pins == 1
    del a
    v.release()
    with pytest.raises(kvc.InvalidArgumentError, match="released") as e:
        v.release()  # double release
    assert e.value.code == -1
    with pytest.raises(BufferError, match="released"):
        v.array()
    with pytest.raises(BufferError):
        memoryview(v._block)
    v.close()
    with pytest.raises(kvc.ClosedError):
        v.array()
    with pytest.raises(TypeError):
        kvc._capi.kvc_view_release(ns._h.ptr, b"not a view")
    assert cache.stats().pins == 0


def test_messages_are_per_call_under_threads(ns):
    """Each thread's exception carries its own call's message (the kvc_error
    out-parameter, not a shared last error)."""
    errors = {}
    barrier = threading.Barrier(2)

    def run(name, size):
        barrier.wait()
        for _ in range(300):
            try:
                ns.store(b"k" * 16, bytes(size))
            except kvc.LayoutError as e:
                if str(size) not in e.message:
                    errors[name] = e.message
                    return

    ts = [threading.Thread(target=run, args=(n, s)) for n, s in (("a", 1000), ("b", 2000))]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert errors == {}
