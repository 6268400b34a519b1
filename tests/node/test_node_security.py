"""kvc serve's security and operations surface, through real `kvc serve`
processes on loopback ports and the kvc CLI: TLS (server and client
certificates, made with the openssl CLI at test time), tenant
administration through a live node (`kvc tenant --node`), per-tenant stats,
GET /metrics, and the admin token never shown by --dry-run or the logs."""
import json
import os
import re
import shutil
import signal
import subprocess
import time
import urllib.request

import pytest

KVC = os.environ.get("KVC_BIN", "kvc")

NS = ["--model", "m", "--revision", "r1", "--dtype", "fp16", "--layers", "2", "--kv-heads", "2",
      "--head-dim", "8", "--block-tokens", "4"]
BLOCK_BYTES = 512
TOKENS = ",".join(str(t) for t in range(200, 212))  # three blocks
ADMIN_TOKEN = "adm_" + "7f3e9c" * 6


def run(*args, env=None, timeout=30):
    e = dict(os.environ)
    for k in ("KVC_TENANT", "KVC_CREDENTIAL", "KVC_NODE", "KVC_ADMIN_TOKEN"):
        e.pop(k, None)
    e.update(env or {})
    return subprocess.run([KVC, *args], capture_output=True, text=True, timeout=timeout, env=e)


class Node:
    def __init__(self, tmp, *extra, name="node", env=None):
        self.ready = str(tmp / (name + ".ready"))
        self.err = open(tmp / (name + ".log"), "w+")
        e = dict(os.environ)
        e.pop("KVC_ADMIN_TOKEN", None)
        e.update(env or {})
        self.proc = subprocess.Popen(
            [KVC, "serve", "--listen", "127.0.0.1:0", "--host-capacity", "16MiB", "--ready-file", self.ready,
             "--shutdown-grace-ms", "2000", *extra],
            stdout=subprocess.DEVNULL, stderr=self.err, env=e)
        deadline = time.time() + 30
        while not os.path.exists(self.ready):
            assert self.proc.poll() is None, "kvc serve exited: " + self.log()
            assert time.time() < deadline, "kvc serve did not become ready: " + self.log()
            time.sleep(0.05)
        self.addr = open(self.ready).read().strip()
        while " ready " not in self.log():  # the ready line follows the file
            assert time.time() < deadline, "no ready line: " + self.log()
            time.sleep(0.02)
        self.port = self.addr.rsplit(":", 1)[1]
        m = re.search(r"metrics=(\S+)", self.log())
        self.metrics = m.group(1) if m else None

    def log(self):
        self.err.flush()
        self.err.seek(0)
        return self.err.read()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=30)


