"""The node client (kvc.Node, kvc.NodeNamespace) against in-process nodes
(kvc.NodeServer on a free loopback port and a unix socket in a temp dir),
over TCP and over the same-host path: the same calls, the same answers.

Skipped, with the reason, when libkvc was built without gRPC; then
test_without_grpc checks the calls say so instead.
"""

import itertools
import re
import threading
import time

import numpy as np
import pytest

import kvc
from kvc import capi

from conftest import SMALL, tokens

GRPC = "grpc" in kvc.features()
needs_grpc = pytest.mark.skipif(
    not GRPC, reason="libkvc was built without gRPC (KVC_WITH_GRPC=OFF or gRPC not found): "
                     "no node to test; test_without_grpc checks the calls refuse")

_models = itertools.count()


def fresh(node, **extra):
    """A namespace of `node` no other test uses."""
    return node.namespace(**dict(SMALL, model=f"node-test-{next(_models)}", **extra))


def filled(ns, seed, count=None):
    a = ns.new_block(count)
    a.view(np.uint8)[...] = (np.arange(a.nbytes, dtype=np.uint32).reshape(a.view(np.uint8).shape)
                             * 7 + seed) % 251
    return a


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    if not GRPC:
        pytest.skip("libkvc was built without gRPC")
    d = tmp_path_factory.mktemp("node")
    with kvc.NodeServer(listen="127.0.0.1:0", unix_path=str(d / "node.sock"),
                        cache=dict(host_capacity_bytes=32 << 20)) as s:
        yield s


@pytest.fixture(params=["tcp", "unix"])
def node(request, server):
    addr = server.address if request.param == "tcp" else server.unix_address
    with kvc.Node(addr, timeout_ms=5000) as n:
        yield n


@needs_grpc
def test_server_address(server):
    assert re.fullmatch(r"127\.0\.0\.1:\d+", server.address) and not server.address.endswith(":0")
    assert server.unix_address.startswith("unix:/") and server.unix_address.endswith("node.sock")
    assert server.metrics_address == "" and not server.stopped
    assert repr(server).startswith("<kvc.NodeServer '127.0.0.1:")


@needs_grpc
def test_put_then_get_byte_exact(node):
    ns = fresh(node)
    assert ns.shard_bytes == 4096 and ns.block_shape == (2, 2, 16, 2, 16)
    n, keys = ns.match_tokens(tokens(4 * 16), keys=True)
    assert n == 0 and len(keys) == 4
    src = filled(ns, 1)
    assert ns.put(keys[0], src) is True
    assert ns.put(keys[0], filled(ns, 9)) is False  # already stored: kept as it was

    out = ns.new_block()  # numpy destination, in place
    assert ns.get_into(keys[0], out) == 4096
    assert out.tobytes() == src.tobytes() and out.dtype == np.float16
    assert ns.get(keys[0]) == src.tobytes() and type(ns.get(keys[0])) is bytes
    assert ns.get_into(keys[0], None) == 4096  # the size only

    # A bytearray and a memoryview into a bigger buffer are written in place.
    big = bytearray(b"\xAA" * (4096 + 32))
    assert ns.get_into(keys[0], memoryview(big)[16:16 + 4096]) == 4096
    assert big[:16] == b"\xAA" * 16 and big[-16:] == b"\xAA" * 16
    assert bytes(big[16:16 + 4096]) == src.tobytes()
    # A larger destination is fine; the size says how much was written.
    assert ns.get_into(keys[0], bytearray(8192)) == 4096

    # Sources: bytes, a bytearray, a memoryview of a numpy array.
    assert ns.put(keys[1], src.tobytes(), ttl_ms=60_000, parent=keys[0]) is True
    assert ns.put(keys[2], bytearray(filled(ns, 3).tobytes())) is True
    assert ns.put(keys[3], memoryview(filled(ns, 4)).cast("B")) is True
    assert ns.get(keys[1]) == src.tobytes()
    assert ns.get(keys[2]) == filled(ns, 3).tobytes()
    assert ns.get(keys[3]) == filled(ns, 4).tobytes()


