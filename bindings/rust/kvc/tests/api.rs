//! Store, match, load, delete, revisions, two-phase stores and views.
mod common;

use std::time::Duration;

use common::{fill, open_cache, small_ns, tokens, want_err, BT};
use kvc::{Code, Features, Key, StoreOptions, Tier};

#[test]
fn version_features_policies() {
    let v = kvc::version();
    assert_eq!(v.split('.').count(), 3, "{v}");
    assert_eq!(kvc::version_number(), kvc::HEADER_VERSION_NUMBER);
    assert!(kvc::features().contains(Features::SHA256));
    assert!(kvc::features().names().contains(&"xxh3"));
    assert!(kvc::policy_names().contains(&kvc::default_policy()));
}

#[test]
fn codes_match_the_library() {
    for &c in Code::ALL {
        assert_eq!(c.name(), c.c_name(), "generated name of {c:?}");
        assert_ne!(c.description(), "unknown status", "{c:?}");
        assert_eq!(Code::from_raw(c.raw()), c);
    }
    assert_eq!(Code::ALL.last().unwrap().raw(), kvc_sys::KVC_STATUS_MIN);
    assert_eq!(Code::from_raw(-999), Code::Unknown(-999));
    assert_eq!(Code::Unknown(-999).name(), "KVC_ERR_UNKNOWN");
    assert_eq!(Tier::from_raw(2), Tier::Host);
    let e = kvc::Error::new(Code::NotFound, "");
    assert_eq!(e.to_string(), "kvc: not found (KVC_ERR_NOT_FOUND)");
}

#[test]
fn key_hex() {
    let k: Key = "93e47c6bfe4c84ee2dfac17c37e30458".parse().unwrap();
    assert_eq!(k.0[0], 0x93);
    assert_eq!(k.to_string(), "93e47c6bfe4c84ee2dfac17c37e30458");
    want_err("short", "93e4".parse::<Key>(), Code::InvalidArgument, &[]);
    want_err("nul", "93e4\0".parse::<Key>(), Code::InvalidArgument, &["NUL"]);
}

#[test]
fn store_match_load_delete_revision() {
    let cache = open_cache(8 << 20);
    let ns = cache.namespace(&small_ns()).unwrap();
    let info = ns.info().unwrap();
    let sb = ns.shard_bytes();
    assert_eq!(sb, 2 * 2 * 2 * 16 * BT * 2);
    assert_eq!(info.shard_bytes as usize, sb);
    assert!(info.epoch >= 1);
    let toks = tokens(4 * BT + 5, 0);
    let keys = ns.keys(&toks).unwrap();
    assert_eq!(keys.len(), 4);

    assert_eq!(ns.match_keys(&keys).unwrap(), 0);
    let mut dst = vec![0u8; sb];
    want_err("load miss", ns.load(&keys[0], 0, &mut dst), Code::NotFound, &[]);

    let blk = fill(sb, 1);
    ns.store(&keys[0], 0, &blk, None).unwrap();
    want_err("second store", ns.store(&keys[0], 0, &blk, None), Code::Exists, &[]);
    ns.load(&keys[0], 0, &mut dst).unwrap();
    assert_eq!(dst, blk);
    assert_eq!(ns.match_tiers(&keys).unwrap(), vec![Tier::Host]);

    let srcs: Vec<Vec<u8>> = (0..4).map(|i| fill(sb, 10 + i)).collect();
    let src_refs: Vec<&[u8]> = srcs.iter().map(|s| s.as_slice()).collect();
    let opts = StoreOptions { ttl: Duration::from_secs(3600), ..Default::default() };
    let st = ns.store_batch(&keys, 0, &src_refs, Some(&opts)).unwrap();
    assert_eq!(st, vec![Err(Code::Exists), Ok(()), Ok(()), Ok(())]);
    let (n, got) = ns.match_tokens(&toks).unwrap();
    assert_eq!((n, got.as_slice()), (4, keys.as_slice()));

    let mut bufs: Vec<Vec<u8>> = vec![vec![0u8; sb]; 4];
    let mut dsts: Vec<&mut [u8]> = bufs.iter_mut().map(|b| b.as_mut_slice()).collect();
    let (loaded, st) = ns.load_batch(&keys, 0, &mut dsts).unwrap();
    assert_eq!(loaded, 4);
    assert!(st.iter().all(|s| s.is_ok()));
    assert_eq!(bufs[0], blk);
    assert_eq!(bufs[3], srcs[3]);
    assert_eq!(ns.match_batch(&[&keys[..2], &keys[2..], &[]]).unwrap(), vec![2, 2, 0]);

    ns.delete(&keys[1]).unwrap();
    want_err("delete twice", ns.delete(&keys[1]), Code::NotFound, &[]);
    assert_eq!(ns.match_keys(&keys).unwrap(), 1);
    let mut dsts: Vec<&mut [u8]> = bufs.iter_mut().map(|b| b.as_mut_slice()).collect();
    let (loaded, st) = ns.load_batch(&keys, 0, &mut dsts).unwrap();
    assert_eq!(loaded, 1);
    assert_eq!(st[1], Err(Code::NotFound));
    assert_eq!(st[2], Ok(()));

    let epoch = ns.bump_revision().unwrap();
    assert_eq!(epoch, info.epoch + 1);
    assert_eq!(ns.match_keys(&keys).unwrap(), 0);
    want_err("load after bump", ns.load(&keys[0], 0, &mut dst), Code::NotFound, &[]);
    ns.store(&keys[0], 0, &blk, None).unwrap();
    let s = cache.stats().unwrap();
    assert!(s.misses_for(kvc::MissReason::Stale) >= 1, "{s:?}");
    assert!(s.stores >= 5 && s.deletes == 1, "{s:?}");
    assert!(cache.stats_json().unwrap().contains("\"misses_by_reason\""));
}