def create_tenant(path, name, isolation="isolated"):
    r = run("tenant", "--config", path, "create", name, "--isolation", isolation, "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)["credential"]


def as_tenant(name, cred):
    return {"KVC_TENANT": name, "KVC_CREDENTIAL": cred}


def put_chain(node, env, tmp, *conn):
    """Stores the three blocks of TOKENS as the tenant of `env`; their keys."""
    r = run("match", "--node", node.addr, *conn, *NS, "--tokens", TOKENS, "--json", env=env)
    assert r.returncode == 0, r.stderr
    keys = json.loads(r.stdout)["keys"]
    for i, k in enumerate(keys):
        p = tmp / f"blob{i}"
        p.write_bytes(os.urandom(BLOCK_BYTES))
        r = run("put", "--node", node.addr, *conn, *NS, "--key", k, "--file", str(p), env=env)
        assert r.returncode == 0, r.stderr
    return keys


# --- tenant administration, per-tenant stats, metrics ----------------------

@pytest.fixture(scope="module")
def admin_node(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("secnode")
    tenants = str(tmp / "tenants.json")
    creds = {n: create_tenant(tenants, n) for n in ("acme", "beta")}
    token_file = tmp / "admin.token"
    token_file.write_text(ADMIN_TOKEN + "\n")
    node = Node(tmp, "--tenants-file", tenants, "--admin-token-file", str(token_file),
                "--metrics-listen", "127.0.0.1:0")
    yield tmp, tenants, creds, node, str(token_file)
    assert node.stop() == 0, node.log()
    assert ADMIN_TOKEN not in node.log()


def tenant_cmd(node, token_file, *args):
    return run("tenant", "--node", node.addr, "--admin-token-file", token_file, *args)


def test_tenant_admin_through_a_live_node(admin_node, tmp_path):
    _, tenants, _, node, token_file = admin_node
    r = tenant_cmd(node, token_file, "create", "carol", "--host-quota", "1KiB", "--json")
    assert r.returncode == 0, r.stderr
    cred = json.loads(r.stdout)["credential"]
    # At once: carol authenticates and stores, without a restart.
    carol = as_tenant("carol", cred)
    keys = put_chain(node, carol, tmp_path)
    # The node wrote its tenants file.
    assert "carol" in [t["name"] for t in json.loads(run("tenant", "--config", tenants, "list", "--json").stdout)]
    r = tenant_cmd(node, token_file, "list", "--json")
    assert r.returncode == 0, r.stderr
    listed = {t["name"]: t for t in json.loads(r.stdout)}
    assert set(listed) >= {"acme", "beta", "carol"} and listed["carol"]["host_quota_bytes"] == 1024
    assert cred not in r.stdout and "salt" not in r.stdout and "credential" not in r.stdout
    r = tenant_cmd(node, token_file, "show", "carol")
    assert r.returncode == 0 and "carol" in r.stdout
    # The 1 KiB quota holds two 512-byte blocks: the third evicted carol's own.
    st = json.loads(run("stat", "--node", node.addr, "--json", env=carol).stdout)
    assert st["tiers"]["host"]["used_bytes"] <= 1024 and st["stores"] == 3
    # A quota raised live lets all three stay.
    r = tenant_cmd(node, token_file, "set-quota", "carol", "--host-quota", "4KiB", "--json")
    assert r.returncode == 0, r.stderr
    put_chain(node, carol, tmp_path)
    st = json.loads(run("stat", "--node", node.addr, "--json", env=carol).stdout)
    assert st["tiers"]["host"]["used_bytes"] == 3 * BLOCK_BYTES, st
    r = tenant_cmd(node, token_file, "set-quota", "nobody", "--host-quota", "1KiB")
    assert r.returncode == 1 and "KVC_ERR_NOT_FOUND" in r.stderr
    # Deleted: refused from the next call on.
    r = tenant_cmd(node, token_file, "delete", "carol", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["deleted"] is True
    r = run("match", "--node", node.addr, *NS, "--key", keys[0], env=carol)
    assert r.returncode == 1 and "KVC_ERR_PERMISSION" in r.stderr
    r = tenant_cmd(node, token_file, "create", "carol", "--json")
    assert r.returncode == 0
    # A new carol is a new tenant (a new id and salt): the old blocks are not hers.
    carol2 = as_tenant("carol", json.loads(r.stdout)["credential"])
    r = run("match", "--node", node.addr, *NS, "--key", keys[0], "--json", env=carol2)
    assert r.returncode == 0 and json.loads(r.stdout)["blocks"] == 0
    assert tenant_cmd(node, token_file, "delete", "carol").returncode == 0


def test_admin_calls_refuse_tenants_and_wrong_tokens(admin_node, tmp_path):
    _, _, creds, node, token_file = admin_node
    wrong = tmp_path / "wrong.token"
    wrong.write_text(ADMIN_TOKEN[:-1] + "0\n")
    for args in (["list"], ["show", "acme"], ["create", "eve"], ["set-quota", "acme", "--host-quota", "1MiB"],
                 ["delete", "beta"]):
        r = run("tenant", "--node", node.addr, "--admin-token-file", str(wrong), *args)
        assert r.returncode == 1 and "KVC_ERR_PERMISSION" in r.stderr, (args, r.stderr)
        # A tenant's credential is no admin token.
        r = run("tenant", "--node", node.addr, *args, env={"KVC_ADMIN_TOKEN": creds["acme"]})
        assert r.returncode == 1 and "KVC_ERR_PERMISSION" in r.stderr, (args, r.stderr)
        # No token at all: refused before anything is sent.
        r = run("tenant", "--node", node.addr, *args)
        assert r.returncode == 1 and "admin token" in r.stderr, (args, r.stderr)
    names = [t["name"] for t in json.loads(tenant_cmd(node, token_file, "list", "--json").stdout)]
    assert "eve" not in names and "beta" in names


def test_a_tenant_sees_only_its_own_stats(admin_node, tmp_path):
    _, _, creds, node, token_file = admin_node
    acme, beta = as_tenant("acme", creds["acme"]), as_tenant("beta", creds["beta"])
    before = json.loads(run("stat", "--node", node.addr, "--json", env=beta).stdout)
    put_chain(node, acme, tmp_path)
    r = run("match", "--node", node.addr, *NS, "--tokens", TOKENS, "--json", env=acme)
    assert json.loads(r.stdout)["blocks"] == 3
    a = json.loads(run("stat", "--node", node.addr, "--json", env=acme).stdout)
    b = json.loads(run("stat", "--node", node.addr, "--json", env=beta).stdout)
    assert a["scope"] == "tenant" and a["tenant"] == "acme"
    assert a["stores"] >= 3 and a["hits"] >= 3 and a["tiers"]["host"]["blocks"] >= 3
    # beta learns nothing of acme's traffic: its counters did not move.
    assert b["scope"] == "tenant" and b["tenant"] == "beta"
    for k in ("hits", "misses", "stores", "bytes_stored"):
        assert b[k] == before[k], (k, before, b)
    assert b["tiers"]["host"]["used_bytes"] == 0
    assert [t["name"] for t in b["tenants"]] == ["beta"]
    assert "namespaces" not in b and "misses_by_reason" not in b
    # The admin token shows the whole node.
    r = run("stat", "--node", node.addr, "--admin-token-file", token_file, "--json")
    assert r.returncode == 0, r.stderr
    n = json.loads(r.stdout)
    assert n["scope"] == "node" and n["stores"] >= a["stores"] and n["hits"] >= a["hits"]
    assert {"acme", "beta"} <= {t["name"] for t in n["tenants"]}


def scrape(node):
    with urllib.request.urlopen(f"http://{node.metrics}/metrics", timeout=10) as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/plain")
        return r.read().decode()


def sample(text, name, **labels):
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    line = name + ("{" + want + "}" if want else "")
    for ln in text.splitlines():
        if ln.startswith(line + " "):
            return float(ln.split()[-1])
    raise AssertionError(f"no sample {line}")


def test_metrics_endpoint(admin_node, tmp_path):
    _, _, creds, node, _ = admin_node
    assert node.metrics and not node.metrics.endswith(":0"), node.log()
    acme = as_tenant("acme", creds["acme"])
    t0 = scrape(node)
    types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", t0, re.M))
    for name, typ in {"kvc_hits_total": "counter", "kvc_misses_total": "counter", "kvc_tier_bytes": "gauge",
                      "kvc_tier_blocks": "gauge", "kvc_evictions_total": "counter",
                      "kvc_demotions_total": "counter", "kvc_requests_in_flight": "gauge",
                      "kvc_request_duration_seconds": "histogram", "kvc_tenant_bytes": "gauge",
                      "kvc_tenant_hits_total": "counter"}.items():
        assert types.get(name) == typ, (name, types.get(name))
    keys = put_chain(node, acme, tmp_path)
    assert json.loads(run("match", "--node", node.addr, *NS, "--tokens", TOKENS, "--json",
                          env=acme).stdout)["blocks"] == 3
    r = run("match", "--node", node.addr, *NS, "--key", "ab" * 16, "--json", env=acme)
    assert json.loads(r.stdout)["blocks"] == 0
    t1 = scrape(node)
    assert sample(t1, "kvc_hits_total") >= sample(t0, "kvc_hits_total") + 3
    assert sample(t1, "kvc_misses_total", reason="absent") > sample(t0, "kvc_misses_total", reason="absent")
    assert sample(t1, "kvc_tenant_hits_total", tenant="acme") >= sample(t0, "kvc_tenant_hits_total", tenant="acme") + 3
    assert sample(t1, "kvc_tenant_bytes", tenant="acme", tier="host") >= 3 * BLOCK_BYTES
    assert sample(t1, "kvc_tier_blocks", tier="host") >= 3
    store_count = sample(t1, "kvc_request_duration_seconds_count", rpc="Store")
    assert store_count >= sample(t0, "kvc_request_duration_seconds_count", rpc="Store") + 3
    assert sample(t1, "kvc_request_duration_seconds_bucket", rpc="Store", le="+Inf") == store_count
    assert sample(t1, "kvc_request_duration_seconds_sum", rpc="Store") > 0
    # Refused calls are counted, and never a key or a credential in the text.
    run("stat", "--node", node.addr, env=as_tenant("acme", "kvc_wrong"))
    t2 = scrape(node)
    assert sample(t2, "kvc_auth_failures_total") > sample(t1, "kvc_auth_failures_total")
    for k in keys + ["ab" * 16]:
        assert k not in t2
    assert creds["acme"] not in t2 and ADMIN_TOKEN not in t2
    # Every sample line is `name{labels} value`.
    for ln in t2.splitlines():
        if ln and not ln.startswith("#"):
            assert re.fullmatch(r'[a-z_]+(\{[a-z_]+="[^"]*"(,[a-z_]+="[^"]*")*\})? [0-9.e+-]+', ln), ln


# --- kvc serve configuration ------------------------------------------------

def test_dry_run_never_shows_the_admin_token(tmp_path):
    r = run("serve", "--dry-run", "--json", env={"KVC_ADMIN_TOKEN": ADMIN_TOKEN})
    assert r.returncode == 0, r.stderr
    assert ADMIN_TOKEN not in r.stdout + r.stderr
    j = json.loads(r.stdout)
    assert j["config"]["admin_token"] == "(set)" and j["sources"]["admin_token"] == "env"
    f = tmp_path / "t"
    f.write_text(ADMIN_TOKEN)
    cfg = tmp_path / "kvc.toml"
    cfg.write_text('metrics_listen = "127.0.0.1:9464"\nunix_socket = "/tmp/x.sock"\n')
    r = run("serve", "--dry-run", "--config", str(cfg), "--admin-token-file", str(f), "--tls-cert", "c.pem",
            "--tls-key", "k.pem", env={"KVC_TLS_CLIENT_CA": "ca.pem"})
    assert r.returncode == 0, r.stderr
    assert ADMIN_TOKEN not in r.stdout + r.stderr
    lines = {ln.split()[0]: ln for ln in r.stdout.splitlines()}
    assert "(set)" in lines["admin_token"] and "admin_token_file" in lines["admin_token"]
    assert "127.0.0.1:9464" in lines["metrics_listen"] and "(file)" in lines["metrics_listen"]
    assert "/tmp/x.sock" in lines["unix_socket"]
    assert "(flag)" in lines["tls_cert"] and "(env)" in lines["tls_client_ca"]
    r = run("serve", "--dry-run", "--admin-token-file", str(tmp_path / "missing"))
    assert r.returncode == 1 and "admin token file" in r.stderr
    r = run("serve", "--dry-run", env={"KVC_ADMIN_TOKEN": "adm\x01in"})
    assert r.returncode == 1 and "printable" in r.stderr and "adm" not in r.stdout


def test_admin_calls_need_a_token_and_a_tenants_file(tmp_path):
    tenants = str(tmp_path / "tenants.json")
    create_tenant(tenants, "acme")
    node = Node(tmp_path, "--tenants-file", tenants, name="noadmin")
    try:
        r = run("tenant", "--node", node.addr, "list", env={"KVC_ADMIN_TOKEN": ADMIN_TOKEN})
        assert r.returncode == 1 and "KVC_ERR_PERMISSION" in r.stderr
    finally:
        assert node.stop() == 0
    node = Node(tmp_path, name="notenants", env={"KVC_ADMIN_TOKEN": ADMIN_TOKEN})
    try:
        assert "admin=enabled" in node.log() and ADMIN_TOKEN not in node.log()
        r = run("tenant", "--node", node.addr, "list", env={"KVC_ADMIN_TOKEN": ADMIN_TOKEN})
        assert r.returncode == 1 and "KVC_ERR_UNSUPPORTED" in r.stderr
    finally:
        assert node.stop() == 0


# --- TLS ----------------------------------------------------------------------

def openssl(*args, cwd):
    r = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr


def make_ca(d, name):
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN={name}",
            "-keyout", f"{name}.key", "-out", f"{name}.pem", cwd=d)


def make_cert(d, ca, name, server):
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}", "-keyout", f"{name}.key",
            "-out", f"{name}.csr", cwd=d)
    ext = d / f"{name}.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n" if server
                   else "extendedKeyUsage=clientAuth\n")
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key", "-CAcreateserial",
            "-days", "2", "-extfile", str(ext), "-out", f"{name}.pem", cwd=d)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    if shutil.which("openssl") is None:
        pytest.skip("SKIPPED LOUDLY: the openssl CLI is missing, TLS tests cannot make certificates")
    d = tmp_path_factory.mktemp("pki")
    make_ca(d, "ca")
    make_ca(d, "otherca")
    make_cert(d, "ca", "server", True)
    make_cert(d, "ca", "client", False)
    make_cert(d, "otherca", "intruder", False)
    return d