@needs_grpc
def test_miss(node):
    ns = fresh(node)
    key = b"\x01" * 16
    out = bytearray(b"\xEE" * 4096)
    with pytest.raises(kvc.NotFoundError) as e:
        ns.get_into(key, out)
    assert e.value.code == capi.KVC_ERR_NOT_FOUND and e.value.name == "KVC_ERR_NOT_FOUND"
    assert e.value.message and isinstance(e.value, KeyError)
    assert out == bytearray(b"\xEE" * 4096)  # left as it was
    with pytest.raises(KeyError):
        ns.get(key)
    assert ns.match([key]) == 0
    assert ns.match([key], tiers=True) == (0, [kvc.Tier.NONE])


@needs_grpc
def test_match(node):
    ns = fresh(node)
    toks = tokens(3 * 16 + 5)
    n, keys = ns.match_tokens(toks, keys=True)
    # A node without tenants names blocks as an embedded cache does.
    assert n == 0 and keys == kvc.hash_keys(toks, **ns.options)[1]
    assert ns.match_tokens(np.asarray(toks, dtype=np.uint32)) == 0
    ns.put(keys[0], filled(ns, 1))
    ns.put(keys[1], filled(ns, 2), parent=keys[0])
    assert ns.match_tokens(toks) == 2
    assert ns.match(keys) == 2
    assert ns.match(b"".join(keys)) == 2  # one buffer of n * 16 bytes
    count, tiers = ns.match(keys, tiers=True)
    assert count == 2 and tiers == [kvc.Tier.HOST, kvc.Tier.HOST, kvc.Tier.NONE]
    assert ns.match(keys[1:]) == 1 and ns.match(keys[2:]) == 0
    with pytest.raises(kvc.InvalidArgumentError, match="15 bytes"):
        ns.match([b"k" * 15])
    assert ns.match([]) == 0 and ns.match([], tiers=True) == (0, [])
    # Fewer tokens than a block: refused, as by an embedded namespace.
    with pytest.raises(kvc.InvalidArgumentError, match="at least one block"):
        ns.match_tokens(tokens(3), keys=True)


@needs_grpc
def test_batches(node):
    ns = fresh(node)
    _, keys = ns.match_tokens(tokens(7 * 16), keys=True)
    src = filled(ns, 5, 6)  # (6, *block_shape): one buffer, 6 equal parts

    assert ns.put_batch([], b"") == [] and ns.get_batch([], []) == []
    put = ns.put_batch(keys[:4], src[:4])
    assert put == [(0, 0)] * 4 and all(r.ok and r.name == "KVC_OK" for r in put)
    assert ns.match(keys) == 4
    # An existing block is an item's status, not a failure of the call.
    again = ns.put_batch(keys[3:6], [src[3], src[4].tobytes(), bytearray(src[5].tobytes())])
    assert [r.status for r in again] == [capi.KVC_ERR_EXISTS, 0, 0]
    assert again[0].name == "KVC_ERR_EXISTS" and isinstance(again[0].error(), kvc.ExistsError)
    assert again[1].error() is None
    assert ns.match(keys) == 6

    # Hits, a miss, a too-small buffer and a size query in one request.
    outs = [ns.new_block() for _ in range(4)]
    small = bytearray(100)
    miss = bytearray(b"\xEE" * 4096)
    got = ns.get_batch([keys[0], keys[6], keys[1], keys[2], keys[3], keys[4]],
                       [outs[0], miss, small, None, memoryview(outs[2]).cast("B"), outs[3]])
    assert [r.status for r in got] == [0, capi.KVC_ERR_NOT_FOUND, capi.KVC_ERR_LAYOUT, 0, 0, 0]
    assert [r.len for r in got] == [4096, 0, 4096, 4096, 4096, 4096]
    assert got[1].name == "KVC_ERR_NOT_FOUND" and not got[1].ok
    assert isinstance(got[1].error(), kvc.NotFoundError) and isinstance(got[2].error(), kvc.LayoutError)
    assert miss == bytearray(b"\xEE" * 4096)  # a miss leaves its destination
    assert outs[0].tobytes() == src[0].tobytes()
    assert outs[2].tobytes() == src[3].tobytes() and outs[3].tobytes() == src[4].tobytes()

    # One destination of n blocks, written in place.
    dst = ns.new_block(6)
    assert all(r.ok for r in ns.get_batch(keys[:6], dst))
    assert dst.tobytes() == src.tobytes()
    # Keys as one buffer, with a chain's parents given explicitly.
    _, more = ns.match_tokens(tokens(2 * 16, start=99), keys=True)
    assert all(r.ok for r in ns.put_batch(b"".join(more), src[:2], parents=[keys[5], None]))
    assert ns.get(more[1]) == src[1].tobytes()


