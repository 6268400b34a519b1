"""kvc inspect: what a cache directory holds, after a bench run filled it."""
import json
import os
import subprocess

KVC = os.environ.get("KVC_BIN", "kvc")
TIERED = ["--model", "qwen2.5-7b", "--layers", "2", "--capacity", "4MiB",
          "--max-context", "512", "--threads", "1", "--requests", "150"]


def run(*args):
    return subprocess.run([KVC, *args], capture_output=True, text=True, timeout=120)


def test_inspect_after_a_tiered_bench(tmp_path):
    d = tmp_path / "cache"
    r = run("bench", *TIERED, "--tiers", "host,ssd", "--ssd-dir", str(d),
            "--ssd-capacity", "64MiB", "--write-mode", "through", "-o", "json")
    assert r.returncode == 0, r.stderr
    stored = json.loads(r.stdout)["tiers"]["ssd"]["blocks"]
    assert stored > 0
    assert run("tenant", "--dir", str(d), "create", "acme").returncode == 0
    r = run("inspect", "--dir", str(d), "--json")
    assert r.returncode == 0, r.stderr
    j = json.loads(r.stdout)
    assert len(j["namespaces"]) == 1
    ns = j["namespaces"][0]
    assert len(ns["seed"]) == 32 and ns["epoch"] >= 1
    assert ns["blocks"] == stored and ns["bytes"] > 0
    assert j["stats"]["blocks"] == stored
    assert [t["name"] for t in j["tenants"]] == ["acme"]
    table = run("inspect", "--dir", str(d))
    assert table.returncode == 0 and ns["seed"] in table.stdout and "acme" in table.stdout


def test_inspect_refuses_what_is_not_a_cache_dir(tmp_path):
    r = run("inspect", "--dir", str(tmp_path))
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kvc inspect:") and "FORMAT" in lines[0]
    assert not (tmp_path / "FORMAT").exists()  # inspection creates nothing


def test_inspect_usage():
    assert run("inspect").returncode == 2
