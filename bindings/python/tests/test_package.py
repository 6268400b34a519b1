"""The package's shape: the generated stub agrees with what the module does
at run time, the options follow kvc.h, and everything public is documented."""

import inspect
import pathlib
import re

import kvc
from kvc import capi


def stub_text():
    path = pathlib.Path(kvc.__file__).with_name("__init__.pyi")
    assert path.exists(), "the build writes kvc/__init__.pyi"
    assert pathlib.Path(kvc.__file__).with_name("py.typed").exists()
    return path.read_text()


def test_stub_lists_every_error_class():
    text = stub_text()
    for code, cls in kvc._ERRORS.items():
        bases = [b for b in cls.__bases__]
        want = ", ".join(["Error"] + [f"builtins.{b.__name__}" for b in bases[1:]])
        assert f"class {cls.__name__}({want}): ..." in text, cls
    assert len(re.findall(r"^class \w+Error\(Error", text, re.M)) == len(kvc._ERRORS)


def stub_options(text, marker):
    """The keyword-only options after `marker` in the stub."""
    at = text.index(marker)
    block = text[at:text.index(")", text.index("*,", at))]
    return tuple(re.findall(r"^\s+(\w+): Optional", block, re.M))


def test_stub_options_follow_the_structs():
    text = stub_text()
    assert stub_options(text, "class Cache:") == kvc.option_names(capi.kvc_cache_options)
    assert stub_options(text, "def namespace(") == kvc.option_names(capi.kvc_namespace_options)
    assert stub_options(text, "def hash_keys(") == kvc.option_names(capi.kvc_namespace_options)
    assert stub_options(text, "def store(") == kvc.option_names(capi.kvc_store_options)
    assert stub_options(text, "def tenant_create(") == kvc.option_names(capi.kvc_tenant_options)
    for name in ("model", "revision", "dtype", "layers", "kv_heads", "head_dim", "block_tokens",
                 "salt", "adapter", "hash", "shards", "default_ttl_ms"):
        assert name in kvc.option_names(capi.kvc_namespace_options)
    assert "salt_len" not in kvc.option_names(capi.kvc_namespace_options)
    assert "struct_size" not in kvc.option_names(capi.kvc_cache_options)


def test_stub_enums():
    text = stub_text()
    for enum in (kvc.Tier, kvc.Feature, kvc.WriteMode):
        for member in enum:
            assert f"    {member.name} = {member.value}" in text


def test_public_api_is_documented():
    assert kvc.__doc__
    for name in kvc.__all__:
        obj = getattr(kvc, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert obj.__doc__, name
    for cls in (kvc.Cache, kvc.Namespace, kvc.Reservation, kvc.View):
        for name, member in vars(cls).items():
            if not name.startswith("_") and callable(member):
                assert member.__doc__, f"{cls.__name__}.{name}"


def test_options_defaults_come_from_the_library():
    o = capi.kvc_namespace_options()
    assert o.struct_size > 0 and o.layers == 0 and o.model is None
    o.model = "a"
    o.model = "b"  # replaces the owned copy
    o.salt = b"\x00\x01"
    assert o.model == "b" and o.salt == b"\x00\x01" and o.salt_len == 2
    o.salt = None
    assert o.salt == b"" and o.salt_len == 0
    s = capi.kvc_store_options()
    s.parent = b"p" * 16
    assert s.parent == b"p" * 16
    s.parent = None
    assert s.parent is None


def test_stub_parses():
    import ast
    ast.parse(stub_text())


TYPED_USE = '''
import numpy as np
import kvc

def use(cache: kvc.Cache, prompt: list[int]) -> int:
    ns = cache.namespace(model="m", revision="r", dtype="fp16", layers=2, kv_heads=2,
                         head_dim=16, block_tokens=16, salt=b"s")
    n: int = ns.match_tokens(prompt)
    hit, keys = ns.match_tokens(np.asarray(prompt, dtype=np.uint32), keys=True)
    first: bytes = keys[0]
    count, tiers = ns.match(keys, tiers=True)
    where: kvc.Tier = tiers[0]
    stored: bool = ns.store(first, ns.new_block(), ttl_ms=10, parent=None)
    ns.load(first, ns.new_block())
    with ns.view(first) as v:
        total = float(v.array().sum())
    try:
        ns.delete(first)
    except kvc.NotFoundError as e:
        code: int = e.code
    return n + hit + count + int(cache.stats().pins)
'''


def test_typed_use_passes_mypy_strict(tmp_path):
    """The stub lets strictly typed code (and the Python example) check
    clean; skipped where mypy is not installed (Debian: python3-mypy)."""
    import os
    import subprocess
    import sys
    pytest = __import__("pytest")
    pytest.importorskip("mypy")
    from conftest import SOURCE_DIR
    use = tmp_path / "typed_use.py"
    use.write_text(TYPED_USE)
    env = dict(os.environ, MYPYPATH=str(pathlib.Path(kvc.__file__).parents[1]))
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--cache-dir", os.devnull,
         str(use), str(SOURCE_DIR / "examples" / "python" / "serving_loop.py")],
        capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
