"""GET /metrics behind a bearer token (kvc serve --metrics-token,
--metrics-token-file, KVC_METRICS_TOKEN): a missing, wrong or malformed
credential is 401 with a WWW-Authenticate header and no metric text; the
right one gets the Prometheus text. The token is never logged or printed by
--dry-run."""
import json
import urllib.error
import urllib.request

import pytest

from test_node_security import Node, run

TOKEN = "mtk_" + "4b1d" * 8


def get(node, headers=None):
    """(status, headers, body) of GET /metrics."""
    req = urllib.request.Request(f"http://{node.metrics}/metrics", headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.headers, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read().decode()


def assert_refused(node, headers):
    status, h, body = get(node, headers)
    assert status == 401, (headers, status, body)
    assert h["WWW-Authenticate"].startswith("Bearer"), h
    assert "kvc_" not in body and "# TYPE" not in body and TOKEN not in body, body


def check_endpoint(node):
    assert node.metrics and "metrics_auth=bearer" in node.log(), node.log()
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Bearer " + TOKEN[:-1]},
                    {"Authorization": "Bearer " + TOKEN + "x"}, {"Authorization": "Basic " + TOKEN},
                    {"Authorization": TOKEN}, {"Authorization": "Bearer"}):
        assert_refused(node, headers)
    status, h, body = get(node, {"Authorization": "Bearer " + TOKEN})
    assert status == 200 and h["Content-Type"].startswith("text/plain"), (status, body)
    assert "# TYPE kvc_hits_total counter" in body and "kvc_request_duration_seconds_bucket" in body
    assert "# TYPE kvc_store_idle_cancels_total counter" in body
    # The refused scrapes are counted with the refused calls.
    assert "kvc_auth_failures_total 7" in body.splitlines(), body
    # The scheme's name is case-insensitive (RFC 7235).
    assert get(node, {"Authorization": "bearer " + TOKEN})[0] == 200
    assert TOKEN not in body
    assert node.stop() == 0, node.log()
    assert TOKEN not in node.log()


def test_metrics_token_file(tmp_path):
    f = tmp_path / "metrics.token"
    f.write_text(TOKEN + "\n")
    check_endpoint(Node(tmp_path, "--metrics-listen", "127.0.0.1:0", "--metrics-token-file", str(f)))


def test_metrics_token_env(tmp_path):
    check_endpoint(Node(tmp_path, "--metrics-listen", "127.0.0.1:0", env={"KVC_METRICS_TOKEN": TOKEN}))


def test_metrics_without_token_is_open(tmp_path):
    node = Node(tmp_path, "--metrics-listen", "127.0.0.1:0")
    assert "metrics_auth=none" in node.log()
    status, _, body = get(node)
    assert status == 200 and "kvc_hits_total" in body
    assert node.stop() == 0


def test_metrics_token_settings_refused(tmp_path):
    f = tmp_path / "metrics.token"
    f.write_text(TOKEN)
    # Never shown by a dry run (flag, env or file), only "(set)".
    r = run("serve", "--dry-run", "--json", "--metrics-listen", "127.0.0.1:0", "--metrics-token", TOKEN)
    assert r.returncode == 0, r.stderr
    assert TOKEN not in r.stdout + r.stderr
    j = json.loads(r.stdout)
    assert j["config"]["metrics_token"] == "(set)" and j["sources"]["metrics_token"] == "flag"
    r = run("serve", "--dry-run", "--metrics-token-file", str(f), env={"KVC_STORE_IDLE_TIMEOUT_MS": "750"})
    assert r.returncode == 0 and TOKEN not in r.stdout + r.stderr, r.stderr
    lines = {ln.split()[0]: ln for ln in r.stdout.splitlines()}
    assert "750" in lines["store_idle_timeout_ms"] and "(env)" in lines["store_idle_timeout_ms"]
    # Both, an empty or missing file, a token with a space: refused, the token not echoed.
    for args, env, msg in (
            (["--metrics-token", TOKEN, "--metrics-token-file", str(f)], {}, "not both"),
            (["--metrics-token-file", str(tmp_path / "missing")], {}, "cannot read the metrics token file"),
            ([], {"KVC_METRICS_TOKEN": "two words"}, "printable"),
    ):
        r = run("serve", "--dry-run", *args, env=env)
        assert r.returncode == 1 and msg in r.stderr, (args, r.stderr)
        assert TOKEN not in r.stderr and "two words" not in r.stderr
    # A token with no endpoint to protect, and a bad idle timeout, fail at start.
    r = run("serve", "--listen", "127.0.0.1:0", "--metrics-token", TOKEN)
    assert r.returncode == 1 and "metrics_listen" in r.stderr, r.stderr
    for bad in ("0", "-1", "abc", "3600001"):
        r = run("serve", "--listen", "127.0.0.1:0", "--store-idle-timeout-ms", bad)
        assert r.returncode == 1 and "store_idle_timeout_ms" in r.stderr, (bad, r.stderr)


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q"]))
