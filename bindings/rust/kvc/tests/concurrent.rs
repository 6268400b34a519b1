//! Threads share one cache and namespace; every byte loaded is the byte
//! stored under its key.
mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{fill, open_cache, small_ns, tokens, BT};
use kvc::{Cache, Code, Key, Namespace};

fn content(k: &Key, sb: usize) -> Vec<u8> {
    (0..sb).map(|i| k.0[i % 16] ^ i as u8).collect()
}

fn assert_send_sync<T: Send + Sync>() {}
fn assert_send<T: Send>() {}

#[test]
fn handle_traits() {
    assert_send_sync::<Cache>();
    assert_send_sync::<Namespace>();
    assert_send_sync::<kvc::View<'static>>();
    assert_send::<kvc::Reservation<'static>>();
}

#[test]
fn threads_store_and_load() {
    let cache = open_cache(64 << 20);
    let ns = cache.namespace(&small_ns()).unwrap();
    let sb = ns.shard_bytes();
    let shared = ns.keys(&tokens(8 * BT, 99)).unwrap();
    std::thread::scope(|s| {
        for w in 0..8u32 {
            let (cache, ns, shared) = (&cache, &ns, &shared);
            s.spawn(move || {
                // Half the threads use a second handle on the namespace.
                let own_handle;
                let h: &Namespace = if w % 2 == 1 {
                    own_handle = cache.namespace(&small_ns()).unwrap();
                    &own_handle
                } else {
                    ns
                };
                let own = h.keys(&tokens(4 * BT, w)).unwrap();
                let mut dst = vec![0u8; sb];
                for r in 0..200 {
                    for set in [shared, &own] {
                        let k = &set[r % set.len()];
                        match h.store(k, 0, &content(k, sb), None) {
                            Ok(()) => {}
                            Err(e) if e.is(Code::Exists) || e.is(Code::Pending) => {}
                            Err(e) => panic!("thread {w}: store: {e}"),
                        }
                        match h.load(k, 0, &mut dst) {
                            Ok(()) => assert!(dst == content(k, sb), "thread {w}: key {k} bytes differ"),
                            Err(e) if e.is(Code::NotFound) => {} // a writer's reservation is pending
                            Err(e) => panic!("thread {w}: load: {e}"),
                        }
                    }
                    if r % 50 == 0 {
                        if let Ok(v) = h.view(&shared[0], 0) {
                            assert_eq!(v[1], content(&shared[0], sb)[1]);
                        }
                    }
                }
            });
        }
    });
    assert_eq!(ns.match_keys(&shared).unwrap(), shared.len());
}

#[test]
fn racing_writers_of_one_key() {
    let cache = open_cache(8 << 20);
    let ns = cache.namespace(&small_ns()).unwrap();
    let sb = ns.shard_bytes();
    let key = ns.keys(&tokens(BT, 42)).unwrap()[0];
    let won = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| match ns.store_begin(&key, 0, None) {
                Ok(mut r) => {
                    won.fetch_add(1, Ordering::SeqCst);
                    r.write(&fill(sb, 5)).unwrap();
                    r.commit().unwrap();
                }
                Err(e) if e.is(Code::Pending) => ns.store_wait(&key, 0, Duration::from_secs(10)).unwrap(),
                Err(e) if e.is(Code::Exists) => {}
                Err(e) => panic!("{e}"),
            });
        }
    });
    assert_eq!(won.load(Ordering::SeqCst), 1);
    let mut got = vec![0u8; sb];
    ns.load(&key, 0, &mut got).unwrap();
    assert_eq!(got, fill(sb, 5));
}

/// Close races calls in flight on other threads: each call works or says
/// "closed"; nothing crashes.
#[test]
fn close_while_in_use() {
    for round in 0..20u32 {
        let cache = Arc::new(open_cache(4 << 20));
        let ns = Arc::new(cache.namespace(&small_ns()).unwrap());
        let sb = ns.shard_bytes();
        let keys = Arc::new(ns.keys(&tokens(4 * BT, round)).unwrap());
        let workers: Vec<_> = (0..4)
            .map(|w| {
                let (ns, keys) = (Arc::clone(&ns), Arc::clone(&keys));
                std::thread::spawn(move || {
                    let mut buf = fill(sb, w);
                    for i in 0..200 {
                        let k = &keys[(i + w) % keys.len()];
                        let r = ns.store(k, 0, &buf, None).or_else(|e| {
                            if e.is(Code::Exists) || e.is(Code::Pending) {
                                Ok(())
                            } else {
                                Err(e)
                            }
                        });
                        let r = r.and_then(|_| ns.load(k, 0, &mut buf));
                        match r {
                            Ok(()) => {}
                            Err(e) if e.is(Code::Closed) => return,
                            Err(e) if e.is(Code::NotFound) => {}
                            Err(e) => panic!("worker {w}: {e}"),
                        }
                    }
                })
            })
            .collect();
        cache.close().unwrap();
        for w in workers {
            w.join().unwrap();
        }
    }
}
