//! Bad inputs and closed handles surface as `Err(kvc::Error)`, never a crash.
mod common;

use std::time::Duration;

use common::{fill, open_cache, small_ns, tokens, want_err, BT};
use kvc::{Cache, CacheOptions, Code, StoreOptions};

#[test]
fn bad_cache_options() {
    let o = CacheOptions { host_capacity_bytes: 1000, ..Default::default() };
    want_err("capacity", Cache::open(&o).map(|_| ()), Code::InvalidArgument, &["minimum"]);
    let o = CacheOptions { host_capacity_bytes: 1 << 20, host_policy: "no-such-policy".into(), ..Default::default() };
    want_err("policy", Cache::open(&o).map(|_| ()), Code::InvalidArgument, &[kvc::default_policy()]);
    let o = CacheOptions { host_policy: "lr\0u".into(), ..Default::default() };
    want_err("nul", Cache::open(&o).map(|_| ()), Code::InvalidArgument, &["NUL"]);
    let o = CacheOptions { pin_timeout: Duration::from_secs(60 * 86400), ..Default::default() };
    want_err("huge", Cache::open(&o).map(|_| ()), Code::InvalidArgument, &["pin_timeout"]);
}

#[test]
fn bad_namespace_options() {
    let cache = open_cache(4 << 20);
    let mut o = small_ns();
    o.model.clear();
    want_err("no model", cache.namespace(&o).map(|_| ()), Code::InvalidArgument, &["model"]);
    let mut o = small_ns();
    o.dtype = "fp13".into();
    want_err("dtype", cache.namespace(&o).map(|_| ()), Code::Layout, &["dtype"]);
    let mut o = small_ns();
    o.shards = 3;
    want_err("shards", cache.namespace(&o).map(|_| ()), Code::Layout, &[]);
    let mut o = small_ns();
    o.hash = "md5".into();
    want_err("md5", cache.namespace(&o).map(|_| ()), Code::InvalidArgument, &[]);
    let mut o = small_ns();
    o.layers = 0;
    want_err("layers", cache.namespace(&o).map(|_| ()), Code::Layout, &[]);
}

#[test]
fn bad_buffers_and_tokens() {
    let cache = open_cache(4 << 20);
    let ns = cache.namespace(&small_ns()).unwrap();
    let sb = ns.shard_bytes();
    let keys = ns.keys(&tokens(2 * BT, 6)).unwrap();
    want_err("short tokens", ns.keys(&tokens(BT - 1, 0)), Code::InvalidArgument, &["16"]);
    want_err("no tokens", ns.keys(&[]), Code::InvalidArgument, &["got 0"]);
    want_err("short match", ns.match_tokens(&tokens(3, 0)), Code::InvalidArgument, &["16"]);
    assert_eq!(kvc::hash_keys(&small_ns(), &[]).unwrap().1.len(), 0);

    let blk = fill(sb, 1);
    want_err("short src", ns.store(&keys[0], 0, &blk[..sb - 1], None), Code::Layout, &["bytes"]);
    want_err("empty src", ns.store(&keys[0], 0, &[], None), Code::Layout, &[]);
    let mut long = blk.clone();
    long.push(0);
    want_err("long src", ns.store(&keys[0], 0, &long, None), Code::Layout, &[]);
    want_err("shard", ns.store(&keys[0], 5, &blk, None), Code::InvalidArgument, &[]);
    let huge = StoreOptions { reservation_timeout: Duration::from_secs(60 * 86400), ..Default::default() };
    want_err("option", ns.store(&keys[0], 0, &blk, Some(&huge)), Code::InvalidArgument, &[]);
    ns.store(&keys[0], 0, &blk, None).unwrap();
    want_err("short dst", ns.load(&keys[0], 0, &mut [0u8; 3]), Code::Layout, &[]);
    want_err("empty dst", ns.load(&keys[0], 0, &mut []), Code::Layout, &[]);
    want_err("batch count", ns.store_batch(&keys, 0, &[&blk], None), Code::InvalidArgument, &["2 keys"]);
    let short: &[u8] = &blk[..1];
    want_err("batch size", ns.store_batch(&keys, 0, &[&blk, short], None), Code::Layout, &["block 1"]);
    let mut a = vec![0u8; sb];
    let mut b = vec![0u8; 1];
    want_err("batch dst", ns.load_batch(&keys, 0, &mut [&mut a, &mut b]), Code::Layout, &["block 1"]);
    let mut b = vec![0u8; sb];
    want_err("batch shard", ns.load_batch(&keys, 9, &mut [&mut a, &mut b]), Code::InvalidArgument, &["shard"]);
    assert_eq!(ns.match_keys(&[]).unwrap(), 0);
    assert_eq!(ns.load_batch(&[], 0, &mut []).unwrap(), (0, vec![]));
    let mut got = vec![0u8; sb];
    ns.load(&keys[0], 0, &mut got).unwrap();
    assert_eq!(got, blk, "the block is unchanged by the bad calls");
    assert!(kvc::simulate("/nonexistent/trace.jsonl", None, &[10]).is_err());
}

#[test]
fn use_after_close() {
    let cache = open_cache(4 << 20);
    let ns = cache.namespace(&small_ns()).unwrap();
    let ns2 = cache.namespace(&small_ns()).unwrap();
    let sb = ns.shard_bytes();
    let keys = ns.keys(&tokens(2 * BT, 7)).unwrap();
    ns.store(&keys[0], 0, &fill(sb, 1), None).unwrap();

    // Two handles on one namespace: closing one leaves the other working.
    ns.close().unwrap();
    ns.close().unwrap();
    want_err("load", ns.load(&keys[0], 0, &mut vec![0; sb]), Code::Closed, &["namespace is closed"]);
    want_err("match", ns.match_keys(&keys), Code::Closed, &[]);
    want_err("info", ns.info(), Code::Closed, &[]);
    assert_eq!(ns2.match_keys(&keys).unwrap(), 1);

    // Views and reservations keep the cache (and a view its namespace) open.
    let v = ns2.view(&keys[0], 0).unwrap();
    let r = ns2.store_begin(&keys[1], 0, None).unwrap();
    want_err("close under a view", ns2.close(), Code::InvalidArgument, &["views"]);
    want_err("close under borrows", cache.close(), Code::InvalidArgument, &["alive"]);
    assert_eq!(&v[..4], &fill(sb, 1)[..4]);
    drop(v);
    r.abort().unwrap();

    cache.close().unwrap();
    cache.close().unwrap();
    want_err("load after cache close", ns2.load(&keys[0], 0, &mut vec![0; sb]), Code::Closed, &["cache"]);
    want_err("store", ns2.store(&keys[1], 0, &fill(sb, 1), None), Code::Closed, &[]);
    want_err("view", ns2.view(&keys[0], 0), Code::Closed, &[]);
    want_err("begin", ns2.store_begin(&keys[0], 0, None), Code::Closed, &[]);
    want_err("wait", ns2.store_wait(&keys[0], 0, Duration::from_millis(1)), Code::Closed, &[]);
    want_err("stats", cache.stats(), Code::Closed, &[]);
    want_err("namespace", cache.namespace(&small_ns()).map(|_| ()), Code::Closed, &[]);
    ns2.close().unwrap();
}
