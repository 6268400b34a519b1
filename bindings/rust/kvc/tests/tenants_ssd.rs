//! Tenants, the SSD tier and the trace simulator through the safe API.
mod common;

use common::{fill, small_ns, tokens, want_err, BT};
use kvc::{Cache, CacheOptions, Code, Json, Prefault, QuotaChange, StoreOptions, TenantOptions, WriteMode};

fn temp_dir(name: &str) -> std::path::PathBuf {
    let d = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn tenants() {
    let dir = temp_dir("tenants");
    let file = dir.join("tenants.json");
    let file = file.to_str().unwrap();
    let alpha = TenantOptions { name: "alpha".into(), host_quota_bytes: 64 * 8192, ..Default::default() };
    let cred_a = kvc::create_tenant(file, &alpha).unwrap();
    assert!(cred_a.len() > 16);
    want_err("taken", kvc::create_tenant(file, &alpha), Code::Exists, &[]);
    let bad = TenantOptions { name: "bad name!".into(), ..Default::default() };
    want_err("bad name", kvc::create_tenant(file, &bad), Code::InvalidArgument, &[]);
    let cred_b = kvc::create_tenant(file, &TenantOptions { name: "beta".into(), ..Default::default() }).unwrap();
    let js = kvc::tenants_json(file).unwrap();
    assert!(js.contains("\"alpha\"") && js.contains("\"beta\"") && !js.contains(&cred_a), "{js}");
    let q = QuotaChange { host_quota_bytes: Some(1 << 20), borrow: Some(true), ..Default::default() };
    want_err("nobody", kvc::set_tenant_quota(file, "nobody", &q), Code::NotFound, &[]);
    kvc::set_tenant_quota(file, "alpha", &q).unwrap();
    let huge = QuotaChange { ssd_quota_bytes: Some(u64::MAX), ..Default::default() };
    want_err("huge", kvc::set_tenant_quota(file, "alpha", &huge), Code::InvalidArgument, &["too large"]);

    let cache = Cache::open(&CacheOptions {
        host_capacity_bytes: 4 << 20,
        prefault: Prefault::No,
        tenants_path: file.into(),
        ..Default::default()
    })
    .unwrap();
    let mut o = small_ns();
    want_err("no tenant", cache.namespace(&o).map(|_| ()), Code::Permission, &[]);
    o.tenant = "alpha".into();
    o.credential = "kvc_wrong".into();
    want_err("wrong credential", cache.namespace(&o).map(|_| ()), Code::Permission, &[]);
    o.credential = cred_a;
    let a = cache.namespace(&o).unwrap();
    o.tenant = "beta".into();
    o.credential = cred_b;
    let b = cache.namespace(&o).unwrap();
    let toks = tokens(4 * BT, 9);
    let ka = a.keys(&toks).unwrap();
    assert_ne!(ka, b.keys(&toks).unwrap(), "isolated tenants share keys");
    let blk = fill(a.shard_bytes(), 1);
    a.store_batch(&ka, 0, &[&blk, &blk, &blk, &blk], None).unwrap();
    assert_eq!(b.match_tokens(&toks).unwrap().0, 0);
    assert_eq!(a.match_tokens(&toks).unwrap().0, 4);
    kvc::delete_tenant(file, "beta").unwrap();
    want_err("delete twice", kvc::delete_tenant(file, "beta"), Code::NotFound, &[]);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn ssd_tier_survives_the_cache() {
    let dir = temp_dir("ssd");
    let d = dir.to_str().unwrap().to_string();
    let opts = CacheOptions {
        host_capacity_bytes: 1 << 20,
        prefault: Prefault::No,
        ssd_dir: d.clone(),
        ssd_capacity_bytes: 64 << 20,
        ..Default::default()
    };
    let mut o = small_ns();
    o.write_mode = Some(WriteMode::Through);
    let keys;
    let blk;
    {
        let cache = Cache::open(&opts).unwrap();
        let ns = cache.namespace(&o).unwrap();
        keys = ns.keys(&tokens(2 * BT, 11)).unwrap();
        blk = fill(ns.shard_bytes(), 4);
        ns.store(&keys[0], 0, &blk, Some(&StoreOptions { durable: true, ..Default::default() })).unwrap();
        cache.flush().unwrap();
        let s = cache.stats().unwrap();
        assert!(s.ssd_blocks >= 1 && s.ssd_capacity_bytes == 64 << 20, "{s:?}");
    } // dropped: closed
    assert!(kvc::ssd_inspect_json(&d).unwrap().len() > 2);
    let cache = Cache::open(&opts).unwrap();
    let ns = cache.namespace(&o).unwrap();
    let mut got = vec![0u8; ns.shard_bytes()];
    ns.load(&keys[0], 0, &mut got).unwrap();
    assert_eq!(got, blk, "bytes after a restart");
    let no_capacity = CacheOptions { ssd_capacity_bytes: 0, ..opts.clone() };
    assert!(Cache::open(&no_capacity).is_err());
    drop(ns);
    drop(cache);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn simulate() {
    let dir = temp_dir("sim");
    let trace = dir.join("t.jsonl");
    std::fs::write(
        &trace,
        "{\"timestamp\": 0, \"input_length\": 3, \"output_length\": 1, \"hash_ids\": [1, 2, 3]}\n\
         {\"timestamp\": 1, \"input_length\": 4, \"output_length\": 1, \"hash_ids\": [1, 2, 3, 4]}\n\
         {\"timestamp\": 2, \"input_length\": 1, \"output_length\": 1, \"hash_ids\": [5]}\n",
    )
    .unwrap();
    let t = trace.to_str().unwrap();
    let out = kvc::simulate(t, Some(&["lru"]), &[10]).unwrap();
    let rows = Json::parse(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let rows = rows.as_array().expect("an array of rows");
    assert_eq!(rows.len(), 1, "{out}");
    let n = |k: &str| rows[0].get(k).and_then(Json::as_u64);
    assert_eq!(rows[0].get("policy").and_then(Json::as_str), Some("lru"), "{out}");
    assert_eq!(n("capacity_blocks"), Some(10), "{out}");
    assert_eq!((n("hits"), n("lookups")), (Some(3), Some(8)), "{out}");
    want_err("unknown policy", kvc::simulate(t, Some(&["no-such-policy"]), &[10]), Code::InvalidArgument, &[]);
    std::fs::write(&trace, "{not json\n").unwrap();
    want_err("malformed", kvc::simulate(t, None, &[10]), Code::Parse, &[]);
    let _ = std::fs::remove_dir_all(dir);
}
