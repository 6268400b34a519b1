"""Behaviour of `kvc bench`: the load test's report in each format, the
micro-benchmarks' rows, and its exit codes. Short runs on a small layout
(the qwen2.5-7b preset cut to 2 layers: 4 KiB per token); nothing here
asserts a speed."""
import csv
import io
import json
import os
import subprocess

import pytest

KVC = os.environ.get("KVC_BIN", "kvc")

# A small, fast load: 4 KiB per token, 64 KiB blocks, a 64 MiB host tier.
SMALL = ["--model", "qwen2.5-7b", "--layers", "2", "--capacity", "64MiB",
         "--max-context", "2048", "--threads", "2"]


def run(*args, timeout=120):
    return subprocess.run([KVC, "bench", *args], capture_output=True, text=True,
                          timeout=timeout)


def load_json(*args):
    p = run(*args, "-o", "json")
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


@pytest.fixture(scope="module")
def reports():
    return {w: load_json("--workload", w, "--requests", "300", *SMALL)
            for w in ("chat", "rag", "random")}


@pytest.mark.parametrize("workload", ["chat", "rag", "random"])
def test_load_report_fields_are_sane(reports, workload):
    r = reports[workload]
    assert r["bench"] == "load"
    assert r["workload"] == workload
    assert r["requests"] == 300
    assert r["threads"] == 2
    assert r["capacity_bytes"] == 64 << 20
    assert r["block_tokens"] == 16
    assert r["bytes_per_token"] == 2 * 2 * 4 * 128 * 2
    assert r["block_bytes"] == r["bytes_per_token"] * 16
    assert r["seconds"] > 0 and r["ops_per_s"] > 0
    for k in ("hit_ratio_blocks", "hit_ratio_tokens"):
        assert 0.0 <= r[k] <= 1.0
    assert r["prompt_tokens"] > 0
    assert 0 <= r["hit_blocks"] <= r["matched_blocks"] <= r["prompt_blocks"]
    assert r["tokens_saved"] == r["hit_blocks"] * 16
    assert r["tokens_saved"] + r["tokens_computed"] == r["prompt_tokens"]
    assert r["bytes_loaded"] == r["hit_blocks"] * r["block_bytes"]
    assert r["bytes_stored"] == r["stored_blocks"] * r["block_bytes"]
    assert r["store_gbps"] > 0 and r["memcpy_gbps"] > 0
    assert r["verify_failures"] == 0
    for op in ("match", "load", "store", "request"):
        lat = r["latency_us"][op]
        assert lat["p50"] <= lat["p99"] <= lat["p999"] <= lat["max"]
    assert r["latency_us"]["match"]["count"] == 300
    assert r["latency_us"]["request"]["count"] == 300
    cache = r["cache"]
    assert cache["capacity_bytes"] == 64 << 20
    assert cache["used_bytes"] <= cache["capacity_bytes"]
    assert cache["stores"] >= r["stored_blocks"]
    assert cache["misses"] == sum(cache["misses_by_reason"].values())


def test_chat_and_rag_reuse_prefixes_random_does_not(reports):
    chat, rag, rnd = reports["chat"], reports["rag"], reports["random"]
    assert chat["hit_ratio_blocks"] > rnd["hit_ratio_blocks"]
    assert rag["hit_ratio_blocks"] > rnd["hit_ratio_blocks"]
    assert chat["hit_blocks"] > 0 and chat["load_gbps"] > 0
    assert chat["latency_us"]["load"]["count"] > 0
    assert rnd["hit_blocks"] == 0


def test_prompts_depend_only_on_the_seed():
    a = load_json("--requests", "100", "--seed", "7", *SMALL[:-1], "1")
    b = load_json("--requests", "100", "--seed", "7", *SMALL[:-1], "1")
    c = load_json("--requests", "100", "--seed", "8", *SMALL[:-1], "1")
    assert a["prompt_tokens"] == b["prompt_tokens"]
    assert a["prompt_blocks"] == b["prompt_blocks"]
    assert a["prompt_tokens"] != c["prompt_tokens"]


def test_duration_and_verify():
    r = load_json("--duration", "0.5", "--verify", *SMALL)
    assert r["requests"] > 0
    assert r["verify"] == "full" and r["verify_failures"] == 0
    assert 0.4 < r["seconds"] < 30