#[test]
fn two_phase_store() {
    let cache = open_cache(4 << 20);
    let ns = cache.namespace(&small_ns()).unwrap();
    let sb = ns.shard_bytes();
    let keys = ns.keys(&tokens(2 * BT, 1)).unwrap();

    let r = ns.store_begin(&keys[0], 0, None).unwrap();
    want_err("second writer", ns.store_begin(&keys[0], 0, None), Code::Pending, &[]);
    want_err("invisible", ns.load(&keys[0], 0, &mut vec![0; sb]), Code::NotFound, &[]);
    want_err("wait", ns.store_wait(&keys[0], 0, Duration::from_millis(10)), Code::Timeout, &[]);
    r.abort().unwrap();
    want_err("wait after abort", ns.store_wait(&keys[0], 0, Duration::from_millis(10)), Code::NotFound, &[]);

    // Zero-copy fill, and a waiter on another thread sees the commit.
    let want = fill(sb, 7);
    std::thread::scope(|s| {
        let mut r = ns.store_begin(&keys[0], 0, None).unwrap();
        let waiter = s.spawn(|| ns.store_wait(&keys[0], 0, Duration::from_secs(10)));
        // SAFETY: written well within the reservation's deadline.
        let buf = unsafe { r.buffer_mut() }.unwrap();
        assert_eq!(buf.len(), sb);
        buf.copy_from_slice(&want);
        want_err("short write", r.write(&want[..5]), Code::Layout, &["bytes"]);
        std::thread::sleep(Duration::from_millis(20));
        r.commit().unwrap();
        waiter.join().unwrap().unwrap();
    });
    let mut got = vec![0u8; sb];
    ns.load(&keys[0], 0, &mut got).unwrap();
    assert_eq!(got, want);
    want_err("begin on committed", ns.store_begin(&keys[0], 0, None), Code::Exists, &[]);

    // write() copies; the parent option is taken; a dropped reservation aborts.
    let opts = StoreOptions { parent: Some(keys[0]), ..Default::default() };
    let mut r = ns.store_begin(&keys[1], 0, Some(&opts)).unwrap();
    r.write(&fill(sb, 8)).unwrap();
    drop(r);
    assert_eq!(ns.match_keys(&keys).unwrap(), 1);
    assert_eq!(cache.stats().unwrap().pending, 0);
    let mut r = ns.store_begin(&keys[1], 0, Some(&opts)).unwrap();
    r.write(&fill(sb, 8)).unwrap();
    r.commit().unwrap();
    assert_eq!(ns.match_keys(&keys).unwrap(), 2);
}

#[test]
fn reservation_deadline() {
    let cache = kvc::Cache::open(&kvc::CacheOptions {
        host_capacity_bytes: 4 << 20,
        prefault: kvc::Prefault::No,
        maintenance_interval: Duration::from_millis(5),
        ..Default::default()
    })
    .unwrap();
    let ns = cache.namespace(&small_ns()).unwrap();
    let keys = ns.keys(&tokens(BT, 3)).unwrap();
    let opts = StoreOptions { reservation_timeout: Duration::from_millis(30), ..Default::default() };
    let mut r = ns.store_begin(&keys[0], 0, Some(&opts)).unwrap();
    r.write(&fill(ns.shard_bytes(), 1)).unwrap();
    std::thread::sleep(Duration::from_millis(150));
    want_err("commit after deadline", r.commit(), Code::Timeout, &[]);
}

#[test]
fn views() {
    let cache = kvc::Cache::open(&kvc::CacheOptions {
        host_capacity_bytes: 4 << 20,
        prefault: kvc::Prefault::No,
        maintenance_interval: Duration::from_millis(5), // lapses the short pin below promptly
        ..Default::default()
    })
    .unwrap();
    let ns = cache.namespace(&small_ns()).unwrap();
    let sb = ns.shard_bytes();
    let keys = ns.keys(&tokens(BT, 4)).unwrap();
    let blk = fill(sb, 3);
    ns.store(&keys[0], 0, &blk, None).unwrap();
    let v = ns.view(&keys[0], 0).unwrap();
    assert_eq!(&v[..], &blk[..]);
    ns.delete(&keys[0]).unwrap();
    want_err("load deleted", ns.load(&keys[0], 0, &mut vec![0; sb]), Code::NotFound, &[]);
    assert_eq!(&v[..], &blk[..], "the view's bytes stay after delete");
    assert_eq!(cache.stats().unwrap().pins, 1);
    v.release().unwrap();
    assert_eq!(cache.stats().unwrap().pins, 0);
    want_err("view of deleted", ns.view(&keys[0], 0), Code::NotFound, &[]);

    ns.store(&keys[0], 0, &blk, None).unwrap();
    {
        let v1 = ns.view(&keys[0], 0).unwrap();
        let v2 = ns.view(&keys[0], 0).unwrap();
        assert_eq!(v1.len(), v2.len());
        assert_eq!(cache.stats().unwrap().pins, 2);
    } // dropped: released
    assert_eq!(cache.stats().unwrap().pins, 0);

    // A pin that lapsed: its release reports the library's error.
    // SAFETY: the view's bytes are not read after the deadline.
    let v = unsafe { ns.view_with_pin_timeout(&keys[0], 0, Duration::from_millis(1)) }.unwrap();
    std::thread::sleep(Duration::from_millis(300));
    want_err("release after the pin lapsed", v.release(), Code::InvalidArgument, &["released"]);
}
