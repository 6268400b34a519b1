"""Options beyond the host tier, through the same keyword arguments: the SSD
tier (a warm restart) and tenants (credentials, isolation)."""

import numpy as np
import pytest

import kvc
from conftest import BT, SMALL, block, tokens


def test_ssd_tier_survives_a_restart(tmp_path):
    ssd = dict(host_capacity_bytes=1 << 20, prefault=2, ssd_dir=str(tmp_path / "ssd"),
               ssd_capacity_bytes=8 << 20)
    toks = tokens(3 * BT)
    with kvc.Cache(**ssd) as cache:
        ns = cache.namespace(write_mode=kvc.WriteMode.THROUGH, **SMALL)
        keys = ns.keys_compute(toks)
        chain = np.stack([block(ns, i) for i in range(3)])
        assert ns.store_batch(keys, chain, durable=1) == 3
        cache.flush()
    assert kvc.ssd_inspect(str(tmp_path / "ssd"))
    with kvc.Cache(**ssd) as cache:
        ns = cache.namespace(write_mode=kvc.WriteMode.THROUGH, **SMALL)
        assert ns.match_tokens(toks) == 3
        out = ns.new_block(3)
        assert ns.load_batch(keys, out) == 3
        assert np.array_equal(out, chain)


def test_tenants(tmp_path):
    path = str(tmp_path / "tenants.json")
    cred_a = kvc.tenant_create(path, name="alpha", host_quota_bytes=64 * 4096)
    cred_b = kvc.tenant_create(path, name="beta")
    assert isinstance(cred_a, str) and len(cred_a) > 16 and cred_a != cred_b
    with pytest.raises(kvc.ExistsError):
        kvc.tenant_create(path, name="alpha")
    with pytest.raises(kvc.InvalidArgumentError):
        kvc.tenant_create(path, name="bad name!")
    names = [t["name"] for t in kvc.tenant_list(path)]
    assert names == ["alpha", "beta"] or sorted(names) == ["alpha", "beta"]
    assert cred_a not in str(kvc.tenant_list(path))
    with pytest.raises(kvc.NotFoundError):
        kvc.tenant_set_quota(path, "nobody", host_quota_bytes=1)
    kvc.tenant_set_quota(path, "beta", host_quota_bytes=128 * 4096)

    with kvc.Cache(host_capacity_bytes=4 << 20, prefault=2, tenants_path=path) as cache:
        with pytest.raises(kvc.PermissionError) as e:
            cache.namespace(**SMALL)  # no tenant in a cache with tenants
        assert isinstance(e.value, PermissionError)
        with pytest.raises(kvc.PermissionError):
            cache.namespace(tenant="alpha", credential="kvc_wrong", **SMALL)
        a = cache.namespace(tenant="alpha", credential=cred_a, **SMALL)
        b = cache.namespace(tenant="beta", credential=cred_b, **SMALL)
        assert "credential" not in a.options
        toks = tokens(2 * BT)
        ka, kb = a.keys_compute(toks), b.keys_compute(toks)
        assert ka != kb  # isolated tenants: salted apart
        a.store_batch(ka, a.new_block(2))
        assert a.match(ka) == 2 and b.match_tokens(toks) == 0
    kvc.tenant_delete(path, "beta")
    with pytest.raises(kvc.NotFoundError):
        kvc.tenant_delete(path, "beta")
