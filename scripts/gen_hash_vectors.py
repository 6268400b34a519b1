#!/usr/bin/env python3
"""Generates tests/vectors/kvc-hash-v1.json, the block-key test vectors.

This is an implementation of kvc-hash-v1 (docs/hash-spec.md) written from
the spec alone, in Python with hashlib and the xxhash module, sharing no code
with libkvc. Every binding and the C++ core check their keys against its
output, so the two implementations keep each other honest.

Usage:
  gen_hash_vectors.py                 write tests/vectors/kvc-hash-v1.json
  gen_hash_vectors.py --check         exit 1 if the file differs from what
                                      this script would write
  gen_hash_vectors.py --explain NAME  print one case's canonical bytes, seed
                                      and per-block messages (for debugging a
                                      binding, and for the spec's example)

Output is deterministic: the random cases come from a fixed RNG seed.
Requires Python 3.8+ and the xxhash module (Debian: python3-xxhash).
"""

import argparse
import hashlib
import json
import os
import random
import struct
import sys

import xxhash

SPEC = "kvc-hash-v1"
HASHES = ("sha256", "xxh3-128")
DTYPES = ("fp32", "fp16", "bf16", "fp8_e4m3", "fp8_e5m2", "int8")
LAYOUT_FIELDS = ("dtype", "layers", "kv_heads", "head_dim", "block_tokens", "shards")
RNG_SEED = 0x6B7663  # "kvc"

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUT = os.path.join(REPO, "tests", "vectors", "kvc-hash-v1.json")


# --------------------------------------------------------------------------
# The spec
# --------------------------------------------------------------------------

def H(hash_name, data):
    """H(x): 16 bytes."""
    if hash_name == "sha256":
        return hashlib.sha256(data).digest()[:16]
    if hash_name == "xxh3-128":
        v = xxhash.xxh3_128_intdigest(data, seed=0)  # (high64 << 64) | low64
        return struct.pack("<QQ", v & 0xFFFFFFFFFFFFFFFF, v >> 64)
    raise ValueError("unknown hash %r" % hash_name)


def layout_string(layout):
    return "dtype=%s;layers=%d;kv_heads=%d;head_dim=%d;block_tokens=%d;shards=%d" % tuple(
        layout[f] for f in LAYOUT_FIELDS)


def namespace_fields(case):
    """The six fields, as bytes, in spec order."""
    return [
        case.get("hash", "sha256").encode("utf-8"),
        case["model"].encode("utf-8"),
        case["revision"].encode("utf-8"),
        case.get("adapter", "").encode("utf-8"),
        layout_string(case["layout"]).encode("ascii"),
        bytes.fromhex(case.get("salt_hex", "")),
    ]


def canonical(case):
    out = SPEC.encode("ascii")
    for field in namespace_fields(case):
        out += struct.pack("<I", len(field)) + field
    return out


