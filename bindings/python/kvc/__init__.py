"""kvc: a tiered KV cache for LLM inference (Python binding).

The binding sits on the C ABI (``capi/kvc.h``) only, through the SWIG module
:mod:`kvc.capi`. Thread-safety follows the C types: :class:`Cache` and
:class:`Namespace` may be used from any number of threads at once; a
:class:`Reservation` or a :class:`View` by one thread at a time. Every call
that can block or copy releases the GIL.

Quick start::

    import kvc, numpy as np

    with kvc.Cache(host_capacity_bytes=1 << 30) as cache:
        ns = cache.namespace(model="llama", revision="r1", dtype="fp16",
                             layers=32, kv_heads=8, head_dim=128, block_tokens=16)
        blocks, keys = ns.match_tokens(prompt, keys=True)
        out = ns.new_block()                  # numpy array, ns.block_shape
        ns.load(keys[0], out)                 # copy into a caller's buffer
        arr = ns.view(keys[0]).array()        # or zero-copy, pinned while arr lives

Errors: every failed status raises the :class:`Error` subclass of its code
(``KVC_ERR_NOT_FOUND`` raises :class:`NotFoundError`, which is also a
:class:`KeyError`; ``KVC_ERR_INVALID_ARGUMENT`` raises
:class:`InvalidArgumentError`, also a :class:`ValueError`, and so on). The
classes are made at import from the ``KVC_ERR_*`` constants of the header.
A miss is not an error for :meth:`Namespace.match` (it returns 0) nor for
:meth:`Namespace.load_batch` (it returns how many leading blocks it loaded);
:meth:`Namespace.load`, :meth:`Namespace.view` and :meth:`Namespace.delete`
raise :class:`NotFoundError` on a miss, as ``dict[key]`` raises ``KeyError``.
"""

from __future__ import annotations

import enum as _enum
import json as _json
import weakref as _weakref

from . import _capi as _c
from . import _naming
from . import capi as _structs

KEY_BYTES: int = _c.KVC_KEY_BYTES
"""Bytes of a block key."""

__version__: str = _c.kvc_version()


# --------------------------------------------------------------------------
# Errors: one class per KVC_ERR_* code of the header.
# --------------------------------------------------------------------------


class Error(Exception):
    """A kvc call failed.

    Attributes:
        code: the status, a negative ``KVC_ERR_*`` value.
        name: the status's symbol, e.g. ``"KVC_ERR_LAYOUT"``.
        message: what the library said was wrong.
    """

    def __init__(self, code: int, message: str) -> None:
        super().__init__(code, message)
        self.code = code
        self.message = message

    @property
    def name(self) -> str:
        return _c.kvc_status_name(self.code)

    def __str__(self) -> str:
        return self.message


def _make_error_classes() -> dict:
    by_code = {}
    for symbol in sorted(n for n in dir(_c) if n.startswith(_naming.PREFIX)):
        code = getattr(_c, symbol)
        name = _naming.class_name(symbol)
        cls = type(name, (Error,) + _naming.also(symbol), {
            "__doc__": f"{symbol}: {_c.kvc_status_str(code)}.",
            "__module__": __name__,
            "__str__": Error.__str__,
        })
        by_code[code] = cls
        globals()[name] = cls
    return by_code


_ERRORS: dict = _make_error_classes()
_c.pykvc_set_errors(Error, _ERRORS)

_Closed = _ERRORS[_c.KVC_ERR_CLOSED]
_InvalidArgument = _ERRORS[_c.KVC_ERR_INVALID_ARGUMENT]
_NotFound = _ERRORS[_c.KVC_ERR_NOT_FOUND]
_Exists = _ERRORS[_c.KVC_ERR_EXISTS]
_Pending = _ERRORS[_c.KVC_ERR_PENDING]


def error_class(code: int) -> type:
    """The Error subclass raised for status ``code`` (Error for an unknown code)."""
    return _ERRORS.get(code, Error)


def status_name(code: int) -> str:
    """The symbol of a status code, e.g. ``"KVC_ERR_NOT_FOUND"``."""
    return _c.kvc_status_name(code)


def status_str(code: int) -> str:
    """The short fixed description of a status code, e.g. ``"not found"``."""
    return _c.kvc_status_str(code)


# --------------------------------------------------------------------------
# Library facts
# --------------------------------------------------------------------------


def _enum_from(prefix: str, name: str, doc: str) -> type:
    members = {n[len(prefix):]: getattr(_c, n) for n in dir(_c) if n.startswith(prefix)}
    e = _enum.IntEnum(name, members)
    e.__doc__ = doc
    e.__module__ = __name__
    return e


Tier = _enum_from("KVC_TIER_", "Tier", "Where a matched block is (kvc_tier).")
Feature = _enum_from("KVC_FEATURE_", "Feature", "Optional parts of libkvc (kvc_feature).")
WriteMode = _enum_from("KVC_WRITE_", "WriteMode",
                       "How stores reach the SSD tier (kvc_write_mode): the write_mode option.")


def version() -> str:
    """The library's version, ``"MAJOR.MINOR.PATCH"``."""
    return _c.kvc_version()


def version_number() -> int:
    """The library's version as MAJOR * 10000 + MINOR * 100 + PATCH."""
    return _c.kvc_version_number()


def features() -> frozenset:
    """Names of the optional parts compiled in, e.g. ``{"sha256", "xxh3", "ssd"}``."""
    bits = _c.kvc_features()
    return frozenset(f.name.lower() for f in Feature if bits & f.value)


