"""kvc tenant: create/list/show/set-quota/delete over a tenants file."""
import json
import os
import subprocess

import pytest

KVC = os.environ.get("KVC_BIN", "kvc")


def run(*args):
    return subprocess.run([KVC, *args], capture_output=True, text=True, timeout=60)


def test_lifecycle(tmp_path):
    d = str(tmp_path)
    r = run("tenant", "--dir", d, "create", "acme", "--host-quota", "64MiB", "--json")
    assert r.returncode == 0, r.stderr
    cred = json.loads(r.stdout)["credential"]
    assert cred.startswith("kvc_") and len(cred) > 20
    assert run("tenant", "--dir", d, "create", "beta", "--isolation", "shared").returncode == 0
    r = run("tenant", "--dir", d, "list", "-o", "json")
    tenants = json.loads(r.stdout)
    assert [t["name"] for t in tenants] == ["acme", "beta"]
    assert tenants[0]["host_quota_bytes"] == 64 << 20
    assert tenants[1]["isolation"] == "shared"
    # Secrets never leave the file, and the credential is not stored at all.
    assert cred not in r.stdout and "salt" not in r.stdout
    assert cred not in open(os.path.join(d, "tenants.json")).read()
    r = run("tenant", "--dir", d, "set-quota", "acme", "--host-quota", "1GiB", "--borrow", "yes")
    assert r.returncode == 0, r.stderr
    t = json.loads(run("tenant", "--dir", d, "show", "acme", "--json").stdout)
    assert t["host_quota_bytes"] == 1 << 30 and t["borrow"] is True
    table = run("tenant", "--dir", d, "list").stdout
    assert "acme" in table and "GiB" in table
    assert run("tenant", "--dir", d, "delete", "beta").returncode == 0
    names = [t["name"] for t in json.loads(run("tenant", "--dir", d, "list", "--json").stdout)]
    assert names == ["acme"]


@pytest.mark.parametrize(
    "args",
    [
        ["create", "dup"],  # second create of the same name (set up below)
        ["show", "nobody"],
        ["delete", "nobody"],
        ["set-quota", "nobody", "--host-quota", "1GiB"],
        ["set-quota", "dup"],  # nothing to change
        ["create", "bad name!"],
        ["create", "x", "--host-quota", "lots"],
    ],
)
def test_errors_exit_1_with_one_line(tmp_path, args):
    d = str(tmp_path)
    assert run("tenant", "--dir", d, "create", "dup").returncode == 0
    r = run("tenant", "--dir", d, *args)
    assert r.returncode == 1, (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kvc tenant:"), r.stderr


def test_malformed_file(tmp_path):
    f = tmp_path / "t.json"
    f.write_text("{not json")
    r = run("tenant", "--config", str(f), "list")
    assert r.returncode == 1 and "kvc tenant:" in r.stderr


def test_usage_errors_exit_2(tmp_path):
    assert run("tenant", "list").returncode == 2  # neither --dir nor --config
    assert run("tenant", "--dir", str(tmp_path)).returncode == 2  # no command
    assert run("tenant", "--dir", str(tmp_path), "create", "a", "--isolation", "odd").returncode == 2