def test_tls_server(pki, tmp_path):
    node = Node(tmp_path, "--tls-cert", str(pki / "server.pem"), "--tls-key", str(pki / "server.key"), name="tls")
    try:
        assert "tls=true" in node.log()
        ca = ["--tls-ca", str(pki / "ca.pem")]
        for addr in (node.addr, "localhost:" + node.port):
            r = run("stat", "--node", addr, *ca, "--json")
            assert r.returncode == 0, (addr, r.stderr)
        r = run("match", "--node", node.addr, *ca, *NS, "--tokens", TOKENS, "--json")
        assert r.returncode == 0 and len(json.loads(r.stdout)["keys"]) == 3
        # Plaintext to a TLS node, and a CA that did not sign it: unavailable.
        r = run("stat", "--node", node.addr)
        assert r.returncode == 1 and "KVC_ERR_UNAVAILABLE" in r.stderr, r.stderr
        r = run("stat", "--node", node.addr, "--tls-ca", str(pki / "otherca.pem"))
        assert r.returncode == 1 and "KVC_ERR_UNAVAILABLE" in r.stderr, r.stderr
        # A client certificate without a CA is refused before connecting.
        r = run("stat", "--node", node.addr, "--tls-cert", str(pki / "client.pem"), "--tls-key",
                str(pki / "client.key"))
        assert r.returncode == 1 and "KVC_ERR_INVALID_ARGUMENT" in r.stderr
    finally:
        assert node.stop() == 0