def policy_names() -> list:
    """The eviction policies a tier may use (``host_policy``)."""
    return [p for p in _c.kvc_policy_names().split(",") if p]


def policy_default() -> str:
    """The policy a tier uses when none is chosen."""
    return _c.kvc_policy_default()


def key_to_hex(key) -> str:
    """The 32 lowercase hex digits of a 16-byte key."""
    return _c.kvc_key_to_hex(key)


def key_from_hex(text: str) -> bytes:
    """The 16-byte key of 32 hex digits; InvalidArgumentError otherwise."""
    return _c.kvc_key_from_hex(text)


# --------------------------------------------------------------------------
# Options: keyword arguments named as the fields of the C structs.
# --------------------------------------------------------------------------

_FIELDS: dict = {}


def option_names(struct: type) -> tuple:
    """The settable fields of a kvc.capi options struct, in header order."""
    names = _FIELDS.get(struct)
    if names is None:
        names = tuple(n for n, v in vars(struct).items()
                      if isinstance(v, property) and v.fset is not None and n != "thisown")
        _FIELDS[struct] = names
    return names


def _options(struct: type, what: str, values: dict):
    """A new `struct` with the library's defaults and `values` set; None
    leaves a field at its default."""
    o = struct()
    names = option_names(struct)
    for k, v in values.items():
        if k not in names:
            raise TypeError(f"unknown {what} option {k!r}; the options are: {', '.join(names)}")
        if v is None:
            continue
        try:
            setattr(o, k, v)
        except (TypeError, OverflowError) as e:
            raise TypeError(f"{what} option {k}={v!r}: {e}") from None
    return o


def _store_options(values: dict):
    return _options(_structs.kvc_store_options, "store", values) if values else None


# --------------------------------------------------------------------------
# Handles
# --------------------------------------------------------------------------


class _Handle:
    """Owns one C handle and closes it when the last Python owner lets go:
    the public object and every namespace, view or reservation using it.
    So a view keeps its namespace and cache open while a numpy array still
    reads its bytes, whatever the order of close() calls."""

    __slots__ = ("ptr", "_close", "parent")

    def __init__(self, ptr, close, parent=None):
        self.ptr = ptr
        self._close = close
        self.parent = parent

    def __del__(self):
        ptr, self.ptr = self.ptr, None
        if ptr is not None:
            self._close(ptr)


def hash_keys(tokens, **namespace_options) -> tuple:
    """The seed and block keys of `tokens` under a namespace's options,
    without a cache (kvc_hash_keys): ``(seed, [key, ...])``, one key per full
    block. The options are the keyword arguments of :meth:`Cache.namespace`.
    """
    o = _options(_structs.kvc_namespace_options, "namespace", namespace_options)
    bt = o.block_tokens
    cap = len(tokens) // bt if bt else 0
    return tuple(_c.kvc_hash_keys(cap, o, tokens))


class Cache:
    """An embedded cache: namespaces, an index and a host-DRAM tier.

    ``Cache(**options)`` takes the fields of ``kvc_cache_options`` as keyword
    arguments (``host_capacity_bytes``, ``host_policy``, ``index_shards``,
    ``prefault``, ``reservation_timeout_ms``, ``pin_timeout_ms``,
    ``maintenance_interval_ms``, ...); an omitted one takes the library's
    default. Thread-safe. Close it with :meth:`close` or a ``with`` block;
    its memory is freed once no view of it is alive any more.
    """

    def __init__(self, **options) -> None:
        o = _options(_structs.kvc_cache_options, "cache", options)
        ptr = _c.kvc_cache_open(o)
        self._h = _Handle(ptr, _c.kvc_cache_close)
        self._namespaces = _weakref.WeakSet()

    def _handle(self) -> _Handle:
        h = self._h
        if h is None:
            raise _Closed(_c.KVC_ERR_CLOSED, "the cache is closed")
        return h

    @property
    def closed(self) -> bool:
        return self._h is None

    def namespace(self, **options) -> "Namespace":
        """Opens (or joins) a namespace; the keyword arguments are the fields
        of ``kvc_namespace_options``: ``model``, ``revision``, ``dtype``,
        ``layers``, ``kv_heads``, ``head_dim``, ``block_tokens`` (required),
        ``hash``, ``adapter``, ``shards``, ``salt`` (bytes-like),
        ``default_ttl_ms`` and the rest of the struct."""
        ns = Namespace(self, options)
        self._namespaces.add(ns)
        return ns

    def stats(self) -> "Stats":
        """The cache's counters (kvc_cache_stats_json) as a :class:`Stats`."""
        h = self._handle()
        return Stats(_json.loads(_c.kvc_cache_stats_json(h.ptr)))

    def counters(self) -> dict:
        """The fixed counters of ``kvc_stats`` (kvc_cache_stats) as a dict:
        capacity_bytes, used_bytes, blocks, pins, hits, misses,
        misses_by_reason (a list indexed by kvc_miss_reason), evictions, ..."""
        h = self._handle()
        out = _structs.kvc_stats()
        _c.kvc_cache_stats(h.ptr, out)
        return {k: getattr(out, k) for k, v in vars(_structs.kvc_stats).items()
                if isinstance(v, property) and k not in ("struct_size", "thisown")}

    def flush(self) -> None:
        """Makes every block owed to the SSD tier durable (kvc_cache_flush);
        returns at once without an SSD tier."""
        h = self._handle()
        _c.kvc_cache_flush(h.ptr)

    def close(self) -> None:
        """Closes the cache and its namespaces. Idempotent. Views still alive
        keep the memory they read until they are gone."""
        h, self._h = self._h, None
        if h is None:
            return
        for ns in list(self._namespaces):
            ns.close()

    def __enter__(self) -> "Cache":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<kvc.Cache {'open' if getattr(self, '_h', None) else 'closed'}>"


