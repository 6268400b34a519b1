"""kvc serve and its clients (kvc stat|match|get|put|rm --node): real node
processes on loopback ports, each test bounded in time."""
import json
import os
import signal
import socket
import subprocess
import time

import pytest

KVC = os.environ.get("KVC_BIN", "kvc")
WIRE = os.environ.get("KVC_WIRE_TEST", "")

# 2 layers x K,V x 4 tokens x 2 heads x 8 dims x fp16 = 512 bytes a block.
NS = ["--model", "m", "--revision", "r1", "--dtype", "fp16", "--layers", "2", "--kv-heads", "2",
      "--head-dim", "8", "--block-tokens", "4"]
BLOCK_BYTES = 512
TOKENS = list(range(100, 112))  # three blocks


def run(*args, env=None, timeout=30):
    e = dict(os.environ)
    for k in ("KVC_TENANT", "KVC_CREDENTIAL", "KVC_NODE"):
        e.pop(k, None)
    e.update(env or {})
    return subprocess.run([KVC, *args], capture_output=True, text=True, timeout=timeout, env=e)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Node:
    def __init__(self, tmp, tenants, *extra, name="node"):
        self.ready = str(tmp / (name + ".ready"))
        self.err = open(tmp / (name + ".log"), "w+")
        self.proc = subprocess.Popen(
            [KVC, "serve", "--listen", "127.0.0.1:0", "--tenants-file", tenants, "--host-capacity", "16MiB",
             "--ready-file", self.ready, "--shutdown-grace-ms", "2000", *extra],
            stdout=subprocess.DEVNULL, stderr=self.err)
        deadline = time.time() + 30
        while not os.path.exists(self.ready):
            assert self.proc.poll() is None, "kvc serve exited: " + self.log()
            assert time.time() < deadline, "kvc serve did not become ready: " + self.log()
            time.sleep(0.05)
        self.addr = open(self.ready).read().strip()
        assert self.addr.startswith("127.0.0.1:") and not self.addr.endswith(":0")

    def log(self):
        self.err.flush()
        self.err.seek(0)
        return self.err.read()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=30)