def test_policy_and_hash_are_used():
    p = subprocess.run([KVC, "version", "-o", "json"], capture_output=True, text=True)
    policies = json.loads(p.stdout)["policies"].split(",")
    policy = policies[0].strip()
    r = load_json("--requests", "50", "--policy", policy, "--hash", "xxh3-128", *SMALL)
    assert r["policy"] == policy and r["hash"] == "xxh3-128"


def test_csv_has_a_header_and_one_row():
    p = run("--workload", "chat", "--requests", "100", *SMALL, "-o", "csv")
    assert p.returncode == 0, p.stderr
    rows = list(csv.reader(io.StringIO(p.stdout)))
    assert len(rows) == 2 and len(rows[0]) == len(rows[1])
    r = dict(zip(*rows))
    assert r["workload"] == "chat"
    assert int(r["requests"]) == 100
    assert 0.0 <= float(r["hit_ratio_blocks"]) <= 1.0
    assert float(r["latency_us_match_p50"]) <= float(r["latency_us_match_p999"])
    assert int(r["cache_capacity_bytes"]) == 64 << 20


def test_table_has_labelled_lines():
    p = run("--workload", "rag", "--requests", "100", *SMALL)
    assert p.returncode == 0, p.stderr
    lines = {l.split()[0]: l for l in p.stdout.splitlines() if l.strip()}
    for label in ("workload", "model", "cache", "requests", "hit", "load", "store", "latency"):
        assert label in lines, p.stdout
    hit = lines["hit"].split()
    assert 0.0 <= float(hit[2]) <= 1.0
    for op in ("match", "load", "store", "request"):
        assert any(l.split()[:1] == [op] for l in p.stdout.splitlines()), p.stdout


MICRO_ROWS = {"load_64KiB", "load_1MiB", "load_16MiB", "view_acquire_release",
              "match_tokens_sha256", "match_tokens_xxh3-128", "match_keys", "store_64KiB",
              "store_1MiB", "load_1MiB_2threads", "mixed_1MiB_2threads"}


def test_micro_rows_carry_kvc_and_limit_figures():
    p = run("--micro", "--quick", "-o", "json", timeout=300)
    assert p.returncode == 0, p.stderr
    r = json.loads(p.stdout)
    assert r["bench"] == "micro" and r["quick"] is True
    rows = {row["name"]: row for row in r["rows"]}
    assert MICRO_ROWS <= set(rows)
    for row in r["rows"]:
        assert row["kvc"] > 0 and row["limit"] > 0, row
        assert row["ratio"] == pytest.approx(row["kvc"] / row["limit"])
        assert row["unit"] in ("GB/s", "ops/s", "blocks/s")
        assert row["limit_what"] and row["what"]
        assert (row["target"] is None) == (row["target_met"] is None)
    for name in ("load_1MiB", "load_16MiB", "match_keys", "match_tokens_sha256"):
        assert isinstance(rows[name]["target_met"], bool), rows[name]
    assert rows["load_1MiB"]["block_bytes"] == 1 << 20
    assert rows["load_16MiB"]["block_bytes"] == 16 << 20
    assert rows["load_64KiB"]["block_bytes"] == 64 << 10
    assert rows["mixed_1MiB_2threads"]["threads"] == 2


def test_micro_csv_parses():
    p = run("--micro", "--quick", "-o", "csv", timeout=300)
    assert p.returncode == 0, p.stderr
    rows = list(csv.DictReader(io.StringIO(p.stdout)))
    assert MICRO_ROWS <= {row["name"] for row in rows}
    for row in rows:
        assert float(row["kvc"]) > 0 and float(row["limit"]) > 0


@pytest.mark.parametrize("args", [
    ["--no-such-flag"],
    ["--threads", "many"],
    ["--requests", "5", "--duration", "1"],
    ["--capacity"],
])
def test_bad_flags_exit_2(args):
    p = run(*args)
    assert p.returncode == 2, (p.stdout, p.stderr)
    assert p.stdout == ""