class Stats(dict):
    """Cache counters: a dict (the JSON of kvc_cache_stats_json) whose keys
    are also attributes: ``stats.pins``, ``stats["misses_by_reason"]``."""

    def __getattr__(self, name: str):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


# numpy dtypes of the KV dtypes; those numpy lacks are carried as raw bytes
# of their width.
_NUMPY_DTYPE = {
    "fp32": "float32",
    "fp16": "float16",
    "bf16": "uint16",
    "fp8_e4m3": "uint8",
    "fp8_e5m2": "uint8",
    "int8": "int8",
}


class Namespace:
    """A namespace: the blocks interchangeable for one model, weights
    revision, adapter, KV layout and salt. Made by :meth:`Cache.namespace`.
    Thread-safe.

    Keys are 16-byte ``bytes``; tokens are a sequence of ints or a numpy
    uint32 array (used in place). Data is any object with the buffer protocol
    (bytes, bytearray, memoryview, numpy arrays), used in place.
    """

    def __init__(self, cache: Cache, options: dict) -> None:
        o = _options(_structs.kvc_namespace_options, "namespace", options)
        ch = cache._handle()
        self._h = _Handle(_c.kvc_namespace_open(ch.ptr, o), _c.kvc_namespace_close, ch)
        self.options: dict = {k: v for k, v in options.items() if k != "credential"}
        info = self.info()
        self.seed: bytes = info["seed"]
        self.shard_bytes: int = info["shard_bytes"]
        self.block_bytes: int = info["block_bytes"]
        self.block_tokens: int = info["block_tokens"]
        self.shards: int = info["shards"]
        self.dtype: str = o.dtype
        self.numpy_dtype: str = _NUMPY_DTYPE.get(o.dtype, "uint8")
        shape = (o.layers, 2, self.block_tokens, o.kv_heads // max(self.shards, 1), o.head_dim)
        width = {"fp32": 4, "fp16": 2, "bf16": 2}.get(o.dtype, 1)
        n = 1
        for d in shape:
            n *= d
        self.block_shape: tuple = shape if n * width == self.shard_bytes else (self.shard_bytes,)
        if self.block_shape == (self.shard_bytes,):
            self.numpy_dtype = "uint8"

    # -- handle ------------------------------------------------------------

    def _closed(self):
        return _Closed(_c.KVC_ERR_CLOSED, "the namespace is closed")

    @property
    def closed(self) -> bool:
        return self._h is None

    def close(self) -> None:
        """Closes this handle; the blocks stay cached. Idempotent. Views and
        reservations made from it stay usable until they are done."""
        self._h = None

    def __enter__(self) -> "Namespace":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        state = f"epoch {self.epoch}" if getattr(self, "_h", None) else "closed"
        return (f"<kvc.Namespace {self.options.get('model')!r} {self.block_tokens} tokens/block "
                f"{self.shard_bytes} bytes/shard, {state}>")

    # -- facts -------------------------------------------------------------

    def info(self) -> dict:
        """kvc_namespace_info as a dict: seed, block_bytes, shard_bytes,
        block_tokens, shards, epoch."""
        h = self._h
        if h is None:
            raise self._closed()
        out = _structs.kvc_namespace_info()
        _c.kvc_namespace_info_get(h.ptr, out)
        return {k: getattr(out, k) for k, v in vars(_structs.kvc_namespace_info).items()
                if isinstance(v, property) and k not in ("struct_size", "thisown")}

    @property
    def epoch(self) -> int:
        """The current revision epoch."""
        return self.info()["epoch"]

    def new_block(self, count: int | None = None):
        """A zeroed numpy array for one block shard (``block_shape`` of
        ``numpy_dtype``), or for ``count`` of them (a leading axis)."""
        import numpy as np
        shape = self.block_shape if count is None else (count,) + self.block_shape
        return np.zeros(shape, dtype=self.numpy_dtype)

    # -- keys and match ----------------------------------------------------

    def keys_compute(self, tokens) -> list:
        """The keys of the full blocks of `tokens` (a trailing partial block
        has none). InvalidArgumentError for fewer than block_tokens tokens."""
        h = self._h
        if h is None:
            raise self._closed()
        return _c.kvc_keys_compute(h.ptr, len(tokens) // self.block_tokens, tokens)

    def match(self, keys, *, tiers: bool = False):
        """How many leading blocks of the key chain `keys` are present (0 on
        a miss). With ``tiers=True``: ``(count, [Tier, ...])``, a tier per
        key (Tier.NONE past the match). `keys` is a sequence of 16-byte keys
        or one buffer of n * 16 bytes."""
        h = self._h
        if h is None:
            raise self._closed()
        n, t = _c.kvc_match(h.ptr, keys)
        if tiers:
            return n, [Tier(x) for x in t]
        return n

    def match_tokens(self, tokens, *, keys: bool = False):
        """How many leading tokens' blocks are present, in blocks (hashing
        `tokens` first). With ``keys=True``: ``(count, [key, ...])``, the keys
        of all full blocks, to load and store without hashing again."""
        h = self._h
        if h is None:
            raise self._closed()
        if keys:
            n, k = _c.kvc_match_tokens(h.ptr, len(tokens) // self.block_tokens, tokens)
            return n, k
        return _c.kvc_match_tokens(h.ptr, 0, tokens)

    def match_batch(self, key_lists) -> list:
        """match() of several key chains at once: a count per chain."""
        h = self._h
        if h is None:
            raise self._closed()
        return _c.kvc_match_batch(h.ptr, key_lists)

    # -- store -------------------------------------------------------------

    def store(self, key, data, shard: int = 0, **options) -> bool:
        """Stores one block shard (`data`: exactly shard_bytes). True when
        this call committed it; False when it was already committed or is
        being written by another writer. Options: the fields of
        ``kvc_store_options`` (``ttl_ms``, ``reservation_timeout_ms``,
        ``parent``)."""
        h = self._h
        if h is None:
            raise self._closed()
        try:
            _c.kvc_store(h.ptr, key, shard, data, _store_options(options))
        except (_Exists, _Pending):
            return False
        return True

    def store_batch(self, keys, data, shard: int = 0, **options) -> int:
        """Stores a chain of blocks: keys[i] with the i-th of `data` (a
        sequence of buffers, or one buffer of len(keys) * shard_bytes, such as
        an array of shape (n, *block_shape)). Returns how many this call
        committed; blocks already present or pending count as done."""
        h = self._h
        if h is None:
            raise self._closed()
        statuses = _c.kvc_store_batch(h.ptr, (keys, shard, data), _store_options(options))
        return sum(1 for s in statuses if s == 0)

    def store_begin(self, key, shard: int = 0, **options) -> "Reservation":
        """Reserves (key, shard) for writing (two-phase store). Raises
        ExistsError if the block is committed, PendingError if another writer
        holds it, NoSpaceError if nothing can be evicted."""
        h = self._h
        if h is None:
            raise self._closed()
        res = _c.kvc_store_begin(h.ptr, key, shard, _store_options(options))
        return Reservation(res, self._h)

    def store_wait(self, key, shard: int = 0, timeout_ms: int = 1000) -> bool:
        """Waits for a pending block: True once committed, False if aborted;
        TimeoutError after `timeout_ms`."""
        h = self._h
        if h is None:
            raise self._closed()
        try:
            _c.kvc_store_wait(h.ptr, key, shard, timeout_ms)
        except _NotFound:
            return False
        return True

    # -- load, view, delete ------------------------------------------------

    def load(self, key, out, shard: int = 0):
        """Copies the block shard into `out` (a writable buffer of exactly
        shard_bytes, e.g. ``new_block()``) and returns `out`. NotFoundError
        (a KeyError) on a miss."""
        h = self._h
        if h is None:
            raise self._closed()
        _c.kvc_load(h.ptr, key, shard, out)
        return out

    def load_batch(self, keys, out, shard: int = 0) -> int:
        """Loads keys[i] into the i-th of `out` (a sequence of writable
        buffers or one of len(keys) * shard_bytes). Returns how many leading
        blocks were loaded; a miss is not an error."""
        h = self._h
        if h is None:
            raise self._closed()
        _statuses, loaded = _c.kvc_load_batch(h.ptr, (keys, shard, out))
        return loaded

    def view(self, key, shard: int = 0, *, pin_timeout_ms: int = 0) -> "View":
        """Pins the block shard and returns a zero-copy read-only
        :class:`View` of it. NotFoundError on a miss. The pin lasts until the
        view is released or no longer used, at most `pin_timeout_ms` (0: the
        cache's pin_timeout_ms)."""
        h = self._h
        if h is None:
            raise self._closed()
        block = _c.kvc_view_acquire(h.ptr, self._h, key, shard, pin_timeout_ms)
        return View(block, self)

    def delete(self, key) -> None:
        """Removes every shard of the block. NotFoundError if none was
        present. Views already taken keep their bytes."""
        h = self._h
        if h is None:
            raise self._closed()
        _c.kvc_delete(h.ptr, key)

    def bump_revision(self) -> int:
        """Makes every block stored so far invisible; returns the new epoch."""
        h = self._h
        if h is None:
            raise self._closed()
        return _c.kvc_namespace_bump_revision(h.ptr)


class Reservation:
    """The right to write one block shard (from :meth:`Namespace.store_begin`).
    One thread at a time. Ends with :meth:`commit` or :meth:`abort`; leaving
    a ``with`` block without a commit aborts it."""

    def __init__(self, ptr, ns_handle: _Handle) -> None:
        self._h = _Handle(ptr, _c.kvc_store_abort, ns_handle)
        self._written = False

    def _ptr(self):
        h = self._h
        if h is None or h.ptr is None:
            raise _Closed(_c.KVC_ERR_CLOSED, "the reservation was committed or aborted")
        return h.ptr

    @property
    def done(self) -> bool:
        """True once committed or aborted."""
        return self._h is None

    def write(self, data) -> None:
        """Copies `data` (exactly shard_bytes, any buffer) into the reservation."""
        _c.kvc_reservation_write(self._ptr(), data)
        self._written = True

    def commit(self) -> None:
        """Records the checksum and makes the block visible. TimeoutError if
        the reservation's deadline passed (it was aborted). InvalidArgumentError,
        the reservation left open, if nothing was written: its buffer holds
        whatever the memory held before."""
        ptr = self._ptr()
        if not self._written:
            raise _InvalidArgument(_c.KVC_ERR_INVALID_ARGUMENT,
                                   "nothing was written to the reservation; write() the block first")
        h, self._h = self._h, None  # h keeps the namespace open for the call
        h.ptr = None  # commit frees the reservation, whatever the outcome
        _c.kvc_store_commit(ptr)

    def abort(self) -> None:
        """Drops the reservation. Idempotent."""
        h, self._h = self._h, None
        if h is not None and h.ptr is not None:
            ptr, h.ptr = h.ptr, None
            _c.kvc_store_abort(ptr)

    close = abort

    def __enter__(self) -> "Reservation":
        return self

    def __exit__(self, *exc) -> None:
        self.abort()


class View:
    """A zero-copy, read-only view of a pinned block shard (from
    :meth:`Namespace.view`). One thread at a time.

    The bytes stay valid while the pin is held: until :meth:`release`, or
    until neither this View nor any array or memoryview made from it is
    alive, and at most the pin's timeout. ``ns.view(k).array()`` returns an
    array that holds the pin by itself.
    """

    def __init__(self, block, ns: Namespace) -> None:
        self._block = block
        self._nsh = ns._h
        self._shape = ns.block_shape
        self._dtype = ns.numpy_dtype

    def _live(self):
        b = self._block
        if b is None:
            raise _Closed(_c.KVC_ERR_CLOSED, "the view is closed")
        return b

    @property
    def nbytes(self) -> int:
        return self._live().nbytes

    @property
    def released(self) -> bool:
        """True once released or closed."""
        return self._block is None or not self._block.live

    def memoryview(self) -> memoryview:
        """A read-only memoryview of the bytes (holds the pin while alive)."""
        return memoryview(self._live())

    def array(self, dtype=None, shape=None):
        """A read-only numpy array on the bytes, without a copy; it holds the
        pin while alive. Default dtype and shape: the namespace's
        ``numpy_dtype`` and ``block_shape`` (layers, 2, block_tokens,
        kv_heads / shards, head_dim)."""
        import numpy as np
        a = np.frombuffer(self._live(), dtype=self._dtype if dtype is None else dtype)
        if shape is None and dtype is None:
            shape = self._shape
        return a if shape is None else a.reshape(shape)

    def release(self) -> None:
        """Releases the pin now (kvc_view_release). BufferError while arrays
        or memoryviews of the view are alive; InvalidArgumentError when it
        was already released or its pin expired."""
        _c.kvc_view_release(self._nsh.ptr, self._live())

    def close(self) -> None:
        """Lets go of the view: the pin is released now, or when the last
        array or memoryview made from it goes. Idempotent."""
        self._block = None

    def __enter__(self) -> "View":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        b = self._block
        state = "closed" if b is None else ("released" if not b.live else f"{b.nbytes} bytes")
        return f"<kvc.View {state}>"


def ssd_inspect(directory: str) -> dict:
    """What an SSD cache directory holds (kvc_ssd_inspect_json), as a dict."""
    return _json.loads(_c.kvc_ssd_inspect_json(directory))


def tenant_create(path: str, **options) -> str:
    """Adds a tenant to the tenants file `path` (kvc_tenant_create) and
    returns its new credential, shown this once. The keyword arguments are
    the fields of ``kvc_tenant_options``: ``name`` (required), ``isolation``,
    ``host_quota_bytes``, ``ssd_quota_bytes``, ``borrow``. ExistsError if
    the name is taken."""
    return _c.kvc_tenant_create(path, _options(_structs.kvc_tenant_options, "tenant", options))


def tenant_list(path: str) -> list:
    """The tenants of the tenants file `path`, without secrets."""
    return _json.loads(_c.kvc_tenant_list_json(path))


def tenant_set_quota(path: str, name: str, *, host_quota_bytes: int = -1,
                     ssd_quota_bytes: int = -1, borrow: int = -1) -> None:
    """Changes a tenant's quotas; -1 leaves a field as it is (borrow: 0 no,
    1 yes). NotFoundError for an unknown name."""
    _c.kvc_tenant_set_quota(path, name, host_quota_bytes, ssd_quota_bytes, borrow)


def tenant_delete(path: str, name: str) -> None:
    """Removes a tenant from the tenants file `path`."""
    _c.kvc_tenant_delete(path, name)


# --------------------------------------------------------------------------
# Nodes: a client of a kvc node (kvc serve), and an in-process node
# --------------------------------------------------------------------------

NODE_MAX_BATCH: int = _c.KVC_NODE_MAX_BATCH
"""The most items one :meth:`NodeNamespace.get_batch` or ``put_batch`` takes."""

NODE_NO_RETRIES: int = _c.KVC_NODE_NO_RETRIES
"""``max_retries`` for no retries at all (0 means the library's default)."""

# Bytes of one element of each KV dtype (libkvc/core/layout.cc).
_DTYPE_BYTES = {"fp32": 4, "fp16": 2, "bf16": 2, "fp8_e4m3": 1, "fp8_e5m2": 1, "int8": 1}

# Namespace fields a node request must leave unset (see _naming).
_NODE_NS_UNSET = _naming.NODE_NAMESPACE_UNSET


class ItemResult(tuple):
    """The outcome of one item of a node batch: ``(status, len)``.

    ``status`` is 0 (KVC_OK) or the negative ``KVC_ERR_*`` code the item
    would have had alone (``KVC_ERR_NOT_FOUND``: a miss; ``KVC_ERR_LAYOUT``:
    the buffer was too small; ``KVC_ERR_EXISTS``: already stored). ``len``
    is a get's block shard size (also when the buffer was too small), 0 for
    a miss and for puts.
    """

    __slots__ = ()

    def __new__(cls, status: int, length: int) -> "ItemResult":
        return tuple.__new__(cls, (status, length))

    @property
    def status(self) -> int:
        return self[0]

    @property
    def len(self) -> int:
        return self[1]

    @property
    def ok(self) -> bool:
        """True when the item succeeded (status 0)."""
        return self[0] == 0

    @property
    def name(self) -> str:
        """The status's symbol: ``"KVC_OK"``, ``"KVC_ERR_NOT_FOUND"``, ..."""
        return _c.kvc_status_name(self[0])

    def error(self) -> "Error | None":
        """The :class:`Error` of a failed item (not raised), None when ok."""
        if self[0] == 0:
            return None
        return error_class(self[0])(self[0], f"{_c.kvc_status_name(self[0])}: {_c.kvc_status_str(self[0])}")

    def __repr__(self) -> str:
        return f"ItemResult({self.name}, len={self[1]})"


class Node:
    """A connection to a kvc node (``kvc serve``, or a :class:`NodeServer`).

    ``Node(address, **options)`` connects (kvc_node_connect). `address` is
    ``"host:port"`` (gRPC over TCP), ``"unix:PATH"`` (the same-host path:
    block bytes move with one memcpy through the node's shared memory), or a
    cluster: ``"peers:HOST:PORT,..."`` or ``"etcd://HOST:PORT/CLUSTER"``.
    The keyword arguments are the fields of ``kvc_node_options``: ``tenant``
    and ``credential``, ``connect_timeout_ms``, ``timeout_ms`` (each call's
    deadline), ``tls_ca_path``, ``tls_cert_path``, ``tls_key_path``,
    ``admin_token`` (for the tenant_* calls) and ``max_retries``
    (:data:`NODE_NO_RETRIES` for none); an omitted one takes the library's
    default. UnavailableError when the node cannot be reached in
    connect_timeout_ms; UnsupportedError in a libkvc built without gRPC.

    Thread-safe. Close it with :meth:`close` or a ``with`` block; using it
    afterwards raises ClosedError. Block calls go through a
    :class:`NodeNamespace` (:meth:`namespace`).
    """

    def __init__(self, address: str, **options) -> None:
        o = _options(_structs.kvc_node_options, "node", options)
        ptr = _c.kvc_node_connect(address, o)
        self.address: str = address
        self._h = _Handle(ptr, _c.kvc_node_close)
        self._namespaces = _weakref.WeakSet()

    def _handle(self) -> _Handle:
        h = self._h
        if h is None:
            raise _Closed(_c.KVC_ERR_CLOSED, "the node connection is closed")
        return h

    @property
    def closed(self) -> bool:
        return self._h is None

    def close(self) -> None:
        """Closes the connection and its namespaces. Idempotent; calls in
        flight on other threads finish first."""
        h, self._h = self._h, None
        if h is None:
            return
        for ns in list(self._namespaces):
            ns.close()

    def __enter__(self) -> "Node":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<kvc.Node {self.address!r} {'open' if getattr(self, '_h', None) else 'closed'}>"

    def namespace(self, **options) -> "NodeNamespace":
        """A namespace on the node; the keyword arguments are those of
        :meth:`Cache.namespace` (``model``, ``revision``, ``dtype``,
        ``layers``, ``kv_heads``, ``head_dim``, ``block_tokens``, ``hash``,
        ``adapter``, ``shards``) except ``tenant``, ``credential``,
        ``salt``, ``default_ttl_ms`` and ``write_mode``, which are the
        connection's or the node's. Nothing is sent to the node."""
        ns = NodeNamespace(self, options)
        self._namespaces.add(ns)
        return ns

    def stats(self) -> Stats:
        """The node's counters (kvc_node_stats_json) as a :class:`Stats`:
        ``scope`` is ``"tenant"`` (that tenant's own counters) or ``"node"``."""
        h = self._handle()
        return Stats(_json.loads(_c.kvc_node_stats_json(h.ptr)))

    # -- tenant administration (with the admin_token option) ----------------

    def tenant_create(self, **options) -> str:
        """Adds a tenant to the node's tenants file and returns its new
        credential, shown this once. The keyword arguments are those of
        :func:`tenant_create`. PermissionError without the right admin
        token, UnsupportedError on a node without a tenants file."""
        h = self._handle()
        return _c.kvc_node_tenant_create(h.ptr, _options(_structs.kvc_tenant_options, "tenant", options))

    def tenant_list(self) -> list:
        """The node's tenants, without secrets."""
        h = self._handle()
        return _json.loads(_c.kvc_node_tenant_list_json(h.ptr))

    def tenant_set_quota(self, name: str, *, host_quota_bytes: int = -1,
                         ssd_quota_bytes: int = -1, borrow: int = -1) -> None:
        """Changes a tenant's quotas on the node; -1 leaves a field as it is
        (borrow: 0 no, 1 yes). NotFoundError for an unknown name."""
        h = self._handle()
        _c.kvc_node_tenant_set_quota(h.ptr, name, host_quota_bytes, ssd_quota_bytes, borrow)

    def tenant_delete(self, name: str) -> None:
        """Removes a tenant; its requests are refused from then on."""
        h = self._handle()
        _c.kvc_node_tenant_delete(h.ptr, name)


class NodeNamespace:
    """A namespace on a node (from :meth:`Node.namespace`): the calls of
    :class:`Namespace` made on the node. Thread-safe.

    Keys, tokens and data are taken as :class:`Namespace` takes them; data
    buffers (bytes, bytearray, memoryview, numpy arrays) are used in place,
    without a copy in the binding.
    """

    def __init__(self, node: Node, options: dict) -> None:
        given = [k for k in _NODE_NS_UNSET if options.get(k) is not None]
        if given:
            raise _InvalidArgument(
                _c.KVC_ERR_INVALID_ARGUMENT,
                f"a node namespace takes no {', '.join(given)}: the tenant and credential are "
                f"options of kvc.Node, the salt comes from the node's tenants file, TTLs "
                f"(ttl_ms of put) and the write mode are the node's")
        o = _options(_structs.kvc_namespace_options, "namespace", options)
        _c.kvc_hash_keys(0, o, [])  # checks the layout and names now, as Cache.namespace does
        self._o = o
        self._h = node._handle()
        self.options: dict = dict(options)
        shards = o.shards or 1
        self.block_tokens: int = o.block_tokens
        self.shards: int = shards
        self.block_bytes: int = (2 * o.layers * o.kv_heads * o.head_dim * o.block_tokens
                                 * _DTYPE_BYTES.get(o.dtype, 1))
        self.shard_bytes: int = self.block_bytes // shards
        self.dtype: str = o.dtype
        self.numpy_dtype: str = _NUMPY_DTYPE.get(o.dtype, "uint8")
        self.block_shape: tuple = (o.layers, 2, o.block_tokens, o.kv_heads // shards, o.head_dim)

    def _ptr(self):
        h = self._h
        if h is None or h.ptr is None:
            raise _Closed(_c.KVC_ERR_CLOSED, "the node connection is closed")
        return h

    @property
    def closed(self) -> bool:
        return self._h is None

    def close(self) -> None:
        """Lets go of the namespace (nothing is sent). Idempotent."""
        self._h = None

    def __enter__(self) -> "NodeNamespace":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"<kvc.NodeNamespace {self.options.get('model')!r} {self.block_tokens} tokens/block "
                f"{self.shard_bytes} bytes/shard{'' if getattr(self, '_h', None) else ', closed'}>")

    def new_block(self, count: int | None = None):
        """A zeroed numpy array for one block shard (``block_shape`` of
        ``numpy_dtype``), or for ``count`` of them (a leading axis)."""
        import numpy as np
        shape = self.block_shape if count is None else (count,) + self.block_shape
        return np.zeros(shape, dtype=self.numpy_dtype)

    # -- match ---------------------------------------------------------------

    def match(self, keys, *, tiers: bool = False):
        """How many leading blocks of the key chain `keys` the node has (0
        on a miss). With ``tiers=True``: ``(count, [Tier, ...])``."""
        h = self._ptr()
        n, t = _c.kvc_node_match(h.ptr, (self._o, keys))
        if tiers:
            return n, [Tier(x) for x in t]
        return n

    def match_tokens(self, tokens, *, keys: bool = False):
        """How many leading blocks of `tokens` the node has (the node hashes
        them). With ``keys=True``: ``(count, [key, ...])``, the keys of all
        full blocks as the node names them (an isolated tenant's keys are
        salted by the node), to get and put without hashing again."""
        h = self._ptr()
        if keys:
            r = _c.kvc_node_match_tokens(h.ptr, len(tokens) // self.block_tokens, self._o, tokens)
            return (r[0], r[1]) if isinstance(r, list) else (r, [])  # no keys without a block
        return _c.kvc_node_match_tokens(h.ptr, 0, self._o, tokens)

    # -- get, put --------------------------------------------------------------

    def get_into(self, key, out, shard: int = 0) -> int:
        """Copies the block shard into `out` (a writable buffer of at least
        shard_bytes, e.g. ``new_block()``) and returns its size in bytes.
        `out` None asks for the size only. NotFoundError (a KeyError) on a
        miss, LayoutError when `out` is too small."""
        h = self._ptr()
        return _c.kvc_node_get(h.ptr, self._o, key, shard, out)

    def get(self, key, shard: int = 0) -> bytes:
        """The block shard as new bytes (copied once, from the node into
        them). NotFoundError (a KeyError) on a miss."""
        h = self._ptr()
        _n, data = _c.pykvc_node_get_bytes(h.ptr, self._o, key, shard, self.shard_bytes)
        return data

    def put(self, key, data, shard: int = 0, **options) -> bool:
        """Stores one block shard (`data`: exactly shard_bytes). True when
        this call stored it; False when it was already stored or is being
        written by another writer. Options: ``ttl_ms`` and ``parent`` (the
        previous block of its chain) of ``kvc_store_options``. Stores are
        not retried; NoSpaceError, QuotaError as the node answers."""
        h = self._ptr()
        try:
            _c.kvc_node_put(h.ptr, self._o, key, shard, data, _store_options(options))
        except (_Exists, _Pending):
            return False
        return True

    # -- batches ---------------------------------------------------------------

    def _batch(self, call, keys, bufs, parents, writable, *rest):
        h = self._ptr()
        results = []
        try:
            call(h.ptr, self._o, rest[0], (keys, bufs, parents, writable, results), *rest[1:])
        except Error as e:
            e.items = [ItemResult(s, n) for s, n in results]
            raise
        return [ItemResult(s, n) for s, n in results]

    def get_batch(self, keys, out, shard: int = 0) -> list:
        """Gets keys[i] into the i-th of `out` in one request (a sequence of
        writable buffers, None asking for the size only, or one buffer of
        len(keys) equal parts, such as ``new_block(len(keys))``). Returns an
        :class:`ItemResult` per key: a miss (``KVC_ERR_NOT_FOUND``) or a
        too-small buffer (``KVC_ERR_LAYOUT``) is an item's status, not an
        exception; a destination not found is left as it was. A failure of
        the whole call (PermissionError, UnavailableError, ...) raises; the
        exception's ``items`` has every item's status. At most
        :data:`NODE_MAX_BATCH` keys."""
        return self._batch(_c.kvc_node_get_batch, keys, out, None, True, shard)

    def put_batch(self, keys, data, shard: int = 0, *, parents=None, **options) -> list:
        """Stores keys[i] from the i-th of `data` (a sequence of buffers, or
        one buffer of len(keys) * shard_bytes) in one request, each block on
        its own: an :class:`ItemResult` per key, ``KVC_ERR_EXISTS`` for one
        already stored. The keys are a chain, as for
        :meth:`Namespace.store_batch`: each block's parent is the key before
        it, the first's the ``parent`` option; ``parents`` (a key or None
        per key) sets them instead. ``ttl_ms`` applies to every block. A
        failure of the whole call raises, with ``items`` on the exception
        (the blocks stored before it are kept). Not retried."""
        if parents is None:
            keys = self._key_list(keys)
            parents = [options.get("parent")] + keys[:-1] if keys else []
        options = {k: v for k, v in options.items() if k != "parent"}
        return self._batch(_c.kvc_node_put_batch, keys, data, parents, False, shard,
                           _store_options(options))

    @staticmethod
    def _key_list(keys) -> list:
        if isinstance(keys, (bytes, bytearray, memoryview)):
            b = bytes(keys)
            if len(b) % KEY_BYTES:
                raise _InvalidArgument(_c.KVC_ERR_INVALID_ARGUMENT,
                                       f"keys is {len(b)} bytes, not a whole number of {KEY_BYTES}-byte keys")
            return [b[i:i + KEY_BYTES] for i in range(0, len(b), KEY_BYTES)]
        return list(keys)

    # -- delete, revisions -----------------------------------------------------

    def delete(self, key) -> None:
        """Removes every shard of the block on the node. NotFoundError if
        none was present."""
        h = self._ptr()
        _c.kvc_node_delete(h.ptr, self._o, key)

    def bump_revision(self) -> int:
        """Makes every block stored so far in this namespace invisible on the
        node; returns the new epoch."""
        h = self._ptr()
        return _c.kvc_node_bump_revision(h.ptr, self._o)


class NodeServer:
    """An in-process kvc node (kvc_node_server_start): what ``kvc serve``
    runs, for tests and embedders.

    The keyword arguments are the fields of ``kvc_node_server_options``:
    ``listen`` (``"127.0.0.1:0"`` picks a free port), ``unix_path`` (the
    same-host path's socket), ``write_mode``, ``tls_cert_path``,
    ``tls_key_path``, ``tls_client_ca_path``, ``admin_token``,
    ``metrics_listen``, ``metrics_token``, ``cluster``, ``node_id``,
    ``zone``, ``advertise``, ``store_idle_timeout_ms``; ``cache`` is a dict
    of :class:`Cache` options for the node's cache (``host_capacity_bytes``,
    ``tenants_path``, ``ssd_dir``, ...). An omitted one takes the library's
    default. UnavailableError when the address cannot be bound.

    Stop it with :meth:`stop` or a ``with`` block.
    """

    def __init__(self, *, cache: dict | None = None, **options) -> None:
        o = _options(_structs.kvc_node_server_options, "node server", options)
        co = None
        if cache is not None:
            co = _options(_structs.kvc_cache_options, "cache", dict(cache))
            o.cache = co
        ptr = _c.kvc_node_server_start(o)
        del co  # read by the start only
        self._ptr = ptr
        self.address: str = _c.kvc_node_server_address(ptr)
        self.metrics_address: str = _c.kvc_node_server_metrics_address(ptr)
        self.unix_path: str | None = options.get("unix_path")

    @property
    def unix_address(self) -> str | None:
        """``"unix:PATH"`` for :class:`Node` when ``unix_path`` was given."""
        return f"unix:{self.unix_path}" if self.unix_path else None

    @property
    def stopped(self) -> bool:
        return self._ptr is None

    def stop(self, grace_ms: int = 1000) -> None:
        """Stops accepting calls, lets calls in flight finish for up to
        `grace_ms`, closes the node's cache. Idempotent."""
        ptr, self._ptr = self._ptr, None
        if ptr is not None:
            _c.kvc_node_server_stop(ptr, grace_ms)

    close = stop

    def __del__(self):
        if getattr(self, "_ptr", None) is not None:
            self.stop(0)

    def __enter__(self) -> "NodeServer":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<kvc.NodeServer {self.address!r} {'stopped' if self._ptr is None else 'running'}>"


def sim_run(trace_path: str, policies: str | None = None, capacities=()) -> list:
    """Runs the trace simulation of docs/sim.md (kvc_sim_run): one row per
    policy and capacity (in blocks), as dicts."""
    return _json.loads(_c.kvc_sim_run(trace_path, policies, list(capacities)))


__all__ = [
    "KEY_BYTES", "Cache", "Namespace", "Reservation", "View", "Stats", "Tier", "Feature", "WriteMode",
    "Error", "error_class", "status_name", "status_str", "version", "version_number",
    "features", "policy_names", "policy_default", "key_to_hex", "key_from_hex",
    "hash_keys", "option_names", "sim_run", "ssd_inspect", "tenant_create", "tenant_list",
    "tenant_set_quota", "tenant_delete", "Node", "NodeNamespace", "NodeServer", "ItemResult",
    "NODE_MAX_BATCH", "NODE_NO_RETRIES",
] + sorted(cls.__name__ for cls in _ERRORS.values())