def tenant(path, name, isolation="isolated"):
    r = run("tenant", "--config", path, "create", name, "--isolation", isolation, "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)["credential"]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("node")
    tenants = str(tmp / "tenants.json")
    creds = {n: tenant(tenants, n) for n in ("acme", "beta")}
    creds.update({n: tenant(tenants, n, "shared") for n in ("pool1", "pool2")})
    node = Node(tmp, tenants)
    yield tmp, tenants, creds, node
    assert node.stop() == 0, node.log()


def as_tenant(creds, name):
    return {"KVC_TENANT": name, "KVC_CREDENTIAL": creds[name]}


def node_match(node, env, tokens=TOKENS):
    r = run("match", "--node", node.addr, *NS, "--tokens", ",".join(map(str, tokens)), "--json", env=env)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def node_put(node, env, key, path, *extra):
    return run("put", "--node", node.addr, *NS, "--key", key, "--file", str(path), "--json", *extra, env=env)


def node_get(node, env, key, path):
    return run("get", "--node", node.addr, *NS, "--key", key, "--file", str(path), "--json", env=env)


def local_keys(tokens=TOKENS):
    case = {"model": "m", "revision": "r1",
            "layout": {"dtype": "fp16", "layers": 2, "kv_heads": 2, "head_dim": 8, "block_tokens": 4},
            "tokens": tokens}
    r = subprocess.run([KVC, "hash", "--json"], input=json.dumps(case), capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)["keys"]


def test_ready_log_and_address(setup):
    _, _, _, node = setup
    assert " ready address=" + node.addr in node.log()


def test_put_get_match_rm_roundtrip(setup, tmp_path):
    _, _, creds, node = setup
    env = as_tenant(creds, "pool1")
    m = node_match(node, env)
    # The node hashes exactly as the library does in process (shared tenant: no salt).
    assert m["keys"] == local_keys()
    assert m["blocks"] == 0 and m["tiers"] == ["none"] * 3
    blobs = []
    parent = []
    for i, k in enumerate(m["keys"]):
        data = os.urandom(BLOCK_BYTES)
        blobs.append(data)
        p = tmp_path / f"b{i}"
        p.write_bytes(data)
        r = node_put(node, env, k, p, *parent)
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["status"] == "KVC_OK"
        parent = ["--parent", k]
    r = node_put(node, env, m["keys"][0], tmp_path / "b0")
    assert r.returncode == 0 and json.loads(r.stdout)["status"] == "KVC_ERR_EXISTS"
    m2 = node_match(node, env)
    assert m2["blocks"] == 3 and m2["tiers"] == ["host"] * 3
    for i, k in enumerate(m["keys"]):
        out = tmp_path / f"g{i}"
        r = node_get(node, env, k, out)
        assert r.returncode == 0, r.stderr
        assert out.read_bytes() == blobs[i]
    # Raw bytes on stdout as well.
    r = subprocess.run([KVC, "get", "--node", node.addr, *NS, "--key", m["keys"][0]], capture_output=True,
                       timeout=30, env={**os.environ, **env})
    assert r.returncode == 0 and r.stdout == blobs[0]
    # A second shared tenant shares the pool.
    assert node_match(node, as_tenant(creds, "pool2"))["blocks"] == 3
    r = run("match", "--node", node.addr, *NS, "--key", m["keys"][0], "--key", m["keys"][1], "--json", env=env)
    assert json.loads(r.stdout)["blocks"] == 2
    r = run("rm", "--node", node.addr, *NS, "--key", m["keys"][1], "--json", env=env)
    assert r.returncode == 0 and json.loads(r.stdout)["deleted"] is True
    assert node_match(node, env)["blocks"] == 1
    r = node_get(node, env, m["keys"][1], tmp_path / "gone")
    assert r.returncode == 1 and "KVC_ERR_NOT_FOUND" in r.stderr
    r = run("rm", "--node", node.addr, *NS, "--key", m["keys"][1], env=env)
    assert r.returncode == 1 and "KVC_ERR_NOT_FOUND" in r.stderr
    # A block of the wrong size is refused and publishes nothing.
    (tmp_path / "short").write_bytes(b"x" * 100)
    r = node_put(node, env, m["keys"][1], tmp_path / "short")
    assert r.returncode == 1 and "KVC_ERR_LAYOUT" in r.stderr
    assert node_match(node, env)["blocks"] == 1
    st = json.loads(run("stat", "--node", node.addr, "--json", env=env).stdout)
    assert st["stores"] >= 3
    assert [t["name"] for t in st["tenants"]] == ["pool1"]


def test_isolated_tenants_see_only_their_blocks(setup, tmp_path):
    _, _, creds, node = setup
    a, b = as_tenant(creds, "acme"), as_tenant(creds, "beta")
    ka, kb = node_match(node, a)["keys"], node_match(node, b)["keys"]
    # Salted with each tenant's secret: unrelated keys for the same tokens.
    assert ka != kb and ka != local_keys() and not set(ka) & set(kb)
    p = tmp_path / "blob"
    p.write_bytes(os.urandom(BLOCK_BYTES))
    assert node_put(node, a, ka[0], p).returncode == 0
    assert node_match(node, a)["blocks"] == 1
    assert node_match(node, b)["blocks"] == 0
    # Even with acme's key, beta's namespace holds nothing.
    r = node_get(node, b, ka[0], tmp_path / "stolen")
    assert r.returncode == 1 and "KVC_ERR_NOT_FOUND" in r.stderr
    r = run("match", "--node", node.addr, *NS, "--key", ka[0], "--json", env=b)
    assert json.loads(r.stdout)["blocks"] == 0


@pytest.mark.parametrize("who", ["wrong", "missing", "unknown", "other"])
def test_bad_credentials_refused_for_every_command(setup, tmp_path, who):
    _, _, creds, node = setup
    env = {"wrong": {"KVC_TENANT": "acme", "KVC_CREDENTIAL": "kvc_wrong"},
           "missing": {},
           "unknown": {"KVC_TENANT": "nobody", "KVC_CREDENTIAL": creds["acme"]},
           "other": {"KVC_TENANT": "acme", "KVC_CREDENTIAL": creds["beta"]}}[who]
    key = "00" * 16
    p = tmp_path / "blob"
    p.write_bytes(b"\0" * BLOCK_BYTES)
    for args in (["stat"], ["match", *NS, "--key", key], ["get", *NS, "--key", key],
                 ["put", *NS, "--key", key, "--file", str(p)], ["rm", *NS, "--key", key]):
        r = run(args[0], "--node", node.addr, *args[1:], env=env)
        assert r.returncode == 1, (args, r.stdout)
        assert "KVC_ERR_PERMISSION" in r.stderr, (args, r.stderr)
        assert r.stdout == ""


@pytest.mark.skipif(not WIRE, reason="KVC_WIRE_TEST not set")
def test_wire_checks(setup):
    _, _, creds, node = setup
    r = subprocess.run([WIRE, node.addr, "acme", creds["acme"]], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert node.proc.poll() is None


def test_unreachable_node_fails_fast():
    port = free_port()
    t = time.time()
    r = run("stat", "--node", f"127.0.0.1:{port}", env={"KVC_TENANT": "a", "KVC_CREDENTIAL": "b"})
    assert r.returncode == 1 and "KVC_ERR_UNAVAILABLE" in r.stderr
    assert time.time() - t < 10


def test_sigterm_and_warm_restart_from_ssd(setup, tmp_path):
    _, tenants, creds, _ = setup
    ssd = ["--ssd-dir", str(tmp_path / "ssd"), "--ssd-capacity", "64MiB", "--log-format", "json",
           "--write-mode", "write-through"]
    node = Node(tmp_path, tenants, *ssd, name="warm1")
    env = as_tenant(creds, "acme")
    keys = node_match(node, env)["keys"]
    blobs = [os.urandom(BLOCK_BYTES) for _ in keys]
    for i, k in enumerate(keys):
        (tmp_path / f"w{i}").write_bytes(blobs[i])
        assert node_put(node, env, k, tmp_path / f"w{i}").returncode == 0
    assert node.stop() == 0
    lines = [json.loads(l) for l in node.log().splitlines()]
    assert [l["msg"] for l in lines] == ["ready", "stopping", "stopped"]
    assert lines[1]["signal"] == "SIGTERM"
    assert not os.path.exists(node.ready)
    node2 = Node(tmp_path, tenants, *ssd, name="warm2")
    try:
        assert node_match(node2, env)["blocks"] == 3
        for i, k in enumerate(keys):
            r = node_get(node2, env, k, tmp_path / f"r{i}")
            assert r.returncode == 0, r.stderr
            assert (tmp_path / f"r{i}").read_bytes() == blobs[i]
    finally:
        node2.proc.send_signal(signal.SIGINT)
        assert node2.proc.wait(timeout=30) == 0


def test_listen_conflict_is_an_error(setup, tmp_path):
    _, tenants, _, node = setup
    r = run("serve", "--listen", node.addr, "--tenants-file", tenants, "--host-capacity", "1MiB", timeout=30)
    assert r.returncode == 1 and "KVC_ERR_UNAVAILABLE" in r.stderr


def test_dry_run_precedence_file_env_flags(tmp_path):
    cfg = tmp_path / "node.toml"
    cfg.write_text('listen = "0.0.0.0:9000"\nhost_policy = "lru"\nlog_format = "json"\nhost_capacity = 1048576\n')
    env = {"KVC_HOST_POLICY": "wtinylfu", "KVC_LOG_FORMAT": "text", "KVC_SSD_CAPACITY": "2GiB"}
    r = run("serve", "--config", str(cfg), "--log-format", "json", "--ssd-capacity", "3GiB", "--dry-run", "--json",
            env=env)
    assert r.returncode == 0, r.stderr
    j = json.loads(r.stdout)
    assert j["config"]["listen"] == "0.0.0.0:9000" and j["sources"]["listen"] == "file"
    assert j["config"]["host_capacity"] == "1048576" and j["sources"]["host_capacity"] == "file"
    assert j["config"]["host_policy"] == "wtinylfu" and j["sources"]["host_policy"] == "env"
    assert j["config"]["log_format"] == "json" and j["sources"]["log_format"] == "flag"
    assert j["config"]["ssd_capacity"] == "3GiB" and j["sources"]["ssd_capacity"] == "flag"
    assert j["config"]["shutdown_grace_ms"] == "5000" and j["sources"]["shutdown_grace_ms"] == "default"
    text = run("serve", "--config", str(cfg), "--dry-run", env=env).stdout
    assert "host_policy" in text and "(env)" in text and "(file)" in text
    cfg.write_text('nonsense = 1\n')
    r = run("serve", "--config", str(cfg), "--dry-run")
    assert r.returncode == 1 and "unknown setting 'nonsense'" in r.stderr