@pytest.mark.parametrize("args", [
    ["--capacity", "0"],
    ["--capacity", "lots"],
    ["--block-tokens", "0"],
    ["--model", "gpt-5"],
    ["--workload", "poetry"],
    ["--threads", "0"],
    ["--requests", "0"],
    ["--duration", "0"],
    ["--hash", "md5"],
    ["--policy", "no-such-policy"],
    ["--dtype", "fp4"],
    ["--layers", "0"],
    ["--max-context", "0"],
])
def test_impossible_values_fail_with_one_line(args):
    p = run(*args)
    assert p.returncode in (1, 2), (p.stdout, p.stderr)
    lines = p.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("kvc bench: "), p.stderr
    assert p.stdout == ""


def test_library_refusals_exit_1_with_one_line():
    # Below the host tier's minimum (64 KiB): the library refuses it.
    p = run("--capacity", "1KiB", *SMALL[:4])
    assert p.returncode == 1, (p.stdout, p.stderr)
    lines = p.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("kvc bench: ")


# --tiers host,ssd: a host tier of 4 MiB (64 blocks) under a working set of
# hundreds of blocks, so blocks are demoted to SSD and loaded back from it.
TIERED = ["--model", "qwen2.5-7b", "--layers", "2", "--capacity", "4MiB",
          "--max-context", "512", "--threads", "2", "--requests", "300"]


def test_ssd_tier_serves_loads_and_verifies(tmp_path):
    ssd = tmp_path / "not" / "yet"  # created by the bench
    r = load_json(*TIERED, "--tiers", "host,ssd", "--ssd-dir", str(ssd),
                  "--ssd-capacity", "64MiB", "--verify")
    assert r["verify"] == "full" and r["verify_failures"] == 0
    host, d = r["tiers"]["host"], r["tiers"]["ssd"]
    assert d["hits"] > 0 and d["demotions"] > 0 and d["promotions"] > 0
    assert d["hits"] + host["hits"] == r["hit_blocks"]
    assert d["checksum_failures"] == 0
    assert d["bytes_written"] > 0 and d["bytes_read"] > 0
    assert d["capacity_bytes"] == 64 << 20 and 0 < d["bytes"] <= d["capacity_bytes"]
    assert 0 < r["ssd_load_ratio"] <= 1
    assert r["write_mode"] == "back" and ssd.is_dir()


def test_ssd_write_through_and_default_capacity(tmp_path):
    r = load_json(*TIERED, "--tiers", "host,ssd", "--ssd-dir", str(tmp_path),
                  "--write-mode", "through", "--verify")
    assert r["write_mode"] == "through" and r["verify_failures"] == 0
    assert r["tiers"]["ssd"]["capacity_bytes"] == 4 * (4 << 20)
    assert r["tiers"]["ssd"]["hits"] > 0


def test_ssd_tier_table_and_csv(tmp_path):
    args = [*TIERED, "--tiers", "host,ssd", "--ssd-dir", str(tmp_path)]
    p = run(*args)
    assert p.returncode == 0, p.stderr
    labels = [line[:10].strip() for line in p.stdout.splitlines()]
    assert "tier host" in labels and "tier ssd" in labels
    p = run(*args, "-o", "csv")
    assert p.returncode == 0, p.stderr
    rows = list(csv.DictReader(io.StringIO(p.stdout)))
    assert len(rows) == 1
    assert int(rows[0]["tiers_ssd_hits"]) > 0 and "tiers_ssd_demotions" in rows[0]


def test_default_report_has_no_tier_or_tenant_fields(reports):
    for r in reports.values():
        assert not {"tiers", "tenants", "isolation", "ssd_load_ratio"} & set(r)


@pytest.fixture(scope="module")
def tenant_report():
    # The chat workload's prompts share system prompts, so tenants send
    # identical prefixes; isolated tenants must still not hit each other's.
    return load_json("--requests", "300", "--tenants", "3", "--seed", "7", *SMALL)


def test_tenants_rows_sum_to_the_run(tenant_report):
    r = tenant_report
    rows = r["tenants"]
    assert [t["name"] for t in rows] == ["t0", "t1", "t2"]
    assert sum(t["requests"] for t in rows) == r["requests"] == 300
    assert sum(t["hit_blocks"] for t in rows) == r["hit_blocks"]
    assert sum(t["tokens_saved"] for t in rows) == r["tokens_saved"]
    # Zipf 1.0: the first tenant gets the most requests.
    assert rows[0]["requests"] > rows[2]["requests"] > 0
    for t in rows:
        assert 0 <= t["hit_ratio_blocks"] <= 1
        assert t["host_bytes"] == t["host_blocks"] * r["block_bytes"] > 0