def seed_and_keys(case):
    """Returns (seed, [key, ...]) as bytes for a case dict."""
    hash_name = case.get("hash", "sha256")
    b = case["layout"]["block_tokens"]
    tokens = case["tokens"]
    seed = H(hash_name, canonical(case))
    keys = []
    prev = seed
    for i in range(len(tokens) // b):
        block = tokens[i * b:(i + 1) * b]
        prev = H(hash_name, prev + struct.pack("<%dI" % b, *block))
        keys.append(prev)
    return seed, keys


def with_expected(case):
    seed, keys = seed_and_keys(case)
    out = dict(case)
    out["canonical_hex"] = canonical(case).hex()
    out["seed"] = seed.hex()
    out["keys"] = [k.hex() for k in keys]
    return out


# --------------------------------------------------------------------------
# The cases
# --------------------------------------------------------------------------

def layout(dtype="fp16", layers=32, kv_heads=8, head_dim=128, block_tokens=16, shards=1):
    return {"dtype": dtype, "layers": layers, "kv_heads": kv_heads, "head_dim": head_dim,
            "block_tokens": block_tokens, "shards": shards}


def case(name, hash_name, tokens, model="meta-llama/Llama-3.1-8B-Instruct",
         revision="0e9e39f249a16976918f6564b8830bc894c89659", adapter="", lay=None,
         salt=b""):
    return {"name": name, "hash": hash_name, "model": model, "revision": revision,
            "adapter": adapter, "layout": lay or layout(), "salt_hex": salt.hex(),
            "tokens": list(tokens)}


def build_cases():
    rng = random.Random(RNG_SEED)

    def vocab_tokens(n, vocab=128256):
        return [rng.randrange(vocab) for _ in range(n)]

    cases = []
    # The worked example of docs/hash-spec.md: two full blocks and 8 trailing.
    example = vocab_tokens(40)
    for h in HASHES:
        cases.append(case("example-" + h, h, example))

    for h in HASHES:
        cases.append(case("no-tokens-" + h, h, []))
        cases.append(case("partial-block-only-" + h, h, vocab_tokens(15)))
        cases.append(case("one-block-" + h, h, vocab_tokens(16)))
        cases.append(case("adapter-" + h, h, vocab_tokens(48),
                          adapter="acme/support-lora@3f2a9c1"))
        cases.append(case("salt-" + h, h, vocab_tokens(48),
                          salt=bytes(rng.randrange(256) for _ in range(32))))
        cases.append(case("adapter-and-salt-" + h, h, vocab_tokens(37),
                          adapter="tenant-7/lora-de", salt=b"\x00\x01\x02\xff"))
        cases.append(case("unicode-model-" + h, h, vocab_tokens(50),
                          model="Qwen/通义千问-7B-Ωmega-🦙", revision="révision-2",
                          adapter="lora/日本語"))
        cases.append(case("large-token-ids-" + h, h,
                          [0, 1, 2**31 - 1, 2**31, 2**32 - 2, 2**32 - 1] +
                          [rng.randrange(2**31, 2**32) for _ in range(30)],
                          lay=layout(block_tokens=12)))
        for b in (1, 2, 7, 32, 64, 128, 256, 512):
            extra = rng.randrange(b) if b > 1 else 0
            cases.append(case("block-tokens-%d-%s" % (b, h), h, vocab_tokens(3 * b + extra),
                              lay=layout(block_tokens=b)))
        cases.append(case("max-block-tokens-seed-only-" + h, h, [],
                          lay=layout(dtype="int8", layers=1, kv_heads=1, head_dim=1,
                                     block_tokens=65536)))
        for i, dtype in enumerate(DTYPES):
            shards = (1, 2, 4, 8)[i % 4]
            cases.append(case("dtype-%s-shards-%d-%s" % (dtype, shards, h), h, vocab_tokens(40),
                              lay=layout(dtype=dtype, layers=rng.choice((24, 32, 61, 80)),
                                         kv_heads=8, head_dim=rng.choice((64, 128, 256)),
                                         shards=shards)))

    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789-_./@:" + "éßΩж中文🙂"
    for i in range(24):
        h = HASHES[i % 2]
        b = rng.choice((1, 3, 8, 16, 16, 32, 64))
        shards = rng.choice((1, 1, 2, 4))
        lay = layout(dtype=rng.choice(DTYPES), layers=rng.randrange(1, 129),
                     kv_heads=shards * rng.randrange(1, 17), head_dim=rng.choice((64, 96, 128)),
                     block_tokens=b, shards=shards)

        def text(lo, hi):
            return "".join(rng.choice(alphabet) for _ in range(rng.randrange(lo, hi)))

        cases.append(case(
            "random-%02d-%s" % (i, h), h,
            [rng.randrange(2**32) if rng.random() < 0.2 else rng.randrange(200000)
             for _ in range(rng.randrange(0, 6 * b + 1))],
            model=text(1, 40), revision=text(1, 41), adapter=text(0, 20) if i % 3 else "",
            lay=lay, salt=bytes(rng.randrange(256) for _ in range(rng.choice((0, 0, 1, 16, 32))))))
    return [with_expected(c) for c in cases]


# --------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------

CASE_KEYS = ("name", "hash", "model", "revision", "adapter", "layout", "salt_hex", "tokens",
             "canonical_hex", "seed", "keys")


def dumps(value):
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


def render(cases):
    """One field per line, arrays on one line: diffs stay readable."""
    lines = ["{", '  "spec": "%s",' % SPEC,
             '  "generator": "scripts/gen_hash_vectors.py",', '  "cases": [']
    for i, c in enumerate(cases):
        fields = ['      %s: %s' % (dumps(k), dumps(c[k])) for k in CASE_KEYS]
        lines.append("    {")
        lines.append(",\n".join(fields))
        lines.append("    }" + ("," if i + 1 < len(cases) else ""))
    lines += ["  ]", "}", ""]
    return "\n".join(lines)


def explain(c):
    fields = namespace_fields(c)
    names = ("hash", "model", "revision", "adapter", "layout", "salt")
    print("canonical:")
    print("  %-10s %s" % ("spec", SPEC.encode().hex()))
    for n, f in zip(names, fields):
        print("  %-10s %s %s" % (n, struct.pack("<I", len(f)).hex(), f.hex()))
    print("seed = H(canonical) = %s" % c["seed"])
    b = c["layout"]["block_tokens"]
    prev = bytes.fromhex(c["seed"])
    for i, k in enumerate(c["keys"]):
        block = c["tokens"][i * b:(i + 1) * b]
        print("key[%d] = H(%s || %s) = %s" % (i, prev.hex(), struct.pack("<%dI" % b, *block).hex(),
                                             k))
        prev = bytes.fromhex(k)
    left = len(c["tokens"]) - b * len(c["keys"])
    if left:
        print("%d trailing tokens: no key" % left)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=DEFAULT_OUT, help="output file (default: %(default)s)")
    ap.add_argument("--check", action="store_true", help="compare with --out instead of writing")
    ap.add_argument("--explain", metavar="NAME", help="print the derivation of one case")
    args = ap.parse_args()

    cases = build_cases()
    if args.explain:
        match = [c for c in cases if c["name"] == args.explain]
        if not match:
            sys.exit("gen_hash_vectors: no case named %r" % args.explain)
        explain(match[0])
        return
    text = render(cases)
    if args.check:
        try:
            with open(args.out, encoding="utf-8") as f:
                current = f.read()
        except OSError as e:
            sys.exit("gen_hash_vectors: %s" % e)
        if current != text:
            sys.exit("gen_hash_vectors: %s is out of date; rerun scripts/gen_hash_vectors.py"
                     % args.out)
        return
    with open(args.out, "w", encoding="utf-8") as f:
        f.write(text)
    print("wrote %d cases to %s" % (len(cases), os.path.relpath(args.out)))


if __name__ == "__main__":
    main()
