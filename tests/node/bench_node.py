"""kvc bench --node/--redis: a real `kvc serve` and a real redis-server on
free loopback ports, a short run against both, and its JSON checked. Run by
CTest as "node: bench vs redis" (tests/node/CMakeLists.txt); skips, saying
so, when redis-server is not installed (Debian package redis-server)."""
import json
import os
import shutil
import signal
import socket
import subprocess
import time

import pytest

KVC = os.environ.get("KVC_BIN", "kvc")
# KVC_REDIS_SERVER: the redis-server to run (default: on PATH, or /usr/bin).
REDIS = os.environ.get("KVC_REDIS_SERVER") or shutil.which("redis-server") or "/usr/bin/redis-server"
if not os.path.exists(REDIS):
    REDIS = None


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def kvc(*args, timeout=60):
    env = {k: v for k, v in os.environ.items() if k not in ("KVC_TENANT", "KVC_CREDENTIAL", "KVC_NODE")}
    return subprocess.run([KVC, *args], capture_output=True, text=True, timeout=timeout, env=env)


@pytest.fixture(scope="module")
def redis(tmp_path_factory):
    if REDIS is None:
        pytest.skip("SKIPPED: redis-server not found (apt-get install redis-server): "
                    "kvc bench --redis is not tested")
    tmp = tmp_path_factory.mktemp("redis")
    port = free_port()
    log = open(tmp / "redis.log", "w+")
    proc = subprocess.Popen([REDIS, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", str(tmp)], stdout=log, stderr=log)
    deadline = time.time() + 10
    while True:
        assert proc.poll() is None, "redis-server exited: " + open(tmp / "redis.log").read()
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    break
        except OSError:
            pass
        assert time.time() < deadline, "redis-server did not answer PING"
        time.sleep(0.05)
    yield "127.0.0.1:%d" % port
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("node")
    ready = str(tmp / "ready")
    err = open(tmp / "serve.log", "w+")
    proc = subprocess.Popen([KVC, "serve", "--listen", "127.0.0.1:0", "--host-capacity", "64MiB",
                             "--ready-file", ready, "--shutdown-grace-ms", "1000"],
                            stdout=subprocess.DEVNULL, stderr=err)
    deadline = time.time() + 30
    while not os.path.exists(ready):
        assert proc.poll() is None, "kvc serve exited: " + open(tmp / "serve.log").read()
        assert time.time() < deadline, "kvc serve did not become ready"
        time.sleep(0.05)
    yield open(ready).read().strip()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0


THREADS, BLOCKS, PASSES = 2, 4, 2


def check_row(row, name, block_bytes):
    assert row["name"] == name
    assert "error" not in row, row
    assert row["verify_failures"] == 0 and row["errors"] == 0, row
    put, get = row["put"], row["get"]
    assert put["ops"] == THREADS * BLOCKS and put["bytes"] == THREADS * BLOCKS * block_bytes
    assert put["exists"] == 0
    assert get["ops"] == THREADS * BLOCKS * PASSES and get["misses"] == 0
    assert get["bytes"] == THREADS * BLOCKS * PASSES * block_bytes
    for phase in (put, get):
        assert phase["gbps"] > 0 and phase["gbps_wall"] > 0 and phase["ops_per_s"] > 0
        lat = phase["latency_us"]
        assert 0 < lat["p50"] <= lat["p99"] <= lat["max"] * 1.02
    if name == "memcpy":
        assert row["match"] is None
    else:
        m = row["match"]
        assert m["ops"] == THREADS * PASSES and m["short"] == 0 and m["errors"] == 0


def test_node_and_redis_side_by_side(node, redis):
    r = kvc("bench", "--node", node, "--redis", redis, "--block-bytes", "1MiB", "--threads", str(THREADS),
            "--blocks", str(BLOCKS), "--passes", str(PASSES), "-o", "json")
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert rep["bench"] == "remote" and rep["block_bytes"] == 1 << 20 and rep["threads"] == THREADS
    names = [t["name"] for t in rep["targets"]]
    assert names == ["memcpy", "node", "redis"]
    for t in rep["targets"]:
        check_row(t, t["name"], 1 << 20)
    memcpy, n, rd = rep["targets"]
    assert n["address"] == node and rd["address"] == redis
    # The ratios are the figures' quotients.
    assert n["vs_redis"]["get_gbps"] == pytest.approx(n["get"]["gbps"] / rd["get"]["gbps"], rel=1e-6)
    assert n["vs_redis"]["put_gbps"] == pytest.approx(n["put"]["gbps"] / rd["put"]["gbps"], rel=1e-6)
    assert n["vs_memcpy"]["get_gbps"] == pytest.approx(n["get"]["gbps"] / memcpy["get"]["gbps"], rel=1e-6)
    assert rd["vs_memcpy"]["put_gbps"] > 0 and "vs_redis" not in rd
    # The node holds nothing of the run any more (the blocks were deleted).
    stat = kvc("stat", "--node", node, "--json")
    assert stat.returncode == 0, stat.stderr
    assert json.loads(stat.stdout)["pending"] == 0


def test_batches(node, redis):
    # --batch 3 over 4 blocks a thread: calls of 3 and 1 blocks. Node and
    # cluster go through kvc_node_put_batch/get_batch, Redis pipelines; the
    # bytes and the verification are as with one block a call, ops count calls.
    calls = 2
    r = kvc("bench", "--node", node, "--cluster", "peers:" + node, "--redis", redis, "--block-bytes", "64KiB",
            "--threads", str(THREADS), "--blocks", str(BLOCKS), "--passes", str(PASSES), "--batch", "3",
            "-o", "json")
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert rep["batch"] == 3
    assert [t["name"] for t in rep["targets"]] == ["memcpy", "node", "cluster", "redis"]
    for t in rep["targets"]:
        assert "error" not in t and t["verify_failures"] == 0 and t["errors"] == 0, t
        assert t["put"]["ops"] == THREADS * calls and t["put"]["bytes"] == THREADS * BLOCKS * 65536, t
        assert t["put"]["exists"] == 0
        assert t["get"]["ops"] == THREADS * calls * PASSES and t["get"]["misses"] == 0, t
        assert t["get"]["bytes"] == THREADS * BLOCKS * PASSES * 65536
    n, rd = rep["targets"][1], rep["targets"][3]
    assert n["vs_redis"]["get_gbps"] == pytest.approx(n["get"]["gbps"] / rd["get"]["gbps"], rel=1e-6)
    t = kvc("bench", "--node", node, "--block-bytes", "64KiB", "--threads", "1", "--blocks", "5",
            "--passes", "1", "--batch", "4")
    assert t.returncode == 0, t.stderr
    assert "4 blocks a call (latency per call)" in t.stdout
    d = kvc("bench", "--node", node, "--block-bytes", "64KiB", "--threads", "1", "--blocks", "2", "--passes", "1",
            "-o", "json")
    assert d.returncode == 0 and json.loads(d.stdout)["batch"] == 1


def test_csv_and_table(node, redis):
    r = kvc("bench", "--node", node, "--redis", redis, "--block-bytes", "64KiB", "--threads", "1",
            "--blocks", "4", "--passes", "1", "-o", "csv")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 4
    header = lines[0].split(",")
    assert header[0] == "name" and "get_gbps" in header and "vs_redis_get_gbps" in header
    assert [l.split(",")[0] for l in lines[1:]] == ["memcpy", "node", "redis"]
    assert all(len(l.split(",")) == len(header) for l in lines[1:])
    t = kvc("bench", "--node", node, "--redis", redis, "--block-bytes", "64KiB", "--threads", "1",
            "--blocks", "2", "--passes", "1")
    assert t.returncode == 0, t.stderr
    assert "put GB/s" in t.stdout and "\nnode " in t.stdout and "\nredis " in t.stdout


def test_unreachable_targets_are_reported_and_the_rest_measured(node):
    dead = "127.0.0.1:%d" % free_port()
    r = kvc("bench", "--node", dead, "--node", "unix:/nonexistent/kvc.sock", "--redis", dead,
            "--node", node, "--block-bytes", "64KiB", "--blocks", "2", "--passes", "1", "--threads", "1",
            "-o", "json")
    assert r.returncode == 1
    rows = json.loads(r.stdout)["targets"]
    assert [t["name"] for t in rows] == ["memcpy", "node", "node", "node", "redis"]
    assert "error" in rows[1] and "KVC_ERR_UNAVAILABLE" in rows[1]["error"]
    # unix: is the same-host path: refused cleanly, whichever way this build has it.
    assert "error" in rows[2] and "KVC_ERR_" in rows[2]["error"]
    assert "error" not in rows[3] and rows[3]["verify_failures"] == 0
    assert "error" in rows[4] and "connect" in rows[4]["error"]
    assert r.stderr.count("kvc bench: ") == 3, r.stderr


@pytest.mark.parametrize("args", [
    ["--node", "127.0.0.1:1", "--block-bytes", "3"],
    ["--node", "127.0.0.1:1", "--block-bytes", "lots"],
    ["--node", "127.0.0.1:1", "--blocks", "0"],
    ["--node", "127.0.0.1:1", "--passes", "0"],
    ["--node", "127.0.0.1:1", "--workload", "rag"],
    ["--node", "127.0.0.1:1", "--micro"],
    ["--node", "127.0.0.1:1", "--batch", "0"],
    ["--node", "127.0.0.1:1", "--batch", "1025"],
    ["--batch", "4"],
    ["--blocks", "4"],
    ["--block-bytes", "1MiB"],
])
def test_usage_errors(args):
    r = kvc("bench", *args)
    assert r.returncode == 2, (args, r.stdout, r.stderr)
    assert r.stderr.startswith("kvc bench: ") or "--" in r.stderr
