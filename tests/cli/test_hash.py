"""`kvc hash` against an independent Python implementation of kvc-hash-v1.

Run with /usr/bin/python3 -m pytest tests/cli (it needs pytest and xxhash).
Environment: KVC_BIN, the built kvc; KVC_SOURCE_DIR, the repository.
"""

import copy
import glob
import importlib.util
import json
import os
import random
import subprocess
import sys

import pytest

SOURCE_DIR = os.environ.get(
    "KVC_SOURCE_DIR", os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
KVC_BIN = os.environ.get("KVC_BIN", "")

pytestmark = pytest.mark.skipif(not KVC_BIN or not os.access(KVC_BIN, os.X_OK),
                                reason="KVC_BIN does not name the built kvc")


def _load_reference():
    path = os.path.join(SOURCE_DIR, "scripts", "gen_hash_vectors.py")
    spec = importlib.util.spec_from_file_location("gen_hash_vectors", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ref = _load_reference()


def run_hash(stdin, *args):
    if not isinstance(stdin, (bytes, str)):
        stdin = json.dumps(stdin)
    if isinstance(stdin, str):
        stdin = stdin.encode("utf-8")
    return subprocess.run([KVC_BIN, "hash", *args], input=stdin, capture_output=True,
                          timeout=60)


def hash_json(case):
    p = run_hash(case, "-o", "json")
    assert p.returncode == 0, p.stderr.decode()
    assert p.stderr == b""
    return json.loads(p.stdout)


def expected(case):
    """The reference answer, with the CLI's defaults filled in."""
    full = copy.deepcopy(case)
    full.setdefault("hash", "sha256")
    full.setdefault("adapter", "")
    full.setdefault("salt_hex", "")
    full["layout"].setdefault("shards", 1)
    seed, keys = ref.seed_and_keys(full)
    return {"seed": seed.hex(), "keys": [k.hex() for k in keys]}


def vector_cases():
    out = []
    for path in sorted(glob.glob(os.path.join(SOURCE_DIR, "tests", "vectors", "*.json"))):
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
        assert doc["spec"] == "kvc-hash-v1"
        out += doc["cases"]
    return out


VECTORS = vector_cases()


# --------------------------------------------------------------------------
# Vectors and random cases
# --------------------------------------------------------------------------

def test_vectors_are_many_and_cover_both_hashes():
    assert len(VECTORS) >= 50
    assert {c["hash"] for c in VECTORS} == {"sha256", "xxh3-128"}


@pytest.mark.parametrize("case", VECTORS, ids=[c["name"] for c in VECTORS])
def test_vector_case(case):
    # A vector case is piped as is: its expected fields are ignored.
    got = hash_json(case)
    assert got == {"seed": case["seed"], "keys": case["keys"]}
    assert list(got) == ["seed", "keys"]


def test_vectors_match_the_generator():
    """tests/vectors/ is what scripts/gen_hash_vectors.py writes."""
    p = subprocess.run([sys.executable, os.path.join(SOURCE_DIR, "scripts", "gen_hash_vectors.py"),
                        "--check"], capture_output=True, timeout=120)
    assert p.returncode == 0, p.stderr.decode()


def test_spec_example_matches_vectors():
    with open(os.path.join(SOURCE_DIR, "docs", "hash-spec.md"), encoding="utf-8") as f:
        doc = f.read()
    for name in ("example-sha256", "example-xxh3-128"):
        case = next(c for c in VECTORS if c["name"] == name)
        for hexval in [case["seed"]] + case["keys"]:
            assert hexval in doc, "%s: %s is not in docs/hash-spec.md" % (name, hexval)
    sha = next(c for c in VECTORS if c["name"] == "example-sha256")
    assert ",".join(str(t) for t in sha["tokens"][:16]) in doc.replace(" ", "").replace("\n", "")


TEXT = "abcdefghijklmnopqrstuvwxyz0123456789-_./@: " + "éßΩж中文🙂\t"


def random_case(rng):
    b = rng.choice((1, 2, 3, 4, 8, 16, 16, 16, 32, 64, 100, 128, 300))
    shards = rng.choice((1, 1, 1, 2, 4, 8))
    layout = {"dtype": rng.choice(ref.DTYPES), "layers": rng.randrange(1, 200),
              "kv_heads": shards * rng.randrange(1, 9), "head_dim": rng.choice((32, 64, 128, 256)),
              "block_tokens": b}
    if shards != 1 or rng.random() < 0.5:
        layout["shards"] = shards

    def text(lo, hi):
        return "".join(rng.choice(TEXT) for _ in range(rng.randrange(lo, hi)))

    case = {"model": text(1, 60), "revision": text(1, 50), "layout": layout}
    if rng.random() < 0.8:
        case["hash"] = rng.choice(ref.HASHES)
    if rng.random() < 0.6:
        case["adapter"] = text(0, 30)
    if rng.random() < 0.6:
        salt = bytes(rng.randrange(256) for _ in range(rng.choice((0, 1, 7, 16, 32, 64))))
        case["salt_hex"] = salt.hex().upper() if rng.random() < 0.2 else salt.hex()
    edge = (0, 1, 2**31 - 1, 2**31, 2**32 - 2, 2**32 - 1)
    case["tokens"] = [rng.choice(edge) if rng.random() < 0.1 else rng.randrange(2**32)
                      if rng.random() < 0.2 else rng.randrange(160000)
                      for _ in range(rng.randrange(0, 5 * b + b))]
    return case


RANDOM_CASES = [random_case(random.Random(1000 + i)) for i in range(240)]


@pytest.mark.parametrize("index", range(len(RANDOM_CASES)))
def test_random_case(index):
    case = RANDOM_CASES[index]
    assert hash_json(case) == expected(case)


def test_random_cases_cover_the_space():
    hashes = {c.get("hash", "sha256") for c in RANDOM_CASES}
    assert hashes == {"sha256", "xxh3-128"}
    assert any("hash" not in c for c in RANDOM_CASES)
    assert any("shards" not in c["layout"] for c in RANDOM_CASES)
    assert any(len(c["tokens"]) % c["layout"]["block_tokens"] for c in RANDOM_CASES)
    assert any(t >= 2**31 for c in RANDOM_CASES for t in c["tokens"])


def test_json_flag_and_table_output():
    case = next(c for c in VECTORS if c["name"] == "example-sha256")
    p = run_hash(case, "--json")
    assert p.returncode == 0
    assert json.loads(p.stdout) == {"seed": case["seed"], "keys": case["keys"]}

    for args in ((), ("-o", "table")):
        p = run_hash(case, *args)
        assert p.returncode == 0, p.stderr.decode()
        out = p.stdout.decode()
        assert case["seed"] in out
        for i, k in enumerate(case["keys"]):
            line = next(ln for ln in out.splitlines() if k in ln)
            assert line.split()[0] == str(i)
        assert "8 trailing tokens" in out


def test_defaults_are_sha256_no_adapter_no_salt_one_shard():
    case = next(c for c in VECTORS if c["name"] == "example-sha256")
    minimal = {"model": case["model"], "revision": case["revision"],
               "layout": {k: v for k, v in case["layout"].items() if k != "shards"},
               "tokens": case["tokens"]}
    assert hash_json(minimal) == {"seed": case["seed"], "keys": case["keys"]}
    nulls = dict(minimal, hash=None, adapter=None, salt_hex=None)
    assert hash_json(nulls) == {"seed": case["seed"], "keys": case["keys"]}


# --------------------------------------------------------------------------
# Bad input: exit 1 and one line on stderr
# --------------------------------------------------------------------------

def good():
    return {"hash": "sha256", "model": "m", "revision": "r", "adapter": "",
            "layout": {"dtype": "fp16", "layers": 2, "kv_heads": 4, "head_dim": 8,
                       "block_tokens": 4, "shards": 1},
            "salt_hex": "", "tokens": [1, 2, 3, 4, 5]}


def edit(path, value):
    """good() with the field at `path` (a tuple of keys) set, or removed if value is DROP."""
    case = good()
    target = case
    for key in path[:-1]:
        target = target[key]
    if value is DROP:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return case


DROP = object()

BAD = [
    ("empty", b"", "empty"),
    ("whitespace", b"  \n", "empty"),
    ("not-json", b"{model: m}", "not valid JSON"),
    ("truncated", b'{"model": "m"', "not valid JSON"),
    ("two-values", json.dumps(good()) + " {}", "not valid JSON"),
    ("bad-utf8", b'{"model": "\xff"}', "not valid JSON"),
    ("array", b"[1, 2]", "must be a JSON object"),
    ("number", b"3", "must be a JSON object"),
    ("unknown-field", edit(("adaptor",), "x"), '"adaptor"'),
    ("unknown-layout-field", edit(("layout", "heads"), 8), '"layout.heads"'),
    ("no-model", edit(("model",), DROP), '"model"'),
    ("no-revision", edit(("revision",), DROP), '"revision"'),
    ("no-layout", edit(("layout",), DROP), '"layout"'),
    ("no-tokens", edit(("tokens",), DROP), '"tokens"'),
    ("no-dtype", edit(("layout", "dtype"), DROP), '"layout.dtype"'),
    ("no-layers", edit(("layout", "layers"), DROP), '"layout.layers"'),
    ("no-block-tokens", edit(("layout", "block_tokens"), DROP), '"layout.block_tokens"'),
    ("empty-model", edit(("model",), ""), "model is empty"),
    ("empty-revision", edit(("revision",), ""), "revision is empty"),
    ("model-number", edit(("model",), 3), "model must be a string"),
    ("model-nul", edit(("model",), "a\u0000b"), "NUL"),
    ("hash-number", edit(("hash",), 256), "hash must be a string"),
    ("unknown-hash", edit(("hash",), "md5"), '"md5"'),
    ("hash-case", edit(("hash",), "SHA256"), "sha256 xxh3-128"),
    ("adapter-list", edit(("adapter",), ["a"]), "adapter must be a string"),
    ("layout-list", edit(("layout",), [1]), "layout must be a JSON object"),
    ("dtype-unknown", edit(("layout", "dtype"), "fp64"), "dtype"),
    ("dtype-number", edit(("layout", "dtype"), 16), "layout.dtype must be a string"),
    ("layers-zero", edit(("layout", "layers"), 0), "layers"),
    ("layers-negative", edit(("layout", "layers"), -1), "layout.layers"),
    ("layers-float", edit(("layout", "layers"), 2.5), "layout.layers"),
    ("layers-string", edit(("layout", "layers"), "2"), "layout.layers"),
    ("layers-huge", edit(("layout", "layers"), 2**32), "layout.layers"),
    ("kv-heads-zero", edit(("layout", "kv_heads"), 0), "kv_heads"),
    ("head-dim-zero", edit(("layout", "head_dim"), 0), "head_dim"),
    ("block-tokens-zero", edit(("layout", "block_tokens"), 0), "block_tokens"),
    ("block-tokens-too-big", edit(("layout", "block_tokens"), 65537), "block_tokens"),
    ("shards-not-divisor", edit(("layout", "shards"), 3), "multiple"),
    ("shards-zero", edit(("layout", "shards"), 0), "shards"),
    ("block-too-big", edit(("layout", "layers"), 2**31), "exceed"),
    ("salt-odd", edit(("salt_hex",), "abc"), "salt_hex"),
    ("salt-not-hex", edit(("salt_hex",), "zz"), "salt_hex"),
    ("salt-number", edit(("salt_hex",), 12), "salt_hex must be a string"),
    ("tokens-object", edit(("tokens",), {"a": 1}), "tokens must be an array"),
    ("tokens-string", edit(("tokens",), "1 2 3"), "tokens must be an array"),
    ("token-negative", edit(("tokens",), [1, -1]), "tokens[1]"),
    ("token-too-big", edit(("tokens",), [2**32]), "tokens[0]"),
    ("token-huge", edit(("tokens",), [1, 2, 10**30]), "tokens[2]"),
    ("token-float", edit(("tokens",), [1.5]), "tokens[0]"),
    ("token-string", edit(("tokens",), ["1"]), "tokens[0]"),
    ("token-bool", edit(("tokens",), [True]), "tokens[0]"),
    ("token-null", edit(("tokens",), [None]), "tokens[0]"),
]


@pytest.mark.parametrize("stdin,needle", [(b, n) for _, b, n in BAD], ids=[i for i, _, _ in BAD])
def test_bad_input(stdin, needle):
    p = run_hash(stdin, "-o", "json")
    err = p.stderr.decode("utf-8", "replace")
    assert p.returncode == 1, err
    assert p.stdout == b""
    assert err.endswith("\n") and err.count("\n") == 1, repr(err)
    assert err.startswith("kvc hash: ")
    assert needle in err


def test_good_baseline_of_bad_inputs():
    assert hash_json(good())["keys"]


@pytest.mark.parametrize("args", [("--bogus",), ("-o", "xml"), ("extra",), ("-o",)])
def test_usage_errors_exit_2(args):
    p = run_hash(json.dumps(good()), *args)
    assert p.returncode == 2
    assert p.stdout == b""


def test_help():
    p = subprocess.run([KVC_BIN, "hash", "--help"], capture_output=True, timeout=60)
    assert p.returncode == 0
    assert b"stdin" in p.stdout
