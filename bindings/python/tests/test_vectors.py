"""The kvc-hash-v1 vectors of tests/vectors/: every case through
kvc.hash_keys, and through a namespace's keys where it can open one."""

import json

import numpy as np
import pytest

import kvc
from conftest import SOURCE_DIR

VECTOR_FILES = sorted((SOURCE_DIR / "tests" / "vectors").glob("*.json"))


def cases():
    for path in VECTOR_FILES:
        doc = json.loads(path.read_text(encoding="utf-8"))
        assert doc["spec"] == "kvc-hash-v1", path
        for case in doc["cases"]:
            yield pytest.param(case, id=f"{path.stem}:{case['name']}")


def options(case):
    return dict(hash=case["hash"], model=case["model"], revision=case["revision"],
                adapter=case["adapter"], salt=bytes.fromhex(case["salt_hex"]), **case["layout"])


def test_vector_files_exist():
    assert VECTOR_FILES, "no vector files in tests/vectors"


@pytest.mark.parametrize("case", cases())
def test_hash_keys(case):
    seed, keys = kvc.hash_keys(case["tokens"], **options(case))
    assert seed.hex() == case["seed"]
    assert [k.hex() for k in keys] == case["keys"]
    assert [kvc.key_to_hex(k) for k in keys] == case["keys"]
    # The same from a uint32 array (used in place) and from hex.
    arr = np.array(case["tokens"], dtype=np.uint32)
    assert kvc.hash_keys(arr, **options(case))[1] == keys
    assert [kvc.key_from_hex(h) for h in case["keys"]] == keys


@pytest.mark.parametrize("case", cases())
def test_namespace_keys(case):
    bt = case["layout"]["block_tokens"]
    with kvc.Cache(host_capacity_bytes=1 << 20, prefault=2) as cache:
        ns = cache.namespace(**options(case))
        assert ns.seed.hex() == case["seed"]
        if len(case["tokens"]) < bt:
            with pytest.raises(kvc.InvalidArgumentError):
                ns.keys_compute(case["tokens"])
            return
        assert [k.hex() for k in ns.keys_compute(case["tokens"])] == case["keys"]
        n, keys = ns.match_tokens(np.array(case["tokens"], dtype=np.uint32), keys=True)
        assert n == 0
        assert [k.hex() for k in keys] == case["keys"]
