"""Behaviour of `kvc sim`: the rows in each output format, the default row,
the reference figures of the shared trace, and the exit codes (bad input: 1
with one line on stderr; usage errors: 2)."""
import csv
import io
import json
import os
import subprocess

import pytest

KVC = os.environ.get("KVC_BIN", "kvc")
SHARED = os.environ.get("KVC_SHARED_DIR",
                        os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared"))
SHARED_TRACE = os.path.join(SHARED, "traces", "mooncake_fast25_synthetic_trace.jsonl")
POLICIES = ["lru", "wtinylfu", "ttl", "lru-prefix", "wtinylfu-prefix"]
ROW_KEYS = ["policy", "capacity_blocks", "hits", "lookups", "hit_ratio", "default"]


def run(*args, timeout=120):
    return subprocess.run([KVC, "sim", *args], capture_output=True, text=True,
                          timeout=timeout)


def line(ids, **extra):
    req = {"timestamp": 0, "input_length": 512 * len(ids), "output_length": 1,
           "hash_ids": ids}
    req.update(extra)
    return json.dumps(req) + "\n"


@pytest.fixture
def small_trace(tmp_path):
    path = tmp_path / "small.jsonl"
    reqs = [[1, 2, 3], [1, 2, 4], [5, 6], [1, 2, 3, 7], [5, 6, 8], [1, 9]] * 20
    path.write_text("".join(line(ids) for ids in reqs))
    return str(path)


def sim_json(*args):
    p = run(*args, "-o", "json")
    assert p.returncode == 0, p.stderr
    assert p.stderr == ""
    return json.loads(p.stdout)


def test_json_rows_every_policy_plus_opt(small_trace):
    rows = sim_json("--trace", small_trace, "--capacities", "2,5")
    assert [r["policy"] for r in rows] == [p for p in POLICIES + ["opt"] for _ in (2, 5)]
    assert [r["capacity_blocks"] for r in rows] == [2, 5] * 6
    lookups = sum(len(ids) for ids in [[1, 2, 3], [1, 2, 4], [5, 6], [1, 2, 3, 7],
                                       [5, 6, 8], [1, 9]]) * 20
    for r in rows:
        assert list(r.keys()) == ROW_KEYS
        assert isinstance(r["hits"], int) and isinstance(r["lookups"], int)
        assert r["lookups"] == lookups
        assert 0 <= r["hits"] <= r["lookups"]
        assert r["hit_ratio"] == pytest.approx(r["hits"] / r["lookups"])
        assert isinstance(r["default"], bool)


def test_default_row_is_marked_and_matches_version(small_trace):
    rows = sim_json("--trace", small_trace, "--capacities", "3")
    defaults = [r["policy"] for r in rows if r["default"]]
    assert len(defaults) == 1
    v = subprocess.run([KVC, "version", "--json"], capture_output=True, text=True)
    assert v.returncode == 0, v.stderr
    assert json.loads(v.stdout)["default_policy"] == defaults[0]


def test_policies_flag_selects_and_orders(small_trace):
    rows = sim_json("--trace", small_trace, "--policies", "opt,lru", "--capacities", "4")
    assert [r["policy"] for r in rows] == ["opt", "lru"]
    assert rows[0]["hits"] >= rows[1]["hits"]


def test_json_flag_equals_output_json(small_trace):
    a = run("--trace", small_trace, "--capacities", "3", "--json")
    b = run("--trace", small_trace, "--capacities", "3", "-o", "json")
    assert a.returncode == 0 and a.stdout == b.stdout


def test_table_and_csv(small_trace):
    t = run("--trace", small_trace, "--capacities", "3,6")
    assert t.returncode == 0, t.stderr
    lines = t.stdout.splitlines()
    assert lines[0].split() == ["policy", "capacity_blocks", "hits", "lookups", "hit_ratio"]
    assert len(lines) == 1 + 12 + 1
    assert any(l.split()[:2] == ["wtinylfu-prefix", "*"] for l in lines)
    assert lines[-1].startswith("* the default policy")
    c = run("--trace", small_trace, "--capacities", "3,6", "-o", "csv")
    assert c.returncode == 0, c.stderr
    rows = list(csv.DictReader(io.StringIO(c.stdout)))
    assert list(rows[0].keys()) == ROW_KEYS
    assert len(rows) == 12


def test_shared_trace_reference_figures():
    assert os.path.exists(SHARED_TRACE), "shared trace missing: " + SHARED_TRACE
    rows = sim_json("--trace", SHARED_TRACE, "--capacities", "1000,10000")
    by = {(r["policy"], r["capacity_blocks"]): r for r in rows}
    assert round(by[("lru", 1000)]["hit_ratio"], 4) == 0.0825
    assert round(by[("lru", 10000)]["hit_ratio"], 4) == 0.4235
    assert by[("opt", 10000)]["hit_ratio"] == pytest.approx(0.618, abs=0.0005)
    default = [r["policy"] for r in rows if r["default"]][0]
    for cap in (1000, 10000):
        assert by[(default, cap)]["hits"] >= by[("lru", cap)]["hits"]


def expect_error(p, *needles):
    assert p.returncode == 1, (p.stdout, p.stderr)
    assert p.stdout == ""
    err = p.stderr.splitlines()
    assert len(err) == 1, p.stderr
    assert err[0].startswith("kvc sim: ")
    for n in needles:
        assert n in err[0], err[0]


def test_malformed_line_names_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(line([1, 2]) + '{"timestamp": 0, "hash_ids": [1,\n')
    expect_error(run("--trace", str(path), "--capacities", "10"),
                 "bad.jsonl:2:", "malformed JSON", "KVC_ERR_PARSE")


@pytest.mark.parametrize("text,needle", [
    ('{"timestamp": 0, "input_length": 1, "output_length": 1}\n', "missing field 'hash_ids'"),
    ('{"timestamp": 0, "input_length": 1, "output_length": 1, "hash_ids": "x"}\n',
     "'hash_ids' must be an array"),
    ('{"timestamp": 0, "input_length": 1, "output_length": 1, "hash_ids": [1.5]}\n',
     "'hash_ids'[0] must be an integer"),
    ('{"input_length": 1, "output_length": 1, "hash_ids": [1]}\n', "missing field 'timestamp'"),
    ('', "empty trace"),
    ('\n\n', "empty trace"),
])
def test_bad_trace_contents(tmp_path, text, needle):
    path = tmp_path / "t.jsonl"
    path.write_text(text)
    expect_error(run("--trace", str(path), "--capacities", "10"), needle, "KVC_ERR_PARSE")


def test_unreadable_trace(tmp_path):
    expect_error(run("--trace", str(tmp_path / "absent.jsonl"), "--capacities", "10"),
                 "absent.jsonl", "KVC_ERR_IO")
    expect_error(run("--trace", str(tmp_path), "--capacities", "10"), "KVC_ERR_IO")


def test_zero_capacity(small_trace):
    expect_error(run("--trace", small_trace, "--capacities", "10,0"),
                 "capacity", "KVC_ERR_INVALID_ARGUMENT")


def test_unknown_policy(small_trace):
    expect_error(run("--trace", small_trace, "--policies", "lru,arc", "--capacities", "10"),
                 "'arc'", "wtinylfu-prefix", "KVC_ERR_INVALID_ARGUMENT")


@pytest.mark.parametrize("args", [
    [],                                                  # no --trace, no --capacities
    ["--trace", "x.jsonl"],                              # no --capacities
    ["--capacities", "10"],                              # no --trace
    ["--trace", "x.jsonl", "--capacities", "ten"],       # not a number
    ["--trace", "x.jsonl", "--capacities", "10,-5"],     # negative
    ["--trace", "x.jsonl", "--capacities", "10", "-o", "xml"],
    ["--trace", "x.jsonl", "--capacities", "10", "--bogus"],
])
def test_usage_errors_exit_2(args):
    p = run(*args)
    assert p.returncode == 2, (p.stdout, p.stderr)
    assert p.stderr != ""