@needs_grpc
def test_batch_failures_of_the_whole_call(node):
    ns = fresh(node)
    _, keys = ns.match_tokens(tokens(3 * 16), keys=True)
    good = filled(ns, 1)
    # A short source: the call is refused before anything is stored, and
    # every item says so.
    with pytest.raises(kvc.InvalidArgumentError) as e:
        ns.put_batch(keys[:2], [good, good.tobytes()[:-1]])
    assert e.value.code == capi.KVC_ERR_INVALID_ARGUMENT and "items[1].buf" in e.value.message
    assert [r.status for r in e.value.items] == [capi.KVC_ERR_INVALID_ARGUMENT] * 2
    assert ns.match(keys) == 0
    # Too many items.
    many = [bytes([i % 256, i // 256]) * 8 for i in range(kvc.NODE_MAX_BATCH + 1)]
    with pytest.raises(kvc.InvalidArgumentError, match="KVC_NODE_MAX_BATCH"):
        ns.get_batch(many, [None] * len(many))
    # Inputs the binding checks: buffer counts, a buffer not of n parts, a
    # read-only destination.
    with pytest.raises(kvc.InvalidArgumentError, match="2 keys but 1 buffers"):
        ns.put_batch(keys[:2], [good])
    with pytest.raises(kvc.LayoutError, match="not 2 equal blocks"):
        ns.get_batch(keys[:2], bytearray(4097))
    with pytest.raises((TypeError, BufferError)):
        ns.get_batch(keys[:1], [bytes(4096)])
    with pytest.raises(kvc.InvalidArgumentError, match="1 parents"):
        ns.put_batch(keys[:2], [good, good], parents=[None])
    assert ns.match(keys) == 0


@needs_grpc
def test_bad_single_calls(node):
    ns = fresh(node)
    key = b"\x02" * 16
    ns.put(key, filled(ns, 2))
    with pytest.raises(kvc.LayoutError) as e:
        ns.get_into(key, bytearray(100))
    assert e.value.code == capi.KVC_ERR_LAYOUT and e.value.message
    with pytest.raises(kvc.LayoutError, match="4096"):
        ns.put(b"\x03" * 16, bytes(4095))
    with pytest.raises((TypeError, BufferError)):
        ns.get_into(key, bytes(4096))  # read-only
    with pytest.raises(TypeError):
        ns.put(b"\x03" * 16, "not bytes")
    assert ns.match([b"\x03" * 16]) == 0  # nothing stored by the bad puts
    with pytest.raises(kvc.LayoutError, match="fp7"):
        node.namespace(**dict(SMALL, dtype="fp7"))
    with pytest.raises(kvc.InvalidArgumentError, match="salt"):
        node.namespace(**SMALL, salt=b"s")
    with pytest.raises(kvc.InvalidArgumentError, match="tenant, credential"):
        node.namespace(**SMALL, tenant="t", credential="c")
    with pytest.raises(TypeError, match="unknown node option 'timeout'"):
        kvc.Node("127.0.0.1:1", timeout=5)


@needs_grpc
def test_delete(node):
    ns = fresh(node)
    key = b"\x04" * 16
    ns.put(key, filled(ns, 4))
    ns.delete(key)
    with pytest.raises(kvc.NotFoundError):
        ns.get(key)
    with pytest.raises(kvc.NotFoundError) as e:
        ns.delete(key)
    assert e.value.code == capi.KVC_ERR_NOT_FOUND
    assert ns.put(key, filled(ns, 5)) is True  # storable again
    assert ns.get(key) == filled(ns, 5).tobytes()


@needs_grpc
def test_bump_revision_hides_blocks(node):
    ns = fresh(node)
    other = fresh(node)
    _, keys = ns.match_tokens(tokens(2 * 16), keys=True)
    ns.put_batch(keys, filled(ns, 1, 2))
    other.put(keys[0], filled(other, 2))
    assert ns.match(keys) == 2
    e1 = ns.bump_revision()
    assert ns.match(keys) == 0 and ns.match_tokens(tokens(2 * 16)) == 0
    with pytest.raises(kvc.NotFoundError):
        ns.get(keys[0])
    assert other.match(keys[:1]) == 1  # another namespace keeps its blocks
    assert ns.bump_revision() == e1 + 1
    assert ns.put(keys[0], filled(ns, 3)) is True  # stored again, visible
    assert ns.get(keys[0]) == filled(ns, 3).tobytes()


@needs_grpc
def test_stats(node):
    ns = fresh(node)
    ns.put(b"\x05" * 16, filled(ns, 1))
    st = node.stats()
    assert st["scope"] == "node" and st.scope == "node"
    assert isinstance(st, dict) and "stores" in st


@needs_grpc
def test_close_twice_and_use_after_close(server):
    node = kvc.Node(server.address)
    ns = fresh(node)
    key = b"\x06" * 16
    ns.put(key, filled(ns, 1))
    node.close()
    node.close()  # idempotent
    assert node.closed and ns.closed and "closed" in repr(node)
    for call in (node.stats, lambda: node.namespace(**SMALL), lambda: ns.get(key),
                 lambda: ns.match([key]), lambda: ns.get_batch([key], [None]),
                 lambda: node.tenant_list()):
        with pytest.raises(kvc.ClosedError) as e:
            call()
        assert e.value.code == capi.KVC_ERR_CLOSED and "closed" in e.value.message
    with kvc.Node(server.unix_address) as n2:  # a with block closes it
        pass
    assert n2.closed
    with pytest.raises(kvc.ClosedError):
        n2.stats()


@needs_grpc
def test_close_while_another_thread_calls(server):
    """A call in flight keeps the connection until it returns."""
    node = kvc.Node(server.address)
    ns = fresh(node)
    _, keys = ns.match_tokens(tokens(16 * 16), keys=True)
    ns.put_batch(keys, filled(ns, 1, 16))
    errors = []

    def reader():
        out = ns.new_block(16)
        try:
            for _ in range(50):
                ns.get_batch(keys, out)
        except kvc.ClosedError:
            pass
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    t = threading.Thread(target=reader)
    t.start()
    time.sleep(0.01)
    node.close()
    t.join(10)
    assert not t.is_alive() and errors == []


@needs_grpc
def test_unreachable_node():
    srv = kvc.NodeServer(listen="127.0.0.1:0", cache=dict(host_capacity_bytes=1 << 20))
    addr = srv.address
    srv.stop()
    srv.stop()  # idempotent
    assert srv.stopped
    t = time.monotonic()
    with pytest.raises(kvc.UnavailableError) as e:
        kvc.Node(addr, connect_timeout_ms=300)
    assert time.monotonic() - t < 5
    assert e.value.code == capi.KVC_ERR_UNAVAILABLE and addr in e.value.message


@needs_grpc
def test_server_bad_options(tmp_path):
    with pytest.raises(TypeError, match="unknown node server option 'port'"):
        kvc.NodeServer(port=1)
    with pytest.raises(TypeError, match="unknown cache option"):
        kvc.NodeServer(listen="127.0.0.1:0", cache=dict(capacity=1))
    with kvc.NodeServer(listen="127.0.0.1:0", cache=dict(host_capacity_bytes=1 << 20)) as s:
        with pytest.raises(kvc.UnavailableError):
            kvc.NodeServer(listen=s.address)  # the port is taken


@needs_grpc
def test_tenants_and_credentials(tmp_path):
    tenants = str(tmp_path / "tenants.json")
    kvc.tenant_create(tenants, name="acme")
    with kvc.NodeServer(listen="127.0.0.1:0", unix_path=str(tmp_path / "t.sock"),
                        admin_token="admin-secret", cache=dict(host_capacity_bytes=16 << 20,
                                                               tenants_path=tenants)) as srv:
        with kvc.Node(srv.address, admin_token="admin-secret") as admin:
            cred = admin.tenant_create(name="carol", host_quota_bytes=4 << 20)
            assert isinstance(cred, str) and cred
            with pytest.raises(kvc.ExistsError):
                admin.tenant_create(name="carol")
            admin.tenant_set_quota("carol", host_quota_bytes=8 << 20)
            by_name = {t["name"]: t for t in admin.tenant_list()}
            assert set(by_name) == {"acme", "carol"}
            assert by_name["carol"]["host_quota_bytes"] == 8 << 20
            assert "credential" not in by_name["carol"]
            with pytest.raises(kvc.NotFoundError):
                admin.tenant_set_quota("nobody", host_quota_bytes=1)
            assert admin.stats().scope == "node"

        toks = tokens(2 * 16)
        for addr in (srv.address, srv.unix_address):
            with kvc.Node(addr, tenant="carol", credential=cred) as carol:
                ns = fresh(carol)
                _, keys = ns.match_tokens(toks, keys=True)
                # An isolated tenant's keys are salted by the node.
                assert keys != kvc.hash_keys(toks, **ns.options)[1]
                ns.put(keys[0], filled(ns, 7))
                assert ns.get(keys[0]) == filled(ns, 7).tobytes()
                assert carol.stats().scope == "tenant"
                # A tenant cannot administer; the same-host path offers no
                # administration at all.
                with pytest.raises(kvc.UnsupportedError if addr.startswith("unix:")
                                   else kvc.PermissionError):
                    carol.tenant_list()
            with kvc.Node(addr, tenant="carol", credential=cred + "x") as wrong:
                wns = wrong.namespace(**ns.options)
                with pytest.raises(kvc.PermissionError) as e:
                    wns.get(keys[0])
                assert e.value.code == capi.KVC_ERR_PERMISSION and "credential" in e.value.message
                assert isinstance(e.value, PermissionError)
                with pytest.raises(kvc.PermissionError) as e:
                    wns.get_batch(keys[:1], [None])
                assert [r.status for r in e.value.items] == [capi.KVC_ERR_PERMISSION]
                with pytest.raises(kvc.PermissionError):
                    wns.put(keys[1], filled(ns, 1))
            with kvc.Node(addr) as nobody:
                with pytest.raises(kvc.PermissionError):
                    nobody.namespace(**ns.options).match(keys)
        with kvc.Node(srv.address, admin_token="wrong-secret") as bad_admin:
            with pytest.raises(kvc.PermissionError):
                bad_admin.tenant_create(name="mallory")
        with kvc.Node(srv.address, admin_token="admin-secret") as admin:
            admin.tenant_delete("carol")
            assert [t["name"] for t in admin.tenant_list()] == ["acme"]
        with kvc.Node(srv.address, tenant="carol", credential=cred) as carol:
            with pytest.raises(kvc.PermissionError):
                carol.namespace(**ns.options).match(keys)


@needs_grpc
def test_admin_calls_on_a_node_without_tenants(server):
    # The module's node has no admin token: admin calls are refused.
    with kvc.Node(server.address, admin_token="x") as n:
        with pytest.raises(kvc.PermissionError, match="admin token") as e:
            n.tenant_create(name="acme")
        assert e.value.code == capi.KVC_ERR_PERMISSION
    # An admin token but no tenants file: unsupported.
    with kvc.NodeServer(listen="127.0.0.1:0", admin_token="adm",
                        cache=dict(host_capacity_bytes=1 << 20)) as s:
        with kvc.Node(s.address, admin_token="adm") as n:
            with pytest.raises(kvc.UnsupportedError) as e:
                n.tenant_list()
            assert e.value.code == capi.KVC_ERR_UNSUPPORTED and e.value.message


@pytest.mark.skipif(GRPC, reason="libkvc has gRPC: the node tests above run instead")
def test_without_grpc():
    with pytest.raises(kvc.UnsupportedError, match="built without gRPC"):
        kvc.NodeServer(listen="127.0.0.1:0")
    with pytest.raises(kvc.UnsupportedError, match="built without gRPC"):
        kvc.Node("127.0.0.1:1")


def stub_options(text, cls, marker):
    at = text.index(marker, text.index(cls))
    block = text[at:text.index(")", text.index("*,", at))]
    return tuple(re.findall(r"^\s+(\w+): Optional", block, re.M))


def test_stub_node_options_follow_the_structs():
    import pathlib
    text = pathlib.Path(kvc.__file__).with_name("__init__.pyi").read_text()
    assert stub_options(text, "class Node:", "def __init__(") == kvc.option_names(capi.kvc_node_options)
    assert (stub_options(text, "class NodeServer:", "def __init__(")
            == kvc.option_names(capi.kvc_node_server_options))
    ns_fields = stub_options(text, "class Node:", "def namespace(")
    assert ns_fields == tuple(n for n in kvc.option_names(capi.kvc_namespace_options)
                              if n not in ("tenant", "credential", "salt", "default_ttl_ms",
                                           "write_mode"))
    assert stub_options(text, "class NodeNamespace:", "def put(") == kvc.option_names(capi.kvc_store_options)
    for cls in (kvc.Node, kvc.NodeNamespace, kvc.NodeServer, kvc.ItemResult):
        assert cls.__doc__
        for name, member in vars(cls).items():
            if not name.startswith("_") and callable(member):
                assert member.__doc__, f"{cls.__name__}.{name}"


TYPED_NODE_USE = '''
import numpy as np
import kvc

def use(prompt: list[int]) -> int:
    with kvc.NodeServer(listen="127.0.0.1:0", unix_path="/tmp/x.sock",
                        cache={"host_capacity_bytes": 1 << 20}) as srv:
        addr: str = srv.address
        with kvc.Node(addr, tenant=None, timeout_ms=1000, max_retries=kvc.NODE_NO_RETRIES) as node:
            ns = node.namespace(model="m", revision="r", dtype="fp16", layers=2, kv_heads=2,
                                head_dim=16, block_tokens=16)
            hit, keys = ns.match_tokens(np.asarray(prompt, dtype=np.uint32), keys=True)
            count, tiers = ns.match(keys, tiers=True)
            where: kvc.Tier = tiers[0]
            stored: bool = ns.put(keys[0], ns.new_block(), ttl_ms=10, parent=None)
            size: int = ns.get_into(keys[0], ns.new_block())
            data: bytes = ns.get(keys[0])
            results = ns.get_batch(keys, ns.new_block(len(keys)))
            ok: bool = results[0].ok
            status: int = results[0].status
            put = ns.put_batch(keys, [ns.new_block()] * len(keys), parents=None, ttl_ms=5)
            epoch: int = ns.bump_revision()
            cred: str = node.tenant_create(name="t", host_quota_bytes=1)
            scope: str = node.stats().scope
            try:
                ns.delete(keys[0])
            except kvc.NotFoundError as e:
                code: int = e.code
            return hit + count + size + len(data) + len(put) + epoch + status
'''


def test_typed_node_use_passes_mypy_strict(tmp_path):
    """The stub's node classes check clean under mypy --strict (skipped where
    Debian's python3-mypy is not installed)."""
    import os
    import pathlib
    import subprocess
    import sys
    pytest.importorskip("mypy")
    use = tmp_path / "typed_node_use.py"
    use.write_text(TYPED_NODE_USE)
    env = dict(os.environ, MYPYPATH=str(pathlib.Path(kvc.__file__).parents[1]))
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--cache-dir", os.devnull,
         str(use)], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