def test_tls_client_certificates(pki, tmp_path):
    node = Node(tmp_path, "--tls-cert", str(pki / "server.pem"), "--tls-key", str(pki / "server.key"),
                "--tls-client-ca", str(pki / "ca.pem"), name="mtls")
    try:
        ca = ["--tls-ca", str(pki / "ca.pem")]
        r = run("stat", "--node", node.addr, *ca, "--tls-cert", str(pki / "client.pem"), "--tls-key",
                str(pki / "client.key"), "--json")
        assert r.returncode == 0, r.stderr
        # No client certificate, or one another CA signed: refused.
        r = run("stat", "--node", node.addr, *ca)
        assert r.returncode == 1 and "KVC_ERR_UNAVAILABLE" in r.stderr, r.stderr
        r = run("stat", "--node", node.addr, *ca, "--tls-cert", str(pki / "intruder.pem"), "--tls-key",
                str(pki / "intruder.key"))
        assert r.returncode == 1 and "KVC_ERR_UNAVAILABLE" in r.stderr, r.stderr
    finally:
        assert node.stop() == 0


def test_tls_bad_files_are_refused_at_start(pki, tmp_path):
    for args, msg in (([str(pki / "server.pem"), str(pki / "client.key")], "does not match"),
                      ([str(pki / "server.pem"), str(tmp_path / "none.key")], "cannot read"),
                      ([str(pki / "server.ext"), str(pki / "server.key")], "not a PEM file")):
        r = run("serve", "--listen", "127.0.0.1:0", "--tls-cert", args[0], "--tls-key", args[1])
        assert r.returncode == 1 and msg in r.stderr, r.stderr
    r = run("serve", "--listen", "127.0.0.1:0", "--tls-cert", str(pki / "server.pem"))
    assert r.returncode == 1 and "both or neither" in r.stderr