def test_tenants_are_isolated(tenant_report):
    r = tenant_report
    # The tenants did send the same prompt prefixes...
    assert r["isolation"]["shared_first_blocks"] > 0
    # ...yet no key was stored under two tenants (unsalted keys would be
    # equal), and no tenant loaded a block it had not stored itself.
    assert r["isolation"]["shared_keys"] == 0
    assert all(t["foreign_hits"] == 0 for t in r["tenants"])
    assert all(t["hit_blocks"] > 0 for t in r["tenants"])


def test_tenants_deterministic_per_seed():
    a = load_json("--requests", "120", "--tenants", "4", "--seed", "3", "--threads", "1",
                  *SMALL[:-2])
    b = load_json("--requests", "120", "--tenants", "4", "--seed", "3", "--threads", "1",
                  *SMALL[:-2])
    assert [t["requests"] for t in a["tenants"]] == [t["requests"] for t in b["tenants"]]


def test_tenants_with_quota_and_ssd_csv(tmp_path):
    p = run(*TIERED, "--tiers", "host,ssd", "--ssd-dir", str(tmp_path), "--tenants", "2",
            "--tenant-quota", "2MiB", "-o", "csv")
    assert p.returncode == 0, p.stderr
    row = list(csv.DictReader(io.StringIO(p.stdout)))[0]
    assert int(row["tenants_t0_requests"]) + int(row["tenants_t1_requests"]) == 300
    for t in ("t0", "t1"):
        assert int(row[f"tenants_{t}_host_bytes"]) <= 2 << 20
        assert f"tenants_{t}_ssd_bytes" in row
    assert row["tenant_quota_bytes"] == str(2 << 20)


def test_tenants_table_has_rows():
    p = run("--requests", "50", "--tenants", "2", *SMALL)
    assert p.returncode == 0, p.stderr
    names = [line.split()[0] for line in p.stdout.splitlines()[1:] if line.startswith("  ")]
    assert "t0" in names and "t1" in names


@pytest.mark.parametrize("args", [
    ["--tiers", "host,gpu"],
    ["--tiers", "ssd,ssd"],
    ["--tiers", "host,ssd"],
    ["--ssd-dir", "/tmp/x"],
    ["--tiers", "host,ssd", "--ssd-dir", "/tmp/x", "--ssd-capacity", "0"],
    ["--tiers", "host,ssd", "--ssd-dir", "/tmp/x", "--ssd-capacity", "lots"],
    ["--tiers", "host,ssd", "--ssd-dir", "/tmp/x", "--write-mode", "sideways"],
    ["--tenants", "0"],
    ["--tenants", "100000"],
    ["--tenant-quota", "1MiB"],
    ["--tenants", "2", "--tenant-quota", "0"],
])
def test_bad_tier_and_tenant_flags_exit_2(args):
    p = run(*args)
    assert p.returncode == 2, (p.stdout, p.stderr)
    lines = p.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("kvc bench: "), p.stderr
    assert p.stdout == ""


def test_unparsable_tenants_exit_2():
    p = run("--tenants", "-1")
    assert p.returncode == 2 and p.stdout == "", (p.stdout, p.stderr)


def test_ssd_dir_in_use_exits_1(tmp_path):
    import time
    holder = subprocess.Popen(
        [KVC, "bench", *TIERED[:-2], "--duration", "4", "--tiers", "host,ssd",
         "--ssd-dir", str(tmp_path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 10
        while not (tmp_path / "LOCK").exists() and time.time() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
        p = run(*TIERED, "--tiers", "host,ssd", "--ssd-dir", str(tmp_path))
        assert p.returncode == 1, (p.stdout, p.stderr)
        lines = p.stderr.splitlines()
        assert len(lines) == 1 and "in use" in lines[0], p.stderr
        assert lines[0].startswith("kvc bench: ")
    finally:
        holder.wait(timeout=30)
